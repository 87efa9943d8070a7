"""Small list helpers shared by the interpreters (the Autodidax vocabulary)."""
from __future__ import annotations

import operator
import os
from typing import Any, Callable, Iterable, Sequence, TypeVar

from fungrad.errors import AxisError, ConcretizationTypeError

T = TypeVar("T")


def safe_zip(*seqs: Sequence) -> list[tuple]:
    """``zip`` that insists every sequence has the same length."""
    n = len(seqs[0])
    for s in seqs[1:]:
        if len(s) != n:
            raise ValueError(f"safe_zip: length mismatch {[len(s) for s in seqs]}")
    return list(zip(*seqs))


def safe_map(f: Callable, *seqs: Sequence) -> list:
    """``map`` that insists every sequence has the same length."""
    return [f(*args) for args in safe_zip(*seqs)]


def unzip2(pairs: Iterable[tuple[Any, Any]]) -> tuple[list, list]:
    """Split a sequence of pairs into two lists."""
    xs, ys = [], []
    for x, y in pairs:
        xs.append(x)
        ys.append(y)
    return xs, ys


def split_list(xs: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """Split ``xs`` into consecutive pieces of the given sizes plus the rest."""
    out, start = [], 0
    for n in sizes:
        out.append(list(xs[start:start + n]))
        start += n
    out.append(list(xs[start:]))
    return out


def canonicalize_axis(axis: Any, ndim: int, op: str = "axis", scalar_ok: bool = True) -> int:
    """Turn a possibly negative axis into a non-negative one: the one axis check of fungrad.

    ``axis`` is anything ``operator.index`` accepts (NumPy integers included), else a
    ``TypeError`` naming ``op``; out of range, an ``AxisError`` (a ``ValueError`` and an
    ``IndexError``), as in JAX. ``scalar_ok`` lets axis 0 (or -1) name the single
    position of a 0-d operand, which lax ops allow and NumPy functions do not.
    """
    if type(axis) is not int:
        axis = _axis_index(axis, op)
    in_range = -ndim <= axis < ndim or (scalar_ok and ndim == 0 and axis in (0, -1))
    if not in_range:
        raise AxisError(f"{op}: axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim if ndim else 0


def _axis_index(axis: Any, op: str) -> int:
    try:
        return operator.index(axis)
    except ConcretizationTypeError:
        raise
    except TypeError:
        raise TypeError(f"{op}: axis must be an integer, got {axis!r} "
                        f"of type {type(axis).__name__}") from None


def prod(xs: Iterable[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the OS has one (``taskset``,
    a container's CPU set), else every CPU, as Python 3.13's ``os.process_cpu_count``."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
