"""Decoding with a KV cache, and greedy, beam, top-k and top-p sampling side by side.

Part 1, speed. Without a cache, every new token reruns the model over the whole prefix, so a
token costs more the longer the text is. With the cache (``gpt2.init_cache``, one
preallocated ``KVCache`` per layer written at the current position), a token is one step
over one position that attends to the stored keys and values. The script times one decode
step both ways at several prefix lengths (both jitted, compiled beforehand) and prints a
table; ``decode_time.png`` plots it.

Part 2, sampling. A small character-level GPT-2 is trained for a few hundred steps on the
bundled tiny-Shakespeare text (or, with ``--run RUN_DIR``, a run of
``examples/shakespeare_gpt.py`` is loaded), then continues the same prompts by greedy
decoding, beam search (``fungrad.text.beam_search``), top-k and top-p sampling
(``fungrad.text.generate``). Next to each continuation: its mean log-probability per
character under the model, and the fraction of its 4-grams that are distinct (greedy and
beam text is likely but tends to repeat itself; sampling is less likely per character and
more varied). The continuations go to ``samples.txt``.

Run:  python examples/kv_cache.py
      python examples/kv_cache.py --run runs/<timestamp>     (the main job's model)
      python examples/kv_cache.py --quick
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from importlib import resources
from typing import Any

import gallery  # the helper beside this script
import numpy as np
from sample import load_model  # loads a run of examples/shakespeare_gpt.py

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random, train
from fungrad.models import gpt2
from fungrad.text import CharTokenizer, Model, Sampling, beam_search, decode_functions, generate

PROMPTS = ["ROMEO:\n", "First Citizen:\nWe ", "KING HENRY:\nMy lord, "]


# --------------------------------------------------------------------------- the model

def train_char_model(args: argparse.Namespace,
                     log: train.MetricsWriter) -> tuple[Model, CharTokenizer]:
    """A character-level GPT-2 trained for ``args.steps`` steps on tiny Shakespeare."""
    text = resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()
    tok = CharTokenizer.train(text)
    data = np.array(tok.encode(text), np.int32)
    cfg = gpt2.Config(vocab_size=tok.vocab_size, n_positions=args.block_size, n_embd=args.n_embd,
                      n_layer=args.n_layer, n_head=4, embd_pdrop=0.0, attn_pdrop=0.0,
                      resid_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    params = gpt2.init(random.PRNGKey(args.seed), cfg)
    schedule = optim.warmup_cosine_decay_schedule(0.0, 3e-3, min(20, args.steps // 4),
                                                  args.steps, 3e-4)
    opt = optim.adamw(schedule, b2=0.99, weight_decay=0.1)
    opt_state = opt.init(params)

    @fungrad.jit
    def step(params, opt_state, x, y):
        loss, grads = fungrad.value_and_grad(gpt2.loss)(params, cfg, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    rng, t0 = np.random.default_rng(args.seed), time.perf_counter()
    # Short windows train faster; positions beyond are rarely used here.
    context = min(args.block_size, 64)
    for i in range(1, args.steps + 1):
        rows = rng.integers(0, len(data) - context - 1, 16)[:, None] + np.arange(context)
        params, opt_state, loss = step(params, opt_state, data[rows], data[rows + 1])
        log.write(i, train_loss=loss)
        if i % 100 == 0 or i == args.steps:
            print(f"step {i}: loss {float(loss):.3f} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    return Model(gpt2, params, cfg), tok


# --------------------------------------------------------------------------- part 1: speed

def best_ms(fn: Any, repeat: int) -> float:
    """The fastest of ``repeat`` calls of ``fn()``, in milliseconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fungrad.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def cached_steps(advance: Any, params: Any, token: Any, cache: Any) -> Any:
    """A function that runs one more cached decode step on each call (the cache is
    donated to each step and replaced by the one it returns); compiled here."""
    state = {"cache": advance(params, token, cache)[1]}

    def step():
        logits, state["cache"] = advance(params, token, state["cache"])
        return logits
    return step


def time_decoding(model: Model, lengths: list[int], repeat: int) -> list[dict]:
    """Milliseconds for one new token after a prefix of each length: the full forward pass
    over the prefix, and one cached step."""
    cfg, params = model.cfg, model.params
    full = fungrad.jit(lambda params, tokens: gpt2.apply(params, cfg, tokens)[0][:, -1])
    prefill, _, advance = decode_functions(gpt2, cfg, Sampling(temperature=0.0))
    rng, rows = np.random.default_rng(0), []
    for length in lengths:
        tokens = rng.integers(0, cfg.vocab_size, (1, length)).astype(np.int32)
        full(params, tokens)                                                   # compile this length
        full_ms = best_ms(functools.partial(full, params, tokens), repeat)
        cache = gpt2.init_cache(cfg, 1, length + repeat + 2)
        _, cache = prefill(params, tokens[:, :-1], np.ones((1, length - 1), bool), cache)
        cached_ms = best_ms(cached_steps(advance, params, jnp.asarray(tokens[:, -1]), cache),
                            repeat)
        rows.append({"prefix": length, "full_ms": full_ms, "cached_ms": cached_ms,
                     "speedup": full_ms / cached_ms})
    return rows


def plot_times(rows: list[dict]):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 3.4))
        lengths = [r["prefix"] for r in rows]
        ax.plot(lengths, [r["full_ms"] for r in rows], "o-",
                label="no cache: forward over the prefix")
        ax.plot(lengths, [r["cached_ms"] for r in rows], "o-", label="KV cache: one position")
        ax.set_xlabel("prefix length (tokens)")
        ax.set_ylabel("ms per new token")
        ax.set_yscale("log")
        ax.legend()
        return fig
    return draw


# --------------------------------------------------------------------------- part 2: sampling

def decoders(args: argparse.Namespace) -> dict[str, Any]:
    """Each decoding method as ``f(model, prompt_ids, key) -> new ids``."""
    n = args.new_chars
    return {
        "greedy": lambda m, p, key: generate(m, [p], max_new_tokens=n, temperature=0.0)[0],
        "beam (4 beams)": lambda m, p, key: beam_search(
            m, p, num_beams=4, max_new_tokens=n)[0].tokens,
        f"top-k (k=10, T={args.temperature:g})": lambda m, p, key: generate(
            m, [p], max_new_tokens=n, temperature=args.temperature, top_k=10, key=key)[0],
        f"top-p (p=0.9, T={args.temperature:g})": lambda m, p, key: generate(
            m, [p], max_new_tokens=n, temperature=args.temperature, top_p=0.9, key=key)[0],
    }


def mean_logprob(model: Model, prompt: list[int], new: list[int]) -> float:
    """Mean log-probability per character of ``new`` after ``prompt`` under the model."""
    ids = np.array([prompt + new], np.int32)
    logits, _ = gpt2.apply(model.params, model.cfg, ids[:, :-1])
    logp = np.asarray(nn.log_softmax(logits[0, len(prompt) - 1:], axis=-1))
    return float(np.mean(logp[np.arange(len(new)), new]))


def distinct_4grams(text: str) -> float:
    grams = [text[i:i + 4] for i in range(len(text) - 3)]
    return len(set(grams)) / max(len(grams), 1)


def compare_sampling(model: Model, tok: CharTokenizer, args: argparse.Namespace,
                     run_dir: str) -> list[dict]:
    results = []
    with open(os.path.join(run_dir, "samples.txt"), "w") as f:
        for i, prompt in enumerate(PROMPTS):
            ids = tok.encode(prompt)
            print(f"\n==== prompt {prompt!r}")
            for name, decode in decoders(args).items():
                new = decode(model, ids, random.fold_in(random.PRNGKey(args.seed), i))
                text = tok.decode(new)
                r = {"prompt": i, "method": name, "logprob": mean_logprob(model, ids, new),
                     "distinct4": distinct_4grams(text)}
                results.append(r)
                print(f"-- {name}: log-prob/char {r['logprob']:.3f}, "
                      f"distinct 4-grams {r['distinct4']:.2f}")
                print(prompt + text)
                f.write(f"==== {prompt!r} -- {name}\n{prompt}{text}\n")
    return results


def main(argv: list[str] | None = None) -> None:
    ap = gallery.parser(__doc__)
    ap.add_argument("--run", default=None, metavar="RUN_DIR",
                    help="use the model of a shakespeare_gpt.py run instead of training one")
    ap.add_argument("--steps", type=int, default=400, help="training steps of the small model")
    ap.add_argument("--n-layer", type=int, default=4, help="blocks of the small model")
    ap.add_argument("--n-embd", type=int, default=128, help="width of the small model")
    ap.add_argument("--block-size", type=int, default=512, help="positions of the small model")
    ap.add_argument("--new-chars", type=int, default=120, help="characters each method generates")
    ap.add_argument("--temperature", type=float, default=0.8, help="temperature of top-k and top-p")
    ap.add_argument("--repeat", type=int, default=5, help="timing repetitions (the best is kept)")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.n_layer, args.n_embd, args.block_size = 20, 1, 32, 64
        args.new_chars, args.repeat = 16, 2
    if min(args.steps, args.n_layer, args.new_chars, args.repeat) < 1 or args.n_embd % 4:
        ap.error("--steps, --n-layer, --new-chars and --repeat must be >= 1, "
                 "--n-embd a multiple of 4")
    run_dir = gallery.start_run("kv_cache", args)
    with train.MetricsWriter(run_dir) as log:
        model, tok = load_model(args.run) if args.run else train_char_model(args, log)
        top = model.cfg.n_positions - args.repeat - 2
        lengths = [n for n in (8, 16, 32, 64, 128, 256, 384, 500) if n <= top] + [top]
        rows = time_decoding(model, sorted(set(lengths)), args.repeat)
        for r in rows:  # the prefix length is the step of these curves
            log.write(r["prefix"], full_ms=r["full_ms"], cached_ms=r["cached_ms"])
    print(f"\ndecode time per token, GPT-2 with {model.cfg.n_layer} layers of width "
          f"{model.cfg.n_embd} (best of {args.repeat}):")
    print(f"{'prefix':>7} {'no cache (ms)':>14} {'KV cache (ms)':>14} {'speed-up':>9}")
    for r in rows:
        print(f"{r['prefix']:>7} {r['full_ms']:>14.2f} {r['cached_ms']:>14.2f} "
              f"{r['speedup']:>8.1f}x")
    gallery.save_picture(run_dir, "decode_time.png", plot_times(rows))
    results = compare_sampling(model, tok, args, run_dir)
    print("\nmean over the prompts:")
    for name in decoders(args):
        mine = [r for r in results if r["method"] == name]
        logprob = np.mean([r["logprob"] for r in mine])
        distinct4 = np.mean([r["distinct4"] for r in mine])
        print(f"  {name:24s} log-prob/char {logprob:7.3f}   distinct 4-grams {distinct4:.2f}")
    gallery.finish(run_dir)


if __name__ == "__main__":
    main()
