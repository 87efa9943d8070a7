"""Speculative sampling: acceptance rate and speed-up over plain decoding of the target.

Two character-level GPT-2s are trained briefly on the bundled Shakespeare text (a
target and a much smaller draft), then the target decodes ``--tokens`` characters
plainly and speculatively, greedy and sampled; the table gives tokens/s, the draft's
acceptance rate and the speed-up. Random-weight models would accept almost nothing, so
the training is part of the benchmark (``--steps``, a minute or two on a CPU).
Run: python benchmarks/bench_speculative.py [--steps 400] [--tokens 200] [--gamma 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import resources

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import load_average  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as jnp  # noqa: E402
from fungrad import optim, random  # noqa: E402
from fungrad.models import gpt2  # noqa: E402
from fungrad.text import CharTokenizer, Model, generate, speculative_generate  # noqa: E402


def train(cfg: gpt2.Config, data: np.ndarray, steps: int, seed: int) -> dict:
    """A few hundred AdamW steps on random windows of ``data``."""
    params = gpt2.init(random.PRNGKey(seed), cfg)
    opt = optim.adamw(optim.warmup_cosine_decay_schedule(0.0, 3e-3, 50, steps, 3e-4),
                      weight_decay=0.01)
    state = opt.init(params)

    @fungrad.jit
    def step(params, state, x, y):
        loss, grads = fungrad.value_and_grad(gpt2.loss)(params, cfg, x, y)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    rng = np.random.default_rng(seed)
    T = 64
    for _ in range(steps):
        starts = rng.integers(0, len(data) - T - 1, 16)
        x = np.stack([data[s:s + T] for s in starts])
        y = np.stack([data[s + 1:s + T + 1] for s in starts])
        params, state, loss = step(params, state, jnp.asarray(x), jnp.asarray(y))
    print(f"  trained {cfg.n_layer} layers x {cfg.n_embd}: final train loss {float(loss):.3f}")
    return params


def timed(fn) -> tuple[float, object]:
    fn()  # compile
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400, help="training steps per model (default 400)")
    ap.add_argument("--tokens", type=int, default=200, help="characters to generate (default 200)")
    ap.add_argument("--gamma", type=int, default=4, help="draft tokens per target call (default 4)")
    args = ap.parse_args()
    text = resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()
    tok = CharTokenizer.train(text)
    data = np.asarray(tok.encode(text), np.int32)
    common = dict(vocab_size=tok.vocab_size, n_positions=512, embd_pdrop=0.0, attn_pdrop=0.0,
                  resid_pdrop=0.0)
    target_cfg = gpt2.Config(n_layer=6, n_head=6, n_embd=192, **common)
    draft_cfg = gpt2.Config(n_layer=1, n_head=2, n_embd=64, **common)
    print(f"training (load average {load_average()})")
    target = Model(gpt2, train(target_cfg, data, args.steps, 0), target_cfg)
    draft = Model(gpt2, train(draft_cfg, data, args.steps, 1), draft_cfg)
    prompt = tok.encode("ROMEO:\n")
    print(f"decoding {args.tokens} characters, gamma {args.gamma} (load average {load_average()})")
    print(f"{'sampling':<22}{'plain tok/s':>12}{'spec tok/s':>12}{'accepted':>10}{'speed-up':>10}")
    for name, kwargs in [("greedy", dict(temperature=0.0)),
                         ("temperature 0.8", dict(temperature=0.8))]:
        key = random.PRNGKey(3)
        plain_s, _ = timed(lambda: generate(target, [prompt], max_new_tokens=args.tokens, key=key,
                                            **kwargs))
        spec_s, (out, stats) = timed(lambda: speculative_generate(
            target, draft, prompt, max_new_tokens=args.tokens, gamma=args.gamma, key=key, **kwargs))
        print(f"{name:<22}{args.tokens / plain_s:12.1f}{args.tokens / spec_s:12.1f}"
              f"{stats.acceptance_rate:10.2f}{plain_s / spec_s:9.2f}x")
    print("sample:", tok.decode(prompt + out).replace("\n", " | ")[:120])


if __name__ == "__main__":
    main()
