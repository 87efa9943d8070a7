"""Automatic differentiation: forward mode (JVP) and transposition.

Reverse mode is *JVP + partial evaluation + transposition*, as in JAX:
``linearize`` runs the JVP with primals known and tangents unknown, so the
tangent computation is staged into a linear jaxpr whose constants are the
residuals; ``vjp`` transposes that jaxpr (``backward_pass``). Consequences:
every differentiable primitive needs only a JVP rule, and only *linear*
primitives need a transpose rule; higher-order derivatives work because rules
are written with primitives and are themselves differentiable.

Zero tangents and cotangents are symbolic (``Zero``) and never materialised
unless an operation needs a concrete array. Integer and boolean values have
``float0`` tangents, as in JAX.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import core, dtypes, lowering
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Jaxpr, Literal, Primitive, ShapedArray, Tracer, Var
from fungrad._core.structural import broadcast_in_dim_p
from fungrad.errors import MissingRuleError
from fungrad.interpreters import batching
from fungrad.interpreters import partial_eval as pe

_jvp_rules: dict[Primitive, Callable] = {}
_transpose_rules: dict[Primitive, Callable] = {}
# Primitives that have no JVP on purpose, with the reason (``def_no_jvp``).
_no_jvp: dict[Primitive, str] = {}


# --------------------------------------------------------------------------- zeros

class Zero:
    """A symbolic zero tangent/cotangent of abstract value ``aval``."""
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval

    @staticmethod
    def from_primal(x: Any) -> "Zero":
        """The zero tangent of the primal ``x`` (dtype ``float0`` for integers and bools)."""
        aval = core.get_aval(x)
        return Zero(ShapedArray(aval.shape, dtypes.tangent_dtype(aval.dtype), aval.weak_type))

    def __repr__(self) -> str:
        return f"Zero({self.aval.str_short()})"


def zeros_like_aval(aval: ShapedArray) -> Any:
    """A concrete (or traced) array of zeros of ``aval``'s shape, dtype and weak type."""
    if aval.dtype == dtypes.float0:
        return np.zeros(aval.shape, dtypes.float0)
    zero = Array(np.zeros((), aval.dtype)[()], aval.weak_type)
    if not aval.shape:
        return zero
    return broadcast_in_dim_p.bind(zero, shape=aval.shape, broadcast_dimensions=())


def instantiate(t: Any) -> Any:
    """``t`` as an array: a symbolic ``Zero`` becomes an array of zeros."""
    return zeros_like_aval(t.aval) if type(t) is Zero else t


def add_tangents(x: Any, y: Any) -> Any:
    """``x + y`` for tangents or cotangents, skipping symbolic zeros (``add_any``)."""
    if type(x) is Zero:
        return y
    if type(y) is Zero:
        return x
    return add_any_p.bind(x, y)


# add_any: tangent/cotangent accumulation. Same shapes, linear in both arguments.
add_any_p = Primitive("add_any")
add_any_p.def_impl(lambda xp, x, y: xp.add(x, y))
add_any_p.def_abstract_eval(lambda x, y: x)


# --------------------------------------------------------------------------- JVP trace

class JVPTracer(Tracer):
    """A value under ``jvp``: its ``primal`` and its ``tangent`` (possibly a ``Zero``)."""
    __slots__ = ("primal", "tangent")

    def __init__(self, trace: "JVPTrace", primal: Any, tangent: Any) -> None:
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def aval(self) -> ShapedArray:
        return core.get_aval(self.primal)

    def to_concrete_value(self) -> Any:
        p = self.primal
        if type(p) is Array:
            return p._value
        return p.to_concrete_value() if isinstance(p, Tracer) else p


class JVPTrace(core.Trace):
    """Forward-mode differentiation: applies each primitive's JVP rule to (primal, tangent)
    pairs; primitives with only zero tangents run in the parent trace."""
    name = "jvp"

    def process_primitive(self, prim: Primitive, args: Sequence[Any], params: dict) -> Any:
        primals, tangents, differentiated = [], [], False
        for a in args:
            if type(a) is JVPTracer and a._trace is self:
                primals.append(a.primal)
                tangents.append(a.tangent)
                differentiated = differentiated or type(a.tangent) is not Zero
            else:
                self.check_foreign(a)
                primals.append(a)
                tangents.append(None)
        if not differentiated:
            return core.bind_in_parent(self, prim, primals, params)
        tangents = [Zero.from_primal(p) if t is None else t for p, t in zip(primals, tangents)]
        rule = _jvp_rules.get(prim)
        if rule is None:
            raise MissingRuleError(prim, "differentiation (JVP)", _no_jvp.get(prim))
        with core.set_current_trace(self.parent):
            out, t_out = rule(primals, tangents, **params)
        if prim.multiple_results:
            return [self.wrap(o, t) for o, t in zip(out, t_out)]
        return self.wrap(out, t_out)

    def wrap(self, primal: Any, tangent: Any) -> Any:
        """A tracer of this trace, or the primal itself when the tangent is a ``Zero``."""
        return primal if type(tangent) is Zero else JVPTracer(self, primal, tangent)

    def unpack(self, x: Any) -> tuple[Any, Any]:
        """``(primal, tangent)`` of ``x``; a value of another trace has a ``Zero`` tangent."""
        if type(x) is JVPTracer and x._trace is self:
            return x.primal, x.tangent
        return x, Zero.from_primal(x)


def jvp_fun(fun: Callable[..., Sequence[Any]], primals: Sequence[Any], tangents: Sequence[Any]
            ) -> tuple[list, list]:
    """``(fun(*primals), J @ tangents)`` for ``fun`` from arrays to a list of arrays, under a
    JVP trace on top of the current one; the output tangents are instantiated (``Zero``
    tangents in are accepted). ``fungrad.jvp`` adds pytrees and checks on top; the JVP rules
    of primitives written as composites of others (``reduce_prod``, ``cumprod``) call it
    directly, below the public API."""
    trace = JVPTrace(core.current_trace())
    try:
        args = [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)]
        with core.set_current_trace(trace):
            outs = fun(*args)
        pairs = [trace.unpack(o) for o in outs]
    finally:
        trace.invalidate()
    return [p for p, _ in pairs], [instantiate(t) for _, t in pairs]


# --------------------------------------------------------------------------- rule registrars

def def_jvp(prim: Primitive, rule: Callable) -> None:
    """Register a full rule ``(primals, tangents, **params) -> (out, tangent_out)``."""
    _jvp_rules[prim] = rule


def defjvp(prim: Primitive, *arg_rules: Callable | None) -> None:
    """JVP as a sum of per-argument terms: ``rule_i(t_i, *primals, **params)``.

    ``None`` marks an argument the output does not depend on differentiably.
    """
    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        t_out = Zero.from_primal(out)
        for r, t in zip(arg_rules, tangents):
            if r is not None and type(t) is not Zero:
                t_out = add_tangents(t_out, r(t, *primals, **params))
        return out, t_out
    _jvp_rules[prim] = rule


def defjvp2(prim: Primitive, *arg_rules: Callable | None) -> None:
    """Like ``defjvp`` but each term also sees the output: ``rule_i(t_i, out, *primals)``."""
    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        t_out = Zero.from_primal(out)
        for r, t in zip(arg_rules, tangents):
            if r is not None and type(t) is not Zero:
                t_out = add_tangents(t_out, r(t, out, *primals, **params))
        return out, t_out
    _jvp_rules[prim] = rule


def def_nondiff(prim: Primitive) -> None:
    """Outputs have zero tangents (comparisons, floor, argmax, integer ops...)."""
    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        if prim.multiple_results:
            return out, [Zero.from_primal(o) for o in out]
        return out, Zero.from_primal(out)
    _jvp_rules[prim] = rule


def def_no_jvp(prim: Primitive, reason: str) -> None:
    """Declare that ``prim`` is never differentiated, and why (a primitive that exists
    only inside compiled code, say); differentiating it raises ``MissingRuleError``
    with ``reason``. A primitive whose outputs merely have zero tangents uses
    ``def_nondiff`` instead."""
    _no_jvp[prim] = reason


def deflinear(prim: Primitive, transpose_rule: Callable) -> None:
    """A primitive linear in all its (array) arguments: the JVP applies it to the tangents."""
    def rule(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        if all(type(t) is Zero for t in tangents):
            t_out = ([Zero.from_primal(o) for o in out] if prim.multiple_results
                     else Zero.from_primal(out))
        else:
            t_out = prim.bind(*[instantiate(t) for t in tangents], **params)
        return out, t_out
    _jvp_rules[prim] = rule
    _transpose_rules[prim] = transpose_rule


def defbilinear(prim: Primitive, lhs_rule: Callable, rhs_rule: Callable) -> None:
    """``prim(x, y)`` linear in each argument (mul, dot_general, conv).

    ``lhs_rule(ct, x, y, **params)`` is the cotangent of x, ``rhs_rule`` that of y.
    """
    def jvp(primals, tangents, **params):
        x, y = primals
        tx, ty = tangents
        out = prim.bind(x, y, **params)
        t_out = Zero.from_primal(out)
        if type(tx) is not Zero:
            t_out = add_tangents(t_out, prim.bind(tx, y, **params))
        if type(ty) is not Zero:
            t_out = add_tangents(t_out, prim.bind(x, ty, **params))
        return out, t_out

    def transpose(ct, x, y, **params):
        ct_x = lhs_rule(ct, x, y, **params) if is_undefined(x) else None
        ct_y = rhs_rule(ct, x, y, **params) if is_undefined(y) else None
        return [ct_x, ct_y]
    _jvp_rules[prim] = jvp
    _transpose_rules[prim] = transpose


def def_transpose(prim: Primitive, rule: Callable) -> None:
    """Register ``rule(ct, *args, **params) -> [ct_arg or None, ...]`` for a linear primitive."""
    _transpose_rules[prim] = rule


def has_jvp(prim: Primitive) -> bool:
    """Whether ``prim`` has a JVP rule (the rule-coverage test asks)."""
    return prim in _jvp_rules


def no_jvp_reason(prim: Primitive) -> str | None:
    """Why ``prim`` has no JVP rule, if it was declared with ``def_no_jvp``."""
    return _no_jvp.get(prim)


def has_transpose(prim: Primitive) -> bool:
    """Whether ``prim`` has a transpose rule, i.e. is registered as linear."""
    return prim in _transpose_rules


def jvp_rule(prim: Primitive) -> Callable:
    """The JVP rule of ``prim`` (a ``KeyError`` if it has none)."""
    return _jvp_rules[prim]


def _add_any_batch(axis_size: int, vals: Sequence[Any], dims: Sequence[int | None]
                   ) -> tuple[Any, int]:
    """Both operands batched at the front: an unbatched one is broadcast to the batch
    size, since ``add_any`` (whose shape rule returns its first operand's type, and whose
    transpose hands the cotangent to both operands unchanged) needs equal shapes."""
    x, y = (batching.bdim_at_front(v, d, axis_size) for v, d in zip(vals, dims))
    return add_any_p.bind(x, y), 0


# add_any's rules, next to its definition above.
deflinear(add_any_p, lambda ct, x, y: [ct, ct])
batching.def_batch(add_any_p, _add_any_batch)
lowering.def_ufunc(add_any_p, "add", numexpr="({} + {})")
lowering.def_cuda(add_any_p, "({} + {})")


# --------------------------------------------------------------------------- transposition

class UndefinedPrimal:
    """Marks a linear input of a transpose rule: its value is not known."""
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval

    def __repr__(self) -> str:
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_undefined(x: Any) -> bool:
    """Whether ``x`` is an ``UndefinedPrimal``: a linear input in a transpose rule."""
    return type(x) is UndefinedPrimal


def backward_pass(jaxpr: Jaxpr, consts: list[Any], args: Sequence[Any],
                  cts_out: Sequence[Any], consume: bool = False) -> list[Any]:
    """Transpose the linear function ``jaxpr``: map output cotangents to input cotangents.

    ``args`` holds an ``UndefinedPrimal`` for each linear input and a value for
    each other input. Equations that do not depend on linear inputs are
    evaluated forward first. With ``consume=True`` the ``consts`` list is
    emptied and every residual is released right after its last use.
    """
    primal_env: dict[Var, Any] = dict(zip(jaxpr.constvars, consts))
    if consume:
        consts.clear()
    linear: set[Var] = set()
    for v, a in zip(jaxpr.invars, args):
        if is_undefined(a):
            linear.add(v)
        else:
            primal_env[v] = a

    def read(v: Any) -> Any:
        return v.val if type(v) is Literal else primal_env[v]

    linear_eqns = []
    for eqn in jaxpr.eqns:
        if any(type(v) is Var and v in linear for v in eqn.invars):
            linear_eqns.append(eqn)
            linear.update(eqn.outvars)
        else:
            outs = eqn.primitive.bind(*[read(v) for v in eqn.invars], **eqn.params)
            primal_env.update(zip(eqn.outvars, outs if eqn.primitive.multiple_results else [outs]))

    last_use: dict[Var, int] = {}
    for i, eqn in enumerate(linear_eqns):
        for v in eqn.invars:
            if type(v) is Var and v not in linear:
                last_use.setdefault(v, i)  # the backward sweep meets the first use last
    release_at: dict[int, list[Var]] = {}
    for v, i in last_use.items():
        release_at.setdefault(i, []).append(v)

    ct_env: dict[Var, Any] = {}
    for v, ct in zip(jaxpr.outvars, cts_out):
        if type(v) is Var and v in linear and type(ct) is not Zero:
            ct_env[v] = add_tangents(ct_env[v], ct) if v in ct_env else ct

    for i in range(len(linear_eqns) - 1, -1, -1):
        eqn = linear_eqns[i]
        cts = [ct_env.pop(v, None) for v in eqn.outvars]
        if all(ct is None for ct in cts):
            continue  # a symbolic zero cotangent: nothing flows back
        cts = [Zero(v.aval) if ct is None else ct for v, ct in zip(eqn.outvars, cts)]
        invals = [UndefinedPrimal(v.aval) if type(v) is Var and v in linear else read(v)
                  for v in eqn.invars]
        rule = _transpose_rules.get(eqn.primitive)
        if rule is None:
            raise MissingRuleError(eqn.primitive, "transpose (reverse-mode)")
        cts_in = rule(cts if eqn.primitive.multiple_results else cts[0], *invals, **eqn.params)
        for v, ct in zip(eqn.invars, cts_in):
            if ct is not None and type(ct) is not Zero and type(v) is Var and v in linear:
                ct_env[v] = add_tangents(ct_env[v], ct) if v in ct_env else ct
        if consume:
            for v in release_at.get(i, ()):
                primal_env.pop(v, None)
    return [ct_env.pop(v, Zero(v.aval)) if is_undefined(a) else None
            for v, a in zip(jaxpr.invars, args)]


# --------------------------------------------------------------------------- jaxpr-level JVP

def jvp_jaxpr(closed: ClosedJaxpr, nonzeros: Sequence[bool],
              instantiate: bool | Sequence[bool] = False) -> tuple[ClosedJaxpr, list[bool]]:
    """The JVP of a jaxpr, as a jaxpr: ``(primals, nonzero tangents) -> (outs, nonzero t_outs)``.

    Used by the JVP rules of primitives that carry jaxprs (jit, checkpoint, control flow).
    """
    n_out = len(closed.jaxpr.outvars)
    inst = [instantiate] * n_out if isinstance(instantiate, bool) else list(instantiate)
    stage = pe.JaxprTrace(core.current_trace(), stage_all=True, name="jvp")
    jvp_trace = JVPTrace(stage)
    try:
        primals = [stage.new_arg(a) for a in closed.in_avals]
        tangents = [stage.new_arg(Zero.from_primal(p).aval) if nz else None
                    for p, nz in zip(primals, nonzeros)]
        args = [JVPTracer(jvp_trace, p, t) if t is not None else p
                for p, t in zip(primals, tangents)]
        with core.set_current_trace(jvp_trace):
            outs = core.eval_jaxpr(closed.jaxpr, closed.consts, *args)
        out_p, out_t = zip(*[jvp_trace.unpack(o) for o in outs]) if outs else ((), ())
        out_nz = [type(t) is not Zero or i for t, i in zip(out_t, inst)]
        with core.set_current_trace(stage):  # zeros forced by `instantiate` are staged too
            out_t = [(zeros_like_aval(t.aval) if type(t) is Zero else t) if nz else None
                     for t, nz in zip(out_t, out_nz)]
        # Tangent inputs that are None were never created: drop them from the signature.
        jaxpr, consts = stage.to_jaxpr(list(out_p) + [t for t in out_t if t is not None])
    finally:
        jvp_trace.invalidate()
        stage.invalidate()
    return ClosedJaxpr(jaxpr, consts), out_nz

