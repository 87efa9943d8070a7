"""``fungrad.pmap`` and ``fungrad.shard_map`` against ``jax.pmap`` and ``jax.shard_map``.

Every check runs in a child process with four virtual CPU devices, where jax has the same
four (``tests/multidevice.py``), and calls both libraries on the same inputs: each case is
written once against a namespace (``FG`` or ``JX``) holding the library's ``pmap``,
``shard_map``, ``lax``, ``numpy`` and mesh types. ``compare`` also runs fungrad's function
under ``fungrad.jit``. Where jax 0.10 cannot run a case (nested ``pmap``, which its
``shard_map``-based pmap rejects), fungrad is compared with the same computation written
with nested ``jax.vmap`` s, said at the case. Besides values, the checks compare the errors
(type and message, or the part of the message that names the problem) and where results
live: fungrad's are whole arrays on the first device, jax's are sharded over the devices.
"""
from __future__ import annotations

import math
import re
import types
import warnings

import jax
import jax.experimental.shard_map  # noqa: F401  (jax's older spelling, deprecated)
import numpy as np
import pytest
from jax import sharding as jsh

import fungrad
from fungrad import sharding as fsh
from fungrad.experimental.shard_map import shard_map as legacy_shard_map
from harness import assert_same, compare
from multidevice import checks, child_fixture, child_main, error_of


def _namespace(lib, sharding) -> types.SimpleNamespace:
    def mesh(shape, names, devices=None):
        devices = lib.devices() if devices is None else devices
        return sharding.Mesh(np.array(devices[:math.prod(shape)]).reshape(shape), names)
    return types.SimpleNamespace(lib=lib, lax=lib.lax, jnp=lib.numpy, P=sharding.PartitionSpec,
                                 pmap=lib.pmap, shard_map=lib.shard_map, mesh=mesh,
                                 set_mesh=sharding.set_mesh)


FG, JX = _namespace(fungrad, fsh), _namespace(jax, jsh)
X4 = np.arange(1.0, 5.0, dtype=np.float32)
X44 = np.arange(16.0, dtype=np.float32).reshape(4, 4) / 7.0


def _both(case, *args):
    """``case(FG)`` and ``case(JX)`` compared on ``args`` (fungrad's also under jit; jax's
    under jit, compiled once rather than op by op)."""
    compare(case(FG), case(JX), *args, jit_ref=True)


def _same_error(case, *args):
    """``case(L)(*args)`` raises the same error with either library (with fungrad's names
    for jax's in the message)."""
    got, want = (error_of(lambda: case(L)(*args)) for L in (FG, JX))
    want = (want[0], want[1].replace("jax.sharding.", "fungrad.sharding.")
            .replace("`jax.shard_map`", "`fungrad.shard_map`")
            .replace("`jax.set_mesh(", "`fungrad.sharding.set_mesh("))
    assert got == want, (got, want)
    return got


# --------------------------------------------------------------------------- pmap

PMAP_BODIES = {
    "psum": lambda L: lambda x: x / L.lax.psum(x, "i"),
    "pmean_pmax_pmin": lambda L: lambda x: (L.lax.pmean(x, "i"), L.lax.pmax(x, "i"),
                                            L.lax.pmin(x, "i")),
    "axis_index": lambda L: lambda x: x * L.lax.axis_index("i"),
    "ppermute": lambda L: lambda x: L.lax.ppermute(x, "i", [(k, (k + 1) % 4) for k in range(4)]),
    "all_gather": lambda L: lambda x: (L.lax.all_gather(x, "i"),
                                       L.lax.all_gather(x, "i", axis=0, tiled=True)),
    "psum_scatter": lambda L: lambda x: L.lax.psum_scatter(x, "i", tiled=True),
    "all_to_all": lambda L: lambda x: L.lax.all_to_all(x, "i", 0, 0),
}


def check_pmap_collectives():
    for name, body in PMAP_BODIES.items():
        x = X4 if name in ("psum", "pmean_pmax_pmin", "axis_index") else X44
        _both(lambda L: L.pmap(body(L), "i"), x)


def check_pmap_in_and_out_axes():
    _both(lambda L: L.pmap(lambda x, y: x * y, in_axes=(0, None)), X4, np.float32(3.0))
    _both(lambda L: L.pmap(lambda x: x * 2, in_axes=1), X44[:2])
    _both(lambda L: L.pmap(lambda d: d["a"] + d["b"], in_axes=({"a": 0, "b": None},)),
          {"a": X4, "b": np.float32(1.5)})
    _both(lambda L: L.pmap(lambda x: L.jnp.stack([x, -x]), out_axes=1), X4)
    # an output with out_axes=None is the first member's value (jax 0.10's pmap does so)
    _both(lambda L: L.pmap(lambda x: (x, L.lax.psum(x, "i")), "i", out_axes=(0, None)), X4)
    _both(lambda L: L.pmap(lambda x: x + 1, out_axes=None), X4)
    got = FG.pmap(lambda x, k=None: x + k)(X4, k=X4)
    assert_same(got, JX.pmap(lambda x, k=None: x + k)(X4, k=X4))  # keywords: axis 0


def check_pmap_static_and_donated_arguments():
    for n in (2, 3):
        _both(lambda L: lambda x: L.pmap(lambda v, k: v ** k, static_broadcasted_argnums=1)(x, n),
              X4)
    _same_error(lambda L: L.pmap(lambda v, k: v * k, static_broadcasted_argnums=1), X4)
    x = fungrad.numpy.asarray(X4)
    out = fungrad.pmap(lambda v: v * 2, donate_argnums=0)(x)
    assert_same(out, jax.pmap(lambda v: v * 2, donate_argnums=0)(jax.numpy.asarray(X4)))
    with pytest.raises(RuntimeError, match="donated"):  # as jit's (jax's CPU keeps them)
        np.asarray(x)


def _loss(L, w, batch):
    x, y = batch
    return L.jnp.mean((x @ w - y) ** 2)


def _train_step(L):
    def step(w, batch):
        g = L.lib.grad(lambda v: _loss(L, v, batch))(w)
        return w - 0.1 * L.lax.pmean(g, "batch")
    return L.pmap(step, "batch", in_axes=(None, 0), out_axes=None)


def check_pmap_data_parallel_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    w_fg = w_jx = np.zeros(3, np.float32)
    for _ in range(3):
        w_fg, w_jx = _train_step(FG)(w_fg, (x, y)), _train_step(JX)(w_jx, (x, y))
        assert_same(w_fg, w_jx)
    # the same step without pmap: the mean of the per-device gradients is the full gradient
    full = fungrad.grad(lambda v: _loss(FG, v, (x.reshape(32, 3), y.reshape(32))))(
        np.zeros(3, np.float32))
    assert_same(_train_step(FG)(np.zeros(3, np.float32), (x, y)),
                jax.numpy.asarray(-0.1 * np.asarray(full)))


def check_pmap_composes_with_grad_vmap_and_jit():
    psum_sq = lambda L: L.pmap(lambda w: L.lax.psum(w ** 2, "i"), "i")  # noqa: E731
    _both(lambda L: L.lib.grad(lambda v: psum_sq(L)(v).sum()), X4)
    _both(lambda L: L.lib.jit(L.lib.grad(lambda v: psum_sq(L)(v).sum())), X4)
    _both(lambda L: L.lib.vmap(L.pmap(lambda v: L.lax.psum(v, "i"), "i")), X44)
    _both(lambda L: L.pmap(L.lib.vmap(lambda v: L.lax.psum(v, "i")), "i"), X44.T)
    _both(lambda L: L.pmap(L.lib.grad(lambda v: L.lax.psum(L.jnp.sin(v), "i")), "i"), X4)


def check_nested_pmap():
    # jax 0.10's pmap cannot be nested (its shard_map meshes clash): the reference is the same
    # computation with nested vmaps
    def nested(L, map_):
        inner = map_(lambda w: L.lax.psum(w, ("i", "j")) * L.lax.axis_index("j"), axis_name="j")
        return map_(inner, axis_name="i")
    assert_same(nested(FG, fungrad.pmap)(X44[:2, :2]),
                nested(JX, lambda f, axis_name: jax.vmap(f, axis_name=axis_name))(X44[:2, :2]))
    kind, message = error_of(nested(FG, fungrad.pmap), X44[:2, :3])
    assert kind == "ValueError" and "requires 6 logical devices, but only 4" in message, message


def check_pmap_errors():
    _same_error(lambda L: L.pmap(lambda x: x, in_axes=1.0), X4)
    _same_error(lambda L: L.pmap(lambda x: x, out_axes="a"), X4)
    _same_error(lambda L: L.pmap(lambda x: x, devices=[]), X4)
    _same_error(lambda L: L.pmap(lambda x: x, axis_size=3), X4)
    _same_error(lambda L: L.pmap(lambda x: x, in_axes=None), X4)
    unbound = [error_of(L.pmap(lambda x: L.lax.psum(x, "j"), "i"), X4)[0] for L in (FG, JX)]
    assert unbound == ["NameError"] * 2, unbound
    for case, args in [(lambda L: L.pmap(lambda x: x), (np.ones(5, np.float32),)),
                       (lambda L: L.pmap(lambda x: x, devices=L.lib.devices()[:2]), (X4,))]:
        got, want = error_of(case(FG), *args), error_of(case(JX), *args)
        # jax 0.10 raises a ValueError about its mesh's sharding (IndivisibleError) or squeezing
        assert got[0] == "ValueError" and want[0] in ("ValueError", "IndivisibleError"), \
            (got, want)
    assert "requires 5 logical devices, but only 4 devices" in \
        error_of(fungrad.pmap(lambda x: x), np.ones(5, np.float32))[1]


def check_pmap_results_live_on_the_first_device():
    devices = fungrad.devices()
    assert fungrad.pmap(lambda x: x * 2)(X4).device == devices[0]
    out = fungrad.pmap(lambda x: x * 2, devices=devices[2:])(X4[:2])
    ref = jax.pmap(lambda x: x * 2, devices=jax.devices()[2:])(X4[:2])
    assert_same(out, ref)
    assert out.committed and out.device == devices[2]
    assert {d.id for d in ref.sharding.device_set} == {2, 3}  # jax: one row per device


# --------------------------------------------------------------------------- shard_map

def _smap(f, shape, names, in_specs, out_specs, **kwargs):
    """A case: ``shard_map`` of ``f(L)`` over a mesh of ``shape``; the specs are functions of
    the library's ``P``."""
    def case(L):
        return L.shard_map(f(L), mesh=L.mesh(shape, names), in_specs=in_specs(L.P),
                           out_specs=out_specs(L.P), **kwargs)
    return case


X8 = np.arange(16.0, dtype=np.float32).reshape(8, 2) / 3.0
X46 = np.arange(24.0, dtype=np.float32).reshape(4, 6) / 5.0
RING = [(k, (k + 1) % 4) for k in range(4)]

SHARD_MAP_1D = {  # f, in_specs, out_specs over a mesh of 4 devices named "x"
    "blocks": (lambda L: lambda b: b * 2 + L.lax.axis_index("x"), lambda P: P("x"),
               lambda P: P("x")),
    "psum": (lambda L: lambda b: L.lax.psum(L.jnp.sum(b, 0), "x"), lambda P: P("x"),
             lambda P: P()),
    "pmean": (lambda L: lambda b: L.lax.pmean(b, "x"), lambda P: P("x"), lambda P: P()),
    "pbroadcast": (lambda L: lambda b: L.lax.psum(b * (L.lax.axis_index("x") == 1), "x"),
                   lambda P: P("x"), lambda P: P()),
    "ppermute": (lambda L: lambda b: L.lax.ppermute(b, "x", RING), lambda P: P("x"),
                 lambda P: P("x")),
    "psum_scatter": (lambda L: lambda b: L.lax.psum_scatter(b, "x", tiled=True),
                     lambda P: P(), lambda P: P("x")),
    "all_to_all": (lambda L: lambda b: L.lax.all_to_all(b, "x", 1, 0, tiled=True),
                   lambda P: P("x"), lambda P: P("x")),
    "second_dim": (lambda L: lambda b: b - L.lax.pmax(b, "x"), lambda P: P(None, "x"),
                   lambda P: P(None, "x")),
    "replicated_in": (lambda L: lambda b: b * L.lax.axis_index("x"), lambda P: P(),
                      lambda P: P("x")),
    "replicated_out": (lambda L: lambda b: L.jnp.sum(b), lambda P: P(), lambda P: P()),
}


def check_shard_map_on_a_1d_mesh():
    for name, (f, ins, outs) in SHARD_MAP_1D.items():
        x = X44 if name in ("second_dim", "all_to_all") else X8
        _both(_smap(f, (4,), ("x",), ins, outs), x)


SHARD_MAP_2D = {  # over a 2 x 2 mesh named ("a", "b")
    "both_axes": (lambda L: lambda b: b + 10 * L.lax.axis_index("a") + L.lax.axis_index("b"),
                  lambda P: P("a", "b"), lambda P: P("a", "b")),
    "transposed": (lambda L: lambda b: b + 10 * L.lax.axis_index("a") + L.lax.axis_index("b"),
                   lambda P: P("b", "a"), lambda P: P("b", "a")),
    "one_dim_two_axes": (lambda L: lambda b: b * (1 + L.lax.axis_index("b")),
                         lambda P: P(("a", "b")), lambda P: P(("a", "b"))),
    "minor_major": (lambda L: lambda b: b * (1 + L.lax.axis_index("a")),
                    lambda P: P(("b", "a")), lambda P: P(("b", "a"))),
    "psum_both": (lambda L: lambda b: L.lax.psum(b, ("a", "b")), lambda P: P("a", "b"),
                  lambda P: P()),
    "psum_one": (lambda L: lambda b: L.lax.psum(b, "b"), lambda P: P("a", "b"),
                 lambda P: P("a")),
    "replicated_over_b": (lambda L: lambda b: L.jnp.cos(b), lambda P: P("a"), lambda P: P("a")),
}


def check_shard_map_all_gather():
    # jax types all_gather's result as varying over the axis (all_gather_invariant is not),
    # so its check rejects a replicated out_spec; fungrad sees that every member holds the
    # same value. Without the check both give the first member's value.
    for shape, names, spec in (((4,), ("x",), lambda P: P("x")),
                               ((2, 2), ("a", "b"), lambda P: P("a", "b"))):
        _both(_smap(lambda L: lambda b: L.lax.all_gather(b, names[0], tiled=True), shape, names,
                    spec, lambda P: P(*([None] + list(names[1:]))), check_vma=False), X46)
    fungrad.shard_map(lambda b: fungrad.lax.all_gather(b, "x"), mesh=FG.mesh((4,), ("x",)),
                      in_specs=fsh.P("x"), out_specs=fsh.P())(X8)


def check_shard_map_on_a_2d_mesh():
    for f, ins, outs in SHARD_MAP_2D.values():
        _both(_smap(f, (2, 2), ("a", "b"), ins, outs), X46)


def check_shard_map_pytrees_and_static_arguments():
    def f(L):
        def body(params, x, scale):
            h = x @ params["w"] + params["b"]
            return {"h": h * scale, "total": L.lax.psum(L.jnp.sum(h), "x")}
        return body
    params = {"w": np.ones((2, 3), np.float32), "b": np.arange(3.0, dtype=np.float32)}
    outs = lambda P: {"h": P("x"), "total": P()}  # noqa: E731
    cases = [(lambda P: ({"w": P(), "b": P()}, P("x"), None), outs),
             (lambda P: (P(), P("x"), None), outs)]
    for ins, outs in cases:
        got, want = (_smap(f, (4,), ("x",), ins, outs)(L)(params, X8, 3) for L in (FG, JX))
        assert_same(got, want)


def check_shard_map_check_vma_false_takes_the_first_member():
    _both(_smap(lambda L: lambda b: b * (1 + L.lax.axis_index("x")), (4,), ("x",),
                lambda P: P("x"), lambda P: P(), check_vma=False), X8)


def check_shard_map_composes_with_grad_and_jit():
    def loss(L):
        f = _smap(lambda L: lambda b: L.lax.psum(L.jnp.sum(L.jnp.sin(b) ** 2), ("a", "b")),
                  (2, 2), ("a", "b"), lambda P: P("a", "b"), lambda P: P())(L)
        return lambda x: f(x)
    _both(lambda L: L.lib.grad(loss(L)), X46)
    _both(lambda L: L.lib.jit(L.lib.grad(loss(L))), X46)
    ring = _smap(lambda L: lambda b: L.lax.ppermute(b, "x", RING) * b, (4,), ("x",),
                 lambda P: P("x"), lambda P: P("x"))
    _both(lambda L: L.lib.grad(lambda x: ring(L)(x).sum()), X8)
    scaled = _smap(lambda L: lambda w, b: b * w, (4,), ("x",), lambda P: (P(), P("x")),
                   lambda P: P("x"))  # the gradient of a replicated input sums over the mesh
    _both(lambda L: L.lib.grad(lambda w, x: (scaled(L)(w, x) ** 2).sum()), X4[:2], X8)
    _both(lambda L: L.lib.vmap(ring(L)), np.stack([X8, 2 * X8]))


def check_shard_map_over_some_mesh_axes():
    # manual over "a" only: f sees the "b" dimension whole
    _both(lambda L: L.lib.jit(_smap(lambda L: lambda b: b - L.lax.pmean(b, "a"), (2, 2),
                                    ("a", "b"), lambda P: P("a"), lambda P: P("a"),
                                    axis_names={"a"})(L)), X46)


def check_shard_map_with_the_context_mesh():
    with FG.set_mesh(FG.mesh((4,), ("x",))), JX.set_mesh(JX.mesh((4,), ("x",))):
        _both(lambda L: L.shard_map(lambda b: L.lax.psum(b, "x"), in_specs=L.P("x"),
                                    out_specs=L.P()), X8)
    _same_error(lambda L: L.shard_map(lambda b: b, in_specs=L.P(), out_specs=L.P()), X8)


def check_shard_map_on_explicit_mesh_axes():
    # jax.make_mesh gives Explicit axes, where jax wants the argument sharded as in_specs
    # already; fungrad's arrays carry no sharding, so it takes in_specs as given
    explicit = fsh.make_mesh((4,), ("x",))
    got = fungrad.shard_map(lambda b: b * 2, mesh=explicit, in_specs=fsh.P("x"),
                            out_specs=fsh.P("x"))(X8)
    assert_same(got, jax.shard_map(lambda b: b * 2, mesh=JX.mesh((4,), ("x",)),
                                   in_specs=jsh.PartitionSpec("x"),
                                   out_specs=jsh.PartitionSpec("x"))(X8))
    assert "in_specs passed to shard_map" in error_of(
        jax.shard_map(lambda b: b * 2, mesh=jax.make_mesh((4,), ("x",)),
                      in_specs=jsh.PartitionSpec("x"), out_specs=jsh.PartitionSpec("x")), X8)[1]


def check_shard_map_errors():
    unknown = _smap(lambda L: lambda b: b, (2, 2), ("a", "b"), lambda P: P("c"), lambda P: P())
    got, want = error_of(unknown(FG), X46), error_of(unknown(JX), X46)
    order = re.compile(r"frozenset\(\{.*?\}\)")  # a set's order is arbitrary
    assert (got[0], order.sub("S", got[1])) == (want[0], order.sub("S", want[1])), (got, want)
    fragments = [
        (_smap(lambda L: lambda b: b, (2, 2), ("a", "b"), lambda P: P("a"), lambda P: P("a")),
         np.ones(3, np.float32),
         "which maps array axis 0 (of size 3) to mesh axis 'a' (of size 2), but 2 does not "
         "evenly divide 3"),
        (_smap(lambda L: lambda b: b, (2, 2), ("a", "b"), lambda P: P(("a", "b")),
               lambda P: P("a")), np.ones(6, np.float32),
         "to mesh axes ('a', 'b') (of total size 4), but 4 does not evenly divide 6"),
        (_smap(lambda L: lambda b: b, (2, 2), ("a", "b"), lambda P: P("a", "b"),
               lambda P: P("a")), np.ones(4, np.float32), "which has rank 1 (and 1 < 2)"),
        (_smap(lambda L: lambda b: L.jnp.sum(b), (4,), ("x",), lambda P: P("x"),
               lambda P: P("x")), X8, "which has rank 0 (and 0 < 1)"),
        (_smap(lambda L: lambda b: b * 2, (2, 2), ("a", "b"), lambda P: P("a"),
               lambda P: P()), X46, "was given out_specs which require replication which "
         "can't be statically inferred given the mesh"),
    ]
    for case, x, fragment in fragments:
        got, want = error_of(case(FG), x), error_of(case(JX), x)
        assert got[0] == want[0] == "ValueError" and fragment in got[1] and fragment in want[1], \
            (got, want)
    for bad in (lambda P: ("x",), lambda P: (3,)):
        _same_error(_smap(lambda L: lambda b: b, (4,), ("x",), bad, lambda P: P()), X8)
    _same_error(lambda L: lambda: L.shard_map(3, mesh=L.mesh((4,), ("x",)), in_specs=L.P(),
                                              out_specs=L.P()))
    _same_error(lambda L: L.shard_map(lambda b: b, mesh=L.mesh((4,), ("x",)), in_specs=L.P(),
                                      out_specs=L.P(), axis_names=["x"]), X8)
    kind, message = error_of(fungrad.shard_map(lambda b: b, mesh=FG.mesh((4,), ("x",)),
                                             out_specs=fsh.P()), X8)
    assert kind == "TypeError" and "pass in_specs" in message
    kind, message = error_of(jax.shard_map(lambda b: b, mesh=JX.mesh((4,), ("x",)),
                                         out_specs=jsh.PartitionSpec()), X8)
    assert kind == "TypeError" and "in_specs argument must be a pytree" in message


def check_shard_map_results_live_on_the_mesh_first_device():
    devices = fungrad.devices()
    mesh = fsh.Mesh(np.array(devices[::-1]), ("x",))
    out = fungrad.shard_map(lambda b: b + 1, mesh=mesh, in_specs=fsh.P("x"),
                            out_specs=fsh.P("x"))(X8)
    assert out.committed and out.device == devices[3]
    ref = jax.shard_map(lambda b: b + 1, mesh=jsh.Mesh(np.array(jax.devices()[::-1]), ("x",)),
                        in_specs=jsh.PartitionSpec("x"), out_specs=jsh.PartitionSpec("x"))(X8)
    assert_same(out, ref)
    assert len(ref.sharding.device_set) == 4  # jax: a block per device
    abstract = fungrad.shard_map(lambda b: b + 1, mesh=fsh.AbstractMesh((4,), ("x",)),
                                 in_specs=fsh.P("x"), out_specs=fsh.P("x"))(X8)
    assert_same(abstract, ref)
    assert not abstract.committed  # an abstract mesh has no devices to put the result on


def check_experimental_shard_map_is_jaxs_older_spelling():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ref = jax.experimental.shard_map.shard_map(
            lambda b: jax.lax.psum(b, "x"), JX.mesh((4,), ("x",)), jsh.PartitionSpec("x"),
            jsh.PartitionSpec())(X8)
    with pytest.warns(DeprecationWarning, match="Use fungrad.shard_map"):
        f = legacy_shard_map(lambda b: fungrad.lax.psum(b, "x"), FG.mesh((4,), ("x",)),
                         fsh.P("x"), fsh.P())
    assert_same(f(X8), ref)


CHECKS = checks(globals())
four_devices = child_fixture(__file__, CHECKS, devices=4)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_four_devices(four_devices, name):
    assert four_devices[name] == "ok", four_devices[name]


if __name__ == "__main__":
    child_main(CHECKS)
