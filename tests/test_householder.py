"""LAPACK's Householder reductions written in array operations (``fungrad/lax/_householder.py``),
which serve a GPU and a NumPy without LAPACK symbols: against LAPACK itself (the CPU's
routines from the OpenBLAS every NumPy wheel ships, ``fungrad/lax/_lapack.py``) on the same
inputs, edge cases of the reflector included, and through the public functions with the
LAPACK routines taken away, against jax. Their runs on a (stand-in) GPU are in
``test_gpu.py``.
"""
import functools

import harness
import jax
import numpy as np
import pytest
from jax._src.lax import linalg as jax_linalg  # geqrf and geqp3 are not re-exported

import fungrad
import fungrad.numpy as jnp
from fungrad import lax
from fungrad.lax import _householder as householder, _lapack, linalg as fungrad_linalg

RNG = np.random.default_rng(21)
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SHAPES = [(5, 3), (3, 5), (4, 4), (2, 6, 4), (40, 40), (1, 1), (0, 3), (3, 0)]


def normal(*shape, dtype=np.float32):
    x = RNG.normal(size=shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * RNG.normal(size=shape)
    return x.astype(dtype)


def hermitian(n, dtype, batch=()):
    """A Hermitian matrix (real diagonal, as a Hermitian matrix has): LAPACK's blocked
    ``hetrd`` leaves an imaginary part of the input's last diagonal element in its
    packed output where the unblocked one (and fungrad) drop it."""
    a = normal(*batch, n, n, dtype=dtype)
    return ((a + np.conj(np.swapaxes(a, -1, -2))) / 2).astype(dtype)


def assert_close(got, want, n):
    """Agreement to rounding: within ``20 n eps`` of the largest entry (LAPACK blocks its
    updates where the array code goes one reflector at a time)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.size:
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=0,
                                   atol=20 * max(n, 1) * np.finfo(want.dtype).eps * scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_qr_factorisations_match_lapack(dtype, shape):
    """``geqrf``, ``geqp3`` (free columns, and one moved to the front), ``orgqr`` and the
    four products of ``ormqr``: LAPACK's packed values and pivots, tall, wide, square,
    batched, large enough for LAPACK's blocked code, and empty."""
    a, (m, n) = normal(*shape, dtype=dtype), shape[-2:]
    size = max(m, n)
    packed, taus = householder.geqrf(np, a)
    want_packed, want_taus = _lapack.geqrf(a)
    assert_close(packed, want_packed, size)
    assert_close(taus, want_taus, size)
    free = np.zeros(shape[:-2] + (n,), np.int32)
    fixed = free.copy()
    fixed[..., n // 2:n // 2 + 1] = 7
    for jpvt in (free, fixed):
        got, want = householder.geqp3(np, a, jpvt), _lapack.geqp3(a, jpvt)
        np.testing.assert_array_equal(got[1], want[1])
        assert got[1].dtype == want[1].dtype
        assert_close(got[0], want[0], size)
        assert_close(got[2], want[2], size)
    if m >= n:
        assert_close(householder.orgqr(np, want_packed, want_taus),
                     _lapack.orgqr(want_packed, want_taus), size)
    for left in (True, False):
        c = normal(*shape[:-2], *((m, 3) if left else (2, m)), dtype=dtype)
        for transpose in (False, True):
            kw = dict(left=left, transpose=transpose)
            assert_close(householder.ormqr(np, want_packed, want_taus, c, **kw),
                         _lapack.ormqr(want_packed, want_taus, c, **kw), size)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_hessenberg_and_tridiagonal_match_lapack(dtype, n):
    """``gehrd`` of a general matrix and ``sytrd``/``hetrd`` from either triangle of a
    Hermitian one, batched: the packed matrices, taus, diagonals and off-diagonals; the
    triangle ``sytrd`` does not read comes back as it went in, as from LAPACK."""
    a = normal(2, n, n, dtype=dtype)
    for got, want in zip(householder.gehrd(np, a), _lapack.gehrd(a)):
        assert_close(got, want, n)
    h = hermitian(n, dtype, batch=(2,))
    for lower in (True, False):
        got, want = householder.sytrd(np, h, lower), _lapack.sytrd(h, lower)
        for g, w in zip(got, want):
            assert_close(g, w, n)
        untouched = np.triu(np.ones((n, n), bool), 1)
        untouched = untouched if lower else untouched.T
        np.testing.assert_array_equal(got[0][..., untouched], h[..., untouched])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_reflector_edge_cases_match_lapack(dtype):
    """Columns LAPACK's ``larfg`` treats specially: already reduced (a zero below the
    diagonal: no reflection for a real diagonal, one for a complex diagonal), a negative
    zero on the diagonal, entries whose squares underflow or overflow, and a zero matrix.
    Signs are compared on R's diagonal, where ``larfg`` picks them (a reflection that is
    the identity leaves the zeros it is applied to as LAPACK, which skips it, may not)."""
    big, tiny = np.finfo(dtype).max / 8, np.finfo(dtype).tiny * 8
    columns = [[2.0, 0.0, 0.0], [-0.0, 0.0, 0.0], [-0.0, 3.0, 4.0], [tiny, tiny, tiny],
               [big, big, 0.0], [0.0, 0.0, 0.0]]
    if np.dtype(dtype).kind == "c":
        columns += [[2.0 + 1.0j, 0.0, 0.0], [1.0j, 1.0, 0.0]]
    for column in columns:
        a = np.array([column, [1.0, -1.0, 2.0]], dtype).T
        got, want = householder.geqrf(np, a), _lapack.geqrf(a)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=4 * np.finfo(dtype).eps,
                                       atol=4 * np.finfo(dtype).eps * np.abs(w).max())
        np.testing.assert_array_equal(np.signbit(np.diagonal(got[0]).real),
                                      np.signbit(np.diagonal(want[0]).real))


def _without_lapack(monkeypatch):
    """``fungrad.lax.linalg`` as on a NumPy without LAPACK symbols."""
    for name in ("_lapack_geqrf", "_lapack_geqp3", "orgqr", "_lapack_ormqr", "gehrd", "sytrd",
                 "gees"):
        monkeypatch.setattr(fungrad_linalg, name, None)
    fungrad.clear_caches()


def test_without_lapack_the_public_functions_match_jax(monkeypatch):
    """With the LAPACK routines taken away the public functions run the array code and
    still give jax's values (eager and jitted); ``schur``, which has no array version,
    says what it needs."""
    _without_lapack(monkeypatch)
    a, square = normal(5, 3), normal(2, 4, 4)
    h = hermitian(4, np.float32)
    fixed = np.array([0, 0, 1], np.int32)
    cases = [
        (lambda a: lax.linalg.qr(a, pivoting=True), lambda a: jax.lax.linalg.qr(a, pivoting=True),
         (a,)),
        (lambda a: lax.linalg.qr(a.T, pivoting=True, full_matrices=False),
         lambda a: jax.lax.linalg.qr(a.T, pivoting=True, full_matrices=False), (a,)),
        (lax.linalg.geqrf, jax_linalg.geqrf, (a,)),
        (lax.linalg.geqp3, jax_linalg.geqp3, (a, fixed)),
        (lambda a: lax.linalg.householder_product(*lax.linalg.geqrf(a)),
         lambda a: jax.lax.linalg.householder_product(*jax_linalg.geqrf(a)), (a,)),
        (lambda a, c: lax.linalg.ormqr(*lax.linalg.geqrf(a), c, left=False, transpose=True),
         lambda a, c: jax.lax.linalg.ormqr(*jax_linalg.geqrf(a), c, left=False,
                                           transpose=True), (a, normal(2, 5))),
        (lax.linalg.hessenberg, jax.lax.linalg.hessenberg, (square,)),
        (functools.partial(lax.linalg.tridiagonal, lower=False),
         functools.partial(jax.lax.linalg.tridiagonal, lower=False), (h,)),
    ]
    for f, ref, args in cases:
        harness.compare(f, ref, *args, table=harness.GRAD_TOL)
    with pytest.raises(NotImplementedError, match="schur: needs LAPACK"):
        lax.linalg.schur(jnp.asarray(square))
