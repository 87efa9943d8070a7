"""The float32 math of XLA's CPU backend, bit for bit, for the samplers.

``jax.random`` on the CPU turns uniform floats into draws with XLA's own
float32 ``log``, ``log1p``, ``exp``, ``erf`` and ``erf_inv`` (not the C library's;
``pow`` and ``tan`` are the C library's ``powf`` and ``tanf``), and
LLVM contracts a multiply feeding an add into one fused multiply-add (FMA, a
single rounding) wherever the multiply has no other use. To give the same bits,
each function below repeats XLA's float32 steps in the order and with the
roundings its generated x86-64 (AVX2/FMA) code performs; the comments name
the source of each step. ``fma`` emulates the fused operations exactly.

The ``*64`` functions do the same for XLA's float64 algorithms (``exp``, ``log1p``,
``erf_inv``; the C library's ``log``, ``tan``, ``pow`` and ``erf``), with ``fma64``.

All functions take and return NumPy (or NumPy-like, via ``xp``) arrays.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any, Callable

import numpy as np

from fungrad._core import core
from fungrad.backends.masked import may_hold, where_masked
from fungrad.interpreters import ad, batching
from fungrad.lax import (add, cos, div, exp as lax_exp, log as lax_log, mul, pow as lax_pow,
                         square, sub)
from fungrad.lax._counter_rng import cpu_pool
from fungrad.lax._ops import broadcast_to_shape, const
from fungrad.lax._prim import elementwise_prim

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)


def _below_half_ulp(dtype: np.dtype) -> np.int64:
    """The float64 mantissa bits below half a unit in the last place of ``dtype``."""
    return np.int64((1 << (52 - np.finfo(dtype).nmant - 1)) - 1)


_LOW_BITS = {F32: _below_half_ulp(F32), F16: _below_half_ulp(F16)}


def fma(xp, a, b, c, dtype: np.dtype = F32):
    """``a * b + c`` rounded once to float32 (a fused multiply-add), or to float16.

    The product of two float32 (or float16) numbers is exact in float64; the float64 sum
    ``s`` is rounded, and rounding ``s`` to ``dtype`` then gives the correctly rounded
    result unless ``s`` lies exactly halfway between two numbers of ``dtype`` (for float32
    its low 29 mantissa bits ``1000...0``) while the exact sum does not. Such ``s`` (found
    by their bits below that half-ulp being zero, a cheap superset) are nudged one float64
    step towards the exact sum, whose rounding error ``TwoSum`` gives exactly. (Rounding
    a float32 FMA to float16 instead rounds twice: 9 of 2 million random operands differ.)
    """
    p = xp.multiply(a, b, dtype=np.float64)
    s = xp.asarray(xp.add(p, c, dtype=np.float64))
    suspect = (s.view(np.int64) & _LOW_BITS[np.dtype(dtype)]) == 0
    if may_hold(xp, suspect):  # (tested first: most calls have none, and this is hot)
        s = where_masked(xp, suspect, s, functools.partial(_nudged, xp), p, c, s)
    return s.astype(dtype)


def _nudged(xp, p, c, s):
    """``s = fl(p + c)`` moved one float64 step towards ``p + c`` where it is inexact."""
    bb = s - p
    err = (p - (s - bb)) + (c - bb)  # p + c == s + err exactly (Knuth's TwoSum)
    err = xp.where(xp.isfinite(err), err, 0.0)
    return xp.where(err == 0, s, xp.nextafter(s, xp.copysign(np.inf, err)))


def _two_sum(x, y):
    """``(s, e)`` with ``s = fl(x + y)`` and ``x + y = s + e`` exactly (Knuth)."""
    s = x + y
    bb = s - x
    return s, (x - (s - bb)) + (y - bb)


_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's splitting constant for float64


def _two_prod(x, y):
    """``(p, e)`` with ``p = fl(x * y)`` and ``x * y = p + e`` exactly (Dekker), barring
    overflow and underflow."""
    p = x * y
    cx, cy = _SPLIT * x, _SPLIT * y
    xh, yh = cx - (cx - x), cy - (cy - y)
    xl, yl = x - xh, y - yh
    return p, ((xh * yh - p) + xh * yl + xl * yh) + xl * yl


def fma64(xp, a, b, c):
    """``a * b + c`` in float64 rounded once, as XLA's float64 FMAs compute it.

    Boldo and Melquiond's emulation ("Emulation of FMA and correctly rounded sums:
    proved algorithms using rounding to odd", 2008): the exact product ``uh + ul``, then
    ``c + ul`` and ``uh + th`` as exact sums, the two low parts added with rounding to odd
    (a sum with a rounding error and an even last bit moves one step towards the exact
    value), and one final rounding to nearest. Non-finite or overflowing operands take
    the plain ``a * b + c``.
    """
    a, b, c = (xp.asarray(v, np.float64) for v in (a, b, c))
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, ul)
    vh, vl = _two_sum(uh, th)
    z, err = _two_sum(tl, vl)
    even = (xp.asarray(z).view(np.int64) & 1) == 0
    z = xp.where((err != 0) & even, xp.nextafter(z, xp.copysign(np.inf, err)), z)
    out = vh + z
    return xp.where(xp.isfinite(out) & xp.isfinite(uh), out, a * b + c)


def _f32(xp, value):
    return xp.asarray(value, F32)


def _from_bits(bits: int) -> np.float32:
    return np.array(bits, np.uint32).view(F32)[()]


# --------------------------------------------------------------------------- log

# XLA CPU replaces float32 log by a Cephes polynomial (as in Eigen's plog): x = m * 2**e
# with m in [sqrt(1/2), sqrt(2)), log(x) = log(m) + e * log(2), log(m) from a degree-8
# polynomial in m - 1; log(2) split as _LN2_HI + _LN2_LO so that e * _LN2_HI is exact.
_LOG_P = tuple(np.float32(c) for c in (
    7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
    -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1))
_LN2_LO = np.float32(-2.12194440e-4)
_LN2_HI = np.float32(0.693359375)
_SQRT_HALF = _from_bits(0x3F3504F3)
_MIN_NORMAL = _from_bits(0x00800000)
_NAN_ALL_ONES = _from_bits(0xFFFFFFFF)  # XLA's log returns this NaN for x < 0 or NaN


def log(xp, x):
    """XLA CPU's float32 natural logarithm."""
    x = xp.asarray(x, F32)
    bits = xp.maximum(x, _MIN_NORMAL).view(np.int32)  # denormals count as the smallest normal
    e = (((bits >> 23) - 127).astype(F32)) + np.float32(1)
    m = ((bits & ~0x7F800000) | 0x3F000000).view(F32)  # mantissa in [0.5, 1)
    low = m < _SQRT_HALF  # m -> 2m, e -> e - 1: then m in [sqrt(1/2), sqrt(2))
    t = (m - np.float32(1)) + xp.where(low, m, np.float32(0))  # both adds are exact
    e = xp.where(low, e - np.float32(1), e)
    t2 = t * t
    t3 = t2 * t
    p = _LOG_P
    y0 = fma(xp, fma(xp, t, p[0], p[1]), t, p[2])  # three interleaved Horner chains,
    y1 = fma(xp, fma(xp, t, p[3], p[4]), t, p[5])  # joined in powers of t**3
    y2 = fma(xp, fma(xp, t, p[6], p[7]), t, p[8])
    y = fma(xp, fma(xp, y0, t3, y1), t3, y2)
    y = fma(xp, y, t3, e * _LN2_LO)
    out = (y + (t - t2 * np.float32(0.5))) + e * _LN2_HI  # t2 / 2 and e * _LN2_HI are exact
    out = xp.where((x < 0) | xp.isnan(x), _NAN_ALL_ONES, out)
    out = xp.where(xp.abs(x) < _MIN_NORMAL, np.float32(-np.inf), out)  # denormals are zeros
    return xp.where(x == np.inf, np.float32(np.inf), out)


# --------------------------------------------------------------------------- exp

# XLA CPU's float32 exp (its own range reduction and polynomial, not the C library's):
# x clamped to [-87.8, 88.8]; n = floor(x * log2(e) + 1/2) clamped to [-127, 127];
# r = x - n * ln2 in two FMAs (ln2 split as _EXP_C1 + _EXP_C2); exp(r) = 1 + r + r**2 P(r);
# the result times 2**n built in the exponent bits (n = -127 gives 0), subnormals flushed.
_EXP_P = tuple(_from_bits(b) for b in (0x39506967, 0x3AB743CE, 0x3C088908, 0x3D2AA9C1,
                                       0x3E2AAAAA, 0x3F000000))
_EXP_LOG2E = _from_bits(0x3FB8AA3B)
_EXP_C1 = _from_bits(0x3F318000)
_EXP_C2 = _from_bits(0xB95E8083)


def exp(xp, x):
    """XLA CPU's float32 exponential."""
    x = xp.asarray(x, F32)
    x = xp.minimum(xp.maximum(x, np.float32(-87.8)), np.float32(88.8))  # NaN passes through
    n = xp.clip(xp.floor(fma(xp, x, _EXP_LOG2E, np.float32(0.5))), np.float32(-127),
                np.float32(127))
    r = fma(xp, -n, _EXP_C1, x)
    r = fma(xp, -n, _EXP_C2, r)
    y = fma(xp, _horner(xp, _EXP_P, r), r * r, r) + np.float32(1)
    scale = ((xp.nan_to_num(n).astype(np.int32) + 127) << 23).view(F32)
    out = y * scale
    return xp.where(out < _MIN_NORMAL, np.float32(0), out)  # subnormal results flush to zero


# XLA CPU's float64 exp (Cephes' rational approximation, as in Eigen's pexp_double): x
# clamped to [_EXP64_LO, _EXP64_HI]; n = floor(x * log2(e) + 1/2); g = x - n * ln2 in two
# FMAs (ln2 split as _EXP64_C1 + _EXP64_C2); p = g * P(g**2), exp(g) = 1 + 2 p / (Q(g**2) - p)
# (Horner steps as FMAs); times 2**n; 0 below the range, inf above.
_EXP64_LO, _EXP64_HI = -708.3964185322641, 709.782712893384
_EXP64_LOG2E = 1.4426950408889634073599
_EXP64_C1, _EXP64_C2 = 0.693145751953125, 1.42860682030941723212e-6
_EXP64_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EXP64_Q = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1,
            2.0)


def _horner64(xp, coeffs, x):
    """``((c0 * x + c1) * x + c2) ...`` in float64, one FMA per step."""
    p = xp.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        p = fma64(xp, p, x, c)
    return p


def exp64(xp, x):
    """XLA CPU's float64 exponential."""
    x = xp.asarray(x, np.float64)
    xc = xp.maximum(xp.minimum(x, _EXP64_HI), _EXP64_LO)  # NaN passes through
    n = xp.floor(fma64(xp, xc, _EXP64_LOG2E, 0.5))
    g = fma64(xp, -n, _EXP64_C2, fma64(xp, -n, _EXP64_C1, xc))
    g2 = g * g
    p = _horner64(xp, _EXP64_P, g2) * g
    out = xp.ldexp(p / (_horner64(xp, _EXP64_Q, g2) - p) * 2.0 + 1.0,
                   xp.nan_to_num(n).astype(np.int32))
    out = xp.where(x < _EXP64_LO, 0.0, out)
    return xp.where(x > _EXP64_HI, np.inf, out)


# --------------------------------------------------------------------------- pow, tan

# XLA's CPU code computes float32 pow and tan by calling the C library's powf and tanf
# element by element; calling the same functions gives the same bits.
_LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_LIBM.powf.restype, _LIBM.powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
_LIBM.tanf.restype, _LIBM.tanf.argtypes = ctypes.c_float, [ctypes.c_float]
# float64 log and tan: XLA's CPU code calls the C library's (it has its own algorithms
# for float32 only).
_LIBM.log.restype, _LIBM.log.argtypes = ctypes.c_double, [ctypes.c_double]
_LIBM.tan.restype, _LIBM.tan.argtypes = ctypes.c_double, [ctypes.c_double]
_LIBM.erf.restype, _LIBM.erf.argtypes = ctypes.c_double, [ctypes.c_double]
_LIBM.pow.restype, _LIBM.pow.argtypes = ctypes.c_double, [ctypes.c_double, ctypes.c_double]


def _libm(fn: Callable, *args, dtype: np.dtype = F32):
    args = np.broadcast_arrays(*(np.asarray(a, dtype) for a in args))
    flat = [a.reshape(-1).tolist() for a in args]
    return np.array(list(map(fn, *flat)), dtype).reshape(args[0].shape)


def tan64(xp, x):
    """XLA CPU's float64 tangent (the C library's ``tan``)."""
    return xp.asarray(_libm(_LIBM.tan, x, dtype=np.dtype(np.float64)))


def log64(xp, x):
    """XLA CPU's float64 natural logarithm (the C library's ``log``)."""
    return xp.asarray(_libm(_LIBM.log, x, dtype=np.dtype(np.float64)))


def pow(xp, x, y):  # noqa: A001
    """XLA CPU's float32 ``x ** y`` (the C library's ``powf``)."""
    return xp.asarray(_libm(_LIBM.powf, x, y))


def pow64(xp, x, y):
    """XLA CPU's float64 ``x ** y`` (the C library's ``pow``)."""
    return xp.asarray(_libm(_LIBM.pow, x, y, dtype=np.dtype(np.float64)))


def tan(xp, x):
    """XLA CPU's float32 tangent (the C library's ``tanf``)."""
    return xp.asarray(_libm(_LIBM.tanf, x))


# --------------------------------------------------------------------------- log1p

# XLA's log1p intrinsic: for |x| < sqrt(2) - 1, x - x**2 / 2 + x**3 * N(x) / D(x) with
# Cephes' rational approximation (numerator N, denominator D, highest power last);
# otherwise log(1 + x).
_LOG1P_N_64 = (4.5270000862445199635215e-5, 4.9854102823193375972212e-1,
               6.5787325942061044846969e0, 2.9911919328553073277375e1,
               6.0949667980987787057556e1, 5.7112963590585538103336e1,
               2.0039553499201281259648e1)
_LOG1P_D_64 = (1.0, 1.5062909083469192043167e1, 8.3047565967967209469434e1,
               2.2176239823732856465394e2, 3.0909872225312059774938e2,
               2.1642788614495947685003e2, 6.0118660497603843919306e1)
_LOG1P_SMALL_64 = 0.41421356237309504880
_LOG1P_N = tuple(np.float32(c) for c in _LOG1P_N_64)
_LOG1P_D = tuple(np.float32(c) for c in _LOG1P_D_64)
_LOG1P_SMALL = np.float32(_LOG1P_SMALL_64)


def _horner(xp, coeffs, x):
    """``((c0 * x + c1) * x + c2) ...`` with one FMA per step, as XLA's Horner loops compile."""
    p = xp.asarray(coeffs[0], F32)
    for c in coeffs[1:]:
        p = fma(xp, p, x, c)
    return p


def log1p(xp, x):
    """XLA CPU's float32 ``log(1 + x)``."""
    x = xp.asarray(x, F32)
    small = xp.abs(x) < _LOG1P_SMALL
    out = where_masked(xp, ~small, xp.empty_like(x), lambda v: log(xp, v + np.float32(1)), x)
    return where_masked(xp, small, out, functools.partial(_log1p_small, xp), x)


def _log1p_small(xp, x):
    """XLA's float32 ``log(1 + x)`` for ``|x| < sqrt(2) - 1``."""
    x2 = x * x
    ratio = _horner(xp, _LOG1P_N, x) / _horner(xp, _LOG1P_D, x)
    return x + ((x * x2) * ratio - x2 * np.float32(0.5))  # x2 / 2 is exact


def log1p64(xp, x):
    """XLA CPU's float64 ``log(1 + x)``: the same Cephes rational approximation as in
    float32 (its coefficients are Cephes' double-precision ones), with float64 FMAs in
    the Horner steps, and the C library's ``log(1 + x)`` from ``sqrt(2) - 1`` on."""
    x = xp.asarray(x, np.float64)
    small = xp.abs(x) < float(_LOG1P_SMALL_64)
    xs = xp.where(small, x, 0.0)
    x2 = xs * xs
    ratio = _horner64(xp, _LOG1P_N_64, xs) / _horner64(xp, _LOG1P_D_64, xs)
    out_small = xs + ((xs * x2) * ratio - x2 * 0.5)
    return where_masked(xp, ~small, xp.array(out_small, copy=True),
                        lambda v: log64(xp, v + 1.0), x)


# --------------------------------------------------------------------------- erf_inv

# XLA's float32 erf_inv (M. Giles, "Approximating the erfinv function", GPU Computing Gems,
# 2011): erf_inv(x) = x * P(t), with w = -log1p(-x * x), t = w - 2.5 and the centre
# coefficients where w < 5, t = sqrt(w) - 3 and the tail coefficients elsewhere.
_ERF_INV_CENTRE = tuple(np.float32(c) for c in (
    2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941))
_ERF_INV_TAIL = tuple(np.float32(c) for c in (
    -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
    -0.0076224613, 0.00943887047, 1.00167406, 2.83297682))


def erf_inv(xp, x):
    """XLA CPU's float32 inverse error function (``±inf`` at ``±1``, NaN beyond)."""
    x = xp.asarray(x, F32)
    minus_w = log1p(xp, x * -x)
    centre = minus_w > np.float32(-5)
    with np.errstate(invalid="ignore"):
        t = xp.where(centre, np.float32(-2.5) - minus_w, xp.sqrt(-minus_w) + np.float32(-3))
    p = xp.asarray(xp.where(centre, _ERF_INV_CENTRE[0], _ERF_INV_TAIL[0]), F32)
    for c, d in zip(_ERF_INV_CENTRE[1:], _ERF_INV_TAIL[1:]):
        p = fma(xp, p, t, xp.where(centre, c, d))
    p = xp.where(xp.abs(x) == 1, np.float32(np.inf), p)
    return x * p


# XLA's float64 erf_inv (Giles' double-precision approximation): w = -log1p(-x * x), then
# x * P(t) with t = w - 3.125 and a degree-22 polynomial where w < 6.25, t = sqrt(w) - 3.25
# and degree 18 where w < 16, t = sqrt(w) - 5 and degree 16 beyond. XLA evaluates one Horner
# loop over the three coefficient lists aligned at their leading terms (a select picks the
# range's coefficient), keeping the longer lists' last steps behind selects; each step is
# an FMA.
_ERF_INV64_CENTRE = (
    -3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
    1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
    6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
    2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
    1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
    4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
    0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
    0.24015818242558961693, 1.6536545626831027356)
_ERF_INV64_MID = (
    2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
    1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
    2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
    6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
    0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
    -0.0037512085075692412107, 0.005370914553590063617, 1.0052589676941592334,
    3.0838856104922207635)
_ERF_INV64_TAIL = (
    -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
    -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
    2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
    -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
    7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
    1.0103004648645343977, 4.8499064014085844221)
_TINY64 = np.finfo(np.float64).tiny


def _flush64(xp, x):
    """``x`` with float64 subnormals replaced by zeros of their sign: XLA's CPU code runs
    with denormals read and written as zeros."""
    return xp.where(xp.abs(x) < _TINY64, x * 0.0, x)


def erf_inv64(xp, x):
    """XLA CPU's float64 inverse error function (``±inf`` at ``±1``, NaN beyond)."""
    x = _flush64(xp, xp.asarray(x, np.float64))
    w = -log1p64(xp, x * -x)
    centre, mid = w < 6.25, w < 16.0
    t = xp.where(centre, w + -3.125, xp.sqrt(w) - xp.where(mid, 3.25, 5.0))

    def coeff(i):
        c = _ERF_INV64_CENTRE[i]
        if i < len(_ERF_INV64_MID):
            c = xp.where(centre, c, _ERF_INV64_MID[i])
        if i < len(_ERF_INV64_TAIL):
            c = xp.where(mid, c, _ERF_INV64_TAIL[i])
        return c
    p = xp.broadcast_to(xp.asarray(coeff(0), np.float64), x.shape)
    for i in range(1, len(_ERF_INV64_CENTRE)):
        step = fma64(xp, p, t, coeff(i))
        if i >= len(_ERF_INV64_MID):
            step = xp.where(centre, step, p)
        elif i >= len(_ERF_INV64_TAIL):
            step = xp.where(mid, step, p)
        p = step
    return xp.where(xp.abs(x) == 1, x * np.inf, p * x)


# --------------------------------------------------------------------------- erf

# XLA's float32 erf intrinsic (the rational approximation of Eigen's perf): x * P(x**2) /
# Q(x**2) with explicit FMAs, and ±1 where |x| >= 3.832506856900711 (erf rounds to 1).
_ERF_P = tuple(np.float32(c) for c in (
    0.00022905065861350646, 0.0034082910107109506, 0.050955695062380861, 0.18520832239976145,
    1.128379143519084))
_ERF_Q = tuple(np.float32(c) for c in (
    -1.1791602954361697e-7, 0.000023547966471313185, 0.0010179625278914885,
    0.014070470171167667, 0.11098505178285362, 0.49746925110067538, 1.0))
_ERF_ONE = np.float32(3.832506856900711)


def erf(xp, x):
    """XLA CPU's float32 error function."""
    x = xp.asarray(x, F32)
    x2 = x * x
    out = (x * _horner(xp, _ERF_P, x2)) / _horner(xp, _ERF_Q, x2)
    return xp.where(xp.abs(x) >= _ERF_ONE, xp.copysign(np.float32(1), x), out)


def erf64(xp, x):
    """XLA CPU's float64 error function: the C library's ``erf``, denormals as zeros."""
    x = _flush64(xp, xp.asarray(x, np.float64))
    return _flush64(xp, xp.asarray(_libm(_LIBM.erf, x, dtype=np.dtype(np.float64))))


# --------------------------------------------------------------------------- primitives

# Large NumPy operands run block by block on the random module's thread pool (NumPy
# releases the GIL in ufuncs), so each block's temporaries stay in the cache.
_BLOCK = 1 << 15


def _blockwise(fn: Callable, fn64: Callable | None = None,
               fn16: Callable | None = None) -> Callable:
    """An elementwise impl ``(xp, *args)`` running ``fn`` over blocks of the broadcast
    float32 operands (``fn64`` over float64 ones and ``fn16`` over float16 ones, where
    given)."""
    others = {np.dtype(np.float64): fn64, F16: fn16}

    def impl(xp, *args):
        args = [xp.asarray(a) for a in args]
        dtype = args[0].dtype
        other = others.get(dtype)
        if other is not None and all(a.dtype == dtype for a in args):
            with np.errstate(all="ignore"):
                return xp.asarray(other(xp, *args), dtype)
        if any(a.dtype != F32 for a in args):
            raise TypeError(f"{fn.__name__}: float32 operands expected")
        shape = np.broadcast_shapes(*(a.shape for a in args))
        size = int(np.prod(shape))
        if xp is not np or size <= _BLOCK:
            with np.errstate(all="ignore"):  # infinities and NaNs propagate, as in XLA
                return xp.asarray(fn(xp, *args), F32).reshape(shape)
        flat = [a if a.size == 1 else np.broadcast_to(a, shape).reshape(-1) for a in args]
        flat = [a.reshape(()) if a.size == 1 else a for a in flat]
        out = np.empty(size, F32)

        def run(start):
            stop = start + _BLOCK
            with np.errstate(all="ignore"):
                out[start:stop] = fn(np, *[a if a.ndim == 0 else a[start:stop] for a in flat])
        list(cpu_pool().map(run, range(0, size, _BLOCK)))
        return out.reshape(shape)
    return impl


def _unary(name: str, fn: Callable, jvp: Callable, fn64: Callable | None = None) -> Callable:
    prim = elementwise_prim(name, _blockwise(fn, fn64), "f")
    batching.defvectorized(prim)
    ad.defjvp2(prim, jvp)
    return lambda x: prim.bind(x)


_SQRT_PI = float(np.sqrt(np.pi))

xla_log = _unary("xla_log", log, lambda t, ans, x: div(t, x), log64)
xla_log1p = _unary("xla_log1p", log1p, lambda t, ans, x: div(t, add(x, const(x, 1))), log1p64)
xla_erf = _unary("xla_erf", erf, lambda t, ans, x: mul(mul(const(x, 2 / _SQRT_PI), t),
                                                        lax_exp(mul(const(x, -1), square(x)))),
                 erf64)
xla_erf_inv = _unary("xla_erf_inv", erf_inv,
                     lambda t, ans, x: mul(const(x, _SQRT_PI / 2), mul(t, lax_exp(square(ans)))),
                     erf_inv64)

xla_exp = _unary("xla_exp", exp, lambda t, ans, x: mul(t, ans), exp64)
xla_tan = _unary("xla_tan", tan, lambda t, ans, x: div(t, square(cos(x))), tan64)

xla_pow_p = elementwise_prim("xla_pow", _blockwise(pow, pow64), "f")
batching.defbroadcasting(xla_pow_p)


def _broadcast_term(f: Callable) -> Callable:
    """A JVP term of a broadcasting primitive, broadcast to the output's shape."""
    def rule(t, *args):
        shape = np.broadcast_shapes(*(core.get_aval(x).shape for x in args))
        return broadcast_to_shape(f(t, *args), shape)
    return rule


ad.defjvp(xla_pow_p,
          _broadcast_term(lambda t, x, y: mul(t, mul(y, lax_pow(x, sub(y, const(y, 1)))))),
          _broadcast_term(lambda t, x, y: mul(t, mul(lax_pow(x, y), lax_log(x)))))


def xla_pow(x: Any, y: Any) -> Any:
    """``x ** y`` in float32 or float64 as XLA's CPU code computes it (operands broadcast)."""
    return xla_pow_p.bind(x, y)


xla_fma_p = elementwise_prim("xla_fma", _blockwise(fma, fma64,
                                                   functools.partial(fma, dtype=F16)), "f")
batching.defbroadcasting(xla_fma_p)


ad.defjvp(xla_fma_p, _broadcast_term(lambda t, a, b, c: mul(t, b)),
          _broadcast_term(lambda t, a, b, c: mul(a, t)), _broadcast_term(lambda t, a, b, c: t))


def xla_fma(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` in float16, float32 or float64 with one rounding (operands broadcast)."""
    return xla_fma_p.bind(a, b, c)


@functools.cache
def _cpuinfo(field: str) -> str:
    """A field of the first processor in Linux's ``/proc/cpuinfo`` ("" elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return ""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (empty where ``/proc/cpuinfo`` is not)."""
    return frozenset(_cpuinfo("flags").split())


def cpu_vendor() -> str:
    """The processor's vendor: "GenuineIntel", "AuthenticAMD" ("" where unknown)."""
    return _cpuinfo("vendor_id")


def fuses_float16() -> bool:
    """Whether XLA's CPU code rounds a float16 multiply-add once. Where the processor has
    float16 arithmetic (AVX512-FP16, Linux's flag ``avx512_fp16``) XLA keeps the float16
    operations and LLVM fuses them; elsewhere XLA widens each float16 operation to float32
    and rounds its result back, so the multiply and the add round separately (measured on
    Intel Xeon hosts with and without AVX512-FP16 and on AMD EPYC hosts)."""
    return "avx512_fp16" in cpu_flags()
