"""fungrad.scipy.optimize.minimize (BFGS) and line_search against jax.scipy.optimize:
the same iterates (every field of the result) on Rosenbrock and quadratics in float32
and float64, under jit and vmap, and bad arguments.

jax's references run as one program compiled with ``QUICK_COMPILE`` (``quick``), but
where eager rounding matters: eagerly, jax compiles every primitive before the loop and the
loop itself with its default optimisations, which take seconds."""
from __future__ import annotations

import jax
import jax.numpy as jjnp
import jax.scipy.optimize as jopt
import numpy as np
import pytest
from harness import QUICK_COMPILE, TOL, x64
from jax._src.scipy.optimize.line_search import line_search as jax_line_search

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.optimize as fopt

F32 = np.float32


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


def rosenbrock(np_):
    return lambda x: np_.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def quadratic(np_, a, b):
    return lambda x, shift: 0.5 * x @ (a @ x) - b @ x + shift


def _same(ours, ref, dtype, fields=None):
    r, a = TOL[np.dtype(dtype)]
    assert ours._fields == ref._fields
    for name in fields or ours._fields:
        u, v = np.asarray(getattr(ours, name)), np.asarray(getattr(ref, name))
        assert u.shape == v.shape, name
        if u.dtype.kind in "biu":
            np.testing.assert_array_equal(u, v, err_msg=name)
        else:
            np.testing.assert_allclose(u, v, rtol=r, atol=a, err_msg=name)


def test_rosenbrock_float64_converges_like_jax():
    fungrad.config.update("enable_x64", True)
    jax.config.update("jax_enable_x64", True)
    try:
        x0 = np.zeros(4)
        ours = fopt.minimize(rosenbrock(jnp), x0, method="BFGS")
        ref = quick(lambda x: jopt.minimize(rosenbrock(jjnp), x, method="BFGS"))(x0)
        assert bool(ours.success) and int(ours.status) == 0
        np.testing.assert_allclose(ours.x, np.ones(4), atol=1e-6)
        for name in ["nit", "nfev", "njev", "status", "success"]:
            assert int(getattr(ours, name)) == int(getattr(ref, name)), name
        np.testing.assert_allclose(ours.x, ref.x, rtol=1e-9, atol=1e-9)
    finally:
        fungrad.config.update("enable_x64", False)
        jax.config.update("jax_enable_x64", False)


def test_rosenbrock_float32_same_iterates():
    # from this start the line search's zoom gives up after 5 steps (status 3), in jax
    # (float32 and float64) as here
    x0 = np.array([-1.2, 1.0, 0.5, -0.3], F32)
    ours = fopt.minimize(rosenbrock(jnp), x0)
    # eager, as fungrad: under jit XLA rounds the float32 gradients differently (its fifth
    # digit), which this search amplifies
    ref = jopt.minimize(rosenbrock(jjnp), x0, method="BFGS")
    _same(ours, ref, F32)
    jitted = fungrad.jit(lambda x: fopt.minimize(rosenbrock(jnp), x))(x0)
    _same(jitted, ref, F32)


def test_quadratic_args_and_options():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 5)).astype(F32)
    a = m @ m.T + 5 * np.eye(5, dtype=F32)
    b = rng.normal(size=5).astype(F32)
    x0 = np.zeros(5, F32)
    opts = {"gtol": 1e-4, "maxiter": 50}
    ours = fopt.minimize(quadratic(jnp, a, b), x0, (F32(2),), method="bfgs", options=opts)
    ref = quick(lambda x, shift: jopt.minimize(quadratic(jjnp, a, b), x, (shift,), method="BFGS",
                                               options=opts))(x0, F32(2))
    # the float32 inverse-Hessian estimate differs in its fifth digit with the order of
    # the update's products (jax's einsum against two matmuls here): compared in float64
    _same(ours, ref, F32, [f for f in ours._fields if f != "hess_inv"])
    assert bool(ours.success)
    r, _ = TOL[np.dtype(F32)]
    np.testing.assert_allclose(ours.x, np.linalg.solve(a, b), rtol=10 * r, atol=1e-4)


def test_vmap_over_starts():
    weights = np.arange(1, 6, dtype=F32)

    def objective(np_):
        return lambda x: np_.sum(weights * (x - 2) ** 2 + 0.1 * x ** 4)
    starts = np.random.default_rng(2).normal(size=(3, 5)).astype(F32)
    ours = fungrad.vmap(lambda x: fopt.minimize(objective(jnp), x))(starts)
    ref = quick(jax.vmap(lambda x: jopt.minimize(objective(jjnp), x, method="BFGS")))(starts)
    _same(ours, ref, F32, ["x", "fun", "success", "status", "nit"])


def test_vmap_quadratic_over_starts():
    # regression: an unbatched cotangent met a batched one in add_any inside the nested
    # while loops, and the sum kept the unbatched operand's size-1 batch axis. Compared
    # in float64: in float32 the last line searches of this quadratic hinge on rounding
    # (a batched matmul sums in another order than a matrix-vector product), so a lane
    # may stop one step early with status 3, which also happens between jax's vmap and
    # jax's loop on other starts.
    with x64():
        rng = np.random.default_rng(3)
        m = rng.normal(size=(3, 3))
        a = m @ m.T + 3 * np.eye(3)
        b = rng.normal(size=3)
        starts = rng.normal(size=(4, 3))
        ours = fungrad.vmap(lambda x: fopt.minimize(quadratic(jnp, a, b), x, (1.0,),
                                                    method="BFGS"))(starts)
        ref = quick(jax.vmap(lambda x: jopt.minimize(quadratic(jjnp, a, b), x, (1.0,),
                                                     method="BFGS")))(starts)
        _same(ours, ref, np.float64)
    ours = fungrad.vmap(lambda x: fopt.minimize(quadratic(jnp, a, b), x, (F32(1),)))(
        starts.astype(F32))
    np.testing.assert_allclose(ours.x, np.tile(np.linalg.solve(a, b), (4, 1)), atol=1e-5)


def test_quadratic_float64_inverse_hessian():
    fungrad.config.update("enable_x64", True)
    jax.config.update("jax_enable_x64", True)
    try:
        rng = np.random.default_rng(1)
        m = rng.normal(size=(4, 4))
        a, b = m @ m.T + 4 * np.eye(4), rng.normal(size=4)
        ours = fopt.minimize(quadratic(jnp, a, b), np.zeros(4), (0.0,))
        ref = quick(lambda x: jopt.minimize(quadratic(jjnp, a, b), x, (0.0,),
                                            method="BFGS"))(np.zeros(4))
        _same(ours, ref, np.float64)
    finally:
        fungrad.config.update("enable_x64", False)
        jax.config.update("jax_enable_x64", False)


def test_line_search_matches_jax():
    f = rosenbrock(jnp)
    x = np.array([-1.2, 1.0], F32)
    p = -np.asarray(fungrad.grad(f)(x))
    ours = fopt.line_search(f, x, p)
    # public in jax only through minimize
    ref = quick(lambda x, p: jax_line_search(rosenbrock(jjnp), x, p))(x, p)
    for name in ["a_k", "f_k", "g_k", "status", "nfev", "failed"]:
        np.testing.assert_allclose(np.asarray(getattr(ours, name)),
                                   np.asarray(getattr(ref, name)), rtol=1e-5, err_msg=name)


def test_bad_arguments():
    with pytest.raises(TypeError, match="minimize: args must be a tuple"):
        fopt.minimize(rosenbrock(jnp), np.zeros(2, F32), args=[1])
    with pytest.raises(ValueError, match="minimize: method 'Nelder-Mead'"):
        fopt.minimize(rosenbrock(jnp), np.zeros(2, F32), method="Nelder-Mead")
