"""Type promotion, weak types and x64 canonicalisation against jax."""
import itertools

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad._core import dtypes

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32,
          ml_dtypes.bfloat16, np.float16, np.float32, np.complex64]
SCALARS = [True, 3, 2.5, 1 + 2j]


@pytest.mark.parametrize("a,b", list(itertools.combinations_with_replacement(DTYPES, 2)))
def test_array_array_promotion_matches_jax(a, b):
    assert dtypes.result_type(np.dtype(a), np.dtype(b)) \
        == jnp_ref.result_type(np.dtype(a), np.dtype(b))


@pytest.mark.parametrize("a,s", list(itertools.product(DTYPES, SCALARS)))
def test_array_scalar_promotion_matches_jax(a, s):
    x = np.zeros(2, a)
    got = dtypes.result_type(fungrad.numpy.asarray(x), s, return_weak_type_flag=True)
    want = jax.dtypes.result_type(jnp_ref.asarray(x), s, return_weak_type_flag=True)
    assert got == (np.dtype(want[0]), want[1])


@pytest.mark.parametrize("s,t", list(itertools.product(SCALARS, SCALARS)))
def test_scalar_scalar_promotion_matches_jax(s, t):
    got = dtypes.result_type(s, t, return_weak_type_flag=True)
    want = jax.dtypes.result_type(s, t, return_weak_type_flag=True)
    assert got == (np.dtype(want[0]), want[1])


def test_weak_scalar_keeps_array_dtype():
    x = fungrad.numpy.asarray(np.ones(3, np.float16))
    y = x * 2.0
    assert y.dtype == np.float16 and not y.weak_type


def test_python_scalar_is_weak():
    x = fungrad.numpy.asarray(2.0)
    assert x.dtype == np.float32 and x.weak_type
    assert repr(x) == "Array(2., dtype=float32, weak_type=True)"


def test_float64_canonicalised_without_x64():
    x = fungrad.numpy.asarray(np.ones(2, np.float64))
    assert x.dtype == np.float32
    assert fungrad.numpy.asarray(np.ones(2, np.int64)).dtype == np.int32


def test_enable_x64_roundtrip():
    fungrad.config.update("jax_enable_x64", True)
    try:
        assert fungrad.numpy.asarray(np.ones(2, np.float64)).dtype == np.float64
        assert dtypes.result_type(1.0) == np.float64
    finally:
        fungrad.config.update("jax_enable_x64", False)
    assert dtypes.result_type(1.0) == np.float32


def test_unknown_flag_rejected():
    with pytest.raises(ValueError, match="unknown flag"):
        fungrad.config.update("no_such_flag", True)


def test_float0_tangent_dtype():
    assert dtypes.tangent_dtype(np.dtype(np.int32)) == jax.dtypes.float0
    assert dtypes.tangent_dtype(np.dtype(np.float32)) == np.float32
