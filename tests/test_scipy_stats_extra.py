"""fungrad.scipy.stats's summary statistics (mode, rankdata, sem) and gaussian_kde against
jax.scipy.stats: values and dtypes (eager and under jit), derivatives, vmap, resampling
draws for the same key, and the errors."""
from __future__ import annotations

import jax
import jax.numpy as jjnp
import jax.scipy.stats as jst
import numpy as np
import pytest
from harness import (GRAD_TOL, QUICK_COMPILE, assert_same, compare, compare_transforms, rand,
                     to_fg, x64)

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.stats as fst

RNG = np.random.default_rng(0)
TIES = np.array([[1, 2, 1, 3, 2, 1], [3, 1, 3, 2, 1, 3], [1, 2, 2, 3, 1, 2]], np.int32)


# --------------------------------------------------------------------------- mode

def _quick(ref):
    """jax's reference compiled once, quickly (one program for a whole table of cases)."""
    return lambda *args: jax.jit(ref, compiler_options=QUICK_COMPILE)(*args)


def compare_quick(fg_fn, jax_fn, *args):
    """``compare`` against ``jax_fn`` run by ``_quick``: one compilation instead of one per
    primitive (jax's eager mode) or one with XLA's slow default optimisations (``jit_ref``)."""
    compare(fg_fn, jax_fn, *args, ref_out=_quick(jax_fn)(*args))


@pytest.mark.parametrize("keepdims", [False, True])
def test_mode(keepdims):
    def table(lib):
        return lambda x, y: tuple(tuple(lib.scipy.stats.mode(v, axis, keepdims=keepdims))
                                  for v in (x, y) for axis in (0, 1, -1, None))
    args = (TIES, TIES.astype(np.float32) / 2)
    compare(table(fungrad), table(jax), *args, ref_out=_quick(table(jax))(*args))
    assert type(fst.mode(TIES)).__name__ == "ModeResult"
    assert fst.mode(TIES)._fields == ("mode", "count")


def test_mode_scalar_3d_and_vmap():
    compare_quick(lambda x: tuple(fst.mode(x)), lambda x: tuple(jst.mode(x)), np.float32(2.5))
    x = (rand(RNG, (3, 4, 5)) * 2).round().astype(np.float32)
    compare_quick(lambda x: tuple(fst.mode(x, 1)), lambda x: tuple(jst.mode(x, 1)), x)
    assert_same(tuple(fungrad.vmap(fst.mode)(jnp.asarray(x))),
                tuple(_quick(jax.vmap(jst.mode))(x)))


def test_mode_nan_policy_errors():
    with pytest.raises(ValueError, match="Illegal nan_policy value 'bogus'"):
        fst.mode(TIES, nan_policy="bogus")
    with pytest.raises(NotImplementedError, match="omit is not implemented"):
        fst.mode(TIES, nan_policy="omit")
    with pytest.raises(NotImplementedError, match="JIT compile `mode`"):
        fst.mode(TIES, nan_policy="raise")


# --------------------------------------------------------------------------- rankdata

def test_rankdata():
    def table(lib):
        rank = lib.scipy.stats.rankdata
        return lambda x, y, z: tuple(
            (rank(x, m), rank(x, m, axis=0), rank(x, m, axis=1), rank(y, m), rank(y, m, axis=-1),
             rank(z, m)) for m in ["average", "min", "max", "dense", "ordinal"])
    args = (TIES, TIES.astype(np.float32) * -1.5, np.array([10, 30, 20], np.int32))
    compare(table(fungrad), table(jax), *args, ref_out=_quick(table(jax))(*args))


def test_rankdata_nan_and_vmap():
    x = np.array([3., np.nan, 1.], np.float32)
    compare_quick(fst.rankdata, jst.rankdata, x)
    compare_quick(lambda x: fst.rankdata(x, axis=1), lambda x: jst.rankdata(x, axis=1),
                  np.array([[3., np.nan, 1.], [2., 2., 1.]], np.float32))
    y = TIES.astype(np.float32)
    assert_same(fungrad.vmap(lambda r: fst.rankdata(r, "min"))(jnp.asarray(y)),
                _quick(jax.vmap(lambda r: jst.rankdata(r, "min")))(y))


def test_rankdata_errors():
    with pytest.raises(ValueError, match="unknown method 'bogus'"):
        fst.rankdata(TIES, "bogus")
    with pytest.raises(NotImplementedError, match="JIT compile `rankdata`"):
        fst.rankdata(TIES, nan_policy="raise")


# --------------------------------------------------------------------------- sem

@pytest.mark.parametrize("axis,ddof,keepdims", [(0, 1, False), (1, 0, True), (None, 1, False),
                                                (-1, 2, False)])
def test_sem(axis, ddof, keepdims):
    x = np.array([[1, 2, 3, np.nan, 4, 2], [4, 5, 4, 3, np.nan, 1], [7, np.nan, 8, 7, 9, 2]],
                 np.float32)
    for policy in ["propagate", "omit"]:
        compare(lambda x: fst.sem(x, axis, ddof, policy, keepdims=keepdims),
                lambda x: jst.sem(x, axis, ddof, policy, keepdims=keepdims), x)
    compare(lambda x: fst.sem(x, axis, ddof, keepdims=keepdims),
            lambda x: jst.sem(x, axis, ddof, keepdims=keepdims), TIES)
    with pytest.raises(ValueError, match="raise is not supported"):
        fst.sem(x, nan_policy="raise")


def test_sem_transforms_and_float64():
    compare_transforms(lambda x: fst.sem(x, 1), lambda x: jst.sem(x, 1), [rand(RNG, (3, 5))],
                       RNG, fused_ref=True)
    with x64():
        compare(fst.sem, jst.sem, rand(RNG, (4, 3), np.float64))


# --------------------------------------------------------------------------- gaussian_kde

DATA_1D = rand(RNG, (7,))
DATA_2D = rand(RNG, (2, 9))
WEIGHTS = RNG.uniform(0.5, 2.0, 9).astype(np.float32)
POINTS_2D = rand(RNG, (2, 4))


def _kde_summary(lib, data, weights, bw, points):
    kde = lib.scipy.stats.gaussian_kde(data, bw_method=bw, weights=weights)
    return (kde.neff, kde.weights, kde.covariance, kde.inv_cov, kde.evaluate(points),
            kde(points), kde.pdf(points), kde.logpdf(points),
            kde.integrate_gaussian(points[:, 0], kde.covariance * 0.5), kde.integrate_kde(kde))


def test_gaussian_kde_2d():
    def table(lib):
        return lambda d, w, p: tuple(
            _kde_summary(lib, d, w, bw, p)
            for bw in [None, "scott", "silverman", 0.4, lambda k: 0.3 * k.neff ** 0.1])
    args = (DATA_2D, WEIGHTS, POINTS_2D)
    compare(table(fungrad), table(jax), *args, ref_out=_quick(table(jax))(*args))


def test_gaussian_kde_1d():
    def both(lib):
        def f(d, p):
            kde = lib.scipy.stats.gaussian_kde(d)
            return (kde.pdf(p), kde.logpdf(p), kde.integrate_box_1d(-0.5, 1.0),
                    kde.integrate_gaussian(p[0], 0.7))
        return f
    compare_quick(both(fungrad), both(jax), DATA_1D, rand(RNG, (5,)))
    kde, ref = fst.gaussian_kde(jnp.asarray(DATA_1D)), jst.gaussian_kde(DATA_1D)
    assert (kde.d, kde.n) == (ref.d, ref.n) == (1, 7)


def test_gaussian_kde_point_shapes():
    kde = fst.gaussian_kde(jnp.asarray(DATA_2D))
    ref = _quick(lambda d, p: jst.gaussian_kde(d).pdf(p))(DATA_2D, POINTS_2D[:, 0])
    assert_same(kde.pdf(jnp.asarray(POINTS_2D[:, 0])), ref)  # (d,) point
    with pytest.raises(ValueError, match="points have dimension 3, dataset has dimension 2"):
        kde.pdf(jnp.ones((3, 2)))


def test_gaussian_kde_resample_draws_as_jax():
    kde = fst.gaussian_kde(jnp.asarray(DATA_2D), weights=jnp.asarray(WEIGHTS))
    refs = _quick(lambda d, w, key: [jst.gaussian_kde(d, weights=w).resample(key, shape)
                                     for shape in [(), (5,), (6,)]])(
        DATA_2D, WEIGHTS, jax.random.key(3))
    for shape, ref in zip([(), (5,)], refs):
        assert_same(kde.resample(fungrad.random.key(3), shape), ref)
    # jax 0.10 fails to broadcast for a 2-d shape; the draws are those of the flat shape
    assert_same(kde.resample(fungrad.random.key(3), (2, 3)), refs[2].reshape(2, 2, 3))


def test_gaussian_kde_transforms():
    def logpdf(lib):
        return lambda d, p: lib.scipy.stats.gaussian_kde(d).logpdf(p)
    compare_transforms(logpdf(fungrad), logpdf(jax), [DATA_2D, POINTS_2D], RNG, vmap_axes=(),
                       fused_ref=True)
    pts = rand(RNG, (3, 2, 4))
    kde = fst.gaussian_kde(jnp.asarray(DATA_2D))
    assert_same(fungrad.vmap(kde.pdf)(jnp.asarray(pts)),
                _quick(lambda d, p: jax.vmap(jst.gaussian_kde(d).pdf)(p))(DATA_2D, pts))


def test_gaussian_kde_is_a_pytree():
    kde = fst.gaussian_kde(jnp.asarray(DATA_2D), weights=jnp.asarray(WEIGHTS))

    def jax_refs(d, w, p):  # jax's kde (a pytree out of jit), its pdf and its gradient
        ref = jst.gaussian_kde(d, weights=w)
        return ref, ref.pdf(p), jax.grad(lambda k: jjnp.sum(k.logpdf(p)))(ref)
    ref, pdf, ref_grads = _quick(jax_refs)(DATA_2D, WEIGHTS, POINTS_2D)
    leaves = fungrad.tree.leaves(kde)
    assert_same(leaves, jax.tree.leaves(ref))
    out = fungrad.jit(lambda k, p: k.pdf(p))(kde, jnp.asarray(POINTS_2D))
    assert_same(out, pdf)
    grads = fungrad.grad(lambda k: jnp.sum(k.logpdf(jnp.asarray(POINTS_2D))))(kde)
    assert_same(grads.inv_cov, ref_grads.inv_cov, GRAD_TOL, check_weak=False)
    assert_same(grads.dataset, ref_grads.dataset, GRAD_TOL, check_weak=False)


def test_gaussian_kde_errors():
    with pytest.raises(ValueError, match="`dataset` input should have multiple elements."):
        fst.gaussian_kde(jnp.ones(1))
    with pytest.raises(NotImplementedError, match="complex data"):
        fst.gaussian_kde(jnp.ones(3, jnp.complex64))
    with pytest.raises(ValueError, match="`weights` input should be of length n"):
        fst.gaussian_kde(jnp.asarray(DATA_1D), weights=jnp.ones(3))
    with pytest.raises(ValueError, match="`weights` input should be one-dimensional."):
        fst.gaussian_kde(jnp.asarray(DATA_1D[:4]), weights=jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="`bw_method` should be 'scott', 'silverman'"):
        fst.gaussian_kde(jnp.asarray(DATA_1D), bw_method="bogus")
    kde = fst.gaussian_kde(to_fg(DATA_2D))
    with pytest.raises(ValueError, match=r"integrate_box_1d\(\) only handles 1D pdfs"):
        kde.integrate_box_1d(0.0, 1.0)
    with pytest.raises(ValueError, match="mean does not have dimension 2"):
        kde.integrate_gaussian(jnp.ones(3), jnp.eye(2))
    with pytest.raises(ValueError, match="KDEs are not the same dimensionality"):
        kde.integrate_kde(fst.gaussian_kde(to_fg(DATA_1D)))
    with pytest.raises(NotImplementedError, match="use `integrate_box_1d`"):
        kde.integrate_box(jnp.zeros(2), jnp.ones(2))
    with pytest.raises(NotImplementedError, match="changing the bandwidth"):
        kde.set_bandwidth("scott")
