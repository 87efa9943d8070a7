"""The convolutions of ``fungrad.scipy.signal``: ``convolve``/``correlate`` (N-d),
``convolve2d``/``correlate2d`` and ``fftconvolve``, as in ``jax.scipy.signal``.

The direct ones bind one ``lax.conv_general_dilated`` whose padding (negative where it
crops) selects the ``"full"``, ``"same"`` or ``"valid"`` part of the full convolution,
with the smaller input as the kernel; ``fftconvolve`` multiplies spectra from
``fungrad.numpy.fft`` and cuts the part out. Integers compute in the default float type,
and one input must be at least as large as the other along every axis, as in JAX.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import aval, canonicalize_axis, ensure_arraylike, promote_dtypes_inexact

_MODES = ("full", "same", "valid")


# --------------------------------------------------------------------------- convolution

def _check_conv_inputs(name: str, in1: Any, in2: Any, mode: str) -> tuple[Any, Any]:
    """Inputs of a direct convolution, promoted to their inexact dtype, or JAX's error."""
    if mode not in _MODES:
        raise ValueError(f"fungrad.scipy.signal.{name}: mode must be one of {list(_MODES)}, "
                         f"got {mode!r}")
    in1, in2 = ensure_arraylike(f"fungrad.scipy.signal.{name}", in1, in2)
    s1, s2 = aval(in1).shape, aval(in2).shape
    if len(s1) != len(s2):
        raise ValueError(f"fungrad.scipy.signal.{name}: in1 and in2 must have the same number "
                         f"of dimensions, got shapes {s1} and {s2}")
    if 0 in s1 or 0 in s2:
        raise ValueError(f"fungrad.scipy.signal.{name}: zero-size arrays are not supported, "
                         f"got shapes {s1} and {s2}")
    if not (all(a >= b for a, b in zip(s1, s2)) or all(a <= b for a, b in zip(s1, s2))):
        raise ValueError(f"fungrad.scipy.signal.{name}: one input must be smaller than the other "
                         f"in every dimension, got shapes {s1} and {s2}")
    return tuple(promote_dtypes_inexact(in1, in2))


def _full_part(a: Any, b: Any, starts: Sequence[int], sizes: Sequence[int],
               precision: Any) -> Any:
    """``full[starts : starts + sizes]`` of the full N-d convolution ``full`` of ``a`` and
    ``b``, as one ``conv_general_dilated`` whose padding (negative where it crops) selects
    that part. The smaller operand is the kernel (the convolution is commutative)."""
    if all(p <= q for p, q in zip(aval(a).shape, aval(b).shape)):
        a, b = b, a
    padding = [(k - 1 - st, st + size - n)
               for n, k, st, size in zip(aval(a).shape, aval(b).shape, starts, sizes)]
    out = lax.conv_general_dilated(a[None, None], jnp.flip(b)[None, None],
                                   (1,) * aval(a).ndim, padding, precision=precision)
    return out[0, 0]


def _mode_part(mode: str, s1: Sequence[int], s2: Sequence[int]) -> tuple[list, list]:
    """Where ``mode`` starts in the full convolution of shapes ``s1``, ``s2``, and its size
    (``"same"``: ``in1``'s shape, centred as SciPy centres it)."""
    if mode == "full":
        return [0] * len(s1), [a + b - 1 for a, b in zip(s1, s2)]
    if mode == "same":
        return [(b - 1) // 2 for b in s2], list(s1)
    return [min(a, b) - 1 for a, b in zip(s1, s2)], [abs(a - b) + 1 for a, b in zip(s1, s2)]


def _convolve_direct(name: str, in1: Any, in2: Any, mode: str, precision: Any) -> Any:
    in1, in2 = _check_conv_inputs(name, in1, in2, mode)
    starts, sizes = _mode_part(mode, aval(in1).shape, aval(in2).shape)
    return _full_part(in1, in2, starts, sizes, precision)


def _convolve(name: str, in1: Any, in2: Any, mode: str, method: str, precision: Any) -> Any:
    if method == "fft":
        return fftconvolve(in1, in2, mode=mode)
    if method not in ("auto", "direct"):
        raise ValueError(f"fungrad.scipy.signal.{name}: got method={method!r}; expected "
                         "'auto', 'fft', or 'direct'.")
    return _convolve_direct(name, in1, in2, mode, precision)


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto",
             precision: Any = None) -> Any:
    """Convolution of two N-dimensional arrays (``jax.scipy.signal.convolve``).

    Args:
        in1: the first input.
        in2: the second input, with ``in1``'s number of dimensions; one of the two must be
            at least as large as the other along every axis.
        mode: ``"full"`` (every overlap, shape ``in1.shape + in2.shape - 1``), ``"same"``
            (the centred part of ``in1``'s shape) or ``"valid"`` (only full overlaps).
        method: ``"auto"`` or ``"direct"`` (one ``lax.conv_general_dilated``), or ``"fft"``
            (``fftconvolve``).
        precision: the ``lax.Precision`` of the direct convolution.

    Returns:
        The convolution, of the inputs' promoted inexact dtype.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> convolve(jnp.array([1, 2, 3, 2, 1]), jnp.array([1, 1, 1]), mode="same")
        Array([3., 6., 7., 6., 3.], dtype=float32)
    """
    return _convolve("convolve", in1, in2, mode, method, precision)


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto",
              precision: Any = None) -> Any:
    """Cross-correlation of two N-dimensional arrays (``jax.scipy.signal.correlate``):
    ``convolve(in1, flip(conj(in2)))``, with ``convolve``'s arguments.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> correlate(jnp.array([1, 2, 3, 2, 1]), jnp.array([1, 3, 2]))
        Array([ 2.,  7., 13., 15., 11.,  5.,  1.], dtype=float32)
    """
    in2 = ensure_arraylike("fungrad.scipy.signal.correlate", in2)
    return _convolve("correlate", in1, jnp.flip(jnp.conj(in2)), mode, method, precision)


def _check_2d(name: str, in1: Any, in2: Any, boundary: str, fillvalue: Any) -> None:
    if boundary != "fill" or fillvalue != 0:
        raise NotImplementedError(f"fungrad.scipy.signal.{name} only supports boundary='fill', "
                                  "fillvalue=0")
    if np.ndim(in1) != 2 or np.ndim(in2) != 2:
        raise ValueError(f"fungrad.scipy.signal.{name} only supports 2-dimensional inputs, got "
                         f"shapes {np.shape(in1)} and {np.shape(in2)}")


def convolve2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
               fillvalue: Any = 0, precision: Any = None) -> Any:
    """Convolution of two 2-dimensional arrays (``jax.scipy.signal.convolve2d``): ``convolve``
    with ``method="direct"``; only ``boundary="fill"`` with ``fillvalue=0`` is supported.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> convolve2d(jnp.array([[1, 2], [3, 4]]), jnp.ones((2, 2)))
        Array([[ 1.,  3.,  2.],
               [ 4., 10.,  6.],
               [ 3.,  7.,  4.]], dtype=float32)
    """
    _check_2d("convolve2d", in1, in2, boundary, fillvalue)
    return _convolve_direct("convolve2d", in1, in2, mode, precision)


def correlate2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
                fillvalue: Any = 0, precision: Any = None) -> Any:
    """Cross-correlation of two 2-dimensional arrays (``jax.scipy.signal.correlate2d``).

    As ``scipy.signal.correlate2d``, which differs from ``correlate`` in two places:
    ``"same"`` centres the output at ``in2.shape // 2`` of the full correlation (not
    ``(in2.shape - 1) // 2``), and ``"valid"`` with an ``in2`` larger than ``in1`` gives the
    conjugate. Only ``boundary="fill"`` with ``fillvalue=0`` is supported.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> x = jnp.array([[2, 1, 3], [1, 3, 1], [4, 1, 2]])
        >>> correlate2d(x, jnp.array([[1, 3], [4, 2]]), mode="same")
        Array([[15., 24.,  7.],
               [28., 14.,  9.],
               [ 7.,  7.,  2.]], dtype=float32)
    """
    _check_2d("correlate2d", in1, in2, boundary, fillvalue)
    in1, in2 = _check_conv_inputs("correlate2d", in1, in2, mode)
    s1, s2 = aval(in1).shape, aval(in2).shape
    kernel = jnp.flip(jnp.conj(in2))
    if mode == "same":
        return _full_part(in1, kernel, [b // 2 for b in s2], s1, precision)
    starts, sizes = _mode_part(mode, s1, s2)
    out = _full_part(in1, kernel, starts, sizes, precision)
    if mode == "valid" and s1 != s2 and all(a <= b for a, b in zip(s1, s2)):
        return jnp.conj(out)
    return out


def fftconvolve(in1: Any, in2: Any, mode: str = "full",
                axes: Sequence[int] | None = None) -> Any:
    """Convolution of two N-dimensional arrays by FFT (``jax.scipy.signal.fftconvolve``).

    The spectra of both inputs zero-padded to the full output shape are multiplied
    (``rfftn``/``irfftn`` for real inputs, ``fftn``/``ifftn`` for complex ones), and the
    ``mode``'s part is cut out, as in ``convolve``.

    Args:
        in1: the first input.
        in2: the second input, with ``in1``'s number of dimensions.
        mode: ``"full"``, ``"same"`` or ``"valid"`` (see ``convolve``).
        axes: the axes to convolve over (default: all); along the others the inputs must
            have the same size and are convolved element by element.

    Returns:
        The convolution, of the inputs' promoted inexact dtype.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> fftconvolve(jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 1.0, 0.5])).round(3)
        Array([0. , 1. , 2.5, 4. , 1.5], dtype=float32)
    """
    in1, in2 = promote_dtypes_inexact(*ensure_arraylike("fungrad.scipy.signal.fftconvolve",
                                                        in1, in2))
    shape1, shape2 = aval(in1).shape, aval(in2).shape
    if len(shape1) != len(shape2):
        raise ValueError(f"fungrad.scipy.signal.fftconvolve: in1 and in2 should have the same "
                         f"dimensionality, got shapes {shape1} and {shape2}")
    if mode not in _MODES:
        raise ValueError(f"fungrad.scipy.signal.fftconvolve: mode must be one of {list(_MODES)}, "
                         f"got {mode!r}")
    ndim = len(shape1)
    if axes is None:
        axes = list(range(ndim))
    else:
        axes = sorted({canonicalize_axis(ax, ndim, "fungrad.scipy.signal.fftconvolve")
                       for ax in ((axes,) if np.ndim(axes) == 0 else axes)})
        if any(shape1[i] != shape2[i] for i in range(ndim) if i not in axes):
            raise ValueError(f"fungrad.scipy.signal.fftconvolve: mapped axes must have same "
                             f"shape; got in1.shape={shape1} in2.shape={shape2} axes={axes}")
    s1, s2 = [shape1[i] for i in axes], [shape2[i] for i in axes]
    if mode == "valid":
        bigger, smaller = all(a >= b for a, b in zip(s1, s2)), all(a <= b for a, b in zip(s1, s2))
        if not (bigger or smaller):
            raise ValueError("fungrad.scipy.signal.fftconvolve: for 'valid' mode, one input must "
                             "be at least as large as the other in every dimension.")
        if smaller:
            in1, in2, s1, s2 = in2, in1, s2, s1
    full = [a + b - 1 for a, b in zip(s1, s2)]
    if all(a == 1 or b == 1 for a, b in zip(s1, s2)):
        conv = in1 * in2
    elif jnp.iscomplexobj(in1):
        conv = jnp.fft.ifftn(jnp.fft.fftn(in1, full, axes) * jnp.fft.fftn(in2, full, axes),
                             full, axes)
    else:
        conv = jnp.fft.irfftn(jnp.fft.rfftn(in1, full, axes) * jnp.fft.rfftn(in2, full, axes),
                              full, axes)
    sizes = {"full": full, "same": s1, "valid": [a - b + 1 for a, b in zip(s1, s2)]}[mode]
    index = [slice(None)] * ndim
    for ax, n, size in zip(axes, full, sizes):
        index[ax] = slice((n - size) // 2, (n - size) // 2 + size)
    return conv[tuple(index)]
