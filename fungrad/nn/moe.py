"""A sparse mixture of SwiGLU experts (Mixtral): top-k routing, the combination of the
chosen experts' outputs, and the router's load-balancing auxiliary loss.

Dispatch is *dense*: every expert runs on every token and the outputs are summed with
the routing weights, which are zero for the experts a token did not pick. Nothing
depends on how many tokens an expert receives, so shapes are static (one ``jit`` trace,
no capacity, no dropped tokens) and ``grad`` and ``vmap`` need no special rules. The
price is compute: ``n_experts / top_k`` times the feed-forward work of a sparse dispatch
(4x for Mixtral's 8 experts, 2 per token) — right for small models and tests, wasteful
for large ones, whose experts should gather their tokens instead.
"""
from __future__ import annotations

from typing import Any, Sequence

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad._core.namespace import public_dir
from fungrad.nn.functions import one_hot, softmax
from fungrad.nn.layers import linear, linear_init, swiglu, swiglu_init

__all__ = ["moe_init", "route", "moe", "load_balancing_loss"]
__dir__ = public_dir(__all__)


def moe_init(key: Any, features: int, hidden: int, n_experts: int) -> dict:
    """A bias-free router ``(features, n_experts)`` and ``n_experts`` SwiGLU experts."""
    k_router, *k_experts = random.split(key, n_experts + 1)
    return {"router": linear_init(k_router, features, n_experts, use_bias=False),
            "experts": [swiglu_init(k, features, hidden) for k in k_experts]}


def route(router_logits: Any, top_k: int) -> tuple[Any, Any]:
    """The ``top_k`` experts of each token and their weights, as Hugging Face's Mixtral
    computes them: softmax over all experts in float32, the ``top_k`` largest
    probabilities, divided by their sum. Returns ``(weights, experts)``, both ``(..., top_k)``."""
    probs = softmax(router_logits.astype(jnp.float32), axis=-1)
    weights, experts = lax.top_k(probs, top_k)
    return weights / jnp.sum(weights, axis=-1, keepdims=True), experts


def moe(params: dict, x: Any, top_k: int, *, jitter: float = 0.0,
        key: Any = None) -> tuple[Any, Any]:
    """Mixture-of-experts feed-forward of ``x (..., features)``: ``(y, router_logits)``.

    With ``key`` and ``jitter > 0`` (training), ``x`` is first multiplied by noise uniform
    in ``[1 - jitter, 1 + jitter]``, as Mixtral's ``router_jitter_noise`` does.
    """
    if key is not None and jitter > 0:
        x = x * random.uniform(key, x.shape, x.dtype, 1.0 - jitter, 1.0 + jitter)
    router_logits = linear(params["router"], x)
    weights, experts = route(router_logits, top_k)
    n_experts = len(params["experts"])
    combine = jnp.sum(one_hot(experts, n_experts, dtype=weights.dtype) * weights[..., None],
                      axis=-2)
    y = sum(combine[..., e, None] * swiglu(p, x) for e, p in enumerate(params["experts"]))
    return y.astype(x.dtype), router_logits


def load_balancing_loss(router_logits: Sequence[Any], top_k: int, mask: Any = None) -> Any:
    """The Switch Transformer auxiliary loss over all layers' router logits, as Hugging
    Face's ``load_balancing_loss_func``: ``n_experts * sum_e f_e * P_e``, with ``f_e`` the
    number of top-k slots routed to expert ``e`` per token and ``P_e`` the mean router
    probability of ``e``, both over every (layer, token) pair. ``mask`` (the tokens'
    shape, True for real tokens) leaves padding out. Only ``P_e`` carries a gradient."""
    n_experts = router_logits[0].shape[-1]
    logits = jnp.concatenate([jnp.reshape(r, (-1, n_experts)) for r in router_logits], axis=0)
    probs = softmax(logits.astype(jnp.float32), axis=-1)
    _, experts = lax.top_k(probs, top_k)
    counts = jnp.sum(one_hot(experts, n_experts, dtype=jnp.float32), axis=-2)
    if mask is None:
        weight = jnp.ones((logits.shape[0], 1), jnp.float32)
    else:
        weight = jnp.tile(jnp.reshape(mask, (-1, 1)).astype(jnp.float32), (len(router_logits), 1))
    total = jnp.sum(weight)
    tokens_per_expert = jnp.sum(counts * weight, axis=0) / total
    prob_per_expert = jnp.sum(probs * weight, axis=0) / total
    return n_experts * jnp.sum(tokens_per_expert * prob_per_expert)
