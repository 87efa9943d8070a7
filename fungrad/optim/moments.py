"""More moment-based optimisers, as optax's: their ``scale_by_*`` atoms and aliases."""
from __future__ import annotations

__all__: list[str] = []
