"""Linear algebra: fungrad eager and ``fungrad.jit`` against ``jax.jit`` (ms per call).

``solve`` (16 right-hand sides), ``cholesky``, ``svd`` (thin) and ``eigh`` on one 512x512
matrix and on a batch of 64 32x32 matrices; and the gradient of a Gaussian-process
marginal likelihood, ``-0.5 y^T K^-1 y - 0.5 logdet K`` with ``K`` an RBF kernel of 256
points plus noise, with respect to the log lengthscale and log noise: once through
``slogdet`` + ``solve``, once through ``cholesky`` + triangular solves. All libraries run
in one process (interleaved rounds, min and median), then each library alone in its own
process (``--only LIB``, through ``subprocess``). Set OPENBLAS_NUM_THREADS=1 on a loaded
machine (the script prints the setting).
Run: python benchmarks/bench_linalg.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved, load_average

MODES = {"fungrad": ("fungrad", "fungrad.jit"), "jax": ("jax.jit",)}


def inputs() -> dict[str, tuple]:
    rng = np.random.default_rng(0)

    def spd(shape):
        a = rng.standard_normal(shape).astype(np.float32)
        return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1], dtype=np.float32)
    big, small = spd((512, 512)), spd((64, 32, 32))
    x = np.sort(rng.uniform(0, 10, 256)).astype(np.float32)
    y = np.sin(x) + 0.1 * rng.standard_normal(256).astype(np.float32)
    return {"512": (big, rng.standard_normal((512, 16)).astype(np.float32)),
            "64x32": (small, rng.standard_normal((64, 32, 16)).astype(np.float32)),
            "gp": (np.array([0.0, -2.0], np.float32), x, y)}


def gp_loss(xp: Any, sl: Any, via: str) -> Callable:
    """Negative log marginal likelihood (up to a constant) of ``y`` under an RBF kernel."""
    def loss(log_params, x, y):
        lengthscale, noise = xp.exp(log_params[0]), xp.exp(log_params[1])
        k = xp.exp(-0.5 * ((x[:, None] - x[None, :]) / lengthscale) ** 2)
        k = k + noise * xp.eye(x.shape[0], dtype=x.dtype)
        if via == "slogdet":
            fit, logdet = y @ xp.linalg.solve(k, y), xp.linalg.slogdet(k)[1]
        else:
            chol = xp.linalg.cholesky(k)
            alpha = sl.solve_triangular(chol, y, lower=True)
            fit, logdet = alpha @ alpha, 2 * xp.sum(xp.log(xp.diagonal(chol)))
        return 0.5 * fit + 0.5 * logdet
    return loss


def cases(lib: str) -> dict[str, tuple[Callable, str]]:
    """``{case: (function, input name)}`` written against ``lib``'s numpy and scipy."""
    if lib == "jax":
        import jax
        import jax.numpy as xp
        import jax.scipy.linalg as sl
    else:
        import fungrad as jax
        import fungrad.numpy as xp
        import fungrad.scipy.linalg as sl
    out = {}
    for size in ("512", "64x32"):
        out[f"solve {size}"] = (lambda a, b: xp.linalg.solve(a, b), size)
        out[f"cholesky {size}"] = (lambda a, b: xp.linalg.cholesky(a), size)
        out[f"svd {size}"] = (lambda a, b: xp.linalg.svd(a, full_matrices=False), size)
        out[f"eigh {size}"] = (lambda a, b: xp.linalg.eigh(a), size)
    for via in ("slogdet", "cholesky"):
        out[f"GP grad ({via})"] = (jax.grad(gp_loss(xp, sl, via)), "gp")
    return out


def timed_functions(libs: list[str]) -> dict[str, dict[str, Callable]]:
    """``{case: {mode: zero-argument callable}}`` with inputs already converted."""
    data = inputs()
    out: dict[str, dict[str, Callable]] = {}
    for lib in libs:
        if lib == "jax":
            import jax
            import jax.numpy as xp
            wraps = {"jax.jit": jax.jit}
        else:
            import fungrad
            import fungrad.numpy as xp
            wraps = {"fungrad": lambda f: f, "fungrad.jit": fungrad.jit}
        for case, (fn, key) in cases(lib).items():
            args = [xp.asarray(a) for a in data[key]]
            for mode, wrap in wraps.items():
                g = wrap(fn)
                out.setdefault(case, {})[mode] = (
                    lambda g=g, args=args: [leaf.block_until_ready() for leaf in _leaves(g(*args))])
    return out


def _leaves(x: Any) -> list:
    return list(x) if isinstance(x, (tuple, list)) else [x]


def measure(libs: list[str], rounds: int) -> dict[str, dict[str, tuple[float, float]]]:
    """``{case: {mode: (min ms, median ms)}}``, modes of one case interleaved."""
    out = {}
    for case, fns in timed_functions(libs).items():
        for fn in fns.values():
            fn()  # compile / warm up
        times = interleaved(fns, rounds=rounds, number=1 if "512" in case or "GP" in case else 3)
        out[case] = {mode: (lo * 1e3, med * 1e3) for mode, (lo, med) in times.items()}
    return out


def table(results: dict[str, dict[str, tuple[float, float]]], title: str) -> None:
    modes = [m for ms in MODES.values() for m in ms]
    print(f"\n{title}: min (median) ms; ratio = fungrad's faster mode / jax.jit (min)")
    print(f"{'case':<22}" + "".join(f"{m:>20}" for m in modes) + f"{'ratio':>8}")
    for case, row in results.items():
        cells = "".join(f"{row[m][0]:>10.2f} ({row[m][1]:>6.2f})" if m in row else f"{'-':>20}"
                        for m in modes)
        ratio = min(row["fungrad"][0], row["fungrad.jit"][0]) / row["jax.jit"][0]
        print(f"{case:<22}{cells}{ratio:>8.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case")
    ap.add_argument("--only", choices=sorted(MODES), help="one library alone; prints JSON")
    args = ap.parse_args()
    if args.only:
        print(json.dumps(measure([args.only], args.rounds)))
        return
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"load {load_average()}")
    table(measure(list(MODES), args.rounds), "one process")
    alone: dict[str, dict[str, tuple[float, float]]] = {}
    for lib in MODES:
        run = subprocess.run(
            [sys.executable, __file__, "--only", lib, "--rounds", str(args.rounds)],
            capture_output=True, text=True, check=True)
        for case, row in json.loads(run.stdout.strip().splitlines()[-1]).items():
            alone.setdefault(case, {}).update(row)
    table(alone, f"each library alone (load {load_average()})")


if __name__ == "__main__":
    main()
