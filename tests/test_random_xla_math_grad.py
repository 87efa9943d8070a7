"""Derivatives of the float32 XLA-algorithm primitives behind ``fungrad.random``, against jax.

Regression: the JVPs of ``xla_erf`` and ``xla_erf_inv`` once called the module's NumPy-level
``exp(xp, x)`` instead of ``lax.exp``, so ``grad`` through ``truncated_normal`` raised a
TypeError.
"""
import jax
import numpy as np
import pytest

import fungrad
import fungrad.random as fr
from fungrad.random import _xla_math as xm

X = np.array([-1.5, -0.3, 0.0, 0.4, 1.2], np.float32)


@pytest.mark.parametrize("ours, ref, x", [
    (xm.xla_erf, jax.lax.erf, X),
    (xm.xla_erf_inv, jax.lax.erf_inv, X / 2),
    (xm.xla_exp, jax.lax.exp, X),
    (xm.xla_log, jax.lax.log, np.abs(X) + 0.5),
    (xm.xla_log1p, jax.lax.log1p, np.abs(X)),
])
def test_xla_math_grad_matches_jax(ours, ref, x):
    got = fungrad.vmap(fungrad.grad(ours))(x)
    want = jax.vmap(jax.grad(ref))(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-6, atol=0)


@pytest.mark.parametrize("argnum", [0, 1])
def test_truncated_normal_grad_matches_jax(argnum):
    def ours(lower, upper):
        return fr.truncated_normal(fr.PRNGKey(3), lower, upper, (6,)).sum()

    def ref(lower, upper):
        return jax.random.truncated_normal(jax.random.PRNGKey(3), lower, upper, (6,)).sum()

    args = (np.float32(-1.0), np.float32(2.0))
    got = fungrad.grad(ours, argnums=argnum)(*args)
    want = jax.grad(ref, argnums=argnum)(*args)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=0)
