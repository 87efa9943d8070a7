"""fungrad.scipy.special's Gamma family (gamma, gammasgn, loggamma, beta, poch, factorial,
comb, boxcox, boxcox1p, bernoulli) against jax.scipy.special: values in float32 and float64
(eager and under jit, poles and edges included), gradients against jax and finite
differences, vmap against jax.vmap."""
from __future__ import annotations

import jax
import jax.scipy.special as jss
import numpy as np
import pytest
from harness import GRAD_TOL, TOL, assert_same, compare, float_dtypes  # noqa: F401 (fixture)

import fungrad
import fungrad.scipy.special as fss
from fungrad.test_util import check_grads

X = np.array([-np.inf, -2.5, -1.5, -1, -0.5, -0.0, 0.0, 1e-3, 0.5, 1, 3.3, 10, 25, np.inf,
              np.nan])
A = np.array([0.5, 1, 2.5, 7, -0.5, -1.5, 3, 0.1, 4, 30])
B = np.array([0.5, 3, 1.5, 2, 2.5, 0.3, -2.5, 0.2, 4, 20])
N = np.array([5, 10, 4, 0, -1, 3, 7.5, 30, 2, 6])
K = np.array([2, 3, 5, 0, 1, -1, 2.5, 10, 2, 6])
LAM = np.array([0.5, 0, -1.5, 2, 0, 1, -0.3, 3, 1e-3, -2])
POS = np.array([0.2, 1, 3, 0.5, 7, 2, 9, 1.5, 4, 11])
DTYPES = [np.float32, np.float64]

UNARY = ["gamma", "gammasgn", "loggamma", "factorial"]
BINARY = {"beta": (A, B), "poch": (A, B), "comb": (N, K), "boxcox": (POS, LAM),
          "boxcox1p": (POS - 0.5, LAM)}


@pytest.mark.parametrize("name", UNARY)
def test_unary_values(name, dtype):
    x = X.astype(dtype)
    if name == "factorial":
        x = np.abs(np.nan_to_num(x, posinf=12, neginf=-3)).astype(dtype)
        x[0] = -3
    compare(getattr(fss, name), getattr(jss, name), x, jit_ref=True)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_values(name, dtype):
    args = [a.astype(dtype) for a in BINARY[name]]
    compare(getattr(fss, name), getattr(jss, name), *args, jit_ref=True)


def test_comb_repetition():
    n, k = N.astype(np.float32), K.astype(np.float32)
    assert_same(fss.comb(n, k, repetition=True), jss.comb(n, k, repetition=True))


GRAD_CASES = {"gamma": (np.array([0.7, 2.5, 4.2, -0.5, -1.3]),),
              "loggamma": (np.array([0.7, 2.5, 4.2, 9.0]),),
              "factorial": (np.array([0.5, 2.5, 4.2]),),
              "beta": (A[:4], B[:4]),
              "poch": (np.array([0.5, 1.2, 2.5, 3.5]), np.array([0.3, 2.0, -0.4, 1.5])),
              "comb": (np.array([5.5, 10.0, 7.2]), np.array([2.0, 3.5, 1.2])),
              "boxcox": (POS[:5], LAM[:5] + 0.1),
              "boxcox1p": (POS[:5] - 0.1, LAM[:5] + 0.1)}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grads(name):
    """Gradients in every argument against jax (float32), finite differences in float64,
    and vmap(grad) against jax.vmap(jax.grad)."""
    f, ref = getattr(fss, name), getattr(jss, name)
    args = [a.astype(np.float32) for a in GRAD_CASES[name]]
    for i in range(len(args)):
        g = fungrad.vmap(fungrad.grad(f, i))(*args)
        g_ref = jax.jit(jax.vmap(jax.grad(ref, i)))(*args)
        assert_same(g, g_ref, GRAD_TOL)
    with fungrad.enable_x64(True):
        check_grads(lambda *a: f(*a).sum(), [fungrad.numpy.asarray(a.astype(np.float64))
                                             for a in GRAD_CASES[name]], 1, modes=("fwd", "rev"))


def test_gammasgn_has_zero_gradient():
    assert float(fungrad.grad(fss.gammasgn)(np.float32(-0.5))) == 0.0


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 31])
def test_bernoulli(n):
    assert_same(fss.bernoulli(n), jss.bernoulli(n), TOL)


def test_errors():
    with pytest.raises(ValueError, match="gammasgn does not support complex"):
        fss.gammasgn(np.complex64(1))
    with pytest.raises(ValueError, match="poch does not support complex"):
        fss.poch(np.complex64(1), 2.0)
    with pytest.raises(NotImplementedError, match="exact=True"):
        fss.factorial(3, exact=True)
    with pytest.raises(ValueError, match="bernoulli: n must be a non-negative integer"):
        fss.bernoulli(-1)
    with pytest.raises(TypeError):
        fss.bernoulli(2.5)
