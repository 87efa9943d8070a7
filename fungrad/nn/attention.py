"""Multi-head attention over params dicts: causal and padding masks, grouped-query
attention, rotary position embeddings, and a KV cache passed in and returned.

The cache is preallocated to ``max_len`` and written with ``dynamic_update_slice`` at a
(traced) position, so decoding keeps one shape and ``jit`` compiles one step.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad.nn.functions import logsumexp, softmax
from fungrad.nn.layers import dropout, linear, linear_init


class KVCache(NamedTuple):
    """A preallocated attention cache: keys and values ``(batch, max_len, n_kv_heads,
    head_dim)``, the next write slot ``pos`` (an int32 scalar shared by all rows), and
    ``valid (batch, max_len)``, True at the slots that hold a real (non-padding) token.

    Rows of a batch may hold prompts of different lengths, left-padded: a token's position
    (for RoPE or learned position embeddings) is the number of real tokens before it in its
    row, so ``valid`` is all the state that position bookkeeping needs."""
    k: Any
    v: Any
    pos: Any
    valid: Any


def init_kv_cache(batch: int, max_len: int, n_kv_heads: int, head_dim: int,
                  dtype: Any = jnp.float32) -> KVCache:
    """An empty cache for ``batch`` rows of up to ``max_len`` tokens."""
    shape = (batch, max_len, n_kv_heads, head_dim)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32),
                   jnp.zeros((batch, max_len), bool))


def token_positions(batch: int, length: int, padding_mask: Any = None,
                    cache: KVCache | None = None) -> Any:
    """Positions ``(batch, length)`` of new tokens: the count of real tokens before each one
    in its row (earlier ones in ``cache`` included). Padding tokens get position 0, as
    Hugging Face gives them a dummy position; they are masked out as keys anyway."""
    start = (jnp.zeros((batch,), jnp.int32) if cache is None
             else jnp.sum(cache.valid, axis=1, dtype=jnp.int32))
    if padding_mask is None:
        return start[:, None] + jnp.arange(length, dtype=jnp.int32)[None, :]
    real = padding_mask.astype(bool)
    before = jnp.cumsum(real, axis=1, dtype=jnp.int32) - 1
    return jnp.where(real, start[:, None] + before, 0)


def write_cache(cache: KVCache, k: Any, v: Any, padding_mask: Any = None) -> KVCache:
    """Write ``k``/``v`` ``(B, T, n_kv, head_dim)`` at slot ``cache.pos`` and advance it."""
    B, T = k.shape[:2]
    zero, start = jnp.zeros((), jnp.int32), cache.pos
    real = jnp.ones((B, T), bool) if padding_mask is None else padding_mask.astype(bool)
    at = (zero, start, zero, zero)
    return KVCache(lax.dynamic_update_slice(cache.k, k.astype(cache.k.dtype), at),
                   lax.dynamic_update_slice(cache.v, v.astype(cache.v.dtype), at),
                   start + T, lax.dynamic_update_slice(cache.valid, real, (zero, start)))


def attention_mask(T: int, S: int, *, causal: bool = True, start: Any = 0,
                   key_valid: Any = None) -> Any:
    """The boolean mask ``(B or 1, 1, T, S)``: query ``t`` (at slot ``start + t``) may see key
    slot ``s`` when ``s <= start + t`` (if ``causal``) and ``key_valid[:, s]`` holds."""
    key_slot = jnp.arange(S, dtype=jnp.int32)
    query_slot = start + jnp.arange(T, dtype=jnp.int32)
    mask = jnp.ones((1, 1, T, S), bool)
    if causal:
        mask = mask & (key_slot[None, :] <= query_slot[:, None])[None, None]
    if key_valid is not None:
        mask = mask & key_valid.astype(bool)[:, None, None, :]
    return mask


def rope_frequencies(head_dim: int, max_len: int, base: float = 10000.0, *,
                     scaling: Callable[[Any], Any] | None = None) -> tuple[Any, Any]:
    """Cosines and sines ``(max_len, head_dim // 2)`` for rotary position embeddings.

    ``scaling`` maps the float32 inverse frequencies ``base ** (-2i / head_dim)`` to the
    ones to use (context-extension schemes such as LLaMA's ``linear`` and ``llama3``)."""
    inv_freq = 1.0 / (base ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    if scaling is not None:
        inv_freq = scaling(inv_freq)
    angles = jnp.arange(max_len, dtype=jnp.float32)[:, None] * inv_freq[None, :]
    return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: Any, positions: Any, freqs: tuple[Any, Any]) -> Any:
    """Rotate pairs (first half, second half) of the last axis of ``x (B, T, H, D)``."""
    cos, sin = (jnp.take(f, positions, axis=0)[:, :, None, :] for f in freqs)
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def _as_4d(x: Any) -> Any:
    """``x`` with leading axes added up to 4 (an unbatched ``(T, N, H)`` becomes a batch of 1)."""
    x = jnp.asarray(x)
    return jnp.expand_dims(x, tuple(range(4 - x.ndim))) if x.ndim < 4 else x


def _combined_mask(T: int, S: int, mask: Any, is_causal: bool, query_seq_lengths: Any,
                   key_value_seq_lengths: Any, local_window_size: tuple[int, int] | None) -> Any:
    """Every restriction as one boolean mask broadcastable to ``(B, N, T, S)`` (None when
    there is none): True where query ``t`` may attend to key ``s``."""
    query_pos = jnp.arange(T, dtype=jnp.int32)[:, None]
    key_pos = jnp.arange(S, dtype=jnp.int32)[None, :]
    allowed = [] if mask is None else [mask]
    if is_causal:
        allowed.append((key_pos <= query_pos)[None, None])
    if local_window_size is not None:
        left, right = local_window_size
        allowed.append(((query_pos <= key_pos + left) & (query_pos >= key_pos - right))[None, None])
    if query_seq_lengths is not None:
        allowed.append((query_pos[None] < query_seq_lengths[:, None, None])[:, None])
    if key_value_seq_lengths is not None:
        allowed.append((key_pos[None] < key_value_seq_lengths[:, None, None])[:, None])
    if not allowed:
        return None
    combined = allowed[0]
    for more in allowed[1:]:
        combined = combined & more
    return combined


def dot_product_attention(query: Any, key: Any, value: Any, bias: Any = None, mask: Any = None,
                          *, scale: float | None = None, is_causal: bool = False,
                          query_seq_lengths: Any = None, key_value_seq_lengths: Any = None,
                          local_window_size: int | tuple[int, int] | None = None,
                          implementation: str | None = None, return_residual: bool = False,
                          dropout_rate: float = 0.0, dropout_key: Any = None) -> Any:
    """``softmax(query key^T * scale + bias, masked) value``, as ``jax.nn.dot_product_attention``.

    ``query (B, T, N, H)``, ``key``/``value (B, S, K, H)`` with ``N`` a multiple of ``K``
    (grouped-query attention); without ``B`` they are one batch. ``scale`` defaults to
    ``1 / sqrt(H)``; ``bias`` is added to the logits and the boolean ``mask`` (True where
    attention is allowed) broadcasts to ``(B, N, T, S)``. ``is_causal``, ``local_window_size``
    (``(left, right)``, or one int for both) and the per-row ``query_seq_lengths`` /
    ``key_value_seq_lengths`` restrict it further; a masked logit becomes a large negative
    number, so a query that may see nothing attends evenly. The softmax runs in float32
    (bfloat16/float16 inputs too); queries beyond ``query_seq_lengths`` give zeros.
    ``return_residual`` also returns the logits' logsumexp ``(B, T, N)``. ``implementation``
    may be None or ``"xla"`` (the only one here). fungrad's extension: with ``dropout_key``,
    attention weights are dropped at ``dropout_rate`` (GPT-2 ``attn_pdrop``).
    """
    if implementation not in (None, "xla"):
        raise ValueError(f"dot_product_attention: implementation {implementation!r} is not "
                         "available; use None or 'xla'")
    out_shape = jnp.shape(query)
    q, k, v = _as_4d(query), _as_4d(key), _as_4d(value)
    n_heads, n_kv = q.shape[2], k.shape[2]
    if n_heads % n_kv:
        raise ValueError(f"dot_product_attention: {n_heads} query heads are not a multiple of "
                         f"{n_kv} key/value heads")
    if v.shape != k.shape:
        raise ValueError(f"dot_product_attention: value shape {v.shape} does not match key "
                         f"shape {k.shape}")
    if mask is not None and jnp.asarray(mask).dtype != jnp.bool_:
        raise ValueError(f"dot_product_attention: mask must be boolean, got "
                         f"{jnp.asarray(mask).dtype}")
    if n_kv != n_heads:
        k = jnp.repeat(k, n_heads // n_kv, axis=2)
        v = jnp.repeat(v, n_heads // n_kv, axis=2)
    logits_dtype = jnp.promote_types(q.dtype, jnp.float32)
    logits = jnp.einsum("btnh,bsnh->bnts", q, k, preferred_element_type=logits_dtype)
    logits = logits * jnp.asarray(1.0 / math.sqrt(q.shape[-1]) if scale is None else scale,
                                  logits_dtype)
    if bias is not None:
        logits = (logits + _as_4d(bias)).astype(logits_dtype)
    window = ((local_window_size, local_window_size) if isinstance(local_window_size, int)
              else local_window_size)
    allowed = _combined_mask(q.shape[1], k.shape[1], None if mask is None else _as_4d(mask),
                             is_causal, query_seq_lengths, key_value_seq_lengths, window)
    if allowed is not None:
        large_negative = -0.7 * min(float(jnp.finfo(logits_dtype).max),
                                    float(jnp.finfo(jnp.float32).max))
        logits = jnp.where(allowed, logits, jnp.asarray(large_negative, logits_dtype))
    logits = logits.astype(jnp.float32)
    weights = softmax(logits, axis=-1).astype(k.dtype)
    if dropout_key is not None:
        weights = dropout(dropout_key, weights, dropout_rate)
    out = jnp.einsum("bnts,bsnh->btnh", weights, v)
    if query_seq_lengths is not None:
        real = jnp.arange(q.shape[1])[None, :] < query_seq_lengths[:, None]
        out = out * real[:, :, None, None].astype(out.dtype)
    out = jnp.reshape(out, out_shape)
    if not return_residual:
        return out
    residual = lax.stop_gradient(logsumexp(logits, axis=-1).astype(k.dtype))
    return out, jnp.reshape(jnp.transpose(residual, (0, 2, 1)), out_shape[:-1])


def attention_init(key: Any, d_model: int, n_heads: int, n_kv_heads: int | None = None,
                   use_bias: bool = False, head_dim: int | None = None) -> dict:
    """Query/key/value/output projections; ``head_dim`` defaults to ``d_model // n_heads``."""
    n_kv = n_kv_heads or n_heads
    head_dim = head_dim or d_model // n_heads
    kq, kk, kv, ko = random.split(key, 4)
    return {"q": linear_init(kq, d_model, n_heads * head_dim, use_bias),
            "k": linear_init(kk, d_model, n_kv * head_dim, use_bias),
            "v": linear_init(kv, d_model, n_kv * head_dim, use_bias),
            "o": linear_init(ko, n_heads * head_dim, d_model, use_bias)}


def multi_head_attention(params: dict, x: Any, *, n_heads: int, n_kv_heads: int | None = None,
                         causal: bool = True, padding_mask: Any = None, rope: tuple | None = None,
                         positions: Any = None, cache: KVCache | None = None,
                         dropout_rate: float = 0.0,
                         dropout_key: Any = None) -> tuple[Any, KVCache | None]:
    """Self-attention of ``x (B, T, d_model)``. Returns ``(out, new_cache)``.

    ``padding_mask (B, T)`` is True for real tokens (left padding for batched prompts of
    different lengths). ``rope`` is ``rope_frequencies(...)``, applied at ``positions``
    (default :func:`token_positions`). With ``cache``, the new keys/values are written at
    slot ``cache.pos`` and the queries attend to every real token written so far.
    ``dropout_key`` turns on dropout of the attention weights at ``dropout_rate``.
    """
    B, T, _ = x.shape
    n_kv = n_kv_heads or n_heads
    q = jnp.reshape(linear(params["q"], x), (B, T, n_heads, -1))
    k = jnp.reshape(linear(params["k"], x), (B, T, n_kv, -1))
    v = jnp.reshape(linear(params["v"], x), (B, T, n_kv, -1))
    if rope is not None:
        if positions is None:
            positions = token_positions(B, T, padding_mask, cache)
        q, k = apply_rope(q, positions, rope), apply_rope(k, positions, rope)
    out, cache = cached_attention(q, k, v, causal=causal, padding_mask=padding_mask, cache=cache,
                                  dropout_rate=dropout_rate, dropout_key=dropout_key)
    return linear(params["o"], jnp.reshape(out, (B, T, -1))), cache


def cached_attention(q: Any, k: Any, v: Any, *, causal: bool = True, padding_mask: Any = None,
                     cache: KVCache | None = None, dropout_rate: float = 0.0,
                     dropout_key: Any = None) -> tuple[Any, KVCache | None]:
    """Attention of ``q (B, T, H, D)`` over ``k``/``v`` and, with ``cache``, over every real
    token written before them; writes ``k``/``v`` into the cache. Returns ``(out, new_cache)``."""
    T = q.shape[1]
    if cache is None:
        mask = attention_mask(T, T, causal=causal, key_valid=padding_mask)
        out = dot_product_attention(q, k, v, mask=mask, dropout_rate=dropout_rate,
                                    dropout_key=dropout_key)
        return out, None
    start = cache.pos
    cache = write_cache(cache, k, v, padding_mask)
    mask = attention_mask(T, cache.k.shape[1], causal=causal, start=start, key_valid=cache.valid)
    return dot_product_attention(q, cache.k, cache.v, mask=mask, dropout_rate=dropout_rate,
                                 dropout_key=dropout_key), cache
