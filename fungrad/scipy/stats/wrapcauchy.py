"""The wrapped Cauchy distribution (``jax.scipy.stats.wrapcauchy``), a Cauchy distribution
wrapped onto the circle: density ``(1 - c^2) / (2 pi (1 + c^2 - 2 c cos x))`` on
``[0, 2 pi]`` for ``0 < c < 1``.

>>> round(float(pdf(np.pi, 0.5)), 6)  # 0.75 / (2 pi 2.25)
0.053052
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, c: Any) -> Any:
    """``log(1 - c^2) - log(2 pi) - log(1 + c^2 - 2 c cos x)``: ``-inf`` outside
    ``[0, 2 pi]``, NaN unless ``0 < c < 1``."""
    x, c = promote_args_inexact("wrapcauchy.logpdf", x, c)
    value = jnp.log(1 - c * c) - jnp.log(2 * np.pi) - jnp.log(1 + c * c - 2 * c * jnp.cos(x))
    value = jnp.where((x >= 0) & (x <= 2 * np.pi), value, -np.inf)
    return jnp.where((c > 0) & (c < 1), value, np.nan)


def pdf(x: Any, c: Any) -> Any:
    """The wrapped Cauchy density, ``exp(logpdf)``."""
    return jnp.exp(logpdf(x, c))
