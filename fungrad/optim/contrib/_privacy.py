"""Differentially private training (Abadi et al., 2016), as optax.contrib's: per-example
gradients clipped, summed and noised (``differentially_private_aggregate``), and DP-SGD.

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's; the noise is ``fungrad.random``'s, bit-exact
with ``jax.random``, so the same key gives optax's steps.
"""
from __future__ import annotations

import warnings
from typing import Any, NamedTuple, Optional

from fungrad import random, tree
from fungrad.optim._base import GradientTransformation, ScalarOrSchedule, chain, identity
from fungrad.optim.steps import per_example_global_norm_clip
from fungrad.optim.transform import scale_by_learning_rate, trace

__all__ = ["DifferentiallyPrivateAggregateState", "differentially_private_aggregate", "dpsgd"]


class DifferentiallyPrivateAggregateState(NamedTuple):
    """``differentially_private_aggregate``'s state: the ``rng_key`` of the next noise."""

    rng_key: Any


def _dp_key(key: Any, seed: Optional[int]) -> Any:
    """The typed key to start from: ``key`` (a typed key or an integer seed), or the
    deprecated ``seed``, or key 0 with a warning when neither is given."""
    if seed is not None:
        if key is not None:
            raise ValueError("differentially_private_aggregate: only one of seed or key can be "
                             "specified")
        warnings.warn('differentially_private_aggregate: "seed" is deprecated, use "key"',
                      DeprecationWarning, stacklevel=3)
        key = seed
    if key is None:
        warnings.warn("differentially_private_aggregate: no key given, so the noise is drawn "
                      "from key 0; pass key= to choose it", stacklevel=3)
        key = 0
    return key if isinstance(key, random.PRNGKeyArray) else random.key(key)


def differentially_private_aggregate(l2_norm_clip: float, noise_multiplier: float,
                                     key: Any = None, *,
                                     seed: Optional[int] = None) -> GradientTransformation:
    r"""DP-SGD's aggregation: each example's gradient is clipped to global L2 norm
    ``l2_norm_clip`` :math:`C`, and their sum, plus Gaussian noise of standard deviation
    :math:`\sigma C` (``noise_multiplier`` :math:`\sigma`), is divided by the batch size,
    :math:`\tilde g = (\sum_i \mathrm{clip}_C(g_i) + N(0, \sigma^2 C^2 I)) / B`.

    The updates must be *per-example* gradients, with the batch on axis 0 of every leaf
    (``fungrad.vmap(fungrad.grad(loss))`` gives them), so this goes first in a chain; it
    does not combine with gradient accumulation (``MultiSteps``, ``apply_every``). ``key``
    is a typed key or an integer seed; ``seed`` is its deprecated name.
    """
    rng_key = _dp_key(key, seed)
    noise_std = l2_norm_clip * noise_multiplier

    def init(params):
        return DifferentiallyPrivateAggregateState(rng_key=rng_key)

    def update(updates, state, params=None):
        grads, treedef = tree.flatten(updates)
        batch_size = grads[0].shape[0]
        clipped, _ = per_example_global_norm_clip(grads, l2_norm_clip)
        keys = random.split(state.rng_key, len(grads) + 1)
        noised = [(g + noise_std * random.normal(k, g.shape, g.dtype)) / batch_size
                  for g, k in zip(clipped, keys[1:])]
        return (tree.unflatten(treedef, noised),
                DifferentiallyPrivateAggregateState(rng_key=keys[0]))
    return GradientTransformation(init, update)


def dpsgd(learning_rate: ScalarOrSchedule, l2_norm_clip: float, noise_multiplier: float,
          seed: int, momentum: Optional[float] = None,
          nesterov: bool = False) -> GradientTransformation:
    r"""DP-SGD (Abadi et al., 2016, "Deep Learning with Differential Privacy"): SGD (with
    momentum when ``momentum`` is given) on ``differentially_private_aggregate``'s clipped,
    noised mean of per-example gradients, whose privacy holds against an adversary who
    knows the training procedure and sees the parameters.

    The updates must be per-example gradients (batch on axis 0 of every leaf); ``seed``
    starts the noise.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> loss = lambda w, x: jnp.sum((w * x) ** 2)
        >>> xs = jnp.array([[1.0, 2.0], [3.0, 4.0], [0.5, 0.5]])
        >>> w = jnp.array([1.0, -1.0])
        >>> opt = optim.contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0)
        >>> per_example = fungrad.vmap(fungrad.grad(loss), in_axes=(None, 0))(w, xs)
        >>> updates, _ = opt.update(per_example, opt.init(w))
        >>> print(updates)
        [-0.0410... 0.0780...]
    """
    momentum_tx = identity() if momentum is None else trace(decay=momentum, nesterov=nesterov)
    return chain(differentially_private_aggregate(l2_norm_clip=l2_norm_clip,
                                                  noise_multiplier=noise_multiplier, key=seed),
                 momentum_tx, scale_by_learning_rate(learning_rate))
