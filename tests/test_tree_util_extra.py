"""The rest of ``jax.tree_util`` and ``jax.tree`` against jax: one-level flattening, node
tests, treedef children and tuples, broadcasting a prefix, associative reduction, key paths
with a path-taking ``is_leaf``, ``tree.static`` and the default registry."""
from __future__ import annotations

import collections
import dataclasses

import jax
import jax.tree_util as jtu
import pytest

import fungrad
import fungrad.tree_util as ftu
from fungrad import tree

Point = collections.namedtuple("Point", "x y")
TREES = [{"b": [1, 2], "a": 3}, [1, (2,)], (1, 2), None, [None, 4],
         collections.OrderedDict(b=1, a=2), collections.defaultdict(int, {"b": 1, "a": 2})]


@pytest.mark.parametrize("t", TREES, ids=repr)
def test_flatten_one_level(t):
    children, meta = ftu.flatten_one_level(t)
    j_children, j_meta = jtu.flatten_one_level(t)
    assert list(children) == list(j_children) and meta == j_meta
    pairs, meta = ftu.flatten_one_level_with_keys(t)
    j_pairs, j_meta = jtu.flatten_one_level_with_keys(t)
    assert [(repr(k), c) for k, c in pairs] == [(repr(k), c) for k, c in j_pairs]
    assert meta == j_meta
    assert ftu.default_registry.flatten_one_level(t)[1] == \
        jtu.default_registry.flatten_one_level(t)[1]


def test_flatten_one_level_namedtuple_and_registered():
    children, meta = ftu.flatten_one_level(Point(1, 2))
    assert list(children) == list(jtu.flatten_one_level(Point(1, 2))[0]) and meta is Point
    # jax 0.10 names both fields GetAttrKey('x') here; each field's own name is the key
    assert [str(k) for k, _ in ftu.flatten_one_level_with_keys(Point(1, 2))[0]] == [".x", ".y"]
    children, fn = ftu.flatten_one_level(ftu.Partial(max, 1, 2))
    assert fn is max and list(children) == [(1, 2), {}]


def test_flatten_one_level_of_a_leaf_raises_as_jax():
    with pytest.raises(ValueError, match="can't tree-flatten type: <class 'int'>"):
        ftu.flatten_one_level(1)
    with pytest.raises(ValueError, match="can't tree-flatten"):
        jtu.flatten_one_level(1)
    assert ftu.default_registry.flatten_one_level(1) is None
    assert jtu.default_registry.flatten_one_level(1) is None


@pytest.mark.parametrize("typ", [list, tuple, dict, type(None), Point, int, str,
                                 collections.OrderedDict, ftu.Partial, fungrad.Array])
def test_is_tree_node(typ):
    j_typ = {ftu.Partial: jtu.Partial, fungrad.Array: jax.Array}.get(typ, typ)
    assert ftu.is_tree_node(typ) == jtu.is_tree_node(j_typ)
    assert ftu.default_registry.is_node(typ) == ftu.is_tree_node(typ)


def test_treedef_children_and_tuple():
    x = [(1, 2), 3, {"a": 4}, None]
    kids = ftu.treedef_children(ftu.tree_structure(x))
    assert [str(k).replace("PyTreeSpec", "") for k in kids] == \
        [str(k).replace("PyTreeDef", "") for k in jtu.treedef_children(jtu.tree_structure(x))]
    assert kids == [ftu.tree_structure(v) for v in x]
    assert ftu.treedef_children(ftu.tree_structure(1)) == []
    both = ftu.treedef_tuple([ftu.tree_structure([1]), ftu.tree_structure({"a": None})])
    assert both == ftu.tree_structure(([1], {"a": None}))
    assert both.num_leaves == jtu.treedef_tuple(
        [jtu.tree_structure([1]), jtu.tree_structure({"a": None})]).num_leaves == 1


@pytest.mark.parametrize("prefix,full", [([1, 2], [[3, 4], {"a": 5}]), (1, {"a": 5, "b": [1, 2]}),
                                         ({"a": 0, "b": None}, {"a": [1, 2], "b": None}),
                                         ((7,), ((1, (2, 3)),))])
def test_broadcast(prefix, full):
    expected = jtu.tree_broadcast(prefix, full)
    assert ftu.tree_broadcast(prefix, full) == expected
    assert tree.broadcast(prefix, full) == jax.tree.broadcast(prefix, full) == expected


def test_broadcast_is_leaf_and_errors():
    is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
    assert tree.broadcast([(1, 2)], [[3, 4]], is_leaf=is_pair) == \
        jax.tree.broadcast([(1, 2)], [[3, 4]], is_leaf=is_pair)
    with pytest.raises(ValueError, match="tree.broadcast: prefix_tree"):
        tree.broadcast([1, 2, 3], [[3, 4], {"a": 5}])
    with pytest.raises(ValueError):
        jax.tree.broadcast([1, 2, 3], [[3, 4], {"a": 5}])


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_reduce_associative_has_jax_shape(n):
    leaves = list(range(n))
    pair = lambda a, b: (a, b)  # noqa: E731
    assert tree.reduce_associative(pair, leaves) == jax.tree.reduce_associative(pair, leaves)
    assert ftu.tree_reduce_associative(pair, {"k": leaves}) == \
        jtu.tree_reduce_associative(pair, {"k": leaves})


def test_reduce_associative_empty():
    add = lambda a, b: a + b  # noqa: E731
    assert tree.reduce_associative(add, [], identity=0) == 0
    assert tree.reduce_associative(add, [None], identity=5) == 5
    with pytest.raises(TypeError, match="Must specify identity"):
        tree.reduce_associative(add, [])
    with pytest.raises(TypeError, match="Must specify identity"):
        jax.tree.reduce_associative(add, [])


def _keys(pairs):
    return [(tuple(map(repr, p)), x) for p, x in pairs]


@pytest.mark.parametrize("t", [[1, {"x": 3, "y": [4, None]}], {"a": Point(1, [2])}, 5, None])
def test_flatten_with_path(t):
    ours, treedef = tree.flatten_with_path(t)
    ref, j_treedef = jax.tree.flatten_with_path(t)
    assert _keys(ours) == _keys(ref) and treedef.num_leaves == j_treedef.num_leaves
    assert _keys(ftu.default_registry.flatten_with_path(t)[0]) == \
        _keys(jtu.default_registry.flatten_with_path(t)[0])


@pytest.mark.parametrize("is_leaf", [lambda p, x: len(p) == 2, lambda p, x: isinstance(x, dict),
                                     lambda p, x: p == (jtu.SequenceKey(1),)])
def test_is_leaf_takes_path(is_leaf):
    t = [1, {"x": 3, "y": [4, (5, 6)]}, None]

    def ours(p, x):  # the same predicate over fungrad's key classes
        return is_leaf(tuple(getattr(jtu, type(k).__name__)(*k) for k in p), x)
    pairs, _ = tree.flatten_with_path(t, ours, is_leaf_takes_path=True)
    ref, _ = jax.tree.flatten_with_path(t, is_leaf, is_leaf_takes_path=True)
    assert _keys(pairs) == _keys(ref)
    assert [x for _, x in ftu.tree_leaves_with_path(t, ours, is_leaf_takes_path=True)] == \
        [x for _, x in jtu.tree_leaves_with_path(t, is_leaf, is_leaf_takes_path=True)]
    assert ftu.tree_map_with_path(lambda p, x: len(p), t, is_leaf=ours,
                                  is_leaf_takes_path=True) == \
        jtu.tree_map_with_path(lambda p, x: len(p), t, is_leaf=is_leaf, is_leaf_takes_path=True)


def test_key_path_aliases():
    assert ftu.KeyPath == tuple[ftu.KeyEntry, ...]
    assert ftu.KeyEntry.__name__ == jtu.KeyEntry.__name__ == "KeyEntry"
    assert ftu.SequenceKey is tree.SequenceKey and ftu.DictKey is tree.DictKey


def test_static_field():
    @tree.register_dataclass
    @dataclasses.dataclass
    class Op:
        x: float
        y: float
        op: str = tree.static(default="add", metadata={"doc": "the operation"})

    m = Op(1.0, 2.0)
    leaves, treedef = tree.flatten(m)
    assert leaves == [1.0, 2.0] and tree.unflatten(treedef, [3.0, 4.0]) == Op(3.0, 4.0)
    field = dataclasses.fields(Op)[2]
    assert dict(field.metadata) == dict(dataclasses.field(
        **{"metadata": dict(jax.tree.static(metadata={"doc": "the operation"}).metadata)}
    ).metadata) == {"static": True, "doc": "the operation"}
    assert tree.structure(Op(1.0, 2.0, "mul")) != treedef
    assert fungrad.jit(lambda m: m.x + m.y)(m) == 3.0


def test_registry_registers():
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b

    ftu.default_registry.register_node(Pair, lambda p: ((p.a, p.b), None),
                                       lambda _, c: Pair(*c))
    assert ftu.is_tree_node(Pair) and ftu.tree_leaves(Pair(1, [2])) == [1, 2]

    @dataclasses.dataclass
    class D:
        w: float
        name: str

    ftu.default_registry.register_dataclass_node(D, ["w"], ["name"])
    assert ftu.default_registry.flatten(D(1.0, "n"))[0] == [1.0]
