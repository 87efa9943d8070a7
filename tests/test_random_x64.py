"""float64 draws with x64 enabled, bit for bit against jax.random (many keys and shapes),
and the float64 pieces of XLA's CPU math they rest on: the fused multiply-add (rounded
once), the C library's log and tan, and XLA's rational log1p.

XLA's float64 erf_inv (Giles' polynomials, one FMA per Horner step) and erf (the C
library's) make normal and truncated_normal bit-exact; its float64 exp (Cephes' rational
approximation) lognormal and pareto; its float64 FMAs and the C library's pow wald and
the Gamma family (gamma, loggamma, beta, chisquare, f, t, generalized_normal; XLA's rsqrt in
the rejection loop's constant, see GAMMA_SAMPLERS).
"""
from __future__ import annotations

from fractions import Fraction

import jax
import numpy as np
import pytest

import fungrad
import fungrad.random as fr
from fungrad.random import _xla_math as xm
from harness import x64

F64 = np.float64
SEEDS = [0, 1, 42, 2 ** 40 + 7]
SHAPES = [(), (3,), (5, 7), (1000,)]


@pytest.fixture(autouse=True)
def _x64():
    with x64():
        yield


def assert_bits_equal(fg, ref):
    a, b = np.asarray(fg), np.asarray(ref)
    assert a.shape == b.shape and a.dtype == b.dtype == F64, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


SAMPLERS = {
    "uniform": lambda m, k, s: m.uniform(k, s, F64),
    "uniform_range": lambda m, k, s: m.uniform(k, s, F64, -2.5, 3.25),
    "exponential": lambda m, k, s: m.exponential(k, s, F64),
    "laplace": lambda m, k, s: m.laplace(k, s, F64),
    "gumbel": lambda m, k, s: m.gumbel(k, s, F64),
    "gumbel_high": lambda m, k, s: m.gumbel(k, s, F64, mode="high"),
    "logistic": lambda m, k, s: m.logistic(k, s, F64),
    "cauchy": lambda m, k, s: m.cauchy(k, s, F64),
    "rayleigh": lambda m, k, s: m.rayleigh(k, 2.0, s, F64),
    "normal": lambda m, k, s: m.normal(k, s, F64),
    "truncated_normal": lambda m, k, s: m.truncated_normal(k, -1.5, 2.0, s, F64),
    "truncated_normal_tail": lambda m, k, s: m.truncated_normal(k, 0.3, np.inf, s, F64),
    "lognormal": lambda m, k, s: m.lognormal(k, 0.7, s, F64),
    "pareto": lambda m, k, s: m.pareto(k, 2.5, s, F64),
    "weibull_min": lambda m, k, s: m.weibull_min(k, 1.5, 0.8, s, F64),
    "triangular": lambda m, k, s: m.triangular(k, 0.0, 0.3, 1.0, s, F64),
    "wald": lambda m, k, s: m.wald(k, 1.5, s, F64),
}


# The Gamma family runs a rejection loop per element: smaller draws keep the tests fast. The
# reference is jax.random called as users call it, its parameters traced: XLA then computes
# the loop's c = 1/3 / sqrt(a - 1/3) as 1/3 * rsqrt(a - 1/3), which fungrad repeats
# (_xla_rsqrt); under an outer jax.jit with constant parameters XLA would fold c instead.
GAMMA_SAMPLERS = {
    "gamma": lambda m, k, s: m.gamma(k, 2.5, s, F64),
    "gamma_small_a": lambda m, k, s: m.gamma(k, 0.3, s, F64),
    "loggamma": lambda m, k, s: m.loggamma(k, 0.3, s, F64),
    "beta": lambda m, k, s: m.beta(k, 2.0, 3.0, s, F64),
    "chisquare": lambda m, k, s: m.chisquare(k, 3.0, s, F64),
    "f": lambda m, k, s: m.f(k, 3.0, 5.0, s, F64),
    "t": lambda m, k, s: m.t(k, 4.0, s, F64),
    "generalized_normal": lambda m, k, s: m.generalized_normal(k, 1.5, s, F64),
}


@pytest.mark.parametrize("name", sorted(GAMMA_SAMPLERS))
def test_float64_gamma_family_bit_exact(name):
    draw = GAMMA_SAMPLERS[name]
    assert_bits_equal(draw(fr, fr.PRNGKey(7), (500,)),
                      draw(jax.random, jax.random.PRNGKey(7), (500,)))
    for shape in SHAPES[:3]:
        for seed in SEEDS[1:]:
            assert_bits_equal(draw(fr, fr.PRNGKey(seed), shape),
                              draw(jax.random, jax.random.PRNGKey(seed), shape))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_float64_draws_bit_exact(name):
    draw = SAMPLERS[name]
    ref = jax.jit(lambda k: draw(jax.random, k, (50_000,)))
    assert_bits_equal(draw(fr, fr.PRNGKey(7), (50_000,)), ref(jax.random.PRNGKey(7)))
    for seed in SEEDS:
        for shape in SHAPES:
            assert_bits_equal(draw(fr, fr.PRNGKey(seed), shape),
                              draw(jax.random, jax.random.PRNGKey(seed), shape))


def test_float64_draws_under_jit_and_vmap():
    keys = fr.split(fr.PRNGKey(3), 4)
    out = fungrad.jit(fungrad.vmap(lambda k: fr.exponential(k, (6,), F64)))(keys)
    ref = jax.vmap(lambda k: jax.random.exponential(k, (6,), F64))(
        jax.random.split(jax.random.PRNGKey(3), 4))
    assert_bits_equal(out, ref)


def test_fma64_rounds_once():
    """Against exact rational arithmetic, including products cancelled by ``c``."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(4000), rng.standard_normal(4000)
    c = np.concatenate([rng.standard_normal(2000), -(a[2000:] * b[2000:])])
    c[-1000:] = np.nextafter(c[-1000:], 0)
    out = xm.fma64(np, a, b, c)
    exact = [float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c)]
    np.testing.assert_array_equal(out, exact)
    assert_bits_equal(out, jax.jit(lambda a, b, c: a * b + c)(a, b, c))  # XLA contracts it


def test_log_log1p_tan64_match_xla():
    u = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (20_000,), F64))
    assert_bits_equal(fungrad.jit(xm.xla_log1p)(-u), jax.jit(jax.lax.log1p)(-u))
    assert_bits_equal(fungrad.jit(xm.xla_log1p)(u * 3), jax.jit(jax.lax.log1p)(u * 3))
    assert_bits_equal(fungrad.jit(xm.xla_log)(u + 1e-300), jax.jit(jax.lax.log)(u + 1e-300))
    assert_bits_equal(fungrad.jit(xm.xla_tan)(u * 3 - 1.5), jax.jit(jax.lax.tan)(u * 3 - 1.5))


def test_erf_inv64_erf64_match_xla():
    """All three ranges of Giles' polynomials (w below 6.25, below 16, beyond), the edges
    (±1, zeros, denormals read as zeros), and erf over a wide range. Outside the domain
    (beyond ±1, NaN) both give NaN; the sign and payload of a NaN are not compared."""
    rng = np.random.default_rng(0)
    near_one = 1 - 10.0 ** rng.uniform(-16, 0, 20_000)
    edges = np.array([0.0, -0.0, 1.0, -1.0, 1e-300, 5e-324, -5e-324, np.nextafter(1, 0),
                      np.nextafter(-1, 0)])
    for x in (rng.uniform(-1, 1, 20_000), near_one, -near_one, edges):
        assert_bits_equal(fungrad.jit(xm.xla_erf_inv)(x), jax.jit(jax.lax.erf_inv)(x))
    assert np.isnan(fungrad.jit(xm.xla_erf_inv)(np.array([1.5, -2.0, np.nan, np.inf]))).all()
    x = np.concatenate([rng.standard_normal(20_000) * 3, rng.standard_normal(100) * 1e-200, edges,
                        [np.inf, -np.inf, 40.0, -40.0]])
    assert_bits_equal(fungrad.jit(xm.xla_erf)(x), jax.jit(jax.lax.erf)(x))


def test_exp64_matches_xla():
    """XLA's float64 exp over its whole range, the clamps at both ends and zeros."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(20_000) * 5, rng.uniform(-745, 710, 5_000),
                        [-708.39, -708.3964185322641, -708.0, 709.78, 709.782712893384,
                         709.7827128933841, np.inf, -np.inf, 0.0, -0.0, 1e-310, 1e-17]])
    assert_bits_equal(fungrad.jit(xm.xla_exp)(x), jax.jit(jax.lax.exp)(x))


def test_float64_gradients():
    g = fungrad.grad(lambda lo: fr.uniform(fr.PRNGKey(0), (5,), F64, lo, 2.0).sum())(0.5)
    g_ref = jax.grad(
        lambda lo: jax.random.uniform(jax.random.PRNGKey(0), (5,), F64, lo, 2.0).sum())(0.5)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-12)
    x = np.array([0.1, 0.5, 2.0])
    np.testing.assert_allclose(np.asarray(fungrad.vmap(fungrad.grad(xm.xla_log1p))(x)), 1 / (1 + x),
                               rtol=1e-15)
