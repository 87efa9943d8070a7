"""Set operations on flattened arrays: the array-API ``unique_*`` family, and ``union1d``,
``intersect1d``, ``setdiff1d``, ``setxor1d``.

Their result sizes depend on the data, so without ``size=`` they select with concrete masks
and need concrete inputs. With ``size=`` they are traceable (usable under ``jit`` and
``vmap``), as in JAX: the values are sorted with a mask of the ones that belong to the
result, the kept ones are moved to the front, and the slots after them hold ``fill_value``
(by default JAX's: the result's minimum for ``intersect1d``, ``setxor1d`` and ``union1d``,
0 for ``setdiff1d`` and for an empty result). NaNs compare unequal, except that ``unique``
collapses each array's NaNs into one, as JAX's does.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fungrad import lax
from fungrad.numpy._creation import arange
from fungrad.numpy._joining import concatenate
from fungrad.numpy._searching import isin, nonzero, searchsorted
from fungrad.numpy._sorting import argsort, sort, unique
from fungrad.numpy._ufuncs_math import isnan
from fungrad.numpy._util import aval, ensure_arraylike, promote_dtypes, where
from fungrad.numpy._indexing import _getitem


class _UniqueAllResult(NamedTuple):
    values: Any
    indices: Any
    inverse_indices: Any
    counts: Any


class _UniqueCountsResult(NamedTuple):
    values: Any
    counts: Any


class _UniqueInverseResult(NamedTuple):
    values: Any
    inverse_indices: Any


def unique_values(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> Any:
    """Sorted unique values (NaNs kept distinct)."""
    return unique(x, equal_nan=False, size=size, fill_value=fill_value)


def unique_counts(x: Any, /, *, size: int | None = None,
                  fill_value: Any = None) -> _UniqueCountsResult:
    """``(values, counts)``."""
    return _UniqueCountsResult(*unique(x, return_counts=True, equal_nan=False, size=size,
                                       fill_value=fill_value))


def unique_inverse(x: Any, /, *, size: int | None = None,
                   fill_value: Any = None) -> _UniqueInverseResult:
    """``(values, inverse_indices)`` with ``values[inverse_indices] == x``."""
    return _UniqueInverseResult(*unique(x, return_inverse=True, equal_nan=False, size=size,
                                        fill_value=fill_value))


def unique_all(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> _UniqueAllResult:
    """``(values, indices, inverse_indices, counts)``."""
    return _UniqueAllResult(*unique(x, return_index=True, return_inverse=True,
                                    return_counts=True, equal_nan=False, size=size,
                                    fill_value=fill_value))


def _flat(fname: str, *arrays: Any) -> list:
    return [lax.reshape(a, (aval(a).size,)) for a in
            (ensure_arraylike(fname, x) for x in arrays)]


def union1d(ar1: Any, ar2: Any, *, size: int | None = None, fill_value: Any = None) -> Any:
    """Sorted unique values in either array."""
    return unique(concatenate(_flat("union1d", ar1, ar2)), size=size, fill_value=fill_value)


def intersect1d(ar1: Any, ar2: Any, assume_unique: bool = False,
                return_indices: bool = False, *, size: int | None = None,
                fill_value: Any = None) -> Any:
    """Sorted unique values in both arrays; with ``return_indices``, also the index of each
    value's first occurrence in each array (``size`` slots past the end hold each array's
    size, as JAX's)."""
    a1, a2 = _flat("intersect1d", ar1, ar2)
    if return_indices:
        return _intersection_with_indices(*promote_dtypes(a1, a2), size, fill_value)
    if size is not None:
        values, first = _sorted_firsts(a1)
        return _sized(values, first & isin(values, a2), size, fill_value, _minimum)
    u1 = unique(a1)
    return _take_where(u1, isin(u1, a2))


def _intersection_with_indices(a1: Any, a2: Any, size: int | None, fill_value: Any
                              ) -> tuple[Any, Any, Any]:
    """``intersect1d(..., return_indices=True)``: ``a1`` sorted stably (the first of a run of
    equal values is its first occurrence), the runs whose value ``a2`` holds, and that
    value's first occurrence in ``a2`` found in ``a2`` sorted stably. Traceable with
    ``size``."""
    order1, order2 = argsort(a1), argsort(a2)
    values, first = _sorted_firsts(a1, order1)
    keep = first & isin(values, a2)
    if aval(a2).size:
        sorted2 = a2[order2]
        at = lax.min(searchsorted(sorted2, values), lax.full((), aval(a2).size - 1, np.int32))
        index2 = order2[at]
    else:
        index2 = lax.full(aval(values).shape, 0, np.int32)
    if size is None:
        return _take_where(values, keep), _take_where(order1, keep), _take_where(index2, keep)
    filled = [_sized(values, keep, size, fill_value, _minimum)]
    for index, n in ((order1, aval(a1).size), (index2, aval(a2).size)):
        filled.append(_sized(lax.convert_element_type(index, np.int32), keep, size, n, _zero))
    return tuple(filled)


def setdiff1d(ar1: Any, ar2: Any, assume_unique: bool = False, *, size: int | None = None,
              fill_value: Any = None) -> Any:
    """Sorted unique values of ``ar1`` not in ``ar2``."""
    a1, a2 = _flat("setdiff1d", ar1, ar2)
    if size is not None:
        values, first = _sorted_firsts(a1)
        return _sized(values, first & isin(values, a2, invert=True), size, fill_value, _zero)
    u1 = unique(a1)
    return _take_where(u1, isin(u1, a2, invert=True))


def setxor1d(ar1: Any, ar2: Any, assume_unique: bool = False, *, size: int | None = None,
             fill_value: Any = None) -> Any:
    """Sorted unique values in exactly one of the arrays; a NaN equals nothing, so one NaN
    of each array is kept (as in NumPy and JAX). ``assume_unique`` skips the deduplication
    of each array."""
    a1, a2 = _flat("setxor1d", ar1, ar2)
    if size is not None and not assume_unique:
        (v1, first1), (v2, first2) = _sorted_firsts(a1), _sorted_firsts(a2)
        keep = concatenate([first1 & isin(v1, a2, invert=True),
                            first2 & isin(v2, a1, invert=True)])
        dropped, values = lax.sort((~keep, concatenate([v1, v2])), num_keys=2)
        return _sized(values, ~dropped, size, fill_value, _minimum)
    if not assume_unique:
        a1, a2 = unique(a1), unique(a2)
    merged = sort(concatenate([a1, a2]))  # a value in both arrays appears twice in a row
    if size is not None:
        return _sized(merged, _alone(merged), size, fill_value, _minimum)
    return _take_where(merged, _alone(merged))


def _alone(values: Any) -> Any:
    """Where sorted 1-d ``values`` differ from both neighbours."""
    if aval(values).size == 0:
        return lax.full(aval(values).shape, False)
    differs = values[1:] != values[:-1]
    edge = lax.full((1,), True)
    return concatenate([edge, differs]) & concatenate([differs, edge])


def _sorted_firsts(x: Any, order: Any = None) -> tuple[Any, Any]:
    """1-d ``x`` sorted (by the permutation ``order`` when given), and a mask of the first
    of each run of equal values (NaNs are one run, as ``unique`` collapses them)."""
    values = sort(x) if order is None else x[order]
    if aval(values).size == 0:
        return values, lax.full(aval(values).shape, False)
    prev, nxt = values[:-1], values[1:]
    repeated = (nxt == prev) | (isnan(nxt) & isnan(prev))
    return values, concatenate([lax.full((1,), True), ~repeated])


def _minimum(values: Any, keep: Any, count: Any) -> Any:
    """The smallest kept value (NaN when a NaN is kept), 0 when none is: JAX's default
    fill. ``values`` are sorted, so the first kept one is the smallest and NaNs come last."""
    zero = lax.full((), 0, aval(values).dtype)
    if aval(values).size == 0:
        return zero
    first = values[nonzero(keep, size=1, fill_value=0)[0][0]]
    any_nan = lax.reduce_or(isnan(values) & keep, (0,))
    nan = lax.full((), np.nan, aval(values).dtype) if aval(values).dtype.kind in "fc" else zero
    return where(count > 0, where(any_nan, nan, first), zero)


def _zero(values: Any, keep: Any, count: Any) -> Any:
    """JAX's default fill of ``setdiff1d``."""
    return lax.full((), 0, aval(values).dtype)


def _sized(values: Any, keep: Any, size: int, fill_value: Any, default_fill: Any) -> Any:
    """The ``values`` where ``keep`` holds, in their order, in ``size`` slots; the slots
    after them hold ``fill_value``, or ``default_fill(values, keep, count)``. Traceable."""
    dtype = aval(values).dtype
    count = lax.reduce_sum(lax.convert_element_type(keep, np.int32), (0,))
    fill = (default_fill(values, keep, count) if fill_value is None
            else lax.convert_element_type(fill_value, dtype))
    if aval(values).size == 0:
        return lax.full((size,), fill, dtype)
    index = nonzero(keep, size=size, fill_value=0)[0]
    return where(arange(size) < count, values[index], fill)


def _take_where(x: Any, mask: Any) -> Any:
    """The elements of 1-d ``x`` where ``mask`` holds (concrete)."""
    return _getitem(x, np.asarray(mask))


__all__ = ["unique_values", "unique_counts", "unique_inverse", "unique_all", "union1d",
           "intersect1d", "setdiff1d", "setxor1d"]
