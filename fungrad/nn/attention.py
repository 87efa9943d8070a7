"""Multi-head attention over params dicts: causal and padding masks, grouped-query
attention, rotary position embeddings, and a KV cache passed in and returned.

The cache is preallocated to ``max_len`` and written with ``dynamic_update_slice`` at a
(traced) position, so decoding keeps one shape and ``jit`` compiles one step.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad.nn.functions import softmax
from fungrad.nn.layers import linear, linear_init


class KVCache(NamedTuple):
    """Keys and values ``(batch, max_len, n_kv_heads, head_dim)`` and the next write position."""
    k: Any
    v: Any
    pos: Any


def init_kv_cache(batch: int, max_len: int, n_kv_heads: int, head_dim: int, dtype: Any = jnp.float32) -> KVCache:
    shape = (batch, max_len, n_kv_heads, head_dim)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))


def rope_frequencies(head_dim: int, max_len: int, base: float = 10000.0) -> tuple[Any, Any]:
    """Cosines and sines ``(max_len, head_dim // 2)`` for rotary position embeddings."""
    inv_freq = 1.0 / (base ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    angles = jnp.arange(max_len, dtype=jnp.float32)[:, None] * inv_freq[None, :]
    return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: Any, positions: Any, freqs: tuple[Any, Any]) -> Any:
    """Rotate pairs (first half, second half) of the last axis of ``x (B, T, H, D)``."""
    cos, sin = (jnp.take(f, positions, axis=0)[:, :, None, :] for f in freqs)
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def dot_product_attention(q: Any, k: Any, v: Any, mask: Any = None) -> Any:
    """``softmax(q k^T / sqrt(d) + mask) v`` for ``(B, T, H, D)`` queries and ``(B, S, H, D)``
    keys/values (``k``/``v`` may have fewer heads: grouped-query attention). ``mask`` is
    boolean, broadcastable to ``(B, H, T, S)``, True where attention is allowed."""
    n_heads, n_kv = q.shape[2], k.shape[2]
    if n_heads % n_kv:
        raise ValueError(f"dot_product_attention: {n_heads} query heads not divisible by {n_kv} kv heads")
    if n_kv != n_heads:
        k = jnp.repeat(k, n_heads // n_kv, axis=2)
        v = jnp.repeat(v, n_heads // n_kv, axis=2)
    scores = jnp.einsum("bthd,bshd->bhts", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    return jnp.einsum("bhts,bshd->bthd", softmax(scores, axis=-1), v)


def attention_init(key: Any, d_model: int, n_heads: int, n_kv_heads: int | None = None,
                   use_bias: bool = False) -> dict:
    n_kv = n_kv_heads or n_heads
    head_dim = d_model // n_heads
    kq, kk, kv, ko = random.split(key, 4)
    return {"q": linear_init(kq, d_model, n_heads * head_dim, use_bias),
            "k": linear_init(kk, d_model, n_kv * head_dim, use_bias),
            "v": linear_init(kv, d_model, n_kv * head_dim, use_bias),
            "o": linear_init(ko, n_heads * head_dim, d_model, use_bias)}


def multi_head_attention(params: dict, x: Any, *, n_heads: int, n_kv_heads: int | None = None,
                         causal: bool = True, padding_mask: Any = None, rope: tuple | None = None,
                         cache: KVCache | None = None) -> tuple[Any, KVCache | None]:
    """Self-attention of ``x (B, T, d_model)``. Returns ``(out, new_cache)``.

    ``padding_mask (B, S)`` is True for real tokens. ``rope`` is ``rope_frequencies(...)``.
    With ``cache``, the new keys/values are written at ``cache.pos`` and the queries attend
    to everything written so far (positions continue from ``cache.pos``).
    """
    B, T, _ = x.shape
    n_kv = n_kv_heads or n_heads
    q = jnp.reshape(linear(params["q"], x), (B, T, n_heads, -1))
    k = jnp.reshape(linear(params["k"], x), (B, T, n_kv, -1))
    v = jnp.reshape(linear(params["v"], x), (B, T, n_kv, -1))
    start = jnp.zeros((), jnp.int32) if cache is None else cache.pos
    positions = jnp.broadcast_to(start + jnp.arange(T, dtype=jnp.int32), (B, T))
    if rope is not None:
        q, k = apply_rope(q, positions, rope), apply_rope(k, positions, rope)
    if cache is not None:
        zero = jnp.zeros((), jnp.int32)
        k_all = lax.dynamic_update_slice(cache.k, k.astype(cache.k.dtype), (zero, start, zero, zero))
        v_all = lax.dynamic_update_slice(cache.v, v.astype(cache.v.dtype), (zero, start, zero, zero))
        cache = KVCache(k_all, v_all, start + T)
        k, v = k_all, v_all
    S = k.shape[1]
    key_pos = jnp.arange(S, dtype=jnp.int32)
    mask = jnp.ones((B, 1, T, S), dtype=bool)
    if cache is not None:
        mask = mask & (key_pos < start + T)[None, None, None, :]
    if causal:
        mask = mask & (key_pos[None, :] <= positions[:, :, None])[:, None, :, :]
    if padding_mask is not None:
        mask = mask & padding_mask[:, None, None, :].astype(bool)
    out = dot_product_attention(q, k, v, mask)
    return linear(params["o"], jnp.reshape(out, (B, T, -1))), cache
