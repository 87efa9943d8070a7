"""Optimisers that read the objective's value, as optax.contrib's: MoMo and MoMo-Adam
(a Polyak-type step size from a model of the loss) and ``reduce_on_plateau``. Their
``update`` takes the loss as ``update(..., value=loss)``, which ``chain`` passes on.

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformationExtraArgs,
                                 ScalarOrSchedule, safe_increment, zeros_count)
from fungrad.optim.tree_utils import tree_dtype, tree_norm, tree_vdot, tree_zeros_like

__all__ = [
    "MomoState", "momo", "MomoAdamState", "momo_adam",
    "ReduceLROnPlateauState", "reduce_on_plateau",
]


# --------------------------------------------------------------------------- MoMo

def _check_momo_args(name: str, params: Any, value: Any) -> None:
    if params is None:
        raise ValueError(NO_PARAMS_MSG)
    if value is None:
        raise ValueError(f"{name}: the latest loss value is needed: pass "
                         "update(..., value=loss) (fungrad.value_and_grad gives it)")


def _momo_step(alpha: Any, weight_decay: float, barf: Any, gamma: Any, iprod: Any,
               sq_norm: Any, lb: Any, lower_bound: float, adapt_lower_bound: bool,
               bc1: Any = 1) -> tuple[Any, Any]:
    r"""MoMo's step size :math:`\tau` and next lower bound of the loss: with
    :math:`\rho = 1 + \alpha\lambda`, :math:`\tau = \min(\alpha / c_1, \max(\rho(\bar f -
    c_1 f_* - \gamma) + \langle d, x\rangle, 0) / \|d\|^2)` (0 when :math:`\|d\| = 0`), the
    bound :math:`f_*` re-estimated from the model when ``adapt_lower_bound``; :math:`c_1` is
    MoMo-Adam's bias correction (1 for MoMo)."""
    rho = 1 + alpha * weight_decay
    if adapt_lower_bound:
        cap = rho * (barf - gamma) + iprod
        lb = jnp.where(cap < rho * bc1 * lb, jnp.maximum(cap / (2 * bc1 * rho), lower_bound), lb)
    t1 = jnp.maximum(rho * (barf - bc1 * lb - gamma) + iprod, 0.0) / sq_norm
    t1 = jnp.where(sq_norm <= jnp.finfo(float).eps, 0.0, t1)
    tau = jnp.minimum(alpha / bc1, t1)
    if adapt_lower_bound:
        lb = jnp.maximum(((barf + iprod - gamma) - (1 / 2) * tau * sq_norm) / bc1, lower_bound)
    return tau, lb


class MomoState(NamedTuple):
    """MoMo's state: the momentum ``exp_avg``, the averaged loss ``barf``, the averaged
    :math:`\\langle g, x\\rangle` ``gamma``, the loss's lower bound ``lb`` and the step
    ``count``."""

    exp_avg: Any
    barf: Any
    gamma: Any
    lb: Any
    count: Any


def momo(learning_rate: ScalarOrSchedule = 1.0, beta: float = 0.9, lower_bound: float = 0.0,
         weight_decay: float = 0.0,
         adapt_lower_bound: bool = False) -> GradientTransformationExtraArgs:
    r"""MoMo (Schaipp et al., 2023, "MoMo: Momentum Models for Adaptive Learning Rates"): SGD
    with momentum :math:`d` and the Polyak-type step size :math:`\tau = \min(\alpha,
    (\bar f - f_* - \gamma + \langle d, x\rangle)_+ / \|d\|^2)` from a model of the loss
    (:math:`\bar f`, :math:`\gamma` the averaged losses and :math:`\langle g, x\rangle`),
    :math:`x \leftarrow (x - \tau d) / (1 + \alpha\lambda)`.

    Knowing a lower bound ``lower_bound`` of the loss (0 for most) lets the step size adapt,
    so ``learning_rate`` :math:`\alpha` (a cap) can be large; ``adapt_lower_bound``
    estimates it on the fly. Pass the batch's loss as ``update(..., value=loss)``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> opt = optim.contrib.momo()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     value, grad = fungrad.value_and_grad(f)(params)
        ...     updates, state = opt.update(grad, state, params, value=value)
        ...     params = optim.apply_updates(params, updates)
        ...     print(f"{f(params):.4f}")
        3.5000
        3.3182
    """
    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        return MomoState(tree_zeros_like(params), jnp.zeros([], params_dtype),
                         jnp.zeros([], params_dtype), jnp.array(lower_bound, params_dtype),
                         zeros_count())

    def update(updates, state, params=None, *, value, **extra_args):
        _check_momo_args("momo", params, value)
        bt = jnp.where(state.count == 0, 0.0, beta)
        barf = bt * state.barf + (1 - bt) * jnp.asarray(value, dtype=state.barf.dtype)
        exp_avg = tree.map(lambda ea, g: bt * ea + (1 - bt) * g, state.exp_avg, updates)
        gamma = bt * state.gamma + (1 - bt) * tree_vdot(updates, params)
        sq_norm = tree_norm(exp_avg, squared=True)
        iprod = tree_vdot(exp_avg, params)
        alpha = learning_rate(state.count) if callable(learning_rate) else learning_rate
        tau, lb = _momo_step(alpha, weight_decay, barf, gamma, iprod, sq_norm, state.lb,
                             lower_bound, adapt_lower_bound)
        decay = (alpha * weight_decay) / (1 + alpha * weight_decay)
        p_update = tree.map(lambda ea, p: -decay * p - tau * ea, exp_avg, params)
        return p_update, MomoState(exp_avg, barf, gamma, lb, safe_increment(state.count))
    return GradientTransformationExtraArgs(init, update)


class MomoAdamState(NamedTuple):
    """MoMo-Adam's state: the moments ``exp_avg``, ``exp_avg_sq``, the averaged loss
    ``barf``, the averaged :math:`\\langle g, x\\rangle` ``gamma``, the loss's lower bound
    ``lb`` and the step ``count``."""

    exp_avg: Any
    exp_avg_sq: Any
    barf: Any
    gamma: Any
    lb: Any
    count: Any


def momo_adam(learning_rate: ScalarOrSchedule = 1e-2, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-8, lower_bound: float = 0.0, weight_decay: float = 0.0,
              adapt_lower_bound: bool = False) -> GradientTransformationExtraArgs:
    r"""MoMo-Adam (Schaipp et al., 2023, "MoMo: Momentum Models for Adaptive Learning
    Rates"): MoMo's Polyak-type step size on Adam's preconditioned momentum, with
    :math:`D = \epsilon + \sqrt{\hat v}` and AdamW-like weight decay,
    :math:`\tau = \min(\alpha / c_1, (\bar f - c_1 f_* - \gamma + \langle m, x\rangle)_+ /
    \langle m, m / D\rangle)`, :math:`x \leftarrow (x - \tau m / D) / (1 + \alpha\lambda)`,
    :math:`c_1 = 1 - \beta_1^t`.

    Pass the batch's loss as ``update(..., value=loss)``; ``lower_bound`` and
    ``adapt_lower_bound`` are MoMo's.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> opt = optim.contrib.momo_adam()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> value, grad = fungrad.value_and_grad(f)(params)
        >>> updates, state = opt.update(grad, state, params, value=value)
        >>> print(f"{f(optim.apply_updates(params, updates)):.6f}")
        13.880300
    """
    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        return MomoAdamState(tree_zeros_like(params), tree_zeros_like(params),
                             jnp.zeros([], params_dtype), jnp.zeros([], params_dtype),
                             jnp.array(lower_bound, params_dtype), zeros_count())

    def update(updates, state, params=None, *, value, **extra_args):
        _check_momo_args("momo_adam", params, value)
        count_inc = safe_increment(state.count)
        barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, dtype=state.barf.dtype)
        exp_avg = tree.map(lambda ea, g: b1 * ea + (1 - b1) * g, state.exp_avg, updates)
        exp_avg_sq = tree.map(lambda eas, g: b2 * eas + (1 - b2) * g * g, state.exp_avg_sq,
                              updates)
        bc2 = jnp.asarray(1 - b2 ** count_inc, dtype=barf.dtype)
        precond = tree.map(lambda eas: eps + jnp.sqrt(eas / bc2), exp_avg_sq)
        sq_norm = tree_vdot(exp_avg, tree.map(lambda ea, d: ea / d, exp_avg, precond))
        gamma = b1 * state.gamma + (1 - b1) * tree_vdot(updates, params)
        iprod = tree_vdot(exp_avg, params)
        alpha = learning_rate(state.count) if callable(learning_rate) else learning_rate
        bc1 = jnp.asarray(1 - b1 ** count_inc, dtype=barf.dtype)
        tau, lb = _momo_step(alpha, weight_decay, barf, gamma, iprod, sq_norm, state.lb,
                             lower_bound, adapt_lower_bound, bc1)
        decay = (alpha * weight_decay) / (1 + alpha * weight_decay)
        p_update = tree.map(lambda ea, d, p: -decay * p - tau * ea / d, exp_avg, precond,
                            params)
        return p_update, MomoAdamState(exp_avg, exp_avg_sq, barf, gamma, lb, count_inc)
    return GradientTransformationExtraArgs(init, update)


# --------------------------------------------------------------------------- reduce on plateau

class ReduceLROnPlateauState(NamedTuple):
    """``reduce_on_plateau``'s state: the current ``scale``, the ``best_value`` so far, the
    ``plateau_count`` and ``cooldown_count``, and the ``count`` and running average
    ``avg_value`` of the values accumulated towards the next check."""

    scale: Any
    best_value: Any
    plateau_count: Any
    cooldown_count: Any
    count: Any
    avg_value: Any


def reduce_on_plateau(factor: float = 0.1, patience: int = 10, rtol: float = 1e-4,
                      atol: float = 0.0, cooldown: int = 0, accumulation_size: int = 1,
                      min_scale: float = 0.0) -> GradientTransformationExtraArgs:
    """Scale the updates by a factor that drops by ``factor`` (down to ``min_scale``) when
    the average of ``accumulation_size`` values has not improved by ``rtol``/``atol`` on the
    best one for ``patience`` checks, then waits ``cooldown`` checks.

    Its ``update(updates, state, params=None, *, value)`` takes the objective's current
    value ``value`` as a keyword argument (optax's extra argument).
    """
    if factor <= 0.0 or factor >= 1.0:
        raise ValueError(f"Factor must be in the range (0, 1), got factor = {factor}.")
    if rtol < 0.0 or atol < 0.0:
        raise ValueError("Both rtol and atol must be non-negative, got "
                         f"rtol = {rtol} and atol = {atol}.")
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("At least one of rtol or atol must be positive, got "
                         f"rtol = {rtol} and atol = {atol}.")
    if rtol > 1.0:
        raise ValueError(f"rtol must be less than or equal to 1.0, got rtol = {rtol}.")

    def init(params):
        highest = tree_dtype(params, "highest")
        return ReduceLROnPlateauState(
            scale=jnp.asarray(1.0, dtype=tree_dtype(params, "lowest")),
            best_value=jnp.asarray(float("inf"), dtype=highest),
            plateau_count=zeros_count(), cooldown_count=zeros_count(), count=zeros_count(),
            avg_value=jnp.asarray(0.0, highest))

    def update_scale(state):
        avg_value = state.avg_value
        has_improved = jnp.where(avg_value < (1 - rtol) * state.best_value - atol, 1, 0)
        best_value = jnp.where(has_improved, avg_value.astype(state.best_value.dtype),
                               state.best_value)
        plateau_count = jnp.where(has_improved, 0, safe_increment(state.plateau_count))

        def in_cooldown():
            return jnp.asarray(0, jnp.int32), state.scale, state.cooldown_count - 1

        def not_in_cooldown():
            reduce = plateau_count == patience
            return (jnp.where(reduce, 0, plateau_count),
                    jnp.maximum(jnp.where(reduce, state.scale * factor, state.scale), min_scale),
                    jnp.where(reduce, cooldown, 0).astype(jnp.int32))
        new_plateau_count, new_scale, new_cooldown_count = lax.cond(
            state.cooldown_count > 0, in_cooldown, not_in_cooldown)
        return ReduceLROnPlateauState(scale=new_scale,
                                      best_value=best_value.astype(state.best_value.dtype),
                                      plateau_count=new_plateau_count,
                                      cooldown_count=new_cooldown_count,
                                      count=jnp.asarray(0, dtype=jnp.int32),
                                      avg_value=jnp.asarray(0.0, avg_value.dtype))

    def update(updates, state, params=None, *, value, **extra_args):
        count = state.count
        new_count = safe_increment(count)
        avg_value = ((count * state.avg_value + jnp.asarray(value).astype(state.avg_value.dtype))
                     / new_count)
        state = state._replace(avg_value=avg_value.astype(state.avg_value.dtype), count=new_count)
        state = lax.cond(new_count == accumulation_size, update_scale, lambda s: s, state)
        return tree.map(lambda g: state.scale * g, updates), state
    return GradientTransformationExtraArgs(init, update)
