"""Transformations around other optimisers, as optax.contrib's: SAM (sharpness-aware
minimisation: an adversarial optimiser's steps, then the outer optimiser's) with its
gradient ``normalize``, and ``split_real_and_imaginary`` for complex parameters.

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (EmptyState, GradientTransformation,
                                 GradientTransformationExtraArgs, apply_updates,
                                 init_empty_state)
from fungrad.optim.tree_utils import tree_norm

__all__ = ["NormalizeState", "normalize", "SAMState", "sam",
           "SplitRealAndImaginaryState", "split_real_and_imaginary"]


# --------------------------------------------------------------------------- SAM

NormalizeState = EmptyState


def normalize() -> GradientTransformation:
    r"""Divide the updates by their global L2 norm, :math:`g / \|g\|`: SAM's adversarial
    step is ``chain(normalize(), sgd(rho))``, a step of length :math:`\rho` uphill."""
    def update(updates, state, params=None):
        g_norm = tree_norm(updates)
        return tree.map(lambda g: g / g_norm, updates), state
    return GradientTransformation(init_empty_state, update)


class SAMState(NamedTuple):
    """SAM's state: the adversarial ``steps_since_sync``, the outer optimiser's
    ``opt_state``, the adversarial optimiser's ``adv_state``, and the outer parameters
    ``cache`` (None in opaque mode)."""

    steps_since_sync: Any
    opt_state: Any
    adv_state: Any
    cache: Any


def _pick(cond: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true`` where ``cond`` else ``if_false``, leaf-wise, as the arithmetic
    ``cond * a + (1 - cond) * b`` SAM uses."""
    return tree.map(lambda a, b: cond * a + (1 - cond) * b, if_true, if_false)


def _negate(t: Any) -> Any:
    return tree.map(lambda x: -x, t)


def sam(optimizer: GradientTransformation, adv_optimizer: GradientTransformation,
        sync_period: int = 2, reset_state: bool = True, opaque_mode: bool = False,
        batch_axis_name: Optional[str] = None) -> GradientTransformationExtraArgs:
    r"""SAM, sharpness-aware minimisation (Foret et al., 2021, "Sharpness-Aware Minimization
    for Efficiently Improving Generalization"): the gradient is taken at an adversarial
    point near the parameters, :math:`\theta \leftarrow \theta - \eta\,\nabla
    L(\theta + \rho\, \nabla L(\theta) / \|\nabla L(\theta)\|)`, which seeks flat minima.

    ``adv_optimizer`` takes ``sync_period - 1`` ascent steps (``chain(normalize(),
    sgd(rho))`` is the paper's), then ``optimizer`` steps the outer parameters with the
    gradient found there; ``reset_state`` restarts ``adv_optimizer`` after each outer step.
    By default every call to ``update`` is one of these steps and the adversarial ones show
    in the parameters; with ``opaque_mode`` one call does them all, calling
    ``update(..., grad_fn=g)`` with ``g(params, i)`` the gradient at adversarial step ``i``
    (needed when something besides the parameters, batch-norm statistics say, changes at
    every call), and ``batch_axis_name`` averages those gradients over that axis.

    Examples:
        >>> from fungrad import optim
        >>> rho = 0.1
        >>> opt = optim.contrib.sam(optim.sgd(0.01), optim.chain(optim.contrib.normalize(),
        ...                                                      optim.sgd(rho)))
    """
    if sync_period < 1:
        raise ValueError(f"sam: sync_period must be >= 1, got {sync_period}")

    def init(params):
        return SAMState(steps_since_sync=jnp.zeros((), jnp.int32), opt_state=optimizer.init(params),
                        adv_state=adv_optimizer.init(params),
                        cache=None if opaque_mode else params)

    def transparent_update(updates, state, params=None, *, grad_fn=None):
        first_step = state.steps_since_sync == 0
        last_step = state.steps_since_sync == sync_period - 1
        adv_updates, adv_state = adv_optimizer.update(updates, state.adv_state, params)
        adv_updates = _negate(adv_updates)
        opt_updates, opt_state = optimizer.update(updates, state.opt_state, state.cache)
        opt_updates = tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_updates)
        reset_to = adv_optimizer.init(params) if reset_state else state.adv_state
        return _pick(last_step, opt_updates, adv_updates), SAMState(
            steps_since_sync=(state.steps_since_sync + 1) % sync_period,
            opt_state=_pick(last_step, opt_state, state.opt_state),
            adv_state=_pick(last_step, reset_to, adv_state),
            cache=_pick(first_step, params, state.cache))

    def opaque_update(updates, state, params=None, *, grad_fn=None):
        if grad_fn is None:
            raise ValueError("sam: grad_fn must be provided when opaque_mode=True: "
                             "update(..., grad_fn=lambda params, i: grads)")
        adv_params, adv_updates, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(adv_updates, adv_state, adv_params)
            adv_params = apply_updates(adv_params, _negate(adv_updates))
            adv_updates = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_updates = lax.pmean(adv_updates, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        updates, opt_state = optimizer.update(adv_updates, state.opt_state, params)
        return updates, SAMState(steps_since_sync=jnp.zeros((), jnp.int32), opt_state=opt_state,
                                 adv_state=adv_state, cache=None)
    return GradientTransformationExtraArgs(init, opaque_update if opaque_mode
                                           else transparent_update)


# --------------------------------------------------------------------------- complex numbers

class SplitRealAndImaginaryArrays(NamedTuple):
    """The real and imaginary parts of a complex array, as two real arrays."""

    real: Any
    imaginary: Any


def _complex_to_real_pair(x: Any) -> Any:
    return SplitRealAndImaginaryArrays(x.real, x.imag) if jnp.iscomplexobj(x) else x


def _real_pair_to_complex(x: Any) -> Any:
    if isinstance(x, SplitRealAndImaginaryArrays):
        return x.real + x.imaginary * 1j
    return x


class SplitRealAndImaginaryState(NamedTuple):
    """``split_real_and_imaginary``'s state: the ``inner_state`` of the wrapped
    transformation."""

    inner_state: Any


def split_real_and_imaginary(inner: GradientTransformation) -> GradientTransformation:
    """Run ``inner`` on the real and imaginary parts of complex parameters and updates as
    two real ones, and merge its updates back into complex ones: an optimiser then treats a
    complex parameter as a pair of real parameters. Real leaves pass through unchanged.

    JAX's (and fungrad's) gradient of a real loss with respect to a complex parameter is the
    conjugate of the steepest-ascent direction: conjugate it before ``update``.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> opt = optim.contrib.split_real_and_imaginary(optim.sign_sgd(0.1))
        >>> params = jnp.array([1.0 + 2.0j])
        >>> updates, _ = opt.update(jnp.array([3.0 - 4.0j]), opt.init(params), params)
        >>> print(updates)
        [-0.1+0.1j]
    """
    def init(params):
        return SplitRealAndImaginaryState(inner.init(tree.map(_complex_to_real_pair, params)))

    def update(updates, state, params=None):
        updates, inner_state = inner.update(tree.map(_complex_to_real_pair, updates),
                                            state.inner_state,
                                            tree.map(_complex_to_real_pair, params))
        return (tree.map(_real_pair_to_complex, updates,
                         is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays)),
                SplitRealAndImaginaryState(inner_state))
    return GradientTransformation(init, update)
