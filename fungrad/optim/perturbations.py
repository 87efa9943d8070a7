r"""``optax.perturbations``: differentiable approximations of functions by random perturbation.

``make_perturbed_fun(f)`` returns a Monte-Carlo estimate of the smoothed function
:math:`f_\sigma(x) = \mathbb{E}_{z \sim \mu} f(x + \sigma z)` (Berthet et al., 2020) whose
derivatives of every order are unbiased estimates of :math:`f_\sigma`'s, though they use
only values of :math:`f`, which need not be differentiable (an argmax, a sort, a
combinatorial solver). The noise :math:`\mu` is ``Gumbel`` or ``Normal``. Draws use
``fungrad.random``, bit for bit jax.random's, so the same key gives optax's estimate.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad import tree as _tree
from fungrad.optim.tree_utils import tree_add_scale, tree_random_like, tree_scale, tree_sum
from fungrad.transforms.api import vmap

__all__ = ["Gumbel", "Normal", "make_perturbed_fun"]


class Normal:
    """The standard normal distribution, as the noise of ``make_perturbed_fun``."""

    def sample(self, key: Any, sample_shape: Sequence[int] = (), dtype: Any = float) -> Any:
        """Samples of shape ``sample_shape``, drawn with ``key``."""
        return random.normal(key, sample_shape, dtype)

    def log_prob(self, inputs: Any) -> Any:
        """The log density, up to a constant: ``-inputs ** 2 / 2``."""
        return -0.5 * inputs ** 2


class Gumbel:
    """The standard Gumbel distribution, as the noise of ``make_perturbed_fun`` (its
    perturbed argmax is a softmax)."""

    def sample(self, key: Any, sample_shape: Sequence[int] = (), dtype: Any = float) -> Any:
        """Samples of shape ``sample_shape``, drawn with ``key``."""
        return random.gumbel(key, sample_shape, dtype)

    def log_prob(self, inputs: Any) -> Any:
        """The log density: ``-inputs - exp(-inputs)``."""
        return -inputs - jnp.exp(-inputs)


def _magicbox(x: Any) -> Any:
    """1 in value, whose derivatives are those of ``exp(x)``: the DiCE operator (Foerster
    et al., 2018), which makes score-function gradients of every order come from autodiff."""
    return jnp.exp(x - lax.stop_gradient(x))


def make_perturbed_fun(fun: Callable[[Any], Any], num_samples: int = 1000, sigma: Any = 0.1,
                       noise: Any = Gumbel(), use_baseline: bool = True
                       ) -> Callable[[Any, Any], Any]:
    r"""A stochastic, differentiable approximation of ``fun``: the average of
    ``fun(x + sigma * z)`` over ``num_samples`` draws of ``z`` from ``noise``.

    The returned function's values and derivatives (of any order, through ``grad``) are
    unbiased estimates of those of :math:`f_\sigma(x) = \mathbb{E}_z f(x + \sigma z)`,
    computed as score-function (REINFORCE) estimates from values of ``fun`` only, so
    ``fun`` need not be differentiable.

    Args:
        fun: a function from a tree of arrays to a tree of arrays.
        num_samples: the number of perturbations averaged.
        sigma: the scale of the perturbations.
        noise: the distribution of ``z``: an object with ``sample(key, shape, dtype)`` and
            ``log_prob(z)``, as ``Gumbel()`` (the default) and ``Normal()``.
        use_baseline: subtract ``fun(x)`` as a control variate (less variance).

    Returns:
        The function ``(key, x) -> estimate``, of ``fun``'s output structure.

    Example:
        >>> import fungrad
        >>> import fungrad.numpy as jnp
        >>> from fungrad import random
        >>> from fungrad.optim.perturbations import make_perturbed_fun
        >>> f = lambda x: jnp.sum(jnp.maximum(x, 0.0))
        >>> fn = make_perturbed_fun(f, 1_000, 0.1)
        >>> print(jnp.round(fungrad.grad(fn, argnums=1)(random.key(0), jnp.zeros(3)), 2))
        [0.69 0.72 0.58]
    """
    def stoch_estimator(key: Any, x: Any, baseline: Any) -> Any:
        sample = tree_random_like(key, x, sampler=noise.sample)
        shifted = lax.stop_gradient(_tree.map(lambda x_, z: x_ + sigma * z, x, sample))
        # the noise again, now as a function of x: where its log-density's derivatives come from
        sample = _tree.map(lambda x_, y: (y - x_) / sigma, x, shifted)
        box = _magicbox(tree_sum(_tree.map(noise.log_prob, sample)))
        out = tree_scale(box, fun(shifted))
        return tree_add_scale(out, 1 - box, baseline) if use_baseline else out

    def mc_estimator(key: Any, x: Any) -> Any:
        baseline = fun(lax.stop_gradient(x)) if use_baseline else None
        out = vmap(stoch_estimator, in_axes=(0, None, None))(random.split(key, num_samples), x,
                                                             baseline)
        return _tree.map(lambda o: jnp.mean(o, axis=0), out)
    return mc_estimator
