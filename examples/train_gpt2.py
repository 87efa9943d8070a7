"""Train GPT-2 on any text file tokenized with byte-level BPE, nanoGPT style.

One command runs both stages:

* prepare: train a BPE tokenizer on the text (``--vocab-size`` tokens at most) or load one
  (``--tokenizer DIR``: GPT-2's ``encoder.json`` + ``vocab.bpe``, or ``tokenizer.tiktoken``),
  encode the text in pieces of about 1 MiB (cut at line ends) and write the tokens as flat
  binary shards (uint16 when the vocabulary fits, else uint32) plus ``meta.json`` into
  ``--data-dir`` (default ``RUN_DIR/data``). The text after the first ``1 - --val-fraction``
  of its bytes (from a line start on) is the validation split. A data directory that
  already holds the shards of the same settings is reused, so runs can share one;
  ``--prepare-only`` stops after this stage.
* train: a micro-batch is ``--batch-size`` random windows of ``--block-size + 1`` tokens read
  from the memory-mapped shards, a pure function of (seed, micro-batch index), so
  ``--resume RUN_DIR`` continues bit for bit. ``--grad-accum`` micro-batches make one AdamW
  step. The float32 master weights are cast to ``--dtype`` (bfloat16 on a GPU) for the
  forward and backward passes; the gradients, the optimiser and the loss's softmax stay in
  float32.

The run directory, training loop, optimiser, checkpointed state, Ctrl-C handling and
sampler are those of the main job, ``examples/shakespeare_gpt.py``: ``config.json``,
``metrics.jsonl`` (``python -m fungrad.dashboard RUN_DIR`` draws it), the atomic
``checkpoint.safetensors`` and ``samples.txt``.

Presets (``--preset``; any flag overrides its preset value): ``small`` (4 layers, 128 wide,
minutes on a CPU), ``gpt2`` (the 124M shape: 12 layers, 768 wide, 1024-token context, a
50,257-row embedding; for a GPU), ``quick`` (``--quick``: seconds, for the tests). A trained
tokenizer may have fewer tokens than the embedding has rows (BPE runs out of pairs to merge
on a small text); the other rows are never a target and sampling skips them.

Run:  python examples/train_gpt2.py                         (the bundled Shakespeare)
      python examples/train_gpt2.py --data my.txt --preset gpt2
      python examples/train_gpt2.py --resume runs/train_gpt2-<timestamp>
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any, NamedTuple

# Small models: one BLAS thread (see shakespeare_gpt.py); an explicit setting still wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gallery  # the helpers beside this script
import numpy as np
import shakespeare_gpt as main_job
from tqdm import tqdm

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random, train, tree
from fungrad.models import gpt2
from fungrad.safetensors import atomic_write
from fungrad.text import BPETokenizer, Model

NAME = "train_gpt2"
META_FILE = "meta.json"
PIECE_BYTES = 1 << 20         # text encoded per piece during prepare
BPE_SAMPLE_BYTES = 64 << 20   # a tokenizer is trained on at most this much of the training split
TRAIN_STREAM, VAL_STREAM = main_job.TRAIN_STREAM, main_job.VAL_STREAM
# Flags that may change when a run is resumed; every other setting comes from its config.json.
RESUME_FLAGS = ("max_minutes", "stop_at", "sample_tokens", "temperature", "top_k")
DTYPES = {"bfloat16": jnp.bfloat16, "float32": jnp.float32}

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128, "vocab_size": 1024,
              "dropout": 0.0, "batch_size": 8, "grad_accum": 2, "steps": 600, "lr": 3e-3,
              "min_lr": 1e-4, "warmup_steps": 60, "eval_interval": 100, "eval_batches": 8,
              "checkpoint_interval": 200, "shard_tokens": 1 << 24, "sample_tokens": 200},
    "gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024, "vocab_size": 50257,
             "dropout": 0.0, "batch_size": 8, "grad_accum": 8, "steps": 5000, "lr": 6e-4,
             "min_lr": 6e-5, "warmup_steps": 500, "eval_interval": 250, "eval_batches": 20,
             "checkpoint_interval": 500, "shard_tokens": 10 ** 8, "sample_tokens": 200},
    "quick": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "vocab_size": 300,
              "dropout": 0.0, "batch_size": 4, "grad_accum": 2, "steps": 8, "lr": 3e-3,
              "min_lr": 1e-4, "warmup_steps": 1, "eval_interval": 4, "eval_batches": 2,
              "checkpoint_interval": 4, "shard_tokens": 100_000, "sample_tokens": 20},
}


# --------------------------------------------------------------------------- settings

def parser() -> argparse.ArgumentParser:
    """The flags; those of the presets have no default of their own (the preset fills them)."""
    ap = gallery.parser(__doc__)

    def preset_flag(group: Any, flag: str, kind: type, what: str) -> None:
        dest = flag[2:].replace("-", "_")
        values = ", ".join(f"{name} {preset[dest]:g}" for name, preset in PRESETS.items())
        group.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=f"{what} ({values})")

    ap.add_argument("--preset", choices=list(PRESETS), default=argparse.SUPPRESS,
                    help="the sizes and schedule below; small unless --quick (--preset quick)")
    data = ap.add_argument_group("data")
    shakespeare = resources.files("fungrad").joinpath("data/tinyshakespeare.txt")
    data.add_argument("--data", default=str(shakespeare),
                      help="a UTF-8 text file (default: the bundled tiny-Shakespeare)")
    data.add_argument("--data-dir", default=None,
                      help="where the tokenizer and token shards go, or are reused from "
                           "(default: RUN_DIR/data)")
    data.add_argument("--tokenizer", metavar="DIR", default=None,
                      help="load this BPE tokenizer instead of training one "
                           "(GPT-2's encoder.json + vocab.bpe, or tokenizer.tiktoken)")
    data.add_argument("--val-fraction", type=float, default=0.1,
                      help="the last part of the text held out")
    preset_flag(data, "--shard-tokens", int, "tokens per shard file")
    data.add_argument("--prepare-only", action="store_true", help="stop after writing the shards")
    model = ap.add_argument_group("model (GPT-2)")
    preset_flag(model, "--n-layer", int, "transformer blocks")
    preset_flag(model, "--n-head", int, "attention heads per block")
    preset_flag(model, "--n-embd", int, "width of the residual stream")
    preset_flag(model, "--block-size", int, "context length in tokens")
    preset_flag(model, "--vocab-size", int, "embedding rows; the size a trained tokenizer aims at")
    preset_flag(model, "--dropout", float, "dropout rate (embeddings, attention, residuals)")
    opt = ap.add_argument_group("optimisation")
    preset_flag(opt, "--batch-size", int, "sequences per micro-batch")
    preset_flag(opt, "--grad-accum", int, "micro-batches per optimiser step")
    preset_flag(opt, "--steps", int, "planned optimiser steps; the schedule spans them")
    preset_flag(opt, "--lr", float, "peak learning rate")
    preset_flag(opt, "--min-lr", float, "learning rate at the last step")
    preset_flag(opt, "--warmup-steps", int, "linear warm-up from 0 to --lr")
    opt.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay of the matrices")
    opt.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                     help="compute dtype of the forward and backward passes "
                          "(auto: bfloat16 on a GPU, float32 on a CPU, where NumPy has no "
                          "bfloat16 matrix product)")
    run = ap.add_argument_group("run")
    preset_flag(run, "--eval-interval", int, "steps between validation losses")
    preset_flag(run, "--eval-batches", int, "validation micro-batches per evaluation")
    preset_flag(run, "--checkpoint-interval", int, "steps between checkpoints")
    run.add_argument("--max-minutes", type=float, default=0.0,
                     help="stop (with a checkpoint) after this many minutes of training in this "
                          "invocation; 0: no limit")
    run.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                     help="stop (with a checkpoint) after this step; the schedule still "
                          "spans --steps")
    run.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue the run in RUN_DIR with its settings (only --max-minutes, "
                          "--stop-at and the sampling flags may change)")
    sample = ap.add_argument_group("sampling at the end")
    preset_flag(sample, "--sample-tokens", int, "tokens to sample (0: none)")
    sample.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    sample.add_argument("--top-k", type=int, default=None,
                        help="sample from the k likeliest tokens")
    return ap


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject settings that cannot run, naming the flag."""
    for name in ("n_layer", "n_head", "n_embd", "batch_size", "grad_accum", "steps",
                 "eval_interval", "eval_batches", "checkpoint_interval", "shard_tokens"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.block_size < 2:
        ap.error(f"--block-size must be >= 2, got {args.block_size}")
    if args.vocab_size < 256:
        ap.error(f"--vocab-size must be >= 256 (the byte tokens), got {args.vocab_size}")
    if args.n_embd % args.n_head:
        ap.error(f"--n-embd {args.n_embd} must be divisible by --n-head {args.n_head}")
    if not 0 <= args.dropout < 1:
        ap.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 <= args.warmup_steps < args.steps:
        ap.error(f"--warmup-steps must be in [0, --steps), got {args.warmup_steps}")
    if not 0 < args.val_fraction < 1:
        ap.error(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    if args.max_minutes < 0 or args.sample_tokens < 0:
        ap.error("--max-minutes and --sample-tokens must be >= 0")
    if not os.path.isfile(args.data):
        ap.error(f"--data {args.data}: no such file")


def parse_args(ap: argparse.ArgumentParser,
               argv: list[str] | None) -> tuple[argparse.Namespace, str]:
    """Parse flags, fill in the preset and resolve paths and ``--dtype``; for ``--resume``
    take the run's saved settings. Returns (args, run_dir)."""
    args = ap.parse_args(argv)
    if args.resume:
        if not os.path.exists(os.path.join(args.resume, main_job.CHECKPOINT_FILE)):
            ap.error(f"--resume {args.resume}: no {main_job.CHECKPOINT_FILE} there")
        with open(os.path.join(args.resume, main_job.CONFIG_FILE)) as f:
            saved = json.load(f)["args"]
        changes = {k: getattr(args, k) for k in RESUME_FLAGS if hasattr(args, k)}
        return argparse.Namespace(**{**saved, **changes, "resume": args.resume}), args.resume
    if args.quick and getattr(args, "preset", "quick") != "quick":
        ap.error(f"--quick is --preset quick, not --preset {args.preset}")
    args.preset = "quick" if args.quick else getattr(args, "preset", "small")
    for name, value in PRESETS[args.preset].items():
        if not hasattr(args, name):
            setattr(args, name, value)
    check_args(ap, args)
    run_dir = args.out or os.path.join("runs", f"{NAME}-{time.strftime('%Y%m%d-%H%M%S')}")
    args.data = os.path.abspath(args.data)
    args.data_dir = os.path.abspath(args.data_dir or os.path.join(run_dir, "data"))
    args.tokenizer = args.tokenizer and os.path.abspath(args.tokenizer)
    if args.dtype == "auto":  # resolved once, so a resumed run computes as it started
        args.dtype = "bfloat16" if fungrad.devices()[0].platform == "gpu" else "float32"
    return args, run_dir


def model_config(args: argparse.Namespace) -> gpt2.Config:
    return gpt2.Config(vocab_size=args.vocab_size, n_positions=args.block_size, n_embd=args.n_embd,
                       n_layer=args.n_layer, n_head=args.n_head, embd_pdrop=args.dropout,
                       attn_pdrop=args.dropout, resid_pdrop=args.dropout, bos_token_id=None,
                       eos_token_id=None)


# --------------------------------------------------------------------------- prepare

def text_pieces(path: str, start: int, stop: int) -> Iterator[str]:
    """The text of bytes ``[start, stop)`` of ``path`` (both line starts) in pieces of about
    ``PIECE_BYTES``, each ending at a line end, so no piece splits a UTF-8 character."""
    with open(path, "rb") as f:
        f.seek(start)
        while f.tell() < stop:
            data = f.read(min(PIECE_BYTES, stop - f.tell()))
            if f.tell() < stop:
                data += f.readline(stop - f.tell())
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"--data {path}: not UTF-8 text ({e})") from None


def line_start(path: str, offset: int) -> int:
    """The first byte at or after ``offset`` of ``path`` that starts a line (or the file's size)."""
    if offset <= 0:
        return 0
    with open(path, "rb") as f:
        f.seek(offset - 1)
        f.readline()
        return f.tell()


class ShardWriter:
    """Appends token ids to ``{split}_000000.bin``, ``{split}_000001.bin``, ... of at most
    ``shard_tokens`` tokens each; a shard file is created only when it gets a token.
    ``shards`` lists ``[file name, tokens]`` of each."""

    def __init__(self, directory: str, split: str, dtype: np.dtype, shard_tokens: int) -> None:
        self.directory, self.split = directory, split
        self.dtype, self.shard_tokens = dtype, shard_tokens
        self.shards: list[list] = []

    def write(self, ids: list[int]) -> None:
        tokens = np.asarray(ids, dtype=self.dtype)
        while len(tokens):
            new = not self.shards or self.shards[-1][1] == self.shard_tokens
            if new:
                self.shards.append([f"{self.split}_{len(self.shards):06d}.bin", 0])
            n = min(len(tokens), self.shard_tokens - self.shards[-1][1])
            with open(os.path.join(self.directory, self.shards[-1][0]), "wb" if new else "ab") as f:
                tokens[:n].tofile(f)
            self.shards[-1][1] += n
            tokens = tokens[n:]


def prepare(args: argparse.Namespace) -> tuple[BPETokenizer, dict]:
    """Write (or reuse) ``args.data_dir``: the tokenizer, the token shards and ``meta.json``
    (written last, so a directory with it is complete). Returns the tokenizer and the meta."""
    settings = {"data": args.data, "data_bytes": os.path.getsize(args.data),
                "tokenizer": args.tokenizer, "vocab_size": args.vocab_size,
                "val_fraction": args.val_fraction,
                "shard_tokens": args.shard_tokens}
    meta_path = os.path.join(args.data_dir, META_FILE)
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta["settings"] != settings:
            differ = sorted(k for k in settings if meta["settings"].get(k) != settings[k])
            raise SystemExit(f"--data-dir {args.data_dir} holds shards made with other settings "
                             f"({', '.join(differ)}); choose another --data-dir")
        print(f"reusing the tokenizer and shards in {args.data_dir}")
        return BPETokenizer.load(args.data_dir), meta
    os.makedirs(args.data_dir, exist_ok=True)
    cut = line_start(args.data, int(os.path.getsize(args.data) * (1 - args.val_fraction)))
    if args.tokenizer:
        tok = BPETokenizer.load(args.tokenizer)
    else:
        sample_end = line_start(args.data, min(cut, BPE_SAMPLE_BYTES))
        sample = "".join(text_pieces(args.data, 0, sample_end))
        t0 = time.perf_counter()
        tok = BPETokenizer.train(sample, args.vocab_size)
        print(f"trained a BPE tokenizer of {tok.vocab_size:,} tokens on {len(sample):,} characters "
              f"({time.perf_counter() - t0:.1f} s)")
    if tok.vocab_size > args.vocab_size:
        raise SystemExit(f"--tokenizer {args.tokenizer} has {tok.vocab_size:,} tokens, more than "
                         f"--vocab-size {args.vocab_size:,}")
    tok.save(args.data_dir)
    dtype = np.dtype(np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32)
    shards = {}
    with tqdm(total=os.path.getsize(args.data), unit="B", unit_scale=True, desc="encoding") as bar:
        splits = (("train", (0, cut)), ("val", (cut, os.path.getsize(args.data))))
        for split, (start, stop) in splits:
            writer = ShardWriter(args.data_dir, split, dtype, args.shard_tokens)
            for piece in text_pieces(args.data, start, stop):
                writer.write(tok.encode_ordinary(piece))
                bar.update(len(piece.encode("utf-8")))
            shards[split] = writer.shards
    meta = {"settings": settings, "tokenizer_vocab": tok.vocab_size, "dtype": dtype.name,
            "shards": shards}
    atomic_write(meta_path, json.dumps(meta, indent=2).encode())
    n_train, n_val = sum(n for _, n in shards["train"]), sum(n for _, n in shards["val"])
    print(f"wrote {n_train:,} training and {n_val:,} validation tokens ({dtype.name}) in "
          f"{len(shards['train']) + len(shards['val'])} shards to {args.data_dir}")
    return tok, meta


# --------------------------------------------------------------------------- batches

class Windows:
    """Random windows of ``block_size + 1`` tokens from the memory-mapped shards of a split
    (only windows inside one shard; each shard weighted by its number of windows)."""

    def __init__(self, data_dir: str, meta: dict, split: str, block_size: int) -> None:
        shards = [np.memmap(os.path.join(data_dir, name), dtype=meta["dtype"], mode="r")
                  for name, n in meta["shards"][split] if n > block_size]
        if not shards:
            tokens = sum(n for _, n in meta["shards"][split])
            raise SystemExit(f"the {split} split holds no shard of more than --block-size "
                             f"{block_size} tokens (it has {tokens:,} tokens); use a longer --data "
                             "text, a smaller --block-size or a larger --val-fraction")
        counts = np.array([len(s) - block_size for s in shards])  # window starts per shard
        self.shards, self.block_size = shards, block_size
        self.ends = np.cumsum(counts)
        self.firsts = self.ends - counts

    def batch(self, seed: int, stream_id: int, index: int, batch_size: int) -> tuple[Any, Any]:
        """Micro-batch ``index`` of a stream: inputs and next-token targets ``(batch, block)``,
        a pure function of the arguments."""
        rng = np.random.default_rng([seed, stream_id, index])
        starts = rng.integers(0, self.ends[-1], batch_size)
        which = np.searchsorted(self.ends, starts, side="right")
        offsets = starts - self.firsts[which]
        rows = np.stack([self.shards[k][o:o + self.block_size + 1] for k, o in zip(which, offsets)])
        rows = rows.astype(np.int32)
        return jnp.asarray(rows[:, :-1]), jnp.asarray(rows[:, 1:])


# --------------------------------------------------------------------------- steps

def make_steps(cfg: gpt2.Config, opt: optim.GradientTransformation, dtype: Any, grad_accum: int
               ) -> tuple[Any, Any, Any]:
    """The jitted pieces of a step: ``accumulate`` adds one micro-batch's gradient, divided
    by ``grad_accum``, to a running sum; ``update`` applies the summed gradient; ``val_loss``.

    The params are float32 master weights; the loss casts them to ``dtype`` and computes
    the softmax cross-entropy of float32 logits, so the gradients come back in float32."""
    dropout = cfg.resid_pdrop > 0 or cfg.attn_pdrop > 0 or cfg.embd_pdrop > 0

    def loss(params, x, y, training, key):
        logits, _ = gpt2.apply(nn.cast_floating(params, dtype), cfg, x, train=training, key=key)
        return jnp.mean(nn.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), y))

    def accumulate(params, acc, x, y, dropout_key, index):
        key = random.fold_in(dropout_key, index)  # a pure function of (seed, micro-batch index)
        value, grads = fungrad.value_and_grad(loss)(params, x, y, dropout, key)
        return tree.map(lambda a, g: a + g / grad_accum, acc, grads), value

    def update(params, opt_state, grads):
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, nn.global_norm(grads)

    val_loss = lambda params, x, y: loss(params, x, y, False, None)
    return (fungrad.jit(accumulate, donate_argnums=1), fungrad.jit(update, donate_argnums=(0, 1)),
            fungrad.jit(val_loss))


# --------------------------------------------------------------------------- the run

class PaddedVocab(NamedTuple):
    """The tokenizer as the sampler sees it: ids of embedding rows beyond the tokenizer's
    vocabulary (never a training target) decode to nothing."""
    tok: BPETokenizer

    def encode(self, text: str) -> list[int]:
        return self.tok.encode_ordinary(text)

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode([i for i in ids if i < self.tok.vocab_size])


def write_config(run_dir: str, args: argparse.Namespace, cfg: gpt2.Config, n_params: int,
                 meta: dict) -> None:
    settings = {k: v for k, v in vars(args).items() if k not in ("resume", "out")}
    config = {"example": NAME, "args": settings, "model": dataclasses.asdict(cfg),
              "n_params": n_params,
              "tokens_per_step": args.batch_size * args.block_size * args.grad_accum,
              "data": meta}
    with open(os.path.join(run_dir, main_job.CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)


def write_samples(run_dir: str, model: Model, tok: BPETokenizer, args: argparse.Namespace,
                  stop: main_job.StopFlag, step: int) -> None:
    """Print a sample as it is produced and append it to ``samples.txt``."""
    print(f"---- sample (temperature {args.temperature}) ----", flush=True)
    text = []
    for piece in main_job.sample_chars(model, PaddedVocab(tok), "\n", args.sample_tokens,
                                       temperature=args.temperature, top_k=args.top_k,
                                       key=random.PRNGKey(args.seed + 1)):
        text.append(piece)
        print(piece, end="", flush=True)
        if stop.set:
            break
    print()
    with open(os.path.join(run_dir, main_job.SAMPLES_FILE), "a") as f:
        f.write(f"---- step {step}, temperature {args.temperature} ----\n{''.join(text)}\n")


def main(argv: list[str] | None = None) -> None:
    ap = parser()
    args, run_dir = parse_args(ap, argv)
    try:
        tok, meta = prepare(args)
    except KeyboardInterrupt:
        raise SystemExit(f"interrupted while preparing {args.data_dir}; it has no {META_FILE}, "
                         "so the next run prepares it again") from None
    if args.prepare_only:
        return
    stop = main_job.StopFlag()
    checkpoint = os.path.join(run_dir, main_job.CHECKPOINT_FILE)
    cfg = model_config(args)
    opt, schedule = main_job.make_optimizer(args)
    state = main_job.initial_state(args, cfg, opt)
    n_params = nn.count_params(state["params"])
    if args.resume:
        with open(os.path.join(run_dir, main_job.CONFIG_FILE)) as f:
            if json.load(f)["data"] != meta:
                raise SystemExit(f"--resume {run_dir}: the shards in {args.data_dir} are not those "
                                 "the run started with")
        state = train.load_checkpoint(checkpoint, like=state)
    else:
        os.makedirs(run_dir, exist_ok=True)
        write_config(run_dir, args, cfg, n_params, meta)
    train_windows = Windows(args.data_dir, meta, "train", args.block_size)
    val_windows = Windows(args.data_dir, meta, "val", args.block_size)
    accumulate, update, val_loss_fn = make_steps(cfg, opt, DTYPES[args.dtype], args.grad_accum)
    val_batches = [val_windows.batch(args.seed, VAL_STREAM, i, args.batch_size)
                   for i in range(args.eval_batches)]
    evaluate = lambda params: float(np.mean([float(val_loss_fn(params, x, y))
                                             for x, y in val_batches]))

    def take_step(state: dict) -> tuple:
        acc, losses = tree.map(jnp.zeros_like, state["params"]), []
        for micro in range(args.grad_accum):
            index = state["step"] * args.grad_accum + micro
            x, y = train_windows.batch(state["data_seed"], TRAIN_STREAM, index, args.batch_size)
            acc, loss = accumulate(state["params"], acc, x, y, state["dropout_key"],
                                   jnp.asarray(index, jnp.uint32))
            losses.append(loss)
        params, opt_state, grad_norm = update(state["params"], state["opt_state"], acc)
        return params, opt_state, sum(losses) / args.grad_accum, grad_norm

    tokens_per_step = args.batch_size * args.block_size * args.grad_accum
    print(f"{n_params / 1e6:.2f}M parameters ({args.preset}), vocab {cfg.vocab_size:,} (tokenizer "
          f"{tok.vocab_size:,}), {args.dtype} compute; run directory {run_dir}")
    print(f"training: step {state['step']} -> {args.steps}, {tokens_per_step:,} tokens per step "
          f"({args.grad_accum} x {args.batch_size} x {args.block_size}; "
          "Ctrl-C stops with a checkpoint)", flush=True)
    reason, val_loss = main_job.train_loop(args, run_dir, state, schedule, take_step, evaluate,
                                           stop, tokens_per_step)
    main_job.finish_training(args, run_dir, state, evaluate, reason, val_loss, f"{NAME}.py")
    if args.sample_tokens and not stop.set:
        write_samples(run_dir, Model(gpt2, state["params"], cfg), tok, args, stop, state["step"])
    gallery.finish(run_dir)


if __name__ == "__main__":
    main()
