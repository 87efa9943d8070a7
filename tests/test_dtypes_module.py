"""fungrad.dtypes against jax.dtypes, and the top-level names JAX code reaches for
(fungrad.float0, fungrad.dtypes, fungrad.custom_derivatives without an import,
fungrad.process_index and process_count)."""
import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import dtypes


@pytest.mark.parametrize("spec", [np.float64, np.int64, np.uint64, np.complex128, "float32",
                                  "bfloat16", np.int8, bool, int, float, complex,
                                  ml_dtypes.bfloat16, np.dtype(np.float16)])
def test_canonicalize_dtype_and_sizes(spec):
    assert dtypes.canonicalize_dtype(spec) == jax.dtypes.canonicalize_dtype(spec)
    assert dtypes.itemsize_bits(spec) == jax.dtypes.itemsize_bits(spec)


@pytest.mark.parametrize("args", [(1.0,), (2, np.int8), (np.float16, np.int32),
                                  (jnp.ones(2, jnp.bfloat16), 1.5), (True, 3), (1, 2.0j),
                                  (np.uint8, np.int8)])
def test_result_type_and_scalar_type(args):
    ref = [jax.numpy.asarray(a) if isinstance(a, fungrad.Array) else a for a in args]
    assert dtypes.result_type(*args, return_weak_type_flag=True) == \
        jax.dtypes.result_type(*ref, return_weak_type_flag=True)
    assert dtypes.result_type(*args) == jax.dtypes.result_type(*ref)
    assert dtypes.scalar_type_of(args[0]) is jax.dtypes.scalar_type_of(ref[0])


def test_names_jax_code_uses():
    assert dtypes.float0 == fungrad.float0 and dtypes.float0.itemsize == 0
    assert dtypes.bfloat16 == jax.dtypes.bfloat16
    assert dtypes.issubdtype(dtypes.bfloat16, np.floating)
    assert dtypes.finfo(np.float32).eps == jax.dtypes.finfo(np.float32).eps
    assert dtypes.iinfo(np.int8).max == jax.dtypes.iinfo(np.int8).max
    assert issubclass(dtypes.TypePromotionError, TypeError)
    assert issubclass(dtypes.TypePromotionError, ValueError)
    assert callable(fungrad.custom_derivatives.custom_jvp)
    assert {"dtypes", "custom_derivatives", "float0"} <= set(fungrad.__all__)


def test_process_index_and_count_as_jax():
    assert fungrad.process_index() == jax.process_index() == 0  # one process, no initialize()
    assert fungrad.process_count() == jax.process_count() == 1
    assert {"process_index", "process_count"} <= set(fungrad.__all__)
