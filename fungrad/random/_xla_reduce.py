"""Sums over the last axis in the order XLA's CPU code adds, for the samplers' norms and
normalisations (``maxwell``, ``dirichlet``, ``ball``).

XLA compiles a float32 or float64 ``reduce_sum`` in one of two ways, and the two round
differently:

* operands of at least ``YNN_MIN_ELEMENTS`` (4,096) elements go to a YNNPACK kernel. A row
  of the last axis is spread over the lanes of one 64-byte vector (16 float32 or 8 float64
  lanes: element ``i`` is added to lane ``i % lanes``), and the lanes are then summed by
  halving (lane ``j`` plus lane ``j + lanes / 2``, and so on). Elementwise producers in
  the same fusion (``x * x`` for a norm) are rounded before the sum.
* smaller operands run XLA's own loop, which adds left to right; LLVM contracts a square
  feeding an add into a fused multiply-add: of the first two squares, one is rounded and
  is the addend of the other's FMA (``fma(x0, x0, x1 * x1)`` in float32,
  ``fma(x1, x1, x0 * x0)`` in float64, as ``maxwell``'s fusion compiles: a float64 sum of
  squares on its own is contracted otherwise), and each later square is fused with the
  running sum.

Measured on XLA's CPU backend of jaxlib 0.10 (AVX-512): the YNNPACK order holds for rows of
up to ``YNN_MAX_ROW_BYTES`` bytes (80 float32, 40 float64 elements) and the loop's for rows
of up to ``LOOP_MAX_ROW`` elements, except sums of 5 to 8 squares, which LLVM vectorises
differently; longer rows are split into blocks (YNNPACK) or vectorised (LLVM) in orders not
repeated here. Those cases use NumPy's sum instead (the last bits can then differ).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.lax import add, broadcast_in_dim, mul
from fungrad.random._xla_math import fma, fma64

YNN_MIN_ELEMENTS = 4096
YNN_VECTOR_BYTES = 64
YNN_MAX_ROW_BYTES = 320
LOOP_MAX_ROW = 32
LOOP_VECTORISED_SQUARES = range(5, 9)


def _lanes_sum(xp, x):
    """YNNPACK's order: ``x[..., i]`` into lane ``i % lanes``, then the lanes by halving."""
    lanes = YNN_VECTOR_BYTES // x.dtype.itemsize
    rows = -(-x.shape[-1] // lanes)
    padded = xp.zeros(x.shape[:-1] + (rows * lanes,), x.dtype)
    padded[..., :x.shape[-1]] = x
    blocks = padded.reshape(x.shape[:-1] + (rows, lanes))
    acc = blocks[..., 0, :]
    for r in range(1, rows):
        acc = acc + blocks[..., r, :]
    while acc.shape[-1] > 1:
        half = acc.shape[-1] // 2
        acc = acc[..., :half] + acc[..., half:]
    return acc[..., 0]


def _loop_sum(xp, x, square):
    """XLA's loop: left to right, squares contracted into fused multiply-adds."""
    if not square:
        acc = x[..., 0]
        for i in range(1, x.shape[-1]):
            acc = acc + x[..., i]
        return acc
    if x.shape[-1] == 1:
        return x[..., 0] * x[..., 0]
    if x.dtype == np.float64:
        acc = fma64(xp, x[..., 1], x[..., 1], x[..., 0] * x[..., 0])
    else:
        acc = fma(xp, x[..., 0], x[..., 0], x[..., 1] * x[..., 1])
    fused = fma64 if x.dtype == np.float64 else fma
    for i in range(2, x.shape[-1]):
        acc = fused(xp, x[..., i], x[..., i], acc)
    return acc


def _sum_impl(xp, x, *, square):
    x = xp.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"xla_sum: float32 or float64 operand expected, got {x.dtype.name}")
    row = x.shape[-1]
    if row == 0:
        return xp.zeros(x.shape[:-1], x.dtype)
    with np.errstate(all="ignore"):  # infinities and NaNs propagate, as in XLA
        if x.size >= YNN_MIN_ELEMENTS:
            terms = x * x if square else x
            if row * x.dtype.itemsize <= YNN_MAX_ROW_BYTES:
                return xp.asarray(_lanes_sum(xp, terms))
            return xp.asarray(terms.sum(-1, dtype=x.dtype))
        if row <= LOOP_MAX_ROW and not (square and row in LOOP_VECTORISED_SQUARES):
            return xp.asarray(_loop_sum(xp, x, square), x.dtype)
        return xp.asarray((x * x if square else x).sum(-1, dtype=x.dtype))


def _sum_abstract(x, *, square):
    if x.ndim < 1:
        raise TypeError("xla_sum: the operand needs a last axis to sum over, got a scalar")
    return ShapedArray(x.shape[:-1], x.dtype, x.weak_type)


def _sum_jvp(primals, tangents, *, square):
    """Linear in ``x`` (``square=False``); ``d sum(x**2) = sum(2 x t)`` otherwise."""
    (x,), (t,) = primals, tangents
    out = xla_sum_p.bind(x, square=square)
    if type(t) is ad.Zero:
        return out, ad.Zero.from_primal(out)
    t = ad.instantiate(t)
    return out, xla_sum_p.bind(mul(add(x, x), t) if square else t, square=False)


def _sum_transpose(ct, x, *, square):
    if square:
        raise ValueError("xla_sum: a sum of squares is not linear and has no transpose")
    shape = x.aval.shape
    return [broadcast_in_dim(ct, shape, tuple(range(len(shape) - 1)))]


def _sum_batch(axis_size, vals, dims, *, square):
    x = batching.bdim_at_front(vals[0], dims[0], axis_size)
    return xla_sum_p.bind(x, square=square), 0


xla_sum_p = Primitive("xla_sum")
xla_sum_p.def_impl(_sum_impl)
xla_sum_p.def_abstract_eval(_sum_abstract)
ad.def_jvp(xla_sum_p, _sum_jvp)
ad.def_transpose(xla_sum_p, _sum_transpose)
batching.def_batch(xla_sum_p, _sum_batch)


def xla_sum(x: Any, square: bool = False) -> Any:
    """The sum of ``x`` (of ``x**2`` with ``square``) over its last axis, float32 or float64,
    in the order and with the roundings of XLA's CPU code for an operand of this size."""
    return xla_sum_p.bind(x, square=bool(square))
