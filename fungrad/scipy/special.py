"""``fungrad.scipy.special``: ``logsumexp``, error functions, ``expit``/``logit``,
``xlogy``/``xlog1py``, ``entr``, ``gammaln``/``digamma`` (the ``jax.scipy.special`` API).

``xlogy``, ``xlog1py``, ``logit`` and ``entr`` carry custom JVPs so that derivatives
stay finite where the plain formula would give ``0 * inf``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import (aval, canonicalize_axes, full_like, promote_args_inexact,
                                 scalar_like, where as _where)
from fungrad.transforms.custom_derivatives import custom_jvp


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, where: Any = None) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis``, computed stably (shifted by the max).

    With ``return_sign`` returns ``(log|sum|, sign(sum))``; otherwise a negative sum gives
    NaN. ``where`` masks out elements.
    """
    if where is not None:
        a = jnp.where(where, a, 0)
    if b is not None:
        a, b = promote_args_inexact("logsumexp", a, b)
        a = _where(lax.ne(b, scalar_like(0, b)), a, scalar_like(-np.inf, a))
    else:
        a, = promote_args_inexact("logsumexp", a)
    axes = canonicalize_axes(axis, aval(a).ndim, "logsumexp")
    amax = jnp.max(jnp.real(a), axis=axes, keepdims=keepdims, where=where, initial=-np.inf)
    amax = lax.stop_gradient(lax.select(jnp.isfinite(amax), amax, full_like(amax, 0)))
    amax_dims = amax if keepdims else lax.expand_dims(amax, axes)
    exp_a = lax.exp(lax.sub(a, lax.convert_element_type(amax_dims, aval(a).dtype)))
    if b is not None:
        exp_a = lax.mul(exp_a, b)
    sumexp = jnp.sum(exp_a, axis=axes, keepdims=keepdims, where=where)
    sign = lax.sign(sumexp)
    if return_sign or aval(sumexp).dtype.kind != "c":
        sumexp = lax.abs(sumexp)
    out = lax.add(lax.log(sumexp), lax.convert_element_type(amax, aval(sumexp).dtype))
    if return_sign:
        return out, sign
    if b is not None and aval(out).dtype.kind != "c":
        out = _where(lax.lt(sign, scalar_like(0, sign)), scalar_like(np.nan, out), out)
    return out


def erf(x: Any) -> Any:
    """The error function."""
    x, = promote_args_inexact("erf", x)
    return lax.erf(x)


def erfc(x: Any) -> Any:
    """The complementary error function ``1 - erf(x)``."""
    x, = promote_args_inexact("erfc", x)
    return lax.erfc(x)


def erfinv(x: Any) -> Any:
    """The inverse error function."""
    x, = promote_args_inexact("erfinv", x)
    return lax.erf_inv(x)


def expit(x: Any) -> Any:
    """The logistic sigmoid ``1 / (1 + exp(-x))``."""
    x, = promote_args_inexact("expit", x)
    return lax.logistic(x)


@custom_jvp
def logit(x: Any) -> Any:
    """The inverse of ``expit``: ``log(x / (1 - x))``."""
    x, = promote_args_inexact("logit", x)
    return lax.log(lax.div(x, lax.sub(scalar_like(1, x), x)))


logit.defjvps(lambda g, ans, x: lax.div(g, lax.mul(x, lax.sub(scalar_like(1, x), x))))


@custom_jvp
def xlogy(x: Any, y: Any) -> Any:
    """``x * log(y)``, defined as 0 where ``x == 0`` (unless ``y`` is NaN)."""
    x, y = promote_args_inexact("xlogy", x, y)
    x_ok = lax.bitwise_or(lax.ne(x, scalar_like(0, x)), lax.ne(y, y))
    return _where(x_ok, lax.mul(x, lax.log(y)), jnp.zeros_like(x))


@xlogy.defjvp
def _xlogy_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    result = xlogy(x, y)
    t = jnp.add(jnp.multiply(x_dot, jnp.log(y)), jnp.divide(jnp.multiply(y_dot, x), y))
    return result, lax.convert_element_type(t, aval(result).dtype)


@custom_jvp
def xlog1py(x: Any, y: Any) -> Any:
    """``x * log1p(y)``, defined as 0 where ``x == 0`` (unless ``y`` is NaN)."""
    x, y = promote_args_inexact("xlog1py", x, y)
    x_ok = lax.bitwise_or(lax.ne(x, scalar_like(0, x)), lax.ne(y, y))
    return _where(x_ok, lax.mul(x, lax.log1p(y)), jnp.zeros_like(x))


@xlog1py.defjvp
def _xlog1py_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    result = xlog1py(x, y)
    t = jnp.add(jnp.multiply(x_dot, jnp.log1p(y)),
                jnp.divide(jnp.multiply(y_dot, x), jnp.add(1, y)))
    return result, lax.convert_element_type(t, aval(result).dtype)


@custom_jvp
def _xlogx(x: Any) -> Any:
    return xlogy(x, x)


@_xlogx.defjvp
def _xlogx_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return _xlogx(x), jnp.multiply(x_dot, jnp.add(lax.log(x), 1))


def entr(x: Any) -> Any:
    """Elementwise entropy ``-x log x`` (0 at 0, -inf for negative x)."""
    x, = promote_args_inexact("entr", x)
    if aval(x).dtype.kind == "c":
        raise ValueError("entr does not support complex-valued inputs")
    return lax.select(lax.lt(x, scalar_like(0, x)), full_like(x, -np.inf),
                      lax.neg(_xlogx(x)))


def gammaln(x: Any) -> Any:
    """``log|Gamma(x)|``."""
    x, = promote_args_inexact("gammaln", x)
    return lax.lgamma(x)


def digamma(x: Any) -> Any:
    """The logarithmic derivative of the Gamma function."""
    x, = promote_args_inexact("digamma", x)
    return lax.digamma(x)


def softmax(x: Any, axis: Any = -1) -> Any:
    """Same as ``fungrad.nn.softmax``."""
    from fungrad.nn.functions import softmax as _softmax
    return _softmax(x, axis)


def log_softmax(x: Any, axis: Any = -1) -> Any:
    """Same as ``fungrad.nn.log_softmax``."""
    from fungrad.nn.functions import log_softmax as _log_softmax
    return _log_softmax(x, axis)


__all__ = ["logsumexp", "erf", "erfc", "erfinv", "expit", "logit", "xlogy", "xlog1py", "entr",
           "gammaln", "digamma", "softmax", "log_softmax"]
