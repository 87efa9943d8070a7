"""Shape operations on ``BCOO`` arrays: ``bcoo_update_layout``, ``bcoo_reshape``,
``bcoo_concatenate``, ``bcoo_slice``, ``bcoo_dynamic_slice``, ``bcoo_squeeze``, ``bcoo_rev``
and the ``BCOO.reshape``/``BCOO.__getitem__`` methods built on them.

All are composites of ``fungrad.lax``/``fungrad.numpy`` and ``bcoo_sum_duplicates``, with
jax's layouts: batch dimensions are reshaped, sliced and concatenated as dense arrays
(``data`` and ``indices`` together), sparse dimensions by rewriting the index columns, and
entries that fall out of a slice become padding (zero data at the out-of-range index
``sparse_shape``). The methods are attached to ``BCOO`` here, as jax attaches its
``sparsify``-derived methods, so that ``bcoo.py`` need not import upward.
"""
from __future__ import annotations

import math
import operator
import warnings
from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad._core import core
from fungrad.experimental.sparse.bcoo import BCOO, _nfold_vmap, bcoo_broadcast_in_dim, \
    bcoo_sum_duplicates
from fungrad.lax._prim import static_ints

__all__ = ["SparseEfficiencyError", "SparseEfficiencyWarning", "bcoo_concatenate",
           "bcoo_dynamic_slice", "bcoo_reshape", "bcoo_rev", "bcoo_slice", "bcoo_squeeze",
           "bcoo_update_layout"]


class SparseEfficiencyError(ValueError):
    """A layout change would store many explicit zeros (``bcoo_update_layout`` raising
    into a batch or dense dimension of size > 1). Pass ``on_inefficient='warn'`` or
    ``None`` to allow it."""


class SparseEfficiencyWarning(UserWarning):
    """The warning ``bcoo_update_layout(..., on_inefficient='warn')`` gives."""


def _split(seq: Sequence, n_batch: int, n_sparse: int) -> tuple[tuple, tuple, tuple]:
    seq = tuple(seq)
    return seq[:n_batch], seq[n_batch:n_batch + n_sparse], seq[n_batch + n_sparse:]


def _full_batch(mat: BCOO) -> tuple[Any, Any]:
    """``data`` and ``indices`` with their size-1 (broadcast) batch dimensions expanded."""
    batch = mat.shape[:mat.n_batch]
    data = jnp.broadcast_to(mat.data, batch + mat.data.shape[mat.n_batch:])
    indices = jnp.broadcast_to(mat.indices, batch + mat.indices.shape[mat.n_batch:])
    return data, indices


def _set_nse(mat: BCOO, nse: int) -> BCOO:
    """``mat`` truncated or padded (zero data at out-of-range indices) to ``nse`` entries."""
    if nse == mat.nse:
        return mat
    nb = mat.n_batch
    if nse < mat.nse:
        data = mat.data[(slice(None),) * nb + (slice(0, nse),)]
        indices = mat.indices[..., :nse, :]
    else:
        extra = nse - mat.nse
        pad_d = jnp.zeros(mat.data.shape[:nb] + (extra,) + mat.data.shape[nb + 1:], mat.dtype)
        fill = jnp.asarray(mat.shape[nb:nb + mat.n_sparse], mat.indices.dtype)
        pad_i = jnp.broadcast_to(fill, mat.indices.shape[:nb] + (extra, mat.n_sparse))
        data = jnp.concatenate([mat.data, pad_d], nb)
        indices = jnp.concatenate([mat.indices, pad_i], nb)
    return BCOO((data, indices), shape=mat.shape, indices_sorted=mat.indices_sorted,
                unique_indices=mat.unique_indices)


# --------------------------------------------------------------------------- layout

def bcoo_update_layout(mat: BCOO, *, n_batch: int | None = None, n_dense: int | None = None,
                       on_inefficient: str | None = "error") -> BCOO:
    """``mat`` stored with ``n_batch`` batch and ``n_dense`` dense dimensions.

    Turning sparse dimensions of size > 1 into batch or dense ones stores many zeros:
    that raises ``SparseEfficiencyError`` unless ``on_inefficient`` is ``'warn'`` or
    ``None``. The dense array represented is unchanged.
    """
    n_batch = mat.n_batch if n_batch is None else operator.index(n_batch)
    n_dense = mat.n_dense if n_dense is None else operator.index(n_dense)
    if (n_batch, n_dense) == (mat.n_batch, mat.n_dense):
        return mat
    if on_inefficient not in ("error", "warn", None):
        raise ValueError(f"bcoo_update_layout: on_inefficient={on_inefficient!r}; expected "
                         "'error', 'warn' or None")
    n_sparse = mat.ndim - n_batch - n_dense
    if n_batch < 0 or n_dense < 0 or n_sparse < 0:
        raise ValueError(f"bcoo_update_layout: n_batch={n_batch} and n_dense={n_dense} must be "
                         f"non-negative with a sum at most mat.ndim={mat.ndim}")

    def inefficient(what: str, old: int, new: int) -> None:
        msg = (f"bcoo_update_layout: for a matrix of shape {mat.shape}, increasing {what} from "
               f"{old} to {new} results in inefficient storage.")
        if on_inefficient == "error":
            raise SparseEfficiencyError(msg + " Pass on_inefficient='warn' or None to allow it.")
        if on_inefficient == "warn":
            warnings.warn(msg, SparseEfficiencyWarning, stacklevel=3)
    shape = mat.shape
    if n_dense > mat.n_dense and any(d > 1 for d in shape[-n_dense:mat.ndim - mat.n_dense]):
        inefficient("n_dense", mat.n_dense, n_dense)
    if n_batch > mat.n_batch and any(d > 1 for d in shape[mat.n_batch:n_batch]):
        inefficient("n_batch", mat.n_batch, n_batch)

    data, indices = _full_batch(mat)
    cur_nb, cur_nd = mat.n_batch, mat.n_dense
    if n_dense < cur_nd:      # leading dense dimensions become sparse ones
        n = cur_nd - n_dense

        def to_sparse(d, i):
            new_d = d.reshape((math.prod(d.shape[:n]),) + d.shape[n:])
            grids = jnp.meshgrid(*(jnp.arange(s, dtype=i.dtype) for s in d.shape[:n]),
                                 indexing="ij")
            new_i = jnp.column_stack([jnp.broadcast_to(i, (new_d.shape[0], i.size)),
                                      *(g.ravel() for g in grids)])
            return new_d, new_i
        data, indices = _nfold_vmap(to_sparse, cur_nb + 1)(data, indices)
        data = data.reshape(data.shape[:cur_nb] + (-1,) + data.shape[cur_nb + 2:])
        indices = indices.reshape(indices.shape[:cur_nb] + (-1,) + indices.shape[cur_nb + 2:])
        cur_nd = n_dense
    if n_batch < cur_nb:      # trailing batch dimensions become sparse ones
        n = cur_nb - n_batch

        def unbatch(d, i):
            nse = i.shape[-2]
            new_d = d.reshape((math.prod(d.shape[:n + 1]),) + d.shape[n + 1:])
            grids = jnp.meshgrid(*(jnp.arange(s, dtype=i.dtype) for s in i.shape[:n] + (nse,)),
                                 indexing="ij")
            new_i = i.reshape((math.prod(i.shape[:n + 1]),) + i.shape[n + 1:])
            return new_d, jnp.column_stack([*(g.ravel() for g in grids[:-1]), new_i])
        data, indices = _nfold_vmap(unbatch, n_batch)(data, indices)
        cur_nb = n_batch
    if n_dense > cur_nd:      # trailing sparse dimensions become dense ones
        n = n_dense - cur_nd

        def densify(d, i):
            new_d = jnp.zeros(shape[len(shape) - n_dense:], d.dtype)
            return new_d.at[tuple(i[k] for k in range(i.shape[0] - n, i.shape[0]))].set(
                d, mode="drop"), i[:i.shape[0] - n]
        data, indices = _nfold_vmap(densify, cur_nb + 1)(data, indices)
        cur_nd = n_dense
    if n_batch > cur_nb:      # leading sparse dimensions become batch ones
        n = n_batch - cur_nb

        def batch(d, i):
            nse = i.shape[-2]
            where = tuple(i[:, k] for k in range(n)) + (jnp.arange(nse),)
            new_i = jnp.broadcast_to(i[:, n:], shape[cur_nb:n_batch] + (nse, i.shape[-1] - n))
            new_d = jnp.zeros(shape[cur_nb:n_batch] + (nse,) + d.shape[d.ndim - n_dense:],
                              d.dtype)
            return new_d.at[where].set(d, mode="drop"), new_i
        data, indices = _nfold_vmap(batch, cur_nb)(data, indices)
    return BCOO((data, indices), shape=shape)


# --------------------------------------------------------------------------- reshape

def bcoo_reshape(mat: BCOO, *, new_sizes: Sequence[int],
                 dimensions: Sequence[int] | None = None) -> BCOO:
    """``lax.reshape`` of a BCOO: batch dimensions reshape as dense arrays, sparse ones by
    re-raveling the indices, dense ones with the data. ``new_sizes`` must keep the three
    groups apart (its running products must pass through the batch size and the batch
    times sparse size); ``dimensions`` may only permute within a group."""
    new_sizes = static_ints(new_sizes, "bcoo_reshape", "new_sizes")
    if math.prod(new_sizes) != math.prod(mat.shape):
        raise TypeError(f"bcoo_reshape: new_sizes {new_sizes} do not have the size of shape "
                        f"{mat.shape}")
    nb, ns = mat.n_batch, mat.n_sparse
    if mat.indices.shape[:nb] != mat.shape[:nb] or mat.data.shape[:nb] != mat.shape[:nb]:
        raise NotImplementedError("bcoo_reshape: arrays with broadcast batch dimensions")
    perm = tuple(range(mat.ndim)) if dimensions is None else static_ints(
        dimensions, "bcoo_reshape", "dimensions")
    batch_perm, sparse_perm, dense_perm = _split(perm, nb, ns)
    if sorted(perm) != list(range(mat.ndim)) or sorted(batch_perm) != list(range(nb)) or \
            sorted(sparse_perm) != list(range(nb, nb + ns)):
        raise NotImplementedError(f"bcoo_reshape: dimensions {perm} must permute batch, sparse "
                                  f"and dense dimensions among themselves")
    batch_shape, sparse_shape, _ = _split(mat.shape, nb, ns)
    batch_size, sparse_size = math.prod(batch_shape), math.prod(sparse_shape)
    cumulative = np.cumprod(new_sizes)
    if batch_size != 1 and batch_size not in cumulative:
        raise ValueError("bcoo_reshape: new shape cannot mix batch and sparse dimensions; got "
                         f"shape={mat.shape} new_shape={new_sizes} with n_batch={nb}")
    if sparse_size != 1 and batch_size * sparse_size not in cumulative:
        raise ValueError("bcoo_reshape: new shape cannot mix sparse and dense dimensions; got "
                         f"shape={mat.shape} new_shape={new_sizes} with n_dense={mat.n_dense}")
    i1 = int(cumulative.searchsorted(batch_size, side="right"))
    i2 = int(cumulative.searchsorted(batch_size * sparse_size, side="right"))
    new_batch, new_sparse, new_dense = new_sizes[:i1], new_sizes[i1:i2], new_sizes[i2:]
    data = lax.reshape(mat.data, (*new_batch, mat.nse, *new_dense),
                       (*batch_perm, nb, *(p - ns + 1 for p in dense_perm)))
    indices = lax.reshape(mat.indices, (*new_batch, mat.nse, ns), (*batch_perm, nb, nb + 1))
    if not new_sparse:
        indices = jnp.zeros((*new_batch, mat.nse, 0), indices.dtype)
    elif sparse_shape:
        cols = tuple(indices[..., p - nb] for p in sparse_perm)
        flat = jnp.ravel_multi_index(cols, tuple(mat.shape[p] for p in sparse_perm), mode="clip")
        out_of_range = (indices >= jnp.asarray(sparse_shape, indices.dtype)).any(-1, keepdims=True)
        new_cols = jnp.unravel_index(flat, new_sparse)
        indices = jnp.stack([c.astype(indices.dtype) for c in new_cols], -1)
        indices = jnp.where(out_of_range, jnp.asarray(new_sparse, indices.dtype), indices)
    return BCOO((data, indices), shape=new_sizes)


def bcoo_squeeze(arr: BCOO, *, dimensions: Sequence[int]) -> BCOO:
    """``lax.squeeze`` of a BCOO: drops size-1 dimensions (a sparse one drops its index
    column)."""
    dims = tuple(d % arr.ndim if -arr.ndim <= d < arr.ndim else d
                 for d in static_ints(dimensions, "bcoo_squeeze", "dimensions"))
    if any(not 0 <= d < arr.ndim or arr.shape[d] != 1 for d in dims):
        raise ValueError("bcoo_squeeze: cannot squeeze an axis whose size is not one, got "
                         f"shape={arr.shape} and dimensions={dims}")
    nb, ns = arr.n_batch, arr.n_sparse
    batch_dims = tuple(d for d in dims if d < nb)
    keep = [k for k in range(ns) if k + nb not in dims]
    dense_dims = tuple(d - ns + 1 for d in dims if d >= nb + ns)
    data = lax.squeeze(arr.data, batch_dims + dense_dims)
    indices = arr.indices[..., np.array(keep, np.int32)] if len(keep) != ns else arr.indices
    indices = lax.squeeze(indices, batch_dims)
    return BCOO((data, indices), shape=tuple(s for i, s in enumerate(arr.shape) if i not in dims),
                indices_sorted=arr.indices_sorted, unique_indices=arr.unique_indices)


def bcoo_concatenate(operands: Sequence[BCOO], *, dimension: int) -> BCOO:
    """``lax.concatenate`` of BCOO arrays along a batch or sparse ``dimension`` (their
    layouts must agree; a leading size-1 dimension is made batch or sparse to match)."""
    dimension = operator.index(dimension)
    operands = list(operands)
    if not operands or not all(isinstance(op, BCOO) for op in operands):
        raise ValueError("bcoo_concatenate: operands must be a non-empty sequence of BCOO "
                         f"arrays, got {[type(op).__name__ for op in operands]}")
    ndim = operands[0].ndim
    if not 0 <= dimension < ndim:
        raise ValueError(f"bcoo_concatenate: dimension {dimension} out of range for "
                         f"{ndim}-d operands")
    if any(op.ndim != ndim or op.shape[:dimension] + op.shape[dimension + 1:] !=
           operands[0].shape[:dimension] + operands[0].shape[dimension + 1:] for op in operands):
        raise TypeError("bcoo_concatenate: operands must have equal shapes except along "
                        f"dimension {dimension}, got {[op.shape for op in operands]}")
    if len({op.n_dense for op in operands}) > 1:
        raise ValueError("bcoo_concatenate: operands must have matching n_dense")
    n_batches = {op.n_batch for op in operands}
    if len(n_batches) != 1 and max(n_batches) == 1:   # x[None] next to a batched array
        if all(op.shape[0] == 1 for op in operands if op.n_batch == 0):
            operands = [bcoo_update_layout(op, n_batch=1) if op.n_batch == 0 else op
                        for op in operands]
        elif all(op.shape[0] == 1 for op in operands if op.n_batch == 1):
            operands = [bcoo_update_layout(op, n_batch=0) if op.n_batch == 1 else op
                        for op in operands]
        n_batches = {op.n_batch for op in operands}
    if len(n_batches) != 1:
        raise ValueError("bcoo_concatenate: operands must have matching n_batch")
    nb, ns = operands[0].n_batch, operands[0].n_sparse

    def batch_shapes(attr):
        return {tuple(s for i, s in enumerate(getattr(op, attr).shape[:nb]) if i != dimension)
                for op in operands}
    if len(batch_shapes("indices")) != 1 or len(batch_shapes("data")) != 1:
        raise NotImplementedError("bcoo_concatenate: arrays with broadcast batch dimensions")
    if dimension < nb:
        nse = max(op.nse for op in operands)
        operands = [_set_nse(op, nse) for op in operands]
        indices = lax.concatenate([op.indices for op in operands], dimension)
        data = lax.concatenate([op.data for op in operands], dimension)
    elif dimension < nb + ns:
        dtype = operands[0].indices.dtype
        offsets = np.cumsum([0] + [op.shape[dimension] for op in operands[:-1]])
        col = dimension - nb
        data = lax.concatenate([op.data for op in operands], nb)
        indices = lax.concatenate([op.indices.astype(dtype).at[..., col].add(int(off))
                                   for op, off in zip(operands, offsets)], nb)
    else:
        raise NotImplementedError("bcoo_concatenate: concatenation along dense dimensions")
    shape = list(operands[0].shape)
    shape[dimension] = sum(op.shape[dimension] for op in operands)
    return BCOO((data, indices), shape=tuple(shape))


def bcoo_rev(operand: BCOO, dimensions: Sequence[int]) -> BCOO:
    """``lax.rev`` of a BCOO: batch and dense dimensions reverse the buffers, sparse ones
    mirror their index column (padding stays out of range)."""
    dims = static_ints(dimensions, "bcoo_rev", "dimensions")
    if any(not 0 <= d < operand.ndim for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"bcoo_rev: dimensions {dims} must be distinct dimensions of shape "
                         f"{operand.shape}")
    nb, ns = operand.n_batch, operand.n_sparse
    batch_dims = [d for d in dims if d < nb]
    sparse_dims = [d - nb for d in dims if nb <= d < nb + ns]
    dense_dims = [d - ns + 1 for d in dims if d >= nb + ns]
    data, indices = operand.data, operand.indices
    if batch_dims:
        indices = lax.rev(indices, tuple(batch_dims))
    if batch_dims or dense_dims:
        data = lax.rev(data, tuple(batch_dims + dense_dims))
    if sparse_dims:
        size = jnp.asarray(operand.shape[nb:nb + ns], indices.dtype)
        cols = jnp.asarray(sparse_dims, np.int32)
        indices = indices.at[..., cols].set(size[cols] - 1 - indices[..., cols])
        indices = jnp.where(indices < 0, size, indices)
    return BCOO((data, indices), shape=operand.shape)


# --------------------------------------------------------------------------- slicing

def _drop_outside(mat: BCOO, data: Any, indices: Any, keep: Any, new_indices: Any,
                  fill: Any, new_shape: tuple) -> BCOO:
    """Entries outside a slice (``keep`` false) become padding; if ``nse`` exceeds the
    slice's sparse size, duplicates are summed down to it, as jax does."""
    indices = jnp.where(keep, new_indices, fill)
    keep_data = lax.expand_dims(keep[..., 0], tuple(range(mat.n_batch + 1, data.ndim)))
    data = jnp.where(keep_data, data, jnp.zeros((), data.dtype))
    out = BCOO((data, indices), shape=new_shape)
    new_nse = math.prod(new_shape[mat.n_batch:mat.n_batch + mat.n_sparse])
    return bcoo_sum_duplicates(out, nse=new_nse) if mat.nse > new_nse else out


def bcoo_slice(mat: BCOO, *, start_indices: Sequence[int], limit_indices: Sequence[int],
               strides: Sequence[int] | None = None) -> BCOO:
    """``lax.slice`` of a BCOO: batch and dense dimensions slice the buffers, sparse ones
    shift the indices and make entries outside the slice padding."""
    if not isinstance(mat, BCOO):
        raise TypeError(f"bcoo_slice: mat must be a BCOO, got {type(mat).__name__}")
    start = static_ints(start_indices, "bcoo_slice", "start_indices")
    limit = static_ints(limit_indices, "bcoo_slice", "limit_indices")
    steps = (1,) * mat.ndim if strides is None else static_ints(strides, "bcoo_slice", "strides")
    if not len(start) == len(limit) == len(steps) == mat.ndim:
        raise ValueError(f"bcoo_slice: start_indices, limit_indices and strides must have "
                         f"mat.ndim={mat.ndim} entries")
    if any(s <= 0 for s in steps):
        raise ValueError(f"bcoo_slice: strides must be positive, got {steps}")
    if not all(0 <= a <= b <= n for a, b, n in zip(start, limit, mat.shape)):
        raise ValueError(f"bcoo_slice: invalid indices: start_indices={start}, "
                         f"limit_indices={limit} for shape {mat.shape}")
    nb, ns = mat.n_batch, mat.n_sparse
    data_idx, ind_idx = [], []
    for i in range(nb):
        whole = slice(start[i], limit[i], steps[i])
        data_idx.append(slice(None) if mat.data.shape[i] != mat.shape[i] else whole)
        ind_idx.append(slice(None) if mat.indices.shape[i] != mat.shape[i] else whole)
    data_idx += [slice(None)] + [slice(a, b, s) for a, b, s in zip(*(
        x[nb + ns:] for x in (start, limit, steps)))]
    data, indices = mat.data[tuple(data_idx)], mat.indices[tuple(ind_idx)]
    new_shape = tuple((b - a + s - 1) // s for a, b, s in zip(start, limit, steps))
    if not ns:
        return BCOO((data, indices), shape=new_shape)

    def col(v):
        return lax.expand_dims(jnp.asarray(v[nb:nb + ns], indices.dtype), tuple(range(nb + 1)))
    a, b, s = col(start), col(limit), col(steps)
    keep = ((indices >= a) & (indices < b) & ((indices - a) % s == 0)).all(-1, keepdims=True)
    return _drop_outside(mat, data, indices, keep, (indices - a + s - 1) // s,
                         (b - a + s - 1) // s, new_shape)


def bcoo_dynamic_slice(mat: BCOO, start_indices: Sequence[Any],
                       slice_sizes: Sequence[int]) -> BCOO:
    """``lax.dynamic_slice`` of a BCOO: the starts may be traced (clamped into range as
    ``lax.dynamic_slice`` does); the sizes are static."""
    if not isinstance(mat, BCOO):
        raise TypeError(f"bcoo_dynamic_slice: mat must be a BCOO, got {type(mat).__name__}")
    sizes = static_ints(slice_sizes, "bcoo_dynamic_slice", "slice_sizes")
    starts = [jnp.asarray(i) for i in start_indices]
    if not len(starts) == len(sizes) == mat.ndim:
        raise ValueError(f"bcoo_dynamic_slice: start_indices and slice_sizes must have "
                         f"mat.ndim={mat.ndim} entries")
    if any(i.shape != () or not jnp.issubdtype(i.dtype, jnp.integer) for i in starts):
        raise TypeError("bcoo_dynamic_slice: start_indices must be integer scalars")
    if not all(0 <= n <= m for n, m in zip(sizes, mat.shape)):
        raise TypeError("bcoo_dynamic_slice: slice_sizes must be less than or equal to the "
                        f"operand shape, got slice_sizes {sizes} for shape {mat.shape}")
    nb, ns = mat.n_batch, mat.n_sparse
    zero = jnp.zeros((), starts[0].dtype if starts else np.int32)
    d_start, d_size, i_start, i_size = [], [], [], []
    for i in range(nb):
        for buf, st, sz in ((mat.data, d_start, d_size), (mat.indices, i_start, i_size)):
            broadcast = buf.shape[i] != mat.shape[i]
            st.append(zero if broadcast else starts[i])
            sz.append(1 if broadcast else sizes[i])
    d_start += [zero] + starts[nb + ns:]
    d_size += [mat.nse] + list(sizes[nb + ns:])
    i_start += [zero, zero]
    i_size += [mat.nse, ns]
    data = lax.dynamic_slice(mat.data, d_start, d_size)
    indices = lax.dynamic_slice(mat.indices, i_start, i_size)
    if not ns:
        return BCOO((data, indices), shape=sizes)
    dtype = indices.dtype
    begin = jnp.stack([s.astype(dtype) for s in starts[nb:nb + ns]])
    size = jnp.asarray(sizes[nb:nb + ns], dtype)
    bound = jnp.asarray(mat.shape[nb:nb + ns], dtype)
    begin = jnp.clip(jnp.where(begin < 0, begin + bound, begin), 0, bound - size)
    begin, size = (lax.expand_dims(v, tuple(range(nb + 1))) for v in (begin, size))
    keep = ((indices >= begin) & (indices < begin + size)).all(-1, keepdims=True)
    return _drop_outside(mat, data, indices, keep, indices - begin, size, sizes)


# --------------------------------------------------------------------------- methods

def _reshape_method(self: BCOO, *args: Any, order: str = "C") -> BCOO:
    """``jnp.reshape`` of a BCOO (``bcoo_reshape``; one size may be -1)."""
    if order != "C":
        raise NotImplementedError(f"BCOO.reshape: order={order!r}; only 'C' is supported")
    sizes = args[0] if len(args) == 1 and not isinstance(args[0], (int, np.integer)) else args
    sizes = list(static_ints(sizes, "BCOO.reshape", "shape"))
    if sizes.count(-1) > 1:
        raise ValueError("BCOO.reshape: at most one size may be -1")
    if -1 in sizes:
        rest = math.prod(s for s in sizes if s != -1)
        sizes[sizes.index(-1)] = self.size // rest if rest else 0
    if tuple(sizes) == self.shape:
        return self
    return bcoo_reshape(self, new_sizes=tuple(sizes))


def _getitem_method(self: BCOO, idx: Any) -> BCOO:
    """``mat[idx]`` for integers, slices, ``None`` and ``...`` (as jax's indexing lowers
    them: a slice, then a squeeze of the integer dimensions, then new axes); a traced
    integer is a ``bcoo_dynamic_slice``. Array indices are not supported."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    if sum(i is Ellipsis for i in idx) > 1:
        raise IndexError("BCOO.__getitem__: an index can only have a single ellipsis")
    n_real = sum(i is not None and i is not Ellipsis for i in idx)
    if n_real > self.ndim:
        raise IndexError(f"BCOO.__getitem__: too many indices for an array of shape "
                         f"{self.shape}")
    if any(i is Ellipsis for i in idx):
        at = next(k for k, i in enumerate(idx) if i is Ellipsis)
        idx = idx[:at] + (slice(None),) * (self.ndim - n_real) + idx[at + 1:]
    else:
        idx = idx + (slice(None),) * (self.ndim - n_real)
    start, limit, steps, squeeze, traced, new_axes = [], [], [], [], {}, []
    dim = 0
    for pos, i in enumerate(idx):
        if i is None:
            new_axes.append(pos)
            continue
        size = self.shape[dim]
        if isinstance(i, slice):
            a, b, s = i.indices(size)
            if s < 0:
                raise NotImplementedError("BCOO.__getitem__: negative slice steps")
            start.append(a)
            limit.append(max(a, b))
            steps.append(s)
        elif isinstance(i, core.Tracer):
            if i.shape != () or not jnp.issubdtype(i.dtype, jnp.integer):
                raise NotImplementedError("BCOO.__getitem__: only integer scalars, slices, None "
                                          "and ... are supported as indices")
            traced[dim] = i
            start.append(0)
            limit.append(1)
            steps.append(1)
            squeeze.append(dim)
        else:
            try:
                k = operator.index(i)
            except TypeError:
                raise NotImplementedError("BCOO.__getitem__: only integer scalars, slices, "
                                          "None and ... are supported as indices") from None
            if not -size <= k < size:
                raise IndexError(f"BCOO.__getitem__: index {k} is out of bounds for axis "
                                 f"{dim} with size {size}")
            k %= size
            start.append(k)
            limit.append(k + 1)
            steps.append(1)
            squeeze.append(dim)
        dim += 1
    out = self
    if traced:
        if any(s != 1 for s in steps) or any(
                (a, b) != (0, n) for d, (a, b, n) in enumerate(zip(start, limit, self.shape))
                if d not in traced):
            raise NotImplementedError("BCOO.__getitem__: traced integers mixed with partial "
                                      "slices")
        sizes = [1 if d in traced else n for d, n in enumerate(self.shape)]
        begins = [jnp.where(traced[d] < 0, traced[d] + n, traced[d]) if d in traced else 0
                  for d, n in enumerate(self.shape)]
        out = bcoo_dynamic_slice(out, begins, slice_sizes=sizes)
    elif (tuple(start), tuple(limit), set(steps)) != ((0,) * self.ndim, self.shape, {1}) \
            and self.ndim:
        out = bcoo_slice(out, start_indices=start, limit_indices=limit,
                         strides=None if set(steps) == {1} else steps)
    if squeeze:
        out = bcoo_squeeze(out, dimensions=squeeze)
    if new_axes:
        shape = list(out.shape)
        for pos in new_axes:
            shape.insert(pos, 1)
        kept = [p for p in range(len(shape)) if p not in new_axes]
        out = bcoo_broadcast_in_dim(out, shape=shape, broadcast_dimensions=kept)
    return out


def _iter_method(self: BCOO) -> Any:
    return iter(self[i] for i in range(self.shape[0]))


BCOO.reshape = _reshape_method
BCOO.__getitem__ = _getitem_method
BCOO.__iter__ = _iter_method


def _update_layout_method(self: BCOO, *, n_batch: int | None = None, n_dense: int | None = None,
                          on_inefficient: str | None = "error") -> BCOO:
    """``bcoo_update_layout``."""
    return bcoo_update_layout(self, n_batch=n_batch, n_dense=n_dense,
                              on_inefficient=on_inefficient)


BCOO.update_layout = _update_layout_method
