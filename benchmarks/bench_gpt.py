"""Char-level GPT train step (value_and_grad + AdamW): fungrad.jit vs jax.jit.

The model below is written once against the JAX API and run with ``lib = fungrad``
and ``lib = jax``: n_layer=4, n_head=4, n_embd=128, block 64, batch 16, vocab 65,
float32. Prints the steady-state step time, the first call (trace + optimise +
compile) and the ratios. Run: python benchmarks/bench_gpt.py [--steps 20]
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH, VOCAB = 4, 4, 128, 64, 16, 65


def init_params(rng: np.random.Generator) -> dict:
    normal = lambda *shape: (0.02 * rng.standard_normal(shape)).astype(np.float32)
    d = N_EMBD
    block = lambda: {"ln1": np.ones(d, np.float32), "ln2": np.ones(d, np.float32),
                     "w_qkv": normal(d, 3 * d), "w_out": normal(d, d),
                     "w_in": normal(d, 4 * d), "w_mlp": normal(4 * d, d)}
    return {"wte": normal(VOCAB, d), "wpe": normal(BLOCK, d), "ln_f": np.ones(d, np.float32),
            "blocks": [block() for _ in range(N_LAYER)]}


def make_train_step(lib: Any, optlib: Any):
    jnp, nn = lib.numpy, lib.nn

    def layer_norm(scale, x):
        mean = jnp.mean(x, -1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
        return (x - mean) * lib.lax.rsqrt(var + 1e-5) * scale

    def attention(p, x):
        B, T, C = x.shape
        q, k, v = jnp.split(x @ p["w_qkv"], 3, axis=-1)
        heads = lambda t: jnp.transpose(jnp.reshape(t, (B, T, N_HEAD, C // N_HEAD)), (0, 2, 1, 3))
        q, k, v = heads(q), heads(k), heads(v)
        scores = (q @ jnp.swapaxes(k, -1, -2)) / math.sqrt(C // N_HEAD)
        scores = jnp.where(jnp.tril(jnp.ones((T, T), dtype=bool)), scores, -1e9)
        y = jnp.transpose(nn.softmax(scores, axis=-1) @ v, (0, 2, 1, 3))
        return jnp.reshape(y, (B, T, C)) @ p["w_out"]

    def loss_fn(params, x, y):
        h = params["wte"][x] + params["wpe"][: x.shape[1]]
        for p in params["blocks"]:
            h = h + attention(p, layer_norm(p["ln1"], h))
            h = h + nn.gelu(layer_norm(p["ln2"], h) @ p["w_in"]) @ p["w_mlp"]
        logits = layer_norm(params["ln_f"], h) @ params["wte"].T
        logp = nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))

    opt = optlib.adamw(1e-3, weight_decay=0.1)

    def step(params, opt_state, x, y):
        loss, grads = lib.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optlib.apply_updates(params, updates), opt_state, loss
    return lib.jit(step, donate_argnums=(0, 1)), opt


def run(lib: Any, optlib: Any, steps: int) -> tuple[float, float, float]:
    """(first call seconds, steady-state ms per step, final loss)."""
    rng = np.random.default_rng(0)
    params = lib.tree_util.tree_map(lib.numpy.asarray, init_params(rng)) if hasattr(lib, "tree_util") \
        else lib.tree.map(lib.numpy.asarray, init_params(rng))
    step, opt = make_train_step(lib, optlib)
    opt_state = opt.init(params)
    data = [(lib.numpy.asarray(rng.integers(0, VOCAB, (BATCH, BLOCK)).astype(np.int32)),
             lib.numpy.asarray(rng.integers(0, VOCAB, (BATCH, BLOCK)).astype(np.int32))) for _ in range(4)]
    t0 = time.perf_counter()
    params, opt_state, loss = step(params, opt_state, *data[0])
    float(loss)
    first = time.perf_counter() - t0
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        params, opt_state, loss = step(params, opt_state, *data[i % 4])
        float(loss)
        times.append(time.perf_counter() - t0)
    return first, 1e3 * float(np.median(times)), float(loss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    import jax
    import optax
    import fungrad
    from fungrad import optim
    fg_first, fg_ms, fg_loss = run(fungrad, optim, args.steps)
    jx_first, jx_ms, jx_loss = run(jax, optax, args.steps)
    print(f"GPT train step (L={N_LAYER}, H={N_HEAD}, d={N_EMBD}, T={BLOCK}, B={BATCH}), jax {jax.__version__}")
    print(f"  steady step   fungrad {fg_ms:8.2f} ms   jax.jit {jx_ms:8.2f} ms   ratio {fg_ms / jx_ms:5.2f}x")
    print(f"  first call    fungrad {fg_first:8.2f} s    jax.jit {jx_first:8.2f} s    ratio {fg_first / jx_first:5.2f}x")
    print(f"  loss after {args.steps + 1} steps: fungrad {fg_loss:.4f}  jax {jx_loss:.4f}")


if __name__ == "__main__":
    main()
