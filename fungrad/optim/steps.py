"""More optimisers from optax: step-size rules and layer-wise scalings.

LARS and Fromage (trust ratios), SM3 (a memory-efficient Adagrad), Polyak's step size,
DoG (distance over gradients), optimistic gradient methods, and the per-example gradient
clipping of differentially private training. Each state NamedTuple sits above the function
that makes it; names, defaults and numerics follow optax.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation, ScalarOrSchedule,
                                 Updates, chain, global_norm, init_empty_state, tree_cast)
from fungrad.optim.alias import sgd
from fungrad.optim.combine import masked
from fungrad.optim.transform import (_abs_sq, _moment, safe_norm, add_decayed_weights, scale,
                                     scale_by_adam, scale_by_learning_rate,
                                     scale_by_param_block, scale_by_trust_ratio, trace)
from fungrad.transforms.api import vmap

__all__ = [
    "scale_by_param_block_norm", "lars", "fromage",
    "ScaleBySM3State", "scale_by_sm3", "sm3",
    "scale_by_polyak", "polyak_sgd",
    "scale_by_distance_over_gradients",
    "scale_by_optimistic_gradient", "optimistic_gradient_descent", "optimistic_adam",
    "optimistic_adam_v2",
    "per_example_global_norm_clip", "per_example_layer_norm_clip",
]


def scale_by_param_block_norm(min_scale: float = 1e-3) -> GradientTransformation:
    """Scale each update by the L2 norm of its parameter block (at least ``min_scale``)."""
    return scale_by_param_block(safe_norm, min_scale)


def lars(learning_rate: ScalarOrSchedule, weight_decay: ScalarOrSchedule = 0.0,
         weight_decay_mask: Any = True, trust_coefficient: float = 0.001, eps: float = 0.0,
         trust_ratio_mask: Any = True, momentum: float = 0.9,
         nesterov: bool = False) -> GradientTransformation:
    r"""LARS (You et al., 2017): SGD with momentum whose step is scaled per layer by the
    trust ratio :math:`c\,\|\theta\| / (\|g + \lambda\theta\| + \epsilon)`.

    ``weight_decay_mask`` and ``trust_ratio_mask`` (trees of bools, or functions of the
    params) choose the leaves that get weight decay and the trust ratio.
    """
    return chain(add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
                        trust_ratio_mask),
                 scale_by_learning_rate(learning_rate),
                 trace(decay=momentum, nesterov=nesterov))


def fromage(learning_rate: ScalarOrSchedule, min_norm: float = 1e-6) -> GradientTransformation:
    r"""Fromage (Bernstein et al., 2020): trust-ratio steps shrunk by
    :math:`1 / \sqrt{1 + \eta^2}`, so the parameters' norm does not grow,
    :math:`\theta \leftarrow (\theta - \eta\, \|\theta\| g / \|g\|) / \sqrt{1 + \eta^2}`."""
    if not callable(learning_rate):
        mult = 1 / (1 + learning_rate ** 2) ** 0.5
        return chain(scale_by_trust_ratio(min_norm),
                     scale_by_learning_rate(learning_rate * mult),
                     add_decayed_weights(mult - 1))

    def mult_lr(count):
        return 1 / (1 + learning_rate(count) ** 2) ** 0.5
    return chain(scale_by_trust_ratio(min_norm),
                 scale_by_learning_rate(lambda c: mult_lr(c) * learning_rate(c)),
                 add_decayed_weights(lambda c: mult_lr(c) - 1))


def _other_axes(axis: int, ndim: int) -> tuple[int, ...]:
    return tuple(i for i in range(ndim) if i != axis)


class ScaleBySM3State(NamedTuple):
    """SM3's state: per leaf, one accumulator per axis (``mu``, a list) and the momentum
    ``nu``."""

    mu: Any
    nu: Any


def scale_by_sm3(b1: float = 0.9, b2: float = 1.0, eps: float = 1e-8) -> GradientTransformation:
    r"""SM3's rescaling: :math:`g / \sqrt{\nu}` with :math:`\nu` the minimum over axes of
    per-axis maxima of the summed squared gradients (``b2 = 1``) or of their moving average,
    then a momentum of decay ``b1``. Stores one vector per axis instead of a full
    accumulator. Rejects complex parameters."""
    def init(params):
        if any(jnp.iscomplexobj(p) for p in tree.leaves(params)):
            raise ValueError("scale_by_sm3 does not support complex parameters.")
        mu = tree.map(lambda p: [jnp.zeros(p.shape[i], p.dtype) for i in range(p.ndim)], params)
        return ScaleBySM3State(mu, tree.map(jnp.zeros_like, params))

    def new_accum(g, v):
        # v: the leaf's per-axis accumulators, each broadcast along the other axes
        return ((1.0 - b2) if b2 != 1.0 else 1.0) * g ** 2 + b2 * functools.reduce(jnp.minimum, v)

    def update(updates, state, params=None):
        mu = tree.map(lambda g, v: [jnp.expand_dims(v[i], _other_axes(i, g.ndim))
                                    for i in range(g.ndim)], updates, state.mu)
        accum = tree.map(new_accum, updates, mu)
        accum_inv_sqrt = tree.map(lambda t: jnp.where(t > 0, lax.rsqrt(t + eps), 0.0), accum)
        nu = _moment(tree.map(lambda g, a: g * a, updates, accum_inv_sqrt), state.nu, b1, 1)
        mu = tree.map(lambda a: [jnp.max(a, axis=_other_axes(i, a.ndim)) for i in range(a.ndim)],
                      accum)
        return nu, ScaleBySM3State(mu, nu)
    return GradientTransformation(init, update)


def sm3(learning_rate: float, momentum: float = 0.9) -> GradientTransformation:
    r"""SM3 (Anil et al., 2019): Adagrad whose squared-gradient sums are covered by one
    accumulator per tensor axis, :math:`\theta \leftarrow \theta - \eta\, g / \sqrt{\nu}`
    with momentum."""
    return chain(scale_by_sm3(momentum), scale(-learning_rate))


def scale_by_polyak(f_min: float = 0.0, max_learning_rate: float = 1.0, eps: float = 0.0,
                    variant: str = "sps") -> GradientTransformation:
    r"""Scale the updates by Polyak's step size
    :math:`\min\{(f - f^\star) / (\|g\|^2 + \epsilon), \gamma_{\max}\}` (0 when
    :math:`\|g\|^2 + \epsilon` is at most the float64 epsilon); ``variant="sps+"`` clips the
    gap :math:`f - f^\star` at 0.

    Its ``update(updates, state, params=None, *, value)`` takes the objective's current
    value ``value`` as a keyword argument (optax's extra argument).
    """
    if variant not in ("sps", "sps+"):
        raise ValueError(f"Invalid argument value for Polyak SGD: {variant=}")

    def update(updates, state, params=None, *, value):
        grad_sq_norm = sum(jnp.sum(_abs_sq(u)) for u in tree.leaves(updates))
        gap = jnp.asarray(value - f_min).astype(grad_sq_norm.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0)
        step = jnp.where(grad_sq_norm + eps <= jnp.finfo(float).eps, jnp.array(0.0),
                         jnp.minimum(gap / (grad_sq_norm + eps), max_learning_rate))
        return tree.map(lambda u: step * u, updates), state
    return GradientTransformation(init_empty_state, update)


def polyak_sgd(max_learning_rate: float = 1.0, scaling: ScalarOrSchedule = 1.0,
               f_min: float = 0.0, eps: float = 0.0,
               variant: str = "sps") -> GradientTransformation:
    r"""SGD with Polyak's step size (Loizou et al., 2021), scaled by ``scaling``:
    :math:`\theta \leftarrow \theta - s \min\{(f - f^\star) / (\|g\|^2 + \epsilon),
    \gamma_{\max}\}\, g` (as optax, the norm is that of the ``scaling``-scaled gradient).

    Its ``update(updates, state, params=None, *, value)`` takes the objective's current
    value ``value`` as a keyword argument; the state is that of
    ``chain(sgd(scaling), scale_by_polyak(...))``, as optax's.
    """
    sgd_tx = sgd(learning_rate=scaling)
    polyak_tx = scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps,
                                variant=variant)

    def init(params):
        return sgd_tx.init(params), polyak_tx.init(params)

    def update(updates, state, params=None, *, value):
        updates, sgd_state = sgd_tx.update(updates, state[0], params)
        updates, polyak_state = polyak_tx.update(updates, state[1], params, value=value)
        return updates, (sgd_state, polyak_state)
    return GradientTransformation(init, update)


def _l2(x: Any, y: Any = 0.0) -> Any:
    return jnp.sqrt(jnp.sum(jnp.square(x - y)))


class ScaleByDistanceOverGradientsState(NamedTuple):
    """DoG's state, per leaf: the largest distance from the initial parameters so far
    (``max_dist``), the sum of squared gradient norms and the initial parameters."""

    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Any


def scale_by_distance_over_gradients(reps_rel: float = 1e-6, eps: float = 1e-8,
                                     param_dtype: Any = jnp.float32,
                                     global_scale: float = 1.0) -> GradientTransformation:
    r"""Layer-wise DoG (Ivgi et al., 2023), a step size without a learning rate: per leaf,
    :math:`g \cdot s\, \bar r / \sqrt{\sum_t \|g_t\|^2 + \epsilon}` with :math:`\bar r` the
    largest distance from the initial parameters so far (at least
    ``reps_rel * (1 + ||theta_0||)``) and :math:`s` = ``global_scale`` (use -1 to descend).
    The initial parameters are kept in ``param_dtype``."""
    def init(params):
        return ScaleByDistanceOverGradientsState(
            tree.map(lambda x: reps_rel * (1 + _l2(x)), params),
            tree.map(lambda x: jnp.zeros(1), params),
            tree_cast(params, param_dtype))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        max_dist = tree.map(lambda d, x, y: jnp.maximum(d, _l2(x, y)), state.max_dist, params,
                            state.init_params)
        g_sos = tree.map(lambda s, g: s + jnp.sum(jnp.square(g)), state.grad_sum_of_squares,
                         updates)
        updates = tree.map(lambda g, d, s: global_scale * (d / jnp.sqrt(s + eps)) * g,
                           updates, max_dist, g_sos)
        return updates, ScaleByDistanceOverGradientsState(max_dist, g_sos, state.init_params)
    return GradientTransformation(init, update)


class ScaleByOptimisticGradientState(NamedTuple):
    """Optimistic gradient's state: whether no step was taken yet and the last gradient."""

    is_initial_step: Any
    previous_gradient: Any


def scale_by_optimistic_gradient(alpha: float = 1.0,
                                 beta: float = 1.0) -> GradientTransformation:
    r"""Generalised optimistic gradient: :math:`(\alpha + \beta) g_t - \beta g_{t-1}`, with
    :math:`g_0 = g_1` at the first step."""
    def init(params):
        return ScaleByOptimisticGradientState(jnp.array(True), tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        def one(grad, prev_grad):
            prev_grad = jnp.where(state.is_initial_step, grad, prev_grad)
            return (alpha + beta) * grad - beta * prev_grad
        new_updates = tree.map(one, updates, state.previous_gradient)
        return new_updates, ScaleByOptimisticGradientState(jnp.array(False), updates)
    return GradientTransformation(init, update)


def optimistic_gradient_descent(learning_rate: ScalarOrSchedule, alpha: float = 1.0,
                                beta: float = 1.0) -> GradientTransformation:
    r"""Optimistic gradient descent (Mokhtari et al., 2019), for min-max games:
    :math:`\theta \leftarrow \theta - \eta\,((\alpha + \beta) g_t - \beta g_{t-1})`."""
    return chain(scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 scale_by_learning_rate(learning_rate))


def optimistic_adam(learning_rate: float, optimism: float | None = None, b1: float = 0.9,
                    b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                    mu_dtype: Any = None, *, nesterov: bool = True) -> GradientTransformation:
    r"""Optimistic Adam (Daskalakis et al., 2017): with :math:`r_t` Adam's step,
    :math:`\theta \leftarrow \theta - \eta r_t - o\,(r_t - r_{t-1})`; the optimism :math:`o`
    defaults to ``learning_rate``. Deprecated, as in optax (a DeprecationWarning): use
    ``optimistic_adam_v2``, which also takes schedules."""
    warnings.warn("`optimistic_adam` is deprecated, please use `optimistic_adam_v2` instead.",
                  category=DeprecationWarning, stacklevel=2)
    if callable(learning_rate):
        raise ValueError("This version of `optimistic_adam` does not support learning rate "
                         "schedules but `optimistic_adam_v2` does.")
    if optimism is None:
        optimism = learning_rate
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
                 scale_by_learning_rate(1.0))


def optimistic_adam_v2(learning_rate: ScalarOrSchedule, *, alpha: float = 1.0, beta: float = 1.0,
                       b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                       eps_root: float = 0.0, mu_dtype: Any = None,
                       nesterov: bool = True) -> GradientTransformation:
    r"""Optimistic Adam: Adam's step :math:`r_t` made optimistic,
    :math:`\theta \leftarrow \theta - \eta\,((\alpha + \beta) r_t - \beta r_{t-1})`."""
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 scale_by_learning_rate(learning_rate))


def _have_batch_dim(grads: Any) -> bool:
    """Whether every leaf has a leading axis of the same size as the first leaf's."""
    leaves = tree.leaves(grads)
    return all(g.ndim >= 1 and g.shape[0] == leaves[0].shape[0] for g in leaves)


def per_example_global_norm_clip(grads: Updates, l2_norm_clip: float) -> tuple[Updates, Any]:
    """Clip each example's gradient (axis 0 of every leaf) to global L2 norm
    ``l2_norm_clip`` and sum them: returns the summed tree and the number of examples
    clipped (Abadi et al., 2016)."""
    if not _have_batch_dim(grads):
        raise ValueError("Unlike other transforms, `per_example_global_norm_clip` expects "
                         "`grads` to have a batch dimension in the 0th axis.")
    multipliers = jnp.nan_to_num(jnp.minimum(l2_norm_clip / vmap(global_norm)(grads), 1.0),
                                 nan=1.0)
    num_clipped = jnp.sum(multipliers < 1.0)
    return tree.map(lambda g: jnp.tensordot(multipliers, g, axes=1), grads), num_clipped


def per_example_layer_norm_clip(grads: Updates, global_l2_norm_clip: float,
                                uniform: bool = True) -> tuple[Updates, Updates]:
    """``per_example_global_norm_clip`` on each leaf (layer) separately, with clip norm
    ``global_l2_norm_clip / sqrt(K)`` for K leaves (``uniform``) or
    ``global_l2_norm_clip * sqrt(D_i / D)`` for a leaf of D_i of the D parameters: returns
    the summed tree and a tree of per-leaf counts of clipped examples (McMahan et al., 2017)."""
    if not _have_batch_dim(grads):
        raise ValueError("Unlike other transforms, `per_example_layer_norm_clip` expects "
                         "`grads` to have a batch dimension in the 0th axis; got shapes: "
                         f"{tree.map(jnp.shape, grads)}.")
    if uniform:
        num_layers = len(tree.leaves(grads))
        clip_norms = tree.map(lambda _: global_l2_norm_clip * (1.0 / num_layers) ** 0.5, grads)
    else:
        total_params = tree.reduce(lambda x, g: x + g[0].size, grads, 0)
        clip_norms = tree.map(lambda g: global_l2_norm_clip * (g[0].size / total_params) ** 0.5,
                              grads)
    result = tree.map(per_example_global_norm_clip, grads, clip_norms)
    return tree.transpose(tree.structure(grads), tree.structure((0, 0)), result)

