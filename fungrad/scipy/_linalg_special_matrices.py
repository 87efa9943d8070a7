"""The matrix constructors of ``jax.scipy.linalg`` (``toeplitz``, ``hankel``, ``circulant``,
``leslie``, ``companion``, ``fiedler``, ``fiedler_companion``, ``convolution_matrix``,
``hilbert``, ``invhilbert``, ``pascal``, ``invpascal``, ``helmert``, ``hadamard``, ``dft``).

Those built from vectors gather the vector's entries with a static index table (so they
differentiate and batch like any gather) and broadcast over leading axes as JAX does
(``jnp.vectorize``); those of a size ``n`` are arithmetic on ``arange``.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

import fungrad.numpy as jnp
from fungrad._core import dtypes
from fungrad.numpy._util import (aval, check_arraylike, check_user_dtype, ensure_arraylike,
                                 promote_args_inexact, promote_dtypes)
from fungrad.scipy.special import comb, gammaln

__all__ = ["circulant", "companion", "convolution_matrix", "dft", "fiedler",
           "fiedler_companion", "hadamard", "hankel", "helmert", "hilbert", "invhilbert",
           "invpascal", "leslie", "pascal", "toeplitz"]


def _at_least_vector(fname: str, x: Any) -> Any:
    return jnp.atleast_1d(ensure_arraylike(fname, x))


def _toeplitz_2d(c: Any, r: Any) -> Any:
    m, n = aval(c).shape[0], aval(r).shape[0]
    c, r = promote_dtypes(c, r)
    if m == 0 or n == 0:
        return jnp.empty((m, n), aval(c).dtype)
    # A[i, j] = c[i - j] below the diagonal, r[j - i] above: one vector read backwards.
    elems = jnp.concatenate([c[::-1], r[1:]])
    return elems[m - 1 - np.arange(m)[:, None] + np.arange(n)[None, :]]


def toeplitz(c: Any, r: Any = None) -> Any:
    """The Toeplitz matrix with first column ``c`` and first row ``r`` (``r[0]`` ignored;
    ``r`` defaults to ``conj(c)``): ``A[i, j] = c[i - j]`` for ``i >= j``, else
    ``r[j - i]``. Leading axes of ``c`` and ``r`` broadcast into a batch of matrices.

    >>> import fungrad.numpy as jnp
    >>> toeplitz(jnp.array([1, 2, 3]), jnp.array([1, -2, -3]))
    Array([[ 1, -2, -3],
           [ 2,  1, -2],
           [ 3,  2,  1]], dtype=int32)
    """
    if r is None:
        check_arraylike("toeplitz", c)
        r = jnp.conjugate(ensure_arraylike("toeplitz", c))
    else:
        check_arraylike("toeplitz", c, r)
    return jnp.vectorize(_toeplitz_2d, signature="(m),(n)->(m,n)")(
        _at_least_vector("toeplitz", c), _at_least_vector("toeplitz", r))


def _hankel_2d(c: Any, r: Any) -> Any:
    m, n = aval(c).shape[0], aval(r).shape[0]
    c, r = promote_dtypes(c, r)
    if m == 0 or n == 0:
        return jnp.empty((m, n), aval(c).dtype)
    return jnp.concatenate([c, r[1:]])[np.arange(m)[:, None] + np.arange(n)[None, :]]


def hankel(c: Any, r: Any = None) -> Any:
    """The Hankel matrix ``H[i, j] = v[i + j]`` with ``v = concatenate([c, r[1:]])``:
    first column ``c``, last row ``r`` (default zeros; ``r[0]`` ignored). Leading axes
    broadcast.

    >>> import fungrad.numpy as jnp
    >>> hankel(jnp.array([1, 2, 3]))
    Array([[1, 2, 3],
           [2, 3, 0],
           [3, 0, 0]], dtype=int32)
    """
    if r is None:
        check_arraylike("hankel", c)
        c = ensure_arraylike("hankel", c)
        r = jnp.zeros_like(c)
    else:
        check_arraylike("hankel", c, r)
        c, r = ensure_arraylike("hankel", c, r)
    for name, v in (("c", c), ("r", r)):
        if aval(v).ndim == 0:
            raise ValueError(f"hankel: {name} must be at least 1-dimensional, got a scalar.")
    return jnp.vectorize(_hankel_2d, signature="(m),(n)->(m,n)")(c, r)


def _circulant_2d(c: Any) -> Any:
    n = aval(c).shape[0]
    return c[(np.arange(n)[:, None] - np.arange(n)[None, :]) % max(n, 1)]


def circulant(c: Any) -> Any:
    """The circulant matrix with first column ``c``: ``A[i, j] = c[(i - j) mod n]``.
    Leading axes of ``c`` give a batch.

    >>> import fungrad.numpy as jnp
    >>> circulant(jnp.array([1, 2, 3]))
    Array([[1, 3, 2],
           [2, 1, 3],
           [3, 2, 1]], dtype=int32)
    """
    check_arraylike("circulant", c)
    return jnp.vectorize(_circulant_2d, signature="(n)->(n,n)")(_at_least_vector("circulant", c))


def _leslie_2d(f: Any, s: Any) -> Any:
    f, s = promote_dtypes(f, s)
    return jnp.concatenate([f[None, :], jnp.diag(s, k=-1)[1:]], axis=0)


def leslie(f: Any, s: Any) -> Any:
    """The Leslie matrix: fecundities ``f`` (``[..., n]``, ``n >= 2``) in the first row,
    survival rates ``s`` (``[..., n - 1]``) on the first sub-diagonal, zeros elsewhere.

    >>> import fungrad.numpy as jnp
    >>> leslie(jnp.array([0.5, 2.0]), jnp.array([0.25]))
    Array([[0.5 , 2.  ],
           [0.25, 0.  ]], dtype=float32)
    """
    check_arraylike("leslie", f, s)
    f, s = _at_least_vector("leslie", f), _at_least_vector("leslie", s)
    fs, ss = aval(f).shape, aval(s).shape
    if fs[-1] < 2:
        raise ValueError("leslie: the length of f along the last axis must be at least 2; "
                         f"got shape {fs}.")
    if ss[-1] != fs[-1] - 1:
        raise ValueError("leslie: the length of s along the last axis must be one less than "
                         f"the length of f; got f shape {fs} and s shape {ss}.")
    return jnp.vectorize(_leslie_2d, signature="(n),(m)->(n,n)")(f, s)


def _companion_2d(a: Any) -> Any:
    m = aval(a).shape[0] - 1
    first_row = -a[1:] / a[0]
    return jnp.concatenate([first_row[None, :], jnp.eye(m, m, k=-1, dtype=aval(a).dtype)[1:]])


def companion(a: Any) -> Any:
    """The companion matrix of the polynomial with coefficients ``a`` (``[..., n]``,
    ``n >= 2``, highest degree first): first row ``-a[1:] / a[0]``, ones on the first
    sub-diagonal. A zero ``a[0]`` gives infs or NaNs (no check, as in JAX).

    >>> import fungrad.numpy as jnp
    >>> companion(jnp.array([1., -10., 31., -30.]))
    Array([[ 10., -31.,  30.],
           [  1.,   0.,   0.],
           [  0.,   1.,   0.]], dtype=float32)
    """
    a, = promote_args_inexact("companion", a)
    a = jnp.atleast_1d(a)
    if aval(a).shape[-1] < 2:
        raise ValueError("companion: the length of a along the last axis must be at least 2; "
                         f"got shape {aval(a).shape}.")
    return jnp.vectorize(_companion_2d, signature="(n)->(m,m)")(a)


def fiedler(a: Any) -> Any:
    """The symmetric Fiedler matrix ``F[i, j] = |a[i] - a[j]|`` (batched over leading axes).

    >>> import fungrad.numpy as jnp
    >>> fiedler(jnp.array([1, 4, 12]))
    Array([[ 0,  3, 11],
           [ 3,  0,  8],
           [11,  8,  0]], dtype=int32)
    """
    check_arraylike("fiedler", a)
    a = _at_least_vector("fiedler", a)
    return jnp.abs(a[..., None] - a[..., None, :])


def _fiedler_companion_2d(a: Any) -> Any:
    n = aval(a).shape[0] - 1
    if n == 0:
        return jnp.empty((0, 0), aval(a).dtype)
    a = a / a[0]
    if n == 1:
        return -a[1:].reshape(1, 1)
    # The pentadiagonal pattern: -a[1] and 1 in the first column; in even rows i,
    # -a[i + 2] and 1 right of the diagonal and -a[i + 1] left of it; in odd rows i >= 3
    # a 1 two places left of the diagonal.
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    even, odd = i % 2 == 0, i % 2 == 1
    zero = jnp.zeros((), aval(a).dtype)
    one = jnp.ones((), aval(a).dtype)
    conditions = [(i == 0) & (j == 0), (i == 1) & (j == 0), (j == i + 1) & even,
                  (j == i + 2) & even, (j == i - 1) & even & (i >= 2),
                  (j == i - 2) & odd & (i >= 3)]
    choices = [-a[1], one, -a[np.minimum(i + 2, n)], one, -a[np.minimum(i + 1, n)], one]
    return jnp.select(conditions, choices, default=zero)


def fiedler_companion(a: Any) -> Any:
    """The Fiedler companion matrix of the polynomial with coefficients ``a`` (highest
    degree first): pentadiagonal, with the polynomial's roots as eigenvalues;
    ``[..., n - 1, n - 1]`` (empty for ``n == 1``).

    >>> import fungrad.numpy as jnp
    >>> fiedler_companion(jnp.array([1., -16., 86., -176., 105.]))
    Array([[  16.,  -86.,    1.,    0.],
           [   1.,    0.,    0.,    0.],
           [   0.,  176.,    0., -105.],
           [   0.,    1.,    0.,    0.]], dtype=float32)
    """
    a, = promote_args_inexact("fiedler_companion", a)
    a = jnp.atleast_1d(a)
    if aval(a).shape[-1] == 0:
        raise ValueError("fiedler_companion requires the last axis of 'a' to have nonzero "
                         f"length, but got an array of shape {aval(a).shape}.")
    return jnp.vectorize(_fiedler_companion_2d, signature="(n)->(m,m)")(a)


def convolution_matrix(a: Any, n: int, mode: str = "full") -> Any:
    """The Toeplitz matrix ``A`` (``[..., k, n]``) with ``A @ v == jnp.convolve(a, v,
    mode)`` for ``v`` of length ``n``: ``k`` is ``m + n - 1`` ('full'), ``max(m, n)``
    ('same') or ``max(m, n) - min(m, n) + 1`` ('valid'), ``m`` the length of ``a``.

    >>> import fungrad.numpy as jnp
    >>> convolution_matrix(jnp.array([1, 2]), 3)
    Array([[1, 0, 0],
           [2, 1, 0],
           [0, 2, 1],
           [0, 0, 2]], dtype=int32)
    """
    n = operator.index(n)
    if n <= 0:
        raise ValueError(f"convolution_matrix: n must be a positive integer; got {n}.")
    check_arraylike("convolution_matrix", a)
    a = ensure_arraylike("convolution_matrix", a)
    if aval(a).ndim == 0:
        raise ValueError("convolution_matrix: a must be at least 1-dimensional, got a scalar.")
    m = aval(a).shape[-1]
    if m < 1:
        raise ValueError(f"convolution_matrix: len(a) must be at least 1; got shape "
                         f"{aval(a).shape}.")
    if mode not in ("full", "valid", "same"):
        raise ValueError("convolution_matrix: mode must be one of 'full', 'valid', 'same'; "
                         f"got {mode!r}.")
    widths = [(0, 0)] * (aval(a).ndim - 1) + [(0, n - 1)]
    zero_padded, reversed_padded = jnp.pad(a, widths), jnp.pad(jnp.flip(a, axis=-1), widths)
    length = m + n - 1
    if mode == "same":
        trim = min(n, m) - 1
        begin, end = trim // 2, trim - trim // 2
    elif mode == "valid":
        begin = end = min(n, m) - 1
    else:
        begin = end = 0
    return toeplitz(zero_padded[..., begin:length - end],
                    reversed_padded[..., length - n - begin:length - begin])


def hilbert(n: int) -> Any:
    """The Hilbert matrix ``H[i, j] = 1 / (i + j + 1)`` of order ``n`` (default float).

    >>> hilbert(2)
    Array([[1.        , 0.5       ],
           [0.5       , 0.33333334]], dtype=float32)
    """
    a = jnp.arange(n, dtype=dtypes.default_float_dtype())[:, None]
    return 1 / (a + a.T + 1)


def invhilbert(n: int) -> Any:
    """The inverse of ``hilbert(n)`` from its closed form in binomial coefficients,
    ``(-1)^(i+j) (i+j+1) C(n+i, n-j-1) C(n+j, n-i-1) C(i+j, i)^2`` (floating point only:
    no ``exact=True``; large ``n`` overflows).

    >>> invhilbert(2)
    Array([[ 4., -6.],
           [-6., 12.]], dtype=float32)
    """
    a = jnp.arange(n, dtype=dtypes.default_float_dtype())
    i, j = a[:, None], a[None, :]
    s = i + j
    return ((-1.0) ** s * (s + 1.0) * comb(n + i, n - j - 1) * comb(n + j, n - i - 1)
            * comb(s, i) ** 2)


def _binom(n: Any, k: Any) -> Any:
    """Binomial coefficients ``exp(lgamma(n + 1) - lgamma(n - k + 1) - lgamma(k + 1))``."""
    return jnp.exp(gammaln(n + 1.0) - gammaln(n - k + 1.0) - gammaln(k + 1.0))


_PASCAL_KINDS = ("symmetric", "lower", "upper")


def _check_kind(fname: str, kind: str | None) -> str:
    kind = "symmetric" if kind is None else kind
    if kind not in _PASCAL_KINDS:
        raise ValueError(f"{fname}: expected kind to be one of {list(_PASCAL_KINDS)}; got "
                         f"{kind!r}")
    return kind


def pascal(n: int, kind: str | None = None) -> Any:
    """The Pascal matrix of order ``n``: binomial coefficients (through ``lgamma``, so
    approximate, in float32 as in JAX); ``kind`` 'lower', 'upper' or 'symmetric'
    (the default, ``L @ L.T``).

    >>> pascal(3, kind="lower")
    Array([[1., 0., 0.],
           [1., 1., 0.],
           [1., 2., 1.]], dtype=float32)
    """
    kind = _check_kind("pascal", kind)
    a = jnp.arange(n, dtype=np.float32)
    lower = _binom(a[:, None], a[None, :])
    if kind == "lower":
        return lower
    return lower.T if kind == "upper" else jnp.dot(lower, lower.T)


def invpascal(n: int, kind: str | None = None) -> Any:
    """The inverse of ``pascal(n, kind)``: ``L^-1[i, j] = (-1)^(i-j) C(i, j)``,
    ``U^-1 = (L^-1)^T`` and, for 'symmetric', ``U^-1 L^-1`` (floating point only).

    >>> invpascal(3, kind="lower")
    Array([[ 1., -0.,  0.],
           [-1.,  1., -0.],
           [ 1., -2.,  1.]], dtype=float32)
    """
    kind = _check_kind("invpascal", kind)
    a = jnp.arange(n, dtype=dtypes.default_float_dtype())
    i, j = a[:, None], a[None, :]
    lower = (-1.0) ** (i - j) * _binom(i, j)
    if kind == "lower":
        return lower
    return lower.T if kind == "upper" else jnp.dot(lower.T, lower)


def helmert(n: int, full: bool = False) -> Any:
    """The Helmert matrix: row ``k - 1`` is ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k (k+1))``
    (``k`` ones) for ``k = 1 .. n - 1``, orthonormal contrasts; ``full`` prepends the row
    ``1 / sqrt(n)``.

    >>> helmert(2, full=True)
    Array([[ 0.70710677,  0.70710677],
           [ 0.70710677, -0.70710677]], dtype=float32)
    """
    if n < 1:
        raise ValueError(f"helmert: n must be a positive integer; got {n}.")
    i, j = np.arange(n - 1)[:, None], np.arange(n)[None, :]
    k = jnp.asarray(i + 1).astype(dtypes.default_float_dtype())
    denom = jnp.sqrt(k * (k + 1))
    h = jnp.where(j <= i, 1.0 / denom, jnp.where(j == i + 1, -k / denom, jnp.zeros_like(denom)))
    if full:
        h = jnp.concatenate([jnp.full((1, n), 1.0 / jnp.sqrt(n), dtype=aval(h).dtype), h])
    return h


def hadamard(n: int, dtype: Any = int) -> Any:
    """The ``n x n`` Hadamard matrix (``n`` a power of 2) by Sylvester's construction,
    ``H_2m = [[H_m, H_m], [H_m, -H_m]]``.

    >>> hadamard(2)
    Array([[ 1,  1],
           [ 1, -1]], dtype=int32)
    """
    if n < 1 or n & (n - 1):
        raise ValueError(f"hadamard: n must be a positive power of 2; got {n}.")
    h = jnp.ones((1, 1), dtype=dtype)
    while aval(h).shape[0] < n:
        h = jnp.concatenate([jnp.concatenate([h, h], axis=1), jnp.concatenate([h, -h], axis=1)])
    return h


def dft(n: int, scale: str | None = None, *, dtype: Any = None) -> Any:
    """The ``n x n`` discrete Fourier transform matrix ``W[i, j] = exp(-2 pi i j / n)``,
    unscaled, or scaled by ``1 / sqrt(n)`` (``scale='sqrtn'``, unitary) or ``1 / n``
    (``'n'``); ``dtype`` a complex dtype (default complex).

    >>> dft(2).dtype, dft(2).real
    (dtype('complex64'), Array([[ 1.,  1.],
           [ 1., -1.]], dtype=float32))
    """
    if scale is not None and scale not in ("sqrtn", "n"):
        raise ValueError(f"dft: scale must be None, 'sqrtn', or 'n'; got {scale!r}.")
    if dtype is None:
        dtype = dtypes.default_complex_dtype()
    else:
        dtype = check_user_dtype(dtype, "dft")
        if dtype.kind != "c":
            raise ValueError(f"dft: dtype must be a complex floating-point type; got {dtype}.")
    a = jnp.arange(n, dtype=dtype)
    omegas = jnp.exp(-2j * np.pi * a[:, None] * a[None, :] / n)
    if scale == "sqrtn":
        return omegas / jnp.sqrt(n)
    return omegas / n if scale == "n" else omegas
