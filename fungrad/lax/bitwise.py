"""Bitwise and logical primitives: not, and, or, xor, shifts, population count, clz.

Integer (and, for not/and/or/xor, boolean) operands; none is differentiable.
Shifts follow XLA: the shift amount is read as unsigned, and shifting by the bit
width or more gives 0 (or the sign fill for ``shift_right_arithmetic``) instead
of C's undefined behaviour. Results keep the operands' dtype; unsigned arithmetic
wraps around, which the random-number generator relies on.
"""
from __future__ import annotations

import numpy as np

from fungrad._core import lowering
from fungrad.interpreters import ad
from fungrad.lax._prim import INT, INT_OR_BOOL
from fungrad.lax._ops import binop, unop

_UNSIGNED = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32),
             8: np.dtype(np.uint64)}
_SIGNED = {1: np.dtype(np.int8), 2: np.dtype(np.int16), 4: np.dtype(np.int32),
           8: np.dtype(np.int64)}


# --------------------------------------------------------------------------- logical

not_p, bitwise_not = unop("not", lambda xp, x: xp.invert(x), INT_OR_BOOL,
                          "Elementwise bitwise NOT, logical NOT on booleans "
                          "(``jax.lax.bitwise_not``).", op_name="bitwise_not")
ad.def_nondiff(not_p)
lowering.def_ufunc(not_p, "invert")
lowering.def_cuda(not_p, "(~{})", b="(!{})")

and_p, bitwise_and = binop("and", lambda xp, x, y: xp.bitwise_and(x, y), INT_OR_BOOL,
                           "Elementwise bitwise AND, logical AND on booleans "
                           "(``jax.lax.bitwise_and``).", op_name="bitwise_and")
ad.def_nondiff(and_p)
lowering.def_ufunc(and_p, "bitwise_and")
lowering.def_cuda(and_p, "({} & {})")

or_p, bitwise_or = binop("or", lambda xp, x, y: xp.bitwise_or(x, y), INT_OR_BOOL,
                         "Elementwise bitwise OR, logical OR on booleans "
                         "(``jax.lax.bitwise_or``).", op_name="bitwise_or")
ad.def_nondiff(or_p)
lowering.def_ufunc(or_p, "bitwise_or")
lowering.def_cuda(or_p, "({} | {})")

xor_p, bitwise_xor = binop("xor", lambda xp, x, y: xp.bitwise_xor(x, y), INT_OR_BOOL,
                           "Elementwise bitwise XOR, logical XOR on booleans "
                           "(``jax.lax.bitwise_xor``).", op_name="bitwise_xor")
ad.def_nondiff(xor_p)
lowering.def_ufunc(xor_p, "bitwise_xor")
lowering.def_cuda(xor_p, "({} ^ {})")


# --------------------------------------------------------------------------- shifts

def _shift_amount(xp, x, s):
    """``s`` read as unsigned, whether it is below the bit width, and a safe amount."""
    width = x.dtype.itemsize * 8
    s = s.astype(_UNSIGNED[x.dtype.itemsize])
    in_range = s < width
    return in_range, xp.where(in_range, s, xp.zeros((), s.dtype))


def _shift_left(xp, x, s):
    in_range, s = _shift_amount(xp, x, s)
    u = xp.left_shift(x.astype(s.dtype), s).astype(x.dtype)  # unsigned: wraps, no overflow
    return xp.where(in_range, u, xp.zeros((), x.dtype))


def _shift_right_logical(xp, x, s):
    in_range, s = _shift_amount(xp, x, s)
    u = xp.right_shift(x.astype(s.dtype), s).astype(x.dtype)  # unsigned: zeros come in
    return xp.where(in_range, u, xp.zeros((), x.dtype))


def _shift_right_arithmetic(xp, x, s):
    in_range, s = _shift_amount(xp, x, s)
    signed = _SIGNED[x.dtype.itemsize]
    s = xp.where(in_range, s, xp.full((), x.dtype.itemsize * 8 - 1, s.dtype)).astype(signed)
    return xp.right_shift(x.astype(signed), s).astype(x.dtype)  # signed: the sign comes in


shift_left_p, shift_left = binop("shift_left", _shift_left, INT,
                                 "Elementwise ``x << y``; 0 when ``y`` is at least the bit "
                                 "width (``jax.lax.shift_left``).")
ad.def_nondiff(shift_left_p)
lowering.def_cuda(shift_left_p, "(({t})fg_shl((unsigned int){}, (unsigned int){}))")

shift_right_logical_p, shift_right_logical = binop(
    "shift_right_logical", _shift_right_logical, INT,
    "Elementwise logical right shift (zeros shifted in); 0 when ``y`` is at least the bit "
    "width (``jax.lax.shift_right_logical``).")
ad.def_nondiff(shift_right_logical_p)
lowering.def_cuda(shift_right_logical_p, "(({t})fg_shr((unsigned int){}, (unsigned int){}))")

shift_right_arithmetic_p, shift_right_arithmetic = binop(
    "shift_right_arithmetic", _shift_right_arithmetic, INT,
    "Elementwise arithmetic right shift (sign bits shifted in, also for unsigned dtypes) "
    "(``jax.lax.shift_right_arithmetic``).")
ad.def_nondiff(shift_right_arithmetic_p)
lowering.def_cuda(shift_right_arithmetic_p, "(({t})fg_sar((int){}, (unsigned int){}))")


# --------------------------------------------------------------------------- bit counts

def _repeat_byte(byte: int, nbytes: int) -> int:
    return int.from_bytes(bytes([byte]) * nbytes, "little")


def _population_count(xp, x):
    """Count set bits with the branch-free SWAR reduction, in the unsigned dtype.

    NumPy ufuncs rather than operators: on NumPy scalars, operators warn on the
    intended wrap-around of the final multiplication."""
    n = x.dtype.itemsize
    u = _UNSIGNED[n].type
    v = x.astype(_UNSIGNED[n])
    v = xp.subtract(v, xp.bitwise_and(xp.right_shift(v, u(1)), u(_repeat_byte(0x55, n))))
    m2 = u(_repeat_byte(0x33, n))
    v = xp.add(xp.bitwise_and(v, m2), xp.bitwise_and(xp.right_shift(v, u(2)), m2))
    v = xp.bitwise_and(xp.add(v, xp.right_shift(v, u(4))), u(_repeat_byte(0x0F, n)))
    return xp.right_shift(xp.multiply(v, u(_repeat_byte(0x01, n))), u(8 * n - 8)).astype(x.dtype)


population_count_p, population_count = unop(
    "population_count", _population_count, INT,
    "Elementwise number of set bits (``jax.lax.population_count``).")
ad.def_nondiff(population_count_p)


def _clz(xp, x):
    """Count leading zeros by binary search over halves of the word."""
    width = x.dtype.itemsize * 8
    u = _UNSIGNED[x.dtype.itemsize]
    v = x.astype(u)
    count = xp.full(v.shape, width, u)
    step = width // 2
    while step:
        upper = xp.right_shift(v, u.type(step))
        nonzero = upper != 0
        count = xp.where(nonzero, xp.subtract(count, u.type(step)), count)
        v = xp.where(nonzero, upper, v)
        step //= 2
    return xp.subtract(count, v).astype(x.dtype)  # v is now 1 if any bit was set, else 0


clz_p, clz = unop("clz", _clz, INT, "Elementwise count of leading zero bits (``jax.lax.clz``).")
ad.def_nondiff(clz_p)


__all__ = [
    "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor",
    "not_p", "and_p", "or_p", "xor_p", "shift_left", "shift_left_p", "shift_right_logical",
    "shift_right_logical_p", "shift_right_arithmetic", "shift_right_arithmetic_p",
    "population_count", "population_count_p", "clz", "clz_p",
]
