"""``fungrad.jit`` against ``jax.jit`` in the same run (µs per call, and the ratio).

Benchmarks (each a function registered with ``@bench``; add more the same way, e.g.
a char-level GPT train step once its ops exist):
  mlp_sgd / mlp_adam  MLP 784-512-512-10, batch 128 (``bench_mlp.py``): value_and_grad + update
                      inline (``bench_mlp.py`` times the steps with each library's optimiser)
  chain_16 / chain_1000  a 100-op elementwise chain on (16,16) and (1000,1000)
  call_overhead  a tiny jitted function (x + y on 3 elements)
  first_call     trace + optimise + codegen of the MLP train step (jax: + XLA compile)
``--fusion`` prints the study behind the CPU fusion strategy: 100-op chains as
plain NumPy calls (unfused, allocating), jitted with the "numpy" strategy (ufuncs
writing into dead buffers), jitted with the "numexpr" strategy, and jax.jit.
OpenBLAS threads spin when the machine is oversubscribed; set
OPENBLAS_NUM_THREADS=1 there (the script prints the setting).

Run: python benchmarks/bench_jit.py [--only NAME ...] [--fusion] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_us, load_average  # noqa: E402
from bench_mlp import init_params as _mlp_init  # noqa: E402
from bench_mlp import make_data as _mlp_data  # noqa: E402
from bench_mlp import make_loss as _mlp_loss  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import fungrad  # noqa: E402
import fungrad.numpy as fnp  # noqa: E402
from fungrad.compiler import fusion  # noqa: E402

BENCHES: dict[str, Callable[[argparse.Namespace], list[tuple[str, float, float]]]] = {}


def bench(name: str):
    """Register ``fn(args) -> [(label, fungrad_us, jax_us), ...]``."""
    def register(fn):
        BENCHES[name] = fn
        return fn
    return register


def _sync(tree: Any) -> None:
    for leaf in jax.tree_util.tree_leaves(tree):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()


def _number(args, base: int) -> int:
    return max(1, base // (10 if args.quick else 1))


def _compare(fg: Callable[[], Any], jx: Callable[[], Any], number: int, rounds: int = 7
             ) -> tuple[float, float]:
    """µs per call of fungrad and jax: batches of ``number`` calls in alternating rounds,
    the best batch of each (a burst of outside load hits both alike)."""
    best = [float("inf"), float("inf")]
    fg(), _sync(jx())
    for _ in range(rounds):
        for k, fn in enumerate((fg, lambda: _sync(jx()))):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / number)
    return best[0] * 1e6, best[1] * 1e6


# --------------------------------------------------------------------------- MLP train step

def _sgd_step(api, lib, nn):
    grad_fn = api.value_and_grad(_mlp_loss(lib, nn))

    def step(params, x, y):
        loss, grads = grad_fn(params, x, y)
        return loss, {k: params[k] - 0.01 * grads[k] for k in params}
    return step


def _adam_step(api, lib, nn):
    grad_fn = api.value_and_grad(_mlp_loss(lib, nn))
    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8

    def step(params, m, v, t, x, y):
        loss, grads = grad_fn(params, x, y)
        t = t + 1
        m = {k: b1 * m[k] + (1 - b1) * grads[k] for k in params}
        v = {k: b2 * v[k] + (1 - b2) * grads[k] ** 2 for k in params}
        mhat_scale = 1 / (1 - b1 ** t)
        vhat_scale = 1 / (1 - b2 ** t)
        params = {k: params[k] - lr * (m[k] * mhat_scale) / (lib.sqrt(v[k] * vhat_scale) + eps)
                  for k in params}
        return loss, params, m, v, t
    return step


def _fg(tree):
    return jax.tree_util.tree_map(fnp.asarray, tree)


def _jx(tree):
    return jax.tree_util.tree_map(jnp.asarray, tree)


@bench("mlp_sgd")
def mlp_sgd(args):
    params, (x, y) = _mlp_init(), _mlp_data()
    fg_step = fungrad.jit(_sgd_step(fungrad, fnp, fungrad.nn))
    jx_step = jax.jit(_sgd_step(jax, jnp, jax.nn))
    fp, fx, fy = _fg(params), fnp.asarray(x), fnp.asarray(y)
    jp, jx_, jy = _jx(params), jnp.asarray(x), jnp.asarray(y)
    n = _number(args, 10)
    t_fg, t_jx = _compare(lambda: fg_step(fp, fx, fy), lambda: jx_step(jp, jx_, jy), n)
    return [("MLP 784-512-512-10 b128 SGD step", t_fg, t_jx)]


@bench("mlp_adam")
def mlp_adam(args):
    params, (x, y) = _mlp_init(), _mlp_data()
    zeros = {k: np.zeros_like(v) for k, v in params.items()}
    fg_step = fungrad.jit(_adam_step(fungrad, fnp, fungrad.nn))
    jx_step = jax.jit(_adam_step(jax, jnp, jax.nn))
    fargs = (_fg(params), _fg(zeros), _fg(zeros), fnp.asarray(0.0), fnp.asarray(x), fnp.asarray(y))
    jargs = (_jx(params), _jx(zeros), _jx(zeros), jnp.asarray(0.0), jnp.asarray(x), jnp.asarray(y))
    n = _number(args, 10)
    t_fg, t_jx = _compare(lambda: fg_step(*fargs), lambda: jx_step(*jargs), n)
    return [("MLP 784-512-512-10 b128 Adam step", t_fg, t_jx)]


@bench("first_call")
def first_call(args):
    params, (x, y) = _mlp_init(), _mlp_data()
    fargs = (_fg(params), fnp.asarray(x), fnp.asarray(y))
    jargs = (_jx(params), jnp.asarray(x), jnp.asarray(y))

    def once(api, lib, nn, call_args):
        step = api.jit(_sgd_step(api, lib, nn))  # a new function: nothing cached
        t0 = time.perf_counter()
        _sync(step(*call_args))
        return (time.perf_counter() - t0) * 1e6
    reps = 1 if args.quick else 3
    t_fg = min(once(fungrad, fnp, fungrad.nn, fargs) for _ in range(reps))
    t_jx = min(once(jax, jnp, jax.nn, jargs) for _ in range(reps))
    return [("first call of the MLP SGD step", t_fg, t_jx)]


# --------------------------------------------------------------------------- elementwise chains

def _chain(lib, n_ops: int = 100, transcendental: bool = True):
    """``n_ops`` elementwise ops: multiply, add, tanh (or max), subtract, repeated."""
    def f(x):
        for i in range(n_ops):
            k = i % 4
            if k == 0:
                x = x * 1.01
            elif k == 1:
                x = x + 0.5
            elif k == 2:
                x = lib.tanh(x) if transcendental else lib.maximum(x, 0.1)
            else:
                x = x - 0.25
        return x
    return f


def _chain_bench(shape, args):
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    fg, jx = fungrad.jit(_chain(fnp)), jax.jit(_chain(jnp))
    fx, jx_x = fnp.asarray(x), jnp.asarray(x)
    n = _number(args, max(3, int(2e6 // x.size)))
    t_fg, t_jx = _compare(lambda: fg(fx), lambda: jx(jx_x), n)
    return [(f"100-op elementwise chain {shape}", t_fg, t_jx)]


@bench("chain_16")
def chain_16(args):
    return _chain_bench((16, 16), args)


@bench("chain_1000")
def chain_1000(args):
    return _chain_bench((1000, 1000), args)


@bench("call_overhead")
def call_overhead(args):
    fg, jx = fungrad.jit(lambda x, y: x + y), jax.jit(lambda x, y: x + y)
    fx, jx_x = fnp.ones(3), jnp.ones(3)
    n = _number(args, 20000)
    t_fg, t_jx = _compare(lambda: fg(fx, fx), lambda: jx(jx_x, jx_x), n)
    return [("call overhead, tiny function", t_fg, t_jx)]


# --------------------------------------------------------------------------- fusion study

def fusion_study(args) -> None:
    """100-op chains under each CPU strategy, µs per call (best of several runs). The
    blocked strategy is forced at every size here (``blocked.MIN_SIZE = 1``)."""
    from fungrad.compiler import blocked
    sizes = [(16, 16), (256, 256), (512, 512), (1000, 1000), (2048, 2048)]
    strategies = ("numpy", "blocked", "numexpr")
    ne = fusion.numexpr_module()
    print(f"\nfusion study: 100-op float32 chains, µs per call (numexpr "
          f"{'missing' if ne is None else ne.__version__}, "
          f"{os.cpu_count()} cores, load {load_average()})")
    print(f"{'chain':<7}{'shape':>13}{'NumPy unfused':>15}" +
          "".join(f"{'jit ' + s:>13}" for s in strategies) + f"{'jax.jit':>10}")
    min_size = blocked.MIN_SIZE
    blocked.MIN_SIZE = 1
    try:
        for transcendental in (False, True):
            for shape in sizes:
                x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
                fx, jx_x = fnp.asarray(x), jnp.asarray(x)
                n = _number(args, max(2, int(3e5 // x.size)))
                figures = [best_us(lambda: _chain(np, 100, transcendental)(x), n, 5)]
                for strategy in strategies:
                    fusion.set_strategy(strategy)
                    f = fungrad.jit(_chain(fnp, 100, transcendental))
                    figures.append(best_us(lambda: f(fx), n, 5))
                jf = jax.jit(_chain(jnp, 100, transcendental))
                figures.append(best_us(lambda: jf(jx_x), n, 5, sync=_sync))
                name = "tanh" if transcendental else "arith"
                print(f"{name:<7}{str(shape):>13}" + "".join(f"{v:>13.1f}" for v in figures[:1])
                      + "".join(f"{v:>13.1f}" for v in figures[1:-1]) + f"{figures[-1]:>10.1f}",
                      flush=True)
    finally:
        blocked.MIN_SIZE = min_size
        fusion.set_strategy("blocked")


def _best_of(fn: Callable[[], Any], number: int, repeat: int = 30) -> float:
    """Minimum over many short runs (robust to a busy machine), µs per call."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e6


def cost_probe(args) -> None:
    """Per-call cost of one NumPy ufunc and of a 10-op numexpr kernel (multiply / tanh)."""
    ne = fusion.numexpr_module()
    if ne is None:
        return
    sig = [("i0", float), ("c", float)]
    kernels = {"mul": ne.NumExpr("(" * 10 + "i0" + "*c)" * 10, signature=sig),
               "tanh": ne.NumExpr("tanh(" * 10 + "i0" + ")" * 10, signature=sig[:1])}
    print("\ncost probe, float32, µs per call (best of 30 runs):")
    print(f"{'size':>8}{'ufunc mul':>11}{'ufunc tanh':>12}{'10 ufunc mul':>14}"
          f"{'numexpr 10 mul':>16}{'numexpr 10 tanh':>17}")
    for size in (256, 4096, 65536):
        x = np.random.default_rng(0).uniform(-1, 1, size).astype(np.float32)
        out, c = np.empty_like(x), np.asarray(1.01, np.float32)
        n = _number(args, max(2, int(2e5 // size)))
        mul = _best_of(lambda: np.multiply(x, c, out=out), n)
        tanh = _best_of(lambda: np.tanh(x, out=out), n)
        kw = dict(out=out, order="K", casting="safe", ex_uses_vml=False)
        ne_mul = _best_of(lambda: kernels["mul"](x, c, **kw), n)
        ne_tanh = _best_of(lambda: kernels["tanh"](x, **kw), max(1, n // 10), 10)
        print(f"{size:>8}{mul:>11.2f}{tanh:>12.2f}{10 * mul:>14.2f}{ne_mul:>16.2f}{ne_tanh:>17.2f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="benchmarks to run")
    parser.add_argument("--fusion", action="store_true", help="print the fusion study")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    print(f"fungrad.jit vs jax.jit {jax.__version__} (CPU), µs per call; ratio = fungrad / jax; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"load {load_average()}")
    print(f"{'benchmark':<40}{'fungrad':>12}{'jax':>12}{'ratio':>8}")
    for name in args.only or list(BENCHES):
        for label, t_fg, t_jx in BENCHES[name](args):
            print(f"{label:<40}{t_fg:>12.1f}{t_jx:>12.1f}{t_fg / t_jx:>8.2f}", flush=True)
    if args.fusion:
        cost_probe(args)
        fusion_study(args)


if __name__ == "__main__":
    main()
