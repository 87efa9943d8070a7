"""``fungrad.experimental.shard_map``: ``jax.experimental.shard_map``, the older spelling of
``fungrad.shard_map`` (deprecated in JAX, where it still works).

Examples:
    >>> import warnings, fungrad, fungrad.numpy as jnp
    >>> from fungrad.experimental.shard_map import shard_map
    >>> from fungrad.sharding import PartitionSpec as P, make_mesh
    >>> mesh = make_mesh((1,), ("x",))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     double = shard_map(lambda b: b * 2, mesh, in_specs=P("x"), out_specs=P("x"))
    >>> double(jnp.arange(3.0))
    Array([0., 2., 4.], dtype=float32)
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from fungrad._core.namespace import public_dir
from fungrad.sharding import AbstractMesh, Mesh
from fungrad.transforms import shard_map as _shard_map

__all__ = ["shard_map"]
__dir__ = public_dir(__all__)


def shard_map(f: Callable, mesh: Mesh | AbstractMesh, in_specs: Any, out_specs: Any,
              check_rep: bool = True) -> Callable:
    """``fungrad.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
    check_vma=check_rep)`` with JAX's older positional signature, and its
    ``DeprecationWarning``."""
    warnings.warn("fungrad.experimental.shard_map is deprecated, as in JAX. Use "
                  "fungrad.shard_map instead.", DeprecationWarning, stacklevel=2)
    return _shard_map.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                                check_vma=check_rep)
