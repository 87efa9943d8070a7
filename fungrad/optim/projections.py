r"""``optax.projections``: Euclidean projections of pytrees onto convex sets.

Each function returns :math:`\arg\min_p \|x - p\|_2^2` over its set (a box, simplex, ball,
sphere, hyperplane, ...), for the tree ``x`` taken as one vector: the step of projected
gradient descent that keeps the parameters feasible. They work under ``jit``, and are
differentiable (the simplex's projection through its own JVP rule, which is defined at the
kinks too). Names, signatures and numerics follow optax's.
"""
from __future__ import annotations

from typing import Any

import fungrad.numpy as jnp
from fungrad import lax, nn
from fungrad import tree as _tree
from fungrad.flatten_util import ravel_pytree
from fungrad.optim.tree_utils import (tree_add_scale, tree_full_like, tree_mul, tree_norm,
                                      tree_scale, tree_vdot)
from fungrad.transforms.custom_derivatives import custom_jvp

__all__ = ["projection_box", "projection_halfspace", "projection_hypercube",
           "projection_hyperplane", "projection_l1_ball", "projection_l1_sphere",
           "projection_l2_ball", "projection_l2_sphere", "projection_linf_ball",
           "projection_non_negative", "projection_simplex", "projection_vector"]


def _check_same_structure(fname: str, x: Any, a: Any) -> None:
    if _tree.structure(x) != _tree.structure(a):
        raise ValueError(f"{fname}: `a` must have the tree structure of `x`, "
                         f"{_tree.structure(x)}, got {_tree.structure(a)}.")


def projection_non_negative(tree: Any) -> Any:
    r"""The projection onto the non-negative orthant :math:`p \ge 0`: each leaf's ReLU.

    Args:
        tree: the tree to project.

    Returns:
        The projected tree.
    """
    return _tree.map(nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    r"""The projection onto the box :math:`\text{lower} \le p \le \text{upper}`: each leaf
    clipped.

    Args:
        tree: the tree to project.
        lower: the lower bound, a scalar or a tree of ``tree``'s structure.
        upper: the upper bound, a scalar or a tree of ``tree``'s structure.

    Returns:
        The projected tree.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import projections
        >>> projections.projection_box(jnp.array([-2.0, 0.5, 3.0]), 0.0, 1.0)
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    return _tree.map(jnp.clip, tree, lower, upper)


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    r"""The projection onto the hypercube :math:`0 \le p \le \text{scale}` (the unit one by
    default): ``projection_box`` with those bounds.

    Args:
        tree: the tree to project.
        scale: the side of the hypercube, a scalar or a tree.

    Returns:
        The projected tree.
    """
    return projection_box(tree, lower=0, upper=scale)


@custom_jvp
def _projection_unit_simplex(values: Any) -> Any:
    """The projection of a vector onto the unit simplex (sort-based, Held et al. 1974)."""
    n_features = values.shape[0]
    u = jnp.sort(values)[::-1]
    cumsum_u = jnp.cumsum(u)
    ind = jnp.arange(n_features) + 1
    idx = jnp.count_nonzero(1 / ind + (u - cumsum_u / ind) > 0)
    return nn.relu(1 / idx + (values - cumsum_u[idx - 1] / idx))


@_projection_unit_simplex.defjvp
def _projection_unit_simplex_jvp(primals: tuple, tangents: tuple) -> tuple:
    # the projection is affine on its support: the tangent is centred there, zero elsewhere
    (values,), (values_dot,) = primals, tangents
    primal_out = _projection_unit_simplex(values)
    supp = primal_out > 0
    card = jnp.count_nonzero(supp)
    return primal_out, supp * values_dot - (jnp.dot(supp, values_dot) / card) * supp


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    r"""The projection onto the simplex :math:`p \ge 0,\ \sum p = \text{scale}` (the
    probability simplex by default), of all the leaves together.

    Args:
        tree: the tree to project.
        scale: what the projected tree sums to.

    Returns:
        The projected tree.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import projections, tree_utils
        >>> data = {"w": jnp.array([2.5, 3.2]), "b": 0.5}
        >>> print(tree_utils.tree_sum(projections.projection_simplex(data)))
        1.0000002
    """
    values, unravel = ravel_pytree(tree)
    return unravel(scale * _projection_unit_simplex(values / scale))


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""The projection onto the L1 sphere :math:`\|p\|_1 = \text{scale}`: the simplex
    projection of the absolute values, with the signs put back.

    Args:
        tree: the tree to project.
        scale: the radius of the sphere.

    Returns:
        The projected tree.
    """
    abs_proj = projection_simplex(_tree.map(jnp.abs, tree), scale)
    return tree_mul(_tree.map(jnp.sign, tree), abs_proj)


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    r"""The projection onto the L1 ball :math:`\|p\|_1 \le \text{scale}`: the tree itself
    inside, its ``projection_l1_sphere`` outside (a sparse tree).

    Args:
        tree: the tree to project.
        scale: the radius of the ball.

    Returns:
        The projected tree.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import projections, tree_utils
        >>> data = {"w": jnp.array([2.5, 3.2]), "b": 0.5}
        >>> print(tree_utils.tree_norm(projections.projection_l1_ball(data), ord=1))
        1.0000002
    """
    return lax.cond(tree_norm(tree, ord=1) <= scale, lambda t: t,
                    lambda t: projection_l1_sphere(t, scale), operand=tree)


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""The projection onto the L2 sphere :math:`\|p\|_2 = \text{scale}`: the tree rescaled.

    Args:
        tree: the tree to project (not zero).
        scale: the radius of the sphere.

    Returns:
        The projected tree.
    """
    return tree_scale(scale / tree_norm(tree), tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    r"""The projection onto the L2 ball :math:`\|p\|_2 \le \text{scale}`: the tree itself
    inside, rescaled onto the sphere outside.

    Args:
        tree: the tree to project.
        scale: the radius of the ball.

    Returns:
        The projected tree.
    """
    squared_norm = tree_norm(tree, squared=True)
    return tree_scale(scale / jnp.sqrt(jnp.maximum(squared_norm, scale ** 2)), tree)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    r"""The projection onto the L-infinity ball :math:`\|p\|_\infty \le \text{scale}`:
    every element clipped to ``[-scale, scale]``.

    Args:
        tree: the tree to project.
        scale: the radius of the ball.

    Returns:
        The projected tree.
    """
    return projection_box(tree, lower=tree_full_like(tree, -scale),
                          upper=tree_full_like(tree, scale))


def projection_vector(x: Any, a: Any) -> Any:
    r"""The projection of ``x`` onto the line of ``a``:
    :math:`\langle x, a \rangle / \langle a, a \rangle\, a`.

    Args:
        x: the tree to project.
        a: the direction, a tree of ``x``'s structure.

    Returns:
        The projected tree.

    Raises:
        ValueError: if ``a``'s tree structure is not ``x``'s.
    """
    _check_same_structure("projection_vector", x, a)
    return tree_scale(tree_vdot(x, a) / tree_vdot(a, a), a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    r"""The projection onto the hyperplane :math:`\langle a, p \rangle = b`:
    :math:`x + (b - \langle a, x \rangle) / \langle a, a \rangle\, a`.

    Args:
        x: the tree to project.
        a: the hyperplane's normal, a tree of ``x``'s structure.
        b: the hyperplane's offset, a scalar.

    Returns:
        The projected tree.

    Raises:
        ValueError: if ``a``'s tree structure is not ``x``'s.
    """
    _check_same_structure("projection_hyperplane", x, a)
    return tree_add_scale(x, (b - tree_vdot(x, a)) / tree_vdot(a, a), a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    r"""The projection onto the halfspace :math:`\langle a, p \rangle \le b`: ``x`` itself
    inside, its ``projection_hyperplane`` outside.

    Args:
        x: the tree to project.
        a: the halfspace's outward normal, a tree of ``x``'s structure.
        b: the halfspace's offset, a scalar.

    Returns:
        The projected tree.

    Raises:
        ValueError: if ``a``'s tree structure is not ``x``'s.
    """
    _check_same_structure("projection_halfspace", x, a)
    scalar = jnp.clip((b - tree_vdot(x, a)) / tree_vdot(a, a), max=0)
    return tree_add_scale(x, scalar, a)
