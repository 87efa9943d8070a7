"""Eager reverse mode: fungrad vs JAX, both without jit, in the same run.

* grad of an MLP loss (3 layers);
* grad of a small GPT block (causal self-attention + MLP, layer norms, written with
  fungrad.numpy / jax.numpy);
* per-example gradients: ``vmap(grad(loss))`` vs a Python loop of ``grad`` calls;
* grad of the MLP with every layer under ``checkpoint`` (the price of recomputation).

Prints microseconds per call and ratios (fungrad / jax; loop / vmap). NumPy's BLAS is
pinned to one thread unless OPENBLAS_NUM_THREADS is set: these matmuls are small, and
a thread pool only adds contention (it makes them ~100x slower on a busy 2-core machine).
Run: python benchmarks/bench_grad.py [--quick]
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us, row  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as fnp  # noqa: E402


def mlp_loss(np_, nn, params, x, y):
    h = x
    for W, b in params[:-1]:
        h = nn.gelu(h @ W + b)
    W, b = params[-1]
    return np_.mean((h @ W + b - y) ** 2)


def layer_norm(np_, x, g, b):
    mu = np_.mean(x, axis=-1, keepdims=True)
    var = np_.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np_.sqrt(var + 1e-5) * g + b


def gpt_block_loss(np_, nn, p, x):
    """One pre-norm transformer block on (T, D) tokens with H heads; loss = mean square."""
    T, D = x.shape
    H = 4
    h = layer_norm(np_, x, p["ln1_g"], p["ln1_b"])
    qkv = h @ p["w_qkv"]
    q, k, v = (qkv[:, i * D:(i + 1) * D].reshape(T, H, D // H).transpose(1, 0, 2) for i in range(3))
    scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(D // H))
    mask = np_.tril(np_.ones((T, T), dtype=bool))
    att = nn.softmax(np_.where(mask, scores, -1e9), axis=-1)
    x = x + (att @ v).transpose(1, 0, 2).reshape(T, D) @ p["w_proj"]
    h = layer_norm(np_, x, p["ln2_g"], p["ln2_b"])
    x = x + nn.gelu(h @ p["w_fc"]) @ p["w_out"]
    return np_.mean(x ** 2)


def make_mlp(rng, sizes):
    return [(rng.normal(0, n ** -0.5, (n, m)).astype(np.float32), np.zeros(m, np.float32))
            for n, m in zip(sizes[:-1], sizes[1:])]


def make_gpt(rng, D):
    w = lambda *s: rng.normal(0, 0.02, s).astype(np.float32)  # noqa: E731
    return {"ln1_g": np.ones(D, np.float32), "ln1_b": np.zeros(D, np.float32),
            "ln2_g": np.ones(D, np.float32), "ln2_b": np.zeros(D, np.float32),
            "w_qkv": w(D, 3 * D), "w_proj": w(D, D), "w_fc": w(D, 4 * D), "w_out": w(4 * D, D)}


def main(quick: bool = False) -> None:
    import jax
    import jax.numpy as jnp
    n = 5 if quick else 30
    rng = np.random.default_rng(0)
    fg_tree = lambda t: fungrad.tree.map(fnp.asarray, t)  # noqa: E731
    jx_tree = lambda t: jax.tree_util.tree_map(jnp.asarray, t)  # noqa: E731
    sync = lambda out: jax.block_until_ready(out)  # noqa: E731
    print(f"eager reverse mode, no jit, µs per call (jax {jax.__version__}, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}); ratio = fungrad/jax")

    # grad of an MLP
    for batch, sizes in [(32, [64, 128, 128, 10]), (256, [256, 512, 512, 10])]:
        params, x = make_mlp(rng, sizes), rng.normal(size=(batch, sizes[0])).astype(np.float32)
        y = rng.normal(size=(batch, sizes[-1])).astype(np.float32)
        fg_args, jx_args = fg_tree((params, x, y)), jx_tree((params, x, y))
        g_fg = fungrad.grad(lambda p, x, y: mlp_loss(fnp, fungrad.nn, p, x, y))
        g_jx = jax.grad(lambda p, x, y: mlp_loss(jnp, jax.nn, p, x, y))
        t_fg = best_us(lambda: g_fg(*fg_args), n)
        t_jx = best_us(lambda: g_jx(*jx_args), n, sync=sync)
        print(row(f"grad MLP b={batch} {sizes}", fungrad=t_fg, jax=t_jx, ratio=t_fg / t_jx))
        block = fungrad.checkpoint(lambda h, W, b: fungrad.nn.gelu(h @ W + b))

        def ck_loss(p, x, y):
            h = x
            for W, b in p[:-1]:
                h = block(h, W, b)
            W, b = p[-1]
            return fnp.mean((h @ W + b - y) ** 2)
        g_ck = fungrad.grad(ck_loss)
        t_ck = best_us(lambda: g_ck(*fg_args), n)
        print(row("  same, layers checkpointed", fungrad=t_ck, plain=t_fg, ratio=t_ck / t_fg))

    # grad of a GPT block
    for T, D in [(16, 64), (64, 128)]:
        p, x = make_gpt(rng, D), rng.normal(size=(T, D)).astype(np.float32)
        g_fg = fungrad.grad(lambda p, x: gpt_block_loss(fnp, fungrad.nn, p, x))
        g_jx = jax.grad(lambda p, x: gpt_block_loss(jnp, jax.nn, p, x))
        fg_args, jx_args = fg_tree((p, x)), jx_tree((p, x))
        t_fg = best_us(lambda: g_fg(*fg_args), n)
        t_jx = best_us(lambda: g_jx(*jx_args), n, sync=sync)
        print(row(f"grad GPT block T={T} D={D}", fungrad=t_fg, jax=t_jx, ratio=t_fg / t_jx))

    # per-example gradients
    for batch in (8, 64):
        params = make_mlp(rng, [32, 64, 10])
        xs = rng.normal(size=(batch, 32)).astype(np.float32)
        ys = rng.normal(size=(batch, 10)).astype(np.float32)
        fg_args, jx_args = fg_tree((params, xs, ys)), jx_tree((params, xs, ys))
        per_ex = lambda np_, nn: lambda p, x, y: mlp_loss(np_, nn, p, x[None], y[None])  # noqa
        g_fg = fungrad.grad(per_ex(fnp, fungrad.nn))
        vg_fg = fungrad.vmap(g_fg, in_axes=(None, 0, 0))
        vg_jx = jax.vmap(jax.grad(per_ex(jnp, jax.nn)), in_axes=(None, 0, 0))
        t_vmap = best_us(lambda: vg_fg(*fg_args), n)
        t_loop = best_us(lambda: [g_fg(fg_args[0], fg_args[1][i], fg_args[2][i])
                                  for i in range(batch)], max(1, n // 5))
        t_jx = best_us(lambda: vg_jx(*jx_args), n, sync=sync)
        print(row(f"per-example grads b={batch}", vmap=t_vmap, loop=t_loop,
                  loop_over_vmap=t_loop / t_vmap, jax_vmap=t_jx, ratio=t_vmap / t_jx))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
