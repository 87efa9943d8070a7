"""``max``, ``min`` and ``sign`` on floats with JAX's signed zeros (and ``max``/``min`` of
complex values in XLA's lexicographic order), for the impls and the
compiled lowerings of ``fungrad.lax.elementwise``, and the max/min reductions (``reduce_max``,
``cummax``, ``reduce_window_max``, ``scatter_max`` and their min twins).

XLA follows IEEE 754-2019: ``max(+0, -0) = max(-0, +0) = +0``, ``min(+0, -0) = -0`` and
``sign(-0) = -0``. NumPy's ``maximum``/``minimum`` return one operand of a tie (for
float32/float64 on x86 the second, for float16 the first) and ``sign(-0)`` is ``+0``.

The common cases cost nothing more: when one operand is a scalar (``relu``'s ``max(x, 0)``,
a literal under ``jit``) the operands are ordered, once the backend's tie rule for the dtype is
known (probed once), so that the tie returns the operand JAX would. Two arrays are fixed up
only where the result is zero, after one pass that finds out whether there is any;
``sign`` costs the same pass, and a ``copysign`` when there are zeros. A reduction costs
the pass over its (smaller) result, and more only when that result has zeros.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fungrad._core import dtypes
from fungrad.backends.masked import may_hold

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
    if np.dtype(x.dtype).kind == "c":
        return _complex_extremum(xp, x, y, is_max, out)
    if not dtypes.is_float(np.dtype(x.dtype)):
        return f(x, y, out=out)
    for a, b in ((x, y), (y, x)):  # y may be a Python scalar
        if np.size(b) == 1 and np.size(a) != 1 and (xp is np or np.isscalar(b)):
            value = b.item() if hasattr(b, "item") else b  # (on a device: no read back)
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


def _complex_extremum(xp: Any, x: Any, y: Any, is_max: bool, out: Any) -> Any:
    """XLA's max (``is_max``) or min of complex values: ``x`` where it beats ``y`` by the real
    parts, or by the imaginary parts where the real parts are equal, else ``y``. So a NaN
    never wins a comparison and a tie returns ``y``; NumPy's ``maximum`` would propagate
    the NaN."""
    y = xp.asarray(y, dtype=x.dtype)
    beats = xp.greater if is_max else xp.less
    wins = xp.where(x.real == y.real, beats(x.imag, y.imag), beats(x.real, y.real))
    result = xp.where(wins, x, y)
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
    if not may_hold(xp, zeros):
        return result
    signs = xp.signbit(x) & xp.signbit(y) if is_max else xp.signbit(x) | xp.signbit(y)
    zero = xp.where(signs, -0.0, 0.0).astype(result.dtype)
    return xp.where(zeros, zero, result)


def fix_reduced_zeros(xp: Any, result: Any, x: Any, is_max: bool,
                      any_of: Callable[[Any], Any], out: Any = None) -> Any:
    """``result``, a max (``is_max``) or min reduction of ``x``, with its zeros given JAX's
    sign: a maximum of zeros is +0 when any of them is +0, a minimum -0 when any is -0
    (NumPy keeps whichever zero its loop met first or last). ``any_of(mask)`` reduces a
    boolean mask shaped like ``x`` as ``result`` was reduced (a logical or over the same
    axes, prefixes or windows). Written into ``out`` when given. Costs one pass over
    ``result`` when it has no zero, and when ``x`` has no negative number for ``max``."""
    if not dtypes.is_float(np.dtype(x.dtype)):
        return result
    zeros = result == 0
    if not may_hold(xp, zeros):
        return result
    if is_max and not may_hold(xp, xp.signbit(x)):  # every zero of x is +0, so is every tie's
        return result
    found = any_of(winning_zeros(xp, x, is_max))
    zero = xp.where(found != is_max, -0.0, 0.0).astype(result.dtype)
    fixed = xp.where(zeros, zero, result)
    if out is None:
        return fixed
    xp.copyto(out, fixed)
    return out


def winning_zeros(xp: Any, x: Any, is_max: bool) -> Any:
    """Where ``x`` holds the zero a tie of max (+0, ``is_max``) or min (-0) returns."""
    return (x == 0) & (xp.signbit(x) != is_max)


def fix_scattered_zeros(xp: Any, result: Any, operand: Any, index: Any, updates: Any,
                        is_max: bool) -> None:
    """Sign the zeros of ``result`` (flat: ``operand`` with ``updates`` combined in at the
    flat ``index`` by ``maximum.at`` or ``minimum.at``) as JAX does, in place: +0 where the
    maximum met a +0, among the operand's element and the updates scattered to it."""
    zeros = result == 0
    if not dtypes.is_float(np.dtype(result.dtype)) or not may_hold(xp, zeros):
        return
    found = winning_zeros(xp, operand, is_max).astype(np.int32)  # (CuPy's atomics: 32 bits)
    xp.maximum.at(found, index, winning_zeros(xp, updates, is_max).astype(np.int32))
    signed = xp.where(found != is_max, -0.0, 0.0).astype(result.dtype)
    xp.copyto(result, xp.where(zeros, signed, result))


def reduced_extremum(xp: Any, reduce: Callable[..., Any], x: Any, axis: tuple, is_max: bool,
                     out: Any = None) -> Any:
    """``reduce(x, axis=axis)`` (NumPy's ``maximum.reduce`` or ``minimum.reduce``, into
    ``out`` when given) with JAX's signed zeros (``fix_reduced_zeros``)."""
    result = reduce(x, axis=axis) if out is None else reduce(x, axis=axis, out=out)
    return fix_reduced_zeros(xp, result, x, is_max, lambda mask: xp.any(mask, axis=axis), out)


def sign(xp: Any, x: Any) -> Any:
    """``xp.sign(x)`` keeping the sign of a zero for floats (``sign(-0) = -0``, as XLA)."""
    out = xp.sign(x)
    if not dtypes.is_float(np.dtype(x.dtype)) or not may_hold(xp, out == 0):  # no zero
        return out
    return xp.copysign(out, x)
