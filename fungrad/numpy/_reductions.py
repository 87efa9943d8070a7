"""Reductions (``sum``, ``mean``, ``var``, ``max``, ``argmax``, ``all``, the ``nan*``
family, ...) and cumulative reductions, lowered to ``lax.reduce_*``/``lax.cum*``.

All of them take ``axis`` (None, an int or a tuple, negative allowed) and
``keepdims``; most take ``where`` (a mask of the elements to include) and
``dtype``. Results are never weakly typed, as in JAX.
"""
from __future__ import annotations

import builtins
import functools
from typing import Any, Callable

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.array import Array
from fungrad.config import config
from fungrad._core.util import prod as _prod
from fungrad.lax._ops import intn_compute
from fungrad.numpy._util import (aval, broadcast_to, canonicalize_axes, canonicalize_axis,
                                 check_user_dtype, ensure_arraylike, promote_dtypes_inexact,
                                 promote_dtypes_numeric, promote_integer_dtype, scalar_like,
                                 to_inexact_dtype, where as _where)


def _upcast_f16(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype in dtypes.half_floats else dtype


def _init_value(dtype: np.dtype, value: float) -> Any:
    """The identity ``value`` as a scalar of ``dtype`` (+-inf becomes the integer limits)."""
    if dtype == np.bool_:
        return lax.convert_element_type(value > 0, dtype)
    if dtypes.is_integer(dtype) and np.isinf(value):
        info = dtypes.iinfo(dtype)
        value = info.min if value < 0 else info.max
    return lax.convert_element_type(value, dtype)


class _Reducer:
    """How one reduction combines values: the lax reducer, its binary op and identity."""

    def __init__(self, name: str, reduce: str, op: str, init: float, has_identity: bool = True,
                 bool_reduce: str | None = None, bool_op: str | None = None) -> None:
        self.name, self.init, self.has_identity = name, init, has_identity
        self._fns = ((getattr(lax, f"{reduce}_p"), getattr(lax, op)),
                     (getattr(lax, f"{bool_reduce or reduce}_p"), getattr(lax, bool_op or op)))

    def fns(self, dtype: np.dtype) -> tuple[Any, Callable]:
        """The reduction primitive and the binary op for ``dtype`` (bools reduce logically)."""
        return self._fns[dtype.kind == "b"]


_SUM = _Reducer("sum", "reduce_sum", "add", 0, bool_reduce="reduce_or", bool_op="bitwise_or")
_PROD = _Reducer("prod", "reduce_prod", "mul", 1, bool_reduce="reduce_and",
                 bool_op="bitwise_and")
_MAX = _Reducer("max", "reduce_max", "max", -np.inf, has_identity=False)
_MIN = _Reducer("min", "reduce_min", "min", np.inf, has_identity=False)
_ALL = _Reducer("all", "reduce_and", "bitwise_and", True)
_ANY = _Reducer("any", "reduce_or", "bitwise_or", False)


def _check_where(fname: str, where: Any) -> Any:
    if where is None:
        return None
    where = ensure_arraylike(fname, where)
    if aval(where).dtype != np.bool_:
        raise TypeError(f"{fname}: where must be a boolean array, got dtype {aval(where).dtype}")
    return where


# Eager reductions that need no conversion at all (the common ``x.sum()``, ``x.max(0)``):
# signature -> (primitive, sorted axes), filled by the general path, bounded in size.
_PLAIN_EAGER: dict = {}


def _reduction(a: Any, r: _Reducer, axis: Any, dtype: Any, keepdims: bool, initial: Any,
               where: Any, *, preproc: Callable | None = None, promote_integers: bool = False,
               upcast_f16: bool = False) -> Any:
    plain_key = None
    if (type(a) is Array and not a.weak_type and dtype is None and initial is None
            and where is None and not keepdims and _plain_axis(axis)):
        plain_key = (r, a._value.shape, a._value.dtype, axis, promote_integers, upcast_f16,
                     config.enable_x64)
        plain = _PLAIN_EAGER.get(plain_key)
        if plain is not None:
            return plain[0].bind(a, axes=plain[1])
    original = a
    a = ensure_arraylike(r.name, a)
    if where is not None:
        where = _check_where(r.name, where)
        if initial is None and not r.has_identity:
            raise ValueError(f"reduction operation {r.name} does not have an identity, so to "
                             "use a where mask one has to specify 'initial'")
    if preproc is not None:
        a = preproc(a)
    a_aval = aval(a)
    plan_args = (r, a_aval.shape, a_aval.dtype, axis,
                 None if dtype is None else check_user_dtype(dtype, r.name),
                 promote_integers, upcast_f16, initial is None, config.enable_x64)
    if _plain_axis(axis):  # the common case, cached
        axes, sorted_axes, result_dtype, comp_dtype = _reduction_plan(*plan_args)
    else:  # a list, NumPy integers, or a float that must not hit the plan of the equal int
        axes, sorted_axes, result_dtype, comp_dtype = _reduction_plan.__wrapped__(*plan_args)
    if comp_dtype != a_aval.dtype:
        a = lax.convert_element_type(a, comp_dtype)
    reduce_p, op = r.fns(comp_dtype)
    if where is not None:
        a = _where(where, a, _init_value(comp_dtype, r.init))
    if comp_dtype in dtypes.intn:
        result = intn_compute(functools.partial(reduce_p.bind, axes=sorted_axes), (a,))
    else:
        result = reduce_p.bind(a, axes=sorted_axes)
        if plain_key is not None and a is original and comp_dtype == result_dtype:
            if len(_PLAIN_EAGER) > 4096:
                _PLAIN_EAGER.clear()
            _PLAIN_EAGER[plain_key] = (reduce_p, sorted_axes)
    if initial is not None:
        init = ensure_arraylike(r.name, initial)
        if aval(init).ndim:
            raise ValueError(f"{r.name}: initial value must be a scalar, got shape "
                             f"{aval(init).shape}")
        result = op(lax.convert_element_type(init, comp_dtype), result)
    if keepdims:
        result = lax.expand_dims(result, axes)
    return lax.convert_element_type(result, result_dtype)  # strong, as in JAX


def _plain_axis(axis: Any) -> bool:
    """Whether ``axis`` may key the plan cache: None, an int, or a tuple of ints. (``1.0``
    equals ``1`` and hashes alike, so anything else is planned, and refused, uncached.)"""
    return axis is None or type(axis) is int or (
        type(axis) is tuple and builtins.all(type(a) is int for a in axis))


@functools.lru_cache(maxsize=1024)
def _reduction_plan(r: _Reducer, shape: tuple, dtype: np.dtype, axis: Any,
                    user_dtype: np.dtype | None, promote_integers: bool, upcast_f16: bool,
                    no_initial: bool, x64: bool) -> tuple:
    """The static decisions of a reduction, cached per signature (asked on every eager
    call): the canonical axes (as given and sorted), the result dtype and the dtype it
    computes in (16-bit floats accumulate in float32). ``x64`` keys the cache: the default
    int width depends on it."""
    axes = canonicalize_axes(axis, len(shape), r.name)
    if no_initial and not r.has_identity and builtins.any(shape[d] == 0 for d in axes):
        raise ValueError(f"zero-size array to reduction operation {r.name} which has no "
                         "identity")
    result = user_dtype or (promote_integer_dtype(dtype, r.name) if promote_integers
                            else dtype)
    comp = _upcast_f16(result) if upcast_f16 and dtypes.is_inexact(result) else result
    return axes, tuple(sorted(axes)), result, comp


def _to_numeric(a: Any) -> Any:
    return a if aval(a).dtype.kind != "b" else promote_dtypes_numeric(a)[0]


def _to_bool(a: Any) -> Any:
    if aval(a).dtype.kind == "c":
        a = lax.real(a)
    return lax.convert_element_type(a, np.bool_)


def sum(a: Any, axis: Any = None, dtype: Any = None, out: None = None,  # noqa: A001
        keepdims: bool = False, initial: Any = None, where: Any = None,
        promote_integers: bool = True) -> Any:
    """Sum over ``axis``; small integers and bools accumulate in the default int type."""
    return _reduction(a, _SUM, axis, dtype, keepdims, initial, where, preproc=_to_numeric,
                      promote_integers=promote_integers, upcast_f16=dtype is None)


def prod(a: Any, axis: Any = None, dtype: Any = None, out: None = None, keepdims: bool = False,
         initial: Any = None, where: Any = None, promote_integers: bool = True) -> Any:
    """Product over ``axis``."""
    return _reduction(a, _PROD, axis, dtype, keepdims, initial, where, preproc=_to_numeric,
                      promote_integers=promote_integers, upcast_f16=dtype is None)


def max(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = None) -> Any:
    """Maximum over ``axis`` (NaN propagates; empty needs ``initial``)."""
    return _reduction(a, _MAX, axis, None, keepdims, initial, where)


def min(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = None) -> Any:
    """Minimum over ``axis``."""
    return _reduction(a, _MIN, axis, None, keepdims, initial, where)


amax, amin = max, min


def all(a: Any, axis: Any = None, out: None = None, keepdims: bool = False, *,  # noqa: A001
        where: Any = None) -> Any:
    """Whether all elements along ``axis`` are true."""
    return _reduction(a, _ALL, axis, None, keepdims, None, where, preproc=_to_bool)


def any(a: Any, axis: Any = None, out: None = None, keepdims: bool = False, *,  # noqa: A001
        where: Any = None) -> Any:
    """Whether any element along ``axis`` is true."""
    return _reduction(a, _ANY, axis, None, keepdims, None, where, preproc=_to_bool)


def _count(a: Any, axes: tuple, keepdims: bool, where: Any, dtype: np.dtype) -> Any:
    if where is None:
        shape = aval(a).shape
        return lax.convert_element_type(_prod(shape[d] for d in axes), dtype)
    return sum(broadcast_to(where, aval(a).shape), axes, dtype=dtype, keepdims=keepdims)


def mean(a: Any, axis: Any = None, dtype: Any = None, out: None = None, keepdims: bool = False,
         *, where: Any = None) -> Any:
    """Arithmetic mean over ``axis`` (integers give the default float type)."""
    a = ensure_arraylike("mean", a)
    axes = canonicalize_axes(axis, aval(a).ndim, "mean")
    result_dtype = check_user_dtype(dtype, "mean") or to_inexact_dtype(aval(a).dtype)
    comp = _upcast_f16(result_dtype) if dtype is None else result_dtype
    where = _check_where("mean", where)
    total = sum(a, axes, dtype=comp, keepdims=keepdims, where=where)
    return lax.convert_element_type(lax.div(total, _count(a, axes, keepdims, where, comp)),
                                    result_dtype)


def _var_dtypes(fname: str, a_dtype: np.dtype, dtype: np.dtype | None
                ) -> tuple[np.dtype, np.dtype]:
    if dtype is not None:
        if a_dtype.kind == "c" and dtype.kind != "c":  # as JAX: the meaning is unclear
            raise ValueError(f"{fname}: a real dtype ({dtype.name}) for the variance of complex "
                             "values is not supported; take abs() first or pass a complex dtype")
        return _upcast_f16(dtype), dtype
    if not dtypes.is_inexact(a_dtype):
        out = to_inexact_dtype(a_dtype)
        return _upcast_f16(out), out
    real = np.dtype(np.float32 if a_dtype == np.complex64 else np.float64) \
        if a_dtype.kind == "c" else a_dtype
    return _upcast_f16(a_dtype), dtypes.canonicalize_dtype(real)


def _squared_deviation(a: Any, a_mean: Any) -> Any:
    centered = lax.sub(a, a_mean)
    if aval(centered).dtype.kind == "c":
        return lax.real(lax.mul(centered, lax.conj(centered)))
    return lax.mul(centered, centered)


def var(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, mean: Any = None,
        correction: int | float | None = None) -> Any:
    """Variance over ``axis`` with ``ddof`` (or ``correction``) degrees of freedom removed."""
    a = ensure_arraylike("var", a)
    correction = ddof if correction is None else correction
    axes = canonicalize_axes(axis, aval(a).ndim, "var")
    where = _check_where("var", where)
    comp, result_dtype = _var_dtypes("var", aval(a).dtype, check_user_dtype(dtype, "var"))
    a = lax.convert_element_type(a, comp)
    a_mean = (_mean_fn(a, axes, dtype=comp, keepdims=True, where=where) if mean is None
              else lax.convert_element_type(ensure_arraylike("var", mean), comp))
    sq = _squared_deviation(a, a_mean)
    comp = aval(sq).dtype
    normalizer = lax.sub(_count(a, axes, keepdims, where, comp),
                         lax.convert_element_type(correction, comp))
    total = sum(sq, axes, dtype=comp, keepdims=keepdims, where=where)
    result = lax.convert_element_type(lax.div(total, normalizer), result_dtype)
    # no degrees of freedom left (ddof >= count): NaN, as JAX (promoting an integer
    # ``dtype``'s result to a weakly typed float, as JAX's ``where`` does)
    return _where(lax.gt(normalizer, scalar_like(0, normalizer)), result, np.nan)


_mean_fn = mean


def std(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, mean: Any = None,
        correction: int | float | None = None) -> Any:
    """Standard deviation: ``sqrt(var(...))``."""
    a = ensure_arraylike("std", a)
    axis = canonicalize_axes(axis, aval(a).ndim, "std")
    if dtype is not None and not dtypes.is_inexact(check_user_dtype(dtype, "std")):
        raise ValueError(f"dtype argument to std must be inexact; got {dtype}")
    return lax.sqrt(var(a, axis, dtype, ddof=ddof, keepdims=keepdims, where=where, mean=mean,
                        correction=correction))


def ptp(a: Any, axis: Any = None, out: None = None, keepdims: bool = False) -> Any:
    """Range (max - min) over ``axis``."""
    a = ensure_arraylike("ptp", a)
    axis = canonicalize_axes(axis, aval(a).ndim, "ptp")
    return lax.sub(max(a, axis, keepdims=keepdims), min(a, axis, keepdims=keepdims))


def count_nonzero(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Number of non-zero elements along ``axis`` (default int dtype)."""
    a = ensure_arraylike("count_nonzero", a)
    axis = canonicalize_axes(axis, aval(a).ndim, "count_nonzero")
    return sum(lax.ne(a, scalar_like(0, a)), axis, dtype=dtypes.default_int_dtype(),
               keepdims=keepdims)


def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False,
            keepdims: bool = False) -> Any:
    """Weighted average over ``axis`` (``weights`` may be 1-d along a single axis)."""
    a = ensure_arraylike("average", a)
    axes = canonicalize_axes(axis, aval(a).ndim, "average")
    if weights is None:
        a, = promote_dtypes_inexact(a)
        avg = mean(a, axes, keepdims=keepdims)
        weights_sum = lax.full((), _prod(aval(a).shape[d] for d in axes), aval(avg).dtype)
    else:
        a, weights = promote_dtypes_inexact(a, ensure_arraylike("average", weights))
        a_shape, w_shape = aval(a).shape, aval(weights).shape
        if a_shape != w_shape:
            if axis is None:
                raise ValueError("average: axis must be specified when shapes of a and "
                                 "weights differ")
            if w_shape != tuple(a_shape[d] for d in axes):
                raise ValueError(f"average: shape of weights {w_shape} must be consistent "
                                 f"with shape of a {a_shape} along axis {axis}")
            order = tuple(int(i) for i in np.argsort(axes))
            weights = lax.broadcast_in_dim(lax.transpose(weights, order),
                                           tuple(a_shape[d] if d in axes else 1
                                                 for d in range(len(a_shape))),
                                           tuple(sorted(axes)))
        weights_sum = sum(weights, axes, keepdims=keepdims)
        avg = lax.div(sum(lax.mul(a, weights), axes, keepdims=keepdims), weights_sum)
    if returned:
        if aval(weights_sum).shape != aval(avg).shape:
            weights_sum = broadcast_to(weights_sum, aval(avg).shape)
        return avg, weights_sum
    return avg


# --------------------------------------------------------------------------- arg reductions

def _refuse_complex(fname: str, a: Any) -> None:
    if aval(a).dtype.kind == "c":
        raise TypeError(f"{fname} does not accept dtype {aval(a).dtype.name}: complex values "
                        "have no ordering")


def _arg_reduction(fname: str, lax_fn: str, a: Any, axis: Any, keepdims: bool | None) -> Any:
    a = ensure_arraylike(fname, a)
    _refuse_complex(fname, a)
    if axis is None:
        flat = lax.reshape(a, (aval(a).size,))
        if aval(flat).shape[0] == 0:
            raise ValueError(f"attempt to get {fname} of an empty sequence")
        out = getattr(lax, lax_fn)(flat, 0, dtypes.default_int_dtype())
        return lax.reshape(out, (1,) * aval(a).ndim) if keepdims else out
    ax = canonicalize_axis(axis, aval(a).ndim, fname)
    if aval(a).shape[ax] == 0:
        raise ValueError(f"attempt to get {fname} of an empty sequence")
    out = getattr(lax, lax_fn)(a, ax, dtypes.default_int_dtype())
    return lax.expand_dims(out, (ax,)) if keepdims else out


def argmax(a: Any, axis: Any = None, out: None = None, keepdims: bool | None = None) -> Any:
    """Index of the maximum along ``axis`` (of the flattened array when None)."""
    return _arg_reduction("argmax", "argmax", a, axis, keepdims)


def argmin(a: Any, axis: Any = None, out: None = None, keepdims: bool | None = None) -> Any:
    """Index of the minimum along ``axis``."""
    return _arg_reduction("argmin", "argmin", a, axis, keepdims)


def _nan_arg(fname: str, fn: Callable, a: Any, fill: float, axis: Any, keepdims: Any) -> Any:
    a = ensure_arraylike(fname, a)
    _refuse_complex(fname, a)
    if not dtypes.is_inexact(aval(a).dtype):
        return fn(a, axis=axis, keepdims=keepdims)
    nan_mask = lax.ne(a, a)
    res = fn(_where(nan_mask, scalar_like(fill, a), a), axis=axis, keepdims=keepdims)
    all_nan = all(nan_mask, axis=axis, keepdims=bool(keepdims))
    return _where(all_nan, lax.convert_element_type(-1, aval(res).dtype), res)


def nanargmax(a: Any, axis: Any = None, out: None = None, keepdims: bool | None = None) -> Any:
    """``argmax`` ignoring NaNs (-1 where all are NaN)."""
    return _nan_arg("nanargmax", argmax, a, -np.inf, axis, keepdims)


def nanargmin(a: Any, axis: Any = None, out: None = None, keepdims: bool | None = None) -> Any:
    """``argmin`` ignoring NaNs (-1 where all are NaN)."""
    return _nan_arg("nanargmin", argmin, a, np.inf, axis, keepdims)


# --------------------------------------------------------------------------- nan reductions

def _nan_reduction(fname: str, fn: Callable, a: Any, fill: float, nan_if_all_nan: bool,
                   axis: Any, keepdims: bool, **kwargs: Any) -> Any:
    a = ensure_arraylike(fname, a)
    axis = canonicalize_axes(axis, aval(a).ndim, fname)
    if not dtypes.is_inexact(aval(a).dtype):
        return fn(a, axis=axis, keepdims=keepdims, **kwargs)
    nan_mask = lax.ne(a, a)
    out = fn(_where(nan_mask, _init_value(aval(a).dtype, fill), a), axis=axis,
             keepdims=keepdims, **kwargs)
    if nan_if_all_nan:
        return _where(all(nan_mask, axis=axis, keepdims=keepdims), scalar_like(np.nan, out), out)
    return out


def nansum(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
           keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    """``sum`` treating NaNs as zero."""
    return _nan_reduction("nansum", sum, a, 0, False, axis, keepdims, dtype=dtype,
                          initial=initial, where=where)


def nanprod(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
            keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    """``prod`` treating NaNs as one."""
    return _nan_reduction("nanprod", prod, a, 1, False, axis, keepdims, dtype=dtype,
                          initial=initial, where=where)


def nanmax(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,
           initial: Any = None, where: Any = None) -> Any:
    """``max`` ignoring NaNs (NaN where all are NaN)."""
    return _nan_reduction("nanmax", max, a, -np.inf, initial is None, axis, keepdims,
                          initial=initial, where=where)


def nanmin(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,
           initial: Any = None, where: Any = None) -> Any:
    """``min`` ignoring NaNs (NaN where all are NaN)."""
    return _nan_reduction("nanmin", min, a, np.inf, initial is None, axis, keepdims,
                          initial=initial, where=where)


def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
            keepdims: bool = False, where: Any = None) -> Any:
    """``mean`` of the non-NaN elements."""
    a = ensure_arraylike("nanmean", a)
    axis = canonicalize_axes(axis, aval(a).ndim, "nanmean")
    if not dtypes.is_inexact(aval(a).dtype):
        return mean(a, axis, dtype, keepdims=keepdims, where=where)
    dtype = check_user_dtype(dtype, "nanmean") or to_inexact_dtype(aval(a).dtype)
    not_nan = lax.bitwise_not(lax.ne(a, a))
    normalizer = sum(not_nan, axis, dtype=dtype, keepdims=keepdims, where=where)
    return lax.div(nansum(a, axis, dtype=dtype, keepdims=keepdims, where=where), normalizer)


def nanvar(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
           keepdims: bool = False, where: Any = None, mean: Any = None) -> Any:
    """``var`` of the non-NaN elements (NaN where too few remain)."""
    a = ensure_arraylike("nanvar", a)
    comp, result_dtype = _var_dtypes("nanvar", aval(a).dtype, check_user_dtype(dtype, "nanvar"))
    a = lax.convert_element_type(a, comp)
    a_mean = (nanmean(a, axis, dtype=comp, keepdims=True, where=where) if mean is None
              else lax.convert_element_type(ensure_arraylike("nanvar", mean), comp))
    nan_mask = lax.ne(a, a)
    sq = _squared_deviation(a, a_mean)
    sq = _where(nan_mask, scalar_like(0, sq), sq)
    normalizer = lax.sub(sum(lax.bitwise_not(nan_mask), axis, keepdims=keepdims, where=where),
                         lax.convert_element_type(ddof, dtypes.default_int_dtype()))
    bad = lax.le(normalizer, scalar_like(0, normalizer))
    total = sum(sq, axis, keepdims=keepdims, where=where)
    total = _where(bad, scalar_like(np.nan, total), total)
    divisor = lax.convert_element_type(_where(bad, scalar_like(1, normalizer), normalizer),
                                       aval(total).dtype)
    return lax.convert_element_type(lax.div(total, divisor), result_dtype)


def nanstd(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
           keepdims: bool = False, where: Any = None, mean: Any = None) -> Any:
    """``std`` of the non-NaN elements."""
    return lax.sqrt(nanvar(a, axis, dtype, ddof=ddof, keepdims=keepdims, where=where,
                           mean=mean))


# --------------------------------------------------------------------------- cumulative

def _cumulative(fname: str, lax_name: str, a: Any, axis: Any, dtype: Any,
                fill_nan: float | None = None, promote_integers: bool = False) -> Any:
    a = ensure_arraylike(fname, a)
    if axis is None:
        a = lax.reshape(a, (aval(a).size,))
    ax = canonicalize_axis(0 if axis is None else axis, aval(a).ndim, fname)
    if fill_nan is not None and dtypes.is_inexact(aval(a).dtype):
        a = _where(lax.ne(a, a), scalar_like(fill_nan, a), a)
    user = check_user_dtype(dtype, fname)
    if user is None:
        result = (promote_integer_dtype(aval(a).dtype, fname)
                  if promote_integers or aval(a).dtype == np.bool_ else aval(a).dtype)
        comp = result
    elif user == np.bool_:
        result = user
        if aval(a).dtype != np.bool_:
            a = lax.ne(a, scalar_like(0, a))
        comp = promote_integer_dtype(user, fname)
    else:
        result = comp = user
    a, accumulate = lax.convert_element_type(a, comp), getattr(lax, lax_name)
    out = (intn_compute(lambda v: accumulate(v, ax), (a,)) if comp in dtypes.intn
           else accumulate(a, ax))
    return lax.convert_element_type(out, result)


def cumsum(a: Any, axis: Any = None, dtype: Any = None, out: None = None) -> Any:
    """Cumulative sum along ``axis`` (of the flattened array when None)."""
    return _cumulative("cumsum", "cumsum", a, axis, dtype)


def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: None = None) -> Any:
    """Cumulative product along ``axis``."""
    return _cumulative("cumprod", "cumprod", a, axis, dtype)


def nancumsum(a: Any, axis: Any = None, dtype: Any = None, out: None = None) -> Any:
    """``cumsum`` treating NaNs as zero."""
    return _cumulative("nancumsum", "cumsum", a, axis, dtype, fill_nan=0)


def nancumprod(a: Any, axis: Any = None, dtype: Any = None, out: None = None) -> Any:
    """``cumprod`` treating NaNs as one."""
    return _cumulative("nancumprod", "cumprod", a, axis, dtype, fill_nan=1)


def _with_initial(out: Any, axis: int, value: int) -> Any:
    shape = list(aval(out).shape)
    shape[axis] = 1
    return lax.concatenate([lax.full(tuple(shape), value, aval(out).dtype), out], axis)


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                   include_initial: bool = False) -> Any:
    """Array-API cumulative sum (``axis`` required beyond 1-d; optional leading 0)."""
    x = ensure_arraylike("cumulative_sum", x)
    if aval(x).ndim == 0:
        raise ValueError("cumulative_sum: the input must have at least one dimension to take a "
                         "cumulative sum (got a scalar)")
    if axis is None:
        if aval(x).ndim > 1:
            raise ValueError("cumulative_sum: axis must be specified for arrays of more "
                             "than one dimension")
        axis = 0
    out = _cumulative("cumulative_sum", "cumsum", x, axis, dtype, promote_integers=True)
    return _with_initial(out, canonicalize_axis(axis, aval(out).ndim, "cumulative_sum"), 0) \
        if include_initial else out


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                    include_initial: bool = False) -> Any:
    """Array-API cumulative product (optional leading 1)."""
    x = ensure_arraylike("cumulative_prod", x)
    if aval(x).ndim == 0:
        raise ValueError("cumulative_prod: the input must have at least one dimension to take a "
                         "cumulative product (got a scalar)")
    if axis is None:
        if aval(x).ndim > 1:
            raise ValueError("cumulative_prod: axis must be specified for arrays of more "
                             "than one dimension")
        axis = 0
    out = _cumulative("cumulative_prod", "cumprod", x, axis, dtype)
    return _with_initial(out, canonicalize_axis(axis, aval(out).ndim, "cumulative_prod"), 1) \
        if include_initial else out


__all__ = ["sum", "prod", "max", "min", "amax", "amin", "all", "any", "mean", "var", "std",
           "ptp", "count_nonzero", "average", "argmax", "argmin", "nanargmax", "nanargmin",
           "nansum", "nanprod", "nanmax", "nanmin", "nanmean", "nanvar", "nanstd", "cumsum",
           "cumprod", "nancumsum", "nancumprod", "cumulative_sum", "cumulative_prod"]
