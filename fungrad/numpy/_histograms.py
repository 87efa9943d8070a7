"""Histograms: ``histogram``, ``histogram_bin_edges``, ``histogram2d`` and ``histogramdd``."""
from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core.array import Array
from fungrad._core.core import Tracer
from fungrad._core.util import prod as _prod
from fungrad.numpy._creation import asarray, linspace
from fungrad.numpy._index_tricks import ix_, ravel_multi_index
from fungrad.numpy._reductions import max as _max, min as _min, sum as _sum
from fungrad.numpy._searching import bincount, searchsorted
from fungrad.numpy._ufuncs import divide
from fungrad.numpy._util import (aval, check_arraylike, ensure_arraylike, promote_dtypes,
                                 promote_dtypes_inexact, scalar_like, static_int,
                                 to_inexact_dtype)

_ARRAYS = (Array, Tracer, np.ndarray)


def _check_real(fname: str, x: Any, what: str) -> None:
    """Complex data has no bin order here: a ``TypeError`` naming ``fname`` and ``what``."""
    if aval(x).dtype.kind == "c":
        raise TypeError(f"{fname}: complex {what} is not supported (dtype {aval(x).dtype})")


def _element(x: Any, i: int) -> Any:
    """``x[i]`` of a 1-d array, as a 0-d array."""
    return lax.reshape(lax.slice(x, (i,), (i + 1,)), ())


def _column(sample: Any, i: int) -> Any:
    """``sample[:, i]`` of an ``(N, D)`` array."""
    n = aval(sample).shape[0]
    return lax.reshape(lax.slice(sample, (0, i), (n, i + 1)), (n,))


def _range_pair(fname: str, range: Any, dtype: np.dtype) -> tuple[Any, Any]:  # noqa: A002
    """``range`` (a pair of scalars, or a shape-(2,) array) as two 0-d arrays of ``dtype``."""
    if isinstance(range, (tuple, list)):
        parts = [ensure_arraylike(fname, r) for r in range]
        if len(parts) != 2 or any(aval(p).ndim for p in parts):
            raise ValueError(f"{fname}: range must be None or a pair of scalars (lower, upper), "
                             f"got {range!r}")
        lo, hi = parts
    else:
        arr = ensure_arraylike(fname, range)
        if aval(arr).shape != (2,):
            raise ValueError(f"{fname}: range must be None or a pair of scalars (lower, upper), "
                             f"got an array of shape {aval(arr).shape}")
        lo, hi = _element(arr, 0), _element(arr, 1)
    for p in (lo, hi):
        _check_real(fname, p, "range")
    return lax.convert_element_type(lo, dtype), lax.convert_element_type(hi, dtype)


def _bin_edges(fname: str, arr: Any, bins: Any, range: Any) -> Any:  # noqa: A002
    """The bin edges of the array ``arr`` (the core of ``histogram_bin_edges``)."""
    if isinstance(bins, str):
        raise NotImplementedError(f"{fname}: string values for bins ({bins!r}) are not "
                                  "implemented; pass a number of bins or an array of edges")
    check_arraylike(fname, bins)
    _check_real(fname, arr, "input")
    dtype = to_inexact_dtype(aval(arr).dtype)
    if aval(bins).ndim == 1:
        bins = ensure_arraylike(fname, bins)
        _check_real(fname, bins, "bins")
        return lax.convert_element_type(bins, dtype)
    if aval(bins).ndim > 1:
        raise TypeError(f"{fname}: bins must be an integer or a 1-d array of bin edges, got an "
                        f"array of shape {aval(bins).shape}")
    nbins = static_int(bins, f"{fname}: bins")
    if nbins < 0:
        raise ValueError(f"{fname}: bins must be a non-negative number of bins, got {nbins}")
    if range is None:
        if aval(arr).size == 0:
            raise ValueError(f"{fname}: cannot infer the range of an empty array; pass range=")
        lo, hi = (lax.convert_element_type(r(arr), dtype) for r in (_min, _max))
    else:
        lo, hi = _range_pair(fname, range, dtype)
    # an empty range widens to one unit, centred on it (as NumPy and JAX do)
    flat = lax.eq(hi, lo)
    half = scalar_like(0.5, lo)
    lo, hi = lax.select(flat, lax.sub(lo, half), lo), lax.select(flat, lax.add(hi, half), hi)
    return linspace(lo, hi, nbins + 1, dtype=dtype)


def histogram_bin_edges(a: Any, bins: Any = 10, range: Sequence[Any] | None = None,  # noqa: A002
                        weights: Any = None) -> Any:
    """The edges of the bins ``histogram`` would use: ``bins`` edges as given, or ``bins + 1``
    evenly spaced over ``range`` (default: the data's min and max). ``weights`` is unused."""
    arr = ensure_arraylike("histogram_bin_edges", a)
    return _bin_edges("histogram_bin_edges", arr, bins, range)


def histogram(a: Any, bins: Any = 10, range: Sequence[Any] | None = None,  # noqa: A002
              weights: Any = None, density: bool | None = None) -> tuple[Any, Any]:
    """``(counts, bin_edges)`` of the values of ``a`` (any shape): the number (or summed
    ``weights``) of values per bin, the last bin closed; values outside the edges are dropped.
    ``density=True`` normalises to counts per unit length that integrate to 1."""
    if weights is None:
        a = ensure_arraylike("histogram", a)
        a, = promote_dtypes_inexact(a)
        weights = lax.full(aval(a).shape, 1, aval(a).dtype)
    else:
        a, weights = ensure_arraylike("histogram", a, weights)
        if aval(a).shape != aval(weights).shape:
            raise ValueError(f"histogram: weights of shape {aval(weights).shape} must have the "
                             f"same shape as a, {aval(a).shape}")
        _check_real("histogram", weights, "weights")
        a, weights = promote_dtypes_inexact(a, weights)
    edges = _bin_edges("histogram", a, bins, range)
    n_edges = aval(edges).shape[0]
    if n_edges == 0:
        raise ValueError("histogram: bins must hold at least one bin edge, got an empty array")
    a, weights = (lax.reshape(v, (aval(v).size,)) for v in (a, weights))
    idx = searchsorted(edges, a, side="right")
    # the last bin is closed: values on the last edge go in it, not past it
    on_last = lax.eq(a, _element(edges, n_edges - 1))
    idx = lax.select(on_last, lax.full(aval(idx).shape, n_edges - 1, aval(idx).dtype), idx)
    counts = lax.slice(bincount(idx, weights, length=n_edges), (1,), (n_edges,))
    if density:
        widths = lax.sub(lax.slice(edges, (1,), (n_edges,)), lax.slice(edges, (0,), (n_edges - 1,)))
        counts = divide(divide(counts, widths), _sum(counts))
    return counts, edges


def _bins_per_dim(fname: str, bins: Any, ndim: int) -> list:
    """``bins`` of ``histogramdd``: one entry per dimension (a count or 1-d edges)."""
    if isinstance(bins, (tuple, list)):
        per_dim = list(bins)
    elif isinstance(bins, Tracer) and aval(bins).ndim >= 1:
        per_dim = list(bins)
    elif isinstance(bins, _ARRAYS) and aval(bins).ndim >= 1:
        per_dim = list(np.asarray(bins))  # concrete: counts stay static under jit
    else:
        return [bins] * ndim
    if len(per_dim) != ndim:
        raise ValueError(f"{fname}: bins must give one entry (a number of bins or an array of "
                         f"edges) per dimension: {ndim}, got {len(per_dim)}")
    return per_dim


def _ranges_per_dim(fname: str, range: Any, shape: tuple[int, ...]) -> list:  # noqa: A002
    """``range`` of ``histogramdd``: ``D`` entries, each None or a pair (checked up front, even
    for dimensions whose bins are given as edges, as JAX does)."""
    ndim = shape[1]
    if range is None:
        return [None] * ndim
    if isinstance(range, (tuple, list)):
        ranges = list(range)
    elif isinstance(range, _ARRAYS) and aval(range).ndim >= 1:
        ranges = list(range)
    else:
        ranges = []
    def is_pair(r: Any) -> bool:
        if isinstance(r, (tuple, list)):
            return len(r) == 2
        return isinstance(r, _ARRAYS) and aval(r).ndim >= 1 and aval(r).shape[0] == 2
    if len(ranges) != ndim or not all(r is None or is_pair(r) for r in ranges):
        raise ValueError(f"{fname}: for a sample of shape {shape}, range must be a sequence of "
                         f"{ndim} pairs or Nones; got {range!r}")
    return ranges


def histogramdd(sample: Any, bins: Any = 10, range: Sequence[Any] | None = None,  # noqa: A002
                weights: Any = None, density: bool | None = None) -> tuple[Any, list]:
    """``(counts, edges)`` of ``N`` points in ``D`` dimensions (``sample`` of shape ``(N, D)``):
    a ``D``-d array of counts (or summed ``weights``) per bin, and the list of ``D`` edge arrays.
    ``density=True`` normalises to counts per unit volume that integrate to 1."""
    if weights is None:
        sample = ensure_arraylike("histogramdd", sample)
        sample, = promote_dtypes_inexact(sample)
    else:
        sample, weights = ensure_arraylike("histogramdd", sample, weights)
        if aval(sample).ndim == 2 and aval(weights).shape != aval(sample).shape[:1]:
            raise ValueError(f"histogramdd: weights of shape {aval(weights).shape} must hold one "
                             f"weight per sample, shape {aval(sample).shape[:1]}")
        _check_real("histogramdd", weights, "weights")
        sample, weights = promote_dtypes_inexact(sample, weights)
    if aval(sample).ndim != 2 or aval(sample).shape[1] == 0:
        raise ValueError(f"histogramdd: sample must have shape (N, D) with D >= 1, got shape "
                         f"{aval(sample).shape}")
    ndim = aval(sample).shape[1]
    ranges = _ranges_per_dim("histogramdd", range, aval(sample).shape)
    per_dim = _bins_per_dim("histogramdd", bins, ndim)
    indices, edges = [], []
    for i in builtins.range(ndim):
        col = _column(sample, i)
        e = _bin_edges("histogramdd", col, per_dim[i], ranges[i])
        n_edges = aval(e).shape[0]
        if n_edges == 0:
            raise ValueError(f"histogramdd: the bins of dimension {i} must hold at least one "
                             "bin edge, got an empty array")
        idx = searchsorted(e, col, side="right")
        # the last bin is closed: values on the last edge go in it
        idx = lax.select(lax.eq(col, _element(e, n_edges - 1)),
                         lax.sub(idx, scalar_like(1, idx)), idx)
        indices.append(idx)
        edges.append(e)
    # bins 1..n-1 along each axis; 0 and n (below and above the edges) are cut off below
    shape = tuple(aval(e).shape[0] + 1 for e in edges)
    flat = ravel_multi_index(tuple(indices), shape, mode="clip")
    hist = lax.reshape(bincount(flat, weights, length=_prod(shape)), shape)
    hist = lax.slice(hist, (1,) * ndim, tuple(n - 1 for n in shape))
    if density:
        hist = lax.convert_element_type(hist, aval(sample).dtype)
        hist = divide(hist, _sum(hist))
        widths = [lax.sub(lax.slice(e, (1,), (aval(e).shape[0],)),
                          lax.slice(e, (0,), (aval(e).shape[0] - 1,))) for e in edges]
        for w in ix_(*widths):
            hist = divide(hist, w)
    return hist, edges


def histogram2d(x: Any, y: Any, bins: Any = 10, range: Sequence[Any] | None = None,  # noqa: A002
                weights: Any = None, density: bool | None = None) -> tuple[Any, Any, Any]:
    """``(counts, x_edges, y_edges)`` of the points ``(x[i], y[i])``: ``histogramdd`` of two
    dimensions. ``bins``: a count, a pair (of counts or edge arrays), or one edge array for both."""
    x, y = ensure_arraylike("histogram2d", x, y)
    if aval(x).ndim != 1 or aval(x).shape != aval(y).shape:
        raise ValueError(f"histogram2d: x and y must be 1-d arrays of the same length, got "
                         f"shapes {aval(x).shape} and {aval(y).shape}")
    if isinstance(bins, (tuple, list)) or (isinstance(bins, _ARRAYS) and aval(bins).ndim >= 1):
        if len(bins) not in (1, 2):
            edges = asarray(bins)
            bins = [edges, edges]
    x, y = promote_dtypes(x, y)
    sample = lax.concatenate([lax.reshape(v, (aval(v).shape[0], 1)) for v in (x, y)], 1)
    hist, (x_edges, y_edges) = histogramdd(sample, bins, range, weights, density)
    return hist, x_edges, y_edges


__all__ = ["histogram", "histogram_bin_edges", "histogram2d", "histogramdd"]
