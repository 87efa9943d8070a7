"""Slicing primitives: slice, pad and concatenate (each one's transpose is written with
another), dynamic_slice, dynamic_update_slice, and the composites split and the ``*_in_dim``
conveniences; this module also exports the gather/scatter family
from ``gather_scatter`` (so ``lax.gather`` etc. come with ``lax.slice``).

As in XLA, ``dynamic_slice`` and ``dynamic_update_slice`` clamp their start
indices so the whole window fits; negative start indices first count from the
end (``allow_negative_indices``). Their batching rules turn traced per-example
starts into a gather/scatter with a batching dimension.
"""
from __future__ import annotations

import builtins
import functools
import operator
from typing import Any, Sequence

import numpy as np

from fungrad import backends
from fungrad._core import core, dtypes, lowering
from fungrad._core.array import Array
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.structural import reduce_sum_p
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import as_operand, hashable_shape, kind, operand_dtype, static_ints
from fungrad.lax.elementwise import add, lt, rem, select, sub
from fungrad.lax.gather_scatter import *  # noqa: F401,F403  (re-exported, see __all__)
from fungrad.lax.gather_scatter import (GatherDimensionNumbers, GatherScatterMode, gather,
                                        ScatterDimensionNumbers, _gather_batch, scatter_p)
from fungrad.lax.gather_scatter import __all__ as _gather_scatter_all
from fungrad.lax.shapes import broadcast_in_dim, full, reshape, squeeze


def _index_dtype_error(name: str, avals: Sequence[ShapedArray]) -> None:
    if any(kind(a.dtype) not in "iu" for a in avals) or len({a.dtype for a in avals}) > 1:
        raise TypeError(f"{name}: index arguments must be integers of the same type, got "
                        f"{', '.join(a.dtype.name for a in avals)}")


# --------------------------------------------------------------------------- slice

def slice(operand: Any, start_indices: Sequence[int], limit_indices: Sequence[int],  # noqa: A001
          strides: Sequence[int] | None = None) -> Any:
    """``operand[start:limit:stride]`` in every dimension, with static bounds (``lax.slice``)."""
    operand = as_operand(operand)
    start = static_ints(start_indices, "slice", "start_indices")
    limit = static_ints(limit_indices, "slice", "limit_indices")
    strides = None if strides is None or all(s == 1 for s in strides) \
        else static_ints(strides, "slice", "strides")
    aval = core.get_aval(operand)
    _slice_abstract(aval, start_indices=start, limit_indices=limit, strides=strides)
    if start == (0,) * aval.ndim and limit == aval.shape and strides is None:
        return operand
    return slice_p.bind(operand, start_indices=start, limit_indices=limit, strides=strides)


@functools.lru_cache(maxsize=1024)  # eager calls validate with it too
def _slice_abstract(x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * x.ndim
    if not len(start_indices) == len(limit_indices) == len(strides) == x.ndim:
        raise TypeError(f"slice: start_indices {start_indices}, limit_indices {limit_indices} "
                        f"and strides {strides} need one entry per dimension of shape {x.shape}")
    if any(not 0 <= s <= l <= n for s, l, n in zip(start_indices, limit_indices, x.shape)):
        raise TypeError(f"slice: need 0 <= start <= limit <= size per dimension, got "
                        f"start_indices {start_indices}, limit_indices {limit_indices} for "
                        f"shape {x.shape}")
    if any(s <= 0 for s in strides):
        raise TypeError(f"slice: strides must be positive, got {strides}")
    shape = tuple(-(-(l - s) // st) for s, l, st in zip(start_indices, limit_indices, strides))
    return ShapedArray(shape, x.dtype, x.weak_type)


def _slice_impl(xp, x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * x.ndim
    return x[tuple(builtins.slice(*a) for a in zip(start_indices, limit_indices, strides))]


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * x.aval.ndim
    out_shape = core.get_aval(ct).shape
    real_limits = [s + (0 if n == 0 else 1 + (n - 1) * st)
                   for s, n, st in zip(start_indices, out_shape, strides)]
    config = tuple((s, d - l, st - 1)
                   for s, l, d, st in zip(start_indices, real_limits, x.aval.shape, strides))
    return [pad(ct, full((), 0, core.get_aval(ct).dtype), config)]


def _slice_batch(axis_size, vals, dims, *, start_indices, limit_indices, strides):
    d = dims[0]
    ins = lambda t, v: t[:d] + (v,) + t[d:]
    return slice_p.bind(vals[0], start_indices=ins(start_indices, 0),
                        limit_indices=ins(limit_indices, axis_size),
                        strides=None if strides is None else ins(strides, 1)), d


slice_p = Primitive("slice")
slice_p.def_impl(_slice_impl)
slice_p.def_abstract_eval(_slice_abstract)
ad.deflinear(slice_p, _slice_transpose)
batching.def_batch(slice_p, _slice_batch)
lowering.def_compiler_traits(slice_p, moves_elements=True)


# --------------------------------------------------------------------------- pad

def pad(operand: Any, padding_value: Any, padding_config: Sequence[tuple[int, int, int]]) -> Any:
    """Pad with ``(low, high, interior)`` per dimension; negative low/high crop (``lax.pad``)."""
    operand = as_operand(operand)
    padding_value = as_operand(padding_value, core.get_aval(operand).dtype)
    config = tuple((int(lo), int(hi), int(i)) for lo, hi, i in padding_config)
    _pad_abstract(core.get_aval(operand), core.get_aval(padding_value), padding_config=config)
    return pad_p.bind(operand, padding_value, padding_config=config)


def _dilated(n: int, interior: int) -> int:
    return 0 if n == 0 else (n - 1) * (interior + 1) + 1


def _pad_impl(xp, x, padding_value, *, padding_config):
    grown = [max(lo, 0) + max(hi, 0) + _dilated(n, i)
             for n, (lo, hi, i) in zip(x.shape, padding_config)]
    out = xp.full(grown, padding_value, dtype=x.dtype)
    out[tuple(builtins.slice(max(lo, 0), max(lo, 0) + _dilated(n, i), i + 1)
              for n, (lo, hi, i) in zip(x.shape, padding_config))] = x
    return out[tuple(builtins.slice(max(-lo, 0), g - max(-hi, 0))
                     for g, (lo, hi, _) in zip(grown, padding_config))]


@functools.lru_cache(maxsize=1024)  # eager calls validate with it too
def _pad_abstract(x, padding_value, *, padding_config):
    if x.dtype != padding_value.dtype:
        raise TypeError(f"pad: operand and padding_value must have the same dtype, got "
                        f"{x.dtype.name} and {padding_value.dtype.name}")
    if padding_value.ndim != 0:
        raise TypeError(f"pad: padding_value must be a scalar, got shape {padding_value.shape}")
    if len(padding_config) != x.ndim:
        raise TypeError(f"pad: padding_config {padding_config} must have one (low, high, "
                        f"interior) triple per dimension of the operand of shape {x.shape}")
    if any(i < 0 for _, _, i in padding_config):
        raise TypeError(f"pad: interior padding must be non-negative, got {padding_config}")
    shape = tuple(lo + hi + _dilated(n, i) for n, (lo, hi, i) in zip(x.shape, padding_config))
    if any(d < 0 for d in shape):
        raise TypeError(f"pad: padding_config {padding_config} gives a negative dimension "
                        f"{shape} for an operand of shape {x.shape}")
    return ShapedArray(shape, x.dtype, x.weak_type and padding_value.weak_type)


def _pad_transpose(ct, x, padding_value, *, padding_config):
    aval = core.get_aval(ct)
    lo, hi, interior = zip(*padding_config) if padding_config else ((), (), ())
    unpadded = pad_p.bind(ct, full((), 0, aval.dtype),
                          padding_config=tuple((-a, -b, 0) for a, b in zip(lo, hi)))
    ct_x = slice(unpadded, (0,) * aval.ndim, core.get_aval(unpadded).shape,
                     tuple(i + 1 for i in interior))
    everything = tuple(range(aval.ndim))
    ct_pv = sub(reduce_sum_p.bind(ct, axes=everything), reduce_sum_p.bind(ct_x, axes=everything)) \
        if ad.is_undefined(padding_value) else None
    return [ct_x if ad.is_undefined(x) else None, ct_pv]


def _pad_batch(axis_size, vals, dims, *, padding_config):
    (x, padding_value), (x_dim, pv_dim) = vals, dims
    x = batching.bdim_at_front(x, x_dim, axis_size)
    config = ((0, 0, 0),) + padding_config
    if pv_dim is None:
        return pad_p.bind(x, padding_value, padding_config=config), 0
    aval = core.get_aval(x)
    padded = pad_p.bind(x, full((), 0, aval.dtype), padding_config=config)
    mask = pad_p.bind(full(aval.shape, True, np.bool_), full((), False, np.bool_),
                      padding_config=config)
    out_shape = core.get_aval(padded).shape
    return select(mask, padded, broadcast_in_dim(padding_value, out_shape, (0,))), 0


pad_p = Primitive("pad")
pad_p.def_impl(_pad_impl)
pad_p.def_abstract_eval(_pad_abstract)
ad.deflinear(pad_p, _pad_transpose)
batching.def_batch(pad_p, _pad_batch)
lowering.def_compiler_traits(pad_p, moves_elements=True)


def _pad_into_fn(xp: Any, shape: tuple, dtype: Any, config: tuple) -> Any:
    """``pad`` without negative or interior padding: the borders filled with the padding
    value, the operand copied into the window (each element written once), into ``out``
    when given."""
    window = tuple(builtins.slice(lo, n - hi) for n, (lo, hi, _) in zip(shape, config))
    borders = []
    for d, (n, (lo, hi, _)) in enumerate(zip(shape, config)):
        before = (builtins.slice(None),) * d
        if lo:
            borders.append(before + (builtins.slice(0, lo),))
        if hi:
            borders.append(before + (builtins.slice(n - hi, n),))

    def pad_into(x, value, out=None):
        out = xp.empty(shape, dtype) if out is None else out
        for border in borders:
            out[border] = value
        out[window] = x
        return out
    return pad_into


def _pad_lowering(ctx, eqn, args, out):
    aval = eqn.outvars[0].aval
    fn = ctx.const(_pad_into_fn(ctx.xp, aval.shape, aval.dtype, eqn.params["padding_config"]),
                   "pad_into")
    return f"{fn}({args[0]}, {args[1]}{', out=' + out if out else ''})"


lowering.def_lowering(pad_p, _pad_lowering, fresh=True, out="separate", when=lambda eqn: all(
    lo >= 0 and hi >= 0 and i == 0 for lo, hi, i in eqn.params["padding_config"]))


# --------------------------------------------------------------------------- concatenate

def concatenate(operands: Sequence[Any], dimension: int) -> Any:
    """Join ``operands`` (equal dtypes and shapes except along ``dimension``)."""
    if len(operands) == 0:
        raise ValueError("concatenate requires a non-empty sequence of arrays")
    dt = operand_dtype(*operands)
    operands = [as_operand(x, dt) for x in operands]
    if len(operands) == 1:
        return operands[0]
    try:
        dimension = operator.index(dimension)
    except TypeError:
        raise TypeError(f"concatenate: dimension must be an integer, got {dimension!r}") from None
    _concatenate_abstract(*[core.get_aval(x) for x in operands], dimension=dimension)
    return concatenate_p.bind(*operands, dimension=dimension)


@functools.lru_cache(maxsize=1024)  # eager calls validate with it too
def _concatenate_abstract(*avals, dimension):
    shapes = ", ".join(str(a.shape) for a in avals)
    if len({a.ndim for a in avals}) != 1:
        raise TypeError(f"concatenate: arrays must have the same rank, got shapes {shapes}")
    if not 0 <= dimension < avals[0].ndim:
        raise TypeError(f"concatenate: dimension {dimension} out of bounds for shapes {shapes}")
    if len({a.dtype for a in avals}) != 1:
        raise TypeError("concatenate: arrays must have the same dtype, got "
                        f"{', '.join(a.dtype.name for a in avals)}")
    rest = {a.shape[:dimension] + a.shape[dimension + 1:] for a in avals}
    if len(rest) != 1:
        raise TypeError(f"concatenate: shapes must agree except along dimension {dimension}, "
                        f"got {shapes}")
    shape = list(avals[0].shape)
    shape[dimension] = sum(a.shape[dimension] for a in avals)
    return ShapedArray(tuple(shape), avals[0].dtype, all(a.weak_type for a in avals))


def _concatenate_jvp(primals, tangents, *, dimension):
    out = concatenate_p.bind(*primals, dimension=dimension)
    if all(type(t) is ad.Zero for t in tangents):
        return out, ad.Zero.from_primal(out)
    return out, concatenate_p.bind(*[ad.instantiate(t) for t in tangents], dimension=dimension)


def _concatenate_transpose(ct, *operands, dimension):
    out, start = [], 0
    for x in operands:
        size = (x.aval if ad.is_undefined(x) else core.get_aval(x)).shape[dimension]
        out.append(slice_in_dim(ct, start, start + size, axis=dimension)
                   if ad.is_undefined(x) else None)
        start += size
    return out


def _concatenate_batch(axis_size, vals, dims, *, dimension):
    xs = [batching.bdim_at_front(x, d, axis_size) for x, d in zip(vals, dims)]
    return concatenate_p.bind(*xs, dimension=dimension + 1), 0


concatenate_p = Primitive("concatenate")
concatenate_p.def_impl(lambda xp, *xs, dimension: xp.concatenate(xs, axis=dimension))
concatenate_p.def_abstract_eval(_concatenate_abstract)
ad.def_jvp(concatenate_p, _concatenate_jvp)
ad.def_transpose(concatenate_p, _concatenate_transpose)
batching.def_batch(concatenate_p, _concatenate_batch)
lowering.def_compiler_traits(concatenate_p, moves_elements=True)


def _concatenate_lowering(ctx, eqn, args, out):
    fn = ctx.const(ctx.xp.concatenate, "concatenate")
    return (f"{fn}(({', '.join(args)},), axis={eqn.params['dimension']}"
            f"{', out=' + out if out else ''})")


# Compiled, it writes into a dead buffer (the arena in steady state) instead of allocating;
# the simplifier turns the transpose of a split (a sum of zero-padded pieces) into one.
lowering.def_lowering(concatenate_p, _concatenate_lowering, fresh=True, out="separate",
                      any_dtype=True)


# --------------------------------------------------------------------------- dynamic_slice

def _dynamic_slice_indices(name: str, aval: ShapedArray, start_indices: Any,
                           allow_negative_indices: bool | Sequence[bool]) -> list:
    """Start indices as a list of integer scalars; negative ones count from the end.

    Python ints take the dtype of the first array index (int32 when there is none).
    """
    if isinstance(start_indices, (core.Tracer, Array, np.ndarray)):
        shape = core.get_aval(as_operand(start_indices)).shape
        if len(shape) != 1:
            raise ValueError(f"{name}: start_indices must be a 1-D sequence, got shape {shape}")
        start_indices = list(start_indices) if isinstance(start_indices, np.ndarray) else \
            [squeeze(slice(start_indices, (i,), (i + 1,)), (0,)) for i in range(shape[0])]
    start_indices = list(start_indices)
    if len(start_indices) != aval.ndim:
        raise ValueError(f"{name}: got {len(start_indices)} start indices for an operand of "
                         f"shape {aval.shape}; need one per dimension")
    allow = [allow_negative_indices] * aval.ndim if isinstance(allow_negative_indices, bool) \
        else list(allow_negative_indices)
    static = (int, np.integer)
    dt = operand_dtype(*[i for i in start_indices if not isinstance(i, static)]) \
        if any(not isinstance(i, static) for i in start_indices) else np.dtype(np.int32)
    dt = dtypes.canonicalize_dtype(dt)
    out = []
    for i, n, neg in zip(start_indices, aval.shape, allow):
        if isinstance(i, static):
            i = int(i)
            out.append(Array(np.asarray(i + n if neg and i < 0 else i, dt)))
            continue
        i = as_operand(i)
        i_dt = core.get_aval(i).dtype
        if kind(i_dt) not in "iu":
            raise TypeError(f"{name}: start indices must be integers, got {i_dt.name}")
        if neg and i_dt.kind == "i" and type(i) is Array and isinstance(i._value, np.ndarray):
            if i._value < 0:  # a concrete host index: wrap it here, skipping three primitives
                i = Array(np.asarray(i._value + n, i_dt), i.weak_type)
        elif neg and i_dt.kind == "i":
            i = select(lt(i, 0), add(i, n), i)
        out.append(i)
    return out


def dynamic_slice(operand: Any, start_indices: Any, slice_sizes: Sequence[int], *,
                  allow_negative_indices: bool | Sequence[bool] = True) -> Any:
    """A ``slice_sizes`` window starting at traced ``start_indices`` (``lax.dynamic_slice``).

    Starts are clamped so the window lies inside ``operand``, as XLA does.
    """
    operand = as_operand(operand)
    aval = core.get_aval(operand)
    starts = _dynamic_slice_indices("dynamic_slice", aval, start_indices, allow_negative_indices)
    sizes = hashable_shape(slice_sizes, "dynamic_slice", "slice_sizes")
    _dynamic_slice_abstract(aval, *[core.get_aval(s) for s in starts], slice_sizes=sizes)
    return dynamic_slice_p.bind(operand, *starts, slice_sizes=sizes)


def _clamped_window(shape, sizes, starts) -> tuple:
    """Basic-slicing index of the window, its starts clamped into range (on a device, see
    ``_device_window``)."""
    if not all(map(backends.is_host, starts)):
        return _device_window(shape, sizes, starts)
    out = []
    for n, k, s in zip(shape, sizes, starts):
        s = builtins.min(builtins.max(int(s), 0), n - k)
        out.append(builtins.slice(s, s + k))
    return tuple(out)


def _device_window(shape, sizes, starts) -> tuple:
    """The window's index when a start is on a device (a traced position, say): an open
    mesh of index arrays computed there, as a slice would read the start back to the host
    and wait for the GPU."""
    xp = backends.xp_of(next(s for s in starts if not backends.is_host(s)))
    mesh = []
    for axis, (n, k, s) in enumerate(zip(shape, sizes, starts)):
        if backends.is_host(s):  # clamped here: nothing to copy to the device
            first = builtins.min(builtins.max(int(s), 0), n - k)
            index = xp.arange(first, first + k)
        else:
            index = xp.clip(s.astype(np.int64), 0, n - k) + xp.arange(k)
        mesh.append(index.reshape((1,) * axis + (k,) + (1,) * (len(shape) - axis - 1)))
    return tuple(mesh)


@functools.lru_cache(maxsize=1024)  # eager calls validate with it too
def _dynamic_slice_abstract(x, *starts, slice_sizes):
    if len(starts) != x.ndim or len(slice_sizes) != x.ndim:
        raise TypeError(f"dynamic_slice: need one start index and one slice size per dimension "
                        f"of {x.str_short()}, got {len(starts)} and {slice_sizes}")
    if any(s.ndim != 0 for s in starts):
        raise TypeError("dynamic_slice: start indices must be scalars, got "
                        f"{', '.join(s.str_short() for s in starts)}")
    _index_dtype_error("dynamic_slice", starts)
    if any(not 0 <= k <= n for k, n in zip(slice_sizes, x.shape)):
        raise TypeError(f"dynamic_slice: slice_sizes {slice_sizes} must lie in [0, size] for "
                        f"an operand of shape {x.shape}")
    return ShapedArray(slice_sizes, x.dtype, x.weak_type)


def _dynamic_slice_jvp(primals, tangents, *, slice_sizes):
    out = dynamic_slice_p.bind(*primals, slice_sizes=slice_sizes)
    t = tangents[0]
    if type(t) is ad.Zero:
        return out, ad.Zero.from_primal(out)
    return out, dynamic_slice_p.bind(t, *primals[1:], slice_sizes=slice_sizes)


def _dynamic_slice_transpose(ct, x, *starts, slice_sizes):
    zeros = full(x.aval.shape, 0, core.get_aval(ct).dtype)
    return [dynamic_update_slice_p.bind(zeros, ct, *starts)] + [None] * len(starts)


def _batched_index_vector(axis_size, starts, dims):
    """Scalar start indices -> one ``(axis_size, n)`` index array (batch dimension first)."""
    return concatenate([broadcast_in_dim(s, (axis_size, 1), () if d is None else (0,))
                        for s, d in zip(starts, dims)], 1)


def _dynamic_slice_batch(axis_size, vals, dims, *, slice_sizes):
    (x, *starts), (x_dim, *start_dims) = vals, dims
    if all(d is None for d in start_dims):  # only the operand is batched: take all of its bdim
        zero = full((), 0, core.get_aval(starts[0]).dtype if starts else np.int32)
        starts.insert(x_dim, zero)
        sizes = slice_sizes[:x_dim] + (axis_size,) + slice_sizes[x_dim:]
        return dynamic_slice_p.bind(x, *starts, slice_sizes=sizes), x_dim
    nd = len(slice_sizes)
    dnums = GatherDimensionNumbers(offset_dims=tuple(range(nd)), collapsed_slice_dims=(),
                                   start_index_map=tuple(range(nd)))
    index = _batched_index_vector(axis_size, starts, start_dims)
    return _gather_batch(axis_size, [x, index], [x_dim, 0], dimension_numbers=dnums,
                         slice_sizes=slice_sizes, unique_indices=True, indices_are_sorted=True,
                         mode=GatherScatterMode.CLIP, fill_value=None)


dynamic_slice_p = Primitive("dynamic_slice")
dynamic_slice_p.def_impl(lambda xp, x, *starts, slice_sizes:
                         x[_clamped_window(x.shape, slice_sizes, starts)])
dynamic_slice_p.def_abstract_eval(_dynamic_slice_abstract)
dynamic_slice_p.weak_type_rule = lambda weaks, **params: weaks[0]
ad.def_jvp(dynamic_slice_p, _dynamic_slice_jvp)
ad.def_transpose(dynamic_slice_p, _dynamic_slice_transpose)
batching.def_batch(dynamic_slice_p, _dynamic_slice_batch)
lowering.def_compiler_traits(dynamic_slice_p, moves_elements=True)


# --------------------------------------------------------------------------- dynamic_update_slice

def dynamic_update_slice(operand: Any, update: Any, start_indices: Any, *,
                         allow_negative_indices: bool | Sequence[bool] = True) -> Any:
    """``operand`` with the window at traced ``start_indices`` replaced by ``update``.

    Starts are clamped so ``update`` fits inside ``operand`` (``lax.dynamic_update_slice``).
    """
    operand = as_operand(operand)
    update = as_operand(update, core.get_aval(operand).dtype)
    aval = core.get_aval(operand)
    starts = _dynamic_slice_indices("dynamic_update_slice", aval, start_indices,
                                    allow_negative_indices)
    _dynamic_update_slice_abstract(aval, core.get_aval(update), *[core.get_aval(s) for s in starts])
    return dynamic_update_slice_p.bind(operand, update, *starts)


def _write_window(buf, update, *starts):
    """Write ``update`` into ``buf`` at the clamped window and return ``buf``."""
    buf[_clamped_window(buf.shape, update.shape, starts)] = update
    return buf


def _dynamic_update_slice_impl(xp, x, update, *starts):
    return _write_window(x.copy(), update, *starts)  # one copy of the operand


@functools.lru_cache(maxsize=1024)  # eager calls validate with it too
def _dynamic_update_slice_abstract(x, update, *starts):
    if update.ndim != x.ndim or len(starts) != x.ndim:
        raise TypeError(f"dynamic_update_slice: update {update.str_short()} and "
                        f"{len(starts)} start indices must match the rank of operand "
                        f"{x.str_short()}")
    if any(u > n for u, n in zip(update.shape, x.shape)):
        raise TypeError(f"dynamic_update_slice: update shape {update.shape} must not exceed "
                        f"operand shape {x.shape}")
    if x.dtype != update.dtype:
        raise TypeError(f"dynamic_update_slice: operand and update must have the same dtype, "
                        f"got {x.dtype.name} and {update.dtype.name}")
    if any(s.ndim != 0 for s in starts):
        raise TypeError("dynamic_update_slice: start indices must be scalars")
    _index_dtype_error("dynamic_update_slice", starts)
    return ShapedArray(x.shape, x.dtype, x.weak_type and update.weak_type
                       and all(s.weak_type for s in starts))


def _dynamic_update_slice_jvp(primals, tangents):
    operand, update, *starts = primals
    out = dynamic_update_slice_p.bind(operand, update, *starts)
    t_op, t_up = tangents[:2]
    if type(t_op) is ad.Zero and type(t_up) is ad.Zero:
        return out, ad.Zero.from_primal(out)
    return out, dynamic_update_slice_p.bind(ad.instantiate(t_op), ad.instantiate(t_up), *starts)


def _dynamic_update_slice_transpose(ct, operand, update, *starts):
    up_aval = update.aval if ad.is_undefined(update) else core.get_aval(update)
    ct_aval = core.get_aval(ct)
    ct_op = dynamic_update_slice_p.bind(ct, full(up_aval.shape, 0, ct_aval.dtype), *starts) \
        if ad.is_undefined(operand) else None
    ct_up = dynamic_slice_p.bind(ct, *starts, slice_sizes=up_aval.shape) \
        if ad.is_undefined(update) else None
    return [ct_op, ct_up] + [None] * len(starts)


def _dynamic_update_slice_batch(axis_size, vals, dims):
    (x, update, *starts), (x_dim, u_dim, *start_dims) = vals, dims
    x = batching.bdim_at_front(x, x_dim, axis_size)
    update = batching.bdim_at_front(update, u_dim, axis_size)
    if all(d is None for d in start_dims):
        zero = full((), 0, core.get_aval(starts[0]).dtype if starts else np.int32)
        return dynamic_update_slice_p.bind(x, update, zero, *starts), 0
    nd = len(starts)
    window = tuple(range(1, nd + 1))
    dnums = ScatterDimensionNumbers(update_window_dims=window, inserted_window_dims=(),
                                    scatter_dims_to_operand_dims=window,
                                    operand_batching_dims=(0,), scatter_indices_batching_dims=(0,))
    index = _batched_index_vector(axis_size, starts, start_dims)
    return scatter_p.bind(x, index, update, dimension_numbers=dnums, indices_are_sorted=True,
                          unique_indices=True, mode=GatherScatterMode.CLIP), 0


dynamic_update_slice_p = Primitive("dynamic_update_slice")
dynamic_update_slice_p.def_impl(_dynamic_update_slice_impl)
dynamic_update_slice_p.def_abstract_eval(_dynamic_update_slice_abstract)
ad.def_jvp(dynamic_update_slice_p, _dynamic_update_slice_jvp)
ad.def_transpose(dynamic_update_slice_p, _dynamic_update_slice_transpose)
batching.def_batch(dynamic_update_slice_p, _dynamic_update_slice_batch)
lowering.def_compiler_traits(dynamic_update_slice_p, moves_elements=True)


def _dynamic_update_slice_lowering(ctx, eqn, args, out):
    """The impl, or, when the memory plan gives the operand's dead (or donated) buffer as
    ``out``, a write into it in place: a KV cache is updated without a copy."""
    operand, *rest = args
    target = out if out else f"{operand}.copy()"
    return f"{ctx.const(_write_window, 'write_window')}({', '.join([target, *rest])})"


lowering.def_lowering(dynamic_update_slice_p, _dynamic_update_slice_lowering, fresh=True, out=0,
                      any_dtype=True)


# --------------------------------------------------------------------------- *_in_dim conveniences

def slice_in_dim(operand: Any, start_index: int | None, limit_index: int | None,
                 stride: int = 1, axis: int = 0) -> Any:
    """``operand[..., start:limit:stride]`` along ``axis`` (static; negative counts from the
    end)."""
    shape = core.get_aval(operand).shape
    axis = canonicalize_axis(axis, len(shape), "slice_in_dim")
    n = shape[axis]
    start = 0 if start_index is None else int(start_index)
    limit = n if limit_index is None else int(limit_index)
    start, limit = start + n if start < 0 else start, limit + n if limit < 0 else limit
    starts, limits, strides = [0] * len(shape), list(shape), [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start, limit, int(stride)
    return slice(operand, starts, limits, strides)


def split(operand: Any, sizes: Sequence[int], axis: int = 0) -> list:
    """Consecutive pieces of the given ``sizes`` along ``axis`` (``lax.split``)."""
    shape = core.get_aval(operand).shape
    axis = canonicalize_axis(axis, len(shape), "split")
    sizes = static_ints(sizes, "split", "sizes")
    if sum(sizes) != shape[axis] or any(n < 0 for n in sizes):
        raise ValueError(f"split: sizes {sizes} must be non-negative and sum to the size "
                         f"{shape[axis]} of axis {axis} of shape {shape}")
    starts = np.cumsum((0,) + sizes[:-1])
    return [slice_in_dim(operand, int(a), int(a) + n, axis=axis) for a, n in zip(starts, sizes)]


def index_in_dim(operand: Any, index: int, axis: int = 0, keepdims: bool = True) -> Any:
    """``operand[..., index]`` along ``axis`` for a static ``index`` (``lax.index_in_dim``)."""
    shape = core.get_aval(operand).shape
    axis = canonicalize_axis(axis, len(shape), "index_in_dim")
    index, n = int(index), shape[axis]
    wrapped = index + n if index < 0 else index
    if not 0 <= wrapped < n:
        raise IndexError(f"index_in_dim: index {index} is out of bounds for axis {axis} with "
                         f"size {n}")
    out = slice_in_dim(operand, wrapped, wrapped + 1, 1, axis)
    return out if keepdims else squeeze(out, (axis,))


def _in_dim_starts(ndim: int, start_index: Any, axis: int, allow_negative: bool):
    starts, allow = [0] * ndim, [False] * ndim
    starts[axis], allow[axis] = start_index, allow_negative
    return starts, allow


def dynamic_slice_in_dim(operand: Any, start_index: Any, slice_size: int, axis: int = 0, *,
                         allow_negative_indices: bool = True) -> Any:
    """A ``slice_size`` window at a traced ``start_index`` along ``axis`` (clamped)."""
    shape = core.get_aval(operand).shape
    axis = canonicalize_axis(axis, len(shape), "dynamic_slice_in_dim")
    starts, allow = _in_dim_starts(len(shape), start_index, axis, allow_negative_indices)
    sizes = list(shape)
    sizes[axis] = int(slice_size)
    return dynamic_slice(operand, starts, sizes, allow_negative_indices=allow)


def dynamic_index_in_dim(operand: Any, index: Any, axis: int = 0, keepdims: bool = True, *,
                         allow_negative_indices: bool = True) -> Any:
    """``operand[..., index]`` along ``axis`` for a traced ``index`` (clamped)."""
    out = dynamic_slice_in_dim(operand, index, 1, axis,
                               allow_negative_indices=allow_negative_indices)
    axis = canonicalize_axis(axis, core.get_aval(out).ndim, "dynamic_index_in_dim")
    return out if keepdims else squeeze(out, (axis,))


def dynamic_update_slice_in_dim(operand: Any, update: Any, start_index: Any, axis: int, *,
                                allow_negative_indices: bool = True) -> Any:
    """Write ``update`` at a traced ``start_index`` along ``axis`` (other dims start at 0)."""
    ndim = core.get_aval(operand).ndim
    axis = canonicalize_axis(axis, ndim, "dynamic_update_slice_in_dim")
    starts, allow = _in_dim_starts(ndim, start_index, axis, allow_negative_indices)
    return dynamic_update_slice(operand, update, starts, allow_negative_indices=allow)


def dynamic_update_index_in_dim(operand: Any, update: Any, index: Any, axis: int, *,
                                allow_negative_indices: bool = True) -> Any:
    """Write ``update`` (with or without ``axis``) as entry ``index`` along ``axis``."""
    ndim = core.get_aval(operand).ndim
    axis = canonicalize_axis(axis, ndim, "dynamic_update_index_in_dim")
    update = as_operand(update, core.get_aval(as_operand(operand)).dtype)
    u_shape = core.get_aval(update).shape
    if len(u_shape) + 1 == ndim:
        update = reshape(update, u_shape[:axis] + (1,) + u_shape[axis:])
    return dynamic_update_slice_in_dim(operand, update, index, axis,
                                       allow_negative_indices=allow_negative_indices)


def index_take(src: Any, idxs: Sequence[Any], axes: Sequence[int]) -> Any:
    """``src`` at the points whose coordinates along ``axes`` are the rows of ``idxs`` (one
    index array per axis, wrapped modulo the axis size), the other axes kept whole."""
    src = as_operand(src)
    shape = core.get_aval(src).shape
    axes = tuple(canonicalize_axis(a, len(shape), "index_take") for a in axes)
    if len(idxs) != len(axes):
        raise ValueError(f"index_take: one index array per axis is needed, got {len(idxs)} "
                         f"for axes {axes}")
    idxs = [as_operand(i) for i in idxs]
    wrapped = []
    for i, ax in zip(idxs, axes):
        size = full((), shape[ax], core.get_aval(i).dtype)
        wrapped.append(reshape(_remainder_nonneg(i, size), core.get_aval(i).shape + (1,)))
    indices = concatenate(wrapped, core.get_aval(wrapped[0]).ndim - 1)
    sizes = tuple(1 if d in axes else n for d, n in enumerate(shape))
    offset = tuple(range(1, len(shape) - len(axes) + 1))
    dnums = GatherDimensionNumbers(offset_dims=offset, collapsed_slice_dims=axes,
                                   start_index_map=axes)
    return gather(src, indices, dimension_numbers=dnums, slice_sizes=sizes)


def _remainder_nonneg(i: Any, n: Any) -> Any:
    """``i mod n`` in ``[0, n)`` (a negative index wraps from the end)."""
    r = rem(i, n)
    return select(lt(r, full((), 0, core.get_aval(r).dtype)), add(r, n), r)


__all__ = ['slice', 'slice_p', 'pad', 'pad_p', 'concatenate', 'concatenate_p', 'split',
           'dynamic_slice', 'dynamic_slice_p', 'dynamic_update_slice',
           'dynamic_update_slice_p', 'slice_in_dim', 'index_in_dim', 'dynamic_slice_in_dim',
           'dynamic_index_in_dim', 'dynamic_update_slice_in_dim',
           'dynamic_update_index_in_dim', 'index_take'] + _gather_scatter_all
