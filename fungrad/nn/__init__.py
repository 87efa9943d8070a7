"""``fungrad.nn``: activation functions and friends (the ``jax.nn`` functional API)."""
from fungrad.nn.functions import *  # noqa: F401,F403
