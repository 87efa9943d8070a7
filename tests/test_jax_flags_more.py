"""The last of JAX's top-level flags and names against jax: the PRNG flags
(``legacy_prng_key``, ``default_prng_impl``, ``threefry_partitionable``,
``enable_custom_prng``), ``array_garbage_collection_guard``, the flags accepted with no
effect, ``smap`` (one device here, four in a child process) and ``memory``.

The flags are read from ``fungrad.runtime`` and ``fungrad.config``; each check compares
values, warnings (category and message) and errors (type, and message where fungrad keeps
JAX's words) with jax's.
"""
from __future__ import annotations

import gc
import logging
import math
import warnings
from typing import Any, Callable

import jax
import numpy as np
import pytest
from jax import sharding as jsh

import fungrad
import fungrad.numpy as fnp
from fungrad import memory, runtime
from fungrad import random as frandom
from fungrad import sharding as fsh
from fungrad.config import config
from fungrad.transforms.shard_map import smap
from harness import assert_same
from multidevice import checks, child_fixture, child_main, error_of

RAW = np.array([0, 1], np.uint32)
# fungrad's name, jax's config attribute, a value other than the default
FLAGS = {
    "legacy_prng_key": ("jax_legacy_prng_key", "warn"),
    "default_prng_impl": ("jax_default_prng_impl", "threefry2x32"),
    "threefry_partitionable": ("jax_threefry_partitionable", True),
    "enable_custom_prng": ("jax_enable_custom_prng", True),
    "array_garbage_collection_guard": ("jax_array_garbage_collection_guard", "allow"),
    "jax2tf_associative_scan_reductions": ("jax2tf_associative_scan_reductions", True),
    "remove_size_one_mesh_axis_from_type": ("jax_remove_size_one_mesh_axis_from_type", True),
    "auto_pcast": ("jax_auto_pcast", False),
}


def _plain(value: Any) -> Any:
    """A flag's value with JAX's str enums as plain strings."""
    return str.__str__(value) if isinstance(value, str) else value


# --------------------------------------------------------------------------- flags

@pytest.mark.parametrize("name", sorted(FLAGS))
def test_defaults_context_managers_and_update_match_jax(name: str) -> None:
    jax_attr, other = FLAGS[name]
    jax_state = getattr(jax, name)
    assert getattr(config, name) == _plain(getattr(jax.config, jax_attr))
    assert getattr(runtime, name).value == _plain(jax_state.value)
    default = getattr(config, name)
    with getattr(runtime, name)(other), jax_state(other):
        assert getattr(config, name) == _plain(getattr(jax.config, jax_attr)) == other
    assert getattr(config, name) == default
    update_name = jax_attr if jax_attr.startswith("jax") else f"jax_{name}"
    config.update(update_name, other)  # JAX's name, then fungrad's
    try:
        assert getattr(config, name) == other
    finally:
        config.update(name, default)
    assert getattr(config, name) == default


@pytest.mark.parametrize("name, value", [
    ("legacy_prng_key", "bogus"), ("legacy_prng_key", 3), ("default_prng_impl", "bogus"),
    ("default_prng_impl", 1), ("array_garbage_collection_guard", "bogus")])
def test_invalid_values_raise_as_in_jax(name: str, value: Any) -> None:
    want = type(_jax_error(f"jax_{name}", value))
    with pytest.raises(want) as info:
        config.update(f"jax_{name}", value)
    assert name in str(info.value)


def _jax_error(name: str, value: Any) -> Exception:
    """What ``jax.config.update(name, value)`` raises."""
    try:
        jax.config.update(name, value)
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return e
    raise AssertionError(f"jax accepted {name}={value!r}")


@pytest.mark.parametrize("name, value", [
    ("default_prng_impl", "rbg"), ("default_prng_impl", "unsafe_rbg"),
    ("default_prng_impl", "philox4x32"), ("threefry_partitionable", False),
    ("array_garbage_collection_guard", "fatal")])
def test_values_fungrad_does_not_implement_raise_naming_the_flag(name: str, value: Any) -> None:
    before = getattr(config, name)
    for setter in (lambda: config.update(f"jax_{name}", value),
                   lambda: getattr(runtime, name)(value).__enter__()):
        with pytest.raises(NotImplementedError, match=name):
            setter()
        assert getattr(config, name) == before


def test_threefry_partitionable_false_changes_the_bits_in_jax() -> None:
    """Why fungrad refuses False: jax's bits differ from the default's (which fungrad's are)."""
    k = jax.random.key(0)
    with jax.threefry_partitionable(False):
        old = np.asarray(jax.random.key_data(jax.random.split(k)))
    new = np.asarray(jax.random.key_data(jax.random.split(k)))
    assert not np.array_equal(old, new)
    np.testing.assert_array_equal(np.asarray(frandom.key_data(frandom.split(frandom.key(0)))),
                                  new)


def test_random_bits_unchanged_with_the_flags_at_their_defaults() -> None:
    with runtime.default_prng_impl("threefry2x32"), runtime.threefry_partitionable(True), \
            runtime.legacy_prng_key("allow"):
        got = [frandom.key_data(frandom.split(frandom.key(3), 3)),
               frandom.split(frandom.PRNGKey(3)), frandom.fold_in(frandom.PRNGKey(3), 5),
               frandom.bits(frandom.key(3), (4,)), frandom.normal(frandom.PRNGKey(3), (3,))]
    jr = jax.random
    want = [jr.key_data(jr.split(jr.key(3), 3)), jr.split(jr.PRNGKey(3)),
            jr.fold_in(jr.PRNGKey(3), 5), jr.bits(jr.key(3), (4,)),
            jr.normal(jr.PRNGKey(3), (3,))]
    for g, w in zip(got, want):
        assert_same(g, w)


# --------------------------------------------------------------------------- legacy keys

CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "normal": lambda R, k: R.normal(k), "uniform": lambda R, k: R.uniform(k),
    "bits": lambda R, k: R.bits(k), "split": lambda R, k: R.split(k),
    "fold_in": lambda R, k: R.fold_in(k, 1), "key_data": lambda R, k: R.key_data(k),
    "key_impl": lambda R, k: R.key_impl(k), "randint": lambda R, k: R.randint(k, (), 0, 3),
    "choice": lambda R, k: R.choice(k, 5, (2,)), "beta": lambda R, k: R.beta(k, 2.0, 3.0),
    "rademacher": lambda R, k: R.rademacher(k),
    "clone": lambda R, k: R.clone(k), "PRNGKey": lambda R, k: R.PRNGKey(0),
    "wrap_key_data": lambda R, k: R.wrap_key_data(k),
    "typed_normal": lambda R, k: R.normal(R.key(0)),
}


def _outcome(flags: Any, R: Any, mode: str, call: Callable, custom: bool = False) -> tuple:
    """The warnings (category, message) and error (type, message) of ``call(R, RAW)`` with
    ``legacy_prng_key=mode`` (and ``enable_custom_prng=custom``)."""
    with flags.legacy_prng_key(mode), flags.enable_custom_prng(custom), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call(R, RAW)
            error = None
        except Exception as e:  # noqa: BLE001 - the error is what is compared
            error = (type(e).__name__, str(e))
    return [(w.category.__name__, str(w.message)) for w in caught], error


@pytest.mark.parametrize("mode", ["warn", "error"])
def test_legacy_prng_key_warns_and_raises_where_jax_does(mode: str) -> None:
    for name, call in CALLS.items():
        got, want = _outcome(runtime, frandom, mode, call), _outcome(jax, jax.random, mode, call)
        assert got == want, (name, got, want)
    assert _outcome(runtime, frandom, mode, CALLS["normal"])[int(mode == "error")]


def test_legacy_prng_key_is_checked_when_jit_traces() -> None:
    with runtime.legacy_prng_key("error"), pytest.raises(ValueError, match="Legacy uint32"):
        fungrad.jit(lambda k: frandom.normal(k))(RAW)
    with runtime.legacy_prng_key("error"), pytest.raises(ValueError, match="Legacy uint32"):
        fungrad.vmap(lambda k: frandom.normal(k))(np.zeros((2, 2), np.uint32))


def test_enable_custom_prng_returns_typed_keys_and_warns_of_raw_ones() -> None:
    for name in ("normal", "split", "key_data", "clone", "PRNGKey"):
        got = _outcome(runtime, frandom, "allow", CALLS[name], custom=True)
        assert got == _outcome(jax, jax.random, "allow", CALLS[name], custom=True), name
    with runtime.enable_custom_prng(True), jax.enable_custom_prng(True), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for make in (lambda R: R.PRNGKey(0), lambda R: R.split(RAW), lambda R: R.fold_in(RAW, 1),
                     lambda R: R.clone(RAW)):
            got, want = make(frandom), make(jax.random)
            assert (str(got.dtype), got.shape) == (str(want.dtype), want.shape)
            np.testing.assert_array_equal(np.asarray(frandom.key_data(got)),
                                          np.asarray(jax.random.key_data(want)))


# --------------------------------------------------------------------------- gc guard

def _cycle_holding(x: Any) -> None:
    """Drop a reference cycle that holds ``x`` (only the garbage collector frees it)."""
    holder: dict = {"x": x}
    holder["self"] = holder


def test_array_garbage_collection_guard_logs_arrays_freed_by_the_collector(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="fungrad")
    while gc.collect():  # cycles earlier tests left (an exception's traceback holds arrays);
        pass             # freeing some can free more, so collect until nothing is left
    with runtime.array_garbage_collection_guard("log"):
        y = fnp.ones(2)
        del y  # freed by reference counting: not logged
        gc.collect()
        assert not caplog.records
        _cycle_holding(fnp.ones(3))
        gc.collect()
    assert len(caplog.records) == 1 and caplog.records[0].getMessage().startswith(
        "`fungrad.Array` was deleted by the Python garbage collector instead of reference "
        "counting")
    assert "float32[3]" in caplog.records[0].getMessage()
    caplog.clear()
    _cycle_holding(fnp.ones(3))  # the guard is off again: nothing logged, nothing installed
    gc.collect()
    assert not caplog.records and "__del__" not in vars(fungrad.Array)


# --------------------------------------------------------------------------- memory

def test_memory_space_matches_jax() -> None:
    assert [(s.name, s.value, repr(s)) for s in memory.Space] == [
        (s.name, s.value, repr(s)) for s in jax.memory.Space]
    assert memory.Space.__name__ == jax.memory.Space.__name__
    assert hash(memory.Space.Host) != hash("Host")


# --------------------------------------------------------------------------- smap

def test_smap_on_one_device_matches_jax() -> None:
    x = np.arange(8.0, dtype=np.float32).reshape(2, 4)
    fmesh = fsh.Mesh(np.array(fungrad.devices()[:1]), ("x",))
    jmesh = jsh.Mesh(np.array(jax.devices()[:1]), ("x",))
    for mesh, lib, L in ((fmesh, fungrad, fsh), (jmesh, jax, jsh)):
        with L.set_mesh(mesh):
            total = lib.smap if lib is jax else smap
            out = total(lambda b, s: (lib.lax.psum(b.sum(), "x"), b * s), in_axes=(1, None),
                        out_axes=(None, 1), axis_name="x")(x, 2.0)
        if lib is fungrad:
            got = out
        else:
            want = out
    for g, w in zip(got, want):
        assert_same(g, w)


@pytest.mark.parametrize("kwargs", [
    {"in_axes": 0, "out_axes": 0, "axis_name": ("x",)},
    {"in_axes": [0], "out_axes": 0, "axis_name": "x"},
    {"in_axes": (0, "a"), "out_axes": 0, "axis_name": "x"},
    {"in_axes": 0, "out_axes": (0, 1.5), "axis_name": "x"}])
def test_smap_argument_errors_match_jax(kwargs: dict) -> None:
    got = error_of(lambda: smap(lambda a: a, **kwargs))
    want = error_of(lambda: jax.smap(lambda a: a, **kwargs))
    assert got == (want[0], want[1].replace("jax.sharding.Infer", "fungrad.sharding.Infer"))


def test_smap_needs_a_mesh_and_in_axes() -> None:
    assert error_of(smap(lambda a: a, in_axes=0, out_axes=0, axis_name="x"), np.ones(2))[0] \
        == error_of(jax.smap(lambda a: a, in_axes=0, out_axes=0, axis_name="x"),
                    np.ones(2))[0] == "ValueError"
    with fsh.set_mesh(fsh.Mesh(np.array(fungrad.devices()[:1]), ("x",))):
        kind, message = error_of(smap(lambda a: a, out_axes=0, axis_name="x"), np.ones(2))
    assert kind == "TypeError" and "in_axes was not specified" in message


# Checks run in a child process with four devices (fungrad's and jax's), against jax.

def _both_smap(body: Callable, in_axes: Any, out_axes: Any, *args: Any,
               shape: tuple = (4,), names: tuple = ("x",), axis_name: str = "x") -> None:
    """``smap(body(lib), ...)(*args)`` under a mesh of ``shape``: fungrad's (also jitted)
    equals jax's."""
    outs = []
    for lib, L, mapper in ((fungrad, fsh, smap), (fungrad, fsh, None), (jax, jsh, jax.smap)):
        mesh = L.Mesh(np.array(lib.devices()[:math.prod(shape)]).reshape(shape), names)
        with L.set_mesh(mesh):
            f = (mapper or smap)(body(lib), in_axes=in_axes, out_axes=out_axes,
                                 axis_name=axis_name)
            outs.append(f(*args) if mapper else fungrad.jit(f)(*args))
    for got in outs[:2]:
        for g, w in zip(fungrad.tree.leaves(got), jax.tree.leaves(outs[2])):
            assert_same(g, w)


X8 = np.arange(1.0, 9.0, dtype=np.float32)
X48 = np.arange(32.0, dtype=np.float32).reshape(4, 8) / 7.0


def check_smap_collectives_over_four_devices() -> None:
    _both_smap(lambda lib: lambda b: (b / lib.lax.psum(b.sum(), "x"), b * lib.lax.axis_index("x")),
               0, (0, 0), X8)
    _both_smap(lambda lib: lambda a, s: a * s + lib.lax.pmean(a, "x"), (1, None), 1, X48, 3.0)
    _both_smap(lambda lib: lambda b: lib.lax.psum(b, "x"), 0, None, X48)


def check_smap_over_one_axis_of_a_2d_mesh() -> None:
    _both_smap(lambda lib: lambda b: b - lib.lax.pmean(b, "a"), 0, 0, X48, shape=(2, 2),
               names=("a", "b"), axis_name="a")


def check_smap_replicated_output_that_varies_is_refused() -> None:
    outs = []
    for lib, L, mapper in ((fungrad, fsh, smap), (jax, jsh, jax.smap)):
        with L.set_mesh(L.Mesh(np.array(lib.devices()), ("x",))):
            outs.append(error_of(mapper(lambda b: b, in_axes=0, out_axes=None, axis_name="x"),
                                 X8)[0])
    assert outs == ["ValueError", "ValueError"], outs


CHECKS = checks(globals())
four_devices = child_fixture(__file__, CHECKS, devices=4)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_four_devices(four_devices: dict, name: str) -> None:
    assert four_devices[name] == "ok", four_devices[name]


if __name__ == "__main__":
    child_main(CHECKS)
