"""lax.reduce (monoids and the generic reduce_p), reduce_precision, optimization_barrier,
stack/unstack/tile, custom_root and custom_linear_solve against jax.lax: values, shapes,
dtypes, derivatives (and finite differences), vmap and jit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import GRAD_TOL, QUICK_COMPILE, assert_same, to_fg, to_jax

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad.test_util import check_grads

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 5, 4)).astype(np.float32)


# --------------------------------------------------------------------------- reduce

def logaddexp_reduce(L, lib, dims):
    return lambda x: L.reduce(x, -np.inf, lambda a, b: lib.logaddexp(a, b), dims)


def argmax_reduce(L, dims):
    def comp(a, b):
        pick_a = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] < b[1]))
        return L.select(pick_a, a[0], b[0]), L.select(pick_a, a[1], b[1])

    def f(x):
        idx = L.broadcasted_iota(np.int32, x.shape, dims[0])
        return L.reduce((x, idx), (-np.inf, np.int32(2 ** 31 - 1)), comp, dims)
    return f


@pytest.mark.parametrize("dims", [(1,), (0, 2), ()])
def test_generic_reduce_against_jax(dims):
    f_fg, f_jax = logaddexp_reduce(lax, fnp, dims), logaddexp_reduce(jax.lax, jnp, dims)
    xb = np.stack([X, 2 * X], 1)
    t = RNG.normal(size=X.shape).astype(np.float32)
    # jax's value, vmap, gradient and JVP as one program compiled quickly: eagerly, jax
    # compiles every primitive of the reduction's derivative rules (seconds)
    value, batched, g_jax, jvp_jax = jax.jit(lambda x, xb, t: (
        f_jax(x), jax.vmap(f_jax, in_axes=1)(xb), jax.grad(lambda x: (f_jax(x) ** 2).sum())(x),
        jax.jvp(f_jax, (x,), (t,))), compiler_options=QUICK_COMPILE)(*to_jax((X, xb, t)))
    assert_same(f_fg(to_fg(X)), value)
    assert_same(fungrad.jit(f_fg)(to_fg(X)), value)
    assert_same(fungrad.vmap(f_fg, in_axes=1)(to_fg(xb)), batched)
    g_fg = fungrad.grad(lambda x: (f_fg(x) ** 2).sum())(to_fg(X))
    assert_same(g_fg, g_jax, GRAD_TOL)
    assert_same(fungrad.jvp(f_fg, (to_fg(X),), (to_fg(t),)), jvp_jax, GRAD_TOL)
    if dims == (1,):
        check_grads(f_fg, (to_fg(X[:2, :3, :2].astype(np.float64)),), order=2)


@pytest.mark.parametrize("dims", [(1,), (2,)])
def test_variadic_reduce_against_jax(dims):
    x = np.round(X * 2) / 2  # ties, so the index rule matters
    assert_same(argmax_reduce(lax, dims)(to_fg(x)), argmax_reduce(jax.lax, dims)(to_jax(x)))
    assert_same(fungrad.jit(argmax_reduce(lax, dims))(to_fg(x)),
                argmax_reduce(jax.lax, dims)(to_jax(x)))


@pytest.mark.parametrize("op, init, dtype", [
    ("add", 0, np.float32), ("mul", 1, np.float32), ("max", -np.inf, np.float32),
    ("min", np.inf, np.float32), ("max", np.iinfo(np.int32).min, np.int32),
    ("bitwise_and", -1, np.int32), ("bitwise_or", 0, np.int32), ("bitwise_xor", 0, np.int32),
    ("bitwise_or", False, np.bool_), ("add", 1, np.float32)])
def test_monoid_reducers_as_jax(op, init, dtype):
    x = (X * 10).astype(dtype) if dtype != np.bool_ else X > 0

    def run(L, make_jaxpr):
        f = lambda x: L.reduce(x, dtype(init), getattr(L, op), (0, 2))
        prims = [e.primitive.name for e in make_jaxpr(f)(x).jaxpr.eqns]
        return f(x), prims
    (got, got_prims), (want, want_prims) = run(lax, fungrad.make_jaxpr), run(jax.lax,
                                                                           jax.make_jaxpr)
    assert_same(got, want)
    assert got_prims == want_prims


def test_reduce_weak_type_and_errors():
    assert_same(lax.reduce(to_fg(X), 0.0, lax.add, (1,)), jax.lax.reduce(to_jax(X), 0.0,
                                                                         jax.lax.add, (1,)))
    with pytest.raises(ValueError, match="tree structure"):
        lax.reduce((to_fg(X), to_fg(X)), 0.0, lax.add, (0,))
    with pytest.raises(TypeError, match="dtypes"):
        lax.reduce(to_fg(X), np.int32(0), lambda a, b: a * b, (0,))


# --------------------------------------------------------------------------- reduce_precision

@pytest.mark.parametrize("exponent_bits, mantissa_bits", [
    (5, 10), (8, 7), (4, 3), (5, 2), (8, 0), (1, 0), (11, 52), (8, 23), (3, 1)])
def test_reduce_precision_bits_match_jax(exponent_bits, mantissa_bits):
    bits = RNG.integers(0, 2 ** 32, size=4092, dtype=np.uint64).astype(np.uint32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-45, 65504, 65520,
                        1.0039, 3e38, -3e38], np.float32)
    x = np.concatenate([bits.view(np.float32), special]).reshape(-1, 6)
    got = np.asarray(lax.reduce_precision(to_fg(x), exponent_bits, mantissa_bits))
    want = np.asarray(jax.lax.reduce_precision(to_jax(x), exponent_bits, mantissa_bits))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16, np.float64])
def test_reduce_precision_other_dtypes(dtype):
    x = (X * 100).astype(dtype)
    with jax.enable_x64(dtype == np.float64), fungrad.enable_x64(dtype == np.float64):
        got = np.asarray(lax.reduce_precision(to_fg(x), 4, 3))
        want = np.asarray(jax.lax.reduce_precision(to_jax(x), 4, 3))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_reduce_precision_transforms():
    f_fg = lambda x: lax.reduce_precision(fnp.sin(x), 5, 10) * x
    f_jax = lambda x: jax.lax.reduce_precision(jnp.sin(x), 5, 10) * x
    assert_same(fungrad.grad(lambda x: f_fg(x).sum())(to_fg(X)),
                jax.grad(lambda x: f_jax(x).sum())(to_jax(X)), GRAD_TOL)
    assert_same(fungrad.vmap(f_fg)(to_fg(X)), jax.vmap(f_jax)(to_jax(X)))
    assert_same(fungrad.jit(f_fg)(to_fg(X)), jax.jit(f_jax)(to_jax(X)))
    with pytest.raises(ValueError, match="exponent_bits"):
        lax.reduce_precision(to_fg(X), 0, 3)
    with pytest.raises(TypeError):
        lax.reduce_precision(to_fg(X.astype(np.int32)), 5, 10)


# --------------------------------------------------------------------------- optimization_barrier

def barrier_fn(L, lib):
    def f(x, y):
        a, b = L.optimization_barrier((lib.sin(x), y))
        return a * b + lib.sin(x)
    return f


def test_optimization_barrier_values_and_transforms():
    y = X[::-1].copy()
    f_fg, f_jax = barrier_fn(lax, fnp), barrier_fn(jax.lax, jnp)
    args_fg, args_jax = (to_fg(X), to_fg(y)), (to_jax(X), to_jax(y))
    assert_same(f_fg(*args_fg), f_jax(*args_jax))
    assert_same(fungrad.jit(f_fg)(*args_fg), jax.jit(f_jax)(*args_jax))
    assert_same(fungrad.vmap(f_fg, (1, 1))(*args_fg), jax.vmap(f_jax, (1, 1))(*args_jax))
    assert_same(fungrad.grad(lambda *a: f_fg(*a).sum(), (0, 1))(*args_fg),
                jax.grad(lambda *a: f_jax(*a).sum(), (0, 1))(*args_jax), GRAD_TOL)
    assert_same(fungrad.jvp(f_fg, args_fg, args_fg), jax.jvp(f_jax, args_jax, args_jax),
                GRAD_TOL)
    check_grads(f_fg, (to_fg(X[0].astype(np.float64)), to_fg(y[0].astype(np.float64))),
                order=2)


def twin_barriers(L, lib):
    def f(x):
        a = L.optimization_barrier(lib.sin(x))
        b = L.optimization_barrier(lib.sin(x))  # the same computation: CSE must keep both
        c = L.optimization_barrier(lib.float32(2.0))  # constant folding must keep it
        return a + b + c
    return f


def test_optimization_barrier_survives_the_compiler():
    f = twin_barriers(lax, fnp)
    assert fungrad.jit(f).lower(1.0).as_text().count("optimization_barrier") == 3
    assert_same(fungrad.jit(f)(1.0), jax.jit(twin_barriers(jax.lax, jnp))(1.0))


# --------------------------------------------------------------------------- stack, unstack, tile

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack_unstack_against_jax(axis):
    xs = [X[0], X[1], X[2]]
    assert_same(lax.stack([to_fg(x) for x in xs], axis), jax.lax.stack([to_jax(x) for x in xs],
                                                                       axis))
    assert_same(lax.unstack(to_fg(X), axis), jax.lax.unstack(to_jax(X), axis))
    assert_same(fungrad.vmap(lambda x: lax.stack([x, 2 * x], axis))(to_fg(X)),
                jax.vmap(lambda x: jax.lax.stack([x, 2 * x], axis))(to_jax(X)))
    assert_same(fungrad.grad(lambda x: (lax.unstack(x, axis)[1] ** 2).sum())(to_fg(X)),
                jax.grad(lambda x: (jax.lax.unstack(x, axis)[1] ** 2).sum())(to_jax(X)),
                GRAD_TOL)


@pytest.mark.parametrize("reps", [(2, 1, 3), (1, 1, 1), (0, 2, 1)])
def test_tile_against_jax(reps):
    assert_same(lax.tile(to_fg(X), reps), jax.lax.tile(to_jax(X), reps))
    assert_same(fungrad.jit(lambda x: lax.tile(x, reps))(to_fg(X)),
                jax.lax.tile(to_jax(X), reps))
    assert_same(fungrad.grad(lambda x: (lax.tile(x, reps) ** 2).sum())(to_fg(X)),
                jax.grad(lambda x: (jax.lax.tile(x, reps) ** 2).sum())(to_jax(X)), GRAD_TOL)
    with pytest.raises(ValueError, match="reps"):
        lax.tile(to_fg(X), (2, 2))
