"""The multivariate normal distribution (``jax.scipy.stats.multivariate_normal``):
the log density through a Cholesky factor of ``cov``, batched over leading axes.

>>> import fungrad.numpy as jnp
>>> round(float(logpdf(jnp.zeros(2), jnp.zeros(2), jnp.eye(2))), 6)  # -log(2 pi)
-1.837877
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.lax import linalg as lax_linalg
from fungrad.numpy._util import aval, ensure_arraylike, promote_dtypes_inexact

__all__ = ["logpdf", "pdf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, mean: Any, cov: Any, allow_singular: None = None) -> Any:
    """``-(n log 2 pi + log det cov + (x-mean)^T cov^-1 (x-mean)) / 2``; a scalar
    ``cov`` is a multiple of the identity (a scalar ``mean``, the univariate case)."""
    if allow_singular is not None:
        raise NotImplementedError("multivariate_normal.logpdf: allow_singular is not "
                                  "supported")
    x, mean, cov = promote_dtypes_inexact(
        *ensure_arraylike("multivariate_normal.logpdf", x, mean, cov))
    if aval(mean).ndim == 0:  # univariate
        return -0.5 * jnp.square(x - mean) / cov - 0.5 * (np.log(2 * np.pi) + jnp.log(cov))
    n = aval(mean).shape[-1]
    y = x - mean
    if aval(cov).ndim == 0:  # a multiple of the identity
        return (-0.5 * jnp.sum(y * y, axis=-1) / cov
                - n / 2 * (np.log(2 * np.pi) + jnp.log(cov)))
    if aval(cov).ndim < 2 or aval(cov).shape[-2:] != (n, n):
        raise ValueError(f"multivariate_normal.logpdf: cov must be ({n}, {n}) to match "
                         f"mean, got shape {aval(cov).shape}")
    factor = lax_linalg.cholesky(cov)
    batch = jnp.broadcast_shapes(aval(y).shape[:-1], aval(factor).shape[:-2])
    factor = jnp.broadcast_to(factor, batch + (n, n))
    y = jnp.broadcast_to(y, batch + (n,))
    white = lax_linalg.triangular_solve(factor, y[..., None], left_side=True,
                                        lower=True)[..., 0]
    log_det = jnp.sum(jnp.log(jnp.diagonal(factor, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * jnp.sum(white * white, axis=-1) - log_det - n / 2 * np.log(2 * np.pi)


def pdf(x: Any, mean: Any, cov: Any) -> Any:
    """The multivariate normal density."""
    return jnp.exp(logpdf(x, mean, cov))
