"""Selecting and searching: ``where`` (3-arg and 1-arg), ``nonzero`` and friends with
``size=``, ``select``, ``choose``, ``compress``/``extract``, ``searchsorted``, ``digitize``,
``bincount``, ``isin``.

Functions whose output shape depends on the data (``nonzero`` without ``size``) need
concrete inputs; with ``size=`` they are written with static shapes and work under
``jit`` and ``vmap``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.errors import ConcretizationTypeError
from fungrad.lax._placement import with_out_sharding
from fungrad.numpy._indexing import _IndexUpdateRef, take
from fungrad.numpy._reductions import any as _any, cumsum, sum as _sum
from fungrad.numpy._shape import broadcast_arrays, moveaxis
from fungrad.numpy._util import (aval, check_arraylike, ensure_arraylike, promote_dtypes,
                                 scalar_like, static_int, truthy, where as _where)
from fungrad.numpy._ufuncs import remainder

_I32 = np.dtype(np.int32)


def where(condition: Any, x: Any = None, y: Any = None, /, *, size: int | None = None,
          fill_value: Any = None) -> Any:
    """``x`` where ``condition`` else ``y``; with one argument, ``nonzero(condition)``."""
    if x is None and y is None:
        check_arraylike("where", condition)
        return nonzero(condition, size=size, fill_value=fill_value)
    if size is not None or fill_value is not None:
        raise ValueError("where: size and fill_value cannot be used with the three-argument "
                         "form")
    if x is None or y is None:
        raise ValueError("where: either both or neither of x and y should be given")
    check_arraylike("where", condition, x, y)
    return _where(condition, x, y)


def _concrete_count(mask: Any, fname: str) -> int:
    value = mask.to_concrete_value() if isinstance(mask, Tracer) else np.asarray(mask)
    if value is None:
        raise ConcretizationTypeError(
            mask, f"{fname}: the size argument must be given (a static int) to use {fname} "
            "inside jit/vmap: the number of nonzero elements is data dependent")
    return int(np.count_nonzero(value))


def nonzero(a: Any, *, size: int | None = None, fill_value: Any = None) -> tuple:
    """Indices of the non-zero elements, one array per dimension.

    With ``size``, exactly ``size`` indices are returned (padded with ``fill_value``,
    default 0, or truncated), which makes the result shape static.
    """
    arr = ensure_arraylike("nonzero", a)
    shape = aval(arr).shape
    if not shape:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use "
                         "jnp.atleast_1d(scalar).nonzero() instead.")
    mask = arr if aval(arr).dtype == np.bool_ else lax.ne(arr, scalar_like(0, arr))
    size = _concrete_count(mask, "nonzero") if size is None else static_int(size,
                                                                             "nonzero: size")
    if aval(arr).size == 0 or size == 0:
        return tuple(lax.full((size,), 0, _I32) for _ in shape)
    flat = lax.reshape(mask, (aval(mask).size,))
    # position of each true element in the output; counts scattered there, then summed up
    pos = cumsum(flat, dtype=_I32)
    counts = _IndexUpdateRef(lax.full((size,), 0, _I32), pos).add(
        lax.full(aval(pos).shape, 1, _I32), mode="drop")
    flat_indices = cumsum(counts)
    out = []
    stride = aval(arr).size
    for n in shape:
        stride //= n
        out.append(lax.rem(lax.div(flat_indices, scalar_like(stride, flat_indices)),
                           scalar_like(n, flat_indices)))
    if fill_value is not None:
        fills = fill_value if isinstance(fill_value, tuple) else (fill_value,) * len(shape)
        if len(fills) != len(shape) or any(np.ndim(f) != 0 for f in fills):
            raise ValueError(f"nonzero: fill_value must be a scalar or a tuple of length "
                             f"{len(shape)}; got {fill_value}")
        past = lax.ge(lax.iota(_I32, size), _sum(flat, dtype=_I32))
        out = [_where(past, lax.convert_element_type(f, _I32), o) for f, o in zip(fills, out)]
    return tuple(out)


def flatnonzero(a: Any, *, size: int | None = None, fill_value: Any = None) -> Any:
    """Indices of the non-zero elements of the flattened array."""
    a = ensure_arraylike("flatnonzero", a)
    return nonzero(lax.reshape(a, (aval(a).size,)), size=size, fill_value=fill_value)[0]


def argwhere(a: Any, *, size: int | None = None, fill_value: Any = None) -> Any:
    """Indices of the non-zero elements as an ``(N, a.ndim)`` array."""
    a = ensure_arraylike("argwhere", a)
    if aval(a).ndim == 0:
        a = lax.reshape(a, (1,))
        result = nonzero(a, size=size, fill_value=fill_value)
        return lax.reshape(result[0], (aval(result[0]).shape[0], 0))
    result = nonzero(a, size=size, fill_value=fill_value)
    return lax.concatenate([lax.expand_dims(r, (1,)) for r in result], 1)


def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> Any:
    """Elementwise the choice of the first true condition (``default`` when none is)."""
    if len(condlist) != len(choicelist):
        raise ValueError(f"select: condlist must have length equal to choicelist "
                         f"({len(condlist)} vs {len(choicelist)})")
    if not condlist:
        raise ValueError("select: condlist must be non-empty")
    check_arraylike("select", *condlist, *choicelist, default)
    choices = promote_dtypes(default, *choicelist)
    conds = broadcast_arrays(False, *[truthy(c) for c in condlist])
    stacked = lax.concatenate([lax.expand_dims(c, (0,)) for c in conds], 0)
    which = lax.argmax(stacked, 0, _I32)
    return lax.select_n(*broadcast_arrays(which, *choices))


def choose(a: Any, choices: Sequence[Any], out: None = None, mode: str = "raise") -> Any:
    """Elementwise ``choices[a]`` (``mode`` 'raise' (concrete only), 'wrap' or 'clip')."""
    a = ensure_arraylike("choose", a)
    choices = [ensure_arraylike("choose", c) for c in choices]
    if not dtypes.is_integer(aval(a).dtype):
        raise ValueError("choose: `a` array must be integer typed")
    n = len(choices)
    if mode == "raise":
        value = a.to_concrete_value() if isinstance(a, Tracer) else np.asarray(a)
        if value is None:
            raise ConcretizationTypeError(a, "choose: mode='raise' needs concrete indices; use "
                                             "mode='wrap' or mode='clip' under jit")
        if np.any((value < 0) | (value >= n)):
            raise ValueError("choose: invalid entry in choice array")
    elif mode == "wrap":
        a = remainder(a, scalar_like(n, a))
    elif mode == "clip":
        a = lax.clamp(scalar_like(0, a), a, scalar_like(n - 1, a))
    else:
        raise ValueError(f"choose: mode={mode!r} not understood; use 'raise', 'wrap' or 'clip'")
    return lax.select_n(*broadcast_arrays(lax.convert_element_type(a, _I32),
                                          *promote_dtypes(*choices)))


def compress(condition: Any, a: Any, axis: int | None = None, *, size: int | None = None,
             fill_value: Any = 0, out: None = None) -> Any:
    """The slices of ``a`` along ``axis`` where the 1-d ``condition`` is true."""
    condition, arr = ensure_arraylike("compress", condition, a)
    condition = truthy(condition)
    if aval(condition).ndim != 1:
        raise ValueError("compress: condition must be a 1D array")
    if axis is None:
        arr = lax.reshape(arr, (aval(arr).size,))
        axis = 0
    arr = moveaxis(arr, axis, 0)
    n = min(aval(condition).shape[0], aval(arr).shape[0])
    extra = lax.slice(condition, (n,), aval(condition).shape)
    condition = lax.slice(condition, (0,), (n,))
    arr = lax.slice(arr, (0,) * aval(arr).ndim, (n,) + aval(arr).shape[1:])
    if size is None:
        if _concrete_count(extra, "compress"):
            raise ValueError("compress: condition contains entries that are out of bounds")
        idx = nonzero(condition)[0]
    else:
        idx = nonzero(condition, size=size, fill_value=n)[0]
    result = take(arr, idx, axis=0, mode="fill",
                  fill_value=None if size is None else fill_value)
    return moveaxis(result, 0, axis)


def extract(condition: Any, arr: Any, *, size: int | None = None, fill_value: Any = 0) -> Any:
    """The elements of ``arr`` (flattened) where ``condition`` is true."""
    condition, arr = ensure_arraylike("extract", condition, arr)
    return compress(lax.reshape(condition, (aval(condition).size,)),
                    lax.reshape(arr, (aval(arr).size,)), size=size, fill_value=fill_value)


def _sort_lt(x: Any, y: Any) -> Any:
    """``x < y`` in the order ``sort`` leaves: NaNs last (and equal to each other), complex
    numbers by real part, then imaginary part, as jax's sort comparator."""
    dtype = aval(x).dtype
    if dtype.kind == "c":
        xr, yr = lax.real(x), lax.real(y)
        return lax.bitwise_or(_sort_lt(xr, yr), lax.bitwise_and(
            _sort_eq(xr, yr), _sort_lt(lax.imag(x), lax.imag(y))))
    if not dtypes.is_float(dtype):
        return lax.lt(x, y)
    return lax.bitwise_or(lax.lt(x, y), lax.bitwise_and(lax.ne(y, y), lax.eq(x, x)))


def _sort_eq(x: Any, y: Any) -> Any:
    """Float ``x == y`` with NaNs equal to each other."""
    return lax.bitwise_or(lax.eq(x, y), lax.bitwise_and(lax.ne(x, x), lax.ne(y, y)))


def _sort_le(x: Any, y: Any) -> Any:
    return lax.bitwise_not(_sort_lt(y, x))


def searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None, *,
                 method: str = "scan") -> Any:
    """Indices where ``v`` would be inserted into the sorted 1-d ``a`` to keep it sorted.

    A vectorised binary search of ``ceil(log2(len(a) + 1))`` steps (``method`` is
    accepted for compatibility; 'compare_all' compares every pair instead).
    """
    a, v = ensure_arraylike("searchsorted", a, v)
    if aval(a).ndim != 1:
        raise ValueError("searchsorted: a should be 1-dimensional")
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    a, v = promote_dtypes(a, v)
    if sorter is not None:
        a = take(a, ensure_arraylike("searchsorted", sorter), mode="clip")
    n = aval(a).shape[0]
    go_right = _sort_le if side == "right" else _sort_lt
    if method == "compare_all":
        cmp = go_right(lax.expand_dims(a, tuple(range(aval(v).ndim))),
                       lax.expand_dims(v, (aval(v).ndim,)))
        return _sum(cmp, axis=-1, dtype=_I32)
    lo = lax.full(aval(v).shape, 0, _I32)
    hi = lax.full(aval(v).shape, n, _I32)
    for _ in range(int(np.ceil(np.log2(n + 1)))):
        mid = lax.div(lax.add(lo, hi), scalar_like(2, lo))
        right = lax.bitwise_and(go_right(take(a, mid, mode="clip"), v), lax.lt(lo, hi))
        lo = lax.select(right, lax.add(mid, scalar_like(1, mid)), lo)
        hi = lax.select(lax.bitwise_or(right, lax.ge(lo, hi)), hi, mid)
    return lo


def digitize(x: Any, bins: Any, right: bool = False, *, method: str | None = None) -> Any:
    """Indices of the bins (increasing or decreasing 1-d ``bins``) each ``x`` falls in."""
    x, bins = ensure_arraylike("digitize", x, bins)
    if aval(bins).ndim != 1:
        raise ValueError(f"digitize: bins must be a 1-dimensional array; got shape "
                         f"{aval(bins).shape}")
    n = aval(bins).shape[0]
    if n == 0:
        return lax.full(aval(x).shape, 0, _I32)
    side = "left" if right else "right"
    kw = {} if method is None else {"method": method}
    increasing = lax.ge(lax.slice(bins, (n - 1,), (n,)), lax.slice(bins, (0,), (1,)))
    up = searchsorted(bins, x, side=side, **kw)
    down = lax.sub(scalar_like(n, up), searchsorted(lax.rev(bins, (0,)), x, side=side, **kw))
    return lax.select(lax.reshape(increasing, ()), up, down)


def bincount(x: Any, weights: Any = None, minlength: int = 0, *,
             length: int | None = None, out_sharding: Any = None) -> Any:
    """Counts (or summed ``weights``) of each non-negative integer in the 1-d ``x``.

    ``length`` fixes the output size (needed under ``jit``); larger values are dropped.
    ``out_sharding`` puts the result on a device (see ``fungrad.lax._placement``; None
    leaves it where the operation runs).
    """
    x = ensure_arraylike("bincount", x)
    if aval(x).dtype == np.bool_:
        x = lax.convert_element_type(x, _I32)
    if not dtypes.is_integer(aval(x).dtype):
        raise TypeError(f"bincount: x must have an integer type; got {aval(x).dtype}")
    if aval(x).ndim != 1:
        raise ValueError("bincount: only 1-dimensional input is supported")
    minlength = static_int(minlength, "bincount: minlength")
    if length is None:
        value = x.to_concrete_value() if isinstance(x, Tracer) else np.asarray(x)
        if value is None:
            raise ConcretizationTypeError(x, "bincount: pass a static length= to use bincount "
                                             "inside jit/vmap")
        length = max(minlength, int(value.max()) + 1 if value.size else 0)
    if weights is None:
        weights = lax.full(aval(x).shape, 1, dtypes.default_int_dtype())
    else:
        weights = ensure_arraylike("bincount", weights)
        if aval(weights).shape != aval(x).shape:
            raise ValueError(f"bincount: weights of shape {aval(weights).shape} must match x "
                             f"of shape {aval(x).shape}")
    x = lax.max(x, scalar_like(0, x))
    out = _IndexUpdateRef(lax.full((length,), 0, aval(weights).dtype), x).add(weights,
                                                                             mode="drop")
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "jnp.bincount")


def isin(element: Any, test_elements: Any, assume_unique: bool = False, invert: bool = False,
         *, method: str = "auto") -> Any:
    """Elementwise: is ``element`` in ``test_elements``."""
    element, test = ensure_arraylike("isin", element, test_elements)
    element, test = promote_dtypes(element, test)
    flat_test = lax.reshape(test, (aval(test).size,))
    eq = lax.eq(lax.expand_dims(element, (aval(element).ndim,)),
                lax.reshape(flat_test, (1,) * aval(element).ndim + (aval(test).size,)))
    out = _any(eq, axis=-1)
    return lax.bitwise_not(out) if invert else out


def place(arr: Any, mask: Any, vals: Any, *, inplace: bool = True) -> Any:
    """A copy of ``arr`` with its elements where ``mask`` is true replaced, in order, by
    ``vals`` (repeated as often as needed); traceable: every element is a candidate."""
    if inplace:
        raise ValueError("place: fungrad arrays are immutable; pass inplace=False")
    arr, mask, vals = ensure_arraylike("place", arr, mask, vals)
    n = aval(arr).size
    if aval(mask).size != n:
        raise ValueError(f"place: arr and mask must be the same size, got shapes "
                         f"{aval(arr).shape} and {aval(mask).shape}")
    if not aval(vals).size:
        raise ValueError("place: cannot place values from an empty vals")
    if not n:
        return arr
    (positions,) = nonzero(lax.reshape(mask, (n,)), size=n, fill_value=n)
    vals = lax.reshape(vals, (aval(vals).size,))
    repeats = -(-n // aval(vals).size)
    vals = lax.reshape(lax.broadcast_in_dim(vals, (repeats, aval(vals).size), (1,)),
                       (repeats * aval(vals).size,))
    vals = lax.convert_element_type(lax.slice(vals, (0,), (n,)), aval(arr).dtype)
    flat = _IndexUpdateRef(lax.reshape(arr, (n,)), positions).set(vals, mode="drop")
    return lax.reshape(flat, aval(arr).shape)


__all__ = ["where", "place", "nonzero", "flatnonzero", "argwhere", "select", "choose", "compress",
           "extract", "searchsorted", "digitize", "bincount", "isin"]
