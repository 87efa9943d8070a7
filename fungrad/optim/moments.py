"""More moment-based optimisers, as optax's: their ``scale_by_*`` atoms and aliases.

Each state NamedTuple sits above the function that makes it; the atoms that keep Adam's
``count``, ``mu`` and ``nu`` (Adamax, Yogi, RAdam) reuse ``ScaleByAdamState``, as optax.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation, ScalarOrSchedule, chain,
                                 identity, safe_increment, tree_cast, zeros_count)
from fungrad.optim.alias import adam, adamw
from fungrad.optim.transform import (ScaleByAdamState, _abs_sq, _bias_correction, _debiased_mu,
                                     _moment, _moment_sq, add_decayed_weights,
                                     scale_by_learning_rate)

__all__ = [
    "ScaleByAmsgradState", "scale_by_amsgrad", "amsgrad",
    "scale_by_adamax", "adamax", "adamaxw",
    "nadam", "nadamw",
    "scale_by_radam", "radam",
    "ScaleByBeliefState", "scale_by_belief", "adabelief",
    "scale_by_yogi", "yogi",
    "ScaleByAdaDeltaState", "scale_by_adadelta", "adadelta",
    "ScaleByNovogradState", "scale_by_novograd", "novograd",
    "ScaleByAdanState", "scale_by_adan", "adan",
]


def _adam_ratio(mu_hat, nu_hat, eps, eps_root):
    return tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)


def _zeros_state(params, dtype=None):
    return tree.map(lambda p: jnp.zeros_like(p, dtype=dtype), params)


class ScaleByAmsgradState(NamedTuple):
    """AMSGrad's state: ``count``, the moments ``mu`` and ``nu``, and the running max ``nu_max``."""

    count: Any
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                     eps_root: float = 0.0, mu_dtype: Any = None, bias_correction_mu: bool = True,
                     bias_correction_nu: bool = True) -> GradientTransformation:
    r"""AMSGrad's rescaling: Adam's, dividing by the running maximum of :math:`\hat v`."""
    def init(params):
        return ScaleByAmsgradState(zeros_count(), _zeros_state(params, mu_dtype),
                                   _zeros_state(params), _zeros_state(params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        nu = _moment_sq(updates, state.nu, b2)
        count = safe_increment(state.count)
        mu_hat = _bias_correction(mu, b1, count) if bias_correction_mu else mu
        nu_eff = _bias_correction(nu, b2, count) if bias_correction_nu else nu
        nu_max = tree.map(jnp.maximum, state.nu_max, nu_eff)
        updates = _adam_ratio(mu_hat, nu_max, eps, eps_root)
        return updates, ScaleByAmsgradState(count, tree_cast(mu, mu_dtype), nu, nu_max)
    return GradientTransformation(init, update)


def amsgrad(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
            bias_correction_mu: bool = True,
            bias_correction_nu: bool = True) -> GradientTransformation:
    r"""AMSGrad (Reddi et al., 2018): Adam with a non-decreasing second moment,
    :math:`\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\max_{s \le t} \hat v_s}
    + \epsilon)`."""
    return chain(scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu,
                                  bias_correction_nu),
                 scale_by_learning_rate(learning_rate))


def scale_by_adamax(b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-8) -> GradientTransformation:
    r"""Adamax's rescaling: :math:`\hat m / u` with :math:`u = \max(|g| + \epsilon, \beta_2 u)`."""
    def init(params):
        return ScaleByAdamState(zeros_count(), _zeros_state(params), _zeros_state(params))

    def update(updates, state, params=None):
        count = safe_increment(state.count)
        mu = _moment(updates, state.mu, b1, 1)
        nu = tree.map(lambda g, t: jnp.maximum(jnp.abs(g) + eps, b2 * t), updates, state.nu)
        mu_hat = _bias_correction(mu, b1, count)
        return tree.map(lambda m, v: m / v, mu_hat, nu), ScaleByAdamState(count, mu, nu)
    return GradientTransformation(init, update)


def adamax(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8) -> GradientTransformation:
    r"""Adamax (Kingma & Ba, 2015): Adam with the infinity norm in place of the RMS."""
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamaxw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, weight_decay: ScalarOrSchedule = 1e-4,
            mask: Any = None) -> GradientTransformation:
    r"""AdamaxW: Adamax with decoupled weight decay
    :math:`\theta \leftarrow \theta - \eta\,(\hat m / u + \lambda \theta)`."""
    return chain(scale_by_adamax(b1, b2, eps), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def nadam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0,
          mu_dtype: Any = None) -> GradientTransformation:
    r"""NAdam (Dozat, 2016): Adam with Nesterov momentum, ``adam(..., nesterov=True)``."""
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True)


def nadamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Any = None,
           weight_decay: ScalarOrSchedule = 1e-4, mask: Any = None) -> GradientTransformation:
    r"""NAdamW: NAdam with decoupled weight decay, ``adamw(..., nesterov=True)``."""
    return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
                 nesterov=True)


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                   threshold: float = 5.0, *, nesterov: bool = False) -> GradientTransformation:
    r"""Rectified Adam's rescaling: Adam's scaled by the variance rectification :math:`r_t`
    once the SMA length :math:`\rho_t` reaches ``threshold``, plain :math:`\hat m` before."""
    ro_inf = 2.0 / (1.0 - b2) - 1.0

    def init(params):
        return ScaleByAdamState(zeros_count(), _zeros_state(params), _zeros_state(params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        nu = _moment_sq(updates, state.nu, b2)
        count = safe_increment(state.count)
        b2t = b2 ** count
        ro = ro_inf - 2 * count * b2t / (1 - b2t)
        mu_hat = _debiased_mu(mu, updates, b1, count, nesterov)
        nu_hat = _bias_correction(nu, b2, count)
        r = jnp.sqrt((ro - 4.0) * (ro - 2.0) * ro_inf
                     / ((ro_inf - 4.0) * (ro_inf - 2.0) * ro))
        rectified = tree.map(lambda m, v: r.astype(m.dtype) * m / (jnp.sqrt(v + eps_root) + eps),
                             mu_hat, nu_hat)
        updates = tree.map(lambda t, f: jnp.where(ro >= threshold, t, f), rectified, mu_hat)
        return updates, ScaleByAdamState(count, mu, nu)
    return GradientTransformation(init, update)


def radam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, threshold: float = 5.0, *,
          nesterov: bool = False) -> GradientTransformation:
    r"""RAdam (Liu et al., 2020): Adam whose adaptive step is rectified for its variance
    early in training, :math:`\theta \leftarrow \theta - \eta\, r_t \hat m / (\sqrt{\hat v} +
    \epsilon)`."""
    return chain(scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


class ScaleByBeliefState(NamedTuple):
    """AdaBelief's state: ``count``, the first moment ``mu`` and the belief ``nu``."""

    count: Any
    mu: Any
    nu: Any


def scale_by_belief(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16,
                    eps_root: float = 1e-16, *, nesterov: bool = False) -> GradientTransformation:
    r"""AdaBelief's rescaling: Adam's with :math:`v` the moving average of
    :math:`(g - m)^2` (plus ``eps_root``) instead of :math:`g^2`."""
    def init(params):
        return ScaleByBeliefState(zeros_count(), _zeros_state(params), _zeros_state(params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        prediction_error = tree.map(lambda g, m: g - m, updates, mu)
        nu = _moment_sq(prediction_error, state.nu, b2)
        nu = tree.map(lambda v: v + eps_root, nu)
        count = safe_increment(state.count)
        mu_hat = _debiased_mu(mu, updates, b1, count, nesterov)
        nu_hat = _bias_correction(nu, b2, count)
        updates = tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        return updates, ScaleByBeliefState(count, mu, nu)
    return GradientTransformation(init, update)


def adabelief(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-16, eps_root: float = 1e-16, *,
              nesterov: bool = False) -> GradientTransformation:
    r"""AdaBelief (Zhuang et al., 2020): steps scaled by the belief in the gradient,
    :math:`\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat s} + \epsilon)`."""
    return chain(scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def scale_by_yogi(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3, eps_root: float = 0.0,
                  initial_accumulator_value: float = 1e-6) -> GradientTransformation:
    r"""Yogi's rescaling: Adam's with the additive second moment
    :math:`v \leftarrow v - (1 - \beta_2)\,\mathrm{sign}(v - g^2)\, g^2`."""
    def init(params):
        full = lambda p: jnp.full_like(p, initial_accumulator_value)
        return ScaleByAdamState(zeros_count(), tree.map(full, params), tree.map(full, params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        nu = tree.map(lambda g, v: v - (1 - b2) * jnp.sign(v - _abs_sq(g)) * _abs_sq(g),
                      updates, state.nu)
        count = safe_increment(state.count)
        updates = _adam_ratio(_bias_correction(mu, b1, count), _bias_correction(nu, b2, count),
                              eps, eps_root)
        return updates, ScaleByAdamState(count, mu, nu)
    return GradientTransformation(init, update)


def yogi(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-3) -> GradientTransformation:
    r"""Yogi (Zaheer et al., 2018): Adam whose second moment changes additively, so the
    effective learning rate cannot grow suddenly."""
    return chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(learning_rate))


class ScaleByAdaDeltaState(NamedTuple):
    """Adadelta's state: moving averages of squared gradients (``e_g``) and updates (``e_x``)."""

    e_g: Any
    e_x: Any


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    r"""Adadelta's rescaling:
    :math:`g\,\sqrt{E[\Delta x^2] + \epsilon} / \sqrt{E[g^2] + \epsilon}`."""
    def init(params):
        return ScaleByAdaDeltaState(_zeros_state(params), _zeros_state(params))

    def update(updates, state, params=None):
        e_g = _moment(updates, state.e_g, rho, 2)
        updates = tree.map(lambda g, cur_e_g, prev_e_x:
                           (jnp.sqrt(prev_e_x + eps) / jnp.sqrt(cur_e_g + eps)) * g,
                           updates, e_g, state.e_x)
        e_x = _moment(updates, state.e_x, rho, 2)
        return updates, ScaleByAdaDeltaState(e_g, e_x)
    return GradientTransformation(init, update)


def adadelta(learning_rate: ScalarOrSchedule | None = None, rho: float = 0.9, eps: float = 1e-6,
             weight_decay: ScalarOrSchedule = 0.0,
             weight_decay_mask: Any = None) -> GradientTransformation:
    r"""Adadelta (Zeiler, 2012): Adagrad with moving averages in place of sums, and a unit
    step from the ratio of update and gradient RMS; ``learning_rate=None`` leaves it unscaled."""
    return chain(add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 scale_by_adadelta(rho, eps),
                 scale_by_learning_rate(learning_rate) if learning_rate is not None
                 else identity())


class ScaleByNovogradState(NamedTuple):
    """NovoGrad's state: ``count``, the momentum ``mu`` and per-leaf second moments ``nu``."""

    count: Any
    mu: Any
    nu: Any


def scale_by_novograd(b1: float = 0.9, b2: float = 0.25, eps: float = 1e-8, eps_root: float = 0.0,
                      weight_decay: float = 0.0, mu_dtype: Any = None) -> GradientTransformation:
    r"""NovoGrad's rescaling: each leaf's gradient divided by the root of a moving average
    of its squared norm, plus ``weight_decay * params``, accumulated as momentum."""
    def init(params):
        nu = tree.map(lambda p: jnp.asarray(0.0, dtype=p.dtype), params)
        return ScaleByNovogradState(zeros_count(), _zeros_state(params, mu_dtype), nu)

    def nu_addition(g):
        return jnp.linalg.norm(g) ** 2

    def mu_addition(g, p, nu):
        return g / (jnp.sqrt(nu + eps_root) + eps) + weight_decay * p

    def init_nu(grads, nu):
        return tree.map(lambda g, n: nu_addition(g).astype(n.dtype), grads, nu)

    def update_nu(grads, nu):
        return _moment(tree.map(nu_addition, grads), nu, b2, 1)

    def init_mu(grads, params, mu, nu):
        return tree.map(mu_addition, grads, params, nu)

    def update_mu(grads, params, mu, nu):
        return tree.map(lambda m, u: b1 * m + u, mu, tree.map(mu_addition, grads, params, nu))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        count = safe_increment(state.count)
        nu = lax.cond(count == 1, init_nu, update_nu, updates, state.nu)
        mu = lax.cond(count == 1, init_mu, update_mu, updates, params, state.mu, nu)
        mu = tree_cast(mu, mu_dtype)
        return mu, ScaleByNovogradState(count, mu, nu)
    return GradientTransformation(init, update)


def novograd(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.25,
             eps: float = 1e-6, eps_root: float = 0.0,
             weight_decay: float = 0.0) -> GradientTransformation:
    r"""NovoGrad (Ginsburg et al., 2019): layer-wise normalised gradients with momentum and
    weight decay."""
    return chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
                 scale_by_learning_rate(learning_rate))


class ScaleByAdanState(NamedTuple):
    """Adan's state: moving averages of the gradient (``m``), its difference (``v``) and the
    squared term (``n``), the previous gradient ``g`` and the step count ``t``."""

    m: Any
    v: Any
    n: Any
    g: Any
    t: Any


def scale_by_adan(b1: float = 0.98, b2: float = 0.92, b3: float = 0.99, eps: float = 1e-8,
                  eps_root: float = 0.0) -> GradientTransformation:
    r"""Adan's rescaling: :math:`(\hat m + (1 - \beta_2)\hat v) / (\sqrt{\hat n} + \epsilon)`,
    with :math:`v` the moving average of gradient differences (Nesterov momentum)."""
    def init(params):
        return ScaleByAdanState(_zeros_state(params), _zeros_state(params), _zeros_state(params),
                                _zeros_state(params), zeros_count())

    def update(updates, state, params=None):
        g = updates
        diff = tree.map(lambda x, prev: jnp.where(state.t == 0, jnp.zeros_like(x), x - prev),
                        g, state.g)
        m = _moment(g, state.m, b1, 1)
        v = _moment(diff, state.v, b2, 1)
        c = jnp.asarray(1 - b2)
        n = _moment_sq(tree.map(lambda x, d: x + c * d, g, diff), state.n, b3)
        t = safe_increment(state.t)
        u = tree.map(lambda mh, vh: mh + c * vh, _bias_correction(m, b1, t),
                     _bias_correction(v, b2, t))
        u = tree.map(lambda x, nh: x / (jnp.sqrt(nh + eps_root) + eps), u,
                     _bias_correction(n, b3, t))
        return u, ScaleByAdanState(m, v, n, g, t)
    return GradientTransformation(init, update)


def adan(learning_rate: ScalarOrSchedule, b1: float = 0.98, b2: float = 0.92, b3: float = 0.99,
         eps: float = 1e-8, eps_root: float = 1e-8, weight_decay: ScalarOrSchedule = 0.0,
         mask: Any = None) -> GradientTransformation:
    r"""Adan (Xie et al., 2022): adaptive Nesterov momentum from moving averages of the
    gradient, its difference and their squared combination, with decoupled weight decay."""
    return chain(scale_by_adan(b1, b2, b3, eps, eps_root), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
