"""``fungrad.scipy.spatial`` (``jax.scipy.spatial``): ``transform``, 3-D rotations
(``Rotation``) and their spherical linear interpolation (``Slerp``)."""
from fungrad._core.namespace import public_dir
from fungrad.scipy.spatial import transform  # noqa: F401

__all__ = ["transform"]
__dir__ = public_dir(__all__)
