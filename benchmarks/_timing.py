"""Timing helpers shared by the benchmark scripts: best-of-N wall time in microseconds."""
from __future__ import annotations

import time
from typing import Any, Callable


def best_us(fn: Callable[[], Any], number: int = 1000, repeat: int = 5, sync: Callable | None = None) -> float:
    """Best average time of ``fn()`` over ``repeat`` runs of ``number`` calls, in µs."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            out = fn()
        if sync is not None:
            sync(out)
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e6


def row(name: str, **figures: float) -> str:
    return f"{name:<28}" + "".join(f"{k:>14}={v:9.2f}" for k, v in figures.items())
