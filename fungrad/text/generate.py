"""Generating text with any language model of ``fungrad.models`` through its explicit cache.

The prompt is run once (the *prefill*), then each new token is one jitted decode step on
the fixed-size cache, so nothing is retraced per token. Prompts of different lengths are
left-padded into one batch with an attention mask; every row stops on its own (stop
tokens, stop strings, ``max_new_tokens``) and the loop ends when all rows have.

>>> from fungrad import random
>>> from fungrad.models import gpt2
>>> cfg = gpt2.PRESETS["tiny"]
>>> model = Model(gpt2, gpt2.init(random.PRNGKey(0), cfg), cfg)
>>> out = generate(model, [[1, 2, 3], [4]], max_new_tokens=5, temperature=0.8, top_k=40,
...                key=random.PRNGKey(1))
>>> [len(tokens) for tokens in out]
[5, 5]
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import random
from fungrad.text.sampling import Sampling, choose

__all__ = ["Model", "generate", "stream"]


class Model(NamedTuple):
    """A language model as decoding needs it: its family module (which has ``apply`` and
    ``init_cache``, e.g. ``fungrad.models.gpt2``), its params and its config."""
    module: Any
    params: Any
    cfg: Any


def check_prompts(prompts: Sequence[Sequence[int]], vocab_size: int, max_len: int,
                  name: str) -> list[list[int]]:
    """Validate a batch of prompts (non-empty lists of ids below ``vocab_size`` that fit
    in a cache of ``max_len``); return them as lists of ints."""
    if isinstance(prompts, (str, bytes)) or not len(prompts):
        raise ValueError(f"{name}: prompts must be a non-empty list of token-id lists")
    out = []
    for i, p in enumerate(prompts):
        p = [int(t) for t in np.asarray(p).reshape(-1)]
        if not p:
            raise ValueError(f"{name}: prompt {i} is empty (start it with a BOS token, "
                             "for example)")
        bad = [t for t in p if not 0 <= t < vocab_size]
        if bad:
            raise ValueError(f"{name}: prompt {i} has ids {bad[:5]} outside [0, {vocab_size})")
        if len(p) >= max_len:
            raise ValueError(f"{name}: prompt {i} has {len(p)} tokens; the cache holds {max_len} "
                             "(raise max_len or shorten the prompt)")
        out.append(p)
    return out


def left_pad(prompts: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tokens ``(B, T)`` int32 with shorter prompts padded on the left, and the mask of real
    tokens."""
    T = max(len(p) for p in prompts)
    tokens = np.full((len(prompts), T), pad_id, np.int32)
    mask = np.zeros((len(prompts), T), bool)
    for i, p in enumerate(prompts):
        tokens[i, T - len(p):] = p
        mask[i, T - len(p):] = True
    return tokens, mask


@functools.lru_cache(maxsize=64)
def decode_functions(module: Any, cfg: Any,
                     settings: Sampling) -> tuple[Callable, Callable, Callable]:
    """The jitted ``prefill``, ``pick`` and ``advance`` of one model and sampling setting
    (cached, so a second ``generate`` call reuses the compiled steps)."""

    def prefill(params, tokens, mask, cache):
        logits, cache = module.apply(params, cfg, tokens, cache=cache, attention_mask=mask)
        return logits[:, -1], cache

    def pick(logits, seen, key, step):
        token = choose(random.fold_in(key, step), logits, settings, seen)
        return token, seen.at[jnp.arange(token.shape[0]), token].set(True)

    def advance(params, token, cache):
        logits, cache = module.apply(params, cfg, token[:, None], cache=cache)
        return logits[:, -1], cache

    return (fungrad.jit(prefill, donate_argnums=3), fungrad.jit(pick),
            fungrad.jit(advance, donate_argnums=2))


def _steps(model: Model, prompts: Sequence[Sequence[int]], max_new_tokens: int, settings: Sampling,
           key: Any, max_len: int | None, pad_id: int, cache_dtype: Any) -> Iterator[np.ndarray]:
    """Yield the next token of every row ``(B,)`` after each decode step, forever; the
    caller stops. Rows that have finished keep producing tokens that the caller ignores."""
    vocab = model.cfg.vocab_size
    longest = max(len(np.asarray(p).reshape(-1)) for p in prompts) if len(prompts) else 0
    max_len = max_len or longest + max_new_tokens
    prompts = check_prompts(prompts, vocab, max_len, "generate")
    if not settings.greedy and key is None:
        raise ValueError("generate: sampling (temperature > 0) needs a PRNG `key`")
    key = random.PRNGKey(0) if key is None else key
    tokens, mask = left_pad(prompts, pad_id)
    seen = np.zeros((len(prompts), vocab), bool)
    for i, p in enumerate(prompts):
        seen[i, p] = True
    prefill, pick, advance = decode_functions(model.module, model.cfg, settings)
    cache = model.module.init_cache(model.cfg, len(prompts), max_len, dtype=cache_dtype)
    logits, cache = prefill(model.params, jnp.asarray(tokens), jnp.asarray(mask), cache)
    seen = jnp.asarray(seen)
    for step in range(max_len - tokens.shape[1] + 1):
        token, seen = pick(logits, seen, key, jnp.asarray(step, jnp.uint32))
        yield np.asarray(token)
        if tokens.shape[1] + step + 1 >= max_len:
            return
        logits, cache = advance(model.params, token, cache)


def generate(model: Model, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             min_p: float | None = None, repetition_penalty: float = 1.0,
             stop_tokens: Sequence[int] = (), stop_strings: Sequence[str] = (),
             decode: Callable[[list[int]], str] | None = None, key: Any = None,
             max_len: int | None = None, pad_id: int = 0,
             cache_dtype: Any = jnp.float32) -> list[list[int]]:
    """The new tokens of every prompt in ``prompts`` (a list of token-id lists).

    Each row stops after a token of ``stop_tokens`` (kept in the output), once its text
    (``decode`` of its new tokens; pass the tokenizer's ``decode``) contains one of
    ``stop_strings`` (the output ends with the token that completed it), or after
    ``max_new_tokens``. ``temperature=0`` is greedy; see :class:`Sampling` for the rest.
    """
    if max_new_tokens < 1:
        raise ValueError(f"generate: max_new_tokens must be >= 1, got {max_new_tokens}")
    if stop_strings and decode is None:
        raise ValueError("generate: stop_strings needs `decode` (the tokenizer's decode function)")
    settings = Sampling(temperature, top_k, top_p, min_p, repetition_penalty)
    outputs: list[list[int]] = [[] for _ in prompts]
    done = np.zeros(len(prompts), bool)
    stops = {int(t) for t in stop_tokens}
    # tokens enough to hold any stop string
    window = max((len(s) for s in stop_strings), default=0) + 4
    steps = _steps(model, prompts, max_new_tokens, settings, key, max_len, pad_id, cache_dtype)
    for tokens in steps:
        for row, token in enumerate(tokens.tolist()):
            if done[row]:
                continue
            outputs[row].append(token)
            done[row] = (token in stops or len(outputs[row]) >= max_new_tokens
                         or (bool(stop_strings)
                             and any(s in decode(outputs[row][-window:]) for s in stop_strings)))
        if done.all():
            steps.close()
    return outputs


def stream(model: Model, prompt: Sequence[int], *, max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, min_p: float | None = None,
           repetition_penalty: float = 1.0, stop_tokens: Sequence[int] = (), key: Any = None,
           max_len: int | None = None, cache_dtype: Any = jnp.float32) -> Iterator[int]:
    """Yield the new tokens of one prompt as they are produced (a stop token is yielded,
    then the stream ends)."""
    if max_new_tokens < 1:
        raise ValueError(f"stream: max_new_tokens must be >= 1, got {max_new_tokens}")
    settings = Sampling(temperature, top_k, top_p, min_p, repetition_penalty)
    stops = {int(t) for t in stop_tokens}
    steps = _steps(model, [prompt], max_new_tokens, settings, key, max_len, 0, cache_dtype)
    for n, tokens in enumerate(steps, 1):
        token = int(tokens[0])
        yield token
        if token in stops or n >= max_new_tokens:
            steps.close()
            return
