"""``fungrad.scipy.signal`` (``jax.scipy.signal``): convolution, correlation, detrending
and spectral analysis.

* ``convolve``/``correlate`` (N-d), ``convolve2d``/``correlate2d`` and ``fftconvolve``
  live in ``fungrad.scipy._signal_convolve``.
* ``detrend`` removes the mean or a (piecewise) least-squares line. The line's
  coefficients are products with static weights (the centred sample times), so it is
  linear in the data.
* ``stft``, ``istft``, ``csd`` and ``welch`` are SciPy's spectral functions on windowed
  segments of the signal. The segments are one static gather (``stft``) and the
  overlap-add of ``istft`` is a sum of shifted, padded frames, so all of them
  differentiate, batch and compile. Windows are arrays or SciPy's names
  (``fungrad.scipy._signal_windows``).

Everything here is a composite of ``lax`` and ``fungrad.numpy``, so it works under
``grad``, ``vmap`` and ``jit`` (static arguments: modes, lengths, axes, window names).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import (aval, canonicalize_axis, ensure_arraylike, promote_dtypes_complex,
                                 promote_dtypes_inexact, static_int, to_complex_dtype)
from fungrad.scipy._signal_convolve import (convolve, convolve2d, correlate, correlate2d,
                                            fftconvolve)
from fungrad.scipy._signal_windows import get_window

__all__ = ["convolve", "convolve2d", "correlate", "correlate2d", "csd", "detrend", "fftconvolve",
           "istft", "stft", "welch"]
__dir__ = public_dir(__all__)


# --------------------------------------------------------------------------- detrending

def _line_residual(seg: Any) -> Any:
    """``seg`` less its least-squares line along the last axis: the mean plus the slope
    times the centred sample times, the slope a dot product with static weights."""
    n = aval(seg).shape[-1]
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2
    weights = t / np.sum(t * t) if n > 1 else t
    dtype = aval(seg).dtype
    slope = jnp.matmul(seg, weights.astype(dtype), precision=lax.Precision.HIGHEST)
    trend = jnp.mean(seg, axis=-1, keepdims=True) + slope[..., None] * t.astype(dtype)
    return seg - trend


def detrend(data: Any, axis: int = -1, type: str = "linear",
            bp: int | Sequence[int] | np.ndarray = 0, overwrite_data: None = None) -> Any:
    """Remove a linear or constant trend from ``data`` along ``axis``
    (``jax.scipy.signal.detrend``).

    Args:
        data: the input array (integers become the default float type).
        axis: the axis along which to detrend.
        type: ``"linear"`` (the least-squares line, or one line per piece between
            breakpoints) or ``"constant"`` (the mean).
        bp: static breakpoints along ``axis`` for ``"linear"``: a line is fitted to each
            piece between consecutive breakpoints.
        overwrite_data: not supported (``NotImplementedError`` unless None).

    Returns:
        The detrended data, of ``data``'s inexact dtype.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> detrend(jnp.array([1.0, 4.0, 8.0, 8.0, 9.0]), type="constant")
        Array([-5., -2.,  2.,  2.,  3.], dtype=float32)
    """
    if overwrite_data is not None:
        raise NotImplementedError("fungrad.scipy.signal.detrend: overwrite_data argument not "
                                  "implemented.")
    if type not in ("constant", "linear"):
        raise ValueError(f"fungrad.scipy.signal.detrend: trend type must be 'linear' or "
                         f"'constant', got {type!r}")
    data, = promote_dtypes_inexact(ensure_arraylike("fungrad.scipy.signal.detrend", data))
    if type == "constant":
        return data - jnp.mean(data, axis=axis, keepdims=True)
    axis = canonicalize_axis(axis, aval(data).ndim, "fungrad.scipy.signal.detrend")
    n = aval(data).shape[axis]
    breaks = np.sort(np.unique(np.r_[0, bp, n]))
    if breaks[0] < 0 or breaks[-1] > n:
        raise ValueError("fungrad.scipy.signal.detrend: breakpoints must be non-negative and "
                         f"less than length of data along given axis ({n}), got bp={bp!r}")
    if len(breaks) < 2:
        return data
    moved = jnp.moveaxis(data, axis, -1)
    pieces = [_line_residual(moved[..., int(a):int(b)]) for a, b in zip(breaks[:-1], breaks[1:])]
    return jnp.moveaxis(jnp.concatenate(pieces, axis=-1), -1, axis)


# --------------------------------------------------------------------------- spectral analysis

def _window(window: Any, nperseg: int | None, length: int, dtype: np.dtype) -> tuple[Any, int]:
    """The window as an array of ``dtype`` and the segment length, as JAX's
    ``_triage_segments``: a named window is ``nperseg`` long (default and at most
    ``length``, with a warning); an array window sets ``nperseg``."""
    if isinstance(window, (str, tuple)):
        n = length if nperseg is None else int(nperseg)
        if n > length:
            warnings.warn(f"nperseg={n} is greater than input_length={length}, using "
                          f"nperseg={length}")
            n = length
        return jnp.asarray(get_window(window, n), dtype=dtype), n
    win = jnp.asarray(window, dtype=dtype)
    n = aval(win).size if nperseg is None else int(nperseg)
    if aval(win).ndim != 1:
        raise ValueError("fungrad.scipy.signal: window must be 1-D")
    if length < aval(win).size:
        raise ValueError("fungrad.scipy.signal: window is longer than input signal")
    if n != aval(win).size:
        raise ValueError("fungrad.scipy.signal: value specified for nperseg is different from "
                         "length of window")
    return win, n


_BOUNDARIES = ("even", "odd", "constant", "zeros", None)
_PAD_MODES = {"even": "reflect", "constant": "edge", "zeros": "constant"}  # jnp.pad's names


def _odd_extension(x: Any, n: int) -> Any:
    """``x`` extended by ``n`` points at both ends of its last axis by odd symmetry about
    the end points (``2 x[0] - x[n:0:-1]``)."""
    if n < 1:
        return x
    length = aval(x).shape[-1]
    if n > length - 1:
        raise ValueError(f"fungrad.scipy.signal: the extension length n ({n}) is too big. It "
                         f"must not exceed x.shape[axis]-1, which is {length - 1}.")
    left = 2 * x[..., :1] - jnp.flip(x[..., 1:n + 1], axis=-1)
    right = 2 * x[..., -1:] - jnp.flip(x[..., length - n - 1:length - 1], axis=-1)
    return jnp.concatenate([left, x, right], axis=-1)


def _extend(x: Any, boundary: str | None, n: int) -> Any:
    """``x`` extended by ``n`` points at both ends of its last axis, as ``boundary`` says."""
    if boundary is None:
        return x
    if boundary == "odd":
        return _odd_extension(x, n)
    widths = [(0, 0)] * (aval(x).ndim - 1) + [(n, n)]
    return jnp.pad(x, widths, _PAD_MODES[boundary])


def _detrend_function(detrend_type: Any) -> Callable[[Any], Any]:
    """How the segments (time on the last axis) are detrended: by name, not at all, or by
    a user function, which sees them with time last (as SciPy passes each segment)."""
    if isinstance(detrend_type, str):
        return lambda d: detrend(d, type=detrend_type, axis=-1)
    if callable(detrend_type):
        return detrend_type
    if not detrend_type:
        return lambda d: d
    raise ValueError(f"fungrad.scipy.signal: unsupported detrend type: {detrend_type!r}")


def _segment_spectra(x: Any, win: Any, detrend_func: Callable, nperseg: int, noverlap: int,
                     nfft: int, twosided: bool) -> Any:
    """The FFTs of the windowed, detrended segments of ``x`` (time last):
    ``(..., segments, frequencies)``."""
    length, step = aval(x).shape[-1], nperseg - noverlap
    starts = np.arange(0, length - nperseg + 1, step)
    segments = jnp.take(x, (starts[:, None] + np.arange(nperseg)).astype(np.int32), axis=-1)
    segments = detrend_func(segments)
    if jnp.iscomplexobj(win):
        segments, = promote_dtypes_complex(segments)
    segments = win * segments
    if twosided:
        return jnp.fft.fft(segments, n=nfft)
    return jnp.fft.rfft(jnp.real(segments), n=nfft)


def _without(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1:]


def _spectral_helper(x: Any, y: Any, fs: Any, window: Any, nperseg: int | None,
                     noverlap: int | None, nfft: int | None, detrend_type: Any,
                     return_onesided: bool, scaling: str, axis: int, mode: str,
                     boundary: str | None = None, padded: bool = False
                     ) -> tuple[Any, Any, Any]:
    """``(freqs, times, spectra)`` of ``x`` (and ``y``: their cross spectra), as
    ``scipy.signal._spectral_helper``; ``y=None`` is the auto-spectrum of ``x``."""
    name = "fungrad.scipy.signal"
    if boundary not in _BOUNDARIES:
        raise ValueError(f"{name}: unknown boundary option '{boundary}', must be one of: "
                         f"{list(_BOUNDARIES)}")
    if y is None:
        x, = promote_dtypes_inexact(ensure_arraylike(name, x))
        outer = _without(aval(x).shape, canonicalize_axis(axis, aval(x).ndim, name))
    else:
        if mode != "psd":
            raise ValueError(f"{name}: two-argument mode is available only when mode=='psd'")
        x, y = promote_dtypes_inexact(*ensure_arraylike(name, x, y))
        if aval(x).ndim != aval(y).ndim:
            raise ValueError(f"{name}: two-arguments must have the same rank ({aval(x).ndim} vs "
                             f"{aval(y).ndim}).")
        ax = canonicalize_axis(axis, aval(x).ndim, name)
        try:
            outer = np.broadcast_shapes(_without(aval(x).shape, ax), _without(aval(y).shape, ax))
        except ValueError as err:
            raise ValueError(f"{name}: x and y cannot be broadcast together.") from err
    axis = canonicalize_axis(axis, aval(x).ndim, name)
    result_dtype = to_complex_dtype(aval(x).dtype)
    freq_dtype = np.finfo(result_dtype).dtype
    if nperseg is not None:
        nperseg = static_int(nperseg, f"{name}: nperseg")
        if nperseg < 1:
            raise ValueError(f"{name}: nperseg must be a positive integer")
    win, nperseg = _window(window, nperseg, aval(x).shape[axis], aval(x).dtype)
    noverlap = nperseg // 2 if noverlap is None else static_int(noverlap, f"{name}: noverlap")
    nfft = nperseg if nfft is None else static_int(nfft, f"{name}: nfft")

    if aval(x).size == 0 or (y is not None and aval(y).size == 0):
        shape = aval(x).shape if y is None else \
            outer[:axis] + (min(aval(x).shape[axis], aval(y).shape[axis]),) + outer[axis:]
        return (jnp.zeros(shape, freq_dtype), jnp.zeros(shape, freq_dtype),
                jnp.zeros(shape, result_dtype))

    x = jnp.moveaxis(x, axis, -1)
    if y is not None:
        y = jnp.moveaxis(y, axis, -1)
        gap = aval(y).shape[-1] - aval(x).shape[-1]  # zero-pad the shorter signal
        x = jnp.pad(x, [(0, 0)] * (aval(x).ndim - 1) + [(0, max(gap, 0))])
        y = jnp.pad(y, [(0, 0)] * (aval(y).ndim - 1) + [(0, max(-gap, 0))])
    if nfft < nperseg:
        raise ValueError(f"{name}: nfft must be greater than or equal to nperseg.")
    if noverlap >= nperseg:
        raise ValueError(f"{name}: noverlap must be less than nperseg.")
    step = nperseg - noverlap
    signals = [x] if y is None else [x, y]
    signals = [_extend(s, boundary, nperseg // 2) for s in signals]
    if padded:  # to a whole number of segments
        extra = (-(aval(signals[0]).shape[-1] - nperseg) % step) % nperseg
        signals = [jnp.pad(s, [(0, 0)] * (aval(s).ndim - 1) + [(0, extra)]) for s in signals]
    detrend_func = _detrend_function(detrend_type)

    if scaling == "density":
        scale = 1.0 / (fs * jnp.sum(win * win))
    elif scaling == "spectrum":
        scale = 1.0 / jnp.sum(win) ** 2
    else:
        raise ValueError(f"{name}: unknown scaling: {scaling!r}")
    if mode == "stft":
        scale = jnp.sqrt(scale)
    scale, = promote_dtypes_complex(scale)

    twosided = not return_onesided
    if return_onesided and any(jnp.iscomplexobj(s) for s in signals):
        twosided = True
        warnings.warn("Input data is complex, switching to return_onesided=False")
    freqs = (jnp.fft.fftfreq if twosided else jnp.fft.rfftfreq)(nfft, 1 / fs, dtype=freq_dtype)

    spectra = [_segment_spectra(s, win, detrend_func, nperseg, noverlap, nfft, twosided)
               for s in signals]
    if y is not None:
        result = jnp.conj(spectra[0]) * spectra[1]
    elif mode == "psd":
        result = jnp.conj(spectra[0]) * spectra[0]
    else:
        result = spectra[0]
    result = result * scale
    if not twosided and mode == "psd":  # the negative frequencies' power, folded
        result = result.at[..., 1:None if nfft % 2 else -1].mul(2)

    length = aval(signals[0]).shape[-1]
    time = jnp.asarray(np.arange(nperseg / 2, length - nperseg / 2 + 1, step), freq_dtype) / fs
    if boundary is not None:
        time = time - (nperseg / 2) / fs
    result = result.astype(result_dtype)
    if y is None and mode != "stft":
        result = jnp.real(result)
    return freqs, time, jnp.moveaxis(result, -1, axis)


def stft(x: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int = 256,
         noverlap: int | None = None, nfft: int | None = None, detrend: Any = False,
         return_onesided: bool = True, boundary: str | None = "zeros", padded: bool = True,
         axis: int = -1) -> tuple[Any, Any, Any]:
    """Short-time Fourier transform (``jax.scipy.signal.stft``).

    Args:
        x: the signal.
        fs: its sampling frequency.
        window: a window array, or a SciPy window name (or ``(name, parameter)`` tuple).
        nperseg: the segment length (at most the signal's length, with a warning).
        noverlap: the overlap of consecutive segments (default ``nperseg // 2``).
        nfft: the FFT length, for zero-padded segments (default ``nperseg``).
        detrend: ``False`` (none), ``"constant"``, ``"linear"`` or a function of a segment.
        return_onesided: the non-negative frequencies only for a real signal.
        boundary: how the signal is extended by ``nperseg // 2`` at both ends: ``"zeros"``,
            ``"even"``, ``"odd"``, ``"constant"`` or ``None``.
        padded: zero-pad the end to a whole number of segments.
        axis: the time axis.

    Returns:
        ``(f, t, Zxx)``: the frequencies, the segment times, and the transform, whose
        frequency axis replaces ``axis`` and whose segment axis is last.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> f, t, z = stft(jnp.array([1.0, 2.0, 3.0, 2.0, 1.0, 0.0, 1.0, 2.0]), nperseg=4)
        >>> z.shape, z.dtype
        ((3, 5), dtype('complex64'))
    """
    return _spectral_helper(x, None, fs, window, nperseg, noverlap, nfft, detrend,
                            return_onesided, scaling="spectrum", axis=axis, mode="stft",
                            boundary=boundary, padded=padded)


def csd(x: Any, y: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int | None = None,
        noverlap: int | None = None, nfft: int | None = None, detrend: Any = "constant",
        return_onesided: bool = True, scaling: str = "density", axis: int = -1,
        average: str = "mean") -> tuple[Any, Any]:
    """Cross power spectral density by Welch's method (``jax.scipy.signal.csd``).

    The signals are cut into overlapping windowed segments; the products of their
    spectra are averaged over the segments.

    Args:
        x: the first signal.
        y: the second signal (its length along ``axis`` may differ: the shorter one is
            zero-padded), or ``None`` for the power spectral density of ``x``.
        fs: the sampling frequency.
        window: a window array, or a SciPy window name (or ``(name, parameter)`` tuple).
        nperseg: the segment length (default: the whole signal).
        noverlap: the overlap of consecutive segments (default ``nperseg // 2``).
        nfft: the FFT length (default ``nperseg``).
        detrend: ``"constant"``, ``"linear"``, ``False`` or a function of a segment.
        return_onesided: a one-sided spectrum for real signals.
        scaling: ``"density"`` (per unit of frequency) or ``"spectrum"`` (power).
        axis: the time axis.
        average: ``"mean"`` or ``"median"`` (bias-corrected) over the segments.

    Returns:
        ``(f, Pxy)``: the frequencies and the cross spectral density (complex unless
        ``y`` is None).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> f, p = csd(jnp.array([1.0, 0.0, -1.0, 0.0] * 4), None, nperseg=8)
        >>> f.shape, p.dtype
        ((5,), dtype('float32'))
    """
    freqs, _, pxy = _spectral_helper(x, y, fs, window, nperseg, noverlap, nfft, detrend,
                                     return_onesided, scaling, axis, mode="psd")
    if y is not None:
        pxy = pxy + 0j  # complex even where x and y are real
    if aval(pxy).ndim >= 2 and aval(pxy).size > 0:
        if aval(pxy).shape[-1] > 1:
            if average == "median":
                n = aval(pxy).shape[-1]
                bias = 1 + sum(1 / (k + 1) - 1 / k for k in np.arange(2.0, n, 2))
                if jnp.iscomplexobj(pxy):
                    pxy = lax.complex(jnp.median(jnp.real(pxy), axis=-1),
                                      jnp.median(jnp.imag(pxy), axis=-1))
                else:
                    pxy = jnp.median(pxy, axis=-1)
                pxy = pxy / jnp.asarray(bias, aval(pxy).dtype)
            elif average == "mean":
                pxy = jnp.mean(pxy, axis=-1)
            else:
                raise ValueError(f'fungrad.scipy.signal.csd: average must be "median" or '
                                 f'"mean", got {average!r}')
        else:
            pxy = jnp.reshape(pxy, aval(pxy).shape[:-1])
    return freqs, pxy


def welch(x: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int | None = None,
          noverlap: int | None = None, nfft: int | None = None, detrend: Any = "constant",
          return_onesided: bool = True, scaling: str = "density", axis: int = -1,
          average: str = "mean") -> tuple[Any, Any]:
    """Power spectral density by Welch's method (``jax.scipy.signal.welch``): the real
    ``csd(x, None, ...)``, with ``csd``'s arguments.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> f, p = welch(jnp.array([1.0, 0.0, -1.0, 0.0] * 4), nperseg=8, detrend=False)
        >>> f
        Array([0.   , 0.125, 0.25 , 0.375, 0.5  ], dtype=float32)
    """
    freqs, pxx = csd(x, None, fs=fs, window=window, nperseg=nperseg, noverlap=noverlap,
                     nfft=nfft, detrend=detrend, return_onesided=return_onesided,
                     scaling=scaling, axis=axis, average=average)
    return freqs, jnp.real(pxx)


def _overlap_add(frames: Any, step: int) -> Any:
    """The frames ``(..., n, length)`` added at offsets ``0, step, 2 step, ...``:
    ``(..., step * (n - 1) + length)``. Each frame is cut into ``ceil(length / step)``
    chunks of ``step``; chunk ``j`` of frame ``i`` lands in output chunk ``i + j``, so
    the sum is ``ceil(length / step)`` shifted copies of the frame axis."""
    *batch, n, length = aval(frames).shape
    chunks = -(-length // step)
    frames = jnp.pad(frames, [(0, 0)] * len(batch) + [(0, 0), (0, chunks * step - length)])
    frames = jnp.reshape(frames, (*batch, n, chunks, step))
    out = sum(jnp.pad(frames[..., j, :], [(0, 0)] * len(batch) + [(j, chunks - 1 - j), (0, 0)])
              for j in range(chunks))
    return jnp.reshape(out, (*batch, (n + chunks - 1) * step))[..., :step * (n - 1) + length]


def istft(Zxx: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int | None = None,
          noverlap: int | None = None, nfft: int | None = None, input_onesided: bool = True,
          boundary: bool = True, time_axis: int = -1, freq_axis: int = -2) -> tuple[Any, Any]:
    """Inverse short-time Fourier transform (``jax.scipy.signal.istft``): the inverse of
    ``stft`` by weighted overlap-add.

    Args:
        Zxx: the transform, at least 2-D.
        fs: the sampling frequency.
        window: the window ``stft`` used (an array or a SciPy window name).
        nperseg: the segment length (default: from the frequency axis's size).
        noverlap: the overlap of consecutive segments (default ``nperseg // 2``).
        nfft: the FFT length (default: from the frequency axis's size).
        input_onesided: ``Zxx`` holds the non-negative frequencies of a real signal.
        boundary: ``stft`` extended the signal at both ends (its default): drop them.
        time_axis: the segment axis of ``Zxx``.
        freq_axis: the frequency axis of ``Zxx``.

    Returns:
        ``(t, x)``: the sample times and the signal (real when ``input_onesided``).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> x = jnp.array([1.0, 2.0, 3.0, 2.0, 1.0, 0.0, 1.0, 2.0])
        >>> istft(stft(x, nperseg=4)[2])[1]
        Array([1., 2., 3., 2., 1., 0., 1., 2.], dtype=float32)
    """
    name = "fungrad.scipy.signal.istft"
    Zxx = ensure_arraylike(name, Zxx)
    ndim = aval(Zxx).ndim
    if ndim < 2:
        raise ValueError(f"{name}: input stft must be at least 2d, got shape {aval(Zxx).shape}")
    freq_axis = canonicalize_axis(freq_axis, ndim, name)
    time_axis = canonicalize_axis(time_axis, ndim, name)
    if freq_axis == time_axis:
        raise ValueError(f"{name}: must specify differing time and frequency axes!")
    Zxx = Zxx.astype(to_complex_dtype(aval(Zxx).dtype))
    n_default = 2 * (aval(Zxx).shape[freq_axis] - 1) if input_onesided \
        else aval(Zxx).shape[freq_axis]
    nperseg = static_int(nperseg or n_default, f"{name}: nperseg")
    if nperseg < 1:
        raise ValueError(f"{name}: nperseg must be a positive integer")
    if nfft is None:
        nfft = n_default + (1 if input_onesided and nperseg == n_default + 1 else 0)
    else:
        nfft = static_int(nfft, f"{name}: nfft")
    if nfft < nperseg:
        raise ValueError(f"{name}: FFT length ({nfft}) must be longer than nperseg ({nperseg}).")
    noverlap = static_int(noverlap or nperseg // 2, f"{name}: noverlap")
    if noverlap >= nperseg:
        raise ValueError(f"{name}: noverlap must be less than nperseg.")
    step = nperseg - noverlap

    if time_axis != ndim - 1 or freq_axis != ndim - 2:
        outer = tuple(i for i in range(ndim) if i not in (time_axis, freq_axis))
        Zxx = jnp.transpose(Zxx, outer + (freq_axis, time_axis))
    inverse = jnp.fft.irfft if input_onesided else jnp.fft.ifft
    segments = inverse(Zxx, n=nfft, axis=-2)[..., :nperseg, :]  # (..., nperseg, frames)
    if isinstance(window, (str, tuple)):
        win = jnp.asarray(get_window(window, nperseg), dtype=np.finfo(aval(segments).dtype).dtype)
    else:
        win = jnp.asarray(window)
        if aval(win).ndim != 1:
            raise ValueError(f"{name}: window must be 1-D")
        if aval(win).shape[0] != nperseg:
            raise ValueError(f"{name}: window must have length of {nperseg}")
    segments = segments * jnp.sum(win)  # undoes stft's "spectrum" scaling
    win_col = win[:, None]
    x = _overlap_add(jnp.swapaxes(segments * win_col, -2, -1), step)
    frames = aval(segments).shape[-1]
    norm = _overlap_add(jnp.broadcast_to(jnp.swapaxes(win_col * win_col, -2, -1),
                                         (frames, nperseg)), step)
    if boundary:
        x = x[..., nperseg // 2:-(nperseg // 2)]
        norm = norm[..., nperseg // 2:-(nperseg // 2)]
    x = x / jnp.where(norm > 1e-10, norm, 1.0)
    if aval(x).ndim > 1 and time_axis != ndim - 1:
        x = jnp.moveaxis(x, -1, time_axis - 1 if freq_axis < time_axis else time_axis)
    time = jnp.arange(aval(x).shape[0], dtype=np.finfo(aval(x).dtype).dtype) / fs
    return time, x
