"""How each primitive becomes Python source in a compiled executable.

A *lowering* turns one equation into a Python expression over the names of its
input buffers. Every primitive has one: by default its ``impl`` with the
backend module and params bound as a closure constant (so higher-order
primitives such as ``cond``/``scan``/``while`` run their impl, whose sub-jaxprs
are compiled through ``control_flow.common.set_jaxpr_compiler``). Hot
primitives get specialised lowerings that call the backend directly
(``np.add(a, b)``) and may write into a dead buffer (``out=``).

A lowering declares what the memory planner may do with it:
  fresh: the result is a newly allocated buffer nobody else references, so it
         may later be reused or updated in place;
  out:   ``"any"`` - it accepts any dead buffer of the result's shape and dtype
         as ``out``, even an operand dying here (elementwise ufuncs read and write
         the same positions); ``"separate"`` - any such buffer except its operands
         (``matmul``, reductions); an int ``k`` - it may update operand ``k`` in
         place when that buffer is dead afterwards; ``None`` - none of these;
  elementwise: its literal operands may be given pre-broadcast to the result's
         shape (a ufunc with a scalar operand pays ~0.5 µs of type resolution that
         an array operand of the same shape does not).

Register one with ``def_lowering(name, rule, fresh=..., out=..., when=...)`` (a
primitive may have several, each guarded by ``when``; the first that accepts an
equation is used, and the impl when none does) where
``rule(ctx, eqn, args, out) -> str``: ``args`` are the operand expressions,
``out`` the name of the buffer to write into (or None), and ``ctx.const(value,
hint)`` binds a Python object as a constant of the generated code.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import numpy as np

from fungrad._core.core import JaxprEqn, Primitive
from fungrad.interpreters import ad, batching


class Lowering(NamedTuple):
    rule: Callable[..., str]
    fresh: bool = False
    out: str | int | None = None
    elementwise: bool = False  # literal operands may be pre-broadcast to the result shape
    when: Callable[[JaxprEqn], bool] | None = None  # None: every equation of the primitive


_lowerings: dict[str, list[Lowering]] = {}


def def_lowering(name: str, rule: Callable[..., str], *, fresh: bool = False,
                 out: str | int | None = None, elementwise: bool = False,
                 when: Callable[[JaxprEqn], bool] | None = None) -> None:
    """Add a lowering of the primitive called ``name`` (see the module docstring);
    ``when(eqn)`` restricts it to some equations (the impl handles the others)."""
    _lowerings.setdefault(name, []).append(Lowering(rule, fresh, out, elementwise, when))


def lowered_names() -> frozenset[str]:
    """The names of the primitives that have a specialised lowering (the others run their
    impl)."""
    return frozenset(_lowerings)


def declare_compiled_only(prim: Primitive) -> None:
    """Declare that ``prim`` exists only inside compiled executables (the compiler's passes
    create it after every transformation has run), so it has no JVP or batching rule."""
    reason = "it exists only inside compiled executables"
    ad.def_no_jvp(prim, reason)
    batching.def_no_batch(prim, reason)


def kernel_primitive(name: str, out: str) -> Primitive:
    """A primitive that exists only inside compiled executables: its ``kernel`` param (a
    generated function taking the operands and an optional ``out=``) does the work. The
    fusion strategies make their fused groups with it; ``out`` is as in ``def_lowering``."""
    prim = Primitive(name)
    prim.def_impl(lambda xp, *args, kernel, **params: kernel(*args))

    def abstract(*avals: Any, **params: Any) -> None:
        raise TypeError(f"{name} only exists inside compiled executables")
    prim.def_abstract_eval(abstract)

    def lower(ctx: Any, eqn: JaxprEqn, args: list[str], out_name: str | None) -> str:
        kernel = ctx.const(eqn.params["kernel"], name)
        return f"{kernel}({', '.join(args)}{', out=' + out_name if out_name else ''})"
    def_lowering(name, lower, fresh=True, out=out)
    declare_compiled_only(prim)
    return prim


def _impl_rule(ctx: Any, eqn: JaxprEqn, args: list[str], out: str | None) -> str:
    impl = eqn.primitive.impl
    if impl is None:
        from fungrad.errors import MissingRuleError
        raise MissingRuleError(eqn.primitive, "implementation")
    fn = functools.partial(impl, ctx.xp, **eqn.params)
    return f"{ctx.const(fn, eqn.primitive.name)}({', '.join(args)})"


DEFAULT = Lowering(_impl_rule)


def lowering_for(eqn: JaxprEqn) -> Lowering:
    """The lowering of ``eqn``: the first specialised one whose guard accepts it, else
    the impl."""
    for low in _lowerings.get(eqn.primitive.name, ()):
        if low.when is None or low.when(eqn):
            return low
    return DEFAULT


# --------------------------------------------------------------------------- elementwise ufuncs

def _ufunc_rule(ufunc_name: str) -> Callable[..., str]:
    def rule(ctx, eqn, args, out):
        fn = ctx.const(getattr(ctx.xp, ufunc_name), ufunc_name)
        return f"{fn}({', '.join(args)}{', out=' + out if out else ''})"
    return rule


# primitive name -> the ufunc its impl applies (identical results by construction)
UFUNCS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "neg": "negative",
    "max": "maximum", "min": "minimum", "div": "true_divide",
    "exp": "exp", "exp2": "exp2", "log": "log", "expm1": "expm1", "log1p": "log1p",
    "sqrt": "sqrt", "cbrt": "cbrt", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh",
    "sinh": "sinh", "cosh": "cosh", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
    "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh",
    "sign": "sign", "floor": "floor", "ceil": "ceil", "is_finite": "isfinite", "abs": "absolute",
    "eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
    "ge": "greater_equal", "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
    "not": "invert", "nextafter": "nextafter", "add_any": "add",
}
# Integer division rounds toward zero: the impl does that.
_UFUNC_GUARDS = {"div": lambda eqn: eqn.invars[0].aval.dtype.kind in "fc"}
for _name, _ufunc in UFUNCS.items():
    def_lowering(_name, _ufunc_rule(_ufunc), fresh=True, out="any", elementwise=True,
                 when=_UFUNC_GUARDS.get(_name))


def _square_rule(ctx, eqn, args, out):
    fn = ctx.const(ctx.xp.multiply, "multiply")
    return f"{fn}({args[0]}, {args[0]}{', out=' + out if out else ''})"


def _power_fn(xp: Any, y: int) -> Callable:
    """``x ** 3`` or ``x ** 4`` with the products the impl (and XLA) forms, ``x * x**2``
    and ``x**2 * x**2``, written into ``out`` (which must not be ``x``)."""
    def power(x, out=None):
        sq = xp.multiply(x, x, out=out)
        return xp.multiply(x, sq, out=sq) if y == 3 else xp.multiply(sq, sq, out=sq)
    return power


def _integer_pow_rule(ctx, eqn, args, out):
    fn = ctx.const(_power_fn(ctx.xp, eqn.params["y"]), f"pow{eqn.params['y']}")
    return f"{fn}({args[0]}{', out=' + out if out else ''})"


def_lowering("square", _square_rule, fresh=True, out="any")
def_lowering("integer_pow", _square_rule, fresh=True, out="any",  # x ** 2: one multiply
             when=lambda eqn: eqn.params["y"] == 2)
def_lowering("integer_pow", _integer_pow_rule, fresh=True, out="separate",
             when=lambda eqn: eqn.params["y"] in (3, 4))


def _select_n_rule(ctx, eqn, args, out):
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


def _bitwise_select_rule(ctx, eqn, args, out):
    aval = eqn.outvars[0].aval
    fn = ctx.const(_bitwise_select_fn(ctx.xp, aval.shape, aval.dtype), "select")
    return f"{fn}({', '.join(args)}{', out=' + out if out else ''})"


# Below this many elements one ``where`` call costs less than four bitwise ones.
SELECT_BITS_MIN = 4096


def _select_guard(bitwise: bool) -> Callable[[JaxprEqn], bool]:
    def when(eqn):
        out = eqn.outvars[0].aval
        if len(eqn.invars) != 3 or eqn.invars[0].aval.dtype != np.bool_:
            return False
        return not bitwise or (out.size >= SELECT_BITS_MIN and out.dtype.isbuiltin == 1
                               and out.dtype.itemsize in (1, 2, 4, 8))
    return when


# The output is written before ``on_false`` is read for the last time: never in place.
def_lowering("select_n", _bitwise_select_rule, fresh=True, out="separate",
             when=_select_guard(True))
def_lowering("select_n", _select_n_rule, fresh=True, when=_select_guard(False))


# --------------------------------------------------------------------------- shapes (views)

def _reshape_rule(ctx, eqn, args, out):
    return f"{args[0]}.reshape({eqn.params['new_sizes']!r})"


def _transpose_rule(ctx, eqn, args, out):
    return f"{args[0]}.transpose({eqn.params['permutation']!r})"


def _squeeze_rule(ctx, eqn, args, out):
    return f"{args[0]}.reshape({eqn.outvars[0].aval.shape!r})"


def _convert_rule(ctx, eqn, args, out):
    return f"{args[0]}.astype({ctx.const(eqn.params['new_dtype'], 'dtype')})"


def_lowering("reshape", _reshape_rule)
def_lowering("transpose", _transpose_rule)
def_lowering("squeeze", _squeeze_rule)
# A plain astype, except where the impl does more: complex -> real (the real part) and
# float -> integer (saturating, as XLA).
def_lowering("convert_element_type", _convert_rule, fresh=True, when=lambda eqn: (
    eqn.invars[0].aval.dtype.kind in "iub" and eqn.params["new_dtype"].kind in "iubfc"
    or eqn.invars[0].aval.dtype.kind == "f" and eqn.params["new_dtype"].kind in "fc"))


def _pad_fn(xp: Any, shape: tuple, dtype: Any, config: tuple) -> Callable:
    """``pad`` without negative or interior padding: the borders filled with the padding
    value, the operand copied into the window (each element written once)."""
    window = tuple(slice(lo, lo + n - lo - hi) for n, (lo, hi, _) in zip(shape, config))
    borders = []
    for d, (n, (lo, hi, _)) in enumerate(zip(shape, config)):
        before = (slice(None),) * d
        if lo:
            borders.append(before + (slice(0, lo),))
        if hi:
            borders.append(before + (slice(n - hi, n),))

    def pad(x, value, out=None):
        out = xp.empty(shape, dtype) if out is None else out
        for border in borders:
            out[border] = value
        out[window] = x
        return out
    return pad


def _pad_rule(ctx, eqn, args, out):
    aval = eqn.outvars[0].aval
    pad = _pad_fn(ctx.xp, aval.shape, aval.dtype, eqn.params["padding_config"])
    fn = ctx.const(pad, "pad_into")
    return f"{fn}({args[0]}, {args[1]}{', out=' + out if out else ''})"


def_lowering("pad", _pad_rule, fresh=True, out="separate", when=lambda eqn: all(
    lo >= 0 and hi >= 0 and i == 0 for lo, hi, i in eqn.params["padding_config"]))


# --------------------------------------------------------------------------- reductions

# 16-bit floats accumulate in float32 in the impl; these need no special care.
_WIDE_INEXACT = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


def _reduce_sum_rule(ctx, eqn, args, out):
    # ``add.reduce`` is what ``sum`` calls, without its Python wrapper (~3 µs per call).
    dt = ctx.const(eqn.outvars[0].aval.dtype, "dtype")
    return f"{ctx.const(ctx.xp.add.reduce, 'sum')}({args[0]}, axis={eqn.params['axes']!r}, " \
           f"dtype={dt}{', out=' + out if out else ''})"


def_lowering("reduce_sum", _reduce_sum_rule, fresh=True, out="separate", when=lambda eqn: (
    eqn.invars[0].aval.dtype in _WIDE_INEXACT and bool(eqn.params["axes"])))


def _reduce_max_rule(ctx, eqn, args, out):
    fn = ctx.const(ctx.xp.maximum.reduce, "amax")  # what ``max`` calls (NaN propagates)
    return f"{fn}({args[0]}, axis={eqn.params['axes']!r}{', out=' + out if out else ''})"


def_lowering("reduce_max", _reduce_max_rule, fresh=True, out="separate", when=lambda eqn: (
    eqn.invars[0].aval.dtype.kind == "f" and bool(eqn.params["axes"])
    and eqn.invars[0].aval.size > 0))


# --------------------------------------------------------------------------- dot_general

def _dot_general_rule(ctx, eqn, args, out):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    xs, ys = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    lf = [d for d in range(len(xs)) if d not in lc and d not in lb]
    rf = [d for d in range(len(ys)) if d not in rc and d not in rb]
    size = lambda shape, dims: int(np.prod([shape[d] for d in dims], dtype=np.int64))
    b, m, k, n = size(xs, lb), size(xs, lf), size(xs, lc), size(ys, rf)

    def arrange(name, shape, perm, new_shape):
        expr = name
        if tuple(perm) != tuple(range(len(shape))):
            expr = f"{expr}.transpose({tuple(perm)!r})"
        if tuple(shape[p] for p in perm) != new_shape:
            expr = f"{expr}.reshape({new_shape!r})"
        return expr
    # Several batch axes stay separate (matmul broadcasts over them) when the matrices
    # are single axes: merging them would copy a transposed operand.
    single = len(lf) == len(lc) == len(rf) == 1
    batch = tuple(xs[d] for d in lb) if single else (b,) if lb else ()
    a = arrange(args[0], xs, (*lb, *lf, *lc), (*batch, m, k))
    c = arrange(args[1], ys, (*rb, *rc, *rf), (*batch, k, n))
    out_shape = eqn.outvars[0].aval.shape
    natural = (*batch, m, n)
    if out:  # a C-contiguous buffer reshapes to a view; otherwise matmul fills a copy
        out = out if out_shape == natural else f"{out}.reshape({natural!r})"
    expr = f"{ctx.const(ctx.xp.matmul, 'matmul')}({a}, {c}{', out=' + out if out else ''})"
    if out_shape != natural:
        expr = f"{expr}.reshape({out_shape!r})"
    return expr


def _plain_dot(eqn: JaxprEqn) -> bool:
    x, y = eqn.invars[0].aval, eqn.invars[1].aval
    out = eqn.outvars[0].aval
    return x.dtype == y.dtype == out.dtype and x.dtype.kind in "fc" and x.dtype.isbuiltin == 1


def_lowering("dot_general", _dot_general_rule, fresh=True, out="separate", when=_plain_dot)


# --------------------------------------------------------------------------- in-place updates

def _dynamic_update_slice_rule(ctx, eqn, args, out):
    """Copy the operand (or write into it when the planner gave it as ``out``)."""
    operand, update, *starts = args
    op_shape = eqn.invars[0].aval.shape
    up_shape = eqn.invars[1].aval.shape
    window = ctx.const(_window_fn(op_shape, up_shape), "window")
    target = out if out else f"{operand}.copy()"
    setitem = ctx.const(_write, "write")
    return f"{setitem}({target}, {window}({', '.join(starts)}), {update})"


def _window_fn(op_shape: tuple, up_shape: tuple) -> Callable:
    """Clamped start indices -> basic-slicing index (as XLA clamps dynamic slices)."""
    limits = [n - k for n, k in zip(op_shape, up_shape)]

    def window(*starts):
        return tuple(slice(s, s + k) for s, k in
                     zip((min(max(int(s), 0), lim) for s, lim in zip(starts, limits)), up_shape))
    return window


def _write(buf: Any, index: tuple, value: Any) -> Any:
    buf[index] = value
    return buf


def_lowering("dynamic_update_slice", _dynamic_update_slice_rule, fresh=True, out=0)
