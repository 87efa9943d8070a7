"""Complex numbers and complex differentiation against jax.

One record per op (``fungrad.numpy``/``fungrad.lax`` on complex64 operands) drives the
same checks: values, dtypes and weak types; JVP and VJP with complex tangents and
cotangents (JAX's convention: the VJP is the transpose of the JVP, nothing conjugated);
``grad`` of the real-valued compositions ``sum(|f(z)|**2)`` and ``sum(real(f(z)))``
against jax and against finite differences that perturb the real and imaginary parts
separately (so ``grad`` is ``dL/dx - i dL/dy``, JAX's convention); for holomorphic ops,
``grad``/``jacfwd``/``jacrev`` with ``holomorphic=True``; ``vmap`` and ``jit``. Then dtype
promotion, complex128 under x64, edge values without NumPy warnings, and the errors of
``grad``/``jacfwd``/``jacrev`` for inputs and outputs of the wrong kind.
"""
from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax, tree
from fungrad.test_util import check_grads, numerical_jvp
from harness import GRAD_TOL, TOL, assert_same, compare_types, x64

RNG = np.random.default_rng(0)


jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})
C64, C128, F32 = np.dtype(np.complex64), np.dtype(np.complex128), np.dtype(np.float32)
FG = types.SimpleNamespace(np=fnp, lax=lax, api=fungrad)
JX = types.SimpleNamespace(np=jnp, lax=jax.lax, api=jax)


# --------------------------------------------------------------------------- input domains

def disc(re: tuple, im: tuple) -> Callable:
    """Complex numbers with real part in ``re`` and imaginary part in ``im``."""
    def gen(rng, shape, dtype):
        z = rng.uniform(*re, shape) + 1j * rng.uniform(*im, shape)
        return z.astype(dtype)
    return gen


def real_part(rng, shape, dtype):
    """A real operand of the complex dtype's precision."""
    return rng.uniform(-1.5, 1.5, shape).astype(np.float32 if dtype == C64 else np.float64)


def predicate(rng, shape, dtype):
    return rng.random(shape) > 0.5


DEFAULT = disc((-1.5, 1.5), (-1.5, 1.5))
RIGHT = disc((0.3, 2.0), (-1.5, 1.5))      # away from the branch cut on the negative reals
SMALL = disc((-0.6, 0.6), (-0.6, 0.6))     # away from the cuts |re z| > 1 on the real axis
ACOSH = disc((1.2, 2.5), (-1.0, 1.0))      # away from acosh's cut (-inf, 1]


@dataclasses.dataclass(frozen=True)
class Op:
    label: str
    fn: Callable                   # fn(ns, *args) with ns.np/ns.lax the library
    shapes: tuple = ((3, 4),)      # one shape per argument
    domain: tuple = (DEFAULT,)     # one generator per argument
    holomorphic: bool = False      # complex-analytic in every complex argument
    grad: bool = True              # differentiable (piecewise constant ops are not)

    def __str__(self) -> str:
        return self.label

    def fg(self, *args):
        return self.fn(FG, *args)

    def ref(self, *args):
        return self.fn(JX, *args)

    def args(self, rng, dtype=C64) -> list:
        return [g(rng, s, dtype) for g, s in zip(self.domain, self.shapes)]

    def diff_argnums(self, args) -> tuple:
        """The inexact arguments (booleans and integers are not differentiated)."""
        return tuple(i for i, a in enumerate(args) if np.asarray(a).dtype.kind in "fc")


def np_op(name: str, **kw) -> Callable:
    """``fn(ns, z)`` calling ``ns.np.<name>(z, **kw)``."""
    return lambda m, z: getattr(m.np, name)(z, **kw)


def unary(label, fn, domain=DEFAULT, holomorphic=True, **kw):
    return Op(label, fn, domain=(domain,), holomorphic=holomorphic, **kw)


def binary(label, fn, shapes=((3, 4), (3, 4)), domain=(DEFAULT, DEFAULT), holomorphic=True, **kw):
    return Op(label, fn, shapes, domain, holomorphic, **kw)


OPS = [
    # arithmetic (operators and their jnp names)
    binary("add", lambda m, z, w: z + w), binary("subtract", lambda m, z, w: m.np.subtract(z, w)),
    binary("multiply", lambda m, z, w: z * w), binary("divide", lambda m, z, w: z / w),
    binary("add_broadcast", lambda m, z, w: z + w, shapes=((3, 1), (1, 4))),
    binary("multiply_real", lambda m, z, x: z * x, domain=(DEFAULT, real_part)),
    binary("divide_by_complex", lambda m, x, z: x / z, domain=(real_part, DEFAULT)),
    binary("power", lambda m, z, w: m.np.power(z, w), domain=(RIGHT, SMALL)),
    binary("lax.pow", lambda m, z, w: m.lax.pow(z, w), domain=(RIGHT, SMALL)),
    unary("pow_scalar", lambda m, z: z ** 2.5, RIGHT), unary("pow_int", lambda m, z: z ** 3),
    unary("integer_pow_neg", lambda m, z: m.lax.integer_pow(z, -2), RIGHT),
    unary("scalar_times_j", lambda m, z: (2 - 1j) * z + 1j),
    unary("negative", lambda m, z: -z), unary("square", lambda m, z: m.np.square(z)),
    unary("reciprocal", lambda m, z: m.np.reciprocal(z), RIGHT),
    # complex parts
    unary("real", lambda m, z: m.np.real(z), holomorphic=False),
    unary("imag", lambda m, z: m.np.imag(z), holomorphic=False),
    unary("conj", lambda m, z: m.np.conj(z), holomorphic=False),
    unary("abs", lambda m, z: m.np.abs(z), holomorphic=False),
    unary("angle", lambda m, z: m.np.angle(z), RIGHT, holomorphic=False),
    unary("angle_deg", lambda m, z: m.np.angle(z, deg=True), RIGHT, holomorphic=False),
    unary("lax.real_imag", lambda m, z: m.lax.complex(m.lax.imag(z), m.lax.real(z)),
          holomorphic=False),
    binary("lax.complex", lambda m, x, y: m.lax.complex(x, y), domain=(real_part, real_part),
           holomorphic=False),
    unary("sign", lambda m, z: m.np.sign(z), holomorphic=False, grad=False),
    unary("round", lambda m, z: m.np.round(2 * z), holomorphic=False, grad=False),
    # exponentials, logarithms, roots
    *[unary(n, np_op(n), d) for n, d in [
        ("exp", DEFAULT), ("exp2", DEFAULT), ("expm1", DEFAULT), ("log", RIGHT),
        ("log2", RIGHT), ("log10", RIGHT), ("log1p", RIGHT), ("sqrt", RIGHT)]],
    unary("lax.rsqrt", lambda m, z: m.lax.rsqrt(z), RIGHT),
    unary("lax.logistic", lambda m, z: m.lax.logistic(z), SMALL),
    binary("logaddexp", lambda m, z, w: m.np.logaddexp(z, w), domain=(SMALL, SMALL)),
    # trigonometric and hyperbolic
    *[unary(n, np_op(n), d) for n, d in [
        ("sin", DEFAULT), ("cos", DEFAULT), ("tan", SMALL), ("sinh", DEFAULT), ("cosh", DEFAULT),
        ("tanh", SMALL), ("arcsin", SMALL), ("arccos", SMALL), ("arctan", SMALL),
        ("arcsinh", SMALL), ("arccosh", ACOSH), ("arctanh", SMALL)]],
    # selection
    Op("where", lambda m, p, z, w: m.np.where(p, z, w), ((3, 4),) * 3,
       (predicate, DEFAULT, DEFAULT), holomorphic=True),
    binary("maximum", lambda m, z, w: m.np.maximum(z, w), holomorphic=False),
    # contractions
    binary("matmul", lambda m, a, b: a @ b, shapes=((3, 4), (4, 2))),
    binary("matmul_real_rhs", lambda m, a, x: m.np.matmul(a, x), shapes=((3, 4), (4, 2)),
           domain=(DEFAULT, real_part)),
    binary("dot", lambda m, a, b: m.np.dot(a, b), shapes=((3, 4), (4,))),
    binary("einsum", lambda m, a, b: m.np.einsum("ij,kj->ik", a, b), shapes=((3, 4), (2, 4))),
    binary("lax.dot_general", lambda m, a, b: m.lax.dot_general(a, b, (((1,), (2,)), ((0,), (0,)))),
           shapes=((2, 3), (2, 4, 3))),
    binary("vdot", lambda m, a, b: m.np.vdot(a, b), holomorphic=False),
    binary("inner", lambda m, a, b: m.np.inner(a, b), shapes=((3, 4), (2, 4))),
    binary("outer", lambda m, a, b: m.np.outer(a, b), shapes=((3,), (4,))),
    # reductions and cumulative ops
    *[unary(n, np_op(n, axis=1), d) for n, d in [
        ("sum", DEFAULT), ("mean", DEFAULT), ("prod", DEFAULT), ("cumsum", DEFAULT),
        ("cumprod", DEFAULT)]],
    unary("sum_all", lambda m, z: m.np.sum(z)), unary("trace", lambda m, z: m.np.trace(z)),
    unary("var", lambda m, z: m.np.var(z, axis=0), holomorphic=False),
    unary("std", lambda m, z: m.np.std(z, axis=1), holomorphic=False),
    unary("norm", lambda m, z: m.np.linalg.norm(z), holomorphic=False),
    unary("max", lambda m, z: m.np.max(z, axis=1), holomorphic=False),
    # shapes and indexing
    unary("transpose_reshape", lambda m, z: m.np.reshape(z.T, (2, 6))),
    binary("concatenate", lambda m, z, w: m.np.concatenate([z, w], axis=1)),
    unary("flip_pad", lambda m, z: m.np.pad(m.np.flip(z, 0), ((1, 0), (0, 2)))),
    unary("gather", lambda m, z: z[np.array([2, 0, 2]), 1:3]),
    binary("scatter_add", lambda m, z, w: m.np.asarray(z).at[np.array([0, 2, 0])].add(w)),
    unary("sort", lambda m, z: m.np.sort(z, axis=1), holomorphic=False),
    unary("dynamic_slice", lambda m, z: m.lax.dynamic_slice(z, (1, 2), (2, 2))),
    unary("astype_real", lambda m, z: m.np.real(z).astype(z.dtype), holomorphic=False),
]
OPS_BY_ID = {str(op): op for op in OPS}
assert len(OPS_BY_ID) == len(OPS), "op labels must be unique"
GRAD_OPS = [str(op) for op in OPS if op.grad]
HOLOMORPHIC = [str(op) for op in OPS if op.holomorphic]


def _restrict(fn: Callable, args: list, argnums: tuple) -> Callable:
    def g(*diff):
        full = list(args)
        for i, v in zip(argnums, diff):
            full[i] = v
        return fn(*full)
    return g


def _like(rng, x):
    """A random tangent or cotangent of ``x``'s dtype (complex or real)."""
    dt = np.asarray(x).dtype
    return (DEFAULT if dt.kind == "c" else real_part)(rng, np.shape(x), dt).astype(dt)


def _abs2(ns, y):
    return ns.np.sum(ns.np.real(y * ns.np.conj(y)))


def _losses(op: Op, ns):
    """``sum(|f|**2)`` and ``sum(real(f))``: real-valued compositions to take ``grad`` of."""
    return [lambda *a: _abs2(ns, op.fn(ns, *a)),
            lambda *a: ns.np.sum(ns.np.real(op.fn(ns, *a)))]


# --------------------------------------------------------------------------- values

@pytest.mark.parametrize("label", list(OPS_BY_ID))
def test_values_vmap_jit(label):
    """Values, shapes, dtypes and weak types against jax on complex64 operands; vmap over
    a new leading axis of every argument against jax (one compiled reference for both);
    jit, and jit of ``grad``, against eager."""
    op = OPS_BY_ID[label]
    args = op.args(RNG)
    batched = [np.stack([a, b]) for a, b in zip(args, op.args(RNG))]
    ref, ref_batched = jit(lambda a, b: (op.ref(*a), jax.vmap(op.ref)(*b)))(args, batched)
    assert_same(op.fg(*args), ref)
    assert_same(fungrad.vmap(op.fg)(*batched), ref_batched, check_weak=False)
    assert_same(fungrad.jit(op.fg)(*args), op.fg(*args))
    if op.grad:
        g = fungrad.grad(_losses(op, FG)[0], argnums=op.diff_argnums(args))
        assert_same(fungrad.jit(g)(*args), g(*args), GRAD_TOL)


@pytest.mark.parametrize("label", ["add", "divide", "power", "exp", "log", "sqrt", "arctanh",
                                   "abs", "angle", "matmul", "cumprod", "logaddexp"])
def test_complex128_under_x64(label):
    op = OPS_BY_ID[label]
    with x64():
        args = op.args(RNG, C128)
        assert_same(op.fg(*args), jit(op.ref)(*args))


# --------------------------------------------------------------------------- derivatives

@pytest.mark.parametrize("label", GRAD_OPS)
def test_jvp_vjp_grad(label):
    """JVP and VJP with complex tangents and cotangents, and ``grad`` of two real-valued
    compositions, against jax (one compiled reference per op)."""
    op = OPS_BY_ID[label]
    args = op.args(RNG)
    nums = op.diff_argnums(args)
    primals = tuple(args[i] for i in nums)
    tangents = tuple(_like(RNG, p) for p in primals)
    out, t_out = fungrad.jvp(_restrict(op.fg, args, nums), primals, tangents)
    ct = tree.map(lambda y: _like(RNG, y), out)
    cts = fungrad.vjp(_restrict(op.fg, args, nums), *primals)[1](ct)
    grads = [fungrad.grad(_restrict(L, args, nums), argnums=tuple(range(len(nums))))(*primals)
             for L in _losses(op, FG)]

    def ref(p, t, c):
        f = _restrict(op.ref, args, nums)
        return (jax.jvp(f, p, t), jax.vjp(f, *p)[1](c),
                [jax.grad(_restrict(L, args, nums), argnums=tuple(range(len(nums))))(*p)
                 for L in _losses(op, JX)])
    (ref_out, ref_t), ref_cts, ref_grads = jit(ref)(primals, tangents, ct)
    assert_same(out, ref_out)
    assert_same(t_out, ref_t, GRAD_TOL, check_weak=False)
    assert_same(cts, ref_cts, GRAD_TOL, check_weak=False)
    assert_same(grads, ref_grads, GRAD_TOL, check_weak=False)


def fd_grad(loss: Callable, z: np.ndarray, eps: float) -> np.ndarray:
    """``dL/dx - i dL/dy`` by central differences, perturbing each element's real part
    and (for complex ``z``) its imaginary part separately; JAX's ``grad`` of a real ``L``."""
    g = np.zeros(z.shape, np.complex128 if z.dtype.kind == "c" else np.float64)
    for idx in np.ndindex(z.shape):
        for unit in ((1, 1j) if z.dtype.kind == "c" else (1,)):
            e = np.zeros(z.shape, z.dtype)
            e[idx] = unit
            d = float(numerical_jvp(loss, (z,), (e,), eps))
            g[idx] += d if unit == 1 else -1j * d
    return g


@pytest.mark.parametrize("label", GRAD_OPS)
def test_grad_finite_differences(label):
    """``grad`` of ``sum(|f(z)|**2)`` and ``sum(real(f(z)))`` in complex128 against central
    differences of the real and imaginary parts."""
    op = OPS_BY_ID[label]
    with x64():
        args = op.args(RNG, C128)
        for i in op.diff_argnums(args):
            for L in _losses(op, FG):
                loss = _restrict(L, args, (i,))
                g = np.asarray(fungrad.grad(loss)(args[i]))
                want = fd_grad(loss, args[i], eps=1e-6)
                assert g.dtype == args[i].dtype
                r, a = GRAD_TOL[np.dtype(np.float64)]
                np.testing.assert_allclose(g, want, rtol=r, atol=a)


@pytest.mark.parametrize("label", ["exp", "log", "multiply", "abs", "matmul", "conj", "tanh"])
def test_check_grads_second_order(label):
    """Second-order JVPs and VJPs of complex functions against finite differences."""
    op = OPS_BY_ID[label]
    args = op.args(RNG)
    nums = op.diff_argnums(args)
    check_grads(_restrict(op.fg, args, nums), [args[i] for i in nums], order=2)


def test_abs_squared_convention():
    """JAX's convention: ``grad(|z|**2)`` is ``2 conj(z)``; ``grad(real(f(z)))`` of a
    holomorphic ``f`` is ``f'(z)``, here ``2 z``, as is the holomorphic derivative."""
    def grads(ns, z):
        return (ns.api.grad(lambda z: ns.np.abs(z) ** 2)(z),
                ns.api.grad(lambda z: ns.np.real(z ** 2))(z),
                ns.api.grad(lambda z: z ** 2, holomorphic=True)(z))
    z = np.complex64(1 + 2j)
    for ns in (FG, JX):  # jax on a 0-d input: only a few tiny compilations
        assert [complex(g) for g in grads(ns, z)] == pytest.approx([2 - 4j, 2 + 4j, 2 + 4j])


@pytest.mark.parametrize("label", HOLOMORPHIC)
def test_holomorphic(label):
    """``grad``, ``value_and_grad``, ``jacfwd``, ``jacrev`` and ``jacobian`` with
    ``holomorphic=True`` against jax (complex derivatives ``df/dz``)."""
    op = OPS_BY_ID[label]
    args = op.args(RNG)
    nums = tuple(i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "c")

    def run(ns):
        f = _restrict(functools.partial(op.fn, ns), args, nums)
        total = lambda *z: ns.np.sum(f(*z))
        argnums = tuple(range(len(nums)))
        api = ns.api
        return (api.value_and_grad(total, argnums, holomorphic=True)(*[args[i] for i in nums]),
                api.jacfwd(f, argnums, holomorphic=True)(*[args[i] for i in nums]),
                api.jacrev(f, argnums, holomorphic=True)(*[args[i] for i in nums]),
                api.jacobian(f, argnums, holomorphic=True)(*[args[i] for i in nums]))
    assert_same(run(FG), jit(lambda: run(JX))(), GRAD_TOL, check_weak=False)


def test_hessian_holomorphic():
    z = DEFAULT(RNG, (3,), C64)
    f = lambda ns: lambda z: ns.np.sum(ns.np.sin(z) * z ** 2)
    assert_same(fungrad.hessian(f(FG), holomorphic=True)(z),
                jit(jax.hessian(f(JX), holomorphic=True))(z), GRAD_TOL, check_weak=False)


def test_jacrev_of_real_function_of_complex_input():
    """Each row of ``jacrev`` is the ``grad`` of one real output; ``jacfwd`` of a real
    input to complex outputs keeps the outputs' complex dtype."""
    z, x = DEFAULT(RNG, (3,), C64), real_part(RNG, (3,), C64)
    for fun, arg, api in [(lambda ns: lambda z: ns.np.abs(z * z[::-1]), z, "jacrev"),
                          (lambda ns: lambda x: ns.np.exp(1j * x) * x[::-1], x, "jacfwd"),
                          (lambda ns: lambda x: ns.np.abs(ns.np.exp(1j * x) * x), x, "jacrev")]:
        assert_same(getattr(fungrad, api)(fun(FG))(arg), jit(getattr(jax, api)(fun(JX)))(arg),
                    GRAD_TOL, check_weak=False)


def test_vjp_is_the_transpose_of_the_jvp():
    """No conjugation anywhere: ``<ct, J t> == <J^T ct, t>`` with the bilinear pairing
    ``sum(a * b)`` for a non-holomorphic function of two complex inputs."""
    z, w = DEFAULT(RNG, (4,), C64), DEFAULT(RNG, (4,), C64)
    f = lambda z, w: fnp.conj(z) * w + fnp.abs(z) * fnp.exp(w)
    tz, tw, ct = (DEFAULT(RNG, (4,), C64) for _ in range(3))
    jt = fungrad.jvp(f, (z, w), (tz, tw))[1]
    cz, cw = fungrad.vjp(f, z, w)[1](ct)
    lhs = np.sum(np.real(np.asarray(ct) * np.asarray(jt)))
    rhs = np.sum(np.real(np.asarray(cz) * tz + np.asarray(cw) * tw))
    np.testing.assert_allclose(lhs, rhs, rtol=GRAD_TOL[C64][0])


# --------------------------------------------------------------------------- dtypes

PROMOTIONS = [
    ("f32 * 1j", lambda m, x, z: x * 1j), ("f32 + c64", lambda m, x, z: x + z),
    ("c64 * 2.0", lambda m, x, z: z * 2.0), ("c64 * 2", lambda m, x, z: z * 2),
    ("int * 1j", lambda m, x, z: m.np.arange(3) * 1j),
    ("bf16 * 1j", lambda m, x, z: x.astype(m.np.bfloat16) * 1j),
    ("f16 + c64", lambda m, x, z: x.astype(np.float16) + z),
    ("weak complex", lambda m, x, z: m.np.asarray(1 + 2j)),
    ("complex scalars", lambda m, x, z: m.lax.mul(1j, 2 + 0j)),
    ("abs of c64", lambda m, x, z: m.np.abs(z)), ("real of c64", lambda m, x, z: m.np.real(z)),
    ("angle of weak", lambda m, x, z: m.np.angle(1j)),
    ("lax.complex", lambda m, x, z: m.lax.complex(x, x)),
    ("conj of f32", lambda m, x, z: m.lax.conj(x)),
    ("sum of c64", lambda m, x, z: m.np.sum(z)), ("mean of weak", lambda m, x, z: m.np.mean(1j)),
    ("result_type", lambda m, x, z: m.np.zeros((), m.np.result_type(x, 1j))),
]


@pytest.mark.parametrize("k", range(len(PROMOTIONS)), ids=[p[0] for p in PROMOTIONS])
def test_promotion(k):
    """Complex meets floats, ints and weakly typed scalars as in jax."""
    fn = PROMOTIONS[k][1]
    x, z = real_part(RNG, (3,), C64), DEFAULT(RNG, (3,), C64)
    compare_types(lambda x, z: fn(FG, x, z), lambda x, z: fn(JX, x, z), x, z)
    with x64():
        compare_types(lambda x, z: fn(FG, x, z), lambda x, z: fn(JX, x, z),
                      x.astype(np.float64), z.astype(np.complex128))


# --------------------------------------------------------------------------- edge values

EDGE = np.array([0, -0.0, 1j, -1, np.inf, -np.inf, complex(0, np.inf), complex(np.inf, np.inf),
                 complex(np.nan, 0), complex(-np.inf, 1), 1e30 + 1e30j, 1e-30j], np.complex64)


# Where NumPy's complex kernels give other special values than XLA's: (op, input index)
# -> fungrad's (NumPy's) value. sign: NumPy's z/|z| limit, XLA's nan; the others: XLA's
# formulas avoid an inf - inf that NumPy's do not.
NUMPY_EDGE_VALUES = {("sign", 4): 1, ("sign", 5): -1, ("sign", 6): 1j, ("sign", 9): -1,
                     ("reciprocal", 7): complex(np.nan, np.nan),
                     ("expm1", 4): complex(np.inf, np.nan),
                     ("square", 10): complex(-np.inf, np.inf)}


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs", "angle", "sign", "reciprocal",
                                  "tanh", "log1p", "expm1", "square", "sin", "arctan"])
def test_edge_values_are_silent(name):
    """Zeros, infinities and NaNs give jax's values (except the NumPy special values listed
    above) without NumPy warnings (which the test run turns into errors)."""
    out = np.asarray(getattr(fnp, name)(EDGE))
    ref = np.array(jit(getattr(jnp, name))(EDGE))
    for (op, i), value in NUMPY_EDGE_VALUES.items():
        if op == name:
            np.testing.assert_equal(out[i], np.asarray(value, out.dtype))
            ref[i] = out[i]
    assert out.dtype == ref.dtype
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=TOL[C64][0], atol=TOL[C64][1])
    assert np.array_equal(np.isnan(out), np.isnan(ref)), (out, ref)


def test_division_by_complex_zero_is_silent():
    z = np.array([0j, 1 + 1j, complex(np.inf, 0)], np.complex64)
    out = fnp.asarray(z) / np.complex64(0)
    assert np.asarray(out).dtype == C64
    fungrad.grad(lambda z: fnp.abs(z / z[1]).sum())(z)  # finite where z[1] != 0, no warning


# --------------------------------------------------------------------------- errors

def _lead(msg: str) -> str:
    """jax's message after the API name, up to the dtype: the part fungrad shares."""
    first = msg.split(".")[0] if "(" not in msg.split(".")[0] else msg.split("), but")[0]
    return first.split(" ", 1)[1]


ERRORS = [
    ("grad", lambda api, m: api.grad(lambda z: z * z)(np.complex64(1j))),
    ("grad", lambda api, m: api.grad(lambda z: z * z, holomorphic=True)(np.float32(1))),
    ("grad", lambda api, m: api.grad(lambda z: m.np.abs(z), holomorphic=True)(np.complex64(1j))),
    ("grad", lambda api, m: api.grad(lambda n: n * 1j, holomorphic=True)(np.int32(1))),
    ("value_and_grad", lambda api, m: api.value_and_grad(lambda z: m.np.sum(z), holomorphic=True)(
        np.ones(2, np.float32))),
    ("jacfwd", lambda api, m: api.jacfwd(lambda z: z)(np.ones(2, np.complex64))),
    ("jacfwd", lambda api, m: api.jacfwd(lambda z: z, holomorphic=True)(np.ones(2, np.float32))),
    ("jacfwd", lambda api, m: api.jacfwd(lambda z: m.np.abs(z), holomorphic=True)(
        np.ones(2, np.complex64))),
    ("jacfwd", lambda api, m: api.jacfwd(lambda n: n * 2.0)(np.ones(2, np.int32))),
    ("jacrev", lambda api, m: api.jacrev(lambda x: x * 1j)(np.ones(2, np.float32))),
    ("jacrev", lambda api, m: api.jacrev(lambda z: z, holomorphic=True)(np.ones(2, np.float32))),
    ("jacrev", lambda api, m: api.jacrev(lambda n: n * 2.0)(np.ones(2, np.int32))),
    ("hessian", lambda api, m: api.hessian(lambda z: m.np.sum(m.np.abs(z)))(
        np.ones(2, np.complex64))),
]


@pytest.mark.parametrize("k", range(len(ERRORS)), ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_dtype_errors_match_jax(k):
    """Same exception class as jax and jax's message, naming the function."""
    fn = ERRORS[k][1]
    with pytest.raises(Exception) as ref:
        fn(jax, JX)
    with pytest.raises(type(ref.value)) as got:
        fn(fungrad, FG)
    assert _lead(str(ref.value)) in str(got.value)
    assert "<lambda>" in str(got.value)


# ----------------------------------------------------- infinities, NaNs and truth of complex values

EDGES = np.array([0, -0.0 + 0j, 1 + 1j, -1 - 2j, complex(np.inf, 0), complex(0, np.inf),
                  complex(np.nan, 1), 0.5j, complex(-np.inf, np.inf), complex(np.nan, np.inf),
                  complex(np.inf, np.nan), complex(-np.inf, 1)], np.complex64)
EDGE_OPS = {  # a complex number is infinite if either part is, finite if both are
    "isfinite": lambda m, x: m.isfinite(x), "isinf": lambda m, x: m.isinf(x),
    "isnan": lambda m, x: m.isnan(x), "isclose": lambda m, x: m.isclose(x, x[::-1]),
    "nan_to_num": lambda m, x: m.nan_to_num(x),  # each part replaced on its own
    "nan_to_num_values": lambda m, x: m.nan_to_num(x, nan=1.0, posinf=5.0, neginf=-5.0),
    "astype_bool": lambda m, x: x.astype(bool),  # true when either part is nonzero
    "compress": lambda m, x: m.compress(x, m.arange(12)),
    "extract": lambda m, x: m.extract(x, m.arange(12)),
    "select": lambda m, x: m.select([x], [m.arange(12.0)], -1.0),
}


@pytest.mark.parametrize("name", sorted(EDGE_OPS))
def test_infinities_nans_and_truth_of_complex_values_as_jax(name):
    want = np.asarray(EDGE_OPS[name](jnp, jnp.asarray(EDGES)))
    runs = [lambda x: EDGE_OPS[name](fnp, x)]
    if name not in ("compress", "extract"):  # data-dependent sizes: no jit without size=
        runs.append(fungrad.jit(runs[0]))
    for run in runs:
        got = np.asarray(run(fnp.asarray(EDGES)))
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), (got, want)


def test_isposinf_of_complex_raises_as_jax():
    for name in ("isposinf", "isneginf"):
        with pytest.raises(ValueError, match=f"{name}: not defined for complex"):
            getattr(fnp, name)(fnp.asarray(EDGES))


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    """Complex values built from parts with ties, signed zeros, NaN and infinity."""
    parts = np.array([0.0, -0.0, 1.0, -1.0, np.nan, np.inf, 2.0], np.float32)
    rng = np.random.default_rng(5)
    a, b = (np.array([complex(r, i) for r, i in rng.choice(parts, (60, 2))], np.complex64)
            for _ in range(2))
    return a, b


@pytest.mark.parametrize("name", ["greater", "greater_equal", "less", "less_equal", "maximum",
                                  "minimum", "rint", "lax.max", "lax.min"])
def test_complex_order_and_rounding_as_jax(name):
    """Ordering is lexicographic (real part first, a NaN never wins, a tie of maximum or
    minimum returns the second operand) and ``rint`` rounds each part, as in JAX."""
    a, b = _pairs()
    args = (a,) if name == "rint" else (a, b)
    ref, ours = (jax.lax, lax) if name.startswith("lax.") else (jnp, fnp)
    name = name.removeprefix("lax.")
    want = np.asarray(getattr(ref, name)(*args))
    for run in (getattr(ours, name), fungrad.jit(getattr(ours, name))):
        got = np.asarray(run(*args))
        assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
        for part in ((np.real, np.imag) if want.dtype.kind == "c" else ()):
            signs = ~np.isnan(part(want))
            assert np.array_equal(np.signbit(part(got))[signs], np.signbit(part(want))[signs])
