"""``max``, ``min`` and ``sign`` on floats with JAX's signed zeros, for the impls and the
compiled lowerings of ``fungrad.lax.elementwise``.

XLA follows IEEE 754-2019: ``max(+0, -0) = max(-0, +0) = +0``, ``min(+0, -0) = -0`` and
``sign(-0) = -0``. NumPy's ``maximum``/``minimum`` return one operand of a tie (for
float32/float64 on x86 the second, for float16 the first) and ``sign(-0)`` is ``+0``.

The common cases cost nothing more: when one operand is a scalar (``relu``'s ``max(x, 0)``,
a literal under ``jit``) the operands are ordered, once the backend's tie rule for the dtype is
known (probed once), so that the tie returns the operand JAX would. Two arrays are fixed up
only where the result is zero, after one pass that finds out whether there is any;
``sign`` costs the same pass, and a ``copysign`` when there are zeros.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad._core import dtypes

_TIE_RULES: dict[tuple[str, np.dtype], bool | None] = {}


def tie_goes_to_second(xp: Any, dtype: Any) -> bool | None:
    """Whether ``xp.maximum`` and ``xp.minimum`` return their second operand on every tie of
    two zeros of ``dtype`` (True), their first (False), or neither consistently (None):
    probed once per backend and dtype, on arrays (a SIMD body and a tail) and scalars."""
    key = (xp.__name__, np.dtype(dtype))
    if key not in _TIE_RULES:
        pos = xp.zeros(35, dtype=dtype)
        neg = -pos
        pairs = [(pos, neg), (neg, pos), (pos, neg[:1]), (neg, pos[:1]), (pos[:1], neg),
                 (neg[:1], pos)]
        rules = set()
        for f in (xp.maximum, xp.minimum):
            for a, b in pairs:
                got = xp.signbit(f(a, b))
                for rule, source in ((True, b), (False, a)):
                    if bool(xp.all(got == xp.signbit(xp.broadcast_to(source, got.shape)))):
                        rules.add(rule)
                        break
                else:
                    rules.add(None)
        _TIE_RULES[key] = rules.pop() if len(rules) == 1 else None
    return _TIE_RULES[key]


def scalar_goes_second(xp: Any, dtype: Any, signbit: bool, is_max: bool) -> bool | None:
    """For ``max``/``min`` of an array and a scalar zero with sign ``signbit``: whether to
    pass the scalar as the second operand (True) or the first (False) so that a tie returns
    what JAX returns (for ``max`` a +0, for ``min`` a -0, else the array's zero); None when
    the backend's tie rule is not consistent."""
    second = tie_goes_to_second(xp, dtype)
    return None if second is None else (signbit != is_max) == second


def extremum(xp: Any, x: Any, y: Any, is_max: bool, out: Any = None) -> Any:
    """``xp.maximum(x, y)`` (``is_max``) or ``xp.minimum(x, y)`` with JAX's signed zeros,
    written into ``out`` when given (which may be one of the operands); ``y`` may be a
    Python scalar."""
    f = xp.maximum if is_max else xp.minimum
    if not dtypes.is_float(np.dtype(x.dtype)):
        return f(x, y, out=out)
    for a, b in ((x, y), (y, x)):  # y may be a Python scalar
        if np.size(b) == 1 and np.size(a) != 1:
            value = b.item() if hasattr(b, "item") else b
            if value != 0:  # no tie of zeros (and a NaN wins either way)
                return f(x, y, out=out)
            second = scalar_goes_second(xp, x.dtype, bool(np.signbit(value)), is_max)
            if second is not None:
                return f(a, b, out=out) if second else f(b, a, out=out)
    result = fix_zero_ties(xp, f(x, y), x, y, is_max)
    if out is None:
        return result
    xp.copyto(out, result)
    return out


def fix_zero_ties(xp: Any, result: Any, x: Any, y: Any, is_max: bool) -> Any:
    """``result = xp.maximum(x, y)`` (or ``minimum``) with its zeros given JAX's sign: for
    ``max`` -0 only where both operands have the sign bit, for ``min`` where either has.
    Costs one comparison pass when ``result`` has no zero (a SIMD ``== 0`` and a boolean
    ``any``: faster than ``all()`` on floats)."""
    zeros = result == 0
    if not zeros.any():
        return result
    signs = xp.signbit(x) & xp.signbit(y) if is_max else xp.signbit(x) | xp.signbit(y)
    zero = xp.where(signs, -0.0, 0.0).astype(result.dtype)
    return xp.where(zeros, zero, result)


def sign(xp: Any, x: Any) -> Any:
    """``xp.sign(x)`` keeping the sign of a zero for floats (``sign(-0) = -0``, as XLA)."""
    out = xp.sign(x)
    if not dtypes.is_float(np.dtype(x.dtype)) or not (out == 0).any():  # no zero to fix
        return out
    return xp.copysign(out, x)
