"""``custom_vmap`` and ``sequential_vmap`` (``jax.custom_batching``; the public names are
in ``fungrad.custom_batching``). ``custom_vmap`` gives a function its own rule under ``vmap``::

    >>> import fungrad
    >>> from fungrad.custom_batching import custom_vmap
    >>> @custom_vmap
    ... def f(x, y):
    ...     return x + y
    >>> @f.def_vmap
    ... def f_vmap_rule(axis_size, in_batched, xs, ys):
    ...     return xs * ys, True
    >>> fungrad.vmap(f)(fungrad.numpy.arange(3.0), fungrad.numpy.arange(1.0, 4.0))
    Array([0., 2., 6.], dtype=float32)

Outside ``vmap`` (eagerly, under ``jit``) the function itself runs. Under a transformation
the call binds ``custom_vmap_call``, whose operands are the function's closed-over values
followed by its flattened arguments, and whose params carry ``call_jaxpr`` (the function,
traced once) and ``rule``, the user's rule on flat lists. Its batching rule calls the rule,
which runs in the enclosing trace (so with nested ``vmap``s each level that batches the
call applies the rule once, and outer levels batch what the rule did).

Differentiation goes through the function: the JVP of ``custom_vmap_call`` is a
``custom_vmap_call`` of the JVP jaxpr whose rule is the JVP of the user's rule, so ``vmap``
of ``jvp`` and ``jvp`` (or ``grad``) of ``vmap`` use the rule, as in JAX. Reverse mode of the
unbatched function works too (JAX raises there): the partial-evaluation rule splits the JVP
jaxpr into a known ``custom_vmap_call`` and the staged linear half. Batching that known half
(``vmap`` of ``grad``) is an error naming ``custom_vmap``, as JAX cannot do it either.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.eval import EvalTrace
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.control_flow.common import flatten_operands
from fungrad.lax.control_flow.loops import map as lax_map
from fungrad.transforms.api import _fun_name
from fungrad.transforms.custom_derivatives import (_as_tangent, _check_avals, _resolve_kwargs,
                                                   _trace_primal, _vmap_flat, call_primitive)

__all__ = ["custom_vmap", "sequential_vmap", "custom_vmap_call_p"]


class custom_vmap:
    """A function with a custom ``vmap`` rule (``jax.custom_batching.custom_vmap``).

    Under ``vmap`` the rule given with ``def_vmap`` runs instead of batching the function:
    ``rule(axis_size, in_batched, *args) -> (out, out_batched)``, where ``in_batched`` is
    a list of pytrees of bools matching ``args`` (batched arguments carry the batch
    dimension first) and ``out_batched`` a pytree of bools with the structure of ``out``.
    Everywhere else the function itself runs.
    """

    def __init__(self, fun: Callable) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.vmap_rule: Callable | None = None

    def def_vmap(self, vmap_rule: Callable) -> Callable:
        """Set the rule ``vmap_rule(axis_size, in_batched, *args) -> (out, out_batched)``;
        returns it unchanged (so this works as a decorator)."""
        self.vmap_rule = vmap_rule
        return vmap_rule

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = _fun_name(self.fun)
        args = _resolve_kwargs(self.fun, args, kwargs, "custom_vmap")
        if self.vmap_rule is None:
            raise AttributeError(f"No batching rule defined for custom_vmap function {name} "
                                 "using def_vmap.")
        if isinstance(core.current_trace(), EvalTrace):
            return self.fun(*args)
        flat_args, in_tree = flatten_operands(args, f"custom_vmap {name}", "arguments")
        call_jaxpr, consts, out_tree = _trace_primal(self.fun, flat_args, in_tree,
                                                     "custom_vmap")
        rule = _VmapRule(self.vmap_rule, len(consts), in_tree, out_tree, call_jaxpr.out_avals,
                         name)
        outs = custom_vmap_call_p.bind(*consts, *flat_args, call_jaxpr=call_jaxpr, rule=rule)
        return tree_util.unflatten(out_tree, outs)


class _VmapRule:
    """The user's rule on flat operands (closed-over values first):
    ``(axis_size, in_batched, operands) -> (outs, out_batched)``."""

    def __init__(self, rule: Callable, num_consts: int, in_tree: Any, out_tree: Any,
                 out_avals: Sequence[core.ShapedArray], fname: str) -> None:
        self.rule, self.num_consts, self.in_tree = rule, num_consts, in_tree
        self.out_tree, self.out_avals, self.fname = out_tree, list(out_avals), fname
        self.__name__ = _fun_name(rule)

    def __call__(self, axis_size: int, in_batched: Sequence[bool], operands: Sequence
                 ) -> tuple[list, list[bool]]:
        rname = f"custom vmap rule {self.__name__} for function {self.fname}"
        if any(in_batched[:self.num_consts]):
            raise ValueError(f"The custom_vmap function {self.fname} closes over a value that "
                             "vmap batches; the rule only sees the explicit arguments. Pass "
                             "the value as an argument.")
        args = tree_util.unflatten(self.in_tree, operands[self.num_consts:])
        flags = tree_util.unflatten(self.in_tree, in_batched[self.num_consts:])
        pair = self.rule(axis_size, list(flags), *args)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"The {rname} must return a pair (output, out_batched), "
                            f"got {pair!r}.")
        outs, tree = flatten_operands(pair[0], rname, "outputs")
        out_batched, batched_tree = tree_util.flatten(pair[1])
        if tree != batched_tree:
            raise ValueError(f"structure of output value and output batching specification "
                             f"returned by the {rname} do not match.\nOutput values: {tree}\n"
                             f"Batching spec: {batched_tree}")
        if tree != self.out_tree:
            raise ValueError(f"structure of output returned by the {rname} does not match that "
                             f"of the original custom-vmapped function.\nOriginal output: "
                             f"{self.out_tree}\nRule output: {tree}")
        out_batched = [bool(b) for b in out_batched]
        want = [a.update(shape=(axis_size, *a.shape)) if b else a
                for a, b in zip(self.out_avals, out_batched)]
        _check_avals(f"The {rname}: outputs", [core.get_aval(o) for o in outs], want)
        return outs, out_batched


class _JVPOfRule:
    """The JVP of a flat rule, for the JVP jaxpr's operands ``(primals, nonzero tangents)``.

    As in JAX, the rule sees as batched the primals whose tangents are batched too; the
    values batched on one side only are batched by an inner ``vmap`` of the same axis
    around the ``jvp`` of the rule.
    """

    def __init__(self, rule: Callable, nonzeros: Sequence[bool]) -> None:
        self.rule, self.nonzeros = rule, list(nonzeros)
        self.__name__ = f"jvp({rule.__name__})"

    def __call__(self, axis_size: int, in_batched: Sequence[bool], operands: Sequence
                 ) -> tuple[list, list[bool]]:
        n = len(self.nonzeros)
        t_flags = iter(in_batched[n:])
        t_batched = [nz and next(t_flags) for nz in self.nonzeros]
        mutual = [b and tb for b, tb in zip(in_batched[:n], t_batched)]
        extra = [b and not m for b, m in zip(in_batched, mutual + [
            m for m, nz in zip(mutual, self.nonzeros) if nz])]
        store = {}

        def primal_rule(*ps: Any) -> list:
            outs, store["batched"] = self.rule(axis_size, mutual, list(ps))
            return outs

        def jvp_of_rule(args: list) -> list:
            ts = iter(args[n:])
            tangents = [next(ts) if nz else ad.Zero.from_primal(p)
                        for p, nz in zip(args[:n], self.nonzeros)]
            outs, t_outs = ad.jvp_fun(primal_rule, args[:n], tangents)
            return outs + t_outs
        vals, dims = _vmap_flat(jvp_of_rule, axis_size, None, operands, extra)
        mutual_out = store["batched"] * 2
        if any(m and d is not None for m, d in zip(mutual_out, dims)):
            raise NotImplementedError(
                f"vmap of jvp of a custom_vmap function ({self.rule.__name__}): an output the "
                "rule batches also depends on an input batched only in its primal or only in "
                "its tangent. Batch each primal and its tangent alike.")
        vals = [v if d is None else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
        return vals, [m or d is not None for m, d in zip(mutual_out, dims)]


class _ReverseModeRule:
    """The rule of the known half of a linearised ``custom_vmap_call``: it cannot batch."""

    def __init__(self, rule: Callable) -> None:
        self.__name__ = f"linearize({rule.__name__})"

    def __call__(self, axis_size: int, in_batched: Sequence[bool], operands: Sequence) -> Any:
        raise NotImplementedError(
            "vmap of reverse-mode differentiation (grad, vjp, linearize) of a custom_vmap "
            "function is not supported, as in JAX. Apply vmap inside the differentiation "
            "(grad of vmap), or use forward mode (vmap of jvp).")


def _custom_vmap_batch(axis_size, vals, dims, *, call_jaxpr, rule):
    vals = [v if d is None else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    outs, out_batched = rule(axis_size, [d is not None for d in dims], vals)
    return outs, [0 if b else None for b in out_batched]


def _custom_vmap_jvp(primals, tangents, *, call_jaxpr, rule):
    nonzeros = [type(t) is not ad.Zero for t in tangents]
    jvp_jaxpr, _ = ad.jvp_jaxpr(call_jaxpr, nonzeros, instantiate=True)
    outs = custom_vmap_call_p.bind(*primals, *[t for t in tangents if type(t) is not ad.Zero],
                                   call_jaxpr=jvp_jaxpr, rule=_JVPOfRule(rule, nonzeros))
    n = len(call_jaxpr.out_avals)
    return outs[:n], [_as_tangent(t) for t in outs[n:]]


def _custom_vmap_partial_eval(trace, args, params):
    unknowns = [trace.is_own(a) for a in args]
    with core.set_current_trace(trace.parent):
        known, unknown, out_unknowns, num_res = pe.partial_eval_jaxpr(params["call_jaxpr"],
                                                                      unknowns)
        known_outs = custom_vmap_call_p.bind(*[a for a, u in zip(args, unknowns) if not u],
                                             call_jaxpr=known,
                                             rule=_ReverseModeRule(params["rule"]))
    n_known = len(known_outs) - num_res
    unknown_outs = iter(pe.closed_call(unknown, *known_outs[n_known:],
                                       *[a for a, u in zip(args, unknowns) if u]))
    known_vals = iter(known_outs[:n_known])
    return [next(unknown_outs) if u else next(known_vals) for u in out_unknowns]


custom_vmap_call_p = call_primitive("custom_vmap_call")
ad.def_jvp(custom_vmap_call_p, _custom_vmap_jvp)
pe.def_partial_eval(custom_vmap_call_p, _custom_vmap_partial_eval)
batching.def_batch(custom_vmap_call_p, _custom_vmap_batch)


def sequential_vmap(f: Callable) -> custom_vmap:
    """``custom_vmap(f)`` whose batched form loops over the batch with ``lax.map``
    (``jax.custom_batching.sequential_vmap``): for functions that cannot batch."""
    f = custom_vmap(f)

    @f.def_vmap
    def rule(axis_size: int, in_batched: list, *args: Any) -> tuple[Any, Any]:
        leaves, treedef = tree_util.flatten(list(args))
        flags = tree_util.leaves(in_batched)
        mapped = [x for x, b in zip(leaves, flags) if b]

        def one(xs: list) -> Any:
            it = iter(xs)
            return f(*tree_util.unflatten(treedef, [next(it) if b else x
                                                    for x, b in zip(leaves, flags)]))
        out = lax_map(one, mapped)
        return out, tree_util.map(lambda _: True, out)

    return f
