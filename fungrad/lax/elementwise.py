"""Elementwise arithmetic, comparison, selection and complex-number primitives.

Operands have NumPy-broadcastable shapes and identical dtypes (see ``_prim``), and
the wrappers accept Python scalars (see ``_ops``). Each block holds a primitive
(implementation + shape/dtype rule), its wrapper, its JVP (or ``def_nondiff``), its
transpose when it is linear, and its batching rule.
"""
from __future__ import annotations

import enum
import functools
from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import core, dtypes, lowering
from fungrad._core.array import Array
from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.lax import _signed_zeros
from fungrad.lax.bitwise import (bitwise_and, clz, clz_p, population_count, population_count_p,
                                 shift_right_arithmetic, shift_right_arithmetic_p,
                                 shift_right_logical, shift_right_logical_p)
from fungrad.lax.shapes import convert_element_type
from fungrad.lax._ops import (ARRAY_TYPES, accepted_dtypes, binop, broadcast_to_shape,
                              check_operands, const, convert_to, def_intn_rule, intn_apply,
                              intn_compute, intn_error, operands, unop)
from fungrad.lax._prim import (ANY, BOOL, COMPLEX, FLOAT, INEXACT, INT, NUMERIC, as_operand,
                               broadcast_shapes, check_dtypes, elementwise_prim, kind,
                               unbroadcast)

ORDERED = BOOL + INT + FLOAT          # what lt/le/gt/ge accept (not complex)
SIGNED_OR_INEXACT = "i" + INEXACT     # abs and sign-sensitive ops
INT_OR_FLOAT = INT + FLOAT            # rem


# --------------------------------------------------------------------------- helpers

def _linear_cts(ct: Any, args: Sequence[Any], scales: Sequence[Callable]) -> list:
    """Cotangents of a sum of linear terms ``scale_i(x_i)``: unbroadcast per undefined input."""
    return [unbroadcast(f(ct), a.aval) if ad.is_undefined(a) else None
            for a, f in zip(args, scales)]


# --------------------------------------------------------------------------- add, sub, mul, neg

add_p, add = binop("add", lambda xp, x, y: xp.add(x, y), NUMERIC,
                   "Elementwise ``x + y`` (``jax.lax.add``); integers wrap around.")
ad.deflinear(add_p, lambda ct, x, y: _linear_cts(ct, (x, y), (lambda c: c, lambda c: c)))
lowering.def_ufunc(add_p, "add", numexpr="({} + {})")
lowering.def_cuda(add_p, "({} + {})")

sub_p, sub = binop("sub", lambda xp, x, y: xp.subtract(x, y), NUMERIC,
                   "Elementwise ``x - y`` (``jax.lax.sub``); integers wrap around.")
ad.deflinear(sub_p, lambda ct, x, y: _linear_cts(ct, (x, y), (lambda c: c, neg)))
lowering.def_ufunc(sub_p, "subtract", numexpr="({} - {})")
lowering.def_cuda(sub_p, "({} - {})")

mul_p, _mul = binop("mul", lambda xp, x, y: xp.multiply(x, y), NUMERIC,
                    "Elementwise ``x * y`` of operands of one dtype.")

# The result dtypes whose products with a converted boolean mask XLA computes as
# ``select(mask, x, 0)`` (so a masked-out inf or NaN gives 0): ``jnp.multiply`` does the
# same eagerly, the compiler's ``simplify`` under ``jit``. Not bfloat16, whose products XLA
# computes through float32 conversions that hide the pattern.
MASK_SELECT_DTYPES = frozenset(map(np.dtype, ("float16", "float32", "float64", "complex64",
                                              "complex128")))


def mul(x: Any, y: Any, *, out_dtype: Any = None) -> Any:
    """Elementwise ``x * y`` (``jax.lax.mul``); integers wrap around. With ``out_dtype``
    both operands are first converted to it, so ``mul(a_int8, b_int8, out_dtype=int32)``
    is the exact product, as in JAX."""
    if out_dtype is not None:
        x, y = convert_element_type(x, out_dtype), convert_element_type(y, out_dtype)
    return _mul(x, y)


ad.defbilinear(mul_p, lambda ct, x, y: unbroadcast(mul(ct, y), x.aval),
               lambda ct, x, y: unbroadcast(mul(x, ct), y.aval))
lowering.def_ufunc(mul_p, "multiply", numexpr="({} * {})")
lowering.def_cuda(mul_p, "({} * {})")

neg_p, neg = unop("neg", lambda xp, x: xp.negative(x), NUMERIC,
                  "Elementwise ``-x`` (``jax.lax.neg``); unsigned integers wrap around.")
ad.deflinear(neg_p, lambda ct, x: [neg(ct)])
lowering.def_ufunc(neg_p, "negative", numexpr="(-{})")
lowering.def_cuda(neg_p, "(-{})")


# --------------------------------------------------------------------------- div, rem

def _int_divisor(xp, x, y):
    """``y`` made safe for integer division: 0 and the overflowing ``MIN / -1`` divide by 1.

    XLA defines those cases (``x / 0 = -1``, ``x % 0 = x``, ``MIN / -1 = MIN``,
    ``MIN % -1 = 0``); NumPy would warn and differ, so they never reach it."""
    unsafe = y == 0
    if x.dtype.kind == "i":
        unsafe = unsafe | ((y == -1) & (x == np.iinfo(x.dtype).min))
    return xp.where(unsafe, xp.ones((), y.dtype), y)


def _div_impl(xp, x, y):
    if x.dtype.kind not in "iu":
        return xp.true_divide(x, y)
    y_safe = _int_divisor(xp, x, y)
    q = xp.floor_divide(xp.subtract(x, xp.fmod(x, y_safe)), y_safe)  # exact: rounds toward 0
    return xp.where(y == 0, ~xp.zeros((), x.dtype), q)  # all bits set: -1, or the max unsigned


div_p, div = binop("div", _div_impl, NUMERIC,
                   "Elementwise ``x / y`` (``jax.lax.div``); integer division rounds toward zero.")
ad.defjvp(div_p, lambda t, x, y: div(t, y),
          lambda t, x, y: mul(mul(neg(t), x), integer_pow(y, -2)))
ad.def_transpose(div_p, lambda ct, x, y: [unbroadcast(div(ct, y), x.aval), None])
# Integer division rounds toward zero: the impl does that.
lowering.def_ufunc(div_p, "true_divide", numexpr="({} / {})",
                   when=lambda eqn: eqn.invars[0].aval.dtype.kind in "fc")
# fg_div: integer division by 0 and MIN / -1 as XLA defines them
lowering.def_cuda(div_p, "({} / {})", i="fg_div({}, {})", u="fg_div({}, {})")


def _rem_impl(xp, x, y):
    if x.dtype.kind not in "iu":
        return xp.fmod(x, y)
    return xp.where(y == 0, x, xp.fmod(x, _int_divisor(xp, x, y)))


def _rem_jvp_lhs(t, x, y):
    shape = broadcast_shapes("rem", core.get_aval(x).shape, core.get_aval(y).shape)
    return broadcast_to_shape(t, shape)


rem_p, rem = binop("rem", _rem_impl, INT_OR_FLOAT,
                   "Elementwise remainder of ``x / y`` with the sign of ``x`` (C ``fmod``, "
                   "``jax.lax.rem``); integer ``x % 0`` is ``x`` as in XLA.")
ad.defjvp(rem_p, _rem_jvp_lhs,
          lambda t, x, y: mul(neg(t), mul(sign(div(x, y)), floor(abs(div(x, y))))))
lowering.def_cuda(rem_p, "fmod({}, {})", i="fg_rem({}, {})", u="fg_rem({}, {})")


# --------------------------------------------------------------------------- integer_pow

def _replace_zero(x):
    return select(eq(x, const(x, 0)), const(x, 1), x)


def integer_pow(x: Any, y: int) -> Any:
    """``x ** y`` for a static Python integer ``y`` by repeated squaring
    (``jax.lax.integer_pow``)."""
    x = x if isinstance(x, ARRAY_TYPES) else as_operand(x)
    y = int(y)
    _integer_pow_abstract(core.get_aval(x), y=y)
    return integer_pow_p.bind(x, y=y)


def _integer_pow_impl(xp, x, *, y):
    if y == 0:
        return xp.ones_like(x)
    acc, base, n = None, x, -y if y < 0 else y
    while n:
        if n & 1:
            acc = base if acc is None else xp.multiply(acc, base)
        n >>= 1
        if n:
            base = xp.multiply(base, base)
    return xp.reciprocal(acc) if y < 0 else acc


def _integer_pow_abstract(x, *, y):
    check_dtypes("integer_pow", [x], NUMERIC)
    if y < 0 and kind(x.dtype) in INT:
        raise TypeError(f"Integers cannot be raised to negative powers, got "
                        f"integer_pow({x.str_short()}, {y})")
    return x


def _integer_pow_jvp(t, x, *, y):
    if y == 0:
        return mul(t, const(t, 0))
    if y == 1:
        return t
    return mul(t, mul(const(x, y), x if y == 2 else integer_pow(x, y - 1)))


integer_pow_p = Primitive("integer_pow")
integer_pow_p.def_impl(_integer_pow_impl)
integer_pow_p.def_abstract_eval(_integer_pow_abstract)
ad.defjvp(integer_pow_p, _integer_pow_jvp)
batching.defvectorized(integer_pow_p)

square_p, square = unop("square", lambda xp, x: xp.multiply(x, x), NUMERIC,
                        "Elementwise ``x * x`` (``jax.lax.square``).")
ad.defjvp(square_p, lambda t, x: mul(t, mul(const(x, 2), x)))


def _square_lowering(ctx, eqn, args, out):
    fn = ctx.const(ctx.xp.multiply, "multiply")
    return f"{fn}({args[0]}, {args[0]}{', out=' + out if out else ''})"


def _power_fn(xp: Any, y: int) -> Callable:
    """``x ** 3`` or ``x ** 4`` with the products the impl (and XLA) forms, ``x * x**2``
    and ``x**2 * x**2``, written into ``out`` (which must not be ``x``). A 0-d operand
    gives a NumPy scalar, which cannot be written into, so the second product then
    allocates."""
    def power(x, out=None):
        sq = xp.multiply(x, x, out=out)
        dst = sq if isinstance(sq, xp.ndarray) else None
        return xp.multiply(x, sq, out=dst) if y == 3 else xp.multiply(sq, sq, out=dst)
    return power


def _integer_pow_lowering(ctx, eqn, args, out):
    fn = ctx.const(_power_fn(ctx.xp, eqn.params["y"]), f"pow{eqn.params['y']}")
    return f"{fn}({args[0]}{', out=' + out if out else ''})"


def _integer_pow_numexpr(eqn, x):
    return "(" + " * ".join([x] * eqn.params["y"]) + ")"


lowering.def_lowering(square_p, _square_lowering, fresh=True, out="any", elementwise=True,
                      numexpr="({0} * {0})")
lowering.def_cuda(square_p, "({0} * {0})")
lowering.def_lowering(integer_pow_p, _square_lowering, fresh=True, out="any",  # one multiply
                      elementwise=True, when=lambda eqn: eqn.params["y"] == 2,
                      numexpr=_integer_pow_numexpr)
lowering.def_lowering(integer_pow_p, _integer_pow_lowering, fresh=True, out="separate",
                      elementwise=True, when=lambda eqn: eqn.params["y"] in (3, 4),
                      numexpr=_integer_pow_numexpr)


def reciprocal(x: Any) -> Any:
    """Elementwise ``1 / x`` (``jax.lax.reciprocal``, an ``integer_pow`` by -1)."""
    return integer_pow(x, -1)


# --------------------------------------------------------------------------- sign, abs, rounding

sign_p, sign = unop("sign", _signed_zeros.sign, NUMERIC,
                    "Elementwise sign: -1, 0 (keeping the sign of a zero) or 1 (``x / |x|`` "
                    "for complex; ``jax.lax.sign``).")
ad.def_nondiff(sign_p)


def _is_float_eqn(eqn: Any) -> bool:
    return dtypes.is_float(eqn.invars[0].aval.dtype)


def _sign_lowering(ctx, eqn, args, out):
    return f"{ctx.const(functools.partial(_signed_zeros.sign, ctx.xp), 'sign')}({args[0]})"


lowering.def_lowering(sign_p, _sign_lowering, fresh=True, elementwise=True, when=_is_float_eqn)
lowering.def_ufunc(sign_p, "sign")
lowering.def_cuda(sign_p, "fg_sign({})")  # keeps -0 and NaN


def _real_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32 if dtype == np.complex64 else np.float64) \
        if dtype.kind == "c" else dtype


def _abs_jvp(t, ans, x):
    if kind(core.get_aval(x).dtype) == "c":
        return real(mul(t, div(conj(x), convert_to(_replace_zero(ans), x))))
    return select(ge(x, const(x, 0)), t, neg(t))


abs_p, abs = unop("abs", lambda xp, x: xp.abs(x), SIGNED_OR_INEXACT,  # noqa: A001 - lax.abs
                  "Elementwise ``|x|`` (``jax.lax.abs``); complex inputs give real results.",
                  out_dtype=_real_dtype)
ad.defjvp2(abs_p, _abs_jvp)
lowering.def_ufunc(abs_p, "absolute", numexpr="abs({})")
lowering.def_cuda(abs_p, "fabs({})", i="fg_abs({})")  # |MIN| wraps to MIN

floor_p, floor = unop("floor", lambda xp, x: xp.floor(x), FLOAT,
                      "Elementwise floor (``jax.lax.floor``).")
ad.def_nondiff(floor_p)
lowering.def_ufunc(floor_p, "floor")
lowering.def_cuda(floor_p, "floor({})")

ceil_p, ceil = unop("ceil", lambda xp, x: xp.ceil(x), FLOAT,
                    "Elementwise ceiling (``jax.lax.ceil``).")
ad.def_nondiff(ceil_p)
lowering.def_ufunc(ceil_p, "ceil")
lowering.def_cuda(ceil_p, "ceil({})")


class RoundingMethod(enum.IntEnum):
    """How ``round`` treats halfway values (``jax.lax.RoundingMethod``)."""
    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def _round_impl(xp, x, *, rounding_method):
    if rounding_method == RoundingMethod.TO_NEAREST_EVEN:
        return xp.rint(x)
    t = xp.trunc(x)  # x - t is exact, so halves are detected exactly; inf - inf is not selected
    return xp.where(xp.abs(xp.subtract(x, t)) >= 0.5, xp.add(t, xp.sign(x)), t)


def round(x: Any, rounding_method: RoundingMethod | int = RoundingMethod.AWAY_FROM_ZERO) -> Any:  # noqa: A001
    """Round to the nearest integer; halves go away from zero or to even (``jax.lax.round``)."""
    x = x if isinstance(x, ARRAY_TYPES) else as_operand(x)
    check_dtypes("round", [x], FLOAT)
    return round_p.bind(x, rounding_method=RoundingMethod(int(rounding_method)))


round_p = elementwise_prim("round", _round_impl, FLOAT)
ad.def_nondiff(round_p)
batching.defvectorized(round_p)

is_finite_p, is_finite = unop("is_finite", lambda xp, x: xp.isfinite(x), FLOAT,
                              "Elementwise test for values that are neither inf nor nan "
                              "(``jax.lax.is_finite``).", out_dtype=dtypes.bool_)
ad.def_nondiff(is_finite_p)
lowering.def_ufunc(is_finite_p, "isfinite")
lowering.def_cuda(is_finite_p, "isfinite({})")

nextafter_p, nextafter = binop("nextafter", lambda xp, x, y: xp.nextafter(x, y), FLOAT,
                               "The next representable value after ``x`` towards ``y`` "
                               "(``jax.lax.nextafter``).",
                               arg_names=("x1", "x2"))
ad.def_nondiff(nextafter_p)
lowering.def_ufunc(nextafter_p, "nextafter")
lowering.def_cuda(nextafter_p, "nextafter({}, {})")


# --------------------------------------------------------------------------- comparisons

def _comparison(name: str, ufunc: str, symbol: str, kinds: str, doc: str
                ) -> tuple[Primitive, Callable]:
    prim, op = binop(name, lambda xp, x, y: getattr(xp, ufunc)(x, y), kinds, doc,
                     out_dtype=dtypes.bool_)
    ad.def_nondiff(prim)
    template = f"({{}} {symbol} {{}})"  # the same in numexpr and C
    lowering.def_ufunc(prim, ufunc, numexpr=template)
    lowering.def_cuda(prim, template)
    return prim, op


eq_p, eq = _comparison("eq", "equal", "==", ANY, "Elementwise ``x == y`` (``jax.lax.eq``).")
ne_p, ne = _comparison("ne", "not_equal", "!=", ANY, "Elementwise ``x != y`` (``jax.lax.ne``).")
lt_p, lt = _comparison("lt", "less", "<", ORDERED, "Elementwise ``x < y`` (``jax.lax.lt``).")
le_p, le = _comparison("le", "less_equal", "<=", ORDERED,
                       "Elementwise ``x <= y`` (``jax.lax.le``).")
gt_p, gt = _comparison("gt", "greater", ">", ORDERED, "Elementwise ``x > y`` (``jax.lax.gt``).")
ge_p, ge = _comparison("ge", "greater_equal", ">=", ORDERED,
                       "Elementwise ``x >= y`` (``jax.lax.ge``).")


# --------------------------------------------------------------------------- max, min, clamp

def _balanced_eq(x, z, y):
    """1 where ``x`` attains the extremum ``z`` alone, 1/2 where ``y`` ties, else 0 (as JAX)."""
    return div(select(eq(x, z), const(z, 1), const(z, 0)),
               select(eq(y, z), const(z, 2), const(z, 1)))


def _one_literal(eqn: Any) -> bool:
    return _is_float_eqn(eqn) and sum(type(v) is core.Literal for v in eqn.invars) == 1


def _extremum_lowerings(prim: Primitive, is_max: bool) -> None:
    """A float max/min with one literal operand (``relu``) is the ufunc, its operands in the
    order that makes a tie of zeros return what JAX returns; others call
    ``_signed_zeros.extremum``, which fixes zero results; integers are the ufunc."""
    ufunc = "maximum" if is_max else "minimum"
    # JAX's ties: x where x == y, but max(+0, -0) = +0 and min(+0, -0) = -0
    tie = "{0} + {1}" if is_max else "-(-{0} - {1})"
    cmp = ">" if is_max else "<"
    numexpr = (f"where(({{0}} {cmp} {{1}}) | ({{0}} != {{0}}), {{0}}, where({{0}} == {{1}}, "
               f"where({{0}} == 0, {tie}, {{0}}), {{1}}))")

    def call_helper(ctx, args, out):
        helper = ctx.const(functools.partial(_signed_zeros.extremum, ctx.xp, is_max=is_max),
                           ufunc)
        return f"{helper}({args[0]}, {args[1]}{', out=' + out if out else ''})"

    def literal_rule(ctx, eqn, args, out):
        i = 0 if type(eqn.invars[0]) is core.Literal else 1
        value = eqn.invars[i].val
        order = args
        if value == 0:
            second = _signed_zeros.scalar_goes_second(
                ctx.xp, eqn.invars[0].aval.dtype, bool(np.signbit(value)), is_max)
            if second is None:
                return call_helper(ctx, args, out)
            order = [args[1 - i], args[i]] if second else [args[i], args[1 - i]]
        fn = ctx.const(getattr(ctx.xp, ufunc), ufunc)
        return f"{fn}({order[0]}, {order[1]}{', out=' + out if out else ''})"

    lowering.def_lowering(prim, literal_rule, fresh=True, out="any", elementwise=True,
                          when=_one_literal, numexpr=numexpr)

    def arrays_rule(ctx, eqn, args, out):
        if any(v.aval.size != eqn.outvars[0].aval.size for v in eqn.invars):
            return call_helper(ctx, args, out)  # a size-1 operand may be a zero scalar
        fix = ctx.const(functools.partial(_signed_zeros.fix_zero_ties, ctx.xp, is_max=is_max),
                        "fix_zero_ties")
        fn = ctx.const(getattr(ctx.xp, ufunc), ufunc)
        return f"{fix}({fn}({args[0]}, {args[1]}), {args[0]}, {args[1]})"

    lowering.def_lowering(prim, arrays_rule, fresh=True, elementwise=True, when=_is_float_eqn,
                          numexpr=numexpr)
    # integers are the ufunc; complex values run the impl (XLA's lexicographic order)
    lowering.def_ufunc(prim, ufunc, when=lambda eqn: eqn.invars[0].aval.dtype.kind != "c")


max_p, max = binop("max", functools.partial(_signed_zeros.extremum, is_max=True),  # noqa: A001
                   ANY, "Elementwise maximum, propagating nan, ``max(+0, -0) = +0`` "
                   "(``jax.lax.max``).")
ad.defjvp2(max_p, lambda t, ans, x, y: mul(t, _balanced_eq(x, ans, y)),
           lambda t, ans, x, y: mul(t, _balanced_eq(y, ans, x)))
_extremum_lowerings(max_p, is_max=True)
lowering.def_cuda(max_p, "({0} > {1} ? {0} : {1})", f="fg_max({}, {})")  # NaN wins, +0 > -0

min_p, min = binop("min", functools.partial(_signed_zeros.extremum, is_max=False),  # noqa: A001
                   ANY, "Elementwise minimum, propagating nan, ``min(+0, -0) = -0`` "
                   "(``jax.lax.min``).")
ad.defjvp2(min_p, lambda t, ans, x, y: mul(t, _balanced_eq(x, ans, y)),
           lambda t, ans, x, y: mul(t, _balanced_eq(y, ans, x)))
_extremum_lowerings(min_p, is_max=False)
lowering.def_cuda(min_p, "({0} < {1} ? {0} : {1})", f="fg_min({}, {})")  # NaN wins, -0 < +0


def clamp(min: Any, x: Any, max: Any) -> Any:  # noqa: A002 - jax's argument names
    """``min(max(x, min), max)`` elementwise (``jax.lax.clamp``); bounds broadcast against x."""
    lo, x, hi = operands(min, x, max)
    if check_operands("clamp", ANY, _CLAMP_ACCEPTED, (lo, x, hi)):
        return intn_apply(clamp_p, (lo, x, hi))
    return clamp_p.bind(lo, x, hi)


def _where_else_zero(pred, t):
    return select(pred, t, const(t, 0))


clamp_p = elementwise_prim("clamp", lambda xp, lo, x, hi: _signed_zeros.extremum(
    xp, _signed_zeros.extremum(xp, x, lo, True), hi, False), ANY)
_CLAMP_ACCEPTED = accepted_dtypes(ANY)
ad.defjvp(clamp_p,
          lambda t, lo, x, hi: _where_else_zero(bitwise_and(gt(lo, x), lt(lo, hi)), t),
          lambda t, lo, x, hi: _where_else_zero(bitwise_and(gt(x, lo), lt(x, hi)), t),
          lambda t, lo, x, hi: _where_else_zero(lt(hi, x), t))
batching.defbroadcasting(clamp_p)


# --------------------------------------------------------------------------- select_n

def select_n(which: Any, *cases: Any) -> Any:
    """``cases[which]`` elementwise (``jax.lax.select_n``).

    ``which`` is boolean (at most two cases: False picks ``cases[0]``) or integer;
    all cases share one dtype; shapes broadcast.
    """
    if not cases:
        raise ValueError("select_n: at least one case is required")
    which = which if isinstance(which, ARRAY_TYPES) else as_operand(which)
    cases = operands(*cases)
    _select_n_abstract(core.get_aval(which), *[core.get_aval(c) for c in cases])
    return select_n_p.bind(which, *cases)


def select(pred: Any, on_true: Any, on_false: Any) -> Any:
    """``on_true`` where ``pred`` else ``on_false`` (``jax.lax.select``)."""
    return select_n(pred, on_false, on_true)


def _select_n_impl(xp, which, *cases):
    shape = np.broadcast_shapes(which.shape, *(c.shape for c in cases))
    if len(cases) == 1:
        out = cases[0]
    elif which.dtype == np.bool_:
        out = xp.where(which, cases[1], cases[0])
    elif which.ndim == 0:
        out = cases[np.clip(int(which), 0, len(cases) - 1)]
    else:
        out = xp.choose(which, cases, mode="clip")
    return xp.broadcast_to(out, shape) if out.shape != shape else out


def _select_n_abstract(which, *cases):
    if which.dtype != np.bool_ and kind(which.dtype) not in INT:
        raise TypeError(f"select_n: which must be boolean or integer, got {which.dtype.name}")
    if which.dtype == np.bool_ and len(cases) > 2:
        raise TypeError("select_n: a boolean which selects between at most two cases, got "
                        f"{len(cases)}")
    dt = check_dtypes("select_n", cases, ANY)
    shape = broadcast_shapes("select_n", which.shape, *(c.shape for c in cases))
    return ShapedArray(shape, dt, all(c.weak_type for c in cases))


def _select_n_jvp(primals, tangents):
    which, *cases = primals
    out = select_n_p.bind(which, *cases)
    case_t = tangents[1:]
    if all(type(t) is ad.Zero for t in case_t):
        return out, ad.Zero.from_primal(out)
    zero = const(out, 0)
    return out, select_n_p.bind(which, *[zero if type(t) is ad.Zero else t for t in case_t])


def _select_n_transpose(ct, which, *cases):
    zero = const(ct, 0)
    outs = [None]
    for i, c in enumerate(cases):
        if ad.is_undefined(c):
            picks = [zero] * len(cases)
            picks[i] = ct
            outs.append(unbroadcast(select_n_p.bind(which, *picks), c.aval))
        else:
            outs.append(None)
    return outs


select_n_p = Primitive("select_n")
select_n_p.def_impl(_select_n_impl)
select_n_p.def_abstract_eval(_select_n_abstract)
select_n_p.weak_type_rule = lambda weaks, **params: all(weaks[1:])
ad.def_jvp(select_n_p, _select_n_jvp)
ad.def_transpose(select_n_p, _select_n_transpose)
batching.defbroadcasting(select_n_p)
lowering.def_compiler_traits(select_n_p, moves_elements=True)


def _where_lowering(ctx, eqn, args, out):
    where = ctx.const(ctx.xp.where, "where")
    return f"{where}({args[0]}, {args[2]}, {args[1]})"


def _bitwise_select_fn(xp: Any, shape: tuple, dtype: np.dtype) -> Callable:
    """``where(pred, on_true, on_false)`` as integer bit operations on the cases' bits:
    ``f ^ ((t ^ f) & -pred)``. Exact (a bit copy, NaNs included) and ~4x faster than
    ``where``, whose per-element branch mispredicts on irregular masks."""
    bits = np.dtype(f"i{dtype.itemsize}")

    def select(pred, on_false, on_true, out=None):
        mask = xp.negative(pred.view(np.int8), dtype=bits, casting="unsafe")  # 0 or -1
        out = xp.empty(shape, dtype) if out is None else out
        o, f = out.view(bits), on_false.view(bits)
        xp.bitwise_xor(on_true.view(bits), f, out=o)
        xp.bitwise_and(o, mask, out=o)
        return xp.bitwise_xor(o, f, out=o).view(dtype)
    return select


def _constant_select_fn(xp: Any, shape: tuple, dtype: np.dtype, on_false: Any, on_true: Any
                        ) -> Callable | None:
    """``where(pred, on_true, on_false)`` between two float constants as one ufunc pass on the
    mask, where that gives exactly the constants: ``pred * on_true`` when ``on_false`` is +0.0
    and ``on_true`` positive and finite, ``pred + on_false`` when ``on_true`` is exactly
    ``on_false + 1`` (the tie masks of ``max``'s derivative, ``1 or 0`` and ``2 or 1``, cost a
    quarter of the bitwise select); None for other constants."""
    f, t, one = dtype.type(on_false), dtype.type(on_true), dtype.type(1)
    if f == 0 and not np.signbit(f) and np.isfinite(t) and t > 0:
        ufunc, k = xp.multiply, t
    elif np.isfinite(f) and not (f == 0 and np.signbit(f)) and f + one == t:
        ufunc, k = xp.add, f
    else:
        return None
    k = xp.asarray(k)

    def select(pred, on_false, on_true, out=None):
        return ufunc(pred, k, out=xp.empty(shape, dtype) if out is None else out)
    return select


def _literal_value(a: Any) -> Any:
    """The value of a literal operand (None for a variable)."""
    return None if type(a) is not core.Literal else \
        a.val._value if type(a.val) is Array else a.val


def _bitwise_select_lowering(ctx, eqn, args, out):
    aval = eqn.outvars[0].aval
    on_false, on_true = (_literal_value(a) for a in eqn.invars[1:])
    fn = None
    if on_false is not None and on_true is not None and aval.dtype.kind == "f":
        fn = _constant_select_fn(ctx.xp, aval.shape, aval.dtype, on_false, on_true)
    fn = ctx.const(fn or _bitwise_select_fn(ctx.xp, aval.shape, aval.dtype), "select")
    return f"{fn}({', '.join(args)}{', out=' + out if out else ''})"


# Below this many elements one ``where`` call costs less than four bitwise ones.
SELECT_BITS_MIN = 4096


def _select_guard(bitwise: bool) -> Callable[[Any], bool]:
    def when(eqn):
        out = eqn.outvars[0].aval
        if len(eqn.invars) != 3 or eqn.invars[0].aval.dtype != np.bool_:
            return False
        return not bitwise or (out.size >= SELECT_BITS_MIN and out.dtype.isbuiltin == 1
                               and out.dtype.itemsize in (1, 2, 4, 8))
    return when


# The bitwise select writes its output before reading ``on_false`` for the last time: never
# in place.
lowering.def_lowering(select_n_p, _bitwise_select_lowering, fresh=True, out="separate",
                      elementwise=True, when=_select_guard(True), numexpr="where({0}, {2}, {1})")
lowering.def_lowering(select_n_p, _where_lowering, fresh=True, elementwise=True,
                      when=_select_guard(False), numexpr="where({0}, {2}, {1})")


# --------------------------------------------------------------------------- complex numbers

real_p, real = unop("real", lambda xp, x: xp.real(x), COMPLEX,
                    "Real part of a complex array (``jax.lax.real``).", out_dtype=_real_dtype)
ad.deflinear(real_p, lambda ct, x: [complex(ct, const(ct, 0))])

imag_p, imag = unop("imag", lambda xp, x: xp.imag(x), COMPLEX,
                    "Imaginary part of a complex array (``jax.lax.imag``).", out_dtype=_real_dtype)
ad.deflinear(imag_p, lambda ct, x: [complex(const(ct, 0), neg(ct))])

_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64),
               np.dtype(np.float64): np.dtype(np.complex128)}


def _check_complex_parts(name: str, dtype: np.dtype) -> None:
    if dtype not in _COMPLEX_OF and (name != "conj" or kind(dtype) != "c"):
        accepted = "float32, float64" + (" or complex" if name == "conj" else "")
        raise TypeError(f"{name} does not accept dtype {dtype.name}; accepted: {accepted}")


def complex(x: Any, y: Any) -> Any:  # noqa: A001 - lax.complex
    """``x + 1j * y`` from float32/float64 parts (``jax.lax.complex``)."""
    x, y = operands(x, y)
    check_dtypes("complex", (x, y), FLOAT)
    _check_complex_parts("complex", x.dtype)
    return complex_p.bind(x, y)


def _complex_impl(xp, x, y):
    out = xp.empty(np.broadcast_shapes(x.shape, y.shape), _COMPLEX_OF[x.dtype])
    out.real, out.imag = x, y  # not x + 1j * y, which turns an infinite y into nan + inf j
    return out


complex_p = elementwise_prim("complex", _complex_impl, FLOAT, out_dtype=lambda dt: _COMPLEX_OF[dt])
ad.deflinear(complex_p, lambda ct, x, y: _linear_cts(ct, (x, y), (real, lambda c: imag(neg(c)))))
batching.defbroadcasting(complex_p)


def conj(x: Any) -> Any:
    """Complex conjugate; real float32/float64 inputs become complex (``jax.lax.conj``)."""
    x = x if isinstance(x, ARRAY_TYPES) else as_operand(x)
    _check_complex_parts("conj", x.dtype)
    return conj_p.bind(x, input_dtype=np.dtype(x.dtype))


def _conj_abstract(x, *, input_dtype):
    _check_complex_parts("conj", x.dtype)
    return ShapedArray(x.shape, x.dtype if kind(x.dtype) == "c" else _COMPLEX_OF[x.dtype],
                       x.weak_type)


def _conj_impl(xp, x, *, input_dtype):
    return xp.conj(x) if x.dtype.kind == "c" else x.astype(_COMPLEX_OF[x.dtype])


def _conj_transpose(ct, x, *, input_dtype):
    return [conj(ct) if kind(input_dtype) == "c" else real(ct)]


conj_p = Primitive("conj")
conj_p.def_impl(_conj_impl)
conj_p.def_abstract_eval(_conj_abstract)
ad.deflinear(conj_p, _conj_transpose)
batching.defvectorized(conj_p)


# --------------------------------------------------------------------------- sub-byte integers
# The operations whose result on a sub-byte integer (int4, uint2, ...) is not that of its
# extension to a byte by its own signedness (``_ops.intn_apply``): a logical shift and the
# bit counts read the operand's bits as unsigned, an arithmetic shift as signed; ``abs``
# refuses them, as ``jax.lax.abs`` does.

def _intn_refused(name: str) -> Callable:
    def rule(x: Any) -> Any:
        raise intn_error(name, core.get_aval(x).dtype)
    return rule


def _intn_clz(x: Any) -> Any:
    bits = dtypes.iinfo(core.get_aval(x).dtype).bits
    return intn_compute(lambda v: sub(clz(v), const(v, 8 - bits)), (x,), signed=False)


def_intn_rule(abs_p, _intn_refused("abs"))
def_intn_rule(shift_right_logical_p, lambda x, y: intn_compute(shift_right_logical, (x, y),
                                                                signed=False))
def_intn_rule(shift_right_arithmetic_p, lambda x, y: intn_compute(shift_right_arithmetic, (x, y),
                                                                   signed=True))
def_intn_rule(population_count_p, lambda x: intn_compute(population_count, (x,), signed=False))
def_intn_rule(clz_p, _intn_clz)


__all__ = [
    "RoundingMethod",
    "add", "add_p", "sub", "sub_p", "mul", "mul_p", "neg", "neg_p", "div", "div_p",
    "rem", "rem_p", "integer_pow", "integer_pow_p", "square", "square_p",
    "reciprocal", "sign", "sign_p", "abs", "abs_p", "floor", "floor_p", "ceil", "ceil_p",
    "round", "round_p", "is_finite", "is_finite_p", "nextafter", "nextafter_p",
    "eq", "eq_p", "ne", "ne_p", "lt", "lt_p", "le", "le_p", "gt", "gt_p", "ge", "ge_p",
    "max", "max_p", "min", "min_p", "clamp", "clamp_p", "select_n", "select_n_p", "select",
    "real", "real_p", "imag", "imag_p", "complex", "complex_p", "conj", "conj_p",
]
