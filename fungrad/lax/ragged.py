"""Grouped matrix products: ``ragged_dot`` and ``ragged_dot_general`` (``jax.lax``'s).

A mixture-of-experts layer sorts its tokens by expert, then multiplies each expert's run
of rows by that expert's weights: with ``lhs`` of shape ``[m, k]``, ``rhs`` of shape
``[g, k, n]`` and integer ``group_sizes`` of shape ``[g]``, the first ``group_sizes[0]``
rows of ``lhs`` meet ``rhs[0]``, the next ``group_sizes[1]`` rows ``rhs[1]``, and so on;
rows past the groups' total give zeros. Written with masks (JAX's reference lowering) it
costs ``g`` dense products of the whole ``lhs``; written as a gather of each row's weights
it makes an ``[m, k, n]`` array. Here it is one primitive, ``ragged_dot_general``, whose
implementation reads the (concrete) group sizes and runs one ``matmul`` per group on a
slice of the operands, so it costs about one ``[m, k] @ [k, n]`` product.

``ragged_dot_general`` takes ``RaggedDotDimensionNumbers``: ``dot_general``'s dimension
numbers, the one *ragged* dimension of ``lhs`` that ``group_sizes`` splits, and the *group*
dimension of ``rhs``. Where the ragged dimension sits makes one of JAX's three modes:

1. *non-contracting* (``ragged_dot``): ``[b.., m.., k..] x [g, b.., k.., n..] -> [b.., m..,
   n..]``; each group of rows along the ragged dimension uses its own slice of ``rhs``.
2. *contracting*: ``[b.., m.., k..] x [b.., k.., n..] -> [g, b.., m.., n..]``; group ``i``
   contracts only its own run of the ragged dimension (the gradient of mode 1 in ``rhs``).
3. *batch*: the ragged dimension is a batch dimension; the result is ``dot_general``'s
   (as in JAX, whose reference implementation ignores the group sizes there).

``group_sizes`` is ``[g]``, or ``[*prefix, g]`` to split each position of the prefix
differently: the batch dimensions, then the lhs dimensions of the ragged dimension's kind
that come before it (mode 3: the batch dimensions before it). Sizes may sum to less than
the ragged dimension (the rest is zeros) or more (the groups are cut at its end); a
negative size makes later groups start earlier, so rows may belong to two groups and get
both products, as XLA's masks compute it.

All three modes have their derivatives here (JAX transposes mode 1 only): the JVP is
bilinear; mode 1's transposes are a mode 1 and a mode 2 product, mode 2's are both mode 1
products, mode 3's are mode 3 products. ``group_sizes`` is an integer operand with a
``float0`` (symbolic zero) tangent. ``group_offset`` is not supported (JAX's rules raise
``NotImplementedError`` for it too).
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import operator
from typing import Any, NamedTuple, Sequence

import numpy as np

from fungrad._core import core, dtypes, lowering
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import prod
from fungrad.interpreters import ad, batching
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import as_operand
from fungrad.lax.dot import (as_result, canonicalize_precision, check_dimension_numbers,
                             check_dims, compute_dtype, dot_general_p, dot_result_dtype,
                             is_algorithm, run_algorithm, uses_algorithm)
from fungrad.lax.shapes import broadcast_in_dim, convert_element_type, transpose

_NAME = "ragged_dot_general"


# --------------------------------------------------------------------------- dimension numbers

def _int_tuple(values: Any, what: str) -> tuple[int, ...]:
    """``values`` (an int or a sequence of ints) as a tuple of Python ints."""
    if isinstance(values, (int, np.integer)):
        return (operator.index(values),)
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError as e:
        raise TypeError(f"RaggedDotDimensionNumbers: {what} must be a sequence of ints, "
                        f"got {values!r}") from e


@dataclasses.dataclass(frozen=True)
class RaggedDotDimensionNumbers:
    """The dimensions of a ``ragged_dot_general`` (``jax.lax.RaggedDotDimensionNumbers``).

    ``dot_dimension_numbers``: ``((lhs_contracting, rhs_contracting), (lhs_batch,
    rhs_batch))`` as for ``dot_general``; ``lhs_ragged_dimensions``: the one dimension of
    ``lhs`` that ``group_sizes`` splits into groups; ``rhs_group_dimensions``: the dimension
    of ``rhs`` indexed by group (exactly one when the ragged dimension is non-contracting,
    none otherwise). Stored as tuples of ints, so an instance is hashable (a primitive
    parameter).
    """
    dot_dimension_numbers: tuple
    lhs_ragged_dimensions: tuple[int, ...]
    rhs_group_dimensions: tuple[int, ...]

    def __init__(self, dot_dimension_numbers: Any, lhs_ragged_dimensions: Sequence[int],
                 rhs_group_dimensions: Sequence[int]) -> None:
        try:
            (lc, rc), (lb, rb) = dot_dimension_numbers
        except (TypeError, ValueError) as e:
            raise TypeError("RaggedDotDimensionNumbers: dot_dimension_numbers must be "
                            "((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)), got "
                            f"{dot_dimension_numbers!r}") from e
        dot = ((_int_tuple(lc, "lhs_contracting"), _int_tuple(rc, "rhs_contracting")),
               (_int_tuple(lb, "lhs_batch"), _int_tuple(rb, "rhs_batch")))
        object.__setattr__(self, "dot_dimension_numbers", dot)
        object.__setattr__(self, "lhs_ragged_dimensions",
                           _int_tuple(lhs_ragged_dimensions, "lhs_ragged_dimensions"))
        object.__setattr__(self, "rhs_group_dimensions",
                           _int_tuple(rhs_group_dimensions, "rhs_group_dimensions"))


# ragged_dot's: [m, k] x [g, k, n], the rows of lhs ragged, rhs's first dimension the groups
_BASIC = RaggedDotDimensionNumbers((((1,), (1,)), ((), ())), (0,), (0,))


class _Mode(enum.Enum):
    """Where the lhs ragged dimension is (JAX's ``RaggedDotMode``)."""
    NONCONTRACTING = 1
    CONTRACTING = 2
    BATCH = 3


def _remaining(n: int, *removed: Sequence[int]) -> list[int]:
    gone = set().union(*map(set, removed))
    return [i for i in range(n) if i not in gone]


def _mode(lhs_ndim: int, dn: RaggedDotDimensionNumbers) -> tuple[_Mode, int]:
    """The mode and the lhs ragged dimension (validated by the shape rule)."""
    (r,) = dn.lhs_ragged_dimensions
    (lc, _), (lb, _) = dn.dot_dimension_numbers
    if r in lc:
        return _Mode.CONTRACTING, r
    if r in lb:
        return _Mode.BATCH, r
    return _Mode.NONCONTRACTING, r


def _prefix_dims(mode: _Mode, lhs_ndim: int, r: int, lb: Sequence[int],
                 lc: Sequence[int]) -> list[int]:
    """The lhs dimensions a ``[*prefix, g]`` ``group_sizes`` spans, in order."""
    if mode is _Mode.NONCONTRACTING:
        free = _remaining(lhs_ndim, lc, lb)
        return list(lb) + free[:free.index(r)]
    if mode is _Mode.CONTRACTING:
        return list(lb) + list(lc[:list(lc).index(r)])
    return list(lb[:list(lb).index(r)])


# --------------------------------------------------------------------------- shape / dtype rules

class _Plan(NamedTuple):
    """A validated signature: its mode, result shape, and the impl's canonical layouts
    (each operand's permutation and the shape to view it as after that)."""
    mode: _Mode
    out_shape: tuple[int, ...]
    lhs_perm: tuple[int, ...]
    lhs_view: tuple[int, ...]
    rhs_perm: tuple[int, ...]
    rhs_view: tuple[int, ...]
    cells: tuple[int, int]  # the (batch, other prefix) sizes a [*prefix, g] group_sizes has


@functools.lru_cache(maxsize=512)
def _plan(lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...], gs_shape: tuple[int, ...],
          dn: RaggedDotDimensionNumbers) -> _Plan:
    """Validate a signature (``TypeError`` naming ``ragged_dot_general`` and what is wrong)
    and plan its implementation; cached, so eager calls do no bookkeeping."""
    (lc, rc), (lb, rb) = dn.dot_dimension_numbers
    ln, rn = len(lhs_shape), len(rhs_shape)
    check_dimension_numbers(_NAME, lhs_shape, rhs_shape, dn.dot_dimension_numbers)
    batch = tuple(lhs_shape[d] for d in lb)
    if len(dn.lhs_ragged_dimensions) != 1:
        raise TypeError(f"{_NAME} requires exactly one lhs ragged dimension, got "
                        f"{dn.lhs_ragged_dimensions}")
    (r,) = dn.lhs_ragged_dimensions
    if not 0 <= r < ln:
        raise TypeError(f"{_NAME} requires the lhs ragged dimension to be nonnegative and "
                        f"less than the rank of lhs ({ln}), got {r}")
    mode, _ = _mode(ln, dn)
    if not gs_shape:
        raise TypeError(f"{_NAME} requires group_sizes of rank >= 1, got a scalar")
    groups = gs_shape[-1]
    prefix = _prefix_dims(mode, ln, r, lb, lc)
    if len(gs_shape) > 1 and gs_shape != tuple(lhs_shape[d] for d in prefix) + (groups,):
        raise TypeError(f"{_NAME} expected group_sizes of shape {(groups,)} or "
                        f"{tuple(lhs_shape[d] for d in prefix) + (groups,)} (lhs {lhs_shape}), "
                        f"got {gs_shape}")
    grp = dn.rhs_group_dimensions
    if mode is _Mode.NONCONTRACTING:
        if len(grp) != 1:
            raise TypeError(f"{_NAME} requires exactly one rhs group dimension when the lhs "
                            f"ragged dimension is non-contracting, got {grp}")
        check_dims(_NAME, "rhs", grp, rn, "group")
        if grp[0] in rc or grp[0] in rb:
            raise TypeError(f"{_NAME} requires the rhs group dimension to be neither a "
                            f"contracting nor a batch dimension, got {grp[0]}")
        if rhs_shape[grp[0]] != groups:
            raise TypeError(f"{_NAME} expected the rhs group dimension to have size {groups} "
                            f"(group_sizes {gs_shape}), got {rhs_shape[grp[0]]} (rhs {rhs_shape})")
    elif grp:
        raise TypeError(f"{_NAME} requires no rhs group dimension when the lhs ragged "
                        f"dimension is contracting or batch, got {grp}")
    lf = _remaining(ln, lc, lb)
    rf = _remaining(rn, rc, rb, grp)
    size = lambda shape, dims: prod(shape[d] for d in dims)  # noqa: E731
    out_shape = batch + tuple(lhs_shape[d] for d in lf) + tuple(rhs_shape[d] for d in rf)
    bp, kp, np_ = prod(batch), size(lhs_shape, lc), size(rhs_shape, rf)
    if mode is _Mode.NONCONTRACTING:  # lhs (B, X, M, F, K), rhs (G, B, K, N)
        i = lf.index(r)
        xs, fs = lf[:i], lf[i + 1:]
        xp_ = size(lhs_shape, xs)
        return _Plan(mode, out_shape, (*lb, *xs, r, *fs, *lc),
                     (bp, xp_, lhs_shape[r], size(lhs_shape, fs), kp), (*grp, *rb, *rc, *rf),
                     (groups, bp, kp, np_), (bp, xp_))
    if mode is _Mode.CONTRACTING:  # lhs (B, M, X, R, K'), rhs (B, X, R, K', N)
        j = list(lc).index(r)
        xs, ks = lc[:j], lc[j + 1:]
        xp_ = size(lhs_shape, xs)
        return _Plan(mode, (groups,) + out_shape, (*lb, *lf, *xs, r, *ks),
                     (bp, size(lhs_shape, lf), xp_, lhs_shape[r], size(lhs_shape, ks)),
                     (*rb, *rc, *rf), (bp, xp_, lhs_shape[r], size(lhs_shape, ks), np_),
                     (bp, xp_))
    return _Plan(mode, out_shape, (), (), (), (), (1, 1))


def _abstract_eval(lhs: ShapedArray, rhs: ShapedArray, group_sizes: ShapedArray, *,
                   ragged_dot_dimension_numbers: RaggedDotDimensionNumbers, precision: Any,
                   preferred_element_type: np.dtype | None) -> ShapedArray:
    if not dtypes.is_integer(group_sizes.dtype):
        raise TypeError(f"{_NAME} requires group_sizes of an integer dtype, got "
                        f"{group_sizes.dtype.name}")
    plan = _plan(tuple(lhs.shape), tuple(rhs.shape), tuple(group_sizes.shape),
                 ragged_dot_dimension_numbers)
    dt = dot_result_dtype(lhs.dtype, rhs.dtype, preferred_element_type, _NAME,
                          check_width=not is_algorithm(precision))
    weak = lhs.weak_type and rhs.weak_type and group_sizes.weak_type
    return ShapedArray(plan.out_shape, dt, weak)


# --------------------------------------------------------------------------- implementation

def _host(x: Any) -> np.ndarray:
    """``x`` (a NumPy or CuPy buffer) as a NumPy int64 array on the host."""
    return np.asarray(x if isinstance(x, (np.ndarray, np.generic)) else x.get(), np.int64)


def _segments(sizes: np.ndarray, length: int) -> tuple[list[tuple[int, int, int]], bool, int]:
    """The groups' ``(group, start, stop)`` row ranges, cut to ``[0, length)`` and empty
    ones dropped; whether two may overlap (a negative size); and, when none do, the end
    of the last (the rows from there on are in no group)."""
    ends = np.cumsum(sizes)
    starts = ends - sizes
    segs = [(i, max(int(s), 0), min(int(e), length)) for i, (s, e) in enumerate(zip(starts, ends))
            if min(int(e), length) > max(int(s), 0)]
    overlapping = bool((sizes < 0).any())
    covered = max(stop for _, _, stop in segs) if segs else 0
    return segs, overlapping, covered


def _noncontracting(xp: Any, a: Any, w: Any, out: Any, sizes: np.ndarray) -> None:
    """Mode 1 on one cell: ``a`` (B, X, M, F, K), ``w`` (G, B, K, N), ``out`` (B, X, M, F, N);
    one matmul per group, its rows a slice of ``a``."""
    b, x, m, f, k = a.shape
    n = w.shape[-1]
    segs, overlapping, covered = _segments(sizes, m)
    if overlapping:
        out[...] = 0
    elif covered < m:
        out[:, :, covered:] = 0
    for i, start, stop in segs:
        rows = a[:, :, start:stop]
        rows = rows[:, 0, :, 0] if x == f == 1 else rows.reshape(b, -1, k)
        res = xp.matmul(rows, w[i]).reshape(b, x, stop - start, f, n)
        if overlapping:
            out[:, :, start:stop] += res
        else:
            out[:, :, start:stop] = res


def _contracting(xp: Any, a: Any, w: Any, out: Any, sizes: np.ndarray, add: bool) -> None:
    """Mode 2 on one cell, written to ``out`` (added with ``add``: the cells of a prefix
    each contract part of the sum): ``a`` (B, M, X, R, K), ``w`` (B, X, R, K, N), ``out``
    (G, B, M, N); group ``i`` contracts its run of R (with all of X and K)."""
    b, m = a.shape[:2]
    n = w.shape[-1]
    for i, start, stop in _segments(sizes, a.shape[3])[0]:
        lhs = a[:, :, :, start:stop].reshape(b, m, -1)
        rhs = w[:, :, start:stop].reshape(b, -1, n)
        if add:
            out[i] += xp.matmul(lhs, rhs)
        elif b == 1:
            xp.matmul(lhs[0], rhs[0], out=out[i, 0])
        else:
            xp.matmul(lhs, rhs, out=out[i])


def _impl(xp: Any, lhs: Any, rhs: Any, group_sizes: Any, *,
          ragged_dot_dimension_numbers: RaggedDotDimensionNumbers, precision: Any,
          preferred_element_type: np.dtype | None) -> Any:
    """Operands permuted and viewed in a canonical layout, then one matmul per group (per
    prefix position when ``group_sizes`` has a prefix); 16-bit floats computed in float32
    and rounded once, as ``dot_general`` does."""
    dn = ragged_dot_dimension_numbers
    if uses_algorithm(precision):
        return run_algorithm(xp, precision, lhs, rhs, preferred_element_type,
                             lambda a, w, acc: _impl(xp, a, w, group_sizes,
                                                     ragged_dot_dimension_numbers=dn,
                                                     precision=None, preferred_element_type=acc),
                             _NAME)
    plan = _plan(lhs.shape, rhs.shape, group_sizes.shape, dn)
    if plan.mode is _Mode.BATCH:
        return dot_general_p.impl(xp, lhs, rhs, dimension_numbers=dn.dot_dimension_numbers,
                                  precision=precision,
                                  preferred_element_type=preferred_element_type)
    out_dtype = dot_result_dtype(lhs.dtype, rhs.dtype, preferred_element_type, _NAME)
    compute = compute_dtype(lhs.dtype, rhs.dtype, out_dtype)
    sizes = _host(group_sizes)
    lhs, rhs = lhs.astype(compute, copy=False), rhs.astype(compute, copy=False)
    a = lhs.transpose(plan.lhs_perm).reshape(plan.lhs_view)
    w = rhs.transpose(plan.rhs_perm).reshape(plan.rhs_view)
    bp, xp_ = plan.cells
    if (plan.mode is _Mode.NONCONTRACTING and sizes.ndim == 1 and bp == xp_ == 1
            and plan.lhs_view[3] == 1 and not (sizes < 0).any()):
        # ragged_dot and its lhs cotangent: matmul writes each group's rows in place
        m, n = plan.lhs_view[2], plan.rhs_view[-1]
        out = xp.empty((m, n), compute)
        segs, _, covered = _segments(sizes, m)
        out[covered:] = 0
        for i, start, stop in segs:
            xp.matmul(a[0, 0, start:stop, 0], w[i, 0], out=out[start:stop])
        return as_result(xp, out.reshape(plan.out_shape), out_dtype)
    if plan.mode is _Mode.NONCONTRACTING:
        out = xp.empty(plan.lhs_view[:-1] + plan.rhs_view[-1:], compute)
        if sizes.ndim == 1:
            _noncontracting(xp, a, w, out, sizes)
        else:
            sizes = sizes.reshape(bp, xp_, -1)
            for b, x in np.ndindex(bp, xp_):
                _noncontracting(xp, a[b:b + 1, x:x + 1], w[:, b:b + 1], out[b:b + 1, x:x + 1],
                                sizes[b, x])
    else:
        out = xp.zeros((plan.out_shape[0], bp, plan.lhs_view[1], plan.rhs_view[-1]), compute)
        if sizes.ndim == 1:
            _contracting(xp, a, w, out, sizes, add=False)
        else:
            sizes = sizes.reshape(bp, xp_, -1)
            for b, x in np.ndindex(bp, xp_):
                _contracting(xp, a[b:b + 1, :, x:x + 1], w[b:b + 1, x:x + 1], out[:, b:b + 1],
                             sizes[b, x], add=True)
    return as_result(xp, out.reshape(plan.out_shape), out_dtype)


# --------------------------------------------------------------------------- JVP and transposes

def _bind(lhs: Any, rhs: Any, group_sizes: Any, dn: RaggedDotDimensionNumbers,
          precision: Any, preferred_element_type: np.dtype | None) -> Any:
    return ragged_dot_general_p.bind(lhs, rhs, group_sizes, ragged_dot_dimension_numbers=dn,
                                     precision=precision,
                                     preferred_element_type=preferred_element_type)


def _jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> tuple[Any, Any]:
    """Bilinear in ``lhs`` and ``rhs``; ``group_sizes`` (integers) has no tangent."""
    x, y, gs = primals
    tx, ty, _ = tangents
    out = ragged_dot_general_p.bind(x, y, gs, **params)
    t_out = ad.Zero.from_primal(out)
    if type(tx) is not ad.Zero:
        t_out = ad.add_tangents(t_out, ragged_dot_general_p.bind(tx, y, gs, **params))
    if type(ty) is not ad.Zero:
        t_out = ad.add_tangents(t_out, ragged_dot_general_p.bind(x, ty, gs, **params))
    return out, t_out


def _ranges(*lengths: int) -> list[tuple[int, ...]]:
    """Consecutive ranges of the given lengths: the dimensions of a product's result."""
    out, start = [], 0
    for n in lengths:
        out.append(tuple(range(start, start + n)))
        start += n
    return out


def _to_operand(res: Any, unsorted: Sequence[int], aval: ShapedArray) -> Any:
    """A product whose dimensions are the operand's ``unsorted`` ones, in the operand's
    layout and dtype."""
    res = transpose(res, tuple(int(i) for i in np.argsort(unsorted)))
    if core.get_aval(res).dtype != aval.dtype:
        res = convert_element_type(res, aval.dtype, aval.weak_type)
    return res


def _transpose_rule(ct: Any, x: Any, y: Any, gs: Any, *,
                    ragged_dot_dimension_numbers: RaggedDotDimensionNumbers, precision: Any,
                    preferred_element_type: np.dtype | None) -> list[Any]:
    """The cotangent of the undefined operand, itself a ``ragged_dot_general`` of the
    cotangent and the other operand (as ``dot_general``'s transposes, with the mode that
    keeps each group's rows apart)."""
    dn = ragged_dot_dimension_numbers
    x_aval = x.aval if ad.is_undefined(x) else core.get_aval(x)
    y_aval = y.aval if ad.is_undefined(y) else core.get_aval(y)
    (xc, yc), (xb, yb) = dn.dot_dimension_numbers
    xc, yc, xb, yb = map(list, (xc, yc, xb, yb))
    grp = list(dn.rhs_group_dimensions)
    mode, r = _mode(x_aval.ndim, dn)
    x_kept = _remaining(x_aval.ndim, xc, xb)
    y_kept = _remaining(y_aval.ndim, yc, yb, grp)
    nb = len(xb)

    def prod_(a: Any, b: Any, d: RaggedDotDimensionNumbers) -> Any:
        return _bind(a, b, gs, d, precision, preferred_element_type)
    ct_x = ct_y = None
    if mode is _Mode.CONTRACTING:
        # ct is (g, batch, x_kept, y_kept); both cotangents are mode 1 products in which the
        # other operand, its batch and contracting dimensions first (contracting ones in
        # listed order, so a [*prefix, g] group_sizes still lines up), has the ragged rows.
        j, nc = xc.index(r), len(xc)
        ct_batch, ct_xk, ct_yk = _ranges(1 + nb, len(x_kept), len(y_kept))
        ct_batch = ct_batch[1:]
        if ad.is_undefined(x):
            other = transpose(y, (*yb, *yc, *y_kept))
            dims = RaggedDotDimensionNumbers(
                ((tuple(range(nb + nc, y_aval.ndim)), ct_yk), (tuple(range(nb)), ct_batch)),
                (nb + j,), (0,))
            ct_x = _to_operand(prod_(other, ct, dims), xb + xc + x_kept, x_aval)
        if ad.is_undefined(y):
            other = transpose(x, (*xb, *xc, *x_kept))
            dims = RaggedDotDimensionNumbers(
                ((tuple(range(nb + nc, x_aval.ndim)), ct_xk), (tuple(range(nb)), ct_batch)),
                (nb + j,), (0,))
            ct_y = _to_operand(prod_(other, ct, dims), yb + yc + y_kept, y_aval)
        return [ct_x, ct_y, None]
    # modes 1 and 3: ct is (batch, x_kept, y_kept), as dot_general's result
    ans_batch, ans_x, ans_y = _ranges(nb, len(x_kept), len(y_kept))
    if ad.is_undefined(x):
        ragged = nb + x_kept.index(r) if mode is _Mode.NONCONTRACTING else xb.index(r)
        dims = RaggedDotDimensionNumbers(((ans_y, tuple(y_kept)), (ans_batch, tuple(yb))),
                                         (ragged,), tuple(grp))
        x_contract_by_y = [xc[i] for i in np.argsort(yc)]
        ct_x = _to_operand(prod_(ct, y, dims), xb + x_kept + x_contract_by_y, x_aval)
    if ad.is_undefined(y):
        # mode 1: the ragged rows are contracted with ct's (mode 2, one slab per group)
        dims = RaggedDotDimensionNumbers(((tuple(x_kept), ans_x), (tuple(xb), ans_batch)),
                                         (r,), ())
        y_contract_by_x = [yc[i] for i in np.argsort(xc)]
        ct_y = _to_operand(prod_(x, ct, dims), grp + yb + y_contract_by_x + y_kept, y_aval)
    return [ct_x, ct_y, None]


# --------------------------------------------------------------------------- batching

def _bump(dims: Sequence[int], b: int) -> tuple[int, ...]:
    return tuple(d + (d >= b) for d in dims)


def _batch_rule(axis_size: int, vals: Sequence[Any], dims: Sequence[int | None], *,
                ragged_dot_dimension_numbers: RaggedDotDimensionNumbers, precision: Any,
                preferred_element_type: np.dtype | None) -> tuple[Any, int]:
    """An operand batched alone: its batch dimension becomes a free one. Both, or the
    group sizes: a new leading batch dimension (mode 1 with shared weights keeps them
    shared: the lhs batch becomes a free dimension the group sizes span)."""
    lhs, rhs, gs = vals
    lbd, rbd, gbd = dims
    dn = ragged_dot_dimension_numbers
    (lc, rc), (lb, rb) = dn.dot_dimension_numbers
    (r,) = dn.lhs_ragged_dimensions
    grp = dn.rhs_group_dimensions
    lhs_ndim = core.get_aval(lhs).ndim - (lbd is not None)
    rhs_ndim = core.get_aval(rhs).ndim - (rbd is not None)
    lhs_shape = [s for i, s in enumerate(core.get_aval(lhs).shape) if i != lbd]
    mode, _ = _mode(lhs_ndim, dn)
    shift = int(mode is _Mode.CONTRACTING)  # mode 2's result leads with the groups
    gs_shape = tuple(s for i, s in enumerate(core.get_aval(gs).shape) if i != gbd)
    prefix = [lhs_shape[d] for d in _prefix_dims(mode, lhs_ndim, r, lb, lc)]
    bind = functools.partial(_bind, precision=precision,
                             preferred_element_type=preferred_element_type)
    if gbd is None and (lbd is None or rbd is None):
        if rbd is None:  # lhs batched: a free dimension, after the ragged one if it must be
            free = _remaining(lhs_ndim, lc, lb)
            if mode is _Mode.NONCONTRACTING and len(gs_shape) > 1 and lbd <= r:
                lhs, lbd = batching.moveaxis(lhs, lbd, lhs_ndim), lhs_ndim
            new = RaggedDotDimensionNumbers(((_bump(lc, lbd), rc), (_bump(lb, lbd), rb)),
                                            _bump((r,), lbd), grp)
            return bind(lhs, rhs, gs, new), shift + len(lb) + sum(d < lbd for d in free)
        free = _remaining(rhs_ndim, rc, rb, grp)  # rhs batched: a free dimension
        new = RaggedDotDimensionNumbers(((lc, _bump(rc, rbd)), (lb, _bump(rb, rbd))), (r,),
                                        _bump(grp, rbd))
        return bind(lhs, rhs, gs, new), shift + lhs_ndim - len(lc) + sum(d < rbd for d in free)
    groups = gs_shape[-1]
    up = lambda ds: tuple(d + 1 for d in ds)  # noqa: E731
    if gbd is not None and mode is _Mode.NONCONTRACTING and rbd is None:
        # shared weights stay shared: the batch of lhs is its first free dimension, which
        # the group sizes' prefix spans after the batch dimensions
        lhs = batching.bdim_at_front(lhs, lbd, axis_size)
        gs = batching.moveaxis(gs, gbd, 0)
        nb = len(lb)
        if len(gs_shape) == 1:
            target = (*prefix[:nb], axis_size, *prefix[nb:], groups)
            gs = broadcast_in_dim(gs, target, (nb, len(target) - 1))
        else:
            gs = batching.moveaxis(gs, 0, nb)
        new = RaggedDotDimensionNumbers(((up(lc), rc), (up(lb), rb)), up((r,)), grp)
        return bind(lhs, rhs, gs, new), nb
    # a new leading batch dimension of both operands, first in the group sizes' prefix
    lhs = batching.bdim_at_front(lhs, lbd, axis_size)
    rhs = batching.bdim_at_front(rhs, rbd, axis_size)
    if gbd is not None or len(gs_shape) > 1:
        gs = batching.bdim_at_front(gs, gbd, axis_size)  # (B, *gs_shape)
        if len(gs_shape) == 1 and prefix:
            target = (axis_size, *prefix, groups)
            gs = broadcast_in_dim(gs, target, (0, len(target) - 1))
    new = RaggedDotDimensionNumbers(((up(lc), up(rc)), ((0, *up(lb)), (0, *up(rb)))),
                                    up((r,)), up(grp))
    return bind(lhs, rhs, gs, new), shift


ragged_dot_general_p = Primitive("ragged_dot_general")
ragged_dot_general_p.def_impl(_impl)
ragged_dot_general_p.def_abstract_eval(_abstract_eval)
ad.def_jvp(ragged_dot_general_p, _jvp)
ad.def_transpose(ragged_dot_general_p, _transpose_rule)
batching.def_batch(ragged_dot_general_p, _batch_rule)
lowering.def_compiler_traits(ragged_dot_general_p, threaded=True)  # BLAS threads each matmul


# --------------------------------------------------------------------------- wrappers

def _dimension_numbers(dn: Any) -> RaggedDotDimensionNumbers:
    """``dn`` as fungrad's ``RaggedDotDimensionNumbers`` (jax's are accepted too)."""
    if isinstance(dn, RaggedDotDimensionNumbers):
        return dn
    try:
        return RaggedDotDimensionNumbers(dn.dot_dimension_numbers, dn.lhs_ragged_dimensions,
                                         dn.rhs_group_dimensions)
    except AttributeError:
        raise TypeError(f"{_NAME}: ragged_dot_dimension_numbers must be a "
                        f"RaggedDotDimensionNumbers, got {dn!r}") from None


def _params(name: str, precision: Any, preferred_element_type: Any,
            group_offset: Any) -> tuple[Any, np.dtype | None]:
    if group_offset is not None:
        raise NotImplementedError(f"{name}: group_offset is not supported (jax's ragged_dot "
                                  "rules do not implement it either)")
    try:
        precision = canonicalize_precision(precision)
    except ValueError:
        raise ValueError(f"{name}: invalid precision {precision!r}; expected None, a "
                         "lax.Precision, a string such as 'highest', a pair of them, a "
                         "lax.DotAlgorithmPreset or its name, or a lax.DotAlgorithm") from None
    preferred = (None if preferred_element_type is None
                 else dtypes.canonicalize_dtype(preferred_element_type))
    return precision, preferred


def ragged_dot_general(lhs: Any, rhs: Any, group_sizes: Any,
                       ragged_dot_dimension_numbers: RaggedDotDimensionNumbers,
                       precision: Any = None, preferred_element_type: Any = None,
                       group_offset: Any = None, out_sharding: Any = None) -> Any:
    """A ``dot_general`` whose lhs has one dimension split into groups
    (``jax.lax.ragged_dot_general``).

    ``ragged_dot_dimension_numbers`` holds the ``dot_general`` dimension numbers, the lhs
    ragged dimension and the rhs group dimension. The ragged dimension is either a free
    lhs dimension (each group of rows is multiplied by its own slice of ``rhs`` along the
    group dimension, as ``ragged_dot``), a contracting one (the result gains a leading
    dimension of size ``g``: group ``i`` contracts its own run only) or a batch one (the
    result is ``dot_general``'s). ``group_sizes`` holds integers, of shape ``[g]`` or with
    a prefix of batch dimensions and the lhs dimensions before the ragged one (see the
    module docstring). The result's dtype is ``dot_general``'s: the wider operand type, or
    ``preferred_element_type``. Operands are not promoted to a common dtype, as in JAX.
    ``out_sharding`` puts the result on a device (see ``fungrad.lax._placement``; None
    leaves it where the operation runs).
    """
    precision, preferred = _params(_NAME, precision, preferred_element_type, group_offset)
    dn = _dimension_numbers(ragged_dot_dimension_numbers)
    out = _bind(as_operand(lhs), as_operand(rhs), as_operand(group_sizes), dn, precision,
                preferred)
    if out_sharding is None:
        return out
    return with_out_sharding(out, out_sharding, "lax.ragged_dot_general")


def ragged_dot(lhs: Any, rhs: Any, group_sizes: Any, precision: Any = None,
               preferred_element_type: Any = None, group_offset: Any = None,
               out_sharding: Any = None) -> Any:
    """Grouped matrix product (``jax.lax.ragged_dot``), as mixture-of-experts layers use.

    ``lhs`` is ``[m, k]``, ``rhs`` is ``[g, k, n]`` and ``group_sizes`` is ``[g]`` integers:
    the first ``group_sizes[0]`` rows of ``lhs`` are multiplied by ``rhs[0]``, the next
    ``group_sizes[1]`` by ``rhs[1]``, and so on; rows past the sum of the sizes give zeros.
    Returns ``[m, n]`` of ``dot_general``'s dtype (``preferred_element_type`` if given, e.g.
    float32 for bfloat16 operands). It costs one ``[m, k] @ [k, n]`` product, never a
    dense ``[g, m, k]`` or ``[m, k, n]`` intermediate. Differentiable in ``lhs`` and
    ``rhs``; batches under ``vmap`` over any of the three arguments. ``out_sharding`` puts
    the result on a device, as in ``ragged_dot_general``.
    """
    precision, preferred = _params("ragged_dot", precision, preferred_element_type, group_offset)
    lhs, rhs, group_sizes = as_operand(lhs), as_operand(rhs), as_operand(group_sizes)
    ls, rs, gs = (core.get_aval(v).shape for v in (lhs, rhs, group_sizes))
    if len(ls) != 2 or len(rs) != 3 or len(gs) != 1:
        raise TypeError("ragged_dot: expected lhs of shape [m, k], rhs of shape [g, k, n] and "
                        f"group_sizes of shape [g], got lhs {ls}, rhs {rs} and group_sizes {gs}"
                        " (ragged_dot_general takes other layouts)")
    if ls[1] != rs[1]:
        raise TypeError(f"ragged_dot: lhs's last dimension ({ls[1]}) must equal rhs's "
                        f"contracting dimension 1 ({rs[1]}); got lhs {ls} and rhs {rs}")
    if rs[0] != gs[0]:
        raise TypeError(f"ragged_dot: rhs has {rs[0]} groups (its dimension 0) but "
                        f"group_sizes has {gs[0]}; got rhs {rs} and group_sizes {gs}")
    if not dtypes.is_integer(core.get_aval(group_sizes).dtype):
        raise TypeError("ragged_dot: group_sizes must have an integer dtype, got "
                        f"{core.get_aval(group_sizes).dtype.name}")
    out = _bind(lhs, rhs, group_sizes, _BASIC, precision, preferred)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "lax.ragged_dot")


__all__ = ["RaggedDotDimensionNumbers", "ragged_dot", "ragged_dot_general",
           "ragged_dot_general_p"]
