"""The Gamma distribution (``jax.scipy.stats.gamma``) with shape ``a``: density
``z^(a-1) e^-z / Gamma(a)`` for ``z = (x - loc) / scale >= 0``.

>>> round(float(cdf(1., 1.)), 5)
0.63212
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``xlogy(a - 1, z) - z - gammaln(a) - log(scale)``; -inf below ``loc``."""
    x, a, loc, scale = promote_args_inexact("gamma.logpdf", x, a, loc, scale)
    z = (x - loc) / scale
    value = special.xlogy(a - 1, z) - z - special.gammaln(a) - jnp.log(scale)
    return jnp.where(z < 0, -jnp.inf, value)


def pdf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Gamma density."""
    return jnp.exp(logpdf(x, a, loc, scale))


def _z(fname: str, x: Any, a: Any, loc: Any, scale: Any) -> tuple:
    x, a, loc, scale = promote_args_inexact(fname, x, a, loc, scale)
    return jnp.maximum((x - loc) / scale, 0), a


def cdf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``gammainc(a, z)`` (0 below ``loc``)."""
    z, a = _z("gamma.cdf", x, a, loc, scale)
    return special.gammainc(a, z)


def logcdf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(cdf)``."""
    return jnp.log(cdf(x, a, loc, scale))


def sf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``gammaincc(a, z)`` (1 below ``loc``)."""
    z, a = _z("gamma.sf", x, a, loc, scale)
    return special.gammaincc(a, z)


def logsf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(sf)``."""
    return jnp.log(sf(x, a, loc, scale))
