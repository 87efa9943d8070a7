"""Matrix functions of ``jax.scipy.linalg``: ``expm`` (Pade scaling and squaring) and
``expm_frechet``, ``sqrtm`` and ``funm`` (on the complex Schur form), and
``solve_sylvester`` (Bartels-Stewart, or eigendecompositions).

``expm`` is a composite of differentiable primitives (products, ``solve``, ``cond``,
``switch``, ``scan``), so its derivatives are those of the approximation, as in JAX, and
``expm_frechet`` is its JVP. The triangular recurrences of ``sqrtm``, ``funm`` and the
Sylvester solver fill a whole diagonal (anti-diagonal for Sylvester) per step: the
entries of one diagonal depend only on those of earlier ones, so each step is one or two
matrix products over the entries filled so far, ``n`` steps in all.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax
from fungrad.lax import linalg as lax_linalg
from fungrad.numpy import linalg as np_linalg
from fungrad.numpy._util import aval, ensure_arraylike, promote_dtypes_inexact
from fungrad.scipy._linalg_decomp import rsf2csf, schur
from fungrad.transforms.api import jvp

__all__ = ["expm", "expm_frechet", "funm", "solve_sylvester", "sqrtm"]


def _check_square(fname: str, what: str, x: Any) -> None:
    shape = aval(x).shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{fname}: expected {what} to be a (batched) square matrix, got "
                         f"{what}.shape={shape}.")


# --------------------------------------------------------------------------- expm

# Pade coefficients b_0 .. b_m of the [m/m] approximant of exp (Higham 2005, table 2.3).
_PADE = {
    3: (120., 60., 12., 1.),
    5: (30240., 15120., 3360., 420., 30., 1.),
    7: (17297280., 8648640., 1995840., 277200., 25200., 1512., 56., 1.),
    9: (17643225600., 8821612800., 2075673600., 302702400., 30270240., 2162160., 110880.,
        3960., 90., 1.),
    13: (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
         129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
         40840800., 960960., 16380., 182., 1.),
}
# Per precision: the largest 1-norm theta_13 (theta_7 in float32) handled without
# squaring, and the 1-norm bounds below which the lower degrees suffice.
_THETA = {np.dtype(np.float64): (5.371920351148152, (1.495585217958292e-2, 2.539398330063230e-1,
                                                     9.504178996162932e-1, 2.097847961257068),
                                 (3, 5, 7, 9, 13)),
          np.dtype(np.float32): (3.925724783138660, (4.258730016922831e-1, 1.880152677804762),
                                 (3, 5, 7))}


def _pade(m: int, a: Any) -> tuple[Any, Any]:
    """The odd and even parts ``(U, V)`` of the degree-``m`` Pade numerator: ``exp(A) ~
    (V - U)^-1 (V + U)``. Degree 13 evaluates its high powers in two products of ``A^6``
    (Higham's scheme)."""
    b = _PADE[m]
    eye = jnp.eye(aval(a).shape[0], dtype=aval(a).dtype)
    a2 = a @ a
    powers = [eye, a2]  # I, A^2, A^4, ...
    while len(powers) < (4 if m == 13 else (m + 1) // 2):
        powers.append(powers[-1] @ a2)
    if m == 13:
        a4, a6 = powers[2], powers[3]
        u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4
                 + b[3] * a2 + b[1] * eye)
        v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 \
            + b[0] * eye
        return u, v
    u = a @ sum(b[2 * i + 1] * p for i, p in enumerate(powers))
    return u, sum(b[2 * i] * p for i, p in enumerate(powers))


def _expm_2d(a: Any, upper_triangular: bool, max_squarings: int) -> Any:
    dt = aval(a).dtype
    real_dt = np.dtype(np.float64 if dt in (np.float64, np.complex128) else np.float32)
    if real_dt not in _THETA:
        raise TypeError(f"expm: A.dtype={dt} is not supported.")
    max_norm, bounds, degrees = _THETA[real_dt]
    norm = np_linalg.norm(a, 1)
    n_squarings = jnp.maximum(0, jnp.floor(jnp.log2(norm / max_norm)))
    a = a / (2 ** n_squarings).astype(dt)
    degree = jnp.digitize(norm, np.array(bounds, real_dt))
    u, v = lax.switch(degree, [functools.partial(_pade, m) for m in degrees], a)
    p, q = v + u, v - u

    def compute(a: Any) -> Any:
        r = (lax_linalg.triangular_solve(q, p, left_side=True, lower=False)
             if upper_triangular else np_linalg.solve(q, p))

        def square(r: Any, i: Any) -> tuple[Any, None]:
            return lax.cond(i < n_squarings, lambda r: r @ r, lambda r: r, r), None
        return lax.scan(square, r, jnp.arange(max_squarings, dtype=aval(n_squarings).dtype))[0]

    # More squarings than allowed: NaNs, as JAX.
    return lax.cond(n_squarings > max_squarings, lambda a: jnp.full_like(a, np.nan), compute, a)


def expm(A: Any, *, upper_triangular: bool = False, max_squarings: int = 16) -> Any:
    """The matrix exponential of ``A`` (``[..., n, n]``) by scaling and squaring with a
    Pade approximant (Higham 2005): ``A`` is scaled by ``2^-s`` until its 1-norm is at
    most ``theta_13`` (float64) or ``theta_7`` (float32), the lowest adequate degree is
    chosen from the norm, and the result is squared ``s`` times. More than
    ``max_squarings`` squarings give NaNs. ``upper_triangular`` solves the Pade system
    by back substitution.

    >>> import fungrad.numpy as jnp
    >>> expm(jnp.array([[0., 1.], [0., 0.]]))
    Array([[1., 1.],
           [0., 1.]], dtype=float32)
    """
    a, = promote_dtypes_inexact(ensure_arraylike("expm", A))
    _check_square("expm", "A", a)
    if aval(a).size == 0:  # 0x0 matrices (or none): nothing to exponentiate
        return a
    fn = functools.partial(_expm_2d, upper_triangular=upper_triangular,
                           max_squarings=max_squarings)
    return jnp.vectorize(fn, signature="(n,n)->(n,n)")(a)


def expm_frechet(A: Any, E: Any, *, method: str | None = None,
                 compute_expm: bool = True) -> Any:
    """The Frechet derivative of ``expm`` at ``A`` in the direction ``E`` (both ``[...,
    n, n]``): the JVP of ``expm``. Returns ``(expm(A), L(A, E))``, or ``L(A, E)`` alone
    when ``compute_expm`` is False; ``method`` is ignored, as in JAX.

    >>> import fungrad.numpy as jnp
    >>> expm_frechet(jnp.zeros((2, 2)), jnp.eye(2), compute_expm=False)
    Array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    a, e = ensure_arraylike("expm_frechet", A, E)
    _check_square("expm_frechet", "A", a)
    _check_square("expm_frechet", "E", e)
    if aval(a).shape != aval(e).shape:
        raise ValueError("expm_frechet: expected A and E to be the same shape, got "
                         f"A.shape={aval(a).shape} E.shape={aval(e).shape}")
    expm_a, frechet = jvp(expm, (a,), (e,))
    return (expm_a, frechet) if compute_expm else frechet


# --------------------------------------------------------------------------- Schur methods

def _offset_mask(n: int, p: int) -> np.ndarray:
    """True on the ``p``-th super-diagonal of an ``n x n`` matrix."""
    return np.eye(n, k=p, dtype=bool)


def _sqrtm_triu(t: Any) -> Any:
    """The upper triangular square root of upper triangular ``t`` (Bjorck and Hammarling
    1983): ``U_ii = sqrt(T_ii)``, ``U_ij = (T_ij - sum_{i<k<j} U_ik U_kj) / (U_ii +
    U_jj)``, one super-diagonal per step (``U @ U`` over the diagonals filled so far is
    that sum there)."""
    n = aval(t).shape[-1]
    d = jnp.sqrt(jnp.diagonal(t, axis1=-2, axis2=-1))
    u = d[..., :, None] * jnp.eye(n, dtype=aval(t).dtype)
    den = d[..., :, None] + d[..., None, :]
    for p in range(1, n):
        s = u @ u
        u = u + jnp.where(_offset_mask(n, p), jnp.where(t == s, 0, (t - s) / den), 0)
    return u


def sqrtm(A: Any, blocksize: int = 1) -> Any:
    """A square root of ``A`` (``A = X @ X``, complex) by the complex Schur method of
    Bjorck and Hammarling (1983): ``A = Z T Z^H``, ``X = Z sqrt(T) Z^H``. Not
    differentiable (the Schur decomposition is not); ``blocksize`` > 1 (the recursive
    blocked variant) is not implemented, as in JAX.

    >>> import fungrad.numpy as jnp
    >>> sqrtm(jnp.array([[4., 0.], [0., 9.]]))
    Array([[2.+0.j, 0.+0.j],
           [0.+0.j, 3.+0.j]], dtype=complex64)
    """
    if blocksize > 1:
        raise NotImplementedError("sqrtm: the blocked version (blocksize > 1) is not "
                                  "implemented yet.")
    t, z = schur(A, output="complex")
    return z @ _sqrtm_triu(t) @ jnp.swapaxes(z, -1, -2).conj()


def _parlett(f: Any, t: Any) -> tuple[Any, Any]:
    """``F = func(T)`` for upper triangular ``T`` from its diagonal ``f = func(T_ii)`` by
    Parlett's recurrence (Golub and Van Loan, algorithm 11.1.1): ``F_ij (T_jj - T_ii) =
    T_ij (F_jj - F_ii) + sum_{i<k<j} (T_ik F_kj - F_ik T_kj)``, one super-diagonal per
    step (``T F - F T`` over the diagonals filled so far is the right-hand side there).
    Also returns the smallest ``|T_jj - T_ii|`` met (the accuracy estimate's divisor)."""
    n = aval(t).shape[0]
    diag = jnp.diagonal(t)
    den = diag[None, :] - diag[:, None]
    fm = jnp.diag(f)
    smallest = jnp.abs(t[0, 0])
    for p in range(1, n):
        s = t @ fm - fm @ t
        mask = _offset_mask(n, p)
        fm = fm + jnp.where(mask, jnp.where(den != 0, s / den, s), 0)
        smallest = jnp.minimum(smallest, jnp.min(jnp.where(mask, jnp.abs(den), np.inf)))
    return fm, smallest


def funm(A: Any, func: Callable[[Any], Any], disp: bool = True) -> Any:
    """The matrix function ``func(A)`` of a square matrix from ``func`` on scalars:
    ``A = Z T Z^H`` (complex Schur form, via ``rsf2csf``), ``func(T)`` by Parlett's
    recurrence from ``func`` of ``T``'s diagonal, ``Z func(T) Z^H`` (complex). With
    ``disp=False`` returns ``(F, err)``, ``err`` an estimate of the relative error
    (large where eigenvalues nearly coincide). Not differentiable.

    >>> import fungrad.numpy as jnp
    >>> funm(jnp.array([[1., 0.], [0., 4.]]), jnp.sqrt)
    Array([[1.+0.j, 0.+0.j],
           [0.+0.j, 2.+0.j]], dtype=complex64)
    """
    a = ensure_arraylike("funm", A)
    if aval(a).ndim != 2 or aval(a).shape[0] != aval(a).shape[1]:
        raise ValueError(f"funm: expected a square 2-D array, got shape {aval(a).shape}")
    t, z = rsf2csf(*schur(a))
    f = func(jnp.diagonal(t)).astype(aval(t).dtype)
    fm, smallest = _parlett(f, t)
    fm = z @ fm @ z.conj().T
    if disp:
        return fm
    tol = np.finfo(np.float32 if aval(fm).dtype == np.complex64 else np.float64).eps
    smallest = jnp.where(smallest == 0.0, tol, smallest)
    estimate = jnp.minimum(1, jnp.maximum(tol, (tol / smallest)
                                          * np_linalg.norm(jnp.triu(t, 1), 1)))
    return fm, jnp.where(jnp.any(jnp.isinf(fm)), np.inf, estimate)


# --------------------------------------------------------------------------- solve_sylvester

def _sylvester_triangular(r: Any, s: Any, f: Any) -> Any:
    """``Y`` with ``R Y + Y S = F`` for upper triangular ``R`` and lower triangular ``S``
    (Bartels-Stewart back substitution): ``Y_ij`` needs ``Y_kj`` (``k > i``) and ``Y_ik``
    (``k > j``), so one anti-diagonal ``i + j = q`` per step from the bottom right
    (``R Y + Y S`` over the anti-diagonals filled so far, less ``F``, is the residual
    there)."""
    m, n = aval(f).shape
    r, s = jnp.triu(r), jnp.tril(s)
    den = jnp.diagonal(r)[:, None] + jnp.diagonal(s)[None, :]
    level = np.arange(m)[:, None] + np.arange(n)[None, :]
    y = jnp.zeros_like(f)
    for q in range(m + n - 2, -1, -1):
        y = y + jnp.where(level == q, (f - r @ y - y @ s) / den, 0)
    return y


def _solve_sylvester_2d(a: Any, b: Any, c: Any, *, method: str, tol: float) -> Any:
    if method == "schur":
        r, u = schur(a, output="complex")
        s, v = schur(b.conj().T, output="complex")
        y = _sylvester_triangular(r, s.conj().T, u.conj().T @ c.astype(aval(r).dtype) @ v)
        x = u @ y @ v.conj().T
        eig_a, eig_b = jnp.diagonal(r), jnp.diagonal(s).conj()
    elif method == "eigen":
        eig_a, ua = np_linalg.eig(a)
        eig_b, ub = np_linalg.eig(b)
        rhs = np_linalg.solve(ua, c.astype(aval(eig_a).dtype) @ ub)
        x = ua @ (rhs / (eig_a[:, None] + eig_b[None, :])) @ np_linalg.inv(ub)
    else:
        raise ValueError(f"solve_sylvester: unrecognized method {method!r}. The two valid "
                         "methods are either \"schur\" or \"eigen\".")
    if aval(c).dtype.kind != "c":
        x = x.real
    # Eigenvalues of A and -B (nearly) coinciding: no unique solution; NaNs, as JAX.
    singular = jnp.any(jnp.abs(eig_a[:, None] + eig_b[None, :]) < tol)
    return jnp.where(singular, np.nan, x)


def solve_sylvester(A: Any, B: Any, C: Any, *, method: str = "schur",
                    tol: float = 1e-8) -> Any:
    """``X`` with ``A X + X B = C`` (``A`` ``[..., m, m]``, ``B`` ``[..., n, n]``, ``C``
    ``[..., m, n]``, batch axes broadcast). ``method`` 'schur' (Bartels-Stewart on the
    complex Schur forms of ``A`` and ``B^H``: robust, not differentiable) or 'eigen'
    (eigendecompositions: faster, less accurate for ill-conditioned eigenvectors). NaNs
    when an eigenvalue of ``A`` and one of ``-B`` are closer than ``tol``.

    >>> import fungrad.numpy as jnp
    >>> solve_sylvester(jnp.eye(2), 2 * jnp.eye(2), 3 * jnp.eye(2))
    Array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    a, b, c = promote_dtypes_inexact(*ensure_arraylike("solve_sylvester", A, B, C))
    m, n = aval(c).shape[-2:]
    if aval(a).shape[-2:] != (m, m) or aval(b).shape[-2:] != (n, n):
        raise ValueError(f"solve_sylvester: incompatible shapes for the Sylvester equation: "
                         f"A: {aval(a).shape}, B: {aval(b).shape}, C: {aval(c).shape}")
    fn = functools.partial(_solve_sylvester_2d, method=method, tol=tol)
    return jnp.vectorize(fn, signature="(m,m),(n,n),(m,n)->(m,n)")(a, b, c)
