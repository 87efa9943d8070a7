"""Array indexing (``x[idx]``), functional updates (``x.at[idx]``), ``take`` /
``take_along_axis`` and Array methods against jax: a table of index expressions (values,
gradients, vmap), the lowering to slice/dynamic_slice/gather, out-of-bounds semantics,
boolean masks (eager only) and errors."""
import functools

import jax
import jax.numpy as jnp_ref
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

RNG = np.random.default_rng(3)
F32, I32 = np.float32, np.int32
X = rand(RNG, (4, 5, 6), F32)
I2 = np.array([0, 2], I32)
INEG = np.array([[-1, 1], [3, -4]], I32)
MASK = np.array([True, False, True, True])

# index expressions: static ints, slices (steps, negative steps, out of range), None,
# Ellipsis, integer arrays (broadcasting, negative, contiguous and separated), lists,
# boolean masks and mixtures
INDEXES = {
    "int": 1, "neg_int": -1, "tuple_ints": (1, 2, 3), "neg_ints": (-1, -5, -6),
    "slice": slice(1, 3), "slice_step": slice(None, None, 2),
    "slice_neg_step": slice(None, None, -1),
    "slice_neg_step2": (slice(3, 0, -2), slice(-1, 1, -3)), "slice_oob": slice(-10, 10),
    "slice_empty": slice(3, 1), "mixed_basic": (1, slice(None), slice(4, 1, -1)),
    "none": None, "none_mid": (slice(None), None, 2), "ellipsis": Ellipsis,
    "ellipsis_int": (Ellipsis, 2), "ellipsis_mid": (1, Ellipsis, None, 3),
    "array": I2, "array_2d": INEG, "array_pair": (I2, I2), "array_broadcast": (
        I2[:, None], I2[None, :]), "array_after_slice": (slice(None), I2),
    "array_separated": (I2, slice(None), I2), "array_int_separated": (0, slice(1, 3), I2),
    "array_int_adjacent": (slice(None), 0, I2), "array_none": (None, I2, I2[::-1]),
    "array_slice_step": (slice(None, None, -2), I2, slice(1, None, 2)),
    "list": ([0, 3, 1],), "list_pair": ([0, 1], [2, 3]), "mask": MASK,
    "mask_and_slice": (MASK, slice(1, 3)), "mask_2d": (rand(RNG, (4, 5), np.bool_),),
    "array_ellipsis": (Ellipsis, I2), "scalar_array": (np.int32(2),),
    "zero_d_array": np.array(3, I32), "true": True, "bool_then_int": (True, 1),
    "empty_array": (np.zeros(0, I32),),
}


# checked against jax's values too (the rest: values against NumPy, types against jax)
JAX_VALUES = {"slice_oob", "slice_neg_step2", "array_2d", "array_separated", "array_none",
              "mask_and_slice", "bool_then_int"}


@pytest.mark.parametrize("name", list(INDEXES))
def test_getitem(name):
    idx = INDEXES[name]
    if name in JAX_VALUES:
        compare(lambda a: a[idx], lambda a: a[idx], X)
    else:
        compare_np(lambda a: a[idx], lambda a: a[idx], lambda a: a[idx], X)


@pytest.mark.parametrize("name", ["slice_neg_step2", "ellipsis_mid", "array_2d", "array_separated",
                                  "array_none", "array_slice_step", "mask_and_slice"])
def test_getitem_transforms(name):
    idx = INDEXES[name]
    compare_transforms(lambda a: a[idx], lambda a: a[idx], [X], RNG, vmap_axes=(0, 2))


def test_getitem_derivatives():
    """The other index kinds: derivatives against finite differences."""
    x = rand(RNG, X.shape, np.float64)
    for name in ("int", "mixed_basic", "none_mid", "array_broadcast", "array_int_adjacent",
                 "list_pair", "bool_then_int", "empty_array"):
        idx = INDEXES[name]
        check_grads(lambda a: a[idx], (x,), order=2)


def test_getitem_traced_indices():
    """Traced integer indices (dynamic_slice) and index arrays (gather) under vmap and grad,
    including out-of-bounds values, which are clamped as in JAX."""
    for i in (np.int32(2), np.int32(-1), np.int32(9), np.int32(-9)):
        compare(lambda a, k: a[k], lambda a, k: a[k], X, i)
        compare(lambda a, k: a[1, k, 2:4], lambda a, k: a[1, k, 2:4], X, i)
    idx = np.array([[0, 5], [-1, -7]], I32)
    compare(lambda a, k: a[:, k], lambda a, k: a[:, k], X, idx)
    compare_transforms(lambda a, k: a[k, 1:3], lambda a, k: a[k, 1:3], [X, np.int32(2)], RNG,
                       argnums=[0])
    compare_transforms(lambda a, k: a[:, k], lambda a, k: a[:, k], [X, I2], RNG, argnums=[0])
    ks = np.array([0, 3, -1, -5, 7], I32)
    out = fungrad.vmap(lambda k: jnp.asarray(X)[k, k])(jnp.asarray(ks))
    np.testing.assert_allclose(np.asarray(out), jax.vmap(lambda k: jnp_ref.asarray(X)[k, k])(ks))


def test_getitem_lowering():
    """Static indexing is a slice, traced scalars a dynamic_slice, arrays a gather."""
    def prims(fn, *args):
        return {e.primitive.name for e in fungrad.make_jaxpr(fn)(*args).eqns}
    assert "gather" not in prims(lambda a: a[1, ::-2, None, 2:5], X)
    assert "slice" in prims(lambda a: a[1:3, ::2], X)
    assert {"dynamic_slice"} <= prims(lambda a, i: a[i, 1:3], X, np.int32(1)) - {"gather"}
    assert "gather" not in prims(lambda a, i: a[i], X, np.int32(1))
    assert "gather" in prims(lambda a, i: a[i], X, I2)


def test_boolean_mask_needs_concrete_values():
    with pytest.raises(IndexError, match="boolean indices must be concrete.*jnp.where"):
        fungrad.make_jaxpr(lambda a, m: a[m])(X, MASK)
    with pytest.raises(IndexError, match="boolean indices must be concrete"):
        fungrad.vmap(lambda m: jnp.asarray(X)[m])(jnp.asarray(np.stack([MASK, MASK])))
    # under grad the mask is concrete (not differentiated), so it works as in JAX
    g = fungrad.grad(lambda a: a[MASK].sum())(jnp.asarray(X))
    assert_same(g, jax.grad(lambda a: a[MASK].sum())(jnp_ref.asarray(X)))


def test_getitem_errors():
    x = jnp.asarray(X)
    with pytest.raises(IndexError, match="Too many indices"):
        x[0, 0, 0, 0]
    with pytest.raises(TypeError, match="non-tuple sequence"):
        x[[0, 1]]
    with pytest.raises(TypeError, match="integer or boolean type.*float32"):
        x[jnp.asarray(1.0)]
    with pytest.raises(TypeError, match="string indexing"):
        x["a"]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match="shape mismatch"):
        x[I2, np.array([0, 1, 2], I32)]
    with pytest.raises(IndexError, match="Slice entries must be static"):
        fungrad.make_jaxpr(lambda i: x[i:i + 1])(np.int32(0))


# ----------------------------------------------------------------------------- x.at[idx]

UPDATE_INDEXES = ["int", "neg_ints", "slice_step", "slice_neg_step2", "mixed_basic", "none_mid",
                  "ellipsis_mid", "array", "array_2d", "array_broadcast", "array_separated",
                  "array_int_adjacent", "array_none", "array_slice_step", "mask", "list_pair"]
OPS = ["set", "add", "multiply", "min", "max", "subtract", "divide", "power", "get"]


def _values_for(idx):
    shape = np.zeros((4, 5, 6))[idx].shape
    return rand(RNG, shape, F32, 0.5, 1.5)


@pytest.mark.parametrize("name", UPDATE_INDEXES)
def test_at_updates(name):
    """Every update op on a few index kinds; three ops (rotating) on the others."""
    idx = INDEXES[name]
    v = _values_for(idx)
    k = UPDATE_INDEXES.index(name)
    ops = OPS if k < 3 else [OPS[k % 9], OPS[(k + 3) % 9], OPS[(k + 6) % 9]]
    for op in ops:
        if op == "get":
            compare_np(lambda a: a.at[idx].get(), lambda a: a[idx], lambda a: a.at[idx].get(), X)
            continue
        update = lambda a, b: getattr(a.at[idx], op)(b)  # noqa: E731 - same on both arrays
        if k < 2:
            compare(update, update, X + 1, v)
        else:
            compare_np(update, _numpy_update(idx, op), update, X + 1, v)
    compare_np(lambda a: a.at[idx].set(7.0), _numpy_update(idx, "set", 7.0),
               lambda a: a.at[idx].set(7.0), X)
    compare_np(lambda a: a.at[idx].add(1), _numpy_update(idx, "add", 1),
               lambda a: a.at[idx].add(1), X.astype(I32))


_NUMPY_UFUNC = {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum,
                "subtract": np.subtract, "divide": np.divide, "power": np.power}


def _numpy_update(idx, op, const=None):
    """NumPy's unbuffered in-place version of ``x.at[idx].op(v)`` (repeated indices
    accumulate, as in JAX)."""
    def ref(a, b=const):
        out = np.array(a, copy=True)
        if op == "set":
            out[idx] = b
        else:
            with np.errstate(all="ignore"):  # NumPy warns about the nans of negative ** 0.7
                _NUMPY_UFUNC[op].at(out, idx, np.broadcast_to(b, np.shape(out[idx])))
        return out
    return ref


@pytest.mark.parametrize("name", ["slice_neg_step2", "array_2d", "array_separated", "mask",
                                  "array_none"])
def test_at_transforms(name):
    idx = INDEXES[name]
    v = _values_for(idx)
    # scatter_mul differentiates w.r.t. its updates only with unique indices (as in JAX)
    op = {"slice_neg_step2": "multiply", "array_2d": "add", "array_separated": "set",
          "mask": "max", "array_none": "add"}[name]
    compare_transforms(lambda a, b: getattr(a.at[idx], op)(b),
                       lambda a, b: getattr(a.at[idx], op)(b), [X, v], RNG, vmap_axes=(0,))


def test_at_repeated_and_out_of_bounds():
    """Repeated indices accumulate; out-of-bounds updates are dropped (mode='drop'), or
    clamped with mode='clip'; .get(mode='fill') fills."""
    x = rand(RNG, (5,), F32)
    idx = np.array([0, 0, 2, 7, -1, -9], I32)
    v = rand(RNG, (6,), F32)
    for op in ("add", "multiply", "min", "max"):
        compare(lambda a, i, b: getattr(a.at[i], op)(b), lambda a, i, b: getattr(a.at[i], op)(b),
                x, idx, v)
    u = np.array([1, 2, 3, 7, -9], I32)
    compare(lambda a, i: a.at[i].set(9.0), lambda a, i: a.at[i].set(9.0), x, u)
    compare(lambda a, i: a.at[i].set(9.0, mode="clip"), lambda a, i: a.at[i].set(9.0, mode="clip"),
            x, u)
    compare(lambda a, i: a.at[i].get(mode="fill", fill_value=-1.0),
            lambda a, i: a.at[i].get(mode="fill", fill_value=-1.0), x, u)
    compare(lambda a, i: a.at[i].get(mode="fill"), lambda a, i: a.at[i].get(mode="fill"), x, u)
    compare(lambda a: a.at[7].set(1.0), lambda a: a.at[7].set(1.0), x)
    compare_types(lambda a: a.at[0].set(2), lambda a: a.at[0].set(2), x)
    # a float update of an integer array is cast to the array's dtype; JAX asks for the cast
    # to be explicit (and will reject the implicit one), so its reference casts first
    compare(lambda a: a.at[0].add(2.5), lambda a: a.at[0].add(jnp_ref.int32(2.5)),
            np.array([3, -4], I32))


def test_at_apply():
    x = rand(RNG, (5,), F32)
    compare(lambda a: a.at[np.array([0, 2, 2])].apply(jnp.sin),
            lambda a: a.at[np.array([0, 2, 2])].apply(jnp_ref.sin), x)


def test_at_shape_error():
    with pytest.raises(ValueError, match=r"Incompatible shapes for .at\[\].*\(3,\).*\(2,\)"):
        jnp.zeros(5).at[np.array([0, 1])].set(jnp.ones(3))


# ----------------------------------------------------------------------------- take

def test_take():
    x = rand(RNG, (3, 4), F32)
    idx = np.array([[0, 3], [-1, 5]], I32)
    for axis, mode in ((None, None), (0, "clip"), (1, "wrap"), (-1, "fill")):
        compare(lambda a, i: jnp.take(a, i, axis=axis, mode=mode),
                lambda a, i: jnp_ref.take(a, i, axis=axis, mode=mode), x, idx)
    compare(lambda a, i: jnp.take(a, i, 1, fill_value=0.0),
            lambda a, i: jnp_ref.take(a, i, 1, fill_value=0.0), x, idx)
    compare_transforms(lambda a, i: jnp.take(a, i, axis=1), lambda a, i: jnp_ref.take(a, i, axis=1),
                       [x, np.array([2, 0, 2], I32)], RNG, argnums=[0])
    compare(lambda a, i: a.take(i), lambda a, i: a.take(i), x, idx)



def test_unsigned_indices_are_never_negative():
    """An unsigned index is not wrapped as a negative one: ``2**32 - 1`` is out of bounds
    (filled, dropped, clipped as JAX does), not the last element."""
    x = np.arange(10, dtype=F32)
    idx = np.array([2**32 - 1, 2**31, 3, 9, 10, 0], np.uint32)
    compare(lambda a, i: a[i], lambda a, i: a[i], x, idx)
    for mode in ("fill", "clip"):
        compare(lambda a, i: a.at[i].get(mode=mode, fill_value=-1),
                lambda a, i: a.at[i].get(mode=mode, fill_value=-1), x, idx)
    for mode in (None, "fill", "clip", "wrap"):
        compare(lambda a, i: jnp.take(a, i, mode=mode),
                lambda a, i: jnp_ref.take(a, i, mode=mode), x, idx)
    for mode in ("drop", "clip"):
        compare(lambda a, i: a.at[i].add(100.0, mode=mode),
                lambda a, i: a.at[i].add(100.0, mode=mode), x, idx)
    compare(lambda i: jnp.bincount(i, length=12), lambda i: jnp_ref.bincount(i, length=12), idx)
    compare(lambda a, i: jnp.take_along_axis(a, i, axis=0),
            lambda a, i: jnp_ref.take_along_axis(a, i, axis=0), x, idx)

def test_take_along_axis():
    x = rand(RNG, (3, 4, 5), F32)
    idx = RNG.integers(-5, 5, size=(3, 2, 5)).astype(I32)
    compare(lambda a, i: jnp.take_along_axis(a, i, axis=1),
            lambda a, i: jnp_ref.take_along_axis(a, i, axis=1), x, idx)
    idx_b = RNG.integers(0, 4, size=(1, 6, 5)).astype(I32)
    compare(lambda a, i: jnp.take_along_axis(a, i, axis=1),
            lambda a, i: jnp_ref.take_along_axis(a, i, axis=1), x, idx_b)
    compare(lambda a, i: jnp.take_along_axis(a, i, axis=None),
            lambda a, i: jnp_ref.take_along_axis(a, i, axis=None), x, np.array([0, 59, 3], I32))
    order = np.argsort(x, axis=-1).astype(I32)
    compare_transforms(lambda a, i: jnp.take_along_axis(a, i, -1),
                       lambda a, i: jnp_ref.take_along_axis(a, i, -1), [x, order], RNG,
                       argnums=[0])
    compare(lambda a, i, v: jnp.put_along_axis(a, i, v, 1, inplace=False),
            lambda a, i, v: jnp_ref.put_along_axis(a, i, v, 1, inplace=False), x,
            idx_b[:, :2] % 4, rand(RNG, (1, 2, 5), F32))
    compare(lambda a, i, v: jnp.put(a, i, v, inplace=False),
            lambda a, i, v: jnp_ref.put(a, i, v, inplace=False), x, np.array([0, 7, 59], I32),
            np.array([1.0, 2.0, 3.0], F32))


# ----------------------------------------------------------------------------- methods

METHODS = {
    "sum": lambda a: a.sum(axis=1), "mean": lambda a: a.mean(), "max": lambda a: a.max(0),
    "min": lambda a: a.min(keepdims=True), "prod": lambda a: a.prod(-1), "std": lambda a: a.std(),
    "var": lambda a: a.var(axis=0, ddof=1), "argmax": lambda a: a.argmax(axis=1),
    "argmin": lambda a: a.argmin(), "all": lambda a: (a > 0).all(axis=0),
    "any": lambda a: (a > 0).any(), "argsort": lambda a: a.argsort(axis=0),
    "sort": lambda a: a.sort(axis=1), "astype": lambda a: a.astype(jnp_ref.int32 if isinstance(
        a, jax.Array) else jnp.int32), "clip": lambda a: a.clip(-0.5, 0.5),
    "conj": lambda a: a.conj(), "cumsum": lambda a: a.cumsum(axis=1),
    "cumprod": lambda a: a.cumprod(), "diagonal": lambda a: a.diagonal(),
    "dot": lambda a: a.dot(a.T), "nonzero": lambda a: (a > 0).nonzero(),
    "ravel": lambda a: a.ravel(), "repeat": lambda a: a.repeat(2, axis=0),
    "round": lambda a: a.round(1), "squeeze": lambda a: a[None].squeeze(0),
    "swapaxes": lambda a: a.swapaxes(0, 1), "take": lambda a: a.take(np.array([1, 2])),
    "trace": lambda a: a.trace(), "view": lambda a: a.view(jnp_ref.int32 if isinstance(
        a, jax.Array) else jnp.int32), "real": lambda a: a.real, "imag": lambda a: a.imag,
    "len": lambda a: np.int32(len(a)), "iter": lambda a: [r for r in a],
    "round_builtin": lambda a: round(a[0, 0]), "matmul": lambda a: a @ a.T,
    "rmatmul": lambda a: np.ones((2, 3), np.float32) @ a,
}


@pytest.mark.parametrize("name", list(METHODS))
def test_methods(name):
    check = harness.compare if name == "nonzero" else compare  # nonzero: data-dependent size
    check(METHODS[name], METHODS[name], rand(RNG, (3, 3), F32))


def test_scalar_constructors_and_conversions():
    x = jnp.asarray(np.array([[1.5, -2.0]], F32))
    assert float(x[0, 0]) == 1.5 and int(x[0, 1]) == -2 and bool(x[0, 0])
    assert x.shape == (1, 2) and x.ndim == 2 and x.size == 2 and x.dtype == jnp.float32
    assert jnp.float32(2).dtype == np.float32 and jnp.dtype("int8") == np.int8
    assert isinstance(np.float32(1), jnp.float32) and jnp.float32 == np.float32
    assert np.dtype(jnp.bfloat16) == ml_bf16()
    with pytest.raises(TypeError, match="len\\(\\) of unsized object"):
        len(jnp.asarray(1.0))


def ml_bf16():
    import ml_dtypes
    return np.dtype(ml_dtypes.bfloat16)
