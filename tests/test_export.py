"""fungrad.export: export, call, and the serialized format's exact round trip and its errors."""
import json
import struct
from typing import NamedTuple

import jax
import jax.export
import jax.numpy as jnp_jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import fungrad.random as jr
from fungrad import export, lax, tree

S = fungrad.ShapeDtypeStruct
RNG = np.random.default_rng(0)


def bits_equal(a, b):
    """Same dtype, shape and bytes for every leaf (NaNs included)."""
    la, lb = tree.leaves(a), tree.leaves(b)
    assert tree.structure(a) == tree.structure(b)
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def roundtrip(f, *args, **kwargs):
    """Export ``jit(f)``, serialize, deserialize; both calls equal ``jit(f)`` bit for bit."""
    fj = fungrad.jit(f)
    exp = export.export(fj)(*args, **kwargs)
    back = export.deserialize(exp.serialize())
    want = fj(*args, **kwargs)
    bits_equal(exp.call(*args, **kwargs), want)
    bits_equal(back.call(*args, **kwargs), want)
    assert back.fun_name == exp.fun_name and back.in_tree == exp.in_tree
    assert back.out_tree == exp.out_tree and back.in_avals == exp.in_avals
    assert back.out_avals == exp.out_avals and back.platforms == exp.platforms
    return exp, back


def mlp(params, x):
    for w, b in params:
        x = jnp.maximum(x @ w + b, 0.0)
    return jnp.sum(x ** 2)


MLP_PARAMS = [(RNG.normal(size=(3, 4)).astype(np.float32), np.zeros(4, np.float32)),
              (RNG.normal(size=(4, 2)).astype(np.float32), np.ones(2, np.float32))]
X = RNG.normal(size=(5, 3)).astype(np.float32)
CONST = RNG.normal(size=(3,)).astype(np.float32)


def conv(x, k):
    return lax.conv_general_dilated(x, k, (1, 1), "SAME", rhs_dilation=(1, 2))


def sampling(key):
    k1, k2 = jr.split(key)
    return (jr.normal(k1, (3,)), jr.uniform(k2, (2,), dtype=jnp.bfloat16),
            jr.randint(key, (4,), 0, 9), jr.split(k1))


PROGRAMS = {
    "mlp_forward": (mlp, (MLP_PARAMS, X)),
    "mlp_grad": (fungrad.grad(mlp), (MLP_PARAMS, X)),
    "cond": (lambda x: lax.cond(x.sum() > 0, jnp.sin, jnp.cos, x), (X,)),
    "scan": (lambda x: lax.scan(lambda c, y: (c * 0.5 + y, c * y), jnp.zeros(3), x), (X,)),
    "while": (lambda x: lax.while_loop(lambda c: c[0] < 10, lambda c: (c[0] + 1, c[1] * 1.5),
                                       (0, x)), (X,)),
    "fori": (lambda x: lax.fori_loop(0, 4, lambda i, c: c * i + 1.0, x), (X,)),
    "indexing": (lambda x, i: (x[i], x.at[i].add(1.0), x[:, 1:3], x[1, ::-1],
                               x.at[i, 0].set(-1.0, mode="drop")), (X, np.array([3, 0, 9]))),
    "conv": (conv, (RNG.normal(size=(1, 2, 6, 6)).astype(np.float32),
                    RNG.normal(size=(3, 2, 3, 3)).astype(np.float32))),
    "reductions": (lambda x: (x.max(0), x.argmax(1), jnp.cumsum(x, 0), x.mean(), jnp.sort(x, 1),
                              jnp.prod(x, 1), jnp.any(x > 1)), (X,)),
    "dot_precision": (lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ())),
                                                   precision=lax.Precision.HIGHEST), (X, X.T)),
    "random": (sampling, (jr.key(0),)),
    "raw_key": (lambda k: jr.normal(k, (3,)), (jr.PRNGKey(1),)),
    "dtypes": (lambda a, b, c: (a * 2 + 1, b / 3, c // 3, (a.astype(jnp.float32) + b).astype(
        jnp.int8)), (X.astype(ml_dtypes.bfloat16), X.astype(np.float16),
                     (X * 20).astype(np.int8))),
    "pytrees": (lambda d, t: {"sum": d["a"] + t[0], "pair": (d["b"] * t[1], None)},
                ({"a": X, "b": X[0]}, (X, np.float32(2)))),
    "closure_const": (lambda x: x * CONST + np.arange(3.0, dtype=np.float32), (X,)),
    "python_scalars": (lambda x, s: x * s + 2.5, (X, 3.0)),
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_round_trip_exact(name):
    f, args = PROGRAMS[name]
    roundtrip(f, *args)


def test_specs_and_kwargs():
    fj = fungrad.jit(lambda x, *, y: x @ y)
    exp = export.export(fj)(S((2, 3), np.float32), y=S((3, 4), np.float32))
    back = export.deserialize(exp.serialize())
    a, b = RNG.normal(size=(2, 3)).astype(np.float32), RNG.normal(size=(3, 4)).astype(np.float32)
    bits_equal(back.call(a, y=b), fj(a, y=b))
    assert [v.shape for v in exp.out_avals] == [(2, 4)]


def test_random_outputs_are_keys():
    _, back = roundtrip(sampling, jr.key(3))
    assert isinstance(back.call(jr.key(3))[3], type(jr.key(0)))


def test_attributes_match_jax():
    def f(d, x):
        return {"y": jnp.sin(d["a"]) * x, "n": (d["b"].sum(), d["a"].astype(jnp.int32))}
    args = ({"a": X, "b": X[0]}, np.float32(3))
    exp = export.export(fungrad.jit(f))(*args)

    def g(d, x):
        return {"y": jnp_jax.sin(d["a"]) * x, "n": (d["b"].sum(), d["a"].astype(jnp_jax.int32))}
    ref = jax.export.export(jax.jit(g))(*args)
    assert exp.fun_name == "f" and ref.fun_name == "g"
    assert [(a.shape, a.dtype) for a in exp.in_avals] == [(a.shape, a.dtype) for a in ref.in_avals]
    assert [(a.shape, a.dtype) for a in exp.out_avals] == \
        [(a.shape, a.dtype) for a in ref.out_avals]
    zeros = list(range(exp.in_tree.num_leaves))
    assert tree.unflatten(exp.in_tree, zeros) == ref.in_tree.unflatten(zeros)
    zeros = list(range(exp.out_tree.num_leaves))
    assert tree.unflatten(exp.out_tree, zeros) == ref.out_tree.unflatten(zeros)
    ref_sin = jax.export.export(jax.jit(jnp_jax.sin))(X)
    assert export.export(fungrad.jit(jnp.sin))(X).fun_name == ref_sin.fun_name


def test_call_under_transformations():
    back = export.deserialize(export.export(fungrad.jit(mlp))(MLP_PARAMS, X).serialize())
    g = fungrad.jit(fungrad.grad(back.call))(MLP_PARAMS, X)
    bits_equal(g, fungrad.jit(fungrad.grad(mlp))(MLP_PARAMS, X))
    bits_equal(fungrad.jit(back.call)(MLP_PARAMS, X), fungrad.jit(mlp)(MLP_PARAMS, X))
    row = export.deserialize(export.export(fungrad.jit(lambda x: jnp.tanh(x) * 2))(
        X[0]).serialize())
    batched = fungrad.vmap(row.call)(X)
    np.testing.assert_allclose(batched, np.stack([row.call(x) for x in X]), rtol=1e-6)
    assert back.has_vjp()
    vjp = export.deserialize(back.vjp().serialize())
    cts = vjp.call(*tree.leaves((MLP_PARAMS, X)), np.float32(1.0))  # flat, as in jax
    for c, w in zip(cts, tree.leaves(g)):
        np.testing.assert_allclose(c, w, rtol=1e-6)


def test_call_checks_arguments():
    exp = export.export(fungrad.jit(jnp.sin))(X)
    with pytest.raises(ValueError, match="pytree structure"):
        exp.call(X, X)
    with pytest.raises(ValueError, match="f32\\[5,3\\]"):
        exp.call(X[0])
    cpu_only = export.export(fungrad.jit(jnp.sin), platforms=["cuda"])(X)
    if export.default_export_platform() == "cpu":
        with pytest.raises(ValueError, match="exported for platforms"):
            cpu_only.call(X)
    relaxed = export.export(fungrad.jit(jnp.sin), platforms=["cuda"],
                            disabled_checks=[export.DisabledSafetyCheck.platform()])(X)
    bits_equal(export.deserialize(relaxed.serialize()).call(X), jnp.sin(X))
    with pytest.raises(ValueError, match="unsupported platforms"):
        export.export(fungrad.jit(jnp.sin), platforms=["tpu"])
    with pytest.raises(ValueError, match="result of `jit`"):
        export.export(jnp.sin)


def test_mlir_module_is_the_jaxpr():
    exp = export.export(fungrad.jit(lambda x: jnp.sin(x) + 1))(X)
    text = exp.mlir_module()
    assert "sin" in text and "f32[5,3]" in text
    assert export.deserialize(exp.serialize()).mlir_module() == text


def _blob():
    return export.export(fungrad.jit(lambda x: jnp.sin(x) * 2.0))(X).serialize()


def _edit_header(blob, edit):
    magic, version, n = struct.unpack_from("<8sIQ", blob)
    header = json.loads(bytes(blob[20:20 + n]))
    edit(header)
    text = json.dumps(header).encode()
    return struct.pack("<8sIQ", magic, version, len(text)) + text + bytes(blob[20 + n:])


@pytest.mark.parametrize("data", [b"", b"garbage", b"FGEXPORT" + b"\0" * 12,
                                  bytes(_blob()[:40]), bytes(_blob())[:-3]])
def test_deserialize_rejects_garbage(data):
    with pytest.raises(export.ExportDeserializationError):
        export.deserialize(data)


def test_deserialize_rejects_random_corruption():
    blob = bytes(_blob())
    for i in range(20, min(len(blob), 400), 7):  # flip header bytes: a clear error or a value
        bad = bytearray(blob)
        bad[i] ^= 0x5A
        try:
            export.deserialize(bytes(bad))
        except export.ExportDeserializationError:
            pass


def test_deserialize_rejects_other_version():
    blob = bytearray(_blob())
    blob[8:12] = struct.pack("<I", export.FORMAT_VERSION + 1)
    with pytest.raises(export.ExportDeserializationError, match="version"):
        export.deserialize(blob)


def test_deserialize_rejects_unknown_primitive():
    def rename(h):
        h["jaxpr"][1]["eqns"][0][0] = "no_such_primitive"
    with pytest.raises(export.ExportDeserializationError, match="no_such_primitive"):
        export.deserialize(_edit_header(_blob(), rename))


def test_deserialize_rejects_unknown_class_and_bad_types():
    def bad_class(h):
        h["jaxpr"][1]["eqns"][0][3] = [["p", ["enum", "os.system", "x"]]]
    with pytest.raises(export.ExportDeserializationError, match="unknown class"):
        export.deserialize(_edit_header(_blob(), bad_class))

    def bad_shape(h):
        h["jaxpr"][1]["vars"][-1] = ["aval", [7], "float32", False]
    with pytest.raises(export.ExportDeserializationError):
        export.deserialize(_edit_header(_blob(), bad_shape))

    def missing(h):
        del h["in_tree"]
    with pytest.raises(export.ExportDeserializationError, match="corrupted"):
        export.deserialize(_edit_header(_blob(), missing))


def test_custom_rules_serialize_as_their_primal_and_refuse_derivatives():
    def model(x):  # nn.softmax and nn.gelu carry custom_jvp rules
        return jnp.sum(fungrad.nn.softmax(fungrad.nn.gelu(x)) * x)
    exp = export.export(fungrad.jit(model))(X)
    back = export.deserialize(exp.serialize())
    bits_equal(back.call(X), fungrad.jit(model)(X))
    bits_equal(fungrad.vmap(back.call)(jnp.stack([X, 2 * X])),
               fungrad.vmap(fungrad.jit(model))(jnp.stack([X, 2 * X])))
    bits_equal(fungrad.grad(exp.call)(X), fungrad.jit(fungrad.grad(model))(X))  # in memory
    with pytest.raises(ValueError, match="custom derivative rules"):
        fungrad.grad(back.call)(X)
    grad_back = export.deserialize(export.export(fungrad.jit(fungrad.grad(model)))(X).serialize())
    bits_equal(grad_back.call(X), fungrad.jit(fungrad.grad(model))(X))


def test_serialize_refuses_callables():
    def f(x):
        return fungrad.pure_callback(np.sin, fungrad.ShapeDtypeStruct(x.shape, x.dtype), x)
    exp = export.export(fungrad.jit(f))(X)
    with pytest.raises(export.ExportSerializationError, match="callback") as e:
        exp.serialize()
    assert "parameter" in str(e.value)
    bits_equal(exp.call(X), fungrad.jit(f)(X))  # still callable


def test_unregistered_pytree_nodes():
    class Pair(NamedTuple):
        a: object
        b: object
    exp = export.export(fungrad.jit(lambda p: p.a + p.b))(Pair(X, X))
    with pytest.raises(export.ExportSerializationError, match="Pair"):
        exp.serialize()
    export.register_namedtuple_serialization(Pair, serialized_name="test_export.Pair")
    back = export.deserialize(exp.serialize())
    bits_equal(back.call(Pair(X, X)), X + X)


def test_no_symbolic_shapes():
    with pytest.raises(NotImplementedError, match="symbolic"):
        export.symbolic_shape("b, 3")
    with pytest.raises(NotImplementedError, match="symbolic"):
        export.symbolic_args_specs((X,), "b, ...")
    assert not export.is_symbolic_dim(3)
    assert export.minimum_supported_calling_convention_version <= \
        export.maximum_supported_calling_convention_version == export.FORMAT_VERSION
