"""XLA's own random number operations: ``rng_bit_generator`` and ``rng_uniform``.

``rng_bit_generator(key, shape, dtype, algorithm)`` is XLA's ``RngBitGenerator``: a pure
function of its key that returns the key advanced past the bits it drew. The key is
``uint32[4]`` (or ``uint64[2]`` with x64), read as two 64-bit words, ``s0`` (the first two
uint32s, low one first) and ``s1``: ``s0`` keys the cipher, ``s1`` counts.

* ``RNG_THREE_FRY``: Threefry-2x32 keyed by the two halves of ``s0`` hashes the 64-bit
  counters ``s1 + i`` (as two words, low first). 64-bit values join the two output words
  (the first low). For narrower values the shape is halved along its first even dimension
  (else its largest, rounded up): counter ``i`` of the half shape gives the pair of
  neighbours ``2j, 2j + 1`` along that dimension, the first word first; 8- and 16-bit
  values keep the low bits. The new ``s1`` is ``s1`` plus the number of counters.
* ``RNG_PHILOX``, and ``RNG_DEFAULT`` (Philox on XLA's CPU and GPU backends):
  Philox-4x32-10 keyed by the two halves of ``s0`` hashes the 128-bit counters
  ``s0 * 2**64 + s1 + j``; each gives four 32-bit values (two 64-bit ones, each joining a
  pair of words) in row-major order; 8- and 16-bit values keep the low bits of 32-bit ones.
  The new ``s1`` is ``s1`` plus the number of counters, modulo 2**64 (``s0`` is kept).

That is what XLA's ``RngBitGeneratorExpander`` and ``prng.cc`` compute, and so what JAX's
CPU backend returns, bit for bit.

``rng_uniform(a, b, shape)`` is XLA's stateful ``Rng`` with a uniform distribution: each
call draws new values in ``[a, b)`` from a hidden, process-wide Philox stream, as XLA does
from a per-program state keyed by its instruction ids, so the values are JAX's in kind
(the same conversions of the same kind of bits: floats from their mantissa bits, integers
``a + bits % (b - a)``) but not in their bits.
"""
from __future__ import annotations

import enum
import threading
from typing import Any

import numpy as np

from fungrad._core import dtypes
from fungrad._core.core import Primitive, ShapedArray, get_aval
from fungrad._core.lowering import def_compiler_traits
from fungrad._core.util import prod
from fungrad.interpreters import ad, batching
from fungrad.lax._counter_rng import U32, U64, join_u32, philox4x32, split_u64, threefry2x32_hash
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import as_operand, hashable_shape
from fungrad.lax.slicing import dynamic_update_index_in_dim, index_in_dim

__all__ = ["RandomAlgorithm", "rng_bit_generator", "rng_bit_generator_p", "rng_uniform",
           "rng_uniform_p"]

_WORD = 2 ** 32
_COUNTERS = 2 ** 64


class RandomAlgorithm(enum.IntEnum):
    """The bit generator of ``rng_bit_generator`` (``jax.lax.RandomAlgorithm``)."""

    RNG_DEFAULT = 0
    "The platform's default: Philox-4x32 on XLA's CPU and GPU backends."

    RNG_THREE_FRY = 1
    "Threefry-2x32."

    RNG_PHILOX = 2
    "Philox-4x32-10."

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- the two streams

def _threefry_bits(xp: Any, s0: int, s1: int, shape: tuple[int, ...],
                   wide: bool) -> tuple[Any, int]:
    """Threefry-2x32 values of ``shape`` (uint64 when ``wide``, else uint32) in XLA's layout,
    and the number of counters they used."""
    key = (xp.asarray(np.uint32(s0 % _WORD)), xp.asarray(np.uint32(s0 // _WORD)))

    def hashed(count: int) -> list:
        return threefry2x32_hash(xp, *key, *split_u64(xp.arange(count, dtype=U64) + U64.type(s1)))
    if wide:
        y0, y1 = hashed(prod(shape))
        return join_u32(y0, y1).reshape(shape), prod(shape)
    if not shape:
        return hashed(1)[0].reshape(()), 1
    d = next((i for i, n in enumerate(shape) if n % 2 == 0), int(np.argmax(shape)))
    half = shape[:d] + ((shape[d] + 1) // 2,) + shape[d + 1:]
    y0, y1 = hashed(prod(half))
    pairs = xp.stack([y0.reshape(half), y1.reshape(half)], axis=d + 1)
    merged = pairs.reshape(half[:d] + (2 * half[d],) + half[d + 1:])
    return merged[(slice(None),) * d + (slice(0, shape[d]),)], prod(half)


def _philox_counters(size: int, wide: bool) -> int:
    """How many 128-bit Philox counters ``size`` 32-bit (64-bit when ``wide``) values take."""
    return -(-size * (2 if wide else 1) // 4)


def _philox_bits(xp: Any, s0: int, s1: int, size: int, wide: bool) -> Any:
    """``size`` Philox-4x32-10 values in row-major order (uint64 when ``wide``, else uint32)
    from the counters ``s0 * 2**64 + s1 + j`` under the key ``s0``."""
    low = xp.arange(_philox_counters(size, wide), dtype=U64) + U64.type(s1)
    high = xp.where(low < U64.type(s1), U64.type((s0 + 1) % _COUNTERS), U64.type(s0))
    words = philox4x32((s0 % _WORD, s0 // _WORD), (*split_u64(low), *split_u64(high)))
    if wide:
        words = (join_u32(*words[:2]), join_u32(*words[2:]))
    return xp.stack(words, axis=1).reshape(-1)[:size]


def _host(x: Any) -> np.ndarray:
    """``x`` (a NumPy or CuPy buffer) on the host."""
    return np.asarray(x) if isinstance(x, (np.ndarray, np.generic)) else x.get()


# --------------------------------------------------------------------------- rng_bit_generator

_KEY_TYPES = frozenset({((4,), U32), ((2,), U64)})
BIT_DTYPES = frozenset(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))


def _rng_bit_generator_impl(xp, key, *, shape, dtype, algorithm):
    words = [int(w) for w in _host(key).reshape(-1)]
    s0, s1 = ((words[0] + words[1] * _WORD, words[2] + words[3] * _WORD)
              if key.dtype == U32 else tuple(words))
    wide = dtype.itemsize == 8
    if algorithm is RandomAlgorithm.RNG_THREE_FRY:
        bits, used = _threefry_bits(xp, s0, s1, shape, wide)
    else:
        bits = _philox_bits(xp, s0, s1, prod(shape), wide).reshape(shape)
        used = _philox_counters(prod(shape), wide)
    s1 = (s1 + used) % _COUNTERS
    new = ([s0 % _WORD, s0 // _WORD, s1 % _WORD, s1 // _WORD] if key.dtype == U32
           else [s0, s1])
    return [xp.asarray(np.array(new, key.dtype)), bits.astype(dtype)]


def _rng_bit_generator_abstract(key, *, shape, dtype, algorithm):
    if (key.shape, key.dtype) not in _KEY_TYPES:
        raise TypeError("rng_bit_generator: the key must be a uint32[4] array (or, with x64, "
                        f"a uint64[2] one), got {key.str_short()}")
    return [ShapedArray(key.shape, key.dtype, key.weak_type), ShapedArray(shape, dtype)]


def _rng_bit_generator_batch(axis_size, vals, dims, *, shape, dtype, algorithm):
    """JAX's rule: the members draw one stream of ``(axis_size, *shape)`` values from the
    first member's key, and only that key advances (the others come back unchanged)."""
    (keys,), (d,) = vals, dims
    keys = batching.moveaxis(keys, d, 0)
    new_key, bits = rng_bit_generator_p.bind(index_in_dim(keys, 0, 0, keepdims=False),
                                             shape=(axis_size, *shape), dtype=dtype,
                                             algorithm=algorithm)
    return [dynamic_update_index_in_dim(keys, new_key, 0, 0), bits], [0, 0]


rng_bit_generator_p = Primitive("rng_bit_generator", multiple_results=True)
rng_bit_generator_p.def_impl(_rng_bit_generator_impl)
rng_bit_generator_p.def_abstract_eval(_rng_bit_generator_abstract)
rng_bit_generator_p.weak_type_rule = lambda weak_flags, **params: [weak_flags[0], False]
ad.def_nondiff(rng_bit_generator_p)
batching.def_batch(rng_bit_generator_p, _rng_bit_generator_batch)


def rng_bit_generator(key: Any, shape: Any, dtype: Any = np.uint32,
                      algorithm: RandomAlgorithm = RandomAlgorithm.RNG_DEFAULT, *,
                      out_sharding: Any = None) -> tuple[Any, Any]:
    """Random bits from XLA's stateless bit generator (``jax.lax.rng_bit_generator``).

    A pure function of ``key``, bit for bit as XLA computes it (see the module docstring
    for the algorithms): the same key gives the same bits, so thread the returned key into
    the next call. ``fungrad.random`` is the friendlier interface.

    Args:
      key: the generator's state, a ``uint32[4]`` array (a ``uint64[2]`` one with x64).
      shape: the shape of the bits.
      dtype: ``uint8``, ``uint16``, ``uint32`` or ``uint64`` (``uint32`` without x64, as
        JAX canonicalises it).
      algorithm: a ``RandomAlgorithm`` (or its int value).
      out_sharding: the device for the results (see ``fungrad.lax._placement``); None
        leaves them where the operation runs.

    Returns:
      ``(new_key, bits)``: the key advanced past these bits, and the bits.

    Raises:
      TypeError: a dtype other than an unsigned integer, or a key of another type.
      ValueError: an unknown algorithm.

    Examples:
      >>> import numpy as np
      >>> from fungrad import lax
      >>> key = np.array([1, 2, 3, 4], np.uint32)
      >>> new_key, bits = lax.rng_bit_generator(key, (3,))
      >>> new_key
      Array([1, 2, 4, 4], dtype=uint32)
      >>> bits
      Array([ 512747620, 1298009047, 1267190206], dtype=uint32)
    """
    shape = hashable_shape(shape, "rng_bit_generator")
    dt = dtypes.canonicalize_dtype(dtypes.np_dtype(dtype))
    if dt not in BIT_DTYPES:
        raise TypeError(f"rng_bit_generator: unsupported dtype {dt.name}")
    key, algorithm = as_operand(key), RandomAlgorithm(algorithm)
    params = dict(shape=shape, dtype=dt, algorithm=algorithm)
    _rng_bit_generator_abstract(get_aval(key), **params)  # eagerly too: the same errors
    out = tuple(rng_bit_generator_p.bind(key, **params))
    if out_sharding is None:
        return out
    return with_out_sharding(out, out_sharding, "lax.rng_bit_generator")


# --------------------------------------------------------------------------- rng_uniform

# The hidden stream's Philox key (any constant) and its next counter, shared by every call.
_UNIFORM_KEY = 0x243F6A8885A308D3
_uniform_counter = 0
_uniform_lock = threading.Lock()


def _claim_counters(count: int) -> int:
    """The first of ``count`` counters of the hidden stream no call has used yet."""
    global _uniform_counter
    with _uniform_lock:
        start = _uniform_counter
        _uniform_counter = (start + count) % _COUNTERS
    return start


def _uniform_compute_dtype(dtype: np.dtype) -> np.dtype | None:
    """The dtype XLA draws ``dtype`` in (float32 for the 16-bit floats); None for dtypes
    XLA's ``Rng`` does not take."""
    if dtype in (dtypes.float16, dtypes.bfloat16):
        return dtypes.float32
    if dtype in (dtypes.float32, dtypes.float64, dtypes.int32, dtypes.uint32, dtypes.int64,
                 dtypes.uint64):
        return dtype
    return None


def _rng_uniform_impl(xp, a, b, *, shape):
    dt = _uniform_compute_dtype(a.dtype)
    lo, hi = a.astype(dt).reshape(1), b.astype(dt).reshape(1)
    size, wide = prod(shape), dt.itemsize == 8
    start = _claim_counters(_philox_counters(size, wide))
    bits = _philox_bits(xp, _UNIFORM_KEY, start, size, wide)
    if dtypes.is_float(dt):
        # XLA's ConvertRandomBitsToUniformFloatingPoint: the top mantissa-width bits as a
        # fraction in [0, 1), then scaled to [a, b)
        nmant = int(dtypes.finfo(dt).nmant)
        unit = (bits >> bits.dtype.type(8 * dt.itemsize - nmant)).astype(dt)
        out = unit * dt.type(2.0 ** -nmant) * (hi - lo) + lo
    else:
        # XLA's ConvertRandomBitsToUniformInt, in wrapping unsigned arithmetic: a plus the
        # bits modulo the span (the bits themselves when the span is 0), added in two halves
        span = hi.astype(bits.dtype) - lo.astype(bits.dtype)
        dist = xp.where(span == 0, bits, bits % xp.where(span == 0, 1, span).astype(bits.dtype))
        half = dist >> bits.dtype.type(1)
        out = (lo.astype(bits.dtype) + half + (dist - half)).astype(dt)
    return out.reshape(shape).astype(a.dtype)


def _rng_uniform_abstract(a, b, *, shape):
    if a.dtype != b.dtype:
        raise ValueError(f"Arguments to rng_uniform must have identical dtypes, got {a.dtype} "
                         f"and {b.dtype}.")
    if a.shape != () or b.shape != ():
        raise ValueError(f"Arguments to rng_uniform must be scalars; got shapes {a.shape} and "
                         f"{b.shape}.")
    if _uniform_compute_dtype(a.dtype) is None:
        raise ValueError(f"rng_uniform: unsupported dtype {a.dtype}; XLA's Rng draws float16, "
                         "bfloat16, float32, float64, int32, uint32, int64 and uint64 values")
    return ShapedArray(shape, a.dtype, a.weak_type and b.weak_type)


rng_uniform_p = Primitive("rng_uniform")
rng_uniform_p.def_impl(_rng_uniform_impl)
rng_uniform_p.def_abstract_eval(_rng_uniform_abstract)
ad.def_no_jvp(rng_uniform_p, "its values are drawn from a hidden state (JAX defines no "
                             "derivative either)")
batching.def_no_batch(rng_uniform_p, "it draws from a hidden state and has no batched form "
                                     "(JAX has no batching rule either); unbatched bounds work")
# Every run draws new values: never merged with another draw nor folded at compile time.
def_compiler_traits(rng_uniform_p, opaque=True)


def rng_uniform(a: Any, b: Any, shape: Any) -> Any:
    """Values drawn uniformly from ``[a, b)`` by XLA's stateful generator
    (``jax.lax.rng_uniform``, which JAX calls experimental and discourages).

    Every call, eager or compiled, draws new values from a hidden process-wide stream, so
    the results are not reproducible: use ``fungrad.random`` for that. As in XLA, floats
    take their mantissa bits from the stream and integers are ``a + bits % (b - a)``; with
    ``b <= a`` the result is whatever that arithmetic gives (XLA leaves it undefined).

    Args:
      a: the lower bound, a scalar.
      b: the upper bound, a scalar of ``a``'s dtype (float16, bfloat16, float32, float64,
        int32, uint32, int64 or uint64).
      shape: the shape of the result, a sequence of ints.

    Returns:
      An array of ``shape`` and ``a``'s dtype (weakly typed when both bounds are).

    Raises:
      ValueError: bounds of different dtypes, bounds that are not scalars, or a dtype
        XLA's ``Rng`` does not take.

    Examples:
      >>> from fungrad import lax
      >>> x = lax.rng_uniform(2.0, 3.0, (4,))
      >>> bool(((x >= 2.0) & (x < 3.0)).all()), x.shape
      (True, (4,))
    """
    shape = hashable_shape(tuple(shape), "rng_uniform")
    a, b = as_operand(a), as_operand(b)
    _rng_uniform_abstract(get_aval(a), get_aval(b), shape=shape)  # eagerly too: the same errors
    return rng_uniform_p.bind(a, b, shape=shape)
