"""Transformations that wrap or steer others, and sign- and noise-based ones, as optax's."""
from __future__ import annotations

__all__: list[str] = []
