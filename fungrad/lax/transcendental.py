"""Exponentials, logarithms, powers, trigonometric and hyperbolic functions.

Floating or complex operands (``cbrt`` floating only). Each block: the primitive
with its wrapper and batching rule (``unop``/``binop``) and its JVP, written
as in ``jax._src.lax.lax`` so derivatives agree with JAX's, including which
quantity (input or output) each derivative is expressed in.
"""
from __future__ import annotations

import numpy as np

from fungrad._core import dtypes
from fungrad.interpreters import ad
from fungrad.lax._prim import FLOAT, INEXACT
from fungrad.lax._ops import binop, const, unop
from fungrad.lax.elementwise import add, div, integer_pow, mul, neg, square, sub

_NARROW = dtypes.half_floats


def _in_float32(f):
    """Run ``f`` in float32 for bfloat16/float16 inputs (one rounding, as XLA on CPU does)."""
    def impl(xp, x):
        if x.dtype in _NARROW:
            return f(xp, x.astype(np.float32)).astype(x.dtype)
        return f(xp, x)
    return impl


# --------------------------------------------------------------------------- exponentials, logs

exp_p, exp = unop("exp", lambda xp, x: xp.exp(x), INEXACT, "Elementwise ``e ** x`` (``jax.lax.exp``).")
ad.defjvp2(exp_p, lambda t, ans, x: mul(t, ans))

exp2_p, exp2 = unop("exp2", lambda xp, x: xp.exp2(x), INEXACT,
                    "Elementwise ``2 ** x`` (``jax.lax.exp2``).")
ad.defjvp2(exp2_p, lambda t, ans, x: mul(log(const(x, 2)), mul(t, ans)))

log_p, log = unop("log", lambda xp, x: xp.log(x), INEXACT,
                  "Elementwise natural logarithm (``jax.lax.log``).")
ad.defjvp(log_p, lambda t, x: div(t, x))

expm1_p, expm1 = unop("expm1", lambda xp, x: xp.expm1(x), INEXACT,
                      "Elementwise ``e ** x - 1``, accurate near 0 (``jax.lax.expm1``).")
ad.defjvp2(expm1_p, lambda t, ans, x: mul(t, add(ans, const(ans, 1))))

log1p_p, log1p = unop("log1p", lambda xp, x: xp.log1p(x), INEXACT,
                      "Elementwise ``log(1 + x)``, accurate near 0 (``jax.lax.log1p``).")
ad.defjvp(log1p_p, lambda t, x: div(t, add(x, const(x, 1))))


def _logistic(xp, x):
    if x.dtype.kind == "c":
        return xp.reciprocal(xp.exp(-x) + 1)
    e = xp.exp(-xp.abs(x))  # never overflows
    return xp.where(x >= 0, xp.reciprocal(e + 1), e / (e + 1))


logistic_p, logistic = unop("logistic", _in_float32(_logistic), INEXACT,
                            "Elementwise sigmoid ``1 / (1 + e ** -x)`` (``jax.lax.logistic``).")
ad.defjvp2(logistic_p, lambda t, ans, x: mul(t, mul(ans, sub(const(ans, 1), ans))))

sqrt_p, sqrt = unop("sqrt", lambda xp, x: xp.sqrt(x), INEXACT,
                    "Elementwise square root (``jax.lax.sqrt``).")
ad.defjvp2(sqrt_p, lambda t, ans, x: mul(t, div(const(x, 0.5), ans)))

rsqrt_p, rsqrt = unop("rsqrt", _in_float32(lambda xp, x: xp.reciprocal(xp.sqrt(x))), INEXACT,
                      "Elementwise ``1 / sqrt(x)`` (``jax.lax.rsqrt``).")
ad.defjvp2(rsqrt_p, lambda t, ans, x: mul(t, mul(const(x, -0.5), div(ans, x))))

cbrt_p, cbrt = unop("cbrt", lambda xp, x: xp.cbrt(x), FLOAT,
                    "Elementwise real cube root (``jax.lax.cbrt``).")
ad.defjvp2(cbrt_p, lambda t, ans, x: mul(t, mul(const(x, 1 / 3), integer_pow(ans, -2))))


# --------------------------------------------------------------------------- trigonometric

sin_p, sin = unop("sin", lambda xp, x: xp.sin(x), INEXACT, "Elementwise sine (``jax.lax.sin``).")
ad.defjvp(sin_p, lambda t, x: mul(t, cos(x)))

cos_p, cos = unop("cos", lambda xp, x: xp.cos(x), INEXACT, "Elementwise cosine (``jax.lax.cos``).")
ad.defjvp(cos_p, lambda t, x: neg(mul(t, sin(x))))

tan_p, tan = unop("tan", lambda xp, x: xp.tan(x), INEXACT, "Elementwise tangent (``jax.lax.tan``).")
ad.defjvp2(tan_p, lambda t, ans, x: mul(t, add(const(x, 1), square(ans))))

asin_p, asin = unop("asin", lambda xp, x: xp.arcsin(x), INEXACT,
                    "Elementwise arc sine (``jax.lax.asin``).")
ad.defjvp(asin_p, lambda t, x: mul(t, rsqrt(sub(const(x, 1), square(x)))))

acos_p, acos = unop("acos", lambda xp, x: xp.arccos(x), INEXACT,
                    "Elementwise arc cosine (``jax.lax.acos``).")
ad.defjvp(acos_p, lambda t, x: mul(t, neg(rsqrt(sub(const(x, 1), square(x))))))

atan_p, atan = unop("atan", lambda xp, x: xp.arctan(x), INEXACT,
                    "Elementwise arc tangent (``jax.lax.atan``).")
ad.defjvp(atan_p, lambda t, x: div(t, add(const(x, 1), square(x))))


def _atan2_impl(xp, x, y):
    if x.dtype.kind != "c":
        return xp.arctan2(x, y)
    # Complex atan2(x, y) = -i log((y + i x) / sqrt(x^2 + y^2)).
    return (-1j * xp.log((y + 1j * x) / xp.sqrt(x * x + y * y))).astype(x.dtype)


atan2_p, atan2 = binop("atan2", _atan2_impl, INEXACT,
                       "Elementwise ``atan(x / y)`` in the quadrant of ``(y, x)`` "
                       "(``jax.lax.atan2``).")
ad.defjvp(atan2_p,
          lambda t, x, y: mul(t, div(y, add(square(x), square(y)))),
          lambda t, x, y: mul(t, div(neg(x), add(square(x), square(y)))))


# --------------------------------------------------------------------------- hyperbolic

sinh_p, sinh = unop("sinh", lambda xp, x: xp.sinh(x), INEXACT,
                    "Elementwise hyperbolic sine (``jax.lax.sinh``).")
ad.defjvp(sinh_p, lambda t, x: mul(t, cosh(x)))

cosh_p, cosh = unop("cosh", lambda xp, x: xp.cosh(x), INEXACT,
                    "Elementwise hyperbolic cosine (``jax.lax.cosh``).")
ad.defjvp(cosh_p, lambda t, x: mul(t, sinh(x)))

tanh_p, tanh = unop("tanh", lambda xp, x: xp.tanh(x), INEXACT,
                    "Elementwise hyperbolic tangent (``jax.lax.tanh``).")
ad.defjvp2(tanh_p, lambda t, ans, x: mul(add(t, mul(t, ans)), sub(const(ans, 1), ans)))

asinh_p, asinh = unop("asinh", lambda xp, x: xp.arcsinh(x), INEXACT,
                      "Elementwise inverse hyperbolic sine (``jax.lax.asinh``).")
ad.defjvp(asinh_p, lambda t, x: mul(t, rsqrt(add(square(x), const(x, 1)))))

acosh_p, acosh = unop("acosh", lambda xp, x: xp.arccosh(x), INEXACT,
                      "Elementwise inverse hyperbolic cosine (``jax.lax.acosh``).")
ad.defjvp(acosh_p, lambda t, x: mul(t, rsqrt(sub(square(x), const(x, 1)))))

atanh_p, atanh = unop("atanh", lambda xp, x: xp.arctanh(x), INEXACT,
                      "Elementwise inverse hyperbolic tangent (``jax.lax.atanh``).")
ad.defjvp(atanh_p, lambda t, x: mul(integer_pow(add(const(x, 1), x), -1),
                                    div(t, sub(const(x, 1), x))))


__all__ = [
    "exp", "exp_p", "exp2", "exp2_p", "log", "log_p", "expm1", "expm1_p", "log1p", "log1p_p",
    "logistic", "logistic_p", "sqrt", "sqrt_p", "rsqrt", "rsqrt_p", "cbrt", "cbrt_p",
    "sin", "sin_p", "cos", "cos_p", "tan", "tan_p", "asin", "asin_p", "acos", "acos_p",
    "atan", "atan_p", "atan2", "atan2_p", "sinh", "sinh_p", "cosh", "cosh_p", "tanh", "tanh_p",
    "asinh", "asinh_p", "acosh", "acosh_p", "atanh", "atanh_p",
]
