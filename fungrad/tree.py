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
from typing import Any, Callable, NamedTuple, Sequence

import optree

from fungrad._core.namespace import public_dir

__all__ = ["PyTreeDef", "flatten", "unflatten", "leaves", "structure", "map", "map_with_path",
           "leaves_with_path", "map_with_plain_path", "leaves_with_plain_path",
           "flatten_with_entries", "flatten_with_path", "reduce",
           "reduce_associative", "all", "transpose", "broadcast", "static",
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


def map_with_plain_path(f: Callable, tree: Any, *rest: Any,
                        is_leaf: Callable | None = None) -> Any:
    """Like ``map_with_path`` with plain paths: ``f(path, leaf, ...)`` gets the tuple of dict
    keys, indices and attribute names to the leaf (fungrad's: checkpoint and weight names)."""
    return optree.tree_map_with_path(f, tree, *rest, is_leaf=is_leaf, none_is_leaf=False,
                                     namespace=_NS)


def leaves_with_plain_path(tree: Any, is_leaf: Callable | None = None
                           ) -> list[tuple[tuple, Any]]:
    """``(path, leaf)`` pairs with plain paths: the tuple of dict keys, indices and attribute
    names to the leaf (fungrad's: checkpoint and weight names are made from them)."""
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


# JAX's key classes (``fungrad.tree_util`` offers them): defined here, below ``tree_util``,
# because ``flatten_with_path`` returns them.

class SequenceKey(NamedTuple):
    """The key of a list or tuple element: prints ``[0]``."""
    idx: int

    def __str__(self) -> str:
        return f"[{self.idx!r}]"


class DictKey(NamedTuple):
    """The key of a dict entry: prints ``['a']``."""
    key: Any

    def __str__(self) -> str:
        return f"[{self.key!r}]"


class GetAttrKey(NamedTuple):
    """An attribute (namedtuple field, dataclass field): prints ``.x``."""
    name: str

    def __str__(self) -> str:
        return f".{self.name}"


class FlattenedIndexKey(NamedTuple):
    """The position of a child of a node registered without keys: prints ``[<flat index 0>]``."""
    key: int

    def __str__(self) -> str:
        return f"[<flat index {self.key}>]"


KEY_TYPES = (SequenceKey, DictKey, GetAttrKey, FlattenedIndexKey)
_KINDS = {"dict": DictKey, "sequence": SequenceKey, "attr": GetAttrKey}


def key_entry(kind: str, entry: Any) -> Any:
    """The JAX key object of one ``flatten_with_entries`` path entry ``(kind, entry)``."""
    if kind in _KINDS:
        return _KINDS[kind](entry)
    return entry if isinstance(entry, KEY_TYPES) else FlattenedIndexKey(entry)


def one_level(tree: Any) -> tuple[list[tuple[Any, Any]], Any, PyTreeDef]:
    """``(key, child)`` pairs of a node's direct children, its metadata as JAX gives it (a
    dict's keys as a tuple, a namedtuple's class, a registered node's auxiliary data) and its
    one-level structure; ``ValueError`` naming the type when ``tree`` is a leaf."""
    treedef = structure(tree, is_leaf=lambda x: x is not tree)
    if treedef.num_nodes == 1 and treedef.num_leaves == 1:
        raise ValueError(f"can't tree-flatten type: {type(tree)}")
    paths, children, _ = flatten_with_entries(tree, is_leaf=lambda x: x is not tree)
    meta = optree.tree_flatten_one_level(tree, none_is_leaf=False, namespace=_NS)[1]
    if isinstance(meta, list):                                   # a dict's keys
        meta = tuple(meta)
    elif treedef.kind == optree.PyTreeKind.DEFAULTDICT:          # (default_factory, keys)
        meta = (meta[0], tuple(meta[1]))
    return [(key_entry(*p[0]), c) for p, c in zip(paths, children)], meta, treedef


def is_node_type(typ: type) -> bool:
    """Whether instances of ``typ`` are nodes: built-in containers, ``None``, namedtuples,
    structseqs and registered classes."""
    return (optree.register_pytree_node.get(typ, namespace=_NS) is not None
            or optree.is_namedtuple_class(typ) or optree.is_structseq_class(typ))


def tuple_structure(treedefs: Sequence[PyTreeDef]) -> PyTreeDef:
    """The structure of a tuple whose elements have the structures ``treedefs``."""
    return optree.treespec_tuple(list(treedefs), none_is_leaf=False, namespace=_NS)


class _Marked:
    """A subtree that a path-taking ``is_leaf`` declared a leaf (an unregistered class, so
    flattening stops at it)."""
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _mark_leaves(tree: Any, is_leaf: Callable[[tuple, Any], bool], path: tuple) -> Any:
    """``tree`` with each subtree for which ``is_leaf(key_path, subtree)`` holds wrapped."""
    if is_leaf(path, tree):
        return _Marked(tree)
    try:
        pairs, _, treedef = one_level(tree)
    except ValueError:
        return tree
    return treedef.unflatten([_mark_leaves(c, is_leaf, path + (k,)) for k, c in pairs])


def flatten_with_path(tree: Any, is_leaf: Callable[..., bool] | None = None,
                      is_leaf_takes_path: bool = False
                      ) -> tuple[list[tuple[tuple, Any]], PyTreeDef]:
    """``(key_path, leaf)`` pairs and the structure (``jax.tree.flatten_with_path``): a key
    path is a tuple of ``DictKey``, ``SequenceKey``, ``GetAttrKey`` or
    ``FlattenedIndexKey``. With ``is_leaf_takes_path``, ``is_leaf(key_path, subtree)``.

    Examples:
        >>> from fungrad import tree
        >>> tree.flatten_with_path([1, {"x": 3}])
        ([((SequenceKey(idx=0),), 1), ((SequenceKey(idx=1), DictKey(key='x')), 3)], PyTreeSpec([*, {'x': *}]))
    """  # noqa: E501
    if is_leaf_takes_path and is_leaf is not None:
        tree, is_leaf = _mark_leaves(tree, is_leaf, ()), None
    paths, leaves_, treedef = flatten_with_entries(tree, is_leaf=is_leaf)
    leaves_ = [x.value if isinstance(x, _Marked) else x for x in leaves_]
    return [(tuple(key_entry(*e) for e in p), x) for p, x in zip(paths, leaves_)], treedef


def leaves_with_path(tree: Any, is_leaf: Callable[..., bool] | None = None,
                     is_leaf_takes_path: bool = False) -> list[tuple[tuple, Any]]:
    """``(key_path, leaf)`` pairs in ``flatten``'s order (``jax.tree.leaves_with_path``: key
    paths of ``DictKey``, ``SequenceKey``, ...; see ``flatten_with_path``)."""
    return flatten_with_path(tree, is_leaf, is_leaf_takes_path)[0]


def map_with_path(f: Callable, tree: Any, *rest: Any, is_leaf: Callable[..., bool] | None = None,
                  is_leaf_takes_path: bool = False) -> Any:
    """Like ``map``, calling ``f(key_path, leaf, *other_leaves)`` (``jax.tree.map_with_path``).

    Examples:
        >>> from fungrad import tree
        >>> tree.map_with_path(lambda p, x: (p[-1], x), {"w": [5]})
        {'w': [(SequenceKey(idx=0), 5)]}
    """
    pairs, treedef = flatten_with_path(tree, is_leaf, is_leaf_takes_path)
    others = [treedef.flatten_up_to(r) for r in rest]
    return unflatten(treedef, [f(p, x, *xs) for (p, x), *xs in zip(pairs, *others)])


def broadcast(prefix_tree: Any, full_tree: Any, is_leaf: Callable | None = None) -> Any:
    """``full_tree``'s structure holding, at each leaf, the leaf of ``prefix_tree`` above
    it (``jax.tree.broadcast``; ``None`` in the prefix is an empty node, as everywhere).

    Examples:
        >>> from fungrad import tree
        >>> tree.broadcast([1, 2], [[3, 4], {"a": 5}])
        [[1, 1], {'a': 2}]
    """
    out: list = []
    try:
        map(lambda x, sub: out.extend([x] * len(leaves(sub))), prefix_tree, full_tree,
            is_leaf=is_leaf)
    except (ValueError, TypeError) as e:
        raise ValueError(f"tree.broadcast: prefix_tree {prefix_tree!r} is not a tree prefix of "
                         f"full_tree, whose structure is {structure(full_tree)}: {e}") from None
    return unflatten(structure(full_tree), out)


def reduce(function: Callable, tree: Any, initializer: Any = ...,
           is_leaf: Callable | None = None) -> Any:
    """Fold ``function`` over the leaves of ``tree``."""
    xs = leaves(tree, is_leaf=is_leaf)
    return (functools.reduce(function, xs) if initializer is ...
            else functools.reduce(function, xs, initializer))


def _halving_reduce(xs: list, operation: Callable, identity: Any) -> Any:
    if not xs:
        if identity is ...:
            raise TypeError("Must specify identity for parallel reduction of empty sequence.")
        return identity
    if len(xs) == 1:
        return xs[0]
    half = len(xs) // 2
    return operation(_halving_reduce(xs[:half], operation, identity),
                     _halving_reduce(xs[half:], operation, identity))


def reduce_associative(operation: Callable, tree: Any, *, identity: Any = ...,
                       is_leaf: Callable | None = None) -> Any:
    """Reduce the leaves with an associative ``operation`` as a balanced tree of calls
    (depth ``log2(n)``, ``jax.tree.reduce_associative``); ``identity`` is returned for a tree
    without leaves, which otherwise raises ``TypeError``.

    Examples:
        >>> from fungrad import tree
        >>> tree.reduce_associative(lambda a, b: (a, b), [1, 2, 3, 4])
        ((1, 2), (3, 4))
    """
    return _halving_reduce(leaves(tree, is_leaf=is_leaf), operation, identity)


def static(**kwargs: Any) -> Any:
    """A ``dataclasses.field`` marked ``static`` (``jax.tree.static``): ``register_dataclass``
    makes it metadata of the node, not a child. Takes ``dataclasses.field``'s arguments.

    Examples:
        >>> import dataclasses
        >>> from fungrad import tree
        >>> @tree.register_dataclass
        ... @dataclasses.dataclass
        ... class Op:
        ...     x: float
        ...     name: str = tree.static(default="add")
        >>> tree.leaves(Op(1.0))
        [1.0]
    """
    metadata = {"static": True, **(kwargs.pop("metadata", None) or {})}
    return dataclasses.field(metadata=metadata, **kwargs)


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
