"""``fungrad.scipy.integrate`` (``jax.scipy.integrate``): integration of sampled data."""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad._core.namespace import public_dir

__all__ = ["trapezoid"]
__dir__ = public_dir(__all__)


def trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: int = -1) -> Any:
    r"""Integrate ``y`` along ``axis`` by the composite trapezoidal rule
    (``jax.scipy.integrate.trapezoid``, the same function as ``fungrad.numpy.trapezoid``).

    Args:
        y: the sampled values (integers become the default float type).
        x: the sample points (1-D along ``axis``, or ``y``'s shape); default: equally
            spaced by ``dx``.
        dx: the spacing of the samples when ``x`` is None.
        axis: the axis to integrate along.

    Returns:
        The integral: ``y``'s shape without ``axis``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> trapezoid(jnp.array([1, 2, 3, 2, 3, 2, 1]))
        Array(13., dtype=float32)
        >>> trapezoid(jnp.array([1, 2, 3, 2, 3, 2, 1]), jnp.array([0, 2, 5, 7, 10, 15, 20]))
        Array(43., dtype=float32)
    """
    return jnp.trapezoid(y, x, dx, axis)
