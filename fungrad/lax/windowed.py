"""Windowed reductions: reduce_window_sum / max / min (pooling) and the two linear
primitives behind the derivatives of max/min pooling.

All of them loop over the few *taps* of the window (a 3x3 window has 9) and
do whole-array NumPy work per tap on strided views of the dilated, padded
operand, never a Python loop over output positions. Window parameters follow
XLA: the operand is dilated (``base_dilation``), then padded (``padding``,
negative pads crop), then windows of ``window_dimensions`` with
``window_dilation`` are taken every ``window_strides``.

Derivatives, as in JAX: ``reduce_window_sum`` is linear and its transpose is
another ``reduce_window_sum`` (dilated by the strides). The tangent of max/min
pooling is ``select_and_gather_add``: in each window, the tangent at the
position the forward pass selected; its transpose is ``select_and_scatter_add``
and vice versa. Selection scans the window in row-major order and moves to a
new element unless the current one is ``>=`` it (``<=`` for min): ties go to
the first element, NaNs to the last NaN seen, matching XLA.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import ANY, NUMERIC, as_operand, check_dtypes, public_op
from fungrad.lax.conv import (_conv_vjp_lhs_padding, _dilate, dilate_and_pad, pad_geometry,
                              padtype_to_pads, window_taps)
from fungrad.lax import _signed_zeros, elementwise
from fungrad.lax.elementwise import ge_p, le_p

_WINDOW_PARAMS = ("window_dimensions", "window_strides", "padding", "base_dilation",
                  "window_dilation")


def _window_shape(shape, window_dimensions, window_strides, padding, base_dilation,
                  window_dilation):
    padded = [_dilate(n, b) + lo + hi for n, b, (lo, hi) in zip(shape, base_dilation, padding)]
    window = [_dilate(w, d) for w, d in zip(window_dimensions, window_dilation)]
    return tuple(max(0, (p - w) // s + 1) for p, w, s in zip(padded, window, window_strides))


def _check_window(name: str, x: ShapedArray, window_dimensions, window_strides, padding,
                  base_dilation, window_dilation) -> tuple[int, ...]:
    for what, v in zip(_WINDOW_PARAMS, (window_dimensions, window_strides, padding, base_dilation,
                                        window_dilation)):
        if len(v) != x.ndim:
            raise TypeError(f"{name}: {what} must have one entry per operand dimension "
                            f"({x.ndim} for shape {x.shape}), got {v}")
    if any(w < 1 for w in window_dimensions + window_strides + base_dilation + window_dilation):
        raise TypeError(f"{name}: window_dimensions, window_strides and dilations must be "
                        f"positive, got {window_dimensions}, {window_strides}, {base_dilation}, "
                        f"{window_dilation}")
    if any(_dilate(n, b) + lo + hi < 0 for n, b, (lo, hi) in zip(x.shape, base_dilation, padding)):
        raise ValueError(f"{name}: negative padding {padding} is larger than the operand shape "
                         f"{x.shape}")
    return _window_shape(x.shape, window_dimensions, window_strides, padding, base_dilation,
                         window_dilation)


def _window_batch(prim):
    """The vmapped dimension becomes a window dimension of size 1 (operands moved to the front)."""
    def rule(axis_size, vals, dims, **params):
        vals = [batching.bdim_at_front(v, d, axis_size) for v, d in zip(vals, dims)]
        new = dict(params, window_dimensions=(1,) + params["window_dimensions"],
                   window_strides=(1,) + params["window_strides"],
                   padding=((0, 0),) + params["padding"],
                   base_dilation=(1,) + params["base_dilation"],
                   window_dilation=(1,) + params["window_dilation"])
        return prim.bind(*vals, **new), 0
    return rule


def _identity(dtype: np.dtype, select_max: bool) -> Any:
    """The padding value of max (min) pooling: -inf (+inf) or the integer extreme."""
    return dtypes.extreme(dtype, largest=not select_max)


# ---------------------------------------------------------------- reduce_window_sum / max / min

def _reduce_window_impl(kind: str):
    def impl(xp, x, *, window_dimensions, window_strides, padding, base_dilation, window_dilation):
        out_shape = _window_shape(x.shape, window_dimensions, window_strides, padding,
                                  base_dilation, window_dilation)
        out_dtype = x.dtype
        if kind == "sum":
            fill, combine = 0, xp.add
            if x.dtype in dtypes.half_floats:
                x = x.astype(np.float32)
        else:
            fill, combine = _identity(x.dtype, kind == "max"), getattr(xp, f"{kind}imum")
        taps = list(window_taps(out_shape, window_dimensions, window_strides, window_dilation))

        def reduce(values, fill, combine):
            padded, out = dilate_and_pad(xp, values, base_dilation, padding, fill), None
            for sl in taps:
                out = padded[sl].copy() if out is None else combine(out, padded[sl], out=out)
            return out

        out = reduce(x, fill, combine)
        if kind != "sum":  # zeros signed as in JAX: a window's maximum of -0 and +0 is +0
            out = _signed_zeros.fix_reduced_zeros(
                xp, out, x, kind == "max", lambda mask: reduce(mask, False, xp.logical_or))
        return out.astype(out_dtype, copy=False)
    return impl


def _reduce_window_abstract(name, kinds):
    def rule(x, **params):
        check_dtypes(name, [x], kinds)
        return ShapedArray(_check_window(name, x, *(params[k] for k in _WINDOW_PARAMS)),
                           x.dtype, x.weak_type)
    return rule


def _reduce_window_prim(name, kinds):
    prim = Primitive(name)
    prim.def_impl(_reduce_window_impl(name.rsplit("_", 1)[1]))
    prim.def_abstract_eval(_reduce_window_abstract(name, kinds))
    batching.def_batch(prim, _window_batch(prim))
    return prim


def _reduce_window_sum_transpose(ct, x, *, window_dimensions, window_strides, padding,
                                 base_dilation, window_dilation):
    in_shape = x.aval.shape
    pads = _conv_vjp_lhs_padding(in_shape, window_dimensions, window_strides,
                                 core.get_aval(ct).shape, padding, base_dilation, window_dilation)
    out = reduce_window_sum_p.bind(ct, window_dimensions=window_dimensions,
                                   window_strides=base_dilation, padding=pads,
                                   base_dilation=window_strides, window_dilation=window_dilation)
    return [out]


reduce_window_sum_p = _reduce_window_prim("reduce_window_sum", NUMERIC)
ad.deflinear(reduce_window_sum_p, _reduce_window_sum_transpose)

reduce_window_max_p = _reduce_window_prim("reduce_window_max", ANY)
reduce_window_min_p = _reduce_window_prim("reduce_window_min", ANY)


def _chooser_jvp(select_prim):
    def rule(t, x, **params):
        return select_and_gather_add_p.bind(t, x, select_prim=select_prim, **params)
    return rule


# --------------------------------------------- select_and_gather_add / select_and_scatter_add

def _select(xp, xpad, out_shape, select_prim, window_dimensions, window_strides, window_dilation):
    """Per output position, the index of the selected tap (see the module docstring)."""
    keep = xp.greater_equal if select_prim.name == "ge" else xp.less_equal
    best, idx = None, None
    taps = window_taps(out_shape, window_dimensions, window_strides, window_dilation)
    for k, sl in enumerate(taps):
        v = xpad[sl]
        if best is None:
            best, idx = v.copy(), xp.zeros(out_shape, np.int32)
            continue
        take = ~keep(best, v)
        best = xp.where(take, v, best)
        idx = xp.where(take, np.int32(k), idx)
    return idx


def _select_and_gather_add_impl(xp, t, x, *, select_prim, window_dimensions, window_strides,
                                padding, base_dilation, window_dilation):
    out_shape = _window_shape(x.shape, window_dimensions, window_strides, padding, base_dilation,
                              window_dilation)
    init = _identity(x.dtype, select_prim.name == "ge")
    xpad = dilate_and_pad(xp, x, base_dilation, padding, init)
    tpad = dilate_and_pad(xp, t, base_dilation, padding, 0)
    window = (window_dimensions, window_strides, window_dilation)
    idx = _select(xp, xpad, out_shape, select_prim, *window)
    out = xp.zeros(out_shape, t.dtype)
    for k, sl in enumerate(window_taps(out_shape, *window)):
        out = xp.where(idx == k, tpad[sl], out)
    return out


def _select_and_scatter_add_impl(xp, source, x, *, select_prim, window_dimensions, window_strides,
                                 padding, base_dilation, window_dilation):
    out_shape = source.shape
    init = _identity(x.dtype, select_prim.name == "ge")
    xpad = dilate_and_pad(xp, x, base_dilation, padding, init)
    window = (window_dimensions, window_strides, window_dilation)
    idx = _select(xp, xpad, out_shape, select_prim, *window)
    full, inner, crop = pad_geometry(x.shape, base_dilation, padding)
    acc = xp.zeros(xpad.shape, np.float32 if source.dtype in dtypes.half_floats
                   else source.dtype)
    zero = acc.dtype.type(0)
    for k, sl in enumerate(window_taps(out_shape, *window)):
        acc[sl] += xp.where(idx == k, source, zero)  # one tap's slice holds no repeats
    buf = xp.zeros(full, acc.dtype)
    buf[crop] = acc
    return buf[inner].astype(source.dtype, copy=False)


def _select_and_gather_add_abstract(t, x, *, select_prim, **params):
    name = "select_and_gather_add"
    if t.shape != x.shape:
        raise TypeError(f"{name}: tangents and operand shapes must match, got {t.shape} and "
                        f"{x.shape}")
    return ShapedArray(_check_window(name, x, *(params[k] for k in _WINDOW_PARAMS)), t.dtype,
                       t.weak_type)


def _select_and_scatter_add_abstract(source, x, *, select_prim, **params):
    name = "select_and_scatter_add"
    out = _check_window(name, x, *(params[k] for k in _WINDOW_PARAMS))
    if source.shape != out:
        raise TypeError(f"{name}: source shape {source.shape} does not match the window output "
                        f"shape {out} of the operand {x.shape}")
    return ShapedArray(x.shape, source.dtype, source.weak_type)


def _linear_in_first(prim):
    """JVP of a primitive linear in its first argument; the second only selects."""
    def rule(primals, tangents, **params):
        (t, x), (dt, _) = primals, tangents
        out = prim.bind(t, x, **params)
        if type(dt) is ad.Zero:
            return out, ad.Zero.from_primal(out)
        return out, prim.bind(dt, x, **params)
    return rule


select_and_gather_add_p = Primitive("select_and_gather_add")
select_and_gather_add_p.def_impl(_select_and_gather_add_impl)
select_and_gather_add_p.def_abstract_eval(_select_and_gather_add_abstract)
select_and_gather_add_p.weak_type_rule = lambda weaks, **params: weaks[0]
ad.def_jvp(select_and_gather_add_p, _linear_in_first(select_and_gather_add_p))
ad.def_transpose(select_and_gather_add_p, lambda ct, t, x, **params: [
    select_and_scatter_add_p.bind(ad.instantiate(ct), x, **params), None])
batching.def_batch(select_and_gather_add_p, _window_batch(select_and_gather_add_p))

select_and_scatter_add_p = Primitive("select_and_scatter_add")
select_and_scatter_add_p.def_impl(_select_and_scatter_add_impl)
select_and_scatter_add_p.def_abstract_eval(_select_and_scatter_add_abstract)
select_and_scatter_add_p.weak_type_rule = lambda weaks, **params: weaks[0]
ad.def_jvp(select_and_scatter_add_p, _linear_in_first(select_and_scatter_add_p))
ad.def_transpose(select_and_scatter_add_p, lambda ct, s, x, **params: [
    select_and_gather_add_p.bind(ad.instantiate(ct), x, **params), None])
batching.def_batch(select_and_scatter_add_p, _window_batch(select_and_scatter_add_p))


def _register_chooser_jvps() -> None:
    ad.defjvp(reduce_window_max_p, _chooser_jvp(ge_p))
    ad.defjvp(reduce_window_min_p, _chooser_jvp(le_p))


_register_chooser_jvps()


# --------------------------------------------------------------------------- wrappers

def _window_params(operand: Any, window_dimensions, window_strides, padding, base_dilation,
                   window_dilation, name: str) -> dict:
    shape = core.get_aval(operand).shape
    ints = lambda v, default: (default,) * len(shape) if v is None else tuple(int(i) for i in v)
    wd = ints(window_dimensions, 1)
    ws, bd, wdil = ints(window_strides, 1), ints(base_dilation, 1), ints(window_dilation, 1)
    if isinstance(padding, str):
        if len(wd) != len(shape) or len(bd) != len(shape) or len(wdil) != len(shape):
            raise TypeError(f"{name}: window_dimensions and dilations must have one entry per "
                            f"operand dimension ({len(shape)} for shape {shape})")
        # from the operand's own shape, not the base-dilated one: as JAX computes them
        padding = padtype_to_pads(shape, [_dilate(w, d) for w, d in zip(wd, wdil)], ws, padding)
    try:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: padding must be a string or (low, high) pairs, "
                        f"got {padding!r}") from e
    return dict(window_dimensions=wd, window_strides=ws, padding=pads, base_dilation=bd,
                window_dilation=wdil)


def _bind_checked(prim: Primitive, operand: Any, params: dict) -> Any:
    prim.abstract_eval(core.get_aval(operand), **params)  # eager evaluation runs no shape rule
    return prim.bind(operand, **params)


def _window_wrapper(prim):
    def op(operand: Any, window_dimensions: Sequence[int],
           window_strides: Sequence[int] | None = None,
           padding: Any = "VALID", base_dilation: Sequence[int] | None = None,
           window_dilation: Sequence[int] | None = None) -> Any:
        operand = as_operand(operand)
        return _bind_checked(prim, operand, _window_params(
            operand, window_dimensions, window_strides, padding, base_dilation, window_dilation,
            prim.name))
    doc = (f"Windowed {prim.name.rsplit('_', 1)[1]} (pooling): ``reduce_window`` with the "
           "matching monoid; padding is 'VALID', 'SAME', 'SAME_LOWER' or (low, high) pairs.")
    return public_op(op, prim.name, doc, __name__)


reduce_window_sum = _window_wrapper(reduce_window_sum_p)
reduce_window_max = _window_wrapper(reduce_window_max_p)
reduce_window_min = _window_wrapper(reduce_window_min_p)


def _is_identity(init: Any, dtype: np.dtype, kind: str) -> bool:
    value = core.get_aval(init)  # raises a clear error for non-arrays
    try:
        v = np.asarray(init).item()
    except Exception:  # a traced init value cannot be checked: only constants are supported
        return False
    if value.shape != ():
        return False
    if kind == "sum":
        return v == 0
    return v == _identity(dtype, kind == "max")


def reduce_window(operand: Any, init_value: Any, computation: Callable,
                  window_dimensions: Sequence[int], window_strides: Sequence[int] | None = None,
                  padding: Any = "VALID", base_dilation: Sequence[int] | None = None,
                  window_dilation: Sequence[int] | None = None) -> Any:
    """Reduce each window of ``operand`` with ``computation`` (``jax.lax.reduce_window``).

    Supported: ``lax.add`` with init 0, ``lax.max`` with init -inf (or the
    integer minimum), ``lax.min`` with init +inf (or the integer maximum) —
    sum, max and min pooling; padding is filled with ``init_value``.
    """
    operand = as_operand(operand)
    dtype = core.get_aval(operand).dtype
    kinds = {elementwise.add: "sum", elementwise.max: "max", elementwise.min: "min"}
    kind = kinds.get(computation)
    if kind is None or not _is_identity(init_value, dtype, kind):
        raise NotImplementedError(
            "reduce_window: only lax.add with init 0, lax.max with init -inf (or the integer "
            f"minimum) and lax.min with init +inf are supported, got {computation!r} with init "
            f"{init_value!r}")
    prim = {"sum": reduce_window_sum_p, "max": reduce_window_max_p,
            "min": reduce_window_min_p}[kind]
    return _bind_checked(prim, operand, _window_params(
        operand, window_dimensions, window_strides, padding, base_dilation, window_dilation,
        "reduce_window"))


__all__ = ['reduce_window', 'reduce_window_sum', 'reduce_window_sum_p', 'reduce_window_max',
           'reduce_window_max_p', 'reduce_window_min', 'reduce_window_min_p',
           'select_and_gather_add_p', 'select_and_scatter_add_p']
