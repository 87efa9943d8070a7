"""``fungrad.sharding``: meshes of devices, partition specs and shardings (``jax.sharding``).

A ``Mesh`` arranges devices in a named grid; a ``PartitionSpec`` (``P``) says which
dimensions of an array are split over which mesh axes; a ``NamedSharding`` pairs the two.
They are what ``fungrad.shard_map`` splits its inputs with, and what ``device_put`` and
``jit``'s ``in_shardings``/``out_shardings`` accept, with JAX's checks (a spec naming an
axis the mesh lacks, a dimension its mesh axes do not divide).

fungrad has no multi-device arrays: an array placed with a ``NamedSharding`` is put whole
on the first device of its mesh (``mesh.devices.flat[0]``), and ``x.sharding`` reports that
``SingleDeviceSharding``. The layout is checked, not applied; see ``docs/sharding.md``.

Examples:
    >>> import fungrad, fungrad.numpy as jnp
    >>> from fungrad.sharding import NamedSharding, PartitionSpec as P
    >>> mesh = fungrad.sharding.make_mesh((1,), ("x",))
    >>> s = NamedSharding(mesh, P("x"))
    >>> s.shard_shape((4, 3))
    (4, 3)
    >>> fungrad.device_put(jnp.ones((4, 3)), s).device
    CpuDevice(id=0)
"""
from __future__ import annotations

import contextvars
import dataclasses
import enum
import functools
import math
import warnings
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from fungrad import backends, tree
from fungrad._core.array import device_put
from fungrad._core.namespace import public_dir
from fungrad.backends import Device, Sharding, SingleDeviceSharding

__all__ = ["AbstractDevice", "AbstractMesh", "AxisType", "Mesh", "NamedSharding", "P",
           "PartitionSpec", "Sharding", "SingleDeviceSharding", "auto_axes", "explicit_axes",
           "get_abstract_mesh", "get_mesh", "make_mesh", "make_single_device_sharding",
           "reshard", "set_mesh", "use_abstract_mesh"]
__dir__ = public_dir(__all__)

AxisName = Hashable


class AxisType(enum.Enum):
    """How a mesh axis is used (``jax.sharding.AxisType``): ``Auto`` (the compiler shards),
    ``Explicit`` (shardings are part of array types) or ``Manual`` (inside ``shard_map``).
    fungrad records the type; every array is whole on one device whatever it is."""
    Auto = enum.auto()
    Explicit = enum.auto()
    Manual = enum.auto()

    def __repr__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- PartitionSpec

class _Unconstrained:
    """``P.UNCONSTRAINED``: a dimension whose sharding is left to the compiler."""

    def __repr__(self) -> str:
        return "UNCONSTRAINED"


def _canonical_entry(entry: Any) -> Any:
    """One dimension's entry: None, a mesh axis name, or a tuple of two names or more (a
    list becomes a tuple, ``('x',)`` becomes ``'x'`` and ``()`` None, as in JAX)."""
    if isinstance(entry, (tuple, list)):
        entry = tuple(entry)
        return None if not entry else entry[0] if len(entry) == 1 else entry
    return entry


class PartitionSpec:
    """How an array's dimensions map to mesh axes (``jax.sharding.PartitionSpec``, ``P``).

    Entry ``i`` says how dimension ``i`` is split: ``None`` (not split), a mesh axis name,
    or a tuple of names (split over their product, the first name major). Dimensions past
    the last entry are not split. ``unreduced``/``reduced`` (sets of mesh axes) are kept
    for JAX's API; whole arrays are never partial sums here.

    Examples:
        >>> from fungrad.sharding import PartitionSpec as P
        >>> P("x", None), P(("x", "y")), len(P("x", None))
        (P('x', None), P(('x', 'y'),), 2)
    """
    UNCONSTRAINED = _Unconstrained()

    def __init__(self, *partitions: Any, unreduced: frozenset | set = frozenset(),
                 reduced: frozenset | set = frozenset()) -> None:
        for name, axes in (("unreduced", unreduced), ("reduced", reduced)):
            if not isinstance(axes, (set, frozenset)):
                raise TypeError(f"{name} argument of PartitionSpec should of type `frozenset` "
                                f"or `set`. Got type {axes}")
        self._partitions = tuple(_canonical_entry(p) for p in partitions)
        self.unreduced, self.reduced = frozenset(unreduced), frozenset(reduced)
        if self.unreduced & self.reduced:
            raise ValueError("`unreduced` and `reduced` argument to PartitionSpec cannot "
                             f"overlap. Got unreduced: {self.unreduced} and reduced: "
                             f"{self.reduced}")

    @property
    def partitions(self) -> tuple:
        """The entries, one per leading dimension."""
        return self._partitions

    def __repr__(self) -> str:
        inner = repr(self._partitions)[1:-1]  # "'x', None" or "'x',", as JAX prints it
        extra = ", ".join(f"{n}={set(a)!r}" for n, a in (("unreduced", self.unreduced),
                                                         ("reduced", self.reduced)) if a)
        if extra and inner:
            inner += " " if inner.endswith(",") else ", "
        return f"P({inner}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionSpec) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return self._partitions, self.unreduced, self.reduced

    def __len__(self) -> int:
        return len(self._partitions)

    def __iter__(self):
        return iter(self._partitions)

    def __getitem__(self, i: Any) -> Any:
        return self._partitions[i]

    def __add__(self, other: Any) -> PartitionSpec:
        if isinstance(other, PartitionSpec):
            return PartitionSpec(*self._partitions, *other._partitions,
                                 unreduced=self.unreduced | other.unreduced,
                                 reduced=self.reduced | other.reduced)
        if isinstance(other, tuple):
            return PartitionSpec(*self._partitions, *other)
        return NotImplemented

    def __radd__(self, other: Any) -> PartitionSpec:
        if isinstance(other, tuple):
            return PartitionSpec(*other, *self._partitions)
        return NotImplemented

    def index(self, value: Any) -> int:
        """The position of the entry ``value``."""
        return self._partitions.index(_canonical_entry(value))

    def count(self, value: Any) -> int:
        """How many entries equal ``value``."""
        return self._partitions.count(_canonical_entry(value))


P = PartitionSpec


def _axes_per_dim(spec: PartitionSpec, ndim: int) -> list[tuple]:
    """The mesh axes splitting each of ``ndim`` dimensions under ``spec``, major first:
    ``P('x', None, ('y', 'z'))`` gives ``[('x',), (), ('y', 'z')]`` (and ``()`` for the
    dimensions past its end). The caller has checked that ``spec`` is not too long."""
    names = []
    for entry in spec.partitions + (None,) * (ndim - len(spec)):
        if entry is None or entry is PartitionSpec.UNCONSTRAINED:
            names.append(())
        else:
            names.append(entry if isinstance(entry, tuple) else (entry,))
    return names


def _check_unique_axes(spec: PartitionSpec, what: str) -> None:
    """A mesh axis splits at most one dimension, once (JAX's ``DuplicateSpecError``)."""
    used = [n for names in _axes_per_dim(spec, len(spec)) for n in names]
    repeated = sorted({str(n) for n in used if used.count(n) > 1})
    if repeated:
        raise ValueError(f"A single {what} specification can map every mesh axis to at most "
                         f"one positional dimension, but {spec} has duplicate entries for "
                         f"{', '.join(f'`{n}`' for n in repeated)}")


# --------------------------------------------------------------------------- meshes

def _axis_types(axis_names: tuple, axis_types: Any, name: str) -> tuple:
    """``axis_types`` as a tuple with one ``AxisType`` per axis (all ``Auto`` by default)."""
    if axis_types is None:
        return (AxisType.Auto,) * len(axis_names)
    if not isinstance(axis_types, tuple):
        axis_types = (axis_types,)
    if not all(isinstance(t, AxisType) for t in axis_types):
        raise TypeError(f"axis_types passed to {name} must be of type "
                        f"`fungrad.sharding.AxisType`. Got {axis_types} of type "
                        f"{tuple(type(t) for t in axis_types)}")
    if len(axis_types) != len(axis_names):
        raise ValueError("Number of axis names should match the number of axis_types. Got "
                         f"axis_names={axis_names} and axis_types={axis_types}")
    return axis_types


class _MeshAxes:
    """What a ``Mesh`` and an ``AbstractMesh`` share: named axes with sizes and types."""
    axis_names: tuple
    axis_sizes: tuple
    axis_types: tuple

    @property
    def shape(self) -> dict:
        """Axis name -> size, in mesh order."""
        return dict(self.shape_tuple)

    @property
    def shape_tuple(self) -> tuple:
        """``((name, size), ...)`` in mesh order."""
        return tuple(zip(self.axis_names, self.axis_sizes))

    @property
    def size(self) -> int:
        """The number of devices: the product of the axis sizes (0 for the empty mesh)."""
        return math.prod(self.axis_sizes) if self.axis_names else 0

    @property
    def empty(self) -> bool:
        """Whether the mesh has no axes (what ``get_mesh`` gives outside ``set_mesh``)."""
        return self.size == 0

    def _axes_of_type(self, kind: AxisType) -> tuple:
        return tuple(n for n, t in zip(self.axis_names, self.axis_types) if t is kind)

    @property
    def auto_axes(self) -> tuple:
        """The names of the ``Auto`` axes."""
        return self._axes_of_type(AxisType.Auto)

    @property
    def explicit_axes(self) -> tuple:
        """The names of the ``Explicit`` axes."""
        return self._axes_of_type(AxisType.Explicit)

    @property
    def manual_axes(self) -> tuple:
        """The names of the ``Manual`` axes."""
        return self._axes_of_type(AxisType.Manual)

    def _axes_str(self) -> str:
        return ", ".join(f"{n!r}: {s}" for n, s in self.shape_tuple)


@dataclasses.dataclass(frozen=True)
class AbstractDevice:
    """The kind of device an ``AbstractMesh`` stands for (``jax.sharding.AbstractDevice``)."""
    device_kind: str
    num_cores: int | None
    platform: str


class AbstractMesh(_MeshAxes):
    """A mesh's axis names, sizes and types without devices (``jax.sharding.AbstractMesh``):
    enough for ``shard_map``, which only splits arrays and names axes.

    Examples:
        >>> from fungrad.sharding import AbstractMesh
        >>> AbstractMesh((2, 4), ("x", "y"))
        AbstractMesh('x': 2, 'y': 4, axis_types=(Auto, Auto))
    """

    def __init__(self, axis_sizes: tuple[int, ...], axis_names: tuple[AxisName, ...],
                 axis_types: AxisType | tuple[AxisType, ...] | None = None, *,
                 abstract_device: AbstractDevice | None = None) -> None:
        self.axis_sizes, self.axis_names = tuple(axis_sizes), tuple(axis_names)
        self.axis_types = _axis_types(self.axis_names, axis_types, "AbstractMesh")
        self.abstract_device = abstract_device

    def __repr__(self) -> str:
        device = self.abstract_device
        extra = "" if device is None else (f", device_kind={device.device_kind}, num_cores="
                                           f"{device.num_cores}, platform={device.platform}")
        return f"AbstractMesh({self._axes_str() or '()'}, axis_types={self.axis_types}{extra})"

    def _key(self) -> tuple:
        return self.axis_sizes, self.axis_names, self.axis_types, self.abstract_device

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AbstractMesh) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def abstract_mesh(self) -> AbstractMesh:
        """The mesh itself."""
        return self

    @property
    def devices(self) -> Any:
        """An abstract mesh has no devices: a ``ValueError``, as in JAX."""
        raise ValueError("AbstractMesh does not implement devices")

    def update(self, axis_sizes: Any = None, axis_names: Any = None,
               axis_types: Any = None) -> AbstractMesh:
        """A copy with some of the sizes, names or types replaced."""
        return AbstractMesh(self.axis_sizes if axis_sizes is None else axis_sizes,
                            self.axis_names if axis_names is None else axis_names,
                            self.axis_types if axis_types is None else axis_types,
                            abstract_device=self.abstract_device)


class Mesh(_MeshAxes):
    """Devices arranged in a grid with named axes (``jax.sharding.Mesh``).

    ``devices`` is an array (or nested sequence) of ``Device`` objects whose rank is the
    number of ``axis_names``. ``with mesh:`` sets the mesh for ``shard_map(mesh=None)`` as
    ``set_mesh`` does, with JAX's ``DeprecationWarning`` (use ``set_mesh``).

    Examples:
        >>> import numpy as np, fungrad
        >>> from fungrad.sharding import Mesh
        >>> mesh = Mesh(np.array(fungrad.devices()[:1]).reshape(1, 1), ("x", "y"))
        >>> mesh, mesh.shape
        (Mesh(axis_sizes=(1, 1), axis_names=('x', 'y'), axis_types=(Auto, Auto)), {'x': 1, 'y': 1})
    """

    def __init__(self, devices: np.ndarray | Sequence[Device], axis_names: Any,
                 axis_types: AxisType | tuple[AxisType, ...] | None = None) -> None:
        devices = np.array(devices, dtype=object)
        axis_names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
        if any(n is None for n in axis_names):
            raise ValueError(f"Mesh axis names cannot be None. Got: {axis_names}")
        if devices.ndim != len(axis_names):
            raise ValueError("Mesh requires the ndim of its first argument (`devices`) to equal "
                             "the length of its second argument (`axis_names`), but got "
                             f"devices.ndim == {devices.ndim} and len(axis_names) == "
                             f"{len(axis_names)}.")
        devices.flags.writeable = False
        self.devices, self.axis_names = devices, axis_names
        self.axis_sizes = devices.shape
        self.axis_types = _axis_types(axis_names, axis_types, "Mesh")
        self._entered: list[contextvars.Token] = []

    def __repr__(self) -> str:
        if self.empty:
            return "Mesh(axis_sizes=(), axis_names=())"
        return (f"Mesh(axis_sizes={self.axis_sizes}, axis_names={self.axis_names!r}, "
                f"axis_types={self.axis_types})")

    def __str__(self) -> str:
        return "Mesh()" if self.empty else \
            f"Mesh({self._axes_str()}, axis_types={self.axis_types})"

    def _key(self) -> tuple:
        return tuple(self.devices.flat), self.axis_sizes, self.axis_names, self.axis_types

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mesh) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __enter__(self) -> Mesh:
        warnings.warn("`with mesh:` context manager has been deprecated. Please use `with "
                      "fungrad.sharding.set_mesh(mesh):` instead.", DeprecationWarning,
                      stacklevel=2)
        self._entered.append(_CONTEXT_MESH.set(self))
        return self

    def __exit__(self, *exc: Any) -> None:
        _CONTEXT_MESH.reset(self._entered.pop())

    @property
    def device_ids(self) -> np.ndarray:
        """The devices' ids, in the mesh's shape."""
        return np.vectorize(lambda d: d.id, otypes=[int])(self.devices)

    @property
    def local_devices(self) -> list[Device]:
        """The devices of this process: all of them (one process holds every device)."""
        return list(self.devices.flat)

    @property
    def local_mesh(self) -> Mesh:
        """The part of the mesh on this process's devices: the whole mesh."""
        return self

    is_multi_process = False

    @property
    def abstract_mesh(self) -> AbstractMesh:
        """The mesh's names, sizes and types, and the kind of its devices."""
        first = self.devices.flat[0] if self.devices.size else None
        device = None if first is None else AbstractDevice(first.device_kind, None,
                                                           first.platform)
        return AbstractMesh(self.axis_sizes, self.axis_names, self.axis_types,
                            abstract_device=device)

    def update(self, devices: Any = None, axis_names: Any = None,
               axis_types: Any = None) -> Mesh:
        """A copy with some of the devices, names or types replaced."""
        return Mesh(self.devices if devices is None else devices,
                    self.axis_names if axis_names is None else axis_names,
                    self.axis_types if axis_types is None else axis_types)


def make_mesh(axis_shapes: Sequence[int], axis_names: Sequence[str],
              axis_types: tuple[AxisType, ...] | None = None, *,
              devices: Sequence[Device] | None = None) -> Mesh:
    """A mesh of the first ``prod(axis_shapes)`` devices (of ``devices``, default
    ``fungrad.devices()``) in order, with every axis ``Explicit`` unless ``axis_types``
    says otherwise (``jax.make_mesh``).

    Examples:
        >>> import fungrad
        >>> fungrad.sharding.make_mesh((1,), ("batch",))
        Mesh(axis_sizes=(1,), axis_names=('batch',), axis_types=(Explicit,))
    """
    shape = tuple(axis_shapes)
    try:
        shape = tuple(int(s) for s in shape)  # as JAX converts them
    except (TypeError, ValueError):
        raise ValueError("`axis_shapes` passed to `make_mesh` should be a sequence of ints. "
                         f"Got {axis_shapes}") from None
    devices = list(backends.devices() if devices is None else devices)
    if math.prod(shape) > len(devices):
        raise ValueError(f"Number of devices {len(devices)} must be >= the product of "
                         f"mesh_shape {shape}")
    grid = np.array(devices[:math.prod(shape)], dtype=object).reshape(shape)
    if axis_types is None:
        axis_types = (AxisType.Explicit,) * len(shape)
    return Mesh(grid, axis_names, axis_types)


# --------------------------------------------------------------------------- the context mesh

_EMPTY_MESH = Mesh(np.empty((), dtype=object), ())
_CONTEXT_MESH: contextvars.ContextVar[Mesh] = contextvars.ContextVar("mesh", default=_EMPTY_MESH)


class set_mesh:
    """Set the mesh that ``shard_map(mesh=None)`` uses (``jax.set_mesh``): from here on
    when called as a function, or inside a ``with fungrad.sharding.set_mesh(mesh):`` block.
    ``None`` clears it.

    Examples:
        >>> import fungrad
        >>> from fungrad.sharding import get_mesh, make_mesh, set_mesh
        >>> with set_mesh(make_mesh((1,), ("x",))):
        ...     print(get_mesh().axis_names)
        ('x',)
        >>> get_mesh().empty
        True
    """
    __slots__ = ("_token",)

    def __init__(self, mesh: Mesh | None) -> None:
        if mesh is not None and not isinstance(mesh, Mesh):
            raise ValueError(f"Expected mesh of type `fungrad.sharding.Mesh`. Got {type(mesh)}")
        if mesh is not None and mesh.manual_axes:
            raise ValueError(f"mesh {mesh} contains manual axes which is not allowed when using "
                             "`set_mesh`. Please use `shard_map` to enter into `Manual` mode "
                             "instead.")
        self._token = _CONTEXT_MESH.set(_EMPTY_MESH if mesh is None else mesh)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        _CONTEXT_MESH.reset(self._token)


def get_mesh() -> Mesh:
    """The mesh set by ``set_mesh`` (an empty ``Mesh`` when none is)."""
    return _CONTEXT_MESH.get()


def get_abstract_mesh() -> AbstractMesh:
    """The mesh set by ``use_abstract_mesh``, else the abstract mesh of the mesh set by
    ``set_mesh`` (empty when neither is)."""
    abstract = _CONTEXT_ABSTRACT_MESH.get()
    if abstract is not None:
        return abstract
    mesh = _CONTEXT_MESH.get()
    return AbstractMesh((), ()) if mesh.empty else mesh.abstract_mesh


_CONTEXT_ABSTRACT_MESH: contextvars.ContextVar[AbstractMesh | None] = contextvars.ContextVar(
    "abstract_mesh", default=None)


class use_abstract_mesh:
    """``with use_abstract_mesh(mesh):`` makes ``get_abstract_mesh()`` return ``mesh``
    inside the block (``jax.sharding.use_abstract_mesh``), whatever ``set_mesh`` set; the
    concrete mesh (``get_mesh``) is unchanged.

    Examples:
        >>> from fungrad.sharding import AbstractMesh, get_abstract_mesh, use_abstract_mesh
        >>> with use_abstract_mesh(AbstractMesh((2,), ("a",))):
        ...     print(get_abstract_mesh())
        AbstractMesh('a': 2, axis_types=(Auto,))
    """
    __slots__ = ("_mesh", "_tokens")

    def __init__(self, mesh: AbstractMesh) -> None:
        if not isinstance(mesh, AbstractMesh):
            raise ValueError("use_abstract_mesh: expected mesh of type "
                             f"`fungrad.sharding.AbstractMesh`. Got {type(mesh).__name__}")
        self._mesh, self._tokens = mesh, []

    def __enter__(self) -> None:
        self._tokens.append(_CONTEXT_ABSTRACT_MESH.set(self._mesh))

    def __exit__(self, *exc: Any) -> None:
        _CONTEXT_ABSTRACT_MESH.reset(self._tokens.pop())


# --------------------------------------------------------------------------- NamedSharding

class NamedSharding(Sharding):
    """A mesh and a ``PartitionSpec``: dimension ``i`` of an array split over the mesh axes
    named by ``spec[i]`` (``jax.sharding.NamedSharding``).

    fungrad places an array with a ``NamedSharding`` whole on the mesh's first device, after
    checking that it fits the spec (``shard_shape``); the properties describe the layout
    JAX would use.

    Examples:
        >>> import fungrad
        >>> from fungrad.sharding import NamedSharding, PartitionSpec as P
        >>> s = NamedSharding(fungrad.sharding.make_mesh((1,), ("x",)), P(None, "x"))
        >>> s.num_devices, s.is_fully_replicated, s.shard_shape((2, 6))
        (1, True, (2, 6))
    """

    def __init__(self, mesh: Mesh | AbstractMesh, spec: PartitionSpec, *,
                 memory_kind: str | None = None) -> None:
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"NamedSharding: spec must be a PartitionSpec, got "
                            f"{type(spec).__name__}: {spec!r}")
        _check_unique_axes(spec, "NamedSharding spec")
        for names in _axes_per_dim(spec, len(spec)):
            for name in names:
                if name not in mesh.axis_names:
                    raise ValueError(f"Resource axis: {name} of {spec} is not found in mesh: "
                                     f"{mesh.axis_names}.")
        self.mesh, self.spec = mesh, spec
        # JAX names the memory of a concrete mesh's devices "device"
        self.memory_kind = "device" if memory_kind is None and isinstance(mesh, Mesh) \
            else memory_kind

    def __repr__(self) -> str:
        memory = "" if self.memory_kind is None else f", memory_kind={self.memory_kind}"
        return f"NamedSharding(mesh={self.mesh}, spec={self.spec}{memory})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NamedSharding) and (self.mesh, self.spec, self.memory_kind) \
            == (other.mesh, other.spec, other.memory_kind)

    def __hash__(self) -> int:
        return hash((self.mesh, self.spec, self.memory_kind))

    def _concrete_mesh(self, what: str) -> Mesh:
        if not isinstance(self.mesh, Mesh):
            raise ValueError(f"{what} is not implemented for `fungrad.sharding.AbstractMesh`.")
        return self.mesh

    @property
    def device_set(self) -> set:
        """The mesh's devices."""
        return set(self._concrete_mesh("device_set").devices.flat)

    @property
    def _device_assignment(self) -> tuple:
        return tuple(self._concrete_mesh("_device_assignment").devices.flat)

    @property
    def num_devices(self) -> int:
        """The number of devices of the mesh."""
        return self.mesh.size

    is_fully_addressable = True

    @property
    def is_fully_replicated(self) -> bool:
        """Whether every device would hold the whole array (no dimension is split over an
        axis of size above 1)."""
        sizes = self.mesh.shape
        return math.prod(sizes[n] for names in _axes_per_dim(self.spec, len(self.spec))
                         for n in names) == 1

    def shard_shape(self, global_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of each device's piece of an array of ``global_shape``. Raises JAX's
        ``ValueError`` when the spec is longer than the rank or a dimension is not divisible
        by the product of its mesh axes' sizes (naming the dimension)."""
        shape = tuple(int(d) for d in global_shape)
        if len(shape) < len(self.spec):
            hint = " For scalars the PartitionSpec should be P()" if not shape else ""
            raise ValueError(f"Sharding {self} is only valid for values of rank at least "
                             f"{len(self.spec)}, but was applied to a value of rank "
                             f"{len(shape)}.{hint}")
        sizes = self.mesh.shape
        parts = [math.prod(sizes[n] for n in names)
                 for names in _axes_per_dim(self.spec, len(shape))]
        for dim, (size, ways) in enumerate(zip(shape, parts)):
            if size % ways:
                raise ValueError(f"Sharding {self} implies that array axis {dim} is partitioned "
                                 f"{ways} times, but the dimension size is {size} (full shape: "
                                 f"{shape}, per-dimension tiling factors: {parts} should "
                                 "evenly divide the shape)")
        return tuple(size // ways for size, ways in zip(shape, parts))


def make_single_device_sharding(device: Device, *, memory_kind: str | None = None
                                ) -> SingleDeviceSharding:
    """The sharding of an array whole on ``device`` (``jax.sharding``'s); fungrad has one
    memory per device, so ``memory_kind`` may be None or ``"device"``."""
    if not isinstance(device, Device):
        raise TypeError(f"make_single_device_sharding: device must be a fungrad Device, got "
                        f"{type(device).__name__}: {device!r}")
    if memory_kind not in (None, "device"):
        raise ValueError(f"make_single_device_sharding: memory_kind {memory_kind!r} is not "
                         "available; fungrad's devices have one memory, 'device'")
    return SingleDeviceSharding(device)


# --------------------------------------------------------------------------- reshard

def _as_named(s: Any, fname: str) -> NamedSharding:
    """``s`` (a ``NamedSharding``, or a ``PartitionSpec`` of the mesh ``set_mesh`` set) as a
    ``NamedSharding``, with JAX's errors for the rest."""
    if isinstance(s, NamedSharding):
        return s
    if isinstance(s, PartitionSpec):
        mesh = get_mesh()
        if mesh.empty:
            raise ValueError("Using PartitionSpec when you are not under a mesh context is not "
                             "allowed. Please pass a NamedSharding instance or enter into a "
                             f"mesh context via `fungrad.sharding.set_mesh`. Got {s}")
        return NamedSharding(mesh, s)
    if s is None:
        raise ValueError(f"{fname} should only be used with out_shardings which are non-None "
                         f"and have a non-empty mesh. Got sharding {s}.")
    raise TypeError(f"`out_sharding` argument of {fname} only supports instances of "
                    f"`NamedSharding` or `PartitionSpec`. Got {s!r} of type: {type(s)}")


def reshard(xs: Any, out_shardings: Any) -> Any:
    """Each array of ``xs`` laid out with its entry of ``out_shardings`` (a
    ``NamedSharding``, a ``PartitionSpec`` of the mesh ``set_mesh`` set, or a pytree prefix
    of them), as ``jax.reshard``. The values are unchanged and the derivative is the
    identity. fungrad keeps every array whole on one device: the layout is checked (a spec
    the array does not fit is a ``ValueError``) and an eager array is committed to the mesh's
    first device, as ``device_put`` places it (see ``docs/sharding.md``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad.sharding import PartitionSpec as P, make_mesh, reshard, set_mesh
        >>> with set_mesh(make_mesh((1,), ("x",))):
        ...     y = reshard(jnp.arange(4.0), P("x"))
        >>> y, y.committed
        (Array([0., 1., 2., 3.], dtype=float32), True)
    """
    leaves, treedef = tree.flatten(xs)
    specs = tree.broadcast_prefix(out_shardings, xs, name="reshard out_shardings",
                                  of="the arrays")
    return tree.unflatten(treedef, [device_put(x, _as_named(s, "reshard"))
                                    for x, s in zip(leaves, specs)])


def _mesh_with_types(axes: str | tuple | None, kind: AxisType, fname: str) -> Mesh | None:
    """The context mesh with ``axes`` (default: all) set to ``kind``; None without one."""
    mesh = get_mesh()
    if mesh.empty:
        return None
    names = mesh.axis_names if axes is None else (axes,) if isinstance(axes, str) \
        else tuple(axes)
    for name in names:
        if name not in mesh.axis_names:
            raise ValueError(f"{fname}: axis {name!r} is not an axis of the context mesh "
                             f"{mesh.axis_names}")
    types = tuple(kind if n in names else t for n, t in zip(mesh.axis_names, mesh.axis_types))
    return mesh.update(axis_types=types)


def _given_or_keyword(value: Any, kwargs: dict, name: str, fname: str) -> Any:
    """``value`` if given to the decorator, else the call's keyword ``name`` (taken out of
    ``kwargs``): JAX's ``auto_axes``/``explicit_axes`` take the sharding either way."""
    if value is not None:
        return value
    if name not in kwargs:
        raise TypeError(f"{fname}: missing required keyword argument: {name!r}")
    return kwargs.pop(name)


def auto_axes(f: Callable | None = None, /, *, axes: str | tuple[str, ...] | None = None,
              out_sharding: Any = None) -> Callable:
    """``f`` run with the context mesh's ``axes`` (default all) made ``Auto``, its result
    resharded to ``out_sharding`` (given here or as a keyword of the call), as
    ``jax.sharding.auto_axes``. Without a context mesh ``f`` runs as it is. fungrad's
    arrays are whole on one device whatever the axis types, so only the mesh that
    ``get_mesh`` reports inside ``f`` and the final ``reshard`` change anything."""
    if f is None:
        return functools.partial(auto_axes, axes=axes, out_sharding=out_sharding)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        target = _given_or_keyword(out_sharding, kwargs, "out_sharding", "auto_axes")
        mesh = _mesh_with_types(axes, AxisType.Auto, "auto_axes")
        if mesh is None:
            return f(*args, **kwargs)
        with set_mesh(mesh):
            out = f(*args, **kwargs)
        return reshard(out, target)
    return wrapped


def explicit_axes(f: Callable | None = None, /, *, axes: str | tuple[str, ...] | None = None,
                  in_sharding: Any = None) -> Callable:
    """``f`` run with the context mesh's ``axes`` (default all) made ``Explicit``, its
    positional arguments resharded to ``in_sharding`` (given here or as a keyword of the
    call) first, as ``jax.sharding.explicit_axes``. A context mesh is required (a
    ``ValueError`` otherwise, as in JAX)."""
    if f is None:
        return functools.partial(explicit_axes, axes=axes, in_sharding=in_sharding)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        target = _given_or_keyword(in_sharding, kwargs, "in_sharding", "explicit_axes")
        mesh = _mesh_with_types(axes, AxisType.Explicit, "explicit_axes")
        if mesh is None:
            raise ValueError("Context mesh cannot be empty. Please use "
                             "`fungrad.sharding.set_mesh` to enter into a mesh context when "
                             "using `explicit_axes`.")
        with set_mesh(mesh):
            return f(*reshard(args, target), **kwargs)
    return wrapped
