"""Train a character-level GPT on the bundled tiny-Shakespeare text, then sample from it.

The whole model is in this file, nanoGPT style: a params dict and pure functions.
Run:  python examples/shakespeare_gpt.py [--steps 600] [--n-layer 4] ...
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from importlib import resources

import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random


@dataclasses.dataclass(frozen=True)
class Config:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128


def load_text() -> str:
    return resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()


def init_params(key, cfg: Config) -> dict:
    """GPT-2 style initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 L)."""
    keys = iter(random.split(key, 4 + 4 * cfg.n_layer))
    normal = lambda shape, std=0.02: std * random.normal(next(keys), shape)
    proj_std = 0.02 / math.sqrt(2 * cfg.n_layer)
    d = cfg.n_embd
    params = {
        "wte": normal((cfg.vocab_size, d)),
        "wpe": normal((cfg.block_size, d)),
        "ln_f": {"scale": jnp.ones(d), "bias": jnp.zeros(d)},
        "blocks": [],
    }
    for _ in range(cfg.n_layer):
        params["blocks"].append({
            "ln1": {"scale": jnp.ones(d), "bias": jnp.zeros(d)},
            "attn": {"w_qkv": normal((d, 3 * d)), "b_qkv": jnp.zeros(3 * d),
                     "w_out": normal((d, d), proj_std), "b_out": jnp.zeros(d)},
            "ln2": {"scale": jnp.ones(d), "bias": jnp.zeros(d)},
            "mlp": {"w_in": normal((d, 4 * d)), "b_in": jnp.zeros(4 * d),
                    "w_out": normal((4 * d, d), proj_std), "b_out": jnp.zeros(d)},
        })
    return params


def layer_norm(p: dict, x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * fungrad.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


def attention(p: dict, x, n_head: int):
    B, T, C = x.shape
    qkv = x @ p["w_qkv"] + p["b_qkv"]
    q, k, v = jnp.split(qkv, 3, axis=-1)
    heads = lambda t: jnp.transpose(jnp.reshape(t, (B, T, n_head, C // n_head)), (0, 2, 1, 3))
    q, k, v = heads(q), heads(k), heads(v)
    scores = (q @ jnp.swapaxes(k, -1, -2)) / math.sqrt(C // n_head)
    causal = jnp.tril(jnp.ones((T, T), dtype=bool))
    scores = jnp.where(causal, scores, -1e9)
    y = nn.softmax(scores, axis=-1) @ v
    y = jnp.reshape(jnp.transpose(y, (0, 2, 1, 3)), (B, T, C))
    return y @ p["w_out"] + p["b_out"]


def mlp(p: dict, x):
    return nn.gelu(x @ p["w_in"] + p["b_in"]) @ p["w_out"] + p["b_out"]


def forward(params: dict, cfg: Config, idx):
    """Logits for every position of the token array ``idx`` of shape (B, T)."""
    T = idx.shape[1]
    x = params["wte"][idx] + params["wpe"][:T]
    for block in params["blocks"]:
        x = x + attention(block["attn"], layer_norm(block["ln1"], x), cfg.n_head)
        x = x + mlp(block["mlp"], layer_norm(block["ln2"], x))
    x = layer_norm(params["ln_f"], x)
    return x @ params["wte"].T  # output head tied to the token embedding


def loss_fn(params: dict, cfg: Config, x, y):
    logits = forward(params, cfg, x)
    logp = nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--sample-chars", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    text = load_text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int32)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    cfg = Config(vocab_size=len(chars), n_layer=args.n_layer, n_embd=args.n_embd)
    rng = np.random.default_rng(args.seed)

    def batch(source: np.ndarray):
        starts = rng.integers(0, len(source) - cfg.block_size - 1, args.batch_size)
        x = np.stack([source[s:s + cfg.block_size] for s in starts])
        y = np.stack([source[s + 1:s + 1 + cfg.block_size] for s in starts])
        return jnp.asarray(x), jnp.asarray(y)

    params = init_params(random.PRNGKey(args.seed), cfg)
    schedule = optim.warmup_cosine_decay_schedule(0.0, args.lr, warmup_steps=min(100, args.steps // 10),
                                                  decay_steps=args.steps, end_value=args.lr / 10)
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(schedule, weight_decay=0.1))
    opt_state = opt.init(params)

    @fungrad.jit
    def train_step(params, opt_state, x, y):
        loss, grads = fungrad.value_and_grad(loss_fn)(params, cfg, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    eval_loss = fungrad.jit(lambda p, x, y: loss_fn(p, cfg, x, y))
    n_params = sum(p.size for p in fungrad.tree.leaves(params))
    print(f"{n_params / 1e6:.2f}M parameters, vocab {cfg.vocab_size}, {len(train)} training chars")
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        params, opt_state, loss = train_step(params, opt_state, *batch(train))
        if step % args.eval_every == 0 or step == args.steps:
            val_loss = np.mean([float(eval_loss(params, *batch(val))) for _ in range(8)])
            elapsed = time.perf_counter() - t0
            print(f"step {step:5d}  train loss {float(loss):.3f}  val loss {val_loss:.3f}  "
                  f"{1000 * elapsed / step:.1f} ms/step")

    # Sample with temperature from the model, one character at a time.
    logits_fn = fungrad.jit(lambda p, idx: forward(p, cfg, idx)[:, -1, :])
    context = list(data[:cfg.block_size])
    key = random.PRNGKey(args.seed + 1)
    for _ in range(args.sample_chars):
        key, sub = random.split(key)
        logits = logits_fn(params, jnp.asarray(np.array([context[-cfg.block_size:]], np.int32)))
        context.append(int(random.categorical(sub, logits / 0.8)[0]))
    print("---- sample ----")
    print("".join(chars[i] for i in context[cfg.block_size:]))


if __name__ == "__main__":
    main()
