"""Small list helpers shared by the interpreters (the Autodidax vocabulary)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence, TypeVar

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


def canonicalize_axis(axis: int, ndim: int, op: str = "axis") -> int:
    """Turn a possibly negative axis into a non-negative one, with a clear error."""
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ValueError(f"{op}: axis {axis} is out of bounds for an array of rank {ndim}")
    return axis % ndim if ndim else 0


def prod(xs: Iterable[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out
