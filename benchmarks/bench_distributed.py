"""Data-parallel training across processes: the main job's step on 1 and 2 processes, and
the all-reduce of fungrad.distributed against raw mpi4py.

1. The char-GPT train step of ``examples/shakespeare_gpt.py`` (its default model: 4 layers,
   4 heads, width 128, 64-character contexts, AdamW with clipping) through
   ``fungrad.distributed.DataParallel``, 16 sequences per process (weak scaling, as DDP is
   used): samples/s on 1 process and on 2, and the scaling efficiency
   ``sps(2) / (2 * sps(1))``. Each process runs with OPENBLAS_NUM_THREADS=1 and
   FUNGRAD_THREADS=1, so a process uses one core; a third run gives the one process both
   cores (two OpenBLAS threads, fungrad's parallel tails) for comparison.
2. All-reduce bandwidth on 2 processes, for float32 buffers of 4 KiB to 16 MiB: the
   bucketed path (``fused_pmean`` of a pytree of 16 leaves inside ``jit``: concatenate,
   one non-blocking all-reduce waited for by polling, split), the same non-blocking
   all-reduce on one flat buffer (fungrad's communicator alone), and mpi4py's blocking
   ``Comm.Allreduce`` on a flat buffer of the same size. Bandwidth = bytes / time.

Run: python benchmarks/bench_distributed.py [--steps 10]   (launches mpiexec itself)
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import distributed as dist
from fungrad import random
from fungrad.distributed import comm as comm_lib
from fungrad.distributed import runtime
from fungrad.models import gpt2

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
import shakespeare_gpt as job  # noqa: E402  (the main job, importable once examples/ is on the path)

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
# The workers read these when they start (the driver sets them in their environment).
ONE_CORE = {"OPENBLAS_NUM_THREADS": "1", "FUNGRAD_THREADS": "1"}
TWO_CORES = {"OPENBLAS_NUM_THREADS": "2", "FUNGRAD_THREADS": ""}
SIZES = [1 << k for k in range(10, 23, 2)]   # float32 elements: 4 KiB .. 16 MiB
LEAVES = 16


# --------------------------------------------------------------------------- workers (under mpiexec)

def gpt_worker(steps: int) -> dict:
    """Time ``steps`` DataParallel steps of the main job's model (after 2 warm-up steps)."""
    if runtime.under_mpi_launcher():
        dist.initialize(timeout=600)
    ap = job.parser()
    args = ap.parse_args([])
    job.check_args(ap, args)
    text = job.load_text()
    tok = job.CharTokenizer.train(text)
    train, _ = job.split_data(tok, text)
    cfg = job.model_config(args, tok.vocab_size)
    opt, _ = job.make_optimizer(args)
    dp = dist.DataParallel(lambda params, batch: gpt2.loss(params, cfg, *batch), opt)
    state = dp.init(gpt2.init(random.PRNGKey(0), cfg))
    per_process, n = args.batch_size, dist.process_count()
    times = []
    for i in range(steps + 2):
        batch = dp.shard(job.get_batch(train, 0, job.TRAIN_STREAM, i, per_process * n, args.block_size))
        t0 = time.perf_counter()
        state, loss = dp.step(state, batch)
        float(loss)
        times.append(time.perf_counter() - t0)
    timed = sorted(times[2:])
    return {"processes": n, "median_step_s": timed[len(timed) // 2], "min_step_s": timed[0],
            "samples_per_s": per_process * n / timed[len(timed) // 2]}


def allreduce_worker(repeat: int) -> dict:
    """Seconds per all-reduce (best of ``repeat``, processes aligned by a barrier before each)
    for each size and path."""
    dist.initialize(timeout=600)
    host = runtime.world().host
    raw = comm_lib.MPI.COMM_WORLD
    mean = fungrad.jit(dist.fused_pmean)

    def best(fn):
        fn()
        times = []
        for _ in range(repeat):
            host.barrier()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)
    out = {}
    for size in SIZES:
        flat, recv = np.ones(size, np.float32), np.empty(size, np.float32)
        tree = [jnp.ones(size // LEAVES) for _ in range(LEAVES)]
        with dist.process_axis("dp"):
            out[size] = {"bucketed": best(lambda tree=tree: mean(tree)),
                         "fungrad_flat": best(lambda flat=flat: host.allreduce(flat, "sum")),
                         "mpi4py": best(lambda flat=flat, recv=recv: raw.Allreduce(flat, recv, comm_lib.MPI.SUM))}
    return out


# --------------------------------------------------------------------------- driver

def launch(n: int, env: dict, *args: str) -> dict:
    cmd = [MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-n", str(n), sys.executable, __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **env), check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="timed GPT steps per run")
    ap.add_argument("--repeat", type=int, default=20, help="all-reduces timed per size and path")
    ap.add_argument("--worker", choices=["gpt", "allreduce"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        result = gpt_worker(args.steps) if args.worker == "gpt" else allreduce_worker(args.repeat)
        if int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")) == 0:
            print("RESULT " + json.dumps(result), flush=True)
        return
    if MPIEXEC is None:
        sys.exit("bench_distributed: mpiexec not found (pip install -e '.[distributed]')")
    print(f"load average before: {'/'.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    one = launch(1, ONE_CORE, "--worker", "gpt", "--steps", str(args.steps))
    two = launch(2, ONE_CORE, "--worker", "gpt", "--steps", str(args.steps))
    whole = launch(1, TWO_CORES, "--worker", "gpt", "--steps", str(args.steps))
    print("\nchar-GPT DataParallel step, 16 sequences of 64 characters per process")
    print(f"{'run':<36}{'median step s':>14}{'min step s':>12}{'samples/s':>11}")
    for name, r in (("1 process x 1 thread", one), ("2 processes x 1 thread", two),
                    ("1 process x 2 threads (reference)", whole)):
        print(f"{name:<36}{r['median_step_s']:>14.3f}{r['min_step_s']:>12.3f}{r['samples_per_s']:>11.1f}")
    print(f"scaling efficiency 1 -> 2 processes: {two['samples_per_s'] / (2 * one['samples_per_s']):.2f} "
          f"(speed-up {two['samples_per_s'] / one['samples_per_s']:.2f}x)")

    bw = launch(2, ONE_CORE, "--worker", "allreduce", "--repeat", str(args.repeat))
    print(f"\nall-reduce on 2 processes, float32 (bucketed: {LEAVES} leaves through jit(fused_pmean))")
    print(f"{'bytes':>10}{'bucketed GB/s':>15}{'flat GB/s':>11}{'mpi4py GB/s':>13}{'bucketed/mpi4py':>17}"
          f"{'flat/mpi4py':>13}")
    for size, t in bw.items():
        nbytes = int(size) * 4
        gb = {k: nbytes / v / 1e9 for k, v in t.items()}
        print(f"{nbytes:>10}{gb['bucketed']:>15.3f}{gb['fungrad_flat']:>11.3f}{gb['mpi4py']:>13.3f}"
              f"{gb['bucketed'] / gb['mpi4py']:>17.2f}{gb['fungrad_flat'] / gb['mpi4py']:>13.2f}")
    print(f"\nload average after: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
