"""The array-module (NumPy/CuPy) implementation of XLA gather and scatter windows,
and the dimension-number checks their shape rules share.

A gather output or a scatter ``updates`` array (the *value*, V) has *window*
dimensions (``offset_dims`` / ``update_window_dims``) and *batch* dimensions,
which follow the dimensions of ``indices`` except its last (the index vector).
Each value element sits in operand position ``start + offset``: ``start`` comes
from the index vector (``start_index_map``), from a paired batch coordinate
(``operand_batching_dims``) or is 0; ``offset`` is the element's window
coordinate. ``window_plan`` turns that into one NumPy index: a plain ``:`` for
operand dimensions the window covers whole and that no index moves (so an
embedding lookup is ``table[ids, :]``), and broadcasting integer arrays for the
rest. Nothing loops in Python over indices or batch members.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import numpy as np

from fungrad._core import dtypes
from fungrad.lax import _signed_zeros


# --------------------------------------------------------------------------- dimension checks

def check_dims(name: str, what: str, dims: Sequence[int], bound: int) -> None:
    """``dims`` sorted, without repeats, inside ``[0, bound)``."""
    if list(dims) != sorted(set(dims)) or any(not 0 <= d < bound for d in dims):
        raise TypeError(f"{name}: {what} {tuple(dims)} must be sorted, unique and in [0, {bound})")


def check_index_dims(name: str, operand: Any, indices: Any, index_map: Sequence[int],
                     collapsed: Sequence[int], operand_batching: Sequence[int],
                     indices_batching: Sequence[int], map_name: str, collapsed_name: str,
                     batching_name: str) -> None:
    """The index-vector map and batching-dimension pairs of a gather or scatter."""
    if len(index_map) != indices.shape[-1]:
        raise TypeError(f"{name}: {map_name} {tuple(index_map)} needs one entry per element of "
                        f"the index vector (last dimension of indices {indices.shape})")
    if len(set(index_map)) != len(index_map) or any(not 0 <= d < operand.ndim for d in index_map):
        raise TypeError(f"{name}: {map_name} {tuple(index_map)} must be unique operand dimensions "
                        f"of an operand of rank {operand.ndim}")
    check_dims(name, "operand_batching_dims", operand_batching, operand.ndim)
    if set(operand_batching) & (set(collapsed) | set(index_map)):
        raise TypeError(f"{name}: operand_batching_dims {tuple(operand_batching)} must be "
                        f"disjoint from {collapsed_name} {tuple(collapsed)} and {map_name} "
                        f"{tuple(index_map)}")
    if len(set(indices_batching)) != len(indices_batching) or \
            any(not 0 <= d < indices.ndim - 1 for d in indices_batching):
        raise TypeError(f"{name}: {batching_name} {tuple(indices_batching)} must be unique "
                        f"dimensions of indices {indices.shape}, not the index vector")
    o_sizes = tuple(operand.shape[d] for d in operand_batching)
    i_sizes = tuple(indices.shape[d] for d in indices_batching)
    if o_sizes != i_sizes:
        raise TypeError(f"{name}: operand_batching_dims {tuple(operand_batching)} and "
                        f"{batching_name} {tuple(indices_batching)} must pair dimensions of equal "
                        f"size, got {o_sizes} and {i_sizes}")


def windowed_dims(rank: int, collapsed: Sequence[int], operand_batching: Sequence[int]) -> list:
    """Operand dimensions that have a window dimension in the value, in order."""
    return [d for d in range(rank) if d not in collapsed and d not in operand_batching]


@functools.lru_cache(maxsize=1024)
def gather_shape(indices_shape: Sequence[int], offset_dims: Sequence[int],
                 collapsed: Sequence[int], operand_batching: Sequence[int],
                 slice_sizes: Sequence[int]) -> tuple[int, ...]:
    """Output shape of a gather: window sizes at ``offset_dims``, index batch dims elsewhere."""
    windows = iter(slice_sizes[d] for d in windowed_dims(len(slice_sizes), collapsed,
                                                          operand_batching))
    batch = iter(indices_shape[:-1])
    return tuple(next(windows) if i in offset_dims else next(batch)
                 for i in range(len(offset_dims) + len(indices_shape) - 1))


# --------------------------------------------------------------------------- the index plan

class WindowPlan(NamedTuple):
    index: tuple          # a NumPy index into the (at least 1-d) operand
    a_dims: tuple         # value dims produced by the integer arrays, in order
    f_dims: tuple         # value dims produced by ``:`` slices, in operand order
    a_at: int             # where NumPy puts the integer-array dims among the slice dims
    a_shape: tuple        # shape the integer arrays broadcast to
    in_bounds: Any        # bool array over a_dims (broadcastable), or None when clipping
    scalar: bool          # the operand was 0-d and is indexed as shape (1,)


class _Layout(NamedTuple):
    """The part of a plan that depends only on shapes and dimension numbers."""
    scalar: bool
    recipes: tuple        # per operand dim: None for ``:``, else (k, batch iota, window iota)
    highs: tuple          # per index-vector entry: the largest in-bounds start
    start_shape: tuple    # where the index batch dims sit among a_dims
    a_dims: tuple
    f_dims: tuple
    a_at: int
    a_shape: tuple


def _place(arr: Any, positions: Sequence[int], rank: int) -> Any:
    """Reshape ``arr`` so its dims land at increasing ``positions`` of a rank-``rank`` array."""
    return arr.reshape(_placed_shape(arr.shape, positions, rank))


def _placed_shape(sizes: Sequence[int], positions: Sequence[int], rank: int) -> tuple:
    shape = [1] * rank
    for p, n in zip(positions, sizes):
        shape[p] = n
    return tuple(shape)


@functools.lru_cache(maxsize=1024)
def _layout(operand_shape: tuple, indices_shape: tuple, value_shape: tuple, window_vdims: tuple,
            collapsed: tuple, index_map: tuple, operand_batching: tuple,
            indices_batching: tuple) -> _Layout:
    scalar = len(operand_shape) == 0
    if scalar:
        operand_shape, collapsed = (1,), (0,)
    rank = len(operand_shape)
    batch_vdims = [m for m in range(len(value_shape)) if m not in window_vdims]
    window_of = dict(zip(windowed_dims(rank, collapsed, operand_batching), window_vdims))
    wsize = [value_shape[window_of[d]] if d in window_of else 1 for d in range(rank)]
    full = [d for d in window_of if d not in index_map and wsize[d] == operand_shape[d]]
    if len(full) == rank and len(full) < len(value_shape):
        full = full[1:]  # batch dims need at least one integer array to broadcast along
    a_dims = tuple(m for m in range(len(value_shape)) if m not in {window_of[d] for d in full})
    a_pos = {m: i for i, m in enumerate(a_dims)}
    iota = lambda n, m: (n, _placed_shape((n,), [a_pos[m]], len(a_dims)))  # noqa: E731
    recipes = []
    for d in range(rank):
        if d in full:
            recipes.append(None)
            continue
        k = index_map.index(d) if d in index_map else -1
        batch = iota(operand_shape[d], batch_vdims[indices_batching[
            operand_batching.index(d)]]) if d in operand_batching else None
        window = iota(wsize[d], window_of[d]) if d in window_of and wsize[d] != 1 else None
        recipes.append((k, batch, window))
    advanced = [d for d in range(rank) if d not in full]
    contiguous = advanced == list(range(advanced[0], advanced[-1] + 1)) if advanced else True
    return _Layout(scalar, tuple(recipes),
                   tuple(operand_shape[d] - wsize[d] for d in index_map),
                   _placed_shape(indices_shape[:-1], [a_pos[m] for m in batch_vdims],
                                 len(a_dims)),
                   a_dims, tuple(window_of[d] for d in full),
                   sum(d < advanced[0] for d in full) if advanced and contiguous else 0,
                   tuple(value_shape[m] for m in a_dims))


def window_plan(xp: Any, operand_shape: Sequence[int], indices: Any, value_shape: Sequence[int],
                window_vdims: Sequence[int], collapsed: Sequence[int], index_map: Sequence[int],
                operand_batching: Sequence[int], indices_batching: Sequence[int],
                clip: bool) -> WindowPlan:
    """How to read (gather) or write (scatter) the value's windows in the operand.

    Start indices are clamped into ``[0, size - window]``; with ``clip=False`` the plan
    also says which windows were in bounds (to fill or drop the others).
    """
    lay = _layout(tuple(operand_shape), tuple(indices.shape), tuple(value_shape),
                  tuple(window_vdims), tuple(collapsed), tuple(index_map),
                  tuple(operand_batching), tuple(indices_batching))
    starts, in_bounds = [], None
    idx = indices.astype(np.int64)
    for k, hi in enumerate(lay.highs):
        s = idx[..., k]
        if not clip:
            ok = (s >= 0) & (s <= hi)
            in_bounds = ok if in_bounds is None else in_bounds & ok
        starts.append(xp.minimum(xp.maximum(s, 0), hi).reshape(lay.start_shape))
    index, broadcast_done = [], False
    for recipe in lay.recipes:
        if recipe is None:
            index.append(slice(None))
            continue
        k, batch, window = recipe
        ix = starts[k] if k >= 0 else xp.zeros((), np.int64)
        if batch is not None:
            ix = xp.arange(batch[0]).reshape(batch[1])
        if window is not None:
            ix = ix + xp.arange(window[0]).reshape(window[1])
        # NumPy broadcasts the integer arrays together; one of full shape fixes the result
        index.append(ix if broadcast_done else xp.broadcast_to(ix, lay.a_shape))
        broadcast_done = True
    if in_bounds is not None:
        in_bounds = in_bounds.reshape(lay.start_shape)
    return WindowPlan(tuple(index), lay.a_dims, lay.f_dims, lay.a_at, lay.a_shape, in_bounds,
                      lay.scalar)


def _block_to(n_block: int, at: int, n_rest: int) -> list:
    """Axes permutation moving a leading block of ``n_block`` axes to position ``at``."""
    rest = list(range(n_block, n_block + n_rest))
    return rest[:at] + list(range(n_block)) + rest[at:]


def gather(xp: Any, operand: Any, plan: WindowPlan, fill_value: Any) -> Any:
    """The gather output: read the windows, order the dims, fill out-of-bounds windows."""
    if plan.scalar:
        operand = operand.reshape(1)
    res = operand[plan.index]
    na = len(plan.a_dims)
    srcs = _block_to(na, plan.a_at, len(plan.f_dims))  # result axis -> [a_dims + f_dims] slot
    layout = [(plan.a_dims + plan.f_dims)[src] for src in srcs]
    out = res.transpose([layout.index(m) for m in range(len(layout))])
    if plan.in_bounds is None:
        return out
    mask = _place(plan.in_bounds, plan.a_dims, out.ndim)
    return xp.where(mask, out, xp.asarray(fill_value).astype(out.dtype))


def scatter(xp: Any, operand: Any, updates: Any, plan: WindowPlan, ufunc: str | None) -> Any:
    """A copy of ``operand`` with ``updates`` written at the windows: assigned when
    ``ufunc`` is None (the last duplicate wins), else combined by ``xp.<ufunc>.at``."""
    values = updates.transpose(plan.a_dims + plan.f_dims)
    if plan.in_bounds is not None and xp is not np:
        return _scatter_on_device(xp, operand, values, plan, ufunc)
    out = operand.reshape(1).copy() if plan.scalar else operand.copy()
    index, n_block = plan.index, len(plan.a_dims)
    if plan.in_bounds is not None and not bool(plan.in_bounds.all()):
        keep = xp.broadcast_to(plan.in_bounds, plan.a_shape)
        index = tuple(ix if isinstance(ix, slice) else xp.broadcast_to(ix, plan.a_shape)[keep]
                      for ix in index)
        values = values.reshape((-1,) + values.shape[n_block:])[keep.reshape(-1)]
        n_block = 1
    values = values.transpose(_block_to(n_block, plan.a_at, len(plan.f_dims)))
    if ufunc is None:
        out[index] = values
    else:  # ufunc.at is several times faster on flat indices than on a mixed index
        flat = _flat_index(xp, out.shape, index, n_block, plan.a_at, values.shape)
        getattr(xp, ufunc).at(out.reshape(-1), flat, values.reshape(-1))
        if ufunc in ("maximum", "minimum"):  # a tie of zeros as JAX's max and min
            _signed_zeros.fix_scattered_zeros(xp, out.reshape(-1), operand.reshape(-1), flat,
                                              values.reshape(-1), ufunc == "maximum")
    return out.reshape(operand.shape)


def _neutral(ufunc: str, dtype: np.dtype) -> Any:
    """The update that leaves an element as it is under ``ufunc`` (its identity: -0 for a
    float sum, as +0 would turn a -0 into +0)."""
    if ufunc == "add":
        return -0.0 if dtype.kind in "fc" else 0
    if ufunc == "multiply":
        return 1
    return dtypes.extreme(dtype, largest=ufunc == "minimum")


def _scatter_on_device(xp: Any, operand: Any, values: Any, plan: WindowPlan,
                       ufunc: str | None) -> Any:
    """``scatter`` dropping out-of-bounds windows without reading the bounds back to the
    host (which would wait for the GPU): an out-of-bounds update goes to element 0 instead,
    combining the identity of ``ufunc`` into it, or, for an assignment, writing the value
    element 0 ends up with anyway (the last in-bounds update of it, else its own value).
    The result owns its memory, so a donated result is written in place next time rather
    than copied."""
    shape = (1,) if plan.scalar else operand.shape
    n_block = len(plan.a_dims)
    values = values.transpose(_block_to(n_block, plan.a_at, len(plan.f_dims)))
    flat = _flat_index(xp, shape, plan.index, n_block, plan.a_at, values.shape)
    trailing = values.ndim - n_block - plan.a_at
    inside = xp.broadcast_to(plan.in_bounds, plan.a_shape).reshape(
        (1,) * plan.a_at + tuple(plan.a_shape) + (1,) * trailing)
    inside = xp.broadcast_to(inside, values.shape).reshape(-1)
    values = values.reshape(-1)
    out = operand.copy()
    if out.size == 0 or values.size == 0:  # every update is out of bounds, or none comes
        return out
    if ufunc is None:
        hits = inside & (flat == 0)
        last = values.size - 1 - xp.argmax(hits[::-1])
        fill = xp.where(hits.any(), values[last], out.reshape(-1)[0])
    else:
        fill = xp.full((), _neutral(ufunc, values.dtype), values.dtype)
    flat = xp.where(inside, flat, 0)
    values = xp.where(inside, values, fill)
    if ufunc is None:
        out.reshape(-1)[flat] = values
        return out
    getattr(xp, ufunc).at(out.reshape(-1), flat, values)
    if ufunc in ("maximum", "minimum"):  # the zeros' signs (from the operand's elements)
        _signed_zeros.fix_scattered_zeros(xp, out.reshape(-1), operand.reshape(-1), flat,
                                          values, ufunc == "maximum")
    return out


def _flat_index(xp: Any, shape: Sequence[int], index: tuple, n_block: int, a_at: int,
                values_shape: Sequence[int]) -> Any:
    """Row-major offsets into ``shape`` of the elements ``x[index]`` selects (in NumPy's
    result layout: slice dims, with the integer-array block at ``a_at``)."""
    n_full = sum(isinstance(ix, slice) for ix in index)
    flat, j, stride = xp.zeros((), np.int64), n_full, 1
    for n, ix in reversed(list(zip(shape, index))):
        if isinstance(ix, slice):
            j -= 1
            ix = _place(xp.arange(n), [j if j < a_at else j + n_block], len(values_shape))
        else:
            ix = ix.reshape((1,) * a_at + ix.shape + (1,) * (n_full - a_at))
        flat, stride = flat + stride * ix, stride * n
    return xp.broadcast_to(flat, values_shape).reshape(-1)
