"""sort / sort_key_val / top_k against jax: values, stability, NaN and -0.0 order,
ties, several keys, dtypes, JVP / VJP (tangents follow the permutation), vmap, errors."""
import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from harness import assert_same, compare, compare_transforms, rand, to_fg, to_jax

RNG = np.random.default_rng(2)
NAN = np.nan
SPECIAL = np.array([1.0, NAN, 3.0, -0.0, 0.0, 3.0, -NAN, -np.inf, 0.0, -0.0, np.inf, 1.0],
                   np.float32)


@pytest.mark.parametrize("shape,dimension", [((7,), 0), ((3, 5), -1), ((3, 5), 0), ((2, 4, 3), 1),
                                             ((4, 0), 1)])
def test_sort_transforms(shape, dimension):
    compare_transforms(lambda x: lax.sort(x, dimension), lambda x: jax.lax.sort(x, dimension),
                       [rand(RNG, shape)], RNG, vmap_axes=(0, 1, -1))


def test_sort_multiple_operands_transforms():
    keys = rand(RNG, (3, 6), np.int32, low=-0.5, high=0.5)  # many ties between keys
    vals = rand(RNG, (3, 6))
    fg = lambda k, v: lax.sort((k, v), dimension=1)
    jx = lambda k, v: jax.lax.sort((k, v), dimension=1)
    compare_transforms(fg, jx, [keys, vals], RNG, vmap_axes=(0, -1))
    k2 = rand(RNG, (3, 6), np.int32, low=-0.25, high=0.25)
    compare(lambda a, b, c: lax.sort((a, b, c), num_keys=2),
            lambda a, b, c: jax.lax.sort((a, b, c), num_keys=2), keys, k2, vals)
    compare(lambda k, v: lax.sort_key_val(k, v, 0), lambda k, v: jax.lax.sort_key_val(k, v, 0),
            keys, vals)


def test_sort_vmap_with_unbatched_operands():
    keys, vals = rand(RNG, (4, 5)), rand(RNG, (4,))
    fg = fungrad.vmap(lambda k, v: lax.sort((k, v)), in_axes=(1, None))
    jx = jax.vmap(lambda k, v: jax.lax.sort((k, v)), in_axes=(1, None))
    assert_same(fg(*to_fg((keys, vals))), jx(*to_jax((keys, vals))))


def test_sort_nan_and_signed_zero_order():
    compare(lax.sort, jax.lax.sort, SPECIAL)
    compare(lambda k, v: lax.sort((k, v)), lambda k, v: jax.lax.sort((k, v)), SPECIAL,
            np.arange(SPECIAL.size, dtype=np.int32))
    compare(lambda a, b: lax.sort((a, b), num_keys=2),
            lambda a, b: jax.lax.sort((a, b), num_keys=2), np.zeros(SPECIAL.size, np.float32),
            SPECIAL)


@pytest.mark.parametrize("dt", [np.int32, np.uint8, np.bool_, np.float16, ml_dtypes.bfloat16])
def test_sort_and_top_k_dtypes(dt):
    x = rand(RNG, (3, 9), dt)
    if np.dtype(dt).kind == "f" or dt == ml_dtypes.bfloat16:
        x[0, :SPECIAL.size // 2] = SPECIAL[:SPECIAL.size // 2].astype(dt)
    compare(lax.sort, jax.lax.sort, x)
    compare(lambda v: lax.top_k(v, 4), lambda v: jax.lax.top_k(v, 4), x)


@pytest.mark.parametrize("shape,k,axis", [((9,), 3, -1), ((3, 6), 6, -1), ((4, 5, 3), 2, 1),
                                          ((2, 5), 0, -1)])
def test_top_k_transforms(shape, k, axis):
    fg = lambda x: lax.top_k(x, k, axis=axis)
    jx = lambda x: jax.lax.top_k(x, k, axis=axis)
    compare_transforms(fg, jx, [rand(RNG, shape)], RNG, vmap_axes=(0, -1))


def test_top_k_ties_and_nans():
    compare(lambda x: lax.top_k(x, SPECIAL.size), lambda x: jax.lax.top_k(x, SPECIAL.size), SPECIAL)
    ties = np.array([[2, 1, 2, 2, 0, 1]], np.int32)
    compare(lambda x: lax.top_k(x, 4), lambda x: jax.lax.top_k(x, 4), ties)
    t = rand(RNG, SPECIAL.shape)
    f = lambda lib: (lambda x: lib.lax.top_k(x, 5)[0])
    assert_same(fungrad.jvp(f(fungrad), to_fg((SPECIAL,)), to_fg((t,))),
                jax.jvp(f(jax), to_jax((SPECIAL,)), to_jax((t,))))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lax.sort((np.ones(3), np.ones(4))), TypeError,
     "sort: operands must have equal shapes"),
    (lambda: lax.sort(np.ones(3), num_keys=2), ValueError, "num_keys"),
    (lambda: lax.sort((np.ones(3), np.ones(3)), num_keys=3), ValueError, "num_keys"),
    (lambda: lax.sort(np.ones((2, 3)), dimension=2), ValueError, "sort: axis 2 is out of bounds"),
    (lambda: lax.top_k(np.ones(3), 4), ValueError, "top_k: k must be between"),
    (lambda: lax.top_k(np.ones(3), -1), ValueError, "nonnegative"),
    (lambda: lax.top_k(np.float32(1.0), 1), TypeError, "at least one dimension"),
])
def test_sorting_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
