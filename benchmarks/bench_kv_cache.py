"""A decode step's KV-cache writes under ``jit`` with the caches donated: fungrad against
``jax.jit`` (ms per call, and the ratio), in float32 and bfloat16.

Each call writes one new row into each of ``--layers`` x 2 caches of ``(1, 12, --context,
64)`` (GPT-2 small's heads) with ``dynamic_update_slice`` and returns the caches, which the
next call donates back. Written in place this costs a row per cache; copied, the whole cache.
Each library runs in a process of its own, driven in alternating rounds (``_timing``); the
figures are minima and medians over samples of ``--batch`` calls (``jax`` synchronised on
the last). The script prints OPENBLAS_NUM_THREADS and the load average.

Run: python benchmarks/bench_kv_cache.py [--context 1024] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable


sys.path.insert(0, os.path.dirname(__file__))
from _timing import Worker, interleaved_workers, load_average, serve, time_calls  # noqa: E402

HEADS, HEAD_DIM = 12, 64


def _step(lax: Any) -> Callable:
    """The decode step's cache writes, written against a ``lax`` module."""
    def step(caches: list, row: Any, pos: Any) -> list:
        return [lax.dynamic_update_slice(c, row, (0, 0, pos, 0)) for c in caches]
    return step


def _call(kind: str, dtype: str, layers: int, context: int, batch: int) -> Callable[[], Any]:
    """``batch`` donated steps with ``kind``'s library, each at the next position."""
    shape = (1, HEADS, context, HEAD_DIM)
    if kind == "jax":
        import jax
        import jax.numpy as xnp
        step, np_mod = jax.jit(_step(jax.lax), donate_argnums=0), xnp
    else:
        import fungrad
        import fungrad.numpy as fnp
        step, np_mod = fungrad.jit(_step(fungrad.lax), donate_argnums=0), fnp
    state = {"caches": [np_mod.zeros(shape, dtype) + 0 for _ in range(2 * layers)], "pos": 0}
    row = np_mod.ones((1, HEADS, 1, HEAD_DIM), dtype)

    def run() -> None:
        for _ in range(batch):
            state["caches"] = step(state["caches"], row, state["pos"] % context)
            state["pos"] += 1
        if kind == "jax":
            state["caches"][-1].block_until_ready()
    return run


def worker(kind: str, dtype: str, layers: int, context: int, batch: int) -> None:
    """Serve a ``Worker``: ``run`` answers ``time_calls`` of ``number`` samples."""
    fn = _call(kind, dtype, layers, context, batch)
    fn()  # trace and compile
    serve(lambda request: time_calls(fn, request["number"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--batch", type=int, default=10, help="calls per timed sample")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # kind dtype
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.layers, args.context, args.batch)
    print(f"ms per call ({2 * args.layers} caches of (1, {HEADS}, {args.context}, {HEAD_DIM}), "
          f"donated), min / median over samples of {args.batch} calls in {args.rounds} "
          f"alternating rounds, each library in its own process; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; load {load_average()}")
    print(f"{'dtype':<10}{'fungrad':>18}{'jax.jit':>18}{'ratio (min)':>14}")
    for dtype in args.dtypes:
        argv = lambda kind: [sys.executable, __file__, "--worker", kind, dtype,  # noqa: E731
                             "--layers", str(args.layers), "--context", str(args.context),
                             "--batch", str(args.batch)]
        workers = {k: Worker(argv(k)) for k in ("fungrad", "jax")}
        try:
            times = interleaved_workers(workers, args.rounds, 3)
        finally:
            for w in workers.values():
                w.close()
        ms = {k: [t * 1e3 / args.batch for t in times[k]["wall"]] for k in workers}
        print(f"{dtype:<10}" + "".join(f"{ms[k][0]:9.3f} / {ms[k][1]:6.3f}" for k in workers)
              + f"{ms['fungrad'][0] / ms['jax'][0]:13.2f}x")
    print(f"load after: {load_average()}")


if __name__ == "__main__":
    main()
