"""Samplers derived from uniform, normal and exponential draws, as in ``jax.random``.

Each follows JAX's formula and operation order so that the same key gives the
same bits: XLA's float32 ``log``/``log1p``/``exp``/``pow``/``tan`` come from
``_xla_math``, and a multiply feeding an add inside one XLA kernel is one fused
multiply-add (``xla_fma``). Linear algebra (``orthogonal``'s QR,
``multivariate_normal``'s factorisation) is written with ``fungrad.lax``, so these
samplers too work under ``jit``, ``vmap`` and ``grad``.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as fnp
from fungrad._core import core, dtypes
from fungrad.lax._placement import takes_out_sharding
from fungrad.random._keys import check_key, key_checked
from fungrad.random._samplers import (Shape, _check_shape, _const, _erf_inv, _float_dtype,
                                      _in_float32, _log, _log1p, _normal_real, _shape, _split2,
                                      _fma, _uniform, bernoulli)
from fungrad.random._xla_math import xla_exp, xla_pow, xla_tan
from fungrad.random._xla_reduce import xla_sum


def _exp(x: Any) -> Any:
    return _in_float32(xla_exp, xla_exp, x)  # float64 too: XLA's rational approximation


def _tan(x: Any) -> Any:
    return _in_float32(xla_tan, xla_tan, x)  # float64 too: the C library's tan, as XLA


def _pow(x: Any, y: Any) -> Any:
    dtype = core.get_aval(x).dtype
    if dtype == np.float64:
        return xla_pow(x, y)  # the C library's pow, as XLA
    f32 = [lax.convert_element_type(v, np.float32) for v in (x, y)]
    return lax.convert_element_type(xla_pow(*f32), dtype)


def _div(x: Any, y: Any) -> Any:
    """``x / y`` as XLA computes it: a division by a broadcast scalar becomes a product with
    its reciprocal."""
    if core.get_aval(y).ndim == 0 and core.get_aval(x).ndim > 0:
        return lax.mul(x, lax.div(_const(1, core.get_aval(y).dtype), y))
    return lax.div(x, y)


def _scaled_normal(key: Any, shape: tuple[int, ...], dtype: np.dtype, scale: Any) -> Any:
    """``normal * scale``; XLA folds a scalar ``scale`` into the normal's ``sqrt(2)``."""
    if core.get_aval(scale).ndim:
        return lax.mul(_normal_real(key, shape, dtype), scale)
    lo = np.nextafter(np.array(-1., dtype), np.array(0., dtype), dtype=dtype)
    u = _uniform("normal", key, shape, dtype, lo, np.array(1., dtype))
    return lax.mul(_erf_inv(u), lax.mul(_const(np.sqrt(2), dtype), scale))


def _param(name: str, x: Any, dtype: np.dtype) -> Any:
    """A distribution parameter as an array of the sample ``dtype``."""
    x = fnp.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name}: parameters must be real numbers, got {x.dtype.name}")
    return lax.convert_element_type(x, dtype)


def _out_shape(name: str, shape: Any, *params: Any) -> tuple[int, ...]:
    """``shape`` checked against the parameters' shapes, or their broadcast shape if None."""
    shapes = [core.get_aval(p).shape for p in params]
    if shape is None:
        return tuple(np.broadcast_shapes(*shapes))
    shape = _shape(name, shape)
    _check_shape(name, shape, *shapes)
    return shape


def _start(name: str, key: Any, dtype: Any) -> tuple[Any, np.dtype]:
    data, _ = check_key(name, key)
    return data, _float_dtype(name, dtype)


# --------------------------------------------------------------------------- location-scale

@takes_out_sharding("random")
def cauchy(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Standard Cauchy draws ``tan(pi * (u - 1/2))`` for ``u`` uniform in [eps, 1).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("cauchy", key, dtype)
    u = _uniform("cauchy", data, _shape("cauchy", shape), dtype, dtypes.finfo(dtype).eps, 1.)
    return _tan(lax.mul(_const(np.pi, dtype), lax.sub(u, _const(0.5, dtype))))


@takes_out_sharding("random")
def logistic(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Standard logistic draws ``log(u) - log1p(-u)`` for ``u`` uniform in [tiny, 1).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("logistic", key, dtype)
    u = _uniform("logistic", data, _shape("logistic", shape), dtype, dtypes.finfo(dtype).tiny, 1.)
    return lax.sub(_log(u), _log1p(lax.neg(u)))


@takes_out_sharding("random")
def lognormal(key: Any, sigma: Any = 1., shape: Shape | None = None, dtype: Any = None, *,
              out_sharding: Any = None) -> Any:
    """Log-normal draws ``exp(sigma * z)`` for standard normal ``z``.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).

    Examples:
        >>> from fungrad import random
        >>> random.lognormal(random.key(0), 0.5, (2,))  # the same numbers as jax.random.lognormal
        Array([2.2508795, 2.752838 ], dtype=float32)
    """
    data, dtype = _start("lognormal", key, dtype)
    sigma = _param("lognormal", sigma, dtype)
    shape = _out_shape("lognormal", shape, sigma)
    return _exp(_scaled_normal(data, shape, dtype, sigma))


@takes_out_sharding("random")
def pareto(key: Any, b: Any, shape: Shape | None = None, dtype: Any = None, *,
           out_sharding: Any = None) -> Any:
    """Pareto draws with shape ``b`` and scale 1: ``exp(e / b)`` for exponential ``e``.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("pareto", key, dtype)
    b = _param("pareto", b, dtype)
    shape = _out_shape("pareto", shape, b)
    return _exp(_div(_exponential(data, shape, dtype), b))


def _exponential(key: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    u = _uniform("exponential", key, shape, dtype, 0., 1.)
    return lax.neg(_log1p(lax.neg(u)))


def weibull_min(key: Any, scale: Any, concentration: Any, shape: Shape = (),
                dtype: Any = None) -> Any:
    """Weibull draws ``(-log1p(-u)) ** (1 / concentration) * scale``."""
    data, dtype = _start("weibull_min", key, dtype)
    scale = _param("weibull_min", scale, dtype)
    concentration = _param("weibull_min", concentration, dtype)
    shape = _shape("weibull_min", shape)
    e = _exponential(data, shape, dtype)
    return lax.mul(_pow(e, lax.div(_const(1, dtype), concentration)), scale)


@takes_out_sharding("random")
def rayleigh(key: Any, scale: Any = 1., shape: Shape | None = None, dtype: Any = None, *,
             out_sharding: Any = None) -> Any:
    """Rayleigh draws ``scale * sqrt(-2 log u)`` for ``u`` uniform in [0, 1).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("rayleigh", key, dtype)
    scale = _param("rayleigh", scale, dtype)
    shape = _out_shape("rayleigh", shape, scale)
    u = _uniform("rayleigh", data, shape, dtype, 0., 1.)
    return lax.mul(scale, lax.sqrt(lax.mul(_log(u), _const(-2, dtype))))


@takes_out_sharding("random")
def wald(key: Any, mean: Any, shape: Shape | None = None, dtype: Any = None, *,
         out_sharding: Any = None) -> Any:
    """Wald (inverse Gaussian) draws with the given mean and shape parameter 1.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("wald", key, dtype)
    mean = _param("wald", mean, dtype)
    shape = _out_shape("wald", shape, mean)
    mean = fnp.broadcast_to(mean, shape)
    k1, k2 = _split2(data)
    v = _normal_real(k1, shape, dtype)
    z = _uniform("wald", k2, shape, dtype, 0., 1.)
    y = lax.mul(v, v)
    y_sq = lax.mul(y, y)
    mean_sq = lax.mul(mean, mean)
    sqrt_term = lax.sqrt(_fma(lax.mul(_const(4, dtype), mean), y, lax.mul(mean_sq, y_sq)))
    half = _const(0.5, dtype)
    x = _fma(lax.neg(lax.mul(mean, half)), sqrt_term,
             lax.add(mean, lax.mul(lax.mul(mean_sq, y), half)))
    accept = lax.le(z, lax.div(mean, lax.add(mean, x)))
    return lax.select(accept, x, lax.div(mean_sq, x))


@takes_out_sharding("random")
def triangular(key: Any, left: Any, mode: Any, right: Any, shape: Shape | None = None,
               dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Triangular draws on ``[left, right]`` with peak at ``mode`` (inverse CDF).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("triangular", key, dtype)
    left, mode, right = (_param("triangular", p, dtype) for p in (left, mode, right))
    shape = _out_shape("triangular", shape, left, mode, right)
    left, mode, right = (fnp.broadcast_to(p, shape) for p in (left, mode, right))
    width = lax.sub(right, left)
    fc = lax.div(lax.sub(mode, left), width)
    u = _uniform("triangular", data, shape, dtype, 0., 1.)
    out1 = lax.add(left, lax.sqrt(lax.mul(lax.mul(u, width), lax.sub(mode, left))))
    out2 = lax.sub(right, lax.sqrt(lax.mul(lax.mul(lax.sub(_const(1, dtype), u), width),
                                           lax.sub(right, mode))))
    return lax.select(lax.lt(u, fc), out1, out2)


# --------------------------------------------------------------------------- signs and norms

@takes_out_sharding("random")
def rademacher(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Random signs: -1 or +1 with equal probability, in ``dtype`` (default int).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    dtype = dtypes.canonicalize_dtype(int if dtype is None else dtype)
    coin = lax.convert_element_type(bernoulli(key, 0.5, _shape("rademacher", shape)), dtype)
    return lax.sub(lax.mul(_const(2, dtype), coin), _const(1, dtype))


@takes_out_sharding("random")
def maxwell(key: Any, shape: Shape = (), dtype: Any = None, *, out_sharding: Any = None) -> Any:
    """Maxwell draws: the Euclidean norm of three standard normals.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("maxwell", key, dtype)
    return _maxwell(data, _shape("maxwell", shape), dtype)


def _maxwell(key: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    z = _normal_real(key, shape + (3,), dtype)
    if dtype in (np.float32, np.float64):  # XLA's summation order, which depends on the size
        return lax.sqrt(xla_sum(z, square=True))
    return lax.sqrt(fnp.sum(lax.mul(z, z), axis=-1))


def double_sided_maxwell(key: Any, loc: Any, scale: Any, shape: Shape = (),
                         dtype: Any = None) -> Any:
    """Maxwell draws with a random sign, scaled and shifted: ``sign * m * scale + loc``.

    As in JAX the result has shape ``shape + broadcast(loc, scale).shape``.
    """
    data, dtype = _start("double_sided_maxwell", key, dtype)
    loc = _param("double_sided_maxwell", loc, dtype)
    scale = _param("double_sided_maxwell", scale, dtype)
    params_shape = tuple(np.broadcast_shapes(loc.shape, scale.shape))
    shape = _shape("double_sided_maxwell", shape) or params_shape
    shape = shape + params_shape
    k_maxwell, k_sign = _split2(data)
    m = _maxwell(k_maxwell, shape, dtype)
    with key_checked():  # checked against legacy_prng_key above
        sign = rademacher(k_sign, shape, dtype)
    return _fma(lax.mul(sign, m), fnp.broadcast_to(scale, shape), fnp.broadcast_to(loc, shape))


# --------------------------------------------------------------------------- matrices

@takes_out_sharding("random")
def orthogonal(key: Any, n: int, shape: Shape = (), dtype: Any = None, m: int | None = None, *,
               out_sharding: Any = None) -> Any:
    """Haar-distributed ``n x m`` matrices with orthonormal columns (or rows if ``n < m``).

    The Q factor of a QR decomposition of a normal matrix, its columns' signs fixed by
    ``R``'s diagonal (as JAX does), so it is unique.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("orthogonal", key, dtype)
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    shape = _shape("orthogonal", shape)
    z = _normal_real(data, shape + (max(n, m), min(n, m)), dtype)
    q, r = _householder_qr(z)
    d = fnp.diagonal(r, axis1=-2, axis2=-1)
    x = lax.mul(q, lax.expand_dims(lax.sign(d), (-2,)))
    return fnp.swapaxes(x, -1, -2) if n < m else x


def _householder_qr(a: Any) -> tuple[Any, Any]:
    """The reduced QR decomposition of ``a[..., rows, cols]`` (rows >= cols) by Householder
    reflections, unrolled over the (static) columns."""
    rows, cols = a.shape[-2:]
    q = fnp.broadcast_to(fnp.eye(rows, dtype=a.dtype), a.shape[:-2] + (rows, rows))
    r = a
    for j in range(cols):
        x = r[..., j:, j]
        alpha = lax.neg(lax.mul(_sign_nonzero(x[..., 0]), fnp.linalg.norm(x, axis=-1)))
        v = x.at[..., 0].add(lax.neg(alpha))
        v_norm = fnp.linalg.norm(v, axis=-1, keepdims=True)
        v = v / fnp.where(v_norm == 0, 1, v_norm)
        v_r = fnp.einsum("...i,...ij->...j", v, r[..., j:, :])
        r_tail = r[..., j:, :] - 2 * v[..., :, None] * v_r[..., None, :]
        r = r.at[..., j:, :].set(r_tail)
        q_v = fnp.einsum("...ij,...j->...i", q[..., :, j:], v)
        q_tail = q[..., :, j:] - 2 * q_v[..., :, None] * v[..., None, :]
        q = q.at[..., :, j:].set(q_tail)
    return q[..., :, :cols], r[..., :cols, :]


def _sign_nonzero(x: Any) -> Any:
    return fnp.where(x < 0, -1, 1).astype(x.dtype)


@takes_out_sharding("random")
def multivariate_normal(key: Any, mean: Any, cov: Any, shape: Shape | None = None,
                        dtype: Any = None, method: str = "cholesky", *,
                        out_sharding: Any = None) -> Any:
    """Multivariate normal draws ``mean + factor @ z`` with ``factor @ factor.T == cov``.

    ``method`` picks the factor: ``"cholesky"`` (lower triangular), ``"eigh"`` or
    ``"svd"`` (both ``u * sqrt(s)``); ``mean[..., n]`` and ``cov[..., n, n]`` batch.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    if method not in ("svd", "eigh", "cholesky"):
        raise ValueError("multivariate_normal: method must be one of {'svd', 'eigh', "
                         f"'cholesky'}}, got {method!r}")
    data, dtype = _start("multivariate_normal", key, dtype)
    mean = _param("multivariate_normal", mean, dtype)
    cov = _param("multivariate_normal", cov, dtype)
    if mean.ndim < 1:
        raise ValueError(f"multivariate_normal requires mean.ndim >= 1, "
                         f"got mean.ndim == {mean.ndim}")
    if cov.ndim < 2:
        raise ValueError(f"multivariate_normal requires cov.ndim >= 2, got cov.ndim == {cov.ndim}")
    n = mean.shape[-1]
    if cov.shape[-2:] != (n, n):
        raise ValueError(f"multivariate_normal requires cov.shape == (..., n, n) for n={n}, "
                         f"but got cov.shape == {cov.shape}.")
    if shape is None:
        shape = tuple(np.broadcast_shapes(mean.shape[:-1], cov.shape[:-2]))
    else:
        shape = _shape("multivariate_normal", shape)
        _check_shape("multivariate_normal", shape, mean.shape[:-1], cov.shape[:-2])
    factor = _FACTORS[method](cov)
    z = _normal_real(data, shape + (n,), dtype)
    return mean + fnp.einsum("...ij,...j->...i", factor, z)


def _cholesky(a: Any) -> Any:
    """The lower Cholesky factor of symmetric positive definite ``a[..., n, n]`` (the
    Cholesky–Banachiewicz recurrence, unrolled over the static rows)."""
    n = a.shape[-1]
    cols = []
    for j in range(n):
        done = fnp.stack(cols, -1) if cols else None  # [..., n, j]
        diag = a[..., j, j]
        if done is not None:
            diag = diag - fnp.sum(done[..., j, :] ** 2, axis=-1)
        d = fnp.sqrt(diag)
        col = a[..., :, j]
        if done is not None:
            col = col - fnp.einsum("...ik,...k->...i", done, done[..., j, :])
        col = fnp.where(fnp.arange(n) >= j, col / d[..., None], 0)
        cols.append(col)
    return fnp.stack(cols, -1)


def _symmetric_sqrt(a: Any) -> Any:
    """``u * sqrt(s)`` from an eigendecomposition of ``a`` (NumPy's, outside tracing)."""
    w, v = np.linalg.eigh(np.asarray(a))
    return fnp.asarray((v * np.sqrt(w)[..., None, :]).astype(a.dtype))


_FACTORS = {"cholesky": _cholesky, "eigh": _symmetric_sqrt, "svd": _symmetric_sqrt}


__all__ = ["cauchy", "logistic", "lognormal", "pareto", "weibull_min", "rayleigh", "wald",
           "triangular", "rademacher", "maxwell", "double_sided_maxwell", "orthogonal",
           "multivariate_normal"]
