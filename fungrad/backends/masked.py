"""Work on the few elements a mask selects, without waiting for a GPU.

NumPy impls handle a rare case (a slower branch, a correction, a series that has not yet
converged) on the elements that need it only, and skip the work when none do. Both
need the mask on the host. On a GPU that read waits for every kernel queued before it
(CuPy copies the value back), and picking elements out by a mask reads back how many
there are. So on a device these functions do the work on every element instead and a
select keeps it where the mask holds, or test a convergence mask only every few steps.
Which of the two is chosen by the array module ``xp`` the impl is given.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

# A device loop tests its convergence mask once every this many steps; the steps
# run past convergence leave converged elements as they are, up to rounding.
DEVICE_TEST_EVERY = 16


def may_hold(xp: Any, mask: Any) -> bool:
    """``mask.any()`` on the host; True on a device (the caller's work then runs on
    every element, which costs less than waiting for the device)."""
    return xp is not np or bool(mask.any())


def where_masked(xp: Any, mask: Any, out: Any, f: Callable[..., Any], *args: Any,
                 safe: tuple = ()) -> Any:
    """``out`` with ``f(*args)`` where ``mask`` holds; ``f`` is elementwise and ``args``
    broadcast to ``mask``'s shape.

    On the host ``f`` runs on the masked elements only (not at all when there are none)
    and ``out`` is written in place. On a device it runs on every element and a select
    keeps its values where ``mask`` holds; ``safe`` gives, per argument, a value put in
    the other elements, for an ``f`` that would be slow or fail on them (an iteration
    that converges slowly there)."""
    if xp is np:
        if mask.any():
            out[mask] = f(*(_picked(a, mask) for a in args))
        return out
    if safe:
        args = tuple(xp.where(mask, a, s) for a, s in zip(args, safe))
    return xp.where(mask, f(*args), out)


def _picked(a: Any, mask: Any) -> Any:
    """The elements of host array ``a``, broadcast to ``mask``'s shape, where it holds."""
    return (a if np.shape(a) == mask.shape else np.broadcast_to(a, mask.shape))[mask]


def converging(xp: Any, step: int, not_done: Callable[[], Any]) -> bool:
    """Whether an iteration goes on after its ``step``-th step (counted from 1):
    ``not_done()``, the mask of the elements still converging, is read every step on
    the host, every ``DEVICE_TEST_EVERY``-th step on a device."""
    if xp is not np and step % DEVICE_TEST_EVERY:
        return True
    return bool(not_done().any())


__all__ = ["DEVICE_TEST_EVERY", "converging", "may_hold", "where_masked"]
