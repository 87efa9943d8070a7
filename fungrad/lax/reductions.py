"""Reduction primitives: reduce_sum, reduce_max, reduce_min, reduce_prod,
reduce_and, reduce_or, argmax, argmin. ``axes`` is a sorted tuple of
non-negative ints; reduced dimensions are removed."""
from __future__ import annotations

from typing import Any, Sequence

from fungrad._core import core
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import ANY, NUMERIC, as_operand, check_dtypes


def _axes(x: Any, axes: Sequence[int], name: str) -> tuple[int, ...]:
    ndim = core.get_aval(x).ndim
    return tuple(sorted({canonicalize_axis(a, ndim, name) for a in axes}))


def _reduce_abstract(name, kinds):
    def rule(x, *, axes):
        check_dtypes(name, [x], kinds)
        if any(not 0 <= a < x.ndim for a in axes):
            raise TypeError(f"{name}: axes {axes} out of range for shape {x.shape}")
        shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
        return ShapedArray(shape, x.dtype, x.weak_type)
    return rule


def _reduce_batch(prim):
    def rule(axis_size, vals, dims, *, axes):
        d = dims[0]
        new_axes = tuple(a + (a >= d) for a in axes)
        out_dim = d - sum(a < d for a in new_axes)
        return prim.bind(vals[0], axes=new_axes), out_dim
    return rule


def _reducer(name, impl, kinds):
    prim = Primitive(name)
    prim.def_impl(impl)
    prim.def_abstract_eval(_reduce_abstract(name, kinds))
    batching.def_batch(prim, _reduce_batch(prim))
    return prim


# --------------------------------------------------------------------------- reduce_sum

def reduce_sum(operand: Any, axes: Sequence[int]) -> Any:
    """Sum over ``axes``."""
    operand = as_operand(operand)
    return reduce_sum_p.bind(operand, axes=_axes(operand, axes, "reduce_sum"))


def _reduce_sum_transpose(ct, x, *, axes):
    from fungrad.lax.shapes import broadcast_in_dim
    shape = x.aval.shape
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return [broadcast_in_dim(ct, shape, kept)]


reduce_sum_p = _reducer("reduce_sum", lambda xp, x, *, axes: xp.sum(x, axis=axes, dtype=x.dtype),
                        NUMERIC)
ad.deflinear(reduce_sum_p, _reduce_sum_transpose)


# --------------------------------------------------------------------------- reduce_max / min

def _reduce_chooser_jvp(prim):
    def rule(primals, tangents, *, axes):
        from fungrad.lax.elementwise import convert_to, div, eq, mul
        from fungrad.lax.shapes import broadcast_in_dim
        (x,), (t,) = primals, tangents
        out = prim.bind(x, axes=axes)
        shape = core.get_aval(x).shape
        kept = tuple(i for i in range(len(shape)) if i not in axes)
        location = convert_to(eq(x, broadcast_in_dim(out, shape, kept)), x)
        counts = reduce_sum(location, axes)
        return out, div(reduce_sum(mul(t, location), axes), counts)
    return rule


def reduce_max(operand: Any, axes: Sequence[int]) -> Any:
    """Maximum over ``axes``."""
    operand = as_operand(operand)
    return reduce_max_p.bind(operand, axes=_axes(operand, axes, "reduce_max"))


def reduce_min(operand: Any, axes: Sequence[int]) -> Any:
    """Minimum over ``axes``."""
    operand = as_operand(operand)
    return reduce_min_p.bind(operand, axes=_axes(operand, axes, "reduce_min"))


reduce_max_p = _reducer("reduce_max", lambda xp, x, *, axes: xp.max(x, axis=axes), ANY)
ad.def_jvp(reduce_max_p, _reduce_chooser_jvp(reduce_max_p))
reduce_min_p = _reducer("reduce_min", lambda xp, x, *, axes: xp.min(x, axis=axes), ANY)
ad.def_jvp(reduce_min_p, _reduce_chooser_jvp(reduce_min_p))


__all__ = ['reduce_sum', 'reduce_sum_p', 'reduce_max', 'reduce_max_p', 'reduce_min', 'reduce_min_p']
