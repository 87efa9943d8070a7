"""``linear_call`` (``jax.custom_derivatives.linear_call``): call a function that is linear in
some of its arguments, with a transpose of the user's own.

``linear_call(fun, fun_transpose, residual_args, linear_args)`` binds ``linear_call_p``,
whose operands are ``fun``'s closed-over values, the residual arguments and the linear ones,
and whose ``callee`` is ``fun`` traced once. Its rules:

* evaluation: the callee;
* JVP: the call on the primals, and the same call on the linear arguments' tangents (the
  function is linear in them; the residuals must not be differentiated);
* transposition: a ``linear_call_p`` of ``fun_transpose`` (traced on the residuals and the
  output cotangents when first needed) whose own transpose is ``fun``, so transposing twice
  gives ``fun`` back;
* batching: a ``linear_call_p`` of the batched callee (every operand and result batched at
  axis 0), whose transpose is the user's transpose batched the same way (JAX has no
  batching rule for ``linear_call``).

Reverse mode stages the call into the linear jaxpr (its linear operands are unknown) and
transposes it with the user's rule.
"""
from __future__ import annotations

from typing import Any, Callable

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.core import ClosedJaxpr, Primitive
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax._prim import as_operand
from fungrad.lax.control_flow.common import flatten_operands, run_jaxpr, split, trace_tree_fun

__all__ = ["linear_call", "linear_call_p"]


class _TransposeThunk:
    """Traces ``fun_transpose`` on (residuals, output cotangents) once, when first needed:
    ``() -> (closed jaxpr, its consts)``."""

    def __init__(self, fun_transpose: Callable, res_tree: Any, out_tree: Any, lin_tree: Any,
                 res_avals: list, out_avals: list) -> None:
        self.fun_transpose, self.res_tree, self.out_tree = fun_transpose, res_tree, out_tree
        self.lin_tree, self.avals = lin_tree, res_avals + out_avals
        self.n_res, self.traced = len(res_avals), None

    def __call__(self) -> tuple[ClosedJaxpr, list]:
        if self.traced is None:
            in_tree = tree_util.tuple_structure([self.res_tree, self.out_tree])
            closed, consts, t_tree = trace_tree_fun(lambda r, ct: self.fun_transpose(r, ct),
                                                    in_tree, self.avals, "linear_call transpose")
            if t_tree != self.lin_tree:
                raise TypeError("transpose output pytree structure must match that of linear "
                                f"inputs, got output structure {t_tree} and input structure "
                                f"{self.lin_tree}.")
            self.traced = (closed, consts)
        return self.traced


class _Given:
    """A transpose that is already traced (``fun``, as the transpose of its transpose)."""

    def __init__(self, closed: ClosedJaxpr, consts: list) -> None:
        self.traced = (closed, consts)

    def __call__(self) -> tuple[ClosedJaxpr, list]:
        return self.traced


class _BatchedThunk:
    """A transpose thunk batched along one ``vmap`` axis: every operand (the user's
    transpose's consts included) and result carries the batch dimension at axis 0; the
    batched jaxpr's own constants lead, unbatched."""

    def __init__(self, thunk: Callable, axis_size: int, axis_name: Any) -> None:
        self.thunk, self.axis_size, self.axis_name, self.traced = thunk, axis_size, axis_name, None

    def __call__(self) -> tuple[ClosedJaxpr, list]:
        if self.traced is None:
            closed, consts = self.thunk()
            batched, _ = batching.batch_jaxpr(closed, self.axis_size,
                                              [True] * len(closed.in_avals), True, self.axis_name)
            consts = [batching.bdim_at_front(c, None, self.axis_size) for c in consts]
            self.traced = (_hoisted(batched), consts)
        return self.traced[0][0], [*self.traced[0][1], *self.traced[1]]


def _hoisted(closed: ClosedJaxpr) -> tuple[ClosedJaxpr, list]:
    return ClosedJaxpr(pe.convert_constvars_to_invars(closed.jaxpr), []), list(closed.consts)


def linear_call(fun: Callable, fun_transpose: Callable, residual_args: Any,
                linear_args: Any) -> Any:
    """``fun(residual_args, linear_args)``, where ``fun`` is linear in ``linear_args`` and
    ``fun_transpose(residual_args, ct)`` is its transpose with respect to them: reverse mode
    and ``linear_transpose`` use ``fun_transpose`` instead of transposing ``fun``.

    Args:
        fun: ``(residuals, linear) -> out``, linear in ``linear``.
        fun_transpose: ``(residuals, ct_out) -> ct_linear``, with ``linear``'s structure.
        residual_args: the pytree of arguments ``fun`` need not be linear in.
        linear_args: the pytree of arguments ``fun`` is linear in.

    Examples:
        >>> import fungrad
        >>> def div_add(x, denom):
        ...     return x + linear_call(lambda r, x: x / r, lambda r, t: t / r, denom, x)
        >>> div_add(9.0, 3.0)
        Array(12., dtype=float32, weak_type=True)
        >>> fungrad.linear_transpose(lambda x: div_add(x, 3.0), 1.0)(18.0)
        (Array(24., dtype=float32, weak_type=True),)
    """
    res, res_tree = flatten_operands(residual_args, "linear_call", "residual arguments")
    lin, lin_tree = flatten_operands(linear_args, "linear_call", "linear arguments")
    res, lin = [as_operand(x) for x in res], [as_operand(x) for x in lin]
    in_tree = tree_util.tuple_structure([res_tree, lin_tree])
    res_avals = [core.get_aval(x) for x in res]
    callee, consts, out_tree = trace_tree_fun(lambda r, x: fun(r, x), in_tree,
                                              res_avals + [core.get_aval(x) for x in lin],
                                              "linear_call")
    thunk = _TransposeThunk(fun_transpose, res_tree, out_tree, lin_tree, res_avals,
                            list(callee.out_avals))
    outs = linear_call_p.bind(*consts, *res, *lin, callee=callee, transpose_thunk=thunk,
                              num_callee_consts=len(consts), num_res=len(res))
    return tree_util.unflatten(out_tree, outs)


def _linear_call_impl(xp, *args, callee, transpose_thunk, num_callee_consts, num_res):
    return run_jaxpr(callee, xp, args)


def _linear_call_jvp(primals, tangents, *, callee, transpose_thunk, num_callee_consts,
                     num_res):
    params = dict(callee=callee, transpose_thunk=transpose_thunk,
                  num_callee_consts=num_callee_consts, num_res=num_res)
    n = num_callee_consts + num_res
    if any(type(t) is not ad.Zero for t in tangents[:n]):
        raise TypeError("linear_call: the residual arguments (and the values fun closes "
                        "over) must not be differentiated; fun is only linear in linear_args")
    outs = linear_call_p.bind(*primals, **params)
    if all(type(t) is ad.Zero for t in tangents[n:]):
        return outs, [ad.Zero.from_primal(o) for o in outs]
    lin_t = [as_operand(ad.instantiate(t)) for t in tangents[n:]]
    return outs, linear_call_p.bind(*primals[:n], *lin_t, **params)


def _linear_call_transpose(cts, *args, callee, transpose_thunk, num_callee_consts, num_res):
    f_consts, res, lin = split(args, [num_callee_consts, num_res, len(args) - num_callee_consts
                                      - num_res])
    if any(ad.is_undefined(a) for a in (*f_consts, *res)):
        raise TypeError("linear_call: transposing with respect to a residual argument; "
                        "fun is only linear in linear_args")
    transpose, t_consts = transpose_thunk()
    cts = [as_operand(ad.instantiate(ct)) for ct in cts]
    cts_lin = linear_call_p.bind(*t_consts, *res, *cts, callee=transpose,
                                 transpose_thunk=_Given(callee, list(f_consts)),
                                 num_callee_consts=len(t_consts), num_res=num_res)
    return [None] * (num_callee_consts + num_res) + list(cts_lin)


linear_call_p = Primitive("linear_call", multiple_results=True)
linear_call_p.def_impl(_linear_call_impl)
linear_call_p.def_abstract_eval(lambda *avals, callee, **_: list(callee.out_avals))
def _linear_call_batch(trace, vals, dims, *, callee, transpose_thunk, num_callee_consts,
                       num_res):
    if trace.axis_name is None and all(d is None for d in dims):
        return (linear_call_p.bind(*vals, callee=callee, transpose_thunk=transpose_thunk,
                                   num_callee_consts=num_callee_consts, num_res=num_res),
                [None] * len(callee.out_avals))
    size = trace.axis_size
    vals = [batching.bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
    batched, _ = batching.batch_jaxpr(callee, size, [True] * len(vals), True, trace.axis_name)
    body, consts = _hoisted(batched)  # the batched body's own constants: not batched
    outs = linear_call_p.bind(*consts, *vals, callee=body,
                              transpose_thunk=_BatchedThunk(transpose_thunk, size, trace.axis_name),
                              num_callee_consts=len(consts) + num_callee_consts, num_res=num_res)
    return outs, [0] * len(outs)


linear_call_p.weak_type_rule = lambda weak_flags, *, callee, **_: [
    a.weak_type for a in callee.out_avals]
ad.def_jvp(linear_call_p, _linear_call_jvp)
ad.def_transpose(linear_call_p, _linear_call_transpose)
batching.def_collective(linear_call_p, _linear_call_batch)
