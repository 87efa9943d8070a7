"""``fungrad.custom_batching``: the public names of ``jax.custom_batching``."""
from __future__ import annotations

__all__: list[str] = []
