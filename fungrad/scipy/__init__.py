"""``fungrad.scipy``: the ``jax.scipy`` functions fungrad implements (``special``)."""
from fungrad.scipy import special  # noqa: F401
