"""``fungrad.experimental.compilation_cache`` (``jax.experimental.compilation_cache``): see
``fungrad.experimental.compilation_cache.compilation_cache``."""
from fungrad.experimental.compilation_cache import compilation_cache  # noqa: F401

__all__ = ["compilation_cache"]
