"""Jobs of several processes on one machine, without MPI: ``spawn`` and shared memory.

``spawn(fn, args, nprocs)`` runs ``fn(*args)`` in ``nprocs`` processes of this machine:
this process is process 0 and starts the others with ``multiprocessing``'s *spawn*
method (a fresh interpreter each, as ``torch.multiprocessing.spawn``). Every process joins
the same process group before ``fn`` runs, so ``process_index()``, ``process_count()``,
the collectives and ``DataParallel`` behave as in an MPI job; without MPI installed.
This is how a laptop's cores train one model together (the main job's ``--processes``).

The group's collectives go through one shared-memory segment (``SharedMemoryComm``):

* A control block holds one arrival counter per process. A barrier is "write my counter,
  then wait until every counter has reached it": each cell has one writer, so no atomic
  read-modify-write is needed; a memory fence before the write and after the wait orders
  the data around it on processors that reorder memory accesses. Waiting spins briefly,
  then sleeps (``comm.poll_until``), within the group's deadline.
* An all-reduce writes this process's buffer into its slot, passes a barrier, and sums
  the slots in process order into the result: every process computes the same sum in the
  same order, so the replicas stay bit-identical, and a run is reproducible.
* Slots come in two sets used in turn, so one barrier per collective suffices: a process
  can only write a set again after everyone has passed the barrier of the collective in
  between, that is after everyone has finished reading it.
* The data segment grows (process 0 creates a larger one, the others attach) when a
  collective needs more room than it has; every process calls the collectives in the same
  order with the same sizes, so they all grow it at the same point.

Failures end in an error rather than a hang: a process that raises marks the group
aborted (every waiting process then raises ``DistributedError``), process 0 notices a
child that died, and every wait has the deadline of ``spawn(timeout=...)``.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from fungrad._core.util import usable_cpus
from fungrad.distributed import comm as comm_lib
from fungrad.distributed import runtime
from fungrad.distributed.errors import DistributedError

# Bytes of each slot of the first data segment; it grows on demand (to a power of two).
INITIAL_SLOT_BYTES = 1 << 16
# Seconds between checks that the other processes still live, while waiting for them.
LIVENESS_CHECK_S = 0.5
# The control block: an "aborted" cell (0, or 1 + the rank that aborted), then one
# arrival counter per process, each on its own 64-byte cache line.
_LINE = 8   # int64 cells per cache line


class SharedMemoryComm(comm_lib.HostComm):
    """Collectives on NumPy buffers among the processes of one machine, through shared
    memory (see the module docstring). ``name`` is the control block's; process 0
    creates it (``create=True``), the others attach."""

    timeout_hint = "fungrad.distributed.spawn(timeout=...)"

    def __init__(self, name: str, rank: int, size: int, *, create: bool, timeout: float,
                 abort_on_timeout: bool = False, peers_alive: Callable[[], bool] | None = None
                 ) -> None:
        super().__init__(timeout, abort_on_timeout)
        self.name, self.rank, self.size = name, rank, size
        self._peers_alive = peers_alive
        self._fence_lock = threading.Lock()
        self._fence_lock.acquire()   # held, so that _fence can release and retake it
        nbytes = (1 + size) * _LINE * 8
        self._control = shared_memory.SharedMemory(name, create=create, size=nbytes)
        cells = np.ndarray(((1 + size) * _LINE,), np.int64, self._control.buf)
        if create:
            cells[:] = 0
        self._aborted, self._arrived = cells[:1], cells[_LINE::_LINE]
        self._count = 0           # barriers this process has entered
        self._slot_bytes = 0
        self._data: shared_memory.SharedMemory | None = None   # made by the first collective

    # ------------------------------------------------------------------ synchronisation

    def _fence(self) -> None:
        """A full memory barrier. Releasing a lock orders this CPU's earlier loads and
        stores before it, taking it again orders the later ones after, and a release is
        not passed by the acquire that follows it (x86 and ARMv8 alike). x86 keeps stores
        in order anyway; ARM needs it, so that a process that sees another's counter also
        sees the slot written before it."""
        self._fence_lock.release()
        self._fence_lock.acquire()

    def _barrier(self, what: str, x: np.ndarray | None = None) -> None:
        self._count += 1
        self._fence()   # this process's slot writes before its counter
        self._arrived[self.rank] = self._count
        target, next_check = self._count, time.monotonic() + LIVENESS_CHECK_S

        def done() -> bool:
            nonlocal next_check
            if self._aborted[0]:
                self.broken = True
                raise DistributedError(
                    f"{comm_lib._describe(what, x)} on process {self.rank} of {self.size}: process "
                    f"{int(self._aborted[0]) - 1} failed and aborted the job")
            if self._arrived.min() >= target:
                self._fence()   # the counters before the others' slots
                return True
            if self._peers_alive is not None and time.monotonic() > next_check:
                if not self._peers_alive():
                    self.abort_group()
                    self.broken = True
                    raise DistributedError(f"{comm_lib._describe(what, x)} on process "
                                           f"{self.rank} of {self.size}: another process of "
                                           "the job died")
                next_check += LIVENESS_CHECK_S
            return False

        self.wait(done, what, x)

    def barrier(self) -> None:
        """Wait until every process reaches the barrier (within the deadline)."""
        self._barrier("barrier")

    def abort_group(self) -> None:
        """Mark the group aborted: every process waiting in a collective raises."""
        if not self._aborted[0]:
            self._aborted[0] = self.rank + 1

    def abort(self, code: int) -> None:
        """Mark the group aborted and exit this process with ``code``."""
        self.abort_group()
        sys.stderr.flush()
        os._exit(code)

    # ------------------------------------------------------------------ the data segment

    def _grow(self, slot_bytes: int) -> None:
        """Make every slot at least ``slot_bytes`` long (collectively)."""
        if slot_bytes <= self._slot_bytes:
            return
        slot_bytes = 1 << (slot_bytes - 1).bit_length()
        generation = f"{self.name}-{slot_bytes}"
        old = self._data
        if old is not None:
            self._barrier("growing the shared buffers")   # nobody reads the old slots now
        if self.rank == 0:
            self._data = shared_memory.SharedMemory(generation, create=True,
                                                    size=2 * self.size * slot_bytes)
        self._barrier("growing the shared buffers")
        if self.rank:
            self._data = shared_memory.SharedMemory(generation)
        self._barrier("growing the shared buffers")       # everyone has attached
        if old is not None:
            old.close()
            if self.rank == 0:
                old.unlink()
        self._slot_bytes = slot_bytes

    def _slots(self, nbytes: int) -> np.ndarray:
        """The slot set of the next collective, ``(size, nbytes)`` bytes, this process's row
        to write."""
        self._grow(max(nbytes, INITIAL_SLOT_BYTES))
        which = self._count % 2
        raw = np.ndarray((2, self.size, self._slot_bytes), np.uint8, self._data.buf)
        return raw[which, :, :nbytes]

    def _exchange(self, x: np.ndarray, what: str) -> np.ndarray:
        """Every process's ``x`` (C-contiguous), as a read-only ``(size, *x.shape)`` view of
        the shared slots, valid until this process's next collective but one."""
        slots = self._slots(x.nbytes)
        slots[self.rank] = x.reshape(-1).view(np.uint8)
        self._barrier(what, x)
        return slots.view(x.dtype).reshape((self.size,) + x.shape)

    # ------------------------------------------------------------------ collectives

    def allreduce_into(self, send: np.ndarray, out: np.ndarray, op: str) -> None:
        """Write the elementwise ``op`` of every process's ``send`` into ``out``, summing
        in process order (the same result, bit for bit, on every process)."""
        ufunc = {"sum": np.add, "max": np.maximum, "min": np.minimum}[op]
        parts = self._exchange(send, f"all-reduce ({op})")
        ufunc(parts[0], parts[1], out=out) if self.size > 1 else np.copyto(out, parts[0])
        for part in parts[2:]:
            ufunc(out, part, out=out)

    def allgather(self, x: Any) -> np.ndarray:
        """Every process's ``x``, stacked along a new leading axis in rank order."""
        return self._exchange(np.asarray(x, order="C"), "all-gather").copy()

    def bcast(self, x: Any, root: int) -> np.ndarray:
        """Process ``root``'s ``x``, on every process."""
        parts = self._exchange(np.asarray(x, order="C"), f"broadcast from process {root}")
        return parts[root].copy()

    def close(self) -> None:
        """Detach from the shared memory (process 0 also removes it)."""
        for segment in (self._data, self._control):
            if segment is not None:
                segment.close()
                if self.rank == 0:
                    segment.unlink()
        self._data = None


# --------------------------------------------------------------------------- spawn

def spawn(fn: Callable[..., Any], args: tuple = (), nprocs: int | None = None, *,
          timeout: float = 300.0) -> Any:
    """Run ``fn(*args)`` in ``nprocs`` processes of this machine, as one job; return
    process 0's result.

    This process is process 0; the others are fresh interpreters (``multiprocessing``'s
    spawn method), so ``fn`` must be importable by name: a module-level function (of a
    script run as ``__main__`` too, which then needs ``if __name__ == "__main__":``). In
    every process ``fn`` runs inside the job's process group: ``process_index()``,
    ``process_count()``, collectives and ``DataParallel`` work as under MPI. The started
    processes ignore Ctrl-C (SIGINT): process 0 decides for the job. ``nprocs=None``
    takes one process per CPU core this process may use.

    Raises ``DistributedError`` when another process fails (its traceback is printed
    first), and whatever ``fn`` raised in process 0 (the others are then stopped).
    """
    nprocs = usable_cpus() if nprocs is None else nprocs
    if not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"fungrad.distributed.spawn: nprocs must be an int >= 1, got {nprocs!r}")
    if runtime.is_initialized():
        raise RuntimeError("fungrad.distributed.spawn: this process already belongs to a "
                           "process group (initialize() or spawn() ran); call shutdown() first")
    if nprocs == 1:
        return fn(*args)
    name = f"fungrad-{os.getpid()}-{os.urandom(4).hex()}"
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_child, args=(fn, args, name, rank, nprocs, timeout),
                                name=f"fungrad-process-{rank}", daemon=True)
                for rank in range(1, nprocs)]
    group = SharedMemoryComm(name, 0, nprocs, create=True, timeout=timeout,
                             peers_alive=lambda: all(c.is_alive() or c.exitcode == 0
                                                     for c in children))
    try:
        for child in children:
            child.start()
        with runtime.joined(group):
            result = fn(*args)
        for child in children:
            child.join()
        failed = [c.name for c in children if c.exitcode]
        if failed:
            raise DistributedError(f"fungrad.distributed.spawn: {', '.join(failed)} failed")
        return result
    except BaseException:
        group.abort_group()
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
        raise
    finally:
        group.close()


def _child(fn: Callable[..., Any], args: tuple, name: str, rank: int, size: int,
           timeout: float) -> None:
    """A started process: join the group, run ``fn``, leave; on an exception mark the
    group aborted and exit 1 (the traceback goes to stderr)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    group = SharedMemoryComm(name, rank, size, create=False, timeout=timeout,
                             peers_alive=lambda: os.getppid() == parent)
    try:
        with runtime.joined(group):
            fn(*args)
    except BaseException:
        group.abort_group()
        raise
    finally:
        group.close()
