"""Floating-point edge cases are silent, as in JAX: ``log(0)``, ``sqrt(-1)``, ``0/0``,
overflows and the like give their infs and nans without a NumPy ``RuntimeWarning``,
eagerly, under ``jit`` (also in fused blocks and on the second thread of a parallel tail)
and under ``grad``; the values are JAX's; and the user's own NumPy error state is left
as it was."""
import warnings

import jax
import jax.nn as jnn_ref
import jax.numpy as jnp_ref
import jax.scipy.special as jsp_ref
import numpy as np
import pytest

import fungrad
import fungrad.nn as fnn
import fungrad.numpy as fnp
import fungrad.scipy.special as fsp
from fungrad._core import fpstate
from fungrad.compiler import blocked, parallel
from harness import assert_same

F32, F16 = np.float32, np.float16
INF, NAN = np.inf, np.nan


class Lib:
    """One library's namespaces, so that each case is written once for both."""

    def __init__(self, np_mod, nn, special):
        self.np, self.nn, self.special = np_mod, nn, special


FG, REF = Lib(fnp, fnn, fsp), Lib(jnp_ref, jnn_ref, jsp_ref)

# (name, f(lib, x), input, dtype, differentiable): each input hits an edge case of f.
CASES = [
    ("log_of_zero", lambda L, x: L.np.log(x), [0.0, -1.0, 2.0], F32, True),
    ("log1p_of_minus_one", lambda L, x: L.np.log1p(x), [-1.0, -2.0, 1.0], F32, True),
    ("sqrt_of_negative", lambda L, x: L.np.sqrt(x), [-1.0, 0.0, 4.0], F32, True),
    ("arccos_out_of_range", lambda L, x: L.np.arccos(x), [2.0, -2.0, 0.5], F32, True),
    ("arctanh_of_one", lambda L, x: L.np.arctanh(x), [1.0, -1.0, 2.0, 0.5], F32, True),
    ("zero_over_zero", lambda L, x: x / x, [0.0, 1.0], F32, True),
    ("one_over_zero", lambda L, x: 1.0 / x, [0.0, -0.0, 2.0], F32, True),
    ("reciprocal_of_zero", lambda L, x: L.np.reciprocal(x), [0.0, 4.0], F32, True),
    ("integer_pow_of_zero", lambda L, x: x ** -2, [0.0, 2.0], F32, True),
    ("power_overflow", lambda L, x: x ** 40.0, [1e3, -1e3, 2.0], F32, True),
    ("power_of_negative_base", lambda L, x: L.np.power(x, 0.5), [-4.0, 4.0], F32, True),
    ("exp_overflow", lambda L, x: L.np.exp(x), [100.0, 1000.0, -1000.0, 1.0], F32, True),
    ("cosh_overflow", lambda L, x: L.np.cosh(x), [100.0, -100.0, 1.0], F32, True),
    ("inf_times_zero", lambda L, x: x * 0.0, [INF, 1.0], F32, True),
    ("float16_overflow", lambda L, x: x * x, [300.0, -300.0, 1.0], F16, True),
    ("float16_sum_overflow", lambda L, x: L.np.sum(x), [60000.0, 60000.0, -1.0], F16, True),
    ("float16_meets_a_larger_scalar", lambda L, x: L.np.maximum(x, 1e5), [1.0, -2.0], F16, True),
    ("float16_clipped_beyond_its_range", lambda L, x: L.np.clip(x, -1e5, 1e5), [1.0, -2.0], F16,
     True),
    ("sum_of_inf_minus_inf", lambda L, x: L.np.sum(x), [INF, -INF, 1.0], F32, True),
    ("max_of_nan", lambda L, x: L.np.max(x), [NAN, 1.0, INF], F32, False),
    ("mean_of_empty", lambda L, x: L.np.mean(x), [], F32, True),
    ("variance_of_one_with_ddof", lambda L, x: L.np.var(x, ddof=1), [3.0], F32, False),
    ("norm_overflow", lambda L, x: L.np.linalg.norm(x), [1e30, 1e30], F32, True),
    ("softmax_of_minus_infs", lambda L, x: L.nn.softmax(x), [-INF, -INF], F32, False),
    ("logsumexp_of_minus_infs", lambda L, x: L.nn.logsumexp(x), [-INF, -INF], F32, False),
    ("logit_at_the_ends", lambda L, x: L.special.logit(x), [0.0, 1.0, 0.5], F32, True),
    ("xlogy_at_zero", lambda L, x: L.special.xlogy(x, x), [0.0, 1.0], F32, False),
    ("gammaln_at_poles", lambda L, x: L.special.gammaln(x), [0.0, -1.0, 2.5], F32, True),
    ("nan_and_inf_to_int", lambda L, x: x.astype(np.int32), [NAN, INF, -INF, 1e10, -2.7], F32,
     False),
]
IDS = [c[0] for c in CASES]


def _input(values, dtype):
    return np.array(values, dtype)


def _loud(fn):
    """``fn()`` with every warning raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


@pytest.mark.parametrize("name,f,values,dtype,diff", CASES, ids=IDS)
def test_eager_is_silent_and_matches_jax(name, f, values, dtype, diff):
    x = _input(values, dtype)
    got = _loud(lambda: f(FG, fnp.asarray(x)))
    assert_same(got, f(REF, jnp_ref.asarray(x)), check_weak=False)


@pytest.mark.parametrize("name,f,values,dtype,diff", CASES, ids=IDS)
def test_jit_is_silent_and_matches_jax(name, f, values, dtype, diff):
    x = _input(values, dtype)
    want = f(REF, jnp_ref.asarray(x))
    got = _loud(lambda: fungrad.jit(lambda v: f(FG, v))(fnp.asarray(x)))
    assert_same(got, want, check_weak=False)
    const = fnp.asarray(x)  # a constant: folded at compile time when small
    assert_same(_loud(fungrad.jit(lambda: f(FG, const))), want, check_weak=False)


@pytest.mark.parametrize("name,f,values,dtype,diff", [c for c in CASES if c[4]],
                         ids=[c[0] for c in CASES if c[4]])
def test_grad_is_silent_and_matches_jax(name, f, values, dtype, diff):
    x = _input(values, dtype)
    want = jax.grad(lambda v: jnp_ref.sum(f(REF, v)))(jnp_ref.asarray(x))
    grad = fungrad.grad(lambda v: fnp.sum(f(FG, v)))
    assert_same(_loud(lambda: grad(fnp.asarray(x))), want, check_weak=False)
    assert_same(_loud(lambda: fungrad.jit(grad)(fnp.asarray(x))), want, check_weak=False)


def test_arange_beyond_float16s_range_is_silent():
    got = _loud(lambda: fnp.arange(0, 1e5, 3e4, dtype=fnp.float16))
    assert_same(got, jnp_ref.arange(0, 1e5, 3e4, dtype=jnp_ref.float16), check_weak=False)


def _edges(shape, seed):
    """An array of ``shape`` with zeros, negatives and huge values among ordinary ones."""
    x = np.random.default_rng(seed).uniform(-2, 2, shape).astype(F32)
    x.flat[::7], x.flat[1::7], x.flat[2::7] = 0.0, -1.0, 1e30
    return x


def test_fused_blocks_and_parallel_tails_are_silent(monkeypatch):
    """Blocks of a fused group and the components of a parallel tail run in functions of
    their own (the components on a second thread): they are silent too."""
    monkeypatch.setattr(blocked, "MIN_SIZE", 1)
    monkeypatch.setattr(blocked, "BLOCK_ELEMS", 256)
    monkeypatch.setattr(parallel, "MIN_WORK", 1)

    def f(L, a, b):
        return (L.np.log(a) * 2.0 - a / a + 1.0 / a, L.np.sqrt(b) * b * b - L.np.exp(b))
    a, b = _edges((64, 32), 0), _edges((48, 40), 1)
    want = f(REF, jnp_ref.asarray(a), jnp_ref.asarray(b))
    both = fungrad.jit(lambda u, v: f(FG, u, v))        # two chains: a parallel tail
    first = fungrad.jit(lambda u, v: f(FG, u, v)[0])    # one chain: fused blocks
    assert "parallel[" in both.lower(a, b).compile().as_text()
    assert "fused_blocks[" in first.lower(a, b).compile().as_text()
    assert_same(_loud(lambda: both(fnp.asarray(a), fnp.asarray(b))), want, check_weak=False)
    assert_same(_loud(lambda: first(fnp.asarray(a), fnp.asarray(b))), want[0], check_weak=False)


@pytest.mark.parametrize("run", ["eager", "jit"])
def test_the_users_error_state_is_kept(run):
    """Inside fungrad errors are ignored even when the user asked NumPy to raise; outside,
    NumPy still raises."""
    f = lambda v: fnp.log(v) / v  # noqa: E731
    if run == "jit":
        f = fungrad.jit(f)
    x = fnp.asarray(np.array([0.0, -1.0], F32))
    with np.errstate(all="raise"):
        out = f(x)
        assert np.geterr() == {"divide": "raise", "over": "raise", "under": "raise",
                               "invalid": "raise"}
        with pytest.raises(FloatingPointError):
            np.log(np.zeros(1, F32))
    assert_same(out, jnp_ref.log(jnp_ref.asarray(np.asarray(x))) / jnp_ref.asarray(np.asarray(x)),
                check_weak=False)


def test_the_seterr_fallback_is_silent_and_keeps_the_users_state(monkeypatch):
    """Should NumPy move its error-state variable, ``np.seterr`` does the same work."""
    monkeypatch.setattr(fpstate, "STATE", fpstate._SeterrState())
    x = np.array([0.0, -1.0], F32)
    with np.errstate(all="raise"):
        out = _loud(lambda: fnp.log(fnp.asarray(x)) / fnp.asarray(x))
        assert np.geterr()["divide"] == "raise"
    assert_same(out, jnp_ref.log(x) / x, check_weak=False)
