"""Floating-point decomposition: ``frexp``, ``ldexp`` and ``spacing``, from the bits.

XLA has no such operations, and neither does ``lax``: they are written here from the IEEE
layout of the float (``finfo``'s ``nmant`` mantissa bits above which sit ``nexp`` exponent
bits), so they are exact for every finite value, subnormals included.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad.numpy._ufuncs_math import copysign, exp2, isinf, isnan
from fungrad.numpy._util import (aval, ensure_arraylike, promote_args_inexact,
                                 promote_dtypes_inexact, scalar_like, where as _where)
from fungrad.transforms.custom_derivatives import custom_jvp

_INT_OF_BITS = {16: np.int16, 32: np.int32, 64: np.int64}


def _real_float(fname: str, x: Any) -> Any:
    x, = promote_dtypes_inexact(x)
    if aval(x).dtype.kind == "c":
        raise TypeError(f"{fname}: complex inputs are not supported, got {aval(x).dtype}")
    return x


def frexp(x: Any, /) -> tuple[Any, Any]:
    """``(mantissa, exponent)`` with ``x == mantissa * 2**exponent``, ``|mantissa|`` in
    ``[0.5, 1)`` and an ``int32`` exponent (0 and ``x`` itself for 0, infinities and NaN)."""
    return _frexp(_real_float("frexp", ensure_arraylike("frexp", x)))


@custom_jvp
def _frexp(x: Any) -> tuple[Any, Any]:
    dtype = aval(x).dtype
    info = dtypes.finfo(dtype)
    int_t = _INT_OF_BITS[info.bits]
    # A subnormal is scaled up into the normal range first, its exponent corrected after.
    subnormal = lax.lt(lax.abs(x), scalar_like(info.tiny, x))
    scaled = _where(subnormal, lax.mul(x, scalar_like(2.0 ** info.nmant, x)), x)
    shift = _where(subnormal, lax.full((), -info.nmant, int_t), lax.full((), 0, int_t))
    bits = lax.bitcast_convert_type(scaled, int_t)
    field_mask = (1 << info.nexp) - 1
    half_exponent = -info.minexp  # the biased exponent field of 0.5
    field = lax.bitwise_and(lax.shift_right_logical(bits, scalar_like(info.nmant, bits)),
                            scalar_like(field_mask, bits))
    exponent = lax.add(lax.sub(field, scalar_like(half_exponent, bits)), shift)
    mantissa_bits = lax.bitwise_or(
        lax.bitwise_and(bits, scalar_like(~(field_mask << info.nmant), bits)),
        scalar_like(half_exponent << info.nmant, bits))
    mantissa = lax.bitcast_convert_type(mantissa_bits, dtype)
    special = lax.bitwise_or(lax.bitwise_or(isinf(x), isnan(x)), lax.eq(x, scalar_like(0, x)))
    exponent = _where(special, lax.full((), 0, int_t), exponent)
    return _where(special, x, mantissa), lax.convert_element_type(exponent, np.int32)


@_frexp.defjvp
def _frexp_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    mantissa, exponent = _frexp(x)
    scale = exp2(lax.neg(lax.convert_element_type(exponent, aval(t).dtype)))
    return (mantissa, exponent), (lax.mul(t, scale), np.zeros(aval(exponent).shape, dtypes.float0))


def ldexp(x1: Any, x2: Any, /) -> Any:
    """``x1 * 2**x2`` for floats ``x1`` and integers ``x2``, without overflowing in between
    (``ldexp(0.75, 128)`` is finite in float32 although ``2**128`` is not)."""
    x1, x2 = ensure_arraylike("ldexp", x1, x2)
    d1, d2 = aval(x1).dtype, aval(x2).dtype
    if d1.kind == "c" or d2.kind in "fc" or d2.kind == "V":
        raise ValueError(f"ldexp: x1 must be real and x2 an integer, got types {d1} and {d2}")
    x1, = promote_args_inexact("ldexp", x1)
    x1 = lax.convert_element_type(x1, aval(x1).dtype, weak_type=False)
    mantissa, exponent = frexp(x1)
    # The sum in floats: in integers it could wrap around (ldexp(1.0, 2**31 - 1) is inf).
    total = lax.add(lax.convert_element_type(exponent, aval(x1).dtype),
                    lax.convert_element_type(x2, aval(x1).dtype))
    # 2**total alone may overflow where the result does not: take one factor 2 into the
    # mantissa (|mantissa| < 1, so it stays finite).
    positive = lax.gt(total, scalar_like(0, total))
    mantissa = _where(positive, lax.mul(mantissa, scalar_like(2, mantissa)), mantissa)
    total = _where(positive, lax.sub(total, scalar_like(1, total)), total)
    out = lax.mul(mantissa, lax.pow(scalar_like(2, total), total))  # exact: exp2 may not be
    keep = lax.bitwise_or(isinf(x1), lax.eq(x1, scalar_like(0, x1)))
    return _where(keep, x1, out)


def spacing(x: Any, /) -> Any:
    """The distance from ``x`` to the next float away from zero (towards +inf in float16,
    as NumPy), signed as ``x``: ``spacing(1.0)`` is ``eps``."""
    x, = promote_args_inexact("spacing", ensure_arraylike("spacing", x))
    if aval(x).dtype.kind == "c":
        raise ValueError(f"spacing: complex inputs are not supported, got {aval(x).dtype}")
    x = lax.convert_element_type(x, aval(x).dtype, weak_type=False)
    inf = scalar_like(np.inf, x)
    if aval(x).dtype == np.float16:
        return lax.sub(lax.nextafter(x, inf), x)
    out = lax.sub(lax.nextafter(x, copysign(inf, x)), x)
    smallest = copysign(scalar_like(dtypes.finfo(aval(x).dtype).smallest_subnormal, x), x)
    return _where(lax.eq(out, scalar_like(0, out)), smallest, out)


__all__ = ["frexp", "ldexp", "spacing"]
