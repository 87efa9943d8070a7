"""``fungrad.numpy.fft``: the ``jax.numpy.fft`` API on the one primitive ``lax.fft``.

Each transform moves its axes last, crops or zero-pads them to the requested lengths
(``n``/``s``), calls ``lax.fft`` and moves the axes back; ``norm`` is ``"backward"``
(the default: the inverse transforms divide by the length), ``"ortho"`` or
``"forward"``. ``float32`` inputs give ``complex64`` results, as in JAX.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.namespace import public_dir
from fungrad._core.util import canonicalize_axis
from fungrad.lax.fft import FftType
from fungrad.numpy._creation import _placed, arange
from fungrad.numpy._padding import pad
from fungrad.numpy._shape import moveaxis, roll
from fungrad.numpy._util import aval, ensure_arraylike, scalar_like

__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "ifft", "ifft2", "ifftn",
           "ifftshift", "ihfft", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq",
           "rfftn"]
__dir__ = public_dir(__all__)


def _norm_factor(lengths: Sequence[int], name: str, norm: str | None) -> float:
    """The scale of the result: ``1/N`` for forward transforms under ``"forward"``, ``N`` for
    inverse ones (undoing the ``1/N`` they apply), ``1/sqrt(N)``/``sqrt(N)`` under ``"ortho"``."""
    if norm is None or norm == "backward":
        return 1.0
    n = float(math.prod(lengths))
    if norm == "ortho":
        n = math.sqrt(n)
    elif norm != "forward":
        raise ValueError(f'fungrad.numpy.fft.{name}: invalid norm value {norm!r}; should be '
                         '"backward", "ortho" or "forward".')
    return n if name.startswith("i") else 1.0 / n


def _transform(name: str, fft_type: FftType, a: Any, s: Sequence[int] | None,
               axes: Sequence[int] | None, norm: str | None) -> Any:
    """``lax.fft`` over ``axes`` (default: the last ``len(s)`` axes, or all), cropping or
    zero-padding them to the lengths ``s``."""
    full = f"fungrad.numpy.fft.{name}"
    x = ensure_arraylike(full, a)
    if s is not None:
        s = tuple(map(operator.index, s))
        if any(v <= 0 for v in s):
            raise ValueError(f"{full}: argument 's' must hold positive lengths, got {s}")
        if axes is not None and len(s) != len(axes):
            raise ValueError(f"{full}: arguments 's' {s} and 'axes' {tuple(axes)} have "
                             "different lengths")
    ndim = aval(x).ndim
    if axes is None:
        axes = range(ndim) if s is None else range(ndim - len(s), ndim)
        moved = None
    else:
        moved = tuple(canonicalize_axis(ax, ndim, full) for ax in axes)
        if len(set(moved)) != len(moved):
            raise ValueError(f"{full} does not support repeated axes, got axes {tuple(axes)}")
        axes = range(ndim - len(moved), ndim)
        x = moveaxis(x, moved, tuple(axes))
    axes = tuple(axes)
    shape = aval(x).shape
    if s is not None:
        sizes = list(shape)
        for ax, n in zip(axes, s):
            sizes[ax] = n
        if fft_type == FftType.IRFFT:
            sizes[-1] = sizes[-1] // 2 + 1
        x = x[tuple(slice(n) for n in sizes)]
        x = pad(x, [(0, n - m) for n, m in zip(sizes, aval(x).shape)])
    elif fft_type == FftType.IRFFT:
        s = tuple(shape[ax] for ax in axes[:-1]) + ((max(0, 2 * (shape[axes[-1]] - 1)),)
                                                    if axes else ())
    else:
        s = tuple(shape[ax] for ax in axes)
    out = lax.fft(x, fft_type, s)
    factor = _norm_factor(s, name, norm)
    if factor != 1.0:
        out = lax.mul(out, scalar_like(factor, out))
    return out if moved is None else moveaxis(out, tuple(axes), moved)


def _one_axis(name: str, axis: Any) -> list[int]:
    if isinstance(axis, (list, tuple)):
        raise ValueError(f"fungrad.numpy.fft.{name} does not support multiple axes, got axis = "
                         f"{axis!r}; use {name}n")
    return [axis]


def _two_axes(name: str, axes: Sequence[int]) -> Sequence[int]:
    if len(axes) != 2:
        raise ValueError(f"fungrad.numpy.fft.{name} only supports 2 axes, got axes = {axes!r}")
    return axes


def fft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """One-dimensional discrete Fourier transform along ``axis`` (``jnp.fft.fft``).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> jnp.fft.fft(jnp.array([1.0, 0.0, -1.0, 0.0]))
        Array([0.+0.j, 2.+0.j, 0.+0.j, 2.+0.j], dtype=complex64)
    """
    return _transform("fft", FftType.FFT, a, None if n is None else [n], _one_axis("fft", axis),
                      norm)


def ifft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """One-dimensional inverse discrete Fourier transform along ``axis``."""
    return _transform("ifft", FftType.IFFT, a, None if n is None else [n],
                      _one_axis("ifft", axis), norm)


def rfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """Transform of a real signal along ``axis``: the ``n // 2 + 1`` non-negative frequencies."""
    return _transform("rfft", FftType.RFFT, a, None if n is None else [n],
                      _one_axis("rfft", axis), norm)


def irfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """Inverse of ``rfft``: a real signal of length ``n`` (default ``2 * (m - 1)``)."""
    return _transform("irfft", FftType.IRFFT, a, None if n is None else [n],
                      _one_axis("irfft", axis), norm)


_OPPOSITE_NORM = {None: "forward", "backward": "forward", "forward": "backward",
                  "ortho": "ortho"}


def _opposite_norm(name: str, norm: Any) -> str:
    """The normalisation that scales the other way (``hfft`` is an ``irfft`` scaled as a
    forward transform)."""
    if not isinstance(norm, (str, type(None))) or norm not in _OPPOSITE_NORM:
        _norm_factor((1,), name, norm)  # raises, naming ``name``
    return _OPPOSITE_NORM[norm]


def hfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """Transform of a signal with Hermitian symmetry given by its first half: a real result
    (``irfft`` of the conjugate, scaled the opposite way)."""
    x = ensure_arraylike("fungrad.numpy.fft.hfft", a)
    _one_axis("hfft", axis)
    return irfft(lax.conj(x) if aval(x).dtype.kind == "c" else x, n, axis,
                 _opposite_norm("hfft", norm))


def ihfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """Inverse of ``hfft``: the first half of the spectrum of a real signal, conjugated
    (``rfft`` scaled the opposite way)."""
    x = ensure_arraylike("fungrad.numpy.fft.ihfft", a)
    _one_axis("ihfft", axis)
    return lax.conj(rfft(x, n, axis, _opposite_norm("ihfft", norm)))


def fftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
         norm: str | None = None) -> Any:
    """N-dimensional discrete Fourier transform over ``axes`` (default: all)."""
    return _transform("fftn", FftType.FFT, a, s, axes, norm)


def ifftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None) -> Any:
    """N-dimensional inverse discrete Fourier transform."""
    return _transform("ifftn", FftType.IFFT, a, s, axes, norm)


def rfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None) -> Any:
    """N-dimensional transform of a real signal (the last axis halved)."""
    return _transform("rfftn", FftType.RFFT, a, s, axes, norm)


def irfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
           norm: str | None = None) -> Any:
    """Inverse of ``rfftn``."""
    return _transform("irfftn", FftType.IRFFT, a, s, axes, norm)


def fft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
         norm: str | None = None) -> Any:
    """Two-dimensional discrete Fourier transform."""
    return _transform("fft2", FftType.FFT, a, s, _two_axes("fft2", axes), norm)


def ifft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Any:
    """Two-dimensional inverse discrete Fourier transform."""
    return _transform("ifft2", FftType.IFFT, a, s, _two_axes("ifft2", axes), norm)


def rfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Any:
    """Two-dimensional transform of a real signal."""
    return _transform("rfft2", FftType.RFFT, a, s, _two_axes("rfft2", axes), norm)


def irfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
           norm: str | None = None) -> Any:
    """Inverse of ``rfft2``."""
    return _transform("irfft2", FftType.IRFFT, a, s, _two_axes("irfft2", axes), norm)


def _freq_args(name: str, n: Any, d: Any, dtype: Any) -> tuple[int, Any, np.dtype]:
    if isinstance(n, (list, tuple)):
        raise ValueError(f"fungrad.numpy.fft.{name}: argument 'n' takes an int, got {list(n)}")
    if isinstance(d, (list, tuple)):
        raise ValueError(f"fungrad.numpy.fft.{name}: argument 'd' takes a single value, "
                         f"got {list(d)}")
    return operator.index(n), d, dtypes.canonicalize_dtype(dtype or dtypes.default_float_dtype())


@_placed
def fftfreq(n: int, d: Any = 1.0, *, dtype: Any = None) -> Any:
    """The sample frequencies of ``fft``'s bins: ``[0, 1, ..., -2, -1] / (d * n)``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> jnp.fft.fftfreq(4)
        Array([ 0.  ,  0.25, -0.5 , -0.25], dtype=float32)
    """
    n, d, dtype = _freq_args("fftfreq", n, d, dtype)
    i = arange(n, dtype=dtype)
    k = lax.sub(lax.rem(lax.add(i, scalar_like(n // 2, i)), scalar_like(n, i)),
                scalar_like(n // 2, i))
    return lax.div(k, lax.convert_element_type(d * n, dtype))


@_placed
def rfftfreq(n: int, d: Any = 1.0, *, dtype: Any = None) -> Any:
    """The sample frequencies of ``rfft``'s bins: ``[0, 1, ..., n // 2] / (d * n)``."""
    n, d, dtype = _freq_args("rfftfreq", n, d, dtype)
    k = arange(0, n // 2 + 1, dtype=dtype)
    return lax.div(k, lax.convert_element_type(d * n, dtype))


def _shifted(name: str, x: Any, axes: Any, sign: int) -> Any:
    x = ensure_arraylike(f"fungrad.numpy.fft.{name}", x)
    shape = aval(x).shape
    if axes is None:
        axes = tuple(range(len(shape)))
    if isinstance(axes, int):
        return roll(x, sign * (shape[axes] // 2), axes)
    return roll(x, [sign * (shape[ax] // 2) for ax in axes], axes) if len(axes) else x


def fftshift(x: Any, axes: None | int | Sequence[int] = None) -> Any:
    """Move the zero-frequency bin to the centre of ``axes`` (default: all)."""
    return _shifted("fftshift", x, axes, 1)


def ifftshift(x: Any, axes: None | int | Sequence[int] = None) -> Any:
    """Undo ``fftshift``."""
    return _shifted("ifftshift", x, axes, -1)
