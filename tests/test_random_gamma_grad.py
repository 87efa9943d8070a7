"""Gradients of the Gamma family's draws with respect to their shape parameters (implicit
reparameterisation) against jax.random: gamma, loggamma and the samplers built on them,
under grad, vmap and jit; and that the draws themselves are unchanged."""
from __future__ import annotations

import jax
import jax.random as jr
import numpy as np
import pytest
from harness import GRAD_TOL, QUICK_COMPILE

import fungrad
from fungrad import random as fr

F32 = np.float32
A = np.array([0.05, 0.3, 1.0, 2.5, 7.0, 40.0], F32)
W = np.linspace(-1.0, 2.0, A.size).astype(F32)  # weights, so sums of dirichlet draws vary
CASES = {
    "gamma": (A,), "loggamma": (A,), "beta": (A, A[::-1].copy()), "dirichlet": (A,),
    "chisquare": (A,), "t": (A,), "f": (A, A[::-1].copy()),
}


def same(ours, ref):
    r, a = GRAD_TOL[np.dtype(F32)]
    for u, v in zip(ours, ref):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=r, atol=a)


def objective(lib, name, seed):
    mod, key = (fr, fr.key) if lib == "fungrad" else (jr, jr.key)
    return lambda *p: (getattr(mod, name)(key(seed), *p) * W).sum()


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_jax(name):
    args = CASES[name]
    argnums = tuple(range(len(args)))
    ours = fungrad.grad(objective("fungrad", name, 3), argnums)(*args)
    ref = jax.jit(jax.grad(objective("jax", name, 3), argnums),
                  compiler_options=QUICK_COMPILE)(*args)
    same(ours, ref)


def test_gamma_grad_under_vmap_and_jit():
    seeds = np.arange(3, dtype=np.uint32)

    def per_key(lib):
        mod, rng = (fr, fungrad) if lib == "fungrad" else (jr, jax)
        g = rng.grad(lambda a, k: (mod.gamma(k, a) * W).sum())
        return rng.vmap(lambda s: g(A, mod.key(s)))
    ours = fungrad.jit(per_key("fungrad"))(seeds)
    ref = jax.jit(per_key("jax"), compiler_options=QUICK_COMPILE)(seeds)
    same([ours], [ref])


def test_draws_unchanged_by_differentiation():
    value, _ = fungrad.value_and_grad(lambda a: fr.gamma(fr.key(1), a).sum())(A)
    np.testing.assert_array_equal(np.asarray(value), np.asarray(fr.gamma(fr.key(1), A).sum()))
    np.testing.assert_array_equal(np.asarray(fr.gamma(fr.key(1), A)),
                                  np.asarray(jr.gamma(jr.key(1), A)))


def test_reparameterisation_gradient_is_unbiased():
    # E[x] = a for x ~ Gamma(a): the mean of the per-draw derivatives is 1
    a = np.full(4000, 2.5, F32)
    g = fungrad.grad(lambda a: fr.gamma(fr.key(7), a).sum())(a)
    assert abs(float(np.mean(g)) - 1.0) < 0.05
