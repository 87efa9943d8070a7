"""``logsumexp``: ``log(sum(b * exp(a)))`` computed stably, shifted by the maximum.

Its home is here, below ``fungrad.nn`` (which exports it as ``nn.logsumexp``, with
``scipy.special``) and beside the reductions, so that ``jnp.logaddexp.reduce`` is the same
function.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad.numpy._reductions import max as _max, sum as _sum
from fungrad.numpy._ufuncs_math import isfinite, real
from fungrad.numpy._util import (aval, canonicalize_axes, full_like, promote_args_inexact,
                                 scalar_like, where as _where)


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, where: Any = None) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis``, computed stably (shifted by the max).

    With ``return_sign`` returns ``(log|sum|, sign(sum))``; otherwise a negative sum gives
    NaN. ``where`` masks out elements.
    """
    if b is not None:
        a, b = promote_args_inexact("logsumexp", a, b)
        a = _where(lax.ne(b, scalar_like(0, b)), a, scalar_like(-np.inf, a))
    else:
        a, = promote_args_inexact("logsumexp", a)
    if where is not None:
        a = _where(where, a, scalar_like(0, a))
    axes = canonicalize_axes(axis, aval(a).ndim, "logsumexp")
    amax = _max(real(a), axis=axes, keepdims=keepdims, where=where, initial=-np.inf)
    amax = lax.stop_gradient(lax.select(isfinite(amax), amax, full_like(amax, 0)))
    amax_dims = amax if keepdims else lax.expand_dims(amax, axes)
    exp_a = lax.exp(lax.sub(a, lax.convert_element_type(amax_dims, aval(a).dtype)))
    if b is not None:
        exp_a = lax.mul(exp_a, b)
    sumexp = _sum(exp_a, axis=axes, keepdims=keepdims, where=where)
    sign = lax.sign(sumexp)
    if return_sign or aval(sumexp).dtype.kind != "c":
        sumexp = lax.abs(sumexp)
    out = lax.add(lax.log(sumexp), lax.convert_element_type(amax, aval(sumexp).dtype))
    if return_sign:
        return out, sign
    if b is not None and aval(out).dtype.kind != "c":
        out = _where(lax.lt(sign, scalar_like(0, sign)), scalar_like(np.nan, out), out)
    return out


__all__ = ["logsumexp"]
