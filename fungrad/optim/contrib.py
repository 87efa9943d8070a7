"""``optax.contrib``: newer optimisers (Muon, schedule-free, Prodigy, ...), as optax's."""
from __future__ import annotations

__all__: list[str] = []
