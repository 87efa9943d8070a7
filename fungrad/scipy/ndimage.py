"""``fungrad.scipy.ndimage`` (``jax.scipy.ndimage``): ``map_coordinates``, interpolation of
an N-dimensional array at arbitrary coordinates.

Each coordinate axis contributes one (order 0) or two (order 1) integer nodes with their
weights; the result sums, over every combination of nodes, the product of the weights times
the gathered input value. Out-of-range node indices are mapped back into the array by the
boundary ``mode`` (or, for ``"constant"``, replaced by ``cval``), so the whole computation is
gathers and arithmetic: it differentiates in ``input`` and in the coordinates, batches and
compiles like any composite.
"""
from __future__ import annotations

import functools
import itertools
import operator
from typing import Any, Callable, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import ensure_arraylike

__all__ = ["map_coordinates"]
__dir__ = public_dir(__all__)


def _mirror(index: Any, size: int) -> Any:
    """Reflect about the edge pixels' centres: ``-1 -> 1``, ``size -> size - 2``."""
    period = size - 1  # a triangle wave of half-period size - 1
    return jnp.abs((index + period) % (2 * period) - period)


def _reflect(index: Any, size: int) -> Any:
    """Reflect about the edges: ``-1 -> 0``, ``size -> size - 1``."""
    return jnp.floor_divide(_mirror(2 * index + 1, 2 * size + 1) - 1, 2)


_MODES: dict[str, Callable[[Any, int], Any]] = {
    "constant": lambda index, size: index,
    "nearest": lambda index, size: jnp.clip(index, 0, size - 1),
    "wrap": lambda index, size: index % size,
    "mirror": _mirror,
    "reflect": _reflect,
}


def _round(x: Any) -> Any:
    """Round half away from zero (integers as they are)."""
    return x if jnp.issubdtype(x.dtype, np.integer) else lax.round(x)


def _nodes(coordinate: Any, order: int) -> list[tuple[Any, Any]]:
    """``(index, weight)`` pairs of one coordinate array."""
    if order == 0:
        return [(_round(coordinate).astype(np.int32), coordinate.dtype.type(1))]
    lower = jnp.floor(coordinate)
    upper_weight = coordinate - lower
    index = lower.astype(np.int32)
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


def map_coordinates(input: Any, coordinates: Sequence[Any], order: int,  # noqa: A002
                    mode: str = "constant", cval: Any = 0.0) -> Any:
    """Interpolate ``input`` at ``coordinates`` (``jax.scipy.ndimage.map_coordinates``).

    Args:
      input: the N-dimensional array to interpolate.
      coordinates: N arrays of one shape, the positions along each axis; the result has
        their shape.
      order: 0 (nearest, rounding half away from zero) or 1 (linear).
      mode: how a position outside the array is read: ``"constant"`` (``cval``; SciPy's
        ``"grid-constant"``), ``"nearest"`` (the edge value), ``"wrap"`` (periodic; SciPy's
        ``"grid-wrap"``), ``"mirror"`` (reflected about the edge pixels) or ``"reflect"``
        (reflected about the edges).
      cval: the value outside the array in ``"constant"`` mode.

    Integer inputs give integer results, rounded half away from zero.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.scipy.ndimage import map_coordinates
        >>> image = jnp.arange(12.0).reshape(3, 4)
        >>> map_coordinates(image, [jnp.array([0.5, 1.5]), jnp.array([1.5, 2.5])], order=1)
        Array([3.5, 8.5], dtype=float32)
    """
    image = ensure_arraylike("map_coordinates", input)
    coords = [ensure_arraylike("map_coordinates", c) for c in coordinates]
    cval = jnp.asarray(cval, image.dtype)
    if len(coords) != image.ndim:
        raise ValueError("coordinates must be a sequence of length input.ndim, but "
                         f"{len(coords)} != {image.ndim}")
    fix = _MODES.get(mode)
    if fix is None:
        raise NotImplementedError(f"map_coordinates does not support mode {mode!r}; the "
                                  f"supported modes are {sorted(_MODES)}")
    if order not in (0, 1):
        raise NotImplementedError(f"map_coordinates supports order 0 and 1, got {order!r}")

    per_axis = [[(fix(i, size), (0 <= i) & (i < size) if mode == "constant" else None, w)
                 for i, w in _nodes(c, order)] for c, size in zip(coords, image.shape)]
    terms = []
    for nodes in itertools.product(*per_axis):
        indices, valid, weights = zip(*nodes)
        value = image[indices]
        if mode == "constant":
            value = jnp.where(functools.reduce(operator.and_, valid), value, cval)
        terms.append(functools.reduce(operator.mul, weights) * value)
    result = functools.reduce(operator.add, terms)
    if jnp.issubdtype(image.dtype, np.integer):
        result = _round(result)
    return result.astype(image.dtype)
