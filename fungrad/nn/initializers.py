"""Parameter initialisers, as ``jax.nn.initializers``: ``init(key, shape, dtype) -> array``
(and JAX's ``out_sharding=``, the device to put the weights on).

They draw with ``fungrad.random`` exactly as JAX does, so the same key gives the same
weights as ``jax.nn.initializers``.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad import random
from fungrad._core import dtypes
from fungrad._core.namespace import public_dir
from fungrad.lax._placement import with_out_sharding

__all__ = ["Initializer", "zeros", "ones", "constant", "uniform", "normal", "truncated_normal",
           "compute_fans", "variance_scaling", "glorot_uniform", "xavier_uniform", "glorot_normal",
           "xavier_normal", "lecun_uniform", "lecun_normal", "he_uniform", "kaiming_uniform",
           "he_normal", "kaiming_normal", "orthogonal", "delta_orthogonal"]
__dir__ = public_dir(__all__)

Initializer = Callable[..., Any]


def _dtype(dtype: Any) -> Any:
    return dtypes.default_float_dtype() if dtype is None else dtype


def _initializer(name: str) -> Callable[[Callable[..., Any]], Initializer]:
    """Make ``init(key, shape, dtype)`` take JAX's ``out_sharding=None`` as well: the
    device to put the weights on (``fungrad/lax/_placement.py``). ``name`` names it in
    errors (``nn.initializers.normal``)."""
    def decorate(init: Callable[..., Any]) -> Initializer:
        signature = inspect.signature(init)
        placement = inspect.Parameter("out_sharding", inspect.Parameter.KEYWORD_ONLY,
                                      default=None)

        @functools.wraps(init)
        def placed(*args: Any, out_sharding: Any = None, **kwargs: Any) -> Any:
            out = init(*args, **kwargs)
            if out_sharding is None:
                return out
            return with_out_sharding(out, out_sharding, f"nn.initializers.{name}")
        placed.__signature__ = signature.replace(
            parameters=[*signature.parameters.values(), placement])
        return placed
    return decorate


@_initializer("zeros")
def zeros(key: Any, shape: Sequence[int], dtype: Any = None) -> Any:
    """An initialiser: zeros of ``shape`` (``key`` is unused, for a uniform signature)."""
    return jnp.zeros(shape, _dtype(dtype))


@_initializer("ones")
def ones(key: Any, shape: Sequence[int], dtype: Any = None) -> Any:
    """An initialiser: ones of ``shape`` (``key`` is unused, for a uniform signature)."""
    return jnp.ones(shape, _dtype(dtype))


def constant(value: Any, dtype: Any = None) -> Initializer:
    """An initialiser filling every element with ``value``."""
    return _initializer("constant")(
        lambda key, shape, dtype=dtype: jnp.full(shape, value, dtype=_dtype(dtype)))


def uniform(scale: float = 1e-2, dtype: Any = None) -> Initializer:
    """Uniform on ``[0, scale)``."""
    return _initializer("uniform")(
        lambda key, shape, dtype=dtype: (random.uniform(key, shape, _dtype(dtype))
                                         * jnp.array(scale, _dtype(dtype))))


def normal(stddev: float = 1e-2, dtype: Any = None) -> Initializer:
    """An initialiser drawing from a normal distribution with mean 0 and ``stddev``."""
    return _initializer("normal")(
        lambda key, shape, dtype=dtype: (random.normal(key, shape, _dtype(dtype))
                                         * jnp.array(stddev, _dtype(dtype))))


def truncated_normal(stddev: float = 1e-2, dtype: Any = None, lower: float = -2.0,
                     upper: float = 2.0) -> Initializer:
    """An initialiser drawing from a normal truncated to ``[lower, upper]`` standard
    deviations, then scaled by ``stddev`` (so the final spread is below ``stddev``)."""
    return _initializer("truncated_normal")(lambda key, shape, dtype=dtype: (
        random.truncated_normal(key, lower, upper, shape, _dtype(dtype))
        * jnp.array(stddev, _dtype(dtype))))


def _axes_size(shape: Sequence[int], axes: int | Sequence[int]) -> int:
    return shape[axes] if isinstance(axes, int) else math.prod(shape[a] for a in axes)


def compute_fans(shape: Sequence[int], in_axis: int | Sequence[int] = -2,
                 out_axis: int | Sequence[int] = -1, batch_axis: int | Sequence[int] = ()
                 ) -> tuple[float, float]:
    """Effective fan-in and fan-out; other axes count as the convolution's receptive field."""
    if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
        raise ValueError(f"cannot compute fans of a {len(shape)}-d weight with the default in_axis")
    in_size, out_size = _axes_size(shape, in_axis), _axes_size(shape, out_axis)
    receptive = math.prod(shape) / in_size / out_size / _axes_size(shape, batch_axis)
    return in_size * receptive, out_size * receptive


def variance_scaling(scale: float, mode: str, distribution: str, in_axis: int | Sequence[int] = -2,
                     out_axis: int | Sequence[int] = -1, batch_axis: int | Sequence[int] = (),
                     dtype: Any = None) -> Initializer:
    """Samples with variance ``scale / fan`` (``mode``: fan_in, fan_out, fan_avg, fan_geo_avg)."""
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError(f"variance_scaling: invalid distribution {distribution!r}")

    def init(key, shape, dtype=dtype):
        dtype = _dtype(dtype)
        fan_in, fan_out = compute_fans(tuple(shape), in_axis, out_axis, batch_axis)
        denominators = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
                        "fan_geo_avg": (fan_in * fan_out) ** 0.5}
        if mode not in denominators:
            raise ValueError(f"variance_scaling: invalid mode {mode!r}")
        variance = jnp.array(scale / denominators[mode], dtype=dtype)
        if distribution == "truncated_normal":
            stddev = jnp.sqrt(variance) / jnp.array(.87962566103423978, dtype)
            return random.truncated_normal(key, -2, 2, shape, dtype) * stddev
        if distribution == "normal":
            return random.normal(key, shape, dtype) * jnp.sqrt(variance)
        return random.uniform(key, shape, dtype, -1) * jnp.sqrt(3 * variance)
    return _initializer("variance_scaling")(init)


def _family(name: str, scale: float, mode: str, distribution: str) -> Callable[..., Initializer]:
    def make(in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
             batch_axis: int | Sequence[int] = (), dtype: Any = None) -> Initializer:
        return variance_scaling(scale, mode, distribution, in_axis, out_axis, batch_axis, dtype)
    make.__doc__ = (f"An initialiser: ``variance_scaling({scale}, {mode!r}, {distribution!r})``"
                    " over the given axes, as its namesake in ``jax.nn.initializers``.")
    make.__name__ = make.__qualname__ = name  # so that re-exports lead back here (API docs)
    return make


glorot_uniform = xavier_uniform = _family("glorot_uniform", 1.0, "fan_avg", "uniform")
glorot_normal = xavier_normal = _family("glorot_normal", 1.0, "fan_avg", "truncated_normal")
lecun_uniform = _family("lecun_uniform", 1.0, "fan_in", "uniform")
lecun_normal = _family("lecun_normal", 1.0, "fan_in", "truncated_normal")
he_uniform = kaiming_uniform = _family("he_uniform", 2.0, "fan_in", "uniform")
he_normal = kaiming_normal = _family("he_normal", 2.0, "fan_in", "truncated_normal")


def orthogonal(scale: float = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """A (scaled) orthogonal matrix, from the QR decomposition of a normal draw.

    The draw is bit-exact with JAX; the QR runs on the host, so call it eagerly (as one
    does to initialise parameters), not inside ``jit``.
    """
    def init(key, shape, dtype=dtype):
        dtype = _dtype(dtype)
        if len(shape) < 2:
            raise ValueError("orthogonal initializer requires at least a 2D shape")
        if any(d == 0 for d in shape):
            return jnp.zeros(shape, dtype)
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        rows, cols = max(n_rows, n_cols), min(n_rows, n_cols)
        try:
            z = np.asarray(random.normal(key, (rows, cols), dtype), np.float64)
        except TypeError as e:
            raise TypeError("orthogonal initializer: call it outside jit "
                            "(it uses a host QR)") from e
        q, r = np.linalg.qr(z)
        q = q * np.sign(np.diagonal(r))[None, :]
        if n_rows < n_cols:
            q = q.T
        q = np.reshape(q, tuple(np.delete(shape, column_axis)) + (n_cols,))
        return jnp.array(scale, dtype) * jnp.moveaxis(jnp.asarray(q.astype(dtype)), -1, column_axis)
    return _initializer("orthogonal")(init)


def delta_orthogonal(scale: float = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """A delta-orthogonal convolution kernel (Xiao et al. 2018, arXiv:1806.05393): zero
    everywhere but the spatial centre, which holds a (scaled) ``orthogonal`` matrix of shape
    ``shape[-2:]`` (in, out), so that the convolution starts out as an isometry.

    The shape must be 3D, 4D or 5D (1, 2 or 3 spatial dimensions, then in and out channels),
    with ``fan_in = shape[-2] <= fan_out = shape[-1]``. The centre is at ``(k - 1) // 2`` along
    each spatial axis of size ``k``. The matrix is ``orthogonal(scale, column_axis, dtype)``'s
    for the same key, so the kernel matches JAX's as ``orthogonal`` does; like it, call it
    eagerly, not inside ``jit``.
    """
    def init(key, shape, dtype=dtype):
        dtype = _dtype(dtype)
        shape = tuple(shape)
        if len(shape) not in (3, 4, 5):
            raise ValueError("delta_orthogonal initializer requires a 3D, 4D or 5D shape; "
                             f"got shape={shape}")
        if shape[-1] < shape[-2]:
            raise ValueError("delta_orthogonal initializer: `fan_in` must be less or equal "
                             f"than `fan_out`; got shape={shape} (fan_in={shape[-2]}, "
                             f"fan_out={shape[-1]})")
        matrix = orthogonal(scale=scale, column_axis=column_axis, dtype=dtype)(key, shape[-2:])
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        return jnp.zeros(shape, dtype).at[centre].set(matrix)
    return _initializer("delta_orthogonal")(init)
