"""Backends: where array buffers live and which array module (``xp``) computes on them.

A backend is an implementation table, not an interpreter: every primitive's
``impl(xp, *arrays, **params)`` is written once against the NumPy API and runs
on NumPy (CPU) or CuPy (GPU) buffers alike. A backend file holds only device
plumbing and the few overrides a library needs (``fungrad.backends.cupy``).

Devices are listed once, lazily, as JAX initialises its backends: the GPUs CuPy
sees (CuPy is imported only where a CUDA driver is present) and
``config.num_cpu_devices`` CPU devices (virtual ones beyond the first share the
host's memory, as XLA's ``--xla_force_host_platform_device_count``).

Placement follows JAX: an array put on a device with ``device_put(x, device)``
is *committed* to it, and operations on committed arrays run there (committed
arrays on two different devices are an error); every other array is
*uncommitted* and follows the committed arrays it meets, or else goes to the
default device (``config.default_device``).
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.util
from typing import Any, Sequence

import numpy as np

from fungrad._core import dtypes
from fungrad.backends.bfloat16 import Bfloat16Buffer, bits_of
from fungrad.config import config


class Device:
    """A place arrays live on, as ``jax.Device``: ``platform``, ``id``, ``device_kind``."""

    def __init__(self, platform: str, id: int = 0, device_kind: str | None = None) -> None:
        self.platform = platform
        self.id = id
        self.device_kind = device_kind or platform
        self.process_index = 0

    def __repr__(self) -> str:
        return f"{'Cpu' if self.platform == 'cpu' else 'Cuda'}Device(id={self.id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and (self.platform, self.id) == (other.platform, other.id)

    def __hash__(self) -> int:
        return hash((self.platform, self.id))


CPU = Device("cpu", 0)


class Sharding:
    """How an array is laid out over devices (``jax.sharding.Sharding``), the base of
    ``SingleDeviceSharding`` and ``fungrad.sharding.NamedSharding``.

    fungrad arrays live wholly on one device, so placing an array with a sharding
    (``device_put``, ``jit``'s ``in_shardings``/``out_shardings``) puts all of it on the
    sharding's first device; ``shard_shape`` still checks that the array fits the layout.
    """

    @property
    def device_set(self) -> set:
        """The devices the sharding spans."""
        raise NotImplementedError

    @property
    def _device_assignment(self) -> tuple:
        """The devices in order: an array placed with this sharding goes to the first."""
        raise NotImplementedError

    @property
    def num_devices(self) -> int:
        """How many devices the sharding spans."""
        return len(self.device_set)

    @property
    def addressable_devices(self) -> set:
        """The devices this process can reach: all of them (one process holds them all)."""
        return self.device_set

    def shard_shape(self, global_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of each device's piece of an array of ``global_shape``: the whole shape
        here; a sharding that splits dimensions raises when they do not divide."""
        return tuple(global_shape)


class SingleDeviceSharding(Sharding):
    """How an array is laid out: wholly on one device (``jax.sharding.SingleDeviceSharding``)."""

    def __init__(self, device: Device) -> None:
        self.device = device

    @property
    def _device_assignment(self) -> tuple:
        return (self.device,)

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
# scalars every array module combines with its arrays (NumPy's float64 and complex128
# scalars subclass float and complex, but are host buffers: they move to a device)
_PYTHON_SCALARS = (bool, int, float, complex)
_PLATFORM_NAMES = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu"}


# --------------------------------------------------------------------------- listing devices

def _gpu_possible() -> bool:
    """Whether CuPy is installed and a CUDA driver library loads (no CuPy import: that
    takes seconds and fails anyway without a driver)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def cupy_module() -> Any:
    """The ``cupy`` module (imported on first use: fungrad never needs it otherwise)."""
    return importlib.import_module("cupy")


def _gpus() -> list[Device]:
    if not _gpu_possible():
        return []
    try:
        cp = cupy_module()
        count = cp.cuda.runtime.getDeviceCount()
        names = [cp.cuda.runtime.getDeviceProperties(i)["name"] for i in range(count)]
    except Exception:  # CuPy present, but no usable driver or device
        return []
    return [Device("gpu", i, n.decode() if isinstance(n, bytes) else str(n))
            for i, n in enumerate(names)]


def _allowed_platforms() -> list[str]:
    """``config.platforms`` as canonical platform names, in order of preference."""
    if config.platforms is None:
        return ["gpu", "cpu"]
    names = [p.strip().lower() for p in str(config.platforms).split(",") if p.strip()]
    bad = [p for p in names if p not in _PLATFORM_NAMES]
    if bad or not names:
        raise RuntimeError(f"config platforms (FUNGRAD_PLATFORMS) {config.platforms!r}: unknown "
                           f"platform {bad[0] if bad else ''!r}; known: cpu, gpu (or cuda)")
    return [_PLATFORM_NAMES[p] for p in names]


_table: dict[str, list[Device]] | None = None


def _listing() -> dict[str, list[Device]]:
    """Platform -> its devices, the preferred platform first (listed once)."""
    global _table
    if _table is None:
        table: dict[str, list[Device]] = {}
        for platform in _allowed_platforms():
            if platform == "cpu":
                table["cpu"] = [CPU] + [Device("cpu", i) for i in range(1, config.num_cpu_devices)]
            else:
                gpus = _gpus()
                if gpus:
                    table["gpu"] = gpus
                elif config.platforms is not None:
                    raise RuntimeError(
                        f"Unable to initialize backend 'gpu' requested by config platforms "
                        f"{config.platforms!r}: CuPy sees no GPU (install fungrad[gpu] with "
                        "the wheel of your CUDA version, see docs/gpu.md)")
        _table = table
        config.devices_listed = True
    return _table


def default_backend() -> str:
    """The platform of the preferred backend: ``"gpu"`` when CuPy sees a GPU, else ``"cpu"``."""
    return next(iter(_listing()))


def devices(backend: str | None = None) -> list[Device]:
    """The devices of ``backend`` (``"cpu"``, ``"gpu"``/``"cuda"``), by default of the
    preferred backend: the GPUs when CuPy sees one (as ``jax.devices()``).

    Examples:
        >>> import fungrad
        >>> fungrad.devices("cpu")[0]
        CpuDevice(id=0)
    """
    table = _listing()
    if backend is None:
        return list(table[default_backend()])
    platform = _PLATFORM_NAMES.get(str(backend).lower())
    if platform is None:
        raise RuntimeError(f"devices: unknown backend {backend!r}; known: cpu, gpu (or cuda)")
    if platform not in table:
        raise RuntimeError(f"devices: backend {backend!r} is not available (available: "
                           f"{', '.join(table)})")
    return list(table[platform])


def _resolve(spec: Any, what: str) -> Device:
    """A Device from a Device, a platform name, ``"platform:id"`` or a ``Sharding`` (its
    first device)."""
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, Sharding):
        return spec._device_assignment[0]
    if isinstance(spec, str):
        platform, _, index = spec.partition(":")
        listed = devices(platform)
        if not index:
            return listed[0]
        if index.isdigit() and int(index) < len(listed):
            return listed[int(index)]
        raise ValueError(f"{what}: no device {spec!r}; {platform} has {len(listed)} "
                         f"device(s): {listed}")
    raise TypeError(f"{what}: expected a Device, a platform name or 'platform:id', "
                    f"got {type(spec).__name__}: {spec!r}")


def default_device() -> Device:
    """Where uncommitted arrays and computations go: ``config.default_device`` (or the
    ``FUNGRAD_DEFAULT_DEVICE`` environment variable), else the first device of the
    preferred backend."""
    spec = config.default_device
    if spec is None:
        return devices()[0]
    return _resolve(spec, "default_device (config jax_default_device or FUNGRAD_DEFAULT_DEVICE)")


def as_device(spec: Any, what: str) -> Device:
    """``spec`` (a Device, a ``SingleDeviceSharding``, ``"gpu"``, ``"cpu:1"``) as a Device;
    ``what`` names the caller in errors."""
    return _resolve(spec, what)


def names_device(spec: Any) -> bool:
    """Whether ``as_device`` reads ``spec`` as a device: a Device, a ``Sharding`` or a
    string naming a platform (``"cpu"``, ``"gpu:1"``), whether or not that device exists
    here (``as_device`` says which devices do)."""
    if isinstance(spec, str):
        return spec.partition(":")[0].lower() in _PLATFORM_NAMES
    return isinstance(spec, (Device, Sharding))


# Whether the default device is a CPU, so that operations on host values alone run on
# NumPy. Starts True where no GPU can exist (no CuPy or no driver: nothing to list),
# else False until the default device is first resolved.
host_default = not _gpu_possible()


def refresh_default() -> bool:
    """Recompute ``host_default`` from the default device; return it."""
    global host_default
    host_default = default_device().platform == "cpu"
    return host_default


config.on_change("default_device", refresh_default)


# --------------------------------------------------------------------------- buffers

def xp_of(value: Any) -> Any:
    """The array module that computes on ``value``'s buffer: NumPy, or CuPy with
    fungrad's overrides (``fungrad.backends.cupy.xp``) for a CuPy buffer (or a bfloat16
    buffer stored in one)."""
    if type(value) is Bfloat16Buffer:
        value = value.storage
    if isinstance(value, _NUMPY_TYPES) or not type(value).__module__.startswith("cupy"):
        return np  # other objects (e.g. a donated Array's placeholder) fail in NumPy, clearly
    return _cupy_xp()


def _cupy_xp() -> Any:
    """CuPy with fungrad's overrides (the module is imported once a CuPy buffer exists)."""
    return importlib.import_module("fungrad.backends.cupy").xp


def is_host(value: Any) -> bool:
    """Whether ``value`` is a host value (a NumPy buffer or a Python scalar)."""
    return isinstance(value, _NUMPY_TYPES + (bool, int, float, complex))


def to_device_of(value: Any, buffer: Any) -> Any:
    """Host ``value`` copied to the device holding ``buffer`` (Python scalars stay: every
    array module combines them with its own arrays)."""
    if type(value) in _PYTHON_SCALARS:
        return value
    return to_device(value, device_of(buffer))


def default_cpu() -> Device:
    """The CPU device uncommitted host buffers belong to: the default device when it is a
    CPU, else the first CPU (virtual CPU devices share the host's memory)."""
    device = default_device()
    return device if device.platform == "cpu" else CPU


def device_of(value: Any) -> Device:
    """The device a raw buffer lives on (a host buffer: ``default_cpu()``)."""
    if isinstance(value, _NUMPY_TYPES):
        return default_cpu()
    return Device("gpu", value.device.id)


def to_device(value: Any, device: Device | None) -> Any:
    """A raw buffer moved to ``device`` (the default device when None); host buffers
    stay as they are for a CPU device. bfloat16 goes to a GPU as a ``Bfloat16Buffer``
    (CuPy has no bfloat16: its bits, in uint16)."""
    device = device or default_device()
    if device.platform == "cpu" or getattr(value, "dtype", None) == dtypes.float0:
        return value if is_host(value) else value.get()  # float0 (no data) stays on the host
    if not is_host(value) and value.device.id == device.id:
        return value
    if value.dtype in dtypes.small_floats:
        raise TypeError(f"device_put: {value.dtype.name} arrays cannot be placed on "
                        f"{device}: CuPy has no {value.dtype.name}; convert them to "
                        "float32 or bfloat16 on the CPU first")
    cp = cupy_module()
    with cp.cuda.Device(device.id):
        if value.dtype == dtypes.bfloat16:
            return Bfloat16Buffer(cp.asarray(bits_of(value)))
        return cp.asarray(value)


def to_backend(value: Any, xp: Any) -> Any:
    """Buffer ``value`` (a program's constant) as a buffer of array module ``xp``: for
    NumPy the host buffer itself, or a host copy of a device buffer (a constant does not
    decide where a program runs: JAX too copies it to the program's device); for CuPy a
    copy of a host buffer on the current GPU (bfloat16 as a ``Bfloat16Buffer`` of its
    bits; float0, which holds no data, stays on the host as in JAX)."""
    if xp is np:
        return value if is_host(value) else value.get()
    if not isinstance(value, _NUMPY_TYPES) or value.dtype == dtypes.float0:
        return value
    if value.dtype == dtypes.bfloat16:
        return Bfloat16Buffer(xp.asarray(bits_of(value)))
    return xp.asarray(value)


def all_to_device(vals: list, device: Device) -> tuple[Any, list]:
    """The array module of ``device`` and ``vals`` with every buffer moved there (Python
    scalars stay)."""
    moved = [v if type(v) in _PYTHON_SCALARS else to_device(v, device) for v in vals]
    if device.platform == "cpu":
        return np, moved
    return _cupy_xp(), moved


def _shape_str(x: Any) -> str:
    """``float32[2,3]``, as JAX names an argument's type in placement errors."""
    aval = x.aval
    dtype = "bfloat16" if aval.dtype.name == "bfloat16" else aval.dtype.name
    return f"{dtype}[{','.join(map(str, aval.shape))}]"


def incompatible_devices(fn_name: str, labels: Sequence[str], arrays: Sequence[Any]
                         ) -> ValueError:
    """JAX's error for committed arrays on different devices in one computation, naming
    the first two arguments that disagree (``arrays`` are ``Array`` s, ``labels`` their
    names)."""
    committed = [(label, a) for label, a in zip(labels, arrays)
                 if getattr(a, "_device", None) is not None]
    first = committed[0]
    second = next(c for c in committed if c[1]._device != first[1]._device)

    def describe(label: str, a: Any) -> str:
        d = a._device
        return (f"argument {label} of {fn_name} with shape {_shape_str(a)} and with device "
                f"ids [{d.id}] on platform {d.platform.upper()}")
    return ValueError("Received incompatible devices for jitted computation. Got "
                      f"{describe(*first)} and {describe(*second)}")


def argument_labels(n: int) -> list[str]:
    """Names for the operands of an operation: ``x``, ``y``, then ``args[k]``."""
    return ["x", "y"][:n] + [f"args[{k}]" for k in range(2, n)]
