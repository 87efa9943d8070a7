"""jax.lax's special functions evaluated by series and continued fractions: the scaled
modified Bessel functions ``bessel_i0e``/``bessel_i1e``, the Hurwitz ``zeta``, the regularized
incomplete Gamma functions ``igamma``/``igammac`` with ``igamma_grad_a`` (their derivative in
``a``) and ``random_gamma_grad`` (the derivative of a Gamma(a) sample in ``a``), the regularized
incomplete Beta function ``betainc``, and the integer ``mulhi``.

Primitives, as in JAX, with NumPy implementations in float64 rounded once to the input dtype
(``lax.special._special``), and JAX's derivative rules. ``fungrad.scipy.special`` builds its
``i0e``, ``i1e``, ``i0``, ``i1``, ``zeta``, ``gammainc``, ``gammaincc`` and ``betainc`` on them.

* ``bessel_i0e``/``bessel_i1e``: Chebyshev series in ``|x| / 4 - 1`` for ``|x| <= 8`` (of
  ``i0e(x)`` and ``i1e(x) / x``) and in ``16 / |x| - 1`` beyond (of ``sqrt|x| i0e`` and
  ``sqrt|x| i1e(|x|)``), coefficients computed with mpmath at 40 digits by interpolation at the
  Chebyshev-Gauss nodes.
* ``zeta(x, q)``: the sum of ``(q + k)**-x`` until ``q + k`` passes ``10 + min(x, 100)``, then
  Euler-Maclaurin with the Bernoulli numbers up to ``B_18``.
* ``igamma``: the series of ``P(a, x)`` where ``x <= 1`` or ``x <= a``, else the continued
  fraction of ``Q(a, x)`` (modified Lentz), as JAX switches; the derivatives in ``a`` are carried
  through both (forward mode, dual numbers), and ``random_gamma_grad`` divides by the density
  analytically so that nothing underflows.
* ``betainc``: the continued fraction of ``I_x(a, b)``, through ``1 - I_(1-x)(b, a)`` above
  the mean, where it converges fast.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np

from fungrad._core import core, dtypes
from fungrad.backends.masked import converging, where_masked
from fungrad.interpreters import ad, batching
from fungrad.lax._ops import accepted_dtypes, binop, check_operands, const, operands, unop
from fungrad.lax._prim import FLOAT, INT, elementwise_prim
from fungrad.lax.elementwise import abs, add, div, le, mul, neg, select, sign, sub  # noqa: A004
from fungrad.lax.shapes import full_like
from fungrad.lax.special import _BERNOULLI, _digamma, _lgamma, _special, lgamma
from fungrad.lax.transcendental import exp, log, log1p

_MAX_ITERATIONS = 2000
_EPS = float(np.finfo(np.float64).eps)

# --------------------------------------------------------------------------- bessel_i0e, i1e

_I0E_SMALL = np.array([
    0.33839763720473804, -0.3046826723431984, 0.17162090152220878, -0.094901097048047644,
    0.049305284239670708, -0.023737414805899469, 0.010546460394594998,
    -0.0043243099950505759, 0.0016394756169413358, -0.00057637557453858237,
    0.00018850288509584166, -5.7541950100821037e-5, 1.6448448070728897e-5,
    -4.4167383584587506e-6, 1.1173875391201037e-6, -2.6707938539406117e-7,
    6.0469950225419189e-8, -1.300025009986248e-8, 2.6598237246823867e-9,
    -5.1897956016352629e-10, 9.6758090353732369e-11, -1.7268262914415557e-11,
    2.9550526631296398e-12, -4.8564467831119295e-13, 7.6761854986049356e-14,
    -1.1685332877993452e-14, 1.715391285555133e-15, -2.4312798465479547e-16,
    3.3307945188222381e-17, -4.4153416464793394e-18])

_I1E_SMALL = np.array([
    0.12629359322181683, -0.17641651835783406, 0.1026436586898471, -0.052945981208094991,
    0.024726449030626517, -0.010564084894626198, 0.0041564229443128882,
    -0.0015135724506312531, 0.00051228595616857577, -0.00016176081582589675,
    4.7815651075500542e-5, -1.3273163656039436e-5, 3.4702513081376785e-6,
    -8.5687202646954547e-7, 2.0032947535521353e-7, -4.4450591287963281e-8,
    9.3815373864957718e-9, -1.8872497517228293e-9, 3.625590281552117e-10,
    -6.6634897235020277e-11, 1.1736186298890902e-11, -1.9839743977649437e-12,
    3.2237933659455747e-13, -5.0421855047279117e-14, 7.6006842947354069e-15,
    -1.1055969477353863e-15, 1.5536319577362005e-16, -2.1114212143581661e-17,
    2.7779141127610464e-18])

_I0E_LARGE = np.array([
    0.40224520550705442, 0.0033691164782556941, 6.889758346916824e-5, 2.8913705208347565e-6,
    2.0489185894690637e-7, 2.2666689904981781e-8, 3.3962320257083863e-9,
    4.9406023882249696e-10, 1.1889147107846438e-11, -3.1499165279632414e-11,
    -1.3215811840447713e-11, -1.7941785315068061e-12, 7.1801244513836662e-13,
    3.8527783827421427e-13, 1.5400862175214098e-14, -4.1505693472872221e-14,
    -9.5548466988283079e-15, 3.8116806693526222e-15, 1.7725601330565275e-15,
    -3.4254856196772315e-16, -2.8276239805166021e-16, 3.4612228676982303e-17,
    4.4656214202961387e-17, -4.8305044859622151e-18, -7.233180487821579e-18])

_I1E_LARGE = np.array([
    0.38928811750914006, -0.0097610974913614684, -0.00011058893876262372,
    -3.8825648088776904e-6, -2.5122362378702089e-7, -2.6314688468895195e-8,
    -3.835380385964237e-9, -5.5897434621965838e-10, -1.8974958123505412e-11,
    3.2526035830154882e-11, 1.4125807436613781e-11, 2.0356285441470895e-12,
    -7.1985517762459085e-13, -4.0835511110921973e-13, -2.1015418427726643e-14,
    4.2724400167119513e-14, 1.0420276984128803e-14, -3.8144030724370076e-15,
    -1.8803547755107836e-15, 3.3082023109209412e-16, 2.9626289976459683e-16,
    -3.2095259219942047e-17, -4.6503053684887018e-17, 4.4143483230895786e-18,
    7.5172963107878595e-18])


def _clenshaw(coeffs: np.ndarray, t: Any) -> Any:
    """``sum_k coeffs[k] T_k(t)`` by Clenshaw's recurrence."""
    b1 = b2 = 0.0
    for c in coeffs[:0:-1]:
        b1, b2 = 2 * t * b1 - b2 + c, b1
    return t * b1 - b2 + coeffs[0]


def _scaled_bessel(xp, x, odd: bool):
    small, large = (_I1E_SMALL, _I1E_LARGE) if odd else (_I0E_SMALL, _I0E_LARGE)
    ax = xp.abs(x)
    near = ax <= 8
    inner = _clenshaw(small, xp.where(near, ax / 4 - 1, 0.0))
    far_x = xp.maximum(ax, 8.0)
    outer = _clenshaw(large, 16 / far_x - 1) / xp.sqrt(far_x)
    if odd:
        return xp.sign(x) * xp.where(near, ax * inner, outer)
    return xp.where(near, inner, outer)


def _i0e(xp, x, precise):
    return _scaled_bessel(xp, x, odd=False)


def _i1e(xp, x, precise):
    return _scaled_bessel(xp, x, odd=True)


bessel_i0e_p, bessel_i0e = unop(
    "bessel_i0e", _special(_i0e), FLOAT,
    "Exponentially scaled modified Bessel function of order 0, ``exp(-|x|) I0(x)`` "
    "(``jax.lax.bessel_i0e``).")
bessel_i1e_p, bessel_i1e = unop(
    "bessel_i1e", _special(_i1e), FLOAT,
    "Exponentially scaled modified Bessel function of order 1, ``exp(-|x|) I1(x)`` "
    "(``jax.lax.bessel_i1e``).")
# d/dx e^-|x| I0(x) = e^-|x| (I1(x) - sign(x) I0(x))
ad.defjvp2(bessel_i0e_p, lambda t, y, x: mul(t, sub(bessel_i1e(x), mul(sign(x), y))))


def _i1e_derivative(t, y, x):
    # e^-|x| (I0(x) - I1(x) (sign(x) + 1/x)); 1/2 at x = 0 (where I1(x)/x -> 1/2)
    eps = float(dtypes.finfo(core.get_aval(x).dtype).eps)
    tiny = le(abs(x), const(x, eps))
    safe_x = select(tiny, full_like(x, eps), x)
    dy = sub(bessel_i0e(safe_x), mul(y, add(sign(safe_x), div(const(x, 1), safe_x))))
    return mul(t, select(tiny, full_like(x, 0.5), dy))


ad.defjvp2(bessel_i1e_p, _i1e_derivative)


# --------------------------------------------------------------------------- zeta

def _zeta(xp, s, q, precise):
    ok = (s > 1) & ~((q <= 0) & (q == xp.floor(q)))
    s_, z = xp.where(ok, s, 2.0), xp.where(ok, q, 1.0)
    threshold = 10 + xp.minimum(s_, 100.0)
    total = xp.zeros_like(z)
    low = z < threshold
    for step in itertools.count(1):  # at most 110 + |q| passes
        total = xp.where(low, total + z ** -s_, total)
        z = xp.where(low, z + 1, z)
        low = z < threshold
        if not converging(xp, step, lambda: low):
            break
    total += z ** (1 - s_) / (s_ - 1) + 0.5 * z ** -s_
    rising = s_.copy()  # s (s+1) ... (s+2k-2)
    for k, b in enumerate(_BERNOULLI, 1):
        if k > 1:
            rising *= (s_ + 2 * k - 3) * (s_ + 2 * k - 2)
        total += b / math.factorial(2 * k) * rising * z ** -(s_ + 2 * k - 1)
    total = xp.where(q <= 0, xp.where(s == xp.floor(s), total, np.nan), total)
    x_even = (s == xp.floor(s)) & (xp.remainder(s, 2) == 0)
    pole = (q <= 0) & (q == xp.floor(q))
    total = xp.where(pole, xp.where(x_even, np.inf, np.nan), total)
    return xp.where(s == 1, np.inf, xp.where(s < 1, np.nan, total))


zeta_p, zeta = binop("zeta", _special(_zeta), FLOAT,
                     "The Hurwitz zeta function ``sum_k (k + q)**-x`` (``jax.lax.zeta``); as in "
                     "JAX, not differentiable (``fungrad.scipy.special.zeta`` is).",
                     arg_names=("x", "q"))
ad.def_no_jvp(zeta_p, "jax.lax.zeta has no derivative rule; use fungrad.scipy.special.zeta")


# --------------------------------------------------------------------------- igamma

def _gamma_series(xp, a, x):
    """``S`` and ``dS/da`` of ``P(a, x) = x^a e^-x / Gamma(a + 1) S``."""
    term, total = xp.ones_like(x), xp.ones_like(x)
    dterm, dtotal = xp.zeros_like(x), xp.zeros_like(x)
    for n in range(1, _MAX_ITERATIONS):
        term = term * x / (a + n)
        dterm = dterm * x / (a + n) - term / (a + n)
        total, dtotal = total + term, dtotal + dterm
        if not converging(xp, n, lambda: (term > _EPS * total)
                          | (xp.abs(dterm) > _EPS * xp.abs(dtotal))):
            break
    return total, dtotal


def _gamma_fraction(xp, a, x):
    """``h`` and ``dh/da`` of ``Q(a, x) = x^a e^-x / Gamma(a) h`` (modified Lentz)."""
    tiny = np.finfo(np.float64).tiny
    b = x + 1 - a
    b = xp.where(xp.abs(b) < tiny, tiny, b)
    c, dc = xp.full_like(x, 1 / tiny), xp.zeros_like(x)
    d, dd = 1 / b, 1 / (b * b)
    h, dh = d, dd
    for i in range(1, _MAX_ITERATIONS):
        an, dan = -i * (i - a), float(i)
        b = b + 2
        den = an * d + b
        dden = dan * d + an * dd - 1
        den = xp.where(xp.abs(den) < tiny, tiny, den)
        d = 1 / den
        dd = -dden * d * d
        c_new = b + an / c
        dc = -1 + (dan * c - an * dc) / (c * c)
        c = xp.where(xp.abs(c_new) < tiny, tiny, c_new)
        delta, ddelta = d * c, dd * c + d * dc
        dh = dh * delta + h * ddelta
        h = h * delta
        # the derivative converges more slowly than the value: wait for both
        if not converging(xp, i, lambda: (xp.abs(delta - 1) > _EPS)
                          | (xp.abs(h * ddelta) > _EPS * xp.abs(dh))):
            break
    return h, dh


def _igamma_series_part(xp, want, a, x):
    """``want`` (see ``_igamma_parts``) by the series, where ``x <= 1`` or ``x <= a``."""
    total, dtotal = _gamma_series(xp, a, x)
    log_x = xp.log(x)
    f = xp.exp(a * log_x - x - _lgamma(xp, a + 1, True))
    dlog = log_x - _digamma(xp, a + 1, True)
    p = f * total
    if want == "sample":
        return -(total * dlog + dtotal) * x / a
    return {"p": p, "q": 1 - p, "dp_da": p * dlog + f * dtotal}[want]


def _igamma_fraction_part(xp, want, a, x):
    """``want`` (see ``_igamma_parts``) by the continued fraction, where ``x > 1, x > a``."""
    h, dh = _gamma_fraction(xp, a, x)
    log_x = xp.log(x)
    g = xp.exp(a * log_x - x - _lgamma(xp, a, True))
    dlog = log_x - _digamma(xp, a, True)
    q = g * h
    if want == "sample":
        return x * (dlog * h + dh)
    return {"p": 1 - q, "q": q, "dp_da": -(q * dlog + g * dh)}[want]


def _igamma_parts(xp, a, x, want: str):
    """``want`` of ``"p"``, ``"q"``, ``"dp_da"``, ``"sample"`` at valid ``a > 0``,
    ``0 < x < inf``; NaN elsewhere for the caller to replace. (On a device each part
    runs on every element: the others get arguments on which it converges at once.)"""
    out = xp.full(x.shape, np.nan)
    valid = (a > 0) & (x > 0) & xp.isfinite(x)
    fraction = valid & (x > 1) & (x > a)
    out = where_masked(xp, valid & ~fraction, out,
                       functools.partial(_igamma_series_part, xp, want), a, x, safe=(1.0, 1e-3))
    out = where_masked(xp, fraction, out, functools.partial(_igamma_fraction_part, xp, want),
                       a, x, safe=(1.0, 2.0))
    return out, valid


def _igamma(xp, a, x, precise):
    out, valid = _igamma_parts(xp, a, x, "p")
    edge = xp.where((a > 0) & (x == 0), 0.0, xp.where((a > 0) & (x == np.inf), 1.0, np.nan))
    return xp.where(valid, out, edge)


def _igammac(xp, a, x, precise):
    out, valid = _igamma_parts(xp, a, x, "q")
    edge = xp.where((a > 0) & (x == 0), 1.0, xp.where((a > 0) & (x == np.inf), 0.0, np.nan))
    return xp.where(valid, out, edge)


def _derivative_in_a(want: str):
    def impl(xp, a, x, precise):
        out, valid = _igamma_parts(xp, a, x, want)
        return xp.where(valid, out, xp.where((a > 0) & (x == 0), 0.0, np.nan))
    return impl


igamma_grad_a_p, igamma_grad_a = binop(
    "igamma_grad_a", _special(_derivative_in_a("dp_da")), FLOAT,
    "The derivative of ``igamma(a, x)`` in ``a`` (``jax.lax.igamma_grad_a``).",
    arg_names=("a", "x"))
ad.def_no_jvp(igamma_grad_a_p, "jax.lax.igamma_grad_a has no derivative rule")

random_gamma_grad_p, random_gamma_grad = binop(
    "random_gamma_grad", _special(_derivative_in_a("sample")), FLOAT,
    "The derivative in ``a`` of a ``Gamma(a, 1)`` sample ``x`` (implicit differentiation of "
    "``igamma(a, x) = u``: ``-igamma_grad_a(a, x) / (x^(a-1) e^-x / Gamma(a))``; "
    "``jax.lax.random_gamma_grad``).")
ad.def_no_jvp(random_gamma_grad_p, "jax.lax.random_gamma_grad has no derivative rule")


def _gamma_density(x, a):
    """``x^(a-1) e^-x / Gamma(a)``, the derivative of ``igamma`` in ``x``."""
    return exp(sub(sub(mul(sub(a, const(a, 1)), log(x)), x), lgamma(a)))


igamma_p, igamma = binop("igamma", _special(_igamma), FLOAT,
                         "The regularized lower incomplete Gamma function ``P(a, x)`` "
                         "(``jax.lax.igamma``).",
                         arg_names=("a", "x"))
ad.defjvp(igamma_p, lambda t, a, x: mul(t, igamma_grad_a(a, x)),
          lambda t, a, x: mul(t, _gamma_density(x, a)))

igammac_p, igammac = binop("igammac", _special(_igammac), FLOAT,
                           "The regularized upper incomplete Gamma function ``Q(a, x) = 1 - "
                           "P(a, x)`` (``jax.lax.igammac``).",
                           arg_names=("a", "x"))
ad.defjvp(igammac_p, lambda t, a, x: neg(mul(t, igamma_grad_a(a, x))),
          lambda t, a, x: neg(mul(t, _gamma_density(x, a))))


# --------------------------------------------------------------------------- betainc

def _beta_fraction(xp, a, b, x):
    """The continued fraction of ``I_x(a, b)`` (modified Lentz, two terms per step)."""
    tiny = np.finfo(np.float64).tiny

    def guard(v):
        return xp.where(xp.abs(v) < tiny, tiny, v)
    c = xp.ones_like(x)
    d = 1 / guard(1 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, _MAX_ITERATIONS):
        delta = None
        for aa in (m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m))):
            d = 1 / guard(1 + aa * d)
            c = guard(1 + aa / c)
            delta = d * c
            h = h * delta
        if not converging(xp, m, lambda: xp.abs(delta - 1) > _EPS):
            break
    return h


def _betainc_part(xp, a, b, x):
    """``I_x(a, b)`` for ``a, b > 0`` and ``0 < x < 1``."""
    direct = x < (a + 1) / (a + b + 2)  # where the fraction converges fast
    pa, pb = xp.where(direct, a, b), xp.where(direct, b, a)
    px = xp.where(direct, x, 1 - x)
    log_beta = _lgamma(xp, pa, True) + _lgamma(xp, pb, True) - _lgamma(xp, pa + pb, True)
    front = xp.exp(pa * xp.log(px) + pb * xp.log1p(-px) - log_beta)
    value = front * _beta_fraction(xp, pa, pb, px) / pa
    return xp.where(direct, value, 1 - value)


def _betainc(xp, a, b, x, precise):
    valid = (a > 0) & (b > 0) & (x > 0) & (x < 1)
    out = where_masked(xp, valid, xp.full(x.shape, np.nan), functools.partial(_betainc_part, xp),
                       a, b, x, safe=(1.0, 1.0, 0.5))
    ends = (a > 0) & (b > 0) & ((x == 0) | (x == 1))
    return xp.where(valid, out, xp.where(ends, x, np.nan))


regularized_incomplete_beta_p = elementwise_prim("regularized_incomplete_beta",
                                                 _special(_betainc), FLOAT)
batching.defbroadcasting(regularized_incomplete_beta_p)
_BETAINC_ACCEPTED = accepted_dtypes(FLOAT)


def betainc(a: Any, b: Any, x: Any) -> Any:
    """The regularized incomplete Beta function ``I_x(a, b)`` (``jax.lax.betainc``);
    differentiable in ``x`` only, as in JAX."""
    a, b, x = operands(a, b, x)
    check_operands("betainc", FLOAT, _BETAINC_ACCEPTED, (a, b, x))
    return regularized_incomplete_beta_p.bind(a, b, x)


def _betainc_ab_derivative(t, a, b, x):
    raise NotImplementedError("betainc: the derivative with respect to a and b is not "
                              "implemented (only with respect to x, as in jax.lax.betainc)")


def _betainc_x_derivative(t, a, b, x):
    log_beta = sub(add(lgamma(a), lgamma(b)), lgamma(add(a, b)))
    one = const(x, 1)
    return mul(t, exp(sub(add(mul(sub(b, one), log1p(neg(x))), mul(sub(a, one), log(x))),
                          log_beta)))


ad.defjvp(regularized_incomplete_beta_p, _betainc_ab_derivative, _betainc_ab_derivative,
          _betainc_x_derivative)


# --------------------------------------------------------------------------- mulhi

def _mulhi(xp, x, y):
    dtype = np.dtype(x.dtype)
    bits = dtype.itemsize * 8
    if bits <= 32:
        wide = np.int64 if dtype.kind == "i" else np.uint64
        product = xp.asarray(x).astype(wide) * xp.asarray(y, dtype=dtype).astype(wide)
        return (product >> bits).astype(dtype)
    ux, uy = xp.asarray(x).astype(np.uint64), xp.asarray(y, dtype=dtype).astype(np.uint64)
    mask, half = np.uint64(0xFFFFFFFF), np.uint64(32)
    x_lo, x_hi, y_lo, y_hi = ux & mask, ux >> half, uy & mask, uy >> half
    cross = x_hi * y_lo + ((x_lo * y_lo) >> half)
    cross2 = x_lo * y_hi + (cross & mask)
    high = x_hi * y_hi + (cross >> half) + (cross2 >> half)
    if dtype.kind == "i":  # the signed product's high word: subtract y where x < 0 and vice versa
        high = high - xp.where(xp.asarray(x) < 0, uy, np.uint64(0))
        high = high - xp.where(xp.asarray(y, dtype=dtype) < 0, ux, np.uint64(0))
    return high.astype(dtype)


mulhi_p, mulhi = binop("mulhi", _mulhi, INT,
                       "The high half of the double-width product of two integers "
                       "(``jax.lax.mulhi``).")
ad.def_nondiff(mulhi_p)


__all__ = ["bessel_i0e", "bessel_i0e_p", "bessel_i1e", "bessel_i1e_p", "zeta", "zeta_p",
           "igamma", "igamma_p", "igammac", "igammac_p", "igamma_grad_a", "igamma_grad_a_p",
           "random_gamma_grad", "betainc", "regularized_incomplete_beta_p", "mulhi", "mulhi_p"]
