"""Sorting: ``sort``, ``argsort`` (stable by default), ``lexsort``, ``partition``,
``argpartition`` and ``unique`` (``size=`` makes it usable under ``jit``)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.errors import ConcretizationTypeError
from fungrad.lax._ops import intn_error
from fungrad.numpy._indexing import _IndexUpdateRef, take
from fungrad.numpy._reductions import cumsum, sum as _sum
from fungrad.numpy._searching import nonzero
from fungrad.numpy._shape import moveaxis, swapaxes
from fungrad.numpy._util import (aval, canonicalize_axis, check_user_dtype, ensure_arraylike,
                                 scalar_like, static_int, to_complex_dtype, where as _where)


def _flat_or_axis(arr: Any, axis: Any, fname: str) -> tuple[Any, int]:
    if axis is None:
        return lax.reshape(arr, (aval(arr).size,)), 0
    return arr, canonicalize_axis(axis, aval(arr).ndim, fname)


def sort(a: Any, axis: int | None = -1, *, kind: None = None, order: None = None,
         stable: bool = True, descending: bool = False) -> Any:
    """Sorted copy of ``a`` along ``axis`` (NaNs last; flattened when ``axis`` is None)."""
    arr = ensure_arraylike("sort", a)
    if order is not None:
        raise TypeError("sort: the 'order' argument is not supported")
    arr, dim = _flat_or_axis(arr, axis, "sort")
    if aval(arr).ndim == 0:
        return arr
    out = lax.sort(arr, dimension=dim, is_stable=stable)
    return lax.rev(out, (dim,)) if descending else out


def argsort(a: Any, axis: int | None = -1, *, kind: None = None, order: None = None,
            stable: bool = True, descending: bool = False, dtype: Any = None) -> Any:
    """Indices that sort ``a`` along ``axis`` (stable: ties keep their order)."""
    arr = ensure_arraylike("argsort", a)
    if order is not None:
        raise TypeError("argsort: the 'order' argument is not supported")
    arr, dim = _flat_or_axis(arr, axis, "argsort")
    idx_dtype = check_user_dtype(dtype, "argsort") or dtypes.default_int_dtype()
    if aval(arr).ndim == 0:
        return lax.full((), 0, idx_dtype)
    iota = lax.broadcasted_iota(idx_dtype, aval(arr).shape, dim)
    if descending and stable:
        arr, iota = lax.rev(arr, (dim,)), lax.rev(iota, (dim,))
    _, indices = lax.sort_key_val(arr, iota, dimension=dim, is_stable=stable)
    return lax.rev(indices, (dim,)) if descending else indices


def lexsort(keys: Sequence[Any], axis: int = -1) -> Any:
    """Indices sorting by the last key, then the one before, ... (stable)."""
    keys = [ensure_arraylike("lexsort", k) for k in (keys if not hasattr(keys, "aval") else
                                                       [keys[i] for i in range(len(keys))])]
    if not keys:
        raise TypeError("lexsort: need a sequence of keys with len > 0")
    if len({aval(k).shape for k in keys}) > 1:
        raise ValueError("lexsort: all keys need to be the same shape")
    shape = aval(keys[0]).shape
    if not shape:
        return lax.full((), 0, dtypes.default_int_dtype())
    dim = canonicalize_axis(axis, len(shape), "lexsort")
    iota = lax.broadcasted_iota(dtypes.default_int_dtype(), shape, dim)
    return lax.sort((*keys[::-1], iota), dimension=dim, num_keys=len(keys))[-1]


def _negate_for_bottom(arr: Any) -> Any:
    if dtypes.kind(aval(arr).dtype) == "u":
        return lax.neg(lax.add(arr, scalar_like(1, arr)))
    return lax.neg(arr)


def partition(a: Any, kth: int, axis: int = -1) -> Any:
    """``a`` rearranged so the ``kth`` element is in sorted position, smaller ones before."""
    arr = ensure_arraylike("partition", a)
    axis = canonicalize_axis(axis, aval(arr).ndim, "partition")
    kth = canonicalize_axis(static_int(kth, "partition: kth"), aval(arr).shape[axis],
                            "partition")
    arr = swapaxes(arr, axis, -1)
    n = aval(arr).shape[-1]
    bottom = lax.top_k(_negate_for_bottom(arr), kth + 1)[0]
    bottom = lax.neg(bottom)
    if dtypes.kind(aval(arr).dtype) == "u":
        bottom = lax.sub(bottom, scalar_like(1, bottom))
    top = lax.top_k(arr, n - kth - 1)[0]
    out = lax.concatenate([bottom, top], aval(arr).ndim - 1)
    return swapaxes(out, -1, axis)


def argpartition(a: Any, kth: int, axis: int = -1) -> Any:
    """Indices that would ``partition`` ``a``."""
    arr = ensure_arraylike("argpartition", a)
    if aval(arr).dtype in dtypes.intn:  # JAX's CPU backend cannot compile its top_k
        raise intn_error("argpartition", aval(arr).dtype)
    axis = canonicalize_axis(axis, aval(arr).ndim, "argpartition")
    kth = canonicalize_axis(static_int(kth, "argpartition: kth"), aval(arr).shape[axis],
                            "argpartition")
    arr = swapaxes(arr, axis, -1)
    n = aval(arr).shape[-1]
    bottom_ind = lax.top_k(_negate_for_bottom(arr), kth + 1)[1]
    # mark the bottom entries with 0 in a proxy of ones, then take the top of the rest
    hot = lax.eq(lax.expand_dims(bottom_ind, (aval(bottom_ind).ndim,)),
                 lax.broadcasted_iota(aval(bottom_ind).dtype,
                                      aval(bottom_ind).shape + (n,), aval(bottom_ind).ndim))
    taken = lax.reduce_or(hot, (aval(bottom_ind).ndim - 1,))
    proxy = lax.select(taken, lax.full(aval(arr).shape, 0.0, np.float32),
                       lax.full(aval(arr).shape, 1.0, np.float32))
    top_ind = lax.top_k(proxy, n - kth - 1)[1]
    out = lax.concatenate([bottom_ind, top_ind], aval(arr).ndim - 1)
    return swapaxes(out, -1, axis)


# --------------------------------------------------------------------------- unique

def _sorted_rows(rows: Any, equal_nan: bool) -> tuple[Any, Any, Any]:
    """``rows`` (1-d: elements; 2-d: rows) sorted lexicographically, the permutation that
    sorts them, and a mask of the first row of each run of equal rows."""
    n = aval(rows).shape[0]
    if aval(rows).ndim == 1:
        perm = argsort(rows)
    else:  # the last key sorts first: the first column is the primary key
        perm = lexsort([rows[:, j] for j in range(aval(rows).shape[1])][::-1]) if \
            aval(rows).shape[1] else lax.iota(dtypes.default_int_dtype(), n)
    aux = take(rows, perm, axis=0, mode="clip")
    later, earlier = aux[1:], aux[:-1]
    differ = lax.ne(later, earlier)
    if equal_nan and dtypes.is_inexact(aval(aux).dtype):
        both_nan = lax.bitwise_and(lax.ne(later, later), lax.ne(earlier, earlier))
        differ = lax.bitwise_and(differ, lax.bitwise_not(both_nan))
    if aval(rows).ndim == 2:
        differ = lax.reduce_or(differ, (1,))
    return aux, lax.concatenate([lax.full((1,), True, np.bool_), differ], 0), perm


def unique(ar: Any, return_index: bool = False, return_inverse: bool = False,
           return_counts: bool = False, axis: int | None = None, *, equal_nan: bool = True,
           size: int | None = None, fill_value: Any = None,
           sorted: bool = True) -> Any:  # noqa: A002
    """Sorted unique elements of the flattened ``ar``, or unique slices along ``axis``.

    Without ``size`` the input must be concrete; with ``size`` exactly ``size`` values (or
    slices) are returned, padded with ``fill_value`` (default: the smallest value).
    """
    arr = ensure_arraylike("unique", ar)
    if size is None and isinstance(arr, Tracer) and arr.to_concrete_value() is None:
        raise ConcretizationTypeError(arr, "unique: the number of unique values is data dependent; "
                                      "pass a static size= (and optionally fill_value=) to use "
                                      "unique inside jit/vmap")
    shape = aval(arr).shape
    if axis is None:
        moved = lax.reshape(arr, (aval(arr).size,))
    else:
        axis = canonicalize_axis(axis, len(shape), "unique")
        moved = moveaxis(arr, axis, 0)
    n, slice_shape = aval(moved).shape[0], aval(moved).shape[1:]
    if n == 0 and size and fill_value is None:
        raise ValueError("unique: for zero-sized input with nonzero size, fill_value must be "
                         "specified")
    int_dtype = dtypes.default_int_dtype()
    if n:
        rows = moved if axis is None else lax.reshape(moved, (n, int(np.prod(slice_shape))))
        aux, mask, perm = _sorted_rows(rows, equal_nan)
        aux = lax.reshape(aux, (n,) + slice_shape)
        ind = nonzero(mask, size=size)[0]
        result = take(aux, ind, axis=0, mode="clip")
    else:
        mask = lax.full((0,), False, np.bool_)
        ind = perm = lax.full((size or 0,), 0, np.int32)
        result = lax.full((size or 0,) + slice_shape, 0, aval(moved).dtype)
    if size is not None and fill_value is not None:
        valid = lax.lt(lax.iota(np.int32, size), _sum(mask, dtype=np.int32))
        valid = lax.expand_dims(valid, tuple(range(1, 1 + len(slice_shape))))
        result = _where(valid, result, lax.convert_element_type(fill_value, aval(result).dtype))
    outs: list[Any] = [result if axis is None else moveaxis(result, 0, axis)]
    if return_index:
        outs.append(take(perm, ind, mode="clip") if n else ind)
    if return_inverse:
        if n:
            imask = lax.sub(cumsum(mask, dtype=int_dtype), lax.convert_element_type(1, int_dtype))
            inv = _IndexUpdateRef(lax.full((n,), 0, int_dtype), perm).set(imask)
        else:
            inv = lax.full((0,), 0, int_dtype)
        outs.append(lax.reshape(inv, shape) if axis is None else inv)
    if return_counts:
        if n:
            idx = nonzero(mask, size=(size if size is not None else aval(ind).shape[0]) + 1,
                          fill_value=n)[0]
            counts = lax.sub(lax.slice(idx, (1,), aval(idx).shape),
                             lax.slice(idx, (0,), (aval(idx).shape[0] - 1,)))
            counts = lax.max(counts, scalar_like(0, counts))
        else:
            counts = lax.full((size or 0,), 0, int_dtype)
        outs.append(lax.convert_element_type(counts, int_dtype))
    return outs[0] if len(outs) == 1 else tuple(outs)


def sort_complex(a: Any) -> Any:
    """``a`` sorted along its last axis by real part, then imaginary part, as complex."""
    arr = ensure_arraylike("sort_complex", a)
    if aval(arr).ndim:
        arr = lax.sort(arr, dimension=aval(arr).ndim - 1)
    return lax.convert_element_type(arr, to_complex_dtype(aval(arr).dtype))


__all__ = ["sort", "sort_complex", "argsort", "lexsort", "partition", "argpartition", "unique"]
