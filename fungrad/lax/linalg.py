"""``fungrad.lax.linalg``: matrix decompositions and triangular solves (``jax.lax.linalg``).

Every primitive works on the last two axes and maps over any leading (batch) axes, so
its batching rule only moves the batched axis to the front. Implementations call
NumPy's LAPACK routines, which already loop over leading axes. NumPy has no LU or
triangular solver: ``lu`` calls LAPACK's ``getrf`` from the OpenBLAS NumPy ships
(``_lapack.py``), or, without it, factors recursively with partial pivoting as
``getrf2`` does; ``triangular_solve`` (recursive blocks down to row substitution) is
written here. ``solve`` calls NumPy's ``gesv`` (not part of ``jax.lax.linalg``: it serves
``fungrad.numpy.linalg``).

Failures are values, as in JAX: a matrix LAPACK cannot factor (``cholesky`` of a
matrix that is not positive definite, an ``svd`` or ``eig`` that does not converge)
gives NaNs for that matrix of the batch; a singular ``lu`` has a zero pivot.

Derivatives are forward-mode rules written with these primitives (so ``grad`` gets
them by transposition): Murray (2016) for ``cholesky``, De Hoog, Anderssen and Lukas
(2011) for ``lu``, the standard perturbation formulas for ``qr``, ``svd``, ``eigh`` and
``eig`` (eigenvector derivatives only with ``enable_eigvec_derivs=True``, as in JAX).
``triangular_solve`` is linear in ``b`` and has a transpose rule for it.

``schur``, ``hessenberg``, ``tridiagonal``, ``householder_product``, ``geqrf``, ``geqp3``
and ``ormqr`` call LAPACK (``_lapack.py``; NumPy has none of them), as does ``qr`` with
column pivoting. Off the CPU (CuPy has none of them either) and on a NumPy without LAPACK
symbols, all but ``schur`` run LAPACK's Householder algorithms written in array operations
(``_householder.py``); ``schur`` copies its matrices to the host for LAPACK and back (JAX
has it on the CPU only). ``symmetric_product`` and ``cholesky_update`` are written here.
As in JAX, these seven have no derivatives.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fungrad import backends
from fungrad._core import core
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.namespace import public_dir
from fungrad.interpreters import ad, batching
from fungrad.lax import _householder
from fungrad.lax._lapack import (gees, gehrd, geqp3 as _lapack_geqp3, geqrf as _lapack_geqrf,
                                 getrf, orgqr, ormqr as _lapack_ormqr, sytrd, trsm)
from fungrad.lax._prim import INEXACT, as_operand, check_dtypes
from fungrad.lax.dot import dot_general
from fungrad.lax.elementwise import (abs as _abs, add, complex as _complex, conj, div, eq,
                                     ge, imag as _imag, le, mul, neg, real, select,
                                     sub)
from fungrad.lax.reductions import argmax, reduce_sum
from fungrad.lax.shapes import (broadcast_in_dim, broadcasted_iota, convert_element_type,
                                expand_dims, full, reshape, transpose)
from fungrad.lax.slicing import concatenate, pad, slice as _slice
from fungrad.lax.sorting import _gather_along, sort

__all__ = ["cholesky", "cholesky_p", "cholesky_update", "cholesky_update_p", "eig", "eig_p",
           "eigh", "eigh_p", "geqp3", "geqp3_p", "geqrf", "geqrf_p", "hessenberg",
           "hessenberg_p", "householder_product", "householder_product_p", "lu", "lu_p",
           "lu_pivots_to_permutation", "lu_pivots_to_permutation_p", "lu_solve", "ormqr",
           "ormqr_p", "qr", "qr_p", "schur", "schur_p", "svd", "svd_p", "symmetric_product",
           "symmetric_product_p", "triangular_solve", "triangular_solve_p", "tridiagonal",
           "tridiagonal_p", "tridiagonal_solve", "tridiagonal_solve_p"]
__dir__ = public_dir(__all__)


# --------------------------------------------------------------------------- helpers

def _T(x: Any) -> Any:
    """Swap the last two axes."""
    nd = core.get_aval(x).ndim
    return transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _is_complex(x: Any) -> bool:
    return core.get_aval(x).dtype.kind == "c"


def _H(x: Any) -> Any:
    """Conjugate transpose of the last two axes."""
    return conj(_T(x)) if _is_complex(x) else _T(x)


def _mm(a: Any, b: Any) -> Any:
    """Matrix product over equal leading batch axes."""
    nd = core.get_aval(a).ndim
    batch = tuple(range(nd - 2))
    return dot_general(a, b, (((nd - 1,), (nd - 2,)), (batch, batch)))


def _tri_mask(x: Any, k: int, lower: bool) -> Any:
    """Keep the elements on and below (``lower``) or above diagonal ``k``; zero the rest."""
    shape = core.get_aval(x).shape
    nd = len(shape)
    rows = broadcasted_iota(np.int32, shape, nd - 2)
    cols = broadcasted_iota(np.int32, shape, nd - 1)
    diff = sub(cols, rows)
    k = full((), k, np.int32)
    keep = le(diff, k) if lower else ge(diff, k)
    return select(keep, x, full(shape, 0, core.get_aval(x).dtype))


def _tril(x: Any, k: int = 0) -> Any:
    return _tri_mask(x, k, True)


def _triu(x: Any, k: int = 0) -> Any:
    return _tri_mask(x, k, False)


def _eye(n: int, dtype: Any, nd: int) -> Any:
    """An ``n x n`` identity with ``nd - 2`` leading size-1 axes."""
    eye = eq(broadcasted_iota(np.int32, (n, n), 0), broadcasted_iota(np.int32, (n, n), 1))
    return broadcast_in_dim(convert_element_type(eye, dtype), (1,) * (nd - 2) + (n, n),
                            (nd - 2, nd - 1))


def _diag(x: Any) -> Any:
    """The main diagonal of the last two (square) axes."""
    shape = core.get_aval(x).shape
    return reduce_sum(mul(x, _eye(shape[-1], core.get_aval(x).dtype, len(shape))),
                      (len(shape) - 1,))


def _to(x: Any, like: Any) -> Any:
    """``x`` cast to ``like``'s dtype (real parts of complex values to a real dtype)."""
    dt = core.get_aval(like).dtype
    if _is_complex(x) and dt.kind != "c":
        x = real(x)
    return convert_element_type(x, dt)


def _real_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float64 if dtype in (np.float64, np.complex128) else np.float32)


def _complex_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.complex128 if dtype in (np.float64, np.complex128) else np.complex64)


def _check_matrix(name: str, aval: ShapedArray, square: bool = True) -> None:
    check_dtypes(name, [aval], INEXACT)
    if aval.dtype not in (np.float32, np.float64, np.complex64, np.complex128):
        raise NotImplementedError(f"{name}: unsupported dtype {aval.dtype.name}; LAPACK "
                                  "needs float32, float64, complex64 or complex128")
    if aval.ndim < 2 or (square and aval.shape[-1] != aval.shape[-2]):
        want = "[..., n, n]" if square else "[..., m, n]"
        raise ValueError(f"{name}: argument must have shape {want}, got {aval.shape}")


def _linalg_prim(name: str, impl: Callable, abstract: Callable,
                 n_out: Callable[..., int] | None = None) -> Primitive:
    """A primitive over the last two axes with its impl, shape rule and batching rule.

    ``n_out(**params)`` gives the number of results of a multiple-results primitive;
    those results are never weakly typed (as in JAX)."""
    prim = Primitive(name, multiple_results=n_out is not None)
    prim.def_impl(impl)
    prim.def_abstract_eval(abstract)
    if n_out is not None:
        prim.weak_type_rule = lambda weaks, **params: [False] * n_out(**params)
    batching.def_batch(prim, _batch_leading(prim))
    return prim


def _batch_leading(prim: Primitive) -> Callable:
    """Batching by moving each batched axis to the front (unbatched operands broadcast)."""
    def rule(axis_size, vals, dims, **params):
        vals = [batching.bdim_at_front(v, d, axis_size) for v, d in zip(vals, dims)]
        out = prim.bind(*vals, **params)
        return out, ([0] * len(out) if prim.multiple_results else 0)
    return rule


def _per_matrix(xp: Any, fn: Callable, x: Any, n_out: int) -> list:
    """``fn(x)`` (a list of ``n_out`` arrays over x's batch); where LAPACK fails on a
    matrix, that matrix's outputs are NaN (JAX's behaviour) and the others are kept."""
    try:
        return list(fn(x))
    except xp.linalg.LinAlgError:
        pass
    batch = x.shape[:-2]
    flat = x.reshape((-1,) + x.shape[-2:])
    outs = None
    for i, m in enumerate(flat):
        try:
            res = fn(m)
        except xp.linalg.LinAlgError:
            continue
        if outs is None:
            outs = [xp.full((len(flat),) + r.shape, xp.nan, r.dtype) for r in res]
        for o, r in zip(outs, res):
            o[i] = r
    if outs is None:  # every matrix failed: shapes and dtypes from an identity's results
        eye = xp.eye(*x.shape[-2:], dtype=x.dtype)
        outs = [xp.full((len(flat),) + r.shape, xp.nan, r.dtype) for r in fn(eye)]
    return [o.reshape(batch + o.shape[1:]) for o in outs]


def _lapack_or_arrays(xp: Any, routine: Callable | None, in_arrays: Callable) -> Callable:
    """LAPACK's ``routine`` (from ``_lapack``) for NumPy arrays where NumPy's OpenBLAS has
    it, else ``in_arrays`` (the same algorithm in array operations, ``_householder``) on
    ``xp``'s arrays."""
    if xp is np and routine is not None:
        return routine
    return lambda *args, **params: in_arrays(xp, *args, **params)


# --------------------------------------------------------------------------- triangular_solve

_SUBSTITUTION_BLOCK = 32  # below this size the recursion solves row by row


def _solve_lower(xp: Any, a: Any, b: Any, unit: bool) -> Any:
    """``X`` with ``tril(a) X = b`` (the diagonal taken as ones when ``unit``).

    Recursive halves: ``X1 = A11^-1 B1``, ``X2 = A22^-1 (B2 - A21 X1)``, so most of the
    work is one matrix product per level; blocks of ``_SUBSTITUTION_BLOCK`` rows or
    fewer use forward substitution, vectorised over the batch and the columns of ``b``.
    Only the lower triangle of ``a`` is read.
    """
    n = a.shape[-1]
    if n <= _SUBSTITUTION_BLOCK:
        x = b.copy()
        for i in range(n):
            if i:
                x[..., i, :] -= (a[..., i:i + 1, :i] @ x[..., :i, :])[..., 0, :]
            if not unit:
                x[..., i, :] /= a[..., i, i, None]
        return x
    h = n // 2
    x1 = _solve_lower(xp, a[..., :h, :h], b[..., :h, :], unit)
    x2 = _solve_lower(xp, a[..., h:, h:], b[..., h:, :] - a[..., h:, :h] @ x1, unit)
    return xp.concatenate([x1, x2], axis=-2)


def _triangular_solve_impl(xp, a, b, *, left_side, lower, transpose_a, conjugate_a,
                           unit_diagonal):
    if a.size == 0 or b.size == 0:  # an empty system or no right-hand sides
        return xp.zeros(b.shape, b.dtype)
    fits = (a.ndim == b.ndim >= 2 and a.shape[:-2] == b.shape[:-2] and a.shape[-1] == a.shape[-2]
            == b.shape[-2 if left_side else -1] and a.dtype == b.dtype)
    if xp is np and trsm is not None and fits:  # BLAS, in a's precision
        return trsm(a, b, left_side=left_side, lower=lower, transpose_a=transpose_a,
                    conjugate_a=conjugate_a, unit_diagonal=unit_diagonal)
    # Reduce every case to tril(A) X = B: op(A) = A^T swaps the triangle; X A = B is
    # A^T X^T = B^T; an upper-triangular system is lower triangular in reversed order.
    if conjugate_a:
        a = a.conj()
    if transpose_a:
        a, lower = xp.swapaxes(a, -1, -2), not lower
    if not left_side:
        a, b, lower = xp.swapaxes(a, -1, -2), xp.swapaxes(b, -1, -2), not lower
    if not lower:
        a, b = a[..., ::-1, ::-1], b[..., ::-1, :]
    x = _solve_lower(xp, a, b, unit_diagonal)
    if not lower:
        x = x[..., ::-1, :]
    return xp.ascontiguousarray(x if left_side else xp.swapaxes(x, -1, -2))


def _triangular_solve_abstract(a, b, *, left_side, **params):
    name = "triangular_solve"
    _check_matrix(name, a)
    if a.dtype != b.dtype:
        raise TypeError(f"{name}: a and b must have the same dtype, got {a.dtype.name} and "
                        f"{b.dtype.name}")
    m = a.shape[-1]
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or \
            b.shape[-2 if left_side else -1] != m:
        want = "[..., m, n]" if left_side else "[..., n, m]"
        raise TypeError(f"{name}: with left_side={left_side}, b must have shape {want} and "
                        f"a's batch dimensions when a has shape {a.shape}; got {b.shape}")
    return ShapedArray(b.shape, b.dtype)


def _triangular_solve_jvp(primals, tangents, **params):
    a, b = primals
    ta, tb = tangents
    out = triangular_solve_p.bind(a, b, **params)
    t_out = ad.Zero.from_primal(out)
    if type(tb) is not ad.Zero:
        t_out = ad.add_tangents(t_out, triangular_solve_p.bind(a, tb, **params))
    if type(ta) is not ad.Zero:
        # d(op(A)^-1 B) = -op(A)^-1 op(dA) X (left), d(B op(A)^-1) = -X op(dA) op(A)^-1
        k = 1 if params["unit_diagonal"] else 0
        da = _tril(ta, -k) if params["lower"] else _triu(ta, k)
        da = _T(da) if params["transpose_a"] else da
        da = conj(da) if params["conjugate_a"] and _is_complex(da) else da
        rhs = _mm(da, out) if params["left_side"] else _mm(out, da)
        t_out = ad.add_tangents(t_out, neg(triangular_solve_p.bind(a, rhs, **params)))
    return out, t_out


def _triangular_solve_transpose(ct, a, b, **params):
    if ad.is_undefined(a):
        raise ValueError("triangular_solve is not linear in a")
    if type(ct) is ad.Zero:
        return [None, None]
    params = dict(params, transpose_a=not params["transpose_a"])
    return [None, triangular_solve_p.bind(a, ct, **params)]


triangular_solve_p = _linalg_prim("triangular_solve", _triangular_solve_impl,
                                  _triangular_solve_abstract)
ad.def_jvp(triangular_solve_p, _triangular_solve_jvp)
ad.def_transpose(triangular_solve_p, _triangular_solve_transpose)


def triangular_solve(a: Any, b: Any, *, left_side: bool = False, lower: bool = False,
                     transpose_a: bool = False, conjugate_a: bool = False,
                     unit_diagonal: bool = False) -> Any:
    """Solve ``op(a) x = b`` (``left_side``) or ``x op(a) = b`` for triangular ``a``.

    ``op`` transposes (``transpose_a``) and/or conjugates (``conjugate_a``); only the
    triangle named by ``lower`` is read, and with ``unit_diagonal`` the diagonal is
    taken as ones. Shapes ``a: [..., m, m]``, ``b: [..., m, n]`` (left) or
    ``[..., n, m]``.

    >>> import fungrad.numpy as jnp
    >>> a = jnp.array([[2., 0.], [1., 4.]])
    >>> triangular_solve(a, jnp.array([[2.], [9.]]), left_side=True, lower=True)
    Array([[1.],
           [2.]], dtype=float32)
    """
    a, b = as_operand(a), as_operand(b)
    return triangular_solve_p.bind(a, b, left_side=bool(left_side), lower=bool(lower),
                                   transpose_a=bool(transpose_a),
                                   conjugate_a=bool(conjugate_a),
                                   unit_diagonal=bool(unit_diagonal))


# --------------------------------------------------------------------------- cholesky

def _cholesky_impl(xp, x):
    return _per_matrix(xp, lambda m: [xp.linalg.cholesky(m)], x, 1)[0]


def _cholesky_abstract(x):
    _check_matrix("cholesky", x)
    return ShapedArray(x.shape, x.dtype)


def _cholesky_jvp(primals, tangents):
    # Murray (2016), arXiv:1602.07527: dL = L Phi(L^-1 dA L^-H), where Phi takes the
    # lower triangle and halves the diagonal.
    x, = primals
    t, = tangents
    L = _tril(cholesky_p.bind(x))
    if type(t) is ad.Zero:
        return L, ad.Zero.from_primal(L)
    tmp = triangular_solve(L, t, left_side=False, transpose_a=True, conjugate_a=True,
                           lower=True)
    inner = _tril(triangular_solve(L, tmp, left_side=True, lower=True))
    n = core.get_aval(x).shape[-1]
    phi = div(inner, add(full((), 1, core.get_aval(x).dtype),
                         _eye(n, core.get_aval(x).dtype, core.get_aval(x).ndim)))
    return L, _mm(L, phi)


cholesky_p = _linalg_prim("cholesky", _cholesky_impl, _cholesky_abstract)
ad.def_jvp(cholesky_p, _cholesky_jvp)


def symmetrize(x: Any) -> Any:
    """``(x + x^H) / 2`` over the last two axes."""
    return div(add(x, _H(x)), full((), 2, core.get_aval(x).dtype))


def cholesky(x: Any, *, symmetrize_input: bool = True) -> Any:
    """The lower Cholesky factor ``L`` of ``x = L L^H`` (batched over leading axes).

    With ``symmetrize_input`` the factorisation sees ``(x + x^H) / 2`` (so both
    triangles take part, which is what a derivative needs); otherwise only the lower
    triangle is read. A matrix that is not positive definite gives NaNs in its lower
    triangle, as in JAX.

    >>> import fungrad.numpy as jnp
    >>> cholesky(jnp.array([[4., 2.], [2., 5.]]))
    Array([[2., 0.],
           [1., 2.]], dtype=float32)
    """
    x = as_operand(x)
    if symmetrize_input:
        _check_matrix("cholesky", core.get_aval(x))
        x = symmetrize(x)
    return _tril(cholesky_p.bind(x))


# --------------------------------------------------------------------------- lu

_LU_PANEL = 16  # panels this narrow are factored column by column


def _lu_columns(xp: Any, a: Any, perm: Any, piv: Any, j0: int, j1: int) -> None:
    """Factor columns ``j0:j1`` of the stacked matrices ``a`` in place (rows ``j0:``).

    Recursive as LAPACK's ``getrf2``: factor the left half, solve for the top of the
    right half, update the rest of it with one product, factor it. Row interchanges
    (partial pivoting: the first entry of largest magnitude) apply to whole rows.
    """
    if j1 - j0 <= _LU_PANEL:
        rows = xp.arange(a.shape[0])
        for j in range(j0, j1):
            p = j + xp.argmax(xp.abs(a[:, j:, j]), axis=1)
            piv[:, j] = p
            a[rows, j], a[rows, p] = a[rows, p], a[rows, j]
            perm[rows, j], perm[rows, p] = perm[rows, p], perm[rows, j]
            d = a[:, j, j]
            a[:, j + 1:, j] /= xp.where(d == 0, 1, d)[:, None]  # a zero pivot: zero column
            a[:, j + 1:, j + 1:j1] -= a[:, j + 1:, j, None] * a[:, None, j, j + 1:j1]
        return
    h = (j0 + j1) // 2
    _lu_columns(xp, a, perm, piv, j0, h)
    a[:, j0:h, h:j1] = _solve_lower(xp, a[:, j0:h, j0:h], a[:, j0:h, h:j1], True)
    a[:, h:, h:j1] -= a[:, h:, j0:h] @ a[:, j0:h, h:j1]
    _lu_columns(xp, a, perm, piv, h, j1)


def _lu_impl(xp, x):
    batch, (m, n) = x.shape[:-2], x.shape[-2:]
    k = min(m, n)
    if xp is np and getrf is not None and x.size:  # LAPACK, in x's precision
        lu_, piv = getrf(x)
        return [lu_, piv, _lu_pivots_to_permutation_impl(xp, piv, permutation_size=m)]
    a = x.reshape((int(np.prod(batch, dtype=np.int64)), m, n)).copy()
    perm = xp.tile(xp.arange(m, dtype=xp.int32), (a.shape[0], 1))
    piv = xp.zeros((a.shape[0], k), xp.int32)
    if k:
        _lu_columns(xp, a, perm, piv, 0, k)
        if n > m:
            a[:, :, m:] = _solve_lower(xp, a[:, :, :m], a[:, :, m:], True)
    return [a.reshape(x.shape), piv.reshape(batch + (k,)), perm.reshape(batch + (m,))]


def _lu_abstract(x):
    _check_matrix("lu", x, square=False)
    batch, (m, n) = x.shape[:-2], x.shape[-2:]
    return [ShapedArray(x.shape, x.dtype), ShapedArray(batch + (min(m, n),), np.dtype(np.int32)),
            ShapedArray(batch + (m,), np.dtype(np.int32))]


def _permute_rows(x: Any, permutation: Any) -> Any:
    """``x[..., permutation, :]`` with a permutation per batch member."""
    shape = core.get_aval(x).shape
    nd = len(shape)
    idx = broadcast_in_dim(permutation, shape, tuple(range(nd - 1)))
    return _gather_along(x, idx, nd - 2)


def _pad2(x: Any, rows: int, cols: int) -> Any:
    """``x`` with ``rows`` zero rows and ``cols`` zero columns appended."""
    nd = core.get_aval(x).ndim
    zero = full((), 0, core.get_aval(x).dtype)
    return pad(x, zero, [(0, 0, 0)] * (nd - 2) + [(0, rows, 0), (0, cols, 0)])


def _lu_jvp(primals, tangents):
    # De Hoog, Anderssen and Lukas (2011): with P A = L U,
    # L^-1 P dA U^-1 = L^-1 dL + dU U^-1, split into strictly lower and upper parts.
    a, = primals
    t, = tangents
    lu_, pivots, permutation = outs = lu_p.bind(a)
    zeros = [ad.Zero.from_primal(pivots), ad.Zero.from_primal(permutation)]
    if type(t) is ad.Zero:
        return outs, [ad.Zero.from_primal(lu_)] + zeros
    shape = core.get_aval(a).shape
    nd, (m, n), dt = len(shape), shape[-2:], core.get_aval(a).dtype
    k = min(m, n)
    batch = shape[:-2]
    l = _pad2(_tril(_slice(lu_, (0,) * nd, batch + (m, k)), -1), 0, m - k)
    l = add(l, _eye(m, dt, nd))
    u = _pad2(_triu(_slice(lu_, (0,) * nd, batch + (k, n))), n - k, 0)
    u = add(u, pad(_eye(n - k, dt, nd), full((), 0, dt),
                   [(0, 0, 0)] * (nd - 2) + [(k, 0, 0), (k, 0, 0)]))
    la = triangular_solve(l, _permute_rows(t, permutation), left_side=True, lower=True,
                          unit_diagonal=True)
    lau = triangular_solve(u, la, left_side=False, lower=False)
    return outs, [add(_mm(l, _tril(lau, -1)), _mm(_triu(lau), u))] + zeros


lu_p = _linalg_prim("lu", _lu_impl, _lu_abstract, lambda: 3)
ad.def_jvp(lu_p, _lu_jvp)


def lu(x: Any) -> list:
    """LU decomposition with partial pivoting, ``x[..., permutation, :] = L U``.

    Returns ``[lu, pivots, permutation]``: ``L`` (unit lower, strict part) and ``U``
    packed in ``lu``; ``pivots[i]`` is the row swapped with row ``i`` at step ``i``;
    ``permutation`` is the row order those swaps produce (int32, as in JAX).

    >>> import fungrad.numpy as jnp
    >>> lu_, pivots, perm = lu(jnp.array([[1., 2.], [3., 4.]]))
    >>> lu_
    Array([[3.        , 4.        ],
           [0.33333334, 0.6666666 ]], dtype=float32)
    >>> pivots, perm
    (Array([1, 1], dtype=int32), Array([1, 0], dtype=int32))
    """
    return lu_p.bind(as_operand(x))


def lu_solve(lu: Any, permutation: Any, b: Any, trans: int = 0) -> Any:
    """Solve ``A x = b`` (``trans=0``), ``A^T x = b`` (1) or ``A^H x = b`` (2) from
    ``lu``'s factors; ``b`` is ``[..., m, k]`` with ``lu``'s batch axes."""
    if trans == 0:
        x = triangular_solve(lu, _permute_rows(b, permutation), left_side=True, lower=True,
                             unit_diagonal=True)
        return triangular_solve(lu, x, left_side=True, lower=False)
    if trans not in (1, 2):
        raise ValueError(f"lu_solve: trans must be 0, 1 or 2, got {trans!r}")
    x = triangular_solve(lu, b, left_side=True, lower=False, transpose_a=True,
                         conjugate_a=trans == 2)
    x = triangular_solve(lu, x, left_side=True, lower=True, unit_diagonal=True,
                         transpose_a=True, conjugate_a=trans == 2)
    nd = core.get_aval(permutation).ndim
    inverse = sort((permutation, broadcasted_iota(np.int32, core.get_aval(permutation).shape,
                                                  nd - 1)), dimension=nd - 1, num_keys=1)[1]
    return _permute_rows(x, inverse)


def _lu_pivots_to_permutation_impl(xp, pivots, *, permutation_size):
    k = pivots.shape[-1]
    piv = pivots.reshape((int(np.prod(pivots.shape[:-1], dtype=np.int64)), k))
    if xp is np and piv.shape[0] < k:  # few long pivot rows: swap in Python lists
        perms = []
        for row in piv.tolist():
            perm = list(range(permutation_size))
            for i, j in enumerate(row):
                perm[i], perm[j] = perm[j], perm[i]
            perms.append(perm)
        return np.array(perms, np.int32).reshape(pivots.shape[:-1] + (permutation_size,))
    perm = xp.tile(xp.arange(permutation_size, dtype=xp.int32), (piv.shape[0], 1))
    rows = xp.arange(piv.shape[0])
    for i in range(k):
        j = piv[:, i]
        perm[rows, i], perm[rows, j] = perm[rows, j], perm[rows, i]
    return perm.reshape(pivots.shape[:-1] + (permutation_size,))


def _lu_pivots_to_permutation_abstract(pivots, *, permutation_size):
    if pivots.dtype != np.int32 or pivots.ndim < 1:
        raise TypeError("lu_pivots_to_permutation: pivots must be an int32 array of shape "
                        f"[..., k], got {pivots.dtype.name}{list(pivots.shape)}")
    if permutation_size < pivots.shape[-1]:
        raise ValueError(f"lu_pivots_to_permutation: permutation_size ({permutation_size}) "
                         f"must be at least the number of pivots ({pivots.shape[-1]})")
    return ShapedArray(pivots.shape[:-1] + (permutation_size,), np.dtype(np.int32))


lu_pivots_to_permutation_p = _linalg_prim("lu_pivots_to_permutation",
                                          _lu_pivots_to_permutation_impl,
                                          _lu_pivots_to_permutation_abstract)
ad.def_nondiff(lu_pivots_to_permutation_p)


def lu_pivots_to_permutation(pivots: Any, permutation_size: int) -> Any:
    """The row order (int32 ``[..., permutation_size]``) that ``lu``'s row swaps
    ``pivots`` produce: row ``i`` swapped with row ``pivots[i]``, in turn.

    >>> import fungrad.numpy as jnp
    >>> lu_pivots_to_permutation(jnp.array([2, 2], jnp.int32), 3)
    Array([2, 0, 1], dtype=int32)
    """
    return lu_pivots_to_permutation_p.bind(as_operand(pivots),
                                           permutation_size=int(permutation_size))


# --------------------------------------------------------------------------- solve, slogdet
#
# ``jnp.linalg.solve`` as one primitive: LAPACK's ``getrf`` and ``trsm`` (``_lapack``, in
# the input's precision, as JAX), or NumPy's ``gesv`` (which computes float32 in float64)
# where those are missing. Its derivatives are JAX's: ``solve`` is linear in ``b``
# (``a^-1 (db - da x)``, transposed by a solve with ``a^T``). Batched over ``b`` only, the
# batch becomes more right-hand sides of one solve: ``a`` is factored once.


_LAPACK_MIN = 64  # smaller systems: NumPy's gesv


def _lapack_solve(xp: Any, a: Any, b: Any) -> Any:
    """As JAX: ``getrf`` and two ``trsm`` in ``a``'s precision where ``_lapack`` found
    them and the matrices are large (one ``ctypes`` call per matrix costs more than
    NumPy's batched loop below ``_LAPACK_MIN``); otherwise NumPy's ``gesv`` over the batch,
    and for an exactly singular matrix (which NumPy refuses) ``lu`` and the triangular
    solves, whose zero pivot gives the infs and NaNs JAX gives."""
    if xp is not np or getrf is None or a.shape[-1] < _LAPACK_MIN:
        try:
            return xp.linalg.solve(a, b).astype(b.dtype, copy=False)
        except xp.linalg.LinAlgError:
            pass
    lu_, _, perm = _lu_impl(xp, a)
    flags = dict(left_side=True, transpose_a=False, conjugate_a=False)
    x = _triangular_solve_impl(xp, lu_, xp.take_along_axis(b, perm[..., None], axis=-2),
                               lower=True, unit_diagonal=True, **flags)
    return _triangular_solve_impl(xp, lu_, x, lower=False, unit_diagonal=False, **flags)


def _solve_impl(xp, a, b, *, transpose_a):
    return _lapack_solve(xp, xp.swapaxes(a, -1, -2) if transpose_a else a, b)


def _solve_abstract(a, b, *, transpose_a):
    _check_matrix("solve", a)
    if a.dtype != b.dtype:
        raise TypeError(f"solve: a and b must have the same dtype, got {a.dtype.name} and "
                        f"{b.dtype.name}")
    if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1]:
        raise TypeError(f"solve: b must have shape [..., n, k] with a's batch dimensions "
                        f"when a has shape {a.shape}; got {b.shape}")
    return ShapedArray(b.shape, b.dtype)


def _solve_jvp(primals, tangents, *, transpose_a):
    a, b = primals
    ta, tb = tangents
    x = solve_p.bind(a, b, transpose_a=transpose_a)
    if type(ta) is not ad.Zero:  # op(a) dx = db - op(da) x
        da_x = _mm(_T(ta) if transpose_a else ta, x)
        tb = neg(da_x) if type(tb) is ad.Zero else sub(tb, da_x)
    if type(tb) is ad.Zero:
        return x, ad.Zero.from_primal(x)
    return x, solve_p.bind(a, tb, transpose_a=transpose_a)


def _solve_transpose(ct, a, b, *, transpose_a):
    if ad.is_undefined(a):
        raise ValueError("solve is not linear in a")
    if type(ct) is ad.Zero:
        return [None, None]
    return [None, solve_p.bind(a, ct, transpose_a=not transpose_a)]


def _solve_batch(axis_size, vals, dims, *, transpose_a):
    """Batched ``b`` with an unbatched ``a``: the batch joins ``b``'s columns (one
    factorisation of ``a``); otherwise both batch axes move to the front."""
    (a, b), (a_dim, b_dim) = vals, dims
    if a_dim is not batching.not_mapped or b_dim is batching.not_mapped:
        return _batch_leading(solve_p)(axis_size, vals, dims, transpose_a=transpose_a)
    shape = core.get_aval(b).shape  # batch axis at b_dim, then a's batch, n, k
    nd = len(shape)
    rest = [d for d in range(nd) if d != b_dim]
    cols = transpose(b, tuple(rest[:-1]) + (b_dim, rest[-1]))  # [..., n, B, k]
    wide = reshape(cols, core.get_aval(cols).shape[:-2] + (axis_size * shape[rest[-1]],))
    x = solve_p.bind(a, wide, transpose_a=transpose_a)
    x = reshape(x, core.get_aval(cols).shape)
    return x, nd - 2


solve_p = _linalg_prim("solve", _solve_impl, _solve_abstract)
batching.def_batch(solve_p, _solve_batch)
ad.def_jvp(solve_p, _solve_jvp)
ad.def_transpose(solve_p, _solve_transpose)


def solve(a: Any, b: Any, *, transpose_a: bool = False) -> Any:
    """``x`` with ``op(a) x = b`` (``op(a) = a^T`` with ``transpose_a``), for ``a: [..., n,
    n]`` and ``b: [..., n, k]`` with ``a``'s batch axes, by LAPACK's ``gesv``: the primitive
    under ``jnp.linalg.solve`` (not in ``jax.lax.linalg``, where JAX composes ``lu`` with
    ``custom_linear_solve``; the derivatives are the same).

    >>> import fungrad.numpy as jnp
    >>> solve(jnp.array([[2., 1.], [1., 3.]]), jnp.array([[3.], [5.]]))
    Array([[0.8],
           [1.4]], dtype=float32)
    """
    return solve_p.bind(as_operand(a), as_operand(b), transpose_a=bool(transpose_a))


# --------------------------------------------------------------------------- qr
#
# ``qr`` calls LAPACK's ``geqrf`` (``geqp3`` with column pivoting) and ``orgqr`` in the
# input's precision (``_lapack.py``), as JAX's CPU lowering, so the factors agree with
# JAX's to the bit in float32; without those routines, NumPy's ``qr`` (which computes
# float32 in float64) and no pivoting. The derivative is JAX's
# (j-towns.github.io/papers/qr-derivative.pdf for the thin factors, a square block and a
# product for wide matrices, arXiv:2409.13374 for the full ``Q`` of tall ones), taken of
# the pivoted columns when pivoting (the permutation is piecewise constant). For wide
# pivoted matrices JAX forms ``dR2 = dQ^H x2 + Q^H dx2`` from the unpermuted ``x2``, which
# finite differences refute; here ``x2`` is permuted as ``dx2`` is.

def _qr_impl(xp, x, *, pivoting, full_matrices):
    lapack = xp is np and _lapack_geqrf is not None
    if not (lapack or pivoting):  # NumPy's (CuPy's) qr: NumPy's computes float32 in float64
        return list(xp.linalg.qr(x, mode="complete" if full_matrices else "reduced"))
    batch, (m, n) = x.shape[:-2], x.shape[-2:]
    if m == 0 or n == 0:  # nothing to factor: Q the identity's columns, R empty
        k = m if full_matrices else min(m, n)
        q = xp.broadcast_to(xp.eye(m, k, dtype=x.dtype), batch + (m, k)).copy()
        return [q, xp.zeros(batch + (k, n), x.dtype)] + (
            [xp.zeros(batch + (n,), np.int32)] if pivoting else [])
    householder_product_ = _lapack_or_arrays(xp, orgqr, _householder.orgqr)
    if pivoting:
        r, p, taus = _lapack_or_arrays(xp, _lapack_geqp3, _householder.geqp3)(
            x, xp.zeros(batch + (n,), np.int32))
    else:
        (r, taus), p = _lapack_geqrf(x), None
    if m < n:
        q = householder_product_(r[..., :m], taus)
    elif full_matrices:
        q = householder_product_(
            xp.concatenate([r, xp.zeros(batch + (m, m - n), x.dtype)], axis=-1), taus)
    else:
        q, r = householder_product_(r, taus), r[..., :n, :]
    return [q, xp.triu(r)] + ([p - 1] if pivoting else [])


def _qr_abstract(x, *, pivoting, full_matrices):
    _check_matrix("qr", x, square=False)
    batch, (m, n) = x.shape[:-2], x.shape[-2:]
    k = m if full_matrices else min(m, n)
    outs = [ShapedArray(batch + (m, k), x.dtype), ShapedArray(batch + (k, n), x.dtype)]
    return outs + ([ShapedArray(batch + (n,), np.dtype(np.int32))] if pivoting else [])


def _thin_qr_jvp(q: Any, r: Any, dx: Any) -> tuple[Any, Any]:
    """``(dQ, dR)`` of ``x = Q R`` for ``[..., m, n]`` matrices with ``m >= n`` and ``R``
    square: from ``Q^H dx R^-1 = Q^H dQ + dR R^-1``, a skew-Hermitian plus an upper
    triangular term (with the imaginary part of the diagonal in the first for complex)."""
    n = core.get_aval(r).shape[-1]
    dx_rinv = triangular_solve(r, dx)
    qt_dx_rinv = _mm(_H(q), dx_rinv)
    low = _tril(qt_dx_rinv, -1)
    do = sub(low, _H(low))
    if _is_complex(q):
        eye = _eye(n, core.get_aval(q).dtype, core.get_aval(q).ndim)
        do = add(do, mul(eye, sub(qt_dx_rinv, _to(real(qt_dx_rinv), q))))
    return add(_mm(q, sub(do, qt_dx_rinv)), dx_rinv), _mm(sub(qt_dx_rinv, do), r)


def _block(x: Any, r0: int, r1: int, c0: int, c1: int) -> Any:
    """``x[..., r0:r1, c0:c1]``."""
    shape = core.get_aval(x).shape
    return _slice(x, (0,) * (len(shape) - 2) + (r0, c0), shape[:-2] + (r1, c1))


def _qr_jvp(primals, tangents, *, pivoting, full_matrices):
    x, = primals
    dx, = tangents
    outs = qr_p.bind(x, pivoting=pivoting, full_matrices=full_matrices)
    q, r = outs[:2]
    if type(dx) is ad.Zero:
        return outs, [ad.Zero.from_primal(o) for o in outs]
    shape = core.get_aval(x).shape
    nd, (m, n) = len(shape), shape[-2:]
    if pivoting:  # x[..., p] = Q R: the tangent's columns in the same order
        idx = broadcast_in_dim(outs[2], shape, tuple(range(nd - 2)) + (nd - 1,))
        dx = _gather_along(dx, idx, nd - 1)
        x = _gather_along(x, idx, nd - 1) if m < n else x
    if m < n:  # [x1 x2] = Q [r1 r2]: x1 = Q r1 is square; dr2 = dQ^H x2 + Q^H dx2
        dq, dr1 = _thin_qr_jvp(q, _block(r, 0, m, 0, m), _block(dx, 0, m, 0, m))
        dr2 = add(_mm(_H(dq), _block(x, 0, m, m, n)), _mm(_H(q), _block(dx, 0, m, m, n)))
        dr = concatenate([dr1, dr2], nd - 1)
    elif not full_matrices or m == n:
        dq, dr = _thin_qr_jvp(q, r, dx)
    else:  # the last m - n columns of the full Q (arXiv:2409.13374, eqs. 32-33)
        q_mn = _block(q, 0, m, 0, n)
        dq_mn, dr_nn = _thin_qr_jvp(q_mn, _block(r, 0, n, 0, n), dx)
        q_nn, q_pn = _block(q_mn, 0, n, 0, n), _block(q_mn, n, m, 0, n)
        dq_nn, dq_pn = _block(dq_mn, 0, n, 0, n), _block(dq_mn, n, m, 0, n)
        lu_, _, perm = lu(sub(q_nn, _eye(n, core.get_aval(x).dtype, nd)))
        z_pn_h = lu_solve(lu_, perm, _H(q_pn), trans=2)  # Z = Q_pn (Q_nn - I)^-1
        z_pn = _H(z_pn_h)
        dq_mp = sub(_mm(dq_mn, z_pn_h), _mm(add(q_mn, _mm(_block(q, 0, m, n, m), z_pn)),
                                           _H(sub(dq_pn, _mm(z_pn, dq_nn)))))
        dq, dr = concatenate([dq_mn, dq_mp], nd - 1), _pad2(dr_nn, m - n, 0)
    return outs, [dq, dr] + [ad.Zero.from_primal(p) for p in outs[2:]]


qr_p = _linalg_prim("qr", _qr_impl, _qr_abstract, lambda *, pivoting, **p: 3 if pivoting else 2)
ad.def_jvp(qr_p, _qr_jvp)


def qr(x: Any, *, pivoting: bool = False, full_matrices: bool = True,
       use_magma: bool | None = None) -> tuple[Any, ...]:
    """QR decomposition ``x = Q R`` (Householder, LAPACK's sign convention).

    ``full_matrices=True``: ``Q`` is ``[..., m, m]`` and ``R`` ``[..., m, n]``;
    otherwise ``[..., m, k]`` and ``[..., k, n]`` with ``k = min(m, n)``. With
    ``pivoting`` the factorisation is rank-revealing, ``x[..., :, p] = Q R`` with the
    magnitudes on ``R``'s diagonal non-increasing (LAPACK's ``geqp3``), and ``(q, r, p)``
    is returned, ``p`` int32 ``[..., n]``. ``use_magma`` only matters on GPUs in JAX and
    is ignored.

    >>> import fungrad.numpy as jnp
    >>> q, r, p = qr(jnp.array([[1., 3.], [0., 4.]]), pivoting=True)
    >>> p, jnp.abs(r[0, 0])
    (Array([1, 0], dtype=int32), Array(5., dtype=float32))
    """
    del use_magma  # a GPU switch in JAX
    return tuple(qr_p.bind(as_operand(x), pivoting=bool(pivoting),
                           full_matrices=bool(full_matrices)))


# --------------------------------------------------------------------------- svd

def _svd_impl(xp, x, *, full_matrices, compute_uv):
    if not compute_uv:
        return _per_matrix(xp, lambda m: [xp.linalg.svd(m, compute_uv=False)], x, 1)
    u, s, vt = _per_matrix(xp, lambda m: xp.linalg.svd(m, full_matrices=full_matrices), x, 3)
    return [s, u, vt]


def _svd_abstract(x, *, full_matrices, compute_uv):
    _check_matrix("svd", x, square=False)
    batch, (m, n) = x.shape[:-2], x.shape[-2:]
    k = min(m, n)
    s = ShapedArray(batch + (k,), _real_dtype(x.dtype))
    if not compute_uv:
        return [s]
    ku, kv = (m, n) if full_matrices else (k, k)
    return [s, ShapedArray(batch + (m, ku), x.dtype), ShapedArray(batch + (kv, n), x.dtype)]


def _svd_jvp(primals, tangents, *, full_matrices, compute_uv):
    a, = primals
    da, = tangents
    if compute_uv and full_matrices:
        raise NotImplementedError("svd: the derivative is not implemented for "
                                  "full_matrices=True")
    s, u, vt = svd_p.bind(a, full_matrices=False, compute_uv=True)
    outs = [s, u, vt] if compute_uv else [s]
    if type(da) is ad.Zero:
        return outs, [ad.Zero.from_primal(o) for o in outs]
    nd, (m, n) = core.get_aval(a).ndim, core.get_aval(a).shape[-2:]
    ut, v = _H(u), _H(vt)
    ds_mat = _mm(_mm(ut, da), v)                       # U^H dA V
    ds = _diag(_to(ds_mat, s))
    if not compute_uv:
        return outs, [ds]
    s_row = expand_dims(s, (nd - 2,))                  # s as a row, [..., 1, k]
    s_col = _T(s_row)
    k = core.get_aval(s).shape[-1]
    eye = _eye(k, core.get_aval(s).dtype, nd)
    diffs = mul(add(s_row, s_col), sub(s_row, s_col))  # s_j^2 - s_i^2, zero diagonal
    f = sub(div(full((), 1, core.get_aval(s).dtype), add(diffs, eye)), eye)
    zero_s = convert_element_type(eq(s, full((), 0, core.get_aval(s).dtype)),
                                  core.get_aval(s).dtype)
    s_inv = sub(div(full((), 1, core.get_aval(s).dtype), add(s, zero_s)), zero_s)
    s_row_a, s_col_a = _to(s_row, a), _to(s_col, a)
    dss, sds = mul(s_row_a, ds_mat), mul(s_col_a, ds_mat)
    f_a = _to(f, a)
    skew = mul(mul(full((), 0.5, core.get_aval(a).dtype), sub(ds_mat, _H(ds_mat))),
               _to(mul(eye, expand_dims(s_inv, (nd - 2,))), a))
    du = _mm(u, add(mul(f_a, add(dss, _H(dss))), skew))
    dv = _mm(v, mul(f_a, add(sds, _H(sds))))
    if m > n:
        dav = _mm(da, v)
        du = add(du, div(sub(dav, _mm(u, _mm(ut, dav))), s_row_a))
    if n > m:
        dahu = _mm(_H(da), u)
        dv = add(dv, div(sub(dahu, _mm(v, _mm(vt, dahu))), s_row_a))
    return outs, [ds, du, _H(dv)]


svd_p = _linalg_prim("svd", _svd_impl, _svd_abstract,
                     lambda *, full_matrices, compute_uv: 3 if compute_uv else 1)
ad.def_jvp(svd_p, _svd_jvp)


def svd(x: Any, *, full_matrices: bool = True, compute_uv: bool = True,
        subset_by_index: tuple[int, int] | None = None) -> Any:
    """Singular value decomposition ``x = U diag(s) V^H``, singular values descending.

    Returns ``(u, s, vh)``, or ``s`` alone when ``compute_uv=False``. A matrix LAPACK
    cannot decompose gives NaNs.
    """
    x = as_operand(x)
    if subset_by_index is not None:
        raise NotImplementedError("svd: subset_by_index is not implemented")
    outs = svd_p.bind(x, full_matrices=bool(full_matrices), compute_uv=bool(compute_uv))
    if not compute_uv:
        return outs[0]
    s, u, vt = outs
    return u, s, vt


# --------------------------------------------------------------------------- eigh

def _eigh_impl(xp, x, *, lower, sort_eigenvalues):
    w, v = _per_matrix(xp, lambda m: xp.linalg.eigh(m, UPLO="L" if lower else "U"), x, 2)
    return [v, w]


def _eigh_abstract(x, *, lower, sort_eigenvalues):
    _check_matrix("eigh", x)
    return [ShapedArray(x.shape, x.dtype), ShapedArray(x.shape[:-1], _real_dtype(x.dtype))]


def _eigh_jvp(primals, tangents, *, lower, sort_eigenvalues):
    # dw = diag(V^H dA V), dV = V (F * (V^H dA V)) with F_ij = 1 / (w_j - w_i), F_ii = 0.
    a, = primals
    da, = tangents
    v, w = eigh_p.bind(a, lower=lower, sort_eigenvalues=sort_eigenvalues)
    if type(da) is ad.Zero:
        return [v, w], [ad.Zero.from_primal(v), ad.Zero.from_primal(w)]
    nd, n, dt = core.get_aval(a).ndim, core.get_aval(a).shape[-1], core.get_aval(a).dtype
    wa = _to(w, a)
    eye = _eye(n, dt, nd)
    f = sub(div(full((), 1, dt), add(eye, sub(expand_dims(wa, (nd - 2,)),
                                              expand_dims(wa, (nd - 1,))))), eye)
    vdv = _mm(_mm(_H(v), da), v)
    return [v, w], [_mm(v, mul(f, vdv)), _diag(_to(vdv, w))]


eigh_p = _linalg_prim("eigh", _eigh_impl, _eigh_abstract, lambda **p: 2)
ad.def_jvp(eigh_p, _eigh_jvp)


def eigh(x: Any, *, lower: bool = True, symmetrize_input: bool = True,
         sort_eigenvalues: bool = True,
         subset_by_index: tuple[int, int] | None = None) -> tuple[Any, Any]:
    """Eigenvectors and (ascending) eigenvalues of Hermitian matrices: ``(v, w)``.

    With ``symmetrize_input`` the decomposition sees ``(x + x^H) / 2``; otherwise only
    the triangle named by ``lower`` is read.
    """
    x = as_operand(x)
    if subset_by_index is not None:
        raise NotImplementedError("eigh: subset_by_index is not implemented")
    if symmetrize_input:
        _check_matrix("eigh", core.get_aval(x))
        x = symmetrize(x)
    v, w = eigh_p.bind(x, lower=bool(lower), sort_eigenvalues=bool(sort_eigenvalues))
    return v, w


# --------------------------------------------------------------------------- eig

def _normalize_columns(xp: Any, v: Any) -> Any:
    """Columns scaled to unit 2-norm with their largest-magnitude component real (geev)."""
    v = v / xp.linalg.norm(v, axis=-2, keepdims=True)
    k = xp.argmax(xp.abs(v), axis=-2)[..., None, :]
    big = xp.take_along_axis(v, k, axis=-2)
    return v * (big.conj() / xp.where(big == 0, 1, xp.abs(big)))


def _eig_impl(xp, x, *, compute_left_eigenvectors, compute_right_eigenvectors,
              enable_eigvec_derivs):
    ct = _complex_dtype(x.dtype)
    if hasattr(xp.linalg, "eig"):
        w, vr = _per_matrix(xp, xp.linalg.eig, x, 2)
    else:  # CuPy before 14 has no general eigensolver: LAPACK's on the host, and back
        w, vr = (backends.to_backend(out, xp) for out in
                 _per_matrix(np, np.linalg.eig, backends.to_backend(x, np), 2))
    w, vr = w.astype(ct), vr.astype(ct)
    outs = [w]
    if compute_left_eigenvectors:  # rows of V^-1 are the left eigenvectors (conjugated)
        outs.append(_normalize_columns(xp, xp.swapaxes(xp.linalg.inv(vr), -1, -2).conj()))
    if compute_right_eigenvectors:
        outs.append(vr)
    return outs


def _eig_abstract(x, *, compute_left_eigenvectors, compute_right_eigenvectors,
                  enable_eigvec_derivs):
    _check_matrix("eig", x)
    ct = _complex_dtype(x.dtype)
    vec = ShapedArray(x.shape, ct)
    return [ShapedArray(x.shape[:-1], ct)] + [vec] * (compute_left_eigenvectors
                                                      + compute_right_eigenvectors)


def _eig_vec_jvp(w: Any, v: Any, da: Any) -> tuple[Any, Any]:
    """Eigenvalue and eigenvector tangents (non-degenerate perturbation theory), with
    each vector's free complex scale fixed by geev's normalisation (unit norm, largest
    component real)."""
    nd, n, dt = core.get_aval(v).ndim, core.get_aval(v).shape[-1], core.get_aval(v).dtype
    eye = _eye(n, dt, nd)
    f = sub(div(full((), 1, dt), add(eye, sub(expand_dims(w, (nd - 2,)),
                                              expand_dims(w, (nd - 1,))))), eye)
    p = _mm(solve(v, da), v)
    u = _mm(v, mul(f, p))
    k = argmax(_abs(v), nd - 2, np.int32)
    mask = convert_element_type(eq(broadcasted_iota(np.int32, core.get_aval(v).shape, nd - 2),
                                   expand_dims(k, (nd - 2,))), dt)
    c_re = neg(real(reduce_sum(mul(conj(v), u), (nd - 2,))))
    c_im = neg(div(_imag(reduce_sum(mul(mask, u), (nd - 2,))),
                   real(reduce_sum(mul(mask, v), (nd - 2,)))))
    return _diag(p), add(u, mul(v, expand_dims(_complex(c_re, c_im), (nd - 2,))))


def _eig_jvp(primals, tangents, *, compute_left_eigenvectors, compute_right_eigenvectors,
             enable_eigvec_derivs):
    a, = primals
    da, = tangents
    vectors = compute_left_eigenvectors or compute_right_eigenvectors
    if vectors and not enable_eigvec_derivs:
        raise NotImplementedError(
            "eig: derivatives of non-symmetric eigenvectors are only valid under "
            "assumptions on the input that cannot be checked; pass "
            "enable_eigvec_derivs=True to fungrad.lax.linalg.eig to opt in")
    outs = eig_p.bind(a, compute_left_eigenvectors=compute_left_eigenvectors,
                      compute_right_eigenvectors=True,
                      enable_eigvec_derivs=enable_eigvec_derivs)
    w, vr = outs[0], outs[-1]
    primal = [w] + ([outs[1]] if compute_left_eigenvectors else []) + \
        ([vr] if compute_right_eigenvectors else [])
    if type(da) is ad.Zero:
        return primal, [ad.Zero.from_primal(o) for o in primal]
    da = convert_element_type(da, core.get_aval(vr).dtype)
    if not vectors:  # dw = diag(V^-1 dA V)
        return primal, [reduce_sum(mul(solve(vr, da), _T(vr)), (core.get_aval(vr).ndim - 1,))]
    dw, dvr = _eig_vec_jvp(w, vr, da)
    tangent = [dw]
    if compute_left_eigenvectors:
        tangent.append(_eig_vec_jvp(conj(w), outs[1], _H(da))[1])
    if compute_right_eigenvectors:
        tangent.append(dvr)
    return primal, tangent


eig_p = _linalg_prim("eig", _eig_impl, _eig_abstract,
                     lambda *, compute_left_eigenvectors, compute_right_eigenvectors, **p:
                     1 + compute_left_eigenvectors + compute_right_eigenvectors)
ad.def_jvp(eig_p, _eig_jvp)


def eig(x: Any, *, compute_left_eigenvectors: bool = True,
        compute_right_eigenvectors: bool = True,
        enable_eigvec_derivs: bool = False) -> list:
    """Eigenvalues and left/right eigenvectors of general square matrices (complex).

    Returns ``[w]`` followed by ``vl`` (``vl[:, j]^H x = w_j vl[:, j]^H``) and ``vr``
    (``x vr[:, j] = w_j vr[:, j]``) as requested; each vector has unit norm and a real
    largest component. Only eigenvalues are differentiable unless
    ``enable_eigvec_derivs=True``.
    """
    return eig_p.bind(as_operand(x), compute_left_eigenvectors=bool(compute_left_eigenvectors),
                      compute_right_eigenvectors=bool(compute_right_eigenvectors),
                      enable_eigvec_derivs=bool(enable_eigvec_derivs))


# --------------------------------------------------------------------------- tridiagonal_solve

def _tridiagonal_solve_impl(xp, dl, d, du, b):
    # The Thomas algorithm (no pivoting, as LAPACK's gtsv without row interchanges):
    # one forward sweep eliminating the sub-diagonal, one back substitution.
    m = d.shape[-1]
    c = xp.empty_like(du)
    x = xp.array(b, copy=True)
    denom = d[..., 0]
    c[..., 0] = du[..., 0] / denom
    x[..., 0, :] /= denom[..., None]
    for i in range(1, m):
        denom = d[..., i] - dl[..., i] * c[..., i - 1]
        c[..., i] = du[..., i] / denom
        x[..., i, :] = (x[..., i, :] - dl[..., i, None] * x[..., i - 1, :]) / denom[..., None]
    for i in range(m - 2, -1, -1):
        x[..., i, :] -= c[..., i, None] * x[..., i + 1, :]
    return x


def _tridiagonal_solve_abstract(dl, d, du, b):
    name = "tridiagonal_solve"
    _check_matrix(name, b, square=False)
    for what, v in (("dl", dl), ("d", d), ("du", du)):
        if v.dtype != b.dtype:
            raise TypeError(f"{name}: {what} must have b's dtype {b.dtype.name}, got "
                            f"{v.dtype.name}")
        if v.shape != b.shape[:-1]:
            raise TypeError(f"{name}: {what} must have shape {b.shape[:-1]} (b's shape "
                            f"without its last axis), got {v.shape}")
    return ShapedArray(b.shape, b.dtype)


def _tridiagonal_product(dl: Any, d: Any, du: Any, x: Any) -> Any:
    """``A x`` for the tridiagonal ``A`` with diagonals ``dl``, ``d``, ``du``."""
    nd, m = core.get_aval(x).ndim, core.get_aval(x).shape[-2]
    zero = full((), 0, core.get_aval(x).dtype)
    cfg = [(0, 0, 0)] * (nd - 2)
    shape = core.get_aval(x).shape
    up = pad(_slice(x, (0,) * (nd - 2) + (1, 0), shape), zero, cfg + [(0, 1, 0), (0, 0, 0)])
    down = pad(_slice(x, (0,) * nd, shape[:-2] + (m - 1, shape[-1])), zero,
               cfg + [(1, 0, 0), (0, 0, 0)])
    dl, d, du = (expand_dims(v, (nd - 1,)) for v in (dl, d, du))
    return add(add(mul(d, x), mul(du, up)), mul(dl, down))


def _tridiagonal_solve_jvp(primals, tangents):
    *diags, _ = primals
    *t_diags, tb = tangents
    out = tridiagonal_solve_p.bind(*primals)
    if all(type(t) is ad.Zero for t in tangents):
        return out, ad.Zero.from_primal(out)
    rhs = ad.instantiate(tb)
    if any(type(t) is not ad.Zero for t in t_diags):  # d(A^-1 b) = A^-1 (db - dA x)
        rhs = sub(rhs, _tridiagonal_product(*map(ad.instantiate, t_diags), out))
    return out, tridiagonal_solve_p.bind(*diags, rhs)


def _tridiagonal_solve_transpose(ct, dl, d, du, b):
    if any(ad.is_undefined(v) for v in (dl, d, du)):
        raise ValueError("tridiagonal_solve is not linear in its diagonals")
    if type(ct) is ad.Zero:
        return [None] * 4
    # A^T has sub-diagonal du shifted down and super-diagonal dl shifted up.
    nd, m = core.get_aval(d).ndim, core.get_aval(d).shape[-1]
    shape, zero = core.get_aval(d).shape, full((), 0, core.get_aval(d).dtype)
    cfg = [(0, 0, 0)] * (nd - 1)
    dl_t = pad(_slice(du, (0,) * nd, shape[:-1] + (m - 1,)), zero, cfg + [(1, 0, 0)])
    du_t = pad(_slice(dl, (0,) * (nd - 1) + (1,), shape), zero, cfg + [(0, 1, 0)])
    return [None, None, None, tridiagonal_solve_p.bind(dl_t, d, du_t, ct)]


tridiagonal_solve_p = _linalg_prim("tridiagonal_solve", _tridiagonal_solve_impl,
                                   _tridiagonal_solve_abstract)
ad.def_jvp(tridiagonal_solve_p, _tridiagonal_solve_jvp)
ad.def_transpose(tridiagonal_solve_p, _tridiagonal_solve_transpose)


def tridiagonal_solve(dl: Any, d: Any, du: Any, b: Any, *,
                      perturb_singular: bool = False) -> Any:
    """Solve ``A x = b`` for tridiagonal ``A`` given by its diagonals ``[..., m]``:
    ``A[i, i-1] = dl[i]`` (``dl[0]`` unused), ``A[i, i] = d[i]``, ``A[i, i+1] = du[i]``
    (``du[-1]`` unused); ``b`` is ``[..., m, n]``. No pivoting (the Thomas algorithm),
    so ``A`` should be diagonally dominant or otherwise safe to eliminate in order.
    """
    if perturb_singular:
        raise NotImplementedError("tridiagonal_solve: perturb_singular is not implemented")
    return tridiagonal_solve_p.bind(*map(as_operand, (dl, d, du, b)))


# --------------------------------------------------------------------------- schur, hessenberg,
# tridiagonal, householder_product, geqrf, geqp3, ormqr (LAPACK), symmetric_product and
# cholesky_update: without derivatives (as in JAX)

def _bind_checked(prim: Primitive, abstract: Callable, *args: Any, **params: Any) -> Any:
    """``prim.bind`` after its shape rule on the arguments (eager binds skip the rule,
    and LAPACK would not report a bad shape or dtype clearly)."""
    args = [as_operand(a) for a in args]
    abstract(*map(core.get_aval, args), **params)
    return prim.bind(*args, **params)


def _no_jvp(prim: Primitive) -> None:
    ad.def_no_jvp(prim, f"Differentiation rule for '{prim.name}' not implemented (JAX defines "
                  "none either)")


def _schur_impl(xp, x, *, compute_schur_vectors, sort_eig_vals, select_callable):
    if gees is None:
        raise NotImplementedError("schur: needs LAPACK from the OpenBLAS NumPy ships (as JAX, "
                                  "which implements it on CPU only); none was found")
    t, z, ok = gees(backends.to_backend(x, np), compute_schur_vectors)  # a GPU's: read back
    failed = ~ok[..., None, None]  # a matrix the QR algorithm failed on: NaNs, as JAX
    outs = [np.where(failed, np.nan, t).astype(x.dtype)]
    outs += [np.where(failed, np.nan, z).astype(x.dtype)] if compute_schur_vectors else []
    return [backends.to_backend(out, xp) for out in outs]


def _schur_abstract(x, *, compute_schur_vectors, sort_eig_vals, select_callable):
    _check_matrix("schur", x)
    return [ShapedArray(x.shape, x.dtype)] * (2 if compute_schur_vectors else 1)


schur_p = _linalg_prim("schur", _schur_impl, _schur_abstract,
                       lambda *, compute_schur_vectors, **p: 2 if compute_schur_vectors else 1)
_no_jvp(schur_p)


def schur(x: Any, *, compute_schur_vectors: bool = True, sort_eig_vals: bool = False,
          select_callable: Callable[..., Any] | None = None) -> list:
    """Schur decomposition ``x = Q U Q^H`` of square matrices (LAPACK's ``gees``).

    Returns ``[U, Q]`` (``[U]`` without ``compute_schur_vectors``): ``U`` is upper
    triangular for complex ``x`` and quasi-upper-triangular for real ``x`` (2x2 diagonal
    blocks for complex eigenvalue pairs); ``Q`` is unitary. ``sort_eig_vals`` and
    ``select_callable`` are unused, as in JAX. Not differentiable.
    """
    if sort_eig_vals or select_callable is not None:
        raise NotImplementedError("schur: sort_eig_vals and select_callable are not "
                                  "implemented")
    return _bind_checked(schur_p, _schur_abstract, x,
                         compute_schur_vectors=bool(compute_schur_vectors), sort_eig_vals=False,
                         select_callable=None)


def _hessenberg_impl(xp, a):
    return list(_lapack_or_arrays(xp, gehrd, _householder.gehrd)(a))


def _hessenberg_abstract(a):
    _check_matrix("hessenberg", a)
    return [ShapedArray(a.shape, a.dtype),
            ShapedArray(a.shape[:-2] + (max(a.shape[-1] - 1, 0),), a.dtype)]


hessenberg_p = _linalg_prim("hessenberg", _hessenberg_impl, _hessenberg_abstract, lambda: 2)
_no_jvp(hessenberg_p)


def hessenberg(a: Any) -> list:
    """Reduce square matrices to upper Hessenberg form (LAPACK's ``gehrd``).

    Returns ``[a, taus]``: the Hessenberg matrix on and above the first sub-diagonal of
    ``a``, the Householder reflectors below it, and the reflectors' scalar factors
    ``taus`` (``[..., n - 1]``). Not differentiable.
    """
    return _bind_checked(hessenberg_p, _hessenberg_abstract, a)


def _householder_product_impl(xp, a, taus):
    return _lapack_or_arrays(xp, orgqr, _householder.orgqr)(a, taus)


def _householder_product_abstract(a, taus):
    name = "householder_product"
    _check_matrix(name, a, square=False)
    (m, n), k = a.shape[-2:], taus.shape[-1] if taus.ndim else -1
    if m < n:
        raise ValueError(f"{name}: a must have at least as many rows as columns, got shape "
                         f"{a.shape}")
    if taus.dtype != a.dtype or taus.shape[:-1] != a.shape[:-2] or k > min(m, n):
        raise ValueError(f"{name}: taus must have a's dtype {a.dtype.name} and shape "
                         f"[..., k] with a's batch axes and k <= {min(m, n)}, got "
                         f"{taus.dtype.name}{list(taus.shape)}")
    return ShapedArray(a.shape, a.dtype)


householder_product_p = _linalg_prim("householder_product", _householder_product_impl,
                                     _householder_product_abstract)
_no_jvp(householder_product_p)


def householder_product(a: Any, taus: Any) -> Any:
    """The product ``H_1 ... H_k`` of the Householder reflectors below the diagonal of
    ``a`` (``[..., m, n]``, ``m >= n``) with factors ``taus`` (``[..., k]``): the first
    ``n`` columns of the orthogonal (unitary) matrix, ``[..., m, n]`` (LAPACK's
    ``orgqr``/``ungqr``). Not differentiable.
    """
    return _bind_checked(householder_product_p, _householder_product_abstract, a, taus)


def _geqrf_impl(xp, a):
    return list(_lapack_or_arrays(xp, _lapack_geqrf, _householder.geqrf)(a))


def _geqrf_abstract(a):
    _check_matrix("geqrf", a, square=False)
    return [ShapedArray(a.shape, a.dtype),
            ShapedArray(a.shape[:-2] + (min(a.shape[-2:]),), a.dtype)]


geqrf_p = _linalg_prim("geqrf", _geqrf_impl, _geqrf_abstract, lambda: 2)
_no_jvp(geqrf_p)


def geqrf(a: Any) -> tuple[Any, Any]:
    """Householder QR factorisation of ``a`` (``[..., m, n]``) in LAPACK's packed form
    (``geqrf``): ``(a, taus)``, ``R`` on and above the diagonal of ``a``, the reflectors
    below it, their scalar factors in ``taus`` (``[..., min(m, n)]``). ``Q`` is
    ``householder_product`` of them, or ``ormqr`` applies it without forming it. Not
    differentiable (use ``qr``), as in JAX.

    >>> import fungrad.numpy as jnp
    >>> packed, taus = geqrf(jnp.array([[3., 1.], [4., 2.]]))
    >>> packed[0], taus.shape
    (Array([-5. , -2.2], dtype=float32), (2,))
    """
    return tuple(_bind_checked(geqrf_p, _geqrf_abstract, a))


def _geqp3_impl(xp, a, jpvt):
    return list(_lapack_or_arrays(xp, _lapack_geqp3, _householder.geqp3)(a, jpvt))


def _geqp3_abstract(a, jpvt):
    _check_matrix("geqp3", a, square=False)
    if jpvt.dtype.kind not in "iu" or jpvt.shape != a.shape[:-2] + a.shape[-1:]:
        raise TypeError(f"geqp3: jpvt must be an integer array of shape "
                        f"{list(a.shape[:-2] + a.shape[-1:])} (a's batch axes and columns) "
                        f"when a has shape {list(a.shape)}, got "
                        f"{jpvt.dtype.name}{list(jpvt.shape)}")
    return [ShapedArray(a.shape, a.dtype), ShapedArray(jpvt.shape, jpvt.dtype),
            ShapedArray(a.shape[:-2] + (min(a.shape[-2:]),), a.dtype)]


geqp3_p = _linalg_prim("geqp3", _geqp3_impl, _geqp3_abstract, lambda: 3)
_no_jvp(geqp3_p)


def geqp3(a: Any, jpvt: Any, *, use_magma: bool | None = None) -> tuple[Any, Any, Any]:
    """Column-pivoted Householder QR factorisation (LAPACK's ``geqp3``): ``(a, jpvt,
    taus)`` packed as ``geqrf``'s, with ``a[..., :, jpvt - 1] = Q R`` (``jpvt`` counts
    from 1, as LAPACK). On input, ``jpvt[..., j] != 0`` moves column ``j`` to the front;
    the others are chosen by largest remaining norm. ``use_magma`` is a GPU switch in JAX,
    ignored. Not differentiable (use ``qr(pivoting=True)``), as in JAX.

    >>> import fungrad.numpy as jnp
    >>> geqp3(jnp.array([[1., 3.], [0., 4.]]), jnp.zeros(2, jnp.int32))[1]
    Array([2, 1], dtype=int32)
    """
    del use_magma  # a GPU switch in JAX
    return tuple(_bind_checked(geqp3_p, _geqp3_abstract, a, jpvt))


def _ormqr_impl(xp, a, taus, c, *, left, transpose):
    return _lapack_or_arrays(xp, _lapack_ormqr, _householder.ormqr)(a, taus, c, left=left,
                                                                     transpose=transpose)


def _ormqr_abstract(a, taus, c, *, left, transpose):
    name = "ormqr"
    _check_matrix(name, a, square=False)
    (m, n), k = a.shape[-2:], taus.shape[-1] if taus.ndim else -1
    if taus.dtype != a.dtype or taus.shape[:-1] != a.shape[:-2] or k > min(m, n):
        raise ValueError(f"{name}: taus must have a's dtype {a.dtype.name} and shape [..., k] "
                         f"with a's batch axes and k <= {min(m, n)}, got "
                         f"{taus.dtype.name}{list(taus.shape)}")
    if c.dtype != a.dtype or c.ndim != a.ndim or c.shape[:-2] != a.shape[:-2]:
        raise ValueError(f"{name}: c must have a's dtype {a.dtype.name} and batch axes "
                         f"{list(a.shape[:-2])}, got {c.dtype.name}{list(c.shape)}")
    if c.shape[-2 if left else -1] != m:
        what = "rows" if left else "columns"
        raise ValueError(f"{name} with left={left} expects c to have as many {what} as the "
                         f"Householder matrix a has rows. Got a shape {a.shape} and c shape "
                         f"{c.shape}.")
    return ShapedArray(c.shape, c.dtype)


ormqr_p = _linalg_prim("ormqr", _ormqr_impl, _ormqr_abstract)
_no_jvp(ormqr_p)


def ormqr(a: Any, taus: Any, c: Any, *, left: bool = True, transpose: bool = False) -> Any:
    """``Q @ c``, ``Q^H @ c`` (``transpose``), ``c @ Q`` or ``c @ Q^H`` (``left=False``)
    for the ``Q`` of Householder reflectors ``a`` (``[..., m, n]``) and ``taus``
    (``[..., k]``) as ``geqrf`` and ``geqp3`` return them, without forming ``Q`` (LAPACK's
    ``ormqr``/``unmqr``). ``c`` has ``m`` rows (left) or columns and ``a``'s batch axes;
    the result has ``c``'s shape. Not differentiable, as in JAX.

    >>> import fungrad.numpy as jnp
    >>> a = jnp.array([[1., 2.], [3., 4.], [5., 6.]])
    >>> packed, taus = geqrf(a)
    >>> q, _ = qr(a)
    >>> bool(jnp.allclose(ormqr(packed, taus, jnp.eye(3)), q, atol=1e-6))
    True
    """
    return _bind_checked(ormqr_p, _ormqr_abstract, a, taus, c, left=bool(left),
                         transpose=bool(transpose))


def _symmetric_product_impl(xp, a, c, *, alpha, beta):
    scalar = a.dtype.type
    return scalar(alpha) * (a @ xp.swapaxes(a, -1, -2)) + scalar(beta) * c


def _symmetric_product_abstract(a, c, *, alpha, beta):
    name = "symmetric_product"
    for what, v in (("a_matrix", a), ("c_matrix", c)):
        if v.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: {what} must be float32 or float64, got {v.dtype.name}")
    _check_matrix(name, a, square=False)
    _check_matrix(name, c)
    if a.dtype != c.dtype or c.shape != a.shape[:-1] + a.shape[-2:-1]:
        raise ValueError(f"{name} expects a rectangular matrix of shape [..., m, n] and a "
                         f"square one of shape [..., m, m] of the same dtype. Got "
                         f"{a.dtype.name}{list(a.shape)} and {c.dtype.name}{list(c.shape)}.")
    return ShapedArray(c.shape, c.dtype)


symmetric_product_p = _linalg_prim("symmetric_product", _symmetric_product_impl,
                                   _symmetric_product_abstract)
_no_jvp(symmetric_product_p)


def symmetric_product(a_matrix: Any, c_matrix: Any, *, alpha: float = 1.0, beta: float = 0.0,
                      symmetrize_output: bool = False) -> Any:
    """``alpha A A^T + beta C`` for ``A`` ``[..., m, n]`` and symmetric ``C``
    ``[..., m, m]`` (real floating point; BLAS's ``syrk`` on GPUs in JAX). Only the lower
    triangle is guaranteed on every platform; ``symmetrize_output`` mirrors it onto the
    upper one. Not differentiable, as in JAX.

    >>> import fungrad.numpy as jnp
    >>> symmetric_product(jnp.array([[1., 2.], [3., 4.]]), jnp.eye(2), beta=1.)
    Array([[ 6., 11.],
           [11., 26.]], dtype=float32)
    """
    out = _bind_checked(symmetric_product_p, _symmetric_product_abstract, a_matrix, c_matrix,
                        alpha=float(alpha), beta=float(beta))
    return add(_tril(out), _T(_tril(out, -1))) if symmetrize_output else out


def _cholesky_update_impl(xp, r, w):
    # Givens rotations zero w against R's rows in turn (JAX's formulation: ratios of the
    # larger magnitude avoid overflow; a zero w entry is the identity rotation).
    r, w = r.copy(), w.copy()
    for k in range(r.shape[-1]):
        x, y = r[..., k, k], w[..., k]
        rotate = y != 0
        big = xp.where(rotate, xp.maximum(xp.abs(x), xp.abs(y)), 1)
        x, y = x / big, y / big
        rh = 1 / xp.where(rotate, xp.sqrt(x * x + y * y), 1)
        c, s = xp.where(rotate, x * rh, 1)[..., None], xp.where(rotate, -y * rh, 0)[..., None]
        row = r[..., k, :]
        r[..., k, :], w = c * row - s * w, c * w + s * row
    return r


def _cholesky_update_abstract(r, w):
    name = "cholesky_update"
    _check_matrix(name, r)
    if r.dtype.kind == "c" or w.dtype != r.dtype or w.shape != r.shape[:-1]:
        raise ValueError(f"{name}: takes a real square upper-triangular matrix [..., n, n] and a "
                         f"vector [..., n] of its dtype; got {r.dtype.name}{list(r.shape)} and "
                         f"{w.dtype.name}{list(w.shape)}")
    return ShapedArray(r.shape, r.dtype)


cholesky_update_p = _linalg_prim("cholesky_update", _cholesky_update_impl,
                                 _cholesky_update_abstract)
_no_jvp(cholesky_update_p)


def cholesky_update(r_matrix: Any, w_vector: Any) -> Any:
    """The upper Cholesky factor of ``A + w w^T`` from the factor ``R`` of ``A = R^T R``
    (rank-one update by Givens rotations, ``O(n^2)``); ``R`` ``[..., n, n]`` upper
    triangular, ``w`` ``[..., n]``. Leading axes are a batch (JAX takes one matrix). Not
    differentiable, as in JAX.

    >>> import fungrad.numpy as jnp
    >>> cholesky_update(jnp.array([[3., 0.], [0., 1.]]), jnp.array([4., 0.]))
    Array([[5., 0.],
           [0., 1.]], dtype=float32)
    """
    return _bind_checked(cholesky_update_p, _cholesky_update_abstract, r_matrix, w_vector)


def _tridiagonal_impl(xp, a, *, lower):
    return list(_lapack_or_arrays(xp, sytrd, _householder.sytrd)(a, lower))


def _tridiagonal_abstract(a, *, lower):
    _check_matrix("tridiagonal", a)
    batch, n, real_dt = a.shape[:-2], a.shape[-1], _real_dtype(a.dtype)
    off = batch + (max(n - 1, 0),)
    return [ShapedArray(a.shape, a.dtype), ShapedArray(batch + (n,), real_dt),
            ShapedArray(off, real_dt), ShapedArray(off, a.dtype)]


tridiagonal_p = _linalg_prim("tridiagonal", _tridiagonal_impl, _tridiagonal_abstract,
                             lambda **p: 4)
_no_jvp(tridiagonal_p)


def tridiagonal(a: Any, *, lower: bool = True) -> list:
    """Reduce Hermitian matrices to tridiagonal form (LAPACK's ``sytrd``/``hetrd``),
    reading only the ``lower`` (or upper) triangle.

    Returns ``[a, d, e, taus]``: the tridiagonal matrix on the diagonal and first
    sub-diagonal (super-diagonal if not ``lower``) of ``a``, the Householder reflectors
    beyond it; its (real) diagonal ``d`` and off-diagonal ``e``; the reflectors' scalar
    factors ``taus``. Not differentiable.
    """
    return _bind_checked(tridiagonal_p, _tridiagonal_abstract, a, lower=bool(lower))
