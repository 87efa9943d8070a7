"""fungrad.optim.tree_utils against optax.tree_utils on the same pytrees: values, dtypes,
weak types and tree structure."""
from typing import Any, NamedTuple

import jax
import ml_dtypes
import numpy as np
import optax
import optax.tree_utils as otu
import pytest

import fungrad
from fungrad import optim, tree
from fungrad.optim import tree_utils as tu
from harness import assert_same, compare, to_fg, to_jax

_rng = np.random.default_rng(0)


def _tree(low: float = -2.0, high: float = 2.0, dtype: Any = np.float32) -> dict:
    """A dict holding a nested list and tuple of arrays of different shapes."""
    def leaf(*shape):
        return _rng.uniform(low, high, shape).astype(dtype)
    return {"w": leaf(3, 4), "layers": [leaf(5), (leaf(2, 3), leaf())]}


def _complex_tree() -> dict:
    return tree.map(lambda re, im: (re + 1j * im).astype(np.complex64), _tree(), _tree())


X, Y, Y_POS = _tree(), _tree(), _tree(0.5, 2.0)
Z = _complex_tree()


class InnerState(NamedTuple):
    count: Any
    mu: Any


class OuterState(NamedTuple):
    count: Any
    inner: InnerState
    hyperparams: dict


STATE = OuterState(count=np.int32(3), inner=InnerState(np.int32(1), _tree()),
                   hyperparams={"learning_rate": np.float32(0.1), "count": np.float32(7.0)})


def _check(fn, *args) -> None:
    """``fn(tree_utils, *args)`` of both libraries on the same NumPy inputs: the same tree
    structure and leaves; fungrad's also under ``fungrad.jit``."""
    ref = fn(otu, *to_jax(args))
    assert jax.tree.structure(fn(tu, *to_fg(args))) == jax.tree.structure(ref)
    compare(lambda *a: fn(tu, *a), lambda *a: fn(otu, *a), *args, ref_out=ref)


ARITHMETIC = {
    "add": (lambda m, x, y: m.tree_add(x, y), X, Y),
    "add3": (lambda m, x, y: m.tree_add(x, y, x), X, Y),
    "sub": (lambda m, x, y: m.tree_sub(x, y), X, Y),
    "mul": (lambda m, x, y: m.tree_mul(x, y), X, Y),
    "div": (lambda m, x, y: m.tree_div(x, y), X, Y_POS),
    "scale": (lambda m, x: m.tree_scale(0.5, x), X),
    "scale_array": (lambda m, x, s: m.tree_scale(s, x), X, np.float32(-3.0)),
    "add_scale": (lambda m, x, y: m.tree_add_scale(x, 0.3, y), X, Y),
    "conj": (lambda m, z: m.tree_conj(z), Z),
    "real": (lambda m, z: m.tree_real(z), Z),
    "where_true": (lambda m, x, y: m.tree_where(True, x, y), X, Y),
    "where_array": (lambda m, c, x, y: m.tree_where(c, x, y), np.array(False), X, Y),
    "clip": (lambda m, x: m.tree_clip(x, -0.5, 0.5), X),
    "clip_max": (lambda m, x: m.tree_clip(x, max_value=0.2), X),
    "clip_min": (lambda m, x: m.tree_clip(x, -0.1), X),
    "clip_none": (lambda m, x: m.tree_clip(x), X),
    "batch_shape": (lambda m, x: m.tree_batch_shape(x, (2, 3)), X),
    "batch_shape_default": (lambda m, x: m.tree_batch_shape(x), X),
    "zeros_like": (lambda m, x: m.tree_zeros_like(x), X),
    "zeros_like_int": (lambda m, x: m.tree_zeros_like(x, np.int32), X),
    "ones_like": (lambda m, x: m.tree_ones_like(x), X),
    "ones_like_bf16": (lambda m, x: m.tree_ones_like(x, dtype=ml_dtypes.bfloat16), X),
    "full_like": (lambda m, x: m.tree_full_like(x, 3.5), X),
    "full_like_int": (lambda m, x: m.tree_full_like(x, 2, dtype=np.int32), X),
    "cast": (lambda m, x: m.tree_cast(x, ml_dtypes.bfloat16), X),
    "cast_none": (lambda m, x: m.tree_cast(x, None), X),
    "cast_like": (lambda m, x, o: m.tree_cast_like(x, o), X,
                  {"w": np.zeros(1, np.float16), "layers": [np.zeros(1, np.int32),
                                                          (np.zeros(1, np.float32), 1.0)]}),
}


@pytest.mark.parametrize("name", ARITHMETIC)
def test_leafwise(name):
    fn, *args = ARITHMETIC[name]
    _check(fn, *args)


REDUCTIONS = {
    "vdot": (lambda m, x, y: m.tree_vdot(x, y), X, Y),
    "vdot_complex": (lambda m, z, w: m.tree_vdot(z, w), Z, _complex_tree()),
    "sum": (lambda m, x: m.tree_sum(x), X),
    "sum_associative": (lambda m, x: m.tree_sum(x, associative_reduction=True), X),
    "max": (lambda m, x: m.tree_max(x), X),
    "min": (lambda m, x: m.tree_min(x), X),
    "max_empty_leaf": (lambda m, x, e: m.tree_max([x, e]), X, np.zeros((0, 2), np.float32)),
    "min_empty_leaf": (lambda m, x, e: m.tree_min([e, x]), X, np.zeros((0,), np.float32)),
    "allclose_same": (lambda m, x: m.tree_allclose(x, x), X),
    "allclose_not": (lambda m, x, y: m.tree_allclose(x, y), X, Y),
    "allclose_tol": (lambda m, x: m.tree_allclose(x, m.tree_scale(1.001, x), rtol=1e-2), X),
}
for _ord in (None, 1, 2, np.inf, "inf", "infinity"):
    for _sq in (False, True):
        REDUCTIONS[f"norm_{_ord}_{_sq}"] = (
            lambda m, x, o=_ord, s=_sq: m.tree_norm(x, ord=o, squared=s), X)
        REDUCTIONS[f"norm_complex_{_ord}_{_sq}"] = (
            lambda m, z, o=_ord, s=_sq: m.tree_norm(z, o, s), Z)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions(name):
    fn, *args = REDUCTIONS[name]
    _check(fn, *args)


@pytest.mark.parametrize("fn", [lambda m: m.tree_sum({}), lambda m: m.tree_vdot({}, {}),
                                lambda m: m.tree_max({}), lambda m: m.tree_min([]),
                                lambda m: m.tree_norm({}), lambda m: m.tree_norm({}, ord=1),
                                lambda m: m.tree_norm({}, "inf", squared=True)])
def test_reductions_of_empty_trees(fn):
    assert_same(fn(tu), fn(otu))


def test_norm_bad_ord():
    for m in (tu, otu):
        with pytest.raises(ValueError, match="Unsupported ord: 3"):
            m.tree_norm(to_fg(X) if m is tu else to_jax(X), ord=3)


def test_size():
    for t in (X, Z, {}, [np.zeros((0, 3))]):
        out = tu.tree_size(to_fg(t))
        assert out == otu.tree_size(to_jax(t)) and type(out) is int


def test_dtype():
    mixed = {"a": np.zeros(2, np.float16), "b": [np.zeros(1, np.float32), np.zeros((), np.int8)]}
    for t, handler in [(X, None), (Z, None), ({}, None), (mixed, "promote"), (mixed, "highest"),
                       (mixed, "lowest"), (X, "promote")]:
        assert tu.tree_dtype(to_fg(t), handler) == otu.tree_dtype(to_jax(t), handler)
    unordered = {"a": np.zeros(1, np.float16), "b": np.zeros(1, ml_dtypes.bfloat16)}
    for t, handler in [(mixed, None), (unordered, "highest"), (unordered, "lowest"),
                       (X, "largest")]:
        with pytest.raises(ValueError) as ref:
            otu.tree_dtype(to_jax(t), handler)
        with pytest.raises(ValueError) as out:
            tu.tree_dtype(to_fg(t), handler)
        assert str(out.value) == str(ref.value)


MOMENTS = {
    "moment_1": (lambda m, g, t: m.tree_update_moment(g, t, 0.9, 1), X, Y),
    "moment_2": (lambda m, g, t: m.tree_update_moment(g, t, 0.999, 2), X, Y),
    "moment_3": (lambda m, g, t: m.tree_update_moment(g, t, 0.5, 3), X, Y),
    "moment_none": (lambda m, g, t: m.tree_update_moment({"a": g, "b": None}, {"a": t, "b": t},
                                                          0.9, 2), X, Y),
    "infinity": (lambda m, g, t: m.tree_update_infinity_moment(g, t, 0.99, 1e-8), X, Y_POS),
    "infinity_none": (lambda m, g, t: m.tree_update_infinity_moment([None, g], [t, t], 0.9, 1e-3),
                      X, Y_POS),
    "bias_correction": (lambda m, t, c: m.tree_bias_correction(t, 0.9, c), X, np.int32(3)),
    "bias_correction_pyint": (lambda m, t: m.tree_bias_correction(t, 0.999, 7), X),
    "bias_correction_bf16": (lambda m, t, c: m.tree_bias_correction(t, 0.999, c),
                             tree.map(lambda v: v.astype(ml_dtypes.bfloat16), X), np.int32(10)),
}
for _order in (1, 2, 3, 2.5):
    MOMENTS[f"per_elem_norm_{_order}"] = (
        lambda m, g, t, o=_order: m.tree_update_moment_per_elem_norm(g, t, 0.9, o), Y_POS, X)
    MOMENTS[f"per_elem_norm_complex_{_order}"] = (
        lambda m, g, t, o=_order: m.tree_update_moment_per_elem_norm(g, t, 0.9, o), Z, X)
MOMENTS["per_elem_norm_none"] = (
    lambda m, g, t: m.tree_update_moment_per_elem_norm((g, None), (t, t), 0.9, 2), Z, X)


@pytest.mark.parametrize("name", MOMENTS)
def test_moments(name):
    fn, *args = MOMENTS[name]
    _check(fn, *args)


# --------------------------------------------------------------------------- random trees

KEYS = [("raw", lambda m: m.PRNGKey(42)), ("typed", lambda m: m.key(42))]


@pytest.mark.parametrize("make_key", [k for _, k in KEYS], ids=[n for n, _ in KEYS])
def test_split_key_like(make_key):
    out = tu.tree_unwrap_random_key_data(tu.tree_split_key_like(make_key(fungrad.random), X))
    ref = otu.tree_unwrap_random_key_data(otu.tree_split_key_like(make_key(jax.random), X))
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    assert_same(out, ref, rtol=0, atol=0)


RANDOM = {
    "normal": lambda m, r, k, t: m.tree_random_like(k, t),
    "uniform_bf16": lambda m, r, k, t: m.tree_random_like(k, t, r.uniform, ml_dtypes.bfloat16),
    "bernoulli": lambda m, r, k, t: m.tree_random_like(
        k, t, lambda key, shape, dtype: r.bernoulli(key, 0.3, shape)),
    "rademacher": lambda m, r, k, t: m.tree_random_like(k, t, r.rademacher, np.int32),
}


@pytest.mark.parametrize("make_key", [k for _, k in KEYS], ids=[n for n, _ in KEYS])
@pytest.mark.parametrize("name", RANDOM)
def test_random_like_is_bit_exact(name, make_key):
    out = RANDOM[name](tu, fungrad.random, make_key(fungrad.random), to_fg(X))
    ref = RANDOM[name](otu, jax.random, make_key(jax.random), to_jax(X))
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    assert_same(out, ref, rtol=0, atol=0)


# --------------------------------------------------------------------------- optimiser states

def _path(path: tuple) -> list[tuple[str, str]]:
    """A key path as comparable text: each key's class name and ``str``."""
    return [(type(k).__name__, str(k)) for k in path]


def _in_inner(path: tuple, value: Any) -> bool:
    return getattr(path[-1], "tuple_name", None) == "InnerState"


@pytest.mark.parametrize("key,filtering", [("count", None), ("mu", None), ("learning_rate", None),
                                           ("InnerState", None), ("OuterState", None),
                                           ("missing", None), ("count", _in_inner),
                                           ("count", lambda p, v: np.ndim(v) == 0)])
def test_get_all_with_path(key, filtering):
    out = tu.tree_get_all_with_path(to_fg(STATE), key, filtering)
    ref = otu.tree_get_all_with_path(to_jax(STATE), key, filtering)
    assert [_path(p) for p, _ in out] == [_path(p) for p, _ in ref]
    for (_, v), (_, r) in zip(out, ref):
        assert jax.tree.structure(v) == jax.tree.structure(r)
        assert_same(v, r)


@pytest.mark.parametrize("args,kwargs", [(("mu",), {}), (("InnerState",), {}),
                                         (("learning_rate",), {}), (("missing", 5), {}),
                                         (("count",), {"filtering": _in_inner}),
                                         (("missing",), {"default": 5.0})])
def test_get(args, kwargs):
    out = tu.tree_get(to_fg(STATE), *args, **kwargs)
    ref = otu.tree_get(to_jax(STATE), *args, **kwargs)
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    assert_same(out, ref)


def test_get_several_raises():
    for m, conv in ((tu, to_fg), (otu, to_jax)):
        with pytest.raises(KeyError, match="Found multiple values for 'count'"):
            m.tree_get(conv(STATE), "count")


SETS = [
    ((), {"count": np.int32(9)}),
    ((), {"mu": _tree()}),
    ((), {"learning_rate": np.float32(0.5), "mu": _tree()}),
    ((_in_inner,), {"count": np.int32(4)}),
    ((), {"InnerState": InnerState(np.int32(0), _tree())}),
    ((lambda p, v: np.ndim(v) == 0,), {"count": np.float32(2.0)}),
]


@pytest.mark.parametrize("args,kwargs", SETS)
def test_set(args, kwargs):
    out = tu.tree_set(to_fg(STATE), *args, **to_fg(kwargs))
    ref = otu.tree_set(to_jax(STATE), *args, **to_jax(kwargs))
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    assert_same(out, ref)


def test_set_missing_raises():
    for m, conv in ((tu, to_fg), (otu, to_jax)):
        with pytest.raises(KeyError, match="Found no values matching 'nu' in"):
            m.tree_set(conv(STATE), nu=1.0)
        with pytest.raises(KeyError, match="matching 'mu' given the filtering operation"):
            m.tree_set(conv(STATE), lambda p, v: False, mu=1.0)


def _init(params: Any) -> OuterState:
    return OuterState(np.int32(0), InnerState(np.int32(0), params), {"learning_rate": 0.1})


@pytest.mark.parametrize("transform_non_params", [None, lambda v: v * 0 - 1])
def test_map_params_with_init_function(transform_non_params):
    state = OuterState(np.int32(3), InnerState(np.int32(1), X), {"learning_rate": np.float32(.1)})
    specs = Y

    def run(m, state, specs):
        return m.tree_map_params(_init, lambda p, s: p * s + 1, state, specs,
                                 transform_non_params=transform_non_params)
    out, ref = run(tu, *to_fg((state, specs))), run(otu, *to_jax((state, specs)))
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    assert_same(out, ref)


def test_map_params_with_optimiser():
    out_opt, ref_opt = optim.adam(1e-2), optax.adam(1e-2)
    out = tu.tree_map_params(out_opt, lambda p: p + 1, out_opt.init(to_fg(X)),
                             transform_non_params=lambda _: None)
    ref = otu.tree_map_params(ref_opt, lambda p: p + 1, ref_opt.init(to_jax(X)),
                              transform_non_params=lambda _: None)
    # the states are namedtuples of different classes, of one name and layout
    assert str(jax.tree.structure(out)) == str(jax.tree.structure(ref))
    assert_same(out, ref)
    # is_leaf: the map over each parameter tree stops at the lists
    out = tu.tree_map_params(out_opt, len, out_opt.init(to_fg(X)),
                             is_leaf=lambda x: isinstance(x, list))
    ref = otu.tree_map_params(ref_opt, len, ref_opt.init(to_jax(X)),
                              is_leaf=lambda x: isinstance(x, list))
    assert str(jax.tree.structure(out)) == str(jax.tree.structure(ref))
    assert_same(out, ref)


def test_all_names_are_optax_names():
    assert set(tu.__all__) <= set(dir(otu))
    assert all(callable(getattr(tu, n)) for n in tu.__all__)
