"""ml_dtypes' sub-byte integers (int4, uint4, int2, uint2; int1 and uint1 as dtypes only)
against jax: the names, ``iinfo``, ``issubdtype``, ``isdtype`` and printing; promotion
(with Python ints and bools only) over every pair of dtypes and Python scalars; conversions
both ways on edge values, bit for bit; elementwise, bitwise and comparison ops, reductions,
contractions, indexing and shape ops, eagerly, under ``jit`` and under ``vmap``;
``grad(allow_int=True)``; the refusals where jax fails, whose errors name the operation and
the dtype; and the few places where fungrad deliberately differs (docs/numpy_surface.md)."""
from __future__ import annotations

import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest
from harness import QUICK_COMPILE, assert_same, to_fg, x64

import fungrad
import fungrad.numpy as jnp
from fungrad import errors, lax

ARRAY_NAMES = ["int2", "uint2", "int4", "uint4"]
NAMES = ["int1", "uint1", *ARRAY_NAMES]
INTN = {name: np.dtype(getattr(ml_dtypes, name)) for name in NAMES}

# One operand per dtype: every value of the type, in an order that pairs unlike values.
X = {name: np.roll(np.arange(ml_dtypes.iinfo(INTN[name]).min, ml_dtypes.iinfo(INTN[name]).max
                             + 1), 1).astype(INTN[name]) for name in ARRAY_NAMES}
Y = {name: x[::-1].copy() for name, x in X.items()}
# Divisors and shift amounts for int4/uint4 (zeros and the overflowing -1 included)
I4, U4 = INTN["int4"], INTN["uint4"]
A4 = np.array([1, -2, 7, -8, -1, 0, 5, -8], I4)
B4 = np.array([1, 3, -2, -1, 0, 0, 4, 7], I4)
UA4 = np.array([1, 2, 15, 8, 0, 3, 9, 14], U4)
UB4 = np.array([1, 3, 2, 1, 0, 0, 15, 4], U4)


def _theirs(fn, batched: bool = False):
    """``fn`` on jax's modules, vmapped over the leading axis when ``batched``."""
    def theirs(*a):
        return fn(jnp_ref, jax.lax, *a)
    return jax.vmap(theirs) if batched else theirs


def _jax_results(cases, batched: bool = False) -> list:
    """jax's result of each ``(fn, *arrays)`` of ``cases`` (see ``_same``), or the
    ``TypeError`` or ``ValueError`` it raises.

    The results come from one jitted program, quickly compiled: eagerly, jax compiles every
    primitive anew for each shape and dtype, which was most of these tests' time. The arrays
    are the program's arguments, so XLA folds nothing into constants, and the values, dtypes
    and weak types of these cases are bit for bit those of the eager calls. The errors are
    those of tracing, which is where jax raises them eagerly too."""
    results, traced = [None] * len(cases), []
    for i, (fn, *args) in enumerate(cases):
        try:
            jax.eval_shape(_theirs(fn, batched), *args)
        except (TypeError, ValueError) as error:
            results[i] = error
        else:
            traced.append(i)
    fns = [_theirs(cases[i][0], batched) for i in traced]
    program = jax.jit(lambda all_args: [f(*a) for f, a in zip(fns, all_args)],
                      compiler_options=QUICK_COMPILE)
    for i, out in zip(traced, program([list(cases[i][1:]) for i in traced])):
        results[i] = out
    return results


def _same(fn, *args, ref, batched: bool = False):
    """``fn(jnp, lax, *args)`` as jax gives it (``ref``, from ``_jax_results``), with fungrad
    eagerly and under ``fungrad.jit`` (and ``vmap`` over the leading axis when ``batched``);
    where jax raises a ``TypeError`` (``TypePromotionError`` is a ``ValueError``), fungrad
    raises one of the same class."""
    def ours(*a):
        return fn(jnp, lax, *a)
    runs = [fungrad.vmap(ours)] if batched else [ours, fungrad.jit(ours)]
    if isinstance(ref, (TypeError, ValueError)):
        for run in runs:
            with pytest.raises(type(ref)):
                run(*to_fg(args))
        return
    for run in runs:
        assert_same(run(*to_fg(args)), ref)


def _all_same(cases, batched: bool = False):
    """``_same`` for each ``(fn, *arrays)`` of ``cases``, jax's results from one program."""
    for (fn, *args), ref in zip(cases, _jax_results(cases, batched)):
        _same(fn, *args, batched=batched, ref=ref)


# --------------------------------------------------------------------------- names and queries

@pytest.mark.parametrize("name", NAMES)
def test_names_and_queries_match_jax(name):
    ours, theirs = getattr(jnp, name), getattr(jnp_ref, name)
    assert name in jnp.__all__ and np.dtype(ours.dtype) == np.dtype(theirs.dtype) == INTN[name]
    assert jnp.dtype(name) == INTN[name]
    info, ref = jnp.iinfo(ours), jnp_ref.iinfo(theirs)
    assert (int(info.min), int(info.max), info.bits) == (int(ref.min), int(ref.max), ref.bits)
    for kind in (jnp.integer, jnp.signedinteger, jnp.unsignedinteger, jnp.floating,
                 jnp.number, jnp.generic, jnp.inexact, jnp.int8, jnp.uint8, ours):
        theirs_kind = getattr(jnp_ref, kind.__name__) if kind is not ours else theirs
        assert jnp.issubdtype(ours, kind) == jnp_ref.issubdtype(theirs, theirs_kind), kind
    for kind in ("bool", "signed integer", "unsigned integer", "integral", "real floating",
                 "numeric"):
        assert jnp.isdtype(INTN[name], kind) == jnp_ref.isdtype(INTN[name], kind), kind
    assert fungrad.dtypes.itemsize_bits(name) == jax.dtypes.itemsize_bits(name)
    if name in ARRAY_NAMES:
        assert fungrad.dtypes.canonicalize_dtype(name) == jax.dtypes.canonicalize_dtype(name)
    with pytest.raises(ValueError, match="not inexact"):
        jnp.finfo(ours)


def test_printing_and_python_values_match_jax():
    x, ref = jnp.asarray(A4), jnp_ref.asarray(A4)
    assert repr(x) == repr(ref) == "Array([1, -2, 7, -8, -1, 0, 5, -8], dtype=int4)"
    assert repr(jnp.arange(12, dtype=jnp.uint4).reshape(3, 4)) \
        == repr(jnp_ref.arange(12, dtype=jnp_ref.uint4).reshape(3, 4))
    assert str(x) == str(ref) and repr(jnp.int2(-1)) == repr(jnp_ref.int2(-1))
    assert x.tolist() == ref.tolist() and x[3].item() == ref[3].item() == -8
    assert (int(x[2]), float(x[3]), x.itemsize, x.nbytes) == (7, -8.0, ref.itemsize, ref.nbytes)
    assert np.asarray(x).dtype == I4 and jax.dtypes.scalar_type_of(ref) \
        is fungrad.dtypes.scalar_type_of(x) is int


def test_jnp_dtype_knows_the_names_before_ml_dtypes_is_loaded():
    """``import fungrad`` leaves ml_dtypes unloaded; ``jnp.dtype('int4')`` and an int4 array
    from a dtype name still work (a fresh interpreter: this one has loaded it)."""
    code = ("import sys, fungrad.numpy as jnp\n"
            "assert 'ml_dtypes' not in sys.modules\n"
            "assert jnp.dtype('int4').name == 'int4' and jnp.dtype is __import__('numpy').dtype\n"
            "x = jnp.zeros(3, 'uint2') + 7\n"
            "assert x.dtype.name == 'uint2' and x.tolist() == [3, 3, 3], x\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- promotion

OTHER_DTYPES = [np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                       np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
                                       np.float32, np.float64, np.complex64)] + [
    np.dtype(ml_dtypes.bfloat16), np.dtype(ml_dtypes.float8_e4m3fn)]
WEAK = [int, float, complex]
PAIRS = [(a, b) for a in INTN.values() for b in [*INTN.values(), *OTHER_DTYPES, *WEAK]]


def _outcome(fn, *args):
    """``fn(*args)``, or the class of the error it raised (fungrad's and jax's
    ``TypePromotionError`` alike)."""
    try:
        return fn(*args)
    except (errors.TypePromotionError, jax.dtypes.TypePromotionError):
        return "TypePromotionError"


@pytest.mark.parametrize("enable_x64", [False, True])
def test_promote_types_and_result_type_match_jax(enable_x64):
    with x64() if enable_x64 else warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # jax's: int64 is int32 without x64
        for a, b in PAIRS:
            for fn, ref in ((jnp.promote_types, jnp_ref.promote_types),
                            (jnp.result_type, jnp_ref.result_type)):
                if fn is jnp.result_type and {getattr(a, "name", ""), getattr(b, "name", "")} \
                        & {"int1", "uint1"}:
                    continue  # fungrad has no int1 arrays: see test_int1_has_no_arrays
                assert _outcome(fn, a, b) == _outcome(ref, a, b), (fn.__name__, a, b)
                assert _outcome(fn, b, a) == _outcome(ref, b, a), (fn.__name__, b, a)


def test_strict_promotion_matches_jax():
    """Under ``numpy_dtype_promotion('strict')`` only a Python int joins a sub-byte integer."""
    x, ref = jnp.asarray(A4), jnp_ref.asarray(A4)
    with fungrad.numpy_dtype_promotion("strict"), jax.numpy_dtype_promotion("strict"):
        for other in (1, 1.0, True, np.int8(1), np.zeros(8, I4)):
            assert _outcome(lambda: (x + other).dtype) == _outcome(lambda: (ref + other).dtype)


def test_promotion_error_names_the_dtypes_and_the_fix():
    with pytest.raises(errors.TypePromotionError, match=r"int4.*int8.*4-bit.*astype"):
        jnp.asarray(A4) + jnp.ones(8, jnp.int8)


@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_binary_op_dtypes_match_jax(name):
    """``x + y`` for an array of each sub-byte dtype with an array of every dtype and with
    Python scalars: the result's dtype and weak type, or the error class, eagerly and under
    ``jit``."""
    x = X[name]
    others = [np.zeros(len(x), dt) for dt in [*INTN.values(), *OTHER_DTYPES]
              if dt.name not in ("int1", "uint1")]
    for other in [*others, True, 3, -1, 1.5, 2j, np.int8(1), np.float32(1.0)]:
        for fn in (lambda a, b: a + b, lambda a, b: b * a):
            ref = _outcome(lambda: fn(jnp_ref.asarray(x), other))
            for got in (_outcome(lambda: fn(jnp.asarray(x), other)),
                        _outcome(lambda: fungrad.jit(fn)(jnp.asarray(x), other))):
                if isinstance(ref, str):
                    assert got == ref, (name, other)
                else:
                    assert_same(got, ref)


# --------------------------------------------------------------------------- conversions

CONVERT_TO = [np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.uint8,
                                     np.uint16, np.uint32, np.float16, np.float32,
                                     np.complex64)] + [
    np.dtype(getattr(ml_dtypes, n)) for n in ("bfloat16", "float8_e4m3fn", "float8_e5m2",
                                               "float4_e2m1fn")]


def _edges(dt: np.dtype) -> np.ndarray:
    """Values of ``dt`` around the sub-byte ranges: limits, wrap points, rounding cases."""
    if dt == np.bool_:
        return np.array([True, False])
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.array([v for v in (info.min, -17, -16, -9, -8, -3, -2, -1, 0, 1, 2, 3, 4, 7,
                                     8, 15, 16, 17, 100, info.max)
                         if info.min <= v <= info.max]).astype(dt)
    values = np.array([-np.inf, -100, -16.5, -9.5, -8.5, -8, -7.9, -2.5, -1.5, -0.5, -0.0,
                       0.0, 0.5, 1.5, 2.5, 3.5, 7.5, 7.9, 8, 15.5, 16, 100, np.inf, np.nan])
    if dt.kind == "c":
        return (values[1:-3] + 2j).astype(dt)
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(dt)


def _jax_astype(conversions) -> list:
    """jax's ``x.astype(dtype)`` for each ``(x, dtype)`` of ``conversions``, from one jitted
    program, quickly compiled (eagerly, jax compiles each conversion apart). The arrays are
    the program's arguments: XLA converts them as it does eagerly, none as a constant."""
    dtypes = [dtype for _, dtype in conversions]
    program = jax.jit(lambda xs: [x.astype(dtype) for x, dtype in zip(xs, dtypes)],
                      compiler_options=QUICK_COMPILE)
    return program([x for x, _ in conversions])


def _same_values(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    if got.dtype.kind == "c" or got.dtype in (np.float16, np.float32):
        np.testing.assert_array_equal(got, want)  # NaN where NaN
    else:
        assert got.tobytes() == want.tobytes(), (got, want)


@pytest.mark.filterwarnings("ignore:Casting from complex:DeprecationWarning")  # jax's
@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_conversions_match_jax_bit_for_bit(name):
    """Into a sub-byte integer floats truncate and saturate (NaN gives 0) and integers wrap;
    out of one the value is exact. Eagerly and under ``jit``."""
    dt = INTN[name]
    sources = [_edges(source) if source not in INTN.values() else X[source.name]
               for source in [*CONVERT_TO, *INTN.values()]
               if source.name not in ("int1", "uint1", "float4_e2m1fn")]
    conversions = [(x, dt) for x in sources] + [(X[name], target) for target in CONVERT_TO]
    for (x, target), want in zip(conversions, _jax_astype(conversions)):
        _same_values(jnp.asarray(x).astype(target), want)
        _same_values(fungrad.jit(lambda v: v.astype(target))(x), want)


def test_creation_matches_jax():
    for fn in (lambda n: n.zeros(3, n.int4), lambda n: n.ones((2, 2), n.uint2),
               lambda n: n.full(3, 9, n.int4), lambda n: n.full_like(n.asarray(A4), -9),
               lambda n: n.arange(20, dtype=n.uint4), lambda n: n.array([1, 9, -9, 100], n.int4),
               lambda n: n.array([1.7, -1.7, 7.9], n.int4), lambda n: n.int4(9),
               lambda n: n.uint4(3.7), lambda n: n.asarray(np.array([1, -2], ml_dtypes.int2)),
               lambda n: n.eye(3, dtype=n.int2), lambda n: n.linspace(0, 7, 8, dtype=n.int4),
               lambda n: n.zeros_like(n.asarray(UA4)), lambda n: n.int4(3) + 1):
        assert_same(fn(jnp), fn(jnp_ref))


# --------------------------------------------------------------------------- operations

def _elementwise(name):
    x, y = X[name], Y[name]
    return [
        (lambda n, l, a, b: a + b, x, y), (lambda n, l, a, b: a - b, x, y),
        (lambda n, l, a, b: a * b, x, y), (lambda n, l, a: -a, x), (lambda n, l, a: +a, x),
        (lambda n, l, a: a * 3 + 5, x), (lambda n, l, a: 7 - a, x),
        (lambda n, l, a: a + True, x), (lambda n, l, a: a ** 3, x),
        (lambda n, l, a: n.square(a), x), (lambda n, l, a: n.sign(a), x),
        (lambda n, l, a, b: n.maximum(a, b), x, y), (lambda n, l, a: n.minimum(a, 0), x),
        (lambda n, l, a: n.clip(a, 0, 1), x), (lambda n, l, a, b: a & b, x, y),
        (lambda n, l, a, b: a | b, x, y), (lambda n, l, a, b: a ^ b, x, y),
        (lambda n, l, a: ~a, x), (lambda n, l, a, b: a < b, x, y),
        (lambda n, l, a, b: a == b, x, y), (lambda n, l, a: a != 1, x),
        (lambda n, l, a, b: a >= b, x, y), (lambda n, l, a, b: n.where(a > b, a, b), x, y),
        (lambda n, l, a: n.where(a > 0, a, 1), x), (lambda n, l, a, b: a / b, x, y),
        (lambda n, l, a: n.sqrt(a * a), x), (lambda n, l, a: n.floor(a), x),
        (lambda n, l, a: n.round(a), x), (lambda n, l, a, b: n.logical_and(a, b), x, y),
        (lambda n, l, a, b: n.isclose(a, b), x, y), (lambda n, l, a: n.signbit(a), x),
        (lambda n, l, a, b: n.heaviside(a, b), x, y), (lambda n, l, a: n.exp(a), x),
        (lambda n, l, a, b: l.shift_left(a, b), x, y),
        (lambda n, l, a, b: l.shift_right_arithmetic(a, b), x, y),
        (lambda n, l, a, b: l.shift_right_logical(a, b), x, y),
        (lambda n, l, a, b: n.left_shift(a, b), x, y),
        (lambda n, l, a: l.clamp(n.asarray(0, a.dtype), a, n.asarray(1, a.dtype)), x),
    ]


@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_elementwise_ops_match_jax(name):
    """Every value of the type against every other: integers wrap around at their width,
    eagerly, under ``jit`` and under ``vmap``. As in JAX, int4 and uint4 compute floating
    functions in float32, while the 2-bit types have none (``/`` divides them as integers,
    ``sqrt`` refuses them)."""
    cases = _elementwise(name)
    _all_same(cases)
    _all_same([(fn, *[np.stack([a, a[::-1]]) for a in args]) for fn, *args in cases],
              batched=True)


def test_division_and_remainder_match_jax():
    """Integer division by 0 and ``MIN / -1`` as XLA defines them, and the floor division
    and modulo of ``jax.numpy``."""
    fns = (lambda n, l, p, q: l.div(p, q), lambda n, l, p, q: l.rem(p, q),
           lambda n, l, p, q: p // n.where(q == 0, 1, q).astype(q.dtype),
           lambda n, l, p, q: p % n.where(q == 0, 1, q).astype(q.dtype),
           lambda n, l, p, q: n.divmod(p, n.where(q == 0, 1, q).astype(q.dtype)))
    _all_same([(fn, a, b) for a, b in ((A4, B4), (UA4, UB4)) for fn in fns]
              + [(lambda n, l, p: (p // 3, p % -3), A4)])


# Reductions, contractions, indexing and shape ops on int4 (A4) and uint4 (UA4).
OPS = [
    lambda n, l, a: n.max(a), lambda n, l, a: n.min(a.reshape(2, 4), axis=1),
    lambda n, l, a: n.max(a, initial=3), lambda n, l, a: n.min(a, where=a > 0, initial=7),
    lambda n, l, a: n.argmax(a), lambda n, l, a: n.argmin(a), lambda n, l, a: n.ptp(a),
    lambda n, l, a: n.sum(a, dtype=n.int32), lambda n, l, a: n.sum(a, promote_integers=False),
    lambda n, l, a: n.mean(a), lambda n, l, a: n.var(a), lambda n, l, a: n.median(a),
    lambda n, l, a: n.cumsum(a), lambda n, l, a: n.cumprod(a), lambda n, l, a: n.any(a),
    lambda n, l, a: n.all(a), lambda n, l, a: n.count_nonzero(a), lambda n, l, a: n.sort(a),
    lambda n, l, a: n.argsort(a), lambda n, l, a: n.unique(a, size=8),
    lambda n, l, a: n.diff(a), lambda n, l, a: n.trapezoid(a),
    lambda n, l, a: n.dot(a, a[::-1]), lambda n, l, a: n.outer(a, a),
    lambda n, l, a: a.reshape(2, 4) @ a.reshape(4, 2), lambda n, l, a: n.einsum("i,i", a, a),
    lambda n, l, a: a[1:6:2], lambda n, l, a: a[n.array([0, 7, 2])], lambda n, l, a: a[3],
    lambda n, l, a: a[n.array([1, -1], n.int4)], lambda n, l, a: a.at[n.array([0, 7])].set(3),
    lambda n, l, a: a.at[n.array([0, 0])].add(7), lambda n, l, a: a.at[2].max(4),
    lambda n, l, a: l.dynamic_slice(a, (n.int32(2),), (3,)),
    lambda n, l, a: l.dynamic_update_slice(a, a[:2], (n.int32(5),)),
    lambda n, l, a: n.pad(a, 2), lambda n, l, a: n.flip(a), lambda n, l, a: n.tile(a, 2),
    lambda n, l, a: n.transpose(a.reshape(2, 4)), lambda n, l, a: n.concatenate([a, a]),
    lambda n, l, a: n.stack([a, a[::-1]]), lambda n, l, a: n.broadcast_to(a, (2, 8)),
    lambda n, l, a: n.expand_dims(a, 0).squeeze(), lambda n, l, a: n.roll(a, 3),
    lambda n, l, a: n.diag(a[:3]), lambda n, l, a: n.take(a, n.array([9, -9]), mode="clip"),
    lambda n, l, a: n.nonzero(a, size=8), lambda n, l, a: n.searchsorted(n.sort(a), a[0]),
    lambda n, l, a: n.partition(a, 2), lambda n, l, a: n.packbits(a),
    lambda n, l, a: l.bitcast_convert_type(a.reshape(4, 2), n.int8),
    lambda n, l, a: l.bitcast_convert_type(l.bitcast_convert_type(a.reshape(4, 2), n.uint8),
                                           a.dtype),
    lambda n, l, a: l.scan(lambda c, v: (c + v, c), a[0], a),
    lambda n, l, a: l.fori_loop(0, 3, lambda i, c: c * 2 + 1, a),
    lambda n, l, a: l.cond(True, lambda v: v + 1, lambda v: v - 1, a),
]


@pytest.mark.parametrize("operand", [A4, UA4], ids=["int4", "uint4"])
def test_reductions_indexing_and_shape_ops_match_jax(operand):
    _all_same([(fn, operand) for fn in OPS])


def test_vmap_of_reductions_and_contractions_matches_jax():
    xs = np.stack([A4, A4[::-1], B4])
    for fn in (lambda n, a: n.max(a), lambda n, a: n.argmin(a), lambda n, a: n.dot(a, a),
               lambda n, a: n.cumsum(a), lambda n, a: n.sort(a)[::-1]):
        assert_same(fungrad.vmap(lambda a: fn(jnp, a))(xs), jax.vmap(lambda a: fn(jnp_ref, a))(xs))


def test_grad_with_allow_int_gives_float0():
    def f(lib):
        return lambda a, w: (a.astype(lib.numpy.float32) * w).sum()
    ours = fungrad.grad(f(fungrad), argnums=(0, 1), allow_int=True)(A4, 2.0)
    theirs = jax.grad(f(jax), argnums=(0, 1), allow_int=True)(A4, 2.0)
    assert ours[0].dtype == theirs[0].dtype == jax.dtypes.float0 and ours[0].shape == (8,)
    assert float(ours[1]) == float(theirs[1])
    with pytest.raises(TypeError, match="int4"):
        fungrad.grad(f(fungrad))(A4, 2.0)


def test_computations_are_staged_in_the_byte_wide_type():
    """Operations convert to int8/uint8 and back in the jaxpr, as XLA's CPU backend computes:
    ``jit``, ``vmap`` and the compiler see ordinary integer arithmetic."""
    jaxpr = str(fungrad.make_jaxpr(lambda a: a * 3 + 1)(A4))
    assert "convert_element_type[new_dtype=int8" in jaxpr and "i4[8]" in jaxpr
    big = np.resize(A4, 100_000)  # large enough for the compiler's fused paths
    got = fungrad.jit(lambda a: ((a * 3 + 1) ^ (a >> 1)).astype(jnp.float32) * 0.5)(big)
    want = jax.jit(lambda a: ((a * 3 + 1) ^ (a >> 1)).astype(jnp_ref.float32) * 0.5)(big)
    assert_same(got, want)


# --------------------------------------------------------------------------- differences

def _wrap(values, dtype):
    return np.asarray(values).astype(np.int64).astype(dtype)


def test_bit_counts_and_shifts_read_the_types_own_bits():
    """Where jax's answers on sub-byte integers are its backend's accidents, fungrad gives
    the answer for the type's own bits: ``population_count`` of a negative int4 counts 4 bits
    (jax counts those of its sign extension to a byte), ``clz`` is that of jax eagerly
    (under ``jax.jit`` it differs), ``>>`` of an unsigned type shifts zeros in (jax, which
    asks NumPy whether uint4 is unsigned, shifts in copies of the top bit)."""
    bits = (A4.astype(np.int64) & 15)
    popcount = [bin(int(v)).count("1") for v in bits]
    np.testing.assert_array_equal(lax.population_count(A4), _wrap(popcount, I4))
    np.testing.assert_array_equal(lax.clz(A4), _wrap([4 - int(v).bit_length() for v in bits], I4))
    np.testing.assert_array_equal(lax.clz(A4), jax.lax.clz(A4))
    np.testing.assert_array_equal(fungrad.jit(lax.clz)(UA4), jax.lax.clz(UA4))
    np.testing.assert_array_equal(jnp.asarray(UA4) >> 1, _wrap(UA4.astype(np.int64) >> 1, U4))
    np.testing.assert_array_equal(lax.shift_right_arithmetic(UA4, np.ones(8, U4)),
                                  jax.lax.shift_right_arithmetic(UA4, np.ones(8, U4)))


def test_where_jax_fails_by_accident_fungrad_computes():
    """jax's CPU backend fails on ``lax.top_k`` of any sub-byte type and on a sort with more
    than one operand of 2-bit integers (``argsort``, ``unique``, ``lexsort``); fungrad gives
    the values."""
    x2 = X["uint2"]
    np.testing.assert_array_equal(jnp.argsort(x2, stable=True), np.argsort(x2, stable=True))
    np.testing.assert_array_equal(jnp.lexsort([x2, X["int2"]]),
                                  np.lexsort([x2.astype(int), X["int2"].astype(int)]))
    values, indices = lax.top_k(A4, 3)
    np.testing.assert_array_equal(values, _wrap([7, 5, 1], I4))
    np.testing.assert_array_equal(indices, [2, 6, 0])


# --------------------------------------------------------------------------- refusals

REFUSED = [  # where jax fails too: (the operation the error names, the computation)
    ("sum", lambda n, a: n.sum(a)), ("prod", lambda n, a: n.prod(a)),
    ("sum", lambda n, a: n.nansum(a)), ("cumulative_sum", lambda n, a: n.cumulative_sum(a)),
    ("power", lambda n, a: n.power(a, a)), ("abs", lambda n, a: n.abs(a)),
    ("abs", lambda n, a: n.gcd(a, a)), ("abs", lambda n, a: n.bitwise_count(a)),
    ("abs", lambda n, a: jax.lax.abs(a) if n is jnp_ref else lax.abs(a)),
    ("argpartition", lambda n, a: n.argpartition(a, 2)),
    ("dot with preferred_element_type=int32",
     lambda n, a: n.dot(a, a, preferred_element_type=n.int32)),
    ("matmul with preferred_element_type=float32",
     lambda n, a: n.matmul(a, a, preferred_element_type=n.float32)),
    ("einsum with preferred_element_type=int32",
     lambda n, a: n.einsum("i,i", a, a, preferred_element_type=n.int32)),
]


@pytest.mark.parametrize("op,fn", REFUSED, ids=[f"{i}-{op}" for i, (op, _) in
                                                 enumerate(REFUSED)])
def test_refusals_name_the_operation_and_the_dtype(op, fn):
    with pytest.raises(Exception):  # noqa: B017, PT011 (XLA's and NumPy's errors alike)
        np.asarray(fn(jnp_ref, jnp_ref.asarray(A4)))
    for call in (lambda a: fn(jnp, a), fungrad.jit(lambda a: fn(jnp, a))):
        with pytest.raises(TypeError, match=rf"^{op} does not accept dtype int4 .*convert first"):
            call(jnp.asarray(A4))


def test_int1_has_no_arrays():
    """jax's CPU backend holds int1 and uint1 as booleans (``jnp.zeros(2, jnp.int1)`` prints
    ``False``): fungrad has them as dtypes to promote and query, and refuses arrays."""
    assert jnp.promote_types(jnp.int1, int) == jnp_ref.promote_types(jnp_ref.int1, int)
    for make in (lambda: jnp.zeros(2, jnp.int1), lambda: jnp.asarray(A4).astype("uint1"),
                 lambda: jnp.asarray(np.zeros(2, ml_dtypes.int1)), lambda: jnp.uint1(1)):
        with pytest.raises(TypeError, match="no arrays of dtype u?int1"):
            make()
