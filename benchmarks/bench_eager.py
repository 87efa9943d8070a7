"""Eager per-op overhead on small arrays: fungrad vs raw NumPy vs JAX eager.

Prints microseconds per call and the overhead above NumPy (target: at most 3 µs
above raw NumPy per eager op). Run: python benchmarks/bench_eager.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us, load_average, row  # noqa: E402

import fungrad.numpy as fnp  # noqa: E402


def main() -> None:
    import jax
    import jax.numpy as jnp
    a = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    b = a + 1
    fa, fb = fnp.asarray(a), fnp.asarray(b)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    block = lambda x: x.block_until_ready()
    cases = {
        "add (x + y)": (lambda: a + b, lambda: fa + fb, lambda: ja + jb),
        "mul by scalar (x * 2.0)": (lambda: a * 2.0, lambda: fa * 2.0, lambda: ja * 2.0),
        "sin": (lambda: np.sin(a), lambda: fnp.sin(fa), lambda: jnp.sin(ja)),
        "sum": (lambda: a.sum(), lambda: fnp.sum(fa), lambda: jnp.sum(ja)),
        "matmul": (lambda: a @ b, lambda: fa @ fb, lambda: ja @ jb),
        "reshape": (lambda: a.reshape(256), lambda: fnp.reshape(fa, (256,)),
                    lambda: jnp.reshape(ja, (256,))),
    }
    print(f"eager per-op time on (16,16) float32, µs (jax {jax.__version__}, "
          f"load {load_average()})")
    for name, (np_fn, fg_fn, jax_fn) in cases.items():
        # many short rounds: the minimum skips the rounds other processes interrupted
        t_np = best_us(np_fn, 500, repeat=40)
        t_fg = best_us(fg_fn, 500, repeat=40)
        t_jax = best_us(jax_fn, 200, repeat=40, sync=block)
        print(row(name, numpy=t_np, fungrad=t_fg, jax=t_jax, over_numpy=t_fg - t_np,
                  jax_over_fg=t_jax / t_fg))


if __name__ == "__main__":
    main()
