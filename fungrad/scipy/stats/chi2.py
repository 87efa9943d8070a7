"""The chi-squared distribution (``jax.scipy.stats.chi2``): a Gamma distribution with
shape ``df / 2`` and scale ``2 scale``.

>>> round(float(cdf(2., 2.)), 5)
0.63212
"""
from __future__ import annotations

from typing import Any

from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy.stats import gamma

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]
__dir__ = public_dir(__all__)


def _gamma_args(fname: str, x: Any, df: Any, loc: Any, scale: Any) -> tuple:
    x, df, loc, scale = promote_args_inexact(fname, x, df, loc, scale)
    return x, df / 2, loc, 2 * scale


def logpdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The log density, as ``gamma.logpdf(x, df / 2, loc, 2 scale)``."""
    return gamma.logpdf(*_gamma_args("chi2.logpdf", x, df, loc, scale))


def pdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The chi-squared density."""
    return gamma.pdf(*_gamma_args("chi2.pdf", x, df, loc, scale))


def cdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``P(X <= x)``."""
    return gamma.cdf(*_gamma_args("chi2.cdf", x, df, loc, scale))


def logcdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log P(X <= x)``."""
    return gamma.logcdf(*_gamma_args("chi2.logcdf", x, df, loc, scale))


def sf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``P(X > x)``."""
    return gamma.sf(*_gamma_args("chi2.sf", x, df, loc, scale))


def logsf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log P(X > x)``."""
    return gamma.logsf(*_gamma_args("chi2.logsf", x, df, loc, scale))
