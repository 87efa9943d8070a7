"""Language models: greedy decoding with the KV cache, and a train step, against Hugging
Face ``transformers`` (CPU torch) and ``jax.jit``, all three with the same random weights.

For each model of ``MODELS`` whose file exists (GPT-2 124M shape; a LLaMA and a Mamba of
comparable size when ``fungrad/models/llama.py`` / ``mamba.py`` are there), at batch 1 and
8, the script decodes ``--tokens`` tokens after a 16-token prompt (prefill not timed):
  * fungrad: one ``fungrad.jit`` step (``apply`` + argmax, cache donated) per token;
  * hf: ``generate(do_sample=False, use_cache=True)``, each step timed by a streamer;
  * jax: the same GPT-2 written with ``jax.numpy`` below, one ``jax.jit`` step per token
    (GPT-2 only).
It prints tokens/s measured in one process (the libraries in alternating rounds) and again
with each library alone in its own process (``--only LIB``, run through ``subprocess``),
next to the memory-bandwidth bound: the bytes of weights one decode step reads divided
by this machine's copy bandwidth (a large ``np.copyto``, bytes read plus written).
Then GPT-2's cost per token against the position in the context (16 to 1000; fungrad and
jax attend over a fixed 1024-slot cache, Hugging Face over a growing one), and a GPT-2
124M train step (B=4, T=64, value_and_grad + AdamW) against ``jax.jit``.

OpenBLAS (fungrad's matmuls) and torch use their default threads; when OPENBLAS_NUM_THREADS
is set, torch is given the same number (``torch.set_num_threads``; XLA keeps its own pool).
On a loaded 2-core machine one thread is much faster for these matrix-vector products
(spinning BLAS threads). The script prints the settings and the load average. ``--profile``
prints where fungrad's GPT-2 decode step spends its time.
Run: python benchmarks/bench_models.py [--models gpt2 llama mamba] [--tokens 32] [--rounds 3]
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, NamedTuple

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved, load_average, profile_executable  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as fnp  # noqa: E402
from fungrad import optim, tree  # noqa: E402

PROMPT = 16
BATCHES = (1, 8)
POSITIONS = (16, 64, 256, 512, 1000)


# --------------------------------------------------------------------------- the models

class ModelSpec(NamedTuple):
    """A model family to benchmark: its ``fungrad.models`` module, a config of about
    125M parameters, the params only read a row at a time (position tables, an untied
    input embedding: not counted in the bytes a step reads), and a ``jax.jit`` twin."""
    module: str
    config: Callable[[Any], Any]
    gathered: tuple = ()
    jax_model: Callable | None = None


def gpt2_jax(cfg: Any) -> Callable:
    """GPT-2 in ``jax.numpy`` over fungrad's params layout: ``forward(params, tokens,
    cache=None, pos=0) -> (logits, cache)``, the cache a tuple of ``(k, v)`` per layer,
    each ``(B, max_len, heads, head_dim)``, written at ``pos``."""
    import jax
    import jax.numpy as jnp

    def norm(p, x):
        mean = x.mean(-1, keepdims=True)
        var = jnp.square(x - mean).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + cfg.layer_norm_epsilon) * p["scale"] + p["bias"]

    def linear(p, x):
        return x @ p["w"] + p["b"]

    def forward(params, tokens, cache=None, pos=0):
        B, T = tokens.shape
        x = params["wte"]["embedding"][tokens] + params["wpe"]["embedding"][pos + jnp.arange(T)]
        new_cache = []
        for i, p in enumerate(params["blocks"]):
            h = norm(p["ln_1"], x)
            q, k, v = (linear(p["attn"][n], h).reshape(B, T, cfg.n_head, -1) for n in "qkv")
            if cache is not None:
                k = jax.lax.dynamic_update_slice(cache[i][0], k, (0, pos, 0, 0))
                v = jax.lax.dynamic_update_slice(cache[i][1], v, (0, pos, 0, 0))
                new_cache.append((k, v))
            scores = jnp.einsum("bthd,bshd->bhts", q, k) / math.sqrt(q.shape[-1])
            mask = jnp.arange(k.shape[1])[None, :] <= pos + jnp.arange(T)[:, None]
            scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
            out = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(scores, -1), v).reshape(B, T, -1)
            x = x + linear(p["attn"]["o"], out)
            h = jax.nn.gelu(linear(p["mlp"]["fc_in"], norm(p["ln_2"], x)), approximate=True)
            x = x + linear(p["mlp"]["fc_out"], h)
        logits = norm(params["ln_f"], x) @ params["wte"]["embedding"].T
        return logits, (tuple(new_cache) if cache is not None else None)
    return forward


MODELS = {
    "gpt2": ModelSpec("gpt2", lambda m: m.PRESETS["gpt2"], (("wpe", "embedding"),), gpt2_jax),
    "llama": ModelSpec("llama", lambda m: m.Config(vocab_size=32000, d_model=768, n_layers=12,
                                                   n_heads=12, d_ff=2048, max_len=1024),
                       (("embed", "embedding"),)),
    "mamba": ModelSpec("mamba", lambda m: m.PRESETS["mamba-130m"]),
}


def available(names: list[str]) -> dict[str, tuple[ModelSpec, Any, Any]]:
    """``{name: (spec, module, cfg)}`` for the models whose files import."""
    out = {}
    for name in names:
        spec = MODELS[name]
        try:
            module = importlib.import_module(f"fungrad.models.{spec.module}")
            out[name] = (spec, module, spec.config(module))
        except Exception as e:  # a file not written yet, or mid-edit
            print(f"  {name}: skipped ({type(e).__name__}: {e})")
    return out


def random_params(module: Any, cfg: Any, seed: int = 0) -> Any:
    """Params shaped like ``module.init``'s (normal(0.02) weights, unit norm scales, zero
    biases), drawn with NumPy: ``init``'s threefry draws take a minute at this size."""
    shapes = fungrad.eval_shape(lambda: module.init(fungrad.random.PRNGKey(0), cfg))
    rng = np.random.default_rng(seed)

    def draw(path, s):
        if path[-1] == "scale":
            return np.ones(s.shape, s.dtype)
        if path[-1] in ("b", "bias"):
            return np.zeros(s.shape, s.dtype)
        return (0.02 * rng.standard_normal(s.shape, np.float32)).astype(s.dtype)
    leaves = [fnp.asarray(draw(p, s)) for p, s in tree.leaves_with_path(shapes)]
    return tree.unflatten(tree.structure(shapes), leaves)


def weight_bytes(params: Any, gathered: tuple) -> int:
    return sum(leaf.nbytes for p, leaf in tree.leaves_with_path(params) if p not in gathered)


def copy_bandwidth(nbytes: int = 256 << 20, repeat: int = 5) -> float:
    """Bytes per second moved (read plus written) by ``np.copyto`` of a large array."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


# --------------------------------------------------------------------------- decoders
# Each decoder's ``decode(prompt, n)`` prefills ``prompt (B, P)`` untimed, then decodes
# ``n`` tokens greedily and returns (seconds for those n steps, the tokens (B, n)).

class FungradDecoder:
    def __init__(self, module: Any, cfg: Any, params: Any, max_len: int) -> None:
        def greedy(params, tokens, cache):
            logits, cache = module.apply(params, cfg, tokens, cache=cache)
            return fnp.argmax(logits[:, -1], axis=-1).astype(fnp.int32)[:, None], cache
        self.module, self.cfg, self.params, self.max_len = module, cfg, params, max_len
        self.step = fungrad.jit(greedy, donate_argnums=2)

    def decode(self, prompt: np.ndarray, n: int, cache: Any = None) -> tuple[float, np.ndarray]:
        if cache is None:
            cache = self.module.init_cache(self.cfg, prompt.shape[0], self.max_len)
        tok, cache = self.step(self.params, fnp.asarray(prompt), cache)
        out = []
        t0 = time.perf_counter()
        for _ in range(n):
            tok, cache = self.step(self.params, tok, cache)
            out.append(tok)
        seconds = time.perf_counter() - t0
        return seconds, np.concatenate([np.asarray(t) for t in out], axis=1)


class JaxDecoder:
    def __init__(self, forward: Callable, params: Any, cfg: Any, max_len: int) -> None:
        import jax
        import jax.numpy as jnp

        def greedy(params, tokens, cache, pos):
            logits, cache = forward(params, tokens, cache, pos)
            return jnp.argmax(logits[:, -1], axis=-1).astype(jnp.int32)[:, None], cache
        self.jax, self.jnp, self.cfg, self.max_len = jax, jnp, cfg, max_len
        self.params = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)), params)
        self.step = jax.jit(greedy, donate_argnums=2)

    def empty_cache(self, batch: int) -> tuple:
        shape = (batch, self.max_len, self.cfg.n_head, self.cfg.n_embd // self.cfg.n_head)
        return tuple((self.jnp.zeros(shape), self.jnp.zeros(shape))
                     for _ in range(self.cfg.n_layer))

    def decode(self, prompt: np.ndarray, n: int, cache: Any = None, pos: int = 0
               ) -> tuple[float, np.ndarray]:
        jnp = self.jnp
        if cache is None:
            cache = self.empty_cache(prompt.shape[0])
        tok, cache = self.step(self.params, jnp.asarray(prompt), cache, jnp.int32(pos))
        pos += prompt.shape[1]
        out = []
        tok.block_until_ready()
        t0 = time.perf_counter()
        for i in range(n):
            tok, cache = self.step(self.params, tok, cache, jnp.int32(pos + i))
            tok.block_until_ready()
            out.append(tok)
        seconds = time.perf_counter() - t0
        return seconds, np.concatenate([np.asarray(t) for t in out], axis=1)


def _torch_threads(torch: Any) -> None:
    """torch gets as many threads as OpenBLAS when OPENBLAS_NUM_THREADS is set."""
    if "OPENBLAS_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))


class HFDecoder:
    def __init__(self, folder: str) -> None:
        import torch
        import transformers
        _torch_threads(torch)
        self.torch = torch
        self.model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()

    def decode(self, prompt: np.ndarray, n: int) -> tuple[float, np.ndarray]:
        """``generate`` hands each new token to a streamer: the time from the first new
        token (prefill) to the last is the time of ``n`` decode steps."""
        stamps, tokens = [], []

        class Stamps:
            def put(self, value):
                stamps.append(time.perf_counter())
                tokens.append(value.numpy().reshape(prompt.shape[0], -1))

            def end(self):
                pass
        with self.torch.no_grad():
            self.model.generate(self.torch.as_tensor(prompt, dtype=self.torch.long),
                                do_sample=False, use_cache=True,
                                max_new_tokens=n + 1, min_new_tokens=n + 1,
                                pad_token_id=0, streamer=Stamps(),
                                attention_mask=self.torch.ones(prompt.shape, dtype=self.torch.long))
        # stamps[0]: the prompt, stamps[1]: the prefill's token, then one per decode step
        return stamps[-1] - stamps[1], np.concatenate(tokens[2:], axis=1)


def decoders(libs: list[str], spec: ModelSpec, module: Any, cfg: Any, params: Any, folder: str,
             max_len: int) -> dict[str, Any]:
    out = {}
    for lib in libs:
        if lib == "fungrad":
            out[lib] = FungradDecoder(module, cfg, params, max_len)
        elif lib == "hf":
            out[lib] = HFDecoder(folder)
        elif lib == "jax" and spec.jax_model is not None:
            out[lib] = JaxDecoder(spec.jax_model(cfg), params, cfg, max_len)
    return out


def tokens_per_second(decs: dict[str, Any], batch: int, n: int, rounds: int, vocab: int
                      ) -> tuple[dict[str, tuple[float, float]], dict[str, np.ndarray]]:
    """``{lib: (median, best) tokens/s}`` over alternating rounds (a fresh prompt and cache
    each round; one warm-up round first) and each library's tokens of the first round."""
    rng = np.random.default_rng(1)
    prompts = [rng.integers(0, vocab, (batch, PROMPT)).astype(np.int32) for _ in range(rounds + 1)]
    per_token: dict[str, list[float]] = {lib: [] for lib in decs}
    first = {}
    for r, prompt in enumerate(prompts):
        for lib, dec in decs.items():
            seconds, toks = dec.decode(prompt, n)
            if r == 0:
                first[lib] = toks
            else:
                per_token[lib].append(seconds / n)
    rates = {lib: (batch / float(np.median(s)), batch / min(s)) for lib, s in per_token.items()}
    return rates, first


# --------------------------------------------------------------------------- position table (GPT-2)

def cost_by_position(decs: dict[str, Any], cfg: Any, n: int, rounds: int
                     ) -> dict[str, dict[int, float]]:
    """ms per decoded token (B=1) after ``pos`` tokens of context, min over rounds. The
    caches are filled with random keys and values instead of a prefill (the cost of a
    step does not depend on their values)."""
    import torch
    from transformers import DynamicCache
    rng = np.random.default_rng(2)
    H, D = cfg.n_head, cfg.n_embd // cfg.n_head
    out: dict[str, dict[int, float]] = {lib: {} for lib in decs}
    token = np.array([[1]], np.int32)
    for pos in POSITIONS:
        for _ in range(rounds):
            for lib, dec in decs.items():
                kv = lambda: (0.5 * rng.standard_normal((1, pos, H, D))).astype(np.float32)
                pad = lambda a: np.pad(a, ((0, 0), (0, cfg.n_positions - pos), (0, 0), (0, 0)))
                if lib == "fungrad":
                    cache = dec.module.init_cache(cfg, 1, dec.max_len)
                    valid = fnp.asarray(np.arange(dec.max_len)[None] < pos)
                    layers = tuple(c._replace(k=fnp.asarray(pad(kv())), v=fnp.asarray(pad(kv())),
                                              pos=fnp.asarray(np.int32(pos)), valid=valid)
                                   for c in cache.layers)
                    seconds, _ = dec.decode(token, n, cache._replace(layers=layers))
                elif lib == "jax":
                    cache = tuple((dec.jnp.asarray(pad(kv())), dec.jnp.asarray(pad(kv())))
                                  for _ in range(cfg.n_layer))
                    seconds, _ = dec.decode(token, n, cache, pos)
                else:
                    seconds = _hf_steps(dec, cfg, pos, n, kv, torch, DynamicCache)
                out[lib][pos] = min(out[lib].get(pos, float("inf")), seconds / (n + 1) * 1e3)
    return out


def _hf_steps(dec: HFDecoder, cfg: Any, pos: int, n: int, kv: Callable, torch: Any,
              DynamicCache: Any) -> float:
    """``n + 1`` greedy steps of the Hugging Face model on a DynamicCache holding ``pos``
    random entries per layer (a manual loop: ``generate`` would prefill)."""
    cache = DynamicCache(config=dec.model.config)
    for layer in range(cfg.n_layer):
        cache.update(*(torch.from_numpy(kv()).transpose(1, 2) for _ in range(2)), layer)
    tok = torch.ones((1, 1), dtype=torch.long)
    # ``past_key_values`` was renamed ``cache`` in recent versions
    accepted = inspect.signature(dec.model.forward).parameters
    name = "cache" if "cache" in accepted else "past_key_values"
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(n + 1):
            logits = dec.model(input_ids=tok, use_cache=True, **{name: cache}).logits
            tok = logits[:, -1].argmax(-1, keepdim=True)
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- train step (GPT-2)

def train_step_times(module: Any, cfg: Any, params: Any, spec: ModelSpec, batch: int, T: int,
                     rounds: int) -> dict[str, tuple[float, float, float]]:
    """``{lib: (min, median, first call)}`` seconds of ``value_and_grad(loss)`` + AdamW."""
    import jax
    import jax.numpy as jnp
    import optax
    rng = np.random.default_rng(3)
    data = rng.integers(0, cfg.vocab_size, (batch, T + 1)).astype(np.int32)
    x, y = data[:, :-1], data[:, 1:]
    forward = spec.jax_model(cfg)

    def jax_loss(p, x, y):
        logits, _ = forward(p, x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[..., None], -1))

    def make(lib, optlib, loss, params, x, y):
        opt = optlib.adamw(1e-4)

        def step(p, s):
            value, grads = lib.value_and_grad(loss)(p, x, y)
            updates, s = opt.update(grads, s, p)
            return optlib.apply_updates(p, updates), s, value
        state = {"p": params, "s": opt.init(params), "step": lib.jit(step, donate_argnums=(0, 1))}

        def call():
            state["p"], state["s"], value = state["step"](state["p"], state["s"])
            return float(value)
        return call

    fg = make(fungrad, optim, lambda p, x, y: module.loss(p, cfg, x, y), params,
              fnp.asarray(x), fnp.asarray(y))
    jx = make(jax, optax, jax_loss,
              jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), params),
              jnp.asarray(x), jnp.asarray(y))
    first = {}
    for name, fn in (("fungrad", fg), ("jax", jx)):
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    times = interleaved({"fungrad": fg, "jax": jx}, rounds, 2)
    return {k: (*times[k], first[k]) for k in times}


# --------------------------------------------------------------------------- driver

def only(args: argparse.Namespace) -> None:
    """``--only LIB``: one library, one model, one batch size, in this process; prints JSON."""
    spec, module, _ = available([args.model])[args.model]
    with open(os.path.join(args.folder, "config.json")) as f:
        cfg = module.Config.from_hf(json.load(f))
    params = module.from_pretrained(args.folder)[1] if args.only != "hf" else None
    decs = decoders([args.only], spec, module, cfg, params, args.folder, PROMPT + args.tokens + 1)
    tps, _ = tokens_per_second(decs, args.batch, args.tokens, args.rounds, cfg.vocab_size)
    print(json.dumps({"median": tps[args.only][0], "best": tps[args.only][1]}))


def separate_processes(name: str, libs: list[str], folder: str, args: argparse.Namespace
                       ) -> dict[tuple[str, int], tuple[float, float]]:
    out = {}
    for batch in BATCHES:
        for lib in libs:
            cmd = [sys.executable, __file__, "--only", lib, "--model", name, "--folder", folder,
                   "--batch", str(batch), "--tokens", str(args.tokens),
                   "--rounds", str(args.rounds)]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode:
                print(f"  {lib} B={batch} alone failed:\n{run.stderr[-2000:]}")
                continue
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            out[lib, batch] = figures["median"], figures["best"]
    return out


def profile(args: argparse.Namespace) -> None:
    """Per-line timing of fungrad's GPT-2 decode step (B=1, a 64-slot cache)."""
    spec, module, cfg = available(["gpt2"])["gpt2"]
    params = random_params(module, cfg)
    dec = FungradDecoder(module, cfg, params, 64)
    tok, cache = dec.step(params, fnp.asarray(np.ones((1, PROMPT), np.int32)),
                          module.init_cache(cfg, 1, 64))
    exe = dec.step.lower(params, tok, cache).compile()._exe
    fixed = [leaf._value for leaf in tree.leaves((params, tok))]
    first = [leaf._value.copy() for leaf in tree.leaves(cache)]
    print(profile_executable(exe, lambda outs: fixed + (first if outs is None else list(outs[1:])),
                             args.rounds * 4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--tokens", type=int, default=32, help="decoded tokens per round")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up round)")
    ap.add_argument("--only", choices=("fungrad", "hf", "jax"),
                    help="one library alone (used by the script)")
    ap.add_argument("--model", default="gpt2", help="with --only")
    ap.add_argument("--folder", help="with --only: the Hugging Face folder of the weights")
    ap.add_argument("--batch", type=int, default=1, help="with --only")
    ap.add_argument("--no-separate", action="store_true",
                    help="skip the one-library-per-process runs")
    ap.add_argument("--profile", action="store_true",
                    help="per-line profile of fungrad's GPT-2 decode step")
    args = ap.parse_args()
    if args.only:
        return only(args)
    if args.profile:
        return profile(args)
    import torch
    import jax
    import transformers
    _torch_threads(torch)
    bandwidth = copy_bandwidth()
    print(f"transformers {transformers.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), jax {jax.__version__}; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}; load {load_average()}")
    print(f"copy bandwidth (np.copyto, 256 MiB, read + write): {bandwidth / 1e9:.2f} GB/s")
    models = available(args.models)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (spec, module, cfg) in models.items():
            params = random_params(module, cfg)
            folder = os.path.join(tmp, name)
            module.save_pretrained(folder, cfg, params)
            step_bytes = weight_bytes(params, spec.gathered)
            libs = ["fungrad", "hf"] + (["jax"] if spec.jax_model else [])
            print(f"\n{name}: {sum(leaf.size for leaf in tree.leaves(params)) / 1e6:.1f}M params, "
                  f"{step_bytes / 2**20:.0f} MiB of weights read per decode step; greedy, "
                  f"prompt {PROMPT}, {args.tokens} tokens per round, {args.rounds} rounds; "
                  f"load {load_average()}")
            decs = decoders(libs, spec, module, cfg, params, folder, PROMPT + args.tokens + 1)
            results = {}
            for batch in BATCHES:
                tps, first = tokens_per_second(decs, batch, args.tokens, args.rounds,
                                               cfg.vocab_size)
                agree = all(np.array_equal(first["fungrad"], t) for t in first.values())
                results[batch] = tps, agree
            alone = {} if args.no_separate else separate_processes(name, libs, folder, args)
            print(f"  {'batch':>5} {'library':<8} {'tok/s (median)':>15} {'tok/s (best)':>13} "
                  f"{'alone: median':>14} {'alone: best':>12} {'bound':>8}")
            for batch, (tps, agree) in results.items():
                bound = batch * bandwidth / step_bytes
                for lib, (med, best) in tps.items():
                    a_med, a_best = alone.get((lib, batch), (float("nan"),) * 2)
                    print(f"  {batch:>5} {lib:<8} {med:15.1f} {best:13.1f} {a_med:14.1f} "
                          f"{a_best:12.1f} {bound:8.1f}")
                print(f"  {'':>5} greedy tokens of the first round equal across libraries: {agree}")
            if name == "gpt2":
                pos_decs = decoders(libs, spec, module, cfg, params, folder, cfg.n_positions)
                table = cost_by_position(pos_decs, cfg, 8, args.rounds)
                print(f"  ms per token (B=1) by position (fixed {cfg.n_positions}-slot caches "
                      f"for fungrad and jax); load {load_average()}")
                print("  " + f"{'position':>8}" + "".join(f"{lib:>10}" for lib in table))
                for pos in POSITIONS:
                    print("  " + f"{pos:>8}" + "".join(f"{table[lib][pos]:10.2f}" for lib in table))
                del pos_decs, decs
                times = train_step_times(module, cfg, params, spec, 4, 64, args.rounds)
                fg_min, fg_med, fg_first = times["fungrad"]
                jx_min, jx_med, jx_first = times["jax"]
                print(f"  train step B=4 T=64 (value_and_grad + AdamW): fungrad "
                      f"{fg_min * 1e3:.0f} ms (median {fg_med * 1e3:.0f}), jax.jit "
                      f"{jx_min * 1e3:.0f} ms (median {jx_med * 1e3:.0f}), ratio "
                      f"{fg_min / jx_min:.2f}x; first call {fg_first:.1f} s / {jx_first:.1f} s; "
                      f"load {load_average()}")


if __name__ == "__main__":
    main()
