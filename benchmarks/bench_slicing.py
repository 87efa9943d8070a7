"""Indexing primitives on model-sized arrays: fungrad (eager) vs JAX (``jax.jit``) vs
the plain NumPy expression doing the same work.

Cases: an embedding lookup (gather), its gradient (scatter-add with duplicate
ids), a KV-cache write (dynamic_update_slice), a dynamic_slice, and a
point-wise scatter-max. Prints best-of-5 milliseconds and the ratios.
Run: python benchmarks/bench_slicing.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us  # noqa: E402

import fungrad  # noqa: E402
from fungrad import lax  # noqa: E402


def main() -> None:
    import jax
    rng = np.random.default_rng(0)
    V, D, B, T = 50_000, 512, 8, 512
    table = rng.standard_normal((V, D)).astype(np.float32)
    ids = rng.integers(0, V, (B, T, 1)).astype(np.int32)
    ids[:, :64] = 7  # a padding id repeated many times
    rows = rng.standard_normal((B, T, D)).astype(np.float32)
    cache = np.zeros((B, 2048, 8, 64), np.float32)
    step = rng.standard_normal((B, 1, 8, 64)).astype(np.float32)
    points = rng.integers(0, 4096, (200_000, 1)).astype(np.int32)
    vals = rng.standard_normal(200_000).astype(np.float32)

    emb, grad, point = ((2,), (0,), (0,)), ((2,), (0,), (0,)), ((), (0,), (0,))
    zeros, zeros1 = np.zeros((V, D), np.float32), np.zeros(4096, np.float32)
    # name -> (function of a lax module, arguments); arrays are arguments, never constants
    cases = {
        "embedding gather": (lambda L: lambda t, i: L.gather(
            t, i, L.GatherDimensionNumbers(*emb), (1, D)), (table, ids)),
        "embedding grad scatter_add": (lambda L: lambda z, i, r: L.scatter_add(
            z, i, r, L.ScatterDimensionNumbers(*grad)), (zeros, ids, rows)),
        "kv-cache update_slice": (lambda L: lambda c, s, t: L.dynamic_update_slice(
            c, s, (0, t, 0, 0)), (cache, step, np.int32(1000))),
        "dynamic_slice": (lambda L: lambda c, t: L.dynamic_slice(
            c, (0, t, 0, 0), (B, 256, 8, 64)), (cache, np.int32(1000))),
        "point scatter_max": (lambda L: lambda z, p, v: L.scatter_max(
            z, p, v, L.ScatterDimensionNumbers(*point)), (zeros1, points, vals)),
    }
    numpy_refs = {
        "embedding gather": lambda: table[ids[..., 0]],
        "embedding grad scatter_add": lambda: np.add.at(zeros.copy(), ids[..., 0], rows),
        "kv-cache update_slice": lambda: _copy_set(cache, step),
        "dynamic_slice": lambda: cache[:, 1000:1256].copy(),
        "point scatter_max": lambda: np.maximum.at(zeros1.copy(), points[:, 0], vals),
    }
    ms = lambda fn: best_us(fn, number=1, repeat=5, sync=lambda o: getattr(
        o, "block_until_ready", lambda: o)()) / 1e3  # noqa: E731
    print("best of 5, milliseconds (jax: jit, buffers not donated; numpy: the same work by hand)")
    print(f"{'':<30}{'fungrad':>10}{'jax':>10}{'numpy':>10}{'fg/jax':>9}{'fg/numpy':>10}")
    for name, (fn, args) in cases.items():
        fg_args = [fungrad.numpy.asarray(a) for a in args]
        jx_args = [jax.numpy.asarray(a) for a in args]
        fg_fn, jx_fn = fn(lax), jax.jit(fn(jax.lax))
        t_fg = ms(lambda: fg_fn(*fg_args))
        t_jax = ms(lambda: jx_fn(*jx_args))
        t_np = ms(numpy_refs[name])
        print(f"{name:<30}{t_fg:10.2f}{t_jax:10.2f}{t_np:10.2f}"
              f"{t_fg / t_jax:9.2f}{t_fg / t_np:10.2f}")


def _copy_set(cache: np.ndarray, step: np.ndarray) -> np.ndarray:
    out = cache.copy()
    out[:, 1000:1001] = step
    return out


if __name__ == "__main__":
    main()
