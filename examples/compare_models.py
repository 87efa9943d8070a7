"""GPT-2, Mixtral and Mamba trained on tiny Shakespeare with the same budget, their loss
curves overlaid in one dashboard.

Three character-level language models of about the same size learn the bundled
tiny-Shakespeare text:

* GPT-2 (``fungrad.models.gpt2``): ``--n-layer`` attention blocks of width ``--width``;
* Mixtral (``fungrad.models.mixtral``): as many LLaMA blocks (RMSNorm, rotary positions),
  whose feed-forward is a mixture of ``--n-experts`` SwiGLU experts, ``--top-k`` per token;
  each expert is ``8 * width / (3 * top_k)`` wide, so the experts a token uses hold as many
  weights as GPT-2's MLP (all the experts together hold ``n_experts / top_k`` times more);
* Mamba (``fungrad.models.mamba``): twice as many selective state-space blocks, no
  attention (a Mamba block has half the weights of a transformer block, so the two models
  have about the same size, as in the Mamba paper's comparisons).

The budget is the same for each: the same steps, batches (the same sequences, in the same
order) and optimiser (AdamW on a warm-up + cosine schedule, gradients clipped at norm 1),
and the same validation batches. The data, the optimiser and the training loop (progress
bar, metrics log, evaluation) are those of the main job, ``examples/shakespeare_gpt.py``;
only the train step is per model. The training loss is each family's own objective
(Mixtral's adds 0.001 times the router's load-balancing loss); the validation loss is the
plain next-character cross-entropy for all three. Each model's weight matrices are decayed
(as the main job does; for Mamba that includes ``A_log``).

The run directory (``--out``, default ``runs/compare_models-<timestamp>``) holds one run
directory per model (``gpt2/``, ``mixtral/``, ``mamba/``: ``config.json``,
``metrics.jsonl``, the final ``checkpoint.safetensors``), ``dashboard.html`` (the three
runs overlaid, written with ``fungrad.dashboard``) and ``loss_curves.png``. The script
prints a table (parameters, training time, tokens/s, losses) and a short sample of each
model.

Run:  python examples/compare_models.py                 (about 6 minutes on a busy 2-core CPU)
      python examples/compare_models.py --quick
      python -m fungrad.dashboard runs/compare_models-<timestamp>/{gpt2,mixtral,mamba}
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

# Small models: one BLAS thread (see shakespeare_gpt.py); an explicit setting still wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gallery  # the helper beside this script
import numpy as np
import shakespeare_gpt as main_job  # the main job beside this script: data, optimiser, loop

import fungrad
from fungrad import dashboard, nn, optim, random, train
from fungrad.models import gpt2, mamba, mixtral
from fungrad.text import CharTokenizer, Model, generate

NAME = "compare_models"
MODELS = ("gpt2", "mixtral", "mamba")
PROMPT = "ROMEO:\n"
PICTURE = "loss_curves.png"


class Result(NamedTuple):
    """What the summary table shows of one trained model."""
    name: str
    model: Model
    n_params: int
    steps: int
    seconds: float
    train_loss: float  # mean over the last tenth of the steps
    val_loss: float
    stopped_by: str


# --------------------------------------------------------------------------- settings

def parser() -> argparse.ArgumentParser:
    """The gallery's flags (``--quick``, ``--out``, ``--seed``) and this example's."""
    ap = gallery.parser(__doc__)
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                    help="the models to train, in this order")
    size = ap.add_argument_group("model sizes")
    size.add_argument("--width", type=int, default=64,
                      help="width of every model's residual stream")
    size.add_argument("--n-layer", type=int, default=2,
                      help="blocks of GPT-2 and Mixtral (Mamba: twice)")
    size.add_argument("--n-head", type=int, default=4, help="attention heads of GPT-2 and Mixtral")
    size.add_argument("--n-experts", type=int, default=4, help="Mixtral's experts per block")
    size.add_argument("--top-k", type=int, default=2, help="Mixtral's experts per token")
    size.add_argument("--d-state", type=int, default=4,
                      help="Mamba's state per channel (its training time grows with it)")
    opt = ap.add_argument_group("the budget of each model")
    opt.add_argument("--steps", type=int, default=400, help="optimiser steps")
    opt.add_argument("--batch-size", type=int, default=16, help="sequences per step")
    opt.add_argument("--block-size", type=int, default=64, help="characters per sequence")
    opt.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    opt.add_argument("--min-lr", type=float, default=1e-4, help="learning rate at the last step")
    opt.add_argument("--warmup-steps", type=int, default=None,
                     help="linear warm-up (default: 100, or a tenth of --steps when fewer)")
    opt.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay of the matrices")
    opt.add_argument("--max-minutes", type=float, default=0.0,
                     help="stop a model after this many minutes of training (0: no limit; a "
                          "limit can leave the models with different step counts)")
    run = ap.add_argument_group("evaluation and samples")
    run.add_argument("--eval-interval", type=int, default=50,
                     help="steps between validation losses")
    run.add_argument("--eval-batches", type=int, default=8,
                     help="validation batches per evaluation")
    run.add_argument("--temperature", type=float, default=0.8, help="temperature of the samples")
    return ap


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject settings that cannot run, naming the flag; fill in the warm-up default."""
    for name in ("width", "n_layer", "n_head", "n_experts", "top_k", "d_state", "steps",
                 "batch_size", "eval_interval", "eval_batches"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.width % args.n_head:
        ap.error(f"--width {args.width} must be divisible by --n-head {args.n_head}")
    if args.top_k > args.n_experts:
        ap.error(f"--top-k {args.top_k} must be <= --n-experts {args.n_experts}")
    if args.block_size <= len(PROMPT):
        ap.error(f"--block-size must be > {len(PROMPT)} (the sample's prompt), "
                 f"got {args.block_size}")
    if len(set(args.models)) < len(args.models):
        ap.error(f"--models names a model twice: {args.models}")
    if args.warmup_steps is None:
        args.warmup_steps = min(100, args.steps // 10)
    if not 0 <= args.warmup_steps < args.steps:
        ap.error(f"--warmup-steps must be in [0, --steps), got {args.warmup_steps}")
    if args.max_minutes < 0 or args.temperature <= 0:
        ap.error("--max-minutes must be >= 0 and --temperature > 0")


def quick(args: argparse.Namespace) -> None:
    """``--quick``: tiny models and a few steps, so the whole script runs in seconds."""
    args.width, args.n_layer, args.n_head, args.d_state = 16, 1, 2, 2
    args.steps, args.batch_size, args.block_size = 6, 4, 16
    args.eval_interval, args.eval_batches = 3, 1


def model_configs(args: argparse.Namespace, vocab_size: int) -> dict[str, tuple[Any, Any]]:
    """Each model's family module and config, sized as the module docstring says."""
    width, layers, block = args.width, args.n_layer, args.block_size
    return {
        "gpt2": (gpt2, gpt2.Config(
            vocab_size=vocab_size, n_positions=block, n_embd=width, n_layer=layers,
            n_head=args.n_head, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0,
            bos_token_id=None, eos_token_id=None)),
        "mixtral": (mixtral, mixtral.Config(
            vocab_size=vocab_size, d_model=width, n_layers=layers, n_heads=args.n_head,
            d_ff=max(1, round(8 * width / (3 * args.top_k))), max_len=block, norm_eps=1e-5,
            tie_embeddings=True, n_experts=args.n_experts, top_k=args.top_k)),
        "mamba": (mamba, mamba.Config(
            vocab_size=vocab_size, d_model=width, n_layers=2 * layers, d_state=args.d_state,
            dt_rank=math.ceil(width / 16), pad_token_id=None, bos_token_id=None,
            eos_token_id=None)),
    }


# --------------------------------------------------------------------------- training

def make_steps(
    module: Any, cfg: Any, opt: optim.GradientTransformation
) -> tuple[Callable, Callable]:
    """The jitted train step of one model (its own loss) and its validation loss (the plain
    next-character cross-entropy, the same measure for every model)."""

    def train_step(params, opt_state, x, y):
        loss, grads = fungrad.value_and_grad(module.loss)(params, cfg, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss, nn.global_norm(grads)

    def val_loss(params, x, y):
        return nn.cross_entropy(module.apply(params, cfg, x)[0], y)

    return fungrad.jit(train_step, donate_argnums=(0, 1)), fungrad.jit(val_loss)


def write_config(run_dir: str, name: str, args: argparse.Namespace, cfg: Any,
                 n_params: int) -> None:
    """The run's ``config.json``: the flags, the model's config and its size."""
    flags = {k: v for k, v in vars(args).items() if k != "out"}
    config = {"example": NAME, "model": name, "args": flags,
              "config": dataclasses.asdict(cfg), "n_params": n_params}
    with open(os.path.join(run_dir, main_job.CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)


def train_model(name: str, module: Any, cfg: Any, args: argparse.Namespace, run_dir: str,
                train_data: np.ndarray, val_batches: list, stop: main_job.StopFlag) -> Result:
    """Train one model with the budget of ``args`` in the main job's loop, logging to
    ``run_dir``; return its row of the summary table."""
    opt, schedule = main_job.make_optimizer(args)
    params = module.init(random.PRNGKey(args.seed), cfg)
    state = {"params": params, "opt_state": opt.init(params), "step": 0, "elapsed": 0.0}
    n_params = nn.count_params(params)
    write_config(run_dir, name, args, cfg, n_params)
    train_step, val_loss_fn = make_steps(module, cfg, opt)
    evaluate = lambda params: float(np.mean([float(val_loss_fn(params, x, y))
                                             for x, y in val_batches]))

    def take_step(state: dict) -> tuple:
        x, y = main_job.get_batch(train_data, args.seed, main_job.TRAIN_STREAM, state["step"],
                                  args.batch_size, args.block_size)
        return train_step(state["params"], state["opt_state"], x, y)

    print(f"\n== {name}: {n_params:,} parameters; run directory {run_dir}", flush=True)
    # The main job's loop, with no --stop-at and one checkpoint, after the last step.
    loop_args = argparse.Namespace(**vars(args), stop_at=None, checkpoint_interval=args.steps)
    reason, val_loss = main_job.train_loop(loop_args, run_dir, state, schedule, take_step,
                                           evaluate, stop, args.batch_size * args.block_size)
    if val_loss is None or reason != "done":  # stopped early: log the loss where the curve ends
        val_loss = evaluate(state["params"])
        with train.MetricsWriter(run_dir) as log:
            log.write(state["step"], val_loss=val_loss)
    losses = [r["train_loss"] for r in train.read_metrics(run_dir)]
    last = losses[-max(1, len(losses) // 10):]
    return Result(name, Model(module, state["params"], cfg), n_params, state["step"],
                  state["elapsed"], float(np.mean(last)), val_loss, reason)


# --------------------------------------------------------------------------- the report

def print_table(results: list[Result], tokens_per_step: int) -> None:
    """One row per model: size, steps, time, speed and losses; then any model stopped early."""
    print(f"\n{'model':8} {'params':>8} {'steps':>6} {'time (s)':>9} {'tokens/s':>9} "
          f"{'train loss':>11} {'val loss':>9}")
    for r in results:
        print(f"{r.name:8} {r.n_params:>8,} {r.steps:>6} {r.seconds:>9.1f} "
              f"{r.steps * tokens_per_step / r.seconds:>9,.0f} "
              f"{r.train_loss:>11.3f} {r.val_loss:>9.3f}")
    print("(time: training, compilation included; train loss: mean over the last tenth of the "
          "steps; val loss: cross-entropy on the validation batches after the last step)")
    for r in results:
        if r.stopped_by != "done":
            print(f"{r.name} was stopped by {r.stopped_by} after {r.steps} steps")


def print_samples(results: list[Result], tok: CharTokenizer, args: argparse.Namespace) -> None:
    """Each model continues the same prompt, with the same key, to the end of its context."""
    ids = tok.encode(PROMPT)
    for r in results:
        new = generate(r.model, [ids], max_new_tokens=args.block_size - len(ids),
                       temperature=args.temperature, key=random.PRNGKey(args.seed + 1),
                       max_len=args.block_size)[0]
        print(f"\n-- {r.name} (temperature {args.temperature:g}):\n{PROMPT}{tok.decode(new)}")


def ema(values: list[float], weight: float) -> np.ndarray:
    """TensorBoard's smoothing, as the dashboard draws it: an exponential moving average
    with the bias of its zero start divided out (the first point is the first value)."""
    acc, out = 0.0, []
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        out.append(acc / (1 - weight ** (i + 1)))
    return np.array(out)


def plot_curves(runs: list[dashboard.Run]) -> Callable[[Any], Any]:
    """Training loss (smoothed) and validation loss against the step, and validation loss
    against the training time."""
    def draw(plt):
        fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(10, 3.6))
        for run in runs:
            steps, train_loss, _ = zip(*run.metrics["train_loss"])
            val_steps, val_loss, val_time = zip(*run.metrics["val_loss"])
            line, = by_step.plot(steps, ema(list(train_loss), 0.9), alpha=0.35, lw=1)
            by_step.plot(val_steps, val_loss, "o-", ms=3, color=line.get_color(), label=run.name)
            by_time.plot(val_time, val_loss, "o-", ms=3, color=line.get_color(), label=run.name)
        by_step.set_xlabel("step (faint: training loss, smoothed)")
        by_time.set_xlabel("training time (s)")
        for ax in (by_step, by_time):
            ax.set_ylabel("validation loss")
            ax.legend()
        return fig
    return draw


def main(argv: list[str] | None = None) -> None:
    """Train the models one after the other, then print the table and the samples and write
    the picture and the dashboard of the runs trained."""
    stop = main_job.StopFlag()
    ap = parser()
    args = ap.parse_args(argv)
    if args.quick:
        quick(args)
    check_args(ap, args)
    out = args.out or os.path.join("runs", f"{NAME}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dirs = [os.path.join(out, name) for name in args.models]
    for run_dir in run_dirs:
        if os.path.exists(os.path.join(run_dir, train.METRICS_FILE)):
            ap.error(f"--out {out}: {run_dir} already holds a run; choose another --out")
        os.makedirs(run_dir, exist_ok=True)
    text = main_job.load_text()
    tok = CharTokenizer.train(text)
    train_data, val_data = main_job.split_data(tok, text)
    val_batches = [main_job.get_batch(val_data, args.seed, main_job.VAL_STREAM, i, args.batch_size,
                                      args.block_size) for i in range(args.eval_batches)]
    configs = model_configs(args, tok.vocab_size)
    print(f"{len(args.models)} models, each {args.steps} steps of "
          f"{args.batch_size} x {args.block_size} characters "
          f"(Ctrl-C stops the current model and skips the rest)")
    results = []
    for name, run_dir in zip(args.models, run_dirs):
        module, cfg = configs[name]
        results.append(train_model(name, module, cfg, args, run_dir, train_data, val_batches, stop))
        if stop.set:
            break
    done = run_dirs[:len(results)]
    print_table(results, args.batch_size * args.block_size)
    if not stop.set:
        print_samples(results, tok, args)
    print()
    gallery.save_picture(out, PICTURE, plot_curves(dashboard.load_runs(done)))
    print(f"wrote {dashboard.write_dashboard(done, os.path.join(out, dashboard.DASHBOARD_FILE))} "
          f"(the {len(done)} runs overlaid)")
    print(f"serve it live:  python -m fungrad.dashboard {' '.join(done)} --serve")


if __name__ == "__main__":
    main()
