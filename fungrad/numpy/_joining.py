"""Joining and splitting arrays: concatenate, stack and friends, split and friends."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core.array import Array
from fungrad._core.core import Tracer
from fungrad.numpy._shape import atleast_1d, atleast_2d, atleast_3d, slice_axis, take_static
from fungrad.numpy._util import (aval, canonicalize_axis, check_user_dtype, ensure_arraylike,
                                 promote_dtypes, static_indices_along, static_int)


def _as_list(fname: str, arrays: Any) -> list:
    if isinstance(arrays, (Array, Tracer, np.ndarray)):
        arr = ensure_arraylike(fname, arrays)
        if aval(arr).ndim == 0:
            raise ValueError(f"{fname}: need at least one array, got a 0-d array")
        return [lax.reshape(lax.slice(arr, (i,) + (0,) * (aval(arr).ndim - 1),
                                      (i + 1,) + aval(arr).shape[1:]), aval(arr).shape[1:])
                for i in range(aval(arr).shape[0])]
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{fname}: expected a sequence of arrays, got {type(arrays).__name__}")
    return [ensure_arraylike(fname, a) for a in arrays]


def block(arrays: Any) -> Any:
    """One array from a nested list of blocks: the innermost lists are joined along the
    last axis, the lists holding them along the one before, and so on (``numpy.block``)."""
    return _block(arrays)[0]


def _block(blocks: Any) -> tuple[Any, int]:
    """The array built from ``blocks`` and the depth of list nesting it had."""
    if isinstance(blocks, tuple):
        raise ValueError(f"block: tuples are not allowed, use lists; got {blocks!r}")
    if not isinstance(blocks, list):
        return ensure_arraylike("block", blocks), 1
    if not blocks:
        raise ValueError("block: empty lists are not allowed")
    parts, depths = zip(*[_block(b) for b in blocks])
    if len(set(depths)) > 1:
        raise ValueError(f"block: the lists are nested to different depths {sorted(set(depths))}")
    rank = max(depths[0], *(aval(p).ndim for p in parts))
    parts = [lax.reshape(p, (1,) * (rank - aval(p).ndim) + aval(p).shape) for p in parts]
    return concatenate(parts, axis=-depths[0]), depths[0] + 1


def _promote_all(arrays: list, dtype: Any, fname: str) -> list:
    dtype = check_user_dtype(dtype, fname)
    if dtype is not None:
        return [lax.convert_element_type(a, dtype) for a in arrays]
    return promote_dtypes(*arrays) if len(arrays) > 1 else arrays


def concatenate(arrays: Any, axis: int | None = 0, dtype: Any = None) -> Any:
    """Join arrays along an existing ``axis`` (flattening them first when None)."""
    arrays = _as_list("concatenate", arrays)
    if not arrays:
        raise ValueError("concatenate: need at least one array to concatenate")
    if axis is None:
        arrays = [lax.reshape(a, (aval(a).size,)) for a in arrays]
        axis = 0
    if aval(arrays[0]).ndim == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    nd = aval(arrays[0]).ndim
    axis = canonicalize_axis(axis, nd, "concatenate")
    shapes = [aval(a).shape for a in arrays]
    for s in shapes:
        if len(s) != nd or any(d != d0 for i, (d, d0) in enumerate(zip(s, shapes[0]))
                               if i != axis):
            raise TypeError("concatenate: cannot concatenate arrays with shapes that differ in "
                            "dimensions other than the one being concatenated: concatenating "
                            f"along dimension {axis} for shapes "
                            f"{', '.join(map(str, shapes))}")
    arrays = _promote_all(arrays, dtype, "concatenate")
    return arrays[0] if len(arrays) == 1 else lax.concatenate(arrays, axis)


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    """Array-API name of ``concatenate``."""
    return concatenate(arrays, axis)


def stack(arrays: Any, axis: int = 0, out: None = None, dtype: Any = None) -> Any:
    """Join same-shape arrays along a new ``axis``."""
    arrays = _as_list("stack", arrays)
    if not arrays:
        raise ValueError("stack: need at least one array to stack")
    shapes = {aval(a).shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"stack: all input arrays must have the same shape, got "
                         f"{', '.join(str(aval(a).shape) for a in arrays)}")
    axis = canonicalize_axis(axis, aval(arrays[0]).ndim + 1, "stack")
    arrays = _promote_all(arrays, dtype, "stack")
    return concatenate([lax.expand_dims(a, (axis,)) for a in arrays], axis)


def vstack(tup: Any, dtype: Any = None) -> Any:
    """Stack row-wise (1-d arrays become rows)."""
    return concatenate(_listify(atleast_2d(*_as_list("vstack", tup))), 0, dtype)



def _listify(x: Any) -> list:
    return x if isinstance(x, list) else [x]


def hstack(tup: Any, dtype: Any = None) -> Any:
    """Stack column-wise (concatenate along axis 1, or 0 for 1-d arrays)."""
    arrs = _listify(atleast_1d(*_as_list("hstack", tup)))
    return concatenate(arrs, 0 if aval(arrs[0]).ndim == 1 else 1, dtype)


def dstack(tup: Any, dtype: Any = None) -> Any:
    """Stack depth-wise (along axis 2)."""
    return concatenate(_listify(atleast_3d(*_as_list("dstack", tup))), 2, dtype)


def column_stack(tup: Any) -> Any:
    """Stack 1-d arrays as columns of a 2-d array."""
    arrs = [lax.transpose(atleast_2d(a), (1, 0)) if aval(a).ndim < 2 else a
            for a in _as_list("column_stack", tup)]
    return concatenate(arrs, 1)


def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    """Split ``x`` into the tuple of its slices along ``axis``."""
    x = ensure_arraylike("unstack", x)
    if aval(x).ndim == 0:
        raise ValueError("unstack requires an array of at least one dimension")
    axis = canonicalize_axis(axis, aval(x).ndim, "unstack")
    return tuple(lax.squeeze(slice_axis(x, axis, i, i + 1), (axis,))
                 for i in range(aval(x).shape[axis]))


def append(arr: Any, values: Any, axis: int | None = None) -> Any:
    """``values`` appended to the end of ``arr`` (both flattened when ``axis`` is None)."""
    return concatenate([ensure_arraylike("append", arr), ensure_arraylike("append", values)],
                       axis)


def delete(arr: Any, obj: Any, axis: int | None = None, *,
           assume_unique_indices: bool = False) -> Any:
    """``arr`` without the entries ``obj`` (static indices or a slice) along ``axis``.
    ``assume_unique_indices`` is accepted for JAX's signature: the indices are static here,
    so repeated ones cost nothing."""
    arr = ensure_arraylike("delete", arr)
    arr, axis, drop = static_indices_along("delete", arr, obj, axis)
    n = aval(arr).shape[axis]
    if drop.dtype == np.bool_:
        if drop.shape != (n,):
            raise ValueError(f"delete: boolean obj must be one-dimensional with length {n} "
                             f"(axis {axis}'s), got shape {drop.shape}")
        drop = np.nonzero(drop)[0]
    drop = np.asarray(drop, np.int64).reshape(-1)
    outside = drop[(drop < -n) | (drop >= n)]
    if outside.size:
        raise IndexError(f"delete: index {outside[0]} is out of bounds for axis {axis} with "
                         f"size {n}")
    keep = np.setdiff1d(np.arange(n), drop % max(n, 1))
    return take_static(arr, keep, axis)


# --------------------------------------------------------------------------- splitting

def _split(fname: str, ary: Any, indices_or_sections: Any, axis: int) -> list:
    ary = ensure_arraylike(fname, ary)
    axis = canonicalize_axis(axis, aval(ary).ndim, fname)
    n = aval(ary).shape[axis]
    ios = indices_or_sections
    if isinstance(ios, (Array, Tracer, np.ndarray)) and np.ndim(ios) > 0:
        ios = [static_int(i, f"{fname}: indices") for i in np.asarray(
            ios.to_concrete_value() if isinstance(ios, Tracer) else ios)]
    if isinstance(ios, (list, tuple)):
        idx = [static_int(i, f"{fname}: indices") for i in ios]
        bounds = [0] + [min(max(i + n if i < 0 else i, 0), n) for i in idx] + [n]
        starts, stops = bounds[:-1], bounds[1:]
    else:
        sections = static_int(ios, f"{fname}: sections")
        if sections <= 0:
            raise ValueError(f"{fname}: number of sections must be larger than 0")
        part, rem = divmod(n, sections)
        if rem and fname != "array_split":
            raise ValueError(f"{fname}: array split does not result in an equal division: "
                             f"{n} elements into {sections} sections")
        sizes = [part + 1] * rem + [part] * (sections - rem)
        starts = list(np.cumsum([0] + sizes[:-1]))
        stops = [s + z for s, z in zip(starts, sizes)]
    return [slice_axis(ary, axis, int(a), max(int(a), int(b))) for a, b in zip(starts, stops)]


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """Split into equal sections or at the given indices along ``axis``."""
    return _split("split", ary, indices_or_sections, axis)


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """Like ``split`` but allows sections of unequal size."""
    return _split("array_split", ary, indices_or_sections, axis)


def vsplit(ary: Any, indices_or_sections: Any) -> list:
    """Split along axis 0."""
    return _split("vsplit", ary, indices_or_sections, 0)


def hsplit(ary: Any, indices_or_sections: Any) -> list:
    """Split along axis 1 (axis 0 for 1-d arrays)."""
    a = ensure_arraylike("hsplit", ary)
    return _split("hsplit", a, indices_or_sections, 0 if aval(a).ndim == 1 else 1)


def dsplit(ary: Any, indices_or_sections: Any) -> list:
    """Split along axis 2."""
    return _split("dsplit", ary, indices_or_sections, 2)


__all__ = ["concatenate", "concat", "block", "stack", "vstack", "hstack", "dstack",
           "column_stack", "unstack", "append", "delete", "split", "array_split", "vsplit",
           "hsplit", "dsplit"]
