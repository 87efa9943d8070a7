"""``fungrad.scipy``: the ``jax.scipy`` functions fungrad implements (``special``, ``stats``,
``linalg``, ``optimize``)."""
from fungrad._core.namespace import public_dir
from fungrad.scipy import (
    linalg,  # noqa: F401
    optimize,  # noqa: F401
    special,  # noqa: F401
    stats,  # noqa: F401
)

__all__ = ["linalg", "optimize", "special", "stats"]
__dir__ = public_dir(__all__)
