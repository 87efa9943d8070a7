"""Counter-based hash kernels on NumPy (or CuPy) arrays: Threefry-2x32 and Philox-4x32-10.

Both ciphers map a key and a counter to pseudo-random words using only uint32 arithmetic,
which wraps modulo 2**32 as they require (Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3", SC 2011). Every element is hashed independently of the others, so a stream
can be computed in any order and in blocks. These are the kernels behind
``fungrad.random``'s ``threefry2x32_p`` and ``lax.rng_bit_generator``'s two algorithms;
the primitives that call them live with their rules in ``fungrad/random/_threefry.py``
and ``fungrad/lax/rng.py``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from fungrad._core.util import prod, usable_cpus

U32 = np.dtype(np.uint32)
U64 = np.dtype(np.uint64)

# --------------------------------------------------------------------------- threefry2x32

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_PARITY = np.uint32(0x1BD11BDA)
# On the CPU, large arrays are hashed in blocks of this many elements on a few
# threads (NumPy releases the GIL inside ufuncs); each block's working set stays
# in the cache across the ~110 passes of the 20 rounds.
_CPU_BLOCK = 1 << 18
_pool: tuple[int, ThreadPoolExecutor] | None = None


def cpu_pool() -> ThreadPoolExecutor:
    """A thread pool for this process (re-created in a forked child)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(min(usable_cpus(), 8)))
    return _pool[1]


def _hash_block(xp, k1, k2, x1, x2, y1, y2) -> None:
    """Threefry-2x32 (20 rounds) of ``(x1, x2)`` under ``(k1, k2)``, written into ``y1, y2``.

    All operands are 1-d uint32 arrays of the block's length or of length 1.
    """
    ks = (k1, k2, k1 ^ k2 ^ _KEY_PARITY)
    xp.add(x1, k1, out=y1)
    xp.add(x2, k2, out=y2)
    tmp = xp.empty_like(y2)
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            y1 += y2
            xp.left_shift(y2, np.uint32(r), out=tmp)  # y2 = rotate_left(y2, r)
            xp.right_shift(y2, np.uint32(32 - r), out=y2)
            y2 |= tmp
            y2 ^= y1
        y1 += ks[(i + 1) % 3]
        y2 += ks[(i + 2) % 3]
        y2 += np.uint32(i + 1)


def threefry2x32_hash(xp: Any, k1: Any, k2: Any, x1: Any, x2: Any) -> list:
    """The two Threefry-2x32 output words of the uint32 words ``(x1, x2)`` under the key
    ``(k1, k2)``, all four broadcast against each other (NumPy's rules)."""
    shape = np.broadcast_shapes(k1.shape, k2.shape, x1.shape, x2.shape)
    size = prod(shape)

    def flat(a):  # scalars stay length-1 and broadcast inside the block
        if a.size == 1:
            return xp.asarray(a, dtype=U32).reshape(1)
        return xp.ascontiguousarray(xp.broadcast_to(a, shape)).reshape(-1)

    k1, k2, x1, x2 = flat(k1), flat(k2), flat(x1), flat(x2)
    y1, y2 = xp.empty(size, U32), xp.empty(size, U32)
    if xp is not np or size <= _CPU_BLOCK:
        _hash_block(xp, k1, k2, x1, x2, y1, y2)
    else:
        def hash_range(start: int) -> None:
            block = slice(start, start + _CPU_BLOCK)
            pick = lambda a: a if a.shape[0] == 1 else a[block]  # noqa: E731
            _hash_block(xp, pick(k1), pick(k2), pick(x1), pick(x2), y1[block], y2[block])
        list(cpu_pool().map(hash_range, range(0, size, _CPU_BLOCK)))
    return [y1.reshape(shape), y2.reshape(shape)]


# --------------------------------------------------------------------------- philox4x32

# Philox-4x32's multipliers and Weyl key increments (Salmon et al., table 2).
_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_PHILOX_ROUNDS = 10


def philox4x32(key: tuple[int, int], words: tuple[Any, Any, Any, Any]) -> tuple:
    """Philox-4x32-10 of the counter ``words`` (four uint32 arrays of one shape, least
    significant first) under the two-word ``key`` (Python ints): four uint32 arrays.

    Each round multiplies words 0 and 2 by the round constants as 64-bit products and mixes
    their high halves with the other words and the key, which then advances by the Weyl
    increments; this is XLA's ``Philox4x32`` word for word.
    """
    x0, x1, x2, x3 = words
    k0, k1 = key
    for _ in range(_PHILOX_ROUNDS):
        lo0, hi0 = split_u64(x0.astype(U64) * _PHILOX_M[0])
        lo1, hi1 = split_u64(x2.astype(U64) * _PHILOX_M[1])
        x0, x1, x2, x3 = hi1 ^ x1 ^ np.uint32(k0), lo1, hi0 ^ x3 ^ np.uint32(k1), lo0
        k0, k1 = (k0 + _PHILOX_W[0]) % 2 ** 32, (k1 + _PHILOX_W[1]) % 2 ** 32
    return x0, x1, x2, x3


def split_u64(values: Any) -> tuple[Any, Any]:
    """The low and high uint32 words of uint64 ``values``."""
    return values.astype(U32), (values >> np.uint64(32)).astype(U32)


def join_u32(low: Any, high: Any) -> Any:
    """uint64 values from their low and high uint32 words."""
    return low.astype(U64) | (high.astype(U64) << np.uint64(32))
