"""The decompositions of ``jax.scipy.linalg`` beyond NumPy's: ``schur`` and ``rsf2csf``,
``hessenberg``, ``qr_multiply``, ``polar`` (QDWH or SVD) and ``eigh_tridiagonal``
(eigenvalues by bisection on Sturm sequences).

``schur`` and ``hessenberg`` are the LAPACK primitives of ``fungrad.lax.linalg`` (no
derivatives, as in JAX); the rest are composites of differentiable primitives, written
for one matrix and broadcast over leading axes with ``jnp.vectorize`` as JAX does.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax
from fungrad.lax import linalg as lax_linalg
from fungrad.numpy import linalg as np_linalg
from fungrad.numpy._util import (aval, ensure_arraylike, promote_dtypes_complex,
                                 promote_dtypes_inexact, to_complex_dtype)

__all__ = ["eigh_tridiagonal", "hessenberg", "polar", "qr_multiply", "rsf2csf", "schur"]


def schur(a: Any, output: str = "real") -> tuple[Any, Any]:
    """Schur decomposition ``a = Z T Z^H``: ``(T, Z)`` with ``Z`` unitary and ``T`` upper
    triangular (``output='complex'``) or quasi-upper-triangular, with 2x2 diagonal blocks
    for complex eigenvalue pairs (``'real'``, for real ``a``). LAPACK's ``gees``; not
    differentiable (as in JAX).

    >>> import fungrad.numpy as jnp
    >>> t, z = schur(jnp.array([[1., 2.], [2., 1.]]))
    >>> bool(jnp.allclose(z @ t @ z.T, jnp.array([[1., 2.], [2., 1.]]), atol=1e-6))
    True
    """
    if output not in ("real", "complex"):
        raise ValueError(f"schur: expected 'output' to be either 'real' or 'complex', got "
                         f"output={output!r}.")
    a = ensure_arraylike("schur", a)
    if output == "complex":
        a = a.astype(to_complex_dtype(aval(a).dtype))
    t, z = lax_linalg.schur(a)
    return t, z


def _rsf2csf_2d(t: Any, z: Any) -> tuple[Any, Any]:
    t, z = promote_dtypes_complex(t, z)
    n, dt = aval(t).shape[0], aval(t).dtype
    eps = np.finfo(dt).eps
    # From the bottom up, each 2x2 diagonal block with a nonzero sub-diagonal entry is
    # made triangular by a Givens rotation G built from one of its eigenvalues, applied to
    # rows m-1, m of T from the left, to its columns from the right and to Z's columns.
    for m in range(n - 1, 0, -1):
        sub = t[m, m - 1]
        split = jnp.abs(sub) > eps * (jnp.abs(t[m - 1, m - 1]) + jnp.abs(t[m, m]))
        mu = np_linalg.eigvals(t[m - 1:m + 1, m - 1:m + 1])[0] - t[m, m]
        r = np_linalg.norm(jnp.stack([mu, sub])).astype(dt)
        r = jnp.where(r == 0, jnp.ones((), dt), r)
        c, s = mu / r, sub / r
        g = jnp.stack([jnp.stack([jnp.conj(c), s]), jnp.stack([-s, c])])
        rotated = t.at[m - 1:m + 1, m - 1:].set(g @ t[m - 1:m + 1, m - 1:])
        rotated = rotated.at[:m + 1, m - 1:m + 1].set(rotated[:m + 1, m - 1:m + 1] @ g.conj().T)
        t = jnp.where(split, rotated, t).at[m, m - 1].set(0)
        z = jnp.where(split, z.at[:, m - 1:m + 1].set(z[:, m - 1:m + 1] @ g.conj().T), z)
    return t, z


def rsf2csf(T: Any, Z: Any, check_finite: bool = True) -> tuple[Any, Any]:
    """Convert a real Schur form ``(T, Z)`` (``schur(a)``) to the complex one: ``T``
    upper triangular, both complex, ``a = Z T Z^H`` kept. Batch axes broadcast.

    >>> import fungrad.numpy as jnp
    >>> t, z = rsf2csf(*schur(jnp.array([[0., -1.], [1., 0.]])))
    >>> bool(t[1, 0] == 0), t.dtype
    (True, dtype('complex64'))
    """
    t, z = ensure_arraylike("rsf2csf", T, Z)
    st, sz = aval(t).shape, aval(z).shape
    if len(st) < 2 or st[-1] != st[-2]:
        raise ValueError(f"rsf2csf: input 'T' must be square, got shape {st}.")
    if len(sz) < 2 or sz[-1] != sz[-2]:
        raise ValueError(f"rsf2csf: input 'Z' must be square, got shape {sz}.")
    if st[-1] != sz[-1]:
        raise ValueError(f"rsf2csf: input array shapes must match: Z: {sz} vs. T: {st}")
    return jnp.vectorize(_rsf2csf_2d, signature="(n,n),(n,n)->(n,n),(n,n)")(t, z)


def hessenberg(a: Any, *, calc_q: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> Any:
    """Hessenberg form ``a = Q H Q^H`` (``H`` zero below the first sub-diagonal, ``Q``
    unitary): ``H``, or ``(H, Q)`` with ``calc_q``. LAPACK's ``gehrd`` and ``orgqr``; not
    differentiable (as in JAX).

    >>> import fungrad.numpy as jnp
    >>> h = hessenberg(jnp.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 10.]]))
    >>> float(h[2, 0])
    0.0
    """
    a = ensure_arraylike("hessenberg", a)
    n = aval(a).shape[-1]
    if n == 0:
        return (jnp.zeros_like(a), jnp.zeros_like(a)) if calc_q else jnp.zeros_like(a)
    packed, taus = lax_linalg.hessenberg(a)
    h = jnp.triu(packed, -1)
    if not calc_q:
        return h
    q = lax_linalg.householder_product(packed[..., 1:, :-1], taus)
    # Q is the identity in its first row and column: the reflectors act on rows 1..n-1.
    q = jnp.pad(q, [(0, 0)] * (aval(q).ndim - 2) + [(1, 0), (1, 0)])
    return h, q.at[..., 0, 0].set(1)


def qr_multiply(a: Any, c: Any, mode: str = "right", pivoting: bool = False,
                conjugate: bool = False, overwrite_a: bool = False,
                overwrite_c: bool = False) -> tuple[Any, ...]:
    """QR-decompose ``a`` (``[..., m, n]``) and multiply ``Q`` with ``c``: ``(Q @ c, R)``
    (``mode='left'``, ``c`` ``[..., k, p]`` with ``k = min(m, n)``) or ``(c @ Q, R)``
    (``'right'``, ``c`` ``[..., p, m]``, the product ``[..., p, k]``); ``conjugate`` uses
    ``conj(Q)``. A vector ``c`` is a column (left) or a row (right) and the product is
    raveled. Batch axes broadcast. ``Q`` here is the economic factor (the product is the
    same as with the full one). With ``pivoting`` (column pivoting) the permutation ``P``
    of ``a[..., :, P] = Q R`` follows: ``(product, R, P)``.

    >>> import fungrad.numpy as jnp
    >>> qtb, r = qr_multiply(jnp.array([[1., 1.], [1., 2.], [1., 3.]]), jnp.array([1., 2., 3.]))
    >>> qtb.shape, r.shape
    ((2,), (2, 2))
    """
    if mode not in ("right", "left"):
        raise ValueError(f"qr_multiply: mode must be 'right' or 'left', got {mode!r}")
    a, c = promote_dtypes_inexact(*ensure_arraylike("qr_multiply", a, c))
    vector = aval(c).ndim == 1
    if vector:
        c = c[:, None] if mode == "left" else c[None, :]
    m, n = aval(a).shape[-2:]
    k = min(m, n)
    rows, cols = aval(c).shape[-2:]
    if mode == "left" and rows != k:
        raise ValueError(f"qr_multiply: array shapes are not compatible for Q @ c: a has "
                         f"shape {aval(a).shape} so Q has {k} columns, but c has {rows} "
                         f"rows (expected {k}).")
    if mode == "right" and cols != m:
        raise ValueError(f"qr_multiply: array shapes are not compatible for c @ Q: a has "
                         f"shape {aval(a).shape} so Q has {m} rows, but c has {cols} "
                         f"columns (expected {m}).")
    batch = np.broadcast_shapes(aval(a).shape[:-2], aval(c).shape[:-2])
    a = jnp.broadcast_to(a, batch + (m, n))
    c = jnp.broadcast_to(c, batch + (rows, cols))
    q, r, *p = lax_linalg.qr(a, pivoting=pivoting, full_matrices=False)
    if conjugate:
        q = jnp.conj(q)
    out = q @ c if mode == "left" else c @ q
    return ((out.ravel() if vector else out), r) + tuple(p)


# --------------------------------------------------------------------------- polar

_CHOLESKY_CUTOFF = 100  # larger c: the QR form of the iteration (better conditioned)


def _qdwh_weights(eps: float, max_iterations: int) -> list[tuple[float, float, float]]:
    """The dynamic weights ``(a, b, c)`` of each QDWH step, from the lower bound ``l`` of
    the smallest singular value of the scaled iterate (Nakatsukasa, Bai and Gygi 2010,
    eq. 3.6-3.8): static, as they only depend on ``eps``."""
    weights, low, tol_l = [], eps, 5 * eps
    while low + tol_l < 1 and len(weights) < max_iterations:
        l2 = low * low
        d = (4 * (1 / l2 - 1) / l2) ** (1 / 3)
        sqd = (1 + d) ** 0.5
        a = sqd + (2 - d + 2 * (2 - l2) / (l2 * sqd)) ** 0.5
        b = (a - 1) ** 2 / 4
        c = a + b - 1
        low = low * (a + b * l2) / (1 + c * l2)
        weights.append((a, b, c))
    return weights


def _halley_qr(u: Any, a: float, b: float, c: float) -> Any:
    """One weighted Halley step ``u (a I + b u^H u)(I + c u^H u)^-1`` through the QR
    decomposition of ``[sqrt(c) u; I]`` (no inverse)."""
    m, n = aval(u).shape
    e = b / c
    q, _ = lax_linalg.qr(jnp.concatenate([c ** 0.5 * u, jnp.eye(n, dtype=aval(u).dtype)]),
                         full_matrices=False)
    return e * u + (a - e) / c ** 0.5 * (q[:m] @ q[m:].conj().T)


def _halley_cholesky(u: Any, a: float, b: float, c: float) -> Any:
    """The same step through the Cholesky factor of ``I + c u^H u`` (cheaper; accurate
    once ``c`` is moderate)."""
    n = aval(u).shape[1]
    e = b / c
    x = c * (u.conj().T @ u) + jnp.eye(n, dtype=aval(u).dtype)
    factor = lax_linalg.cholesky(x, symmetrize_input=False)
    y = lax_linalg.triangular_solve(factor, u.conj().T, left_side=True, lower=True)
    z = lax_linalg.triangular_solve(factor, y, left_side=True, lower=True, transpose_a=True,
                                    conjugate_a=True)
    return e * u + (a - e) * z.conj().T


def _qdwh(x: Any, eps: float | None, max_iterations: int) -> tuple[Any, Any]:
    """Polar factors ``(u, h)`` of ``x`` (``m >= n``) by the QR-based dynamically weighted
    Halley iteration: scale ``x`` so its singular values lie in ``(0, 1]``, take the
    weighted steps (QR form while ``c`` is large, then Cholesky), continue with the plain
    Halley step until the iterate stops moving, and finish with one Newton-Schulz step."""
    dt = aval(x).dtype
    eps = float(np.finfo(dt).eps) if eps is None else eps
    one, inf = np_linalg.norm(x, ord=1), np_linalg.norm(x, ord=np.inf)
    scale = jnp.where(one == 0, 1, lax.rsqrt(one) * lax.rsqrt(inf))
    u = x * scale.astype(dt)
    tol_norm = (5 * eps) ** (1 / 3)
    weights = _qdwh_weights(eps, max_iterations)
    moving = jnp.asarray(True)
    for a, b, c in weights:
        if c > _CHOLESKY_CUTOFF:
            u = _halley_qr(u, a, b, c)
        else:
            u, previous = _halley_cholesky(u, a, b, c), u
            moving = np_linalg.norm(u - previous) > tol_norm

    def cond(state):
        k, _, moving = state
        return jnp.logical_and(moving, k < max_iterations)

    def body(state):
        k, u, _ = state
        new = _halley_cholesky(u, 3.0, 1.0, 3.0)
        return k + 1, new, np_linalg.norm(new - u) > tol_norm

    _, u, _ = lax.while_loop(cond, body, (len(weights), u, moving))
    u = 1.5 * u - 0.5 * u @ (u.conj().T @ u)
    h = u.conj().T @ x
    return u, (h + h.conj().T) / 2


def _polar_2d(a: Any, side: str, method: str, eps: float | None,
              max_iterations: int | None) -> tuple[Any, Any]:
    m, n = aval(a).shape
    if method == "qdwh":
        # The QDWH iteration itself has no max_iterations argument in JAX's polar: 10.
        if m >= n and side == "right":
            return _qdwh(a, eps, 10)
        if m < n and side == "left":
            u, p = _qdwh(a.conj().T, eps, 10)
            return u.conj().T, p.conj().T
        raise NotImplementedError("polar: method='qdwh' only supports m x n matrices with "
                                  "m >= n for side='right' and m < n for side='left', got "
                                  f"{(m, n)} with side={side!r}")
    if method != "svd":
        raise ValueError(f"polar: unknown polar decomposition method {method!r}.")
    u, s, vh = lax_linalg.svd(a, full_matrices=False)
    s = s.astype(aval(u).dtype)
    if side == "right":
        return u @ vh, (vh.conj().T * s[None, :]) @ vh
    return u @ vh, (u * s[None, :]) @ u.conj().T


def polar(a: Any, side: str = "right", *, method: str = "qdwh", eps: float | None = None,
          max_iterations: int | None = None) -> tuple[Any, Any]:
    """Polar decomposition ``a = u p`` (``side='right'``, ``p`` ``[..., n, n]``) or
    ``a = p u`` (``'left'``, ``p`` ``[..., m, m]``): ``u`` has orthonormal columns (rows
    if ``n > m``) and ``p`` is positive semidefinite. ``method`` 'qdwh' (the QR-based
    dynamically weighted Halley iteration, to tolerance ``(4 eps)^(1/3)``) or 'svd'
    (``u = U V^H`` from the SVD). Returns ``(u, p)``.

    >>> import fungrad.numpy as jnp
    >>> u, p = polar(jnp.array([[2., 0.], [0., -3.]]))
    >>> u
    Array([[ 1.,  0.],
           [ 0., -1.]], dtype=float32)
    """
    a = ensure_arraylike("polar", a)
    if aval(a).ndim < 2:
        raise ValueError("polar: the input `a` must be at least a 2-D array.")
    if side not in ("right", "left"):
        raise ValueError("polar: the argument `side` must be either 'right' or 'left'.")
    sig = "(m,n)->(m,n),(n,n)" if side == "right" else "(m,n)->(m,n),(m,m)"
    fn = functools.partial(_polar_2d, side=side, method=method, eps=eps,
                           max_iterations=max_iterations)
    return jnp.vectorize(fn, signature=sig)(a)


# --------------------------------------------------------------------------- eigh_tridiagonal

def _sturm_count(alpha: Any, beta_sq: Any, pivmin: Any, first_perturbation: Any,
                 x: Any) -> Any:
    """For each shift in ``x``, the number of eigenvalues of the tridiagonal matrix below
    it: the negative terms of the Sturm sequence ``q_i = alpha_i - x - beta_i^2 / q_{i-1}``
    (pivots kept at least ``pivmin`` in magnitude; ``q_0 == 0`` perturbed)."""
    q = alpha[0] - x
    count = jnp.where(q < 0, 1, 0).astype(np.int32)
    q = jnp.where(alpha[0] == x, first_perturbation, q)

    def step(i, state):
        q, count = state
        q = alpha[i] - beta_sq[i - 1] / q - x
        small = q <= pivmin
        return jnp.where(small, jnp.minimum(q, -pivmin), q), count + small.astype(np.int32)

    return lax.fori_loop(1, aval(alpha).shape[0], step, (q, count))[1]


def eigh_tridiagonal(d: Any, e: Any, *, eigvals_only: bool = False, select: str = "a",
                     select_range: tuple[float, float] | None = None,
                     tol: float | None = None, key: Any = None) -> Any:
    """Eigenvalues (ascending) of the real symmetric (or Hermitian) tridiagonal matrix
    with diagonal ``d`` (``[n]``) and off-diagonal ``e`` (``[n - 1]``), by bisection on
    Sturm counts from the Gershgorin interval, all eigenvalues at once, to the absolute
    tolerance ``max(tol, eps * ||T||)``. ``select`` 'a' (all) or 'i' (indices
    ``select_range[0] .. select_range[1]``). Only ``eigvals_only=True`` is implemented.

    >>> import fungrad.numpy as jnp
    >>> eigh_tridiagonal(jnp.array([1., 2., 3., 4.]), jnp.array([1., 1., 1.]),
    ...                  eigvals_only=True)
    Array([0.2547188, 1.8227171, 3.1772828, 4.745281 ], dtype=float32)
    """
    alpha, beta = ensure_arraylike("eigh_tridiagonal", d, e)
    if aval(alpha).dtype != aval(beta).dtype:
        raise TypeError("eigh_tridiagonal: diagonal and off-diagonal values must have same "
                        f"dtype, got {aval(alpha).dtype} and {aval(beta).dtype}")
    if aval(alpha).dtype not in (np.float32, np.float64, np.complex64, np.complex128):
        raise TypeError("eigh_tridiagonal: only float32 and float64 inputs are supported, got "
                        f"{aval(alpha).dtype}")
    if not eigvals_only:
        raise NotImplementedError("eigh_tridiagonal: eigenvectors (eigvals_only=False) are not "
                                  "implemented")
    n = aval(alpha).shape[0]
    if n <= 1:
        return jnp.real(alpha)
    if aval(alpha).dtype.kind == "c":
        alpha, beta_sq = jnp.real(alpha), jnp.real(beta * jnp.conj(beta))
        beta_abs = jnp.sqrt(beta_sq)
    else:
        beta_abs, beta_sq = jnp.abs(beta), jnp.square(beta)
    dt = aval(alpha).dtype
    finfo = np.finfo(dt)
    # Gershgorin bounds on the spectrum, and the smallest pivot the recurrence may meet.
    radius = jnp.concatenate([beta_abs[:1], beta_abs[:-1] + beta_abs[1:], beta_abs[-1:]])
    top, bottom = jnp.max(alpha + radius), jnp.min(alpha - radius)
    t_norm = jnp.maximum(jnp.abs(bottom), jnp.abs(top))
    one = np.ones((), dt)
    safemin = np.maximum(one / finfo.max, (one + finfo.eps) * finfo.tiny)
    pivmin = safemin * jnp.maximum(1, jnp.max(beta_sq))
    first_perturbation = jnp.square(finfo.eps * beta_abs[0])
    abs_tol = finfo.eps * t_norm if tol is None else jnp.maximum(tol, finfo.eps * t_norm)
    if select == "a":
        targets = np.arange(n, dtype=np.int32)
    elif select == "i":
        if select_range is None:
            raise ValueError("eigh_tridiagonal: for select='i', select_range must be "
                             "specified.")
        if select_range[0] > select_range[1]:
            raise ValueError("eigh_tridiagonal: got empty index range in select_range.")
        targets = np.arange(select_range[0], select_range[1] + 1, dtype=np.int32)
    elif select == "v":
        raise NotImplementedError("eigh_tridiagonal(..., select='v') is not implemented")
    else:
        raise ValueError("eigh_tridiagonal: select must have a value in {'a', 'i', 'v'}.")
    fudge = 2.1  # the Gershgorin interval, slightly widened
    slack = n * fudge * finfo.eps * t_norm
    shape = targets.shape
    lower = jnp.broadcast_to(bottom - slack - 2 * fudge * pivmin, shape)
    upper = jnp.broadcast_to(top + slack + fudge * pivmin, shape)
    pivmin = jnp.broadcast_to(pivmin, shape)
    first_perturbation = jnp.broadcast_to(first_perturbation, shape)

    def cond(state):
        i, lower, _, upper = state
        return jnp.logical_and(i < finfo.nmant + 1, jnp.max(upper - lower) > abs_tol)

    def body(state):
        i, lower, mid, upper = state
        counts = _sturm_count(alpha, beta_sq, pivmin, first_perturbation, mid)
        lower = jnp.where(counts <= targets, mid, lower)
        upper = jnp.where(counts > targets, mid, upper)
        return i + 1, lower, 0.5 * (lower + upper), upper

    return lax.while_loop(cond, body, (0, lower, 0.5 * (lower + upper), upper))[2]
