"""lax.ragged_dot / ragged_dot_general against jax: values, shapes and dtypes (eager and
under fungrad.jit), JVP and VJP, finite-difference gradients in float64, vmap over any
argument, the three ragged modes, memory, and errors."""
from __future__ import annotations

import functools

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
import harness
from fungrad import lax
from fungrad.test_util import check_grads
from harness import GRAD_TOL, assert_same, peak_traced_bytes, rand, to_fg, to_jax, x64

compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)

RNG = np.random.default_rng(0)
RDN = lax.RaggedDotDimensionNumbers


def _gs(sizes) -> np.ndarray:
    return np.asarray(sizes, np.int32)


def _dot(gs, **kw):
    """(fungrad, jax) ragged_dot with ``gs`` closed over (or passed when None)."""
    if gs is None:
        return (lambda a, b, g: lax.ragged_dot(a, b, g, **kw),
                lambda a, b, g: jax.lax.ragged_dot(a, b, g, **kw))
    return (lambda a, b: lax.ragged_dot(a, b, gs, **kw),
            lambda a, b: jax.lax.ragged_dot(a, b, gs, **kw))


# ----------------------------------------------------------------------------- ragged_dot

# (m, k, n, group sizes)
SIZE_CASES = [
    (7, 3, 4, [2, 3, 2]),        # exact cover
    (7, 3, 4, [2, 0, 3]),        # an empty group; rows past the total are zeros
    (6, 4, 2, [0, 6, 0, 0]),     # one group takes all, the others empty
    (5, 3, 2, [5]),              # one group
    (5, 3, 2, [4, 4, 4]),        # total past m: cut at m
    (6, 3, 2, [3, -1, 2]),       # a negative size: a row in two groups (XLA's masks)
    (6, 3, 2, [0, 0]),           # no rows in any group
    (0, 3, 2, [0, 0]),           # no rows
]


@pytest.mark.parametrize("m,k,n,sizes", SIZE_CASES)
def test_ragged_dot_values(m, k, n, sizes):
    lhs, rhs = rand(RNG, (m, k)), rand(RNG, (len(sizes), k, n))
    compare(*_dot(None), lhs, rhs, _gs(sizes))


@pytest.mark.parametrize("ldt,rdt,pref", [
    (np.float32, np.float32, None), (ml_dtypes.bfloat16, ml_dtypes.bfloat16, None),
    (ml_dtypes.bfloat16, ml_dtypes.bfloat16, np.float32), (np.float16, np.float16, None),
    (np.float32, ml_dtypes.bfloat16, None), (np.int32, np.int32, None),
    (np.int8, np.int8, np.int32), (np.int32, np.float32, None)])
def test_ragged_dot_dtypes(ldt, rdt, pref):
    lhs, rhs = rand(RNG, (6, 5), ldt), rand(RNG, (3, 5, 4), rdt)
    for gs_dtype in (np.int32, np.uint8):
        compare(*_dot(None, preferred_element_type=pref), lhs, rhs,
                np.array([2, 1, 2], gs_dtype))


@pytest.mark.parametrize("sizes", [[2, 0, 3], [1, 5, 0], [6, 0, 0]])
def test_ragged_dot_transforms(sizes):
    """Values, JVP and VJP in lhs and rhs against jax, and vmap of all three arguments at
    axis 0 (the one axis jax batches)."""
    args = [rand(RNG, (6, 4)), rand(RNG, (3, 4, 5)), _gs(sizes)]
    compare_transforms(*_dot(None), args, RNG, argnums=(0, 1))


def test_group_sizes_are_not_differentiated():
    """A float0 tangent in, a float0 cotangent out, as jax gives for integer operands."""
    lhs, rhs, gs = rand(RNG, (5, 3)), rand(RNG, (2, 3, 4)), _gs([2, 3])
    ct = rand(RNG, (5, 4))
    assert_same(fungrad.vjp(lax.ragged_dot, *to_fg((lhs, rhs, gs)))[1](to_fg(ct)),
                jax.vjp(jax.lax.ragged_dot, *to_jax((lhs, rhs, gs)))[1](to_jax(ct)), GRAD_TOL)
    float0 = np.zeros(gs.shape, jax.dtypes.float0)
    assert_same(fungrad.jvp(lax.ragged_dot, to_fg((lhs, rhs, gs)), (*to_fg((lhs, rhs)), float0)),
                jax.jvp(jax.lax.ragged_dot, to_jax((lhs, rhs, gs)), (*to_jax((lhs, rhs)), float0)),
                GRAD_TOL)


def test_ragged_dot_bfloat16_derivatives():
    lhs, rhs = rand(RNG, (5, 4), ml_dtypes.bfloat16), rand(RNG, (2, 4, 3), ml_dtypes.bfloat16)
    gs = _gs([3, 2])
    compare_transforms(*_dot(gs, preferred_element_type=np.float32), [lhs, rhs], RNG,
                       vmap_axes=())


def test_ragged_dot_finite_differences():
    with x64():
        lhs, rhs = rand(RNG, (7, 3), np.float64), rand(RNG, (3, 3, 2), np.float64)
        for sizes in ([2, 0, 4], [3, -1, 2], [1, 1, 1]):
            fg, _ = _dot(_gs(sizes))
            check_grads(fg, (lhs, rhs), order=2)


def test_ragged_dot_second_derivatives_match_jax():
    """jvp of grad of a loss (the gradient in rhs is a contracting-mode product, whose
    JVP is one too)."""
    lhs, rhs, gs = rand(RNG, (6, 3)), rand(RNG, (3, 3, 2)), _gs([2, 3, 1])

    def loss(lib):
        def f(a, b):
            y = lib.lax.ragged_dot(a, b, gs)
            return lib.lax.reduce_sum(lib.lax.mul(y, lib.lax.sin(y)), (0, 1))
        return f
    tangents = (rand(RNG, lhs.shape), rand(RNG, rhs.shape))
    assert_same(fungrad.jvp(fungrad.grad(loss(fungrad), (0, 1)), to_fg((lhs, rhs)),
                            to_fg(tangents)),
                jax.jvp(jax.grad(loss(jax), (0, 1)), to_jax((lhs, rhs)), to_jax(tangents)),
                GRAD_TOL)
    jitted = fungrad.jit(fungrad.grad(loss(fungrad), (0, 1)))(*to_fg((lhs, rhs)))
    assert_same(jitted, jax.grad(loss(jax), (0, 1))(*to_jax((lhs, rhs))), GRAD_TOL)


def _stacked_ref(jax_fn, args, in_axes):
    """jax's results for each example of the batch, stacked: the reference for the
    in_axes jax cannot vmap itself (it batches only with every argument at axis 0)."""
    size = next(np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None)
    fn = jax.jit(jax_fn)
    return np.stack([np.asarray(fn(*to_jax([a if ax is None else np.take(a, i, axis=ax)
                                            for a, ax in zip(args, in_axes)])))
                     for i in range(size)])


@pytest.mark.parametrize("in_axes", [(0, None, None), (1, None, None), (None, 0, None),
                                     (None, 2, None), (None, None, 0), (1, None, 0),
                                     (0, 0, None), (None, 1, 1), (0, 1, 0)])
def test_ragged_dot_vmap_any_axes(in_axes):
    base = [(6, 4), (3, 4, 5), (3,)]
    args = []
    for shape, ax in zip(base, in_axes):
        shape = shape if ax is None else shape[:ax] + (2,) + shape[ax:]
        args.append(rand(RNG, shape))
    sizes = np.array([[2, 0, 3], [1, 4, 1]])
    args[2] = _gs(sizes[0] if in_axes[2] is None else np.moveaxis(sizes, 0, in_axes[2]))
    fg, jx = _dot(None)
    assert_same(fungrad.vmap(fg, in_axes)(*to_fg(args)), _stacked_ref(jx, args, in_axes))


def test_ragged_dot_vmap_of_grad():
    lhs, rhs = rand(RNG, (2, 6, 3)), rand(RNG, (3, 3, 2))
    gs = _gs([[2, 1, 3], [0, 4, 1]])

    def loss(lib):
        return lambda a, b, g: lib.lax.reduce_sum(lib.lax.square(lib.lax.ragged_dot(a, b, g)),
                                                  (0, 1))
    got = fungrad.vmap(fungrad.grad(loss(fungrad), (0, 1)), (0, None, 0))(*to_fg((lhs, rhs, gs)))
    grad = jax.jit(jax.grad(loss(jax), (0, 1)))
    want = [grad(*to_jax((lhs[i], rhs, gs[i]))) for i in range(2)]
    assert_same(got, tuple(np.stack([w[j] for w in want]) for j in range(2)), GRAD_TOL)


def test_ragged_dot_jaxpr_and_no_dense_intermediate():
    """One equation; eager memory about the result's, not the [m, k, n] a gather of
    weights per row would take, for the product and for its gradients."""
    lhs, rhs, gs = rand(RNG, (8, 3)), rand(RNG, (2, 3, 4)), _gs([5, 3])
    text = str(fungrad.make_jaxpr(lambda a, b: lax.ragged_dot(a, b, gs))(lhs, rhs))
    assert text.count("ragged_dot_general[") == 1, text
    m, k, n, g = 4096, 64, 64, 8
    lhs, rhs = rand(RNG, (m, k)), rand(RNG, (g, k, n))
    gs = _gs([m // g] * g)
    out_bytes = m * n * 4
    peak, _ = peak_traced_bytes(lambda: lax.ragged_dot(lhs, rhs, gs))
    assert peak < 2 * out_bytes, peak
    grads = fungrad.grad(lambda a, b: lax.reduce_sum(lax.ragged_dot(a, b, gs), (0, 1)), (0, 1))
    peak, _ = peak_traced_bytes(lambda: grads(lhs, rhs))
    assert peak < 8 * out_bytes < m * k * n * 4, peak


# ----------------------------------------------------------------------------- ragged_dot_general

def _sizes(rng, prefix, groups, total):
    """Random nonnegative group sizes of shape ``prefix + (groups,)``, each row summing to
    at most ``total``."""
    cuts = np.sort(rng.integers(0, total + 1, size=prefix + (groups,)), axis=-1)
    return np.diff(cuts, axis=-1, prepend=0).astype(np.int32)


# (name, lhs shape, rhs shape, group sizes prefix, dimension numbers)
GENERAL_CASES = [
    ("noncontracting, transposed layouts", (4, 7), (4, 3, 2),
     (), RDN((((0,), (0,)), ((), ())), (1,), (1,))),
    ("noncontracting, batch and per-batch sizes", (2, 6, 3), (3, 2, 3, 4),
     (2,), RDN((((2,), (2,)), ((0,), (1,))), (1,), (0,))),
    ("noncontracting, batch and shared sizes", (2, 6, 3), (3, 2, 3, 4),
     (), RDN((((2,), (2,)), ((0,), (1,))), (1,), (0,))),
    ("noncontracting, a free dimension before the ragged one", (2, 3, 6), (4, 3, 3),
     (2,), RDN((((1,), (1,)), ((), ())), (2,), (2,))),
    ("noncontracting, a free dimension after the ragged one", (6, 2, 3), (3, 3, 2),
     (), RDN((((2,), (1,)), ((), ())), (0,), (0,))),
    ("contracting", (2, 6), (6, 3), (), RDN((((1,), (0,)), ((), ())), (1,), ())),
    ("contracting, batch and per-batch sizes", (2, 3, 7), (2, 7, 4),
     (2,), RDN((((2,), (1,)), ((0,), (0,))), (2,), ())),
    ("contracting, batch and shared sizes", (2, 3, 7), (2, 7, 4),
     (), RDN((((2,), (1,)), ((0,), (0,))), (2,), ())),
    ("contracting, two contracting dimensions", (3, 2, 5), (5, 2, 2),
     (2,), RDN((((1, 2), (1, 0)), ((), ())), (2,), ())),
    ("batch", (4, 2, 3), (4, 3, 2), (), RDN((((2,), (1,)), ((0,), (0,))), (0,), ())),
    ("batch, the second batch dimension ragged", (2, 3, 4, 2), (4, 2, 5, 2),
     (2,), RDN((((3,), (1,)), ((0, 2), (3, 0))), (2,), ())),
]
GROUPS = 3


def _general_args(rng, lshape, rshape, prefix, dn):
    lhs, rhs = rand(rng, lshape), rand(rng, rshape)
    (r,) = dn.lhs_ragged_dimensions
    return lhs, rhs, _sizes(rng, prefix, GROUPS, lshape[r])


def _general(dn, jax_dn=None):
    jax_dn = jax_dn or jax.lax.RaggedDotDimensionNumbers(
        dn.dot_dimension_numbers, dn.lhs_ragged_dimensions, dn.rhs_group_dimensions)
    return (lambda a, b, g: lax.ragged_dot_general(a, b, g, dn),
            lambda a, b, g: jax.lax.ragged_dot_general(a, b, g, jax_dn))


@pytest.mark.parametrize("name,lshape,rshape,prefix,dn", GENERAL_CASES,
                         ids=[c[0] for c in GENERAL_CASES])
def test_ragged_dot_general_modes(name, lshape, rshape, prefix, dn):
    """Values against jax; JVP too (jax has it in every mode), VJP where jax has it
    (non-contracting), finite differences in every mode; vmap over each argument."""
    rng = np.random.default_rng(len(name))
    lhs, rhs, gs = _general_args(rng, lshape, rshape, prefix, dn)
    fg, jx = _general(dn)
    compare(fg, jx, lhs, rhs, gs)
    mode1 = "noncontracting" in name
    tangents = (rand(rng, lhs.shape), rand(rng, rhs.shape))
    f_fg, f_jx = (lambda a, b: fg(a, b, gs)), (lambda a, b: jx(a, b, gs))
    assert_same(fungrad.jvp(f_fg, to_fg((lhs, rhs)), to_fg(tangents)),
                jax.jvp(f_jx, to_jax((lhs, rhs)), to_jax(tangents)), GRAD_TOL)
    if mode1:
        ct = rand(rng, np.shape(jx(*to_jax((lhs, rhs, gs)))))
        assert_same(fungrad.vjp(f_fg, *to_fg((lhs, rhs)))[1](to_fg(ct)),
                    jax.vjp(f_jx, *to_jax((lhs, rhs)))[1](to_jax(ct)), GRAD_TOL)
    with x64():
        check_grads(f_fg, (lhs.astype(np.float64), rhs.astype(np.float64)), order=2)
    stacked = [np.stack([a, rand(rng, a.shape) if a.dtype.kind == "f"
                         else _sizes(rng, prefix, GROUPS, lshape[dn.lhs_ragged_dimensions[0]])])
               for a in (lhs, rhs, gs)]
    for in_axes in ((0, None, None), (None, 0, None), (None, None, 0), (0, 0, None),
                    (None, 0, 0), (0, 0, 0)):
        args = [s if ax == 0 else a for s, a, ax in zip(stacked, (lhs, rhs, gs), in_axes)]
        assert_same(fungrad.vmap(fg, in_axes)(*to_fg(args)), _stacked_ref(jx, args, in_axes))


def test_ragged_dot_general_is_ragged_dot():
    lhs, rhs, gs = rand(RNG, (6, 3)), rand(RNG, (2, 3, 4)), _gs([4, 1])
    dn = RDN((((1,), (1,)), ((), ())), (0,), (0,))
    assert_same(lax.ragged_dot_general(lhs, rhs, gs, dn), lax.ragged_dot(lhs, rhs, gs))
    jax_dn = jax.lax.RaggedDotDimensionNumbers((((1,), (1,)), ((), ())), (0,), (0,))
    assert_same(lax.ragged_dot_general(lhs, rhs, gs, jax_dn),  # jax's dimension numbers work
                jax.lax.ragged_dot_general(*to_jax((lhs, rhs, gs)), jax_dn))
    assert dn == RDN(([[1], [1]], [[], []]), [0], [0]) and hash(dn) == hash(RDN(
        (((1,), (1,)), ((), ())), (0,), (0,)))


# ----------------------------------------------------------------------------- errors

L, R, G = np.ones((6, 3), np.float32), np.ones((2, 3, 4), np.float32), _gs([3, 3])
BASIC = RDN((((1,), (1,)), ((), ())), (0,), (0,))


# (fungrad call, the same call in jax or None where jax does not raise, message)
ERROR_CASES = [
    (lambda m: m.ragged_dot(L, np.ones((2, 2, 4), np.float32), G), True,
     "ragged_dot: lhs's last dimension"),
    (lambda m: m.ragged_dot(L, R, _gs([2, 2, 2])), True, "ragged_dot: rhs has 2 groups"),
    (lambda m: m.ragged_dot(L, R, np.array([3.0, 3.0])), True, "ragged_dot: group_sizes must"),
    (lambda m: m.ragged_dot(L, R, np.int32(3)), True, "ragged_dot: expected lhs of shape"),
    (lambda m: m.ragged_dot(L[0], R, G), True, "ragged_dot: expected lhs of shape"),
    (lambda m: m.ragged_dot(L, R[0], G), True, "ragged_dot: expected lhs of shape"),
    # jax accepts an lhs of rank 3 here (the free dimensions of ragged_dot_general);
    # fungrad's ragged_dot keeps to its documented [m, k]
    (lambda m: m.ragged_dot(np.ones((6, 3, 2), np.float32), R, G), False,
     "ragged_dot: expected lhs of shape"),
    (lambda m: m.ragged_dot(L.astype(np.int32), R.astype(np.int32), G,
                            preferred_element_type=np.int8), True, "must not be narrower"),
    (lambda m: m.ragged_dot(L, R, G, group_offset=np.array([1], np.int32)), True,
     "ragged_dot: group_offset is not supported"),
    (lambda m: m.ragged_dot_general(L, R, G, m.RaggedDotDimensionNumbers(
        (((1,), (1,)), ((), ())), (0, 1), (0,))), True, "ragged_dot_general requires exactly one"),
    (lambda m: m.ragged_dot_general(L, R, G, m.RaggedDotDimensionNumbers(
        (((1,), (1,)), ((), ())), (2,), (0,))), True, "ragged_dot_general requires the lhs ragged"),
    (lambda m: m.ragged_dot_general(L, R, G, m.RaggedDotDimensionNumbers(
        (((1,), (1,)), ((), ())), (0,), ())), True, "ragged_dot_general requires exactly one rhs"),
    (lambda m: m.ragged_dot_general(L, R[0], G, m.RaggedDotDimensionNumbers(
        (((1,), (0,)), ((), ())), (1,), (1,))), True, "ragged_dot_general requires no rhs group"),
    (lambda m: m.ragged_dot_general(L, np.ones((3, 3, 4), np.float32), G, BASIC_OF(m)), True,
     "ragged_dot_general expected the rhs group dimension to have size 2"),
    (lambda m: m.ragged_dot_general(L, R, np.ones((6, 2), np.int32), BASIC_OF(m)), True,
     r"ragged_dot_general expected group_sizes of shape \(2,\)"),
    (lambda m: m.ragged_dot_general(L, R, G, m.RaggedDotDimensionNumbers(
        (((1,), (2,)), ((), ())), (0,), (0,))), True,
     "ragged_dot_general requires contracting dimensions to have the same shape"),
    (lambda m: m.ragged_dot_general(L, R, G, m.RaggedDotDimensionNumbers(
        (((1,), (1,)), ((), ())), (0,), (1,))), True,
     "ragged_dot_general requires the rhs group dimension to be neither"),
]


def BASIC_OF(m):  # noqa: N802
    return m.RaggedDotDimensionNumbers((((1,), (1,)), ((), ())), (0,), (0,))


@pytest.mark.parametrize("call,jax_raises,match", ERROR_CASES)
def test_errors(call, jax_raises, match):
    with pytest.raises((TypeError, ValueError, NotImplementedError), match=match):
        call(lax)
    if jax_raises:
        with pytest.raises((TypeError, ValueError, NotImplementedError)):
            call(jax.lax)


def test_errors_under_tracing_and_bad_dimension_numbers():
    with pytest.raises(TypeError, match="ragged_dot_general requires contracting"):
        fungrad.jit(lambda a, b, g: lax.ragged_dot_general(a, b, g, RDN(
            (((1,), (2,)), ((), ())), (0,), (0,))))(L, R, G)
    with pytest.raises(TypeError, match="ragged_dot_general: ragged_dot_dimension_numbers"):
        lax.ragged_dot_general(L, R, G, (((1,), (1,)), ((), ())))
    with pytest.raises(TypeError, match="RaggedDotDimensionNumbers: dot_dimension_numbers"):
        RDN(((1,), (1,)), (0,), (0,))
    with pytest.raises(TypeError, match="RaggedDotDimensionNumbers: lhs_ragged_dimensions"):
        RDN((((1,), (1,)), ((), ())), ("a",), (0,))
