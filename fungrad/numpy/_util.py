"""Argument checking, dtype/shape promotion and axis handling shared by ``fungrad.numpy``.

Every public function funnels its array arguments through ``ensure_arraylike`` or one
of the ``promote_args*`` helpers, so dtype promotion (JAX's lattice, weak types
included) and broadcasting errors are decided in exactly one place.
"""
from __future__ import annotations

import operator
import warnings
from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import core, dtypes, fpstate, util
from fungrad._core.array import Array
from fungrad._core.core import Tracer
from fungrad.lax._ops import NATIVE_INEXACT, intn_error
from fungrad.lax._prim import as_operand
from fungrad.config import config

_SCALARS = (bool, int, float, complex)
_ARRAYLIKE = (Array, Tracer, np.ndarray, np.generic) + _SCALARS


def check_arraylike(fname: str, *args: Any) -> None:
    """Raise a ``TypeError`` naming ``fname`` unless every arg is an array or a scalar."""
    for i, a in enumerate(args):
        if not isinstance(a, _ARRAYLIKE):
            raise TypeError(f"{fname} requires ndarray or scalar arguments, got "
                            f"{type(a).__name__} at position {i}. Convert lists and tuples "
                            "with fungrad.numpy.asarray first.")


def ensure_arraylike(fname: str, *args: Any) -> Any:
    """Check ``args`` and convert them to fungrad arrays (one value for one arg)."""
    if len(args) == 1 and type(args[0]) is Array:
        return args[0]
    check_arraylike(fname, *args)
    out = [as_operand(a) for a in args]
    return out[0] if len(out) == 1 else out


def aval(x: Any) -> core.ShapedArray:
    """The abstract value (shape, dtype, weak type) of an array, tracer or scalar."""
    return core.get_aval(x)


# --------------------------------------------------------------------------- dtypes

_TO_INEXACT = {np.dtype(k): np.dtype("float32") for k in
               ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32")}
_TO_INEXACT.update({np.dtype("int64"): np.dtype("float64"),
                    np.dtype("uint64"): np.dtype("float64")})


def to_inexact_dtype(dtype: np.dtype) -> np.dtype:
    """The floating dtype an integer or bool dtype computes in (JAX: int32 -> float32). As
    in JAX's table, int4 and uint4 compute in float32 and the 2-bit integers stay as they
    are (``x / y`` divides them as integers; ``sqrt`` refuses them)."""
    dt = np.dtype(dtype)
    inexact = _TO_INEXACT.get(dt) or (
        dtypes.float32 if dt in dtypes.intn and dtypes.bit_width(dt) == 4 else dt)
    return dtypes.canonicalize_dtype(inexact)


def to_numeric_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype("int32") if dtype == np.bool_ else dtype


def to_complex_dtype(dtype: np.dtype) -> np.dtype:
    real = to_inexact_dtype(dtype)
    return dtypes.canonicalize_dtype(np.complex128 if real in (np.float64, np.complex128)
                                     else np.complex64)


def promote_integer_dtype(dtype: np.dtype, fname: str) -> np.dtype:
    """Bools and small integers accumulate in the default integer width (sum, prod). Not
    the sub-byte integers: JAX fails on them here (NumPy has no ``iinfo`` of int4), so
    ``fname`` refuses them with an error that says to convert first."""
    if dtype == np.bool_:
        return dtypes.default_int_dtype()
    if dtype in dtypes.intn:
        raise intn_error(fname, dtype)
    if dtype.kind == "u" and dtype.itemsize < dtypes.default_int_dtype().itemsize:
        return dtypes.canonicalize_dtype(np.uint64)
    if dtype.kind == "i" and dtype.itemsize < dtypes.default_int_dtype().itemsize:
        return dtypes.default_int_dtype()
    return dtype


def check_user_dtype(dtype: Any, fname: str) -> np.dtype | None:
    """Canonicalise a user-given ``dtype=`` argument (None stays None)."""
    if dtype is None:
        return None
    dt = getattr(dtype, "dtype", None)
    try:
        return dtypes.canonicalize_dtype(dt if isinstance(dt, np.dtype) else dtype)
    except TypeError as e:
        raise TypeError(f"{fname}: invalid dtype {dtype!r}: {e}") from e


def preferred_dtype(preferred_element_type: Any, dtype: np.dtype, fname: str) -> np.dtype | None:
    """A contraction's ``preferred_element_type`` for operands of ``dtype``, canonicalised.
    Sub-byte integer operands refuse another result type: JAX's CPU backend cannot convert
    them inside a contraction (its compiler rejects the program)."""
    pref = check_user_dtype(preferred_element_type, fname)
    if pref is not None and pref != dtype and dtype in dtypes.intn:
        raise intn_error(f"{fname} with preferred_element_type={pref.name}", dtype)
    return pref


def _convert(x: Any, dtype: np.dtype, weak: bool) -> Any:
    if isinstance(x, (np.ndarray, np.generic)):  # 64-bit values to 32 bits first, as asarray
        x = as_operand(x)
    dtypes.check_int_operand(x)
    return lax.convert_element_type(x, dtype, weak)


def promote_dtypes(*args: Any) -> list:
    """Convert ``args`` to their common dtype (JAX promotion, weak types kept)."""
    if len(args) == 1:
        return [as_operand(args[0])]
    dt, weak = dtypes.result_type(*args, return_weak_type_flag=True)
    return [_convert(a, dt, weak) for a in args]


def promote_dtypes_inexact(*args: Any) -> list:
    """Like ``promote_dtypes`` but integers and bools become the default float."""
    dt, weak = dtypes.result_type(*args, return_weak_type_flag=True)
    return [_convert(a, to_inexact_dtype(dt), weak) for a in args]


def promote_dtypes_numeric(*args: Any) -> list:
    """Like ``promote_dtypes`` but bools become int32."""
    dt, weak = dtypes.result_type(*args, return_weak_type_flag=True)
    return [_convert(a, to_numeric_dtype(dt), weak) for a in args]


def promote_dtypes_complex(*args: Any) -> list:
    dt, weak = dtypes.result_type(*args, return_weak_type_flag=True)
    return [_convert(a, to_complex_dtype(dt), weak) for a in args]


# --------------------------------------------------------------------------- shapes

def broadcast_shapes_or_error(fname: str, *shapes: Sequence[int]) -> tuple[int, ...]:
    """NumPy broadcasting of ``shapes``; a ``TypeError`` naming ``fname`` and the shapes.
    Arrays of different ranks (0-d aside) broadcast as ``config.numpy_rank_promotion``
    allows."""
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return tuple(shapes[0])
    try:
        out = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise TypeError(f"{fname} got incompatible shapes for broadcasting: "
                        f"{', '.join(str(tuple(s)) for s in shapes)}.") from None
    if config.numpy_rank_promotion != "allow" and len({len(s) for s in shapes if len(s)}) > 1:
        _rank_promotion(fname, shapes)
    return out


def _rank_promotion(fname: str, shapes: Sequence[Sequence[int]]) -> None:
    """Warn or raise, as ``config.numpy_rank_promotion`` says, about ``fname`` broadcasting
    arrays of different ranks (JAX's ``jax_numpy_rank_promotion``)."""
    listed = " ".join(str(tuple(s)) for s in shapes)
    if config.numpy_rank_promotion == "raise":
        raise ValueError(f"{fname}: operands could not be broadcast together with shapes "
                         f"{listed} and with the config option numpy_rank_promotion='raise': "
                         "expand the lower-rank operand explicitly (e.g. x[None, :]) or allow "
                         "rank promotion")
    warnings.warn(f"{fname}: following NumPy's automatic rank promotion on shapes {listed}; set "
                  "the config option numpy_rank_promotion to 'allow' to disable this warning",
                  stacklevel=3)


def _check_broadcast(fname: str, args: Sequence[Any]) -> list:
    if len(args) > 1:
        broadcast_shapes_or_error(fname, *(np.shape(a) if not hasattr(a, "aval") else a.aval.shape
                                           for a in args))
    return list(args)


def _promoted_eagerly(args: tuple, dtype_ok: Any, bare_scalars: bool = False) -> list | None:
    """The eager hot path of promotion, or None when the general path must decide.

    Covers one ``Array``; two ``Array``s of one dtype whose shapes broadcast trivially
    (equal, or one 0-d); and an ``Array`` of a native float dtype with a Python int or
    float, which JAX's weak typing converts to the array's dtype and weak type.
    ``dtype_ok`` filters the common dtype (e.g. inexact only, for ``true_divide``).
    ``bare_scalars=True`` leaves a second-operand Python scalar as it is, for callers that
    hand the pair straight to a ``lax`` binary op (whose eager path takes it as NumPy would).
    """
    if len(args) == 1:
        x = args[0]
        return [x] if type(x) is Array and dtype_ok(x._value.dtype) else None
    if len(args) != 2:
        return None
    x, y = args
    if type(x) is Array:
        dt = x._value.dtype
        if type(y) is Array:
            xv, yv = x._value, y._value
            if dt != yv.dtype or not (xv.shape == yv.shape or not xv.ndim or not yv.ndim):
                return None
            return [x, y] if dtype_ok(dt) else None
        if type(y) in (int, float) and dt in NATIVE_INEXACT and dtype_ok(dt) \
                and _plain_scalar(y):
            return [x, y if bare_scalars else _weak_scalar(y, dt, x.weak_type)]
        return None
    if type(y) is Array and type(x) in (int, float):
        dt = y._value.dtype
        if dt in NATIVE_INEXACT and dtype_ok(dt) and _plain_scalar(x):
            return [_weak_scalar(x, dt, y.weak_type), y]
    return None


def _plain_scalar(v: int | float) -> bool:
    """A float, or an int within int32 (a larger one takes the general path, which refuses
    it as JAX does)."""
    return type(v) is float or -2**31 <= v < 2**31


def _weak_scalar(v: int | float, dtype: np.dtype, weak: bool) -> Array:
    """Python number ``v`` as a 0-d array of the float ``dtype`` it meets; one beyond the
    dtype's range becomes inf silently, as in JAX (``maximum(x_f16, 1e5)``)."""
    return Array(fpstate.silently(dtype.type, v), weak)


def _any_dtype(dtype: np.dtype) -> bool:
    return True


def promote_args(fname: str, *args: Any, bare_scalars: bool = False) -> list:
    """Check, promote dtypes and verify broadcast-compatibility of ``args``
    (``bare_scalars``: see ``_promoted_eagerly``)."""
    fast = _promoted_eagerly(args, _any_dtype, bare_scalars)
    if fast is not None:
        return fast
    check_arraylike(fname, *args)
    return _check_broadcast(fname, promote_dtypes(*args))


def promote_args_inexact(fname: str, *args: Any, bare_scalars: bool = False) -> list:
    """``promote_args`` with integers and bools promoted to the default float."""
    fast = _promoted_eagerly(args, dtypes.is_inexact, bare_scalars)
    if fast is not None:
        return fast
    check_arraylike(fname, *args)
    return _check_broadcast(fname, promote_dtypes_inexact(*args))


def promote_args_numeric(fname: str, *args: Any) -> list:
    """``promote_args`` with bools promoted to int32."""
    fast = _promoted_eagerly(args, lambda dt: dt != np.bool_)
    if fast is not None:
        return fast
    check_arraylike(fname, *args)
    return _check_broadcast(fname, promote_dtypes_numeric(*args))


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    """Broadcast ``x`` to ``shape`` (NumPy rules, trailing alignment)."""
    x = as_operand(x)
    in_shape = aval(x).shape
    shape = tuple(shape)
    if in_shape == shape:
        return x
    lead = len(shape) - len(in_shape)
    if lead < 0 or any(s not in (1, t) for s, t in zip(in_shape, shape[lead:])):
        raise ValueError(f"broadcast_to: cannot broadcast an array of shape {in_shape} to "
                         f"shape {shape}")
    return lax.broadcast_in_dim(x, shape, tuple(range(lead, len(shape))))


# --------------------------------------------------------------------------- axes

def static_int(x: Any, what: str) -> int:
    """A static Python int from ``x`` (what ``operator.index`` accepts: NumPy integers,
    integer 0-d arrays), with an error naming ``what`` when it is traced, a float or a string."""
    if type(x) is int:
        return x
    if isinstance(x, Tracer):
        x = x._concrete(what)
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"{what} must be a static integer, got {x!r} of type "
                        f"{type(x).__name__}") from None


def canonicalize_axis(axis: Any, ndim: int, fname: str) -> int:
    """A non-negative axis of an ``ndim``-d array for ``fname`` (see ``util.canonicalize_axis``);
    a traced axis raises ``ConcretizationTypeError`` naming ``fname``."""
    if isinstance(axis, Tracer):
        axis = axis._concrete(f"{fname}: axis")
    return util.canonicalize_axis(axis, ndim, fname, scalar_ok=False)


def canonicalize_axes(axis: Any, ndim: int, fname: str) -> tuple[int, ...]:
    """``None`` -> all axes; an int or a sequence -> sorted unique non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 and not isinstance(axis, (tuple, list)) else tuple(axis)
    out = tuple(canonicalize_axis(a, ndim, fname) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{fname}: duplicate value in 'axis': {axis}")
    return out


def static_indices_along(fname: str, arr: Any, obj: Any, axis: Any) -> tuple[Any, int, Any]:
    """For ``insert``/``delete``: ``arr`` (flattened when ``axis`` is None), the canonical
    axis, and ``obj`` (a slice or static indices) as a NumPy array of indices along it."""
    if axis is None:
        arr = lax.reshape(arr, (aval(arr).size,))
        axis = 0
    axis = canonicalize_axis(axis, aval(arr).ndim, fname)
    if isinstance(obj, slice):
        return arr, axis, np.arange(aval(arr).shape[axis])[obj]
    if isinstance(obj, Tracer):
        obj = obj._concrete(f"{fname}: obj (indices must be static)")
    return arr, axis, np.asarray(obj)


def truthy(x: Any) -> Any:
    """``x != 0`` as booleans, as JAX reads a condition: a complex value is true when either
    part is nonzero (a cast to bool would read its real part alone)."""
    x = as_operand(x)
    return x if aval(x).dtype == np.bool_ else lax.ne(x, scalar_like(0, x))


def where(condition: Any, x: Any, y: Any) -> Any:
    """Elementwise select with promotion of ``x`` and ``y`` (the core of ``jnp.where``)."""
    condition = truthy(condition)
    x, y = promote_dtypes(x, y)
    broadcast_shapes_or_error("where", aval(condition).shape, aval(x).shape, aval(y).shape)
    return lax.select(condition, x, y)


def full_like(x: Any, value: Any) -> Any:
    """``value`` broadcast to ``x``'s shape and dtype, keeping ``x``'s weak type (JAX's
    ``lax.full_like`` with no dtype)."""
    a = aval(x)
    return lax.broadcast_in_dim(lax.convert_element_type(value, a.dtype, a.weak_type),
                                a.shape, ())


def scalar_like(value: Any, x: Any) -> Any:
    """``value`` as a 0-d array of ``x``'s dtype, weakly typed iff ``x`` is a weakly typed
    scalar (JAX's ``lax._const``), so ``x * scalar_like(c, x)`` keeps ``x``'s weak type."""
    a = aval(x)
    return lax.convert_element_type(value, a.dtype, a.weak_type and not a.shape)
