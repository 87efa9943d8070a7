"""scipy.special erfcx, i0e, i1e, i0, i1 and zeta against jax.scipy.special: values over
their ranges (asymptotic branches, signs, zero, infinities, domain errors), derivatives
(grad, and check_grads), under jit and vmap, in float32 and float64."""
from __future__ import annotations

import jax
import jax.scipy.special as jsp
import numpy as np
import pytest
import scipy.special
from harness import QUICK_COMPILE, TOL, x64

import fungrad
import fungrad.scipy.special as fsp
from fungrad.test_util import check_grads

F32 = np.float32
X = np.array([-40, -12, -8.5, -8, -3, -0.7, -1e-8, 0, 1e-8, 0.3, 2, 7.9, 8, 8.1, 25, 600,
              np.inf, -np.inf, np.nan])
ERFCX_X = np.array([-9, -3, -0.5, 0, 0.4, 2, 9, 9.5, 12, 26, 27, 1e4, np.inf])
UNARY = ["erfcx", "i0e", "i1e", "i0", "i1"]


def inputs(name: str) -> np.ndarray:
    return ERFCX_X if name == "erfcx" else X


def same(ours, ref, dtype, scale=1):
    r, a = TOL[np.dtype(dtype)]
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    np.testing.assert_allclose(ours, ref, rtol=scale * r, atol=scale * a)


@pytest.mark.parametrize("name", UNARY)
def test_values_float32(name):
    x = inputs(name).astype(F32)
    same(getattr(fsp, name)(x), getattr(jsp, name)(x), F32)
    same(fungrad.jit(getattr(fsp, name))(x), getattr(jsp, name)(x), F32)


@pytest.mark.parametrize("name", UNARY)
def test_values_float64(name):
    with x64():
        x = inputs(name)
        same(getattr(fsp, name)(x), getattr(jsp, name)(x), np.float64)


@pytest.mark.parametrize("name", UNARY)
def test_grad_and_vmap(name):
    x = inputs(name).astype(F32)
    x = x[np.isfinite(x) & (np.abs(x) < 30)]
    g = lambda lib: jax.vmap(jax.grad(getattr(jsp, name))) if lib == "jax" else \
        fungrad.vmap(fungrad.grad(getattr(fsp, name)))
    same(g("fungrad")(x), g("jax")(x), F32, scale=10)
    same(fungrad.jit(g("fungrad"))(x), g("jax")(x), F32, scale=10)


@pytest.mark.parametrize("name", UNARY)
def test_check_grads(name):
    with x64():
        for x in [-3.2, -0.4, 0.6, 5.0, 9.0, 11.0]:
            check_grads(getattr(fsp, name), (x,), order=2, modes=["fwd", "rev"])


def test_i1e_derivative_at_zero():
    assert float(fungrad.grad(fsp.i1e)(0.0)) == 0.5 == float(jax.grad(jsp.i1e)(0.0))


def test_erfcx_below_the_asymptotic_branch():
    # just below float32's switch to the series (9.42), erfc(x) is subnormal: XLA flushes
    # it to zero, so jax gives 0 there; the product is computed exactly here (as SciPy)
    x = np.array([9.2, 9.3, 9.4], F32)
    assert not np.asarray(jsp.erfcx(x)).any()
    np.testing.assert_allclose(fsp.erfcx(x), scipy.special.erfcx(x.astype(float)), rtol=1e-5)


def test_erfcx_low_precision_in_float32():
    x = ERFCX_X.astype(np.float16)
    out = fsp.erfcx(x)
    assert out.dtype == np.float16
    same(out.astype(F32), jsp.erfcx(x).astype(F32), np.float16)


ZX = np.array([1.0, 1.5, 2, 3, 4.5, 10, 0.5, 2, 3, 2, 4, 3, 2], F32)
ZQ = np.array([1.0, 0.3, 2, 5, 1, 0.5, 1, -2, -2, -1.5, 3e3, 1e-3, 40], F32)


def test_zeta_values_and_domain():
    same(fsp.zeta(ZX, ZQ), jsp.zeta(ZX, ZQ), F32)
    same(fungrad.jit(fsp.zeta)(ZX, ZQ), jsp.zeta(ZX, ZQ), F32)
    same(fungrad.vmap(fsp.zeta, (0, None))(ZX, F32(2)), jax.vmap(jsp.zeta, (0, None))(ZX, F32(2)),
         F32)
    with x64():
        x, q = ZX.astype(float), ZQ.astype(float)
        same(fsp.zeta(x, q), jsp.zeta(x, q), np.float64)
    with pytest.raises(NotImplementedError, match="Riemann zeta"):
        fsp.zeta(2.0)


def test_zeta_derivatives():
    x, q = np.array([1.5, 2, 3, 4.5], F32), np.array([0.3, 2, 5, 1], F32)
    for argnums in (0, 1):
        ours = fungrad.vmap(fungrad.grad(fsp.zeta, argnums=argnums))(x, q)
        ref = jax.jit(jax.vmap(jax.grad(jsp.zeta, argnums=argnums)),
                      compiler_options=QUICK_COMPILE)(x, q)
        same(ours, ref, F32, scale=10)
