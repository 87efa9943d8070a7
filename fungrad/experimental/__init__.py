"""``fungrad.experimental``: the x64 context managers of ``jax.experimental`` before JAX
moved them to the top level (``jax.enable_x64(True)``, here ``fungrad.enable_x64``),
``io_callback`` (a host callback with side effects, see ``fungrad.callbacks``) and
``fungrad.experimental.shard_map.shard_map``, the older spelling of ``fungrad.shard_map``.

Its submodules, loaded on first use as in ``from fungrad.experimental import checkify``:
``checkify`` (functionalised run-time checks), ``ode`` (``odeint``), ``jet`` (Taylor mode),
``sparse`` (``BCOO`` arrays), ``pjit``, ``mesh_utils``, ``multihost_utils`` (one process's
semantics) and ``compilation_cache`` (accepted, nothing cached on disk).

Examples:
    >>> import fungrad, fungrad.numpy as jnp
    >>> with fungrad.experimental.enable_x64():
    ...     print(jnp.ones(2).dtype)
    float64
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Iterator

from fungrad._core.namespace import public_dir
from fungrad.callbacks import io_callback
from fungrad.experimental import shard_map  # noqa: F401  (jax.experimental.shard_map)
from fungrad.runtime import enable_x64 as _x64_flag

__all__ = ["disable_x64", "enable_x64", "io_callback"]
_SUBMODULES = ("checkify", "ode", "jet", "sparse", "pjit", "mesh_utils", "multihost_utils",
               "compilation_cache")
__dir__ = public_dir(__all__)


def __getattr__(name: str):
    """``fungrad.experimental.checkify`` and the other submodules: imported on first access."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def enable_x64(new_val: bool = True) -> Iterator[None]:
    """Keep 64-bit dtypes inside the block (``new_val=False`` turns them off)."""
    with _x64_flag(new_val):
        yield


@contextlib.contextmanager
def disable_x64() -> Iterator[None]:
    """Canonicalise 64-bit dtypes to 32 bits inside the block."""
    with _x64_flag(False):
        yield
