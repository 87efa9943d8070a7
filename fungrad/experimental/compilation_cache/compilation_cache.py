"""``fungrad.experimental.compilation_cache.compilation_cache``: JAX's persistent compilation
cache switch, accepted so that code written for JAX runs unchanged.

JAX can write each compiled XLA executable to a directory and read it back in a later
process, which saves minutes of compilation per large program. fungrad has no such cache:
its executables are generated Python functions, kept in memory per ``jit`` function and
signature, and built again in every process (in milliseconds, as tracing is). So
``set_cache_dir`` records the directory and writes nothing there, ``reset_cache`` forgets it,
and ``is_initialized`` is always False: no cache is ever in use.

Examples:
    >>> from fungrad.experimental.compilation_cache import compilation_cache as cc
    >>> cc.set_cache_dir("/tmp/fungrad_cache")
    >>> cc.is_initialized()
    False
    >>> cc.reset_cache()
"""
from __future__ import annotations

import os

from fungrad._core.namespace import public_dir

__all__ = ["is_initialized", "reset_cache", "set_cache_dir"]
__dir__ = public_dir(__all__)

# The directory given to ``set_cache_dir`` (nothing is written there).
_cache_dir: str | None = None


def set_cache_dir(path: str | os.PathLike) -> None:
    """Record ``path`` as the cache directory, as JAX's ``set_cache_dir`` does; fungrad
    writes no compiled code to it (it has no persistent cache)."""
    global _cache_dir
    _cache_dir = os.fspath(path)


def reset_cache() -> None:
    """Forget the directory given to ``set_cache_dir`` (JAX also drops its open cache)."""
    global _cache_dir
    _cache_dir = None


def is_initialized() -> bool:
    """Whether a persistent cache is in use: never, in fungrad."""
    return False
