"""The Cauchy distribution (``jax.scipy.stats.cauchy``), density
``1 / (pi scale (1 + z^2))``.

>>> float(ppf(0.5))
0.0
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy.stats._location_scale import standardize

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-log(pi) - log(scale) - log1p(z^2)``."""
    z, scale = standardize("cauchy.logpdf", x, loc, scale)
    return -np.log(np.pi) - jnp.log(scale) - jnp.log1p(z * z)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Cauchy density."""
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``1/2 + arctan(z) / pi``."""
    return 0.5 + jnp.arctan(standardize("cauchy.cdf", x, loc, scale)[0]) / np.pi


def logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(cdf)``."""
    return jnp.log(cdf(x, loc, scale))


def sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``cdf`` of the reflected variable: ``1/2 - arctan(z) / pi``."""
    return 0.5 - jnp.arctan(standardize("cauchy.sf", x, loc, scale)[0]) / np.pi


def logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(sf)``."""
    return jnp.log(sf(x, loc, scale))


def ppf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``loc + scale tan(pi (q - 1/2))``; NaN outside [0, 1], -inf/inf at the ends."""
    q, loc, scale = promote_args_inexact("cauchy.ppf", q, loc, scale)
    inner = loc + scale * jnp.tan(np.pi * (q - 0.5))
    return jnp.where(q == 0, -jnp.inf, jnp.where(q == 1, jnp.inf,
                     jnp.where((q > 0) & (q < 1), inner, jnp.nan)))


def isf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The inverse of ``sf``: ``ppf(1 - q)``."""
    q, loc, scale = promote_args_inexact("cauchy.isf", q, loc, scale)
    return ppf(1 - q, loc, scale)
