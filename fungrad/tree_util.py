"""``fungrad.tree_util``: the ``jax.tree_util`` API over ``fungrad.tree``.

Everything here is built on ``fungrad.tree`` (the only module that imports ``optree``);
this module adds JAX's names, its key-path classes (``DictKey``, ``SequenceKey``,
``GetAttrKey``, ``FlattenedIndexKey``, defined in ``fungrad.tree`` and printed by ``keystr``
exactly as JAX prints them), ``Partial``, the registration helpers and ``default_registry``,
the registry object those helpers fill. As in JAX, dicts whose keys cannot be sorted
(``{1: x, "a": y}``) are refused, with a ``ValueError``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Hashable, Iterable, Sequence, TypeVar

from fungrad import tree as _pytree
from fungrad._core.namespace import public_dir
from fungrad.tree import (KEY_TYPES, DictKey, FlattenedIndexKey, GetAttrKey, PyTreeDef,
                          SequenceKey, register_dataclass, register_pytree_node_class)

__all__ = ["DictKey", "FlattenedIndexKey", "GetAttrKey", "KeyEntry", "KeyPath", "Partial",
           "PyTreeDef", "SequenceKey", "all_leaves", "default_registry", "flatten_one_level",
           "flatten_one_level_with_keys", "is_tree_node", "keystr", "register_dataclass",
           "register_pytree_node", "register_pytree_node_class", "register_pytree_with_keys",
           "register_pytree_with_keys_class", "register_static", "tree_all", "tree_broadcast",
           "tree_flatten", "tree_flatten_with_path", "tree_leaves", "tree_leaves_with_path",
           "tree_map", "tree_map_with_path", "tree_reduce", "tree_reduce_associative",
           "tree_structure", "tree_transpose", "tree_unflatten", "treedef_children",
           "treedef_is_leaf", "treedef_tuple"]
__dir__ = public_dir(__all__)


# --------------------------------------------------------------------------- key paths

KeyEntry = TypeVar("KeyEntry", bound=Any)   # one key: DictKey, SequenceKey, GetAttrKey, ...
KeyPath = tuple[KeyEntry, ...]              # the keys from the root to a leaf

def keystr(keys: Sequence[Any], *, simple: bool = False, separator: str = "") -> str:
    """A key path as text: each key's ``str`` (or, with ``simple``, its bare value) joined
    by ``separator``.

    Examples:
        >>> from fungrad.tree_util import keystr, tree_leaves_with_path
        >>> [keystr(p) for p, _ in tree_leaves_with_path({"a": [1, 2]})]
        ["['a'][0]", "['a'][1]"]
        >>> keystr(tree_leaves_with_path({"a": [1, 2]})[1][0], simple=True, separator="/")
        'a/1'
    """
    def simple_str(k: Any) -> str:
        return str(k[0]) if isinstance(k, KEY_TYPES) else str(k)
    return separator.join(map(simple_str if simple else str, keys))


# --------------------------------------------------------------------------- dict keys

def _check_dict_keys(x: Any) -> None:
    """Raise, as JAX does, for a dict (anywhere in ``x``) whose keys cannot be sorted."""
    if isinstance(x, dict):
        try:
            sorted(x)
        except TypeError as e:
            raise ValueError("Comparator raised exception while sorting pytree dictionary "
                             f"keys {list(x)!r}: {e}") from None
        children: Iterable = x.values()
    elif isinstance(x, (list, tuple)):
        children = x
    else:
        return
    for c in children:
        _check_dict_keys(c)


# --------------------------------------------------------------------------- flattening

def tree_flatten(tree: Any, is_leaf: Callable | None = None) -> tuple[list, PyTreeDef]:
    """Leaves of a pytree (dict keys sorted, ``None`` an empty subtree) and its structure.

    Examples:
        >>> from fungrad.tree_util import tree_flatten
        >>> tree_flatten({"b": 2, "a": (1, None)})
        ([1, 2], PyTreeSpec({'a': (*, None), 'b': *}))
    """
    _check_dict_keys(tree)
    return _pytree.flatten(tree, is_leaf=is_leaf)


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    """The pytree of structure ``treedef`` holding ``leaves``."""
    return _pytree.unflatten(treedef, leaves)


def tree_leaves(tree: Any, is_leaf: Callable | None = None) -> list:
    """The leaves of a pytree, in ``tree_flatten``'s order."""
    _check_dict_keys(tree)
    return _pytree.leaves(tree, is_leaf=is_leaf)


def tree_structure(tree: Any, is_leaf: Callable | None = None) -> PyTreeDef:
    """The structure (``PyTreeDef``) of a pytree."""
    _check_dict_keys(tree)
    return _pytree.structure(tree, is_leaf=is_leaf)


def tree_map(f: Callable, tree: Any, *rest: Any, is_leaf: Callable | None = None) -> Any:
    """``f`` applied leaf by leaf to ``tree`` and trees with its structure (or a
    structure it is a prefix of).

    Examples:
        >>> from fungrad.tree_util import tree_map
        >>> tree_map(lambda x, y: x * y, [1, {"a": 2}], [10, {"a": 20}])
        [10, {'a': 40}]
    """
    _check_dict_keys(tree)
    return _pytree.map(f, tree, *rest, is_leaf=is_leaf)


def tree_reduce(function: Callable, tree: Any, initializer: Any = ...,
                is_leaf: Callable | None = None) -> Any:
    """``functools.reduce`` of ``function`` over the leaves."""
    return _pytree.reduce(function, tree_leaves(tree, is_leaf), initializer)


def tree_all(tree: Any, *, is_leaf: Callable | None = None) -> bool:
    """Whether every leaf is truthy."""
    return all(tree_leaves(tree, is_leaf))


def tree_transpose(outer_treedef: PyTreeDef, inner_treedef: PyTreeDef | None,
                   pytree_to_transpose: Any) -> Any:
    """Swap the outer and inner levels of a tree of trees (``fungrad.tree.transpose``)."""
    return _pytree.transpose(outer_treedef, inner_treedef, pytree_to_transpose)


def tree_flatten_with_path(tree: Any, is_leaf: Callable[..., bool] | None = None,
                           is_leaf_takes_path: bool = False
                           ) -> tuple[list[tuple[KeyPath, Any]], PyTreeDef]:
    """``(key_path, leaf)`` pairs and the structure (``fungrad.tree.flatten_with_path``;
    with ``is_leaf_takes_path``, ``is_leaf(key_path, subtree)``).

    Examples:
        >>> from fungrad.tree_util import tree_flatten_with_path
        >>> tree_flatten_with_path({"a": [1]})[0]
        [((DictKey(key='a'), SequenceKey(idx=0)), 1)]
    """
    _check_dict_keys(tree)
    return _pytree.flatten_with_path(tree, is_leaf, is_leaf_takes_path)


def tree_leaves_with_path(tree: Any, is_leaf: Callable[..., bool] | None = None,
                          is_leaf_takes_path: bool = False) -> list[tuple[KeyPath, Any]]:
    """``(key_path, leaf)`` pairs, in ``tree_flatten``'s order."""
    return tree_flatten_with_path(tree, is_leaf, is_leaf_takes_path)[0]


def tree_map_with_path(f: Callable, tree: Any, *rest: Any,
                       is_leaf: Callable[..., bool] | None = None,
                       is_leaf_takes_path: bool = False) -> Any:
    """Like ``tree_map``, calling ``f(key_path, leaf, *other_leaves)``.

    Examples:
        >>> from fungrad.tree_util import keystr, tree_map_with_path
        >>> tree_map_with_path(lambda p, x: keystr(p), {"w": [0, 0]})
        {'w': ["['w'][0]", "['w'][1]"]}
    """
    _check_dict_keys(tree)
    return _pytree.map_with_path(f, tree, *rest, is_leaf=is_leaf,
                                 is_leaf_takes_path=is_leaf_takes_path)


def tree_broadcast(prefix_tree: Any, full_tree: Any, is_leaf: Callable | None = None) -> Any:
    """``full_tree``'s structure with the leaves of its prefix ``prefix_tree`` repeated over
    the subtrees below them (``fungrad.tree.broadcast``)."""
    _check_dict_keys(full_tree)
    return _pytree.broadcast(prefix_tree, full_tree, is_leaf)


def tree_reduce_associative(operation: Callable, tree: Any, *, identity: Any = ...,
                            is_leaf: Callable | None = None) -> Any:
    """Reduce the leaves with an associative ``operation`` in a balanced tree of calls
    (``fungrad.tree.reduce_associative``)."""
    return _pytree.reduce_associative(operation, tree_leaves(tree, is_leaf), identity=identity)


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    """Whether ``treedef`` is a single node: a leaf (or ``None``)."""
    return treedef.num_nodes == 1


def treedef_children(treedef: PyTreeDef) -> list[PyTreeDef]:
    """The structures of the root's direct children (none for a leaf).

    Examples:
        >>> from fungrad.tree_util import tree_structure, treedef_children
        >>> treedef_children(tree_structure([(1, 2), 3, {"a": 4}]))
        [PyTreeSpec((*, *)), PyTreeSpec(*), PyTreeSpec({'a': *})]
    """
    return list(treedef.children())


def treedef_tuple(treedefs: Iterable[PyTreeDef]) -> PyTreeDef:
    """The structure of a tuple whose elements have the structures ``treedefs``.

    Examples:
        >>> from fungrad.tree_util import tree_structure, treedef_tuple
        >>> treedef_tuple([tree_structure([1]), tree_structure(None)])
        PyTreeSpec(([*], None))
    """
    return _pytree.tuple_structure(list(treedefs))


def is_tree_node(typ: type) -> bool:
    """Whether instances of ``typ`` are pytree nodes (the built-in containers, ``None``,
    namedtuples and the registered classes) rather than leaves."""
    return _pytree.is_node_type(typ)


def flatten_one_level(tree: Any) -> tuple[Iterable[Any], Hashable]:
    """A node's direct children and its metadata (a dict's sorted keys, a namedtuple's
    class, a registered node's auxiliary data); ``ValueError`` for a leaf.

    Examples:
        >>> from fungrad.tree_util import flatten_one_level
        >>> flatten_one_level({"b": [1, 2], "a": {"c": 3}})
        ([{'c': 3}, [1, 2]], ('a', 'b'))
    """
    pairs, meta = flatten_one_level_with_keys(tree)
    return [c for _, c in pairs], meta


def flatten_one_level_with_keys(tree: Any) -> tuple[Iterable[tuple[KeyEntry, Any]], Hashable]:
    """``flatten_one_level`` with each child's key: ``([(key, child), ...], metadata)``."""
    _check_dict_keys(tree)
    pairs, meta, _ = _pytree.one_level(tree)
    return pairs, meta


def all_leaves(iterable: Iterable[Any], is_leaf: Callable | None = None) -> bool:
    """Whether every element of ``iterable`` is a leaf (``None`` is not: it is a node).

    Examples:
        >>> from fungrad.tree_util import all_leaves
        >>> all_leaves([1, 2.0]), all_leaves([[1]]), all_leaves([None])
        (True, False, False)
    """
    items = list(iterable)
    leaves = tree_leaves(items, is_leaf)
    return len(leaves) == len(items) and all(a is b for a, b in zip(items, leaves))


# --------------------------------------------------------------------------- registration

def register_pytree_node(nodetype: type, flatten_func: Callable, unflatten_func: Callable,
                         flatten_with_keys_func: Callable | None = None) -> None:
    """Register ``nodetype``: ``flatten_func(x) -> (children, aux)``,
    ``unflatten_func(aux, children) -> x``; key paths use ``flatten_with_keys_func``'s
    keys when given, else ``FlattenedIndexKey``."""
    _pytree.register_pytree_node(nodetype, flatten_func, unflatten_func, flatten_with_keys_func)


def register_pytree_with_keys(nodetype: type, flatten_with_keys: Callable,
                              unflatten_func: Callable,
                              flatten_func: Callable | None = None) -> None:
    """Register ``nodetype`` with ``flatten_with_keys(x) -> (((key, child), ...), aux)``."""
    def children_only(x):
        pairs, aux = flatten_with_keys(x)
        return [c for _, c in pairs], aux
    _pytree.register_pytree_node(nodetype, flatten_func or children_only, unflatten_func,
                              flatten_with_keys)


def register_pytree_with_keys_class(cls: type) -> type:
    """Decorator: ``cls`` defines ``tree_flatten_with_keys`` and classmethod ``tree_unflatten``
    (and optionally ``tree_flatten``)."""
    flatten = cls.tree_flatten if hasattr(cls, "tree_flatten") else None
    register_pytree_with_keys(cls, cls.tree_flatten_with_keys, cls.tree_unflatten, flatten)
    return cls


def register_static(cls: type) -> type:
    """Register ``cls`` as a node without children: its instances are static metadata
    (they must be hashable and comparable), never leaves."""
    _pytree.register_pytree_node(cls, lambda x: ((), x), lambda x, _: x)
    return cls


class _Registry:
    """The registry of pytree node types that every function here uses
    (``jax.tree_util.default_registry``): its methods are the registry-level forms of the
    module's functions."""

    def flatten(self, tree: Any, leaf_predicate: Callable | None = None
                ) -> tuple[list, PyTreeDef]:
        """``tree_flatten``."""
        return tree_flatten(tree, leaf_predicate)

    def flatten_with_path(self, tree: Any, is_leaf: Callable | None = None
                          ) -> tuple[list[tuple[KeyPath, Any]], PyTreeDef]:
        """``tree_flatten_with_path`` with ``is_leaf(key_path, subtree)``."""
        return tree_flatten_with_path(tree, is_leaf, is_leaf_takes_path=True)

    def flatten_one_level(self, tree: Any) -> tuple[Iterable[Any], Hashable] | None:
        """``flatten_one_level``, or None for a leaf."""
        return flatten_one_level(tree) if not self._is_leaf(tree) else None

    def flatten_one_level_with_keys(self, tree: Any
                                    ) -> tuple[Iterable[tuple[KeyEntry, Any]], Hashable] | None:
        """``flatten_one_level_with_keys``, or None for a leaf."""
        return flatten_one_level_with_keys(tree) if not self._is_leaf(tree) else None

    def is_node(self, typ: type) -> bool:
        """``is_tree_node``."""
        return is_tree_node(typ)

    def register_node(self, nodetype: type, to_iterable: Callable, from_iterable: Callable,
                      to_iterable_with_keys: Callable | None = None) -> None:
        """``register_pytree_node``."""
        register_pytree_node(nodetype, to_iterable, from_iterable, to_iterable_with_keys)

    def register_dataclass_node(self, nodetype: type, data_fields: Sequence[str],
                                meta_fields: Sequence[str]) -> None:
        """``register_dataclass`` with explicit fields."""
        register_dataclass(nodetype, data_fields, meta_fields)

    @staticmethod
    def _is_leaf(x: Any) -> bool:
        return not is_tree_node(type(x))


default_registry = _Registry()


# --------------------------------------------------------------------------- Partial

class _Unmerged:
    """Holds a ``functools.partial`` as ``Partial``'s function, so that ``functools.partial``
    does not merge its arguments into the new ``Partial``'s (which are the pytree)."""

    def __init__(self, fn: functools.partial) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unmerged) and self.fn is other.fn

    def __hash__(self) -> int:
        return id(self.fn)


class Partial(functools.partial):
    """``functools.partial`` as a pytree: the bound arguments are its children and the
    function its static part, so a ``Partial`` can be passed to ``jit``-ted functions.

    Examples:
        >>> import fungrad
        >>> from fungrad.tree_util import Partial
        >>> add_one = Partial(fungrad.numpy.add, 1.0)
        >>> fungrad.jit(lambda f, x: f(x))(add_one, 2.0)
        Array(3., dtype=float32, weak_type=True)
    """

    def __new__(cls, func: Callable, *args: Any, **kw: Any) -> "Partial":
        if isinstance(func, functools.partial):
            func = _Unmerged(func)
        return super().__new__(cls, func, *args, **kw)


_pytree.register_pytree_node(Partial, lambda p: ((p.args, p.keywords), p.func),
                          lambda func, xs: Partial(func, *xs[0], **xs[1]))
