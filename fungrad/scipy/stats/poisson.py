"""The Poisson distribution (``jax.scipy.stats.poisson``): mass ``mu^k e^-mu / k!`` on
the integers ``k - loc >= 0``.

>>> round(float(pmf(2., 3.)), 6)
0.224042
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpmf", "pmf", "cdf"]
__dir__ = public_dir(__all__)


def logpmf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """``xlogy(k, mu) - gammaln(k + 1) - mu``; -inf off the support."""
    k, mu, loc = promote_args_inexact("poisson.logpmf", k, mu, loc)
    x = k - loc
    value = special.xlogy(x, mu) - special.gammaln(x + 1) - mu
    return jnp.where((x < 0) | (x != jnp.round(x)), -jnp.inf, value)


def pmf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """The Poisson mass."""
    return jnp.exp(logpmf(k, mu, loc))


def cdf(k: Any, mu: Any, loc: Any = 0) -> Any:
    """``P(K <= k) = gammaincc(floor(k - loc) + 1, mu)``; 0 below ``loc``."""
    k, mu, loc = promote_args_inexact("poisson.cdf", k, mu, loc)
    x = jnp.floor(k - loc)
    return jnp.where(x < 0, 0, special.gammaincc(jnp.maximum(x, 0) + 1, mu))
