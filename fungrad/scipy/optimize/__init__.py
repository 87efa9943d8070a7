"""``fungrad.scipy.optimize`` (``jax.scipy.optimize``): ``minimize`` with BFGS and the
strong-Wolfe ``line_search`` it uses, both loops in ``lax.while_loop`` so that
minimisation runs under ``jit`` and ``vmap``.

>>> import fungrad.numpy as jnp
>>> res = minimize(lambda x: jnp.sum((x - 3.) ** 2), jnp.zeros(2), method="BFGS")
>>> bool(res.success), res.x.round(4).tolist()
(True, [3.0, 3.0])
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from fungrad._core.namespace import public_dir
from fungrad.scipy.optimize.bfgs import minimize_bfgs
from fungrad.scipy.optimize.line_search import line_search

__all__ = ["OptimizeResults", "line_search", "minimize"]
__dir__ = public_dir(__all__)


class OptimizeResults(NamedTuple):
    """The result of ``minimize``: the solution ``x``, ``success``, ``status`` (0
    converged, 1 too many iterations, 3 zoom failed, 4 saddle point, 5 too many line
    search iterations, -1 undefined), ``fun``, ``jac``, ``hess_inv`` and the counts
    ``nfev``, ``njev``, ``nit``."""

    x: Any
    success: Any
    status: Any
    fun: Any
    jac: Any
    hess_inv: Any
    nfev: Any
    njev: Any
    nit: Any


def minimize(fun: Callable, x0: Any, args: tuple = (), *, method: str = "BFGS",
             tol: float | None = None, options: dict | None = None) -> OptimizeResults:
    """Minimise the scalar ``fun(x, *args)`` over the flat array ``x`` from ``x0``.

    Only ``method="BFGS"`` exists (as in JAX). ``tol`` is accepted for SciPy's
    signature and, as in JAX, unused: pass ``options={"gtol": ...}``; other options
    are ``maxiter``, ``norm`` and ``line_search_maxiter``.
    """
    if not isinstance(args, tuple):
        raise TypeError(f"minimize: args must be a tuple, got {type(args).__name__}")
    if method.lower() != "bfgs":
        raise ValueError(f"minimize: method {method!r} is not recognised; only 'BFGS' is "
                         "implemented")
    s = minimize_bfgs(lambda x: fun(x, *args), x0, **(options or {}))
    return OptimizeResults(x=s["x_k"], success=s["converged"] & ~s["failed"],
                           status=s["status"], fun=s["f_k"], jac=s["g_k"], hess_inv=s["H_k"],
                           nfev=s["nfev"], njev=s["ngev"], nit=s["k"])
