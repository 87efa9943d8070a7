"""scipy.special hyp1f1, hyp2f1, wofz and sph_harm_y against jax.scipy.special: values
(every branch and JAX's edge conventions), derivatives (jvp in each argument against jax,
check_grads), under jit and vmap, in float32 and float64.

jax's references run as programs compiled with ``QUICK_COMPILE`` (``quick``): jax jits these
functions itself with its default optimisations, which take seconds to compile their loops,
or runs them op by op (wofz), compiling every primitive.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp_ref
import jax.scipy.special as jsp
import numpy as np
import pytest
from harness import GRAD_TOL, QUICK_COMPILE, TOL, float_dtypes, x64  # noqa: F401 (fixture)

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.special as fsp
from fungrad.test_util import check_grads

# a, b, x: series, asymptotic (|x| >= 100), and the edges a == 0, a == b, b == 0
HYP1F1 = np.array([
    [0.5, 1.5, 0.3], [1.0, 2.0, -2.0], [2.0, 3.0, 5.0], [-1.5, 2.5, 1.5], [0.7, 1.9, 30.0],
    [1.5, 2.5, -20.0], [0.5, 1.5, 120.0], [2.0, 1.0, -150.0], [0.0, 0.0, 3.0], [0.0, 2.0, 1.0],
    [2.0, 2.0, 1.0], [1.2, 0.0, 2.0], [3.0, 4.5, 0.0]]).T
# a, b, c, x: each branch of JAX's index (x == 0, a == 0, poles of c, Euler's transformation,
# x == 1, b == c, a == c, x > 1, the Taylor series, the terminating polynomial, the digamma
# series near 1 with c - a - b = 0 and 1)
HYP2F1 = np.array([
    [1.0, 1.0, 2.0, 0.0], [0.0, 2.0, 3.0, 0.5], [1.0, 2.0, 0.0, 0.5], [1.0, 2.0, -2.0, 0.5],
    [2.0, 2.0, 1.5, 0.5], [2.0, 1.5, 3.0, 1.0], [1.0, 2.0, 2.5, 1.0], [1.5, 2.0, 2.0, 0.4],
    [2.0, 1.5, 2.0, -0.6], [1.0, 1.0, 2.0, 1.5], [1.0, 1.0, 2.0, 0.5], [0.3, 0.7, 1.2, -0.8],
    [-3.0, 2.0, 1.5, 0.7], [2.5, -2.0, 1.5, 0.3], [1.0, 1.0, 2.0, 0.95], [0.5, 1.0, 3.5, 0.97],
    [1.5, 2.0, 2.5, 0.95], [0.3, 0.4, 1.9, 0.92]]).T
WOFZ = np.array([0.3 + 0.2j, -1 + 2j, 2 - 1j, -0.5 - 0.5j, 5 + 0.1j, 0j, 1e-3 - 3j, -7 - 0.2j,
                 0.1 + 8j])
# n, m, theta, phi (theta in [0, pi]); |m| > n gives 0
SPH = np.array([[0, 0, 0.3, 0.1], [1, 1, 0.5, 1.0], [2, -1, 1.0, 2.0], [3, 2, 2.0, 3.0],
                [3, -3, 2.5, 4.0], [2, 3, 1.0, 5.0], [5, 4, 0.7, 6.0], [6, -5, 1.4, 0.4],
                [4, 0, 0.0, 1.0], [4, 1, np.pi, 2.0]]).T


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


# One jitted function each, so that tests on the same shapes share the compiled program.
HYP1F1_REF, HYP2F1_REF = quick(jsp.hyp1f1), quick(jsp.hyp2f1)


def same(ours, ref, dtype, table=TOL, scale=1.0):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    r, a = table[np.dtype(ref.dtype)]
    np.testing.assert_allclose(ours, ref, rtol=scale * r, atol=scale * a)


def cast(cols, dtype):
    return [np.asarray(c, dtype) for c in cols]


def test_hyp1f1_values(dtype):
    args = cast(HYP1F1, dtype)
    ref = HYP1F1_REF(*args)
    same(fsp.hyp1f1(*args), ref, dtype, scale=5)
    same(fungrad.jit(fsp.hyp1f1)(*args), ref, dtype, scale=5)


def test_hyp2f1_values(dtype):
    args = cast(HYP2F1, dtype)
    ref = HYP2F1_REF(*args)
    # the digamma series near 1 sums gamma ratios: a few units of rounding more in float32
    same(fsp.hyp2f1(*args), ref, dtype, scale=10)
    same(fungrad.jit(fsp.hyp2f1)(*args), ref, dtype, scale=10)


def test_wofz_values(dtype):
    z = WOFZ.astype(np.complex64 if dtype == np.float32 else np.complex128)
    x = np.array([-2.0, 0.0, 0.5, 6.0], dtype)  # real inputs are promoted to complex
    ref_z, ref_x, ref_erfcx = quick(lambda z, x: (jsp.wofz(z), jsp.wofz(x), jsp.erfcx(z)))(z, x)
    same(fsp.wofz(z), ref_z, z.dtype, scale=3)
    same(fungrad.jit(fsp.wofz)(z), ref_z, z.dtype, scale=3)
    same(fsp.wofz(x), ref_x, z.dtype, scale=3)
    same(fsp.erfcx(z), ref_erfcx, z.dtype, scale=3)  # complex erfcx is wofz(i z)


def test_sph_harm_y_values(dtype):
    n, m = SPH[0].astype(np.int32), SPH[1].astype(np.int32)
    theta, phi = cast(SPH[2:], dtype)
    clipped = dict(n_max=3)  # degrees and orders clipped to n_max, as in JAX
    # n and m (and the scalar theta) are constants of jax's program: its default n_max,
    # max(n), needs them concrete
    ref, ref_clipped, ref_scalar = quick(lambda t, p: (
        jsp.sph_harm_y(n, m, t, p), jsp.sph_harm_y(n, m, t, p, **clipped),
        jsp.sph_harm_y(n[:1], m[:1], float(theta[0]), p[:1])))(theta, phi)
    same(fsp.sph_harm_y(n, m, theta, phi), ref, ref.dtype, scale=5)
    jitted = fungrad.jit(lambda n, m, t, p: fsp.sph_harm_y(n, m, t, p, n_max=6))
    same(jitted(n, m, theta, phi), ref, ref.dtype, scale=5)
    same(fsp.sph_harm_y(n, m, theta, phi, **clipped), ref_clipped, ref.dtype, scale=5)
    scalar = fsp.sph_harm_y(n[:1], m[:1], float(theta[0]), phi[:1])  # theta as a scalar
    same(scalar, ref_scalar, ref.dtype)


def test_errors():
    with pytest.raises(ValueError, match="hyp1f1 does not support complex"):
        fsp.hyp1f1(1.0, 2.0, 1j)
    with pytest.raises(NotImplementedError, match="diff_n"):
        fsp.sph_harm_y(jnp.array([1]), jnp.array([0]), 0.5, 0.5, diff_n=1)
    with pytest.raises(Exception, match="n_max"):
        fungrad.jit(fsp.sph_harm_y)(jnp.array([1]), jnp.array([0]), jnp.array([0.5]), 0.5)


@pytest.mark.parametrize("name,table,rows", [
    ("hyp1f1", HYP1F1, [0, 1, 2, 3]),  # float32 cancels away at x = -20 (tested in float64)
    ("hyp2f1", HYP2F1, [10, 11, 14, 8]),
])
def test_parameter_and_x_derivatives(name, table, rows):
    # one jax program (its compilation dominates): the partial derivatives row by row
    args = cast(table[:, rows], np.float32)
    argnums = tuple(range(len(args)))
    ref = quick(jax.vmap(jax.grad(getattr(jsp, name), argnums=argnums)))(*args)
    ours = fungrad.vmap(fungrad.grad(getattr(fsp, name), argnums=argnums))(*args)
    for i, (g, r) in enumerate(zip(ours, ref)):
        same(g, r, np.float32, GRAD_TOL)
        tangents = [np.zeros_like(a) for a in args]
        tangents[i] = np.ones_like(args[i])  # forward mode: the same partial derivative
        same(fungrad.jvp(getattr(fsp, name), args, tangents)[1], r, np.float32, GRAD_TOL)


def test_derivatives_against_finite_differences():
    with x64():
        check_grads(fsp.hyp1f1, (0.7, 1.9, 1.3), order=1, modes=["fwd", "rev"])
        # at x = -20 the series cancels too much for finite differences: against jax
        ours = fungrad.grad(fsp.hyp1f1, argnums=(0, 1, 2))(1.5, 2.5, -20.0)
        for g, r in zip(ours, quick(jax.grad(jsp.hyp1f1, argnums=(0, 1, 2)))(1.5, 2.5, -20.0)):
            np.testing.assert_allclose(g, r, rtol=1e-6)  # e**20 cancels 8 digits in both
        check_grads(fsp.hyp2f1, (0.3, 0.7, 1.2, -0.4), order=1, modes=["fwd", "rev"])
        check_grads(lambda x: fsp.wofz(x).real, (0.8,), order=2, modes=["fwd", "rev"])
        check_grads(lambda t, p: fsp.sph_harm_y(jnp.array([3]), jnp.array([-2]), t, p).imag,
                    (jnp.array([0.9]), jnp.array([1.1])), order=2, modes=["fwd", "rev"])


def test_complex_and_angle_derivatives():
    z = WOFZ.astype(np.complex64)
    t = (np.ones_like(z) * (0.5 - 2j)).astype(np.complex64)
    n, m = SPH[0, :8].astype(np.int32), SPH[1, :8].astype(np.int32)
    theta, phi = cast(SPH[2:, :8], np.float32)

    def loss(lib, sph):
        return lambda t, p: lib.sum(abs(sph(n, m, t, p)) ** 2 + sph(n, m, t, p).real * t * p)
    ref_jvp, ref = quick(lambda z, t, theta, phi: (
        jax.jvp(jsp.wofz, (z,), (t,))[1],
        jax.grad(loss(jnp_ref, jsp.sph_harm_y), argnums=(0, 1))(theta, phi)))(z, t, theta, phi)
    same(fungrad.jvp(fsp.wofz, (z,), (t,))[1], ref_jvp, np.complex64, GRAD_TOL)
    ours = fungrad.grad(loss(jnp, fsp.sph_harm_y), argnums=(0, 1))(theta, phi)
    for g, r in zip(ours, ref):
        same(g, r, np.float32, GRAD_TOL)


def test_vmap_matches_rows():
    # jax's elementwise values on the same inputs (the program of test_hyp2f1_values)
    args = cast(HYP2F1, np.float32)
    ref = np.asarray(HYP2F1_REF(*args)).reshape(2, 9)
    rows = [a.reshape(2, 9) for a in args]
    same(fungrad.vmap(fsp.hyp2f1)(*rows), ref, np.float32, scale=10)
    batched = fungrad.jit(fungrad.vmap(fsp.hyp2f1, in_axes=1))(*[r.T for r in rows])
    same(batched, ref, np.float32, scale=10)
    z = WOFZ.astype(np.complex64).reshape(3, 3)
    same(fungrad.vmap(fsp.wofz, in_axes=1)(z), quick(jax.vmap(jsp.wofz, in_axes=1))(z),
         np.complex64, scale=3)
    n, m = SPH[0].astype(np.int32), SPH[1].astype(np.int32)
    theta, phi = cast(SPH[2:], np.float32)
    batched = fungrad.vmap(lambda t: fsp.sph_harm_y(n, m, t, phi, n_max=6))(np.stack([theta] * 2))
    ref = quick(lambda t, p: jsp.sph_harm_y(n, m, t, p))(theta, phi)
    same(batched, np.stack([ref] * 2), np.complex64, scale=5)
