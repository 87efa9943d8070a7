"""The uniform distribution on ``[loc, loc + scale]`` (``jax.scipy.stats.uniform``).

>>> float(pdf(0.5))
1.0
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf", "cdf", "ppf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``-log(scale)`` inside the interval, -inf outside."""
    x, loc, scale = promote_args_inexact("uniform.logpdf", x, loc, scale)
    inside = (x >= loc) & (x <= loc + scale)
    return jnp.where(inside, -jnp.log(scale), -jnp.inf)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The uniform density."""
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``(x - loc) / scale`` clipped to [0, 1]."""
    x, loc, scale = promote_args_inexact("uniform.cdf", x, loc, scale)
    return jnp.clip((x - loc) / scale, 0, 1)


def ppf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``loc + q scale`` on [0, 1], NaN outside."""
    q, loc, scale = promote_args_inexact("uniform.ppf", q, loc, scale)
    return jnp.where((q >= 0) & (q <= 1), loc + q * scale, jnp.nan)
