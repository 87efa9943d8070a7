"""Per-example gradients under jit: ``jit(vmap(grad(loss)))`` of a linear model, 256
examples of 512 features, against ``jax.jit`` and hand-written NumPy.

Each library runs in its own process (none pays for the others' threads or imports), in
alternating rounds so that outside load falls on all of them alike; the figure per library is
the minimum over rounds of the best-of-5 mean of ``--number`` calls, in µs. ``--root DIR``
times the fungrad found in ``DIR`` instead of the installed one (a checkout of an earlier
commit, for before/after figures).

Run: python benchmarks/bench_vmap.py [--rounds 5] [--number 2000] [--root DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

B, D = 256, 512
LIBS = ("numpy", "jax", "fungrad")


def _inputs():
    import numpy as np
    rng = np.random.default_rng(0)
    return (rng.standard_normal(D).astype(np.float32),
            rng.standard_normal((B, D)).astype(np.float32),
            rng.standard_normal(B).astype(np.float32))


def _time_one(lib: str, number: int) -> float:
    """Best-of-5 µs per call of the per-example gradients in ``lib`` (in this process)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from _timing import best_us
    w, x, y = _inputs()
    if lib == "numpy":

        def per_example(w, x, y):  # d/dw (x.w - y)^2 = 2 (x.w - y) x, row by row
            r = x @ w
            r -= y
            r *= 2
            return r[:, None] * x
        return best_us(lambda: per_example(w, x, y), number)
    if lib == "jax":
        import jax
        import jax.numpy as jnp
        f = jax.jit(jax.vmap(jax.grad(lambda w, x, y: (jnp.dot(x, w) - y) ** 2),
                             in_axes=(None, 0, 0)))
        args = [jnp.asarray(a) for a in (w, x, y)]
        return best_us(lambda: f(*args), number, sync=lambda out: out.block_until_ready())
    import fungrad
    import fungrad.numpy as fnp
    f = fungrad.jit(fungrad.vmap(fungrad.grad(lambda w, x, y: (fnp.dot(x, w) - y) ** 2),
                                 in_axes=(None, 0, 0)))
    args = [fnp.asarray(a) for a in (w, x, y)]
    return best_us(lambda: f(*args), number)


def _child(lib: str, number: int, root: str | None) -> float:
    code = ("import sys, json\n"
            + ("sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
               f"sys.path.insert(0, {root!r})\n" if root else "")
            + f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
            + f"import bench_vmap\nprint(json.dumps(bench_vmap._time_one({lib!r}, {number})))\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--root", help="time the fungrad package found in this directory")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))
    from _timing import load_average
    best = {lib: float("inf") for lib in LIBS}
    for _ in range(args.rounds):
        for lib in LIBS:
            best[lib] = min(best[lib], _child(lib, args.number, args.root))
    print(f"per-example grads, linear model {B}x{D}, µs per call (min of {args.rounds} "
          f"alternating processes; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; load {load_average()})")
    for lib in LIBS:
        print(f"  {lib:<8}{best[lib]:9.1f}")
    print(f"  fungrad / numpy {best['fungrad'] / best['numpy']:.2f}x, "
          f"fungrad / jax.jit {best['fungrad'] / best['jax']:.2f}x (target: <= 1.5x numpy)")


if __name__ == "__main__":
    main()
