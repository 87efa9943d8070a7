"""``fungrad.sharding`` against ``jax.sharding``: partition specs, meshes, named shardings,
the context mesh, and placing arrays with a ``NamedSharding``.

The objects and their checks are compared with jax's in this process, on its one device
and on ``AbstractMesh`` es (which need no devices). The placements over a mesh of several
devices run in a child process with four virtual CPU devices, where jax has the same four
(``tests/multidevice.py``). fungrad puts an array placed with a ``NamedSharding`` whole on
the mesh's first device; jax splits it over the mesh: the checks compare values, errors
and which devices are involved.
"""
from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from jax import sharding as jsh

import fungrad
import fungrad.numpy as jnp
from fungrad import sharding as fsh
from harness import assert_same
from multidevice import checks, child_fixture, child_main

JP = jsh.PartitionSpec


def _outcome(fn, *args, **kwargs):
    """``(exception type name, message)`` of ``fn(*args)``, or ``("ok", repr(result))``."""
    try:
        return "ok", repr(fn(*args, **kwargs))
    except Exception as e:  # noqa: BLE001 - the outcome is what is compared
        return type(e).__name__, str(e)


def _same_outcome(fg_fn, jax_fn, *args):
    """Both raise an exception of the same kind with the same message (with fungrad's
    names for jax's), or both return values with the same repr."""
    got, want = _outcome(fg_fn, *args), _outcome(jax_fn, *args)
    want = (want[0].replace("IndivisibleError", "ValueError").replace("DuplicateSpecError",
                                                                      "ValueError"),
            want[1].replace("`jax.sharding.", "`fungrad.sharding."))
    assert got == want, (got, want)


# --------------------------------------------------------------------------- PartitionSpec

SPECS = [(), ("x",), ("x", None), (("x", "y"),), (["x", "y"], None), ((),), (("x",),),
         (None, "y")]


@pytest.mark.parametrize("entries", SPECS)
def test_partition_spec_is_jaxs(entries):
    spec, ref = fsh.P(*entries), JP(*entries)
    assert repr(spec) == repr(ref)
    assert spec.partitions == ref.partitions and len(spec) == len(ref)
    assert tuple(spec) == tuple(ref)
    assert spec == fsh.PartitionSpec(*entries) and hash(spec) == hash(fsh.P(*entries))
    assert (spec == tuple(entries)) == (ref == tuple(entries))


def test_partition_spec_operations():
    p, q = fsh.P("x", None), jax.P("x", None)
    assert repr(p + fsh.P("y")) == repr(q + jax.P("y"))
    assert repr(p + ("y",)) == repr(q + ("y",)) and repr(("y",) + p) == repr(("y",) + q)
    assert p[0] == q[0] and p.index(("x",)) == q.index(("x",)) == 0
    assert fsh.P("a", "a").count("a") == 2 and fsh.P is fsh.PartitionSpec
    assert repr(fsh.P(fsh.P.UNCONSTRAINED)) == repr(jax.P(jax.P.UNCONSTRAINED))
    for kwargs in ({"unreduced": {"b"}}, {"unreduced": {"b"}, "reduced": {"c"}}):
        assert repr(fsh.P("a", None, **kwargs)) == repr(jax.P("a", None, **kwargs))
        assert repr(fsh.P(**kwargs)) == repr(jax.P(**kwargs))
    _same_outcome(lambda: fsh.P("a", unreduced=["b"]), lambda: jax.P("a", unreduced=["b"]))
    _same_outcome(lambda: fsh.P("a", unreduced={"b"}, reduced={"b"}),
                  lambda: jax.P("a", unreduced={"b"}, reduced={"b"}))


# --------------------------------------------------------------------------- meshes

def _meshes(lib):
    devices = np.array(lib.devices()[:1])
    return [lib.sharding.Mesh(devices, "x"),
            lib.sharding.Mesh(devices.reshape(1, 1), ("x", "y")),
            lib.sharding.Mesh(devices, ("x",), axis_types=lib.sharding.AxisType.Explicit),
            lib.make_mesh((1,), ("batch",)) if lib is jax else lib.sharding.make_mesh(
                (1,), ("batch",)),
            lib.sharding.Mesh(np.empty((), dtype=object), ())]


def test_meshes_are_jaxs():
    for mesh, ref in zip(_meshes(fungrad), _meshes(jax)):
        assert (repr(mesh), str(mesh)) == (repr(ref), str(ref))
        assert (mesh.axis_names, mesh.axis_sizes, mesh.size, mesh.empty) == \
            (ref.axis_names, ref.axis_sizes, ref.size, ref.empty)
        assert [t.name for t in mesh.axis_types] == [t.name for t in ref.axis_types]
        assert list(mesh.shape.items()) == list(ref.shape.items())
        assert mesh.shape_tuple == ref.shape_tuple
        if not mesh.empty:
            assert (mesh.explicit_axes, mesh.auto_axes, mesh.manual_axes) == \
                (ref.explicit_axes, ref.auto_axes, ref.manual_axes)
            np.testing.assert_array_equal(mesh.device_ids, ref.device_ids)
            assert repr(mesh.abstract_mesh) == repr(ref.abstract_mesh)
            assert [d.id for d in mesh.local_devices] == [d.id for d in ref.local_devices]
            assert mesh.is_multi_process == ref.is_multi_process
            assert mesh.local_mesh == mesh
    first = _meshes(fungrad)[0]
    assert first == _meshes(fungrad)[0] and hash(first) == hash(_meshes(fungrad)[0])
    assert first != _meshes(fungrad)[1]
    assert repr(first.update(axis_names=("y",))) == repr(_meshes(jax)[0].update(axis_names=("y",)))


@pytest.mark.parametrize("case", [
    lambda lib, d: lib.sharding.Mesh(d, ("x", "y")),
    lambda lib, d: lib.sharding.Mesh(d, (None,)),
    lambda lib, d: lib.sharding.Mesh(d, "x", axis_types=(lib.sharding.AxisType.Auto,) * 2),
    lambda lib, d: lib.sharding.Mesh(d, "x", axis_types="Auto"),
    lambda lib, d: (lib.make_mesh if lib is jax else lib.sharding.make_mesh)((2,), ("x",)),
    lambda lib, d: (lib.make_mesh if lib is jax else lib.sharding.make_mesh)([1.0], ("x",)),
    lambda lib, d: (lib.make_mesh if lib is jax else lib.sharding.make_mesh)(1, ("x",)),
    lambda lib, d: (lib.make_mesh if lib is jax else lib.sharding.make_mesh)((1, 1), ("x",)),
])
def test_mesh_errors_are_jaxs(case):
    _same_outcome(lambda: case(fungrad, np.array(fungrad.devices()[:1])),
                  lambda: case(jax, np.array(jax.devices()[:1])))


def test_abstract_mesh_is_jaxs():
    types = (jsh.AxisType.Explicit, jsh.AxisType.Manual)
    for args, ftypes, jtypes in [(((2, 3), ("a", "b")), None, None),
                                 (((2, 3), ("a", "b")), (fsh.AxisType.Explicit,
                                                         fsh.AxisType.Manual), types),
                                 (((), ()), None, None)]:
        mesh, ref = fsh.AbstractMesh(*args, ftypes), jsh.AbstractMesh(*args, jtypes)
        assert repr(mesh) == repr(ref) and mesh.shape_tuple == ref.shape_tuple
        assert (mesh.size, mesh.empty, mesh.manual_axes) == (ref.size, ref.empty, ref.manual_axes)
    mesh = fsh.AbstractMesh((2, 3), ("a", "b"))
    assert mesh == fsh.AbstractMesh((2, 3), ("a", "b")) and mesh.abstract_mesh is mesh
    assert repr(mesh.update(axis_names=("c", "d"))) == \
        repr(jsh.AbstractMesh((2, 3), ("a", "b")).update(axis_names=("c", "d")))
    _same_outcome(lambda: mesh.devices, lambda: jsh.AbstractMesh((2, 3), ("a", "b")).devices)


# --------------------------------------------------------------------------- NamedSharding

def _abstract(lib):
    return lib.AbstractMesh((2, 3), ("a", "b"))


@pytest.mark.parametrize("entries, shape", [
    (("a",), (4, 6)), (("a",), (3, 6)), ((None, ("a", "b")), (3, 6)),
    ((None, ("a", "b")), (3, 5)), ((), (5,)), (("b", "a"), (3, 4)), (("a", "b"), (4,)),
    ((("b", "a"),), (12, 1))])
def test_named_sharding_on_an_abstract_mesh_is_jaxs(entries, shape):
    s, ref = fsh.NamedSharding(_abstract(fsh), fsh.P(*entries)), \
        jsh.NamedSharding(_abstract(jsh), JP(*entries))
    assert repr(s) == repr(ref)
    assert (s.num_devices, s.is_fully_replicated, s.memory_kind) == \
        (ref.num_devices, ref.is_fully_replicated, ref.memory_kind)
    if len(shape) >= len(entries):  # jax fails with an IndexError on a too short shape
        _same_outcome(s.shard_shape, ref.shard_shape, shape)
    else:
        assert "only valid for values of rank at least 2" in _outcome(s.shard_shape, shape)[1]
    _same_outcome(lambda: s.device_set, lambda: ref.device_set)


def test_named_sharding_on_one_device_is_jaxs():
    mesh, ref_mesh = fsh.make_mesh((1,), ("x",)), jax.make_mesh((1,), ("x",))
    s, ref = fsh.NamedSharding(mesh, fsh.P("x")), jsh.NamedSharding(ref_mesh, jax.P("x"))
    assert repr(s) == repr(ref) and s.spec == fsh.P("x") and s.mesh is mesh
    assert (s.num_devices, s.is_fully_replicated, s.is_fully_addressable, s.memory_kind) == \
        (ref.num_devices, ref.is_fully_replicated, ref.is_fully_addressable, ref.memory_kind)
    assert s.device_set == set(fungrad.devices()[:1]) == s.addressable_devices
    assert s == fsh.NamedSharding(mesh, fsh.P("x")) and hash(s) == hash(
        fsh.NamedSharding(mesh, fsh.P("x")))
    assert s != fsh.NamedSharding(mesh, fsh.P())
    for sharding in (s, fsh.SingleDeviceSharding(fungrad.devices()[0])):
        assert isinstance(sharding, fsh.Sharding)


@pytest.mark.parametrize("entries", [("c",), ("a", "a"), (("a", "b"), "a"), (None, "c")])
def test_named_sharding_errors_are_jaxs(entries):
    _same_outcome(lambda: fsh.NamedSharding(_abstract(fsh), fsh.P(*entries)),
                  lambda: jsh.NamedSharding(_abstract(jsh), JP(*entries)))


def test_named_sharding_wants_a_partition_spec():
    with pytest.raises(TypeError, match="spec must be a PartitionSpec, got tuple"):
        fsh.NamedSharding(_abstract(fsh), ("a",))


# --------------------------------------------------------------------------- placement

def test_device_put_with_a_named_sharding_on_one_device():
    mesh, ref_mesh = fsh.make_mesh((1,), ("x",)), jax.make_mesh((1,), ("x",))
    host = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    x = fungrad.device_put(host, fsh.NamedSharding(mesh, fsh.P("x")))
    ref = jax.device_put(host, jsh.NamedSharding(ref_mesh, jax.P("x")))
    assert_same(x, ref)
    assert x.committed and x.device == fungrad.devices()[0]
    assert x.sharding == fsh.SingleDeviceSharding(fungrad.devices()[0])  # jax: the NamedSharding
    with pytest.raises(ValueError, match=r"only valid for values of rank at least 1, but was "
                       r"applied to a value of rank 0. For scalars the PartitionSpec should be"):
        fungrad.device_put(np.float32(1.0), fsh.NamedSharding(mesh, fsh.P("x")))
    tree = fungrad.device_put({"a": host, "b": [1.0]}, fsh.NamedSharding(mesh, fsh.P()))
    assert all(leaf.committed for leaf in fungrad.tree_util.tree_leaves(tree))


def test_jit_with_named_shardings_on_one_device():
    mesh = fsh.make_mesh((1,), ("x",))
    s = fsh.NamedSharding(mesh, fsh.P("x"))
    out = fungrad.jit(lambda v: v * 2.0, in_shardings=s, out_shardings=s)(jnp.ones(4))
    assert out.committed and out.device == mesh.devices.flat[0]
    with pytest.raises(ValueError, match="only valid for values of rank at least 1"):
        fungrad.jit(lambda v: v, in_shardings=(s,))(1.0)


# --------------------------------------------------------------------------- the context mesh

def test_set_mesh_and_get_mesh_are_jaxs():
    mesh, ref = fsh.make_mesh((1,), ("x",)), jax.make_mesh((1,), ("x",))
    assert repr(fsh.get_mesh()) == repr(jsh.get_mesh())
    assert repr(fsh.get_abstract_mesh()) == repr(jsh.get_abstract_mesh())
    with fsh.set_mesh(mesh), jax.set_mesh(ref):
        assert fsh.get_mesh() is mesh
        assert repr(fsh.get_abstract_mesh()) == repr(jsh.get_abstract_mesh())
    assert fsh.get_mesh().empty and jsh.get_mesh().empty
    fsh.set_mesh(mesh)  # a setter as well as a context manager
    try:
        assert fsh.get_mesh() is mesh
    finally:
        fsh.set_mesh(None)
    assert fsh.get_mesh().empty
    _same_outcome(lambda: fsh.set_mesh(3), lambda: jax.set_mesh(3))


def test_with_mesh_is_deprecated_and_sets_the_mesh():
    mesh = fsh.make_mesh((1,), ("x",))
    with pytest.warns(DeprecationWarning, match="use `with fungrad.sharding.set_mesh"):
        with mesh:
            assert fsh.get_mesh() is mesh
    assert fsh.get_mesh().empty
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fsh.set_mesh(mesh):
            pass


def test_manual_meshes_cannot_be_set():
    manual = fsh.Mesh(np.array(fungrad.devices()[:1]), "x", axis_types=fsh.AxisType.Manual)
    with pytest.raises(ValueError, match="contains manual axes"):
        fsh.set_mesh(manual)


# --------------------------------------------------------------------------- four devices

def check_named_sharding_over_four_devices():
    mesh = fsh.Mesh(np.array(fungrad.devices()).reshape(2, 2), ("a", "b"))
    ref_mesh = jsh.Mesh(np.array(jax.devices()).reshape(2, 2), ("a", "b"))
    for entries in [("a",), (None, "b"), (("a", "b"),), ()]:
        s, ref = fsh.NamedSharding(mesh, fsh.P(*entries)), \
            jsh.NamedSharding(ref_mesh, JP(*entries))
        assert repr(s) == repr(ref)
        assert {d.id for d in s.device_set} == {d.id for d in ref.device_set}
        assert (s.num_devices, s.is_fully_replicated) == (ref.num_devices, ref.is_fully_replicated)
        for shape in [(4, 6), (2, 3), (8,)][:3 if len(entries) < 2 else 2]:
            _same_outcome(s.shard_shape, ref.shard_shape, shape)


def check_device_put_over_four_devices():
    devices, ref_devices = fungrad.devices(), jax.devices()
    mesh = fsh.Mesh(np.array(devices[2:]), ("x",))
    ref_mesh = jsh.Mesh(np.array(ref_devices[2:]), ("x",))
    host = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    for entries in [("x",), (None,), ()]:
        x = fungrad.device_put(host, fsh.NamedSharding(mesh, fsh.P(*entries)))
        ref = jax.device_put(host, jsh.NamedSharding(ref_mesh, JP(*entries)))
        assert_same(x, ref)
        assert x.device == devices[2] and x.committed  # whole, on the mesh's first device
        assert {d.id for d in ref.sharding.device_set} == {2, 3}
    for entries, value in [((None, "x"), host), (("x",), np.ones(3, np.float32))]:
        _same_outcome(lambda: fungrad.device_put(value, fsh.NamedSharding(mesh, fsh.P(*entries))),
                      lambda: jax.device_put(value, jsh.NamedSharding(ref_mesh, JP(*entries))))


def check_jit_with_named_shardings_over_four_devices():
    devices = fungrad.devices()
    mesh = fsh.Mesh(np.array(devices).reshape(2, 2), ("a", "b"))
    ref_mesh = jsh.Mesh(np.array(jax.devices()).reshape(2, 2), ("a", "b"))
    s, ref_s = fsh.NamedSharding(mesh, fsh.P("a", "b")), jsh.NamedSharding(ref_mesh, JP("a", "b"))
    host = np.arange(8.0, dtype=np.float32).reshape(2, 4)
    out = fungrad.jit(lambda v: v * 2.0, in_shardings=s, out_shardings=s)(host)
    ref = jax.jit(lambda v: v * 2.0, in_shardings=ref_s, out_shardings=ref_s)(host)
    assert_same(out, ref)
    assert out.device == devices[0] and out.committed
    odd = np.ones((3, 4), np.float32)
    _same_outcome(lambda: fungrad.jit(lambda v: v, in_shardings=s)(odd),
                  lambda: jax.jit(lambda v: v, in_shardings=ref_s)(odd))
    _same_outcome(lambda: fungrad.jit(lambda v: v, out_shardings=s)(odd),
                  lambda: jax.jit(lambda v: v, out_shardings=ref_s)(odd))


CHECKS = checks(globals())
four_devices = child_fixture(__file__, CHECKS, devices=4)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_four_devices(four_devices, name):
    assert four_devices[name] == "ok", four_devices[name]


if __name__ == "__main__":
    child_main(CHECKS)
