"""Cost of one decoded token against the length of the context: GPT-2 (attention over a
KV cache) against Mamba (a fixed-size recurrent state), fungrad only.

For each position P the cache holds P + 8 slots; P tokens are prefilled, then 8 single
token steps are timed (minimum over rounds). GPT-2's step attends over the cache, so its
cost grows linearly with P on top of the fixed matmul cost; Mamba's step reads a state
whose size does not depend on P, so its cost stays flat.
Run: python benchmarks/bench_decode_position.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import load_average  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as jnp  # noqa: E402
from fungrad import random  # noqa: E402
from fungrad.models import gpt2, mamba  # noqa: E402

POSITIONS = (16, 64, 256, 1024, 2048)


def models() -> dict:
    """Two models of similar size (about 10M parameters, d 384, 6 layers)."""
    g = gpt2.Config(vocab_size=1000, n_positions=max(POSITIONS) + 8, n_embd=384, n_layer=6,
                    n_head=6)
    m = mamba.Config(vocab_size=1000, d_model=384, n_layers=6, dt_rank=24)
    return {"gpt2": (gpt2, g, gpt2.init(random.PRNGKey(0), g)),
            "mamba": (mamba, m, mamba.init(random.PRNGKey(0), m))}


def ms_per_token(module, cfg, params, position: int, rounds: int) -> float:
    step = fungrad.jit(lambda p, t, c: module.apply(p, cfg, t, cache=c), donate_argnums=2)
    prompt = jnp.ones((1, position), jnp.int32)
    token = jnp.ones((1, 1), jnp.int32)
    best = float("inf")
    for _ in range(rounds):
        cache = module.init_cache(cfg, 1, position + 8)
        _, cache = step(params, prompt, cache)
        logits, cache = step(params, token, cache)     # compiles the one-token step
        t0 = time.perf_counter()
        for _ in range(6):
            logits, cache = step(params, token, cache)
        logits.block_until_ready()
        best = min(best, (time.perf_counter() - t0) / 6)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per cell (default 3)")
    args = ap.parse_args()
    print(f"ms per decoded token (batch 1), load average {load_average()}")
    print(f"{'position':>10}" + "".join(f"{name:>10}" for name in ("gpt2", "mamba")))
    built = models()
    for position in POSITIONS:
        cells = [ms_per_token(*built[name], position, args.rounds) for name in ("gpt2", "mamba")]
        print(f"{position:>10}" + "".join(f"{c:10.2f}" for c in cells))


if __name__ == "__main__":
    main()
