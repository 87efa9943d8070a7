"""Dtype names and dtype queries of ``jax.numpy``.

``jnp.float32`` and friends are *scalar constructors*: classes whose ``dtype``
attribute is the NumPy dtype (so ``np.dtype(jnp.float32)`` works) and which,
when called, return a 0-d fungrad array rather than a NumPy scalar.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad._core import dtypes
from fungrad.numpy._creation import asarray

# The abstract scalar hierarchy is NumPy's (bfloat16 is special-cased in issubdtype).
from numpy import (bool_ as _np_bool, character, complexfloating, flexible, floating,  # noqa: F401
                   generic, inexact, integer, number, signedinteger, unsignedinteger)

float0 = dtypes.float0
object_ = np.object_  # a name only, as in jax.numpy: arrays of objects are not supported
ComplexWarning = np.exceptions.ComplexWarning


class _ScalarMeta(type):
    """Metaclass of the scalar constructors (``jnp.float32(1.0)`` is a 0-d array)."""
    dtype: np.dtype

    @property
    def __numpy_dtype__(cls) -> np.dtype:
        return cls.dtype

    def __hash__(cls) -> int:
        return hash(cls.dtype.type)

    def __eq__(cls, other: Any) -> bool:
        return cls is other or cls.dtype.type == other

    def __ne__(cls, other: Any) -> bool:
        return not cls == other

    def __call__(cls, x: Any) -> Any:
        return asarray(x, dtype=cls.dtype)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.dtype.type)


def _scalar_type(np_type: Any) -> _ScalarMeta:
    name = np.dtype(np_type).name
    return _ScalarMeta(name, (object,), {
        "dtype": np.dtype(np_type), "__module__": "fungrad.numpy",
        "__doc__": f"Scalar constructor of dtype {name}: returns a 0-d fungrad array."})


bool_ = _scalar_type(np.bool_)
int8, int16, int32, int64 = (_scalar_type(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, uint16, uint32, uint64 = (_scalar_type(t) for t in
                                 (np.uint8, np.uint16, np.uint32, np.uint64))
float16, float32, float64 = (_scalar_type(t) for t in (np.float16, np.float32, np.float64))
complex64, complex128 = _scalar_type(np.complex64), _scalar_type(np.complex128)
single, double, csingle, cdouble = float32, float64, complex64, complex128
int_, uint, float_, complex_ = int64, uint64, float64, complex128


def _as_np_dtype(x: Any) -> Any:
    """A NumPy dtype for dtype-likes; abstract scalar types (np.floating) pass through."""
    if isinstance(x, type) and issubclass(x, np.generic) and x in _ABSTRACT:
        return x
    dt = getattr(x, "dtype", None)
    return dt if isinstance(dt, np.dtype) else dtypes.np_dtype(x)


_ABSTRACT = (generic, number, inexact, floating, complexfloating, integer, signedinteger,
             unsignedinteger, character, flexible)


def issubdtype(arg1: Any, arg2: Any) -> bool:
    """``numpy.issubdtype`` that knows bfloat16 is a floating type, and places extended
    dtypes (typed PRNG keys' ``key<fry>``) under ``fungrad.dtypes.extended`` and
    ``prng_key``, and nowhere in NumPy's hierarchy, as JAX does."""
    ext_1, ext_2 = dtypes.extended_scalar_type(arg1), dtypes.extended_scalar_type(arg2)
    if ext_1 is not None or ext_2 is not None:
        if ext_1 is None:
            return False
        if isinstance(arg2, type):
            return issubclass(ext_1, arg2)
        return arg1 == arg2 if ext_2 is not None else False
    a, b = _as_np_dtype(arg1), _as_np_dtype(arg2)
    if isinstance(b, np.dtype):
        return a == b
    return dtypes.issubdtype(a, b)


_KINDS = {
    "bool": lambda d: d == np.bool_,
    "signed integer": lambda d: dtypes.kind(d) == "i",
    "unsigned integer": lambda d: dtypes.kind(d) == "u",
    "integral": dtypes.is_integer,
    "real floating": dtypes.is_float,
    "complex floating": lambda d: d.kind == "c",
    "numeric": lambda d: dtypes.kind(d) in "iufc",
}


def isdtype(dtype: Any, kind: Any) -> bool:
    """Array-API ``isdtype``: is ``dtype`` of ``kind`` (a name, a dtype or a tuple of them)."""
    d = np.dtype(dtype)
    for k in kind if isinstance(kind, tuple) else (kind,):
        if isinstance(k, str):
            if k not in _KINDS:
                raise ValueError(f"isdtype: unknown kind {k!r}; expected one of {sorted(_KINDS)}")
            if _KINDS[k](d):
                return True
        elif d == np.dtype(k):
            return True
    return False


def _dtype_and_weak(x: Any) -> tuple[np.dtype, bool]:
    """Like ``dtypes.dtype_and_weak``, with Python *types* weak as in JAX."""
    if x is int or x is float or x is complex:
        return dtypes.canonicalize_dtype(x), True
    if isinstance(x, (type, str, np.dtype)):  # dtype specifiers: np.int8, jnp.float32, 'int8'
        return dtypes.canonicalize_dtype(_as_np_dtype(x)), False
    return dtypes.dtype_and_weak(x)


def result_type(*args: Any) -> np.dtype:
    """The dtype JAX's promotion rules give ``args`` (arrays, scalars or dtypes)."""
    return result_type_and_weak(*args)[0]


def result_type_and_weak(*args: Any) -> tuple[np.dtype, bool]:
    """``result_type`` and whether the result is weakly typed (only Python scalars and
    weak arrays promoted together are)."""
    return dtypes.result_type(*(_Typed(*_dtype_and_weak(a)) for a in args),
                              return_weak_type_flag=True)


class _Typed:
    """A (dtype, weak) pair in the form ``dtypes.result_type`` reads."""
    __slots__ = ("dtype", "weak_type")

    def __init__(self, dtype: np.dtype, weak_type: bool) -> None:
        self.dtype, self.weak_type = dtype, weak_type


def promote_types(a: Any, b: Any) -> np.dtype:
    """The dtype a binary operation casts two dtypes to, not canonicalised
    (``jax.numpy.promote_types``: ``int32`` with ``int64`` is ``int64`` even with x64 off;
    Python's ``int``, ``float`` and ``complex`` are weak)."""
    return dtypes.promote_types(a, b)


def can_cast(from_: Any, to: Any, casting: str = "safe") -> bool:
    """``numpy.can_cast`` on dtypes (bfloat16 understood through ml_dtypes)."""
    return bool(np.can_cast(_as_np_dtype(from_), _as_np_dtype(to), casting))


def finfo(dtype: Any) -> Any:
    """Machine limits of a floating dtype (bfloat16 included)."""
    return dtypes.finfo(_as_np_dtype(dtype))


def iinfo(int_type: Any) -> Any:
    """Machine limits of an integer dtype."""
    return dtypes.iinfo(_as_np_dtype(int_type))


def iscomplexobj(x: Any) -> bool:
    """Whether ``x`` has a complex dtype."""
    return _dtype_and_weak(x)[0].kind == "c" if x is not None else False


def isrealobj(x: Any) -> bool:
    """Whether ``x`` has a non-complex dtype."""
    return not iscomplexobj(x)


ML_DTYPE_NAMES = ("bfloat16", *dtypes.SMALL_FLOAT_NAMES, *dtypes.INTN_NAMES)


def __getattr__(name: str) -> Any:
    """``bfloat16``, the small floats (``float8_e4m3fn``, ...) and the sub-byte integers
    (``int4``, ...), made on first use since they load ml_dtypes (see
    ``fungrad._core.dtypes``; ``fungrad.numpy`` forwards the names here). A type the
    installed ml_dtypes lacks is not there, as in JAX. ``dtype`` is ``numpy.dtype``, given
    out once ml_dtypes has registered its names, so ``jnp.dtype('int4')`` works as in JAX."""
    if name == "dtype":
        dtypes.load_ml_dtypes()
        globals()[name] = np.dtype
        return np.dtype
    ml_dtypes = dtypes.load_ml_dtypes() if name in ML_DTYPE_NAMES else None
    if ml_dtypes is None or not hasattr(ml_dtypes, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = scalar = _scalar_type(getattr(ml_dtypes, name))
    return scalar


__all__ = ["bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128", "single",
           "double", "csingle", "cdouble", "int_", "uint", "float_", "complex_",
           "generic", "number", "inexact", "floating", "complexfloating", "integer",
           "signedinteger", "unsignedinteger", "character", "flexible", "issubdtype",
           "isdtype", "result_type", "promote_types", "can_cast", "finfo", "iinfo",
           "iscomplexobj", "isrealobj", "object_", "ComplexWarning"]
