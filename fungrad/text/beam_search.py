"""Beam search: keep the ``num_beams`` likeliest continuations, extend each by every token,
keep the best again; finished hypotheses (ending in EOS, or at ``max_new_tokens``) are
ranked by ``sum of log-probabilities / length ** length_penalty``.

The beams are the rows of one batch, so each step is one jitted decode call on the cache;
the surviving beams' cache rows are gathered with :func:`fungrad.text.cache_ops.select_rows`.
"""
from __future__ import annotations

from typing import Literal, NamedTuple, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad.text.cache_ops import batch_axes, select_rows
from fungrad.text.generate import Model, check_prompts, decode_functions
from fungrad.text.sampling import Sampling

__all__ = ["Hypothesis", "beam_search"]


class Hypothesis(NamedTuple):
    """A finished continuation: its new tokens, summed log-probability and final score."""
    tokens: list[int]
    logprob: float
    score: float


def _score(logprob: float, length: int, length_penalty: float) -> float:
    return logprob / length ** length_penalty


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def beam_search(model: Model, prompt: Sequence[int], *, num_beams: int, max_new_tokens: int,
                length_penalty: float = 1.0, early_stopping: bool | Literal["never"] = False,
                eos_id: int | None = None, max_len: int | None = None,
                cache_dtype=jnp.float32) -> list[Hypothesis]:
    """The ``num_beams`` best continuations of ``prompt``, best first.

    ``early_stopping``: ``True`` stops as soon as ``num_beams`` hypotheses have finished;
    ``False`` stops when the best running beam, scored at its current length, cannot beat
    the worst finished one (Hugging Face's heuristic); ``"never"`` stops only when no
    running beam can beat it at any length up to ``max_new_tokens`` (exact).
    """
    if num_beams < 1 or max_new_tokens < 1:
        raise ValueError(f"beam_search: num_beams and max_new_tokens must be >= 1, "
                         f"got {num_beams}, {max_new_tokens}")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"beam_search: early_stopping must be True, False or 'never', "
                         f"got {early_stopping!r}")
    max_len = max_len or len(prompt) + max_new_tokens
    (prompt,) = check_prompts([prompt], model.cfg.vocab_size, max_len, "beam_search")
    prefill, _, advance = decode_functions(model.module, model.cfg, Sampling(temperature=0.0))
    axes = batch_axes(model.module, model.cfg, max_len, cache_dtype)
    cache = model.module.init_cache(model.cfg, 1, max_len, dtype=cache_dtype)
    logits, cache = prefill(model.params, jnp.asarray([prompt], jnp.int32),
                            jnp.ones((1, len(prompt)), bool), cache)
    beams: list[list[int]] = [[]]
    sums = np.zeros(1)
    finished: list[Hypothesis] = []
    for step in range(1, max_new_tokens + 1):
        candidates = sums[:, None] + _log_softmax(np.asarray(logits))          # (beams, vocab)
        order = np.argsort(-candidates, axis=None, kind="stable")[:2 * num_beams]
        rows, tokens, new_sums = [], [], []
        for flat in order:
            beam, token = divmod(int(flat), candidates.shape[1])
            total = float(candidates[beam, token])
            if token == eos_id or step == max_new_tokens:
                finished.append(Hypothesis(beams[beam] + [token], total,
                                           _score(total, step, length_penalty)))
            elif len(rows) < num_beams:
                rows.append(beam)
                tokens.append(token)
                new_sums.append(total)
            if len(rows) == num_beams:
                break
        finished = sorted(finished, key=lambda h: -h.score)[:num_beams]
        if step == max_new_tokens or not rows or _done(
                finished, new_sums, num_beams, step, max_new_tokens, length_penalty,
                early_stopping):
            break
        beams = [beams[b] + [t] for b, t in zip(rows, tokens)]
        sums = np.asarray(new_sums)
        cache = select_rows(cache, np.asarray(rows), axes)
        logits, cache = advance(model.params, jnp.asarray(tokens, jnp.int32), cache)
    return finished


def _done(finished: list[Hypothesis], running_sums: list[float], num_beams: int, step: int,
          max_new: int, length_penalty: float, early_stopping: bool | str) -> bool:
    """Whether no running beam can still enter the ``num_beams`` best finished hypotheses."""
    if len(finished) < num_beams:
        return False
    if early_stopping is True:
        return True
    worst, best_sum = finished[-1].score, max(running_sums)
    if early_stopping is False:
        return worst >= _score(best_sum, step, length_penalty)
    # Log-probabilities only fall as a beam grows; the best score it can reach is at the
    # longest length for a positive penalty, at the shortest (next step) otherwise.
    length = max_new if length_penalty > 0 else step + 1
    return worst >= _score(best_sum, length, length_penalty)
