"""Shape primitives against jax: broadcast_in_dim, broadcast, reshape, transpose,
squeeze, expand_dims, rev, collapse, convert_element_type (every dtype pair, weak
types, saturation), full/full_like, iota, pad (negative and interior padding),
concatenate, bitcast_convert_type: values, dtypes, JVP, VJP, vmap, errors.

Reference functions run under ``jax.jit`` (one XLA compile per check).
"""
import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from harness import assert_same, compare, compare_transforms, rand, to_fg, to_jax

RNG = np.random.default_rng(1)
AXES = (0, 1, -1)
BF16 = ml_dtypes.bfloat16


def check(fn, args, k, argnums=None, axes=None):
    """compare_transforms of ``fn(fungrad.lax)`` against ``jit(fn(jax.lax))``; case ``k``
    vmaps over one axis of ``AXES`` (rotating through the table)."""
    compare_transforms(lambda *a: fn(lax)(*a), jax.jit(fn(jax.lax)), args, RNG, argnums=argnums,
                       vmap_axes=(AXES[k % 3],) if axes is None else axes)


# name -> (function of a lax module, args): values, JVP, VJP and vmap for each
SHAPE_CASES = {
    "broadcast_in_dim": (lambda L: lambda x: L.broadcast_in_dim(x, (2, 3, 4), (1,)),
                         [rand(RNG, (3,))]),
    "broadcast_in_dim_stretch": (lambda L: lambda x: L.broadcast_in_dim(x, (4, 3, 5), (0, 1)),
                                 [rand(RNG, (1, 3))]),
    "broadcast": (lambda L: lambda x: L.broadcast(x, (2, 1)), [rand(RNG, (3, 2))]),
    "reshape": (lambda L: lambda x: L.reshape(x, (6, 4)), [rand(RNG, (2, 3, 4))]),
    "reshape_dimensions": (lambda L: lambda x: L.reshape(x, (4, 6), dimensions=(2, 0, 1)),
                           [rand(RNG, (2, 3, 4))]),
    "transpose": (lambda L: lambda x: L.transpose(x, (2, 0, 1)), [rand(RNG, (2, 3, 4))]),
    "squeeze": (lambda L: lambda x: L.squeeze(x, (0, -2)), [rand(RNG, (1, 3, 1, 4))]),
    "expand_dims": (lambda L: lambda x: L.expand_dims(x, (0, -1)), [rand(RNG, (3, 4))]),
    "rev": (lambda L: lambda x: L.rev(x, (0, 2)), [rand(RNG, (2, 3, 4))]),
    "collapse": (lambda L: lambda x: L.collapse(x, 1, 3), [rand(RNG, (2, 3, 4, 5))]),
    "collapse_to_end": (lambda L: lambda x: L.collapse(x, -2), [rand(RNG, (2, 3, 4))]),
    "convert_f32_f16": (lambda L: lambda x: L.convert_element_type(x, np.float16),
                        [rand(RNG, (3, 4))]),
    "convert_bf16_f32": (lambda L: lambda x: L.convert_element_type(x, np.float32),
                         [rand(RNG, (3, 4), BF16)]),
    "convert_f32_int": (lambda L: lambda x: L.convert_element_type(x, np.int32),
                        [rand(RNG, (3, 4))]),
    "full_like": (lambda L: lambda x: L.add(x, L.full_like(x, 2.0)), [rand(RNG, (3, 2))]),
    "pad": (lambda L: lambda x: L.pad(x, np.float32(-1), ((1, 2, 0), (0, 3, 1))),
            [rand(RNG, (3, 4))]),
    "pad_negative": (lambda L: lambda x: L.pad(x, np.float32(0), ((-1, -2, 1), (2, -3, 0))),
                     [rand(RNG, (5, 6))]),
    "pad_traced_value": (lambda L: lambda x, v: L.pad(x, v, ((0, 1, 2), (-1, 1, 1))),
                         [rand(RNG, (3, 4)), rand(RNG, ())]),
    "pad_crop_all": (lambda L: lambda x, v: L.pad(x, v, ((-2, -1, 0), (0, 0, 0))),
                     [rand(RNG, (3, 4)), rand(RNG, ())]),
    "concatenate": (lambda L: lambda a, b, c: L.concatenate([a, b, c], 1),
                    [rand(RNG, (3, 2)), rand(RNG, (3, 1)), rand(RNG, (3, 4))]),
    "concatenate_mixed_batch": (lambda L: lambda a, b: L.concatenate([a, b], 0),
                                [rand(RNG, (2, 3)), rand(RNG, (1, 3))]),
}


@pytest.mark.parametrize("k,name", list(enumerate(SHAPE_CASES)))
def test_shape_transforms(k, name):
    fn, args = SHAPE_CASES[name]
    check(fn, args, k)


@pytest.mark.parametrize("name", ["pad_traced_value", "concatenate"])
def test_vmap_some_arguments_unbatched(name):
    fn, args = SHAPE_CASES[name]
    for k in range(len(args)):
        for ax in (0, -1):
            batched, axes = list(args), [None] * len(args)
            a = args[k]
            axes[k] = ax if np.ndim(a) else 0
            batched[k] = np.stack([rand(RNG, np.shape(a)) for _ in range(3)], axes[k])
            assert_same(fungrad.vmap(fn(lax), axes)(*to_fg(batched)),
                        jax.vmap(jax.jit(fn(jax.lax)), axes)(*to_jax(batched)))


@pytest.mark.parametrize("name", ["pad_negative", "pad_traced_value", "concatenate",
                                  "reshape_dimensions"])
def test_finite_differences(name):
    from fungrad.test_util import check_grads
    fn, args = SHAPE_CASES[name]
    check_grads(lambda *a: fn(lax)(*a) ** 2, to_fg(args), order=2)


DTYPES = [np.bool_, np.int8, np.uint8, np.int32, np.uint32, np.float16, BF16, np.float32]


@pytest.mark.parametrize("src", DTYPES)
def test_convert_element_type_every_pair(src):
    x = rand(RNG, (4, 5), src, -300, 300)
    fn = lambda L: lambda x: tuple(L.convert_element_type(x, dt) for dt in DTYPES)
    compare(fn(lax), jax.jit(fn(jax.lax)), x)


def test_convert_float_to_int_saturates_like_xla():
    x = np.asarray([np.nan, np.inf, -np.inf, 3e9, -3e9, 2.7, -2.7, 255.5, -0.5], np.float32)
    fn = lambda L: lambda x: tuple(L.convert_element_type(x, dt)
                                   for dt in (np.int32, np.uint8, np.int8, np.uint32, np.int16))
    compare(fn(lax), jax.jit(fn(jax.lax)), x)
    compare(fn(lax), jax.jit(fn(jax.lax)), x.astype(BF16))


def test_convert_element_type_weak_types_and_constants():
    for value, dt in [(2.5, np.float32), (2.5, np.int32), (3, np.float16), (True, np.float32),
                      (np.float64(1.5), BF16), (np.arange(3), np.float32)]:
        assert_same(lax.convert_element_type(value, dt), jax.lax.convert_element_type(value, dt))
    weak = fungrad.numpy.asarray(1.5)
    assert weak.weak_type and not lax.convert_element_type(weak, np.float32).weak_type
    assert lax.convert_element_type(weak, np.float32, weak_type=True).weak_type
    # a float -> int -> float round trip has a zero derivative, as in jax
    f = lambda L: lambda x: L.convert_element_type(L.convert_element_type(x, np.int32), np.float32)
    assert_same(fungrad.grad(lambda x: f(lax)(x))(to_fg(np.float32(2.3))),
                jax.grad(lambda x: f(jax.lax)(x))(np.float32(2.3)))


def test_full_and_broadcast_weak_types():
    for L in (lax, jax.lax):
        assert L.full((2, 3), 1.5).weak_type and not L.full((2, 3), 1.5, np.float32).weak_type
    assert_same(lax.full((2, 3), 1.5), jax.lax.full((2, 3), 1.5))
    assert_same(lax.full((2,), True), jax.lax.full((2,), True))
    assert_same(lax.full_like(np.zeros((2, 2), np.int8), 3),
                jax.lax.full_like(np.zeros((2, 2), np.int8), 3))
    x = fungrad.numpy.asarray(2.0)
    assert_same(lax.broadcast_in_dim(x, (3,), ()),
                jax.lax.broadcast_in_dim(jax.numpy.asarray(2.0), (3,), ()))
    assert_same(lax.pad(np.arange(3.0, dtype=np.float32), 0.0, [(1, 1, 1)]),
                jax.lax.pad(np.arange(3.0, dtype=np.float32), 0.0, [(1, 1, 1)]))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float32, BF16, np.float16, np.int16])
def test_iota(dtype):
    fn = lambda L: lambda: (L.iota(dtype, 7), L.broadcasted_iota(dtype, (2, 3, 4), 1),
                            L.broadcasted_iota(dtype, (3, 2), 0))
    assert_same(fn(lax)(), fn(jax.lax)())
    jaxpr = str(fungrad.make_jaxpr(lambda: lax.iota(dtype, 3))())
    assert "iota" in jaxpr


def test_pad_and_concatenate_dtypes():
    for dt in (np.int32, np.bool_, BF16, np.uint8):
        x, y = rand(RNG, (2, 3), dt), rand(RNG, (2, 1), dt)
        v = rand(RNG, (), dt)
        fn = lambda L: lambda x, y, v: (L.pad(x, v, ((1, -1, 1), (0, 2, 0))),
                                        L.concatenate([x, y], 1))
        compare(fn(lax), jax.jit(fn(jax.lax)), x, y, v)


def test_eager_matches_jit():
    def f(x, v):
        p = lax.pad(x, v, ((1, -1, 1), (0, 2, 0)))
        c = lax.concatenate([p, lax.rev(p, (1,))], 1)
        return (c, lax.bitcast_convert_type(c, np.uint32), lax.iota(np.int32, 4),
                lax.convert_element_type(c * 100, np.int8), lax.collapse(c, 0))
    args = (rand(RNG, (4, 3)), rand(RNG, ()))
    jitted = fungrad.jit(f)
    for _ in range(2):
        for a, b in zip(f(*args), jitted(*args)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# (input, new dtype)
BITCAST_CASES = [
    (rand(RNG, (3, 4), np.float32), np.uint32),
    (rand(RNG, (3, 4), np.uint32, 0, 1e9), np.float32),
    (rand(RNG, (3, 4), np.int32), np.uint32),
    (rand(RNG, (5,), np.float16), np.int16),
    (rand(RNG, (3, 4), BF16), np.uint16),
    (rand(RNG, (3, 2), np.float32), np.uint8),
    (rand(RNG, (3, 2), np.float32), np.uint16),
    (rand(RNG, (3, 2, 4), np.uint8, 0, 60), np.float32),
    (np.float32(1.5), np.int32),
    (rand(RNG, (2, 2), np.int8), BF16),  # widening cases avoid vmap over the last axis,
    (rand(RNG, (3, 2), np.uint16, 0, 1e4), np.float32),  # which jax cannot batch
]


@pytest.mark.parametrize("k", range(len(BITCAST_CASES)))
def test_bitcast_convert_type(k):
    x, dt = BITCAST_CASES[k]
    fn = lambda L: lambda x: L.bitcast_convert_type(x, dt)
    check(fn, [x], k, argnums=(), axes=(0,) if np.ndim(x) == 0 else None)


def test_bitcast_vmap_over_the_consumed_dimension():
    """Widening consumes the last dim; a batch dim there must move (jax's own rule fails)."""
    xs = rand(RNG, (3, 2, 5), np.uint16, 0, 1e4)  # five examples batched along the last axis
    out = fungrad.vmap(lambda x: lax.bitcast_convert_type(x, np.float32), -1)(to_fg(xs))
    ref = np.stack([xs[..., i].copy().view(np.float32)[..., 0] for i in range(5)])
    assert np.asarray(out).tobytes() == ref.tobytes()


def test_bitcast_uint32_to_float32_is_exact():
    bits = np.asarray([0x3F800000, 0x7F800000, 0x00000001, 0x80000000, 0x3F7FFFFF, 0x7FC00000],
                      np.uint32)
    out = np.asarray(lax.bitcast_convert_type(bits, np.float32))
    assert out.tobytes() == bits.tobytes()
    # the random-number trick: mantissa bits | exponent of 1.0, minus 1.0, gives [0, 1)
    u = (bits >> 9) | np.uint32(0x3F800000)
    assert_same(lax.bitcast_convert_type(u, np.float32),
                jax.lax.bitcast_convert_type(u, np.float32))
    assert not lax.bitcast_convert_type(fungrad.numpy.asarray(1.0), np.int32).weak_type


SHAPE_ERRORS = [
    (lambda: lax.pad(np.zeros((2, 3), np.float32), np.int32(0), ((0, 0, 0), (0, 0, 0))), "pad"),
    (lambda: lax.pad(np.zeros((2, 3), np.float32), 0.0, ((0, 0, 0),)), "pad"),
    (lambda: lax.pad(np.zeros((2, 3), np.float32), 0.0, ((0, 0, -1), (0, 0, 0))), "pad"),
    (lambda: lax.pad(np.zeros((2, 3), np.float32), 0.0, ((-2, -1, 0), (0, 0, 0))), "pad"),
    (lambda: lax.pad(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), ((0, 0, 0),) * 2),
     "pad"),
    (lambda: lax.concatenate([np.zeros((2, 3)), np.zeros((3, 3))], 1), "concatenate"),
    (lambda: lax.concatenate([np.zeros((2, 3)), np.zeros((2,))], 0), "concatenate"),
    (lambda: lax.concatenate([np.zeros((2, 3), np.float32), np.zeros((2, 3), np.int32)], 0),
     "concatenate"),
    (lambda: lax.concatenate([np.zeros((2, 3)), np.zeros((2, 3))], 2), "concatenate"),
    (lambda: lax.concatenate([], 0), "concatenate"),
    (lambda: lax.bitcast_convert_type(np.zeros((3,), np.uint8), np.float32),
     "bitcast_convert_type"),
    (lambda: lax.bitcast_convert_type(np.zeros((3,), np.bool_), np.uint8), "bitcast_convert_type"),
    (lambda: lax.iota(np.bool_, 3), "iota"),
    (lambda: lax.broadcasted_iota(np.int32, (2, 3), 2), "iota"),
    (lambda: lax.reshape(np.zeros((2, 3)), (4, 2)), "reshape"),
    (lambda: lax.transpose(np.zeros((2, 3)), (0, 0)), "transpose"),
    (lambda: lax.squeeze(np.zeros((2, 3)), (0,)), "squeeze"),
    (lambda: lax.broadcast_in_dim(np.zeros((2, 3)), (3, 3), (0, 1)), "broadcast_in_dim"),
    (lambda: lax.collapse(np.zeros((2, 3)), 1, 0), "collapse"),
]


@pytest.mark.parametrize("k", range(len(SHAPE_ERRORS)))
def test_shape_errors(k):
    fn, name = SHAPE_ERRORS[k]
    with pytest.raises((TypeError, ValueError), match=name):
        fn()
