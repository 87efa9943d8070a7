"""fungrad.scipy.stats's betabinom, gennorm, gumbel_l, gumbel_r, multinomial, vonmises and
wrapcauchy against jax.scipy.stats: every function on points inside and outside each support
and at invalid parameters (values, shapes, dtypes, weak types; eager and under jit), with
broadcast parameters, derivatives and vmap."""
from __future__ import annotations

import functools

import harness
import jax
import jax.scipy.stats as jst
import numpy as np
import pytest
import scipy.stats as sst
from harness import QUICK_COMPILE, TOL, assert_same, rand, to_jax

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.stats as fst
from fungrad.test_util import check_grads


def compare(fg_fn, jax_fn, *args):
    """``harness.compare`` against ``jax_fn`` under ``jax.jit``, compiled with
    ``QUICK_COMPILE`` (XLA's default optimisations take longer than these programs run)."""
    ref = jax.jit(jax_fn, compiler_options=QUICK_COMPILE)(*to_jax(args))
    harness.compare(fg_fn, jax_fn, *args, ref_out=ref)


compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)

RNG = np.random.default_rng(0)
F32 = np.float32
X = np.array([-3, -0.5, 0, 0.2, 0.7, 1, 1.5, 4], F32)
K = np.array([-1, 0, 1, 2, 3, 5, 2.5, 6, 7, 10], F32)
Q = np.array([-0.1, 0, 0.01, 0.3, 0.5, 0.9, 1, 1.2], F32)
ANGLES = np.array([-1, 0, 0.5, 1, 3, 2 * np.pi, 7], F32)
LOC, SCALE = F32(0.3), F32(1.7)
GUMBEL = ["logpdf", "pdf", "logcdf", "cdf", "sf", "logsf"]
# A column of parameters broadcast against a row of points, invalid values included.
SCALES = np.array([[1.7], [0.4], [0], [-1]], F32)

CASES = [
    ("betabinom", ["logpmf", "pmf"], (K, F32(6), F32(2.5), F32(1.5))),
    ("betabinom", ["logpmf", "pmf"], (K, F32(6), F32(0.5), F32(3), F32(1))),
    ("gennorm", ["logpdf", "pdf", "cdf"], (X, F32(1.5))),
    ("gennorm", ["logpdf", "pdf", "cdf"], (rand(RNG, (2, 6), low=-3, high=3),
                                           rand(RNG, (6,), low=0.3, high=4))),
    ("gennorm", ["logpdf", "pdf", "cdf"], (X, np.array([[0.5], [1], [2], [3.5]], F32))),
    ("gumbel_l", GUMBEL, (X, LOC, SCALE)),
    ("gumbel_l", ["ppf"], (Q, LOC, SCALE)),
    ("gumbel_r", GUMBEL, (X, LOC, SCALE)),
    ("gumbel_r", ["ppf"], (Q, LOC, SCALE)),
    ("vonmises", ["logpdf", "pdf"], (ANGLES, F32(2))),
    # large kappa, where I0 alone would overflow
    ("vonmises", ["logpdf", "pdf"], (ANGLES, np.array([[0.5], [50], [200]], F32))),
    ("wrapcauchy", ["logpdf", "pdf"], (ANGLES, F32(0.6))),
    ("wrapcauchy", ["logpdf", "pdf"], (rand(RNG, (3, 5), low=-1, high=7),
                                       rand(RNG, (5,), low=0.05, high=0.95))),
    ("wrapcauchy", ["logpdf", "pdf"], (ANGLES, np.array([[0.1], [0.95]], F32))),
]
# Invalid parameters (NaN) next to valid ones, broadcast against the points.
INVALID = [
    # n = 0 (mass 1 at k = 0), fractional n, then invalid n, a, b
    ("betabinom", ["logpmf", "pmf"],
     (K, np.array([[6], [0], [3.5], [-1], [4], [4], [4]], F32),
      np.array([[2.5], [1], [0.7], [2], [0], [-2], [1]], F32),
      np.array([[1.5], [2], [2], [1], [2], [2], [-1]], F32))),
    ("gumbel_l", GUMBEL, (X, F32(-1), SCALES)),
    ("gumbel_l", ["ppf"], (Q, F32(0), SCALES)),
    ("gumbel_r", GUMBEL, (X, F32(-1), SCALES)),
    ("gumbel_r", ["ppf"], (Q, F32(0), SCALES)),
    ("vonmises", ["logpdf", "pdf"], (ANGLES, np.array([[2], [0], [-1]], F32))),
    ("wrapcauchy", ["logpdf", "pdf"], (ANGLES, np.array([[0.6], [0], [1], [-0.5]], F32))),
]


def _all_of(module, fns):
    """One traced function per case (one jax compilation) returning every function's result."""
    return lambda *a: tuple(getattr(module, fn)(*a) for fn in fns)


@pytest.mark.parametrize("dist,fns,args", CASES, ids=[f"{c[0]}-{c[1][0]}" for c in CASES])
def test_against_jax(dist, fns, args):
    ref = _all_of(getattr(jst, dist), fns)
    harness.compare(_all_of(getattr(fst, dist), fns), ref, *args,
                    ref_out=jax.jit(ref, compiler_options=QUICK_COMPILE)(*args))


@pytest.mark.parametrize("dist,fns,args", INVALID, ids=[f"{c[0]}-{c[1][0]}" for c in INVALID])
def test_invalid_parameters_against_jax(dist, fns, args):
    # jax's reference eagerly: XLA's CPU exp, fused after a select of NaN under jax.jit, turns
    # the NaN of an invalid parameter into garbage (jax's pdf = exp(logpdf))
    harness.compare(_all_of(getattr(fst, dist), fns), _all_of(getattr(jst, dist), fns), *args)


WEAK = [("betabinom", "logpmf", (2.0, 5, 1.5, 2.0)), ("gennorm", "cdf", (0.5, 2)),
        ("gumbel_l", "logcdf", (0.5,)), ("gumbel_l", "ppf", (0.3, 1, 2)),
        ("gumbel_r", "logsf", (0.5, 0, 2)), ("gumbel_r", "ppf", (0.3,)),
        ("vonmises", "pdf", (1.0, 2)), ("wrapcauchy", "logpdf", (1.0, 0.5)),
        ("gumbel_r", "sf", (np.float32(0.5), 0, 2))]


@pytest.mark.parametrize("dist,fn,args", WEAK, ids=[f"{w[0]}-{w[1]}" for w in WEAK])
def test_python_scalars_weak_type(dist, fn, args):
    # all-Python-scalar arguments give a weakly typed float32 result, as in jax
    compare(getattr(getattr(fst, dist), fn), getattr(getattr(jst, dist), fn), *args)


def test_gumbel_tails_follow_scipy():
    # sf and logcdf in the thin tail: computed through expm1/log1mexp, so they keep the
    # digits that 1 - exp(...) loses in float32
    r, a = TOL[np.dtype(F32)]
    x = np.array([2, 5, 9, 15], F32)
    np.testing.assert_allclose(fst.gumbel_r.sf(x), sst.gumbel_r.sf(x), rtol=r, atol=0)
    np.testing.assert_allclose(fst.gumbel_r.logsf(x), sst.gumbel_r.logsf(x), rtol=r, atol=a)
    np.testing.assert_allclose(fst.gumbel_l.cdf(-x), sst.gumbel_l.cdf(-x), rtol=r, atol=0)
    np.testing.assert_allclose(fst.gumbel_l.logcdf(-x), sst.gumbel_l.logcdf(-x), rtol=r, atol=a)


def test_values_against_scipy():
    r, a = TOL[np.dtype(F32)]
    k = np.arange(7, dtype=F32)
    np.testing.assert_allclose(fst.betabinom.pmf(k, F32(6), F32(2.5), F32(1.5)),
                               sst.betabinom.pmf(k, 6, 2.5, 1.5), rtol=r, atol=a)
    np.testing.assert_allclose(fst.gennorm.cdf(X, F32(1.5)), sst.gennorm.cdf(X, 1.5), rtol=r,
                               atol=a)
    np.testing.assert_allclose(fst.vonmises.logpdf(X, F32(3)), sst.vonmises.logpdf(X, 3),
                               rtol=r, atol=a)
    np.testing.assert_allclose(fst.wrapcauchy.pdf(ANGLES[1:5], F32(0.6)),
                               sst.wrapcauchy.pdf(ANGLES[1:5], 0.6), rtol=r, atol=a)


# --------------------------------------------------------------------------- multinomial

P3 = np.array([0.2, 0.5, 0.3], F32)


@pytest.mark.parametrize("x,n,p", [
    (np.array([1, 2, 3], np.int32), np.int32(6), P3),
    (np.array([1, 2, 3], np.int32), np.int32(5), P3),  # counts do not add up to n: -inf
    (np.array([0, 4, 0], np.int32), 4, np.array([0, 1, 0], F32)),  # xlogy(0, 0) = 0
    (np.array([2, 2], np.int32), np.int32(4), np.array([[0.5, 0.5], [0.1, 0.9]], F32)),
    (np.array([1, 1], np.int32), 2, np.array([0.5, 0.5], F32)),
], ids=["sum-n", "sum-not-n", "zero-prob", "batched-p", "python-n"])
def test_multinomial(x, n, p):
    compare(_all_of(fst.multinomial, ["logpmf", "pmf"]),
            _all_of(jst.multinomial, ["logpmf", "pmf"]), x, n, p)


def test_multinomial_errors():
    for x, n in [(np.array([1., 2.], F32), 3), (np.array([1, 2], np.int32), 3.0)]:
        with pytest.raises(ValueError, match="x and n must be of integer type"):
            jst.multinomial.logpmf(x, n, P3[:2])
        with pytest.raises(ValueError,
                           match="multinomial.logpmf: x and n must be of integer type"):
            fst.multinomial.logpmf(x, n, P3[:2])
    with pytest.raises(TypeError):
        jst.multinomial.logpmf(np.array([1, 1], np.int32), 2, [0.5, 0.5])
    with pytest.raises(TypeError, match="multinomial.logpmf"):
        fst.multinomial.logpmf(np.array([1, 1], np.int32), 2, [0.5, 0.5])


# --------------------------------------------------------------------------- transforms

# One function per module at least: values, JVP and VJP in the floating-point arguments
# (inside the support, where jax's derivatives are finite), and vmap. jax's gumbel logpdf,
# pdf (in scale) and ppf (in p) write -log(.) as xlogy(-1, .), whose JVP rule fails on the
# integer -1: those derivatives are checked numerically below instead.
GUMBEL_ARGNUMS = {"logpdf": (0, 1), "pdf": (0, 1), "ppf": (1, 2)}
TRANSFORMS = [
    ("betabinom", "pmf", (np.array([0, 2, 4], F32), F32(4.5), F32(0.7), F32(3.0)), (1, 2, 3)),
    ("gennorm", "logpdf", (np.array([-1.5, -0.3, 0.4, 2], F32), F32(1.5)), None),
    ("gennorm", "cdf", (np.array([-1.5, -0.3, 0.4, 2], F32), F32(1.5)), None),
    ("gennorm", "pdf", (np.array([-1.5, -0.3, 0.4, 2], F32), F32(2.5)), None),
    *[(dist, fn, (X[1:7], LOC, SCALE), GUMBEL_ARGNUMS.get(fn))
      for dist in ("gumbel_l", "gumbel_r") for fn in GUMBEL],
    *[(dist, "ppf", (Q[2:6], LOC, SCALE), GUMBEL_ARGNUMS["ppf"])
      for dist in ("gumbel_l", "gumbel_r")],
    ("multinomial", "logpmf", (np.array([1, 2, 3], np.int32), np.int32(6), P3), None),
    ("multinomial", "pmf", (np.array([1, 0, 3], np.int32), np.int32(4), P3), None),
    ("vonmises", "logpdf", (ANGLES[:5], F32(2)), None),
    ("vonmises", "pdf", (ANGLES[:5], F32(0.7)), None),
    ("wrapcauchy", "logpdf", (ANGLES[1:6], F32(0.6)), None),
    ("wrapcauchy", "pdf", (ANGLES[1:6], F32(0.3)), None),
]


@pytest.mark.parametrize("dist,fn,args,argnums", TRANSFORMS,
                         ids=[f"{t[0]}-{t[1]}" for t in TRANSFORMS])
def test_transforms(dist, fn, args, argnums):
    compare_transforms(getattr(getattr(fst, dist), fn), getattr(getattr(jst, dist), fn),
                       list(args), RNG, argnums=argnums)


def test_gumbel_derivatives_jax_cannot_take():
    # fungrad's -log(scale) and -log(p) differentiate; checked against finite differences
    with harness.x64():
        for dist in (fst.gumbel_l, fst.gumbel_r):
            for fn in (dist.logpdf, dist.pdf):
                check_grads(fn, (np.array([-0.4, 0.3, 1.2]), 0.2, 1.5), order=2)
            check_grads(dist.ppf, (np.array([0.1, 0.5, 0.8]), 0.2, 1.5), order=2)


def test_betabinom_grad_in_k_is_zero():
    # k is floored: the derivative in k is 0, as in jax
    k = jnp.asarray(np.array([1., 2.], F32))
    g = fungrad.vmap(fungrad.grad(fst.betabinom.logpmf), (0, None, None, None))(
        k, 5., 2., 3.)
    g_ref = jax.jit(jax.vmap(jax.grad(jst.betabinom.logpmf), (0, None, None, None)),
                    compiler_options=QUICK_COMPILE)(np.array([1., 2.], F32), 5., 2., 3.)
    assert_same(g, g_ref, check_weak=False)
