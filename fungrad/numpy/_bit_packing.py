"""``packbits`` and ``unpackbits``: booleans stored eight to a ``uint8`` and back."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad.numpy._reductions import sum as _sum
from fungrad.numpy._shape import swapaxes
from fungrad.numpy._util import aval, canonicalize_axis, ensure_arraylike, scalar_like, static_int

_U8 = np.dtype(np.uint8)


def _bit_values(fname: str, bitorder: str) -> np.ndarray:
    """The value of each of a byte's eight bits, in ``bitorder``."""
    if bitorder not in ("big", "little"):
        raise ValueError(f"{fname}: bitorder must be 'big' or 'little', got {bitorder!r}")
    values = (1 << np.arange(8)).astype(np.uint8)
    return values[::-1].copy() if bitorder == "big" else values


def _along_last(fname: str, arr: Any, axis: int | None) -> tuple[Any, int]:
    if axis is None:
        return lax.reshape(arr, (aval(arr).size,)), 0
    return arr, canonicalize_axis(axis, aval(arr).ndim, fname)


def packbits(a: Any, axis: int | None = None, bitorder: str = "big") -> Any:
    """The nonzero-ness of ``a``'s elements along ``axis`` (the flattened array by default)
    packed eight to a ``uint8``, the last byte padded with zero bits."""
    arr = ensure_arraylike("packbits", a)
    if dtypes.kind(aval(arr).dtype) not in "iub":
        raise TypeError(f"packbits: a must have an integer or boolean type, got "
                        f"{aval(arr).dtype}")
    values = _bit_values("packbits", bitorder)
    arr, axis = _along_last("packbits", arr, axis)
    bits = swapaxes(lax.convert_element_type(lax.ne(arr, scalar_like(0, arr)), _U8), axis, -1)
    n = aval(bits).shape[-1]
    padding = -n % 8
    if padding:
        bits = lax.pad(bits, np.uint8(0), [(0, 0, 0)] * (aval(bits).ndim - 1) + [(0, padding, 0)])
    shape = aval(bits).shape
    bits = lax.reshape(bits, shape[:-1] + (shape[-1] // 8, 8))
    packed = _sum(lax.mul(bits, lax.broadcast_in_dim(values, aval(bits).shape,
                                                     (aval(bits).ndim - 1,))), axis=-1,
                  dtype=_U8)
    return swapaxes(packed, axis, -1)


def unpackbits(a: Any, axis: int | None = None, count: int | None = None,
               bitorder: str = "big") -> Any:
    """The bits of the ``uint8`` array ``a`` along ``axis`` (the flattened array by
    default) as ``uint8`` zeros and ones, eight per byte; ``count`` keeps that many (or pads
    with zeros to that many)."""
    arr = ensure_arraylike("unpackbits", a)
    if aval(arr).dtype != _U8:
        raise TypeError(f"unpackbits: a must have type uint8, got {aval(arr).dtype}")
    values = _bit_values("unpackbits", bitorder)
    arr, axis = _along_last("unpackbits", arr, axis)
    arr = swapaxes(arr, axis, -1)
    shape = aval(arr).shape
    wide = lax.broadcast_in_dim(arr, shape + (8,), tuple(range(len(shape))))
    bits = lax.ne(lax.bitwise_and(wide, lax.broadcast_in_dim(values, shape + (8,), (len(shape),))),
                  scalar_like(0, wide))
    bits = lax.reshape(lax.convert_element_type(bits, _U8), shape[:-1] + (shape[-1] * 8,))
    if count is not None:
        count = static_int(count, "unpackbits: count")
        have = aval(bits).shape[-1]
        stop = count if count >= 0 else max(have + count, 0)
        if stop > have:
            bits = lax.pad(bits, np.uint8(0),
                           [(0, 0, 0)] * (aval(bits).ndim - 1) + [(0, stop - have, 0)])
        else:
            bits = lax.slice_in_dim(bits, 0, stop, axis=aval(bits).ndim - 1)
    return swapaxes(bits, axis, -1)


__all__ = ["packbits", "unpackbits"]
