"""The exponential distribution (``jax.scipy.stats.expon``), density ``exp(-x)`` on
``x >= 0`` after ``(x - loc) / scale``.

>>> round(float(cdf(1.)), 6)
0.632121
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy.stats._location_scale import standardize

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-z - log(scale)`` for ``z >= 0``, -inf below."""
    z, scale = standardize("expon.logpdf", x, loc, scale)
    return jnp.where(z < 0, -jnp.inf, -z - jnp.log(scale))


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The exponential density."""
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``1 - exp(-z)`` (0 below ``loc``)."""
    z, _ = standardize("expon.cdf", x, loc, scale)
    return jnp.where(z < 0, 0, -jnp.expm1(-jnp.maximum(z, 0)))


def logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(1 - exp(-z))``."""
    z, _ = standardize("expon.logcdf", x, loc, scale)
    return jnp.where(z < 0, -jnp.inf, jnp.log(-jnp.expm1(-jnp.maximum(z, 0))))


def sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``exp(-z)`` (1 below ``loc``)."""
    return jnp.exp(logsf(x, loc, scale))


def logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-z`` (0 below ``loc``)."""
    z, _ = standardize("expon.logsf", x, loc, scale)
    return jnp.where(z < 0, 0, -z)


def ppf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``loc - scale log(1 - q)`` on [0, 1], NaN outside."""
    q, loc, scale = promote_args_inexact("expon.ppf", q, loc, scale)
    inside = (q >= 0) & (q <= 1)
    return jnp.where(inside, loc - scale * jnp.log1p(-jnp.where(inside, q, 0)), jnp.nan)
