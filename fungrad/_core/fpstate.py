"""NumPy's floating-point error state, switched off while fungrad computes.

JAX never warns about the infs and nans an operation produces (``log(0)``, ``0/0``, an
overflow); NumPy does, through its error state (``np.seterr``). fungrad runs every
primitive implementation and every compiled function with all floating-point errors
ignored and puts the caller's state back afterwards, so NumPy code of the user's own keeps
its settings (and ``config.debug_nans``/``debug_infs`` turn the NaNs and infinities an
operation produces into ``FloatingPointError``, as in JAX: ``check_results``):

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

from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from fungrad.config import config

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


def nonfinite_kind(values: Sequence[Any]) -> str | None:
    """Which checked kind of value (``"nan"`` with ``config.debug_nans``, ``"inf"`` with
    ``debug_infs``) one of the floating-point arrays in ``values`` holds, or None."""
    for v in values:
        kind = getattr(getattr(v, "dtype", None), "kind", None)
        if kind not in ("f", "c"):  # (bfloat16 and the small floats: kind "V", unchecked)
            continue
        if config.debug_nans and bool((v != v).any()):
            return "nan"
        if config.debug_infs and bool((abs(v) == np.inf).any()):
            return "inf"
    return None


def check_results(name: str, values: Sequence[Any]) -> None:
    """``FloatingPointError`` when an operation's results hold a value ``config.debug_nans``
    or ``debug_infs`` asks to catch (JAX's message)."""
    kind = nonfinite_kind(values)
    if kind is not None:
        raise FloatingPointError(f"invalid value ({kind}) encountered in {name}")


def silently(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with floating-point errors ignored: for the NumPy calls
    fungrad makes outside an impl, such as converting a constant or a Python scalar to
    float16."""
    errors = STATE.set(IGNORE)
    try:
        return fn(*args, **kwargs)
    finally:
        STATE.reset(errors)


__all__ = ["IGNORE", "STATE", "check_results", "nonfinite_kind", "silently"]
