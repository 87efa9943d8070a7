"""``fungrad.version``: the package version (as ``jax.version``), in a module of its own so
that code below ``fungrad/__init__.py`` (``print_environment_info``) can read it."""
__version__ = "0.1.0"
