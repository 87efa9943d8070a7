"""``optax.tree_utils``: arithmetic, norms and helpers over pytrees of arrays."""
from __future__ import annotations

__all__: list[str] = []
