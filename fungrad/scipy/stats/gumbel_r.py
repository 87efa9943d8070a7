"""The right-skewed Gumbel distribution (``jax.scipy.stats.gumbel_r``), the law of the
maximum of many samples: CDF ``exp(-exp(-z))`` with ``z = (x - loc) / scale``.

>>> round(float(cdf(0.)), 6)  # exp(-1)
0.367879
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.nn.functions import log1mexp
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy.stats._location_scale import standardize

__all__ = ["logpdf", "pdf", "logcdf", "cdf", "ppf", "sf", "logsf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-log(scale) - z - exp(-z)``."""
    z, scale = standardize("gumbel_r.logpdf", x, loc, scale)
    return jnp.where(scale > 0, -jnp.log(scale) - (z + jnp.exp(-z)), np.nan)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The density, ``exp(logpdf)``."""
    return jnp.exp(logpdf(x, loc, scale))


def logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-exp(-z)``."""
    z, scale = standardize("gumbel_r.logcdf", x, loc, scale)
    return jnp.where(scale > 0, -jnp.exp(-z), np.nan)


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``exp(-exp(-z))``."""
    return jnp.exp(logcdf(x, loc, scale))


def ppf(p: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The quantile ``loc - scale log(-log p)``; NaN outside ``0 < p < 1`` (as in JAX, which
    does not map the ends to the infinities)."""
    p, loc, scale = promote_args_inexact("gumbel_r.ppf", p, loc, scale)
    return jnp.where((p > 0) & (p < 1), loc - scale * jnp.log(-jnp.log(p)), np.nan)


def sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``1 - exp(-exp(-z))``, computed as ``-expm1(-exp(-z))`` so that the right tail keeps
    its digits (JAX subtracts from 1, which rounds small survival values in float32)."""
    z, scale = standardize("gumbel_r.sf", x, loc, scale)
    return jnp.where(scale > 0, -jnp.expm1(-jnp.exp(-z)), np.nan)


def logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(1 - exp(-exp(-z)))`` through ``log1mexp``, accurate in both tails."""
    z, scale = standardize("gumbel_r.logsf", x, loc, scale)
    return jnp.where(scale > 0, log1mexp(jnp.exp(-z)), np.nan)
