"""The generalized normal distribution (``jax.scipy.stats.gennorm``): density
``beta / (2 Gamma(1 / beta)) exp(-|x|^beta)``, the Laplace distribution at ``beta = 1`` and a
normal one (variance 1/2) at ``beta = 2``.

>>> round(float(pdf(0., 2.)), 6)  # 1 / sqrt(pi)
0.56419
"""
from __future__ import annotations

from typing import Any

from fungrad import lax
from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf", "cdf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, beta: Any) -> Any:
    """``log(beta / 2) - lgamma(1 / beta) - |x|^beta`` (no loc/scale, as in JAX)."""
    x, beta = promote_args_inexact("gennorm.logpdf", x, beta)
    return jnp.log(0.5 * beta) - lax.lgamma(1 / beta) - jnp.abs(x) ** beta


def pdf(x: Any, beta: Any) -> Any:
    """The generalized normal density, ``exp(logpdf)``."""
    return jnp.exp(logpdf(x, beta))


def cdf(x: Any, beta: Any) -> Any:
    """``(1 + sign(x) P(1 / beta, |x|^beta)) / 2``, ``P`` the regularized lower incomplete
    gamma function (the density is symmetric, so one half-line integral suffices)."""
    x, beta = promote_args_inexact("gennorm.cdf", x, beta)
    return 0.5 * (1 + jnp.sign(x) * lax.igamma(1 / beta, jnp.abs(x) ** beta))
