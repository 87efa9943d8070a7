"""Schedule-free learning (Defazio et al., 2024), as optax.contrib's: a wrapper that replaces
the learning-rate schedule by an average of the iterates, and its AdamW and SGD forms.

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import fungrad.numpy as jnp
from fungrad import tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation,
                                 GradientTransformationExtraArgs, ScalarOrSchedule, chain,
                                 safe_increment, tree_cast, with_extra_args_support)
from fungrad.optim.alias import sgd
from fungrad.optim.schedules import warmup_constant_schedule
from fungrad.optim.transform import add_decayed_weights, scale_by_learning_rate, scale_by_rms
from fungrad.optim.tree_utils import tree_dtype

__all__ = ["ScheduleFreeState", "schedule_free", "schedule_free_adamw", "schedule_free_sgd",
           "schedule_free_eval_params"]


class ScheduleFreeState(NamedTuple):
    """Schedule-free's state: ``b1``, the sum of the step weights ``weight_sum``, the
    ``step_count`` (from 1), the largest learning rate so far ``max_lr``, the base
    optimiser's state and the base iterate ``z``."""

    b1: Any
    weight_sum: Any
    step_count: Any
    max_lr: Any
    base_optimizer_state: Any
    z: Any


def schedule_free_eval_params(state: ScheduleFreeState, params: Any) -> Any:
    """The parameters to evaluate a schedule-free model at: the average iterate
    :math:`x = (y - (1 - \\beta_1) z) / \\beta_1`."""
    b1, z = getattr(state, "b1"), getattr(state, "z")
    if b1 is None or z is None:
        raise ValueError("schedule_free_eval_params requires a ScheduleFreeState as input.")
    return tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, z)


def schedule_free(base_optimizer: GradientTransformation, learning_rate: ScalarOrSchedule,
                  b1: float = 0.9, weight_lr_power: float = 2.0,
                  state_dtype: Any = None) -> GradientTransformationExtraArgs:
    r"""Schedule-free learning (Defazio et al., 2024) around ``base_optimizer``: it steps the
    base iterate :math:`z`, averages :math:`x \leftarrow (1 - c)x + c z` with weights
    :math:`c \propto \eta_{\max}^{p}`, and returns the updates to the interpolation
    :math:`y = \beta_1 x + (1 - \beta_1) z` (evaluate at ``schedule_free_eval_params``).
    """
    base_optimizer = with_extra_args_support(base_optimizer)

    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        z = tree.map(lambda t: t.copy(), tree_cast(params, state_dtype))
        return ScheduleFreeState(b1=jnp.asarray(b1, dtype=params_dtype),
                                 weight_sum=jnp.zeros([], dtype=params_dtype),
                                 step_count=jnp.ones([], dtype=jnp.int32),
                                 max_lr=jnp.zeros([], dtype=params_dtype),
                                 base_optimizer_state=base_optimizer.init(params), z=z)

    def update(grads, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        lr = learning_rate
        if callable(learning_rate):
            lr = jnp.asarray(learning_rate(state.step_count), dtype=state.max_lr.dtype)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr ** weight_lr_power
        next_total_weight = state.weight_sum + weight
        ck = jnp.where(jnp.logical_or(jnp.isnan(weight), jnp.isnan(next_total_weight)),
                       jnp.full(weight.shape, jnp.nan),
                       jnp.nan_to_num(weight / next_total_weight, nan=0.0, posinf=jnp.inf))
        base_updates, base_state = base_optimizer.update(grads, state.base_optimizer_state,
                                                         params, **extra_args)
        z = tree.map(lambda pi, ui: jnp.asarray(pi + ui).astype(jnp.asarray(pi).dtype),
                     state.z, base_updates)
        prev_x = tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, state.z)
        x = tree.map(lambda xi, zi: (1.0 - ck) * xi + ck * zi, prev_x, z)
        new_params = tree.map(lambda xi, zi: b1 * xi + (1.0 - b1) * zi, x, z)
        updates = tree.map(lambda npi, pi: npi - pi, new_params, params)
        return updates, ScheduleFreeState(b1=state.b1, weight_sum=next_total_weight,
                                          step_count=safe_increment(state.step_count),
                                          max_lr=max_lr, base_optimizer_state=base_state, z=z)
    return GradientTransformationExtraArgs(init, update)


def schedule_free_sgd(learning_rate: float = 1.0, warmup_steps: Optional[int] = None,
                      b1: float = 0.9, weight_decay: Optional[float] = None,
                      weight_lr_power: float = 2.0,
                      state_dtype: Any = None) -> GradientTransformationExtraArgs:
    """Schedule-free SGD: ``schedule_free`` around ``sgd`` (after weight decay, if any),
    with a linear warm-up over ``warmup_steps``."""
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(init_value=0, peak_value=learning_rate,
                                                 warmup_steps=warmup_steps)
    optimizer = sgd(learning_rate)
    if weight_decay is not None:
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def schedule_free_adamw(learning_rate: float = 0.0025, warmup_steps: Optional[int] = None,
                        b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                        weight_decay: float = 0.0, weight_lr_power: float = 2.0,
                        state_dtype: Any = None) -> GradientTransformationExtraArgs:
    """Schedule-free AdamW: ``schedule_free`` around bias-corrected RMSProp (no momentum:
    the averaging replaces it) with decoupled weight decay and a linear warm-up."""
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(init_value=0, peak_value=learning_rate,
                                                 warmup_steps=warmup_steps)
    optimizer = chain(scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
                      add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)
