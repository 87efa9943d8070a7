"""The IR and its printer, eval_jaxpr, eval_shape, tracer errors, Array basics, pytrees."""
from collections import namedtuple
from dataclasses import dataclass

import jax
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.errors import (ConcretizationTypeError, TracerArrayConversionError,
                            TracerBoolConversionError, UnexpectedTracerError)


def test_make_jaxpr_prints_like_jax():
    f = lambda x: lax.sin(x)
    x = np.ones(3, np.float32)
    assert str(fungrad.make_jaxpr(f)(x)) == str(jax.make_jaxpr(jax.lax.sin)(x))
    assert str(fungrad.make_jaxpr(f)(x)) == "{ lambda ; a:f32[3]. let b:f32[3] = sin a in (b,) }"


def test_make_jaxpr_literals_and_multiline_match_jax():
    x = np.ones(3, np.float32)
    assert str(fungrad.make_jaxpr(lambda x: x * 2.0 + 1)(x)) \
        == str(jax.make_jaxpr(lambda x: x * 2.0 + 1)(x))


def test_make_jaxpr_closure_constants_become_constvars():
    c = jnp.asarray(np.arange(3, dtype=np.float32))
    closed = fungrad.make_jaxpr(lambda x: lax.mul(x, c))(np.ones(3, np.float32))
    assert len(closed.jaxpr.constvars) == 1 and closed.consts[0] is c
    assert str(closed).startswith("{ lambda a:f32[3]; b:f32[3]. let")


def test_make_jaxpr_pytrees_and_static_values():
    def f(d, n):
        return {"y": lax.mul(d["a"], d["b"]), "n": n}
    closed, shapes = fungrad.make_jaxpr(f, static_argnums=1, return_shape=True)(
        {"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)}, 3)
    assert [v.aval.shape for v in closed.jaxpr.invars] == [(2,), (2,)]
    assert shapes["y"].shape == (2,) and shapes["n"].shape == ()


def test_eval_jaxpr_roundtrip():
    f = lambda x, y: lax.add(lax.sin(x), lax.mul(x, y))
    x, y = np.linspace(0, 1, 4, dtype=np.float32), np.full(4, 3.0, np.float32)
    closed = fungrad.make_jaxpr(f)(x, y)
    (out,) = fungrad._core.core.eval_jaxpr(closed.jaxpr, closed.consts, jnp.asarray(x),
                                           jnp.asarray(y))
    np.testing.assert_allclose(np.asarray(out), np.sin(x) + x * y, rtol=1e-6)


def test_binding_python_scalars_alone_gives_jaxs_weak_dtypes():
    """A primitive bound to Python scalars alone (as ``eval_jaxpr`` and
    ``closure_convert`` bind a body's scalar constants) computes in the weak canonical
    dtype, as JAX's eager dispatch does; NumPy alone would compute in float64 or int64.
    Mixed with arrays, the scalars stay weak."""
    cases = [(lax.neg_p, (2.0,)), (lax.add_p, (2, 3)), (lax.mul_p, (1.5, 2.5)),
             (lax.exp_p, (0.5,)), (lax.mul_p, (2.0, np.ones(2, np.float32)))]
    for fungrad_prim, args in cases:
        got = fungrad_prim.bind(*args)
        want = getattr(jax.lax, fungrad_prim.name + "_p").bind(*args)
        assert (got.dtype, got.weak_type) == (want.dtype, want.weak_type), fungrad_prim
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_eval_shape_does_not_compute():
    calls = []

    def f(x):
        calls.append(type(x).__name__)
        return lax.reduce_sum(lax.mul(x, x), (0,))
    out = fungrad.eval_shape(f, fungrad.ShapeDtypeStruct((5, 3), np.float32))
    assert out.shape == (3,) and out.dtype == np.float32
    assert calls == ["JaxprTracer"]


def test_bool_of_tracer_raises_with_advice():
    def f(x):
        if lax.gt(x, 0.0):
            return x
        return -x
    with pytest.raises(TracerBoolConversionError, match="lax.cond"):
        fungrad.make_jaxpr(f)(1.0)
    with pytest.raises(ConcretizationTypeError):
        fungrad.vmap(f)(np.ones(3, np.float32))


def test_bool_of_tracer_under_grad_is_concrete():
    def f(x):
        return lax.mul(x, x) if lax.gt(x, 0.0) else lax.neg(x)
    assert float(fungrad.grad(f)(3.0)) == 6.0
    assert float(fungrad.grad(f)(-3.0)) == -1.0


def test_tracer_to_numpy_raises():
    with pytest.raises(TracerArrayConversionError, match="fungrad.numpy"):
        fungrad.make_jaxpr(lambda x: np.asarray(x))(np.ones(2, np.float32))


def test_escaped_tracer_is_reported():
    leaked = []

    def f(x):
        leaked.append(x)
        return lax.sin(x)
    fungrad.grad(f)(1.0)
    with pytest.raises(UnexpectedTracerError, match="escaped tracer"):
        lax.sin(leaked[0])
    fungrad.make_jaxpr(f)(1.0)
    with pytest.raises(UnexpectedTracerError):
        fungrad.vmap(lambda y: lax.add(y, leaked[-1]))(np.ones(2, np.float32))


def test_shape_error_names_primitive_and_shapes():
    with pytest.raises(TypeError,
                       match=r"add got incompatible shapes for broadcasting: \(3,\), \(4,\)"):
        lax.add(jnp.asarray(np.ones(3, np.float32)), jnp.asarray(np.ones(4, np.float32)))
    with pytest.raises(TypeError, match="add got incompatible shapes"):
        fungrad.make_jaxpr(lax.add)(np.ones(3, np.float32), np.ones(4, np.float32))


def test_dtype_error_names_primitive_and_dtypes():
    with pytest.raises(TypeError,
                       match="add requires arguments to have the same dtypes, got float32, int32"):
        fungrad.make_jaxpr(lax.add)(np.ones(3, np.float32), np.ones(3, np.int32))
    with pytest.raises(TypeError, match="sin does not accept dtype int32"):
        fungrad.make_jaxpr(lax.sin)(np.ones(3, np.int32))


def test_array_is_immutable_and_converts_to_numpy():
    x = jnp.asarray(np.arange(4, dtype=np.float32))
    view = np.asarray(x)
    with pytest.raises(ValueError):
        view[0] = 10.0
    assert np.asarray(x)[0] == 0.0
    with pytest.raises(TypeError, match="unhashable"):
        hash(x)


def test_array_attributes():
    x = jnp.asarray(np.ones((2, 3), np.float32))
    assert (x.shape, x.ndim, x.size, x.dtype) == ((2, 3), 2, 6, np.float32)
    assert x.device == fungrad.devices()[0]
    assert repr(fungrad.devices()[0]) == "CpuDevice(id=0)"
    assert float(jnp.asarray(2.5)) == 2.5 and int(jnp.asarray(3)) == 3
    assert jnp.asarray(np.ones((2, 2))).tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_tracers_have_an_arrays_size_attributes():
    """``nbytes``/``itemsize`` are static under ``jit`` and ``vmap``, as jax's."""
    sizes = lambda v: (v.size, v.nbytes, v.itemsize)  # noqa: E731
    x = np.ones((2, 3), np.float32)
    for transform, ref in ((fungrad.jit, jax.jit), (fungrad.vmap, jax.vmap)):
        seen, ref_seen = [], []
        transform(lambda v: seen.append(sizes(v)) or v)(x)
        ref(lambda v: ref_seen.append(sizes(v)) or v)(x)
        assert seen == ref_seen


def test_device_put_tree():
    out = fungrad.device_put({"a": np.ones(2), "b": 3})
    assert isinstance(out["a"], fungrad.Array) and out["a"].dtype == np.float32
    assert out["b"].weak_type and out["b"].dtype == np.int32


Point = namedtuple("Point", ["x", "y"])


@dataclass
class Pair:
    first: object
    second: object
    name: str = "pair"


def test_tree_basics():
    t = {"b": (1, None, [2, 3]), "a": Point(4, 5)}
    leaves, treedef = tree.flatten(t)
    assert leaves == [4, 5, 1, 2, 3]  # dict keys sorted, None has no leaves
    assert tree.unflatten(treedef, leaves) == t
    assert tree.map(lambda a, b: a + b, t, t)["b"][2] == [4, 6]
    assert tree.reduce(lambda a, b: a + b, t) == 15
    assert tree.all({"a": True, "b": [1, 2]}) and not tree.all([1, 0])
    assert tree.leaves([None, None]) == []


def test_tree_register_dataclass_and_use_in_grad():
    tree.register_dataclass(Pair, data_fields=["first", "second"], meta_fields=["name"])
    p = Pair(2.0, 3.0, "p")
    assert tree.leaves(p) == [2.0, 3.0]
    g = fungrad.grad(lambda p: lax.mul(p.first, p.second))(p)
    assert isinstance(g, Pair) and g.name == "p"
    assert (float(g.first), float(g.second)) == (3.0, 2.0)


def test_broadcast_prefix_error():
    with pytest.raises(ValueError, match="must be a tree prefix of the arguments"):
        tree.broadcast_prefix((0, 0), (1,))
