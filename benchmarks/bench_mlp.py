"""MLP 784-512-512-10 train step with each library's own optimiser: fungrad.optim against optax.

The step is ``value_and_grad`` of a softmax cross-entropy over a batch of 128, then
``opt.update`` and ``apply_updates`` with ``fungrad.optim.adam`` (or ``sgd``) under
``fungrad.jit`` and ``optax.adam`` (or ``sgd``) under ``jax.jit``, params and optimiser state
donated. A third contestant is the same step written by hand in NumPy (``NumpyTrainer``:
the backward pass derived on paper, every buffer preallocated, every op in place where it can
be, optax's expressions for the update): what the best NumPy code does on this machine, so
the figures tell fungrad's overhead apart from NumPy's (one pass over memory per op, where
XLA fuses the update into one loop). Each runs in a process of its own, driven in
alternating rounds; the script prints the minimum and median step time, by wall clock and by
the process's CPU time (which a machine busy with other work inflates less), the ratios and
the load average. ``bench_jit.py`` uses the model defined here for its inline-update steps.
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
LIBS = ("fungrad", "jax", "numpy")


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


class NumpyTrainer:
    """The same step by hand in NumPy: forward, backward and ``adam``/``sgd`` in place.

    The update follows optax's expressions op for op (``(1 - b1) g + b1 m``, ``m / (1 -
    b1^t)``, ``m_hat / (sqrt(v_hat) + eps)``, ``-lr u``, ``p + u``), each a NumPy pass into
    a preallocated buffer; params and moments are updated in place, as donation allows.
    """

    B1, B2, EPS = np.float32(0.9), np.float32(0.999), np.float32(1e-8)

    def __init__(self, opt_name: str) -> None:
        self.params = init_params()
        self.x, self.y = make_data()
        self.adam = opt_name == "adam"
        self.lr = np.float32(1e-3 if self.adam else 1e-2)
        self.grads = {k: np.empty_like(v) for k, v in self.params.items()}
        self.mu = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.nu = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.tmp = {k: np.empty_like(v) for k, v in self.params.items()}
        self.count = 0
        n = len(SIZES) - 1
        self.pre = [np.empty((BATCH, m), np.float32) for m in SIZES[1:]]  # x @ w + b
        self.act = [np.empty((BATCH, m), np.float32) for m in SIZES[1:-1]]  # relu
        self.delta = [np.empty((BATCH, m), np.float32) for m in SIZES[1:]]  # d loss / d pre
        self.layers = n
        self.loss = None

    def _forward_backward(self) -> float:
        p, g, x, y = self.params, self.grads, self.x, self.y
        h = x
        for i in range(self.layers):
            z = np.matmul(h, p[f"w{i}"], out=self.pre[i])
            z += p[f"b{i}"]
            if i < self.layers - 1:
                h = np.maximum(z, 0, out=self.act[i])
        z = self.pre[-1]
        shifted = z - z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=-1, keepdims=True)
        log_p = shifted - np.log(total)
        loss = -np.mean(np.sum(log_p * y, axis=-1))
        d = self.delta[-1]  # d/dz of -mean(sum(y log_softmax(z))): (softmax(z) sum(y) - y) / B
        np.divide(e, total, out=d)
        d *= y.sum(axis=-1, keepdims=True)
        d -= y
        d /= np.float32(BATCH)
        for i in reversed(range(self.layers)):
            below = self.act[i - 1] if i else x
            np.matmul(below.T, d, out=g[f"w{i}"])
            np.sum(d, axis=0, out=g[f"b{i}"])
            if i:
                up = np.matmul(d, p[f"w{i}"].T, out=self.delta[i - 1])
                up *= self.pre[i - 1] > 0
                d = up
        return float(loss)

    def _update(self) -> None:
        self.count += 1
        bc1 = np.float32(1) - self.B1 ** np.float32(self.count)
        bc2 = np.float32(1) - self.B2 ** np.float32(self.count)
        for k, p in self.params.items():
            g, t = self.grads[k], self.tmp[k]
            if not self.adam:
                np.multiply(-self.lr, g, out=t)
                p += t
                continue
            m, v = self.mu[k], self.nu[k]
            np.multiply(np.float32(1) - self.B1, g, out=t)
            m *= self.B1
            np.add(t, m, out=m)
            np.multiply(g, g, out=t)
            t *= np.float32(1) - self.B2
            v *= self.B2
            np.add(t, v, out=v)
            np.divide(v, bc2, out=t)
            np.sqrt(t, out=t)
            t += self.EPS
            np.divide(m, bc1, out=g)  # the gradient's buffer is free again
            np.divide(g, t, out=g)
            g *= -self.lr
            p += g

    def __call__(self) -> float:
        self.loss = self._forward_backward()
        self._update()
        return self.loss


def worker(lib_name: str, opt_name: str) -> None:
    """Serve a ``Worker``: ``run`` answers timed steps and the latest loss."""
    if lib_name == "numpy":
        trainer = NumpyTrainer(opt_name)
        trainer()
        serve(lambda request: {**time_calls(trainer, request["number"]), "loss": trainer.loss})
        return
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
    ap.add_argument("--worker", choices=LIBS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.opt[0])
    print(f"MLP {'-'.join(map(str, SIZES))} b{BATCH} train step, each library in its own process, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load {load_average()}")
    for opt_name in args.opt:
        workers = {n: Worker([sys.executable, __file__, "--worker", n, "--opt", opt_name])
                   for n in LIBS}
        try:
            times = interleaved_workers(workers, args.rounds, args.steps)
            losses = {n: w.ask(op="run", number=1)["loss"] for n, w in workers.items()}
        finally:
            for w in workers.values():
                w.close()
        print(f"  {opt_name}: fungrad.optim.{opt_name} / optax.{opt_name} / NumPy by hand")
        for kind in ("wall", "cpu"):
            for k, stat in enumerate(("min", "median")):
                fg, jx, hand = (times[n][kind][k] for n in LIBS)
                print(f"  {kind:<4} {stat:<6} fungrad {fg * 1e3:7.3f} ms   jax.jit "
                      f"{jx * 1e3:7.3f} ms   NumPy {hand * 1e3:7.3f} ms   fungrad / jax "
                      f"{fg / jx:5.2f}x   fungrad / NumPy {fg / hand:5.2f}x   NumPy / jax "
                      f"{hand / jx:5.2f}x")
        print("  loss after the last step: " + "  ".join(f"{n} {losses[n]:.6f}" for n in LIBS)
              + f"; load {load_average()}")


if __name__ == "__main__":
    main()
