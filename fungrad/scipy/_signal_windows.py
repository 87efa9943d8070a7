"""The tapering windows of ``fungrad.scipy.signal``'s spectral functions, by name.

``get_window(window, n)`` is ``scipy.signal.get_window(window, n)`` (``fftbins=True``: the
periodic form, the first ``n`` points of the symmetric window of ``n + 1`` points) for the
windows listed in ``WINDOWS``, under SciPy's names and aliases; a window that takes a
parameter is given as a tuple, ``("kaiser", 8.0)``. The windows are computed on the host in
float64 from their defining formulas (they depend only on static arguments), so SciPy is
not needed; JAX calls SciPy for every window but ``"hann"``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def _general_cosine(m: int, coefficients: Any) -> np.ndarray:
    """``sum_k (-1)^k a_k cos(2 pi k n / (m - 1))``: the Hann, Hamming, Blackman family."""
    phase = np.linspace(-np.pi, np.pi, m)
    return sum(a * np.cos(k * phase) for k, a in enumerate(coefficients))


def _bartlett(m: int) -> np.ndarray:
    n = np.arange(m)
    return np.where(n <= (m - 1) / 2, 2 * n / (m - 1), 2 - 2 * n / (m - 1))


def _triang(m: int) -> np.ndarray:
    """A triangle that, unlike Bartlett's, does not reach zero at the ends."""
    n = np.arange(1, (m + 1) // 2 + 1)
    if m % 2:
        half = 2 * n / (m + 1)
        return np.concatenate([half, half[-2::-1]])
    half = (2 * n - 1) / m
    return np.concatenate([half, half[::-1]])


def _bohman(m: int) -> np.ndarray:
    x = np.abs(np.linspace(-1, 1, m)[1:-1])
    inner = (1 - x) * np.cos(np.pi * x) + np.sin(np.pi * x) / np.pi
    return np.concatenate([[0.0], inner, [0.0]])


def _gaussian(m: int, std: float) -> np.ndarray:
    n = np.arange(m) - (m - 1) / 2
    return np.exp(-n ** 2 / (2 * std * std))


def _tukey(m: int, alpha: float = 0.5) -> np.ndarray:
    """A flat top with cosine tapers over the fraction ``alpha`` of the window."""
    if alpha <= 0:
        return np.ones(m)
    if alpha >= 1:
        return _general_cosine(m, (0.5, 0.5))
    n = np.arange(m)
    width = int(np.floor(alpha * (m - 1) / 2))
    rise = 0.5 * (1 + np.cos(np.pi * (-1 + 2 * n[:width + 1] / alpha / (m - 1))))
    fall = 0.5 * (1 + np.cos(np.pi * (-2 / alpha + 1 + 2 * n[m - width - 1:] / alpha / (m - 1))))
    return np.concatenate([rise, np.ones(m - 2 * width - 2), fall])


def _cosine_family(*coefficients: float) -> Callable[[int], np.ndarray]:
    return lambda m: _general_cosine(m, coefficients)


# name -> (the symmetric window of m points from its parameters, the parameters it needs)
_FUNCS: dict[tuple[str, ...], tuple[Callable[..., np.ndarray], int]] = {
    ("hann", "han"): (_cosine_family(0.5, 0.5), 0),
    ("hamming", "hamm", "ham"): (_cosine_family(0.54, 0.46), 0),
    ("blackman", "black", "blk"): (_cosine_family(0.42, 0.50, 0.08), 0),
    ("blackmanharris", "blackharr", "bkh"): (_cosine_family(0.35875, 0.48829, 0.14128,
                                                            0.01168), 0),
    ("nuttall", "nutl", "nut"): (_cosine_family(0.3635819, 0.4891775, 0.1365995, 0.0106411), 0),
    ("flattop", "flat", "flt"): (_cosine_family(0.21557895, 0.41663158, 0.277263158,
                                                0.083578947, 0.006947368), 0),
    ("boxcar", "box", "ones", "rect", "rectangular"): (np.ones, 0),
    ("bartlett", "bart", "brt"): (_bartlett, 0),
    ("triangle", "triang", "tri"): (_triang, 0),
    ("cosine", "halfcosine"): (lambda m: np.sin(np.pi / m * (np.arange(m) + 0.5)), 0),
    ("bohman", "bman", "bmn"): (_bohman, 0),
    ("tukey", "tuk"): (_tukey, -1),  # its parameter is optional
    ("kaiser", "ksr"): (np.kaiser, 1),
    ("gaussian", "gauss", "gss"): (_gaussian, 1),
    ("general hamming", "general_hamming"): (lambda m, a: _general_cosine(m, (a, 1 - a)), 1),
    ("general cosine", "general_cosine"): (_general_cosine, 1),
}
WINDOWS = {name: entry for names, entry in _FUNCS.items() for name in names}


def get_window(window: str | tuple, n: int) -> np.ndarray:
    """The periodic window ``window`` (a name, or a tuple of a name and its parameters) of
    ``n`` points, in float64, as ``scipy.signal.get_window(window, n)``."""
    name, *params = (window,) if isinstance(window, str) else window
    if not isinstance(name, str) or name.lower() not in WINDOWS:
        raise NotImplementedError(
            f"fungrad.scipy.signal: window {window!r} is not implemented; give a window array, "
            f"or one of {sorted(names[0] for names in _FUNCS)} (by name, or as a tuple of the "
            "name and its parameters)")
    fn, nparams = WINDOWS[name.lower()]
    if nparams > 0 and len(params) != nparams:
        raise ValueError(f"fungrad.scipy.signal: the {name!r} window needs {nparams} parameter"
                         f"{'s' if nparams > 1 else ''}: pass ({name!r}, ...), got {window!r}")
    if n <= 1:
        return np.ones(n)
    return fn(n + 1, *params)[:n]
