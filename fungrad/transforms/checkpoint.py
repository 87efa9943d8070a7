"""Gradient checkpointing (rematerialisation): ``checkpoint`` / ``remat`` (as in JAX).

``checkpoint(f)`` computes the same values as ``f``; under reverse-mode
differentiation it saves only ``f``'s inputs (and whatever ``policy`` allows)
instead of every intermediate, and recomputes the forward pass of ``f`` inside
the backward pass. Peak memory of ``grad`` drops from "all activations of the
network" to "the inputs of each checkpointed block plus one block's
activations".

Mechanics: ``remat_p`` carries ``f``'s traced jaxpr (closed-over values become
leading operands).
* JVP: ``remat_p`` of the JVP jaxpr, so the tangent computation stays inside.
* Partial evaluation (what ``grad``/``vjp``/``linearize`` do): the known half
  runs now and returns only the primal outputs and the *saveable* residuals;
  the unknown half is a new ``remat_p`` eqn that takes the known inputs and
  those residuals and recomputes every other value it needs.
* Transposition: partially evaluate the inner jaxpr with the primal inputs
  known, run the known half (the recomputation), then transpose the linear
  half with ``backward_pass``.
* Batching: ``remat_p`` of the batched jaxpr.

Policies decide which intermediates may be saved:
``policy(prim, *in_avals, **params)`` returns a bool, ``Saveable``, ``Recompute`` or
``Offloadable(src, dst)`` (``checkpoint_policies``). fungrad keeps a computation's arrays in
one memory (the host's or one GPU's), so what JAX would offload to another memory is saved.
"""
from __future__ import annotations

import functools
import types
from typing import Any, Callable, NamedTuple, Sequence

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.core import ClosedJaxpr, Jaxpr, Primitive, Var
from fungrad._core.eval import EvalTrace
from fungrad._core.lowering import def_compiler_traits
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.control_flow.common import flatten_operands, run_jaxpr, split, trace_fun
from fungrad.lax.misc import optimization_barrier_p

__all__ = ["checkpoint", "remat", "checkpoint_name", "checkpoint_policies", "remat_p", "name_p",
           "Offloadable", "Recompute", "Saveable"]


# --------------------------------------------------------------------------- policy answers

class RecomputeType:
    """The type of ``Recompute``: a policy's answer "recompute this value in the backward
    pass". Falsy, so that a policy returning it composes with ``or`` like ``False``."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "Recompute"


class SaveableType:
    """The type of ``Saveable``: a policy's answer "keep this value for the backward pass"
    (truthy, like ``True``)."""

    def __repr__(self) -> str:
        return "Saveable"


Recompute = RecomputeType()
Saveable = SaveableType()


class Offloadable(NamedTuple):
    """A policy's answer "move this value from memory ``src`` to ``dst`` and back for the
    backward pass" (``jax.ad_checkpoint.Offloadable``). fungrad keeps a computation's
    arrays in one memory, so an offloadable value is saved where it is."""
    src: str
    dst: str


def _saves(answer: Any) -> bool:
    """Whether a policy's answer keeps the value: ``True``, ``Saveable`` or an
    ``Offloadable``; ``False`` and ``Recompute`` do not. Anything else is a TypeError."""
    if isinstance(answer, (bool, RecomputeType, SaveableType, Offloadable)):
        return bool(answer)
    hint = (" Did you return `Offloadable` instead of an instantiated `Offloadable(...)`?"
            if answer is Offloadable else "")
    raise TypeError("Value returned by a remat policy should be a bool or "
                    "`ad_checkpoint.Recompute`, `ad_checkpoint.Saveable` or "
                    f"`ad_checkpoint.Offloadable(...)`. Got {answer} of type "
                    f"{type(answer)}.{hint}")


# --------------------------------------------------------------------------- policies

def everything_saveable(*_: Any, **__: Any) -> bool:
    """Save every intermediate: as if ``checkpoint`` were not used."""
    return True


def nothing_saveable(*_: Any, **__: Any) -> bool:
    """Save nothing but the inputs; recompute everything else (the default)."""
    return False


def dots_saveable(prim: Primitive, *_: Any, **__: Any) -> bool:
    """Save the results of matrix multiplications and convolutions; recompute the rest."""
    return prim.name in ("dot_general", "conv_general_dilated")


def dots_with_no_batch_dims_saveable(prim: Primitive, *_: Any, **params: Any) -> bool:
    """Save the results of ``dot_general`` without batch dimensions (plain matmuls)."""
    if prim.name != "dot_general":
        return False
    (_, _), (lhs_batch, rhs_batch) = params["dimension_numbers"]
    return not lhs_batch and not rhs_batch


def save_only_these_names(*names: str) -> Callable[..., bool]:
    """Save only values marked with ``checkpoint_name`` under one of ``names``."""
    allowed = frozenset(names)
    return lambda prim, *_, **params: prim is name_p and params["name"] in allowed


def save_any_names_but_these(*names: str) -> Callable[..., bool]:
    """Save values marked with ``checkpoint_name``, except those under ``names``."""
    excluded = frozenset(names)
    return lambda prim, *_, **params: prim is name_p and params["name"] not in excluded


def save_from_both_policies(policy_1: Callable, policy_2: Callable) -> Callable[..., bool]:
    """A value is saveable if either policy says so. Both must answer with bools (as in
    JAX: combine ``Offloadable`` answers in a policy of your own)."""
    def policy(prim: Primitive, *avals: Any, **params: Any) -> bool:
        out_1, out_2 = policy_1(prim, *avals, **params), policy_2(prim, *avals, **params)
        if not (isinstance(out_1, bool) and isinstance(out_2, bool)):
            raise ValueError(f"The return value of the policies should be a boolean. Got: "
                             f"{out_1} and {out_2}. Please write a custom policy function "
                             "directly, rather than using this helper function.")
        return out_1 or out_2
    return policy


def save_and_offload_only_these_names(*, names_which_can_be_saved: Sequence[str],
                                      names_which_can_be_offloaded: Sequence[str],
                                      offload_src: str, offload_dst: str) -> Callable[..., Any]:
    """``Saveable`` for values named in ``names_which_can_be_saved``, ``Offloadable(
    offload_src, offload_dst)`` for those in ``names_which_can_be_offloaded`` (the lists
    must not share a name), ``Recompute`` for the rest. fungrad keeps a computation's arrays
    in one memory, so both kinds are saved."""
    saved, offloaded = set(names_which_can_be_saved), set(names_which_can_be_offloaded)
    if saved & offloaded:
        raise ValueError("The names should be exclusive and should not intersect in "
                         "`names_which_can_be_saved` and `names_which_can_be_offloaded`. Got "
                         f"names_which_can_be_saved={saved}, names_which_can_be_offloaded="
                         f"{offloaded} and the intersection={saved & offloaded}")
    offload = Offloadable(src=offload_src, dst=offload_dst)

    def policy(prim: Primitive, *_: Any, **params: Any) -> Any:
        if prim is name_p and params["name"] in saved:
            return Saveable
        if prim is name_p and params["name"] in offloaded:
            return offload
        return Recompute
    return policy


def offload_dot_with_no_batch_dims(offload_src: str, offload_dst: str) -> Callable[..., Any]:
    """``Offloadable(offload_src, offload_dst)`` for the results of ``dot_general`` without
    batch dimensions, ``Recompute`` for the rest: ``dots_with_no_batch_dims_saveable``,
    offloaded (saved, in fungrad's one memory)."""
    offload = Offloadable(src=offload_src, dst=offload_dst)

    def policy(prim: Primitive, *avals: Any, **params: Any) -> Any:
        return offload if dots_with_no_batch_dims_saveable(prim, *avals, **params) else Recompute
    return policy


checkpoint_policies = types.SimpleNamespace(
    everything_saveable=everything_saveable,
    nothing_saveable=nothing_saveable,
    dots_saveable=dots_saveable,
    checkpoint_dots=dots_saveable,
    dots_with_no_batch_dims_saveable=dots_with_no_batch_dims_saveable,
    checkpoint_dots_with_no_batch_dims=dots_with_no_batch_dims_saveable,
    save_only_these_names=save_only_these_names,
    save_any_names_but_these=save_any_names_but_these,
    save_anything_except_these_names=save_any_names_but_these,
    save_and_offload_only_these_names=save_and_offload_only_these_names,
    offload_dot_with_no_batch_dims=offload_dot_with_no_batch_dims,
    save_from_both_policies=save_from_both_policies,
)


# --------------------------------------------------------------------------- checkpoint_name

def checkpoint_name(x: Any, name: str) -> Any:
    """The identity on ``x`` (a pytree), marking its leaves with ``name`` for policies
    such as ``checkpoint_policies.save_only_these_names``."""
    return tree_util.map(lambda leaf: name_p.bind(leaf, name=name), x)


def _name_jvp(primals, tangents, *, name):
    return name_p.bind(primals[0], name=name), tangents[0]  # the tangent is not named


name_p = Primitive("name")
name_p.def_impl(lambda xp, x, *, name: x)
name_p.def_abstract_eval(lambda x, *, name: x)
ad.def_jvp(name_p, _name_jvp)
batching.defvectorized(name_p)
def_compiler_traits(name_p, identity=True)


# --------------------------------------------------------------------------- checkpoint

def checkpoint(fun: Callable, *, prevent_cse: bool = True, policy: Callable | None = None,
               static_argnums: int | Sequence[int] = (),
               static_argnames: str | Sequence[str] = ()) -> Callable:
    """``fun`` with its intermediates recomputed, not stored, for reverse-mode autodiff.

    Args:
        fun: the function to rematerialise (typically one layer/block of a network).
        prevent_cse: kept on the primitive for compilers, which must not merge the
            recomputation with the original forward computation.
        policy: ``policy(prim, *in_avals, **params) -> bool`` saying which intermediates
            may be saved (see ``checkpoint_policies``); default: save nothing.
        static_argnums / static_argnames: positions and keyword names of arguments that are
            Python values, not arrays.

    Example:
        >>> import fungrad, fungrad.numpy as jnp
        >>> W, x = jnp.eye(3) * 0.5, jnp.ones((2, 3))
        >>> layer = fungrad.checkpoint(lambda W, x: jnp.tanh(x @ W))
        >>> fungrad.grad(lambda W, x: layer(W, layer(W, x)).sum())(W, x).shape
        (3, 3)
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    static_names = {static_argnames} if isinstance(static_argnames, str) else set(static_argnames)

    @functools.wraps(fun)
    def fun_remat(*args: Any, **kwargs: Any) -> Any:
        if isinstance(core.current_trace(), EvalTrace):
            return fun(*args, **kwargs)
        nums = {n % len(args) for n in static}
        dyn = [a for i, a in enumerate(args) if i not in nums]
        fixed = {k: v for k, v in kwargs.items() if k in static_names}
        name = getattr(fun, "__name__", "fun")
        flat, in_tree = flatten_operands(
            (tuple(dyn), {k: v for k, v in kwargs.items() if k not in fixed}),
            f"checkpoint({name})", "arguments")
        store = {}

        def flat_fun(*leaves: Any) -> list:
            dargs, kw = tree_util.unflatten(in_tree, leaves)
            it = iter(dargs)
            out = fun(*[a if i in nums else next(it) for i, a in enumerate(args)], **kw, **fixed)
            leaves_out, store["tree"] = tree_util.flatten(out)
            return leaves_out
        jaxpr, consts, _ = trace_fun(flat_fun, [core.get_aval(x) for x in flat],
                                     f"checkpoint({name})")
        outs = remat_p.bind(*consts, *flat, jaxpr=jaxpr, prevent_cse=prevent_cse, policy=policy)
        return tree_util.unflatten(store["tree"], outs)
    return fun_remat


remat = checkpoint


# --------------------------------------------------------------------------- remat_p rules

def _hoisted(closed: ClosedJaxpr) -> tuple[ClosedJaxpr, list]:
    """``closed`` with its constants turned into leading inputs, and those constants."""
    return ClosedJaxpr(pe.convert_constvars_to_invars(closed.jaxpr), []), list(closed.consts)


def _remat_impl(xp, *args, jaxpr, prevent_cse, policy):
    return run_jaxpr(jaxpr, xp, args)


def _remat_jvp(primals, tangents, *, jaxpr, prevent_cse, policy):
    nonzeros = [type(t) is not ad.Zero for t in tangents]
    jvp_closed, out_nz = ad.jvp_jaxpr(jaxpr, nonzeros)
    jvp_jaxpr, consts = _hoisted(jvp_closed)
    outs = remat_p.bind(*consts, *primals, *[t for t in tangents if type(t) is not ad.Zero],
                        jaxpr=jvp_jaxpr, prevent_cse=prevent_cse, policy=policy)
    n = len(jaxpr.out_avals)
    nz_tangents = iter(outs[n:])
    return outs[:n], [next(nz_tangents) if nz else ad.Zero.from_primal(p)
                      for p, nz in zip(outs[:n], out_nz)]


def _split_residuals(known: Jaxpr, res_vars: Sequence, policy: Callable
                      ) -> tuple[list[Var], list]:
    """Decide which values the known half hands over and which the staged half recomputes.

    Walks back from the residuals through the known jaxpr: inputs are always
    available, an intermediate whose producer the policy calls saveable is saved,
    anything else is recomputed from its own inputs. Returns the saved vars and the
    equations to recompute (in program order).
    """
    producers = {v: e for e in known.eqns for v in e.outvars}
    available = set(known.invars) | set(known.constvars)
    saved, recompute, seen = [], set(), set()
    stack = [v for v in res_vars if type(v) is Var]
    while stack:
        v = stack.pop()
        if v in seen or v in available:
            continue
        seen.add(v)
        eqn = producers[v]
        if _saves(policy(eqn.primitive, *[a.aval for a in eqn.invars], **eqn.params)):
            saved.append(v)
        else:
            recompute.add(eqn)
            stack.extend(a for a in eqn.invars if type(a) is Var)
    return saved, [e for e in known.eqns if e in recompute]


def _prune_inputs(closed: ClosedJaxpr, prunable: int) -> tuple[ClosedJaxpr, list[bool]]:
    """Drop unused inputs among the first ``prunable``; returns which inputs were kept."""
    j = closed.jaxpr
    used = {v for e in j.eqns for v in e.invars if type(v) is Var}
    used.update(v for v in j.outvars if type(v) is Var)
    keep = [i >= prunable or v in used for i, v in enumerate(j.invars)]
    invars = [v for v, k in zip(j.invars, keep) if k]
    return ClosedJaxpr(Jaxpr(j.constvars, invars, j.outvars, j.eqns), closed.consts), keep


def _remat_partial_eval(trace: pe.JaxprTrace, args: Sequence, params: dict) -> list:
    jaxpr, policy = params["jaxpr"], params["policy"] or nothing_saveable
    unknowns = [trace.is_own(a) for a in args]
    known, unknown, out_unknowns, num_res = pe.partial_eval_jaxpr(jaxpr, unknowns)
    kj = known.jaxpr
    n_known_out = len(kj.outvars) - num_res
    res_vars = kj.outvars[n_known_out:]
    saved_vars, recompute_eqns = _split_residuals(kj, res_vars, policy)
    known_args = [a for a, u in zip(args, unknowns) if not u]
    unknown_args = [a for a, u in zip(args, unknowns) if u]
    # Known half, now: the primal outputs and the values the policy lets us keep.
    run_known = Jaxpr(kj.constvars, kj.invars, kj.outvars[:n_known_out] + saved_vars, kj.eqns)
    with core.set_current_trace(trace.parent):
        known_outs = pe.closed_call(ClosedJaxpr(pe.dce_jaxpr(run_known), known.consts),
                                    *known_args)
    known_vals, saved = known_outs[:n_known_out], known_outs[n_known_out:]
    # Unknown half, staged: recompute the residuals from the saved values and known inputs.
    recompute = ClosedJaxpr(Jaxpr(kj.constvars, saved_vars + kj.invars, res_vars, recompute_eqns),
                            known.consts)

    def staged(*xs: Any) -> list:
        saved_res, kin, uin = split(xs, [len(saved), len(known_args), len(unknown_args)])
        return pe.closed_call(unknown, *pe.closed_call(recompute, *saved_res, *kin), *uin)
    avals = [core.get_aval(x) for x in (*saved, *known_args)] + [a.aval for a in unknown_args]
    inner, consts, _ = trace_fun(staged, avals, "checkpoint")
    inner, keep = _prune_inputs(inner, len(consts) + len(saved) + len(known_args))
    operands = [x for x, k in zip([*consts, *saved, *known_args, *unknown_args], keep) if k]
    tracers = iter(trace.stage(remat_p, operands, dict(params, jaxpr=inner)))
    known_iter = iter(known_vals)
    return [next(tracers) if u else next(known_iter) for u in out_unknowns]


def _remat_transpose(cts, *args, jaxpr, prevent_cse, policy):
    linear = [ad.is_undefined(a) for a in args]
    known, unknown, _, num_res = pe.partial_eval_jaxpr(jaxpr, linear, instantiate=True)
    known_args = [a for a, u in zip(args, linear) if not u]
    if prevent_cse and known_args:
        # Under jit the recomputation would otherwise be the forward pass's equations
        # again, on the same inputs: CSE would merge them and keep the residuals alive.
        known_args = optimization_barrier_p.bind(*known_args)
    res = pe.closed_call(known, *known_args)  # recompute
    lin_args = [a for a in args if ad.is_undefined(a)]
    cts_in = ad.backward_pass(unknown.jaxpr, list(unknown.consts), [*res, *lin_args], cts,
                              consume=True)
    lin_cts = iter(cts_in[num_res:])
    return [next(lin_cts) if u else None for u in linear]


def _remat_batch(trace, vals, dims, *, jaxpr, prevent_cse, policy):
    params = dict(prevent_cse=prevent_cse, policy=policy)
    if trace.axis_name is None and all(d is None for d in dims):
        return remat_p.bind(*vals, jaxpr=jaxpr, **params), [None] * len(jaxpr.out_avals)
    batched, out_batched = batching.batch_jaxpr(jaxpr, trace.axis_size,
                                                [d is not None for d in dims], False,
                                                trace.axis_name)
    inner, consts = _hoisted(batched)
    vals = [v if d in (None, 0) else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    outs = remat_p.bind(*consts, *vals, jaxpr=inner, **params)
    return outs, [0 if b else None for b in out_batched]


remat_p = Primitive("checkpoint", multiple_results=True)
remat_p.def_impl(_remat_impl)
remat_p.def_abstract_eval(lambda *avals, jaxpr, **_: list(jaxpr.out_avals))
remat_p.weak_type_rule = lambda weak_flags, *, jaxpr, **_: [a.weak_type for a in jaxpr.out_avals]
ad.def_jvp(remat_p, _remat_jvp)
ad.def_transpose(remat_p, _remat_transpose)
pe.def_partial_eval(remat_p, _remat_partial_eval)
batching.def_collective(remat_p, _remat_batch)
# Compiled code runs the body in place of the call, except where CSE must not merge the
# recomputation with the forward pass (that would keep the residuals alive again).
def_compiler_traits(remat_p, inline=lambda params: None if params.get("prevent_cse", True)
                    else params["jaxpr"])
