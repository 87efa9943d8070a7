"""``fungrad.flatten_util`` (``jax.flatten_util``): a pytree of arrays as one flat vector.

``ravel_pytree`` concatenates the leaves of a pytree into a 1-D array (what an optimiser
written for vectors, a Hessian or a line search wants) and returns the function that
splits such a vector back into the pytree. Both are composites of ``lax`` operations, so
they work under ``grad``, ``vmap`` and ``jit``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from fungrad import lax, tree
from fungrad._core import dtypes
from fungrad._core.namespace import public_dir
from fungrad.numpy._util import aval

__all__ = ["ravel_pytree"]
__dir__ = public_dir(__all__)


@dataclasses.dataclass(frozen=True)
class _Unravel:
    """The inverse of one ``ravel_pytree`` call: splits a flat vector into the leaves'
    shapes and rebuilds the pytree. Frozen, so equal structures give equal, hashable
    functions (usable as a static ``jit`` argument without retracing), as JAX's."""
    treedef: tree.PyTreeDef
    shapes: tuple[tuple[int, ...], ...]
    from_dtypes: tuple[np.dtype, ...] | None  # None: one dtype, any dtype is accepted back
    to_dtype: np.dtype | None

    def __call__(self, flat: Any) -> Any:
        """The pytree whose leaves are the consecutive pieces of ``flat``."""
        sizes = [math.prod(s) for s in self.shapes]
        shape, dtype = aval(flat).shape, aval(flat).dtype
        if shape != (sum(sizes),):
            raise ValueError(f"ravel_pytree's unravel function: expected a flat array of shape "
                             f"({sum(sizes)},), got shape {shape}")
        if self.from_dtypes is not None and dtype != self.to_dtype:
            raise TypeError(f"unravel function given array of dtype {dtype}, but expected "
                            f"dtype {self.to_dtype}")
        pieces = [lax.reshape(p, s) for p, s in zip(lax.split(flat, sizes), self.shapes)]
        if self.from_dtypes is not None:
            pieces = [lax.convert_element_type(p, d) for p, d in zip(pieces, self.from_dtypes)]
        return tree.unflatten(self.treedef, pieces)


def ravel_pytree(pytree: Any) -> tuple[Any, Callable[[Any], Any]]:
    """Ravel (flatten) a pytree of arrays and scalars into one 1-D array.

    The leaves are flattened in ``fungrad.tree.flatten`` order and concatenated; the
    result's dtype is the promotion of the leaves' dtypes (``result_type`` of the dtypes,
    so Python scalars count as their default dtype). A pytree without leaves gives an
    empty float32 vector.

    Args:
        pytree: a pytree of arrays and scalars.

    Returns:
        ``(flat, unravel)``: the 1-D array, and a function mapping a vector of the same
        length back to a pytree of the input's structure. When every leaf has one dtype,
        ``unravel`` accepts a vector of any dtype and keeps it (so it can unravel, say, a
        float0 or a differently typed tangent); otherwise it requires the promoted dtype
        (``TypeError``) and casts each piece back to its leaf's dtype.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> flat, unravel = ravel_pytree({"w": jnp.ones((2, 2)), "b": jnp.zeros(2)})
        >>> flat
        Array([0., 0., 1., 1., 1., 1.], dtype=float32)
        >>> unravel(flat)["w"].shape
        (2, 2)
    """
    leaves, treedef = tree.flatten(pytree)
    if not leaves:
        return lax.full((0,), 0, np.float32), _Unravel(treedef, (), None, None)
    from_dtypes = tuple(dtypes.dtype_and_weak(leaf)[0] for leaf in leaves)
    to_dtype = dtypes.result_type(*from_dtypes)
    shapes = tuple(tuple(np.shape(leaf)) for leaf in leaves)
    if all(d == to_dtype for d in from_dtypes):
        flat = lax.concatenate([lax.reshape(leaf, (math.prod(s),))
                                for leaf, s in zip(leaves, shapes)], 0)
        return flat, _Unravel(treedef, shapes, None, None)
    flat = lax.concatenate([lax.reshape(lax.convert_element_type(leaf, to_dtype), (math.prod(s),))
                            for leaf, s in zip(leaves, shapes)], 0)
    return flat, _Unravel(treedef, shapes, from_dtypes, to_dtype)
