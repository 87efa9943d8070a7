"""fungrad.numpy creation, shape manipulation, joining and splitting against jax.numpy:
values and types, JVP/VJP/vmap of the differentiable ones, lowering to cheap primitives,
and errors naming the function and the shapes."""
import functools

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.test_util import check_grads
import harness
from harness import assert_same, compare_np, compare_types, rand

# the jax references run under jax.jit: one compilation per case instead of one per op
compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)

RNG = np.random.default_rng(2)
F32, BF16, I32, I8, B = np.float32, ml_dtypes.bfloat16, np.int32, np.int8, np.bool_


# ----------------------------------------------------------------------------- creation

CREATION = {
    "zeros": lambda m: m.zeros((2, 3)), "zeros_int": lambda m: m.zeros(3, m.int8),
    "ones": lambda m: m.ones((2,), dtype=int), "empty": lambda m: m.empty((1, 2)),
    "full": lambda m: m.full((2, 2), 1.5), "full_typed": lambda m: m.full(3, 2, m.bfloat16),
    "full_array": lambda m: m.full((2, 3), m.arange(3)),
    "arange": lambda m: m.arange(5), "arange_float": lambda m: m.arange(0.5, 3.0, 0.5),
    "arange_dtype": lambda m: m.arange(1, 10, 3, dtype=m.float32),
    "arange_neg": lambda m: m.arange(5, 0, -2),
    "linspace": lambda m: m.linspace(0, 1, 5), "linspace_noend": lambda m: m.linspace(
        -1.0, 1.0, 4, endpoint=False), "linspace_int": lambda m: m.linspace(0, 10, 4, dtype=int),
    "linspace_arrays": lambda m: m.linspace(m.zeros(2), m.ones(2) * 3, 3, axis=1),
    "linspace_retstep": lambda m: m.linspace(0, 2, 5, retstep=True),
    "linspace_one": lambda m: m.linspace(2.0, 3.0, 1), "linspace_zero": lambda m: m.linspace(
        2.0, 3.0, 0), "logspace": lambda m: m.logspace(0, 2, 3),
    "logspace_base": lambda m: m.logspace(0, 3, 4, base=2.0),
    "geomspace": lambda m: m.geomspace(1.0, 100.0, 3),
    "eye": lambda m: m.eye(3), "eye_rect": lambda m: m.eye(2, 4, k=1, dtype=m.int32),
    "eye_neg_k": lambda m: m.eye(4, 3, k=-2), "identity": lambda m: m.identity(2, bool),
    "tri": lambda m: m.tri(3, 4, -1), "indices": lambda m: m.indices((2, 3)),
    "indices_sparse": lambda m: m.indices((2, 3), sparse=True),
    "tril_indices": lambda m: m.tril_indices(3), "triu_indices": lambda m: m.triu_indices(3, 1, 4),
    "diag_indices": lambda m: m.diag_indices(3),
    "array_list": lambda m: m.array([[1, 2], [3, 4]]), "array_mixed": lambda m: m.array(
        [1, 2.5]), "array_scalar": lambda m: m.array(1.5), "asarray_int": lambda m: m.asarray(3),
    "array_bool": lambda m: m.array(True), "array_typed": lambda m: m.array([1, 2], m.bfloat16),
    "array_ndmin": lambda m: m.array(2.0, ndmin=2), "array_empty": lambda m: m.array([]),
    "array_of_arrays": lambda m: m.array([m.arange(2), m.ones(2, int)]),
    "asarray_float64": lambda m: m.asarray(np.ones(2)), "scalar_ctor": lambda m: m.float32(3),
    "scalar_ctor_bf16": lambda m: m.bfloat16(2.5), "int_ctor": lambda m: m.int8(3),
}


@pytest.mark.parametrize("name", list(CREATION))
def test_creation(name):
    assert_same(CREATION[name](jnp), jax.jit(lambda: CREATION[name](jnp_ref))())


LIKE = {"zeros_like": {}, "ones_like": {"dtype": I8}, "empty_like": {"shape": (2, 2)},
        "full_like": {"fill_value": 2.5}}


@pytest.mark.parametrize("name", list(LIKE))
def test_like(name):
    for x in (rand(RNG, (2, 3), F32), rand(RNG, (3,), I32), np.float32(1.0)):
        compare(lambda a: getattr(jnp, name)(a, **LIKE[name]),
                lambda a: getattr(jnp_ref, name)(a, **LIKE[name]), x)
    compare_types(lambda: getattr(jnp, name)(2.0, **LIKE[name]),
                  lambda: getattr(jnp_ref, name)(2.0, **LIKE[name]))


def test_matrix_builders():
    v = rand(RNG, (3,), F32)
    m = rand(RNG, (3, 4), F32)
    for k in (0, 1, -2):
        compare(lambda a: jnp.diag(a, k), lambda a: jnp_ref.diag(a, k), v)
        compare(lambda a: jnp.diag(a, k), lambda a: jnp_ref.diag(a, k), m)
        compare(lambda a: jnp.tril(a, k), lambda a: jnp_ref.tril(a, k), m)
        compare(lambda a: jnp.triu(a, k), lambda a: jnp_ref.triu(a, k), m)
    compare(jnp.diagflat, jnp_ref.diagflat, rand(RNG, (2, 2), F32))
    compare(lambda a: jnp.tril(a), lambda a: jnp_ref.tril(a), rand(RNG, (2, 3, 3), I32))
    x, y = rand(RNG, (3,), F32), rand(RNG, (2,), F32)
    for indexing in ("xy", "ij"):
        for sparse in (False, True):
            compare(lambda a, b: jnp.meshgrid(a, b, indexing=indexing, sparse=sparse),
                    lambda a, b: jnp_ref.meshgrid(a, b, indexing=indexing, sparse=sparse), x, y)
    compare(lambda a, b: jnp.meshgrid(a, b, a), lambda a, b: jnp_ref.meshgrid(a, b, a), x, y)


# ----------------------------------------------------------------------------- shape ops

X = rand(RNG, (2, 3, 4), F32)
SHAPE_CASES = {
    "reshape": lambda m, a: m.reshape(a, (4, -1)), "reshape_F": lambda m, a: m.reshape(
        a, (6, 4), order="F"), "reshape_method": lambda m, a: a.reshape(3, 8),
    "reshape_method_tuple": lambda m, a: a.reshape((-1,)), "ravel": lambda m, a: m.ravel(a),
    "ravel_F": lambda m, a: m.ravel(a, order="F"), "flatten": lambda m, a: a.flatten(),
    "transpose": lambda m, a: m.transpose(a), "transpose_axes": lambda m, a: m.transpose(
        a, (1, 0, 2)), "transpose_method": lambda m, a: a.transpose(2, 0, 1),
    "T": lambda m, a: a.T, "mT": lambda m, a: a.mT, "permute_dims": lambda m, a: m.permute_dims(
        a, (2, 1, 0)), "swapaxes": lambda m, a: m.swapaxes(a, 0, -1),
    "moveaxis": lambda m, a: m.moveaxis(a, 0, -1), "moveaxis_multi": lambda m, a: m.moveaxis(
        a, (0, 1), (2, 0)), "rollaxis": lambda m, a: m.rollaxis(a, 2, 0),
    "matrix_transpose": lambda m, a: m.matrix_transpose(a),
    "expand_dims": lambda m, a: m.expand_dims(a, (0, -1)),
    "squeeze": lambda m, a: m.squeeze(m.expand_dims(a, (0, 2))),
    "squeeze_axis": lambda m, a: m.squeeze(m.expand_dims(a, 1), axis=1),
    "broadcast_to": lambda m, a: m.broadcast_to(a[:, :1], (5, 2, 3, 4)),
    "broadcast_arrays": lambda m, a: m.broadcast_arrays(a, a[0, :1]),
    "atleast_1d": lambda m, a: m.atleast_1d(a[0, 0, 0]), "atleast_2d": lambda m, a: m.atleast_2d(
        a[0, 0], a), "atleast_3d": lambda m, a: m.atleast_3d(a[0], a[0, 0]),
    "flip": lambda m, a: m.flip(a), "flip_axis": lambda m, a: m.flip(a, (0, 2)),
    "fliplr": lambda m, a: m.fliplr(a), "flipud": lambda m, a: m.flipud(a),
    "rot90": lambda m, a: m.rot90(a), "rot90_k": lambda m, a: m.rot90(a, 3, (1, 2)),
    "rot90_2": lambda m, a: m.rot90(a, -2), "roll": lambda m, a: m.roll(a, 2),
    "roll_axis": lambda m, a: m.roll(a, -1, axis=1), "roll_multi": lambda m, a: m.roll(
        a, (1, 5), (0, 2)),
    "roll_array_shifts": lambda m, a: m.roll(a, np.array([1, -2]), (0, 2)),
    "roll_shifts_one_axis": lambda m, a: m.roll(a, np.array([1, 3]), 2),
    "roll_flat_shifts": lambda m, a: m.roll(a, [2, 5]), "tile": lambda m, a: m.tile(a, 2),
    "tile_tuple": lambda m, a: m.tile(a[0], (2, 1, 2)),
    "repeat": lambda m, a: m.repeat(a, 2, axis=1),
    "repeat_flat": lambda m, a: m.repeat(a, 2), "repeat_array": lambda m, a: m.repeat(
        a, np.array([1, 0, 2]), axis=1), "repeat_total": lambda m, a: m.repeat(
        a, 2, axis=0, total_repeat_length=3), "diagonal": lambda m, a: m.diagonal(a),
    "diagonal_offset": lambda m, a: m.diagonal(a, 1, 1, 2), "diagonal_neg": lambda m, a: m.diagonal(
        a, -1, 2, 0), "diagonal_method": lambda m, a: a.diagonal(offset=2, axis1=1, axis2=2),
    "trace": lambda m, a: m.trace(a), "trace_offset": lambda m, a: m.trace(a, -1, 1, 2),
    "pad": lambda m, a: m.pad(a, 1), "pad_pairs": lambda m, a: m.pad(a, ((0, 1), (2, 0), (1, 1)),
                                                                      constant_values=-1.0),
    "pad_edge": lambda m, a: m.pad(a, ((1, 2), (0, 0), (3, 1)), mode="edge"),
    "pad_reflect": lambda m, a: m.pad(a, ((1, 1), (2, 2), (3, 3)), mode="reflect"),
    "pad_symmetric": lambda m, a: m.pad(a, 2, mode="symmetric"),
    "pad_wrap": lambda m, a: m.pad(a, ((0, 3), (1, 0), (0, 5)), mode="wrap"),
    "concatenate": lambda m, a: m.concatenate([a, a * 2], axis=1),
    "concatenate_none": lambda m, a: m.concatenate([a, a[0]], axis=None),
    "concatenate_neg": lambda m, a: m.concatenate((a, a[:, :, :1]), -1),
    "stack": lambda m, a: m.stack([a, a]), "stack_axis": lambda m, a: m.stack([a, a, a], -1),
    "vstack": lambda m, a: m.vstack([a[0], a[1, :2]]), "hstack": lambda m, a: m.hstack(
        [a[0], a[1]]), "dstack": lambda m, a: m.dstack([a[0], a[1]]),
    "column_stack": lambda m, a: m.column_stack([a[0, 0], a[1, 1]]),
    "split": lambda m, a: m.split(a, 2, axis=2), "split_indices": lambda m, a: m.split(
        a, [1, 2], axis=1), "array_split": lambda m, a: m.array_split(a, 3, axis=2),
    "hsplit": lambda m, a: m.hsplit(a, 3), "vsplit": lambda m, a: m.vsplit(a, [1]),
    "dsplit": lambda m, a: m.dsplit(a, 2), "unstack": lambda m, a: m.unstack(a, axis=1),
    "append": lambda m, a: m.append(a, a[:1], axis=0), "append_flat": lambda m, a: m.append(a, 1.0),
    "delete": lambda m, a: m.delete(a, np.array([0, 2]), axis=2),
    "delete_slice": lambda m, a: m.delete(
        a, slice(0, 3, 2)), "diff": lambda m, a: m.diff(a), "diff_n": lambda m, a: m.diff(
        a, 2, axis=1, prepend=0.0), "ediff1d": lambda m, a: m.ediff1d(a, to_begin=np.ones(1)),
}
JAX_VALUES = {"reshape_F", "ravel_F", "rot90_k", "roll_multi", "repeat_total", "diagonal_neg",
              "pad_reflect", "pad_symmetric", "pad_wrap", "concatenate_none", "split_indices",
              "delete_slice", "diff_n", "broadcast_arrays", "atleast_3d"}
DIFFERENTIABLE = ["reshape_F", "moveaxis_multi", "rot90_k", "roll_multi", "repeat_array",
                  "diagonal_offset", "pad_reflect", "pad_wrap", "stack_axis", "split_indices"]
# the rest: derivatives against finite differences and vmap against a Python loop
FD_CASES = ["reshape", "transpose_axes", "expand_dims", "broadcast_to", "flip_axis",
            "tile_tuple", "trace_offset", "pad_pairs", "concatenate", "hstack", "diff_n",
            "delete", "pad_edge", "atleast_3d", "unstack"]


@pytest.mark.parametrize("name", list(SHAPE_CASES))
def test_shape_values(name):
    """Values against jax on a subset, against NumPy (same semantics) on the rest; types
    against jax on float32 and int8."""
    fn = SHAPE_CASES[name]
    if name in JAX_VALUES:
        compare(lambda a: fn(jnp, a), lambda a: fn(jnp_ref, a), X)
    else:
        compare_np(lambda a: fn(jnp, a), lambda a: fn(np, a), lambda a: fn(jnp_ref, a), X)
    compare_types(lambda a: fn(jnp, a), lambda a: fn(jnp_ref, a), X.astype(I8))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_shape_transforms(name):
    fn = SHAPE_CASES[name]
    compare_transforms(lambda a: fn(jnp, a), lambda a: fn(jnp_ref, a), [X], RNG)


def test_shape_derivatives_and_batching():
    xs = rand(RNG, (3,) + X.shape, np.float64)
    for name in FD_CASES:
        fn = lambda a: SHAPE_CASES[name](jnp, a)  # noqa: E731
        check_grads(fn, (xs[0],), order=1)
        batched = fungrad.vmap(fn)(jnp.asarray(xs))
        looped = [fn(jnp.asarray(x)) for x in xs]
        for b, parts in zip(fungrad.tree.leaves(batched),
                            zip(*[fungrad.tree.leaves(p) for p in looped])):
            np.testing.assert_allclose(np.asarray(b), np.stack([np.asarray(p) for p in parts]),
                                       rtol=1e-12)


def test_mixed_dtype_joining():
    a, b = rand(RNG, (2, 3), I32), rand(RNG, (2, 3), BF16)
    for name in ("concatenate", "stack", "vstack", "hstack"):
        compare(lambda x, y: getattr(jnp, name)([x, y]), lambda x, y: getattr(jnp_ref, name)(
            [x, y]), a, b)
    compare(lambda x: jnp.concatenate([x, x], dtype=jnp.float32),
            lambda x: jnp_ref.concatenate([x, x], dtype=jnp_ref.float32), a)
    compare(lambda x: jnp.stack(x), lambda x: jnp_ref.stack(x), a)


def test_static_selections_lower_to_slices():
    """Flips, rolls, pads, diagonals and splits of static sizes never use gather."""
    fns = [lambda a: jnp.roll(a, 1, 1), lambda a: jnp.pad(a, 2, mode="reflect"),
           lambda a: jnp.diagonal(a, 1, 1, 2), lambda a: jnp.split(a, 2, 2),
           lambda a: jnp.repeat(a, 3, 1), lambda a: jnp.rot90(a)]
    for fn in fns:
        text = str(fungrad.make_jaxpr(fn)(X))
        assert "gather" not in text, text


def test_traced_roll_shift():
    """A traced shift lowers to dynamic_slice and matches jax."""
    compare(lambda a, s: jnp.roll(a, s, axis=2), lambda a, s: jnp_ref.roll(a, s, axis=2), X,
            np.int32(-3))
    fn = fungrad.vmap(lambda s: jnp.roll(jnp.asarray(X), s, axis=2))
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(np.array([1, 2], np.int32)))),
                               np.stack([np.roll(X, 1, 2), np.roll(X, 2, 2)]))
    compare(lambda a, s: jnp.roll(a, s, axis=(0, 2)),  # a traced array of shifts, one per axis
            lambda a, s: jnp_ref.roll(a, s, axis=(0, 2)), X, np.array([1, -3], np.int32))


@pytest.mark.parametrize("repeats,axis,total", [
    (np.array([1, 2, 0, 0]), None, 5),   # the axis's last element fills, not the last repeated
    (np.array([1, 2, 0, 0]), None, 2), (np.array([1, 2, 0, 0]), None, 0),
    (np.array([2]), None, None), (np.array([2]), None, 6), (np.array(2), None, 6),
    (np.array([0, 0, 0, 0]), None, 3), (np.array([2, 1, 0, 1]), None, 7)])
def test_repeat_counts_and_total_length(repeats, axis, total):
    """Static repeats eagerly, traced ones under jit (they need ``total_repeat_length``)."""
    x = np.arange(4, dtype=np.int32) * 10
    assert_same(jnp.repeat(x, repeats, axis, total_repeat_length=total),
                jnp_ref.repeat(x, repeats, axis, total_repeat_length=total))
    if total is not None:
        got = fungrad.jit(lambda r: jnp.repeat(x, r, axis, total_repeat_length=total))(repeats)
        want = jax.jit(lambda r: jnp_ref.repeat(x, r, axis, total_repeat_length=total))(repeats)
        assert_same(got, want)


def test_repeat_of_traced_counts_along_an_axis():
    m = np.arange(6, dtype=np.float32).reshape(2, 3)
    r = np.array([2, 0, 1], np.int32)
    got = fungrad.jit(lambda r: jnp.repeat(m, r, axis=1, total_repeat_length=4))(r)
    assert_same(got, jax.jit(lambda r: jnp_ref.repeat(m, r, axis=1, total_repeat_length=4))(r))
    with pytest.raises(TypeError, match="repeat: traced repeats need a static total_repeat"):
        fungrad.jit(lambda r: jnp.repeat(m, r, axis=1))(r)


def test_delete_refuses_indices_out_of_bounds():
    x = jnp.arange(5)
    for obj in (7, -7, np.array([1, 7]), np.array([1, -6])):
        with pytest.raises(IndexError, match="delete: index -?[67] is out of bounds for axis 0"):
            jnp.delete(x, obj)
    with pytest.raises(ValueError, match="delete: boolean obj must be one-dimensional with "
                                         "length 5"):
        jnp.delete(x, np.array([True, False]))
    for obj in (-5, 4, np.array([1, -4]), np.array([True, False, True, False, False])):
        assert_same(jnp.delete(x, obj), jnp_ref.delete(jnp_ref.arange(5), obj))


# ----------------------------------------------------------------------------- errors

def test_shape_errors():
    a, b = jnp.zeros((2, 3)), jnp.zeros((4, 2))
    with pytest.raises(TypeError, match=r"concatenate.*\(2, 3\), \(4, 2\)"):
        jnp.concatenate([a, b])
    with pytest.raises(ValueError, match="zero-dimensional arrays cannot be concatenated"):
        jnp.concatenate([jnp.zeros(()), jnp.zeros(())])
    with pytest.raises(ValueError, match=r"stack.*same shape.*\(2, 3\), \(4, 2\)"):
        jnp.stack([a, b])
    with pytest.raises(TypeError, match=r"reshape: cannot reshape array of size 6 into shape"):
        jnp.reshape(a, (4, 2))
    with pytest.raises(ValueError, match="at most one dimension may be -1"):
        jnp.reshape(a, (-1, -1))
    with pytest.raises(ValueError, match=r"broadcast_to.*\(2, 3\).*\(4, 3\)"):
        jnp.broadcast_to(a, (4, 3))
    with pytest.raises(ValueError, match="squeeze.*size not equal to one"):
        jnp.squeeze(a, 0)
    with pytest.raises(ValueError, match="array split does not result in an equal division"):
        jnp.split(a, 2, axis=1)
    with pytest.raises(ValueError, match="transpose: axes"):
        jnp.transpose(a, (0, 0))
    with pytest.raises(ValueError, match="swapaxes: axis 2 is out of bounds"):
        jnp.swapaxes(a, 0, 2)
    with pytest.raises(fungrad.errors.ConcretizationTypeError,
                       match="(?s)zeros: argument 'shape'.*static_argnums"):
        fungrad.make_jaxpr(lambda n: jnp.zeros(n))(3)


# every pad mode of jax.numpy.pad, with widths beyond the axis (reflections then mirror the
# array padded so far) and statistics over the nearest elements
PAD_MODES = {
    "reflect_odd": ("reflect", {"reflect_type": "odd"}),
    "symmetric_odd": ("symmetric", {"reflect_type": "odd"}),
    "linear_ramp": ("linear_ramp", {}),
    "linear_ramp_ends": ("linear_ramp", {"end_values": (5, -2)}),
    "maximum": ("maximum", {}), "minimum_near": ("minimum", {"stat_length": 2}),
    "mean": ("mean", {}), "mean_near": ("mean", {"stat_length": (1, 2)}),
    "median": ("median", {}), "median_near": ("median", {"stat_length": 3}),
}
PAD_WIDTHS = [1, (2, 3), (6, 8)]


@pytest.mark.parametrize("width", PAD_WIDTHS)
@pytest.mark.parametrize("name", sorted(PAD_MODES))
def test_pad_modes_match_jax(name, width):
    mode, kw = PAD_MODES[name]
    ours, theirs = (lambda m: lambda a: m.pad(a, width, mode, **kw))(jnp), \
        (lambda m: lambda a: m.pad(a, width, mode, **kw))(jnp_ref)
    for x in (rand(RNG, (3, 4), F32), np.array([1.0, 4.0, 2.0], F32), np.array([5.0], F32)):
        compare(ours, theirs, x)
    if mode != "linear_ramp":  # (XLA fuses the ramp's multiply-adds: its floors can differ)
        compare(ours, theirs, rand(RNG, (3, 5), I32, -9, 9))  # integer statistics: rounded


@pytest.mark.parametrize("name", ["reflect_odd", "linear_ramp_ends", "mean_near", "median"])
def test_pad_mode_transforms(name):
    mode, kw = PAD_MODES[name]
    compare_transforms(lambda a: jnp.pad(a, (2, 5), mode, **kw),
                       lambda a: jnp_ref.pad(a, (2, 5), mode, **kw), [rand(RNG, (3, 4), F32)], RNG)


def test_pad_with_a_function_and_errors():
    def fill(vector, width, axis, kwargs):
        return vector.at[:width[0]].set(kwargs["value"]).at[vector.shape[0] - width[1]:].set(-axis)
    compare(lambda a: jnp.pad(a, ((1, 2), (3, 0)), fill, value=7.0),
            lambda a: jnp_ref.pad(a, ((1, 2), (3, 0)), fill, value=7.0), rand(RNG, (3, 4), F32))
    x = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="pad: mode 'ramp' is not one of"):
        jnp.pad(x, 1, "ramp")
    with pytest.raises(ValueError, match="reflect_type must be 'even' or 'odd'"):
        jnp.pad(x, 1, "reflect", reflect_type="strange")
    with pytest.raises(ValueError, match="stat_length 0 gives no value"):
        jnp.pad(x, 1, "mean", stat_length=0)
    with pytest.raises(ValueError, match="cannot pad an empty axis 0 with mode 'maximum'"):
        jnp.pad(jnp.ones((0, 3)), 1, "maximum")
