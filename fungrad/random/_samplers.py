"""Samplers: random bits turned into draws from distributions, as in ``jax.random``.

Each sampler follows JAX's algorithm step for step, so that the same key gives
the same numbers: bits become floats in [1, 2) by filling the mantissa of 1.0
and subtracting 1; normals are ``sqrt(2) * erf_inv(u)`` for u uniform in
(-1, 1); integers take two 32-bit draws reduced modulo the span; permutations
sort by random 32-bit keys; categoricals take the argmax of logits plus Gumbel
noise. Everything is written with ``fungrad.lax``, so samplers work under
``jit``, ``vmap`` (e.g. over a batch of keys), ``grad`` (with respect to
parameters such as ``minval`` or ``mean``) and inside ``scan``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad import numpy as fnp
from fungrad._core import core, dtypes
from fungrad._core.util import canonicalize_axis, prod
from fungrad.lax._prim import as_operand, hashable_shape
from fungrad.lax._placement import takes_out_sharding
from fungrad.random._keys import check_key, key_checked
from fungrad.random._threefry import UINT_DTYPES, threefry_random_bits, threefry_split
from fungrad.random._xla_math import (fuses_float16, xla_erf, xla_erf_inv, xla_fma, xla_log,
                                      xla_log1p)

Shape = Sequence[int]

# --------------------------------------------------------------------------- helpers


def _const(value: Any, dtype: Any) -> Any:
    """A strongly typed scalar constant."""
    return as_operand(np.array(value, dtype))


def _shape(name: str, shape: Any) -> tuple[int, ...]:
    return hashable_shape(shape, name)


def _check_shape(name: str, shape: tuple[int, ...], *param_shapes: tuple[int, ...]) -> None:
    """Parameters must broadcast to exactly ``shape`` (JAX's rule for samplers)."""
    try:
        out = np.broadcast_shapes(shape, *param_shapes)
    except ValueError:
        out = None
    if out != shape:
        raise ValueError(f"{name}: parameter shapes {', '.join(map(str, param_shapes))} must be "
                         f"broadcast-compatible with the shape argument {shape} and broadcast "
                         "to exactly that shape")


def _float_dtype(name: str, dtype: Any, kinds: str = "floating") -> np.dtype:
    dtype = dtypes.canonicalize_dtype(float if dtype is None else dtype)
    ok = dtypes.is_float(dtype) or (kinds == "inexact" and dtype.kind == "c")
    if not ok:
        what = "a float or complex" if kinds == "inexact" else "a float"
        raise ValueError(f"dtype argument to `{name}` must be {what} dtype, got {dtype.name}")
    return dtype


def _is_python_scalar(x: Any, value: float) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == value


def _split2(key: Any) -> tuple[Any, Any]:
    keys = threefry_split(key, (2,))
    return (lax.index_in_dim(keys, 0, 0, keepdims=False),
            lax.index_in_dim(keys, 1, 0, keepdims=False))


# --------------------------------------------------------------------------- bits / uniform

@takes_out_sharding("random")
def bits(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Uniform random bits as unsigned integers (``uint32`` by default, ``uint64`` with x64).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("bits", key)
    dtype = dtypes.canonicalize_dtype(np.uint64 if dtype is None else dtype)
    if dtype.kind != "u":
        raise ValueError(f"dtype argument to `bits` must be an unsigned int dtype, "
                         f"got {dtype.name}")
    return threefry_random_bits(data, dtype.itemsize * 8, _shape("bits", shape))


@takes_out_sharding("random")
def uniform(key: Any, shape: Shape = (), dtype: Any = None, minval: Any = 0.,
            maxval: Any = 1., *, out_sharding: Any = None) -> Any:
    """Uniform floats in ``[minval, maxval)`` (``minval`` everywhere if ``maxval <= minval``).

    ``minval``/``maxval`` broadcast to ``shape``; the result is differentiable with
    respect to them.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).

    Examples:
        >>> from fungrad import random
        >>> random.uniform(random.key(0), (2,))  # the same numbers as jax.random.uniform
        Array([0.947667 , 0.9785799], dtype=float32)
    """
    data, _ = check_key("uniform", key)
    dtype = _float_dtype("uniform", dtype)
    return _uniform("uniform", data, _shape("uniform", shape), dtype, minval, maxval)


def _uniform(name: str, key: Any, shape: tuple[int, ...], dtype: np.dtype, minval: Any,
             maxval: Any) -> Any:
    unit_range = _is_python_scalar(minval, 0) and _is_python_scalar(maxval, 1)
    minval = lax.convert_element_type(minval, dtype)
    maxval = lax.convert_element_type(maxval, dtype)
    _check_shape(name, shape, core.get_aval(minval).shape, core.get_aval(maxval).shape)
    finfo = dtypes.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    rng_bits = 8 if nmant < 8 else nbits
    uint = UINT_DTYPES[nbits]
    random = threefry_random_bits(key, rng_bits, shape)
    if rng_bits != nbits:
        random = lax.convert_element_type(random, uint)
    # Random mantissa bits under the exponent of 1.0 give a float in [1, 2).
    mantissa = lax.shift_right_logical(random, _const(rng_bits - nmant, uint))
    one_bits = _const(np.array(1.0, dtype).view(uint), uint)
    floats = lax.sub(lax.bitcast_convert_type(lax.bitwise_or(mantissa, one_bits), dtype),
                     _const(1, dtype))
    if unit_range:  # floats * 1 + 0, exactly
        return floats
    return lax.max(minval, _fma(floats, lax.sub(maxval, minval), minval))


def _fma(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` as XLA's CPU kernels compute it: one rounding in float32, float64 and
    (where the processor has float16 arithmetic) float16, two in bfloat16. XLA contracts a
    multiply feeding an add into an FMA; elsewhere it widens each float16 operation to
    float32 and rounds it back, so the two round separately."""
    dtype = core.get_aval(a).dtype
    if dtype in (np.float32, np.float64) or (dtype == np.float16 and fuses_float16()):
        return xla_fma(a, b, c)
    return lax.add(lax.mul(a, b), c)


# --------------------------------------------------------------------------- integers

def _convert_and_clip_integer(val: Any, dtype: np.dtype) -> Any:
    """Integer ``val`` converted to integer ``dtype``, clipped to its range instead of wrapping."""
    src = core.get_aval(val).dtype
    lo = max(int(np.iinfo(dtype).min), int(np.iinfo(src).min))
    hi = min(int(np.iinfo(dtype).max), int(np.iinfo(src).max))
    clipped = lax.min(lax.max(val, _const(lo, src)), _const(hi, src))
    return lax.convert_element_type(clipped, dtype)


def _as_integer(name: str, x: Any) -> Any:
    x = fnp.asarray(x)
    if not dtypes.is_integer(x.dtype):
        if not (dtypes.is_float(x.dtype) or x.dtype == np.bool_):
            raise TypeError(f"{name}: minval and maxval must be integers, got {x.dtype.name}")
        x = lax.convert_element_type(x, dtypes.default_int_dtype())
    return x


@takes_out_sharding("random")
def randint(key: Any, shape: Shape, minval: Any, maxval: Any, dtype: Any = None, *,
            out_sharding: Any = None) -> Any:
    """Uniform integers in ``[minval, maxval)`` (``minval`` where ``maxval <= minval``).

    Uses two draws of random bits reduced modulo the span, as JAX does (slightly
    biased when the span is not a power of 2; 8- and 16-bit dtypes sample in 32 bits).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("randint", key)
    dtype = dtypes.canonicalize_dtype(int if dtype is None else dtype)
    if not dtypes.is_integer(dtype):
        raise TypeError(f"randint only accepts integer dtypes, got {dtype.name}")
    shape = _shape("randint", shape)
    minval, maxval = _as_integer("randint", minval), _as_integer("randint", maxval)
    info = np.iinfo(dtype)
    sample_dtype = dtype
    if info.bits < 32:
        sample_dtype = np.dtype(np.int32)
        minval = fnp.clip(lax.convert_element_type(minval, np.int32), int(info.min), int(info.max))
        maxval = fnp.clip(lax.convert_element_type(maxval, np.int32), int(info.min),
                          int(info.max) + 1)
    return lax.convert_element_type(_randint(data, shape, sample_dtype, minval, maxval), dtype)


def _randint(key: Any, shape: tuple[int, ...], dtype: np.dtype, minval: Any, maxval: Any) -> Any:
    _check_shape("randint", shape, minval.shape, maxval.shape)
    top = _convert_and_clip_integer(_const(np.iinfo(dtype).max, dtype), maxval.dtype)
    maxval_out_of_range = lax.gt(maxval, top)
    minval = _convert_and_clip_integer(minval, dtype)
    maxval = _convert_and_clip_integer(maxval, dtype)
    nbits = np.iinfo(dtype).bits
    k1, k2 = _split2(key)
    higher_bits = threefry_random_bits(k1, nbits, shape)
    lower_bits = threefry_random_bits(k2, nbits, shape)
    unsigned = UINT_DTYPES[nbits]
    one = _const(1, unsigned)
    span = lax.convert_element_type(lax.sub(maxval, minval), unsigned)
    span = lax.select(lax.le(maxval, minval), lax.full_like(span, 1), span)  # empty range: minval
    # maxval beyond the dtype's range: the span is one larger (wrapping to 0 is right).
    span = lax.select(lax.bitwise_and(maxval_out_of_range, lax.gt(maxval, minval)),
                      lax.add(span, one), span)
    # (high * 2**nbits + low) mod span, with 2**nbits mod span computed without overflow.
    multiplier = lax.rem(_const(2 ** (nbits // 2), unsigned), span)
    multiplier = lax.rem(lax.mul(multiplier, multiplier), span)
    offset = lax.add(lax.mul(lax.rem(higher_bits, span), multiplier), lax.rem(lower_bits, span))
    offset = lax.rem(offset, span)
    return lax.add(minval, lax.convert_element_type(offset, dtype))


# --------------------------------------------------------------------------- permutations

@takes_out_sharding("random")
def permutation(key: Any, x: Any, axis: int = 0, independent: bool = False, *,
                out_sharding: Any = None) -> Any:
    """A random permutation of ``arange(x)`` (integer ``x``) or of ``x`` along ``axis``.

    With ``independent=True`` every slice along ``axis`` is shuffled independently.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("permutation", key)
    if not np.ndim(x):
        x_dtype = core.get_aval(as_operand(x)).dtype
        if not dtypes.is_integer(x_dtype) or isinstance(x, bool):
            raise TypeError("permutation: x must be an integer or at least 1-dimensional, "
                            f"got {x!r}")
        canonicalize_axis(axis, 1, "permutation")
        n = int(x)  # a traced x raises a ConcretizationTypeError here
        return _shuffle(data, lax.iota(dtypes.default_int_dtype(), n), 0)
    x = fnp.asarray(x)
    axis = canonicalize_axis(axis, x.ndim, "permutation")
    if independent or x.ndim == 1:
        return _shuffle(data, x, axis)
    ind = _shuffle(data, lax.iota(dtypes.default_int_dtype(), x.shape[axis]), 0)
    return fnp.take(x, ind, axis=axis)


def _shuffle(key: Any, x: Any, axis: int) -> Any:
    # Sort by random 32-bit keys; repeating with fresh keys makes ties (which a
    # stable sort would resolve by position) unlikely enough: 3 log(n) / log(2**32)
    # rounds, JAX's static criterion.
    num_rounds = int(np.ceil(3 * np.log(max(1, x.size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(num_rounds):
        key, subkey = _split2(key)
        sort_keys = threefry_random_bits(subkey, 32, x.shape)
        _, x = lax.sort_key_val(sort_keys, x, axis)
    return x


def choice(key: Any, a: Any, shape: Shape = (), replace: bool = True, p: Any = None,
           axis: int = 0, mode: str | None = None) -> Any:
    """Random draws from ``a`` (or ``arange(a)``) along ``axis``, optionally weighted by ``p``.

    With replacement and ``p``: inverse-CDF sampling; without replacement and ``p``:
    the Gumbel top-k trick; without ``p``: ``randint`` or a permutation.
    """
    data, _ = check_key("choice", key)
    if not isinstance(shape, Sequence):
        raise TypeError(f"choice: shape argument must be a sequence, got {shape!r}")
    shape = _shape("choice", shape)
    arr = fnp.asarray(a)
    if arr.ndim == 0:
        n_inputs = int(a)  # a traced ``a`` raises a ConcretizationTypeError here
    else:
        axis = canonicalize_axis(axis, arr.ndim, "choice")
        n_inputs = arr.shape[axis]
    n_draws = prod(shape)
    if n_draws == 0:
        return lax.full(shape, 0, arr.dtype)
    if n_inputs <= 0:
        raise ValueError("choice: a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n_inputs:
        raise ValueError(f"choice: cannot take a larger sample (size {n_draws}) than the "
                         f"population (size {n_inputs}) when replace=False")
    if p is None:
        if replace:
            with key_checked():  # checked against legacy_prng_key above
                ind = randint(data, shape, 0, n_inputs)
            result = ind if arr.ndim == 0 else fnp.take(arr, ind, axis=axis)
        else:
            with key_checked():  # checked against legacy_prng_key above
                perm = permutation(data, n_inputs if arr.ndim == 0 else arr, axis)
            result = lax.slice_in_dim(perm, 0, n_draws, axis=axis if arr.ndim else 0)
    else:
        p_arr = fnp.asarray(p)
        if not dtypes.is_inexact(p_arr.dtype):
            p_arr = lax.convert_element_type(p_arr, dtypes.default_float_dtype())
        if p_arr.shape != (n_inputs,):
            raise ValueError("choice: p must be None or a 1D vector with the same size as "
                             f"a.shape[axis]; p has shape {p_arr.shape} and a.shape[axis] is "
                             f"{n_inputs}")
        if replace:
            p_cuml = fnp.cumsum(p_arr)
            u = _uniform("choice", data, shape, p_arr.dtype, 0., 1.)
            r = lax.mul(lax.index_in_dim(p_cuml, n_inputs - 1, 0, keepdims=False),
                        lax.sub(_const(1, p_arr.dtype), u))
            ind = fnp.searchsorted(p_cuml, r)
        else:
            with key_checked():  # checked against legacy_prng_key above
                g = lax.add(gumbel(data, (n_inputs,), p_arr.dtype, mode), _log(p_arr))
            ind = lax.top_k(g, n_draws)[1]
        ind = lax.convert_element_type(ind, dtypes.default_int_dtype())
        result = ind if arr.ndim == 0 else fnp.take(arr, ind, axis=axis)
    out_shape = shape if arr.ndim == 0 else arr.shape[:axis] + shape + arr.shape[axis + 1:]
    return lax.reshape(result, out_shape)


# --------------------------------------------------------------------------- continuous

@takes_out_sharding("random")
def normal(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Standard normal draws: ``sqrt(2) * erf_inv(u)`` for ``u`` uniform in (-1, 1).

    Complex dtypes draw real and imaginary parts with variance 1/2 each.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).

    Examples:
        >>> from fungrad import random
        >>> random.normal(random.key(0), (3,))  # the same numbers as jax.random.normal
        Array([ 1.6226422 ,  2.0252647 , -0.43359444], dtype=float32)
    """
    data, _ = check_key("normal", key)
    dtype = _float_dtype("normal", dtype, "inexact")
    shape = _shape("normal", shape)
    if dtype.kind == "c":
        real = np.dtype(np.array(0, dtype).real.dtype)
        k_re, k_im = _split2(data)
        re, im = _normal_real(k_re, shape, real), _normal_real(k_im, shape, real)
        return lax.div(lax.complex(re, im), _const(np.sqrt(2), dtype))
    return _normal_real(data, shape, dtype)


def _normal_real(key: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    lo = np.nextafter(np.array(-1., dtype), np.array(0., dtype), dtype=dtype)
    u = _uniform("normal", key, shape, dtype, lo, np.array(1., dtype))
    return lax.mul(_const(np.sqrt(2), dtype), _erf_inv(u))


def _in_float32(xla_fn: Any, lax_fn: Any, x: Any) -> Any:
    """``xla_fn`` (XLA's float32 algorithm) on ``x``, computed in float32 for narrower floats
    as XLA's CPU backend does; ``lax_fn`` for float64."""
    dtype = core.get_aval(x).dtype
    if dtype == np.float64:
        return lax_fn(x)
    return lax.convert_element_type(xla_fn(lax.convert_element_type(x, np.float32)), dtype)


def _erf_inv(u: Any) -> Any:
    return _in_float32(xla_erf_inv, xla_erf_inv, u)  # float64 too: Giles' polynomials


def _log(x: Any) -> Any:
    return _in_float32(xla_log, xla_log, x)  # float64 too: XLA's (the C library's log)


def _log1p(x: Any) -> Any:
    return _in_float32(xla_log1p, xla_log1p, x)  # float64 too: XLA's rational approximation


@takes_out_sharding("random")
def truncated_normal(key: Any, lower: Any, upper: Any, shape: Shape | None = None,
                     dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Standard normal draws conditioned on the open interval ``(lower, upper)``.

    Inverse-CDF sampling: ``u`` uniform in ``[erf(lower/√2), erf(upper/√2))`` mapped
    back with ``erf_inv``, clipped into the open interval against rounding.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("truncated_normal", key)
    dtype = _float_dtype("truncated_normal", dtype)
    lower = lax.convert_element_type(lower, dtype)
    upper = lax.convert_element_type(upper, dtype)
    param_shapes = (core.get_aval(lower).shape, core.get_aval(upper).shape)
    if shape is None:
        shape = np.broadcast_shapes(*param_shapes)
    else:
        shape = _shape("truncated_normal", shape)
        _check_shape("truncated_normal", shape, *param_shapes)
    sqrt2 = _const(np.sqrt(2), dtype)
    # XLA rewrites the division by the constant sqrt(2) as a product with its reciprocal.
    inv_sqrt2 = _const(np.array(1, dtype) / np.array(np.sqrt(2), dtype), dtype)
    a = _in_float32(xla_erf, xla_erf, lax.mul(lower, inv_sqrt2))  # float64: the C library's
    b = _in_float32(xla_erf, xla_erf, lax.mul(upper, inv_sqrt2))
    u = _uniform("truncated_normal", data, shape, dtype, a, b)
    out = lax.mul(sqrt2, _erf_inv(u))
    lo = _flush_subnormal(lax.nextafter(lax.stop_gradient(lower), lax.full_like(lower, np.inf)))
    hi = _flush_subnormal(lax.nextafter(lax.stop_gradient(upper), lax.full_like(upper, -np.inf)))
    return lax.min(lax.max(out, lo), hi)


def _flush_subnormal(x: Any) -> Any:
    """``x`` with values subnormal in its compute type replaced by zeros of their sign: XLA's
    CPU code reads subnormal operands as zeros, so a bound of ``nextafter(0, inf)`` clips like
    0 (except in float16, which XLA computes in float32, where it is normal)."""
    dtype = core.get_aval(x).dtype
    tiny = _const(dtypes.finfo(np.float64 if dtype == np.float64 else np.float32).tiny, dtype)
    return lax.select(lax.lt(lax.abs(x), tiny), lax.mul(x, lax.full_like(x, 0)), x)


@takes_out_sharding("random")
def exponential(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Exponential(1) draws: ``-log1p(-u)`` for ``u`` uniform in [0, 1).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("exponential", key)
    dtype = _float_dtype("exponential", dtype)
    u = _uniform("exponential", data, _shape("exponential", shape), dtype, 0., 1.)
    return lax.neg(_log1p(lax.neg(u)))


@takes_out_sharding("random")
def laplace(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Laplace(0, 1) draws: ``sign(u) * log1p(-|u|)`` for ``u`` uniform in (-1, 1).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("laplace", key)
    dtype = _float_dtype("laplace", dtype)
    lo = -1. + dtypes.finfo(dtype).epsneg
    u = _uniform("laplace", data, _shape("laplace", shape), dtype, lo, 1.)
    return lax.mul(lax.sign(u), _log1p(lax.neg(lax.abs(u))))


@takes_out_sharding("random")
def gumbel(key: Any, shape: Shape = (), dtype: Any = None, mode: str | None = None, *,
           out_sharding: Any = None) -> Any:
    """Standard Gumbel draws ``-log(-log(u))``.

    ``mode="low"`` (default) uses one uniform per draw; ``mode="high"`` combines
    two for a finer resolution near 0 (largest draws up to ~32 instead of ~16 in float32).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("gumbel", key)
    dtype = _float_dtype("gumbel", dtype)
    return _gumbel(data, _shape("gumbel", shape), dtype, mode)


def _gumbel(key: Any, shape: tuple[int, ...], dtype: np.dtype, mode: str | None) -> Any:
    mode = "low" if mode is None else mode
    if mode not in ("low", "high"):
        raise ValueError(f"gumbel: mode must be 'low' or 'high', got {mode!r}")
    info = dtypes.finfo(dtype)
    if mode == "low":
        # uniform(tiny, 1) as XLA folds its constants: max(tiny, u - 1 + tiny) becomes
        # max(tiny, u + (-1 + tiny)) with -1 + tiny == -1 (which matters for float16 only).
        u = lax.max(_const(info.tiny, dtype), _uniform("gumbel", key, shape, dtype, 0., 1.))
        return lax.neg(_log(lax.neg(_log(u))))
    pair = _uniform("gumbel", key, (2,) + shape, dtype, 0., 1.)
    high = lax.index_in_dim(pair, 0, 0, keepdims=False)
    low = lax.index_in_dim(pair, 1, 0, keepdims=False)
    finer = lax.add(lax.add(high, lax.mul(_const(2. ** -info.nmant, dtype), low)),
                    _const(info.tiny, dtype))
    x = lax.select(lax.ge(high, _const(0.5, dtype)), high, finer)
    return lax.neg(_log(lax.neg(_log1p(lax.neg(x)))))


# --------------------------------------------------------------------------- discrete

@takes_out_sharding("random")
def bernoulli(key: Any, p: Any = 0.5, shape: Shape | None = None, mode: str = "low", *,
              out_sharding: Any = None) -> Any:
    """Boolean draws that are True with probability ``p`` (``u < p`` for uniform ``u``).

    ``mode="high"`` combines two uniforms, for accuracy at very small ``p``.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    if mode not in ("high", "low"):
        raise ValueError(f"bernoulli: got mode={mode!r}, expected 'high' or 'low'")
    data, _ = check_key("bernoulli", key)
    p = fnp.asarray(p)
    if not dtypes.is_float(p.dtype):
        raise TypeError(f"bernoulli: probability `p` must have a floating dtype, "
                        f"got {p.dtype.name}")
    if shape is None:
        shape = p.shape
    else:
        shape = _shape("bernoulli", shape)
        _check_shape("bernoulli", shape, p.shape)
    dtype = p.dtype
    if mode == "high":
        pair = _uniform("bernoulli", data, (2,) + shape, dtype, 0., 1.)
        u1 = lax.index_in_dim(pair, 0, 0, keepdims=False)
        u2 = lax.mul(lax.index_in_dim(pair, 1, 0, keepdims=False),
                     _const(2. ** -dtypes.finfo(dtype).nmant, dtype))
        return lax.lt(u2, lax.sub(p, u1))
    return lax.lt(_uniform("bernoulli", data, shape, dtype, 0., 1.), p)


@takes_out_sharding("random")
def categorical(key: Any, logits: Any, axis: int = -1, shape: Shape | None = None,
                replace: bool = True, mode: str | None = None, *, out_sharding: Any = None) -> Any:
    """Draws from the categorical distributions ``softmax(logits, axis)``.

    With replacement: the Gumbel-max trick (argmax of logits plus Gumbel noise).
    Without: the Gumbel top-k trick (leading ``shape`` dims index the draws).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, _ = check_key("categorical", key)
    logits = fnp.asarray(logits)
    if logits.ndim == 0:
        raise ValueError("categorical: logits must have at least one dimension")
    axis = canonicalize_axis(axis, logits.ndim, "categorical")
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    if shape is None:
        shape = batch_shape
    else:
        shape = _shape("categorical", shape)
        _check_shape("categorical", shape, batch_shape)
    prefix = shape[:len(shape) - len(batch_shape)]
    if replace:
        suffix = shape[len(prefix):]
        draw_shape = prefix + suffix[:axis] + logits.shape[axis:axis + 1] + suffix[axis:]
        noise = _gumbel(data, draw_shape, _float_dtype("categorical", logits.dtype), mode)
        scores = lax.add(noise, lax.broadcast_in_dim(
            logits, draw_shape, tuple(range(len(prefix), len(draw_shape)))))
        return lax.argmax(scores, len(prefix) + axis, dtypes.default_int_dtype())
    k = prod(prefix)
    if k > logits.shape[axis]:
        raise ValueError(f"categorical: number of samples without replacement ({k}) cannot "
                         f"exceed the number of categories ({logits.shape[axis]})")
    noise = _gumbel(data, logits.shape, _float_dtype("categorical", logits.dtype), mode)
    scores = fnp.moveaxis(lax.add(logits, noise), axis, -1)
    indices = lax.top_k(scores, k)[1]  # batch_shape + (k,)
    return lax.reshape(indices, shape, (indices.ndim - 1,) + tuple(range(indices.ndim - 1)))


__all__ = ["bits", "uniform", "randint", "permutation", "choice", "normal",
           "truncated_normal", "exponential", "laplace", "gumbel", "bernoulli", "categorical"]
