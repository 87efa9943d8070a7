"""fungrad.random's distribution samplers against jax.random: the same bits for the same key
(10,000-element draws, one 100,000-element draw per XLA function: tan, log/log1p, exp, pow;
a second key with a 64-bit seed and a 2-d shape; narrow dtypes), jit and vmap, and the
distributions against scipy. The samplers whose last steps XLA reorders or rewrites (maxwell,
dirichlet, f, generalized_normal, ball, per-element Gamma parameters) are in
test_random_exact.py."""
import jax
import ml_dtypes
import numpy as np
import pytest
import scipy.stats

import fungrad
import fungrad.random as fr
from harness import GRAD_TOL, tol

# QR and Cholesky factors accumulate rounding like derivatives do.
LINALG_RTOL, LINALG_ATOL = tol(np.float32, GRAD_TOL)

BF16 = np.dtype(ml_dtypes.bfloat16)
N = 10_000
# One large draw per XLA function the samplers go through (tan, log and log1p, exp, pow).
LARGE = {"cauchy", "logistic", "lognormal", "weibull_min"}

# name -> draw(module, key, shape, dtype); the same call on jax.random and fungrad.random.
DRAWS = {
    "cauchy": lambda m, k, s, d: m.cauchy(k, s, d),
    "logistic": lambda m, k, s, d: m.logistic(k, s, d),
    "lognormal": lambda m, k, s, d: m.lognormal(k, 0.7, s, d),
    "lognormal_array": lambda m, k, s, d: m.lognormal(k, np.full(s, 1.3, np.float32), s, d),
    "pareto": lambda m, k, s, d: m.pareto(k, 2.5, s, d),
    "pareto_array": lambda m, k, s, d: m.pareto(k, np.full(s, 0.5, np.float32), s, d),
    "weibull_min": lambda m, k, s, d: m.weibull_min(k, 1.5, 0.8, s, d),
    "rayleigh": lambda m, k, s, d: m.rayleigh(k, 2.0, s, d),
    "wald": lambda m, k, s, d: m.wald(k, 1.3, s, d),
    "triangular": lambda m, k, s, d: m.triangular(k, -1., 0.3, 2., s, d),
    "rademacher": lambda m, k, s, d: m.rademacher(k, s, d),
    "gamma": lambda m, k, s, d: m.gamma(k, 2.0, s, d),
    "gamma_boosted": lambda m, k, s, d: m.gamma(k, 0.3, s, d),
    "beta": lambda m, k, s, d: m.beta(k, 0.5, 2.0, s, d),
    "chisquare": lambda m, k, s, d: m.chisquare(k, 3.0, s, d),
    "t": lambda m, k, s, d: m.t(k, 4.0, s, d),
}
GAMMA_FAMILY = {"gamma", "gamma_boosted", "beta", "chisquare", "t"}
# float16/bfloat16 draws that are bit-exact (XLA keeps some float16/bfloat16 chains in float32
# between operations: logistic in float16, lognormal and pareto in bfloat16 differ in the last bit).
NARROW = [(n, np.dtype(np.float16))
          for n in ["cauchy", "lognormal", "pareto", "rayleigh", "triangular"]]
NARROW += [(n, BF16) for n in ["cauchy", "logistic", "rayleigh", "triangular"]]


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind == "f" or a.dtype == BF16:
        ua, ub = a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")
        both_nan = np.isnan(a.astype(np.float32)) & np.isnan(b.astype(np.float32))
        bad = (ua != ub) & ~both_nan
    else:
        bad = a != b
    assert not bad.any(), (f"{int(bad.sum())} of {a.size} differ, "
                           f"e.g. {a[bad][:3]} vs {b[bad][:3]}")


@pytest.mark.parametrize("name", sorted(DRAWS))
@pytest.mark.parametrize("seed", [0, 2 ** 40 + 3])
def test_bits_equal_jax_float32(name, seed):
    draw = DRAWS[name]
    # The Gamma loop is exercised at length by gamma itself; its users only add a few steps.
    size = (2000 if name == "gamma" else 100 if name in GAMMA_FAMILY
            else 10 * N if name in LARGE else N)
    shape = (size,) if seed == 0 else (3, 5)
    dtype = np.int32 if name == "rademacher" else np.float32
    _same_bits(draw(fr, fr.PRNGKey(seed), shape, dtype),
               draw(jax.random, jax.random.PRNGKey(seed), shape, dtype))


@pytest.mark.parametrize("name, dtype", NARROW)
def test_bits_equal_jax_narrow(name, dtype):
    draw = DRAWS[name]
    _same_bits(draw(fr, fr.key(3), (2000,), dtype),
               draw(jax.random, jax.random.key(3), (2000,), dtype))


@pytest.mark.parametrize("name", ["lognormal", "wald", "pareto", "cauchy", "gamma"])
def test_jit_and_vmap_equal_jax(name):
    draw = DRAWS[name]
    f = fungrad.jit(lambda k: draw(fr, k, (4,), np.float32))
    _same_bits(f(fr.key(11)), draw(jax.random, jax.random.key(11), (4,), np.float32))
    keys = fr.split(fr.key(5), 6)
    batched = fungrad.vmap(lambda k: draw(fr, k, (4,), np.float32))(keys)
    ref = jax.vmap(lambda k: draw(jax.random, k, (4,), np.float32))(
        jax.random.split(jax.random.key(5), 6))
    _same_bits(batched, ref)


def test_lognormal_grad_wrt_sigma():
    key = fr.key(2)
    g = fungrad.grad(lambda s: fr.lognormal(key, s, (5,)).sum())(0.5)
    z = np.asarray(fr.normal(key, (5,)))
    np.testing.assert_allclose(float(g), float((z * np.exp(0.5 * z)).sum()),
                               rtol=tol(np.float32)[0])


def test_orthogonal_close_to_jax_and_orthonormal():
    for n, m in [(4, 4), (5, 3), (3, 5)]:
        q = np.asarray(fr.orthogonal(fr.key(1), n, (2,), m=m))
        ref = np.asarray(jax.random.orthogonal(jax.random.key(1), n, (2,), m=m))
        np.testing.assert_allclose(q, ref, rtol=LINALG_RTOL, atol=LINALG_ATOL)
        gram = q @ np.swapaxes(q, -1, -2) if n < m else np.swapaxes(q, -1, -2) @ q
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(min(n, m)), gram.shape),
                                   atol=LINALG_ATOL)
    jitted = fungrad.jit(lambda k: fr.orthogonal(k, 3))(fr.key(1))
    np.testing.assert_allclose(jitted, jax.random.orthogonal(jax.random.key(1), 3),
                               rtol=LINALG_RTOL, atol=LINALG_ATOL)


@pytest.mark.parametrize("method", ["cholesky", "eigh", "svd"])
def test_multivariate_normal(method):
    mean = np.array([1., -2., 0.5], np.float32)
    cov = np.array([[2., .5, 0.], [.5, 1., .2], [0., .2, .7]], np.float32)
    x = np.asarray(fr.multivariate_normal(fr.key(4), mean, cov, (20000,), method=method))
    np.testing.assert_allclose(x.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)
    if method == "cholesky":  # the same factor as jax up to rounding, so nearly the same draws
        ref = jax.random.multivariate_normal(jax.random.key(4), mean, cov, (50,))
        np.testing.assert_allclose(x[:50], ref, rtol=LINALG_RTOL, atol=LINALG_ATOL)
        jitted = fungrad.jit(lambda c: fr.multivariate_normal(fr.key(4), mean, c, (50,)))(cov)
        np.testing.assert_allclose(jitted, ref, rtol=LINALG_RTOL, atol=LINALG_ATOL)


def test_ks_against_scipy():
    key = fr.key(9)
    checks = [(fr.cauchy(key, (N,)), scipy.stats.cauchy.cdf),
              (fr.wald(key, 1.3, (N,)), scipy.stats.invgauss(1.3).cdf),
              (fr.maxwell(key, (N,)), scipy.stats.maxwell.cdf),
              (fr.triangular(key, -1., 0.3, 2., (N,)), scipy.stats.triang(1.3 / 3, -1, 3).cdf),
              (fr.gamma(key, 0.3, (2000,)), scipy.stats.gamma(0.3).cdf),
              (np.exp(np.asarray(fr.loggamma(key, 0.05, (2000,)), np.float64)),
               scipy.stats.gamma(0.05).cdf),
              (fr.f(key, 3.0, 5.0, (2000,)), scipy.stats.f(3, 5).cdf),
              (fr.generalized_normal(key, 1.5, (2000,)), scipy.stats.gennorm(1.5).cdf),
              (fr.dirichlet(key, np.array([0.5, 2.]), (2000,))[:, 0], scipy.stats.beta(0.5, 2).cdf)]
    for x, cdf in checks:
        assert scipy.stats.kstest(np.asarray(x, np.float64), cdf).pvalue > 1e-3


@pytest.mark.parametrize("call, exc", [
    (lambda: fr.lognormal(fr.key(0), np.ones(3), (2,)), ValueError),
    (lambda: fr.cauchy(fr.key(0), (2,), np.int32), ValueError),
    (lambda: fr.multivariate_normal(fr.key(0), np.zeros(2), np.eye(3)), ValueError),
    (lambda: fr.multivariate_normal(fr.key(0), np.zeros(2), np.eye(2), method="qr"), ValueError),
])
def test_bad_arguments(call, exc):
    with pytest.raises(exc):
        call()
