"""GPT-2 (Radford et al., 2019) as a params dict plus pure functions.

Token and learned position embeddings, ``n_layer`` pre-LayerNorm blocks (causal
self-attention, then a GELU MLP, each added to the residual stream), a final LayerNorm and
an output head that is either the token embedding itself (tied, as in the released models)
or a separate matrix. Dropout (``embd_pdrop``, ``attn_pdrop``, ``resid_pdrop``) runs only
with ``train=True`` and an explicit ``key``.

Decoding keeps one shape: :func:`init_cache` preallocates one :class:`fungrad.nn.KVCache`
per layer for ``max_len`` tokens, and :func:`apply` writes each new token at the cache's
position, so a single jitted step (cache donated) serves every position::

    cfg, params = gpt2.from_pretrained("path/to/gpt2")          # a local Hugging Face folder
    step = fungrad.jit(gpt2.apply, static_argnums=1, donate_argnames="cache")
    cache = gpt2.init_cache(cfg, batch_size=1, max_len=128)
    logits, cache = step(params, cfg, prompt, cache=cache)      # prefill
    logits, cache = step(params, cfg, next_token, cache=cache)  # one token at a time

Checkpoints are read and written in the layout of Hugging Face's ``GPT2LMHeadModel`` (name
table at the bottom of the file).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any, NamedTuple

import numpy as np

import fungrad.numpy as jnp
from fungrad import nn, random
from fungrad._core.namespace import public_dir
from fungrad.models import hf
from fungrad.models.hf import Entry, PretrainedError, require

__all__ = ["ACTIVATIONS", "Cache", "Config", "PRESETS", "apply", "from_pretrained", "init",
           "init_cache", "loss", "save_pretrained"]
__dir__ = public_dir(__all__)

# Hugging Face ``activation_function`` names GPT-2 checkpoints use, and their fungrad form.
ACTIVATIONS = {
    "gelu_new": lambda x: nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: nn.gelu(x, approximate=True),
    "gelu_fast": lambda x: nn.gelu(x, approximate=True),
    "gelu": lambda x: nn.gelu(x, approximate=False),
    "relu": nn.relu,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """GPT-2 hyperparameters (Hugging Face ``GPT2Config`` names); hashable, so it can be a
    static ``jit`` argument. ``n_inner=None`` means ``4 * n_embd``."""
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    resid_pdrop: float = 0.1
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"gpt2.Config: n_embd={self.n_embd} is not divisible by "
                             f"n_head={self.n_head}")
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(f"gpt2.Config: activation_function {self.activation_function!r} is "
                             f"not one of {sorted(ACTIVATIONS)}")

    @property
    def inner(self) -> int:
        """The MLP's hidden width: ``n_inner``, or ``4 * n_embd`` when it is unset (as HF)."""
        return self.n_inner or 4 * self.n_embd

    @classmethod
    def from_hf(cls, config: dict) -> "Config":
        """Read a Hugging Face ``config.json`` dict; raise :class:`PretrainedError` naming
        any architecture or option this implementation does not reproduce."""
        require(config.get("model_type", "gpt2") == "gpt2", "gpt2",
                f"model_type {config.get('model_type')!r} is not 'gpt2'")
        archs = config.get("architectures") or ["GPT2LMHeadModel"]
        require("GPT2LMHeadModel" in archs, "gpt2",
                f"architectures {archs} do not include GPT2LMHeadModel")
        unsupported = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
                       "reorder_and_upcast_attn": False, "add_cross_attention": False}
        for option, supported in unsupported.items():
            require(config.get(option, supported) == supported, "gpt2",
                    f"option {option}={config.get(option)!r} is not supported")
        act = config.get("activation_function", "gelu_new")
        require(act in ACTIVATIONS, "gpt2", f"option activation_function={act!r} is not supported "
                f"(supported: {sorted(ACTIVATIONS)})")
        eos = config.get("eos_token_id", 50256)
        require(not isinstance(eos, list), "gpt2",
                f"option eos_token_id={eos!r} (a list) is not supported")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in fields})

    def to_hf(self) -> dict:
        """The ``config.json`` dict ``transformers`` loads as ``GPT2LMHeadModel``."""
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                **dataclasses.asdict(self)}


PRESETS = {
    "gpt2": Config(),                                                   # 124M
    "gpt2-medium": Config(n_embd=1024, n_layer=24, n_head=16),          # 355M
    "gpt2-large": Config(n_embd=1280, n_layer=36, n_head=20),           # 774M
    "gpt2-xl": Config(n_embd=1600, n_layer=48, n_head=25),              # 1.5B
    "tiny": Config(vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=99,
                   eos_token_id=99),
}


# --------------------------------------------------------------------------- params

def init(key: Any, cfg: Config) -> dict:
    """Random params as Hugging Face initialises GPT-2: normal(0, ``initializer_range``)
    weights, the residual output projections scaled by ``1/sqrt(2 n_layer)``, zero biases."""
    normal = nn.initializers.normal(cfg.initializer_range)
    out_scale = nn.initializers.normal(cfg.initializer_range / math.sqrt(2 * cfg.n_layer))
    d = cfg.n_embd

    def block(key):
        ka, kf, kp = random.split(key, 3)
        attn = {name: nn.linear_init(k, d, d, w_init=out_scale if name == "o" else normal)
                for name, k in zip("qkvo", random.split(ka, 4))}
        return {"ln_1": nn.norm_init(d), "attn": attn, "ln_2": nn.norm_init(d),
                "mlp": {"fc_in": nn.linear_init(kf, d, cfg.inner, w_init=normal),
                        "fc_out": nn.linear_init(kp, cfg.inner, d, w_init=out_scale)}}

    kt, kp, kh, kb = random.split(key, 4)
    params = {"wte": nn.embedding_init(kt, cfg.vocab_size, d, normal),
              "wpe": nn.embedding_init(kp, cfg.n_positions, d, normal),
              "blocks": [block(k) for k in random.split(kb, cfg.n_layer)],
              "ln_f": nn.norm_init(d)}
    if not cfg.tie_word_embeddings:
        params["lm_head"] = nn.linear_init(kh, d, cfg.vocab_size, use_bias=False, w_init=normal)
    return params


class Cache(NamedTuple):
    """One preallocated :class:`fungrad.nn.KVCache` per layer (all at the same position)."""
    layers: tuple


def init_cache(cfg: Config, batch_size: int, max_len: int, dtype: Any = jnp.float32) -> Cache:
    """An empty cache for ``batch_size`` rows of up to ``max_len`` tokens in all."""
    if max_len > cfg.n_positions:
        raise ValueError(f"gpt2.init_cache: max_len {max_len} is more than the model's "
                         f"n_positions ({cfg.n_positions})")
    head_dim = cfg.n_embd // cfg.n_head
    return Cache(tuple(nn.init_kv_cache(batch_size, max_len, cfg.n_head, head_dim, dtype)
                       for _ in range(cfg.n_layer)))


# --------------------------------------------------------------------------- forward

def _block(p: dict, cfg: Config, x: Any, mask: Any, cache: nn.KVCache | None, keys: Any
           ) -> tuple[Any, nn.KVCache | None]:
    """``x + attn(ln_1(x))``, then ``+ mlp(ln_2(x))``; ``keys`` is None or three dropout keys."""
    k_attn, k_res1, k_res2 = (None, None, None) if keys is None else keys
    h, cache = nn.multi_head_attention(p["attn"],
                                       nn.layer_norm(p["ln_1"], x, cfg.layer_norm_epsilon),
                                       n_heads=cfg.n_head, padding_mask=mask, cache=cache,
                                       dropout_rate=cfg.attn_pdrop, dropout_key=k_attn)
    x = x + _dropout(k_res1, h, cfg.resid_pdrop)
    h = nn.mlp(p["mlp"], nn.layer_norm(p["ln_2"], x, cfg.layer_norm_epsilon),
               ACTIVATIONS[cfg.activation_function])
    return x + _dropout(k_res2, h, cfg.resid_pdrop), cache


def _dropout(key: Any, x: Any, rate: float) -> Any:
    return x if key is None else nn.dropout(key, x, rate)


def apply(params: dict, cfg: Config, tokens: Any, *, cache: Cache | None = None,
          train: bool = False, key: Any = None,
          attention_mask: Any = None) -> tuple[Any, Cache | None]:
    """Logits ``(batch, time, vocab)`` for int32 ``tokens (batch, time)``, and the new cache.

    With ``cache`` the tokens continue what the cache holds (prefill a prompt, then feed one
    token at a time); without it the result's cache is None. ``attention_mask (B, T)`` is
    True for real tokens (left padding): a token's position counts the real tokens before
    it in its row, as :func:`fungrad.nn.token_positions` and Hugging Face's ``generate`` do.
    Dropout runs only when ``train`` is True, with ``key``.
    """
    if train and key is None:
        raise ValueError("gpt2.apply: train=True needs an explicit PRNG key for dropout")
    B, T = tokens.shape
    if T > cfg.n_positions:
        raise ValueError(f"gpt2.apply: {T} tokens are more than the model's n_positions "
                         f"({cfg.n_positions})")
    keys = random.split(key, 3 * cfg.n_layer + 1) if train else None
    if attention_mask is None and cache is None:  # positions 0..T-1 of every row: a slice,
        # whose gradient is a sum over the batch rather than a scatter-add
        position_embeddings = params["wpe"]["embedding"][:T]
    else:
        cached = None if cache is None else cache.layers[0]
        position_embeddings = nn.embedding(params["wpe"],
                                           nn.token_positions(B, T, attention_mask, cached))
    x = nn.embedding(params["wte"], tokens) + position_embeddings
    x = _dropout(None if keys is None else keys[-1], x, cfg.embd_pdrop)
    new_layers = []
    for i, p in enumerate(params["blocks"]):
        layer_keys = None if keys is None else keys[3 * i:3 * i + 3]
        layer_cache = None if cache is None else cache.layers[i]
        x, layer_cache = _block(p, cfg, x, attention_mask, layer_cache, layer_keys)
        new_layers.append(layer_cache)
    x = nn.layer_norm(params["ln_f"], x, cfg.layer_norm_epsilon)
    logits = (nn.embedding_attend(params["wte"], x) if cfg.tie_word_embeddings
              else nn.linear(params["lm_head"], x))
    return logits, None if cache is None else Cache(tuple(new_layers))


def loss(params: dict, cfg: Config, tokens: Any, targets: Any, *, train: bool = False,
         key: Any = None) -> Any:
    """Mean next-token cross-entropy of ``targets (batch, time)`` given ``tokens``."""
    logits, _ = apply(params, cfg, tokens, train=train, key=key)
    return jnp.mean(nn.softmax_cross_entropy_with_integer_labels(logits, targets))


# --------------------------------------------------------------------------- Hugging Face folders

def from_pretrained(path: str | os.PathLike, dtype: Any = jnp.float32) -> tuple[Config, dict]:
    """Load a local Hugging Face GPT-2 folder (``config.json`` + safetensors, single or
    sharded; float32/float16/bfloat16 weights) as ``(cfg, params)`` in ``dtype``."""
    prepare = lambda tensors, cfg: _split_qkv(_canonical_names(tensors, cfg))  # noqa: E731
    return hf.load_pretrained(path, "gpt2", Config.from_hf, init, _table, dtype, prepare)


def save_pretrained(path: str | os.PathLike, cfg: Config, params: dict,
                    max_shard_bytes: int | None = None) -> None:
    """Write ``params`` as a Hugging Face ``GPT2LMHeadModel`` folder."""
    tensors = _fuse_qkv(hf.hf_from_params(_table(cfg), params))
    hf.save_folder(path, cfg.to_hf(), tensors, max_shard_bytes)


_PREFIX = "transformer."
# Causal-mask buffers that older ``transformers`` versions saved with the weights.
_MASK_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")
_C_ATTN = re.compile(r"transformer\.h\.\d+\.attn\.c_attn\.(weight|bias)")


def _canonical_names(tensors: dict, cfg: Config) -> dict:
    """Names as ``GPT2LMHeadModel`` writes them today: the released checkpoints store the
    bare ``GPT2Model`` names (``h.0.…``, no ``transformer.`` prefix) plus causal-mask
    buffers, and a tied model's file may repeat the embedding as ``lm_head.weight``."""
    out = {}
    for name, t in tensors.items():
        bare = name[len(_PREFIX):] if name.startswith(_PREFIX) else name
        if _MASK_BUFFER.fullmatch(bare) or (name == "lm_head.weight" and cfg.tie_word_embeddings):
            continue
        out[name if name == "lm_head.weight" else _PREFIX + bare] = t
    return out


def _split_qkv(tensors: dict) -> dict:
    """Hugging Face keeps q, k and v in one ``Conv1D`` per layer, ``c_attn`` (weight
    ``(in, 3 * out)``, bias ``(3 * out,)``); fungrad keeps them apart. Each fused tensor
    becomes three, named ``…c_attn.weight[q]`` and so on (the name table's names)."""
    out = {}
    for name, t in tensors.items():
        if not _C_ATTN.fullmatch(name):
            out[name] = t
            continue
        if t.shape[-1] % 3:
            raise PretrainedError(f"gpt2.from_pretrained: tensor {name!r} has shape "
                                  f"{tuple(t.shape)}; its last axis should hold q, k and v "
                                  "(a multiple of 3)")
        for part, piece in zip("qkv", np.split(t, 3, axis=-1)):
            out[f"{name}[{part}]"] = piece
    return out


def _fuse_qkv(tensors: dict) -> dict:
    """The inverse of :func:`_split_qkv`, for saving."""
    out = {}
    for name, t in tensors.items():
        if name.endswith("[q]"):
            fused = name[:-3]
            out[fused] = np.concatenate([tensors[f"{fused}[{part}]"] for part in "qkv"], axis=-1)
        elif not name.endswith(("[k]", "[v]")):
            out[name] = t
    return out


def _table(cfg: Config) -> list[Entry]:
    """Hugging Face ``GPT2LMHeadModel`` names -> paths in the params dict. GPT-2's
    ``Conv1D`` layers store weights ``(in, out)`` like fungrad, so only the untied
    ``lm_head`` (a ``torch.nn.Linear``) is transposed."""
    t = _PREFIX
    table = [Entry(f"{t}wte.weight", ("wte", "embedding")),
             Entry(f"{t}wpe.weight", ("wpe", "embedding")),
             Entry(f"{t}ln_f.weight", ("ln_f", "scale")), Entry(f"{t}ln_f.bias", ("ln_f", "bias"))]
    for i in range(cfg.n_layer):
        h, blk = f"{t}h.{i}.", ("blocks", i)
        for norm in ("ln_1", "ln_2"):
            table += [Entry(f"{h}{norm}.weight", (*blk, norm, "scale")),
                      Entry(f"{h}{norm}.bias", (*blk, norm, "bias"))]
        for part in "qkv":
            table += [Entry(f"{h}attn.c_attn.weight[{part}]", (*blk, "attn", part, "w")),
                      Entry(f"{h}attn.c_attn.bias[{part}]", (*blk, "attn", part, "b"))]
        for hf_name, path in (("attn.c_proj", ("attn", "o")), ("mlp.c_fc", ("mlp", "fc_in")),
                              ("mlp.c_proj", ("mlp", "fc_out"))):
            table += [Entry(f"{h}{hf_name}.weight", (*blk, *path, "w")),
                      Entry(f"{h}{hf_name}.bias", (*blk, *path, "b"))]
    if not cfg.tie_word_embeddings:
        table.append(Entry("lm_head.weight", ("lm_head", "w"), transpose=True))
    return table
