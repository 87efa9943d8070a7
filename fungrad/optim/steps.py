"""More optimisers from optax: step-size rules and layer-wise scalings."""
from __future__ import annotations

__all__: list[str] = []
