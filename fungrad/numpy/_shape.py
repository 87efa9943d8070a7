"""Shape manipulation: reshape, transpose, broadcasting, squeezing and expanding, flips,
rolls and rotations, tiling and repeating, diagonals, padding.

Everything with static sizes lowers to ``reshape``/``transpose``/``broadcast_in_dim``/
``slice``/``rev``/``concatenate``/``pad``, never to ``gather``: static selections
are cheaper as slices, and their transposes (pads) are cheap too.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core.core import Tracer
from fungrad._core.util import prod as _prod
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import hashable_shape, static_ints
from fungrad.numpy._util import (aval, broadcast_shapes_or_error, broadcast_to as _broadcast_to,
                                 canonicalize_axes, canonicalize_axis, ensure_arraylike,
                                 scalar_like, static_int)
from fungrad.numpy._indexing import take
from fungrad.numpy._reductions import sum as _sum
from fungrad.numpy._ufuncs import remainder


def shape(a: Any) -> tuple[int, ...]:
    """The shape of an array or scalar."""
    return aval(ensure_arraylike("shape", a)).shape


def ndim(a: Any) -> int:
    """The number of dimensions of an array or scalar."""
    return aval(ensure_arraylike("ndim", a)).ndim


def size(a: Any, axis: int | None = None) -> int:
    """The number of elements (along ``axis`` when given)."""
    s = shape(a)
    return _prod(s) if axis is None else s[canonicalize_axis(axis, len(s), "size")]


def _axis_tuple(axis: Any) -> tuple:
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


# --------------------------------------------------------------------------- reshape

def _compute_newshape(fname: str, size: int, newshape: Any) -> tuple[int, ...]:
    """``newshape`` (an int or a sequence; one entry may be -1) resolved for ``size``
    elements, or an error naming ``fname``."""
    if type(newshape) is tuple and all(type(d) is int for d in newshape):
        return _resolve_newshape(fname, size, newshape)  # the common case, cached
    return _resolve_newshape.__wrapped__(fname, size, newshape)


@functools.lru_cache(maxsize=1024)
def _resolve_newshape(fname: str, size: int, newshape: Any) -> tuple[int, ...]:
    dims = list(static_ints(newshape, fname, "shape"))
    unknown = [i for i, d in enumerate(dims) if d == -1]
    if len(unknown) > 1 or any(d < -1 for d in dims):
        raise ValueError(f"{fname}: invalid shape {tuple(dims)}; at most one dimension may "
                         "be -1 and the others must be non-negative")
    if unknown:
        known = _prod(d for d in dims if d != -1)
        if known == 0 or size % known:
            raise TypeError(f"{fname}: cannot reshape array of size {size} into shape "
                            f"{tuple(dims)}")
        dims[unknown[0]] = size // known
    if _prod(dims) != size:
        raise TypeError(f"{fname}: cannot reshape array of size {size} into shape {tuple(dims)}")
    return tuple(dims)


def reshape(a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
            copy: bool | None = None, out_sharding: Any = None) -> Any:
    """Reshape ``a`` (one dimension may be -1; ``order`` 'C' or 'F'); ``out_sharding``
    puts the result on a device (see ``fungrad.lax._placement``; None leaves it where the
    operation runs)."""
    a = ensure_arraylike("reshape", a)
    shape = newshape if shape is None else shape
    if shape is None:
        raise TypeError("reshape: a new shape is required")
    a_aval = aval(a)
    new = _compute_newshape("reshape", a_aval.size, shape)
    if order == "C":  # ``new`` is canonical: bind directly (lax.reshape would re-check it)
        out = a if new == a_aval.shape else lax.reshape_p.bind(a, new_sizes=new)
    elif order == "F":
        flat = lax.reshape(lax.transpose(a, tuple(range(a_aval.ndim - 1, -1, -1))),
                           (a_aval.size,))
        out = lax.transpose(lax.reshape(flat, new[::-1]), tuple(range(len(new) - 1, -1, -1)))
    else:
        raise ValueError(f"reshape: unsupported order {order!r}; use 'C' or 'F'")
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "jnp.reshape")


def ravel(a: Any, order: str = "C", *, out_sharding: Any = None) -> Any:
    """The flattened array; ``out_sharding`` puts it on a device, as in ``reshape``."""
    a = ensure_arraylike("ravel", a)
    out = reshape(a, (aval(a).size,), order)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "jnp.ravel")


def _method_reshape(a: Any, *args: Any, order: str = "C", out_sharding: Any = None) -> Any:
    """``x.reshape(2, 3)`` and ``x.reshape((2, 3))`` both work, as on ``jax.Array``."""
    if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
        args = args[0]
    out = reshape(a, args, order)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "jnp.reshape")


# --------------------------------------------------------------------------- transposes

def transpose(a: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute the axes of ``a`` (reverse them when ``axes`` is None)."""
    a = ensure_arraylike("transpose", a)
    nd = aval(a).ndim
    if axes is None:
        perm = tuple(range(nd - 1, -1, -1))
    else:
        perm = tuple(canonicalize_axis(ax, nd, "transpose") for ax in axes)
        if sorted(perm) != list(range(nd)):
            raise ValueError(f"transpose: axes {tuple(axes)} do not match array of "
                             f"dimension {nd}")
    return lax.transpose(a, perm)


def _method_transpose(a: Any, *args: Any) -> Any:
    """``x.transpose()``, ``x.transpose(1, 0)`` and ``x.transpose((1, 0))``."""
    if not args or (len(args) == 1 and args[0] is None):
        return transpose(a)
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return transpose(a, args[0])
    return transpose(a, args)


def permute_dims(a: Any, /, axes: Sequence[int]) -> Any:
    """Array-API name of ``transpose``."""
    return transpose(a, axes)


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """Exchange two axes."""
    a = ensure_arraylike("swapaxes", a)
    nd = aval(a).ndim
    perm = list(range(nd))
    i, j = canonicalize_axis(axis1, nd, "swapaxes"), canonicalize_axis(axis2, nd, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return lax.transpose(a, tuple(perm))


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes."""
    x = ensure_arraylike("matrix_transpose", x)
    if aval(x).ndim < 2:
        raise ValueError(f"matrix_transpose requires at least 2 dimensions, got shape "
                         f"{aval(x).shape}")
    return swapaxes(x, -1, -2)


def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    """Move axes ``source`` to positions ``destination`` keeping the others in order."""
    a = ensure_arraylike("moveaxis", a)
    nd = aval(a).ndim
    src = [canonicalize_axis(s, nd, "moveaxis") for s in _axis_tuple(source)]
    dst = [canonicalize_axis(d, nd, "moveaxis") for d in _axis_tuple(destination)]
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: inconsistent number of elements: {len(src)} vs {len(dst)}")
    perm = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        perm.insert(d, s)
    return lax.transpose(a, tuple(perm))


def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """Roll ``axis`` backwards until it lies before ``start``."""
    a = ensure_arraylike("rollaxis", a)
    nd = aval(a).ndim
    axis = canonicalize_axis(axis, nd, "rollaxis")
    start = canonicalize_axis(start, nd + 1, "rollaxis")
    if axis < start:
        start -= 1
    return moveaxis(a, axis, start) if axis != start else a


# --------------------------------------------------------------------------- broadcasting

def broadcast_to(array: Any, shape: Any, *, out_sharding: Any = None) -> Any:
    """Broadcast ``array`` to ``shape`` (NumPy rules); ``out_sharding`` puts the result on a
    device, as in ``reshape``."""
    array = ensure_arraylike("broadcast_to", array)
    out = _broadcast_to(array, hashable_shape(shape, "broadcast_to"))
    if out_sharding is None:
        return out
    return with_out_sharding(out, out_sharding, "jnp.broadcast_to")


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The broadcast shape of ``shapes``."""
    return broadcast_shapes_or_error("broadcast_shapes",
                                     *((s,) if isinstance(s, int) else tuple(s) for s in shapes))


def broadcast_arrays(*args: Any) -> list:
    """Broadcast all ``args`` to their common shape."""
    args = [ensure_arraylike("broadcast_arrays", a) for a in args]
    out_shape = broadcast_shapes_or_error("broadcast_arrays", *(aval(a).shape for a in args))
    return [_broadcast_to(a, out_shape) for a in args]


def expand_dims(a: Any, axis: Any) -> Any:
    """Insert size-1 axes at the positions ``axis`` (in the output)."""
    a = ensure_arraylike("expand_dims", a)
    axes = _axis_tuple(axis)
    out_nd = aval(a).ndim + len(axes)
    canon = [canonicalize_axis(ax, out_nd, "expand_dims") for ax in axes]
    if len(set(canon)) != len(canon):
        raise ValueError(f"expand_dims: repeated axis in {axis}")
    return lax.expand_dims(a, tuple(canon))


def squeeze(a: Any, axis: Any = None) -> Any:
    """Remove size-1 axes (all of them, or those in ``axis``, which must have size 1)."""
    a = ensure_arraylike("squeeze", a)
    shp = aval(a).shape
    if axis is None:
        axes = tuple(i for i, d in enumerate(shp) if d == 1)
    else:
        axes = canonicalize_axes(axis, len(shp), "squeeze")
        for ax in axes:
            if shp[ax] != 1:
                raise ValueError(f"squeeze: cannot select an axis to squeeze out which has "
                                 f"size not equal to one, got shape={shp} and axis={axis}")
    return lax.squeeze(a, axes)


def _atleast(fname: str, nd: int, arys: tuple) -> Any:
    outs = []
    for x in arys:
        x = ensure_arraylike(fname, x)
        s = aval(x).shape
        if len(s) < nd:
            if nd == 3 and len(s) == 2:
                x = lax.reshape(x, s + (1,))
            elif nd == 3 and len(s) == 1:
                x = lax.reshape(x, (1,) + s + (1,))
            else:
                x = lax.reshape(x, (1,) * (nd - len(s)) + s)
        outs.append(x)
    return outs[0] if len(outs) == 1 else outs


def atleast_1d(*arys: Any) -> Any:
    """View inputs as arrays with at least one dimension."""
    return _atleast("atleast_1d", 1, arys)


def atleast_2d(*arys: Any) -> Any:
    """View inputs as arrays with at least two dimensions (1-d ``x`` becomes ``(1, n)``)."""
    return _atleast("atleast_2d", 2, arys)


def atleast_3d(*arys: Any) -> Any:
    """At least three dimensions (1-d becomes ``(1, n, 1)``, 2-d ``(m, n, 1)``)."""
    return _atleast("atleast_3d", 3, arys)


# --------------------------------------------------------------------------- slicing helpers

def slice_axis(x: Any, axis: int, start: int, stop: int, stride: int = 1) -> Any:
    """``x[..., start:stop:stride, ...]`` along ``axis`` with a static ``lax.slice``."""
    shp = aval(x).shape
    if start == 0 and stop == shp[axis] and stride == 1:
        return x
    starts = [0] * len(shp)
    limits = list(shp)
    strides = [1] * len(shp)
    starts[axis], limits[axis], strides[axis] = start, stop, stride
    return lax.slice(x, tuple(starts), tuple(limits), tuple(strides) if stride != 1 else None)


def _index_runs(idx: np.ndarray) -> list[tuple[int, int, int]]:
    """Split static indices into runs ``(first, length, step)`` with step in {1, -1, 0}."""
    runs: list[tuple[int, int, int]] = []
    i, n = 0, len(idx)
    while i < n:
        j = i + 1
        step = int(idx[j] - idx[i]) if j < n else 1
        if step not in (1, -1, 0):
            step = 1
        else:
            while j < n and idx[j] - idx[j - 1] == step:
                j += 1
        runs.append((int(idx[i]), j - i, step))
        i = j
    return runs


def take_static(x: Any, idx: np.ndarray, axis: int) -> Any:
    """``x`` indexed along ``axis`` by static in-bounds ``idx``, as slices, reversals and
    broadcasts of runs when there are few runs, else as one ``gather``."""
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    runs = _index_runs(idx)
    if len(runs) > 8:
        return take(x, np.asarray(idx, np.int32), axis=axis)
    pieces = []
    for first, length, step in runs:
        if step == 1:
            pieces.append(slice_axis(x, axis, first, first + length))
        elif step == -1:
            pieces.append(lax.rev(slice_axis(x, axis, first - length + 1, first + 1), (axis,)))
        else:
            one = slice_axis(x, axis, first, first + 1)
            shp = list(aval(one).shape)
            shp[axis] = length
            pieces.append(lax.broadcast_in_dim(one, tuple(shp), tuple(range(len(shp)))))
    if len(pieces) == 1:
        return pieces[0]
    if not pieces:
        shp = list(aval(x).shape)
        shp[axis] = 0
        return slice_axis(x, axis, 0, 0)
    return lax.concatenate(pieces, axis)


# --------------------------------------------------------------------------- flips, rolls

def flip(m: Any, axis: Any = None) -> Any:
    """Reverse the order of elements along ``axis`` (all axes when None)."""
    m = ensure_arraylike("flip", m)
    return lax.rev(m, canonicalize_axes(axis, aval(m).ndim, "flip"))


def fliplr(m: Any) -> Any:
    """Reverse along axis 1."""
    return flip(m, 1)


def flipud(m: Any) -> Any:
    """Reverse along axis 0."""
    return flip(m, 0)


def rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Any:
    """Rotate by 90 degrees ``k`` times in the plane of ``axes``."""
    m = ensure_arraylike("rot90", m)
    nd = aval(m).ndim
    if nd < 2:
        raise ValueError(f"rot90 requires at least 2 dimensions, got shape {aval(m).shape}")
    ax1, ax2 = (canonicalize_axis(ax, nd, "rot90") for ax in axes)
    if ax1 == ax2:
        raise ValueError("rot90: axes must be different")
    k = static_int(k, "rot90: k") % 4
    if k == 0:
        return m
    if k == 2:
        return lax.rev(m, (ax1, ax2))
    perm = list(range(nd))
    perm[ax1], perm[ax2] = perm[ax2], perm[ax1]
    if k == 1:
        return lax.transpose(lax.rev(m, (ax2,)), tuple(perm))
    return lax.rev(lax.transpose(m, tuple(perm)), (ax2,))


def _roll_one(a: Any, shift: Any, axis: int) -> Any:
    n = aval(a).shape[axis]
    if n == 0:
        return a
    concrete = shift if not isinstance(shift, Tracer) else shift.to_concrete_value()
    if concrete is not None:
        s = int(np.asarray(concrete)) % n
        if s == 0:
            return a
        return lax.concatenate([slice_axis(a, axis, n - s, n), slice_axis(a, axis, 0, n - s)],
                               axis)
    shift = remainder(lax.convert_element_type(shift, np.int32), n)
    doubled = lax.concatenate([a, a], axis)
    return lax.dynamic_slice_in_dim(doubled, lax.sub(lax.convert_element_type(n, np.int32),
                                                     shift), n, axis)


def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    """Roll elements along ``axis`` by ``shift`` (the flattened array when ``axis`` is None)."""
    a = ensure_arraylike("roll", a)
    if axis is None:
        return lax.reshape(roll(lax.reshape(a, (aval(a).size,)), shift, 0), aval(a).shape)
    axes = [canonicalize_axis(ax, aval(a).ndim, "roll") for ax in _axis_tuple(axis)]
    shifts = _shifts("roll", shift)
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    elif len(axes) == 1:  # several shifts of one axis add up, as in NumPy and JAX
        axes = axes * len(shifts)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift and axis must have the same length or one of them "
                         f"length 1, got {len(shifts)} shifts and {len(axes)} axes")
    for s, ax in zip(shifts, axes):
        a = _roll_one(a, s, ax)
    return a


def _shifts(name: str, shift: Any) -> list:
    """``shift`` as a list of scalars: a Python sequence, or the elements of a 0-d or 1-d
    array (a traced one stays traced)."""
    if isinstance(shift, (tuple, list)):
        return list(shift)
    ndim = aval(shift).ndim if hasattr(shift, "shape") else 0
    if ndim == 0:
        return [shift]
    if ndim > 1:
        raise ValueError(f"{name}: shift must be a scalar or a 1-d sequence, got an array of "
                         f"shape {aval(shift).shape}")
    return [shift[i] for i in range(aval(shift).shape[0])]


# --------------------------------------------------------------------------- tile / repeat

def tile(A: Any, reps: Any) -> Any:
    """Repeat the whole array ``reps`` times along each axis."""
    A = ensure_arraylike("tile", A)
    reps = static_ints(reps, "tile", "reps")
    shp = aval(A).shape
    nd = max(len(reps), len(shp))
    reps = (1,) * (nd - len(reps)) + reps
    shp = (1,) * (nd - len(shp)) + shp
    A = lax.reshape(A, shp)
    big = tuple(x for r, d in zip(reps, shp) for x in (r, d))
    out = lax.broadcast_in_dim(A, big, tuple(range(1, 2 * nd, 2)))
    return lax.reshape(out, tuple(r * d for r, d in zip(reps, shp)))


def repeat(a: Any, repeats: Any, axis: int | None = None, *,
           total_repeat_length: int | None = None, out_sharding: Any = None) -> Any:
    """Repeat each element ``repeats`` times along ``axis``.

    ``total_repeat_length`` fixes the result's length: the repeats are cut there, or the
    axis's last element fills the rest (as JAX). Traced ``repeats`` (under ``jit``) need it.
    ``out_sharding`` puts the result on a device, as in ``reshape``.
    """
    if out_sharding is not None:
        out = repeat(a, repeats, axis, total_repeat_length=total_repeat_length)
        return with_out_sharding(out, out_sharding, "jnp.repeat")
    a = ensure_arraylike("repeat", a)
    if axis is None:
        a = lax.reshape(a, (aval(a).size,))
        axis = 0
    axis = canonicalize_axis(axis, aval(a).ndim, "repeat")
    n = aval(a).shape[axis]
    total = None if total_repeat_length is None else static_int(
        total_repeat_length, "repeat: total_repeat_length")
    value = repeats.to_concrete_value() if isinstance(repeats, Tracer) else repeats
    if value is None:
        if total is None:
            raise TypeError("repeat: traced repeats need a static total_repeat_length (the "
                            "length of the result)")
        return _repeat_traced(a, repeats, axis, total)
    reps = np.asarray(value)
    if reps.ndim > 1 or reps.ndim == 1 and reps.shape[0] not in (1, n):
        raise ValueError(f"repeat: repeats of shape {reps.shape} do not match axis {axis} "
                         f"of length {n}")
    if reps.size == 1 and total is None:  # one count for every element: a broadcast
        r = int(reps.reshape(()))
        shp = aval(a).shape
        expanded = shp[:axis + 1] + (r,) + shp[axis + 1:]
        dims = tuple(i for i in range(len(expanded)) if i != axis + 1)
        out = lax.broadcast_in_dim(a, expanded, dims)
        return lax.reshape(out, shp[:axis] + (n * r,) + shp[axis + 1:])
    index = np.repeat(np.arange(n), np.broadcast_to(reps, (n,)))
    if total is not None:
        index = np.concatenate([index, np.full(max(total - index.size, 0), n - 1)])[:total]
    return take_static(a, index, axis)


def _repeat_traced(a: Any, repeats: Any, axis: int, total: int) -> Any:
    """``repeat`` with repeats known only at run time: element ``i`` starts at the sum of
    the repeats before it; position ``j`` takes the last element starting at or before it."""
    n = aval(a).shape[axis]
    reps = _broadcast_to(lax.convert_element_type(lax.reshape(
        repeats, (aval(repeats).size,)), np.int32), (n,))
    starts = lax.sub(lax.cumsum(reps, 0), reps)
    marks = lax.full((total,), 0, np.int32).at[starts].add(1, mode="drop")
    return take(a, lax.sub(lax.cumsum(marks, 0), scalar_like(1, marks)), axis=axis)


# --------------------------------------------------------------------------- diagonals

def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The ``offset`` diagonal of the ``(axis1, axis2)`` planes, as the last axis.

    Lowered as a strided slice of the flattened planes (no gather).
    """
    a = ensure_arraylike("diagonal", a)
    nd = aval(a).ndim
    if nd < 2:
        raise ValueError(f"diagonal requires an array of at least two dimensions, got shape "
                         f"{aval(a).shape}")
    offset = static_int(offset, "diagonal: offset")
    ax1, ax2 = canonicalize_axis(axis1, nd, "diagonal"), canonicalize_axis(axis2, nd, "diagonal")
    if ax1 == ax2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    a = moveaxis(a, (ax1, ax2), (-2, -1))
    shp = aval(a).shape
    n, m = shp[-2], shp[-1]
    length = max(0, min(n + min(offset, 0), m - max(offset, 0)))
    flat = lax.reshape(a, shp[:-2] + (n * m,))
    if length == 0:
        return slice_axis(flat, nd - 2, 0, 0)
    start = offset if offset >= 0 else -offset * m
    return slice_axis(flat, nd - 2, start, start + (length - 1) * (m + 1) + 1, m + 1)


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: None = None) -> Any:
    """Sum along the ``offset`` diagonal."""
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


__all__ = ["shape", "ndim", "size", "reshape", "ravel", "transpose", "permute_dims",
           "swapaxes", "matrix_transpose", "moveaxis", "rollaxis", "broadcast_to",
           "broadcast_shapes", "broadcast_arrays", "expand_dims", "squeeze", "atleast_1d",
           "atleast_2d", "atleast_3d", "flip", "fliplr", "flipud", "rot90", "roll", "tile",
           "repeat", "diagonal", "trace"]
