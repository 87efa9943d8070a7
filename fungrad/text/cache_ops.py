"""Operations on a model's decoding cache that beam search and speculative decoding need:
picking rows (beams) and rolling attention caches back to an earlier position.

Caches are pytrees whose layout each model file chooses, so the batch axis of every leaf
is found once by comparing the cache shapes for batch sizes 1 and 2 (``eval_shape``,
nothing is allocated); leaves without a batch axis (the position) are left alone.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import fungrad
import fungrad.numpy as jnp
from fungrad import tree
from fungrad.nn.attention import KVCache

__all__ = ["batch_axes", "rollback", "select_rows"]


@functools.lru_cache(maxsize=64)
def batch_axes(module: Any, cfg: Any, max_len: int, dtype: Any) -> tuple:
    """The batch axis of each cache leaf (None where there is none), in leaf order."""
    one = fungrad.eval_shape(lambda: module.init_cache(cfg, 1, max_len, dtype=dtype))
    two = fungrad.eval_shape(lambda: module.init_cache(cfg, 2, max_len, dtype=dtype))
    axes = []
    for a, b in zip(tree.leaves(one), tree.leaves(two)):
        diff = [i for i, (m, n) in enumerate(zip(a.shape, b.shape)) if m != n]
        axes.append(diff[0] if diff else None)
    return tuple(axes)


@functools.lru_cache(maxsize=64)
def _select(axes: tuple) -> Callable:
    def select(cache, rows):
        leaves, treedef = tree.flatten(cache)
        picked = [leaf if axis is None else jnp.take(leaf, rows, axis=axis)
                  for leaf, axis in zip(leaves, axes)]
        return tree.unflatten(treedef, picked)
    return fungrad.jit(select)


def select_rows(cache: Any, rows: Any, axes: tuple) -> Any:
    """The cache whose row ``i`` is row ``rows[i]`` of ``cache`` (rows may repeat)."""
    return _select(axes)(cache, jnp.asarray(rows, jnp.int32))


def _rollback_kv(c: KVCache, pos: Any) -> KVCache:
    keep = jnp.arange(c.valid.shape[-1], dtype=jnp.int32) < pos
    return KVCache(c.k, c.v, jnp.asarray(pos, jnp.int32), c.valid & keep)


@fungrad.jit
def _rollback(cache: Any, pos: Any) -> Any:
    return tree.map(lambda c: _rollback_kv(c, pos) if isinstance(c, KVCache) else c, cache,
                    is_leaf=lambda c: isinstance(c, KVCache))


def has_kv_caches(cache: Any) -> bool:
    """Whether ``cache`` holds attention caches (which can be rolled back)."""
    is_kv = lambda c: isinstance(c, KVCache)
    return any(is_kv(c) for c in tree.leaves(cache, is_leaf=is_kv))


def rollback(cache: Any, pos: int) -> Any:
    """Forget every token at slot ``pos`` or later in each attention cache of ``cache``
    (the slots are overwritten by the next write). Other leaves must not depend on the
    position (a recurrent state cannot be rolled back)."""
    return _rollback(cache, jnp.asarray(pos, jnp.int32))
