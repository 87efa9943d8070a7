"""Placeholder: ``jax.typing``'s counterpart, being written."""
