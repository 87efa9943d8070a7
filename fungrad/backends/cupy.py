"""The CuPy (GPU) backend: CuPy with fungrad's replacements, as the ``xp`` of device buffers.

Imported only once a CuPy buffer exists (``backends.xp_of``); ``import fungrad`` never
imports it. ``xp`` is CuPy wrapped by ``namespace.device_namespace``: scatter with
duplicate indices (``add``, ``multiply``, ``maximum``, ``minimum``) through
``cupyx.scatter_add``/``scatter_max``/``scatter_min`` for the dtypes they take, else
compare-and-swap kernels (``cuda_source.scatter_source``: every dtype up to 8 bytes wide;
complex adds as adds of their float parts; only the products and extremes of complex128
and the extremes of complex64 are computed on the host), NumPy's
``sort``/``argsort``/``lexsort`` signatures, and these primitive overrides:

* ``threefry2x32``: one ``ElementwiseKernel`` (``cuda_source.THREEFRY2X32``), the same
  uint32 arithmetic as the CPU, so random bits match the CPU's exactly.

``fungrad_matmul_tf32`` is ``cupy.matmul`` with float32 products on TensorFloat-32 tensor
cores (CuPy's per-dtype compute type, set for the call), on GPUs of compute capability 8.0
and up; full float32 elsewhere. Contractions and convolutions below ``HIGHEST`` precision
use it, as JAX's GPU computes float32 dots and convolutions by default.

Every other primitive runs its NumPy-API impl on CuPy arrays (convolutions and window
reductions through strided views and cuBLAS matmuls; gathers through fancy indexing).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import cupy
import cupyx
import numpy as np
from cupy._core import _routines_linalg as _compute_types

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


# The dtypes CuPy's own scatters take (it raises TypeError on others); their native atomic
# adds and integer extremes beat a compare-and-swap loop. Float extremes use the kernels,
# which keep NaNs as NumPy's maximum and minimum do.
_CUPYX = {"add": (cupyx.scatter_add, frozenset({"int32", "uint32", "uint64", "float16",
                                                "float32", "float64"})),
          "maximum": (cupyx.scatter_max, frozenset({"int32", "uint32", "uint64"})),
          "minimum": (cupyx.scatter_min, frozenset({"int32", "uint32", "uint64"}))}
_scatter_kernels: dict[tuple[str, str], Any] = {}  # (op, dtype name) -> RawKernel, on first use


def _scatter_kernel(op: str, dtype_name: str) -> Any:
    """The compare-and-swap kernel of ``op`` for ``dtype_name`` (its dtype's kernels built
    from one source, compiled once)."""
    if (op, dtype_name) not in _scatter_kernels:
        source, names = cuda_source.scatter_source(dtype_name)
        for each, name in names.items():
            _scatter_kernels[each, dtype_name] = cupy.RawKernel(source, name)
    return _scatter_kernels[op, dtype_name]


def _add_complex(a: Any, index: Any, values: Any) -> None:
    """``numpy.add.at`` for complex ``a``: its real and imaginary parts added as the
    interleaved floats they are."""
    parts = a.view(a.real.dtype)
    index = cupy.broadcast_to(index, values.shape).reshape(-1).astype(np.int64) * 2
    values = cupy.ascontiguousarray(values, dtype=a.dtype).reshape(-1).view(a.real.dtype)
    cupyx.scatter_add(parts, cupy.stack([index, index + 1], axis=-1).reshape(-1), values)


def _scatter_with_kernel(op: str, a: Any, index: Any, values: Any) -> None:
    """``numpy.<op>.at`` by the compare-and-swap kernel of ``a``'s dtype."""
    n = values.size
    blocks = max(1, min(-(-n // cuda_source.BLOCK), cuda_source.MAX_GRID))
    _scatter_kernel(op, a.dtype.name)((blocks,), (cuda_source.BLOCK,),
                                      (a, index, values, np.int64(n)))


def _scatter_on_host(op: str, a: Any, index: Any, values: Any) -> None:
    """``numpy.<op>.at`` on the host (a read back and a copy to the GPU)."""
    host = a.get()
    getattr(np, op).at(host, index.get().reshape(-1), values.get().reshape(-1))
    a[...] = cupy.asarray(host)


def _scatter_at(op: str) -> Callable[[Any, Any, Any], None]:
    """``numpy.<op>.at(a, index, values)`` on the GPU for a flat contiguous ``a``: each of
    ``values`` combined into ``a`` at ``index``, duplicates in turn (in no fixed order)."""
    cupyx_scatter, cupyx_dtypes = _CUPYX.get(op, (None, frozenset()))

    def at(a: Any, index: Any, values: Any) -> None:
        if a.dtype.name in cupyx_dtypes:
            cupyx_scatter(a, index, values)
        elif op == "add" and a.dtype.kind == "c":
            _add_complex(a, index, values)
        else:
            index = cupy.ascontiguousarray(cupy.broadcast_to(index, values.shape), dtype=np.int64)
            values = cupy.ascontiguousarray(values, dtype=a.dtype)
            if (op, a.dtype.name) in cuda_source.SCATTER_KERNELS:
                _scatter_with_kernel(op, a, index, values)
            else:  # complex extremes and complex128 products: no atomic swap that wide
                _scatter_on_host(op, a, index, values)
    return at


@functools.lru_cache(maxsize=None)
def _has_tf32(device_id: int) -> bool:
    """Whether the GPU ``device_id`` has TensorFloat-32 tensor cores (compute capability
    8.0 and up)."""
    return int(cupy.cuda.Device(device_id).compute_capability) >= 80


def _matmul_tf32(a: Any, b: Any, out: Any = None) -> Any:
    """``cupy.matmul(a, b, out=out)`` with float32 multiplied in TensorFloat-32 where the
    GPU has it (the float32 compute type restored afterwards)."""
    if not _has_tf32(cupy.cuda.Device().id):
        return cupy.matmul(a, b, out=out)
    previous = _compute_types.get_compute_type(np.float32)
    _compute_types.set_compute_type(np.float32, _compute_types.COMPUTE_TYPE_TF32)
    try:
        return cupy.matmul(a, b, out=out)
    finally:
        _compute_types.set_compute_type(np.float32, previous)


xp = device_namespace(
    cupy,
    scatter={op: _scatter_at(op) for op in cuda_source.SCATTER_OPS},
    overrides={"threefry2x32": _threefry2x32_impl}, matmul_tf32=_matmul_tf32)
