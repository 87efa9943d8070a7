"""The multinomial distribution (``jax.scipy.stats.multinomial``): counts ``x`` (last axis:
the categories) of ``n`` draws with category probabilities ``p``, mass
``n! prod_i p_i^x_i / x_i!``.

>>> round(float(pmf(jnp.array([1, 1]), 2, jnp.array([0.5, 0.5]))), 6)
0.5
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core import dtypes
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import aval, promote_args_inexact, promote_args_numeric
from fungrad.scipy import special

__all__ = ["logpmf", "pmf"]
__dir__ = public_dir(__all__)


def logpmf(x: Any, n: Any, p: Any) -> Any:
    """``gammaln(n + 1) + sum(xlogy(x, p) - gammaln(x + 1), axis=-1)``, ``-inf`` where the
    counts do not add up to ``n``.

    ``x`` and ``n`` must be integers (counts), ``p`` is promoted to floating point.
    As in JAX, the check that the counts add up to ``n`` sums *all* of ``x`` (one
    distribution per call; use ``vmap`` for a batch).
    """
    p, = promote_args_inexact("multinomial.logpmf", p)
    x, n = promote_args_numeric("multinomial.logpmf", x, n)
    if not dtypes.issubdtype(aval(x).dtype, np.integer):
        raise ValueError("multinomial.logpmf: x and n must be of integer type; got "
                         f"x.dtype={aval(x).dtype}, n.dtype={aval(n).dtype}")
    dtype = aval(p).dtype
    x, n = x.astype(dtype), n.astype(dtype)
    value = special.gammaln(n + 1) + jnp.sum(special.xlogy(x, p) - special.gammaln(x + 1),
                                             axis=-1)
    return jnp.where(jnp.sum(x) == n, value, -np.inf)


def pmf(x: Any, n: Any, p: Any) -> Any:
    """The multinomial mass, ``exp(logpmf)``."""
    return jnp.exp(logpmf(x, n, p))
