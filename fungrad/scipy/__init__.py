"""``fungrad.scipy``: the ``jax.scipy`` functions fungrad implements (``special``, ``linalg``)."""
from fungrad.scipy import special  # noqa: F401
from fungrad.scipy import linalg  # noqa: F401
