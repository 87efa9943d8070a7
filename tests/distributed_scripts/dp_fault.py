"""Run under `mpiexec -n 2`: process 1 fails after two training steps, process 0 carries on.

Modes: ``kill`` (process 1 is killed by SIGKILL), ``stall`` (process 1 sleeps; process 0's
collective times out and aborts the job) and ``stall-raise`` (the same with
``abort_on_timeout=False``: process 0 gets ``CollectiveTimeoutError`` and exits).
tests/test_distributed.py checks that the job ends, and how, within a bounded time.
"""
from __future__ import annotations

import os
import signal
import sys
import time

from fungrad import distributed as dist
from fungrad.distributed import runtime

import common

WARMUP_TIMEOUT = 120.0   # processes start and compile at different speeds on a loaded machine
TIMEOUT = {"kill": 30.0, "stall": 3.0, "stall-raise": 3.0}
STALL_S = 120
RAISED_EXIT = 7


def main(mode: str) -> None:
    dist.initialize(timeout=WARMUP_TIMEOUT, abort_on_timeout=mode != "stall-raise")
    rank = dist.process_index()
    dp = dist.DataParallel(common.loss_fn, common.optimizer())
    state = dp.init(common.init_params(seed=0))
    for step in range(6):
        if step == 2:   # both processes are warm: from now on a collective may wait TIMEOUT
            runtime.world().host.timeout = TIMEOUT[mode]
        if rank == 1 and step == 2:
            print(f"process 1 stops at {time.time():.3f}", flush=True)
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(STALL_S)
        try:
            state, _ = dp.step(state, dp.shard(common.global_batch(step)))
        except dist.CollectiveTimeoutError as e:
            print(f"process {rank} caught CollectiveTimeoutError: {e}", flush=True)
            os._exit(RAISED_EXIT)
        print(f"process {rank} finished step {step}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
