"""Order statistics: ``quantile``, ``percentile``, ``median`` and their ``nan*`` versions,
computed by sorting along the reduced axes and interpolating between neighbours."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core.util import prod as _prod
from fungrad.numpy._indexing import _IndexUpdateRef
from fungrad.numpy._reductions import any as _any, sum as _sum
from fungrad.numpy._util import (aval, canonicalize_axes, ensure_arraylike,
                                 promote_dtypes_inexact, scalar_like, where as _where)

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _to_last_axis(a: Any, axis: Any) -> tuple[Any, tuple[int, ...], list[int]]:
    """``a`` with the reduced axes moved to the end and merged into one; also the kept
    batch shape and the shape ``keepdims`` restores (1 for each reduced axis)."""
    nd = aval(a).ndim
    axes = canonicalize_axes(axis, nd, "quantile")
    keep = [d for d in range(nd) if d not in axes]
    shape = aval(a).shape
    batch = tuple(shape[d] for d in keep)
    moved = lax.transpose(a, tuple(keep) + axes)
    merged = lax.reshape(moved, batch + (_prod(shape[d] for d in axes),))
    return merged, batch, [1 if d in axes else shape[d] for d in range(nd)]


def _quantile(fname: str, a: Any, q: Any, axis: Any, method: str, keepdims: bool,
              squash_nans: bool) -> Any:
    if method not in _METHODS:
        raise ValueError(f"{fname}: method must be one of {', '.join(_METHODS)}; got {method!r}")
    a, q = ensure_arraylike(fname, a, q)
    a, = promote_dtypes_inexact(a)
    q, = promote_dtypes_inexact(q)
    if aval(a).ndim == 0:  # as a 1-d array, as JAX (keepdims gives shape (1,))
        a = lax.reshape(a, (1,))
    if aval(a).dtype.kind == "c":
        raise ValueError(f"{fname} does not support complex input")
    if aval(q).ndim > 1:
        raise ValueError(f"{fname}: q must have rank <= 1, got shape {aval(q).shape}")
    x, batch, keep_shape = _to_last_axis(a, axis)
    n = aval(x).shape[-1]
    nan_mask = lax.ne(x, x)
    if not squash_nans:  # any NaN in a slice makes its result NaN
        x = _where(_any(nan_mask, axis=-1, keepdims=True), scalar_like(np.nan, x), x)
    x = lax.sort(x, dimension=aval(x).ndim - 1)
    q_nd = aval(q).ndim
    qb = lax.reshape(q, aval(q).shape + (1,) * len(batch))  # q dims, then batch dims
    if squash_nans:
        count = _sum(lax.bitwise_not(nan_mask), axis=-1, dtype=aval(q).dtype)
        last = lax.sub(lax.expand_dims(count, tuple(range(q_nd))), scalar_like(1, count))
    else:
        last = lax.convert_element_type(n - 1, aval(q).dtype)
    pos = lax.mul(qb, last)
    low, high = lax.floor(pos), lax.ceil(pos)
    high_weight = lax.sub(pos, low)
    low_weight = lax.sub(scalar_like(1, high_weight), high_weight)
    zero = lax.convert_element_type(0, aval(q).dtype)
    low, high = (lax.convert_element_type(lax.max(zero, lax.min(v, last)), np.int32)
                 for v in (low, high))
    out_shape = aval(q).shape + batch
    index = tuple(lax.broadcasted_iota(np.int32, out_shape, q_nd + d) for d in range(len(batch)))
    low_value = _IndexUpdateRef(x, index + (lax.broadcast_in_dim(
        low, out_shape, tuple(range(len(out_shape)))),)).get()
    high_value = _IndexUpdateRef(x, index + (lax.broadcast_in_dim(
        high, out_shape, tuple(range(len(out_shape)))),)).get()
    if method == "linear":  # in q's dtype (a float16 a's values weighted in float32), as JAX
        low_value, high_value = (lax.convert_element_type(v, aval(q).dtype)
                                 for v in (low_value, high_value))
        result = lax.add(lax.mul(low_value, low_weight), lax.mul(high_value, high_weight))
    elif method == "lower":
        result = low_value
    elif method == "higher":
        result = high_value
    elif method == "nearest":
        result = lax.select(lax.le(lax.broadcast_in_dim(high_weight, out_shape, tuple(
            range(len(out_shape)))), scalar_like(0.5, high_weight)), low_value, high_value)
    else:
        result = lax.mul(lax.add(low_value, high_value), scalar_like(0.5, low_value))
    if keepdims:
        result = lax.reshape(result, aval(q).shape + tuple(keep_shape))
    return lax.convert_element_type(result, aval(a).dtype)


def quantile(a: Any, q: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False) -> Any:
    """The ``q``-th quantiles (``q`` in [0, 1], scalar or 1-d) over ``axis``."""
    return _quantile("quantile", a, q, axis, method, keepdims, False)


def nanquantile(a: Any, q: Any, axis: Any = None, out: None = None,
                overwrite_input: bool = False, method: str = "linear",
                keepdims: bool = False) -> Any:
    """``quantile`` ignoring NaNs."""
    return _quantile("nanquantile", a, q, axis, method, keepdims, True)


def percentile(a: Any, q: Any, axis: Any = None, out: None = None,
               overwrite_input: bool = False, method: str = "linear",
               keepdims: bool = False) -> Any:
    """The ``q``-th percentiles (``q`` in [0, 100])."""
    q, = promote_dtypes_inexact(ensure_arraylike("percentile", q))
    return quantile(a, lax.div(q, scalar_like(100, q)), axis, method=method, keepdims=keepdims)


def nanpercentile(a: Any, q: Any, axis: Any = None, out: None = None,
                  overwrite_input: bool = False, method: str = "linear",
                  keepdims: bool = False) -> Any:
    """``percentile`` ignoring NaNs."""
    q, = promote_dtypes_inexact(ensure_arraylike("nanpercentile", q))
    return nanquantile(a, lax.div(q, scalar_like(100, q)), axis, method=method,
                       keepdims=keepdims)


def median(a: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Any:
    """The median over ``axis`` (the midpoint of the two middle values for even sizes)."""
    return quantile(a, 0.5, axis, method="midpoint", keepdims=keepdims)


def nanmedian(a: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
              keepdims: bool = False) -> Any:
    """``median`` ignoring NaNs."""
    return nanquantile(a, 0.5, axis, method="midpoint", keepdims=keepdims)


__all__ = ["quantile", "nanquantile", "percentile", "nanpercentile", "median", "nanmedian"]
