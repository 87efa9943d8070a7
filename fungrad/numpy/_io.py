"""Arrays from buffers, strings, functions and files, and printing: ``frombuffer``,
``fromstring``, ``fromfunction``, ``from_dlpack``, ``load``/``save``/``savez`` and NumPy's
print options (arrays print through NumPy, as in JAX).

``fromfile`` and ``fromiter`` raise, as in JAX: reading a file or consuming an iterator is a
side effect that a traced function would perform once, at trace time.
"""
from __future__ import annotations

import os
from typing import IO, Any, Callable

import numpy as np

from fungrad._core import dlpack, dtypes
from fungrad.numpy._creation import arange, asarray
from fungrad.transforms.api import vmap

# Printing and saving go through NumPy, which reads fungrad arrays through ``__array__``.
array_repr = np.array_repr
array_str = np.array_str
get_printoptions = np.get_printoptions
printoptions = np.printoptions
set_printoptions = np.set_printoptions
save = np.save
savez = np.savez


def frombuffer(buffer: Any, dtype: Any = float, count: int = -1, offset: int = 0) -> Any:
    """The bytes of ``buffer`` read as a 1-d array of ``dtype`` (``numpy.frombuffer``)."""
    return asarray(np.frombuffer(buffer=buffer, dtype=dtype, count=count, offset=offset))


def fromstring(string: str, dtype: Any = float, count: int = -1, *, sep: str) -> Any:
    """Numbers separated by ``sep`` in ``string`` as a 1-d array of ``dtype``."""
    return asarray(np.fromstring(string, dtype=dtype, count=count, sep=sep))


def fromfile(*args: Any, **kwargs: Any) -> Any:
    """Not provided, as in JAX: use ``jnp.asarray(np.fromfile(...))`` outside traced code."""
    raise NotImplementedError(
        "fromfile: reading a file is a side effect, which a traced function performs once, "
        "when it is traced; use jnp.asarray(np.fromfile(...)) outside jit instead")


def fromiter(*args: Any, **kwargs: Any) -> Any:
    """Not provided, as in JAX: use ``jnp.asarray(np.fromiter(...))`` outside traced code."""
    raise NotImplementedError(
        "fromiter: consuming an iterator is a side effect, which a traced function performs "
        "once, when it is traced; use jnp.asarray(np.fromiter(...)) outside jit instead")


def fromfunction(function: Callable[..., Any], shape: Any, *, dtype: Any = float,
                 **kwargs: Any) -> Any:
    """``function`` evaluated at every index of ``shape``: it is called once, vectorised
    over each axis with ``vmap`` (so it sees scalars, one per axis, of ``dtype``)."""
    try:
        shape = tuple(int(n) for n in (shape if np.iterable(shape) else (shape,)))
    except TypeError:
        raise TypeError(f"fromfunction: shape must be a tuple of ints, got {shape!r}") from None
    for axis in range(len(shape)):
        in_axes = tuple(0 if k == axis else None for k in range(len(shape)))
        function = vmap(function, in_axes=in_axes[::-1])
    return function(*(arange(n, dtype=dtype) for n in shape), **kwargs)


def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> Any:
    """An array sharing (or with ``copy=True``, copying) the memory of a DLPack-capable
    array such as a NumPy array, a PyTorch tensor or a CuPy array
    (``fungrad.dlpack.from_dlpack``, with ``jax.numpy``'s signature)."""
    return dlpack.from_dlpack(x, device=device, copy=copy)


def load(file: IO[bytes] | str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
    """``numpy.load``, giving an array for a ``.npy`` file; bfloat16 data (which NumPy
    stores as 2-byte void) comes back as bfloat16. ``allow_pickle`` stays NumPy's default
    (off): nothing untrusted is unpickled."""
    out = np.load(file, *args, **kwargs)
    if not isinstance(out, np.ndarray):
        return out  # a .npz archive: NumPy's lazy mapping of arrays
    if out.dtype == np.dtype("V2"):
        out = out.view(dtypes.load_ml_dtypes().bfloat16)
    return asarray(out)


__all__ = ["array_repr", "array_str", "get_printoptions", "printoptions", "set_printoptions",
           "save", "savez", "load", "frombuffer", "fromstring", "fromfile", "fromiter",
           "fromfunction", "from_dlpack"]
