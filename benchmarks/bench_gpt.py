"""Char-level GPT train step (value_and_grad + AdamW): fungrad.jit vs jax.jit.

The model below is written once against the JAX API and run with ``lib = fungrad``
and ``lib = jax``: n_layer=4, n_head=4, n_embd=128, block 64, batch 16, vocab 65,
float32. Prints the steady-state step time (fungrad and jax timed in alternating
rounds: minimum and median per step), the first call (trace + optimise + compile)
and the ratios; ``--profile`` prints where fungrad's generated step spends its time.
NumPy's matmuls use OpenBLAS threads unless OPENBLAS_NUM_THREADS=1 (jax is not
affected by it); the script prints the setting and the load average.
Run: python benchmarks/bench_gpt.py [--steps 5 --rounds 6] [--profile]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
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


class Trainer:
    """One library's jitted train step and its state, stepping through fixed batches."""

    def __init__(self, lib: Any, optlib: Any) -> None:
        rng = np.random.default_rng(0)
        tree_map = lib.tree_util.tree_map if hasattr(lib, "tree_util") else lib.tree.map
        self.params = tree_map(lib.numpy.asarray, init_params(rng))
        self.step, opt = make_train_step(lib, optlib)
        self.opt_state = opt.init(self.params)
        batch = lambda: lib.numpy.asarray(  # noqa: E731
            rng.integers(0, VOCAB, (BATCH, BLOCK)).astype(np.int32))
        self.data = [(batch(), batch()) for _ in range(4)]
        self.i, self.loss = 0, None

    def __call__(self) -> float:
        x, y = self.data[self.i % 4]
        self.params, self.opt_state, loss = self.step(self.params, self.opt_state, x, y)
        self.i += 1
        self.loss = float(loss)  # waits for the result
        return self.loss

    def first_call(self) -> float:
        t0 = time.perf_counter()
        self()
        return time.perf_counter() - t0


def profile(steps: int) -> None:
    """Per-line timing of fungrad's generated train step (``--profile``)."""
    import fungrad
    from fungrad import optim
    from _timing import profile_executable
    t = Trainer(fungrad, optim)
    leaves = fungrad.tree.leaves((t.params, t.opt_state, *t.data[0]))
    exe = t.step.lower(t.params, t.opt_state, *t.data[0]).compile()._exe
    xy = [leaf._value for leaf in leaves[-2:]]
    first = [leaf._value.copy() for leaf in leaves[:-2]]
    print(profile_executable(exe, lambda outs: (first if outs is None else outs[:-1]) + xy, steps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=5, help="steps per round and library")
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds")
    ap.add_argument("--profile", action="store_true", help="per-line profile of fungrad's step")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))
    from _timing import interleaved, load_average
    if args.profile:
        return profile(args.steps * args.rounds)
    import jax
    import optax
    import fungrad
    from fungrad import optim
    print(f"GPT train step (L={N_LAYER}, H={N_HEAD}, d={N_EMBD}, T={BLOCK}, B={BATCH}), "
          f"jax {jax.__version__}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, load {load_average()}")
    fg, jx = Trainer(fungrad, optim), Trainer(jax, optax)
    fg_first, jx_first = fg.first_call(), jx.first_call()
    times = interleaved({"fungrad": fg, "jax": jx}, args.rounds, args.steps)
    (fg_min, fg_med), (jx_min, jx_med) = times["fungrad"], times["jax"]
    print(f"  steady step min    fungrad {fg_min * 1e3:8.2f} ms   jax.jit {jx_min * 1e3:8.2f} ms   "
          f"ratio {fg_min / jx_min:5.2f}x")
    print(f"  steady step median fungrad {fg_med * 1e3:8.2f} ms   jax.jit {jx_med * 1e3:8.2f} ms   "
          f"ratio {fg_med / jx_med:5.2f}x")
    print(f"  first call         fungrad {fg_first:8.2f} s    jax.jit {jx_first:8.2f} s    "
          f"ratio {fg_first / jx_first:5.2f}x")
    print(f"  loss after {fg.i} steps: fungrad {fg.loss:.4f}  jax {jx.loss:.4f}; "
          f"load {load_average()}")


if __name__ == "__main__":
    main()
