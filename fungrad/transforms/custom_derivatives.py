"""User-defined derivatives: ``custom_jvp`` and ``custom_vjp`` (as in JAX).

Calling a decorated function outside any transformation just runs it. Under a
transformation it binds ``custom_jvp_call_p`` / ``custom_vjp_call_p``, whose
operands are the closed-over values of the function (closure conversion: they
become explicit leading operands, ``num_consts`` of them) followed by the
flattened arguments, and whose params carry

* ``call_jaxpr``: the primal function, traced once (what eager evaluation,
  staging and batching use);
* the user's rules as flat Python callables (``jvp``; ``fwd`` and ``bwd``). They
  are hashable by identity, like every callable param, and are invoked lazily,
  only when a differentiation needs them, so a rule may call the function it
  defines the derivative of.

Differentiation (``JVPTrace``):
* custom_jvp: the rule runs on the primals and (zero-instantiated) tangents.
* custom_vjp: ``fwd`` runs on the primals, giving outputs and residuals; the
  tangent outputs are ``custom_lin_p(residuals, tangents)``, a *linear*
  primitive. Reverse mode stages it into the linear jaxpr (tangents are
  unknown), and its transpose rule calls the user's ``bwd``. Forward mode would
  have to evaluate it and raises, as in JAX.

Batching wraps the rules so they run under a fresh ``vmap`` trace of the same
axis, with their outputs' batch dimensions matched to the primal function's.
Closed-over values must not be differentiated (the rule does not know about
them): that raises an error, as in JAX. A rule may close over tracers of
transformations applied *outside* the differentiation.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable, Sequence

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.core import ClosedJaxpr, Primitive, ShapedArray
from fungrad._core.eval import EvalTrace
from fungrad._core.lowering import def_compiler_traits
from fungrad.errors import FungradTypeError, UnexpectedTracerError
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.ad_util import stop_gradient
from fungrad.lax.control_flow.common import as_leaf, flatten_operands, run_jaxpr, trace_fun
from fungrad.lax.reductions import reduce_sum
from fungrad.transforms.api import _fun_name, check_argnums

__all__ = ["custom_jvp", "custom_vjp", "SymbolicZero", "custom_jvp_call_p", "custom_vjp_call_p",
           "custom_lin_p", "CustomVJPPrimal", "custom_vjp_primal_tree_values", "zero_from_primal"]


class CustomDerivativeTracerError(UnexpectedTracerError):
    """A custom_jvp/custom_vjp function got a traced value where its rule cannot handle one.

    Either the function closes over a value that is being differentiated (the rule
    only describes derivatives with respect to the explicit arguments), or a traced
    value was passed at a custom_vjp ``nondiff_argnums`` position. Fix: pass arrays
    as ordinary (differentiable) arguments and adapt the rule.
    """

    def __init__(self, message: str) -> None:
        FungradTypeError.__init__(self, message)


class SymbolicZero:
    """The tangent of an argument that is not differentiated, as a custom JVP rule
    defined with ``defjvp(..., symbolic_zeros=True)`` sees it (``jax.custom_derivatives.
    SymbolicZero``): it has the tangent's ``aval``, ``shape`` and ``dtype`` and no value.
    A rule may also return one for a tangent output that is zero.
    """

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval

    shape = property(lambda self: self.aval.shape, doc="The shape of the zero tangent.")
    dtype = property(lambda self: self.aval.dtype, doc="The dtype of the zero tangent.")
    ndim = property(lambda self: self.aval.ndim, doc="The number of dimensions.")

    @staticmethod
    def from_primal_value(x: Any) -> SymbolicZero:
        """The symbolic zero tangent of primal value ``x``."""
        return SymbolicZero(_tangent_aval(core.get_aval(x)))

    def __repr__(self) -> str:
        return "SymbolicZero"


def zero_from_primal(val: Any, symbolic_zeros: bool = False) -> Any:
    """The zero tangent of each leaf of the pytree ``val``: a ``SymbolicZero`` with
    ``symbolic_zeros``, else an array of zeros of the tangent type (``float0`` for integers
    and booleans), as ``jax.custom_derivatives.zero_from_primal``.

    >>> import fungrad.numpy as jnp
    >>> zero_from_primal({"w": jnp.ones(2)})
    {'w': Array([0., 0.], dtype=float32)}
    """
    def zero(x: Any) -> Any:
        aval = _tangent_aval(core.get_aval(x))
        return SymbolicZero(aval) if symbolic_zeros else ad.instantiate(ad.Zero(aval))
    return tree_util.map(zero, val)


@dataclasses.dataclass(slots=True)
class CustomVJPPrimal:
    """A primal argument as a ``custom_vjp``'s ``fwd`` rule sees it under
    ``defvjp(..., symbolic_zeros=True)``: its ``value`` and whether it is ``perturbed``
    (differentiated; if not, its cotangent is never used)."""
    value: Any
    perturbed: bool


def custom_vjp_primal_tree_values(tree: Any) -> Any:
    """``tree`` with each ``CustomVJPPrimal`` leaf replaced by its ``value``: the arguments
    of a ``symbolic_zeros`` ``fwd`` rule as the function itself takes them. Any other leaf
    is a TypeError.

    >>> custom_vjp_primal_tree_values((CustomVJPPrimal(1.0, True), [CustomVJPPrimal(2, False)]))
    (1.0, [2])
    """
    def value(leaf: Any) -> Any:
        if type(leaf) is not CustomVJPPrimal:
            raise TypeError(f"unexpected leaf type {type(leaf)}")
        return leaf.value
    return tree_util.map(value, tree)


def _closure_error(kind: str, fname: str, aval: ShapedArray) -> CustomDerivativeTracerError:
    return CustomDerivativeTracerError(
        f"Detected differentiation of a {kind} function ({fname}) with respect to a "
        f"closed-over value {aval.str_short()}. That isn't supported because the custom "
        f"rule only specifies how to differentiate {fname} with respect to its explicit "
        "input parameters. Pass the closed-over value into the function as an argument "
        "and adapt the rule.")


# --------------------------------------------------------------------------- shared helpers

@functools.lru_cache(maxsize=512)
def _positional_count(fun: Callable) -> int:
    """How many positional parameters ``fun`` has (unbounded with ``*args``): a call with at
    least that many positional arguments and no keywords needs no resolving."""
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):  # no signature to read: take the arguments as given
        return 0
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 0
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _resolve_kwargs(fun: Callable, args: tuple, kwargs: dict, kind: str) -> tuple:
    """The arguments as positions, as JAX's ``resolve_kwargs``: keyword arguments moved to
    their places and omitted ones given their defaults (so ``nondiff_argnums`` can point at
    a defaulted argument)."""
    try:
        complete = not kwargs and len(args) >= _positional_count(fun)
    except TypeError:  # an unhashable callable: resolve every call
        complete = False
    if complete:
        return args
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"The input arguments to the {kind}-decorated function {_fun_name(fun)} "
                        f"could not be resolved to positional-only arguments: {e}") from None
    bound.apply_defaults()
    passed = sorted(k for k in bound.kwargs if k in kwargs)
    if passed:
        raise TypeError(f"The {kind}-decorated function {_fun_name(fun)} has keyword-only "
                        f"arguments {passed}; pass them positionally.")
    return bound.args


def _check_nondiff_argnums(nondiff_argnums: Any, fun: Callable, kind: str) -> tuple[int, ...]:
    """``nondiff_argnums`` as a sorted tuple of ints, checked at decoration time. It must
    be a sequence (a bare int is a TypeError, as in JAX)."""
    where = f"{kind}({_fun_name(fun)})"
    if isinstance(nondiff_argnums, str) or not isinstance(nondiff_argnums, Sequence):
        raise TypeError(f"{where}: nondiff_argnums must be a sequence of ints such as (1,), "
                        f"got {type(nondiff_argnums).__name__}: {nondiff_argnums!r}")
    return tuple(sorted(check_argnums(nondiff_argnums, where, "nondiff_argnums",
                                      allow_empty=True)))


def _nondiff_positions(nondiff_argnums: tuple[int, ...], nargs: int, fun: Callable, kind: str
                       ) -> tuple[int, ...]:
    """``nondiff_argnums`` as sorted non-negative positions among the ``nargs`` arguments
    of a call (an index out of range is an ``IndexError``, as in JAX)."""
    for n in nondiff_argnums:
        if not -nargs <= n < nargs:
            raise IndexError(f"{kind}({_fun_name(fun)}): nondiff_argnums={nondiff_argnums} "
                             f"refers to argument {n}, but the function was called with "
                             f"{nargs} positional arguments.")
    return tuple(sorted(n % nargs for n in nondiff_argnums))


def _split_nondiff(args: tuple, nondiff_argnums: tuple[int, ...]) -> tuple[list, list]:
    static = [args[i] for i in nondiff_argnums]
    dyn = [a for i, a in enumerate(args) if i not in nondiff_argnums]
    return static, dyn


def _merge_nondiff(static: Sequence, dyn: Sequence, nondiff_argnums: tuple[int, ...]) -> list:
    static_it, dyn_it = iter(static), iter(dyn)
    return [next(static_it) if i in nondiff_argnums else next(dyn_it)
            for i in range(len(static) + len(dyn))]


def _stop_traced_gradient(x: Any) -> Any:
    return stop_gradient(x) if isinstance(x, core.Tracer) else x


def _tangent_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape, dtypes.tangent_dtype(aval.dtype))


def _as_tangent(t: Any) -> Any:
    """float0 tangents (of integer outputs) are symbolic zeros, as in JAX."""
    if type(t) is not ad.Zero and core.get_aval(t).dtype == dtypes.float0:
        return ad.Zero(core.get_aval(t))
    return t


def _check_avals(what: str, got: Sequence[ShapedArray], want: Sequence[ShapedArray]) -> None:
    bad = [f"{g.str_short()} where {w.str_short()} was expected" for g, w in zip(got, want)
           if g.shape != w.shape or g.dtype != w.dtype]
    if len(got) != len(want) or bad:
        raise TypeError(f"{what}: " + ("; ".join(bad) if bad else
                                       f"{len(got)} values where {len(want)} were expected"))


def _call_weak_type_rule(weak_flags: Sequence[bool], *, call_jaxpr: ClosedJaxpr, **_: Any) -> list:
    return [a.weak_type for a in call_jaxpr.out_avals]


def _call_impl(xp: Any, *args: Any, call_jaxpr: ClosedJaxpr, **_: Any) -> list:
    return run_jaxpr(call_jaxpr, xp, args)


def _check_closure_tangents(kind: str, fname: str, consts: Sequence, tangents: Sequence) -> None:
    for c, t in zip(consts, tangents):
        if type(t) is not ad.Zero:
            raise _closure_error(kind, fname, core.get_aval(c))


def _owns_any(trace: core.Trace, flat_args: Sequence) -> bool:
    """Whether one of ``flat_args`` is a tracer of ``trace`` that it has work for: a
    perturbed JVP tracer, an unknown partial-evaluation value, a batched value."""
    if type(trace) is ad.JVPTrace:
        return any(type(a) is ad.JVPTracer and a._trace is trace and type(a.tangent) is not ad.Zero
                   for a in flat_args)
    return any(isinstance(a, core.Tracer) and a._trace is trace for a in flat_args)


def _call_trace(flat_args: Sequence) -> core.Trace:
    """The trace that handles a call of a custom-derivative function on ``flat_args``.

    Starting from the current trace, a JVP, partial-evaluation or (unnamed) batching
    trace that none of the arguments belong to passes the call on to its parent, as
    JAX's ``process_custom_jvp_call`` rebinds in the parent trace when the inputs
    carry no tangent or batch dimension. So under ``grad`` the rule's own call of
    the function reaches the eager trace and runs on concrete values (Python control
    flow works there), while a staging trace (``jit``, ``make_jaxpr``) still traces it.
    """
    trace = core.current_trace()
    while not _owns_any(trace, flat_args) and (
            type(trace) is ad.JVPTrace
            or (type(trace) is pe.JaxprTrace and not trace.stage_all)
            or (type(trace) is batching.BatchTrace and trace.axis_name is None)):
        trace = trace.parent
    return trace


def _trace_primal(fun: Callable, flat_args: list, in_tree: Any, kind: str
                  ) -> tuple[ClosedJaxpr, list, Any]:
    """The primal function as a const-free jaxpr over (closed-over values, flat args)."""
    store = {}

    def flat_fun(*args: Any) -> list:
        leaves, store["tree"] = tree_util.flatten(fun(*tree_util.unflatten(in_tree, args)))
        return leaves
    closed, consts, _ = trace_fun(flat_fun, [core.get_aval(x) for x in flat_args], kind)
    return closed, consts, store["tree"]


# --------------------------------------------------------------------------- rules under vmap

def _vmap_flat(fn: Callable, axis_size: int, axis_name: Any, args: Sequence,
               in_batched: Sequence[bool]) -> tuple[list, list]:
    """Run ``fn(args) -> flat outputs`` under a fresh vmap trace of the given axis.

    Inputs flagged in ``in_batched`` carry the batch dimension at axis 0.
    Returns the raw outputs and their batch dimensions (``None``: unbatched).
    """
    trace = batching.BatchTrace(core.current_trace(), axis_size, axis_name)
    try:
        wrapped = [batching.BatchTracer(trace, a, 0) if b and type(a) is not ad.Zero else a
                   for a, b in zip(args, in_batched)]
        with core.set_current_trace(trace):
            outs = fn(wrapped)
        pairs = [(o, None) if type(o) is ad.Zero else trace.unpack(o) for o in outs]
    finally:
        trace.invalidate()
    return [v for v, _ in pairs], [d for _, d in pairs]


def _match_batched(vals: Sequence, dims: Sequence, want: Sequence[bool], axis_size: int,
                   what: str) -> list:
    """Outputs with the batch dimension at 0 exactly where ``want`` says."""
    out = []
    for v, d, w in zip(vals, dims, want):
        if w and type(v) is ad.Zero:
            out.append(ad.Zero(ShapedArray((axis_size, *v.aval.shape), v.aval.dtype)))
        elif w:
            out.append(batching.bdim_at_front(v, d, axis_size))
        elif d is not None:
            raise ValueError(f"{what} produced a batched output where the custom function's "
                             "output is not batched; make the rule's outputs depend on the "
                             "same inputs as the function's.")
        else:
            out.append(v)
    return out


def _unbatched_zero(t: ad.Zero) -> ad.Zero:
    """A symbolic zero batched at axis 0, as one batch member sees it."""
    return ad.Zero(ShapedArray(t.aval.shape[1:], t.aval.dtype))


def _batch_inputs(vals: Sequence, dims: Sequence) -> list:
    return [v if d in (None, 0) else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]


def _batch_call_jaxpr(trace: batching.BatchTrace, call_jaxpr: ClosedJaxpr, dims: Sequence
                      ) -> tuple[ClosedJaxpr, list[bool]]:
    return batching.batch_jaxpr(call_jaxpr, trace.axis_size, [d is not None for d in dims],
                                False, trace.axis_name)


# =========================================================================== custom_jvp

class custom_jvp:
    """A function with a custom JVP rule (``jax.custom_jvp``).

    Differentiation uses the rule given with ``defjvp`` (or ``defjvps``) instead of
    tracing into the function, e.g. for numerical stability::

        @fungrad.custom_jvp
        def log1pexp(x):
            return fungrad.numpy.log1p(fungrad.numpy.exp(x))

        @log1pexp.defjvp
        def log1pexp_jvp(primals, tangents):
            x, = primals
            t, = tangents
            return log1pexp(x), t * fungrad.nn.sigmoid(x)

    Arguments at ``nondiff_argnums`` are passed first to the rule and are not
    differentiated (use them for functions and other non-array values).
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = _check_nondiff_argnums(nondiff_argnums, fun, "custom_jvp")
        self.jvp: Callable | None = None
        self.symbolic_zeros = False

    def defjvp(self, jvp: Callable, symbolic_zeros: bool = False) -> Callable:
        """Set the rule ``jvp(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)``.

        With ``symbolic_zeros=True`` the tangent of an argument that is not
        differentiated reaches the rule as a ``SymbolicZero`` (instead of an array
        of zeros), and the rule may return ``SymbolicZero`` tangents itself.
        """
        self.jvp, self.symbolic_zeros = jvp, bool(symbolic_zeros)
        return jvp

    def defjvps(self, *jvps: Callable | None) -> None:
        """One rule per argument: ``jvp_i(tangent_i, primal_out, *primals) -> tangent_out``
        (``None`` for an argument with zero derivative); the tangents are summed."""
        if self.nondiff_argnums:
            raise TypeError("Can't use ``defjvps`` with ``nondiff_argnums``.")

        def jvp(primals, tangents):
            out = self(*primals)
            terms = [rule(t, out, *primals) for rule, t in zip(jvps, tangents) if rule is not None]
            if not terms:
                return out, tree_util.map(lambda o: ad.zeros_like_aval(core.get_aval(o)), out)
            return out, tree_util.map(lambda *ts: functools.reduce(lambda a, b: a + b, ts),
                                      *terms)
        self.defjvp(jvp)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = _fun_name(self.fun)
        if self.jvp is None:
            raise AttributeError(f"No JVP defined for custom_jvp function {name} using defjvp.")
        args = _resolve_kwargs(self.fun, args, kwargs, "custom_jvp")
        nondiff = self.nondiff_argnums and _nondiff_positions(self.nondiff_argnums, len(args),
                                                              self.fun, "custom_jvp")
        if isinstance(core.current_trace(), EvalTrace):
            return self.fun(*args)
        static, dyn = _split_nondiff(args, nondiff)
        static = [tree_util.map(_stop_traced_gradient, s) for s in static]
        flat_args, in_tree = flatten_operands(tuple(dyn), f"custom_jvp {name}", "arguments")
        trace = _call_trace(flat_args)
        if isinstance(trace, EvalTrace):  # e.g. the rule's own call under grad: concrete
            with core.set_current_trace(trace):
                return self.fun(*args)
        if type(trace) is ad.JVPTrace:  # differentiated: apply the rule, never trace fun
            rule = _JVPRule(self.jvp, static, in_tree, None, None, name, self.symbolic_zeros)
            primals, tangents = zip(*[trace.unpack(a) for a in flat_args])
            with core.set_current_trace(trace.parent):
                outs, t_outs = rule(list(primals), list(tangents))
            flat_out = [trace.wrap(o, t) for o, t in zip(outs, t_outs)]
            return tree_util.unflatten(rule.out_tree, flat_out)
        fun = lambda *d: self.fun(*_merge_nondiff(static, d, nondiff))  # noqa: E731
        call_jaxpr, consts, out_tree = _trace_primal(fun, flat_args, in_tree, "custom_jvp")
        rule = _JVPRule(self.jvp, static, in_tree, out_tree, call_jaxpr.out_avals, name,
                        self.symbolic_zeros)
        outs = custom_jvp_call_p.bind(*consts, *flat_args, call_jaxpr=call_jaxpr, jvp=rule,
                                      num_consts=len(consts))
        return tree_util.unflatten(out_tree, outs)


class _JVPRule:
    """The user's JVP rule on flat lists: ``(primals, tangents) -> (outs, tangent_outs)``."""

    def __init__(self, jvp: Callable, static: Sequence, in_tree: Any, out_tree: Any,
                 out_avals: Sequence[ShapedArray] | None, fname: str,
                 symbolic_zeros: bool = False) -> None:
        self.jvp, self.static, self.in_tree = jvp, list(static), in_tree
        self.out_tree, self.out_avals, self.fname = out_tree, out_avals, fname
        self.symbolic_zeros = symbolic_zeros
        self.__name__ = _fun_name(jvp)

    def __call__(self, primals: Sequence, tangents: Sequence) -> tuple[list, list]:
        """Tangents in and out may be ``ad.Zero``: the rule sees ``SymbolicZero`` for them
        when it asked for symbolic zeros, arrays of zeros otherwise."""
        rname = f"Custom JVP rule {self.__name__} for function {self.fname}"
        tangents = [SymbolicZero(t.aval) if type(t) is ad.Zero and self.symbolic_zeros
                    else ad.instantiate(t) for t in tangents]
        pair = self.jvp(*self.static, tree_util.unflatten(self.in_tree, primals),
                        tree_util.unflatten(self.in_tree, tangents))
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{rname} must produce a pair (list or tuple of length two) "
                            f"representing primal and tangent outputs, but got {pair!r}.")
        outs, tree = flatten_operands(pair[0], rname, "primal outputs")
        t_leaves, t_tree = tree_util.flatten(pair[1])
        t_outs = [ad.Zero(t.aval) if type(t) is SymbolicZero else as_leaf(t, rname,
                                                                         "tangent outputs")
                  for t in t_leaves]
        if tree != t_tree:
            raise TypeError(f"{rname} must produce primal and tangent outputs with equal "
                            f"container (pytree) structures, but got {tree} and {t_tree}.")
        if self.out_tree is not None and tree != self.out_tree:
            raise TypeError(f"{rname} must produce a primal output with the same structure as "
                            f"the function's output {self.out_tree}, but got {tree}.")
        self.out_tree = tree
        avals = [core.get_aval(o) for o in outs]
        if self.out_avals is not None:
            _check_avals(f"{rname}: primal outputs", avals, self.out_avals)
        _check_avals(f"{rname} must produce primal and tangent outputs with corresponding "
                     "shapes and dtypes", [t.aval if type(t) is ad.Zero else core.get_aval(t)
                                           for t in t_outs],
                     [_tangent_aval(a) for a in avals])
        return outs, [t if type(t) is ad.Zero else _as_tangent(t) for t in t_outs]


class _BatchedJVPRule:
    """A JVP rule batched along one vmap axis (inputs and outputs batched at 0 where flagged)."""

    def __init__(self, rule: Callable, axis_size: int, axis_name: Any, in_batched: Sequence[bool],
                 out_batched: Sequence[bool]) -> None:
        self.rule, self.axis_size, self.axis_name = rule, axis_size, axis_name
        self.in_batched, self.out_batched = list(in_batched), list(out_batched)
        self.__name__, self.fname = rule.__name__, rule.fname

    def __call__(self, primals: Sequence, tangents: Sequence) -> tuple[list, list]:
        n = len(primals)
        tangents = [_unbatched_zero(t) if type(t) is ad.Zero and b else t
                    for t, b in zip(tangents, self.in_batched)]
        vals, dims = _vmap_flat(lambda a: sum(self.rule(a[:n], a[n:]), []), self.axis_size,
                                self.axis_name, [*primals, *tangents], self.in_batched * 2)
        out = _match_batched(vals, dims, self.out_batched * 2, self.axis_size,
                             f"custom JVP rule {self.__name__}")
        k = len(self.out_batched)
        return out[:k], out[k:]


def _custom_jvp_call_jvp(primals, tangents, *, call_jaxpr, jvp, num_consts):
    _check_closure_tangents("custom_jvp", jvp.fname, primals[:num_consts], tangents[:num_consts])
    return jvp(list(primals[num_consts:]), list(tangents[num_consts:]))


def _custom_jvp_call_batch(trace, vals, dims, *, call_jaxpr, jvp, num_consts):
    if trace.axis_name is None and all(d is None for d in dims):
        outs = custom_jvp_call_p.bind(*vals, call_jaxpr=call_jaxpr, jvp=jvp,
                                      num_consts=num_consts)
        return outs, [None] * len(call_jaxpr.out_avals)
    batched_call, out_batched = _batch_call_jaxpr(trace, call_jaxpr, dims)
    rule = _BatchedJVPRule(jvp, trace.axis_size, trace.axis_name,
                           [d is not None for d in dims[num_consts:]], out_batched)
    outs = custom_jvp_call_p.bind(*_batch_inputs(vals, dims), call_jaxpr=batched_call, jvp=rule,
                                  num_consts=num_consts)
    return outs, [0 if b else None for b in out_batched]


def call_primitive(name: str) -> Primitive:
    """A primitive that calls the jaxpr in its ``call_jaxpr`` param, the function a custom
    rule belongs to (``custom_jvp_call``, ``custom_vjp_call``, ``custom_vmap_call``): its
    impl, shape and weak-type rules, and the compiler inlining it. The caller adds the rules
    that make it custom."""
    prim = Primitive(name, multiple_results=True)
    prim.def_impl(_call_impl)
    prim.def_abstract_eval(lambda *avals, call_jaxpr, **_: list(call_jaxpr.out_avals))
    prim.weak_type_rule = _call_weak_type_rule
    def_compiler_traits(prim, inline=lambda params: params["call_jaxpr"])
    return prim


custom_jvp_call_p = call_primitive("custom_jvp_call")
ad.def_jvp(custom_jvp_call_p, _custom_jvp_call_jvp)
batching.def_collective(custom_jvp_call_p, _custom_jvp_call_batch)


# =========================================================================== custom_vjp

class custom_vjp:
    """A function with a custom VJP rule (``jax.custom_vjp``).

    Reverse-mode differentiation runs ``fwd(*args) -> (out, residuals)`` on the
    forward pass and ``bwd(residuals, cotangent_out) -> tuple of cotangents, one
    per argument`` on the backward pass::

        @fungrad.custom_vjp
        def clip_gradient(x):
            return x

        def fwd(x):
            return x, None

        def bwd(_, g):
            return (fungrad.numpy.clip(g, -1.0, 1.0),)

        clip_gradient.defvjp(fwd, bwd)

    Forward-mode differentiation (``jvp``) of a custom_vjp function is an error.
    Arguments at ``nondiff_argnums`` (functions, static values; not tracers) are
    passed first to ``bwd``; ``fwd`` receives all arguments in order.
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = _check_nondiff_argnums(nondiff_argnums, fun, "custom_vjp")
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self.symbolic_zeros = False

    def defvjp(self, fwd: Callable, bwd: Callable, symbolic_zeros: bool = False,
               optimize_remat: bool = False) -> None:
        """Set ``fwd(*args) -> (out, res)`` and ``bwd(*nondiff_args, res, ct) -> cts``.

        With ``symbolic_zeros=True``, ``fwd`` receives each argument leaf as a
        ``CustomVJPPrimal(value, perturbed)`` (``custom_vjp_primal_tree_values`` gives the
        values back), and ``bwd`` receives a ``SymbolicZero`` for each output cotangent
        that is zero; it may return ``SymbolicZero`` (or None) cotangents itself.
        ``optimize_remat`` is accepted for JAX's signature: fungrad runs ``fwd`` as it is.
        """
        self.fwd, self.bwd, self.symbolic_zeros = fwd, bwd, bool(symbolic_zeros)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = _fun_name(self.fun)
        if self.fwd is None:
            raise AttributeError(f"No VJP defined for custom_vjp function {name} using defvjp.")
        args = _resolve_kwargs(self.fun, args, kwargs, "custom_vjp")
        nondiff = self.nondiff_argnums and _nondiff_positions(self.nondiff_argnums, len(args),
                                                              self.fun, "custom_vjp")
        static, dyn = _split_nondiff(args, nondiff)
        for s in static:
            if any(isinstance(x, core.Tracer) for x in tree_util.leaves(s)):
                raise CustomDerivativeTracerError(
                    f"Found a traced value passed as an argument to the custom_vjp function "
                    f"{name} in a position indicated by nondiff_argnums as non-differentiable. "
                    "Tracers cannot be passed as non-differentiable arguments to custom_vjp "
                    "functions; nondiff_argnums should only be used for arguments that can't be "
                    "or contain arrays, e.g. function-valued arguments.")
        if isinstance(core.current_trace(), EvalTrace):
            return self.fun(*args)
        flat_args, in_tree = flatten_operands(tuple(dyn), f"custom_vjp {name}", "arguments")
        trace = _call_trace(flat_args)
        if isinstance(trace, EvalTrace):  # e.g. fwd's own call under grad: concrete
            with core.set_current_trace(trace):
                return self.fun(*args)
        fwd = _FwdRule(self.fwd, static, nondiff, in_tree, name, self.symbolic_zeros)
        bwd = _BwdRule(self.bwd, static, in_tree, [core.get_aval(a) for a in flat_args], name,
                       self.symbolic_zeros)
        if type(trace) is ad.JVPTrace:  # differentiated: run fwd now, stage bwd
            primals, tangents = zip(*[trace.unpack(a) for a in flat_args])
            with core.set_current_trace(trace.parent):
                outs, t_outs = _custom_vjp_jvp(fwd, bwd, list(primals), list(tangents))
            flat_out = [trace.wrap(o, t) for o, t in zip(outs, t_outs)]
            return tree_util.unflatten(fwd.out_tree, flat_out)
        fun = lambda *d: self.fun(*_merge_nondiff(static, d, nondiff))  # noqa: E731
        call_jaxpr, consts, out_tree = _trace_primal(fun, flat_args, in_tree, "custom_vjp")
        fwd.out_tree, fwd.out_avals = out_tree, call_jaxpr.out_avals
        outs = custom_vjp_call_p.bind(*consts, *flat_args, call_jaxpr=call_jaxpr, fwd=fwd,
                                      bwd=bwd, num_consts=len(consts))
        return tree_util.unflatten(out_tree, outs)


class _FwdRule:
    """The user's ``fwd`` on flat lists: ``primals -> (outs, residuals, residual tree)``."""

    def __init__(self, fwd: Callable, static: Sequence, nondiff: tuple[int, ...], in_tree: Any,
                 fname: str, symbolic_zeros: bool = False) -> None:
        self.fwd, self.static, self.nondiff, self.in_tree = fwd, list(static), nondiff, in_tree
        self.fname, self.out_tree, self.out_avals = fname, None, None
        self.symbolic_zeros = symbolic_zeros
        self.__name__ = _fun_name(fwd)

    def __call__(self, primals: Sequence, perturbed: Sequence[bool] | None = None
                 ) -> tuple[list, list, Any]:
        """``perturbed``: which primals are differentiated (all when None); with
        ``symbolic_zeros`` the rule sees them as ``CustomVJPPrimal`` leaves."""
        rname = f"Custom VJP fwd rule {self.__name__} for function {self.fname}"
        if self.symbolic_zeros:
            flags = [True] * len(primals) if perturbed is None else perturbed
            primals = [CustomVJPPrimal(p, bool(f)) for p, f in zip(primals, flags)]
        args = _merge_nondiff(self.static, tree_util.unflatten(self.in_tree, primals), self.nondiff)
        pair = self.fwd(*args)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{rname} must produce a pair (list or tuple of length two) where "
                            f"the first element represents the primal output and the second "
                            f"the residuals, but got {pair!r}.")
        outs, tree = flatten_operands(pair[0], rname, "primal outputs")
        if self.out_tree is not None and tree != self.out_tree:
            raise TypeError(f"{rname} must produce a primal output with the same structure as "
                            f"the function's output {self.out_tree}, but got {tree}.")
        if self.out_avals is not None:
            _check_avals(f"{rname}: primal outputs", [core.get_aval(o) for o in outs],
                         self.out_avals)
        self.out_tree = tree
        res, res_tree = flatten_operands(pair[1], rname, "residuals")
        return outs, res, res_tree


class _BwdRule:
    """The user's ``bwd`` on flat lists: ``(res_tree, out_tree, res, cts) -> input cotangents``
    (one per flat argument; ``Zero`` where the rule returned ``None``)."""

    def __init__(self, bwd: Callable, static: Sequence, in_tree: Any,
                 in_avals: Sequence[ShapedArray], fname: str, symbolic_zeros: bool = False
                 ) -> None:
        self.bwd, self.static, self.in_tree, self.in_avals = bwd, list(static), in_tree, in_avals
        self.fname, self.symbolic_zeros = fname, symbolic_zeros
        self.__name__ = _fun_name(bwd)

    def __call__(self, res_tree: Any, out_tree: Any, res: Sequence, cts: Sequence) -> list:
        """``cts`` may hold ``ad.Zero``: the rule sees a ``SymbolicZero`` for it with
        ``symbolic_zeros``, else an array of zeros."""
        rname = f"Custom VJP bwd rule {self.__name__} for function {self.fname}"
        cts = [(SymbolicZero(ct.aval) if self.symbolic_zeros else ad.instantiate(ct))
               if type(ct) is ad.Zero else ct for ct in cts]
        cts_in = self.bwd(*self.static, tree_util.unflatten(res_tree, res),
                          tree_util.unflatten(out_tree, cts))
        n_args = self.in_tree.num_children
        if not isinstance(cts_in, (tuple, list)) or len(cts_in) != n_args:
            raise TypeError(f"{rname} must produce a tuple of length equal to the number of "
                            f"differentiable arguments ({n_args}), but got {cts_in!r}.")
        # None (anywhere in the tree) is a zero cotangent for that part of the argument.
        per_leaf = tree_util.broadcast_prefix(tuple(cts_in), tree_util.unflatten(
            self.in_tree, self.in_avals), f"{rname} output")
        out = []
        for ct, aval in zip(per_leaf, self.in_avals):
            if ct is None or type(ct) is SymbolicZero or not dtypes.is_inexact(aval.dtype):
                out.append(ad.Zero(_tangent_aval(aval)))
                continue
            ct = as_leaf(ct, rname, "cotangents")
            if core.get_aval(ct).shape != aval.shape:
                raise ValueError(f"{rname} produced a cotangent of shape "
                                 f"{core.get_aval(ct).shape} for an argument of shape "
                                 f"{aval.shape}.")
            out.append(ct)
        return out


class _BoundBwd:
    """``bwd`` with the residual and output trees of one forward pass: ``(res, cts) -> cts``."""

    def __init__(self, bwd: Callable, res_tree: Any, out_tree: Any) -> None:
        self.bwd, self.res_tree, self.out_tree = bwd, res_tree, out_tree
        self.__name__ = bwd.__name__

    def __call__(self, res: Sequence, cts: Sequence) -> list:
        return self.bwd(self.res_tree, self.out_tree, res, cts)


def _custom_vjp_jvp(fwd: Callable, bwd: Callable, primals: Sequence, tangents: Sequence
                    ) -> tuple[list, list]:
    """Run ``fwd`` now; the tangents go through ``custom_lin_p``, transposed by ``bwd``."""
    in_zeros = tuple(type(t) is ad.Zero for t in tangents)
    outs, res, res_tree = fwd(primals, [not z for z in in_zeros])
    t_outs = custom_lin_p.bind(
        *res, *[t for t in tangents if type(t) is not ad.Zero], num_res=len(res),
        bwd=_BoundBwd(bwd, res_tree, fwd.out_tree), in_zeros=in_zeros,
        out_avals=tuple(_tangent_aval(core.get_aval(o)) for o in outs))
    return outs, [_as_tangent(t) for t in t_outs]


class _BatchedFwd:
    """``fwd`` batched along one vmap axis; residuals always come out batched at 0."""

    def __init__(self, fwd: Callable, axis_size: int, axis_name: Any, in_batched: Sequence[bool],
                 out_batched: Sequence[bool]) -> None:
        self.fwd, self.axis_size, self.axis_name = fwd, axis_size, axis_name
        self.in_batched, self.out_batched = list(in_batched), list(out_batched)
        self.__name__, self.fname = fwd.__name__, fwd.fname

    out_tree = property(lambda self: self.fwd.out_tree)

    def __call__(self, primals: Sequence, perturbed: Sequence[bool] | None = None
                 ) -> tuple[list, list, Any]:
        store = {}

        def run(args):
            outs, res, store["res_tree"] = self.fwd(args, perturbed)
            return outs + res
        vals, dims = _vmap_flat(run, self.axis_size, self.axis_name, primals, self.in_batched)
        k = len(self.out_batched)
        out = _match_batched(vals, dims, self.out_batched + [True] * (len(vals) - k),
                             self.axis_size, f"custom VJP fwd rule {self.__name__}")
        return out[:k], out[k:], store["res_tree"]


class _BatchedBwd:
    """``bwd`` batched along one vmap axis. The cotangent of an unbatched argument is the
    sum of the per-member cotangents."""

    def __init__(self, bwd: Callable, axis_size: int, axis_name: Any, in_batched: Sequence[bool],
                 out_batched: Sequence[bool]) -> None:
        self.bwd, self.axis_size, self.axis_name = bwd, axis_size, axis_name
        self.in_batched, self.out_batched = list(in_batched), list(out_batched)
        self.__name__ = bwd.__name__

    def __call__(self, res_tree: Any, out_tree: Any, res: Sequence, cts: Sequence) -> list:
        n = len(res)
        cts = [ad.instantiate(ct) for ct in cts]  # symbolic zeros are not batched
        vals, dims = _vmap_flat(lambda a: self.bwd(res_tree, out_tree, a[:n], a[n:]),
                                self.axis_size, self.axis_name, [*res, *cts],
                                [True] * n + self.out_batched)
        out = []
        for v, d, b in zip(vals, dims, self.in_batched):
            if type(v) is ad.Zero:
                out.append(v)
            elif b:
                out.append(batching.bdim_at_front(v, d, self.axis_size))
            else:
                out.append(v if d is None else reduce_sum(v, (d,)))
        return out


def _custom_vjp_call_jvp(primals, tangents, *, call_jaxpr, fwd, bwd, num_consts):
    _check_closure_tangents("custom_vjp", fwd.fname, primals[:num_consts], tangents[:num_consts])
    return _custom_vjp_jvp(fwd, bwd, primals[num_consts:], tangents[num_consts:])


def _custom_vjp_call_batch(trace, vals, dims, *, call_jaxpr, fwd, bwd, num_consts):
    if trace.axis_name is None and all(d is None for d in dims):
        return (custom_vjp_call_p.bind(*vals, call_jaxpr=call_jaxpr, fwd=fwd, bwd=bwd,
                                       num_consts=num_consts),
                [None] * len(call_jaxpr.out_avals))
    batched_call, out_batched = _batch_call_jaxpr(trace, call_jaxpr, dims)
    in_batched = [d is not None for d in dims[num_consts:]]
    fwd_b = _BatchedFwd(fwd, trace.axis_size, trace.axis_name, in_batched, out_batched)
    bwd_b = _BatchedBwd(bwd, trace.axis_size, trace.axis_name, in_batched, out_batched)
    outs = custom_vjp_call_p.bind(*_batch_inputs(vals, dims), call_jaxpr=batched_call, fwd=fwd_b,
                                  bwd=bwd_b, num_consts=num_consts)
    return outs, [0 if b else None for b in out_batched]


custom_vjp_call_p = call_primitive("custom_vjp_call")
ad.def_jvp(custom_vjp_call_p, _custom_vjp_call_jvp)
batching.def_collective(custom_vjp_call_p, _custom_vjp_call_batch)


# --------------------------------------------------------------------------- custom_lin

def _forward_mode_error(*args: Any, **params: Any) -> None:
    raise TypeError("can't apply forward-mode autodiff (jvp) to a custom_vjp function.")


def _custom_lin_transpose(cts, *args, num_res, bwd, in_zeros, out_avals):
    cts_in = bwd(list(args[:num_res]), list(cts))
    return [None] * num_res + [ct for ct, z in zip(cts_in, in_zeros) if not z]


# Linear in its tangent operands (after ``num_res`` residuals); only ever transposed.
custom_lin_p = Primitive("custom_lin", multiple_results=True)
custom_lin_p.def_impl(_forward_mode_error)
custom_lin_p.def_abstract_eval(lambda *avals, out_avals, **_: list(out_avals))
ad.def_transpose(custom_lin_p, _custom_lin_transpose)
ad.def_jvp(custom_lin_p, _forward_mode_error)
batching.def_batch(custom_lin_p, _forward_mode_error)
