"""``optax.experimental.aggregating``: optimisers fed with one gradient per example.

An ordinary transformation receives the gradient of the batch's loss, a tree shaped like
the parameters. An ``Aggregator`` receives the gradients of the examples instead, each leaf
with batch axes in front of the parameter's (what ``vmap(grad(loss), in_axes=(None, 0))``
returns), and reduces them to one update shaped like the parameters. Seeing the examples
one by one lets it clip each gradient before averaging, or measure how much they disagree.

``process(preprocessor, aggregator, postprocessor)`` composes an optimiser of three
stages: a transformation of the per-example gradients, their aggregation, and an ordinary
optimiser applied to the result, which runs only once the aggregator says it is ``ready``
(an aggregator that accumulates several microbatches is ready at the last one).
``average_incrementally_updates`` averages over the examples and over microbatches, and
``add_mean_variance_to_opt`` runs an optimiser on the average gradient while keeping
moving averages of the gradients' mean and variance over the examples, which
``get_unbiased_mean_and_variance_ema`` reads back. Names, signatures, states and numerics
follow optax's.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional, Protocol, Sequence, Union

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax
from fungrad import tree as _tree
from fungrad.optim._base import (GradientTransformation, GradientTransformationExtraArgs,
                                 OptState, Params, TransformInitFn, Updates, chain, identity,
                                 init_empty_state, with_extra_args_support)
from fungrad.optim.numerics import safe_int32_increment
from fungrad.optim.tree_utils import tree_get, tree_scale, tree_where, tree_zeros_like

__all__ = [
    "AggregatedUpdates", "Aggregator", "AggregatorUpdateFn", "MaybeAxis", "PerElementUpdates",
    "process", "average_per_element_updates", "AccumulateAvgUpdatesState",
    "accumulate_avg_updates", "average_incrementally_updates",
    "get_batch_size_from_per_elt_updates", "PerElementMeanAndSumSqDiffGradsState",
    "get_per_element_mean_and_sum_sq_diff_grads", "PerElementMeanAndVarianceEMAState",
    "track_per_element_mean_and_variance_with_ema", "get_unbiased_mean_and_variance_ema",
    "add_mean_variance_to_opt",
]

# A tree of per-example updates: every leaf has the batch axes and then its parameter's shape.
PerElementUpdates = Any
# A tree of updates shaped like the parameters, the result of an aggregation.
AggregatedUpdates = Any
# The batch axis (or axes) of per-example updates; None where there is none.
MaybeAxis = Union[int, Sequence[int], None]


class AggregatorUpdateFn(Protocol):
    """The type of an ``Aggregator``'s ``update``: per-example updates in, one update shaped
    like the parameters out, with the new state."""

    def __call__(self, per_elt_updates: PerElementUpdates, state: OptState,
                 params: Optional[Params] = None, **extra_args: Any
                 ) -> tuple[AggregatedUpdates, OptState]:
        """The aggregated updates and the new state."""


class Aggregator(GradientTransformationExtraArgs):
    """A transformation from per-example gradients to one update: ``init(params) -> state``
    and ``update(per_elt_updates, state, params=None, **extra_args) -> (updates, state)``.

    The pair has the signature of any ``GradientTransformationExtraArgs``; what differs is
    the input of ``update``, whose leaves carry batch axes before the parameter's shape::

        grads = fungrad.vmap(fungrad.grad(loss), in_axes=(None, 0))(params, batch)
        updates, state = aggregator.update(grads, state)

    The distinct type tells the caller which gradients to compute: ``process`` returns an
    ``Aggregator`` exactly when its aggregator is one.
    """

    init: TransformInitFn
    update: AggregatorUpdateFn


# --------------------------------------------------------------------------- argument checks

def _canonical_axis(name: str, per_elt_axis: Any) -> Union[int, tuple[int, ...]]:
    """``per_elt_axis`` as an int, or a sequence of them as a tuple (what reductions take);
    a TypeError naming ``name`` for anything else."""
    try:
        return operator.index(per_elt_axis)
    except TypeError:
        pass
    try:
        return tuple(operator.index(axis) for axis in per_elt_axis)
    except TypeError:
        raise TypeError(f"{name}: `per_elt_axis` must be an int or a sequence of ints, got "
                        f"{per_elt_axis!r}") from None


def _checked_steps(name: str, accumulation_steps: Any) -> int:
    """``accumulation_steps`` as an int of at least 1 (an accumulator that never reaches its
    count would never produce an update)."""
    try:
        steps = operator.index(accumulation_steps)
    except TypeError:
        raise TypeError(f"{name}: `accumulation_steps` must be an integer, got "
                        f"{accumulation_steps!r}") from None
    if steps < 1:
        raise ValueError(f"{name}: `accumulation_steps` must be at least 1, got {steps}")
    return steps


def _check_transformation(name: str, what: str, transformation: Any) -> None:
    """A TypeError naming ``name`` and ``what`` unless ``transformation`` has an ``init``
    and an ``update`` function."""
    if not (callable(getattr(transformation, "init", None))
            and callable(getattr(transformation, "update", None))):
        raise TypeError(f"{name}: `{what}` must be a GradientTransformation (an init and "
                        f"an update function), got {type(transformation).__name__}")


# --------------------------------------------------------------------------- composition

def _split_aux(aggregated: Any) -> tuple[AggregatedUpdates, Mapping]:
    """``(updates, aux)`` from what an aggregator with auxiliary outputs returns."""
    if (isinstance(aggregated, (tuple, list)) and len(aggregated) == 2
            and isinstance(aggregated[1], Mapping)):
        return aggregated[0], aggregated[1]
    raise TypeError("process: with `aggregator_has_aux=True` the aggregator's update must "
                    "return ((updates, aux), state), aux a dict of keyword arguments for the "
                    f"postprocessor; its updates were a {type(aggregated).__name__}")


def process(preprocessor: GradientTransformation,
            aggregator: Union[GradientTransformation, Aggregator],
            postprocessor: GradientTransformation,
            aggregator_has_aux: bool = False) -> Union[GradientTransformation, Aggregator]:
    """An optimiser in three stages: transform the per-example gradients, aggregate them
    into one update, then run an ordinary optimiser on it.

    The state is the tuple of the three stages' states. The postprocessor runs only at the
    steps where the aggregator's state has ``ready`` True (an accumulator over microbatches
    is ready at its last one; a state without a ``ready`` field is always ready); at the
    others the update is zero and the postprocessor's state is left as it was. Keyword
    arguments of ``update`` reach every stage that accepts them.

    Args:
        preprocessor: maps the per-example gradients to per-example updates (per-example
            clipping, for instance).
        aggregator: reduces the per-example updates to one update shaped like the params.
        postprocessor: the optimiser applied to the aggregated update.
        aggregator_has_aux: whether the aggregator returns ``(updates, aux)`` as its updates,
            ``aux`` a dict whose entries are passed to the postprocessor as keyword arguments.

    Returns:
        An ``Aggregator`` if ``aggregator`` is one, otherwise a
        ``GradientTransformationExtraArgs``.

    Raises:
        TypeError: if a stage is not a transformation, or, with ``aggregator_has_aux``, the
            aggregator's updates are not an ``(updates, dict)`` pair.

    Example (clip each example's gradient, average, then Adam):
        >>> import fungrad
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> from fungrad.optim.experimental import aggregating
        >>> clip_each = fungrad.vmap(optim.projections.projection_l2_ball)
        >>> opt = aggregating.process(
        ...     optim.stateless(lambda grads, _: clip_each(grads)),
        ...     aggregating.average_per_element_updates(),
        ...     optim.adam(learning_rate=0.1))
        >>> loss = lambda w, x, y: jnp.sum((x @ w - y) ** 2)
        >>> xs = jnp.arange(12.0).reshape(4, 3) / 10
        >>> ys = jnp.array([1.0, -1.0, 0.5, 2.0])
        >>> params = jnp.zeros(3)
        >>> state = opt.init(params)
        >>> per_example_grads = fungrad.vmap(fungrad.grad(loss), (None, 0, 0))
        >>> for _ in range(3):
        ...     updates, state = opt.update(per_example_grads(params, xs, ys), state)
        ...     params = optim.apply_updates(params, updates)
        >>> params
        Array([0.288..., 0.290..., 0.291...], dtype=float32)
    """
    _check_transformation("process", "preprocessor", preprocessor)
    _check_transformation("process", "aggregator", aggregator)
    _check_transformation("process", "postprocessor", postprocessor)
    pre, agg, post = (with_extra_args_support(t)
                      for t in (preprocessor, aggregator, postprocessor))

    def init(params):
        return pre.init(params), agg.init(params), post.init(params)

    def update(per_elt_grads, state, params=None, **extra_args):
        pre_state, agg_state, post_state = state
        per_elt_updates, pre_state = pre.update(per_elt_grads, pre_state, params, **extra_args)
        aggregated, agg_state = agg.update(per_elt_updates, agg_state, params, **extra_args)
        if aggregator_has_aux:
            aggregated, aux = _split_aux(aggregated)
            extra_args = {**extra_args, **aux}

        def postprocess(updates, post_state, params, kwargs):
            return post.update(updates, post_state, params, **kwargs)

        def hold(updates, post_state, params, kwargs):
            return tree_zeros_like(updates), post_state

        # the optimiser steps only on complete aggregates: a microbatch accumulator's
        # intermediate steps leave the parameters and the optimiser's state unchanged
        updates, post_state = lax.cond(tree_get(agg_state, "ready", True), postprocess, hold,
                                       aggregated, post_state, params, extra_args)
        return updates, (pre_state, agg_state, post_state)

    if isinstance(aggregator, Aggregator):
        return Aggregator(init, update)
    return GradientTransformationExtraArgs(init, update)


# --------------------------------------------------------------------------- averaging

def average_per_element_updates(per_elt_axis: Union[int, Sequence[int]] = 0) -> Aggregator:
    """The mean of the per-example updates over their batch axis (or axes); stateless.

    Args:
        per_elt_axis: the batch axis, or a sequence of batch axes, of every leaf.

    Returns:
        An ``Aggregator`` whose updates are the means over ``per_elt_axis``.

    Raises:
        TypeError: if ``per_elt_axis`` is not an int or a sequence of ints.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim.experimental import aggregating
        >>> agg = aggregating.average_per_element_updates()
        >>> agg.update(jnp.array([[1.0, 2.0], [3.0, 6.0]]), agg.init(None))[0]
        Array([2., 4.], dtype=float32)
    """
    axis = _canonical_axis("average_per_element_updates", per_elt_axis)

    def update(per_elt_updates, state, params=None, **extra_args):
        return _tree.map(lambda u: jnp.mean(u, axis=axis), per_elt_updates), state
    return Aggregator(init_empty_state, update)


class AccumulateAvgUpdatesState(NamedTuple):
    """``accumulate_avg_updates``' state: the number of microbatches averaged so far
    (``micro_step``), whether the last step completed an average (``ready``), and the
    running average (``avg_grad``)."""

    micro_step: Any
    ready: Any
    avg_grad: Updates


def accumulate_avg_updates(accumulation_steps: int) -> GradientTransformation:
    """The average of the updates of ``accumulation_steps`` successive calls, given at the
    last of them; zeros at the others.

    Each call folds its updates into a running mean; the call that completes the count
    returns the mean, sets ``ready`` and starts afresh. Used as the aggregator of
    ``process``, it gives the optimiser the gradient of a batch
    ``accumulation_steps`` times larger than each microbatch.

    Args:
        accumulation_steps: the number of calls averaged together.

    Returns:
        The accumulating transformation; ``identity()`` when ``accumulation_steps`` is 1.

    Raises:
        ValueError: if ``accumulation_steps`` is less than 1.
        TypeError: if it is not an integer.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim.experimental import aggregating
        >>> acc = aggregating.accumulate_avg_updates(2)
        >>> state = acc.init(jnp.zeros(2))
        >>> updates, state = acc.update(jnp.array([1.0, 2.0]), state)
        >>> updates, bool(state.ready)
        (Array([0., 0.], dtype=float32), False)
        >>> updates, state = acc.update(jnp.array([3.0, 4.0]), state)
        >>> updates, bool(state.ready)
        (Array([2., 3.], dtype=float32), True)
    """
    steps = _checked_steps("accumulate_avg_updates", accumulation_steps)
    if steps == 1:
        return identity()  # nothing to accumulate, so no state to keep

    def init(params):
        return AccumulateAvgUpdatesState(micro_step=jnp.asarray(0), ready=jnp.asarray(False),
                                         avg_grad=tree_zeros_like(params))

    def update(updates, state, params=None):
        micro_step = state.micro_step + 1
        # the mean of n values from that of the first n - 1: a + (u - a) / n
        average = _tree.map(lambda u, a: a + (u - a) / micro_step, updates, state.avg_grad)
        complete = AccumulateAvgUpdatesState(micro_step=jnp.asarray(0),
                                             ready=jnp.asarray(True),
                                             avg_grad=tree_zeros_like(average))
        pending = AccumulateAvgUpdatesState(micro_step=micro_step, ready=jnp.asarray(False),
                                            avg_grad=average)
        return tree_where(micro_step == steps, (average, complete),
                          (tree_zeros_like(average), pending))
    return GradientTransformation(init, update)


def average_incrementally_updates(per_elt_axis: MaybeAxis, accumulation_steps: int
                                  ) -> Union[Aggregator, GradientTransformation]:
    """Average the per-example updates over ``per_elt_axis``, then the averages of
    ``accumulation_steps`` successive microbatches.

    Args:
        per_elt_axis: the batch axis (or axes) to average over, or None for updates that
            are already averages (only the accumulation over microbatches happens then).
        accumulation_steps: the number of microbatches averaged together.

    Returns:
        ``accumulate_avg_updates(accumulation_steps)`` when ``per_elt_axis`` is None;
        otherwise an ``Aggregator`` chaining ``average_per_element_updates`` and it.

    Raises:
        ValueError: if ``accumulation_steps`` is less than 1.
        TypeError: if ``per_elt_axis`` is not None, an int or a sequence of ints.
    """
    if per_elt_axis is None:
        return accumulate_avg_updates(accumulation_steps)
    _canonical_axis("average_incrementally_updates", per_elt_axis)
    _checked_steps("average_incrementally_updates", accumulation_steps)
    both = chain(average_per_element_updates(per_elt_axis),
                 accumulate_avg_updates(accumulation_steps))
    return Aggregator(both.init, both.update)


# --------------------------------------------------------------------------- mean and variance

def get_batch_size_from_per_elt_updates(per_elt_updates: Updates,
                                        per_elt_axis: Union[int, list[int]]) -> int:
    """The number of examples in per-example updates: the size of ``per_elt_axis``, or the
    product of the sizes of its axes, which must be the same for every leaf.

    Args:
        per_elt_updates: the tree of per-example updates.
        per_elt_axis: the batch axis, or a sequence of batch axes.

    Returns:
        The batch size, a Python int (shapes are static, also under ``jit``).

    Raises:
        ValueError: if the leaves' batch sizes differ, an axis is out of range for a leaf,
            or the tree has no leaves.
        TypeError: if ``per_elt_axis`` is not an int or a sequence of ints.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim.experimental import aggregating
        >>> updates = {"w": jnp.zeros((8, 3, 2)), "b": jnp.zeros((8, 3))}
        >>> aggregating.get_batch_size_from_per_elt_updates(updates, [0, 1])
        24
    """
    name = "get_batch_size_from_per_elt_updates"
    axis = _canonical_axis(name, per_elt_axis)
    axes = (axis,) if isinstance(axis, int) else axis
    sizes = []
    for leaf in _tree.leaves(per_elt_updates):
        shape = np.shape(leaf)
        if any(not -len(shape) <= a < len(shape) for a in axes):
            raise ValueError(f"{name}: `per_elt_axis` {per_elt_axis!r} is out of range for "
                             f"an update of shape {shape}")
        sizes.append(math.prod(shape[a] for a in axes))
    if not sizes:
        raise ValueError(f"{name}: `per_elt_updates` has no leaves to take the batch size of")
    if any(size != sizes[0] for size in sizes):
        raise ValueError(f"{name}: per-element updates must have the same batch size. "
                         f"Got: {sizes}")
    return sizes[0]


class PerElementMeanAndSumSqDiffGradsState(NamedTuple):
    """``get_per_element_mean_and_sum_sq_diff_grads``' state while it accumulates: the
    number of microbatches seen (``micro_step``), whether the last step completed the
    accumulation (``ready``), the running mean of the gradients (``mean_grads``) and the
    running sum of their squared deviations from it (``sum_sq_diff_grads``)."""

    micro_step: Any
    ready: Any
    mean_grads: Updates
    sum_sq_diff_grads: Updates


def _batch_mean_and_sum_sq_diff(per_elt_updates: Updates, axis: Any) -> tuple[Updates, Updates]:
    """The mean over the batch axes and the sum of squared deviations from it, leaf-wise."""
    means = _tree.map(lambda u: jnp.mean(u, axis=axis, keepdims=True), per_elt_updates)
    sum_sq_diff = _tree.map(lambda u, m: jnp.sum(jnp.square(u - m), axis=axis),
                            per_elt_updates, means)
    return _tree.map(lambda m: jnp.squeeze(m, axis=axis), means), sum_sq_diff


def get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis: Union[int, Sequence[int]] = 0,
                                               accumulation_steps: int = 1) -> Aggregator:
    """An aggregator whose updates are the mean of the per-example gradients, with the sum
    of their squared deviations from it and the number of examples as auxiliary outputs
    (``process(..., aggregator_has_aux=True)`` passes them on as keyword arguments).

    Its updates are ``(mean, {"sum_sq_diff_grads": ..., "sample_size": ...})``. With
    ``accumulation_steps > 1`` the statistics cover that many microbatches: each one's mean
    and sum of squared deviations are merged into running ones (Chan et al.'s pairwise
    update, exact for any split), given at the last microbatch, zeros at the others.
    ``sum_sq_diff_grads / (sample_size - 1)`` is the unbiased variance of the gradients.

    Args:
        per_elt_axis: the batch axis (or axes) of every leaf.
        accumulation_steps: the number of microbatches accumulated.

    Returns:
        The ``Aggregator``; stateless when ``accumulation_steps`` is 1, otherwise with a
        ``PerElementMeanAndSumSqDiffGradsState``.

    Raises:
        ValueError: if ``accumulation_steps`` is less than 1.
        TypeError: if ``per_elt_axis`` is not an int or a sequence of ints, or
            ``accumulation_steps`` is not an integer.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim.experimental import aggregating
        >>> agg = aggregating.get_per_element_mean_and_sum_sq_diff_grads()
        >>> (mean, aux), _ = agg.update(jnp.array([[1.0], [2.0], [6.0]]), agg.init(None))
        >>> mean, aux["sum_sq_diff_grads"], aux["sample_size"]
        (Array([3.], dtype=float32), Array([14.], dtype=float32), 3)
    """
    name = "get_per_element_mean_and_sum_sq_diff_grads"
    axis = _canonical_axis(name, per_elt_axis)
    steps = _checked_steps(name, accumulation_steps)

    if steps == 1:
        def update_one(per_elt_updates, state, params=None, **extra_args):
            batch_size = get_batch_size_from_per_elt_updates(per_elt_updates, axis)
            mean, sum_sq_diff = _batch_mean_and_sum_sq_diff(per_elt_updates, axis)
            return (mean, {"sum_sq_diff_grads": sum_sq_diff, "sample_size": batch_size}), state
        return Aggregator(init_empty_state, update_one)

    def init(params):
        return PerElementMeanAndSumSqDiffGradsState(
            micro_step=jnp.asarray(0, dtype=jnp.int32), ready=jnp.asarray(False),
            mean_grads=tree_zeros_like(params), sum_sq_diff_grads=tree_zeros_like(params))

    def update(per_elt_updates, state, params=None, **extra_args):
        batch_size = get_batch_size_from_per_elt_updates(per_elt_updates, axis)
        micro_step = state.micro_step + 1
        batch_mean, batch_sum_sq_diff = _batch_mean_and_sum_sq_diff(per_elt_updates, axis)
        # merge a batch of b examples into the n_a = micro_step * b seen so far: the mean
        # moves by delta * b / (n_a + b), the sum of squares gains the batch's own and
        # delta^2 * n_a * b / (n_a + b) = delta^2 * micro_step * b / (micro_step + 1)
        delta = _tree.map(lambda m, a: m - a, batch_mean, state.mean_grads)
        mean = _tree.map(lambda a, d: a + d / micro_step, state.mean_grads, delta)
        size_factor = state.micro_step * batch_size / micro_step
        sum_sq_diff = _tree.map(lambda a, s, d: a + s + d ** 2 * size_factor,
                                state.sum_sq_diff_grads, batch_sum_sq_diff, delta)
        outputs = (mean, {"sum_sq_diff_grads": sum_sq_diff,
                          "sample_size": batch_size * micro_step})
        complete = PerElementMeanAndSumSqDiffGradsState(
            micro_step=jnp.asarray(0, dtype=jnp.int32), ready=jnp.asarray(True),
            mean_grads=tree_zeros_like(mean), sum_sq_diff_grads=tree_zeros_like(sum_sq_diff))
        pending = PerElementMeanAndSumSqDiffGradsState(
            micro_step=micro_step, ready=jnp.asarray(False), mean_grads=mean,
            sum_sq_diff_grads=sum_sq_diff)
        return tree_where(micro_step == steps, (outputs, complete),
                          (tree_zeros_like(outputs), pending))
    return Aggregator(init, update)


class PerElementMeanAndVarianceEMAState(NamedTuple):
    """``track_per_element_mean_and_variance_with_ema``'s state: the number of updates
    (``count``), the decay (``ema_decay``), and the moving averages of the mean gradient
    (``mean_grads_ema``) and of the gradients' variance (``variance_grads_ema``), both
    without bias correction (``get_unbiased_mean_and_variance_ema`` applies it)."""

    count: Any
    ema_decay: Any
    mean_grads_ema: Updates
    variance_grads_ema: Updates


def track_per_element_mean_and_variance_with_ema(ema_decay: Any = 0.9
                                                 ) -> GradientTransformationExtraArgs:
    """Keep exponential moving averages of the mean gradient and of the gradients'
    variance over the examples; the updates pass through unchanged.

    Its ``update`` takes the keyword arguments ``sum_sq_diff_grads`` and ``sample_size``,
    which ``get_per_element_mean_and_sum_sq_diff_grads`` provides when the two are joined by
    ``process(..., aggregator_has_aux=True)`` (``add_mean_variance_to_opt`` does so). Each
    step mixes ``(1 - ema_decay) *`` the new value with ``ema_decay *`` the average, the
    new variance being ``sum_sq_diff_grads / (sample_size - 1)``.

    Args:
        ema_decay: the decay of the moving averages.

    Returns:
        The transformation, with a ``PerElementMeanAndVarianceEMAState``.

    Raises:
        TypeError: from ``update``, if ``sum_sq_diff_grads`` or ``sample_size`` is missing.
    """
    def init(params):
        return PerElementMeanAndVarianceEMAState(
            count=jnp.zeros([], jnp.int32), ema_decay=jnp.asarray(ema_decay),
            mean_grads_ema=tree_zeros_like(params), variance_grads_ema=tree_zeros_like(params))

    def update(updates, state, params=None, *, sum_sq_diff_grads=None, sample_size=None,
               **extra_args):
        if sum_sq_diff_grads is None or sample_size is None:
            raise TypeError("track_per_element_mean_and_variance_with_ema: update needs the "
                            "keyword arguments `sum_sq_diff_grads` and `sample_size` (the "
                            "auxiliary outputs of get_per_element_mean_and_sum_sq_diff_grads "
                            "in process(..., aggregator_has_aux=True))")

        def mix(new, average):
            return (1.0 - ema_decay) * new + ema_decay * average
        mean = _tree.map(mix, updates, state.mean_grads_ema)
        variance = tree_scale(1 / (sample_size - 1), sum_sq_diff_grads)
        variance = _tree.map(mix, variance, state.variance_grads_ema)
        return updates, state._replace(count=safe_int32_increment(state.count),
                                       mean_grads_ema=mean, variance_grads_ema=variance)
    return GradientTransformationExtraArgs(init, update)


def get_unbiased_mean_and_variance_ema(state: OptState) -> tuple[Updates, Updates]:
    """The bias-corrected moving averages of the mean gradient and of the gradients'
    variance, read from the ``PerElementMeanAndVarianceEMAState`` inside ``state``.

    Averages that start at zero are biased towards it; dividing by
    ``1 - ema_decay ** count`` removes that bias (as Adam's moments).

    Args:
        state: an optimiser state holding one ``PerElementMeanAndVarianceEMAState`` (the
            state of ``add_mean_variance_to_opt``, for instance).

    Returns:
        ``(mean, variance)``, two trees shaped like the parameters.

    Raises:
        ValueError: if ``state`` holds no ``PerElementMeanAndVarianceEMAState``.
    """
    ema_state = tree_get(state, "PerElementMeanAndVarianceEMAState", None)
    if ema_state is None:
        raise ValueError("get_unbiased_mean_and_variance_ema: `state` must hold a "
                         "PerElementMeanAndVarianceEMAState to compute unbiased mean and "
                         "variance EMA.")
    count, decay = ema_state.count, ema_state.ema_decay

    def unbias(x):
        return x / (1 - decay ** count)
    return (_tree.map(unbias, ema_state.mean_grads_ema),
            _tree.map(unbias, ema_state.variance_grads_ema))


def add_mean_variance_to_opt(opt: GradientTransformation, ema_decay: Any = 0.9,
                             per_elt_axis: Union[int, list[int]] = 0,
                             accumulation_steps: int = 1) -> Aggregator:
    """``opt`` run on the mean of per-example gradients, with moving averages of the mean
    gradient and of the gradients' variance tracked in the state.

    It is ``process(identity(), get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis,
    accumulation_steps), chain(track_per_element_mean_and_variance_with_ema(ema_decay),
    opt), aggregator_has_aux=True)``; read the statistics with
    ``get_unbiased_mean_and_variance_ema(state)``.

    Args:
        opt: the optimiser.
        ema_decay: the decay of the moving averages.
        per_elt_axis: the batch axis (or axes) of the per-example gradients.
        accumulation_steps: the number of microbatches whose gradients are averaged for one
            step of ``opt``.

    Returns:
        An ``Aggregator``: its update takes per-example gradients.

    Example:
        >>> import fungrad
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> from fungrad.optim.experimental import aggregating
        >>> opt = aggregating.add_mean_variance_to_opt(optim.sgd(0.1), ema_decay=0.9)
        >>> loss = lambda w, x, y: (x @ w - y) ** 2
        >>> xs = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> ys = jnp.array([1.0, 2.0, 0.0])
        >>> params = jnp.zeros(2)
        >>> state = opt.init(params)
        >>> grads = fungrad.vmap(fungrad.grad(loss), (None, 0, 0))(params, xs, ys)
        >>> updates, state = opt.update(grads, state)
        >>> mean, variance = aggregating.get_unbiased_mean_and_variance_ema(state)
        >>> mean
        Array([-0.6666..., -1.3333...], dtype=float32)
        >>> variance
        Array([1.3333..., 5.3333...], dtype=float32)
    """
    name = "add_mean_variance_to_opt"
    _check_transformation(name, "opt", opt)
    _canonical_axis(name, per_elt_axis)
    _checked_steps(name, accumulation_steps)
    return process(
        preprocessor=identity(),
        aggregator=get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis, accumulation_steps),
        postprocessor=chain(track_per_element_mean_and_variance_with_ema(ema_decay), opt),
        aggregator_has_aux=True)
