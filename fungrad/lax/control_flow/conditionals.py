"""``cond`` and ``switch``: the ``cond_p`` primitive and all its rules.

``cond_p.bind(index, *operands, branches=(jaxpr_0, ...))`` runs
``branches[index](*operands)``. Every branch is a const-free ``ClosedJaxpr``
with the same input and output types; ``cond`` passes ``(false, true)``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.core import ClosedJaxpr, Primitive
from fungrad.config import config
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.control_flow import refs
from fungrad.lax.control_flow.common import (
    batch_jaxpr, batch_jaxpr_at, check_scalar_pred, concrete_value, flatten_operands, fun_name,
    join_residual_inputs, join_residual_outputs, merge, merge_branch_residuals, run_jaxpr, split,
    trace_closed, trace_tree_fun, typematch)
from fungrad.lax.ad_util import stop_gradient
from fungrad.lax.elementwise import eq, max as lax_max, min as lax_min, select_n
from fungrad.lax.shapes import broadcast_in_dim, convert_element_type


# --------------------------------------------------------------------------- user API

_NO_OPERAND = object()


def _keyword_operand(api: str, operands: tuple, operand: Any) -> tuple:
    """The operands, with JAX's older ``operand=`` keyword folded in (it is one operand,
    and cannot be given together with positional ones)."""
    if operand is _NO_OPERAND:
        return operands
    if operands:
        raise TypeError(f"{api}: if 'operand' keyword is passed then no positional operands "
                        f"can be passed, got operand={operand!r} and positional operands "
                        f"{operands!r}")
    return (operand,)


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any,
         operand: Any = _NO_OPERAND) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)`` (``jax.lax.cond``).

    Both branches are traced once; only the selected one runs. Under ``vmap``
    with a batched predicate both run and the results are selected elementwise.
    ``pred`` is a scalar boolean (numbers are compared with 0). ``operand=x`` (JAX's older
    spelling) is the same as one positional operand ``x``.

    Example:
        >>> from fungrad import lax
        >>> lax.cond(True, lambda x: x * 2.0, lambda x: x - 1.0, 3.0)
        Array(6., dtype=float32, weak_type=True)
    """
    if not (callable(true_fun) and callable(false_fun)):
        raise TypeError("lax.cond: true_fun and false_fun arguments should be callable.")
    operands = _keyword_operand("lax.cond", operands, operand)
    if pred is None:
        raise TypeError("lax.cond: the predicate is None")
    pred = check_scalar_pred("lax.cond", pred, allow_int=False)
    if config.disable_jit and concrete_value(pred) is not None:  # debugging: plain Python
        return true_fun(*operands) if bool(concrete_value(pred)) else false_fun(*operands)
    index = convert_element_type(pred, np.int32)
    return _bind_branches("lax.cond", index, (false_fun, true_fun), ("false_fun", "true_fun"),
                          operands)


def switch(index: Any, branches: Sequence[Callable], *operands: Any,
           operand: Any = _NO_OPERAND) -> Any:
    """``branches[clamp(index, 0, len(branches) - 1)](*operands)`` (``jax.lax.switch``);
    ``operand=x`` is one positional operand ``x``, as in ``cond``.

    Example:
        >>> from fungrad import lax
        >>> lax.switch(5, [lambda x: x + 1.0, lambda x: x * 10.0], 2.0)  # clamped to 1
        Array(20., dtype=float32, weak_type=True)
    """
    operands = _keyword_operand("lax.switch", operands, operand)
    branches = tuple(branches)
    if not all(callable(b) for b in branches):
        raise TypeError("lax.switch: branches argument should be a sequence of callables.")
    if not branches:
        raise ValueError("lax.switch: empty branch sequence")
    index = check_scalar_pred("lax.switch", index, allow_int=True)
    if len(branches) == 1:
        return branches[0](*operands)
    index = convert_element_type(index, np.int32)
    index = lax_max(lax_min(index, np.int32(len(branches) - 1)), np.int32(0))
    if config.disable_jit and concrete_value(index) is not None:  # debugging: plain Python
        return branches[int(concrete_value(index))](*operands)
    return _bind_branches("lax.switch", index, branches,
                          [f"branch {i}" for i in range(len(branches))], operands)


def _bind_branches(api: str, index: Any, funs: Sequence[Callable], names: Sequence[str],
                   operands: tuple) -> Any:
    # Refs that a branch closes over become extra operands and results (control_flow/refs.py).
    return refs.thread_branches(_bind_traced, api, index, funs, names, operands)


def _bind_traced(api: str, index: Any, funs: Sequence[Callable], names: Sequence[str],
                 operands: tuple) -> Any:
    ops, in_tree = flatten_operands(operands, api)
    avals = [core.get_aval(x) for x in ops]
    traced = [trace_tree_fun(lambda *a, f=f: f(*a), in_tree, avals, api) for f in funs]
    closed, consts, trees = zip(*traced)
    for i in range(1, len(funs)):
        _check_branch_outputs(api, funs, names, 0, i, trees, closed)
    # Every branch takes every branch's constants (each ignores the others').
    n_consts = [len(c) for c in consts]
    branches = []
    for i, c in enumerate(closed):
        j = c.jaxpr
        pad = [[core.Var(core.get_aval(x)) for x in cs] for cs in consts]
        pad[i] = j.invars[:n_consts[i]]
        invars = [v for vs in pad for v in vs] + j.invars[n_consts[i]:]
        branches.append(ClosedJaxpr(core.Jaxpr([], invars, j.outvars, j.eqns), []))
    all_consts = [x for cs in consts for x in cs]
    outs = cond_p.bind(index, *all_consts, *ops, branches=tuple(branches))
    return tree_util.unflatten(trees[0], outs)


def _check_branch_outputs(api: str, funs: Sequence[Callable], names: Sequence[str], a: int,
                          b: int, trees: Sequence[Any], closed: Sequence[ClosedJaxpr]) -> None:
    head = (f"{api}: {names[a]} ({fun_name(funs[a])}) and {names[b]} ({fun_name(funs[b])})")
    if trees[a] != trees[b]:
        raise TypeError(f"{head} must return the same pytree structure, but {names[a]} "
                        f"returns {trees[a]} and {names[b]} returns {trees[b]}.")
    diffs = [f"output {k} of {names[a]} has type {x.str_short()} but the corresponding "
             f"output of {names[b]} has type {y.str_short()}"
             for k, (x, y) in enumerate(zip(closed[a].out_avals, closed[b].out_avals))
             if not typematch(x, y)]
    if diffs:
        raise TypeError(f"{head} must have equal output types but they differ: "
                        + "; ".join(diffs) + ".")


# --------------------------------------------------------------------------- the primitive

def _cond_impl(xp, index, *ops, branches):
    i = min(max(int(index), 0), len(branches) - 1)
    return run_jaxpr(branches[i], xp, ops)


def _cond_abstract_eval(index, *ops, branches):
    if index.ndim != 0 or index.dtype.kind not in "iu":
        raise TypeError(f"cond: the branch index must be an integer scalar, got "
                        f"{index.str_short()}")
    in_avals = branches[0].in_avals
    if len(ops) != len(in_avals) or not all(map(typematch, ops, in_avals)):
        raise TypeError(f"cond: operands {[a.str_short() for a in ops]} do not match the "
                        f"branch inputs {[a.str_short() for a in in_avals]}")
    return list(branches[0].out_avals)


def _cond_weak_type(weak_flags, *, branches):
    return [a.weak_type for a in branches[0].out_avals]


def _cond_jvp(primals, tangents, *, branches):
    index, *ops = primals
    ops_nz = [type(t) is not ad.Zero for t in tangents[1:]]
    out_nz = [any(nz) for nz in zip(*[ad.jvp_jaxpr(b, ops_nz)[1] for b in branches])]
    jvps = tuple(ad.jvp_jaxpr(b, ops_nz, instantiate=out_nz)[0] for b in branches)
    ops_dot = [t for t in tangents[1:] if type(t) is not ad.Zero]
    outs = cond_p.bind(index, *ops, *ops_dot, branches=jvps)
    primals_out, nz_tangents = split(outs, [len(out_nz), sum(out_nz)])
    zeros_out = [ad.Zero.from_primal(p) for p in primals_out]
    return primals_out, merge(out_nz, zeros_out, nz_tangents)


def _cond_partial_eval(trace, args, params):
    """Known index: the known half runs now, in the parent trace, and also returns the
    residuals the unknown half needs; every branch returns the union of all branches'
    residuals (zeros where it has none), so the staged cond can take them uniformly."""
    branches = params["branches"]
    index, *ops = args
    if trace.is_own(index):
        return trace.stage(cond_p, args, params)
    ops_uk = [trace.is_own(x) for x in ops]
    out_uk = [any(u) for u in zip(*[pe.partial_eval_jaxpr(b, ops_uk)[2] for b in branches])]
    known, unknown, res_avals = [], [], []
    for b in branches:
        k, u, _, num_res = pe.partial_eval_jaxpr(b, ops_uk, instantiate=out_uk)
        known.append(k)
        unknown.append(u)
        res_avals.append(k.out_avals[len(k.out_avals) - num_res:])
    all_res, slots = merge_branch_residuals(res_avals)
    n_known_out = len(out_uk) - sum(out_uk)
    known = tuple(join_residual_outputs(k, n_known_out, all_res, s) for k, s in zip(known, slots))
    unknown = tuple(join_residual_inputs(u, all_res, s) for u, s in zip(unknown, slots))
    known_ops = [x for x, uk in zip(ops, ops_uk) if not uk]
    known_outs = core.bind_in_parent(trace, cond_p, [index, *known_ops], dict(branches=known)) \
        if n_known_out or all_res else []
    known_outs, res = split(known_outs, [n_known_out, len(all_res)])
    unknown_ops = [x for x, uk in zip(ops, ops_uk) if uk]
    unknown_outs = trace.stage(cond_p, [index, *res, *unknown_ops], dict(branches=unknown)) \
        if any(out_uk) else []
    return merge(out_uk, known_outs, unknown_outs)


def _cond_transpose(cts, index, *ops, branches):
    """Transpose each branch (a linear function of the undefined operands) into a jaxpr
    mapping (residual operands, nonzero output cotangents) to operand cotangents."""
    if ad.is_undefined(index):
        raise ValueError("cond: cannot transpose with respect to the branch index")
    linear = [ad.is_undefined(x) for x in ops]
    res = [x for x, lin in zip(ops, linear) if not lin]
    ct_nz = [type(ct) is not ad.Zero for ct in cts]
    nz_cts = [ct for ct, nz in zip(cts, ct_nz) if nz]
    out_avals = branches[0].out_avals
    in_avals = ([core.get_aval(x) for x in res] +
                [a for a, nz in zip(out_avals, ct_nz) if nz])
    lin_avals = [x.aval for x in ops if ad.is_undefined(x)]

    def transposer(branch: ClosedJaxpr) -> Callable:
        def transposed(*args):
            res_, cts_ = split(args, [len(res), len(nz_cts)])
            b_args = merge(linear, res_, [ad.UndefinedPrimal(a) for a in lin_avals])
            cts_full = merge(ct_nz, [ad.Zero(a) for a, nz in zip(out_avals, ct_nz) if not nz],
                             cts_)
            cts_in = ad.backward_pass(branch.jaxpr, branch.consts, b_args, cts_full)
            return [ad.instantiate(ct) for ct, lin in zip(cts_in, linear) if lin]
        return transposed
    trans = tuple(trace_closed(transposer(b), in_avals, "transpose") for b in branches)
    cts_ops = cond_p.bind(index, *res, *nz_cts, branches=trans)
    return [None] + merge(linear, [None] * len(res), cts_ops)


def _cond_batch(trace, vals, dims, *, branches):
    axis_size = trace.axis_size
    index, *ops = vals
    index_dim, *op_dims = dims
    if index_dim is not None:
        # A batched predicate: run every branch on the whole batch, then select. Each
        # branch sees its operands through stop_gradient in the lanes that did not pick
        # it, so derivatives of unselected branches (possibly inf/nan) never leak in.
        ops = [batching.bdim_at_front(x, d, axis_size) for x, d in zip(ops, op_dims)]
        index = batching.bdim_at_front(index, index_dim, axis_size)
        all_bat = [True] * len(ops)
        branch_outs = []
        for i, b in enumerate(branches):
            taken = eq(index, np.int32(i))
            ops_i = [select_n(_bcast(taken, x), stop_gradient(x), x) for x in ops]
            batched = batch_jaxpr(b, trace, all_bat, True)[0]
            branch_outs.append(pe.closed_call(batched, *ops_i))
        outs = [select_n(_bcast(index, cases[0]), *cases) for cases in zip(*branch_outs)]
        return outs, [0] * len(outs)
    ops = [batching.moveaxis(x, d, 0) if d is not None else x for x, d in zip(ops, op_dims)]
    in_dims = [None if d is None else 0 for d in op_dims]
    in_bat = [d is not None for d in op_dims]
    out_bat = [any(b) for b in zip(*[batch_jaxpr(b, trace, in_bat, False)[1]
                                     for b in branches])]
    out_dims = [0 if b else None for b in out_bat]
    batched = tuple(batch_jaxpr_at(b, trace, in_dims, out_dims) for b in branches)
    return cond_p.bind(index, *ops, branches=batched), out_dims


def _bcast(which: Any, like: Any) -> Any:
    """A per-lane ``which`` (batch axis 0) broadcast to the shape of ``like``."""
    shape = core.get_aval(like).shape
    return broadcast_in_dim(which, shape, (0,)) if len(shape) > 1 else which


cond_p = Primitive("cond", multiple_results=True)
cond_p.def_impl(_cond_impl)
cond_p.def_abstract_eval(_cond_abstract_eval)
cond_p.weak_type_rule = _cond_weak_type
ad.def_jvp(cond_p, _cond_jvp)
pe.def_partial_eval(cond_p, _cond_partial_eval)
ad.def_transpose(cond_p, _cond_transpose)
batching.def_collective(cond_p, _cond_batch)  # the trace: named axes reach the branches


__all__ = ["cond", "switch", "cond_p"]
