"""Bessel functions of the first kind of integer order for ``jax.scipy.special``:
``bessel_jn``.

Miller's backward recurrence (Zhang and Jin, *Computation of Special Functions*, 1996, as
JAX cites): from ``f_(N+1) = 0`` and a tiny ``f_N``, ``f_k = 2 (k + 1) f_(k+1) / z -
f_(k+2)`` runs down to ``k = 0`` in one ``lax.scan``; the ``f_k`` are then proportional to
``J_k(z)`` and the identity ``J_0 + 2 sum_m J_(2m) = 1`` fixes the scale. Derivatives go
through the scan, as in JAX.
"""
from __future__ import annotations

import operator
from typing import Any

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact, scalar_like
from fungrad.numpy._util import where as _where


def _miller_recurrence(z: Any, n_iter: int) -> Any:
    """``J_0(z) .. J_n_iter(z)`` stacked on a new leading axis."""
    def step(carry, k):
        f_next2, f_next, even_sum = carry  # f_(k+2), f_(k+1), 2 sum f_j over even j > k
        f = 2 * (k + 1) * f_next / z - f_next2
        even_sum = _where(lax.rem(k, scalar_like(2, k)) == 0, even_sum + 2 * f, even_sum)
        return (f_next, f, even_sum), f
    init = (jnp.zeros_like(z), jnp.full_like(z, 1e-16), jnp.zeros_like(z))
    ks = lax.iota(z.dtype, n_iter + 1)
    (_, _, even_sum), f = lax.scan(step, init, ks, reverse=True)
    return f / (even_sum - f[0])  # J_0 + 2 (J_2 + J_4 + ...) = 1


def bessel_jn(z: Any, *, v: int, n_iter: int = 50) -> Any:
    """The Bessel functions of the first kind ``J_0(z) .. J_v(z)`` of real ``z``, stacked
    on a new leading axis of length ``v + 1`` (``jax.scipy.special.bessel_jn``).

    ``n_iter`` is the starting order of the backward recurrence: it must exceed ``v`` and
    grow with ``|z|`` (about ``|z| + 25`` for float64 accuracy). In float32 a large
    ``n_iter`` at small ``|z|`` overflows the recurrence to NaN, as in JAX (the default 50
    does so at ``z = 1``).

    Examples:
        >>> import fungrad.scipy.special as fss
        >>> [round(float(j), 6) for j in fss.bessel_jn(1.0, v=1, n_iter=20)]
        [0.765198, 0.440051]
    """
    z, = promote_args_inexact("bessel_jn", z)
    if z.dtype.kind == "c":
        raise ValueError("bessel_jn: complex input not supported.")
    v = operator.index(v)  # a traced v raises a ConcretizationTypeError here
    n_iter = operator.index(n_iter)
    return _miller_recurrence(z, n_iter)[:v + 1]


__all__ = ["bessel_jn"]
