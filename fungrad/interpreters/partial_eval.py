"""Staging into the IR, and partial evaluation.

``JaxprTrace`` records primitives into a ``Jaxpr``. It runs in two modes:

* ``stage_all=True`` (``make_jaxpr``, ``jit``): every primitive is recorded.
  Values from enclosing traces or plain arrays become constvars (closure
  conversion); Python scalars become literals.
* ``stage_all=False`` (partial evaluation, used by ``linearize``/``vjp``):
  only primitives that touch an *unknown* value (one of this trace's own
  tracers) are recorded; everything else runs in the parent trace right away.
  Known values the recorded equations need become constvars: the residuals.

``partial_eval_jaxpr`` splits a jaxpr into its known and unknown halves by
running it under a staging trace topped with a partial-evaluation trace.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Iterator, Sequence

from fungrad._core import core
from fungrad._core.array import Array
from fungrad._core.core import (ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Primitive, ShapedArray,
                                Tracer, Var)
from fungrad.errors import MissingRuleError

# Rules for primitives that need more than "record the equation" under partial
# evaluation (call-like primitives: jit, checkpoint, control flow).
# rule(trace, args, params) -> outputs
_partial_eval_rules: dict[Primitive, Callable] = {}


def def_partial_eval(prim: Primitive, rule: Callable) -> None:
    """Register ``rule(trace, args, params) -> outs`` for a call-like primitive (``jit_p``,
    control flow) whose known and unknown parts must be split inside its sub-jaxpr."""
    _partial_eval_rules[prim] = rule


_NO_SOURCES: frozenset = frozenset()


class JaxprTracer(Tracer):
    """A staged value: its type and the IR variable that holds it in the jaxpr being built."""
    __slots__ = ("_aval", "ir_var", "sources")

    def __init__(self, trace: "JaxprTrace", aval: ShapedArray, var: Var, sources: frozenset):
        self._trace = trace
        self._aval = aval
        self.ir_var = var
        self.sources = sources  # names of the traced arguments this value depends on

    @property
    def aval(self) -> ShapedArray:
        return self._aval

    def _origin(self) -> str:
        where = (f"it depends on {' and '.join(sorted(self.sources))}" if self.sources
                 else "an intermediate value")
        return f"while tracing for {self._trace.name}; {where}"


class JaxprTrace(core.Trace):
    """Records primitive applications into a jaxpr (see module docstring)."""

    def __init__(self, parent: core.Trace, stage_all: bool = True, name: str = "jit") -> None:
        super().__init__(parent)
        self.stage_all = stage_all
        self.name = name
        self.invars: list[Var] = []
        self.eqns: list[JaxprEqn] = []
        self.constvars: list[Var] = []
        self.consts: list[Any] = []
        self._const_index: dict[int, Var] = {}

    # -- values in and out
    def new_arg(self, aval: ShapedArray, label: str | None = None) -> JaxprTracer:
        """A new input; ``label`` (e.g. "argument 'x'") is named in concretization errors."""
        var = Var(aval)
        self.invars.append(var)
        return JaxprTracer(self, aval, var, frozenset([label]) if label else _NO_SOURCES)

    def is_own(self, x: Any) -> bool:
        """Whether ``x`` is a tracer of this trace (not of an enclosing one)."""
        return type(x) is JaxprTracer and x._trace is self

    def lift(self, x: Any) -> Var | Literal:
        """The IR atom for ``x``: its var, a literal, or a new constvar."""
        if type(x) is JaxprTracer and x._trace is self:
            return x.ir_var
        self.check_foreign(x)
        if isinstance(x, (bool, int, float, complex)):
            return Literal(x, core.get_aval(x))
        if type(x) is Array and x.ndim == 0:
            return Literal(x, x.aval)
        var = self._const_index.get(id(x))
        if var is None:
            var = self._const_index[id(x)] = Var(core.get_aval(x))
            self.constvars.append(var)
            self.consts.append(x)
        return var

    def _sources(self, args: Sequence[Any]) -> frozenset:
        """The argument names the results depend on (the union over own-tracer inputs)."""
        out = _NO_SOURCES
        for a in args:
            if type(a) is JaxprTracer and a._trace is self and a.sources and a.sources is not out:
                out = a.sources if not out else out | a.sources
        return out

    # -- primitives
    def process_primitive(self, prim: Primitive, args: Sequence[Any], params: dict) -> Any:
        if not self.stage_all:
            if not any(type(a) is JaxprTracer and a._trace is self for a in args):
                return core.bind_in_parent(self, prim, args, params)
            rule = _partial_eval_rules.get(prim)
            if rule is not None:
                return rule(self, args, params)
        return self.stage(prim, args, params)

    def stage(self, prim: Primitive, args: Sequence[Any], params: dict,
              out_avals: Any = None) -> Any:
        """Record ``prim`` applied to ``args`` and return tracers for its results."""
        invars = [self.lift(a) for a in args]
        if out_avals is None:
            if prim.abstract_eval is None:
                raise MissingRuleError(prim, "abstract evaluation (shape/dtype)")
            out_avals = prim.abstract_eval(*[v.aval for v in invars], **params)
        sources = self._sources(args)
        if prim.multiple_results:
            outs = [JaxprTracer(self, a, Var(a), sources) for a in out_avals]
            self.eqns.append(JaxprEqn(prim, invars, [t.ir_var for t in outs], params))
            return outs
        out = JaxprTracer(self, out_avals, Var(out_avals), sources)
        self.eqns.append(JaxprEqn(prim, invars, [out.ir_var], params))
        return out

    def to_jaxpr(self, outs: Sequence[Any]) -> tuple[Jaxpr, list[Any]]:
        """The recorded jaxpr with ``outs`` as outputs, and its constants."""
        outvars = [self.lift(o) for o in outs]
        jaxpr = Jaxpr(list(self.constvars), list(self.invars), outvars, list(self.eqns))
        return jaxpr, list(self.consts)


def trace_to_jaxpr(fun: Callable, in_avals: Sequence[ShapedArray], name: str = "jit",
                   labels: Sequence[str] | None = None) -> tuple[Jaxpr, list[Any], Any]:
    """Stage ``fun(*args) -> list`` into a jaxpr. Returns (jaxpr, consts, fun's output)."""
    trace = JaxprTrace(core.current_trace(), stage_all=True, name=name)
    args = [trace.new_arg(a, labels[i] if labels else None) for i, a in enumerate(in_avals)]
    try:
        with core.set_current_trace(trace):
            outs = fun(*args)
        jaxpr, consts = trace.to_jaxpr(outs)
    finally:
        trace.invalidate()
    return jaxpr, consts, outs


def closed_call(closed: ClosedJaxpr, *args: Any) -> list:
    """Evaluate a closed jaxpr in the current trace (inlining it)."""
    return core.eval_jaxpr(closed.jaxpr, closed.consts, *args)


def convert_constvars_to_invars(jaxpr: Jaxpr) -> Jaxpr:
    """The same program with its constvars turned into leading invars."""
    return Jaxpr([], jaxpr.constvars + jaxpr.invars, jaxpr.outvars, jaxpr.eqns)


def partial_eval_jaxpr(closed: ClosedJaxpr, unknowns: Sequence[bool],
                       instantiate: bool | Sequence[bool] = False
                       ) -> tuple[ClosedJaxpr, ClosedJaxpr, list[bool], int]:
    """Split ``closed`` into a known and an unknown jaxpr.

    Returns ``(known, unknown, out_unknowns, num_res)``:
      known:   known inputs -> known outputs + residuals
      unknown: residuals + unknown inputs -> unknown outputs
    ``instantiate`` forces outputs to be unknown (computed by the unknown half).
    """
    n_out = len(closed.jaxpr.outvars)
    inst = [instantiate] * n_out if isinstance(instantiate, bool) else list(instantiate)
    known_trace = JaxprTrace(core.current_trace(), stage_all=True, name="partial_eval")
    unknown_trace = JaxprTrace(known_trace, stage_all=False, name="partial_eval")
    args = [unknown_trace.new_arg(a) if u else known_trace.new_arg(a)
            for a, u in zip(closed.in_avals, unknowns)]
    try:
        with core.set_current_trace(unknown_trace):
            outs = core.eval_jaxpr(closed.jaxpr, closed.consts, *args)
        out_unknowns = [unknown_trace.is_own(o) or i for o, i in zip(outs, inst)]
        # Known outputs the caller wants unknown are passed through as residuals.
        unknown_outs = []
        for o, u in zip(outs, out_unknowns):
            if u and not unknown_trace.is_own(o):
                unknown_trace.lift(o)
            if u:
                unknown_outs.append(o)
        unk_jaxpr, unk_consts = unknown_trace.to_jaxpr(unknown_outs)
        # Constants of the unknown half that the known half computes are residuals.
        res_vars, res_vals, keep_vars, keep_vals = [], [], [], []
        for v, c in zip(unk_jaxpr.constvars, unk_consts):
            if known_trace.is_own(c):
                res_vars.append(v)
                res_vals.append(c)
            else:
                keep_vars.append(v)
                keep_vals.append(c)
        unknown = ClosedJaxpr(Jaxpr(keep_vars, res_vars + unk_jaxpr.invars, unk_jaxpr.outvars,
                                    unk_jaxpr.eqns), keep_vals)
        known_outs = [o for o, u in zip(outs, out_unknowns) if not u]
        kn_jaxpr, kn_consts = known_trace.to_jaxpr(known_outs + res_vals)
        known = ClosedJaxpr(kn_jaxpr, kn_consts)
    finally:
        unknown_trace.invalidate()
        known_trace.invalidate()
    return known, unknown, out_unknowns, len(res_vals)


def dce_jaxpr(jaxpr: Jaxpr, used_outputs: Sequence[bool] | None = None) -> Jaxpr:
    """Drop equations whose results are never used, keeping those with side effects (also
    inside their sub-jaxprs: a ``cond`` holding an ``io_callback``)."""
    outvars = jaxpr.outvars if used_outputs is None else \
        [v for v, u in zip(jaxpr.outvars, used_outputs) if u]
    live = {v for v in outvars if type(v) is Var}
    eqns = []
    for eqn in reversed(jaxpr.eqns):
        if any(v in live for v in eqn.outvars) or eqn_has_effects(eqn):
            eqns.append(eqn)
            live.update(v for v in eqn.invars if type(v) is Var)
    return Jaxpr(jaxpr.constvars, jaxpr.invars, outvars, eqns[::-1])


# Primitives with side effects (callbacks, collectives) are never removed.
_EFFECTFUL: set[Primitive] = set()


def register_effectful(prim: Primitive) -> None:
    """Mark ``prim`` as having side effects, so dead-code elimination never removes it."""
    _EFFECTFUL.add(prim)


def sub_jaxprs(params: dict) -> Iterator[Jaxpr]:
    """The jaxprs carried in an equation's params (bodies of jit, cond, scan, ...)."""
    for value in params.values():
        items = value if isinstance(value, (tuple, list)) else (value,)
        for v in items:
            if isinstance(v, ClosedJaxpr):
                yield v.jaxpr
            elif isinstance(v, Jaxpr):
                yield v


_effects_cache: "weakref.WeakKeyDictionary[Jaxpr, bool]" = weakref.WeakKeyDictionary()


def jaxpr_has_effects(jaxpr: Jaxpr) -> bool:
    """Whether running ``jaxpr`` has side effects (recursively through sub-jaxprs)."""
    known = _effects_cache.get(jaxpr)
    if known is None:
        known = _effects_cache[jaxpr] = any(eqn_has_effects(e) for e in jaxpr.eqns)
    return known


def eqn_has_effects(eqn: JaxprEqn) -> bool:
    """Effectful primitives (``register_effectful``), or calls of effectful jaxprs."""
    return eqn.primitive in _EFFECTFUL or any(
        jaxpr_has_effects(j) for j in sub_jaxprs(eqn.params))
