"""The Laplace distribution (``jax.scipy.stats.laplace``), density ``exp(-|z|) / 2``.

>>> float(cdf(0.))
0.5
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf", "cdf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-|x - loc| / scale - log(2 scale)``."""
    x, loc, scale = promote_args_inexact("laplace.logpdf", x, loc, scale)
    return -jnp.abs(x - loc) / scale - np.log(2) - jnp.log(scale)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Laplace density."""
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``exp(z) / 2`` below ``loc``, ``1 - exp(-z) / 2`` above."""
    x, loc, scale = promote_args_inexact("laplace.cdf", x, loc, scale)
    z = (x - loc) / scale
    half_tail = 0.5 * jnp.exp(-jnp.abs(z))
    return jnp.where(z <= 0, half_tail, 1 - half_tail)
