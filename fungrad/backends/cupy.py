"""The CuPy (GPU) backend: CuPy with fungrad's replacements, as the ``xp`` of device buffers.

Imported only once a CuPy buffer exists (``backends.xp_of``); ``import fungrad`` never
imports it. ``xp`` is CuPy wrapped by ``namespace.device_namespace``: scatter with
duplicate indices through ``cupyx.scatter_add``/``scatter_max``/``scatter_min``,
NumPy's ``sort``/``argsort``/``lexsort`` signatures, and these primitive overrides:

* ``threefry2x32``: one ``ElementwiseKernel`` (``cuda_source.THREEFRY2X32``), the same
  uint32 arithmetic as the CPU, so random bits match the CPU's exactly.

Every other primitive runs its NumPy-API impl on CuPy arrays (convolutions and window
reductions through strided views and cuBLAS matmuls; gathers through fancy indexing).
"""
from __future__ import annotations

from typing import Any

import cupy
import cupyx

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


xp = device_namespace(
    cupy,
    scatter={"add": cupyx.scatter_add, "maximum": cupyx.scatter_max,
             "minimum": cupyx.scatter_min},
    overrides={"threefry2x32": _threefry2x32_impl})
