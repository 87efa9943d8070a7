"""Transformations that wrap or steer others, and sign- and noise-based ones, as optax's."""
from __future__ import annotations

import logging
import warnings
from typing import Any, NamedTuple, Optional, Union

import fungrad.numpy as jnp
from fungrad import lax, random, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation, Params, ScalarOrSchedule,
                                 Updates, chain, global_norm, init_empty_state, safe_increment,
                                 zeros_count)
from fungrad.optim.transform import _abs_sq, ema, scale, scale_by_learning_rate

__all__ = [
    "scale_by_sign", "sign_sgd", "signum",
    "AddNoiseState", "add_noise", "noisy_sgd",
    "centralize", "adaptive_grad_clip", "keep_params_nonnegative", "normalize_by_update_norm",
    "ScaleByRpropState", "scale_by_rprop", "rprop",
    "ApplyIfFiniteState", "apply_if_finite", "skip_not_finite",
    "ApplyEvery", "apply_every",
    "LookaheadState", "LookaheadParams", "lookahead",
]


def scale_by_sign() -> GradientTransformation:
    """Replace every update element by its sign."""
    return GradientTransformation(
        init_empty_state, lambda updates, state, params=None: (tree.map(jnp.sign, updates), state))


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    r"""SignSGD (Bernstein et al., 2018): :math:`u_t = -\alpha_t\, \mathrm{sign}(g_t)`."""
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(learning_rate: ScalarOrSchedule, beta: float = 0.9,
           accumulator_dtype: Any = None) -> GradientTransformation:
    r"""Signum: the sign of a (not debiased) moving average of the gradients,
    :math:`m_t = \beta m_{t-1} + (1 - \beta) g_t`, :math:`u_t = -\alpha_t\, \mathrm{sign}(m_t)`."""
    return chain(ema(beta, debias=False, accumulator_dtype=accumulator_dtype), scale_by_sign(),
                 scale_by_learning_rate(learning_rate))


class AddNoiseState(NamedTuple):
    """``add_noise``'s state: the step ``count`` (for annealing) and the ``rng_key``."""

    count: Any
    rng_key: Any


def add_noise(eta: float, gamma: float, key: Any = None) -> GradientTransformation:
    r"""Add Gaussian noise of variance :math:`\eta / t^\gamma` at step :math:`t` (from 1)
    (Neelakantan et al., 2015). ``key`` is a typed key or an integer seed (0 when None)."""
    if key is None:
        warnings.warn("add_noise: no key given, so the noise is drawn from key 0; pass key= "
                      "to choose it", stacklevel=2)
        key = 0

    def init(params):
        rng_key = key if isinstance(key, random.PRNGKeyArray) else random.key(key)
        return AddNoiseState(count=zeros_count(), rng_key=rng_key)

    def update(updates, state, params=None):
        count_inc = safe_increment(state.count)
        standard_deviation = jnp.sqrt(eta / count_inc ** gamma)
        rng_key, sample_key = random.split(state.rng_key)
        treedef = tree.structure(updates)
        keys = tree.unflatten(treedef, random.split(sample_key, treedef.num_leaves))
        noise = tree.map(lambda g, k: random.normal(k, g.shape, g.dtype), updates, keys)
        updates = tree.map(lambda g, n: None if g is None else g + standard_deviation * n,
                           updates, noise, is_leaf=lambda x: x is None)
        return updates, AddNoiseState(count=count_inc, rng_key=rng_key)
    return GradientTransformation(init, update)


def noisy_sgd(learning_rate: ScalarOrSchedule, eta: float = 0.01, gamma: float = 0.55,
              key: Any = None) -> GradientTransformation:
    r"""SGD on noisy gradients: :math:`u_t = -\alpha_t (g_t + N(0, \eta / t^\gamma))`."""
    return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))


def _subtract_mean(g: Any) -> Any:
    if len(g.shape) > 1:
        return g - g.mean(tuple(range(1, len(g.shape))), keepdims=True)
    return g


def centralize() -> GradientTransformation:
    """Gradient centralisation: subtract from each update of two or more dimensions its
    mean over all axes but the first."""
    return GradientTransformation(
        init_empty_state,
        lambda updates, state, params=None: (tree.map(_subtract_mean, updates), state))


def unitwise_norm(x: Any, axis: Optional[Union[int, tuple[int, ...]]] = None) -> Any:
    """The L2 norm of each unit of ``x``, broadcast to ``x``'s shape: over ``axis``, or by
    rank (vectors whole, matrices and rank 3 over axis 0, conv kernels over all but the last),
    as ``adaptive_grad_clip`` measures units (``optax.transforms.unitwise_norm``)."""
    if axis is not None:
        squared_norm = jnp.sum(_abs_sq(x), axis=axis, keepdims=True)
    elif jnp.squeeze(x).ndim <= 1:
        squared_norm = jnp.sum(_abs_sq(x), keepdims=True)
    elif x.ndim in (2, 3):
        squared_norm = jnp.sum(_abs_sq(x), axis=0, keepdims=True)
    elif x.ndim == 4:
        squared_norm = jnp.sum(_abs_sq(x), axis=(0, 1, 2), keepdims=True)
    elif x.ndim == 5:
        squared_norm = jnp.sum(_abs_sq(x), axis=(0, 1, 2, 3), keepdims=True)
    else:
        raise ValueError(f"Expected parameter with shape in {1, 2, 3, 4, 5}, got {x.shape}. "
                         "Use axis parameter to specify reduction axes for other shapes.")
    return jnp.broadcast_to(jnp.sqrt(squared_norm), x.shape)


def unitwise_clip(g_norm: Any, max_norm: Any, grad: Any, div_eps: float = 1e-6) -> Any:
    """``grad`` where its unit norm ``g_norm`` is below ``max_norm``, else scaled down to
    ``max_norm`` (``optax.transforms.unitwise_clip``); the three arrays have one shape, and
    ``div_eps`` only guards the division."""
    for name, other in (("max_norm", max_norm), ("grad", grad)):
        if jnp.shape(other) != jnp.shape(g_norm):
            raise ValueError(f"unitwise_clip: {name} has shape {jnp.shape(other)}, g_norm "
                             f"{jnp.shape(g_norm)}; they must be equal")
    clipped_grad = grad * (max_norm / jnp.maximum(g_norm, div_eps))
    return jnp.where(g_norm < max_norm, grad, clipped_grad)


def adaptive_grad_clip(clipping: float, eps: float = 1e-3,
                       axis: Optional[Union[int, tuple[int, ...]]] = None
                       ) -> GradientTransformation:
    """Clip each unit's update to at most ``clipping * max(||param unit||, eps)``
    (Brock et al., 2021); ``axis`` picks the unit's axes (by rank when None)."""
    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        g_norm = tree.map(lambda x: unitwise_norm(x, axis=axis), updates)
        p_norm = tree.map(lambda x: unitwise_norm(x, axis=axis), params)
        max_norm = tree.map(lambda x: clipping * jnp.maximum(x, eps), p_norm)
        return tree.map(unitwise_clip, g_norm, max_norm, updates), state
    return GradientTransformation(init_empty_state, update)


def keep_params_nonnegative() -> GradientTransformation:
    """Change the updates so the parameters stay >= 0 (a negative parameter goes to 0);
    last in a chain."""
    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        updates = tree.map(lambda p, u: None if p is None else jnp.where((p + u) < 0.0, -p, u),
                           params, updates, is_leaf=lambda x: x is None)
        return updates, state
    return GradientTransformation(init_empty_state, update)


def normalize_by_update_norm(scale_factor: float = 1.0,
                             eps: float = 1e-6) -> GradientTransformation:
    """Divide the updates by ``(global_norm(updates) + eps) / scale_factor``."""
    def update(updates, state, params=None):
        g_norm = (global_norm(updates) + eps) / scale_factor
        return tree.map(lambda g: g / g_norm, updates), state
    return GradientTransformation(init_empty_state, update)


class ScaleByRpropState(NamedTuple):
    """Rprop's state: each element's ``step_sizes`` and the previous updates."""

    step_sizes: Any
    prev_updates: Any


def scale_by_rprop(learning_rate: float, eta_minus: float = 0.5, eta_plus: float = 1.2,
                   min_step_size: float = 1e-6,
                   max_step_size: float = 50.0) -> GradientTransformation:
    """Rprop's steps: each element moves by its own step size in the gradient's sign; the
    step grows by ``eta_plus`` while the sign holds and shrinks by ``eta_minus`` when it
    flips (that step is skipped), within ``[min_step_size, max_step_size]``."""
    def init(params):
        return ScaleByRpropState(tree.map(lambda p: jnp.full_like(p, learning_rate), params),
                                 tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        sign = tree.map(lambda g, prev_g: g * prev_g, updates, state.prev_updates)
        step_sizes = tree.map(
            lambda s, step_size: jnp.where(
                s == 0, step_size,
                jnp.clip(step_size * jnp.where(s > 0, eta_plus, eta_minus),
                         min=min_step_size, max=max_step_size)),
            sign, state.step_sizes)
        prev_updates = tree.map(
            lambda s, g, step_size: jnp.where(s < 0, jnp.zeros_like(g), step_size * jnp.sign(g)),
            sign, updates, step_sizes)
        updates = tree.map(lambda s, g, prev_g: jnp.where(s < 0, jnp.zeros_like(prev_g), prev_g),
                           sign, prev_updates, state.prev_updates)
        return updates, ScaleByRpropState(step_sizes, prev_updates)
    return GradientTransformation(init, update)


def rprop(learning_rate: float, eta_minus: float = 0.5, eta_plus: float = 1.2,
          min_step_size: float = 1e-6, max_step_size: float = 50.0) -> GradientTransformation:
    """Rprop (Riedmiller & Braun, 1993): ``scale_by_rprop`` steps against the gradient."""
    return chain(scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size,
                                max_step_size),
                 scale(-1.0))


class ApplyIfFiniteState(NamedTuple):
    """``apply_if_finite``'s state: consecutive (``notfinite_count``) and total
    (``total_notfinite``) steps with an inf or NaN, whether the last was finite, and the
    inner state."""

    notfinite_count: Any
    last_finite: Any
    total_notfinite: Any
    inner_state: Any


def apply_if_finite(inner: GradientTransformation,
                    max_consecutive_errors: int) -> GradientTransformation:
    """Skip (zero updates, inner state kept) the steps whose updates hold an inf or NaN,
    unless more than ``max_consecutive_errors`` came in a row."""
    def init(params):
        return ApplyIfFiniteState(notfinite_count=zeros_count(),
                                  last_finite=jnp.array(True, jnp.bool_),
                                  total_notfinite=zeros_count(), inner_state=inner.init(params))

    def update(updates, state, params=None):
        inner_state = state.inner_state
        isfinite = jnp.all(jnp.array([jnp.all(jnp.isfinite(p)) for p in tree.leaves(updates)]))
        notfinite_count = jnp.where(isfinite, zeros_count(),
                                    safe_increment(state.notfinite_count))
        updates, new_inner_state = lax.cond(
            jnp.logical_or(isfinite, notfinite_count > max_consecutive_errors),
            lambda _: inner.update(updates, inner_state, params),
            lambda _: (tree.map(jnp.zeros_like, updates), inner_state), None)
        total_notfinite = jnp.where(isfinite, state.total_notfinite,
                                    safe_increment(state.total_notfinite))
        return updates, ApplyIfFiniteState(notfinite_count=notfinite_count, last_finite=isfinite,
                                           total_notfinite=total_notfinite,
                                           inner_state=new_inner_state)
    return GradientTransformation(init, update)


def skip_not_finite(updates: Updates, gradient_step: Any,
                    params: Optional[Params]) -> tuple[Any, dict[str, Any]]:
    """Whether ``updates`` hold an inf or NaN, and ``{"should_skip", "num_not_finite"}``:
    optax's ``should_skip_update_fn`` for skipping such steps."""
    all_is_finite = [jnp.sum(jnp.logical_not(jnp.isfinite(p))) for p in tree.leaves(updates)]
    num_not_finite = jnp.sum(jnp.array(all_is_finite))
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


class ApplyEvery(NamedTuple):
    """``apply_every``'s state: the call ``count`` (modulo k) and the summed ``grad_acc``."""

    count: Any
    grad_acc: Any


def apply_every(k: int = 1) -> GradientTransformation:
    """Sum the updates and emit the sum every ``k`` calls (zeros in between); unlike
    ``MultiSteps``, the transformations around it still update their states every call."""
    def init(params):
        return ApplyEvery(count=zeros_count(), grad_acc=tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        c = state.count % k
        acc = c != 0
        grad_acc = tree.map(lambda g, ga: acc * ga + g, updates, state.grad_acc)
        emit = c == (k - 1)
        updates = tree.map(lambda ga: emit * ga, grad_acc)
        return updates, ApplyEvery(count=safe_increment(state.count) % k, grad_acc=grad_acc)
    return GradientTransformation(init, update)


class LookaheadState(NamedTuple):
    """``lookahead``'s state: the fast optimiser's state and the fast steps since the last
    synchronisation."""

    fast_state: Any
    steps_since_sync: Any


class LookaheadParams(NamedTuple):
    """The ``fast`` parameters (take gradients there) and the ``slow`` ones (evaluate these)."""

    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params: Params) -> LookaheadParams:
        """Fast and slow parameters both equal to ``params``."""
        return cls(slow=params, fast=params)


def _lookahead_update(updates: Updates, sync_next: Any, params: LookaheadParams,
                      slow_step_size: float) -> LookaheadParams:
    """The fast step, merged with the move of the slow parameters towards the fast ones
    (and the reset of the fast ones to them) when ``sync_next``."""
    last_difference = tree.map(lambda f, u, s: f + u - s, params.fast, updates, params.slow)
    slow_updates = tree.map(lambda diff: slow_step_size * sync_next * diff, last_difference)
    fast_updates = tree.map(lambda up, diff: up - sync_next * (1 - slow_step_size) * diff,
                            updates, last_difference)
    return LookaheadParams(fast=fast_updates, slow=slow_updates)


def lookahead(fast_optimizer: GradientTransformation, sync_period: int, slow_step_size: float,
              reset_state: bool = False) -> GradientTransformation:
    """Lookahead (Zhang et al., 2019): ``sync_period`` steps of ``fast_optimizer``, then the
    slow parameters move ``slow_step_size`` of the way to the fast ones and the fast ones
    restart there (``reset_state`` also re-initialises the fast state). Parameters and
    updates are ``LookaheadParams``; gradients are taken at ``params.fast``."""
    if sync_period < 1:
        raise ValueError("Synchronization period must be >= 1.")

    def init(params):
        fast_params = getattr(params, "fast", None)
        if fast_params is None:
            logging.getLogger(__name__).warning(
                "`params` has no attribute `fast`. Continuing by assuming that only fast "
                "parameters were passed to lookahead init.")
            fast_params = params
        return LookaheadState(fast_state=fast_optimizer.init(fast_params),
                              steps_since_sync=zeros_count())

    def update(updates, state, params=None):
        updates, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast)
        sync_next = state.steps_since_sync == (sync_period - 1)
        updates = _lookahead_update(updates, sync_next, params, slow_step_size)
        if reset_state:
            fast_state = tree.map(lambda current, init: (1 - sync_next) * current
                                  + sync_next * init,
                                  fast_state, fast_optimizer.init(params.fast))
        steps_since_sync = (state.steps_since_sync + 1) % sync_period
        return updates, LookaheadState(fast_state, steps_since_sync)
    return GradientTransformation(init, update)
