"""``fungrad.dtypes`` (``jax.dtypes``): dtype utilities for code written against JAX.

``canonicalize_dtype`` gives the dtype fungrad stores (64-bit types become 32-bit ones unless
x64 is enabled), ``result_type`` applies JAX's promotion lattice (weak Python scalars
included), ``float0`` is the dtype of the tangents of integer values, ``extended`` and
``prng_key`` are the abstract types of dtypes that are not NumPy's (typed PRNG keys):
``issubdtype(key.dtype, prng_key)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad._core import dtypes as _dtypes
from fungrad._core.namespace import public_dir
from fungrad.errors import TypePromotionError
from fungrad.numpy._dtypes import finfo, iinfo, issubdtype, result_type_and_weak

__all__ = ["TypePromotionError", "bfloat16",  # noqa: F822  (bfloat16: __getattr__, lazily)
           "canonicalize_dtype", "extended", "finfo", "float0", "iinfo", "issubdtype",
           "itemsize_bits", "prng_key", "result_type", "scalar_type_of"]
__dir__ = public_dir(__all__)

float0 = _dtypes.float0
extended = _dtypes.extended
prng_key = _dtypes.prng_key


def canonicalize_dtype(dtype: Any, allow_extended_dtype: bool = False) -> np.dtype:
    """The dtype an array of ``dtype`` has in fungrad (``float64`` is ``float32`` without x64;
    Python types give the default dtypes)."""
    return _dtypes.canonicalize_dtype(_dtypes.np_dtype(dtype) if isinstance(dtype, str)
                                      else dtype)


def result_type(*args: Any, return_weak_type_flag: bool = False) -> Any:
    """The dtype JAX's promotion rules give ``args`` (arrays, scalars or dtypes); with
    ``return_weak_type_flag`` also whether it is weak (Python scalars only)."""
    dtype, weak = result_type_and_weak(*args)
    return (dtype, weak) if return_weak_type_flag else dtype


def scalar_type_of(x: Any) -> type:
    """The Python scalar type of ``x``'s kind: ``bool``, ``int``, ``float`` or ``complex``."""
    dtype = result_type(x)
    if dtype == np.bool_:
        return bool
    if _dtypes.is_integer(dtype):
        return int
    return complex if dtype.kind == "c" else float


def itemsize_bits(dtype: Any) -> int:
    """Bits per element of ``dtype`` (a ``bool`` takes a byte; ``int4`` takes 4 bits, as
    XLA packs it, though a NumPy array gives it a byte)."""
    return _dtypes.bit_width(_dtypes.np_dtype(dtype))


def __getattr__(name: str) -> Any:
    """``bfloat16``, loaded with ml_dtypes on first use (as ``fungrad.numpy.bfloat16``)."""
    if name != "bfloat16":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _dtypes.load_ml_dtypes().bfloat16
