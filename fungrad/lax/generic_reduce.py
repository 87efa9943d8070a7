"""The generic reduction ``lax.reduce`` (XLA's ``Reduce``) with a user computation.

``reduce(operands, init_values, computation, dimensions)`` reduces several
operands at once with a computation on pytrees of scalars. As in JAX, a single
operand whose computation is ``lax.add``/``mul``/``max``/``min`` (or a bitwise
``and``/``or``/``xor`` on integers and booleans) and whose initial value is that
monoid's identity goes to the dedicated reduction primitive
(``reduce_sum``, ...); anything else binds ``reduce_p``, which carries the
computation traced to a jaxpr.

``reduce_p`` evaluates as a pairwise tree: the reduced axes are moved to the
front and flattened, then the first half of the rows is combined with the
second half (padded with the initial values when the count is odd) by the
computation vectorised over whole rows, until one row is left. Like XLA, this
assumes the computation and initial values form a monoid (associative, with
the initial values as identity); otherwise the result is unspecified. The
same tree, written with ``lax`` primitives, gives the JVP (as JAX's
``_reduce_jvp_rule``; initial values must not be differentiated), and hence
reverse mode; batching moves the batch axis out of the way.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Primitive, ShapedArray
from fungrad._core.eval import EVAL_TRACE
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax import bitwise, elementwise, reductions
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import as_operand
from fungrad.lax.control_flow.common import concrete_value
from fungrad.lax.shapes import (
    broadcast_in_dim,
    convert_element_type,
    reshape,
    transpose,
)
from fungrad.lax.slicing import concatenate, slice_in_dim

__all__ = ["reduce", "reduce_p"]


# --------------------------------------------------------------------------- monoids

def _max_identity(dtype: np.dtype) -> Any:
    return dtypes.extreme(dtype, largest=False)


def _min_identity(dtype: np.dtype) -> Any:
    return dtypes.extreme(dtype, largest=True)


# computation -> (reducer, identity for a dtype, integer/boolean operands only)
_MONOIDS: dict[Callable, tuple[Callable, Callable, bool]] = {
    elementwise.add: (reductions.reduce_sum, lambda dt: 0, False),
    elementwise.mul: (reductions.reduce_prod, lambda dt: 1, False),
    elementwise.max: (reductions.reduce_max, _max_identity, False),
    elementwise.min: (reductions.reduce_min, _min_identity, False),
    bitwise.bitwise_and: (reductions.reduce_and, lambda dt: np.array(-1).astype(dt), True),
    bitwise.bitwise_or: (reductions.reduce_or, lambda dt: 0, True),
    bitwise.bitwise_xor: (reductions.reduce_xor, lambda dt: 0, True),
}


def _monoid_reducer(computation: Callable, inits: Sequence[Any]) -> Callable | None:
    """The dedicated reduction for ``computation`` when its one initial value is a
    concrete identity of it (``jax.lax._get_monoid_reducer``)."""
    entry = _MONOIDS.get(computation) if len(inits) == 1 else None
    if entry is None:
        return None
    reducer, identity, int_like_only = entry
    aval = core.get_aval(inits[0])
    int_like = aval.dtype == np.bool_ or np.issubdtype(aval.dtype, np.integer)
    if aval.shape != () or (int_like_only and not int_like):
        return None
    value = concrete_value(inits[0])
    if value is None or not np.equal(value, np.asarray(identity(aval.dtype)).astype(aval.dtype)):
        return None
    return reducer


# --------------------------------------------------------------------------- the computation

@functools.lru_cache(maxsize=256)
def _computation_jaxpr(computation: Callable, avals: tuple[ShapedArray, ...], tree: Any
                       ) -> tuple[ClosedJaxpr, Any]:
    """``computation(xs, ys)`` over pytrees of scalars, as a jaxpr on the flat leaves."""
    store = {}

    def flat(*args: Any) -> list:
        n = len(args) // 2
        out = computation(tree_util.unflatten(tree, args[:n]), tree_util.unflatten(tree, args[n:]))
        leaves, store["tree"] = tree_util.flatten(out)
        return [as_operand(x) for x in leaves]
    jaxpr, consts, _ = pe.trace_to_jaxpr(flat, list(avals) * 2, name="reduce computation")
    if any(isinstance(c, core.Tracer) for c in consts):
        raise NotImplementedError("lax.reduce: the computation can't close over traced values")
    closed = ClosedJaxpr(jaxpr, consts)
    if store["tree"] != tree or [(a.shape, a.dtype) for a in closed.out_avals] != [
            ((), a.dtype) for a in avals]:
        raise TypeError(f"lax.reduce: the computation must return scalars of the same structure "
                        f"and dtypes as the initial values ({tree}, "
                        f"{[a.str_short() for a in avals]}); got "
                        f"{[a.str_short() for a in closed.out_avals]}")
    return closed, store["tree"]


def _pairwise(jaxpr: ClosedJaxpr, lefts: list, rights: list) -> list:
    """The computation applied elementwise to 1-D operands (a vmap of the scalar jaxpr)."""
    size = core.get_aval(lefts[0]).shape[0]
    trace = batching.BatchTrace(core.current_trace(), size)
    try:
        args = [batching.BatchTracer(trace, v, 0) for v in [*lefts, *rights]]
        with core.set_current_trace(trace):
            outs = core.eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, *args)
        pairs = [trace.unpack(o) for o in outs]
    finally:
        trace.invalidate()
    return [batching.bdim_at_front(v, d, size) for v, d in pairs]


def _tree_reduce(jaxpr: ClosedJaxpr, operands: Sequence[Any], inits: Sequence[Any],
                 dimensions: tuple[int, ...]) -> list:
    """``reduce_p``'s meaning, written with ``lax`` primitives (see the module docstring)."""
    shape = core.get_aval(operands[0]).shape
    kept = [d for d in range(len(shape)) if d not in dimensions]
    out_shape = tuple(shape[d] for d in kept)
    n, m = math.prod(shape[d] for d in dimensions), math.prod(out_shape)
    if n == 0:
        return [broadcast_in_dim(i, out_shape, ()) for i in inits]
    rows = [reshape(transpose(x, (*dimensions, *kept)), (n, m)) for x in operands]
    while n > 1:
        half = (n + 1) // 2
        lefts = [slice_in_dim(r, 0, half) for r in rows]
        rights = [slice_in_dim(r, half, n) for r in rows]
        if n % 2:
            rights = [concatenate([r, broadcast_in_dim(i, (1, m), ())], 0)
                      for r, i in zip(rights, inits)]
        outs = _pairwise(jaxpr, [reshape(x, (half * m,)) for x in lefts],
                         [reshape(x, (half * m,)) for x in rights])
        rows, n = [reshape(o, (half, m)) for o in outs], half
    return [reshape(r, out_shape) for r in rows]


# --------------------------------------------------------------------------- reduce_p

def _reduce_impl(xp: Any, *args: Any, jaxpr: ClosedJaxpr, dimensions: tuple[int, ...]) -> list:
    k = len(args) // 2
    with core.set_current_trace(EVAL_TRACE):
        outs = _tree_reduce(jaxpr, [Array(a) for a in args[:k]], [Array(a) for a in args[k:]],
                            dimensions)
    return [o._value for o in outs]


def _reduce_abstract_eval(*avals: ShapedArray, jaxpr: ClosedJaxpr,
                          dimensions: tuple[int, ...]) -> list:
    k = len(avals) // 2
    operands, inits = avals[:k], avals[k:]
    if any(i.shape != () for i in inits):
        raise ValueError(f"reduce found non-scalar initial value: {[i.shape for i in inits]}")
    if [o.dtype for o in operands] != [i.dtype for i in inits]:
        raise TypeError("reduce operand dtypes should match corresponding initial value dtypes, "
                        f"got operands={[o.str_short() for o in operands]} and initial_values="
                        f"{[i.str_short() for i in inits]}")
    shape = operands[0].shape
    if any(o.shape != shape for o in operands):
        raise TypeError(f"reduce: all operands must have the same shape, got "
                        f"{[o.shape for o in operands]}")
    if len(set(dimensions)) != len(dimensions) or any(not 0 <= d < len(shape)
                                                      for d in dimensions):
        raise ValueError(f"reduce: dimensions {dimensions} invalid for operands of shape {shape}")
    out_shape = tuple(s for d, s in enumerate(shape) if d not in dimensions)
    return [ShapedArray(out_shape, o.dtype, o.weak_type and i.weak_type)
            for o, i in zip(operands, inits)]


def _reduce_jvp(primals, tangents, *, jaxpr, dimensions):
    k = len(primals) // 2
    if any(type(t) is not ad.Zero for t in tangents[k:]):
        raise NotImplementedError("Gradient of general lax.reduce with non-zero tangents for "
                                  "initial values to reduction not implemented")
    trace = ad.JVPTrace(core.current_trace())
    try:
        args = [p if type(t) is ad.Zero else ad.JVPTracer(trace, p, t)
                for p, t in zip(primals[:k], tangents[:k])]
        with core.set_current_trace(trace):
            outs = _tree_reduce(jaxpr, args, primals[k:], dimensions)
        pairs = [trace.unpack(o) for o in outs]
    finally:
        trace.invalidate()
    return [p for p, _ in pairs], [t for _, t in pairs]


def _reduce_batch(axis_size, vals, dims, *, jaxpr, dimensions):
    k = len(vals) // 2
    if any(d is not None for d in dims[k:]):
        raise NotImplementedError("lax.reduce under vmap: the initial values must not be batched")
    operands = [batching.bdim_at_front(v, d, axis_size) for v, d in zip(vals[:k], dims[:k])]
    outs = reduce_p.bind(*operands, *vals[k:], jaxpr=jaxpr,
                         dimensions=tuple(d + 1 for d in dimensions))
    return outs, [0] * k


reduce_p = Primitive("reduce", multiple_results=True)
reduce_p.def_impl(_reduce_impl)
reduce_p.def_abstract_eval(_reduce_abstract_eval)
reduce_p.weak_type_rule = lambda weak_flags, **params: [
    a and b for a, b in zip(weak_flags[:len(weak_flags) // 2], weak_flags[len(weak_flags) // 2:])]
ad.def_jvp(reduce_p, _reduce_jvp)
batching.def_batch(reduce_p, _reduce_batch)


def reduce(operands: Any, init_values: Any, computation: Callable[[Any, Any], Any],
           dimensions: Sequence[int], out_sharding: Any = None) -> Any:
    """Reduce ``operands`` over ``dimensions`` with ``computation``, starting from
    ``init_values`` (``jax.lax.reduce``).

    ``operands`` and ``init_values`` are pytrees of one structure (arrays of one
    shape, and scalars of the same dtypes); ``computation(xs, ys)`` combines two
    such pytrees of scalars. ``computation`` and ``init_values`` must form a
    monoid, as for XLA. ``out_sharding`` puts the results on a device (see
    ``fungrad.lax._placement``; None leaves them where the operation runs).

    >>> import fungrad.numpy as jnp
    >>> from fungrad import lax
    >>> x = jnp.array([[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]])
    >>> lax.reduce(x, 0.0, lax.add, (1,))  # reduce_sum
    Array([6. , 3.5], dtype=float32)
    >>> idx = lax.broadcasted_iota(jnp.int32, x.shape, 1)
    >>> def argmax(a, b):  # (value, index) pairs: the larger value, the first index on ties
    ...     pick_a = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] < b[1]))
    ...     return lax.select(pick_a, a[0], b[0]), lax.select(pick_a, a[1], b[1])
    >>> lax.reduce((x, idx), (-jnp.inf, jnp.int32(2**31 - 1)), argmax, (1,))
    (Array([3., 4.], dtype=float32), Array([0, 1], dtype=int32))
    """
    flat_ops, tree = tree_util.flatten(operands)
    flat_inits, init_tree = tree_util.flatten(init_values)
    if tree != init_tree:
        raise ValueError("lax.reduce: operands must have the same tree structure as "
                         f"init_values: {tree} vs. {init_tree}")
    if not flat_ops:
        raise ValueError("lax.reduce: operands must contain at least one array")
    flat_ops = [as_operand(x) for x in flat_ops]
    flat_inits = [as_operand(x) for x in flat_inits]
    ndim = core.get_aval(flat_ops[0]).ndim
    dims = tuple(canonicalize_axis(d, ndim, "lax.reduce") for d in dimensions)
    reducer = _monoid_reducer(computation, flat_inits)
    if reducer is not None:
        weak = core.get_aval(flat_ops[0]).weak_type and core.get_aval(flat_inits[0]).weak_type
        out = reducer(flat_ops[0], dims)
        out = convert_element_type(out, core.get_aval(out).dtype, weak_type=weak)
    else:
        avals = tuple(ShapedArray(core.get_aval(i).shape, core.get_aval(i).dtype)
                      for i in flat_inits)
        jaxpr, out_tree = _computation_jaxpr(computation, avals, init_tree)
        outs = reduce_p.bind(*flat_ops, *flat_inits, jaxpr=jaxpr, dimensions=dims)
        out = tree_util.unflatten(out_tree, outs)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "lax.reduce")
