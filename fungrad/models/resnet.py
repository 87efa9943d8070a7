"""ResNet (He et al., 2016): residual networks of basic or bottleneck blocks with batch
norm, channels last (NHWC images ``(B, H, W, C)``).

Batch norm keeps running statistics, so the model has *state* next to its params, passed
in and returned explicitly: ``init(key, cfg) -> (params, state)`` and
``apply(params, state, cfg, images, *, train) -> (logits, new_state)``. Training
normalises with the batch's statistics and returns updated running ones; evaluation
(``train=False``) uses the running ones and returns the state unchanged.

Two stems:

* ``"imagenet"``: 7x7 convolution with stride 2 and a 3x3 max pool with stride 2 (ResNet-18,
  -50, and Hugging Face ``ResNetForImageClassification``, whose layout and names this
  follows, so :func:`from_pretrained` reads ``microsoft/resnet-18``/``-50`` folders);
* ``"cifar"``: one 3x3 convolution, no pool, for 32x32 images (ResNet-20 of the paper's
  CIFAR-10 section: three stages of three basic blocks, 16/32/64 channels). Where a
  block changes the shape, its shortcut is the paper's *option B*, a strided 1x1
  convolution with batch norm (the same projection the ImageNet models use), rather than
  option A's zero-padded identity. It has no Hugging Face equivalent, so it is not saved
  in or loaded from that format.

A basic block is two 3x3 convolutions; a bottleneck block narrows to a quarter of its
output width with a 1x1 convolution, applies a 3x3 one and widens back with a 1x1 one (the
stride sits in the 3x3 convolution, "ResNet v1.5", unless ``downsample_in_bottleneck``).
Every convolution is followed by batch norm, and ReLU except before the residual sum.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Iterator, NamedTuple

import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import random, tree
from fungrad._core.namespace import public_dir
from fungrad.models import hf
from fungrad.nn import (BatchNormState, batch_norm, batch_norm_state, conv, global_avg_pool, linear,
                        max_pool, norm_init, relu, softmax_cross_entropy_with_integer_labels)
from fungrad.nn import initializers

__all__ = ["Config", "PRESETS", "Conv", "Block", "init", "apply", "loss", "from_pretrained",
           "save_pretrained"]
__dir__ = public_dir(__all__)


# --------------------------------------------------------------------------- config

@dataclasses.dataclass(frozen=True)
class Config:
    """ResNet hyperparameters, named as in Hugging Face ``ResNetConfig`` (frozen and
    hashable: pass it to ``jit`` as a static argument).

    ``embedding_size`` is the stem's width, ``hidden_sizes[i]`` and ``depths[i]`` the output
    width and number of blocks of stage ``i``. ``bn_momentum`` weighs the old running
    statistics (``new = m * old + (1 - m) * batch``; PyTorch's ``momentum=0.1`` is 0.9 here).
    """
    num_channels: int = 3
    embedding_size: int = 64
    hidden_sizes: tuple = (64, 128, 256, 512)
    depths: tuple = (2, 2, 2, 2)
    layer_type: str = "basic"                 # or "bottleneck"
    downsample_in_first_stage: bool = False
    downsample_in_bottleneck: bool = False
    num_labels: int = 1000
    stem: str = "imagenet"                    # or "cifar"
    bn_eps: float = 1e-5
    bn_momentum: float = 0.9

    def __post_init__(self):
        if self.layer_type not in ("basic", "bottleneck"):
            raise ValueError(f"resnet.Config: layer_type {self.layer_type!r} is not 'basic' or "
                             "'bottleneck'")
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"resnet.Config: stem {self.stem!r} is not 'imagenet' or 'cifar'")
        if len(self.hidden_sizes) != len(self.depths):
            raise ValueError(f"resnet.Config: {len(self.hidden_sizes)} hidden_sizes for "
                             f"{len(self.depths)} stages")

    @classmethod
    def from_hf(cls, config: dict) -> "Config":
        """Read a Hugging Face ``ResNetConfig`` dict (``config.json``); absent keys take
        Hugging Face's defaults."""
        hf.require(config.get("model_type", "resnet") == "resnet", "resnet",
                   f"model_type {config.get('model_type')!r} is not a ResNet")
        act = config.get("hidden_act", "relu")
        hf.require(act == "relu", "resnet", f"hidden_act={act!r} is not supported (only 'relu')")
        fields = {name: config.get(name, default) for name, default in _HF_DEFAULTS.items()}
        hf.require(fields["layer_type"] in ("basic", "bottleneck"), "resnet",
                   f"layer_type={fields['layer_type']!r} is not supported")
        labels = len(config["id2label"]) if "id2label" in config else config.get("num_labels", 2)
        hf.require(labels > 0, "resnet", "num_labels=0 (no classifier head) is not supported")
        return cls(**{**fields, "hidden_sizes": tuple(fields["hidden_sizes"]),
                      "depths": tuple(fields["depths"])}, num_labels=labels)

    def to_hf(self) -> dict:
        """The ``config.json`` dict that ``transformers`` loads as this model."""
        hf.require(self.stem == "imagenet", "resnet", "the CIFAR stem has no Hugging Face "
                   "equivalent (only stem='imagenet' is saved)")
        config = {name: getattr(self, name) for name in _HF_DEFAULTS}
        labels = [f"LABEL_{i}" for i in range(self.num_labels)]
        return {"architectures": ["ResNetForImageClassification"], "model_type": "resnet",
                **config, "hidden_sizes": list(self.hidden_sizes), "depths": list(self.depths),
                "hidden_act": "relu", "id2label": {str(i): name for i, name in enumerate(labels)},
                "label2id": {name: i for i, name in enumerate(labels)}}


# The fields that Hugging Face ResNetConfig names alike, with its defaults.
_HF_DEFAULTS = {"num_channels": 3, "embedding_size": 64, "hidden_sizes": (256, 512, 1024, 2048),
                "depths": (3, 4, 6, 3), "layer_type": "bottleneck",
                "downsample_in_first_stage": False, "downsample_in_bottleneck": False}


PRESETS = {
    "resnet18": Config(),
    "resnet50": Config(hidden_sizes=(256, 512, 1024, 2048), depths=(3, 4, 6, 3),
                       layer_type="bottleneck"),
    "resnet20-cifar": Config(embedding_size=16, hidden_sizes=(16, 32, 64), depths=(3, 3, 3),
                             num_labels=10, stem="cifar"),
    "tiny": Config(embedding_size=8, hidden_sizes=(8, 16), depths=(1, 1), num_labels=5),
}


class Conv(NamedTuple):
    """One convolution of a block: ``kernel x kernel``, ``stride``, then batch norm and
    (if ``act``) ReLU."""
    in_ch: int
    out_ch: int
    kernel: int
    stride: int = 1
    act: bool = True


class Block(NamedTuple):
    """One residual block: its convolutions and, when the shape changes, a 1x1 projection."""
    convs: tuple
    shortcut: Conv | None


def _blocks(cfg: Config) -> Iterator[tuple[int, int, Block]]:
    """``(stage, index, block)`` for every block: the one plan that init, apply and the
    name table follow."""
    in_ch = cfg.embedding_size
    for s, (out_ch, depth) in enumerate(zip(cfg.hidden_sizes, cfg.depths)):
        for i in range(depth):
            stride = (2 if s > 0 or cfg.downsample_in_first_stage else 1) if i == 0 else 1
            if cfg.layer_type == "basic":
                convs = (Conv(in_ch, out_ch, 3, stride), Conv(out_ch, out_ch, 3, act=False))
            else:
                mid, first = out_ch // 4, cfg.downsample_in_bottleneck
                convs = (Conv(in_ch, mid, 1, stride if first else 1),
                         Conv(mid, mid, 3, 1 if first else stride), Conv(mid, out_ch, 1, act=False))
            reshaped = in_ch != out_ch or stride != 1
            shortcut = Conv(in_ch, out_ch, 1, stride, act=False) if reshaped else None
            yield s, i, Block(convs, shortcut)
            in_ch = out_ch


def _stem(cfg: Config) -> Conv:
    kernel, stride = (7, 2) if cfg.stem == "imagenet" else (3, 1)
    return Conv(cfg.num_channels, cfg.embedding_size, kernel, stride)


# --------------------------------------------------------------------------- params and state

def _conv_bn_init(key: Any, c: Conv) -> tuple[dict, BatchNormState]:
    """He-normal kernel (fan out, as Hugging Face and torchvision), unit scale, zero bias."""
    w_init = initializers.variance_scaling(2.0, "fan_out", "normal", in_axis=2, out_axis=3)
    params = {"conv": {"w": w_init(key, (c.kernel, c.kernel, c.in_ch, c.out_ch))},
              "bn": norm_init(c.out_ch)}
    return params, batch_norm_state(c.out_ch)


def _block_init(key: Any, block: Block) -> tuple[dict, dict]:
    keys = random.split(key, len(block.convs) + 1)
    layers = [_conv_bn_init(k, c) for k, c in zip(keys, block.convs)]
    params, state = {"layers": [p for p, _ in layers]}, {"layers": [s for _, s in layers]}
    if block.shortcut is not None:
        params["shortcut"], state["shortcut"] = _conv_bn_init(keys[-1], block.shortcut)
    return params, state


def init(key: Any, cfg: Config) -> tuple[dict, dict]:
    """Random ``(params, state)``; the state holds every batch norm's running mean (zeros)
    and variance (ones)."""
    plan = list(_blocks(cfg))
    k_stem, k_head, *k_blocks = random.split(key, len(plan) + 2)
    stem_p, stem_s = _conv_bn_init(k_stem, _stem(cfg))
    params = {"embedder": stem_p, "stages": [[] for _ in cfg.depths]}
    state = {"embedder": stem_s, "stages": [[] for _ in cfg.depths]}
    for k, (s, _, block) in zip(k_blocks, plan):
        p, st = _block_init(k, block)
        params["stages"][s].append(p)
        state["stages"][s].append(st)
    width = cfg.hidden_sizes[-1]
    bound = 1 / math.sqrt(width)                    # PyTorch's nn.Linear default
    kw, kb = random.split(k_head)
    params["classifier"] = {
        "w": random.uniform(kw, (width, cfg.num_labels), minval=-bound, maxval=bound),
        "b": random.uniform(kb, (cfg.num_labels,), minval=-bound, maxval=bound)}
    return params, state


# --------------------------------------------------------------------------- the model

def _conv_bn(params: dict, state: BatchNormState, cfg: Config, c: Conv, x: Any, train: bool
             ) -> tuple[Any, BatchNormState]:
    pad = c.kernel // 2
    y = conv(params["conv"], x, stride=c.stride, padding=[(pad, pad), (pad, pad)])
    y, state = batch_norm(params["bn"], state, y, train=train, momentum=cfg.bn_momentum,
                          eps=cfg.bn_eps)
    return (relu(y) if c.act else y), state


def _block(params: dict, state: dict, cfg: Config, block: Block, x: Any,
           train: bool) -> tuple[Any, dict]:
    h, new = x, {"layers": []}
    for p, s, c in zip(params["layers"], state["layers"], block.convs):
        h, s = _conv_bn(p, s, cfg, c, h, train)
        new["layers"].append(s)
    if block.shortcut is not None:
        x, new["shortcut"] = _conv_bn(params["shortcut"], state["shortcut"], cfg, block.shortcut,
                                      x, train)
    return relu(h + x), new


def apply(params: dict, state: dict, cfg: Config, images: Any, *, train: bool) -> tuple[Any, dict]:
    """Logits ``(B, num_labels)`` for ``images (B, H, W, num_channels)``, and the new state
    (running statistics updated when ``train``, unchanged otherwise)."""
    if images.shape[-1] != cfg.num_channels:
        raise ValueError(f"resnet.apply: images have {images.shape[-1]} channels (last axis, "
                         f"NHWC); the config expects {cfg.num_channels}")
    x, stem_state = _conv_bn(params["embedder"], state["embedder"], cfg, _stem(cfg), images, train)
    if cfg.stem == "imagenet":
        x = max_pool(x, (3, 3), (2, 2), padding=[(1, 1), (1, 1)])
    new = {"embedder": stem_state, "stages": [[] for _ in cfg.depths]}
    for s, i, block in _blocks(cfg):
        x, block_state = _block(params["stages"][s][i], state["stages"][s][i], cfg, block, x, train)
        new["stages"][s].append(block_state)
    return linear(params["classifier"], global_avg_pool(x)), new


def loss(params: dict, state: dict, cfg: Config, images: Any, labels: Any, *, train: bool = True
         ) -> tuple[Any, dict]:
    """Mean cross-entropy of integer ``labels (B,)``, and the new state (use
    ``value_and_grad(loss, has_aux=True)``)."""
    logits, state = apply(params, state, cfg, images, train=train)
    return jnp.mean(softmax_cross_entropy_with_integer_labels(logits, labels)), state


# --------------------------------------------------------------------------- Hugging Face weights

def from_pretrained(path: str | os.PathLike, dtype: Any = jnp.float32) -> tuple[Config, dict, dict]:
    """Load a local Hugging Face ``ResNetForImageClassification`` folder:
    ``(cfg, params, state)``. The ``num_batches_tracked`` counters are not needed and
    dropped."""
    config, tensors = hf.load_folder(path)
    cfg = Config.from_hf(config)
    tensors = {name: t for name, t in tensors.items() if not name.endswith(".num_batches_tracked")}
    like = fungrad.eval_shape(lambda: dict(zip(("params", "state"), init(random.PRNGKey(0), cfg))))
    loaded = hf.params_from_hf("resnet", _table(cfg), tensors, like, dtype)
    return cfg, _swap_kernel_axes(loaded["params"]), loaded["state"]


def save_pretrained(path: str | os.PathLike, cfg: Config, params: dict, state: dict,
                    dtype: Any = None, max_shard_bytes: int | None = None) -> None:
    """Write a folder that ``transformers.ResNetForImageClassification.from_pretrained``
    loads (ImageNet stem only)."""
    config = cfg.to_hf()
    both = {"params": _swap_kernel_axes(params), "state": state}
    tensors = hf.hf_from_params(_table(cfg), both, dtype)
    for name in [n for n in tensors if n.endswith("running_mean")]:
        tensors[name.replace("running_mean", "num_batches_tracked")] = np.zeros((), np.int64)
    hf.save_folder(path, config, tensors, max_shard_bytes)


def _swap_kernel_axes(params: dict) -> dict:
    """Swap the two spatial axes of every (square) convolution kernel. PyTorch stores
    kernels as ``(out, in, kh, kw)``; the table's transpose makes that ``(kw, kh, in, out)``
    (so shapes are checked, and reported, in PyTorch's layout), and this swap gives
    ``(kh, kw, in, out)``, and back."""
    def swap(path: tuple, w: Any) -> Any:
        return jnp.swapaxes(w, 0, 1) if path[-2:] == ("conv", "w") else w
    return tree.map_with_plain_path(swap, params)


def _conv_bn_table(prefix: str, path: tuple) -> list[hf.Entry]:
    E = hf.Entry
    return [E(prefix + "convolution.weight", ("params", *path, "conv", "w"), True),
            E(prefix + "normalization.weight", ("params", *path, "bn", "scale")),
            E(prefix + "normalization.bias", ("params", *path, "bn", "bias")),
            E(prefix + "normalization.running_mean", ("state", *path, 0)),
            E(prefix + "normalization.running_var", ("state", *path, 1))]


def _table(cfg: Config) -> list[hf.Entry]:
    table = _conv_bn_table("resnet.embedder.embedder.", ("embedder",))
    for s, i, block in _blocks(cfg):
        pre, at = f"resnet.encoder.stages.{s}.layers.{i}.", ("stages", s, i)
        for k in range(len(block.convs)):
            table += _conv_bn_table(f"{pre}layer.{k}.", (*at, "layers", k))
        if block.shortcut is not None:
            table += _conv_bn_table(f"{pre}shortcut.", (*at, "shortcut"))
    return table + [hf.Entry("classifier.1.weight", ("params", "classifier", "w"), True),
                    hf.Entry("classifier.1.bias", ("params", "classifier", "b"))]
