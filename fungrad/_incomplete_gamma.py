"""The regularized incomplete Gamma functions for ``fungrad.random``'s Gamma draws, which
differentiate ``P(a, x)`` in ``a``: ``lax.igamma`` and ``lax.igammac`` (whose JVPs carry the
derivative in ``a``, ``lax.igamma_grad_a``), under one name with an ``upper`` switch.
"""
from __future__ import annotations

from typing import Any

from fungrad import lax


def igamma(a: Any, x: Any, upper: bool) -> Any:
    """``Q(a, x)`` if ``upper`` else ``P(a, x)``, for arrays of one inexact dtype; NaN
    outside ``a > 0, x >= 0``."""
    return lax.igammac(a, x) if upper else lax.igamma(a, x)
