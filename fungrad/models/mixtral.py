"""Mixtral (Jiang et al., 2024): LLaMA whose feed-forward is a sparse mixture of SwiGLU
experts. Each token's router picks ``top_k`` of ``n_experts`` experts and sums their
outputs with softmax weights renormalised over the chosen ones; training adds the
router's load-balancing loss (Switch Transformer), weighted by ``router_aux_loss_coef``.

The attention, RoPE, norms, cache, decoder loop and name table are LLaMA's
(``fungrad.models.llama``); the expert layer is :mod:`fungrad.nn.moe`, which runs every
expert on every token and combines them with the routing weights (dense dispatch: exact
under ``jit``/``grad``/``vmap``, at ``n_experts / top_k`` times the feed-forward compute
of a sparse dispatch — fine for small models, see that module)::

    cfg, params = mixtral.from_pretrained("path/to/hf-folder")
    logits, cache = mixtral.apply(params, cfg, tokens, cache=cache)
    logits, cache, aux = mixtral.apply(params, cfg, tokens, return_aux=True)  # + router loss
"""
from __future__ import annotations

import dataclasses
from typing import Any

import fungrad.numpy as jnp
from fungrad import nn
from fungrad._core.namespace import public_dir
from fungrad.models import hf, llama
from fungrad.models.hf import Entry, require
from fungrad.models.llama import Cache, RopeScaling, init_cache  # noqa: F401 (part of this API)
from fungrad.nn import moe

__all__ = ["Cache", "Config", "PRESETS", "RopeScaling", "apply", "from_pretrained", "init",
           "init_cache", "loss", "name_table", "save_pretrained"]
__dir__ = public_dir(__all__)


@dataclasses.dataclass(frozen=True)
class Config(llama.Config):
    """LLaMA's hyperparameters plus the experts': ``n_experts`` per layer, ``top_k`` of them
    per token, the weight of the load-balancing loss in :func:`loss`, and the router's
    input jitter during training."""
    n_experts: int = 8
    top_k: int = 2
    router_aux_loss_coef: float = 0.001
    router_jitter_noise: float = 0.0

    @classmethod
    def from_hf(cls, config: dict) -> "Config":
        """Read a Hugging Face ``MixtralConfig`` dict (``config.json``)."""
        require(config.get("sliding_window") is None, "mixtral",
                f"sliding_window={config.get('sliding_window')} is not supported (only null)")
        return cls(**llama.hf_fields(config, "mixtral", "MixtralForCausalLM", default_theta=1e6),
                   n_experts=config.get("num_local_experts", 8),
                   top_k=config.get("num_experts_per_tok", 2),
                   router_aux_loss_coef=config.get("router_aux_loss_coef", 0.001),
                   router_jitter_noise=float(config.get("router_jitter_noise") or 0.0))

    def to_hf(self) -> dict:
        """The ``config.json`` dict that ``transformers`` loads as this model."""
        return {**llama.hf_config(self, "mixtral", "MixtralForCausalLM"), "sliding_window": None,
                "num_local_experts": self.n_experts, "num_experts_per_tok": self.top_k,
                "router_aux_loss_coef": self.router_aux_loss_coef,
                "router_jitter_noise": self.router_jitter_noise}


PRESETS: dict[str, Config] = {
    "mixtral-8x7b": Config(d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336,
                           max_len=32768, norm_eps=1e-5, rope_theta=1e6),
    "tiny": Config(vocab_size=128, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=96,
                   max_len=256, norm_eps=1e-5, rope_theta=1e6, n_experts=4, top_k=2),
}


def init(key: Any, cfg: Config) -> dict:
    """Random Mixtral params: LLaMA's, with a router and ``n_experts`` experts per layer."""
    return llama.init_decoder(
        key, cfg, lambda k, cfg: moe.moe_init(k, cfg.d_model, cfg.d_ff, cfg.n_experts))


def apply(params: dict, cfg: Config, tokens: Any, *, cache: Cache | None = None,
          train: bool = False, key: Any = None, attention_mask: Any = None,
          return_aux: bool = False) -> tuple:
    """Logits ``(B, T, vocab)`` and the updated cache (as :func:`fungrad.models.llama.apply`);
    with ``return_aux=True`` also the router load-balancing loss over every layer's tokens
    (padding left out with ``attention_mask``), as Hugging Face's ``aux_loss``.

    ``train=True`` with ``key`` turns on attention dropout and router jitter (if any)."""
    if train and (cfg.attention_dropout or cfg.router_jitter_noise) and key is None:
        raise ValueError("mixtral.apply: training with dropout or router jitter needs a PRNG key")

    def feed_forward(p: dict, x: Any, k: Any) -> tuple[Any, Any]:
        return moe.moe(p, x, cfg.top_k, jitter=cfg.router_jitter_noise, key=k)

    logits, cache, router_logits = llama.decoder(params, cfg, tokens, feed_forward, cache=cache,
                                                 key=key if train else None,
                                                 attention_mask=attention_mask)
    if not return_aux:
        return logits, cache
    return logits, cache, moe.load_balancing_loss(router_logits, cfg.top_k, attention_mask)


def loss(params: dict, cfg: Config, tokens: Any, targets: Any, *, train: bool = False,
         key: Any = None) -> Any:
    """Mean next-token cross-entropy plus ``router_aux_loss_coef`` times the load-balancing loss."""
    logits, _, aux = apply(params, cfg, tokens, train=train, key=key, return_aux=True)
    return nn.cross_entropy(logits, targets) + cfg.router_aux_loss_coef * aux


# --------------------------------------------------------------------------- Hugging Face weights

def from_pretrained(path: Any, dtype: Any = jnp.float32) -> tuple[Config, dict]:
    """Load a local Hugging Face ``MixtralForCausalLM`` folder (safetensors, single or
    sharded; float32/float16/bfloat16 weights, cast to ``dtype``)."""
    return hf.load_pretrained(path, "mixtral", Config.from_hf, init, name_table, dtype)


def save_pretrained(path: Any, cfg: Config, params: dict,
                    max_shard_bytes: int | None = None) -> None:
    """Write a folder that ``transformers.AutoModelForCausalLM.from_pretrained`` loads."""
    hf.save_pretrained(path, cfg, params, name_table(cfg), max_shard_bytes)


def _moe_entries(hf_prefix: str, path: tuple, cfg: Config) -> list[Entry]:
    """The router ``block_sparse_moe.gate`` and, per expert, ``w1`` (gate), ``w3`` (up) and
    ``w2`` (down), all stored ``(out, in)``: the checkpoint layout of Mixtral."""
    prefix = hf_prefix + "block_sparse_moe."
    table = [Entry(prefix + "gate.weight", path + ("router", "w"), True)]
    for e in range(cfg.n_experts):
        table += [Entry(f"{prefix}experts.{e}.{w}.weight", path + ("experts", e, name, "w"), True)
                  for w, name in (("w1", "gate"), ("w3", "up"), ("w2", "down"))]
    return table


def name_table(cfg: Config) -> list[Entry]:
    """Hugging Face tensor names of every param (LLaMA's, with the experts' feed-forward)."""
    return llama.name_table(cfg, _moe_entries)
