"""Rewrites the compiler makes for speed: each must leave the results as they were.

``x**3``/``x**4`` become products sharing a square; a sum of zero-padded pieces tiling an
axis (the transpose of a ``split``) becomes one ``concatenate``, which compiled code writes
into a reused buffer.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad._core import core
from fungrad.compiler import passes, pipeline
from harness import tol

RNG = np.random.default_rng(0)


def names(closed):
    return [e.primitive.name for e in closed.eqns]


def eager_and_compiled(closed, *args):
    want = [np.asarray(o) for o in core.eval_jaxpr(closed.jaxpr, closed.consts, *args)]
    exe = pipeline.compile_jaxpr(closed)
    got = [np.asarray(o) for o in exe(*[np.asarray(a) for a in args])]
    return want, got, exe


@pytest.mark.parametrize("y", [3, 4])
def test_integer_power_shares_the_square_its_derivative_computes(y):
    x = RNG.uniform(-2, 2, (4, 64)).astype(np.float32)
    f = lambda x: fnp.sum(x ** y + x)  # noqa: E731
    closed = fungrad.make_jaxpr(fungrad.value_and_grad(f))(x)
    assert names(closed).count("integer_pow") == 2  # x**y, and x**(y-1) in the derivative
    opt = passes.optimize(closed)
    # y=3: one square serves the cube and the derivative; y=4: the square and x**3.
    assert names(opt).count("integer_pow") == 1, opt
    want, got, _ = eager_and_compiled(closed, x)
    for g, w in zip(got, want):  # the same products as the impl: bit for bit
        np.testing.assert_array_equal(g, w)
    ref = jax.value_and_grad(lambda x: jnp.sum(x ** y + x))(x)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, np.asarray(r), *tol(np.float32))


def test_the_transpose_of_a_split_is_a_concatenate():
    x = RNG.uniform(-1, 1, (8, 12)).astype(np.float32)

    def f(x):
        a, b, c = fnp.split(x, 3, axis=1)
        return fnp.sum(fnp.sin(a) * b + c * c)
    closed = fungrad.make_jaxpr(lambda x: fungrad.grad(f)(x) * 2.0)(x)
    assert "pad" in names(closed)
    opt = passes.optimize(closed)
    assert "pad" not in names(opt) and names(opt).count("concatenate") == 1, opt
    want, got, exe = eager_and_compiled(closed, x)
    np.testing.assert_array_equal(got[0], want[0])
    ref = jax.grad(lambda x: jnp.sum(jnp.sin(x[:, :4]) * x[:, 4:8] + x[:, 8:] ** 2))(x) * 2
    np.testing.assert_allclose(got[0], np.asarray(ref), *tol(np.float32))
    assert "_concatenate((" in exe.source and "out=" in exe.source.split("_concatenate(")[1]


@pytest.mark.parametrize("pieces", [
    [(0, 4), (8, 12)],          # a gap: stays padded
    [(0, 4), (2, 12)],          # overlapping pieces
])
def test_pieces_that_do_not_tile_stay_padded(pieces):
    x = RNG.uniform(-1, 1, (3, 12)).astype(np.float32)

    def f(x):
        return sum(fnp.sum(fnp.sin(x[:, lo:hi])) for lo, hi in pieces)
    closed = fungrad.make_jaxpr(fungrad.grad(f))(x)
    opt = passes.optimize(closed)
    assert "concatenate" not in names(opt) and "pad" in names(opt)
    want, got, _ = eager_and_compiled(closed, x)
    np.testing.assert_array_equal(got[0], want[0])


def test_pieces_padded_along_different_axes_stay_padded():
    x = RNG.uniform(-1, 1, (4, 4)).astype(np.float32)
    f = lambda x: fnp.sum(fnp.sin(x[:2, :])) + fnp.sum(fnp.cos(x[:, 2:]))  # noqa: E731
    opt = passes.optimize(fungrad.make_jaxpr(fungrad.grad(f))(x))
    assert "concatenate" not in names(opt)


@pytest.mark.parametrize("on_false, on_true, one_pass", [
    (0.0, 1.0, True),      # max's tie mask: pred * 1
    (1.0, 2.0, True),      # and its divisor: pred + 1
    (0.0, 0.5, True),
    (-3.0, -2.0, True),
    (-0.0, 1.0, False),    # -0.0 + 0 would be +0.0: the bitwise select
    (0.0, -1.0, False),    # 0 * -1 would be -0.0
    (1e8, 1e8 + 8, False),  # adjacent float32 values, 8 apart
    (3.0, -2.0, False),
])
def test_select_between_constants_is_exact(on_false, on_true, one_pass):
    x = RNG.uniform(-1, 1, (64, 128)).astype(np.float32)
    x[0, :4] = 0.0
    f, t = np.float32(on_false), np.float32(on_true)
    exe = fungrad.jit(lambda x: fungrad.lax.select_n(x > 0, f, t)).lower(x).compile()
    got = np.asarray(exe(x))
    want = np.where(x > 0, t, f)
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    select = exe._exe.fn.__globals__["_select"]
    assert ("_constant_select_fn" in select.__qualname__) == one_pass


def test_relu_derivative_masks_match_jax():
    x = RNG.uniform(-1, 1, (128, 64)).astype(np.float32)
    x[:3] = 0.0  # ties share the gradient
    f = lambda x: (fnp.maximum(x, 0.0) * x).sum()  # noqa: E731
    got = np.asarray(fungrad.jit(fungrad.grad(f))(x))
    want = np.asarray(jax.grad(lambda x: (jnp.maximum(x, 0.0) * x).sum())(x))
    np.testing.assert_array_equal(got, want)
