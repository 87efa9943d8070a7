"""The normal distribution (``jax.scipy.stats.norm``).

>>> round(float(cdf(1.96)), 4)
0.975
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf"]
__dir__ = public_dir(__all__)

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _standard(fname: str, x: Any, loc: Any, scale: Any) -> tuple:
    x, loc, scale = promote_args_inexact(fname, x, loc, scale)
    return (x - loc) / scale, scale


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log N(x; loc, scale^2)``."""
    z, scale = _standard("norm.logpdf", x, loc, scale)
    return -0.5 * z * z - _LOG_SQRT_2PI - jnp.log(scale)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The normal density."""
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``P(X <= x)``."""
    return special.ndtr(_standard("norm.cdf", x, loc, scale)[0])


def logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log P(X <= x)``, accurate in the lower tail."""
    return special.log_ndtr(_standard("norm.logcdf", x, loc, scale)[0])


def sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``P(X > x)``."""
    return special.ndtr(-_standard("norm.sf", x, loc, scale)[0])


def logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log P(X > x)``, accurate in the upper tail."""
    return special.log_ndtr(-_standard("norm.logsf", x, loc, scale)[0])


def ppf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The quantile function, the inverse of ``cdf``."""
    q, loc, scale = promote_args_inexact("norm.ppf", q, loc, scale)
    return special.ndtri(q) * scale + loc


def isf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The inverse of ``sf``."""
    q, loc, scale = promote_args_inexact("norm.isf", q, loc, scale)
    return -special.ndtri(q) * scale + loc
