"""``fungrad.numpy.linalg`` (``jax.numpy.linalg``): norms, the array-API helpers, and the
decompositions and solvers built on ``fungrad.lax.linalg``.

As in JAX, except that ``solve`` and ``inv`` call LAPACK's ``gesv`` (``lax.linalg.solve``,
a primitive with JAX's derivatives), where JAX composes an LU factorisation and
triangular solves; ``slogdet`` is JAX's: one LU factorisation, whose factors its custom
derivative reuses; ``det`` has JAX's custom derivative (defined for singular matrices
too); ``pinv``, ``lstsq``, ``matrix_rank``, ``cond`` and the matrix 2-norms come from the
SVD.
"""
from __future__ import annotations

import itertools
import math
import operator
from typing import Any, NamedTuple, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.namespace import public_dir
from fungrad.lax import linalg as lax_linalg
from fungrad.numpy._creation import eye, zeros
from fungrad.numpy._einsum import einsum
from fungrad.numpy._linalg import cross as _cross, matmul, outer, tensordot, vecdot
from fungrad.numpy._reductions import (any as _any, count_nonzero, cumprod, max as _max,
                                       min as _min, sum as _sum)
from fungrad.numpy._shape import (broadcast_to, diagonal as _diagonal, matrix_transpose,
                                  moveaxis, trace as _trace)
from fungrad.numpy._indexing import take_along_axis
from fungrad.numpy._ufuncs import absolute, logical_and, logical_not, logical_or, power
from fungrad.numpy._ufuncs_math import conjugate, isinf, isnan
from fungrad.numpy._util import (aval, canonicalize_axes, ensure_arraylike,
                                 promote_dtypes_inexact, scalar_like, where)
from fungrad.transforms.custom_derivatives import custom_jvp


def _abs_real(x: Any) -> Any:
    return absolute(x) if aval(x).dtype.kind != "c" else lax.abs(x)


def _sumsq_sqrt(x: Any, axis: Any, keepdims: bool) -> Any:
    if aval(x).dtype.kind == "c":
        sq = lax.real(lax.mul(lax.conj(x), x))
    else:
        sq = lax.mul(x, x)
    return lax.sqrt(_sum(sq, axis=axis, keepdims=keepdims))


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False,
                ord: Any = 2) -> Any:  # noqa: A002
    """The vector ``ord``-norm over ``axis`` (all elements when None)."""
    x, = promote_dtypes_inexact(ensure_arraylike("vector_norm", x))
    if axis is None:
        out = vector_norm(lax.reshape(x, (aval(x).size,)), axis=0, ord=ord)
        return lax.reshape(out, (1,) * aval(x).ndim) if keepdims else out
    if ord is None or ord == 2:
        return _sumsq_sqrt(x, axis, keepdims)
    a = _abs_real(x)
    if ord == np.inf:
        return _max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return _min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return _sum(lax.convert_element_type(lax.ne(x, scalar_like(0, x)), aval(a).dtype),
                    axis=axis, keepdims=keepdims)
    if ord == 1:
        return _sum(a, axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"vector_norm: invalid ord {ord!r} for vectors")
    p = scalar_like(ord, a)
    return power(_sum(power(a, p), axis=axis, keepdims=keepdims), lax.div(scalar_like(1, a), p))


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:  # noqa: A002
    """The matrix ``ord``-norm of the last two axes."""
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    """Vector or matrix norm (``numpy.linalg.norm`` semantics).

    Matrix ``ord`` values 2, -2 and 'nuc' need singular values and are not supported.
    """
    x, = promote_dtypes_inexact(ensure_arraylike("norm", x))
    nd = aval(x).ndim
    if axis is None:
        if ord is None:
            out = _sumsq_sqrt(x, None, False)
            return lax.reshape(out, (1,) * nd) if keepdims else out
        axis = tuple(range(nd))
    axes = canonicalize_axes(axis, nd, "norm")
    if len(axes) == 1:
        return vector_norm(x, axis=axes, keepdims=keepdims, ord=2 if ord is None else ord)
    if len(axes) != 2:
        raise ValueError(f"norm: improper number of axes: {axis}")
    row, col = axes
    if ord in (None, "fro", "f"):
        return _sumsq_sqrt(x, axes, keepdims)
    a = _abs_real(x)
    if ord in (1, -1):
        s = _sum(a, axis=row, keepdims=True)
        out = (_max if ord == 1 else _min)(s, axis=col, keepdims=True)
    elif ord in (np.inf, -np.inf):
        s = _sum(a, axis=col, keepdims=True)
        out = (_max if ord == np.inf else _min)(s, axis=row, keepdims=True)
    elif ord in (2, -2, "nuc"):
        y = moveaxis(x, (row, col), (-2, -1))
        sv = svd(y, compute_uv=False)
        out = {2: _max, -2: _min, "nuc": _sum}[ord](sv, axis=-1)
        out = lax.expand_dims(out, tuple(range(out.ndim, out.ndim + 2)))
        out = moveaxis(out, (-2, -1), (row, col))
    else:
        raise ValueError(f"norm: invalid ord {ord!r} for matrices")
    return out if keepdims else lax.squeeze(out, axes)


class EighResult(NamedTuple):
    """``eigh``'s result: ascending real ``eigenvalues`` and the ``eigenvectors`` as columns."""

    eigenvalues: Any
    eigenvectors: Any


class EigResult(NamedTuple):
    """``eig``'s result: complex ``eigenvalues`` and the ``eigenvectors`` as columns."""

    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    """``qr``'s result: orthonormal ``Q`` and upper-triangular ``R`` with ``a = Q @ R``."""

    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    """``slogdet``'s result: ``det = sign * exp(logabsdet)``."""

    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    """``svd``'s result: ``a = U @ diag(S) @ Vh``, singular values ``S`` descending."""

    U: Any
    S: Any
    Vh: Any


def _inexact(fname: str, *args: Any) -> list:
    """``args`` checked as arrays and promoted to an inexact dtype (always a list)."""
    arrs = ensure_arraylike(fname, *args)
    return promote_dtypes_inexact(*(arrs if len(args) > 1 else (arrs,)))


def _check_square(fname: str, a: Any) -> None:
    shape = aval(a).shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{fname}: argument must have shape [..., n, n], got {shape}")


def _H(x: Any) -> Any:
    return conjugate(matrix_transpose(x))


def cholesky(a: Any, *, upper: bool = False, symmetrize_input: bool = True) -> Any:
    """Cholesky factor ``L`` (``a = L L^H``), or ``U = L^H`` with ``upper=True``.

    A matrix that is not positive definite gives NaNs in its factor's triangle.

    >>> import fungrad.numpy as jnp
    >>> jnp.linalg.cholesky(jnp.array([[4., 2.], [2., 5.]]))
    Array([[2., 0.],
           [1., 2.]], dtype=float32)
    """
    a, = _inexact("cholesky", a)
    L = lax_linalg.cholesky(a, symmetrize_input=symmetrize_input)
    return _H(L) if upper else L


def solve(a: Any, b: Any) -> Any:
    """Solve ``a x = b``: ``b`` is a vector ``[n]`` or a (batch of) matrices
    ``[..., n, k]`` whose batch axes broadcast against ``a``'s.

    >>> import fungrad.numpy as jnp
    >>> jnp.linalg.solve(jnp.array([[2., 1.], [1., 3.]]), jnp.array([3., 5.]))
    Array([0.8, 1.4], dtype=float32)
    """
    a, b = _inexact("solve", a, b)
    sa, sb = aval(a).shape, aval(b).shape
    if len(sa) < 2:
        raise ValueError(f"solve: left hand array must be at least two dimensional; got "
                         f"a.shape={sa}")
    _check_square("solve", a)
    if len(sb) > 1 and len(sa) == len(sb) + 1 and sa[-1] == sb[-1] and sa[-1] != sb[-2]:
        raise ValueError(f"solve: invalid shapes {sa}, {sb}: b is not a batch of matrices; "
                         "for a batch of vectors use solve(a, b[..., None])[..., 0]")
    vector = len(sb) == 1
    if vector:
        b = b[:, None]
    if aval(b).shape[-2] != sa[-1]:
        raise ValueError(f"solve: a with shape {sa} and b with shape {sb} do not match")
    batch = np.broadcast_shapes(sa[:-2], aval(b).shape[:-2])
    x = lax_linalg.solve(broadcast_to(a, batch + sa[-2:]),
                         broadcast_to(b, batch + aval(b).shape[-2:]))
    return x[..., 0] if vector else x


def inv(a: Any) -> Any:
    """Inverse of (a batch of) square matrices: ``solve(a, I)``.

    >>> import fungrad.numpy as jnp
    >>> jnp.linalg.inv(jnp.array([[2., 0.], [0., 4.]]))
    Array([[0.5 , 0.  ],
           [0.  , 0.25]], dtype=float32)
    """
    a = ensure_arraylike("inv", a)
    _check_square("inv", a)
    a, = promote_dtypes_inexact(a)
    n = aval(a).shape[-1]
    return solve(a, broadcast_to(eye(n, dtype=aval(a).dtype), aval(a).shape))


def _lu_sign(lu_: Any, pivots: Any) -> Any:
    """The sign of the row permutation (+1/-1, in ``lu_``'s dtype)."""
    n = aval(lu_).shape[-1]
    parity = count_nonzero(pivots != lax.iota(np.int32, n), axis=-1)
    return (1 - 2 * (parity % 2)).astype(aval(lu_).dtype)


def _slogdet_from_lu(lu_: Any, pivots: Any) -> tuple[Any, Any]:
    """``(sign, log|det|)`` from LU factors (JAX's formula): the product of ``U``'s
    diagonal, its sign flipped once per row swap; ``(0, -inf)`` for a zero pivot."""
    dtype = aval(lu_).dtype
    diag = _diagonal(lu_, 0, -2, -1)
    is_zero = _any(diag == 0, axis=-1)
    abs_diag = lax.abs(diag)
    sign = _lu_sign(lu_, pivots)
    if dtype.kind == "c":
        sign = sign * lax.reduce_prod(diag / abs_diag.astype(dtype), (aval(diag).ndim - 1,))
    else:
        sign = sign * (1 - 2 * (count_nonzero(diag < 0, axis=-1) % 2)).astype(dtype)
    sign = where(is_zero, scalar_like(0, sign), sign)
    logdet = _sum(lax.log(abs_diag), axis=-1)
    return sign, where(is_zero, scalar_like(-np.inf, logdet), logdet)


@custom_jvp
def _slogdet(a: Any) -> tuple[Any, Any]:
    lu_, pivots, _ = lax_linalg.lu(a)
    return _slogdet_from_lu(lu_, pivots)


@_slogdet.defjvp
def _slogdet_jvp(primals: tuple, tangents: tuple) -> tuple:
    # d log|det a| = Re tr(a^-1 da), a^-1 da from the primal's LU factors (one factorisation
    # for the value and the derivative); the sign's tangent is zero (real) or i Im(tr) sign.
    lu_, pivots, perm = lax_linalg.lu(primals[0])
    sign, logdet = _slogdet_from_lu(lu_, pivots)
    t = _trace(lax_linalg.lu_solve(lu_, perm, tangents[0]), 0, -2, -1)
    if aval(t).dtype.kind != "c":
        return (sign, logdet), (lax.full_like(sign, 0), t)
    re = lax.real(t)
    return (sign, logdet), ((t - re.astype(aval(t).dtype)) * sign, re)


def slogdet(a: Any, *, method: str | None = None) -> SlogdetResult:
    """Sign and natural log of the absolute determinant, from the LU factorisation.

    >>> import fungrad.numpy as jnp
    >>> sign, logabsdet = jnp.linalg.slogdet(jnp.array([[1., 2.], [3., 4.]]))
    >>> sign, jnp.round(logabsdet, 5)
    (Array(-1., dtype=float32), Array(0.69315, dtype=float32))
    """
    a, = _inexact("slogdet", a)
    _check_square("slogdet", a)
    if method not in (None, "lu"):
        raise ValueError(f"slogdet: unknown method {method!r}; supported: 'lu' (None)")
    return SlogdetResult(*_slogdet(a))


def _cofactor_solve(a: Any, b: Any) -> tuple[Any, Any]:
    """``(det(a), det(a) a^-1 b)``, defined for singular ``a`` too (JAX's method): with
    ``P a = L U``, replace ``U``'s last pivot so the last row of the triangular solve
    gives ``x_n prod(u_ii, i < n)``; matrices of rank below n - 1 give zeros."""
    n = aval(a).shape[-1]
    lu_, pivots, perm = lax_linalg.lu(a)
    diag = _diagonal(lu_, 0, -2, -1)
    partial_det = cumprod(diag, axis=-1) * _lu_sign(lu_, pivots)[..., None]
    lu_ = lu_.at[..., -1, -1].set(1.0 / partial_det[..., -2])
    ones = lax.full(aval(a).shape[:-1] + (1,), 1, aval(a).dtype)
    d = lax_linalg.triangular_solve(lu_, ones, left_side=True, lower=False)
    bad = _any(logical_or(isnan(d), isinf(d)), axis=(-2, -1))[..., None, None]
    x = where(bad, scalar_like(0, b), b)
    x = take_along_axis(x, broadcast_to(perm[..., None], aval(x).shape), axis=-2)
    x = lax_linalg.triangular_solve(lu_, x, left_side=True, lower=True, unit_diagonal=True)
    scale = lax.concatenate([lax.broadcast_in_dim(partial_det[..., -1:], aval(x).shape[:-2]
                                                  + (n - 1, 1), tuple(range(x.ndim - 2))
                                                  + (x.ndim - 1,)),
                             lax.full(aval(x).shape[:-2] + (1, 1), 1, aval(x).dtype)], x.ndim - 2)
    x = lax_linalg.triangular_solve(lu_, x * scale, left_side=True, lower=False)
    return partial_det[..., -1], where(bad, scalar_like(0, x), x)


@custom_jvp
def _det(a: Any) -> Any:
    sgn, logdet = _slogdet(a)
    return sgn * lax.exp(logdet).astype(sgn.dtype)


@_det.defjvp
def _det_jvp(primals: tuple, tangents: tuple) -> tuple:
    # d det(a) = tr(det(a) a^-1 da), through the cofactor solve so singular a works
    y, z = _cofactor_solve(primals[0], tangents[0])
    return y, _trace(z, 0, -2, -1)


def det(a: Any) -> Any:
    """Determinant: explicit products for 2x2 and 3x3, LU otherwise (JAX's derivative,
    finite at singular matrices).

    >>> import fungrad.numpy as jnp
    >>> jnp.linalg.det(jnp.array([[1., 2.], [3., 4.]]))
    Array(-2., dtype=float32)
    """
    a, = _inexact("det", a)
    _check_square("det", a)
    n = aval(a).shape[-1]
    def e(i: int, j: int) -> Any:
        return a[..., i, j]
    if n == 2:
        return e(0, 0) * e(1, 1) - e(0, 1) * e(1, 0)
    if n == 3:
        return (e(0, 0) * e(1, 1) * e(2, 2) + e(0, 1) * e(1, 2) * e(2, 0)
                + e(0, 2) * e(1, 0) * e(2, 1) - e(0, 2) * e(1, 1) * e(2, 0)
                - e(0, 0) * e(1, 2) * e(2, 1) - e(0, 1) * e(1, 0) * e(2, 2))
    return _det(a)


def eigh(a: Any, UPLO: str | None = None, symmetrize_input: bool = True) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors of Hermitian matrices."""
    a = ensure_arraylike("eigh", a)
    if UPLO not in (None, "L", "U"):
        raise ValueError(f"eigh: UPLO must be one of None, 'L', or 'U', got {UPLO!r}")
    a, = promote_dtypes_inexact(a)
    v, w = lax_linalg.eigh(a, lower=UPLO != "U", symmetrize_input=symmetrize_input)
    return EighResult(w, v)


def eigvalsh(a: Any, UPLO: str | None = "L", *, symmetrize_input: bool = True) -> Any:
    """Eigenvalues (ascending) of Hermitian matrices."""
    return eigh(a, UPLO, symmetrize_input=symmetrize_input).eigenvalues


def eig(a: Any) -> EigResult:
    """Eigenvalues and right eigenvectors of general matrices (complex results)."""
    a, = _inexact("eig", a)
    w, v = lax_linalg.eig(a, compute_left_eigenvectors=False)
    return EigResult(w, v)


def eigvals(a: Any) -> Any:
    """Eigenvalues of general matrices (complex)."""
    a, = _inexact("eigvals", a)
    return lax_linalg.eig(a, compute_left_eigenvectors=False,
                          compute_right_eigenvectors=False)[0]


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False,
        subset_by_index: tuple[int, int] | None = None) -> Any:
    """Singular value decomposition: ``SVDResult(U, S, Vh)`` or ``S`` (descending).

    >>> import fungrad.numpy as jnp
    >>> jnp.linalg.svd(jnp.array([[3., 0.], [0., -4.]]), compute_uv=False)
    Array([4., 3.], dtype=float32)
    """
    a, = _inexact("svd", a)
    if hermitian:
        v, w = lax_linalg.eigh(a, subset_by_index=subset_by_index)
        s = lax.abs(w)
        nd = s.ndim
        if not compute_uv:
            return lax.rev(lax.sort(s, dimension=nd - 1), (nd - 1,))
        idx = lax.broadcasted_iota(np.int32, s.shape, nd - 1)
        s, idx, sgn = lax.sort((s, idx, lax.sign(w)), dimension=nd - 1, num_keys=1)
        s, idx, sgn = (lax.rev(t, (nd - 1,)) for t in (s, idx, sgn))
        u = take_along_axis(v, broadcast_to(idx[..., None, :], v.shape), axis=-1)
        return SVDResult(u, s, _H(u * sgn[..., None, :].astype(u.dtype)))
    out = lax_linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv,
                         subset_by_index=subset_by_index)
    return SVDResult(*out) if compute_uv else out


def svdvals(x: Any, /) -> Any:
    """Singular values, descending."""
    return svd(x, compute_uv=False)


def qr(a: Any, mode: str = "reduced") -> Any:
    """QR decomposition; ``mode`` 'reduced' (default), 'complete' or 'r' (``R`` only)."""
    a, = _inexact("qr", a)
    if mode not in ("reduced", "complete", "r", "full"):
        raise ValueError(f"qr: unsupported QR decomposition mode {mode!r}")
    q, r = lax_linalg.qr(a, full_matrices=mode == "complete")
    return r if mode == "r" else QRResult(q, r)


def lstsq(a: Any, b: Any, rcond: Any = None, *, numpy_resid: bool = False) -> tuple:
    """Least-squares solution of ``a x = b`` through the SVD: ``(x, residuals, rank, s)``.

    Singular values below ``rcond * s[0]`` (default ``eps * max(m, n)``) are dropped.
    Residuals are always returned unless ``numpy_resid`` (then empty where NumPy's are).
    """
    a, b = _inexact("lstsq", a, b)
    if aval(a).ndim != 2:
        raise TypeError(f"lstsq: {aval(a).ndim}-dimensional array given. Array must be "
                        "two-dimensional")
    if aval(b).ndim not in (1, 2):
        raise TypeError(f"lstsq: {aval(b).ndim}-dimensional array given. Array must be one "
                        "or two-dimensional")
    if aval(a).shape[0] != aval(b).shape[0]:
        raise ValueError("lstsq: leading dimensions of input arrays must match")
    vector = aval(b).ndim == 1
    if vector:
        b = b[:, None]
    m, n = aval(a).shape
    dt = aval(a).dtype
    eps = float(dtypes.finfo(dt).eps)
    if aval(a).size == 0:
        s = zeros((0,), lax_linalg._real_dtype(dt))
        rank = lax.full((), 0, np.int32)
        x = zeros((n,) + aval(b).shape[1:], dt)
    else:
        rcond = eps * max(n, m) if rcond is None else where(rcond < 0, eps, rcond)
        u, s, vt = svd(a, full_matrices=False)
        mask = logical_and(s > 0, s >= lax.convert_element_type(rcond, s.dtype) * s[0])
        rank = _sum(mask)
        safe = where(mask, s, scalar_like(1, s)).astype(dt)
        s_inv = where(mask, 1 / safe, scalar_like(0, safe))[:, None]
        x = _H(vt) @ (s_inv * (_H(u) @ b))
    if numpy_resid and (int(rank) < n or m <= n):
        resid = zeros((0,), lax_linalg._real_dtype(dt))
    else:
        resid = norm(b - a @ x, axis=0) ** 2
    return (x[:, 0] if vector else x), resid, rank, s


def _pinv_impl(a: Any, rtol: Any, hermitian: bool) -> Any:
    m, n = aval(a).shape[-2:]
    if m == 0 or n == 0:
        return zeros(aval(a).shape[:-2] + (n, m), aval(a).dtype)
    a = conjugate(a)
    if rtol is None:
        rtol = 10.0 * max(m, n) * float(dtypes.finfo(aval(a).dtype).eps)
    rtol = lax.convert_element_type(rtol, lax_linalg._real_dtype(aval(a).dtype))
    u, s, vh = svd(a, full_matrices=False, hermitian=hermitian)
    rtol = lax.expand_dims(rtol[..., None], tuple(range(s.ndim - rtol.ndim - 1)))
    s = where(s > rtol * s[..., 0:1], s, scalar_like(np.inf, s)).astype(u.dtype)
    return matrix_transpose(vh) @ (matrix_transpose(u) / s[..., None])


def _pinv_jvp(rtol: Any, hermitian: bool, primals: tuple, tangents: tuple) -> tuple:
    # Golub and Pereyra (1973), the derivative of the pseudo-inverse.
    a, = primals
    da, = tangents
    p = _pinv(a, rtol, hermitian)
    m, n = aval(a).shape[-2:]
    if m == 0 or n == 0:
        return p, p
    dt = aval(a).dtype
    dp = -p @ da @ p
    dp = dp + p @ _H(p) @ _H(da) @ (eye(m, dtype=dt) - a @ p)
    dp = dp + (eye(n, dtype=dt) - p @ a) @ _H(da) @ _H(p) @ p
    return p, dp


_pinv = custom_jvp(_pinv_impl, nondiff_argnums=(1, 2))
_pinv.defjvp(_pinv_jvp)


def pinv(a: Any, rtol: Any = None, hermitian: bool = False) -> Any:
    """Moore-Penrose pseudo-inverse through the SVD; singular values at or below
    ``rtol * s_max`` (default ``10 * max(m, n) * eps``) count as zero."""
    a, = _inexact("pinv", a)
    return _pinv(a, rtol, hermitian)


def matrix_power(a: Any, n: int) -> Any:
    """``a`` multiplied by itself ``n`` times (``inv(a)`` for negative ``n``), by squaring."""
    a = ensure_arraylike("matrix_power", a)
    if aval(a).ndim < 2:
        raise TypeError(f"matrix_power: {aval(a).ndim}-dimensional array given. Array must "
                        "be at least two-dimensional")
    if aval(a).shape[-2] != aval(a).shape[-1]:
        raise TypeError("matrix_power: last 2 dimensions of the array must be square")
    try:
        n = operator.index(n)
    except TypeError as err:
        raise TypeError(f"matrix_power: exponent must be an integer, got {n!r}") from err
    if n == 0:
        return broadcast_to(eye(aval(a).shape[-1], dtype=aval(a).dtype), aval(a).shape)
    if n < 0:
        a, n = inv(a), -n
    z = result = None
    while n > 0:
        z = a if z is None else z @ z
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else result @ z
    return result


def matrix_rank(M: Any, rtol: Any = None, *, hermitian: bool = False) -> Any:
    """Number of singular values above ``rtol`` (default ``s_max * max(m, n) * eps``)."""
    M, = _inexact("matrix_rank", M)
    if aval(M).ndim < 2:
        return _any(M != 0).astype(np.int32)
    s = svd(M, full_matrices=False, compute_uv=False, hermitian=hermitian)
    if rtol is None:
        rtol = _max(s, axis=-1) * (max(aval(M).shape[-2:]) * float(dtypes.finfo(s.dtype).eps))
    rtol = lax.expand_dims(lax.convert_element_type(rtol, s.dtype), (np.ndim(rtol),))
    return _sum(s > rtol, axis=-1)


def cond(x: Any, p: Any = None) -> Any:
    """Condition number in the ``p``-norm (2 by default, from the singular values); inf
    where the matrix is singular and has no NaNs."""
    x, = _inexact("cond", x)
    shape = aval(x).shape
    if len(shape) < 2:
        raise ValueError(f"cond: input array must be at least 2D; got shape {shape}")
    if shape[-1] == 0 or shape[-2] == 0:
        raise ValueError(f"cond: input array must not be empty; got shape {shape}")
    if p is None or p == 2:
        s = svdvals(x)
        return s[..., 0] / s[..., -1]
    if p == -2:
        s = svdvals(x)
        r = s[..., -1] / s[..., 0]
    else:
        _check_square(f"cond (p={p!r})", x)
        r = norm(x, ord=p, axis=(-2, -1)) * norm(inv(x), ord=p, axis=(-2, -1))
    nan_free = logical_not(_any(isnan(x), axis=(-2, -1)))
    return where(logical_and(isnan(r), nan_free), scalar_like(np.inf, r), r)


def tensorinv(a: Any, ind: int = 2) -> Any:
    """Inverse of ``a`` seen as a map from its last axes to its first ``ind`` axes."""
    a = ensure_arraylike("tensorinv", a)
    ind = operator.index(ind)
    if ind <= 0:
        raise ValueError(f"tensorinv: ind must be a positive integer; got ind={ind!r}")
    head, tail = aval(a).shape[:ind], aval(a).shape[ind:]
    if math.prod(head) != math.prod(tail):
        raise ValueError(f"tensorinv: the product of the first ind={ind} dimensions must "
                         f"equal that of the remaining ones; got shape {aval(a).shape}")
    return inv(a.reshape(math.prod(head), math.prod(tail))).reshape(*tail, *head)


def tensorsolve(a: Any, b: Any, axes: Sequence[int] | None = None) -> Any:
    """``x`` with ``tensordot(a, x, x.ndim) == b``."""
    a, b = ensure_arraylike("tensorsolve", a, b)
    if axes is not None:
        a = moveaxis(a, axes, len(axes) * (aval(a).ndim - 1,))
    out_shape = aval(a).shape[aval(b).ndim:]
    if aval(a).shape[:aval(b).ndim] != aval(b).shape:
        raise ValueError(f"tensorsolve: after moving axes to the end, a's leading shape must "
                         f"match b's; got a.shape={aval(a).shape}, b.shape={aval(b).shape}")
    if aval(b).size != math.prod(out_shape):
        raise ValueError("tensorsolve: input arrays must have prod(a.shape[:b.ndim]) == "
                         f"prod(a.shape[b.ndim:]); got a.shape={aval(a).shape}, "
                         f"b.ndim={aval(b).ndim}")
    return solve(a.reshape(aval(b).size, -1), b.reshape(-1)).reshape(out_shape)


def multi_dot(arrays: Sequence[Any], *, precision: Any = None) -> Any:
    """Product of a chain of matrices (first/last may be vectors), one ``einsum``."""
    arrs = list(ensure_arraylike("multi_dot", *arrays))
    if len(arrs) < 2:
        raise ValueError(f"multi_dot requires at least two arrays; got {len(arrs)}")
    shapes = [aval(a).shape for a in arrs]
    if not (len(shapes[0]) in (1, 2) and len(shapes[-1]) in (1, 2)
            and all(len(s) == 2 for s in shapes[1:-1])):
        raise ValueError("multi_dot: input arrays must all be two-dimensional, except for "
                         f"the first and last which may be 1-D; got shapes {shapes}")
    if any(s[-1] != t[0] for s, t in zip(shapes[:-1], shapes[1:])):
        raise ValueError("multi_dot: last dimension of each array must match the first "
                         f"dimension of the next; got shapes {shapes}")
    axes = [(i, i + 1) for i in range(len(arrs))]
    if len(shapes[0]) == 1:
        axes[0] = axes[0][1:]
    if len(shapes[-1]) == 1:
        axes[-1] = axes[-1][:1]
    return einsum(*itertools.chain(*zip(arrs, axes)), precision=precision)


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """Diagonals of the last two axes."""
    return _diagonal(x, offset, -2, -1)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """Traces of the last two axes."""
    return _trace(x, offset, -2, -1, dtype)


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """The cross product of 3-vectors along ``axis`` (the array API's ``linalg.cross``; the
    other axes broadcast). ``fungrad.numpy.cross`` also takes 2-vectors and ``axisa``/``axisb``/
    ``axisc``."""
    x1, x2 = ensure_arraylike("linalg.cross", x1, x2)
    if aval(x1).shape[axis] != 3 or aval(x2).shape[axis] != 3:
        raise ValueError(f"linalg.cross: both arrays need 3 elements along axis {axis}, got "
                         f"shapes {aval(x1).shape} and {aval(x2).shape}")
    return _cross(x1, x2, axis=axis)


__all__ = ["norm", "vector_norm", "matrix_norm", "matmul", "matrix_transpose", "outer",
           "tensordot", "vecdot", "diagonal", "trace", "cross", "cholesky", "solve", "inv",
           "det", "slogdet", "eigh", "eigvalsh", "eig", "eigvals", "svd", "svdvals", "qr",
           "lstsq", "pinv", "matrix_power", "matrix_rank", "cond", "tensorinv", "tensorsolve",
           "multi_dot", "EighResult", "EigResult", "QRResult", "SlogdetResult", "SVDResult"]
__dir__ = public_dir(__all__)
