"""conv_general_dilated_patches, conv_general_dilated_local and the convolution /
reduce_window shape helpers against jax.lax: values, shapes, dtypes, under jit,
JVP, VJP, vmap, and errors."""
import functools
import warnings
import zlib

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
import harness
from harness import assert_same, rand, to_fg, to_jax

compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)


def _rng(*key):
    """A generator of its own per case: its data must not depend on which tests ran before."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ----------------------------------------------------------------------------- patches

# (lhs shape, dtype, keyword arguments of conv_general_dilated_patches)
PATCH_CASES = [
    ((2, 3, 9), np.float32, dict(filter_shape=(3,), window_strides=(2,), padding="SAME")),
    ((2, 8, 2), np.float32, dict(filter_shape=(2,), window_strides=(1,), padding="VALID",
                                 rhs_dilation=(3,), dimension_numbers=("NWC", "WIO", "NWC"))),
    ((2, 3, 7, 6), np.float32, dict(filter_shape=(2, 3), window_strides=(1, 2),
                                    padding="SAME")),
    ((2, 7, 6, 3), np.float32, dict(filter_shape=(3, 2), window_strides=(2, 1),
                                    padding="VALID",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((1, 2, 5, 6), np.float32, dict(filter_shape=(3, 2), window_strides=(2, 1),
                                    padding=((1, 2), (0, -1)), lhs_dilation=(2, 1),
                                    rhs_dilation=(1, 2))),
    ((2, 2, 6, 5), np.float32, dict(filter_shape=(2, 3), window_strides=(1, 1),
                                    padding="SAME_LOWER",
                                    dimension_numbers=("NCHW", "WHIO", "CNHW"))),
    ((1, 4, 4, 3), np.int32, dict(filter_shape=(2, 2), window_strides=(1, 1), padding="SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((2, 2, 5, 4), ml_dtypes.bfloat16, dict(filter_shape=(2, 2), window_strides=(2, 1),
                                            padding=((0, 1), (1, 1)))),
]


@pytest.mark.parametrize("shape,dtype,kw", PATCH_CASES)
def test_patches_transforms(shape, dtype, kw):
    rng = _rng(shape, np.dtype(dtype).name, kw)
    fg = lambda x: lax.conv_general_dilated_patches(x, **kw)
    jx = lambda x: jax.lax.conv_general_dilated_patches(x, **kw)
    compare_transforms(fg, jx, [rand(rng, shape, dtype)], rng, vmap_axes=(0, 2))


@pytest.mark.parametrize("dtype,pref", [(ml_dtypes.bfloat16, np.float32), (np.int8, np.int32)])
def test_patches_preferred_element_type(dtype, pref):
    x = rand(_rng(dtype, pref), (2, 3, 5, 4), dtype)
    kw = dict(filter_shape=(2, 2), window_strides=(1, 1), padding="VALID",
              preferred_element_type=pref)
    compare(lambda x: lax.conv_general_dilated_patches(x, **kw),
            lambda x: jax.lax.conv_general_dilated_patches(x, **kw), x)


def test_patches_precision():
    x = rand(_rng("precision"), (1, 2, 4, 4))
    for p in (jax.lax.Precision.HIGHEST, None):
        fp = None if p is None else lax.Precision.HIGHEST
        compare(lambda x: lax.conv_general_dilated_patches(x, (2, 2), (1, 1), "SAME",
                                                           precision=fp),
                lambda x: jax.lax.conv_general_dilated_patches(x, (2, 2), (1, 1), "SAME",
                                                               precision=p), x)


# ----------------------------------------------------------------------------- local

# (lhs shape, filter_shape, out features, keyword arguments of conv_general_dilated_local)
LOCAL_CASES = [
    ((2, 3, 8), (3,), 4, dict(window_strides=(1,), padding="SAME")),
    ((2, 6, 5, 2), (2, 2), 3, dict(window_strides=(2, 1), padding="VALID",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((1, 2, 5, 6), (2, 3), 2, dict(window_strides=(1, 2), padding=((1, 0), (2, 1)),
                                   lhs_dilation=(2, 1), rhs_dilation=(1, 2),
                                   dimension_numbers=("NCHW", "WHIO", "NHWC"))),
    ((2, 3, 6, 5), (3, 2), 2, dict(window_strides=(2, 2), padding="SAME",
                                   dimension_numbers=("NCHW", "OIHW", "CNHW"))),
]


def _local_rhs_shape(lhs_shape, filter_shape, out_features, kw):
    """The kernel shape conv_general_dilated_local expects: output positions as spatial
    dimensions, C * prod(filter_shape) input features, laid out by the rhs spec."""
    patches = jax.eval_shape(lambda x: jax.lax.conv_general_dilated_patches(
        x, filter_shape, **kw), jax.ShapeDtypeStruct(lhs_shape, np.float32))
    dn = jax.lax.conv_dimension_numbers(lhs_shape, (1, 1) + tuple(filter_shape),
                                        kw.get("dimension_numbers"))
    shape = [0] * len(lhs_shape)
    shape[dn.rhs_spec[0]] = out_features
    shape[dn.rhs_spec[1]] = patches.shape[dn.out_spec[1]]
    for r, o in zip(dn.rhs_spec[2:], dn.out_spec[2:]):
        shape[r] = patches.shape[o]
    return tuple(shape)


@pytest.mark.parametrize("lshape,filt,o,kw", LOCAL_CASES)
def test_local_transforms(lshape, filt, o, kw):
    rng = _rng(lshape, filt, o, kw)
    args = [rand(rng, lshape), rand(rng, _local_rhs_shape(lshape, filt, o, kw))]
    fg = lambda x, w: lax.conv_general_dilated_local(x, w, filter_shape=filt, **kw)
    jx = lambda x, w: jax.lax.conv_general_dilated_local(x, w, filter_shape=filt, **kw)
    compare_transforms(fg, jx, args, rng, vmap_axes=(0,))


def test_local_dtypes_and_precision():
    lshape, filt, kw = (1, 2, 4, 4), (2, 2), dict(window_strides=(1, 1), padding="VALID")
    rshape = _local_rhs_shape(lshape, filt, 3, kw)
    rng = _rng("local dtypes")
    for ldt, rdt, prec in [(np.int32, np.int32, None), (np.float32, np.float32, "highest"),
                           (ml_dtypes.bfloat16, ml_dtypes.bfloat16, None)]:
        fp = prec if prec is None else lax.Precision.HIGHEST
        jp = prec if prec is None else jax.lax.Precision.HIGHEST
        compare(lambda x, w: lax.conv_general_dilated_local(x, w, filter_shape=filt,
                                                            precision=fp, **kw),
                lambda x, w: jax.lax.conv_general_dilated_local(x, w, filter_shape=filt,
                                                                precision=jp, **kw),
                rand(rng, lshape, ldt), rand(rng, rshape, rdt))


def test_local_grad_under_jit():
    lshape, filt, kw = (2, 2, 5, 4), (3, 2), dict(window_strides=(1, 1), padding="SAME")
    rng = _rng("local grad")
    x, w = rand(rng, lshape), rand(rng, _local_rhs_shape(lshape, filt, 2, kw))

    def loss(lib):
        def f(x, w):
            y = lib.lax.conv_general_dilated_local(x, w, filter_shape=filt, **kw)
            return lib.numpy.sum(lib.numpy.tanh(y))
        return f
    got = fungrad.jit(fungrad.grad(loss(fungrad), argnums=(0, 1)))(*to_fg([x, w]))
    want = jax.jit(jax.grad(loss(jax), argnums=(0, 1)))(*to_jax([x, w]))
    assert_same(got, want, harness.GRAD_TOL, check_weak=False)


# ----------------------------------------------------------------------------- shape helpers

CONV_SHAPES = [
    ((2, 3, 9, 9), (4, 3, 3, 3), (2, 1), "SAME", ("NCHW", "OIHW", "NCHW")),
    ((2, 9, 8, 3), (3, 2, 3, 4), (1, 3), "VALID", ("NHWC", "HWIO", "NHWC")),
    ((2, 9, 8, 3), (3, 2, 3, 4), (2, 2), ((1, 2), (0, -1)), ("NHWC", "HWIO", "NCHW")),
    ((1, 2, 7), (5, 2, 3), (3,), "SAME_LOWER", ("NCW", "OIW", "NWC")),
    ((1, 2, 2), (5, 2, 4), (1,), "VALID", ("NCW", "OIW", "NCW")),  # empty output
    ((1, 2, 6, 5, 4), (3, 2, 2, 3, 2), (1, 2, 1), "SAME", ("NCHWD", "OIHWD", "NCHWD")),
]


@pytest.mark.parametrize("args", CONV_SHAPES)
def test_conv_general_shape_tuple(args):
    got = lax.conv_general_shape_tuple(*args)
    assert got == tuple(int(d) for d in jax.lax.conv_general_shape_tuple(*args))
    assert all(type(d) is int for d in got)


@pytest.mark.parametrize("args", [
    ((2, 3, 9, 9), (4, 3, 3, 3), (2, 1), "SAME", ("NCHW", "OIHW", "NCHW")),
    ((2, 9, 8, 3), (3, 2, 3, 4), (2, 3), "VALID", ("NHWC", "HWIO", "NHWC")),
    ((2, 9, 8, 3), (3, 2, 3, 4), (2, 2), ((1, 2), (0, 1)), ("NHWC", "HWOI", "NCHW")),
    ((1, 2, 7), (5, 2, 3), (3,), "SAME", ("NCW", "OIW", "NWC")),
    ((2, 3, 1, 1), (4, 3, 5, 5), (1, 1), [(0, 0), (0, 0)], ("NCHW", "OIHW", "NCHW")),
])
def test_conv_transpose_shape_tuple(args):
    got = lax.conv_transpose_shape_tuple(*args)
    assert got == tuple(int(d) for d in jax.lax.conv_transpose_shape_tuple(*args))
    assert all(type(d) is int for d in got)


@pytest.mark.parametrize("args", [
    ((4, 5, 6), (2, 2, 2), (1, 2, 3), [(0, 0), (1, 1), (0, 1)]),
    ((4, 5, 6), (2, 2, 2), (1, 2, 3), [(0, 0), (1, 1), (0, 1)], (2,), (1, 2, 1)),
    ((4, 5, 6), (9, 2, 2), (1, 1, 3), [(0, 0)] * 3, None, (1, 1, 2)),
    ((8,), (3,), (2,), [(-1, 2)], (2,), None),
    ((3, 0), (2, 1), (1, 1), ((0, 0), (0, 0))),
])
def test_reduce_window_shape_tuple(args):
    got = lax.reduce_window_shape_tuple(*args)
    assert got == jax.lax.reduce_window_shape_tuple(*args)
    assert all(type(d) is int for d in got)


def test_shape_tuples_agree_with_the_ops():
    """The helpers predict the shapes the operations produce."""
    x, w = np.zeros((2, 7, 6, 3), np.float32), np.zeros((3, 2, 3, 4), np.float32)
    dn = ("NHWC", "HWIO", "NHWC")
    assert lax.conv_general_dilated(x, w, (2, 1), "SAME", dimension_numbers=dn).shape == \
        lax.conv_general_shape_tuple(x.shape, w.shape, (2, 1), "SAME", dn)
    assert lax.conv_transpose(x, w, (2, 1), "VALID", dimension_numbers=dn).shape == \
        lax.conv_transpose_shape_tuple(x.shape, w.shape, (2, 1), "VALID", dn)
    pads = ((0, 0), (1, 1), (0, 2), (0, 0))
    assert lax.reduce_window_sum(x, (1, 3, 2, 1), (1, 2, 1, 1), pads, (1, 1, 2, 1)).shape == \
        lax.reduce_window_shape_tuple(x.shape, (1, 3, 2, 1), (1, 2, 1, 1), pads, (1, 1, 2, 1))


# ----------------------------------------------------------------------------- errors

X4 = np.ones((2, 3, 5, 5), np.float32)
W_LOCAL = np.ones((4, 4, 12, 6), np.float32)  # for X4, filter (2, 2), VALID, HWIO
DN_LOCAL = ("NCHW", "HWIO", "NCHW")
NCHW = ("NCHW", "OIHW", "NCHW")

# (function name, positional arguments, keyword arguments, fungrad's exception, jax's)
ERRORS = [
    ("conv_general_dilated_patches", (X4, (2,), (1, 1), "VALID"), {}, TypeError, TypeError),
    ("conv_general_dilated_patches", (np.ones(3), (), (), "VALID"), {}, TypeError, TypeError),
    ("conv_general_dilated_patches", (X4, (2, 2), (1,), "VALID"), {}, ValueError, ValueError),
    ("conv_general_dilated_patches", (X4, (2, 2), (0, 1), "VALID"), {}, ValueError, ValueError),
    ("conv_general_dilated_patches", (X4, (0, 2), (1, 1), "VALID"), {}, ValueError, ValueError),
    ("conv_general_dilated_patches", (X4, (2, 2), (1, 1), [(0, 0)]), {}, TypeError, TypeError),
    ("conv_general_dilated_patches", (X4, (2, 2), (1, 1), "FOO"), {}, ValueError, RuntimeError),
    ("conv_general_dilated_patches", (X4, (2, 2), (1, 1), "SAME"), dict(lhs_dilation=(2, 1)),
     ValueError, ValueError),
    ("conv_general_dilated_patches", (X4, (2, 2), (1, 1), "SAME"),
     dict(dimension_numbers=("NCHW", "OIHW")), TypeError, TypeError),
    ("conv_general_dilated_local", (X4, np.ones((4, 4, 11, 6), np.float32), (1, 1), "VALID",
                                    (2, 2)), dict(dimension_numbers=DN_LOCAL),
     TypeError, TypeError),
    ("conv_general_dilated_local", (X4, np.ones((3, 4, 12, 6), np.float32), (1, 1), "VALID",
                                    (2, 2)), dict(dimension_numbers=DN_LOCAL),
     TypeError, TypeError),
    ("conv_general_dilated_local", (X4, np.ones((4, 12, 6), np.float32), (1, 1), "VALID",
                                    (2, 2)), dict(dimension_numbers=DN_LOCAL),
     TypeError, TypeError),
    ("conv_general_dilated_local", (X4, W_LOCAL, (1, 1), "VALID", (2, 2)),
     dict(dimension_numbers=DN_LOCAL, precision="bogus"), ValueError, ValueError),
    ("conv_general_shape_tuple", ((2, 3, 9, 9), (4, 3, 3, 3), (2, 1), "SAME", None), {},
     TypeError, TypeError),
    ("conv_general_shape_tuple", ((2, 3, 9, 9), (4, 3, 3, 3), (2, 1), [(1, 1)], NCHW), {},
     TypeError, TypeError),
    ("conv_general_shape_tuple", ((2, 3, 9, 9), (4, 3, 3, 3), (2, 1), [(-10, 0), (0, 0)],
                                  NCHW), {}, ValueError, ValueError),
    ("conv_general_shape_tuple", ((2, 3, 9, 9), (4, 3, 3, 3), (2,), "VALID", NCHW), {},
     ValueError, IndexError),
    ("conv_general_shape_tuple", ((2, 3, 9), (4, 3, 3, 3), (2, 1), "VALID", NCHW), {},
     TypeError, IndexError),
    ("conv_transpose_shape_tuple", ((2, 3, 9, 9), (4, 3, 3, 3), (2, 1), "FOO", NCHW), {},
     ValueError, ValueError),
    ("conv_transpose_shape_tuple", ((2, 3, 9, 9), (4, 3, 3, 3), (2, 1), [(1, 1)], NCHW), {},
     ValueError, ValueError),
    ("reduce_window_shape_tuple", ((4, 5, 6), (2, 2, 2), (1, 2, 3), [(0, 0)] * 3, None,
                                   (1, 0, 1)), {}, TypeError, TypeError),
    ("reduce_window_shape_tuple", ((4, 5, 6), (2, 2), (1, 2, 3), [(0, 0)] * 3), {},
     ValueError, ValueError),
    ("reduce_window_shape_tuple", ((4, 5, 6), (2, 2, 2), (1, 2, 3), "VALID"), {},
     TypeError, ValueError),
    ("reduce_window_shape_tuple", ((4, 5, 6), (2, 2, 2), (1, 0, 3), [(0, 0)] * 3), {},
     ValueError, ZeroDivisionError),
]


@pytest.mark.parametrize("name,args,kw,fg_exc,jax_exc", ERRORS)
def test_errors(name, args, kw, fg_exc, jax_exc):
    with pytest.raises(jax_exc), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jax warns of a division by zero before raising
        getattr(jax.lax, name)(*args, **kw)
    with pytest.raises(fg_exc, match=name):
        getattr(lax, name)(*args, **kw)
