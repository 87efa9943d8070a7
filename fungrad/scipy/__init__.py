"""``fungrad.scipy``: the ``jax.scipy`` functions fungrad implements (``special``, ``stats``,
``linalg``, ``optimize``, ``ndimage``, ``interpolate``, ``fft``, ``signal``, ``integrate``)."""
from fungrad._core.namespace import public_dir
from fungrad.scipy import (
    fft,  # noqa: F401
    integrate,  # noqa: F401
    interpolate,  # noqa: F401
    linalg,  # noqa: F401
    ndimage,  # noqa: F401
    optimize,  # noqa: F401
    signal,  # noqa: F401
    special,  # noqa: F401
    stats,  # noqa: F401
)

__all__ = ["fft", "integrate", "interpolate", "linalg", "ndimage", "optimize", "signal", "special",
           "stats"]
__dir__ = public_dir(__all__)
