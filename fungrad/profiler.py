"""Placeholder: ``jax.profiler``'s counterpart, being written."""
