"""Student's t distribution (``jax.scipy.stats.t``) with ``df`` degrees of freedom.

>>> round(float(pdf(0., 1.)), 6)  # Cauchy at 0: 1 / pi
0.31831
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special

__all__ = ["logpdf", "pdf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``log Gamma((df+1)/2) - log Gamma(df/2) - log(sqrt(df pi) scale)
    - (df+1)/2 log1p(z^2 / df)``."""
    x, df, loc, scale = promote_args_inexact("t.logpdf", x, df, loc, scale)
    z = (x - loc) / scale
    half = 0.5 * (df + 1)
    norm = special.gammaln(half) - special.gammaln(0.5 * df) \
        - 0.5 * jnp.log(df * np.pi) - jnp.log(scale)
    return norm - half * jnp.log1p(z * z / df)


def pdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Student's t density."""
    return jnp.exp(logpdf(x, df, loc, scale))
