"""fungrad.numpy elementwise functions against jax.numpy: values, shapes, dtypes and weak
types over dtype combinations (incl. Python scalars and mixed int/float/bf16), broadcasting
(a hypothesis fuzz), JVP/VJP/vmap on the differentiable ones, and error messages."""
import functools

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fungrad
import fungrad.numpy as jnp
from fungrad.test_util import check_grads
import harness
from harness import compare_all, compare_np, compare_types, rand

# jax's derivatives and batched results, in one quickly compiled program per case
compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)
# jax's values, in one quickly compiled program per case (or per test: compare_all)
compare = harness.compare_quick


RNG = np.random.default_rng(0)
F32, BF16, F16, I32, I8, U8, U32, B = (np.float32, ml_dtypes.bfloat16, np.float16, np.int32,
                                       np.int8, np.uint8, np.uint32, np.bool_)

# name -> (low, high, dtypes): inputs are drawn uniformly from [low, high]
UNARY = {
    "negative": (-2, 2, [F32, BF16, I32, I8]), "positive": (-2, 2, [F32, I32, B]),
    "abs": (-2, 2, [F32, BF16, I32, U8, B]), "absolute": (-2, 2, [F32, I8]),
    "fabs": (-2, 2, [F32, I32]), "sign": (-2, 2, [F32, I32]),
    "square": (-2, 2, [F32, BF16, I32, B]), "reciprocal": (0.5, 2, [F32, I32]),
    "exp": (-2, 2, [F32, BF16, F16, I32, B]), "exp2": (-2, 2, [F32, I32]),
    "expm1": (-2, 2, [F32, BF16]), "log": (0.1, 3, [F32, BF16, I32]),
    "log1p": (-0.5, 3, [F32]), "log2": (0.1, 3, [F32, I32]), "log10": (0.1, 3, [F32, BF16]),
    "sqrt": (0.1, 3, [F32, BF16, I32, U8]), "cbrt": (-3, 3, [F32]),
    "sin": (-3, 3, [F32, BF16, I32]), "cos": (-3, 3, [F32]), "tan": (-1.2, 1.2, [F32]),
    "arcsin": (-0.9, 0.9, [F32]), "arccos": (-0.9, 0.9, [F32]), "arctan": (-3, 3, [F32]),
    "sinh": (-2, 2, [F32]), "cosh": (-2, 2, [F32]), "tanh": (-2, 2, [F32, BF16]),
    "arcsinh": (-2, 2, [F32]), "arccosh": (1.1, 3, [F32]), "arctanh": (-0.9, 0.9, [F32]),
    "asin": (-0.9, 0.9, [F32]), "acos": (-0.9, 0.9, [F32]), "atan": (-2, 2, [F32]),
    "asinh": (-2, 2, [F32]), "acosh": (1.1, 3, [F32]), "atanh": (-0.5, 0.5, [F32]),
    "floor": (-3, 3, [F32, BF16, I32]), "ceil": (-3, 3, [F32, I32]), "trunc": (-3, 3, [F32, I32]),
    "rint": (-3, 3, [F32, I32]), "round": (-3, 3, [F32, BF16, I32]),
    "around": (-3, 3, [F32]), "isfinite": (-2, 2, [F32, I32]), "isnan": (-2, 2, [F32, I32]),
    "isinf": (-2, 2, [F32, I32]), "isposinf": (-2, 2, [F32]), "isneginf": (-2, 2, [F32]),
    "signbit": (-2, 2, [F32, BF16, I32, B]), "sinc": (-2, 2, [F32]),
    "deg2rad": (-90, 90, [F32, I32]), "rad2deg": (-2, 2, [F32]), "radians": (-90, 90, [F32]),
    "degrees": (-2, 2, [F32]), "logical_not": (-2, 2, [F32, I32, B]),
    "invert": (-8, 8, [I32, U8, B]), "bitwise_not": (-8, 8, [I8]),
    "conj": (-2, 2, [F32, I32]), "conjugate": (-2, 2, [F32]), "real": (-2, 2, [F32, I32]),
    "imag": (-2, 2, [F32]), "angle": (-2, 2, [F32, I32]), "nan_to_num": (-2, 2, [F32, I32]),
    "bitwise_count": (-8, 8, [I32, U8]), "i0": (-3, 3, [F32, I32]),
    "spacing": (-3, 3, [F32, F16, I32]),
}

BINARY = {
    "add": (-2, 2, None), "subtract": (-2, 2, None), "multiply": (-2, 2, None),
    "true_divide": (0.5, 2, None), "divide": (0.5, 2, None), "power": (0.5, 2, None),
    "pow": (0.5, 1.5, None), "float_power": (0.5, 2, None), "maximum": (-2, 2, None),
    "minimum": (-2, 2, None), "fmax": (-2, 2, None), "fmin": (-2, 2, None),
    "floor_divide": (0.5, 3, None), "remainder": (0.5, 3, None), "mod": (0.5, 3, None),
    "fmod": (0.5, 3, None), "arctan2": (-2, 2, None), "atan2": (-2, 2, None),
    "hypot": (-2, 2, None), "logaddexp": (-2, 2, None), "logaddexp2": (-2, 2, None),
    "copysign": (-2, 2, None), "heaviside": (-2, 2, None), "equal": (-2, 2, None),
    "not_equal": (-2, 2, None), "less": (-2, 2, None), "less_equal": (-2, 2, None),
    "greater": (-2, 2, None), "greater_equal": (-2, 2, None), "logical_and": (-2, 2, None),
    "logical_or": (-2, 2, None), "logical_xor": (-2, 2, None), "nextafter": (-2, 2, [(F32, F32)]),
}
INT_ONLY_BINARY = ["bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"]
DTYPE_PAIRS = [(F32, F32), (I32, F32), (BF16, F32), (BF16, BF16), (I8, I32), (U8, I32),
               (I32, I32), (B, I32), (F16, BF16)]
INT_OK = {"add", "subtract", "multiply", "maximum", "minimum", "floor_divide", "remainder", "mod",
          "fmod", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
          "logical_and", "logical_or", "logical_xor", "power", "true_divide", "divide", "fmax",
          "fmin", "copysign", "heaviside", "hypot", "arctan2", "logaddexp"}


def _fn(lib, name):
    return getattr(lib, name)


# NumPy's integer reciprocal truncates and it has no boolean ``positive``
NUMPY_DIFFERS = {("reciprocal", I32), ("positive", B)}


def _np_fn(name):
    """NumPy's function of the same name, computed in float64 when integers or booleans
    meet a function with a floating-point result (NumPy would pick other float widths).
    NumPy's warnings about the infs and nans it computes (log(0)) are off: JAX gives them
    silently, and so must fungrad."""
    fn = getattr(np, name)

    @np.errstate(all="ignore")
    def ref(*args):
        out = fn(*args)
        if np.asarray(out).dtype.kind == "f" and any(np.asarray(a).dtype.kind in "iub"
                                                     for a in args):
            out = fn(*[np.asarray(a, np.float64) if np.asarray(a).dtype.kind in "iub" else a
                       for a in args])
        return out
    return ref


@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name):
    """Values against jax on the first dtype and against NumPy on the others; types (dtype,
    weak type) against jax for every dtype, 0-d and empty inputs and Python scalars."""
    lo, hi, dts = UNARY[name]
    f, ref = _fn(jnp, name), _fn(jnp_ref, name)
    for k, dt in enumerate(dts):
        x = rand(RNG, (3, 4), dt, lo, hi)
        if k == 0:
            compare(f, ref, x)
        elif (name, dt) in NUMPY_DIFFERS:
            compare_types(f, ref, x)
        else:
            compare_np(f, _np_fn(name), ref, x)
    compare_types(f, ref, rand(RNG, (), dts[0], lo, hi))
    compare_types(f, ref, rand(RNG, (0, 3), dts[0], lo, hi))
    if dts[0] != B and name not in ("invert", "bitwise_not", "bitwise_count"):
        scalar = float(lo + 0.3 * (hi - lo))
        compare_types(lambda: f(scalar), lambda: ref(scalar))
        compare_types(lambda: f(int(scalar)), lambda: ref(int(scalar)))


def _binary_inputs(name, dx, dy, lo, hi):
    x = rand(RNG, (3, 1, 4), dx, lo, hi)
    y = rand(RNG, (2, 4), dy, lo, hi)
    if name in ("floor_divide", "remainder", "mod", "fmod") and np.dtype(dy).kind in "iub":
        y = np.where(y == 0, 1, y).astype(dy)
    if name in ("power", "pow") and np.dtype(dy).kind in "iu":
        y = np.abs(y).astype(dy)
    return x, y


@pytest.mark.parametrize("name", list(BINARY))
def test_binary(name):
    """Values on float32 and int32/float32 (broadcasting (3,1,4) with (2,4)); types over
    the dtype-pair matrix and with Python scalars on either side."""
    lo, hi, pairs = BINARY[name]
    f, ref = _fn(jnp, name), _fn(jnp_ref, name)
    for k, (dx, dy) in enumerate(pairs or DTYPE_PAIRS):
        kinds = {np.dtype(dx).kind, np.dtype(dy).kind}
        if kinds & set("iub") and name not in INT_OK and not kinds & {"f", "V"}:
            continue
        if name in ("power", "pow", "float_power") and np.dtype(dx).kind == "b":
            continue
        x, y = _binary_inputs(name, dx, dy, lo, hi)
        if k == 0:
            compare(f, ref, x, y)
        else:
            compare_np(f, _np_fn(name), ref, x, y)
    x = rand(RNG, (5,), F32, lo, hi)
    xi = np.abs(rand(RNG, (5,), I32, lo, hi)) + 1
    np_f = _np_fn(name)
    for other in (2, 1.5):
        compare_np(lambda a: f(a, other), lambda a: np_f(a, np.float32(other)),
                   lambda a: ref(a, other), x)
        compare_np(lambda a: f(other, a), lambda a: np_f(np.float32(other), a),
                   lambda a: ref(other, a), x)
        if name != "nextafter":
            compare_np(lambda a: f(a, other), lambda a: np_f(a, other), lambda a: ref(a, other),
                       xi)
            compare_types(lambda a: f(a, other), lambda a: ref(a, other), x.astype(BF16))
    compare_types(lambda: f(1.5, 2), lambda: ref(1.5, 2))
    compare_types(lambda: f(3, 2), lambda: ref(3, 2))


@pytest.mark.parametrize("name", INT_ONLY_BINARY)
def test_int_binary_values(name):
    for dx, dy in [(I32, I32), (U8, I32), (I8, I8), (U32, U32), (B, B)]:
        if name.endswith("shift") and dx == B:
            continue
        x = rand(RNG, (3, 4), dx, 0, 3)
        y = rand(RNG, (4,), dy, 0, 1)
        compare_np(_fn(jnp, name), _fn(np, name), _fn(jnp_ref, name), x, y)
    compare(lambda a: _fn(jnp, name)(a, 2), lambda a: _fn(jnp_ref, name)(a, 2),
            rand(RNG, (4,), I32, -2, 2))


def test_special_values():
    """NaN and infinity handling of the functions that special-case them."""
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 0.5], np.float32)
    cases = [(_fn(jnp, name), _fn(jnp_ref, name), x)
             for name in ["isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit",
                          "nan_to_num", "sign", "round", "rint", "floor", "trunc", "sinc"]]
    y = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, 0.0, 3.0, -1.0], np.float32)
    cases += [(_fn(jnp, name), _fn(jnp_ref, name), x, y)
              for name in ["fmax", "fmin", "maximum", "minimum", "logaddexp", "hypot",
                           "heaviside", "copysign", "remainder", "floor_divide"]]
    cases += [
        (lambda a: jnp.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-3.0),
         lambda a: jnp_ref.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-3.0), x),
        (lambda a: jnp.round(a, 2), lambda a: jnp_ref.round(a, 2), rand(RNG, (6,), F32, -5, 5)),
        (lambda a, b: jnp.divmod(a, b), lambda a, b: jnp_ref.divmod(a, b),
         np.array([7, -7, 7, -7], I32), np.array([2, 2, -2, -2], I32)),
        (lambda a, b: jnp.divmod(a, b), lambda a, b: jnp_ref.divmod(a, b),
         np.array([7.5, -7.5, 7.5, -7.5], F32), np.array([2, 2, -2, -2], F32)),
        (jnp.modf, jnp_ref.modf, np.array([1.5, -1.5, 0.0], F32))]
    compare_all(cases)


def test_frexp_ldexp_spacing():
    """Exact on every float: normal, subnormal (against NumPy, as XLA's CPU backend flushes
    subnormals to zero), zero, infinite and NaN; ldexp's exponent may overflow on the way."""
    normal = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, -0.75, 1.0, 3.0, -5.5, 3e38,
                       65504.0], F32)
    subnormal = np.array([1e-40, -3e-45, 1.17e-38], F32)
    exps = np.array([0, 1, -1, 128, 200, -200, 3, 127, -126, 2**31 - 1, -2**31], I32)
    xs = np.array([0.75, 3e38, 0.75, 0.75, 1.0, 3e38, -0.0, 1.5, 1.5, 1.0, 1.0], F32)
    compare_all([
        (jnp.frexp, jnp_ref.frexp, normal),
        (jnp.spacing, jnp_ref.spacing, np.concatenate([normal, subnormal])),
        (jnp.frexp, jnp_ref.frexp, np.array([0.0, 1.0, -1.0, 65504.0, 3e-3], F16)),
        (jnp.spacing, jnp_ref.spacing, np.array([0.0, 1.0, -1.0, 65504.0], F16)),
        (jnp.ldexp, jnp_ref.ldexp, xs, exps),
        (jnp.ldexp, jnp_ref.ldexp, xs[:4], np.array([1, 2, -3, 5], np.int8))])
    mantissa, exponent = (np.asarray(v) for v in jnp.frexp(subnormal))
    np.testing.assert_array_equal(mantissa, np.frexp(subnormal)[0])
    np.testing.assert_array_equal(exponent, np.frexp(subnormal)[1])
    np.testing.assert_array_equal(np.asarray(jnp.ldexp(np.float32(1.0), -149)),
                                  np.ldexp(np.float32(1.0), -149))  # the smallest subnormal
    for v in (3, 3.0, True):
        compare_types(lambda: jnp.frexp(v), lambda: jnp_ref.frexp(v))
        compare_types(lambda: jnp.ldexp(v, 2), lambda: jnp_ref.ldexp(v, 2))
    compare_transforms(lambda a: jnp.frexp(a)[0], lambda a: jnp_ref.frexp(a)[0],
                       [rand(RNG, (3, 4), F32, 0.5, 3)], RNG)
    compare_transforms(lambda a: jnp.ldexp(a, 3), lambda a: jnp_ref.ldexp(a, 3),
                       [rand(RNG, (3, 4), F32, -3, 3)], RNG)
    with pytest.raises(ValueError, match="ldexp"):
        jnp.ldexp(1.0, 2.0)
    with pytest.raises(TypeError, match="frexp"):
        jnp.frexp(np.complex64(1))
    with pytest.raises(TypeError, match="i0"):
        jnp.i0(np.complex64(1))


def test_clip_and_integer_power():
    x = rand(RNG, (4, 5), F32)
    cases = [
        (lambda a: jnp.clip(a, -0.5, 0.5), lambda a: jnp_ref.clip(a, -0.5, 0.5), x),
        (lambda a: jnp.clip(a, max=0.1), lambda a: jnp_ref.clip(a, max=0.1), x),
        (lambda a, lo: jnp.clip(a, lo), lambda a, lo: jnp_ref.clip(a, lo), x,
         rand(RNG, (5,), F32)),
        (lambda a: jnp.clip(a, 0, 2), lambda a: jnp_ref.clip(a, 0, 2), rand(RNG, (6,), I32))]
    for n in (0, 1, 2, 3, -1, -2):
        cases.append((lambda a, n=n: jnp.power(a, n), lambda a, n=n: jnp_ref.power(a, n),
                      rand(RNG, (5,), F32, 0.5, 2)))
    cases += [(lambda a: a ** 3, lambda a: a ** 3, rand(RNG, (5,), I32, -3, 3)),
              (lambda a, b: a ** b, lambda a, b: a ** b, rand(RNG, (5,), I32, 0, 3),
               rand(RNG, (5,), I32, 0, 3))]
    compare_all(cases)


# ----------------------------------------------------------------------------- transforms

DIFFERENTIABLE_UNARY = ["abs", "square", "reciprocal", "expm1", "log10", "sqrt", "cbrt",
                        "arccos", "arcsinh", "arctanh", "sinc", "round", "i0"]
DIFFERENTIABLE_BINARY = ["true_divide", "power", "maximum", "arctan2", "hypot", "logaddexp",
                         "remainder"]
# the remaining differentiable functions: derivatives against finite differences
FD_UNARY = ["negative", "exp", "exp2", "log", "log1p", "log2", "sin", "cos", "tan", "arcsin",
            "arctan", "sinh", "cosh", "tanh", "arccosh", "deg2rad", "rad2deg", "floor", "trunc"]
FD_BINARY = ["add", "subtract", "multiply", "minimum", "logaddexp2", "fmax", "float_power",
             "copysign"]


@pytest.mark.parametrize("name", DIFFERENTIABLE_UNARY)
def test_unary_transforms(name):
    lo, hi, _ = UNARY[name]
    x = rand(RNG, (3, 4), F32, lo, hi)
    compare_transforms(_fn(jnp, name), _fn(jnp_ref, name), [x], RNG, vmap_axes=(1,))


@pytest.mark.parametrize("name", DIFFERENTIABLE_BINARY)
def test_binary_transforms(name):
    lo, hi, _ = BINARY[name]
    x = rand(RNG, (3, 4), F32, lo, hi)
    y = rand(RNG, (4,), F32, lo, hi)
    compare_transforms(_fn(jnp, name), _fn(jnp_ref, name), [x, y], RNG, vmap_axes=(0, -1))


def test_finite_difference_gradients():
    for name in FD_UNARY:
        lo, hi, _ = UNARY[name]
        x = rand(RNG, (5,), np.float64, lo + 0.05, hi - 0.05)
        if name in ("floor", "trunc"):
            x = np.floor(x) + 0.5  # away from the jumps
        check_grads(_fn(jnp, name), (x,), order=2)
    for name in FD_BINARY:
        lo, hi, _ = BINARY[name]
        x, y = rand(RNG, (5,), np.float64, lo, hi), rand(RNG, (5,), np.float64, lo, hi)
        y = np.where(np.abs(x - y) < 0.1, y + 0.3, y)  # away from max/min ties
        check_grads(_fn(jnp, name), (x, y), order=1)


def test_operators_match_functions():
    x = rand(RNG, (3, 4), F32, 0.5, 2)
    y = rand(RNG, (4,), F32, 0.5, 2)
    i = rand(RNG, (3, 4), I32, 1, 3)
    ops = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
           lambda a, b: a // b, lambda a, b: a % b, lambda a, b: a ** b, lambda a, b: a < b,
           lambda a, b: a <= b, lambda a, b: a > b, lambda a, b: a >= b, lambda a, b: a == b,
           lambda a, b: a != b, lambda a, b: 2 - a * 3.0 / b, lambda a, b: -a + abs(b),
           lambda a, b: divmod(a, b), lambda a, b: +a]
    int_ops = [lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b, lambda a, b: ~a,
               lambda a, b: a << 1, lambda a, b: a >> b, lambda a, b: 7 & a]
    compare_all([(op, op, x, y) for op in ops] + [(op, op, i, y) for op in ops]
                + [(op, op, i, np.abs(i)) for op in int_ops])


# ----------------------------------------------------------------------------- broadcasting fuzz

shape_strategy = st.lists(st.integers(1, 3), min_size=0, max_size=3)


FUZZED_BINARY = ("add", "arctan2", "less", "logaddexp", "maximum", "multiply", "subtract")


@settings(max_examples=25, deadline=None)
@given(shape_strategy, st.data(), st.sampled_from(FUZZED_BINARY))
def test_binary_broadcasting_fuzz(shape, data, name):
    """Random broadcast-compatible shape pairs (dims replaced by 1 or dropped): values
    (the harness tolerance table), shapes, dtypes and weak types against jax eager."""
    other = [data.draw(st.sampled_from([d, 1])) for d in shape]
    other = other[data.draw(st.integers(0, len(other))):]
    x, y = rand(RNG, tuple(shape), F32), rand(RNG, tuple(other), F32)
    for a, b in ((x, y), (y, x)):
        # jax takes the NumPy inputs as they are: converting each first compiles a program
        harness.compare(_fn(jnp, name), _fn(jnp_ref, name), a, b,
                        ref_out=_fn(jnp_ref, name)(a, b))


# ----------------------------------------------------------------------------- errors

def test_broadcast_error_names_function_and_shapes():
    for name in ("add", "multiply", "subtract", "maximum", "equal", "arctan2"):
        with pytest.raises(TypeError, match=rf"{name}.*\(3,\).*\(4,\)"):
            getattr(jnp, name)(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(TypeError, match=r"add.*\(2, 3\).*\(4,\)"):
        jnp.zeros((2, 3)) + jnp.zeros(4)


def test_non_array_arguments_rejected():
    with pytest.raises(TypeError, match="add requires ndarray or scalar arguments"):
        jnp.add([1, 2], 1)
    with pytest.raises(TypeError, match="sin"):
        jnp.sin("a")


def test_jit_like_staging_of_ufuncs():
    """Ufuncs trace to a jaxpr with the expected primitives (no NumPy on tracers)."""
    jaxpr = fungrad.make_jaxpr(lambda a, b: jnp.logaddexp(jnp.sin(a) * 2, b))(
        np.ones(3, np.float32), np.ones(3, np.float32))
    text = str(jaxpr)
    assert "sin" in text and "log1p" in text and "max" in text


# Weak types where jax's own code decides them: a constant made like a weakly typed array
# stays weak (``lax.full_like``, ``x - 1``), a float base with an integer exponent is not
# promoted, a ``lax._const`` like an array is strong, and predicates of scalars are weak.
_BOOLS, _INT8S = np.array([True, False, True]), np.array([1, 2, 3], I8)
WEAK_TYPE_CASES = {
    "floor_divide(bools, 2)": lambda m: m.floor_divide(_BOOLS, 2),
    "remainder(2, bools)": lambda m: m.remainder(2, _BOOLS),
    "fmod(2, bools)": lambda m: m.fmod(2, _BOOLS),
    "divmod(bools, 2)": lambda m: m.divmod(_BOOLS, 2),
    "power(1.5, int8s)": lambda m: m.power(1.5, _INT8S),
    "power(float16s, int8s)": lambda m: m.power(_INT8S.astype(F16), _INT8S),
    "power(1.5, bools)": lambda m: m.power(1.5, _BOOLS),
    "logaddexp2(2, bools)": lambda m: m.logaddexp2(2, _BOOLS),
    "less(2, 1+2j)": lambda m: m.less(2, 1 + 2j),
    "greater(bools, 1j)": lambda m: m.greater(_BOOLS, 1j),
    "iscomplex(2)": lambda m: m.iscomplex(2),
    "iscomplex(2j)": lambda m: m.iscomplex(2j),
    "isreal(2.0)": lambda m: m.isreal(2.0),
    "isreal(int8s)": lambda m: m.isreal(_INT8S),
    "var(float32s, dtype=int32)": lambda m: m.var(_INT8S.astype(F32) * 1.5, dtype=I32),
}


@pytest.mark.parametrize("case", sorted(WEAK_TYPE_CASES))
def test_weak_types_follow_jax_code(case):
    ref = WEAK_TYPE_CASES[case](jnp_ref)
    for got in (WEAK_TYPE_CASES[case](jnp),
                fungrad.jit(lambda: WEAK_TYPE_CASES[case](jnp))()):
        harness.assert_same(got, ref, rtol=1e-6, atol=0)


def test_full_like_keeps_a_weak_type_without_a_dtype():
    for dtype in (None, I8):
        ref = jax.lax.full_like(jnp_ref.add(_BOOLS, 2), 7, dtype)
        harness.assert_same(fungrad.lax.full_like(jnp.add(_BOOLS, 2), 7, dtype), ref)
