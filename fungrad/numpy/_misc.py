"""Comparisons of whole arrays (``isclose``, ``allclose``, ``array_equal``), dtype
casts (``astype``, ``view``), differences (``diff``, ``ediff1d``), ``interp``,
``convolve``/``correlate``, ``cov``/``corrcoef`` and small predicates."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.array import Array
from fungrad._core.core import Tracer
from fungrad.lax._ops import intn_error
from fungrad.numpy._joining import concatenate
from fungrad.numpy._reductions import all as _all, any as _any, average, sum as _sum
from fungrad.numpy._searching import searchsorted
from fungrad.numpy._shape import broadcast_to, diagonal, slice_axis
from fungrad.numpy._ufuncs import (logical_and, logical_or, multiply, not_equal, power, remainder,
                                   subtract, true_divide)
from fungrad.numpy._ufuncs_math import conjugate, isfinite, isnan
from fungrad.numpy._indexing import take
from fungrad.numpy._linalg import dot
from fungrad.numpy._util import (aval, canonicalize_axis, check_user_dtype, ensure_arraylike,
                                 promote_args, promote_args_inexact, promote_dtypes,
                                 promote_dtypes_inexact, scalar_like, static_int, truthy,
                                 where as _where)


def isclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08,
            equal_nan: bool = False) -> Any:
    """Elementwise ``|a - b| <= atol + rtol * |b|`` (infinities equal only to themselves)."""
    a, b = promote_args("isclose", a, b)
    a, b = promote_args_inexact("isclose", a, b)
    dt = aval(a).dtype
    real = np.dtype(np.float32 if dt == np.complex64 else np.float64) if dt.kind == "c" else dt
    rtol, atol = (lax.convert_element_type(t, dtypes.canonicalize_dtype(real))
                  for t in (rtol, atol))
    in_range = lax.le(lax.abs(lax.sub(a, b)), lax.add(atol, lax.mul(rtol, lax.abs(b))))
    out = logical_or(lax.eq(a, b), logical_and(isfinite(b), in_range))
    return logical_or(out, logical_and(isnan(a), isnan(b))) if equal_nan else out


def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08,
             equal_nan: bool = False) -> Any:
    """Whether ``isclose`` holds everywhere."""
    return _all(isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1: Any, a2: Any, equal_nan: bool = False) -> Any:
    """Whether the arrays have the same shape and elements."""
    a1, a2 = ensure_arraylike("array_equal", a1, a2)
    if aval(a1).shape != aval(a2).shape:
        return lax.full((), False, np.bool_)
    eq = lax.eq(*promote_dtypes(a1, a2))
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))
    return _all(eq)


def array_equiv(a1: Any, a2: Any) -> Any:
    """Whether the arrays are equal after broadcasting."""
    a1, a2 = ensure_arraylike("array_equiv", a1, a2)
    try:
        np.broadcast_shapes(aval(a1).shape, aval(a2).shape)
    except ValueError:
        return lax.full((), False, np.bool_)
    return _all(lax.eq(*promote_dtypes(a1, a2)))


def astype(x: Any, dtype: Any, /, *, copy: bool = False, device: Any = None) -> Any:
    """``x`` converted to ``dtype``: complex to real keeps the real part, complex to bool is
    ``x != 0`` (either part nonzero), as in JAX."""
    x = ensure_arraylike("astype", x)
    dtype = check_user_dtype(dtype, "astype")
    if dtype == np.bool_:
        return truthy(x)
    return lax.convert_element_type(x, dtype)


def _view(x: Any, dtype: Any = None, type: None = None) -> Any:  # noqa: A002
    """The bits of ``x`` reinterpreted as ``dtype`` (the last axis rescales with itemsize)."""
    x = ensure_arraylike("view", x)
    if dtype is None:
        return x
    dt = check_user_dtype(dtype, "view")
    src = aval(x).dtype
    if dt == src:
        return x
    if src == np.bool_:
        x = lax.convert_element_type(x, np.uint8)
        src = np.dtype(np.uint8)
    target = np.dtype(np.uint8) if dt == np.bool_ else dt
    shape = aval(x).shape
    if target.itemsize == src.itemsize:
        out = lax.bitcast_convert_type(x, target)
    elif target.itemsize < src.itemsize:
        out = lax.bitcast_convert_type(x, target)
        out = lax.reshape(out, shape[:-1] + (shape[-1] * (src.itemsize // target.itemsize),))
    else:
        ratio = target.itemsize // src.itemsize
        if not shape or shape[-1] % ratio:
            raise ValueError(f"view: the last axis of shape {shape} must be divisible by {ratio}")
        out = lax.bitcast_convert_type(lax.reshape(x, shape[:-1] + (shape[-1] // ratio, ratio)),
                                       target)
    return lax.ne(out, scalar_like(0, out)) if dt == np.bool_ else out


def iscomplex(x: Any) -> Any:
    """Elementwise: has a non-zero imaginary part."""
    x = ensure_arraylike("iscomplex", x)
    if aval(x).dtype.kind != "c":  # weakly typed for a weakly typed x, as in JAX
        return lax.full(aval(x).shape, lax.convert_element_type(False, np.bool_, aval(x).weak_type))
    imag = lax.imag(x)
    return lax.ne(imag, lax.convert_element_type(0, aval(imag).dtype, aval(imag).weak_type))


def isreal(x: Any) -> Any:
    """Elementwise: has a zero imaginary part."""
    return lax.bitwise_not(iscomplex(x))


def isscalar(element: Any) -> bool:
    """Whether ``element`` is a scalar (a Python/NumPy scalar or a 0-d array)."""
    if isinstance(element, (Array, Tracer, np.ndarray)):
        return element.ndim == 0
    return np.isscalar(element)


# --------------------------------------------------------------------------- differences

def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Any:
    """The ``n``-th discrete difference along ``axis``."""
    arr = ensure_arraylike("diff", a)
    n = static_int(n, "diff: n")
    if n < 0:
        raise ValueError(f"diff: order must be non-negative but got {n}")
    if n == 0:
        return arr
    if aval(arr).ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = canonicalize_axis(axis, aval(arr).ndim, "diff")
    def edge(extra: Any) -> Any:
        extra = ensure_arraylike("diff", extra)
        if aval(extra).ndim == 0:
            shape = list(aval(arr).shape)
            shape[axis] = 1
            extra = broadcast_to(extra, tuple(shape))
        return extra
    parts = ([edge(prepend)] if prepend is not None else []) + [arr] + \
        ([edge(append)] if append is not None else [])
    if len(parts) > 1:
        arr = concatenate(parts, axis)
    for _ in range(n):
        m = aval(arr).shape[axis]
        hi, lo = slice_axis(arr, axis, 1, m), slice_axis(arr, axis, 0, max(m - 1, 0))
        arr = not_equal(hi, lo) if aval(arr).dtype == np.bool_ else lax.sub(hi, lo)
    return arr


def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    """Differences of consecutive elements of the flattened array."""
    arr = ensure_arraylike("ediff1d", ary)
    arr = lax.reshape(arr, (aval(arr).size,))
    n = aval(arr).shape[0]
    parts = [lax.sub(lax.slice(arr, (1,), (n,)), lax.slice(arr, (0,), (max(n - 1, 0),)))]
    if to_begin is not None:
        b = lax.convert_element_type(ensure_arraylike("ediff1d", to_begin), aval(arr).dtype)
        parts.insert(0, lax.reshape(b, (aval(b).size,)))
    if to_end is not None:
        e = lax.convert_element_type(ensure_arraylike("ediff1d", to_end), aval(arr).dtype)
        parts.append(lax.reshape(e, (aval(e).size,)))
    return concatenate(parts) if len(parts) > 1 else parts[0]


# --------------------------------------------------------------------------- interpolation

def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
           period: Any = None) -> Any:
    """Piecewise-linear interpolation of the points ``(xp, fp)`` (``xp`` increasing) at ``x``;
    with a ``period``, of the periodic function through them (any order of ``xp``; ``left``
    and ``right`` are then ignored, as in NumPy)."""
    x, xp, fp = ensure_arraylike("interp", x, xp, fp)
    if aval(xp).ndim != 1 or aval(xp).shape != aval(fp).shape:
        raise ValueError("interp: xp and fp must be one-dimensional arrays of equal size")
    x, xp = promote_dtypes_inexact(x, xp)
    fp, = promote_dtypes_inexact(fp)
    if period is not None:
        x, xp, fp = _periodic_points(x, xp, fp, period)
        left = right = None
    n = aval(xp).shape[0]
    i = lax.clamp(lax.convert_element_type(1, np.int32), searchsorted(xp, x, side="right"),
                  lax.convert_element_type(max(n - 1, 1), np.int32))
    x_lo, x_hi = take(xp, lax.sub(i, lax.full((), 1, np.int32)), mode="clip"), take(
        xp, i, mode="clip")
    f_lo, f_hi = take(fp, lax.sub(i, lax.full((), 1, np.int32)), mode="clip"), take(
        fp, i, mode="clip")
    dx = lax.sub(x_hi, x_lo)
    safe_dx = _where(lax.eq(dx, scalar_like(0, dx)), scalar_like(1, dx), dx)
    delta = lax.sub(x, x_lo)
    df = lax.sub(f_hi, f_lo)
    out = lax.add(f_lo, lax.mul(lax.div(delta, lax.convert_element_type(safe_dx,
                                                                      aval(delta).dtype)),
                                lax.convert_element_type(df, aval(delta).dtype)))
    out = lax.convert_element_type(out, dtypes.result_type(out, fp))
    out = _where(lax.eq(dx, scalar_like(0, dx)), f_lo, out)
    first = lax.reshape(lax.slice(fp, (0,), (1,)), ())
    last = lax.reshape(lax.slice(fp, (n - 1,), (n,)), ())
    x0 = lax.reshape(lax.slice(xp, (0,), (1,)), ())
    xn = lax.reshape(lax.slice(xp, (n - 1,), (n,)), ())
    out = _where(lax.lt(x, x0), first if left is None else left, out)
    return _where(lax.gt(x, xn), last if right is None else right, out)


def _periodic_points(x: Any, xp: Any, fp: Any, period: Any) -> tuple[Any, Any, Any]:
    """``x`` and ``xp`` reduced modulo ``|period|``, the points sorted by ``xp``, with the last
    point repeated one period before the first and the first one period after the last."""
    period = ensure_arraylike("interp", period)
    if aval(period).ndim != 0:
        raise ValueError(f"interp: period must be a scalar, got shape {aval(period).shape}")
    period = lax.convert_element_type(lax.abs(period), aval(xp).dtype)
    x, xp = remainder(x, lax.convert_element_type(period, aval(x).dtype)), remainder(xp, period)
    xp, fp = lax.sort((xp, fp), num_keys=1)
    n = aval(xp).shape[0]
    xp = concatenate([lax.sub(xp[n - 1:], period), xp, lax.add(xp[:1], period)])
    return x, xp, concatenate([fp[n - 1:], fp, fp[:1]])


# --------------------------------------------------------------------------- convolution

def _convolve_full(a: Any, v: Any, precision: Any, preferred_element_type: Any) -> Any:
    """``out[k] = sum_j a[j] v[k - j]`` as one product of ``rev(v)`` with the sliding windows
    of the zero-padded ``a``."""
    n, m = aval(a).shape[0], aval(v).shape[0]
    padded = lax.pad(a, scalar_like(0, a), ((m - 1, m - 1, 0),))
    windows = lax.concatenate([lax.expand_dims(lax.slice(padded, (k,), (k + n + m - 1,)), (0,))
                               for k in range(m)], 0)
    return dot(lax.rev(v, (0,)), windows, precision=precision,
               preferred_element_type=preferred_element_type)


def _conv1d(fname: str, a: Any, v: Any, mode: str, precision: Any,
            preferred_element_type: Any) -> Any:
    """``convolve`` or (``fname == "correlate"``) ``correlate``: the full convolution, then
    the window ``mode`` asks for (for ``"same"``, centred as NumPy centres it)."""
    a, v = ensure_arraylike(fname, a, v)
    if aval(a).ndim != 1 or aval(v).ndim != 1:
        raise ValueError(f"{fname}: only 1-dimensional arguments are supported, got shapes "
                         f"{aval(a).shape} and {aval(v).shape}")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"{fname}: mode must be 'full', 'same' or 'valid', got {mode!r}")
    # as NumPy: floats unless a result type is asked for
    a, v = promote_dtypes_inexact(a, v) if preferred_element_type is None \
        else promote_dtypes(a, v)
    if aval(a).dtype in dtypes.intn:  # 2-bit ones stay integers: XLA has no such convolution
        raise intn_error(fname, aval(a).dtype)
    n, m = aval(a).shape[0], aval(v).shape[0]
    if n == 0 or m == 0:
        raise ValueError(f"{fname}: inputs cannot be empty, got shapes ({n},) and ({m},)")
    if fname == "correlate":
        v = lax.rev(conjugate(v), (0,))
    full = _convolve_full(*((a, v) if n >= m else (v, a)), precision, preferred_element_type)
    short, long = min(n, m), max(n, m)
    if mode == "full":
        return full
    if mode == "same":  # a correlation with the longer ``v`` centres on the other side
        start = short // 2 if fname == "correlate" and n < m else (short - 1) // 2
        return lax.slice(full, (start,), (start + long,))
    return lax.slice(full, (short - 1,), (long,))


def convolve(a: Any, v: Any, mode: str = "full", *, precision: Any = None,
             preferred_element_type: Any = None) -> Any:
    """Discrete 1-d convolution (``mode`` 'full', 'same' or 'valid'), in floats unless
    ``preferred_element_type`` says otherwise."""
    return _conv1d("convolve", a, v, mode, precision, preferred_element_type)


def correlate(a: Any, v: Any, mode: str = "valid", *, precision: Any = None,
              preferred_element_type: Any = None) -> Any:
    """Discrete 1-d cross-correlation (``mode`` 'valid', 'same' or 'full'), in floats unless
    ``preferred_element_type`` says otherwise."""
    return _conv1d("correlate", a, v, mode, precision, preferred_element_type)


# --------------------------------------------------------------------------- statistics

def _rows(x: Any, rowvar: bool, name: str) -> Any:
    if aval(x).ndim > 2:
        raise ValueError(f"cov: {name} has more than 2 dimensions: {aval(x).shape}")
    if aval(x).ndim < 2:
        return lax.reshape(x, (1, aval(x).size))
    return x if rowvar else lax.transpose(x, (1, 0))


def _sample_weights(name: str, weights: Any, n: int) -> Any:
    weights = ensure_arraylike("cov", weights)
    if aval(weights).ndim != 1 or aval(weights).shape[0] != n:
        raise ValueError(f"cov: {name} must be 1-d with one weight per sample ({n}), got shape "
                         f"{aval(weights).shape}")
    return lax.abs(weights)  # NumPy refuses negative weights; JAX (and fungrad) take |w|


def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: int | None = None,
        fweights: Any = None, aweights: Any = None, dtype: Any = None) -> Any:
    """Covariance matrix of the variables in the rows (``rowvar``) of ``m`` (and ``y``), the
    samples weighted by integer frequencies ``fweights`` and by ``aweights``."""
    arrays = promote_args_inexact("cov", m) if y is None else promote_args_inexact("cov", m, y)
    if dtype is not None and not dtypes.is_inexact(check_user_dtype(dtype, "cov")):
        raise ValueError(f"cov: dtype must be a float or complex dtype, got {dtype}")
    x = concatenate([_rows(a, rowvar, name) for a, name in zip(arrays, ("m", "y"))], 0)
    variables, n = aval(x).shape
    if variables == 0:
        return lax.full((0, 0), 0, aval(x).dtype)
    if n == 0:  # no samples: NaN, as JAX
        return lax.full(() if variables == 1 else (variables, variables), np.nan, aval(x).dtype)
    ddof = (0 if bias else 1) if ddof is None else ddof
    weights = None
    if fweights is not None:
        weights = _sample_weights("fweights", fweights, n)
        if not dtypes.is_integer(aval(weights).dtype):
            raise TypeError(f"cov: fweights must be integers, got {aval(weights).dtype.name}")
    if aweights is not None:
        aweights = _sample_weights("aweights", aweights, n)
        weights = aweights if weights is None else multiply(weights, aweights)
    if dtype is not None:
        x = lax.convert_element_type(x, dtype)
        weights = None if weights is None else lax.convert_element_type(weights, dtype)
    avg, total = average(x, axis=1, weights=weights, returned=True)
    total = total[0]
    if weights is None:
        dof = lax.convert_element_type(n - ddof, aval(x).dtype)
    elif ddof == 0:
        dof = total
    elif aweights is None:
        dof = subtract(total, ddof)
    else:
        dof = subtract(total, true_divide(multiply(ddof, _sum(multiply(weights, aweights))),
                                          total))
    centered = lax.sub(x, lax.expand_dims(avg, (1,)))
    weighted = centered if weights is None else multiply(centered, weights)
    out = true_divide(dot(centered, lax.transpose(conjugate(weighted), (1, 0))), dof)
    return lax.reshape(out, ()) if aval(out).shape == (1, 1) else out


def corrcoef(x: Any, y: Any = None, rowvar: bool = True, dtype: Any = None) -> Any:
    """Pearson correlation coefficients, clipped to [-1, 1] (computed in ``dtype``)."""
    c = cov(x, y, rowvar, dtype=dtype)
    if aval(c).ndim == 0:
        return lax.div(c, c)
    d = lax.sqrt(diagonal(c))
    c = lax.div(lax.div(c, lax.expand_dims(d, (1,))), lax.expand_dims(d, (0,)))
    return lax.clamp(scalar_like(-1, c), c, scalar_like(1, c))


__all__ = ["isclose", "allclose", "array_equal", "array_equiv", "astype", "iscomplex",
           "isreal", "isscalar", "diff", "ediff1d", "interp", "convolve", "correlate", "cov",
           "corrcoef"]


# --------------------------------------------------------------------------- polynomials, calculus

def polyval(p: Any, x: Any, *, unroll: int = 16) -> Any:
    """Evaluate the polynomial with coefficients ``p`` (highest power first) at ``x`` by
    Horner's scheme. ``unroll`` is accepted for JAX's signature: the scheme is unrolled
    completely at trace time (``p``'s length is static)."""
    p, x = promote_dtypes(*ensure_arraylike("polyval", p, x))
    if aval(p).ndim != 1:
        raise ValueError(f"polyval: p must be 1-d, got shape {aval(p).shape}")
    out = lax.full(aval(x).shape, 0, aval(x).dtype)
    for i in range(aval(p).shape[0]):  # Horner's scheme
        out = lax.add(lax.mul(out, x), lax.reshape(lax.slice(p, (i,), (i + 1,)), ()))
    return out


def vander(x: Any, N: int | None = None, increasing: bool = False) -> Any:
    """The Vandermonde matrix of the 1-d ``x``: columns are powers of ``x``."""
    x = ensure_arraylike("vander", x)
    if aval(x).ndim != 1:
        raise ValueError("vander: x must be a one-dimensional array")
    n = aval(x).shape[0] if N is None else static_int(N, "vander: N")
    powers = np.arange(n) if increasing else np.arange(n - 1, -1, -1)
    # exponents of x's dtype, as JAX's (so a float x has pow's float derivatives: NaN for
    # x**0 at x = 0)
    return power(lax.expand_dims(x, (1,)), Array(powers.astype(aval(x).dtype)))


def trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: int = -1) -> Any:
    """Integral of ``y`` along ``axis`` by the trapezoidal rule (spacing ``x`` or ``dx``)."""
    y = ensure_arraylike("trapezoid", y)
    axis = canonicalize_axis(axis, aval(y).ndim, "trapezoid")
    y, = promote_dtypes_inexact(y)
    n = aval(y).shape[axis]
    if x is None:
        spacing = lax.convert_element_type(dx, aval(y).dtype)
    else:
        x, = promote_dtypes_inexact(ensure_arraylike("trapezoid", x))
        if aval(x).ndim == 1:  # a 1-d x lies along axis
            shape = [1] * aval(y).ndim
            shape[axis] = aval(x).shape[0]
            x = lax.reshape(x, tuple(shape))
        m = aval(x).shape[axis]
        spacing = lax.sub(slice_axis(x, axis, 1, m), slice_axis(x, axis, 0, m - 1))
    mid = lax.add(slice_axis(y, axis, 1, n), slice_axis(y, axis, 0, max(n - 1, 0)))
    return _sum(lax.mul(lax.mul(mid, spacing), scalar_like(0.5, mid)), axis=axis)


def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int | None = None) -> Any:
    """Second-order central differences inside, first-order at the edges, per axis."""
    if edge_order is not None:
        raise NotImplementedError("gradient: edge_order is not supported")
    f, = promote_dtypes_inexact(ensure_arraylike("gradient", f))
    nd = aval(f).ndim
    axes = tuple(range(nd)) if axis is None else tuple(
        canonicalize_axis(a, nd, "gradient") for a in ((axis,) if isinstance(axis, int)
                                                       else axis))
    if len(varargs) > 1 and len(varargs) != len(axes):
        raise ValueError("gradient: give one spacing, or one per axis")
    spacings = list(varargs) * len(axes) if len(varargs) == 1 else list(varargs) or [1.0] * len(
        axes)
    outs = []
    for ax, h in zip(axes, spacings):
        n = aval(f).shape[ax]
        if n < 2:
            raise ValueError("gradient: the size of each differentiated axis must be >= 2")
        h = lax.convert_element_type(h, aval(f).dtype)
        if aval(h).ndim:
            raise NotImplementedError("gradient: only scalar spacings are supported")
        sl = lambda a, b: slice_axis(f, ax, a, b)  # noqa: E731
        first = lax.div(lax.sub(sl(1, 2), sl(0, 1)), h)
        last = lax.div(lax.sub(sl(n - 1, n), sl(n - 2, n - 1)), h)
        inner = lax.div(lax.sub(sl(2, n), sl(0, n - 2)), lax.mul(h, scalar_like(2, h)))
        outs.append(concatenate([first, inner, last], ax))
    return outs[0] if len(outs) == 1 else outs


# --------------------------------------------------------------------------- integers

def _gcd_loop(a: Any, b: Any) -> tuple[Any, Any]:
    zero = scalar_like(0, a)

    def cond(ab: tuple) -> Any:
        return _any(lax.ne(ab[1], zero))

    def body(ab: tuple) -> tuple:
        x, y = ab
        nonzero = lax.ne(y, zero)
        safe = _where(nonzero, y, scalar_like(1, y))
        return _where(nonzero, y, x), _where(nonzero, lax.rem(x, safe), zero)
    return lax.while_loop(cond, body, (a, b))


def gcd(x1: Any, x2: Any) -> Any:
    """Elementwise greatest common divisor of integers."""
    x1, x2 = promote_args("gcd", x1, x2)
    if not dtypes.is_integer(aval(x1).dtype):
        raise ValueError("gcd: arguments must be integers")
    shape = np.broadcast_shapes(aval(x1).shape, aval(x2).shape)
    a, b = (lax.broadcast_in_dim(lax.abs(v) if dtypes.kind(aval(v).dtype) == "i" else v, shape,
                                 tuple(range(len(shape) - aval(v).ndim, len(shape))))
            for v in (x1, x2))
    return _gcd_loop(a, b)[0]


def lcm(x1: Any, x2: Any) -> Any:
    """Elementwise least common multiple of integers."""
    x1, x2 = promote_args("lcm", x1, x2)
    d = gcd(x1, x2)
    zero = scalar_like(0, d)
    safe = _where(lax.eq(d, zero), scalar_like(1, d), d)
    a1 = lax.abs(x1) if dtypes.kind(aval(x1).dtype) == "i" else x1
    a2 = lax.abs(x2) if dtypes.kind(aval(x2).dtype) == "i" else x2
    return _where(lax.eq(d, zero), zero, lax.mul(lax.div(a1, safe), a2))


def iterable(y: Any) -> bool:
    """Whether ``iter(y)`` works."""
    try:
        iter(y)
    except TypeError:
        return False
    return True


__all__ += ["polyval", "vander", "trapezoid", "gradient", "gcd", "lcm", "iterable"]
