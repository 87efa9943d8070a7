"""Shape primitives: broadcast_in_dim, reshape, transpose, squeeze, rev,
convert_element_type, iota, bitcast_convert_type, and the composites broadcast,
expand_dims, collapse, full, full_like (``pad`` and ``concatenate``, whose transposes
slice, are in ``slicing``). Each block holds
the primitive with its implementation, shape rule, JVP/transpose and batching
rule. Wrappers validate their arguments with the shape rule, so eager calls
raise the same clear errors as traced ones."""
from __future__ import annotations

import builtins
import functools
from typing import Any, Sequence

import numpy as np

from fungrad._core import core, dtypes, fpstate, lowering
from fungrad._core.array import Array
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.structural import broadcast_in_dim_p, reduce_sum_p, reshape_p, transpose_p
from fungrad._core.util import canonicalize_axis, prod
from fungrad.interpreters import ad, batching
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import (NUMERIC, as_operand, check_nbytes, hashable_shape, kind,
                               static_ints)
from fungrad.lax._prim import broadcast_shapes as _broadcast_shapes


# --------------------------------------------------------------------------- broadcast_in_dim

def broadcast_in_dim(operand: Any, shape: Sequence[int], broadcast_dimensions: Sequence[int],
                     *, out_sharding: Any = None) -> Any:
    """Broadcast ``operand`` to ``shape``; operand dim i becomes output dim
    ``broadcast_dimensions[i]``. ``out_sharding``: the device for the result (see
    ``fungrad.lax._placement``; None leaves it where the operation runs)."""
    operand = as_operand(operand)
    shape = hashable_shape(shape, "broadcast_in_dim")
    dims = static_ints(broadcast_dimensions, "broadcast_in_dim", "broadcast_dimensions")
    out = operand
    if core.get_aval(operand).shape != shape or dims != tuple(range(len(shape))):
        out = broadcast_in_dim_p.bind(operand, shape=shape, broadcast_dimensions=dims)
    if out_sharding is None:
        return out
    return with_out_sharding(out, out_sharding, "lax.broadcast_in_dim")


def broadcast(operand: Any, sizes: Sequence[int], *, out_sharding: Any = None) -> Any:
    """Add leading dimensions of the given ``sizes`` (``lax.broadcast``); ``out_sharding``
    puts the result on a device, as in ``broadcast_in_dim``."""
    aval = core.get_aval(operand)
    sizes = tuple(sizes)
    out = broadcast_in_dim(operand, sizes + aval.shape,
                           tuple(range(len(sizes), len(sizes) + aval.ndim)))
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "lax.broadcast")


def _broadcast_in_dim_impl(xp, x, *, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    check_nbytes("broadcast_in_dim", shape, x.dtype)
    return xp.broadcast_to(x.reshape(expanded), shape)


def _broadcast_in_dim_abstract(x, *, shape, broadcast_dimensions):
    if len(broadcast_dimensions) != x.ndim or any(
            not 0 <= d < len(shape) for d in broadcast_dimensions) or \
            list(broadcast_dimensions) != sorted(set(broadcast_dimensions)):
        raise TypeError(f"broadcast_in_dim: broadcast_dimensions {broadcast_dimensions} invalid "
                        f"for operand {x.str_short()} and shape {shape}")
    for i, d in enumerate(broadcast_dimensions):
        if x.shape[i] not in (1, shape[d]):
            raise TypeError(f"broadcast_in_dim: operand {x.str_short()} cannot be broadcast to "
                            f"{shape} (dim {i} of size {x.shape[i]} -> {shape[d]})")
    return ShapedArray(shape, x.dtype, x.weak_type)


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    new_dims = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    stretched = tuple(d for i, d in enumerate(broadcast_dimensions)
                      if x.aval.shape[i] == 1 and shape[d] != 1)
    axes = tuple(sorted(new_dims + stretched))
    summed = reduce_sum_p.bind(ct, axes=axes) if axes else ct
    return [reshape(summed, x.aval.shape)]


def _broadcast_in_dim_batch(axis_size, vals, dims, *, shape, broadcast_dimensions):
    x = batching.moveaxis(vals[0], dims[0], 0)
    new_shape = (axis_size,) + shape
    new_dims = (0,) + tuple(d + 1 for d in broadcast_dimensions)
    return broadcast_in_dim_p.bind(x, shape=new_shape, broadcast_dimensions=new_dims), 0


# broadcast_in_dim_p is declared in fungrad/_core/structural.py (the interpreters emit it).
broadcast_in_dim_p.def_impl(_broadcast_in_dim_impl)
broadcast_in_dim_p.def_abstract_eval(_broadcast_in_dim_abstract)
ad.deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)
batching.def_batch(broadcast_in_dim_p, _broadcast_in_dim_batch)
lowering.def_compiler_traits(broadcast_in_dim_p, moves_elements=True)


# --------------------------------------------------------------------------- reshape

def reshape(operand: Any, new_sizes: Sequence[int], dimensions: Sequence[int] | None = None, *,
            out_sharding: Any = None) -> Any:
    """Reshape (row-major). ``dimensions`` optionally transposes first, as in ``lax.reshape``;
    ``out_sharding`` puts the result on a device, as in ``broadcast_in_dim``."""
    operand = as_operand(operand)
    new_sizes = hashable_shape(new_sizes, "reshape", "new_sizes")
    if dimensions is not None and tuple(dimensions) != tuple(range(len(dimensions))):
        operand = transpose(operand, tuple(dimensions))
    if core.get_aval(operand).shape != new_sizes:
        operand = reshape_p.bind(operand, new_sizes=new_sizes)
    if out_sharding is None:
        return operand
    return with_out_sharding(operand, out_sharding, "lax.reshape")


def _reshape_abstract(x, *, new_sizes):
    if prod(new_sizes) != x.size or any(d < 0 for d in new_sizes):
        raise TypeError(f"reshape: cannot reshape array of shape {x.shape} (size {x.size}) "
                        f"into shape {new_sizes}")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


def _reshape_batch(axis_size, vals, dims, *, new_sizes):
    x = batching.moveaxis(vals[0], dims[0], 0)
    return reshape_p.bind(x, new_sizes=(axis_size,) + new_sizes), 0


# reshape_p is declared in fungrad/_core/structural.py (the interpreters emit it).
reshape_p.def_impl(lambda xp, x, *, new_sizes: x.reshape(new_sizes))
reshape_p.def_abstract_eval(_reshape_abstract)
ad.deflinear(reshape_p, lambda ct, x, *, new_sizes: [reshape(ct, x.aval.shape)])
batching.def_batch(reshape_p, _reshape_batch)
lowering.def_compiler_traits(reshape_p, moves_elements=True)
lowering.def_lowering(reshape_p, lambda ctx, eqn, args, out: (  # a view, inline
    f"{args[0]}.reshape({eqn.params['new_sizes']!r})"), any_dtype=True)


# --------------------------------------------------------------------------- transpose

def transpose(operand: Any, permutation: Sequence[int]) -> Any:
    """Permute the dimensions of ``operand``."""
    operand = as_operand(operand)
    perm = tuple(int(p) for p in permutation)
    if perm == tuple(range(len(perm))):
        return operand
    return transpose_p.bind(operand, permutation=perm)


def _transpose_abstract(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise TypeError(f"transpose: permutation {permutation} is not a permutation of the "
                        f"dimensions of an operand of shape {x.shape}")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype, x.weak_type)


def _transpose_transpose(ct, x, *, permutation):
    return [transpose(ct, tuple(np.argsort(permutation)))]


def _transpose_batch(axis_size, vals, dims, *, permutation):
    d = dims[0]
    perm = (d,) + tuple(p + (p >= d) for p in permutation)
    return transpose_p.bind(vals[0], permutation=perm), 0


# transpose_p is declared in fungrad/_core/structural.py (the interpreters emit it).
transpose_p.def_impl(lambda xp, x, *, permutation: x.transpose(permutation))
transpose_p.def_abstract_eval(_transpose_abstract)
ad.deflinear(transpose_p, _transpose_transpose)
batching.def_batch(transpose_p, _transpose_batch)
lowering.def_compiler_traits(transpose_p, moves_elements=True)
lowering.def_lowering(transpose_p, lambda ctx, eqn, args, out: (
    f"{args[0]}.transpose({eqn.params['permutation']!r})"), any_dtype=True)


# --------------------------------------------------------------------------- squeeze / expand_dims

def squeeze(array: Any, dimensions: Sequence[int]) -> Any:
    """Remove the given size-1 dimensions."""
    array = as_operand(array)
    ndim = core.get_aval(array).ndim
    dims = tuple(sorted(canonicalize_axis(d, ndim, "squeeze") for d in dimensions))
    return squeeze_p.bind(array, dimensions=dims) if dims else array


def _squeeze_abstract(x, *, dimensions):
    for d in dimensions:
        if x.shape[d] != 1:
            raise TypeError(f"squeeze: dimension {d} of an array of shape {x.shape} has size "
                            f"{x.shape[d]}, not 1")
    return ShapedArray(tuple(s for i, s in enumerate(x.shape) if i not in dimensions),
                       x.dtype, x.weak_type)


def _squeeze_batch(axis_size, vals, dims, *, dimensions):
    x = batching.moveaxis(vals[0], dims[0], 0)
    return squeeze_p.bind(x, dimensions=tuple(d + 1 for d in dimensions)), 0


squeeze_p = Primitive("squeeze")
squeeze_p.def_impl(lambda xp, x, *, dimensions: x.squeeze(axis=dimensions))
squeeze_p.def_abstract_eval(_squeeze_abstract)
ad.deflinear(squeeze_p, lambda ct, x, *, dimensions: [reshape(ct, x.aval.shape)])
batching.def_batch(squeeze_p, _squeeze_batch)
lowering.def_compiler_traits(squeeze_p, moves_elements=True)
lowering.def_lowering(squeeze_p, lambda ctx, eqn, args, out: (
    f"{args[0]}.reshape({eqn.outvars[0].aval.shape!r})"), any_dtype=True)


def expand_dims(array: Any, dimensions: Sequence[int]) -> Any:
    """Insert size-1 dimensions at the given positions (a reshape)."""
    array = as_operand(array)
    shape = list(core.get_aval(array).shape)
    ndim_out = len(shape) + len(dimensions)
    for d in sorted(canonicalize_axis(d, ndim_out, "expand_dims") for d in dimensions):
        shape.insert(d, 1)
    return reshape(array, tuple(shape))


# --------------------------------------------------------------------------- rev

def rev(operand: Any, dimensions: Sequence[int]) -> Any:
    """Reverse ``operand`` along ``dimensions``."""
    operand = as_operand(operand)
    dims = static_ints(dimensions, "rev", "dimensions")
    return rev_p.bind(operand, dimensions=dims) if dims else operand


def _rev_abstract(x, *, dimensions):
    if any(not 0 <= d < x.ndim for d in dimensions) or len(set(dimensions)) != len(dimensions):
        raise TypeError(f"rev: dimensions {dimensions} invalid for shape {x.shape}")
    return x


rev_p = Primitive("rev")
rev_p.def_impl(lambda xp, x, *, dimensions: xp.flip(x, dimensions) if dimensions else x)
rev_p.def_abstract_eval(_rev_abstract)
ad.deflinear(rev_p, lambda ct, x, *, dimensions: [rev(ct, dimensions)])
batching.def_batch(rev_p, lambda n, vals, dims, *, dimensions: (
    rev_p.bind(vals[0], dimensions=tuple(d + (d >= dims[0]) for d in dimensions)), dims[0]))
lowering.def_compiler_traits(rev_p, moves_elements=True)


# --------------------------------------------------------------------------- convert_element_type

def convert_element_type(operand: Any, new_dtype: Any, weak_type: bool = False) -> Any:
    """Cast ``operand`` to ``new_dtype`` (canonicalised: float64 -> float32 without x64)."""
    new_dtype = dtypes.canonicalize_dtype(new_dtype)
    if type(operand) is Array:  # eager: often already of that type (callers convert freely)
        if operand._value.dtype == new_dtype and operand.weak_type == weak_type:
            return operand
    elif not isinstance(operand, core.Tracer):  # a constant: convert it right away, silently
        value = fpstate.silently(_convert_impl, np, np.asarray(operand), new_dtype=new_dtype,
                                 weak_type=weak_type)
        return Array(value[()] if value.ndim == 0 else value, bool(weak_type))
    aval = core.get_aval(operand)
    if aval.dtype == new_dtype and aval.weak_type == weak_type:
        return operand
    return convert_element_type_p.bind(operand, new_dtype=new_dtype, weak_type=bool(weak_type))


def _convert_impl(xp, x, *, new_dtype, weak_type):
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        x = x.real
    kind = new_dtype.kind  # "V" for int4: ml_dtypes' types are NumPy void
    if (kind in "iu" or kind == "V" and new_dtype in dtypes.intn) and dtypes.is_float(x.dtype):
        return _float_to_int(xp, x, new_dtype)
    return x.astype(new_dtype)


def _float_to_int(xp, x, new_dtype):
    """Float -> int as XLA does it: truncate, saturate out-of-range values, NaN -> 0.

    (NumPy's cast is undefined out of range, ml_dtypes' refuses or wraps for int4.)
    float64 holds every narrower float exactly.
    """
    info = dtypes.iinfo(new_dtype)
    x = x.astype(np.float64)
    too_big, too_small = x >= float(info.max), x <= float(info.min)
    safe = xp.where(too_big | too_small | xp.isnan(x), 0.0, x).astype(new_dtype)
    return xp.where(too_big, new_dtype.type(info.max),
                    xp.where(too_small, new_dtype.type(info.min), safe))


def _convert_jvp(primals, tangents, *, new_dtype, weak_type):
    (x,), (t,) = primals, tangents
    out = convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=weak_type)
    if (type(t) is ad.Zero or not dtypes.is_inexact(new_dtype)
            or not dtypes.is_inexact(core.get_aval(x).dtype)):
        return out, ad.Zero.from_primal(out)
    return out, convert_element_type_p.bind(t, new_dtype=new_dtype, weak_type=weak_type)


def _convert_transpose(ct, x, *, new_dtype, weak_type):
    aval = x.aval
    return [convert_element_type_p.bind(ct, new_dtype=aval.dtype, weak_type=aval.weak_type)]


convert_element_type_p = Primitive("convert_element_type")
convert_element_type_p.def_impl(_convert_impl)
convert_element_type_p.def_abstract_eval(
    lambda x, *, new_dtype, weak_type: ShapedArray(x.shape, new_dtype, weak_type))
convert_element_type_p.weak_type_rule = lambda weaks, *, new_dtype, weak_type: weak_type
ad.def_jvp(convert_element_type_p, _convert_jvp)
ad.def_transpose(convert_element_type_p, _convert_transpose)
batching.defvectorized(convert_element_type_p)
# A plain astype, except where the impl does more: complex -> real (the real part) and
# float -> integer (saturating, as XLA).
lowering.def_lowering(
    convert_element_type_p,
    lambda ctx, eqn, args, out: f"{args[0]}.astype({ctx.const(eqn.params['new_dtype'], 'dtype')})",
    fresh=True, elementwise=True, when=lambda eqn: (
        eqn.invars[0].aval.dtype.kind in "iub" and eqn.params["new_dtype"].kind in "iubfc"
        or eqn.invars[0].aval.dtype.kind == "f" and eqn.params["new_dtype"].kind in "fc"))


# --------------------------------------------------------------------------- full (a composite)

def full(shape: Sequence[int], fill_value: Any, dtype: Any = None, *,
         sharding: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (broadcast of a scalar).

    ``sharding``: the device for the result (a ``Sharding``, as ``jax.lax.full`` takes, a
    ``Device`` or a platform name; see ``fungrad.lax._placement``); None leaves it where
    the operation runs.
    """
    shape = hashable_shape(shape, "full")
    if dtype is None:
        value = as_operand(fill_value)
    else:
        value = convert_element_type(fill_value, dtype)
    if core.get_aval(value).ndim != 0:
        raise TypeError(f"full: fill_value must be a scalar, got shape "
                        f"{core.get_aval(value).shape}")
    out = broadcast_in_dim(value, shape, ())
    return out if sharding is None else with_out_sharding(out, sharding, "lax.full", "sharding")


def full_like(x: Any, fill_value: Any, dtype: Any = None, shape: Any = None,
              sharding: Any = None) -> Any:
    """An array like ``x`` (its shape and dtype unless given) filled with ``fill_value``,
    as ``jax.lax.full_like``: weakly typed when ``x`` is and no ``dtype`` is given;
    ``sharding`` puts it on a device, as in ``full``."""
    aval = core.get_aval(x)
    value = convert_element_type(fill_value, dtype or aval.dtype,
                                 dtype is None and aval.weak_type)
    out = full(aval.shape if shape is None else shape, value)
    if sharding is None:
        return out
    return with_out_sharding(out, sharding, "lax.full_like", "sharding")


# --------------------------------------------------------------------------- collapse (a composite)

def collapse(operand: Any, start_dimension: int, stop_dimension: int | None = None) -> Any:
    """Merge dimensions ``[start_dimension, stop_dimension)`` into one (row-major reshape)."""
    shape = core.get_aval(operand).shape
    lo, hi, _ = builtins.slice(start_dimension, stop_dimension).indices(len(shape))
    if hi < lo:
        raise ValueError(f"collapse: invalid dimension range [{start_dimension}:{stop_dimension}] "
                         f"for an operand of shape {shape}")
    return reshape(operand, shape[:lo] + (prod(shape[lo:hi]),) + shape[hi:])


# --------------------------------------------------------------------------- iota

def iota(dtype: Any, size: int) -> Any:
    """``[0, 1, ..., size - 1]`` of ``dtype`` (``lax.iota``)."""
    return broadcasted_iota(dtype, hashable_shape(size, "iota", "size"), 0)


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The shape that NumPy broadcasting gives arrays of ``shapes`` (``jax.lax``'s)."""
    try:
        return _broadcast_shapes("broadcast_shapes", *(tuple(s) for s in shapes))
    except TypeError as error:
        raise ValueError(str(error)) from None


def broadcast_to_rank(x: Any, rank: int) -> Any:
    """``x`` with leading unit dimensions added up to ``rank`` dimensions."""
    x = as_operand(x)
    ndim = core.get_aval(x).ndim
    if rank < ndim:
        raise ValueError(f"broadcast_to_rank: x has {ndim} dimensions, more than rank={rank}")
    return x if ndim == rank else broadcast(x, (1,) * (rank - ndim))


def broadcasted_iota(dtype: Any, shape: Sequence[int], dimension: int, *,
                     out_sharding: Any = None) -> Any:
    """An array of ``shape`` whose values count along ``dimension`` (``lax.broadcasted_iota``);
    ``out_sharding`` puts it on a device, as in ``broadcast_in_dim``."""
    dtype = dtypes.canonicalize_dtype(dtype)
    shape = hashable_shape(shape, "broadcasted_iota")
    aval = _iota_abstract(dtype=dtype, shape=shape, dimension=int(dimension))
    out = iota_p.bind(dtype=aval.dtype, shape=shape, dimension=int(dimension))
    if out_sharding is None:
        return out
    return with_out_sharding(out, out_sharding, "lax.broadcasted_iota")


def _iota_impl(xp, *, dtype, shape, dimension):
    check_nbytes("iota", shape, dtype)
    line = xp.arange(shape[dimension]).astype(dtype)
    return xp.broadcast_to(line.reshape([-1 if i == dimension else 1 for i in range(len(shape))]),
                           shape)


def _iota_abstract(*, dtype, shape, dimension):
    if kind(dtype) not in NUMERIC:
        raise TypeError(f"iota does not accept dtype {dtype.name}; it needs a numeric dtype")
    if not 0 <= dimension < len(shape) or any(d < 0 for d in shape):
        raise ValueError(f"iota: dimension {dimension} invalid for shape {shape}")
    return ShapedArray(shape, dtype)


iota_p = Primitive("iota")
iota_p.def_impl(_iota_impl)
iota_p.def_abstract_eval(_iota_abstract)
iota_p.weak_type_rule = lambda weaks, **params: False
ad.def_nondiff(iota_p)  # its output is a constant
batching.def_no_batch(iota_p, "it takes no operands, so vmap never batches it")


# --------------------------------------------------------------------------- bitcast_convert_type

def bitcast_convert_type(operand: Any, new_dtype: Any) -> Any:
    """Reinterpret the bits of ``operand`` as ``new_dtype`` (``lax.bitcast_convert_type``).

    A narrower ``new_dtype`` adds a trailing dimension (``uint32 -> uint8[..., 4]``);
    a wider one consumes the trailing dimension, which must hold the width ratio. Widths
    are XLA's: ``int8 -> int4[..., 2]``, the first element in the low bits.
    """
    operand = as_operand(operand)
    new_dtype = dtypes.canonicalize_dtype(new_dtype)
    _bitcast_abstract(core.get_aval(operand), new_dtype=new_dtype)
    return bitcast_convert_type_p.bind(operand, new_dtype=new_dtype)


def _bitcast_impl(xp, x, *, new_dtype):
    old, new = dtypes.bit_width(x.dtype), dtypes.bit_width(new_dtype)
    if old == new:
        return x.view(new_dtype)
    if x.dtype in dtypes.intn or new_dtype in dtypes.intn:
        return _bitcast_intn(xp, x, new_dtype, old, new)
    shape = x.shape + (old // new,) if old > new else x.shape[:-1]
    return xp.ascontiguousarray(x).view(new_dtype).reshape(shape)


def _bitcast_intn(xp, x, new_dtype, old, new):
    """Bitcast between widths where a sub-byte integer takes part (each in a byte of its
    own in NumPy, so no view reinterprets them): the bits as uint64 numbers, split or
    joined, the first element in the low bits."""
    if x.dtype in dtypes.intn:  # the bits of the value, not of its byte
        bits = xp.bitwise_and(x.astype(np.int64).astype(np.uint64), np.uint64(2 ** old - 1))
    else:
        bits = x.view(np.dtype(f"u{x.dtype.itemsize}")).astype(np.uint64)
    if old > new:
        shifts = xp.arange(0, old, new, dtype=np.uint64)
        bits = xp.bitwise_and(xp.right_shift(bits[..., None], shifts), np.uint64(2 ** new - 1))
    else:
        shifts = xp.arange(0, new, old, dtype=np.uint64)
        bits = xp.bitwise_or.reduce(xp.left_shift(bits, shifts), axis=-1)
    if new_dtype in dtypes.intn:
        return bits.astype(np.uint8).astype(new_dtype)
    return bits.astype(np.dtype(f"u{new_dtype.itemsize}")).view(new_dtype)


@functools.lru_cache(maxsize=1024)  # eager calls validate with it too
def _bitcast_abstract(x, *, new_dtype):
    old, new = x.dtype, new_dtype
    if old != new and (old.kind in "bc" or new.kind in "bc"):
        raise TypeError(f"bitcast_convert_type does not support bool or complex values unless "
                        f"the dtypes match; got {old.name} -> {new.name}")
    old_bits, new_bits = dtypes.bit_width(old), dtypes.bit_width(new)
    if old_bits == new_bits:
        shape = x.shape
    elif old_bits > new_bits:
        shape = x.shape + (old_bits // new_bits,)
    else:
        if not x.shape or x.shape[-1] * old_bits != new_bits:
            raise TypeError(f"bitcast_convert_type: converting {x.str_short()} to {new.name} "
                            f"needs a trailing dimension of size {new_bits // old_bits}")
        shape = x.shape[:-1]
    return ShapedArray(shape, new)


def _bitcast_batch(axis_size, vals, dims, *, new_dtype):
    x, d = vals[0], dims[0]
    aval = core.get_aval(x)
    if dtypes.bit_width(aval.dtype) < dtypes.bit_width(new_dtype) and d == aval.ndim - 1:
        x, d = batching.moveaxis(x, d, 0), 0  # the trailing dimension is consumed
    return bitcast_convert_type_p.bind(x, new_dtype=new_dtype), d


bitcast_convert_type_p = Primitive("bitcast_convert_type")
bitcast_convert_type_p.def_impl(_bitcast_impl)
bitcast_convert_type_p.def_abstract_eval(_bitcast_abstract)
bitcast_convert_type_p.weak_type_rule = lambda weaks, *, new_dtype: False
ad.def_nondiff(bitcast_convert_type_p)
batching.def_batch(bitcast_convert_type_p, _bitcast_batch)


__all__ = ['collapse', 'iota', 'broadcasted_iota', 'broadcast_shapes', 'broadcast_to_rank',
           'iota_p', 'bitcast_convert_type',
           'bitcast_convert_type_p', 'broadcast', 'broadcast_in_dim', 'broadcast_in_dim_p',
           'reshape', 'reshape_p', 'transpose', 'transpose_p', 'squeeze', 'squeeze_p',
           'expand_dims', 'rev', 'rev_p', 'convert_element_type', 'convert_element_type_p', 'full',
           'full_like']
