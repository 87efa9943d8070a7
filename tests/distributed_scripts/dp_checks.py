"""The collectives, gradients, data-parallel training, checkpoint resume and replica check
on two processes: run under `mpiexec -n 2` (``dp_checks.py OUT_DIR``) or on its own
(``dp_checks.py OUT_DIR --spawn``: ``fungrad.distributed.spawn`` starts the second process,
and the two talk through shared memory). Each process writes what it computed to
OUT_DIR/rank<r>.npz; tests/test_distributed.py compares it with one-process references."""
from __future__ import annotations

import os
import sys
import types

import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import distributed as dist
from fungrad import random

import common


def main(out_dir: str, launcher: str) -> None:
    if launcher == "--spawn":
        dist.spawn(checks, (out_dir,), 2, timeout=120)
    else:
        dist.initialize(timeout=120)
        checks(out_dir)


def checks(out_dir: str) -> None:
    rank = dist.process_index()
    out = {"process_count": dist.process_count(), "rank": rank}
    ops = types.SimpleNamespace(**{n: getattr(dist, n) for n in dist.__all__}, sin=jnp.sin)
    x = jnp.asarray(common.collective_input(rank))

    # Collectives: eager, under jit, under vmap over a local batch; gradients of them.
    with dist.process_axis(common.AXIS):
        for name, v in common.collective_values(ops, x).items():
            out[f"eager/{name}"] = np.asarray(v)
        jitted = fungrad.jit(lambda x: common.collective_values(ops, x))(x)
        for name, v in jitted.items():
            out[f"jit/{name}"] = np.asarray(v)
        out["vmap/psum_rows"] = np.asarray(
            fungrad.vmap(lambda row: dist.psum(row, common.AXIS) * row)(x))
        out["vmap/all_gather_rows"] = np.asarray(
            fungrad.vmap(lambda row: dist.all_gather(row, common.AXIS))(x))
        objective = lambda x: common.objective(ops, x)
        out["grad/objective"] = np.asarray(fungrad.grad(objective)(x))
        out["jit_grad/objective"] = np.asarray(fungrad.jit(fungrad.grad(objective))(x))
        out["grad/pmax_objective"] = np.asarray(
            fungrad.grad(lambda x: common.pmax_objective(ops, x))(x))
        out["rank_key"] = np.asarray(random.key_data(fungrad.jit(dist.rank_key)(random.PRNGKey(3))))

    # Gradients averaged over the processes by the fused all-reduce.
    params = common.init_params(seed=0)
    batch = dist.shard(common.global_batch(0))
    with dist.process_axis(common.AXIS):
        mean_grads = lambda p, b: dist.fused_pmean(fungrad.grad(common.loss_fn)(p, b))
        grads = fungrad.jit(mean_grads)(params, batch)
    for k, v in grads.items():
        out[f"fused_grads/{k}"] = np.asarray(v)

    # Training: STEPS steps, saving at SAVE_AT; then resume from the checkpoint.
    dp = dist.DataParallel(common.loss_fn, common.optimizer(), check_every=1)
    state = dp.init(common.init_params(seed=rank))   # process 0's params win
    ckpt = os.path.join(out_dir, "state.safetensors")
    losses = []
    for step in range(common.STEPS):
        state, loss = dp.step(state, dp.shard(common.global_batch(step)))
        losses.append(float(loss))
        if state.step == common.SAVE_AT:
            dp.save(ckpt, state)
    out["losses"] = np.asarray(losses)
    for k, v in state.params.items():
        out[f"trained/{k}"] = np.asarray(v)

    resumed = dp.restore(ckpt, like=dp.init(common.init_params(seed=0)))
    out["resumed_step"] = resumed.step
    for step in range(resumed.step, common.STEPS):
        resumed, _ = dp.step(resumed, dp.shard(common.global_batch(step)))
    for k, v in resumed.params.items():
        out[f"resumed/{k}"] = np.asarray(v)

    # The replica check catches a process whose parameters drifted.
    drifted = state.params if rank == 0 else dict(state.params, b2=state.params["b2"] + 1e-3)
    try:
        dist.check_replicas(drifted, what="the drifted params")
        out["mismatch_error"] = ""
    except dist.ReplicaMismatchError as e:
        out["mismatch_error"] = str(e)

    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
