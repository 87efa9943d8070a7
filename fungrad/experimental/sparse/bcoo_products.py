"""Products of two ``BCOO`` arrays: ``bcoo_spdot_general`` (a sparse result) and
``bcoo_multiply_sparse`` (elementwise), and the public ``bcoo_dot_general`` that sends a
sparse-sparse contraction to the former.

Both are composites with jax's layouts: every pair of stored entries whose contracted (or
all) indices agree gives one candidate entry, so the result's ``nse`` is the product of the
operands' (capped at the size of the sparse result for ``bcoo_spdot_general``, whose
duplicates are then summed). They are bilinear in the two ``data`` buffers, so their
derivatives come from the gathers, products and scatter-adds used. ``BCOO``'s ``*`` and
``@`` operators are extended here to sparse operands on both sides.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from fungrad import numpy as jnp
from fungrad.experimental.sparse.bcoo import (BCOO, _canonical_dn, _dot_out_aval, _matmul,
                                              bcoo_sum_duplicates)
from fungrad.experimental.sparse.bcoo import bcoo_dot_general as _bcoo_dense_dot_general
from fungrad.experimental.sparse.bcoo_shape import bcoo_update_layout
from fungrad.transforms.api import vmap

__all__ = ["bcoo_dot_general", "bcoo_multiply_sparse", "bcoo_spdot_general"]


def _promote_pair(lhs: BCOO, rhs: BCOO) -> tuple[BCOO, BCOO]:
    dtype = jnp.result_type(lhs.data, rhs.data)
    return tuple(m if m.dtype == dtype else m.astype(dtype) for m in (lhs, rhs))


# --------------------------------------------------------------------------- multiply

def _multiply_unbatched(lhs_data: Any, lhs_ind: Any, rhs_data: Any, rhs_ind: Any, *,
                        lhs_shape: tuple, rhs_shape: tuple) -> tuple[Any, Any]:
    """Entries of two unbatched layouts (one may still carry batch dims) whose indices
    agree on the dimensions where neither size is 1, paired into ``nse_l * nse_r`` slots."""
    if lhs_ind.ndim > 2:
        lhs = bcoo_update_layout(BCOO((lhs_data, lhs_ind), shape=lhs_shape), n_batch=0)
        lhs_data, lhs_ind = lhs.data, lhs.indices
    elif rhs_ind.ndim > 2:
        rhs = bcoo_update_layout(BCOO((rhs_data, rhs_ind), shape=rhs_shape), n_batch=0)
        rhs_data, rhs_ind = rhs.data, rhs.indices
    n_l, n_r = lhs_ind.shape[0], rhs_ind.shape[0]
    ns = min(lhs_ind.shape[1], rhs_ind.shape[1])
    dims = np.array([k for k in range(ns) if lhs_shape[k] != 1 and rhs_shape[k] != 1], np.int32)
    mask = (lhs_ind[:, None, dims] == rhs_ind[None, :, dims]).all(-1)
    i_l, i_r = jnp.nonzero(mask, size=n_l * n_r, fill_value=(n_l, n_r))
    data = (lhs_data.at[i_l].get(mode="fill", fill_value=0)
            * rhs_data.at[i_r].get(mode="fill", fill_value=0))
    indices = jnp.maximum(
        lhs_ind.at[i_l].get(mode="fill", fill_value=max(lhs_shape, default=0)),
        rhs_ind.at[i_r].get(mode="fill", fill_value=max(rhs_shape, default=0)))
    return data, indices


def bcoo_multiply_sparse(lhs: BCOO, rhs: BCOO) -> BCOO:
    """The elementwise product of two BCOO arrays of one rank (size-1 dimensions
    broadcast), as a BCOO with ``lhs.nse * rhs.nse`` entries per batch."""
    if not (isinstance(lhs, BCOO) and isinstance(rhs, BCOO)):
        raise TypeError("bcoo_multiply_sparse: lhs and rhs must be BCOO arrays, got "
                        f"{type(lhs).__name__} and {type(rhs).__name__}")
    if lhs.ndim != rhs.ndim:
        raise TypeError("bcoo_multiply_sparse: arrays must have the same number of dimensions, "
                        f"got {lhs.shape} and {rhs.shape}")
    if lhs.n_dense != rhs.n_dense:
        raise NotImplementedError("bcoo_multiply_sparse: arrays with differing numbers of dense "
                                  f"dimensions ({lhs.n_dense} and {rhs.n_dense})")
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"bcoo_multiply_sparse: operands must have one dtype, got {lhs.dtype} "
                        f"and {rhs.dtype}")
    shape = tuple(np.broadcast_shapes(lhs.shape, rhs.shape))
    n_batch = min(lhs.n_batch, rhs.n_batch)
    mul = functools.partial(_multiply_unbatched, lhs_shape=lhs.shape[n_batch:],
                            rhs_shape=rhs.shape[n_batch:])
    for _ in range(n_batch):
        mul = functools.partial(_map_level, mul)
    data, indices = mul(lhs.data, lhs.indices, rhs.data, rhs.indices)
    return BCOO((data, indices), shape=shape)


def _map_level(f: Any, *args: Any) -> Any:
    """Map ``f`` over axis 0 of every argument, a size-1 axis broadcasting."""
    size = max(a.shape[0] for a in args)
    axes = tuple(None if a.shape[0] == 1 and size != 1 else 0 for a in args)
    args = [a[0] if ax is None else a for a, ax in zip(args, axes)]
    return vmap(f, in_axes=axes)(*args)


# --------------------------------------------------------------------------- spdot

def _spdot_unbatched(lhs_data: Any, lhs_ind: Any, rhs_data: Any, rhs_ind: Any, *,
                     lhs_shape: tuple, rhs_shape: tuple, lc: tuple, rc: tuple,
                     out_nse: int) -> tuple[Any, Any]:
    """One unbatched sparse-sparse contraction: the outer product of the entries, zero
    where the contracted indices differ, duplicates summed to ``out_nse``."""
    ns_l, ns_r = lhs_ind.shape[-1], rhs_ind.shape[-1]
    out_shape = tuple(s for i, s in enumerate(lhs_shape) if i not in lc) + tuple(
        s for i, s in enumerate(rhs_shape) if i not in rc)
    free_l = np.array([k for k in range(ns_l) if k not in lc], np.int32)
    free_r = np.array([k for k in range(ns_r) if k not in rc], np.int32)
    li, ri = lhs_ind[:, np.array(lc, np.int32)], rhs_ind[:, np.array(rc, np.int32)]
    overlap = (li[:, None] == ri[None, :]).all(-1)
    valid_l = (li < jnp.asarray([lhs_shape[d] for d in lc], li.dtype)).all(-1)
    valid_r = (ri < jnp.asarray([rhs_shape[d] for d in rc], ri.dtype)).all(-1)
    keep = overlap & valid_l[:, None] & valid_r[None, :]
    data = jnp.where(keep, lhs_data[:, None] * rhs_data[None, :],
                     jnp.zeros((), lhs_data.dtype)).ravel()
    n_l, n_r = lhs_ind.shape[0], rhs_ind.shape[0]
    dtype = jnp.result_type(lhs_ind.dtype, rhs_ind.dtype)
    lj = jnp.broadcast_to(lhs_ind[:, None, free_l].astype(dtype), (n_l, n_r, len(free_l)))
    rj = jnp.broadcast_to(rhs_ind[None, :, free_r].astype(dtype), (n_l, n_r, len(free_r)))
    indices = jnp.concatenate([lj, rj], -1).reshape(n_l * n_r, len(free_l) + len(free_r))
    out = bcoo_sum_duplicates(BCOO((data, indices), shape=out_shape), nse=out_nse)
    return out.data, out.indices


def bcoo_spdot_general(lhs: BCOO, rhs: BCOO, *, dimension_numbers: Any,
                       preferred_element_type: Any = None) -> BCOO:
    """``lax.dot_general`` of two BCOO arrays, as a BCOO (jax's layout: the batch
    dimensions of the contraction, then the free batch dimensions of ``lhs`` and ``rhs``;
    ``nse`` the product of the operands' where their sparse dimensions stay, capped at the
    size of the result's sparse part). Contractions must be over sparse dimensions, batch
    dimensions of the contraction over batch ones, and neither operand may have dense ones.
    """
    lhs, rhs = _promote_pair(lhs, rhs)
    dn = _canonical_dn(dimension_numbers)
    (lc, rc), (lb, rb) = dn
    out_aval = _dot_out_aval(lhs.shape, rhs.shape, lhs.dtype, dn, preferred_element_type)
    if lhs.n_dense or rhs.n_dense:
        raise NotImplementedError("bcoo_spdot_general: operands with dense dimensions")
    if any(d >= lhs.n_batch for d in lb) or any(d >= rhs.n_batch for d in rb):
        raise NotImplementedError("bcoo_spdot_general: batch_dims must correspond to batch "
                                  "dimensions of the sparse representation")
    for side, c, m in (("lhs", lc, lhs), ("rhs", rc, rhs)):
        if c and (min(c) < m.n_batch or max(c) >= m.n_batch + m.n_sparse):
            raise NotImplementedError(f"bcoo_spdot_general: {side} may only contract sparse "
                                      "dimensions")
    if rhs.n_batch > len(rb) and lhs.n_sparse > len(lc):
        raise ValueError("bcoo_spdot_general: cannot have unused batch dims on rhs with unused "
                         "sparse dims on lhs")
    out_nse = (lhs.nse if lhs.n_sparse > len(lc) else 1) * (
        rhs.nse if rhs.n_sparse > len(rc) else 1)
    out_nb = lhs.n_batch + rhs.n_batch - len(lb)
    out_nse = min(out_nse, math.prod(out_aval.shape[out_nb:]))

    def to_front(m, b):
        perm = (*b, *(d for d in range(m.n_batch) if d not in b))
        data = jnp.broadcast_to(m.data, m.shape[:m.n_batch] + m.data.shape[m.n_batch:])
        ind = jnp.broadcast_to(m.indices, m.shape[:m.n_batch] + m.indices.shape[m.n_batch:])
        return (data.transpose(perm + tuple(range(m.n_batch, data.ndim))),
                ind.transpose(perm + (m.n_batch, m.n_batch + 1)))
    ld, li = to_front(lhs, lb)
    rd, ri = to_front(rhs, rb)
    f = functools.partial(
        _spdot_unbatched, lhs_shape=lhs.shape[lhs.n_batch:], rhs_shape=rhs.shape[rhs.n_batch:],
        lc=tuple(d - lhs.n_batch for d in lc), rc=tuple(d - rhs.n_batch for d in rc),
        out_nse=out_nse)
    for _ in range(rhs.n_batch - len(rb)):
        f = vmap(f, in_axes=(None, None, 0, 0))
    for _ in range(lhs.n_batch - len(lb)):
        f = vmap(f, in_axes=(0, 0, None, None))
    for _ in range(len(lb)):
        f = vmap(f)
    data, indices = f(ld, li, rd, ri)
    return BCOO((data.astype(out_aval.dtype), indices), shape=out_aval.shape)


def bcoo_dot_general(lhs: Any, rhs: Any, *, dimension_numbers: Any, precision: Any = None,
                     preferred_element_type: Any = None) -> Any:
    """``lax.dot_general`` with a BCOO operand on either side: dense when the other operand
    is dense, a BCOO (``bcoo_spdot_general``) when both are sparse.

    The sparse operand's batch dimensions of the contraction must be among its BCOO batch
    dimensions, and its contracting dimensions must not be dense ones (as in jax).
    """
    if isinstance(lhs, BCOO) and isinstance(rhs, BCOO):
        return bcoo_spdot_general(lhs, rhs, dimension_numbers=dimension_numbers,
                                  preferred_element_type=preferred_element_type)
    return _bcoo_dense_dot_general(lhs, rhs, dimension_numbers=dimension_numbers,
                                   precision=precision,
                                   preferred_element_type=preferred_element_type)


# --------------------------------------------------------------------------- operators

_dense_mul = BCOO.__mul__


def _mul_method(self: BCOO, other: Any) -> BCOO:
    """``self * other``; two BCOO operands give ``bcoo_multiply_sparse`` (as jax's
    operator, which sees them as separate arrays even when they share indices)."""
    if isinstance(other, BCOO):
        return bcoo_multiply_sparse(*_promote_pair(self, other))
    return _dense_mul(self, other)


def _matmul_sparse(a: Any, b: Any) -> Any:
    """``a @ b``; two BCOO operands give a BCOO through ``bcoo_spdot_general``."""
    if not (isinstance(a, BCOO) and isinstance(b, BCOO)):
        return _matmul(a, b)
    a, b = _promote_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must have at least one dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    if a.ndim > 2 or b.ndim > 2:
        if a.shape[:-2] != b.shape[:-2] or a.ndim != b.ndim:
            raise NotImplementedError("BCOO @ BCOO with broadcast batch shapes "
                                      f"{a.shape[:-2]} and {b.shape[:-2]}")
        batch = tuple(range(a.ndim - 2))
        dn = (((a.ndim - 1,), (b.ndim - 2,)), (batch, batch))
    else:
        dn = (((a.ndim - 1,), (max(b.ndim - 2, 0),)), ((), ()))
    return bcoo_spdot_general(a, b, dimension_numbers=dn)


BCOO.__mul__ = BCOO.__rmul__ = _mul_method
BCOO.__matmul__ = _matmul_sparse
BCOO.__rmatmul__ = lambda self, other: _matmul_sparse(other, self)
