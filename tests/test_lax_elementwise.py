"""Elementwise ``fungrad.lax`` primitives against ``jax.lax``.

One record per op (name, arity, dtypes, input domain, differentiability) drives the
same checks for every op: values, dtypes and weak types (arrays of every accepted
dtype, broadcasting, 0-d and empty arrays, Python scalars), JVP and VJP, and vmap
over several axes with some operands unbatched. Then: higher-order derivatives,
finite-difference checks, exact integer/bit semantics (wrap-around, shifts past the
bit width, division by zero), and errors that name the op.

References run under ``jax.jit`` with XLA's cheapest optimisation level, one quick
compile per check. Special functions (erf, lgamma, ...) have their own file.
"""
from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Callable

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from fungrad.test_util import check_grads
from fungrad import tree
from harness import GRAD_TOL, assert_same

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed_per_test(request):
    """Inputs depend only on the test, not on which tests ran before it (-k, xdist)."""
    global RNG
    RNG = np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})

BF16 = np.dtype(ml_dtypes.bfloat16)
F32, F16 = np.dtype(np.float32), np.dtype(np.float16)
FLOATS = (F32, F16, BF16)
C64 = np.dtype(np.complex64)
INTS = tuple(np.dtype(t) for t in (np.int32, np.uint32, np.int8, np.uint8, np.int16))
SIGNED = tuple(d for d in INTS if d.kind == "i")
BOOL = np.dtype(np.bool_)


# --------------------------------------------------------------------------- input domains

def uniform(lo: float, hi: float) -> Callable:
    """Floats in [lo, hi]; integers in [lo, hi] clipped to the dtype (unsigned from 0)."""
    def gen(rng, shape, dtype):
        dtype = np.dtype(dtype)
        if dtype == BOOL:
            return rng.random(shape) > 0.5
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return rng.integers(max(lo, info.min), min(hi, info.max) + 1, size=shape).astype(dtype)
        if dtype.kind == "c":
            return (rng.uniform(lo, hi, shape) + 1j * rng.uniform(lo, hi, shape)).astype(dtype)
        return rng.uniform(lo, hi, size=shape).astype(dtype)
    return gen


def full_range(rng, shape, dtype):
    """Any value of an integer dtype (every bit pattern), or the default range otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return uniform(-3, 3)(rng, shape, dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=np.int64 if
                        dtype != np.uint64 else np.uint64).astype(dtype)


def off_integers(lo: int, hi: int) -> Callable:
    """Floats in [lo, hi] kept 0.1 away from the integers (poles of lgamma/digamma)."""
    def gen(rng, shape, dtype):
        return (rng.integers(lo, hi, size=shape) + rng.uniform(0.1, 0.9, shape)).astype(dtype)
    return gen


def halves(rng, shape, dtype):
    """Multiples of 1/2: every value is a rounding tie or an integer."""
    return (rng.integers(-8, 9, size=shape) / 2).astype(dtype)


def predicates(rng, shape, dtype):
    """Booleans, whatever the dtype of the other operands."""
    return rng.random(shape) > 0.5


def choices(n: int) -> Callable:
    """int32 case indices in [0, n)."""
    return lambda rng, shape, dtype: rng.integers(0, n, size=shape).astype(np.int32)


def orders(rng, shape, dtype):
    """Integer-valued orders 0..3 for polygamma, in the float dtype."""
    return rng.integers(0, 4, size=shape).astype(dtype)


DEFAULT = uniform(-3, 3)
POSITIVE = uniform(0.1, 4)
UNIT = uniform(-0.95, 0.95)


@dataclasses.dataclass(frozen=True)
class Op:
    name: str
    nargs: int
    dtypes: tuple
    domain: Callable | tuple = DEFAULT  # one generator, or one per argument
    grad: bool = True                    # differentiable: check JVP/VJP on float32
    fg: Callable | None = None           # defaults to fungrad.lax.<name>
    ref: Callable | None = None          # defaults to jax.lax.<name>
    label: str | None = None
    shapes: tuple | None = None          # argument shapes to test; default SHAPES[nargs]

    def __str__(self) -> str:
        return self.label or self.name

    @property
    def fg_fn(self) -> Callable:
        return self.fg or getattr(lax, self.name)

    @property
    def ref_fn(self) -> Callable:
        return self.ref or getattr(jax.lax, self.name)

    def args(self, rng, shapes, dtype) -> list:
        gens = self.domain if isinstance(self.domain, tuple) else (self.domain,) * self.nargs
        return [g(rng, s, dtype) for g, s in zip(gens, shapes)]


def unary(name, dtypes=FLOATS, domain=DEFAULT, grad=True, **kw):
    return Op(name, 1, dtypes, domain, grad, **kw)


def binary(name, dtypes=FLOATS, domain=DEFAULT, grad=True, **kw):
    return Op(name, 2, dtypes, domain, grad, **kw)


def with_param(name, nargs, dtypes, domain, grad, suffix="", **params):
    label = f"{name}[{','.join(f'{k}={v!r}' for k, v in params.items())}]{suffix}"
    return Op(name, nargs, dtypes, domain, grad, label=label,
              fg=lambda *a: getattr(lax, name)(*a, **params),
              ref=lambda *a: getattr(jax.lax, name)(*a, **params))


NUMERIC = FLOATS + INTS + (C64,)
NUM_NO_UNSIGNED = FLOATS + SIGNED + (C64,)
SHIFT_AMOUNTS = uniform(-3, 40)

OPS = [
    # arithmetic
    binary("add", NUMERIC, full_range), binary("sub", NUMERIC, full_range),
    binary("mul", NUMERIC, full_range),
    binary("div", FLOATS + (C64,), (DEFAULT, uniform(0.5, 3))),
    binary("div", INTS, (full_range, uniform(-9, 9)), grad=False, label="div_int"),
    binary("rem", FLOATS, (DEFAULT, uniform(0.5, 3))),
    binary("rem", INTS, (full_range, uniform(-9, 9)), grad=False, label="rem_int"),
    binary("pow", FLOATS + (C64,), (POSITIVE, DEFAULT)),
    Op("pow", 2, (F32,), (POSITIVE, uniform(-3, 3)), label="pow_int_exponent",
       fg=lambda x, n: lax.pow(x, lax.convert_element_type(n, np.int32)),
       ref=lambda x, n: jax.lax.pow(x, n.astype(np.int32))),
    binary("max", NUMERIC + (BOOL,), full_range), binary("min", NUMERIC + (BOOL,), full_range),
    binary("atan2", FLOATS), binary("nextafter", FLOATS, grad=False),
    unary("neg", NUMERIC, full_range), unary("sign", NUMERIC, full_range),
    unary("abs", NUM_NO_UNSIGNED, full_range), unary("square", NUMERIC),
    unary("floor", FLOATS), unary("ceil", FLOATS),
    unary("round", FLOATS, halves),
    with_param("round", 1, FLOATS, halves, True, rounding_method=1),
    with_param("round", 1, FLOATS, halves, True,
               rounding_method=lax.RoundingMethod.TO_NEAREST_EVEN),
    unary("is_finite", FLOATS, grad=False),
    unary("reciprocal", FLOATS + (C64,), uniform(0.3, 3)),
    *[with_param("integer_pow", 1, FLOATS + (C64,), DEFAULT, True, y=y)
      for y in (-2, 0, 1, 2, 3, 5)],
    with_param("integer_pow", 1, INTS, uniform(-5, 5), False, suffix="_int", y=3),
    Op("clamp", 3, FLOATS + INTS, (uniform(-3, 1), DEFAULT, uniform(1, 3))),
    # exponentials, logarithms, roots
    unary("exp", FLOATS + (C64,)), unary("exp2", FLOATS + (C64,)),
    unary("expm1", FLOATS + (C64,)), unary("log", FLOATS + (C64,), POSITIVE),
    unary("log1p", FLOATS + (C64,), uniform(-0.9, 3)), unary("logistic", FLOATS + (C64,)),
    unary("sqrt", FLOATS + (C64,), POSITIVE), unary("rsqrt", FLOATS + (C64,), POSITIVE),
    unary("cbrt", FLOATS),
    # trigonometric and hyperbolic
    unary("sin", FLOATS + (C64,)), unary("cos", FLOATS + (C64,)),
    unary("tan", FLOATS, uniform(-1.4, 1.4)),
    unary("asin", FLOATS, UNIT), unary("acos", FLOATS, UNIT), unary("atan", FLOATS + (C64,)),
    unary("sinh", FLOATS + (C64,)), unary("cosh", FLOATS + (C64,)), unary("tanh", FLOATS + (C64,)),
    unary("asinh", FLOATS + (C64,)), unary("acosh", FLOATS, uniform(1.1, 4)),
    unary("atanh", FLOATS, UNIT),
    # special functions (wide-range accuracy lives in test_lax_elementwise_special.py)
    unary("erf", FLOATS), unary("erfc", FLOATS), unary("erf_inv", FLOATS, UNIT),
    # jax's float32 lgamma is off by 2e-6 near its negative roots: negative arguments are
    # checked against jax's float64 in test_lax_elementwise_special.py
    unary("lgamma", FLOATS, off_integers(0, 5)), unary("digamma", FLOATS, off_integers(-3, 5)),
    binary("polygamma", (F32,), (orders, off_integers(0, 5))),
    # comparisons and selection
    *[binary(n, FLOATS + INTS + (BOOL,), uniform(-2, 2), grad=False)
      for n in ("lt", "le", "gt", "ge")],
    *[binary(n, NUMERIC + (BOOL,), uniform(-2, 2), grad=False) for n in ("eq", "ne")],
    # jax wants equal case shapes and a scalar or equal-shaped selector
    Op("select", 3, FLOATS + INTS + (C64, BOOL), (predicates, DEFAULT, DEFAULT),
       shapes=(((3, 4),) * 3, ((), (2, 3), (2, 3)), ((0, 2),) * 3)),
    Op("select_n", 4, FLOATS + INTS, (choices(3), DEFAULT, DEFAULT, DEFAULT),
       shapes=(((3, 4),) * 4, ((), (2, 3), (2, 3), (2, 3)))),
    # complex numbers
    Op("complex", 2, (F32,), label="complex_parts",
       fg=lambda x, y: (lax.real(lax.complex(x, y) * lax.conj(lax.complex(y, x))),
                        lax.imag(lax.complex(x, y) * lax.complex(y, x)),
                        lax.abs(lax.complex(x, y))),
       ref=lambda x, y: (jax.lax.real(jax.lax.complex(x, y) * jax.lax.conj(jax.lax.complex(y, x))),
                         jax.lax.imag(jax.lax.complex(x, y) * jax.lax.complex(y, x)),
                         jax.lax.abs(jax.lax.complex(x, y)))),
    unary("real", (C64,), grad=False), unary("imag", (C64,), grad=False),
    unary("conj", (C64, F32), grad=False),
    binary("complex", (F32,), grad=False, label="complex"),
    # bitwise
    unary("bitwise_not", INTS + (BOOL,), full_range, grad=False),
    *[binary(n, INTS + (BOOL,), full_range, grad=False)
      for n in ("bitwise_and", "bitwise_or", "bitwise_xor")],
    *[binary(n, INTS, (full_range, SHIFT_AMOUNTS), grad=False)
      for n in ("shift_left", "shift_right_logical", "shift_right_arithmetic")],
    unary("population_count", INTS, full_range, grad=False),
    unary("clz", INTS, full_range, grad=False),
]
OPS_BY_ID = {str(op): op for op in OPS}
assert len(OPS_BY_ID) == len(OPS), "op labels must be unique"

SHAPES = {1: [((3, 4),), ((),), ((0, 3),)],
          2: [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((), (2, 3)), ((0, 3), (1, 3))],
          3: [((3, 4),) * 3, ((), (2, 3), ()), ((0, 2),) * 3]}


def batched_reference(fns: list[Callable], arg_lists: list) -> list:
    """``[fn(*args) ...]`` in jax under one jit: one compile for a whole table row."""
    return jit(lambda arg_lists: [fn(*args) for fn, args in zip(fns, arg_lists)])(arg_lists)


def _np_dtype(name: str) -> np.dtype:
    return BF16 if name == "bfloat16" else np.dtype(name)


# --------------------------------------------------------------------------- values

@pytest.mark.parametrize("label", list(OPS_BY_ID))
def test_values(label):
    """Values, shapes, dtypes and weak types against jax: every accepted dtype, and for the
    first one also broadcasting, 0-d and empty shapes."""
    op = OPS_BY_ID[label]
    shape_cases = op.shapes or SHAPES[op.nargs]
    cases = [op.args(RNG, shapes, dtype) for i, dtype in enumerate(op.dtypes)
             for shapes in (shape_cases if i == 0 else shape_cases[:1])]
    refs = batched_reference([op.ref_fn] * len(cases), cases)
    for args, ref in zip(cases, refs):
        assert_same(op.fg_fn(*args), ref)


SCALAR_CASES = [
    ("add", np.float32), ("sub", np.float32), ("mul", np.int32), ("div", np.float32),
    ("div", np.int32), ("rem", np.float32), ("max", np.float32), ("min", np.int32),
    ("atan2", np.float32), ("pow", np.float32), ("nextafter", np.float32), ("lt", np.float32),
    ("eq", np.int32), ("shift_left", np.int32), ("bitwise_and", np.int32),
]


@pytest.mark.parametrize("name,dtype", SCALAR_CASES)
def test_python_scalar_operands(name, dtype):
    """A Python scalar takes the dtype of the array it meets; two scalars stay weak."""
    x = (np.arange(1, 7).reshape(2, 3) * 0.7).astype(dtype)
    s, t = (2, 3) if np.dtype(dtype).kind == "i" else (1.5, 2.5)
    f, g = getattr(lax, name), getattr(jax.lax, name)
    refs = jit(lambda x, s, t: (g(x, s), g(s, x), g(s, t)))(x, s, t)  # Python scalars stay weak
    assert_same((f(x, s), f(s, x), f(s, t)), refs)  # the last is weak: two weak operands


def test_python_scalar_meeting_a_constant_array_under_jit():
    """An array made inside a jitted function is concrete, not traced; a Python int meeting
    it is still converted to its dtype, not staged as an int32 literal."""
    f = fungrad.jit(lambda x: x + fungrad.numpy.arange(0, 8, 2, dtype=np.float32) / 8)
    np.testing.assert_array_equal(np.asarray(f(np.zeros(4, np.float32))), np.arange(0, 8, 2) / 8)


def test_unary_python_scalar_is_weak():
    names = ["sin", "exp", "erf", "lgamma", "floor", "round", "abs", "sign", "neg", "is_finite",
             "logistic", "sqrt"]
    refs = batched_reference([getattr(jax.lax, n) for n in names], [(0.75,)] * len(names))
    assert_same([getattr(lax, n)(0.75) for n in names], refs)


def test_integer_python_scalars_stay_weak_ints():
    for name in ("add", "mul", "shift_left", "bitwise_xor", "max"):
        assert_same(getattr(lax, name)(6, 3), getattr(jax.lax, name)(6, 3))
    assert_same(lax.population_count(7), jax.lax.population_count(7))
    assert_same(lax.pow(2.0, 3), jax.lax.pow(2.0, 3))  # a Python int exponent stays integral
    assert_same(lax.clamp(0.0, 1.5, 1.0), jax.lax.clamp(0.0, 1.5, 1.0))


def test_scalar_meeting_narrow_dtypes():
    """Beyond jax: scalars adapt to bfloat16/uint8 arrays instead of raising."""
    x = np.arange(4).astype(BF16)
    out = lax.mul(x, 2.5)
    assert out.dtype == BF16 and not out.weak_type
    np.testing.assert_array_equal(np.asarray(out, np.float32), np.arange(4) * 2.5)
    u = np.array([250, 3], np.uint8)
    assert lax.add(u, 10).dtype == np.uint8
    np.testing.assert_array_equal(lax.add(u, 10), np.array([4, 13], np.uint8))  # wraps


# -------------------------------------------------------------------------- exact integer semantics

U32 = np.uint32


def test_uint32_wraparound_and_shifts_exact():
    """What the random-number generator relies on: exact uint32 arithmetic and shifts."""
    x = full_range(RNG, (64,), U32)
    y = full_range(RNG, (64,), U32)
    s = np.arange(64, dtype=U32) % 40  # includes shifts by >= 32, which give 0
    for name, args in [("add", (x, y)), ("mul", (x, y)), ("sub", (x, y)), ("bitwise_or", (x, y)),
                       ("bitwise_xor", (x, y)), ("shift_left", (x, s)),
                       ("shift_right_logical", (x, s)), ("shift_right_arithmetic", (x, s))]:
        out = getattr(lax, name)(*args)
        assert out.dtype == U32
        np.testing.assert_array_equal(out, getattr(jax.lax, name)(*args), err_msg=name)
    np.testing.assert_array_equal(lax.shift_right_logical(np.uint32(0xFFFFFFFF), np.uint32(32)), 0)
    np.testing.assert_array_equal(lax.shift_left(np.uint32(1), np.uint32(31)), 2 ** 31)


def test_integer_division_edge_cases():
    """XLA semantics: x / 0 = -1 (all bits), x % 0 = x, MIN / -1 = MIN, MIN % -1 = 0."""
    for dt in (np.int32, np.int8, np.uint32):
        info = np.iinfo(dt)
        x = np.array([info.min, 7, -7 if info.min < 0 else 9, 5, info.max], dt)
        y = np.array([-1 if info.min < 0 else 3, 0, 2, -2 if info.min < 0 else 4, 3], dt)
        for name in ("div", "rem"):
            assert_same(getattr(lax, name)(x, y), getattr(jax.lax, name)(x, y))


def test_round_halves_and_boundaries():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997, -0.0, 8388609.0, np.inf, np.nan],
                 np.float32)
    for method in (0, 1):
        assert_same(lax.round(x, method), jax.lax.round(x, method))


def test_inf_and_nan_propagation():
    """Infs and nans propagate as in JAX, and silently (no NumPy warning)."""
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], np.float32)
    y = x[::-1].copy()
    names = [("exp", 1), ("tanh", 1), ("logistic", 1), ("sign", 1), ("abs", 1), ("floor", 1),
             ("sqrt", 1), ("atan", 1), ("erf", 1), ("erfc", 1), ("lgamma", 1), ("is_finite", 1),
             ("max", 2), ("min", 2), ("add", 2), ("mul", 2), ("atan2", 2), ("complex", 2)]
    args = [(x, y)[:n] for _, n in names]
    refs = batched_reference([getattr(jax.lax, name) for name, _ in names], args)
    assert_same([getattr(lax, name)(*a) for (name, _), a in zip(names, args)], refs)


# --------------------------------------------------------------------------- derivatives

GRAD_OPS = [str(op) for op in OPS if op.grad]


def check_jvp_vjp(fg_fn: Callable, ref_fn: Callable, args: list, argnums: tuple) -> None:
    """``compare_transforms`` without its vmap, with the jax side under one jit: values,
    JVP and VJP with respect to the arguments in ``argnums``."""
    def restrict(fn):
        def g(*diff):
            full = list(args)
            for i, v in zip(argnums, diff):
                full[i] = v
            return fn(*full)
        return g
    primals = tuple(args[i] for i in argnums)
    tangents = tuple(DEFAULT(RNG, np.shape(a), np.asarray(a).dtype) for a in primals)
    out, t_out = fungrad.jvp(restrict(fg_fn), primals, tangents)
    ct = tree.map(lambda y: DEFAULT(RNG, y.shape, y.dtype), out)
    cts = fungrad.vjp(restrict(fg_fn), *primals)[1](ct)
    (ref_out, ref_t), ref_cts = jit(lambda p, t, c: (
        jax.jvp(restrict(ref_fn), p, t),
        jax.vjp(restrict(ref_fn), *p)[1](c)))(primals, tangents, ct)
    assert_same(out, ref_out)
    assert_same(t_out, ref_t, GRAD_TOL, check_weak=False)
    assert_same(cts, ref_cts, GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("label", GRAD_OPS)
def test_jvp_vjp(label):
    """Values, JVP and VJP on float32 inputs from the op's domain (vmap is tested below)."""
    op = OPS_BY_ID[label]
    args = op.args(RNG, [(3, 4)] * op.nargs, F32)
    argnums = (1,) if label == "polygamma" else \
        tuple(i for i, a in enumerate(args) if np.asarray(a).dtype == F32)
    check_jvp_vjp(op.fg_fn, op.ref_fn, args, argnums)


COMPLEX_GRAD_OPS = [str(op) for op in OPS if C64 in op.dtypes
                    and (op.grad or op.name in ("real", "imag", "conj", "complex"))]


@pytest.mark.parametrize("label", COMPLEX_GRAD_OPS)
def test_jvp_vjp_complex(label):
    """JVP and VJP on complex64 inputs with complex tangents and cotangents (JAX's
    convention: the VJP is the transpose of the JVP, nothing conjugated)."""
    op = OPS_BY_ID[label]
    args = op.args(RNG, [(3, 4)] * op.nargs, C64)
    check_jvp_vjp(op.fg_fn, op.ref_fn, args,
                  tuple(i for i, a in enumerate(args) if np.asarray(a).dtype == C64))


def test_max_min_ties_split_the_gradient():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    for name in ("max", "min"):
        g_fg = fungrad.grad(lambda a, b: getattr(lax, name)(a, b).sum(), argnums=(0, 1))(x, x)
        g_jx = jax.grad(lambda a, b: getattr(jax.lax, name)(a, b).sum(), argnums=(0, 1))(x, x)
        assert_same(g_fg, g_jx, GRAD_TOL, check_weak=False)


def test_abs_and_pow_at_zero():
    """abs' derivative at 0 is 1 (JAX's select); d/dx x**0 is 0 even at x = 0."""
    zero = np.zeros(3, np.float32)
    assert_same(fungrad.grad(lambda x: lax.abs(x).sum())(zero),
                jax.grad(lambda x: jax.lax.abs(x).sum())(zero), GRAD_TOL, check_weak=False)
    n = np.array([0, 1, 2], np.int32)
    assert_same(fungrad.grad(lambda x: lax.pow(x, n).sum())(zero),
                jax.grad(lambda x: jax.lax.pow(x, n).sum())(zero), GRAD_TOL, check_weak=False)


HIGHER = [
    ("tanh", lambda L: L.tanh, 0.7), ("logistic", lambda L: L.logistic, -1.3),
    ("erf", lambda L: L.erf, 0.4), ("erf_inv", lambda L: L.erf_inv, 0.6),
    ("lgamma", lambda L: L.lgamma, 2.3), ("digamma", lambda L: L.digamma, 1.6),
    ("cbrt", lambda L: L.cbrt, 1.7), ("rsqrt", lambda L: L.rsqrt, 0.8),
    ("atan2", lambda L: (lambda x: L.atan2(x, L.sin(x) + 2.0)), 0.9),
    ("pow", lambda L: (lambda x: L.pow(x, L.cos(x) + 1.5)), 1.2),
    ("asinh", lambda L: L.asinh, 0.3), ("rem", lambda L: (lambda x: L.rem(x * x, x + 0.5)), 1.9),
]


@pytest.mark.parametrize("name,make,x", HIGHER, ids=[h[0] for h in HIGHER])
def test_third_derivative(name, make, x):
    """grad(grad(grad(f))) against jax: every rule is itself differentiable."""
    x = np.float32(x)
    d3 = lambda api, f: api.grad(api.grad(api.grad(f)))  # noqa: E731
    assert_same(d3(fungrad, make(lax))(x), jit(d3(jax, make(jax.lax)))(x), GRAD_TOL,
                check_weak=False)


@pytest.mark.parametrize("name", ["sin", "exp", "log1p", "tan", "atanh", "erfc", "lgamma",
                                  "logistic", "sqrt"])
def test_check_grads_finite_differences(name):
    op = OPS_BY_ID[name]
    x = op.args(RNG, [(5,)], F32)[0]
    check_grads(getattr(lax, name), (x,), order=2)


def test_check_grads_binary():
    x, y = POSITIVE(RNG, (4,), F32), DEFAULT(RNG, (4,), F32)
    for f in (lax.pow, lax.atan2, lax.div, lax.mul):
        check_grads(f, (x, y), order=2)


def test_complex_cotangents_match_jax():
    x, y = DEFAULT(RNG, (3,), F32), DEFAULT(RNG, (3,), F32)
    def f(L):
        return lambda a, b: L.real(L.exp(L.complex(a, b)) * L.conj(L.complex(b, a))).sum()
    assert_same(fungrad.grad(f(lax), argnums=(0, 1))(x, y),
                jit(jax.grad(f(jax.lax), argnums=(0, 1)))(x, y), GRAD_TOL, check_weak=False)


# --------------------------------------------------------------------------- vmap

AXES = {1: [(0,), (1,), (-1,)],
        2: [(0, 0), (1, None), (None, -1)],
        3: [(0, 0, 0), (None, 1, None), (0, None, -1)],
        4: [(0, None, 1, -1)]}


def _stack(gen, rng, shape, dtype, axis):
    rows = [gen(rng, shape, dtype) for _ in range(3)]
    return np.stack(rows, axis=axis if axis >= 0 else len(shape) + 1 + axis)


@pytest.mark.parametrize("label", list(OPS_BY_ID))
def test_vmap(label):
    """Batched at the front, a middle and the last axis, with some operands unbatched (and,
    for binary ops, operands that broadcast), for the op's first dtype."""
    op = OPS_BY_ID[label]
    gens = op.domain if isinstance(op.domain, tuple) else (op.domain,) * op.nargs
    layouts = [(((3, 4),) * op.nargs, in_axes) for in_axes in AXES[op.nargs]]
    if op.nargs == 2:
        layouts.append((((3, 1), (1, 4)), (-1, 1)))
    cases = [(in_axes, [g(RNG, s, op.dtypes[0]) if ax is None else
                        _stack(g, RNG, s, op.dtypes[0], ax)
                        for g, s, ax in zip(gens, shapes, in_axes)])
             for shapes, in_axes in layouts]
    refs = batched_reference([jax.vmap(op.ref_fn, in_axes=ax) for ax, _ in cases],
                             [args for _, args in cases])
    for (in_axes, args), ref in zip(cases, refs):
        assert_same(fungrad.vmap(op.fg_fn, in_axes=in_axes)(*args), ref, check_weak=False)


def test_select_n_broadcasts_cases():
    """Beyond jax: the selector and the cases broadcast against each other."""
    which = np.array([[0], [2]], np.int32)
    a, b, c = np.zeros((1, 3), np.float32), np.ones((2, 3), np.float32), np.full((), 2, np.float32)
    np.testing.assert_array_equal(lax.select_n(which, a, b, c), np.where(which == 0, a, c) + 0 * b)
    np.testing.assert_array_equal(lax.select_n(np.int32(1), a, b, c), b)
    pred = np.array([True, False, True])
    np.testing.assert_array_equal(lax.select(pred, 1.0, b), np.where(pred, 1.0, b))


def test_vmap_of_grad_and_nested_vmap():
    x = DEFAULT(RNG, (2, 3, 4), F32)
    f = lambda L: (lambda v: L.logistic(v) * L.erf(v) + L.atan2(v, 2.0))
    g = lambda api, L: api.vmap(api.vmap(api.grad(lambda v: f(L)(v).sum())), in_axes=1)
    assert_same(g(fungrad, lax)(x), jit(g(jax, jax.lax))(x), GRAD_TOL, check_weak=False)


# --------------------------------------------------------------------------- staging

def test_jaxpr_matches_jax():
    def f(L):
        return lambda x, n: L.atan2(L.integer_pow(x, 3), L.round(L.pow(x, n), 1))
    args = (np.ones(3, np.float32), np.ones(3, np.int32))
    assert str(fungrad.make_jaxpr(f(lax))(*args)) == str(jax.make_jaxpr(f(jax.lax))(*args))


# --------------------------------------------------------------------------- errors

f32, f16 = np.ones(3, np.float32), np.ones(3, np.float16)
i32, u8, c64 = np.ones(3, np.int32), np.ones(3, np.uint8), np.ones(3, np.complex64)
ERRORS = [
    (lambda: lax.add(f32, f16), "add", "same dtypes"),
    (lambda: lax.mul(u8, 300), "mul", "same dtypes"),
    (lambda: lax.add(np.ones(3, np.float32), np.ones(4, np.float32)), "add", "incompatible shapes"),
    (lambda: lax.atan2(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)), "atan2",
     "shapes"),
    (lambda: lax.add(np.ones(3, bool), np.ones(3, bool)), "add", "bool"),
    (lambda: lax.sin(i32), "sin", "int32"),
    (lambda: lax.floor(i32), "floor", "int32"),
    (lambda: lax.round(i32), "round", "int32"),
    (lambda: lax.erf(c64), "erf", "complex64"),
    (lambda: lax.cbrt(c64), "cbrt", "complex64"),
    (lambda: lax.abs(u8), "abs", "uint8"),
    (lambda: lax.lt(c64, c64), "lt", "complex64"),
    (lambda: lax.rem(c64, c64), "rem", "complex64"),
    (lambda: lax.pow(i32, i32), "pow", "int32"),
    (lambda: lax.pow(f32, f16), "pow", "float16"),
    (lambda: lax.integer_pow(i32, -1), "integer_pow", "negative"),
    (lambda: lax.shift_left(f32, f32), "shift_left", "float32"),
    (lambda: lax.population_count(f32), "population_count", "float32"),
    (lambda: lax.bitwise_and(f32, f32), "and", "float32"),
    (lambda: lax.is_finite(i32), "is_finite", "int32"),
    (lambda: lax.select_n(f32, f32, f32), "select_n", "which"),
    (lambda: lax.select_n(f32 > 0, f32, f32, f32), "select_n", "two cases"),
    (lambda: lax.select_n(f32 > 0, f32, i32), "select_n", "same dtypes"),
    (lambda: lax.clamp(f32, i32, f32), "clamp", "same dtypes"),
    (lambda: lax.complex(f16, f16), "complex", "float16"),
    (lambda: lax.conj(i32), "conj", "int32"),
    (lambda: lax.real(f32), "real", "float32"),
    (lambda: lax.polygamma(i32, i32), "polygamma", "int32"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors_name_the_op(k):
    fn, name, detail = ERRORS[k]
    with pytest.raises(TypeError, match=name) as info:
        fn()
    assert detail in str(info.value)


def test_errors_under_tracing():
    with pytest.raises(TypeError, match="add requires arguments to have the same dtypes"):
        fungrad.make_jaxpr(lambda x, y: lax.add(x, y))(f32, f16)
    with pytest.raises(TypeError, match="sin does not accept dtype int32"):
        fungrad.make_jaxpr(lax.sin)(i32)
    with pytest.raises(TypeError, match="mul got incompatible shapes"):
        fungrad.vmap(lambda x, y: lax.mul(x, y))(np.ones((2, 3), np.float32),
                                                 np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="polygamma"):
        fungrad.grad(lambda m: lax.polygamma(m, 2.0))(1.0)
