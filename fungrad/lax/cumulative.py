"""Cumulative reductions: cumsum, cumprod, cummax, cummin, cumlogsumexp.

Each takes ``axis`` and ``reverse`` (scan from the end). The implementations
are single vectorised NumPy calls (``cumsum``, ``cumprod``, ``maximum.accumulate``,
``logaddexp.accumulate``); 16-bit floats accumulate in float32; cummax and cummin sign
their zeros as JAX does (a running maximum of -0 and +0 is +0).

Derivatives, as in JAX: ``cumsum`` is linear and its transpose is the reversed
cumsum. The others differentiate a parallel prefix scan
(``associative_scan``) of their combining function, so zeros (cumprod) and
ties (cummax: tangents split evenly, like ``max``) behave exactly as JAX's.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.core import Primitive
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax import _signed_zeros
from fungrad.lax._prim import INEXACT, NUMERIC, as_operand, check_dtypes, public_op
from fungrad.lax.reductions import checked_impl
from fungrad.lax.control_flow import associative_scan
from fungrad.lax.elementwise import add, eq, max as max_, min as min_, mul, ne, select, sub
from fungrad.lax.shapes import full, full_like
from fungrad.lax.transcendental import exp, log

_WIDEN = dtypes.half_floats


def _cumulative_impl(accumulate: Callable[..., Any]):
    def impl(xp, x, *, axis, reverse):
        out_dtype = x.dtype
        if x.dtype in _WIDEN:
            x = x.astype(np.float32)
        if reverse:
            x = xp.flip(x, axis)
        out = accumulate(xp, x, axis)
        if reverse:
            out = xp.flip(out, axis)
        return out.astype(out_dtype, copy=False)
    return impl


def _cumulative_abstract(name: str, kinds: str):
    def rule(x, *, axis, reverse):
        check_dtypes(name, [x], kinds)
        if not 0 <= axis < x.ndim:
            raise ValueError(f"{name}: axis {axis} is out of bounds for an array of shape "
                             f"{x.shape}")
        return x
    return rule


def _cumulative_batch(prim: Primitive):
    def rule(axis_size, vals, dims, *, axis, reverse):
        d = dims[0]
        return prim.bind(vals[0], axis=axis + (d <= axis), reverse=reverse), d
    return rule


def _accumulate(ufunc: str):
    """``ufunc.accumulate`` along an axis; array modules without it (CuPy) get a doubling
    scan: log2(n) vectorised steps, each combining every element with the one 2^k before."""
    def run(xp, x, axis):
        if xp is np:
            return getattr(xp, ufunc).accumulate(x, axis=axis)
        out, shift, n = x, 1, x.shape[axis]
        combine = getattr(xp, ufunc)
        while shift < n:
            head = xp.take(out, xp.arange(shift), axis=axis)
            tail = combine(xp.take(out, xp.arange(shift, n), axis=axis),
                           xp.take(out, xp.arange(n - shift), axis=axis))
            out = xp.concatenate([head, tail], axis=axis)
            shift *= 2
        return out
    return run


def _cumulative(name: str, accumulate: Callable[..., Any], kinds: str):
    prim = Primitive(name)
    prim.def_impl(checked_impl(name, _cumulative_impl(accumulate), kinds))
    prim.def_abstract_eval(_cumulative_abstract(name, kinds))
    batching.def_batch(prim, _cumulative_batch(prim))

    def op(operand: Any, axis: int = 0, reverse: bool = False) -> Any:
        operand = as_operand(operand)
        axis = canonicalize_axis(axis, core.get_aval(operand).ndim, name)
        return prim.bind(operand, axis=axis, reverse=bool(reverse))
    doc = (f"Cumulative {name[3:]} along ``axis`` (``jax.lax.{name}``); ``reverse`` scans "
           "from the end.")
    return prim, public_op(op, name, doc, __name__)


def _scan_jvp(combine: Callable[[Any, Any], Any]):
    """JVP of a cumulative op: differentiate the prefix scan of ``combine``."""
    def rule(primals, tangents, *, axis, reverse):
        scan = functools.partial(associative_scan, combine, axis=axis, reverse=reverse)
        (out,), (t_out,) = ad.jvp_fun(lambda x: [scan(x)], primals,
                                          [ad.instantiate(t) for t in tangents])
        return out, t_out
    return rule


# --------------------------------------------------------------------------- cumsum

def _cumsum_accumulate(xp, x, axis):
    """Running sums, each started from XLA's +0: a prefix of -0 alone sums to +0, where
    NumPy keeps the -0 (adding 0.0 changes no other value)."""
    out = xp.cumsum(x, axis=axis, dtype=x.dtype)
    return xp.add(out, 0.0, out=out) if out.dtype.kind in "fc" else out


cumsum_p, cumsum = _cumulative("cumsum", _cumsum_accumulate, NUMERIC)
ad.deflinear(cumsum_p, lambda ct, x, *, axis, reverse: [
    cumsum_p.bind(ad.instantiate(ct), axis=axis, reverse=not reverse)])


# ------------------------------------------------------------------ cumprod / cummax / cummin

cumprod_p, cumprod = _cumulative(
    "cumprod", lambda xp, x, axis: xp.cumprod(x, axis=axis, dtype=x.dtype), NUMERIC)
ad.def_jvp(cumprod_p, _scan_jvp(mul))

def _chooser_accumulate(is_max: bool):
    """``maximum.accumulate`` (or ``minimum``) with zeros signed as in JAX: a running
    maximum of zeros is +0 once any +0 has been seen (``_signed_zeros``)."""
    run, seen = _accumulate("maximum" if is_max else "minimum"), _accumulate("logical_or")

    def accumulate(xp, x, axis):
        return _signed_zeros.fix_reduced_zeros(xp, run(xp, x, axis), x, is_max,
                                               lambda mask: seen(xp, mask, axis))
    return accumulate


cummax_p, cummax = _cumulative("cummax", _chooser_accumulate(True), NUMERIC)
ad.def_jvp(cummax_p, _scan_jvp(max_))

cummin_p, cummin = _cumulative("cummin", _chooser_accumulate(False), NUMERIC)
ad.def_jvp(cummin_p, _scan_jvp(min_))


# --------------------------------------------------------------------------- cumlogsumexp

def _logaddexp_with_tangent(a: tuple, b: tuple) -> tuple:
    """The combine of (value, tangent) pairs: ``(logaddexp(x1, x2), t1 * exp(x1 - out) +
    t2 * exp(x2 - out))``, JAX's logaddexp rule (+inf is replaced by 0 in the weights).

    The value is written ``m + log(exp(x1 - m) + exp(x2 - m))`` with ``m = max(x1, x2)``:
    its derivative is exactly the softmax weights everywhere (the ``m`` terms cancel,
    also at ties), so second derivatives agree with JAX's custom rule.
    """
    (x1, t1), (x2, t2) = a, b
    inf = full((), np.inf, core.get_aval(x1).dtype)
    m = max_(x1, x2)
    delta = sub(x1, x2)
    smooth = add(m, log(add(exp(sub(x1, m)), exp(sub(x2, m)))))
    out = select(ne(delta, delta), add(x1, x2),  # NaNs, or infinities of one sign
                     select(eq(m, inf), m, smooth))
    finite = lambda v: select(eq(v, inf), full_like(v, 0), v)
    weight = lambda x: exp(sub(finite(x), finite(out)))
    return out, add(mul(t1, weight(x1)), mul(t2, weight(x2)))


def _cumlogsumexp_jvp(primals, tangents, *, axis, reverse):
    (x,), (t,) = primals, tangents
    out = cumlogsumexp_p.bind(x, axis=axis, reverse=reverse)
    _, t_out = associative_scan(_logaddexp_with_tangent, (x, ad.instantiate(t)),
                                reverse=reverse, axis=axis)
    return out, t_out


cumlogsumexp_p, cumlogsumexp = _cumulative(
    "cumlogsumexp", _accumulate("logaddexp"), INEXACT)
ad.def_jvp(cumlogsumexp_p, _cumlogsumexp_jvp)


__all__ = ['cumsum', 'cumsum_p', 'cumprod', 'cumprod_p', 'cummax', 'cummax_p', 'cummin',
           'cummin_p', 'cumlogsumexp', 'cumlogsumexp_p']
