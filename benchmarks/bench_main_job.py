"""The main job's training (``examples/shakespeare_gpt.py``) against the same model, data and
schedule written with ``jax.jit`` + ``optax`` and with PyTorch (eager and ``torch.compile``).

Every library starts from the same params (``gpt2.init`` of the job's seed), trains on the
job's batches (``get_batch``: a function of seed and step) for ``--steps`` steps with the
job's optimiser (AdamW b2=0.99, decay on matrices only, global-norm clipping at 1, warm-up
+ cosine schedule spanning ``--steps``) and reports the time per step (first step, then
minimum and median of the rest) and the validation loss on the job's validation batches.
The model sizes are the job's defaults unless given. Each library runs in its own process,
one thread each (OPENBLAS_NUM_THREADS=1, XLA's and torch's intra-op threads set to 1).

Run: python benchmarks/bench_main_job.py [--steps 200]         (all, one process each)
     python benchmarks/bench_main_job.py --lib jax --steps 200  (one library)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIBS = ("fungrad", "jax", "torch", "torch-compile")
ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu",
       "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


# --------------------------------------------------------------------------- one model, two APIs

def gpt_loss(ops: Any, p: dict, x: Any, y: Any, n_head: int) -> Any:
    """GPT-2 as ``fungrad.models.gpt2`` computes it (no dropout), on ``ops``' arrays."""
    T = x.shape[1]
    h = p["wte"]["embedding"][x] + p["wpe"]["embedding"][:T]
    for b in p["blocks"]:
        h = h + attention(ops, b["attn"], ops.layer_norm(b["ln_1"], h), n_head)
        hidden = ops.gelu(linear(b["mlp"]["fc_in"], ops.layer_norm(b["ln_2"], h)))
        h = h + linear(b["mlp"]["fc_out"], hidden)
    logits = ops.layer_norm(p["ln_f"], h) @ p["wte"]["embedding"].T
    return ops.cross_entropy(logits, y)


def linear(p: dict, x: Any) -> Any:
    return x @ p["w"] + p["b"]


def attention(ops: Any, p: dict, x: Any, n_head: int) -> Any:
    B, T, C = x.shape
    heads = lambda t: ops.swap(t.reshape(B, T, n_head, C // n_head), 1, 2)
    q, k, v = (heads(linear(p[name], x)) for name in "qkv")
    scores = (q @ ops.swap(k, -1, -2)) / math.sqrt(C // n_head)
    scores = ops.where(ops.causal(T), scores, -1e30)
    return linear(p["o"], ops.swap(ops.softmax(scores) @ v, 1, 2).reshape(B, T, C))


class JaxOps:
    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp
        import optax
        self.jnp, self.nn, self.optax = jnp, jax.nn, optax

    def layer_norm(self, p: dict, x: Any) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = self.jnp.square(x - mean).mean(-1, keepdims=True)
        return (x - mean) / self.jnp.sqrt(var + 1e-5) * p["scale"] + p["bias"]

    def gelu(self, x: Any) -> Any:
        return self.nn.gelu(x, approximate=True)

    def softmax(self, x: Any) -> Any:
        return self.nn.softmax(x, axis=-1)

    def swap(self, x: Any, a: int, b: int) -> Any:
        return self.jnp.swapaxes(x, a, b)

    def causal(self, T: int) -> Any:
        return self.jnp.tril(self.jnp.ones((T, T), bool))

    def where(self, mask: Any, x: Any, fill: float) -> Any:
        return self.jnp.where(mask, x, fill)

    def cross_entropy(self, logits: Any, y: Any) -> Any:
        return self.optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


class TorchOps:
    def __init__(self) -> None:
        import torch
        self.torch, self.F = torch, torch.nn.functional

    def layer_norm(self, p: dict, x: Any) -> Any:
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).square().mean(-1, keepdim=True)
        return (x - mean) / self.torch.sqrt(var + 1e-5) * p["scale"] + p["bias"]

    def gelu(self, x: Any) -> Any:
        return self.F.gelu(x, approximate="tanh")

    def softmax(self, x: Any) -> Any:
        return x.softmax(-1)

    def swap(self, x: Any, a: int, b: int) -> Any:
        return x.transpose(a, b)

    def causal(self, T: int) -> Any:
        return self.torch.ones(T, T, dtype=self.torch.bool).tril()

    def where(self, mask: Any, x: Any, fill: float) -> Any:
        return x.masked_fill(~mask, fill)

    def cross_entropy(self, logits: Any, y: Any) -> Any:
        return self.F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


# --------------------------------------------------------------------------- one library's run

def load_job() -> Any:
    sys.path.insert(0, str(ROOT / "examples"))
    import shakespeare_gpt
    return shakespeare_gpt


@dataclasses.dataclass
class Setup:
    """What every library shares, made as the job makes it."""
    job: Any
    args: argparse.Namespace
    cfg: Any
    opt: Any
    schedule: Callable
    state: dict                # the job's initial training state (fungrad arrays)
    params: dict               # its params as NumPy arrays
    train_batch: Callable      # step -> (x, y) NumPy int32
    val: list                  # validation batches (NumPy)


def setup(steps: int, flags: list[str]) -> Setup:
    import numpy as np

    import fungrad
    from fungrad.text import CharTokenizer
    job = load_job()
    args = job.parser().parse_args([*flags, "--steps", str(steps),
                                    "--warmup-steps", str(min(100, steps // 10))])
    text = job.load_text()
    tok = CharTokenizer.train(text)
    train_data, val_data = job.split_data(tok, text)
    cfg = job.model_config(args, tok.vocab_size)
    opt, schedule = job.make_optimizer(args)
    state = job.initial_state(args, cfg, opt)
    numpy_batch = lambda data, stream, i: tuple(
        np.asarray(a)
        for a in job.get_batch(data, args.seed, stream, i, args.batch_size, args.block_size))
    return Setup(job, args, cfg, opt, schedule, state,
                 fungrad.tree.map(np.asarray, state["params"]),
                 lambda i: numpy_batch(train_data, job.TRAIN_STREAM, i),
                 [numpy_batch(val_data, job.VAL_STREAM, i) for i in range(args.eval_batches)])


def run_fungrad(steps: int, flags: list[str]) -> tuple[list[float], float]:
    import numpy as np

    import fungrad.numpy as jnp
    run = setup(steps, flags)
    train_step, val_loss = run.job.make_steps(run.cfg, run.opt)
    p, s, key = run.state["params"], run.state["opt_state"], run.state["dropout_key"]
    times = []
    for i in range(steps):
        x, y = map(jnp.asarray, run.train_batch(i))
        t0 = time.perf_counter()
        p, s, loss, _ = train_step(p, s, x, y, key, jnp.asarray(i, jnp.uint32))
        float(loss)
        times.append(time.perf_counter() - t0)
    losses = [float(val_loss(p, jnp.asarray(x), jnp.asarray(y))) for x, y in run.val]
    return times, float(np.mean(losses))


def run_jax(steps: int, flags: list[str]) -> tuple[list[float], float]:
    import jax
    import numpy as np
    ops = JaxOps()
    run = setup(steps, flags)
    args, train_batch, val = run.args, run.train_batch, run.val
    optax = ops.optax
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, args.warmup_steps, args.steps,
                                                  args.min_lr)
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adamw(schedule, b1=0.9, b2=0.99, weight_decay=args.weight_decay,
                                  mask=lambda p: jax.tree.map(lambda a: a.ndim >= 2, p)))
    loss_fn = lambda p, x, y: gpt_loss(ops, p, x, y, run.cfg.n_head)

    @jax.jit
    def step(p, s, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    p = jax.tree.map(ops.jnp.asarray, run.params)
    s = opt.init(p)
    times = []
    for i in range(steps):
        x, y = train_batch(i)
        t0 = time.perf_counter()
        p, s, loss = step(p, s, x, y)
        float(loss)
        times.append(time.perf_counter() - t0)
    val_loss = jax.jit(loss_fn)
    return times, float(np.mean([float(val_loss(p, x, y)) for x, y in val]))


def run_torch(steps: int, flags: list[str], compiled: bool) -> tuple[list[float], float]:
    """AdamW with the job's decay groups; each step sets the schedule's learning rate."""
    import numpy as np
    import torch
    torch.set_num_threads(1)
    ops = TorchOps()
    run = setup(steps, flags)
    params, train_batch = run.params, run.train_batch
    to_torch = lambda a: torch.tensor(np.array(a), requires_grad=True)
    p = {"wte": {"embedding": to_torch(params["wte"]["embedding"])},
         "wpe": {"embedding": to_torch(params["wpe"]["embedding"])},
         "ln_f": {k: to_torch(v) for k, v in params["ln_f"].items()},
         "blocks": [_tree(b, to_torch) for b in params["blocks"]]}
    leaves = _leaves(p)
    opt = torch.optim.AdamW([{"params": [t for t in leaves if t.ndim >= 2],
                              "weight_decay": run.args.weight_decay},
                             {"params": [t for t in leaves if t.ndim < 2], "weight_decay": 0.0}],
                            lr=0.0, betas=(0.9, 0.99), eps=1e-8)
    loss_fn = lambda p, x, y: gpt_loss(ops, p, x, y, run.cfg.n_head)
    if compiled:
        loss_fn = torch.compile(loss_fn)
    times = []
    for i in range(steps):
        x, y = (torch.from_numpy(a.astype(np.int64)) for a in train_batch(i))
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = float(run.schedule(i))
        loss = loss_fn(p, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(leaves, 1.0)
        opt.step()
        loss.item()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        losses = [float(loss_fn(p, torch.from_numpy(x.astype(np.int64)),
                                torch.from_numpy(y.astype(np.int64))))
                  for x, y in run.val]
    return times, float(np.mean(losses))


def _tree(node: Any, leaf: Callable) -> Any:
    if isinstance(node, dict):
        return {k: _tree(v, leaf) for k, v in node.items()}
    return leaf(node)


def _leaves(node: Any) -> list:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _leaves(v)]
    if isinstance(node, list):
        return [x for v in node for x in _leaves(v)]
    return [node]


# --------------------------------------------------------------------------- driver

def run_one(lib: str, steps: int, flags: list[str]) -> dict:
    runners = {"fungrad": run_fungrad, "jax": run_jax,
               "torch": lambda n, f: run_torch(n, f, compiled=False),
               "torch-compile": lambda n, f: run_torch(n, f, compiled=True)}
    times, val_loss = runners[lib](steps, flags)
    rest = sorted(times[1:])
    return {"lib": lib, "steps": steps, "first_s": times[0], "min_ms": 1e3 * rest[0],
            "median_ms": 1e3 * rest[len(rest) // 2], "total_s": sum(times), "val_loss": val_loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200, help="training steps per library")
    ap.add_argument("--lib", choices=LIBS, default=None, help="run one library in this process")
    ap.add_argument("--libs", default=",".join(LIBS), help="libraries to run, one process each")
    args, flags = ap.parse_known_args()  # other flags go to the job's parser (--n-layer 2 ...)
    sys.path.insert(0, os.path.dirname(__file__))
    from _timing import load_average
    if args.lib:
        print(json.dumps({**run_one(args.lib, args.steps, flags), "load": load_average()}))
        return
    job_args = load_job().parser().parse_args(flags)
    print(f"main job: L={job_args.n_layer} H={job_args.n_head} d={job_args.n_embd} "
          f"T={job_args.block_size} B={job_args.batch_size}, {args.steps} steps (schedule over "
          f"{args.steps}), one thread each, load {load_average()}")
    results = {}
    for lib in args.libs.split(","):
        cmd = [sys.executable, __file__, "--lib", lib, "--steps", str(args.steps), *flags]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                             env={**os.environ, **ENV})
        if out.returncode:
            print(f"  {lib:<14} failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        r = results[lib] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {lib:<14} step min {r['min_ms']:8.1f} ms  median {r['median_ms']:8.1f} ms  first "
              f"{r['first_s']:6.2f} s  total {r['total_s']:7.1f} s  val loss {r['val_loss']:.4f}  "
              f"(load {r['load']})", flush=True)
    if "fungrad" in results:
        for lib, r in results.items():
            if lib != "fungrad":
                fg = results["fungrad"]
                print(f"  fungrad / {lib:<14} min {fg['min_ms'] / r['min_ms']:5.2f}x  "
                      f"median {fg['median_ms'] / r['median_ms']:5.2f}x")


if __name__ == "__main__":
    main()
