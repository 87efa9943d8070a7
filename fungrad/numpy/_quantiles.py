"""Order statistics: ``quantile``, ``percentile``, ``median`` and their ``nan*`` versions,
computed by sorting along the reduced axes and interpolating between neighbours, or (method
``inverted_cdf``, the one that takes ``weights``) by accumulating weights along the sorted
values."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.util import prod as _prod
from fungrad.lax._placement import with_out_sharding
from fungrad.numpy._indexing import _IndexUpdateRef
from fungrad.numpy._reductions import any as _any, sum as _sum
from fungrad.numpy._util import (aval, canonicalize_axes, ensure_arraylike,
                                 promote_dtypes_inexact, scalar_like, where as _where)

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest", "inverted_cdf")


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


def _with_weights(fname: str, a: Any, weights: Any, axis: Any, method: str) -> tuple[Any, Any]:
    """``a`` and ``weights`` promoted to one inexact dtype, the weights broadcast to ``a``'s
    shape, with JAX's checks: real weights, method ``inverted_cdf`` (the only one defined
    for weights), and weights of ``a``'s shape or (with ``axis``) of the reduced axes'
    sizes, in ``axis``'s order."""
    weights = ensure_arraylike(fname, weights)
    if aval(weights).dtype.kind == "c":
        raise ValueError(f"{fname}: Weights cannot be complex types.")
    if method != "inverted_cdf":
        raise NotImplementedError(f"{fname}: {method} doesn't support weights. Only method "
                                  "'inverted_cdf' supports weights.")
    a, weights = promote_dtypes_inexact(a, weights)
    shape, w_shape = aval(a).shape, aval(weights).shape
    if w_shape == shape:
        return a, weights
    if axis is None:
        raise ValueError(f"{fname}: Weights shape must match 'a' shape when axis is None.")
    axes = canonicalize_axes(axis, len(shape), fname)
    if w_shape != tuple(shape[d] for d in axes):
        raise ValueError(f"{fname}: Weights shape {w_shape} must match reduction axes "
                         f"{tuple(shape[d] for d in axes)}")
    weights = lax.transpose(weights, tuple(int(i) for i in np.argsort(axes)))
    return a, lax.broadcast_in_dim(weights, shape, tuple(sorted(axes)))


def _take_last(x: Any, idx: Any, q_shape: tuple[int, ...], batch: tuple[int, ...]) -> Any:
    """``x[b..., idx[j..., b...]]`` for every ``q`` index ``j`` and batch index ``b``:
    ``x`` is ``batch + (n,)``, ``idx`` broadcasts to ``q_shape + batch``."""
    out_shape = q_shape + batch
    index = tuple(lax.broadcasted_iota(np.int32, out_shape, len(q_shape) + d)
                  for d in range(len(batch)))
    idx = lax.broadcast_in_dim(idx, out_shape, tuple(range(len(out_shape))))
    return _IndexUpdateRef(x, index + (idx,)).get()


def _interpolated(x: Any, q: Any, batch: tuple[int, ...], method: str, nan_mask: Any,
                  squash_nans: bool) -> Any:
    """The quantiles of the sorted ``x`` (``batch + (n,)``) between the two neighbours of
    position ``q * (count - 1)``, by ``method``; ``count`` is ``n``, or the values that are
    not NaN (sorted to the end) when ``squash_nans``."""
    q_nd = aval(q).ndim
    qb = lax.reshape(q, aval(q).shape + (1,) * len(batch))  # q dims, then batch dims
    if squash_nans:
        count = _sum(lax.bitwise_not(nan_mask), axis=-1, dtype=aval(q).dtype)
        last = lax.sub(lax.expand_dims(count, tuple(range(q_nd))), scalar_like(1, count))
    else:
        last = lax.convert_element_type(aval(x).shape[-1] - 1, aval(q).dtype)
    pos = lax.mul(qb, last)
    low, high = lax.floor(pos), lax.ceil(pos)
    high_weight = lax.sub(pos, low)
    low_weight = lax.sub(scalar_like(1, high_weight), high_weight)
    zero = lax.convert_element_type(0, aval(q).dtype)
    low, high = (lax.convert_element_type(lax.max(zero, lax.min(v, last)), np.int32)
                 for v in (low, high))
    low_value = _take_last(x, low, aval(q).shape, batch)
    high_value = _take_last(x, high, aval(q).shape, batch)
    if method == "linear":  # in q's dtype (a float16 a's values weighted in float32), as JAX
        low_value, high_value = (lax.convert_element_type(v, aval(q).dtype)
                                 for v in (low_value, high_value))
        return lax.add(lax.mul(low_value, low_weight), lax.mul(high_value, high_weight))
    if method == "lower":
        return low_value
    if method == "higher":
        return high_value
    if method == "nearest":
        out_shape = aval(low_value).shape
        return lax.select(lax.le(lax.broadcast_in_dim(high_weight, out_shape, tuple(
            range(len(out_shape)))), scalar_like(0.5, high_weight)), low_value, high_value)
    return lax.mul(lax.add(low_value, high_value), scalar_like(0.5, low_value))


def _inverted_cdf(x: Any, w: Any, q: Any, batch: tuple[int, ...], squash_nans: bool) -> Any:
    """The first of the sorted ``x`` (``batch + (n,)``) whose cumulative weight reaches
    ``q`` times the total weight (``inverted_cdf``, NumPy's and JAX's weighted quantile);
    ``w`` holds the weights in ``x``'s order. NaNs in ``x`` weigh nothing; a slice with a
    negative or NaN weight gives NaN, as does one with a NaN unless ``squash_nans`` (then
    one all NaN). ``q`` and the cumulative weights are compared in their promoted dtype
    (JAX requires one dtype for both)."""
    nan_x = lax.ne(x, x)
    bad_w = lax.bitwise_or(lax.lt(w, scalar_like(0, w)), lax.ne(w, w))
    cum = lax.cumsum(lax.select(lax.bitwise_or(bad_w, nan_x), lax.full_like(w, 0), w),
                     aval(x).ndim - 1)
    dt = dtypes.promote_types(aval(q).dtype, aval(w).dtype)
    n = aval(x).shape[-1]
    total = lax.slice_in_dim(cum, n - 1, n, axis=aval(x).ndim - 1)  # batch + (1,)
    qb = lax.reshape(lax.convert_element_type(q, dt), aval(q).shape + (1,) * (len(batch) + 1))
    target = lax.mul(qb, lax.convert_element_type(total, dt))
    below = lax.lt(lax.convert_element_type(cum, dt), target)  # q dims + batch + (n,)
    idx = _sum(below, axis=-1, dtype=dtypes.default_int_dtype())
    if squash_nans:  # the NaNs, sorted to the end, are never taken
        count = _sum(lax.bitwise_not(nan_x), axis=-1, dtype=aval(idx).dtype)
        nan_slices = lax.eq(count, scalar_like(0, count))
    else:
        count = lax.convert_element_type(n, aval(idx).dtype)
        nan_slices = _any(nan_x, axis=-1)
    idx = lax.max(scalar_like(0, idx), lax.min(idx, lax.sub(count, scalar_like(1, count))))
    result = _take_last(x, idx, aval(q).shape, batch)
    return _where(lax.bitwise_or(_any(bad_w, axis=-1), nan_slices),
                  scalar_like(np.nan, result), result)


def _quantile(fname: str, a: Any, q: Any, axis: Any, method: str, keepdims: bool,
              squash_nans: bool, weights: Any) -> Any:
    if method not in _METHODS:
        raise ValueError(f"{fname}: method must be one of {', '.join(_METHODS)}; got {method!r}")
    a, q = ensure_arraylike(fname, a, q)
    if weights is None:
        a, = promote_dtypes_inexact(a)
    else:
        a, weights = _with_weights(fname, a, weights, axis, method)
    dtypes.result_type(a, np.nan)  # NaN marks meet ``a``: 2-bit integers refuse, as in JAX
    q, = promote_dtypes_inexact(q)
    if aval(a).ndim == 0:  # as a 1-d array, as JAX (keepdims gives shape (1,))
        a = lax.reshape(a, (1,))
        weights = None if weights is None else lax.reshape(weights, (1,))
    if aval(a).dtype.kind == "c":
        raise ValueError(f"{fname} does not support complex input")
    if aval(q).ndim > 1:
        raise ValueError(f"{fname}: q must have rank <= 1, got shape {aval(q).shape}")
    x, batch, keep_shape = _to_last_axis(a, axis)
    nan_mask = lax.ne(x, x)
    if not squash_nans:  # any NaN in a slice makes its result NaN
        x = _where(_any(nan_mask, axis=-1, keepdims=True), scalar_like(np.nan, x), x)
    last = aval(x).ndim - 1
    if method == "inverted_cdf":
        w = lax.full_like(x, 1) if weights is None else _to_last_axis(weights, axis)[0]
        x, w = lax.sort((x, w), dimension=last, num_keys=1)
        result = _inverted_cdf(x, w, q, batch, squash_nans)
    else:
        result = _interpolated(lax.sort(x, dimension=last), q, batch, method, nan_mask,
                               squash_nans)
    if keepdims:
        result = lax.reshape(result, aval(q).shape + tuple(keep_shape))
    return lax.convert_element_type(result, aval(a).dtype)


def quantile(a: Any, q: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, *, weights: Any = None) -> Any:
    """The ``q``-th quantiles (``q`` in [0, 1], scalar or 1-d) over ``axis``.

    Args:
        a: the values (integers are taken as floats).
        q: the quantiles to compute, a scalar or 1-d array.
        axis: an axis or tuple of axes to reduce (None: all).
        out: unsupported; must be None (fungrad arrays are immutable).
        overwrite_input: ignored (accepted for NumPy's signature).
        method: ``"linear"``, ``"lower"``, ``"higher"``, ``"midpoint"`` and ``"nearest"``
            interpolate between the sorted values around ``q * (n - 1)``;
            ``"inverted_cdf"`` takes the first sorted value whose cumulative weight reaches
            ``q`` times the total.
        keepdims: keep the reduced axes, with size 1.
        weights: one weight per value (``a``'s shape, or with ``axis`` the reduced axes'
            sizes in ``axis``'s order), for ``method="inverted_cdf"`` only, as in JAX; a
            negative or NaN weight makes its slice's result NaN. Without weights every value
            weighs 1. The result does not depend on the weights smoothly, so its derivative
            with respect to them is zero.

    Returns:
        The quantiles, ``q``'s dimensions first, in ``a``'s promoted dtype.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> x = jnp.array([1, 2, 3, 4, 5])
        >>> jnp.quantile(x, 0.5, weights=jnp.array([1, 1, 2, 1, 1]), method="inverted_cdf")
        Array(3., dtype=float32)
    """
    return _quantile("quantile", a, q, axis, method, keepdims, False, weights)


def nanquantile(a: Any, q: Any, axis: Any = None, out: None = None,
                overwrite_input: bool = False, method: str = "linear",
                keepdims: bool = False, *, weights: Any = None) -> Any:
    """``quantile`` ignoring NaNs (which weigh nothing with ``weights``); a slice all NaN
    gives NaN."""
    return _quantile("nanquantile", a, q, axis, method, keepdims, True, weights)


def percentile(a: Any, q: Any, axis: Any = None, out: None = None,
               overwrite_input: bool = False, method: str = "linear",
               keepdims: bool = False, *, weights: Any = None, out_sharding: Any = None) -> Any:
    """The ``q``-th percentiles (``q`` in [0, 100]): ``quantile`` of ``q / 100``, with its
    ``method`` and ``weights``; ``out_sharding`` puts the result on a device (see
    ``fungrad.lax._placement``; None leaves it where the operation runs)."""
    q, = promote_dtypes_inexact(ensure_arraylike("percentile", q))
    out = _quantile("percentile", a, lax.div(q, scalar_like(100, q)), axis, method, keepdims,
                    False, weights)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "jnp.percentile")


def nanpercentile(a: Any, q: Any, axis: Any = None, out: None = None,
                  overwrite_input: bool = False, method: str = "linear",
                  keepdims: bool = False, *, weights: Any = None) -> Any:
    """``percentile`` ignoring NaNs, as ``nanquantile``."""
    q, = promote_dtypes_inexact(ensure_arraylike("nanpercentile", q))
    return _quantile("nanpercentile", a, lax.div(q, scalar_like(100, q)), axis, method,
                     keepdims, True, weights)


def median(a: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Any:
    """The median over ``axis`` (the midpoint of the two middle values for even sizes)."""
    return quantile(a, 0.5, axis, method="midpoint", keepdims=keepdims)


def nanmedian(a: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
              keepdims: bool = False) -> Any:
    """``median`` ignoring NaNs."""
    return nanquantile(a, 0.5, axis, method="midpoint", keepdims=keepdims)


__all__ = ["quantile", "nanquantile", "percentile", "nanpercentile", "median", "nanmedian"]
