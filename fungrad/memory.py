"""``fungrad.memory``: JAX's memory-space names (``jax.memory``).

``Space`` names where an array's buffer lives: ``Device`` (the accelerator's own memory),
``Host`` (pinned host memory) or ``Any``. A fungrad device has one memory, so an array is
always in its device's ``Device`` space: on a CPU that is host memory, as with JAX on a CPU.

Examples:
    >>> from fungrad import memory
    >>> memory.Space.Device
    MemorySpace.Device
    >>> list(memory.Space)
    [MemorySpace.Device, MemorySpace.Host, MemorySpace.Any]
"""
from __future__ import annotations

import enum

from fungrad._core.namespace import public_dir

__all__ = ["Space"]
__dir__ = public_dir(__all__)


class Space(enum.Enum):
    """A memory space (JAX's ``MemorySpace``): ``Device``, ``Host`` or ``Any``."""
    Device = enum.auto()
    Host = enum.auto()
    Any = enum.auto()

    def __repr__(self) -> str:
        return f"MemorySpace.{self.name}"

    # as JAX's: members hash by identity (Enum's hash is its name's)
    __hash__ = object.__hash__


Space.__name__ = Space.__qualname__ = "MemorySpace"
