"""``fungrad.scipy.cluster.vq`` (``jax.scipy.cluster.vq``): vector quantisation, the
assignment step of k-means."""
from __future__ import annotations

from typing import Any

import fungrad.numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import check_arraylike, promote_dtypes_inexact

__all__ = ["vq"]
__dir__ = public_dir(__all__)


def vq(obs: Any, code_book: Any, check_finite: bool = True) -> tuple[Any, Any]:
    """Assign each observation the nearest code (in Euclidean distance) of a code book
    (``jax.scipy.cluster.vq.vq``, after :func:`scipy.cluster.vq.vq`).

    All ``M x K`` distances are computed at once, so the result batches and compiles;
    the distances differentiate in ``obs`` and ``code_book`` (except where one is zero).

    Args:
        obs: the observations, ``(M, N)`` (one per row), or ``(M,)`` for scalar ones.
        code_book: the codes, ``(K, N)``, or ``(K,)``; the same rank as ``obs``.
        check_finite: unused (a traced value cannot be checked), as in JAX.

    Returns:
        ``(code, dist)``: for each observation, the index ``0 <= code < K`` of its nearest
        code (the first on ties) and the distance to it, both of shape ``(M,)``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> codes, dist = vq(jnp.array([[1.1, 2.1], [5.9, 4.8]]),
        ...                  jnp.array([[1.0, 2.0], [3.0, 4.0], [6.0, 5.0]]))
        >>> codes
        Array([0, 2], dtype=int32)
        >>> dist.round(4)
        Array([0.1414, 0.2236], dtype=float32)
    """
    del check_finite
    check_arraylike("scipy.cluster.vq.vq", obs, code_book)
    obs, code_book = promote_dtypes_inexact(obs, code_book)
    if obs.ndim != code_book.ndim:
        raise ValueError(f"vq expects obs and code_book of the same rank, got shapes "
                         f"{obs.shape} and {code_book.shape}.")
    if obs.ndim == 1:
        obs, code_book = obs[:, None], code_book[:, None]
    if obs.ndim != 2:
        raise ValueError(f"vq expects 1- or 2-dimensional obs and code_book, got shapes "
                         f"{obs.shape} and {code_book.shape}.")
    if obs.shape[1] != code_book.shape[1]:
        raise TypeError(f"vq expects obs and code_book with the same number of features "
                        f"(columns), got shapes {obs.shape} and {code_book.shape}.")
    dist = jnp.linalg.norm(obs[:, None, :] - code_book[None, :, :], axis=-1)
    code = jnp.argmin(dist, axis=-1)
    return code, jnp.take_along_axis(dist, code[:, None], axis=-1)[:, 0]
