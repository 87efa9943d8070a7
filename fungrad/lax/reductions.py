"""Reduction primitives: reduce_sum, reduce_prod, reduce_max, reduce_min,
reduce_and, reduce_or, reduce_xor, argmax, argmin.

``axes`` is a sorted tuple of non-negative ints; reduced dimensions are removed.
Sums and products of 16-bit floats accumulate in float32 (as XLA does on CPU)
and round once at the end. Reductions over empty axes give the identity
(0, 1, -inf / iinfo.min, +inf / iinfo.max, all-ones bits, 0), as in JAX.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np

from fungrad._core import core, dtypes, lowering, structural
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax import _signed_zeros
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import (ANY, INT_OR_BOOL, NUMERIC, as_operand, check_dtypes, kind,
                               public_op)
from fungrad.lax.elementwise import convert_to, div, eq, mul
from fungrad.lax.shapes import broadcast_in_dim, full, reshape, squeeze
from fungrad.lax.slicing import pad, slice_in_dim


def _axes(x: Any, axes: Sequence[int], name: str) -> tuple[int, ...]:
    ndim = core.get_aval(x).ndim
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    return _canonical_axes(tuple(int(a) for a in axes), ndim, name)


@functools.lru_cache(maxsize=1024)
def _canonical_axes(axes: tuple[int, ...], ndim: int, name: str) -> tuple[int, ...]:
    """Sorted, unique, non-negative axes (cached: the same few recur on every call)."""
    return tuple(sorted({canonicalize_axis(a, ndim, name) for a in axes}))


def _reduced_shape(shape: Sequence[int], axes: Sequence[int]) -> tuple[int, ...]:
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _reduce_abstract(name, kinds, keep_weak=True):
    def rule(x, *, axes):
        check_dtypes(name, [x], kinds)
        if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
            raise TypeError(f"{name}: axes {axes} invalid for an operand of shape {x.shape}")
        return ShapedArray(_reduced_shape(x.shape, axes), x.dtype, keep_weak and x.weak_type)
    return rule


def _reduce_batch(prim):
    def rule(axis_size, vals, dims, **params):
        d = dims[0]
        new_axes = tuple(a + (a >= d) for a in params.pop("axes"))
        out_dim = d - sum(a < d for a in new_axes)
        return prim.bind(vals[0], axes=new_axes, **params), out_dim
    return rule


def checked_impl(name: str, impl, kinds: str):
    """``impl`` refusing operand dtypes outside ``kinds`` (eager evaluation runs no shape
    rule; the error is then reported by the primitive's shape rule)."""
    accepted = dtypes.dtypes_where(lambda d: kind(d) in kinds)

    def run(xp, x, **params):
        if x.dtype not in accepted:
            raise TypeError(f"{name} does not accept dtype {x.dtype.name}")
        return impl(xp, x, **params)
    return run


def _reducer(name, impl, kinds, keep_weak=True, prim=None):
    """A reduction primitive with its impl, shape rule and batching rule (``prim``: one
    already declared, as ``reduce_sum_p`` is in ``fungrad/_core/structural.py``)."""
    prim = Primitive(name) if prim is None else prim
    prim.def_impl(checked_impl(name, impl, kinds))
    prim.def_abstract_eval(_reduce_abstract(name, kinds, keep_weak))
    if not keep_weak:
        prim.weak_type_rule = lambda weaks, **params: False
    batching.def_batch(prim, _reduce_batch(prim))
    return prim


_HALF_FLOATS = dtypes.half_floats


def _accumulating_impl(ufunc: str, method: str):
    """Sum or product over ``axes``, accumulating 16-bit floats in float32: NumPy's
    ``ufunc.reduce`` called directly (its array methods add a Python layer), other array
    modules' array method. NumPy sums that ``sum_as_matmul`` takes go through BLAS."""
    reduce = getattr(np, ufunc).reduce
    summing = ufunc == "add"

    def impl(xp, x, *, axes):
        if x.dtype in _HALF_FLOATS:
            return getattr(x, method)(axis=axes, dtype=np.float32).astype(x.dtype)
        if xp is np:
            total = sum_as_matmul(x, axes) if summing else None
            # a NumPy scalar for a full reduction
            return reduce(x, axis=axes, dtype=x.dtype) if total is None else total
        return getattr(x, method)(axis=axes, dtype=x.dtype)
    return impl


_MATMUL_SUMMED = (np.dtype(np.float32), np.dtype(np.float64))
# NumPy sums a contiguous run of up to 128 numbers in one loop of 8 accumulators, and longer
# runs pairwise: beyond this a matrix-vector product would be less accurate.
_PAIRWISE_BLOCK = 128


@functools.lru_cache(maxsize=256)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


def sum_as_matmul(x: np.ndarray, axes: tuple[int, ...], out: np.ndarray | None = None
                  ) -> np.ndarray | None:
    """The sum of a float32/float64 NumPy array over its leading or trailing ``axes`` as a
    product with a vector of ones (into ``out`` when given), or None where that does not apply.

    ``add.reduce`` calls its inner loop once per row, which dominates for the short rows of
    layer norms, softmaxes and bias gradients: BLAS's matrix-vector product is 3-10x faster
    there. It is at least as accurate: over leading axes NumPy adds row after row (the
    product's error is a third of that for 1024 rows), and trailing axes go this way only up
    to NumPy's pairwise block, where NumPy too adds in a plain unrolled loop.
    """
    ndim, k = x.ndim, len(axes)
    if x.dtype not in _MATMUL_SUMMED or not 0 < k < ndim or not x.flags.c_contiguous \
            or (out is not None and not out.flags.c_contiguous):
        return None
    shape = x.shape
    if axes == tuple(range(k)):
        n, rest = math.prod(shape[:k]), math.prod(shape[k:])
        ones, matrix, kept = _ones(n, x.dtype), x.reshape(n, rest), shape[k:]
        operands = (ones, matrix)
    elif axes == tuple(range(ndim - k, ndim)) and math.prod(shape[ndim - k:]) <= _PAIRWISE_BLOCK:
        n = math.prod(shape[ndim - k:])
        kept = shape[:ndim - k]
        operands = (x.reshape(math.prod(kept), n), _ones(n, x.dtype))
    else:
        return None
    if out is None:
        return np.matmul(*operands).reshape(kept)
    np.matmul(*operands, out=out.reshape(-1))
    return out


def _wrapper(prim, doc):
    def op(operand: Any, axes: Sequence[int]) -> Any:
        operand = as_operand(operand)
        return prim.bind(operand, axes=_axes(operand, axes, prim.name))
    return public_op(op, prim.name, doc, __name__)


# --------------------------------------------------------------------------- reduce_sum

def _reduce_sum_transpose(ct, x, *, axes):
    shape = x.aval.shape
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return [broadcast_in_dim(ct, shape, kept)]


reduce_sum_p = _reducer("reduce_sum", _accumulating_impl("add", "sum"), NUMERIC,
                        prim=structural.reduce_sum_p)
ad.deflinear(reduce_sum_p, _reduce_sum_transpose)
lowering.def_cuda_reducer(reduce_sum_p, "ADD", "0.f")


# Not ``_wrapper``'s: jax's reduce_sum alone of the reducers takes ``out_sharding``.
def reduce_sum(operand: Any, axes: Sequence[int], *, out_sharding: Any = None) -> Any:
    """Sum over ``axes`` (``jax.lax.reduce_sum``); ``out_sharding`` puts the result on a
    device (see ``fungrad.lax._placement``; None leaves it where the operation runs)."""
    operand = as_operand(operand)
    out = reduce_sum_p.bind(operand, axes=_axes(operand, axes, "reduce_sum"))
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "lax.reduce_sum")


# 16-bit floats accumulate in float32 in the impl; these need no special care.
_WIDE_INEXACT = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


def _matmul_sum(x: np.ndarray, axes: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
    """``sum_as_matmul`` where it applies, else ``add.reduce`` (the compiled NumPy sum)."""
    total = sum_as_matmul(x, axes, out)
    if total is not None:
        return total
    return np.add.reduce(x, axis=axes, dtype=x.dtype, out=out)


def _reduce_sum_lowering(ctx, eqn, args, out):
    # ``add.reduce`` is what ``sum`` calls, without its Python wrapper (~3 µs per call);
    # NumPy's real floats may go through BLAS (``sum_as_matmul``).
    out_arg = f", out={out}" if out else ""
    if ctx.xp is np and eqn.invars[0].aval.dtype in _MATMUL_SUMMED:
        return f"{ctx.const(_matmul_sum, 'sum')}({args[0]}, {eqn.params['axes']!r}{out_arg})"
    dt = ctx.const(eqn.outvars[0].aval.dtype, "dtype")
    return f"{ctx.const(ctx.xp.add.reduce, 'sum')}({args[0]}, axis={eqn.params['axes']!r}, " \
           f"dtype={dt}{out_arg})"


lowering.def_lowering(reduce_sum_p, _reduce_sum_lowering, fresh=True, out="separate",
                      when=lambda eqn: (eqn.invars[0].aval.dtype in _WIDE_INEXACT
                                        and bool(eqn.params["axes"])))


# --------------------------------------------------------------------------- reduce_prod

def _reduce_prod_tree(x: Any) -> Any:
    """Product over axis 0 by halving: each level multiplies the two halves.

    Written with primitives only, so its JVP is exact where some factors are
    zero (unlike ``prod / x``) and differentiable again.
    """
    while core.get_aval(x).shape[0] > 1:
        n = core.get_aval(x).shape[0]
        half = (n + 1) // 2
        first, second = slice_in_dim(x, 0, half), slice_in_dim(x, half, n)
        if n - half != half:
            config = [(0, 0, 0)] * core.get_aval(x).ndim
            config[0] = (0, 1, 0)
            second = pad(second, as_operand(1, core.get_aval(x).dtype), config)
        x = mul(first, second)
    return squeeze(x, (0,))


def _reduce_prod_jvp(primals, tangents, *, axes):
    (x,), (t,) = primals, tangents
    aval = core.get_aval(x)
    kept = tuple(i for i in range(aval.ndim) if i not in axes)
    n = int(np.prod([aval.shape[a] for a in axes], dtype=np.int64))
    if n == 0:
        out = reduce_prod_p.bind(x, axes=axes)
        return out, full(core.get_aval(out).shape, 0, aval.dtype)
    new_shape = (n,) + tuple(aval.shape[i] for i in kept)
    perm = tuple(axes) + kept
    flat_x, flat_t = reshape(x, new_shape, perm), reshape(ad.instantiate(t), new_shape, perm)
    (out,), (t_out,) = ad.jvp_fun(lambda x: [_reduce_prod_tree(x)], (flat_x,), (flat_t,))
    return out, t_out


reduce_prod_p = _reducer("reduce_prod", _accumulating_impl("multiply", "prod"), NUMERIC)
ad.def_jvp(reduce_prod_p, _reduce_prod_jvp)
reduce_prod = _wrapper(reduce_prod_p, "Product over ``axes`` (``jax.lax.reduce_prod``).")


# --------------------------------------------------------------------------- reduce_max / min

def _last_axis_chooser(ufunc: str) -> Any:
    """NumPy's ``maximum.reduce`` or ``minimum.reduce`` (``ufunc``), called as
    ``reduce(x, axis=axes, out=None)``, finding the extremes of many short last-axis rows by
    their ``argmax``/``argmin`` instead.

    ``maximum.reduce`` calls its inner loop once per row: over the 64-long rows of an
    attention's scores (16 x 4 x 64 x 64 float32) it takes 270 µs inside a GPT train step,
    ``argmax`` and gathering the found elements 185 µs (in a loop of their own: 245 and
    70 µs). NaN still wins: ``argmax`` finds the first NaN. Zeros are left to
    ``fix_reduced_zeros``, as for ``reduce``.
    """
    reduce = getattr(np, ufunc).reduce
    arg = np.argmax if ufunc == "maximum" else np.argmin

    def run(x: np.ndarray, axis: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
        rows = x.size // x.shape[-1] if x.ndim > 1 and x.shape[-1] else 0
        if axis != (x.ndim - 1,) or rows < _MANY_ROWS or x.shape[-1] > _SHORT_ROW \
                or x.dtype.kind not in "biuf":
            return reduce(x, axis=axis) if out is None else reduce(x, axis=axis, out=out)
        where = arg(x, axis=-1)
        if x.flags.c_contiguous:  # flat indices: cheaper than take_along_axis's index grid
            where += _row_starts(where.shape, x.shape[-1])
            found = x.reshape(-1)[where]
        else:
            found = np.take_along_axis(x, where[..., None], axis=-1)[..., 0]
        if out is None:
            return found
        np.copyto(out, found)
        return out
    return run


@functools.lru_cache(maxsize=64)
def _row_starts(shape: tuple[int, ...], n: int) -> np.ndarray:
    """The flat index of each row's first element in a C-contiguous array of rows of ``n``."""
    starts = np.arange(0, math.prod(shape) * n, n).reshape(shape)
    starts.flags.writeable = False
    return starts


# Where argmax beats maximum.reduce over the last axis (measured: 16 x 64 and 8 x 100,000
# lose, 64 x 64 to 4096 x 64 and 1000 x 1000 win).
_MANY_ROWS, _SHORT_ROW = 64, 8192


def _chooser_impl(reduce_name: str, ufunc: str, largest_identity: bool):
    """Max or min over ``axes`` (NaN propagates, zeros signed as in JAX); empty axes give
    the identity."""
    reduce = _last_axis_chooser(ufunc)
    is_max = reduce_name == "max"

    def impl(xp, x, *, axes):
        if any(x.shape[a] == 0 for a in axes):
            return xp.full(_reduced_shape(x.shape, axes), dtypes.extreme(x.dtype, largest_identity),
                           x.dtype)
        result = reduce(x, axis=axes) if xp is np else getattr(x, reduce_name)(axis=axes)
        return _signed_zeros.fix_reduced_zeros(xp, result, x, is_max,
                                               lambda mask: xp.any(mask, axis=axes))
    return impl


def _reduce_chooser_jvp(t, out, x, *, axes):
    """Ties share the tangent evenly (the mean of the tangents at the extremes), as in JAX."""
    shape = core.get_aval(x).shape
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    location = convert_to(eq(x, broadcast_in_dim(out, shape, kept)), t)
    counts = reduce_sum(location, axes)
    return div(reduce_sum(mul(t, location), axes), counts)


reduce_max_p = _reducer("reduce_max", _chooser_impl("max", "maximum", False), ANY)
ad.defjvp2(reduce_max_p, _reduce_chooser_jvp)
reduce_max = _wrapper(reduce_max_p, "Maximum over ``axes`` (``jax.lax.reduce_max``).")
lowering.def_cuda_reducer(reduce_max_p, "fg_max", "-__int_as_float(0x7f800000)")  # NaN wins


def _reduce_max_lowering(ctx, eqn, args, out):
    """``maximum.reduce`` (what ``max`` calls: NaN propagates), zeros signed as in JAX."""
    reduce = _last_axis_chooser("maximum") if ctx.xp is np else ctx.xp.maximum.reduce
    fn = ctx.const(functools.partial(_signed_zeros.reduced_extremum, ctx.xp, reduce, is_max=True),
                   "amax")
    return f"{fn}({args[0]}, {eqn.params['axes']!r}{', out=' + out if out else ''})"


lowering.def_lowering(reduce_max_p, _reduce_max_lowering, fresh=True, out="separate",
                      when=lambda eqn: (eqn.invars[0].aval.dtype.kind == "f"
                                        and bool(eqn.params["axes"])
                                        and eqn.invars[0].aval.size > 0))

reduce_min_p = _reducer("reduce_min", _chooser_impl("min", "minimum", True), ANY)
ad.defjvp2(reduce_min_p, _reduce_chooser_jvp)
reduce_min = _wrapper(reduce_min_p, "Minimum over ``axes`` (``jax.lax.reduce_min``).")
lowering.def_cuda_reducer(reduce_min_p, "fg_min", "__int_as_float(0x7f800000)")  # NaN wins


# --------------------------------------------------------------------------- and / or / xor

def _logical_impl(bool_reduce: str, ufunc: str):
    """Booleans reduce logically; integers reduce bitwise (as XLA's and/or/xor)."""
    def impl(xp, x, *, axes):
        if x.dtype == np.bool_ and bool_reduce != "xor":
            return xp.asarray(getattr(xp, bool_reduce)(x, axis=axes))
        if x.dtype == np.bool_:
            return xp.asarray(xp.sum(x, axis=axes, dtype=np.int32) % 2 == 1)
        if not axes:
            return x
        if any(x.shape[a] == 0 for a in axes):  # the identity: all bits set for AND, else 0
            identity = ~x.dtype.type(0) if ufunc == "bitwise_and" else x.dtype.type(0)
            return xp.full(_reduced_shape(x.shape, axes), identity, x.dtype)
        if xp is np:
            return xp.asarray(getattr(xp, ufunc).reduce(x, axis=axes, dtype=x.dtype))
        return _halving_reduce(xp, getattr(xp, ufunc), x, axes)
    return impl


def _halving_reduce(xp, combine, x, axes):
    """Reduce ``axes`` (non-empty) with an associative ``combine`` for array modules whose
    ufuncs have no ``reduce`` (CuPy's bitwise ones): combine halves, log2(n) steps."""
    kept = [i for i in range(x.ndim) if i not in axes]
    x = xp.transpose(x, (*axes, *kept))
    x = x.reshape(-1, *x.shape[len(axes):])
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        rest = x[2 * half:]
        x = combine(x[:half], x[half:2 * half])
        x = xp.concatenate([x, rest]) if rest.shape[0] else x
    return x[0]


reduce_and_p = _reducer("reduce_and", _logical_impl("all", "bitwise_and"), INT_OR_BOOL, False)
reduce_or_p = _reducer("reduce_or", _logical_impl("any", "bitwise_or"), INT_OR_BOOL, False)
reduce_xor_p = _reducer("reduce_xor", _logical_impl("xor", "bitwise_xor"), INT_OR_BOOL, False)
for _p in (reduce_and_p, reduce_or_p, reduce_xor_p):
    ad.def_nondiff(_p)
reduce_and = _wrapper(reduce_and_p, "Logical (bool) or bitwise (int) AND over ``axes``.")
reduce_or = _wrapper(reduce_or_p, "Logical (bool) or bitwise (int) OR over ``axes``.")
reduce_xor = _wrapper(reduce_xor_p, "Logical (bool) or bitwise (int) XOR over ``axes``.")


# --------------------------------------------------------------------------- argmax / argmin

def _argminmax_abstract(name):
    def rule(x, *, axes, index_dtype):
        check_dtypes(name, [x], ANY)
        (axis,) = axes
        if not 0 <= axis < x.ndim:
            raise ValueError(f"{name}: invalid axis {axis} for operand shape {x.shape}")
        if x.shape[axis] < 1:
            raise ValueError(f"{name} requires a non-empty reduced dimension: operand shape "
                             f"{x.shape}, axis={axis}")
        if not dtypes.is_integer(index_dtype):
            raise TypeError(f"{name}: index_dtype must be an integer type, got {index_dtype}")
        return ShapedArray(_reduced_shape(x.shape, axes), index_dtype, False)
    return rule


def _argminmax(name: str):
    """First occurrence of the extreme; a NaN counts as the extreme (first NaN wins)."""
    def impl(xp, x, *, axes, index_dtype):
        if x.shape[axes[0]] == 0:
            raise ValueError(f"{name} of an empty dimension")
        if x.dtype in dtypes.ml_floats:
            x = x.astype(np.float32)
        return xp.asarray(getattr(xp, name)(x, axis=axes[0])).astype(index_dtype)
    prim = Primitive(name)
    prim.def_impl(impl)
    prim.def_abstract_eval(_argminmax_abstract(name))
    prim.weak_type_rule = lambda weaks, **params: False
    ad.def_nondiff(prim)
    batching.def_batch(prim, _reduce_batch(prim))

    def op(operand: Any, axis: int, index_dtype: Any) -> Any:
        operand = as_operand(operand)
        aval = core.get_aval(operand)
        axis = canonicalize_axis(axis, aval.ndim, name)
        index_dtype = dtypes.canonicalize_dtype(index_dtype)
        if not dtypes.is_integer(index_dtype):
            raise TypeError(f"{name}: index_dtype must be an integer type, got {index_dtype}")
        return prim.bind(operand, axes=(axis,), index_dtype=index_dtype)
    doc = (f"Index of the {'largest' if name == 'argmax' else 'smallest'} element along "
           f"``axis`` (``jax.lax.{name}``): the first one on ties; NaN counts as the extreme, "
           "so the first NaN wins.")
    return prim, public_op(op, name, doc, __name__)


argmax_p, argmax = _argminmax("argmax")
argmin_p, argmin = _argminmax("argmin")


__all__ = ['reduce_sum', 'reduce_sum_p', 'reduce_prod', 'reduce_prod_p', 'reduce_max',
           'reduce_max_p', 'reduce_min', 'reduce_min_p', 'reduce_and', 'reduce_and_p',
           'reduce_or', 'reduce_or_p', 'reduce_xor', 'reduce_xor_p', 'argmax', 'argmax_p',
           'argmin', 'argmin_p']
