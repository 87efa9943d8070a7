"""``while_loop`` and ``fori_loop``: the ``while_p`` primitive and all its rules; and
``scatter_apply``, a composite of ``scatter_add`` and ``while_loop``.

``while_p.bind(*cond_consts, *body_consts, *init, cond_jaxpr, body_jaxpr,
cond_nconsts, body_nconsts)`` runs ``while cond(carry): carry = body(carry)``.
Under ``vmap`` with a batched predicate, ``cond_jaxpr`` returns a boolean
*array* whose shape is a prefix of every carry's shape: the loop runs while
any lane is active and finished lanes keep their values. Forward-mode
differentiation works; reverse mode does not (the trip count is dynamic).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.core import Primitive
from fungrad.config import config
from fungrad.errors import ConcretizationTypeError
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.control_flow import refs
from fungrad.lax.control_flow.common import (
    add_inputs, batch_jaxpr, batch_jaxpr_at, check_carry, concrete_value, fixpoint,
    flatten_operands, fun_name, group_order, merge, permute, promote_weak_carry, run_jaxpr,
    select_outputs, split, trace_fun)
from fungrad.lax.control_flow.loops import scan
from fungrad.lax.elementwise import add, gt, lt, select
from fungrad.lax.gather_scatter import scatter_add
from fungrad.lax.reductions import reduce_or
from fungrad.lax.shapes import broadcast_in_dim, convert_element_type, full


# --------------------------------------------------------------------------- user API

def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``val = init_val; while cond_fun(val): val = body_fun(val)`` (``jax.lax.while_loop``).

    Both functions are traced once. ``cond_fun`` must return a boolean scalar;
    ``body_fun`` must keep the structure, shapes and dtypes of ``val``.
    Differentiable in forward mode only.

    Example (count the doublings from 1 past 100):
        >>> from fungrad import lax
        >>> lax.while_loop(lambda c: c[1] < 100, lambda c: (c[0] + 1, c[1] * 2), (0, 1))
        (Array(7, dtype=int32, weak_type=True), Array(128, dtype=int32, weak_type=True))
    """
    if not (callable(cond_fun) and callable(body_fun)):
        raise TypeError("lax.while_loop: cond_fun and body_fun arguments should be callable.")
    # Refs that either function closes over become extra carries (control_flow/refs.py).
    return refs.thread_while(_while_loop, cond_fun, body_fun, init_val)


def _while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    init, in_tree = flatten_operands(init_val, "lax.while_loop", "init_val")
    if config.disable_jit:  # debugging: a Python loop while the predicate is concrete
        try:
            val = tree_util.unflatten(in_tree, init)
            while cond_fun(val):
                val = tree_util.unflatten(in_tree, flatten_operands(
                    body_fun(val), "lax.while_loop", "body_fun outputs")[0])
            return val
        except ConcretizationTypeError:
            pass  # a traced predicate (e.g. under vmap): use the primitive
    trees = {}

    def flat(fun, key):
        def f(*args):
            leaves, trees[key] = tree_util.flatten(fun(tree_util.unflatten(in_tree, args)))
            return leaves
        return f

    def trace(vals):
        avals = [core.get_aval(v) for v in vals]
        cond_j, cond_c, _ = trace_fun(flat(cond_fun, "cond"), avals, "lax.while_loop")
        outs = cond_j.out_avals
        if len(outs) != 1 or outs[0].shape != () or outs[0].dtype != np.bool_:
            raise TypeError(f"lax.while_loop: cond_fun {fun_name(cond_fun)} must return a "
                            f"boolean scalar, but got {[a.str_short() for a in outs]}.")
        body_j, body_c, _ = trace_fun(flat(body_fun, "body"), avals, "lax.while_loop")
        if trees["body"] != in_tree:
            check_carry("lax.while_loop body", body_fun, in_tree, trees["body"], [], [])
        return cond_j, cond_c, body_j, body_c, avals

    cond_j, cond_c, body_j, body_c, avals = trace(init)
    init, changed = promote_weak_carry(init, avals, body_j.out_avals)
    if changed:
        cond_j, cond_c, body_j, body_c, avals = trace(init)
    check_carry("lax.while_loop body", body_fun, in_tree, trees["body"], avals, body_j.out_avals)
    outs = while_p.bind(*cond_c, *body_c, *init, cond_jaxpr=cond_j, body_jaxpr=body_j,
                        cond_nconsts=len(cond_c), body_nconsts=len(body_c))
    return tree_util.unflatten(in_tree, outs)


def _static_int(x: Any) -> int | None:
    """``x`` as a Python int when its value is known at trace time, else None."""
    value = concrete_value(x)
    return None if value is None else int(value)


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any,
              *, unroll: int | bool | None = None) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)`` (``jax.lax.fori_loop``).

    With static bounds this is a ``scan`` (reverse-mode differentiable);
    with traced bounds a ``while_loop`` (forward mode only).

    Example (5 factorial):
        >>> from fungrad import lax
        >>> lax.fori_loop(1, 6, lambda i, acc: acc * i, 1)
        Array(120, dtype=int32, weak_type=True)
    """
    if not callable(body_fun):
        raise TypeError("lax.fori_loop: body_fun argument should be callable.")
    lower_dt, lower_weak = dtypes.dtype_and_weak(lower)
    upper_dt, upper_weak = dtypes.dtype_and_weak(upper)
    if lower_dt.kind not in "iu" or upper_dt.kind not in "iu":
        raise TypeError(f"lax.fori_loop: lower and upper must be integers, got "
                        f"{lower_dt.name} and {upper_dt.name}")
    if lower_dt == upper_dt:
        dtype = lower_dt
    elif lower_weak != upper_weak and lower_dt.kind == upper_dt.kind == "i":
        dtype = upper_dt if lower_weak else lower_dt
    else:
        raise TypeError("lower and upper arguments to fori_loop must have equal types, got "
                        f"{lower_dt.name} and {upper_dt.name}")
    lo, hi = _static_int(lower), _static_int(upper)
    if lo is not None and hi is not None:
        def scan_body(carry, _):
            i, x = carry
            return (add(i, 1), body_fun(i, x)), None
        if config.disable_jit and hi <= lo:
            return init_val
        (_, result), _ = scan(scan_body, (lo, init_val), None, length=max(hi - lo, 0),
                              unroll=False if unroll is None else unroll)
        return result
    if unroll not in (None, False, 1):
        raise ValueError("lax.fori_loop: unroll can only be used when the loop bounds are "
                         "statically known.")
    if lower_dt != dtype:
        lower = convert_element_type(lower, dtype)
    if upper_dt != dtype:
        upper = convert_element_type(upper, dtype)

    def body(carry):
        i, n, x = carry
        return add(i, np.array(1, dtype)), n, body_fun(i, x)
    return while_loop(lambda c: lt(c[0], c[1]), body, (lower, upper, init_val))[2]


# --------------------------------------------------------------------------- the primitive

def _while_impl(xp, *args, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cconsts, bconsts, carry = split(args, [cond_nconsts, body_nconsts,
                                           len(args) - cond_nconsts - body_nconsts])
    while True:
        pred = run_jaxpr(cond_jaxpr, xp, [*cconsts, *carry])[0]
        if pred.ndim == 0:  # the usual case
            if not pred:
                return carry
            carry = run_jaxpr(body_jaxpr, xp, [*bconsts, *carry])
            continue
        if not pred.any():  # a batched predicate: finished lanes keep their values
            return carry
        new = run_jaxpr(body_jaxpr, xp, [*bconsts, *carry])
        carry = [xp.where(pred.reshape(pred.shape + (1,) * (c.ndim - pred.ndim)), n, c)
                 for n, c in zip(new, carry)]


def _while_abstract_eval(*avals, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    n_carry = len(avals) - cond_nconsts - body_nconsts
    if len(cond_jaxpr.in_avals) != cond_nconsts + n_carry or \
            len(body_jaxpr.in_avals) != body_nconsts + n_carry:
        raise TypeError("while: operand count does not match the cond/body jaxprs")
    return list(body_jaxpr.out_avals)


def _while_weak_type(weak_flags, *, body_jaxpr, **params):
    return [a.weak_type for a in body_jaxpr.out_avals]


def _while_jvp(primals, tangents, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    n_carry = len(primals) - cond_nconsts - body_nconsts
    nz = [type(t) is not ad.Zero for t in tangents]
    _, bconst_nz, init_nz = split(nz, [cond_nconsts, body_nconsts, n_carry])

    def step(carry_nz):
        jvp, out_nz = ad.jvp_jaxpr(body_jaxpr, bconst_nz + carry_nz, instantiate=carry_nz)
        return out_nz, jvp
    carry_nz, jvp = fixpoint(step, init_nz)
    n_bd, n_cd = sum(bconst_nz), sum(carry_nz)
    # jvp: [bconsts, carry, bconsts_dot, carry_dot] -> [carry, carry_dot]
    body = permute(jvp, group_order([body_nconsts, n_carry, n_bd, n_cd], [0, 2, 1, 3]))
    cond = add_inputs(cond_jaxpr, len(cond_jaxpr.in_avals), body.out_avals[n_carry:])
    cconsts, bconsts, init = split(primals, [cond_nconsts, body_nconsts, n_carry])
    _, t_bconsts, t_init = split(tangents, [cond_nconsts, body_nconsts, n_carry])
    bconsts_dot = [t for t in t_bconsts if type(t) is not ad.Zero]
    init_dot = [ad.instantiate(t) for t, n in zip(t_init, carry_nz) if n]
    outs = while_p.bind(*cconsts, *bconsts, *bconsts_dot, *init, *init_dot, cond_jaxpr=cond,
                        body_jaxpr=body, cond_nconsts=cond_nconsts,
                        body_nconsts=body_nconsts + n_bd)
    carry, carry_dot = split(outs, [n_carry, n_cd])
    return carry, merge(carry_nz, [ad.Zero.from_primal(c) for c in carry], carry_dot)


def _while_partial_eval(trace, args, params):
    """The known carries are computed by a known loop; the unknown ones by staging the
    whole loop (it recomputes the known part, since a loop saves no residuals). Such a
    staged loop cannot be transposed: reverse mode reports a clear error."""
    cond_jaxpr, body_jaxpr = params["cond_jaxpr"], params["body_jaxpr"]
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    n_carry = len(args) - cond_nconsts - body_nconsts
    uk = [trace.is_own(x) for x in args]
    cconst_uk, bconst_uk, init_uk = split(uk, [cond_nconsts, body_nconsts, n_carry])

    def step(carry_uk):
        res = pe.partial_eval_jaxpr(body_jaxpr, bconst_uk + carry_uk, instantiate=carry_uk)
        return res[2], res[0]
    carry_uk, body_known = fixpoint(step, init_uk)
    cond_known, _, (cond_uk,), _ = pe.partial_eval_jaxpr(cond_jaxpr, cconst_uk + carry_uk)
    if cond_uk or all(carry_uk) or not any(uk):
        return trace.stage(while_p, args, params)
    n_known = n_carry - sum(carry_uk)
    body_known = select_outputs(body_known, [True] * n_known +
                                [False] * (len(body_known.out_avals) - n_known))
    cond_known = select_outputs(cond_known, [True] + [False] * (len(cond_known.out_avals) - 1))
    known_args = [x for x, u in zip(args, cconst_uk + bconst_uk + carry_uk) if not u]
    known = core.bind_in_parent(trace, while_p, known_args, dict(
        cond_jaxpr=cond_known, body_jaxpr=body_known,
        cond_nconsts=cond_nconsts - sum(cconst_uk), body_nconsts=body_nconsts - sum(bconst_uk)))
    staged = trace.stage(while_p, args, params)
    return merge(carry_uk, known, [t for t, u in zip(staged, carry_uk) if u])


def _while_transpose(cts, *args, **params):
    raise ValueError("Reverse-mode differentiation does not work for lax.while_loop or "
                     "lax.fori_loop with dynamic start/stop values. Try using lax.scan, or "
                     "using fori_loop with static start/stop.")


def _while_batch(trace, vals, dims, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    axis_size = trace.axis_size
    n_carry = len(vals) - cond_nconsts - body_nconsts
    bat = [d is not None for d in dims]
    cconst_bat, bconst_bat, init_bat = split(bat, [cond_nconsts, body_nconsts, n_carry])

    def step(carry_bat):
        return batch_jaxpr(body_jaxpr, trace, bconst_bat + carry_bat, carry_bat)[1], None
    carry_bat, _ = fixpoint(step, init_bat)
    _, (pred_bat,) = batch_jaxpr(cond_jaxpr, trace, cconst_bat + carry_bat, False)
    if pred_bat:
        # Every carry gets the batch axis in front; the predicate becomes an array and the
        # loop body is applied under a select (see ``_while_impl``).
        carry_dims = [0] * n_carry
        pred_dim = 0
    else:
        # The predicate may already be an array (an inner vmap): keep it a prefix of every
        # carry's shape by putting the new batch axis after its dimensions.
        rank = cond_jaxpr.out_avals[0].ndim
        carry_dims = [rank if b else None for b in carry_bat]
        pred_dim = None
    cconsts, bconsts, init = split(vals, [cond_nconsts, body_nconsts, n_carry])
    c_dims, b_dims, i_dims = split(dims, [cond_nconsts, body_nconsts, n_carry])
    cconsts = [batching.moveaxis(x, d, 0) if d is not None else x for x, d in zip(cconsts, c_dims)]
    bconsts = [batching.moveaxis(x, d, 0) if d is not None else x for x, d in zip(bconsts, b_dims)]
    new_init = []
    for x, d, nd in zip(init, i_dims, carry_dims):
        if nd is not None:
            x = batching.bdim_at_front(x, d, axis_size)
            x = batching.moveaxis(x, 0, nd)
        new_init.append(x)
    cc_dims = [0 if b else None for b in cconst_bat]
    bc_dims = [0 if b else None for b in bconst_bat]
    body = batch_jaxpr_at(body_jaxpr, trace, bc_dims + carry_dims, carry_dims)
    cond = batch_jaxpr_at(cond_jaxpr, trace, cc_dims + carry_dims, [pred_dim])
    outs = while_p.bind(*cconsts, *bconsts, *new_init, cond_jaxpr=cond, body_jaxpr=body,
                        cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
    return outs, carry_dims


while_p = Primitive("while", multiple_results=True)
while_p.def_impl(_while_impl)
while_p.def_abstract_eval(_while_abstract_eval)
while_p.weak_type_rule = _while_weak_type
ad.def_jvp(while_p, _while_jvp)
pe.def_partial_eval(while_p, _while_partial_eval)
ad.def_transpose(while_p, _while_transpose)
batching.def_collective(while_p, _while_batch)  # the trace: named axes reach the bodies


# --------------------------------------------------------------------------- scatter_apply

def scatter_apply(operand: Any, scatter_indices: Any, func: Callable, dimension_numbers: Any, *,
                  update_shape: Sequence[int] = (), indices_are_sorted: bool = False,
                  unique_indices: bool = False, mode: Any = None) -> Any:
    """Replace the indexed elements of ``operand`` by ``func`` of them (``lax.scatter_apply``).

    ``func`` must be elementwise. As in XLA, an element indexed ``k`` times gets ``func``
    applied ``k`` times: the hits are counted with ``scatter_add`` and ``func`` is applied,
    under a ``while_loop``, wherever the count is not yet used up. Not differentiable in
    reverse mode (the loop), as in JAX.
    """
    shape = tuple(core.get_aval(operand).shape)
    counts = scatter_add(full(shape, 0, np.int32), scatter_indices,
                         full(tuple(update_shape), 1, np.int32),
                         dimension_numbers, indices_are_sorted=indices_are_sorted,
                         unique_indices=unique_indices, mode=mode)

    def pending(i):
        return gt(counts, broadcast_in_dim(i, shape, ()))

    def cond(carry):
        return reduce_or(pending(carry[0]), tuple(range(len(shape))))

    def body(carry):
        i, x = carry
        return add(i, convert_element_type(1, np.int32)), select(pending(i), func(x), x)
    return while_loop(cond, body, (convert_element_type(0, np.int32), operand))[1]


__all__ = ["while_loop", "fori_loop", "while_p", "scatter_apply"]
