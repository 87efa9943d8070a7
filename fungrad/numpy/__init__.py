"""``fungrad.numpy``: the ``jax.numpy`` API, written only with ``fungrad.lax``."""
from fungrad.numpy._core_funcs import *  # noqa: F401,F403
from fungrad.numpy._core_funcs import _getitem, _IndexUpdateHelper  # noqa: F401
