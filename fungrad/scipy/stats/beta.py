"""The Beta distribution (``jax.scipy.stats.beta``) on ``[loc, loc + scale]``.

>>> float(pdf(0.5, 1., 1.))
1.0
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``xlogy(a-1, z) + xlog1py(b-1, -z) - betaln(a, b) - log(scale)`` on [0, 1]."""
    x, a, b, loc, scale = promote_args_inexact("beta.logpdf", x, a, b, loc, scale)
    z = (x - loc) / scale
    value = special.xlogy(a - 1, z) + special.xlog1py(b - 1, -z) \
        - special.betaln(a, b) - jnp.log(scale)
    return jnp.where((z < 0) | (z > 1), -jnp.inf, value)


def pdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Beta density."""
    return jnp.exp(logpdf(x, a, b, loc, scale))


def _z(fname: str, x: Any, a: Any, b: Any, loc: Any, scale: Any) -> tuple:
    x, a, b, loc, scale = promote_args_inexact(fname, x, a, b, loc, scale)
    return jnp.clip((x - loc) / scale, 0, 1), a, b


def cdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``betainc(a, b, z)`` with ``z`` clipped to [0, 1]."""
    z, a, b = _z("beta.cdf", x, a, b, loc, scale)
    return special.betainc(a, b, z)


def logcdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(cdf)``."""
    return jnp.log(cdf(x, a, b, loc, scale))


def sf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``betainc(b, a, 1 - z)``: the reflected distribution's CDF."""
    z, a, b = _z("beta.sf", x, a, b, loc, scale)
    return special.betainc(b, a, 1 - z)


def logsf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(sf)``."""
    return jnp.log(sf(x, a, b, loc, scale))
