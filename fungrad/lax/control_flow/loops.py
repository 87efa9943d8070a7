"""``scan`` and ``map``: the ``scan_p`` primitive and all its rules.

``scan_p.bind(*consts, *init, *xs, jaxpr=..., num_consts, num_carry, length,
reverse, unroll)`` runs ``jaxpr(consts, carry, x_i) -> (carry, y_i)`` over the
leading axis of ``xs`` and returns ``(final carry, stacked ys)``. The jaxpr is
const-free: whatever the body closed over is among ``consts``.
"""
from __future__ import annotations

from typing import Any, Callable

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.core import Primitive, ShapedArray
from fungrad.config import config
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.control_flow import refs
from fungrad.lax.control_flow.common import (
    as_leaf, batch_jaxpr, batch_jaxpr_at, check_carry, fixpoint, flatten_operands, fun_name,
    group_order, merge, permute, promote_weak_carry, run_jaxpr, select_outputs, split,
    trace_closed, trace_fun, trace_tree_fun, zeros)
from fungrad.lax.shapes import expand_dims, reshape
from fungrad.lax.slicing import concatenate, index_in_dim, slice_in_dim


# --------------------------------------------------------------------------- user API

def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1) -> tuple[Any, Any]:
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs`` (``jax.lax.scan``).

    Returns ``(final carry, ys stacked along a new leading axis)``. ``f`` is
    traced once; the carry must keep its structure, shapes and dtypes. With
    ``reverse=True`` the loop runs from the end (``ys`` keep the order of ``xs``).
    ``unroll`` is accepted for compatibility; the result does not depend on it.

    Example (a running sum, and the carry before each step):
        >>> import fungrad.numpy as jnp
        >>> from fungrad import lax
        >>> lax.scan(lambda c, x: (c + x, c), 0.0, jnp.arange(4.0))
        (Array(6., dtype=float32), Array([0., 0., 1., 3.], dtype=float32, weak_type=True))
    """
    if not callable(f):
        raise TypeError("lax.scan: f argument should be a callable.")
    # Refs that f closes over become extra carries (control_flow/refs.py).
    return refs.thread_scan(_scan, f, init, xs, length, reverse, unroll)


def _scan(f: Callable, init: Any, xs: Any, length: int | None, reverse: bool,
          unroll: int | bool) -> tuple[Any, Any]:
    name = fun_name(f)
    init_flat, init_tree = flatten_operands(init, "lax.scan", "init values")
    xs_flat, xs_tree = flatten_operands(xs, "lax.scan", "xs")
    length = _infer_length(xs_flat, length)
    if config.disable_jit:
        return _scan_python(f, init, xs_flat, xs_tree, length, reverse)
    x_avals = [_unstacked(core.get_aval(x)) for x in xs_flat]
    num_carry = len(init_flat)
    trees = {}

    def body(*args):
        carry, x = split(args, [num_carry, len(x_avals)])
        out = f(tree_util.unflatten(init_tree, carry), tree_util.unflatten(xs_tree, x))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"lax.scan: the body function {name} must return a pair "
                            f"(carry, y), got {type(out).__name__}: {out!r}")
        carry_out, trees["carry"] = tree_util.flatten(out[0])
        ys, trees["y"] = tree_util.flatten(out[1])
        return carry_out + ys

    def trace(init_vals):
        avals = [core.get_aval(v) for v in init_vals]
        closed, consts, _ = trace_fun(body, avals + x_avals, "lax.scan")
        if trees["carry"] != init_tree:
            check_carry("lax.scan body", f, init_tree, trees["carry"], [], [])
        return closed, consts, avals

    closed, consts, in_avals = trace(init_flat)
    out_avals = closed.out_avals[:num_carry]
    init_flat, changed = promote_weak_carry(init_flat, in_avals, out_avals)
    if changed:
        closed, consts, in_avals = trace(init_flat)
    check_carry("lax.scan body", f, init_tree, trees["carry"], in_avals,
                closed.out_avals[:num_carry])
    if isinstance(unroll, bool):
        unroll = max(length, 1) if unroll else 1
    if int(unroll) < 0:
        raise ValueError(f"lax.scan: unroll must be a bool or a non-negative int, got {unroll}")
    outs = scan_p.bind(*consts, *init_flat, *xs_flat, jaxpr=closed, num_consts=len(consts),
                       num_carry=num_carry, length=length, reverse=bool(reverse),
                       unroll=int(unroll))
    carry, ys = split(outs, [num_carry, len(outs) - num_carry])
    return tree_util.unflatten(init_tree, carry), tree_util.unflatten(trees["y"], ys)


def _scan_python(f: Callable, init: Any, xs_flat: list, xs_tree: Any, length: int,
                 reverse: bool) -> tuple[Any, Any]:
    """``scan`` as a Python loop (under ``disable_jit``, to debug the body with print)."""
    if length == 0:
        raise ValueError("zero-length scan is not supported in disable_jit() mode because "
                         "the output type is unknown.")
    carry, ys = init, []
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        x = [index_in_dim(x, i, keepdims=False) for x in xs_flat]
        carry, y = f(carry, tree_util.unflatten(xs_tree, x))
        ys.append(y)
    ys = ys[::-1] if reverse else ys
    stack = lambda *ys: concatenate([expand_dims(as_leaf(y, "lax.scan", "ys"), (0,))
                                     for y in ys], 0)
    return carry, tree_util.map(stack, *ys)


def _infer_length(xs_flat: list, length: Any) -> int:
    for x in xs_flat:
        if core.get_aval(x).ndim == 0:
            raise ValueError(f"lax.scan got a value with no leading axis to scan over: "
                             f"{core.get_aval(x).str_short()}")
    lengths = sorted({core.get_aval(x).shape[0] for x in xs_flat})
    if length is not None:
        try:
            length = int(length)
        except TypeError as e:  # includes concretization errors for traced lengths
            raise TypeError("lax.scan: the length argument must be a concrete int. For a "
                            "loop of dynamic length use while_loop or fori_loop.") from e
        if any(n != length for n in lengths):
            raise ValueError(f"lax.scan got length argument {length} which disagrees with "
                             f"the leading axis sizes {lengths} of xs.")
        return length
    if len(lengths) > 1:
        raise ValueError(f"lax.scan got values with different leading axis sizes: {lengths}.")
    if not lengths:
        raise ValueError("lax.scan got no values to scan over and length was not provided.")
    return lengths[0]


def map(f: Callable, xs: Any, *, batch_size: int | None = None) -> Any:  # noqa: A001
    """``stack([f(x) for x in xs])`` over the leading axis, as a scan (``jax.lax.map``).

    With ``batch_size`` the elements are processed ``batch_size`` at a time
    with ``vmap`` (the remainder in one more ``vmap``), trading memory for speed.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import lax
        >>> lax.map(lambda x: x * x, jnp.arange(3.0))
        Array([0., 1., 4.], dtype=float32)
    """
    if batch_size is None:
        return scan(lambda _, x: ((), f(x)), (), xs)[1]
    leaves, treedef = flatten_operands(xs, "lax.map", "xs")
    if not leaves:
        return scan(lambda _, x: ((), f(x)), (), xs)[1]
    n = core.get_aval(leaves[0]).shape[0]
    num_batches, rem = divmod(n, batch_size) if batch_size else (0, n)
    outs = []
    if num_batches:
        main = [reshape(slice_in_dim(x, 0, num_batches * batch_size),
                        (num_batches, batch_size) + core.get_aval(x).shape[1:]) for x in leaves]
        ys = scan(lambda _, x: ((), _map_batch(f, x)), (), tree_util.unflatten(treedef, main))[1]
        outs.append(tree_util.map(
            lambda y: reshape(y, (num_batches * batch_size,) + core.get_aval(y).shape[2:]), ys))
    if rem:
        tail = [slice_in_dim(x, num_batches * batch_size, n) for x in leaves]
        outs.append(_map_batch(f, tree_util.unflatten(treedef, tail)))
    if len(outs) == 1:
        return outs[0]
    return tree_util.map(lambda a, b: concatenate([a, b], 0), outs[0], outs[1])



def _map_batch(f: Callable, xs: Any) -> Any:
    """``vmap(f)(xs)`` over the leading axis of the pytree ``xs``: ``f`` traced once for one
    element, then batched by the interpreter (``batching.batch_jaxpr``)."""
    leaves, in_tree = tree_util.flatten((xs,))
    avals = [core.get_aval(x) for x in leaves]
    elt_avals = [a.update(shape=a.shape[1:]) for a in avals]
    closed, consts, out_tree = trace_tree_fun(f, in_tree, elt_avals, "lax.map")
    batched, _ = batching.batch_jaxpr(closed, avals[0].shape[0],
                                      [False] * len(consts) + [True] * len(leaves), True)
    return tree_util.unflatten(out_tree, core.eval_jaxpr(batched.jaxpr, batched.consts, *consts,
                                                          *leaves))

# --------------------------------------------------------------------------- the primitive

def _scan_impl(xp, *args, jaxpr, num_consts, num_carry, length, reverse, unroll):
    consts, carry, xs = split(args, [num_consts, num_carry, len(args) - num_consts - num_carry])
    y_avals = jaxpr.out_avals[num_carry:]
    ys = [xp.empty((length,) + a.shape, a.dtype) for a in y_avals]
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = run_jaxpr(jaxpr, xp, [*consts, *carry, *[x[i] for x in xs]])
        carry = outs[:num_carry]
        for y, o in zip(ys, outs[num_carry:]):
            y[i] = o
    return [*carry, *ys]


def _stacked(aval: ShapedArray, length: int) -> ShapedArray:
    return aval.update(shape=(length,) + aval.shape)


def _unstacked(aval: ShapedArray) -> ShapedArray:
    return aval.update(shape=aval.shape[1:])


def _scan_abstract_eval(*avals, jaxpr, num_consts, num_carry, length, reverse, unroll):
    body_in = jaxpr.in_avals
    if len(avals) != len(body_in):
        raise TypeError(f"scan: got {len(avals)} operands for a body of {len(body_in)} inputs")
    xs = avals[num_consts + num_carry:]
    if any(x.shape[:1] != (length,) for x in xs):
        raise TypeError(f"scan: xs {[x.str_short() for x in xs]} do not all have leading "
                        f"axis length {length}")
    return (list(jaxpr.out_avals[:num_carry]) +
            [_stacked(a, length) for a in jaxpr.out_avals[num_carry:]])


def _scan_weak_type(weak_flags, *, jaxpr, **params):
    return [a.weak_type for a in jaxpr.out_avals]


def _scan_jvp(primals, tangents, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    num_xs = len(primals) - num_consts - num_carry
    num_ys = len(jaxpr.out_avals) - num_carry
    nz = [type(t) is not ad.Zero for t in tangents]
    const_nz, init_nz, xs_nz = split(nz, [num_consts, num_carry, num_xs])

    def step(carry_nz):
        jvp, out_nz = ad.jvp_jaxpr(jaxpr, const_nz + carry_nz + xs_nz,
                                   instantiate=carry_nz + [False] * num_ys)
        return out_nz[:num_carry], (jvp, out_nz)
    carry_nz, (jvp, out_nz) = fixpoint(step, init_nz)
    ys_nz = out_nz[num_carry:]
    # jvp: [consts, carry, xs, consts_dot, carry_dot, xs_dot] -> [carry, ys, carry_dot, ys_dot]
    n_cd, n_id, n_xd = sum(const_nz), sum(carry_nz), sum(xs_nz)
    jvp = permute(jvp, group_order([num_consts, num_carry, num_xs, n_cd, n_id, n_xd],
                                   [0, 3, 1, 4, 2, 5]),
                  group_order([num_carry, num_ys, n_id, sum(ys_nz)], [0, 2, 1, 3]))
    consts, init, xs = split(primals, [num_consts, num_carry, num_xs])
    t_consts, t_init, t_xs = split(tangents, [num_consts, num_carry, num_xs])
    consts_dot = [t for t in t_consts if type(t) is not ad.Zero]
    init_dot = [ad.instantiate(t) for t, n in zip(t_init, carry_nz) if n]
    xs_dot = [t for t in t_xs if type(t) is not ad.Zero]
    outs = scan_p.bind(*consts, *consts_dot, *init, *init_dot, *xs, *xs_dot, jaxpr=jvp,
                       num_consts=num_consts + n_cd, num_carry=num_carry + n_id,
                       length=length, reverse=reverse, unroll=unroll)
    carry, carry_dot, ys, ys_dot = split(outs, [num_carry, n_id, num_ys, sum(ys_nz)])
    primals_out = carry + ys
    zeros_out = [ad.Zero.from_primal(p) for p in primals_out]
    return primals_out, merge(carry_nz + ys_nz, zeros_out, carry_dot + ys_dot)


def _scan_partial_eval(trace, args, params):
    """Known scan + unknown scan. The known scan also emits, per iteration, the residuals
    the unknown one needs (stacked as extra ``ys``); residuals that depend only on
    loop-invariant known inputs are computed once, outside the loop, instead."""
    jaxpr, num_consts, num_carry = params["jaxpr"], params["num_consts"], params["num_carry"]
    num_xs = len(args) - num_consts - num_carry
    num_ys = len(jaxpr.out_avals) - num_carry
    uk = [trace.is_own(x) for x in args]
    const_uk, init_uk, xs_uk = split(uk, [num_consts, num_carry, num_xs])

    def step(carry_uk):
        res = pe.partial_eval_jaxpr(jaxpr, const_uk + carry_uk + xs_uk,
                                    instantiate=carry_uk + [False] * num_ys)
        return res[2][:num_carry], res
    carry_uk, (known, unknown, out_uk, num_res) = fixpoint(step, init_uk)
    in_uk = const_uk + carry_uk + xs_uk
    n_known_out = len(out_uk) - sum(out_uk)
    n_kconsts, n_kcarry = num_consts - sum(const_uk), num_carry - sum(carry_uk)
    n_rest = len(known.in_avals) - n_kconsts

    # Hoist the residuals that only depend on known consts out of the loop.
    hoist, loop, hoist_uk, num_res2 = pe.partial_eval_jaxpr(
        known, [False] * n_kconsts + [True] * n_rest,
        instantiate=[True] * n_known_out + [False] * num_res)
    which_hoisted = [not u for u in hoist_uk[n_known_out:]]
    known_args = [x for x, u in zip(args, in_uk) if not u]
    kconsts, krest = split(known_args, [n_kconsts, n_rest])
    with core.set_current_trace(trace.parent):
        hoisted_and_res2 = pe.closed_call(hoist, *kconsts)
    hoisted, res2 = split(hoisted_and_res2, [sum(which_hoisted), num_res2])
    # Residuals that are just known xs slices are not stacked again: the xs are passed on.
    kxs = krest[n_kcarry:]
    xs_pos = {v: k for k, v in enumerate(loop.jaxpr.invars[num_res2 + n_kcarry:])}
    fwd = [xs_pos.get(v) if type(v) is core.Var else None
           for v in loop.jaxpr.outvars[n_known_out:]]
    loop = select_outputs(loop, [True] * n_known_out + [f is None for f in fwd])
    if loop.jaxpr.outvars:
        known_outs = core.bind_in_parent(
            trace, scan_p, [*res2, *krest],
            dict(params, jaxpr=loop, num_consts=num_res2, num_carry=n_kcarry))
    else:
        known_outs = []
    known_outs, computed = split(known_outs, [n_known_out, len(known_outs) - n_known_out])
    computed = iter(computed)
    ext_res = [next(computed) if f is None else kxs[f] for f in fwd]
    if not any(out_uk):
        return known_outs
    # unknown: [res, consts_uk, carry_uk, xs_uk] -> [hoisted res, consts, carry, xs, ext res]
    n_hoisted = sum(which_hoisted)
    res_idx = list(range(num_res))
    ext_idx = [i for i, h in zip(res_idx, which_hoisted) if not h]
    hoist_idx = [i for i, h in zip(res_idx, which_hoisted) if h]
    rest_idx = list(range(num_res, len(unknown.in_avals)))
    unknown = permute(unknown, hoist_idx + rest_idx + ext_idx)
    unknown_args = [x for x, u in zip(args, in_uk) if u]
    u_consts, u_rest = split(unknown_args, [sum(const_uk), len(unknown_args) - sum(const_uk)])
    outs = trace.stage(scan_p, [*hoisted, *u_consts, *u_rest, *ext_res],
                       dict(params, jaxpr=unknown, num_consts=n_hoisted + sum(const_uk),
                            num_carry=sum(carry_uk)))
    return merge(out_uk, known_outs, outs)


def _scan_transpose(cts, *args, jaxpr, num_consts, num_carry, length, reverse, unroll):
    """A reverse scan over the transposed body. Cotangents of loop-invariant linear
    inputs are accumulated in extra carries; the carry cotangent flows backwards."""
    num_xs = len(args) - num_consts - num_carry
    consts, _, xs = split(args, [num_consts, num_carry, num_xs])
    c_lin = [ad.is_undefined(x) for x in consts]
    x_lin = [ad.is_undefined(x) for x in xs]
    res_c = [x for x, lin in zip(consts, c_lin) if not lin]
    res_x = [x for x, lin in zip(xs, x_lin) if not lin]
    body_in = jaxpr.in_avals
    b_consts, b_carry, b_xs = split(body_in, [num_consts, num_carry, num_xs])
    acc_avals = [a for a, lin in zip(b_consts, c_lin) if lin]
    ct_carry = [ad.instantiate(ct) for ct in cts[:num_carry]]
    ct_ys = cts[num_carry:]
    ys_nz = [type(ct) is not ad.Zero for ct in ct_ys]
    y_avals = jaxpr.out_avals[num_carry:]
    nz_ct_ys = [ct for ct, nz in zip(ct_ys, ys_nz) if nz]
    lin_x_avals = [a for a, lin in zip(b_xs, x_lin) if lin]
    sizes = [len(res_c), len(acc_avals), num_carry, len(nz_ct_ys), len(res_x)]

    def transposed(*a):
        res_c_, acc, ct_c, ct_y, res_x_ = split(a, sizes)
        b_args = (merge(c_lin, res_c_, [ad.UndefinedPrimal(v) for v in acc_avals]) +
                  [ad.UndefinedPrimal(v) for v in b_carry] +
                  merge(x_lin, res_x_, [ad.UndefinedPrimal(v) for v in lin_x_avals]))
        cts_out = ct_c + merge(ys_nz, [ad.Zero(v) for v, nz in zip(y_avals, ys_nz) if not nz],
                               ct_y)
        cts_in = ad.backward_pass(jaxpr.jaxpr, jaxpr.consts, b_args, cts_out)
        ct_consts, ct_init, ct_xs = split(cts_in, [num_consts, num_carry, num_xs])
        new_acc = [ad.instantiate(ad.add_tangents(s, c))
                   for s, c in zip(acc, [c for c, lin in zip(ct_consts, c_lin) if lin])]
        return (new_acc + [ad.instantiate(c) for c in ct_init] +
                [ad.instantiate(c) for c, lin in zip(ct_xs, x_lin) if lin])
    in_avals = ([core.get_aval(x) for x in res_c] + acc_avals + list(b_carry) +
                [a for a, nz in zip(y_avals, ys_nz) if nz] + [_unstacked(core.get_aval(x))
                                                              for x in res_x])
    trans = trace_closed(transposed, in_avals, "transpose")
    outs = scan_p.bind(*res_c, *[zeros(a) for a in acc_avals], *ct_carry, *nz_ct_ys, *res_x,
                       jaxpr=trans, num_consts=len(res_c), num_carry=len(acc_avals) + num_carry,
                       length=length, reverse=not reverse, unroll=unroll)
    ct_consts, ct_init, ct_xs = split(outs, [len(acc_avals), num_carry, sum(x_lin)])
    return (merge(c_lin, [None] * len(res_c), ct_consts) + ct_init +
            merge(x_lin, [None] * len(res_x), ct_xs))


def _scan_batch(trace, vals, dims, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    axis_size = trace.axis_size
    num_xs = len(vals) - num_consts - num_carry
    num_ys = len(jaxpr.out_avals) - num_carry
    bat = [d is not None for d in dims]
    const_bat, init_bat, xs_bat = split(bat, [num_consts, num_carry, num_xs])

    def step(carry_bat):
        _, out_bat = batch_jaxpr(jaxpr, trace, const_bat + carry_bat + xs_bat,
                                 instantiate=carry_bat + [False] * num_ys)
        return out_bat[:num_carry], out_bat
    carry_bat, out_bat = fixpoint(step, init_bat)
    consts, init, xs = split(vals, [num_consts, num_carry, num_xs])
    c_dims, i_dims, x_dims = split(dims, [num_consts, num_carry, num_xs])
    consts = [batching.moveaxis(x, d, 0) if d is not None else x for x, d in zip(consts, c_dims)]
    init = [batching.bdim_at_front(x, d, axis_size) if b else x
            for x, d, b in zip(init, i_dims, carry_bat)]
    xs = [batching.moveaxis(x, d, 1) if d is not None else x for x, d in zip(xs, x_dims)]
    in_dims = [0 if b else None for b in const_bat + carry_bat + xs_bat]
    out_dims = [0 if b else None for b in out_bat]
    body = batch_jaxpr_at(jaxpr, trace, in_dims, out_dims)
    outs = scan_p.bind(*consts, *init, *xs, jaxpr=body, num_consts=num_consts,
                       num_carry=num_carry, length=length, reverse=reverse, unroll=unroll)
    return outs, out_dims[:num_carry] + [1 if b else None for b in out_bat[num_carry:]]


scan_p = Primitive("scan", multiple_results=True)
scan_p.def_impl(_scan_impl)
scan_p.def_abstract_eval(_scan_abstract_eval)
scan_p.weak_type_rule = _scan_weak_type
ad.def_jvp(scan_p, _scan_jvp)
pe.def_partial_eval(scan_p, _scan_partial_eval)
ad.def_transpose(scan_p, _scan_transpose)
batching.def_collective(scan_p, _scan_batch)  # the trace: named axes reach the body


__all__ = ["scan", "map", "scan_p"]
