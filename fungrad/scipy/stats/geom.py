"""The geometric distribution (``jax.scipy.stats.geom``): the number of trials up to
the first success, ``(1 - p)^(k - 1) p`` for ``k >= 1``.

>>> float(pmf(2, 0.5))
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


def logpmf(k: Any, p: Any, loc: Any = 0) -> Any:
    """``(k - 1) log(1 - p) + log p`` for ``k - loc >= 1``, -inf below."""
    k, p, loc = promote_args_inexact("geom.logpmf", k, p, loc)
    x = k - loc
    value = special.xlog1py(x - 1, -p) + jnp.log(p)
    return jnp.where(x <= 0, -jnp.inf, value)


def pmf(k: Any, p: Any, loc: Any = 0) -> Any:
    """The geometric mass."""
    return jnp.exp(logpmf(k, p, loc))
