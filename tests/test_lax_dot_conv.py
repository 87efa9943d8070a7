"""dot_general / dot / batch_matmul and conv_general_dilated against jax: values,
dtypes, JVP, VJP, vmap (batched lhs, rhs or both), second derivatives, errors."""
import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from tests.harness import GRAD_TOL, assert_same, compare, compare_transforms, rand, to_fg, to_jax

RNG = np.random.default_rng(0)

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
    compare_transforms(fg, jx, args, RNG, vmap_axes=(0, 1, -1))


@pytest.mark.parametrize("lshape,rshape,dnums", DOT_CASES[:7])
def test_dot_general_vmap_one_side_batched(lshape, rshape, dnums):
    a, b = rand(RNG, lshape), rand(RNG, rshape)
    for ax in (0, 1, -1):
        stacked = np.stack([rand(RNG, lshape) for _ in range(3)], axis=ax)
        assert_same(fungrad.vmap(lambda x, y: lax.dot_general(x, y, dnums), (ax, None))(*to_fg((stacked, b))),
                    jax.vmap(lambda x, y: jax.lax.dot_general(x, y, dnums), (ax, None))(*to_jax((stacked, b))))
        stacked = np.stack([rand(RNG, rshape) for _ in range(3)], axis=ax)
        assert_same(fungrad.vmap(lambda x, y: lax.dot_general(x, y, dnums), (None, ax))(*to_fg((a, stacked))),
                    jax.vmap(lambda x, y: jax.lax.dot_general(x, y, dnums), (None, ax))(*to_jax((a, stacked))))


DTYPE_CASES = [
    (np.float32, np.float32, None), (np.float16, np.float16, None),
    (ml_dtypes.bfloat16, ml_dtypes.bfloat16, None), (ml_dtypes.bfloat16, ml_dtypes.bfloat16, np.float32),
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
        fungrad.lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=np.float32), (0, 1)),
        argnums=(0, 1))
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
        fungrad.make_jaxpr(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))))(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))
