"""``fungrad.dlpack`` (``jax.dlpack``): arrays shared with other libraries through DLPack.

``from_dlpack(x)`` takes any object with ``__dlpack__`` and ``__dlpack_device__`` (a NumPy
array, a PyTorch or CuPy tensor, a ``fungrad.Array``) and returns a ``fungrad.Array`` on
the same memory, without a copy: NumPy imports CPU tensors, CuPy GPU ones. The other way,
``fungrad.Array`` has ``__dlpack__``, so ``torch.from_dlpack(x)`` and ``np.from_dlpack(x)``
share the array's buffer.

As with JAX, arrays are immutable and DLPack cannot say so: writing to a shared buffer
from the other library changes the ``fungrad.Array`` too.

Differences from JAX: bfloat16 is not exchanged (NumPy's and CuPy's DLPack support has no
bfloat16, and fungrad stores arrays in them), so ``is_supported_dtype`` is False for it;
the other dtypes JAX exchanges are supported.

Examples:
    >>> import numpy as np, fungrad.dlpack
    >>> host = np.arange(3.0, dtype=np.float32)
    >>> x = fungrad.dlpack.from_dlpack(host)
    >>> x, np.shares_memory(np.asarray(x), host)
    (Array([0., 1., 2.], dtype=float32), True)
"""
from fungrad._core.dlpack import from_dlpack, is_supported_dtype
from fungrad._core.namespace import public_dir

__all__ = ["from_dlpack", "is_supported_dtype"]
__dir__ = public_dir(__all__)
