"""LAPACK's LU factorisation (``getrf``) and BLAS's triangular solve (``trsm``) from the
OpenBLAS that NumPy's wheels ship.

NumPy's ``linalg`` exposes neither LU factors (``solve`` and ``slogdet`` factor
internally and throw the factors away) nor a triangular solver, and it computes float32
inputs in float64. JAX's CPU backend calls ``getrf`` and ``trsm`` in the input's own
precision; so do ``getrf`` and ``trsm`` here, through ``ctypes``, on the library NumPy
already loaded (the ``scipy-openblas`` build of its wheels: symbols ``scipy_sgetrf_64_``
with 64-bit integers, or ``scipy_sgetrf_`` with 32-bit ones). Where no such library is
found (another NumPy build), both are None and ``fungrad.lax.linalg`` uses its own
recursive NumPy LU and triangular solve instead.

The reductions NumPy lacks entirely come from the same library: the Schur decomposition
(``gees``), the Hessenberg (``gehrd``) and tridiagonal (``sytrd``/``hetrd``) reductions and
the product of Householder reflectors (``orgqr``/``ungqr``), the QR factorisations
without and with column pivoting (``geqrf``, ``geqp3``; NumPy's ``qr`` has no pivoting
and keeps no reflectors) and the product with ``Q`` without forming it
(``ormqr``/``unmqr``). Without the library they are
None, and so are the primitives that need them (as in JAX, which has them on CPU only).
"""
from __future__ import annotations

import ctypes
import glob
import os
from typing import Callable

import numpy as np

_PREFIXES = {np.dtype(np.float32): "s", np.dtype(np.float64): "d",
             np.dtype(np.complex64): "c", np.dtype(np.complex128): "z"}
# (symbol pattern, integer type): ILP64 builds carry the "64_" suffix.
_NAMINGS = (("scipy_{}{}_64_", ctypes.c_int64), ("scipy_{}{}_", ctypes.c_int32))


def _candidates() -> list[str]:
    """OpenBLAS libraries bundled with NumPy (Linux and Windows wheels: ``numpy.libs``
    beside the package; macOS: ``numpy/.dylibs``)."""
    root = os.path.dirname(np.__file__)
    found: list[str] = []
    for folder in (os.path.join(root, os.pardir, "numpy.libs"), os.path.join(root, ".dylibs")):
        found += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    return found


def _load() -> tuple[dict[str, dict[np.dtype, Callable]], type, Callable] | None:
    """``{"getrf": {dtype: routine}, "trsm": {...}}``, their integer type and a lookup
    ``symbol(name, dtype)`` of any other routine of the library, or None."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern, int_t in _NAMINGS:
            try:
                routines = {name: {dt: getattr(lib, pattern.format(p, name))
                                   for dt, p in _PREFIXES.items()}
                            for name in ("getrf", "trsm")}
            except AttributeError:
                continue
            ip, ptr, char = ctypes.POINTER(int_t), ctypes.c_void_p, ctypes.c_char_p
            for name, argtypes in (("getrf", [ip, ip, ptr, ip, ptr, ip]),
                                   ("trsm", [char, char, char, char, ip, ip, ptr, ptr, ip, ptr,
                                             ip])):
                for fn in routines[name].values():
                    fn.restype, fn.argtypes = None, argtypes

            def symbol(name: str, dtype: np.dtype, lib=lib, pattern=pattern) -> Callable:
                fn = getattr(lib, pattern.format(_PREFIXES[dtype], name))
                fn.restype = None
                return fn
            return routines, int_t, symbol
    return None


_ROUTINES = _load()


def _columns(a: np.ndarray) -> np.ndarray:
    """The matrices of ``a[..., m, n]`` stacked as ``[batch, n, m]``: each row-major block
    is the column-major layout LAPACK reads (a copy, which LAPACK may overwrite)."""
    stacked = a.reshape((int(np.prod(a.shape[:-2])),) + a.shape[-2:])
    return np.array(np.swapaxes(stacked, -1, -2), order="C", copy=True)


def _rows(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of ``_columns``: row-major matrices of ``shape``."""
    return np.ascontiguousarray(np.swapaxes(cols, -1, -2)).reshape(shape)


def _getrf(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LU factors of ``a[..., m, n]`` by LAPACK, in ``a``'s precision.

    Returns ``(lu, pivots)``: ``lu`` packs the unit lower ``L`` (strict part) and ``U``
    (as ``jax.lax.linalg.lu``); ``pivots[..., i]`` (int32, from 0) is the row swapped
    with row ``i``. A singular matrix has a zero pivot, as in LAPACK and JAX.
    """
    routines, int_t, _ = _ROUTINES
    routine = routines["getrf"][a.dtype]
    batch, (m, n) = a.shape[:-2], a.shape[-2:]
    k = min(m, n)
    # LAPACK reads columns: a row-major copy of each matrix's transpose is its
    # column-major layout, and the factors come back the same way (a copy always: getrf
    # overwrites it, and a transposed view of ``a`` may already be row-major).
    cols = _columns(a)
    ipiv = np.empty((cols.shape[0], max(k, 1)), np.int64 if int_t is ctypes.c_int64 else np.int32)
    m_, n_, lda, info = int_t(m), int_t(n), int_t(max(m, 1)), int_t(0)
    ref = ctypes.byref
    for i in range(cols.shape[0]):
        routine(ref(m_), ref(n_), cols[i].ctypes.data, ref(lda), ipiv[i].ctypes.data, ref(info))
    lu = _rows(cols, a.shape)
    pivots = (ipiv[:, :k] - 1).astype(np.int32).reshape(batch + (k,))
    return lu, pivots


def _trsm(a: np.ndarray, b: np.ndarray, *, left_side: bool, lower: bool, transpose_a: bool,
          conjugate_a: bool, unit_diagonal: bool) -> np.ndarray:
    """``x`` with ``op(a) x = b`` (``left_side``) or ``x op(a) = b``, ``a`` triangular
    (only its ``lower`` or upper triangle read), over equal leading batch axes;
    ``op(a)`` is ``a``, ``a^T`` or (``conjugate_a``) ``a^H``, or ``conj(a)``.

    A row-major matrix is the column-major layout of its transpose, and ``op(a) x = b``
    is ``x^T op(a)^T = b^T``: BLAS solves the transposed system with the side and the
    triangle swapped and ``op`` kept.
    """
    routines, int_t, _ = _ROUTINES
    if conjugate_a and not transpose_a:  # conj(a) x = b: BLAS has no bare conjugate
        a, conjugate_a = a.conj(), False
    a = np.ascontiguousarray(a).reshape((-1,) + a.shape[-2:])
    x = np.array(b, order="C").reshape((-1,) + b.shape[-2:])
    rows, cols = x.shape[-2:]
    alpha = np.ones((), a.dtype)
    m_, n_ = int_t(cols), int_t(rows)
    lda, ldb = int_t(max(a.shape[-1], 1)), int_t(max(cols, 1))
    flags = (b"R" if left_side else b"L", b"U" if lower else b"L",
             (b"C" if conjugate_a else b"T") if transpose_a else b"N",
             b"U" if unit_diagonal else b"N")
    routine, ref = routines["trsm"][a.dtype], ctypes.byref
    if x.size:
        for i in range(x.shape[0]):
            routine(*flags, ref(m_), ref(n_), alpha.ctypes.data, a[i].ctypes.data, ref(lda),
                    x[i].ctypes.data, ref(ldb))
    return x.reshape(b.shape)


def _real(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32 if dtype in (np.float32, np.complex64) else np.float64)


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _each(stack: np.ndarray) -> list[ctypes.c_void_p]:
    """Pointers to ``stack[0]``, ``stack[1]``, ... of a C-contiguous stack (cheaper than
    ``_ptr`` of each: no view per matrix)."""
    base, step = stack.ctypes.data, stack.strides[0] if stack.ndim else 0
    return [ctypes.c_void_p(base + i * step) for i in range(len(stack))]


def _gees(a: np.ndarray, compute_vectors: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Schur decompositions ``a = Z T Z^H`` of ``a[..., n, n]`` by LAPACK's ``gees``:
    ``(T, Z, ok)``, ``T`` quasi-upper-triangular (real input: 2x2 blocks for complex
    eigenvalue pairs) or upper triangular (complex), ``ok[i]`` False where the QR
    algorithm failed on matrix ``i``. ``Z`` is left unset unless ``compute_vectors``."""
    _, int_t, symbol = _ROUTINES
    routine, ref, is_complex = symbol("gees", a.dtype), ctypes.byref, a.dtype.kind == "c"
    n = a.shape[-1]
    t = _columns(a)
    z = np.empty_like(t)
    w = [np.empty(max(n, 1), a.dtype) for _ in range(1 if is_complex else 2)]  # w or wr, wi
    work, rwork = np.empty(max(1, 8 * n), a.dtype), np.empty(max(n, 1), _real(a.dtype))
    n_, ld, lwork, sdim, info = int_t(n), int_t(max(n, 1)), int_t(work.size), int_t(0), int_t(0)
    ok = np.ones(t.shape[0], bool)
    for i in range(t.shape[0] if n else 0):
        routine(b"V" if compute_vectors else b"N", b"N", None, ref(n_), _ptr(t[i]), ref(ld),
                ref(sdim), *map(_ptr, w), _ptr(z[i]), ref(ld), _ptr(work), ref(lwork),
                *([_ptr(rwork)] if is_complex else []), None, ref(info))
        ok[i] = info.value == 0
    return _rows(t, a.shape), _rows(z, a.shape), ok.reshape(a.shape[:-2])


def _gehrd(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hessenberg reductions of ``a[..., n, n]`` by LAPACK's ``gehrd``: ``(h, taus)``,
    the Hessenberg form on and above the first sub-diagonal of ``h``, the Householder
    vectors below it, their scalar factors in ``taus[..., n - 1]``."""
    _, int_t, symbol = _ROUTINES
    routine, ref = symbol("gehrd", a.dtype), ctypes.byref
    n = a.shape[-1]
    h = _columns(a)
    taus = np.zeros((h.shape[0], max(n - 1, 0)), a.dtype)
    work = np.empty(max(1, 64 * n), a.dtype)
    n_, one, ld, lwork, info = int_t(n), int_t(1), int_t(max(n, 1)), int_t(work.size), int_t(0)
    for i in range(h.shape[0] if n > 1 else 0):
        routine(ref(n_), ref(one), ref(n_), _ptr(h[i]), ref(ld), _ptr(taus[i]), _ptr(work),
                ref(lwork), ref(info))
    return _rows(h, a.shape), taus.reshape(a.shape[:-2] + taus.shape[-1:])


def _orgqr(a: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """The products ``H_1 ... H_k`` of the Householder reflectors stored below the
    diagonal of ``a[..., m, n]`` with factors ``taus[..., k]`` (LAPACK's ``orgqr`` or
    ``ungqr``): the first ``n`` columns, ``[..., m, n]``."""
    _, int_t, symbol = _ROUTINES
    routine = symbol("ungqr" if a.dtype.kind == "c" else "orgqr", a.dtype)
    m, n, k = a.shape[-2], a.shape[-1], taus.shape[-1]
    q = _columns(a)
    taus = np.ascontiguousarray(taus.reshape((q.shape[0], k)))
    work = np.empty(max(1, 64 * n), a.dtype)
    ref = ctypes.byref
    sizes = [ref(int_t(v)) for v in (m, n, k)]
    ld, tail = ref(int_t(max(m, 1))), (_ptr(work), ref(int_t(work.size)), ref(int_t(0)))
    for q_i, tau_i in zip(_each(q), _each(taus)) if m and n else ():
        routine(*sizes, q_i, ld, tau_i, *tail)
    return _rows(q, a.shape)


def _sytrd(a: np.ndarray, lower: bool) -> tuple[np.ndarray, ...]:
    """Tridiagonal reductions of Hermitian ``a[..., n, n]`` (only the ``lower`` or upper
    triangle read) by LAPACK's ``sytrd``/``hetrd``: ``(a, d, e, taus)`` with the reflectors
    in ``a`` beyond the first off-diagonal, the (real) diagonal ``d`` and off-diagonal
    ``e`` of the tridiagonal matrix, and the reflectors' factors ``taus``."""
    _, int_t, symbol = _ROUTINES
    routine = symbol("hetrd" if a.dtype.kind == "c" else "sytrd", a.dtype)
    n, batch = a.shape[-1], a.shape[:-2]
    cols = _columns(a)
    d = np.zeros((cols.shape[0], n), _real(a.dtype))
    e = np.zeros((cols.shape[0], max(n - 1, 0)), _real(a.dtype))
    taus = np.zeros((cols.shape[0], max(n - 1, 0)), a.dtype)
    work = np.empty(max(1, 64 * n), a.dtype)
    n_, ld, lwork, info, ref = int_t(n), int_t(max(n, 1)), int_t(work.size), int_t(0), ctypes.byref
    for i in range(cols.shape[0] if n else 0):
        routine(b"L" if lower else b"U", ref(n_), _ptr(cols[i]), ref(ld), _ptr(d[i]), _ptr(e[i]),
                _ptr(taus[i]), _ptr(work), ref(lwork), ref(info))
    return (_rows(cols, a.shape), d.reshape(batch + d.shape[-1:]),
            e.reshape(batch + e.shape[-1:]), taus.reshape(batch + taus.shape[-1:]))


def _geqrf(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QR factorisations of ``a[..., m, n]`` by LAPACK's ``geqrf``: ``(a, taus)``, ``R`` on
    and above the diagonal of ``a``, the Householder vectors below it, their scalar
    factors in ``taus[..., min(m, n)]``."""
    _, int_t, symbol = _ROUTINES
    routine, ref = symbol("geqrf", a.dtype), ctypes.byref
    (m, n), k = a.shape[-2:], min(a.shape[-2:])
    cols = _columns(a)
    taus = np.zeros((cols.shape[0], k), a.dtype)
    work = np.empty(max(1, 64 * n), a.dtype)
    sizes, ld = [ref(int_t(m)), ref(int_t(n))], ref(int_t(max(m, 1)))
    tail = (_ptr(work), ref(int_t(work.size)), ref(int_t(0)))
    for a_i, tau_i in zip(_each(cols), _each(taus)) if k else ():
        routine(*sizes, a_i, ld, tau_i, *tail)
    return _rows(cols, a.shape), taus.reshape(a.shape[:-2] + (k,))


def _geqp3(a: np.ndarray, jpvt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-pivoted QR factorisations of ``a[..., m, n]`` by LAPACK's ``geqp3``:
    ``(a, jpvt, taus)`` as ``_geqrf``'s, with ``jpvt[..., n]`` the order of the columns
    (from 1): column ``jpvt[j] - 1`` of the input is column ``j`` of ``Q R``. On input, a
    nonzero ``jpvt[j]`` moves column ``j`` to the front before the others are pivoted."""
    _, int_t, symbol = _ROUTINES
    routine, ref, is_complex = symbol("geqp3", a.dtype), ctypes.byref, a.dtype.kind == "c"
    (m, n), k = a.shape[-2:], min(a.shape[-2:])
    cols = _columns(a)
    piv = np.array(jpvt.reshape(cols.shape[0], n), np.int64 if int_t is ctypes.c_int64 else
                   np.int32, order="C")
    taus = np.zeros((cols.shape[0], k), a.dtype)
    work = np.empty(max(1, 2 * n + 64 * (n + 1)), a.dtype)
    rwork = [np.empty(max(1, 2 * n), _real(a.dtype))] if is_complex else []
    sizes, ld = [ref(int_t(m)), ref(int_t(n))], ref(int_t(max(m, 1)))
    tail = (_ptr(work), ref(int_t(work.size)), *map(_ptr, rwork), ref(int_t(0)))
    for a_i, piv_i, tau_i in zip(_each(cols), _each(piv), _each(taus)) if k else ():
        routine(*sizes, a_i, ld, piv_i, tau_i, *tail)
    return (_rows(cols, a.shape), piv.astype(jpvt.dtype).reshape(jpvt.shape),
            taus.reshape(a.shape[:-2] + (k,)))


def _ormqr(a: np.ndarray, taus: np.ndarray, c: np.ndarray, *, left: bool,
           transpose: bool) -> np.ndarray:
    """``Q c``, ``Q^H c``, ``c Q`` or ``c Q^H`` (``left``, ``transpose``) for the ``Q`` of the
    Householder reflectors below the diagonal of ``a[..., m, n]`` with factors
    ``taus[..., k]`` (LAPACK's ``ormqr``/``unmqr``), over equal leading batch axes, without
    forming ``Q``."""
    _, int_t, symbol = _ROUTINES
    is_complex = a.dtype.kind == "c"
    routine, ref = symbol("unmqr" if is_complex else "ormqr", a.dtype), ctypes.byref
    (rows, cols_), k = c.shape[-2:], taus.shape[-1]
    q = _columns(a)
    out = _columns(c)
    taus = np.ascontiguousarray(taus.reshape((q.shape[0], k)))
    work = np.empty(64 * max(rows, cols_, 1) + 65 * 64, a.dtype)  # blocked: n nb + T's nb^2
    head = (b"L" if left else b"R", (b"C" if is_complex else b"T") if transpose else b"N",
            *(ref(int_t(v)) for v in (rows, cols_, k)))
    lda, ldc = ref(int_t(max(a.shape[-2], 1))), ref(int_t(max(rows, 1)))
    tail = (_ptr(work), ref(int_t(work.size)), ref(int_t(0)))
    for a_i, tau_i, c_i in zip(_each(q), _each(taus), _each(out)) if k and rows and cols_ else ():
        routine(*head, a_i, lda, tau_i, c_i, ldc, *tail)
    return _rows(out, c.shape)


_FOUND = _ROUTINES is not None
gees: Callable[..., tuple] | None = _gees if _FOUND else None
gehrd: Callable[..., tuple] | None = _gehrd if _FOUND else None
geqp3: Callable[..., tuple] | None = _geqp3 if _FOUND else None
geqrf: Callable[..., tuple] | None = _geqrf if _FOUND else None
orgqr: Callable[..., np.ndarray] | None = _orgqr if _FOUND else None
ormqr: Callable[..., np.ndarray] | None = _ormqr if _FOUND else None
sytrd: Callable[..., tuple] | None = _sytrd if _FOUND else None
getrf: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = (
    _getrf if _ROUTINES is not None else None)
trsm: Callable[..., np.ndarray] | None = _trsm if _ROUTINES is not None else None
