"""Second-order optimisers, as optax.contrib's: Sophia (Adam-like steps preconditioned by a
clipped estimate of the Hessian's diagonal) and Hutchinson's estimator of that diagonal.
Both read the objective: pass ``update(..., obj_fn=loss_of_params)``.

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import fungrad.numpy as jnp
from fungrad import debug, lax, random, tree
from fungrad.optim._base import (GradientTransformation, GradientTransformationExtraArgs,
                                 ScalarOrSchedule, chain, safe_increment, tree_cast,
                                 with_extra_args_support, zeros_count)
from fungrad.optim.transform import (_bias_correction, _moment, add_decayed_weights,
                                     scale_by_learning_rate)
from fungrad.optim.tree_utils import (tree_dtype, tree_mul, tree_random_like, tree_size,
                                      tree_zeros_like)
from fungrad.transforms.api import grad, jvp

__all__ = ["HutchinsonState", "hutchinson_estimator_diag_hessian", "SophiaState", "sophia"]


class HutchinsonState(NamedTuple):
    """Hutchinson's estimator's state: the random ``key`` of the next probe."""

    key: Any


def hutchinson_estimator_diag_hessian(random_seed: Optional[Any] = None
                                      ) -> GradientTransformationExtraArgs:
    r"""Hutchinson's estimate of the Hessian's diagonal, :math:`z \odot (\nabla^2 f\, z)` for
    a Rademacher probe :math:`z` (unbiased, as :math:`E[z z^T] = I`, but noisy), one
    Hessian-vector product per step; it replaces the updates.

    Its ``update(updates, state, params, obj_fn=f)`` needs the parameters and the objective
    ``f(params) -> scalar``. ``random_seed`` is the first key (``PRNGKey(0)`` when None),
    split at every step.
    """
    def init(params):
        return HutchinsonState(key=random.PRNGKey(0) if random_seed is None else random_seed)

    def update(updates, state, params=None, obj_fn=None, **extra_args):
        if params is None:
            raise ValueError("hutchinson_estimator_diag_hessian: params must be provided to "
                             "its update function")
        if obj_fn is None:
            raise ValueError("hutchinson_estimator_diag_hessian: obj_fn must be provided to "
                             "its update function: update(..., obj_fn=loss_of_params)")
        key, subkey = random.split(state.key)
        probe = tree_random_like(subkey, params, random.rademacher, dtype=jnp.float32)
        probe = tree_cast(probe, tree_dtype(params, "lowest"))
        hvp = jvp(grad(obj_fn), (params,), (probe,))[1]
        return tree_mul(hvp, probe), HutchinsonState(key=key)
    return GradientTransformationExtraArgs(init, update)


class SophiaState(NamedTuple):
    """Sophia's state: the step ``count``, the momentum ``mu``, the moving average ``nu`` of
    the Hessian's diagonal and the state of the function estimating it."""

    count: Any
    mu: Any
    nu: Any
    hessian_fn_state: Any


def _print_win_rate(updates: Any, clip_threshold: float, count: Any, every: int) -> None:
    """Print, every ``every`` steps, the fraction of updates Sophia leaves unclipped."""
    not_clipped = sum(jnp.sum(jnp.abs(u) < clip_threshold) for u in tree.leaves(updates))
    win_rate = not_clipped / tree_size(updates)
    lax.cond(count % every == 0,
             lambda: debug.print("Sophia optimizer win rate: {}", win_rate), lambda: None)


def scale_by_sophia(b1: float = 0.965, b2: float = 0.99, eps: float = 1e-8,
                    gamma: float = 0.01, clip_threshold: Optional[float] = 1.0,
                    update_interval: int = 10,
                    hessian_diagonal_fn: GradientTransformation = (
                        hutchinson_estimator_diag_hessian()),
                    mu_dtype: Any = None, verbose: bool = False,
                    print_win_rate_every_n_steps: int = 0) -> GradientTransformationExtraArgs:
    r"""Sophia's rescaling: :math:`\mathrm{clip}(\hat m / \max(\gamma h, \epsilon),
    \pm\rho)` with :math:`h` the moving average (decay ``b2``) of ``hessian_diagonal_fn``'s
    estimate, refreshed every ``update_interval`` steps; its extra keyword arguments go to
    ``hessian_diagonal_fn`` (see ``sophia``)."""
    hessian_diagonal_fn = with_extra_args_support(hessian_diagonal_fn)

    def init(params):
        return SophiaState(count=zeros_count(), mu=tree_zeros_like(params, dtype=mu_dtype),
                           nu=tree_zeros_like(params),
                           hessian_fn_state=hessian_diagonal_fn.init(params))

    def update(updates, state, params=None, **hess_fn_kwargs):
        if params is None:
            raise ValueError("sophia: params must be provided to its update function")
        count_inc = safe_increment(state.count)
        grads = updates
        mu = _moment(updates, state.mu, b1, 1)
        mu_hat = _bias_correction(mu, b1, count_inc)
        updates = tree.map(lambda m, h: m / jnp.maximum(gamma * h, eps), mu_hat, state.nu)
        if clip_threshold is not None:
            if verbose:
                _print_win_rate(updates, clip_threshold, count_inc, print_win_rate_every_n_steps)
            updates = tree.map(lambda u: jnp.clip(u, -clip_threshold, clip_threshold), updates)

        def update_hessian_diag(hess_fn_state, nu):
            hessian_diag, hess_fn_state = hessian_diagonal_fn.update(
                grads, hess_fn_state, params=params, **hess_fn_kwargs)
            return hess_fn_state, _moment(hessian_diag, nu, b2, 1)

        hessian_fn_state, nu = lax.cond(state.count % update_interval == 0, update_hessian_diag,
                                        lambda h, n: (h, n), state.hessian_fn_state, state.nu)
        return updates, SophiaState(count=count_inc, mu=tree_cast(mu, mu_dtype), nu=nu,
                                    hessian_fn_state=hessian_fn_state)
    return GradientTransformationExtraArgs(init, update)


def sophia(learning_rate: ScalarOrSchedule, b1: float = 0.965, b2: float = 0.99,
           eps: float = 1e-8, weight_decay: float = 1e-4, weight_decay_mask: Any = None,
           gamma: float = 0.01, clip_threshold: Optional[float] = 1.0,
           update_interval: int = 10,
           hessian_diagonal_fn: GradientTransformation = hutchinson_estimator_diag_hessian(),
           mu_dtype: Any = None, verbose: bool = False,
           print_win_rate_every_n_steps: int = 0) -> GradientTransformationExtraArgs:
    r"""Sophia (Liu et al., 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for
    Language Model Pre-training"): momentum divided by a cheap, lagging estimate of the
    Hessian's diagonal, each coordinate clipped so a bad curvature estimate cannot blow up,

    .. math::
        \theta \leftarrow \theta - \eta\,(\mathrm{clip}(\hat m_t / \max(\gamma h_t,
        \epsilon), \pm\rho) + \lambda\theta),

    :math:`h` the moving average (decay ``b2``; ``b2 = 0.99`` every 10 steps is about 0.999
    per step) of ``hessian_diagonal_fn``'s estimate (Hutchinson's with Rademacher probes
    by default: Sophia-H), refreshed every ``update_interval`` steps; :math:`\rho` is
    ``clip_threshold``, :math:`\lambda` ``weight_decay`` (on the leaves
    ``weight_decay_mask`` selects).

    The keyword arguments of ``update`` after ``params`` go to ``hessian_diagonal_fn``:
    the default needs ``obj_fn``, the loss as a function of the parameters alone, e.g.
    ``update(grads, state, params, obj_fn=lambda p: loss(p, batch))``. With ``verbose``, the
    fraction of coordinates left unclipped (best between 0.1 and 0.5; raise ``gamma`` when
    it is low) is printed every ``print_win_rate_every_n_steps`` steps.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> f = lambda x: jnp.sum(x ** 4)
        >>> opt = optim.contrib.sophia(0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> for _ in range(3):
        ...     updates, state = opt.update(fungrad.grad(f)(params), state, params, obj_fn=f)
        ...     params = optim.apply_updates(params, updates)
        >>> print(jnp.round(params, 3))
        [0.7 1.7 2.7]
    """
    return chain(scale_by_sophia(b1=b1, b2=b2, eps=eps, gamma=gamma,
                                 clip_threshold=clip_threshold, update_interval=update_interval,
                                 hessian_diagonal_fn=hessian_diagonal_fn, mu_dtype=mu_dtype,
                                 verbose=verbose,
                                 print_win_rate_every_n_steps=print_win_rate_every_n_steps),
                 add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 scale_by_learning_rate(learning_rate))
