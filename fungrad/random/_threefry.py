"""The Threefry-2x32 counter-based hash and the key operations built on it.

``threefry2x32_p`` is the only primitive of ``fungrad.random``: it hashes a
pair of uint32 words ``(x1, x2)`` under a key ``(k1, k2)`` with 20 rounds of
add/rotate/xor (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC 2011), with the NumPy kernel of ``fungrad/lax/_counter_rng.py``, which
``lax.rng_bit_generator`` shares. Seeding, splitting, folding in and drawing
bits are written with ``fungrad.lax`` on top of it, so they work under every
transformation, and they follow JAX's default ("partitionable") scheme bit
for bit:

* element ``i`` of a draw of shape ``s`` hashes the counter pair
  ``(i >> 32, i & 0xFFFFFFFF)`` (``i`` is the row-major index into ``s``);
* ``split(key, s)[i] = hash(key, counter i)`` as a ``uint32[2]`` key;
* ``bits(key, s)[i] = x1 ^ x2`` of the same hash (32 bits; 8 and 16 bits
  truncate it, 64 bits concatenate ``x1`` and ``x2``);
* ``fold_in(key, d) = hash(key, (0, d))``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import core
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import prod
from fungrad.config import config
from fungrad.interpreters import ad, batching
from fungrad.lax._counter_rng import threefry2x32_hash
from fungrad.lax._prim import as_operand, broadcast_shapes

_U32 = np.dtype(np.uint32)
UINT_DTYPES = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16),
               32: _U32, 64: np.dtype(np.uint64)}

# --------------------------------------------------------------------------- threefry2x32

def _threefry2x32_impl(xp, k1, k2, x1, x2):
    if any(a.dtype != _U32 for a in (k1, k2, x1, x2)):
        raise TypeError("threefry2x32 requires uint32 operands")  # the shape rule says more
    return threefry2x32_hash(xp, k1, k2, x1, x2)


def _threefry2x32_abstract(k1, k2, x1, x2):
    avals = (k1, k2, x1, x2)
    if any(a.dtype != _U32 for a in avals):
        raise TypeError("threefry2x32: all arguments must be uint32, got "
                        f"{', '.join(a.str_short() for a in avals)}")
    shape = broadcast_shapes("threefry2x32", *(a.shape for a in avals))
    return [ShapedArray(shape, _U32), ShapedArray(shape, _U32)]


def _threefry2x32_batch(axis_size, vals, dims):
    # Operands broadcast NumPy-style: batched ones get their batch dimension in
    # front, followed by size-1 dimensions up to the common rank; unbatched ones
    # broadcast against that without being materialised per batch member.
    rank = max(core.get_aval(v).ndim - (d is not None) for v, d in zip(vals, dims))
    aligned = []
    for v, d in zip(vals, dims):
        if d is not None:
            v = batching.moveaxis(v, d, 0)
            shape = core.get_aval(v).shape
            v = lax.reshape(v, shape[:1] + (1,) * (rank + 1 - len(shape)) + shape[1:])
        aligned.append(v)
    return threefry2x32_p.bind(*aligned), [0, 0]


threefry2x32_p = Primitive("threefry2x32", multiple_results=True)
threefry2x32_p.def_impl(_threefry2x32_impl)
threefry2x32_p.def_abstract_eval(_threefry2x32_abstract)
threefry2x32_p.weak_type_rule = lambda weaks: False
ad.def_nondiff(threefry2x32_p)
batching.def_batch(threefry2x32_p, _threefry2x32_batch)


def threefry2x32(k1: Any, k2: Any, x1: Any, x2: Any) -> list:
    """Hash the uint32 words ``(x1, x2)`` under the key ``(k1, k2)`` (NumPy broadcasting).

    Returns the two hashed uint32 words. Counter-based: every element is hashed
    independently, so any element of a stream can be computed without the others.
    """
    return threefry2x32_p.bind(*(as_operand(a) for a in (k1, k2, x1, x2)))


# --------------------------------------------------------------------------- key operations

def _u32(value: int) -> Any:
    return as_operand(np.uint32(value))


def _key_words(key: Any) -> tuple[Any, Any]:
    """The two uint32 words of a single raw key ``uint32[2]``."""
    return (lax.index_in_dim(key, 0, 0, keepdims=False),
            lax.index_in_dim(key, 1, 0, keepdims=False))


def _stack_words(w1: Any, w2: Any) -> Any:
    """Stack two uint32 arrays of one shape into keys ``uint32[..., 2]``."""
    ndim = core.get_aval(w1).ndim
    return lax.concatenate([lax.expand_dims(w1, (ndim,)), lax.expand_dims(w2, (ndim,))], ndim)


def iota_2x32(shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The row-major index into ``shape`` as ``(high word, low word)`` uint32 counters.

    The high word is a uint32 scalar zero: arrays of 2**32 or more elements are
    not supported.
    """
    size = prod(shape)
    if size >= 2 ** 32:
        raise NotImplementedError(f"random draws of {size} >= 2**32 elements are not supported")
    return _u32(0), lax.reshape(lax.iota(_U32, size), shape)


def threefry_seed(seed: Any) -> Any:
    """A raw key ``uint32[2]`` from a Python int in int64 range or an integer scalar operand.

    The 64-bit seed is split into its high and low 32-bit words. Without x64,
    seeds are 32-bit integers, so the high word is zero and a Python int is
    first wrapped to int32, as JAX does.
    """
    if isinstance(seed, int):
        high = (seed % 2 ** 64) >> 32 if config.enable_x64 else 0
        return as_operand(np.array([high, seed % 2 ** 32], _U32))
    dtype = core.get_aval(seed).dtype
    low = lax.convert_element_type(seed, _U32)
    if dtype.itemsize == 8:
        high = lax.convert_element_type(
            lax.shift_right_logical(seed, as_operand(np.array(32, dtype))), _U32)
    else:
        high = lax.full((), 0, _U32)
    return _stack_words(high, low)


def threefry_split(key: Any, shape: tuple[int, ...]) -> Any:
    """``uint32[*shape, 2]``: one new key per element of ``shape``."""
    k1, k2 = _key_words(key)
    hi, lo = iota_2x32(shape)
    return _stack_words(*threefry2x32_p.bind(k1, k2, hi, lo))


def threefry_fold_in(key: Any, data: Any) -> Any:
    """A new key from ``key`` and a uint32 scalar ``data``."""
    k1, k2 = _key_words(key)
    return _stack_words(*threefry2x32_p.bind(k1, k2, _u32(0), data))


def threefry_random_bits(key: Any, bit_width: int, shape: tuple[int, ...]) -> Any:
    """Uniform random unsigned integers of ``bit_width`` bits and the given shape."""
    k1, k2 = _key_words(key)
    hi, lo = iota_2x32(shape)
    b1, b2 = threefry2x32_p.bind(k1, k2, hi, lo)
    dtype = UINT_DTYPES[bit_width]
    if bit_width == 64:
        wide1, wide2 = lax.convert_element_type(b1, dtype), lax.convert_element_type(b2, dtype)
        return lax.bitwise_or(lax.shift_left(wide1, as_operand(np.array(32, dtype))), wide2)
    bits = lax.bitwise_xor(b1, b2)
    return bits if bit_width == 32 else lax.convert_element_type(bits, dtype)
