"""``fungrad.experimental.sparse``: the batched-COO sparse arrays of
``jax.experimental.sparse``.

A ``BCOO`` of shape ``batch + sparse + dense`` stores ``data`` (``batch + (nse,) + dense``)
and ``indices`` (``batch + (nse, n_sparse)``); ``nse`` entries per batch, padded with zeros
at out-of-range indices. It is a pytree (leaves ``data`` and ``indices``), so it passes
through ``jit``, ``grad`` (of functions of ``data``) and ``vmap`` (along axis 0, a batch
dimension). Conversions are the primitives ``bcoo_fromdense_p``, ``bcoo_todense_p`` and
``bcoo_extract_p``; ``bcoo_dot_general`` and the rest are composites of them and
``fungrad.lax``, so their derivatives agree with jax's. Shape operations
(``bcoo_reshape``/``BCOO.reshape``, ``bcoo_concatenate``, ``bcoo_slice``,
``bcoo_dynamic_slice``, ``bcoo_squeeze``, ``bcoo_rev``, ``bcoo_update_layout``,
``BCOO.__getitem__`` with integers, slices, ``None`` and ``...``) are in ``bcoo_shape``;
sparse-sparse products (``bcoo_spdot_general``, ``bcoo_multiply_sparse``, and ``@``/``*``
between two BCOO) in ``bcoo_products``; ``random_bcoo`` (bit-identical with jax's) in
``random``. ``sparsify(f)`` runs a dense function on BCOO arguments.

Examples:
    >>> import fungrad, fungrad.numpy as jnp
    >>> from fungrad.experimental import sparse
    >>> M = sparse.BCOO.fromdense(jnp.array([[0., 2., 0.], [1., 0., 4.]]))
    >>> M
    BCOO(float32[2, 3], nse=3)
    >>> print(M.indices.tolist(), M.data.tolist())
    [[0, 1], [1, 0], [1, 2]] [2.0, 1.0, 4.0]
    >>> print(M @ jnp.ones(3))
    [2. 5.]
    >>> loss = lambda d: (sparse.BCOO((d, M.indices), shape=M.shape) @ jnp.ones(3)).sum()
    >>> print(fungrad.grad(loss)(M.data))
    [1. 1. 1.]
    >>> print(sparse.sparsify(lambda a: (2 * a).sum(0))(M).todense())
    [2. 4. 8.]
"""
from __future__ import annotations

from fungrad._core.namespace import public_dir
from fungrad.experimental.sparse._primitives import (bcoo_extract_p, bcoo_fromdense_p,
                                                     bcoo_todense_p)
from fungrad.experimental.sparse.api import empty, eye, todense
from fungrad.experimental.sparse.bcoo import (BCOO, bcoo_broadcast_in_dim, bcoo_eliminate_zeros,
                                              bcoo_extract, bcoo_fromdense, bcoo_multiply_dense,
                                              bcoo_rdot_general, bcoo_reduce_sum,
                                              bcoo_sort_indices, bcoo_sum_duplicates,
                                              bcoo_todense, bcoo_transpose)
from fungrad.experimental.sparse.bcoo_shape import (SparseEfficiencyError,
                                                    SparseEfficiencyWarning, bcoo_concatenate,
                                                    bcoo_dynamic_slice, bcoo_reshape, bcoo_rev,
                                                    bcoo_slice, bcoo_squeeze, bcoo_update_layout)
from fungrad.experimental.sparse.bcoo_products import (bcoo_dot_general, bcoo_multiply_sparse,
                                                       bcoo_spdot_general)
from fungrad.experimental.sparse.random import random_bcoo
from fungrad.experimental.sparse.transform import sparsify

__all__ = ["BCOO", "SparseEfficiencyError", "SparseEfficiencyWarning", "bcoo_broadcast_in_dim",
           "bcoo_concatenate", "bcoo_dot_general", "bcoo_dynamic_slice", "bcoo_eliminate_zeros",
           "bcoo_extract", "bcoo_extract_p", "bcoo_fromdense", "bcoo_fromdense_p",
           "bcoo_multiply_dense", "bcoo_multiply_sparse", "bcoo_rdot_general",
           "bcoo_reduce_sum", "bcoo_reshape", "bcoo_rev", "bcoo_slice", "bcoo_sort_indices",
           "bcoo_spdot_general", "bcoo_squeeze", "bcoo_sum_duplicates", "bcoo_todense",
           "bcoo_todense_p", "bcoo_transpose", "bcoo_update_layout", "empty", "eye",
           "random_bcoo", "sparsify", "todense"]
__dir__ = public_dir(__all__)
