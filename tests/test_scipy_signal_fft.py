"""fungrad.scipy.fft, fungrad.scipy.signal and fungrad.scipy.integrate against jax.scipy:
values, shapes and dtypes (eager and under jit), JVP and VJP, vmap; SciPy where JAX's
behaviour is a bug (a callable detrend, istft with an odd segment length) and for the
windows fungrad computes itself.

jax's references run as one program per call, compiled with ``QUICK_COMPILE`` (``quick``,
``fused_ref``): eagerly, jax compiles every primitive of its composites for each new shape,
and ``jax.jit``'s default optimisations take longer than these small programs run. Where
only jax's error is wanted, jax traces (``jax.eval_shape``) and compiles nothing.
"""
import warnings

import jax
import jax.scipy.fft as jfft
import jax.scipy.integrate as jintegrate
import jax.scipy.signal as jsignal
import numpy as np
import pytest
import scipy.signal

import fungrad
import fungrad.numpy as fnp
from fungrad.scipy import fft, integrate, signal
from fungrad.scipy._signal_windows import get_window
from fungrad.test_util import check_grads
from harness import QUICK_COMPILE, assert_same, compare, compare_transforms, to_jax, x64

RNG = np.random.default_rng(0)


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


def compare_quick(fg_fn, jax_fn, *args):
    """``compare`` against ``jax_fn`` run by ``quick``."""
    compare(fg_fn, jax_fn, *args, ref_out=quick(jax_fn)(*to_jax(args)))


def _input(kind, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    if kind == "c":
        return (x + 1j * RNG.standard_normal(shape)).astype(np.complex64)
    return RNG.integers(-4, 5, shape).astype(np.int32) if kind == "i" else x


# --------------------------------------------------------------------------- scipy.fft

# (function, kwargs, input kind: "r" float32, "c" complex64, "i" int32, shape)
DCT_CASES = [
    ("dct", {}, "r", (7,)),
    ("dct", {"n": 5, "axis": 0, "norm": "ortho"}, "r", (4, 3)),
    ("dct", {"n": 9, "norm": "backward"}, "r", (2, 6)),
    ("dct", {}, "c", (2, 5)),
    ("dct", {}, "i", (6,)),
    ("idct", {}, "r", (3, 8)),
    ("idct", {"n": 6, "axis": 0, "norm": "ortho"}, "r", (5, 2)),
    ("idct", {"n": 3}, "c", (4,)),
    ("dctn", {}, "r", (3, 4)),
    ("dctn", {"s": (3, 6)}, "r", (2, 4, 5)),
    ("dctn", {"axes": (0, 2), "norm": "ortho"}, "r", (3, 2, 4)),
    ("dctn", {"s": 3, "axes": 1}, "r", (2, 5)),
    ("idctn", {}, "r", (4, 3)),
    ("idctn", {"s": [5], "axes": [0], "norm": "ortho"}, "r", (3, 4)),
    ("idctn", {"s": (2, 3, 4)}, "i", (3, 3, 3)),
]


@pytest.mark.parametrize("name,kw,kind,shape", DCT_CASES,
                         ids=[f"{n}-{kw}-{k}{s}" for n, kw, k, s in DCT_CASES])
def test_dct_against_jax(name, kw, kind, shape):
    x = _input(kind, shape)
    compare_transforms(lambda x: getattr(fft, name)(x, **kw),
                       lambda x: getattr(jfft, name)(x, **kw), [x], RNG, fused_ref=True)


def test_dct_round_trips_and_finite_differences():
    x = fnp.asarray(_input("r", (3, 6)))
    for norm in (None, "ortho"):
        np.testing.assert_allclose(fft.idct(fft.dct(x, norm=norm), norm=norm), x, atol=1e-5)
        np.testing.assert_allclose(fft.idctn(fft.dctn(x, norm=norm), norm=norm), x, atol=1e-5)
    with x64():
        x = fnp.asarray(RNG.standard_normal((2, 5)))
        check_grads(lambda x: fft.dct(x, n=7, norm="ortho"), (x,), order=1)
        check_grads(lambda x: fft.idctn(x, s=(3, 4)), (x,), order=1)


@pytest.mark.parametrize("name", ["dct", "idct", "dctn", "idctn"])
def test_dct_refuses_what_jax_refuses(name):
    x = np.ones(4, np.float32)
    for kw, error in (({"type": 1}, NotImplementedError), ({"norm": "forward"}, ValueError)):
        with pytest.raises(error):
            getattr(jfft, name)(x, **kw)
        with pytest.raises(error, match=f"fungrad.scipy.fft.{name}"):
            getattr(fft, name)(x, **kw)


# --------------------------------------------------------------------------- convolutions

# (function, mode, shape of in1, shape of in2, input kind)
CONV_CASES = [
    ("convolve", "full", (7,), (3,), "r"),
    ("convolve", "same", (3,), (6,), "r"),
    ("convolve", "valid", (6, 5), (2, 3), "r"),
    ("convolve", "same", (4, 3, 5), (2, 2, 3), "c"),
    ("convolve", "full", (5,), (2,), "i"),
    ("correlate", "full", (6,), (4,), "c"),
    ("correlate", "same", (5, 4), (2, 3), "r"),
    ("correlate", "valid", (2, 3), (5, 4), "r"),
    ("convolve2d", "same", (5, 4), (3, 2), "r"),
    ("convolve2d", "valid", (2, 2), (4, 3), "c"),
    ("correlate2d", "full", (4, 5), (2, 3), "r"),
    ("correlate2d", "same", (2, 3), (5, 4), "r"),
    ("correlate2d", "same", (6, 6), (4, 4), "c"),
    ("correlate2d", "valid", (2, 2), (4, 2), "c"),
    ("fftconvolve", "full", (8,), (5,), "r"),
    ("fftconvolve", "same", (5, 6), (3, 2), "r"),
    ("fftconvolve", "valid", (3, 4), (5, 6), "c"),
    ("fftconvolve", "same", (1, 4), (3, 1), "r"),
]


@pytest.mark.parametrize("name,mode,s1,s2,kind", CONV_CASES,
                         ids=[f"{n}-{m}-{a}-{b}-{k}" for n, m, a, b, k in CONV_CASES])
def test_convolutions_against_jax(name, mode, s1, s2, kind):
    in1, in2 = _input(kind, s1), _input(kind, s2)
    compare_transforms(lambda a, b: getattr(signal, name)(a, b, mode),
                       lambda a, b: getattr(jsignal, name)(a, b, mode), [in1, in2], RNG,
                       fused_ref=True)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_fftconvolve_over_some_axes_and_convolve_by_fft(mode):
    in1, in2 = _input("r", (3, 8, 2)), _input("r", (3, 4, 2))
    compare_transforms(lambda a, b: signal.fftconvolve(a, b, mode, axes=1),
                       lambda a, b: jsignal.fftconvolve(a, b, mode, axes=1), [in1, in2], RNG,
                       fused_ref=True)
    a, b = _input("r", (9,)), _input("r", (4,))
    compare_quick(lambda a, b: signal.convolve(a, b, mode, method="fft"),
                  lambda a, b: jsignal.convolve(a, b, mode, method="fft"), a, b)


@pytest.mark.parametrize("call", [
    lambda m: m.convolve(np.ones(3), np.ones(2), mode="middle"),
    lambda m: m.convolve(np.ones(3), np.ones((2, 2))),
    lambda m: m.convolve(np.ones((3, 2)), np.ones((2, 3))),
    lambda m: m.convolve(np.ones(3), np.ones(0)),
    lambda m: m.convolve(np.ones(3), np.ones(2), method="overlap"),
    lambda m: m.convolve2d(np.ones(3), np.ones(2)),
    lambda m: m.correlate2d(np.ones((3, 3)), np.ones((2, 2)), boundary="wrap"),
    lambda m: m.fftconvolve(np.ones((3, 2)), np.ones((2, 3)), mode="valid"),
    lambda m: m.fftconvolve(np.ones((3, 2)), np.ones((2, 3)), axes=0),
], ids=["mode", "ndim", "not-nested", "empty", "method", "2d-ndim", "boundary", "fft-valid",
        "fft-mapped-axes"])
def test_convolution_errors_match_jax(call):
    with pytest.raises(Exception) as ref:
        jax.eval_shape(lambda: call(jsignal))
    with pytest.raises(type(ref.value), match="fungrad.scipy.signal"):
        call(signal)


# --------------------------------------------------------------------------- detrend

DETREND_CASES = [{}, {"type": "constant"}, {"bp": [3, 7]}, {"axis": 0, "bp": 5},
                 {"axis": 0, "type": "constant"}]


@pytest.mark.parametrize("kw", DETREND_CASES, ids=[str(kw) for kw in DETREND_CASES])
def test_detrend_against_jax(kw):
    shape = (10, 3) if "axis" in kw else (3, 10)
    with x64():  # jax fits its lines by lstsq: float32 residuals of the two differ in the 6th digit
        x = RNG.standard_normal(shape)
        compare_transforms(lambda x: signal.detrend(x, **kw), lambda x: jsignal.detrend(x, **kw),
                           [x], RNG, fused_ref=True)


def test_detrend_dtypes_and_errors():
    ints = np.array([1, 4, 8, 8, 9], np.int32)
    assert_same(signal.detrend(ints, type="constant"),
                quick(lambda x: jsignal.detrend(x, type="constant"))(ints))
    assert signal.detrend(ints).dtype == jax.eval_shape(jsignal.detrend, ints).dtype == np.float32
    with pytest.raises(ValueError, match="trend type"):
        signal.detrend(ints, type="quadratic")
    with pytest.raises(ValueError, match="breakpoints"):
        signal.detrend(ints, bp=9)
    with pytest.raises(NotImplementedError, match="overwrite_data"):
        signal.detrend(ints, overwrite_data=True)


# --------------------------------------------------------------------------- spectral analysis

def test_windows_against_scipy():
    names = ["hann", "hamming", "blackman", "blackmanharris", "nuttall", "flattop", "boxcar",
             "rect", "bartlett", "triang", "cosine", "bohman", "tukey", ("tukey", 0.3),
             ("tukey", 1.0), ("kaiser", 8.0), ("gaussian", 2.5), ("general_hamming", 0.6),
             ("general_cosine", [0.5, 0.3, 0.2])]
    for window in names:
        for n in (1, 2, 7, 16):
            np.testing.assert_allclose(get_window(window, n), scipy.signal.get_window(window, n),
                                       rtol=1e-13, atol=1e-15, err_msg=str(window))
    with pytest.raises(NotImplementedError, match="window 'dpss' is not implemented"):
        get_window("dpss", 8)
    with pytest.raises(ValueError, match="needs 1 parameter"):
        get_window("kaiser", 8)


# (function, kwargs); x is a float32 signal of 40 samples (two for csd), or (2, 40) with "2d".
SPECTRAL_CASES = [
    ("stft", {"nperseg": 16}),
    ("stft", {"nperseg": 15, "noverlap": 5, "nfft": 20, "window": "hamming", "fs": 8.0}),
    ("stft", {"nperseg": 8, "boundary": "odd", "detrend": "linear", "return_onesided": False}),
    ("stft", {"nperseg": 8, "boundary": "even", "padded": False, "axis": 0, "2d": True}),
    ("stft", {"nperseg": 8, "boundary": None, "window": ("kaiser", 4.0)}),
    ("welch", {"nperseg": 16}),
    ("welch", {"nperseg": 16, "average": "median", "scaling": "spectrum"}),
    ("welch", {"nperseg": 10, "noverlap": 7, "nfft": 13, "detrend": "linear", "2d": True}),
    ("welch", {"nperseg": 8, "return_onesided": False, "detrend": False, "fs": 2.0}),
    ("csd", {"nperseg": 16}),
    ("csd", {"nperseg": 8, "average": "median", "window": "boxcar"}),
    ("csd", {"nperseg": 12, "2d": True, "axis": 0}),
]


def _spectral(lib, name, kw):
    kw = {k: v for k, v in kw.items() if k != "2d"}
    fn = getattr(lib, name)
    if name == "csd":
        return lambda x, y: fn(x, y, **kw)
    return lambda x: fn(x, **kw)


@pytest.mark.parametrize("name,kw", SPECTRAL_CASES, ids=[f"{n}-{kw}" for n, kw in SPECTRAL_CASES])
def test_spectral_functions_against_jax(name, kw):
    shape = ((40, 2) if kw.get("axis") == 0 else (2, 40)) if kw.get("2d") else (40,)
    args = [_input("r", shape) for _ in range(2 if name == "csd" else 1)]
    compare_transforms(_spectral(signal, name, kw), _spectral(jsignal, name, kw), args, RNG,
                       fused_ref=True)


def test_csd_of_signals_of_different_lengths_and_complex_signals():
    x, y = _input("r", (3, 40)), _input("r", (1, 30))
    compare_quick(lambda x, y: signal.csd(x, y, nperseg=8),
                  lambda x, y: jsignal.csd(x, y, nperseg=8), x, y)
    x, y = _input("c", (32,)), _input("c", (32,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # both switch to a two-sided spectrum
        compare_quick(lambda x, y: signal.csd(x, y, nperseg=8, average="median"),
                      lambda x, y: jsignal.csd(x, y, nperseg=8, average="median"), x, y)
        compare_quick(lambda x: signal.stft(x, nperseg=8), lambda x: jsignal.stft(x, nperseg=8),
                      x)
    with pytest.warns(UserWarning, match="switching to return_onesided=False"):
        signal.welch(x, nperseg=8)
    with pytest.warns(UserWarning, match="nperseg=256 is greater than input_length=32"):
        signal.stft(_input("r", (32,)))


ISTFT_CASES = [{"nperseg": 16}, {"nperseg": 16, "noverlap": 12, "fs": 4.0},
               {"nperseg": 8, "window": "hamming"}, {"nperseg": 10, "input_onesided": False}]


@pytest.mark.parametrize("kw", ISTFT_CASES, ids=[str(kw) for kw in ISTFT_CASES])
def test_istft_against_jax(kw):
    stft_kw = {k: v for k, v in kw.items() if k != "input_onesided"}
    stft_kw["return_onesided"] = kw.get("input_onesided", True)
    z = np.asarray(quick(lambda x: jsignal.stft(x, **stft_kw)[2])(_input("r", (2, 48))))
    compare_transforms(lambda z: signal.istft(z, **kw), lambda z: jsignal.istft(z, **kw), [z],
                       RNG, fused_ref=True)


def test_istft_inverts_stft_over_other_axes():
    x = _input("r", (30, 3))
    _, _, z = signal.stft(x, nperseg=8, axis=0)  # (5 frequencies, 3, segments)
    ref = quick(lambda z: jsignal.istft(z, nperseg=8, time_axis=-1, freq_axis=0))(np.asarray(z))
    assert_same(signal.istft(z, nperseg=8, time_axis=-1, freq_axis=0), ref)
    restored = signal.istft(z, nperseg=8, time_axis=-1, freq_axis=0)[1]  # (3, 32): padded
    np.testing.assert_allclose(restored[:, :30], x.T, atol=1e-5)


def test_odd_segment_length_istft_and_callable_detrend_follow_scipy():
    """Two places where JAX 0.10 is wrong and SciPy is followed: ``istft`` with an odd
    ``nperseg`` (JAX's inverse FFT is one sample short and fails to broadcast), and a
    ``detrend`` function (JAX applies it across segments instead of along each one)."""
    x = _input("r", (40,))
    z = scipy.signal.stft(x, nperseg=15)[2].astype(np.complex64)
    t, ref = scipy.signal.istft(z, nperseg=15)
    np.testing.assert_allclose(signal.istft(z, nperseg=15)[1], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(signal.istft(z, nperseg=15)[0], t)
    with pytest.raises(TypeError):
        jsignal.istft(z, nperseg=15)
    remove_mean = lambda s: s - s.mean(axis=-1, keepdims=True)  # noqa: E731
    for shape, axis in (((64,), -1), ((64, 3), 0)):
        x = _input("r", shape)
        np.testing.assert_allclose(signal.welch(x, nperseg=16, detrend=remove_mean, axis=axis)[1],
                                   scipy.signal.welch(x, nperseg=16, detrend=remove_mean,
                                                      axis=axis)[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda m: m.stft(np.ones(16), nperseg=8, boundary="wrap"),
    lambda m: m.stft(np.ones(16), nperseg=8, noverlap=8),
    lambda m: m.stft(np.ones(16), nperseg=8, nfft=4),
    lambda m: m.welch(np.ones(16), nperseg=8, scaling="power"),
    lambda m: m.welch(np.ones(16), nperseg=8, average="mode"),
    lambda m: m.welch(np.ones(16), window=np.ones((2, 4))),
    lambda m: m.csd(np.ones((2, 16)), np.ones((3, 16)), nperseg=8),
    lambda m: m.istft(np.ones(8, np.complex64)),
    lambda m: m.istft(np.ones((5, 4), np.complex64), time_axis=0, freq_axis=0),
], ids=["boundary", "noverlap", "nfft", "scaling", "average", "window-2d", "broadcast",
        "istft-1d", "istft-axes"])
def test_spectral_errors_match_jax(call):
    with pytest.raises(Exception) as ref:
        jax.eval_shape(lambda: call(jsignal))
    with pytest.raises(type(ref.value), match="fungrad.scipy.signal"):
        call(signal)


# --------------------------------------------------------------------------- scipy.integrate

def test_trapezoid_against_jax():
    y, x = _input("r", (3, 6)), np.sort(_input("r", (6,)))
    compare_transforms(lambda y, x: integrate.trapezoid(y, x), jintegrate.trapezoid, [y, x], RNG,
                       fused_ref=True)
    compare_transforms(lambda y: integrate.trapezoid(y, dx=0.5, axis=0),
                       lambda y: jintegrate.trapezoid(y, dx=0.5, axis=0), [y], RNG, fused_ref=True)
    ints = np.array([1, 2, 3, 2, 3, 2, 1], np.int32)
    compare_quick(integrate.trapezoid, jintegrate.trapezoid, ints)


def test_modules_are_attributes_of_fungrad_scipy():
    assert fungrad.scipy.fft is fft and fungrad.scipy.signal is signal
    assert fungrad.scipy.integrate is integrate
