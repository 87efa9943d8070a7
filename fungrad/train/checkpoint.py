"""Checkpoints: any pytree of arrays in the safetensors format, written atomically.

``save_checkpoint(path, tree)`` writes every leaf as a named tensor (its key path, e.g.
``opt_state/0/mu/w``) and records the tree's structure as JSON in the header metadata.
The file is written to a temporary file in the same directory, flushed and fsynced, then
renamed over ``path``: a crash mid-save leaves the previous checkpoint intact.

``load_checkpoint(path, like=None)`` validates the file (header, offsets, dtypes) and,
given ``like`` (a tree of the expected structure), checks the structure, every shape and
dtype, and returns arrays in ``like``'s structure (namedtuples, dataclasses and all).
Without ``like`` it rebuilds dicts, lists, tuples and namedtuples (as dicts of their
fields). Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import optree

from fungrad import safetensors, tree
from fungrad._core.array import Array

FORMAT = "fungrad-checkpoint-v1"
_SCALAR_KINDS = {bool: "bool", int: "int", float: "float"}


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or does not match what was expected."""


# --------------------------------------------------------------------------- structure as JSON

def _encode(spec: optree.PyTreeSpec, counter: list[int]) -> Any:
    kind = spec.kind
    if kind == optree.PyTreeKind.LEAF:
        counter[0] += 1
        return {"leaf": counter[0] - 1}
    if kind == optree.PyTreeKind.NONE:
        return None
    children = [_encode(c, counter) for c in spec.children()]
    if kind == optree.PyTreeKind.LIST:
        return {"list": children}
    if kind == optree.PyTreeKind.TUPLE:
        return {"tuple": children}
    if kind == optree.PyTreeKind.DICT:
        keys = list(spec.entries())
        if not all(isinstance(k, str) for k in keys):
            raise TypeError(f"save_checkpoint: dict keys must be strings, got {keys!r}")
        return {"dict": dict(zip(keys, children))}
    if kind == optree.PyTreeKind.NAMEDTUPLE:
        return {"namedtuple": spec.type.__name__, "fields": dict(zip(spec.type._fields, children))}
    return {"node": f"{spec.type.__module__}.{spec.type.__qualname__}", "children": children}


def _decode(node: Any, leaves: list[Any]) -> Any:
    if node is None:
        return None
    if "leaf" in node:
        return leaves[node["leaf"]]
    if "list" in node:
        return [_decode(c, leaves) for c in node["list"]]
    if "tuple" in node:
        return tuple(_decode(c, leaves) for c in node["tuple"])
    if "dict" in node:
        return {k: _decode(c, leaves) for k, c in node["dict"].items()}
    if "namedtuple" in node:
        return {k: _decode(c, leaves) for k, c in node["fields"].items()}
    raise CheckpointError(f"the checkpoint holds a custom pytree node {node['node']}; pass "
                          "`like=` (a tree of that structure) to load it")


def _path_name(path: tuple) -> str:
    return "/".join(str(p) for p in path) or "leaf"


# --------------------------------------------------------------------------- save

def _leaf_array(x: Any, name: str) -> tuple[np.ndarray, str]:
    if isinstance(x, (bool, int, float)):
        return np.asarray(x), _SCALAR_KINDS[type(x)]
    if isinstance(x, Array) or hasattr(x, "__array__"):
        a = np.asarray(x)
        if not safetensors.supported(a.dtype):
            raise TypeError(f"save_checkpoint: leaf {name!r} has unsupported dtype {a.dtype}")
        return np.require(a, requirements="C"), "array"
    raise TypeError(f"save_checkpoint: leaf {name!r} is a {type(x).__name__}, not an array or "
                    "scalar")


def save_checkpoint(path: str | os.PathLike, target: Any) -> None:
    """Write ``target`` (a pytree of arrays and Python scalars) to ``path`` atomically."""
    path = os.fspath(path)
    paths_and_leaves = tree.leaves_with_plain_path(target)
    structure = _encode(tree.structure(target), [0])
    tensors, kinds = {}, []
    for i, (p, leaf) in enumerate(paths_and_leaves):
        name = f"{i:05d}:{_path_name(p)}"
        tensors[name], kind = _leaf_array(leaf, name)
        kinds.append(kind)
    metadata = {"format": FORMAT, "structure": json.dumps(structure), "kinds": json.dumps(kinds)}
    safetensors.write(path, tensors, metadata)


# --------------------------------------------------------------------------- load

def _read(path: str) -> tuple[dict[str, np.ndarray], dict]:
    try:
        tensors, metadata = safetensors.read(path)
    except safetensors.SafetensorsError as e:
        raise CheckpointError(f"load_checkpoint: {path} is not a valid safetensors file: "
                              f"{e}") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"load_checkpoint: {path} was not written by save_checkpoint "
                              f"(format {metadata.get('format')!r})")
    return tensors, metadata


def _to_leaf(a: np.ndarray, kind: str) -> Any:
    if kind != "array":
        return {"bool": bool, "int": int, "float": float}[kind](a.item())
    return Array(a)


def load_checkpoint(path: str | os.PathLike, like: Any = None) -> Any:
    """Read a checkpoint written by ``save_checkpoint``; validate it against ``like`` if given."""
    path = os.fspath(path)
    tensors, metadata = _read(path)
    try:
        structure = json.loads(metadata["structure"])
        kinds = json.loads(metadata["kinds"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"load_checkpoint: {path} has a corrupt structure record: "
                              f"{e}") from None
    ordered = sorted(tensors.items())
    if len(ordered) != len(kinds):
        raise CheckpointError(f"load_checkpoint: {path} lists {len(kinds)} leaves but holds "
                              f"{len(ordered)} tensors")
    leaves = [_to_leaf(a, kind) for (_, a), kind in zip(ordered, kinds)]
    if like is None:
        return _decode(structure, leaves)
    return _restore_like(path, ordered, leaves, like)


def _restore_like(path: str, ordered: list, leaves: list, like: Any) -> Any:
    expected = tree.leaves_with_plain_path(like)
    names = [name.split(":", 1)[1] for name, _ in ordered]
    if len(expected) != len(leaves):
        raise CheckpointError(f"load_checkpoint: {path} has {len(leaves)} leaves, `like` has "
                              f"{len(expected)}")
    out = []
    for (p, ref), name, leaf in zip(expected, names, leaves):
        if _path_name(p) != name:
            raise CheckpointError(f"load_checkpoint: structure mismatch: checkpoint leaf {name!r} "
                                  f"where `like` has {_path_name(p)!r}")
        if isinstance(ref, (bool, int, float)):
            out.append(type(ref)(leaf.item() if isinstance(leaf, Array) else leaf))
            continue
        got = np.asarray(leaf)
        ref_shape = tuple(np.shape(ref))
        ref_dtype = np.dtype(getattr(ref, "dtype", np.asarray(ref).dtype))
        if got.shape != ref_shape or got.dtype != ref_dtype:
            raise CheckpointError(f"load_checkpoint: leaf {name!r} is "
                                  f"{got.dtype}{list(got.shape)} in the checkpoint but "
                                  f"{ref_dtype}{list(ref_shape)} in `like`")
        out.append(leaf if isinstance(leaf, Array) else Array(got))
    return tree.unflatten(tree.structure(like), out)
