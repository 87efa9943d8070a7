"""Polynomials as in ``jax.numpy``: construction, arithmetic, calculus, roots and fits."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.lax._prim import as_operand
from fungrad.numpy._joining import concatenate
from fungrad.numpy._linalg import dot, outer
from fungrad.numpy._misc import convolve, vander
from fungrad.numpy._reductions import sum as _sum
from fungrad.numpy._shape import roll
from fungrad.numpy._ufuncs import multiply, true_divide
from fungrad.numpy._ufuncs_math import sqrt
from fungrad.numpy._util import (aval, ensure_arraylike, promote_dtypes, promote_dtypes_inexact,
                                 scalar_like, static_int, to_complex_dtype)
from fungrad.numpy.linalg import eigvals, inv, lstsq

# Coefficient arrays run from the highest power to the constant term, as in NumPy and JAX.


def _check_1d(fname: str, name: str, a: Any) -> None:
    shape = aval(a).shape
    if len(shape) != 1:
        raise ValueError(f"{fname}: {name} must be a 1-d array of coefficients, got an array "
                         f"of shape {shape}")


def _concrete_values(fname: str, a: Any, why: str) -> np.ndarray:
    """The values of ``a`` on the host; a ``ConcretizationTypeError`` naming ``fname`` when
    tracing (``jit``, ``vmap``) hides them."""
    if isinstance(a, Tracer):
        a = a._concrete(f"{fname}: {why}")
    return np.asarray(a)


def _head(a: Any, stop: int) -> Any:
    return lax.slice(a, (0,), (stop,))


def _tail(a: Any, start: int) -> Any:
    return lax.slice(a, (start,), (aval(a).shape[0],))


def _elem(a: Any, i: int) -> Any:
    return lax.index_in_dim(a, i, 0, keepdims=False)


def _constant(values: np.ndarray, like: Any) -> Any:
    """Host ``values`` as a (non-weak) array of ``like``'s dtype."""
    return as_operand(np.asarray(values).astype(aval(like).dtype))


# --------------------------------------------------------------------------- construction

def poly(seq_of_zeros: Any) -> Any:
    """The coefficients of the monic polynomial whose roots are ``seq_of_zeros``.

    A scalar counts as one root; a non-empty square matrix stands for its eigenvalues (the
    result is then complex, as in JAX). The result is always inexact.
    """
    a, = promote_dtypes_inexact(ensure_arraylike("poly", seq_of_zeros))
    shape = aval(a).shape
    if len(shape) == 0:
        a = lax.reshape(a, (1,))
    elif len(shape) == 2 and shape[0] == shape[1] and shape[0] != 0:
        a = eigvals(a)
    if aval(a).ndim != 1:
        raise ValueError(f"poly: seq_of_zeros must be 1-d or a non-empty square 2-d array, "
                         f"got shape {shape}")
    dt = aval(a).dtype
    coeffs = lax.full((1,), 1, dt)
    for k in range(aval(a).shape[0]):  # multiply by (x - r_k): shift and subtract
        r = _elem(a, k)
        coeffs = lax.sub(lax.pad(coeffs, scalar_like(0, coeffs), ((0, 1, 0),)),
                         lax.mul(r, lax.pad(coeffs, scalar_like(0, coeffs), ((1, 0, 0),))))
    return coeffs if aval(a).shape[0] else lax.full((), 1, dt)


# --------------------------------------------------------------------------- arithmetic

def _polyadd(fname: str, a1: Any, a2: Any) -> Any:
    """``a1 + a2`` aligned at their last (constant) coefficients along axis 0; the shorter
    one broadcasts against the trailing axes of the longer one, as in JAX."""
    for name, a in (("a1", a1), ("a2", a2)):
        if aval(a).ndim == 0:
            raise ValueError(f"{fname}: {name} must be an array of coefficients with at least "
                             "one dimension, got a scalar")
    if aval(a1).dtype == np.bool_:
        raise TypeError(f"{fname} does not accept boolean coefficients")
    long, short = (a1, a2) if aval(a2).shape[0] <= aval(a1).shape[0] else (a2, a1)
    ls, ss = aval(long).shape, aval(short).shape
    lead = ls[0] - ss[0] if ss[0] else 0  # jax adds an empty array to the whole of `long`
    region = (ls[0] - lead,) + ls[1:]
    try:
        ok = len(ss) <= len(ls) and np.broadcast_shapes(ss, region) == region
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fname}: coefficients of shapes {aval(a1).shape} and "
                         f"{aval(a2).shape} cannot be added: the shorter must broadcast "
                         f"to {region}")
    short = lax.broadcast_in_dim(short, region, tuple(range(len(ls) - len(ss), len(ls))))
    pad = ((lead, 0, 0),) + ((0, 0, 0),) * (len(ls) - 1)
    return lax.add(long, lax.pad(short, scalar_like(0, short), pad))


def polyadd(a1: Any, a2: Any) -> Any:
    """The sum of two polynomials (coefficient arrays aligned at the constant term)."""
    a1, a2 = promote_dtypes(*ensure_arraylike("polyadd", a1, a2))
    return _polyadd("polyadd", a1, a2)


def polysub(a1: Any, a2: Any) -> Any:
    """The difference ``a1 - a2`` of two polynomials."""
    a1, a2 = promote_dtypes(*ensure_arraylike("polysub", a1, a2))
    if aval(a2).dtype == np.bool_:
        raise TypeError("polysub does not accept boolean coefficients")
    return _polyadd("polysub", a1, lax.neg(a2))


def _trim_leading(fname: str, a: Any, tol: float | None) -> Any:
    """``a`` without its leading zeros (``|a| < tol`` when ``tol`` is given); needs concrete
    values, so it cannot be traced."""
    values = _concrete_values(fname, a, "trim_leading_zeros=True needs concrete coefficients "
                                        "(pass trim_leading_zeros=False under jit or vmap)")
    keep = values != 0 if tol is None else ~(np.abs(values) < tol)
    if not keep.any():
        return lax.full((0,), 0, aval(a).dtype)
    return _tail(a, int(np.argmax(keep)))


def polymul(a1: Any, a2: Any, *, trim_leading_zeros: bool = False) -> Any:
    """The product of two 1-d polynomials (their full convolution), always inexact.

    ``trim_leading_zeros=True`` drops the inputs' leading zeros first, as NumPy's result
    does; it needs concrete inputs (not under ``jit``).
    """
    a1, a2 = promote_dtypes_inexact(*ensure_arraylike("polymul", a1, a2))
    _check_1d("polymul", "a1", a1)
    _check_1d("polymul", "a2", a2)
    if trim_leading_zeros and (aval(a1).shape[0] > 1 or aval(a2).shape[0] > 1):
        a1, a2 = _trim_leading("polymul", a1, None), _trim_leading("polymul", a2, None)
    if aval(a1).shape[0] == 0:
        a1 = lax.full((1,), 0, aval(a1).dtype)
    if aval(a2).shape[0] == 0:
        a2 = lax.full((1,), 0, aval(a2).dtype)
    return convolve(a1, a2, mode="full")


def polydiv(u: Any, v: Any, *, trim_leading_zeros: bool = False) -> tuple[Any, Any]:
    """Quotient and remainder of the polynomial division ``u / v`` (synthetic division).

    As in JAX, the remainder keeps ``u``'s length (leading zeros included) unless
    ``trim_leading_zeros=True``, which drops leading entries below ``sqrt(eps)`` (NumPy's
    shape; needs concrete inputs, so not under ``jit``).
    """
    u, v = promote_dtypes_inexact(*ensure_arraylike("polydiv", u, v))
    _check_1d("polydiv", "u", u)
    _check_1d("polydiv", "v", v)
    if aval(v).shape[0] == 0:
        raise ValueError("polydiv: the divisor v must have at least one coefficient")
    m, n = aval(u).shape[0] - 1, aval(v).shape[0] - 1
    scale = lax.div(scalar_like(1, v), _elem(v, 0))
    quotient = []
    for k in range(m - n + 1):  # cancel u's leading term, one power at a time
        d = lax.mul(scale, _elem(u, k))
        quotient.append(lax.reshape(d, (1,)))
        u = lax.add(u, lax.pad(lax.neg(lax.mul(d, v)), scalar_like(0, u),
                               ((k, m - n - k, 0),)))
    q = lax.concatenate(quotient, 0) if quotient else lax.full((1,), 0, aval(u).dtype)
    if trim_leading_zeros:
        tol = np.sqrt(dtypes.finfo(aval(u).dtype).eps)  # NumPy's cutoff, roughly
        u = _trim_leading("polydiv", u, tol)
    return q, u


# --------------------------------------------------------------------------- calculus

def _falling_factorials(top: np.ndarray, m: int) -> np.ndarray:
    """``prod_{j<m} max(1, top - j)`` elementwise, exactly (Python integers)."""
    out = []
    for t in top.tolist():
        c = 1
        for j in range(m):
            c *= max(1, t - j)
        out.append(c)
    return np.asarray(out, dtype=np.float64)


def polyder(p: Any, m: int = 1) -> Any:
    """The coefficients of the ``m``-th derivative of the 1-d polynomial ``p`` (inexact).

    ``m`` must be static; ``m=0`` returns ``p`` unchanged.
    """
    p = ensure_arraylike("polyder", p)
    m = static_int(m, "polyder: m")
    p, = promote_dtypes_inexact(p)
    if m < 0:
        raise ValueError(f"polyder: the order of the derivative m must be non-negative, got {m}")
    if m == 0:
        return p
    _check_1d("polyder", "p", p)
    n = aval(p).shape[0]
    keep = max(n - m, 0)
    coeff = _falling_factorials(np.arange(n - 1, n - 1 - keep, -1), m)
    return lax.mul(_head(p, keep), _constant(coeff, p))


def polyint(p: Any, m: int = 1, k: Any = None) -> Any:
    """The coefficients of the ``m``-th antiderivative of the 1-d polynomial ``p`` (inexact).

    ``k`` holds the integration constants: a scalar (used ``m`` times) or ``m`` values,
    ``k[0]`` for the first integration; default 0. ``m`` must be static.
    """
    m = static_int(m, "polyint: m")
    p, k = promote_dtypes_inexact(*ensure_arraylike("polyint", p, 0 if k is None else k))
    if m < 0:
        raise ValueError(f"polyint: the order of the integral m must be non-negative (see "
                         f"polyder), got {m}")
    if aval(k).ndim == 0:
        k = lax.reshape(k, (1,))
    if aval(k).shape == (1,):
        k = lax.broadcast_in_dim(lax.reshape(k, ()), (m,), ())
    if aval(k).shape != (m,):
        raise ValueError(f"polyint: k must be a scalar or a 1-d array of length 1 or m={m}, "
                         f"got shape {aval(k).shape}")
    if m == 0:
        return p
    _check_1d("polyint", "p", p)
    total = aval(p).shape[0] + m
    coeff = _falling_factorials(np.arange(total - 1, -1, -1), m)
    return lax.div(concatenate([p, k]), _constant(coeff, p))


# --------------------------------------------------------------------------- roots

def _companion_eigvals(p: Any) -> Any:
    """The roots of ``p`` (``p[0] != 0``): eigenvalues of its companion matrix."""
    n = aval(p).shape[0]
    first = lax.neg(lax.div(_tail(p, 1), _elem(p, 0)))
    below = lax.convert_element_type(
        lax.eq(lax.broadcasted_iota(np.int32, (n - 2, n - 1), 0),
               lax.broadcasted_iota(np.int32, (n - 2, n - 1), 1)), aval(p).dtype)
    return eigvals(lax.concatenate([lax.reshape(first, (1, n - 1)), below], 0))


def roots(p: Any, *, strip_zeros: bool = True) -> Any:
    """The (complex) roots of the polynomial with coefficients ``p``.

    ``strip_zeros=True`` drops leading zeros as NumPy does, which needs concrete ``p`` (not
    under ``jit``/``vmap``); with ``strip_zeros=False`` the shape is static and each leading
    zero gives a NaN root at the end instead.
    """
    p, = promote_dtypes_inexact(ensure_arraylike("roots", p))
    if aval(p).ndim == 0:
        p = lax.reshape(p, (1,))
    if aval(p).ndim != 1:
        raise ValueError(f"roots: p must be a rank-1 array of coefficients, got shape "
                         f"{aval(p).shape}")
    n = aval(p).shape[0]
    ct = to_complex_dtype(aval(p).dtype)
    if n < 2:
        return lax.full((0,), 0, ct)
    if strip_zeros:
        values = _concrete_values("roots", p, "strip_zeros=True needs concrete coefficients; "
                                              "pass strip_zeros=False under jit or vmap (each "
                                              "leading zero then gives a NaN root)")
        nonzero = np.flatnonzero(values != 0)
        p = _tail(p, int(nonzero[0]) if nonzero.size else n)
        return lax.full((0,), 0, ct) if aval(p).shape[0] < 2 else _companion_eigvals(p)
    is_zero = lax.eq(p, scalar_like(0, p))
    idx = lax.iota(np.int32, n)
    lead = lax.reduce_min(lax.select(is_zero, lax.full((n,), n, np.int32), idx), (0,))
    p = lax.select(lax.broadcast_in_dim(lax.eq(lead, lax.full((), n, np.int32)), (n,), ()),
                   lax.full((n,), 1, aval(p).dtype), p)  # all zeros: any p[0] != 0 will do
    # the leading zeros rolled to the end multiply p by x**lead: lead extra zero roots
    r = _companion_eigvals(roll(p, lax.neg(lead)))
    r = lax.sort_key_val(lax.eq(r, scalar_like(0, r)), r)[1]
    valid = lax.lt(lax.iota(np.int32, n - 1), lax.sub(lax.full((), n - 1, np.int32), lead))
    return lax.select(valid, r, lax.full((n - 1,), complex(np.nan, np.nan), ct))


# --------------------------------------------------------------------------- fitting

def _static_deg(deg: Any) -> int:
    if isinstance(deg, (float, np.floating)):  # truncated, as by NumPy and JAX
        return int(deg)
    return static_int(deg, "polyfit: deg")


def polyfit(x: Any, y: Any, deg: int, rcond: float | None = None, full: bool = False,
            w: Any = None, cov: bool | str = False) -> Any:
    """Least-squares fit of a degree-``deg`` polynomial to the points ``(x, y)``.

    ``y`` is ``(M,)`` or ``(M, K)`` (``K`` fits at once); ``w`` weights the unsquared
    residuals. Returns the coefficients, or with ``full=True`` ``(p, residuals, rank,
    singular_values, rcond)``, or with ``cov=True`` (or ``'unscaled'``) ``(p, covariance)``.
    ``deg``, ``rcond``, ``full`` and ``cov`` must be static.
    """
    if w is None:
        x, y = ensure_arraylike("polyfit", x, y)
    else:
        x, y, w = ensure_arraylike("polyfit", x, y, w)
    deg = _static_deg(deg)
    order = deg + 1
    if deg < 0:
        raise ValueError(f"polyfit: expected deg >= 0, got {deg}")
    if aval(x).ndim != 1:
        raise TypeError(f"polyfit: expected a 1-d vector for x, got shape {aval(x).shape}")
    if aval(x).size == 0:
        raise TypeError("polyfit: expected a non-empty vector for x")
    if aval(y).ndim not in (1, 2):
        raise TypeError(f"polyfit: expected a 1-d or 2-d array for y, got shape {aval(y).shape}")
    num = aval(x).shape[0]
    if aval(y).shape[0] != num:
        raise TypeError(f"polyfit: expected x and y to have the same length, got {num} and "
                        f"{aval(y).shape[0]}")
    if rcond is None:
        if not dtypes.is_inexact(aval(x).dtype):
            raise ValueError(f"polyfit: x of dtype {aval(x).dtype} is not inexact: the default "
                             "rcond comes from its machine epsilon; pass a floating-point x "
                             "or an explicit rcond")
        rcond = num * float(dtypes.finfo(aval(x).dtype).eps)
    elif isinstance(rcond, Tracer):
        rcond = rcond._concrete("polyfit: rcond must be static")
    rcond = float(rcond)

    lhs, rhs = vander(x, order), y
    if w is not None:
        w, = promote_dtypes_inexact(w)
        if aval(w).ndim != 1:
            raise TypeError(f"polyfit: expected a 1-d array for the weights w, got shape "
                            f"{aval(w).shape}")
        if aval(w).shape[0] != num:
            raise TypeError(f"polyfit: expected w and y to have the same length, got "
                            f"{aval(w).shape[0]} and {num}")
        wcol = lax.expand_dims(w, (1,))
        lhs = multiply(lhs, wcol)
        rhs = multiply(rhs, wcol if aval(rhs).ndim == 2 else w)

    # scale the columns to unit norm (a better conditioned system), then undo it in c
    scale = sqrt(_sum(multiply(lhs, lhs), axis=0))
    lhs = true_divide(lhs, lax.expand_dims(scale, (0,)))
    c, resids, rank, s = lstsq(lhs, rhs, rcond)
    c = true_divide(c, lax.expand_dims(scale, (1,)) if aval(c).ndim > 1 else scale)

    if full:
        return c, resids, rank, s, as_operand(rcond)
    if not cov:
        return c
    base = true_divide(inv(dot(lax.transpose(lhs, (1, 0)), lhs)), outer(scale, scale))
    if isinstance(cov, str) and cov == "unscaled":
        fac = lax.reshape(as_operand(1.0), (1,))  # weakly typed: base keeps its dtype
    else:
        if num <= order:
            raise ValueError(f"polyfit: the number of data points ({num}) must exceed order "
                             f"(deg + 1 = {order}) to scale the covariance matrix")
        fac = true_divide(resids, num - order)
    if aval(y).ndim == 1:
        return c, multiply(base, lax.reshape(fac, (1, 1)))
    return c, multiply(lax.expand_dims(base, (2,)), lax.expand_dims(fac, (0, 1)))


__all__ = ["poly", "polyadd", "polysub", "polymul", "polydiv", "polyder", "polyint", "polyfit",
           "roots"]
