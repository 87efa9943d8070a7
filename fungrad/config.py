"""Global flags, set with ``fungrad.config.update(name, value)`` as in JAX.

Flags:
  enable_x64: keep 64-bit dtypes (default False: float64 becomes float32, int64 int32).
  log_compiles: log each ``jit`` compilation and why the cache missed.
  disable_jit: run jitted functions op by op (see ``fungrad.disable_jit``).
"""
from __future__ import annotations

import os
from typing import Any


class Config:
    """Holds the flags; read them as attributes (``config.enable_x64``)."""

    def __init__(self) -> None:
        self.enable_x64 = os.environ.get("FUNGRAD_ENABLE_X64", "0") not in ("0", "", "false")
        self.log_compiles = False
        self.disable_jit = False

    def update(self, name: str, value: Any) -> None:
        """Set a flag. Accepts JAX's ``jax_`` prefixed names too."""
        key = name[4:] if name.startswith("jax_") else name
        if key not in ("enable_x64", "log_compiles", "disable_jit"):
            raise ValueError(f"config.update: unknown flag {name!r}")
        setattr(self, key, bool(value))
        if key == "enable_x64":
            from fungrad._core import dtypes
            dtypes._x64_changed()


config = Config()
