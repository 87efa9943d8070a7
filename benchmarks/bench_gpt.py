"""Char-level GPT train step (value_and_grad + AdamW): fungrad.jit vs jax.jit.

Two models, each written once against the JAX API and run with ``lib = fungrad`` and
``lib = jax``; both n_layer=4, n_head=4, n_embd=128, block 64, batch 16, vocab 65, float32:

* ``plain``: no biases, layer norms with a scale only, ``(B, T, C)`` activations;
* ``biased``: a bias on every linear layer and layer norm (as GPT-2), activations kept as
  ``(B*T, C)`` matrices between the attention's head reshapes.

Each library runs in a process of its own (``--worker``), driven in alternating rounds; the
script prints the steady-state step time per library (minimum and median, wall clock and the
process's CPU time, which a machine busy with other work inflates less), the first call
(trace + optimise + compile) and the ratios; ``--profile`` prints where fungrad's generated
step spends its time. NumPy's matmuls use OpenBLAS threads unless OPENBLAS_NUM_THREADS=1
(jax is not affected by it); the script prints the setting and the load average.
Run: python benchmarks/bench_gpt.py [--model plain biased] [--steps 5 --rounds 6] [--profile]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Worker, interleaved_workers, load_average, serve, time_calls  # noqa: E402

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH, VOCAB = 4, 4, 128, 64, 16, 65
MODELS = ("plain", "biased")


def init_params(rng: np.random.Generator, biased: bool) -> dict:
    normal = lambda *shape: (0.02 * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    d = N_EMBD
    bias = lambda n: (0.02 * rng.standard_normal(n)).astype(np.float32)  # noqa: E731

    def block() -> dict:
        p = {"ln1": np.ones(d, np.float32), "ln2": np.ones(d, np.float32),
             "w_qkv": normal(d, 3 * d), "w_out": normal(d, d),
             "w_in": normal(d, 4 * d), "w_mlp": normal(4 * d, d)}
        if biased:
            p.update(ln1_b=bias(d), ln2_b=bias(d), b_qkv=bias(3 * d), b_out=bias(d),
                     b_in=bias(4 * d), b_mlp=bias(d))
        return p
    params = {"wte": normal(VOCAB, d), "wpe": normal(BLOCK, d), "ln_f": np.ones(d, np.float32),
              "blocks": [block() for _ in range(N_LAYER)]}
    if biased:
        params["ln_f_b"] = bias(d)
    return params


def make_loss(lib: Any, biased: bool) -> Callable:
    """The model's loss ``(params, x, y) -> scalar`` written with ``lib``'s API."""
    jnp, nn = lib.numpy, lib.nn

    def layer_norm(p, name, x):
        mean = jnp.mean(x, -1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
        y = (x - mean) * lib.lax.rsqrt(var + 1e-5) * p[name]
        return y + p[name + "_b"] if biased else y

    def linear(p, w, b, x):
        return x @ p[w] + p[b] if biased else x @ p[w]

    def attention(p, x, B, T):
        C = x.shape[-1]
        q, k, v = jnp.split(linear(p, "w_qkv", "b_qkv", x), 3, axis=-1)
        heads = lambda t: jnp.transpose(jnp.reshape(t, (B, T, N_HEAD, C // N_HEAD)), (0, 2, 1, 3))
        q, k, v = heads(q), heads(k), heads(v)
        scores = (q @ jnp.swapaxes(k, -1, -2)) / math.sqrt(C // N_HEAD)
        scores = jnp.where(jnp.tril(jnp.ones((T, T), dtype=bool)), scores, -1e9)
        y = jnp.transpose(nn.softmax(scores, axis=-1) @ v, (0, 2, 1, 3))
        return linear(p, "w_out", "b_out", jnp.reshape(y, x.shape))

    def loss_fn(params, x, y):
        B, T = x.shape
        h = params["wte"][x] + params["wpe"][:T]
        if biased:  # (B*T, C) matrices from here on
            h, y = jnp.reshape(h, (B * T, N_EMBD)), jnp.reshape(y, (B * T,))
        for p in params["blocks"]:
            h = h + attention(p, layer_norm(p, "ln1", h), B, T)
            hidden = nn.gelu(linear(p, "w_in", "b_in", layer_norm(p, "ln2", h)))
            h = h + linear(p, "w_mlp", "b_mlp", hidden)
        logits = layer_norm(params, "ln_f", h) @ params["wte"].T
        logp = nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))
    return loss_fn


def make_train_step(lib: Any, optlib: Any, biased: bool):
    loss_fn = make_loss(lib, biased)
    opt = optlib.adamw(1e-3, weight_decay=0.1)

    def step(params, opt_state, x, y):
        loss, grads = lib.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optlib.apply_updates(params, updates), opt_state, loss
    return lib.jit(step, donate_argnums=(0, 1)), opt


class Trainer:
    """One library's jitted train step and its state, stepping through fixed batches."""

    def __init__(self, lib: Any, optlib: Any, biased: bool) -> None:
        rng = np.random.default_rng(0)
        tree_map = lib.tree_util.tree_map if hasattr(lib, "tree_util") else lib.tree.map
        self.params = tree_map(lib.numpy.asarray, init_params(rng, biased))
        self.step, opt = make_train_step(lib, optlib, biased)
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


def libraries(name: str) -> tuple[Any, Any]:
    """The library and its optimiser module: ``fungrad`` and ``fungrad.optim``, or jax and optax."""
    if name == "fungrad":
        import fungrad
        from fungrad import optim
        return fungrad, optim
    import jax
    import optax
    return jax, optax


def worker(lib_name: str, model: str) -> None:
    """Serve a ``Worker``: ``first`` (the first call's seconds), ``run`` (timed steps)."""
    trainer = Trainer(*libraries(lib_name), model == "biased")

    def handle(request: dict) -> dict:
        if request["op"] == "first":
            return {"seconds": trainer.first_call()}
        return {**time_calls(trainer, request["number"]), "loss": trainer.loss, "steps": trainer.i}
    serve(handle)


def profile(model: str, steps: int) -> None:
    """Per-line timing of fungrad's generated train step (``--profile``)."""
    from _timing import profile_executable
    import fungrad
    t = Trainer(*libraries("fungrad"), model == "biased")
    leaves = fungrad.tree.leaves((t.params, t.opt_state, *t.data[0]))
    exe = t.step.lower(t.params, t.opt_state, *t.data[0]).compile()._exe
    xy = [leaf._value for leaf in leaves[-2:]]
    first = [leaf._value.copy() for leaf in leaves[:-2]]
    print(profile_executable(exe, lambda outs: (first if outs is None else outs[:-1]) + xy, steps))


def compare(model: str, rounds: int, steps: int) -> None:
    """Time the two libraries' steps of ``model`` in processes of their own, alternately."""
    names = ("fungrad", "jax")
    workers = {n: Worker([sys.executable, __file__, "--worker", n, "--model", model])
               for n in names}
    try:
        first = {n: w.ask(op="first")["seconds"] for n, w in workers.items()}
        times = interleaved_workers(workers, rounds, steps)
        losses = {n: w.ask(op="run", number=1) for n, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    layout = "biases, (B*T, C) activations" if model == "biased" else "no biases, (B, T, C)"
    print(f"{model} model: {layout}")
    for kind, label in (("wall", "wall"), ("cpu", "CPU ")):
        for k, stat in enumerate(("min", "median")):
            fg, jx = times["fungrad"][kind][k], times["jax"][kind][k]
            print(f"  steady step {label} {stat:<6} fungrad {fg * 1e3:8.2f} ms   "
                  f"jax.jit {jx * 1e3:8.2f} ms   ratio {fg / jx:5.2f}x")
    print(f"  first call              fungrad {first['fungrad']:8.2f} s    "
          f"jax.jit {first['jax']:8.2f} s    ratio {first['fungrad'] / first['jax']:5.2f}x")
    print(f"  loss after {losses['fungrad']['steps']} steps: "
          f"fungrad {losses['fungrad']['loss']:.4f}  "
          f"jax {losses['jax']['loss']:.4f}; load {load_average()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--steps", type=int, default=5, help="steps per round and library")
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds")
    ap.add_argument("--profile", action="store_true", help="per-line profile of fungrad's step")
    ap.add_argument("--worker", choices=("fungrad", "jax"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.model[0])
    if args.profile:
        for model in args.model:
            print(f"{model} model:")
            profile(model, args.steps * args.rounds)
        return
    import jax
    print(f"GPT train step (L={N_LAYER}, H={N_HEAD}, d={N_EMBD}, T={BLOCK}, B={BATCH}), "
          f"jax {jax.__version__}, each library in its own process, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, load {load_average()}")
    for model in args.model:
        compare(model, args.rounds, args.steps)


if __name__ == "__main__":
    main()
