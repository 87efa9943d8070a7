"""The left-skewed Gumbel distribution (``jax.scipy.stats.gumbel_l``), the law of the
minimum of many samples: survival function ``exp(-exp(z))`` with ``z = (x - loc) / scale``.

>>> round(float(sf(0.)), 6)  # exp(-1)
0.367879
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy.stats._location_scale import standardize

__all__ = ["logpdf", "pdf", "logcdf", "cdf", "ppf", "sf", "logsf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-log(scale) + z - exp(z)``."""
    z, scale = standardize("gumbel_l.logpdf", x, loc, scale)
    return jnp.where(scale > 0, -jnp.log(scale) + (z - jnp.exp(z)), np.nan)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The density, ``exp(logpdf)``."""
    return jnp.exp(logpdf(x, loc, scale))


def logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(1 - exp(-exp(z)))``, as ``log(-expm1(-exp(z)))`` so the left tail keeps its
    digits."""
    z, scale = standardize("gumbel_l.logcdf", x, loc, scale)
    return jnp.where(scale > 0, jnp.log(-jnp.expm1(-jnp.exp(z))), np.nan)


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``1 - exp(-exp(z))``, ``exp(logcdf)``."""
    return jnp.exp(logcdf(x, loc, scale))


def ppf(p: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The quantile ``loc + scale log(-log1p(-p))``; NaN outside ``0 < p < 1`` (as in JAX)."""
    p, loc, scale = promote_args_inexact("gumbel_l.ppf", p, loc, scale)
    return jnp.where((p > 0) & (p < 1), loc + scale * jnp.log(-jnp.log1p(-p)), np.nan)


def sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``exp(-exp(z))``, ``exp(logsf)``."""
    return jnp.exp(logsf(x, loc, scale))


def logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-exp(z)``."""
    z, scale = standardize("gumbel_l.logsf", x, loc, scale)
    return jnp.where(scale > 0, -jnp.exp(z), np.nan)
