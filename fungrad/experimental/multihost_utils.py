"""``fungrad.experimental.multihost_utils`` (``jax.experimental.multihost_utils``): helpers
for jobs of several processes, with the single-process semantics JAX gives them when
``jax.process_count() == 1``.

One process holds every device and every array whole, so the local array of a process is
the global array: ``process_allgather`` stacks (or, ``tiled=True``, keeps) the one
process's values, ``broadcast_one_to_all`` returns them, ``sync_global_devices`` and
``assert_equal`` have nothing to wait for or compare, and
``host_local_array_to_global_array``/``global_array_to_host_local_array`` place each array
with ``NamedSharding(global_mesh, pspec)`` (checked, then whole on the mesh's first device,
see ``docs/sharding.md``). Results that JAX gives as NumPy arrays are NumPy arrays here too.

In a job started with ``fungrad.distributed.initialize()`` on more than one process these
functions raise ``NotImplementedError``: use ``fungrad.distributed``'s collectives
(``all_gather``, ``broadcast``) inside the training step instead.

Examples:
    >>> import numpy as np
    >>> from fungrad.experimental import multihost_utils
    >>> multihost_utils.process_allgather(np.arange(3))
    array([[0, 1, 2]])
    >>> multihost_utils.process_allgather(np.arange(3), tiled=True)
    array([0, 1, 2])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fungrad import tree
from fungrad._core.array import device_put
from fungrad._core.namespace import public_dir
from fungrad.distributed.runtime import process_count
from fungrad.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["assert_equal", "broadcast_one_to_all", "global_array_to_host_local_array",
           "host_local_array_to_global_array", "process_allgather",
           "reached_preemption_sync_point", "sync_global_devices"]
__dir__ = public_dir(__all__)


def _single_process(fname: str) -> None:
    if process_count() != 1:
        raise NotImplementedError(
            f"multihost_utils.{fname}: fungrad implements the single-process case only, and "
            f"this job has {process_count()} processes; use fungrad.distributed's collectives "
            "(all_gather, broadcast, psum) instead")


def broadcast_one_to_all(in_tree: Any, is_source: bool | None = None) -> Any:
    """``in_tree`` as the source process holds it, on every process: with one process,
    each leaf as a NumPy array (``is_source`` changes nothing)."""
    _single_process("broadcast_one_to_all")
    return tree.map(np.asarray, in_tree)


def _gather_one(x: Any, tiled: bool) -> np.ndarray:
    x = np.asarray(x)
    return x if tiled else x[None]


def process_allgather(in_tree: Any, tiled: bool = False) -> Any:
    """Every process's value of each leaf, as NumPy arrays stacked on a new leading axis
    (``tiled=False``) or concatenated along axis 0 (``tiled=True``): with one process, each
    leaf with a leading axis of size 1, or the leaf itself."""
    _single_process("process_allgather")
    return tree.map(lambda x: _gather_one(x, tiled), in_tree)


def assert_equal(in_tree: Any, fail_message: str = "") -> None:
    """Check that every process holds the same ``in_tree`` (one process always does; the
    tree is still read, so a leaf that is not an array raises as in JAX)."""
    _single_process("assert_equal")
    tree.map(np.asarray, in_tree)


def sync_global_devices(name: str) -> None:
    """A barrier that every process reaches under the same ``name``: with one process, it
    returns at once."""
    _single_process("sync_global_devices")


def reached_preemption_sync_point(step_id: int) -> bool:
    """Whether every process has reached the step at which to checkpoint after a preemption
    notice: False, as JAX answers without a distributed client (fungrad has no preemption
    service)."""
    return False


def _place(fname: str, arrays: Any, global_mesh: Mesh, pspecs: Any) -> Any:
    _single_process(fname)
    if not isinstance(global_mesh, Mesh):
        raise TypeError(f"multihost_utils.{fname}: global_mesh must be a "
                        f"fungrad.sharding.Mesh, got {type(global_mesh).__name__}")
    specs = tree.broadcast_prefix(pspecs, arrays, name="pspecs", of=f"the arrays of {fname}")
    leaves, treedef = tree.flatten(arrays)
    placed = [device_put(x, NamedSharding(global_mesh, PartitionSpec() if s is None else s))
              for x, s in zip(leaves, specs)]
    return tree.unflatten(treedef, placed)


def host_local_array_to_global_array(local_inputs: Any, global_mesh: Mesh,
                                     pspecs: Any) -> Any:
    """The global arrays made of each process's local piece of ``local_inputs``, laid out
    with ``NamedSharding(global_mesh, pspec)`` (``pspecs``: a spec or a pytree prefix of
    specs). With one process the local arrays are the global ones, placed with their
    sharding (a spec the array does not fit is JAX's ``ValueError``).

    Examples:
        >>> import numpy as np, fungrad
        >>> from fungrad.experimental import multihost_utils
        >>> from fungrad.sharding import PartitionSpec as P, make_mesh
        >>> x = multihost_utils.host_local_array_to_global_array(
        ...     np.ones((2, 3)), make_mesh((1,), ("x",)), P("x"))
        >>> x.shape, x.committed
        ((2, 3), True)
    """
    return _place("host_local_array_to_global_array", local_inputs, global_mesh, pspecs)


def global_array_to_host_local_array(global_inputs: Any, global_mesh: Mesh,
                                     pspecs: Any) -> Any:
    """Each process's local piece of ``global_inputs``, laid out with
    ``NamedSharding(global_mesh, pspec)``: with one process, the arrays themselves."""
    return _place("global_array_to_host_local_array", global_inputs, global_mesh, pspecs)
