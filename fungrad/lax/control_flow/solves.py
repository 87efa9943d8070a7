"""``custom_root`` and ``custom_linear_solve``: solvers differentiated by the implicit
function theorem at their solution instead of through their iterations
(``jax.lax.custom_root`` and ``jax.lax.custom_linear_solve``).

Both bind a primitive carrying the user's functions as const-free jaxprs (``trace_fun``):
``custom_root_p`` and ``linear_solve_p`` (printed ``custom_linear_solve``), with every rule
below. JAX writes ``custom_root`` as a ``custom_jvp`` function that calls ``linearize``, and
builds ``vecmat`` with ``linear_transpose``; those live in ``fungrad.transforms``, above
``fungrad.lax``, so here the same derivatives are primitive rules built from the
interpreter layer alone: ``ad.jvp_jaxpr`` linearises ``f`` and ``matvec``, and
``ad.backward_pass`` transposes ``matvec``. What each rule computes is JAX's:

* custom_root: the solution ``x*(p)`` of ``f(p, x) = 0`` has the tangent
  ``-(d_x f)^-1 (d_p f)[dp]``; ``tangent_solve(g, y)`` applies ``(d_x f)^-1`` with ``g``
  the linearisation of ``f`` at the solution. Reverse mode transposes that tangent
  computation, so ``tangent_solve`` must be linear in ``y`` (as in JAX).
* custom_linear_solve: ``A x = b`` gives ``A dx = db - dA x``, solved with the same
  ``solve``; the primitive is linear in ``b``, and its transpose solves ``A^T ct_b = ct_x``
  with ``transpose_solve`` on ``vecmat = A^T`` (required for reverse mode unless
  ``symmetric=True``).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.core import ClosedJaxpr, Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.control_flow.common import (
    batch_jaxpr, fixpoint, flatten_operands, fun_name, run_jaxpr, split, trace_fun)
from fungrad.lax.elementwise import neg


# --------------------------------------------------------------------------- tracing helpers

def _trace_tree(fun: Callable, tree: Any, avals: list[ShapedArray], api: str,
                has_aux: bool = False) -> tuple[ClosedJaxpr, list, Any, Any]:
    """Trace ``fun(pytree of tree) -> pytree`` (or ``(pytree, aux)`` with ``has_aux``) into
    a const-free jaxpr whose outputs are the result's leaves then aux's. Returns the
    jaxpr, its constants, the result's tree and aux's tree."""
    store: dict[str, Any] = {}

    def flat_fun(*args: Any) -> list:
        out = fun(tree_util.unflatten(tree, list(args)))
        aux: Any = ()
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise ValueError(f"{api}: {fun_name(fun)}() produced a pytree with structure "
                                 f"{tree_util.structure(out)}, but a pytree tuple with "
                                 "auxiliary output was expected because has_aux was set "
                                 "to True.")
            out, aux = out
        leaves, store["tree"] = tree_util.flatten(out)
        aux_leaves, store["aux"] = tree_util.flatten(aux)
        return leaves + aux_leaves
    closed, consts, _ = trace_fun(flat_fun, avals, api)
    return closed, consts, store["tree"], store["aux"]


def _check_tree(api: str, func: str, expected: str, actual: Any, tree: Any) -> None:
    if actual != tree:
        raise TypeError(f"{api}: {func}() output pytree structure must match {expected}, "
                        f"got {actual} and {tree}.")


def _check_shapes(api: str, func: str, closed: ClosedJaxpr, avals: list[ShapedArray]) -> None:
    got = [a.shape for a in closed.out_avals[:len(avals)]]
    want = [a.shape for a in avals]
    if got != want:
        raise ValueError(f"{api}: {func}() output shapes must match b, got {got} and {want}")


def _jvp_at(closed: ClosedJaxpr, primals: list, tangents: list) -> list:
    """The output tangents of ``closed`` at ``primals`` for ``tangents`` (``ad.Zero`` or
    None where an input is not perturbed), every output tangent instantiated."""
    nonzero = [t is not None and type(t) is not ad.Zero for t in tangents]
    jvp, _ = ad.jvp_jaxpr(closed, nonzero, instantiate=True)
    outs = pe.closed_call(jvp, *primals, *[t for t, nz in zip(tangents, nonzero) if nz])
    return outs[len(closed.out_avals):]


def _front(vals: list, dims: list, batched: list[bool], axis_size: int) -> list:
    """Each value with its batch axis first; unbatched values that must become batched are
    broadcast to the batch size."""
    return [batching.bdim_at_front(v, d, axis_size) if b else v
            for v, d, b in zip(vals, dims, batched)]


# --------------------------------------------------------------------------- custom_root

class _RootJaxprs(NamedTuple):
    f: ClosedJaxpr
    solve: ClosedJaxpr
    l_and_s: ClosedJaxpr


def custom_root(f: Callable, initial_guess: Any, solve: Callable[[Callable, Any], Any],
                tangent_solve: Callable[[Callable, Any], Any], has_aux: bool = False) -> Any:
    """Differentiably solve ``f(x) = 0`` (``jax.lax.custom_root``).

    Returns ``solve(f, initial_guess)``; its derivatives with respect to the values ``f``
    closes over come from the implicit function theorem at the solution, so ``solve`` may
    be any iteration (a ``while_loop``, even one without reverse-mode rules).

    Args:
        f: function whose root is sought; takes and returns pytrees shaped like
            ``initial_guess``.
        initial_guess: starting point for ``solve``.
        solve: ``solve(f, initial_guess) -> solution`` (``(solution, aux)`` with
            ``has_aux``).
        tangent_solve: ``tangent_solve(g, y) -> x`` with ``g(x) = y``, where ``g`` is ``f``
            linearised at the solution; for scalars ``lambda g, y: y / g(1.0)``.
        has_aux: whether ``solve`` also returns auxiliary data (not differentiated).

    Example (the square root of 2 by Newton's method, and its derivative 1/(2 sqrt 2)):
        >>> import fungrad
        >>> from fungrad import lax
        >>> def sqrt(a):
        ...     newton = lambda f, x0: lax.fori_loop(0, 20, lambda i, x: x - f(x) / (2 * x), x0)
        ...     return lax.custom_root(lambda x: x * x - a, 1.0, newton,
        ...                            lambda g, y: y / g(1.0))
        >>> print(f"{float(sqrt(2.0)):.6f} {float(fungrad.grad(sqrt)(2.0)):.6f}")
        1.414214 0.353553
    """
    api = "lax.custom_root"
    guess, tree = flatten_operands(initial_guess, api, "initial_guess")
    avals = [core.get_aval(g) for g in guess]
    f_jaxpr, f_consts, f_tree, _ = _trace_tree(f, tree, avals, api)
    _check_tree(api, "f", "initial_guess", f_tree, tree)
    solve_jaxpr, solve_consts, s_tree, aux_tree = _trace_tree(lambda x: solve(f, x), tree, avals,
                                                       api, has_aux)
    _check_tree(api, "solve", "initial_guess", s_tree, tree)

    def linearize_and_solve(x: Any, b: Any) -> Any:
        x_flat = tree_util.leaves(x)

        def g(t: Any) -> Any:
            outs = _jvp_at(f_jaxpr, f_consts + x_flat,
                           [None] * len(f_consts) + tree_util.leaves(t))
            return tree_util.unflatten(tree, outs)
        return tangent_solve(g, b)
    pair = tree_util.structure((initial_guess, initial_guess))
    ls_jaxpr, ls_consts, ls_tree, _ = _trace_tree(
        lambda xb: linearize_and_solve(*xb), pair, avals + avals, api)
    _check_tree(api, "tangent_solve", "x", ls_tree, tree)
    outs = custom_root_p.bind(*f_consts, *solve_consts, *ls_consts, *guess,
                              jaxprs=_RootJaxprs(f_jaxpr, solve_jaxpr, ls_jaxpr),
                              const_lengths=(len(f_consts), len(solve_consts), len(ls_consts)))
    solution = tree_util.unflatten(tree, outs[:len(guess)])
    return (solution, tree_util.unflatten(aux_tree, outs[len(guess):])) if has_aux else solution


def _root_impl(xp, *args, jaxprs, const_lengths):
    _, solve_consts, _, guess = split(args, [*const_lengths, len(args) - sum(const_lengths)])
    return run_jaxpr(jaxprs.solve, xp, [*solve_consts, *guess])


def _root_abstract_eval(*avals, jaxprs, const_lengths):
    return list(jaxprs.solve.out_avals)


def _root_weak_type(weak_flags, *, jaxprs, const_lengths):
    return [a.weak_type for a in jaxprs.solve.out_avals]


def _root_jvp(primals, tangents, *, jaxprs, const_lengths):
    """``dx = -tangent_solve(f linearised at x, (d_p f)[dp])``; aux has zero tangents."""
    out = custom_root_p.bind(*primals, jaxprs=jaxprs, const_lengths=const_lengths)
    n = len(jaxprs.f.out_avals)
    solution = out[:n]
    f_consts, _, ls_consts, _ = split(primals, [*const_lengths, n])
    f_dots = tangents[:const_lengths[0]]
    zeros = [ad.Zero.from_primal(o) for o in out]
    if all(type(t) is ad.Zero for t in f_dots):
        return out, zeros
    rhs = _jvp_at(jaxprs.f, f_consts + solution, f_dots + [None] * n)
    solution_dot = pe.closed_call(jaxprs.l_and_s, *ls_consts, *solution, *rhs)
    return out, [neg(t) for t in solution_dot] + zeros[n:]


def _root_batch(trace, vals, dims, *, jaxprs, const_lengths):
    """Every solution (and aux) leaf batched at the front: the three jaxprs are batched
    for batched constants and a batched solution, so they agree on what is batched."""
    if all(d is None for d in dims):  # a collective rule also sees unbatched operands
        outs = custom_root_p.bind(*vals, jaxprs=jaxprs, const_lengths=const_lengths)
        return outs, [None] * len(outs)
    n = len(jaxprs.f.out_avals)
    axis_size = trace.axis_size
    f_bat, s_bat, l_bat, _ = split([d is not None for d in dims], [*const_lengths, n])
    f_jaxpr = batch_jaxpr(jaxprs.f, trace, f_bat + [True] * n, True)[0]
    solve = batch_jaxpr(jaxprs.solve, trace, s_bat + [True] * n, True)[0]
    l_and_s = batch_jaxpr(jaxprs.l_and_s, trace, l_bat + [True] * (2 * n), True)[0]
    batched = f_bat + s_bat + l_bat + [True] * n
    outs = custom_root_p.bind(*_front(list(vals), list(dims), batched, axis_size),
                              jaxprs=_RootJaxprs(f_jaxpr, solve, l_and_s),
                              const_lengths=const_lengths)
    return outs, [0] * len(outs)


custom_root_p = Primitive("custom_root", multiple_results=True)
custom_root_p.def_impl(_root_impl)
custom_root_p.def_abstract_eval(_root_abstract_eval)
custom_root_p.weak_type_rule = _root_weak_type
ad.def_jvp(custom_root_p, _root_jvp)
batching.def_collective(custom_root_p, _root_batch)  # named axes reach the jaxprs


# --------------------------------------------------------------------------- custom_linear_solve

class _SolveJaxprs(NamedTuple):
    matvec: ClosedJaxpr
    vecmat: ClosedJaxpr | None
    solve: ClosedJaxpr
    transpose_solve: ClosedJaxpr | None

    def transpose(self) -> "_SolveJaxprs":
        return _SolveJaxprs(self.vecmat, self.matvec, self.transpose_solve, self.solve)


def _transpose_lengths(lengths: tuple) -> tuple:
    return (lengths[1], lengths[0], lengths[3], lengths[2])


def custom_linear_solve(matvec: Callable, b: Any, solve: Callable[[Callable, Any], Any],
                        transpose_solve: Callable[[Callable, Any], Any] | None = None,
                        symmetric: bool = False, has_aux: bool = False) -> Any:
    """Solve ``matvec(x) = b`` with ``solve``, differentiated implicitly
    (``jax.lax.custom_linear_solve``).

    The derivative never goes through ``solve``: ``A dx = db - dA x`` is solved with
    ``solve`` again, and reverse mode solves the transposed system with
    ``transpose_solve`` applied to ``vecmat``, the transpose of ``matvec`` (found by
    transposing ``matvec``, or ``matvec`` itself when ``symmetric``).

    Args:
        matvec: the linear map ``x -> A x``, differentiable in the values it closes over.
        b: right-hand side, any pytree of arrays.
        solve: ``solve(matvec, b) -> x`` (``(x, aux)`` with ``has_aux``); need not be
            differentiable.
        transpose_solve: ``transpose_solve(vecmat, b) -> x`` for the transposed system;
            required for reverse mode unless ``symmetric`` (then ``solve`` is used).
        symmetric: whether ``matvec`` is its own transpose.
        has_aux: whether ``solve`` and ``transpose_solve`` also return auxiliary data.

    Example (a 2x2 system solved by NumPy-style Gaussian elimination, then its gradient):
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import lax
        >>> a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
        >>> def f(b):
        ...     x = lax.custom_linear_solve(lambda v: a @ v, b,
        ...                                 lambda mv, r: jnp.linalg.solve(a, r),
        ...                                 symmetric=True)
        ...     return jnp.sum(x)
        >>> fungrad.grad(f)(jnp.array([1.0, 2.0]))
        Array([0.18181819, 0.27272728], dtype=float32)
    """
    api = "lax.custom_linear_solve"
    if transpose_solve is None and symmetric:
        transpose_solve = solve
    b_flat, tree = flatten_operands(b, api, "b")
    avals = [core.get_aval(x) for x in b_flat]
    matvec_jaxpr, matvec_consts, out_tree, _ = _trace_tree(matvec, tree, avals, api)
    _check_tree(api, "matvec", "b", out_tree, tree)
    _check_shapes(api, "matvec", matvec_jaxpr, avals)
    solve_jaxpr, solve_consts, out_tree, aux_tree = _trace_tree(
        lambda x: solve(matvec, x), tree, avals, api, has_aux)
    _check_tree(api, "solve", "b", out_tree, tree)
    _check_shapes(api, "solve", solve_jaxpr, avals)
    vecmat_jaxpr = tr_solve_jaxpr = None
    vecmat_consts: list = []
    tr_solve_consts: list = []
    if transpose_solve is not None:
        if symmetric:
            vecmat, vecmat_jaxpr, vecmat_consts = matvec, matvec_jaxpr, matvec_consts
        else:
            def vecmat(y: Any) -> Any:
                undefined = [ad.UndefinedPrimal(a) for a in avals]
                cts = ad.backward_pass(matvec_jaxpr.jaxpr, [], matvec_consts + undefined,
                                       tree_util.leaves(y))[len(matvec_consts):]
                return tree_util.unflatten(tree, [ad.instantiate(ct) for ct in cts])
            vecmat_jaxpr, vecmat_consts, _, _ = _trace_tree(vecmat, tree, avals, api)
        tr_solve_jaxpr, tr_solve_consts, out_tree, _ = _trace_tree(
            lambda x: transpose_solve(vecmat, x), tree, avals, api, has_aux)
        _check_tree(api, "transpose_solve", "b", out_tree, tree)
        _check_shapes(api, "transpose_solve", tr_solve_jaxpr, avals)
    consts = [matvec_consts, vecmat_consts, solve_consts, tr_solve_consts]
    outs = linear_solve_p.bind(
        *[c for group in consts for c in group], *b_flat,
        const_lengths=tuple(len(c) for c in consts),
        jaxprs=_SolveJaxprs(matvec_jaxpr, vecmat_jaxpr, solve_jaxpr, tr_solve_jaxpr))
    x = tree_util.unflatten(tree, outs[:len(b_flat)])
    return (x, tree_util.unflatten(aux_tree, outs[len(b_flat):])) if has_aux else x


def _split_solve_args(args: list, const_lengths: tuple) -> tuple[list[list], list]:
    *groups, b = split(args, [*const_lengths, len(args) - sum(const_lengths)])
    return groups, b


def _linear_solve_impl(xp, *args, const_lengths, jaxprs):
    (_, _, solve_consts, _), b = _split_solve_args(list(args), const_lengths)
    return run_jaxpr(jaxprs.solve, xp, [*solve_consts, *b])


def _linear_solve_abstract_eval(*avals, const_lengths, jaxprs):
    b = avals[sum(const_lengths):]
    x = [a.update(weak_type=w.weak_type) for a, w in zip(jaxprs.solve.out_avals, b)]
    return x + list(jaxprs.solve.out_avals[len(b):])


def _linear_solve_weak_type(weak_flags, *, const_lengths, jaxprs):
    n_b = len(jaxprs.matvec.out_avals)
    return list(weak_flags[sum(const_lengths):]) + [
        a.weak_type for a in jaxprs.solve.out_avals[n_b:]]


def _linear_solve_jvp(primals, tangents, *, const_lengths, jaxprs):
    """``A dx = db - dA x``: the same solve on a new right-hand side; aux has zero
    tangents."""
    params = dict(const_lengths=const_lengths, jaxprs=jaxprs)
    out = linear_solve_p.bind(*primals, **params)
    groups, b = _split_solve_args(list(primals), const_lengths)
    dgroups, db = _split_solve_args(list(tangents), const_lengths)
    x = out[:len(b)]
    rhs = list(db)
    if any(type(t) is not ad.Zero for t in dgroups[0]):
        dax = _jvp_at(jaxprs.matvec, groups[0] + x, dgroups[0] + [None] * len(x))
        rhs = [ad.add_tangents(t, neg(d)) for t, d in zip(rhs, dax)]
    zeros = [ad.Zero.from_primal(o) for o in out]
    if all(type(t) is ad.Zero for t in rhs):
        return out, zeros
    consts = [c for group in groups for c in group]
    dx = linear_solve_p.bind(*consts, *[ad.instantiate(t) for t in rhs], **params)
    return out, dx[:len(b)] + zeros[len(b):]


def _linear_solve_transpose(cts, *args, const_lengths, jaxprs):
    """The cotangent of ``b`` solves ``A^T ct_b = ct_x`` with ``transpose_solve``."""
    if jaxprs.transpose_solve is None:
        raise TypeError("transpose_solve required for backwards mode automatic "
                        "differentiation of custom_linear_solve")
    groups, b = _split_solve_args(list(args), const_lengths)
    if any(ad.is_undefined(c) for group in groups for c in group):
        raise NotImplementedError("custom_linear_solve: transposing with respect to the "
                                  "values matvec or solve close over is not supported")
    ct_x, ct_aux = cts[:len(b)], cts[len(b):]
    if any(type(ct) is not ad.Zero for ct in ct_aux):
        raise NotImplementedError("custom_linear_solve: the auxiliary outputs of solve "
                                  "cannot be differentiated")
    transposed = [groups[1], groups[0], groups[3], groups[2]]
    ct_b = linear_solve_p.bind(*[c for group in transposed for c in group],
                               *[ad.instantiate(ct) for ct in ct_x],
                               const_lengths=_transpose_lengths(const_lengths),
                               jaxprs=jaxprs.transpose())[:len(b)]
    return [None] * sum(const_lengths) + [ct if ad.is_undefined(x) else None
                                          for ct, x in zip(ct_b, b)]


def _linear_solve_batch(trace, vals, dims, *, const_lengths, jaxprs):
    """JAX's fixed point: which leaves of ``x`` and ``b`` are batched must agree across
    ``solve`` and ``vecmat`` (b -> x) and ``matvec`` and ``transpose_solve`` (x -> b)."""
    if all(d is None for d in dims):  # a collective rule also sees unbatched operands
        outs = linear_solve_p.bind(*vals, const_lengths=const_lengths, jaxprs=jaxprs)
        return outs, [None] * len(outs)
    axis_size = trace.axis_size
    (mv_bat, vm_bat, s_bat, ts_bat), b_bat0 = _split_solve_args(
        [d is not None for d in dims], const_lengths)
    n_b = len(b_bat0)
    n_aux = len(jaxprs.solve.out_avals) - n_b

    def step(flags: list[bool]) -> tuple[list[bool], Any]:
        b_bat, x_bat = flags[:n_b], flags[n_b:]
        solve, x_out = batch_jaxpr(jaxprs.solve, trace, s_bat + b_bat, x_bat)
        vecmat = None
        if jaxprs.vecmat is not None:
            vecmat, vx = batch_jaxpr(jaxprs.vecmat, trace, vm_bat + b_bat, b_bat)
            x_out = [a or c for a, c in zip(x_out, vx + [True] * n_aux)]
        matvec, b_out = batch_jaxpr(jaxprs.matvec, trace, mv_bat + x_out[:n_b], b_bat)
        b_out = [a or c for a, c in zip(b_out, b_bat0)]
        tr_solve = None
        if jaxprs.transpose_solve is not None:
            tr_solve, tb = batch_jaxpr(jaxprs.transpose_solve, trace, ts_bat + x_out[:n_b],
                                       x_out)
            b_out = [a or c for a, c in zip(b_out, tb[:n_b])]
        return b_out + x_out, _SolveJaxprs(matvec, vecmat, solve, tr_solve)
    flags, batched_jaxprs = fixpoint(step, b_bat0 + [False] * (n_b + n_aux))
    consts_bat = mv_bat + vm_bat + s_bat + ts_bat
    n_consts = len(consts_bat)
    args = _front(list(vals), list(dims), consts_bat + flags[:n_b], axis_size)
    outs = linear_solve_p.bind(*args[:n_consts], *args[n_consts:], const_lengths=const_lengths,
                               jaxprs=batched_jaxprs)
    return outs, [0 if f else None for f in flags[n_b:]]


linear_solve_p = Primitive("custom_linear_solve", multiple_results=True)
linear_solve_p.def_impl(_linear_solve_impl)
linear_solve_p.def_abstract_eval(_linear_solve_abstract_eval)
linear_solve_p.weak_type_rule = _linear_solve_weak_type
ad.def_jvp(linear_solve_p, _linear_solve_jvp)
ad.def_transpose(linear_solve_p, _linear_solve_transpose)
batching.def_collective(linear_solve_p, _linear_solve_batch)


__all__ = ["custom_root", "custom_linear_solve", "custom_root_p", "linear_solve_p"]
