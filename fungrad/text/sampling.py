"""Choosing the next token from logits: greedy, temperature, top-k, top-p, min-p and a
repetition penalty, as pure functions that run inside a jitted decode step.

The order is Hugging Face ``generate``'s: repetition penalty, then temperature, top-k,
top-p and min-p, then a draw from the softmax (or the argmax when ``temperature == 0``).
Filtered-out tokens get ``-inf`` logits. :class:`Sampling` holds the settings; it is a
frozen dataclass, so it can be a static argument of ``jit``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad.nn import softmax

__all__ = ["Sampling", "choose", "process_logits"]


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How to pick each token. ``temperature=0`` is greedy decoding; ``top_k``, ``top_p``
    and ``min_p`` keep only the ``k`` likeliest tokens, the smallest set whose probability
    reaches ``p``, and the tokens at least ``min_p`` times as likely as the likeliest;
    ``repetition_penalty > 1`` makes tokens already in the sequence less likely (positive
    logits divided by it, negative ones multiplied)."""
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if self.top_k is not None and not (isinstance(self.top_k, int) and self.top_k >= 1):
            raise ValueError(f"top_k must be an integer >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p}")
        if not self.repetition_penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        """Whether decoding picks the most likely token (``temperature == 0``)."""
        return self.temperature == 0


def process_logits(logits: Any, settings: Sampling, seen: Any = None) -> Any:
    """Apply the penalty and the filters to ``logits (B, V)``; ``seen (B, V)`` marks the
    tokens already in each sequence. Returns float32 logits with ``-inf`` where filtered."""
    logits = logits.astype(jnp.float32)
    if settings.repetition_penalty != 1.0 and seen is not None:
        penalty = settings.repetition_penalty
        penalised = jnp.where(logits > 0, logits / penalty, logits * penalty)
        logits = jnp.where(seen, penalised, logits)
    if settings.greedy:
        return logits
    if settings.temperature != 1.0:
        logits = logits / settings.temperature
    if settings.top_k is not None and settings.top_k < logits.shape[-1]:
        kth = lax.top_k(logits, settings.top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if settings.top_p is not None and settings.top_p < 1:
        logits = _top_p(logits, settings.top_p)
    if settings.min_p is not None and settings.min_p > 0:
        probs = softmax(logits, axis=-1)
        threshold = settings.min_p * jnp.max(probs, axis=-1, keepdims=True)
        logits = jnp.where(probs < threshold, -jnp.inf, logits)
    return logits


def _top_p(logits: Any, p: float) -> Any:
    """Keep the likeliest tokens until their probability reaches ``p`` (at least one)."""
    order = jnp.argsort(-logits, axis=-1)
    sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
    probs = softmax(sorted_logits, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs          # probability of the likelier tokens
    keep_sorted = before < p
    rows = jnp.arange(logits.shape[0])[:, None]
    keep = jnp.zeros_like(keep_sorted).at[rows, order].set(keep_sorted)
    return jnp.where(keep, logits, -jnp.inf)


def choose(key: Any, logits: Any, settings: Sampling, seen: Any = None) -> Any:
    """The next token ``(B,)`` int32 for each row of ``logits (B, V)``."""
    logits = process_logits(logits, settings, seen)
    if settings.greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return random.categorical(key, logits, axis=-1).astype(jnp.int32)
