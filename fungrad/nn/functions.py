"""Activation functions and friends (the ``jax.nn`` functional API), as composites of
``fungrad.numpy``/``fungrad.lax``.

Custom JVPs are used only where numerics or speed demand them: ``relu``/``relu6`` (derivative 0
at the kinks, as in JAX), ``softmax`` (a cheaper, exact tangent ``y * (t - sum(y t))``) and the
tanh ``gelu`` (its slope as one saved factor: fewer passes over the activations in a train step).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad._core import dtypes
from fungrad.numpy._util import (aval, canonicalize_axis, check_user_dtype,
                                 ensure_arraylike, full_like, promote_args_inexact, scalar_like,
                                 static_int)
from fungrad.numpy._logsumexp import logsumexp
from fungrad.numpy._util import where as _where
from fungrad.transforms.custom_derivatives import custom_jvp


@custom_jvp
def relu(x: Any) -> Any:
    """Rectified linear unit ``max(x, 0)``; its derivative at 0 is 0 (as in JAX)."""
    return jnp.maximum(x, 0)


relu.defjvps(lambda g, ans, x: lax.select(jnp.greater(x, 0), g, full_like(g, 0)))


@custom_jvp
def relu6(x: Any) -> Any:
    """``min(max(x, 0), 6)``; derivative 0 at both kinks."""
    return jnp.minimum(jnp.maximum(x, 0), 6.0)


relu6.defjvps(lambda g, ans, x: lax.select(
    jnp.logical_and(jnp.greater(x, 0), jnp.less(x, 6)), g, full_like(g, 0)))


def identity(x: Any) -> Any:
    """The identity activation."""
    return ensure_arraylike("identity", x)


def sigmoid(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))`` (floating-point inputs, as in JAX)."""
    x = ensure_arraylike("sigmoid", x)
    if not dtypes.is_inexact(aval(x).dtype):
        raise TypeError(f"sigmoid (lax.logistic) does not accept dtype {aval(x).dtype.name}; "
                        "accepted dtypes are floating and complex")
    return lax.logistic(x)


def hard_sigmoid(x: Any) -> Any:
    """``relu6(x + 3) / 6``."""
    return jnp.divide(relu6(jnp.add(x, 3.0)), 6.0)


def silu(x: Any) -> Any:
    """SiLU / swish: ``x * sigmoid(x)``."""
    x = ensure_arraylike("silu", x)
    return jnp.multiply(x, sigmoid(x))


swish = silu


def hard_silu(x: Any) -> Any:
    """``x * hard_sigmoid(x)``."""
    x = ensure_arraylike("hard_silu", x)
    return jnp.multiply(x, hard_sigmoid(x))


hard_swish = hard_silu


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` computed stably."""
    return jnp.logaddexp(x, 0)


def sparse_plus(x: Any) -> Any:
    """The sparse twin of ``softplus`` (Blondel et al., Learning with Fenchel-Young losses,
    2020): 0 for ``x <= -1``, ``x`` for ``x >= 1`` and ``(x + 1)**2 / 4`` between, so
    smooth, convex and monotonic with exact zeros."""
    x = ensure_arraylike("sparse_plus", x)
    return _where(x <= -1.0, 0.0, _where(x >= 1.0, x, (x + 1.0) ** 2 / 4))


def sparse_sigmoid(x: Any) -> Any:
    """The derivative of ``sparse_plus``: ``clip(x + 1, 0, 2) / 2``, the sparse twin of
    ``sigmoid`` (exactly 0 below -1 and 1 above 1)."""
    x = ensure_arraylike("sparse_sigmoid", x)
    return 0.5 * jnp.clip(x + 1.0, 0.0, 2.0)


@custom_jvp
def log1mexp(x: Any) -> Any:
    """``log(1 - exp(-x))`` for ``x >= 0``, accurate everywhere (Maechler 2012): through
    ``expm1`` below ``log 2`` and ``log1p`` above, where the other form loses digits.
    Its derivative is ``1 / expm1(x)``.

    >>> round(float(log1mexp(1e-8)), 4)  # log(1e-8), where log(1 - exp(-x)) loses it all
    -18.4207
    """
    x = ensure_arraylike("log1mexp", x)
    return _where(x < jnp.log(2.0), jnp.log(-jnp.expm1(-x)), jnp.log1p(-jnp.exp(-x)))


log1mexp.defjvps(lambda g, ans, x: g / jnp.expm1(x))


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x)) = -softplus(-x)``."""
    x = ensure_arraylike("log_sigmoid", x)
    return jnp.negative(softplus(jnp.negative(x)))


def soft_sign(x: Any) -> Any:
    """``x / (|x| + 1)``."""
    x = ensure_arraylike("soft_sign", x)
    return jnp.divide(x, jnp.add(jnp.abs(x), 1))


def mish(x: Any) -> Any:
    """``x * tanh(softplus(x))``."""
    x = ensure_arraylike("mish", x)
    return jnp.multiply(x, jnp.tanh(softplus(x)))


def squareplus(x: Any, b: Any = 4) -> Any:
    """``(x + sqrt(x^2 + b)) / 2``, a smooth relu."""
    x, b = ensure_arraylike("squareplus", x, b)
    return jnp.divide(jnp.add(x, jnp.sqrt(jnp.add(jnp.square(x), b))), 2)


def elu(x: Any, alpha: Any = 1.0) -> Any:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    x = ensure_arraylike("elu", x)
    positive = jnp.greater(x, 0)
    return jnp.where(positive, x, jnp.multiply(alpha, jnp.expm1(jnp.where(positive, 0.0, x))))


def celu(x: Any, alpha: Any = 1.0) -> Any:
    """Continuously differentiable ELU: ``max(x, 0) + alpha * expm1(min(x, 0) / alpha)``."""
    return jnp.add(jnp.maximum(x, 0.0),
                   jnp.multiply(alpha, jnp.expm1(jnp.divide(jnp.minimum(x, 0.0), alpha))))


def selu(x: Any) -> Any:
    """Scaled ELU with the self-normalising constants."""
    return jnp.multiply(1.0507009873554805, elu(x, 1.6732632423543772))


def leaky_relu(x: Any, negative_slope: Any = 0.01) -> Any:
    """``x`` for ``x >= 0``, else ``negative_slope * x``."""
    x = ensure_arraylike("leaky_relu", x)
    return jnp.where(jnp.greater_equal(x, 0), x, jnp.multiply(negative_slope, x))


def hard_tanh(x: Any) -> Any:
    """``x`` clipped to ``[-1, 1]``."""
    x = ensure_arraylike("hard_tanh", x)
    return jnp.where(jnp.greater(x, 1), 1, jnp.where(jnp.less(x, -1), -1, x))


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return jnp.tanh(x)


def gelu(x: Any, approximate: bool = True) -> Any:
    """Gaussian error linear unit: the tanh approximation by default, exact with ``erf``
    (``approximate=False``)."""
    x, = promote_args_inexact("gelu", x)
    if approximate:
        return _gelu_tanh(x)
    half = lax.convert_element_type(np.sqrt(0.5), aval(x).dtype)
    return lax.mul(lax.mul(scalar_like(0.5, x), x), lax.erfc(lax.mul(lax.neg(x), half)))


def _gelu_tanh_parts(x: Any) -> tuple[Any, Any, Any]:
    """``x * cdf`` with ``cdf = (1 + t) / 2``, ``t = tanh(c (x + 0.044715 x^3))``, in JAX's
    order of operations (so the values are JAX's); also ``cdf`` and ``t``."""
    c = lax.convert_element_type(np.sqrt(2 / np.pi), aval(x).dtype)
    inner = lax.mul(c, lax.add(x, lax.mul(scalar_like(0.044715, x), lax.integer_pow(x, 3))))
    t = lax.tanh(inner)
    cdf = lax.mul(scalar_like(0.5, x), lax.add(scalar_like(1.0, x), t))
    return lax.mul(x, cdf), cdf, t


@custom_jvp
def _gelu_tanh(x: Any) -> Any:
    return _gelu_tanh_parts(x)[0]


@_gelu_tanh.defjvp
def _gelu_tanh_jvp(primals: tuple, tangents: tuple) -> tuple[Any, Any]:
    """The slope ``cdf + x (1 - t^2) c (1 + 3 * 0.044715 x^2) / 2`` as one factor of the
    tangent: reverse mode then saves that one array and multiplies once, where the
    derivative traced through the formula saves four and takes eleven passes."""
    (x,), (dx,) = primals, tangents
    y, cdf, t = _gelu_tanh_parts(x)
    c = lax.convert_element_type(np.sqrt(2 / np.pi) / 2, aval(x).dtype)
    x2 = lax.integer_pow(x, 2)
    cubic = lax.add(scalar_like(1.0, x), lax.mul(scalar_like(3 * 0.044715, x), x2))
    sech2 = lax.sub(scalar_like(1.0, x), lax.mul(t, t))
    slope = lax.add(cdf, lax.mul(lax.mul(lax.mul(c, x), sech2), cubic))
    return y, lax.mul(slope, dx)


def glu(x: Any, axis: int = -1) -> Any:
    """Gated linear unit: the first half of ``axis`` times the sigmoid of the second."""
    x = ensure_arraylike("glu", x)
    axis = canonicalize_axis(axis, aval(x).ndim, "glu")
    if aval(x).shape[axis] % 2:
        raise ValueError(f"glu: axis {axis} size {aval(x).shape[axis]} must be even")
    x1, x2 = jnp.split(x, 2, axis)
    return jnp.multiply(x1, sigmoid(x2))


# --------------------------------------------------------------------------- softmax

def _softmax_fn(x: Any, axis: Any, where: Any, initial: Any) -> Any:
    x_max = jnp.max(x, axis, where=where, initial=initial, keepdims=True)
    x_safe = x if where is None else jnp.where(where, x, initial)
    unnormalized = jnp.exp(jnp.subtract(x_safe, x_max))
    result = jnp.divide(unnormalized, jnp.sum(unnormalized, axis, where=where, keepdims=True))
    return result if where is None else jnp.where(where, result, 0)


_softmax = custom_jvp(_softmax_fn, nondiff_argnums=(1,))


@_softmax.defjvp
def _softmax_jvp(axis: Any, primals: Any, tangents: Any) -> Any:
    (x, where, initial), (x_dot, _, _) = primals, tangents
    y = _softmax(x, axis, where, initial)
    inner = jnp.sum(jnp.multiply(y, x_dot), axis, where=where, keepdims=True)
    return y, jnp.multiply(y, jnp.subtract(x_dot, inner))


def _axis_key(axis: Any, ndim: int, fname: str) -> Any:
    """A hashable, non-negative form of ``axis`` (a static argument of ``_softmax``)."""
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(canonicalize_axis(a, ndim, fname) for a in axis)
    return canonicalize_axis(axis, ndim, fname)


def softmax(x: Any, axis: Any = -1, where: Any = None) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the max for stability.

    ``where`` masks elements out (they get probability 0).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import nn
        >>> nn.softmax(jnp.array([0.0, 0.0, jnp.log(2.0)]))
        Array([0.25, 0.25, 0.5 ], dtype=float32)
    """
    x, = promote_args_inexact("softmax", ensure_arraylike("softmax", x))
    return _softmax(x, _axis_key(axis, aval(x).ndim, "softmax"), where, -np.inf)


def log_softmax(x: Any, axis: Any = -1, where: Any = None) -> Any:
    """``x - logsumexp(x)`` along ``axis`` (masked elements give -inf)."""
    x, = promote_args_inexact("log_softmax", ensure_arraylike("log_softmax", x))
    axis = _axis_key(axis, aval(x).ndim, "log_softmax")
    x_max = jnp.max(x, axis, where=where, initial=-np.inf, keepdims=True)
    x_safe = x if where is None else jnp.where(where, x, -np.inf)
    shifted = jnp.subtract(x_safe, lax.stop_gradient(x_max))
    shifted_lse = jnp.log(jnp.sum(jnp.exp(shifted), axis, where=where, keepdims=True))
    result = jnp.subtract(shifted, shifted_lse)
    return result if where is None else jnp.where(where, result, -np.inf)


def logmeanexp(x: Any, axis: Any = None, where: Any = None, keepdims: bool = False) -> Any:
    """``log(mean(exp(x)))`` computed stably."""
    x = ensure_arraylike("logmeanexp", x)
    lse = logsumexp(x, axis=axis, where=where, keepdims=keepdims)
    if where is None:
        axes = tuple(range(aval(x).ndim)) if axis is None else (
            tuple(axis) if isinstance(axis, (tuple, list)) else (axis,))
        count = int(np.prod([aval(x).shape[a] for a in axes]))
        return jnp.subtract(lse, np.log(count).astype(np.float32).item())
    count = jnp.sum(jnp.broadcast_to(where, aval(x).shape), axis=axis, keepdims=keepdims,
                    dtype=aval(lse).dtype)
    return jnp.subtract(lse, jnp.log(count))


def standardize(x: Any, axis: Any = -1, mean: Any = None, variance: Any = None,
                epsilon: Any = 1e-5, where: Any = None, *, algorithm: str = "fast") -> Any:
    """``(x - mean) / sqrt(variance + epsilon)`` along ``axis`` (statistics computed when
    not given). ``algorithm`` 'fast' (JAX's default) takes the variance as
    ``mean(x**2) - mean**2`` clipped at 0; 'stable' as ``mean((x - mean)**2)``, which keeps
    its precision when the mean is large against the spread."""
    x = ensure_arraylike("standardize", x)
    if mean is None:
        mean = jnp.mean(x, axis, keepdims=True, where=where)
    if variance is None:
        if algorithm == "stable":
            variance = jnp.mean(jnp.square(jnp.subtract(x, mean)), axis, keepdims=True,
                                where=where)
        elif algorithm == "fast":
            variance = jnp.clip(jnp.subtract(jnp.mean(jnp.square(x), axis, keepdims=True,
                                                      where=where), jnp.square(mean)), 0)
        else:
            raise ValueError(f"standardize: unknown algorithm {algorithm!r}; expected 'fast' "
                             "or 'stable'")
    return jnp.multiply(jnp.subtract(x, mean), lax.rsqrt(jnp.add(variance, epsilon)))


def one_hot(x: Any, num_classes: int, *, dtype: Any = None, axis: int = -1) -> Any:
    """One-hot encoding of the integers ``x`` into ``num_classes`` along a new ``axis``
    (out-of-range values give all-zero rows).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import nn
        >>> nn.one_hot(jnp.array([0, 2]), 3)
        Array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    num_classes = static_int(num_classes, "one_hot: num_classes")
    x = jnp.asarray(x)
    dtype = check_user_dtype(dtype, "one_hot") or dtypes.default_float_dtype()
    out_axis = canonicalize_axis(axis, aval(x).ndim + 1, "one_hot")
    lhs = lax.expand_dims(x, (out_axis,))
    rhs_shape = [1] * aval(x).ndim
    rhs_shape.insert(out_axis, num_classes)
    rhs = lax.broadcasted_iota(aval(x).dtype, tuple(rhs_shape), out_axis)
    return lax.convert_element_type(jnp.equal(lhs, rhs), dtype)


__all__ = ["relu", "relu6", "identity", "sigmoid", "hard_sigmoid", "silu", "swish",
           "hard_silu", "hard_swish", "softplus", "sparse_plus", "sparse_sigmoid",
           "log1mexp", "log_sigmoid", "soft_sign", "mish",
           "squareplus", "elu", "celu", "selu", "leaky_relu", "hard_tanh", "tanh", "gelu",
           "glu", "softmax", "log_softmax", "logsumexp", "logmeanexp", "standardize",
           "one_hot"]
