"""Train a character-level GPT-2 on the bundled tiny-Shakespeare text, then sample from it.

The model is ``fungrad.models.gpt2``; the training loop is the library as a user writes
it: one jitted step (``value_and_grad`` of the loss, AdamW with a warm-up + cosine
schedule and global-norm clipping), dropout keys from ``fungrad.random``, a progress bar
with tokens/s and ETA, periodic validation loss. It trains data-parallel on the machine's
cores (``fungrad.distributed.spawn``; ``--processes``): each process computes the gradient
of its share of every batch and one all-reduce averages them, so two cores train nearly
twice as many steps in the same time as one.

Everything of a run goes to its directory (``--out``, default ``runs/<timestamp>``):
``config.json`` (every setting), ``metrics.jsonl`` (one JSON line per step), the atomic
``checkpoint.safetensors`` (params, their moving average, optimiser state, step, PRNG key,
data seed), the tokenizer and ``samples.txt``. The run's model is the moving average of the
params (``--ema``): it is what is evaluated, saved and sampled. The data order is a pure
function of (seed, step), so ``--resume RUN_DIR`` continues bit for bit where the run
stopped. Ctrl-C (or the ``--max-minutes`` budget) finishes the current step, writes a
checkpoint and says how to resume.

Run:  python examples/shakespeare_gpt.py                 (about 5 minutes on a 2-core CPU)
      python examples/shakespeare_gpt.py --resume runs/<timestamp>
      python examples/sample.py runs/<timestamp> --prompt "ROMEO:"
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from typing import Any

# The matrices here are small (128 wide): one BLAS thread is as fast as two on an idle
# machine, and on a busy one two spinning OpenBLAS threads make a step ~30x slower. Set
# before NumPy loads OpenBLAS; an explicit OPENBLAS_NUM_THREADS still wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as jnp  # noqa: E402
from fungrad import distributed, nn, optim, random, train  # noqa: E402
from fungrad.models import gpt2  # noqa: E402
from fungrad.text import CharTokenizer, Model, stream  # noqa: E402

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
SAMPLES_FILE = "samples.txt"
DEFAULT_OUT = "runs/<timestamp>"  # replaced by the start time
# Flags that may change when a run is resumed; every other setting comes from its config.json.
RESUME_FLAGS = ("max_minutes", "stop_at", "processes", "sample_chars", "temperature", "top_k")
TRAIN_STREAM, VAL_STREAM = 0, 1  # independent batch streams of one seed
PROBE_SECONDS = 3.0  # how long the steps timed to plan a run that fills its budget take
# The share of --max-minutes the plan fills. The machine's speed drifts, so a plan may run
# into the budget: that stops it in the schedule's last few percent, where the learning
# rate is already near its floor, which costs less than steps left unused.
PLAN_SHARE = 0.97
MIN_CHARS_PER_PROCESS = 512  # --processes 0 starts no more processes than keep this many each
AXIS = distributed.DEFAULT_AXIS  # the data-parallel axis of the job's processes
# Why training stops after a step; process 0 decides and tells the others.
STOP_REASONS = ("done", "Ctrl-C", "--stop-at", "the time budget")


# --------------------------------------------------------------------------- settings

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    model = ap.add_argument_group("model (GPT-2)")
    model.add_argument("--n-layer", type=int, default=2, help="transformer blocks")
    model.add_argument("--n-head", type=int, default=4, help="attention heads per block")
    model.add_argument("--n-embd", type=int, default=128, help="width of the residual stream")
    model.add_argument("--block-size", type=int, default=64, help="context length in characters")
    model.add_argument("--activation", default="gelu_new", choices=sorted(gpt2.ACTIVATIONS),
                       help="the MLP's nonlinearity")
    model.add_argument("--init-std", type=float, default=0.04,
                       help="standard deviation of the initial weights (GPT-2's "
                            "initializer_range, 0.02 in GPT-2 itself)")
    model.add_argument("--dropout", type=float, default=0.0,
                       help="dropout rate (embeddings, attention, residuals); 0 suits short runs")
    opt = ap.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, default=24, help="sequences per step")
    opt.add_argument("--steps", type=int, default=0,
                     help="planned steps; the learning-rate schedule spans them (0: as many as "
                          "fit in --max-minutes, at the speed measured on a few steps first)")
    opt.add_argument("--max-minutes", type=float, default=5.0,
                     help="stop (with a checkpoint) after this many minutes of training in this "
                          "invocation; 0: no limit")
    opt.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                     help="stop (with a checkpoint) after this step, to train in parts; the "
                          "schedule still spans --steps")
    opt.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    opt.add_argument("--min-lr", type=float, default=1e-4, help="learning rate at the last step")
    opt.add_argument("--warmup-steps", type=int, default=None,
                     help="linear warm-up from 0 to --lr (default: 100, or a tenth of --steps "
                          "when fewer)")
    opt.add_argument("--weight-decay", type=float, default=0.3, help="AdamW decay of the matrices")
    opt.add_argument("--ema", type=float, default=0.998,
                     help="decay of the moving average of the params kept after every step "
                          "(optim.incremental_update), which is the run's model: evaluated, "
                          "checkpointed and sampled (0: the last step's params)")
    run = ap.add_argument_group("run")
    run.add_argument("--eval-interval", type=int, default=250,
                     help="steps between validation losses")
    run.add_argument("--eval-batches", type=int, default=8,
                     help="validation batches per evaluation")
    run.add_argument("--checkpoint-interval", type=int, default=500,
                     help="steps between checkpoints")
    run.add_argument("--out", default=DEFAULT_OUT, help="run directory")
    run.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue the run in RUN_DIR with its settings (only --max-minutes, "
                          "--stop-at and the sampling flags may change)")
    run.add_argument("--processes", type=int, default=0,
                     help="processes training together, data-parallel on this machine's cores: "
                          "each computes the gradient of --batch-size/N sequences of every step "
                          f"(0: one per core, while each gets {MIN_CHARS_PER_PROCESS} characters "
                          "a step or more)")
    run.add_argument("--seed", type=int, default=0,
                     help="seed of the init, the data order and dropout")
    sample = ap.add_argument_group("sampling at the end")
    sample.add_argument("--sample-chars", type=int, default=500,
                        help="characters to sample (0: none)")
    sample.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    sample.add_argument("--top-k", type=int, default=None,
                        help="sample from the k likeliest characters")
    return ap


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show each flag's default and keep the description's line breaks."""


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject settings that cannot run, naming the flag."""
    positive = ("n_layer", "n_head", "n_embd", "batch_size", "eval_interval", "eval_batches",
                "checkpoint_interval")
    for name in positive:
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.block_size < 2:
        ap.error(f"--block-size must be >= 2, got {args.block_size}")
    if args.n_embd % args.n_head:
        ap.error(f"--n-embd {args.n_embd} must be divisible by --n-head {args.n_head}")
    if not 0 <= args.dropout < 1:
        ap.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if not args.init_std > 0:
        ap.error(f"--init-std must be > 0, got {args.init_std}")
    if not 0 <= args.ema < 1:
        ap.error(f"--ema must be in [0, 1), got {args.ema}")
    if args.processes < 0 or args.processes and args.batch_size % args.processes:
        ap.error(f"--processes must be >= 0 and divide --batch-size {args.batch_size}, "
                 f"got {args.processes}")
    if args.max_minutes < 0 or args.sample_chars < 0:
        ap.error("--max-minutes and --sample-chars must be >= 0")
    if args.steps < 0 or args.steps == 0 and args.max_minutes == 0:
        ap.error(f"--steps must be >= 1 (or 0 with a --max-minutes budget), got {args.steps}")
    if args.steps and args.warmup_steps is None:
        args.warmup_steps = default_warmup(args.steps)
    if args.steps and not 0 <= args.warmup_steps < args.steps:
        ap.error(f"--warmup-steps must be in [0, --steps), got {args.warmup_steps}")


def default_warmup(steps: int) -> int:
    return min(100, steps // 10)


def processes_for(args: argparse.Namespace) -> int:
    """How many processes train: ``--processes``, or with 0 one per CPU core this process
    may use, as long as each gets ``MIN_CHARS_PER_PROCESS`` characters of every step (below
    that a step is too small to gain from being split) and the batch splits evenly."""
    if args.processes:
        return args.processes
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    chars = args.batch_size * args.block_size
    n = max(1, min(cores or 1, args.batch_size, chars // MIN_CHARS_PER_PROCESS))
    while args.batch_size % n:
        n -= 1
    return n


def model_config(args: argparse.Namespace, vocab_size: int) -> gpt2.Config:
    return gpt2.Config(vocab_size=vocab_size, n_positions=args.block_size, n_embd=args.n_embd,
                       n_layer=args.n_layer, n_head=args.n_head,
                       activation_function=args.activation, embd_pdrop=args.dropout,
                       attn_pdrop=args.dropout, resid_pdrop=args.dropout, bos_token_id=None,
                       eos_token_id=None, initializer_range=args.init_std)


# --------------------------------------------------------------------------- data

def load_text() -> str:
    return resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()


def split_data(tok: CharTokenizer, text: str) -> tuple[np.ndarray, np.ndarray]:
    """The first 90% of the text for training, the rest for validation (nanoGPT's split)."""
    data = np.array(tok.encode(text), dtype=np.int32)
    cut = int(0.9 * len(data))
    return data[:cut], data[cut:]


def get_batch(data: np.ndarray, seed: int, stream_id: int, index: int, batch_size: int,
              block_size: int) -> tuple[Any, Any]:
    """Batch ``index`` of a stream: inputs and next-character targets, ``(batch, block)``.

    A pure function of its arguments (the generator is seeded with (seed, stream, index)),
    so a resumed run sees exactly the batches the uninterrupted run would have seen."""
    rng = np.random.default_rng([seed, stream_id, index])
    starts = rng.integers(0, len(data) - block_size, batch_size)
    rows = starts[:, None] + np.arange(block_size)
    return jnp.asarray(data[rows]), jnp.asarray(data[rows + 1])


def split_batches(data: np.ndarray, batch_size: int, block_size: int) -> Iterator[tuple[Any, Any]]:
    """The whole of ``data`` as consecutive non-overlapping windows, ``batch_size`` at a time
    (the last, partial batch is dropped): the final validation loss reads every character
    of the split once, rather than a sample of random windows."""
    n = (len(data) - 1) // block_size // batch_size * batch_size
    rows = np.arange(n * block_size).reshape(n, block_size)
    for start in range(0, n, batch_size):
        chunk = rows[start:start + batch_size]
        yield jnp.asarray(data[chunk]), jnp.asarray(data[chunk + 1])


# --------------------------------------------------------------------------- training state

def make_optimizer(args: argparse.Namespace) -> tuple[optim.GradientTransformation, optim.Schedule]:
    """AdamW on a warm-up + cosine schedule spanning the planned steps, gradients clipped at
    global norm 1; only matrices (embeddings included) are decayed, as in GPT-2 and nanoGPT."""
    schedule = optim.warmup_cosine_decay_schedule(0.0, args.lr, warmup_steps=args.warmup_steps,
                                                  decay_steps=args.steps, end_value=args.min_lr)
    decay_matrices = lambda params: fungrad.tree.map(lambda p: p.ndim >= 2, params)
    opt = optim.chain(optim.clip_by_global_norm(1.0),
                      optim.adamw(schedule, b1=0.9, b2=0.99, weight_decay=args.weight_decay,
                                  mask=decay_matrices))
    return opt, schedule


def initial_state(args: argparse.Namespace, cfg: gpt2.Config,
                  opt: optim.GradientTransformation) -> dict:
    """What a checkpoint holds: params, optimiser state, the next step, the dropout key's
    data, the data seed and the training time so far; with ``args.ema`` (a script
    without that flag keeps none) also the params' moving average, ``"ema"``."""
    init_key, dropout_key = random.split(random.PRNGKey(args.seed))
    params = gpt2.init(init_key, cfg)
    state = {"params": params, "opt_state": opt.init(params), "step": 0,
             "dropout_key": dropout_key, "data_seed": args.seed, "elapsed": 0.0}
    if getattr(args, "ema", 0.0):
        state["ema"] = fungrad.tree.map(jnp.copy, params)  # its own buffers: both are donated
    return state


def model_params(state: dict) -> Any:
    """The params that are the run's model: the moving average when the run keeps one
    (``--ema``), else the last step's."""
    return state.get("ema", state["params"])


def make_ema_update(decay: float) -> Any:
    """The jitted ``update(ema, params, step) -> ema``: ``optim.incremental_update`` with
    the decay ``min(decay, (1 + step) / (10 + step))`` (as TensorFlow's moving averages with
    ``num_updates``), so that early on the average follows the params closely instead of
    remembering their random init."""
    def update(ema, params, step):
        d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
        return optim.incremental_update(params, ema, 1.0 - d)
    return fungrad.jit(update, donate_argnums=(0,))


def plan_steps(args: argparse.Namespace, cfg: gpt2.Config, train_data: np.ndarray) -> None:
    """With ``--steps 0``, set ``args.steps`` to as many steps as fit in ``--max-minutes``.

    Trains a throwaway model: a few steps to compile and warm up, a few to estimate the
    speed, then as many as take about ``PROBE_SECONDS``, timed as the loop runs them (the
    batch drawn, the step, the loss read); their median, plus the evaluations' share (a
    forward pass costs about a third of a step), sets a plan that fills ``PLAN_SHARE`` of
    the budget. The plan goes into config.json, so a resumed run keeps it; the warm-up
    steps are planned before the total and so are the same whatever it turns out to be.
    Every process of a data-parallel run takes the probe steps together; process 0's timing
    decides."""
    warmup = args.warmup_steps if args.warmup_steps is not None else default_warmup(10**9)
    probe = argparse.Namespace(**{**vars(args), "steps": 10**9, "warmup_steps": warmup})
    opt, _ = make_optimizer(probe)
    train_step, _ = make_steps(cfg, opt, distributed.process_count())
    state = initial_state(probe, cfg, opt)
    params, opt_state, done = state["params"], state["opt_state"], 0

    def timed_steps(n: int) -> float:
        """The median time of ``n`` steps (robust to a moment's slowdown of the machine)."""
        nonlocal params, opt_state, done
        times = []
        for i in range(done, done + n):
            t0 = time.perf_counter()
            x, y = distributed.shard(get_batch(train_data, args.seed, TRAIN_STREAM, i,
                                               args.batch_size, args.block_size))
            step = jnp.asarray(i, jnp.uint32)
            params, opt_state, loss, _ = train_step(params, opt_state, x, y,
                                                    state["dropout_key"], step)
            float(loss)
            times.append(time.perf_counter() - t0)
        done += n
        # process 0's time, so that every process takes the same number of steps
        return float(distributed.broadcast(jnp.asarray(np.median(times)), AXIS))

    timed_steps(3)                      # the compile, then warm-up
    rough = timed_steps(5)
    per_step = timed_steps(min(200, max(10, int(PROBE_SECONDS / rough))))
    per_step *= 1 + args.eval_batches / (3 * args.eval_interval)
    args.steps = max(warmup + 1, int(PLAN_SHARE * 60 * args.max_minutes / per_step))
    args.warmup_steps = warmup
    if distributed.process_index() == 0:
        print(f"planned {args.steps} steps: {per_step * 1e3:.0f} ms a step measured, "
              f"--max-minutes {args.max_minutes:g}", flush=True)


def make_steps(cfg: gpt2.Config, opt: optim.GradientTransformation,
               processes: int = 1) -> tuple[Any, Any]:
    """The jitted train step and validation loss.

    With several processes each step gets this process's shard of the batch, and the
    gradients and the loss are averaged over the processes (one all-reduce) before the
    update, so every process applies the same one; call it inside
    ``distributed.process_axis()``."""
    dropout = cfg.resid_pdrop > 0 or cfg.attn_pdrop > 0 or cfg.embd_pdrop > 0

    def train_step(params, opt_state, x, y, dropout_key, step):
        key = random.fold_in(dropout_key, step)  # a pure function of (seed, step), like the data
        if processes > 1:
            key = distributed.rank_key(key, AXIS)  # other dropout masks on other shards
        loss, grads = fungrad.value_and_grad(gpt2.loss)(params, cfg, x, y, train=dropout, key=key)
        if processes > 1:
            grads, loss = distributed.fused_pmean((grads, loss), AXIS)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss, nn.global_norm(grads)

    val_loss = lambda params, x, y: gpt2.loss(params, cfg, x, y)
    return fungrad.jit(train_step, donate_argnums=(0, 1)), fungrad.jit(val_loss)


# --------------------------------------------------------------------------- sampling

def sample_chars(model: Model, tok: CharTokenizer, prompt: str, n_chars: int, *, temperature: float,
                 top_k: int | None, key: Any) -> Iterator[str]:
    """Yield ``n_chars`` characters following ``prompt``, as they are produced.

    GPT-2's positions are learned up to ``n_positions``, so text longer than the context is
    made in windows: each continues the last half-context of the text so far, one KV-cached
    decode step per character (``fungrad.text.stream``)."""
    block = model.cfg.n_positions
    ids = tok.encode(prompt)
    if not ids:
        raise ValueError("sample_chars: the prompt is empty (start it with a newline, for example)")
    left, window = n_chars, 0
    while left > 0:
        context = ids[-(block // 2):]
        new = min(left, block - len(context))
        for token in stream(model, context, max_new_tokens=new, temperature=temperature,
                            top_k=top_k, key=random.fold_in(key, window), max_len=block):
            ids.append(token)
            yield tok.decode([token])
        left -= new
        window += 1


# --------------------------------------------------------------------------- the run

class StopFlag:
    """Set by Ctrl-C (SIGINT): the loop finishes its step, saves and exits cleanly."""

    def __init__(self) -> None:
        self.set = False
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.set = True


def prepare_run(ap: argparse.ArgumentParser,
                argv: list[str] | None) -> tuple[argparse.Namespace, str]:
    """Parse flags; for ``--resume`` take the run's saved settings. Returns (args, run_dir)."""
    args = ap.parse_args(argv)
    if args.resume:
        path = os.path.join(args.resume, CONFIG_FILE)
        if not os.path.exists(os.path.join(args.resume, CHECKPOINT_FILE)):
            ap.error(f"--resume {args.resume}: no {CHECKPOINT_FILE} there")
        with open(path) as f:
            saved = json.load(f)["args"]
        defaults = vars(ap.parse_args([]))  # for settings added since the run was started
        defaults["ema"] = 0.0  # a run older than --ema kept no average
        args = argparse.Namespace(**{**defaults, **saved,
                                     **{k: getattr(args, k) for k in RESUME_FLAGS},
                                     "resume": args.resume})
        return args, args.resume
    check_args(ap, args)
    if args.out == DEFAULT_OUT:
        return args, os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    return args, args.out


def write_config(run_dir: str, args: argparse.Namespace, cfg: gpt2.Config, n_params: int,
                 train_chars: int, val_chars: int) -> None:
    settings = {k: v for k, v in vars(args).items() if k not in ("resume", "out")}
    config = {"args": settings, "model": dataclasses.asdict(cfg), "n_params": n_params,
              "tokens_per_step": args.batch_size * args.block_size, "train_chars": train_chars,
              "val_chars": val_chars}
    with open(os.path.join(run_dir, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)


def stop_reason(stop: StopFlag, state: dict, args: argparse.Namespace, seconds: float) -> str:
    """Why training stops after this step, ``seconds`` into this invocation's training:
    "done" (it goes on), or what stopped it (one of ``STOP_REASONS``). Process 0 decides
    for every process, so that they all stop after the same step (call it inside
    ``distributed.process_axis()`` when there are several)."""
    reason = "done"
    if stop.set:
        reason = "Ctrl-C"
    elif state["step"] == args.stop_at:
        reason = "--stop-at"
    elif args.max_minutes and seconds >= 60 * args.max_minutes:
        reason = "the time budget"
    if distributed.process_count() == 1:
        return reason
    return STOP_REASONS[int(distributed.broadcast(jnp.asarray(STOP_REASONS.index(reason)), AXIS))]


def describe(reason: str, args: argparse.Namespace) -> str:
    """A stop reason with the flag's value."""
    return {"--stop-at": f"--stop-at {args.stop_at}",
            "the time budget": f"the time budget, --max-minutes {args.max_minutes:g}"
            }.get(reason, reason)


def train_loop(args: argparse.Namespace, run_dir: str, state: dict, schedule: optim.Schedule,
               take_step: Callable[[dict], tuple], evaluate: Any, stop: StopFlag,
               tokens_per_step: int) -> tuple[str, float | None]:
    """Train from ``state["step"]`` (updating ``state``) until the planned steps are done or
    something stops the run; log every step, evaluate and checkpoint at their intervals.
    ``take_step(state)`` does one optimiser step and returns the new params and optimiser
    state, the training loss and the gradient norm.
    Returns why it stopped and the last validation loss (None if none was measured).
    Only process 0 shows progress and writes metrics and checkpoints."""
    checkpoint = os.path.join(run_dir, CHECKPOINT_FILE)
    lead = distributed.process_index() == 0
    val_loss, reason = None, "done"
    bar = tqdm(total=args.steps, initial=state["step"], unit="step", dynamic_ncols=True,
               smoothing=0.1, disable=not lead)
    learning_rate = fungrad.jit(schedule)  # 45 us a call, where the eager schedule takes 0.5 ms
    t_session = time.perf_counter()
    t_start = t_session - state["elapsed"]  # wall_time counts the earlier parts of a resumed run
    with train.MetricsWriter(run_dir) if lead else contextlib.nullcontext() as log:
        while state["step"] < args.steps and reason == "done":
            step = state["step"]
            t0 = time.perf_counter()
            params, opt_state, loss, grad_norm = take_step(state)
            loss = float(loss)
            dt = time.perf_counter() - t0
            state.update(params=params, opt_state=opt_state, step=step + 1,
                         elapsed=time.perf_counter() - t_start)
            record = {"train_loss": loss, "lr": float(learning_rate(step)), "grad_norm": grad_norm,
                      "tokens_per_sec": tokens_per_step / dt, "wall_time": state["elapsed"]}
            if state["step"] % args.eval_interval == 0 or state["step"] == args.steps:
                val_loss = record["val_loss"] = evaluate(model_params(state))
            if lead:
                log.write(state["step"], **record)
            bar.set_postfix(loss=f"{loss:.3f}", val="-" if val_loss is None else f"{val_loss:.3f}",
                            tok_s=f"{tokens_per_step / dt:,.0f}", refresh=False)
            bar.update()
            reason = stop_reason(stop, state, args, time.perf_counter() - t_session)
            if lead and state["step"] % args.checkpoint_interval == 0:
                train.save_checkpoint(checkpoint, state)
    bar.close()
    return describe(reason, args), val_loss


def finish_training(args: argparse.Namespace, run_dir: str, state: dict, evaluate: Any,
                    reason: str, val_loss: float | None, script: str, what: str = "") -> None:
    """After ``train_loop``: the final validation loss (``evaluate``, unless the last step
    measured it: pass None to always measure, ``what`` saying how, and the metrics log then
    gets it as the last step's), the last checkpoint, and how to resume ``script`` when
    something stopped the run."""
    measure = val_loss is None or reason != "done"
    if measure:
        val_loss = evaluate(model_params(state))
    if distributed.process_index():
        return
    if measure:
        with train.MetricsWriter(run_dir) as log:
            log.write(state["step"], val_loss=val_loss)
    checkpoint = os.path.join(run_dir, CHECKPOINT_FILE)
    train.save_checkpoint(checkpoint, state)
    print(f"step {state['step']}/{args.steps}: validation loss {val_loss:.4f}{what} after "
          f"{state['elapsed'] / 60:.1f} min of training; checkpoint {checkpoint}")
    if reason != "done":
        print(f"stopped by {reason}; continue with:\n"
              f"  python examples/{script} --resume {run_dir}")


def main(argv: list[str] | None = None) -> None:
    stop = StopFlag()
    ap = parser()
    args, run_dir = prepare_run(ap, argv)
    args.processes = processes_for(args)
    distributed.spawn(train_job, (args, run_dir, stop), nprocs=args.processes)


def train_job(args: argparse.Namespace, run_dir: str, stop: StopFlag) -> None:
    """The run, on each of its processes: every process trains on its shard of each batch
    and evaluates its shard of the validation batches; process 0 (this one) also writes
    the run directory, shows progress and samples. The others ignore Ctrl-C: process 0
    decides when they all stop."""
    lead = distributed.process_index() == 0
    text = load_text()
    tok = CharTokenizer.train(text)
    train_data, val_data = split_data(tok, text)
    cfg = model_config(args, tok.vocab_size)
    with distributed.process_axis(AXIS):
        if not args.steps:  # a new run filling its time budget (a resumed one has its plan)
            plan_steps(args, cfg, train_data)
        opt, schedule = make_optimizer(args)
        state = initial_state(args, cfg, opt)
        checkpoint = os.path.join(run_dir, CHECKPOINT_FILE)
        n_params = nn.count_params(state["params"])
        if args.resume:
            state = train.load_checkpoint(checkpoint, like=state)
        elif lead:
            os.makedirs(run_dir, exist_ok=True)
            write_config(run_dir, args, cfg, n_params, len(train_data), len(val_data))
            tok.save(run_dir)
        train_step, val_loss_fn = make_steps(cfg, opt, args.processes)
        val_batches = [distributed.shard(get_batch(val_data, args.seed, VAL_STREAM, i,
                                                   args.batch_size, args.block_size))
                       for i in range(args.eval_batches)]

        def mean_loss(params: Any, batches: Iterable[tuple[Any, Any]]) -> float:
            """The mean over every process's shards of ``batches``."""
            local = np.mean([float(val_loss_fn(params, x, y)) for x, y in batches])
            return float(distributed.pmean(jnp.asarray(local), AXIS))

        evaluate = lambda params: mean_loss(params, val_batches)
        evaluate_split = lambda params: mean_loss(params, map(distributed.shard, split_batches(
            val_data, args.batch_size, args.block_size)))

        update_ema = make_ema_update(args.ema)

        def take_step(state: dict) -> tuple:
            """One step (see ``train_loop``); it also moves ``state["ema"]``."""
            batch = get_batch(train_data, state["data_seed"], TRAIN_STREAM, state["step"],
                              args.batch_size, args.block_size)
            step = jnp.asarray(state["step"], jnp.uint32)
            out = train_step(state["params"], state["opt_state"], *distributed.shard(batch),
                             state["dropout_key"], step)
            if "ema" in state:
                state["ema"] = update_ema(state["ema"], out[0], step)
            return out

        if lead:
            on = f" on {args.processes} processes" if args.processes > 1 else ""
            print(f"{n_params / 1e6:.2f}M parameters, vocab {cfg.vocab_size}, "
                  f"{len(train_data):,} training characters; run directory {run_dir}")
            print(f"training: step {state['step']} -> {args.steps}, "
                  f"{args.batch_size * args.block_size} tokens per step{on} "
                  "(Ctrl-C stops with a checkpoint)", flush=True)
        reason, _ = train_loop(args, run_dir, state, schedule, take_step, evaluate, stop,
                               args.batch_size * args.block_size)
        finish_training(args, run_dir, state, evaluate_split, reason, None, "shakespeare_gpt.py",
                        " (the whole validation split" + (", the params' moving average)"
                                                          if args.ema else ")"))
        if args.ema:
            last = evaluate_split(state["params"])
            if lead:
                print(f"the last step's params: validation loss {last:.4f}")
    if not lead:
        return
    if args.sample_chars and not stop.set:
        write_samples(run_dir, Model(gpt2, model_params(state), cfg), tok, args, stop,
                      state["step"])
    print(f"view the curves:  python -m fungrad.dashboard {run_dir}\n"
          f"sample more:      python examples/sample.py {run_dir} --prompt \"ROMEO:\"")


def write_samples(run_dir: str, model: Model, tok: CharTokenizer, args: argparse.Namespace,
                  stop: StopFlag, step: int) -> None:
    """Print a sample as it is produced and append it to ``samples.txt``."""
    print(f"---- sample (temperature {args.temperature}) ----", flush=True)
    text = []
    for ch in sample_chars(model, tok, "\n", args.sample_chars, temperature=args.temperature,
                           top_k=args.top_k, key=random.PRNGKey(args.seed + 1)):
        text.append(ch)
        print(ch, end="", flush=True)
        if stop.set:
            break
    print()
    with open(os.path.join(run_dir, SAMPLES_FILE), "a") as f:  # a resumed run adds its own
        f.write(f"---- step {step}, temperature {args.temperature} ----\n{''.join(text)}\n")


if __name__ == "__main__":
    main()
