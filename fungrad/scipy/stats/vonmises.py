"""The von Mises distribution (``jax.scipy.stats.vonmises``), a normal distribution on the
circle: density ``exp(kappa cos x) / (2 pi I0(kappa))`` on ``[-pi, pi]``.

>>> round(float(pdf(0., 1e-6)), 6)  # kappa -> 0: uniform on the circle, 1 / (2 pi)
0.159155
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, kappa: Any) -> Any:
    """``kappa (cos x - 1) - log(2 pi i0e(kappa))``, NaN unless ``kappa > 0``.

    ``I0(kappa) = exp(kappa) i0e(kappa)``: folding ``exp(kappa)`` into the cosine term keeps
    the density finite for large ``kappa``, where ``I0`` alone overflows.
    """
    x, kappa = promote_args_inexact("vonmises.logpdf", x, kappa)
    value = kappa * (jnp.cos(x) - 1) - jnp.log(2 * np.pi * lax.bessel_i0e(kappa))
    return jnp.where(kappa > 0, value, np.nan)


def pdf(x: Any, kappa: Any) -> Any:
    """The von Mises density, ``exp(logpdf)``."""
    return jnp.exp(logpdf(x, kappa))
