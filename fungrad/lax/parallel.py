"""Named-axis collectives: ``psum``, ``pmean``, ``pmax``, ``pmin``, ``all_gather``,
``psum_scatter``, ``all_to_all``, ``ragged_all_to_all``, ``pswapaxes``, ``ppermute``,
``pshuffle``, ``pbroadcast``, ``axis_index``, ``axis_size`` and ``pcast``, over axes named by
``vmap(..., axis_name=...)``.

Each collective is a primitive with a *collective* batching rule
``rule(trace, vals, dims, **params)`` that every ``vmap`` trace sees, batched
operand or not. A trace whose ``axis_name`` is among the primitive's ``axes``
reduces over its own batch dimension and passes the remaining names on to the
enclosing trace; a trace with another name rebinds the primitive unchanged in
its parent. So ``psum(x, ('i', 'j'))`` inside two nested vmaps sums over both,
and a name no enclosing vmap binds is a ``NameError``, as in JAX.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Hashable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import as_operand
from fungrad.lax.bitwise import bitwise_and
from fungrad.lax.elementwise import (add, convert_to, div, eq, ge, lt, max as max_, mul, select,
                                     sub)
from fungrad.lax.reductions import reduce_max, reduce_min, reduce_sum
from fungrad.lax.shapes import (broadcast_in_dim, broadcasted_iota, collapse,
                                convert_element_type, expand_dims, full, iota, reshape, squeeze,
                                transpose)
from fungrad.lax.slicing import concatenate, dynamic_slice_in_dim, index_in_dim, index_take

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


def _unbound(name: Any, bound: Sequence, fn: str) -> NameError:
    return NameError(f"{fn}: unbound axis name: {name}. The following axis names (e.g. defined by "
                     f"vmap(..., axis_name=...)) are available to collective operations: "
                     f"{list(bound)}")


def _check_axes(axis_name: Any, fn: str) -> tuple:
    """The names of ``axis_name`` as a tuple; a ``NameError`` naming ``fn`` for a name that
    no enclosing ``vmap`` binds."""
    axes = _axis_tuple(axis_name)
    bound = _bound_axes()
    for name in axes:
        if name not in bound:
            raise _unbound(name, bound, fn)
    return axes


def _axis_sizes(axes: tuple) -> tuple[int, ...]:
    bound = _bound_axes()
    return tuple(bound[name] for name in axes)


def axis_size(axis_name: AxisName | Sequence[AxisName]) -> int:
    """The size of the named mapped axis (the product of sizes for a tuple of names)."""
    return math.prod(_axis_sizes(_check_axes(axis_name, "axis_size")))


def _single_axis(axis_name: Any, fn: str) -> AxisName:
    """``axis_name`` when it names one axis; the collectives that cannot span several
    names under ``vmap`` (in JAX too) raise, naming ``fn``."""
    if isinstance(axis_name, (tuple, list)):
        if len(axis_name) != 1:
            raise NotImplementedError(f"{fn} over a tuple of axis names {tuple(axis_name)}; "
                                      f"apply it to one name at a time")
        axis_name = axis_name[0]
    _check_axes(axis_name, fn)
    return axis_name


def _no_groups(axis_index_groups: Any, fn: str) -> None:
    if axis_index_groups is not None:
        raise NotImplementedError(f"{fn}: axis_index_groups is not supported under vmap "
                                  f"(got {axis_index_groups!r})")


def _collective_prim(name: str) -> Primitive:
    """A named-axis primitive; evaluated outside any ``vmap`` its axis is unbound."""
    def unbound_impl(xp, *args, **params):
        names = params.get("axes") or (params.get("axis_name"),)
        raise _unbound(names[0], [], name)
    prim = Primitive(name)
    prim.def_impl(unbound_impl)
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
    axes = _check_axes(axis_name, prim.name)
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
    size = math.prod(_axis_sizes(_check_axes(axis_name, "pmean")))

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
    _check_axes(axis_name, "axis_index")
    return axis_index_p.bind(axis_name=axis_name)


def _axis_index_collective(trace, vals, dims, *, axis_name):
    if trace.axis_name != axis_name:
        return axis_index_p.bind(axis_name=axis_name), None
    return iota(np.dtype(np.int32), trace.axis_size), 0


axis_index_p = _collective_prim("axis_index")
axis_index_p.def_abstract_eval(lambda *, axis_name: ShapedArray((), np.dtype(np.int32)))
ad.def_nondiff(axis_index_p)
batching.def_collective(axis_index_p, _axis_index_collective)


# --------------------------------------------------------------------------- shape helpers

def _split_dim(x: Any, dim: int, parts: int) -> Any:
    """Dimension ``dim`` of ``x`` split into ``(parts, size // parts)``, row-major."""
    shape = core.get_aval(x).shape
    return reshape(x, shape[:dim] + (parts, shape[dim] // parts) + shape[dim + 1:])


def _merge_dims(x: Any, dim: int, count: int = 2) -> Any:
    """Dimensions ``dim .. dim + count - 1`` of ``x`` merged into one, row-major."""
    return collapse(x, dim, dim + count)


def _member_mask(axis_name: AxisName, member: Any, shape: tuple, dimension: int | None,
                 like: Any) -> Any:
    """1 where this member's position along ``axis_name`` equals ``member`` (an iota along
    ``dimension``, or the scalar ``member`` when ``dimension`` is None), else 0, in
    ``like``'s dtype and broadcast to ``shape``."""
    me = broadcast_in_dim(axis_index_p.bind(axis_name=axis_name), shape, ())
    other = (broadcasted_iota(np.dtype(np.int32), shape, dimension) if dimension is not None
             else full(shape, member, np.dtype(np.int32)))
    return convert_to(eq(other, me), like)


def _check_split(fn: str, what: str, size: int, group: int, axis_name: Any, tiled: bool) -> None:
    """Raise when a dimension of ``size`` cannot be split over ``group`` members."""
    if tiled and size % group:
        raise ValueError(f"{fn}: the size of {what} ({size}) has to be divisible by the size "
                         f"of the named axis {axis_name} ({group})")
    if not tiled and size != group:
        raise ValueError(f"{fn} requires the size of the mapped axis {axis_name} ({group}) to "
                         f"equal the size of {what} ({size})")


# --------------------------------------------------------------------------- all_gather

def all_gather(x: Any, axis_name: AxisName, *, axis: int = 0, tiled: bool = False) -> Any:
    """Gather ``x`` (a pytree) from every member of the mapped axis ``axis_name``.

    The members' values are stacked along a new dimension ``axis`` (or concatenated
    along the existing dimension ``axis`` with ``tiled=True``); every member gets
    the whole result, as ``jax.lax.all_gather``.
    """
    axis_name = _single_axis(axis_name, "all_gather")
    size = axis_size(axis_name)

    def gather(leaf):
        leaf = as_operand(leaf)
        ndim = core.get_aval(leaf).ndim
        ax = canonicalize_axis(axis, ndim if tiled else ndim + 1, "all_gather")
        return all_gather_p.bind(leaf, axis_name=axis_name, axis=ax, tiled=bool(tiled),
                                 axis_size=size)
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
    return (_merge_dims(stacked, axis) if tiled else stacked), None


def _all_gather_transpose(ct, x, *, axis_name, axis, tiled, axis_size):
    """Each member's cotangent is its own slice of the summed cotangents."""
    ct = psum_p.bind(ad.instantiate(ct), axes=(axis_name,))
    if tiled:
        ct = _split_dim(ct, axis, axis_size)
    mask = _member_mask(axis_name, None, core.get_aval(ct).shape, axis, ct)
    return [reduce_sum(mul(ct, mask), (axis,))]


all_gather_p = _collective_prim("all_gather")
all_gather_p.def_abstract_eval(_all_gather_abstract)
ad.deflinear(all_gather_p, _all_gather_transpose)
batching.def_collective(all_gather_p, _all_gather_collective)



# --------------------------------------------------------------------------- psum_scatter

def psum_scatter(x: Any, axis_name: AxisName | Sequence[AxisName], *, scatter_dimension: int = 0,
                 axis_index_groups: Any = None, tiled: bool = False) -> Any:
    """``psum(x, axis_name)`` of which each member keeps only its own part
    (``jax.lax.psum_scatter``).

    Without ``tiled`` dimension ``scatter_dimension`` must have the axis size and member
    ``i`` gets row ``i`` of the sum (the dimension is removed); with ``tiled=True`` it must be
    divisible by the axis size and member ``i`` gets the ``i``-th block (the rank is kept).
    The first half of a ``psum``: ``all_gather(psum_scatter(x))`` is ``psum(x)``. A tuple of
    names scatters over their combined axis, the first name major (JAX's vmap supports one
    name only).
    """
    _no_groups(axis_index_groups, "psum_scatter")
    axes = _check_axes(axis_name, "psum_scatter")
    sizes = _axis_sizes(axes)
    group = math.prod(sizes)

    def scatter(leaf):
        leaf = as_operand(leaf)
        shape = core.get_aval(leaf).shape
        dim = canonicalize_axis(scatter_dimension, len(shape), "psum_scatter")
        _check_split("psum_scatter", f"scatter_dimension {scatter_dimension}", shape[dim], group,
                     axis_name, tiled)
        if len(axes) == 1:
            return reduce_scatter_p.bind(leaf, axis_name=axes[0], scatter_dimension=dim,
                                         tiled=bool(tiled), axis_size=group)
        # One untiled scatter per name over the combined axis split into its factors.
        block = (shape[dim] // group,) if tiled else ()
        leaf = reshape(leaf, shape[:dim] + sizes + block + shape[dim + 1:])
        for name, size in zip(axes, sizes):
            leaf = reduce_scatter_p.bind(leaf, axis_name=name, scatter_dimension=dim,
                                         tiled=False, axis_size=size)
        return leaf
    return tree_util.map(scatter, x)


def _reduce_scatter_abstract(x, *, axis_name, scatter_dimension, tiled, axis_size):
    dim = scatter_dimension
    rest = (x.shape[dim] // axis_size,) if tiled else ()
    return ShapedArray(x.shape[:dim] + rest + x.shape[dim + 1:], x.dtype, x.weak_type)


def _reduce_scatter_collective(trace, vals, dims, *, axis_name, scatter_dimension, tiled,
                               axis_size):
    (x,), (d,) = vals, dims
    dim = scatter_dimension
    if trace.axis_name != axis_name:  # scatter in the parent; our batch dim rides along
        params = dict(axis_name=axis_name, tiled=tiled, axis_size=axis_size)
        if d is None:
            return reduce_scatter_p.bind(x, scatter_dimension=dim, **params), None
        if d <= dim:
            return reduce_scatter_p.bind(x, scatter_dimension=dim + 1, **params), d
        return reduce_scatter_p.bind(x, scatter_dimension=dim, **params), d - (not tiled)
    # The sum's rows (blocks) along ``dim`` are the members' parts: that dim is the batch dim.
    total = _times_axis_size(x, axis_size) if d is None else reduce_sum(x, (d,))
    return (_split_dim(total, dim, axis_size) if tiled else total), dim


def _reduce_scatter_transpose(ct, x, *, axis_name, scatter_dimension, tiled, axis_size):
    """Each member's cotangent goes to every member, at its own position: an all_gather."""
    return [all_gather_p.bind(ad.instantiate(ct), axis_name=axis_name, axis=scatter_dimension,
                              tiled=tiled, axis_size=axis_size)]


reduce_scatter_p = _collective_prim("reduce_scatter")
reduce_scatter_p.def_abstract_eval(_reduce_scatter_abstract)
ad.deflinear(reduce_scatter_p, _reduce_scatter_transpose)
batching.def_collective(reduce_scatter_p, _reduce_scatter_collective)


# --------------------------------------------------------------------------- all_to_all

def all_to_all(x: Any, axis_name: AxisName | Sequence[AxisName], split_axis: int,
               concat_axis: int, *, axis_index_groups: Any = None, tiled: bool = False) -> Any:
    """Map dimension ``split_axis`` of ``x`` (a pytree) over the named axis and materialise
    the named axis at ``concat_axis`` (``jax.lax.all_to_all``).

    Member ``i`` sends its ``j``-th slice (block with ``tiled=True``) along ``split_axis`` to
    member ``j``, which stacks (concatenates) what it receives along ``concat_axis`` in member
    order. Untiled, ``x.shape[split_axis]`` must equal the axis size and the result has shape
    ``np.insert(np.delete(x.shape, split_axis), concat_axis, axis_size)``; tiled, it must be
    divisible by it and the rank is kept. A tuple of names exchanges over their combined axis,
    the first name major.
    """
    _no_groups(axis_index_groups, "all_to_all")
    axes = _check_axes(axis_name, "all_to_all")
    sizes = _axis_sizes(axes)
    group = math.prod(sizes)

    def exchange(leaf):
        leaf = as_operand(leaf)
        shape = core.get_aval(leaf).shape
        split = canonicalize_axis(split_axis, len(shape), "all_to_all")
        concat = canonicalize_axis(concat_axis, len(shape), "all_to_all")
        _check_split("all_to_all", f"split_axis {split_axis}", shape[split], group, axis_name,
                     tiled)
        if not tiled and split != concat:  # the tiled exchange onto a new size-1 dimension
            concat += split < concat
            leaf = expand_dims(leaf, (concat,))
            split += concat <= split
        out = _tiled_all_to_all(leaf, axes, sizes, split, concat)
        return out if tiled or split == concat else squeeze(out, (split,))
    return tree_util.map(exchange, x)


def _tiled_all_to_all(x: Any, axes: tuple, sizes: tuple, split: int, concat: int) -> Any:
    if len(axes) == 1:
        return all_to_all_p.bind(x, axis_name=axes[0], split_axis=split, concat_axis=concat,
                                 axis_size=sizes[0])
    # Over a combined axis: split ``split`` into one factor per name (then the block), swap
    # each factor with its name's members, and move the received member factors before
    # ``concat``, where they merge, first name major.
    shape, k = core.get_aval(x).shape, len(axes)
    x = reshape(x, shape[:split] + sizes + (shape[split] // math.prod(sizes),)
                + shape[split + 1:])
    for p, (name, size) in enumerate(zip(axes, sizes)):
        x = all_to_all_p.bind(x, axis_name=name, split_axis=split + p, concat_axis=split + p,
                              axis_size=size)
    rest = [i for i in range(len(shape) + k) if not split <= i < split + k]
    x = transpose(x, rest[:concat] + list(range(split, split + k)) + rest[concat:])
    return _merge_dims(x, concat, k + 1)


def _all_to_all_abstract(x, *, axis_name, split_axis, concat_axis, axis_size):
    shape = list(x.shape)
    shape[split_axis] //= axis_size
    shape[concat_axis] *= axis_size
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _all_to_all_collective(trace, vals, dims, *, axis_name, split_axis, concat_axis, axis_size):
    (x,), (d,) = vals, dims
    if trace.axis_name != axis_name:  # exchange in the parent; our batch dim rides along
        if d is None:
            return all_to_all_p.bind(x, axis_name=axis_name, split_axis=split_axis,
                                     concat_axis=concat_axis, axis_size=axis_size), None
        return all_to_all_p.bind(x, axis_name=axis_name, split_axis=split_axis + (d <= split_axis),
                                 concat_axis=concat_axis + (d <= concat_axis),
                                 axis_size=axis_size), d
    # (sender, ...) -> (sender, ..., receiver, block, ...): the receiver becomes the batch dim
    # and the sender joins concat_axis, major.
    x = _split_dim(batching.bdim_at_front(x, d, axis_size), split_axis + 1, axis_size)
    x = batching.moveaxis(batching.moveaxis(x, split_axis + 1, 0), 1, concat_axis + 1)
    return _merge_dims(x, concat_axis + 1), 0


def _all_to_all_transpose(ct, x, *, axis_name, split_axis, concat_axis, axis_size):
    """The cotangents go back the way the values came: split and concat swapped."""
    return [all_to_all_p.bind(ad.instantiate(ct), axis_name=axis_name, split_axis=concat_axis,
                              concat_axis=split_axis, axis_size=axis_size)]


all_to_all_p = _collective_prim("all_to_all")
all_to_all_p.def_abstract_eval(_all_to_all_abstract)
ad.deflinear(all_to_all_p, _all_to_all_transpose)
batching.def_collective(all_to_all_p, _all_to_all_collective)


def pswapaxes(x: Any, axis_name: AxisName | Sequence[AxisName], axis: int, *,
              axis_index_groups: Any = None) -> Any:
    """Swap the named axis with dimension ``axis`` of ``x`` (``jax.lax.pswapaxes``):
    ``all_to_all(x, axis_name, axis, axis)``, so ``x.shape[axis]`` must equal the axis size
    and the shape is kept."""
    return all_to_all(x, axis_name, axis, axis, axis_index_groups=axis_index_groups)


# --------------------------------------------------------------------------- ppermute

def ppermute(x: Any, axis_name: AxisName | Sequence[AxisName],
             perm: Sequence[tuple[int, int]]) -> Any:
    """Send ``x`` (a pytree) from member ``src`` to member ``dst`` of the named axis for
    each pair ``(src, dst)`` of ``perm`` (``jax.lax.ppermute``).

    No two pairs may share a source or a destination; a member that is no pair's
    destination receives zeros. (JAX's vmap rule accepts only complete permutations and
    skips the uniqueness check its compiled collective makes.)
    """
    axis_name = _single_axis(axis_name, "ppermute")
    size = axis_size(axis_name)
    pairs = []
    for pair in perm:
        try:
            src, dst = (operator.index(i) for i in pair)
        except (TypeError, ValueError):
            raise ValueError(f"ppermute: perm must be a sequence of (source, destination) "
                             f"pairs of ints, got {pair!r} in {perm!r}") from None
        if not (-size <= src < size and -size <= dst < size):
            raise ValueError(f"ppermute: perm pair {pair!r} is out of range for the axis "
                             f"{axis_name} of size {size}")
        pairs.append((src % size, dst % size))
    srcs, dsts = [p[0] for p in pairs], [p[1] for p in pairs]
    if len(set(srcs)) != len(srcs) or len(set(dsts)) != len(dsts):
        raise ValueError(f"ppermute: perm sources and destinations must be unique, got {perm!r}")
    return tree_util.map(lambda leaf: ppermute_p.bind(as_operand(leaf), axis_name=axis_name,
                                                      perm=tuple(pairs)), x)


def _ppermute_collective(trace, vals, dims, *, axis_name, perm):
    (x,), (d,) = vals, dims
    if trace.axis_name != axis_name:  # permute in the parent; our batch dim rides along
        return ppermute_p.bind(x, axis_name=axis_name, perm=perm), d
    source = {dst: src for src, dst in perm}
    if d is None and len(source) == trace.axis_size:
        return x, None  # every member holds the same value: a permutation changes nothing
    x = batching.bdim_at_front(x, d, trace.axis_size)
    zero = full((1,) + core.get_aval(x).shape[1:], 0, core.get_aval(x).dtype)
    rows = [index_in_dim(x, source[m], 0) if m in source else zero
            for m in range(trace.axis_size)]
    return concatenate(rows, 0), 0


def _ppermute_transpose(ct, x, *, axis_name, perm):
    """The cotangents go back the way the values came: the inverse permutation."""
    return [ppermute_p.bind(ad.instantiate(ct), axis_name=axis_name,
                            perm=tuple((dst, src) for src, dst in perm))]


ppermute_p = _collective_prim("ppermute")
ppermute_p.def_abstract_eval(lambda x, *, axis_name, perm: x)
ad.deflinear(ppermute_p, _ppermute_transpose)
batching.def_collective(ppermute_p, _ppermute_collective)


def pshuffle(x: Any, axis_name: AxisName | Sequence[AxisName], perm: Sequence[int]) -> Any:
    """``ppermute`` with the permutation given by sources: member ``i`` receives the value
    of member ``perm[i]`` (``jax.lax.pshuffle``); ``perm`` must be a permutation of
    ``range(axis_size)``."""
    perm = list(perm)
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"pshuffle: `perm` does not represent a permutation: {perm}")
    size = axis_size(_single_axis(axis_name, "pshuffle"))
    if len(perm) != size:
        raise ValueError(f"pshuffle: `perm` has {len(perm)} entries but the axis {axis_name} "
                         f"has size {size}")
    return ppermute(x, axis_name, list(zip(perm, range(len(perm)))))


# --------------------------------------------------------------------------- pbroadcast

def pbroadcast(x: Any, axis_name: AxisName | Sequence[AxisName], source: int) -> Any:
    """Every member of the named axis gets the value ``x`` (a pytree) of member ``source``
    (``jax.lax.pbroadcast``), as ``psum(where(axis_index(axis_name) == source, x, 0))``
    without the sum."""
    axis_name = _single_axis(axis_name, "pbroadcast")
    size = axis_size(axis_name)
    if not isinstance(source, (int, np.integer)) or not 0 <= source < size:
        raise ValueError(f"pbroadcast: source must be a member index in [0, {size}) of the "
                         f"axis {axis_name}, got {source!r}")
    return tree_util.map(lambda leaf: pbroadcast_p.bind(as_operand(leaf), axis_name=axis_name,
                                                        source=int(source)), x)


def _pbroadcast_collective(trace, vals, dims, *, axis_name, source):
    (x,), (d,) = vals, dims
    if trace.axis_name != axis_name:  # broadcast in the parent; our batch dim rides along
        return pbroadcast_p.bind(x, axis_name=axis_name, source=source), d
    return (x if d is None else index_in_dim(x, source, d, keepdims=False)), None


def _pbroadcast_transpose(ct, x, *, axis_name, source):
    """Every member's cotangent flows back to the source member."""
    total = psum_p.bind(ad.instantiate(ct), axes=(axis_name,))
    aval = core.get_aval(total)
    return [mul(total, _member_mask(axis_name, source, aval.shape, None, total))]


pbroadcast_p = _collective_prim("pbroadcast")
pbroadcast_p.def_abstract_eval(lambda x, *, axis_name, source: x)
ad.deflinear(pbroadcast_p, _pbroadcast_transpose)
batching.def_collective(pbroadcast_p, _pbroadcast_collective)


# --------------------------------------------------------------------------- ragged_all_to_all

_RAGGED_ARGS = ("input_offsets", "send_sizes", "output_offsets", "recv_sizes")


def _check_ragged(operand: Any, output: Any, lists: Sequence[Any]) -> None:
    """JAX's checks of ``ragged_all_to_all``'s arguments (its errors), and that the data
    arrays agree: the same dtype and the same shape but for the leading dimension."""
    avals = [core.get_aval(v) for v in lists]
    for name, aval in zip(_RAGGED_ARGS, avals):
        if not dtypes.is_integer(aval.dtype):
            raise ValueError(f"ragged_all_to_all {name} must be integer type.")
    for name, aval in zip(_RAGGED_ARGS, avals):
        if aval.ndim != 1 or aval.shape[0] < 1:
            raise ValueError(f"ragged_all_to_all {name} must be rank 1 with positive dimension "
                             f"size, but got shape {aval.shape}")
    if len({aval.shape for aval in avals}) != 1:
        raise ValueError("ragged_all_to_all: input_offsets, send_sizes, output_offsets and "
                         f"recv_sizes must have one length, got {[a.shape[0] for a in avals]}")
    op, out = core.get_aval(operand), core.get_aval(output)
    if op.dtype != out.dtype or op.ndim < 1 or op.shape[1:] != out.shape[1:]:
        raise TypeError("ragged_all_to_all: operand and output must have one dtype and the same "
                        f"shape but for the leading dimension, got {op.str_short()} and "
                        f"{out.str_short()}")


def ragged_all_to_all(operand: Any, output: Any, input_offsets: Any, send_sizes: Any,
                      output_offsets: Any, recv_sizes: Any, *, axis_name: AxisName,
                      axis_index_groups: Any = None) -> Any:
    """Exchange slices of ragged arrays between the members of a named axis
    (``jax.lax.ragged_all_to_all``).

    The offset and size lists have one length ``K``, a multiple of the axis size, and hold
    ``K // axis_size`` consecutive slots per destination member. Slot ``i`` of member ``s``
    sends ``operand[input_offsets[i]:][:size]`` to member ``i // (K // axis_size)``, which
    writes it into its ``output`` at row ``output_offsets[i]`` (an offset on the receiver);
    ``size`` is the receiver's ``recv_sizes`` entry for that slot (``send_sizes`` should hold
    the same: ``send_sizes == all_to_all(recv_sizes, axis_name, 0, 0, tiled=True)``). Rows
    nothing is written to keep ``output``'s values.

    Written with ``all_gather`` and gathers, so it differentiates with respect to
    ``operand`` and ``output`` and composes with ``jit`` and further ``vmap``s. JAX's
    ``vmap`` rejects it over the mapped axis (its CPU backend has no ragged all-to-all at
    all); here it works under ``vmap`` and ``shard_map`` alike.

    Args:
      operand: the rows to send, ``(N, ...)``.
      output: the rows to write into, ``(M, ...)``, of ``operand``'s dtype and trailing shape.
      input_offsets: where each slot's rows start in ``operand``.
      send_sizes: how many rows each slot sends.
      output_offsets: where each slot's rows go in the destination's ``output``.
      recv_sizes: how many rows arrive in each slot, by source member.
      axis_name: the mapped axis (one name).
      axis_index_groups: not supported under ``vmap`` (None).

    Returns:
      ``output`` with the received rows written into it.

    Raises:
      ValueError: the lists are not integer arrays of one positive length divisible by the
        axis size.
      TypeError: ``operand`` and ``output`` differ in dtype or trailing shape.
      RuntimeError: no mapped axis is bound (outside ``vmap`` and ``shard_map``).
      NameError: ``axis_name`` is not bound by an enclosing ``vmap`` or ``shard_map``.

    Examples:
      >>> import fungrad, fungrad.numpy as jnp
      >>> from fungrad import lax
      >>> f = fungrad.vmap(lambda *a: lax.ragged_all_to_all(*a, axis_name="i"), axis_name="i")
      >>> f(jnp.array([[1, 2, 2], [3, 4, 0]]), jnp.zeros((2, 4), int),
      ...   jnp.array([[0, 1], [0, 1]]), jnp.array([[1, 2], [1, 1]]),
      ...   jnp.array([[0, 0], [1, 2]]), jnp.array([[1, 1], [2, 1]]))
      Array([[1, 3, 0, 0],
             [2, 2, 4, 0]], dtype=int32)
    """
    _no_groups(axis_index_groups, "ragged_all_to_all")
    operand, output = as_operand(operand), as_operand(output)
    lists = [as_operand(v) for v in (input_offsets, send_sizes, output_offsets, recv_sizes)]
    _check_ragged(operand, output, lists)
    if not _bound_axes():
        raise RuntimeError("ragged_all_to_all must be used within a mapped context like vmap "
                           "or shard_map.")
    axis = _single_axis(axis_name, "ragged_all_to_all")
    group, count = axis_size(axis), core.get_aval(lists[0]).shape[0]
    if count % group:
        raise ValueError(f"ragged_all_to_all: the length of the offset and size lists ({count}) "
                         f"must be a multiple of the size of the axis {axis_name} ({group})")
    per = count // group
    i32 = np.dtype(np.int32)
    starts, _, dests, sizes = (convert_element_type(v, i32) for v in lists)

    def to_me(x: Any) -> Any:
        """Every member's slots addressed to this member, sender-major: ``(count,)``."""
        every = all_gather(x, axis)  # (group, count)
        mine = dynamic_slice_in_dim(every, mul(axis_index(axis), full((), per, i32)), per, 1)
        return reshape(mine, (count,))
    # Slot k (sender k // per) writes this member's rows [dests[k], dests[k] + sizes[k])
    # (sizes: this member's recv_sizes, in the same sender-major order) from the sender's
    # rows starting at starts[k]. Each output row takes the last slot covering it, if any.
    starts, dests = to_me(starts), to_me(dests)
    rows_out = core.get_aval(output).shape[0]
    rows = broadcasted_iota(i32, (count, rows_out), 1)
    first, end = (broadcast_in_dim(v, (count, rows_out), (0,)) for v in (dests, add(dests, sizes)))
    inside = bitwise_and(ge(rows, first), lt(rows, end))
    slots = broadcasted_iota(i32, (count, rows_out), 0)
    slot = reduce_max(select(inside, slots, full((count, rows_out), -1, i32)), (0,))
    hit = ge(slot, full((rows_out,), 0, i32))
    slot = max_(slot, full((rows_out,), 0, i32))
    source_row = add(index_take(starts, [slot], (0,)),
                     sub(iota(i32, rows_out), index_take(dests, [slot], (0,))))
    sender = div(slot, full((rows_out,), per, i32))
    data = index_take(all_gather(operand, axis), [sender, source_row], (0, 1))
    shape = core.get_aval(output).shape
    return select(broadcast_in_dim(hit, shape, (0,)), data, output)


# --------------------------------------------------------------------------- pcast

_PCAST_TO = ("varying", "reduced", "unreduced")


def pcast(x: Any, axis_name: AxisName | tuple, *, to: str) -> Any:
    """Cast ``x`` (a pytree) to vary over the mapped axes ``axis_name``
    (``jax.lax.pcast``).

    JAX's ``shard_map`` types each value by the mesh axes it varies over and asks for
    this cast where an invariant value meets varying ones. Here mapped axes are ``vmap``
    axes, whose batching rules broadcast invariant values as needed, so ``to="varying"``
    returns ``x`` unchanged once the names are checked; fungrad does not track the
    ``"reduced"`` and ``"unreduced"`` states of partial sums.

    Raises:
      TypeError: ``axis_name`` is a set.
      ValueError: ``to`` is not ``"varying"``, ``"reduced"`` or ``"unreduced"``, or no
        mapped axis is bound.
      NameError: a name no enclosing ``vmap``/``shard_map`` binds.
      NotImplementedError: ``to="reduced"`` or ``to="unreduced"``.
    """
    if isinstance(axis_name, (set, frozenset)):
        raise TypeError(f"{axis_name=} must be a tuple or a str. Got {axis_name}")
    if not axis_name:
        return x
    if to not in _PCAST_TO:
        raise ValueError(f"Got unexpected `to` value. Allowed `to` values are: {set(_PCAST_TO)}")
    if not _bound_axes():
        raise ValueError("pcast should be called under fungrad.shard_map (or a vmap that names "
                         "its axis)")
    _check_axes(axis_name, "pcast")
    if to != "varying":
        raise NotImplementedError(f"pcast to={to!r}: fungrad does not track reduced and "
                                  "unreduced values; only to='varying' is supported")
    return x


__all__ = ["psum", "psum_p", "pmean", "pmax", "pmax_p", "pmin", "pmin_p", "axis_index",
           "axis_index_p", "axis_size", "all_gather", "all_gather_p",
           "psum_scatter", "reduce_scatter_p", "all_to_all", "all_to_all_p", "pswapaxes",
           "ppermute", "ppermute_p", "pshuffle", "pbroadcast", "pbroadcast_p",
           "ragged_all_to_all", "pcast"]
