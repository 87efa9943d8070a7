"""Index helpers: ``unravel_index``, ``ravel_multi_index``, ``ix_``, ``mgrid``/``ogrid``,
``r_``/``c_``, ``mask_indices``, ``s_``/``index_exp``, ``fill_diagonal``, ``insert``,
``resize``."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.errors import ConcretizationTypeError
from fungrad._core.util import prod as _prod
from fungrad.lax._prim import hashable_shape
from fungrad.numpy._creation import arange, array, linspace, ones
from fungrad.numpy._indexing import _IndexUpdateRef
from fungrad.numpy._joining import concatenate, stack
from fungrad.numpy._searching import nonzero
from fungrad.numpy._shape import moveaxis, take_static, tile
from fungrad.numpy._ufuncs import divmod as _divmod, remainder
from fungrad.numpy._util import (aval, broadcast_to, check_user_dtype, ensure_arraylike,
                                 scalar_like, static_indices_along, static_int,
                                 where as _where)

s_ = np.s_
index_exp = np.index_exp


def unravel_index(indices: Any, shape: Sequence[int]) -> tuple:
    """The multi-dimensional indices of flat ``indices`` into an array of ``shape``
    (out-of-range indices are clipped, as in JAX)."""
    idx = ensure_arraylike("unravel_index", indices)
    shape = hashable_shape(shape, "unravel_index")
    out: list[Any] = [None] * len(shape)
    for i in range(len(shape) - 1, -1, -1):
        idx, out[i] = _divmod(idx, shape[i])
    oob_pos = lax.gt(idx, scalar_like(0, idx))
    oob_neg = lax.lt(idx, scalar_like(-1, idx))
    return tuple(_where(oob_pos, s - 1, _where(oob_neg, 0, o)) for s, o in zip(shape, out))


def ravel_multi_index(multi_index: Sequence[Any], dims: Sequence[int], mode: str = "raise",
                      order: str = "C", *, dtype: Any = None) -> Any:
    """Flat indices of the index arrays ``multi_index`` into an array of shape ``dims``.

    Args:
        multi_index: one integer index array per dimension (they broadcast together).
        dims: the shape indexed into (static ints).
        mode: ``"raise"`` (out-of-bounds indices are an error: concrete indices only),
            ``"wrap"``, ``"clip"`` or ``"ignore"`` (no check: out-of-bounds indices give
            meaningless flat indices).
        order: ``"C"`` (row-major) or ``"F"`` (column-major).
        dtype: the integer dtype of the result; by default the indices' promoted dtype, as
            in JAX (so int8 indices give int8). It must hold ``prod(dims) - 1``, else
            ``ValueError`` (pass a wider dtype).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> jnp.ravel_multi_index((jnp.array([0, 1]), jnp.array([2, 1])), (2, 3))
        Array([2, 4], dtype=int32)
    """
    dims = hashable_shape(dims, "ravel_multi_index", "dims")
    if len(multi_index) != len(dims):
        raise ValueError(f"ravel_multi_index: {len(multi_index)} index arrays for {len(dims)} "
                         "dimensions")
    idx = [ensure_arraylike("ravel_multi_index", i) for i in multi_index]
    dt = _flat_index_dtype(idx, dims, dtype)
    for i in idx:
        if not dtypes.is_integer(aval(i).dtype):
            raise TypeError("ravel_multi_index: only integer indices are permitted")
    if mode == "raise":
        for i, d in zip(idx, dims):
            value = i.to_concrete_value() if isinstance(i, Tracer) else np.asarray(i)
            if value is None:
                raise ConcretizationTypeError(i, "ravel_multi_index: mode='raise' needs concrete "
                                              "indices; use mode='wrap' or mode='clip' inside jit")
            if np.any((value < 0) | (value >= d)):
                raise ValueError("ravel_multi_index: invalid entry in coordinates array")
    elif mode == "clip":
        idx = [lax.clamp(scalar_like(0, i), i, scalar_like(d - 1, i)) for i, d in zip(idx, dims)]
    elif mode == "wrap":
        idx = [remainder(i, d) for i, d in zip(idx, dims)]
    elif mode != "ignore":
        raise ValueError(f"ravel_multi_index: invalid mode {mode!r}; expected 'raise', 'wrap', "
                         "'clip' or 'ignore'")
    if order == "F":
        strides = np.cumprod((1,) + dims[:-1])
    elif order == "C":
        strides = np.cumprod((1,) + dims[1:][::-1])[::-1]
    else:
        raise ValueError(f"ravel_multi_index: invalid order {order!r}; expected 'C' or 'F'")
    out = lax.full((), 0, dt)
    for i, s in zip(idx, strides):
        out = lax.add(out, lax.mul(lax.convert_element_type(i, dt), lax.convert_element_type(
            int(s), dt)))
    return out


def _flat_index_dtype(idx: list, dims: tuple[int, ...], dtype: Any) -> np.dtype:
    """``ravel_multi_index``'s result dtype: ``dtype``, or the indices' promoted with a Python
    int (JAX's rule: a weak int, so int8 indices give int8); an integer dtype that holds
    every flat index of ``dims``."""
    dt = check_user_dtype(dtype, "ravel_multi_index") or dtypes.canonicalize_dtype(
        dtypes.result_type(0, *idx))
    if not dtypes.is_integer(dt):
        raise ValueError(f"ravel_multi_index: dtype={dt} is not an integer type")
    if _prod(dims) - 1 > dtypes.iinfo(dt).max:
        raise ValueError(f"ravel_multi_index: dtype={dt} not large enough to hold flattened "
                         f"index for dims={dims}. Use the dtype argument to pass a suitable "
                         "dtype (e.g. dtype=np.min_scalar_type(prod(dims))).")
    return dt


def ix_(*args: Any) -> tuple:
    """Open-mesh index arrays: the i-th 1-d argument reshaped to lie along axis i."""
    n = len(args)
    out = []
    for i, a in enumerate(args):
        a = ensure_arraylike("ix_", a)
        if aval(a).ndim != 1:
            raise ValueError(f"ix_: arguments must be 1-dimensional, got shape {aval(a).shape}")
        shape = [1] * n
        shape[i] = aval(a).shape[0]
        out.append(lax.reshape(a, tuple(shape)))
    return tuple(out)


def _range_of_slice(k: slice) -> Any:
    """The points of slice notation: ``0:3`` as ``arange``; a complex step ``5j`` means 5
    points, endpoints included (``linspace``)."""
    start = 0 if k.start is None else k.start
    step = 1 if k.step is None else k.step
    if isinstance(step, complex):
        return linspace(start, k.stop, int(abs(step)))
    return arange(start, k.stop, step)


class _Grid:
    """``mgrid[0:3, 0:2]`` (dense) and ``ogrid[...]`` (open) from slice notation."""

    def __init__(self, sparse: bool) -> None:
        self.sparse = sparse

    def __getitem__(self, key: Any) -> Any:
        single = isinstance(key, slice)
        axes = [_range_of_slice(k) for k in ((key,) if single else key)]
        if single:
            return axes[0]
        dt = dtypes.result_type(*axes)
        axes = [lax.convert_element_type(a, dt) for a in axes]
        shape = tuple(aval(a).shape[0] for a in axes)
        if self.sparse:
            return tuple(lax.reshape(a, tuple(n if j == i else 1 for j, n in enumerate(shape)))
                         for i, a in enumerate(axes))
        return stack([lax.broadcast_in_dim(a, shape, (i,)) for i, a in enumerate(axes)])


mgrid = _Grid(sparse=False)
ogrid = _Grid(sparse=True)


class _AxisConcat:
    """``r_[...]`` and ``c_[...]``: arrays, scalars and slice ranges joined along an axis.

    A leading string directive ``"axis,ndmin,trans1d"`` changes the axis, the minimum rank
    every piece is raised to and where a raised 1-d piece's axis goes; ``"r"``/``"c"`` make
    a 1-d result a row or a column (as NumPy's matrix directives, but an array)."""

    def __init__(self, name: str, axis: int, ndmin: int, trans1d: int) -> None:
        self.name, self.axis, self.ndmin, self.trans1d = name, axis, ndmin, trans1d

    def __getitem__(self, key: Any) -> Any:
        items = key if isinstance(key, tuple) else (key,)
        axis, ndmin, trans1d, matrix = self.axis, self.ndmin, self.trans1d, -1
        if items and isinstance(items[0], str):
            directive, items = items[0], items[1:]
            if directive in ("r", "c"):
                matrix = 0 if directive == "r" else 1
            else:
                fields = directive.split(",")[:3]
                try:
                    numbers = [int(f) for f in fields]
                except ValueError:
                    raise ValueError(f"{self.name}: could not understand directive "
                                     f"{directive!r}") from None
                axis, ndmin, trans1d = (*numbers, *(axis, ndmin, trans1d)[len(numbers):])
        pieces = []
        for item in items:
            if isinstance(item, str):
                raise ValueError(f"{self.name}: a string directive must come first")
            piece = _range_of_slice(item) if isinstance(item, slice) else array(item, copy=False)
            item_ndim = 0 if isinstance(item, slice) else aval(piece).ndim
            piece = array(piece, copy=False, ndmin=ndmin)
            if trans1d != -1 and ndmin > item_ndim:
                # the piece's axes rolled so that its own last axis lands at ``trans1d``
                shift = ndmin - abs(ndmin + trans1d + 1) % ndmin
                order = tuple(range(ndmin))
                piece = lax.transpose(piece, order[shift:] + order[:shift])
            pieces.append(piece)
        out = concatenate(pieces, axis=axis)
        if matrix != -1 and aval(out).ndim == 1:
            out = lax.expand_dims(out, (matrix,))
        return out

    def __len__(self) -> int:
        return 0


r_ = _AxisConcat("r_", axis=0, ndmin=1, trans1d=-1)
c_ = _AxisConcat("c_", axis=-1, ndmin=2, trans1d=0)


def mask_indices(n: int, mask_func: Callable[[Any, int], Any], k: int = 0, *,
                 size: int | None = None) -> tuple[Any, Any]:
    """The ``(rows, cols)`` where ``mask_func(ones((n, n)), k)`` is nonzero (``triu`` gives
    the upper triangle's indices); ``size`` makes it traceable."""
    rows, cols = nonzero(mask_func(ones((static_int(n, "mask_indices: n"),) * 2), k), size=size)
    return rows, cols


def fill_diagonal(a: Any, val: Any, wrap: bool = False, *, inplace: bool = True) -> Any:
    """A copy of ``a`` with its main diagonal set to ``val`` (``inplace=False`` required)."""
    if inplace:
        raise ValueError("fill_diagonal: fungrad arrays are immutable; pass inplace=False")
    a = ensure_arraylike("fill_diagonal", a)
    shape = aval(a).shape
    if len(shape) < 2:
        raise ValueError("fill_diagonal: array must be at least 2-d")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise ValueError("fill_diagonal: all dimensions of input must be of equal length")
    n = min(shape)
    if len(shape) == 2 and wrap and shape[0] > shape[1]:
        flat_idx = np.arange(0, shape[0] * shape[1], shape[1] + 1)
        rows, cols = np.unravel_index(flat_idx, shape)
        idx = tuple(np.asarray(v, np.int32) for v in (rows, cols))
        n = len(flat_idx)
    else:
        idx = (np.arange(n, dtype=np.int32),) * len(shape)
    val = ensure_arraylike("fill_diagonal", val)
    val = lax.reshape(val, (aval(val).size,))
    if aval(val).size != n:
        val = lax.slice(tile(val, -(-n // max(aval(val).size, 1))), (0,), (n,))
    return _IndexUpdateRef(a, idx).set(val)


def insert(arr: Any, obj: Any, values: Any, axis: int | None = None) -> Any:
    """``arr`` with ``values`` inserted before the static index/indices ``obj`` along
    ``axis`` (flattened when None)."""
    arr = ensure_arraylike("insert", arr)
    values = ensure_arraylike("insert", values)
    arr, axis, positions = static_indices_along("insert", arr, obj, axis)
    n = aval(arr).shape[axis]
    scalar = positions.ndim == 0
    positions = np.where(positions.reshape(-1) < 0, positions.reshape(-1) + n,
                         positions.reshape(-1))
    if np.any((positions < 0) | (positions > n)):
        raise IndexError(f"insert: index out of bounds for axis {axis} with size {n}")
    values = lax.convert_element_type(values, aval(arr).dtype)
    if scalar:  # NumPy: values (at least arr.ndim-d) fill new slices, their axis 0 -> axis
        nd = aval(arr).ndim
        values = lax.reshape(values, (1,) * (nd - aval(values).ndim) + aval(values).shape)
        values = moveaxis(values, 0, axis)
        positions = np.repeat(positions, aval(values).shape[axis])
    target = list(aval(arr).shape)
    target[axis] = len(positions)
    values = broadcast_to(values, tuple(target))
    order = np.argsort(np.concatenate([np.arange(n), positions - 0.5]), kind="stable")
    return take_static(concatenate([arr, values], axis), order, axis)


def resize(a: Any, new_shape: Any) -> Any:
    """``a`` flattened, repeated as needed and reshaped to ``new_shape``."""
    a = ensure_arraylike("resize", a)
    new_shape = hashable_shape(new_shape, "resize", "new_shape")
    flat = lax.reshape(a, (aval(a).size,))
    size = _prod(new_shape)
    if aval(flat).size == 0 or size == 0:
        return lax.full(new_shape, 0, aval(a).dtype)
    reps = -(-size // aval(flat).size)
    return lax.reshape(lax.slice(tile(flat, reps), (0,), (size,)), new_shape)


__all__ = ["unravel_index", "ravel_multi_index", "ix_", "mgrid", "ogrid", "r_", "c_",
           "mask_indices", "s_", "index_exp",
           "fill_diagonal", "insert", "resize"]
