"""``fungrad.scipy.sparse`` (``jax.scipy.sparse``): the iterative solvers of
``fungrad.scipy.sparse.linalg`` (``cg``, ``bicgstab``, ``gmres``), which need only a
function ``x -> A x``, not a sparse matrix format."""
from fungrad._core.namespace import public_dir
from fungrad.scipy.sparse import linalg  # noqa: F401

__all__ = ["linalg"]
__dir__ = public_dir(__all__)
