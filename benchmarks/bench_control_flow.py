"""Control flow: fungrad (eager and jit) against ``jax.jit`` (µs per call, and ratios).

Benchmarks:
  rnn_forward   tanh RNN as a ``lax.scan`` (batch 16, hidden 128, 64 steps)
  rnn_grad      value_and_grad of the RNN's loss (a reverse scan over residuals)
  while_newton  Newton iterations for sqrt on 4096 values until converged (a while_loop)
  cond_in_scan  a scan whose body branches with ``lax.cond`` (64 steps, small arrays)

Run: python benchmarks/bench_control_flow.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us, row  # noqa: E402

import jax  # noqa: E402
import jax.lax as jl  # noqa: E402

import fungrad  # noqa: E402
from fungrad import lax  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 3 if args.quick else 20
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    u = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    xs = rng.standard_normal((T, B, H)).astype(np.float32)
    h0 = np.zeros((B, H), np.float32)
    a = rng.uniform(1, 100, 4096).astype(np.float32)
    cx = rng.standard_normal(T).astype(np.float32)
    fg = lambda v: fungrad.numpy.asarray(v)  # noqa: E731
    sync = lambda out: jax.tree_util.tree_map(  # noqa: E731
        lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, out)
    cases = {
        "rnn_forward": (rnn_loss, (w, u, xs, h0), False),
        "rnn_grad": (rnn_loss, (w, u, xs, h0), True),
        "while_newton": (newton_sqrt, (a,), False),
        "cond_in_scan": (cond_in_scan, (cx,), False),
    }
    print(f"fungrad eager / fungrad.jit / jax.jit, µs per call (best of 5 x {n})")
    for name, (builder, inputs, grad) in cases.items():
        f_fg, f_jx = builder(lax), builder(jl)
        if grad:
            f_fg = fungrad.value_and_grad(f_fg, (0, 1))
            f_jx = jax.value_and_grad(f_jx, (0, 1))
        fg_in, jx_in = [fg(x) for x in inputs], [jax.numpy.asarray(x) for x in inputs]
        jitted, jx = fungrad.jit(f_fg), jax.jit(f_jx)
        eager_us = best_us(lambda: f_fg(*fg_in), number=max(1, n // 4))
        jit_us = best_us(lambda: jitted(*fg_in), number=n)
        jax_us = best_us(lambda: jx(*jx_in), number=n, sync=sync)
        print(row(name, eager=eager_us, jit=jit_us, jax=jax_us,
                  jit_vs_jax=jit_us / jax_us, eager_vs_jit=eager_us / jit_us))


if __name__ == "__main__":
    main()
