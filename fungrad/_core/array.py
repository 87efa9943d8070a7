"""``fungrad.Array``: an immutable array holding a backend buffer."""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import backends, tree
from fungrad._core import dtypes, transfer
from fungrad._core.array_methods import ArrayMethods
from fungrad._core.core import ShapedArray, Tracer
from fungrad.config import config

class Array(ArrayMethods):
    """An immutable n-dimensional array on a device (the eager value type).

    Holds a backend buffer (a NumPy array on CPU, a CuPy array on GPU), a weak-type
    flag (set for values that came from Python scalars; see ``dtypes``) and the device
    it is committed to (None: uncommitted, see ``fungrad.backends``).
    """
    __slots__ = ("_value", "weak_type", "_aval", "_device")
    __array_priority__ = 100

    def __init__(self, value: Any, weak_type: bool = False,
                 device: backends.Device | None = None) -> None:
        self._value = value
        self.weak_type = weak_type
        self._aval = None
        self._device = device

    shape = property(lambda self: self._value.shape, doc="The shape, a tuple of ints.")
    dtype = property(lambda self: self._value.dtype, doc="The NumPy dtype of the elements.")
    ndim = property(lambda self: self._value.ndim, doc="The number of dimensions.")
    size = property(lambda self: int(self._value.size), doc="The number of elements.")
    nbytes = property(lambda self: int(self._value.nbytes), doc="The buffer's size in bytes.")
    itemsize = property(lambda self: self._value.dtype.itemsize,
                        doc="The size of one element in bytes.")

    @property
    def aval(self) -> ShapedArray:
        """Built on first use and kept: the array is immutable, and promotion and shape
        checks ask for it several times per operation."""
        aval = self._aval
        if aval is None:
            aval = self._aval = ShapedArray(self._value.shape, self._value.dtype, self.weak_type)
        return aval

    @property
    def device(self) -> backends.Device:
        """The device holding the array: the one it is committed to, else its buffer's
        (``CpuDevice(id=0)``, or the default CPU device, for a NumPy buffer)."""
        return self._device or backends.device_of(self._value)

    @property
    def committed(self) -> bool:
        """Whether the array was put on its device explicitly (``device_put(x, device)``),
        so operations on it run there; uncommitted arrays follow the committed ones."""
        return self._device is not None

    def devices(self) -> set:
        """The set of devices holding the array: ``{self.device}``, as ``jax.Array.devices``."""
        return {self.device}

    @property
    def sharding(self) -> backends.SingleDeviceSharding:
        """The array's layout: all of it on ``self.device``."""
        return backends.SingleDeviceSharding(self.device)

    @property
    def addressable_shards(self) -> list["Shard"]:
        """The pieces of the array on devices this process reaches (``jax.Array``'s): one
        ``Shard``, the whole array on ``self.device``."""
        return [Shard(self.device, self.sharding, self.shape, self)]

    global_shards = property(lambda self: self.addressable_shards,
                             doc="The pieces on every device: the one ``Shard``.")

    def addressable_data(self, index: int) -> "Array":
        """The data of addressable shard ``index``: the array itself (JAX, with one shard,
        also answers any index with it)."""
        return self

    def _host(self, explicit: bool = False) -> np.ndarray:
        """The data on the host: the buffer itself on a CPU, else a copy from the device
        (a device-to-host transfer, which the transfer guard checks)."""
        v = self._value
        if isinstance(v, (np.ndarray, np.generic)):
            return np.asarray(v)
        level = config.transfer_guard_device_to_host
        if level != "allow":
            transfer.guard(level, "device-to-host", explicit, self.aval.str_short())
        return v.get()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return numpy_view(self._host(), dtype, copy)

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
        """The buffer as a DLPack capsule, without a copy (NumPy's or CuPy's export), so
        ``torch.from_dlpack(x)`` and ``np.from_dlpack(x)`` share its memory. Arrays are
        immutable: the consumer must not write to it, as with ``jax.Array``."""
        v = self._value
        buffer = np.asarray(v) if isinstance(v, np.generic) else v
        return buffer.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device,
                                 copy=copy)

    def __dlpack_device__(self) -> tuple[int, int]:
        """The DLPack device type and id of the buffer: ``(1, 0)`` (CPU) for a NumPy buffer,
        ``(2, id)`` (CUDA) for a CuPy one."""
        v = self._value
        return (1, 0) if isinstance(v, (np.ndarray, np.generic)) else v.__dlpack_device__()

    def copy_to_host_async(self) -> None:
        """Start copying the array to the host (``jax.Array.copy_to_host_async``): copies
        are synchronous here, made when the data is read, so this does nothing."""

    def item(self, *args: Any) -> Any:
        """One element as a Python scalar (``numpy.ndarray.item``)."""
        return self._host().item(*args)

    def tolist(self) -> Any:
        """The array as nested Python lists of Python scalars."""
        return self._host().tolist()

    def __bool__(self) -> bool:
        return bool(self._host())

    def __int__(self) -> int:
        return int(self._host())

    def __float__(self) -> float:
        return float(self._host())

    def __complex__(self) -> complex:
        return complex(self._host())

    def __index__(self) -> int:
        if not dtypes.is_integer(self.dtype):
            raise TypeError(f"only integer arrays can be used as an index, got {self.dtype}")
        return int(self._host())

    def __format__(self, spec: str) -> str:
        return format(self._host().item(), spec) if self.ndim == 0 else format(str(self), spec)

    def block_until_ready(self) -> "Array":
        """Return the array: computation is synchronous here (kept for ``jax.Array`` code)."""
        return self

    def copy(self) -> "Array":
        """A new array with its own copy of the buffer."""
        return Array(self._value.copy(), self.weak_type, self._device)

    def __copy__(self) -> "Array":
        return self

    def __deepcopy__(self, memo: dict) -> "Array":
        return self

    def __reduce__(self):
        return (_rebuild, (self._host(), self.weak_type))

    def __repr__(self) -> str:
        host = self._host()
        body = np.array2string(np.asarray(host), separator=", ", prefix="Array(",
                               threshold=1000)
        extra = ", weak_type=True" if self.weak_type else ""
        dt = "bfloat16" if host.dtype == dtypes.bfloat16 else host.dtype.name
        return f"Array({body}, dtype={dt}{extra})"

    def __str__(self) -> str:
        return str(self._host())


class Shard:
    """One device's piece of an array (``jax.Shard``): its ``device``, its ``index`` in the
    whole array (a tuple of slices), its ``replica_id`` and its ``data``. A fungrad array
    lives wholly on one device, so its one shard holds all of it.

    >>> import fungrad.numpy as jnp
    >>> shard, = jnp.ones((2, 3)).addressable_shards
    >>> shard.index, shard.replica_id, shard.data.shape
    ((slice(None, None, None), slice(None, None, None)), 0, (2, 3))
    """

    def __init__(self, device: backends.Device, sharding: backends.Sharding,
                 global_shape: tuple[int, ...], data: "Array | None" = None) -> None:
        self.device, self.data = device, data
        self._sharding, self._global_shape = sharding, tuple(global_shape)

    @property
    def index(self) -> tuple[slice, ...]:
        """Where the shard sits in the whole array: every element."""
        return (slice(None),) * len(self._global_shape)

    @property
    def replica_id(self) -> int:
        """Which copy of its piece the shard is: 0, the only one."""
        return 0

    def __repr__(self) -> str:
        return (f"Shard(device={self.device!r}, index={self.index}, "
                f"replica_id={self.replica_id}, data={self.data})")


def _rebuild(value: np.ndarray, weak_type: bool) -> Array:
    return Array(np.asarray(value), weak_type)


def numpy_view(host: np.ndarray, dtype: Any = None, copy: Any = None) -> np.ndarray:
    """Host data as NumPy gets an array's data: a read-only view (the array is immutable),
    converted to ``dtype``; a writable copy with ``copy``."""
    out = np.asarray(host, dtype=dtype)
    if copy:
        return out.copy()
    out = out.view()
    out.flags.writeable = False
    return out


def device_put(x: Any, device: Any = None, *, src: Any = None, donate: bool = False,
               may_alias: bool | None = None) -> Any:
    """Put ``x`` (any pytree of arrays or scalars) on ``device`` as fungrad Arrays
    (``jax.device_put``).

    With a ``device`` (a ``Device``, a ``SingleDeviceSharding``, ``"gpu"``, ``"cpu:1"``, or a
    ``fungrad.sharding.NamedSharding``: its mesh's first device, the arrays whole) the
    arrays are *committed* to it: operations on them run there, and mixing them with
    arrays committed elsewhere is an error. Without one, Arrays stay as they are and
    other values become uncommitted arrays on the default device.

    Examples:
        >>> import fungrad
        >>> x = fungrad.device_put([1.0, 2.0], fungrad.devices("cpu")[0])
        >>> x[0].committed, x[0].device
        (True, CpuDevice(id=0))
    """
    del src, donate, may_alias  # accepted for JAX's signature; a copy is always safe here
    target = None if device is None else backends.as_device(device, "device_put")
    if isinstance(device, backends.Sharding):  # each array must fit the layout, as in JAX
        tree.map(lambda v: device.shard_shape(np.shape(v)), x)
    return tree.map(lambda v: _device_put_leaf(v, target), x)


def _device_put_leaf(x: Any, device: backends.Device | None) -> Any:
    if isinstance(x, Tracer):
        return x
    if isinstance(x, Array):
        if device is None:
            return x
        level = config.transfer_guard_device_to_device
        if level != "allow" and device != x.device:
            transfer.guard(level, "device-to-device", True, x.aval.str_short())
        value, weak = x._value, x.weak_type
    else:
        dtype, weak = dtypes.dtype_and_weak(x)
        value = np.asarray(x, dtype=dtype)
        level = config.transfer_guard_host_to_device
        if level != "allow":
            transfer.guard(level, "host-to-device", True,
                           ShapedArray(value.shape, value.dtype).str_short())
        if device is None:
            return Array(value if backends.host_default else backends.to_device(value, None),
                         weak)
    return Array(backends.to_device(value, device), weak, device)
