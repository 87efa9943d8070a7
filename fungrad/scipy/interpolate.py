"""``fungrad.scipy.interpolate`` (``jax.scipy.interpolate``): ``RegularGridInterpolator``,
linear or nearest interpolation on a rectangular grid, as SciPy's.

The cell of each query point is found with ``searchsorted`` along every axis; linear
interpolation sums the ``2**N`` corners of the cell weighted by the products of the
normalised distances. The interpolator is a pytree (grid, values and fill value are its
leaves), so it can be passed to ``jit``-ted functions and differentiated in its values.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad import tree
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import ensure_arraylike, promote_dtypes_inexact

__all__ = ["RegularGridInterpolator"]
__dir__ = public_dir(__all__)

_METHODS = ("linear", "nearest")


def _points_array(xi: Any, ndim: int) -> Any:
    """The query points as one ``(..., ndim)`` array: a tuple of coordinate arrays is
    broadcast and stacked, a 1-D array is read as points of ``ndim`` coordinates."""
    if isinstance(xi, tuple) and len(xi) == 1:
        xi = xi[0]
    if isinstance(xi, tuple):
        parts = jnp.broadcast_arrays(*[ensure_arraylike("RegularGridInterpolator", c)
                                       for c in xi])
        return jnp.stack([p.astype(jnp.result_type(float)) for p in parts], axis=-1)
    xi = ensure_arraylike("RegularGridInterpolator", xi)
    return xi.reshape(-1, ndim) if xi.ndim == 1 else xi


class RegularGridInterpolator:
    """Interpolate values given on a rectangular grid
    (``jax.scipy.interpolate.RegularGridInterpolator``).

    Args:
      points: N arrays, the strictly increasing grid coordinates along each axis (a
        decreasing axis gives wrong results, as in JAX).
      values: the values on the grid, of shape ``(len(points[0]), ..., len(points[N-1]),
        *trailing)``; promoted to a floating dtype.
      method: ``"linear"`` or ``"nearest"``.
      bounds_error: must be False: an error cannot depend on traced values.
      fill_value: the value at points outside the grid (NaN by default); None extrapolates.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.scipy.interpolate import RegularGridInterpolator
        >>> f = RegularGridInterpolator((jnp.array([1., 2., 3.]), jnp.array([4., 5., 6.])),
        ...                             jnp.array([[10., 20., 30.], [40., 50., 60.],
        ...                                        [70., 80., 90.]]))
        >>> f(jnp.array([[1.5, 4.5], [2.2, 5.8]]))
        Array([30., 64.], dtype=float32)
    """

    def __init__(self, points: Sequence[Any], values: Any, method: str = "linear",
                 bounds_error: bool = False, fill_value: Any = np.nan) -> None:
        if method not in _METHODS:
            raise ValueError(f"method {method!r} is not defined")
        if bounds_error:
            raise NotImplementedError("`bounds_error` takes no effect under JIT")
        self.method = method
        self.bounds_error = bounds_error
        values = ensure_arraylike("RegularGridInterpolator", values)
        if len(points) > values.ndim:
            raise ValueError(f"there are {len(points)} point arrays, but values has "
                             f"{values.ndim} dimensions")
        values, = promote_dtypes_inexact(values)
        if fill_value is not None:
            fill_value = jnp.asarray(ensure_arraylike("RegularGridInterpolator", fill_value))
            if not jnp.can_cast(fill_value.dtype, values.dtype, casting="same_kind"):
                raise ValueError("fill_value must be either 'None' or of a type compatible "
                                 "with values")
        self.fill_value = fill_value
        self.grid = tuple(ensure_arraylike("RegularGridInterpolator", p) for p in points)
        self.values = values

    def __call__(self, xi: Any, method: str | None = None) -> Any:
        """The interpolated values at the points ``xi`` (an ``(..., N)`` array or a tuple of
        N coordinate arrays); the result has shape ``xi.shape[:-1] + trailing``."""
        method = self.method if method is None else method
        if method not in _METHODS:
            raise ValueError(f"method {method!r} is not defined")
        ndim = len(self.grid)
        xi = _points_array(xi, ndim)
        if xi.shape[-1] != ndim:
            raise ValueError(f"the requested sample points xi have dimension {xi.shape[-1]}, "
                             f"but this RegularGridInterpolator has dimension {ndim}")
        lead = xi.shape[:-1]
        xi = xi.reshape(-1, ndim)
        indices, distances, outside = self._find_indices(xi.T)
        if method == "linear":
            result = self._evaluate_linear(indices, distances)
        else:
            result = self.values[tuple(jnp.where(d <= .5, i, i + 1)
                                       for i, d in zip(indices, distances))]
        if self.fill_value is not None:
            mask = outside.reshape(outside.shape + (1,) * (result.ndim - 1))
            result = jnp.where(mask, self.fill_value, result)
        return result.reshape(lead + self.values.shape[ndim:])

    def _evaluate_linear(self, indices: list, distances: list) -> Any:
        trailing = (slice(None),) + (None,) * (self.values.ndim - len(indices))
        result = jnp.asarray(0.)
        for corner in itertools.product(*[[i, i + 1] for i in indices]):
            weight = jnp.asarray(1.)
            for c, i, d in zip(corner, indices, distances):
                weight = weight * jnp.where(c == i, 1 - d, d)
            result = result + self.values[corner] * weight[trailing]
        return result

    def _find_indices(self, xi: Any) -> tuple[list, list, Any]:
        """Per axis, the lower corner's index and the normalised distance from it; and which
        points are outside the grid."""
        indices, distances = [], []
        outside = jnp.zeros((xi.shape[1],), dtype=bool)
        for x, g in zip(xi, self.grid):
            i = jnp.clip(jnp.searchsorted(g, x) - 1, 0, g.size - 2)
            indices.append(i)
            distances.append((x - g[i]) / (g[i + 1] - g[i]))
            outside = outside | (x < g[0]) | (x > g[-1])
        return indices, distances, outside


tree.register_pytree_node(
    RegularGridInterpolator,
    lambda f: ((f.grid, f.values, f.fill_value), (f.method, f.bounds_error)),
    lambda aux, children: RegularGridInterpolator(*children[:2], *aux, *children[2:]))
