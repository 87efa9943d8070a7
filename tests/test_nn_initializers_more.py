"""nn.initializers.delta_orthogonal against jax.nn.initializers: the same kernel for the same
key (several shapes, keys, scales, column axes and dtypes) and the same errors."""
from __future__ import annotations

import harness
import jax
import jax.numpy as jjnp
import numpy as np
import pytest
from harness import assert_same

import fungrad.numpy as jnp
from fungrad import nn, random


@pytest.mark.parametrize("shape", [(3, 4, 4), (1, 2, 5), (3, 3, 2, 5), (4, 2, 3, 3),
                                   (2, 4, 3, 3, 3), (3, 3, 3, 1, 4)])
@pytest.mark.parametrize("seed", [0, 7])
def test_delta_orthogonal_matches_jax(shape, seed):
    for make in (lambda m: m.delta_orthogonal(), lambda m: m.delta_orthogonal(1.5, -2)):
        w = make(nn.initializers)(random.PRNGKey(seed), shape, jnp.float32)
        ref = make(jax.nn.initializers)(jax.random.PRNGKey(seed), shape, jjnp.float32)
        # the orthogonal centre is jax's up to the rounding of the host QR, as for
        # nn.initializers.orthogonal; the zeros around it are exact
        assert_same(w, ref)
        np.testing.assert_array_equal(np.asarray(w) == 0, np.asarray(ref) == 0)
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    ortho = nn.initializers.orthogonal(1.5, -2)(random.PRNGKey(seed), shape[-2:])
    np.testing.assert_array_equal(np.asarray(w)[centre], np.asarray(ortho))


def test_delta_orthogonal_default_dtype_and_float64():
    init = nn.initializers.delta_orthogonal(dtype=jnp.float32)
    assert_same(init(random.PRNGKey(3), (3, 2, 2)),
                jax.nn.initializers.delta_orthogonal(dtype=jjnp.float32)(jax.random.PRNGKey(3),
                                                                         (3, 2, 2)))
    with harness.x64():
        w = nn.initializers.delta_orthogonal()(random.PRNGKey(3), (3, 2, 4), jnp.float64)
        ref = jax.nn.initializers.delta_orthogonal()(jax.random.PRNGKey(3), (3, 2, 4),
                                                     jjnp.float64)
        assert_same(w, ref)


@pytest.mark.parametrize("shape,match", [
    ((4, 4), "requires a 3D, 4D or 5D shape"),
    ((1, 1, 1, 1, 2, 2), "requires a 3D, 4D or 5D shape"),
    ((3, 5, 4), "`fan_in` must be less or equal than `fan_out`"),
])
def test_delta_orthogonal_errors(shape, match):
    with pytest.raises(ValueError):
        jax.nn.initializers.delta_orthogonal()(jax.random.PRNGKey(0), shape)
    with pytest.raises(ValueError, match=f"delta_orthogonal initializer.*{match}"):
        nn.initializers.delta_orthogonal()(random.PRNGKey(0), shape)
