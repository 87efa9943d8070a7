"""``fungrad.scipy``: the ``jax.scipy`` functions fungrad implements (``special``, ``stats``,
``linalg``, ``optimize``, ``ndimage``, ``interpolate``, ``fft``, ``signal``, ``integrate``,
``sparse``, ``spatial``, ``cluster``)."""
from fungrad._core.namespace import public_dir
from fungrad.scipy import (
    cluster,  # noqa: F401
    fft,  # noqa: F401
    integrate,  # noqa: F401
    interpolate,  # noqa: F401
    linalg,  # noqa: F401
    ndimage,  # noqa: F401
    optimize,  # noqa: F401
    signal,  # noqa: F401
    sparse,  # noqa: F401
    spatial,  # noqa: F401
    special,  # noqa: F401
    stats,  # noqa: F401
)

__all__ = ["cluster", "fft", "integrate", "interpolate", "linalg", "ndimage", "optimize", "signal",
           "sparse", "spatial", "special", "stats"]
__dir__ = public_dir(__all__)
