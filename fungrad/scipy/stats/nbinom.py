"""The negative binomial distribution (``jax.scipy.stats.nbinom``): ``k`` failures
before the ``n``-th success.

>>> round(float(pmf(0., 2., 0.5)), 6)
0.25
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
    """``log C(k + n - 1, k) + n log p + k log(1 - p)`` for ``k - loc >= 0``."""
    k, n, p, loc = promote_args_inexact("nbinom.logpmf", k, n, p, loc)
    y = k - loc
    comb = special.gammaln(y + n) - special.gammaln(n) - special.gammaln(y + 1)
    value = comb + special.xlogy(n, p) + special.xlog1py(y, -p)
    return jnp.where(y < 0, -jnp.inf, value)


def pmf(k: Any, n: Any, p: Any, loc: Any = 0) -> Any:
    """The negative binomial mass."""
    return jnp.exp(logpmf(k, n, p, loc))
