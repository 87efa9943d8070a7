"""The backend seam: eager evaluation on a device array module, and host constants that
follow device arrays (JAX's uncommitted arrays).

A fake device module stands in for CuPy on machines without a GPU: its arrays are a
NumPy subclass the backend treats as device buffers, and its functions are NumPy's
(which keep the subclass). A test on real CuPy runs where a GPU is present.
"""
import contextlib
import types

import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import backends
from fungrad._core.array import Array


class DeviceArray(np.ndarray):
    """A buffer "on the fake device"."""


def _on_fake_device(out):
    if isinstance(out, (list, tuple)):
        return type(out)(_on_fake_device(o) for o in out)
    return out.view(DeviceArray) if isinstance(out, np.ndarray) else out


def _fake_function(f):
    return lambda *args, **kwargs: _on_fake_device(f(*args, **kwargs))


def _fake_module() -> types.SimpleNamespace:
    """NumPy's namespace whose functions return device arrays (ufuncs keep the subclass
    themselves, and keep their ``reduce``/``at`` methods)."""
    fake = types.SimpleNamespace(**{
        k: _fake_function(v) if callable(v) and not isinstance(v, (np.ufunc, type)) else v
        for k, v in vars(np).items() if not k.startswith("__")})
    fake.asarray = lambda v, dtype=None: np.asarray(v, dtype).view(DeviceArray)
    fake.cuda = types.SimpleNamespace(Device=lambda i: contextlib.nullcontext())
    return fake


@pytest.fixture
def fake_device(monkeypatch):
    fake = _fake_module()
    host_types = (np.generic, bool, int, float, complex)
    monkeypatch.setattr(backends, "is_host", lambda v: isinstance(v, host_types) or (
        isinstance(v, np.ndarray) and type(v) is not DeviceArray))
    monkeypatch.setattr(backends, "xp_of", lambda v: fake if type(v) is DeviceArray else np)
    DeviceArray.device = types.SimpleNamespace(id=0)
    return lambda values: Array(np.asarray(values, np.float32).view(DeviceArray))


def test_host_operands_follow_the_device_operand(fake_device):
    x = fake_device([1.0, 2.0, 3.0])
    host = jnp.arange(3.0)
    for out in (x + host, host + x, jnp.where(host > 0, x, host), jnp.stack([host, x])):
        assert type(out._value) is DeviceArray, type(out._value)
    np.testing.assert_allclose(np.asarray(host * x), [0.0, 2.0, 6.0])


def test_gradients_stay_on_the_device(fake_device):
    """The cotangent seed and the constants of derivative rules are made on the host."""
    x = fake_device([0.5, 1.0, 2.0])
    g = fungrad.grad(lambda v: jnp.sum(jnp.tanh(v) * 3.0 + v ** 2))(x)
    assert type(g._value) is DeviceArray
    np.testing.assert_allclose(np.asarray(g), 3 / np.cosh([0.5, 1.0, 2.0]) ** 2 + 2 * np.array(
        [0.5, 1.0, 2.0]), rtol=1e-6)


def test_host_only_evaluation_uses_numpy():
    out = jnp.arange(3.0) * 2.0
    assert type(out._value) in (np.ndarray, np.float32)
    assert out.device == fungrad.devices("cpu")[0]


def test_cupy_device_arrays_mix_with_host_constants():
    cupy = pytest.importorskip("cupy")
    if not fungrad.devices()[0].platform == "gpu":
        pytest.skip("no GPU")
    x = fungrad.device_put(np.arange(4.0, dtype=np.float32), fungrad.devices()[0])
    g = fungrad.grad(lambda v: jnp.sum(v * jnp.arange(4.0)))(x)
    assert isinstance(g._value, cupy.ndarray)
    np.testing.assert_allclose(np.asarray(g), np.arange(4.0))
