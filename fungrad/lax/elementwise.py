"""Elementwise primitives (NumPy broadcasting, identical dtypes; see ``_prim``).

Each block: the primitive (implementation + shape/dtype rule), its JVP
(and transpose when linear), and its batching rule.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad._core import core, dtypes
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import (ANY, FLOAT, INEXACT, NUMERIC, as_operand, elementwise_prim,
                               operand_dtype, unbroadcast)


def _binary_operands(x: Any, y: Any) -> tuple[Any, Any]:
    """Python scalars take the dtype of the array they meet (weakly typed)."""
    dt = operand_dtype(x, y)
    return as_operand(x, dt), as_operand(y, dt)


def _unary(prim):
    def op(x: Any) -> Any:
        return prim.bind(as_operand(x))
    op.__name__ = prim.name
    op.__doc__ = f"Elementwise ``{prim.name}`` (``jax.lax.{prim.name}``)."
    return op


def _binary(prim):
    def op(x: Any, y: Any) -> Any:
        return prim.bind(*_binary_operands(x, y))
    op.__name__ = prim.name
    op.__doc__ = f"Elementwise ``{prim.name}`` with broadcasting (``jax.lax.{prim.name}``)."
    return op


# --------------------------------------------------------------------------- arithmetic

add_p = elementwise_prim("add", lambda xp, x, y: xp.add(x, y))
add = _binary(add_p)
ad.deflinear(add_p, lambda ct, x, y: [unbroadcast(ct, x.aval) if ad.is_undefined(x) else None,
                                      unbroadcast(ct, y.aval) if ad.is_undefined(y) else None])
batching.defbroadcasting(add_p)

sub_p = elementwise_prim("sub", lambda xp, x, y: xp.subtract(x, y))
sub = _binary(sub_p)
ad.deflinear(sub_p, lambda ct, x, y: [unbroadcast(ct, x.aval) if ad.is_undefined(x) else None,
                                      unbroadcast(neg(ct), y.aval) if ad.is_undefined(y) else None])
batching.defbroadcasting(sub_p)

mul_p = elementwise_prim("mul", lambda xp, x, y: xp.multiply(x, y))
mul = _binary(mul_p)
ad.defbilinear(mul_p, lambda ct, x, y: unbroadcast(mul(ct, y), x.aval),
               lambda ct, x, y: unbroadcast(mul(x, ct), y.aval))
batching.defbroadcasting(mul_p)


def _div_impl(xp, x, y):
    if x.dtype.kind in "iu":  # lax.div on integers rounds toward zero
        q = xp.floor_divide(x, y)
        fix = (xp.remainder(x, y) != 0) & ((x < 0) != (y < 0))
        return (q + fix.astype(q.dtype)).astype(x.dtype)
    return xp.true_divide(x, y).astype(x.dtype, copy=False)


div_p = elementwise_prim("div", _div_impl)
div = _binary(div_p)
ad.defjvp(div_p, lambda t, x, y: div(t, y),
          lambda t, x, y: mul(neg(t), div(div(x, y), y)))
ad.def_transpose(div_p, lambda ct, x, y: [unbroadcast(div(ct, y), x.aval), None])
batching.defbroadcasting(div_p)

neg_p = elementwise_prim("neg", lambda xp, x: xp.negative(x))
neg = _unary(neg_p)
ad.deflinear(neg_p, lambda ct, x: [neg(ct)])
batching.defvectorized(neg_p)


def _minmax_jvp(op, pick):
    def rule(primals, tangents):
        x, y = primals
        tx, ty = tangents
        out = op.bind(x, y)
        # Ties split the tangent evenly, as in JAX.
        x_wins = convert_to(pick(x, y), out)
        tie = convert_to(eq(x, y), out)
        wx = sub(x_wins, mul(tie, as_operand(0.5, core.get_aval(out).dtype)))
        t_out = ad.Zero.from_primal(out)
        if type(tx) is not ad.Zero:
            t_out = ad.add_tangents(t_out, mul(tx, wx))
        if type(ty) is not ad.Zero:
            t_out = ad.add_tangents(t_out, mul(ty, sub(as_operand(1.0, core.get_aval(out).dtype), wx)))
        return out, t_out
    return rule


max_p = elementwise_prim("max", lambda xp, x, y: xp.maximum(x, y), ANY)
max = _binary(max_p)  # noqa: A001 - lax.max
batching.defbroadcasting(max_p)

min_p = elementwise_prim("min", lambda xp, x, y: xp.minimum(x, y), ANY)
min = _binary(min_p)  # noqa: A001 - lax.min
batching.defbroadcasting(min_p)


def convert_to(x: Any, like: Any) -> Any:
    from fungrad.lax.shapes import convert_element_type
    return convert_element_type(x, core.get_aval(like).dtype)


# --------------------------------------------------------------------------- transcendental

exp_p = elementwise_prim("exp", lambda xp, x: xp.exp(x), INEXACT)
exp = _unary(exp_p)
ad.defjvp2(exp_p, lambda t, ans, x: mul(t, ans))
batching.defvectorized(exp_p)

log_p = elementwise_prim("log", lambda xp, x: xp.log(x), INEXACT)
log = _unary(log_p)
ad.defjvp(log_p, lambda t, x: div(t, x))
batching.defvectorized(log_p)

sin_p = elementwise_prim("sin", lambda xp, x: xp.sin(x), INEXACT)
sin = _unary(sin_p)
cos_p = elementwise_prim("cos", lambda xp, x: xp.cos(x), INEXACT)
cos = _unary(cos_p)
ad.defjvp(sin_p, lambda t, x: mul(t, cos(x)))
ad.defjvp(cos_p, lambda t, x: neg(mul(t, sin(x))))
batching.defvectorized(sin_p)
batching.defvectorized(cos_p)

tanh_p = elementwise_prim("tanh", lambda xp, x: xp.tanh(x), INEXACT)
tanh = _unary(tanh_p)
ad.defjvp2(tanh_p, lambda t, ans, x: mul(t, sub(as_operand(1, core.get_aval(ans).dtype), mul(ans, ans))))
batching.defvectorized(tanh_p)

sqrt_p = elementwise_prim("sqrt", lambda xp, x: xp.sqrt(x), INEXACT)
sqrt = _unary(sqrt_p)
ad.defjvp2(sqrt_p, lambda t, ans, x: div(t, mul(as_operand(2, core.get_aval(ans).dtype), ans)))
batching.defvectorized(sqrt_p)


# integer_pow: x ** n for a static integer n
def integer_pow(x: Any, y: int) -> Any:
    """``x ** y`` for a static Python integer ``y``."""
    return integer_pow_p.bind(as_operand(x), y=int(y))


def _integer_pow_impl(xp, x, *, y):
    if y < 0 and x.dtype.kind in "iu":
        raise ValueError("integer_pow: negative powers of integers are not supported")
    return xp.power(x, x.dtype.type(y) if x.dtype.kind in "iu" else y).astype(x.dtype, copy=False)


def _integer_pow_jvp(t, x, *, y):
    if y == 0:
        return mul(t, as_operand(0, core.get_aval(x).dtype))
    return mul(t, mul(as_operand(y, core.get_aval(x).dtype), integer_pow(x, y - 1)))


integer_pow_p = elementwise_prim("integer_pow", _integer_pow_impl)
ad.defjvp(integer_pow_p, _integer_pow_jvp)
batching.defvectorized(integer_pow_p)


# --------------------------------------------------------------------------- comparisons

def _comparison(name, impl):
    prim = elementwise_prim(name, impl, ANY, out_dtype=dtypes.bool_)
    ad.def_nondiff(prim)
    batching.defbroadcasting(prim)
    return prim, _binary(prim)


eq_p, eq = _comparison("eq", lambda xp, x, y: xp.equal(x, y))
ne_p, ne = _comparison("ne", lambda xp, x, y: xp.not_equal(x, y))
lt_p, lt = _comparison("lt", lambda xp, x, y: xp.less(x, y))
le_p, le = _comparison("le", lambda xp, x, y: xp.less_equal(x, y))
gt_p, gt = _comparison("gt", lambda xp, x, y: xp.greater(x, y))
ge_p, ge = _comparison("ge", lambda xp, x, y: xp.greater_equal(x, y))

ad.def_jvp(max_p, _minmax_jvp(max_p, gt))
ad.def_jvp(min_p, _minmax_jvp(min_p, lt))


# --------------------------------------------------------------------------- select_n

def select_n(which: Any, *cases: Any) -> Any:
    """``cases[which]`` elementwise; ``which`` is bool (two cases) or int32."""
    if not cases:
        raise ValueError("select_n: at least one case is required")
    dt = operand_dtype(*cases)
    return select_n_p.bind(as_operand(which), *[as_operand(c, dt) for c in cases])


def _select_n_impl(xp, which, *cases):
    if len(cases) == 1:
        return xp.broadcast_to(cases[0], np.broadcast_shapes(which.shape, cases[0].shape)).copy()
    if which.dtype == np.bool_:
        return xp.where(which, cases[1], cases[0])
    return xp.choose(which, cases, mode="clip") if which.ndim else cases[int(which)]


def _select_n_abstract(which, *cases):
    from fungrad.lax._prim import broadcast_shapes, check_dtypes
    if which.dtype != np.bool_ and which.dtype.kind not in "iu":
        raise TypeError(f"select_n: which must be boolean or integer, got {which.dtype.name}")
    if which.dtype == np.bool_ and len(cases) > 2:
        raise TypeError("select_n: a boolean which selects between at most two cases")
    dt = check_dtypes("select_n", cases, ANY)
    shape = broadcast_shapes("select_n", which.shape, *(c.shape for c in cases))
    return core.ShapedArray(shape, dt, all(c.weak_type for c in cases))


def _select_n_jvp(primals, tangents):
    which, *cases = primals
    out = select_n_p.bind(which, *cases)
    case_t = tangents[1:]
    if all(type(t) is ad.Zero for t in case_t):
        return out, ad.Zero.from_primal(out)
    ts = [ad.instantiate(t) if type(t) is not ad.Zero else ad.zeros_like_aval(t.aval) for t in case_t]
    return out, select_n_p.bind(which, *ts)


def _select_n_transpose(ct, which, *cases):
    zeros = ad.zeros_like_aval(core.ShapedArray(core.get_aval(ct).shape, core.get_aval(ct).dtype))
    outs = [None]
    for i, c in enumerate(cases):
        if ad.is_undefined(c):
            picks = [zeros] * len(cases)
            picks[i] = ct
            outs.append(unbroadcast(select_n_p.bind(which, *picks), c.aval))
        else:
            outs.append(None)
    return outs


select_n_p = core.Primitive("select_n")
select_n_p.def_impl(_select_n_impl)
select_n_p.def_abstract_eval(_select_n_abstract)
select_n_p.weak_type_rule = lambda weaks: all(weaks[1:])
ad.def_jvp(select_n_p, _select_n_jvp)
ad.def_transpose(select_n_p, _select_n_transpose)
batching.defbroadcasting(select_n_p)


def select(pred: Any, on_true: Any, on_false: Any) -> Any:
    """``on_true`` where ``pred`` else ``on_false`` (``lax.select``)."""
    return select_n(pred, on_false, on_true)


__all__ = ['add', 'add_p', 'sub', 'sub_p', 'mul', 'mul_p', 'div', 'div_p', 'neg', 'neg_p', 'max', 'max_p', 'min', 'min_p', 'exp', 'exp_p', 'log', 'log_p', 'sin', 'sin_p', 'cos', 'cos_p', 'tanh', 'tanh_p', 'sqrt', 'sqrt_p', 'integer_pow', 'integer_pow_p', 'eq', 'eq_p', 'ne', 'ne_p', 'lt', 'lt_p', 'le', 'le_p', 'gt', 'gt_p', 'ge', 'ge_p', 'select_n', 'select_n_p', 'select']
