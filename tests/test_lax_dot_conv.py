"""dot_general / dot / batch_matmul and conv_general_dilated against jax: values,
dtypes, JVP, VJP, vmap (batched lhs, rhs or both), second derivatives, errors.

jax's references of the transformation tests run as one program per test, compiled with
``QUICK_COMPILE`` (``fused_ref``, ``quick``): eagerly, jax compiles the convolutions and
products of every transformation once per shape, with its default optimisations."""
import zlib

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from harness import GRAD_TOL, QUICK_COMPILE, assert_same, compare, compare_transforms, rand, \
    to_fg, to_jax

RNG = np.random.default_rng(0)


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


def _vmap_each_side(fg, jx, args, axes=(0, 1, -1), rng=RNG):
    """vmap with one operand batched at a time (the other shared), at several axes; jax's
    results all from one program."""
    calls, in_axes = [], []
    for i in range(len(args)):
        for ax in axes:
            stacked = np.stack([rand(rng, np.shape(args[i])) for _ in range(2)], axis=ax)
            calls.append(list(args))
            calls[-1][i] = stacked
            in_axes.append(tuple(ax if j == i else None for j in range(len(args))))
    refs = quick(lambda calls: [jax.vmap(jx, axes)(*call) for call, axes in zip(calls, in_axes)])(
        to_jax(calls))
    for call, axes, ref in zip(calls, in_axes, refs):
        assert_same(fungrad.vmap(fg, axes)(*to_fg(call)), ref)


# ----------------------------------------------------------------------------- dot_general

# (lhs shape, rhs shape, dimension_numbers)
DOT_CASES = [
    ((3, 4), (4, 5), (((1,), (0,)), ((), ()))),                 # matmul
    ((4,), (4,), (((0,), (0,)), ((), ()))),                     # inner product
    ((3, 4), (4,), (((1,), (0,)), ((), ()))),                   # matvec
    ((4, 3), (5, 4), (((0,), (1,)), ((), ()))),                 # transposed operands
    ((2, 3, 4), (2, 4, 5), (((2,), (1,)), ((0,), (0,)))),       # batched matmul
    ((3, 2, 4), (4, 5, 2), (((2,), (0,)), ((1,), (2,)))),       # batch dims in odd places
    ((2, 3, 4, 5), (5, 4, 6), (((2, 3), (1, 0)), ((), ()))),    # two contracting dims
    ((3,), (4,), (((), ()), ((), ()))),                         # outer product
    ((2, 3, 4), (2, 5, 3), (((1,), (2,)), ((0,), (0,)))),       # attention-like scores
    ((0, 4), (4, 3), (((1,), (0,)), ((), ()))),                 # empty free dim
    ((3, 0), (0, 2), (((1,), (0,)), ((), ()))),                 # empty contraction
]


@pytest.mark.parametrize("lshape,rshape,dnums", DOT_CASES)
def test_dot_general_transforms(lshape, rshape, dnums):
    args = [rand(RNG, lshape), rand(RNG, rshape)]
    fg = lambda a, b: lax.dot_general(a, b, dnums)
    jx = lambda a, b: jax.lax.dot_general(a, b, dnums)
    compare_transforms(fg, jx, args, RNG, vmap_axes=(0, -1), fused_ref=True)
    _vmap_each_side(fg, jx, args, axes=(1,) if len(lshape) > 1 and len(rshape) > 1 else (0,))


DTYPE_CASES = [
    (np.float32, np.float32, None), (np.float16, np.float16, None),
    (ml_dtypes.bfloat16, ml_dtypes.bfloat16, None),
    (ml_dtypes.bfloat16, ml_dtypes.bfloat16, np.float32),
    (np.int32, np.int32, None), (np.int8, np.int8, np.int32), (np.bool_, np.bool_, None),
    (np.float32, ml_dtypes.bfloat16, None), (np.int32, np.float32, None), (np.uint8, np.int8, None),
]


@pytest.mark.parametrize("ldt,rdt,pref", DTYPE_CASES)
def test_dot_general_dtypes(ldt, rdt, pref):
    a, b = rand(RNG, (3, 4), ldt), rand(RNG, (4, 5), rdt)
    dn = (((1,), (0,)), ((), ()))
    compare(lambda a, b: lax.dot_general(a, b, dn, preferred_element_type=pref),
            lambda a, b: jax.lax.dot_general(a, b, dn, preferred_element_type=pref), a, b)


def test_dot_general_weak_types_and_grad_dtype():
    a = rand(RNG, (3, 4), ml_dtypes.bfloat16)
    b = rand(RNG, (4, 2), ml_dtypes.bfloat16)
    f = lambda lib: (lambda a, b: lib.lax.dot_general(a, b, (((1,), (0,)), ((), ())),
                                                        preferred_element_type=np.float32).sum())
    fg = fungrad.grad(lambda a, b: fungrad.lax.reduce_sum(
        fungrad.lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=np.float32),
        (0, 1)), argnums=(0, 1))
    assert_same(fg(*to_fg((a, b))), jax.grad(f(jax), argnums=(0, 1))(*to_jax((a, b))), GRAD_TOL)


def test_dot_general_second_derivative_and_jaxpr():
    a, b = rand(RNG, (3, 4)), rand(RNG, (4, 2))
    dn = (((1,), (0,)), ((), ()))

    def make(lib):
        def f(x):
            y = lib.lax.dot_general(x, b, dn)
            return lib.lax.reduce_sum(lib.lax.mul(y, lib.lax.mul(y, y)), (0, 1))
        return f
    t = rand(RNG, a.shape)
    assert_same(fungrad.jvp(fungrad.grad(make(fungrad)), to_fg((a,)), to_fg((t,))),
                jax.jvp(jax.grad(make(jax)), to_jax((a,)), to_jax((t,))), GRAD_TOL)
    assert str(fungrad.make_jaxpr(lambda x, y: lax.dot_general(x, y, dn))(a, b)).startswith(
        "{ lambda ; a:f32[3,4] b:f32[4,2]. let\n    c:f32[3,2] = dot_general[")


def test_dot_and_batch_matmul():
    a, b, v = rand(RNG, (3, 4)), rand(RNG, (4, 5)), rand(RNG, (4,))
    compare(lax.dot, jax.lax.dot, a, b)
    compare(lax.dot, jax.lax.dot, a, v)
    compare(lax.dot, jax.lax.dot, v, v)
    x, y = rand(RNG, (2, 3, 3, 4)), rand(RNG, (2, 3, 4, 5))
    compare_transforms(lax.batch_matmul, jax.lax.batch_matmul, [x, y], RNG)


@pytest.mark.parametrize("call,match", [
    (lambda: lax.dot_general(np.ones((3, 4)), np.ones((5, 6)), (((1,), (0,)), ((), ()))),
     "dot_general requires contracting dimensions to have the same shape"),
    (lambda: lax.dot_general(np.ones((2, 3)), np.ones((4, 3)), (((1,), (1,)), ((0,), (0,)))),
     "dot_general requires lhs batch dimensions and rhs batch dimensions"),
    (lambda: lax.dot_general(np.ones((3, 4)), np.ones((4, 5)), (((2,), (0,)), ((), ()))),
     "dot_general requires lhs contracting"),
    (lambda: lax.dot_general(np.ones((3, 4)), np.ones((4, 5)), (((1,), (0,)), ((0,), ()))),
     "equal numbers of lhs_batch and rhs_batch"),
    (lambda: lax.dot_general(np.ones((3, 4), np.int32), np.ones((4, 5), np.int32),
                             (((1,), (0,)), ((), ())), preferred_element_type=np.int8),
     "must not be narrower"),
    (lambda: lax.dot(np.ones((2, 3, 4)), np.ones((4, 5))), "dimension_numbers must be specified"),
    (lambda: lax.batch_matmul(np.ones((2, 3, 4)), np.ones((4, 5))), "same rank"),
])
def test_dot_errors(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


def test_dot_errors_under_tracing():
    with pytest.raises(TypeError, match="contracting dimensions to have the same shape"):
        fungrad.make_jaxpr(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))))(
            np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))


# ----------------------------------------------------------------------------- conv

# (lhs shape, rhs shape, keyword arguments of conv_general_dilated)
CONV_CASES = [
    ((2, 3, 9), (4, 3, 3), dict(window_strides=(2,), padding="SAME")),
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(window_strides=(1, 1), padding="SAME")),
    ((2, 7, 6, 3), (3, 3, 3, 4), dict(window_strides=(2, 2), padding="VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((2, 3, 8, 7), (4, 3, 2, 3), dict(window_strides=(2, 1), padding=((1, 2), (0, -1)),
                                      lhs_dilation=(1, 2), rhs_dilation=(2, 1))),
    ((2, 4, 6, 6), (6, 2, 3, 3), dict(window_strides=(1, 2), padding="SAME",
                                      feature_group_count=2)),
    ((1, 4, 5, 5), (8, 1, 3, 3), dict(window_strides=(2, 1), padding="SAME", feature_group_count=4,
                                      rhs_dilation=(1, 2))),  # depthwise, channel multiplier 2
    ((4, 3, 5, 5), (6, 3, 2, 2), dict(window_strides=(1, 1), padding="VALID", batch_group_count=2)),
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), dict(window_strides=(1, 2, 1), padding="SAME")),
    ((2, 5, 5, 3), (3, 3, 3, 4), dict(window_strides=(1, 1), padding="SAME_LOWER",
                                      dimension_numbers=("NHWC", "HWIO", "NCHW"))),
    ((0, 3, 5, 5), (2, 3, 3, 3), dict(window_strides=(1, 1), padding="SAME")),
]


@pytest.mark.parametrize("lshape,rshape,kw", CONV_CASES)
def test_conv_general_dilated_transforms(lshape, rshape, kw):
    # each case draws from its own generator: its data must not depend on which tests
    # ran before it in the same worker
    rng = np.random.default_rng(zlib.crc32(repr((lshape, rshape, kw)).encode()))
    args = [rand(rng, lshape), rand(rng, rshape)]
    fg = lambda x, w: lax.conv_general_dilated(x, w, **kw)
    jx = lambda x, w: jax.lax.conv_general_dilated(x, w, **kw)
    compare_transforms(fg, jx, args, rng, vmap_axes=(-1,) if lshape[0] else (), fused_ref=True)
    if lshape[0]:
        _vmap_each_side(fg, jx, args, axes=(1,), rng=rng)


def test_conv_second_derivatives_and_vmap_of_grad():
    kw = dict(window_strides=(2, 1), padding="SAME", rhs_dilation=(1, 2), feature_group_count=2)
    x, w = rand(RNG, (2, 4, 6, 5), low=-0.5, high=0.5), rand(RNG, (4, 2, 3, 2), low=-0.5, high=0.5)

    def loss(lib):
        def f(x, w):
            y = lib.lax.conv_general_dilated(x, w, **kw)
            return lib.lax.reduce_sum(lib.lax.mul(y, lib.lax.sin(y)), (0, 1, 2, 3))
        return f
    tx, tw = rand(RNG, x.shape), rand(RNG, w.shape)
    xs = np.stack([x, rand(RNG, x.shape, low=-0.5, high=0.5)])
    ref_jvp, ref_vmap = quick(lambda x, w, tx, tw, xs: (
        jax.jvp(jax.grad(loss(jax), (0, 1)), (x, w), (tx, tw)),
        jax.vmap(jax.grad(loss(jax), (0, 1)), (0, None))(xs, w)))(*to_jax((x, w, tx, tw, xs)))
    assert_same(fungrad.jvp(fungrad.grad(loss(fungrad), (0, 1)), to_fg((x, w)), to_fg((tx, tw))),
                ref_jvp, GRAD_TOL)
    assert_same(fungrad.vmap(fungrad.grad(loss(fungrad), (0, 1)), (0, None))(*to_fg((xs, w))),
                ref_vmap, GRAD_TOL)


@pytest.mark.parametrize("dt,pref", [(np.float16, None), (ml_dtypes.bfloat16, None),
                                     (ml_dtypes.bfloat16, np.float32), (np.int32, None)])
def test_conv_dtypes(dt, pref):
    x, w = rand(RNG, (2, 3, 6, 6), dt), rand(RNG, (4, 3, 3, 3), dt)
    compare(lambda x, w: lax.conv(x, w, (1, 1), "SAME", preferred_element_type=pref),
            lambda x, w: jax.lax.conv(x, w, (1, 1), "SAME", preferred_element_type=pref), x, w)


def test_conv_wrappers():
    x, w = rand(RNG, (2, 3, 7, 6)), rand(RNG, (4, 3, 3, 2))
    compare(lambda x, w: lax.conv(x, w, (2, 1), "VALID"),
            lambda x, w: jax.lax.conv(x, w, (2, 1), "VALID"), x, w)
    strides_padding_dilations = ((1, 1), ((1, 0), (2, 1)), (2, 1), (1, 2))
    compare(lambda x, w: lax.conv_with_general_padding(x, w, *strides_padding_dilations),
            lambda x, w: jax.lax.conv_with_general_padding(x, w, *strides_padding_dilations), x, w)
    xn, wn = rand(RNG, (2, 5, 4, 3)), rand(RNG, (3, 3, 3, 2))
    for pad in ("SAME", "VALID", ((1, 1), (2, 0))):
        for tk in (False, True):
            fg = lambda x, w: lax.conv_transpose(x, w, (2, 2), pad, transpose_kernel=tk)
            jx = lambda x, w: jax.lax.conv_transpose(x, w, (2, 2), pad, transpose_kernel=tk)
            compare(fg, jx, xn, wn if not tk else rand(RNG, (3, 3, 2, 3)))
    assert lax.conv_dimension_numbers((1, 2, 3, 4), (1, 2, 3, 4), ("NHWC", "HWIO", "NHWC")) == \
        tuple(jax.lax.conv_dimension_numbers((1, 2, 3, 4), (1, 2, 3, 4), ("NHWC", "HWIO", "NHWC")))
    assert lax.padtype_to_pads((7, 8), (3, 2), (2, 3), "SAME") == \
        jax.lax.padtype_to_pads((7, 8), (3, 2), (2, 3), "SAME")
    for lib in (lax, jax.lax):  # explicit pairs are not a padding type, in jax either
        with pytest.raises(TypeError, match="padding type"):
            lib.padtype_to_pads((7, 8), (3, 2), (2, 3), [(1, 1), (0, 1)])


@pytest.mark.parametrize("call,match", [
    (lambda: lax.conv(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3)), (1, 1), "SAME"),
     "rhs input feature dimension"),
    (lambda: lax.conv(np.ones((1, 3, 5)), np.ones((2, 3, 3, 3)), (1, 1), "SAME"), "equal rank"),
    (lambda: lax.conv(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), (1,), "VALID"),
     "one entry per spatial dimension"),
    (lambda: lax.conv_general_dilated(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), (1, 1), "SAME",
                                      dimension_numbers=("NCHW", "OIHW", "NCHX")),
     "same set of spatial"),
    (lambda: lax.conv_general_dilated(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), (1, 1), "FULL"),
     "Unrecognized padding"),
    (lambda: lax.conv_general_dilated(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), (1, 1), "SAME",
                                      lhs_dilation=(2, 2)), "string padding"),
    (lambda: lax.conv_general_dilated(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), (1, 1), "SAME",
                                      feature_group_count=2), "multiple of feature_group_count"),
])
def test_conv_errors(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


@pytest.mark.parametrize("dnums", [("NCHW", "OIHW", "NCHW"), ("NHWC", "HWIO", "NHWC"),
                                   ("NWC", "WIO", "NWC")])
def test_conv_general_permutations_match_jax(dnums):
    assert lax.conv_general_permutations(dnums) == jax.lax.conv_general_permutations(dnums)


def test_conv_shape_tuple_matches_jax():
    for args in [((2, 3, 9, 9), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1))),
                 ((1, 2, 10, 7), (6, 2, 3, 2), (2, 3), ((0, 1), (2, 0)))]:
        assert tuple(lax.conv_shape_tuple(*args)) == tuple(jax.lax.conv_shape_tuple(*args))


def test_integer_results_of_float_products_are_summed_first():
    """An integer ``preferred_element_type`` for float operands: dot_general sums in floats,
    then converts (truncating, saturating) as jax; a convolution refuses it, as jax."""
    a = np.array([[0.4, 0.4, 0.4], [-0.9, 2.5, 1e10]], np.float32)
    b = np.ones((3, 1), np.float32)
    dims = (((1,), (0,)), ((), ()))
    for out in (np.int32, np.int8, np.uint8, np.bool_):
        for fn in (lax.dot_general, fungrad.jit(lax.dot_general, static_argnums=(2,),
                                                static_argnames=("preferred_element_type",))):
            assert_same(fn(a, b, dims, preferred_element_type=out),
                        jax.lax.dot_general(a, b, dims, preferred_element_type=out))
    x, k = np.full((1, 1, 4), 0.4, np.float32), np.ones((1, 1, 3), np.float32)
    with pytest.raises(TypeError, match="preferred_element_type int32 is incompatible"):
        lax.conv(x, k, (1,), "VALID", preferred_element_type=np.int32)
    with pytest.raises(TypeError, match="same dtypes, got float32, float16"):
        lax.conv(x, k.astype(np.float16), (1,), "VALID")  # eagerly too, not only under jit
