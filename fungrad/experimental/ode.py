"""``fungrad.experimental.ode`` (``jax.experimental.ode``): ``odeint``, adaptive
Dormand-Prince (dopri5) integration of ``dy/dt = func(y, t, *args)``.

The solver is JAX's, step for step: a 5th-order Runge-Kutta step with an embedded
4th-order error estimate (Dormand and Prince, 1980), Hairer, Norsett and Wanner's
initial step size (*Solving ODEs I*, II.4), the same accept/reject and step-size
control, and a quartic interpolant through each accepted step, which gives ``y`` at the
requested times without stepping onto them. Each output interval is a ``lax.while_loop``
over steps inside a ``lax.scan`` over the times, so ``odeint`` runs under ``jit`` and
``vmap``.

A ``while_loop`` has no reverse-mode derivative; ``odeint`` is a ``custom_vjp`` whose
backward pass is the adjoint method (Chen et al. 2018, *Neural ODEs*, appendix C):
the system augmented with ``y``'s, ``t``'s and the arguments' cotangents is solved
backwards in time with ``odeint`` itself, so ``grad`` with respect to ``y0``, ``t`` and
``*args`` (and anything ``func`` closes over) is exactly JAX's.

>>> import fungrad.numpy as jnp
>>> ys = odeint(lambda y, t, k: -k * y, 1.0, jnp.array([0.0, 1.0]), 2.0)
>>> print(f"{float(ys[1]):.6f} {float(jnp.exp(-2.0)):.6f}")
0.135335 0.135335
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from fungrad import lax, tree
from fungrad import numpy as jnp
from fungrad._core import core
from fungrad._core.array import Array
from fungrad._core.namespace import public_dir
from fungrad.flatten_util import ravel_pytree
from fungrad.transforms.api import vjp, vmap
from fungrad.transforms.closures import closure_convert
from fungrad.transforms.custom_derivatives import custom_vjp

__all__ = ["odeint"]
__dir__ = public_dir(__all__)

# --------------------------------------------------------------------------- the dopri5 tableau
# Stage times c_i, stage weights a_ij, the 5th-order solution weights and the difference to
# the embedded 4th-order solution (the error estimate); the last stage is the solution's own
# derivative (first same as last), so an accepted step hands f(y1) to the next.
_C = np.array([1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = (np.array([1 / 5]),
      np.array([3 / 40, 9 / 40]),
      np.array([44 / 45, -56 / 15, 32 / 9]),
      np.array([19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]),
      np.array([9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]),
      np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]))
_B_SOL = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
_B_ERR = np.array([35 / 384 - 1951 / 21600, 0, 500 / 1113 - 22642 / 50085,
                   125 / 192 - 451 / 720, -2187 / 6784 + 12231 / 42400,
                   11 / 84 - 649 / 6300, -1 / 60])
# The weights of y at the step's midpoint (Shampine 1986), for the interpolant.
_B_MID = np.array([6025192743 / 30085553152, 0, 51252292925 / 65400821598,
                   -2691868925 / 45128329728, 187940372067 / 1594534317056,
                   -1776094331 / 19743644256, 11237099 / 235043384]) / 2
_ORDER = 5.0


def _weights(w: np.ndarray, dtype: Any) -> Array:
    return jnp.asarray(w, dtype=dtype)


def _rk_step(fun: Callable, y0: Any, f0: Any, t0: Any, dt: Any) -> tuple[Any, Any, Any, Any]:
    """One dopri5 step from ``(t0, y0)`` with ``f0 = fun(y0, t0)``: the 5th-order solution,
    its derivative, the local error estimate and the seven stage derivatives ``k``."""
    dty = dt.astype(y0.dtype)
    k = [f0]
    for c, a in zip(_C, _A):
        yi = y0 + dty * jnp.dot(_weights(a, f0.dtype), jnp.stack(k))
        k.append(fun(yi, t0 + dt * jnp.asarray(c, dtype=dt.dtype)))
    k = jnp.stack(k)
    y1 = dty * jnp.dot(_weights(_B_SOL, f0.dtype), k) + y0
    y1_err = dty * jnp.dot(_weights(_B_ERR, f0.dtype), k)
    return y1, k[-1], y1_err, k


def _interp_coeffs(y0: Any, y1: Any, k: Any, dt: Any) -> Any:
    """The quartic in ``s = (t - t0) / dt`` (highest power first) that matches ``y0``,
    ``y1``, the midpoint value and the end derivatives of one step."""
    dt = dt.astype(y0.dtype)
    y_mid = y0 + dt * jnp.dot(_weights(_B_MID, y0.dtype), k)
    dy0, dy1 = dt * k[0], dt * k[-1]
    return jnp.stack([-2.0 * dy0 + 2.0 * dy1 - 8.0 * y0 - 8.0 * y1 + 16.0 * y_mid,
                      5.0 * dy0 - 3.0 * dy1 + 18.0 * y0 + 14.0 * y1 - 32.0 * y_mid,
                      -4.0 * dy0 + dy1 - 11.0 * y0 - 5.0 * y1 + 16.0 * y_mid,
                      dy0, y0])


def _horner(coeffs: Any, s: Any) -> Any:
    """The polynomial with rows ``coeffs`` (highest power first) at the scalar ``s``."""
    out = coeffs[0]
    for i in range(1, coeffs.shape[0]):
        out = out * s + coeffs[i]
    return out


def _initial_step(fun: Callable, t0: Any, y0: Any, f0: Any, rtol: float, atol: float) -> Any:
    """Hairer, Norsett and Wanner's starting step for a method of order 4: a step that
    keeps the explicit Euler error near ``0.01`` of the tolerance."""
    scale = (atol + jnp.abs(y0) * rtol).astype(y0.dtype)
    d0, d1 = jnp.linalg.norm(y0 / scale), jnp.linalg.norm(f0 / scale)
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
    f1 = fun(y0 + h0.astype(y0.dtype) * f0, t0 + h0)
    d2 = jnp.linalg.norm((f1 - f0) / scale) / h0
    h1 = jnp.where((d1 <= 1e-15) & (d2 <= 1e-15), jnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / jnp.maximum(d1, d2)) ** (1.0 / _ORDER))
    return jnp.minimum(100.0 * h0, h1)


def _abs2(x: Any) -> Any:
    return x.real ** 2 + x.imag ** 2 if jnp.iscomplexobj(x) else x ** 2


def _error_ratio(err: Any, rtol: float, atol: float, y0: Any, y1: Any) -> Any:
    """The RMS of the error estimate over the mixed tolerance: a step is accepted at <= 1."""
    tol = atol + rtol * jnp.maximum(jnp.abs(y0), jnp.abs(y1))
    return jnp.sqrt(jnp.mean(_abs2(err / tol.astype(err.dtype))))


def _next_step(dt: Any, ratio: Any, safety: float = 0.9, ifactor: float = 10.0,
               dfactor: float = 0.2) -> Any:
    """The step size after one with error ratio ``ratio``: grow at most tenfold, and shrink
    at most fivefold, only after a rejected step."""
    dfactor = jnp.where(ratio < 1, 1.0, dfactor)
    factor = jnp.minimum(ifactor, jnp.maximum(ratio ** (-1.0 / _ORDER) * safety, dfactor))
    return jnp.where(ratio == 0, dt * ifactor, dt * factor)


# --------------------------------------------------------------------------- the solver

@functools.partial(custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4))
def _odeint(func: Callable, rtol: float, atol: float, mxstep: Any, hmax: Any, y0: Any,
            ts: Any, *args: Any) -> Any:
    """``y`` (a flat vector) at each of ``ts``; ``func(y, t, *args)`` works on flat ``y``."""
    def fun(y, t):
        return func(y, t, *args)

    def to_time(carry, target_t):
        def going(state):
            i, _, _, t, dt, _, _ = state
            return (t < target_t) & (i < mxstep) & (dt > 0)

        def step(state):
            i, y, f, t, dt, last_t, coeffs = state
            y1, f1, y1_err, k = _rk_step(fun, y, f, t, dt)
            ratio = _error_ratio(y1_err, rtol, atol, y, y1)
            new_dt = jnp.clip(_next_step(dt, ratio), 0.0, hmax)
            accepted = (i + 1, y1, f1, t + dt, new_dt, t, _interp_coeffs(y, y1, k, dt))
            rejected = (i + 1, y, f, t, new_dt, last_t, coeffs)
            ok = ratio <= 1.0
            return tuple(jnp.where(ok, a, r) for a, r in zip(accepted, rejected))
        _, *carry = lax.while_loop(going, step, (0, *carry))
        _, _, t, _, last_t, coeffs = carry
        s = (target_t - last_t) / (t - last_t)
        return tuple(carry), _horner(coeffs, s.astype(coeffs.dtype))

    f0 = fun(y0, ts[0])
    dt = jnp.clip(_initial_step(fun, ts[0], y0, f0, rtol, atol), 0.0, hmax)
    coeffs = jnp.stack([y0] * 5)
    _, ys = lax.scan(to_time, (y0, f0, ts[0], dt, ts[0], coeffs), ts[1:])
    return jnp.concatenate([y0[None], ys])


def _odeint_fwd(func, rtol, atol, mxstep, hmax, y0, ts, *args):
    ys = _odeint(func, rtol, atol, mxstep, hmax, y0, ts, *args)
    return ys, (ys, ts, args)


def _odeint_bwd(func, rtol, atol, mxstep, hmax, res, g):
    """The adjoint method: between consecutive output times, solve the augmented system
    ``(y, a = y_bar, t_bar, args_bar)`` backwards (in negated time, so ``odeint`` sees
    increasing times), adding the output cotangent ``g[i]`` at each time."""
    ys, ts, args = res

    def augmented(state, minus_t, *args):
        y, y_bar, *_ = state
        y_dot, pullback = vjp(func, y, -minus_t, *args)
        return (-y_dot, *pullback(y_bar))

    def back_one(carry, i):
        y_bar, t0_bar, args_bar = carry
        t_bar = jnp.dot(func(ys[i], ts[i], *args), g[i]).real  # moving the output time
        t0_bar = t0_bar - t_bar
        _, y_bar, t0_bar, args_bar = odeint(
            augmented, (ys[i], y_bar, t0_bar, args_bar), jnp.stack([-ts[i], -ts[i - 1]]),
            *args, rtol=rtol, atol=atol, mxstep=mxstep, hmax=hmax)
        y_bar, t0_bar, args_bar = tree.map(lambda v: v[1], (y_bar, t0_bar, args_bar))
        return (y_bar + g[i - 1], t0_bar, args_bar), t_bar

    init = (g[-1], 0.0, tree.map(jnp.zeros_like, args))
    (y_bar, t0_bar, args_bar), rev_ts_bar = lax.scan(
        back_one, init, jnp.arange(ts.shape[0] - 1, 0, -1))
    ts_bar = jnp.concatenate([jnp.stack([t0_bar]).astype(rev_ts_bar.dtype), rev_ts_bar[::-1]])
    return (y_bar, ts_bar, *args_bar)


_odeint.defvjp(_odeint_fwd, _odeint_bwd)


class _FlatFunc:
    """``func`` on the flat vector ``ravel_pytree(y0)`` instead of the pytree ``y``, with a
    check that its result has ``y0``'s leaf shapes."""

    def __init__(self, func: Callable, unravel: Callable, shapes: list) -> None:
        self.func, self.unravel, self.shapes = func, unravel, shapes

    def __call__(self, y_flat: Any, t: Any, *args: Any) -> Any:
        out = self.func(self.unravel(y_flat), t, *args)
        shapes = [jnp.shape(leaf) for leaf in tree.leaves(out)]
        if shapes != self.shapes:
            raise ValueError(f"odeint: func must return values shaped like y0 (leaf shapes "
                             f"{self.shapes}), got leaf shapes {shapes}")
        return ravel_pytree(out)[0].astype(y_flat.dtype)


def _is_array_leaf(x: Any) -> bool:
    return isinstance(x, (core.Tracer, Array, np.ndarray, np.generic, bool, int, float, complex))


def _check_times(t: Any) -> Any:
    if not hasattr(t, "dtype"):
        t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        raise TypeError(f"odeint: t must be an array of floats, got dtype {t.dtype}")
    if jnp.ndim(t) != 1 or jnp.shape(t)[0] == 0:
        raise ValueError(f"odeint: t must be a non-empty 1-D array of times, got shape "
                         f"{jnp.shape(t)}")
    if not isinstance(t, core.Tracer):  # a traced t cannot be checked (nor is it in JAX)
        diffs = np.diff(np.asarray(t))
        if np.any(~(diffs > 0)):
            raise ValueError(f"odeint: t must be strictly increasing, got {np.asarray(t)}")
    return t


def odeint(func: Callable, y0: Any, t: Any, *args: Any, rtol: float = 1.4e-8,
           atol: float = 1.4e-8, mxstep: float = np.inf, hmax: float = np.inf) -> Any:
    """Integrate ``dy/dt = func(y, t, *args)`` from ``y(t[0]) = y0`` with adaptive
    Dormand-Prince steps (``jax.experimental.ode.odeint``).

    Differentiable in reverse mode with respect to ``y0``, ``t``, ``args`` and the values
    ``func`` closes over, by the adjoint method (a second, backwards ``odeint``); not in
    forward mode (``jvp``), as in JAX.

    Args:
        func: ``func(y, t, *args)``, the time derivative of ``y``: a pytree shaped like
            ``y0``.
        y0: the initial state, an array or a pytree of arrays.
        t: the strictly increasing 1-D float times at which to return ``y``; ``t[0]`` is
            the time of ``y0``.
        *args: extra arguments of ``func`` (arrays, scalars or pytrees of them).
        rtol: relative local error tolerance.
        atol: absolute local error tolerance.
        mxstep: the most steps taken (accepted or rejected) between two times of ``t``;
            the solution stops advancing when it is reached.
        hmax: the largest step size.

    Returns:
        ``y`` at each time of ``t``: ``y0``'s structure with a leading axis of length
        ``len(t)``.

    Raises:
        TypeError: ``t`` is not floating point, or an ``args`` leaf is not an array.
        ValueError: ``t`` is not a non-empty 1-D array, or (when concrete) not strictly
            increasing; ``func`` returns a value not shaped like ``y0``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> t = jnp.array([0.0, 0.5, 1.0])
        >>> ys = odeint(lambda y, t: {"x": y["v"], "v": -y["x"]}, {"x": 1.0, "v": 0.0}, t)
        >>> ys["x"].round(5)
        Array([1.     , 0.87758, 0.5403 ], dtype=float32)
        >>> loss = lambda k: odeint(lambda y, t, k: -k * y, 1.0, t, k)[-1]
        >>> print(f"{float(fungrad.grad(loss)(1.0)):.5f}")  # d/dk exp(-k) = -exp(-1)
        -0.36788
    """
    if not callable(func):
        raise TypeError(f"odeint: func must be callable, got {type(func).__name__}")
    for leaf in tree.leaves(args):
        if not _is_array_leaf(leaf):
            raise TypeError(f"odeint: the contents of *args must be arrays or scalars, but "
                            f"got {leaf!r}")
    t = _check_times(t)
    y0_leaves = tree.leaves(y0)
    for leaf in y0_leaves:
        if not _is_array_leaf(leaf):
            raise TypeError(f"odeint: y0 must be an array or a pytree of arrays, but got "
                            f"{leaf!r}")
    converted, consts = closure_convert(func, y0, t[0], *args)
    y0_flat, unravel = ravel_pytree(y0)
    flat_func = _FlatFunc(converted, unravel, [jnp.shape(leaf) for leaf in y0_leaves])
    ys = _odeint(flat_func, rtol, atol, mxstep, hmax, y0_flat, t, *args, *consts)
    return vmap(unravel)(ys)
