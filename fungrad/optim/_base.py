"""The optax interface: a gradient transformation is a pair of pure functions.

``init(params) -> state`` and ``update(updates, state, params=None) -> (updates, state)``.
Optimiser state is a pytree, so it passes through ``jit``, donation and checkpoints.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import fungrad.numpy as jnp
from fungrad import lax, tree

Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[Any], Any]
ScalarOrSchedule = Union[float, Any, Schedule]


class GradientTransformation(NamedTuple):
    """``init(params) -> state``; ``update(updates, state, params=None) -> (updates, state)``."""
    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def init_empty_state(params: Params) -> EmptyState:
    return EmptyState()


NO_PARAMS_MSG = ("you are using a transformation that requires the current value of the "
                 "parameters, but you are not passing `params` when calling `update`.")


def identity() -> GradientTransformation:
    """Leave updates unchanged."""
    return GradientTransformation(init_empty_state, lambda updates, state, params=None: (updates, state))


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros (freezes the parameters it is applied to)."""
    return GradientTransformation(
        init_empty_state,
        lambda updates, state, params=None: (tree.map(jnp.zeros_like, updates), state))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transformations in sequence; the state is the tuple of their states."""
    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if len(state) != len(transforms):
            raise ValueError(f"chain: expected a state of {len(transforms)} parts, got {len(state)}")
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)
    return GradientTransformation(init, update)


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates`` leaf-wise, keeping each parameter's dtype (as optax)."""
    return tree.map(lambda p, u: None if p is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
                    params, updates, is_leaf=lambda x: x is None)


def safe_increment(count: Any) -> Any:
    """``count + 1`` that saturates instead of overflowing."""
    count = jnp.asarray(count)
    max_value = jnp.iinfo(count.dtype).max if jnp.issubdtype(count.dtype, jnp.integer) \
        else jnp.finfo(count.dtype).max
    return jnp.where(count < max_value, count + 1, max_value)


def zeros_count() -> Any:
    return jnp.zeros([], jnp.int32)


def global_norm(updates: Updates) -> Any:
    """The L2 norm of all leaves together."""
    return jnp.sqrt(sum(jnp.sum(jnp.real(x * jnp.conj(x))) for x in tree.leaves(updates)))


def tree_cast(t: Any, dtype: Any) -> Any:
    return t if dtype is None else tree.map(lambda x: x.astype(dtype), t)


def select_tree(pred: Any, on_true: Any, on_false: Any) -> Any:
    return tree.map(lambda a, b: lax.select(pred, a, b), on_true, on_false)
