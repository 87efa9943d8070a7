"""Control flow: fungrad (eager and jit) against ``jax.jit`` (µs per call, and ratios).

Benchmarks:
  rnn_forward   tanh RNN as a ``lax.scan`` (batch 16, hidden 128, 64 steps)
  rnn_grad      value_and_grad of the RNN's loss (a reverse scan over residuals)
  while_newton  Newton iterations for sqrt on 4096 values until converged (a while_loop)
  cond_in_scan  a scan whose body branches with ``lax.cond`` (64 steps, small arrays)

Each of fungrad eager, ``fungrad.jit`` and ``jax.jit`` runs in a process of its own (no shared
allocator, thread pools or caches), driven in alternating rounds so that outside load falls on
all alike. A sample is ``--batch`` calls in a row, ``jax`` synchronised after the last (its
asynchronous dispatch overlaps one call's Python with the previous call's work, as in a
training loop; ``--batch 1`` times each call to its result instead); the figures are the
minimum over samples, per call, of the wall clock and of the process's CPU time (which a
machine busy with other work inflates less). ``--baseline DIR`` also times
``fungrad.jit`` of the fungrad found in ``DIR`` (a checkout of an earlier commit: before/after
figures in one run). The script prints OPENBLAS_NUM_THREADS and the load average.

Run: python benchmarks/bench_control_flow.py [--quick] [--cases cond_in_scan] [--baseline DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Worker, interleaved_workers, load_average, serve, time_calls  # noqa: E402

B, H, T = 16, 128, 64


def rnn_loss(L):
    def loss(w, u, xs, h0):
        def body(h, x):
            h = L.tanh(L.add(L.dot(h, w), L.dot(x, u)))
            return h, L.reduce_sum(L.mul(h, h), (0, 1))
        h, ys = L.scan(body, h0, xs)
        return L.add(L.reduce_sum(h, (0, 1)), L.reduce_sum(ys, (0,)))
    return loss


def newton_sqrt(L):
    def f(a):
        def body(c):
            i, x = c
            return L.add(i, 1), L.mul(L.add(x, L.div(a, x)), 0.5)

        def cond(c):
            i, x = c
            err = L.reduce_max(L.abs(L.sub(L.mul(x, x), a)), (0,))
            return L.bitwise_and(L.lt(i, 100), L.gt(err, 1e-3))
        return L.while_loop(cond, body, (0, a))[1]
    return f


def cond_in_scan(L):
    def f(xs):
        def body(c, x):
            c = L.cond(L.gt(x, 0.0), lambda c: L.mul(c, 1.01), lambda c: L.sub(c, 0.01), c)
            return c, L.reduce_sum(c, (0,))
        return L.scan(body, L.full((8,), 1.0, np.float32), xs)
    return f


def _inputs() -> dict[str, tuple[Callable, tuple, bool]]:
    """Each case: (builder of the function from a ``lax`` module, NumPy inputs, whether the
    value and gradient are timed)."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    u = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    xs = rng.standard_normal((T, B, H)).astype(np.float32)
    h0 = np.zeros((B, H), np.float32)
    a = rng.uniform(1, 100, 4096).astype(np.float32)
    cx = rng.standard_normal(T).astype(np.float32)
    return {
        "rnn_forward": (rnn_loss, (w, u, xs, h0), False),
        "rnn_grad": (rnn_loss, (w, u, xs, h0), True),
        "while_newton": (newton_sqrt, (a,), False),
        "cond_in_scan": (cond_in_scan, (cx,), False),
    }


def _call(kind: str, case: str, batch: int) -> Callable[[], Any]:
    """A function running ``case`` ``batch`` times with ``kind``'s library (``jax``:
    synchronised on the last result)."""
    builder, inputs, grad = _inputs()[case]
    if kind == "jax":
        import jax
        import jax.lax as jl
        f = jax.value_and_grad(builder(jl), (0, 1)) if grad else builder(jl)
        jitted, args = jax.jit(f), [jax.numpy.asarray(x) for x in inputs]
        return lambda: jax.block_until_ready([jitted(*args) for _ in range(batch)][-1])
    import fungrad
    from fungrad import lax
    f = fungrad.value_and_grad(builder(lax), (0, 1)) if grad else builder(lax)
    args = [fungrad.numpy.asarray(x) for x in inputs]
    run = f if kind == "eager" else fungrad.jit(f)
    return lambda: [run(*args) for _ in range(batch)]


def worker(kind: str, case: str, batch: int) -> None:
    """Serve a ``Worker``: ``run`` answers ``time_calls`` of ``number`` samples of ``batch``
    calls each."""
    fn = _call(kind, case, batch)
    fn()  # trace and compile
    serve(lambda request: time_calls(fn, request["number"]))


def _worker_argv(kind: str, case: str, batch: int, root: str | None) -> list[str]:
    """The command line of a worker; with ``root``, the fungrad in that directory is imported
    (the editable install's import hook is removed so that ``root`` comes first)."""
    if root is None:
        return [sys.executable, __file__, "--worker", kind, "--cases", case,
                "--batch", str(batch)]
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
            f"sys.path[:0] = [{root!r}, {os.path.dirname(os.path.abspath(__file__))!r}]\n"
            "import fungrad, bench_control_flow\n"
            f"assert fungrad.__file__.startswith({os.path.abspath(root)!r}), fungrad.__file__\n"
            f"bench_control_flow.worker({kind!r}, {case!r}, {batch})\n")
    return [sys.executable, "-c", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    parser.add_argument("--cases", nargs="+", choices=list(_inputs()), default=list(_inputs()))
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds")
    parser.add_argument("--batch", type=int, default=None,
                        help="calls per timed sample (default 20; 1 for rnn_grad, eager)")
    parser.add_argument("--baseline", help="also time fungrad.jit of the fungrad in this directory")
    parser.add_argument("--worker", choices=("eager", "jit", "jax"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.cases[0], args.batch)
    rounds = args.rounds or (3 if args.quick else 10)
    print(f"µs per call, minimum over samples in {rounds} alternating rounds, each library "
          f"in its own process; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; load {load_average()}")
    kinds = {"eager": None, "jit": None, "jax": None}
    if args.baseline:
        kinds["baseline"] = args.baseline
    print(f"{'case':<14}{'clock':<6}" + "".join(f"{k:>10}" for k in kinds)
          + "".join(f"{k + '/jax':>14}" for k in kinds if k not in ("eager", "jax")))
    for case in args.cases:
        def batch(kind: str) -> int:
            slow = kind == "eager" or case == "rnn_grad"
            return args.batch or (1 if slow else 20)
        workers = {k: Worker(_worker_argv("jit" if root else k, case, batch(k), root))
                   for k, root in kinds.items()}
        number = 2 if args.quick else 5
        try:
            times = interleaved_workers(workers, rounds, number)
        finally:
            for w in workers.values():
                w.close()
        for clock in ("wall", "cpu"):
            us = {k: times[k][clock][0] * 1e6 / batch(k) for k in kinds}
            print(f"{case:<14}{clock:<6}" + "".join(f"{us[k]:10.1f}" for k in kinds)
                  + "".join(f"{us[k] / us['jax']:13.2f}x" for k in kinds
                            if k not in ("eager", "jax")))
    print(f"load after: {load_average()}")


if __name__ == "__main__":
    main()
