"""The ways a multi-process job fails, one class per failure mode.

Each is a ``RuntimeError`` (``DistributedError``), so ``except RuntimeError`` still
catches them; the message names the operation, the process and the fix.
"""
from __future__ import annotations


class DistributedError(RuntimeError):
    """Base class of the errors of ``fungrad.distributed``."""


class NotUnderMPIError(DistributedError):
    """``initialize()`` was called in a process that ``mpiexec`` did not start.

    A single process needs no ``initialize()``: without it ``process_count()`` is 1 and
    every collective over the process axis is the identity. Launch a multi-process job
    with ``mpiexec -n N python script.py``.
    """


class CollectiveTimeoutError(DistributedError):
    """A collective did not complete within the timeout: another process died, stalled,
    or is much slower. The process group is unusable afterwards (the pending operation
    cannot be cancelled), so the job should end; ``initialize(timeout=...)`` sets the limit.
    """


class ReplicaMismatchError(DistributedError):
    """Parameters or optimiser state differ between processes (the debug check of
    ``DataParallel(check_every=N)``): some process ran a different computation, read
    different data into its update, or was restored from another checkpoint.
    """
