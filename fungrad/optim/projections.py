"""Placeholder: filled in by the work on optax's remaining surface."""
__all__: list[str] = []
