"""Window functions for signal processing: ``bartlett``, ``blackman``, ``hamming``,
``hanning`` and ``kaiser``."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.core import Tracer
from fungrad.numpy._ufuncs import abs as _abs, add, divide, multiply, square, subtract
from fungrad.numpy._ufuncs_math import cos, i0, sqrt
from fungrad.numpy._util import aval, ensure_arraylike


def _window_length(M: Any, fname: str) -> int:
    """The static length ``M`` as an int (a float truncates, as ``int()`` and JAX do)."""
    if isinstance(M, Tracer):
        M = M._concrete(f"{fname}: M (the window length must be static)")
    if isinstance(M, (str, bytes)) or np.ndim(M) != 0:
        raise TypeError(f"{fname}: M must be an integer, got {M!r}")
    try:
        n = int(M)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"{fname}: M must be an integer, got {M!r} of type "
                        f"{type(M).__name__}") from None
    if n < 0:
        raise ValueError(f"{fname}: M must be non-negative, got {n}")
    return n


def _positions(M: int) -> Any:
    """``0, 1, ..., M - 1`` in the default float dtype."""
    return lax.iota(dtypes.default_float_dtype(), M)


def _ones(M: int) -> Any:
    return lax.full((M,), 1, dtypes.default_float_dtype())


def _cos_term(n: Any, k: int, M: int) -> Any:
    """``cos(2 pi k n / (M - 1))``."""
    return cos(divide(multiply(2 * k * np.pi, n), M - 1))


def bartlett(M: int) -> Any:
    """The Bartlett (triangular) window of ``M`` points, zero at both ends: a taper that
    reduces spectral leakage (``M`` static)."""
    M = _window_length(M, "bartlett")
    if M <= 1:
        return _ones(M)
    n = _positions(M)
    return subtract(1, divide(_abs(subtract(add(multiply(2, n), 1), M)), M - 1))


def blackman(M: int) -> Any:
    """The Blackman window of ``M`` points (three cosine terms): a taper with low side lobes
    (``M`` static)."""
    M = _window_length(M, "blackman")
    if M <= 1:
        return _ones(M)
    n = _positions(M)
    return add(subtract(0.42, multiply(0.5, _cos_term(n, 1, M))),
               multiply(0.08, _cos_term(n, 2, M)))


def hamming(M: int) -> Any:
    """The Hamming window of ``M`` points, a raised cosine that does not reach zero
    (``M`` static)."""
    M = _window_length(M, "hamming")
    if M <= 1:
        return _ones(M)
    return subtract(0.54, multiply(0.46, _cos_term(_positions(M), 1, M)))


def hanning(M: int) -> Any:
    """The Hann window of ``M`` points, a raised cosine zero at both ends (``M`` static)."""
    M = _window_length(M, "hanning")
    if M <= 1:
        return _ones(M)
    return multiply(0.5, subtract(1, _cos_term(_positions(M), 1, M)))


def kaiser(M: int, beta: Any) -> Any:
    """The Kaiser window of ``M`` points, ``I0(beta sqrt(1 - (2n/(M-1) - 1)^2)) / I0(beta)``:
    ``beta`` trades main-lobe width for side-lobe level (``M`` static, ``beta`` may be traced)."""
    M = _window_length(M, "kaiser")
    beta = ensure_arraylike("kaiser", beta)
    if aval(beta).dtype.kind == "c":
        raise ValueError(f"kaiser: beta must be real, got dtype {aval(beta).dtype}")
    if M <= 1:
        return _ones(M)
    alpha = 0.5 * (M - 1)
    ratio = divide(subtract(_positions(M), alpha), alpha)
    return divide(i0(multiply(beta, sqrt(subtract(1, square(ratio))))), i0(beta))


__all__ = ["bartlett", "blackman", "hamming", "hanning", "kaiser"]
