"""Vectorisation (``vmap``): each value carries the position of its batch dimension.

A ``BatchTracer`` holds ``val`` (with the batch dimension inside it) and ``bdim``
(its position, or ``None`` when the value is the same for every batch member).
Batching rules receive ``(axis_size, vals, dims, **params)`` and return
``(out, out_dim)``; they move or create batch dimensions with primitives, never
with a Python loop over the batch.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fungrad._core import core
from fungrad._core.core import ClosedJaxpr, Primitive, ShapedArray, Tracer
from fungrad._core.structural import broadcast_in_dim_p, reshape_p, transpose_p
from fungrad.errors import MissingRuleError
from fungrad.interpreters import partial_eval as pe

not_mapped = None
_batch_rules: dict[Primitive, Callable] = {}
# Named-axis primitives (psum, axis_index, ...) need the trace: rule(trace, vals, dims, **params)
_collective_rules: dict[Primitive, Callable] = {}
# Primitives that have no batching rule on purpose, with the reason (``def_no_batch``).
_no_batch: dict[Primitive, str] = {}


class BatchTracer(Tracer):
    """A value under ``vmap``: the batched ``val`` and its batch dimension ``bdim``
    (``None`` when the value does not vary over the batch)."""
    __slots__ = ("val", "bdim")

    def __init__(self, trace: "BatchTrace", val: Any, bdim: int | None) -> None:
        self._trace = trace
        self.val = val
        self.bdim = bdim

    @property
    def aval(self) -> ShapedArray:
        aval = core.get_aval(self.val)
        if self.bdim is None:
            return aval
        shape = aval.shape[:self.bdim] + aval.shape[self.bdim + 1:]
        return ShapedArray(shape, aval.dtype, aval.weak_type)

    def _origin(self) -> str:
        return "a batched value inside vmap (each batch member may differ)"


class BatchTrace(core.Trace):
    """Vectorisation: applies each primitive's batching rule to (value, batch dim) pairs,
    or its named-axis collective rule; unbatched primitives run in the parent trace."""
    name = "vmap"

    def __init__(self, parent: core.Trace, axis_size: int, axis_name: Any = None) -> None:
        super().__init__(parent)
        self.axis_size = axis_size
        self.axis_name = axis_name

    def process_primitive(self, prim: Primitive, args: Sequence[Any], params: dict) -> Any:
        vals, dims = [], []
        for a in args:
            if type(a) is BatchTracer and a._trace is self:
                vals.append(a.val)
                dims.append(a.bdim)
            else:
                self.check_foreign(a)
                vals.append(a)
                dims.append(None)
        collective = _collective_rules.get(prim)
        if collective is not None:
            with core.set_current_trace(self.parent):
                out, out_dim = collective(self, vals, dims, **params)
        elif all(d is None for d in dims):
            return core.bind_in_parent(self, prim, vals, params)
        else:
            rule = _batch_rules.get(prim)
            if rule is None:
                raise MissingRuleError(prim, "batching (vmap)", _no_batch.get(prim))
            with core.set_current_trace(self.parent):
                out, out_dim = rule(self.axis_size, vals, dims, **params)
        if prim.multiple_results:
            return [self.wrap(o, d) for o, d in zip(out, out_dim)]
        return self.wrap(out, out_dim)

    def wrap(self, val: Any, bdim: int | None) -> Any:
        """A tracer of this trace, or ``val`` itself when it is not batched."""
        return val if bdim is None else BatchTracer(self, val, bdim)

    def unpack(self, x: Any) -> tuple[Any, int | None]:
        """``(value, batch dim)`` of ``x``; a value of another trace is unbatched (``None``)."""
        if type(x) is BatchTracer and x._trace is self:
            return x.val, x.bdim
        return x, None


def def_batch(prim: Primitive, rule: Callable) -> None:
    """Register ``rule(axis_size, vals, dims, **params) -> (out, out_dim)``."""
    _batch_rules[prim] = rule


def def_collective(prim: Primitive, rule: Callable) -> None:
    """Register a named-axis rule ``rule(trace, vals, dims, **params) -> (out, out_dim)``."""
    _collective_rules[prim] = rule


def def_no_batch(prim: Primitive, reason: str) -> None:
    """Declare that ``prim`` never needs a batching rule, and why (it takes no operands,
    or exists only inside compiled code); batching it raises ``MissingRuleError`` with
    ``reason``."""
    _no_batch[prim] = reason


def has_batch(prim: Primitive) -> bool:
    """Whether ``prim`` has a batching rule or a named-axis collective rule."""
    return prim in _batch_rules or prim in _collective_rules


def no_batch_reason(prim: Primitive) -> str | None:
    """Why ``prim`` has no batching rule, if it was declared with ``def_no_batch``."""
    return _no_batch.get(prim)


# --------------------------------------------------------------------------- helpers

def moveaxis(x: Any, src: int, dst: int) -> Any:
    """Move axis ``src`` of ``x`` to position ``dst`` (with a transpose primitive)."""
    if src == dst:
        return x
    ndim = core.get_aval(x).ndim
    perm = [i for i in range(ndim) if i != src]
    perm.insert(dst % ndim if dst >= 0 else ndim + dst, src)
    return transpose_p.bind(x, permutation=tuple(perm))


def bdim_at_front(x: Any, bdim: int | None, axis_size: int) -> Any:
    """``x`` with its batch dimension at position 0, broadcasting unbatched values."""
    if bdim is None:
        aval = core.get_aval(x)
        return broadcast_in_dim_p.bind(x, shape=(axis_size,) + aval.shape,
                                       broadcast_dimensions=tuple(range(1, aval.ndim + 1)))
    return moveaxis(x, bdim, 0)


def defvectorized(prim: Primitive) -> None:
    """Unary elementwise primitives: the batch dimension just rides along."""
    def rule(axis_size, vals, dims, **params):
        return prim.bind(*vals, **params), dims[0]
    _batch_rules[prim] = rule


def defbroadcasting(prim: Primitive) -> None:
    """N-ary elementwise primitives (operands of equal rank, size-1 dims broadcast).

    Batched operands get their batch dimension moved to the front; unbatched ones
    get a size-1 leading dimension, so nothing is materialised per batch member.
    """
    def rule(axis_size, vals, dims, **params):
        batched = {(d, core.get_aval(v).ndim) for v, d in zip(vals, dims) if d is not None}
        unbatched_scalars = all(core.get_aval(v).ndim == 0
                                for v, d in zip(vals, dims) if d is None)
        if len(batched) == 1 and unbatched_scalars:
            return prim.bind(*vals, **params), batched.pop()[0]  # batch dims already line up
        ndim = max(core.get_aval(v).ndim - (d is not None) for v, d in zip(vals, dims))
        out = []
        for v, d in zip(vals, dims):
            aval = core.get_aval(v)
            if d is None:
                shape = (1,) * (ndim + 1 - aval.ndim) + aval.shape
                out.append(reshape_p.bind(v, new_sizes=shape) if shape != aval.shape else v)
            else:
                v = moveaxis(v, d, 0)
                rank = aval.ndim - 1
                if rank < ndim:
                    shape = core.get_aval(v).shape
                    v = reshape_p.bind(v, new_sizes=shape[:1] + (1,) * (ndim - rank) + shape[1:])
                out.append(v)
        return prim.bind(*out, **params), 0
    _batch_rules[prim] = rule


def batch_jaxpr(closed: ClosedJaxpr, axis_size: int, batched: Sequence[bool],
                instantiate: bool | Sequence[bool], axis_name: Any = None
                ) -> tuple[ClosedJaxpr, list[bool]]:
    """Batch a jaxpr: inputs marked ``batched`` carry a leading batch dimension.

    Returns the batched jaxpr (outputs batched at axis 0 where the flag says so)
    and which outputs are batched. Used by primitives that carry jaxprs.
    """
    n_out = len(closed.jaxpr.outvars)
    inst = [instantiate] * n_out if isinstance(instantiate, bool) else list(instantiate)
    stage = pe.JaxprTrace(core.current_trace(), stage_all=True, name="vmap")
    trace = BatchTrace(stage, axis_size, axis_name)
    try:
        args = []
        for aval, b in zip(closed.in_avals, batched):
            if b:
                t = stage.new_arg(ShapedArray((axis_size,) + aval.shape, aval.dtype,
                                              aval.weak_type))
                args.append(BatchTracer(trace, t, 0))
            else:
                args.append(stage.new_arg(aval))
        with core.set_current_trace(trace):
            outs = core.eval_jaxpr(closed.jaxpr, closed.consts, *args)
        out_vals, out_batched = [], []
        for o, i in zip(outs, inst):
            v, d = trace.unpack(o)
            if d is None and not i:
                out_vals.append(v)
                out_batched.append(False)
            else:
                with core.set_current_trace(stage):
                    out_vals.append(bdim_at_front(v, d, axis_size))
                out_batched.append(True)
        jaxpr, consts = stage.to_jaxpr(out_vals)
    finally:
        trace.invalidate()
        stage.invalidate()
    return ClosedJaxpr(jaxpr, consts), out_batched
