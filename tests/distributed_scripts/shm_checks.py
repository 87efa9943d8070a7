"""The shared-memory communicator of ``fungrad.distributed.spawn`` on three processes:
``shm_checks.py OUT_DIR``. Each process writes what its collectives returned to
OUT_DIR/rank<r>.npz; tests/test_distributed.py checks the values, dtypes and shapes, and
that every process got the same bits."""
from __future__ import annotations

import os
import sys

import ml_dtypes
import numpy as np

from fungrad import distributed as dist
from fungrad.distributed import local, runtime

PROCESSES = 3
# Sizes around the first slot size, so that the shared buffers grow twice.
SIZES = (1, local.INITIAL_SLOT_BYTES // 4 - 1, local.INITIAL_SLOT_BYTES // 4 + 1, 100_000)


def rank_values(rank: int, n: int, dtype) -> np.ndarray:
    """What process ``rank`` contributes: values that differ by process and position."""
    return (np.arange(n) % 7 + 3 * rank - 2).astype(dtype)


def checks(out_dir: str) -> None:
    host = runtime.world().host
    rank, out = host.rank, {}
    for n in SIZES:
        for op in ("sum", "max", "min"):
            out[f"{op}/{n}"] = host.allreduce(rank_values(rank, n, np.float32), op)
    out["sum/int64"] = host.allreduce(rank_values(rank, 5, np.int64), "sum")
    out["max/bool"] = host.allreduce(np.array([rank == 1, False]), "max")
    out["sum/bfloat16"] = host.allreduce(rank_values(rank, 4, ml_dtypes.bfloat16), "sum")
    out["sum/scalar"] = host.allreduce(np.float32(rank + 0.5), "sum")
    out["allgather"] = host.allgather(np.array([[rank, 10 + rank]], np.int32))
    out["bcast"] = host.bcast(np.full((2, 2), rank, np.float64), root=2)
    # Many calls in a row: the slot sets alternate, the result of each must be its own.
    out["sequence"] = np.array([host.allreduce(np.float32(i * (rank + 1)), "sum")
                                for i in range(50)])
    host.barrier()
    out["process_count"] = dist.process_count()
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"),
             **{k: np.asarray(v).astype(np.float64) if np.asarray(v).dtype == ml_dtypes.bfloat16
                else v for k, v in out.items()},
             dtypes=np.array([f"{k}={np.asarray(v).dtype}" for k, v in out.items()]))


if __name__ == "__main__":
    dist.spawn(checks, (sys.argv[1],), PROCESSES, timeout=120)
