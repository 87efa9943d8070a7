"""Transcendental, rounding and floating-point-classification ufuncs.

Integer and boolean inputs of the transcendental functions are computed in the
default float type (``jnp.sqrt(2)`` is a weak float32), as in JAX.

``logaddexp``/``logaddexp2`` and ``sinc`` carry custom JVPs, as in JAX: differentiating
their stable formulas would give 0 instead of 0.5 per argument at a tie ``logaddexp(x, x)``,
and 0 for every derivative of ``sinc`` at 0 (its second is ``-pi**2 / 3``).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad.numpy._ufuncs import maximum, minimum, ufunc_keyword_error
from fungrad.numpy._util import (aval, ensure_arraylike, full_like, promote_args,
                                 promote_args_inexact, promote_dtypes_inexact, scalar_like,
                                 static_int, where as _where)
from fungrad.transforms.custom_derivatives import custom_jvp


def _unary_inexact(name: str, lax_name: str) -> Callable:
    lax_op = getattr(lax, lax_name)

    def op(x: Any, /) -> Any:
        return lax_op(*promote_args_inexact(name, x))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"Elementwise ``{name}`` (``lax.{lax_name}``); integers and booleans are "
                  "computed in the default float type.")
    return op


exp = _unary_inexact("exp", "exp")
exp2 = _unary_inexact("exp2", "exp2")
expm1 = _unary_inexact("expm1", "expm1")
log = _unary_inexact("log", "log")
log1p = _unary_inexact("log1p", "log1p")
sqrt = _unary_inexact("sqrt", "sqrt")
cbrt = _unary_inexact("cbrt", "cbrt")
sin = _unary_inexact("sin", "sin")
cos = _unary_inexact("cos", "cos")
tan = _unary_inexact("tan", "tan")
arcsin = asin = _unary_inexact("arcsin", "asin")
arccos = acos = _unary_inexact("arccos", "acos")
arctan = atan = _unary_inexact("arctan", "atan")
sinh = _unary_inexact("sinh", "sinh")
cosh = _unary_inexact("cosh", "cosh")
tanh = _unary_inexact("tanh", "tanh")
arcsinh = asinh = _unary_inexact("arcsinh", "asinh")
arccosh = acosh = _unary_inexact("arccosh", "acosh")
arctanh = atanh = _unary_inexact("arctanh", "atanh")


def arctan2(x1: Any, x2: Any, /) -> Any:
    """Elementwise angle of the point ``(x2, x1)``, in ``[-pi, pi]``."""
    return lax.atan2(*promote_args_inexact("arctan2", x1, x2))


atan2 = arctan2


def _scaled_log(x: Any, scale: Any) -> Any:
    """``log(x) * scale`` for a real ``scale``: a complex result's parts scaled one by one
    (a complex product would turn ``log(0) = -inf + 0j`` into ``-inf + nan j``)."""
    y = lax.log(x)
    if aval(x).dtype.kind != "c":
        return scale(y)
    return lax.complex(scale(lax.real(y)), scale(lax.imag(y)))


def log2(x: Any, /) -> Any:
    """Elementwise base-2 logarithm."""
    x, = promote_args_inexact("log2", x)
    return _scaled_log(x, lambda y: lax.div(y, lax.log(lax.convert_element_type(
        2, aval(y).dtype))))


def log10(x: Any, /) -> Any:
    """Elementwise base-10 logarithm."""
    x, = promote_args_inexact("log10", x)
    return _scaled_log(x, lambda y: lax.mul(y, lax.convert_element_type(
        0.4342944819032518, aval(y).dtype)))


def logaddexp(x1: Any, x2: Any, /, *, out: None = None, where: None = None) -> Any:
    """``log(exp(x1) + exp(x2))`` without overflow; ``out`` and ``where`` must be None
    (see ``_ufuncs.ufunc_keyword_error``)."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("logaddexp", out)
    return _logaddexp(*promote_args_inexact("logaddexp", x1, x2))


@custom_jvp
def _logaddexp(x1: Any, x2: Any) -> Any:
    amax = lax.max(x1, x2)
    if aval(x1).dtype.kind == "c":
        return _complex_logaddexp(x1, x2, amax, lax.exp, 1.0)
    delta = lax.sub(x1, x2)
    return lax.select(lax.ne(delta, delta), lax.add(x1, x2),
                      lax.add(amax, lax.log1p(lax.exp(lax.neg(lax.abs(delta))))))


def logaddexp2(x1: Any, x2: Any, /, *, out: None = None, where: None = None) -> Any:
    """``log2(2**x1 + 2**x2)`` without overflow; ``out`` and ``where`` must be None."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("logaddexp2", out)
    return _logaddexp2(*promote_args_inexact("logaddexp2", x1, x2))


@custom_jvp
def _logaddexp2(x1: Any, x2: Any) -> Any:
    amax = lax.max(x1, x2)
    if aval(x1).dtype.kind == "c":
        return _complex_logaddexp(x1, x2, amax, lax.exp2, np.log(2))
    delta = lax.sub(x1, x2)
    ln2 = scalar_like(np.log(2), amax)  # weak only for scalars, as JAX's ``_const(amax)``
    tail = lax.div(lax.log1p(lax.exp2(lax.neg(lax.abs(delta)))), ln2)
    return lax.select(lax.ne(delta, delta), lax.add(x1, x2), lax.add(amax, tail))


def _complex_logaddexp(x1: Any, x2: Any, amax: Any, exp: Callable, ln_base: float) -> Any:
    """Complex ``log(b**x1 + b**x2)`` about the lexicographic maximum, with the imaginary
    part wrapped into ``[-pi, pi] / ln b`` (the principal branch, as JAX)."""
    delta = lax.sub(lax.add(x1, x2), lax.mul(amax, scalar_like(2, amax)))
    out = lax.add(amax, lax.div(lax.log1p(exp(delta)), scalar_like(ln_base, amax)))
    half = scalar_like(np.pi / ln_base, lax.real(out))
    period = lax.add(half, half)
    shifted = lax.rem(lax.add(lax.imag(out), half), period)
    shifted = _where(lax.lt(shifted, scalar_like(0, shifted)), lax.add(shifted, period), shifted)
    return lax.complex(lax.real(out), lax.sub(shifted, half))


def _logaddexp_rule(fn: Callable, exp: Callable) -> Callable:
    """JVP of ``fn = log(exp(x1) + exp(x2))`` (or base 2): ``t_i * exp(x_i - out)``.

    The weights are the softmax of the two arguments, so they sum to 1 and give 0.5 each
    at a tie; differentiating the stable formula would give 0 there, because the kinks of
    ``max`` and ``abs`` cancel. ``+inf`` is read as 0 so that ``inf - inf`` gives no NaN.
    """
    def rule(primals: Any, tangents: Any) -> Any:
        (x1, x2), (t1, t2) = primals, tangents
        out = fn(x1, x2)
        w1 = exp(lax.sub(_replace_posinf(x1), _replace_posinf(out)))
        w2 = exp(lax.sub(_replace_posinf(x2), _replace_posinf(out)))
        return out, lax.add(lax.mul(t1, w1), lax.mul(t2, w2))
    return rule


def _replace_posinf(x: Any) -> Any:
    re_x = lax.real(x) if aval(x).dtype.kind == "c" else x
    return lax.select(lax.eq(re_x, scalar_like(np.inf, re_x)), full_like(x, 0), x)


_logaddexp.defjvp(_logaddexp_rule(_logaddexp, lax.exp))
_logaddexp2.defjvp(_logaddexp_rule(_logaddexp2, lax.exp2))


def hypot(x1: Any, x2: Any, /) -> Any:
    """``sqrt(x1**2 + x2**2)`` without intermediate overflow."""
    x1, x2 = promote_args_inexact("hypot", x1, x2)
    if aval(x1).dtype.kind == "c":
        raise ValueError("hypot is not well defined for complex-valued inputs: convert them "
                         "to real values first, e.g. with abs")
    x1, x2 = lax.abs(x1), lax.abs(x2)
    inf = scalar_like(np.inf, x1)
    any_inf = lax.bitwise_or(lax.eq(x1, inf), lax.eq(x2, inf))
    big, small = maximum(x1, x2), minimum(x1, x2)
    zero, one = scalar_like(0, big), scalar_like(1, big)
    is_zero = lax.eq(big, zero)
    ratio = lax.div(small, lax.select(is_zero, full_like(big, 1), big))
    out = lax.select(is_zero, big, lax.mul(big, lax.sqrt(lax.add(one, lax.mul(ratio, ratio)))))
    return lax.select(any_inf, scalar_like(np.inf, out), out)


def sinc(x: Any, /) -> Any:
    """Normalised sinc: ``sin(pi x) / (pi x)``, 1 at 0."""
    x, = promote_dtypes_inexact(ensure_arraylike("sinc", x))
    eq_zero = lax.eq(x, scalar_like(0, x))
    pi_x = lax.mul(scalar_like(np.pi, x), x)
    safe = lax.select(eq_zero, full_like(pi_x, 1), pi_x)
    return lax.select(eq_zero, _sin_over_x_at_zero(0, pi_x), lax.div(lax.sin(safe), safe))


def _sin_over_x_at_zero(k: int, u: Any) -> Any:
    """The ``k``-th derivative of ``sin(u) / u`` at ``u = 0``, broadcast like ``u``.

    ``sinc`` selects it where ``x == 0``; its custom JVP returns the next term, so every
    order of derivative of ``sinc`` at 0 is its Maclaurin coefficient, not 0.
    """
    term = 0.0 if k % 2 else (-1) ** (k // 2) / (k + 1)
    return lax.add(lax.mul(u, scalar_like(0, u)), scalar_like(term, u))


def _sin_over_x_at_zero_jvp(k: int, primals: Any, tangents: Any) -> Any:
    (u,), (t,) = primals, tangents
    return _sin_over_x_at_zero(k, u), lax.mul(_sin_over_x_at_zero(k + 1, u), t)


_sin_over_x_at_zero = custom_jvp(_sin_over_x_at_zero, nondiff_argnums=(0,))
_sin_over_x_at_zero.defjvp(_sin_over_x_at_zero_jvp)


def i0(x: Any) -> Any:
    """The modified Bessel function of the first kind of order 0, ``exp(|x|) * i0e(|x|)``
    (``lax.bessel_i0e``); its derivative is 0 at 0, as the series says."""
    x, = promote_args_inexact("i0", ensure_arraylike("i0", x))
    if aval(x).dtype.kind == "c":
        raise TypeError(f"i0: complex inputs are not supported, got {aval(x).dtype}")
    return _i0(x)


@custom_jvp
def _i0(x: Any) -> Any:
    magnitude = lax.abs(x)
    return lax.mul(lax.exp(magnitude), lax.bessel_i0e(magnitude))


@_i0.defjvp
def _i0_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    magnitude = lax.abs(x)
    # i0' = i1 = exp(|x|) * i1e(|x|) * sign(x)
    slope = lax.mul(lax.mul(lax.exp(magnitude), lax.bessel_i1e(magnitude)), lax.sign(x))
    return _i0(x), _where(lax.eq(x, scalar_like(0, x)), lax.full_like(t, 0), lax.mul(t, slope))


def heaviside(x1: Any, x2: Any, /) -> Any:
    """Step function: 0 for ``x1 < 0``, ``x2`` at 0, 1 for ``x1 > 0``."""
    x1, x2 = promote_dtypes_inexact(*ensure_arraylike("heaviside", x1, x2))
    zero, one = scalar_like(0, x1), scalar_like(1, x1)
    return _where(lax.lt(x1, zero), zero,
                  _where(lax.gt(x1, zero), one, _where(lax.ne(x1, x1), x1, x2)))


def deg2rad(x: Any, /) -> Any:
    """Degrees to radians."""
    x, = promote_args_inexact("deg2rad", x)
    return lax.mul(x, scalar_like(np.pi / 180, x))


def rad2deg(x: Any, /) -> Any:
    """Radians to degrees."""
    x, = promote_args_inexact("rad2deg", x)
    return lax.mul(x, scalar_like(180 / np.pi, x))


radians, degrees = deg2rad, rad2deg


# --------------------------------------------------------------------------- rounding

def _is_int_or_bool(x: Any) -> bool:
    return dtypes.kind(aval(x).dtype) in "iub"


def floor(x: Any, /) -> Any:
    """Elementwise floor (integers are returned unchanged)."""
    x = ensure_arraylike("floor", x)
    return x if _is_int_or_bool(x) else lax.floor(*promote_args_inexact("floor", x))


def ceil(x: Any, /) -> Any:
    """Elementwise ceiling (integers are returned unchanged)."""
    x = ensure_arraylike("ceil", x)
    return x if _is_int_or_bool(x) else lax.ceil(*promote_args_inexact("ceil", x))


def trunc(x: Any, /) -> Any:
    """Round toward zero (integers are returned unchanged)."""
    x = ensure_arraylike("trunc", x)
    if _is_int_or_bool(x):
        return x
    return _where(lax.lt(x, scalar_like(0, x)), lax.ceil(x), lax.floor(x))


def round(a: Any, decimals: int = 0, out: None = None) -> Any:  # noqa: A001
    """Round to ``decimals`` decimal places, halves to even (integers unchanged)."""
    a = ensure_arraylike("round", a)
    decimals = static_int(decimals, "round: decimals")
    if aval(a).dtype == np.bool_:
        raise ValueError("round: data type bool is not inexact (convert it to a number first)")
    if _is_int_or_bool(a):
        if decimals < 0:
            raise NotImplementedError("round: integer rounding with decimals < 0")
        return a
    if aval(a).dtype.kind == "c":  # the real and imaginary parts separately, as JAX
        return lax.complex(round(lax.real(a), decimals), round(lax.imag(a), decimals))
    method = lax.RoundingMethod.TO_NEAREST_EVEN
    if decimals == 0:
        return lax.round(a, method)
    dt = aval(a).dtype
    x = lax.convert_element_type(a, np.float32) if dt == np.float16 else a
    factor = scalar_like(10.0 ** decimals, x)
    out = lax.div(lax.round(lax.mul(x, factor), method), factor)
    return lax.convert_element_type(out, dt) if dt == np.float16 else out


around = round


def rint(x: Any, /) -> Any:
    """Round to the nearest integer, halves to even (integers become floats)."""
    x = ensure_arraylike("rint", x)
    if _is_int_or_bool(x):
        return lax.convert_element_type(x, dtypes.default_float_dtype())
    if aval(x).dtype.kind == "c":  # each part, as in JAX
        return lax.complex(rint(lax.real(x)), rint(lax.imag(x)))
    return lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN)


def modf(x: Any, /, out: None = None) -> tuple[Any, Any]:
    """Fractional and integral parts of ``x`` (both with the sign of ``x``)."""
    x, = promote_dtypes_inexact(ensure_arraylike("modf", x))
    whole = _where(lax.ge(x, scalar_like(0, x)), lax.floor(x), lax.ceil(x))
    return lax.sub(x, whole), whole


# --------------------------------------------------------------------------- classification

def _full_bool(x: Any, value: bool) -> Any:
    return lax.full(aval(x).shape, value, np.bool_)


def isfinite(x: Any, /) -> Any:
    """Elementwise: not infinite and not NaN (a complex number: both parts)."""
    x = ensure_arraylike("isfinite", x)
    if aval(x).dtype.kind == "c":
        return lax.bitwise_and(lax.is_finite(lax.real(x)), lax.is_finite(lax.imag(x)))
    return lax.is_finite(x) if dtypes.is_float(aval(x).dtype) else _full_bool(x, True)


def isnan(x: Any, /) -> Any:
    """Elementwise: is NaN."""
    x = ensure_arraylike("isnan", x)
    return lax.ne(x, x)


def isinf(x: Any, /) -> Any:
    """Elementwise: is positive or negative infinity."""
    x = ensure_arraylike("isinf", x)
    if aval(x).dtype.kind == "c":  # either part infinite
        return lax.bitwise_or(isinf(lax.real(x)), isinf(lax.imag(x)))
    if not dtypes.is_float(aval(x).dtype):
        return _full_bool(x, False)
    return lax.eq(lax.abs(x), lax.convert_element_type(np.inf, aval(x).dtype))


def _isposneginf(fname: str, x: Any, value: float) -> Any:
    x = ensure_arraylike(fname, x)
    if aval(x).dtype.kind == "c":
        raise ValueError(f"{fname}: not defined for complex numbers (got {aval(x).dtype}); "
                         f"use isinf, or {fname} of the real and imaginary parts")
    if not dtypes.is_float(aval(x).dtype):
        return _full_bool(x, False)
    return lax.eq(x, lax.convert_element_type(value, aval(x).dtype))


def isposinf(x: Any, /, out: None = None) -> Any:
    """Elementwise: is positive infinity."""
    return _isposneginf("isposinf", x, np.inf)


def isneginf(x: Any, /, out: None = None) -> Any:
    """Elementwise: is negative infinity."""
    return _isposneginf("isneginf", x, -np.inf)


def nan_to_num(x: Any, copy: bool = True, nan: Any = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:
    """Replace NaN by ``nan`` and infinities by ``posinf``/``neginf`` (default: dtype limits)."""
    x = ensure_arraylike("nan_to_num", x)
    dt = aval(x).dtype
    if not dtypes.is_inexact(dt):
        return x
    if dt.kind == "c":  # each part on its own, as in NumPy and JAX
        parts = [nan_to_num(part, nan=nan, posinf=posinf, neginf=neginf)
                 for part in (lax.real(x), lax.imag(x))]
        return lax.complex(*parts)
    info = dtypes.finfo(dt)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    const = lambda v: lax.convert_element_type(v, dt)  # noqa: E731 - not weak, as in JAX
    out = _where(lax.ne(x, x), const(nan), x)
    out = _where(lax.eq(out, const(np.inf)), const(posinf), out)
    return _where(lax.eq(out, const(-np.inf)), const(neginf), out)


_INT_OF_WIDTH = {2: np.int16, 4: np.int32, 8: np.int64}


def signbit(x: Any, /) -> Any:
    """Elementwise: is the sign bit set (true for -0.0 and negative NaNs too)."""
    x, = promote_args("signbit", x)
    dt = aval(x).dtype
    if dtypes.is_integer(dt):
        return lax.lt(x, lax.convert_element_type(0, dt))
    if dt == np.bool_:
        return _full_bool(x, False)
    if not dtypes.is_float(dt):
        raise ValueError(f"signbit is not well defined for {dt}")
    bits = lax.bitcast_convert_type(x, _INT_OF_WIDTH[dt.itemsize])
    return lax.lt(bits, scalar_like(0, bits))


def copysign(x1: Any, x2: Any, /) -> Any:
    """``|x1|`` with the sign of ``x2``."""
    x1, x2 = promote_args_inexact("copysign", x1, x2)
    if aval(x1).dtype.kind == "c":
        raise TypeError("copysign does not support complex-valued inputs")
    mag = lax.abs(x1)
    return _where(signbit(x2), lax.neg(mag), mag)


def nextafter(x: Any, y: Any, /) -> Any:
    """The next representable float after ``x`` toward ``y`` (arguments named as in
    ``jax.numpy``)."""
    return lax.nextafter(*promote_args_inexact("nextafter", x, y))


# --------------------------------------------------------------------------- complex parts

def real(val: Any, /) -> Any:
    """The real part (the array itself for real dtypes)."""
    val = ensure_arraylike("real", val)
    return lax.real(val) if aval(val).dtype.kind == "c" else val


def imag(val: Any, /) -> Any:
    """The imaginary part (zeros for real dtypes)."""
    val = ensure_arraylike("imag", val)
    return lax.imag(val) if aval(val).dtype.kind == "c" else full_like(val, 0)


def conjugate(x: Any, /) -> Any:
    """The complex conjugate (the array itself for real dtypes)."""
    x = ensure_arraylike("conjugate", x)
    return lax.conj(x) if aval(x).dtype.kind == "c" else x


conj = conjugate


def angle(z: Any, deg: bool = False) -> Any:
    """The argument of complex ``z`` (0 or pi for reals), in radians or degrees."""
    z = ensure_arraylike("angle", z)
    re, im = real(z), imag(z)
    dt = aval(re).dtype
    if not dtypes.is_inexact(dt) or (dtypes.is_float(aval(z).dtype) and not aval(z).shape):
        re, im = (lax.convert_element_type(v, dtypes.default_float_dtype()) for v in (re, im))
    out = lax.atan2(im, re)
    return rad2deg(out) if deg else out


__all__ = ["exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sqrt", "cbrt", "sin", "cos",
           "tan", "arcsin", "asin", "arccos", "acos", "arctan", "atan", "sinh", "cosh", "tanh",
           "arcsinh", "asinh", "arccosh", "acosh", "arctanh", "atanh", "arctan2", "atan2",
           "logaddexp", "logaddexp2", "hypot", "sinc", "i0", "heaviside", "deg2rad", "rad2deg",
           "radians", "degrees", "floor", "ceil", "trunc", "round", "around", "rint",
           "modf", "isfinite", "isnan", "isinf", "isposinf", "isneginf", "nan_to_num",
           "signbit", "copysign", "nextafter", "real", "imag", "conjugate", "conj", "angle"]
