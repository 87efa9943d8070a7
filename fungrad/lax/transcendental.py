"""Exponentials, logarithms, powers, trigonometric and hyperbolic functions.

Floating or complex operands (``cbrt`` floating only). Each block: the primitive
with its wrapper and batching rule (``unop``/``binop``) and its JVP, written
as in ``jax._src.lax.lax`` so derivatives agree with JAX's, including which
quantity (input or output) each derivative is expressed in.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad._core import core, dtypes, lowering
from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import FLOAT, INEXACT, INT, as_operand, broadcast_shapes, kind
from fungrad.lax._ops import (AccuracyMode, Tolerance, binop, const, convert_to, operands,
                              unop)
from fungrad.lax.elementwise import (_replace_zero, add, div, eq, integer_pow, mul, neg, select,
                                     square, sub)

_NARROW = dtypes.half_floats


def _in_float32(f):
    """Run ``f`` in float32 for bfloat16/float16 inputs (one rounding, as XLA on CPU does)."""
    def impl(xp, x):
        if x.dtype in _NARROW:
            return f(xp, x.astype(np.float32)).astype(x.dtype)
        return f(xp, x)
    return impl


# --------------------------------------------------------------------------- exponentials, logs

exp_p, exp = unop("exp", lambda xp, x: xp.exp(x), INEXACT,
                  "Elementwise ``e ** x`` (``jax.lax.exp``).", accuracy=True)
ad.defjvp2(exp_p, lambda t, ans, x: mul(t, ans))
lowering.def_ufunc(exp_p, "exp", numexpr="exp({})")
lowering.def_cuda(exp_p, "exp({})")

exp2_p, exp2 = unop("exp2", lambda xp, x: xp.exp2(x), INEXACT,
                    "Elementwise ``2 ** x`` (``jax.lax.exp2``).", accuracy=True)
ad.defjvp2(exp2_p, lambda t, ans, x: mul(log(const(x, 2)), mul(t, ans)))
lowering.def_ufunc(exp2_p, "exp2")

log_p, log = unop("log", lambda xp, x: xp.log(x), INEXACT,
                  "Elementwise natural logarithm (``jax.lax.log``).", accuracy=True)
ad.defjvp(log_p, lambda t, x: div(t, x))
lowering.def_ufunc(log_p, "log", numexpr="log({})")
lowering.def_cuda(log_p, "log({})")

expm1_p, expm1 = unop("expm1", lambda xp, x: xp.expm1(x), INEXACT,
                      "Elementwise ``e ** x - 1``, accurate near 0 (``jax.lax.expm1``).",
                      accuracy=True)
ad.defjvp2(expm1_p, lambda t, ans, x: mul(t, add(ans, const(ans, 1))))
lowering.def_ufunc(expm1_p, "expm1", numexpr="expm1({})")
lowering.def_cuda(expm1_p, "expm1({})")

log1p_p, log1p = unop("log1p", lambda xp, x: xp.log1p(x), INEXACT,
                      "Elementwise ``log(1 + x)``, accurate near 0 (``jax.lax.log1p``).",
                      accuracy=True)
ad.defjvp(log1p_p, lambda t, x: div(t, add(x, const(x, 1))))
lowering.def_ufunc(log1p_p, "log1p", numexpr="log1p({})")
lowering.def_cuda(log1p_p, "log1p({})")


def _logistic(xp, x):
    if x.dtype.kind == "c":
        return xp.reciprocal(xp.exp(-x) + 1)
    e = xp.exp(-xp.abs(x))  # never overflows
    return xp.where(x >= 0, xp.reciprocal(e + 1), e / (e + 1))


logistic_p, logistic = unop("logistic", _in_float32(_logistic), INEXACT,
                            "Elementwise sigmoid ``1 / (1 + e ** -x)`` (``jax.lax.logistic``).",
                            accuracy=True)
ad.defjvp2(logistic_p, lambda t, ans, x: mul(t, mul(ans, sub(const(ans, 1), ans))))
lowering.def_cuda(logistic_p, "fg_logistic({})")  # as _logistic: never overflows

sqrt_p, sqrt = unop("sqrt", lambda xp, x: xp.sqrt(x), INEXACT,
                    "Elementwise square root (``jax.lax.sqrt``).", accuracy=True)
ad.defjvp2(sqrt_p, lambda t, ans, x: mul(t, div(const(x, 0.5), ans)))
lowering.def_ufunc(sqrt_p, "sqrt", numexpr="sqrt({})")
lowering.def_cuda(sqrt_p, "sqrt({})")

rsqrt_p, rsqrt = unop("rsqrt", _in_float32(lambda xp, x: xp.reciprocal(xp.sqrt(x))), INEXACT,
                      "Elementwise ``1 / sqrt(x)`` (``jax.lax.rsqrt``).", accuracy=True)
ad.defjvp2(rsqrt_p, lambda t, ans, x: mul(t, mul(const(x, -0.5), div(ans, x))))
lowering.def_cuda(rsqrt_p, "(1 / sqrt({}))")

cbrt_p, cbrt = unop("cbrt", lambda xp, x: xp.cbrt(x), FLOAT,
                    "Elementwise real cube root (``jax.lax.cbrt``).", accuracy=True)
ad.defjvp2(cbrt_p, lambda t, ans, x: mul(t, mul(const(x, 1 / 3), integer_pow(ans, -2))))
lowering.def_ufunc(cbrt_p, "cbrt")


# --------------------------------------------------------------------------- trigonometric

sin_p, sin = unop("sin", lambda xp, x: xp.sin(x), INEXACT, "Elementwise sine (``jax.lax.sin``).",
                  accuracy=True)
ad.defjvp(sin_p, lambda t, x: mul(t, cos(x)))
lowering.def_ufunc(sin_p, "sin", numexpr="sin({})")
lowering.def_cuda(sin_p, "sin({})")

cos_p, cos = unop("cos", lambda xp, x: xp.cos(x), INEXACT, "Elementwise cosine (``jax.lax.cos``).",
                  accuracy=True)
ad.defjvp(cos_p, lambda t, x: neg(mul(t, sin(x))))
lowering.def_ufunc(cos_p, "cos", numexpr="cos({})")
lowering.def_cuda(cos_p, "cos({})")

tan_p, tan = unop("tan", lambda xp, x: xp.tan(x), INEXACT, "Elementwise tangent (``jax.lax.tan``).",
                  accuracy=True)
ad.defjvp2(tan_p, lambda t, ans, x: mul(t, add(const(x, 1), square(ans))))
lowering.def_ufunc(tan_p, "tan", numexpr="tan({})")

asin_p, asin = unop("asin", lambda xp, x: xp.arcsin(x), INEXACT,
                    "Elementwise arc sine (``jax.lax.asin``).")
ad.defjvp(asin_p, lambda t, x: mul(t, rsqrt(sub(const(x, 1), square(x)))))
lowering.def_ufunc(asin_p, "arcsin", numexpr="arcsin({})")

acos_p, acos = unop("acos", lambda xp, x: xp.arccos(x), INEXACT,
                    "Elementwise arc cosine (``jax.lax.acos``).")
ad.defjvp(acos_p, lambda t, x: mul(t, neg(rsqrt(sub(const(x, 1), square(x))))))
lowering.def_ufunc(acos_p, "arccos", numexpr="arccos({})")

atan_p, atan = unop("atan", lambda xp, x: xp.arctan(x), INEXACT,
                    "Elementwise arc tangent (``jax.lax.atan``).")
ad.defjvp(atan_p, lambda t, x: div(t, add(const(x, 1), square(x))))
lowering.def_ufunc(atan_p, "arctan", numexpr="arctan({})")


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
lowering.def_cuda(atan2_p, "atan2({}, {})")


# --------------------------------------------------------------------------- hyperbolic

sinh_p, sinh = unop("sinh", lambda xp, x: xp.sinh(x), INEXACT,
                    "Elementwise hyperbolic sine (``jax.lax.sinh``).")
ad.defjvp(sinh_p, lambda t, x: mul(t, cosh(x)))
lowering.def_ufunc(sinh_p, "sinh", numexpr="sinh({})")

cosh_p, cosh = unop("cosh", lambda xp, x: xp.cosh(x), INEXACT,
                    "Elementwise hyperbolic cosine (``jax.lax.cosh``).")
ad.defjvp(cosh_p, lambda t, x: mul(t, sinh(x)))
lowering.def_ufunc(cosh_p, "cosh", numexpr="cosh({})")

tanh_p, tanh = unop("tanh", lambda xp, x: xp.tanh(x), INEXACT,
                    "Elementwise hyperbolic tangent (``jax.lax.tanh``).", accuracy=True)
ad.defjvp2(tanh_p, lambda t, ans, x: mul(add(t, mul(t, ans)), sub(const(ans, 1), ans)))
lowering.def_ufunc(tanh_p, "tanh", numexpr="tanh({})")
lowering.def_cuda(tanh_p, "tanh({})")

asinh_p, asinh = unop("asinh", lambda xp, x: xp.arcsinh(x), INEXACT,
                      "Elementwise inverse hyperbolic sine (``jax.lax.asinh``).")
ad.defjvp(asinh_p, lambda t, x: mul(t, rsqrt(add(square(x), const(x, 1)))))
lowering.def_ufunc(asinh_p, "arcsinh")

acosh_p, acosh = unop("acosh", lambda xp, x: xp.arccosh(x), INEXACT,
                      "Elementwise inverse hyperbolic cosine (``jax.lax.acosh``).")
ad.defjvp(acosh_p, lambda t, x: mul(t, rsqrt(sub(square(x), const(x, 1)))))
lowering.def_ufunc(acosh_p, "arccosh")

atanh_p, atanh = unop("atanh", lambda xp, x: xp.arctanh(x), INEXACT,
                      "Elementwise inverse hyperbolic tangent (``jax.lax.atanh``).")
ad.defjvp(atanh_p, lambda t, x: mul(integer_pow(add(const(x, 1), x), -1),
                                    div(t, sub(const(x, 1), x))))
lowering.def_ufunc(atanh_p, "arctanh")


# --------------------------------------------------------------------------- pow

def _pow_abstract(x, y):
    if kind(x.dtype) not in INEXACT:
        raise TypeError(f"pow does not accept dtype {x.dtype.name} at position 0; accepted "
                        "kinds: floating or complex")
    if not (kind(y.dtype) in INT or x.dtype == y.dtype):
        raise TypeError("the first argument to pow must have an inexact dtype (float or "
                        "complex), and the second argument must have an inexact or integer "
                        f"dtype, and two inexact dtypes must match, but got {x.dtype.name} "
                        f"and {y.dtype.name} respectively.")
    return ShapedArray(broadcast_shapes("pow", x.shape, y.shape), x.dtype,
                       x.weak_type and y.weak_type)


def pow(x: Any, y: Any) -> Any:  # noqa: A001 - lax.pow
    """Elementwise ``x ** y`` (``jax.lax.pow``).

    ``x`` is floating or complex; ``y`` has x's dtype or is an integer array, which
    is converted to x's dtype (so ``0.0 ** -1`` is ``inf``). A Python int exponent
    stays an integer, as in JAX.
    """
    if isinstance(y, int) and not isinstance(y, bool):
        x, y = operands(x)[0], as_operand(y)
    else:
        x, y = operands(x, y)
    _pow_abstract(core.get_aval(x), core.get_aval(y))
    return pow_p.bind(x, y)


def _pow_jvp_lhs(t, ans, x, y):
    y_is_int = kind(core.get_aval(y).dtype) in INT
    y = convert_to(y, x)
    if y_is_int:  # d/dx x**0 is 0, even at x = 0 (as in JAX; the unselected branch is finite)
        y_safe = _replace_zero(y)
        jac = select(eq(y, const(y, 0)), const(x, 0),
                     mul(y_safe, pow(x, sub(y_safe, const(y, 1)))))
    else:
        jac = mul(y, pow(x, sub(y, const(y, 1))))
    return mul(t, jac)


def _pow_jvp_rhs(t, ans, x, y):
    return mul(t, mul(log(_replace_zero(x)), ans))


pow_p = Primitive("pow")
pow_p.def_impl(lambda xp, x, y: xp.power(x, y if y.dtype == x.dtype else y.astype(x.dtype)))
pow_p.def_abstract_eval(_pow_abstract)
ad.defjvp2(pow_p, _pow_jvp_lhs, _pow_jvp_rhs)
batching.defbroadcasting(pow_p)
lowering.def_cuda(pow_p, "pow({}, ({t}){})")  # an integer exponent converted to x's type

__all__ = [
    "AccuracyMode", "Tolerance",
    "pow", "pow_p", "exp", "exp_p", "exp2", "exp2_p", "log", "log_p", "expm1", "expm1_p",
    "log1p", "log1p_p",
    "logistic", "logistic_p", "sqrt", "sqrt_p", "rsqrt", "rsqrt_p", "cbrt", "cbrt_p",
    "sin", "sin_p", "cos", "cos_p", "tan", "tan_p", "asin", "asin_p", "acos", "acos_p",
    "atan", "atan_p", "atan2", "atan2_p", "sinh", "sinh_p", "cosh", "cosh_p", "tanh", "tanh_p",
    "asinh", "asinh_p", "acosh", "acosh_p", "atanh", "atanh_p",
]
