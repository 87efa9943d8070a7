"""Data-parallel training across processes: the main job's step on 1 and 2 processes, and
the all-reduce of fungrad.distributed against raw mpi4py.

1. The char-GPT train step of ``examples/shakespeare_gpt.py`` (its default model: 4 layers,
   4 heads, width 128, 64-character contexts, AdamW with clipping) through
   ``fungrad.distributed.DataParallel``, 16 sequences per process (weak scaling, as DDP is
   used): samples/s on 1 process and on 2, and the scaling efficiency
   ``sps(2) / (2 * sps(1))``. Each process runs with OPENBLAS_NUM_THREADS=1 and
   FUNGRAD_THREADS=1, so a process uses one core; a third run gives the one process both
   cores (two OpenBLAS threads, fungrad's parallel tails) for comparison.
2. All-reduce on 2 processes, for float32 buffers of 4 KiB to 16 MiB, min and median time per
   call over many calls (the paths interleaved, the processes aligned by a barrier before
   each call): mpi4py's blocking ``Comm.Allreduce`` into a preallocated buffer; the same job
   as ``fused_pmean`` written by hand with mpi4py and preallocated buffers (pack 16 leaves,
   ``Allreduce``, scale, views); fungrad's communicator on one flat buffer; the fused path
   as a compiled step runs it (the implementation of ``process_fused_pmean`` on 16 NumPy
   leaves); and ``jit(fused_pmean)`` called on a pytree of 16 leaves (adds a ``jit`` call).

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
# the main job, importable once examples/ is on the path
import shakespeare_gpt as job  # noqa: E402

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
# The workers read these when they start (the driver sets them in their environment).
ONE_CORE = {"OPENBLAS_NUM_THREADS": "1", "FUNGRAD_THREADS": "1"}
TWO_CORES = {"OPENBLAS_NUM_THREADS": "2", "FUNGRAD_THREADS": ""}
SIZES = [1 << k for k in range(10, 23, 2)]   # float32 elements: 4 KiB .. 16 MiB
LEAVES = 16


# -------------------------------------------------------------------------- workers (under mpiexec)

def gpt_worker(steps: int) -> dict:
    """Time ``steps`` DataParallel steps of the main job's model (after 2 warm-up steps)."""
    if runtime.under_mpi_launcher():
        dist.initialize(timeout=600)
    ap = job.parser()
    # the schedule spans the steps run here (the job's default, 0, plans them from a time budget)
    args = ap.parse_args(["--steps", str(steps + 2)])
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
        batch = dp.shard(job.get_batch(train, 0, job.TRAIN_STREAM, i, per_process * n,
                                       args.block_size))
        t0 = time.perf_counter()
        state, loss = dp.step(state, batch)
        float(loss)
        times.append(time.perf_counter() - t0)
    timed = sorted(times[2:])
    return {"processes": n, "median_step_s": timed[len(timed) // 2], "min_step_s": timed[0],
            "samples_per_s": per_process * n / timed[len(timed) // 2]}


def _hand_written_mean(raw, leaves: list, packed: np.ndarray, summed: np.ndarray) -> list:
    """What the fused path does, written by hand with mpi4py and preallocated buffers: pack
    the leaves, one blocking ``Allreduce``, scale by 1/n in place, views in the leaves' shapes."""
    np.concatenate(leaves, axis=None, out=packed)
    raw.Allreduce(packed, summed, comm_lib.MPI.SUM)
    np.multiply(summed, np.float32(1 / raw.Get_size()), out=summed)
    out, start = [], 0
    for leaf in leaves:
        out.append(summed[start:start + leaf.size].reshape(leaf.shape))
        start += leaf.size
    return out


def allreduce_worker(repeat: int) -> dict:
    """Seconds per all-reduce, ``{size: {path: (min, median)}}``, for each size and path.

    The paths are timed in alternating rounds (a burst of outside load falls on all of them),
    the processes aligned by a barrier before each call: ``repeat`` calls per path up to
    64 KiB, proportionally fewer above (at least 30).
    """
    dist.initialize(timeout=600)
    host = runtime.world().host
    raw = comm_lib.MPI.COMM_WORLD
    mean = fungrad.jit(dist.fused_pmean)
    fused = dist.collectives.process_fused_pmean_p.impl
    out = {}
    for size in SIZES:
        flat, recv = np.ones(size, np.float32), np.empty(size, np.float32)
        leaves = [np.full(size // LEAVES, 1.0 + i, np.float32) for i in range(LEAVES)]
        tree = [jnp.asarray(leaf) for leaf in leaves]
        paths = {
            "mpi4py": lambda flat=flat, recv=recv: raw.Allreduce(flat, recv, comm_lib.MPI.SUM),
            "mpi4py_mean": lambda leaves=leaves, p=np.empty(size, np.float32), s=recv:
                _hand_written_mean(raw, leaves, p, s),
            "flat": lambda flat=flat: host.allreduce(flat, "sum"),
            "fused": lambda leaves=leaves: fused(np, *leaves, axis_name="dp"),
            "jit_fused_pmean": lambda tree=tree: mean(tree),
        }
        rounds = max(30, repeat * (1 << 14) // max(size, 1 << 14))
        samples: dict[str, list[float]] = {name: [] for name in paths}
        with dist.process_axis("dp"):
            for fn in paths.values():
                fn()
            for _ in range(rounds):
                for name, fn in paths.items():
                    host.barrier()
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - t0)
        out[size] = {name: (min(t), sorted(t)[len(t) // 2]) for name, t in samples.items()}
    return out


# --------------------------------------------------------------------------- driver

def launch(n: int, env: dict, *args: str) -> dict:
    cmd = [MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-n", str(n), sys.executable,
           __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **env),
                          check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="timed GPT steps per run")
    ap.add_argument("--repeat", type=int, default=300,
                    help="all-reduces timed per path at sizes up to 64 KiB (fewer above)")
    ap.add_argument("--part", choices=["all", "step", "allreduce"], default="all",
                    help="run the GPT step, the all-reduce, or both")
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
    if args.part in ("all", "step"):
        one = launch(1, ONE_CORE, "--worker", "gpt", "--steps", str(args.steps))
        two = launch(2, ONE_CORE, "--worker", "gpt", "--steps", str(args.steps))
        whole = launch(1, TWO_CORES, "--worker", "gpt", "--steps", str(args.steps))
        print("\nchar-GPT DataParallel step, 16 sequences of 64 characters per process")
        print(f"{'run':<36}{'median step s':>14}{'min step s':>12}{'samples/s':>11}")
        for name, r in (("1 process x 1 thread", one), ("2 processes x 1 thread", two),
                        ("1 process x 2 threads (reference)", whole)):
            print(f"{name:<36}{r['median_step_s']:>14.3f}{r['min_step_s']:>12.3f}"
                  f"{r['samples_per_s']:>11.1f}")
        speedup = two["samples_per_s"] / one["samples_per_s"]
        print(f"scaling efficiency 1 -> 2 processes: {speedup / 2:.2f} "
              f"(speed-up {speedup:.2f}x)")

    if args.part in ("all", "allreduce"):
        bw = launch(2, ONE_CORE, "--worker", "allreduce", "--repeat", str(args.repeat))
        print(f"\nall-reduce on 2 processes, float32, microseconds per call as min / median "
              f"({LEAVES} leaves for the fused paths); ratio = mpi4py's time / the path's time")
        names = ["mpi4py", "mpi4py_mean", "flat", "fused", "jit_fused_pmean"]
        print(f"{'bytes':>9}" + "".join(f"{n:>18}" for n in names) + f"{'flat/mpi4py':>14}"
              f"{'fused/mpi4py':>14}{'jit/mpi4py':>12}{'fused/mean':>12}")
        for size, t in bw.items():
            us = {n: f"{t[n][0] * 1e6:.0f} / {t[n][1] * 1e6:.0f}" for n in names}

            def ratio(n: str, ref: str = "mpi4py", t: dict = t) -> str:
                return f"{t[ref][0] / t[n][0]:.2f}/{t[ref][1] / t[n][1]:.2f}"
            print(f"{int(size) * 4:>9}" + "".join(f"{us[n]:>18}" for n in names)
                  + f"{ratio('flat'):>14}{ratio('fused'):>14}{ratio('jit_fused_pmean'):>12}"
                  f"{ratio('fused', 'mpi4py_mean'):>12}")
    print(f"\nload average after: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
