"""LLaMA (Touvron et al., 2023): a decoder-only transformer with pre-RMSNorm residual
blocks, rotary position embeddings, grouped-query attention and a SwiGLU feed-forward,
without biases.

Everything is a params dict plus pure functions::

    cfg = llama.PRESETS["tiny"]
    params = llama.init(random.PRNGKey(0), cfg)
    logits, _ = llama.apply(params, cfg, tokens)                      # (B, T, vocab)
    cache = llama.init_cache(cfg, batch_size=1, max_len=64)
    logits, cache = llama.apply(params, cfg, prompt, cache=cache)      # prefill
    logits, cache = llama.apply(params, cfg, next_token, cache=cache)  # one decode step
    cfg, params = llama.from_pretrained("path/to/hf-folder")

Mixtral (``fungrad.models.mixtral``) is this model with a mixture-of-experts
feed-forward; it reuses :func:`init_decoder`, :func:`decoder` and :func:`name_table`,
which take the feed-forward as an argument.

RoPE scaling: ``rope_scaling`` ``None`` (plain RoPE at ``rope_theta``), ``"linear"``
(positions divided by ``factor``) and ``"llama3"`` (Llama 3.1's frequency-dependent
interpolation) are supported; other Hugging Face variants (``dynamic``, ``yarn``,
``longrope``, ...) raise :class:`~fungrad.models.hf.PretrainedError`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import fungrad.numpy as jnp
from fungrad import nn, random
from fungrad._core.namespace import public_dir
from fungrad.models import hf
from fungrad.models.hf import Entry, require
from fungrad.nn import initializers

__all__ = ["Cache", "Config", "PRESETS", "RopeScaling", "apply", "decoder", "from_pretrained",
           "init", "init_cache", "init_decoder", "loss", "name_table", "save_pretrained"]
__dir__ = public_dir(__all__)


# --------------------------------------------------------------------------- config

@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """A RoPE context-extension scheme, applied to the inverse frequencies.

    ``"linear"`` divides every frequency by ``factor``. ``"llama3"`` divides the low
    frequencies (wavelength above ``original_max_len / low_freq_factor``) by ``factor``,
    keeps the high ones (wavelength below ``original_max_len / high_freq_factor``) and
    interpolates smoothly in between."""
    kind: str
    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_len: int = 8192

    def __call__(self, inv_freq: Any) -> Any:
        if self.kind == "linear":
            return inv_freq / self.factor
        wavelen = 2 * math.pi / inv_freq
        low, high = self.low_freq_factor, self.high_freq_factor
        scaled = jnp.where(wavelen > self.original_max_len / low, inv_freq / self.factor, inv_freq)
        smooth = (self.original_max_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / self.factor + smooth * scaled
        n = self.original_max_len
        medium = (wavelen >= n / high) & (wavelen <= n / low)
        return jnp.where(medium, smoothed, scaled)


@dataclasses.dataclass(frozen=True)
class Config:
    """LLaMA hyperparameters (hashable: usable as a static ``jit`` argument).

    ``head_dim`` defaults to ``d_model // n_heads`` and ``n_kv_heads`` to ``n_heads``
    (``n_kv_heads < n_heads`` is grouped-query attention)."""
    vocab_size: int = 32000
    d_model: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = None
    head_dim: int | None = None
    d_ff: int = 11008
    max_len: int = 2048
    norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    tie_embeddings: bool = False
    attention_dropout: float = 0.0

    def __post_init__(self):
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.head_dim is None:
            object.__setattr__(self, "head_dim", self.d_model // self.n_heads)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"llama.Config: n_heads={self.n_heads} is not a multiple of "
                             f"n_kv_heads={self.n_kv_heads}")

    @classmethod
    def from_hf(cls, config: dict) -> "Config":
        """Read a Hugging Face ``LlamaConfig`` dict (``config.json``)."""
        return cls(**hf_fields(config, "llama", "LlamaForCausalLM", default_theta=10000.0))

    def to_hf(self) -> dict:
        """The ``config.json`` dict that ``transformers`` loads as this model."""
        return {**hf_config(self, "llama", "LlamaForCausalLM"), "attention_bias": False,
                "mlp_bias": False}


PRESETS: dict[str, Config] = {
    "llama-7b": Config(),
    "tiny": Config(vocab_size=128, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128,
                   max_len=256),
}


def hf_fields(config: dict, model: str, architecture: str, default_theta: float) -> dict:
    """The :class:`Config` fields of a Hugging Face LLaMA-like config dict, refusing the
    options this implementation does not compute (with the option's name)."""
    require(config.get("model_type") == model, model,
            f"config.json has model_type {config.get('model_type')!r}, expected {model!r}")
    archs = config.get("architectures") or [architecture]
    require(architecture in archs, model,
            f"architectures {archs} are not supported (only {architecture})")
    require(config.get("hidden_act", "silu") == "silu", model,
            f"hidden_act={config.get('hidden_act')!r} is not supported (only 'silu')")
    for option in ("attention_bias", "mlp_bias"):
        require(not config.get(option, False), model, f"{option}=True is not supported")
    lacking = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size") if k not in config]
    require(not lacking, model, f"config.json lacks {lacking}")
    n_heads = config["num_attention_heads"]
    return dict(vocab_size=config["vocab_size"], d_model=config["hidden_size"],
                n_layers=config["num_hidden_layers"], n_heads=n_heads,
                n_kv_heads=config.get("num_key_value_heads") or n_heads,
                head_dim=config.get("head_dim") or config["hidden_size"] // n_heads,
                d_ff=config["intermediate_size"],
                max_len=config.get("max_position_embeddings", 2048),
                norm_eps=config.get("rms_norm_eps", 1e-6),
                tie_embeddings=config.get("tie_word_embeddings", False),
                attention_dropout=float(config.get("attention_dropout") or 0.0),
                **_rope_fields(config, model, default_theta))


def _rope_fields(config: dict, model: str, default_theta: float) -> dict:
    """``rope_theta`` and ``rope_scaling`` from either the ``rope_parameters`` dict of
    transformers 5 or the ``rope_theta``/``rope_scaling`` keys of earlier versions."""
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    require(all(not isinstance(v, dict) for v in rope.values()), model,
            "per-layer-type rope_parameters are not supported")
    theta = rope.get("rope_theta", config.get("rope_theta", default_theta))
    kind = rope.get("rope_type", rope.get("type", "default"))
    partial = rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0))
    require(partial == 1.0, model, f"partial_rotary_factor={partial} is not supported")
    require(kind in ("default", "linear", "llama3"), model,
            f"rope scaling type {kind!r} is not supported (supported: none, 'linear', 'llama3')")
    if kind == "default":
        return dict(rope_theta=float(theta), rope_scaling=None)
    if kind == "linear":
        return dict(rope_theta=float(theta),
                    rope_scaling=RopeScaling("linear", float(rope["factor"])))
    original = rope.get("original_max_position_embeddings",
                        config.get("max_position_embeddings", 8192))
    return dict(rope_theta=float(theta), rope_scaling=RopeScaling(
        "llama3", float(rope["factor"]), float(rope["low_freq_factor"]),
        float(rope["high_freq_factor"]), int(original)))


def hf_config(cfg: Config, model: str, architecture: str) -> dict:
    """The Hugging Face config keys shared by LLaMA and Mixtral."""
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling is not None:
        s = cfg.rope_scaling
        rope.update(rope_type=s.kind, factor=s.factor)
        if s.kind == "llama3":
            rope.update(low_freq_factor=s.low_freq_factor, high_freq_factor=s.high_freq_factor,
                        original_max_position_embeddings=s.original_max_len)
    return {"architectures": [architecture], "model_type": model, "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.d_model, "intermediate_size": cfg.d_ff,
            "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
            "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim, "hidden_act": "silu",
            "max_position_embeddings": cfg.max_len, "rms_norm_eps": cfg.norm_eps,
            "rope_theta": cfg.rope_theta, "rope_parameters": rope,
            "tie_word_embeddings": cfg.tie_embeddings, "attention_dropout": cfg.attention_dropout}


# --------------------------------------------------------------------------- params

def init_decoder(key: Any, cfg: Config, feed_forward_init: Callable[[Any, Config], dict]) -> dict:
    """Embeddings, ``cfg.n_layers`` blocks whose feed-forward is ``feed_forward_init(key,
    cfg)``, the final norm and (unless tied) the output head."""
    k_embed, k_head, *k_layers = random.split(key, cfg.n_layers + 2)
    params = {"embed": nn.embedding_init(k_embed, cfg.vocab_size, cfg.d_model,
                                         initializers.normal(0.02)),
              "layers": [_block_init(k, cfg, feed_forward_init) for k in k_layers],
              "norm": nn.norm_init(cfg.d_model, use_bias=False)}
    if not cfg.tie_embeddings:
        params["head"] = nn.linear_init(k_head, cfg.d_model, cfg.vocab_size, use_bias=False)
    return params


def _block_init(key: Any, cfg: Config, feed_forward_init: Callable[[Any, Config], dict]) -> dict:
    k_attn, k_mlp = random.split(key)
    return {"attn_norm": nn.norm_init(cfg.d_model, use_bias=False),
            "attn": nn.attention_init(k_attn, cfg.d_model, cfg.n_heads, cfg.n_kv_heads,
                                      head_dim=cfg.head_dim),
            "mlp_norm": nn.norm_init(cfg.d_model, use_bias=False),
            "mlp": feed_forward_init(k_mlp, cfg)}


def init(key: Any, cfg: Config) -> dict:
    """Random LLaMA params for ``cfg``."""
    return init_decoder(key, cfg, lambda k, cfg: nn.swiglu_init(k, cfg.d_model, cfg.d_ff))


# --------------------------------------------------------------------------- forward

class Cache(NamedTuple):
    """The decoding state: one preallocated :class:`fungrad.nn.KVCache` per layer."""
    layers: tuple


def init_cache(cfg: Config, batch_size: int, max_len: int, dtype: Any = jnp.float32) -> Cache:
    """An empty cache for ``batch_size`` rows of up to ``max_len`` tokens (prompt included)."""
    return Cache(tuple(nn.init_kv_cache(batch_size, max_len, cfg.n_kv_heads, cfg.head_dim, dtype)
                       for _ in range(cfg.n_layers)))


FeedForward = Callable[[dict, Any, Any], tuple[Any, Any]]


def decoder(params: dict, cfg: Config, tokens: Any, feed_forward: FeedForward, *,
            cache: Cache | None = None, key: Any = None,
            attention_mask: Any = None) -> tuple[Any, Cache | None, list]:
    """Logits ``(B, T, vocab)`` of the decoder whose blocks call ``feed_forward(params,
    x, key) -> (y, aux)``; returns ``(logits, new_cache, [aux of each block])``.

    ``key`` (training only) drives attention dropout and whatever randomness the
    feed-forward has; ``attention_mask (B, T)`` is True for real tokens (left padding).
    """
    B, T = tokens.shape
    table_len = T if cache is None else cache.layers[0].k.shape[1]
    rope = nn.rope_frequencies(cfg.head_dim, table_len, cfg.rope_theta, scaling=cfg.rope_scaling)
    positions = nn.token_positions(B, T, attention_mask, None if cache is None else cache.layers[0])
    keys = [None] * (2 * cfg.n_layers) if key is None else list(random.split(key, 2 * cfg.n_layers))
    x = nn.embedding(params["embed"], tokens)
    new_caches, aux = [], []
    for i, block in enumerate(params["layers"]):
        h, layer_cache = nn.multi_head_attention(
            block["attn"], nn.rms_norm(block["attn_norm"], x, cfg.norm_eps), n_heads=cfg.n_heads,
            n_kv_heads=cfg.n_kv_heads, padding_mask=attention_mask, rope=rope, positions=positions,
            cache=None if cache is None else cache.layers[i], dropout_rate=cfg.attention_dropout,
            dropout_key=keys[2 * i] if cfg.attention_dropout else None)
        x = x + h
        h, block_aux = feed_forward(block["mlp"], nn.rms_norm(block["mlp_norm"], x, cfg.norm_eps),
                                    keys[2 * i + 1])
        x = x + h
        new_caches.append(layer_cache)
        aux.append(block_aux)
    x = nn.rms_norm(params["norm"], x, cfg.norm_eps)
    logits = (nn.embedding_attend(params["embed"], x) if cfg.tie_embeddings
              else nn.linear(params["head"], x))
    return logits, None if cache is None else Cache(tuple(new_caches)), aux


def apply(params: dict, cfg: Config, tokens: Any, *, cache: Cache | None = None,
          train: bool = False, key: Any = None,
          attention_mask: Any = None) -> tuple[Any, Cache | None]:
    """Logits ``(B, T, vocab)`` for int32 ``tokens (B, T)``, and the updated cache (``None``
    without one). ``train=True`` with ``key`` turns on attention dropout (if the config has
    any); ``attention_mask (B, T)`` is True for real tokens, with prompts left-padded."""
    if train and cfg.attention_dropout and key is None:
        raise ValueError("llama.apply: training with attention_dropout needs a PRNG key")
    logits, cache, _ = decoder(params, cfg, tokens, lambda p, x, k: (nn.swiglu(p, x), None),
                               cache=cache, key=key if train else None,
                               attention_mask=attention_mask)
    return logits, cache


def loss(params: dict, cfg: Config, tokens: Any, targets: Any, *, train: bool = False,
         key: Any = None) -> Any:
    """Mean next-token cross-entropy of ``targets (B, T)`` (usually ``tokens`` shifted by one)."""
    logits, _ = apply(params, cfg, tokens, train=train, key=key)
    return nn.cross_entropy(logits, targets)


# --------------------------------------------------------------------------- Hugging Face weights

def from_pretrained(path: Any, dtype: Any = jnp.float32) -> tuple[Config, dict]:
    """Load a local Hugging Face ``LlamaForCausalLM`` folder (safetensors, single or
    sharded; float32/float16/bfloat16 weights, cast to ``dtype``)."""
    return hf.load_pretrained(path, "llama", Config.from_hf, init, name_table, dtype)


def save_pretrained(path: Any, cfg: Config, params: dict,
                    max_shard_bytes: int | None = None) -> None:
    """Write a folder that ``transformers.AutoModelForCausalLM.from_pretrained`` loads."""
    hf.save_pretrained(path, cfg, params, name_table(cfg), max_shard_bytes)


def swiglu_entries(hf_prefix: str, path: tuple, cfg: Config) -> list[Entry]:
    """LLaMA's feed-forward tensors: ``mlp.{gate,up,down}_proj`` (stored ``(out, in)``)."""
    return [Entry(f"{hf_prefix}mlp.{name}_proj.weight", path + (name, "w"), True)
            for name in ("gate", "up", "down")]


def name_table(cfg: Config,
               feed_forward_entries: Callable[[str, tuple, Config], list[Entry]] = swiglu_entries
               ) -> list[Entry]:
    """Hugging Face tensor names of every param; the feed-forward's come from
    ``feed_forward_entries(hf_prefix_of_the_layer, params_path_of_its_feed_forward, cfg)``."""
    table = [Entry("model.embed_tokens.weight", ("embed", "embedding")),
             Entry("model.norm.weight", ("norm", "scale"))]
    if not cfg.tie_embeddings:
        table.append(Entry("lm_head.weight", ("head", "w"), True))
    for i in range(cfg.n_layers):
        prefix, path = f"model.layers.{i}.", ("layers", i)
        table += [Entry(prefix + "input_layernorm.weight", path + ("attn_norm", "scale")),
                  Entry(prefix + "post_attention_layernorm.weight", path + ("mlp_norm", "scale"))]
        table += [Entry(f"{prefix}self_attn.{n}_proj.weight", path + ("attn", n, "w"), True)
                  for n in "qkvo"]
        table += feed_forward_entries(prefix, path + ("mlp",), cfg)
    return table
