"""Hypergeometric functions and relatives for ``fungrad.scipy.special``: ``hyp1f1``,
``hyp2f1``, the Faddeeva function ``wofz`` and the spherical harmonics ``sph_harm_y``,
with JAX 0.10's methods, edge values and derivative rules.

* ``hyp1f1`` and ``hyp2f1`` follow Pearson, Olver & Porter, "Numerical methods for the
  computation of the confluent and Gauss hypergeometric functions" (2017): the Taylor
  series of 1F1 for ``|x| < 100`` and its asymptotic series beyond; the Taylor series of 2F1,
  its terminating form when ``a`` or ``b`` is a non-positive integer, Euler's transformation
  for ``c - a - b <= -1``, and the digamma expansion of Abramowitz & Stegun 15.3.10-12 near
  ``x = 1``. Every series stops, element by element, where its term drops below the dtype's
  resolution relative to the sum (at most 250 terms), as a batched ``while_loop`` does in JAX.
  The derivatives in the parameters are the series of the Wolfram Functions site
  (07.20.20.0001-4 and 07.23.20.0001-5) that JAX uses; in ``x``, ``(a/b) 1F1(a+1; b+1; x)``.
* ``wofz(z) = exp(-z**2) erfc(-i z)`` is Weideman's rational approximation (SIAM J. Numer.
  Anal. 31, 1994) with 32 terms for ``Im z >= 0`` and the reflection
  ``w(-z) = 2 exp(-z**2) - w(z)`` below; its coefficients are computed here from the
  paper's FFT construction. Derivative ``-2 z w(z) + 2i / sqrt(pi)``.
* ``sph_harm_y`` uses the orthonormalised associated Legendre functions, from
  ``P_m^m`` up in the degree by the three-term recurrence, with the Condon-Shortley phase.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad.numpy._util import (aval, full_like, promote_args_inexact, promote_dtypes_complex,
                                 static_int)
from fungrad.numpy._util import where as _where
from fungrad.scipy._special_gamma import gamma
from fungrad.transforms.custom_derivatives import SymbolicZero, custom_jvp

_MAX_TERMS = 250


def _eps(x: Any) -> float:
    return float(np.finfo(aval(x).dtype).eps)


def _per_element_while(cond: Callable, body: Callable, init: tuple) -> tuple:
    """``while cond(state): state = body(state)`` for each element of the equal-shape arrays
    in ``init`` on its own: an element whose ``cond`` fails keeps its state (the semantics
    of a ``while_loop`` batched by ``vmap``), and the loop ends when all have stopped."""
    def loop_body(carry):
        running, state = carry
        new = body(state)
        state = tuple(lax.select(running, n, o) for n, o in zip(new, state))
        return cond(state), state
    return lax.while_loop(lambda carry: jnp.any(carry[0]), loop_body, (cond(init), init))[1]


def _sum_series(start: Any, first: Any, ratio: Callable, weight: Callable | None = None,
                relative_test: bool = True) -> Any:
    """``start + sum_{k>=1} weight(k) term_k`` with ``term_1 = first`` and ``term_{k+1} =
    term_k ratio(k)``, stopping per element before the term where ``|term| / |sum|`` (or,
    with ``relative_test=False``, ``|term| / eps`` against ``|sum|``) is within the dtype's
    resolution, or at 250 terms."""
    eps = _eps(start)

    def cond(state):
        total, k, term = state
        small = (abs(term) / abs(total) > eps) if relative_test else (abs(term) > eps * abs(total))
        return (k < _MAX_TERMS) & small

    def body(state):
        total, k, term = state
        return total + (term if weight is None else term * weight(k)), k + 1, term * ratio(k)
    return _per_element_while(cond, body, (start, jnp.ones_like(start), first))[0]


# --------------------------------------------------------------------------- hyp1f1

def _hyp1f1_series(a: Any, b: Any, x: Any) -> Any:
    return _sum_series(jnp.ones_like(x), a / b * x, lambda k: (a + k) / (b + k) * x / (k + 1))


def _hyp1f1_asymptotic(a: Any, b: Any, x: Any) -> Any:
    # 1F1 ~ Gamma(b)/Gamma(a) e^x x^(a-b) sum_k (b-a)_k (1-a)_k / (k! x^k) for large real x
    total = _sum_series(jnp.ones_like(x), (b - a) * (1 - a) / x,
                        lambda k: (b - a + k) * (1 - a + k) / (k + 1) / x)
    return gamma(b) / gamma(a) * jnp.exp(x) * x ** (a - b) * total


def _hyp1f1_parameter_derivative(a: Any, b: Any, x: Any, weight: Callable) -> Any:
    return _sum_series(jnp.zeros_like(x), a / b * x, lambda k: (a + k) / (b + k) * x / (k + 1),
                       weight)


@custom_jvp
def _hyp1f1(a: Any, b: Any, x: Any) -> Any:
    near = abs(x) < 100
    # each branch sees neutral arguments where the other is used, so that it stops at once
    series = _hyp1f1_series(_where(near, a, 0), _where(near, b, 1), _where(near, x, 0))
    far_ab = _where(near, 1, a), _where(near, 1, b)
    far = _hyp1f1_asymptotic(*far_ab, _where(near, 100, x))
    value = _where(near, series, far)
    index = ((a == 0) * 1 + ((a == b) & (a != 0)) * 2 + ((b == 0) & (a != 0)) * 3)
    return lax.select_n(index.astype(np.int32), value, full_like(x, 1), jnp.exp(x),
                        full_like(x, np.inf))


@_hyp1f1.defjvp
def _hyp1f1_jvp(primals: tuple, tangents: tuple) -> tuple:
    a, b, x = primals
    out = _hyp1f1(a, b, x)
    t = jnp.zeros_like(out)
    a_dot, b_dot, x_dot = tangents
    if not isinstance(a_dot, SymbolicZero):  # sum_k term_k (psi(a+k) - psi(a))
        t = t + a_dot * _hyp1f1_parameter_derivative(
            a, b, x, lambda k: lax.digamma(a + k) - lax.digamma(a))
    if not isinstance(b_dot, SymbolicZero):  # sum_k term_k (psi(b) - psi(b+k))
        t = t + b_dot * _hyp1f1_parameter_derivative(
            a, b, x, lambda k: lax.digamma(b) - lax.digamma(b + k))
    if not isinstance(x_dot, SymbolicZero):
        t = t + x_dot * (a / b * _hyp1f1(a + 1, b + 1, x))
    return out, t


_hyp1f1.defjvp(_hyp1f1_jvp, symbolic_zeros=True)


def _real_args(fname: str, *args: Any) -> list:
    args = promote_args_inexact(fname, *args)
    if aval(args[0]).dtype.kind == "c":
        raise ValueError(f"{fname} does not support complex-valued inputs.")
    return jnp.broadcast_arrays(*args)


def hyp1f1(a: Any, b: Any, x: Any) -> Any:
    """The confluent hypergeometric function ``1F1(a; b; x) = sum_k (a)_k / ((b)_k k!) x**k``
    (``jax.scipy.special.hyp1f1``), for real arguments.

    Large values may lose accuracy in float32. As in JAX, ``1F1(0; 0; x) = 1`` (SciPy
    gives inf there), ``1F1(a; a; x) = exp(x)`` and ``1F1(a; 0; x) = inf`` for ``a != 0``.
    Differentiable in all three arguments.

    >>> round(float(hyp1f1(1.0, 2.0, 1.0)), 6)  # (e - 1) / 1
    1.718282
    """
    return _hyp1f1(*_real_args("hyp1f1", a, b, x))


# --------------------------------------------------------------------------- hyp2f1

def _is_negative_integer(v: Any, eps: float) -> Any:
    return (v <= 0) & (abs(v - jnp.round(v)) < eps)


def _hyp2f1_terminal(a: Any, b: Any, c: Any, x: Any) -> Any:
    """The polynomial 2F1 when ``a`` (or ``b``, swapped in) is a non-positive integer."""
    eps = 50 * _eps(x)
    c_pole_above_b = (jnp.remainder(c, 1) == 0) & (c <= 0) & (c > b)
    swap = (b < a) & (abs(b - jnp.round(b)) < eps) & ~c_pole_above_b
    a, b = abs(_where(swap, b, a)), _where(swap, a, b)

    def body(state):
        total, i, term = state
        term = term * (-(a - i + 1) / (c + i - 1) * (b + i - 1) / i * x)
        return total + term, i + 1, term
    one = jnp.ones_like(x)
    return _per_element_while(lambda s: s[1] < a + 1, body, (one, one, one))[0]


def _hyp2f1_series(a: Any, b: Any, c: Any, x: Any) -> Any:
    return _sum_series(jnp.zeros_like(x), jnp.ones_like(x),
                       lambda k: (a + k - 1) * (b + k - 1) / (c + k - 1) / k * x,
                       relative_test=False)


def _hyp2f1_near_one(a: Any, b: Any, c: Any, x: Any) -> Any:
    """2F1 for ``x`` near 1 when ``d = c - a - b`` is (near) an integer, where Gauss's
    connection formula has poles: the digamma series of A&S 15.3.10-12 in ``1 - x``."""
    rtol = _eps(x)
    d = c - a - b
    s = 1 - x
    rd = jnp.round(d)
    up = rd >= 0
    e = _where(up, d, -d)
    d1, d2 = _where(up, d, 0), _where(up, 0, d)
    ard = abs(rd)
    log_s = jnp.log(s)
    psi1 = lax.digamma(jnp.ones_like(x))
    y = (psi1 + lax.digamma(1 + e) - lax.digamma(a + d1) - lax.digamma(b + d1) - log_s) \
        / gamma(e + 1)
    p = (a + d1) * (b + d1) * s / gamma(e + 2)

    def body(state):
        p, q, t, y = state
        r = (lax.digamma(1 + t) + lax.digamma(1 + t + e) - lax.digamma(a + t + d1)
             - lax.digamma(b + t + d1) - log_s)
        q = p * r
        p = p * (s * (a + t + d1) / (t + 1)) * ((b + t + d1) / (t + 1 + e))
        return p, q, t + 1, y + q
    cond = lambda st: (st[2] < _MAX_TERMS) & (abs(st[1]) >= rtol * abs(st[3]))
    y = _per_element_while(cond, body, (p, y, jnp.ones_like(x), y))[3]

    def finite_body(state):  # the finite sum over the |d| - 1 terms of the other side
        i, p, t, y1 = state
        p = p * (s * (a + t + d2) * (b + t + d2) / (1 - e + t))
        t = t + 1
        return i + 1, p / t, t, y1 + p / t
    one = jnp.ones_like(x)
    y1 = _per_element_while(lambda st: st[0] < ard, finite_body,
                            (one, one, jnp.zeros_like(x), one))[3]
    gc = gamma(c)
    y1 = y1 * (gamma(e) * gc / (gamma(a + d1) * gamma(b + d1)))
    y_scaled = y * (gc / (gamma(a + d2) * gamma(b + d2)))
    y_scaled = _where(jnp.remainder(ard, 2) == 1, -y_scaled, y_scaled)
    q = s ** rd
    combined = _where(rd > 0, y_scaled * q + y1, y_scaled + y1 * q)
    return _where(rd == 0, y * gc / (gamma(a) * gamma(b)), combined)


def _hyp2f1_terminal_or_series(a: Any, b: Any, c: Any, x: Any, used: Any) -> Any:
    """The Taylor series, the terminating polynomial or the digamma series, by element;
    elements outside ``used`` get neutral arguments (their results are discarded)."""
    eps = 50 * _eps(x)
    d = c - a - b
    terminal = _is_negative_integer(a, eps) | _is_negative_integer(b, eps)
    index = _where((x > 0.9) & ~terminal, _where(abs(d - jnp.round(d)) >= eps, 0, 1),
                   _where(terminal, 2, 0))
    index = _where(used, index, 0)

    def neutral(branch, args, fill):
        on = index == branch
        return [_where(on, v, f) for v, f in zip(args, fill)]
    series = _hyp2f1_series(*neutral(0, (a, b, c, x), (0, 0, 1, 0)))
    near_one = _hyp2f1_near_one(*neutral(1, (a, b, c, x), (1, 1, 3, 0.999)))
    poly = _hyp2f1_terminal(*neutral(2, (a, b, c, x), (0, 0, 1, 0)))
    return lax.select_n(index.astype(np.int32), series, near_one, poly)


@custom_jvp
def _hyp2f1(a: Any, b: Any, c: Any, x: Any) -> Any:
    eps = 50 * _eps(x)
    d, s, ca, cb = c - a - b, 1 - x, c - a, c - b
    index = _where((x == 0) | (((a == 0) | (b == 0)) & (c != 0)), 0,
            _where((c == 0) | ((c < 0) & (jnp.remainder(c, 1) == 0)), 1,
            _where((d <= -1) & ~((abs(d - jnp.round(d)) >= eps) & (s < 0)), 2,
            _where((d <= 0) & (x == 1), 1,
            _where((x < 1) & (b == c), 3,
            _where((x < 1) & (a == c), 4,
            _where(x > 1, 1, _where(x == 1, 5, 6))))))))
    index = index.astype(np.int32)
    euler = s ** d * _hyp2f1_terminal_or_series(ca, cb, c, x, index == 2)
    at_one = gamma(c) * gamma(d) / (gamma(ca) * gamma(cb))
    direct = _hyp2f1_terminal_or_series(a, b, c, x, index == 6)
    return lax.select_n(index, full_like(x, 1), full_like(x, np.inf), euler, s ** -a, s ** -b,
                        at_one, direct)


def _hyp2f1_parameter_derivative(a: Any, b: Any, c: Any, x: Any, weight: Callable) -> Any:
    return _sum_series(jnp.zeros_like(x), a * b / c * x,
                       lambda k: (a + k) * (b + k) / (c + k) / (k + 1) * x, weight)


@_hyp2f1.defjvp
def _hyp2f1_jvp(primals: tuple, tangents: tuple) -> tuple:
    a, b, c, x = primals
    out = _hyp2f1(a, b, c, x)
    t = jnp.zeros_like(out)
    weights = (lambda k: lax.digamma(a + k) - lax.digamma(a),
               lambda k: lax.digamma(b + k) - lax.digamma(b),
               lambda k: lax.digamma(c) - lax.digamma(c + k))
    for dot, weight in zip(tangents[:3], weights):
        if not isinstance(dot, SymbolicZero):
            t = t + dot * _hyp2f1_parameter_derivative(a, b, c, x, weight)
    if not isinstance(tangents[3], SymbolicZero):
        t = t + tangents[3] * (a * b / c * _hyp2f1(a + 1, b + 1, c + 1, x))
    return out, t


_hyp2f1.defjvp(_hyp2f1_jvp, symbolic_zeros=True)


def hyp2f1(a: Any, b: Any, c: Any, x: Any) -> Any:
    """The Gauss hypergeometric function ``2F1(a, b; c; x) = sum_k (a)_k (b)_k / ((c)_k k!)
    x**k`` (``jax.scipy.special.hyp2f1``), for real arguments and ``x <= 1``.

    Large values may lose accuracy in float32. As in JAX: 1 at ``x = 0`` or where ``a`` or
    ``b`` is 0 (``c != 0``), inf where ``c`` is a non-positive integer, at ``x = 1`` with
    ``c - a - b <= 0`` and for ``x > 1``. Differentiable in all four arguments.

    >>> round(float(hyp2f1(1.0, 1.0, 2.0, 0.5)), 6)  # -log(1 - x) / x
    1.386294
    """
    return _hyp2f1(*_real_args("hyp2f1", a, b, c, x))


# --------------------------------------------------------------------------- wofz

def _weideman_coefficients(n: int) -> tuple[float, np.ndarray]:
    """Weideman's ``L`` and the ``n`` polynomial coefficients (highest degree first) of
    ``w(z) ~ 2 p(Z) / (L - iz)**2 + 1 / (sqrt(pi) (L - iz))``, ``Z = (L + iz) / (L - iz)``:
    the Fourier coefficients of ``exp(-t**2) (L**2 + t**2)`` at ``t = L tan(theta / 2)``."""
    m = 2 * n
    length = math.sqrt(n / math.sqrt(2))
    theta = np.arange(-m + 1, m) * np.pi / m
    t = length * np.tan(theta / 2)
    f = np.concatenate([[0.0], np.exp(-t * t) * (length ** 2 + t * t)])
    a = np.real(np.fft.fft(np.fft.fftshift(f))) / (2 * m)
    return length, a[1:n + 1][::-1].copy()


_WOFZ_L, _WOFZ_COEFFS = _weideman_coefficients(32)


def _wofz_upper(z: Any) -> Any:
    """Weideman's approximation, for ``Im z >= 0``."""
    iz = lax.complex(-lax.imag(z), lax.real(z))
    denom = _WOFZ_L - iz
    p = jnp.polyval(jnp.asarray(_WOFZ_COEFFS, dtype=aval(z).dtype), (_WOFZ_L + iz) / denom)
    return 2 * p / (denom * denom) + (1 / math.sqrt(math.pi)) / denom


@custom_jvp
def _wofz(z: Any) -> Any:
    upper = lax.imag(z) >= 0
    w = _wofz_upper(_where(upper, z, -z))
    return _where(upper, w, 2 * jnp.exp(-(z * z)) - w)


_wofz.defjvps(lambda t, w, z: t * (-2 * z * w + 2j / math.sqrt(math.pi)))


def wofz(z: Any) -> Any:
    """The Faddeeva function ``w(z) = exp(-z**2) erfc(-i z)`` (``jax.scipy.special.wofz``),
    complex-valued; real inputs are promoted to the matching complex dtype.

    >>> w = complex(wofz(0.0))  # 1 + 0j, to float32 rounding (as in JAX)
    >>> round(w.real, 6), w.imag
    (1.0, 0.0)
    """
    z, = promote_args_inexact("wofz", z)
    z, = promote_dtypes_complex(z)
    return _wofz(z)


# --------------------------------------------------------------------------- sph_harm_y

def _normalized_legendre(n: Any, m: Any, x: Any, sin_theta: Any, n_max: int) -> Any:
    """The orthonormalised ``P_n^m(x)`` (with the Condon-Shortley phase) for ``0 <= n, m <=
    n_max`` by element; 0 where ``m > n``."""
    mf = m.astype(aval(x).dtype)
    p = full_like(x, 0.5 / math.sqrt(math.pi))  # P_0^0
    for k in range(1, n_max + 1):  # P_m^m = -sqrt(1 + 1/(2m)) sin(theta) P_{m-1}^{m-1}
        p = _where(k <= m, p * (-math.sqrt(1 + 0.5 / k)) * sin_theta, p)
    out = _where(n == m, p, jnp.zeros_like(p))
    previous = jnp.zeros_like(p)
    for degree in range(1, n_max + 1):
        above = degree > m
        ms = _where(above, mf, 0)  # keeps the unused coefficients finite (and their gradients)
        a = jnp.sqrt((4 * degree ** 2 - 1) / (degree ** 2 - ms * ms))
        b = jnp.sqrt(((degree - 1) ** 2 - ms * ms) / (4 * (degree - 1) ** 2 - 1))
        new = a * (x * p - b * previous)
        previous, p = _where(above, p, previous), _where(above, new, p)
        out = _where(above & (n == degree), p, out)
    return out


def sph_harm_y(n: Any, m: Any, theta: Any, phi: Any, diff_n: int | None = None,
               n_max: int | None = None) -> Any:
    """The spherical harmonics ``Y_n^m(theta, phi) = N_n^m P_n^m(cos theta) e^(i m phi)``,
    orthonormal on the sphere (``jax.scipy.special.sph_harm_y``, SciPy's convention:
    ``theta`` the colatitude in ``[0, pi]``, ``phi`` the longitude).

    ``n_max`` (JAX's extra argument) is the largest degree, needed statically: by default
    ``max(n)``, which must then be concrete (pass ``n_max`` under ``jit``); degrees and
    orders above it are clipped to it. Orders ``|m| > n`` give 0. ``diff_n`` is not
    supported, as in JAX.

    >>> round(float(sph_harm_y(jnp.array([0]), jnp.array([0]), 0.3, 0.1).real[0]), 6)
    0.282095
    """
    if diff_n is not None:
        raise NotImplementedError(
            "The 'diff_n' argument to fungrad.scipy.special.sph_harm_y is not supported.")
    what = ("sph_harm_y: n_max (by default max(n), so pass n_max statically under a "
            "transformation)")
    n_max = static_int(jnp.max(n) if n_max is None else n_max, what)
    theta, phi = promote_args_inexact("sph_harm_y", theta, phi)
    if aval(theta).ndim == 0:
        theta = jnp.reshape(theta, (1,))
    n, m, theta, phi = jnp.broadcast_arrays(n, m, theta, phi)
    n_eff = jnp.clip(n, 0, n_max)
    m_abs = jnp.clip(abs(m), 0, n_max)
    legendre = _normalized_legendre(n_eff, m_abs, jnp.cos(theta), jnp.sin(theta), n_max)
    angle = abs(m) * phi  # the order itself, not the clipped one (as JAX)
    harmonic = lax.complex(legendre * jnp.cos(angle), legendre * jnp.sin(angle))
    sign = 1 - 2 * jnp.remainder(abs(m), 2)  # (-1)^|m|
    return _where(m < 0, sign * jnp.conjugate(harmonic), harmonic)
