"""Mutable array references (``jax.ref``): ``new_ref``, ``Ref``, ``freeze`` and the
functional spellings ``get``, ``set``, ``swap``, ``addupdate``.

A ``Ref`` is a box holding an array of a fixed shape and dtype. ``ref[idx]`` reads it
(indexing as ``fungrad.numpy``), ``ref[idx] = v`` and ``ref[idx] += v`` write it; a
written value must have the shape of ``ref[idx]`` and the ref's dtype (no broadcasting,
no promotion, as in JAX). Writes are functional updates of the held value, so a ref
created and used inside a function works under ``grad``, ``vmap`` and ``jit``. A ref
passed to a ``jit`` function, or closed over by one or by a ``scan``/``while_loop``/
``cond`` body, is threaded through it as an extra input and output: the writes are seen
after the call. Writing a differentiated (``grad``) or batched (``vmap``) value into a
ref created outside that transformation raises, as in JAX.

Example:
    >>> import fungrad, fungrad.numpy as jnp
    >>> from fungrad import ref as jref
    >>> r = jref.new_ref(jnp.zeros(3))
    >>> r[...] += 1.0
    >>> r[0] = 5.0
    >>> step = fungrad.jit(lambda r, x: jref.addupdate(r, 1, x))
    >>> step(r, 2.0)
    >>> jref.freeze(r)
    Array([5., 3., 1.], dtype=float32)
"""
from fungrad._core.namespace import public_dir
from fungrad._core.ref import (AbstractRef, Ref, addupdate, empty_ref, free_ref, freeze, get,
                               new_ref, set, swap)

__all__ = ["AbstractRef", "Ref", "addupdate", "empty_ref", "free_ref", "freeze", "get",
           "new_ref", "set", "swap"]
__dir__ = public_dir(__all__)
