"""Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): a small draft model
proposes ``gamma`` tokens, the target model scores them all in one call, and each draft
token ``x`` is kept with probability ``min(1, p(x) / q(x))`` (``p`` the target's, ``q``
the draft's distribution after the same temperature and filters). At the first rejection
the token is drawn from ``max(0, p - q)`` renormalised; when all are kept, one more is
drawn from the target. The output is distributed exactly as sampling from the target.

Both models need attention KV caches, which are rolled back past rejected tokens.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import random
from fungrad.nn import softmax
from fungrad.text import cache_ops
from fungrad.text.generate import Model, check_prompts
from fungrad.text.sampling import Sampling, process_logits

__all__ = ["SpeculativeStats", "speculative_generate"]


class SpeculativeStats(NamedTuple):
    """How a speculative run went: draft tokens proposed and accepted, target calls."""
    proposed: int
    accepted: int
    target_calls: int

    @property
    def acceptance_rate(self) -> float:
        """The fraction of drafted tokens the target model accepted."""
        return self.accepted / max(self.proposed, 1)


@functools.lru_cache(maxsize=64)
def _feed_function(module: Any, cfg: Any, settings: Sampling):
    """The jitted call that appends tokens to one row's cache and returns the filtered
    next-token distributions after each of them (cached per model and setting)."""
    def feed(params, tokens, cache):
        logits, cache = module.apply(params, cfg, tokens[None], cache=cache)
        return softmax(process_logits(logits[0], settings), axis=-1), cache
    return fungrad.jit(feed, donate_argnums=2)


class _Runner:
    """One model's cache: feed tokens, get the next-token distributions, roll back."""

    def __init__(self, model: Model, settings: Sampling, max_len: int, cache_dtype: Any):
        self.model = model
        self.cache = model.module.init_cache(model.cfg, 1, max_len, dtype=cache_dtype)
        if not cache_ops.has_kv_caches(self.cache):
            raise ValueError(f"speculative_generate: {model.module.__name__} has no attention KV "
                             "cache to roll back; speculative decoding needs attention models")
        self.length = 0
        self.feed = _feed_function(model.module, model.cfg, settings)

    def run(self, tokens: list[int]) -> np.ndarray:
        """Append ``tokens`` to the cache; the distributions after each ``(T, vocab)``."""
        probs, self.cache = self.feed(self.model.params, jnp.asarray(tokens, jnp.int32), self.cache)
        self.length += len(tokens)
        return np.asarray(probs, np.float64)

    def keep(self, length: int) -> None:
        """Forget everything after the first ``length`` tokens."""
        if length < self.length:
            self.cache = cache_ops.rollback(self.cache, length)
            self.length = length


def _draw(rng: np.random.Generator, probs: np.ndarray, greedy: bool) -> int:
    if greedy:
        return int(np.argmax(probs))
    return int(rng.choice(len(probs), p=probs / probs.sum()))


def speculative_generate(target: Model, draft: Model, prompt: Sequence[int], *, max_new_tokens: int,
                         gamma: int = 4, temperature: float = 1.0, top_k: int | None = None,
                         top_p: float | None = None, min_p: float | None = None,
                         stop_tokens: Sequence[int] = (), key: Any = None,
                         max_len: int | None = None, cache_dtype: Any = jnp.float32
                         ) -> tuple[list[int], SpeculativeStats]:
    """New tokens for ``prompt`` sampled from ``target`` with ``draft`` proposing ``gamma``
    at a time; returns ``(tokens, stats)``. The accept/reject draws use a NumPy generator
    seeded from ``key``, so a run is reproducible. As in :func:`generate`, the caches hold
    ``max_len`` tokens (prompt included) and decoding ends when they are full."""
    if gamma < 1 or max_new_tokens < 1:
        raise ValueError(f"speculative_generate: gamma and max_new_tokens must be >= 1, "
                         f"got {gamma}, {max_new_tokens}")
    if target.cfg.vocab_size != draft.cfg.vocab_size:
        raise ValueError(f"speculative_generate: the draft's vocabulary ({draft.cfg.vocab_size}) "
                         f"differs from the target's ({target.cfg.vocab_size})")
    settings = Sampling(temperature, top_k, top_p, min_p)
    if not settings.greedy and key is None:
        raise ValueError("speculative_generate: sampling (temperature > 0) needs a PRNG `key`")
    max_len = max_len or len(prompt) + max_new_tokens + gamma + 1
    (prompt,) = check_prompts([prompt], target.cfg.vocab_size, max_len, "speculative_generate")
    # as generate: it ends when the cache is full
    max_new_tokens = min(max_new_tokens, max_len - len(prompt))
    seed = 0 if key is None else int(np.asarray(random.key_data(key)).ravel()[-1])
    rng = np.random.default_rng(seed)
    big = _Runner(target, settings, max_len, cache_dtype)
    small = _Runner(draft, settings, max_len, cache_dtype)
    if len(prompt) > 1:  # the caches hold every token but the newest, which the next round feeds
        big.run(prompt[:-1])
        small.run(prompt[:-1])
    sequence, out = list(prompt), []
    proposed = accepted = calls = 0
    stops = {int(t) for t in stop_tokens}
    while len(out) < max_new_tokens:
        n_draft = min(gamma, max_new_tokens - len(out))
        proposal, q = [], []
        pending = sequence[small.length:]                     # tokens the draft has not seen
        for _ in range(n_draft):
            probs = small.run(pending)[-1]
            proposal.append(_draw(rng, probs, settings.greedy))
            q.append(probs)
            pending = proposal[-1:]
        p = big.run(sequence[big.length:] + proposal)[-(n_draft + 1):]   # (n_draft + 1, vocab)
        calls += 1
        n_ok = 0
        for i, x in enumerate(proposal):
            if settings.greedy:
                keep = x == np.argmax(p[i])
            else:
                keep = rng.random() < min(1.0, p[i][x] / q[i][x])
            if not keep:
                break
            n_ok += 1
        if n_ok < n_draft and not settings.greedy:
            residual = np.maximum(p[n_ok] - q[n_ok], 0.0)
            last = _draw(rng, residual if residual.sum() > 0 else p[n_ok], False)
        else:  # every draft token kept (or greedy): the target's own next token
            last = _draw(rng, p[n_ok], settings.greedy)
        proposed, accepted = proposed + n_draft, accepted + n_ok
        new = proposal[:n_ok] + [last]
        sequence += new
        big.keep(len(sequence) - 1)                           # every token but the newest
        small.keep(min(small.length, len(sequence) - 1))
        for token in new:
            out.append(token)
            if token in stops or len(out) >= max_new_tokens:
                return out, SpeculativeStats(proposed, accepted, calls)
    return out, SpeculativeStats(proposed, accepted, calls)
