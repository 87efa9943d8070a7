"""Reductions (reduce_sum/prod/max/min/and/or/xor, argmax/argmin) and cumulative ops
(cumsum/cumprod/cummax/cummin/cumlogsumexp) against jax: values, dtypes, weak
types, empty axes, negative axes, ties, zeros and NaNs, JVP / VJP / vmap, errors."""
import contextlib

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from fungrad.test_util import check_grads
from harness import (GRAD_TOL, assert_same, compare, compare_transforms, rand, to_fg, to_jax,
                     x64)

RNG = np.random.default_rng(3)

# ----------------------------------------------------------------------------- reductions

DIFF_REDUCERS = ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min"]
AXES_CASES = [((3, 4), (0,)), ((3, 4), (1,)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (0, 1, 2)),
              ((5,), ()), ((3, 0, 2), (1,)), ((3, 0, 2), (0,))]


# reduce_prod's derivative (a halving tree, as JAX's) is costly for jax to compile: fewer cases
REDUCE_CASES = [(name, shape, axes) for name in DIFF_REDUCERS for shape, axes in AXES_CASES
                if name != "reduce_prod" or len(shape) == 3]


@pytest.mark.parametrize("name,shape,axes", REDUCE_CASES)
def test_reduce_transforms(name, shape, axes):
    low = 0.5 if name == "reduce_prod" else -2.0  # keep products well conditioned
    jx = jax.jit(lambda x: getattr(jax.lax, name)(x, axes))  # one compile per transform, not per op
    compare_transforms(lambda x: getattr(lax, name)(x, axes), jx,
                       [rand(RNG, shape, low=low)], RNG,
                       vmap_axes=(0,) if len(shape) == 1 else (1,) if len(shape) == 3 else (-1,))


def test_reduce_negative_axes_and_weak_types():
    x = rand(RNG, (2, 3, 4))
    compare(lambda v: lax.reduce_sum(v, (-1, 0)), lambda v: jax.lax.reduce_sum(v, (2, 0)), x)
    compare(lambda v: lax.argmax(v, -2, np.int32), lambda v: jax.lax.argmax(v, 1, np.int32), x)
    assert_same(lax.reduce_max(fungrad.numpy.asarray(2.0), ()), jax.lax.reduce_max(2.0, ()))
    assert lax.reduce_sum(fungrad.numpy.asarray(2.0), ()).weak_type


def test_reduce_prod_derivatives_with_zeros():
    x = np.array([[1.0, 0.0, 3.0, 2.0, 5.0], [0.0, 2.0, 0.0, 1.0, 1.0], [2.0, 3.0, 1.0, 0.5, 4.0]],
                 np.float32)
    compare_transforms(lambda v: lax.reduce_prod(v, (1,)), lambda v: jax.lax.reduce_prod(v, (1,)),
                       [x], RNG, vmap_axes=())
    # a polynomial: central differences are exact, also for the second derivatives at zeros
    check_grads(lambda v: lax.reduce_prod(v, (1,)), (to_fg(x),), order=2)


def test_reduce_max_ties_share_the_tangent():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]], np.float32)
    for name in ("reduce_max", "reduce_min"):
        compare_transforms(lambda v: getattr(lax, name)(v, (1,)),
                           lambda v: getattr(jax.lax, name)(v, (1,)), [x], RNG, vmap_axes=())


@pytest.mark.parametrize("name", ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min"])
@pytest.mark.parametrize("dt", [np.int32, np.uint8, np.float16, ml_dtypes.bfloat16, np.int8])
def test_reduce_dtypes(name, dt):
    x = rand(RNG, (4, 6), dt, low=-1, high=1) if name == "reduce_prod" else rand(RNG, (4, 6), dt)
    compare(lambda v: getattr(lax, name)(v, (1,)), lambda v: getattr(jax.lax, name)(v, (1,)), x)
    compare(lambda v: getattr(lax, name)(v, (0, 1)), lambda v: getattr(jax.lax, name)(v, (0, 1)), x)


def test_reduce_16bit_sums_accumulate_in_float32():
    x = np.ones(3000, ml_dtypes.bfloat16)
    compare(lambda v: lax.reduce_sum(v, (0,)), lambda v: jax.lax.reduce_sum(v, (0,)), x)


@pytest.mark.parametrize("name", ["reduce_and", "reduce_or", "reduce_xor"])
@pytest.mark.parametrize("dt", [np.bool_, np.int32, np.uint8])
def test_logical_reductions(name, dt):
    x = rand(RNG, (3, 5, 4), dt)
    for axes in ((1,), (0, 2), ()):
        compare(lambda v: getattr(lax, name)(v, axes), lambda v: getattr(jax.lax, name)(v, axes), x)
    empty = np.zeros((2, 0), dt)
    compare(lambda v: getattr(lax, name)(v, (1,)), lambda v: getattr(jax.lax, name)(v, (1,)), empty)
    fg = fungrad.vmap(lambda v: getattr(lax, name)(v, (0,)), in_axes=1)
    jx = jax.vmap(lambda v: getattr(jax.lax, name)(v, (0,)), in_axes=1)
    assert_same(fg(to_fg(x)), jx(to_jax(x)))


ARG_INPUTS = [
    np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [np.nan, 1.0, np.nan, 5.0],
              [-0.0, 0.0, -1.0, np.inf], [1.0, np.nan, -np.inf, np.nan]], np.float32),
    np.array([[3, 1, 3], [0, 0, -1]], np.int32),
    np.array([[True, False, True], [False, False, False]]),
    rand(RNG, (3, 5), ml_dtypes.bfloat16),
]


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("x", ARG_INPUTS)
def test_argmax_argmin_first_occurrence_and_nan(name, x):
    for axis in (0, 1):
        for idt in (np.int32, np.int8):
            compare(lambda v: getattr(lax, name)(v, axis, idt),
                    lambda v: getattr(jax.lax, name)(v, axis, idt), x)
    xs = np.stack([x, x[::-1]])
    fg = fungrad.vmap(lambda v: getattr(lax, name)(v, 1, np.int32), in_axes=1)
    jx = jax.vmap(lambda v: getattr(jax.lax, name)(v, 1, np.int32), in_axes=1)
    assert_same(fg(to_fg(xs)), jx(to_jax(xs)))


def test_argmax_has_zero_gradient():
    x = rand(RNG, (3, 4))
    def f(lib):
        def g(v):
            count = lib.lax.reduce_sum(lib.lax.argmax(v, 1, np.int32), (0,))
            return lib.lax.mul(lib.lax.reduce_sum(v, (0, 1)),
                               lib.lax.convert_element_type(count, np.float32))
        return g
    assert_same(fungrad.grad(f(fungrad))(to_fg(x)), jax.grad(f(jax))(to_jax(x)), GRAD_TOL)
    out, t = fungrad.jvp(lambda v: lax.argmax(v, 0, np.int32), to_fg((x,)), to_fg((x,)))
    assert np.asarray(t).dtype == jax.dtypes.float0 and np.asarray(t).shape == (4,)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lax.reduce_sum(np.ones((2, 3)), (2,)), ValueError,
     "reduce_sum: axis 2 is out of bounds"),
    (lambda: lax.reduce_sum(np.ones(3, bool), (0,)), TypeError,
     "reduce_sum does not accept dtype bool"),
    (lambda: lax.reduce_and(np.ones(3, np.float32), (0,)), TypeError, "reduce_and does not accept"),
    (lambda: lax.argmax(np.ones((2, 0)), 1, np.int32), ValueError, "non-empty reduced dimension"),
    (lambda: lax.argmax(np.ones((2, 3)), 1, np.float32), TypeError,
     "index_dtype must be an integer"),
    (lambda: lax.argmin(np.ones((2, 3)), 3, np.int32), ValueError,
     "argmin: axis 3 is out of bounds"),
])
def test_reduction_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------- cumulative

CUMULATIVE = ["cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"]
CUM_CONFIGS = [((7,), 0, False), ((3, 6), 1, True), ((4, 3, 5), -1, False), ((4, 3, 5), 0, True),
               ((3, 0), 1, False)]
# the scans behind the non-linear ones are costly for jax to compile: one configuration each
# here, ties / zeros / infinities and second derivatives below
CUM_CASES = [(name,) + c for name in CUMULATIVE
             for c in (CUM_CONFIGS if name == "cumsum" else CUM_CONFIGS[3:4])]


@pytest.mark.parametrize("name,shape,axis,reverse", CUM_CASES)
def test_cumulative_transforms(name, shape, axis, reverse):
    low = 0.5 if name == "cumprod" else -2.0
    fg = lambda x: getattr(lax, name)(x, axis, reverse)
    jx = jax.jit(lambda x: getattr(jax.lax, name)(x, axis % len(shape), reverse))  # fewer compiles
    compare_transforms(fg, jx, [rand(RNG, shape, low=low)], RNG,
                       vmap_axes=(1, -1) if len(shape) > 1 else (0,))


@pytest.mark.parametrize("name", ["cumprod", "cummax", "cummin", "cumlogsumexp"])
def test_cumulative_derivatives_with_zeros_ties_and_infinities(name):
    x = np.array([[1.0, 0.0, 3.0, 0.0, 5.0, 5.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
                  [-np.inf, 1.0, -np.inf, 0.0, 1.0, 3.0]], np.float32)
    if name != "cumlogsumexp":
        x = x[:2]
    fg = lambda v: getattr(lax, name)(v, 1, True)
    jx = jax.jit(lambda v: getattr(jax.lax, name)(v, 1, True))
    compare_transforms(fg, jx, [x], RNG, vmap_axes=())
    # second derivatives against finite differences, at a point without ties
    # distinct values 0.07 apart (no kinks of max/min within the finite-difference step) and
    # small products (float32 differences stay accurate)
    generic = (RNG.permutation(10).reshape(2, 5) * 0.07 + 0.5).astype(np.float32)
    check_grads(lambda v: lax.sin(getattr(lax, name)(v, 1)), (to_fg(generic),), order=2)


@pytest.mark.parametrize("name,dt", [("cumsum", np.int32), ("cumsum", ml_dtypes.bfloat16),
                                     ("cumprod", np.int32), ("cummax", np.int32),
                                     ("cummin", np.uint8), ("cumsum", np.float16),
                                     ("cumlogsumexp", ml_dtypes.bfloat16), ("cummax", np.float32)])
def test_cumulative_dtypes(name, dt):
    x = rand(RNG, (3, 7), dt, low=-1, high=1) if name == "cumprod" else rand(RNG, (3, 7), dt)
    if name == "cummax" and dt == np.float32:
        x[1, 2] = np.nan
    compare(lambda v: getattr(lax, name)(v, 1), lambda v: getattr(jax.lax, name)(v, 1), x)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lax.cumsum(np.ones(3, bool)), TypeError, "cumsum does not accept dtype bool"),
    (lambda: lax.cumlogsumexp(np.ones(3, np.int32)), TypeError, "cumlogsumexp does not accept"),
    (lambda: lax.cummax(np.ones((2, 3)), 2), ValueError, "cummax: axis 2 is out of bounds"),
])
def test_cumulative_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------ signed zeros of reductions

# XLA orders -0 below +0 in max/min: a maximum over zeros is +0 when any of them is +0, a
# minimum -0 when any is -0. NumPy's reductions (and ``maximum.at``, which scatters) keep
# whichever zero their loop met first or last, so these arrays (mostly zeros of both signs,
# with NaN, which must still win) would catch its answer in many rows, prefixes and windows.
# XLA's running sum starts from +0, so a prefix of -0 alone sums to +0 (NumPy's keeps -0).
ZERO_TIE_REDUCTIONS = {
    "max": lambda m: lambda x: m.numpy.max(x, axis=1),
    "min": lambda m: lambda x: m.numpy.min(x, axis=0),
    "max_all": lambda m: lambda x: m.numpy.max(x),
    "nanmax": lambda m: lambda x: m.numpy.nanmax(x, axis=1),
    "nanmin": lambda m: lambda x: m.numpy.nanmin(x, axis=1),
    "cummax": lambda m: lambda x: m.lax.cummax(x, 1),
    "cummin_reverse": lambda m: lambda x: m.lax.cummin(x, 0, reverse=True),
    "cumsum": lambda m: lambda x: m.numpy.cumsum(m.numpy.where(x < 0, -0.0, x), axis=1),
    "max_pool": lambda m: lambda x: m.lax.reduce_window(x, -np.inf, m.lax.max, (2, 2), (1, 1),
                                                        "SAME"),
    "min_pool": lambda m: lambda x: m.lax.reduce_window(x, np.inf, m.lax.min, (1, 3), (1, 2),
                                                        "VALID"),
    "scatter_max": lambda m: lambda x: x[0].at[SCATTER_INDEX].max(x[1:].reshape(-1)),
    "scatter_min": lambda m: lambda x: x[1].at[SCATTER_INDEX[:56]].min(x[2:].reshape(-1)),
}
SCATTER_INDEX = np.random.default_rng(8).integers(0, 8, 64)  # rows x[1:] into row x[0]


def _zero_ties(dtype) -> np.ndarray:
    values = np.array([-0.0, 0.0, -0.0, 0.0, -1.0, 2.0, np.nan], np.float32)
    rows = np.random.default_rng(7).choice(values, size=(9, 8), p=[.3, .3, .1, .1, .1, .05, .05])
    rows[0], rows[1] = -0.0, 0.0  # a row of -0 alone stays -0 (max), of +0 alone +0 (min)
    return rows.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ml_dtypes.bfloat16])
@pytest.mark.parametrize("name", sorted(ZERO_TIE_REDUCTIONS))
def test_reductions_sign_their_zeros_as_jax(name, dtype):
    x = _zero_ties(dtype)
    with x64() if dtype == np.float64 else contextlib.nullcontext():
        want = np.asarray(ZERO_TIE_REDUCTIONS[name](jax)(to_jax(x)))
        for run in (ZERO_TIE_REDUCTIONS[name](fungrad),
                    fungrad.jit(ZERO_TIE_REDUCTIONS[name](fungrad))):
            got = np.asarray(run(to_fg(x)))
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got.astype(np.float64), want.astype(np.float64), equal_nan=True)
            signs = ~np.isnan(want.astype(np.float64))  # a NaN's sign bit is not specified
            assert np.array_equal(np.signbit(got)[signs], np.signbit(want)[signs]), (got, want)


# --------------------------------------------------------------- the fast NumPy paths
# Sums over leading axes, and over trailing runs of up to 128, are BLAS products with a
# vector of ones; max/min over a last axis of many rows are found by argmax/argmin. Both
# must give what the plain reductions give (the products round differently, never worse).

def _sum_error(total, x, axes) -> float:
    return float(np.abs(np.asarray(total, np.float64) - x.astype(np.float64).sum(axes)).max())


@pytest.mark.parametrize("shape,axes,by_matmul", [
    ((1024, 384), (0,), True), ((4096, 64), (1,), True), ((8, 16, 32), (0, 1), True),
    ((16, 4, 64, 64), (3,), True), ((16, 4, 8, 16), (2, 3), True), ((0, 5), (0,), True),
    ((5, 0), (1,), True), ((64, 256), (1,), False), ((4, 5, 6), (1,), False),
    ((7, 9), (0, 1), False)])
def test_sums_as_matmuls_match_jax_and_are_as_accurate(shape, axes, by_matmul):
    x = RNG.standard_normal(shape).astype(np.float32) + 3  # an offset makes rounding visible
    assert (lax.reductions.sum_as_matmul(x, axes) is not None) == by_matmul
    compare(lambda v: lax.reduce_sum(v, axes), lambda v: jax.lax.reduce_sum(v, axes), x)
    if x.size:
        plain = np.add.reduce(x, axis=axes)
        for total in (lax.reduce_sum(to_fg(x), axes),
                      fungrad.jit(lambda v: lax.reduce_sum(v, axes))(to_fg(x))):
            assert _sum_error(total, x, axes) <= 1.25 * _sum_error(plain, x, axes) + 1e-6


def test_sums_as_matmuls_refuse_what_they_cannot_take():
    x = RNG.standard_normal((64, 32)).astype(np.float32)
    sum_as_matmul = lax.reductions.sum_as_matmul
    assert sum_as_matmul(x.T, (0,)) is None                   # not C-contiguous
    assert sum_as_matmul(x.astype(np.float16), (0,)) is None  # accumulated in float32 elsewhere
    assert sum_as_matmul(x.astype(np.int32), (0,)) is None    # integers wrap as XLA's do
    assert sum_as_matmul(x, (0, 1)) is None                   # a full sum stays pairwise
    out = np.empty(64, np.float32)
    assert sum_as_matmul(x, (1,), out=out) is out
    np.testing.assert_allclose(out, x.sum(1), rtol=1e-6, atol=1e-6)
    assert sum_as_matmul(x, (1,), out=np.empty((2, 64), np.float32)[:, 0]) is None
    nonfinite = np.ones((128, 4), np.float32)
    nonfinite[3, 1], nonfinite[5, 3] = np.nan, -np.inf
    nonfinite[5, 2], nonfinite[6, 2] = np.inf, -np.inf
    for run in (lax.reduce_sum, fungrad.jit(lax.reduce_sum, static_argnums=1)):  # and no warning
        np.testing.assert_array_equal(run(to_fg(nonfinite), (0,)), [128, np.nan, np.nan, -np.inf])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize("name", ["reduce_max", "reduce_min"])
def test_last_axis_extremes_by_argmax_match_jax(name, dtype):
    x = rand(RNG, (3, 40, 64), dtype)  # 120 rows: found by argmax/argmin
    if dtype in (np.float32, np.float64):
        x[0, 3, 17], x[1, 5, 0], x[1, 5, 63], x[2, 7, :] = np.nan, np.inf, np.nan, -np.inf
        x[2, 8, :], x[2, 9, :] = 0.0, -0.0  # (XLA signs mixed zeros by its vector lanes here)
    with x64() if dtype == np.float64 else contextlib.nullcontext():
        for operand in (x, np.swapaxes(x, 1, 2)):  # contiguous rows and strided ones
            # A row with a NaN gives NaN (XLA's CPU reduction drops NaNs in vectorised rows)
            want = np.asarray(getattr(jax.lax, name)(to_jax(operand), (2,))).copy()
            floats = np.dtype(dtype).kind == "f"
            nan_rows = np.isnan(operand).any(2) if floats else np.zeros(want.shape, bool)
            if floats:
                want[nan_rows] = np.nan
            for run in (getattr(lax, name), fungrad.jit(getattr(lax, name), static_argnums=1)):
                got = run(to_fg(operand), (2,))
                assert got.dtype == want.dtype and got.shape == want.shape
                assert np.array_equal(np.asarray(got), want, equal_nan=floats)
                if floats:
                    assert np.array_equal(np.signbit(np.asarray(got))[~nan_rows],
                                          np.signbit(want)[~nan_rows])
