"""Special functions for ``fungrad.scipy.special`` built on ``fungrad.lax``: ``erfcx`` (an
asymptotic series where ``exp(x**2)`` overflows), the modified Bessel functions ``i0e``/``i1e``
(``lax.bessel_i0e``/``bessel_i1e``) with ``i0``/``i1``, and the Hurwitz ``zeta``: its values
are ``lax.zeta``'s and, as in JAX, its derivative (which ``lax.zeta`` lacks) is that of the
Euler-Maclaurin series below.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact
from fungrad.scipy._special_hyper import _wofz
from fungrad.transforms.api import jvp
from fungrad.transforms.custom_derivatives import custom_jvp


def _dtype(x: Any) -> np.dtype:
    return np.dtype(jnp.result_type(x))


def _real(fname: str, x: Any) -> Any:
    x, = promote_args_inexact(fname, x)
    if _dtype(x).kind == "c":
        raise ValueError(f"{fname} does not support complex-valued inputs")
    return x


def i0e(x: Any) -> Any:
    """Exponentially scaled modified Bessel function of order 0, ``e^-|x| I0(x)``
    (``jax.scipy.special.i0e``).

    >>> print(f"{float(i0e(1.0)):.5f}")
    0.46576
    """
    return lax.bessel_i0e(_real("i0e", x))


def i1e(x: Any) -> Any:
    """Exponentially scaled modified Bessel function of order 1, ``e^-|x| I1(x)``
    (``jax.scipy.special.i1e``).

    >>> print(f"{float(i1e(1.0)):.5f}")
    0.20791
    """
    return lax.bessel_i1e(_real("i1e", x))


def i0(x: Any) -> Any:
    """Modified Bessel function of order 0, ``I0(x) = e^|x| i0e(x)``
    (``jax.scipy.special.i0``).

    >>> round(float(i0(1.0)), 6)
    1.266066
    """
    x = _real("i0", x)
    return jnp.exp(jnp.abs(x)) * lax.bessel_i0e(x)


def i1(x: Any) -> Any:
    """Modified Bessel function of order 1, ``I1(x) = e^|x| i1e(x)``
    (``jax.scipy.special.i1``).

    >>> round(float(i1(1.0)), 6)
    0.565159
    """
    x = _real("i1", x)
    return jnp.exp(jnp.abs(x)) * lax.bessel_i1e(x)


# --------------------------------------------------------------------------- erfcx

def _erfcx_asymptotic(x: Any, nterms: int) -> Any:
    """``erfcx(x) ~ (1 + sum_k (-1)^k (2k-1)!! / (2 x^2)^k) / (x sqrt(pi))``."""
    t = 1 / (2 * x * x)
    p = jnp.ones_like(x)
    for k in range(nterms - 1, 0, -1):  # Horner, from the last term
        p = 1 - (2 * k - 1) * t * p
    return p / (x * math.sqrt(math.pi))


@custom_jvp
def _erfcx(x: Any) -> Any:
    dtype = _dtype(x)
    if dtype not in (np.float32, np.float64):  # float16, bfloat16: in float32 (as JAX)
        return _erfcx(x.astype(np.float32)).astype(dtype)
    # exp(x^2) overflows past sqrt(log(max)); there the series' first omitted term is
    # below the resolution with 5 (float32) or 9 (float64) terms
    large = x > math.sqrt(math.log(np.finfo(dtype).max))
    safe_x = jnp.where(large, 1, x)
    direct = jnp.exp(safe_x * safe_x) * lax.erfc(safe_x)
    return jnp.where(large, _erfcx_asymptotic(x, 5 if dtype == np.float32 else 9), direct)


@_erfcx.defjvp
def _erfcx_jvp(primals: tuple, tangents: tuple) -> tuple:
    x, = primals
    t, = tangents
    y = _erfcx(x)
    return y, t * (2 * x * y - 2 / math.sqrt(math.pi))


def erfcx(x: Any) -> Any:
    """The scaled complementary error function ``exp(x**2) erfc(x)``
    (``jax.scipy.special.erfcx``), finite for large ``x`` where the product overflows;
    for complex ``x``, the Faddeeva function at ``i x``.

    >>> print(f"{float(erfcx(30.0)):.6f}")  # about 1 / (30 sqrt(pi))
    0.018796
    """
    x, = promote_args_inexact("erfcx", x)
    if _dtype(x).kind == "c":
        return _wofz(lax.complex(-lax.imag(x), lax.real(x)))
    return _erfcx(x)


# --------------------------------------------------------------------------- zeta

def _bernoulli_even(count: int) -> list[Fraction]:
    """``B_2, B_4, ..., B_{2 count}`` from ``sum_{j<m} C(m+1, j) B_j = -(m+1) B_m``."""
    b = [Fraction(1)]
    for m in range(1, 2 * count + 1):
        b.append(-sum(math.comb(m + 1, j) * b[j] for j in range(m)) / (m + 1))
    return [b[2 * k] for k in range(1, count + 1)]


# (2k)! / B_2k for k = 1..16: the Euler-Maclaurin correction terms' denominators
_EM_DENOMINATORS = np.array([float(math.factorial(2 * k) / b)
                             for k, b in enumerate(_bernoulli_even(16), start=1)])


def _zeta_series(x: Any, q: Any) -> Any:
    """Euler-Maclaurin (Johansson 2015, eq. 5): ``sum_{k<N} (q+k)^-x + (q+N)^(1-x)/(x-1)
    + (q+N)^-x (1/2 + sum_{j<M} B_2j/(2j)! x(x+1)...(x+2j-2) / (q+N)^(2j-1))``, with
    N = M = 8 in float32 and 16 in float64 (as JAX's derivative)."""
    dtype = _dtype(q)
    n = 8 if dtype == np.float32 else 16
    k = jnp.arange(n, dtype=dtype)
    total = jnp.sum((q[..., None] + k) ** -x[..., None], axis=-1)
    qn = q + n
    total = total + qn ** (1 - x) / (x - 1)
    ratios = (x[..., None] + jnp.arange(2 * n, dtype=dtype)) / qn[..., None]
    terms = jnp.minimum(jnp.cumprod(ratios, axis=-1)[..., ::2], np.finfo(dtype).max)
    correction = jnp.sum(terms / _EM_DENOMINATORS[:n].astype(dtype), axis=-1)
    return total + qn ** -x * (0.5 + correction)


@custom_jvp
def _zeta(x: Any, q: Any) -> Any:
    return lax.zeta(x, q)


@_zeta.defjvp
def _zeta_jvp(primals: tuple, tangents: tuple) -> tuple:
    # no closed form in x: JAX differentiates the series
    return _zeta(*primals), jvp(_zeta_series, primals, tangents)[1]


def zeta(x: Any, q: Any | None = None) -> Any:
    """The Hurwitz zeta function ``sum_n (n + q)^-x`` (``jax.scipy.special.zeta``); as in
    JAX, ``q`` is required (the Riemann zeta function is ``zeta(x, 1.0)``).

    >>> round(float(zeta(2.0, 1.0)), 6)  # pi^2 / 6
    1.644934
    """
    if q is None:
        raise NotImplementedError("Riemann zeta function not implemented; pass q != None to "
                                  "compute the Hurwitz Zeta function.")
    x, q = promote_args_inexact("zeta", x, q)
    x, q = jnp.broadcast_arrays(x, q)
    return _zeta(x, q)
