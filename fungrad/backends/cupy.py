"""The CuPy (GPU) backend: CuPy with fungrad's replacements, as the ``xp`` of device buffers.

Imported only once a CuPy buffer exists (``backends.xp_of``); ``import fungrad`` never
imports it. ``xp`` is CuPy wrapped by ``namespace.device_namespace``: scatter with
duplicate indices through ``cupyx.scatter_add``/``scatter_max``/``scatter_min`` and, for
``multiply``, a compare-and-swap kernel (``cuda_source.scatter_multiply_source``; dtypes it
does not cover are multiplied on the host), NumPy's ``sort``/``argsort``/``lexsort``
signatures, and these primitive overrides:

* ``threefry2x32``: one ``ElementwiseKernel`` (``cuda_source.THREEFRY2X32``), the same
  uint32 arithmetic as the CPU, so random bits match the CPU's exactly.

Every other primitive runs its NumPy-API impl on CuPy arrays (convolutions and window
reductions through strided views and cuBLAS matmuls; gathers through fancy indexing).
"""
from __future__ import annotations

from typing import Any

import cupy
import cupyx
import numpy as np

from fungrad.backends import cuda_source
from fungrad.backends.namespace import device_namespace

_threefry_kernel = cupy.ElementwiseKernel(*cuda_source.THREEFRY2X32_PARAMS,
                                          cuda_source.THREEFRY2X32, "fungrad_threefry2x32")


def _threefry2x32_impl(xp: Any, k1: Any, k2: Any, x1: Any, x2: Any) -> list:
    """Threefry-2x32 of ``(x1, x2)`` under key ``(k1, k2)``, broadcast, in one kernel."""
    args = [cupy.asarray(a) for a in (k1, k2, x1, x2)]
    if any(a.dtype != cupy.uint32 for a in args):
        raise TypeError("threefry2x32 requires uint32 operands")
    y1, y2 = _threefry_kernel(*args)
    return [y1, y2]


_scatter_multiply_kernels: dict[str, Any] = {}  # dtype name -> RawKernel, compiled on first use


def _scatter_multiply(a: Any, index: Any, values: Any) -> None:
    """``numpy.multiply.at(a, index, values)`` on the GPU: ``a`` (contiguous) times each
    of ``values`` at flat ``index``, duplicates multiplied in turn."""
    index = cupy.ascontiguousarray(cupy.broadcast_to(index, values.shape), dtype=np.int64)
    values = cupy.ascontiguousarray(values, dtype=a.dtype)
    if a.dtype.name not in cuda_source.SCATTER_MULTIPLY_DTYPES:  # no atomic swap this wide
        host = a.get()
        np.multiply.at(host.reshape(-1), index.get().reshape(-1), values.get().reshape(-1))
        a[...] = cupy.asarray(host)
        return
    kernel = _scatter_multiply_kernels.get(a.dtype.name)
    if kernel is None:
        kernel = _scatter_multiply_kernels[a.dtype.name] = cupy.RawKernel(
            *cuda_source.scatter_multiply_source(a.dtype.name))
    n = values.size
    blocks = max(1, min(-(-n // cuda_source.BLOCK), cuda_source.MAX_GRID))
    kernel((blocks,), (cuda_source.BLOCK,), (a, index, values, np.int64(n)))


xp = device_namespace(
    cupy,
    scatter={"add": cupyx.scatter_add, "maximum": cupyx.scatter_max,
             "minimum": cupyx.scatter_min, "multiply": _scatter_multiply},
    overrides={"threefry2x32": _threefry2x32_impl})
