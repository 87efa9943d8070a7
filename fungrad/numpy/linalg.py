"""``fungrad.numpy.linalg``: norms and the array-API linear-algebra helpers that need no
matrix decomposition (``norm`` with ``ord`` in None/0/1/-1/2/-2/inf/-inf/p/'fro' for
vectors and None/1/-1/inf/-inf/'fro' for matrices)."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad.numpy._linalg import matmul, outer, tensordot, vecdot
from fungrad.numpy._reductions import max as _max, min as _min, sum as _sum
from fungrad.numpy._shape import diagonal as _diagonal, matrix_transpose, trace as _trace
from fungrad.numpy._ufuncs import absolute, power
from fungrad.numpy._util import (aval, canonicalize_axes, ensure_arraylike,
                                 promote_dtypes_inexact, scalar_like)


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
        raise NotImplementedError(f"norm: matrix ord={ord!r} needs singular values, which "
                                  "fungrad does not compute")
    else:
        raise ValueError(f"norm: invalid ord {ord!r} for matrices")
    return out if keepdims else lax.squeeze(out, axes)


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """Diagonals of the last two axes."""
    return _diagonal(x, offset, -2, -1)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """Traces of the last two axes."""
    return _trace(x, offset, -2, -1, dtype)


__all__ = ["norm", "vector_norm", "matrix_norm", "matmul", "matrix_transpose", "outer",
           "tensordot", "vecdot", "diagonal", "trace"]
