"""Named-axis collectives: ``psum``, ``pmean``, ``pmax``, ``pmin``, ``all_gather``,
``axis_index`` and ``axis_size``, over axes named by ``vmap(..., axis_name=...)``.

Each collective is a primitive with a *collective* batching rule
``rule(trace, vals, dims, **params)`` that every ``vmap`` trace sees, batched
operand or not. A trace whose ``axis_name`` is among the primitive's ``axes``
reduces over its own batch dimension and passes the remaining names on to the
enclosing trace; a trace with another name rebinds the primitive unchanged in
its parent. So ``psum(x, ('i', 'j'))`` inside two nested vmaps sums over both,
and a name no enclosing vmap binds is a ``NameError``, as in JAX.
"""
from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import as_operand
from fungrad.lax.elementwise import convert_to, div, eq, mul
from fungrad.lax.reductions import reduce_max, reduce_min, reduce_sum
from fungrad.lax.shapes import (broadcast_in_dim, broadcasted_iota, convert_element_type, iota,
                                reshape)

AxisName = Hashable


# --------------------------------------------------------------------------- axis environment

def _axis_tuple(axis_name: Any) -> tuple:
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _bound_axes() -> dict:
    """Names bound by the enclosing ``vmap`` traces, innermost first, with their sizes."""
    bound, trace = {}, core.current_trace()
    while trace is not None:
        if type(trace) is batching.BatchTrace and trace.axis_name is not None:
            bound.setdefault(trace.axis_name, trace.axis_size)
        trace = trace.parent
    return bound


def _unbound(name: Any, bound: Sequence) -> NameError:
    return NameError(f"unbound axis name: {name}. The following axis names (e.g. defined by "
                     f"vmap(..., axis_name=...)) are available to collective operations: "
                     f"{list(bound)}")


def _check_axes(axis_name: Any) -> tuple:
    axes = _axis_tuple(axis_name)
    bound = _bound_axes()
    for name in axes:
        if name not in bound:
            raise _unbound(name, bound)
    return axes


def axis_size(axis_name: AxisName | Sequence[AxisName]) -> int:
    """The size of the named mapped axis (the product of sizes for a tuple of names)."""
    bound = _bound_axes()
    size = 1
    for name in _axis_tuple(axis_name):
        if name not in bound:
            raise _unbound(name, bound)
        size *= bound[name]
    return size


def _unbound_impl(xp, *args, **params):
    names = params.get("axes") or (params.get("axis_name"),)
    raise _unbound(names[0], [])


def _collective_prim(name: str) -> Primitive:
    prim = Primitive(name)
    prim.def_impl(_unbound_impl)
    return prim


# --------------------------------------------------------------------------- psum / pmax / pmin

def _reduction_collective(prim: Primitive, reduce_batched, unbatched):
    """rule(trace, vals, dims, *, axes): reduce over this trace's batch dim if it is named."""
    def rule(trace, vals, dims, *, axes):
        (x,), (d,) = vals, dims
        if trace.axis_name not in axes:
            return prim.bind(x, axes=axes), d
        out = unbatched(x, trace.axis_size) if d is None else reduce_batched(x, (d,))
        rest = tuple(a for a in axes if a != trace.axis_name)
        return (prim.bind(out, axes=rest) if rest else out), None
    return rule


def _allreduce(prim: Primitive, x: Any, axis_name: Any) -> Any:
    axes = _check_axes(axis_name)
    return tree_util.map(lambda leaf: prim.bind(as_operand(leaf), axes=axes), x)


def psum(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Sum ``x`` (a pytree) over the mapped axis (or axes) ``axis_name`` (``jax.lax.psum``).

    Every member of the mapped axis gets the same total.
    """
    return _allreduce(psum_p, x, axis_name)


def _times_axis_size(x: Any, size: int) -> Any:
    return mul(x, as_operand(size, core.get_aval(x).dtype))


psum_p = _collective_prim("psum")
psum_p.def_abstract_eval(lambda x, *, axes: x)
# Each member's cotangent flows to every member: the transpose of psum is psum.
ad.deflinear(psum_p, lambda ct, x, *, axes: [psum_p.bind(ad.instantiate(ct), axes=axes)])
batching.def_collective(psum_p, _reduction_collective(psum_p, reduce_sum, _times_axis_size))


def pmean(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Mean of ``x`` (a pytree) over the mapped axis (or axes) ``axis_name``."""
    size = axis_size(axis_name)

    def mean(leaf):
        total = psum(leaf, axis_name)
        dt = core.get_aval(total).dtype
        if not dtypes.is_inexact(dt):
            total = convert_element_type(total, dtypes.default_float_dtype())
        return div(total, as_operand(size, core.get_aval(total).dtype))
    return tree_util.map(mean, x)


def chooser_jvp(prim: Primitive, sum_prim: Primitive):
    """The JVP of a maximum or minimum over a named axis: the tangent of the chosen member
    (averaged over ties), as for ``reduce_max``; ``sum_prim`` sums over the same axis (the
    vmapped axis here, the processes in ``fungrad.distributed``)."""
    def rule(primals, tangents, **params):
        (x,), (t,) = primals, tangents
        out = prim.bind(x, **params)
        location = convert_to(eq(x, out), x)
        picked = sum_prim.bind(mul(t, location), **params)
        return out, div(picked, sum_prim.bind(location, **params))
    return rule


def pmax(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Maximum of ``x`` (a pytree) over the mapped axis (or axes) ``axis_name``."""
    return _allreduce(pmax_p, x, axis_name)


def pmin(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Minimum of ``x`` (a pytree) over the mapped axis (or axes) ``axis_name``."""
    return _allreduce(pmin_p, x, axis_name)


pmax_p = _collective_prim("pmax")
pmax_p.def_abstract_eval(lambda x, *, axes: x)
ad.def_jvp(pmax_p, chooser_jvp(pmax_p, psum_p))
batching.def_collective(pmax_p, _reduction_collective(pmax_p, reduce_max,
                                                      lambda x, size: x))

pmin_p = _collective_prim("pmin")
pmin_p.def_abstract_eval(lambda x, *, axes: x)
ad.def_jvp(pmin_p, chooser_jvp(pmin_p, psum_p))
batching.def_collective(pmin_p, _reduction_collective(pmin_p, reduce_min,
                                                      lambda x, size: x))


# --------------------------------------------------------------------------- axis_index

def axis_index(axis_name: AxisName) -> Any:
    """The position (int32) of this member along the mapped axis ``axis_name``."""
    _check_axes(axis_name)
    return axis_index_p.bind(axis_name=axis_name)


def _axis_index_collective(trace, vals, dims, *, axis_name):
    if trace.axis_name != axis_name:
        return axis_index_p.bind(axis_name=axis_name), None
    return iota(np.dtype(np.int32), trace.axis_size), 0


axis_index_p = _collective_prim("axis_index")
axis_index_p.def_abstract_eval(lambda *, axis_name: ShapedArray((), np.dtype(np.int32)))
ad.def_nondiff(axis_index_p)
batching.def_collective(axis_index_p, _axis_index_collective)


# --------------------------------------------------------------------------- all_gather

def all_gather(x: Any, axis_name: AxisName, *, axis: int = 0, tiled: bool = False) -> Any:
    """Gather ``x`` (a pytree) from every member of the mapped axis ``axis_name``.

    The members' values are stacked along a new dimension ``axis`` (or concatenated
    along the existing dimension ``axis`` with ``tiled=True``); every member gets
    the whole result, as ``jax.lax.all_gather``.
    """
    if isinstance(axis_name, (tuple, list)):
        raise NotImplementedError("all_gather over a tuple of axis names; gather one name "
                                  "at a time")
    _check_axes(axis_name)

    def gather(leaf):
        leaf = as_operand(leaf)
        ndim = core.get_aval(leaf).ndim
        ax = canonicalize_axis(axis, ndim if tiled else ndim + 1, "all_gather")
        return all_gather_p.bind(leaf, axis_name=axis_name, axis=ax, tiled=bool(tiled),
                                 axis_size=axis_size(axis_name))
    return tree_util.map(gather, x)


def _all_gather_abstract(x, *, axis_name, axis, tiled, axis_size):
    if tiled:
        shape = x.shape[:axis] + (x.shape[axis] * axis_size,) + x.shape[axis + 1:]
    else:
        shape = x.shape[:axis] + (axis_size,) + x.shape[axis:]
    return ShapedArray(shape, x.dtype, x.weak_type)


def _all_gather_collective(trace, vals, dims, *, axis_name, axis, tiled, axis_size):
    (x,), (d,) = vals, dims
    if trace.axis_name != axis_name:  # gather in the parent; our batch dim rides in front
        if d is None:
            return all_gather_p.bind(x, axis_name=axis_name, axis=axis, tiled=tiled,
                                     axis_size=axis_size), None
        return all_gather_p.bind(batching.moveaxis(x, d, 0), axis_name=axis_name, axis=axis + 1,
                                 tiled=tiled, axis_size=axis_size), 0
    stacked = batching.moveaxis(batching.bdim_at_front(x, d, trace.axis_size), 0, axis)
    if not tiled:
        return stacked, None
    shape = core.get_aval(stacked).shape
    merged = shape[:axis] + (shape[axis] * shape[axis + 1],) + shape[axis + 2:]
    return reshape(stacked, merged), None


def _all_gather_transpose(ct, x, *, axis_name, axis, tiled, axis_size):
    """Each member's cotangent is its own slice of the summed cotangents."""
    ct = psum_p.bind(ad.instantiate(ct), axes=(axis_name,))
    shape = core.get_aval(ct).shape
    if tiled:
        shape = shape[:axis] + (axis_size, shape[axis] // axis_size) + shape[axis + 1:]
        ct = reshape(ct, shape)
    me = broadcast_in_dim(axis_index_p.bind(axis_name=axis_name), shape, ())
    mask = convert_to(eq(broadcasted_iota(np.dtype(np.int32), shape, axis), me), ct)
    return [reduce_sum(mul(ct, mask), (axis,))]


all_gather_p = _collective_prim("all_gather")
all_gather_p.def_abstract_eval(_all_gather_abstract)
ad.deflinear(all_gather_p, _all_gather_transpose)
batching.def_collective(all_gather_p, _all_gather_collective)


__all__ = ["psum", "psum_p", "pmean", "pmax", "pmax_p", "pmin", "pmin_p", "axis_index",
           "axis_index_p", "axis_size", "all_gather", "all_gather_p"]
