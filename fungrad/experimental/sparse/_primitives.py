"""The three primitives that move values between the batched-COO layout and dense arrays.

A BCOO array of shape ``batch + sparse + dense`` stores ``data`` of shape
``batch + (nse,) + dense`` and ``indices`` of shape ``batch + (nse, n_sparse)``: entry ``k``
of each batch says which sparse position its block of data sits at. A batch dimension of
``data`` or ``indices`` may have size 1 (broadcast over the batch). Padding entries carry
an index out of range (``sparse_shape`` itself, as ``fromdense`` writes) and are dropped
by every consumer.

* ``bcoo_todense_p(data, indices, shape=)`` scatters (adds) the data into a dense array;
  linear in ``data``.
* ``bcoo_extract_p(indices, arr)`` gathers ``arr`` at the indices (0 where out of range);
  linear in ``arr`` and the transpose of ``bcoo_todense_p``, so each one's transpose rule
  is the other.
* ``bcoo_fromdense_p(mat, nse=, n_batch=, n_dense=, index_dtype=)`` finds the nonzeros, in
  row-major order per batch, padded to ``nse``. Its indices depend on the values, so it is
  not linear: its JVP is ``bcoo_extract`` of the tangent at the primal's indices.

Their implementations run on NumPy buffers (``xp``); the batching rules move the mapped
axis to the front and make it one more batch dimension. Everything else in
``fungrad.experimental.sparse`` is a composite of these and ``fungrad.lax``.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching

__all__ = ["bcoo_todense_p", "bcoo_extract_p", "bcoo_fromdense_p", "validate_layout"]


def validate_layout(data_shape: tuple, indices_shape: tuple, shape: tuple,
                    name: str) -> tuple[int, int, int, int]:
    """``(n_batch, n_sparse, n_dense, nse)`` of a BCOO layout, or a ``ValueError`` naming
    ``name`` and the buffer whose shape does not fit ``shape``."""
    if len(indices_shape) < 2:
        raise ValueError(f"{name}: indices must have shape batch + (nse, n_sparse), got "
                         f"{tuple(indices_shape)}")
    nse, n_sparse = indices_shape[-2:]
    n_batch = len(indices_shape) - 2
    n_dense = len(shape) - n_batch - n_sparse
    if n_dense < 0:
        raise ValueError(f"{name}: indices of shape {tuple(indices_shape)} imply n_batch + "
                         f"n_sparse = {n_batch + n_sparse} > ndim {len(shape)} of shape {shape}")
    for what, s in (("indices", indices_shape), ("data", data_shape)):
        if any(a not in (1, b) for a, b in zip(s[:n_batch], shape[:n_batch])):
            raise ValueError(f"{name}: {what} batch dimensions {tuple(s[:n_batch])} do not "
                             f"match shape {shape} (each must be 1 or the batch size)")
    want = (nse,) + tuple(shape[n_batch + n_sparse:])
    if len(data_shape) != n_batch + 1 + n_dense or tuple(data_shape[n_batch:]) != want:
        raise ValueError(f"{name}: data of shape {tuple(data_shape)} does not fit nse={nse}, "
                         f"n_batch={n_batch}, n_dense={n_dense} and shape {shape}")
    return n_batch, n_sparse, n_dense, nse


def _batch_grid(xp: Any, batch_shape: tuple, nse: int) -> tuple:
    """Open index grids of the batch positions, each broadcastable to ``batch + (nse,)``."""
    n = len(batch_shape)
    return tuple(xp.arange(s).reshape((s,) + (1,) * (n - i)) for i, s in enumerate(batch_shape))


def _in_range(xp: Any, indices: Any, sparse_shape: tuple) -> Any:
    """Which entries have every index within ``sparse_shape`` (padding has not)."""
    bound = xp.asarray(sparse_shape, dtype=indices.dtype)
    return ((indices >= 0) & (indices < bound)).all(-1)


def _front(x: Any, bdim: int | None) -> Any:
    """``x`` with its batch axis first; an unbatched operand gets a size-1 batch axis, which
    the BCOO layout broadcasts."""
    if bdim is None:
        return lax.expand_dims(x, (0,))
    return batching.moveaxis(x, bdim, 0)


# --------------------------------------------------------------------------- bcoo_todense

bcoo_todense_p = Primitive("bcoo_todense")


@bcoo_todense_p.def_impl
def _todense_impl(xp, data, indices, *, shape):
    n_batch, n_sparse, _, nse = validate_layout(data.shape, indices.shape, shape, "bcoo_todense")
    batch = shape[:n_batch]
    if n_sparse == 0:
        return xp.broadcast_to(data.sum(n_batch, dtype=data.dtype), shape).copy()
    ok = xp.broadcast_to(_in_range(xp, indices, shape[n_batch:n_batch + n_sparse]), batch + (nse,))
    ind = xp.broadcast_to(indices, batch + (nse, n_sparse))
    vals = xp.broadcast_to(data, batch + data.shape[n_batch:])
    where = tuple(xp.broadcast_to(g, batch + (nse,))[ok] for g in _batch_grid(xp, batch, nse))
    where += tuple(ind[..., k][ok] for k in range(n_sparse))
    out = xp.zeros(shape, data.dtype)
    xp.add.at(out, where, vals[ok])
    return out


@bcoo_todense_p.def_abstract_eval
def _todense_abstract_eval(data, indices, *, shape):
    validate_layout(data.shape, indices.shape, shape, "bcoo_todense")
    return ShapedArray(shape, data.dtype, data.weak_type)


def _todense_transpose(ct, data, indices, *, shape):
    if ad.is_undefined(indices):
        raise ValueError("bcoo_todense: cannot transpose with respect to the sparse indices")
    out = bcoo_extract_p.bind(indices, ad.instantiate(ct))
    data_shape = data.aval.shape
    n_batch = len(indices.shape) - 2
    # a data batch dimension of size 1 was broadcast: its cotangent sums over the batch
    axes = tuple(i for i in range(n_batch) if data_shape[i] == 1 and out.shape[i] != 1)
    if axes:
        out = lax.reduce_sum(out, axes)
        out = lax.expand_dims(out, axes)
    return [out, None]


def _todense_batch(axis_size, vals, dims, *, shape):
    data, indices = (_front(v, d) for v, d in zip(vals, dims))
    return bcoo_todense_p.bind(data, indices, shape=(axis_size,) + tuple(shape)), 0


ad.defjvp(bcoo_todense_p, lambda t, data, indices, *, shape:
          bcoo_todense_p.bind(t, indices, shape=shape), None)
ad.def_transpose(bcoo_todense_p, _todense_transpose)
batching.def_batch(bcoo_todense_p, _todense_batch)


# --------------------------------------------------------------------------- bcoo_extract

bcoo_extract_p = Primitive("bcoo_extract")


def _extract_shape(indices_shape: tuple, arr_shape: tuple) -> tuple:
    n_batch = len(indices_shape) - 2
    nse, n_sparse = indices_shape[-2:]
    if n_batch + n_sparse > len(arr_shape) or any(
            a not in (1, b) for a, b in zip(indices_shape[:n_batch], arr_shape[:n_batch])):
        raise ValueError(f"bcoo_extract: indices of shape {tuple(indices_shape)} do not fit an "
                         f"array of shape {tuple(arr_shape)}")
    return tuple(arr_shape[:n_batch]) + (nse,) + tuple(arr_shape[n_batch + n_sparse:])


@bcoo_extract_p.def_impl
def _extract_impl(xp, indices, arr):
    out_shape = _extract_shape(indices.shape, arr.shape)
    n_batch, n_sparse = indices.ndim - 2, indices.shape[-1]
    batch, nse = arr.shape[:n_batch], indices.shape[-2]
    n_dense = arr.ndim - n_batch - n_sparse
    if n_sparse == 0:
        return xp.broadcast_to(xp.expand_dims(arr, n_batch), out_shape).copy()
    ok = xp.broadcast_to(_in_range(xp, indices, arr.shape[n_batch:n_batch + n_sparse]),
                         batch + (nse,))
    ind = xp.where(ok[..., None], xp.broadcast_to(indices, batch + (nse, n_sparse)), 0)
    where = _batch_grid(xp, batch, nse) + tuple(ind[..., k] for k in range(n_sparse))
    vals = arr[where]
    zero = xp.zeros((), arr.dtype)
    return xp.where(ok.reshape(ok.shape + (1,) * n_dense), vals, zero)


@bcoo_extract_p.def_abstract_eval
def _extract_abstract_eval(indices, arr):
    return ShapedArray(_extract_shape(indices.shape, arr.shape), arr.dtype, arr.weak_type)


def _extract_transpose(ct, indices, arr):
    if ad.is_undefined(indices):
        raise ValueError("bcoo_extract: cannot transpose with respect to the sparse indices")
    return [None, bcoo_todense_p.bind(ad.instantiate(ct), indices, shape=arr.aval.shape)]


def _extract_batch(axis_size, vals, dims):
    indices, arr = vals
    idim, adim = dims
    indices = _front(indices, idim)
    arr = batching.bdim_at_front(arr, adim, axis_size)
    return bcoo_extract_p.bind(indices, arr), 0


ad.defjvp(bcoo_extract_p, None, lambda t, indices, arr: bcoo_extract_p.bind(indices, t))
ad.def_transpose(bcoo_extract_p, _extract_transpose)
batching.def_batch(bcoo_extract_p, _extract_batch)


# --------------------------------------------------------------------------- bcoo_fromdense

bcoo_fromdense_p = Primitive("bcoo_fromdense", multiple_results=True)


@bcoo_fromdense_p.def_impl
def _fromdense_impl(xp, mat, *, nse, n_batch, n_dense, index_dtype):
    n_sparse = mat.ndim - n_batch - n_dense
    batch, sparse = mat.shape[:n_batch], mat.shape[n_batch:n_batch + n_sparse]
    mask = mat != 0
    if n_dense:
        mask = mask.any(axis=tuple(range(n_batch + n_sparse, mat.ndim)))
    indices = xp.empty(batch + (nse, n_sparse), index_dtype)
    indices[...] = xp.asarray(sparse, dtype=index_dtype)
    counts = xp.zeros(batch + (1,), np.int64)
    for b in itertools.product(*map(range, batch)):
        found = xp.stack(xp.nonzero(mask[b]), -1)[:nse] if n_sparse else None
        if n_sparse:
            indices[b][:len(found)] = found
        counts[b] = int(mask[b].sum())
    data = _extract_impl(xp, indices, mat)
    kept = xp.arange(nse) < counts          # entries past a batch's nonzeros hold zeros
    return [xp.where(kept.reshape(kept.shape + (1,) * n_dense), data, xp.zeros((), mat.dtype)),
            indices]


@bcoo_fromdense_p.def_abstract_eval
def _fromdense_abstract_eval(mat, *, nse, n_batch, n_dense, index_dtype):
    n_sparse = mat.ndim - n_batch - n_dense
    batch = mat.shape[:n_batch]
    return [ShapedArray(batch + (nse,) + mat.shape[n_batch + n_sparse:], mat.dtype),
            ShapedArray(batch + (nse, n_sparse), np.dtype(index_dtype))]


def _fromdense_jvp(primals, tangents, **params):
    (mat,), (t,) = primals, tangents
    data, indices = bcoo_fromdense_p.bind(mat, **params)
    t_data = (ad.Zero.from_primal(data) if type(t) is ad.Zero
              else bcoo_extract_p.bind(indices, t))
    return [data, indices], [t_data, ad.Zero.from_primal(indices)]


def _fromdense_batch(axis_size, vals, dims, *, n_batch, **params):
    (mat,), (bdim,) = vals, dims
    mat = batching.moveaxis(mat, bdim, 0)
    return bcoo_fromdense_p.bind(mat, n_batch=n_batch + 1, **params), [0, 0]


ad.def_jvp(bcoo_fromdense_p, _fromdense_jvp)
batching.def_batch(bcoo_fromdense_p, _fromdense_batch)
