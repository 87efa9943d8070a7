"""The optax interface: a gradient transformation is a pair of pure functions.

``init(params) -> state`` and ``update(updates, state, params=None) -> (updates, state)``.
Optimiser state is a pytree, so it passes through ``jit``, donation and checkpoints.
Transformations that need more than the gradients (the objective's value, a function to
evaluate it) take it as keyword arguments after ``params``: optax's *extra args*, which
``chain`` hands to the transformations that accept them.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Optional, Protocol, Union

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.transforms.api import path_str

Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[Any], Any]
ScalarOrSchedule = Union[float, Any, Schedule]


class TransformInitFn(Protocol):
    """The type of ``init``: the initial state built from (an example of) the parameters."""

    def __call__(self, params: Params) -> OptState:
        """The initial state of the transformation for ``params``."""


class TransformUpdateFn(Protocol):
    """The type of ``update``: the transformed updates and the new state, from the updates,
    the state and (for transformations that read them) the current parameters."""

    def __call__(self, updates: Updates, state: OptState, params: Optional[Params] = None
                 ) -> tuple[Updates, OptState]:
        """The transformed ``updates`` and the new state."""


class TransformUpdateExtraArgsFn(Protocol):
    """The type of an ``update`` that also takes keyword arguments (optax's extra args).

    It accepts any keyword and ignores those it does not use; the ones it needs are
    keyword-only, so that leaving one out is an error naming it::

        def update(updates, state, params=None, *, value, **extra_args): ...
    """

    def __call__(self, updates: Updates, state: OptState, params: Optional[Params] = None,
                 **extra_args: Any) -> tuple[Updates, OptState]:
        """The transformed ``updates`` and the new state."""


class GradientTransformation(NamedTuple):
    """``init(params) -> state``; ``update(updates, state, params=None) -> (updates, state)``."""
    init: TransformInitFn
    update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
    """A ``GradientTransformation`` whose ``update`` takes keyword arguments after
    ``params`` (``value=``, ``grad=``, ``value_fn=``, ...) and ignores those it does not use.

    Line searches need the objective's value and a function to evaluate it, Polyak's step
    size the value: such transformations are of this type, and ``chain`` of them is too.
    Without extra arguments its ``update`` is called as any other.
    """
    update: TransformUpdateExtraArgsFn


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def init_empty_state(params: Params) -> EmptyState:
    """The ``init`` of a stateless transformation: ``EmptyState()`` whatever the params."""
    return EmptyState()


NO_PARAMS_MSG = ("you are using a transformation that requires the current value of the "
                 "parameters, but you are not passing `params` when calling `update`.")


def identity() -> GradientTransformation:
    """Leave updates unchanged."""
    return GradientTransformation(init_empty_state,
                                  lambda updates, state, params=None: (updates, state))


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros (freezes the parameters it is applied to)."""
    return GradientTransformation(
        init_empty_state,
        lambda updates, state, params=None: (tree.map(jnp.zeros_like, updates), state))


class UpdateStructureError(ValueError):
    """The updates' tree does not match the parameters or the optimiser state."""


class UpdateShapeError(TypeError):
    """An update's shape does not match its parameter's."""


def _per_param_trees(state: OptState) -> list[tuple[str, Any]]:
    """The fields of an atom's state that mirror the parameters (``mu``, ``nu``, ...):
    containers that are not themselves states; counts and nested states are left out."""
    if not hasattr(state, "_fields"):
        return []
    fields = state._fields
    return [(f"state.{f}", v) for f, v in zip(fields, state)
            if not hasattr(v, "_fields") and not tree.structure(v).is_leaf()]


def check_trees(name: str, updates: Updates, state: OptState = None, params: Params = None
                ) -> None:
    """Raise an error naming ``name`` and both trees when the updates do not match the
    parameters or the state's per-parameter trees: ``UpdateStructureError`` (a
    ValueError) for the structure, ``UpdateShapeError`` (a TypeError) for a leaf's shape,
    as optax's classes. Returns when it finds no mismatch.

    Called only after an update has failed, so a correct step (and a jitted one, which
    runs this at trace time at most) pays nothing for it.
    """
    refs = ([("parameters", params)] if params is not None else []) + _per_param_trees(state)
    u_struct = tree.structure(updates)
    for what, ref in refs:
        if tree.structure(ref) != u_struct:
            raise UpdateStructureError(f"{name}: the updates' tree structure {u_struct} does "
                                       f"not match the structure of the {what}, "
                                       f"{tree.structure(ref)}") from None
    if params is None:
        return
    for (path, u), p in zip(tree.leaves_with_plain_path(updates), tree.leaves(params)):
        if np.shape(u) != np.shape(p):
            raise UpdateShapeError(f"{name}: the update at {path_str(path) or 'the root'} has "
                                   f"shape {np.shape(u)} but the parameter has shape "
                                   f"{np.shape(p)}") from None


def _atom_name(t: GradientTransformation) -> str:
    """``scale_by_adam`` for the update function defined inside ``scale_by_adam``."""
    return getattr(t.update, "__qualname__", "update").split(".<locals>")[0]


def keyword_names(fn: Callable) -> Optional[frozenset[str]]:
    """The names ``fn`` accepts as keyword arguments, or None when it takes ``**kwargs``
    (any name); no names when its signature cannot be read."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def split_keywords(fn: Callable, kwargs: dict[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` split into those ``fn`` accepts and the others."""
    names = keyword_names(fn)
    if names is None:
        return dict(kwargs), {}
    return ({k: v for k, v in kwargs.items() if k in names},
            {k: v for k, v in kwargs.items() if k not in names})


def with_extra_args_support(tx: GradientTransformation) -> GradientTransformationExtraArgs:
    """``tx`` as a ``GradientTransformationExtraArgs``: its ``update`` takes any keyword
    arguments and passes on only those the original ``update`` names (``value`` for
    ``scale_by_polyak``), all of them when it takes ``**kwargs``, none otherwise.

    A transformation that is already a ``GradientTransformationExtraArgs`` is returned as
    is. ``chain`` wraps its parts so, which lets one call pass ``value=`` or ``value_fn=``
    to a chain where only some parts use them.

    Example:
        >>> from fungrad import optim
        >>> tx = optim.with_extra_args_support(optim.scale(2.0))
        >>> tx.update(1.0, tx.init(1.0), value=3.0)[0]
        2.0
    """
    if isinstance(tx, GradientTransformationExtraArgs):
        return tx

    def update(updates, state, params=None, **extra_args):
        return tx.update(updates, state, params, **split_keywords(tx.update, extra_args)[0])
    return GradientTransformationExtraArgs(tx.init, update)


def chain(*transforms: GradientTransformation) -> GradientTransformationExtraArgs:
    """Apply transformations in sequence; the state is the tuple of their states.

    Keyword arguments of ``update`` after ``params`` (optax's extra args, such as the
    objective's ``value`` for ``polyak_sgd`` or ``value``, ``grad`` and ``value_fn`` for a
    line search) reach every transformation that accepts them and are dropped for the
    others (see ``with_extra_args_support``).

    When a transformation fails, ``check_trees`` says whether the gradients do not
    match its state or the parameters (the usual cause) instead of the error of a
    tree map deep inside.

    Example (Polyak's step size reads the objective's value):
        >>> from fungrad import optim
        >>> opt = optim.chain(optim.scale(0.1), optim.polyak_sgd())
        >>> updates, state = opt.update(0.7, opt.init(0.5), 0.7, value=1.0)
        >>> round(float(updates), 6)
        -0.07
    """
    parts = [with_extra_args_support(t) for t in transforms]

    def init(params):
        return tuple(t.init(params) for t in parts)

    def update(updates, state, params=None, **extra_args):
        if len(state) != len(transforms):
            raise ValueError(f"chain: expected a state of {len(transforms)} parts, "
                             f"got {len(state)}")
        new_state = []
        for t, part, s in zip(transforms, parts, state):
            try:
                updates, s = part.update(updates, s, params, **extra_args)
            except (UpdateStructureError, UpdateShapeError):
                raise  # already diagnosed by a chain inside this one
            except (ValueError, TypeError):
                check_trees(f"fungrad.optim.{_atom_name(t)}", updates, s, params)
                raise
            new_state.append(s)
        return updates, tuple(new_state)
    return GradientTransformationExtraArgs(init, update)


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates`` leaf-wise, keeping each parameter's dtype (as optax)."""
    try:
        return tree.map(lambda p, u: (None if p is None
                                      else jnp.asarray(p + u).astype(jnp.asarray(p).dtype)),
                        params, updates, is_leaf=lambda x: x is None)
    except (ValueError, TypeError):
        check_trees("fungrad.optim.apply_updates", updates, params=params)
        raise


def incremental_update(new_tensors: Params, old_tensors: Params, step_size: Any) -> Params:
    """Polyak averaging: ``step_size * new + (1 - step_size) * old`` leaf-wise (as optax).

    Called once a step with the new parameters and the average so far, it keeps an
    exponential moving average of the parameters (``step_size = 1 - decay``), a model that
    is often better than the last step's for evaluation and sampling."""
    if tree.structure(new_tensors) != tree.structure(old_tensors):
        raise ValueError(f"fungrad.optim.incremental_update: new_tensors' tree structure "
                         f"{tree.structure(new_tensors)} does not match old_tensors' "
                         f"{tree.structure(old_tensors)}")
    return tree.map(lambda new, old: (None if new is None
                                      else step_size * new + (1.0 - step_size) * old),
                    new_tensors, old_tensors, is_leaf=lambda x: x is None)


def periodic_update(new_tensors: Params, old_tensors: Params, steps: Any,
                    update_period: Any) -> Params:
    """``new_tensors`` when ``steps`` is a multiple of ``update_period``, else
    ``old_tensors`` (as optax): a slow copy of the parameters, as target networks keep."""
    return lax.cond(jnp.mod(steps, update_period) == 0, lambda _: new_tensors,
                    lambda _: old_tensors, None)


def safe_increment(count: Any) -> Any:
    """``count + 1`` that saturates instead of overflowing."""
    count = jnp.asarray(count)
    max_value = jnp.iinfo(count.dtype).max if jnp.issubdtype(count.dtype, jnp.integer) \
        else jnp.finfo(count.dtype).max
    return jnp.where(count < max_value, count + 1, max_value)


def zeros_count() -> Any:
    """A step counter at zero: an int32 scalar, as optax keeps its counts."""
    return jnp.zeros([], jnp.int32)


def global_norm(updates: Updates) -> Any:
    """The L2 norm of all leaves together."""
    return jnp.sqrt(sum(jnp.sum(jnp.real(x * jnp.conj(x))) for x in tree.leaves(updates)))


def tree_cast(t: Any, dtype: Any) -> Any:
    """Every leaf of ``t`` cast to ``dtype``; ``t`` unchanged when ``dtype`` is None."""
    return t if dtype is None else tree.map(lambda x: x.astype(dtype), t)


def select_tree(pred: Any, on_true: Any, on_false: Any) -> Any:
    return tree.map(lambda a, b: lax.select(pred, a, b), on_true, on_false)
