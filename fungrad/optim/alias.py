r"""Optimisers: each alias is a ``chain`` of atoms plus a docstring with its update rule.

Example::

    opt = optim.adamw(1e-3, weight_decay=0.1)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optim.apply_updates(params, updates)
"""
from __future__ import annotations

from typing import Any

from fungrad.optim import transform as T
from fungrad.optim._base import GradientTransformation, ScalarOrSchedule, chain, identity


def sgd(learning_rate: ScalarOrSchedule, momentum: float | None = None, nesterov: bool = False,
        accumulator_dtype: Any = None) -> GradientTransformation:
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    :math:`t \leftarrow g + \mu t`, :math:`\theta \leftarrow \theta - \eta t`
    (Nesterov: :math:`\theta \leftarrow \theta - \eta (g + \mu t)`).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> params = {"w": jnp.ones(2)}
        >>> opt = optim.sgd(0.1)
        >>> updates, state = opt.update({"w": jnp.array([1.0, -2.0])}, opt.init(params), params)
        >>> optim.apply_updates(params, updates)
        {'w': Array([0.9, 1.2], dtype=float32)}
    """
    momentum_step = (T.trace(momentum, nesterov, accumulator_dtype) if momentum is not None
                     else identity())
    return chain(momentum_step, T.scale_by_learning_rate(learning_rate))


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0, mu_dtype: Any = None, *,
         nesterov: bool = False) -> GradientTransformation:
    r"""Adam (Kingma & Ba, 2015):
    :math:`\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)`."""
    return chain(T.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 T.scale_by_learning_rate(learning_rate))


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, mu_dtype: Any = None, weight_decay: ScalarOrSchedule = 1e-4,
          mask: Any = None, *, nesterov: bool = False) -> GradientTransformation:
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    :math:`\theta \leftarrow \theta - \eta\,(\hat m / (\sqrt{\hat v} + \epsilon) + \lambda \theta)`;
    ``mask`` (a tree of bools or a function of params) limits the decay, e.g. to matrices.
    """
    return chain(T.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 T.add_decayed_weights(weight_decay, mask), T.scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: float | None = None, nesterov: bool = False,
            bias_correction: bool = False) -> GradientTransformation:
    r"""RMSProp (Tieleman & Hinton, 2012):
    :math:`\theta \leftarrow \theta - \eta\, g / \sqrt{v + \epsilon}`.

    ``centered`` divides by the running standard deviation instead of the RMS.
    """
    scaler = T.scale_by_stddev if centered else T.scale_by_rms
    return chain(scaler(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
                 T.scale_by_learning_rate(learning_rate),
                 T.trace(momentum, nesterov) if momentum is not None else identity())


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:
    r"""Adagrad (Duchi et al., 2011):
    :math:`\theta \leftarrow \theta - \eta\, g / \sqrt{\sum g^2 + \epsilon}`."""
    return chain(T.scale_by_rss(initial_accumulator_value, eps),
                 T.scale_by_learning_rate(learning_rate))


def lion(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.99, mu_dtype: Any = None,
         weight_decay: ScalarOrSchedule = 1e-3, mask: Any = None) -> GradientTransformation:
    r"""Lion (Chen et al., 2023): :math:`\theta \leftarrow \theta -
    \eta(\mathrm{sign}(\beta_1 m + (1-\beta_1) g) + \lambda\theta)`."""
    return chain(T.scale_by_lion(b1, b2, mu_dtype), T.add_decayed_weights(weight_decay, mask),
                 T.scale_by_learning_rate(learning_rate))


def lamb(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
         eps_root: float = 0.0, weight_decay: ScalarOrSchedule = 0.0, mask: Any = None
         ) -> GradientTransformation:
    r"""LAMB (You et al., 2020): Adam's update scaled per layer by :math:`\|\theta\| / \|u\|`."""
    return chain(T.scale_by_adam(b1, b2, eps, eps_root), T.add_decayed_weights(weight_decay, mask),
                 T.scale_by_trust_ratio(), T.scale_by_learning_rate(learning_rate))


def adafactor(learning_rate: ScalarOrSchedule | None = None, min_dim_size_to_factor: int = 128,
              decay_rate: float = 0.8, decay_offset: int = 0,
              multiply_by_parameter_scale: bool = True,
              clipping_threshold: float | None = 1.0, momentum: float | None = None,
              dtype_momentum: Any = "float32", weight_decay_rate: ScalarOrSchedule | None = None,
              eps: float = 1e-30, factored: bool = True, weight_decay_mask: Any = None
              ) -> GradientTransformation:
    r"""Adafactor (Shazeer & Stern, 2018): factored second moments for matrices (row and
    column averages instead of a full accumulator), update clipping and relative step sizes."""
    tx = [T.scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        tx.append(T.clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        tx.append(T.scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        tx.append(T.scale_by_param_block_rms())
    if momentum is not None:
        tx.append(T.ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        tx.append(T.add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    tx.append(T.scale(-1))
    return chain(*tx)
