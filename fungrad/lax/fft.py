"""The fast Fourier transform primitive ``fft_p`` (``jax.lax.fft``).

One primitive covers the four transforms, chosen by ``fft_type`` (``FftType.FFT``,
``IFFT``, ``RFFT``, ``IRFFT``), over the trailing ``len(fft_lengths)`` axes of the operand:
complex to complex (``FFT``/``IFFT``), real to half-spectrum (``RFFT``, last axis
``n // 2 + 1``) and back (``IRFFT``, last axis ``fft_lengths[-1]``). ``float32`` gives
``complex64`` (and back), as in JAX. The transform is linear, so its JVP applies it to the
tangent; its transpose is the same transform for ``FFT``/``IFFT`` (the DFT matrix is
symmetric) and, for the real transforms, the other real transform with the doubled
half-spectrum bins weighted, as JAX's ``_fft_transpose_rule``.
"""
from __future__ import annotations

import enum
import math
from typing import Any, Sequence

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import as_operand, static_ints
from fungrad.lax.elementwise import conj, div, mul
from fungrad.lax.shapes import convert_element_type

__all__ = ["FftType", "fft", "fft_p"]


class FftType(enum.IntEnum):
    """Which transform ``fft`` computes (the values of ``jax.lax.FftType``)."""
    FFT = 0
    IFFT = 1
    RFFT = 2
    IRFFT = 3


_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64),
               np.dtype(np.float64): np.dtype(np.complex128)}
_REAL_OF = {c: r for r, c in _COMPLEX_OF.items()}


def _fft_type(fft_type: Any) -> FftType:
    if isinstance(fft_type, str) and fft_type.upper() in FftType.__members__:
        return FftType[fft_type.upper()]
    if isinstance(fft_type, FftType):
        return fft_type
    raise TypeError(f"fft: unknown fft_type {fft_type!r} (use lax.FftType or 'fft', 'ifft', "
                    "'rfft', 'irfft')")


def fft(x: Any, fft_type: FftType | str, fft_lengths: Sequence[int]) -> Any:
    """The ``fft_type`` transform over the trailing ``len(fft_lengths)`` axes of ``x``.

    Real inputs of ``FFT``/``IFFT`` become complex, integer inputs of ``RFFT`` floating.

    Examples:
        >>> from fungrad import lax
        >>> lax.fft(lax.full((4,), 1.0), "rfft", (4,))
        Array([4.+0.j, 0.+0.j, 0.+0.j], dtype=complex64)
    """
    typ = _fft_type(fft_type)
    fft_lengths = static_ints(fft_lengths, "fft", "fft_lengths")
    x = as_operand(x)
    dtype = core.get_aval(x).dtype
    if typ == FftType.RFFT:
        if dtype.kind == "c":
            raise ValueError("fft: only real valued inputs are supported for rfft")
        target = dtype if dtypes.is_inexact(dtype) else dtypes.default_float_dtype()
    else:
        target = (dtype if dtype.kind == "c" else
                  _COMPLEX_OF.get(dtypes.canonicalize_dtype(dtype), dtypes.default_complex_dtype()))
    x = convert_element_type(x, target)
    if not fft_lengths:
        return x
    return fft_p.bind(x, fft_type=typ, fft_lengths=fft_lengths)


def _fft_impl(xp, x, *, fft_type, fft_lengths):
    axes = tuple(range(x.ndim - len(fft_lengths), x.ndim))
    if fft_type == FftType.FFT:
        return xp.fft.fftn(x, axes=axes).astype(x.dtype, copy=False)
    if fft_type == FftType.IFFT:
        return xp.fft.ifftn(x, axes=axes).astype(x.dtype, copy=False)
    if fft_type == FftType.RFFT:
        return xp.fft.rfftn(x, axes=axes).astype(_COMPLEX_OF[x.dtype], copy=False)
    return xp.fft.irfftn(x, s=fft_lengths, axes=axes).astype(_REAL_OF[x.dtype], copy=False)


def _fft_abstract(x, *, fft_type, fft_lengths):
    k = len(fft_lengths)
    if k > x.ndim:
        raise ValueError(f"fft: operand shape {x.shape} must have at least as many dimensions "
                         f"as fft_lengths {fft_lengths}")
    minor = x.shape[x.ndim - k:]
    if fft_type == FftType.RFFT:
        if x.dtype not in _COMPLEX_OF:
            raise ValueError(f"fft: RFFT input must be float32 or float64, got {x.dtype}")
        if minor != fft_lengths:
            raise ValueError(f"fft: RFFT input shape {x.shape} minor dimensions must equal "
                             f"fft_lengths {fft_lengths}")
        return ShapedArray(x.shape[:x.ndim - k] + fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,),
                           _COMPLEX_OF[x.dtype])
    if x.dtype not in _REAL_OF:
        raise ValueError(f"fft: {fft_type.name} input must be complex64 or complex128, "
                         f"got {x.dtype}")
    if fft_type == FftType.IRFFT:
        if minor[:-1] != fft_lengths[:-1]:
            raise ValueError(f"fft: IRFFT input shape {x.shape} minor dimensions must equal all "
                             f"but the last of fft_lengths {fft_lengths}")
        return ShapedArray(x.shape[:x.ndim - k] + fft_lengths, _REAL_OF[x.dtype])
    if minor != fft_lengths:
        raise ValueError(f"fft: {fft_type.name} input shape {x.shape} minor dimensions must "
                         f"equal fft_lengths {fft_lengths}")
    return ShapedArray(x.shape, x.dtype)


def _half_spectrum_weights(n: int, m: int, dtype: np.dtype) -> np.ndarray:
    """1 for the bins a real signal's spectrum holds once (zero, and Nyquist for even ``n``),
    2 for the others, which stand for a conjugate pair."""
    w = np.full(m, 2, dtype)
    w[0] = 1
    if n % 2 == 0:
        w[-1] = 1
    return w


def _fft_transpose(ct, x, *, fft_type, fft_lengths):
    if fft_type == FftType.RFFT:
        dtype = core.get_aval(ct).dtype
        w = _half_spectrum_weights(fft_lengths[-1], core.get_aval(ct).shape[-1], dtype)
        out = fft(div(conj(ct), as_operand(w)), FftType.IRFFT, fft_lengths)
        return [mul(out, as_operand(math.prod(fft_lengths), _REAL_OF[dtype]))]
    if fft_type == FftType.IRFFT:
        spectrum = fft(ct, FftType.RFFT, fft_lengths)
        dtype = core.get_aval(spectrum).dtype
        w = _half_spectrum_weights(fft_lengths[-1], core.get_aval(spectrum).shape[-1], dtype)
        return [conj(mul(spectrum, as_operand(w / math.prod(fft_lengths))))]
    return [fft(ct, fft_type, fft_lengths)]


def _fft_batch(axis_size, vals, dims, *, fft_type, fft_lengths):
    return fft_p.bind(batching.moveaxis(vals[0], dims[0], 0), fft_type=fft_type,
                      fft_lengths=fft_lengths), 0


fft_p = Primitive("fft")
fft_p.def_impl(_fft_impl)
fft_p.def_abstract_eval(_fft_abstract)
fft_p.weak_type_rule = lambda weaks, **params: False
ad.deflinear(fft_p, _fft_transpose)
batching.def_batch(fft_p, _fft_batch)
