"""Placeholder: ``jax.shard_map``'s counterpart, being written."""
