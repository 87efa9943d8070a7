"""Placeholder: ``jax.sharding``'s counterpart, being written."""
