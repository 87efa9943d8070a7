"""``associative_scan``: a parallel prefix scan built from slices, pads and concatenation.

It is a composite (no primitive of its own), so every transformation works on it.
"""
from __future__ import annotations

from typing import Any, Callable

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.util import canonicalize_axis
from fungrad.lax.control_flow.common import flatten_operands
from fungrad.lax.elementwise import add, max as max_
from fungrad.lax.shapes import full, rev
from fungrad.lax.slicing import concatenate, pad, slice_in_dim


def associative_scan(fn: Callable, elems: Any, reverse: bool = False, axis: int = 0) -> Any:
    """Inclusive scan of ``elems`` along ``axis`` with the associative ``fn``
    (``jax.lax.associative_scan``).

    ``fn(a, b)`` combines two pytrees shaped like ``elems`` elementwise along
    ``axis``. The result has the structure of ``elems``; element ``k`` is
    ``fn(...fn(fn(e_0, e_1), e_2)..., e_k)``. Runs in O(log n) sequential steps
    (Blelloch's odd/even recursion): combine neighbouring pairs, scan the half
    sized result recursively, then fill in the even positions.

    Example (a cumulative sum, and one from the end):
        >>> import fungrad.numpy as jnp
        >>> from fungrad import lax
        >>> lax.associative_scan(lax.add, jnp.arange(5))
        Array([ 0,  1,  3,  6, 10], dtype=int32)
        >>> lax.associative_scan(lax.add, jnp.arange(5), reverse=True)
        Array([10, 10,  9,  7,  4], dtype=int32)
    """
    if not callable(fn):
        raise TypeError("lax.associative_scan: fn argument should be callable.")
    flat, treedef = flatten_operands(elems, "lax.associative_scan", "elems")
    if not flat:
        return elems
    axis = canonicalize_axis(axis, core.get_aval(flat[0]).ndim, "lax.associative_scan")
    num = core.get_aval(flat[0]).shape[axis]
    if any(core.get_aval(e).shape[axis] != num for e in flat):
        raise ValueError("lax.associative_scan: array inputs must have the same size along "
                         f"axis {axis}, got shapes {[core.get_aval(e).shape for e in flat]}")
    if reverse:
        flat = [rev(e, (axis,)) for e in flat]

    def combine(a: list, b: list) -> list:
        out = fn(tree_util.unflatten(treedef, a), tree_util.unflatten(treedef, b))
        return tree_util.leaves(out)

    def sl(e: Any, start: int, stop: int | None, stride: int = 1) -> Any:
        return slice_in_dim(e, start, stop, stride=stride, axis=axis)

    def scan_(es: list) -> list:
        n = core.get_aval(es[0]).shape[axis]
        if n < 2:
            return es
        odd = scan_(combine([sl(e, 0, -1, 2) for e in es], [sl(e, 1, None, 2) for e in es]))
        if n % 2 == 0:
            even = combine([sl(e, 0, -1) for e in odd], [sl(e, 2, None, 2) for e in es])
        else:
            even = combine(odd, [sl(e, 2, None, 2) for e in es])
        even = [concatenate([sl(e, 0, 1), r], axis) for e, r in zip(es, even)]
        return [_interleave(a, b, axis) for a, b in zip(even, odd)]

    out = scan_(flat)
    if reverse:
        out = [rev(e, (axis,)) for e in out]
    return tree_util.unflatten(treedef, out)


def _interleave(a: Any, b: Any, axis: int) -> Any:
    """``a[0], b[0], a[1], b[1], ...`` along ``axis`` (``a`` may be one longer)."""
    aval_a, aval_b = core.get_aval(a), core.get_aval(b)
    same = aval_a.shape[axis] == aval_b.shape[axis]
    pad_a = [(0, 0, 0)] * aval_a.ndim
    pad_b = [(0, 0, 0)] * aval_b.ndim
    pad_a[axis] = (0, 1 if same else 0, 1)
    pad_b[axis] = (1, 0 if same else 1, 1)
    op = max_ if aval_a.dtype.kind == "b" else add  # max of booleans is "or"
    zero = full((), 0, aval_a.dtype)
    return op(pad(a, zero, pad_a), pad(b, zero, pad_b))


__all__ = ["associative_scan"]
