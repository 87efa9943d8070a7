"""fungrad.scipy.special's exponential integrals (expi, exp1, expn, sici, spence), dawsn,
fresnel, owens_t and bessel_jn against jax.scipy.special: values in float32 and float64
(eager and under jit, edges included), gradients against jax and finite differences, vmap
against jax.vmap.

jax's references run as programs compiled with ``QUICK_COMPILE`` (``quick``): XLA's default
optimisations take seconds to compile these functions' loops and series, and eagerly jax
compiles every primitive."""
from __future__ import annotations

import jax
import jax.scipy.special as jss
import numpy as np
import pytest
import scipy.special
from harness import float_dtypes  # noqa: F401 (fixture)
from harness import GRAD_TOL, QUICK_COMPILE, assert_same, compare, tol, to_jax

import fungrad
import fungrad.scipy.special as fss
from fungrad.test_util import check_grads

DTYPES = [np.float32, np.float64]
# both sides of every switch between series, continued fraction and asymptotic series
POS = np.array([0.05, 0.1, 0.37, 0.9, 1.0, 1.3, 2.0, 3.9, 4.2, 7.5, 15.0, 39.0, 41.0, 60.0])
REAL = np.concatenate([POS, -POS, [0.0, -0.0, np.inf, -np.inf, np.nan]])
SPENCE_X = np.array([0.0, 1e-7, 0.2, 0.49, 0.51, 0.9, 1.0, 1.2, 1.49, 1.51, 2.0, 2.5, 10.0,
                     1e4, -1.0, np.inf, np.nan])


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


def compare_quick(fg_fn, jax_fn, *args, ref_out=None):
    """``compare`` against ``jax_fn`` run by ``quick`` (or against ``ref_out``)."""
    if ref_out is None:
        ref_out = quick(jax_fn)(*to_jax(args))
    compare(fg_fn, jax_fn, *args, ref_out=ref_out)


def test_sici_values(dtype):
    compare_quick(fss.sici, jss.sici, REAL.astype(dtype))


def test_expi_values(dtype):
    compare_quick(fss.expi, jss.expi, np.concatenate([POS, -POS, [np.nan]]).astype(dtype))


def test_edges_as_scipy(dtype):
    """Where JAX 0.10 gives NaN (expi at 0 and ±inf, expn at inf) or 1/n (expn(n, 0)),
    SciPy's values."""
    edges = np.array([0.0, -np.inf, np.inf], dtype)
    np.testing.assert_array_equal(np.asarray(fss.expi(edges)), [-np.inf, 0.0, np.inf])
    np.testing.assert_array_equal(np.asarray(fss.exp1(edges)), [np.inf, np.nan, 0.0])
    got = fss.expn(np.array([0, 2, 3, 4], dtype)[:, None], edges)
    np.testing.assert_allclose(np.asarray(got), [[np.inf, np.nan, 0.0], [1.0, np.nan, 0.0],
                                                 [0.5, np.nan, 0.0], [1 / 3, np.nan, 0.0]],
                               *tol(dtype))


def test_small_arguments_as_scipy():
    """Near 0 (where JAX's batched continued fraction takes minutes to converge), against
    SciPy in float64."""
    x = np.array([1e-12, 1e-6, 1e-3])
    with fungrad.enable_x64(True):
        for name in ["expi", "exp1"]:
            np.testing.assert_allclose(np.asarray(getattr(fss, name)(x)),
                                       getattr(scipy.special, name)(x), *tol(np.float64))
        np.testing.assert_allclose(np.asarray(fss.expn(3, x)), scipy.special.expn(3, x),
                                   *tol(np.float64))


def test_spence_values(dtype):
    compare_quick(fss.spence, jss.spence, SPENCE_X.astype(dtype))


def test_dawsn_values(dtype):
    x = np.array([0.0, -0.0, 1e-5, 0.3, 1.0, 2.5, 5.9, 6.1, 10.0, 1e4, -2.0, -7.0, np.inf,
                  -np.inf, np.nan])
    compare_quick(fss.dawsn, jss.dawsn, x.astype(dtype))


def test_fresnel_values(dtype):
    x = np.array([0.0, -0.0, 1e-5, 0.3, 1.0, 1.49, 1.51, 2.5, 3.3, 5.9, 10.0, 100.0, -2.0,
                  np.inf, -np.inf, np.nan])
    compare_quick(fss.fresnel, jss.fresnel, x.astype(dtype))


def test_owens_t_values(dtype):
    h = np.array([0.0, 0.5, 1.0, 2.0, 5.0, -1.0, 0.3, 3.0, np.nan])[:, None]
    a = np.array([0.0, 0.2, 1.0, 1.5, 4.0, -0.7, -1.0, -3.0, np.nan])
    h, a = h.astype(dtype), a.astype(dtype)
    # jax.jit(jss.owens_t) in float64 after a float32 call keeps float32 quadrature nodes
    # (about 6e-9 off), so float64 is checked against SciPy
    ref = jax.numpy.asarray(scipy.special.owens_t(h, a)) if dtype == np.float64 else None
    compare_quick(fss.owens_t, jss.owens_t, h, a, ref_out=ref)


def test_exp1_values(dtype):
    compare_quick(fss.exp1, jss.exp1, np.concatenate([POS, [0.0, -1.0]]).astype(dtype))


def test_expn_values(dtype):
    n = np.array([0, 1, 2, 3, 5, 10, 30])[:, None]
    x = np.array([0.05, 0.7, 1.0, 1.5, 6.0, 25.0, -1.0])
    compare_quick(fss.expn, jss.expn, n.astype(dtype), x.astype(dtype))
    compare_quick(fss.expn, jss.expn, 2, np.array([0.5, 3.0], dtype))


GRAD_CASES = {"expi": np.array([-3.0, -0.5, 0.3, 2.5, 45.0]),
              "exp1": np.array([0.3, 1.0, 2.5, 6.0]),
              "spence": np.array([0.3, 0.8, 2.5, 4.0]),
              "sici": np.array([-6.0, -0.5, 0.3, 2.5, 9.0]),
              "dawsn": np.array([-3.0, -0.5, 0.3, 2.5, 9.0]),
              "fresnel": np.array([-2.2, -0.5, 0.3, 1.7, 3.1])}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grads(name):
    """Gradients against jax (float32), vmap(grad) against jax.vmap(jax.grad), and
    finite differences in float64."""
    def fg(x):
        out = getattr(fss, name)(x)
        return out[0] + 2 * out[1] if isinstance(out, tuple) else out

    def ref(x):
        out = getattr(jss, name)(x)
        return out[0] + 2 * out[1] if isinstance(out, tuple) else out
    x = GRAD_CASES[name].astype(np.float32)
    g = fungrad.vmap(fungrad.grad(fg))(x)
    assert_same(g, quick(jax.vmap(jax.grad(ref)))(x), GRAD_TOL)
    with fungrad.enable_x64(True):
        check_grads(lambda v: fg(v).sum(), [fungrad.numpy.asarray(GRAD_CASES[name])], 1,
                    modes=("fwd", "rev"))


def test_expn_grad_in_x():
    n, x = np.float32(3), np.array([0.4, 1.7, 5.0], np.float32)
    g = fungrad.vmap(fungrad.grad(fss.expn, 1), (None, 0))(n, x)
    assert_same(g, quick(jax.vmap(jax.grad(jss.expn, 1), (None, 0)))(n, x), GRAD_TOL)
    with fungrad.enable_x64(True):
        check_grads(lambda v: fss.expn(3, v).sum(), [fungrad.numpy.asarray(x.astype(np.float64))],
                    2, modes=("fwd", "rev"))


def test_bessel_jn_values(dtype):
    z = np.array([[0.5, 1.0, 2.5, 7.0, 15.0], [-3.0, 0.1, 20.0, 0.0, 30.0]], dtype)
    compare(lambda x: fss.bessel_jn(x, v=4), lambda x: jss.bessel_jn(x, v=4), z)
    compare(lambda x: fss.bessel_jn(x, v=2, n_iter=80), lambda x: jss.bessel_jn(x, v=2, n_iter=80),
            np.array([45.0, 60.0], dtype))


def test_bessel_jn_grad_and_vmap():
    z = np.array([0.7, 2.5, 9.0], np.float32)

    def loss(lib):
        return lambda x: (lib.bessel_jn(x, v=3).T * np.array([1.0, -2.0, 3.0, 0.5])).sum()
    g = fungrad.vmap(fungrad.grad(loss(fss)))(z)
    assert_same(g, quick(jax.vmap(jax.grad(loss(jss))))(z), GRAD_TOL)
    with fungrad.enable_x64(True):
        check_grads(loss(fss), [fungrad.numpy.asarray(z.astype(np.float64))], 1,
                    modes=("fwd", "rev"))
    with pytest.raises(TypeError):
        fss.bessel_jn(z, v=1.5)


def test_owens_t_grads():
    h = np.array([0.0, 0.5, -1.2, 2.0], np.float32)
    a = np.array([0.3, -2.0, 0.8, 1.5], np.float32)
    for i in range(2):
        g = fungrad.vmap(fungrad.grad(fss.owens_t, i))(h, a)
        assert_same(g, quick(jax.vmap(jax.grad(jss.owens_t, i)))(h, a), GRAD_TOL)
    with fungrad.enable_x64(True):
        check_grads(lambda u, v: fss.owens_t(u, v).sum(),
                    [fungrad.numpy.asarray(v.astype(np.float64)) for v in (h, a)], 1,
                    modes=("fwd", "rev"))


def test_errors():
    for name in ["expi", "exp1"]:
        with pytest.raises(ValueError, match=f"{name} does not support complex"):
            getattr(fss, name)(np.complex64(1))
    with pytest.raises(ValueError, match="expn does not support complex"):
        fss.expn(1, np.complex64(1))
    for name in ["dawsn", "owens_t"]:
        with pytest.raises(ValueError, match=f"{name} does not support complex"):
            getattr(fss, name)(*[np.complex64(1)] * (2 if name == "owens_t" else 1))
    with pytest.raises(NotImplementedError, match="fresnel: support for complex"):
        fss.fresnel(np.complex64(1))
    with pytest.raises(ValueError, match="sici must be real-valued"):
        fss.sici(np.complex64(1))
    with pytest.raises(TypeError, match="spence: x.dtype=int32 is not supported"):
        fss.spence(np.array([1, 2], np.int32))


@pytest.mark.parametrize("name", ["dawsn", "fresnel"])
def test_half_precision_in_float32(name):
    """float16 and bfloat16 are computed in float32 and cast back, as in JAX."""
    x = np.array([-2.0, 0.3, 1.0, 4.0])
    for dtype in [np.float16, jax.numpy.bfloat16]:
        compare_quick(getattr(fss, name), getattr(jss, name), x.astype(dtype))
