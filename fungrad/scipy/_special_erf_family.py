"""Relatives of the error function in ``jax.scipy.special``: Dawson's integral ``dawsn``
and Owen's T function ``owens_t``, for real arguments.

* ``dawsn(x) = e**-x**2 int_0^x e**t**2 dt`` is the series ``e**-x**2 sum x**(2k+1) /
  (k! (2k+1))`` (all terms positive, so nothing cancels) below ``|x| = 6`` and the
  asymptotic series ``1/(2x) sum (2k-1)!! / (2 x**2)**k`` above; JAX's derivative
  ``1 - 2 x dawsn(x)``.
* ``owens_t(h, a) = 1/(2 pi) int_0^a e**(-h**2 (1 + t**2) / 2) / (1 + t**2) dt`` is JAX's
  scheme: 26-point Gauss-Legendre quadrature for ``|a| <= 1``, the identity
  ``T(h, a) + T(a h, 1/a) = (Phi(h) + Phi(a h)) / 2 - Phi(h) Phi(a h)`` (for ``h >= 0``)
  for ``|a| > 1``, closed forms at ``h = 0`` and ``|a| = 1``, and JAX's JVP.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact, scalar_like
from fungrad.numpy._util import where as _where
from fungrad.transforms.custom_derivatives import custom_jvp

_DAWSN_SWITCH = 6.0
_DAWSN_SERIES_TERMS = 120  # x**(2k) / k! < 1e-17 e**(x**2) for |x| < 6
_DAWSN_ASYMPTOTIC_TERMS = 30  # (2k-1)!! / 72**k < 1e-15 at k = 30

# Gauss-Legendre on [-1, 1], folded onto [0, 1] in t**2 (the integrand is even in t)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(26)
_OWENS_T_T2 = _GL_NODES[13:] ** 2
_OWENS_T_WEIGHTS = _GL_WEIGHTS[13:] / (2 * np.pi)


def _dawsn_series(x: Any) -> Any:
    x2 = x * x

    def body(k, carry):
        power, total = carry  # power = x**(2k+1) / k!
        kf = lax.convert_element_type(k, x.dtype)
        power = power * x2 / kf
        return power, total + power / (2 * kf + 1)
    total = lax.fori_loop(1, _DAWSN_SERIES_TERMS + 1, body, (x, x))[1]
    return jnp.exp(-x2) * total


def _dawsn_asymptotic(x: Any) -> Any:
    inv = 1 / (2 * x * x)

    def body(k, carry):
        term, total = carry
        term = term * (2 * lax.convert_element_type(k, x.dtype) - 1) * inv
        return term, total + term
    ones = jnp.ones_like(x)
    return lax.fori_loop(1, _DAWSN_ASYMPTOTIC_TERMS + 1, body, (ones, ones))[1] / (2 * x)


@custom_jvp
def _dawsn(x: Any) -> Any:
    ax = jnp.abs(x)
    small = ax < _DAWSN_SWITCH
    value = _where(small, _dawsn_series(_where(small, ax, jnp.zeros_like(x))),
                   _dawsn_asymptotic(_where(small, scalar_like(_DAWSN_SWITCH, x), ax)))
    return _where(jnp.isnan(x), x, jnp.sign(x) * value)


_dawsn.defjvps(lambda t, ans, x: t * (1 - 2 * x * ans))


def dawsn(x: Any) -> Any:
    """Dawson's integral ``e**-x**2 int_0^x e**t**2 dt`` (odd in ``x``), with the
    derivative ``1 - 2 x dawsn(x)`` (``jax.scipy.special.dawsn``).

    >>> import fungrad.scipy.special as fss
    >>> round(float(fss.dawsn(1.0)), 6)
    0.538079
    """
    x, = promote_args_inexact("dawsn", x)
    if x.dtype.kind == "c":
        raise ValueError("dawsn does not support complex-valued inputs.")
    if x.dtype not in (np.float32, np.float64):  # float16 and bfloat16 in float32, as JAX
        return _dawsn(x.astype(np.float32)).astype(x.dtype)
    return _dawsn(x)


def _owens_t_quadrature(h: Any, a: Any) -> Any:
    r = (a * a)[..., None] * _OWENS_T_T2.astype(a.dtype)
    integrand = jnp.exp(-0.5 * (h * h)[..., None] * (1 + r)) / (1 + r)
    return a * jnp.sum(integrand * _OWENS_T_WEIGHTS.astype(a.dtype), axis=-1)


@custom_jvp
def _owens_t(h: Any, a: Any) -> Any:
    h, abs_a = jnp.abs(h), jnp.abs(a)
    sqrt2 = np.sqrt(2.0)
    inner = abs_a <= 1
    a_in = _where(inner, abs_a, 1 / abs_a)  # the argument of the quadrature, at most 1
    h_in = _where(inner, h, abs_a * h)
    t = _owens_t_quadrature(h_in, a_in)
    t = _where(h_in == 0, jnp.arctan(a_in) / (2 * np.pi), t)
    t = _where(a_in == 1, lax.erfc(-h_in / sqrt2) * lax.erfc(h_in / sqrt2) / 8, t)
    # T(h, a) = (Phi(h) + Phi(a h)) / 2 - Phi(h) Phi(a h) - T(a h, 1/a), in erf or erfc
    # (whichever keeps the digits) for a > 1
    q_h, q_ah = lax.erfc(h / sqrt2), lax.erfc(abs_a * h / sqrt2)
    near = (1 - lax.erf(h / sqrt2) * lax.erf(abs_a * h / sqrt2)) / 4
    far = (q_h + q_ah - q_h * q_ah) / 4
    t = _where(inner, t, _where(abs_a * h <= 0.67, near, far) - t)
    t = jnp.sign(a) * t
    return _where(jnp.isnan(a) | jnp.isnan(h), scalar_like(np.nan, t), t)


@_owens_t.defjvp
def _owens_t_jvp(primals: tuple, tangents: tuple) -> tuple:
    (h, a), (h_dot, a_dot) = primals, tangents
    d_h = -jnp.exp(-h * h / 2) * lax.erf(a * h / np.sqrt(2.0)) / (2 * np.sqrt(2 * np.pi))
    d_a = jnp.exp(-(a * a + 1) * h * h / 2) / (2 * np.pi * (a * a + 1))
    return _owens_t(h, a), d_h * h_dot + d_a * a_dot


def owens_t(h: Any, a: Any) -> Any:
    """Owen's T function ``1/(2 pi) int_0^a e**(-h**2 (1 + t**2) / 2) / (1 + t**2) dt``,
    the probability that a standard bivariate normal lies in a wedge; differentiable in
    ``h`` and ``a`` (``jax.scipy.special.owens_t``).

    >>> import fungrad.scipy.special as fss
    >>> round(float(fss.owens_t(0.0, 1.0)), 6)  # 1/8
    0.125
    """
    h, a = promote_args_inexact("owens_t", h, a)
    if h.dtype.kind == "c":
        raise ValueError("owens_t does not support complex-valued inputs.")
    h, a = jnp.broadcast_arrays(h, a)
    return _owens_t(h, a)


__all__ = ["dawsn", "owens_t"]
