"""The Gamma function family of ``jax.scipy.special`` built on ``lax.lgamma``: ``gamma``,
``gammasgn``, ``loggamma``, ``beta``, ``poch``, ``factorial``, ``comb``, the Box-Cox
transforms and the Bernoulli numbers.

``gamma`` and ``loggamma`` also take complex arguments, computed as JAX computes them:
Lanczos's approximation (g = 7, nine coefficients) with the reflection formula left of
``Re z = 1/2``; ``loggamma`` instead shifts ``z`` right by ``n`` and subtracts
``log z + ... + log(z + n - 1)``, which puts its one branch cut on the negative real axis
(SciPy's principal branch). The other functions take real arguments only (complex ones
raise, as JAX's ``gammasgn``, ``beta`` and ``poch`` do). Values follow JAX's definitions
at the poles and edges: ``gamma`` is NaN at the negative integers and ``±inf`` at ``±0``
(complex ``gamma`` and ``loggamma``: ``nan+nanj`` at the non-positive integers and where a
part is NaN); ``factorial`` and ``comb`` are 0 outside their domain. ``poch`` has JAX's
custom derivative (digamma differences), the others differentiate through ``lgamma``,
``exp``, ``log`` and ``sin`` (complex ``loggamma`` in forward mode only, as its shift is a
``while_loop``, as in JAX).
"""
from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import full_like, promote_args_inexact, scalar_like
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


# Lanczos's approximation with g = 7 and nine coefficients (C. Lanczos, "A Precision
# Approximation of the Gamma Function", SIAM J. Numer. Anal. B 1, 1964; the coefficients as
# GSL's specfunc/gamma.c and JAX list them).
_LANCZOS_G = 7.0
_LANCZOS_COEFFS = np.array([
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7])
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)  # Python floats: weakly typed
_LOG_PI = math.log(math.pi)


def _lanczos_loggamma(z: Any) -> Any:
    """``log Gamma(z)`` for complex ``z`` by Lanczos's series, reflected through
    ``Gamma(z) Gamma(1 - z) = pi / sin(pi z)`` where ``Re z < 1/2``; its imaginary part is
    ``arg Gamma(z)`` only up to multiples of ``2 pi`` on the reflected side."""
    reflect = lax.real(z) < 0.5
    zz = _where(reflect, 1.0 - z, z) - 1.0
    coeffs = jnp.asarray(_LANCZOS_COEFFS, dtype=z.dtype)
    ks = jnp.asarray(np.arange(1, len(_LANCZOS_COEFFS)), dtype=z.dtype)
    ag = coeffs[0] + jnp.sum(coeffs[1:] / (zz[..., None] + ks), axis=-1)
    t = zz + (_LANCZOS_G + 0.5)
    lanczos = _HALF_LOG_2PI + (zz + 0.5) * lax.log(t) - t + lax.log(ag)
    # the reflected branch sees a harmless z where it is not taken, so that no NaN from
    # log(sin(pi z)) reaches the gradient through the select
    z_reflect = _where(reflect, z, full_like(z, 0.5))
    reflected = _LOG_PI - lax.log(lax.sin(np.pi * z_reflect)) - lanczos
    return _where(reflect, reflected, lanczos)


def _complex_poles(z: Any) -> tuple[Any, Any]:
    """Where ``z`` is a pole of Gamma (a non-positive integer) or NaN, and ``z`` with those
    entries replaced by 1 (so that no NaN reaches the gradient through the final select)."""
    re = lax.real(z)
    bad = ((lax.imag(z) == 0) & (re == lax.floor(re)) & (re <= 0)) | jnp.isnan(z)
    return bad, _where(bad, full_like(z, 1), z)


def _complex_gamma(z: Any) -> Any:
    """Gamma of complex ``z`` as ``exp`` of the reflected Lanczos ``log Gamma``."""
    bad, z_safe = _complex_poles(z)
    return _where(bad, full_like(z, complex(np.nan, np.nan)), lax.exp(_lanczos_loggamma(z_safe)))


def _complex_loggamma(z: Any) -> Any:
    """The principal ``log Gamma`` of complex ``z`` (SciPy's branch cut)."""
    # loggamma(z) = loggamma(z + n) - sum_{k < n} log(z + k) with Re(z + n) >= 1/2: the sum
    # of principal logs makes the one branch cut the negative real axis, as in SciPy
    bad, z_safe = _complex_poles(z)
    n = lax.max(jnp.ceil(0.5 - lax.real(z_safe)).astype(int), 0)

    def body(state: tuple) -> tuple:
        k, sum_log = state
        more = k < n
        zk = _where(more, z_safe + k, full_like(z_safe, 1))
        return k + 1, sum_log + _where(more, lax.log(zk), full_like(sum_log, 0))

    _, sum_log = lax.while_loop(lambda state: jnp.any(state[0] < n), body,
                                (0, full_like(z_safe, 0)))
    out = _lanczos_loggamma(z_safe + n) - sum_log
    return _where(bad, full_like(z, complex(np.nan, np.nan)), out)


def gamma(x: Any) -> Any:
    """The Gamma function (``jax.scipy.special.gamma``). For real ``x``,
    ``sign * exp(lgamma(x))``: NaN at the negative integers and ``-inf``, ``±inf`` at
    ``±0``. For complex ``x``, ``exp`` of Lanczos's ``log Gamma`` (reflected left of
    ``Re x = 1/2``): ``nan+nanj`` at the non-positive integers and where a part is NaN.

    >>> import fungrad.scipy.special as fss
    >>> print(fss.gamma(5.0))
    24.0
    >>> print(fss.gamma(1j))
    (-0.15494962-0.49801546j)
    """
    x, = promote_args_inexact("gamma", x)
    if x.dtype.kind == "c":
        return _complex_gamma(x)
    return lax.stop_gradient(_gammasgn(x)) * lax.exp(lax.lgamma(x))


def loggamma(x: Any) -> Any:
    """The principal branch of ``log(Gamma(x))`` (``jax.scipy.special.loggamma``): for real
    ``x``, ``lgamma(x)`` where ``x > 0`` and NaN elsewhere; for complex ``x``, the analytic
    continuation with one branch cut on the negative real axis (SciPy's), ``nan+nanj`` at
    the non-positive integers and where a part is NaN. The complex form shifts ``x`` right in
    a ``while_loop``, so it differentiates in forward mode only, as in JAX.

    >>> import fungrad.scipy.special as fss
    >>> print(fss.loggamma(-0.5 + 0j))
    (1.2655125-3.1415927j)
    """
    x, = promote_args_inexact("loggamma", x)
    if x.dtype.kind == "c":
        return _complex_loggamma(x)
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
