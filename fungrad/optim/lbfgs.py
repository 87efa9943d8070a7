"""L-BFGS: a quasi-Newton direction from the last few differences of parameters and gradients.

``scale_by_lbfgs`` multiplies the updates by an approximation of the inverse Hessian kept as
``memory_size`` pairs of differences (Nocedal and Wright's two-loop recursion);
``lbfgs`` chains it with a step of -1 and, by default, the zoom line search, which finds the
step size and hands back the value and gradient at the new point for
``value_and_grad_from_state``. Names, defaults and numerics follow optax.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Union

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation,
                                 GradientTransformationExtraArgs, ScalarOrSchedule, Updates,
                                 chain, identity, safe_increment)
from fungrad.optim.linesearch import scale_by_zoom_linesearch
from fungrad.optim.transform import scale, scale_by_learning_rate
from fungrad.optim.tree_utils import (tree_add_scale, tree_cast_like, tree_norm, tree_real,
                                      tree_scale, tree_sub, tree_vdot, tree_zeros_like)

__all__ = ["ScaleByLBFGSState", "scale_by_lbfgs", "lbfgs"]


def _precondition_by_lbfgs(updates: Updates, diff_params_memory: Any, diff_updates_memory: Any,
                           weights_memory: Any, identity_scale: Any, memory_idx: Any) -> Updates:
    """``updates`` times the L-BFGS inverse Hessian: the two-loop recursion (Nocedal and
    Wright's Algorithm 7.4) over the memory, newest pair first, from ``memory_idx`` on."""
    memory_size = weights_memory.shape[0]
    indices = (memory_idx + jnp.arange(memory_size)) % memory_size

    def pair(idx):
        return tree.map(lambda x: x[idx], (diff_params_memory, diff_updates_memory))

    def right_product(vec, idx):
        dw, du = pair(idx)
        alpha = weights_memory[idx] * tree_real(tree_vdot(dw, vec))
        return tree_cast_like(tree_add_scale(vec, -alpha, du), vec), alpha

    def left_product(vec, idx_alpha):
        idx, alpha = idx_alpha
        dw, du = pair(idx)
        beta = weights_memory[idx] * tree_real(tree_vdot(du, vec))
        return tree_cast_like(tree_add_scale(vec, alpha - beta, dw), vec), beta

    vec, alphas = lax.scan(right_product, updates, indices, reverse=True)
    return lax.scan(left_product, tree_scale(identity_scale, vec), (indices, alphas))[0]


class ScaleByLBFGSState(NamedTuple):
    """The state of ``scale_by_lbfgs``: the step ``count``, the last ``params`` and
    ``updates``, and the memory: ``memory_size`` differences of parameters
    (``diff_params_memory``) and of updates (``diff_updates_memory``), stacked on a leading
    axis of each leaf, and their weights :math:`\\rho` (``weights_memory``)."""

    count: Any
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: Any


def scale_by_lbfgs(memory_size: int = 10,
                   scale_init_precond: bool = True) -> GradientTransformation:
    r"""Scale the updates by the L-BFGS approximation of the inverse Hessian.

    With :math:`\delta w_j = w_{j+1} - w_j` and :math:`\delta u_j = u_{j+1} - u_j` the
    differences of parameters and updates (gradients) of the last :math:`m` =
    ``memory_size`` steps, the direction is :math:`P_k u_k` with

    .. math::
        P_{k, j+1} = V_j^\top P_{k, j} V_j + \rho_j\, \delta w_j \delta w_j^\top, \quad
        V_j = I - \rho_j\, \delta u_j \delta w_j^\top, \quad
        \rho_j = 1 / \langle \delta u_j, \delta w_j \rangle

    for :math:`j = k - m, \dots, k - 1`, from :math:`P_{k, k-m} = \gamma_k I`:
    :math:`\gamma_k = \langle \delta w_{k-1}, \delta u_{k-1} \rangle / \|\delta u_{k-1}\|^2`
    with ``scale_init_precond``, else 1. At the first step :math:`\gamma_0 = \min(1,
    1 / \|u_0\|)`, so that the first step is at most of length 1. The product is computed
    with vector operations only (the two-loop recursion), never the matrix.

    The memory is updated before the product, so chained with a line search (see
    ``lbfgs``) it records only the steps actually taken. Needs ``params``.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> tx = optim.scale_by_lbfgs()
        >>> params = jnp.array([3.0, 4.0])
        >>> tx.update(params, tx.init(params), params)[0]  # first step: u / ||u||
        Array([0.6, 0.8], dtype=float32)

    References:
        Nocedal and Wright, Numerical Optimization, 1999, Algorithms 7.4 and 7.5;
        Liu and Nocedal, On the limited memory BFGS method for large scale optimization,
        1989.
    """
    if memory_size < 1:
        raise ValueError("memory_size must be >= 1")

    def init(params):
        # the memories stack their entries on a new leading axis, read at a traced index
        stacked_zeros = tree.map(lambda p: jnp.zeros((memory_size, *p.shape), p.dtype), params)
        return ScaleByLBFGSState(
            count=jnp.asarray(0, jnp.int32), params=tree_zeros_like(params),
            updates=tree_zeros_like(params), diff_params_memory=stacked_zeros,
            diff_updates_memory=stacked_zeros, weights_memory=jnp.zeros(memory_size))

    def identity_scale(count, updates, diff_params, diff_updates):
        """:math:`\\gamma_k` (see above)."""
        if not scale_init_precond:
            return 1.0
        numerator = tree_real(tree_vdot(diff_updates, diff_params))
        denominator = tree_norm(diff_updates, squared=True)
        gamma = jnp.where(denominator > 0.0, numerator / denominator, 1.0)
        first = jnp.minimum(1.0, 1.0 / tree_norm(lax.stop_gradient(updates)))
        return jnp.where(count > 0, gamma, first)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(f"scale_by_lbfgs: {NO_PARAMS_MSG}")
        memory_idx = state.count % memory_size
        prev_memory_idx = (state.count - 1) % memory_size
        diff_params = tree_sub(params, state.params)
        diff_updates = tree_sub(updates, state.updates)
        curvature = tree_real(tree_vdot(diff_updates, diff_params))
        weight = jnp.where(curvature == 0.0, 0.0, 1.0 / curvature)
        # no difference before the first step
        diff_params, diff_updates, weight = tree.map(
            lambda x: jnp.where(state.count > 0, x, jnp.zeros_like(x)),
            (diff_params, diff_updates, weight))
        diff_params_memory, diff_updates_memory, weights_memory = tree.map(
            lambda memory, x: memory.at[prev_memory_idx].set(x),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (diff_params, diff_updates, weight))
        precond_updates = _precondition_by_lbfgs(
            updates, diff_params_memory, diff_updates_memory, weights_memory,
            identity_scale(state.count, updates, diff_params, diff_updates), memory_idx)
        return precond_updates, ScaleByLBFGSState(
            count=safe_increment(state.count), params=params, updates=updates,
            diff_params_memory=diff_params_memory, diff_updates_memory=diff_updates_memory,
            weights_memory=weights_memory)
    return GradientTransformation(init, update)


def lbfgs(learning_rate: Optional[ScalarOrSchedule] = None, memory_size: int = 10,
          scale_init_precond: bool = True,
          linesearch: Optional[Union[GradientTransformationExtraArgs, GradientTransformation]]
          = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one"),
          ) -> GradientTransformationExtraArgs:
    r"""L-BFGS (Liu and Nocedal, 1989): the quasi-Newton step
    :math:`w_{k+1} = w_k - \eta_k P_k u_k`, with :math:`P_k u_k` from ``scale_by_lbfgs``
    (see there for :math:`P_k`) and the step size :math:`\eta_k` from ``linesearch``.

    The default line search is the zoom one, starting from a step of 1 (the natural step
    of a quasi-Newton method) for at most 20 evaluations; ``linesearch=None`` takes no line
    search, then ``learning_rate`` (a number or a schedule, default 1) sets the step size.
    With a line search, ``update`` takes the keywords ``value``, ``grad`` and
    ``value_fn`` (see ``scale_by_zoom_linesearch``); on a deterministic objective,
    ``value_and_grad_from_state`` reuses the value and gradient the line search computed.
    It keeps ``2 * memory_size`` copies of the parameters: for small and medium problems.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> def f(x): return jnp.sum(x ** 2)
        >>> solver = optim.lbfgs()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> opt_state = solver.init(params)
        >>> value_and_grad = optim.value_and_grad_from_state(f)
        >>> for _ in range(2):
        ...     value, grad = value_and_grad(params, state=opt_state)
        ...     updates, opt_state = solver.update(grad, opt_state, params, value=value,
        ...                                        grad=grad, value_fn=f)
        ...     params = optim.apply_updates(params, updates)
        ...     print(f"Objective function: {float(f(params)):.2E}")
        Objective function: 7.52E+00
        Objective function: 7.46E-14
    """
    base_scaling = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    return chain(scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
                 base_scaling, identity() if linesearch is None else linesearch)
