"""``optax.second_order``: Hessian-vector products and diagonal curvature estimates.

``hvp`` multiplies a vector by the Hessian of a loss without forming it (forward-mode over
reverse-mode differentiation), ``hessian_diag`` takes the Hessian's diagonal one ``hvp``
per parameter, and ``fisher_diag`` the diagonal of the observed Fisher information, the
squared gradient. The loss is ``loss(params, inputs, targets)`` and vectors are flat over
the raveled parameters. optax deprecates these functions (for removal in optax 0.2.9), so
each call warns with a ``DeprecationWarning``, as optax's does.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import fungrad.numpy as jnp
from fungrad.flatten_util import ravel_pytree
from fungrad.transforms.api import grad, jvp, vmap

__all__ = ["fisher_diag", "hessian_diag", "hvp"]


def _warn_deprecated(name: str) -> None:
    warnings.warn(f"The function {name} is deprecated. This function will be/was removed in "
                  "optax 0.2.9.", category=DeprecationWarning, stacklevel=3)


def _ravel(p: Any) -> Any:
    return ravel_pytree(p)[0]


def _hvp(loss: Callable, v: Any, params: Any, inputs: Any, targets: Any) -> Any:
    _, unravel = ravel_pytree(params)
    return jvp(grad(lambda p: loss(p, inputs, targets)), [params], [unravel(v)])[1]


def hvp(loss: Callable[[Any, Any, Any], Any], v: Any, params: Any, inputs: Any,
        targets: Any) -> Any:
    """The product of the Hessian of ``loss`` at ``(params, inputs, targets)`` with ``v``,
    without forming the Hessian: the JVP of the gradient.

    Args:
        loss: the loss, ``loss(params, inputs, targets)``.
        v: a vector of the size of the raveled ``params``.
        params: the parameters (a tree).
        inputs: the inputs ``loss`` is evaluated at.
        targets: the targets ``loss`` is evaluated at.

    Returns:
        The product, a tree of ``params``' structure.

    Example:
        >>> import warnings
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import second_order
        >>> loss = lambda w, x, y: jnp.sum((w * x - y) ** 2)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     second_order.hvp(loss, jnp.ones(2), jnp.zeros(2), jnp.array([1.0, 3.0]), 0.0)
        Array([ 2., 18.], dtype=float32)
    """
    _warn_deprecated("hvp")
    return _hvp(loss, v, params, inputs, targets)


def hessian_diag(loss: Callable[[Any, Any, Any], Any], params: Any, inputs: Any,
                 targets: Any) -> Any:
    """The diagonal of the Hessian of ``loss`` at ``(params, inputs, targets)``, over the
    raveled parameters: one Hessian-vector product per basis vector (vmapped).

    Args:
        loss: the loss, ``loss(params, inputs, targets)``.
        params: the parameters (a tree).
        inputs: the inputs ``loss`` is evaluated at.
        targets: the targets ``loss`` is evaluated at.

    Returns:
        The diagonal, a vector of the size of the raveled ``params``.
    """
    _warn_deprecated("hessian_diag")
    vs = jnp.eye(_ravel(params).size)
    return vmap(lambda v: jnp.vdot(v, _ravel(_hvp(loss, v, params, inputs, targets))))(vs)


def fisher_diag(negative_log_likelihood: Callable[[Any, Any, Any], Any], params: Any,
                inputs: Any, targets: Any) -> Any:
    """The diagonal of the observed Fisher information at ``(params, inputs, targets)``:
    the squared gradient of the negative log-likelihood, over the raveled parameters.

    Args:
        negative_log_likelihood: ``negative_log_likelihood(params, inputs, targets)``.
        params: the parameters (a tree).
        inputs: the inputs it is evaluated at.
        targets: the targets it is evaluated at.

    Returns:
        The diagonal, a vector of the size of the raveled ``params``.
    """
    _warn_deprecated("fisher_diag")
    return jnp.square(_ravel(grad(negative_log_likelihood)(params, inputs, targets)))
