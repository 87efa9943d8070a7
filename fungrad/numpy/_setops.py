"""Set operations on flattened arrays: the array-API ``unique_*`` family (``size=`` makes
them usable under ``jit``), and ``union1d``, ``intersect1d``, ``setdiff1d``, ``setxor1d``,
which select with concrete masks and so need concrete inputs."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fungrad import lax
from fungrad.numpy._joining import concatenate
from fungrad.numpy._searching import isin
from fungrad.numpy._sorting import unique
from fungrad.numpy._util import aval, ensure_arraylike
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
    """Sorted unique values in both arrays."""
    if return_indices:
        raise NotImplementedError("intersect1d: return_indices is not supported")
    a1, a2 = _flat("intersect1d", ar1, ar2)
    u1 = unique(a1)
    return unique(_take_where(u1, isin(u1, a2)), size=size, fill_value=fill_value)


def setdiff1d(ar1: Any, ar2: Any, assume_unique: bool = False, *, size: int | None = None,
              fill_value: Any = None) -> Any:
    """Sorted unique values of ``ar1`` not in ``ar2``."""
    a1, a2 = _flat("setdiff1d", ar1, ar2)
    u1 = unique(a1)
    return unique(_take_where(u1, isin(u1, a2, invert=True)), size=size, fill_value=fill_value)


def setxor1d(ar1: Any, ar2: Any, assume_unique: bool = False, *, size: int | None = None,
             fill_value: Any = None) -> Any:
    """Sorted unique values in exactly one of the arrays."""
    a1, a2 = _flat("setxor1d", ar1, ar2)
    u1, u2 = unique(a1), unique(a2)
    only1 = _take_where(u1, isin(u1, u2, invert=True))
    only2 = _take_where(u2, isin(u2, u1, invert=True))
    return unique(concatenate([only1, only2]), size=size, fill_value=fill_value)


def _take_where(x: Any, mask: Any) -> Any:
    """The elements of 1-d ``x`` where ``mask`` holds (concrete)."""
    return _getitem(x, np.asarray(mask))


__all__ = ["unique_values", "unique_counts", "unique_inverse", "unique_all", "union1d",
           "intersect1d", "setdiff1d", "setxor1d"]
