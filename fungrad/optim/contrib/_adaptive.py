"""Adam's newer relatives, as optax.contrib's: ADOPT, AdEMAMix and its simplified form,
ACProp, and MADGRAD (dual averaging with a cube-root denominator).

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import fungrad.numpy as jnp
from fungrad import tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation, ScalarOrSchedule, chain,
                                 safe_increment, tree_cast, zeros_count)
from fungrad.optim.moments import ScaleByBeliefState
from fungrad.optim.transform import (ScaleByAdamState, _bias_correction, _moment,
                                     add_decayed_weights, scale_by_learning_rate)
from fungrad.optim.tree_utils import (tree_add_scale, tree_div, tree_mul, tree_sub,
                                      tree_update_moment_per_elem_norm, tree_zeros_like)

__all__ = [
    "scale_by_adopt", "adopt",
    "ScaleByAdemamixState", "scale_by_ademamix", "ademamix",
    "ScaleBySimplifiedAdEMAMixState", "scale_by_simplified_ademamix", "simplified_ademamix",
    "scale_by_acprop", "acprop",
    "MadgradState", "scale_by_madgrad", "madgrad",
]


# --------------------------------------------------------------------------- ADOPT

def scale_by_adopt(b1: float = 0.9, b2: float = 0.9999, eps: float = 1e-6, mu_dtype: Any = None,
                   *, nesterov: bool = False, use_clipping: bool = True,
                   clip_value_fn: Callable[[Any], Any] = lambda x: x ** 0.25
                   ) -> GradientTransformation:
    r"""ADOPT's rescaling: the momentum of :math:`g / \max(\sqrt{v_{t-1}}, \epsilon)` (clipped
    to :math:`\pm` ``clip_value_fn(count)``), normalised by the *previous* second moment;
    the state is Adam's."""
    def init(params):
        mu = tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        return ScaleByAdamState(count=zeros_count(), mu=mu, nu=tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        b2_ = jnp.where(state.count > 0, b2, 0)
        b1_ = jnp.where(state.count > 0, b1, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, b2_, 2)
        normalized = lambda g, n: g / jnp.maximum(jnp.sqrt(n), eps)
        if use_clipping:
            clip_value = clip_value_fn(state.count)
            mu_updates = tree.map(lambda g, n: jnp.clip(normalized(g, n), -clip_value, clip_value),
                                  updates, state.nu)
        else:
            mu_updates = tree.map(normalized, updates, state.nu)
        mu = _moment(mu_updates, state.mu, b1_, 1)
        updates = _moment(mu_updates, mu, b1_, 1) if nesterov else mu
        return updates, ScaleByAdamState(count=safe_increment(state.count),
                                         mu=tree_cast(mu, mu_dtype), nu=nu)
    return GradientTransformation(init, update)


def adopt(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.9999, eps: float = 1e-6,
          mu_dtype: Any = None, *, nesterov: bool = False, use_clipping: bool = True,
          clip_value_fn: Callable[[Any], Any] = lambda x: x ** 0.25) -> GradientTransformation:
    r"""ADOPT (Taniguchi et al., 2024): Adam that normalises the gradient by the second
    moment of the steps before it, converging for any :math:`\beta_2`."""
    return chain(scale_by_adopt(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nesterov=nesterov,
                                use_clipping=use_clipping, clip_value_fn=clip_value_fn),
                 scale_by_learning_rate(learning_rate))


# --------------------------------------------------------------------------- AdEMAMix

class ScaleByAdemamixState(NamedTuple):
    """AdEMAMix's state: the step counts ``count`` and ``count_m2`` (for the schedules of
    ``b3`` and ``alpha``), the fast and slow momenta ``m1``, ``m2`` and the second moment
    ``nu``."""

    count: Any
    count_m2: Any
    m1: Any
    m2: Any
    nu: Any


def scale_by_ademamix(b1: float = 0.9, b2: float = 0.999, b3: ScalarOrSchedule = 0.9999,
                      alpha: ScalarOrSchedule = 6.0, eps: float = 1e-8, eps_root: float = 0.0,
                      mu_dtype: Any = None) -> GradientTransformation:
    r"""AdEMAMix's rescaling:
    :math:`(\hat m_1 + \alpha m_2) / (\sqrt{\hat v + \epsilon_{root}} + \epsilon)` with a
    slow, uncorrected momentum :math:`m_2` of decay ``b3``."""
    def init(params):
        zeros = lambda: tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        return ScaleByAdemamixState(count=zeros_count(), count_m2=zeros_count(), m1=zeros(),
                                    m2=zeros(), nu=zeros())

    def update(updates, state, params=None):
        c_b3 = b3(state.count_m2) if callable(b3) else b3
        c_alpha = alpha(state.count_m2) if callable(alpha) else alpha
        m1 = _moment(updates, state.m1, b1, 1)
        m2 = _moment(updates, state.m2, c_b3, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = safe_increment(state.count)
        m1_hat = _bias_correction(m1, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        updates = tree.map(lambda m1_, m2_, v: (m1_ + c_alpha * m2_) / (jnp.sqrt(v + eps_root)
                                                                        + eps),
                           m1_hat, m2, nu_hat)
        return updates, ScaleByAdemamixState(count=count,
                                             count_m2=safe_increment(state.count_m2),
                                             m1=m1, m2=m2, nu=nu)
    return GradientTransformation(init, update)


def ademamix(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
             b3: ScalarOrSchedule = 0.9999, alpha: ScalarOrSchedule = 5.0, eps: float = 1e-8,
             eps_root: float = 0.0, mu_dtype: Any = None, weight_decay: float = 0.0,
             mask: Any = None) -> GradientTransformation:
    r"""AdEMAMix (Pagliardini et al., 2024): Adam plus a slow momentum,
    :math:`\theta \leftarrow \theta - \eta((\hat m_1 + \alpha m_2) / (\sqrt{\hat v} +
    \epsilon) + \lambda\theta)`."""
    return chain(scale_by_ademamix(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root,
                                   mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """Simplified AdEMAMix's state: the step ``t``, the momentum sum ``m`` and the second
    moment ``n``."""

    t: Any
    m: Any
    n: Any


def _lerp(t: Any, a: Any, b: Any) -> Any:
    return tree_add_scale(a, t, tree_sub(b, a))


def scale_by_simplified_ademamix(b1: float = 0.99, b2: float = 0.95,
                                 alpha: ScalarOrSchedule = 0.0, eps: float = 1e-8,
                                 eps_root: float = 0.0) -> GradientTransformation:
    r"""Simplified AdEMAMix's rescaling: :math:`(m + \alpha g) / (\sqrt{\hat n} + \epsilon)`
    with the undamped momentum :math:`m \leftarrow \beta_1 m + g`."""
    def init(params):
        return ScaleBySimplifiedAdEMAMixState(t=jnp.array(0, jnp.int32),
                                              m=tree.map(jnp.zeros_like, params),
                                              n=tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        c_alpha = alpha(state.t) if callable(alpha) else alpha
        m = tree_add_scale(updates, b1, state.m)
        n = _lerp(b2, tree_mul(updates, updates), state.n)
        t = safe_increment(state.t)
        n_hat = _bias_correction(n, b2, t)
        u_den = tree.map(lambda v: jnp.sqrt(v + eps_root) + eps, n_hat)
        return (tree_div(tree_add_scale(m, c_alpha, updates), u_den),
                ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n))
    return GradientTransformation(init, update)


def simplified_ademamix(learning_rate: ScalarOrSchedule, b1: float = 0.99, b2: float = 0.95,
                        alpha: ScalarOrSchedule = 0.0, eps: float = 1e-8, eps_root: float = 0.0,
                        weight_decay: float = 0.0, mask: Any = None) -> GradientTransformation:
    """Simplified AdEMAMix (Morwani et al., 2024): ``scale_by_simplified_ademamix``, weight
    decay and the learning rate."""
    return chain(scale_by_simplified_ademamix(b1=b1, b2=b2, alpha=alpha, eps=eps,
                                              eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


# --------------------------------------------------------------------------- ACProp

def scale_by_acprop(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16,
                    eps_root: float = 1e-16) -> GradientTransformation:
    r"""ACProp's rescaling: the gradient divided by the *previous* step's bias-corrected
    second moment of the prediction error :math:`g - m` (AdaBelief's :math:`s`, plus
    ``eps_root``), :math:`u_t = g_t / (\sqrt{\hat s_{t-1}} + \epsilon)`, and :math:`g_1` at the
    first step; the state is AdaBelief's."""
    def init(params):
        return ScaleByBeliefState(count=zeros_count(), mu=tree_zeros_like(params),
                                  nu=tree_zeros_like(params))

    def update(updates, state, params=None):
        mu = _moment(updates, state.mu, b1, 1)
        prediction_error = tree_sub(updates, state.mu)
        nu = tree_update_moment_per_elem_norm(prediction_error, state.nu, b2, 2)
        nu = tree.map(lambda v: v + eps_root, nu)
        count_inc = safe_increment(state.count)
        initial = state.count == 0
        nu_hat = _bias_correction(state.nu, b2, jnp.where(initial, count_inc, state.count))
        nu_hat = tree.map(lambda v: jnp.where(initial, 1, v), nu_hat)
        updates = tree.map(lambda g, v: g / (jnp.sqrt(v) + eps), updates, nu_hat)
        return updates, ScaleByBeliefState(count=count_inc, mu=mu, nu=nu)
    return GradientTransformation(init, update)


def acprop(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-16, eps_root: float = 1e-16, weight_decay: float = 0.0,
           mask: Any = None) -> GradientTransformation:
    r"""ACProp (Zhuang et al., 2021, "Momentum Centering and Asynchronous Update for Adaptive
    Gradient Methods"): AdaBelief's centred second moment, used asynchronously (the step at
    :math:`t` is normalised by the moment of the steps before it), which makes it converge
    where Adam may not,

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1 - \beta_2)(g_t - m_{t-1})^2 + \bar\epsilon, \quad
        \theta \leftarrow \theta - \eta\,(g_t / (\sqrt{\hat s_{t-1}} + \epsilon)
        + \lambda\theta).

    Weight decay (on the leaves ``mask`` selects) is scaled by the learning rate.
    """
    return chain(scale_by_acprop(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


# --------------------------------------------------------------------------- MADGRAD

class MadgradState(NamedTuple):
    """MADGRAD's state: the step ``count``, the weighted sums of squared gradients
    ``grad_sum_sq`` and of gradients ``s``, and the initial parameters ``x0``."""

    count: Any
    grad_sum_sq: Any
    s: Any
    x0: Any


def scale_by_madgrad(learning_rate: ScalarOrSchedule, momentum: float = 0.9,
                     eps: float = 1e-6) -> GradientTransformation:
    r"""MADGRAD's step (the updates *are* the step, learning rate included): dual averaging
    :math:`z = x_0 - s / (\sqrt[3]{\sum \lambda g^2} + \epsilon)`, :math:`s = \sum \lambda g`,
    :math:`\lambda = (\eta + \epsilon)\sqrt{k + 1}`, then :math:`x \leftarrow (1 - \beta)z +
    \beta x`."""
    def init(params):
        return MadgradState(count=zeros_count(), grad_sum_sq=tree.map(jnp.zeros_like, params),
                            s=tree.map(jnp.zeros_like, params), x0=tree.map(lambda x: x, params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        count = state.count
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        lamb = (lr + eps) * jnp.sqrt(count + 1)
        grad_sum_sq = tree.map(lambda g_sq, g: g_sq + (lamb * g ** 2).astype(g.dtype),
                               state.grad_sum_sq, updates)
        s = tree.map(lambda s_val, g: s_val + (lamb * g).astype(g.dtype), state.s, updates)
        sigma = tree.map(lambda g_sq: jnp.cbrt(g_sq) + eps, grad_sum_sq)
        z = tree.map(lambda x0, s_val, sig: x0 - s_val / sig, state.x0, s, sigma)
        x_new = tree.map(lambda z_val, x: (1 - momentum) * z_val + momentum * x, z, params)
        return (tree.map(lambda n, o: n - o, x_new, params),
                MadgradState(count=safe_increment(count), grad_sum_sq=grad_sum_sq, s=s,
                             x0=state.x0))
    return GradientTransformation(init, update)


def madgrad(learning_rate: ScalarOrSchedule, momentum: float = 0.9, weight_decay: float = 0.0,
            eps: float = 1e-6) -> GradientTransformation:
    """MADGRAD (Defazio & Jelassi, 2021): weight decay added to the gradients, then
    ``scale_by_madgrad``."""
    return chain(add_decayed_weights(weight_decay),
                 scale_by_madgrad(learning_rate=learning_rate, momentum=momentum, eps=eps))
