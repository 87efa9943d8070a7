"""Grokking (Power et al., 2022): a small transformer learns modular division long after it
has memorised its training set.

The task is ``a / b mod p`` (``a`` in ``[0, p)``, ``b`` in ``[1, p)``): each example is the
four tokens ``a ÷ b =`` and the label is the ``c`` with ``c * b = a (mod p)``. A fraction of
all pairs (``--train-frac``) is the training set, the rest the validation set. A one-block
GPT-2 (``fungrad.models.gpt2``) is trained with AdamW and strong weight decay
(``weight_decay=1``): training accuracy saturates within a few hundred steps, while
validation accuracy stays near chance for much longer, then climbs to 100% as weight decay
pushes the network from memorising to the general rule.

Writes ``accuracy.png`` (both accuracies against the step, log scale) and
``metrics.jsonl``, and prints the steps at which each accuracy first reaches 99%.

Run:  python examples/grokking.py                  (p=97)
      python examples/grokking.py --quick          (p=11, seconds)
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import gallery  # the helper beside this script
import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random, train
from fungrad.models import gpt2

THRESHOLD = 0.99


def division_table(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Every example ``[a, ÷, b, =]`` (token ids; ``÷`` is ``p``, ``=`` is ``p + 1``) and its
    label ``a * b^(p-2) mod p`` (``b``'s inverse by Fermat's little theorem)."""
    a, b = np.meshgrid(np.arange(p), np.arange(1, p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    inverse = np.array([pow(int(v), p - 2, p) for v in b])
    tokens = np.stack([a, np.full_like(a, p), b, np.full_like(a, p + 1)], axis=1)
    return tokens.astype(np.int32), (a * inverse % p).astype(np.int32)


def split(tokens: np.ndarray, labels: np.ndarray, frac: float, seed: int) -> tuple[tuple, tuple]:
    order = np.random.default_rng(seed).permutation(len(tokens))
    cut = int(frac * len(tokens))
    return (tokens[order[:cut]], labels[order[:cut]]), (tokens[order[cut:]], labels[order[cut:]])


def model_config(args: argparse.Namespace) -> gpt2.Config:
    return gpt2.Config(vocab_size=args.p + 2, n_positions=4, n_embd=args.n_embd,
                       n_layer=args.n_layer, n_head=4, embd_pdrop=0.0, attn_pdrop=0.0,
                       resid_pdrop=0.0,
                       tie_word_embeddings=False, bos_token_id=None, eos_token_id=None)


def make_steps(cfg: gpt2.Config, opt: optim.GradientTransformation) -> tuple[Any, Any]:
    """The jitted train step and accuracy: only the last position (after ``=``) is read."""
    def logits(params, x):
        return gpt2.apply(params, cfg, x)[0][:, -1]

    def loss_fn(params, x, y):
        return jnp.mean(nn.softmax_cross_entropy_with_integer_labels(logits(params, x), y))

    def train_step(params, opt_state, x, y):
        loss, grads = fungrad.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    accuracy = lambda params, x, y: jnp.mean(jnp.argmax(logits(params, x), -1) == y)
    return fungrad.jit(train_step, donate_argnums=(0, 1)), fungrad.jit(accuracy)


def plot(history: list[dict], reached: dict, p: int):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        steps = [h["step"] for h in history]
        for name, colour in (("train_acc", "tab:blue"), ("val_acc", "tab:red")):
            ax.plot(steps, [h[name] for h in history], color=colour, label=name.replace("_acc", ""))
            if reached[name] is not None:
                ax.axvline(reached[name], color=colour, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.set_title(f"grokking: a / b mod {p}")
        ax.legend(loc="center right")
        return fig
    return draw


def main(argv: list[str] | None = None) -> None:
    ap = gallery.parser(__doc__)
    ap.add_argument("--p", type=int, default=97, help="the prime modulus")
    ap.add_argument("--train-frac", type=float, default=0.3,
                    help="fraction of all pairs used for training")
    ap.add_argument("--steps", type=int, default=4000, help="most optimisation steps")
    ap.add_argument("--batch-size", type=int, default=512, help="examples per step")
    ap.add_argument("--lr", type=float, default=3e-3,
                    help="AdamW learning rate (after 10 warm-up steps)")
    ap.add_argument("--weight-decay", type=float, default=1.0, help="AdamW weight decay")
    ap.add_argument("--n-layer", type=int, default=1, help="transformer blocks")
    ap.add_argument("--n-embd", type=int, default=128, help="width of the residual stream")
    ap.add_argument("--eval-every", type=int, default=10,
                    help="steps between accuracy measurements")
    ap.add_argument("--patience", type=int, default=100,
                    help="steps to go on after validation accuracy reaches 99%%")
    args = ap.parse_args(argv)
    if args.quick:
        args.p, args.steps, args.n_layer, args.n_embd, args.eval_every = 11, 40, 1, 32, 5
    if args.p < 3 or any(args.p % d == 0 for d in range(2, int(args.p ** 0.5) + 1)):
        ap.error(f"--p must be a prime >= 3, got {args.p}")
    if not 0 < args.train_frac < 1:
        ap.error(f"--train-frac must be in (0, 1), got {args.train_frac}")
    run_dir = gallery.start_run("grokking", args)

    (x_train, y_train), (x_val, y_val) = split(*division_table(args.p), args.train_frac, args.seed)
    cfg = model_config(args)
    params = gpt2.init(random.PRNGKey(args.seed), cfg)
    schedule = optim.linear_schedule(0.0, args.lr, 10)
    opt = optim.adamw(schedule, b1=0.9, b2=0.98, weight_decay=args.weight_decay)
    opt_state = opt.init(params)
    train_step, accuracy = make_steps(cfg, opt)
    print(f"a / b mod {args.p}: {len(x_train)} training pairs, {len(x_val)} validation pairs; "
          f"{nn.count_params(params):,} parameters; AdamW lr {args.lr:g}, "
          f"weight decay {args.weight_decay:g}")

    rng = np.random.default_rng(args.seed + 1)
    batch = min(args.batch_size, len(x_train))
    reached: dict[str, int | None] = {"train_acc": None, "val_acc": None}
    history, t0, stop_at = [], time.perf_counter(), args.steps
    with train.MetricsWriter(run_dir) as log:
        for step in range(1, args.steps + 1):
            idx = rng.choice(len(x_train), batch, replace=False)
            params, opt_state, loss = train_step(params, opt_state, jnp.asarray(x_train[idx]),
                                                 jnp.asarray(y_train[idx]))
            if step % args.eval_every and step != stop_at:
                continue
            record = {"step": step, "train_loss": float(loss),
                      "train_acc": float(accuracy(params, x_train, y_train)),
                      "val_acc": float(accuracy(params, x_val, y_val)),
                      "wall_time": time.perf_counter() - t0}
            history.append(record)
            log.write(**record)
            for name, when in list(reached.items()):
                if when is None and record[name] >= THRESHOLD:
                    reached[name] = step
                    print(f"step {step:6d}: {name.replace('_acc', '')} accuracy reached 99% "
                          f"({record['wall_time']:.0f} s)", flush=True)
                    if name == "val_acc":
                        stop_at = min(args.steps, step + args.patience)
            if step % (50 * args.eval_every) == 0:
                print(f"step {step:6d}: loss {record['train_loss']:.4f}, train accuracy "
                      f"{record['train_acc']:.3f}, validation accuracy {record['val_acc']:.3f}",
                      flush=True)
            if step >= stop_at:
                break
    last = history[-1]
    print(f"after {last['step']} steps ({last['wall_time']:.0f} s): train accuracy "
          f"{last['train_acc']:.3f}, validation accuracy {last['val_acc']:.3f}")
    for name, label in (("train_acc", "train"), ("val_acc", "validation")):
        when = reached[name]
        at = when if when is not None else "not within the run"
        print(f"{label} accuracy reached 99% at step: {at}")
    gallery.save_picture(run_dir, "accuracy.png", plot(history, reached, args.p))
    gallery.finish(run_dir)


if __name__ == "__main__":
    main()
