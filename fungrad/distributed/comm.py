"""Communicators: the collective operations of a group of processes, on an existing engine.

Three implementations of one small interface (``rank``, ``size``, ``allreduce``,
``allreduce_into``, ``allgather``, ``bcast``, ``barrier``, ``abort``), each taking and
returning buffers of one array module:

* ``SingleProcess``: the group of one process; every collective is the identity.
* ``MPIComm``: NumPy buffers through ``mpi4py``. Every operation is non-blocking
  (``Iallreduce``, ``Iallgather``, ``Ibcast``, ``Ibarrier``) and is waited for by polling
  with a deadline, so a peer that died or stalled ends in ``CollectiveTimeoutError`` (or,
  by default, ``MPI_Abort`` of the whole job) instead of a hang. (MPI's blocking
  operations under a watchdog thread were measured too: 10-15% faster on an all-reduce
  the processes enter together, but they spin for as long as a peer is late, taking the
  core the peer needs on a busy machine: the data-parallel GPT step of
  ``benchmarks/bench_distributed.py`` took 0.72 s instead of 0.41-0.53 s.)
* ``NCCLComm``: CuPy buffers through NCCL (``cupy.cuda.nccl``), the communicator
  bootstrapped by broadcasting NCCL's unique id over MPI; each operation is waited for by
  polling a CUDA event (and NCCL's asynchronous error) with the same deadline.

A fourth, ``SharedMemoryComm`` in ``local.py``, joins the processes that
``fungrad.distributed.spawn`` starts on one machine; it and ``MPIComm`` share
``HostComm``'s ``allreduce``.

Results of at least ``RECYCLE_MIN_BYTES`` come from ``reusable_buffer``: a buffer handed
out before and dropped since by whoever held it, so a training loop that all-reduces the
same sizes every step does not page-fault in fresh memory each time (measured: a fresh
256 KiB output made an all-reduce 3x slower than mpi4py's into a preallocated buffer).

``HostStaged`` runs device buffers through a host communicator (copy, reduce, copy back)
when no NCCL communicator exists. Importing this module loads the MPI library but does
not start MPI (``mpi4py.rc.initialize = False``): ``start_mpi`` does, from
``fungrad.distributed.initialize``.
"""
from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fungrad import backends
from fungrad._core.core import ShapedArray
from fungrad.compiler.codegen import _OutputRing
from fungrad.compiler.memory import RECYCLE_MIN_BYTES
from fungrad.distributed.errors import CollectiveTimeoutError

try:
    import mpi4py
except ImportError:  # the `distributed` extra is not installed: initialize() says so
    mpi4py = MPI = None
else:
    mpi4py.rc.initialize = False  # importing fungrad.distributed must not start MPI
    from mpi4py import MPI

# Exit status of a job aborted because a collective timed out.
ABORT_CODE = 3
# Bytes of NCCL's unique id (ncclUniqueId), broadcast from process 0 to build the communicator.
NCCL_UNIQUE_ID_BYTES = 128
# A wait polls back to back for SPIN_SECONDS, then sleeps between polls, growing from
# MIN_SLEEP to MAX_SLEEP seconds. MPI's non-blocking collectives progress only inside MPI
# calls on every process, so sleeping early slows a healthy all-reduce down (measured: a
# 1 MiB all-reduce took 4x longer when the wait slept after 2,000 polls).
SPIN_SECONDS = 0.005
MIN_SLEEP, MAX_SLEEP = 1e-5, 1e-3


# (array module name, elements, dtype) -> the buffers reusable_buffer handed out.
_RINGS: dict[tuple[str, int, np.dtype], _OutputRing] = {}


def start_mpi() -> None:
    """Start MPI in this process unless it runs already, and finalize it at exit."""
    if not MPI.Is_initialized():
        MPI.Init_thread(MPI.THREAD_MULTIPLE)
        atexit.register(_finalize)


def _finalize() -> None:
    if MPI.Is_initialized() and not MPI.Is_finalized():
        MPI.Finalize()


def poll_until(done: Callable[[], bool], timeout: float,
               on_timeout: Callable[[float], None]) -> None:
    """Call ``done()`` until it is true; after ``timeout`` seconds call ``on_timeout(elapsed)``.

    Polls are back to back for ``SPIN_SECONDS`` (a collective of a healthy group completes
    within microseconds to milliseconds), then sleep in between so that a process waiting
    for a slow peer leaves its core to others.
    """
    start, delay = time.monotonic(), MIN_SLEEP
    while not done():
        elapsed = time.monotonic() - start
        if elapsed < SPIN_SECONDS:
            continue
        if elapsed > timeout:
            on_timeout(elapsed)
        time.sleep(delay)
        delay = min(2 * delay, MAX_SLEEP)


class _Deadlines:
    """What a communicator does when a collective misses its deadline."""

    rank: int
    size: int
    timeout_hint = "fungrad.distributed.initialize(timeout=...)"   # where the limit is set

    def __init__(self, timeout: float, abort_on_timeout: bool) -> None:
        if not timeout > 0:
            raise ValueError("fungrad.distributed: timeout must be positive seconds, "
                             f"got {timeout!r}")
        self.timeout = float(timeout)
        self.abort_on_timeout = abort_on_timeout
        self.broken = False

    def abort(self, code: int) -> None:
        raise NotImplementedError

    def timed_out(self, what: str, elapsed: float) -> None:
        """Abort the job (the default) or raise ``CollectiveTimeoutError``."""
        msg = (f"{what} on process {self.rank} of {self.size} did not complete within "
               f"{self.timeout:g} s (waited {elapsed:.1f} s): another process died, stalled or is "
               f"much slower. Set the limit with {self.timeout_hint}.")
        self.broken = True
        if self.abort_on_timeout:
            sys.stderr.write(f"fungrad.distributed: {msg} Aborting the job.\n")
            sys.stderr.flush()
            self.abort(ABORT_CODE)
        raise CollectiveTimeoutError(msg)

    def wait(self, done: Callable[[], bool], op: str, x: Any = None) -> None:
        """Poll ``done`` until it is true or the deadline passes; ``op`` (and the buffer
        ``x``, if any) name what was waited for, formatted only on a timeout."""
        poll_until(done, self.timeout, lambda elapsed: self.timed_out(_describe(op, x), elapsed))


def _describe(op: str, x: Any) -> str:
    return op if x is None else f"{op} of {x.size} {x.dtype} values"


def reduction_dtype(dt: np.dtype) -> np.dtype:
    """The dtype in which values of dtype ``dt`` are reduced across processes.

    Floats narrower than 32 bits (float16, bfloat16) are reduced in float32 (MPI has no
    arithmetic for them), booleans as int32; every other dtype as itself.
    """
    if dt.kind == "b":
        return np.dtype(np.int32)
    if dt.itemsize < 4 and dt.kind in "fV":   # float16 and ml_dtypes' bfloat16, float8_*
        return np.dtype(np.float32)
    return dt


def reusable_buffer(xp: Any, size: int, dtype: np.dtype) -> Any:
    """An uninitialised 1-D buffer of ``size`` elements of ``dtype`` that nothing else
    refers to.

    From ``RECYCLE_MIN_BYTES`` on it is one of the (at most two) buffers of this size that
    earlier calls handed out and whose holders (arrays, views) have all been dropped, else
    a new one (the compiler's output rings, ``codegen._OutputRing``); smaller buffers come
    from the C heap's free lists without page faults, so they are always new.
    """
    dtype = np.dtype(dtype)
    if size * dtype.itemsize < RECYCLE_MIN_BYTES:
        return xp.empty(size, dtype)
    key = (xp.__name__, size, dtype)
    ring = _RINGS.get(key)
    if ring is None:
        ring = _RINGS[key] = _OutputRing(xp, [ShapedArray((size,), dtype)])
    return ring.take(0)


# --------------------------------------------------------------------------- one process

class SingleProcess:
    """The group of one process: every collective returns its input (as ``jax`` with one
    device). Works on any array module's buffers."""

    rank, size = 0, 1
    broken = False

    def allreduce(self, x: Any, op: str) -> Any:
        """``x`` itself: the reduction over one process."""
        return x

    def allreduce_into(self, send: Any, out: Any, op: str) -> None:
        """Copy ``send`` into ``out``: the reduction over one process."""
        out[...] = send

    def allgather(self, x: Any) -> Any:
        """``x`` with a leading axis of size 1."""
        return x[None]

    def bcast(self, x: Any, root: int) -> Any:
        """``x`` itself: the only process is the root."""
        return x

    def barrier(self) -> None:
        """Nothing to wait for."""

    def abort(self, code: int) -> None:
        """Exit with ``code`` (``SystemExit``)."""
        raise SystemExit(code)


# --------------------------------------------------------------------------- host buffers

class HostComm(_Deadlines):
    """A communicator of host (NumPy) buffers with deadlines: ``allreduce`` goes through
    the subclass's ``allreduce_into``."""

    def allreduce_into(self, send: np.ndarray, out: np.ndarray, op: str) -> None:
        """Write the elementwise ``op`` of every process's ``send`` into ``out``."""
        raise NotImplementedError

    def allreduce(self, x: Any, op: str) -> np.ndarray:
        """The elementwise ``op`` (``"sum"``, ``"max"``, ``"min"``) of ``x`` over the
        processes, within the deadline (in ``reduction_dtype``, returned as ``x``'s dtype)."""
        x = np.asarray(x)
        send = np.asarray(x, reduction_dtype(x.dtype), order="C")
        out = reusable_buffer(np, send.size, send.dtype).reshape(send.shape)
        self.allreduce_into(send, out, op)
        return out.astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- MPI

class MPIComm(HostComm):
    """Collectives on host (NumPy) buffers over an mpi4py communicator, with deadlines."""

    def __init__(self, comm: Any, *, timeout: float, abort_on_timeout: bool) -> None:
        super().__init__(timeout, abort_on_timeout)
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def allreduce_into(self, send: np.ndarray, out: np.ndarray, op: str) -> None:
        """Write the elementwise ``op`` of every process's ``send`` into ``out`` (both
        C-contiguous, of one dtype MPI reduces), within the deadline."""
        self.wait(self.comm.Iallreduce(send, out, self._ops[op]).Test, f"all-reduce ({op})", send)

    def allgather(self, x: Any) -> np.ndarray:
        """Every process's ``x``, stacked along a new leading axis in rank order."""
        send = np.asarray(x, order="C")
        out = np.empty((self.size,) + send.shape, send.dtype)
        # Bytes on the wire: every dtype (bfloat16 included) travels the same way.
        request = self.comm.Iallgather(send.reshape(-1).view(np.uint8),
                                       out.reshape(-1).view(np.uint8))
        self.wait(request.Test, "all-gather", send)
        return out

    def bcast(self, x: Any, root: int) -> np.ndarray:
        """Process ``root``'s ``x``, on every process."""
        buf = np.array(x, order="C", copy=True)
        request = self.comm.Ibcast(buf.reshape(-1).view(np.uint8), root=root)
        self.wait(request.Test, f"broadcast from process {root}", buf)
        return buf

    def barrier(self) -> None:
        """Wait until every process reaches the barrier (within the deadline)."""
        self.wait(self.comm.Ibarrier().Test, "barrier")

    def abort(self, code: int) -> None:
        """End every process of the job with ``code`` (``MPI_Abort``)."""
        self.comm.Abort(code)


# --------------------------------------------------------------------------- NCCL (GPUs)

class NCCLComm(_Deadlines):
    """Collectives on CuPy buffers over NCCL, bootstrapped through ``host`` (an ``MPIComm``).

    Each process drives one GPU: the one numbered by its rank among the processes of its
    node (modulo the GPUs it sees). An operation is enqueued on the current CUDA stream,
    then a CUDA event recorded after it is polled (with NCCL's asynchronous error) until
    it completes or the deadline passes; on timeout the NCCL communicator is aborted too.
    """

    def __init__(self, host: MPIComm, *, timeout: float, abort_on_timeout: bool) -> None:
        import cupy
        from cupy.cuda import nccl
        super().__init__(timeout, abort_on_timeout)
        self.host, self._cp, self._nccl = host, cupy, nccl
        self.rank, self.size = host.rank, host.size
        node = host.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.device_id = node.Get_rank() % cupy.cuda.runtime.getDeviceCount()
        node.Free()
        cupy.cuda.Device(self.device_id).use()
        uid = np.array(nccl.get_unique_id() if host.rank == 0 else [0] * NCCL_UNIQUE_ID_BYTES,
                       np.int8)
        uid = host.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(self.size, tuple(int(b) for b in uid), self.rank)
        self._types = {name: getattr(nccl, const) for name, const in (
            ("float16", "NCCL_FLOAT16"), ("float32", "NCCL_FLOAT32"), ("float64", "NCCL_FLOAT64"),
            ("int8", "NCCL_INT8"), ("uint8", "NCCL_UINT8"), ("int32", "NCCL_INT32"),
            ("uint32", "NCCL_UINT32"), ("int64", "NCCL_INT64"), ("uint64", "NCCL_UINT64"),
            ("bfloat16", "NCCL_BFLOAT16")) if hasattr(nccl, const)}

    def _run(self, op: str, x: Any, enqueue: Callable[[int], None]) -> None:
        stream = self._cp.cuda.get_current_stream()
        enqueue(stream.ptr)
        event = stream.record()

        def done() -> bool:
            self.comm.check_async_error()
            return event.done
        self.wait(done, op, x)

    def _allreduce(self, send: Any, out: Any, op: str) -> None:
        nccl = self._nccl
        nccl_op = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}[op]
        self._run(f"NCCL all-reduce ({op})", send, lambda s: self.comm.allReduce(
            send.data.ptr, out.data.ptr, send.size, self._types[send.dtype.name], nccl_op, s))

    def allreduce(self, x: Any, op: str) -> Any:
        """The elementwise ``op`` of ``x`` over the processes' GPUs (types NCCL lacks go
        as float32)."""
        cp = self._cp
        dt = x.dtype
        send = cp.ascontiguousarray(x if dt.name in self._types else x.astype(cp.float32))
        out = reusable_buffer(cp, send.size, send.dtype)
        self.allreduce_into(send, out, op)
        return out.reshape(x.shape).astype(dt, copy=False)

    def allreduce_into(self, send: Any, out: Any, op: str) -> None:
        """Write the elementwise ``op`` of every process's ``send`` into ``out`` (both
        C-contiguous, of one dtype NCCL reduces)."""
        self._allreduce(send, out, op)

    def allgather(self, x: Any) -> Any:
        """Every process's ``x``, stacked along a new leading axis in rank order, on the GPU."""
        send = self._cp.ascontiguousarray(x)
        out = self._cp.empty((self.size,) + x.shape, x.dtype)
        self._run("NCCL all-gather", send, lambda s: self.comm.allGather(
            send.data.ptr, out.data.ptr, send.nbytes, self._nccl.NCCL_UINT8, s))
        return out

    def bcast(self, x: Any, root: int) -> Any:
        """Process ``root``'s ``x``, on every process's GPU."""
        buf = self._cp.array(x, copy=True, order="C")
        self._run(f"NCCL broadcast from process {root}", buf, lambda s: self.comm.bcast(
            buf.data.ptr, buf.nbytes, self._nccl.NCCL_UINT8, root, s))
        return buf

    def barrier(self) -> None:
        """Wait for every process, through the host communicator."""
        self.host.barrier()

    def abort(self, code: int) -> None:
        """Abort the NCCL communicator, then the job through the host one."""
        self.comm.abort()
        self.host.abort(code)

    def close(self) -> None:
        """Release the NCCL communicator."""
        self.comm.destroy()


class HostStaged:
    """Device buffers through a host communicator: copy to the host, run, copy back."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.rank, self.size = host.rank, host.size

    def _staged(self, x: Any, run: Callable[[np.ndarray], np.ndarray]) -> Any:
        xp = backends.xp_of(x)
        return xp.asarray(run(xp.asnumpy(x)))

    def allreduce(self, x: Any, op: str) -> Any:
        """``allreduce`` of the host communicator on a host copy of ``x``, copied back."""
        return self._staged(x, lambda h: self.host.allreduce(h, op))

    def allreduce_into(self, send: Any, out: Any, op: str) -> None:
        """``allreduce`` of the host communicator on a host copy of ``send``, copied into
        ``out``."""
        out[...] = self._staged(send, lambda h: self.host.allreduce(h, op))

    def allgather(self, x: Any) -> Any:
        """``allgather`` of the host communicator on a host copy of ``x``, copied back."""
        return self._staged(x, self.host.allgather)

    def bcast(self, x: Any, root: int) -> Any:
        """``bcast`` of the host communicator on a host copy of ``x``, copied back."""
        return self._staged(x, lambda h: self.host.bcast(h, root))

    def barrier(self) -> None:
        """The host communicator's barrier."""
        self.host.barrier()

    def abort(self, code: int) -> None:
        """Abort the job through the host communicator."""
        self.host.abort(code)

