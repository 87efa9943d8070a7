"""The Gamma function family of ``jax.scipy.special`` built on ``lax.lgamma``: ``gamma``,
``gammasgn``, ``loggamma``, ``beta``, ``poch``, ``factorial``, ``comb``, the Box-Cox
transforms and the Bernoulli numbers.

Real arguments only (complex ones raise, as JAX's ``gammasgn``, ``beta`` and ``poch``
do). Values follow JAX's definitions at the poles and edges: ``gamma`` is NaN at the
negative integers and ``±inf`` at ``±0``; ``factorial`` and ``comb`` are 0 outside their
domain. ``poch`` has JAX's custom derivative (digamma differences), the others
differentiate through ``lgamma``, ``exp`` and ``log``.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import promote_args_inexact, scalar_like
from fungrad.numpy._util import where as _where
from fungrad.transforms.custom_derivatives import custom_jvp


def _real(name: str, *args: Any) -> list:
    """``args`` promoted to a common inexact dtype; complex ones raise."""
    args = promote_args_inexact(name, *args)
    if args[0].dtype.kind == "c":
        raise ValueError(f"{name} does not support complex-valued inputs.")
    return args


def _gammasgn(x: Any) -> Any:
    floor_x = lax.floor(x)
    pole = ((x < 0) & (x == floor_x)) | jnp.isnan(x) | (x == -np.inf)
    odd = lax.rem(floor_x, scalar_like(2, x)) != 0  # Gamma < 0 on (-2k - 1, -2k)
    sign = _where((x < 0) & odd, scalar_like(-1, x), scalar_like(1, x))
    sign = _where(x == 0, jnp.copysign(scalar_like(1, x), x), sign)
    return _where(pole, scalar_like(np.nan, x), sign)


def gammasgn(x: Any) -> Any:
    """The sign of the Gamma function: ``±1``; ``±1`` at ``±0``; NaN at the negative
    integers, ``-inf`` and NaN (``jax.scipy.special.gammasgn``)."""
    x, = _real("gammasgn", x)
    return lax.stop_gradient(_gammasgn(x))


def gamma(x: Any) -> Any:
    """The Gamma function ``sign * exp(lgamma(x))`` for real ``x``: NaN at the negative
    integers and ``-inf``, ``±inf`` at ``±0`` (``jax.scipy.special.gamma``).

    >>> import fungrad.scipy.special as fss
    >>> print(fss.gamma(5.0))
    24.0
    """
    x, = _real("gamma", x)
    return lax.stop_gradient(_gammasgn(x)) * lax.exp(lax.lgamma(x))


def loggamma(x: Any) -> Any:
    """The principal branch of ``log(Gamma(x))``: for real ``x``, ``lgamma(x)`` where
    ``x > 0`` and NaN elsewhere (``jax.scipy.special.loggamma``)."""
    x, = _real("loggamma", x)
    return _where(x > 0, lax.lgamma(x), scalar_like(np.nan, x))


def beta(a: Any, b: Any) -> Any:
    """The Beta function ``Gamma(a) Gamma(b) / Gamma(a + b)``, from ``betaln`` and the
    three signs (``jax.scipy.special.beta``)."""
    a, b = _real("beta", a, b)
    sign = lax.stop_gradient(_gammasgn(a) * _gammasgn(b) * _gammasgn(a + b))
    return sign * lax.exp(lax.lgamma(a) + lax.lgamma(b) - lax.lgamma(a + b))


def _poch(z: Any, m: Any) -> Any:
    return _where(m == 0, scalar_like(1, z), gamma(z + m) / gamma(z))


@custom_jvp
def _poch_custom(z: Any, m: Any) -> Any:
    return _poch(z, m)


@_poch_custom.defjvp
def _poch_jvp(primals: tuple, tangents: tuple) -> tuple:
    # d/dz (z)_m = (digamma(z + m) - digamma(z)) (z)_m; d/dm (z)_m = digamma(z + m) (z)_m
    z, m = primals
    z_dot, m_dot = tangents
    out = _poch(z, m)
    psi_zm = lax.digamma(z + m)
    return out, out * ((psi_zm - lax.digamma(z)) * z_dot + psi_zm * m_dot)


def poch(z: Any, m: Any) -> Any:
    """The Pochhammer symbol ``(z)_m = Gamma(z + m) / Gamma(z)`` (1 where ``m == 0``),
    with JAX's derivatives in ``z`` and ``m`` (``jax.scipy.special.poch``)."""
    z, m = _real("poch", z, m)
    z, m = jnp.broadcast_arrays(z, m)
    return _poch_custom(z, m)


def factorial(n: Any, exact: bool = False) -> Any:
    """``n!`` as ``Gamma(n + 1)`` in floating point, 0 for negative ``n``
    (``jax.scipy.special.factorial``; ``exact=True`` is not supported, as in JAX)."""
    if exact:
        raise NotImplementedError("factorial with exact=True")
    n, = promote_args_inexact("factorial", n)
    return _where(n < 0, scalar_like(0, n), lax.exp(lax.lgamma(n + 1)))


def comb(N: Any, k: Any, *, repetition: bool = False) -> Any:  # noqa: N803
    """``N`` choose ``k`` in floating point, from ``gammaln``: 0 where ``N < 0``,
    ``k < 0`` or ``k > N``; with ``repetition``, ``comb(N + k - 1, k)``, 1 for ``k == 0``
    (``jax.scipy.special.comb``)."""
    N, k = promote_args_inexact("comb", N, k)  # noqa: N806
    if repetition:
        return _where((k == 0) & (N >= 0), scalar_like(1, N), comb(N + k - 1, k))
    ok = (k <= N) & (N >= 0) & (k >= 0)
    n_safe, k_safe = _where(ok, N, scalar_like(0, N)), _where(ok, k, scalar_like(0, k))
    log_c = lax.lgamma(n_safe + 1) - lax.lgamma(k_safe + 1) - lax.lgamma(n_safe + 1 - k_safe)
    return _where(ok, lax.exp(log_c), scalar_like(0, N))


def _boxcox(log_x: Any, lmbda: Any) -> Any:
    zero = lmbda == 0
    safe = _where(zero, scalar_like(1, lmbda), lmbda)
    return _where(zero, log_x, lax.expm1(safe * log_x) / safe)


def boxcox(x: Any, lmbda: Any) -> Any:
    """The Box-Cox transform ``(x**lmbda - 1) / lmbda`` (``log(x)`` for ``lmbda == 0``),
    NaN for ``x < 0`` (``jax.scipy.special.boxcox``)."""
    x, lmbda = promote_args_inexact("boxcox", x, lmbda)
    return _boxcox(lax.log(x), lmbda)


def boxcox1p(x: Any, lmbda: Any) -> Any:
    """The Box-Cox transform of ``1 + x``, accurate for small ``x``
    (``jax.scipy.special.boxcox1p``)."""
    x, lmbda = promote_args_inexact("boxcox1p", x, lmbda)
    return _boxcox(lax.log1p(x), lmbda)


def bernoulli(n: int) -> Any:
    """The Bernoulli numbers ``B_0 .. B_n`` (``B_1 = -1/2``), in the default float dtype
    (``jax.scipy.special.bernoulli``).

    The even ones from the zeta function, ``B_2k = (-1)**(k + 1) 2 (2k)! zeta(2k) /
    (2 pi)**(2k)``, with the zeta series summed to float64 accuracy; the odd ones from
    ``B_3`` on are 0.
    """
    n = operator.index(n)  # a traced n raises a ConcretizationTypeError here
    if n < 0:
        raise ValueError(f"bernoulli: n must be a non-negative integer, got {n}")
    out = np.zeros(n + 1)
    out[:3] = [1.0, -0.5, 1 / 6][:n + 1]
    even = np.arange(4, n + 1, 2, dtype=np.float64)
    if even.size:
        log_mag = (np.log(2.0) + np.array([np.sum(np.log(np.arange(1, m + 1))) for m in even])
                   - even * np.log(2 * np.pi))
        zeta = 1 + np.sum(np.arange(2, 50, dtype=np.float64)[:, None] ** -even[None, :], axis=0)
        signs = np.where((even // 2) % 2 == 1, 1.0, -1.0)
        with np.errstate(over="ignore"):
            out[4::2] = signs * np.exp(log_mag) * zeta
    return jnp.asarray(out, dtype=jnp.zeros(()).dtype)


__all__ = ["bernoulli", "beta", "boxcox", "boxcox1p", "comb", "factorial", "gamma",
           "gammasgn", "loggamma", "poch"]
