"""XLA CPU's reciprocal square root, bit for bit, for the Gamma sampler's ``1/3 / sqrt(d)``.

XLA's algebraic simplifier turns ``c / sqrt(x)`` into ``c * rsqrt(x)``, and its CPU code
computes ``rsqrt`` from the processor's estimate refined by Newton steps (two; one for
float32 on AMD processors: ``y' = y + (-y / 2) * (x * y * y - 1)``, each as ``t = x * y``,
``e = fma(t, y, -1)``, ``y' = fma(-y / 2, e, y)``), keeping the estimate itself where ``x``
is zero, subnormal, negative or infinite. The estimate is ``vrsqrtps`` (float32, AVX) or
``vrsqrt14pd`` (float64, AVX-512): instructions whose results the processor defines by its
own tables, so this module runs those very instructions, as a few bytes of x86-64 machine
code in a page made read-only and executable (``mprotect``, never writable and executable at once)
and called through ``ctypes``. Elsewhere (another architecture, no AVX-512, no executable
pages) the estimate is ``1 / sqrt(x)`` rounded, and the draws that use it can differ from
JAX's in their last bits (0.6% of float32 and 1.2% of float64 Gamma draws, measured).
"""
from __future__ import annotations

import ctypes
import functools
import mmap
import platform
from typing import Any, Callable

import numpy as np

from fungrad.lax import mul
from fungrad.lax._ops import const
from fungrad.random._xla_math import _unary, cpu_flags, cpu_vendor, fma, fma64

# rsqrt_ps(in, out, n): vrsqrtps over n float32 (n a multiple of 8); at byte 0x1f,
# rsqrt14_pd(in, out, n): vrsqrt14pd over n float64 (n a multiple of 4). Assembled from:
#   test rdx, rdx; jz done; loop: vrsqrtps ymm0, [rdi]; vmovups [rsi], ymm0;
#   add rdi, 32; add rsi, 32; sub rdx, 8; jnz loop; done: vzeroupper; ret
# and the same with vrsqrt14pd / vmovupd and 4 elements a step.
_CODE = bytes.fromhex(
    "4885d27416c5fc5207c5fc11064883c7204883c6204883ea0875eac5f877c3"
    "4885d2741862f2fd284e07c5fd11064883c7204883c6204883ea0475e8c5f877c3")
_RSQRT14_PD_OFFSET = 0x1f
_KERNEL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_PAGES: list[mmap.mmap] = []  # the executable page stays mapped while its kernels live


@functools.lru_cache(maxsize=None)
def _kernels() -> dict[np.dtype, Callable]:
    """The estimate kernels this processor runs, by dtype (empty off x86-64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    flags = cpu_flags()
    try:  # written while writable, then made executable and read-only (never both)
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        page.write(_CODE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(page))
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mprotect(ctypes.c_void_p(base), ctypes.c_size_t(mmap.PAGESIZE),
                         mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            return {}
    except (OSError, AttributeError, ValueError, TypeError):
        return {}
    kernels = {}
    if "avx" in flags:
        kernels[np.dtype(np.float32)] = (_KERNEL(base), 8)
    if {"avx512f", "avx512vl"} <= flags:
        kernels[np.dtype(np.float64)] = (_KERNEL(base + _RSQRT14_PD_OFFSET), 4)
    _PAGES.append(page)
    return kernels


def rsqrt_estimate(x: np.ndarray) -> np.ndarray:
    """The processor's ``1 / sqrt(x)`` estimate XLA starts from (``vrsqrtps`` in float32,
    ``vrsqrt14pd`` in float64), or ``1 / sqrt(x)`` rounded where it has no such kernel."""
    x = np.asarray(x)
    kernel = _kernels().get(x.dtype)
    if kernel is None:
        with np.errstate(all="ignore"):
            return (1 / np.sqrt(x.astype(np.float64))).astype(x.dtype)
    fn, step = kernel
    n = x.size
    padded = np.ones(-(-n // step) * step, x.dtype)
    padded[:n] = x.reshape(-1)
    out = np.empty_like(padded)
    fn(padded.ctypes.data, out.ctypes.data, padded.size)
    return out[:n].reshape(x.shape)


def _newton(xp, x, y, fused):
    t = x * y
    return fused(xp, y * x.dtype.type(-0.5), fused(xp, t, y, x.dtype.type(-1)), y)


@functools.cache
def _newton_steps(dtype: np.dtype) -> int:
    """How many Newton steps XLA's code refines the estimate with: two, but one for float32
    on AMD processors (measured on an Intel Xeon and an AMD EPYC, both with AVX-512)."""
    return 1 if dtype == np.float32 and cpu_vendor() == "AuthenticAMD" else 2


def _rsqrt(xp, x):
    x = xp.asarray(x)
    fused = fma64 if x.dtype == np.float64 else fma
    y = refined = xp.asarray(rsqrt_estimate(np.asarray(x)))
    for _ in range(_newton_steps(x.dtype)):
        refined = _newton(xp, x, refined, fused)
    tiny = np.finfo(x.dtype).tiny
    keep = (xp.abs(x) < tiny) | xp.isinf(x) | (x < 0)  # zero, subnormal, infinite, negative
    return xp.where(keep & ~((x == 0) & xp.signbit(x)), y, refined)


xla_rsqrt = _unary("xla_rsqrt", _rsqrt,
                   lambda t, ans, x: mul(t, mul(const(x, -0.5), mul(ans, mul(ans, ans)))),
                   _rsqrt)


def xla_div_sqrt(c: float, x: Any) -> Any:
    """``c / sqrt(x)`` as XLA's CPU code computes it: ``c * rsqrt(x)``."""
    return mul(const(x, c), xla_rsqrt(x))
