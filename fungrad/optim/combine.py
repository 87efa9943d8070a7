"""Combinators (as optax): ``masked``, ``multi_transform``, ``MultiSteps``,
``inject_hyperparams``."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Hashable, Mapping, NamedTuple

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (GradientTransformation, GradientTransformationExtraArgs,
                                 safe_increment, with_extra_args_support, zeros_count)


class MaskedState(NamedTuple):
    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands in for a masked-out leaf: a node with no leaves, so inner states skip it."""


def _resolve(mask_or_fn: Any, params: Any) -> Any:
    return mask_or_fn(params) if callable(mask_or_fn) else mask_or_fn


def masked(inner: GradientTransformation, mask: Any) -> GradientTransformation:
    """Apply ``inner`` only where ``mask`` (a tree of bools, or a function of params) is True."""
    def mask_tree(t, m):
        return tree.map(lambda keep, x: x if keep else MaskedNode(), m, t)

    def init(params):
        return MaskedState(inner.init(mask_tree(params, _resolve(mask, params))))

    def update(updates, state, params=None):
        m = _resolve(mask, updates)
        masked_params = None if params is None else mask_tree(params, m)
        new_masked, inner_state = inner.update(mask_tree(updates, m), state.inner_state,
                                               masked_params)
        new_updates = tree.map(lambda keep, new, old: new if keep else old, m, new_masked, updates,
                               is_leaf=lambda x: isinstance(x, MaskedNode))
        return new_updates, MaskedState(inner_state)
    return GradientTransformation(init, update)


class MultiTransformState(NamedTuple):
    inner_states: Any


def multi_transform(transforms: Mapping[Hashable, GradientTransformation],
                    param_labels: Any) -> GradientTransformation:
    """Apply ``transforms[label]`` to the parameters carrying that label."""
    def masks(labels):
        return {k: tree.map(lambda lab, k=k: lab == k, labels) for k in transforms}

    def init(params):
        labels = _resolve(param_labels, params)
        unknown = set(tree.leaves(labels)) - set(transforms)
        if unknown:
            raise ValueError(f"multi_transform: labels {sorted(map(str, unknown))} have no "
                             "transformation")
        label_masks = masks(labels).values()
        return MultiTransformState({k: masked(t, m).init(params)
                                    for (k, t), m in zip(transforms.items(), label_masks)})

    def update(updates, state, params=None):
        labels = _resolve(param_labels, updates)
        new_states = {}
        for (k, t), m in zip(transforms.items(), masks(labels).values()):
            updates, new_states[k] = masked(t, m).update(updates, state.inner_states[k], params)
        return updates, MultiTransformState(new_states)
    return GradientTransformation(init, update)


class MultiStepsState(NamedTuple):
    """``MultiSteps``' state: the call within the current accumulation (``mini_step``), the
    number of applied updates (``gradient_step``), the inner optimiser's state, the
    accumulated gradients, and what ``should_skip_update_fn`` said of the last call
    (``skip_state``)."""

    mini_step: Any
    gradient_step: Any
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


def _never_skip(updates: Any, gradient_step: Any, params: Any) -> tuple[Any, tuple]:
    return jnp.array(False), ()


class MultiSteps:
    """Gradient accumulation: apply ``opt`` once every ``every_k_schedule`` calls.

    Between applications the updates are zeros and gradients are averaged (or summed
    with ``use_grad_mean=False``) into ``acc_grads``, kept in ``accumulator_dtype``.
    ``should_skip_update_fn(updates, gradient_step, params) -> (skip, skip_state)`` (such as
    ``skip_not_finite`` or ``skip_large_updates``) can reject a call's gradients: the state
    is then left as if the call had not happened, and the updates are zeros. Keyword
    arguments of ``update`` reach the inner optimiser where it takes them, as in ``chain``.
    """

    def __init__(self, opt: GradientTransformation, every_k_schedule: int | Callable,
                 use_grad_mean: bool = True,
                 should_skip_update_fn: Callable[..., tuple[Any, Any]] | None = None,
                 accumulator_dtype: Any = jnp.float32) -> None:
        self._opt = with_extra_args_support(opt)
        self._every_k = (every_k_schedule if callable(every_k_schedule)
                         else (lambda step: every_k_schedule))
        self._use_grad_mean = use_grad_mean
        self._should_skip = should_skip_update_fn or _never_skip
        self._accumulator_dtype = jnp.dtype(accumulator_dtype)

    @property
    def inner_opt(self) -> GradientTransformation:
        """The optimiser applied every k calls."""
        return self._opt

    def init(self, params: Any) -> MultiStepsState:
        """The initial state: counters at zero, zero accumulators, the inner ``init``."""
        gradient_step = zeros_count()
        _, skip_state = self._should_skip(tree.map(jnp.zeros_like, params), gradient_step,
                                          params)
        return MultiStepsState(zeros_count(), gradient_step, self._opt.init(params),
                               tree.map(lambda p: jnp.zeros_like(p, self._accumulator_dtype),
                                        params), skip_state)

    def update(self, updates: Any, state: MultiStepsState, params: Any = None,
               **extra_args: Any) -> tuple[Any, MultiStepsState]:
        """Accumulate ``updates``; on every k-th call apply the inner optimiser to the
        accumulated gradients and return its updates, otherwise zeros."""
        skip, skip_state = self._should_skip(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if (skip.dtype, skip.shape) != (jnp.dtype(bool), ()):
            raise ValueError("MultiSteps: should_skip_update_fn must return a boolean scalar "
                             f"array, but it returned an array of dtype {skip.dtype} and "
                             f"shape {skip.shape}")
        k = self._every_k(state.gradient_step)
        if self._use_grad_mean:
            acc = tree.map(lambda u, a: a + (u - a) / (state.mini_step + 1).astype(a.dtype),
                           updates, state.acc_grads)
        else:
            acc = tree.map(lambda u, a: a + u, updates, state.acc_grads)
        stored = tree.map(lambda a: a.astype(self._accumulator_dtype), acc)
        zeros = tree.map(jnp.zeros_like, updates)

        def final(_):  # the inner optimiser gets the sum before it is rounded to be stored
            new_updates, inner = self._opt.update(
                tree.map(lambda a, u: a.astype(u.dtype), acc, updates), state.inner_opt_state,
                params, **extra_args)
            return new_updates, MultiStepsState(zeros_count(), safe_increment(state.gradient_step),
                                                inner, tree.map(jnp.zeros_like, stored),
                                                skip_state)

        def mid(_):
            return zeros, MultiStepsState(safe_increment(state.mini_step), state.gradient_step,
                                          state.inner_opt_state, stored, skip_state)

        def skipped(_):
            return zeros, state._replace(skip_state=skip_state)
        branch = jnp.where(skip, 2, (state.mini_step == k - 1).astype(jnp.int32))
        return lax.switch(branch, (mid, final, skipped), None)

    def has_updated(self, state: MultiStepsState) -> Any:
        """Whether the last ``update`` applied the inner optimiser (a boolean array)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformationExtraArgs:
        """``(init, update)`` as a ``GradientTransformation``, to chain or wrap further."""
        return GradientTransformationExtraArgs(self.init, self.update)


class InjectHyperparamsState(NamedTuple):
    """``inject_hyperparams``' state: the step ``count``, the current ``hyperparams`` (to
    read or set between steps), the schedules' states and the inner optimiser's state."""

    count: Any
    hyperparams: dict
    hyperparams_states: dict
    inner_state: Any


def inject_hyperparams(inner_factory: Callable[..., GradientTransformation],
                       static_args: str | tuple[str, ...] = (), hyperparam_dtype: Any = None
                       ) -> Callable[..., GradientTransformation]:
    """Make numeric hyperparameters part of the state, so they can be read and changed.

    ``inject_hyperparams(adam)(learning_rate=schedule)``: each schedule is evaluated at its
    own step count (kept in ``hyperparams_states``); numbers are stored in
    ``state.hyperparams`` as arrays (floats in the parameters' dtype). Booleans and
    ``static_args`` stay Python values.
    """
    static_args = (static_args,) if isinstance(static_args, str) else tuple(static_args)

    @functools.wraps(inner_factory)
    def factory(*args, **kwargs) -> GradientTransformation:
        bound = inspect.signature(inner_factory).bind(*args, **kwargs)
        bound.apply_defaults()
        static, numeric, schedules = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_args or value is None or isinstance(value, (bool, str)):
                static[name] = value
            elif callable(value):
                schedules[name] = value
            else:
                numeric[name] = value

        def cast(v, params):
            leaves = tree.leaves(params)
            dtype = (hyperparam_dtype or jnp.result_type(*leaves)) if leaves else hyperparam_dtype
            v = jnp.asarray(v)
            if jnp.issubdtype(v.dtype, jnp.floating) and dtype is not None:
                return v.astype(dtype)
            return v

        def current(stored, sched_counts, params):
            out = {k: cast(v, params) for k, v in stored.items()}
            out.update({k: cast(f(sched_counts[k]), params) for k, f in schedules.items()})
            return out

        def init(params):
            sched_counts = {k: zeros_count() for k in schedules}
            hps = current(numeric, sched_counts, params)
            return InjectHyperparamsState(zeros_count(), hps, sched_counts,
                                          inner_factory(**static, **hps).init(params))

        def update(updates, state, params=None):
            stored = {k: state.hyperparams[k] for k in numeric}
            hps = current(stored, state.hyperparams_states,
                          params if params is not None else updates)
            updates, inner = inner_factory(**static, **hps).update(updates, state.inner_state,
                                                                   params)
            counts = {k: safe_increment(c) for k, c in state.hyperparams_states.items()}
            return updates, InjectHyperparamsState(safe_increment(state.count), hps, counts, inner)
        return GradientTransformation(init, update)
    return factory
