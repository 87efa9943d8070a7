"""NumPy's floating-point error state, switched off while fungrad computes.

JAX never warns about the infs and nans an operation produces (``log(0)``, ``0/0``, an
overflow); NumPy does, through its error state (``np.seterr``). fungrad runs every
primitive implementation and every compiled function with all floating-point errors
ignored and puts the caller's state back afterwards, so NumPy code of the user's own keeps
its settings:

    token = STATE.set(IGNORE)
    try:
        ...  # NumPy calls
    finally:
        STATE.reset(token)

``np.errstate`` costs about 1 µs per use, a third of an eager op's budget. NumPy 2 keeps
the error state in a context variable, which ``STATE`` is, so setting and resetting it
costs about 0.25 µs. Should a NumPy release move that private variable, ``STATE`` wraps
``np.seterr`` instead (slower, same behaviour).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import numpy as np

try:
    from numpy._core._ufunc_config import _extobj_contextvar
except ImportError:  # not where this NumPy keeps it: fall back to np.seterr
    _extobj_contextvar = None

T = TypeVar("T")


class _SeterrState:
    """The error state behind ``np.seterr``, with the interface of a ``ContextVar``."""

    @staticmethod
    def set(_: Any) -> dict:
        """Ignore all floating-point errors; return the previous settings."""
        return np.seterr(all="ignore")

    @staticmethod
    def reset(previous: dict) -> None:
        """Restore the settings ``set`` returned."""
        np.seterr(**previous)


def _state() -> tuple[Any, Any]:
    """NumPy's error-state variable and its value with every error ignored."""
    if _extobj_contextvar is None:
        return _SeterrState(), None
    with np.errstate(all="ignore"):
        return _extobj_contextvar, _extobj_contextvar.get()


STATE, IGNORE = _state()


def silently(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with floating-point errors ignored: for the NumPy calls
    fungrad makes outside an impl, such as converting a constant or a Python scalar to
    float16."""
    errors = STATE.set(IGNORE)
    try:
        return fn(*args, **kwargs)
    finally:
        STATE.reset(errors)


__all__ = ["IGNORE", "STATE", "silently"]
