"""The regularized incomplete Gamma functions ``P(a, x)`` and ``Q(a, x)`` as expansions:
the series below ``x = a + 1``, the continued fraction above (both in ``lax.fori_loop``,
so forward mode differentiates them in ``a`` too). ``fungrad.scipy.special.gammainc`` and
``gammaincc`` add their derivative rules; ``fungrad.random``'s Gamma draws differentiate
``igamma`` in ``a``. It sits beside the libraries, importing only ``lax`` and
``numpy``, because both of its users need it: ``fungrad.random`` may not import
``fungrad.scipy`` (whose ``special`` re-exports from ``fungrad.nn``, which imports
``fungrad.random``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import aval
from fungrad.numpy._util import where as _where


def _gammainc_series(a: Any, x: Any, iters: int) -> Any:
    # P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a+1)...(a+n))
    def body(_, carry):
        term, total, denom = carry
        denom = denom + 1
        term = term * x / denom
        return term, total + term, denom
    one = jnp.ones_like(x)
    _, total, _ = lax.fori_loop(0, iters, body, (one, one, a))
    return jnp.exp(a * jnp.log(x) - x - lax.lgamma(a + 1)) * total


def _gammaincc_fraction(a: Any, x: Any, iters: int) -> Any:
    # Q(a, x) = x^a e^-x / Gamma(a) * (modified Lentz continued fraction)
    tiny = float(np.finfo(aval(x).dtype).tiny)

    def guard(v):
        return _where(jnp.abs(v) < tiny, tiny, v)

    def body(i, carry):
        b, c, d, h = carry
        an = -i * (i - a)
        b = b + 2
        d = 1 / guard(an * d + b)
        c = guard(b + an / c)
        return b, c, d, h * d * c
    b = x + 1 - a
    d = 1 / guard(b)
    c = jnp.full_like(x, 1 / tiny)
    _, _, _, h = lax.fori_loop(1, iters, body, (b, c, d, d))
    return jnp.exp(a * jnp.log(x) - x - lax.lgamma(a)) * h


def igamma(a: Any, x: Any, upper: bool) -> Any:
    """``Q(a, x)`` if ``upper`` else ``P(a, x)``, for arrays of one inexact dtype; NaN
    outside ``a > 0, x >= 0``."""
    valid = jnp.logical_and(a > 0, x > 0)
    use_series = x < a + 1
    xs, as_ = _where(valid, x, 1), _where(valid, a, 1)
    series = _gammainc_series(as_, _where(use_series, xs, 0.5), 256)
    fraction = _gammaincc_fraction(as_, _where(use_series, as_ + 2, xs), 128)
    lower = _where(use_series, series, 1 - fraction)
    upper_ = _where(use_series, 1 - series, fraction)
    value = upper_ if upper else lower
    at_zero = 1 if upper else 0
    edge = _where(jnp.logical_and(x == 0, a > 0), at_zero,
                  _where(jnp.logical_and(jnp.isinf(x), a > 0), 1 - at_zero, np.nan))
    return _where(valid & jnp.isfinite(x), value, edge.astype(aval(value).dtype))
