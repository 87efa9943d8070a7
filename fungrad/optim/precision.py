"""Mixed precision: float32 master weights behind low-precision parameters.

``mixed_precision(inner, compute_dtype)`` wraps an optimiser so that the parameters the
model sees (forward and backward) are ``compute_dtype`` (bfloat16, float16) while the
optimiser works on float32 master weights kept in its state, as the mixed-precision
recipe of Micikevicius et al. (2018) and ``jmp`` do. Loss scaling, for float16, is
``nn.DynamicLossScale`` (``jmp.DynamicLossScale``'s rule).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import fungrad.numpy as jnp
from fungrad import tree
from fungrad.nn.params import DynamicLossScale, all_finite, cast_floating
from fungrad.optim._base import NO_PARAMS_MSG, GradientTransformation, apply_updates


class MixedPrecisionState(NamedTuple):
    """``mixed_precision``'s state: the master weights (``master_dtype``), the inner
    optimiser's state over them, and the loss scale (None without loss scaling)."""

    master: Any
    inner_state: Any
    loss_scale: DynamicLossScale | None


def mixed_precision(inner: GradientTransformation, compute_dtype: Any = "bfloat16", *,
                    master_dtype: Any = jnp.float32,
                    loss_scale: DynamicLossScale | None = None) -> GradientTransformation:
    """``inner`` applied to ``master_dtype`` master weights; the parameters it yields are
    those weights cast to ``compute_dtype``.

    ``init(params)`` keeps the floating leaves of ``params`` as master weights, cast to
    ``master_dtype``, and initialises ``inner`` on them. ``update(grads, state, params)``
    takes the gradients with respect to the ``compute_dtype`` parameters, casts them to
    ``master_dtype`` (and divides them by the loss scale), runs ``inner`` on the master
    weights and returns the updates that take ``params`` to the new master weights cast to
    ``compute_dtype``, so ``apply_updates(params, updates)`` gives the next parameters, in
    ``compute_dtype``. (Those updates are differences computed in ``master_dtype``: exact
    unless a parameter shrinks by more than ``2**16`` in one step.) The master weights
    follow the trajectory of ``inner`` on float32 parameters fed the upcast gradients,
    bit for bit.

    With ``loss_scale`` (an ``nn.DynamicLossScale``), multiply the loss by
    ``state.loss_scale.loss_scale`` before differentiating. A step whose unscaled
    gradients are not all finite changes nothing (zero updates; master weights and inner
    state kept) and divides the scale by its factor; ``period`` finite steps in a row
    multiply it.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import nn, optim
        >>> opt = optim.mixed_precision(optim.sgd(0.5), jnp.bfloat16)
        >>> master = {"w": jnp.array([1.0, 2.0])}
        >>> state = opt.init(master)
        >>> params = nn.cast_floating(master, jnp.bfloat16)   # what the model computes with
        >>> grads = fungrad.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        >>> updates, state = opt.update(grads, state, params)
        >>> params = optim.apply_updates(params, updates)
        >>> params["w"].dtype, state.master["w"].dtype
        (dtype(bfloat16), dtype('float32'))
    """
    def init(params: Any) -> MixedPrecisionState:
        master = cast_floating(params, master_dtype)
        return MixedPrecisionState(master, inner.init(master), loss_scale)

    def update(grads: Any, state: MixedPrecisionState, params: Any = None
               ) -> tuple[Any, MixedPrecisionState]:
        if params is None:
            raise ValueError(f"fungrad.optim.mixed_precision: {NO_PARAMS_MSG}")
        grads = cast_floating(grads, master_dtype)
        scale = state.loss_scale
        if scale is not None:
            grads = scale.unscale(grads)
        updates, inner_state = inner.update(grads, state.inner_state, state.master)
        master = apply_updates(state.master, updates)
        if scale is not None:
            finite = all_finite(grads)
            keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
            master = tree.map(keep, master, state.master)
            inner_state = tree.map(keep, inner_state, state.inner_state)
            scale = scale.adjust(finite)
        step = tree.map(lambda new, p: new.astype(master_dtype) - jnp.asarray(p).astype(
            master_dtype), cast_floating(master, compute_dtype), params)
        return step, MixedPrecisionState(master, inner_state, scale)
    return GradientTransformation(init, update)
