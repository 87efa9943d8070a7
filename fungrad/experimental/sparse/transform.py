"""``sparsify``: run a function written for dense arrays on BCOO arguments.

The function is traced on the dense types of its arguments (``trace_to_jaxpr``), then its
jaxpr is evaluated with BCOO values flowing through it: an equation whose operands are all
dense is bound as usual (so it is transformed by any enclosing ``jit``/``grad``/``vmap``),
one with a sparse operand runs that primitive's sparse rule, and a primitive without one
raises ``NotImplementedError`` naming it. This is jax's ``sparsify`` in its jaxpr-evaluating
form; the rules follow jax's (``bcoo_dot_general`` for ``dot_general``, data-only updates
for zero-preserving elementwise functions, ...).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from fungrad import tree
from fungrad import numpy as jnp
from fungrad._core import core
from fungrad._core.core import ClosedJaxpr, Jaxpr, Literal, ShapedArray
from fungrad.experimental.sparse.bcoo import (BCOO, _add, bcoo_broadcast_in_dim,
                                              bcoo_reduce_sum, bcoo_transpose)
from fungrad.experimental.sparse.bcoo_products import bcoo_dot_general, bcoo_multiply_sparse
from fungrad.experimental.sparse.bcoo_shape import (bcoo_concatenate, bcoo_dynamic_slice,
                                                    bcoo_reshape, bcoo_rev, bcoo_slice,
                                                    bcoo_squeeze)
from fungrad.interpreters import partial_eval as pe

__all__ = ["sparsify"]

# Elementwise functions with f(0) == 0: applied to the stored data only. Those not linear
# need unique indices first (f(a) + f(b) != f(a + b)).
_LINEAR_UNARY = {"neg", "convert_element_type", "real", "imag", "conj"}
_ZERO_PRESERVING = {"abs", "asin", "asinh", "atan", "atanh", "expm1", "log1p", "sign", "sin",
                    "sinh", "sqrt", "square", "tan", "tanh"}


def _unary(prim: core.Primitive, x: Any, **params: Any) -> Any:
    if prim.name not in _LINEAR_UNARY and not x.unique_indices:
        x = x.sum_duplicates(nse=x.nse, remove_zeros=False)
    return x._with_data(prim.bind(x.data, **params))


def _integer_pow(prim: core.Primitive, x: Any, *, y: int) -> Any:
    if y <= 0:
        raise NotImplementedError(f"sparsify: integer_pow with exponent {y} <= 0 would give a "
                                  "dense result; densify with sparse.todense first")
    return _unary(prim, x, y=y)


def _mul(prim: core.Primitive, x: Any, y: Any) -> Any:
    if isinstance(x, BCOO) and isinstance(y, BCOO):
        if x.indices is y.indices and x.unique_indices:   # one origin: multiply the data
            return x._with_data(x.data * y.data)
        return bcoo_multiply_sparse(x, y)
    return (x if isinstance(x, BCOO) else y) * (y if isinstance(x, BCOO) else x)


def _div(prim: core.Primitive, x: Any, y: Any) -> Any:
    if isinstance(y, BCOO):
        raise NotImplementedError("sparsify: division by a sparse array would give a dense "
                                  "result; densify with sparse.todense first")
    return x / y


def _add_rule(prim: core.Primitive, x: Any, y: Any) -> Any:
    return _add(x, y, shared=True)


def _sub(prim: core.Primitive, x: Any, y: Any) -> Any:
    if not (isinstance(x, BCOO) and isinstance(y, BCOO)):
        raise NotImplementedError("sparsify: subtraction between a sparse and a dense array "
                                  "is not implemented (as in jax)")
    return _add(x, -y, shared=True)


def _dot_general(prim: core.Primitive, x: Any, y: Any, *, dimension_numbers: Any,
                 preferred_element_type: Any = None, **_: Any) -> Any:
    return bcoo_dot_general(x, y, dimension_numbers=dimension_numbers,
                            preferred_element_type=preferred_element_type)


def _reduce_sum(prim: core.Primitive, x: Any, *, axes: Sequence[int], **_: Any) -> Any:
    out = bcoo_reduce_sum(x, axes=axes)
    return out.data.sum() if out.shape == () else out


def _transpose(prim: core.Primitive, x: Any, *, permutation: Sequence[int]) -> Any:
    return bcoo_transpose(x, permutation=permutation)


def _broadcast_in_dim(prim: core.Primitive, x: Any, *, shape: Sequence[int],
                      broadcast_dimensions: Sequence[int], **_: Any) -> Any:
    return bcoo_broadcast_in_dim(x, shape=shape, broadcast_dimensions=broadcast_dimensions)


def _concatenate(prim: core.Primitive, *xs: Any, dimension: int) -> Any:
    if not all(isinstance(x, BCOO) for x in xs):
        raise NotImplementedError("sparsify: concatenate of sparse and dense arrays; densify "
                                  "with sparse.todense first")
    return bcoo_concatenate(xs, dimension=dimension)


def _dense_only(name: str, *xs: Any) -> None:
    if any(isinstance(x, BCOO) for x in xs):
        raise NotImplementedError(f"sparsify: {name} with sparse start indices")


def _dynamic_slice(prim: core.Primitive, x: Any, *starts: Any, slice_sizes: Sequence[int],
                   **_: Any) -> Any:
    _dense_only("dynamic_slice", *starts)
    return bcoo_dynamic_slice(x, starts, slice_sizes=slice_sizes)


def _reshape(prim: core.Primitive, x: Any, *, new_sizes: Sequence[int],
             dimensions: Sequence[int] | None = None, **_: Any) -> Any:
    return bcoo_reshape(x, new_sizes=new_sizes, dimensions=dimensions)


def _slice(prim: core.Primitive, x: Any, *, start_indices: Sequence[int],
           limit_indices: Sequence[int], strides: Sequence[int] | None = None) -> Any:
    return bcoo_slice(x, start_indices=start_indices, limit_indices=limit_indices,
                      strides=strides)


def _squeeze(prim: core.Primitive, x: Any, *, dimensions: Sequence[int]) -> Any:
    return bcoo_squeeze(x, dimensions=dimensions)


def _rev(prim: core.Primitive, x: Any, *, dimensions: Sequence[int]) -> Any:
    return bcoo_rev(x, dimensions)


_RULES: dict[str, Callable] = {
    **{name: _unary for name in _LINEAR_UNARY | _ZERO_PRESERVING},
    "integer_pow": _integer_pow, "mul": _mul, "div": _div, "add": _add_rule, "add_any": _add_rule,
    "sub": _sub, "dot_general": _dot_general, "reduce_sum": _reduce_sum,
    "transpose": _transpose, "broadcast_in_dim": _broadcast_in_dim,
    "concatenate": _concatenate, "dynamic_slice": _dynamic_slice, "reshape": _reshape,
    "slice": _slice, "squeeze": _squeeze, "rev": _rev,
}


def _inner_jaxpr(params: dict) -> ClosedJaxpr | None:
    """The body of a call-like equation (``jit``, ``custom_jvp_call``...), if it has one."""
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        body = params.get(key)
        if isinstance(body, ClosedJaxpr):
            return body
        if isinstance(body, Jaxpr):
            return ClosedJaxpr(body, [])
    return None


def _eval_sparse(jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list:
    env: dict = {}

    def read(v: Any) -> Any:
        return v.val if type(v) is Literal else env[v]

    for v, x in zip(jaxpr.constvars, consts):
        env[v] = x
    for v, x in zip(jaxpr.invars, args):
        env[v] = x
    for eqn in jaxpr.eqns:
        vals = [read(v) for v in eqn.invars]
        prim = eqn.primitive
        if not any(isinstance(x, BCOO) for x in vals):
            outs = prim.bind(*vals, **eqn.params)
            outs = outs if prim.multiple_results else [outs]
        elif (body := _inner_jaxpr(eqn.params)) is not None:
            n_consts = eqn.params.get("num_consts", 0)
            outs = _eval_sparse(body.jaxpr, body.consts, vals[n_consts:] if n_consts and len(
                vals) > len(body.jaxpr.invars) else vals)
        elif prim.name in _RULES:
            outs = [_RULES[prim.name](prim, *vals, **eqn.params)]
        else:
            raise NotImplementedError(
                f"sparsify: no sparse rule for the primitive '{prim.name}' (an operand is a "
                "BCOO); densify it with sparse.todense before this operation")
        for v, x in zip(eqn.outvars, outs):
            env[v] = x
    return [read(v) for v in jaxpr.outvars]


def sparsify(f: Callable) -> Callable:
    """``f`` made to accept BCOO arguments (``jax.experimental.sparse.sparsify``).

    Operations on sparse values stay sparse where jax's rules keep them so (elementwise
    functions with ``f(0) == 0``, products with dense arrays, sums of sparse arrays,
    ``transpose``, ``reduce_sum``); matrix products with a dense operand and sums with a
    dense array give dense results.
    """
    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        leaves, in_tree = tree.flatten((args, kwargs), is_leaf=lambda x: isinstance(x, BCOO))
        leaves = [x if isinstance(x, BCOO) else jnp.asarray(x) for x in leaves]
        avals = [ShapedArray(x.shape, x.dtype) if isinstance(x, BCOO) else core.get_aval(x)
                 for x in leaves]
        store = {}

        def flat_fun(*xs):
            a, kw = tree.unflatten(in_tree, list(xs))
            outs, store["tree"] = tree.flatten(f(*a, **kw))
            return outs
        jaxpr, consts, _ = pe.trace_to_jaxpr(flat_fun, avals, "sparsify")
        outs = _eval_sparse(jaxpr, consts, leaves)
        return tree.unflatten(store["tree"], outs)
    return wrapped


