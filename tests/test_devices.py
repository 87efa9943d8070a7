"""Devices and placement as JAX has them, on three virtual CPU devices.

The device list is fixed when first used, so the checks run in a child process started
with ``FUNGRAD_NUM_CPU_DEVICES=3`` (and XLA's flag, so that jax has the same three devices
to compare with). The child runs every check of ``CHECKS`` once and reports each one's
outcome; each test asserts one outcome.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from multidevice import checks, child_fixture, child_main, error_of, run_child


# --------------------------------------------------------------------------- the child's checks

def check_device_list():
    import jax
    import fungrad
    devs = fungrad.devices()
    assert repr(devs) == repr(jax.devices()) \
        == "[CpuDevice(id=0), CpuDevice(id=1), CpuDevice(id=2)]"
    assert fungrad.device_count() == jax.device_count() == 3
    assert fungrad.local_devices() == devs and fungrad.devices("cpu") == devs
    assert fungrad.default_backend() == jax.default_backend() == "cpu"
    assert [(d.platform, d.id, d.device_kind) for d in devs] == \
        [(d.platform, d.id, d.device_kind) for d in jax.devices()]


def check_device_put_commits():
    import jax
    import fungrad
    import fungrad.numpy as jnp
    d, jd = fungrad.devices(), jax.devices()
    host = np.arange(3.0, dtype=np.float32)
    x, jx = fungrad.device_put(host, d[1]), jax.device_put(host, jd[1])
    assert (x.device, x.committed) == (d[1], jx.committed) and jx.device == jd[1]
    assert x.devices() == {d[1]} and x.sharding.device_set == {d[1]}
    assert fungrad.device_put(x) is x
    assert fungrad.device_put(x).committed == jax.device_put(jx).committed
    for value in (host, jnp.ones(3), fungrad.device_put(host)):
        assert not getattr(value, "committed", False)
    assert fungrad.device_put(x, "cpu:2").device == d[2]
    tree = fungrad.device_put({"a": host, "b": [1.0, 2]}, fungrad.devices()[2])
    assert all(leaf.device == d[2] and leaf.committed
               for leaf in fungrad.tree_util.tree_leaves(tree))


def check_uncommitted_follow_committed():
    import jax
    import jax.numpy as jjnp
    import fungrad
    import fungrad.numpy as jnp
    d, jd = fungrad.devices(), jax.devices()
    x = fungrad.device_put(np.ones(3, np.float32), d[1])
    jx = jax.device_put(np.ones(3, np.float32), jd[1])
    for out, jout in ((x + jnp.ones(3), jx + jjnp.ones(3)), (jnp.sum(x * 2.0), jjnp.sum(jx * 2.0)),
                      (fungrad.grad(lambda v: jnp.sum(jnp.sin(v)))(x),
                       jax.grad(lambda v: jjnp.sum(jjnp.sin(v)))(jx))):
        assert (out.device.id, out.committed) == (jout.device.id, jout.committed), (out, jout)
    y = jnp.ones(3) * 3.0  # uncommitted only: the result stays uncommitted
    assert not y.committed and y.device == d[0]


def check_eager_mixed_devices_error():
    import jax
    import fungrad
    d, jd = fungrad.devices(), jax.devices()
    ones = np.ones(3, np.float32)
    got = error_of(lambda a, b: a + b, fungrad.device_put(ones, d[1]),
                   fungrad.device_put(ones, d[2]))
    want = error_of(lambda a, b: a + b, jax.device_put(ones, jd[1]), jax.device_put(ones, jd[2]))
    assert got == want, (got, want)


def scale(x, y):
    return x * y


def check_jit_placement():
    import jax
    import fungrad
    import fungrad.numpy as jnp
    d, jd = fungrad.devices(), jax.devices()
    ones = np.ones(3, np.float32)
    f, jf = fungrad.jit(scale), jax.jit(scale)
    out = f(fungrad.device_put(ones, d[2]), jnp.ones(3))
    jout = jf(jax.device_put(ones, jd[2]), ones)
    assert (out.device.id, out.committed) == (jout.device.id, jout.committed) == (2, True)
    assert not f(jnp.ones(3), jnp.ones(3)).committed
    got = error_of(f, fungrad.device_put(ones, d[1]), fungrad.device_put(ones, d[2]))
    want = error_of(jf, jax.device_put(ones, jd[1]), jax.device_put(ones, jd[2]))
    assert got == want, (got, want)


def check_default_device():
    import jax
    import jax.numpy as jjnp
    import fungrad
    import fungrad.numpy as jnp
    d, jd = fungrad.devices(), jax.devices()
    fungrad.config.update("jax_default_device", d[2])
    jax.config.update("jax_default_device", jd[2])
    try:
        for got, want in ((jnp.ones(3), jjnp.ones(3)), (fungrad.device_put(np.ones(2)),
                                                       jax.device_put(np.ones(2))),
                          (fungrad.jit(lambda v: v + 1)(jnp.ones(3)),
                           jax.jit(lambda v: v + 1)(jjnp.ones(3)))):
            assert (got.device.id, got.committed) == (want.device.id, want.committed), (got, want)
        with fungrad.default_device(d[1]), jax.default_device(jd[1]):
            assert jnp.zeros(2).device.id == jjnp.zeros(2).device.id == 1
        assert jnp.zeros(2).device == d[2]
        fungrad.config.update("jax_default_device", "cpu:1")
        assert jnp.zeros(2).device == d[1]
        kind, message = error_of(fungrad.config.update, "jax_default_device", "cpu:7")
        assert kind == "ValueError" and "cpu:7" in message and "3 device(s)" in message
        assert jnp.zeros(2).device == d[1]  # a rejected value leaves the default as it was
    finally:
        fungrad.config.update("jax_default_device", None)
        jax.config.update("jax_default_device", None)
    assert jnp.zeros(2).device == d[0]


def check_jit_cache_keys_on_the_default_device():
    """An entry compiled while the default was one device is not reused on another: the
    cache grows as jax's does, and each result reports the default it ran under."""
    import jax
    import fungrad
    import fungrad.numpy as jnp
    d, jd = fungrad.devices(), jax.devices()
    f, jf = fungrad.jit(lambda v: v * 2.0), jax.jit(lambda v: v * 2.0)
    x = np.ones(3, np.float32)
    sizes = []
    try:
        for k in (0, 1, 2, 1):
            fungrad.config.update("jax_default_device", d[k])
            jax.config.update("jax_default_device", jd[k])
            out, jout = f(jnp.asarray(x)), jf(x)
            assert (out.device.id, out.committed) == (jout.device.id, jout.committed) == (k, False)
            sizes.append((f._cache_size(), jf._cache_size()))
    finally:
        fungrad.config.update("jax_default_device", None)
        jax.config.update("jax_default_device", None)
    assert sizes == [(1, 1), (2, 2), (3, 3), (3, 3)], sizes


def check_creation_functions_honour_device():
    """``jnp.zeros(..., device=d)`` and the other creation functions commit to ``d``."""
    import jax
    import jax.numpy as jjnp
    import fungrad
    import fungrad.numpy as jnp
    d, jd = fungrad.devices(), jax.devices()
    host = np.ones((2, 2), np.float32)
    calls = [("zeros", (3,)), ("ones", ((2, 3),)), ("empty", (2,)), ("full", (3, 2.0)),
             ("arange", (4,)), ("linspace", (0.0, 1.0, 5)), ("eye", (3,)), ("array", ([1.0, 2.0],)),
             ("asarray", (host,)), ("zeros_like", (host,)), ("ones_like", (host,)),
             ("full_like", (host, 3.0)), ("empty_like", (host,))]
    for name, args in calls:
        for device, jdevice in ((d[1], jd[1]), ("cpu:2", jd[2])):
            got = getattr(jnp, name)(*args, device=device)
            want = getattr(jjnp, name)(*args, device=jdevice)
            assert (got.device.id, got.committed) == (want.device.id, want.committed), \
                (name, got.device)
            assert got.shape == want.shape and got.dtype == want.dtype, name
            if not name.startswith("empty"):
                np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        assert not getattr(jnp, name)(*args).committed, name
    traced = fungrad.jit(lambda v: v + jnp.ones(3, device=d[1]))(jnp.zeros(3))
    np.testing.assert_array_equal(np.asarray(traced), np.ones(3))  # inside jit: no effect


def check_device_list_is_fixed():
    import fungrad
    fungrad.devices()
    kind, message = error_of(fungrad.config.update, "jax_num_cpu_devices", 5)
    assert kind == "RuntimeError" and "before the devices are first listed" in message
    assert error_of(fungrad.devices, "tpu")[0] == "RuntimeError"
    assert error_of(fungrad.devices, "gpu") == (
        "RuntimeError", "devices: backend 'gpu' is not available (available: cpu)")
    kind, message = error_of(fungrad.device_put, 1.0, 3)
    assert kind == "TypeError" and message.startswith("device_put: expected a Device")


CHECKS = checks(globals())
child_results = child_fixture(__file__, CHECKS, devices=3)


# --------------------------------------------------------------------------- the tests

@pytest.mark.parametrize("name", sorted(CHECKS))
def test_three_cpu_devices(child_results, name):
    assert child_results[name] == "ok", child_results[name]


def test_default_device_from_the_environment():
    code = ("import fungrad, fungrad.numpy as jnp; x = jnp.ones(2); "
            "print(x.device, x.committed, fungrad.devices()[1] == x.device)")
    proc = run_child(["-c", code], 3, {"FUNGRAD_DEFAULT_DEVICE": "cpu:1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["CpuDevice(id=1)", "False", "True"]


def test_num_cpu_devices_from_the_environment(monkeypatch):
    config_module = importlib.import_module("fungrad.config")
    monkeypatch.delenv("FUNGRAD_NUM_CPU_DEVICES", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--foo --xla_force_host_platform_device_count=4")
    assert config_module._env_num_cpu_devices() == 4
    monkeypatch.setenv("FUNGRAD_NUM_CPU_DEVICES", "2")
    assert config_module._env_num_cpu_devices() == 2
    monkeypatch.setenv("FUNGRAD_NUM_CPU_DEVICES", "0")
    with pytest.raises(ValueError, match="FUNGRAD_NUM_CPU_DEVICES must be a positive integer"):
        config_module._env_num_cpu_devices()


def test_committed_cpu_array_in_this_process():
    """One CPU device: a committed array commits what is computed from it, eager and jit."""
    import fungrad
    import fungrad.numpy as jnp
    x = fungrad.device_put(np.arange(3.0, dtype=np.float32), fungrad.devices("cpu")[0])
    assert x.committed and (x + jnp.ones(3)).committed and fungrad.jit(jnp.sin)(x).committed
    np.testing.assert_allclose(np.asarray(fungrad.jit(jnp.sin)(x)), np.sin(np.arange(3.0)),
                               rtol=1e-6)
    assert not (jnp.ones(3) + 1).committed


if __name__ == "__main__":
    child_main(CHECKS)
