"""Format-independent helpers of ``jax.experimental.sparse``: ``todense``, ``empty``, ``eye``
(BCOO is the only format fungrad has)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import numpy as jnp
from fungrad.experimental.sparse.bcoo import BCOO, bcoo_fromdense
from fungrad.lax._prim import static_ints

__all__ = ["todense", "empty", "eye"]


def _check_format(sparse_format: str, name: str) -> None:
    if sparse_format != "bcoo":
        raise NotImplementedError(f"{name}: sparse_format={sparse_format!r}; fungrad has only "
                                  "'bcoo'")


def todense(arr: Any) -> Any:
    """``arr`` as a dense array: a BCOO is densified, anything else passes through."""
    return arr.todense() if isinstance(arr, BCOO) else jnp.asarray(arr)


def empty(shape: Sequence[int], dtype: Any = None, index_dtype: Any = "int32",
          sparse_format: str = "bcoo", *, n_batch: int = 0, n_dense: int = 0,
          nse: int = 0) -> BCOO:
    """An all-zero BCOO of ``shape``: ``nse`` padding entries (zeros at out-of-range
    indices) per batch."""
    _check_format(sparse_format, "sparse.empty")
    shape = static_ints(shape, "sparse.empty", "shape")
    n_sparse = len(shape) - n_batch - n_dense
    if min(n_sparse, n_batch, n_dense, nse) < 0:
        raise ValueError(f"sparse.empty: invalid n_batch={n_batch}, n_dense={n_dense}, "
                         f"nse={nse} for shape {shape}")
    batch, sparse, dense = shape[:n_batch], shape[n_batch:n_batch + n_sparse], \
        shape[n_batch + n_sparse:]
    data = jnp.zeros((*batch, nse, *dense), dtype)
    indices = jnp.broadcast_to(jnp.asarray(sparse, index_dtype), (*batch, nse, n_sparse))
    return BCOO((data, indices), shape=shape, indices_sorted=True, unique_indices=True)


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None,
        index_dtype: Any = "int32", sparse_format: str = "bcoo", *, n_batch: int = 0,
        n_dense: int = 0) -> BCOO:
    """The 2-d identity (ones on diagonal ``k``) as a BCOO with one entry per diagonal
    element."""
    _check_format(sparse_format, "sparse.eye")
    M = N if M is None else M
    size = max(0, min(N, M - k) if k > 0 else min(N + k, M))
    if size == 0:
        return empty((N, M), dtype, index_dtype, n_batch=n_batch, n_dense=n_dense)
    if n_batch or n_dense:
        return bcoo_fromdense(jnp.eye(N, M, k, dtype=dtype), n_batch=n_batch,
                              n_dense=n_dense, index_dtype=index_dtype)
    i = np.arange(size)
    indices = np.stack([i - min(k, 0), i + max(k, 0)], -1).astype(index_dtype)
    return BCOO((jnp.ones(size, dtype), indices), shape=(N, M), indices_sorted=True,
                unique_indices=True)
