"""``optax.tree_utils``: arithmetic, norms and helpers over pytrees of arrays.

Names, arguments, defaults and numerics follow optax's: leaf-wise arithmetic
(``tree_add``, ``tree_scale``, ...), reductions and norms (``tree_vdot``, ``tree_norm``,
...), trees of constants, casts and random draws, the moment updates optimisers share, and
the search-and-replace helpers for optimiser states (``tree_get``, ``tree_set``,
``tree_map_params``), whose paths name the namedtuples they pass (``NamedTupleKey``).
"""
from __future__ import annotations

import dataclasses
import functools
import operator
from typing import Any, Callable, Optional, Union

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad import tree as _tree
from fungrad.optim._base import global_norm, tree_cast
from fungrad.optim.transform import _abs_sq, _bias_correction, _moment
from fungrad.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

__all__ = [
    "NamedTupleKey", "tree_add", "tree_add_scale", "tree_allclose", "tree_batch_shape",
    "tree_bias_correction", "tree_cast", "tree_cast_like", "tree_clip", "tree_conj",
    "tree_div", "tree_dtype", "tree_full_like", "tree_get", "tree_get_all_with_path",
    "tree_map_params", "tree_max", "tree_min", "tree_mul", "tree_norm", "tree_ones_like",
    "tree_random_like", "tree_real", "tree_scale", "tree_set", "tree_size", "tree_split_key_like",
    "tree_sub", "tree_sum", "tree_unwrap_random_key_data", "tree_update_infinity_moment",
    "tree_update_moment", "tree_update_moment_per_elem_norm", "tree_vdot", "tree_where",
    "tree_zeros_like"]


def _is_none(x: Any) -> bool:
    return x is None


# --------------------------------------------------------------------------- arithmetic

def tree_add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """The leaf-wise sum of two (or more) trees."""
    return _tree.map(lambda *leaves: sum(leaves), tree_x, tree_y, *other_trees)


def tree_sub(tree_x: Any, tree_y: Any) -> Any:
    """``tree_x - tree_y`` leaf-wise."""
    return _tree.map(operator.sub, tree_x, tree_y)


def tree_mul(tree_x: Any, tree_y: Any) -> Any:
    """``tree_x * tree_y`` leaf-wise."""
    return _tree.map(operator.mul, tree_x, tree_y)


def tree_div(tree_x: Any, tree_y: Any) -> Any:
    """``tree_x / tree_y`` leaf-wise."""
    return _tree.map(operator.truediv, tree_x, tree_y)


def tree_scale(scalar: Any, tree: Any) -> Any:
    """``scalar * tree`` leaf-wise."""
    return _tree.map(lambda x: scalar * x, tree)


def tree_add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    """``tree_x + scalar * tree_y`` leaf-wise; a ``None`` leaf of ``tree_x`` stays ``None``."""
    scalar = jnp.asarray(scalar)
    return _tree.map(lambda x, y: None if x is None else x + scalar * y, tree_x, tree_y,
                     is_leaf=_is_none)


def tree_conj(tree: Any) -> Any:
    """The complex conjugate of every leaf."""
    return _tree.map(jnp.conj, tree)


def tree_real(tree: Any) -> Any:
    """The real part of every leaf."""
    return _tree.map(jnp.real, tree)


def tree_where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
    """``jnp.where(condition, x, y)`` leaf-wise."""
    return _tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def tree_clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Every leaf clipped to ``[min_value, max_value]`` (``None``: no bound on that side)."""
    return _tree.map(lambda g: jnp.clip(g, min_value, max_value), tree)


def tree_batch_shape(tree: Any, shape: tuple[int, ...] = ()) -> Any:
    """Every leaf broadcast to the leading batch dimensions ``shape``."""
    return _tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


# --------------------------------------------------------------------------- reductions

def _vdot(a: Any, b: Any) -> Any:
    """The inner product of two arrays of one shape, conjugating a complex ``a``, at the
    highest precision."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"tree_vdot: leaves of shapes {a.shape} and {b.shape}")
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        a = jnp.conj(a)
    return jnp.tensordot(a, b, a.ndim, precision=lax.Precision.HIGHEST)


def tree_vdot(tree_x: Any, tree_y: Any) -> Any:
    """The inner product of two trees (``tree_x`` conjugated): a scalar."""
    return _tree.reduce(operator.add, _tree.map(_vdot, tree_x, tree_y), initializer=0)


def tree_sum(tree: Any, associative_reduction: bool = False) -> Any:
    """The sum of all the elements of all the leaves: a scalar. ``associative_reduction``
    adds the leaves' sums as a balanced tree (a different order of summation)."""
    sums = _tree.map(jnp.sum, tree)
    if associative_reduction:
        return _tree.reduce_associative(operator.add, sums, identity=0)
    return _tree.reduce(operator.add, sums, initializer=0)


def _tree_extremum(tree: Any, reduce_leaf: Callable, combine: Callable,
                   initializer: float) -> Any:
    """``reduce_leaf`` over each non-empty leaf, the results folded with ``combine``."""
    extrema = _tree.map(lambda x: None if jnp.size(x) == 0 else reduce_leaf(x), tree)
    return _tree.reduce(combine, extrema, initializer=initializer)


def tree_max(tree: Any) -> Any:
    """The largest element of all the leaves (``-inf`` when there is none)."""
    return _tree_extremum(tree, jnp.max, jnp.maximum, -float("inf"))


def tree_min(tree: Any) -> Any:
    """The smallest element of all the leaves (``inf`` when there is none)."""
    return _tree_extremum(tree, jnp.min, jnp.minimum, float("inf"))


def tree_size(tree: Any) -> int:
    """The total number of elements of the leaves."""
    return sum(jnp.size(leaf) for leaf in _tree.leaves(tree))


def _square(leaf: Any) -> Any:
    return jnp.square(leaf.real) + jnp.square(leaf.imag)


def tree_norm(tree: Any, ord: Union[int, str, float, None] = None,  # noqa: A002
              squared: bool = False) -> Any:
    """The vector norm of all the leaves together, of order ``ord``: ``None`` or 2, 1, or
    ``inf`` (also ``'inf'``, ``'infinity'``); with ``squared``, its square."""
    if ord is None or ord == 2:
        if squared:
            return jnp.array(tree_sum(_tree.map(_square, tree)))
        return jnp.array(global_norm(tree))
    if ord == 1:
        norm = tree_sum(_tree.map(jnp.abs, tree))
    elif ord == jnp.inf or ord in ("inf", "infinity"):
        norm = tree_max(_tree.map(jnp.abs, tree))
    else:
        raise ValueError(f"Unsupported ord: {ord}")
    return jnp.array(_square(norm) if squared else norm)


def tree_allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08,
                  equal_nan: bool = False) -> Any:
    """Whether the two trees are close leaf-wise, as ``jnp.allclose``: a boolean."""
    close = _tree.map(lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan),
                      a, b)
    return functools.reduce(operator.and_, _tree.leaves(close), True)


# --------------------------------------------------------------------------- constants, dtypes

def tree_zeros_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of zeros of the structure and shapes of ``tree`` (its dtypes or ``dtype``)."""
    return _tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def tree_ones_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of ones of the structure and shapes of ``tree`` (its dtypes or ``dtype``)."""
    return _tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def tree_full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """A tree of ``fill_value`` of the structure and shapes of ``tree`` (its dtypes or
    ``dtype``)."""
    return _tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def tree_cast_like(tree: Any, other_tree: Any) -> Any:
    """Each leaf of ``tree`` cast to the dtype of the leaf of ``other_tree`` at its place
    (left as is where that leaf has no dtype)."""
    return _tree.map(lambda t, o: t.astype(o.dtype) if hasattr(o, "dtype") else t, tree,
                     other_tree)


def _lower_dtype(dtype1: Any, dtype2: Any) -> Any:
    """The one of two dtypes that promotes to the other."""
    promoted = jnp.promote_types(dtype1, dtype2)
    if promoted == dtype1:
        return dtype2
    if promoted == dtype2:
        return dtype1
    raise ValueError(f"Cannot compare dtype of {dtype1=} and {dtype2=}. Neither {dtype1} nor "
                     f"{dtype2} can be promoted to the other.")


def _higher_dtype(dtype1: Any, dtype2: Any) -> Any:
    """The one of two dtypes that the other promotes to."""
    return dtype2 if _lower_dtype(dtype1, dtype2) == dtype1 else dtype1


_DTYPE_HANDLERS = {"promote": jnp.promote_types, "highest": _higher_dtype,
                   "lowest": _lower_dtype}


def tree_dtype(tree: Any, mixed_dtype_handler: Optional[str] = None) -> Any:
    """The dtype of the leaves (the default float dtype for a tree without leaves).

    With ``mixed_dtype_handler=None`` the leaves must share one dtype (``ValueError`` naming
    the others); ``'promote'`` gives their promoted dtype, ``'highest'`` (``'lowest'``) the
    one the others promote to (that promotes to the others), ``ValueError`` when there is
    none.
    """
    leaves = _tree.leaves(tree)
    if not leaves:
        return jnp.asarray(leaves).dtype
    dtypes = [jnp.asarray(x).dtype for x in leaves]
    if mixed_dtype_handler is None:
        errors = [f"Expected dtype={dtypes[0]!r} for {path} but got {dtype}."
                  for (path, _), dtype in zip(_tree.leaves_with_path(tree), dtypes)
                  if dtype != dtypes[0]]
        if errors:
            raise ValueError("\n".join(errors))
        return dtypes[0]
    if mixed_dtype_handler not in _DTYPE_HANDLERS:
        raise ValueError(f"Invalid value for {mixed_dtype_handler=}, possible values are: None,"
                         ' "promote", "highest", "lowest".')
    return functools.reduce(_DTYPE_HANDLERS[mixed_dtype_handler], dtypes)


# --------------------------------------------------------------------------- random trees

def tree_split_key_like(rng_key: Any, target_tree: Any) -> Any:
    """A tree of the structure of ``target_tree`` holding one new key per leaf, split from
    ``rng_key``."""
    treedef = _tree.structure(target_tree)
    return _tree.unflatten(treedef, random.split(rng_key, treedef.num_leaves))


def tree_random_like(rng_key: Any, target_tree: Any, sampler: Callable = random.normal,
                     dtype: Any = None) -> Any:
    """A tree of the structure and shapes of ``target_tree`` drawn from
    ``sampler(key, shape, dtype)``, one key per leaf (``tree_split_key_like``); the leaves'
    dtypes unless ``dtype`` is given."""
    keys = tree_split_key_like(rng_key, target_tree)
    return _tree.map(lambda leaf, key: sampler(key, leaf.shape, dtype or leaf.dtype),
                     target_tree, keys)


def tree_unwrap_random_key_data(input_tree: Any) -> Any:
    """``input_tree`` with each typed key replaced by its ``uint32`` data (``key_data``),
    for numerical comparisons."""
    return _tree.map(lambda x: random.key_data(x) if isinstance(x, random.PRNGKeyArray) else x,
                     input_tree)


# --------------------------------------------------------------------------- moments

def tree_update_moment(updates: Any, moments: Any, decay: Any, order: Any) -> Any:
    """The exponential moving average of the ``order``-th moment:
    ``(1 - decay) * g ** order + decay * t``; ``None`` where an update is ``None``."""
    return _tree.map(lambda g, t: None if g is None else _moment(g, t, decay, order),
                     updates, moments, is_leaf=_is_none)


def tree_update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
    """The exponential moving average of the infinity norm:
    ``max(|g| + eps, decay * t)``; ``None`` where an update is ``None``."""
    return _tree.map(lambda g, t: None if g is None else jnp.maximum(jnp.abs(g) + eps, decay * t),
                     updates, moments, is_leaf=_is_none)


def _orderth_norm(g: Any, order: Any) -> Any:
    """``|g| ** order`` element-wise (``g ** order`` for a real ``g``)."""
    if jnp.isrealobj(g):
        return g ** order
    half_order = order / 2
    return _abs_sq(g) ** (int(half_order) if half_order.is_integer() else half_order)


def tree_update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any,
                                     order: Any) -> Any:
    """The exponential moving average of the ``order``-th moment of the element-wise norm:
    ``(1 - decay) * |g| ** order + decay * t``; ``None`` where an update is ``None``."""
    return _tree.map(lambda g, t: (None if g is None
                                   else (1 - decay) * _orderth_norm(g, order) + decay * t),
                     updates, moments, is_leaf=_is_none)


def tree_bias_correction(moment: Any, decay: Any, count: Any) -> Any:
    """``moment / (1 - decay ** count)`` leaf-wise, in each leaf's dtype (the correction is
    computed in float first): a no-op as ``count`` grows."""
    return _bias_correction(moment, decay, jnp.asarray(count))


# --------------------------------------------------------------------------- optimiser states

@_tree.register_pytree_node_class
class _ParamsPlaceholder:
    """A tree without leaves that stands for the parameters in an ``init``'s output."""

    def tree_flatten(self) -> tuple[tuple, None]:
        return (), None

    @classmethod
    def tree_unflatten(cls, aux: Any, children: Any) -> _ParamsPlaceholder:
        return cls()


def tree_map_params(initable: Any, f: Callable[..., Any], state: Any, /, *rest: Any,
                    transform_non_params: Optional[Callable[..., Any]] = None,
                    is_leaf: Optional[Callable[[Any], bool]] = None) -> Any:
    """Apply ``f`` over every copy of the parameters in the optimiser state ``state``.

    ``initable`` is an ``init`` function or has an ``init`` (a ``GradientTransformation``):
    called on a placeholder, it shows which parts of ``state`` are parameter trees. ``f``
    gets each of their leaves with the leaves of ``rest`` (trees of the parameters'
    structure) at the same place; ``transform_non_params``, if given, maps every other part
    of the state; ``is_leaf`` is passed to the map over the parameter trees.
    """
    init = getattr(initable, "init", initable)

    def map_params(maybe_placeholder: Any, value: Any) -> Any:
        if isinstance(maybe_placeholder, _ParamsPlaceholder):
            return _tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return _tree.map(map_params, init(_ParamsPlaceholder()), state,
                     is_leaf=lambda v: isinstance(v, _ParamsPlaceholder))


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """The key of a namedtuple field in the paths of ``tree_get_all_with_path``,
    ``tree_get`` and ``tree_set``: the tuple's class name and the field's name."""

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_named_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _node_has_keys(node: Any, keys: tuple[Any, ...]) -> bool:
    """Whether ``node`` is a namedtuple with one of ``keys`` as field or class name, or a
    dict with one of ``keys``."""
    if _is_named_tuple(node):
        return any(key in node._fields for key in keys) or type(node).__name__ in keys
    return isinstance(node, dict) and any(key in node for key in keys)


def _leaves_with_named_tuple_path(tree: Any, is_leaf: Optional[Callable[[Any], bool]] = None
                                  ) -> list[tuple[tuple, Any]]:
    """``(path, leaf)`` pairs, where a namedtuple's field is a ``NamedTupleKey``; the
    subtrees for which ``is_leaf`` holds are leaves."""
    stop = is_leaf or (lambda _: False)
    out = []
    for path, node in _tree.leaves_with_path(tree, is_leaf=lambda x: stop(x)
                                             or _is_named_tuple(x)):
        if stop(node) or not _is_named_tuple(node):
            out.append((path, node))
            continue
        for field in node._fields:
            key = NamedTupleKey(type(node).__name__, field)
            out += [((*path, key, *child_path), child) for child_path, child
                    in _leaves_with_named_tuple_path(getattr(node, field), is_leaf)]
    return out


def _children_with_path(path: tuple, node: Any) -> list[tuple[tuple, Any]]:
    """``(path, child)`` pairs of the fields of a namedtuple or the entries of a dict."""
    if _is_named_tuple(node):
        return [((*path, NamedTupleKey(type(node).__name__, field)), getattr(node, field))
                for field in node._fields]
    if isinstance(node, dict):
        return [((*path, DictKey(key)), value) for key, value in node.items()]
    raise ValueError(f"Subtree must be a dict or a NamedTuple. Got {type(node)}")


def _flatten_to_key(path: tuple, node: Any, key: Any) -> tuple[tuple, Any]:
    """``(path, value)`` of ``key`` in ``node``: the node itself for a namedtuple named
    ``key``."""
    if _is_named_tuple(node):
        if key == type(node).__name__:
            return path, node
        return (*path, NamedTupleKey(type(node).__name__, key)), getattr(node, key)
    return (*path, DictKey(key)), node[key]


def _get_all_with_path(tree: Any, key: Any) -> list[tuple[tuple, Any]]:
    """Every ``(path, value)`` of ``key`` in ``tree``, the values' subtrees searched too."""
    has_key = functools.partial(_node_has_keys, keys=(key,))
    subtrees = [(path, node) for path, node in _leaves_with_named_tuple_path(tree, has_key)
                if has_key(node)]
    found = [_flatten_to_key(path, node, key) for path, node in subtrees]
    for path, node in subtrees:
        for child_path, child in _children_with_path(path, node):
            found += [((*child_path, *p), v) for p, v in _get_all_with_path(child, key)]
    return found


_KeyFilter = Optional[Callable[[tuple, Any], bool]]


def tree_get_all_with_path(tree: Any, key: Any,
                           filtering: _KeyFilter = None) -> list[tuple[tuple, Any]]:
    """Every ``(path, value)`` in ``tree`` whose key is ``key``: a dict key, a namedtuple
    field or a namedtuple's class name (the value is then the namedtuple).

    A path holds ``DictKey``, ``SequenceKey``, ... and ``NamedTupleKey`` for namedtuple
    fields; ``filtering(path, value)``, if given, keeps only the pairs it accepts.
    """
    found = _get_all_with_path(tree, key)
    return found if filtering is None else [(p, v) for p, v in found if filtering(p, v)]


def tree_get(tree: Any, key: Any, default: Any = None,
             filtering: _KeyFilter = None) -> Any:
    """The value of ``key`` in ``tree`` (see ``tree_get_all_with_path``), ``default`` when
    there is none; ``KeyError`` when there are several."""
    found = tree_get_all_with_path(tree, key, filtering=filtering)
    if len(found) > 1:
        raise KeyError(f"Found multiple values for '{key}' in {tree}.")
    return found[0][1] if found else default


def _get_key(key: Any) -> Union[int, str]:
    """The plain dict key, index or name of a path entry."""
    if isinstance(key, DictKey):
        if isinstance(key.key, (str, int)):
            return key.key
        raise KeyError("Hashable keys not supported")
    if isinstance(key, FlattenedIndexKey):
        return key.key
    if isinstance(key, SequenceKey):
        return key.idx
    if isinstance(key, (GetAttrKey, NamedTupleKey)):
        return key.name
    raise KeyError(f"Tree key '{key}' of type '{type(key)}' not valid.")


def _set_children(node: Any, children: dict[Any, Any]) -> Any:
    """``node`` (a namedtuple or a dict) with its fields or entries ``children``."""
    if _is_named_tuple(node):
        return node._replace(**children)
    if isinstance(node, dict):
        return children
    raise ValueError(f"Subtree must be a dict or a NamedTuple. Got {type(node)}")


def tree_set(tree: Any, filtering: _KeyFilter = None, /, **kwargs: Any) -> Any:
    """A copy of ``tree`` with the value of each key of ``kwargs`` (a dict key, a namedtuple
    field or a namedtuple's class name) replaced by ``kwargs``' value.

    ``filtering(path, value)``, if given, restricts the replacements to the values it
    accepts; ``KeyError`` when a key matches no value.
    """
    for key in kwargs:
        if not tree_get_all_with_path(tree, key, filtering):
            given = " given the filtering operation" if filtering else ""
            raise KeyError(f"Found no values matching '{key}'{given} in {tree}")
    has_any_key = functools.partial(_node_has_keys, keys=tuple(kwargs))

    def replace(path: tuple, node: Any) -> Any:
        if not has_any_key(node):
            return node
        if (_is_named_tuple(node) and type(node).__name__ in kwargs
                and (filtering is None or filtering(path, node))):
            return kwargs[type(node).__name__]
        children = {}
        for child_path, child in _children_with_path(path, node):
            key = _get_key(child_path[-1])
            if key in kwargs and (filtering is None or filtering(child_path, child)):
                children[key] = kwargs[key]
            elif isinstance(child, (dict, list, tuple)):
                children[key] = replace(child_path, child)
            else:
                children[key] = child
        return _set_children(node, children)

    treedef = _tree.structure(tree, is_leaf=has_any_key)
    return _tree.unflatten(treedef, [replace(path, node) for path, node
                                     in _leaves_with_named_tuple_path(tree, has_any_key)])
