"""Arithmetic, comparison, logical and bitwise ufuncs (the operators of ``Array``).

Each function promotes its arguments with JAX's rules (``_util.promote_args*``),
checks broadcasting, and lowers to one or a few ``fungrad.lax`` primitives, which
broadcast natively. Transcendental and floating-point functions live in
``_ufuncs_math``.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.lax._ops import intn_error
from fungrad.lax.elementwise import MASK_SELECT_DTYPES
from fungrad.numpy._util import (aval, ensure_arraylike, promote_args, promote_args_inexact,
                                 promote_args_numeric, promote_dtypes_numeric, scalar_like,
                                 truthy, where as _where)


# --------------------------------------------------------------------------- ufunc keywords

# The functions ``jax.numpy`` exposes as ufunc objects (``jnp.add``, ...) take NumPy's
# ``out`` and ``where`` keywords, which must be None: fungrad arrays are immutable.
# ``_ufunc_api`` makes each of these functions the ``__call__`` of its ufunc object.

def ufunc_keyword_error(name: str, out: Any) -> NotImplementedError:
    """The error for a ufunc ``name`` called with ``out`` (or, when ``out`` is None,
    ``where``) other than None, as JAX raises it."""
    what = "out" if out is not None else "where"
    return NotImplementedError(f"{what} argument of <jnp.ufunc '{name}'> is not supported: "
                               "fungrad arrays are immutable; use the returned array"
                               + (" and jnp.where" if what == "where" else ""))


# --------------------------------------------------------------------------- arithmetic

def add(x: Any, y: Any, /, *, out: None = None, where: None = None) -> Any:
    """Elementwise ``x + y`` with broadcasting (``or`` for booleans); ``out`` and ``where``
    must be None (see ``ufunc_keyword_error``)."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("add", out)
    x, y = promote_args("add", x, y, bare_scalars=True)
    return lax.bitwise_or(x, y) if x.dtype == np.bool_ else lax.add(x, y)


def subtract(x: Any, y: Any, /, *, out: None = None, where: None = None) -> Any:
    """Elementwise ``x - y``; ``out`` and ``where`` must be None."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("subtract", out)
    return lax.sub(*promote_args("subtract", x, y, bare_scalars=True))


_BOOL = np.dtype(bool)


def _is_bool(v: Any) -> bool:
    return type(v) is bool or getattr(v, "dtype", None) is _BOOL


def multiply(x: Any, y: Any, /, *, out: None = None, where: None = None) -> Any:
    """Elementwise ``x * y`` (``and`` for booleans); ``out`` and ``where`` must be None.

    A float or complex array times a boolean mask of the result's shape is
    ``where(mask, x, 0)``, as in JAX, where XLA rewrites the product with the converted
    mask into that select: masked-out infs and NaNs give 0, not NaN. A mask that is
    broadcast (``(2, 3) * (3,)``) is multiplied, as in JAX."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("multiply", out)
    px, py = promote_args("multiply", x, y, bare_scalars=True)
    if (px is not x or py is not y) and px.dtype in MASK_SELECT_DTYPES:  # a conversion
        x_bool, y_bool = _is_bool(x), _is_bool(y)
        if x_bool != y_bool and np.shape(x if x_bool else y) == \
                np.broadcast_shapes(np.shape(px), np.shape(py)):
            other = py if x_bool else px
            return lax.select(x if x_bool else y, other, scalar_like(0, other))
    return lax.bitwise_and(px, py) if px.dtype == np.bool_ else lax.mul(px, py)


def true_divide(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 / x2``; integers are divided as the default float type."""
    return lax.div(*promote_args_inexact("true_divide", x1, x2, bare_scalars=True))


def divide(x1: Any, x2: Any, /) -> Any:
    """Alias of ``true_divide``."""
    return true_divide(x1, x2)


def _float_divmod(x1: Any, x2: Any) -> tuple[Any, Any]:
    zero = scalar_like(0, x1)
    mod = lax.rem(x1, x2)
    div = lax.div(lax.select(lax.eq(x2, zero), x1, lax.sub(x1, mod)), x2)
    fix = lax.bitwise_and(lax.ne(mod, zero), lax.ne(lax.sign(x2), lax.sign(mod)))
    mod = lax.select(fix, lax.add(mod, x2), mod)
    div = lax.select(fix, lax.sub(div, 1.0), div)  # a Python scalar keeps div's weak type
    return lax.round(div, lax.RoundingMethod.TO_NEAREST_EVEN), mod


def floor_divide(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 // x2`` rounding toward minus infinity."""
    x1, x2 = promote_args_numeric("floor_divide", x1, x2)
    kind = dtypes.kind(aval(x1).dtype)
    if kind == "u":
        return lax.div(x1, x2)
    if kind == "i":
        quotient = lax.div(x1, x2)
        fix = lax.bitwise_and(lax.ne(lax.sign(x1), lax.sign(x2)),
                              lax.ne(lax.rem(x1, x2), scalar_like(0, x1)))
        return lax.select(fix, subtract(quotient, 1), quotient)  # keeps quotient's weak type
    if kind == "c":
        raise TypeError("floor_divide does not support complex-valued inputs")
    return _float_divmod(x1, x2)[0]


def remainder(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 % x2`` with the sign of ``x2`` (Python semantics)."""
    x1, x2 = promote_args_numeric("remainder", x1, x2)
    zero = scalar_like(0, x1)
    if dtypes.is_integer(aval(x2).dtype):  # ones like x2, keeping its weak type
        x2 = lax.select(lax.eq(x2, zero), lax.full_like(x2, 1), x2)
    trunc_mod = lax.rem(x1, x2)
    do_plus = lax.bitwise_and(lax.ne(lax.lt(trunc_mod, zero), lax.lt(x2, zero)),
                              lax.ne(trunc_mod, zero))
    return lax.select(do_plus, lax.add(trunc_mod, x2), trunc_mod)


def mod(x1: Any, x2: Any, /) -> Any:
    """Alias of ``remainder``."""
    return remainder(x1, x2)


def fmod(x1: Any, x2: Any, /) -> Any:
    """Elementwise remainder with the sign of ``x1`` (C semantics); an integer divided by
    zero gives 0 (XLA's answer there depends on how it compiled the division)."""
    x1, x2 = promote_args_numeric("fmod", x1, x2)
    if dtypes.is_integer(aval(x2).dtype):  # ones like x2, keeping its weak type
        x2 = lax.select(lax.eq(x2, scalar_like(0, x2)), lax.full_like(x2, 1), x2)
    return lax.rem(x1, x2)


def divmod(x1: Any, x2: Any, /) -> tuple[Any, Any]:  # noqa: A001
    """``(floor_divide(x1, x2), remainder(x1, x2))``."""
    x1, x2 = promote_args_numeric("divmod", x1, x2)
    if dtypes.is_integer(aval(x1).dtype):
        return floor_divide(x1, x2), remainder(x1, x2)
    return _float_divmod(x1, x2)


def _concrete_int(x: Any) -> int | None:
    """``x`` as a Python int if it is a concrete integer scalar, else None."""
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        if value is None:
            return None
        x = value
    try:
        return operator.index(x)
    except TypeError:
        return None


def _pow_int_int(x1: Any, x2: Any) -> Any:
    """Integer power by repeated squaring over the 6 bits an int64 exponent can use."""
    zero, one = scalar_like(0, x2), scalar_like(1, x2)
    acc = _where(lax.bitwise_and(lax.eq(x1, zero), lax.ne(x2, zero)), zero, one)
    for _ in range(6):
        acc = lax.select(lax.ne(lax.bitwise_and(x2, one), zero), lax.mul(acc, x1), acc)
        x1 = lax.mul(x1, x1)
        x2 = lax.shift_right_logical(x2, one)
    return acc


def power(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 ** x2``; a static integer exponent lowers to ``integer_pow``."""
    ensure_arraylike("power", x1, x2)
    n = _concrete_int(x2) if not isinstance(x2, bool) else None
    if n is not None and np.ndim(n) == 0:
        x1, = promote_dtypes_numeric(x1)
        return lax.integer_pow(x1, n)
    promoted = promote_args_numeric("power", x1, x2)
    dt = aval(promoted[0]).dtype
    if dt in dtypes.intn:  # JAX fails on them (NumPy has no iinfo of int4)
        raise intn_error("power", dt)
    if dt.kind in "iub":
        return _pow_int_int(*promoted)
    base, exponent = ensure_arraylike("power", x1, x2)
    if aval(base).dtype.kind in "fc" and aval(exponent).dtype.kind in "iu":
        return lax.pow(base, exponent)  # unpromoted, as JAX: differentiable at a zero base
    return lax.pow(*promoted)


def pow(x1: Any, x2: Any, /) -> Any:  # noqa: A001
    """Alias of ``power``."""
    return power(x1, x2)


def float_power(x: Any, y: Any, /) -> Any:
    """``x ** y`` computed in floating point (arguments named as in ``jax.numpy``)."""
    return lax.pow(*promote_args_inexact("float_power", x, y))


def negative(x: Any, /, *, out: None = None, where: None = None) -> Any:
    """Elementwise ``-x``; ``out`` and ``where`` must be None."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("negative", out)
    return lax.neg(*promote_args("negative", x))


def positive(x: Any, /) -> Any:
    """Elementwise ``+x`` (a no-op returning an array)."""
    return promote_args("positive", x)[0]


def absolute(x: Any, /) -> Any:
    """Elementwise ``|x|`` (booleans and unsigned integers are returned unchanged)."""
    x = ensure_arraylike("absolute", x)
    dt = aval(x).dtype
    kind = dt.kind if dt.kind != "V" else dtypes.kind(dt)  # uint4 is "V" to NumPy
    return x if kind in "bu" else lax.abs(x)


def abs(x: Any, /) -> Any:  # noqa: A001
    """Alias of ``absolute``."""
    return absolute(x)


def fabs(x: Any, /) -> Any:
    """Elementwise ``|x|`` as a floating-point value."""
    x = ensure_arraylike("fabs", x)
    if aval(x).dtype.kind == "c":
        raise TypeError("ufunc 'fabs' does not support complex dtypes")
    return lax.abs(*promote_args_inexact("fabs", x))


def sign(x: Any, /) -> Any:
    """Elementwise sign: -1, 0 or 1."""
    return lax.sign(*promote_args("sign", x))


def square(x: Any, /) -> Any:
    """Elementwise ``x * x``."""
    x, = promote_dtypes_numeric(ensure_arraylike("square", x))
    return lax.square(x)


def reciprocal(x: Any, /) -> Any:
    """Elementwise ``1 / x`` (integers become floats)."""
    x, = promote_args_inexact("reciprocal", x)
    return lax.integer_pow(x, -1)


def maximum(x: Any, y: Any, /, *, out: None = None, where: None = None) -> Any:
    """Elementwise maximum (NaN propagates; complex values compare lexicographically);
    ``out`` and ``where`` must be None."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("maximum", out)
    return lax.max(*promote_args("maximum", x, y))


def minimum(x: Any, y: Any, /, *, out: None = None, where: None = None) -> Any:
    """Elementwise minimum (NaN propagates; complex values compare lexicographically);
    ``out`` and ``where`` must be None."""
    if out is not None or where is not None:
        raise ufunc_keyword_error("minimum", out)
    return lax.min(*promote_args("minimum", x, y))


def fmax(x1: Any, x2: Any, /) -> Any:
    """Elementwise maximum ignoring NaNs (complex values compare lexicographically)."""
    x1, x2 = promote_args("fmax", x1, x2)
    return _where(lax.bitwise_or(greater(x1, x2), lax.ne(x2, x2)), x1, x2)


def fmin(x1: Any, x2: Any, /) -> Any:
    """Elementwise minimum ignoring NaNs (complex values compare lexicographically)."""
    x1, x2 = promote_args("fmin", x1, x2)
    return _where(lax.bitwise_or(less(x1, x2), lax.ne(x2, x2)), x1, x2)


def clip(arr: Any = None, /, min: Any = None, max: Any = None, *,  # noqa: A002
         a: Any = None, a_min: Any = None, a_max: Any = None) -> Any:
    """Clamp ``arr`` to ``[min, max]`` (either bound may be None)."""
    arr = a if arr is None else arr
    min = a_min if min is None else min  # noqa: A001
    max = a_max if max is None else max  # noqa: A001
    arr = ensure_arraylike("clip", arr)
    if any(bound is not None and aval(bound).dtype.kind == "c" for bound in (arr, min, max)):
        raise ValueError("clip: complex values have no ordering; clip the real and imaginary "
                         "parts separately")
    if min is not None:
        arr = maximum(min, arr)
    if max is not None:
        arr = minimum(max, arr)
    return arr


# --------------------------------------------------------------------------- comparisons

def _comparison(name: str, lax_name: str) -> Callable:
    compare = getattr(lax, lax_name)

    def op(x: Any, y: Any, /) -> Any:
        x, y = promote_args(name, x, y)
        if aval(x).dtype.kind == "c" and lax_name not in ("eq", "ne"):  # as in JAX
            rx, ry = lax.real(x), lax.real(y)
            return lax.select(lax.eq(rx, ry), compare(lax.imag(x), lax.imag(y)), compare(rx, ry))
        return compare(x, y)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise ``{name}`` comparison with broadcasting (a bool array)."
    return op


equal = _comparison("equal", "eq")
not_equal = _comparison("not_equal", "ne")
less = _comparison("less", "lt")
less_equal = _comparison("less_equal", "le")
greater = _comparison("greater", "gt")
greater_equal = _comparison("greater_equal", "ge")


# --------------------------------------------------------------------------- logical / bitwise

def _logical(name: str, lax_name: str) -> Callable:
    def op(x: Any, y: Any, /, *, out: None = None, where: None = None) -> Any:
        if out is not None or where is not None:
            raise ufunc_keyword_error(name, out)
        return getattr(lax, lax_name)(*map(truthy, promote_args(name, x, y)))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"Elementwise ``{name}`` of the truth values of its arguments; ``out`` and "
                  "``where`` must be None.")
    return op


logical_and = _logical("logical_and", "bitwise_and")
logical_or = _logical("logical_or", "bitwise_or")
logical_xor = _logical("logical_xor", "bitwise_xor")


def logical_not(x: Any, /) -> Any:
    """Elementwise ``not x``."""
    return lax.bitwise_not(truthy(*promote_args("logical_not", x)))


def _bitwise(name: str, lax_name: str) -> Callable:
    def op(x: Any, y: Any, /, *, out: None = None, where: None = None) -> Any:
        if out is not None or where is not None:
            raise ufunc_keyword_error(name, out)
        return getattr(lax, lax_name)(*promote_args(name, x, y))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"Elementwise ``{name}`` of integer or boolean arrays; ``out`` and "
                  "``where`` must be None.")
    return op


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")


def invert(x: Any, /) -> Any:
    """Elementwise bitwise NOT (``~x``; logical not for booleans)."""
    return lax.bitwise_not(*promote_args("invert", x))


bitwise_not = bitwise_invert = invert


def left_shift(x: Any, y: Any, /) -> Any:
    """Elementwise ``x << y`` (arguments named as in ``jax.numpy``)."""
    return lax.shift_left(*promote_args_numeric("left_shift", x, y))


def right_shift(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 >> x2`` (arithmetic for signed, logical for unsigned integers)."""
    x1, x2 = promote_args_numeric("right_shift", x1, x2)
    if dtypes.kind(aval(x1).dtype) == "u":
        return lax.shift_right_logical(x1, x2)
    return lax.shift_right_arithmetic(x1, x2)


bitwise_left_shift, bitwise_right_shift = left_shift, right_shift


def bitwise_count(x: Any, /) -> Any:
    """Number of set bits of ``|x|`` (uint8)."""
    x, = promote_args_numeric("bitwise_count", x)
    return lax.convert_element_type(lax.population_count(absolute(x)), np.uint8)


__all__ = ["add", "subtract", "multiply", "true_divide", "divide", "floor_divide", "remainder",
           "mod", "fmod", "divmod", "power", "pow", "float_power", "negative", "positive",
           "absolute", "abs", "fabs", "sign", "square", "reciprocal", "maximum", "minimum",
           "fmax", "fmin", "clip", "equal", "not_equal", "less", "less_equal", "greater",
           "greater_equal", "logical_and", "logical_or", "logical_xor", "logical_not",
           "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "bitwise_not",
           "bitwise_invert", "left_shift", "right_shift", "bitwise_left_shift",
           "bitwise_right_shift", "bitwise_count"]
