"""Composition stress test: representative functions (MLP loss, cross-entropy, attention,
layer norm, conv + pool, gather/scatter, sort, cumsum, scan, cond, custom rules,
checkpoint, a checkpointed scan body with a custom rule, ...) under composed transformations,
each against jax on the same inputs.

Every function is written once against a namespace ``m`` (``m.np`` is fungrad.numpy or
jax.numpy, ``m.lax``, ``m.nn``, ``m.sp`` = scipy.special, ``m.api`` = fungrad or jax) and
differentiated with respect to its first argument. Each function runs under five of the
compositions (two with FUNGRAD_TEST_FAST=1), rotating so every composition meets many
functions.
"""
import functools
import types

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import jax.scipy.special

import fungrad
import fungrad.numpy as fnp
import fungrad.scipy.special
from harness import FAST, GRAD_TOL, QUICK_COMPILE, assert_same, to_fg, to_jax

FG = types.SimpleNamespace(np=fnp, lax=fungrad.lax, nn=fungrad.nn, sp=fungrad.scipy.special,
                           api=fungrad)
JX = types.SimpleNamespace(np=jnp, lax=jax.lax, nn=jax.nn, sp=jax.scipy.special, api=jax)


def _rand(seed, *shape, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


# --------------------------------------------------------------------------- the functions
# Each: name -> (make(m) -> f(x, *rest), x, rest). rest is closed over (not differentiated).

def mlp_loss(m):
    def f(W1, b1, W2, data, y):
        h = m.np.tanh(data @ W1 + b1)
        return m.np.mean((h @ W2 - y) ** 2)
    return f


def softmax_cross_entropy(m):
    def f(logits, labels):
        logp = m.nn.log_softmax(logits, axis=-1)
        return -m.np.mean(m.np.take_along_axis(logp, labels[:, None], axis=1))
    return f


def attention(m):
    def f(q, k, v):
        scores = q @ k.T / np.float32(np.sqrt(q.shape[-1]))
        causal = m.np.tril(m.np.ones(scores.shape, dtype=bool))
        scores = m.np.where(causal, scores, -1e9)
        return m.nn.softmax(scores, axis=-1) @ v
    return f


def layer_norm(m):
    def f(x, gamma, beta):
        mu = m.np.mean(x, axis=-1, keepdims=True)
        var = m.np.var(x, axis=-1, keepdims=True)
        return (x - mu) / m.np.sqrt(var + 1e-5) * gamma + beta
    return f


def conv_pool(m):
    def f(kernel, images):
        y = m.lax.conv_general_dilated(images, kernel, (1, 1), "SAME")
        y = m.nn.relu(y) + 0.1 * y
        return m.lax.reduce_window(y, -np.inf, m.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    return f


def gather_indexing(m):
    def f(x, idx):
        return x[idx] * m.np.sum(x[::2]) + x[1:4].mean() * m.np.take(x, idx[::-1])
    return f


def scatter_updates(m):
    def f(x, idx):
        y = m.np.zeros(8, dtype=x.dtype).at[idx].add(x * 2.0)
        return y.at[3].set(x[0] ** 2) * m.np.cos(y)
    return f


def sort_based(m):
    def f(x):
        s = m.np.sort(x)
        return s * m.np.arange(1.0, x.shape[0] + 1.0, dtype=x.dtype) + m.np.max(x) * s[-3:].sum()
    return f


def cumulative(m):
    def f(x):
        return m.np.cumsum(x * x) * m.np.sin(m.np.cumsum(x[::-1]))
    return f


def logsumexp_fn(m):
    def f(x):
        return m.sp.logsumexp(x, axis=1) + m.nn.logsumexp(2.0 * x)
    return f


def norms(m):
    def f(x):
        return m.np.linalg.norm(x) * m.np.sqrt(m.np.sum(x ** 2, axis=0) + 1e-3)
    return f


def piecewise(m):
    def f(x):
        return m.np.where(x > 0, x ** 2, 0.1 * x) + m.nn.relu(x) * m.np.abs(x + 0.05)
    return f


def products_and_extrema(m):
    def f(x):
        return m.np.prod(x, axis=1) + m.np.max(x, axis=1) * m.np.min(x ** 2)
    return f


def batched_matmul(m):
    def f(x, y):
        return m.np.einsum("bij,bjk->bik", x, y) + m.np.matmul(x, y) ** 2
    return f


def polynomial(m):
    def f(x):
        return x ** 3 - 2.0 * x * m.np.exp(-x ** 2) * m.np.sin(x) + m.lax.integer_pow(x, 4)
    return f


def reshapes(m):
    def f(x):
        y = m.np.concatenate([x.reshape(-1), m.np.transpose(x).reshape(-1) * 2.0])
        return m.np.stack([y, y[::-1]], axis=1).reshape(-1, 4) * m.np.expand_dims(x[0, :2], 0).sum()
    return f


def rnn_scan(m):
    def f(W, xs):
        def step(h, x_t):
            h = m.np.tanh(h @ W + x_t)
            return h, h.sum()
        h, ys = m.lax.scan(step, m.np.zeros(W.shape[0], dtype=W.dtype), xs)
        return h * m.np.sum(ys)
    return f


def conditional(m):
    def f(x):
        return m.lax.cond(m.np.sum(x) > 0, lambda v: m.np.sin(v) * v, lambda v: v ** 3, x)
    return f


def fori(m):
    def f(x):
        return m.lax.fori_loop(0, 3, lambda i, c: m.np.sin(c) * x + c * 0.5, x)
    return f


def activations(m):
    def f(x):
        return m.nn.gelu(x) * m.nn.softmax(x, axis=0) + m.nn.sigmoid(x) * m.nn.softplus(-x)
    return f


def custom_jvp_softplus(m):
    @m.api.custom_jvp
    def softplus(x):
        return m.np.log1p(m.np.exp(x))

    @softplus.defjvp
    def softplus_jvp(primals, tangents):
        x, = primals
        return softplus(x), tangents[0] * m.nn.sigmoid(x)

    def f(x):
        return softplus(x * 3.0) * x
    return f


def custom_vjp_clipped(m):
    @m.api.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (m.np.clip(g, -0.5, 0.5),))

    def f(x):
        return m.np.sin(clip_gradient(x ** 2 * 2.0)) * x
    return f


def checkpointed_blocks(m):
    block = m.api.checkpoint(lambda W, h: m.np.sin(h @ W) * h)

    def f(W, x):
        return block(W, block(W, m.lax.stop_gradient(x * 0.5) + x))
    return f


def scan_checkpoint_custom(m):
    softplus = custom_jvp_softplus(m)
    body = m.api.checkpoint(lambda h, x, W: m.np.sin(h @ W) * x + softplus(h))

    def f(W, xs):
        def step(h, x):
            h = body(h, x, W)
            return h, m.np.sum(h)
        h, ys = m.lax.scan(step, m.np.zeros(W.shape[0], dtype=W.dtype), xs)
        return h * m.np.sum(ys)
    return f


def _labels():
    return np.array([0, 3, 1, 4], dtype=np.int32)


FUNCTIONS = {
    "mlp_loss": (mlp_loss, _rand(1, 3, 4), (_rand(2, 4), _rand(3, 4, 2), _rand(4, 5, 3),
                                            _rand(5, 5, 2))),
    "softmax_cross_entropy": (softmax_cross_entropy, _rand(1, 4, 5, low=-2, high=2), (_labels(),)),
    "attention": (attention, _rand(1, 4, 3), (_rand(2, 4, 3), _rand(3, 4, 3))),
    "layer_norm": (layer_norm, _rand(1, 2, 5), (_rand(2, 5), _rand(3, 5))),
    "conv_pool": (conv_pool, _rand(1, 2, 1, 3, 3), (_rand(2, 2, 1, 4, 4),)),
    "gather_indexing": (gather_indexing, _rand(1, 6), (np.array([4, 0, 2, 2], np.int32),)),
    "scatter_updates": (scatter_updates, _rand(1, 4), (np.array([1, 5, 1, 7], np.int32),)),
    "sort_based": (sort_based, _rand(1, 7), ()),
    "cumulative": (cumulative, _rand(1, 6), ()),
    "logsumexp": (logsumexp_fn, _rand(1, 3, 4), ()),
    "norms": (norms, _rand(1, 3, 2), ()),
    "piecewise": (piecewise, _rand(1, 7), ()),
    "products_and_extrema": (products_and_extrema, _rand(1, 2, 3, low=0.5, high=1.5), ()),
    "batched_matmul": (batched_matmul, _rand(1, 2, 2, 3), (_rand(2, 2, 3, 2),)),
    "polynomial": (polynomial, _rand(1, 5), ()),
    "reshapes": (reshapes, _rand(1, 2, 3), ()),
    "rnn_scan": (rnn_scan, _rand(1, 3, 3), (_rand(2, 4, 3),)),
    "conditional": (conditional, _rand(1, 4), ()),
    "fori_loop": (fori, _rand(1, 4), ()),
    "activations": (activations, _rand(1, 5, low=-2, high=2), ()),
    "custom_jvp_softplus": (custom_jvp_softplus, _rand(1, 5), ()),
    "custom_vjp_clipped": (custom_vjp_clipped, _rand(1, 5), ()),
    "checkpointed_blocks": (checkpointed_blocks, _rand(1, 3, 3), (_rand(2, 2, 3),)),
    "scan_checkpoint_custom": (scan_checkpoint_custom, _rand(1, 3, 3), (_rand(2, 4, 3),)),
}


# --------------------------------------------------------------------------- the compositions
# Each: name -> comp(m, F, x, t, ct) with F(x) the function of the differentiated argument,
# t a tangent like x and ct a cotangent like F(x). L(x) = sum(sin(F(x))) is a scalar loss.

def _loss(m, F):
    return lambda x: m.np.sum(m.np.sin(F(x)))


COMPOSITIONS = {
    "grad_grad": lambda m, F, x, t, ct: m.api.grad(
        lambda x: m.np.sum(m.api.grad(_loss(m, F))(x) * t))(x),
    "jacfwd_jacrev": lambda m, F, x, t, ct: m.api.jacfwd(m.api.jacrev(_loss(m, F)))(x),
    "hessian": lambda m, F, x, t, ct: m.api.hessian(_loss(m, F))(x),
    "vmap_grad": lambda m, F, x, t, ct: m.api.vmap(m.api.grad(_loss(m, F)))(m.np.stack([x, t])),
    "grad_vmap": lambda m, F, x, t, ct: m.api.grad(
        lambda xs: m.np.sum(m.np.sin(m.api.vmap(F)(xs))))(m.np.stack([x, t])),
    "vmap_vmap": lambda m, F, x, t, ct: m.api.vmap(m.api.vmap(F))(
        m.np.stack([m.np.stack([x, t]), m.np.stack([t, x])])),
    "jvp_grad": lambda m, F, x, t, ct: m.api.jvp(m.api.grad(_loss(m, F)), (x,), (t,)),
    "vjp_jvp": lambda m, F, x, t, ct: m.api.vjp(lambda x: m.api.jvp(F, (x,), (t,))[1], x)[1](ct),
    "vmap_jvp": lambda m, F, x, t, ct: m.api.vmap(lambda t: m.api.jvp(F, (x,), (t,))[1])(
        m.np.stack([t, x, 2.0 * t])),
}
FORWARD_MODE = {"jacfwd_jacrev", "hessian", "jvp_grad", "vjp_jvp", "vmap_jvp"}


def _cases(per_function: int) -> list[tuple[str, str]]:
    """``per_function`` compositions for every function, rotating through the list so each
    composition is exercised by many functions. A custom_vjp function has no forward-mode
    derivative (as in jax), so it only gets reverse-mode compositions."""
    cases = []
    for i, fname in enumerate(FUNCTIONS):
        allowed = [c for c in COMPOSITIONS
                   if not (fname == "custom_vjp_clipped" and c in FORWARD_MODE)]
        start = (i * per_function) % len(allowed)
        cases += [(fname, c) for c in (allowed[start:] + allowed[:start])[:per_function]]
    return cases


CASES = _cases(2 if FAST else 5)


def _out_shape(fname):
    make, x, rest = FUNCTIONS[fname]
    return jax.eval_shape(lambda x: make(JX)(x, *to_jax(rest)), to_jax(x)).shape


def _run(m, fname, cname, convert):
    make, x, rest = FUNCTIONS[fname]
    f, rest = make(m), convert(rest)
    F = lambda x: f(x, *rest)  # noqa: E731
    t, ct = convert(_rand(7, *x.shape)), convert(_rand(8, *_out_shape(fname)))
    return COMPOSITIONS[cname](m, F, convert(x), t, ct)


@functools.lru_cache(maxsize=None)
def _jax_reference(fname: str) -> dict:
    """All of ``fname``'s compositions under one ``jax.jit``: one XLA compilation per
    function instead of one per primitive and shape (jax's eager mode), which would
    dominate the run time; with ``QUICK_COMPILE``, as XLA's default optimisations take
    longer to compile these programs than they ever run."""
    make, x, rest = FUNCTIONS[fname]
    names = [c for f, c in CASES if f == fname]

    def compositions(x, t, ct, rest):
        f = make(JX)
        out = {c: COMPOSITIONS[c](JX, lambda x: f(x, *rest), x, t, ct) for c in names}
        return dict(out, value=f(x, *rest))
    t, ct = _rand(7, *x.shape), _rand(8, *_out_shape(fname))
    return jax.jit(compositions, compiler_options=QUICK_COMPILE)(*to_jax((x, t, ct, rest)))


@pytest.mark.parametrize("fname,cname", CASES)
def test_composition_matches_jax(fname, cname):
    got = _run(FG, fname, cname, to_fg)
    assert_same(got, _jax_reference(fname)[cname], GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("fname", list(FUNCTIONS))
def test_function_values_match_jax(fname):
    make, x, rest = FUNCTIONS[fname]
    assert_same(make(FG)(*to_fg((x, *rest))), _jax_reference(fname)["value"], GRAD_TOL,
                check_weak=False)
