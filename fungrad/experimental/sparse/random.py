"""``random_bcoo``: a random BCOO array, bit-identical with
``jax.experimental.sparse.random_bcoo`` for the same key (``fungrad.random`` reproduces
``jax.random``'s bits)."""
from __future__ import annotations

import math
import operator
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import numpy as jnp
from fungrad import random
from fungrad.experimental.sparse.bcoo import BCOO
from fungrad.transforms.api import vmap

__all__ = ["random_bcoo"]


def random_bcoo(key: Any, shape: Sequence[int], *, dtype: Any = None,
                indices_dtype: Any = None, nse: float | int = 0.2, n_batch: int = 0,
                n_dense: int = 0, unique_indices: bool = True, sorted_indices: bool = False,
                generator: Callable[..., Any] = random.uniform, **kwds: Any) -> BCOO:
    """A BCOO with ``nse`` random entries per batch (a fraction of the sparse size when
    ``0 < nse < 1``): the key is split into one data key and one index key per batch;
    the data comes from ``generator(key, shape=, dtype=, **kwds)``, the flat positions from
    ``random.choice`` (without replacement when ``unique_indices``).

    Examples:
        >>> import fungrad
        >>> from fungrad.experimental import sparse
        >>> M = sparse.random_bcoo(fungrad.random.PRNGKey(0), (3, 4), nse=0.5)
        >>> M
        BCOO(float32[3, 4], nse=6)
    """
    shape = tuple(map(operator.index, shape))
    n_batch, n_dense = operator.index(n_batch), operator.index(n_dense)
    if n_batch < 0 or n_dense < 0 or n_batch + n_dense > len(shape):
        raise ValueError(f"random_bcoo: invalid n_batch={n_batch}, n_dense={n_dense} for "
                         f"shape={shape}")
    n_sparse = len(shape) - n_batch - n_dense
    batch_shape, sparse_shape = shape[:n_batch], shape[n_batch:n_batch + n_sparse]
    dense_shape = shape[n_batch + n_sparse:]
    sparse_size = math.prod(sparse_shape)
    if not 0 <= nse < sparse_size:
        raise ValueError(f"random_bcoo: got nse={nse}, expected to be between 0 and "
                         f"{sparse_size}")
    if 0 < nse < 1:
        nse = int(math.ceil(nse * sparse_size))
    nse = operator.index(nse)
    indices_dtype = np.dtype(np.int32 if indices_dtype is None else indices_dtype)
    if sparse_size > np.iinfo(indices_dtype).max:
        raise ValueError(f"random_bcoo: indices_dtype={indices_dtype} does not have enough "
                         f"range for sparse indices of size {sparse_size}")
    dtype = np.float32 if dtype is None else dtype

    def one_batch(k):
        if not sparse_shape:
            return jnp.zeros((nse, n_sparse), indices_dtype)
        flat = random.choice(k, sparse_size, shape=(nse,), replace=not unique_indices)
        return jnp.column_stack(jnp.unravel_index(flat.astype(indices_dtype), sparse_shape))
    keys = random.split(key, math.prod(batch_shape) + 1)
    data = generator(keys[0], shape=batch_shape + (nse,) + dense_shape, dtype=dtype, **kwds)
    indices = vmap(one_batch)(keys[1:]).reshape(batch_shape + (nse, n_sparse))
    mat = BCOO((data, indices), shape=shape)
    return mat.sort_indices() if sorted_indices else mat
