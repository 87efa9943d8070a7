"""Special functions on large arrays: fungrad (NumPy, float64 inside) vs JAX (XLA CPU).

Prints milliseconds per call on 1M float32 elements, the ratio to JAX, and the cost
in units of one NumPy float64 multiply of the same size (a load-independent figure).
Run: python benchmarks/bench_elementwise_special.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us, row  # noqa: E402

from fungrad import lax  # noqa: E402


def main() -> None:
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    n = 1_000_000
    inputs = {"wide": rng.uniform(-4, 4, n).astype(np.float32),
              "unit": rng.uniform(-0.999, 0.999, n).astype(np.float32),
              "positive": rng.uniform(0.01, 20, n).astype(np.float32)}
    cases = [("exp", "wide"), ("logistic", "wide"), ("erf", "wide"), ("erfc", "wide"),
             ("erf_inv", "unit"), ("lgamma", "positive"), ("lgamma", "wide"),
             ("digamma", "positive")]
    x64 = inputs["wide"].astype(np.float64)
    print(f"1M float32 elements, ms per call (jax {jax.__version__})")
    for name, domain in cases:
        x = inputs[domain]
        jx = jnp.asarray(x)
        fg_fn, jax_fn = getattr(lax, name), jax.jit(getattr(jax.lax, name))
        t_fg = best_us(lambda: fg_fn(x), number=3, repeat=3) / 1e3
        t_jax = best_us(lambda: jax_fn(jx), number=3, repeat=3,
                        sync=lambda out: out.block_until_ready()) / 1e3
        t_mul = best_us(lambda: x64 * x64, number=10, repeat=3) / 1e3
        print(row(f"{name} ({domain})", fungrad_ms=t_fg, jax_ms=t_jax, fg_over_jax=t_fg / t_jax,
                  f64_multiplies=t_fg / t_mul))


if __name__ == "__main__":
    main()
