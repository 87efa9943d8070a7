"""GPU benchmarks: fungrad on CuPy against raw CuPy and jax.jit on the same GPU, same run.

* a 100-op elementwise chain and a layer norm on large arrays: fungrad ``jit`` (fused
  kernel) against unfused CuPy (one CuPy call per op) and ``jax.jit``;
* how many row-block kernels jit makes of that layer norm on a GPU (one);
* GPT-2 124M training step (batch x 1024 tokens), tokens/s: fungrad ``jit`` against
  ``jax.jit`` of the same computation (GPT-2 written with ``jax.numpy`` below, on the
  same parameter values);
* decode tokens/s of ``fungrad.models.gpt2`` with its KV cache, batch 1 and 8.

Run: ``python benchmarks/bench_gpu.py [--steps N] [--batch B] [--device gpu|cpu] [--tiny]``;
``--device cpu --tiny`` is a seconds-long smoke run of every section on the CPU.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import load_average  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as fnp  # noqa: E402
from fungrad.models import gpt2  # noqa: E402


def _time(fn: Callable[[], Any], sync: Callable[[Any], Any], steps: int) -> float:
    """Seconds per call: the best of ``steps`` calls after one warm-up."""
    sync(fn())
    best = math.inf
    for _ in range(steps):
        start = time.perf_counter()
        sync(fn())
        best = min(best, time.perf_counter() - start)
    return best


def _chain(x: Any, lib: Any) -> Any:
    for k in range(25):  # 100 ops
        x = lib.tanh(x * 1.0001 + 0.5) - 0.25 * x
    return x


def _layer_norm(x: Any, g: Any, b: Any, lib: Any) -> Any:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / lib.sqrt(var + 1e-5) * g + b


def bench_kernels(device: Any, xp: Any, steps: int, n: int) -> None:
    import jax
    import jax.numpy as jnp
    host = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    x = fungrad.device_put(host, device)
    raw = xp.asarray(host)
    jx = jax.device_put(host)
    f_sync = lambda out: out.block_until_ready()  # noqa: E731
    x_sync = lambda out: xp.cuda.Device().synchronize() if hasattr(xp, "cuda") else out  # noqa: E731
    chain_f = fungrad.jit(lambda v: _chain(v, fnp))
    chain_j = jax.jit(lambda v: _chain(v, jnp))
    t_f = _time(lambda: chain_f(x), f_sync, steps)
    t_x = _time(lambda: _chain(raw, xp), x_sync, steps)
    t_j = _time(lambda: chain_j(jx), f_sync, steps)
    print(f"100-op chain, {n:,} float32: fungrad jit {t_f * 1e3:.2f} ms | unfused "
          f"{xp.__name__} {t_x * 1e3:.2f} ms | jax.jit {t_j * 1e3:.2f} ms | "
          f"fungrad/jax {t_j / t_f:.2f}x speed")
    rows, cols = n // 768, 768
    h = host[:rows * cols].reshape(rows, cols)
    g, b = np.ones(cols, np.float32), np.zeros(cols, np.float32)
    ln_f = fungrad.jit(lambda v, g, b: _layer_norm(v, g, b, fnp))
    ln_j = jax.jit(lambda v, g, b: _layer_norm(v, g, b, jnp))
    fx, fg, fb = (fungrad.device_put(a, device) for a in (h, g, b))
    rx, rg, rb = (xp.asarray(a) for a in (h, g, b))
    t_f = _time(lambda: ln_f(fx, fg, fb), f_sync, steps)
    t_x = _time(lambda: _layer_norm(rx, rg, rb, xp), x_sync, steps)
    t_j = _time(lambda: ln_j(h, g, b), f_sync, steps)
    line = (f"layer norm ({rows:,} x {cols}): fungrad jit {t_f * 1e3:.2f} ms | unfused "
            f"{xp.__name__} {t_x * 1e3:.2f} ms | jax.jit {t_j * 1e3:.2f} ms")
    np.testing.assert_allclose(np.asarray(ln_f(fx, fg, fb)), np.asarray(ln_j(h, g, b)),
                               rtol=1e-4, atol=1e-4)
    kernels = ln_f.lower(fx, fg, fb).as_text(dialect="cuda").count("fused_cuda[kernel=rows_")
    print(line + f" | fungrad's GPU program: {kernels} row kernel(s)")


def _jax_gpt2_loss(params: dict, tokens: Any, targets: Any, n_head: int) -> Any:
    """GPT-2 (pre-norm blocks, tanh-GELU, tied embeddings) in jax.numpy on fungrad's
    parameter tree, so both frameworks run the same computation."""
    import jax
    import jax.numpy as jnp

    def ln(p, x):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]

    def lin(p, x):
        return x @ p["w"] + p["b"]
    B, T = tokens.shape
    x = params["wte"]["embedding"][tokens] + params["wpe"]["embedding"][:T]
    mask = jnp.tril(jnp.ones((T, T), bool))
    for p in params["blocks"]:
        h = ln(p["ln_1"], x)
        q, k, v = (lin(p["attn"][n], h).reshape(B, T, n_head, -1).transpose(0, 2, 1, 3)
                   for n in "qkv")
        s = jnp.where(mask, q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1]), -jnp.inf)
        a = (jax.nn.softmax(s, -1) @ v).transpose(0, 2, 1, 3).reshape(B, T, -1)
        x = x + lin(p["attn"]["o"], a)
        x = x + lin(p["mlp"]["fc_out"], jax.nn.gelu(lin(p["mlp"]["fc_in"], ln(p["ln_2"], x))))
    logits = ln(params["ln_f"], x) @ params["wte"]["embedding"].T
    logp = jax.nn.log_softmax(logits, -1)
    return -jnp.take_along_axis(logp, targets[..., None], -1).mean()


def bench_train(device: Any, cfg: gpt2.Config, batch: int, seq: int, steps: int) -> None:
    import jax
    params = fungrad.device_put(gpt2.init(fungrad.random.PRNGKey(0), cfg), device)
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (batch, seq + 1), np.int32)
    x, y = (fungrad.device_put(a, device) for a in (tokens[:, :-1], tokens[:, 1:]))

    @fungrad.jit
    def step_f(params, x, y):
        value, grads = fungrad.value_and_grad(gpt2.loss)(params, cfg, x, y)
        return value, fungrad.tree.map(lambda p, g: p - 1e-4 * g, params, grads)

    jparams = jax.tree_util.tree_map(lambda a: jax.device_put(np.asarray(a)), params)

    @jax.jit
    def step_j(params, x, y):
        value, grads = jax.value_and_grad(_jax_gpt2_loss)(params, x, y, cfg.n_head)
        return value, jax.tree_util.tree_map(lambda p, g: p - 1e-4 * g, params, grads)
    sync = lambda out: out[0].block_until_ready()  # noqa: E731
    lf = float(step_f(params, x, y)[0])
    lj = float(step_j(jparams, tokens[:, :-1], tokens[:, 1:])[0])
    t_f = _time(lambda: step_f(params, x, y), sync, steps)
    t_j = _time(lambda: step_j(jparams, tokens[:, :-1], tokens[:, 1:]), sync, steps)
    n = batch * seq
    print(f"GPT-2 ({cfg.n_layer} layers, d={cfg.n_embd}) train step, {batch} x {seq}: fungrad "
          f"{n / t_f:,.0f} tokens/s (loss {lf:.4f}) | jax.jit {n / t_j:,.0f} tokens/s "
          f"(loss {lj:.4f}) | fungrad/jax {t_j / t_f:.2f}x")


def bench_decode(device: Any, cfg: gpt2.Config, batch: int, new_tokens: int) -> None:
    params = fungrad.device_put(gpt2.init(fungrad.random.PRNGKey(0), cfg), device)
    step = fungrad.jit(gpt2.apply, static_argnums=1, donate_argnames="cache")
    cache = gpt2.init_cache(cfg, batch_size=batch, max_len=new_tokens + 1)
    tok = fungrad.device_put(np.zeros((batch, 1), np.int32), device)
    logits, cache = step(params, cfg, tok, cache=cache)  # compile
    cache = gpt2.init_cache(cfg, batch_size=batch, max_len=new_tokens + 1)
    start = time.perf_counter()
    for _ in range(new_tokens):
        logits, cache = step(params, cfg, tok, cache=cache)
        tok = fnp.argmax(logits[:, -1:], -1).astype(fnp.int32)
    tok.block_until_ready()
    print(f"decode, batch {batch}: {batch * new_tokens / (time.perf_counter() - start):,.0f} "
          "tokens/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="gpu", choices=["gpu", "cpu"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="GPT-2 training batch (x 1024)")
    parser.add_argument("--tiny", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    device = fungrad.devices(args.device)[0]
    xp = fungrad.backends.xp_of(fungrad.device_put(np.zeros(1), device)._value)
    print(f"device {device} ({device.device_kind}), load {load_average()}")
    bench_kernels(device, xp, args.steps, 1 << 14 if args.tiny else 1 << 24)
    cfg = gpt2.Config(n_layer=2, n_embd=64, n_head=2, vocab_size=256, n_positions=64) \
        if args.tiny else gpt2.Config()
    seq = 32 if args.tiny else 1024
    bench_train(device, cfg, 2 if args.tiny else args.batch, seq, args.steps)
    for batch in (1, 8):
        bench_decode(device, cfg, batch, 8 if args.tiny else 64)


if __name__ == "__main__":
    main()
