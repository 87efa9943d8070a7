"""fungrad.ops (jax.ops): segment_sum, segment_prod, segment_max and segment_min against jax
(values, dtypes, out-of-range and negative ids, modes, buckets, empty segments, under jit,
derivatives and vmap), and their errors."""
import functools

import jax
import numpy as np
import pytest

import fungrad
from fungrad.test_util import check_grads
import harness
from harness import rand

compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)

RNG = np.random.default_rng(5)
NAMES = ["segment_sum", "segment_prod", "segment_max", "segment_min"]
IDS = np.array([0, 2, 2, 5, -1, 1, 7, 0, 2], np.int32)  # 5 and 7 out of range, -1 negative


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_])
def test_segments_match_jax(name, dtype):
    fg, ref = getattr(fungrad.ops, name), getattr(jax.ops, name)
    data = rand(RNG, (9, 3), dtype, -2, 2)
    if dtype == np.bool_ and name in ("segment_sum", "segment_prod"):
        with pytest.raises(TypeError, match=name):
            fg(data, IDS, 4)
        with pytest.raises(TypeError):
            ref(data, IDS, 4)
        return
    for kw in ({"num_segments": 4}, {"num_segments": 4, "mode": "clip"},
               {"num_segments": 6, "bucket_size": 4}, {"num_segments": 0}):
        compare(lambda d, i: fg(d, i, **kw), lambda d, i: ref(d, i, **kw), data, IDS)
    # num_segments inferred from the ids: eagerly only (fungrad's jit then raises, as jax's)
    harness.compare(lambda d, i: fg(d, i), lambda d, i: ref(d, i), data[:, 0], np.abs(IDS))
    compare(lambda d, i: fg(d, i, 3), lambda d, i: ref(d, i, 3), data,
            np.abs(IDS).astype(np.uint8))


@pytest.mark.parametrize("name", NAMES)
def test_segment_derivatives(name):
    fg, ref = getattr(fungrad.ops, name), getattr(jax.ops, name)
    ids = np.array([0, 2, 2, 1, 0, 1], np.int32)
    data = rand(RNG, (6, 2), np.float32, 0.5, 2)
    if name == "segment_prod":  # differentiable only with unique ids, as in JAX
        ids, data = np.array([2, 0, 1], np.int32), data[:3]
        kw = {"unique_indices": True, "indices_are_sorted": False}
        with pytest.raises(NotImplementedError):
            fungrad.grad(lambda d: fg(d, ids, 3).sum())(data)
    else:
        kw = {}
    compare_transforms(lambda d: fg(d, ids, 3, **kw), lambda d: ref(d, ids, 3, **kw), [data], RNG)
    check_grads(lambda d: fg(d, ids, 3, **kw), (data.astype(np.float64),), order=2)


def test_segment_errors():
    data = np.ones((4, 2), np.float32)
    with pytest.raises(TypeError, match="segment_sum"):
        fungrad.ops.segment_sum(data, np.zeros(4, np.float32), 2)
    with pytest.raises(ValueError, match="segment_sum"):
        fungrad.ops.segment_sum(data, np.zeros(3, np.int32), 2)
    with pytest.raises(ValueError, match="num_segments"):
        fungrad.ops.segment_sum(data, np.zeros(4, np.int32), -1)
    with pytest.raises(ValueError, match="mode"):
        fungrad.ops.segment_max(data, np.zeros(4, np.int32), 2, mode="wrap")
    with pytest.raises(fungrad.errors.ConcretizationTypeError, match="num_segments"):
        fungrad.jit(fungrad.ops.segment_sum)(data, np.zeros(4, np.int32))
