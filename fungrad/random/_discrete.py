"""Counting samplers: ``poisson``, ``binomial``, ``multinomial`` and ``geometric``, as in
``jax.random``.

They follow JAX's algorithms and key order. ``poisson`` draws every element with
Knuth's product of uniforms (rate below 10) and with Hörmann's transformed
rejection (rate 10 or more) and selects; ``binomial`` likewise runs a sum of
geometric waiting times (``count * q <= 10``) and BTRS rejection, on
``q = min(p, 1 - p)``. Both loops are ``lax.while_loop``s over the whole array
that stop once every element is done; ``multinomial`` scans ``binomial`` over the
outcomes with one key each; ``geometric`` inverts the CDF of one uniform. The
rejection test's ``lgamma`` is XLA's float32 one, so every draw equals JAX's.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as fnp
from fungrad._core import core, dtypes
from fungrad.lax._placement import takes_out_sharding
from fungrad.random._distributions import _fma, _out_shape, _start
from fungrad.random._keys import check_key
from fungrad.random._samplers import (
    Shape,
    _check_shape,
    _const,
    _log,
    _log1p,
    _shape,
    _split2,
    _uniform,
)
from fungrad.random._threefry import threefry_split


def _int_dtype(name: str, dtype: Any) -> np.dtype:
    dtype = dtypes.canonicalize_dtype(int if dtype is None else dtype)
    if dtype.kind not in "iu":
        raise ValueError(f"dtype argument to `{name}` must be an int dtype, got {dtype.name}")
    return dtype


def _inexact(name: str, x: Any) -> Any:
    """``x`` as an array of its own float dtype, or the default float dtype if it is not one."""
    x = fnp.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name}: parameters must be real numbers, got {x.dtype.name}")
    return x if dtypes.is_float(x.dtype) else x.astype(dtypes.canonicalize_dtype(float))


def _split3(key: Any) -> tuple[Any, Any, Any]:
    keys = threefry_split(key, (3,))
    return tuple(lax.index_in_dim(keys, i, 0, keepdims=False) for i in range(3))


def _unit(name: str, key: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    return _uniform(name, key, shape, dtype, 0., 1.)


def _full(value: Any, dtype: Any, shape: tuple[int, ...]) -> Any:
    return lax.full(shape, np.array(value, dtype), dtype)


# --------------------------------------------------------------------------- poisson

_LANCZOS = (676.520368121885098567009190444019, -1259.13921672240287047156078755283,
            771.3234287776530788486528258894, -176.61502916214059906584551354,
            12.507343278686904814458936853, -0.13857109526572011689554707,
            9.984369578019570859563e-6, 1.50563273514931155834e-7)


def _lgamma(x: Any) -> Any:
    """XLA's float32 ``lgamma`` for ``x >= 1/2``: its Lanczos sum (g = 7) step for step, with
    the division by ``g + 1/2`` a product with its reciprocal and the last multiply-add fused,
    as XLA compiles it. Smaller ``x`` (reflection) never matters here: ``k < 0`` is rejected."""
    f32 = np.float32
    z = lax.sub(x, _const(1, f32))
    acc = _const(0.99999999999980993227684700473478, f32)
    for i, coeff in enumerate(_LANCZOS):
        denominator = lax.add(lax.add(z, _const(i, f32)), _const(1, f32))
        acc = lax.add(acc, lax.div(_const(coeff, f32), denominator))
    t = lax.add(_const(7.5, f32), z)
    log_t = lax.add(_const(np.log(7.5), f32), _log1p(lax.mul(z, _const(1 / 7.5, f32))))
    slope = lax.sub(lax.add(z, _const(0.5, f32)), lax.div(t, log_t))
    return lax.add(_fma(slope, log_t, _const(np.log(2 * np.pi) / 2, f32)), _log(acc))


def _poisson_knuth(key: Any, lam: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Counts uniforms until their product falls below ``exp(-lam)`` (in log space)."""
    neg_lam = lax.neg(lam)

    def body(carry):
        k, key, log_prod = carry
        key, sub = _split2(key)
        k = lax.select(lax.gt(log_prod, neg_lam), lax.add(k, _const(1, dtype)), k)
        return k, key, lax.add(log_prod, _log(_unit("poisson", sub, shape, np.float32)))

    init = (_full(0, dtype, shape), key, _full(0, np.float32, shape))
    k = lax.while_loop(lambda c: fnp.any(lax.gt(c[2], neg_lam)), body, init)[0]
    return lax.sub(k, _const(1, dtype))


def _poisson_rejection(key: Any, lam: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Hörmann's transformed rejection (PTRS), accepting each element once."""
    f32 = np.float32
    log_lam = _log(lam)
    b = _fma(_const(2.53, f32), lax.sqrt(lam), _const(0.931, f32))
    a = _fma(_const(0.02483, f32), b, _const(-0.059, f32))
    inv_alpha = lax.add(_const(1.1239, f32),
                        lax.div(_const(1.1328, f32), lax.sub(b, _const(3.4, f32))))
    v_r = lax.sub(_const(0.9277, f32), lax.div(_const(3.6224, f32), lax.sub(b, _const(2, f32))))

    def body(carry):
        k_out, accepted, key = carry
        key, sub0, sub1 = _split3(key)
        u = lax.sub(_unit("poisson", sub0, shape, f32), _const(0.5, f32))
        v = _unit("poisson", sub1, shape, f32)
        us = lax.sub(_const(0.5, f32), lax.abs(u))
        slope = lax.add(lax.div(lax.mul(_const(2, f32), a), us), b)
        k = lax.floor(lax.add(_fma(slope, u, lam), _const(0.43, f32)))
        s = _log(lax.div(lax.mul(v, inv_alpha), lax.add(lax.div(a, lax.mul(us, us)), b)))
        t = lax.sub(_fma(k, log_lam, lax.neg(lam)), _lgamma(lax.add(k, _const(1, f32))))
        accept1 = lax.bitwise_and(lax.ge(us, _const(0.07, f32)), lax.le(v, v_r))
        reject = lax.bitwise_or(lax.lt(k, _const(0, f32)),
                                lax.bitwise_and(lax.lt(us, _const(0.013, f32)), lax.gt(v, us)))
        accept = lax.bitwise_or(accept1, lax.bitwise_and(lax.bitwise_not(reject), lax.le(s, t)))
        return lax.select(accept, k, k_out), lax.bitwise_or(accepted, accept), key

    init = (_full(-1, f32, shape), _full(False, np.bool_, shape), key)
    k = lax.while_loop(lambda c: fnp.any(lax.bitwise_not(c[1])), body, init)[0]
    return lax.convert_element_type(k, dtype)


@takes_out_sharding("random")
def poisson(key: Any, lam: Any, shape: Shape | None = None, dtype: Any = None, *,
            out_sharding: Any = None) -> Any:
    """Poisson(lam) counts: Knuth's method for ``lam < 10``, transformed rejection above.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).

    Examples:
        >>> from fungrad import random
        >>> random.poisson(random.key(0), 3.0, (5,))  # the same numbers as jax.random.poisson
        Array([0, 0, 4, 4, 1], dtype=int32)
    """
    data, _ = check_key("poisson", key)
    dtype = _int_dtype("poisson", dtype)
    lam = _inexact("poisson", lam)
    shape = tuple(lam.shape) if shape is None else _shape("poisson", shape)
    lam = lax.convert_element_type(fnp.broadcast_to(lam, shape), np.float32)
    use_knuth = lax.bitwise_or(lax.ne(lam, lam), lax.lt(lam, _const(10, np.float32)))
    lam_knuth = lax.select(use_knuth, lam, _full(0, np.float32, shape))
    lam_rejection = lax.select(use_knuth, _full(1e5, np.float32, shape), lam)
    result = lax.select(use_knuth, _poisson_knuth(data, lam_knuth, shape, dtype),
                        _poisson_rejection(data, lam_rejection, shape, dtype))
    return lax.select(lax.eq(lam, _const(0, np.float32)), _full(0, dtype, shape), result)


# --------------------------------------------------------------------------- geometric

@takes_out_sharding("random")
def geometric(key: Any, p: Any, shape: Shape | None = None, dtype: Any = None, *,
              out_sharding: Any = None) -> Any:
    """Geometric(p) counts of trials up to the first success: ``floor(log u / log1p(-p)) + 1``.

    ``out_sharding``: the device for the draws (see ``fungrad.random``).

    Examples:
        >>> from fungrad import random
        >>> random.geometric(random.key(0), 0.3, (5,))  # the same numbers as jax.random.geometric
        Array([1, 1, 4, 3, 2], dtype=int32)
    """
    data, _ = check_key("geometric", key)
    dtype = _int_dtype("geometric", dtype)
    p = _inexact("geometric", p)
    shape = _out_shape("geometric", shape, p)
    u = _unit("geometric", data, shape, p.dtype)
    u = lax.select(lax.eq(u, _const(0, p.dtype)), _full(1, p.dtype, shape), u)
    log_q = fnp.broadcast_to(_log1p(lax.neg(p)), shape)
    g = lax.add(lax.floor(lax.div(_log(u), log_q)), _const(1, p.dtype))
    return lax.convert_element_type(g, dtype)


# --------------------------------------------------------------------------- binomial

_STIRLING_TAIL = np.array([0.0810614667953272, 0.0413406959554092, 0.0276779256849983,
                           0.02079067210376509, 0.0166446911898211, 0.0138761288230707,
                           0.0118967099458917, 0.0104112652619720, 0.00925546218271273,
                           0.00833056343336287])


def _stirling_tail(k: Any) -> Any:
    """``log k! - log(sqrt(2 pi k) (k / e)**k)``: a table below 10, its series above."""
    dtype = core.get_aval(k).dtype
    one = _const(1, dtype)
    clamped = lax.clamp(_const(0, dtype), k, _const(9, dtype))
    kp1 = lax.add(clamped, one)
    kp1sq = lax.mul(kp1, kp1)
    inner = lax.sub(_const(1 / 360, dtype), lax.div(_const(1 / 1260, dtype), kp1sq))
    approx = lax.div(lax.sub(_const(1 / 12, dtype), lax.div(inner, kp1sq)), kp1)
    index = lax.convert_element_type(lax.floor(clamped), np.int32)
    table = fnp.asarray(_STIRLING_TAIL.astype(dtype))[index]
    return lax.select(lax.le(k, _const(9, dtype)), table, approx)


def _binomial_inversion(key: Any, count: Any, q: Any, shape: tuple[int, ...]) -> Any:
    """The number of geometric(q) waiting times that fit in ``count`` trials."""
    dtype = core.get_aval(q).dtype
    log_1mq = _log1p(lax.neg(q))

    def body(carry):
        num_geom, geom_sum, key = carry
        sub, key = _split2(key)
        num_geom = lax.select(lax.le(geom_sum, count), lax.add(num_geom, _const(1, dtype)),
                              num_geom)
        geom = lax.ceil(lax.div(_log(_unit("binomial", sub, shape, dtype)), log_1mq))
        return num_geom, lax.add(geom_sum, geom), key

    init = (_full(0, dtype, shape), _full(0, dtype, shape), key)
    k = lax.while_loop(lambda c: fnp.any(lax.le(c[1], count)), body, init)[0]
    return lax.sub(k, _const(1, dtype))


def _btrs(key: Any, count: Any, q: Any, shape: tuple[int, ...]) -> Any:
    """Hörmann's transformed rejection with squeeze (BTRS) for ``count * q > 10``."""
    dtype = core.get_aval(q).dtype
    c_ = lambda v: _const(v, dtype)
    one_m_q = lax.sub(c_(1), q)
    stddev = lax.sqrt(lax.mul(lax.mul(count, q), one_m_q))
    b = _fma(c_(2.53), stddev, c_(1.15))
    a = lax.add(_fma(c_(0.0248), b, c_(-0.0873)), lax.mul(c_(0.01), q))
    c = _fma(count, q, c_(0.5))
    v_r = lax.sub(c_(0.92), lax.div(c_(4.2), b))
    r = lax.div(q, one_m_q)
    alpha = lax.mul(lax.add(c_(2.83), lax.div(c_(5.1), b)), stddev)
    m = lax.floor(lax.mul(lax.add(count, c_(1)), q))
    count_m1 = lax.add(lax.sub(count, m), c_(1))
    log_ratio = _log(lax.div(lax.add(m, c_(1)), lax.mul(r, count_m1)))
    head = lax.add(lax.mul(lax.add(m, c_(0.5)), log_ratio),
                   lax.add(_stirling_tail(m), _stirling_tail(lax.sub(count, m))))

    def body(carry):
        k_out, accepted, key = carry
        key, sub0, sub1 = _split3(key)
        u = lax.sub(_unit("binomial", sub0, shape, dtype), c_(0.5))
        v = _unit("binomial", sub1, shape, dtype)
        us = lax.sub(c_(0.5), lax.abs(u))
        accept1 = lax.bitwise_and(lax.ge(us, c_(0.07)), lax.le(v, v_r))
        k = lax.floor(_fma(lax.add(lax.div(lax.mul(c_(2), a), us), b), u, c))
        reject = lax.bitwise_or(lax.lt(k, c_(0)), lax.gt(k, count))
        v = _log(lax.div(lax.mul(v, alpha), lax.add(lax.div(a, lax.mul(us, us)), b)))
        count_k1 = lax.add(lax.sub(count, k), c_(1))
        ub = lax.add(head, lax.add(
            lax.mul(lax.add(count, c_(1)), _log(lax.div(count_m1, count_k1))),
            lax.mul(lax.add(k, c_(0.5)), _log(lax.div(lax.mul(r, count_k1), lax.add(k, c_(1)))))))
        ub = lax.sub(lax.sub(ub, _stirling_tail(k)), _stirling_tail(lax.sub(count, k)))
        accept = lax.bitwise_or(accept1, lax.bitwise_and(lax.bitwise_not(reject), lax.le(v, ub)))
        return lax.select(accept, k, k_out), lax.bitwise_or(accepted, accept), key

    init = (_full(-1, dtype, shape), _full(False, np.bool_, shape), key)
    return lax.while_loop(lambda c: fnp.any(lax.bitwise_not(c[1])), body, init)[0]


def _binomial(key: Any, count: Any, prob: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    pdt = prob.dtype
    c_ = lambda v: _const(v, pdt)
    count = fnp.broadcast_to(lax.convert_element_type(count, pdt), shape)
    prob = fnp.broadcast_to(prob, shape)
    p_lt_half = lax.lt(prob, c_(0.5))
    q = lax.select(p_lt_half, prob, lax.sub(c_(1), prob))
    count_bad = lax.bitwise_or(lax.ne(count, count), lax.lt(count, c_(0)))
    count_inf = fnp.isinf(count)
    q_nan = lax.ne(q, q)
    q_neg = lax.lt(q, c_(0))
    q = lax.select(lax.bitwise_or(q_nan, q_neg), _full(0.01, pdt, shape), q)
    use_inversion = lax.bitwise_or(count_bad, lax.le(lax.mul(count, q), c_(10)))
    count = lax.floor(count)
    samples = lax.select(
        use_inversion,
        _binomial_inversion(key, lax.select(use_inversion, count, _full(0, pdt, shape)), q, shape),
        _btrs(key, lax.select(use_inversion, _full(1e4, pdt, shape), count),
              lax.select(use_inversion, _full(0.5, pdt, shape), q), shape))
    samples = lax.convert_element_type(samples, dtype)
    invalid = lax.bitwise_or(lax.bitwise_or(q_neg, q_nan), count_bad)
    samples = lax.select(invalid, _full(np.nan, dtype, shape), samples)
    samples = lax.select(lax.bitwise_and(count_inf, lax.bitwise_not(invalid)),
                         _full(np.inf, dtype, shape), samples)
    keep = lax.bitwise_or(lax.bitwise_or(p_lt_half, count_bad), lax.bitwise_or(q_nan, count_inf))
    return lax.select(keep, samples, lax.sub(lax.convert_element_type(count, dtype), samples))


def binomial(key: Any, n: Any, p: Any, shape: Shape | None = None, dtype: Any = None) -> Any:
    """Binomial(n, p) counts (as floats, like JAX): inversion for ``n * q <= 10``, else BTRS.

    Examples:
        >>> from fungrad import random
        >>> random.binomial(random.key(0), 20, 0.3, (5,))  # the same numbers as jax.random.binomial
        Array([6., 4., 6., 5., 3.], dtype=float32)
    """
    data, dtype = _start("binomial", key, dtype)
    n, p = fnp.asarray(n), _inexact("binomial", p)
    if n.dtype.kind not in "biuf":
        raise TypeError(f"binomial: n must be a real number, got {n.dtype.name}")
    shape = _out_shape("binomial", shape, n, p)
    return _binomial(data, n, p, shape, dtype)


def multinomial(key: Any, n: Any, p: Any, *, shape: Shape | None = None, dtype: Any = None,
                unroll: int | bool = 1) -> Any:
    """Multinomial(n, p) counts over ``p``'s last axis: a binomial per outcome, each drawn from
    the trials the previous outcomes left, with ``p`` renormalised to what remains.

    As JAX's code does, ``shape`` (default ``p.shape``) is the whole result shape, outcomes
    last; ``p`` must broadcast to it and ``n`` to ``shape[:-1]``.

    Examples:
        >>> from fungrad import random
        >>> import numpy as np
        >>> random.multinomial(random.key(0), 10, np.array([0.2, 0.3, 0.5]))  # as in jax
        Array([1., 1., 8.], dtype=float32)
    """
    data, dtype = _start("multinomial", key, dtype)
    n, p = _inexact("multinomial", n), _inexact("multinomial", p)
    common = np.promote_types(n.dtype, p.dtype)
    n, p = n.astype(common), p.astype(common)
    if p.ndim < 1:
        raise ValueError(f"multinomial requires p.ndim >= 1, got p.ndim == {p.ndim}")
    shape = tuple(p.shape) if shape is None else _shape("multinomial", shape)
    _check_shape("multinomial", shape, p.shape)
    _check_shape("multinomial", shape[:-1], n.shape)
    n = fnp.broadcast_to(n, shape[:-1])
    p = fnp.moveaxis(fnp.broadcast_to(p, shape), -1, 0)
    remaining = lax.cumsum(p, 0, reverse=True)
    ratios = lax.div(p, fnp.where(remaining == 0, 1, remaining))
    keys = threefry_split(data, (shape[-1],))

    def step(remainder, ratio_key):
        ratio, k = ratio_key
        count = _binomial(k, remainder, fnp.clip(ratio, 0, 1), remainder.shape, remainder.dtype)
        return lax.sub(remainder, count), count

    counts = lax.scan(step, n, (ratios, keys), unroll=unroll)[1]
    return fnp.moveaxis(counts, 0, -1).astype(dtype)


__all__ = ["binomial", "geometric", "multinomial", "poisson"]
