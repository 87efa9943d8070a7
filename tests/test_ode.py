"""``fungrad.experimental.ode.odeint`` against ``jax.experimental.ode.odeint`` on the same
inputs: values (eager and under ``fungrad.jit``), pytree states and arguments, the adjoint
gradients with respect to ``y0``, ``t``, ``args`` and closed-over values (against jax and
against finite differences), ``vmap``, float64, the solver options, and the errors.

jax's ``odeint`` is jitted internally; its gradients are computed under
``harness.quick_jit``, one quick compilation per case. The dynamics are written once
against a numpy module ``np_`` so the same function serves both libraries."""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jjnp
import numpy as np
import pytest
from harness import float_dtypes  # noqa: F401  (the dtype fixture)
from harness import GRAD_TOL, assert_same, compare, quick_jit, to_fg, to_jax, x64
from jax.experimental.ode import odeint as jax_odeint

import fungrad
import fungrad.numpy as jnp
from fungrad.experimental.ode import odeint
from fungrad.test_util import check_grads

LIBS = {"fg": (jnp, odeint), "jax": (jjnp, jax_odeint)}


def forced(np_):
    """A damped, forced linear system with a parameter vector ``a``."""
    return lambda y, t, a: -a * y + np_.sin(3.0 * t) * np_.cos(y)


def oscillator(np_):
    """A pytree state (a dict) and a pytree argument (a tuple holding a dict)."""
    def f(y, t, params):
        k, extra = params
        return {"x": y["v"], "v": -k * y["x"] - extra["c"] * y["v"]}
    return f


def _problem(dtype):
    y0 = np.array([1.0, -0.5, 0.25], dtype)
    t = np.array([0.0, 0.3, 0.7, 1.2], dtype)
    a = np.array([0.5, 1.0, 2.0], dtype)
    return y0, t, a


def solve_forced(lib, **kw):
    np_, ode = LIBS[lib]
    return lambda y0, t, a: ode(forced(np_), y0, t, a, **kw)


def test_values_match_jax(dtype):
    """f32, then f64 (x64 on): the same step-size control gives the same solution."""
    y0, t, a = _problem(dtype)
    ref = solve_forced("jax")(*to_jax((y0, t, a)))
    compare(solve_forced("fg"), None, y0, t, a, ref_out=ref)


@pytest.mark.parametrize("kw", [dict(rtol=1e-4, atol=1e-6), dict(hmax=0.05),
                                dict(mxstep=3, rtol=1e-3, atol=1e-3)],
                         ids=["loose", "hmax", "mxstep"])
def test_solver_options_match_jax(kw):
    """``mxstep`` stops the solution short, and the interpolant then extrapolates, which
    magnifies float32 rounding: that case runs in float64."""
    with x64() if "mxstep" in kw else contextlib.nullcontext():
        y0, t, a = _problem(np.float64 if "mxstep" in kw else np.float32)
        ref = solve_forced("jax", **kw)(*to_jax((y0, t, a)))
        compare(solve_forced("fg", **kw), None, y0, t, a, ref_out=ref)


def test_pytree_state_and_args():
    y0 = {"x": np.float32(1.0), "v": np.array(0.5, np.float32)}
    t = np.linspace(0.0, 2.0, 5).astype(np.float32)
    params = (np.float32(4.0), {"c": np.float32(0.1)})
    ref = jax_odeint(oscillator(jjnp), *to_jax((y0, t)), *to_jax((params,)))
    out = odeint(oscillator(jnp), *to_fg((y0, t)), *to_fg((params,)))
    assert_same(out, ref, check_weak=False)
    assert out["x"].shape == (5,)


def test_single_time_returns_y0():
    y0 = np.array([1.0, 2.0], np.float32)
    out = odeint(lambda y, t: -y, jnp.asarray(y0), jnp.array([0.5]))
    assert_same(out, jax_odeint(lambda y, t: -y, y0, jjnp.array([0.5])))


def _loss(lib, **kw):
    np_, _ = LIBS[lib]
    solve = solve_forced(lib, **kw)
    return lambda y0, t, a: np_.sum(solve(y0, t, a) ** 2 * np_.arange(1.0, 5.0)[:, None])


def test_grad_matches_jax(dtype):
    """The adjoint method's gradients with respect to y0, every time of t, and the args."""
    y0, t, a = _problem(dtype)
    ref = quick_jit(jax.grad(_loss("jax"), (0, 1, 2)))(*to_jax((y0, t, a)))
    got = fungrad.grad(_loss("fg"), (0, 1, 2))(*to_fg((y0, t, a)))
    assert_same(got, ref, GRAD_TOL, check_weak=False)


def test_grad_under_jit_and_value_and_grad():
    y0, t, a = _problem(np.float32)
    ref = quick_jit(jax.value_and_grad(_loss("jax"), (0, 2)))(*to_jax((y0, t, a)))
    got = fungrad.jit(fungrad.value_and_grad(_loss("fg"), (0, 2)))(*to_fg((y0, t, a)))
    assert_same(got, ref, GRAD_TOL, check_weak=False)


def test_grad_of_closed_over_value():
    """A value func closes over is hoisted out (closure conversion) and gets a gradient."""
    y0, t, _ = _problem(np.float32)

    def loss(np_, ode):
        return lambda w, y0: np_.sum(ode(lambda y, t: -w * y + t, y0, t)[-1])
    ref = quick_jit(jax.grad(loss(jjnp, jax_odeint), (0, 1)))(np.float32(0.7), y0)
    got = fungrad.grad(loss(jnp, odeint), (0, 1))(jnp.float32(0.7), jnp.asarray(y0))
    assert_same(got, ref, GRAD_TOL, check_weak=False)


def test_grad_pytree():
    y0 = {"x": np.float32(1.0), "v": np.float32(0.5)}
    t = np.linspace(0.0, 1.0, 3).astype(np.float32)
    params = (np.float32(4.0), {"c": np.float32(0.1)})

    def loss(lib):
        np_, ode = LIBS[lib]
        return lambda y0, params: np_.sum(ode(oscillator(np_), y0, t, params)["x"] ** 2)
    ref = quick_jit(jax.grad(loss("jax"), (0, 1)))(*to_jax((y0, params)))
    got = fungrad.grad(loss("fg"), (0, 1))(*to_fg((y0, params)))
    assert_same(got, ref, GRAD_TOL, check_weak=False)


def test_grads_against_finite_differences():
    with fungrad.enable_x64(True):
        y0, t, a = (jnp.asarray(v) for v in _problem(np.float64))
        check_grads(_loss("fg", rtol=1e-10, atol=1e-10), (y0, t, a), order=1, modes=["rev"],
                    atol=1e-5, rtol=1e-5)


def test_vmap_matches_jax():
    y0, t, a = _problem(np.float32)
    ys0 = np.stack([y0, 2 * y0, -y0])
    a_s = np.stack([a, a + 1.0])
    ref_y0 = quick_jit(jax.vmap(solve_forced("jax"), (0, None, None)))(*to_jax((ys0, t, a)))
    ref_a = quick_jit(jax.vmap(solve_forced("jax"), (None, None, 0), 1))(*to_jax((y0, t, a_s)))
    assert_same(fungrad.vmap(solve_forced("fg"), (0, None, None))(*to_fg((ys0, t, a))), ref_y0)
    assert_same(fungrad.vmap(solve_forced("fg"), (None, None, 0), 1)(*to_fg((y0, t, a_s))),
                ref_a)


def test_vmap_of_grad():
    y0, t, a = _problem(np.float32)
    a_s = np.stack([a, 0.5 * a])
    ref = quick_jit(jax.vmap(jax.grad(_loss("jax"), 2), (None, None, 0)))(*to_jax((y0, t, a_s)))
    got = fungrad.vmap(fungrad.grad(_loss("fg"), 2), (None, None, 0))(*to_fg((y0, t, a_s)))
    assert_same(got, ref, GRAD_TOL, check_weak=False)


# --------------------------------------------------------------------------- errors

def _decay(y, t):
    return -y


@pytest.mark.parametrize("t, exc, words", [
    (np.array([0, 1, 2]), TypeError, "t must be an array of floats"),
    (np.zeros((2, 2), np.float32), ValueError, "1-D"),
    (np.float32(1.0), ValueError, "1-D"),
    (np.zeros(0, np.float32), ValueError, "non-empty"),
    (np.array([0.0, 2.0, 1.0], np.float32), ValueError, "strictly increasing"),
    (np.array([0.0, 1.0, 1.0], np.float32), ValueError, "strictly increasing"),
], ids=["int", "2d", "0d", "empty", "decreasing", "repeated"])
def test_bad_times_raise(t, exc, words):
    with pytest.raises(exc, match=f"odeint: .*{words}"):
        odeint(_decay, jnp.ones(2), t)


def test_bad_args_and_func_raise():
    with pytest.raises(TypeError, match="odeint: the contents of \\*args"):
        odeint(lambda y, t, s: -y, jnp.ones(2), jnp.array([0.0, 1.0]), "fast")
    with pytest.raises(TypeError, match="odeint: func must be callable"):
        odeint(3.0, jnp.ones(2), jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="odeint: func must return values shaped like y0"):
        odeint(lambda y, t: jnp.sum(y), jnp.ones(2), jnp.array([0.0, 1.0]))


def test_forward_mode_raises_as_in_jax():
    """odeint is a custom_vjp function: jvp is refused (jax raises a TypeError too)."""
    with pytest.raises(TypeError, match="forward-mode"):
        fungrad.jvp(lambda y: odeint(_decay, y, jnp.array([0.0, 1.0])), (jnp.ones(2),),
                    (jnp.ones(2),))
