"""The Pareto distribution (``jax.scipy.stats.pareto``): density ``b / z^(b+1)`` for
``z = (x - loc) / scale >= 1``.

>>> float(pdf(2., 1.))
0.25
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact


def logpdf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log b - log(scale) - (b + 1) log z`` for ``z >= 1``, -inf below."""
    x, b, loc, scale = promote_args_inexact("pareto.logpdf", x, b, loc, scale)
    z = (x - loc) / scale
    value = jnp.log(b) - jnp.log(scale) - (b + 1) * jnp.log(z)
    return jnp.where(z < 1, -jnp.inf, value)


def pdf(x: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Pareto density."""
    return jnp.exp(logpdf(x, b, loc, scale))
