"""``fungrad.typing`` (``jax.typing``): annotations for values fungrad accepts.

``ArrayLike`` is what converts to an array implicitly: ``fungrad.Array``, a tracer (a value
inside a transformation, which JAX's ``Array`` annotation covers too), a NumPy array, a
NumPy boolean or number, or a Python ``bool``/``int``/``float``/``complex``; not lists,
tuples or strings, as in JAX. ``DTypeLike`` is what names a dtype: ``"float32"``,
``np.float32``, ``float``, ``np.dtype("int8")``, ``jnp.bfloat16``, or anything with a
``dtype``. ``DeviceLike`` (not in ``jax.typing``) is what names a device wherever fungrad
takes one: a ``Device``, a ``SingleDeviceSharding``, a platform (``"gpu"``) or
``"platform:id"``.

``ArrayLike`` and ``StaticScalar`` are unions of classes, so ``isinstance(x, ArrayLike)``
works as with JAX's.

Examples:
    >>> import numpy as np, fungrad.numpy as jnp
    >>> from fungrad.typing import ArrayLike
    >>> [isinstance(x, ArrayLike) for x in (jnp.ones(2), np.ones(2), 1.0, [1.0])]
    [True, True, True, False]
"""
from __future__ import annotations

from typing import Any, Protocol, Union, runtime_checkable

import numpy as np

from fungrad._core.array import Array
from fungrad._core.core import Tracer
from fungrad._core.namespace import public_dir
from fungrad.backends import Device, SingleDeviceSharding

__all__ = ["ArrayLike", "DTypeLike", "DeviceLike", "StaticScalar", "SupportsDType"]
__dir__ = public_dir(__all__)


@runtime_checkable
class SupportsDType(Protocol):
    """Anything with a ``dtype`` attribute (an array, ``jnp.float32``, ...)."""

    @property
    def dtype(self) -> np.dtype:
        """The dtype it stands for."""


# The scalars that convert to arrays and may be static arguments: NumPy's and Python's.
StaticScalar = Union[np.bool_, np.number, bool, int, float, complex]
ArrayLike = Union[Array, Tracer, np.ndarray, StaticScalar]
DTypeLike = Union[str, type[Any], np.dtype, SupportsDType]
DeviceLike = Union[Device, SingleDeviceSharding, str]
