"""Gamma draws (Marsaglia–Tsang, in JAX's loop and key order) and the samplers built on them.

``gamma``/``loggamma`` split the key into one key per element and run JAX's
rejection loop on each (vmapped, so all elements advance together until the last
one is accepted); ``beta``, ``dirichlet``, ``chisquare``, ``t``, ``f``,
``generalized_normal`` and ``ball`` combine them as ``jax.random`` does. The draws are
differentiable in ``a`` by implicit reparameterisation, as in JAX (so are ``beta``,
``dirichlet`` and the others through them).
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as fnp
from fungrad._core.util import prod
from fungrad._incomplete_gamma import igamma
from fungrad.lax._placement import takes_out_sharding
from fungrad.random._distributions import (_exp, _exponential, _fma, _out_shape, _param,
                                           _pow, _start, rademacher)
from fungrad.random._keys import key_checked
from fungrad.random._samplers import (Shape, _check_shape, _const, _log, _normal_real, _shape,
                                      _split2, _uniform)
from fungrad.random._threefry import threefry_split
from fungrad.random._xla_reduce import xla_sum
from fungrad.random._xla_rsqrt import xla_div_sqrt
from fungrad.transforms.api import jvp, vmap
from fungrad.transforms.custom_derivatives import custom_jvp


def _gamma_one(key: Any, alpha: Any, inv_alpha: Any, log_space: bool) -> Any:
    """One Gamma(alpha) draw (or its log); alpha < 1 is boosted to alpha + 1, and the boost
    raises a uniform to ``inv_alpha`` (``1 / alpha``, or what XLA simplified it to)."""
    dtype = alpha.dtype
    zero, one = _const(0, dtype), _const(1, dtype)
    boost_mask = lax.ge(alpha, one)
    alpha = lax.select(boost_mask, alpha, lax.add(alpha, one))
    d = lax.sub(alpha, _const(1 / 3, dtype))
    if dtype in (np.float32, np.float64):  # rewritten by XLA into 1/3 * rsqrt(d)
        c = xla_div_sqrt(1 / 3, d)
    else:
        c = lax.div(_const(1 / 3, dtype), lax.sqrt(d))

    def reject(carry):
        _, x_sq, v, u = carry
        squeeze = lax.ge(u, _fma(lax.neg(_const(0.0331, dtype)), lax.mul(x_sq, x_sq), one))
        bound = _fma(x_sq, _const(0.5, dtype), lax.mul(d, lax.add(lax.sub(one, v), _log(v))))
        return lax.bitwise_and(squeeze, lax.ge(_log(u), bound))

    def propose(carry):
        key, x_key, u_key = (lax.index_in_dim(k, 0, 0, keepdims=False)
                             for k in lax.split(threefry_split(carry[0], (3,)), (1, 1, 1), 0))

        def next_x(kxv):
            k, sub = _split2(kxv[0])
            x = _normal_real(sub, (), dtype)
            return k, x, _fma(x, c, one)

        _, x, v = lax.while_loop(lambda kxv: lax.le(kxv[2], zero), next_x,
                                 (x_key, zero, _const(-1, dtype)))
        u = _uniform("gamma", u_key, (), dtype, 0., 1.)
        return key, lax.mul(x, x), lax.mul(lax.mul(v, v), v), u

    key, subkey = _split2(key)
    v = lax.while_loop(reject, propose, (key, zero, one, _const(2, dtype)))[2]
    if log_space:
        log_samples = lax.neg(_exponential(subkey, (), dtype))
        skip = lax.bitwise_or(boost_mask, lax.eq(log_samples, zero))
        log_boost = lax.select(skip, zero, lax.mul(log_samples, inv_alpha))
        return lax.add(lax.add(_log(d), _log(v)), log_boost)
    samples = lax.sub(one, _uniform("gamma", subkey, (), dtype, 0., 1.))
    boost = lax.select(boost_mask, one, _pow(samples, inv_alpha))
    return lax.mul(lax.mul(d, v), boost)


@functools.partial(custom_jvp, nondiff_argnums=(3,))
def _gamma_draws(keys: Any, a: Any, inv_a: Any, log_space: bool) -> Any:
    """One draw per key and ``a`` (flat), through the rejection loop."""
    return vmap(lambda k, x, inv_x: _gamma_one(k, x, inv_x, log_space))(keys, a, inv_a)


@_gamma_draws.defjvp
def _gamma_draws_jvp(log_space: bool, primals: tuple, tangents: tuple) -> tuple:
    """Implicit reparameterisation (JAX's): the draw ``x`` moves with ``a`` so that its
    CDF ``P(a, x)`` stays put, ``dx/da = -(dP/da) / (dP/dx)``, ``dP/dx`` being the
    density; in log space ``d log x = dx / x`` (a draw that underflowed to 0 counts as
    the smallest normal number, as in JAX)."""
    keys, a, inv_a = primals
    a_dot = tangents[1]  # inv_a moves with a inside the draw, not on its own
    out = _gamma_draws(keys, a, inv_a, log_space)
    x = out
    if log_space:
        x = _exp(out)
        x = lax.select(lax.eq(x, _const(0, a.dtype)),
                       lax.full_like(x, np.finfo(a.dtype).tiny), x)
    dp_da = jvp(lambda a: igamma(a, x, False), (a,), (fnp.ones_like(a),))[1]
    log_density = lax.sub(lax.sub(lax.mul(lax.sub(a, _const(1, a.dtype)), _log(x)), x),
                          lax.lgamma(a))
    dx_da = lax.neg(lax.mul(dp_da, _exp(lax.neg(log_density))))
    return out, lax.mul(a_dot, lax.div(dx_da, x) if log_space else dx_da)


def _gamma(name: str, key: Any, a: Any, shape: Shape | None, dtype: Any, log_space: bool,
           inv_a: Any = None) -> Any:
    """Gamma draws; ``inv_a`` (default ``1 / a``) is the boost's exponent for ``a < 1``."""
    data, dtype = _start(name, key, dtype)
    a = _param(name, a, dtype)
    shape = _out_shape(name, shape, a)
    flat = lax.reshape(fnp.broadcast_to(a, shape), (prod(shape),))
    inv_a = lax.div(_const(1, dtype), flat) if inv_a is None else fnp.broadcast_to(
        lax.convert_element_type(inv_a, dtype), flat.shape)
    keys = threefry_split(data, (prod(shape),))
    return lax.reshape(_gamma_draws(keys, flat, inv_a, log_space), shape)


@takes_out_sharding("random")
def gamma(key: Any, a: Any, shape: Shape | None = None, dtype: Any = None, *,
          out_sharding: Any = None) -> Any:
    """Standard Gamma(a) draws (density ``x**(a-1) exp(-x) / Gamma(a)``).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).

    Examples:
        >>> from fungrad import random
        >>> random.gamma(random.key(0), 2.0, (2,))  # the same numbers as jax.random.gamma
        Array([1.5897877, 1.7599413], dtype=float32)
    """
    return _gamma("gamma", key, a, shape, dtype, False)


@takes_out_sharding("random")
def loggamma(key: Any, a: Any, shape: Shape | None = None, dtype: Any = None, *,
             out_sharding: Any = None) -> Any:
    """``log`` of Gamma(a) draws, computed in log space (accurate for tiny ``a``).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    return _gamma("loggamma", key, a, shape, dtype, True)


@takes_out_sharding("random")
def beta(key: Any, a: Any, b: Any, shape: Shape | None = None, dtype: Any = None, *,
         out_sharding: Any = None) -> Any:
    """Beta(a, b) draws ``Ga / (Ga + Gb)`` from two log-space Gamma draws.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("beta", key, dtype)
    a, b = _param("beta", a, dtype), _param("beta", b, dtype)
    shape = _out_shape("beta", shape, a, b)
    key_a, key_b = _split2(data)
    with key_checked():  # checked against legacy_prng_key above
        log_a = loggamma(key_a, fnp.broadcast_to(a, shape), shape, dtype)
        log_b = loggamma(key_b, fnp.broadcast_to(b, shape), shape, dtype)
    log_max = lax.max(log_a, log_b)
    ga, gb = _exp(lax.sub(log_a, log_max)), _exp(lax.sub(log_b, log_max))
    return lax.div(ga, lax.add(ga, gb))


@takes_out_sharding("random")
def dirichlet(key: Any, alpha: Any, shape: Shape | None = None, dtype: Any = None, *,
              out_sharding: Any = None) -> Any:
    """Dirichlet(alpha) draws (``alpha[..., k]``): a softmax of log-space Gamma draws.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("dirichlet", key, dtype)
    alpha = _param("dirichlet", alpha, dtype)
    if alpha.ndim < 1:
        raise ValueError(f"dirichlet requires alpha.ndim >= 1, got alpha.ndim == {alpha.ndim}")
    if shape is None:
        shape = alpha.shape[:-1]
    else:
        shape = _shape("dirichlet", shape)
        _check_shape("dirichlet", shape, alpha.shape[:-1])
    with key_checked():  # checked against legacy_prng_key above
        log_g = loggamma(data, alpha, shape + alpha.shape[-1:], dtype)
    unnormalized = _exp(lax.sub(log_g, lax.stop_gradient(fnp.max(log_g, -1, keepdims=True))))
    if dtype not in (np.float32, np.float64):
        return lax.div(unnormalized, fnp.sum(unnormalized, -1, keepdims=True))
    # XLA sums in its own order and divides by the broadcast sum through its reciprocal.
    total = lax.div(_const(1, dtype), xla_sum(unnormalized))
    return lax.mul(unnormalized, lax.expand_dims(total, (-1,)))


@takes_out_sharding("random")
def chisquare(key: Any, df: Any, shape: Shape | None = None, dtype: Any = None, *,
              out_sharding: Any = None) -> Any:
    """Chi-square(df) draws: twice Gamma(df / 2), from a log-space draw.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("chisquare", key, dtype)
    return _chisquare(data, _param("chisquare", df, dtype), shape, dtype)


def _chisquare(key: Any, df: Any, shape: Any, dtype: np.dtype) -> Any:
    two = _const(2, dtype)
    with key_checked():  # checked against legacy_prng_key above
        return lax.mul(_exp(loggamma(key, lax.div(df, two), shape, dtype)), two)


@takes_out_sharding("random")
def f(key: Any, dfnum: Any, dfden: Any, shape: Shape | None = None, dtype: Any = None, *,
      out_sharding: Any = None) -> Any:
    """F(dfnum, dfden) draws: a ratio of chi-squares, each divided by its degrees of freedom.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("f", key, dtype)
    dfnum, dfden = _param("f", dfnum, dtype), _param("f", dfden, dtype)
    key_den, key_num = _split2(data)
    num = _chisquare(key_num, dfnum, shape, dtype)
    den = _chisquare(key_den, dfden, shape, dtype)
    # XLA's simplifier turns (num / dfnum) / (den / dfden) into one division.
    return lax.div(lax.mul(num, dfden), lax.mul(den, dfnum))


@takes_out_sharding("random")
def t(key: Any, df: Any, shape: Shape | None = None, dtype: Any = None, *,
      out_sharding: Any = None) -> Any:
    """Student's t(df) draws ``z * sqrt(df / 2 / g)`` with ``g`` Gamma(df / 2).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("t", key, dtype)
    df = _param("t", df, dtype)
    shape = _out_shape("t", shape, df)
    key_n, key_g = _split2(data)
    z = _normal_real(key_n, shape, dtype)
    half_df = lax.div(df, _const(2, dtype))
    with key_checked():  # checked against legacy_prng_key above
        g = gamma(key_g, half_df, shape, dtype)
    return lax.mul(z, lax.sqrt(lax.div(half_df, g)))


@takes_out_sharding("random")
def generalized_normal(key: Any, p: float, shape: Shape = (), dtype: Any = None, *,
                       out_sharding: Any = None) -> Any:
    """Generalised normal draws (density ``exp(-|x|**p)``): a random sign times ``g**(1/p)``.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("generalized_normal", key, dtype)
    return _generalized_normal(data, _param("generalized_normal", p, dtype),
                               _shape("generalized_normal", shape), dtype)


def _generalized_normal(key: Any, p: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    keys = threefry_split(key, (2,))
    k_gamma, k_sign = (lax.index_in_dim(keys, i, 0, keepdims=False) for i in range(2))
    inv_p = lax.div(_const(1, dtype), p)
    # The boost's exponent 1 / (1 / p) is p: XLA's simplifier cancels the two divisions.
    with key_checked():  # checked against legacy_prng_key by the caller
        g = _gamma("generalized_normal", k_gamma, inv_p, shape, dtype, False, inv_a=p)
        return lax.mul(rademacher(k_sign, shape, dtype), _pow(g, inv_p))


@takes_out_sharding("random")
def ball(key: Any, d: int, p: float = 2, shape: Shape = (), dtype: Any = None, *,
         out_sharding: Any = None) -> Any:
    """Uniform draws from the unit ``p``-norm ball in ``d`` dimensions (shape ``shape + (d,)``).

    ``out_sharding``: the device for the draws (see ``fungrad.random``).
    """
    data, dtype = _start("ball", key, dtype)
    shape = _shape("ball", shape)
    p = _param("ball", p, dtype)
    k1, k2 = (lax.index_in_dim(threefry_split(data, (2,)), i, 0, keepdims=False) for i in range(2))
    g = _generalized_normal(k1, p, shape + (int(d),), dtype)
    e = _exponential(k2, shape, dtype)
    powers = _pow(lax.abs(g), p)
    if dtype not in (np.float32, np.float64):
        norm = _pow(lax.add(fnp.sum(powers, axis=-1), e), lax.div(_const(1, dtype), p))
        return lax.div(g, lax.expand_dims(norm, (-1,)))
    # XLA sums in its own order and turns g / norm ** (1 / p) into g * norm ** -(1 / p).
    scale = _pow(lax.add(xla_sum(powers), e), lax.neg(lax.div(_const(1, dtype), p)))
    return lax.mul(g, lax.expand_dims(scale, (-1,)))


__all__ = ["gamma", "loggamma", "beta", "dirichlet", "chisquare", "f", "t",
           "generalized_normal", "ball"]
