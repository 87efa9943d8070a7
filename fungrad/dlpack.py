"""Placeholder: ``jax.dlpack``'s counterpart, being written."""
