"""``fungrad.scipy.special``: ``logsumexp``, ``softmax``, ``log_softmax`` (defined in
``fungrad.nn.functions``, as JAX's are outside its ``scipy``), error functions, ``expit``/``logit``,
``xlogy``/``xlog1py``, ``entr``, ``gammaln``/``digamma``/``polygamma``/``betaln``, the
normal CDF family (``ndtr``, ``log_ndtr``, ``ndtri``), the incomplete Gamma and Beta functions,
``kl_div``/``rel_entr``, the Gamma family of ``_special_gamma`` (``gamma``, ``gammasgn``,
``loggamma``, ``beta``, ``poch``, ``factorial``, ``comb``, ``boxcox``/``boxcox1p``,
``bernoulli``), and (from ``_special_series``) ``erfcx``, the modified Bessel
functions ``i0``/``i0e``/``i1``/``i1e`` and the Hurwitz ``zeta``, and (from
``_special_exp_integrals``) ``expi``, ``exp1``, ``expn``, ``sici`` and ``spence``, and (from
``_special_erf_family``) ``dawsn``, ``fresnel`` and ``owens_t``, ``bessel_jn`` (from
``_special_bessel``), and (from ``_special_hyper``) ``hyp1f1``, ``hyp2f1``, ``wofz`` and
``sph_harm_y`` (the ``jax.scipy.special`` API).

``xlogy``, ``xlog1py``, ``logit`` and ``entr`` carry custom JVPs so that derivatives
stay finite where the plain formula would give ``0 * inf``.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import (
    aval,
    full_like,
    promote_args_inexact,
    scalar_like,
)
from fungrad.numpy._util import where as _where
from fungrad.nn import functions as _nn
from fungrad.nn.functions import logsumexp  # its home is fungrad.nn
from fungrad.scipy._special_gamma import (bernoulli, beta, boxcox, boxcox1p, comb, factorial,
                                          gamma, gammasgn, loggamma, poch)
from fungrad.scipy._special_bessel import bessel_jn
from fungrad.scipy._special_erf_family import dawsn, fresnel, owens_t
from fungrad.scipy._special_exp_integrals import exp1, expi, expn, sici, spence
from fungrad.scipy._special_hyper import hyp1f1, hyp2f1, sph_harm_y, wofz
from fungrad.scipy._special_series import erfcx, i0, i0e, i1, i1e, zeta
from fungrad.transforms.custom_derivatives import custom_jvp


def softmax(x: Any, /, *, axis: int | tuple[int, ...] | None = None) -> Any:
    """``exp(x) / sum(exp(x))`` over ``axis``: all axes by default, as
    ``jax.scipy.special.softmax`` (``fungrad.nn.softmax`` defaults to the last axis)."""
    return _nn.softmax(x, axis=axis)


def log_softmax(x: Any, /, *, axis: int | tuple[int, ...] | None = None) -> Any:
    """``x - logsumexp(x)`` over ``axis``: all axes by default, as
    ``jax.scipy.special.log_softmax`` (``fungrad.nn.log_softmax`` defaults to the last)."""
    return _nn.log_softmax(x, axis=axis)


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




def betaln(a: Any, b: Any) -> Any:
    """``log|B(a, b)| = gammaln(a) + gammaln(b) - gammaln(a + b)``."""
    a, b = promote_args_inexact("betaln", a, b)
    return lax.sub(lax.add(lax.lgamma(a), lax.lgamma(b)), lax.lgamma(lax.add(a, b)))


def multigammaln(a: Any, d: int) -> Any:
    """The log of the multivariate Gamma function of dimension ``d``.

    >>> float(multigammaln(3., 1))  # log Gamma(3)
    0.6931471...
    """
    d = int(d)
    if d < 1:
        raise ValueError(f"multigammaln: d must be a positive integer, got {d}")
    a, = promote_args_inexact("multigammaln", a)
    js = jnp.arange(d, dtype=aval(a).dtype)
    terms = lax.lgamma(lax.sub(lax.expand_dims(a, (aval(a).ndim,)), js / 2))
    return jnp.sum(terms, axis=-1) + d * (d - 1) / 4 * np.log(np.pi)


def polygamma(n: Any, x: Any) -> Any:
    """The ``n``-th derivative of ``digamma``; ``n`` must have an integer dtype."""
    n_dtype = np.result_type(aval(n).dtype if hasattr(n, "aval") else np.asarray(n).dtype)
    if not np.issubdtype(n_dtype, np.integer):
        raise ValueError(f"polygamma: n must have an integer dtype, got {n_dtype}")
    n, x = promote_args_inexact("polygamma", n, x)
    return lax.polygamma(n, x)


def kl_div(p: Any, q: Any) -> Any:
    """Elementwise ``p log(p/q) - p + q``: 0 at ``p == 0 <= q``, inf for negative
    arguments or ``q == 0 < p``."""
    p, q = promote_args_inexact("kl_div", p, q)
    return jnp.add(rel_entr(p, q), lax.sub(q, p))


def rel_entr(p: Any, q: Any) -> Any:
    """Elementwise relative entropy ``p log(p/q)``: 0 at ``p == 0 <= q``, inf for
    negative arguments or ``q == 0 < p``."""
    p, q = promote_args_inexact("rel_entr", p, q)
    both_pos = jnp.logical_and(p > 0, q > 0)
    safe_p, safe_q = _where(both_pos, p, 1), _where(both_pos, q, 1)
    value = xlogy(safe_p, safe_p / safe_q)
    zero_ok = jnp.logical_and(p == 0, q >= 0)
    return _where(both_pos, value, _where(zero_ok, 0, np.inf).astype(aval(p).dtype))


_HALF_SQRT2 = np.sqrt(0.5)
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def ndtr(x: Any) -> Any:
    """The standard normal CDF, ``(1 + erf(x / sqrt 2)) / 2`` (erfc in the tails)."""
    x, = promote_args_inexact("ndtr", x)
    z = lax.mul(x, scalar_like(_HALF_SQRT2, x))
    y = _where(lax.abs(z) < _HALF_SQRT2, 1 + lax.erf(z),
               _where(z > 0, 2 - lax.erfc(lax.abs(z)), lax.erfc(lax.abs(z))))
    return lax.mul(scalar_like(0.5, x), y)


def _log_ndtr_lower(x: Any, series_order: int) -> Any:
    """log Phi(x) for x << 0: ``log phi(x) - log(-x) + log(1 + sum_n (-1)^n (2n-1)!! / x^2n)``,
    the sum to ``series_order`` terms (the even and odd ones summed apart, as JAX does)."""
    x2 = x * x
    even, odd, power = jnp.zeros_like(x), jnp.zeros_like(x), x2
    for n in range(1, series_order + 1):
        term = float(np.prod(np.arange(2 * n - 1, 0, -2, dtype=np.float64))) / power
        if n % 2:
            odd = odd + term
        else:
            even = even + term
        power = power * x2
    return -0.5 * x2 - _LOG_SQRT_2PI - jnp.log(-x) + jnp.log(1 + even - odd)


@functools.partial(custom_jvp, nondiff_argnums=(1,))
def log_ndtr(x: Any, series_order: int = 3) -> Any:
    """``log(ndtr(x))``, accurate in both tails: ``log1p(-ndtr(-x))`` above 6 and an
    asymptotic series of ``series_order`` terms (0 to 30) below -20 (float64) or -10
    (float32).

    >>> float(log_ndtr(0.))
    -0.6931471...
    """
    if not isinstance(series_order, int) or isinstance(series_order, bool):
        raise TypeError(f"log_ndtr: series_order must be a Python int, got {series_order!r}")
    if not 0 <= series_order <= 30:
        raise ValueError(f"log_ndtr: series_order must be between 0 and 30, got {series_order}")
    x, = promote_args_inexact("log_ndtr", x)
    lower = -20.0 if aval(x).dtype == np.float64 else -10.0
    upper = _where(x > 6, x, 6)
    middle = jnp.clip(x, lower, 6)
    low = _where(x < lower, x, lower)
    return _where(x > 6, jnp.log1p(-ndtr(-upper)),
                  _where(x < lower, _log_ndtr_lower(low, series_order), jnp.log(ndtr(middle))))


@log_ndtr.defjvp
def _log_ndtr_jvp(series_order: int, primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    out = log_ndtr(x, series_order)
    # d/dx log Phi(x) = phi(x) / Phi(x), in log space so that it stays finite far left
    return out, t * jnp.exp(-0.5 * x * x - _LOG_SQRT_2PI - out)


@custom_jvp
def ndtri(p: Any) -> Any:
    """The inverse of ``ndtr``: for the lower half (the upper half by symmetry) a
    rational first guess in ``sqrt(-2 log p)`` (Abramowitz and Stegun 26.2.23, error
    below 5e-4) refined by Newton steps on ``log_ndtr``; -inf at 0, inf at 1, NaN
    outside [0, 1].

    >>> round(float(ndtri(0.975)), 4)
    1.96
    """
    p, = promote_args_inexact("ndtri", p)
    q = jnp.minimum(p, 1 - p)
    inside = jnp.logical_and(q > 0, q <= 0.5)
    q_safe = _where(inside, q, 0.25)
    log_q = jnp.log(q_safe)
    t = jnp.sqrt(-2 * log_q)
    x = (2.515517 + t * (0.802853 + t * 0.010328)) / (
        1 + t * (1.432788 + t * (0.189269 + t * 0.001308))) - t
    for _ in range(3):
        step = (log_ndtr(x) - log_q) * jnp.exp(log_ndtr(x) + 0.5 * x * x + _LOG_SQRT_2PI)
        x = jnp.minimum(x - step, 0)
    x = _where(p > 0.5, -x, x)
    edge = _where(p == 0, -np.inf, _where(p == 1, np.inf, np.nan)).astype(aval(p).dtype)
    return _where(jnp.logical_and(p > 0, p < 1), x, edge)


ndtri.defjvps(lambda t, x, p: t * jnp.exp(0.5 * x * x + _LOG_SQRT_2PI))


def gammainc(a: Any, x: Any) -> Any:
    """The regularized lower incomplete Gamma function ``P(a, x)`` (``lax.igamma``: a series
    for ``x <= max(1, a)``, a continued fraction above); differentiable in ``a`` and ``x``.

    >>> round(float(gammainc(1., 1.)), 5)  # 1 - exp(-1)
    0.63212
    """
    a, x = promote_args_inexact("gammainc", a, x)
    return lax.igamma(a, x)


def gammaincc(a: Any, x: Any) -> Any:
    """The regularized upper incomplete Gamma function ``Q(a, x) = 1 - P(a, x)``."""
    a, x = promote_args_inexact("gammaincc", a, x)
    return lax.igammac(a, x)


def betainc(a: Any, b: Any, x: Any) -> Any:
    """The regularized incomplete Beta function ``I_x(a, b)`` (``lax.betainc``: a continued
    fraction, through ``1 - I_(1-x)(b, a)`` above the mean); differentiable in ``x`` only.

    >>> round(float(betainc(2., 3., 0.25)), 5)  # 1 - 0.75^4 - 4 0.25 0.75^3
    0.26172
    """
    a, b, x = promote_args_inexact("betainc", a, b, x)
    return lax.betainc(a, b, x)


__all__ = [
    "bernoulli",
    "bessel_jn",
    "beta",
    "betainc",
    "betaln",
    "boxcox",
    "boxcox1p",
    "comb",
    "dawsn",
    "digamma",
    "entr",
    "erf",
    "erfc",
    "erfcx",
    "erfinv",
    "exp1",
    "expi",
    "expit",
    "expn",
    "factorial",
    "fresnel",
    "gamma",
    "gammainc",
    "gammaincc",
    "gammaln",
    "gammasgn",
    "hyp1f1",
    "hyp2f1",
    "i0",
    "i0e",
    "i1",
    "i1e",
    "kl_div",
    "log_ndtr",
    "log_softmax",
    "loggamma",
    "logit",
    "logsumexp",
    "multigammaln",
    "ndtr",
    "ndtri",
    "owens_t",
    "poch",
    "polygamma",
    "rel_entr",
    "sici",
    "softmax",
    "spence",
    "sph_harm_y",
    "wofz",
    "xlog1py",
    "xlogy",
    "zeta",
]
__dir__ = public_dir(__all__)
