"""Generating 10M float32 uniform and normal numbers: fungrad vs JAX vs NumPy's Generator.

fungrad draws eagerly and under ``fungrad.jit`` (the same numbers as JAX's); JAX
under ``jax.jit``; NumPy with ``numpy.random.Generator`` (PCG64, a different
stream). Prints the best-of-5 milliseconds and the ratios of fungrad's faster
mode to JAX and to NumPy. Threefry's 20 rounds run in cache-sized blocks on a
few threads (``fungrad/random/_threefry.py``).
Run: python benchmarks/bench_random.py [size]
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us  # noqa: E402

import fungrad  # noqa: E402
import fungrad.random as fr  # noqa: E402


def main(n: int = 10_000_000) -> None:
    import jax
    shape = (n,)
    fkey, jkey = fr.PRNGKey(0), jax.random.PRNGKey(0)
    gen = np.random.default_rng(0)
    block = lambda x: x.block_until_ready()  # noqa: E731
    cases = {
        "uniform": (lambda k: fr.uniform(k, shape), lambda k: jax.random.uniform(k, shape),
                    lambda: gen.random(n, dtype=np.float32)),
        "normal": (lambda k: fr.normal(k, shape), lambda k: jax.random.normal(k, shape),
                   lambda: gen.standard_normal(n, dtype=np.float32)),
        "bits (uint32)": (lambda k: fr.bits(k, shape), lambda k: jax.random.bits(k, shape),
                          lambda: gen.integers(0, 2 ** 32, n, dtype=np.uint32)),
    }
    print(f"{n:,} draws, best of 5, milliseconds")
    print(f"{'':<16}{'fungrad':>10}{'fg jit':>10}{'jax':>10}{'numpy':>10}"
          f"{'fg/jax':>9}{'fg/numpy':>10}")
    ms = lambda fn, sync=block: best_us(fn, number=1, repeat=5, sync=sync) / 1e3  # noqa: E731
    for name, (fg, jx, npy) in cases.items():
        t_fg = ms(lambda: fg(fkey))
        jitted = fungrad.jit(fg)
        t_jit = ms(lambda: jitted(fkey))
        jx = jax.jit(jx)
        t_jax, t_np = ms(lambda: jx(jkey)), ms(npy, None)
        best = min(t_fg, t_jit)
        print(f"{name:<16}{t_fg:10.1f}{t_jit:10.1f}{t_jax:10.1f}{t_np:10.1f}"
              f"{best / t_jax:9.2f}{best / t_np:10.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
