"""Arrays on the memory of other libraries' arrays through DLPack: the implementation of
``fungrad.dlpack`` (``jax.dlpack``) and ``fungrad.numpy.from_dlpack``, kept in the core so
``fungrad.numpy`` needs no library above it. See ``fungrad/dlpack.py`` for the user's view.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import backends
from fungrad._core import dtypes
from fungrad._core.array import Array, device_put

_CPU, _CUDA, _CUDA_HOST = 1, 2, 3  # DLPack's device types fungrad can read

SUPPORTED_DTYPES = frozenset(np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128))


def is_supported_dtype(dtype: Any) -> bool:
    """Whether arrays of ``dtype`` can be exchanged through DLPack (``jax.dlpack``'s).

    Raises:
        TypeError: ``dtype`` is None (NumPy would read it as float64).
    """
    if dtype is None:
        raise TypeError(f"Expected a string or dtype-like object; got {dtype=}")
    return dtypes.np_dtype(dtype) in SUPPORTED_DTYPES


def from_dlpack(external_array: Any, device: Any = None, copy: bool | None = None) -> Array:
    """A ``fungrad.Array`` on the memory of ``external_array`` (``jax.dlpack.from_dlpack``).

    Args:
        external_array: an object with ``__dlpack__`` and ``__dlpack_device__`` methods, on
            the CPU or a CUDA GPU.
        device: the device to put the result on (a ``Device``, ``"gpu"``, ...), committed
            to it; None keeps it on the device it comes from, committed there as in JAX.
            Another device than the source's needs a copy.
        copy: True always copies, False never does (an error where a copy is needed, such
            as a dtype that must be canonicalised: float64 without x64), None copies only
            where needed.

    Raises:
        TypeError: ``external_array`` has no DLPack methods, or is on another kind of device.
        ValueError: ``copy=False`` where a copy is needed.
    """
    if not hasattr(external_array, "__dlpack__") or \
            not hasattr(external_array, "__dlpack_device__"):
        raise TypeError("The array passed to from_dlpack must have __dlpack__ and "
                        "__dlpack_device__ methods.")
    device_type, device_id = external_array.__dlpack_device__()
    if device_type in (_CPU, _CUDA_HOST):
        buffer, source = np.from_dlpack(external_array, copy=copy), backends.default_cpu()
    elif device_type == _CUDA:
        buffer = backends.cupy_module().from_dlpack(external_array)
        buffer, source = (buffer.copy() if copy else buffer), backends.Device("gpu", device_id)
    else:
        raise TypeError(f"Array passed to from_dlpack is on an unsupported device type "
                        f"(DLDeviceType: {device_type}, array: {external_array!r})")
    target = source if device is None else backends.as_device(device, "from_dlpack")
    if target != source and copy is False:
        raise ValueError(f"from_dlpack: device={target} requires a copy since the source "
                         f"device is {source}, but copy=False")
    canonical = dtypes.canonicalize_dtype(buffer.dtype)
    if canonical != buffer.dtype:
        if copy is False:
            raise ValueError(f"from_dlpack: {buffer.dtype} arrays are stored as {canonical} "
                             "(enable x64 to keep them), which needs a copy, but copy=False")
        buffer = buffer.astype(canonical)
    return device_put(Array(buffer), target)
