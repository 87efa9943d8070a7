"""Transformation atoms (as optax): ``scale_by_*``, ``add_decayed_weights``, ``trace``,
``ema``, ``clip*``, ``zero_nans``. Each state NamedTuple sits above the function that makes it."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, EmptyState, GradientTransformation,
                                 ScalarOrSchedule, global_norm, init_empty_state, safe_increment,
                                 tree_cast, zeros_count)
from fungrad.optim.combine import masked


def _abs_sq(x: Any) -> Any:
    return jnp.real(jnp.conj(x) * x) if jnp.iscomplexobj(x) else x * x


def _moment(updates, moments, decay, order):
    return tree.map(lambda g, t: (1 - decay) * (g ** order) + decay * t, updates, moments)


def _moment_sq(updates, moments, decay):
    return tree.map(lambda g, t: (1 - decay) * _abs_sq(g) + decay * t, updates, moments)


def _debiased_mu(mu, updates, b1, count, nesterov):
    """The bias-corrected first moment, or with ``nesterov`` the next step's blended with the
    current gradient (Nadam's), as optax computes both."""
    if not nesterov:
        return _bias_correction(mu, b1, count)
    return tree.map(lambda m, g: b1 * m + (1 - b1) * g,
                    _bias_correction(mu, b1, safe_increment(count)),
                    _bias_correction(updates, b1, count))


def _bias_correction(moment, decay, count):
    # a float power, as optax's (jitted there): an integer one's repeated products round apart
    correction = 1 - decay ** count.astype(float)
    return tree.map(lambda t: t / correction.astype(t.dtype), moment)


def scale(step_size: Any) -> GradientTransformation:
    """Multiply updates by a constant ``step_size``."""
    return GradientTransformation(
        init_empty_state,
        lambda u, state, params=None: (tree.map(lambda g: step_size * g, u), state))


class ScaleByScheduleState(NamedTuple):
    count: Any


def scale_by_schedule(step_size_fn: Callable) -> GradientTransformation:
    """Multiply updates by ``step_size_fn(count)``; count starts at 0."""
    def init(params):
        return ScaleByScheduleState(count=zeros_count())

    def update(updates, state, params=None):
        step = step_size_fn(state.count)
        updates = tree.map(lambda g: jnp.array(step, dtype=g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=safe_increment(state.count))
    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
                           ) -> GradientTransformation:
    """Scale by ``-learning_rate`` (a number or a schedule of the step count)."""
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: m * learning_rate(count))
    return scale(m * learning_rate)


class ScaleByAdamState(NamedTuple):
    """Adam's state: the step ``count`` and the first (``mu``) and second (``nu``) moments."""

    count: Any
    mu: Any
    nu: Any


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                  mu_dtype: Any = None, *, nesterov: bool = False) -> GradientTransformation:
    r"""Adam's rescaling: :math:`\hat m / (\sqrt{\hat v + \epsilon_{root}} + \epsilon)`.

    :math:`m, v` are exponential moving averages of the gradient and its square with
    decays ``b1``, ``b2``; hats denote bias correction by :math:`1 - \beta^t`.
    """
    def init(params):
        mu = tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        return ScaleByAdamState(count=zeros_count(), mu=mu, nu=tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        nu = _moment_sq(updates, state.nu, b2)
        count = safe_increment(state.count)
        mu_hat = _debiased_mu(mu, updates, b1, count, nesterov)
        nu_hat = _bias_correction(nu, b2, count)
        updates = tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        nu = tree.map(lambda n, old: n.astype(old.dtype), nu, state.nu)
        return updates, ScaleByAdamState(count=count, mu=tree_cast(mu, mu_dtype), nu=nu)
    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """RMSProp's state with bias correction: the step ``count`` and the second moment ``nu``."""

    count: Any
    nu: Any


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True, bias_correction: bool = False) -> GradientTransformation:
    """Divide by the root of a moving average of squared gradients (RMSProp)."""
    def init(params):
        nu = tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        return (ScaleByRmsWithCountState(zeros_count(), nu) if bias_correction
                else ScaleByRmsState(nu))

    def update(updates, state, params=None):
        nu = _moment_sq(updates, state.nu, decay)
        count = safe_increment(state.count) if bias_correction else None
        nu_hat = _bias_correction(nu, decay, count) if bias_correction else nu
        if eps_in_sqrt:
            scaling = tree.map(lambda n: lax.rsqrt(n + eps), nu_hat)
        else:
            scaling = tree.map(lambda n: 1 / (jnp.sqrt(n) + eps), nu_hat)
        updates = tree.map(lambda s, g: s * g, scaling, updates)
        new_state = ScaleByRmsWithCountState(count, nu) if bias_correction else ScaleByRmsState(nu)
        return updates, new_state
    return GradientTransformation(init, update)


class ScaleByRStdDevState(NamedTuple):
    """Centred RMSProp's state: the first (``mu``) and second (``nu``) moments."""

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """Centred RMSProp's state with bias correction: ``count``, ``mu`` and ``nu``."""

    count: Any
    mu: Any
    nu: Any


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                    eps_in_sqrt: bool = True,
                    bias_correction: bool = False) -> GradientTransformation:
    """Divide by a moving estimate of the gradient's standard deviation (centred RMSProp)."""
    def init(params):
        mu = tree.map(jnp.zeros_like, params)
        nu = tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        return (ScaleByRStdDevWithCountState(zeros_count(), mu, nu) if bias_correction
                else ScaleByRStdDevState(mu, nu))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, decay, 1)
        nu = _moment_sq(updates, state.nu, decay)
        count = safe_increment(state.count) if bias_correction else None
        mu_hat = _bias_correction(mu, decay, count) if bias_correction else mu
        nu_hat = _bias_correction(nu, decay, count) if bias_correction else nu
        if eps_in_sqrt:
            scaling = tree.map(lambda m, n: lax.rsqrt(n - _abs_sq(m) + eps), mu_hat, nu_hat)
        else:
            scaling = tree.map(lambda m, n: 1 / (jnp.sqrt(n - _abs_sq(m)) + eps), mu_hat, nu_hat)
        updates = tree.map(lambda s, g: s * g, scaling, updates)
        return updates, (ScaleByRStdDevWithCountState(count, mu, nu) if bias_correction
                         else ScaleByRStdDevState(mu, nu))
    return GradientTransformation(init, update)


class ScaleByRssState(NamedTuple):
    sum_of_squares: Any


def scale_by_rss(initial_accumulator_value: float = 0.1,
                 eps: float = 1e-7) -> GradientTransformation:
    """Divide by the root of the sum of all squared gradients so far (Adagrad)."""
    def init(params):
        return ScaleByRssState(tree.map(lambda p: jnp.full_like(p, initial_accumulator_value),
                                        params))

    def update(updates, state, params=None):
        sos = tree.map(lambda g, t: _abs_sq(g) + t, updates, state.sum_of_squares)
        inv = tree.map(lambda t: jnp.where(t > 0, lax.rsqrt(t + eps), 0.0), sos)
        return tree.map(lambda s, g: s * g, inv, updates), ScaleByRssState(sos)
    return GradientTransformation(init, update)


class ScaleByLionState(NamedTuple):
    """Lion's state: the step ``count`` and the momentum ``mu``."""

    count: Any
    mu: Any


def scale_by_lion(b1: float = 0.9, b2: float = 0.99,
                  mu_dtype: Any = None) -> GradientTransformation:
    """Lion: the sign of an interpolation of gradient and momentum."""
    def init(params):
        return ScaleByLionState(zeros_count(),
                                tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params))

    def update(updates, state, params=None):
        new_updates = tree.map(lambda g, m: jnp.sign((1.0 - b1) * g + b1 * m), updates, state.mu)
        mu = tree_cast(_moment(updates, state.mu, b2, 1), mu_dtype)
        return new_updates, ScaleByLionState(safe_increment(state.count), mu)
    return GradientTransformation(init, update)


def safe_norm(x: Any, min_norm: Any, ord: Union[int, float, str, None] = None,  # noqa: A002
              axis: Union[None, int, tuple[int, ...]] = None, keepdims: bool = False) -> Any:
    """``max(jnp.linalg.norm(x, ord, axis), min_norm)`` with a gradient of 0, not NaN, where
    the norm is at most ``min_norm``.

    ``jnp.maximum(jnp.linalg.norm(x), min_norm)`` differentiates both branches, and the
    norm's derivative at ``x = 0`` is NaN; here ``x`` is replaced by ones where its norm is
    at most ``min_norm`` before the norm is taken, so that branch stays finite.

    Args:
        x: the array.
        min_norm: the lower bound of the result.
        ord: the order of the norm, as ``jnp.linalg.norm``'s.
        axis: the axes reduced, as ``jnp.linalg.norm``'s (None: all of them).
        keepdims: keep the reduced axes with size one.

    Returns:
        The norm, at least ``min_norm``.

    Example:
        >>> import fungrad
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> fungrad.grad(lambda x: optim.safe_norm(x, 1e-6))(jnp.zeros(2))
        Array([0., 0.], dtype=float32)
    """
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    x = jnp.where(norm <= min_norm, jnp.ones_like(x), x)
    norm = norm if keepdims else jnp.squeeze(norm, axis=axis)
    masked_norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    return jnp.where(norm <= min_norm, min_norm, masked_norm)


def scale_by_trust_ratio(min_norm: float = 0.0, trust_coefficient: float = 1.0,
                         eps: float = 0.0) -> GradientTransformation:
    """Scale each update by ``||param|| / ||update||`` (LARS/LAMB)."""
    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)

        def one(u, p):
            p_norm, u_norm = safe_norm(p, min_norm), safe_norm(u, min_norm)
            ratio = trust_coefficient * p_norm / (u_norm + eps)
            zero = jnp.logical_or(p_norm == 0.0, u_norm == 0.0)
            return u * jnp.where(zero, jnp.array(1.0, dtype=p.dtype), ratio)
        return tree.map(one, updates, params), state
    return GradientTransformation(init_empty_state, update)


def _safe_rms(x: Any, min_rms: float) -> Any:
    rms = jnp.sqrt(jnp.mean(_abs_sq(x)))
    x = jnp.where(rms <= min_rms, jnp.ones_like(x), x)
    return jnp.where(rms <= min_rms, min_rms, jnp.sqrt(jnp.mean(_abs_sq(x))))


def scale_by_param_block(measure: Callable, min_scale: float) -> GradientTransformation:
    """Scale each update by ``measure(param, min_scale)`` of its parameter block (the RMS
    here, the L2 norm in ``optim.steps``)."""
    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        return tree.map(lambda u, p: u * measure(p, min_scale), updates, params), state
    return GradientTransformation(init_empty_state, update)


def scale_by_param_block_rms(min_scale: float = 1e-3) -> GradientTransformation:
    """Scale each update by the root-mean-square of its parameter block."""
    return scale_by_param_block(_safe_rms, min_scale)


class WeightDecaySchedule(NamedTuple):
    count: Any


def add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0,
                        mask: Any = None) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (decoupled weight decay)."""
    def init(params):
        return WeightDecaySchedule(zeros_count()) if callable(weight_decay) else EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        new_state = (WeightDecaySchedule(safe_increment(state.count)) if callable(weight_decay)
                     else state)
        if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
            return updates, new_state
        s = weight_decay(state.count) if callable(weight_decay) else weight_decay
        return tree.map(lambda g, p: g + s * p, updates, params), new_state
    tx = GradientTransformation(init, update)
    if mask is not None:
        return masked(tx, mask)
    return tx


class TraceState(NamedTuple):
    trace: Any


def trace(decay: float, nesterov: bool = False,
          accumulator_dtype: Any = None) -> GradientTransformation:
    """Momentum: ``t = g + decay * t``; Nesterov uses ``g + decay * t`` as the update."""
    def init(params):
        return TraceState(tree.map(lambda p: jnp.zeros_like(p, dtype=accumulator_dtype), params))

    def update(updates, state, params=None):
        f = lambda g, t: g + decay * t
        new_trace = tree.map(f, updates, state.trace)
        updates = tree.map(f, updates, new_trace) if nesterov else new_trace
        return updates, TraceState(tree_cast(new_trace, accumulator_dtype))
    return GradientTransformation(init, update)


class EmaState(NamedTuple):
    """``ema``'s state: the step ``count`` and the moving average ``ema``."""

    count: Any
    ema: Any


def ema(decay: float, debias: bool = True, accumulator_dtype: Any = None) -> GradientTransformation:
    """Replace updates by their exponential moving average."""
    def init(params):
        return EmaState(zeros_count(),
                        tree.map(lambda p: jnp.zeros_like(p, dtype=accumulator_dtype), params))

    def update(updates, state, params=None):
        updates = new_ema = _moment(updates, state.ema, decay, 1)
        count = safe_increment(state.count)
        if debias:
            updates = _bias_correction(new_ema, decay, count)
        return updates, EmaState(count, tree_cast(new_ema, accumulator_dtype))
    return GradientTransformation(init, update)


def clip(max_delta: float) -> GradientTransformation:
    """Clip every update element into ``[-max_delta, max_delta]``."""
    return GradientTransformation(
        init_empty_state,
        lambda u, state, params=None: (
            tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), u), state))


def clip_by_block_rms(threshold: float) -> GradientTransformation:
    """Divide each block by ``max(1, rms(block) / threshold)``."""
    def one(u):
        return u / jnp.maximum(1.0, jnp.sqrt(jnp.mean(_abs_sq(u))) / threshold)
    return GradientTransformation(init_empty_state,
                                  lambda u, state, params=None: (tree.map(one, u), state))


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so their global L2 norm is at most ``max_norm``."""
    def update(updates, state, params=None):
        g_norm = global_norm(updates)
        trigger = g_norm < max_norm
        return tree.map(lambda t: lax.select(trigger, t, (t / g_norm.astype(t.dtype)) * max_norm),
                        updates), state
    return GradientTransformation(init_empty_state, update)


class ZeroNansState(NamedTuple):
    found_nan: Any


def zero_nans() -> GradientTransformation:
    """Replace NaNs in the updates by zeros, and record per leaf whether any were found."""
    def init(params):
        return ZeroNansState(tree.map(lambda p: jnp.array(False), params))

    def update(updates, state, params=None):
        found = tree.map(lambda g: jnp.any(jnp.isnan(g)), updates)
        updates = tree.map(lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates)
        return updates, ZeroNansState(found)
    return GradientTransformation(init, update)


class FactoredState(NamedTuple):
    """Adafactor's state: the step ``count``, the factored second moments of matrices
    (``v_row``, ``v_col``) and the full one of other leaves (``v``)."""

    count: Any
    v_row: Any
    v_col: Any
    v: Any


def _factored_dims(shape: tuple, factored: bool, min_dim: int) -> Optional[tuple[int, int]]:
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim:
        return None
    return int(order[-2]), int(order[-1])


def scale_by_factored_rms(factored: bool = True, decay_rate: float = 0.8, step_offset: int = 0,
                          min_dim_size_to_factor: int = 128, epsilon: float = 1e-30
                          ) -> GradientTransformation:
    """Adafactor's second-moment estimate: row and column averages for large matrices."""
    def decay_rate_t(step):
        t = (step - step_offset + 1).astype(jnp.float32)
        return 1.0 - t ** (-decay_rate)

    def init(params):
        def parts(p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            small = jnp.zeros((1,), dtype=p.dtype)
            if dims is None:
                return small, small, jnp.zeros_like(p)
            d1, d0 = dims
            return (jnp.zeros(np.delete(p.shape, d0), p.dtype),
                    jnp.zeros(np.delete(p.shape, d1), p.dtype), small)
        leaves, treedef = tree.flatten(params)
        rows, cols, vs = zip(*[parts(p) for p in leaves]) if leaves else ((), (), ())
        return FactoredState(zeros_count(), tree.unflatten(treedef, rows),
                             tree.unflatten(treedef, cols), tree.unflatten(treedef, vs))

    def update(grads, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        rate = decay_rate_t(state.count)

        def one(g, v_row, v_col, v, p):
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            small = jnp.zeros((1,), dtype=p.dtype)
            g_sq = _abs_sq(g) + epsilon
            if dims is None:
                new_v = (rate * v + (1.0 - rate) * g_sq).astype(p.dtype)
                return g * new_v ** -0.5, small, small, new_v
            d1, d0 = dims
            new_row = (rate * v_row + (1.0 - rate) * jnp.mean(g_sq, axis=d0)).astype(p.dtype)
            new_col = (rate * v_col + (1.0 - rate) * jnp.mean(g_sq, axis=d1)).astype(p.dtype)
            reduced_d1 = d1 - 1 if d1 > d0 else d1
            row_factor = (new_row / jnp.mean(new_row, axis=reduced_d1, keepdims=True)) ** -0.5
            col_factor = new_col ** -0.5
            upd = g * jnp.expand_dims(row_factor, axis=d0) * jnp.expand_dims(col_factor, axis=d1)
            return upd, new_row, new_col, small
        g_leaves, treedef = tree.flatten(grads)
        outs = [one(*a) for a in zip(g_leaves, tree.leaves(state.v_row), tree.leaves(state.v_col),
                                     tree.leaves(state.v), tree.leaves(params))]
        col = lambda i: tree.unflatten(treedef, [o[i] for o in outs])
        return col(0), FactoredState(safe_increment(state.count), col(1), col(2), col(3))
    return GradientTransformation(init, update)
