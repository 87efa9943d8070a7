"""Mamba (Gu & Dao, 2023): a language model of selective state-space blocks, no attention.

Each block normalises its input (RMSNorm) and runs a *mixer*, added back residually:

    x, z  = in_proj(h)                      two branches of width d_inner = expand * d_model
    x     = silu(causal_conv1d(x))          depthwise, kernel d_conv, over time
    dt, B, C = x_proj(x)                    input-dependent (the "selective" part)
    dt    = softplus(dt_proj(dt))           one step size per channel and token
    h_t   = exp(dt_t A) * h_{t-1} + dt_t B_t x_t      state (d_inner, d_state) per row
    y_t   = h_t C_t + D x_t
    out   = out_proj(y * silu(z))

``A = -exp(A_log)`` and ``D`` are learned per channel. Training and prompts run the
recurrence for all tokens at once as a parallel prefix scan (``lax.associative_scan``:
``(a, b) . (a', b') = (a a', a' b + b')``); decoding runs it one token at a time on the
cached state, so a generated token costs the same whatever the length before it.

The cache (:func:`init_cache`) holds, per layer, the last ``d_conv`` inputs of the
convolution, ``(B, d_inner, d_conv)``, and the state, ``(B, d_inner, d_state)``, plus the
number of tokens seen. The convolution inputs are kept as a ring (the token at time ``t``
in slot ``t % d_conv``), so a decode step writes one slot in place instead of shifting.

Left padding (``attention_mask`` False at the start of a row) zeroes the convolution's
input and output at padded tokens, as Hugging Face's mixer does: the state stays zero
through the padding, so a padded row gives the logits of the same row alone. Mamba has no
dropout; ``train`` and ``key`` are accepted for the common language-model API.

Weights follow Hugging Face ``MambaForCausalLM`` (:func:`from_pretrained`,
:func:`save_pretrained`; the name table is at the bottom).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, NamedTuple

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad._core.namespace import public_dir
from fungrad.models import hf
from fungrad.nn import (causal_conv1d, conv, embedding, embedding_attend, linear, rms_norm, silu,
                        softmax_cross_entropy_with_integer_labels, softplus)
from fungrad.nn import initializers

__all__ = ["Config", "PRESETS", "LayerCache", "MambaCache", "init", "init_cache", "apply", "loss",
           "from_pretrained", "save_pretrained"]
__dir__ = public_dir(__all__)


# --------------------------------------------------------------------------- config

@dataclasses.dataclass(frozen=True)
class Config:
    """Mamba hyperparameters (frozen and hashable: pass it to ``jit`` as a static argument).

    ``dt_rank`` is the width of the step-size bottleneck (Hugging Face ``time_step_rank``;
    ``"auto"`` there means ``ceil(d_model / 16)``). The ``dt_*`` and ``initializer_range``
    fields and ``rescale_prenorm_residual`` only affect :func:`init`.
    """
    vocab_size: int = 50280
    d_model: int = 768
    n_layers: int = 24
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 48
    eps: float = 1e-5
    use_bias: bool = False            # in_proj and out_proj
    use_conv_bias: bool = True
    tie_embeddings: bool = True
    residual_in_fp32: bool = True
    initializer_range: float = 0.1
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_floor: float = 1e-4
    dt_scale: float = 1.0
    dt_init: str = "random"           # or "constant"
    rescale_prenorm_residual: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 0
    eos_token_id: int | tuple | None = 0

    @property
    def d_inner(self) -> int:
        """The width of the mixer's inner stream: ``expand * d_model``."""
        return self.expand * self.d_model

    @classmethod
    def from_hf(cls, config: dict) -> "Config":
        """Read a Hugging Face ``MambaConfig`` dict (``config.json``); absent keys take
        Hugging Face's defaults."""
        hf.require(config.get("model_type", "mamba") == "mamba", "mamba",
                   f"model_type {config.get('model_type')!r} is not a Mamba model")
        act = config.get("hidden_act", "silu")
        hf.require(act in ("silu", "swish"), "mamba",
                   f"hidden_act={act!r} is not supported (only 'silu')")
        fields = {field: config.get(name, default) for field, name, default in _HF_FIELDS}
        rank = config.get("time_step_rank", "auto")
        fields["dt_rank"] = math.ceil(fields["d_model"] / 16) if rank == "auto" else int(rank)
        if isinstance(fields["eos_token_id"], list):
            fields["eos_token_id"] = tuple(fields["eos_token_id"])
        return cls(**fields)

    def to_hf(self) -> dict:
        """The ``config.json`` dict that ``transformers`` loads as this model."""
        config = {name: getattr(self, field) for field, name, _ in _HF_FIELDS}
        if isinstance(self.eos_token_id, tuple):
            config["eos_token_id"] = list(self.eos_token_id)
        return {"architectures": ["MambaForCausalLM"], "model_type": "mamba", "hidden_act": "silu",
                "time_step_rank": self.dt_rank, "intermediate_size": self.d_inner, **config}


# (Config field, Hugging Face MambaConfig name, Hugging Face default)
_HF_FIELDS = (
    ("vocab_size", "vocab_size", 50280), ("d_model", "hidden_size", 768),
    ("n_layers", "num_hidden_layers", 32), ("d_state", "state_size", 16),
    ("d_conv", "conv_kernel", 4), ("expand", "expand", 2), ("eps", "layer_norm_epsilon", 1e-5),
    ("use_bias", "use_bias", False), ("use_conv_bias", "use_conv_bias", True),
    ("tie_embeddings", "tie_word_embeddings", True), ("residual_in_fp32", "residual_in_fp32", True),
    ("initializer_range", "initializer_range", 0.1), ("dt_min", "time_step_min", 0.001),
    ("dt_max", "time_step_max", 0.1), ("dt_floor", "time_step_floor", 1e-4),
    ("dt_scale", "time_step_scale", 1.0), ("dt_init", "time_step_init_scheme", "random"),
    ("rescale_prenorm_residual", "rescale_prenorm_residual", False),
    ("pad_token_id", "pad_token_id", 0), ("bos_token_id", "bos_token_id", 0),
    ("eos_token_id", "eos_token_id", 0),
)


PRESETS = {
    "mamba-130m": Config(),
    "tiny": Config(vocab_size=96, d_model=32, n_layers=2, d_state=8, d_conv=4, expand=2, dt_rank=4),
}


# --------------------------------------------------------------------------- params

def init(key: Any, cfg: Config) -> dict:
    """Random params, initialised as Hugging Face does (``A = 1..d_state``, ``D = 1``,
    step sizes log-uniform in ``[dt_min, dt_max]`` through the inverse softplus of the
    ``dt_proj`` bias)."""
    k_emb, k_head, *k_layers = random.split(key, cfg.n_layers + 2)
    normal = initializers.normal(cfg.initializer_range)
    params = {"embedding": {"embedding": normal(k_emb, (cfg.vocab_size, cfg.d_model))},
              "layers": [_block_init(k, cfg) for k in k_layers],
              "norm_f": {"scale": jnp.ones((cfg.d_model,))}}
    if not cfg.tie_embeddings:
        params["lm_head"] = {"w": normal(k_head, (cfg.d_model, cfg.vocab_size))}
    return params


def _dense(key: Any, fan_in: int, fan_out: int, stddev: float, use_bias: bool) -> dict:
    params = {"w": initializers.normal(stddev)(key, (fan_in, fan_out))}
    if use_bias:
        params["b"] = jnp.zeros((fan_out,))
    return params


def _block_init(key: Any, cfg: Config) -> dict:
    k_in, k_conv, k_x, k_dtw, k_dtb, k_out = random.split(key, 6)
    d, n, r, std = cfg.d_inner, cfg.d_state, cfg.dt_rank, cfg.initializer_range
    bound = 1 / math.sqrt(cfg.d_conv)                 # kaiming_uniform(a=sqrt(5)), fan_in = d_conv
    conv_p = {"w": random.uniform(k_conv, (cfg.d_conv, 1, d), minval=-bound, maxval=bound)}
    if cfg.use_conv_bias:
        conv_p["b"] = jnp.zeros((d,))
    dt_std = r ** -0.5 * cfg.dt_scale
    dt_w = (jnp.full((r, d), dt_std) if cfg.dt_init == "constant"
            else random.uniform(k_dtw, (r, d), minval=-dt_std, maxval=dt_std))
    log_lo, log_hi = math.log(cfg.dt_min), math.log(cfg.dt_max)
    dt = jnp.exp(random.uniform(k_dtb, (d,), minval=log_lo, maxval=log_hi))
    dt = jnp.maximum(dt, cfg.dt_floor)
    out_bound = 1 / math.sqrt(d)
    if cfg.rescale_prenorm_residual:
        out_bound /= math.sqrt(cfg.n_layers)
    out_p = {"w": random.uniform(k_out, (d, cfg.d_model), minval=-out_bound, maxval=out_bound)}
    if cfg.use_bias:
        out_p["b"] = jnp.zeros((cfg.d_model,))
    mixer = {"in_proj": _dense(k_in, cfg.d_model, 2 * d, std, cfg.use_bias),
             "conv": conv_p,
             "x_proj": _dense(k_x, d, r + 2 * n, std, False),
             "dt_proj": {"w": dt_w, "b": dt + jnp.log(-jnp.expm1(-dt))},     # softplus(b) = dt
             "A_log": jnp.log(jnp.broadcast_to(jnp.arange(1, n + 1, dtype=jnp.float32), (d, n))),
             "D": jnp.ones((d,)),
             "out_proj": out_p}
    return {"norm": {"scale": jnp.ones((cfg.d_model,))}, "mixer": mixer}


# --------------------------------------------------------------------------- cache

class LayerCache(NamedTuple):
    """One layer's recurrent state: the convolution's last ``d_conv`` inputs as a ring
    ``(B, d_inner, d_conv)`` (time ``t`` in slot ``t % d_conv``) and the SSM state
    ``(B, d_inner, d_state)``."""
    conv: Any
    ssm: Any


class MambaCache(NamedTuple):
    """Per-layer states and ``pos``, the number of tokens seen (an int32 scalar)."""
    layers: tuple
    pos: Any


def init_cache(cfg: Config, batch_size: int, max_len: int | None = None,
               dtype: Any = jnp.float32) -> MambaCache:
    """An empty (all-zero) cache. Its size does not depend on the sequence length:
    ``max_len`` is accepted for the API shared with the attention models and unused."""
    def layer():
        return LayerCache(jnp.zeros((batch_size, cfg.d_inner, cfg.d_conv), dtype),
                          jnp.zeros((batch_size, cfg.d_inner, cfg.d_state), dtype))
    return MambaCache(tuple(layer() for _ in range(cfg.n_layers)), jnp.zeros((), jnp.int32))


# --------------------------------------------------------------------------- the model

def _conv(params: dict, x: Any, ring: Any, pos: Any) -> tuple[Any, Any]:
    """Causal depthwise convolution of ``x (B, T, d_inner)`` continuing from the inputs
    kept in ``ring`` (None: nothing before). Returns ``(y, new_ring)``."""
    if ring is None:
        return causal_conv1d(params, x), None
    K, T = ring.shape[-1], x.shape[1]
    # The K - 1 inputs before this call, oldest first: times pos-K+1 .. pos-1.
    before = jnp.take(ring, (pos + 1 + jnp.arange(K - 1)) % K, axis=2)
    window = jnp.concatenate([jnp.swapaxes(before, 1, 2).astype(x.dtype), x], axis=1)
    y = conv(params, window, padding="VALID", groups=x.shape[-1], layout="NWC")
    if T == 1:                                          # one slot, written in place
        zero = jnp.zeros((), jnp.int32)
        column = jnp.swapaxes(x, 1, 2).astype(ring.dtype)
        new = lax.dynamic_update_slice(ring, column, (zero, zero, pos % K))
    else:                                               # the last K inputs, in ring order
        last = window[:, -K:]                           # times pos+T-K .. pos+T-1
        new = jnp.take(last, (jnp.arange(K) - pos - T) % K, axis=1)
        new = jnp.swapaxes(new, 1, 2).astype(ring.dtype)
    return y, new


def _combine(left: tuple, right: tuple) -> tuple:
    """Compose two steps of ``h -> a h + b``: first ``left``, then ``right``."""
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


def _ssm_scan(dA: Any, dBx: Any, C: Any, h0: Any) -> tuple[Any, Any]:
    """All ``T`` steps at once: ``dA``, ``dBx`` are ``(B, T, d_inner, d_state)``, ``C`` is
    ``(B, T, d_state)``, ``h0`` the state before (None: zero). Returns ``(y, last state)``."""
    if h0 is not None:
        dBx = dBx.at[:, 0].add(dA[:, 0] * h0)
    _, h = lax.associative_scan(_combine, (dA, dBx), axis=1)
    return jnp.einsum("btdn,btn->btd", h, C), h[:, -1]


def _ssm_step(dA: Any, dBx: Any, C: Any, h: Any) -> tuple[Any, Any]:
    """One decode step (``T == 1``) on the cached state: ``h <- dA h + dBx``."""
    h = dA[:, 0] * h + dBx[:, 0]
    return jnp.einsum("bdn,bn->bd", h, C[:, 0])[:, None], h


def _mixer(params: dict, cfg: Config, h: Any, mask: Any, state: LayerCache | None, pos: Any
           ) -> tuple[Any, LayerCache | None]:
    """The selective SSM of one block on ``h (B, T, d_model)``."""
    x, z = jnp.split(linear(params["in_proj"], h), 2, axis=-1)
    if mask is not None:
        x = x * mask
    x, ring = _conv(params["conv"], x, None if state is None else state.conv, pos)
    x = silu(x)
    if mask is not None:
        x = x * mask
    r, n = cfg.dt_rank, cfg.d_state
    dt, B, C = jnp.split(linear(params["x_proj"], x), [r, r + n], axis=-1)
    # The recurrence runs in float32 whatever the weights' dtype (as Hugging Face does).
    f32 = jnp.float32
    dt = softplus(linear(params["dt_proj"], dt)).astype(f32)          # (B, T, d_inner)
    A = -jnp.exp(params["A_log"].astype(f32))                         # (d_inner, d_state)
    dA = jnp.exp(dt[..., None] * A)
    dBx = (dt * x.astype(f32))[..., None] * B.astype(f32)[:, :, None, :]
    C = C.astype(f32)
    if state is not None and x.shape[1] == 1:
        y, ssm = _ssm_step(dA, dBx, C, state.ssm)
    else:
        y, ssm = _ssm_scan(dA, dBx, C, None if state is None else state.ssm)
    y = (y + x * params["D"]) * silu(z)
    new_state = None if state is None else LayerCache(ring, ssm.astype(state.ssm.dtype))
    return linear(params["out_proj"], y.astype(h.dtype)), new_state


def _block(params: dict, cfg: Config, h: Any, mask: Any, state: LayerCache | None, pos: Any
           ) -> tuple[Any, LayerCache | None]:
    residual = h.astype(jnp.float32) if cfg.residual_in_fp32 else h
    h = rms_norm(params["norm"], h.astype(params["norm"]["scale"].dtype), cfg.eps)
    out, state = _mixer(params["mixer"], cfg, h, mask, state, pos)
    return residual + out, state


def apply(params: dict, cfg: Config, tokens: Any, *, cache: MambaCache | None = None,
          train: bool = False, key: Any = None,
          attention_mask: Any = None) -> tuple[Any, MambaCache | None]:
    """Logits ``(B, T, vocab)`` for int32 ``tokens (B, T)``, and the advanced cache (None
    without one). With a cache and ``T == 1`` this is one recurrent decode step; otherwise
    the scan covers all tokens (continuing from the cache's state when given)."""
    del train, key                                      # no dropout in Mamba
    h = embedding(params["embedding"], tokens)
    mask = None if attention_mask is None else attention_mask.astype(h.dtype)[..., None]
    pos = None if cache is None else cache.pos
    states = []
    for i, layer in enumerate(params["layers"]):
        h, state = _block(layer, cfg, h, mask, None if cache is None else cache.layers[i], pos)
        states.append(state)
    h = rms_norm(params["norm_f"], h.astype(params["norm_f"]["scale"].dtype), cfg.eps)
    if cfg.tie_embeddings:
        logits = embedding_attend(params["embedding"], h)
    else:
        logits = linear(params["lm_head"], h)
    new_cache = None if cache is None else MambaCache(tuple(states), cache.pos + tokens.shape[1])
    return logits, new_cache


def loss(params: dict, cfg: Config, tokens: Any, targets: Any, *, train: bool = False,
         key: Any = None) -> Any:
    """Mean next-token cross-entropy of ``targets (B, T)`` given ``tokens (B, T)``."""
    logits, _ = apply(params, cfg, tokens, train=train, key=key)
    return jnp.mean(softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets))


# --------------------------------------------------------------------------- Hugging Face weights

def from_pretrained(path: str | os.PathLike, dtype: Any = jnp.float32) -> tuple[Config, dict]:
    """Load a local Hugging Face ``MambaForCausalLM`` folder: ``(cfg, params)``."""
    return hf.load_pretrained(path, "mamba", Config.from_hf, init, _table, dtype, _canonical_names)


def _canonical_names(tensors: dict, cfg: Config) -> dict:
    """Rename older checkpoints' ``backbone.embedding`` and drop the copy of the embedding
    that a tied model's file may hold as ``lm_head.weight``."""
    if "backbone.embedding.weight" in tensors:
        tensors["backbone.embeddings.weight"] = tensors.pop("backbone.embedding.weight")
    if cfg.tie_embeddings:
        tensors.pop("lm_head.weight", None)
    return tensors


def save_pretrained(path: str | os.PathLike, cfg: Config, params: dict, dtype: Any = None,
                    max_shard_bytes: int | None = None) -> None:
    """Write a folder that ``transformers.AutoModelForCausalLM.from_pretrained`` loads."""
    hf.save_pretrained(path, cfg, params, _table(cfg), max_shard_bytes, dtype)


def _table(cfg: Config) -> list[hf.Entry]:
    E = hf.Entry
    table = [E("backbone.embeddings.weight", ("embedding", "embedding")),
             E("backbone.norm_f.weight", ("norm_f", "scale"))]
    if not cfg.tie_embeddings:
        table.append(E("lm_head.weight", ("lm_head", "w"), True))
    for i in range(cfg.n_layers):
        pre, at = f"backbone.layers.{i}.", ("layers", i, "mixer")
        table += [E(pre + "norm.weight", ("layers", i, "norm", "scale")),
                  E(pre + "mixer.A_log", (*at, "A_log")), E(pre + "mixer.D", (*at, "D")),
                  E(pre + "mixer.conv1d.weight", (*at, "conv", "w"), True),  # (d_inner, 1, K)
                  E(pre + "mixer.in_proj.weight", (*at, "in_proj", "w"), True),
                  E(pre + "mixer.x_proj.weight", (*at, "x_proj", "w"), True),
                  E(pre + "mixer.dt_proj.weight", (*at, "dt_proj", "w"), True),
                  E(pre + "mixer.dt_proj.bias", (*at, "dt_proj", "b")),
                  E(pre + "mixer.out_proj.weight", (*at, "out_proj", "w"), True)]
        if cfg.use_conv_bias:
            table.append(E(pre + "mixer.conv1d.bias", (*at, "conv", "b")))
        if cfg.use_bias:
            table += [E(pre + "mixer.in_proj.bias", (*at, "in_proj", "b")),
                      E(pre + "mixer.out_proj.bias", (*at, "out_proj", "b"))]
    return table
