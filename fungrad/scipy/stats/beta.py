"""The Beta distribution (``jax.scipy.stats.beta``) on ``[loc, loc + scale]``
(``cdf`` and ``sf`` wait for ``betainc``, which fungrad does not have yet).

>>> float(pdf(0.5, 1., 1.))
1.0
"""
from __future__ import annotations

from typing import Any

from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy import special


def logpdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """``xlogy(a-1, z) + xlog1py(b-1, -z) - betaln(a, b) - log(scale)`` on [0, 1]."""
    x, a, b, loc, scale = promote_args_inexact("beta.logpdf", x, a, b, loc, scale)
    z = (x - loc) / scale
    value = special.xlogy(a - 1, z) + special.xlog1py(b - 1, -z) \
        - special.betaln(a, b) - jnp.log(scale)
    return jnp.where((z < 0) | (z > 1), -jnp.inf, value)


def pdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The Beta density."""
    return jnp.exp(logpdf(x, a, b, loc, scale))
