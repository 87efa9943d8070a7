"""``fungrad.scipy.linalg`` (``jax.scipy.linalg``): SciPy's conventions over the same
primitives as ``fungrad.numpy.linalg`` (``cholesky`` is upper by default, ``lu`` returns a
permutation matrix, ``eigh`` returns eigenvalues first, ``solve`` takes ``assume_a``).

The decompositions NumPy lacks (``schur``, ``hessenberg``, ``polar``, ...) are in
``_linalg_decomp.py``, the matrix functions (``expm``, ``sqrtm``, ``funm``, ...) in
``_linalg_matfuncs.py`` and the matrix constructors (``toeplitz``, ``hilbert``, ...) in
``_linalg_special_matrices.py``; all are re-exported here."""
from __future__ import annotations

from typing import Any

import numpy as np

import fungrad.numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.lax import linalg as lax_linalg
from fungrad.numpy import linalg as np_linalg
from fungrad.numpy._util import aval, ensure_arraylike, promote_dtypes, promote_dtypes_inexact
from fungrad.scipy._linalg_decomp import (eigh_tridiagonal, hessenberg, polar, qr_multiply,
                                          rsf2csf, schur)
from fungrad.scipy._linalg_matfuncs import expm, expm_frechet, funm, solve_sylvester, sqrtm
from fungrad.scipy._linalg_special_matrices import (circulant, companion, convolution_matrix,
                                                    dft, fiedler, fiedler_companion, hadamard,
                                                    hankel, helmert, hilbert, invhilbert,
                                                    invpascal, leslie, pascal, toeplitz)
from fungrad.transforms.custom_derivatives import custom_jvp

__all__ = ["block_diag", "cho_factor", "cho_solve", "cholesky", "circulant", "companion",
           "convolution_matrix", "det", "dft", "eigh", "eigh_tridiagonal", "expm",
           "expm_frechet", "fiedler", "fiedler_companion", "funm", "hadamard", "hankel",
           "helmert", "hessenberg", "hilbert", "inv", "invhilbert", "invpascal", "leslie", "lu",
           "lu_factor", "lu_solve", "pascal", "polar", "qr", "qr_multiply", "rsf2csf", "schur",
           "solve", "solve_sylvester", "solve_triangular", "sqrtm", "svd", "toeplitz"]
__dir__ = public_dir(__all__)


def _inexact(fname: str, *args: Any) -> list:
    arrs = ensure_arraylike(fname, *args)
    return promote_dtypes_inexact(*(arrs if len(args) > 1 else (arrs,)))


def cholesky(a: Any, lower: bool = False, overwrite_a: bool = False,
             check_finite: bool = True) -> Any:
    """Cholesky factor: upper ``U`` with ``a = U^H U`` unless ``lower``; only that
    triangle of ``a`` is read (no symmetrisation, as in JAX).

    >>> import fungrad.numpy as jnp
    >>> cholesky(jnp.array([[4., 2.], [2., 5.]]))
    Array([[2., 1.],
           [0., 2.]], dtype=float32)
    """
    a, = _inexact("cholesky", a)
    factor = lax_linalg.cholesky(a if lower else jnp.swapaxes(a, -1, -2).conj(),
                                 symmetrize_input=False)
    return factor if lower else jnp.swapaxes(factor, -1, -2).conj()


def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> tuple[Any, bool]:
    """``(c, lower)`` for ``cho_solve``: the Cholesky factor and its triangle."""
    return cholesky(a, lower=lower), lower


def _as_matrix(b: Any) -> tuple[Any, bool]:
    vector = aval(b).ndim == 1
    return (b[:, None] if vector else b), vector


def cho_solve(c_and_lower: tuple[Any, bool], b: Any, overwrite_b: bool = False,
              check_finite: bool = True) -> Any:
    """Solve ``a x = b`` from ``cho_factor(a)``: two triangular solves."""
    c, lower = c_and_lower
    c, b = _inexact("cho_solve", c, b)
    b, vector = _as_matrix(b)
    y = lax_linalg.triangular_solve(c, b, left_side=True, lower=lower, transpose_a=not lower,
                                    conjugate_a=not lower)
    x = lax_linalg.triangular_solve(c, y, left_side=True, lower=lower, transpose_a=lower,
                                    conjugate_a=lower)
    return x[..., 0] if vector else x


_TRANS = {0: (False, False), "N": (False, False), 1: (True, False), "T": (True, False),
          2: (True, True), "C": (True, True)}


def solve_triangular(a: Any, b: Any, trans: int | str = 0, lower: bool = False,
                     unit_diagonal: bool = False, overwrite_b: bool = False, debug: Any = None,
                     check_finite: bool = True) -> Any:
    """Solve ``op(a) x = b`` for triangular ``a``; ``trans`` 0/'N', 1/'T' or 2/'C'.

    >>> import fungrad.numpy as jnp
    >>> solve_triangular(jnp.array([[2., 0.], [1., 4.]]), jnp.array([2., 9.]), lower=True)
    Array([1., 2.], dtype=float32)
    """
    if trans not in _TRANS:
        raise ValueError(f"solve_triangular: invalid trans {trans!r}; expected 0, 1, 2, "
                         "'N', 'T' or 'C'")
    transpose_a, conjugate_a = _TRANS[trans]
    a, b = _inexact("solve_triangular", a, b)
    b, vector = _as_matrix(b)
    x = lax_linalg.triangular_solve(a, b, left_side=True, lower=lower, transpose_a=transpose_a,
                                    conjugate_a=conjugate_a, unit_diagonal=unit_diagonal)
    return x[..., 0] if vector else x


def lu(a: Any, permute_l: bool = False, overwrite_a: bool = False,
       check_finite: bool = True) -> tuple:
    """``(p, l, u)`` with ``a = p l u`` (``p`` a permutation matrix), or ``(p l, u)``."""
    a, = _inexact("lu", a)
    lu_, _, perm = lax_linalg.lu(a)
    m, n = aval(a).shape[-2:]
    k = min(m, n)
    dt = aval(a).dtype
    real = np.finfo(dt).dtype  # the permutation matrix is real, as in SciPy and JAX
    p = jnp.swapaxes((perm[..., None] == np.arange(m, dtype=np.int32)).astype(real), -1, -2)
    l = jnp.tril(lu_[..., :, :k], -1) + jnp.eye(m, k, dtype=dt)
    u = jnp.triu(lu_[..., :k, :])
    return (p @ l, u) if permute_l else (p, l, u)


def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> tuple[Any, Any]:
    """``(lu, piv)`` for ``lu_solve``: ``L`` (unit lower, strict part) and ``U`` packed in
    ``lu``; row ``i`` was swapped with row ``piv[i]`` (int32), in turn."""
    a, = _inexact("lu_factor", a)
    lu_, pivots, _ = lax_linalg.lu(a)
    return lu_, pivots


def lu_solve(lu_and_piv: tuple[Any, Any], b: Any, trans: int = 0, overwrite_b: bool = False,
             check_finite: bool = True) -> Any:
    """Solve ``a x = b`` (``trans`` 0), ``a^T x = b`` (1) or ``a^H x = b`` (2) from
    ``lu_factor(a)``. ``b`` is a (batch of) vector(s) when it has one axis fewer than
    ``lu``, else a (batch of) matrices; batch axes broadcast.

    >>> import fungrad.numpy as jnp
    >>> lu_solve(lu_factor(jnp.array([[2., 1.], [1., 2.]])), jnp.array([3., 3.]))
    Array([1., 1.], dtype=float32)
    """
    lu_, piv = lu_and_piv
    lu_, b = _inexact("lu_solve", lu_, b)
    sl, sb = aval(lu_).shape, aval(b).shape
    if len(sl) < 2 or sl[-1] != sl[-2]:
        raise ValueError(f"lu_solve: lu must have shape [..., n, n], got {sl}")
    vector = len(sb) == len(sl) - 1
    if vector:
        b = b[..., None]
    if not sb or aval(b).shape[-2] != sl[-1]:
        raise ValueError(f"lu_solve: b with shape {sb} does not match lu with shape {sl}")
    perm = lax_linalg.lu_pivots_to_permutation(piv, sl[-1])
    batch = np.broadcast_shapes(sl[:-2], aval(perm).shape[:-1], aval(b).shape[:-2])
    x = lax_linalg.lu_solve(jnp.broadcast_to(lu_, batch + sl[-2:]),
                            jnp.broadcast_to(perm, batch + sl[-1:]),
                            jnp.broadcast_to(b, batch + aval(b).shape[-2:]), trans)
    return x[..., 0] if vector else x


def qr(a: Any, overwrite_a: bool = False, lwork: Any = None, mode: str = "full",
       pivoting: bool = False, check_finite: bool = True) -> tuple:
    """QR decomposition; ``mode`` 'full' (``Q`` square), 'economic' or 'r' (``(R,)``).

    With ``pivoting`` (column pivoting, LAPACK's ``geqp3``) the permutation ``P`` (int32)
    follows: ``(Q, R, P)`` or ``(R, P)``, with ``a[..., :, P] = Q R``.
    """
    if mode not in ("full", "economic", "r"):
        raise ValueError(f"qr: unsupported mode {mode!r}; expected 'full', 'economic' or 'r'")
    a, = _inexact("qr", a)
    q, r, *p = lax_linalg.qr(a, pivoting=pivoting, full_matrices=mode != "economic")
    return ((r,) if mode == "r" else (q, r)) + tuple(p)


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        overwrite_a: bool = False, check_finite: bool = True,
        lapack_driver: str = "gesdd") -> Any:
    """``(u, s, vh)`` or ``s``, as ``fungrad.numpy.linalg.svd``."""
    out = np_linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
    return tuple(out) if compute_uv else out


def eigh(a: Any, b: Any = None, lower: bool = True, eigvals_only: bool = False,
         overwrite_a: bool = False, overwrite_b: bool = False, type: int = 1,
         check_finite: bool = True, eigvals: Any = None) -> Any:
    """Eigenvalues (ascending) and eigenvectors ``(w, v)`` of a Hermitian matrix."""
    if b is not None:
        raise NotImplementedError("eigh: the generalized problem (b is not None) is not "
                                  "implemented")
    if eigvals is not None:
        raise NotImplementedError("eigh: eigvals (a subset) is not implemented")
    w, v = np_linalg.eigh(a, "L" if lower else "U")
    return w if eigvals_only else (w, v)


def inv(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    """Matrix inverse (``fungrad.numpy.linalg.inv``)."""
    return np_linalg.inv(a)


def det(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    """Determinant (``fungrad.numpy.linalg.det``)."""
    return np_linalg.det(a)


def solve(a: Any, b: Any, lower: bool = False, overwrite_a: bool = False,
          overwrite_b: bool = False, debug: bool = False, check_finite: bool = True,
          assume_a: str = "gen") -> Any:
    """Solve ``a x = b``: LU for ``assume_a`` 'gen', 'sym' or 'her'; Cholesky (reading
    the ``lower`` or upper triangle) for 'pos'."""
    if assume_a not in ("gen", "sym", "her", "pos"):
        raise ValueError(f"solve: expected assume_a to be one of 'gen', 'sym', 'her' or "
                         f"'pos'; got {assume_a!r}")
    if assume_a != "pos":
        return np_linalg.solve(a, b)
    a, b = _inexact("solve", a, b)
    return _solve_pos(a, b, lower)


def _solve_pos_impl(a: Any, b: Any, lower: bool) -> Any:
    return cho_solve(cho_factor(a, lower=lower), b)


def _solve_pos_jvp(lower: bool, primals: tuple, tangents: tuple) -> tuple:
    # d(a^-1 b) = a^-1 (db - da x) with the whole of da (as JAX's linear-solve rule)
    a, b = primals
    da, db = tangents
    factors = cho_factor(a, lower=lower)
    x = cho_solve(factors, b)
    dax = da @ x[..., None] if x.ndim == 1 else da @ x
    return x, cho_solve(factors, db - (dax[..., 0] if x.ndim == 1 else dax))


_solve_pos = custom_jvp(_solve_pos_impl, nondiff_argnums=(2,))
_solve_pos.defjvp(_solve_pos_jvp)


def block_diag(*arrs: Any) -> Any:
    """The block-diagonal matrix of ``arrs`` (scalars and vectors count as one row).

    >>> import fungrad.numpy as jnp
    >>> block_diag(jnp.ones((1, 2)), 3.)
    Array([[1., 1., 0.],
           [0., 0., 3.]], dtype=float32)
    """
    if not arrs:
        return jnp.zeros((1, 0))
    checked = ensure_arraylike("block_diag", *arrs)
    arrs = [x.reshape(1, -1) if x.ndim < 2 else x
            for x in promote_dtypes(*(checked if len(arrs) > 1 else (checked,)))]
    if any(x.ndim != 2 for x in arrs):
        raise ValueError("block_diag: arguments must have dimension <= 2, got shapes "
                         f"{[x.shape for x in arrs]}")
    cols = sum(x.shape[1] for x in arrs)
    rows, start = [], 0
    for x in arrs:
        rows.append(jnp.pad(x, ((0, 0), (start, cols - start - x.shape[1]))))
        start += x.shape[1]
    return jnp.concatenate(rows, axis=0)
