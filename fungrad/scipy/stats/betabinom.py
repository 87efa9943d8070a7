"""The beta-binomial distribution (``jax.scipy.stats.betabinom``): ``k`` successes in ``n``
trials whose success probability is itself ``Beta(a, b)`` distributed, so the mass is
``C(n, k) B(k + a, n - k + b) / B(a, b)``.

>>> round(float(pmf(1., 2., 1., 1.)), 6)  # a = b = 1: uniform over 0..n
0.333333
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpmf", "pmf"]
__dir__ = public_dir(__all__)


def logpmf(k: Any, n: Any, a: Any, b: Any, loc: Any = 0) -> Any:
    """``-log1p(n) - betaln(n - y + 1, y + 1) + betaln(y + a, n - y + b) - betaln(a, b)``
    with ``y = floor(k) - loc``.

    ``C(n, y)`` is written as ``1 / ((n + 1) B(n - y + 1, y + 1))`` so that it stays finite
    and differentiable in ``n``. As in JAX: ``k`` is floored, ``n = y = 0`` gives ``log 1``,
    points outside the support give ``-inf``, and invalid parameters (``n < 0``, ``a <= 0``
    or ``b <= 0``) give NaN.
    """
    k, n, a, b, loc = promote_args_inexact("betabinom.logpmf", k, n, a, b, loc)
    y = jnp.floor(k) - loc
    log_comb = -(jnp.log1p(n) + special.betaln(n - y + 1, y + 1))
    value = log_comb + special.betaln(y + a, n - y + b) - special.betaln(a, b)
    value = jnp.where((y == 0) & (n == 0), 0., value)
    # JAX's support test is ``y < -loc``, i.e. ``floor(k) < 0``, kept as is.
    outside = (y < -loc) | (y > n) | (y + a <= 0)
    value = jnp.where(outside, -np.inf, value)
    return jnp.where((n < 0) | (a <= 0) | (b <= 0), np.nan, value)


def pmf(k: Any, n: Any, a: Any, b: Any, loc: Any = 0) -> Any:
    """The beta-binomial mass, ``exp(logpmf)``."""
    return jnp.exp(logpmf(k, n, a, b, loc))
