"""Process 1 fails after two training steps, process 0 carries on: run under
`mpiexec -n 2` (``dp_fault.py MODE``) or started by ``fungrad.distributed.spawn``
(``dp_fault.py spawn-MODE``).

Modes: ``kill`` (process 1 is killed by SIGKILL), ``stall`` (process 1 sleeps; process 0's
collective times out and aborts the job), ``stall-raise`` (the same with
``abort_on_timeout=False``: process 0 gets ``CollectiveTimeoutError`` and exits) and, with
spawn, ``raise`` (process 1 raises). Under spawn a timeout always raises in process 0.
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
TIMEOUT = {"kill": 30.0, "stall": 3.0, "stall-raise": 3.0, "raise": 30.0}
STALL_S = 120
RAISED_EXIT = 7


def main(mode: str) -> None:
    if mode.startswith("spawn-"):
        try:
            dist.spawn(train, (mode,), 2, timeout=WARMUP_TIMEOUT)
        except dist.DistributedError as e:
            print(f"process 0 caught {type(e).__name__}: {e}", flush=True)
            sys.exit(RAISED_EXIT)
    else:
        dist.initialize(timeout=WARMUP_TIMEOUT, abort_on_timeout=mode != "stall-raise")
        train(mode)


def train(mode: str) -> None:
    spawned, mode = mode.startswith("spawn-"), mode.removeprefix("spawn-")
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
            if mode == "raise":
                raise ValueError("process 1 fails on purpose")
            time.sleep(STALL_S)
        try:
            state, _ = dp.step(state, dp.shard(common.global_batch(step)))
        except dist.CollectiveTimeoutError as e:
            print(f"process {rank} caught CollectiveTimeoutError: {e}", flush=True)
            if spawned:
                raise   # to spawn's caller, which stops the other process
            os._exit(RAISED_EXIT)
        print(f"process {rank} finished step {step}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
