"""``fungrad.scipy``: the ``jax.scipy`` functions fungrad implements (``special``, ``stats``,
``linalg``, ``optimize``)."""
from fungrad.scipy import (
    linalg,  # noqa: F401
    optimize,  # noqa: F401
    special,  # noqa: F401
    stats,  # noqa: F401
)
