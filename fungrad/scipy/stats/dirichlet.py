"""The Dirichlet distribution (``jax.scipy.stats.dirichlet``) over the simplex; ``x``
has the categories on its first axis, as in SciPy and JAX.

>>> import fungrad.numpy as jnp
>>> float(pdf(jnp.array([0.5, 0.5]), jnp.array([1., 1.])))
1.0
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import aval, ensure_arraylike, promote_dtypes_inexact
from fungrad.scipy import special

__all__ = ["logpdf", "pdf"]
__dir__ = public_dir(__all__)


def logpdf(x: Any, alpha: Any) -> Any:
    """``sum((alpha - 1) log x) - (sum gammaln(alpha) - gammaln(sum alpha))``; -inf
    off the simplex (negative entries or a sum other than 1)."""
    x, alpha = promote_dtypes_inexact(*ensure_arraylike("dirichlet.logpdf", x, alpha))
    if aval(alpha).ndim != 1:
        raise ValueError(f"dirichlet.logpdf: alpha must be one-dimensional, got shape "
                         f"{aval(alpha).shape}")
    if aval(x).ndim == 0 or aval(x).shape[0] not in (aval(alpha).shape[0],
                                                     aval(alpha).shape[0] - 1):
        raise ValueError(f"dirichlet.logpdf: x must have {aval(alpha).shape[0]} (or one "
                         f"fewer) entries on its first axis, got shape {aval(x).shape}")
    if aval(x).shape[0] != aval(alpha).shape[0]:
        x = jnp.concatenate([x, 1 - jnp.sum(x, axis=0, keepdims=True)], axis=0)
    shape = (-1,) + (1,) * (aval(x).ndim - 1)
    a = alpha.reshape(shape)
    norm = jnp.sum(special.gammaln(alpha)) - special.gammaln(jnp.sum(alpha))
    value = jnp.sum(special.xlogy(a - 1, x), axis=0) - norm
    on_simplex = jnp.all(x >= 0, axis=0) & (jnp.abs(jnp.sum(x, axis=0) - 1) <= 1e-5)
    return jnp.where(on_simplex, value, -jnp.inf)


def pdf(x: Any, alpha: Any) -> Any:
    """The Dirichlet density."""
    return jnp.exp(logpdf(x, alpha))
