"""Special functions (erf, erfc, erf_inv, lgamma, digamma, polygamma) over wide ranges.

Dense grids including the tails, the poles and non-finite inputs, against jax
(float32 results against jax's float64 ones rounded to float32; float64 results, with
x64 enabled, against jax's float64), using the harness tolerance table. Where
jax itself is inaccurate (polygamma at negative arguments) the check is an identity
instead: the recurrence ``psi^(m)(x + 1) = psi^(m)(x) + (-1)^m m! / x^(m+1)``.
"""
from __future__ import annotations

import math

import jax
import numpy as np
import pytest

import fungrad
from fungrad import lax
from harness import GRAD_TOL, TOL, assert_same, x64


def _grid(*parts) -> np.ndarray:
    return np.concatenate([np.asarray(p, np.float64).ravel() for p in parts])


NONFINITE = [np.inf, -np.inf, np.nan, 0.0, -0.0]
near_one = 1 - 2.0 ** -np.arange(1, 24)
GRIDS = {
    "erf": _grid(np.linspace(-10, 10, 4001), NONFINITE, [1e-30, -1e-30]),
    "erfc": _grid(np.linspace(-10, 10.5, 4001), np.linspace(9, 9.2, 51), NONFINITE),
    "erf_inv": _grid(np.linspace(-1, 1, 4001), near_one, -near_one, [1.5, -2.0, 1e-30, np.nan]),
    "lgamma": _grid(np.linspace(-30, 30, 6001) + 0.05, np.geomspace(1e-30, 1e30, 601),
                    -np.geomspace(1e-30, 1e6, 601) - 0.25, [0, -1, -2, 1, 2, np.inf, np.nan]),
    "digamma": _grid(np.linspace(-20, 30, 5001) + 0.05, np.geomspace(1e-30, 1e30, 601),
                     [0, -1, -4, np.inf, -np.inf, np.nan]),
}


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_float32_wide_range_against_jax(name):
    """Against jax's float64 result rounded to float32: jax's own float32 lgamma is off by
    2e-6 near its negative roots, beyond the float32 tolerance, where fungrad is not."""
    x = GRIDS[name].astype(np.float32)
    out = getattr(lax, name)(x)
    with x64():
        ref = np.asarray(getattr(jax.lax, name)(x.astype(np.float64))).astype(np.float32)
    assert out.dtype == np.float32 and not out.weak_type
    assert_same(out, ref)


@pytest.mark.parametrize("m", [0, 1, 2, 3, 5])
def test_polygamma_positive_against_jax(m):
    x = _grid(np.linspace(0.01, 40, 2001), np.geomspace(1e-3, 1e4, 201)).astype(np.float32)
    assert_same(lax.polygamma(np.float32(m), x), jax.lax.polygamma(np.full_like(x, m), x))


@pytest.mark.parametrize("m", [0, 1, 2, 3])
def test_polygamma_reflection_recurrence(m):
    """Negative arguments (where jax's polygamma is unreliable) through the recurrence."""
    x = np.linspace(-6.9, -0.1, 400)[np.abs(np.linspace(-6.9, -0.1, 400) % 1 - 0.5) < 0.4]
    with x64():
        lhs = np.asarray(lax.polygamma(np.float64(m), x + 1))
        rhs = np.asarray(lax.polygamma(np.float64(m), x)) \
            + (-1) ** m * math.factorial(m) / x ** (m + 1)
    rtol, atol = TOL[np.dtype(np.float64)]
    scale = math.factorial(m) / np.abs(x) ** (m + 1)  # size of the terms that cancel
    assert np.all(np.abs(lhs - rhs) <= atol * scale + rtol * np.abs(rhs)), (lhs, rhs)


def test_polygamma_poles_and_bad_orders():
    x = np.array([0.0, -1.0, -3.0, 2.5], np.float32)
    for m in (0, 1, 2):
        assert_same(lax.polygamma(np.float32(m), x), jax.lax.polygamma(np.full_like(x, m), x))
    out = np.asarray(lax.polygamma(np.array([1.5, -1.0], np.float32), np.float32(2.0)))
    assert np.isnan(out).all()  # non-integer and negative orders, as in jax


F64_GRIDS = {
    "erf": _grid(np.linspace(-7, 7, 4001), NONFINITE, [1e-300]),
    "erfc": _grid(np.linspace(-7, 26, 4001), NONFINITE),
    "erf_inv": _grid(np.linspace(-0.999999, 0.999999, 4001), 1 - 2.0 ** -np.arange(1, 20)),
    "lgamma": _grid(np.linspace(-20, 30, 4001) + 0.05, np.geomspace(1e-300, 1e300, 301)),
    "digamma": _grid(np.linspace(0.01, 30, 3001), np.geomspace(1e-300, 1e300, 301),
                     -np.arange(1, 10) - 0.5),
}


@pytest.mark.parametrize("name", sorted(F64_GRIDS))
def test_float64_against_jax(name):
    with x64():
        x = F64_GRIDS[name]
        out, ref = getattr(lax, name)(x), getattr(jax.lax, name)(x)
        assert out.dtype == np.float64
        assert_same(out, ref)


def test_float64_erf_inv_far_tail_roundtrips_through_jax_erfc():
    """Near |x| = 1, where jax's float64 erf_inv loses 1e-10: erfc(erf_inv(x)) = 1 - x."""
    q = 2.0 ** -np.arange(10, 53)
    with x64():
        y = lax.erf_inv(1 - q)
        assert_same(jax.lax.erfc(np.asarray(y)), q, check_weak=False)
        assert_same(lax.erf_inv(q - 1), -np.asarray(y))


def test_float64_polygamma_against_jax():
    with x64():
        x = np.linspace(0.05, 30, 1001)
        for m in (1, 2, 4):
            assert_same(lax.polygamma(np.float64(m), x), jax.lax.polygamma(np.full_like(x, m), x))


@pytest.mark.parametrize("name", ["erf", "erfc", "erf_inv", "lgamma", "digamma"])
def test_float64_derivatives(name):
    x = {"erf_inv": np.linspace(-0.9, 0.9, 7), "erf": np.linspace(-3, 3, 7),
         "erfc": np.linspace(-3, 3, 7)}.get(name, np.linspace(-3.4, 3.1, 14))  # poles 0.1 away
    with x64():
        g = lambda api, L: api.vmap(api.grad(api.grad(getattr(L, name))))  # noqa: E731
        assert_same(g(fungrad, lax)(x), g(jax, jax.lax)(x), GRAD_TOL, check_weak=False)
