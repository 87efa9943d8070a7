"""The standardisation shared by the location-scale distributions (``cauchy``, ``expon``,
``gumbel_l``, ``gumbel_r``, ``logistic``): ``z = (x - loc) / scale`` in the promoted type."""
from __future__ import annotations

from typing import Any

from fungrad.numpy._util import promote_args_inexact


def standardize(fname: str, x: Any, loc: Any, scale: Any) -> tuple[Any, Any]:
    """``(z, scale)`` with ``x``, ``loc`` and ``scale`` promoted together (to an inexact
    type, as JAX's stats functions do); ``fname`` names the caller in errors."""
    x, loc, scale = promote_args_inexact(fname, x, loc, scale)
    return (x - loc) / scale, scale
