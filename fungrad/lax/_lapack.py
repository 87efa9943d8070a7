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


def _load() -> tuple[dict[str, dict[np.dtype, Callable]], type] | None:
    """``{"getrf": {dtype: routine}, "trsm": {...}}`` and their integer type, or None."""
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
            return routines, int_t
    return None


_ROUTINES = _load()


def _getrf(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LU factors of ``a[..., m, n]`` by LAPACK, in ``a``'s precision.

    Returns ``(lu, pivots)``: ``lu`` packs the unit lower ``L`` (strict part) and ``U``
    (as ``jax.lax.linalg.lu``); ``pivots[..., i]`` (int32, from 0) is the row swapped
    with row ``i``. A singular matrix has a zero pivot, as in LAPACK and JAX.
    """
    routines, int_t = _ROUTINES
    routine = routines["getrf"][a.dtype]
    batch, (m, n) = a.shape[:-2], a.shape[-2:]
    k = min(m, n)
    # LAPACK reads columns: a row-major copy of each matrix's transpose is its
    # column-major layout, and the factors come back the same way (a copy always: getrf
    # overwrites it, and a transposed view of ``a`` may already be row-major).
    cols = np.array(np.swapaxes(a.reshape((-1, m, n)), -1, -2), order="C", copy=True)
    ipiv = np.empty((cols.shape[0], max(k, 1)), np.int64 if int_t is ctypes.c_int64 else np.int32)
    m_, n_, lda, info = int_t(m), int_t(n), int_t(max(m, 1)), int_t(0)
    ref = ctypes.byref
    for i in range(cols.shape[0]):
        routine(ref(m_), ref(n_), cols[i].ctypes.data, ref(lda), ipiv[i].ctypes.data, ref(info))
    lu = np.ascontiguousarray(np.swapaxes(cols, -1, -2)).reshape(a.shape)
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
    routines, int_t = _ROUTINES
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


getrf: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = (
    _getrf if _ROUTINES is not None else None)
trsm: Callable[..., np.ndarray] | None = _trsm if _ROUTINES is not None else None
