"""Special functions: erf, erfc, erf_inv, lgamma, digamma, polygamma.

No SciPy and no loop over elements: each function is a fixed sequence of array
operations, evaluated in float64 and rounded once to the input dtype.

* erf/erfc: the series ``erf x = 2/sqrt(pi) e^{-x^2} sum_n x (2x^2)^n / (2n+1)!!`` (all
  terms positive) below ``|x| = 2``; Laplace's continued fraction for erfc above,
  which keeps erfc's relative accuracy in the far tail.
* erf_inv: Chebyshev fits (least squares, relative error 1.3e-10 and 2.7e-7) of
  ``erf_inv(x) / x`` in ``w = -log(1 - x^2)`` (centre) and ``sqrt(w)`` (tails),
  then Halley steps on erf/erfc where more accuracy is needed.
* lgamma, digamma, polygamma: shift the argument above 10 with the recurrences,
  then the Stirling / Euler-Maclaurin asymptotic series (Bernoulli numbers up to
  B_18); negative arguments use the reflection formulas.

Fewer series terms are used for float32 and narrower inputs than for float64.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from fungrad._core import dtypes
from fungrad.interpreters import ad
from fungrad.lax._prim import FLOAT
from fungrad.lax.elementwise import add, binop, const, mul, neg, square, unop
from fungrad.lax.transcendental import exp

_SQRT_PI = math.sqrt(math.pi)
# B_2, B_4, ..., B_18
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
              43867 / 798)
_SHIFT = 10.0  # asymptotic series are used at arguments >= this


def _special(f: Callable) -> Callable:
    """An impl running ``f(xp, *float64 args, precise=...)`` and rounding to the input dtype.

    Poles and infinities are handled explicitly, so NumPy's warnings are silenced."""
    def impl(xp, *args):
        dtype = args[0].dtype
        with np.errstate(all="ignore"):
            out = f(xp, *[xp.asarray(a, dtype=np.float64) for a in args],
                    precise=dtype == dtypes.float64)
        return out.astype(dtype)
    return impl


# --------------------------------------------------------------------------- erf, erfc

def _erf_series(xp, a, terms):
    x2 = 2 * a * a
    term = total = a
    for n in range(1, terms):
        term = term * x2 / (2 * n + 1)
        total = total + term
    return (2 / _SQRT_PI) * xp.exp(-a * a) * total


def _erfc_fraction(xp, a, depth):
    f = a
    for k in range(depth, 0, -1):
        f = a + (0.5 * k) / f
    return xp.exp(-a * a) / (_SQRT_PI * f)


def _erf_erfc_abs(xp, a, precise):
    """erf and erfc of ``a >= 0`` (or nan), each computed where it is accurate."""
    terms, depth = (34, 50) if precise else (24, 24)
    small = a < 2.0
    erf_a, erfc_a = xp.empty_like(a), xp.empty_like(a)
    e = _erf_series(xp, a[small], terms)
    erf_a[small], erfc_a[small] = e, 1 - e
    c = _erfc_fraction(xp, a[~small], depth)
    erf_a[~small], erfc_a[~small] = 1 - c, c
    return erf_a, erfc_a


def _erf(xp, x, precise):
    return xp.copysign(_erf_erfc_abs(xp, xp.abs(x), precise)[0], x)


def _erfc(xp, x, precise):
    erfc_a = _erf_erfc_abs(xp, xp.abs(x), precise)[1]
    return xp.where(x < 0, 2 - erfc_a, erfc_a)


erf_p, erf = unop("erf", _special(_erf), FLOAT, "Elementwise error function (``jax.lax.erf``).")
ad.defjvp(erf_p, lambda t, x: mul(const(x, 2 / _SQRT_PI), mul(t, exp(neg(square(x))))))

erfc_p, erfc = unop("erfc", _special(_erfc), FLOAT,
                    "Elementwise complementary error function ``1 - erf(x)``, accurate in the "
                    "tail (``jax.lax.erfc``).")
ad.defjvp(erfc_p, lambda t, x: mul(const(x, -2 / _SQRT_PI), mul(t, exp(neg(square(x))))))


# --------------------------------------------------------------------------- erf_inv

# Chebyshev coefficients of erf_inv(x) / x in w on [0, 6.25], and in sqrt(w) on [2.5, 6.05]
# (|x| = 1 - 2**-53 gives sqrt(w) = 6.04).
_ERF_INV_CENTRE = (
    1.630422098948899, 0.7315674456892506, -0.02123503213651052, -0.006580887527156855,
    0.0019488711488772432, -0.00014158341799694354, -4.9292858087879935e-05,
    1.4752904794115548e-05, -6.111846781384089e-07, -5.106811949163892e-07,
    1.1591110375669487e-07, 1.5123637487351932e-09, -5.2340199516193505e-09,
    8.803980499786565e-10, 1.0207497134416428e-10)
_ERF_INV_TAIL = (
    4.119728189014444, 1.7890274385104776, 0.002760225207482957, -0.001547556748769775,
    0.0005819289827523759, -0.000220767900330646, 8.720348677785537e-05,
    -3.328620966313175e-05, 1.1066319552697104e-05, -2.897917440014455e-06,
    3.2225381792608414e-07)


def _chebyshev(coeffs, v, lo, hi):
    """Clenshaw evaluation of a Chebyshev series on ``[lo, hi]``."""
    t = (2 * v - (lo + hi)) / (hi - lo)
    b1 = b2 = 0.0
    for c in coeffs[:0:-1]:
        b1, b2 = 2 * t * b1 - b2 + c, b1
    return t * b1 - b2 + coeffs[0]


def _halley(y, residual, xp):
    """One Halley step for ``erf(y) = target``: ``residual`` is ``erf(y) - target``."""
    u = residual * (_SQRT_PI / 2) * xp.exp(y * y)
    return y - u / (1 + u * y)


def _erf_inv(xp, x, precise):
    a = xp.abs(x)
    w = -(xp.log1p(-a) + xp.log1p(a))  # -log(1 - a^2), accurate as a -> 1
    centre = w < 6.25
    y = xp.empty_like(a)
    ac = a[centre]
    yc = ac * _chebyshev(_ERF_INV_CENTRE, w[centre], 0.0, 6.25)
    if precise:
        yc = _halley(yc, _erf_erfc_abs(xp, yc, True)[0] - ac, xp)
    y[centre] = yc
    # Tails: solve erfc(y) = 1 - a, which 1 - a represents exactly.
    at = a[~centre]
    yt = at * _chebyshev(_ERF_INV_TAIL, xp.sqrt(w[~centre]), 2.5, 6.05)
    for _ in range(2):
        yt = _halley(yt, (1 - at) - _erfc_fraction(xp, yt, 50), xp)
    y[~centre] = yt
    return xp.copysign(xp.where(a == 1, np.inf, y), x)


erf_inv_p, erf_inv = unop("erf_inv", _special(_erf_inv), FLOAT,
                          "Elementwise inverse error function on [-1, 1] (``jax.lax.erf_inv``).")
ad.defjvp2(erf_inv_p, lambda t, ans, x: mul(const(x, _SQRT_PI / 2), mul(t, exp(square(ans)))))


# --------------------------------------------------------------------------- lgamma

def _shift_up(xp, x, init, update, threshold=_SHIFT):
    """Raise ``x > 0`` to ``z >= threshold`` by steps of 1, folding ``update(acc, z)`` over
    the steps (the loop runs at most ``threshold`` times, over whole arrays)."""
    z, acc = x, xp.full(x.shape, init)
    low = z < threshold
    while low.any():
        acc = xp.where(low, update(acc, z), acc)
        z = xp.where(low, z + 1, z)
        low = z < threshold
    return z, acc


def _asymptotic(z, coeffs, first_power, step_power=2):
    """``sum_k coeffs[k] * z ** -(first_power + step_power * k)`` by Horner's rule."""
    r = 1 / z
    rs = r ** step_power
    total = 0.0
    for c in reversed(coeffs):
        total = total * rs + c
    return total * r ** first_power


def _lgamma_positive(xp, x):
    z, prod = _shift_up(xp, x, 1.0, lambda acc, z: acc * z)
    stirling = _asymptotic(z, [b / (2 * k * (2 * k - 1)) for k, b in enumerate(_BERNOULLI, 1)], 1)
    return ((z - 0.5) * (xp.log(z) - 1) - 0.5 + 0.5 * math.log(2 * math.pi) + stirling
            - xp.log(prod))


def _sin_pi(xp, x):
    """``sin(pi x)`` with the argument reduced exactly first."""
    return xp.sin(math.pi * (x - xp.round(x)))


def _lgamma(xp, x, precise):
    negative = x < 0
    lg = _lgamma_positive(xp, xp.where(negative, 1 - x, x))
    reflected = xp.log(math.pi / xp.abs(_sin_pi(xp, x))) - lg  # Gamma(x) Gamma(1-x) = pi / sin(pi x)
    return xp.where(xp.isinf(x), np.inf, xp.where(negative, reflected, lg))


lgamma_p, lgamma = unop("lgamma", _special(_lgamma), FLOAT,
                        "Elementwise ``log |Gamma(x)|`` (``jax.lax.lgamma``).")
ad.defjvp(lgamma_p, lambda t, x: mul(t, digamma(x)))


# --------------------------------------------------------------------------- digamma, polygamma

@functools.lru_cache(maxsize=None)
def _cot_derivative(m: int) -> tuple[float, ...]:
    """Coefficients of Q_m with d^m/dx^m cot(pi x) = pi^m Q_m(cot(pi x))."""
    q = [0, 1]  # Q_0(c) = c;  Q_{k+1}(c) = -(1 + c^2) Q_k'(c)
    for _ in range(m):
        dq = [i * q[i] for i in range(1, len(q))]
        nxt = [0] * (len(dq) + 2)
        for i, v in enumerate(dq):
            nxt[i] -= v
            nxt[i + 2] -= v
        q = nxt
    return tuple(float(c) for c in q)


def _polygamma_positive(xp, m: int, x):
    """psi^(m)(x) for x > 0: the asymptotic series after shifting x above 10 (or 10 + 2m)."""
    if m == 0:
        z, acc = _shift_up(xp, x, 0.0, lambda acc, z: acc + 1 / z)
        tail = _asymptotic(z, [b / (2 * k) for k, b in enumerate(_BERNOULLI, 1)], 2)
        return xp.log(z) - 0.5 / z - tail - acc
    s = m + 1  # psi^(m)(x) = (-1)^(m+1) m! zeta(m + 1, x), Hurwitz zeta by Euler-Maclaurin
    z, acc = _shift_up(xp, x, 0.0, lambda acc, z: acc + z ** -s, _SHIFT + 2 * m)
    coeffs, rising = [], 1.0
    for k, b in enumerate(_BERNOULLI, 1):  # rising = s (s+1) ... (s+2k-2)
        rising *= s if k == 1 else (s + 2 * k - 3) * (s + 2 * k - 2)
        coeffs.append(b / math.factorial(2 * k) * rising)
    zeta = acc + z ** (1 - s) / (s - 1) + 0.5 * z ** -s + _asymptotic(z, coeffs, s + 1)
    return (-1) ** (m + 1) * math.factorial(m) * zeta


def _polygamma_order(xp, m: int, x):
    """psi^(m)(x) for all real x: reflection for x <= 0, nan or inf at the poles."""
    reflect = x <= 0
    direct = _polygamma_positive(xp, m, xp.where(reflect, 1 - x, x))
    c = xp.cos(math.pi * (x - xp.round(x))) / _sin_pi(xp, x)
    q = 0.0
    for coeff in reversed(_cot_derivative(m)):
        q = q * c + coeff
    # psi^(m)(x) = (-1)^m psi^(m)(1 - x) - pi^(m+1) Q_m(cot(pi x))
    reflected = (-1) ** m * direct - math.pi ** (m + 1) * q
    pole = reflect & (x == xp.round(x))
    at_pole = np.inf if m % 2 else np.nan
    return xp.where(pole, at_pole, xp.where(reflect, reflected, direct))


def _digamma(xp, x, precise):
    return _polygamma_order(xp, 0, x)


digamma_p, digamma = unop("digamma", _special(_digamma), FLOAT,
                          "Elementwise digamma ``Gamma'(x) / Gamma(x)`` (``jax.lax.digamma``).")
ad.defjvp(digamma_p, lambda t, x: mul(t, polygamma(const(x, 1), x)))


def _polygamma(xp, m, x, precise):
    m, x = xp.broadcast_arrays(m, x)
    out = xp.full(x.shape, np.nan)
    for order in xp.unique(m).tolist():  # one pass per distinct order, usually one
        if order >= 0 and order == int(order):
            where = m == order
            out[where] = _polygamma_order(xp, int(order), x[where])
    return out


def _polygamma_jvp_m(t, m, x):
    raise ValueError("polygamma gradient with respect to m is not supported "
                     "(m is an integer order)")


polygamma_p, polygamma = binop("polygamma", _special(_polygamma), FLOAT,
                               "The m-th derivative of digamma at x, for integer m >= 0 "
                               "(``jax.lax.polygamma``); nan for other m.")
ad.defjvp(polygamma_p, _polygamma_jvp_m,
          lambda t, m, x: mul(t, polygamma(add(m, const(m, 1)), x)))


__all__ = ["erf", "erf_p", "erfc", "erfc_p", "erf_inv", "erf_inv_p", "lgamma", "lgamma_p",
           "digamma", "digamma_p", "polygamma", "polygamma_p"]
