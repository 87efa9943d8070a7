"""``fungrad.distributed``: training on several processes (``jax.distributed`` on MPI).

Launch every process of a job with MPI (``mpiexec -n 2 python train.py``), call
``initialize()`` in each, and train with ``DataParallel``; collectives
(``psum``, ``pmean``, ``pmax``, ``pmin``, ``all_gather``, ``broadcast``) over the process
axis work inside ``jit``, ``grad`` and ``vmap``. Without ``initialize()`` the job is a
single process and needs neither ``mpiexec`` nor ``mpi4py``. See ``docs/distributed.md``.
"""
from fungrad.distributed.collectives import (all_gather, axis_index, axis_size, broadcast, pmax,
                                             pmean, pmin, psum)
from fungrad.distributed.data_parallel import (DataParallel, TrainState, batch_indices,
                                               check_replicas, fused_pmean, rank_key, shard,
                                               tree_hash)
from fungrad.distributed.local import spawn
from fungrad.distributed.errors import (CollectiveTimeoutError, DistributedError, NotUnderMPIError,
                                        ReplicaMismatchError)
from fungrad.distributed.runtime import (DEFAULT_AXIS, host_count, host_id, host_ids, initialize,
                                         is_initialized, local_devices, process_axis,
                                         process_count, process_index, process_indices, shutdown)

__all__ = ["CollectiveTimeoutError", "DEFAULT_AXIS", "DataParallel", "DistributedError",
           "NotUnderMPIError", "ReplicaMismatchError", "TrainState", "all_gather", "axis_index",
           "axis_size", "batch_indices", "broadcast", "check_replicas", "fused_pmean", "host_count",
           "host_id", "host_ids", "initialize", "is_initialized", "local_devices", "pmax",
           "pmean", "pmin", "process_axis", "process_count", "process_index", "process_indices",
           "psum", "rank_key", "shard", "shutdown", "spawn", "tree_hash"]
