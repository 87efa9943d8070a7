"""Pytrees: nested containers of arrays. The only module that imports ``optree``.

Conventions (as in JAX): lists, tuples, dicts, namedtuples, ``None`` and
registered classes are nodes; everything else is a leaf. Dict keys are sorted,
so ``{"b": 1, "a": 2}`` flattens to ``[2, 1]``. ``None`` is an empty subtree
(it has no leaves).
"""
from __future__ import annotations

import builtins
import dataclasses
import functools
from typing import Any, Callable

import optree

_NS = "fungrad"
PyTreeDef = optree.PyTreeSpec


def flatten(tree: Any, is_leaf: Callable | None = None) -> tuple[list, PyTreeDef]:
    """Leaves of ``tree`` (in a fixed order) and its structure.

    Examples:
        >>> from fungrad import tree
        >>> tree.flatten({"b": 1, "a": (2, None)})  # keys sorted; None has no leaves
        ([2, 1], PyTreeSpec({'a': (*, None), 'b': *}))
    """
    return optree.tree_flatten(tree, is_leaf=is_leaf, none_is_leaf=False, namespace=_NS)


def unflatten(treedef: PyTreeDef, leaves: Any) -> Any:
    """Rebuild a tree of structure ``treedef`` from ``leaves``."""
    return optree.tree_unflatten(treedef, list(leaves))


def leaves(tree: Any, is_leaf: Callable | None = None) -> list:
    return optree.tree_leaves(tree, is_leaf=is_leaf, none_is_leaf=False, namespace=_NS)


def structure(tree: Any, is_leaf: Callable | None = None) -> PyTreeDef:
    return optree.tree_structure(tree, is_leaf=is_leaf, none_is_leaf=False, namespace=_NS)


def map(f: Callable, tree: Any, *rest: Any, is_leaf: Callable | None = None) -> Any:
    """Apply ``f`` leaf-wise across ``tree`` and trees of the same structure.

    Examples:
        >>> from fungrad import tree
        >>> tree.map(lambda x, y: x + y, {"a": 1, "b": [2, 3]}, {"a": 10, "b": [20, 30]})
        {'a': 11, 'b': [22, 33]}
    """
    return optree.tree_map(f, tree, *rest, is_leaf=is_leaf, none_is_leaf=False, namespace=_NS)


def map_with_path(f: Callable, tree: Any, *rest: Any, is_leaf: Callable | None = None) -> Any:
    """Like ``map`` but ``f(path, leaf, ...)`` also receives the leaf's key path."""
    return optree.tree_map_with_path(f, tree, *rest, is_leaf=is_leaf, none_is_leaf=False,
                                     namespace=_NS)


def leaves_with_path(tree: Any, is_leaf: Callable | None = None) -> list[tuple[tuple, Any]]:
    paths, leaves_, _ = optree.tree_flatten_with_path(tree, is_leaf=is_leaf, none_is_leaf=False,
                                                      namespace=_NS)
    return list(zip(paths, leaves_))


def reduce(f: Callable, tree: Any, initializer: Any = ..., is_leaf: Callable | None = None) -> Any:
    """Fold ``f`` over the leaves of ``tree``."""
    xs = leaves(tree, is_leaf=is_leaf)
    return functools.reduce(f, xs) if initializer is ... else functools.reduce(f, xs, initializer)


def all(tree: Any) -> bool:  # noqa: A001 - mirrors jax.tree.all
    """True when every leaf is truthy (as ``jax.tree.all``)."""
    return builtins.all(leaves(tree))


def transpose(outer: PyTreeDef, inner: PyTreeDef, tree: Any) -> Any:
    return optree.tree_transpose(outer, inner, tree)


def register_pytree_node(cls: type, flatten_func: Callable, unflatten_func: Callable) -> None:
    """Register ``cls`` as a node: ``flatten_func(x) -> (children, aux)``,
    ``unflatten_func(aux, children) -> x`` (JAX's signature)."""
    optree.register_pytree_node(cls, flatten_func, lambda aux, children: unflatten_func(aux, children),
                                namespace=_NS)


def register_dataclass(cls: type, data_fields: list[str] | None = None,
                       meta_fields: list[str] | None = None) -> type:
    """Register a dataclass: ``data_fields`` are children, ``meta_fields`` static metadata.

    Without explicit lists every field is a data field. Usable as a decorator.
    """
    if data_fields is None:
        data_fields = [f.name for f in dataclasses.fields(cls)]
        meta_fields = []
    meta_fields = meta_fields or []

    def flat(x):
        return [getattr(x, n) for n in data_fields], tuple(getattr(x, n) for n in meta_fields)

    def unflat(meta, children):
        return cls(**dict(zip(data_fields, children)), **dict(zip(meta_fields, meta)))
    register_pytree_node(cls, flat, unflat)
    return cls


def register_pytree_node_class(cls: type) -> type:
    """Decorator: ``cls`` defines ``tree_flatten`` and classmethod ``tree_unflatten``."""
    register_pytree_node(cls, lambda x: x.tree_flatten(), cls.tree_unflatten)
    return cls


def broadcast_prefix(prefix: Any, tree: Any, name: str = "in_axes", of: str = "the arguments"
                     ) -> list:
    """One prefix leaf per leaf of ``tree`` (``None`` in the prefix is a leaf).

    Used for ``vmap``'s ``in_axes``/``out_axes``: ``(0, None)`` against
    ``(params_dict, x)`` gives 0 for every leaf of the dict and None for x. ``name``
    and ``of`` say what the prefix and the tree are in the error message.
    """
    spec = optree.tree_structure(prefix, none_is_leaf=True, namespace=_NS)
    try:
        subtrees = spec.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} specification {prefix!r} must be a tree prefix of {of}, "
                         f"whose structure is {structure(tree)}: {e}") from None
    out = []
    for p, sub in zip(optree.tree_leaves(prefix, none_is_leaf=True, namespace=_NS), subtrees):
        out.extend([p] * len(leaves(sub)))
    return out
