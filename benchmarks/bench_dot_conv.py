"""Contractions, convolutions and pooling: fungrad (eager) vs JAX eager (op by op dispatch)
vs JAX jit, on CPU.

Cases: matmuls of several sizes, a batched matmul, a dot_general whose batch and
contracting dimensions need transposes, 2-D convolutions (NCHW and NHWC, strided,
depthwise), the input and kernel gradients of a convolution, max pooling and its
gradient. Prints best-of-N microseconds and the ratio fungrad / jax (below 1 is
faster than jax).
Run: python benchmarks/bench_dot_conv.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us  # noqa: E402

import fungrad  # noqa: E402
from fungrad import lax  # noqa: E402


def _cases(rng):
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    mm = (((1,), (0,)), ((), ()))
    bmm = (((2,), (1,)), ((0,), (0,)))
    odd = (((0, 3), (2, 0)), ((1,), (1,)))
    nchw = dict(window_strides=(1, 1), padding="SAME")
    nhwc = dict(window_strides=(2, 2), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    dw = dict(window_strides=(1, 1), padding="SAME", feature_group_count=64)
    pool = lambda L: lambda x: L.reduce_window(x, -np.inf, L.max, (1, 1, 2, 2), (1, 1, 2, 2),
                                               "VALID")
    matmul = lambda L, A: lambda a, b: L.dot_general(a, b, mm)

    def conv_grads(L, api, **kw):
        def f(x, w):
            y, pullback = api.vjp(lambda a, b: L.conv_general_dilated(a, b, **kw), x, w)
            return pullback(y)
        return f

    def pool_grad(L, api):
        def f(x):
            y, pullback = api.vjp(pool(L), x)
            return pullback(y)[0]
        return f

    # name -> (function of (lax module, transformation api), arguments)
    return {
        "matmul 64": (matmul, (f32(64, 64), f32(64, 64))),
        "matmul 256": (matmul, (f32(256, 256), f32(256, 256))),
        "matmul 1024": (matmul, (f32(1024, 1024), f32(1024, 1024))),
        "matvec 1024": (matmul, (f32(1024, 1024), f32(1024))),
        "batch matmul 16x128x64": (lambda L, A: lambda a, b: L.dot_general(a, b, bmm),
                                   (f32(16, 128, 64), f32(16, 64, 128))),
        "dot_general transposed": (lambda L, A: lambda a, b: L.dot_general(a, b, odd),
                                   (f32(32, 8, 16, 24), f32(24, 8, 32, 40))),
        "conv 8x3x32x32 k3 NCHW": (lambda L, A: lambda x, w: L.conv_general_dilated(x, w, **nchw),
                                   (f32(8, 3, 32, 32), f32(16, 3, 3, 3))),
        "conv 8x64x32x32 k3 NCHW": (lambda L, A: lambda x, w: L.conv_general_dilated(x, w, **nchw),
                                    (f32(8, 64, 32, 32), f32(64, 64, 3, 3))),
        "conv NHWC stride 2": (lambda L, A: lambda x, w: L.conv_general_dilated(x, w, **nhwc),
                               (f32(8, 32, 32, 32), f32(3, 3, 32, 64))),
        "conv depthwise 64ch": (lambda L, A: lambda x, w: L.conv_general_dilated(x, w, **dw),
                                (f32(8, 64, 32, 32), f32(64, 1, 3, 3))),
        "conv vjp (dx, dw)": (lambda L, A: conv_grads(L, A, **nchw),
                              (f32(8, 32, 32, 32), f32(32, 32, 3, 3))),
        "max pool 2x2": (lambda L, A: pool(L), (f32(8, 64, 32, 32),)),
        "max pool vjp": (lambda L, A: pool_grad(L, A), (f32(8, 64, 32, 32),)),
    }


def main() -> None:
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    sync = lambda out: jax.block_until_ready(out)
    print(f"{'case':<26}{'fungrad us':>14}{'jax eager us':>15}{'jax jit us':>13}"
          f"{'fg/eager':>10}{'fg/jit':>9}")
    for name, (make, args) in _cases(rng).items():
        fg_args = [fungrad.numpy.asarray(a) for a in args]
        jx_args = [jnp.asarray(a) for a in args]
        fg_fn, jx_fn = make(lax, fungrad), make(jax.lax, jax)
        jit_fn = jax.jit(jx_fn)
        number = 3 if "1024" in name or "vjp" in name or "64x32" in name else 20
        t_fg = best_us(lambda: fg_fn(*fg_args), number=number)
        t_jx = best_us(lambda: jx_fn(*jx_args), number=number, sync=sync)
        t_jit = best_us(lambda: jit_fn(*jx_args), number=number, sync=sync)
        print(f"{name:<26}{t_fg:>14.1f}{t_jx:>15.1f}{t_jit:>13.1f}"
              f"{t_fg / t_jx:>10.2f}{t_fg / t_jit:>9.2f}")


if __name__ == "__main__":
    main()
