"""optax's losses (``optax.losses``): the ones ``fungrad.nn`` defines, and the rest."""
from __future__ import annotations

__all__: list[str] = []
