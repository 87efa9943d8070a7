"""The error classes fungrad raises, one per failure mode.

Each message names the operation and the offending argument and says how to fix it.
"""
from __future__ import annotations

import math

import numpy as np

from fungrad._core.namespace import public_dir

__all__ = ["TypePromotionError", "FungradTypeError", "JAXTypeError", "ConcretizationTypeError",
           "TracerBoolConversionError",
           "TracerIntegerConversionError", "TracerArrayConversionError", "UnexpectedTracerError",
           "KeyReuseError", "JAXIndexError", "NonConcreteBooleanIndexError", "AxisError",
           "JaxRuntimeError", "ResourceExhaustedError", "MissingRuleError", "JaxprTypeError",
           "InconclusiveDimensionOperation"]
__dir__ = public_dir(__all__)


class TypePromotionError(TypeError, ValueError):
    """No dtype sits above every operand's in JAX's promotion lattice (``jax.dtypes``'s
    error; a ``TypeError`` here before, so it is both)."""


class FungradTypeError(TypeError):
    """Base class of the tracing errors below (a ``TypeError`` as in JAX, where it is
    ``JAXTypeError``: both names are this class)."""


JAXTypeError = FungradTypeError


class ConcretizationTypeError(FungradTypeError):
    """A traced value was needed as a concrete Python value.

    Happens with ``if x > 0:``, ``int(x)``, ``float(x)`` or a shape taken from an
    array inside ``jit``/``vmap``. Fix: use ``lax.cond``/``lax.select``/``jnp.where``
    for data-dependent choices, or mark the argument static with
    ``jit(f, static_argnums=...)``/``static_argnames=...``.
    """

    def __init__(self, tracer, context: str = "") -> None:
        what = f"{context}: " if context else ""
        super().__init__(
            f"{what}abstract tracer value encountered where a concrete value is expected: "
            f"{tracer.aval.str_short()} ({tracer._origin()}).\n"
            "Python control flow and conversions (bool, int, float, shapes) cannot depend on "
            "traced values. Use lax.cond / lax.switch / jnp.where for data-dependent choices, "
            "lax.fori_loop / lax.while_loop / lax.scan for loops, or make the argument static "
            "with jit(f, static_argnums=...) / static_argnames=...")


class TracerBoolConversionError(ConcretizationTypeError):
    """``bool()`` (an ``if``, ``while``, ``and``/``or``) was applied to a traced value."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """``int()``/``__index__`` was applied to a traced value."""


class TracerArrayConversionError(FungradTypeError):
    """A traced value was passed to NumPy (``np.asarray(tracer)``)."""

    def __init__(self, tracer) -> None:
        super().__init__(
            f"the traced value {tracer.aval.str_short()} ({tracer._origin()}) cannot be converted "
            "to a NumPy array. Use fungrad.numpy functions inside transformed functions, or "
            "fungrad.debug.callback to run NumPy code at execution time.")


class UnexpectedTracerError(FungradTypeError):
    """A tracer escaped the transformation that created it (leaked tracer).

    Usually a traced value was stored in a global, a closure or an object attribute
    and used after the transformed function returned. Return it as an output instead.
    """

    def __init__(self, tracer, detail: str = "") -> None:
        super().__init__(
            f"encountered an escaped tracer {tracer.aval.str_short()} from a finished "
            f"{tracer._trace.name} transformation ({tracer._origin()}). {detail}"
            "A value computed inside a transformed function was kept (in a global, a "
            "closure or an attribute) and used outside it; return it as an output instead.")


class KeyReuseError(FungradTypeError):
    """A PRNG key was used twice (``jax.errors.KeyReuseError``).

    Raised only while ``debug_key_reuse`` is set: a typed key consumed (by a sampler,
    ``split`` or indexing) a second time, eagerly or inside a function ``jit`` traces, or a
    ``scan``/``while_loop`` body consuming a key it does not replace. Fix: ``split`` the key
    (or ``fold_in``) and use each new key once; ``random.clone`` gives a fresh copy.
    """


class JAXIndexError(IndexError):
    """Base class of fungrad's indexing errors (``jax.errors.JAXIndexError``)."""


class NonConcreteBooleanIndexError(JAXIndexError):
    """A boolean mask used as an index was traced: the result's shape would depend on
    the mask's values, which ``jit``/``vmap`` do not know.

    Fix: ``jnp.where(mask, x, fill)`` keeps the shape; ``x[jnp.nonzero(mask, size=n)]``
    takes a fixed number ``n`` of elements.
    """

    def __init__(self, aval_str: str) -> None:
        super().__init__(
            f"array boolean indices must be concrete; got a traced {aval_str}. The shape of "
            "x[mask] depends on the values of mask, which are unknown under jit/vmap. Use "
            "jnp.where(mask, x, 0) (same shape) or x[jnp.nonzero(mask, size=n)] (a fixed "
            "number of elements) instead.")


class AxisError(np.exceptions.AxisError):
    """An ``axis`` argument out of range or repeated.

    NumPy's ``AxisError``: both a ``ValueError`` (what JAX raises for most functions) and an
    ``IndexError`` (what it raises for a few, e.g. ``argmax``), so either ``except`` works.
    Raised with one argument, the whole message.
    """


class JaxRuntimeError(RuntimeError):
    """A computation failed while it ran (``jax.errors.JaxRuntimeError``, XLA's runtime
    status errors): raised for out-of-memory (``ResourceExhaustedError``) and for transfers
    a transfer guard disallows (``fungrad.transfer_guard``)."""


class ResourceExhaustedError(MemoryError, JaxRuntimeError):
    """An array too large to allocate.

    A ``MemoryError``, so ``except MemoryError`` catches it, and a ``JaxRuntimeError`` like
    the ``RESOURCE_EXHAUSTED`` error JAX raises for the same request.
    """

    def __init__(self, op: str, shape: tuple, dtype: np.dtype) -> None:
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        super().__init__(f"RESOURCE_EXHAUSTED: {op}: out of memory allocating {nbytes} bytes for "
                         f"an array of shape {tuple(shape)} and dtype {dtype.name}")


class MissingRuleError(NotImplementedError):
    """A primitive has no rule for a transformation."""

    def __init__(self, prim, transformation: str, reason: str | None = None) -> None:
        super().__init__(f"primitive '{prim}' has no {transformation} rule"
                         + (f": {reason}" if reason else ""))


class JaxprTypeError(TypeError):
    """A jaxpr is ill-typed (``jax.errors.JaxprTypeError``, raised by JAX's jaxpr checker).

    fungrad builds jaxprs only through its tracers, whose abstract evaluation rejects
    ill-typed equations as they are staged, so it never raises this; the class exists so
    that ``except JaxprTypeError`` clauses work.
    """


class InconclusiveDimensionOperation(Exception):
    """A comparison of symbolic dimensions has no definite answer
    (``jax.errors.InconclusiveDimensionOperation``, from shape polymorphism).

    fungrad's shapes are always concrete, so it never raises this; the class exists so that
    ``except InconclusiveDimensionOperation`` clauses work.
    """
