"""``fungrad.scipy.fft`` (``jax.scipy.fft``): the discrete cosine transform of type 2 and
its inverse, in one or several dimensions.

Each transform is one complex FFT of the same length (Makhoul, "A fast cosine transform in
one and two dimensions", 1980): the DCT reorders the signal (even samples, then the odd
ones reversed), transforms it with ``fungrad.numpy.fft.fft`` and rotates each bin by a
quarter-sample phase; the inverse undoes the three steps in the opposite order. The
phases and the ``norm`` scales are NumPy constants folded into one complex factor per
bin, so the transforms are composites of ``lax`` operations: linear, differentiable,
batchable and compilable. As in JAX, only ``type=2`` is implemented, and ``norm`` is
``None``/``"backward"`` or ``"ortho"``; complex inputs are transformed as their real
and imaginary parts. ``dctn``/``idctn`` apply the one-dimensional transform along each
axis in turn (the transform is separable).
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core.namespace import public_dir
from fungrad.numpy import fft as jnp_fft
from fungrad.numpy._padding import pad
from fungrad.numpy._shape import slice_axis
from fungrad.numpy._util import (aval, canonicalize_axis, ensure_arraylike, promote_dtypes_inexact,
                                 to_complex_dtype)

__all__ = ["dct", "dctn", "idct", "idctn"]
__dir__ = public_dir(__all__)


def _check(name: str, type: int, norm: str | None) -> None:
    if type != 2:
        raise NotImplementedError(f"fungrad.scipy.fft.{name}: only DCT type 2 is implemented, "
                                  f"got type={type!r}")
    if norm not in (None, "backward", "ortho"):
        raise ValueError(f"fungrad.scipy.fft.{name}: norm={norm!r} is not implemented; use "
                         'None, "backward" or "ortho"')


def _resized(name: str, x: Any, n: int | None, axis: int) -> Any:
    """``x`` cropped or zero-padded to length ``n`` along ``axis``."""
    if n is None:
        return x
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"fungrad.scipy.fft.{name}: the transform length n must be positive, "
                         f"got n={n}")
    m = aval(x).shape[axis]
    if n <= m:
        return slice_axis(x, axis, 0, n)
    widths = [(0, 0)] * aval(x).ndim
    widths[axis] = (0, n - m)
    return pad(x, widths)


def _along(values: np.ndarray, x: Any, axis: int, dtype: np.dtype) -> Any:
    """The constant vector ``values`` shaped to broadcast along ``axis`` of ``x``."""
    shape = [1] * aval(x).ndim
    shape[axis] = values.size
    return lax.convert_element_type(values.reshape(shape).astype(dtype), dtype)


def _interleave(x: Any, axis: int) -> Any:
    """``[x0, x2, x4, ..., x5, x3, x1]``: the even samples, then the odd ones reversed."""
    n = aval(x).shape[axis]
    odd = lax.rev(slice_axis(x, axis, 1, n, 2), (axis,))
    return lax.concatenate([slice_axis(x, axis, 0, n, 2), odd], axis)


def _deinterleave(v: Any, axis: int) -> Any:
    """The inverse of ``_interleave``: ``x[2m] = v[m]``, ``x[2m + 1] = v[n - 1 - m]``."""
    n = aval(v).shape[axis]
    half = (n + 1) // 2
    even = slice_axis(v, axis, 0, half)
    odd = lax.rev(slice_axis(v, axis, half, n), (axis,))
    if n % 2:
        widths = [(0, 0)] * aval(v).ndim
        widths[axis] = (0, 1)
        odd = pad(odd, widths)
    pairs = lax.concatenate([lax.expand_dims(even, (axis + 1,)),
                             lax.expand_dims(odd, (axis + 1,))], axis + 1)
    shape = list(aval(v).shape)
    shape[axis] = 2 * half
    return slice_axis(lax.reshape(pairs, tuple(shape)), axis, 0, n)


def _quarter_phase(n: int, sign: float) -> np.ndarray:
    """``exp(sign * i pi k / (2 n))`` for ``k = 0 .. n-1``, in float64."""
    return np.exp(sign * 0.5j * np.pi * np.arange(n) / n)


def _ortho_scale(n: int) -> np.ndarray:
    """What ``norm="ortho"`` multiplies the backward DCT by: ``1/sqrt(4n)`` for bin 0,
    ``1/sqrt(2n)`` for the others."""
    scale = np.full(n, 1 / np.sqrt(2 * n))
    scale[0] = 1 / np.sqrt(4 * n)
    return scale


def _complex_parts(fn: Any, x: Any, **kw: Any) -> Any | None:
    """``fn`` of the real and imaginary parts of complex ``x`` put together (or None)."""
    if aval(x).dtype.kind != "c":
        return None
    return lax.complex(fn(lax.real(x), **kw), fn(lax.imag(x), **kw))


def dct(x: Any, type: int = 2, n: int | None = None, axis: int = -1,
        norm: str | None = None) -> Any:
    """Discrete cosine transform of type 2 along ``axis`` (``jax.scipy.fft.dct``).

    ``y[k] = 2 * sum_m x[m] * cos(pi * k * (2m + 1) / (2N))``, scaled by ``1/sqrt(4N)``
    at ``k = 0`` and ``1/sqrt(2N)`` elsewhere under ``norm="ortho"`` (an orthogonal
    transform).

    Args:
        x: the input array; integers become the default float type, complex inputs are
            transformed as their real and imaginary parts.
        type: the DCT type; only 2 is implemented (``NotImplementedError`` otherwise).
        n: the transform length: ``x`` is cropped or zero-padded to it along ``axis``
            (default: ``x.shape[axis]``).
        axis: the axis to transform.
        norm: ``None`` or ``"backward"`` (no scaling), or ``"ortho"``.

    Returns:
        The transform, of ``x``'s inexact dtype, ``n`` long along ``axis``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> dct(jnp.array([1.0, 2.0, 3.0, 4.0])).round(3)
        Array([20.   , -6.309,  0.   , -0.448], dtype=float32)
        >>> dct(jnp.array([1.0, 2.0, 3.0, 4.0]), norm="ortho").round(3)
        Array([ 5.   , -2.23 ,  0.   , -0.159], dtype=float32)
    """
    x = ensure_arraylike("fungrad.scipy.fft.dct", x)
    _check("dct", type, norm)
    parts = _complex_parts(dct, x, n=n, axis=axis, norm=norm)
    if parts is not None:
        return parts
    x, = promote_dtypes_inexact(x)
    axis = canonicalize_axis(axis, aval(x).ndim, "fungrad.scipy.fft.dct")
    x = _resized("dct", x, n, axis)
    size = aval(x).shape[axis]
    factor = 2 * _quarter_phase(size, -1.0)
    if norm == "ortho":
        factor = factor * _ortho_scale(size)
    spectrum = jnp_fft.fft(_interleave(x, axis), axis=axis)
    return lax.real(lax.mul(spectrum, _along(factor, x, axis, aval(spectrum).dtype)))


def idct(x: Any, type: int = 2, n: int | None = None, axis: int = -1,
         norm: str | None = None) -> Any:
    """Inverse of ``dct`` of type 2 along ``axis`` (``jax.scipy.fft.idct``): a DCT of type 3,
    scaled so that ``idct(dct(x, norm=norm), norm=norm) == x``.

    Args:
        x: the coefficients; integers become the default float type, complex inputs are
            transformed as their real and imaginary parts.
        type: the DCT type; only 2 is implemented (``NotImplementedError`` otherwise).
        n: the transform length: ``x`` is cropped or zero-padded to it along ``axis``.
        axis: the axis to transform.
        norm: ``None`` or ``"backward"`` (divides by ``2N``), or ``"ortho"``.

    Returns:
        The signal, of ``x``'s inexact dtype, ``n`` long along ``axis``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> x = jnp.array([1.0, 2.0, 3.0, 4.0])
        >>> jnp.allclose(idct(dct(x)), x)
        Array(True, dtype=bool)
    """
    x = ensure_arraylike("fungrad.scipy.fft.idct", x)
    _check("idct", type, norm)
    parts = _complex_parts(idct, x, n=n, axis=axis, norm=norm)
    if parts is not None:
        return parts
    x, = promote_dtypes_inexact(x)
    axis = canonicalize_axis(axis, aval(x).ndim, "fungrad.scipy.fft.idct")
    x = _resized("idct", x, n, axis)
    size = aval(x).shape[axis]
    # Back to the unscaled coefficients: bin 0 counts half in the cosine series.
    weight = np.ones(size)
    weight[0] = 0.5
    if norm == "ortho":
        weight = weight / _ortho_scale(size)
    factor = weight * _quarter_phase(size, 1.0)
    cdtype = to_complex_dtype(aval(x).dtype)
    v = jnp_fft.ifft(lax.mul(lax.convert_element_type(x, cdtype), _along(factor, x, axis, cdtype)),
                     axis=axis)
    return _deinterleave(lax.real(v), axis)


def _axes_and_lengths(name: str, x: Any, s: Any, axes: Any) -> tuple[list[int], list]:
    """The axes to transform and each one's length (``None``: keep), as SciPy's ``dctn``."""
    ndim = aval(x).ndim
    full = f"fungrad.scipy.fft.{name}"
    if s is not None:
        s = [operator.index(v) for v in s] if isinstance(s, (list, tuple, np.ndarray)) \
            else [operator.index(s)]
        if len(s) > ndim:
            raise ValueError(f"{full}: s must have at most x.ndim ({ndim}) elements, "
                             f"got {len(s)}")
    if axes is None:
        axes = list(range(ndim - len(s), ndim)) if s is not None else list(range(ndim))
    else:
        axes = [canonicalize_axis(a, ndim, full)
                for a in (axes if isinstance(axes, (list, tuple)) else [axes])]
        if len(set(axes)) != len(axes):
            raise ValueError(f"{full}: repeated axes are not supported, got axes {axes}")
    if s is not None and len(s) != len(axes):
        raise ValueError(f"{full}: s {tuple(s)} and axes {tuple(axes)} have different lengths")
    return axes, (s if s is not None else [None] * len(axes))


def dctn(x: Any, type: int = 2, s: Sequence[int] | None = None,
         axes: Sequence[int] | None = None, norm: str | None = None) -> Any:
    """Multidimensional discrete cosine transform of type 2 (``jax.scipy.fft.dctn``): ``dct``
    along each of ``axes``.

    Args:
        x: the input array.
        type: the DCT type; only 2 is implemented.
        s: the transform lengths along ``axes`` (an int or a sequence; each axis is cropped or
            zero-padded to its length).
        axes: the axes to transform (default: the last ``len(s)`` axes, or all of them).
        norm: ``None`` or ``"backward"``, or ``"ortho"``.

    Returns:
        The transform, of ``x``'s inexact dtype.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> dctn(jnp.array([[1.0, 2.0], [3.0, 4.0]])).round(3)
        Array([[ 40.   ,  -5.657],
               [-11.314,   0.   ]], dtype=float32)
    """
    x = ensure_arraylike("fungrad.scipy.fft.dctn", x)
    _check("dctn", type, norm)
    axes, lengths = _axes_and_lengths("dctn", x, s, axes)
    for axis, n in zip(axes, lengths):
        x = dct(x, n=n, axis=axis, norm=norm)
    return x


def idctn(x: Any, type: int = 2, s: Sequence[int] | None = None,
          axes: Sequence[int] | None = None, norm: str | None = None) -> Any:
    """Multidimensional inverse of ``dctn`` (``jax.scipy.fft.idctn``): ``idct`` along each
    of ``axes``.

    Args:
        x: the coefficients.
        type: the DCT type; only 2 is implemented.
        s: the transform lengths along ``axes`` (an int or a sequence).
        axes: the axes to transform (default: the last ``len(s)`` axes, or all of them).
        norm: ``None`` or ``"backward"``, or ``"ortho"``.

    Returns:
        The signal, of ``x``'s inexact dtype.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> jnp.allclose(idctn(dctn(x)), x)
        Array(True, dtype=bool)
    """
    x = ensure_arraylike("fungrad.scipy.fft.idctn", x)
    _check("idctn", type, norm)
    axes, lengths = _axes_and_lengths("idctn", x, s, axes)
    for axis, n in zip(axes, lengths):
        x = idct(x, n=n, axis=axis, norm=norm)
    return x
