"""Gather and the scatter family (scatter, scatter_add, scatter_sub, scatter_mul,
scatter_min, scatter_max): XLA's general windowed indexing, on which ``fungrad.numpy``
builds NumPy indexing and ``.at[...]`` updates.

Out-of-bounds windows, as in JAX: ``gather`` clamps the start indices (``CLIP``,
and ``PROMISE_IN_BOUNDS``, the default) or fills the whole window
(``FILL_OR_DROP``); a scatter clamps (``CLIP``) or drops the whole window
(``FILL_OR_DROP``, the default, and ``PROMISE_IN_BOUNDS``). Duplicate indices
accumulate in the combining scatters; for ``scatter`` the last update wins.
The array-module implementation of the windows lives in ``_gather_impl``.
"""
from __future__ import annotations

import enum
import functools
from typing import Any, NamedTuple, Sequence

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.lax import _gather_impl as gi
from fungrad.lax._prim import ANY, NUMERIC, as_operand, hashable_shape, kind, public_op
from fungrad.lax.elementwise import add, div, eq, mul, neg, select
from fungrad.lax.shapes import broadcast_in_dim, full, full_like, iota, reshape


# --------------------------------------------------------------------------- dimension numbers

class GatherDimensionNumbers(NamedTuple):
    """How the dimensions of a gather's operand, indices and output relate (as ``jax.lax``).

    offset_dims: output dimensions holding the window (sorted).
    collapsed_slice_dims: operand dimensions of window size 1 with no output dimension.
    start_index_map: for each entry of the index vector (the last indices dimension),
        the operand dimension it starts.
    operand_batching_dims / start_indices_batching_dims: paired operand and indices
        dimensions that index each other one-to-one (window size 1).
    """
    offset_dims: tuple[int, ...]
    collapsed_slice_dims: tuple[int, ...]
    start_index_map: tuple[int, ...]
    operand_batching_dims: tuple[int, ...] = ()
    start_indices_batching_dims: tuple[int, ...] = ()


class ScatterDimensionNumbers(NamedTuple):
    """How the dimensions of a scatter's operand, indices and updates relate (as ``jax.lax``).

    update_window_dims: updates dimensions holding the window (sorted).
    inserted_window_dims: operand dimensions of window size 1 absent from the updates.
    scatter_dims_to_operand_dims: for each entry of the index vector, its operand dimension.
    operand_batching_dims / scatter_indices_batching_dims: paired operand and indices
        dimensions that index each other one-to-one.
    """
    update_window_dims: tuple[int, ...]
    inserted_window_dims: tuple[int, ...]
    scatter_dims_to_operand_dims: tuple[int, ...]
    operand_batching_dims: tuple[int, ...] = ()
    scatter_indices_batching_dims: tuple[int, ...] = ()


class GatherScatterMode(enum.Enum):
    """Out-of-bounds behaviour of gather and scatter (see the module docstring)."""
    CLIP = enum.auto()
    FILL_OR_DROP = enum.auto()
    PROMISE_IN_BOUNDS = enum.auto()

    @staticmethod
    def from_any(s: "str | GatherScatterMode | None") -> "GatherScatterMode":
        """``"clip"``, ``"fill"``/``"drop"``/None, ``"promise_in_bounds"`` or a mode."""
        if isinstance(s, GatherScatterMode):
            return s
        if s == "clip":
            return GatherScatterMode.CLIP
        if s is None or s in ("fill", "drop"):
            return GatherScatterMode.FILL_OR_DROP
        if s == "promise_in_bounds":
            return GatherScatterMode.PROMISE_IN_BOUNDS
        raise ValueError(f'Unknown gather/scatter mode "{s}"; use "clip", "fill", "drop" or '
                         '"promise_in_bounds"')


def _dnums(cls, dn: Any):
    """Dimension numbers as ``cls`` with tuple-of-int fields (hashable params)."""
    if type(dn) is cls and all(type(f) is tuple for f in dn):
        return dn
    return cls(*[tuple(int(d) for d in getattr(dn, f)) for f in cls._fields])


def _gather_dnums_of(sd: ScatterDimensionNumbers) -> GatherDimensionNumbers:
    """The gather that reads back what a scatter with ``sd`` writes."""
    return GatherDimensionNumbers(sd.update_window_dims, sd.inserted_window_dims,
                                  sd.scatter_dims_to_operand_dims, sd.operand_batching_dims,
                                  sd.scatter_indices_batching_dims)


def _scatter_dnums_of(gd: GatherDimensionNumbers) -> ScatterDimensionNumbers:
    """The scatter that writes where a gather with ``gd`` reads."""
    return ScatterDimensionNumbers(gd.offset_dims, gd.collapsed_slice_dims, gd.start_index_map,
                                   gd.operand_batching_dims, gd.start_indices_batching_dims)


def _shift(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d + 1 for d in dims)


# --------------------------------------------------------------------------- gather

_NAN = float("nan")  # one object, so equal params (and cached shape checks) stay equal


def _default_fill(dtype: np.dtype) -> Any:
    if dtypes.is_inexact(dtype):
        return _NAN
    if dtype.kind == "i":
        return int(np.iinfo(dtype).min)
    return int(np.iinfo(dtype).max) if dtype.kind == "u" else True


def gather(operand: Any, start_indices: Any, dimension_numbers: GatherDimensionNumbers,
           slice_sizes: Sequence[int], *, unique_indices: bool = False,
           indices_are_sorted: bool = False, mode: Any = None, fill_value: Any = None) -> Any:
    """Windows of ``operand`` starting at ``start_indices`` (XLA Gather; ``lax.gather``).

    ``mode`` None means ``PROMISE_IN_BOUNDS`` (clamped). With ``"fill"`` a window that
    does not fit is ``fill_value`` (NaN, the minimum signed / maximum unsigned
    integer, or True by default).
    """
    operand, indices = as_operand(operand), as_operand(start_indices)
    mode = GatherScatterMode.PROMISE_IN_BOUNDS if mode is None else GatherScatterMode.from_any(mode)
    o_aval = core.get_aval(operand)
    if mode is GatherScatterMode.FILL_OR_DROP:
        fill_value = _default_fill(o_aval.dtype) if fill_value is None \
            else np.asarray(fill_value).item()  # a hashable Python scalar param
    else:
        fill_value = None
    params = dict(dimension_numbers=_dnums(GatherDimensionNumbers, dimension_numbers),
                  slice_sizes=hashable_shape(slice_sizes, "gather", "slice_sizes"),
                  unique_indices=bool(unique_indices), indices_are_sorted=bool(indices_are_sorted),
                  mode=mode, fill_value=fill_value)
    _gather_abstract(o_aval, core.get_aval(indices), **params)
    return gather_p.bind(operand, indices, **params)


def _gather_impl(xp, operand, indices, *, dimension_numbers, slice_sizes, mode, fill_value,
                 **_):
    dn = dimension_numbers
    out_shape = gi.gather_shape(indices.shape, dn.offset_dims, dn.collapsed_slice_dims,
                                dn.operand_batching_dims, slice_sizes)
    plan = gi.window_plan(xp, operand.shape, indices, out_shape, dn.offset_dims,
                          dn.collapsed_slice_dims, dn.start_index_map, dn.operand_batching_dims,
                          dn.start_indices_batching_dims,
                          clip=mode is not GatherScatterMode.FILL_OR_DROP)
    return gi.gather(xp, operand, plan, fill_value)


@functools.lru_cache(maxsize=1024)  # eager calls validate with it too
def _gather_abstract(operand, indices, *, dimension_numbers, slice_sizes, **_):
    dn = dimension_numbers
    if kind(indices.dtype) not in "iu":
        raise TypeError(f"gather: indices must be integers, got {indices.dtype.name}")
    if indices.ndim < 1:
        raise TypeError("gather: indices need a trailing index-vector dimension, got a scalar")
    rank_out = len(dn.offset_dims) + indices.ndim - 1
    gi.check_dims("gather", "offset_dims", dn.offset_dims, rank_out)
    gi.check_dims("gather", "collapsed_slice_dims", dn.collapsed_slice_dims, operand.ndim)
    gi.check_index_dims("gather", operand, indices, dn.start_index_map,
                        dn.collapsed_slice_dims, dn.operand_batching_dims,
                        dn.start_indices_batching_dims, "start_index_map",
                        "collapsed_slice_dims", "start_indices_batching_dims")
    if len(slice_sizes) != operand.ndim or operand.ndim != len(dn.offset_dims) + len(
            dn.collapsed_slice_dims) + len(dn.operand_batching_dims):
        raise TypeError(f"gather: slice_sizes {slice_sizes} need one entry per operand "
                        f"dimension ({operand.shape}), each an offset, collapsed or batching dim")
    if any(not 0 <= k <= n for k, n in zip(slice_sizes, operand.shape)):
        raise TypeError(f"gather: slice_sizes {slice_sizes} must lie in [0, size] for operand "
                        f"shape {operand.shape}")
    if any(slice_sizes[d] != 1 for d in dn.collapsed_slice_dims) or \
            any(slice_sizes[d] > 1 for d in dn.operand_batching_dims):
        raise TypeError(f"gather: collapsed and batching dimensions need slice size 1, got "
                        f"slice_sizes {slice_sizes}")
    shape = gi.gather_shape(indices.shape, dn.offset_dims, dn.collapsed_slice_dims,
                            dn.operand_batching_dims, slice_sizes)
    return ShapedArray(shape, operand.dtype, operand.weak_type)


def _gather_jvp(t, operand, indices, *, fill_value, **params):
    return gather_p.bind(t, indices, fill_value=0 if fill_value is not None else None, **params)


def _gather_transpose(ct, operand, indices, *, dimension_numbers, slice_sizes, unique_indices,
                      indices_are_sorted, mode, fill_value):
    zeros = full(operand.aval.shape, 0, core.get_aval(ct).dtype)
    return [scatter_add_p.bind(zeros, indices, ct,
                               dimension_numbers=_scatter_dnums_of(dimension_numbers),
                               indices_are_sorted=indices_are_sorted,
                               unique_indices=unique_indices, mode=mode), None]


def _gather_batch(axis_size, vals, dims, *, dimension_numbers, slice_sizes, unique_indices,
                  indices_are_sorted, mode, fill_value):
    (operand, indices), (o_dim, i_dim) = vals, dims
    dn = dimension_numbers
    if i_dim is None:  # the batch becomes a full window of the operand, output dim 0
        operand = batching.moveaxis(operand, o_dim, 0)
        new = GatherDimensionNumbers((0,) + _shift(dn.offset_dims), _shift(dn.collapsed_slice_dims),
                                     _shift(dn.start_index_map), _shift(dn.operand_batching_dims),
                                     dn.start_indices_batching_dims)
        sizes = (axis_size,) + slice_sizes
    elif o_dim is None:  # the batch is one more dimension of the indices
        indices = batching.moveaxis(indices, i_dim, 0)
        new = dn._replace(offset_dims=_shift(dn.offset_dims),
                          start_indices_batching_dims=_shift(dn.start_indices_batching_dims))
        sizes, unique_indices, indices_are_sorted = slice_sizes, False, False
    else:  # both batched: pair them with a batching dimension
        operand = batching.moveaxis(operand, o_dim, 0)
        indices = batching.moveaxis(indices, i_dim, 0)
        new = GatherDimensionNumbers(_shift(dn.offset_dims), _shift(dn.collapsed_slice_dims),
                                     _shift(dn.start_index_map),
                                     (0,) + _shift(dn.operand_batching_dims),
                                     (0,) + _shift(dn.start_indices_batching_dims))
        sizes = (1 if axis_size else 0,) + slice_sizes
    return gather_p.bind(operand, indices, dimension_numbers=new, slice_sizes=sizes,
                         unique_indices=unique_indices, indices_are_sorted=indices_are_sorted,
                         mode=mode, fill_value=fill_value), 0


gather_p = Primitive("gather")
gather_p.def_impl(_gather_impl)
gather_p.def_abstract_eval(_gather_abstract)
gather_p.weak_type_rule = lambda weaks, **params: weaks[0]
ad.defjvp(gather_p, _gather_jvp, None)
ad.def_transpose(gather_p, _gather_transpose)
batching.def_batch(gather_p, _gather_batch)


# --------------------------------------------------------------------------- scatter family

def _scatter_abstract(name, kinds):
    @functools.lru_cache(maxsize=1024)  # eager calls validate with it too
    def rule(operand, indices, updates, *, dimension_numbers, **_):
        dn = dimension_numbers
        if kind(operand.dtype) not in kinds:
            raise TypeError(f"{name} does not accept dtype {operand.dtype.name}")
        if kind(indices.dtype) not in "iu":
            raise TypeError(f"{name}: indices must be integers, got {indices.dtype.name}")
        if indices.ndim < 1:
            raise TypeError(f"{name}: indices need a trailing index-vector dimension")
        if operand.dtype != updates.dtype:
            raise TypeError(f"{name}: operand and updates must have the same dtype, got "
                            f"{operand.dtype.name} and {updates.dtype.name}")
        if updates.ndim != indices.ndim - 1 + len(dn.update_window_dims):
            raise TypeError(f"{name}: updates {updates.str_short()} must have rank "
                            f"{indices.ndim - 1 + len(dn.update_window_dims)} (indices "
                            f"{indices.str_short()}, update_window_dims {dn.update_window_dims})")
        gi.check_dims(name, "update_window_dims", dn.update_window_dims, updates.ndim)
        gi.check_dims(name, "inserted_window_dims", dn.inserted_window_dims, operand.ndim)
        gi.check_index_dims(name, operand, indices, dn.scatter_dims_to_operand_dims,
                            dn.inserted_window_dims, dn.operand_batching_dims,
                            dn.scatter_indices_batching_dims, "scatter_dims_to_operand_dims",
                            "inserted_window_dims", "scatter_indices_batching_dims")
        windowed = gi.windowed_dims(operand.ndim, dn.inserted_window_dims, dn.operand_batching_dims)
        if len(windowed) != len(dn.update_window_dims):
            raise TypeError(f"{name}: operand of rank {operand.ndim} needs "
                            f"{len(windowed)} update_window_dims, got {dn.update_window_dims}")
        if any(updates.shape[u] > operand.shape[d]
               for u, d in zip(dn.update_window_dims, windowed)):
            raise TypeError(f"{name}: update windows {updates.shape} exceed operand "
                            f"{operand.shape}")
        scatter_sizes = tuple(n for i, n in enumerate(updates.shape)
                              if i not in dn.update_window_dims)
        if scatter_sizes != indices.shape[:-1]:
            raise TypeError(f"{name}: the scatter dimensions of updates {updates.shape} must match "
                            f"the batch dimensions of indices {indices.shape[:-1]}")
        return ShapedArray(operand.shape, operand.dtype, operand.weak_type)
    return rule


def _scatter_impl(ufunc):
    def impl(xp, operand, indices, updates, *, dimension_numbers, mode, **_):
        if xp is not np and ufunc == "subtract":  # CuPy has only scatter add/max/min:
            return _scatter_impl("add")(xp, operand, indices, xp.negative(updates),  # exact
                                        dimension_numbers=dimension_numbers, mode=mode)
        dn = dimension_numbers
        plan = gi.window_plan(xp, operand.shape, indices, updates.shape, dn.update_window_dims,
                              dn.inserted_window_dims, dn.scatter_dims_to_operand_dims,
                              dn.operand_batching_dims, dn.scatter_indices_batching_dims,
                              clip=mode is GatherScatterMode.CLIP)
        return gi.scatter(xp, operand, updates, plan, ufunc)
    return impl


def _scatter_batch(prim):
    def rule(axis_size, vals, dims, *, dimension_numbers, indices_are_sorted, unique_indices,
             mode):
        (operand, indices, updates), (o_dim, i_dim, u_dim) = vals, dims
        dn = dimension_numbers
        operand = batching.bdim_at_front(operand, o_dim, axis_size)
        updates = batching.bdim_at_front(updates, u_dim, axis_size)
        if i_dim is None:  # the batch is one more (full) window dimension
            new = ScatterDimensionNumbers((0,) + _shift(dn.update_window_dims),
                                          _shift(dn.inserted_window_dims),
                                          _shift(dn.scatter_dims_to_operand_dims),
                                          _shift(dn.operand_batching_dims),
                                          dn.scatter_indices_batching_dims)
        else:
            indices = batching.moveaxis(indices, i_dim, 0)
            new = ScatterDimensionNumbers(_shift(dn.update_window_dims),
                                          _shift(dn.inserted_window_dims),
                                          _shift(dn.scatter_dims_to_operand_dims),
                                          (0,) + _shift(dn.operand_batching_dims),
                                          (0,) + _shift(dn.scatter_indices_batching_dims))
        return prim.bind(operand, indices, updates, dimension_numbers=new,
                         indices_are_sorted=indices_are_sorted, unique_indices=unique_indices,
                         mode=mode), 0
    return rule


def _scatter_prim(name: str, ufunc: str | None, kinds: str = ANY) -> Primitive:
    """A scatter whose updates combine by ``xp.<ufunc>.at`` (None: assignment)."""
    prim = Primitive(name)
    prim.def_impl(_scatter_impl(ufunc))
    prim.def_abstract_eval(_scatter_abstract(name, kinds))
    prim.weak_type_rule = lambda weaks, **params: weaks[0]
    batching.def_batch(prim, _scatter_batch(prim))
    return prim


def _scatter_wrapper(prim: Primitive, name: str):
    def op(operand: Any, scatter_indices: Any, updates: Any,
           dimension_numbers: ScatterDimensionNumbers, *, indices_are_sorted: bool = False,
           unique_indices: bool = False, mode: Any = None) -> Any:
        operand = as_operand(operand)
        o_aval = core.get_aval(operand)
        indices, updates = as_operand(scatter_indices), as_operand(updates, o_aval.dtype)
        params = dict(dimension_numbers=_dnums(ScatterDimensionNumbers, dimension_numbers),
                      indices_are_sorted=bool(indices_are_sorted),
                      unique_indices=bool(unique_indices), mode=GatherScatterMode.from_any(mode))
        prim.abstract_eval(o_aval, core.get_aval(indices), core.get_aval(updates), **params)
        return prim.bind(operand, indices, updates, **params)
    how = ("replaced by (last write wins on duplicates)" if name == "scatter"
           else f"combined by {name[8:]} with")
    doc = (f"``operand`` with the windows at ``scatter_indices`` {how} ``updates``"
           f" (XLA Scatter; ``lax.{name}``). ``mode`` None means FILL_OR_DROP.")
    return public_op(op, name, doc, __name__)


def _window_sizes(operand_shape, dn: ScatterDimensionNumbers, updates_shape) -> tuple:
    """The gather ``slice_sizes`` that read back the windows a scatter writes."""
    windowed = gi.windowed_dims(len(operand_shape), dn.inserted_window_dims,
                                dn.operand_batching_dims)
    sizes = dict(zip(windowed, (updates_shape[u] for u in dn.update_window_dims)))
    return tuple(sizes.get(d, 1) for d in range(len(operand_shape)))


def _gather_back(x, indices, dn, updates_shape, mode=GatherScatterMode.PROMISE_IN_BOUNDS,
                 fill_value=None):
    """Gather from ``x`` the windows a scatter with ``dn`` writes (the adjoint read)."""
    if mode is GatherScatterMode.FILL_OR_DROP and fill_value is None:
        fill_value = 0
    return gather_p.bind(x, indices, dimension_numbers=_gather_dnums_of(dn),
                         slice_sizes=_window_sizes(core.get_aval(x).shape, dn, updates_shape),
                         unique_indices=False, indices_are_sorted=False, mode=mode,
                         fill_value=fill_value)


def _scatter_addsub_jvp(prim):
    """Linear in operand and updates together: scatter the tangents the same way."""
    def rule(primals, tangents, **params):
        operand, indices, updates = primals
        out = prim.bind(operand, indices, updates, **params)
        t_op, _, t_up = tangents
        if type(t_op) is ad.Zero and type(t_up) is ad.Zero:
            return out, ad.Zero.from_primal(out)
        return out, prim.bind(ad.instantiate(t_op), indices, ad.instantiate(t_up), **params)
    return rule


def _scatter_addsub_transpose(negate):
    def rule(ct, operand, indices, updates, *, dimension_numbers, mode, **_):
        ct_up = None
        if ad.is_undefined(updates):
            ct_up = _gather_back(ct, indices, dimension_numbers, updates.aval.shape, mode)
            ct_up = neg(ct_up) if negate else ct_up
        return [ct if ad.is_undefined(operand) else None, None, ct_up]
    return rule


scatter_add_p = _scatter_prim("scatter-add", "add", NUMERIC)
scatter_add = _scatter_wrapper(scatter_add_p, "scatter_add")
ad.def_jvp(scatter_add_p, _scatter_addsub_jvp(scatter_add_p))
ad.def_transpose(scatter_add_p, _scatter_addsub_transpose(False))

scatter_sub_p = _scatter_prim("scatter-sub", "subtract", NUMERIC)
scatter_sub = _scatter_wrapper(scatter_sub_p, "scatter_sub")
ad.def_jvp(scatter_sub_p, _scatter_addsub_jvp(scatter_sub_p))
ad.def_transpose(scatter_sub_p, _scatter_addsub_transpose(True))


scatter_mul_p = _scatter_prim("scatter-mul", "multiply", NUMERIC)
scatter_mul = _scatter_wrapper(scatter_mul_p, "scatter_mul")


def _scatter_mul_jvp(primals, tangents, **params):
    operand, indices, updates = primals
    t_op, _, t_up = tangents
    out = scatter_mul_p.bind(operand, indices, updates, **params)
    t_out = ad.Zero.from_primal(out)
    if type(t_op) is not ad.Zero:
        t_out = scatter_mul_p.bind(t_op, indices, updates, **params)
    if type(t_up) is not ad.Zero:
        if not params["unique_indices"]:
            raise NotImplementedError("scatter_mul: derivatives with respect to updates are only "
                                      "implemented with unique_indices=True (as in JAX)")
        spread = scatter_add_p.bind(full_like(operand, 0), indices, t_up, **params)
        t_out = ad.add_tangents(t_out, mul(operand, spread))
    return out, t_out


def _scatter_mul_transpose(ct, operand, indices, updates, **params):
    if ad.is_undefined(updates):
        raise NotImplementedError("scatter_mul is linear in its operand only; its updates "
                                  "must be known when transposing")
    return [scatter_mul_p.bind(ct, indices, updates, **params), None, None]


ad.def_jvp(scatter_mul_p, _scatter_mul_jvp)
ad.def_transpose(scatter_mul_p, _scatter_mul_transpose)


def _scatter_extremal_jvp(prim):
    """JAX's rule: tied contenders for a location share its tangent evenly."""
    def rule(primals, tangents, **params):
        operand, indices, updates = primals
        t_op, _, t_up = tangents
        dn = params["dimension_numbers"]
        out = prim.bind(operand, indices, updates, **params)
        if type(t_op) is ad.Zero and type(t_up) is ad.Zero:
            return out, ad.Zero.from_primal(out)
        t_op, t_up = ad.instantiate(t_op), ad.instantiate(t_up)
        u_shape = core.get_aval(updates).shape
        plain = dict(params, mode=GatherScatterMode.FILL_OR_DROP)
        back = lambda x: _gather_back(x, indices, dn, u_shape)
        count = lambda v: back(scatter_add_p.bind(full_like(operand, 0), indices, v, **plain))
        initial, target = back(operand), back(out)
        won, kept = eq(updates, target), eq(initial, target)
        one, zero = full_like(updates, 1), full_like(updates, 0)
        num_updates = count(select(won, one, zero))
        num_refs = count(one)
        normalizer = select(kept, div(one, add(num_updates, one)), div(one, num_updates))
        update_coef = select(won, normalizer, zero)
        operand_coef = div(add(full_like(updates, -1), select(kept, normalizer, zero)), num_refs)
        t_updates = add(mul(back(t_op), operand_coef), mul(t_up, update_coef))
        return out, scatter_add_p.bind(t_op, indices, t_updates, **params)
    return rule


scatter_min_p = _scatter_prim("scatter-min", "minimum")
scatter_min = _scatter_wrapper(scatter_min_p, "scatter_min")
ad.def_jvp(scatter_min_p, _scatter_extremal_jvp(scatter_min_p))

scatter_max_p = _scatter_prim("scatter-max", "maximum")
scatter_max = _scatter_wrapper(scatter_max_p, "scatter_max")
ad.def_jvp(scatter_max_p, _scatter_extremal_jvp(scatter_max_p))


scatter_p = _scatter_prim("scatter", None)
scatter = _scatter_wrapper(scatter_p, "scatter")


def _scatter_jvp(primals, tangents, **params):
    operand, indices, updates = primals
    t_op, _, t_up = tangents
    dn = params["dimension_numbers"]
    if type(t_op) is ad.Zero and type(t_up) is ad.Zero:
        out = scatter_p.bind(operand, indices, updates, **params)
        return out, ad.Zero.from_primal(out)
    t_op, t_up = ad.instantiate(t_op), ad.instantiate(t_up)
    if params["unique_indices"]:
        return (scatter_p.bind(operand, indices, updates, **params),
                scatter_p.bind(t_op, indices, t_up, **params))
    # Duplicate indices: which update wins is unspecified. As JAX does, scatter an id
    # per update, read the ids back to see which update won each location, mask the
    # losers, and express both outputs as scatter-adds of the masked values.
    u_shape = core.get_aval(updates).shape
    ids_shape = tuple(1 if i in dn.update_window_dims else n for i, n in enumerate(u_shape))
    ids = add(reshape(iota(np.uint32, int(np.prod(ids_shape))), ids_shape),
              full(ids_shape, 1, np.uint32))
    ids = broadcast_in_dim(ids, u_shape, tuple(range(len(u_shape))))
    scattered = scatter_p.bind(full(core.get_aval(operand).shape, 0, np.uint32), indices, ids,
                               **params)
    winners = eq(ids, _gather_back(scattered, indices, dn, u_shape))
    untouched = eq(scattered, full_like(scattered, 0))
    keep_op = lambda x: select(untouched, x, full_like(x, 0))
    keep_up = lambda x: select(winners, x, full_like(x, 0))
    return (scatter_add_p.bind(keep_op(operand), indices, keep_up(updates), **params),
            scatter_add_p.bind(keep_op(t_op), indices, keep_up(t_up), **params))


def _scatter_transpose(ct, operand, indices, updates, *, dimension_numbers, **params):
    if not params["unique_indices"]:
        raise NotImplementedError("scatter: transposition is only implemented with "
                                  "unique_indices=True (as in JAX)")
    u_aval = updates.aval if ad.is_undefined(updates) else core.get_aval(updates)
    ct_op = ct_up = None
    if ad.is_undefined(operand):
        ct_op = scatter_p.bind(ct, indices, full(u_aval.shape, 0, core.get_aval(ct).dtype),
                               dimension_numbers=dimension_numbers, **params)
    if ad.is_undefined(updates):
        ct_up = _gather_back(ct, indices, dimension_numbers, u_aval.shape, params["mode"])
    return [ct_op, None, ct_up]


ad.def_jvp(scatter_p, _scatter_jvp)
ad.def_transpose(scatter_p, _scatter_transpose)



__all__ = ['GatherDimensionNumbers', 'ScatterDimensionNumbers', 'GatherScatterMode',
           'gather', 'gather_p', 'scatter', 'scatter_p', 'scatter_add', 'scatter_add_p',
           'scatter_sub', 'scatter_sub_p',
           'scatter_mul', 'scatter_mul_p', 'scatter_min', 'scatter_min_p', 'scatter_max',
           'scatter_max_p']
