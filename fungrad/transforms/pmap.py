"""Placeholder: ``jax.pmap``'s counterpart, being written."""
