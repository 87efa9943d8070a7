"""The Bernoulli distribution (``jax.scipy.stats.bernoulli``) with success probability
``p``.

>>> float(pmf(1, 0.25))
0.25
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpmf", "pmf", "cdf", "ppf"]
__dir__ = public_dir(__all__)


def logpmf(k: Any, p: Any, loc: Any = 0) -> Any:
    """``log p`` at 1, ``log(1 - p)`` at 0, -inf elsewhere."""
    k, p, loc = promote_args_inexact("bernoulli.logpmf", k, p, loc)
    x = k - loc
    value = special.xlogy(x, p) + special.xlog1py(1 - x, -p)
    return jnp.where((x == 0) | (x == 1), value, -jnp.inf)


def pmf(k: Any, p: Any, loc: Any = 0) -> Any:
    """The Bernoulli mass."""
    return jnp.exp(logpmf(k, p, loc))


def cdf(k: Any, p: Any) -> Any:
    """0 below 0, ``1 - p`` on [0, 1), 1 from 1; NaN for ``p`` outside [0, 1]."""
    k, p = promote_args_inexact("bernoulli.cdf", k, p)
    value = jnp.where(k < 0, 0, jnp.where(k < 1, 1 - p, 1))
    return jnp.where((p < 0) | (p > 1) | jnp.isnan(k), jnp.nan, value)


def ppf(q: Any, p: Any) -> Any:
    """The smallest ``k`` with ``cdf(k) >= q``: 0 up to ``1 - p``, then 1."""
    q, p = promote_args_inexact("bernoulli.ppf", q, p)
    value = jnp.where(q <= 1 - p, jnp.zeros_like(q), jnp.ones_like(q))
    return jnp.where((q < 0) | (q > 1) | (p < 0) | (p > 1), jnp.nan, value)
