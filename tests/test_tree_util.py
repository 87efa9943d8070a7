"""fungrad.tree_util against jax.tree_util: leaves, structures, key paths (as printed by
``keystr``), registration helpers, ``Partial`` under ``jit``, mixed-key dicts."""
import collections
import dataclasses
import functools

import jax
import jax.tree_util as jtu
import numpy as np
import pytest

import fungrad
import fungrad.tree_util as ftu
from fungrad import tree

NT = collections.namedtuple("NT", "x y")

TREES = [
    {"b": 1, "a": (2, None, [3, 4])},
    [NT(1, 2), {"k": NT(3, (4,))}],
    (1,),
    None,
    {"foo": {"bar": {"baz": 1, "bat": [2, 3]}}},
    [[], {}, ()],
]


def _paths(pairs, ktu):
    """Key paths as keystr text, default and simple forms."""
    return [(ktu.keystr(p), ktu.keystr(p, simple=True, separator="/"), x) for p, x in pairs]


@pytest.mark.parametrize("t", TREES)
def test_flatten_and_paths_match_jax(t):
    leaves, treedef = ftu.tree_flatten(t)
    assert leaves == jtu.tree_leaves(t) == ftu.tree_leaves(t)
    assert ftu.tree_unflatten(treedef, leaves) == t
    assert ftu.tree_structure(t).num_leaves == jtu.tree_structure(t).num_leaves
    assert ftu.tree_structure(t).num_nodes == jtu.tree_structure(t).num_nodes
    assert _paths(ftu.tree_leaves_with_path(t), ftu) == _paths(jtu.tree_leaves_with_path(t), jtu)
    assert [tuple(map(repr, p)) for p, _ in ftu.tree_flatten_with_path(t)[0]] == \
        [tuple(map(repr, p)) for p, _ in jtu.tree_flatten_with_path(t)[0]]
    assert ftu.tree_map_with_path(lambda p, x: ftu.keystr(p), t) == \
        jtu.tree_map_with_path(lambda p, x: jtu.keystr(p), t)


@pytest.mark.parametrize("t", TREES)
def test_short_api_paths_and_keywords_match_jax_tree(t):
    """``fungrad.tree``'s ``*_with_path`` give JAX's key entries, as ``jax.tree``'s; the plain
    paths (dict keys, indices, field names) have functions of their own."""
    assert _paths(tree.leaves_with_path(t), ftu) == _paths(jax.tree.leaves_with_path(t), jtu)
    assert tree.map_with_path(lambda p, x: ftu.keystr(p), t) == \
        jax.tree.map_with_path(lambda p, x: jtu.keystr(p), t)
    is_pair = lambda p, x: len(p) == 1 and not isinstance(x, int)  # noqa: E731
    assert _paths(tree.leaves_with_path(t, is_pair, is_leaf_takes_path=True), ftu) == \
        _paths(jax.tree.leaves_with_path(t, is_pair, is_leaf_takes_path=True), jtu)
    plain = tree.leaves_with_plain_path(t)
    assert [x for _, x in plain] == tree.leaves(t)
    assert all(type(k) in (int, str) for p, _ in plain for k in p)
    assert tree.map_with_plain_path(lambda p, x: p, t) == tree.unflatten(
        tree.structure(t), [p for p, _ in plain])
    add = lambda a, b: a + b  # noqa: E731
    assert tree.reduce(function=add, tree=t, initializer=0) == \
        jax.tree.reduce(function=add, tree=t, initializer=0)
    assert ftu.tree_map(lambda x: x, tree=t) == jtu.tree_map(lambda x: x, tree=t)


def test_map_reduce_all_transpose():
    t, u = {"a": [1, 2], "b": 3}, {"a": [10, 20], "b": 30}
    assert ftu.tree_map(lambda x, y: x + y, t, u) == jtu.tree_map(lambda x, y: x + y, t, u)
    assert ftu.tree_map_with_path(lambda p, x, y: (ftu.keystr(p), x * y), t, u) == \
        jtu.tree_map_with_path(lambda p, x, y: (jtu.keystr(p), x * y), t, u)
    assert ftu.tree_reduce(lambda a, b: a + b, t) == jtu.tree_reduce(lambda a, b: a + b, t) == 6
    assert ftu.tree_reduce(lambda a, b: a + b, t, 100) == 106
    with pytest.raises(TypeError):
        ftu.tree_reduce(lambda a, b: a + b, [])
    assert ftu.tree_all([1, (True,)]) and not ftu.tree_all({"a": [1, 0]})
    assert ftu.tree_all([[1], 0], is_leaf=lambda x: isinstance(x, list)) == \
        jtu.tree_all([[1], 0], is_leaf=lambda x: isinstance(x, list))
    x = [(1, 2), (3, 4), (5, 6)]
    want = jtu.tree_transpose(jtu.tree_structure([0] * 3), jtu.tree_structure((0, 0)), x)
    assert ftu.tree_transpose(tree.structure([0] * 3), tree.structure((0, 0)), x) == want
    assert tree.transpose(outer_treedef=tree.structure([0] * 3), inner_treedef=None,
                          pytree_to_transpose=x) == want
    with pytest.raises(TypeError):
        ftu.tree_transpose(tree.structure([0] * 3), tree.structure((0, 0)), [(1, 2), 3, 4])


def test_leaf_predicates():
    for items in ([1, 2.0], [[1]], [None], [np.ones(2)], []):
        assert ftu.all_leaves(items) == jtu.all_leaves(items), items
    is_int_list = lambda x: isinstance(x, list) and all(isinstance(v, int) for v in x)  # noqa: E731
    for items in ([[1]], [[1], 2.0]):
        assert ftu.all_leaves(items, is_int_list) == jtu.all_leaves(items, is_int_list)
    for t in (None, 1, [1], {}):
        assert ftu.treedef_is_leaf(ftu.tree_structure(t)) == \
            jtu.treedef_is_leaf(jtu.tree_structure(t))


def test_mixed_dict_keys_raise_as_jax():
    bad = [{1: 2, "a": 3}]
    with pytest.raises(ValueError):
        jtu.tree_flatten(bad)
    for fn in (ftu.tree_flatten, ftu.tree_leaves, ftu.tree_structure,
               ftu.tree_flatten_with_path, lambda t: ftu.tree_map(lambda x: x, t)):
        with pytest.raises(ValueError, match="sorting pytree dictionary keys"):
            fn(bad)


class Box:
    def __init__(self, a, b, tag="t"):
        self.a, self.b, self.tag = a, b, tag


def _register(lib, cls, keys):
    flatten = lambda x: ((x.a, x.b), x.tag)  # noqa: E731
    unflatten = lambda tag, ch: cls(*ch, tag)  # noqa: E731
    if keys:
        lib.register_pytree_with_keys(
            cls, lambda x: (((lib.GetAttrKey("a"), x.a), (lib.DictKey("b"), x.b)), x.tag),
            unflatten)
    else:
        lib.register_pytree_node(cls, flatten, unflatten)


@pytest.mark.parametrize("keys", [False, True])
def test_registered_nodes_key_paths(keys):
    fg_cls = type("FgBox", (Box,), {})
    jx_cls = type("JxBox", (Box,), {})
    _register(ftu, fg_cls, keys)
    _register(jtu, jx_cls, keys)
    t_fg, t_jx = {"n": fg_cls(1, [2, 3])}, {"n": jx_cls(1, [2, 3])}
    assert _paths(ftu.tree_leaves_with_path(t_fg), ftu) == \
        _paths(jtu.tree_leaves_with_path(t_jx), jtu)
    out = ftu.tree_map(lambda x: x * 2, t_fg)["n"]
    assert isinstance(out, fg_cls) and (out.a, out.b, out.tag) == (2, [4, 6], "t")


def test_register_dataclass_static_fields_and_class_decorators():
    def make(lib):
        @functools.partial(lib.register_dataclass)
        @dataclasses.dataclass
        class D:
            x: float
            y: list
            n: int = dataclasses.field(default=3, metadata=dict(static=True))
        return D
    FD, JD = make(ftu), make(jtu)
    assert _paths(ftu.tree_leaves_with_path(FD(1.0, [2.0])), ftu) == \
        _paths(jtu.tree_leaves_with_path(JD(1.0, [2.0])), jtu)
    out = fungrad.grad(lambda d: d.x * d.y[0] * d.n)(FD(1.0, [2.0]))
    assert isinstance(out, FD) and out.n == 3 and float(out.x) == 6.0
    with pytest.raises(TypeError):
        ftu.register_dataclass(Box)

    @ftu.register_pytree_node_class
    class P:
        def __init__(self, v):
            self.v = v

        def tree_flatten(self):
            return (self.v,), None

        @classmethod
        def tree_unflatten(cls, aux, ch):
            return cls(*ch)
    assert ftu.tree_leaves(P(5)) == [5]
    assert ftu.keystr(ftu.tree_leaves_with_path(P(5))[0][0]) == "[<flat index 0>]"


def test_register_static():
    @ftu.register_static
    class Cfg:
        def __eq__(self, other):
            return isinstance(other, Cfg)

        def __hash__(self):
            return 0
    t = {"cfg": Cfg(), "x": 1.0}
    assert ftu.tree_leaves(t) == [1.0]
    assert isinstance(ftu.tree_map(lambda v: v, t)["cfg"], Cfg)
    assert float(fungrad.jit(lambda t: t["x"] * 2)(t)) == 2.0


def test_partial_is_a_pytree_and_a_jit_argument():
    add = ftu.Partial(fungrad.numpy.add, 1.0)
    ref = jtu.Partial(jax.numpy.add, 1.0)
    assert ftu.tree_leaves(add) == jtu.tree_leaves(ref) == [1.0]
    call = fungrad.jit(lambda f, x: f(x))
    out, want = call(add, 2.0), jax.jit(lambda f, x: f(x))(ref, 2.0)
    assert float(out) == float(want) and out.dtype == want.dtype and out.weak_type == want.weak_type
    nested = ftu.Partial(functools.partial(lambda a, b, c: a * b + c, 2.0), 3.0)
    assert ftu.tree_leaves(nested) == jtu.tree_leaves(
        jtu.Partial(functools.partial(lambda a, b, c: a * b + c, 2.0), 3.0)) == [3.0]
    assert float(call(nested, 1.0)) == 7.0
    g = fungrad.grad(lambda f: f(4.0))(ftu.Partial(lambda a, x: a * x, 2.0))
    assert isinstance(g, ftu.Partial) and float(g.args[0]) == 4.0
