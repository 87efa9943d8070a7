"""LAPACK's Householder reductions written as whole-array operations, for any array module.

``geqrf``, ``geqp3``, ``orgqr``/``ungqr``, ``ormqr``/``unmqr``, ``gehrd`` and
``sytrd``/``hetrd`` in LAPACK's packed conventions, one reflector at a time, each step a
few array operations batched over the leading axes. On the CPU fungrad calls LAPACK itself
(``_lapack.py``); these serve where it cannot: on a GPU (CuPy has none of these routines,
and they run there without reading anything back to the host) and on a NumPy without
LAPACK symbols. They agree with LAPACK to rounding, not to the bit: LAPACK blocks its
updates and, in ``geqp3``, downdates the column norms where these recompute them, so
columns whose norms tie to rounding may be chosen in another order.

A reflector is LAPACK's ``larfg``: ``H = I - tau u u^H`` with ``u = (1, v)`` and
``H^H (alpha, x) = (beta, 0)``, ``beta`` real of the opposite sign to ``Re(alpha)``;
``tau = 0`` (``H = I``) when ``x`` is zero and ``alpha`` real.
"""
from __future__ import annotations

from typing import Any


def _reflector(xp: Any, alpha: Any, x: Any) -> tuple[Any, Any, Any]:
    """``(beta, tau, v)`` of the reflectors taking ``(alpha[b], x[b, :])`` to
    ``(beta[b], 0)``, over a batch ``b``; ``beta`` in ``alpha``'s dtype."""
    ax = xp.abs(x)
    x_max = ax.max(axis=-1) if x.shape[-1] else xp.zeros_like(xp.abs(alpha))
    scale = xp.maximum(xp.abs(alpha), x_max)
    # (filled arrays, not Python scalars, which array modules promote differently in where)
    scale = xp.where(scale == 0, xp.full_like(scale, 1), scale)  # a norm without overflow
    norm = scale * xp.sqrt(xp.abs(alpha / scale) ** 2 + ((ax / scale[..., None]) ** 2).sum(-1))
    identity = x_max == 0
    if alpha.dtype.kind == "c":
        identity &= xp.imag(alpha) == 0
    beta = xp.where(xp.signbit(xp.real(alpha)), norm, -norm).astype(alpha.dtype)
    beta = xp.where(identity, alpha, beta)
    safe_beta = xp.where(identity, xp.full_like(beta, 1), beta)
    tau = xp.where(identity, xp.full_like(beta, 0), (safe_beta - alpha) / safe_beta)
    denominator = xp.where(identity, xp.full_like(beta, 1), alpha - safe_beta)
    return beta, tau, x / denominator[..., None]


def _unit_first(xp: Any, v: Any) -> Any:
    """``u = (1, v)``: a reflector's vector with its implicit leading one."""
    return xp.concatenate([xp.ones(v.shape[:-1] + (1,), v.dtype), v], axis=-1)


def _unit_last(xp: Any, v: Any) -> Any:
    """``u = (v, 1)``: the vector of a reflector that ends at its ``alpha``."""
    return xp.concatenate([v, xp.ones(v.shape[:-1] + (1,), v.dtype)], axis=-1)


def _unless_identity(xp: Any, tau: Any, c: Any, reflected: Any) -> Any:
    """``reflected``, or ``c`` itself where ``tau`` is 0: LAPACK skips a reflection that is
    the identity, which keeps the signs of the zeros it would have touched."""
    return xp.where((tau == 0)[..., None, None], c, reflected)


def _apply_left(xp: Any, c: Any, u: Any, tau: Any) -> Any:
    """``(I - tau u u^H) c`` for ``c[b, p, q]``, ``u[b, p]``, ``tau[b]``."""
    return _unless_identity(xp, tau, c, c - (tau[..., None, None] * u[..., :, None]) *
                            (xp.conj(u)[..., None, :] @ c))


def _apply_right(xp: Any, c: Any, u: Any, tau: Any) -> Any:
    """``c (I - tau u u^H)`` for ``c[b, p, q]``, ``u[b, q]``, ``tau[b]``."""
    return _unless_identity(xp, tau, c, c - (c @ u[..., :, None]) *
                            (tau[..., None, None] * xp.conj(u)[..., None, :]))


def _reduce_column(xp: Any, a: Any, taus: Any, j: int) -> None:
    """Step ``j`` of a QR factorisation, in place: the reflector of ``a[j:, j]`` stored
    below the diagonal and in ``taus[j]``, its adjoint applied to the columns after ``j``."""
    beta, tau, v = _reflector(xp, a[..., j, j], a[..., j + 1:, j])
    a[..., j, j], a[..., j + 1:, j], taus[..., j] = beta, v, tau
    if j + 1 < a.shape[-1]:
        a[..., j:, j + 1:] = _apply_left(xp, a[..., j:, j + 1:], _unit_first(xp, v), xp.conj(tau))


def geqrf(xp: Any, a: Any) -> tuple[Any, Any]:
    """QR factorisations of ``a[..., m, n]`` packed as LAPACK's ``geqrf``: ``(a, taus)``."""
    a = a.copy()
    taus = xp.zeros(a.shape[:-2] + (min(a.shape[-2:]),), a.dtype)
    for j in range(taus.shape[-1]):
        _reduce_column(xp, a, taus, j)
    return a, taus


def _swap(xp: Any, index: Any, i: int, p: Any) -> Any:
    """Positions ``i`` and ``p[b]`` of ``index[b, :]`` exchanged, per batch element."""
    at = xp.arange(index.shape[-1])
    p = p[..., None]
    return xp.take_along_axis(index, xp.where(at == i, p, xp.where(at == p, i, at)), axis=-1)


def geqp3(xp: Any, a: Any, jpvt: Any) -> tuple[Any, Any, Any]:
    """Column-pivoted QR factorisations as LAPACK's ``geqp3``: ``(a, jpvt, taus)``.

    Columns with a nonzero ``jpvt`` move to the front first (in LAPACK's order of swaps)
    and stay there; each later step takes the remaining column of largest norm (the first
    of equals). ``jpvt`` comes back counting from 1."""
    n, k = a.shape[-1], min(a.shape[-2:])
    if k == 0:  # LAPACK returns before reading jpvt
        return a.copy(), jpvt.copy(), xp.zeros(a.shape[:-2] + (0,), a.dtype)
    batch = a.shape[:-2]
    order = xp.broadcast_to(xp.arange(n), batch + (n,))
    fixed = jpvt != 0
    n_fixed = xp.zeros(batch, order.dtype)
    for j in range(n):  # LAPACK's move of the fixed columns to the front
        order = _swap(xp, order, j, xp.where(fixed[..., j], n_fixed, j))
        n_fixed = n_fixed + fixed[..., j]
    a = xp.take_along_axis(a, xp.broadcast_to(order[..., None, :], a.shape), axis=-1)
    taus = xp.zeros(batch + (k,), a.dtype)
    for j in range(k):
        norms = (xp.abs(a[..., j:, j:]) ** 2).sum(axis=-2)
        pivot = xp.where(j < n_fixed, j, j + xp.argmax(norms, axis=-1))
        swap = _swap(xp, xp.broadcast_to(xp.arange(n), batch + (n,)), j, pivot)
        a = xp.take_along_axis(a, xp.broadcast_to(swap[..., None, :], a.shape), axis=-1)
        order = xp.take_along_axis(order, swap, axis=-1)
        _reduce_column(xp, a, taus, j)
    return a, (order + 1).astype(jpvt.dtype), taus


def orgqr(xp: Any, a: Any, taus: Any) -> Any:
    """``H_1 ... H_k``'s first ``n`` columns for the reflectors below the diagonal of
    ``a[..., m, n]`` (LAPACK's ``orgqr``/``ungqr``), accumulated from the last."""
    m, n = a.shape[-2:]
    q = xp.broadcast_to(xp.eye(m, n, dtype=a.dtype), a.shape).copy()
    for i in reversed(range(taus.shape[-1])):
        u = _unit_first(xp, a[..., i + 1:, i])
        q[..., i:, i:] = _apply_left(xp, q[..., i:, i:], u, taus[..., i])
    return q


def ormqr(xp: Any, a: Any, taus: Any, c: Any, *, left: bool, transpose: bool) -> Any:
    """``Q c``, ``Q^H c``, ``c Q`` or ``c Q^H`` for ``Q = H_1 ... H_k`` (LAPACK's
    ``ormqr``/``unmqr``): ``Q`` applies its last reflector first, ``Q^H`` its first."""
    c = c.copy()
    steps = range(taus.shape[-1])
    for i in steps if left == transpose else reversed(steps):
        u = _unit_first(xp, a[..., i + 1:, i])
        tau = xp.conj(taus[..., i]) if transpose else taus[..., i]
        if left:
            c[..., i:, :] = _apply_left(xp, c[..., i:, :], u, tau)
        else:
            c[..., :, i:] = _apply_right(xp, c[..., :, i:], u, tau)
    return c


def gehrd(xp: Any, a: Any) -> tuple[Any, Any]:
    """Hessenberg reductions ``Q^H a Q`` packed as LAPACK's ``gehrd``: ``(h, taus)``."""
    h, n = a.copy(), a.shape[-1]
    taus = xp.zeros(a.shape[:-2] + (max(n - 1, 0),), a.dtype)
    for i in range(n - 1):
        beta, tau, v = _reflector(xp, h[..., i + 1, i], h[..., i + 2:, i])
        u = _unit_first(xp, v)
        h[..., :, i + 1:] = _apply_right(xp, h[..., :, i + 1:], u, tau)
        h[..., i + 1:, i + 1:] = _apply_left(xp, h[..., i + 1:, i + 1:], u, xp.conj(tau))
        h[..., i + 1, i], h[..., i + 2:, i], taus[..., i] = beta, v, tau
    return h, taus


def _hermitian(xp: Any, a: Any, lower: bool) -> Any:
    """The Hermitian matrix of ``a``'s lower (or upper) triangle and its real diagonal."""
    part = xp.tril(a, -1) if lower else xp.triu(a, 1)
    diagonal = xp.real(xp.diagonal(a, axis1=-2, axis2=-1))
    return part + xp.conj(xp.swapaxes(part, -1, -2)) + xp.eye(a.shape[-1], dtype=a.dtype) * \
        diagonal[..., None, :]


def _two_sided(xp: Any, block: Any, u: Any, tau: Any) -> Any:
    """``H^H block H`` for Hermitian ``block``, ``H = I - tau u u^H``, as LAPACK's
    ``sytd2``: ``block - u w^H - w u^H`` with ``x = tau block u`` and
    ``w = x - tau (x^H u) u / 2``."""
    x = tau[..., None] * (block @ u[..., :, None])[..., 0]
    w = x - (0.5 * tau * (xp.conj(x) * u).sum(-1))[..., None] * u
    return _unless_identity(xp, tau, block, block - u[..., :, None] * xp.conj(w)[..., None, :] -
                            w[..., :, None] * xp.conj(u)[..., None, :])


def sytrd(xp: Any, a: Any, lower: bool) -> tuple[Any, Any, Any, Any]:
    """Tridiagonal reductions of Hermitian ``a`` from its ``lower`` (or upper) triangle,
    as LAPACK's ``sytrd``/``hetrd``: ``(a, d, e, taus)``. The other triangle of the packed
    ``a`` is the input's, untouched, as LAPACK leaves it."""
    n, batch = a.shape[-1], a.shape[:-2]
    work, packed = _hermitian(xp, a, lower), a.copy()
    real = xp.real(xp.zeros(0, a.dtype)).dtype
    d, e = xp.zeros(batch + (n,), real), xp.zeros(batch + (max(n - 1, 0),), real)
    taus = xp.zeros(batch + (max(n - 1, 0),), a.dtype)
    for step in range(n - 1):
        # lower: annihilate column i below its sub-diagonal, i = 0, 1, ...; upper: column
        # i + 1 above its super-diagonal, i = n - 2, ..., 0 (alpha ends the vector)
        i = step if lower else n - 2 - step
        if lower:
            beta, tau, v = _reflector(xp, work[..., i + 1, i], work[..., i + 2:, i])
            part, u = slice(i + 1, None), _unit_first(xp, v)
            packed[..., i + 1, i], packed[..., i + 2:, i] = beta, v
        else:
            beta, tau, v = _reflector(xp, work[..., i, i + 1], work[..., :i, i + 1])
            part, u = slice(None, i + 1), _unit_last(xp, v)
            packed[..., i, i + 1], packed[..., :i, i + 1] = beta, v
        work[..., part, part] = _two_sided(xp, work[..., part, part], u, tau)
        e[..., i], taus[..., i] = xp.real(beta), tau
    for i in range(n):
        d[..., i] = xp.real(work[..., i, i])
        packed[..., i, i] = d[..., i]
    return packed, d, e, taus

