"""Shape primitives: broadcast_in_dim, reshape, transpose, squeeze, expand_dims,
rev, convert_element_type, bitcast_convert_type, iota. Each block holds the
primitive with its implementation, shape rule, JVP/transpose and batching rule."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import canonicalize_axis, prod
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import as_operand, hashable_shape


# --------------------------------------------------------------------------- broadcast_in_dim

def broadcast_in_dim(operand: Any, shape: Sequence[int], broadcast_dimensions: Sequence[int]) -> Any:
    """Broadcast ``operand`` to ``shape``; operand dim i becomes output dim broadcast_dimensions[i]."""
    operand = as_operand(operand)
    shape = hashable_shape(shape, "broadcast_in_dim")
    dims = tuple(int(d) for d in broadcast_dimensions)
    if core.get_aval(operand).shape == shape and dims == tuple(range(len(shape))):
        return operand
    return broadcast_in_dim_p.bind(operand, shape=shape, broadcast_dimensions=dims)


def broadcast(operand: Any, sizes: Sequence[int]) -> Any:
    """Add leading dimensions of the given ``sizes`` (``lax.broadcast``)."""
    aval = core.get_aval(operand)
    sizes = tuple(sizes)
    return broadcast_in_dim(operand, sizes + aval.shape, tuple(range(len(sizes), len(sizes) + aval.ndim)))


def _broadcast_in_dim_impl(xp, x, *, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return xp.broadcast_to(xp.reshape(x, expanded), shape)


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
    from fungrad.lax.reductions import reduce_sum
    new_dims = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    stretched = tuple(d for i, d in enumerate(broadcast_dimensions)
                      if x.aval.shape[i] == 1 and shape[d] != 1)
    summed = reduce_sum(ct, tuple(sorted(new_dims + stretched))) if new_dims or stretched else ct
    return [reshape(summed, x.aval.shape)]


def _broadcast_in_dim_batch(axis_size, vals, dims, *, shape, broadcast_dimensions):
    x = batching.moveaxis(vals[0], dims[0], 0)
    new_shape = (axis_size,) + shape
    new_dims = (0,) + tuple(d + 1 for d in broadcast_dimensions)
    return broadcast_in_dim_p.bind(x, shape=new_shape, broadcast_dimensions=new_dims), 0


broadcast_in_dim_p = Primitive("broadcast_in_dim")
broadcast_in_dim_p.def_impl(_broadcast_in_dim_impl)
broadcast_in_dim_p.def_abstract_eval(_broadcast_in_dim_abstract)
ad.deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)
batching.def_batch(broadcast_in_dim_p, _broadcast_in_dim_batch)


# --------------------------------------------------------------------------- reshape

def reshape(operand: Any, new_sizes: Sequence[int], dimensions: Sequence[int] | None = None) -> Any:
    """Reshape (row-major). ``dimensions`` optionally transposes first, as in ``lax.reshape``."""
    operand = as_operand(operand)
    new_sizes = hashable_shape(new_sizes, "reshape")
    if dimensions is not None and tuple(dimensions) != tuple(range(len(dimensions))):
        operand = transpose(operand, tuple(dimensions))
    if core.get_aval(operand).shape == new_sizes:
        return operand
    return reshape_p.bind(operand, new_sizes=new_sizes)


def _reshape_abstract(x, *, new_sizes):
    if prod(new_sizes) != x.size or any(d < 0 for d in new_sizes):
        raise TypeError(f"reshape: cannot reshape array of shape {x.shape} (size {x.size}) "
                        f"into shape {new_sizes}")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


def _reshape_batch(axis_size, vals, dims, *, new_sizes):
    x = batching.moveaxis(vals[0], dims[0], 0)
    return reshape_p.bind(x, new_sizes=(axis_size,) + new_sizes), 0


reshape_p = Primitive("reshape")
reshape_p.def_impl(lambda xp, x, *, new_sizes: xp.reshape(x, new_sizes))
reshape_p.def_abstract_eval(_reshape_abstract)
ad.deflinear(reshape_p, lambda ct, x, *, new_sizes: [reshape(ct, x.aval.shape)])
batching.def_batch(reshape_p, _reshape_batch)


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


transpose_p = Primitive("transpose")
transpose_p.def_impl(lambda xp, x, *, permutation: xp.transpose(x, permutation))
transpose_p.def_abstract_eval(_transpose_abstract)
ad.deflinear(transpose_p, _transpose_transpose)
batching.def_batch(transpose_p, _transpose_batch)


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
squeeze_p.def_impl(lambda xp, x, *, dimensions: xp.squeeze(x, axis=dimensions))
squeeze_p.def_abstract_eval(_squeeze_abstract)
ad.deflinear(squeeze_p, lambda ct, x, *, dimensions: [reshape(ct, x.aval.shape)])
batching.def_batch(squeeze_p, _squeeze_batch)


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
    dims = tuple(int(d) for d in dimensions)
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


# --------------------------------------------------------------------------- convert_element_type

def convert_element_type(operand: Any, new_dtype: Any, weak_type: bool = False) -> Any:
    """Cast ``operand`` to ``new_dtype`` (canonicalised: float64 -> float32 without x64)."""
    new_dtype = dtypes.canonicalize_dtype(new_dtype)
    if not isinstance(operand, (core.Tracer, Array)):  # a constant: convert it right away
        value = np.asarray(operand)
        if value.dtype.kind == "c" and new_dtype.kind != "c":
            value = value.real
        return Array(value.astype(new_dtype)[()] if value.ndim == 0 else value.astype(new_dtype),
                     bool(weak_type))
    aval = core.get_aval(operand)
    if aval.dtype == new_dtype and aval.weak_type == weak_type:
        return operand
    return convert_element_type_p.bind(operand, new_dtype=new_dtype, weak_type=bool(weak_type))


def _convert_impl(xp, x, *, new_dtype, weak_type):
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        x = x.real
    return x.astype(new_dtype)


def _convert_jvp(primals, tangents, *, new_dtype, weak_type):
    (x,), (t,) = primals, tangents
    out = convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=weak_type)
    if type(t) is ad.Zero or not dtypes.is_inexact(new_dtype) or not dtypes.is_inexact(core.get_aval(x).dtype):
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


# --------------------------------------------------------------------------- full (a composite)

def full(shape: Sequence[int], fill_value: Any, dtype: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (broadcast of a scalar)."""
    shape = hashable_shape(shape, "full")
    if dtype is None:
        value = as_operand(fill_value)
    else:
        value = convert_element_type(fill_value, dtype)
    if core.get_aval(value).ndim != 0:
        raise TypeError(f"full: fill_value must be a scalar, got shape {core.get_aval(value).shape}")
    return broadcast_in_dim(value, shape, ())


def full_like(x: Any, fill_value: Any, dtype: Any = None, shape: Any = None) -> Any:
    aval = core.get_aval(x)
    return full(aval.shape if shape is None else shape, fill_value, dtype or aval.dtype)


__all__ = ['broadcast', 'broadcast_in_dim', 'broadcast_in_dim_p', 'reshape', 'reshape_p', 'transpose', 'transpose_p', 'squeeze', 'squeeze_p', 'expand_dims', 'rev', 'rev_p', 'convert_element_type', 'convert_element_type_p', 'full', 'full_like']
