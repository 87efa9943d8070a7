"""Transformations that stage a function into a jaxpr and work on its closure:
``linear_transpose``, ``custom_gradient`` and ``closure_convert`` (as in JAX).

* ``linear_transpose(f, *primals)`` stages ``f`` on the primals' shapes and transposes the
  jaxpr with ``ad.backward_pass``: a primitive without a transpose rule (``f`` is not
  linear) raises ``MissingRuleError`` naming it.
* ``custom_gradient(f)``: ``f`` returns ``(value, vjp_fn)``; a ``custom_vjp`` whose
  forward pass stages ``vjp_fn`` into a jaxpr whose constants (what ``vjp_fn`` closes over)
  are the residuals.
* ``closure_convert(f, *args)`` returns ``(g, consts)``: ``g(*args, *consts)`` computes
  ``f(*args)`` with the closed-over values that may carry a derivative (floating-point
  tracers of enclosing transformations, as JAX's ``_maybe_perturbed``) passed explicitly,
  so a ``custom_vjp`` rule can differentiate with respect to them; concrete arrays stay
  closed over.
"""
from __future__ import annotations

from typing import Any, Callable

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad.interpreters import ad
from fungrad.interpreters import partial_eval as pe
from fungrad.transforms.custom_derivatives import custom_vjp

__all__ = ["closure_convert", "custom_gradient", "linear_transpose"]


def _stage(fun: Callable, args: tuple, name: str) -> tuple[Any, list, Any, Any]:
    """``fun`` staged on the shapes of ``args``: (jaxpr, consts, in_tree, out_tree)."""
    flat, in_tree = tree_util.flatten(args)
    store = {}

    def flat_fun(*xs):
        out = fun(*tree_util.unflatten(in_tree, xs))
        out_flat, store["tree"] = tree_util.flatten(out)
        return out_flat
    jaxpr, consts, _ = pe.trace_to_jaxpr(flat_fun, [core.get_aval(x) for x in flat], name)
    return jaxpr, consts, in_tree, store["tree"]


def linear_transpose(fun: Callable, *primals: Any, reduce_axes: tuple = ()) -> Callable:
    """The transpose of the linear function ``fun`` at the shapes and dtypes of
    ``primals`` (their values are not used): ``transposed(ct) -> tuple of cotangents``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> f_t = fungrad.linear_transpose(lambda x: jnp.stack([x, 2 * x]), 1.0)
        >>> f_t(jnp.array([1.0, 10.0]))
        (Array(21., dtype=float32),)
    """
    del reduce_axes  # accepted for JAX compatibility; it has no effect (as in current JAX)
    flat, in_tree = tree_util.flatten(primals)
    in_avals = [core.get_aval(x) for x in flat]
    for a in in_avals:
        if not dtypes.is_inexact(a.dtype):
            raise TypeError(f"linear_transpose only supports [float or complex] -> [float or "
                            f"complex], got an input of dtype {a.dtype}")
    jaxpr, consts, _, out_tree = _stage(fun, primals, "linear_transpose")
    out_avals = [v.aval for v in jaxpr.outvars]

    def transposed(out_cotangent: Any) -> tuple:
        cts, ct_tree = tree_util.flatten(out_cotangent)
        if ct_tree != out_tree:
            raise TypeError(f"linear_transpose: cotangent tree structure {ct_tree} does not "
                            f"match the function's output structure {out_tree}")
        for ct, aval in zip(cts, out_avals):
            ct_aval = core.get_aval(ct)
            if ct_aval.shape != aval.shape or ct_aval.dtype != aval.dtype:
                raise TypeError(f"linear_transpose: cotangent {ct_aval.str_short()} does not "
                                f"match the output type {aval.str_short()}")
        out = ad.backward_pass(jaxpr, list(consts), [ad.UndefinedPrimal(a) for a in in_avals],
                               cts)
        out = [ad.instantiate(ct) if type(ct) is ad.Zero else ct for ct in out]
        return tree_util.unflatten(in_tree, out)
    return transposed


class _Residuals:
    """``vjp_fn`` staged to a jaxpr; its constants are the pytree children, so they
    travel as ``custom_vjp`` residuals."""

    def __init__(self, jaxpr: Any, consts: list, in_tree: Any, out_tree: Any) -> None:
        self.jaxpr, self.consts, self.in_tree, self.out_tree = jaxpr, consts, in_tree, out_tree


tree_util.register_pytree_node(
    _Residuals, lambda r: (r.consts, (r.jaxpr, r.in_tree, r.out_tree)),
    lambda aux, consts: _Residuals(aux[0], list(consts), aux[1], aux[2]))


def custom_gradient(fun: Callable) -> Callable:
    """Define a function's VJP inline: ``fun(*args)`` returns ``(value, vjp_fn)`` where
    ``vjp_fn(ct)`` returns a tuple with one cotangent per argument.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> @fungrad.custom_gradient
        ... def f(x):
        ...     return x ** 2, lambda g: (g * 10.0,)
        >>> fungrad.grad(f)(3.0)
        Array(10., dtype=float32, weak_type=True)
    """
    @custom_vjp
    def wrapped(*args):
        return fun(*args)[0]

    def fwd(*args):
        ans, rule = fun(*args)
        jaxpr, consts, in_tree, out_tree = _stage(rule, (ans,), "custom_gradient")
        return ans, _Residuals(jaxpr, consts, in_tree, out_tree)

    def bwd(res, ct):
        cts = tree_util.leaves(ct)
        out = core.eval_jaxpr(res.jaxpr, res.consts, *cts)
        return tree_util.unflatten(res.out_tree, out)
    wrapped.defvjp(fwd, bwd)
    return wrapped


def closure_convert(fun: Callable, *example_args: Any) -> tuple[Callable, list]:
    """``fun`` with its closed-over floating-point tracers (values an enclosing
    transformation may differentiate) hoisted into explicit trailing arguments: returns
    ``(converted, consts)`` with ``converted(*args, *consts) == fun(*args)``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> def outer(w):
        ...     g, consts = fungrad.closure_convert(lambda x: x * w, 1.0)
        ...     return g(2.0, *consts) if len(consts) == 1 else None
        >>> fungrad.grad(outer)(jnp.array(3.0))
        Array(2., dtype=float32, weak_type=True)
    """
    jaxpr, consts, in_tree, out_tree = _stage(fun, example_args, "closure_convert")
    hoist = [isinstance(c, core.Tracer) and dtypes.is_inexact(core.get_aval(c).dtype)
             for c in consts]
    hoisted = [c for c, h in zip(consts, hoist) if h]
    kept = [c for c, h in zip(consts, hoist) if not h]
    n_args = in_tree.num_leaves

    def converted(*args_and_consts: Any) -> Any:
        args, extra = args_and_consts[:len(args_and_consts) - len(hoisted)], \
            args_and_consts[len(args_and_consts) - len(hoisted):]
        flat, tree_ = tree_util.flatten(tuple(args))
        if tree_ != in_tree or len(flat) != n_args:
            raise TypeError(f"closure_convert: arguments of structure {tree_} do not match the "
                            f"example arguments' {in_tree}")
        it_h, it_k = iter(extra), iter(kept)
        all_consts = [next(it_h) if h else next(it_k) for h in hoist]
        return tree_util.unflatten(out_tree, core.eval_jaxpr(jaxpr, all_consts, *flat))
    return converted, hoisted
