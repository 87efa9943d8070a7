"""Products (matmul with batch broadcasting, dot, vdot, vecdot, inner, outer, tensordot,
kron, cross), einsum (explicit/implicit outputs, '...', repeated labels, interleaved
form) and linalg norms against jax.numpy; transforms and errors."""
import functools

import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import harness
from harness import compare_np, compare_types, rand

# the jax references run under jax.jit: one compilation per case instead of one per op
compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)

RNG = np.random.default_rng(4)
F32, BF16, I32 = np.float32, ml_dtypes.bfloat16, np.int32

MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)),
                 ((5, 1, 2, 3), (4, 3, 2)), ((1, 2, 3), (6, 3, 1)), ((2, 1, 2, 3), (1, 3, 3, 2))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    a, b = rand(RNG, shapes[0], F32), rand(RNG, shapes[1], F32)
    compare(jnp.matmul, jnp_ref.matmul, a, b)
    compare_np(lambda x, y: x @ y, np.matmul, lambda x, y: x @ y, a.astype(I32), b)


def test_matmul_dtypes():
    a, b = rand(RNG, (2, 3), F32), rand(RNG, (3, 4), F32)
    for da, db in [(BF16, BF16), (BF16, F32), (I32, I32), (np.int8, F32)]:
        compare_types(jnp.matmul, jnp_ref.matmul, a.astype(da), b.astype(db))
    compare(lambda x, y: jnp.matmul(x, y, preferred_element_type=jnp.float32),
            lambda x, y: jnp_ref.matmul(x, y, preferred_element_type=jnp_ref.float32),
            a.astype(BF16), b.astype(BF16))
    compare(lambda x, y: jnp.dot(x, y, precision="highest"),
            lambda x, y: jnp_ref.dot(x, y, precision="highest"), a, b)


def test_matmul_lowering_avoids_broadcast():
    """(B, T, d) @ (d, h) is one dot_general, with no broadcast of the weights."""
    jaxpr = fungrad.make_jaxpr(jnp.matmul)(rand(RNG, (5, 2, 3), F32), rand(RNG, (3, 4), F32))
    names = [e.primitive.name for e in jaxpr.eqns]
    assert names.count("dot_general") == 1 and "broadcast_in_dim" not in names, names


PRODUCTS = {
    "dot_vv": (jnp.dot, jnp_ref.dot, [(3,), (3,)]),
    "dot_mm": (jnp.dot, jnp_ref.dot, [(2, 3), (3, 4)]),
    "dot_nd": (jnp.dot, jnp_ref.dot, [(2, 5, 3), (4, 3, 2)]),
    "dot_scalar": (jnp.dot, jnp_ref.dot, [(), (3, 2)]),
    "vdot": (jnp.vdot, jnp_ref.vdot, [(2, 3), (3, 2)]),
    "vecdot": (jnp.vecdot, jnp_ref.vecdot, [(4, 3), (3,)]),
    "vecdot_axis": (lambda x, y: jnp.vecdot(x, y, axis=0),
                    lambda x, y: jnp_ref.vecdot(x, y, axis=0), [(3, 4), (3, 1)]),
    "inner": (jnp.inner, jnp_ref.inner, [(2, 3), (4, 3)]),
    "outer": (jnp.outer, jnp_ref.outer, [(2, 3), (4,)]),
    "tensordot": (jnp.tensordot, jnp_ref.tensordot, [(2, 3, 4), (3, 4, 5)]),
    "tensordot_int": (lambda x, y: jnp.tensordot(x, y, 1), lambda x, y: jnp_ref.tensordot(x, y, 1),
                      [(2, 3), (3, 4)]),
    "tensordot_axes": (lambda x, y: jnp.tensordot(x, y, ((0, 2), (2, 1))),
                       lambda x, y: jnp_ref.tensordot(x, y, ((0, 2), (2, 1))),
                       [(2, 3, 4), (5, 4, 2)]),
    "kron": (jnp.kron, jnp_ref.kron, [(2, 3), (2, 2)]),
    "kron_mixed_rank": (jnp.kron, jnp_ref.kron, [(2,), (3, 2)]),
    "cross": (jnp.cross, jnp_ref.cross, [(4, 3), (3,)]),
    "cross_2d": (jnp.cross, jnp_ref.cross, [(4, 2), (4, 2)]),
}


@pytest.mark.parametrize("name", list(PRODUCTS))
def test_products(name):
    f, ref, shapes = PRODUCTS[name]
    compare(f, ref, *[rand(RNG, s, F32) for s in shapes])


EINSUMS = {
    "matmul": ("ij,jk->ik", [(2, 3), (3, 4)]), "implicit": ("ij,jk", [(2, 3), (3, 4)]),
    "batch": ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]), "trace": ("ii", [(3, 3)]),
    "diag": ("ii->i", [(3, 3)]), "sum_all": ("ijk->", [(2, 3, 4)]),
    "transpose": ("ijk->kji", [(2, 3, 4)]), "outer": ("i,j->ij", [(2,), (3,)]),
    "inner": ("i,i", [(3,), (3,)]), "ellipsis": ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    "ellipsis_broadcast": ("...ij,...jk", [(5, 1, 2, 3), (4, 3, 2)]),
    "ellipsis_implicit": ("...i,i", [(2, 4, 3), (3,)]),
    "three_operands": ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    "attention": ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    "repeated_and_sum": ("iij,jk->k", [(3, 3, 2), (2, 4)]),
    "broadcast_one": ("ij,ij->i", [(1, 3), (4, 3)]), "scalar_out": ("i,i->", [(4,), (4,)]),
    "keep_unsummed": ("ij,k->ijk", [(2, 3), (4,)]), "uppercase": ("aB,Bc->ac", [(2, 3), (3, 2)]),
}


@pytest.mark.parametrize("name", list(EINSUMS))
def test_einsum(name):
    spec, shapes = EINSUMS[name]
    args = [rand(RNG, s, F32) for s in shapes]
    compare(lambda *a: jnp.einsum(spec, *a), lambda *a: jnp_ref.einsum(spec, *a), *args)


def test_einsum_forms_and_dtypes():
    a, b = rand(RNG, (2, 3), F32), rand(RNG, (3, 4), I32)
    compare(lambda x, y: jnp.einsum(x, [0, 1], y, [1, 2], [0, 2]),
            lambda x, y: jnp_ref.einsum(x, [0, 1], y, [1, 2], [0, 2]), a, b)
    compare_types(lambda x, y: jnp.einsum("ij,jk", x, y), lambda x, y: jnp_ref.einsum(
        "ij,jk", x, y), a.astype(BF16), b)
    compare(lambda x, y: jnp.einsum("ij,jk", x, y, preferred_element_type=jnp.float32),
            lambda x, y: jnp_ref.einsum("ij,jk", x, y, preferred_element_type=jnp_ref.float32),
            a.astype(BF16), b.astype(BF16))


TRANSFORMS = {
    "matmul_batched": (jnp.matmul, jnp_ref.matmul, [(5, 2, 3), (3, 4)]),
    "matmul_vec": (jnp.matmul, jnp_ref.matmul, [(2, 3), (3,)]),
    "dot_nd": (jnp.dot, jnp_ref.dot, [(2, 5, 3), (3, 2)]),
    "tensordot": (lambda x, y: jnp.tensordot(x, y, ((0, 2), (2, 1))),
                  lambda x, y: jnp_ref.tensordot(x, y, ((0, 2), (2, 1))), [(2, 3, 4), (5, 4, 2)]),
    "einsum_attention": (lambda x, y: jnp.einsum("bqd,bkd->bqk", x, y),
                         lambda x, y: jnp_ref.einsum("bqd,bkd->bqk", x, y), [(2, 3, 4), (2, 5, 4)]),
    "einsum_trace_mixed": (lambda x, y: jnp.einsum("iij,jk->k", x, y),
                           lambda x, y: jnp_ref.einsum("iij,jk->k", x, y), [(3, 3, 2), (2, 4)]),
    "kron": (jnp.kron, jnp_ref.kron, [(2, 3), (2, 2)]),
    "outer": (jnp.outer, jnp_ref.outer, [(3,), (4,)]),
    "norm_fro": (lambda x: jnp.linalg.norm(x, axis=(0, 1)),
                 lambda x: jnp_ref.linalg.norm(x, axis=(0, 1)), [(3, 4, 2)]),
    "norm_vec_3": (lambda x: jnp.linalg.norm(x, 3, axis=-1),
                   lambda x: jnp_ref.linalg.norm(x, 3, axis=-1), [(3, 4)]),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_product_transforms(name):
    f, ref, shapes = TRANSFORMS[name]
    compare_transforms(f, ref, [rand(RNG, s, F32) for s in shapes], RNG)


NORMS = [(None, None), (1, None), (2, None), (np.inf, None), (-np.inf, None), (0, None),
         (3.5, None), (None, 1), (1, -1), (2, 0), (np.inf, 1), (None, (0, 1)), ("fro", (0, 1)),
         (1, (0, 1)), (-1, (1, 0)), (np.inf, (0, 1)), (-np.inf, (0, 1))]


@pytest.mark.parametrize("ord_axis", NORMS, ids=str)
def test_norm(ord_axis):
    o, axis = ord_axis
    x = rand(RNG, (3, 4), F32) if (axis is None and o is None) or isinstance(axis, tuple) \
        else rand(RNG, (4,) if axis is None else (3, 4), F32)
    compare(lambda a: jnp.linalg.norm(a, o, axis), lambda a: jnp_ref.linalg.norm(a, o, axis), x)
    compare_types(lambda a: jnp.linalg.norm(a, o, axis, keepdims=True),
                  lambda a: jnp_ref.linalg.norm(a, o, axis, keepdims=True), x)


def test_linalg_helpers():
    x = rand(RNG, (2, 3, 3), F32)
    for name, kw in [("vector_norm", {"axis": -1}), ("vector_norm", {"ord": 1}),
                     ("matrix_norm", {}), ("matrix_norm", {"ord": np.inf}),
                     ("diagonal", {"offset": 1}), ("trace", {}), ("matrix_transpose", {})]:
        compare(lambda a: getattr(jnp.linalg, name)(a, **kw),
                lambda a: getattr(jnp_ref.linalg, name)(a, **kw), x)
    compare_types(jnp.linalg.norm, jnp_ref.linalg.norm, rand(RNG, (3,), I32))
    for ord_ in (2, -2, "nuc"):  # matrix norms from the singular values
        compare(lambda a: jnp.linalg.norm(a, ord_, axis=(2, 0)),
                lambda a: jnp_ref.linalg.norm(a, ord_, axis=(2, 0)), x)


def test_product_errors():
    with pytest.raises(TypeError, match=r"matmul.*\(2, 3\).*\(4, 2\)"):
        jnp.matmul(jnp.zeros((2, 3)), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"matmul: incompatible batch.*\(2, 2, 3\).*\(3, 3, 4\)"):
        jnp.zeros((2, 2, 3)) @ jnp.zeros((3, 3, 4))
    with pytest.raises(ValueError, match="matmul: input operand 0 must have ndim at least 1"):
        jnp.matmul(jnp.zeros(()), jnp.zeros(3))
    with pytest.raises(TypeError, match=r"dot: shapes \(2, 3\) and \(2,\) not aligned"):
        jnp.dot(jnp.zeros((2, 3)), jnp.zeros(2))
    with pytest.raises(TypeError, match="tensordot: shape mismatch"):
        jnp.tensordot(jnp.zeros((2, 3)), jnp.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match="einsum: size of label 'j' differs"):
        jnp.einsum("ij,jk", jnp.zeros((2, 3)), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="einsum: output subscript 'z'"):
        jnp.einsum("ij->z", jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="einsum: 2 operand subscripts given for 1 operands"):
        jnp.einsum("ij,jk", jnp.zeros((2, 3)))
