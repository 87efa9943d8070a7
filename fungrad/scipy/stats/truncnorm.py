"""The normal distribution truncated to ``[a, b]`` in standard units
(``jax.scipy.stats.truncnorm``): the normal density divided by the mass in between,
computed in log space from whichever tail keeps it accurate.

>>> round(float(cdf(0., -1., 1.)), 6)
0.5
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special
from fungrad.scipy.stats import norm

__all__ = ["logpdf", "pdf", "logcdf", "cdf", "logsf", "sf"]
__dir__ = public_dir(__all__)


def _log_mass(a: Any, b: Any) -> Any:
    # log(Phi(b) - Phi(a)): from the upper tail when a > 0 (reflect), else the lower
    flip = a > 0
    lo, hi = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
    log_hi, log_lo = special.log_ndtr(hi), special.log_ndtr(lo)
    return log_hi + jnp.log1p(-jnp.exp(jnp.minimum(log_lo - log_hi, 0)))


def _args(fname: str, x: Any, a: Any, b: Any, loc: Any, scale: Any) -> tuple:
    x, a, b, loc, scale = promote_args_inexact(fname, x, a, b, loc, scale)
    return (x - loc) / scale, a, b, scale


def logpdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``norm.logpdf(z) - log(scale) - log(Phi(b) - Phi(a))`` inside, -inf outside."""
    z, a, b, scale = _args("truncnorm.logpdf", x, a, b, loc, scale)
    value = norm.logpdf(z) - jnp.log(scale) - _log_mass(a, b)
    return jnp.where((z < a) | (z > b), -jnp.inf, value)


def pdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The truncated normal density."""
    return jnp.exp(logpdf(x, a, b, loc, scale))


def logcdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log(Phi(z) - Phi(a)) - log(Phi(b) - Phi(a))``: -inf below ``a``, 0 above ``b``."""
    z, a, b, _ = _args("truncnorm.logcdf", x, a, b, loc, scale)
    inner = jnp.clip(z, a, b)
    value = _log_mass(a, inner) - _log_mass(a, b)
    return jnp.where(z <= a, -jnp.inf, jnp.where(z >= b, 0, value))


def cdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``P(X <= x)``."""
    return jnp.exp(logcdf(x, a, b, loc, scale))


def logsf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log P(X > x)``: the ``logcdf`` of the reflected distribution."""
    x, a, b, loc, scale = promote_args_inexact("truncnorm.logsf", x, a, b, loc, scale)
    return logcdf(-x, -b, -a, -loc, scale)


def sf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``P(X > x)``."""
    return jnp.exp(logsf(x, a, b, loc, scale))

