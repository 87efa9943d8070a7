"""One AdamW step over a 10M-parameter tree: fungrad.jit vs optax under jax.jit.

Prints milliseconds per step (minimum and median over alternating rounds), the ratio
and the load average. ``--strategy`` picks fungrad's CPU fusion strategy.
Run: python benchmarks/bench_optim.py [--strategy blocked|numpy|numexpr]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved, load_average, row  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as fnp  # noqa: E402
from fungrad import optim  # noqa: E402


def _tree(rng: np.random.Generator) -> dict:
    # 10.0M parameters in GPT-like blocks: 16 layers of (384x768 + 768x384 + 384) plus an embedding
    shapes = {f"layer{i}": {"w_in": (384, 768), "w_out": (768, 384), "b": (384,)}
              for i in range(16)}
    shapes["embedding"] = (1500, 384)
    return fungrad.tree.map(lambda s: rng.standard_normal(s).astype(np.float32), shapes,
                            is_leaf=lambda s: isinstance(s, tuple))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default=None, help="fungrad fusion strategy")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import jax
    import optax
    from fungrad.compiler import fusion
    if args.strategy:
        fusion.set_strategy(args.strategy)
    rng = np.random.default_rng(0)
    params, grads = _tree(rng), _tree(rng)
    n = sum(p.size for p in fungrad.tree.leaves(params))
    print(f"AdamW step over {n / 1e6:.1f}M float32 parameters (jax {jax.__version__}, fungrad "
          f"fusion {fusion.strategy()!r}), load {load_average()}")

    fg_opt = optim.adamw(1e-3, weight_decay=0.01)
    fg_p, fg_g = fungrad.tree.map(fnp.asarray, params), fungrad.tree.map(fnp.asarray, grads)
    fg_s = fg_opt.init(fg_p)

    def fg_update(p, s, g):
        u, s = fg_opt.update(g, s, p)
        return optim.apply_updates(p, u), s
    fg_step = fungrad.jit(fg_update, donate_argnums=(0, 1))
    state = {"p": fg_p, "s": fg_s}

    def run_fg():
        state["p"], state["s"] = fg_step(state["p"], state["s"], fg_g)
        return state["p"]

    ox_opt = optax.adamw(1e-3, weight_decay=0.01)
    jx_p, jx_g = jax.tree.map(jax.numpy.asarray, params), jax.tree.map(jax.numpy.asarray, grads)
    jx_state = {"p": jx_p, "s": ox_opt.init(jx_p)}

    def jx_update(p, s, g):
        u, s = ox_opt.update(g, s, p)
        return optax.apply_updates(p, u), s
    jx_step = jax.jit(jx_update, donate_argnums=(0, 1))

    def run_jax():
        jx_state["p"], jx_state["s"] = jx_step(jx_state["p"], jx_state["s"], jx_g)
        return jx_state["p"]

    times = interleaved({"fungrad": run_fg, "jax": lambda: jax.block_until_ready(run_jax())},
                        rounds=args.rounds, number=3)
    (fg_min, fg_med), (jx_min, jx_med) = times["fungrad"], times["jax"]
    print(row("adamw step min (ms)", fungrad=fg_min * 1e3, jax_optax=jx_min * 1e3,
              ratio=fg_min / jx_min))
    print(row("adamw step median (ms)", fungrad=fg_med * 1e3, jax_optax=jx_med * 1e3,
              ratio=fg_med / jx_med))
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
