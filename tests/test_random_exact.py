"""Bit-exactness with jax.random of the samplers whose last steps XLA compiles in ways of its
own (sums reordered or moved into YNNPACK kernels, divisions rewritten, constants folded):
many keys and shapes, eager, under jit and under vmap; and the key helpers clone and
key_dtype."""
import jax
import numpy as np
import pytest

import fungrad
import fungrad.random as fr


def test_clone_and_key_dtype():
    for k, ref in [(fr.key(3), jax.random.key(3)), (fr.PRNGKey(3), jax.random.PRNGKey(3))]:
        c = fr.clone(k)
        assert type(c) is type(k)
        np.testing.assert_array_equal(fr.key_data(c), jax.random.key_data(jax.random.clone(ref)))
        np.testing.assert_array_equal(fr.uniform(c, (3,)), jax.random.uniform(ref, (3,)))
    assert fr.clone(fr.split(fr.key(0), 4)).shape == (4,)
    assert fungrad.jit(fr.clone)(fr.key(1)).dtype == fr.key_dtype()
    assert str(fr.key_dtype()) == str(jax.random.key_dtype()) == "key<fry>"
    assert fr.key_dtype("threefry2x32") == fr.key(0).dtype
    with pytest.raises(ValueError, match="key_dtype"):
        fr.key_dtype("rbg")
