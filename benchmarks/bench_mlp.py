"""MLP 784-512-512-10 train step with each library's own optimiser: fungrad.optim against optax.

The step is ``value_and_grad`` of a softmax cross-entropy over a batch of 128, then
``opt.update`` and ``apply_updates`` with ``fungrad.optim.adam`` (or ``sgd``) under
``fungrad.jit`` and ``optax.adam`` (or ``sgd``) under ``jax.jit``, params and optimiser state
donated. Each library runs in a process of its own, driven in alternating rounds; the script
prints the minimum and median step time, by wall clock and by the process's CPU time (which a
machine busy with other work inflates less), the ratios and the load average.
``bench_jit.py`` uses the model defined here for its inline-update steps.
Run: python benchmarks/bench_mlp.py [--opt adam sgd] [--steps 20 --rounds 10]
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import Worker, interleaved_workers, load_average, serve, time_calls  # noqa: E402

SIZES = (784, 512, 512, 10)
BATCH = 128
OPTIMIZERS = ("adam", "sgd")


def init_params(seed: int = 0) -> dict:
    """NumPy float32 weights (scaled normal) and zero biases, ``w0, b0, w1, ...``."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, (m, n) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        params[f"w{i}"] = (rng.standard_normal((m, n)) / np.sqrt(m)).astype(np.float32)
        params[f"b{i}"] = np.zeros(n, np.float32)
    return params


def make_loss(lib: Any, nn: Any) -> Callable:
    """The loss ``(params, x, y) -> scalar`` with ``lib``'s numpy (``lib``) and ``nn``."""
    def loss(params, x, y):
        h = x
        for i in range(len(SIZES) - 1):
            h = h @ params[f"w{i}"] + params[f"b{i}"]
            if i < len(SIZES) - 2:
                h = lib.maximum(h, 0.0)
        return -lib.mean(lib.sum(nn.log_softmax(h) * y, axis=-1))
    return loss


def make_data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One batch: float32 inputs and one-hot float32 labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], BATCH)]
    return x, y


class Trainer:
    """One library's jitted step (``lib``: fungrad or jax; ``optlib``: its optimisers)."""

    def __init__(self, lib: Any, optlib: Any, opt_name: str) -> None:
        asarray = lib.numpy.asarray
        self.params = {k: asarray(v) for k, v in init_params().items()}
        self.x, self.y = (asarray(a) for a in make_data())
        opt = optlib.adam(1e-3) if opt_name == "adam" else optlib.sgd(1e-2)
        self.opt_state = opt.init(self.params)
        grad_fn = lib.value_and_grad(make_loss(lib.numpy, lib.nn))

        def step(params, opt_state, x, y):
            loss, grads = grad_fn(params, x, y)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optlib.apply_updates(params, updates), opt_state, loss
        self.step = lib.jit(step, donate_argnums=(0, 1))
        self.loss = None

    def __call__(self) -> float:
        self.params, self.opt_state, loss = self.step(self.params, self.opt_state, self.x, self.y)
        self.loss = float(loss)  # waits for the result
        return self.loss


def worker(lib_name: str, opt_name: str) -> None:
    """Serve a ``Worker``: ``run`` answers timed steps and the latest loss."""
    if lib_name == "fungrad":
        import fungrad as lib
        from fungrad import optim as optlib
    else:
        import jax as lib
        import optax as optlib
    trainer = Trainer(lib, optlib, opt_name)
    trainer()
    serve(lambda request: {**time_calls(trainer, request["number"]), "loss": trainer.loss})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--opt", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS))
    ap.add_argument("--steps", type=int, default=20, help="steps per round and library")
    ap.add_argument("--rounds", type=int, default=10, help="alternating rounds")
    ap.add_argument("--worker", choices=("fungrad", "jax"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.opt[0])
    print(f"MLP {'-'.join(map(str, SIZES))} b{BATCH} train step, each library in its own process, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load {load_average()}")
    for opt_name in args.opt:
        workers = {n: Worker([sys.executable, __file__, "--worker", n, "--opt", opt_name])
                   for n in ("fungrad", "jax")}
        try:
            times = interleaved_workers(workers, args.rounds, args.steps)
            losses = {n: w.ask(op="run", number=1)["loss"] for n, w in workers.items()}
        finally:
            for w in workers.values():
                w.close()
        label = f"fungrad.optim.{opt_name} vs optax.{opt_name}"
        for kind in ("wall", "cpu"):
            for k, stat in enumerate(("min", "median")):
                fg, jx = times["fungrad"][kind][k], times["jax"][kind][k]
                print(f"  {label} {kind:<4} {stat:<6} fungrad {fg * 1e3:7.3f} ms   jax.jit "
                      f"{jx * 1e3:7.3f} ms   ratio {fg / jx:5.2f}x")
        print(f"  loss after the last step: fungrad {losses['fungrad']:.6f}  "
              f"jax {losses['jax']:.6f}; load {load_average()}")


if __name__ == "__main__":
    main()
