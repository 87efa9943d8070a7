"""``fungrad.dlpack`` (``jax.dlpack``): arrays shared with other libraries through DLPack.

``from_dlpack(x)`` takes any object with ``__dlpack__`` and ``__dlpack_device__`` (a NumPy
array, a PyTorch or CuPy tensor, a ``fungrad.Array``) and returns a ``fungrad.Array`` on
the same memory, without a copy: NumPy imports CPU tensors, CuPy GPU ones. The other way,
``fungrad.Array`` has ``__dlpack__``, so ``torch.from_dlpack(x)`` and ``np.from_dlpack(x)``
share the array's buffer.

As with JAX, arrays are immutable and DLPack cannot say so: writing to a shared buffer
from the other library changes the ``fungrad.Array`` too.

Differences from JAX: bfloat16 is not exchanged (NumPy's and CuPy's DLPack support has no
bfloat16, and fungrad stores arrays in them), so ``is_supported_dtype`` is False for it;
the other dtypes JAX exchanges are supported.

Examples:
    >>> import numpy as np, fungrad.dlpack
    >>> host = np.arange(3.0, dtype=np.float32)
    >>> x = fungrad.dlpack.from_dlpack(host)
    >>> x, np.shares_memory(np.asarray(x), host)
    (Array([0., 1., 2.], dtype=float32), True)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import backends
from fungrad._core import dtypes
from fungrad._core.array import Array, device_put
from fungrad._core.namespace import public_dir

__all__ = ["from_dlpack", "is_supported_dtype"]
__dir__ = public_dir(__all__)

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
