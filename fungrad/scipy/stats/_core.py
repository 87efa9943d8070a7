"""Summary statistics of ``jax.scipy.stats``: ``mode``, ``rankdata`` and ``sem``, written with
``fungrad.numpy`` and ``lax`` (a ``size``-bounded ``unique``, a sort with its permutation)
so that their shapes are static and they compile and batch."""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.util import canonicalize_axis
from fungrad.numpy._util import ensure_arraylike, promote_args_inexact
from fungrad.transforms.api import vmap

_NAN_POLICIES = ("propagate", "omit", "raise")


def _check_nan_policy(fname: str, nan_policy: str) -> None:
    """Only ``"propagate"`` is implemented: whether a traced array holds NaNs is not known."""
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(f"Illegal nan_policy value {nan_policy!r}; expected one of "
                         "{'propagate', 'omit', 'raise'}")
    if nan_policy == "omit":
        raise NotImplementedError(f"{fname}: logic for `nan_policy` of omit is not implemented")
    if nan_policy == "raise":
        raise NotImplementedError(f"In order to best JIT compile `{fname}`, we cannot know "
                                  "whether `x` contains nans. Please check if nans exist in "
                                  f"`x` outside of the `{fname}` function.")


class ModeResult(NamedTuple):
    """``mode``'s result: the most common values and how often each occurs."""
    mode: Any
    count: Any


def _mode_1d(x: Any) -> tuple[Any, Any]:
    if x.size == 0:
        nan = jnp.array(np.nan, dtype=dtypes.default_float_dtype())
        return nan, jnp.array(0, dtype=dtypes.default_float_dtype())
    values, counts = jnp.unique(x, return_counts=True, size=x.size)
    return values[jnp.argmax(counts)], counts.max()


def mode(a: Any, axis: int | None = 0, nan_policy: str = "propagate",
         keepdims: bool = False) -> ModeResult:
    """The most common value along ``axis`` (the smallest of equally common ones) and its
    count (``jax.scipy.stats.mode``); ``axis=None`` flattens ``a``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.scipy.stats import mode
        >>> mode(jnp.array([2, 4, 1, 1, 3, 4, 4, 2, 3]))
        ModeResult(mode=Array(4, dtype=int32), count=Array(3, dtype=int32))
    """
    x = jnp.atleast_1d(ensure_arraylike("mode", a))
    _check_nan_policy("mode", nan_policy)
    if axis is None:
        kept = (1,) * x.ndim if keepdims else ()
        x, axis = x.ravel(), 0
    else:
        axis = canonicalize_axis(axis, x.ndim)
        kept = tuple(1 if i == axis else s for i, s in enumerate(x.shape) if keepdims or i != axis)
    x = jnp.moveaxis(x, axis, 0)
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    values, counts = vmap(_mode_1d, in_axes=1)(x)
    return ModeResult(values.reshape(kept), counts.reshape(kept))


_RANK_METHODS = ("average", "min", "max", "dense", "ordinal")


def _ranks_1d(a: Any, method: str) -> Any:
    out_dtype = dtypes.default_float_dtype()
    arr, order = lax.sort_key_val(a, jnp.arange(a.size))
    inverse = jnp.empty_like(order).at[order].set(jnp.arange(a.size, dtype=order.dtype))
    if method == "ordinal":
        return (inverse + 1).astype(out_dtype)
    first = jnp.concatenate([jnp.array([True]), arr[1:] != arr[:-1]])  # starts of tie groups
    dense = first.cumsum()[inverse]
    if method == "dense":
        return dense.astype(out_dtype)
    # count[k]: how many values are below the (k + 1)-th distinct value
    count = jnp.nonzero(first, size=arr.size + 1, fill_value=first.size)[0].astype(out_dtype)
    if method == "max":
        return count[dense]
    if method == "min":
        return count[dense - 1] + 1
    return .5 * (count[dense] + count[dense - 1] + 1)


def rankdata(a: Any, method: str = "average", *, axis: int | None = None,
             nan_policy: str = "propagate") -> Any:
    """The ranks of the data, from 1 (``jax.scipy.stats.rankdata``): ties get the
    ``"average"``, ``"min"`` or ``"max"`` of their ranks, ``"dense"`` ranks the distinct
    values, ``"ordinal"`` breaks ties by position. ``axis=None`` ranks the flattened array;
    any NaN makes every rank NaN.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.scipy.stats import rankdata
        >>> rankdata(jnp.array([1, 3, 2, 3]))
        Array([1. , 3.5, 2. , 3.5], dtype=float32)
    """
    a = ensure_arraylike("rankdata", a)
    _check_nan_policy("rankdata", nan_policy)
    if method not in _RANK_METHODS:
        raise ValueError(f"unknown method '{method}'")
    if axis is not None:
        return jnp.apply_along_axis(rankdata, axis, a, method)
    a = jnp.ravel(a)
    return lax.cond(jnp.any(jnp.isnan(a)),
                    lambda a: jnp.full_like(a, jnp.nan, dtypes.default_float_dtype()),
                    lambda a: _ranks_1d(a, method), a)


def sem(a: Any, axis: int | None = 0, ddof: int = 1, nan_policy: str = "propagate", *,
        keepdims: bool = False) -> Any:
    """The standard error of the mean, ``std(a, ddof=ddof) / sqrt(n)``
    (``jax.scipy.stats.sem``); ``nan_policy="omit"`` leaves NaNs out of ``std`` and ``n``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.scipy.stats import sem
        >>> sem(jnp.array([1., 2., 3., 4.]))
        Array(0.6454972, dtype=float32)
    """
    b, = promote_args_inexact("sem", a)
    if nan_policy == "propagate":
        size = b.size if axis is None else b.shape[axis]
        return b.std(axis, ddof=ddof, keepdims=keepdims) / jnp.sqrt(size).astype(b.dtype)
    if nan_policy == "omit":
        count = (~jnp.isnan(b)).sum(axis, keepdims=keepdims)
        return jnp.nanstd(b, axis, ddof=ddof, keepdims=keepdims) / jnp.sqrt(count).astype(b.dtype)
    raise ValueError(f"{nan_policy} is not supported")
