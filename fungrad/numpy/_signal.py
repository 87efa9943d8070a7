"""Helpers for sampled signals: ``unwrap`` (phase unwrapping) and ``trim_zeros`` (a filter's
leading and trailing zeros)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.errors import ConcretizationTypeError
from fungrad.numpy._joining import concatenate
from fungrad.numpy._misc import diff
from fungrad.numpy._reductions import cumsum
from fungrad.numpy._shape import slice_axis
from fungrad.numpy._ufuncs import absolute, floor_divide, remainder, true_divide
from fungrad.numpy._util import (aval, canonicalize_axis, ensure_arraylike, promote_dtypes,
                                 scalar_like, where as _where)


def unwrap(p: Any, discont: Any = None, axis: int = -1, period: Any = 2 * np.pi) -> Any:
    """``p`` with every jump larger than ``discont`` (default ``period / 2``) along ``axis``
    replaced by its equivalent modulo ``period``: a phase measured modulo 2 pi made
    continuous again."""
    p, period = promote_dtypes(*ensure_arraylike("unwrap", p, period))
    if aval(p).dtype.kind == "c":
        raise ValueError(f"unwrap: complex inputs are not supported, got {aval(p).dtype}")
    axis = canonicalize_axis(axis, aval(p).ndim, "unwrap")
    if aval(p).shape[axis] == 0:
        return p
    integer = dtypes.is_integer(aval(p).dtype)
    half = floor_divide(period, 2) if integer else true_divide(period, 2)
    discont = half if discont is None else discont
    step = diff(p, axis=axis)
    # each step taken to its equivalent in [-half, half), a step of exactly +half kept
    wrapped = lax.sub(remainder(lax.add(step, half), period), half)
    wrapped = _where(lax.bitwise_and(lax.eq(wrapped, lax.neg(half)),
                                     lax.gt(step, scalar_like(0, step))), half, wrapped)
    correction = _where(lax.lt(absolute(step), discont), scalar_like(0, step),
                        lax.sub(wrapped, step))
    rest = lax.add(slice_axis(p, axis, 1, aval(p).shape[axis]), cumsum(correction, axis=axis))
    return concatenate([slice_axis(p, axis, 0, 1), rest], axis=axis)


def trim_zeros(filt: Any, trim: str = "fb", axis: int | Sequence[int] | None = None) -> Any:
    """``filt`` without its leading (``"f"`` in ``trim``) and trailing (``"b"``) all-zero
    slices along ``axis`` (every axis by default). The result's shape depends on the
    values, so ``filt`` must be concrete (not traced under ``jit``)."""
    filt = ensure_arraylike("trim_zeros", filt)
    value = filt.to_concrete_value() if isinstance(filt, Tracer) else np.asarray(filt)
    if value is None:
        raise ConcretizationTypeError(filt, "trim_zeros: the result's shape depends on the "
                                            "values of filt, which must be concrete")
    ndim = value.ndim
    axes = range(ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    axes = {canonicalize_axis(a, ndim, "trim_zeros") for a in axes}
    front, back = "f" in trim.lower(), "b" in trim.lower()
    index = []
    for ax in range(ndim):
        if ax not in axes or not (front or back):
            index.append(slice(None))
            continue
        nonzero = np.flatnonzero(np.any(value != 0, axis=tuple(a for a in range(ndim) if a != ax)))
        if not nonzero.size:
            index.append(slice(0, 0))
            continue
        index.append(slice(int(nonzero[0]) if front else None,
                           int(nonzero[-1]) + 1 if back else None))
    return filt[tuple(index)]


__all__ = ["unwrap", "trim_zeros"]
