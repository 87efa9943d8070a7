"""jax.lax's special-function and integer names (zeta, igamma, igammac, igamma_grad_a,
random_gamma_grad, bessel_i0e, bessel_i1e, betainc, mulhi), jax.nn's log1mexp, sparse_plus
and sparse_sigmoid, and JAX's signed zeros in max, min, clamp and sign, against jax."""
from __future__ import annotations

import contextlib

import jax
import jax.lax as jlax
import jax.numpy as jjnp
import numpy as np
import pytest
from harness import GRAD_TOL, QUICK_COMPILE, TOL, assert_same, compare_transforms, float_dtypes, x64  # noqa: F401,E501

import fungrad
import fungrad.numpy as jnp
from fungrad import lax
from fungrad.test_util import check_grads

VALS = np.array([0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf], np.float32)


def same_bits(ours, ref):
    """Equal values, NaNs in the same places and the same sign on every non-NaN (zeros)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.array_equal(ours[~nan], ref[~nan])
    assert np.array_equal(np.signbit(ours[~nan]), np.signbit(ref[~nan]))


# --------------------------------------------------------------------------- signed zeros

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_signed_zeros(name, dtype):
    x, y = (v.ravel().astype(dtype) for v in np.meshgrid(VALS, VALS))
    ours, ref = getattr(lax, name), getattr(jlax, name)
    with x64() if dtype == np.float64 else contextlib.nullcontext():
        for fn in (ours, fungrad.jit(ours)):  # two arrays
            same_bits(fn(x, y), ref(x, y))
        for s in (0.0, -0.0, 2.0):  # a scalar (relu's max(x, 0)), and under jit a literal
            s = dtype(s)
            same_bits(ours(x, s), ref(x, s))
            same_bits(ours(s, x), ref(s, x))
            same_bits(fungrad.jit(lambda v: ours(v, s))(x), ref(x, s))
            same_bits(fungrad.jit(lambda v: ours(s, v))(x), ref(s, x))
        jnp_name = "maximum" if name == "max" else "minimum"
        same_bits(getattr(jnp, jnp_name)(x, y), getattr(jjnp, jnp_name)(x, y))


def test_sign_and_clamp_signed_zeros():
    for fn in (lax.sign, fungrad.jit(lax.sign), jnp.sign):
        same_bits(fn(VALS), jlax.sign(VALS))
    same_bits(lax.sign(np.array([-0, 0, 3, -2], np.int32)), jlax.sign(np.array([-0, 0, 3, -2])))
    for lo, x, hi in [(0.0, -0.0, 0.0), (-0.0, 0.0, 1.0), (-0.0, -0.0, 0.0), (-1.0, -0.0, 0.0)]:
        args = [np.float32(v) for v in (lo, x, hi)]
        same_bits(lax.clamp(*args), jlax.clamp(*args))
        same_bits(fungrad.jit(lax.clamp)(*args), jlax.clamp(*args))
    same_bits(fungrad.nn.relu(-VALS), jax.nn.relu(-VALS))
    same_bits(jnp.clip(-VALS, 0, 1), jjnp.clip(-VALS, 0, 1))


# --------------------------------------------------------------------------- jax.nn

@pytest.mark.parametrize("name", ["log1mexp", "sparse_plus", "sparse_sigmoid"])
def test_nn_functions(name):
    x = (np.array([1e-6, 0.3, 0.69, 0.7, 2.0, 5.0, 40.0], np.float32) if name == "log1mexp"
         else np.array([-3.0, -1.0, -0.5, 0.0, 0.4, 1.0, 2.5], np.float32))
    compare_transforms(getattr(fungrad.nn, name), getattr(jax.nn, name), [x],
                       np.random.default_rng(0))
    edge = np.array([0.0, np.inf], np.float32) if name == "log1mexp" else VALS
    assert_same(getattr(fungrad.nn, name)(edge), getattr(jax.nn, name)(edge))
    with x64():
        point = 0.5 if name == "log1mexp" else 0.3
        check_grads(getattr(fungrad.nn, name), (point,), order=2, modes=["fwd", "rev"])


# --------------------------------------------------------------------------- jax.lax's names

# a, x: the series (x <= max(1, a)), the continued fraction, large a, and the edges
GAMMA_AX = np.array([[0.5, 0.3], [1.0, 1.0], [2.0, 5.0], [5.0, 2.0], [0.1, 10.0], [3.0, 0.7],
                     [12.0, 14.0], [2.0, 0.0], [2.0, np.inf], [-1.0, 1.0], [2.0, -1.0],
                     [2.0, np.nan]], np.float32).T
BETA_ABX = np.array([[0.5, 0.5, 0.3], [1.0, 3.0, 0.2], [2.0, 2.0, 0.5], [5.0, 1.0, 0.9],
                     [0.3, 4.0, 0.01], [2.0, 2.0, 0.0], [2.0, 2.0, 1.0], [2.0, 2.0, 1.2],
                     [-1.0, 1.0, 0.5]], np.float32).T
BESSEL_X = np.array([-40, -8.5, -3, -0.5, -1e-8, 0, 1e-8, 2, 7.9, 8, 8.1, 30, 600, np.inf,
                     np.nan], np.float32)
ZETA_XQ = np.array([[2, 1], [3.5, 2.5], [1, 1], [0.5, 1], [2, -2], [3, -2], [4, -1.5],
                    [60, 3], [2, 0.3], [7, 0.5]], np.float32).T


@pytest.mark.parametrize("name,args", [
    ("igamma", GAMMA_AX), ("igammac", GAMMA_AX), ("igamma_grad_a", GAMMA_AX),
    ("random_gamma_grad", GAMMA_AX), ("betainc", BETA_ABX), ("bessel_i0e", BESSEL_X[None]),
    ("bessel_i1e", BESSEL_X[None]), ("zeta", ZETA_XQ)])
def test_values_against_jax_lax(name, args, dtype):
    args = [np.asarray(a, dtype) for a in args]
    ours = getattr(lax, name)
    ref = jax.jit(getattr(jlax, name), compiler_options=QUICK_COMPILE)  # one compilation
    scale = 20 if dtype == np.float32 else 1  # jax's float32 series lose a few more digits
    r, a = TOL[np.dtype(dtype)]
    for fn in (ours, fungrad.jit(ours)):
        out = np.asarray(fn(*args))
        assert out.dtype == dtype
        np.testing.assert_allclose(out, np.asarray(ref(*args)), rtol=scale * r, atol=scale * a)


def test_derivative_rules_against_jax():
    a, x = GAMMA_AX[:, :7]
    for name in ("igamma", "igammac"):
        ours = fungrad.vmap(fungrad.grad(getattr(lax, name), (0, 1)))(a, x)
        ref = jax.vmap(jax.grad(getattr(jlax, name), (0, 1)))(a, x)
        for g, r in zip(ours, ref):
            np.testing.assert_allclose(g, r, *GRAD_TOL[np.dtype(np.float32)])
    ba, bb, bx = BETA_ABX[:, :5]
    ours = fungrad.vmap(fungrad.grad(lax.betainc, 2))(ba, bb, bx)
    np.testing.assert_allclose(ours, jax.vmap(jax.grad(jlax.betainc, 2))(ba, bb, bx),
                               *GRAD_TOL[np.dtype(np.float32)])
    with pytest.raises(NotImplementedError, match="betainc: the derivative with respect to a"):
        fungrad.grad(lax.betainc)(2.0, 3.0, 0.4)
    for name in ("bessel_i0e", "bessel_i1e"):
        x = BESSEL_X[np.isfinite(BESSEL_X) & (np.abs(BESSEL_X) < 100)]
        ours = fungrad.vmap(fungrad.grad(getattr(lax, name)))(x)
        ref = jax.vmap(jax.grad(getattr(jlax, name)))(x)
        np.testing.assert_allclose(ours, ref, *GRAD_TOL[np.dtype(np.float32)])
    with pytest.raises(Exception, match="zeta"):
        fungrad.grad(lax.zeta)(2.0, 1.0)  # jax.lax.zeta has no derivative either
    with x64():
        check_grads(lambda a, x: lax.igamma(a, x), (2.5, 1.7), order=1, modes=["fwd", "rev"])
        check_grads(lambda a, x: lax.igammac(a, x), (0.7, 3.2), order=1, modes=["fwd", "rev"])
        check_grads(lax.bessel_i1e, (0.8,), order=2, modes=["fwd", "rev"])
        # igamma_grad_a against a central difference of igamma in a
        h = 1e-6
        for a, x in [(2.5, 1.7), (0.7, 3.2), (12.0, 14.0)]:
            fd = (float(lax.igamma(a + h, x)) - float(lax.igamma(a - h, x))) / (2 * h)
            np.testing.assert_allclose(float(lax.igamma_grad_a(a, x)), fd, rtol=1e-6)


def test_vmap_and_broadcasting():
    a = np.array([[0.5], [2.0], [7.0]], np.float32)
    x = np.array([0.3, 1.5, 6.0, 20.0], np.float32)
    for name in ("igamma", "random_gamma_grad", "zeta"):
        ours = fungrad.vmap(getattr(lax, name), in_axes=(0, None))(a, x)
        ref = jax.jit(getattr(jlax, name), compiler_options=QUICK_COMPILE)(a, x[None])
        np.testing.assert_allclose(ours, np.asarray(ref), rtol=2e-4)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.uint32, np.int64,
                                   np.uint64])
def test_mulhi(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)
    x = np.concatenate([np.array([info.min, info.max, 0, 1], dtype),
                        rng.integers(info.min, info.max, 60, dtype=dtype, endpoint=True)])
    y = np.concatenate([np.array([info.max, info.min, 5, info.max], dtype),
                        rng.integers(info.min, info.max, 60, dtype=dtype, endpoint=True)])
    with x64() if np.dtype(dtype).itemsize == 8 else contextlib.nullcontext():
        ref = np.asarray(jlax.mulhi(x, y))
        assert_same(lax.mulhi(x, y), ref)
        assert_same(fungrad.jit(lax.mulhi)(x, y), ref)
        assert_same(fungrad.vmap(lax.mulhi)(x.reshape(8, 8), y.reshape(8, 8)), ref.reshape(8, 8))
