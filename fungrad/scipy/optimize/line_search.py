"""A strong-Wolfe line search (Nocedal and Wright, *Numerical Optimization*,
algorithms 3.5 and 3.6), the one ``jax.scipy.optimize`` uses: bracketing by doubling,
then zooming by cubic, quadratic or bisection steps. Written with ``lax.while_loop``
so that it runs under ``jit``; both loops carry dicts of arrays and update them with
``where`` so that every branch has the same shapes."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.transforms.api import value_and_grad


class LineSearchResults(NamedTuple):
    """What ``line_search`` found: the step ``a_k`` and ``f``, ``grad f`` there;
    ``status`` 0 (found), 1 (zoom failed) or 3 (too many iterations)."""

    failed: Any
    nit: Any
    nfev: Any
    ngev: Any
    k: Any
    a_k: Any
    f_k: Any
    g_k: Any
    status: Any


def _pick(cond: Any, state: dict, new: dict) -> dict:
    """``state`` with the entries of ``new`` taken where ``cond`` holds."""
    return {**state, **{k: jnp.where(cond, v, state[k]) for k, v in new.items()}}


def _cubicmin(a, fa, fpa, b, fb, c, fc):
    # the minimiser of the cubic through (a, fa) with slope fpa, (b, fb) and (c, fc)
    db, dc = b - a, c - a
    db2, dc2 = db * db, dc * dc
    denom = db2 * dc2 * (db - dc)
    rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
    cub = (dc2 * rb - db2 * rc) / denom
    quad = (db2 * db * rc - dc2 * dc * rb) / denom
    return a + (-quad + jnp.sqrt(quad * quad - 3 * cub * fpa)) / (3 * cub)


def _quadmin(a, fa, fpa, b, fb):
    # the minimiser of the parabola through (a, fa) with slope fpa and (b, fb)
    db = b - a
    curv = (fb - fa - fpa * db) / (db * db)
    return a - fpa / (2 * curv)


def _zoom(phi: Callable, wolfe_one: Callable, wolfe_two: Callable, lo: tuple, hi: tuple,
          g_0: Any, skip: Any) -> dict:
    a_lo, phi_lo, dphi_lo = lo
    a_hi, phi_hi, dphi_hi = hi
    dt = phi_lo.dtype
    threshold = 1e-10 if np.finfo(dt).bits >= 64 else 1e-5
    zero = jnp.zeros((), jnp.int32)
    state = {"done": jnp.asarray(False), "failed": jnp.asarray(False), "j": zero,
             "a_lo": a_lo, "phi_lo": phi_lo, "dphi_lo": dphi_lo,
             "a_hi": a_hi, "phi_hi": phi_hi, "dphi_hi": dphi_hi,
             "a_rec": (a_lo + a_hi) / 2, "phi_rec": (phi_lo + phi_hi) / 2,
             "a_star": jnp.ones((), dt), "phi_star": phi_lo, "dphi_star": dphi_lo,
             "g_star": g_0, "nfev": zero}

    def body(s):
        width = s["a_hi"] - s["a_lo"]
        lo_end, hi_end = jnp.minimum(s["a_hi"], s["a_lo"]), jnp.maximum(s["a_hi"], s["a_lo"])
        failed = s["failed"] | (width <= threshold)
        cubic = _cubicmin(s["a_lo"], s["phi_lo"], s["dphi_lo"], s["a_hi"], s["phi_hi"],
                          s["a_rec"], s["phi_rec"])
        use_cubic = (s["j"] > 0) & (cubic > lo_end + 0.2 * width) & (cubic < hi_end - 0.2 * width)
        quad = _quadmin(s["a_lo"], s["phi_lo"], s["dphi_lo"], s["a_hi"], s["phi_hi"])
        use_quad = ~use_cubic & (quad > lo_end + 0.1 * width) & (quad < hi_end - 0.1 * width)
        a_j = jnp.where(use_cubic, cubic,
                        jnp.where(use_quad, quad, (s["a_lo"] + s["a_hi"]) / 2))
        phi_j, dphi_j, g_j = phi(a_j)
        s = {**s, "failed": failed, "nfev": s["nfev"] + 1}
        hi_to_j = wolfe_one(a_j, phi_j) | (phi_j >= s["phi_lo"])
        star_to_j = wolfe_two(dphi_j) & ~hi_to_j
        hi_to_lo = (dphi_j * (s["a_hi"] - s["a_lo"]) >= 0) & ~hi_to_j & ~star_to_j
        lo_to_j = ~hi_to_j & ~star_to_j
        s = _pick(hi_to_j, s, {"a_hi": a_j, "phi_hi": phi_j, "dphi_hi": dphi_j,
                               "a_rec": s["a_hi"], "phi_rec": s["phi_hi"]})
        s = _pick(star_to_j, s, {"a_star": a_j, "phi_star": phi_j, "dphi_star": dphi_j,
                                 "g_star": g_j})
        s["done"] = s["done"] | star_to_j
        s = _pick(hi_to_lo, s, {"a_hi": s["a_lo"], "phi_hi": s["phi_lo"],
                                "dphi_hi": s["dphi_lo"], "a_rec": s["a_hi"],
                                "phi_rec": s["phi_hi"]})
        s = _pick(lo_to_j & ~hi_to_lo, s, {"a_rec": s["a_lo"], "phi_rec": s["phi_lo"]})
        s = _pick(lo_to_j, s, {"a_lo": a_j, "phi_lo": phi_j, "dphi_lo": dphi_j})
        s["j"] = s["j"] + 1
        s["failed"] = s["failed"] | (s["j"] >= 30)
        return s

    return lax.while_loop(lambda s: ~s["done"] & ~skip & ~s["failed"], body, state)


def line_search(f: Callable, xk: Any, pk: Any, old_fval: Any = None, old_old_fval: Any = None,
                gfk: Any = None, c1: float = 1e-4, c2: float = 0.9,
                maxiter: int = 20) -> LineSearchResults:
    """A step along the descent direction ``pk`` from ``xk`` that satisfies the strong
    Wolfe conditions with constants ``c1`` (decrease) and ``c2`` (curvature)
    (``jax.scipy.optimize.line_search``). ``old_old_fval`` sets the first trial step.

    >>> import fungrad.numpy as jnp
    >>> res = line_search(lambda x: jnp.sum(x ** 2), jnp.array([1.]), jnp.array([-1.]))
    >>> float(res.a_k), int(res.status)
    (1.0, 0)
    """
    xk, pk = jnp.asarray(xk), jnp.asarray(pk)
    dt = jnp.result_type(xk, pk, float)
    xk, pk = xk.astype(dt), pk.astype(dt)

    def phi(t):
        value, g = value_and_grad(f)(xk + t * pk)
        return value, jnp.real(jnp.dot(g, pk)), g

    counted = old_fval is None or gfk is None
    if counted:
        phi_0, dphi_0, gfk = phi(jnp.zeros((), dt))
    else:
        phi_0, dphi_0 = jnp.asarray(old_fval), jnp.real(jnp.dot(gfk, pk))
    if old_old_fval is not None:
        candidate = 1.01 * 2 * (phi_0 - old_old_fval) / dphi_0
        start = jnp.where(candidate > 1, 1.0, candidate).astype(dt)
    else:
        start = jnp.ones((), dt)

    def wolfe_one(a, phi_a):
        return phi_a > phi_0 + c1 * a * dphi_0

    def wolfe_two(dphi_a):
        return jnp.abs(dphi_a) <= -c2 * dphi_0

    count = jnp.asarray(int(counted), jnp.int32)
    state = {"done": jnp.asarray(False), "failed": jnp.asarray(False),
             "i": jnp.ones((), jnp.int32), "a_prev": jnp.zeros((), dt), "phi_prev": phi_0,
             "dphi_prev": dphi_0, "nfev": count, "a_star": jnp.zeros((), dt),
             "phi_star": phi_0, "dphi_star": dphi_0, "g_star": gfk}

    def body(s):
        a_i = jnp.where(s["i"] == 1, start, s["a_prev"] * 2)
        phi_i, dphi_i, g_i = phi(a_i)
        to_zoom1 = wolfe_one(a_i, phi_i) | ((phi_i >= s["phi_prev"]) & (s["i"] > 1))
        to_i = wolfe_two(dphi_i) & ~to_zoom1
        to_zoom2 = (dphi_i >= 0) & ~to_zoom1 & ~to_i
        prev, here = (s["a_prev"], s["phi_prev"], s["dphi_prev"]), (a_i, phi_i, dphi_i)
        zoom1 = _zoom(phi, wolfe_one, wolfe_two, prev, here, gfk, ~to_zoom1)
        zoom2 = _zoom(phi, wolfe_one, wolfe_two, here, prev, gfk, ~to_zoom2)
        s = {**s, "nfev": s["nfev"] + 1 + zoom1["nfev"] + zoom2["nfev"]}
        keys = ("a_star", "phi_star", "dphi_star", "g_star")
        s = _pick(to_zoom1, s, {k: zoom1[k] for k in keys})
        s = _pick(to_i, s, {"a_star": a_i, "phi_star": phi_i, "dphi_star": dphi_i, "g_star": g_i})
        s = _pick(to_zoom2, s, {k: zoom2[k] for k in keys})
        s["done"] = s["done"] | to_zoom1 | to_i | to_zoom2
        s["failed"] = s["failed"] | (to_zoom1 & zoom1["failed"]) | (to_zoom2 & zoom2["failed"])
        return {**s, "i": s["i"] + 1, "a_prev": a_i, "phi_prev": phi_i, "dphi_prev": dphi_i}

    s = lax.while_loop(lambda s: ~s["done"] & (s["i"] <= maxiter) & ~s["failed"], body, state)
    status = jnp.where(s["failed"], 1, jnp.where(s["i"] > maxiter, 3, 0))
    a_k = s["a_star"]
    if np.finfo(dt).bits != 64:  # too small a step would stall the search in float32
        a_k = jnp.where(jnp.abs(a_k) < 1e-8, jnp.sign(a_k) * 1e-8, a_k)
    return LineSearchResults(failed=s["failed"] | ~s["done"], nit=s["i"] - 1, nfev=s["nfev"],
                             ngev=s["nfev"], k=s["i"], a_k=a_k, f_k=s["phi_star"],
                             g_k=s["g_star"], status=status)
