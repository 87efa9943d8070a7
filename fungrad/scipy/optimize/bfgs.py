"""BFGS (Nocedal and Wright, *Numerical Optimization*, algorithm 6.1) with the
strong-Wolfe ``line_search``, as ``jax.scipy.optimize`` runs it: a dense inverse-Hessian
estimate, updated only when the curvature ``y.s`` is usable, all in one
``lax.while_loop``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.scipy.optimize.line_search import line_search
from fungrad.transforms.api import value_and_grad


def minimize_bfgs(fun: Callable, x0: Any, maxiter: int | None = None, norm: Any = np.inf,
                  gtol: float = 1e-5, line_search_maxiter: int = 10) -> dict:
    """Minimise ``fun`` from the flat ``x0``; stop when ``|grad|_norm < gtol``.

    Returns a dict with ``converged``, ``failed``, ``k``, ``nfev``, ``ngev``, ``x_k``,
    ``f_k``, ``g_k``, ``H_k`` and ``status`` (0 converged, 1 too many iterations,
    2 + the line search's status when it failed).
    """
    if maxiter is None:
        maxiter = int(np.size(x0)) * 200
    d = x0.shape[0]
    f_0, g_0 = value_and_grad(fun)(x0)
    one = jnp.ones((), jnp.int32)
    state = {"converged": jnp.linalg.norm(g_0, ord=norm) < gtol, "failed": jnp.asarray(False),
             "k": jnp.zeros((), jnp.int32), "nfev": one, "ngev": one, "x_k": x0, "f_k": f_0,
             "g_k": g_0, "H_k": jnp.eye(d, dtype=x0.dtype),
             "old_old_fval": f_0 + jnp.linalg.norm(g_0) / 2, "ls_status": jnp.zeros((), jnp.int32)}

    def body(s):
        p_k = -(s["H_k"] @ s["g_k"])
        ls = line_search(fun, s["x_k"], p_k, old_fval=s["f_k"], old_old_fval=s["old_old_fval"],
                         gfk=s["g_k"], maxiter=line_search_maxiter)
        s_k = ls.a_k * p_k
        y_k = ls.g_k - s["g_k"]
        rho = 1 / jnp.dot(y_k, s_k)
        w = jnp.eye(d, dtype=rho.dtype) - rho * jnp.outer(s_k, y_k)
        h_new = w @ s["H_k"] @ w.T + rho * jnp.outer(s_k, s_k)
        return {"converged": jnp.linalg.norm(ls.g_k, ord=norm) < gtol, "failed": ls.failed,
                "k": s["k"] + 1, "nfev": s["nfev"] + ls.nfev, "ngev": s["ngev"] + ls.ngev,
                "x_k": s["x_k"] + s_k, "f_k": ls.f_k, "g_k": ls.g_k,
                "H_k": jnp.where(jnp.isfinite(rho), h_new, s["H_k"]), "old_old_fval": s["f_k"],
                "ls_status": ls.status.astype(jnp.int32)}

    s = lax.while_loop(lambda s: ~s["converged"] & ~s["failed"] & (s["k"] < maxiter), body,
                       state)
    s["status"] = jnp.where(s["converged"], 0, jnp.where(
        s["k"] == maxiter, 1, jnp.where(s["failed"], 2 + s["ls_status"], -1)))
    return s
