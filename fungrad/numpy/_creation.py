"""Array creation: ``array``/``asarray``, filled arrays, ranges, grids and matrices."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.array import Array, device_put
from fungrad._core.core import Tracer
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import as_operand, hashable_shape
from fungrad.numpy._util import (aval, broadcast_to, canonicalize_axis, check_user_dtype,
                                 ensure_arraylike, promote_dtypes_inexact, static_int,
                                 to_inexact_dtype, where)
from fungrad.numpy._shape import diagonal
from fungrad.numpy._ufuncs import multiply, power, sign
from fungrad.numpy._ufuncs_math import exp, log


# --------------------------------------------------------------------------- placement

def _placed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` whose keyword ``device`` (a ``Device``, a ``Sharding``, ``"gpu"``, ``"cpu:1"``)
    commits the result there with ``device_put``, as JAX's creation functions
    do; so does ``out_sharding`` where ``fn`` declares it (see ``fungrad.lax._placement``),
    and giving both is an error, as in JAX. The wrapper consumes the keywords, so ``fn``
    never sees them. Traced results (inside ``jit``) stay where the computation runs."""
    fname = f"jnp.{fn.__name__}"
    shardable = "out_sharding" in inspect.signature(fn).parameters

    @functools.wraps(fn)
    def create(*args: Any, device: Any = None, **kwargs: Any) -> Any:
        out_sharding = kwargs.pop("out_sharding", None) if shardable else None
        out = fn(*args, **kwargs)
        if out_sharding is None:
            return out if device is None else device_put(out, device)
        if device is not None:
            raise ValueError(f"{fname}: only one of device and out_sharding can be set, got "
                             f"device={device!r} and out_sharding={out_sharding!r}")
        return with_out_sharding(out, out_sharding, fname)
    return create


# --------------------------------------------------------------------------- array / asarray

def _leaves(obj: Any, out: list) -> list:
    if isinstance(obj, (list, tuple)):
        for o in obj:
            _leaves(o, out)
    else:
        out.append(obj)
    return out


def _stack_nested(obj: Any, dtype: np.dtype) -> Any:
    """Build an array from nested lists containing tracers (lax only, no NumPy)."""
    if not isinstance(obj, (list, tuple)):
        return lax.convert_element_type(obj, dtype)
    parts = [_stack_nested(o, dtype) for o in obj]
    shapes = {aval(p).shape for p in parts}
    if len(shapes) != 1:
        raise ValueError(f"array: setting an array element with a sequence; the nested "
                         f"sequence has inhomogeneous shapes {sorted(shapes)}")
    return lax.concatenate([lax.expand_dims(p, (0,)) for p in parts], 0)


_NON_NUMERIC_KINDS = ("O", "U", "S")  # object, str, bytes (ml_dtypes' bfloat16 is kind "V")


def _valid_leaf(x: Any) -> bool:
    """Whether ``x`` may be an element of a (nested) list given to ``array``."""
    if isinstance(x, (Array, Tracer, bool, int, float, complex)) or hasattr(x, "__jax_array__"):
        return True
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind not in _NON_NUMERIC_KINDS


def _invalid_value(x: Any, fname: str) -> Exception:
    """The error for a value an array cannot hold: ``None`` is a ValueError, strings
    and other objects are TypeErrors (as in JAX)."""
    if x is None:
        return ValueError(f"{fname}: None is not a valid value for an array (use "
                          "fungrad.numpy.nan for a missing number)")
    if isinstance(x, (str, bytes)):
        what = f"a {type(x).__name__} {x!r}"
    elif isinstance(x, (np.ndarray, np.generic)):
        what = f"a NumPy array of dtype {x.dtype} and shape {x.shape}"
    else:
        what = f"an object of type {type(x).__name__}"
    return TypeError(f"{fname}: cannot convert {what} to an array: fungrad arrays hold "
                     "numbers and booleans only (convert the elements to numbers first)")


@_placed
def array(object: Any, dtype: Any = None, copy: bool = True, order: str | None = None,  # noqa: A002
          ndmin: int = 0, *, device: Any = None, out_sharding: Any = None) -> Any:
    """Create an array from an array, a scalar or nested lists (``jnp.array``).

    Python scalars stay weakly typed; lists take the promoted dtype of their elements
    (64-bit values are canonicalised to 32 bits unless x64 is enabled). ``device`` or
    ``out_sharding`` (one device) commits the result there.
    """
    return _array(object, dtype, copy, ndmin, "array")


def _array(object: Any, dtype: Any, copy: bool, ndmin: int, fname: str) -> Any:  # noqa: A002
    """``array``, naming ``fname`` (``array`` or ``asarray``) in its errors."""
    dtype = check_user_dtype(dtype, fname)
    if isinstance(object, (Array, Tracer)):
        out = object if dtype is None else lax.convert_element_type(object, dtype)
        if copy and out is object and isinstance(out, Array):
            out = out.copy()
    elif isinstance(object, (bool, int, float, complex)):
        out = as_operand(object) if dtype is None else lax.convert_element_type(object, dtype)
    elif isinstance(object, (list, tuple)):
        leaves = _leaves(object, [])
        if any(isinstance(x, (list, tuple)) for x in leaves):
            raise TypeError(f"{fname}: unsupported nested sequence")
        for x in leaves:
            if not _valid_leaf(x):
                raise _invalid_value(x, fname)
        dt = dtype
        if dt is None:
            dt = dtypes.result_type(*leaves) if leaves else dtypes.default_float_dtype()
        if any(isinstance(x, Tracer) for x in leaves):
            out = _stack_nested(object, dt)
        else:
            host = [np.asarray(x) if isinstance(x, Array) else x for x in leaves]
            value = np.array(_rebuild(object, iter(host)), dtype=dt)
            out = Array(value)
    elif hasattr(object, "__jax_array__"):
        return _array(object.__jax_array__(), dtype, copy, ndmin, fname)
    else:
        value = np.asarray(object)
        if value.dtype.kind in _NON_NUMERIC_KINDS:
            raise _invalid_value(object, fname)
        dt = dtype if dtype is not None else dtypes.canonicalize_dtype(value.dtype)
        out = Array(value.astype(dt, copy=False))
    if ndmin > aval(out).ndim:
        out = lax.reshape(out, (1,) * (ndmin - aval(out).ndim) + aval(out).shape)
    return out


def _rebuild(obj: Any, host: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        return [_rebuild(o, host) for o in obj]
    return next(host)


@_placed
def asarray(a: Any, dtype: Any = None, order: str | None = None, *, copy: bool | None = None,
            device: Any = None, out_sharding: Any = None) -> Any:
    """Convert ``a`` to an array without copying when it already is one (``jnp.asarray``);
    ``device`` or ``out_sharding`` (one device) commits the result there."""
    return _array(a, dtype, bool(copy), 0, "asarray")


def copy(a: Any, order: str | None = None) -> Any:
    """A copy of ``a``."""
    return array(a, copy=True)


# --------------------------------------------------------------------------- filled arrays

def _filled(shape: tuple, fill_value: Any, dtype: np.dtype, weak: bool) -> Any:
    return lax.broadcast_in_dim(lax.convert_element_type(fill_value, dtype, weak), shape, ())


@_placed
def zeros(shape: Any, dtype: Any = None, *, device: Any = None,
          out_sharding: Any = None) -> Any:
    """An array of zeros (default dtype float32), committed to ``device`` or
    ``out_sharding`` (one device) when one is given."""
    return _filled(hashable_shape(shape, "zeros"), 0,
                   check_user_dtype(dtype, "zeros") or dtypes.default_float_dtype(), False)


@_placed
def ones(shape: Any, dtype: Any = None, *, device: Any = None,
         out_sharding: Any = None) -> Any:
    """An array of ones (default dtype float32), committed to ``device`` or
    ``out_sharding`` (one device) when one is given."""
    return _filled(hashable_shape(shape, "ones"), 1,
                   check_user_dtype(dtype, "ones") or dtypes.default_float_dtype(), False)


@_placed
def empty(shape: Any, dtype: Any = None, *, device: Any = None,
          out_sharding: Any = None) -> Any:
    """Same as ``zeros``: arrays are immutable, so there is nothing to leave uninitialised."""
    return _filled(hashable_shape(shape, "empty"), 0,
                   check_user_dtype(dtype, "empty") or dtypes.default_float_dtype(), False)


@_placed
def full(shape: Any, fill_value: Any, dtype: Any = None, *, device: Any = None,
         out_sharding: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (an array value is broadcast),
    committed to ``device`` or ``out_sharding`` (one device) when one is given."""
    shape = hashable_shape(shape, "full")
    dtype = check_user_dtype(dtype, "full")
    fill = ensure_arraylike("full", fill_value)
    if aval(fill).ndim:
        return broadcast_to(fill if dtype is None else lax.convert_element_type(fill, dtype),
                            shape)
    dt, weak = (aval(fill).dtype, aval(fill).weak_type) if dtype is None else (dtype, False)
    return _filled(shape, fill, dt, weak)


def _like(fname: str, a: Any, fill_value: Any, dtype: Any, shape: Any) -> Any:
    a = ensure_arraylike(fname, a)
    dtype = check_user_dtype(dtype, fname)
    shape = aval(a).shape if shape is None else hashable_shape(shape, fname)
    if dtype is None:
        return _filled(shape, fill_value, aval(a).dtype, aval(a).weak_type)
    return _filled(shape, fill_value, dtype, False)


@_placed
def zeros_like(a: Any, dtype: Any = None, shape: Any = None, *, device: Any = None,
               out_sharding: Any = None) -> Any:
    """Zeros with the shape and dtype (and weak type) of ``a``, committed to ``device`` or
    ``out_sharding`` (one device) when one is given."""
    return _like("zeros_like", a, 0, dtype, shape)


@_placed
def ones_like(a: Any, dtype: Any = None, shape: Any = None, *, device: Any = None,
              out_sharding: Any = None) -> Any:
    """Ones with the shape and dtype (and weak type) of ``a``, committed to ``device`` or
    ``out_sharding`` (one device) when one is given."""
    return _like("ones_like", a, 1, dtype, shape)


@_placed
def empty_like(prototype: Any, dtype: Any = None, shape: Any = None, *,
               device: Any = None) -> Any:
    """Same as ``zeros_like``."""
    return _like("empty_like", prototype, 0, dtype, shape)


@_placed
def full_like(a: Any, fill_value: Any, dtype: Any = None, shape: Any = None, *,
              device: Any = None, out_sharding: Any = None) -> Any:
    """``fill_value`` with the shape and dtype of ``a``, committed to ``device`` or
    ``out_sharding`` (one device) when one is given."""
    fill = ensure_arraylike("full_like", fill_value)
    if aval(fill).ndim:
        a = ensure_arraylike("full_like", a)
        shape = aval(a).shape if shape is None else shape
        return full(shape, lax.convert_element_type(fill, check_user_dtype(dtype, "full_like")
                                                    or aval(a).dtype))
    return _like("full_like", a, fill, dtype, shape)


# --------------------------------------------------------------------------- ranges

def _concrete_scalar(x: Any, what: str) -> Any:
    if isinstance(x, Tracer):
        x = x._concrete(what)
    return np.asarray(x).item() if isinstance(x, (Array, np.ndarray, np.generic)) else x


@_placed
def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None, *,
           device: Any = None, out_sharding: Any = None) -> Any:
    """Evenly spaced values in ``[start, stop)`` (the bounds must be static), committed to
    ``device`` or ``out_sharding`` (one device) when one is given."""
    dtype = check_user_dtype(dtype, "arange")
    if dtype is None:
        dtype = dtypes.canonicalize_dtype(dtypes.result_type(*(x for x in (start, stop, step)
                                                        if x is not None)))
    start_v = _concrete_scalar(start, "arange: start")
    if stop is None and step is None:
        return lax.iota(dtype, max(int(np.ceil(start_v)), 0))
    stop_v = _concrete_scalar(stop, "arange: stop") if stop is not None else None
    step_v = _concrete_scalar(step, "arange: step") if step is not None else None
    if step_v is None and start_v == 0 and stop_v is not None:
        return lax.iota(dtype, max(int(np.ceil(stop_v)), 0))
    with np.errstate(over="ignore"):  # values beyond a float16's range become inf, as in JAX
        return Array(np.arange(start_v, stop_v, step_v).astype(dtype))


@_placed
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0, *,
             device: Any = None) -> Any:
    """``num`` evenly spaced samples from ``start`` to ``stop`` (arrays broadcast)."""
    num = static_int(num, "linspace: num")
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative")
    start, stop = ensure_arraylike("linspace", start, stop)
    dtype = check_user_dtype(dtype, "linspace") or to_inexact_dtype(dtypes.result_type(start, stop))
    comp = to_inexact_dtype(dtype)
    start, stop = (lax.convert_element_type(v, comp) for v in (start, stop))
    bounds = np.broadcast_shapes(aval(start).shape, aval(stop).shape)
    axis = canonicalize_axis(axis, len(bounds) + 1, "linspace")
    start_b, stop_b = (lax.broadcast_in_dim(v, bounds, tuple(
        range(len(bounds) - aval(v).ndim, len(bounds)))) for v in (start, stop))
    div = (num - 1) if endpoint else num
    shape = list(bounds)
    shape.insert(axis, 1)
    delta = lax.div(lax.sub(stop_b, start_b), lax.convert_element_type(max(div, 1), comp))
    if num > 1:
        real = np.dtype(dtypes.finfo(comp).dtype)
        iota_shape = [1] * len(bounds)
        iota_shape.insert(axis, div)
        step = lax.div(lax.reshape(lax.iota(real, div), tuple(iota_shape)),
                       lax.convert_element_type(div, real))
        step = lax.convert_element_type(step, comp)
        one = lax.convert_element_type(1, comp)
        out = lax.add(lax.mul(lax.reshape(start_b, tuple(shape)), lax.sub(one, step)),
                      lax.mul(lax.reshape(stop_b, tuple(shape)), step))
        if endpoint:
            out = lax.concatenate([out, lax.reshape(stop_b, tuple(shape))], axis)
    elif num == 1:
        out = lax.reshape(start_b, tuple(shape))
    else:
        shape[axis] = 0
        out = _filled(tuple(shape), 0, comp, False)
    if dtypes.is_integer(dtype) and not dtypes.is_integer(aval(out).dtype):
        out = lax.floor(out)
    out = lax.convert_element_type(out, dtype)
    return (out, lax.convert_element_type(delta, dtype)) if retstep else out


def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: Any = 10.0,
             dtype: Any = None, axis: int = 0) -> Any:
    """``base ** linspace(start, stop)``."""
    dtype = check_user_dtype(dtype, "logspace")
    comp = to_inexact_dtype(dtypes.result_type(start, stop) if dtype is None else dtype)
    lin = linspace(start, stop, num, endpoint=endpoint, dtype=comp, axis=axis)
    return lax.convert_element_type(power(lax.convert_element_type(base, comp), lin),
                                    dtype or comp)


def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None,
              axis: int = 0) -> Any:
    """Samples evenly spaced on a log scale from ``start`` to ``stop`` (same signs)."""
    dtype = check_user_dtype(dtype, "geomspace")
    start, stop = promote_dtypes_inexact(*ensure_arraylike("geomspace", start, stop))
    sgn = sign(start)
    lin = linspace(log(multiply(sgn, start)), log(multiply(sgn, stop)), num, endpoint=endpoint,
                   axis=axis)
    out = multiply(lax.expand_dims(sgn, (axis,)) if aval(sgn).ndim else sgn, exp(lin))
    return lax.convert_element_type(out, dtype or aval(out).dtype)


# --------------------------------------------------------------------------- matrices and grids

def _iotas(shape: tuple[int, int]) -> tuple[Any, Any]:
    i32 = dtypes.default_int_dtype()
    return lax.broadcasted_iota(i32, shape, 0), lax.broadcasted_iota(i32, shape, 1)


def _tri_mask(n: int, m: int, k: Any) -> Any:
    """Boolean (n, m) mask of ``j <= i + k``."""
    i, j = _iotas((n, m))
    return lax.ge(lax.add(i, lax.convert_element_type(k, aval(i).dtype)), j)


@_placed
def eye(N: int, M: int | None = None, k: Any = 0, dtype: Any = None, *,
        device: Any = None) -> Any:
    """Ones on the ``k``-th diagonal, zeros elsewhere."""
    n = static_int(N, "eye: N")
    m = n if M is None else static_int(M, "eye: M")
    if n < 0 or m < 0:
        raise ValueError(f"eye: negative dimensions are not allowed, got N={n}, M={m}")
    i, j = _iotas((n, m))
    mask = lax.eq(lax.add(i, lax.convert_element_type(k, aval(i).dtype)), j)
    return lax.convert_element_type(mask, check_user_dtype(dtype, "eye")
                                    or dtypes.default_float_dtype())


def identity(n: int, dtype: Any = None) -> Any:
    """The ``n`` x ``n`` identity matrix."""
    return eye(n, dtype=dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Any:
    """Ones at and below the ``k``-th diagonal."""
    n = static_int(N, "tri: N")
    m = n if M is None else static_int(M, "tri: M")
    return lax.convert_element_type(_tri_mask(n, m, k), check_user_dtype(dtype, "tri")
                                    or dtypes.default_float_dtype())


def _masked_triangle(fname: str, m: Any, k: int, lower: bool) -> Any:
    m = ensure_arraylike(fname, m)
    shape = aval(m).shape
    if len(shape) < 2:
        raise ValueError(f"{fname}: input array must be at least 2-d, got shape {shape}")
    mask = _tri_mask(shape[-2], shape[-1], k if lower else k - 1)
    zero = lax.convert_element_type(0, aval(m).dtype)
    return lax.select(mask, m, zero) if lower else lax.select(mask, zero, m)


def tril(m: Any, k: int = 0) -> Any:
    """``m`` with the elements above the ``k``-th diagonal zeroed (batched over leading dims)."""
    return _masked_triangle("tril", m, k, True)


def triu(m: Any, k: int = 0) -> Any:
    """``m`` with the elements below the ``k``-th diagonal zeroed."""
    return _masked_triangle("triu", m, k, False)


def diag(v: Any, k: int = 0) -> Any:
    """The ``k``-th diagonal of a matrix, or a matrix with ``v`` on its ``k``-th diagonal."""
    v = ensure_arraylike("diag", v)
    k = static_int(k, "diag: k")
    shape = aval(v).shape
    if len(shape) == 1:
        n = shape[0] + abs(k)
        zero = lax.convert_element_type(0, aval(v).dtype)
        padded = lax.pad(v, zero, ((max(0, k), max(0, -k), 0),))
        return where(eye(n, k=k, dtype=bool), padded, zero)
    if len(shape) == 2:
        return diagonal(v, offset=k)
    raise ValueError(f"diag: input must be 1-d or 2-d, got shape {shape}")


def diagflat(v: Any, k: int = 0) -> Any:
    """A 2-d array with the flattened ``v`` on its ``k``-th diagonal."""
    v = ensure_arraylike("diagflat", v)
    return diag(lax.reshape(v, (aval(v).size,)), k)


def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> list:
    """Coordinate matrices from 1-d coordinate vectors (``indexing`` 'xy' or 'ij')."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    args = [ensure_arraylike("meshgrid", x) for x in xi]
    for i, a in enumerate(args):
        if aval(a).ndim != 1:
            raise ValueError(f"meshgrid: argument {i} must be 1-d, got shape {aval(a).shape}")
    sizes = [aval(a).shape[0] for a in args]
    if indexing == "xy" and len(args) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, a in enumerate(args):
        dim = {0: 1, 1: 0}.get(i, i) if indexing == "xy" and len(args) >= 2 else i
        if sparse:
            shape = [1] * len(args)
            shape[dim] = aval(a).shape[0]
            out.append(lax.reshape(a, tuple(shape)))
        else:
            out.append(lax.broadcast_in_dim(a, tuple(sizes), (dim,)))
    return out


def indices(dimensions: Sequence[int], dtype: Any = None, sparse: bool = False) -> Any:
    """An array (or tuple when sparse) of index grids for an array of shape ``dimensions``."""
    dims = hashable_shape(dimensions, "indices", "dimensions")
    dtype = check_user_dtype(dtype, "indices") or dtypes.default_int_dtype()
    outs = []
    for i, n in enumerate(dims):
        if sparse:
            shape = tuple(n if j == i else 1 for j in range(len(dims)))
            outs.append(lax.broadcasted_iota(dtype, shape, i))
        else:
            outs.append(lax.broadcasted_iota(dtype, dims, i))
    if sparse:
        return tuple(outs)
    if not outs:
        return _filled((0,), 0, dtype, False)
    return lax.concatenate([lax.expand_dims(o, (0,)) for o in outs], 0)


def _static_indices(arrays: tuple) -> tuple:
    return tuple(Array(np.asarray(a, dtypes.default_int_dtype())) for a in arrays)


def tril_indices(n: int, k: int = 0, m: int | None = None) -> tuple:
    """Row and column indices of the lower triangle of an (n, m) array."""
    return _static_indices(np.tril_indices(n, k, m))


def triu_indices(n: int, k: int = 0, m: int | None = None) -> tuple:
    """Row and column indices of the upper triangle of an (n, m) array."""
    return _static_indices(np.triu_indices(n, k, m))


def tril_indices_from(arr: Any, k: int = 0) -> tuple:
    """``tril_indices`` for the shape of ``arr``'s last two axes."""
    shape = aval(ensure_arraylike("tril_indices_from", arr)).shape
    return tril_indices(shape[-2], k, shape[-1])


def triu_indices_from(arr: Any, k: int = 0) -> tuple:
    """``triu_indices`` for the shape of ``arr``'s last two axes."""
    shape = aval(ensure_arraylike("triu_indices_from", arr)).shape
    return triu_indices(shape[-2], k, shape[-1])


def diag_indices(n: int, ndim: int = 2) -> tuple:
    """Indices of the main diagonal of an ``ndim``-dimensional array of side ``n``."""
    return _static_indices(np.diag_indices(n, ndim))


def diag_indices_from(arr: Any) -> tuple:
    """``diag_indices`` for ``arr``, whose dimensions must all be equal."""
    shape = aval(ensure_arraylike("diag_indices_from", arr)).shape
    if len(set(shape)) != 1:
        raise ValueError(f"diag_indices_from: all dimensions must be equal, got shape {shape}")
    return diag_indices(shape[0], len(shape))


__all__ = ["array", "asarray", "copy", "zeros", "ones", "empty", "full", "zeros_like",
           "ones_like", "empty_like", "full_like", "arange", "linspace", "logspace",
           "geomspace", "eye", "identity", "tri", "tril", "triu", "diag", "diagflat",
           "meshgrid", "indices", "tril_indices", "triu_indices", "tril_indices_from",
           "triu_indices_from", "diag_indices", "diag_indices_from"]
