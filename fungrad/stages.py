"""Placeholder: ``jax.stages``'s counterpart, being written."""
