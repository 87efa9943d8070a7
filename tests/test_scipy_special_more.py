"""fungrad.scipy.special beyond the basics: normal CDF family, incomplete Gamma,
betainc, betaln, multigammaln, polygamma, kl_div/rel_entr; values against jax (eager and under
jit) and scipy, derivatives against jax and finite differences, vmap.

jax's derivatives run as one program per test, compiled with ``QUICK_COMPILE`` (``quick``):
eagerly, jax compiles every primitive, and the functions it jits itself (the incomplete
Gamma's series) with its default optimisations, which take seconds."""
from __future__ import annotations

import jax
import jax.scipy.special as jss
import numpy as np
import pytest
import scipy.special as ss
from harness import GRAD_TOL, QUICK_COMPILE, TOL, compare

import fungrad
import fungrad.scipy.special as fss
from fungrad.test_util import check_grads

F32 = np.float32
X = np.array([-40, -15, -9, -3, -0.5, 0, 0.3, 2, 5, 7, 9], F32)
P = np.array([1e-30, 1e-10, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6, 0, 1, -0.1, 1.1], F32)
A = np.array([0.5, 1, 3, 10, 50, 20, 0.1, 5, 2, 2, -1, 2], F32)
AX = np.array([0.2, 2, 3, 30, 45, 23, 4, 1e-3, 0, np.inf, 1, -1], F32)


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


@pytest.mark.parametrize("name", ["ndtr", "log_ndtr"])
def test_normal_cdf(name):
    compare(getattr(fss, name), getattr(jss, name), X, jit_ref=True)
    r, a = TOL[np.dtype(F32)]
    np.testing.assert_allclose(getattr(fss, name)(X), getattr(ss, name)(X.astype(float)),
                               rtol=r, atol=a)


def test_ndtri():
    compare(fss.ndtri, jss.ndtri, P, jit_ref=True)
    r, a = TOL[np.dtype(F32)]
    np.testing.assert_allclose(fss.ndtri(P), ss.ndtri(P.astype(float)), rtol=r, atol=a)


@pytest.mark.parametrize("name", ["gammainc", "gammaincc"])
def test_incomplete_gamma(name):
    r, a = TOL[np.dtype(F32)]
    ours = np.asarray(getattr(fss, name)(A, AX))
    np.testing.assert_allclose(ours, getattr(ss, name)(A.astype(float), AX.astype(float)),
                               rtol=r, atol=a)
    np.testing.assert_allclose(ours, quick(getattr(jss, name))(A, AX), rtol=r, atol=a)
    vm = fungrad.vmap(getattr(fss, name))(A, AX)
    np.testing.assert_array_equal(np.asarray(vm), ours)


def test_betainc():
    a = np.array([0.5, 1, 2, 5, 30, 0.3, 2, 2, 2, -1], F32)
    b = np.array([0.5, 3, 2, 1, 40, 4, 2, 2, 2, 1], F32)
    x = np.array([0.3, 0.2, 0.5, 0.9, 0.45, 0.01, 0, 1, 1.2, 0.5], F32)
    r, t = TOL[np.dtype(F32)]
    ours = np.asarray(fss.betainc(a, b, x))
    np.testing.assert_allclose(ours, ss.betainc(a.astype(float), b.astype(float),
                                                x.astype(float)), rtol=r, atol=t)
    value, grad = quick(lambda a, b, x: (jss.betainc(a, b, x), jax.vmap(jax.grad(jss.betainc, 2))(
        a[:6], b[:6], x[:6])))(a, b, x)
    np.testing.assert_allclose(ours, value, rtol=r, atol=t)
    gr, ga = GRAD_TOL[np.dtype(F32)]
    g = fungrad.vmap(fungrad.grad(fss.betainc, 2))(a[:6], b[:6], x[:6])
    np.testing.assert_allclose(g, grad, rtol=gr, atol=ga)
    with pytest.raises(NotImplementedError, match="betainc: the derivative with respect"):
        fungrad.grad(fss.betainc)(F32(2), F32(3), F32(0.4))


def test_small_composites():
    p = np.array([0, 1, 2, -1, 0.5, 0], F32)
    q = np.array([1, 0, 3, 1, 0.25, 0], F32)
    compare(fss.kl_div, jss.kl_div, p, q, jit_ref=True)
    compare(fss.rel_entr, jss.rel_entr, p, q, jit_ref=True)
    a, b = np.array([0.5, 2, 30], F32), np.array([1.5, 3, 0.2], F32)
    compare(fss.betaln, jss.betaln, a, b, jit_ref=True)
    compare(lambda v: fss.multigammaln(v, 3), lambda v: jss.multigammaln(v, 3),
            np.array([1.5, 3, 4.5], F32), jit_ref=True)
    compare(fss.polygamma, jss.polygamma, np.array([0, 1, 3], np.int32), np.array([0.5, 2, 7], F32),
            jit_ref=True)
    with pytest.raises(ValueError, match="polygamma: n must have an integer dtype"):
        fss.polygamma(np.float32(1), np.float32(2))
    with pytest.raises(ValueError, match="multigammaln: d"):
        fss.multigammaln(F32(3), 0)


def test_derivatives_match_jax():
    r, a = GRAD_TOL[np.dtype(F32)]
    unary = [("ndtr", X[3:]), ("log_ndtr", X), ("ndtri", P[:9])]
    a_, x_ = A[:8], AX[:8]

    def jax_refs(a_, x_, b1, b2, *xs):  # all of jax's derivatives, one program
        return ([jax.vmap(jax.grad(getattr(jss, name)))(x) for (name, _), x in zip(unary, xs)],
                [jax.vmap(jax.grad(getattr(jss, name), 1))(a_, x_)
                 for name in ["gammainc", "gammaincc"]],
                jax.grad(jss.betaln, (0, 1))(b1, b2))
    unary_refs, gamma_refs, betaln_ref = quick(jax_refs)(a_, x_, F32(2.5), F32(1.5),
                                                         *[x for _, x in unary])
    for (name, x), ref in zip(unary, unary_refs):
        ours = fungrad.vmap(fungrad.grad(getattr(fss, name)))(x)
        np.testing.assert_allclose(ours, ref, rtol=r, atol=a, err_msg=name)
    for name, ref in zip(["gammainc", "gammaincc"], gamma_refs):
        ours = fungrad.vmap(fungrad.grad(getattr(fss, name), 1))(a_, x_)
        np.testing.assert_allclose(ours, ref, rtol=r, atol=a, err_msg=name)
    g = fungrad.grad(lambda a_, b_: fss.betaln(a_, b_), (0, 1))(F32(2.5), F32(1.5))
    np.testing.assert_allclose(g, betaln_ref, rtol=r, atol=a)


def test_check_grads():
    x64 = np.array([-12., -2., 0.5, 3.])
    with _x64():
        check_grads(fss.log_ndtr, (x64,), order=2)
        check_grads(fss.ndtri, (np.array([0.01, 0.3, 0.8]),), order=1)
        check_grads(lambda x: fss.gammainc(np.array([0.7, 3., 20.]), x),
                    (np.array([0.4, 5., 18.]),), order=1)
        check_grads(fss.kl_div, (np.array([0.5, 2.]), np.array([1., 0.7])), order=2)


@pytest.mark.parametrize("name", ["gammainc", "gammaincc"])
def test_incomplete_gamma_derivative_in_a(name):
    a = np.array([0.1, 0.5, 1, 2, 5, 10, 50, 3, 3], F32)
    x = np.array([0.01, 0.3, 1, 3, 2, 15, 45, 1e-4, 30], F32)
    ours = fungrad.vmap(fungrad.grad(getattr(fss, name), argnums=(0, 1)))(a, x)
    ref = quick(jax.vmap(jax.grad(getattr(jss, name), argnums=(0, 1))))(a, x)
    r, at = GRAD_TOL[np.dtype(F32)]
    for u, v in zip(ours, ref):
        np.testing.assert_allclose(u, v, rtol=r, atol=at)
    with _x64():
        check_grads(lambda a: getattr(fss, name)(a, np.array([0.4, 5., 18.])),
                    (np.array([0.7, 3., 20.]),), order=1)


class _x64:
    def __enter__(self):
        self.fg = fungrad.config.enable_x64
        fungrad.config.update("enable_x64", True)

    def __exit__(self, *exc):
        fungrad.config.update("enable_x64", self.fg)
