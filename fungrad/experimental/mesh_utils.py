"""``fungrad.experimental.mesh_utils`` (``jax.experimental.mesh_utils``): arrays of devices
in a mesh's shape, for ``fungrad.sharding.Mesh``.

JAX orders the devices of a TPU slice by their physical torus and GPUs by id; fungrad's
devices (CPUs, CUDA GPUs, the virtual CPU devices of ``FUNGRAD_NUM_CPU_DEVICES``) have no
topology to follow, so ``create_device_mesh`` lays them out in the order given, as JAX does
for CPU devices (GPUs sorted by id first, as JAX sorts them). No device kind has a handler in
``device_kind_handler_dict`` unless one is added.

Examples:
    >>> import fungrad
    >>> from fungrad.experimental import mesh_utils
    >>> mesh_utils.create_device_mesh((1, 1))
    array([[CpuDevice(id=0)]], dtype=object)
"""
from __future__ import annotations

import collections
import math
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import backends
from fungrad._core.namespace import public_dir

__all__ = ["create_device_mesh", "create_hybrid_device_mesh", "device_kind_handler_dict"]
__dir__ = public_dir(__all__)

# device_kind -> handler(mesh_shape, devices, contiguous_submeshes=...) giving the device
# array, or None to fall back to the default layout (JAX's hook for custom topologies).
device_kind_handler_dict: dict[str, Callable[..., np.ndarray | None]] = {}


def _mesh_shape(mesh_shape: Sequence[int], fname: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in mesh_shape)
    except (TypeError, ValueError):
        raise ValueError(f"`mesh_shape` passed to `{fname}` should be a sequence of ints. "
                         f"Got {mesh_shape}") from None


def create_device_mesh(mesh_shape: Sequence[int], devices: Sequence[Any] | None = None, *,
                       contiguous_submeshes: bool = False,
                       allow_split_physical_axes: bool = False) -> np.ndarray:
    """The ``devices`` (default ``fungrad.devices()``) as an object array of shape
    ``mesh_shape``, ready for ``fungrad.sharding.Mesh``. Raises ``ValueError`` unless the
    number of devices equals the product of ``mesh_shape``. ``contiguous_submeshes`` and
    ``allow_split_physical_axes`` concern physical topologies, which fungrad's devices do
    not have: they are accepted and change nothing."""
    devices = list(backends.devices() if devices is None else devices)
    shape = _mesh_shape(mesh_shape, "create_device_mesh")
    if math.prod(shape) != len(devices):
        raise ValueError(f"Number of devices {len(devices)} must equal the product of "
                         f"mesh_shape {shape}")
    handler = device_kind_handler_dict.get(devices[-1].device_kind)
    if handler is not None:
        result = handler(shape, devices, contiguous_submeshes=contiguous_submeshes)
        if result is not None:
            return result
    if devices[-1].platform == "gpu":
        devices = sorted(devices, key=lambda d: d.id)
    grid = np.empty(len(devices), dtype=object)
    grid[:] = devices
    return grid.reshape(shape)


def create_hybrid_device_mesh(mesh_shape: Sequence[int], dcn_mesh_shape: Sequence[int],
                              devices: Sequence[Any] | None = None, *,
                              process_is_granule: bool = False,
                              should_sort_granules_by_key: bool = True,
                              allow_split_physical_axes: bool = False) -> np.ndarray:
    """A mesh for two networks: the devices are grouped into granules (processes with
    ``process_is_granule=True``; slices otherwise, which fungrad's devices do not have, a
    ``ValueError`` as JAX gives on CPUs), each granule laid out by ``create_device_mesh``
    in ``mesh_shape``, and the granules tiled in ``dcn_mesh_shape``; the result has shape
    ``mesh_shape * dcn_mesh_shape`` (elementwise).

    Examples:
        >>> from fungrad.experimental import mesh_utils
        >>> mesh_utils.create_hybrid_device_mesh((1,), (1,), process_is_granule=True).shape
        (1,)
    """
    devices = list(backends.devices() if devices is None else devices)
    attr = "process_index" if process_is_granule else "slice_index"
    if not hasattr(devices[0], attr):
        raise ValueError(f"Device {devices[0]} does not have attribute {attr}. See "
                         "`process_is_granule` option.")
    groups: dict[Any, list] = collections.defaultdict(list)
    for device in devices:
        groups[getattr(device, attr)].append(device)
    granules = [groups[k] for k in sorted(groups)] if should_sort_granules_by_key \
        else list(groups.values())
    dcn_shape = _mesh_shape(dcn_mesh_shape, "create_hybrid_device_mesh")
    if math.prod(dcn_shape) != len(granules):
        raise ValueError(f"Number of slices {len(granules)} must equal the product of "
                         f"dcn_mesh_shape {dcn_shape}")
    meshes = [create_device_mesh(mesh_shape, g,
                                 allow_split_physical_axes=allow_split_physical_axes)
              for g in granules]
    # Tile: granule i of the dcn grid at position divmod-by-dcn_shape, each a full block.
    inner = meshes[0].shape
    out = np.empty(tuple(d * m for d, m in zip(dcn_shape, inner)), dtype=object)
    for i, block in enumerate(meshes):
        corner = np.unravel_index(i, dcn_shape)
        out[tuple(slice(c * m, (c + 1) * m) for c, m in zip(corner, inner))] = block
    return out
