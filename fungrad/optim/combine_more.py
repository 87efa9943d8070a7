"""More of optax's combinators: naming, partitioning, freezing and conditioning others."""
from __future__ import annotations

__all__: list[str] = []
