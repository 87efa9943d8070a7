"""Special functions: erf, erfc, erf_inv, lgamma, digamma, polygamma.

No SciPy and no loop over elements: each function is a short, fixed sequence of
array operations evaluated in float64 and rounded once to the input dtype.
float32 and narrower inputs use cheaper approximations (relative error ~1e-9)
than float64 inputs (~1e-15).

* erfc: ``erfc z = t exp(Q(t) - z^2)`` with ``t = 2 / (2 + z)``, the form of Numerical
  Recipes' ``erfccheb``, which keeps erfc's relative accuracy in the far tail; erf is
  ``x P(x^2)`` for ``|x| <= 1`` and ``1 - erfc`` beyond.
* erf_inv: ``erf_inv(x) / x`` in ``w = -log(1 - x^2)`` (centre) and ``sqrt(w)`` (tails),
  then Halley steps on erf/erfc where more accuracy is needed.
* lgamma, digamma: shift the argument above 10 with the recurrences, then the
  Stirling series (Bernoulli numbers up to B_18); reflection for negative arguments.
* polygamma: the Hurwitz zeta function by Euler-Maclaurin, reflection for x <= 0.

Q, P and the erf_inv curves are Chebyshev series fitted by least squares (on a
dense grid, weighted for relative error) to a double-precision reference.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from fungrad._core import dtypes, lowering
from fungrad.backends.masked import may_hold, where_masked
from fungrad.interpreters import ad
from fungrad.lax._prim import FLOAT
from fungrad.lax._ops import binop, const, unop
from fungrad.lax.elementwise import add, mul, neg, square
from fungrad.lax.transcendental import exp

_SQRT_PI = math.sqrt(math.pi)
# B_2, B_4, ..., B_18
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
              43867 / 798)
_SHIFT = 10  # the asymptotic series are used at arguments >= this


def _special(f: Callable) -> Callable:
    """An impl running ``f(xp, *args, precise=...)`` on flat float64 versions of the
    (broadcast) arguments, which it only reads (in-place updates go to buffers it made),
    and rounding the result to the input dtype.

    Poles, infinities and masked-out branches are handled explicitly; the infs and nans
    computed on the way pass silently (impls run with NumPy's floating-point errors
    ignored, see ``fungrad._core.fpstate``)."""
    def impl(xp, *args):
        dtype = args[0].dtype
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))  # args[1:] may be scalars
        flat = [xp.broadcast_to(xp.asarray(a, dtype=np.float64), shape).reshape(-1) for a in args]
        out = f(xp, *flat, precise=dtype == dtypes.float64)
        return out.astype(dtype).reshape(shape)
    return impl


def _power_basis(chebyshev_coeffs: tuple) -> tuple:
    """Monomial coefficients of a Chebyshev series on [-1, 1] (well conditioned here: the
    series decay fast, and the monomial coefficients stay below 5)."""
    return tuple(np.polynomial.chebyshev.cheb2poly(chebyshev_coeffs).tolist())


def _horner(coeffs: tuple, s):
    """``sum_k coeffs[k] s**k``, updating one buffer in place."""
    acc = coeffs[-1] * s
    acc += coeffs[-2]
    for c in coeffs[-3::-1]:
        acc *= s
        acc += c
    return acc


def _series(coeffs, z, first_power: int):
    """``sum_k coeffs[k] z ** -(first_power + 2 k)`` by Horner's rule in ``1 / z^2``."""
    r = 1 / z
    r2 = r * r
    total = 0.0
    for c in reversed(coeffs):
        total = total * r2 + c
    return total * r ** first_power


# --------------------------------------------------------------------------- erf, erfc

# Q(t) in s = 2t - 1 (absolute error 1.2e-9 / 3e-15) and P(x^2) in 2x^2 - 1 on |x| <= 1
# (relative error 1.6e-9 / 2.7e-15), for float32 and float64 inputs.
_ERFC_EXPONENT_32 = _power_basis((
    -0.6513268598857199, 0.6419697923462155, 0.019476473214452433, -0.009561514797078131,
    -0.0009465953342236736, 0.0003668394875943163, 4.252333505193219e-05,
    -2.0278588354597594e-05, -1.6242797784554572e-06, 1.303645615080855e-06,
    1.5636643512061154e-08, -8.524828906908409e-08, 6.539226768294274e-09,
    5.049182757569921e-09,))
_ERFC_EXPONENT_64 = _power_basis((
    -0.6513268598908544, 0.6419697923564891, 0.019476473204185663, -0.00956151478680853,
    -0.0009465953444820829, 0.0003668394978528021, 4.2523324806863215e-05,
    -2.027857811247144e-05, -1.6242900047042088e-06, 1.3036558359240463e-06,
    1.5626441685468876e-08, -8.523809586326605e-08, 6.529054601386376e-09,
    5.059343557419675e-09, -9.913639617564955e-10, -2.2736509266799495e-10,
    9.646799341842001e-11, 2.3941295495956135e-12, -6.885946759726734e-12,
    8.945167981315663e-13, 3.132260674490385e-13, -1.1265856928590317e-13,
    2.397588834822584e-16, 7.112593558587487e-15, -1.6941732267932166e-15,))
_ERF_SMALL_32 = _power_basis((
    0.9754769394124191, -0.1422612051647539, 0.01003558225352184, -0.0005768765457983382,
    2.74200260671124e-05, -1.1044528405707602e-06, 3.873775793687938e-08,))
_ERF_SMALL_64 = _power_basis((
    0.9754769393826541, -0.14226120510371362, 0.010035582187599361, -0.0005768764699765368,
    2.7419931252101623e-05, -1.1043175510519576e-06, 3.848875547869942e-08,
    -1.1808576866125472e-09, 3.233376360870684e-11, -7.993430230839842e-13,
    1.8494289926597884e-14,))

def _erfc_abs(xp, a, precise):
    """erfc(a) for a >= 0 (or nan)."""
    t = 2 / (2 + a)
    q = _horner(_ERFC_EXPONENT_64 if precise else _ERFC_EXPONENT_32, 2 * t - 1)
    return t * xp.exp(q - a * a)


def _erf(xp, x, precise):
    a = xp.abs(x)
    small = x * _horner(_ERF_SMALL_64 if precise else _ERF_SMALL_32, 2 * a * a - 1)
    return xp.where(a <= 1, small, xp.copysign(1 - _erfc_abs(xp, a, precise), x))


def _erfc(xp, x, precise):
    c = _erfc_abs(xp, xp.abs(x), precise)
    return xp.where(x < 0, 2 - c, c)


erf_p, erf = unop("erf", _special(_erf), FLOAT, "Elementwise error function (``jax.lax.erf``).")
ad.defjvp(erf_p, lambda t, x: mul(const(x, 2 / _SQRT_PI), mul(t, exp(neg(square(x))))))
lowering.def_cuda(erf_p, "erf({})")

erfc_p, erfc = unop("erfc", _special(_erfc), FLOAT,
                    "Elementwise complementary error function ``1 - erf(x)``, accurate in the "
                    "tail (``jax.lax.erfc``).")
ad.defjvp(erfc_p, lambda t, x: mul(const(x, -2 / _SQRT_PI), mul(t, exp(neg(square(x))))))


# --------------------------------------------------------------------------- erf_inv

# erf_inv(x) / x as Chebyshev series in w on [0, 6.25] (relative error 3.7e-11) and in
# sqrt(w) on [2.5, 6.05] (9.4e-8; |x| = 1 - 2**-53 gives sqrt(w) = 6.04).
_ERF_INV_CENTRE = _power_basis((
    1.6304220989459337, 0.731567445674225, -0.021235032142505612, -0.00658088754244872,
    0.0019488711426907022, -0.00014158343386587078, -4.9292864637334015e-05,
    1.4752887929225206e-05, -6.111918608867582e-07, -5.106997388068057e-07,
    1.1590278637133703e-07, 1.4908106037965091e-09, -5.2451851720636146e-09,
    8.541867791968501e-10, 1.0442375657973598e-10,))
_ERF_INV_TAIL = _power_basis((
    4.119728183652611, 1.7890274918676174, 0.002760214484891951, -0.0015475017414902687,
    0.0005819183187208576, -0.0002207090617382544, 8.719322692337079e-05,
    -3.321965751964382e-05, 1.1058309948444348e-05, -2.8224708696447367e-06,
    2.5479299639967253e-07,))

def _halley(xp, y, residual):
    """One Halley step for ``erf(y) = target``, given ``residual = erf(y) - target``."""
    u = residual * (_SQRT_PI / 2) * xp.exp(y * y)
    return y - u / (1 + u * y)


def _erf_inv_tail(xp, a, w):
    """erf_inv(a) for ``|a| > 0.998``, refined to full accuracy on erfc."""
    y = a * _horner(_ERF_INV_TAIL, (2 * xp.sqrt(w) - 8.55) / 3.55)
    for _ in range(2):
        y = _halley(xp, y, (1 - a) - _erfc_abs(xp, y, True))  # 1 - a is exact
    return y


def _erf_inv(xp, x, precise):
    a = xp.abs(x)
    w = -xp.log((1 - a) * (1 + a))
    y = a * _horner(_ERF_INV_CENTRE, w * (2 / 6.25) - 1)
    if precise:
        y = _halley(xp, y, _erf(xp, y, True) - a)
    y = where_masked(xp, (w >= 6.25) & (a < 1), y, functools.partial(_erf_inv_tail, xp), a, w)
    return xp.copysign(xp.where(a == 1, np.inf, y), x)


erf_inv_p, erf_inv = unop("erf_inv", _special(_erf_inv), FLOAT,
                          "Elementwise inverse error function on [-1, 1] (``jax.lax.erf_inv``).")
ad.defjvp2(erf_inv_p, lambda t, ans, x: mul(const(x, _SQRT_PI / 2), mul(t, exp(square(ans)))))


# --------------------------------------------------------------------------- lgamma, digamma

def _shifted(xp, x, acc, fold):
    """Where ``x < 10``: ``z = x + 10`` and ``fold(acc, v)`` (in place) over ``v = x + 1,
    ..., x + 9``, starting from the given ``acc``. Returns the mask, ``z`` and the fold."""
    v = x.copy()
    for _ in range(1, _SHIFT):
        v += 1
        fold(acc, v)
    low = x < _SHIFT
    return low, xp.where(low, v + 1, x), acc


def _multiply_into(acc, v):
    acc *= v


def _add_reciprocal_into(acc, v):
    acc += 1 / v


def _lgamma_positive(xp, x, precise):
    low, z, prod = _shifted(xp, x, x.copy(), _multiply_into)  # Gamma(x) = Gamma(x + 10) / prod
    terms = _BERNOULLI if precise else _BERNOULLI[:4]
    stirling = _series([b / (2 * k * (2 * k - 1)) for k, b in enumerate(terms, 1)], z, 1)
    return ((z - 0.5) * (xp.log(z) - 1) - 0.5 + 0.5 * math.log(2 * math.pi) + stirling
            - xp.log(xp.where(low, prod, 1.0)))


def _sin_pi(xp, x):
    """``sin(pi x)`` with the argument reduced exactly first."""
    return xp.sin(math.pi * (x - xp.round(x)))


def _lgamma(xp, x, precise):
    negative = x < 0
    if not may_hold(xp, negative):
        return _lgamma_positive(xp, x, precise)
    lg = _lgamma_positive(xp, xp.where(negative, 1 - x, x), precise)
    reflected = xp.log(math.pi / xp.abs(_sin_pi(xp, x))) - lg  # Gamma(x)Gamma(1-x) = pi/sin(pi x)
    return xp.where(negative, xp.where(xp.isinf(x), np.inf, reflected), lg)


lgamma_p, lgamma = unop("lgamma", _special(_lgamma), FLOAT,
                        "Elementwise ``log |Gamma(x)|`` (``jax.lax.lgamma``).")
ad.defjvp(lgamma_p, lambda t, x: mul(t, digamma(x)))
lowering.def_cuda(lgamma_p, "lgamma({})")


def _digamma_positive(xp, x, precise):
    low, z, recip = _shifted(xp, x, 1 / x, _add_reciprocal_into)
    terms = _BERNOULLI if precise else _BERNOULLI[:4]
    tail = _series([b / (2 * k) for k, b in enumerate(terms, 1)], z, 2)
    return xp.log(z) - 0.5 / z - tail - xp.where(low, recip, 0.0)


def _hurwitz_polygamma(xp, x, precise, m: int):
    """psi^(m)(x) = (-1)^(m+1) m! zeta(m + 1, x) for x > 0 and m >= 1.

    Sums ``(x + k)^-(m+1)`` until ``x + k >= 10 + 2m`` (at most 10 + 2m passes over the
    whole array; each of them on a device, where testing for the end would wait for
    it), then Euler-Maclaurin."""
    s = m + 1
    z, acc, low = x, xp.zeros_like(x), x < _SHIFT + 2 * m
    for _ in range(_SHIFT + 2 * m):
        if not may_hold(xp, low):
            break
        acc = xp.where(low, acc + z ** -s, acc)
        z = xp.where(low, z + 1, z)
        low = z < _SHIFT + 2 * m
    coeffs, rising = [], 1.0
    for k, b in enumerate(_BERNOULLI, 1):  # rising = s (s+1) ... (s+2k-2)
        rising *= s if k == 1 else (s + 2 * k - 3) * (s + 2 * k - 2)
        coeffs.append(b / math.factorial(2 * k) * rising)
    zeta = acc + z ** (1 - s) / (s - 1) + 0.5 * z ** -s + _series(coeffs, z, s + 1)
    return (-1) ** (m + 1) * math.factorial(m) * zeta


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


def _polygamma_order(xp, m: int, x, precise):
    """psi^(m)(x) for all real x: reflection for x <= 0, nan or inf at the poles."""
    positive = _digamma_positive if m == 0 else functools.partial(_hurwitz_polygamma, m=m)
    reflect = x <= 0
    if not may_hold(xp, reflect):
        return positive(xp, x, precise)
    direct = positive(xp, xp.where(reflect, 1 - x, x), precise)
    c = xp.cos(math.pi * (x - xp.round(x))) / _sin_pi(xp, x)
    q = 0.0
    for coeff in reversed(_cot_derivative(m)):
        q = q * c + coeff
    # psi^(m)(x) = (-1)^m psi^(m)(1 - x) - pi^(m+1) Q_m(cot(pi x))
    reflected = (-1) ** m * direct - math.pi ** (m + 1) * q
    pole = reflect & (x == xp.round(x))
    return xp.where(pole, np.inf if m % 2 else np.nan, xp.where(reflect, reflected, direct))


def _digamma(xp, x, precise):
    return _polygamma_order(xp, 0, x, precise)


digamma_p, digamma = unop("digamma", _special(_digamma), FLOAT,
                          "Elementwise digamma ``Gamma'(x) / Gamma(x)`` (``jax.lax.digamma``).")
ad.defjvp(digamma_p, lambda t, x: mul(t, polygamma(const(x, 1), x)))


def _polygamma(xp, m, x, precise):
    out = xp.full(x.shape, np.nan)
    # one pass per distinct order, usually one (a device reads the orders back: each
    # picks its own series)
    for order in xp.unique(m).tolist():
        if order >= 0 and order == int(order):
            series = functools.partial(_polygamma_order, xp, int(order), precise=precise)
            out = where_masked(xp, m == order, out, series, x, safe=(1.0,))
    return out


def _polygamma_jvp_m(t, m, x):
    raise ValueError("polygamma: the gradient with respect to m is not supported "
                     "(m is an integer order)")


polygamma_p, polygamma = binop("polygamma", _special(_polygamma), FLOAT,
                               "The m-th derivative of digamma at x, for integer m >= 0 "
                               "(``jax.lax.polygamma``); nan for other m.",
                               arg_names=("m", "x"))
ad.defjvp(polygamma_p, _polygamma_jvp_m,
          lambda t, m, x: mul(t, polygamma(add(m, const(m, 1)), x)))


__all__ = ["erf", "erf_p", "erfc", "erfc_p", "erf_inv", "erf_inv_p", "lgamma", "lgamma_p",
           "digamma", "digamma_p", "polygamma", "polygamma_p"]
