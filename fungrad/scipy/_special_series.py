"""Special functions evaluated by series, for ``fungrad.scipy.special``: ``erfcx`` (an
asymptotic series where ``exp(x**2)`` overflows), the exponentially scaled modified Bessel
functions ``i0e``/``i1e`` (Chebyshev series) with ``i0``/``i1``, and the Hurwitz ``zeta``
(Euler-Maclaurin summation).

JAX has XLA primitives for ``bessel_i0e``, ``bessel_i1e`` and ``zeta``; here they are
composites of ``fungrad.numpy`` operations, with JAX's derivative rules as custom JVPs.
The Chebyshev coefficients below were computed with mpmath at 40 digits, by
interpolation at the Chebyshev-Gauss nodes, for:

* ``|x| <= 8``, ``t = |x| / 4 - 1``: ``i0e(x)`` and ``i1e(x) / x``;
* ``|x| > 8``, ``t = 16 / |x| - 1``: ``sqrt(|x|) i0e(x)`` and ``sqrt(|x|) i1e(|x|)``.

Each series stops where its coefficients fall below the dtype's resolution (all of them,
down to 1e-17, in float64).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact
from fungrad.transforms.api import jvp
from fungrad.transforms.custom_derivatives import custom_jvp

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


def _dtype(x: Any) -> np.dtype:
    return np.dtype(jnp.result_type(x))


def _chebyshev(coeffs: np.ndarray, t: Any) -> Any:
    """``sum_k coeffs[k] T_k(t)`` by Clenshaw's recurrence, the coefficients cut where
    they drop below ``t``'s dtype's resolution."""
    eps = np.finfo(_dtype(t)).eps
    coeffs = coeffs[:1 + int(np.nonzero(np.abs(coeffs) > 0.1 * eps * abs(coeffs[0]))[0][-1])]
    two_t = 2 * t
    b1 = b2 = jnp.zeros_like(t)
    for c in coeffs[:0:-1]:
        b1, b2 = two_t * b1 - b2 + float(c), b1
    return t * b1 - b2 + float(coeffs[0])


def _scaled_bessel(x: Any, small: np.ndarray, large: np.ndarray, odd: bool) -> Any:
    """``e^-|x| I_n(x)`` from the two Chebyshev series (``odd``: n = 1, whose small-|x|
    series is of ``i1e(x) / x``)."""
    ax = jnp.abs(x)
    is_small = ax <= 8
    near = _chebyshev(small, jnp.where(is_small, ax / 4 - 1, 0))
    far_x = jnp.maximum(ax, 8)
    far = _chebyshev(large, jnp.where(is_small, 1, 16 / far_x - 1)) / jnp.sqrt(far_x)
    if odd:
        return jnp.sign(x) * jnp.where(is_small, ax * near, far)
    return jnp.where(is_small, near, far)


@custom_jvp
def _i0e(x: Any) -> Any:
    return _scaled_bessel(x, _I0E_SMALL, _I0E_LARGE, odd=False)


@custom_jvp
def _i1e(x: Any) -> Any:
    return _scaled_bessel(x, _I1E_SMALL, _I1E_LARGE, odd=True)


@_i0e.defjvp
def _i0e_jvp(primals: tuple, tangents: tuple) -> tuple:
    # d/dx e^-|x| I0(x) = e^-|x| (I1(x) - sign(x) I0(x))
    x, = primals
    t, = tangents
    y = _i0e(x)
    return y, t * (_i1e(x) - jnp.sign(x) * y)


@_i1e.defjvp
def _i1e_jvp(primals: tuple, tangents: tuple) -> tuple:
    # d/dx e^-|x| I1(x) = e^-|x| (I0(x) - I1(x) (sign(x) + 1/x)); 1/2 at x = 0
    x, = primals
    t, = tangents
    y = _i1e(x)
    tiny = jnp.abs(x) <= np.finfo(_dtype(x)).eps
    safe_x = jnp.where(tiny, np.finfo(_dtype(x)).eps, x)
    dy = _i0e(safe_x) - y * (jnp.sign(safe_x) + 1 / safe_x)
    return y, t * jnp.where(tiny, 0.5, dy)


def _real(fname: str, x: Any) -> Any:
    x, = promote_args_inexact(fname, x)
    if _dtype(x).kind == "c":
        raise ValueError(f"{fname} does not support complex-valued inputs")
    return x


def i0e(x: Any) -> Any:
    """Exponentially scaled modified Bessel function of order 0, ``e^-|x| I0(x)``
    (``jax.scipy.special.i0e``).

    >>> print(f"{float(i0e(1.0)):.5f}")
    0.46576
    """
    return _i0e(_real("i0e", x))


def i1e(x: Any) -> Any:
    """Exponentially scaled modified Bessel function of order 1, ``e^-|x| I1(x)``
    (``jax.scipy.special.i1e``).

    >>> print(f"{float(i1e(1.0)):.5f}")
    0.20791
    """
    return _i1e(_real("i1e", x))


def i0(x: Any) -> Any:
    """Modified Bessel function of order 0, ``I0(x) = e^|x| i0e(x)``
    (``jax.scipy.special.i0``).

    >>> round(float(i0(1.0)), 6)
    1.266066
    """
    x = _real("i0", x)
    return jnp.exp(jnp.abs(x)) * _i0e(x)


def i1(x: Any) -> Any:
    """Modified Bessel function of order 1, ``I1(x) = e^|x| i1e(x)``
    (``jax.scipy.special.i1``).

    >>> round(float(i1(1.0)), 6)
    0.565159
    """
    x = _real("i1", x)
    return jnp.exp(jnp.abs(x)) * _i1e(x)


# --------------------------------------------------------------------------- erfcx

def _erfcx_asymptotic(x: Any, nterms: int) -> Any:
    """``erfcx(x) ~ (1 + sum_k (-1)^k (2k-1)!! / (2 x^2)^k) / (x sqrt(pi))``."""
    t = 1 / (2 * x * x)
    p = jnp.ones_like(x)
    for k in range(nterms - 1, 0, -1):  # Horner, from the last term
        p = 1 - (2 * k - 1) * t * p
    return p / (x * math.sqrt(math.pi))


@custom_jvp
def _erfcx(x: Any) -> Any:
    dtype = _dtype(x)
    if dtype not in (np.float32, np.float64):  # float16, bfloat16: in float32 (as JAX)
        return _erfcx(x.astype(np.float32)).astype(dtype)
    # exp(x^2) overflows past sqrt(log(max)); there the series' first omitted term is
    # below the resolution with 5 (float32) or 9 (float64) terms
    large = x > math.sqrt(math.log(np.finfo(dtype).max))
    safe_x = jnp.where(large, 1, x)
    direct = jnp.exp(safe_x * safe_x) * lax.erfc(safe_x)
    return jnp.where(large, _erfcx_asymptotic(x, 5 if dtype == np.float32 else 9), direct)


@_erfcx.defjvp
def _erfcx_jvp(primals: tuple, tangents: tuple) -> tuple:
    x, = primals
    t, = tangents
    y = _erfcx(x)
    return y, t * (2 * x * y - 2 / math.sqrt(math.pi))


def erfcx(x: Any) -> Any:
    """The scaled complementary error function ``exp(x**2) erfc(x)``
    (``jax.scipy.special.erfcx``), finite for large ``x`` where the product overflows.

    >>> print(f"{float(erfcx(30.0)):.6f}")  # about 1 / (30 sqrt(pi))
    0.018796
    """
    return _erfcx(_real("erfcx", x))


# --------------------------------------------------------------------------- zeta

def _bernoulli_even(count: int) -> list[Fraction]:
    """``B_2, B_4, ..., B_{2 count}`` from ``sum_{j<m} C(m+1, j) B_j = -(m+1) B_m``."""
    b = [Fraction(1)]
    for m in range(1, 2 * count + 1):
        b.append(-sum(math.comb(m + 1, j) * b[j] for j in range(m)) / (m + 1))
    return [b[2 * k] for k in range(1, count + 1)]


# (2k)! / B_2k for k = 1..16: the Euler-Maclaurin correction terms' denominators
_EM_DENOMINATORS = np.array([float(math.factorial(2 * k) / b)
                             for k, b in enumerate(_bernoulli_even(16), start=1)])


def _zeta_series(x: Any, q: Any) -> Any:
    """Euler-Maclaurin (Johansson 2015, eq. 5): ``sum_{k<N} (q+k)^-x + (q+N)^(1-x)/(x-1)
    + (q+N)^-x (1/2 + sum_{j<M} B_2j/(2j)! x(x+1)...(x+2j-2) / (q+N)^(2j-1))``, with
    N = M = 8 in float32 and 16 in float64 (as JAX's derivative)."""
    dtype = _dtype(q)
    n = 8 if dtype == np.float32 else 16
    k = jnp.arange(n, dtype=dtype)
    total = jnp.sum((q[..., None] + k) ** -x[..., None], axis=-1)
    qn = q + n
    total = total + qn ** (1 - x) / (x - 1)
    ratios = (x[..., None] + jnp.arange(2 * n, dtype=dtype)) / qn[..., None]
    terms = jnp.minimum(jnp.cumprod(ratios, axis=-1)[..., ::2], np.finfo(dtype).max)
    correction = jnp.sum(terms / _EM_DENOMINATORS[:n].astype(dtype), axis=-1)
    return total + qn ** -x * (0.5 + correction)


@custom_jvp
def _zeta(x: Any, q: Any) -> Any:
    out = _zeta_series(x, q)
    out = jnp.where(x == 1, np.inf, out)  # the harmonic series
    out = jnp.where(x < 1, np.nan, out)  # not defined (as in XLA)
    q_nonpositive = q <= 0
    out = jnp.where(q_nonpositive & (x != jnp.floor(x)), np.nan, out)
    at_pole = q_nonpositive & (q == jnp.floor(q))
    x_even = (x == jnp.floor(x)) & (jnp.remainder(x, 2) == 0)
    return jnp.where(at_pole, jnp.where(x_even, np.inf, np.nan), out)


@_zeta.defjvp
def _zeta_jvp(primals: tuple, tangents: tuple) -> tuple:
    # no closed form in x: JAX differentiates the series
    return _zeta(*primals), jvp(_zeta_series, primals, tangents)[1]


def zeta(x: Any, q: Any | None = None) -> Any:
    """The Hurwitz zeta function ``sum_n (n + q)^-x`` (``jax.scipy.special.zeta``); as in
    JAX, ``q`` is required (the Riemann zeta function is ``zeta(x, 1.0)``).

    >>> round(float(zeta(2.0, 1.0)), 6)  # pi^2 / 6
    1.644934
    """
    if q is None:
        raise NotImplementedError("Riemann zeta function not implemented; pass q != None to "
                                  "compute the Hurwitz Zeta function.")
    x, q = promote_args_inexact("zeta", x, q)
    x, q = jnp.broadcast_arrays(x, q)
    return _zeta(x, q)
