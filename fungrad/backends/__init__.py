"""Backends: where array buffers live and which array module (``xp``) computes on them.

A backend is an implementation table, not an interpreter: every primitive's
``impl(xp, *arrays, **params)`` is written once against the NumPy API and runs
on NumPy (CPU) or CuPy (GPU) buffers alike. A backend file holds only device
plumbing and the few overrides a library needs.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Device:
    """A place arrays live on, as ``jax.Device``: ``platform`` and ``id``."""

    def __init__(self, platform: str, id: int = 0) -> None:
        self.platform = platform
        self.id = id

    def __repr__(self) -> str:
        return f"{'Cpu' if self.platform == 'cpu' else 'Cuda'}Device(id={self.id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and (self.platform, self.id) == (other.platform, other.id)

    def __hash__(self) -> int:
        return hash((self.platform, self.id))


CPU = Device("cpu", 0)


class SingleDeviceSharding:
    """How an array is laid out: wholly on one device (``jax.sharding.SingleDeviceSharding``)."""

    def __init__(self, device: Device) -> None:
        self.device = device

    @property
    def device_set(self) -> set:
        """The devices holding a piece of the array: just the one."""
        return {self.device}

    is_fully_replicated = is_fully_addressable = True

    def __repr__(self) -> str:
        return f"SingleDeviceSharding(device={self.device!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SingleDeviceSharding) and other.device == self.device

    def __hash__(self) -> int:
        return hash(self.device)
_NUMPY_TYPES = (np.ndarray, np.generic)


def _cupy() -> Any:
    try:
        import cupy
        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:  # no cupy or no GPU: the CPU backend is the only one
        return None


def devices(backend: str | None = None) -> list[Device]:
    """The available devices, GPUs first when CuPy sees one (as ``jax.devices()``)."""
    cp = _cupy() if backend in (None, "gpu", "cuda") else None
    if cp is not None:
        return [Device("gpu", i) for i in range(cp.cuda.runtime.getDeviceCount())]
    if backend not in (None, "cpu"):
        raise RuntimeError(f"devices: backend {backend!r} is not available")
    return [CPU]


def xp_of(value: Any) -> Any:
    """The array module that computes on ``value``'s buffer."""
    if isinstance(value, _NUMPY_TYPES) or not type(value).__module__.startswith("cupy"):
        return np  # other objects (e.g. a donated Array's placeholder) fail in NumPy, clearly
    return __import__("cupy")


def is_host(value: Any) -> bool:
    """Whether ``value`` is a host value (a NumPy buffer or a Python scalar)."""
    return isinstance(value, _NUMPY_TYPES + (bool, int, float, complex))


def to_device_of(value: Any, buffer: Any) -> Any:
    """Host ``value`` copied to the device holding ``buffer`` (Python scalars stay: every
    array module combines them with its own arrays)."""
    if isinstance(value, (bool, int, float, complex)):
        return value
    xp = xp_of(buffer)
    with xp.cuda.Device(buffer.device.id):
        return xp.asarray(value)


def device_of(value: Any) -> Device:
    """The device a backend buffer lives on: the CPU for NumPy, its GPU for CuPy."""
    if isinstance(value, _NUMPY_TYPES):
        return CPU
    return Device("gpu", value.device.id)


def to_device(value: Any, device: Device | None) -> Any:
    """Move a raw buffer to ``device`` (the default device when None)."""
    device = device or devices()[0]
    if device.platform == "cpu":
        return value if isinstance(value, _NUMPY_TYPES) else value.get()
    cp = __import__("cupy")
    with cp.cuda.Device(device.id):
        return cp.asarray(value)
