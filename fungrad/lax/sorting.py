"""Sorting: ``sort`` (several operands, lexicographic keys), ``sort_key_val`` and ``top_k``.

Order, as in JAX/XLA: ``sort`` is stable, NaNs of either sign go last and
-0.0 equals 0.0 (they keep their input order). ``top_k`` orders by IEEE
total order (-NaN < -inf < ... < -0.0 < 0.0 < ... < inf < NaN), largest
first, and among equal values the lower index comes first.

Derivatives: both permute (``sort``) or pick (``top_k``) elements, so their
tangents are the input tangents gathered at the sorted positions, as in JAX.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import ANY, as_operand, check_dtypes
from fungrad.lax.shapes import broadcast_in_dim, broadcasted_iota, expand_dims, full
from fungrad.lax.slicing import gather, GatherDimensionNumbers, GatherScatterMode
from fungrad.lax.slicing import slice as slice_


def _sort_key(x: np.ndarray) -> np.ndarray:
    """An array whose ascending order is the sort order (ml_dtypes' floats via exact
    float32)."""
    return x.astype(np.float32) if x.dtype in dtypes.ml_floats else x


def _gather_along(t: Any, idx: Any, axis: int) -> Any:
    """``t`` gathered along ``axis`` at ``idx`` (same rank; ``take_along_axis``) with lax.gather."""
    t_aval, idx_shape = core.get_aval(t), core.get_aval(idx).shape
    if t_aval.size == 0 or 0 in idx_shape:  # nothing to gather
        return full(idx_shape, 0, t_aval.dtype)
    ndim = t_aval.ndim
    batch = tuple(d for d in range(ndim) if d != axis)
    dnums = GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(axis,),
                                   start_index_map=(axis,), operand_batching_dims=batch,
                                   start_indices_batching_dims=batch)
    return gather(t, expand_dims(idx, (ndim,)), dnums, (1,) * ndim,
                  mode=GatherScatterMode.PROMISE_IN_BOUNDS)


# --------------------------------------------------------------------------- sort

def _sort_impl(xp, *operands, dimension, is_stable, num_keys):
    if len(operands) == 1 and operands[0].dtype not in dtypes.ml_floats:
        return [xp.sort(operands[0], axis=dimension, kind="stable")]
    keys = [_sort_key(k) for k in operands[:num_keys]]
    if num_keys == 1:
        perm = xp.argsort(keys[0], axis=dimension, kind="stable")
    else:
        perm = xp.lexsort(keys[::-1], axis=dimension)
    return [xp.take_along_axis(o, perm, axis=dimension) for o in operands]


def _sort_abstract(*avals, dimension, is_stable, num_keys):
    if any(a.shape != avals[0].shape for a in avals[1:]):
        raise TypeError("sort: operands must have equal shapes, got "
                        f"{', '.join(str(a.shape) for a in avals)}")
    if not 0 <= dimension < max(avals[0].ndim, 1) or avals[0].ndim == 0:
        raise TypeError(f"sort: dimension {dimension} out of range for shape {avals[0].shape}")
    if not 1 <= num_keys <= len(avals):
        raise ValueError(f"sort: num_keys={num_keys} must be between 1 and the number of "
                         f"operands ({len(avals)})")
    return list(avals)


def _sort_jvp(primals, tangents, *, dimension, is_stable, num_keys):
    shape = core.get_aval(primals[0]).shape
    outs = sort_p.bind(*primals, broadcasted_iota(np.int32, shape, dimension),
                       dimension=dimension, is_stable=is_stable, num_keys=num_keys)
    *outs, perm = outs
    t_out = [ad.Zero.from_primal(o) if type(t) is ad.Zero else _gather_along(t, perm, dimension)
             for o, t in zip(outs, tangents)]
    return outs, t_out


def _sort_batch(axis_size, vals, dims, *, dimension, is_stable, num_keys):
    proto, bdim = next((v, d) for v, d in zip(vals, dims) if d is not None)
    shape = core.get_aval(proto).shape
    new = []
    for v, d in zip(vals, dims):
        if d is None:
            kept = tuple(i for i in range(len(shape)) if i != bdim)
            new.append(broadcast_in_dim(v, shape, kept))
        else:
            new.append(batching.moveaxis(v, d, bdim))
    out = sort_p.bind(*new, dimension=dimension + (bdim <= dimension), is_stable=is_stable,
                      num_keys=num_keys)
    return out, [bdim] * len(out)


sort_p = Primitive("sort", multiple_results=True)
sort_p.def_impl(_sort_impl)
sort_p.def_abstract_eval(_sort_abstract)
sort_p.weak_type_rule = lambda weaks, **params: list(weaks)
ad.def_jvp(sort_p, _sort_jvp)
batching.def_batch(sort_p, _sort_batch)


def sort(operand: Any, dimension: int = -1, is_stable: bool = True, num_keys: int = 1) -> Any:
    """Sort along ``dimension`` (``jax.lax.sort``).

    With a sequence of operands, the first ``num_keys`` are the keys (compared
    lexicographically, first key primary) and every operand is permuted the same
    way; a tuple is returned. Stable; NaNs last; -0.0 == 0.0.
    """
    single = not isinstance(operand, (tuple, list))
    operands = [as_operand(operand)] if single else [as_operand(o) for o in operand]
    if not operands:
        raise TypeError("sort requires at least one operand")
    if single and num_keys != 1:
        raise ValueError(f"sort: num_keys={num_keys} must equal 1 for a single operand")
    if not 1 <= num_keys <= len(operands):
        raise ValueError(f"sort: num_keys={num_keys} must be between 1 and {len(operands)}")
    avals = [core.get_aval(o) for o in operands]
    dimension = canonicalize_axis(dimension, avals[0].ndim, "sort")
    for a in avals:
        check_dtypes("sort", [a], ANY)
    _sort_abstract(*avals, dimension=dimension, is_stable=bool(is_stable), num_keys=int(num_keys))
    out = sort_p.bind(*operands, dimension=dimension, is_stable=bool(is_stable),
                      num_keys=int(num_keys))
    return out[0] if single else tuple(out)


def sort_key_val(keys: Any, values: Any, dimension: int = -1, is_stable: bool = True) -> tuple:
    """Sort ``keys`` along ``dimension`` and apply the same permutation to ``values``."""
    return sort((keys, values), dimension, is_stable, 1)


# --------------------------------------------------------------------------- top_k

_UINT_OF_WIDTH = {2: np.int16, 4: np.int32, 8: np.int64}


def _total_order_key(x: np.ndarray) -> np.ndarray:
    """Integers ordered like IEEE totalOrder of the floats ``x`` (ints and bools as they are)."""
    if not dtypes.is_float(x.dtype):
        return x
    bits = x.view(_UINT_OF_WIDTH[x.dtype.itemsize])
    width = 8 * x.dtype.itemsize
    return bits ^ ((bits >> (width - 1)) & np.iinfo(bits.dtype).max)


def _top_k_impl(xp, x, *, k, axis):
    key = xp.moveaxis(_total_order_key(x), axis, -1)
    n = key.shape[-1]
    # descending, ties in increasing index: ascending stable sort of the reversed row, reversed
    perm = xp.argsort(key[..., ::-1], axis=-1, kind="stable")
    idx = (n - 1 - perm[..., ::-1][..., :k]).astype(np.int32)
    idx = xp.moveaxis(idx, -1, axis)
    return [xp.take_along_axis(x, idx, axis=axis), idx]


def _top_k_abstract(x, *, k, axis):
    if x.dtype.kind == "c":
        raise ValueError("top_k is not compatible with complex inputs")
    if x.ndim == 0:
        raise TypeError(f"top_k: operand must have at least one dimension, got shape {x.shape}")
    if not 0 <= axis < x.ndim:
        raise ValueError(f"top_k: axis {axis} out of range for operand shape {x.shape}")
    if not 0 <= k <= x.shape[axis]:
        raise ValueError(f"top_k: k must be between 0 and the size along the axis; got k={k} "
                         f"with shape {x.shape} and axis={axis}")
    shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
    return [ShapedArray(shape, x.dtype, x.weak_type), ShapedArray(shape, dtypes.int32, False)]


def _top_k_jvp(primals, tangents, *, k, axis):
    (x,), (t,) = primals, tangents
    values, idx = top_k_p.bind(x, k=k, axis=axis)
    t_out = ad.Zero.from_primal(values) if type(t) is ad.Zero else _gather_along(t, idx, axis)
    return [values, idx], [t_out, ad.Zero.from_primal(idx)]


def _top_k_batch(axis_size, vals, dims, *, k, axis):
    (x,), (d,) = vals, dims
    return top_k_p.bind(x, k=k, axis=axis + (d <= axis)), [d, d]


top_k_p = Primitive("top_k", multiple_results=True)
top_k_p.def_impl(_top_k_impl)
top_k_p.def_abstract_eval(_top_k_abstract)
top_k_p.weak_type_rule = lambda weaks, **params: [weaks[0], False]
ad.def_jvp(top_k_p, _top_k_jvp)
batching.def_batch(top_k_p, _top_k_batch)


def top_k(operand: Any, k: int, *, axis: int = -1) -> list:
    """The ``k`` largest entries along ``axis`` and their int32 indices (``jax.lax.top_k``).

    Among equal values the lower index comes first; NaN counts as largest.
    """
    operand = as_operand(operand)
    aval = core.get_aval(operand)
    k = int(k)
    if k < 0:
        raise ValueError(f"top_k: k must be nonnegative, got {k}")
    if aval.ndim == 0:
        raise TypeError(f"top_k: operand must have at least one dimension, got shape {aval.shape}")
    axis = canonicalize_axis(axis, aval.ndim, "top_k")
    _top_k_abstract(aval, k=k, axis=axis)
    return top_k_p.bind(operand, k=k, axis=axis)  # a list [values, indices], as jax returns


def approx_max_k(operand: Any, k: int, reduction_dimension: int = -1,
                 recall_target: float = 0.95, reduction_input_size_override: int = -1,
                 aggregate_to_topk: bool = True) -> list:
    """The ``k`` largest entries along ``reduction_dimension`` and their indices. XLA's
    approximate search is exact on the CPU, and so is this: ``top_k`` (``recall_target``
    and the other tuning arguments change nothing)."""
    return _top_k_along("approx_max_k", operand, k, reduction_dimension, largest=True)


def approx_min_k(operand: Any, k: int, reduction_dimension: int = -1,
                 recall_target: float = 0.95, reduction_input_size_override: int = -1,
                 aggregate_to_topk: bool = True) -> list:
    """The ``k`` smallest entries along ``reduction_dimension`` and their indices (exact,
    as ``approx_max_k``); among equal values the lower index comes first."""
    return _top_k_along("approx_min_k", operand, k, reduction_dimension, largest=False)


def _top_k_along(fname: str, operand: Any, k: int, axis: int, largest: bool) -> list:
    operand = as_operand(operand)
    aval = core.get_aval(operand)
    if aval.ndim == 0:
        raise TypeError(f"{fname}: operand must have at least one dimension")
    if not dtypes.is_float(aval.dtype):
        raise ValueError(f"{fname}: operand must be a floating type, got {aval.dtype}")
    axis = canonicalize_axis(axis, aval.ndim, fname)
    k = int(k)
    if not 0 <= k <= aval.shape[axis]:
        raise ValueError(f"{fname}: k must be in [0, {aval.shape[axis]}], got {k}")
    if largest:
        return top_k(operand, k, axis=axis)
    positions = broadcasted_iota(np.int32, aval.shape, axis)
    values, indices = sort((operand, positions), dimension=axis, is_stable=True, num_keys=1)
    starts, limits = (0,) * aval.ndim, aval.shape[:axis] + (k,) + aval.shape[axis + 1:]
    return [slice_(values, starts, limits), slice_(indices, starts, limits)]


__all__ = ['sort', 'sort_p', 'sort_key_val', 'top_k', 'top_k_p', 'approx_max_k', 'approx_min_k']
