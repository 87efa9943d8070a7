"""Relatives of the error function in ``jax.scipy.special``: Dawson's integral ``dawsn``,
the Fresnel integrals ``fresnel`` and Owen's T function ``owens_t``, for real arguments.

* ``dawsn(x) = e**-x**2 int_0^x e**t**2 dt`` is the series ``e**-x**2 sum x**(2k+1) /
  (k! (2k+1))`` (all terms positive, so nothing cancels) below ``|x| = 6`` and the
  asymptotic series ``1/(2x) sum (2k-1)!! / (2 x**2)**k`` above; JAX's derivative
  ``1 - 2 x dawsn(x)``.
* ``fresnel(x) = (S(x), C(x))`` are power series in ``pi x**2 / 2`` up to ``|x| = 1.5``
  and above, through ``C + i S = (1 + i)/2 erf((1 - i) sqrt(pi) x / 2)``, the continued
  fraction of ``erfc`` (Numerical Recipes 6.8), in real and imaginary parts; JAX's JVP
  ``(sin(pi x**2 / 2), cos(pi x**2 / 2))``.
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
from fungrad.scipy._special_exp_integrals import _cmul, _crecip
from fungrad.transforms.custom_derivatives import custom_jvp

_DAWSN_SWITCH = 6.0
_DAWSN_SERIES_TERMS = 120  # x**(2k) / k! < 1e-17 e**(x**2) for |x| < 6
_DAWSN_ASYMPTOTIC_TERMS = 30  # (2k-1)!! / 72**k < 1e-15 at k = 30
_FRESNEL_SWITCH = 1.5
_FRESNEL_SERIES_TERMS = 36  # (pi x**2 / 2)**n / n! < 1e-20 for |x| <= 1.5
_FRESNEL_FRACTION_TERMS = 64

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
    >>> round(float(fss.dawsn(1.0)), 5)
    0.53808
    """
    x, = promote_args_inexact("dawsn", x)
    if x.dtype.kind == "c":
        raise ValueError("dawsn does not support complex-valued inputs.")
    if x.dtype not in (np.float32, np.float64):  # float16 and bfloat16 in float32, as JAX
        return _dawsn(x.astype(np.float32)).astype(x.dtype)
    return _dawsn(x)


def _fresnel_series(x: Any) -> tuple:
    # C = sum_n (-1)**n u**(2n) x / ((2n)! (4n+1)), S = sum_n (-1)**n u**(2n+1) x / ((2n+1)! (4n+3))
    # with u = pi x**2 / 2: one term u**m / m! per step, into C (m even) or S (m odd)
    u = np.pi / 2 * x * x

    def body(m, carry):
        term, s, c = carry  # term = (-1)**(m // 2) u**m x / m!
        mf = lax.convert_element_type(m, x.dtype)
        term = term * u / mf
        odd = lax.rem(m, 2) == 1
        term = _where(odd, term, -term)
        part = term / (2 * mf + 1)
        return term, _where(odd, s + part, s), _where(odd, c, c + part)
    _, s, c = lax.fori_loop(1, _FRESNEL_SERIES_TERMS + 1, body, (x, jnp.zeros_like(x), x))
    return s, c


def _fresnel_fraction(x: Any) -> tuple:
    # modified Lentz on the continued fraction of erfc((1 - i) sqrt(pi) x / 2), ended where a
    # factor is within eps of 1 (as in _expn_fraction)
    tiny, eps = float(np.finfo(x.dtype).tiny), float(np.finfo(x.dtype).eps)
    pix2 = np.pi * x * x
    one, zero = jnp.ones_like(x), jnp.zeros_like(x)
    d_r, d_i = _crecip(one, -pix2)

    def body(k, carry):
        b_r, c_r, c_i, d_r, d_i, h_r, h_i, done = carry
        n = lax.convert_element_type(2 * k - 3, x.dtype)
        a = -n * (n + 1)
        b_r = b_r + 4
        d_r, d_i = _crecip(a * d_r + b_r, a * d_i - pix2)
        q_r, q_i = _crecip(c_r, c_i)
        c_r, c_i = b_r + a * q_r, -pix2 + a * q_i
        c_r = _where((c_r == 0) & (c_i == 0), tiny, c_r)
        e_r, e_i = _cmul(c_r, c_i, d_r, d_i)
        e_r, e_i = _where(done, one, e_r), _where(done, zero, e_i)
        h_r, h_i = _cmul(h_r, h_i, e_r, e_i)
        return b_r, c_r, c_i, d_r, d_i, h_r, h_i, done | (jnp.abs(e_r - 1) + jnp.abs(e_i) < eps)
    init = (one, one / tiny, zero, d_r, d_i, d_r, d_i, jnp.zeros_like(x, bool))
    h_r, h_i = lax.fori_loop(2, _FRESNEL_FRACTION_TERMS + 2, body, init)[5:7]
    h_r, h_i = _cmul(h_r, h_i, x, -x)
    w_r, w_i = _cmul(jnp.cos(pix2 / 2), jnp.sin(pix2 / 2), h_r, h_i)
    # C + i S = (1 + i) / 2 (1 - w); S first, as fresnel returns them
    return (1 - w_r - w_i) / 2, (1 - w_r + w_i) / 2


@custom_jvp
def _fresnel(x: Any) -> tuple:
    ax = jnp.abs(x)
    small = ax <= _FRESNEL_SWITCH
    s_s, c_s = _fresnel_series(_where(small, ax, jnp.zeros_like(x)))
    s_f, c_f = _fresnel_fraction(_where(small | (ax == np.inf), scalar_like(2, x), ax))
    half = scalar_like(0.5, x)
    s = _where(small, s_s, _where(ax == np.inf, half, s_f))
    c = _where(small, c_s, _where(ax == np.inf, half, c_f))
    return _where(jnp.isnan(x), x, jnp.sign(x) * s), _where(jnp.isnan(x), x, jnp.sign(x) * c)


@_fresnel.defjvp
def _fresnel_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    arg = np.pi / 2 * x * x
    return _fresnel(x), (jnp.sin(arg) * t, jnp.cos(arg) * t)


def fresnel(x: Any) -> tuple:
    """The Fresnel integrals ``(S(x), C(x))``: ``S(x) = int_0^x sin(pi t**2 / 2) dt`` and
    ``C(x) = int_0^x cos(pi t**2 / 2) dt`` (odd, 1/2 at infinity), with the derivatives
    ``sin(pi x**2 / 2)`` and ``cos(pi x**2 / 2)`` (``jax.scipy.special.fresnel``).

    Examples:
        >>> import fungrad.scipy.special as fss
        >>> [round(float(v), 6) for v in fss.fresnel(1.0)]
        [0.438259, 0.779893]
    """
    x, = promote_args_inexact("fresnel", x)
    if x.dtype.kind == "c":
        raise NotImplementedError("fresnel: support for complex-valued inputs is not "
                                  "implemented.")
    if x.dtype not in (np.float32, np.float64):  # float16 and bfloat16 in float32, as JAX
        return tuple(v.astype(x.dtype) for v in _fresnel(x.astype(np.float32)))
    return _fresnel(x)


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


__all__ = ["dawsn", "fresnel", "owens_t"]
