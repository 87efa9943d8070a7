"""The cost of JAX's signed zeros in ``lax.max``, ``lax.min`` and ``lax.sign``.

For each case: the plain NumPy ufunc (what the impl was before signed zeros were handled),
fungrad eager and under ``fungrad.jit``, and ``jax.jit``, in microseconds per call on
float32 arrays, with the ratio of fungrad's eager and jit times to the plain ufunc.
``max(x, 0)`` (``relu``) orders its operands and costs nothing more; ``max(x, y)`` of two
arrays and ``sign`` add one ``== 0`` pass over the result (and a fix where it finds zeros).
Run: python benchmarks/bench_signed_zeros.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us, load_average, row  # noqa: E402

import fungrad  # noqa: E402
from fungrad import lax  # noqa: E402


def main() -> None:
    import jax
    rng = np.random.default_rng(0)
    print(f"load average {load_average()}")
    for n in (1_000, 1_000_000):
        x = rng.standard_normal(n).astype(np.float32)
        y = rng.standard_normal(n).astype(np.float32)
        fx, fy = fungrad.numpy.asarray(x), fungrad.numpy.asarray(y)
        jx, jy = jax.numpy.asarray(x), jax.numpy.asarray(y)
        number = 2000 if n < 10_000 else 20
        cases = [
            ("max(x, 0)", lambda: np.maximum(x, 0), lambda: lax.max(fx, 0.0),
             fungrad.jit(lambda a: lax.max(a, 0.0)), jax.jit(lambda a: jax.lax.max(a, 0.0)), 1),
            ("max(x, y)", lambda: np.maximum(x, y), lambda: lax.max(fx, fy),
             fungrad.jit(lax.max), jax.jit(jax.lax.max), 2),
            ("min(x, y)", lambda: np.minimum(x, y), lambda: lax.min(fx, fy),
             fungrad.jit(lax.min), jax.jit(jax.lax.min), 2),
            ("sign(x)", lambda: np.sign(x), lambda: lax.sign(fx),
             fungrad.jit(lax.sign), jax.jit(jax.lax.sign), 1),
        ]
        for name, plain, eager, fg_jit, jax_jit, arity in cases:
            fargs, jargs = (fx, fy)[:arity], (jx, jy)[:arity]
            t_np = best_us(plain, number)
            t_eager = best_us(eager, number)
            t_jit = best_us(lambda: fg_jit(*fargs), number)
            t_jax = best_us(lambda: jax_jit(*jargs).block_until_ready(), number)
            print(row(f"{name} n={n}", numpy_us=t_np, eager_us=t_eager, jit_us=t_jit,
                      jax_us=t_jax, eager_x=t_eager / t_np, jit_x=t_jit / t_np))


if __name__ == "__main__":
    main()
