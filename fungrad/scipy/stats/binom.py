"""The binomial distribution (``jax.scipy.stats.binom``): ``k`` successes in ``n``
trials.

>>> round(float(pmf(1., 2., 0.5)), 6)
0.5
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpmf", "pmf"]
__dir__ = public_dir(__all__)


def logpmf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """``log C(n, k) + k log p + (n - k) log(1 - p)`` on ``0 <= k - loc <= n``."""
    k, n, p, loc = promote_args_inexact("binom.logpmf", k, n, p, loc)
    y = k - loc
    comb = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
    value = comb + special.xlogy(y, p) + special.xlog1py(n - y, -p)
    return jnp.where((y < 0) | (y > n), -jnp.inf, value)


def pmf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """The binomial mass."""
    return jnp.exp(logpmf(k, n, p, loc))
