"""Collectives across processes: ``psum``, ``pmean``, ``pmax``, ``pmin``, ``all_gather``,
``broadcast``, ``axis_index`` and ``axis_size``, with JAX's names and semantics, and
``fused_pmean``, the mean of many arrays with one all-reduce.

The processes of the job form a mapped axis, as the devices of ``jax.pmap`` do; the
axis gets its name from ``process_axis(name)`` (``DataParallel.step`` binds its
``axis_name``). A name bound by an enclosing ``vmap(..., axis_name=...)`` is reduced by
``fungrad.lax.parallel`` instead (the innermost binding wins, as in JAX), so one call
can reduce over both: ``psum(x, ('batch', 'dp'))``. A name bound by neither is a
``NameError``, as in JAX.

Each process collective is a primitive with all its rules in one block: the impl (the
communicator of the bound group: MPI for host buffers, NCCL for GPU buffers), the shape
rule, the JVP, the transpose of the linear ones, the batching rule (under ``vmap`` over
a local batch every member is reduced across the processes: the batch dimension rides
along) and, for compiled code, the generic call of the impl. They are effectful
(``partial_eval.register_effectful``): ``jit``'s passes never fold, merge, drop or move
them to a worker thread, so every process issues the same collectives in the same order.

Derivatives are JAX's: ``psum`` is linear and its transpose is ``psum`` (each process's
cotangent reaches every process), so ``grad(lambda x: psum(x, 'dp'))(x)`` is
``process_count()`` everywhere and the gradient of ``pmean(loss(w), 'dp')`` is each
process's local gradient. ``DataParallel`` therefore averages gradients explicitly.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import canonicalize_axis
from fungrad.distributed import comm as comm_lib
from fungrad.distributed import runtime
from fungrad.distributed.runtime import DEFAULT_AXIS, AxisName
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax import parallel as lax_parallel
from fungrad.lax._prim import as_operand
from fungrad.lax.elementwise import convert_to, div, eq, mul
from fungrad.lax.shapes import convert_element_type, reshape
from fungrad.lax.slicing import dynamic_index_in_dim, index_in_dim


# --------------------------------------------------------------------------- axis names

def _names(axis_name: Any) -> tuple:
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _split(axis_name: Any, op: str) -> tuple[tuple, AxisName | None]:
    """The names bound by ``vmap`` and the process axis (or None) among ``axis_name``."""
    vmapped, process = lax_parallel._bound_axes(), runtime.bound_axis_name()
    mapped, proc = [], None
    for name in _names(axis_name):
        if name in vmapped:
            mapped.append(name)
        elif process is not None and name == process:
            proc = name
        else:
            available = list(vmapped) + ([process] if process is not None else [])
            raise NameError(f"unbound axis name: {name}. The following axis names (bound by "
                            "vmap(..., axis_name=...) or fungrad.distributed.process_axis(...)) "
                            f"are available to collective operations: {available} ({op})")
    return tuple(mapped), proc


def _single(axis_name: Any, op: str) -> tuple[tuple, AxisName | None]:
    if isinstance(axis_name, (tuple, list)):
        raise NotImplementedError(f"{op} over a tuple of axis names; use one name at a time")
    return _split(axis_name, op)


def axis_size(axis_name: AxisName | Sequence[AxisName]) -> int:
    """The size of the named axis: ``process_count()`` for the process axis, the ``vmap``
    size for a ``vmap`` axis, the product for a tuple of names (``jax.lax.axis_size``)."""
    mapped, proc = _split(axis_name, "axis_size")
    size = lax_parallel.axis_size(mapped) if mapped else 1
    return size * (runtime.group_of(proc, "axis_size").size if proc is not None else 1)


def _impl(op: str):
    def impl(xp, x, *, axis_name):
        return runtime.group_of(axis_name, f"process {op}").for_buffer(x).allreduce(x, op)
    return impl


def _collective(name: str, impl, multiple_results: bool = False) -> Primitive:
    prim = Primitive(name, multiple_results=multiple_results)
    prim.def_impl(impl)
    pe.register_effectful(prim)
    return prim


# --------------------------------------------------------------------------- psum / pmean

def _allreduce(x: Any, axis_name: Any, op: str, lax_fn, prim: Primitive) -> Any:
    """``lax_fn`` over the ``vmap`` names of ``axis_name``, then ``prim`` over the processes."""
    mapped, proc = _split(axis_name, op)

    def one(leaf):
        leaf = lax_fn(as_operand(leaf), mapped) if mapped else as_operand(leaf)
        return prim.bind(leaf, axis_name=proc) if proc is not None else leaf
    return tree_util.map(one, x)


def psum(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Sum ``x`` (a pytree) over the named axis or axes (``jax.lax.psum``).

    Every process gets the same total; ``psum(1, 'dp')`` is the number of processes.

    >>> import fungrad.numpy as jnp
    >>> from fungrad import distributed as dist
    >>> with dist.process_axis("dp"):  # without initialize(): a job of one process
    ...     print(dist.psum(jnp.arange(3.0), "dp"), dist.psum(1, "dp"))
    [0. 1. 2.] 1
    """
    return _allreduce(x, axis_name, "psum", lax_parallel.psum, process_psum_p)


process_psum_p = _collective("process_psum", _impl("sum"))
process_psum_p.def_abstract_eval(lambda x, *, axis_name: x)
ad.deflinear(process_psum_p,
             lambda ct, x, *, axis_name: [process_psum_p.bind(ad.instantiate(ct),
                                                              axis_name=axis_name)])
batching.defvectorized(process_psum_p)


def pmean(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Mean of ``x`` (a pytree) over the named axis or axes (``jax.lax.pmean``); integers
    are averaged in the default float dtype."""
    size = axis_size(axis_name)

    def one(leaf):
        total = psum(leaf, axis_name)
        if not dtypes.is_inexact(core.get_aval(total).dtype):
            total = convert_element_type(total, dtypes.default_float_dtype())
        return div(total, as_operand(size, core.get_aval(total).dtype))
    return tree_util.map(one, x)


# --------------------------------------------------------------------------- fused_pmean

def fused_pmean(x: Any, axis_name: AxisName = DEFAULT_AXIS) -> Any:
    """Average the floating-point leaves of ``x`` over ``axis_name`` with one all-reduce
    per dtype (``pmean`` leaf by leaf, fused).

    Over the process axis the leaves of each dtype go to one ``process_fused_pmean``
    equation, whose implementation copies them into one flat buffer (reused from step to
    step), all-reduces it into a second one and divides that by the number of processes;
    the results are views of it. A model of a hundred tensors costs one collective instead of a
    hundred latencies. ``float0`` leaves (gradients of integer inputs) pass through
    unchanged. Over names bound by ``vmap`` (alone or with the process axis) the leaves
    are averaged one by one with ``pmean``: there is nothing to fuse in one process.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import distributed as dist
        >>> grads = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
        >>> with dist.process_axis("dp"):
        ...     jaxpr = fungrad.make_jaxpr(dist.fused_pmean)(grads)
        >>> [e.primitive.name for e in jaxpr.eqns]
        ['process_fused_pmean']
    """
    leaves, treedef = tree_util.flatten(x)
    leaves = [as_operand(leaf) for leaf in leaves]
    mapped, proc = _split(axis_name, "fused_pmean")
    groups: dict[np.dtype, list[int]] = {}
    for i, leaf in enumerate(leaves):
        dt = core.get_aval(leaf).dtype
        if dt == dtypes.float0:
            continue
        if not dtypes.is_inexact(dt):
            raise TypeError(f"fused_pmean: leaf {i} has dtype {dt}; only floating-point leaves "
                            "(gradients, losses) can be averaged")
        groups.setdefault(dt, []).append(i)
    out = list(leaves)
    for idx in groups.values():
        group = [leaves[i] for i in idx]
        if mapped:
            means = pmean(group, axis_name)
        else:
            means = process_fused_pmean_p.bind(*group, axis_name=proc)
        for i, mean in zip(idx, means):
            out[i] = mean
    return tree_util.unflatten(treedef, out)


def _fused_pmean_impl(xp, *xs, axis_name):
    """Pack ``xs`` (one dtype) into a reusable flat buffer, all-reduce it into another,
    divide that by the number of processes, and return views of it in the shapes of ``xs``."""
    group = runtime.group_of(axis_name, "fused_pmean")
    comm = group.for_buffer(xs[0])
    dt = xs[0].dtype
    size, wide = sum(x.size for x in xs), comm_lib.reduction_dtype(dt)
    packed = comm_lib.reusable_buffer(xp, size, wide)
    xp.concatenate(xs, axis=None, out=packed)
    buf = comm_lib.reusable_buffer(xp, size, wide)
    comm.allreduce_into(packed, buf, "sum")
    del packed   # free for the next call
    if wide != dt:
        buf = buf.astype(dt)
    n = group.size
    if n & (n - 1) == 0:   # a power of two: x * (1 / n) rounds as x / n does, in half the time
        xp.multiply(buf, dt.type(1 / n), out=buf)
    else:
        xp.divide(buf, dt.type(n), out=buf)
    outs, start = [], 0
    for x in xs:
        stop = start + x.size
        # 0-d results as scalars: a held loss must not keep the whole buffer from reuse.
        outs.append(buf[start:stop].reshape(x.shape) if x.ndim else buf[start])
        start = stop
    return outs


def _fused_pmean_transpose(cts, *xs, axis_name):
    """The mean is linear and symmetric across processes: its transpose is itself."""
    return process_fused_pmean_p.bind(*[ad.instantiate(ct) for ct in cts], axis_name=axis_name)


def _fused_pmean_batch(size, vals, dims, *, axis_name):
    """Elementwise across processes: every operand keeps its batch dimension."""
    return process_fused_pmean_p.bind(*vals, axis_name=axis_name), list(dims)


process_fused_pmean_p = _collective("process_fused_pmean", _fused_pmean_impl, multiple_results=True)
process_fused_pmean_p.def_abstract_eval(lambda *xs, axis_name: list(xs))
process_fused_pmean_p.weak_type_rule = lambda weaks, **params: list(weaks)
ad.deflinear(process_fused_pmean_p, _fused_pmean_transpose)
batching.def_batch(process_fused_pmean_p, _fused_pmean_batch)


# --------------------------------------------------------------------------- pmax / pmin

def pmax(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Maximum of ``x`` (a pytree) over the named axis or axes (``jax.lax.pmax``)."""
    return _allreduce(x, axis_name, "pmax", lax_parallel.pmax, process_pmax_p)


def pmin(x: Any, axis_name: AxisName | Sequence[AxisName]) -> Any:
    """Minimum of ``x`` (a pytree) over the named axis or axes (``jax.lax.pmin``)."""
    return _allreduce(x, axis_name, "pmin", lax_parallel.pmin, process_pmin_p)


process_pmax_p = _collective("process_pmax", _impl("max"))
process_pmax_p.def_abstract_eval(lambda x, *, axis_name: x)
ad.def_jvp(process_pmax_p, lax_parallel.chooser_jvp(process_pmax_p, process_psum_p))
batching.defvectorized(process_pmax_p)

process_pmin_p = _collective("process_pmin", _impl("min"))
process_pmin_p.def_abstract_eval(lambda x, *, axis_name: x)
ad.def_jvp(process_pmin_p, lax_parallel.chooser_jvp(process_pmin_p, process_psum_p))
batching.defvectorized(process_pmin_p)



# --------------------------------------------------------------------------- axis_index

def axis_index(axis_name: AxisName) -> Any:
    """This member's position (int32) along the named axis: the process index for the
    process axis (``jax.lax.axis_index``). Traced, so a compiled function reads it at run
    time; use it for per-process keys: ``random.fold_in(key, axis_index('dp'))``."""
    mapped, proc = _single(axis_name, "axis_index")
    if mapped:
        return lax_parallel.axis_index(axis_name)
    return process_axis_index_p.bind(axis_name=proc)


def _axis_index_impl(xp, *, axis_name):
    return np.asarray(runtime.group_of(axis_name, "axis_index").rank, np.int32)


process_axis_index_p = _collective("process_axis_index", _axis_index_impl)
process_axis_index_p.def_abstract_eval(lambda *, axis_name: ShapedArray((), np.dtype(np.int32)))
ad.def_nondiff(process_axis_index_p)
batching.def_no_batch(process_axis_index_p, "it takes no operands, so vmap never batches it")


# --------------------------------------------------------------------------- all_gather

def all_gather(x: Any, axis_name: AxisName, *, axis: int = 0, tiled: bool = False) -> Any:
    """Gather ``x`` (a pytree) from every member of the named axis (``jax.lax.all_gather``).

    The members' values are stacked along a new dimension ``axis`` (concatenated along
    the existing dimension ``axis`` with ``tiled=True``), in process order; every member
    gets the whole result.
    """
    mapped, proc = _single(axis_name, "all_gather")
    if mapped:
        return lax_parallel.all_gather(x, axis_name, axis=axis, tiled=tiled)
    size = runtime.group_of(proc, "all_gather").size

    def one(leaf):
        leaf = as_operand(leaf)
        ndim = core.get_aval(leaf).ndim
        ax = canonicalize_axis(axis, ndim if tiled else ndim + 1, "all_gather")
        return process_all_gather_p.bind(leaf, axis_name=proc, axis=ax, tiled=bool(tiled),
                                         axis_size=size)
    return tree_util.map(one, x)


def _all_gather_impl(xp, x, *, axis_name, axis, tiled, axis_size):
    gathered = runtime.group_of(axis_name, "all_gather").for_buffer(x).allgather(x)
    stacked = xp.moveaxis(gathered, 0, axis)
    if not tiled:
        return stacked
    shape = stacked.shape
    return stacked.reshape(shape[:axis] + (shape[axis] * shape[axis + 1],) + shape[axis + 2:])


def _all_gather_abstract(x, *, axis_name, axis, tiled, axis_size):
    if tiled:
        shape = x.shape[:axis] + (x.shape[axis] * axis_size,) + x.shape[axis + 1:]
    else:
        shape = x.shape[:axis] + (axis_size,) + x.shape[axis:]
    return ShapedArray(shape, x.dtype, x.weak_type)


def _all_gather_transpose(ct, x, *, axis_name, axis, tiled, axis_size):
    """Each process's cotangent is its own block of the cotangents summed over processes."""
    ct = process_psum_p.bind(ad.instantiate(ct), axis_name=axis_name)
    shape = core.get_aval(ct).shape
    if tiled:
        ct = reshape(ct, shape[:axis] + (axis_size, shape[axis] // axis_size) + shape[axis + 1:])
    me = process_axis_index_p.bind(axis_name=axis_name)
    return [dynamic_index_in_dim(ct, me, axis, keepdims=False)]


def _all_gather_batch(size, vals, dims, *, axis_name, axis, tiled, axis_size):
    """The batch dimension goes first; the gathered one comes right after it."""
    (x,), (d,) = vals, dims
    return process_all_gather_p.bind(batching.moveaxis(x, d, 0), axis_name=axis_name, axis=axis + 1,
                                     tiled=tiled, axis_size=axis_size), 0


process_all_gather_p = _collective("process_all_gather", _all_gather_impl)
process_all_gather_p.def_abstract_eval(_all_gather_abstract)
ad.deflinear(process_all_gather_p, _all_gather_transpose)
batching.def_batch(process_all_gather_p, _all_gather_batch)


# --------------------------------------------------------------------------- broadcast

def broadcast(x: Any, axis_name: AxisName, *, root: int = 0) -> Any:
    """Every member of the named axis gets member ``root``'s value of ``x`` (a pytree).

    Over the process axis this is MPI's broadcast (mpi4jax's ``bcast``, JAX's
    ``multihost_utils.broadcast_one_to_all``); its transpose sums every process's
    cotangent into ``root``'s. ``DataParallel.init`` uses it so every process starts
    from process 0's parameters.
    """
    mapped, proc = _single(axis_name, "broadcast")
    size = axis_size(axis_name)
    try:
        root = operator.index(root)
    except TypeError:
        raise TypeError(f"broadcast: root must be an integer, got {type(root).__name__}") from None
    if not 0 <= root < size:
        raise ValueError(f"broadcast: root {root} is out of range for axis {axis_name!r} "
                         f"of size {size}")
    if mapped:
        return tree_util.map(lambda leaf: index_in_dim(
            lax_parallel.all_gather(leaf, axis_name), root, keepdims=False), x)
    return tree_util.map(lambda leaf: process_broadcast_p.bind(as_operand(leaf), axis_name=proc,
                                                               root=root), x)


def _broadcast_impl(xp, x, *, axis_name, root):
    return runtime.group_of(axis_name, "broadcast").for_buffer(x).bcast(x, root)


def _broadcast_transpose(ct, x, *, axis_name, root):
    total = process_psum_p.bind(ad.instantiate(ct), axis_name=axis_name)
    at_root = eq(process_axis_index_p.bind(axis_name=axis_name), as_operand(np.int32(root)))
    return [mul(total, convert_to(at_root, total))]


process_broadcast_p = _collective("process_broadcast", _broadcast_impl)
process_broadcast_p.def_abstract_eval(lambda x, *, axis_name, root: x)
ad.deflinear(process_broadcast_p, _broadcast_transpose)
batching.defvectorized(process_broadcast_p)


__all__ = ["psum", "pmean", "pmax", "pmin", "all_gather", "broadcast", "axis_index", "axis_size",
           "fused_pmean", "process_psum_p", "process_pmax_p", "process_pmin_p",
           "process_fused_pmean_p", "process_all_gather_p", "process_broadcast_p",
           "process_axis_index_p"]
