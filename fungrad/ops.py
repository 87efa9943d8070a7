"""``fungrad.ops`` (``jax.ops``): reductions over segments, ``segment_sum`` and friends.

``segment_sum(data, segment_ids, num_segments)`` adds each row ``data[i]`` into row
``segment_ids[i]`` of a result with ``num_segments`` rows: the sum of the node features of
each graph in a batch of graphs, of the messages arriving at each node of a graph. Each
function is one scatter (``x.at[ids].add/mul/min/max``) into an array filled with the
operation's identity, so it differentiates, batches and compiles like any other.

Segment ids outside ``[0, num_segments)`` are dropped, negative ones included (they are not
counted from the end as Python indices are); ``mode="clip"`` clamps them into range instead.
``bucket_size`` reduces each bucket of that many rows on its own, then combines the buckets
(fewer roundings in long float sums), as in JAX.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core.core import Tracer
from fungrad._core.namespace import public_dir
from fungrad.errors import ConcretizationTypeError
from fungrad.numpy._creation import full
from fungrad.numpy._reductions import max as _max, min as _min, prod as _prod, sum as _sum
from fungrad.numpy._ufuncs import clip
from fungrad.numpy._util import aval, ensure_arraylike, scalar_like, static_int, where as _where

__all__ = ["segment_sum", "segment_prod", "segment_max", "segment_min"]
__dir__ = public_dir(__all__)

_MODES = (None, "drop", "fill", "fill_or_drop", "clip", "promise_in_bounds")


def _identity(op: str, dtype: np.dtype) -> Any:
    """The value an empty segment holds: the identity of ``op`` in ``dtype``."""
    if op == "add":
        return 0
    if op == "mul":
        return 1
    if dtype == np.bool_:
        return op == "min"
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.max if op == "min" else info.min
    return np.inf if op == "min" else -np.inf


def _segment(fname: str, op: str, reducer: Any, data: Any, segment_ids: Any,
             num_segments: int | None, bucket_size: int | None, mode: Any,
             indices_are_sorted: bool, unique_indices: bool) -> Any:
    data, ids = ensure_arraylike(fname, data, segment_ids)
    if aval(ids).dtype.kind not in "iu":
        raise TypeError(f"{fname}: segment_ids must be integers, got {aval(ids).dtype}")
    if aval(ids).ndim != 1 or aval(data).ndim < 1 or \
            aval(ids).shape[0] != aval(data).shape[0]:
        raise ValueError(f"{fname}: segment_ids must be 1-d with one id per row of data; got "
                         f"shapes {aval(ids).shape} and {aval(data).shape}")
    mode = getattr(mode, "name", mode)
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in _MODES:
        raise ValueError(f"{fname}: mode must be one of 'drop', 'fill', 'clip' or "
                         f"'promise_in_bounds', got {mode!r}")
    if num_segments is None:
        values = ids.to_concrete_value() if isinstance(ids, Tracer) else np.asarray(ids)
        if values is None:
            raise ConcretizationTypeError(ids, f"{fname}: pass a static num_segments to use "
                                               f"{fname} inside jit or vmap")
        num_segments = int(values.max()) + 1 if values.size else 0
    num_segments = static_int(num_segments, f"{fname}: num_segments")
    if num_segments < 0:
        raise ValueError(f"{fname}: num_segments must be non-negative, got {num_segments}")
    if mode in ("clip", "promise_in_bounds"):
        ids = clip(ids, 0, max(num_segments - 1, 0))
    elif aval(ids).dtype.kind == "i":  # negative ids are out of range, not counted from the end
        ids = _where(lax.lt(ids, scalar_like(0, ids)), scalar_like(num_segments, ids), ids)
    dtype = aval(data).dtype
    if dtype == np.bool_ and op in ("add", "mul"):
        raise TypeError(f"{fname}: data must be numeric, not bool (as in JAX); convert it, "
                        f"e.g. data.astype(jnp.int32)")
    fill = _identity(op, dtype)
    rows = aval(data).shape[1:]
    if bucket_size is None:
        out = full((num_segments,) + rows, fill, dtype)
        return getattr(out.at[ids], op)(data, mode="drop", indices_are_sorted=indices_are_sorted,
                                        unique_indices=unique_indices)
    bucket_size = static_int(bucket_size, f"{fname}: bucket_size")
    if bucket_size < 1:
        raise ValueError(f"{fname}: bucket_size must be positive, got {bucket_size}")
    n = aval(ids).shape[0]
    buckets = np.arange(n, dtype=np.int32) // bucket_size
    out = full((-(-n // bucket_size), num_segments) + rows, fill, dtype)
    out = getattr(out.at[buckets, ids], op)(data, mode="drop", unique_indices=unique_indices)
    return lax.convert_element_type(reducer(out, axis=0), dtype)


def segment_sum(data: Any, segment_ids: Any, num_segments: int | None = None,
                indices_are_sorted: bool = False, unique_indices: bool = False,
                bucket_size: int | None = None, mode: Any = None) -> Any:
    """The sum of the rows of ``data`` in each segment (0 for an empty one).

    ``num_segments`` must be static under ``jit`` (it is the result's length);
    ``indices_are_sorted`` and ``unique_indices`` are promises about ``segment_ids`` (as for
    ``x.at[i]``; ``segment_prod`` differentiates only with ``unique_indices=True``, as in JAX).
    """
    return _segment("segment_sum", "add", _sum, data, segment_ids, num_segments,
                    bucket_size, mode, indices_are_sorted, unique_indices)


def segment_prod(data: Any, segment_ids: Any, num_segments: int | None = None,
                 indices_are_sorted: bool = False, unique_indices: bool = False,
                 bucket_size: int | None = None, mode: Any = None) -> Any:
    """The product of the rows of ``data`` in each segment (1 for an empty one)."""
    return _segment("segment_prod", "mul", _prod, data, segment_ids, num_segments,
                    bucket_size, mode, indices_are_sorted, unique_indices)


def segment_max(data: Any, segment_ids: Any, num_segments: int | None = None,
                indices_are_sorted: bool = False, unique_indices: bool = False,
                bucket_size: int | None = None, mode: Any = None) -> Any:
    """The maximum of the rows of ``data`` in each segment (``-inf``, or the dtype's
    minimum, for an empty one)."""
    return _segment("segment_max", "max", _max, data, segment_ids, num_segments,
                    bucket_size, mode, indices_are_sorted, unique_indices)


def segment_min(data: Any, segment_ids: Any, num_segments: int | None = None,
                indices_are_sorted: bool = False, unique_indices: bool = False,
                bucket_size: int | None = None, mode: Any = None) -> Any:
    """The minimum of the rows of ``data`` in each segment (``inf``, or the dtype's
    maximum, for an empty one)."""
    return _segment("segment_min", "min", _min, data, segment_ids, num_segments,
                    bucket_size, mode, indices_are_sorted, unique_indices)
