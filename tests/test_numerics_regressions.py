"""Regression tests for numerical corner cases found while comparing with jax: a cube
of a 0-d input under ``jit`` (the compiled ``integer_pow`` wrote into a NumPy scalar)
and ``vmap`` of a sum of a batched and an unbatched tangent (``add_any``)."""
from __future__ import annotations

import jax
import jax.numpy as jjnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.interpreters import ad


@pytest.mark.parametrize("power", [2, 3, 4])
@pytest.mark.parametrize("x", [np.float32(2.0), np.float32(-1.5),
                               np.array([1.0, -2.0], np.float32)])
def test_jit_integer_power_of_0d_and_1d(power, x):
    ours = fungrad.jit(lambda v: v ** power)(jnp.asarray(x))
    ref = jax.jit(lambda v: v ** power)(jjnp.asarray(x))
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


def test_jit_cube_of_0d_numpy_scalar():
    assert float(fungrad.jit(lambda v: v ** 3)(jnp.float32(2.0))) == 8.0


def test_vmap_add_any_of_batched_and_unbatched():
    x = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    y = np.array([10.0, 20.0], np.float32)
    out = fungrad.vmap(lambda a: ad.add_any_p.bind(y.reshape(1, 2)[0], a))(x)
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(np.asarray(out), x + y)
    out = fungrad.vmap(lambda a: ad.add_any_p.bind(a, jnp.asarray(y)))(x)
    np.testing.assert_array_equal(np.asarray(out), x + y)


def test_grad_of_vmap_with_unbatched_tangent():
    w = np.array([1.0, 2.0, 3.0], np.float32)
    xs = np.arange(12.0, dtype=np.float32).reshape(4, 3)

    def f(np_):
        return lambda v: np_.sum(v * w + v @ w)
    ours = fungrad.vmap(fungrad.grad(f(jnp)))(xs)
    ref = jax.vmap(jax.grad(f(jjnp)))(xs)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-6)
