"""NumPy indexing (``x[idx]``), functional updates (``x.at[idx].set(v)``), ``take`` and
``take_along_axis``.

``x[idx]`` is lowered to the cheapest primitive that can express it: static ints and
slices become one ``slice`` (plus ``rev`` for negative steps and a ``reshape``);
traced scalar ints become ``dynamic_slice``; anything with index arrays becomes one
``gather``. Out-of-bounds indices are clamped when reading and dropped when
updating, as in JAX. Boolean masks need concrete values (their result shape depends
on the data), so they work eagerly but not under ``jit``/``vmap``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.array import Array
from fungrad._core.core import Tracer
from fungrad._core.util import prod as _prod
from fungrad.errors import NonConcreteBooleanIndexError
from fungrad.numpy._util import aval, canonicalize_axis, ensure_arraylike, scalar_like
from fungrad.numpy._ufuncs import clip, divide, negative, power, remainder

_INDEX_DTYPE = np.dtype(np.int32)


# --------------------------------------------------------------------------- parsing

_SLICE, _INT, _ARRAY, _NONE = "slice", "int", "array", "none"


class _Entry(NamedTuple):
    kind: str
    value: Any  # slice | int | array (static np or traced) | None


def _is_int_dtype(x: Any) -> bool:
    return dtypes.is_integer(aval(x).dtype)


def _to_tuple(idx: Any) -> tuple:
    if isinstance(idx, tuple):
        return idx
    if isinstance(idx, list):
        raise TypeError("Using a non-tuple sequence for multidimensional indexing is not "
                        "allowed; use `arr[array(seq)]` instead of `arr[seq]` (or "
                        "`arr[tuple(seq)]` for one index per dimension).")
    return (idx,)


def _static_int_value(i: Any) -> int | None:
    """The Python int behind a static integer index, or None if it is traced/not an int."""
    if isinstance(i, bool):
        return None
    if isinstance(i, (int, np.integer)):
        return int(i)
    if isinstance(i, (Array, np.ndarray)) and i.ndim == 0 and dtypes.is_integer(i.dtype):
        return int(np.asarray(i))
    return None


def _slice_entry_value(v: Any) -> int | None:
    if v is None:
        return None
    s = _static_int_value(v)
    if s is None:
        raise IndexError(f"Slice entries must be static integers; got {v!r}. Use "
                         "lax.dynamic_slice (or lax.dynamic_slice_in_dim) for slices with "
                         "traced starts.")
    return s


def _mask_to_indices(mask: Any) -> list:
    """Integer index arrays equivalent to a concrete boolean mask."""
    if isinstance(mask, Tracer):
        value = mask.to_concrete_value()
        if value is None:
            raise NonConcreteBooleanIndexError(aval(mask).str_short())
        mask = value
    return [Array(np.asarray(i, _INDEX_DTYPE)) for i in np.nonzero(np.asarray(mask))]


def _parse_one(i: Any) -> list[_Entry]:
    """The entries one raw index element stands for (a boolean mask gives several)."""
    if i is None:
        return [_Entry(_NONE, True)]
    if isinstance(i, str):
        raise TypeError(f"fungrad does not support string indexing; got idx={i!r}")
    if isinstance(i, (bool, np.bool_)):
        return [_Entry(_NONE, bool(i))]  # x[True] adds an axis; x[False] an empty one
    if isinstance(i, slice):
        return [_Entry(_SLICE, slice(*(_slice_entry_value(v) for v in
                                       (i.start, i.stop, i.step))))]
    if isinstance(i, (list, tuple)):
        i = np.asarray(i)
        if i.size == 0:
            i = i.astype(_INDEX_DTYPE)
    s = _static_int_value(i)
    if s is not None:
        return [_Entry(_INT, s)]
    if not isinstance(i, (Array, Tracer, np.ndarray, np.generic)):
        raise TypeError(f"Indexer must be an int, slice, None, Ellipsis, boolean or integer "
                        f"array; got {type(i).__name__}: {i!r}")
    arr = ensure_arraylike("indexing", i)
    if aval(arr).dtype == np.bool_:
        if aval(arr).ndim == 0:
            value = arr.to_concrete_value() if isinstance(arr, Tracer) else arr
            if value is None:
                raise NonConcreteBooleanIndexError(aval(arr).str_short())
            return [_Entry(_NONE, bool(np.asarray(value)))]
        return [_Entry(_ARRAY, a) for a in _mask_to_indices(arr)]
    if not _is_int_dtype(arr):
        raise TypeError(f"Indexer must have integer or boolean type, got indexer with type "
                        f"{aval(arr).dtype.name}")
    return [_Entry(_INT if aval(arr).ndim == 0 else _ARRAY, arr)]


def _parse(idx: Any, ndim: int) -> tuple[list[_Entry], list[int]]:
    """One entry per consumed dimension plus one per new axis, and the positions of the
    advanced (integer and array) entries before Ellipsis expansion (for NumPy's rule on
    where the advanced-index dimensions go)."""
    items: list[Any] = []  # entries, and Ellipsis markers
    for i in _to_tuple(idx):
        items.extend([Ellipsis] if i is Ellipsis else _parse_one(i))
    if sum(i is Ellipsis for i in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(1 for e in items if e is not Ellipsis and e.kind != _NONE)
    if consumed > ndim:
        raise IndexError(f"Too many indices: array is {ndim}-dimensional, but {consumed} "
                         "were indexed")
    advanced_positions = [p for p, e in enumerate(items)
                          if e is not Ellipsis and e.kind in (_INT, _ARRAY)]
    fill = [_Entry(_SLICE, slice(None))] * (ndim - consumed)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + fill + items[k + 1:]
    else:
        items = items + fill
    return items, advanced_positions


def _normalize(i: Any, n: int) -> Any:
    """Wrap negative (static or traced) indices by adding the axis size, as ``int32``.

    Unsigned indices are never negative: they are converted without wrapping, so a value
    beyond ``int32``'s range becomes a negative index that the gather clamps to 0 or fills,
    and a scatter drops, as in JAX."""
    if isinstance(i, int):
        return i + n if i < 0 else i
    unsigned = dtypes.kind(aval(i).dtype) == "u"
    i = lax.convert_element_type(i, _INDEX_DTYPE) if aval(i).dtype != _INDEX_DTYPE else i
    if unsigned:
        return i
    return lax.select(lax.lt(i, scalar_like(0, i)), lax.add(i, scalar_like(n, i)), i)


# --------------------------------------------------------------------------- basic indexing

def _basic_index(x: Any, entries: list[_Entry]) -> Any | None:
    """Static and dynamic-slice indexing, or None when index arrays need a gather."""
    if any(e.kind == _ARRAY for e in entries):
        return None
    shape = aval(x).shape
    starts, limits, strides, rev_axes, out_shape = [], [], [], [], []
    dyn: list[tuple[int, Any]] = []
    dim = 0
    for e in entries:
        if e.kind == _NONE:
            out_shape.append(1 if e.value else 0)
            continue
        n = shape[dim]
        if e.kind == _INT:
            if isinstance(e.value, int):
                if n == 0:
                    raise IndexError(f"index {e.value} is out of bounds for axis {dim} with "
                                     "size 0")
                i = min(max(_normalize(e.value, n), 0), n - 1)
                starts.append(i), limits.append(i + 1), strides.append(1)
            else:
                dyn.append((dim, e.value))
                starts.append(0), limits.append(n), strides.append(1)
        else:
            start, stop, step = e.value.indices(n)
            count = len(range(start, stop, step))
            if step > 0:
                starts.append(start), limits.append(start + max(count - 1, 0) * step
                                                    + (1 if count else 0)), strides.append(step)
            else:
                last = start + (count - 1) * step if count else 0
                starts.append(last), limits.append(start + 1 if count else 0)
                strides.append(-step)
                rev_axes.append(dim)
            out_shape.append(count)
        dim += 1
    y = x
    if any(s != 0 or lim != n or st != 1 for s, lim, st, n in zip(starts, limits, strides, shape)):
        y = lax.slice(y, tuple(starts), tuple(limits),
                      tuple(strides) if any(st != 1 for st in strides) else None)
    if dyn:
        sizes = list(aval(y).shape)
        dyn_starts: list[Any] = [0] * len(sizes)
        for d, i in dyn:  # lax.dynamic_slice wraps negative starts itself, then clamps
            sizes[d] = 1
            dyn_starts[d] = lax.convert_element_type(i, _INDEX_DTYPE)
        y = lax.dynamic_slice(y, tuple(dyn_starts), tuple(sizes))
    if rev_axes:
        y = lax.rev(y, tuple(rev_axes))
    if _prod(out_shape) == 0 and aval(y).size != 0:  # x[False]: an empty new axis
        return lax.full(tuple(out_shape), 0, aval(x).dtype)
    return lax.reshape(y, tuple(out_shape)) if aval(y).shape != tuple(out_shape) else y


# --------------------------------------------------------------------------- gather indexer

class _Indexer(NamedTuple):
    """Everything needed to express ``x[idx]`` as one gather (or ``x.at[idx]`` as a scatter)."""
    indices: Any                 # int32 array of shape batch_shape + (len(start_index_map),)
    dnums: Any                   # lax.GatherDimensionNumbers
    slice_sizes: tuple[int, ...]
    gather_shape: tuple[int, ...]  # shape of the gather result (no new axes yet)
    newaxis_dims: tuple[int, ...]
    empty_dims: tuple[int, ...]    # new axes that are empty selections (x[False])
    unique: bool


def _index_to_gather(x_shape: tuple[int, ...], entries: list[_Entry],
                     advanced_positions: list[int]) -> _Indexer:
    adv = [(k, e) for k, e in enumerate(e for e in entries if e.kind != _NONE)
           if e.kind in (_INT, _ARRAY)]
    contiguous = bool(np.all(np.diff(advanced_positions) == 1)) if advanced_positions else True
    adv_arrays = []
    for k, e in adv:
        a = e.value if not isinstance(e.value, int) else np.asarray(e.value, _INDEX_DTYPE)
        adv_arrays.append(_normalize(a if not isinstance(a, np.ndarray) else Array(a),
                                     x_shape[k]))
    try:
        adv_shape = tuple(np.broadcast_shapes(*(aval(a).shape for a in adv_arrays)))
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together "
                         f"with shapes {' '.join(str(aval(a).shape) for a in adv_arrays)}") \
            from None
    first_adv_entry = next((j for j, e in enumerate(entries) if e.kind in (_INT, _ARRAY)), 0)

    components: list[tuple[Any, int]] = []   # (index array, first batch dim it spans)
    batch_shape: list[int] = []
    offset_dims, collapsed, start_index_map, slice_sizes = [], [], [], []
    newaxis_dims, empty_dims = [], []
    y_axis = 0  # position in the final result (new axes included)
    g_axis = 0  # position in the gather's result (no new axes)
    x_axis = 0
    adv_dims = {k for k, _ in adv}
    placed = False

    def place_advanced() -> None:
        nonlocal y_axis, g_axis, placed
        start = len(batch_shape)
        for (k, _), a in zip(adv, adv_arrays):
            components.append((a, start + len(adv_shape) - aval(a).ndim))
            start_index_map.append(k)
            collapsed.append(k)
        batch_shape.extend(adv_shape)
        y_axis += len(adv_shape)
        g_axis += len(adv_shape)
        placed = True

    if adv and not contiguous:
        place_advanced()
    for j, e in enumerate(entries):
        if adv and contiguous and not placed and j == first_adv_entry:
            place_advanced()
        if e.kind == _NONE:
            newaxis_dims.append(y_axis)
            if not e.value:
                empty_dims.append(y_axis)
            y_axis += 1
            continue
        n = x_shape[x_axis]
        if x_axis in adv_dims:
            slice_sizes.append(1)
        else:
            start, stop, step = e.value.indices(n)
            count = len(range(start, stop, step))
            if step == 1:
                if count != n:
                    components.append((np.asarray(start, _INDEX_DTYPE), len(batch_shape)))
                    start_index_map.append(x_axis)
                slice_sizes.append(count)
                offset_dims.append(g_axis)
            else:
                idx = np.arange(start, stop, step, dtype=_INDEX_DTYPE)
                components.append((idx, len(batch_shape)))
                batch_shape.append(count)
                start_index_map.append(x_axis)
                collapsed.append(x_axis)
                slice_sizes.append(1)
            y_axis += 1
            g_axis += 1
        x_axis += 1

    full = tuple(batch_shape) + (1,)
    parts = []
    for a, first in components:
        a = Array(a) if isinstance(a, np.ndarray) else a
        nd = aval(a).ndim
        parts.append(lax.broadcast_in_dim(lax.convert_element_type(a, _INDEX_DTYPE), full,
                                          tuple(range(first, first + nd))))
    if not parts:
        indices = lax.full(tuple(batch_shape) + (0,), 0, _INDEX_DTYPE)
    elif len(parts) == 1:
        indices = parts[0]
    else:
        indices = lax.concatenate(parts, len(batch_shape))
    dnums = lax.GatherDimensionNumbers(offset_dims=tuple(offset_dims),
                                       collapsed_slice_dims=tuple(sorted(collapsed)),
                                       start_index_map=tuple(start_index_map))
    gather_shape = _gather_shape(tuple(batch_shape), tuple(offset_dims), slice_sizes,
                                 set(collapsed))
    return _Indexer(indices, dnums, tuple(slice_sizes), gather_shape, tuple(newaxis_dims),
                    tuple(empty_dims), unique=not adv)


def _gather_shape(batch_shape: tuple, offset_dims: tuple, slice_sizes: list,
                  collapsed: set) -> tuple[int, ...]:
    window = [s for d, s in enumerate(slice_sizes) if d not in collapsed]
    out, b, w = [], iter(batch_shape), iter(window)
    for d in range(len(batch_shape) + len(window)):
        out.append(next(w) if d in offset_dims else next(b))
    return tuple(out)


def _add_new_axes(y: Any, ix: _Indexer) -> Any:
    if ix.newaxis_dims:
        y = lax.expand_dims(y, ix.newaxis_dims)
    for d in ix.empty_dims:
        y = lax.slice(y, (0,) * aval(y).ndim, tuple(0 if i == d else s
                                                    for i, s in enumerate(aval(y).shape)))
    return y


_GETITEM_MODE = "clip"


def _rewriting_take(x: Any, idx: Any, *, mode: Any = None, fill_value: Any = None,
                    indices_are_sorted: bool = False, unique_indices: bool = False) -> Any:
    x = ensure_arraylike("getitem", x)
    entries, adv_pos = _parse(idx, aval(x).ndim)
    if mode is None or mode in ("clip", "promise_in_bounds"):
        out = _basic_index(x, entries)
        if out is not None:
            return out
    ix = _index_to_gather(aval(x).shape, entries, adv_pos)
    if _prod(ix.gather_shape) == 0 or aval(x).size == 0:
        if aval(x).size == 0 and _prod(ix.gather_shape) != 0:
            raise IndexError("index is out of bounds for an axis of size 0")
        y = lax.full(ix.gather_shape, 0, aval(x).dtype)
    else:
        y = lax.gather(x, ix.indices, ix.dnums, ix.slice_sizes,
                       unique_indices=unique_indices or ix.unique,
                       indices_are_sorted=indices_are_sorted or ix.unique,
                       mode=_GETITEM_MODE if mode is None else mode, fill_value=fill_value)
    return _add_new_axes(y, ix)


def _getitem(x: Any, idx: Any) -> Any:
    """``x[idx]`` with NumPy semantics (clamping out-of-bounds indices, as JAX)."""
    return _rewriting_take(x, idx)


# --------------------------------------------------------------------------- x.at[idx]

def _scatter_update(x: Any, idx: Any, y: Any, scatter_name: str, *,
                    indices_are_sorted: bool = False, unique_indices: bool = False,
                    mode: Any = None) -> Any:
    x = ensure_arraylike("at", x)
    y = ensure_arraylike("at", y)
    dt = aval(x).dtype
    weak = aval(x).weak_type
    y = lax.convert_element_type(y, dt)
    entries, adv_pos = _parse(idx, aval(x).ndim)
    ix = _index_to_gather(aval(x).shape, entries, adv_pos)
    target = list(ix.gather_shape)
    for d in ix.newaxis_dims:
        target.insert(d, 1)
    for d in ix.empty_dims:
        target[d] = 0
    y_shape = aval(y).shape
    try:
        np.broadcast_shapes(y_shape, tuple(target))
        if len(y_shape) > len(target):
            raise ValueError
    except ValueError:
        raise ValueError(f"Incompatible shapes for .at[]: array update of shape {y_shape} "
                         f"cannot be broadcast to the indexed shape {tuple(target)}") from None
    if _prod(target) == 0:
        return x
    y = lax.broadcast_in_dim(y, tuple(target), tuple(range(len(target) - len(y_shape),
                                                          len(target))))
    y = lax.reshape(y, ix.gather_shape)
    dnums = lax.ScatterDimensionNumbers(update_window_dims=ix.dnums.offset_dims,
                                        inserted_window_dims=ix.dnums.collapsed_slice_dims,
                                        scatter_dims_to_operand_dims=ix.dnums.start_index_map)
    out = getattr(lax, scatter_name)(x, ix.indices, y, dnums,
                                     indices_are_sorted=indices_are_sorted or ix.unique,
                                     unique_indices=unique_indices or ix.unique,
                                     mode="drop" if mode is None else mode)
    return lax.convert_element_type(out, dt, weak)


class _IndexUpdateHelper:
    """``x.at``: ``x.at[idx]`` returns an ``_IndexUpdateRef`` with functional updates."""
    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array

    def __getitem__(self, index: Any) -> "_IndexUpdateRef":
        return _IndexUpdateRef(self.array, index)

    def __repr__(self) -> str:
        return f"_IndexUpdateHelper({self.array!r})"


class _IndexUpdateRef:
    """``x.at[idx]``: ``get``, ``set``, ``add``, ``subtract``, ``multiply``/``mul``,
    ``divide``, ``power``, ``min``, ``max`` and ``apply`` return updated copies of ``x``.

    Out-of-bounds updates are dropped (``mode='drop'``); ``mode='clip'`` clamps instead.
    Repeated indices accumulate for ``add``/``multiply``/``min``/``max``.
    """
    __slots__ = ("array", "index")

    def __init__(self, array: Any, index: Any) -> None:
        self.array = array
        self.index = index

    def __repr__(self) -> str:
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"

    def get(self, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode: Any = None, fill_value: Any = None) -> Any:
        """``x[idx]``; ``mode='fill'`` returns ``fill_value`` (NaN default) out of bounds."""
        return _rewriting_take(self.array, self.index, mode=mode, fill_value=fill_value,
                               indices_are_sorted=indices_are_sorted,
                               unique_indices=unique_indices)

    def _update(self, values: Any, scatter: str, **kw: Any) -> Any:
        return _scatter_update(self.array, self.index, values, scatter, **kw)

    def set(self, values: Any, **kw: Any) -> Any:
        """``x[idx] = values``."""
        return self._update(values, "scatter", **kw)

    def add(self, values: Any, **kw: Any) -> Any:
        """``x[idx] += values``."""
        return self._update(values, "scatter_add", **kw)

    def subtract(self, values: Any, **kw: Any) -> Any:
        """``x[idx] -= values``."""
        return self._update(negative(ensure_arraylike("at", values)), "scatter_add", **kw)

    def multiply(self, values: Any, **kw: Any) -> Any:
        """``x[idx] *= values``."""
        return self._update(values, "scatter_mul", **kw)

    mul = multiply

    def divide(self, values: Any, **kw: Any) -> Any:
        """``x[idx] /= values``."""
        ones = lax.full(aval(self.array).shape, 1, aval(self.array).dtype)
        return divide(self.array, _scatter_update(ones, self.index, values, "scatter_mul",
                                                  **kw))

    def power(self, values: Any, **kw: Any) -> Any:
        """``x[idx] **= values``."""
        ones = lax.full(aval(self.array).shape, 1, aval(self.array).dtype)
        return power(self.array, _scatter_update(ones, self.index, values, "scatter_mul", **kw))

    def min(self, values: Any, **kw: Any) -> Any:  # noqa: A003
        """``x[idx] = minimum(x[idx], values)``."""
        return self._update(values, "scatter_min", **kw)

    def max(self, values: Any, **kw: Any) -> Any:  # noqa: A003
        """``x[idx] = maximum(x[idx], values)``."""
        return self._update(values, "scatter_max", **kw)

    def apply(self, func: Callable, *, indices_are_sorted: bool = False,
              unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] = func(x[idx])`` for an elementwise ``func`` (applied once per index)."""
        x = ensure_arraylike("at", self.array)
        entries, adv_pos = _parse(self.index, aval(x).ndim)
        ix = _index_to_gather(aval(x).shape, entries, adv_pos)
        dnums = lax.ScatterDimensionNumbers(update_window_dims=ix.dnums.offset_dims,
                                            inserted_window_dims=ix.dnums.collapsed_slice_dims,
                                            scatter_dims_to_operand_dims=ix.dnums.start_index_map)
        return lax.scatter_apply(x, ix.indices, func, dnums, update_shape=ix.gather_shape,
                                 indices_are_sorted=indices_are_sorted or ix.unique,
                                 unique_indices=unique_indices or ix.unique,
                                 mode="drop" if mode is None else mode)


# --------------------------------------------------------------------------- take

def take(a: Any, indices: Any, axis: int | None = None, out: None = None,
         mode: str | None = None, unique_indices: bool = False,
         indices_are_sorted: bool = False, fill_value: Any = None) -> Any:
    """Elements of ``a`` at ``indices`` along ``axis`` (flattened when None).

    ``mode``: 'fill' (default; out-of-bounds give ``fill_value``, NaN for floats),
    'clip' or 'wrap'.
    """
    a, indices = ensure_arraylike("take", a, indices)
    if not _is_int_dtype(indices):
        raise TypeError(f"take: indices must be integers, got {aval(indices).dtype}")
    if axis is None:
        a = lax.reshape(a, (aval(a).size,))
        axis = 0
    axis = canonicalize_axis(axis, aval(a).ndim, "take")
    n = aval(a).shape[axis]
    if mode is None or mode == "fill":
        gather_mode, indices = "fill", _normalize(indices, n)
    elif mode in ("wrap", "clip"):  # an unsigned index wraps or clips as the value it is
        wide = np.uint32 if dtypes.kind(aval(indices).dtype) == "u" else _INDEX_DTYPE
        indices = lax.convert_element_type(indices, wide)
        if mode == "wrap":
            indices = remainder(indices, scalar_like(n, indices))
        elif wide == np.uint32:
            indices = lax.min(indices, scalar_like(max(n - 1, 0), indices))
        gather_mode, indices = "clip", lax.convert_element_type(indices, _INDEX_DTYPE)
    elif mode == "raise":
        raise NotImplementedError("take: mode='raise' is not supported")
    else:
        raise ValueError(f"take: invalid mode {mode!r}; use 'fill', 'clip' or 'wrap'")
    shape = aval(a).shape
    idx_shape = aval(indices).shape
    out_shape = shape[:axis] + idx_shape + shape[axis + 1:]
    if n == 0:
        if _prod(idx_shape):
            raise IndexError("take: cannot do a non-empty take from an empty axis")
        return a
    if _prod(idx_shape) == 0:
        return lax.full(out_shape, 0, aval(a).dtype)
    slice_sizes = shape[:axis] + (1,) + shape[axis + 1:]
    nd_idx = len(idx_shape)
    dnums = lax.GatherDimensionNumbers(
        offset_dims=tuple(range(axis)) + tuple(range(axis + nd_idx, len(shape) + nd_idx - 1)),
        collapsed_slice_dims=(axis,), start_index_map=(axis,))
    return lax.gather(a, lax.expand_dims(indices, (nd_idx,)), dnums, slice_sizes,
                      mode=gather_mode, fill_value=fill_value, unique_indices=unique_indices,
                      indices_are_sorted=indices_are_sorted)


def _along_axis_index(shape: Sequence[int], idx_shape: Sequence[int], indices: Any,
                      axis: int) -> tuple:
    """A tuple of broadcasting index arrays selecting ``indices`` along ``axis``."""
    out = []
    for d, n in enumerate(shape):
        if d == axis:
            out.append(indices)
        elif n == 1:
            out.append(0)
        else:
            bshape = tuple(n if j == d else 1 for j in range(len(shape)))
            out.append(lax.broadcasted_iota(_INDEX_DTYPE, bshape, d))
    return tuple(out)


def take_along_axis(arr: Any, indices: Any, axis: int | None = -1, mode: str | None = None,
                    fill_value: Any = None, *, wrap_negative_indices: bool | None = None) -> Any:
    """``arr`` gathered at ``indices`` along ``axis`` (other dims broadcast together).
    Negative indices count from the end unless ``wrap_negative_indices`` is False, which
    makes them out of bounds (handled by ``mode``)."""
    arr, indices = ensure_arraylike("take_along_axis", arr, indices)
    if not _is_int_dtype(indices):
        raise TypeError(f"take_along_axis indices must be of integer type, got "
                        f"{aval(indices).dtype}")
    if axis is None:
        if aval(indices).ndim != 1:
            raise ValueError(f"take_along_axis indices must be 1D if axis=None, got shape "
                             f"{aval(indices).shape}")
        arr = lax.reshape(arr, (aval(arr).size,))
        axis = 0
    if aval(arr).ndim != aval(indices).ndim:
        raise ValueError(f"take_along_axis: indices and arr must have the same number of "
                         f"dimensions; {aval(indices).ndim} vs. {aval(arr).ndim}")
    axis = canonicalize_axis(axis, aval(arr).ndim, "take_along_axis")
    shape = aval(arr).shape
    idx_shape = aval(indices).shape
    out_shape = np.broadcast_shapes(idx_shape, shape[:axis] + (1,) + shape[axis + 1:])
    if shape[axis] == 0:
        return lax.full(tuple(out_shape), 0, aval(arr).dtype)
    indices = lax.convert_element_type(indices, _INDEX_DTYPE)
    if wrap_negative_indices is False:  # out of bounds: past the end, where mode decides
        indices = lax.select(lax.lt(indices, scalar_like(0, indices)),
                             lax.full_like(indices, shape[axis]), indices)
    idx = _along_axis_index(shape, idx_shape, indices, axis)
    return _IndexUpdateRef(arr, idx).get(mode="fill" if mode is None else mode,
                                         fill_value=fill_value)


def put_along_axis(arr: Any, indices: Any, values: Any, axis: int | None, inplace: bool = True,
                   *, mode: str | None = None) -> Any:
    """A copy of ``arr`` with ``values`` written at ``indices`` along ``axis``."""
    if inplace:
        raise ValueError("put_along_axis: fungrad arrays are immutable; pass inplace=False")
    arr, indices = ensure_arraylike("put_along_axis", arr, indices)
    if axis is None:
        arr = lax.reshape(arr, (aval(arr).size,))
        axis = 0
    axis = canonicalize_axis(axis, aval(arr).ndim, "put_along_axis")
    idx = _along_axis_index(aval(arr).shape, aval(indices).shape, indices, axis)
    return _IndexUpdateRef(arr, idx).set(values, mode=mode)


def put(a: Any, ind: Any, v: Any, mode: str | None = None, *, inplace: bool = True) -> Any:
    """A copy of ``a`` with the flat positions ``ind`` set to ``v``."""
    if inplace:
        raise ValueError("put: fungrad arrays are immutable; pass inplace=False")
    a, ind, v = ensure_arraylike("put", a, ind, v)
    flat = lax.reshape(a, (aval(a).size,))
    ind = lax.reshape(ind, (aval(ind).size,))
    v = lax.reshape(v, (aval(v).size,))
    if aval(v).size and aval(v).size != aval(ind).size:  # v repeated to the length of ind
        reps = -(-aval(ind).size // aval(v).size)
        v = lax.reshape(lax.broadcast_in_dim(v, (reps, aval(v).size), (1,)), (reps * aval(v).size,))
        v = lax.slice(v, (0,), (aval(ind).size,))
    if mode == "wrap":
        ind = remainder(ind, scalar_like(aval(a).size, ind))
    elif mode == "clip":
        ind = clip(ind, 0, aval(a).size - 1)
    elif mode not in (None, "fill", "drop"):
        raise ValueError(f"put: invalid mode {mode!r}")
    out = _IndexUpdateRef(flat, ind).set(v, mode="drop")
    return lax.reshape(out, aval(a).shape)


__all__ = ["take", "take_along_axis", "put_along_axis", "put"]
