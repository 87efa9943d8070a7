"""``fungrad.scipy.cluster`` (``jax.scipy.cluster``): ``vq``, assigning observations to the
nearest code of a code book."""
from fungrad._core.namespace import public_dir
from fungrad.scipy.cluster import vq  # noqa: F401

__all__ = ["vq"]
__dir__ = public_dir(__all__)
