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
from typing import Any, Callable, Sequence

import optree

from fungrad._core.namespace import public_dir

__all__ = ["PyTreeDef", "flatten", "unflatten", "leaves", "structure", "map", "map_with_path",
           "leaves_with_path", "flatten_with_entries", "reduce", "all", "transpose",
           "register_pytree_node", "register_dataclass", "register_pytree_node_class",
           "broadcast_prefix"]
__dir__ = public_dir(__all__)

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
    """The leaves of ``tree`` in ``flatten``'s order (dict keys sorted, ``None`` skipped)."""
    return optree.tree_leaves(tree, is_leaf=is_leaf, none_is_leaf=False, namespace=_NS)


def structure(tree: Any, is_leaf: Callable | None = None) -> PyTreeDef:
    """The structure of ``tree`` without its leaves (``flatten``'s second result)."""
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
    """``(path, leaf)`` pairs, the path being the tuple of keys and indices to the leaf."""
    paths, leaves_, _ = optree.tree_flatten_with_path(tree, is_leaf=is_leaf, none_is_leaf=False,
                                                      namespace=_NS)
    return list(zip(paths, leaves_))


_ENTRY_KINDS = {optree.MappingEntry: "dict", optree.SequenceEntry: "sequence",
                optree.NamedTupleEntry: "attr", optree.StructSequenceEntry: "attr",
                optree.GetAttrEntry: "attr", optree.DataclassEntry: "attr"}


def flatten_with_entries(tree: Any, is_leaf: Callable | None = None
                         ) -> tuple[list[tuple[tuple[str, Any], ...]], list, PyTreeDef]:
    """Like ``flatten``, with each leaf's path as ``(kind, key)`` pairs: kind ``"dict"``
    (a mapping key), ``"sequence"`` (an index), ``"attr"`` (an attribute name) or
    ``"flat"`` (a registered node's key, by default the child's index)."""
    accessors, leaves_, treedef = optree.tree_flatten_with_accessor(
        tree, is_leaf=is_leaf, none_is_leaf=False, namespace=_NS)
    paths = []
    for accessor in accessors:
        path = []
        for e in accessor:
            kind = next((_ENTRY_KINDS[c] for c in type(e).__mro__ if c in _ENTRY_KINDS), "flat")
            path.append((kind, e.field if kind == "attr" and hasattr(e, "field") else
                         e.name if kind == "attr" else e.entry))
        paths.append(tuple(path))
    return paths, leaves_, treedef


def reduce(f: Callable, tree: Any, initializer: Any = ..., is_leaf: Callable | None = None) -> Any:
    """Fold ``f`` over the leaves of ``tree``."""
    xs = leaves(tree, is_leaf=is_leaf)
    return functools.reduce(f, xs) if initializer is ... else functools.reduce(f, xs, initializer)


def all(tree: Any, *, is_leaf: Callable | None = None) -> bool:  # noqa: A001 - jax.tree.all
    """True when every leaf is truthy (as ``jax.tree.all``)."""
    return builtins.all(leaves(tree, is_leaf=is_leaf))


def transpose(outer_treedef: PyTreeDef, inner_treedef: PyTreeDef | None,
              pytree_to_transpose: Any) -> Any:
    """Turn a tree of structure ``outer_treedef`` whose subtrees have structure
    ``inner_treedef`` into a tree of ``inner_treedef`` over ``outer_treedef`` subtrees
    (``jax.tree.transpose``). ``inner_treedef=None`` takes the first subtree's structure.

    Examples:
        >>> from fungrad import tree
        >>> tree.transpose(outer_treedef=tree.structure([0, 0]), inner_treedef=None,
        ...                pytree_to_transpose=[(1, 2), (3, 4)])
        ([1, 3], [2, 4])
    """
    if inner_treedef is None:
        inner_treedef = structure(outer_treedef.flatten_up_to(pytree_to_transpose)[0])
    try:
        return optree.tree_transpose(outer_treedef, inner_treedef, pytree_to_transpose)
    except ValueError as e:
        raise TypeError(f"tree.transpose: tree structure mismatch: {e}") from None


def register_pytree_node(cls: type, flatten_func: Callable, unflatten_func: Callable,
                         flatten_with_keys_func: Callable | None = None) -> None:
    """Register ``cls`` as a node: ``flatten_func(x) -> (children, aux)``,
    ``unflatten_func(aux, children) -> x`` (JAX's signature). With
    ``flatten_with_keys_func(x) -> (((key, child), ...), aux)``, key paths hold those keys;
    without, a child's key is its index."""
    if flatten_with_keys_func is None:
        flat = flatten_func
    else:
        def flat(x):
            pairs, aux = flatten_with_keys_func(x)
            pairs = list(pairs)
            return [c for _, c in pairs], aux, [k for k, _ in pairs]
    optree.register_pytree_node(cls, flat, lambda aux, children: unflatten_func(aux, children),
                                namespace=_NS)


def register_dataclass(nodetype: type, data_fields: Sequence[str] | None = None,
                       meta_fields: Sequence[str] | None = None,
                       drop_fields: Sequence[str] = ()) -> type:
    """Register a dataclass: ``data_fields`` are children, ``meta_fields`` static metadata
    (hashable, compared by ``jit``), ``drop_fields`` neither (``jax.tree_util.register_dataclass``).

    Without explicit lists, fields declared with ``field(metadata=dict(static=True))`` are
    meta fields and the other init fields data fields. A child's key is its attribute
    name. Usable as a decorator.
    """
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(nodetype):
            raise TypeError(f"register_dataclass: {nodetype.__name__} is not a dataclass; "
                            "pass data_fields and meta_fields")
        init = [f for f in dataclasses.fields(nodetype) if f.init and f.name not in drop_fields]
        data_fields = [f.name for f in init if not f.metadata.get("static", False)]
        meta_fields = [f.name for f in init if f.metadata.get("static", False)]
    elif data_fields is None or meta_fields is None:
        raise TypeError("register_dataclass: pass both data_fields and meta_fields, or neither")
    data_fields, meta_fields = tuple(data_fields), tuple(meta_fields)

    def flat(x):
        return ([getattr(x, n) for n in data_fields], tuple(getattr(x, n) for n in meta_fields),
                data_fields)

    def unflat(meta, children):
        return nodetype(**dict(zip(data_fields, children)), **dict(zip(meta_fields, meta)))
    optree.register_pytree_node(nodetype, flat, unflat, path_entry_type=optree.GetAttrEntry,
                                namespace=_NS)
    return nodetype


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
