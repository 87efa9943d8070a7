"""Regression tests for numerical corner cases found while comparing with jax: a cube
of a 0-d input under ``jit`` (the compiled ``integer_pow`` wrote into a NumPy scalar),
``vmap`` of a sum of a batched and an unbatched tangent (``add_any``), and the findings of
differential scans of ``fungrad.numpy`` against ``jax.numpy`` (quantiles of half floats,
variances without degrees of freedom, complex logarithms of zero, oversized Python ints)."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jjnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.interpreters import ad


@pytest.mark.parametrize("power", [2, 3, 4])
@pytest.mark.parametrize("x", [np.float32(2.0), np.float32(-1.5),
                               np.array([1.0, -2.0], np.float32)])
def test_jit_integer_power_of_0d_and_1d(power, x):
    ours = fungrad.jit(lambda v: v ** power)(jnp.asarray(x))
    ref = jax.jit(lambda v: v ** power)(jjnp.asarray(x))
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


def test_jit_cube_of_0d_numpy_scalar():
    assert float(fungrad.jit(lambda v: v ** 3)(jnp.float32(2.0))) == 8.0


def test_vmap_add_any_of_batched_and_unbatched():
    x = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    y = np.array([10.0, 20.0], np.float32)
    out = fungrad.vmap(lambda a: ad.add_any_p.bind(y.reshape(1, 2)[0], a))(x)
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(np.asarray(out), x + y)
    out = fungrad.vmap(lambda a: ad.add_any_p.bind(a, jnp.asarray(y)))(x)
    np.testing.assert_array_equal(np.asarray(out), x + y)


def test_grad_of_vmap_with_unbatched_tangent():
    w = np.array([1.0, 2.0, 3.0], np.float32)
    xs = np.arange(12.0, dtype=np.float32).reshape(4, 3)

    def f(np_):
        return lambda v: np_.sum(v * w + v @ w)
    ours = fungrad.vmap(fungrad.grad(f(jnp)))(xs)
    ref = jax.vmap(jax.grad(f(jjnp)))(xs)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-6)


def _same_values(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    np.testing.assert_allclose(got.astype(np.complex128), want.astype(np.complex128),
                               rtol=1e-6, equal_nan=True)


def test_quantiles_of_half_floats_weigh_in_the_dtype_of_q():
    for dtype in (np.float16, jnp.bfloat16.dtype):
        x = np.array([1, 2, 3, 7.5], dtype)
        for q in (0.3, np.array([0.1, 0.5, 0.9], np.float32)):
            for name in ("quantile", "nanquantile"):
                for method in ("linear", "lower", "midpoint"):
                    _same_values(getattr(jnp, name)(x, q, method=method),
                                 getattr(jjnp, name)(x, q, method=method))
        _same_values(jnp.percentile(x, 30.0), jjnp.percentile(x, 30.0))


@pytest.mark.parametrize("ddof", [0, 4, 5, 10])
def test_variance_without_degrees_of_freedom_left_is_nan(ddof):
    x = np.arange(5, dtype=np.float32)
    for a in (x, (x + 1j * x).astype(np.complex64)):
        for name in ("var", "nanvar", "std", "nanstd"):
            _same_values(getattr(jnp, name)(a, ddof=ddof), getattr(jjnp, name)(a, ddof=ddof))


def test_complex_log2_log10_of_zero_and_fmax_fmin():
    z = np.array([0j, 1 + 1j, -1, 1e-3], np.complex64)
    for name in ("log2", "log10"):
        _same_values(getattr(jnp, name)(z), getattr(jjnp, name)(z))  # log(0) = -inf + 0j
    a = np.array([1 + 1j, 2 - 1j, np.nan, 1], np.complex64)
    b = np.array([2 + 0j, 1 + 0j, 1, np.nan * 1j], np.complex64)
    for name in ("fmax", "fmin"):  # lexicographic, NaNs ignored
        for x, y in ((a, b), (b, a), (a, 1.5)):
            _same_values(getattr(jnp, name)(x, y), getattr(jjnp, name)(x, y))


def test_python_ints_beyond_int32_are_refused_as_operands():
    """As jax: an operand that does not fit the default int raises rather than wraps; an
    explicit dtype still takes it."""
    cases = (lambda m: m.add(2**31, 1), lambda m: m.add(np.ones(2, np.uint32), 2**32 - 1),
             lambda m: m.add(np.ones(2, np.float32), 2**40),
             lambda m: m.add(np.array([True]), -2**31 - 1))
    for case in cases:
        with pytest.raises(OverflowError):
            case(jjnp)
        with pytest.raises(OverflowError, match="Python int -?\\d+ is too large"):
            case(jnp)
    for case in (lambda m: m.add(-2**31, 1), lambda m: m.add(np.ones(2, np.int8), 300),
                 lambda m: m.asarray(2**31, dtype=np.uint32)):
        _same_values(case(jnp), case(jjnp))


def test_float64_inputs_beyond_float32_become_inf_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same_values(jnp.abs(np.array([1e300, -1e300])), np.array([np.inf, np.inf], np.float32))
        _same_values(jnp.sum(np.array([1e300, 1.0])), np.float32(np.inf))


def test_numpy_int64_inputs_wrap_to_int32_before_float_ops():
    """A raw NumPy int64/uint64 array is an int32/uint32 one first (as ``asarray`` and jax
    make it), also where an op promotes it to floats."""
    a = np.array([2**40, -2**35, 5], np.int64)
    for case in (lambda m: m.cos(a), lambda m: m.sqrt(np.array([-2**35], np.int64)),
                 lambda m: m.sin(np.array([2**32 + 1], np.uint64)),
                 lambda m: m.add(a, np.float32(1.5)), lambda m: m.less(a, np.float32(1.5))):
        _same_values(case(jnp), case(jjnp))
    _same_values(jnp.cos(a), jnp.cos(jnp.asarray(a)))


def test_angle_of_a_real_scalar_is_in_the_default_float():
    for z in (np.float16(-1.0), np.array(-1.0, jnp.bfloat16.dtype), np.array([-1.0, 2], np.float16),
              np.int8(-2), np.complex64(1j)):
        _same_values(jnp.angle(z), jjnp.angle(z))


# XLA computes a product with a converted boolean of the result's shape as a select, so in
# JAX ``x * mask`` is 0 where the mask is False even for an inf or NaN ``x`` (and +0 for a
# negative one); a broadcast mask, or bfloat16, is multiplied (NaN stays NaN).
MASK_SHAPES = [((4,), (4,)), ((1, 1), (1, 4)), ((), (4,)), ((4,), ()), ((), ()),
               ((2, 4), (4,))]


@pytest.mark.parametrize("dtype", ["float32", "float16", "complex64", "bfloat16", "int32"])
@pytest.mark.parametrize("x_shape, mask_shape", MASK_SHAPES, ids=str)
@pytest.mark.parametrize("mask_first", [False, True])
def test_product_with_a_boolean_mask_is_a_select_as_in_jax(dtype, x_shape, mask_shape,
                                                         mask_first):
    values = np.array([np.nan, np.inf, -2.0, 3.0]) if dtype != "int32" else np.arange(4) - 2
    x = np.resize(values, x_shape).astype(jjnp.dtype(dtype))
    mask = np.resize(np.array([False, False, False, True]), mask_shape)
    args = (mask, x) if mask_first else (x, mask)
    for ours, ref in ((jnp.multiply(*map(jnp.asarray, args)),
                       jjnp.multiply(*map(jjnp.asarray, args))),
                      (fungrad.jit(jnp.multiply)(*args), jax.jit(jjnp.multiply)(*args))):
        assert ours.dtype == ref.dtype and ours.weak_type == ref.weak_type
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))
        assert (np.signbit(np.real(np.asarray(ours, np.complex64))) ==
                np.signbit(np.real(np.asarray(ref, np.complex64)))).all()


def test_jitted_product_with_a_converted_mask_is_a_select_as_in_jax():
    """``x * mask.astype(x.dtype)`` eagerly multiplies (NaN stays NaN, as JAX's separate
    operations do); under ``jit`` it selects, as XLA does, also in the gradient."""
    x = np.array([np.nan, np.inf, -2.0, 3.0], np.float32)
    mask = np.array([False, False, False, True])

    def f(np_):
        return lambda x, m: np_.sin(x) * m.astype(np_.float32) * 2

    def loss(np_):
        return lambda x, m: np_.sum(f(np_)(x, m))
    for ours, ref in ((f(jnp)(x, mask), f(jjnp)(x, mask)),
                      (fungrad.jit(f(jnp))(x, mask), jax.jit(f(jjnp))(x, mask)),
                      (fungrad.jit(fungrad.grad(loss(jnp)))(x, mask),
                       jax.jit(jax.grad(loss(jjnp)))(x, mask))):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))
    assert np.isnan(np.asarray(f(jnp)(x, mask))[0])
    assert np.asarray(fungrad.jit(f(jnp))(x, mask))[0] == 0
