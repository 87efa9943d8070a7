"""The Pareto distribution (``jax.scipy.stats.pareto``): density ``b / z^(b+1)`` for
``z = (x - loc) / scale >= 1``.

>>> float(pdf(2., 1.))
0.25
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf", "logsf", "sf", "logcdf", "cdf", "ppf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log b - log(scale) - (b + 1) log z`` for ``z >= 1``, -inf below."""
    x, b, loc, scale = promote_args_inexact("pareto.logpdf", x, b, loc, scale)
    z = (x - loc) / scale
    value = jnp.log(b) - jnp.log(scale) - (b + 1) * jnp.log(z)
    return jnp.where(z < 1, -jnp.inf, value)


def pdf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Pareto density."""
    return jnp.exp(logpdf(x, b, loc, scale))


def _log_z(fname: str, x: Any, b: Any, loc: Any, scale: Any) -> tuple:
    x, b, loc, scale = promote_args_inexact(fname, x, b, loc, scale)
    z = (x - loc) / scale
    return jnp.log(jnp.maximum(z, 1)), b, z < 1


def logsf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-b log z`` (0 below the support)."""
    log_z, b, below = _log_z("pareto.logsf", x, b, loc, scale)
    return jnp.where(below, 0, -b * log_z)


def sf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``z^-b`` (1 below the support)."""
    return jnp.exp(logsf(x, b, loc, scale))


def logcdf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(1 - z^-b)`` (-inf below the support)."""
    log_z, b, below = _log_z("pareto.logcdf", x, b, loc, scale)
    return jnp.where(below, -jnp.inf, jnp.log1p(-jnp.exp(-b * log_z)))


def cdf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``1 - z^-b`` (0 below the support)."""
    log_z, b, below = _log_z("pareto.cdf", x, b, loc, scale)
    return jnp.where(below, 0, -jnp.expm1(-b * log_z))


def ppf(q: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``loc + scale (1 - q)^(-1/b)`` on [0, 1], NaN outside."""
    q, b, loc, scale = promote_args_inexact("pareto.ppf", q, b, loc, scale)
    inside = (q >= 0) & (q <= 1)
    value = loc + scale * jnp.exp(-jnp.log1p(-jnp.where(inside, q, 0)) / b)
    return jnp.where(inside, value, jnp.nan)
