"""Optimisers that find their own step size, as optax.contrib's: Prodigy and D-Adaptation
(AdamW whose learning rate estimates the distance to the solution), COCOB (coin betting),
DoG and DoWG (distance over gradients), and Mechanic (a learned scale for any optimiser).

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation,
                                 GradientTransformationExtraArgs, ScalarOrSchedule, chain,
                                 identity, safe_increment, with_extra_args_support, zeros_count)
from fungrad.optim.transform import add_decayed_weights, scale_by_learning_rate
from fungrad.optim.tree_utils import (tree_dtype, tree_norm, tree_ones_like, tree_scale,
                                      tree_sub, tree_sum, tree_vdot, tree_zeros_like)

__all__ = [
    "ProdigyState", "prodigy",
    "DAdaptAdamWState", "dadapt_adamw",
    "COCOBState", "scale_by_cocob", "cocob",
    "DoGState", "dog",
    "DoWGState", "dowg",
    "MechanicState", "mechanize",
]


# --------------------------------------------------------------------------- Prodigy

def _adam_correction(beta1: float, beta2: float, count: Any) -> Any:
    r"""Adam's bias corrections as one factor on the step size at step ``count`` (from 1):
    :math:`\sqrt{1 - \beta_2^t} / (1 - \beta_1^t)`."""
    return (1 - beta2 ** count) ** 0.5 / (1 - beta1 ** count)


class ProdigyState(NamedTuple):
    """Prodigy's state: the moments ``exp_avg``, ``exp_avg_sq``, the weighted gradient sum
    ``grad_sum``, the initial parameters ``params0``, the step-size estimate ``estim_lr``, the
    numerator of its estimate ``numerator_weighted`` and the step ``count``."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: Any
    numerator_weighted: Any
    count: Any


def prodigy(learning_rate: ScalarOrSchedule = 1.0, betas: tuple[float, float] = (0.9, 0.999),
            beta3: Optional[float] = None, eps: float = 1e-8, estim_lr0: float = 1e-6,
            estim_lr_coef: float = 1.0, weight_decay: float = 0.0,
            safeguard_warmup: bool = False) -> GradientTransformationExtraArgs:
    r"""Prodigy (Mishchenko & Defazio, 2023, "Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner"): Adam whose step size :math:`d` estimates the
    distance to the solution, :math:`d \leftarrow \max(d, \sum \lambda_k \langle g_k,
    \theta_0 - \theta_k\rangle / \|\sum \lambda_k g_k\|_1)`; start with
    ``learning_rate=1``."""
    beta1, beta2 = betas
    if beta3 is None:
        beta3 = beta2 ** 0.5

    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        zeros = lambda: tree.map(jnp.zeros_like, params)
        return ProdigyState(zeros(), zeros(), zeros(), params,
                            jnp.asarray(estim_lr0, dtype=params_dtype),
                            jnp.zeros((), dtype=params_dtype), zeros_count())

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        count_inc = safe_increment(state.count)
        sched = learning_rate(state.count) if callable(learning_rate) else learning_rate
        estim_lr = state.estim_lr
        bc = _adam_correction(beta1, beta2, count_inc)
        dlr = jnp.asarray(estim_lr * sched * bc, dtype=estim_lr.dtype)
        dg = tree.map(lambda g: estim_lr * g, updates)
        param_diff = tree.map(lambda p0, p: p0 - p, state.params0, params)
        numerator_acum = tree_vdot(updates, param_diff)
        exp_avg = tree.map(lambda ea, d: beta1 * ea + (1 - beta1) * d, state.exp_avg, dg)
        exp_avg_sq = tree.map(lambda eas, d: beta2 * eas + (1 - beta2) * d * d,
                              state.exp_avg_sq, dg)
        sum_lr = estim_lr if safeguard_warmup else dlr
        grad_sum = tree.map(lambda s, d: beta3 * s + sum_lr * d / estim_lr0, state.grad_sum, dg)
        numerator_weighted = beta3 * state.numerator_weighted
        numerator_weighted += estim_lr / estim_lr0 * dlr * numerator_acum
        denominator = tree_sum(tree.map(jnp.abs, grad_sum))
        estim_lr = jnp.maximum(state.estim_lr, estim_lr_coef * numerator_weighted / denominator)
        p_update = tree.map(lambda ea, eas, p: (-weight_decay * dlr * p
                                                - dlr * ea / (jnp.sqrt(eas) + estim_lr * eps)),
                            exp_avg, exp_avg_sq, params)
        return p_update, ProdigyState(exp_avg, exp_avg_sq, grad_sum, state.params0, estim_lr,
                                      numerator_weighted, count_inc)
    return GradientTransformationExtraArgs(init, update)


# --------------------------------------------------------------------------- D-Adaptation

class DAdaptAdamWState(NamedTuple):
    """D-Adaptation AdamW's state: the moments ``exp_avg``, ``exp_avg_sq``, the weighted
    gradient sum ``grad_sum``, the step-size estimate ``estim_lr``, the numerator of its
    estimate ``numerator_weighted`` and the step ``count``."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    estim_lr: Any
    numerator_weighted: Any
    count: Any


def dadapt_adamw(learning_rate: ScalarOrSchedule = 1.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 estim_lr0: float = 1e-6,
                 weight_decay: float = 0.0) -> GradientTransformationExtraArgs:
    r"""D-Adaptation AdamW (Defazio & Mishchenko, 2023, "Learning-Rate-Free Learning by
    D-Adaptation"): AdamW whose learning rate :math:`d` is a lower bound on the distance to
    the solution (in the infinity norm), raised as the run goes,
    :math:`d \leftarrow \max(d, \sum_k \lambda_k \langle g_k, s_k / (\sqrt{v_k} + \epsilon)
    \rangle / ((1 - \sqrt{\beta_2}) \|s\|_1))` with :math:`s` a decayed sum of
    :math:`\lambda_k g_k`, :math:`\lambda_k = d_k\, \eta_k` times Adam's bias correction.

    Start from ``estim_lr0``, an underestimate; ``learning_rate`` is a schedule around 1
    (a warm-up, then a decay to 0 works best). ``weight_decay`` is AdamW's, decoupled.
    """
    beta1, beta2 = betas
    sb2 = beta2 ** 0.5

    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        return DAdaptAdamWState(tree_zeros_like(params), tree_zeros_like(params),
                                tree_zeros_like(params), jnp.asarray(estim_lr0, params_dtype),
                                jnp.zeros([], params_dtype), zeros_count())

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        sched = learning_rate(state.count) if callable(learning_rate) else learning_rate
        count_inc = safe_increment(state.count)
        bc = _adam_correction(beta1, beta2, count_inc)
        dlr = (state.estim_lr * sched * bc).astype(state.numerator_weighted.dtype)
        s_weighted = tree.map(lambda sk, eas: sk / (jnp.sqrt(eas) + eps), state.grad_sum,
                              state.exp_avg_sq)
        numerator_acum = tree_vdot(updates, s_weighted)
        exp_avg = tree.map(lambda ea, g: beta1 * ea + (1 - beta1) * dlr * g, state.exp_avg,
                           updates)
        exp_avg_sq = tree.map(lambda eas, g: beta2 * eas + (1 - beta2) * g * g,
                              state.exp_avg_sq, updates)
        grad_sum = tree.map(lambda sk, g: sb2 * sk + (1 - sb2) * dlr * g, state.grad_sum,
                            updates)
        grad_sum_l1 = tree_sum(tree.map(jnp.abs, grad_sum))
        numerator_weighted = sb2 * state.numerator_weighted + (1 - sb2) * dlr * numerator_acum
        estim_lr = jnp.maximum(state.estim_lr,
                               numerator_weighted / ((1 - sb2) * grad_sum_l1))
        p_update = tree.map(lambda ea, eas, p: -weight_decay * dlr * p
                            - ea / (jnp.sqrt(eas) + eps), exp_avg, exp_avg_sq, params)
        return p_update, DAdaptAdamWState(exp_avg, exp_avg_sq, grad_sum, estim_lr,
                                          numerator_weighted, count_inc)
    return GradientTransformationExtraArgs(init, update)


# --------------------------------------------------------------------------- COCOB

class COCOBState(NamedTuple):
    """COCOB's state, per parameter: the ``init_particles`` (initial parameters), the
    negated gradient sum ``cumulative_gradients``, the largest gradient seen ``scale``, the
    sum of absolute gradients ``subgradients`` and the gambler's ``reward``."""

    init_particles: Any
    cumulative_gradients: Any
    scale: Any
    subgradients: Any
    reward: Any


def scale_by_cocob(alpha: float = 100.0, eps: float = 1e-8) -> GradientTransformation:
    r"""COCOB-Backprop's step (the updates *are* the step): per coordinate, with :math:`L`
    the largest :math:`|g|`, :math:`G = \sum |g|`, reward :math:`R` and :math:`C = -\sum g`,
    :math:`\theta = \theta_0 + C (L + R) / (L \max(G + L, \alpha L))`; ``eps`` starts
    :math:`L`."""
    def init(params):
        zeros = tree_zeros_like(params)
        return COCOBState(init_particles=params, cumulative_gradients=zeros,
                          scale=tree_scale(eps, tree_ones_like(params)), subgradients=zeros,
                          reward=zeros)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        scale = tree.map(lambda lo, g: jnp.maximum(lo, jnp.abs(g)), state.scale, updates)
        subgradients = tree.map(lambda s, g: s + jnp.abs(g), state.subgradients, updates)
        reward = tree.map(lambda r, g, p, p0: jnp.maximum(r - g * (p - p0), 0), state.reward,
                          updates, params, state.init_particles)
        cumulative = tree_sub(state.cumulative_gradients, updates)
        new_updates = tree.map(
            lambda p, p0, c, lo, s, r: -p + (p0 + c / (lo * jnp.maximum(s + lo, alpha * lo))
                                             * (lo + r)),
            params, state.init_particles, cumulative, scale, subgradients, reward)
        return new_updates, COCOBState(state.init_particles, cumulative, scale, subgradients,
                                       reward)
    return GradientTransformation(init, update)


def cocob(learning_rate: ScalarOrSchedule = 1.0, alpha: float = 100.0, eps: float = 1e-8,
          weight_decay: float = 0.0, mask: Any = None) -> GradientTransformation:
    r"""COCOB-Backprop (Orabona & Tommasi, 2017, "Training Deep Networks without Learning
    Rates Through Coin Betting"): each coordinate bets a fraction of its winnings on the sign
    of the negative gradient, which finds a step size without one being given; ``alpha``
    caps the first bets. Weight decay (on the leaves ``mask`` selects) is added to the
    gradients and ``learning_rate`` scales them (without flipping the sign) before the bet.
    """
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate, flip_sign=False),
                 scale_by_cocob(alpha, eps))


# --------------------------------------------------------------------------- DoG, DoWG

_DOG_INIT_STEPS = ("distance", "learning_rate", "heuristic")


class DoGState(NamedTuple):
    """DoG's state: ``is_init_step``, the ``init_params``, the largest distance from them so
    far ``max_dist`` and the sum of squared gradient norms ``sum_sq_norm_grads``."""

    is_init_step: Any
    init_params: Any
    max_dist: Any
    sum_sq_norm_grads: Any


def _dog_init_distance(init_step: tuple[str, Any], params: Any) -> Any:
    """DoG's :math:`r_\\epsilon`: the value given, ``value * (1 + |x_0|)`` for
    ``'heuristic'``, 0 for ``'learning_rate'`` (the first step then has that rate)."""
    kind, value = init_step
    if kind == "heuristic":
        return value * (1 + tree_norm(params))
    return value if kind == "distance" else 0.0


def scale_by_dog(init_step: tuple[str, Any], eps: float = 1e-8) -> GradientTransformation:
    r"""DoG's rescaling: :math:`\eta_t = \bar r_t / \sqrt{G_t + \epsilon}` with
    :math:`\bar r_t = \max_{k \le t} \|x_k - x_0\|` and :math:`G_t = \sum_{k \le t}
    \|g_k\|^2`; ``init_step`` is DoG's first distance or rate (see ``dog``)."""
    if not (isinstance(init_step, tuple) and len(init_step) == 2
            and init_step[0] in _DOG_INIT_STEPS):
        raise ValueError(f"dog: init_step must be a pair (tag, value) with tag one of "
                         f"{_DOG_INIT_STEPS}, got {init_step!r}")

    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        return DoGState(is_init_step=jnp.asarray(True), init_params=params,
                        max_dist=jnp.asarray(_dog_init_distance(init_step, params),
                                             dtype=params_dtype),
                        sum_sq_norm_grads=jnp.asarray(0.0, dtype=params_dtype))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        max_dist = jnp.maximum(state.max_dist, tree_norm(tree_sub(state.init_params, params)))
        sum_sq_norm_grads = state.sum_sq_norm_grads + tree_norm(updates, squared=True)
        learning_rate = max_dist / jnp.sqrt(sum_sq_norm_grads + eps)
        if init_step[0] == "learning_rate":
            learning_rate = jnp.where(state.is_init_step, init_step[1], learning_rate)
        return tree_scale(learning_rate, updates), DoGState(
            is_init_step=jnp.asarray(False), init_params=state.init_params, max_dist=max_dist,
            sum_sq_norm_grads=sum_sq_norm_grads)
    return GradientTransformation(init, update)


def _decayed_then(scaling: GradientTransformation, learning_rate: ScalarOrSchedule,
                  weight_decay: Optional[float], mask: Any) -> GradientTransformation:
    """Weight decay (when given), ``scaling``, then the learning rate: DoG's and DoWG's
    chain."""
    decay = identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return chain(decay, scaling, scale_by_learning_rate(learning_rate))


def dog(learning_rate: ScalarOrSchedule = 1.0,
        init_step: tuple[str, Any] = ("heuristic", 1e-6), eps: float = 1e-8,
        weight_decay: Optional[float] = None, mask: Any = None) -> GradientTransformation:
    r"""DoG, distance over gradients (Ivgi et al., 2023, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule"): SGD with the step size
    :math:`\eta_t = \max_{k \le t}\|x_k - x_0\| / \sqrt{\sum_{k \le t}\|g_k\|^2 + \epsilon}`,
    which needs no tuning; ``learning_rate`` is an optional schedule on top.

    ``init_step`` is ``(tag, value)``: ``('distance', r)`` starts the distance at ``r``,
    ``('learning_rate', eta)`` makes the first step size ``eta``, and ``('heuristic', a)``
    starts the distance at :math:`a (1 + \|x_0\|)` (``a = 1e-6``, or ``1e-4`` with batch
    norm), which needs the real parameters at ``init``. Average the iterates for the best
    results, as the authors recommend.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> opt = optim.contrib.dog(init_step=("learning_rate", 0.1))
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     updates, state = opt.update(fungrad.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(f"{f(params):.4f}")
        3.8373
    """
    return _decayed_then(scale_by_dog(init_step, eps), learning_rate, weight_decay, mask)


class DoWGState(NamedTuple):
    """DoWG's state: the ``init_params``, the distance-weighted sum of squared gradient norms
    ``weighted_sq_norm_grads`` and the squared distance estimate ``estim_sq_dist``."""

    init_params: Any
    weighted_sq_norm_grads: Any
    estim_sq_dist: Any


def scale_by_dowg(init_estim_sq_dist: Optional[float] = None,
                  eps: float = 1e-4) -> GradientTransformation:
    r"""DoWG's rescaling: :math:`\eta_t = \bar r_t^2 / (\sqrt{v_t} + \epsilon)` with
    :math:`\bar r_t^2 = \max_{k \le t} \|x_k - x_0\|^2` and
    :math:`v_t = \sum_{k \le t} \bar r_k^2 \|g_k\|^2`; the distance starts at
    ``init_estim_sq_dist`` (``eps`` when None)."""
    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        start = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(init_params=params,
                         weighted_sq_norm_grads=jnp.asarray(0.0, dtype=params_dtype),
                         estim_sq_dist=jnp.asarray(start, dtype=params_dtype))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        curr_sq_dist = tree_norm(tree_sub(state.init_params, params), squared=True)
        estim_sq_dist = jnp.maximum(state.estim_sq_dist, curr_sq_dist)
        weighted_sq_norm_grads = (estim_sq_dist * tree_norm(updates, squared=True)
                                  + state.weighted_sq_norm_grads)
        learning_rate = estim_sq_dist / (jnp.sqrt(weighted_sq_norm_grads) + eps)
        return tree_scale(learning_rate, updates), state._replace(
            estim_sq_dist=estim_sq_dist, weighted_sq_norm_grads=weighted_sq_norm_grads)
    return GradientTransformation(init, update)


def dowg(learning_rate: ScalarOrSchedule = 1.0, init_estim_sq_dist: Optional[float] = None,
         eps: float = 1e-4, weight_decay: Optional[float] = None,
         mask: Any = None) -> GradientTransformation:
    r"""DoWG, distance over weighted gradients (Khaled et al., 2023, "DoWG Unleashed: An
    Efficient Universal Parameter-Free Gradient Descent Method"): SGD with the step size
    :math:`\eta_t = \bar r_t^2 / \sqrt{\sum_{k \le t} \bar r_k^2 \|g_k\|^2}`,
    :math:`\bar r_t = \max_{k \le t}\|x_k - x_0\|`, which adapts to smooth and non-smooth
    problems alike without tuning; ``learning_rate`` is an optional schedule on top.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> opt = optim.contrib.dowg()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     updates, state = opt.update(fungrad.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(f"{f(params):.4f}")
        13.7754
    """
    return _decayed_then(scale_by_dowg(init_estim_sq_dist, eps), learning_rate, weight_decay,
                         mask)


# --------------------------------------------------------------------------- Mechanic

class MechanicState(NamedTuple):
    """Mechanic's state: the base optimiser's state, the step ``count``, the per-beta
    accumulators ``r``, ``m``, ``v``, the per-beta scales ``s`` and the initial parameters
    ``x0``."""

    base_optimizer_state: Any
    count: Any
    r: Any
    m: Any
    v: Any
    s: Any
    x0: Any


def mechanize(base_optimizer: GradientTransformation, weight_decay: float = 1e-2,
              eps: float = 1e-8, s_init: float = 1e-6,
              num_betas: int = 6) -> GradientTransformationExtraArgs:
    r"""Mechanic (Cutkosky et al., 2023, "Mechanic: A Learning Rate Tuner"): learns the
    scale of ``base_optimizer``'s steps. The parameters are :math:`x_t = x_0 - s_t \Delta_t`,
    :math:`\Delta_t` the sum of the base optimiser's (negated) steps so far and
    :math:`s_t = \sum_i s_{t,i}`, one scale per :math:`\beta_i = 1 - 10^{-i}` (``num_betas``
    of them), each a coin-betting wealth over :math:`h_t = \langle g_t + \lambda s_t
    \|g_t\| x_t / \|x_t\|, \Delta_{t-1} \rangle`.

    Keep a schedule if you have one, with peak 1: Mechanic learns the factor. Its
    ``weight_decay`` is Mechanic's own (it reduces the spread between seeds), not the base
    optimiser's. Extra keyword arguments of ``update`` reach the base optimiser.
    """
    base_optimizer = with_extra_args_support(base_optimizer)
    betas_list = [1.0 - 0.1 ** i for i in range(1, num_betas + 1)]

    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        zeros = jnp.zeros([num_betas], dtype=params_dtype)
        return MechanicState(base_optimizer_state=base_optimizer.init(params),
                             count=zeros_count(), r=zeros, m=zeros, v=zeros,
                             s=jnp.ones([num_betas], dtype=params_dtype) * s_init, x0=params)

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        new_neg_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args)
        x0 = lax.cond(state.count == 0, lambda: params, lambda: state.x0)
        s_sum = jnp.sum(state.s)
        grad_norm, param_norm = tree_norm(updates), tree_norm(params)
        updates = tree.map(lambda g, p: g + weight_decay * s_sum * grad_norm
                           / (param_norm + eps) * p, updates, params)
        delta_prev = tree.map(lambda p, p0: (p0 - p) / (s_sum + eps), params, x0)
        delta = tree_sub(delta_prev, new_neg_updates)
        h = tree_vdot(updates, delta_prev)
        clipped_h = lax.clamp(-state.m, jnp.ones_like(state.m) * h, state.m)
        betas = jnp.array(betas_list, dtype=state.s.dtype)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas ** 2 * state.v + h ** 2
        r = betas * state.r + clipped_h * state.s
        wealth = (s_init / jnp.size(betas)) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + eps)
        new_params = tree.map(lambda p0, d: p0 - jnp.sum(s) * d, x0, delta)
        return tree_sub(new_params, params), MechanicState(
            base_optimizer_state=base_state, count=safe_increment(state.count), r=r, m=m, v=v,
            s=s, x0=x0)
    return GradientTransformationExtraArgs(init, update)
