"""``fungrad.numpy.ufunc`` and ``frompyfunc`` against jax.numpy: which public functions are
ufunc objects and their attributes; every method (``reduce``, ``accumulate``, ``at``,
``reduceat``, ``outer``) on the fast paths and the generic ones, with ``where``/``initial``/
``keepdims``/``dtype``/axes: values, shapes, dtypes and weak types, eagerly and under
``fungrad.jit``, derivatives and vmap; calls unchanged by the wrapping; the errors."""
import copy
import functools
import inspect
import operator
import pickle

import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad._core import array_methods
from fungrad.numpy import _ufuncs, _ufuncs_math
import harness
from harness import compare_types, rand

# the jax references run under jax.jit: one compilation per case instead of one per op
compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)

RNG = np.random.default_rng(0)
F32, I32, I8, U8, B = np.float32, np.int32, np.int8, np.uint8, np.bool_


def _both(case):
    """``case(lib, *args)`` as (fungrad's function, jax's function)."""
    return functools.partial(case, jnp), functools.partial(case, jnp_ref)


def _jax_ufunc_names() -> list[str]:
    return sorted(n for n in dir(jnp_ref) if isinstance(getattr(jnp_ref, n), jnp_ref.ufunc))


# --------------------------------------------------------------------------- the objects

def test_the_same_names_are_ufunc_objects_as_in_jax():
    ours = sorted(n for n in dir(jnp) if isinstance(getattr(jnp, n), jnp.ufunc))
    assert ours == _jax_ufunc_names()
    assert {"ufunc", "frompyfunc"} <= set(jnp.__all__)
    assert len(jnp.__all__) == len(set(jnp.__all__))


@pytest.mark.parametrize("name", _jax_ufunc_names())
def test_attributes_match_jax(name):
    ours, ref = getattr(jnp, name), getattr(jnp_ref, name)
    assert (ours.nin, ours.nout, ours.nargs, ours.__name__) == \
        (ref.nin, ref.nout, ref.nargs, ref.__name__)
    assert type(ours.identity) is type(ref.identity) and ours.identity == ref.identity
    assert repr(ours) == repr(ref) == f"<jnp.ufunc '{name}'>"
    assert ours.__doc__  # the plain function's docstring
    with pytest.raises(AttributeError):
        ours.nin = 3


def test_objects_are_hashable_static_and_picklable():
    assert jnp.add == jnp.add and jnp.add != jnp.multiply and hash(jnp.add) == hash(jnp.add)
    f = jnp.frompyfunc(operator.add, 2, 1, identity=0)
    assert f == jnp.frompyfunc(operator.add, 2, 1, identity=0) and f != jnp.add
    assert pickle.loads(pickle.dumps(jnp.maximum)) is jnp.maximum
    g = pickle.loads(pickle.dumps(f))
    assert g == f and int(g.reduce(np.arange(4))) == 6 and int(g(1, 2)) == 3
    assert copy.deepcopy({"op": jnp.add})["op"] is jnp.add
    reduce = fungrad.jit(lambda x, op: op.reduce(x), static_argnums=1)
    x = jnp.arange(1, 5)
    assert int(reduce(x, jnp.add)) == 10 and int(reduce(x, jnp.multiply)) == 24


def test_array_operators_keep_the_plain_functions():
    """``x + y`` binds the plain function (no ufunc call on the operator hot path); once a
    type has asked to be deferred to (``experimental.sparse``'s ``BCOO``, if a test of this
    process imported it), through one deferring frame."""
    def bound(method):
        return method.__wrapped__ if array_methods._deferred else method
    assert bound(array_methods.ArrayMethods.__add__) is _ufuncs.add
    assert bound(array_methods.ArrayMethods.__mul__) is _ufuncs.multiply
    assert array_methods.ArrayMethods.__neg__ is _ufuncs.negative
    assert jnp.add._call is _ufuncs.add and jnp.logaddexp._call is _ufuncs_math.logaddexp


# --------------------------------------------------------------------------- calls

CALLS = [("add", (F32, F32)), ("add", (I8, I32)), ("add", (B, B)), ("multiply", (F32, I32)),
         ("subtract", (I32, F32)), ("maximum", (F32, F32)), ("minimum", (I8, U8)),
         ("logical_xor", (F32, I32)), ("bitwise_or", (I32, U8)), ("logaddexp", (F32, I32)),
         ("logaddexp2", (F32, F32)), ("negative", (F32,)), ("negative", (I8,))]


@pytest.mark.parametrize("name,dts", CALLS, ids=[f"{n}-{len(d)}" + "-".join(
    np.dtype(t).name for t in d) for n, d in CALLS])
def test_calls_are_unchanged(name, dts):
    """Values, dtypes and weak types (Python scalars included) as jax's; the plain function's
    results exactly."""
    args = [rand(RNG, (2, 3), dt) for dt in dts]
    compare(getattr(jnp, name), getattr(jnp_ref, name), *args)
    plain = getattr(_ufuncs, name, None) or getattr(_ufuncs_math, name)
    scalar = 2 if name.startswith("bitwise") else 1.5
    for scalars in ([2] * len(dts), [scalar] * len(dts), [args[0]] + [scalar] * (len(dts) - 1)):
        compare_types(getattr(jnp, name), getattr(jnp_ref, name), *scalars)
        ours = getattr(jnp, name)(*harness.to_fg(scalars))
        want = plain(*harness.to_fg(scalars))
        assert ours.dtype == want.dtype and ours.weak_type == want.weak_type
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(want))


@pytest.mark.parametrize("name", ["add", "multiply", "maximum", "logaddexp", "negative"])
def test_call_transforms(name):
    args = [rand(RNG, (2, 3)) for _ in range(getattr(jnp, name).nin)]
    compare_transforms(getattr(jnp, name), getattr(jnp_ref, name), args, RNG)


def test_transforms_take_the_objects_themselves():
    x, y = jnp.array([1.0, 2.0]), jnp.array([3.0, 5.0])
    np.testing.assert_allclose(fungrad.jit(jnp.add)(x, y), [4.0, 7.0])
    np.testing.assert_allclose(fungrad.vmap(jnp.multiply)(x, y), [3.0, 10.0])
    assert float(fungrad.grad(jnp.multiply)(2.0, 3.0)) == 3.0
    assert float(fungrad.grad(jnp.multiply, argnums=1)(2.0, 3.0)) == 2.0
    np.testing.assert_allclose(fungrad.jit(jnp.add, static_argnums=1)(x, 3), [4.0, 5.0])
    assert inspect.signature(jnp.add) == inspect.signature(_ufuncs.add)
    assert inspect.signature(jnp.negative) == inspect.signature(_ufuncs.negative)


def test_call_errors():
    """Bad arguments raise as in jax. NumPy's ``out=``/``where=`` exist on jax's ufuncs only
    to raise ``NotImplementedError`` for values other than None; fungrad.numpy's own objects
    (whose call is the plain function) and ``frompyfunc`` ufuncs raise as jax's do."""
    x = np.ones(3, np.float32)
    for lib in (jnp, jnp_ref):
        with pytest.raises(TypeError, match="add requires ndarray or scalar arguments"):
            lib.add([1.0], x)
        with pytest.raises(TypeError):
            lib.add(x)
        f = lib.frompyfunc(operator.add, 2, 1)
        with pytest.raises(NotImplementedError, match="out argument"):
            f(x, x, out=x)
        with pytest.raises(NotImplementedError, match="where argument"):
            f(x, x, where=x > 0)
    for lib in (jnp, jnp_ref):
        np.testing.assert_array_equal(lib.add(x, x, out=None, where=None), 2 * x)
        for kw in ({"out": x}, {"where": x > 0}, {"out": x, "where": x > 0}):
            with pytest.raises(NotImplementedError,
                               match=f"{[*kw][0]} argument of <jnp.ufunc 'add'>"):
                lib.add(x, x, **kw)


# --------------------------------------------------------------------------- reduce

REDUCE = {
    "add-int8": (lambda m, x: m.add.reduce(x), [(2, 3, 4), I8]),
    "add-none-keepdims": (lambda m, x: m.add.reduce(x, axis=None, keepdims=True), [(2, 3), F32]),
    "add-tuple-axes": (lambda m, x: m.add.reduce(x, axis=(0, 2)), [(2, 3, 4), F32]),
    "add-where-dtype": (lambda m, x: m.add.reduce(x, axis=1, where=x > 0, initial=1,
                                                  dtype=m.float32), [(2, 3), I32]),
    "add-bool": (lambda m, x: m.add.reduce(x, axis=-1), [(3, 4), B]),
    "multiply-where": (lambda m, x: m.multiply.reduce(x, axis=1, where=x < 1), [(2, 4), F32]),
    "multiply-initial": (lambda m, x: m.multiply.reduce(x, initial=2.0, keepdims=True),
                         [(3, 2), F32]),
    "maximum": (lambda m, x: m.maximum.reduce(x, axis=-1), [(3, 4), F32]),
    "maximum-where": (lambda m, x: m.maximum.reduce(x, where=x < 0, initial=-1.5),
                      [(4, 2), F32]),
    "minimum-int": (lambda m, x: m.minimum.reduce(x, axis=None, keepdims=True), [(2, 3), I8]),
    "logical_and": (lambda m, x: m.logical_and.reduce(x, axis=1), [(3, 4), F32]),
    "logical_and-dtype": (lambda m, x: m.logical_and.reduce(x, dtype=m.int32), [(3, 2), I32]),
    "logical_or-where": (lambda m, x: m.logical_or.reduce(x, axis=1, where=x > 0),
                         [(3, 4), I32]),
    "logical_xor": (lambda m, x: m.logical_xor.reduce(x, axis=(0, 1)), [(3, 4), B]),
    "bitwise_and": (lambda m, x: m.bitwise_and.reduce(x, axis=1), [(3, 4), I32]),
    "bitwise_and-bool-where": (lambda m, x: m.bitwise_and.reduce(x, where=m.array(
        [False, True, True])), [(2, 3), B]),
    "bitwise_or-uint8-where": (lambda m, x: m.bitwise_or.reduce(x, axis=None, where=x > 3),
                               [(3, 4), U8]),
    "bitwise_xor-initial": (lambda m, x: m.bitwise_xor.reduce(x, initial=5, keepdims=True),
                            [(3, 2), I32]),
    "logaddexp": (lambda m, x: m.logaddexp.reduce(x, axis=(0, 1)), [(3, 4), F32]),
    "logaddexp-int": (lambda m, x: m.logaddexp.reduce(x, axis=1), [(2, 3), I32]),
    "logaddexp-where": (lambda m, x: m.logaddexp.reduce(x, where=x > 0, initial=0.5,
                                                        keepdims=True), [(3, 4), F32]),
    "logaddexp2": (lambda m, x: m.logaddexp2.reduce(x, axis=None, initial=1.0), [(3, 4), F32]),
    "subtract": (lambda m, x: m.subtract.reduce(x, axis=1), [(3, 4), F32]),
    "subtract-none-keepdims": (lambda m, x: m.subtract.reduce(x, axis=None, keepdims=True),
                               [(2, 3), F32]),
    "subtract-where": (lambda m, x: m.subtract.reduce(x, axis=-1, where=x > 0, initial=1.0),
                       [(2, 3, 4), F32]),
    "subtract-int8-initial": (lambda m, x: m.subtract.reduce(x, initial=3), [(3, 2), I8]),
    "subtract-dtype": (lambda m, x: m.subtract.reduce(x, dtype=m.float32), [(3, 2), I32]),
    "subtract-empty-initial": (lambda m, x: m.subtract.reduce(x, initial=2.0), [(0, 3), F32]),
}


@pytest.mark.parametrize("case", list(REDUCE))
def test_reduce(case):
    fn, (shape, dt) = REDUCE[case]
    compare(*_both(fn), rand(RNG, shape, dt))


@pytest.mark.parametrize("case", ["add-none-keepdims", "multiply-where", "maximum",
                                  "logaddexp-where", "subtract", "subtract-where"])
def test_reduce_transforms(case):
    fn, (shape, dt) = REDUCE[case]
    compare_transforms(*_both(fn), [rand(RNG, shape, dt)], RNG)


# --------------------------------------------------------------------------- accumulate

ACCUMULATE = {
    "add-bool": (lambda m, x: m.add.accumulate(x, axis=1), [(2, 3), B]),
    "add-none": (lambda m, x: m.add.accumulate(x, axis=None), [(2, 3), F32]),
    "add-dtype": (lambda m, x: m.add.accumulate(x, dtype=m.float32), [(3, 2), I8]),
    "multiply": (lambda m, x: m.multiply.accumulate(x, axis=-1), [(2, 4), F32]),
    "maximum-int8": (lambda m, x: m.maximum.accumulate(x, axis=1), [(2, 4), I8]),
    "maximum-bool": (lambda m, x: m.maximum.accumulate(x, axis=1), [(3, 4), B]),
    "maximum-dtype": (lambda m, x: m.maximum.accumulate(x, dtype=m.float32), [(4, 2), I32]),
    "minimum": (lambda m, x: m.minimum.accumulate(x), [(5, 2), F32]),
    "minimum-bool": (lambda m, x: m.minimum.accumulate(x), [(5, 2), B]),
    "maximum-empty": (lambda m, x: m.maximum.accumulate(x), [(0, 3), I8]),
    "subtract": (lambda m, x: m.subtract.accumulate(x, axis=1), [(2, 4), F32]),
    "subtract-int8": (lambda m, x: m.subtract.accumulate(x), [(4, 2), I8]),
    "logical_and": (lambda m, x: m.logical_and.accumulate(x, axis=1), [(3, 4), F32]),
    "bitwise_xor": (lambda m, x: m.bitwise_xor.accumulate(x), [(4, 3), I32]),
    "logaddexp": (lambda m, x: m.logaddexp.accumulate(x, axis=-1), [(2, 5), F32]),
    "subtract-empty": (lambda m, x: m.subtract.accumulate(x, axis=1), [(2, 0), F32]),
}


@pytest.mark.parametrize("case", list(ACCUMULATE))
def test_accumulate(case):
    fn, (shape, dt) = ACCUMULATE[case]
    compare(*_both(fn), rand(RNG, shape, dt))


@pytest.mark.parametrize("case", ["add-none", "multiply", "minimum", "subtract", "logaddexp"])
def test_accumulate_transforms(case):
    fn, (shape, dt) = ACCUMULATE[case]
    compare_transforms(*_both(fn), [rand(RNG, shape, dt)], RNG)


# --------------------------------------------------------------------------- at

IDX = np.array([0, 2, 0, 3, 2, 0])
AT = {  # case -> (fn(m, a, idx[, b]), a's shape and dtype, b's shape and dtype or None)
    "add": (lambda m, a, i, b: m.add.at(a, i, b, inplace=False), [(5,), F32], [(6,), F32]),
    "add-bool": (lambda m, a, i, b: m.add.at(a, i, b, inplace=False), [(5,), B], [(6,), B]),
    "add-scalar-index": (lambda m, a, i, b: m.add.at(a, 1, b, inplace=False), [(5, 2), I32],
                         [(2,), I32]),
    "multiply": (lambda m, a, i, b: m.multiply.at(a, i, b, inplace=False), [(5,), F32],
                 [(6,), F32]),
    "multiply-bool": (lambda m, a, i, b: m.multiply.at(a, i, b, inplace=False), [(5,), B],
                      [(), B]),
    "subtract-2d": (lambda m, a, i, b: m.subtract.at(a, (i[:3], i[3:]), b, inplace=False),
                    [(4, 4), F32], [(3,), F32]),
    "maximum": (lambda m, a, i, b: m.maximum.at(a, i, b, inplace=False), [(5,), F32],
                [(6,), F32]),
    "maximum-int-float": (lambda m, a, i, b: m.maximum.at(a, i, b, inplace=False), [(5,), I32],
                          [(6,), F32]),
    "maximum-bool": (lambda m, a, i, b: m.maximum.at(a, i, b, inplace=False), [(5,), B],
                     [(6,), B]),
    "minimum-rows": (lambda m, a, i, b: m.minimum.at(a, i, b, inplace=False), [(5, 3), F32],
                     [(6, 3), F32]),
    "minimum-int8": (lambda m, a, i, b: m.minimum.at(a, i, b, inplace=False), [(5,), I8],
                     [(), I8]),
    "logaddexp": (lambda m, a, i, b: m.logaddexp.at(a, i, b, inplace=False), [(5,), F32],
                  [(6,), F32]),
    "logaddexp-2d": (lambda m, a, i, b: m.logaddexp.at(a, (i[:3], i[3:]), b, inplace=False),
                     [(4, 4), F32], [(3,), F32]),
    "bitwise_or-int": (lambda m, a, i, b: m.bitwise_or.at(a, i, b, inplace=False), [(5,), I32],
                       [(), I32]),
    "logical_and-float": (lambda m, a, i, b: m.logical_and.at(a, i, b, inplace=False),
                          [(5,), F32], [(6,), F32]),
    "logaddexp-rows": (lambda m, a, i, b: m.logaddexp.at(a, i, b, inplace=False),
                       [(5, 2), F32], [(6, 2), F32]),
    "negative": (lambda m, a, i: m.negative.at(a, i, inplace=False), [(5,), F32], None),
    "negative-int": (lambda m, a, i: m.negative.at(a, 2, inplace=False), [(5, 2), I32], None),
    "negative-2d": (lambda m, a, i: m.negative.at(a, (i[:3], i[3:]), inplace=False),
                    [(4, 4), F32], None),
}


def _at_args(case):
    _, (a_shape, a_dt), b = AT[case]
    args = [rand(RNG, a_shape, a_dt), IDX]
    return args + ([rand(RNG, b[0], b[1])] if b else [])


@pytest.mark.parametrize("case", list(AT))
def test_at(case):
    compare(*_both(AT[case][0]), *_at_args(case))


@pytest.mark.parametrize("case", ["add", "subtract-2d", "maximum", "minimum-rows", "logaddexp",
                                  "logaddexp-2d", "negative"])
def test_at_transforms(case):
    """(jax differentiates ``multiply.at`` only with unique indices.)"""
    args = _at_args(case)
    compare_transforms(*_both(AT[case][0]), args, RNG,
                       argnums=[0] + ([2] if len(args) == 3 else []))


def test_at_beyond_jax_follows_numpy():
    """What jax's ``at`` cannot take (slices: jax traces the index) follows NumPy: values
    broadcast against ``a[indices]``, repeated indices apply in order, out-of-bounds ones
    are dropped."""
    a = rand(RNG, (3, 4), F32)
    b = rand(RNG, (3, 1), F32)
    for name in ("maximum", "logaddexp", "subtract"):
        want = a.copy()
        getattr(np, name).at(want, (slice(None), [0, 2, 0]), b)
        got = getattr(jnp, name).at(a, (slice(None), np.array([0, 2, 0])), b, inplace=False)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    want = a.copy()
    np.negative.at(want, ([0, 0, 2], slice(1, 3)))
    got = jnp.negative.at(a, (np.array([0, 0, 2]), slice(1, 3)), inplace=False)
    np.testing.assert_allclose(np.asarray(got), want)
    got = jnp.logaddexp.at(a[0], np.array([1, 9]), 2.0, inplace=False)  # 9: dropped
    np.testing.assert_allclose(np.asarray(got), np.r_[a[0, 0], np.logaddexp(a[0, 1], 2.0),
                                                      a[0, 2:]], rtol=1e-6)
    mask = a > 0  # a boolean mask selects each element once
    got = jnp.logaddexp.at(a, mask, 1.0, inplace=False)
    np.testing.assert_allclose(np.asarray(got), np.where(mask, np.logaddexp(a, 1.0), a),
                               rtol=1e-6)


# --------------------------------------------------------------------------- reduceat

SEGMENTS = np.array([0, 3, 1, 4])
REDUCEAT = {
    "add": (lambda m, x, i: m.add.reduceat(x, i), [(6,), F32]),
    "add-axis": (lambda m, x, i: m.add.reduceat(x, i, axis=1), [(2, 6), I8]),
    "add-dtype-ignored": (lambda m, x, i: m.add.reduceat(x, i, dtype=m.float32), [(6, 2), I32]),
    "multiply": (lambda m, x, i: m.multiply.reduceat(x, i, axis=-1), [(2, 6), F32]),
    "maximum": (lambda m, x, i: m.maximum.reduceat(x, i), [(6, 3), F32]),
    "logical_and-int": (lambda m, x, i: m.logical_and.reduceat(x, i), [(6,), I32]),
    "subtract": (lambda m, x, i: m.subtract.reduceat(x, i), [(6,), F32]),
    "negative-index": (lambda m, x, i: m.add.reduceat(x, -i[:2] - 1), [(6,), F32]),
}


@pytest.mark.parametrize("case", list(REDUCEAT))
def test_reduceat(case):
    fn, (shape, dt) = REDUCEAT[case]
    compare(*_both(fn), rand(RNG, shape, dt), SEGMENTS)
    if case == "add":  # indices of any integer type
        compare(*_both(fn), rand(RNG, shape, dt), SEGMENTS.astype(U8))


@pytest.mark.parametrize("case", ["add", "multiply", "subtract"])
def test_reduceat_transforms(case):
    fn, (shape, dt) = REDUCEAT[case]
    compare_transforms(*_both(fn), [rand(RNG, shape, dt), SEGMENTS], RNG, argnums=[0])


# --------------------------------------------------------------------------- outer

OUTER = {
    "add": (lambda m, x, y: m.add.outer(x, y), [(3,), F32], [(4,), F32]),
    "multiply-nd": (lambda m, x, y: m.multiply.outer(x, y), [(2, 3), I32], [(4,), F32]),
    "logical_and": (lambda m, x, y: m.logical_and.outer(x, y), [(3,), B], [(2, 2), I32]),
    "logaddexp": (lambda m, x, y: m.logaddexp.outer(x, y), [(3,), F32], [(2,), F32]),
    "subtract-0d": (lambda m, x, y: m.subtract.outer(x, y), [(), F32], [(3,), I8]),
}


@pytest.mark.parametrize("case", list(OUTER))
def test_outer(case):
    fn, (xs, xd), (ys, yd) = OUTER[case]
    compare(*_both(fn), rand(RNG, xs, xd), rand(RNG, ys, yd))


@pytest.mark.parametrize("case", ["add", "logaddexp"])
def test_outer_transforms(case):
    fn, (xs, xd), (ys, yd) = OUTER[case]
    compare_transforms(*_both(fn), [rand(RNG, xs, xd), rand(RNG, ys, yd)], RNG)


def test_outer_of_python_scalars_is_weakly_typed():
    for args in [(2.0, np.arange(3, dtype=I32)), (2.0, 3)]:
        compare_types(jnp.add.outer, jnp_ref.add.outer, *args)


# --------------------------------------------------------------------------- frompyfunc

def _userfunc(m):
    """A non-associative function with an identity-free reduction, in library ``m``."""
    return m.frompyfunc(lambda x, y: m.where(x > y, x - y, x * y + 1), nin=2, nout=1)


FROMPYFUNC = {
    "call": lambda m, x, y: _userfunc(m)(x, y),
    "call-scalar": lambda m, x, y: _userfunc(m)(x, 0.5),
    "reduce": lambda m, x, y: _userfunc(m).reduce(x, axis=1),
    "reduce-where": lambda m, x, y: _userfunc(m).reduce(x, where=y > 0, initial=0.25),
    "accumulate": lambda m, x, y: _userfunc(m).accumulate(x),
    "outer": lambda m, x, y: _userfunc(m).outer(x[0], y[:, 0]),
    "at": lambda m, x, y: _userfunc(m).at(x, m.array([0, 1, 0]), y, inplace=False),
    "reduceat": lambda m, x, y: _userfunc(m).reduceat(x, m.array([0, 2, 1]), axis=1),
}


@pytest.mark.parametrize("case", list(FROMPYFUNC))
def test_frompyfunc(case):
    compare(*_both(FROMPYFUNC[case]), rand(RNG, (3, 4), F32), rand(RNG, (3, 4), F32))


@pytest.mark.parametrize("case", ["call", "reduce", "accumulate", "at"])
def test_frompyfunc_transforms(case):
    compare_transforms(*_both(FROMPYFUNC[case]),
                       [rand(RNG, (3, 4), F32), rand(RNG, (3, 4), F32)], RNG)


def test_frompyfunc_identity_several_outputs_and_unary():
    add = jnp.frompyfunc(operator.add, 2, 1, identity=0)
    assert (add.nin, add.nout, add.identity, add.__name__) == (2, 1, 0, "add")
    assert repr(add) == "<jnp.ufunc 'add'>"
    compare(lambda x: add.reduce(x, axis=0),
            lambda x: jnp_ref.frompyfunc(operator.add, 2, 1, identity=0).reduce(x, axis=0),
            np.zeros((0, 3), F32))
    divmod_ = jnp.frompyfunc(lambda x, y: (x // y, x % y), 2, 2)
    q, r = divmod_(np.arange(6, dtype=I32), 4)
    np.testing.assert_array_equal(q, np.arange(6) // 4)
    np.testing.assert_array_equal(r, np.arange(6) % 4)
    square = jnp.frompyfunc(lambda x: x * x, 1, 1)
    compare(lambda x: square.at(x, np.array([1, 1]), inplace=False),
            lambda x: jnp_ref.frompyfunc(lambda x: x * x, 1, 1).at(x, np.array([1, 1]),
                                                                     inplace=False),
            np.arange(4, dtype=F32))
    with pytest.raises(TypeError, match="takes 1 positional"):
        square(1.0, 2.0)
    with pytest.raises(ValueError, match="nout must be at least 1"):
        jnp.frompyfunc(operator.add, 2, 0)
    with pytest.raises(TypeError, match="func must be callable"):
        jnp.frompyfunc(3, 2, 1)


def test_64_bit_dtypes():
    with harness.x64():
        x = rand(RNG, (3, 4), np.float64)
        compare(*_both(lambda m, x: m.subtract.reduce(x, axis=1)), x)
        compare(*_both(lambda m, x: m.add.reduce(x, where=x > 0)), rand(RNG, (3, 4), np.int64))
        compare(*_both(lambda m, x: m.maximum.accumulate(x)), x)
        compare(*_both(lambda m, x, i: m.logaddexp.at(x, i, 1.0, inplace=False)), x, IDX[:3])
        compare(*_both(lambda m, x, i: m.subtract.reduceat(x, i, axis=1)), x, SEGMENTS)


# --------------------------------------------------------------------------- errors

X = np.arange(6, dtype=F32).reshape(2, 3)
XI = np.arange(6, dtype=I32).reshape(2, 3)
ERRORS = {  # case -> (call(m), fungrad's exception type, message fungrad's must match)
    "unary-reduce": (lambda m: m.negative.reduce(X), ValueError,
                     "negative.reduce: reduce only supported for binary ufuncs"),
    "unary-accumulate": (lambda m: m.negative.accumulate(X), ValueError,
                         "accumulate only supported for binary ufuncs"),
    "unary-reduceat": (lambda m: m.negative.reduceat(X, XI[0]), ValueError,
                       "reduceat only supported for binary ufuncs"),
    "unary-outer": (lambda m: m.negative.outer(X, X), ValueError,
                    "negative.outer: outer only supported for binary ufuncs"),
    "reduce-list": (lambda m: m.add.reduce([1, 2]), TypeError,
                    "add.reduce requires ndarray or scalar arguments"),
    "reduce-out": (lambda m: m.add.reduce(X, out=X), NotImplementedError,
                   r"out argument of add.reduce\(\)"),
    "reduce-where-int": (lambda m: m.add.reduce(X, where=XI), ValueError,
                         "where argument must have dtype=bool"),
    "reduce-where-no-identity": (lambda m: m.maximum.reduce(X, where=X > 1), ValueError,
                                 "'maximum' does not have an identity"),
    "reduce-initial-array": (lambda m: m.add.reduce(X, initial=XI[0]), ValueError,
                             "initial value must be a scalar"),
    "reduce-empty": (lambda m: m.subtract.reduce(np.zeros((0,), F32)), ValueError,
                     "zero-size array to reduction operation subtract"),
    "max-reduce-empty": (lambda m: m.maximum.reduce(np.zeros((0,), F32)), ValueError,
                         "zero-size array to reduction operation max"),
    "reduce-tuple": (lambda m: m.subtract.reduce(X, axis=(0, 1)), NotImplementedError,
                     "subtract.reduce: a tuple of axes"),
    "reduce-axis": (lambda m: m.subtract.reduce(X, axis=2), ValueError,
                    "axis 2 is out of bounds"),
    "bitwise-float": (lambda m: m.bitwise_and.reduce(X), ValueError,
                      "integer argument required; got dtype=float32"),
    "accumulate-none": (lambda m: m.subtract.accumulate(X, axis=None), ValueError,
                        "subtract.accumulate: accumulate does not allow multiple axes"),
    "max-accumulate-tuple": (lambda m: m.maximum.accumulate(X, axis=(0,)), ValueError,
                             "maximum.accumulate: accumulate does not allow multiple axes"),
    "accumulate-out": (lambda m: m.add.accumulate(X, out=X), NotImplementedError,
                       r"out argument of add.accumulate\(\)"),
    "at-inplace": (lambda m: m.add.at(X, 0, 1.0), NotImplementedError, "inplace=False"),
    "at-list-index": (lambda m: m.maximum.at(X[0], [0, 1], 1.0, inplace=False), TypeError,
                      "non-tuple sequence"),
    "at-missing-b": (lambda m: m.add.at(X, 0, inplace=False), TypeError,
                     "add.at: add takes 2 input"),
    "at-extra-b": (lambda m: m.negative.at(X, 0, 1.0, inplace=False), TypeError,
                   "negative.at: negative takes 1 input"),
    "reduceat-0d": (lambda m: m.add.reduceat(X[0, 0], XI[0]), ValueError,
                    "add.reduceat: a must have 1 or more dimension"),
    "reduceat-2d-indices": (lambda m: m.add.reduceat(X, XI), ValueError,
                            "indices must be one-dimensional"),
    "reduceat-axis-none": (lambda m: m.add.reduceat(X, XI[0], axis=None), ValueError,
                           "reduceat requires a single integer axis"),
    "reduceat-out": (lambda m: m.add.reduceat(X, XI[0], out=X), NotImplementedError,
                     r"out argument of add.reduceat\(\)"),
    "reduceat-list": (lambda m: m.add.reduceat(X, [0, 1]), TypeError,
                      "add.reduceat requires ndarray or scalar arguments"),
    "outer-list": (lambda m: m.add.outer([1.0], X), TypeError,
                   "add.outer requires ndarray or scalar arguments"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_where_jax_raises(case):
    """fungrad raises where jax raises, with a message naming the method (jax's own
    exception types are not always the intended ones: ``out=`` fails to hash)."""
    call, exc, match = ERRORS[case]
    with pytest.raises(Exception):
        call(jnp_ref)
    with pytest.raises(exc, match=match):
        call(jnp)


def test_no_numpy_warnings(recwarn):
    x = rand(RNG, (3, 4), F32)
    jnp.bitwise_and.reduce(rand(RNG, (3, 4), U8), where=x > 0)
    jnp.logaddexp.reduce(np.full(3, -np.inf, F32))
    jnp.subtract.reduce(x, axis=1)
    jnp.maximum.at(x, (np.array([0, 0]),), np.inf, inplace=False)
    assert not [w for w in recwarn if issubclass(w.category, (RuntimeWarning, UserWarning))]
