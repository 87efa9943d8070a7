"""More of optax's combinators: naming, partitioning, freezing and conditioning others."""
from __future__ import annotations

import collections
import functools
import inspect
import itertools
import warnings
from typing import Any, Callable, Iterable, NamedTuple, Optional, Protocol, Union

import numpy as np

import fungrad.numpy as jnp
from fungrad import Array, lax, tree
from fungrad.optim._base import (EmptyState, GradientTransformation,
                                 GradientTransformationExtraArgs, OptState, Params, Updates,
                                 chain, init_empty_state, safe_increment, set_to_zero,
                                 with_extra_args_support, zeros_count)
from fungrad.optim.combine import MultiTransformState, masked, multi_transform
from fungrad.optim.transform import ema
from fungrad.optim.tree_utils import tree_dtype

__all__ = [
    "stateless", "stateless_with_tree_map", "with_extra_args_support",
    "named_chain", "PartitionState", "partition", "freeze", "selective_transform", "flatten",
    "ConditionallyTransformState", "conditionally_transform",
    "ConditionallyMaskState", "conditionally_mask",
    "SnapshotState", "snapshot", "MonitorState", "monitor", "measure_with_ema",
    "InjectStatefulHyperparamsState", "inject_stateful_hyperparams",
    "WrappedScheduleState", "WrappedSchedule",
]


def stateless(f: Callable[[Updates, Optional[Params]], Updates]) -> GradientTransformation:
    """A transformation without state from ``f(updates, params) -> updates``."""
    return GradientTransformation(
        init_empty_state, lambda updates, state, params=None: (f(updates, params), EmptyState()))


def stateless_with_tree_map(f: Callable[[Any, Any], Any]) -> GradientTransformation:
    """A transformation without state applying ``f(update, param)`` leaf by leaf (``param``
    is None when no ``params`` are passed)."""
    def update(updates, state, params=None):
        if params is None:
            return tree.map(lambda u: f(u, None), updates), EmptyState()
        return tree.map(f, updates, params), EmptyState()
    return GradientTransformation(init_empty_state, update)


def named_chain(*args: tuple[str, GradientTransformation]) -> GradientTransformationExtraArgs:
    """``chain`` of ``(name, transformation)`` pairs; the state is an ``OrderedDict`` from each
    name to its transformation's state. Extra keyword arguments of ``update`` reach the
    transformations that take them, as in ``chain``."""
    names = [name for name, _ in args]
    if len(names) != len(set(names)):
        raise ValueError(f"Named transformations must have unique names, but got {names}")
    transforms = [(name, with_extra_args_support(t)) for name, t in args]

    def init(params):
        return collections.OrderedDict((name, t.init(params)) for name, t in transforms)

    def update(updates, state, params=None, **extra_args):
        new_state = collections.OrderedDict()
        for name, t in transforms:
            updates, new_state[name] = t.update(updates, state[name], params, **extra_args)
        return updates, new_state
    return GradientTransformationExtraArgs(init, update)


# optax's newer names for ``multi_transform`` and its state, which are the same.
PartitionState = MultiTransformState
partition = multi_transform


def freeze(mask: Union[bool, Any]) -> GradientTransformation:
    """Zero the updates where ``mask`` (a bool, or a prefix tree of bools) is True."""
    return masked(set_to_zero(), mask)


def selective_transform(optimizer: GradientTransformation, *,
                        freeze_mask: Union[bool, Any]) -> GradientTransformation:
    """``optimizer`` on the leaves where ``freeze_mask`` is False, zero updates (and no
    optimiser state) where it is True: a ``partition`` into ``"train"`` and ``"freeze"``."""
    def labels(params):
        return tree.map(lambda frozen: "freeze" if frozen else "train", freeze_mask)
    return partition({"train": optimizer, "freeze": set_to_zero()}, param_labels=labels)


def _concat_leaves(t: Any) -> Any:
    return jnp.concatenate([jnp.reshape(x, [-1]) for x in tree.leaves(t)])


def _split_like(like: Any, flat: Any) -> Any:
    leaves, treedef = tree.flatten(like)
    offsets = list(itertools.accumulate(jnp.size(x) for x in leaves))[:-1]
    return tree.unflatten(treedef, [jnp.reshape(part, jnp.shape(x))
                                    for part, x in zip(jnp.split(flat, offsets), leaves)])


def flatten(inner: GradientTransformation) -> GradientTransformation:
    """Run ``inner`` on one vector holding every leaf of the params and updates (fewer,
    larger operations for many small leaves)."""
    def update(updates, state, params=None):
        flat_params = None if params is None else _concat_leaves(params)
        flat_updates, state = inner.update(_concat_leaves(updates), state, flat_params)
        return _split_like(updates, flat_updates), state
    return GradientTransformation(lambda params: inner.init(_concat_leaves(params)), update)


class ConditionFn(Protocol):
    """The type of ``conditionally_transform``'s and ``conditionally_mask``'s
    ``should_transform_fn`` (``optax.transforms.ConditionFn``)."""

    def __call__(self, step: Any, **extra_args: Any) -> Any:
        """A boolean scalar, True to run the inner transformation at this call; ``step``
        counts the earlier calls (int32), ``extra_args`` are the update's extra arguments
        when the wrapper forwards them."""


class ConditionallyTransformState(NamedTuple):
    """``conditionally_transform``'s state: the inner state and the call count ``step``."""
    inner_state: OptState
    step: Any


class ConditionallyMaskState(NamedTuple):
    """``conditionally_mask``'s state: the step count and the inner transformation's state."""
    step: Any
    inner_state: OptState


def _conditionally(inner: GradientTransformation, should_transform_fn: ConditionFn,
                   forward_extra_args: bool, rejected: Callable[[Updates], Updates],
                   state_type: type) -> GradientTransformationExtraArgs:
    """``inner`` at the calls where ``should_transform_fn(step)`` holds; elsewhere
    ``rejected(updates)`` and ``inner``'s state unchanged. Extra arguments go to ``inner``,
    and to ``should_transform_fn`` too when ``forward_extra_args``."""
    inner = with_extra_args_support(inner)

    def init(params):
        return state_type(step=zeros_count(), inner_state=inner.init(params))

    def update(updates, state, params=None, **extra_args):
        condition_args = extra_args if forward_extra_args else {}
        new_updates, inner_state = lax.cond(
            should_transform_fn(state.step, **condition_args),
            lambda _: inner.update(updates, state.inner_state, params, **extra_args),
            lambda _: (rejected(updates), state.inner_state), None)
        return new_updates, state_type(step=safe_increment(state.step),
                                       inner_state=inner_state)
    return GradientTransformationExtraArgs(init, update)


def conditionally_transform(inner: GradientTransformation, should_transform_fn: ConditionFn,
                            forward_extra_args: bool = False) -> GradientTransformationExtraArgs:
    """Apply ``inner`` only on the calls where ``should_transform_fn(step)`` is True (step
    counts calls from 0); otherwise pass the updates and the inner state through."""
    return _conditionally(inner, should_transform_fn, forward_extra_args, lambda u: u,
                          ConditionallyTransformState)


def conditionally_mask(inner: GradientTransformation, should_transform_fn: ConditionFn,
                       forward_extra_args: bool = False) -> GradientTransformationExtraArgs:
    """Apply ``inner`` at the steps where ``should_transform_fn(step)`` is True; elsewhere the
    updates are zeros and ``inner``'s state is kept."""
    return _conditionally(inner, should_transform_fn, forward_extra_args,
                          lambda u: tree.map(jnp.zeros_like, u), ConditionallyMaskState)


class SnapshotState(NamedTuple):
    measurement: dict[str, Any]


def snapshot(measure_name: str, measure: Callable[[Updates], Any]) -> GradientTransformation:
    """Store ``measure(updates)`` in the state under ``measure_name``; updates pass through."""
    return GradientTransformation(
        lambda params: SnapshotState({measure_name: measure(params)}),
        lambda updates, state, params=None: (updates,
                                             SnapshotState({measure_name: measure(updates)})))


class MonitorState(NamedTuple):
    """``monitor``'s state: the latest measurements and the measuring transformations' states."""
    measurements: dict[str, Any]
    measure_states: tuple[OptState, ...]


def monitor(measures: dict[str, Union[GradientTransformation, Callable[[Updates], Any]]]
            ) -> GradientTransformation:
    """Store named measurements of the updates in the state; updates pass through.

    A measure is a function of the updates or a transformation whose output updates are
    the measurement (``measure_with_ema`` keeps a moving average)."""
    transforms = {name: stateless(lambda u, _, m=m: m(u)) if callable(m) else m
                  for name, m in measures.items()}

    def init(params):
        return MonitorState({}, tuple(t.init(params) for t in transforms.values()))

    def update(updates, state, params=None):
        measurements, measure_states = {}, []
        for (name, t), s in zip(transforms.items(), state.measure_states):
            measurements[name], s = t.update(updates, s, params)
            measure_states.append(s)
        return updates, MonitorState(measurements, tuple(measure_states))
    return GradientTransformation(init, update)


def measure_with_ema(measure: Callable[[Updates], Any], decay: float, debias: bool = True,
                     accumulator_dtype: Any = None) -> GradientTransformation:
    """``measure(updates)`` followed by its exponential moving average, for ``monitor``."""
    base_ema = ema(decay, debias, accumulator_dtype)
    measurement_ema = base_ema._replace(init=lambda params: base_ema.init(measure(params)))
    return chain(stateless(lambda updates, _: measure(updates)), measurement_ema)


def _convert_floats(x: Any, dtype: Any) -> Any:
    """Float-like ``x`` as ``dtype``; strongly typed arrays and non-floats pass through."""
    if isinstance(x, Array) and not x.weak_type:
        return x
    if jnp.issubdtype(x.dtype if hasattr(x, "dtype") else type(x), jnp.floating):
        return jnp.asarray(x, dtype=dtype)
    return x


class InjectStatefulHyperparamsState(NamedTuple):
    """``inject_stateful_hyperparams``'s state: the step count, the hyperparameters' current
    values, the schedules' states and the inner state."""
    count: Any
    hyperparams: dict[str, Any]
    hyperparams_states: dict[str, Any]
    inner_state: OptState


def inject_stateful_hyperparams(inner_factory: Callable[..., GradientTransformation],
                                static_args: Union[str, Iterable[str]] = (),
                                hyperparam_dtype: Any = None
                                ) -> Callable[..., GradientTransformation]:
    """``inject_hyperparams`` that also takes stateful schedules (objects with ``init()``,
    ``update(state)`` and ``__call__(state)``); plain schedules become ``WrappedSchedule``.

    Deprecated in optax (in favour of its ``inject_hyperparams``) and so warns likewise."""
    warnings.warn("inject_stateful_hyperparams is deprecated, use inject_hyperparams instead",
                  DeprecationWarning, stacklevel=2)
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    if not static_args.issubset(signature.parameters):
        raise ValueError("`static_args` must specify a subset of `inner_factory`'s parameters. "
                         f"Given `static_args`: {static_args}. `inner_factory` parameters: "
                         f"{set(signature.parameters)}")

    @functools.wraps(inner_factory)
    def factory(*args, **kwargs) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        schedules, numeric, other = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_args or isinstance(value, bool):
                other[name] = value
            elif hasattr(value, "init") and hasattr(value, "update") and callable(value):
                schedules[name] = value
            elif callable(value):
                schedules[name] = WrappedSchedule(value)
            elif isinstance(value, (int, float, Array, np.ndarray)):
                numeric[name] = value
            else:
                other[name] = value

        def dtype_of(params):
            return tree_dtype(params, "highest") if hyperparam_dtype is None else hyperparam_dtype

        def init(params):
            dtype = dtype_of(params)
            hparams = {k: jnp.asarray(_convert_floats(v, dtype)) for k, v in numeric.items()}
            states = {k: f.init() for k, f in schedules.items()}
            hparams.update({k: _convert_floats(f(states[k]), dtype)
                            for k, f in schedules.items()})
            return InjectStatefulHyperparamsState(zeros_count(), hparams, states,
                                                  inner_factory(**other, **hparams).init(params))

        def update(updates, state, params=None):
            dtype = dtype_of(params)
            hparams = {k: _convert_floats(v, dtype) for k, v in state.hyperparams.items()}
            hparams.update({k: _convert_floats(f(state.hyperparams_states[k]), dtype)
                            for k, f in schedules.items()})
            states = {k: f.update(state.hyperparams_states[k]) for k, f in schedules.items()}
            updates, inner_state = inner_factory(**other, **hparams).update(
                updates, state.inner_state, params)
            return updates, InjectStatefulHyperparamsState(safe_increment(state.count), hparams,
                                                           states, inner_state)
        return GradientTransformation(init, update)
    return factory


class WrappedScheduleState(NamedTuple):
    count: Any


class WrappedSchedule:
    """A plain schedule ``schedule_fn(count)`` as a stateful one, its state a step count."""

    def __init__(self, schedule_fn: Callable[[Any], Any]) -> None:
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        """The count at zero."""
        return WrappedScheduleState(count=zeros_count())

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        """The count one step on."""
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
        """The schedule's value at the state's count."""
        return self.schedule_fn(state.count)
