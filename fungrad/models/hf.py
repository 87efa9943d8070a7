"""Hugging Face checkpoint folders: read and write them, and map their tensors to params.

A Hugging Face model folder holds ``config.json`` and either ``model.safetensors`` or
several shards listed by ``model.safetensors.index.json`` (``{"weight_map": {name: file}}``).
Each model file describes its names with a table of :class:`Entry` rows (the Hugging Face
tensor name, where the tensor lives in fungrad's params dict, and whether it is stored
transposed); :func:`params_from_hf` and :func:`hf_from_params` apply the table in either
direction. Loading checks everything before returning anything: missing and unexpected
tensors are listed by name, every shape is compared with the shape the config implies,
and a truncated shard is reported by file. Nothing is downloaded and nothing unpickled.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

from fungrad import random, safetensors, tree
from fungrad._core.array import Array
from fungrad._core.namespace import public_dir
from fungrad.transforms.api import eval_shape

__all__ = ["Entry", "PretrainedError", "hf_from_params", "load_folder", "load_pretrained",
           "params_from_hf", "require", "save_folder", "save_pretrained"]
__dir__ = public_dir(__all__)

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"


class PretrainedError(ValueError):
    """A pretrained folder is missing, incomplete, corrupt or does not fit the config."""


class Entry(NamedTuple):
    """One tensor: its Hugging Face name, its path in the params tree, and whether Hugging
    Face stores it transposed (``torch.nn.Linear`` keeps weights as ``(out, in)``)."""
    hf_name: str
    path: tuple
    transpose: bool = False


def require(condition: bool, model: str, message: str) -> None:
    """Raise :class:`PretrainedError` for an unsupported or contradictory config."""
    if not condition:
        raise PretrainedError(f"{model}: {message}")


# --------------------------------------------------------------------------- folders

def load_folder(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read ``config.json`` and every weight file of a local folder: ``(config, tensors)``."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise PretrainedError(f"from_pretrained: {path!r} is not a local folder "
                              "(nothing is downloaded)")
    config_path = os.path.join(path, CONFIG)
    if not os.path.isfile(config_path):
        raise PretrainedError(f"from_pretrained: {path!r} has no {CONFIG}")
    with open(config_path) as f:
        try:
            config = json.load(f)
        except ValueError as e:
            raise PretrainedError(f"from_pretrained: {config_path} is not valid JSON "
                                  f"({e})") from None
    tensors: dict[str, np.ndarray] = {}
    for shard in _weight_files(path):
        try:
            part, _ = safetensors.read(shard)
        except safetensors.SafetensorsError as e:
            raise PretrainedError(f"from_pretrained: {e}") from None
        tensors.update(part)
    return config, tensors


def _weight_files(path: str) -> list[str]:
    single, index = os.path.join(path, WEIGHTS), os.path.join(path, INDEX)
    if os.path.isfile(index):
        with open(index) as f:
            try:
                weight_map = json.load(f)["weight_map"]
            except (ValueError, KeyError) as e:
                raise PretrainedError(f"from_pretrained: {index} is not a weight index "
                                      f"({e})") from None
        files = [os.path.join(path, name) for name in sorted(set(weight_map.values()))]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise PretrainedError(f"from_pretrained: shards listed in {INDEX} are missing: "
                                  f"{missing}")
        return files
    if os.path.isfile(single):
        return [single]
    raise PretrainedError(f"from_pretrained: {path!r} has neither {WEIGHTS} nor {INDEX} "
                          "(only safetensors weights are read; convert .bin files first)")


def save_folder(path: str | os.PathLike, config: dict, tensors: dict[str, np.ndarray],
                max_shard_bytes: int | None = None) -> None:
    """Write ``config.json`` and the weights (sharded when above ``max_shard_bytes``)."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    shards = _shard(tensors, max_shard_bytes)
    if len(shards) == 1:
        safetensors.write(os.path.join(path, WEIGHTS), shards[0], {"format": "pt"})
    else:
        weight_map = {}
        for i, shard in enumerate(shards):
            name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            safetensors.write(os.path.join(path, name), shard, {"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(np.asarray(t).nbytes for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        safetensors.atomic_write(os.path.join(path, INDEX), json.dumps(index, indent=2).encode())
    safetensors.atomic_write(os.path.join(path, CONFIG), json.dumps(config, indent=2).encode())


def _shard(tensors: dict[str, np.ndarray], max_bytes: int | None) -> list[dict[str, np.ndarray]]:
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = np.asarray(t).nbytes
        if max_bytes is not None and shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    return shards


# --------------------------------------------------------------------------- name tables

def params_from_hf(model: str, table: Iterable[Entry], tensors: dict[str, np.ndarray],
                   like: Any, dtype: Any = np.float32) -> Any:
    """Build a params tree shaped like ``like`` (e.g. ``fungrad.eval_shape`` of ``init``)
    from Hugging Face ``tensors`` through ``table``, validating names and shapes first."""
    table = list(table)
    expected = {e.hf_name for e in table}
    missing = sorted(expected - set(tensors))
    unexpected = sorted(set(tensors) - expected)
    if missing or unexpected:
        raise PretrainedError(f"{model}.from_pretrained: missing tensors {missing}, "
                              f"unexpected tensors {unexpected}")
    shapes = {p: tuple(leaf.shape) for p, leaf in tree.leaves_with_plain_path(like)}
    placed: dict[tuple, np.ndarray] = {}
    for entry in table:
        value = tensors[entry.hf_name]
        value = value.T if entry.transpose else value
        want = shapes.get(entry.path)
        if want is None:
            raise PretrainedError(f"{model}: table entry {entry.hf_name!r} points at {entry.path}, "
                                  "which the params do not have")
        if tuple(value.shape) != want:
            raise PretrainedError(f"{model}.from_pretrained: tensor {entry.hf_name!r} has shape "
                                  f"{tuple(tensors[entry.hf_name].shape)}; the config implies "
                                  f"{want[::-1] if entry.transpose else want}")
        placed[entry.path] = value
    unset = sorted(set(shapes) - set(placed), key=str)
    if unset:
        raise PretrainedError(f"{model}: the name table leaves params {unset} unset")
    leaves = [Array(np.ascontiguousarray(placed[p], dtype=dtype)) for p in shapes]
    return tree.unflatten(tree.structure(like), leaves)


def hf_from_params(table: Iterable[Entry], params: Any, dtype: Any = None) -> dict[str, np.ndarray]:
    """The inverse of :func:`params_from_hf`: ``{hf_name: array}`` ready for ``save_folder``."""
    by_path = {p: leaf for p, leaf in tree.leaves_with_plain_path(params)}
    out = {}
    for entry in table:
        a = np.asarray(by_path[entry.path])
        a = a.T if entry.transpose else a
        out[entry.hf_name] = np.ascontiguousarray(a if dtype is None else a.astype(dtype))
    return out


# --------------------------------------------------------------------------- whole models

def load_pretrained(path: str | os.PathLike, model: str, from_hf: Callable[[dict], Any],
                    init: Callable[[Any, Any], Any], table: Callable[[Any], list[Entry]],
                    dtype: Any, prepare: Callable[[dict, Any], dict] | None = None
                    ) -> tuple[Any, Any]:
    """``(cfg, params)`` of a local folder: the config through ``from_hf``, the tensors
    (after ``prepare(tensors, cfg)``, for renames and splits) through ``table(cfg)``,
    validated against the shapes ``init(key, cfg)`` gives."""
    config, tensors = load_folder(path)
    cfg = from_hf(config)
    if prepare is not None:
        tensors = prepare(tensors, cfg)
    like = eval_shape(lambda: init(random.PRNGKey(0), cfg))
    return cfg, params_from_hf(model, table(cfg), tensors, like, dtype)


def save_pretrained(path: str | os.PathLike, cfg: Any, params: Any, table: list[Entry],
                    max_shard_bytes: int | None = None, dtype: Any = None) -> None:
    """Write ``config.json`` (``cfg.to_hf()``) and the weights named by ``table``."""
    save_folder(path, cfg.to_hf(), hf_from_params(table, params, dtype), max_shard_bytes)
