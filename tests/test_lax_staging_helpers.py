"""The smaller jax.lax names against jax: broadcast_shapes, broadcast_to_rank, index_take,
approx_max_k/approx_min_k (exact on the CPU, with derivatives and vmap), dtype, empty,
platform_dependent and composite."""
import functools

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.lax as lax
import harness
from harness import assert_same, rand

compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)

RNG = np.random.default_rng(21)


def test_broadcast_shapes_and_rank():
    for shapes in (((2, 1), (3,)), ((), (4, 1, 2)), ((5,),), ((1, 3), (2, 1), (1, 1))):
        assert lax.broadcast_shapes(*shapes) == jax.lax.broadcast_shapes(*shapes)
    with pytest.raises(ValueError, match="broadcast_shapes"):
        lax.broadcast_shapes((2,), (3,))
    for rank in (1, 3):
        compare(lambda x: lax.broadcast_to_rank(x, rank),
                lambda x: jax.lax.broadcast_to_rank(x, rank), rand(RNG, (3,)))
    with pytest.raises(ValueError, match="broadcast_to_rank"):
        lax.broadcast_to_rank(np.ones((2, 2)), 1)


def test_index_take():
    x = rand(RNG, (4, 5, 3))
    rows, cols = np.array([0, 1, 3, -1], np.int32), np.array([1, 7, 0, 4], np.int32)
    compare(lambda a, i, j: lax.index_take(a, (i, j), (0, 1)),
            lambda a, i, j: jax.lax.index_take(a, (i, j), (0, 1)), x, rows, cols)
    compare(lambda a, i: lax.index_take(a, (i,), (2,)),
            lambda a, i: jax.lax.index_take(a, (i,), (2,)), x, rows)
    with pytest.raises(ValueError, match="index_take"):
        lax.index_take(x, (rows,), (0, 1))


@pytest.mark.parametrize("name", ["approx_max_k", "approx_min_k"])
def test_approx_top_k_is_exact(name):
    fg, ref = getattr(lax, name), getattr(jax.lax, name)
    x = RNG.integers(0, 6, (3, 8)).astype(np.float32)  # ties: the lower index first
    for k, dim in ((3, -1), (2, 0), (8, 1)):
        compare(lambda a: fg(a, k, reduction_dimension=dim),
                lambda a: ref(a, k, reduction_dimension=dim), x)
    compare(lambda a: fg(a, 2), lambda a: ref(a, 2), rand(RNG, (5,), ml_dtypes.bfloat16))
    with pytest.raises(ValueError, match=f"{name}: operand must be a floating type"):
        fg(np.arange(5, dtype=np.int32), 2)  # as JAX's
    compare_transforms(lambda a: fg(a, 3)[0], lambda a: ref(a, 3)[0], [rand(RNG, (2, 6))], RNG)
    with pytest.raises(ValueError, match=name):
        fg(x, 9)


def test_dtype_and_empty():
    for value in (1.0, 2, True, 1 + 2j, np.int64(3), np.arange(3), "bfloat16", np.float16):
        assert lax.dtype(value) == jax.lax.dtype(value), value
    assert_same(lax.empty((2, 3), np.int32), jax.lax.empty((2, 3), np.int32))


def test_platform_dependent_and_composite():
    double = lambda x: 2 * x  # noqa: E731
    assert float(lax.platform_dependent(3.0, cpu=double, default=lambda x: x)) == 6.0
    assert float(lax.platform_dependent(3.0, cuda=double, default=lambda x: x)) == 3.0
    with pytest.raises(NotImplementedError, match="platform_dependent"):
        lax.platform_dependent(3.0, tpu=double)
    with pytest.raises(ValueError, match="platform_dependent"):
        lax.platform_dependent(3.0, moon=double)
    scaled = lax.composite(lambda x, *, n: x * n, name="my.scale")
    compare(lambda x: scaled(x, n=3), lambda x: jax.lax.composite(
        lambda x, *, n: x * n, name="my.scale")(x, n=3), rand(RNG, (4,)))
    assert float(fungrad.grad(lambda x: scaled(x, n=3))(1.0)) == 3.0  # JAX's has no JVP
    with pytest.raises(TypeError, match="composite"):
        lax.composite(double, name="")


def test_broadcast_like_shape_as_value_and_sharding_constraint():
    for shape, like in (((3, 1), (2, 3, 4)), ((4,), (2, 4)), ((), (3,)), ((2, 3), (2, 3))):
        compare(lambda a, b: lax.broadcast_like(a, b),
                lambda a, b: jax.lax.broadcast_like(a, b), rand(RNG, shape), rand(RNG, like))
    compare_transforms(lambda a: lax.broadcast_like(a, np.ones((2, 3), np.float32)),
                       lambda a: jax.lax.broadcast_like(a, np.ones((2, 3), np.float32)),
                       [rand(RNG, (3,))], RNG)
    with pytest.raises(ValueError, match="broadcast_like"):
        lax.broadcast_like(np.ones(3), np.ones((2, 4)))
    assert_same(lax.shape_as_value((2, 3)), jax.lax.shape_as_value((2, 3)))
    x = rand(RNG, (4,))
    one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    assert_same(fungrad.jit(lambda v: lax.with_sharding_constraint(2 * v, one_device))(x),
                jax.jit(lambda v: jax.lax.with_sharding_constraint(2 * v, one_device))(x))
    assert lax.DotDimensionNumbers is not None and lax.PrecisionLike is not None
    assert lax.ConvGeneralDilatedDimensionNumbers is not None
