"""fungrad.scipy.stats against jax.scipy.stats (eager and under jit) on points inside
and outside each support, plus scipy where jax's float32 result is an artefact, and
derivatives, vmap."""
from __future__ import annotations

import jax
import jax.scipy.stats as jst
import numpy as np
import pytest
import scipy.stats as sst
from harness import GRAD_TOL, QUICK_COMPILE, TOL, compare

import fungrad
import fungrad.scipy.stats as fst
from fungrad.test_util import check_grads

F32 = np.float32
X = np.array([-3, -0.5, 0, 0.2, 0.7, 1, 1.5, 4], F32)
K = np.array([-1, 0, 1, 2, 3, 5, 2.5, 10], F32)
Q = np.array([0.01, 0.3, 0.5, 0.9], F32)
LOC, SCALE = F32(0.3), F32(1.7)
CONT = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]

CASES = [
    ("norm", CONT, (X, LOC, SCALE)),
    ("norm", ["ppf", "isf"], (Q, LOC, SCALE)),
    ("expon", CONT, (X, F32(0.1), F32(2))),
    ("expon", ["ppf"], (np.array([0, 0.3, 1, 1.2], F32),)),
    ("laplace", ["logpdf", "pdf", "cdf"], (X, LOC, SCALE)),
    ("logistic", ["logpdf", "pdf", "cdf", "sf"], (X, LOC, SCALE)),
    ("logistic", ["ppf", "isf"], (Q,)),
    ("cauchy", CONT, (X, LOC, SCALE)),
    ("cauchy", ["ppf", "isf"], (Q, LOC, SCALE)),
    ("uniform", ["logpdf", "pdf", "cdf"], (X, F32(-1), F32(2))),
    ("uniform", ["ppf"], (np.array([-0.1, 0, 0.3, 1, 1.2], F32),)),
    ("poisson", ["logpmf", "pmf", "cdf"], (K, F32(2.5))),
    ("bernoulli", ["logpmf", "pmf"], (K, F32(0.3))),
    ("bernoulli", ["cdf"], (X, F32(0.3))),
    ("bernoulli", ["ppf"], (np.array([0, 0.2, 0.7, 0.8, 1], F32), F32(0.3))),
    ("geom", ["logpmf", "pmf"], (K, F32(0.3))),
    ("binom", ["logpmf", "pmf"], (K, F32(6), F32(0.3))),
    ("nbinom", ["logpmf", "pmf"], (K, F32(6), F32(0.3))),
    ("t", ["logpdf", "pdf"], (X, F32(3.5), LOC, SCALE)),
    ("gamma", CONT, (X, F32(2.5), F32(-0.2), F32(1.3))),
    ("chi2", CONT, (X, F32(3), F32(-0.2), F32(1.3))),
    ("beta", CONT, (X, F32(2.5), F32(1.5), F32(-1), F32(3))),
    ("pareto", CONT, (X, F32(2.5), F32(-1), F32(1.5))),
    ("pareto", ["ppf"], (np.array([-0.1, 0, 0.3, 0.9, 1, 1.2], F32), F32(2.5), LOC, SCALE)),
    ("truncnorm", CONT, (X, F32(-1), F32(2), LOC, F32(1.2))),
    ("truncnorm", ["logcdf", "logsf"], (X, F32(1), F32(3))),
]


@pytest.mark.parametrize("dist,fns,args", CASES, ids=[f"{c[0]}-{c[1][0]}" for c in CASES])
def test_against_jax(dist, fns, args):
    def all_of(module):  # one traced function per case keeps the test fast
        return lambda *a: tuple(getattr(module, fn)(*a) for fn in fns)
    ref = all_of(getattr(jst, dist))
    compare(all_of(getattr(fst, dist)), ref, *args,
            ref_out=jax.jit(ref, compiler_options=QUICK_COMPILE)(*args))


def test_cauchy_quantile_ends_follow_scipy():
    # jax's float32 tan(pi/2) gives +-2.3e7 at q = 0 and 1; the exact answer is -+inf
    q = np.array([0, 1], F32)
    np.testing.assert_array_equal(fst.cauchy.ppf(q), sst.cauchy.ppf(q))
    np.testing.assert_array_equal(fst.cauchy.isf(q), sst.cauchy.isf(q))


def test_multivariate():
    rng = np.random.default_rng(0)
    alpha = np.array([1.5, 2, 3], F32)
    xs = rng.dirichlet(alpha, size=4).T.astype(F32)
    compare(fst.dirichlet.logpdf, jst.dirichlet.logpdf, xs, alpha, jit_ref=True)
    compare(fst.dirichlet.pdf, jst.dirichlet.pdf, xs[:2], alpha, jit_ref=True)
    mean = rng.normal(size=3).astype(F32)
    a = rng.normal(size=(3, 3)).astype(F32)
    cov = a @ a.T + np.eye(3, dtype=F32)
    x = rng.normal(size=(5, 3)).astype(F32)
    for fn in ["logpdf", "pdf"]:
        ours, ref = getattr(fst.multivariate_normal, fn), getattr(jst.multivariate_normal, fn)
        compare(ours, ref, x, mean, cov, jit_ref=True)
        compare(ours, ref, x, mean, F32(2), jit_ref=True)
        compare(ours, ref, F32(1), F32(0.5), F32(2), jit_ref=True)
    with pytest.raises(ValueError, match="multivariate_normal.logpdf: cov must be"):
        fst.multivariate_normal.logpdf(x, mean, np.eye(2, dtype=F32))
    with pytest.raises(ValueError, match="dirichlet.logpdf: alpha"):
        fst.dirichlet.logpdf(xs, np.ones((3, 1), F32))


def test_derivatives_and_vmap():
    r, a = GRAD_TOL[np.dtype(F32)]
    x = X[1:6]
    for ours, ref in [(fst.norm.logcdf, jst.norm.logcdf), (fst.t.logpdf, jst.t.logpdf),
                      (fst.gamma.cdf, jst.gamma.cdf), (fst.truncnorm.logpdf,
                                                       jst.truncnorm.logpdf)]:
        extra = {fst.t.logpdf: (F32(3.5),), fst.gamma.cdf: (F32(2.5),),
                 fst.truncnorm.logpdf: (F32(-1), F32(2))}.get(ours, ())
        g = fungrad.vmap(fungrad.grad(ours), (0,) + (None,) * len(extra))(x, *extra)
        g_ref = jax.jit(jax.vmap(jax.grad(ref), (0,) + (None,) * len(extra)))(x, *extra)
        np.testing.assert_allclose(g, g_ref, rtol=r, atol=a, err_msg=ours.__module__)
    mean, cov = np.zeros(2, F32), np.array([[2, 0.5], [0.5, 1]], F32)
    g = fungrad.grad(fst.multivariate_normal.logpdf, (0, 1, 2))(np.ones(2, F32), mean, cov)
    g_ref = jax.jit(jax.grad(jst.multivariate_normal.logpdf, (0, 1, 2)))(np.ones(2, F32),
                                                                          mean, cov)
    for u, v in zip(g, g_ref):
        np.testing.assert_allclose(u, v, rtol=r, atol=a)


def test_check_grads():
    prev = fungrad.config.enable_x64
    fungrad.config.update("enable_x64", True)
    try:
        check_grads(fst.norm.logpdf, (np.array([0.3, -1.]), 0.2, 1.5), order=2)
        check_grads(fst.beta.logpdf, (np.array([0.3, 0.6]), 2.5, 1.5), order=1)
        check_grads(lambda m, c: fst.multivariate_normal.logpdf(np.ones(2), m, c),
                    (np.zeros(2), np.array([[2., 0.5], [0.5, 1.]])), order=1)
    finally:
        fungrad.config.update("enable_x64", prev)


def test_values_against_scipy():
    r, a = TOL[np.dtype(F32)]
    np.testing.assert_allclose(fst.gamma.cdf(X, F32(2.5)), sst.gamma.cdf(X, 2.5), rtol=r,
                               atol=a)
    np.testing.assert_allclose(fst.poisson.cdf(K, F32(2.5)), sst.poisson.cdf(K, 2.5), rtol=r,
                               atol=a)
    np.testing.assert_allclose(fst.truncnorm.logpdf(X, F32(-1), F32(2)),
                               sst.truncnorm.logpdf(X, -1, 2), rtol=r, atol=a)
