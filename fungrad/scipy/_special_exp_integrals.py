"""The exponential, sine and cosine integrals and the dilogarithm of ``jax.scipy.special``:
``expi``, ``exp1``, ``expn``, ``sici`` and ``spence``, for real arguments.

Each is a power series where it converges fast and a continued fraction or an asymptotic
series elsewhere, summed for a fixed number of terms (so the same code runs eagerly, under
``jit`` and under ``vmap``); the counts below reach float64 accuracy on every interval:

* ``E_n(x)``: the series in ``x`` for ``x <= 1`` (with ``digamma(n)`` at the term where
  ``x**(n-1)`` appears) and the continued fraction of Numerical Recipes 6.3 above;
* ``Ei(x)``: ``-E_1(-x)`` for ``x < 0``, the series ``gamma + log x + sum x**k / (k k!)``
  up to ``x = 40`` and the asymptotic series ``e**x / x sum k! / x**k`` above;
* ``Si``/``Ci``: their power series up to ``|x| = 4`` and above the continued fraction of
  ``E_1(i x) = -Ci(x) + i (Si(x) - pi / 2)``, in real and imaginary parts;
* ``spence(x) = Li_2(1 - x)``: the series of ``Li_2`` at ``1 - y`` or, by reflection,
  at ``y``, where ``y`` is ``x`` or (inversion) ``1 / x``, all of modulus at most 1/2.

The derivatives are JAX's custom JVPs: ``d expi = e**x / x``, ``d expn(n, .) =
-expn(n - 1, .)`` (``n`` is not differentiable), ``d sici = (sinc, cos x / x)``;
``spence`` is differentiated through its series, as JAX differentiates its rational
approximation. Values at the edges are SciPy's where JAX 0.10's differ: ``expi(0) =
-inf``, ``expi(-inf) = 0``, ``expi(inf) = inf``, ``expn(n, inf) = 0`` and ``expn(n, 0) =
1 / (n - 1)`` for ``n >= 2`` (JAX gives NaN for the first four and ``1 / n`` for the last).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact, scalar_like
from fungrad.numpy._util import where as _where
from fungrad.transforms.custom_derivatives import custom_jvp

_EULER = float(np.euler_gamma)
_SERIES_TERMS = 24  # x**k / k! < 1e-24 for x <= 1
_FRACTION_TERMS = 128
_EI_SERIES_TERMS = 128  # x**k / (k k!) e**-x < 1e-17 for x <= 40
_EI_ASYMPTOTIC_TERMS = 30  # k! / x**k < 3e-16 for x >= 40


def _real(name: str, *args: Any) -> list:
    """``args`` promoted to a common inexact dtype; complex ones raise."""
    args = promote_args_inexact(name, *args)
    if args[0].dtype.kind == "c":
        raise ValueError(f"{name} does not support complex-valued inputs.")
    return args


def _expn_series(n: Any, x: Any) -> Any:
    # E_n(x) = (-x)**(n-1) / (n-1)! (digamma(n) - log x) - sum_{k != n-1} (-x)**k / (k! (k-n+1))
    one = scalar_like(1, x)
    first = _where(n == 1, -jnp.log(x) - _EULER, one / _where(n == 1, one, n - 1))

    def body(k, carry):
        fact, total = carry
        kf = lax.convert_element_type(k, x.dtype)
        fact = -fact * x / kf
        at_pole = kf == n - 1
        denom = _where(at_pole, one, kf - n + 1)
        term = _where(at_pole, fact * (lax.digamma(_where(n > 0, n, one)) - jnp.log(x)),
                      -fact / denom)
        return fact, total + term
    return lax.fori_loop(1, _SERIES_TERMS + 1, body, (jnp.ones_like(x), first))[1]


def _expn_fraction(n: Any, x: Any) -> Any:
    # modified Lentz on E_n(x) = e**-x (1/(x+n-) 1 n/(x+n+2-) 2 (n+1)/(x+n+4-) ...); a factor
    # within eps of 1 ends the product (as the loop's break would), which keeps float32 from
    # accumulating rounding over the remaining steps
    tiny, eps = float(np.finfo(x.dtype).tiny), float(np.finfo(x.dtype).eps)
    b = x + n
    d = 1 / b

    def body(i, carry):
        b, c, d, h, done = carry
        fi = lax.convert_element_type(i, x.dtype)
        a = -fi * (n - 1 + fi)
        b = b + 2
        d = a * d + b
        d = 1 / _where(d == 0, tiny, d)
        c = b + a / c
        c = _where(c == 0, tiny, c)
        factor = _where(done, jnp.ones_like(x), c * d)
        return b, c, d, h * factor, done | (jnp.abs(factor - 1) < eps)
    c = jnp.full_like(x, 1 / tiny)
    h = lax.fori_loop(1, _FRACTION_TERMS, body, (b, c, d, d, jnp.zeros_like(x, bool)))[3]
    return h * jnp.exp(-x)


def _expn(n: Any, x: Any) -> Any:
    one = scalar_like(1, x)
    inside = (n > 0) & (x > 0) & (x < np.inf)
    small = x <= 1
    x_small = _where(inside & small, x, one / 2)
    x_large = _where(inside & ~small, x, scalar_like(2, x))
    n_safe = _where(inside, n, one)
    value = _where(small, _expn_series(n_safe, x_small), _expn_fraction(n_safe, x_large))
    x_pos = _where(x > 0, x, one)
    nan = scalar_like(np.nan, x)
    edge = _where((n < 0) | (x < 0) | jnp.isnan(x) | jnp.isnan(n), nan,
                  _where(x == 0, _where(n < 2, scalar_like(np.inf, x),
                                        one / _where(n < 2, one, n - 1)),
                         _where(x == np.inf, jnp.zeros_like(x), jnp.exp(-x_pos) / x_pos)))
    return _where(inside & (n != 0), value, edge)


@custom_jvp
def _expn_custom(n: Any, x: Any) -> Any:
    return _expn(n, x)


@_expn_custom.defjvp
def _expn_jvp(primals: tuple, tangents: tuple) -> tuple:
    n, x = primals
    return _expn_custom(n, x), -tangents[1] * _expn_custom(n - 1, x)


def expn(n: Any, x: Any) -> Any:
    """The generalized exponential integral ``E_n(x) = x**(n-1) int_x^inf e**-t / t**n dt``
    for integer-valued ``n >= 0`` and ``x >= 0`` (NaN outside; ``inf`` at ``x = 0`` for
    ``n < 2``, ``1 / (n - 1)`` above, where JAX gives ``1 / n``), differentiable in ``x``:
    ``d/dx E_n = -E_(n-1)`` (``jax.scipy.special.expn``).

    >>> import fungrad.scipy.special as fss
    >>> round(float(fss.expn(2, 1.0)), 6)
    0.148496
    """
    n, x = _real("expn", n, x)
    n, x = jnp.broadcast_arrays(n, x)
    return _expn_custom(lax.stop_gradient(n), x)


def exp1(x: Any) -> Any:
    """The exponential integral ``E_1(x) = int_x^inf e**-t / t dt`` for ``x >= 0``
    (``expn(1, x)``, ``jax.scipy.special.exp1``).

    >>> import fungrad.scipy.special as fss
    >>> round(float(fss.exp1(1.0)), 6)
    0.219384
    """
    x, = _real("exp1", x)
    return expn(1, x)


def _ei_series(x: Any) -> Any:
    def body(k, carry):
        term, total = carry
        kf = lax.convert_element_type(k, x.dtype)
        term = term * x / kf
        return term, total + term / kf
    total = lax.fori_loop(1, _EI_SERIES_TERMS + 1, body, (jnp.ones_like(x), jnp.zeros_like(x)))[1]
    return _EULER + jnp.log(x) + total


def _ei_asymptotic(x: Any) -> Any:
    def body(k, carry):
        term, total = carry
        term = term * lax.convert_element_type(k, x.dtype) / x
        return term, total + term
    ones = jnp.ones_like(x)
    total = lax.fori_loop(1, _EI_ASYMPTOTIC_TERMS + 1, body, (ones, ones))[1]
    return jnp.exp(x) / x * total


@custom_jvp
def _expi(x: Any) -> Any:
    one = scalar_like(1, x)
    finite = jnp.isfinite(x) & (x != 0)
    x_neg = _where(finite & (x < 0), -x, one)
    x_mid = _where(finite & (x > 0) & (x <= 40), x, one)
    x_big = _where(x > 40, x, scalar_like(41, x))
    value = _where(x < 0, -_expn(jnp.ones_like(x), x_neg),
                   _where(x <= 40, _ei_series(x_mid), _ei_asymptotic(x_big)))
    edge = _where(x == 0, scalar_like(-np.inf, x), _where(x == -np.inf, jnp.zeros_like(x), x))
    return _where(finite, value, edge)


_expi.defjvps(lambda t, ans, x: t * jnp.exp(x) / x)


def expi(x: Any) -> Any:
    """The exponential integral ``Ei(x) = int_-inf^x e**t / t dt`` for real ``x``
    (``-E_1(-x)`` below 0), with the derivative ``e**x / x`` (``jax.scipy.special.expi``;
    ``-inf`` at 0, 0 at ``-inf`` and ``inf`` at ``inf``, as in SciPy, where JAX gives NaN).

    >>> import fungrad.scipy.special as fss
    >>> round(float(fss.expi(1.0)), 6)
    1.895118
    """
    x, = _real("expi", x)
    return _expi(x)


def _cmul(ar: Any, ai: Any, br: Any, bi: Any) -> tuple:
    return ar * br - ai * bi, ar * bi + ai * br


def _crecip(ar: Any, ai: Any) -> tuple:
    # 1 / (ar + i ai), scaled so that neither square overflows
    big = jnp.maximum(jnp.abs(ar), jnp.abs(ai))
    big = _where(big == 0, jnp.ones_like(big), big)
    sr, si = ar / big, ai / big
    norm = (sr * sr + si * si) * big
    return sr / norm, -si / norm


def _sici_series(x: Any) -> tuple:
    def body(k, carry):
        term, si, ci = carry  # term = (-1)**j x**j / j! at j = 2k - 1
        kf = lax.convert_element_type(k, x.dtype)
        even = -term * x / (2 * kf)
        odd = even * x / (2 * kf + 1)
        return odd, si + odd / (2 * kf + 1), ci + even / (2 * kf)
    _, si, ci = lax.fori_loop(1, _SERIES_TERMS + 1, body, (x, x, jnp.zeros_like(x)))
    return si, _EULER + jnp.log(x) + ci


def _sici_fraction(x: Any) -> tuple:
    # E_1(i x) by the continued fraction of E_n with n = 1, in real and imaginary parts,
    # ended as in _expn_fraction
    tiny, eps = float(np.finfo(x.dtype).tiny), float(np.finfo(x.dtype).eps)
    one = jnp.ones_like(x)
    dr, di = _crecip(one, x)

    def body(i, carry):
        br, c_r, c_i, d_r, d_i, h_r, h_i, done = carry
        a = -lax.convert_element_type(i, x.dtype) ** 2
        br = br + 2
        d_r, d_i = _crecip(a * d_r + br, a * d_i + x)
        qr, qi = _crecip(c_r, c_i)
        c_r, c_i = br + a * qr, x + a * qi
        c_r = _where((c_r == 0) & (c_i == 0), tiny, c_r)
        e_r, e_i = _cmul(c_r, c_i, d_r, d_i)
        e_r, e_i = _where(done, one, e_r), _where(done, jnp.zeros_like(x), e_i)
        h_r, h_i = _cmul(h_r, h_i, e_r, e_i)
        return br, c_r, c_i, d_r, d_i, h_r, h_i, done | (jnp.abs(e_r - 1) + jnp.abs(e_i) < eps)
    init = (one, one / tiny, jnp.zeros_like(x), dr, di, dr, di, jnp.zeros_like(x, bool))
    h_r, h_i = lax.fori_loop(1, _FRACTION_TERMS, body, init)[5:7]
    h_r, h_i = _cmul(h_r, h_i, jnp.cos(x), -jnp.sin(x))
    return np.pi / 2 + h_i, -h_r


@custom_jvp
def _sici(x: Any) -> tuple:
    ax = jnp.abs(x)
    one = scalar_like(1, x)
    small = ax <= 4
    si_s, ci_s = _sici_series(_where(small & (ax > 0), ax, one))
    si_f, ci_f = _sici_fraction(_where(~small & (ax < np.inf), ax, scalar_like(5, x)))
    si = _where(small, si_s, _where(ax == np.inf, scalar_like(np.pi / 2, x), si_f))
    ci = _where(small, ci_s, _where(ax == np.inf, jnp.zeros_like(x), ci_f))
    si = _where(ax == 0, jnp.zeros_like(x), si)
    ci = _where(ax == 0, scalar_like(-np.inf, x), ci)
    si = _where(jnp.isnan(x), x, jnp.sign(x) * si)
    ci = _where(jnp.isnan(x) | (x == -np.inf), scalar_like(np.nan, x), ci)
    return si, ci


@_sici.defjvp
def _sici_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    return _sici(x), (jnp.sinc(x / np.pi) * t, jnp.cos(x) / x * t)


def sici(x: Any) -> tuple:
    """The sine and cosine integrals ``(Si(x), Ci(x))``: ``Si(x) = int_0^x sin t / t dt``
    and ``Ci(x) = gamma + log x + int_0^x (cos t - 1) / t dt`` (``Ci(|x|)`` for negative
    ``x``, as in JAX), with the derivatives ``sinc`` and ``cos x / x``
    (``jax.scipy.special.sici``).

    Examples:
        >>> import fungrad.scipy.special as fss
        >>> [round(float(v), 6) for v in fss.sici(1.0)]
        [0.946083, 0.337404]
    """
    x, = promote_args_inexact("sici", x)
    if x.dtype.kind == "c":
        raise ValueError(f"Argument `x` to sici must be real-valued. Got dtype {x.dtype}.")
    return _sici(x)


def _li2_series(z: Any) -> Any:
    # Li_2(z) = sum z**k / k**2 for |z| <= 1/2: 2**-52 after 52 terms
    def body(k, carry):
        power, total = carry
        power = power * z
        return power, total + power / lax.convert_element_type(k * k, z.dtype)
    return lax.fori_loop(1, 56, body, (jnp.ones_like(z), jnp.zeros_like(z)))[1]


def _spence(x: Any) -> tuple:
    # spence(x) = -spence(1/x) - log(x)**2 / 2 brings x > 2 into (0, 1/2) and (3/2, 2] into
    # [1/2, 2/3); Li_2(1 - y) = pi**2/6 - log y log(1 - y) - Li_2(y) serves y < 1/2
    one = scalar_like(1, x)
    ok = (x > 0) & (x < np.inf) & (x != 1)
    x = _where(ok, x, scalar_like(2, x))
    inverted = x > 1.5
    y = _where(inverted, one / x, x)
    low = y < 0.5
    series = _li2_series(_where(low, y, 1 - y))
    y_low = _where(low, y, one / 2)
    value = _where(low, np.pi ** 2 / 6 - jnp.log(y_low) * jnp.log1p(-y_low) - series, series)
    return _where(inverted, -value - jnp.log(x) ** 2 / 2, value), ok


def spence(x: Any) -> Any:
    """Spence's function ``int_1^x log t / (1 - t) dt`` (the dilogarithm ``Li_2(1 - x)``)
    for ``x >= 0``, NaN for negative ``x`` (``jax.scipy.special.spence``). Float32 and
    float64 arrays only, as in JAX.

    >>> import fungrad.scipy.special as fss
    >>> round(float(fss.spence(2.0)), 6)
    -0.822467
    """
    x = jnp.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"spence: x.dtype={x.dtype} is not supported, only float32 and "
                        "float64 are.")
    value, ok = _spence(x)
    edge = _where(x == 0, scalar_like(np.pi ** 2 / 6, x),
                  _where(x == 1, jnp.zeros_like(x), scalar_like(np.nan, x)))
    return _where(ok, value, edge)


__all__ = ["exp1", "expi", "expn", "sici", "spence"]
