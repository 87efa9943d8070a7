"""The namespaces closed against JAX's: ``experimental.pjit``/``mesh_utils``/
``multihost_utils``/``compilation_cache``, ``monitoring`` (and the events ``jit`` records),
the block-scaled matmuls (``nn.scaled_matmul``, ``nn.scaled_dot_general``,
``lax.scaled_dot``) and ``sharding.reshard``/``use_abstract_mesh``/... — each against jax on
the same inputs.

jax computes ``scaled_matmul`` only with cuDNN (its CPU path raises ``NotImplementedError``):
the reference is jax's documented formula, and for ``scaled_dot_general`` jax's own code
(quantization, custom VJP) with that formula in place of the cuDNN call."""
from __future__ import annotations

import warnings

import jax
import jax._src.cudnn.scaled_matmul_stablehlo as jax_scaled
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest
from jax.experimental import mesh_utils as jax_mesh_utils
from jax.experimental import multihost_utils as jax_multihost

import fungrad
import fungrad.numpy as jnp
from fungrad import lax, monitoring
from fungrad.experimental import mesh_utils, multihost_utils
from fungrad.experimental.compilation_cache import compilation_cache
from fungrad.experimental.pjit import pjit
from fungrad.sharding import (AbstractMesh, NamedSharding, PartitionSpec as P, auto_axes,
                              explicit_axes, get_abstract_mesh, make_mesh,
                              make_single_device_sharding, reshard, set_mesh,
                              use_abstract_mesh)
from tests.harness import GRAD_TOL, TOL, assert_same, to_jax

F8, E8M0 = ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e8m0fnu


# --------------------------------------------------------------------------- experimental

def test_pjit_is_jit_with_deprecation():
    with pytest.warns(DeprecationWarning, match="pjit"):
        f = pjit(lambda x, n: x * n, static_argnums=1, donate_argnums=None)
    assert_same(f(np.arange(3.0, dtype=np.float32), 2), jnp_ref.arange(3.0) * 2)


def test_mesh_utils_against_jax():
    for shape in [(1,), (1, 1)]:
        ours, ref = mesh_utils.create_device_mesh(shape), jax_mesh_utils.create_device_mesh(shape)
        assert ours.shape == ref.shape and ours.dtype == object
        assert [d.id for d in ours.flat] == [d.id for d in ref.flat]
    hybrid = mesh_utils.create_hybrid_device_mesh((1,), (1,), process_is_granule=True)
    assert hybrid.shape == jax_mesh_utils.create_hybrid_device_mesh(
        (1,), (1,), process_is_granule=True).shape
    for ours_fn, ref_fn in [(mesh_utils.create_device_mesh, jax_mesh_utils.create_device_mesh)]:
        with pytest.raises(ValueError, match="must equal the product") as e:
            ours_fn((2, 3))
        with pytest.raises(ValueError, match="must equal the product"):
            ref_fn((2, 3))
        assert "mesh_shape (2, 3)" in str(e.value)
    with pytest.raises(ValueError, match="slice_index"):
        mesh_utils.create_hybrid_device_mesh((1,), (1,))
    with pytest.raises(ValueError, match="create_device_mesh"):
        mesh_utils.create_device_mesh(("a",))
    assert mesh_utils.device_kind_handler_dict == {}


def test_multihost_utils_single_process_against_jax():
    tree = {"a": np.arange(6.0, dtype=np.float32).reshape(2, 3), "b": np.float32(3.0)}
    for tiled in (False, True):
        ours = multihost_utils.process_allgather(tree, tiled=tiled)
        ref = jax_multihost.process_allgather(tree, tiled=tiled)
        for k in tree:
            assert type(ours[k]) is np.ndarray
            np.testing.assert_array_equal(ours[k], ref[k])
            assert ours[k].shape == ref[k].shape
    out = multihost_utils.broadcast_one_to_all(tree)
    assert type(out["a"]) is np.ndarray and out["b"].shape == ()
    assert multihost_utils.sync_global_devices("step") is None
    assert multihost_utils.assert_equal(tree, "same") is None
    assert multihost_utils.reached_preemption_sync_point(3) is \
        jax_multihost.reached_preemption_sync_point(3)
    mesh, jmesh = make_mesh((1,), ("x",)), jax.make_mesh((1,), ("x",))
    x = multihost_utils.host_local_array_to_global_array({"w": np.ones((2, 3))}, mesh, P("x"))
    ref = jax_multihost.host_local_array_to_global_array({"w": np.ones((2, 3))}, jmesh,
                                                         jax.P("x"))
    assert_same(x, ref)
    assert x["w"].committed
    back = multihost_utils.global_array_to_host_local_array(x, mesh, P("x"))
    assert_same(back, ref)
    with pytest.raises(ValueError, match="rank"):
        multihost_utils.host_local_array_to_global_array(np.ones(3), mesh, P("x", None))
    with pytest.raises(TypeError, match="global_array_to_host_local_array: global_mesh"):
        multihost_utils.global_array_to_host_local_array(x, "mesh", P("x"))


def test_compilation_cache_accepts_and_reports_no_cache(tmp_path):
    compilation_cache.set_cache_dir(tmp_path)
    assert fungrad.jit(lambda x: x + 1)(1.0) == 2.0
    assert not compilation_cache.is_initialized() and list(tmp_path.iterdir()) == []
    compilation_cache.reset_cache()


# --------------------------------------------------------------------------- monitoring

def test_monitoring_listeners_and_jit_events():
    events, durations, spans, scalars = [], [], [], []
    listeners = [(monitoring.register_event_listener, monitoring.unregister_event_listener,
                  lambda e, **kw: events.append((e, kw))),
                 (monitoring.register_event_duration_secs_listener,
                  monitoring.unregister_event_duration_listener,
                  lambda e, d, **kw: durations.append((e, d, kw))),
                 (monitoring.register_event_time_span_listener,
                  monitoring.unregister_event_time_span_listener,
                  lambda e, s, t, **kw: spans.append((e, t - s, kw))),
                 (monitoring.register_scalar_listener, monitoring.unregister_scalar_listener,
                  lambda e, v, **kw: scalars.append((e, kw)))]
    for register, _, cb in listeners:
        register(cb)
    try:
        monitoring.record_event("/app/step", epoch=1)
        monitoring.record_event_duration_secs("/app/step", 0.5, epoch=1)
        assert events == [("/app/step", {"epoch": 1})]
        assert durations == [("/app/step", 0.5, {"epoch": 1})]

        def my_fn(x):
            return x * 2
        f = fungrad.jit(my_fn)
        f(jnp.ones(3))
        f(jnp.ones(3))  # a cache hit records nothing
        compile_events = [(e, kw["fun_name"]) for e, d, kw in durations[1:]]
        assert compile_events == [("/jax/core/compile/jaxpr_trace_duration", "my_fn"),
                                  ("/jax/core/compile/backend_compile_duration", "jit(my_fn)")]
        assert all(d >= 0 for _, d, _ in durations) and len(spans) == 2 and len(scalars) == 2
    finally:
        for _, unregister, cb in listeners:
            unregister(cb)
    with pytest.raises(ValueError, match="unregister_event_listener"):
        monitoring.unregister_event_listener(print)
    # jax records the same two events (with jaxpr_to_mlir_module in between) for one jit
    seen = []
    cb = lambda e, d, **kw: seen.append(e)  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(cb)
    try:
        jax.jit(lambda x: x * 3)(np.ones(2, np.float32))
    finally:
        jax.monitoring.unregister_event_duration_listener(cb)
    assert {e for e, _ in compile_events} <= set(seen)
    assert set(monitoring.__all__) >= {n for n in dir(jax.monitoring) if not n.startswith("_")}


# --------------------------------------------------------------------------- scaled matmuls

def _ref_scaled_matmul(a, b, a_scales, b_scales, preferred_element_type=np.float32):
    """jax's documented meaning of scaled_matmul (what cuDNN computes), with jax."""
    def dequantize(x, s):
        bsz, rows, k = x.shape
        blocks = s.shape[-1]
        x = x.astype(np.float32).reshape(bsz, rows, blocks, k // blocks)
        return (x * s.astype(np.float32)[..., None]).reshape(bsz, rows, k)
    out = jnp_ref.einsum("bmk,bnk->bmn", dequantize(a, a_scales), dequantize(b, b_scales),
                         preferred_element_type=np.float32)
    return out.astype(preferred_element_type)


@pytest.fixture
def jax_scaled_on_cpu(monkeypatch):
    """jax's scaled_dot_general with the cuDNN call replaced by its documented formula."""
    monkeypatch.setattr(jax_scaled, "scaled_matmul_wrapper", _ref_scaled_matmul)


def _block_inputs(rng, b, m, n, k, block):
    a = rng.normal(size=(b, m, k)).astype(F8)
    bb = rng.normal(size=(b, n, k)).astype(F8)
    sa = np.exp2(rng.integers(-4, 4, size=(b, m, k // block))).astype(E8M0)
    sb = np.exp2(rng.integers(-4, 4, size=(b, n, k // block))).astype(E8M0)
    return a, bb, sa, sb


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float16])
def test_scaled_matmul_values(dtype):
    rng = np.random.default_rng(0)
    args = _block_inputs(rng, 2, 3, 4, 64, 32)
    out = fungrad.nn.scaled_matmul(*args, preferred_element_type=dtype)
    assert_same(out, _ref_scaled_matmul(*to_jax(args), preferred_element_type=dtype))
    jitted = fungrad.jit(lambda *x: fungrad.nn.scaled_matmul(*x, preferred_element_type=dtype))
    assert_same(jitted(*args), out)
    # vmap over a leading axis, as jax's batching rule folds it into B
    stacked = [np.stack([x, x]) for x in args]
    assert_same(fungrad.vmap(fungrad.nn.scaled_matmul)(*stacked)[1],
                _ref_scaled_matmul(*to_jax(args)))
    # the example of jax's docstring
    a, b = jnp.array([1, 2, 3]).reshape((1, 1, 3)), jnp.array([4, 5, 6]).reshape((1, 1, 3))
    s = jnp.array([0.5]).reshape((1, 1, 1))
    assert_same(fungrad.nn.scaled_matmul(a, b, s, s), np.full((1, 1, 1), 8.0, np.float32))


def test_scaled_matmul_gradient():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3, 8)).astype(np.float32), rng.normal(size=(2, 4, 8))
    sa, sb = rng.uniform(0.5, 2, (2, 3, 2)), rng.uniform(0.5, 2, (2, 4, 2))
    args = [x.astype(np.float32) for x in (a, b, sa, sb)]
    ours = fungrad.grad(lambda *x: (fungrad.nn.scaled_matmul(*x) ** 2).sum(), (0, 1, 2, 3))(*args)
    ref = jax.grad(lambda *x: (_ref_scaled_matmul(*x) ** 2).sum(), (0, 1, 2, 3))(*to_jax(args))
    assert_same(ours, ref, table=GRAD_TOL)


def test_scaled_matmul_errors_match_jax():
    ones = np.ones
    cases = [(ones((2, 3)), ones((1, 2, 3)), ones((1, 2, 1)), ones((1, 2, 1))),
             (ones((1, 2, 4)), ones((1, 2, 6)), ones((1, 2, 1)), ones((1, 2, 1))),
             (ones((1, 2, 4)), ones((1, 2, 4)), ones((1, 2, 1)), ones((1, 2, 2))),
             (ones((1, 2, 4)), ones((1, 3, 4)), ones((1, 2, 1)), ones((1, 2, 1)))]
    for args in cases:
        with pytest.raises(ValueError) as ours:
            fungrad.nn.scaled_matmul(*args)
        with pytest.raises(ValueError) as ref:
            jax.nn.scaled_matmul(*to_jax(args))
        assert str(ours.value) == str(ref.value)
        assert "scaled_matmul" in str(ours.value)


@pytest.mark.parametrize("mode", ["mxfp8", "nvfp4"])
@pytest.mark.parametrize("dnums,lhs_shape,rhs_shape", [
    ((((2,), (1,)), ((0,), (0,))), (2, 32, 64), (2, 64, 32)),
    ((((1,), (1,)), ((), ())), (32, 64), (64, 64)),
])
def test_scaled_dot_general_against_jax(jax_scaled_on_cpu, mode, dnums, lhs_shape, rhs_shape):
    rng = np.random.default_rng(2)
    lhs = rng.normal(size=lhs_shape).astype(np.float32)
    rhs = rng.normal(size=rhs_shape).astype(np.float32)
    ours_cfg = [fungrad.nn.get_scaled_dot_general_config(mode)] * 3
    ref_cfg = [jax.nn.get_scaled_dot_general_config(mode)] * 3
    for ours, ref in zip(ours_cfg[0].__slots__, ref_cfg[0].__slots__):
        assert ours == ref
    assert ours_cfg[0].block_size == ref_cfg[0].block_size
    assert np.dtype(ours_cfg[0].data_type) == np.dtype(ref_cfg[0].data_type)
    assert np.dtype(ours_cfg[0].scale_type) == np.dtype(ref_cfg[0].scale_type)

    def loss(sdg, cfg):
        return lambda x, y: (sdg(x, y, dnums, configs=cfg) ** 2).sum()
    out = fungrad.nn.scaled_dot_general(lhs, rhs, dnums, configs=ours_cfg)
    # jax's references jitted: one compilation instead of one per operation
    ref = jax.jit(lambda x, y: jax.nn.scaled_dot_general(x, y, dnums, configs=ref_cfg))(
        *to_jax((lhs, rhs)))
    assert_same(out, ref)
    grads = fungrad.grad(loss(fungrad.nn.scaled_dot_general, ours_cfg), (0, 1))(lhs, rhs)
    ref_grads = jax.jit(jax.grad(loss(jax.nn.scaled_dot_general, ref_cfg), (0, 1)))(
        *to_jax((lhs, rhs)))
    scale = max(float(np.abs(g).max()) for g in ref_grads)
    assert_same(grads, ref_grads, atol=scale * TOL[np.dtype(np.float32)][0] * 10)


def test_scaled_dot_general_without_configs_and_errors():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    dn = (((1,), (1,)), ((), ()))
    assert_same(fungrad.nn.scaled_dot_general(x, x, dn), jax.nn.scaled_dot_general(
        *to_jax((x, x)), dn))
    cfg = [fungrad.nn.get_scaled_dot_general_config("mxfp8")] * 3
    with pytest.raises(TypeError, match="scaled_dot_general: preferred_element_type"):
        fungrad.nn.scaled_dot_general(x, x, dn, preferred_element_type=np.int32, configs=cfg)
    with pytest.raises(ValueError, match="scaled_dot_general: .* blocks of 32"):
        fungrad.nn.scaled_dot_general(x, x, dn, configs=cfg)
    with pytest.raises(ValueError, match="get_scaled_dot_general_config"):
        fungrad.nn.get_scaled_dot_general_config("int8")
    with pytest.warns(DeprecationWarning):
        fungrad.nn.scaled_dot_general(x, x, dn, implementation="cudnn")


@pytest.mark.parametrize("pet", [None, np.float32])
def test_lax_scaled_dot_against_jax(pet):
    rng = np.random.default_rng(3)
    lhs = rng.normal(size=(2, 3, 64)).astype(F8)
    rhs = rng.normal(size=(2, 64, 5)).astype(F8)
    scales = dict(lhs_scale=np.exp2(rng.integers(-3, 3, (2, 3, 2))).astype(E8M0),
                  rhs_scale=np.exp2(rng.integers(-3, 3, (2, 2, 5))).astype(E8M0))
    kw = dict(scales, preferred_element_type=pet)
    ref = jax.lax.scaled_dot(*to_jax((lhs, rhs)), **to_jax(scales), preferred_element_type=pet)
    assert_same(lax.scaled_dot(lhs, rhs, **kw), ref)
    assert_same(fungrad.jit(lambda a, b: lax.scaled_dot(a, b, **kw))(lhs, rhs), ref)
    # default scales (ones over each whole contracting dimension), float32 operands
    x, y = rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32)
    assert_same(lax.scaled_dot(x, y), jax.lax.scaled_dot(*to_jax((x, y))))
    dn = (((0,), (0,)), ((), ()))
    assert_same(lax.scaled_dot(x.T, y, dimension_numbers=dn, preferred_element_type=np.float32),
                jax.lax.scaled_dot(*to_jax((x.T, y)), dimension_numbers=dn,
                                   preferred_element_type=np.float32))


def test_lax_scaled_dot_errors_match_jax():
    x = np.ones((2, 8), np.float32)
    cases = [dict(lhs_scale=np.ones((2, 3), E8M0)), dict(lhs_scale=np.ones((2, 8), E8M0)),
             dict(lhs_scale=np.ones((3, 1), E8M0)), dict(lhs_scale=np.ones((2,), E8M0))]
    for kw in cases:
        with pytest.raises(TypeError) as ours:
            lax.scaled_dot(x, x.T, **kw)
        with pytest.raises(TypeError) as ref:
            jax.lax.scaled_dot(*to_jax((x, x.T)), **to_jax(kw))
        assert str(ours.value).lower().endswith(str(ref.value).lower())
        assert str(ours.value).startswith("scaled_dot")
    with pytest.raises(TypeError, match="0-rank and 1-rank"):
        lax.scaled_dot(np.ones(3), np.ones(3))


# --------------------------------------------------------------------------- sharding

def test_reshard_and_single_device_sharding():
    x = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    mesh = make_mesh((1,), ("x",))
    with set_mesh(mesh):
        y = reshard(jnp.asarray(x), P("x"))
        assert y.committed and y.device == mesh.devices.flat[0]
        assert_same(y, x)
        tree = reshard({"a": x, "b": (x, x)}, {"a": P("x"), "b": P()})
        assert_same(tree, {"a": x, "b": (x, x)})
        g = fungrad.grad(lambda v: (reshard(v, P("x")) ** 2).sum())(x)
        assert_same(g, jax.grad(lambda v: (v ** 2).sum())(x))
        assert_same(fungrad.jit(lambda v: reshard(v, P("x")) * 2)(x), x * 2)
        with pytest.raises(ValueError, match="rank"):
            reshard(np.ones(3), P("x", None))
    assert_same(reshard(x, NamedSharding(mesh, P("x"))), x)
    with pytest.raises(ValueError, match="not under a mesh context"):
        reshard(x, P("x"))
    with pytest.raises(ValueError, match="non-None"):
        reshard(x, None)
    with pytest.raises(TypeError, match="reshard"):
        reshard(x, fungrad.sharding.SingleDeviceSharding(fungrad.devices()[0]))
    s = make_single_device_sharding(fungrad.devices()[0])
    assert s == fungrad.sharding.SingleDeviceSharding(fungrad.devices()[0])
    assert fungrad.device_put(x, s).device == fungrad.devices()[0]
    with pytest.raises(TypeError, match="make_single_device_sharding: device"):
        make_single_device_sharding("cpu")


def test_use_abstract_mesh_and_axis_type_switches():
    am = AbstractMesh((2,), ("a",))
    with use_abstract_mesh(am):
        assert get_abstract_mesh() == am
    assert get_abstract_mesh().empty
    with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((2,), ("a",))):
        assert repr(jax.sharding.get_abstract_mesh()) == repr(am)
    x = np.ones((2, 2), np.float32)
    seen = []

    def f(v):
        seen.append(fungrad.sharding.get_mesh().axis_types)
        return v + 1
    assert_same(auto_axes(f)(x, out_sharding=P()), x + 1)  # no mesh: f as it is
    with pytest.raises(TypeError, match="out_sharding"):
        auto_axes(f)(x)
    with pytest.raises(ValueError, match="Context mesh cannot be empty"):
        explicit_axes(f, in_sharding=P())(x)
    with set_mesh(make_mesh((1,), ("x",))):
        out = auto_axes(f, out_sharding=P("x"))(x)
        assert out.committed and seen[-1] == (fungrad.sharding.AxisType.Auto,)
        assert_same(explicit_axes(f)(x, in_sharding=P("x")), x + 1)
        assert seen[-1] == (fungrad.sharding.AxisType.Explicit,)
        with pytest.raises(ValueError, match="auto_axes: axis 'y'"):
            auto_axes(f, axes="y", out_sharding=P())(x)


def test_new_names_exist_in_jax():
    for module, ref, names in [
            (fungrad.sharding, jax.sharding, ["reshard", "auto_axes", "explicit_axes",
                                              "make_single_device_sharding",
                                              "use_abstract_mesh"]),
            (fungrad.nn, jax.nn, ["scaled_matmul", "scaled_dot_general",
                                  "get_scaled_dot_general_config"]),
            (lax, jax.lax, ["scaled_dot"]),
            (multihost_utils, jax_multihost, multihost_utils.__all__),
            (mesh_utils, jax_mesh_utils, mesh_utils.__all__)]:
        for name in names:
            assert name in module.__all__ and hasattr(ref, name), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from jax.experimental.pjit import pjit as jax_pjit  # noqa: F401
