"""Run under `mpiexec -n N` on a machine with CuPy and a GPU per process: the collectives and
data-parallel training on device arrays through NCCL (each process writes OUT_DIR/rank<r>.npz)."""
from __future__ import annotations

import os
import sys

import numpy as np

import fungrad
from fungrad import distributed as dist

import common


def main(out_dir: str) -> None:
    dist.initialize(backend="nccl", timeout=120)
    rank, gpu = dist.process_index(), dist.local_devices()[0]
    assert gpu.platform == "gpu", dist.local_devices()
    on_gpu = lambda tree: fungrad.tree.map(lambda v: fungrad.device_put(np.asarray(v), gpu), tree)
    out = {}
    with dist.process_axis(common.AXIS):
        total = dist.psum(on_gpu(common.collective_input(rank)), common.AXIS)
        assert type(total._value).__module__.startswith("cupy"), type(total._value)
        out["psum"] = np.asarray(total) / dist.process_count()
    dp = dist.DataParallel(common.loss_fn, common.optimizer(), check_every=1)
    state = dp.init(on_gpu(common.init_params(seed=0)))
    for step in range(common.STEPS):
        state, _ = dp.step(state, on_gpu(dp.shard(common.global_batch(step))))
    for k, v in state.params.items():
        out[f"trained/{k}"] = np.asarray(v)
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1])
