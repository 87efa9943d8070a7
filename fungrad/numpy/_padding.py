"""``pad`` with every mode of ``jax.numpy.pad`` (and NumPy's): constant and empty, the
index modes (edge, reflect, symmetric, wrap; reflect and symmetric also odd), linear_ramp,
the statistics (maximum, minimum, mean, median) and a callable.

Widths are static. Axes are padded one after another, so a statistic or ramp along a later
axis sees the padding of the earlier ones, as in NumPy.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.numpy._creation import linspace
from fungrad.numpy._functional import apply_along_axis
from fungrad.numpy._quantiles import median
from fungrad.numpy._reductions import max as _max, mean, min as _min
from fungrad.numpy._shape import broadcast_to, flip, slice_axis, take_static
from fungrad.numpy._ufuncs_math import round as _round
from fungrad.numpy._util import aval, ensure_arraylike


def _pairs(value: Any, nd: int, name: str, integers: bool = True) -> np.ndarray:
    """``value`` (a scalar, a pair or one pair per axis) as an ``(nd, 2)`` NumPy array."""
    v = np.asarray(value.to_concrete_value() if isinstance(value, Tracer) else value)
    if integers and v.dtype.kind not in "iu" and v.size:
        raise TypeError(f"pad: {name} must be integers, got {value!r}")
    try:
        return np.broadcast_to(v, (nd, 2))
    except ValueError:
        raise ValueError(f"pad: {name} {value!r} does not match an array of dimension "
                         f"{nd}") from None


def _pad_width(pad_width: Any, nd: int) -> list[tuple[int, int]]:
    pw = _pairs(pad_width, nd, "pad_width").astype(np.int64)
    if (pw < 0).any():
        raise ValueError(f"pad: pad_width must be non-negative, got {pad_width!r}")
    return [(int(lo), int(hi)) for lo, hi in pw]


def _constant(array: Any, widths: list, values: Any) -> Any:
    nd = aval(array).ndim
    values = ensure_arraylike("pad", np.asarray(values) if isinstance(values, (list, tuple))
                              else values)
    values = lax.convert_element_type(values, aval(array).dtype)
    if aval(values).ndim == 0:
        return lax.pad(array, values, tuple((lo, hi, 0) for lo, hi in widths))
    per_axis = broadcast_to(values, (nd, 2))
    for ax, (lo, hi) in enumerate(widths):
        for side, width in ((0, lo), (1, hi)):
            config = [(0, 0, 0)] * nd
            config[ax] = (width, 0, 0) if side == 0 else (0, width, 0)
            fill = lax.reshape(lax.slice(per_axis, (ax, side), (ax + 1, side + 1)), ())
            array = lax.pad(array, fill, tuple(config))
    return array


def _by_index(array: Any, widths: list, mode: str) -> Any:
    """edge, reflect, symmetric, wrap (and even reflections): one gather per padded axis,
    of the indices NumPy's ``pad`` gives ``arange(n)``."""
    for ax, (lo, hi) in enumerate(widths):
        n = aval(array).shape[ax]
        if lo == hi == 0:
            continue
        if n == 0:
            raise ValueError(f"pad: cannot pad an empty axis {ax} with mode {mode!r}")
        array = take_static(array, np.pad(np.arange(n), (lo, hi), mode=mode), ax)
    return array


def _odd_reflection(array: Any, widths: list, mode: str) -> Any:
    """reflect or symmetric with ``reflect_type='odd'``: ``2 * edge - mirror``. A width beyond
    the axis is padded in chunks, each mirroring the array padded so far about its new edge
    (NumPy's order, which the values depend on)."""
    for ax, (lo, hi) in enumerate(widths):
        n = aval(array).shape[ax]
        if n == 0:
            if lo or hi:
                raise ValueError(f"pad: cannot pad an empty axis {ax} with mode {mode!r}")
            continue
        skip = 1 if mode == "reflect" and n > 1 else 0  # reflect does not repeat the edge
        for before, width in ((True, lo), (False, hi)):
            while width:
                chunk = min(width, n - skip)
                width -= chunk
                size = aval(array).shape[ax]
                if before:
                    edge = slice_axis(array, ax, 0, 1)
                    mirror = flip(slice_axis(array, ax, skip, skip + chunk), ax)
                else:
                    edge = slice_axis(array, ax, size - 1, size)
                    mirror = flip(slice_axis(array, ax, size - skip - chunk, size - skip), ax)
                piece = lax.sub(lax.add(edge, edge), mirror)
                array = lax.concatenate([piece, array] if before else [array, piece], ax)
    return array


def _linear_ramp(array: Any, widths: list, end_values: Any) -> Any:
    """Ramps from ``end_values`` up to (not including) the edge values, in the array's
    dtype (integers as ``linspace`` gives them)."""
    ends = _pairs(end_values, aval(array).ndim, "end_values", integers=False)
    for ax, (lo, hi) in enumerate(widths):
        size = aval(array).shape[ax]
        ramps = []
        for end, edge_at, width in ((ends[ax, 0], 0, lo), (ends[ax, 1], size - 1, hi)):
            edge = lax.squeeze(slice_axis(array, ax, edge_at, edge_at + 1), (ax,))
            ramps.append(linspace(end.item(), edge, width, endpoint=False,
                                  dtype=aval(array).dtype, axis=ax))
        array = lax.concatenate([ramps[0], array, flip(ramps[1], ax)], ax)
    return array


_STATISTICS: dict[str, Callable[..., Any]] = {"maximum": _max, "minimum": _min, "mean": mean,
                                              "median": median}


def _statistic(array: Any, widths: list, mode: str, stat_length: Any) -> Any:
    """maximum, minimum, mean or median of the ``stat_length`` elements nearest each edge
    (all of the axis when None), repeated over the padding; integers rounded half to even."""
    statistic, nd = _STATISTICS[mode], aval(array).ndim
    lengths = None if stat_length is None else _pairs(stat_length, nd, "stat_length")
    for ax, (lo, hi) in enumerate(widths):
        size, dtype = aval(array).shape[ax], aval(array).dtype
        if lengths is not None and (lengths[ax] <= 0).any():
            raise ValueError(f"pad: stat_length {stat_length!r} gives no value to pad with")
        pieces = []
        for before, width in ((True, lo), (False, hi)):
            if not width:
                pieces.append(slice_axis(array, ax, 0, 0))
                continue
            if size == 0:
                raise ValueError(f"pad: cannot pad an empty axis {ax} with mode {mode!r}")
            take = size if lengths is None else min(int(lengths[ax, 0 if before else 1]), size)
            part = slice_axis(array, ax, 0, take) if before else \
                slice_axis(array, ax, size - take, size)
            value = statistic(part, axis=ax, keepdims=True)
            if dtypes.is_integer(dtype):
                value = _round(value)
            shape = list(aval(array).shape)
            shape[ax] = width
            pieces.append(broadcast_to(lax.convert_element_type(value, dtype), tuple(shape)))
        array = lax.concatenate([pieces[0], array, pieces[1]], ax)
    return array


def _callable(array: Any, widths: list, fn: Callable, kwargs: dict) -> Any:
    """NumPy's padding function protocol: ``fn(vector, (before, after), axis, kwargs)`` gets
    each 1-d slice already padded with zeros and returns it filled in (it cannot modify its
    argument in place, as NumPy's may)."""
    padded = lax.pad(array, lax.convert_element_type(0, aval(array).dtype),
                     tuple((lo, hi, 0) for lo, hi in widths))
    for ax, width in enumerate(widths):
        padded = apply_along_axis(fn, ax, padded, width, ax, kwargs)
    return padded


_INDEX_MODES = {"edge", "reflect", "symmetric", "wrap"}
_MODES = ("constant", "empty", *sorted(_INDEX_MODES), "linear_ramp", *_STATISTICS)


def pad(array: Any, pad_width: Any, mode: str | Callable = "constant", **kwargs: Any) -> Any:
    """Pad an array with ``mode``: 'constant' (``constant_values``), 'empty', 'edge',
    'reflect' and 'symmetric' (``reflect_type`` 'even' or 'odd'), 'wrap', 'linear_ramp'
    (``end_values``), 'maximum', 'minimum', 'mean' and 'median' (``stat_length``), or a
    function ``fn(vector, pad_width, axis, kwargs) -> vector``."""
    array = ensure_arraylike("pad", array)
    widths = _pad_width(pad_width, aval(array).ndim)
    if callable(mode):
        return _callable(array, widths, mode, kwargs)
    if mode in ("constant", "empty"):
        return _constant(array, widths, kwargs.get("constant_values", 0))
    if mode in ("reflect", "symmetric") and kwargs.get("reflect_type", "even") == "odd":
        return _odd_reflection(array, widths, mode)
    if kwargs.get("reflect_type", "even") not in ("even", "odd"):
        raise ValueError(f"pad: reflect_type must be 'even' or 'odd', got "
                         f"{kwargs['reflect_type']!r}")
    if mode in _INDEX_MODES:
        return _by_index(array, widths, mode)
    if mode == "linear_ramp":
        return _linear_ramp(array, widths, kwargs.get("end_values", 0))
    if mode in _STATISTICS:
        return _statistic(array, widths, mode, kwargs.get("stat_length"))
    raise ValueError(f"pad: mode {mode!r} is not one of {', '.join(_MODES)} or a function")


__all__ = ["pad"]
