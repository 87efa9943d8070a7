"""Layers as pure functions over params dicts: ``foo_init(key, ...) -> params`` and
``foo(params, x, ...) -> y``. Nothing hides state: batch norm returns its new running
statistics, dropout takes an explicit key."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad.nn import initializers as init
from fungrad.nn.functions import gelu, silu


# --------------------------------------------------------------------------- linear / embedding

def linear_init(key: Any, in_features: int, out_features: int, use_bias: bool = True,
                w_init: init.Initializer = init.lecun_normal(), dtype: Any = None) -> dict:
    """``{"w": (in, out), "b": (out,)}`` (LeCun-normal weights, zero bias by default)."""
    params = {"w": w_init(key, (in_features, out_features), dtype)}
    if use_bias:
        params["b"] = jnp.zeros((out_features,), dtype or jnp.float32)
    return params


def linear(params: dict, x: Any) -> Any:
    """``x @ w + b`` over the last axis of ``x``."""
    y = x @ params["w"]
    return y + params["b"] if "b" in params else y


def embedding_init(key: Any, num_embeddings: int, features: int,
                   e_init: init.Initializer = init.normal(1.0), dtype: Any = None) -> dict:
    """``{"embedding": (num_embeddings, features)}`` drawn with ``e_init`` (N(0, 1) by
    default, as ``flax.linen.Embed``)."""
    return {"embedding": e_init(key, (num_embeddings, features), dtype)}


def embedding(params: dict, ids: Any) -> Any:
    """Rows of the embedding table for integer ``ids`` (any shape)."""
    return jnp.take(params["embedding"], ids, axis=0)


def embedding_attend(params: dict, x: Any) -> Any:
    """The transposed use of an embedding: logits ``x @ E.T`` (tied output heads)."""
    return x @ params["embedding"].T


# --------------------------------------------------------------------------- normalisation

def norm_init(features: int, use_bias: bool = True, dtype: Any = None) -> dict:
    """Scale (ones) and bias (zeros) for layer/RMS/group/batch norm."""
    params = {"scale": jnp.ones((features,), dtype or jnp.float32)}
    if use_bias:
        params["bias"] = jnp.zeros((features,), dtype or jnp.float32)
    return params


def _affine(params: dict, y: Any) -> Any:
    y = y * params["scale"] if "scale" in params else y
    return y + params["bias"] if "bias" in params else y


def layer_norm(params: dict, x: Any, eps: float = 1e-5) -> Any:
    """Normalise over the last axis, then scale and shift."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return _affine(params, (x - mean) * lax.rsqrt(var + eps))


def rms_norm(params: dict, x: Any, eps: float = 1e-6) -> Any:
    """Divide by the root-mean-square over the last axis, then scale."""
    ms = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    return _affine(params, x * lax.rsqrt(ms + eps))


def group_norm(params: dict, x: Any, num_groups: int, eps: float = 1e-5) -> Any:
    """Normalise channels (last axis) in ``num_groups`` groups over all non-batch axes."""
    c = x.shape[-1]
    if c % num_groups:
        raise ValueError(f"group_norm: {c} channels are not divisible into {num_groups} groups")
    g = jnp.reshape(x, x.shape[:-1] + (num_groups, c // num_groups))
    axes = tuple(range(1, g.ndim - 2)) + (g.ndim - 1,)
    mean = jnp.mean(g, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(g - mean), axis=axes, keepdims=True)
    return _affine(params, jnp.reshape((g - mean) * lax.rsqrt(var + eps), x.shape))


class BatchNormState(NamedTuple):
    """Batch norm's running statistics, per feature: ``mean`` and ``var``."""

    mean: Any
    var: Any


def batch_norm_state(features: int) -> BatchNormState:
    """Fresh running statistics for ``features`` channels: mean 0, variance 1."""
    return BatchNormState(jnp.zeros((features,)), jnp.ones((features,)))


def batch_norm(params: dict, state: BatchNormState, x: Any, *, train: bool, momentum: float = 0.9,
               eps: float = 1e-5) -> tuple[Any, BatchNormState]:
    """Batch norm over all axes but the last. Returns ``(y, new_state)``.

    Training uses batch statistics and updates the running ones
    (``new = momentum * old + (1 - momentum) * batch``); evaluation uses the running ones.
    """
    axes = tuple(range(x.ndim - 1))
    if train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        state = BatchNormState(momentum * state.mean + (1 - momentum) * mean,
                               momentum * state.var + (1 - momentum) * var)
    else:
        mean, var = state.mean, state.var
    return _affine(params, (x - mean) * lax.rsqrt(var + eps)), state


# --------------------------------------------------------------------------- convolution / pooling

_LAYOUTS = {1: {"NWC": ("NWC", "WIO", "NWC"), "NCW": ("NCW", "OIW", "NCW")},
            2: {"NHWC": ("NHWC", "HWIO", "NHWC"), "NCHW": ("NCHW", "OIHW", "NCHW")}}


def conv_init(key: Any, in_channels: int, out_channels: int, kernel_size: Sequence[int],
              groups: int = 1, layout: str = "NHWC", use_bias: bool = True,
              w_init: init.Initializer | None = None, dtype: Any = None) -> dict:
    """Kernel for ``conv``: ``(*kernel_size, in/groups, out)`` for channels-last layouts,
    ``(out, in/groups, *kernel_size)`` for channels-first."""
    nd = len(kernel_size)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"conv_init: channels {in_channels}->{out_channels} not divisible by "
                         f"groups={groups}")
    channels_last = layout[-1] == "C"
    shape = (*kernel_size, in_channels // groups, out_channels) if channels_last else \
        (out_channels, in_channels // groups, *kernel_size)
    in_axis, out_axis = (nd, nd + 1) if channels_last else (1, 0)
    w_init = w_init or init.lecun_normal(in_axis=in_axis, out_axis=out_axis)
    params = {"w": w_init(key, shape, dtype)}
    if use_bias:
        params["b"] = jnp.zeros((out_channels,), dtype or jnp.float32)
    return params


def conv(params: dict, x: Any, stride: int | Sequence[int] = 1, padding: Any = "SAME",
         dilation: int | Sequence[int] = 1, groups: int = 1, layout: str = "NHWC") -> Any:
    """1-D or 2-D convolution in layout NWC/NCW/NHWC/NCHW (with ``groups``, dilation)."""
    nd = len(layout) - 2
    if nd not in _LAYOUTS or layout not in _LAYOUTS[nd]:
        raise ValueError(f"conv: unsupported layout {layout!r}")
    tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)
    y = lax.conv_general_dilated(x, params["w"], tup(stride), padding, rhs_dilation=tup(dilation),
                                 dimension_numbers=_LAYOUTS[nd][layout], feature_group_count=groups)
    if "b" in params:
        bshape = [1] * y.ndim
        bshape[layout.index("C")] = -1
        y = y + jnp.reshape(params["b"], bshape)
    return y


def causal_conv1d(params: dict, x: Any) -> Any:
    """Depthwise causal 1-D convolution over time, channels last (as in Mamba).

    ``params["w"]`` has shape ``(kernel, 1, channels)``; output ``t`` sees inputs ``<= t``.
    """
    k, channels = params["w"].shape[0], x.shape[-1]
    return conv(params, x, padding=[(k - 1, 0)], groups=channels, layout="NWC")


def _pool(x: Any, init_value: Any, computation: Any, window: Sequence[int],
          strides: Sequence[int] | None, padding: Any, layout: str) -> Any:
    spatial = [i for i, c in enumerate(layout) if c not in "NC"]
    dims, strd = [1] * x.ndim, [1] * x.ndim
    for i, w, s in zip(spatial, window, strides or window):
        dims[i], strd[i] = w, s
    if not isinstance(padding, str):
        full = [(0, 0)] * x.ndim
        for i, p in zip(spatial, padding):
            full[i] = tuple(p)
        padding = full
    return lax.reduce_window(x, init_value, computation, tuple(dims), tuple(strd), padding)


def max_pool(x: Any, window: Sequence[int], strides: Sequence[int] | None = None,
             padding: Any = "VALID", layout: str = "NHWC") -> Any:
    """Maximum over windows of the spatial axes."""
    return _pool(x, -jnp.inf, lax.max, window, strides, padding, layout)


def avg_pool(x: Any, window: Sequence[int], strides: Sequence[int] | None = None,
             padding: Any = "VALID", layout: str = "NHWC") -> Any:
    """Mean over windows of the spatial axes (padding counts as zeros, as in flax)."""
    total = _pool(x, 0.0, lax.add, window, strides, padding, layout)
    size = 1
    for w in window:
        size *= w
    return total / size


def global_avg_pool(x: Any, layout: str = "NHWC") -> Any:
    """The mean over every spatial axis of ``layout`` (all but ``N`` and ``C``)."""
    return jnp.mean(x, axis=tuple(i for i, c in enumerate(layout) if c not in "NC"))


def global_max_pool(x: Any, layout: str = "NHWC") -> Any:
    """The maximum over every spatial axis of ``layout`` (all but ``N`` and ``C``)."""
    return jnp.max(x, axis=tuple(i for i, c in enumerate(layout) if c not in "NC"))


# --------------------------------------------------------------------------- dropout / MLPs

def dropout(key: Any, x: Any, rate: float, train: bool = True) -> Any:
    """Zero elements with probability ``rate`` and rescale the rest; identity when not training."""
    if not train or rate == 0.0:
        return x
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    if key is None:
        raise ValueError("dropout: training needs an explicit PRNG key")
    keep = random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def mlp_init(key: Any, features: int, hidden: int, out_features: int | None = None,
             use_bias: bool = True) -> dict:
    """Params of ``mlp``: ``fc_in`` (features -> hidden) and ``fc_out`` (hidden ->
    ``out_features``, default ``features``)."""
    k1, k2 = random.split(key)
    return {"fc_in": linear_init(k1, features, hidden, use_bias),
            "fc_out": linear_init(k2, hidden, out_features or features, use_bias)}


def mlp(params: dict, x: Any, activation: Callable = gelu) -> Any:
    """``fc_out(activation(fc_in(x)))``."""
    return linear(params["fc_out"], activation(linear(params["fc_in"], x)))


def swiglu_init(key: Any, features: int, hidden: int) -> dict:
    """Params of ``swiglu``: bias-free ``gate`` and ``up`` (features -> hidden) and ``down``
    (hidden -> features)."""
    k1, k2, k3 = random.split(key, 3)
    return {"gate": linear_init(k1, features, hidden, False),
            "up": linear_init(k2, features, hidden, False),
            "down": linear_init(k3, hidden, features, False)}


def swiglu(params: dict, x: Any) -> Any:
    """SwiGLU feed-forward (LLaMA): ``down(silu(gate(x)) * up(x))``."""
    return linear(params["down"], silu(linear(params["gate"], x)) * linear(params["up"], x))


class Layer(NamedTuple):
    """A layer as a pair of pure functions: ``init(key) -> params``, ``apply(params, x) -> y``."""
    init: Callable[[Any], Any]
    apply: Callable[[Any, Any], Any]


def sequential(*layers: Layer) -> Layer:
    """Compose layers: params are a list, one entry per layer; apply runs them in order."""
    def init_fn(key):
        keys = random.split(key, len(layers))
        return [layer.init(k) for layer, k in zip(layers, keys)]

    def apply_fn(params, x):
        if len(params) != len(layers):
            raise ValueError(f"sequential: {len(layers)} layers but {len(params)} params entries")
        for layer, p in zip(layers, params):
            x = layer.apply(p, x)
        return x
    return Layer(init_fn, apply_fn)
