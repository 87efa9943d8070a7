"""slice, dynamic_slice, dynamic_update_slice, the *_in_dim helpers, gather and the
scatter family against jax: values, dtypes, weak types, out-of-bounds modes, JVP,
VJP, vmap (operand, indices or updates batched, at several axes), errors.

Reference functions run under ``jax.jit`` (one XLA compile per check instead of
one per primitive), which keeps this file fast. Records are tables: one entry per
case, the same checks for all.
"""

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from harness import GRAD_TOL, assert_same, compare, compare_transforms, rand, to_fg, to_jax

RNG = np.random.default_rng(0)
I32 = np.int32
AXES = (0, 1, -1)


def ints(*values):
    """int32 indices: ``ints(3)`` is a scalar, ``ints([1], [2])`` stacks its arguments."""
    return np.asarray(values[0] if len(values) == 1 else values, I32)


def check(fn, args, k, argnums=None, axes=None):
    """compare_transforms of ``fn(fungrad.lax)`` against ``jax.jit(fn(jax.lax))``.

    Case ``k`` vmaps over one axis of ``AXES`` (rotating), so the table covers all.
    """
    compare_transforms(lambda *a: fn(lax)(*a), jax.jit(fn(jax.lax)), args, RNG, argnums=argnums,
                       vmap_axes=(AXES[k % 3],) if axes is None else axes)


def check_one_batched(fn, args, axes=(0, -1)):
    """vmap with exactly one argument batched, for each argument in turn."""
    for k in range(len(args)):
        for ax in axes:
            batched = list(args)
            batched[k] = np.stack([rand(RNG, np.shape(args[k]), args[k].dtype, -1, 2)
                                   for _ in range(3)], ax if np.ndim(args[k]) >= ax else 0)
            in_axes = [None] * len(args)
            in_axes[k] = ax if np.ndim(args[k]) >= ax else 0
            assert_same(fungrad.vmap(fn(lax), in_axes)(*to_fg(batched)),
                        jax.vmap(jax.jit(fn(jax.lax)), in_axes)(*to_jax(batched)))


# ----------------------------------------------------------------------------- slicing

# name -> (function of a lax module, args): values, JVP, VJP and vmap for each
SLICE_CASES = {
    "slice": (lambda L: lambda x: L.slice(x, (1, 2), (3, 6)), [rand(RNG, (4, 6))]),
    "slice_strided": (lambda L: lambda x: L.slice(x, (0, 1), (4, 6), (3, 2)), [rand(RNG, (4, 6))]),
    "slice_empty": (lambda L: lambda x: L.slice(x, (2, 0), (2, 6), (1, 4)), [rand(RNG, (4, 6))]),
    "slice_in_dim": (lambda L: lambda x: L.slice_in_dim(x, -3, None, 2, axis=1),
                     [rand(RNG, (4, 6))]),
    "index_in_dim": (lambda L: lambda x: L.index_in_dim(x, -1, axis=1, keepdims=False),
                     [rand(RNG, (4, 6))]),
    "split": (lambda L: lambda x: tuple(L.split(x, (2, 0, 3, 1), axis=-1)), [rand(RNG, (3, 6))]),
    "dynamic_slice": (lambda L: lambda x, i, j: L.dynamic_slice(x, (i, j), (2, 3)),
                      [rand(RNG, (5, 6)), ints(1), ints(2)]),
    "dynamic_slice_oob": (lambda L: lambda x, i, j: L.dynamic_slice(x, (i, j), (2, 3)),
                          [rand(RNG, (5, 6)), ints(9), ints(-2)]),
    "dynamic_slice_negative": (lambda L: lambda x, i, j: L.dynamic_slice(x, (i, j), (2, 3)),
                               [rand(RNG, (5, 6)), ints(-9), ints(-4)]),
    "dynamic_slice_array_starts": (lambda L: lambda x, s: L.dynamic_slice(x, s, (2, 2)),
                                   [rand(RNG, (5, 6)), ints([3, -1])]),
    "dynamic_slice_in_dim": (lambda L: lambda x, i: L.dynamic_slice_in_dim(x, i, 2, axis=1),
                             [rand(RNG, (3, 6)), ints(5)]),
    "dynamic_index_in_dim": (
        lambda L: lambda x, i: L.dynamic_index_in_dim(x, i, axis=0, keepdims=False),
        [rand(RNG, (3, 6)), ints(-1)]),
    "dynamic_update_slice": (lambda L: lambda x, u, i, j: L.dynamic_update_slice(x, u, (i, j)),
                             [rand(RNG, (5, 6)), rand(RNG, (2, 3)), ints(1), ints(2)]),
    "dynamic_update_slice_oob": (
        lambda L: lambda x, u, i, j: L.dynamic_update_slice(x, u, (i, j)),
        [rand(RNG, (5, 6)), rand(RNG, (2, 3)), ints(7), ints(-8)]),
    "dynamic_update_slice_in_dim": (
        lambda L: lambda x, u, i: L.dynamic_update_slice_in_dim(x, u, i, axis=1),
        [rand(RNG, (3, 6)), rand(RNG, (2, 2)), ints(-2)]),
    "dynamic_update_index_in_dim": (
        lambda L: lambda x, u, i: L.dynamic_update_index_in_dim(x, u, i, axis=0),
        [rand(RNG, (4, 3)), rand(RNG, (3,)), ints(2)]),
}


@pytest.mark.parametrize("k,name", list(enumerate(SLICE_CASES)))
def test_slicing_transforms(k, name):
    fn, args = SLICE_CASES[name]
    check(fn, args, k)


@pytest.mark.parametrize("name", ["dynamic_slice", "dynamic_update_slice"])
def test_dynamic_slicing_vmap_one_argument_batched(name):
    check_one_batched(*SLICE_CASES[name], axes=(-1,))


@pytest.mark.parametrize("k,dtype", list(enumerate(
    [np.int32, np.uint8, np.bool_, ml_dtypes.bfloat16, np.float16])))
def test_slicing_dtypes(k, dtype):
    idx_dtype = (np.int32, np.uint8, np.int8)[k % 3]
    x, u = rand(RNG, (5, 6), dtype), rand(RNG, (2, 3), dtype)
    i, j = np.asarray(4, idx_dtype), np.asarray(1, idx_dtype)
    fn = lambda L: lambda x, u, i, j: (L.dynamic_slice(x, (i, j), (2, 3)),
                                       L.dynamic_update_slice(x, u, (i, j)),
                                       L.slice(x, (1, 0), (5, 6), (2, 5)))
    compare(fn(lax), jax.jit(fn(jax.lax)), x, u, i, j)


def test_weak_types_and_rank0():
    xs = lax.broadcast_in_dim(fungrad.numpy.asarray(2.0), (4,), ())  # weakly typed
    jxs = jax.lax.broadcast_in_dim(jax.numpy.asarray(2.0), (4,), ())
    for L, x in ((lax, xs), (jax.lax, jxs)):
        assert L.dynamic_slice(x, (1,), (2,)).weak_type and L.slice(x, (1,), (3,)).weak_type
    assert_same(lax.dynamic_update_slice(xs, np.ones(2, np.float32), (3,)),
                jax.lax.dynamic_update_slice(jxs, np.ones(2, np.float32), (3,)))
    assert_same(lax.dynamic_slice(np.float32(3.0), (), ()),
                jax.lax.dynamic_slice(np.float32(3.0), (), ()))


def test_dynamic_update_slice_leaves_operand_alone():
    x = fungrad.numpy.asarray(np.zeros((3, 3), np.float32))
    y = lax.dynamic_update_slice(x, np.ones((1, 3), np.float32), (1, 0))
    assert np.asarray(x).sum() == 0 and np.asarray(y).sum() == 3


def test_eager_matches_jit():
    def f(x, ids, i):
        g = lax.gather(x, ids, lax.GatherDimensionNumbers((1,), (0,), (0,)), (1, 5), mode="fill")
        s = lax.scatter_add(x, ids, g * 2, lax.ScatterDimensionNumbers((1,), (0,), (0,)))
        d = lax.dynamic_slice(s, (i, 1), (2, 3))
        return (g, s, lax.dynamic_update_slice(s, d * 3, (i, -1)),
                lax.slice(s, (0, 1), (5, 5), (2, 3)))
    args = (rand(RNG, (6, 5)), ints([1], [4], [9], [-2]), ints(3))
    jitted = fungrad.jit(f)
    for _ in range(2):
        for a, b in zip(f(*args), jitted(*args)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_slicing_in_jaxpr_and_second_derivative():
    x = rand(RNG, (5, 6))
    fg = lambda x, i: lax.reduce_sum(lax.integer_pow(lax.dynamic_slice(x, (i, 1), (2, 3)), 3),
                                     (0, 1))
    jx = lambda x, i: (jax.lax.dynamic_slice(x, (i, 1), (2, 3)) ** 3).sum()
    assert "dynamic_slice" in str(fungrad.make_jaxpr(fg)(*to_fg((x, ints(2)))))
    g2 = fungrad.grad(lambda x: lax.reduce_sum(fungrad.grad(fg)(x, to_fg(ints(2))) ** 2, (0, 1)))
    j2 = jax.grad(lambda x: (jax.grad(jx)(x, ints(2)) ** 2).sum())
    assert_same(g2(to_fg(x)), jax.jit(j2)(to_jax(x)), GRAD_TOL)


SLICE_ERRORS = [
    (lambda: lax.slice(np.zeros((3, 4)), (0, 0), (4, 4)), TypeError, "slice"),
    (lambda: lax.slice(np.zeros((3, 4)), (0,), (3,)), TypeError, "slice"),
    (lambda: lax.slice(np.zeros((3, 4)), (0, 0), (3, 4), (1, 0)), TypeError, "slice"),
    (lambda: lax.dynamic_slice(np.zeros((3, 4)), (0, 0), (4, 1)), TypeError, "dynamic_slice"),
    (lambda: lax.dynamic_slice(np.zeros((3, 4)), (0,), (1, 1)), ValueError, "dynamic_slice"),
    (lambda: lax.dynamic_slice(np.zeros((3, 4)), (np.float32(0), 0), (1, 1)), TypeError,
     "dynamic_slice"),
    (lambda: lax.dynamic_slice(np.zeros((3, 4)), (np.asarray(0, np.int8), np.asarray(1, np.int16)),
                               (1, 1)), TypeError, "dynamic_slice"),
    (lambda: lax.dynamic_update_slice(np.zeros((3, 4), np.float32), np.zeros((4, 1), np.float32),
                                      (0, 0)), TypeError, "dynamic_update_slice"),
    (lambda: lax.dynamic_update_slice(np.zeros((3, 4), np.float32), np.zeros((1, 1), np.int32),
                                      (0, 0)), TypeError, "dynamic_update_slice"),
    (lambda: lax.index_in_dim(np.zeros((3, 4)), 3), IndexError, "index_in_dim"),
    (lambda: lax.slice_in_dim(np.zeros((3, 4)), 0, 1, axis=2), ValueError, "slice_in_dim"),
    (lambda: lax.split(np.zeros((3, 4)), (1, 2), axis=1), ValueError, "split"),
]


@pytest.mark.parametrize("k", range(len(SLICE_ERRORS)))
def test_slicing_errors(k):
    fn, err, name = SLICE_ERRORS[k]
    with pytest.raises(err, match=name):
        fn()


# ----------------------------------------------------------------------------- gather

def gather_fn(shape_case, mode=None, fill_value=None):
    _, _, fields, sizes = shape_case
    return lambda L: lambda x, i: L.gather(x, i, L.GatherDimensionNumbers(*fields), sizes,
                                           mode=mode, fill_value=fill_value)


# name -> (operand shape, indices, dimension-number fields, slice_sizes)
GATHER_CASES = {
    "embedding": ((6, 4), ints([[0], [5], [2]], [[1], [1], [4]]), ((2,), (0,), (0,)), (1, 4)),
    "embedding_oob": ((6, 4), ints([[9], [-1], [2]]), ((1,), (0,), (0,)), (1, 4)),
    "take_axis1": ((4, 6), ints([5], [0], [3], [3], [1]), ((0,), (1,), (1,)), (4, 1)),
    "points": ((4, 5, 3), ints([[0, 2], [3, 0], [1, 1]], [[2, 2], [0, 0], [3, 1]]),
               ((2,), (0, 2), (0, 2)), (1, 5, 1)),
    "windows": ((6, 7), ints([0, 0], [5, 6], [2, 3]), ((1, 2), (), (0, 1)), (2, 3)),
    "windows_middle_offset": ((6, 7), ints([[0, 1], [4, 4]], [[1, 5], [3, 0]]),
                              ((0, 2), (), (1, 0)), (3, 2)),
    "batching_dims": ((3, 5, 4), ints([[0], [4]], [[2], [2]], [[1], [3]]),
                      ((2,), (1,), (1,), (0,), (0,)), (1, 1, 4)),
    "batching_dims_second": ((5, 3, 4), ints([[0], [4], [2]], [[2], [1], [9]]),
                             ((2,), (0,), (0,), (1,), (1,)), (1, 1, 4)),
    "no_index_vector": ((3, 4), np.zeros((2, 0), I32), ((1, 2), (), ()), (3, 4)),
    "single_index_vector": ((5,), ints([3]), ((), (0,), (0,)), (1,)),
}
OOB_GATHERS = ["embedding_oob", "windows", "batching_dims_second"]


@pytest.mark.parametrize("k,name", list(enumerate(GATHER_CASES)))
def test_gather_transforms(k, name):
    case = GATHER_CASES[name]
    check(gather_fn(case), [rand(RNG, case[0]), case[1]], k)


@pytest.mark.parametrize("mode", ["clip", "fill"])
@pytest.mark.parametrize("k,name", list(enumerate(OOB_GATHERS)))
def test_gather_modes(k, name, mode):
    case = GATHER_CASES[name]
    check(gather_fn(case, mode), [rand(RNG, case[0]), case[1]], k,
          argnums=None if k == 0 else (), axes=(AXES[k],))


def test_gather_scalar_operand():  # (jax cannot differentiate this one)
    fn = lambda L: lambda x, i: L.gather(x, i, L.GatherDimensionNumbers((), (), ()), ())
    check(fn, [np.float32(2.5), np.zeros((4, 0), I32)], 0, argnums=(), axes=(0,))


@pytest.mark.parametrize("name", ["embedding", "windows_middle_offset", "batching_dims"])
def test_gather_vmap_one_side_batched(name):
    case = GATHER_CASES[name]
    check_one_batched(gather_fn(case, "fill"), [rand(RNG, case[0]), case[1]])


@pytest.mark.parametrize("k,dtype", list(enumerate(
    [np.int32, np.uint8, np.int8, np.bool_, ml_dtypes.bfloat16, np.float16, np.uint32])))
def test_gather_dtypes_and_fill_values(k, dtype):
    idx = np.asarray([[1], [7], [5], [250]], (np.int32, np.uint8)[k % 2])
    case = ((6, 4), idx, ((1,), (0,), (0,)), (1, 4))
    fns = [gather_fn(case, "fill"), gather_fn(case, "fill", 1), gather_fn(case, "clip")]
    both = lambda L: lambda x, i: tuple(f(L)(x, i) for f in fns)
    compare(both(lax), jax.jit(both(jax.lax)), rand(RNG, (6, 4), dtype), idx)


def test_gather_weak_type_follows_operand():
    case = ((4,), ints([1], [2]), ((), (0,), (0,)), (1,))
    x = lax.broadcast_in_dim(fungrad.numpy.asarray(1.5), (4,), ())
    jx = jax.lax.broadcast_in_dim(jax.numpy.asarray(1.5), (4,), ())
    assert_same(gather_fn(case)(lax)(x, case[1]), gather_fn(case)(jax.lax)(jx, case[1]))


# ----------------------------------------------------------------------------- scatter

# name -> (operand shape, indices, updates shape, dimension-number fields)
SCATTER_CASES = {
    "rows": ((6, 4), ints([1], [4], [2]), (3, 4), ((1,), (0,), (0,))),
    "rows_duplicates_oob": ((6, 4), ints([1], [4], [1], [7], [-1]), (5, 4), ((1,), (0,), (0,))),
    "points": ((4, 5), ints([0, 1], [3, 4], [2, 2], [0, 1]), (4,), ((), (0, 1), (0, 1))),
    "windows": ((6, 7), ints([0, 0], [3, 4], [5, 5]), (3, 2, 3), ((1, 2), (), (0, 1))),
    "columns_window_first": ((4, 6), ints([5], [0], [2]), (4, 3), ((0,), (1,), (1,))),
    "batching_dims": ((3, 5, 4), ints([[0], [4]], [[2], [2]], [[1], [3]]), (3, 2, 4),
                      ((2,), (1,), (1,), (0,), (0,))),
}
SCATTERS = ("scatter", "scatter_add", "scatter_sub", "scatter_mul", "scatter_min", "scatter_max")


def scatter_fn(fields, ops=SCATTERS, mode=None, unique=False):
    """All of ``ops`` on the same arguments, as one function returning a tuple."""
    return lambda L: lambda x, i, u: tuple(
        getattr(L, op)(x, i, u, L.ScatterDimensionNumbers(*fields), mode=mode,
                       unique_indices=unique) for op in ops)


def scatter_args(name, dtype=np.float32):
    shape, idx, u_shape, _ = SCATTER_CASES[name]
    return [rand(RNG, shape, dtype), idx, rand(RNG, u_shape, dtype)]


@pytest.mark.parametrize("k,name", list(enumerate(SCATTER_CASES)))
def test_scatter_values_and_vmap(k, name):
    check(scatter_fn(SCATTER_CASES[name][3]), scatter_args(name), k, argnums=())


@pytest.mark.parametrize("mode", ["clip", "promise_in_bounds"])
@pytest.mark.parametrize("k,name", list(enumerate(["rows_duplicates_oob", "windows"])))
def test_scatter_modes(k, name, mode):
    check(scatter_fn(SCATTER_CASES[name][3], mode=mode), scatter_args(name), k, argnums=())


@pytest.mark.parametrize("k,name", list(enumerate(["rows_duplicates_oob", "points",
                                                    "batching_dims"])))
def test_scatter_derivatives(k, name):
    fields = SCATTER_CASES[name][3]
    args = scatter_args(name)
    check(scatter_fn(fields,
                     ("scatter", "scatter_add", "scatter_sub", "scatter_min", "scatter_max")),
          args, k,
          axes=())
    # scatter_mul differentiates in updates only with unique indices, as in JAX
    check(scatter_fn(fields, ("scatter_mul",)), args, k, argnums=(0,), axes=())


def test_scatter_unique_indices_derivatives():
    """unique_indices=True switches scatter and scatter_mul to simpler rules (as JAX)."""
    check(scatter_fn(SCATTER_CASES["rows"][3], ("scatter", "scatter_mul"), "clip", True),
          scatter_args("rows"), 0, axes=())


def test_scatter_vmap_one_side_batched():
    check_one_batched(scatter_fn(SCATTER_CASES["rows"][3]), scatter_args("rows"), axes=(-1,))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, ml_dtypes.bfloat16, np.float16])
def test_scatter_dtypes(dtype):
    ops = SCATTERS if dtype != np.bool_ else ("scatter", "scatter_min", "scatter_max")
    fn = scatter_fn(SCATTER_CASES["rows_duplicates_oob"][3], ops)
    compare(fn(lax), jax.jit(fn(jax.lax)), *scatter_args("rows_duplicates_oob", dtype))


@pytest.mark.parametrize("op", ["scatter_add", "scatter_sub", "scatter_mul"])
def test_scatter_rejects_bool_as_jax(op):
    with pytest.raises(TypeError, match=op.replace("_", "-")):
        scatter_fn(SCATTER_CASES["rows"][3], (op,))(lax)(*scatter_args("rows", np.bool_))


def test_scatter_add_accumulates_many_duplicates():
    x = np.zeros((5, 3), I32)  # integers: exact whatever the summation order
    idx = RNG.integers(0, 5, size=(1000, 1)).astype(I32)
    fn = scatter_fn(((1,), (0,), (0,)), ("scatter_add",))
    compare(fn(lax), jax.jit(fn(jax.lax)), x, idx, rand(RNG, (1000, 3), I32))


def test_scatter_into_scalar_operand():
    """XLA cannot compile scatters into 0-d operands; check against NumPy instead."""
    x, idx, u = np.float32(1.5), np.zeros((3, 0), I32), rand(RNG, (3,))
    fields = lax.ScatterDimensionNumbers((), (), ())
    np.testing.assert_allclose(lax.scatter_add(x, idx, u, fields), x + u.sum(), rtol=1e-6)
    np.testing.assert_allclose(lax.scatter_max(x, idx, u, fields), max(x, u.max()))
    assert float(lax.scatter(x, idx, u, fields)) in u
    g = fungrad.grad(lambda x, u: lax.scatter_mul(x, idx, u, fields), argnums=0)(to_fg(x), u)
    np.testing.assert_allclose(g, u.prod(), rtol=1e-6)


def test_gather_grad_is_scatter_add_with_duplicates():
    case = GATHER_CASES["embedding"]
    table = rand(RNG, case[0])
    fg = lambda t: lax.reduce_sum(lax.integer_pow(gather_fn(case)(lax)(t, case[1]), 2), (0, 1, 2))
    jx = lambda t: (gather_fn(case)(jax.lax)(t, case[1]) ** 2).sum()
    assert_same(fungrad.grad(fg)(to_fg(table)), jax.jit(jax.grad(jx))(to_jax(table)), GRAD_TOL)
    assert "scatter-add" in str(fungrad.make_jaxpr(fungrad.grad(fg))(to_fg(table)))


# name -> (function of float arguments, args): finite-difference checks of orders 1 and 2
FD_CASES = {
    "dynamic_slice": (lambda x: lax.dynamic_slice(x, (ints(3), -2), (2, 2)), [rand(RNG, (4, 5))]),
    "dynamic_update_slice": (lambda x, u: lax.dynamic_update_slice(x, u * u, (ints(-1), 1)),
                             [rand(RNG, (4, 5)), rand(RNG, (2, 3))]),
    "gather_fill": (lambda x: gather_fn(GATHER_CASES["embedding_oob"], "fill", 0.0)(lax)(
        x, GATHER_CASES["embedding_oob"][1]) ** 2, [rand(RNG, (6, 4))]),
    "scatter_add": (lambda x, u: scatter_fn(SCATTER_CASES["rows_duplicates_oob"][3],
                                            ("scatter_add",))(lax)(
                        x, ints([1], [4], [1], [7], [-1]), u * x[:5]),
                    [rand(RNG, (6, 4)), rand(RNG, (5, 4))]),
    "scatter_set_max": (lambda x, u: scatter_fn(SCATTER_CASES["points"][3],
                                                ("scatter", "scatter_max"))(lax)(
                            x, SCATTER_CASES["points"][1], u),
                        [rand(RNG, (4, 5)), rand(RNG, (4,))]),
}


@pytest.mark.parametrize("name", list(FD_CASES))
def test_finite_differences(name):
    from fungrad.test_util import check_grads
    fn, args = FD_CASES[name]
    check_grads(fn, to_fg(args), order=2)


GATHER_SCATTER_ERRORS = [
    (lambda: lax.gather(np.zeros((3, 4)), np.zeros((2, 1), np.float32),
                        lax.GatherDimensionNumbers((1,), (0,), (0,)), (1, 4)), "gather"),
    (lambda: lax.gather(np.zeros((3, 4)), ints([0]), lax.GatherDimensionNumbers((1,), (0,), (0,)),
                        (2, 4)), "gather"),
    (lambda: lax.gather(np.zeros((3, 4)), ints([0]), lax.GatherDimensionNumbers((0,), (0,), (0,)),
                        (1, 5)), "gather"),
    (lambda: lax.gather(np.zeros((3, 4)), ints([0, 1]),
                        lax.GatherDimensionNumbers((1,), (0,), (0,)), (1, 4)), "gather"),
    (lambda: lax.gather(np.zeros((3, 4)), ints([0]), lax.GatherDimensionNumbers((1,), (0,), (0,)),
                        (1,)), "gather"),
    (lambda: lax.gather(np.zeros((3, 4)), ints([0]), lax.GatherDimensionNumbers((1,), (0,), (0,)),
                        (1, 4), mode="nearest"), "mode"),
    (lambda: lax.scatter_add(np.zeros((3, 4), np.float32), ints([0]), np.zeros((4,), np.int32),
                             lax.ScatterDimensionNumbers((0,), (0,), (0,))), "scatter-add"),
    (lambda: lax.scatter(np.zeros((3, 4), np.float32), ints([[0]]), np.zeros((2, 4), np.float32),
                         lax.ScatterDimensionNumbers((1,), (0,), (0,))), "scatter"),
    (lambda: lax.scatter_max(np.zeros((3, 4), np.float32), ints([[0]]),
                             np.zeros((1, 5), np.float32),
                             lax.ScatterDimensionNumbers((1,), (0,), (0,))), "scatter-max"),
    (lambda: lax.scatter_min(np.zeros((3, 4), np.float32), ints([[0]]),
                             np.zeros((1, 4), np.float32),
                             lax.ScatterDimensionNumbers((1,), (0,), (0,), (0,), (0,))),
     "scatter-min"),
]


@pytest.mark.parametrize("k", range(len(GATHER_SCATTER_ERRORS)))
def test_gather_scatter_errors(k):
    fn, name = GATHER_SCATTER_ERRORS[k]
    with pytest.raises((TypeError, ValueError), match=name):
        fn()


def test_scatter_mul_updates_derivative_needs_unique_indices():
    x, idx, u = scatter_args("rows")
    f = lambda u: lax.reduce_sum(scatter_fn(SCATTER_CASES["rows"][3], ("scatter_mul",))(lax)(
        x, idx, u)[0], (0, 1))
    with pytest.raises(NotImplementedError, match="scatter_mul"):
        fungrad.grad(f)(to_fg(u))


def test_scatter_apply_applies_func_once_per_hit():
    """``scatter_apply`` against jax: an element indexed k times gets ``func`` k times."""
    x = rand(np.random.default_rng(3), (6,), np.float32)
    idx = np.array([[1], [4], [1]], np.int32)
    dnums = dict(update_window_dims=(), inserted_window_dims=(0,),
                 scatter_dims_to_operand_dims=(0,))
    compare(lambda a, i: lax.scatter_apply(a, i, lambda v: v * 2.0 + 1.0,
                                           lax.ScatterDimensionNumbers(**dnums),
                                           update_shape=(3,)),
            lambda a, i: jax.lax.scatter_apply(a, i, lambda v: v * 2.0 + 1.0,
                                               jax.lax.ScatterDimensionNumbers(**dnums),
                                               update_shape=(3,)),
            x, idx)
