"""optax's numerical helpers, small utilities and type names, at the top of ``fungrad.optim``.

Norms and counters that stay safe at their edges (``safe_norm``, ``safe_increment``), the
moment updates optimisers share (re-exported from ``tree_utils`` under optax's top-level
names), linear algebra for preconditioners (``power_iteration``,
``matrix_inverse_pth_root``, ``nnls``), gradient scaling, the ``should_skip_update_fn`` of
``MultiSteps`` that rejects large updates, and the state classes and type aliases optax
exports under other names. Names, signatures and numerics follow optax's.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Sequence, Union

import fungrad.numpy as jnp
from fungrad import lax, random, tree
from fungrad.optim._base import (EmptyState, OptState, Params, ScalarOrSchedule, Schedule,
                                 Updates)
from fungrad.optim._base import safe_increment as _saturating_increment
from fungrad.optim.microbatching import microbatch
from fungrad.optim.transform import ScaleByRStdDevState, ZeroNansState, _safe_rms, safe_norm
from fungrad.optim.tree_utils import (tree_bias_correction, tree_map_params, tree_norm,
                                      tree_scale, tree_sub, tree_update_infinity_moment,
                                      tree_update_moment, tree_update_moment_per_elem_norm,
                                      tree_vdot)
from fungrad.scipy.stats import norm as _norm_dist
from fungrad.transforms.custom_derivatives import custom_vjp

__all__ = [
    # safe numerics
    "safe_norm", "safe_root_mean_squares", "safe_increment", "safe_int32_increment",
    # moments (optax.tree_utils under optax's top-level names)
    "bias_correction", "update_moment", "update_moment_per_elem_norm", "update_infinity_moment",
    "tree_map_params",
    # gradients and updates
    "scale_gradient", "ShouldSkipUpdateFunction", "skip_large_updates", "microbatch",
    # linear algebra and distributions
    "power_iteration", "matrix_inverse_pth_root", "nnls", "multi_normal",
    # states optax exports under these names
    "AdaptiveGradClipState", "AddDecayedWeightsState", "ClipByGlobalNormState", "ClipState",
    "NonNegativeParamsState", "ScaleByRStdDevState", "ScaleByTrustRatioState", "ScaleState",
    "ZeroNansState",
    # type aliases
    "MaskOrFn", "OptState", "Params", "ScalarOrSchedule", "Schedule", "Updates",
]

# The states of stateless transformations: each is ``EmptyState``, as in optax.
AdaptiveGradClipState = EmptyState
AddDecayedWeightsState = EmptyState
ClipByGlobalNormState = EmptyState
ClipState = EmptyState
NonNegativeParamsState = EmptyState
ScaleByTrustRatioState = EmptyState
ScaleState = EmptyState

# A tree of booleans (or a prefix of the params' tree), a function of the params giving
# one, or None: the ``mask`` arguments of ``masked`` and the aliases with weight decay.
MaskOrFn = Optional[Union[Any, Callable[[Params], Any]]]

# optax.tree_utils' moment updates, under the names optax also gives them at its top level.
bias_correction = tree_bias_correction
update_moment = tree_update_moment
update_moment_per_elem_norm = tree_update_moment_per_elem_norm
update_infinity_moment = tree_update_infinity_moment


# --------------------------------------------------------------------------- safe numerics



def safe_root_mean_squares(x: Any, min_rms: Any) -> Any:
    """``max(sqrt(mean(|x|^2)), min_rms)`` with a gradient of 0, not NaN, where the RMS is
    at most ``min_rms`` (as ``safe_norm``).

    Args:
        x: the array (real or complex).
        min_rms: the lower bound of the result.

    Returns:
        The root mean square of ``x``, at least ``min_rms``.
    """
    return _safe_rms(x, min_rms)


def safe_increment(count: Any) -> Any:
    """``count + 1``, which stays at the dtype's largest value instead of overflowing.

    Step counters are int32 scalars: after 2**31 - 1 steps a plain increment would wrap to
    a negative count, and schedules of it would jump.

    Args:
        count: an integer or floating-point counter.

    Returns:
        ``count + 1`` in ``count``'s dtype, or that dtype's largest value once reached.

    Raises:
        ValueError: if ``count`` is neither integer nor floating point.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> optim.safe_increment(jnp.asarray(2147483647, dtype=jnp.int32))
        Array(2147483647, dtype=int32)
    """
    dtype = jnp.asarray(count).dtype
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)):
        raise ValueError(f"safe_increment: cannot safely increment `count` of dtype {dtype}; "
                         "it must be an integer or floating-point dtype.")
    # a strongly typed count (a Python number becomes one of its default dtype), as optax's
    return _saturating_increment(jnp.asarray(count, dtype))


safe_int32_increment = safe_increment


# --------------------------------------------------------------------------- gradients

@custom_vjp
def _scale_gradient(inputs: Any, scale: Any) -> Any:
    return inputs


def _scale_gradient_fwd(inputs: Any, scale: Any) -> tuple[Any, Any]:
    return inputs, scale


def _scale_gradient_bwd(scale: Any, g: Any) -> tuple[Any, None]:
    return tree.map(lambda g_: g_ * scale, g), None


_scale_gradient.defvjp(_scale_gradient_fwd, _scale_gradient_bwd)


def scale_gradient(inputs: Any, scale: Any) -> Any:
    """The identity on ``inputs`` whose gradient is multiplied by ``scale``.

    Slows down (or stops, with ``scale=0``) the learning of the part of a model upstream of
    ``inputs`` without changing the forward pass.

    Args:
        inputs: a tree of arrays.
        scale: the factor of the gradient on the backward pass (a number: 1 and 0 are
            handled without a custom rule).

    Returns:
        ``inputs``, with its backward gradient scaled.

    Example:
        >>> import fungrad
        >>> from fungrad import optim
        >>> fungrad.grad(lambda x: optim.scale_gradient(x, 0.5) ** 2)(3.0)
        Array(3., dtype=float32, weak_type=True)
    """
    if scale == 1.0:
        return inputs
    if scale == 0.0:
        return lax.stop_gradient(inputs)
    return _scale_gradient(inputs, scale)


class ShouldSkipUpdateFunction(Protocol):
    """The type of ``MultiSteps``' ``should_skip_update_fn``: whether to drop a step's
    updates (``skip_not_finite``, ``skip_large_updates``)."""

    def __call__(self, updates: Updates, gradient_step: Any,
                 params: Optional[Params]) -> tuple[Any, Any]:
        """A boolean scalar, True to skip these ``updates``, and a tree of diagnostics kept
        in ``MultiStepsState.skip_state``; ``gradient_step`` counts the steps applied."""


def skip_large_updates(updates: Updates, gradient_step: Any, params: Optional[Params],
                       max_squared_norm: Any) -> tuple[Any, dict[str, Any]]:
    """Whether the squared global norm of ``updates`` reaches ``max_squared_norm`` (or is
    NaN): a ``should_skip_update_fn`` for ``MultiSteps``, with ``max_squared_norm`` bound
    by ``functools.partial``.

    Args:
        updates: the updates proposed for this step.
        gradient_step: the step count (unused).
        params: the current parameters (unused).
        max_squared_norm: the largest squared norm accepted.

    Returns:
        The boolean scalar ``should_skip`` and ``{"should_skip", "norm_squared"}``.
    """
    norm_sq = jnp.sum(jnp.array([jnp.sum(p ** 2) for p in tree.leaves(updates)]))
    should_skip = jnp.logical_not(norm_sq < max_squared_norm)  # True for a NaN norm too
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


# --------------------------------------------------------------------------- linear algebra

def _normalize_tree(x: Any) -> Any:
    return tree_scale(1.0 / tree_norm(x), x)


def power_iteration(matrix: Union[Any, Callable[[Any], Any]], *, v0: Any = None,
                    num_iters: Any = 100, error_tolerance: Any = 1e-6,
                    precision: Any = lax.Precision.HIGHEST,
                    key: Any = None) -> tuple[Any, Any]:
    r"""The dominant eigenvalue of a diagonalisable matrix and its eigenvector, by power
    iteration: :math:`v \leftarrow A v / \|A v\|` until the residual
    :math:`\|A v - \lambda v\| / |\lambda|` is below ``error_tolerance``.

    Gives the spectral radius a step size must stay under, and the scale of a
    preconditioner's ridge.

    Args:
        matrix: a square matrix, or a function computing its product with a vector (a tree).
        v0: the initial vector: needed when ``matrix`` is a function (a tree of the
            function's input); by default uniform in [-1, 1], drawn from ``key``.
        num_iters: the most iterations run.
        error_tolerance: the relative residual at which the iteration stops.
        precision: the precision of the matrix-vector products (``lax.Precision``).
        key: the key drawing ``v0`` when it is not given (``random.PRNGKey(0)`` by default).

    Returns:
        The pair ``(eigenvalue, eigenvector)``, the eigenvector of unit norm.

    Raises:
        ValueError: if ``matrix`` is a function and ``v0`` is not given.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> eig, vec = optim.power_iteration(jnp.array([[2.0, 0.0], [0.0, 5.0]]))
        >>> print(round(float(eig), 4))
        5.0
    """
    if callable(matrix):
        if v0 is None:
            raise ValueError("power_iteration: `v0` must be given when `matrix` is a function "
                             "(the tree structure of its input is unknown).")
        mvp = matrix
    else:
        mvp = lambda v: jnp.matmul(matrix, v, precision=precision)
        if v0 is None:
            v0 = random.uniform(random.PRNGKey(0) if key is None else key,
                                shape=matrix.shape[-1:], dtype=matrix.dtype,
                                minval=-1.0, maxval=1.0)
    v0 = _normalize_tree(v0)

    def cond(loop_vars):
        eigvec, z, eig, i = loop_vars
        residual_norm = tree_norm(tree_sub(z, tree_scale(eig, eigvec)))
        return ~(jnp.abs(residual_norm / eig) < error_tolerance) & (i < num_iters)

    def body(loop_vars):
        _, z, _, i = loop_vars
        eigvec = _normalize_tree(z)
        z = mvp(eigvec)
        return eigvec, z, tree_vdot(eigvec, z), i + 1

    init = (v0, mvp(v0), jnp.asarray(0.0), jnp.asarray(0))
    _, z, eig, _ = lax.while_loop(cond, body, init)
    return eig, _normalize_tree(z)


def _matrix_power(m: Any, p: Any, precision: Any) -> Any:
    """``m ** p`` for ``p`` in 1, 2, 4 or 8 (possibly traced), by repeated squaring."""
    def square(x):
        return jnp.matmul(x, x, precision=precision)
    branches = [lambda x: x, square, lambda x: square(square(x)),
                lambda x: square(square(square(x)))]
    return lax.switch(jnp.asarray(jnp.round(jnp.log2(p)), jnp.int32), branches, m)


def matrix_inverse_pth_root(matrix: Any, p: Any, num_iters: Any = 100,
                            ridge_epsilon: Any = 1e-6, error_tolerance: Any = 1e-6,
                            precision: Any = lax.Precision.HIGHEST) -> tuple[Any, Any]:
    r"""``matrix ** (-1/p)`` of a symmetric positive semi-definite matrix, by coupled Newton
    iterations (Higham, *Functions of Matrices*, eq. 7.18): Shampoo's preconditioner.

    A ridge of ``ridge_epsilon`` times the largest eigenvalue is added first so the matrix
    is positive definite. The iterations run in float32; they stop after ``num_iters``, when
    :math:`\max |M - I|` is below ``error_tolerance``, or when that error grows by more than
    a factor 1.2 (the previous iterate is then returned).

    Args:
        matrix: the symmetric PSD matrix.
        p: the root, 1, 2, 4 or 8.
        num_iters: the most iterations run.
        ridge_epsilon: the ridge, relative to the largest eigenvalue.
        error_tolerance: the error at which the iterations stop.
        precision: the precision of the matrix products (``lax.Precision``).

    Returns:
        The pair ``(matrix ** (-1/p), error)``.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> root, _ = optim.matrix_inverse_pth_root(jnp.array([[4.0, 0.0], [0.0, 16.0]]), 2)
        >>> print(jnp.round(jnp.diag(root), 3))
        [0.5  0.25]
    """
    size = matrix.shape[0]
    alpha = jnp.asarray(-1.0 / p, jnp.float32)
    identity = jnp.eye(size, dtype=jnp.float32)
    max_ev, _ = power_iteration(matrix=matrix, num_iters=100, error_tolerance=1e-6,
                                precision=precision)
    ridge_epsilon = ridge_epsilon * jnp.maximum(max_ev, 1e-16)
    if size == 1:
        return (matrix + ridge_epsilon) ** alpha, 0

    def cond(state):
        i, _, _, _, error, run_step = state
        return (i < num_iters) & (error > error_tolerance) & run_step

    def body(state):
        i, mat_m, mat_h, _, error, _ = state
        mat_m_i = (1 - alpha) * identity + alpha * mat_m
        new_mat_m = jnp.matmul(_matrix_power(mat_m_i, p, precision), mat_m, precision=precision)
        new_mat_h = jnp.matmul(mat_h, mat_m_i, precision=precision)
        new_error = jnp.max(jnp.abs(new_mat_m - identity))
        # the error may grow for an iteration before it falls: allow a factor of 1.2
        return i + 1, new_mat_m, new_mat_h, mat_h, new_error, new_error < error * 1.2

    damped = matrix + ridge_epsilon * identity
    z = (1 + p) / (2 * jnp.linalg.norm(damped))
    mat_m0 = damped * z
    mat_h0 = identity * jnp.power(z, 1.0 / p)
    init = (0, mat_m0, mat_h0, mat_h0, jnp.max(jnp.abs(mat_m0 - identity)), True)
    _, mat_m, mat_h, old_mat_h, _, converged = lax.while_loop(cond, body, init)
    error = jnp.max(jnp.abs(mat_m - identity))
    converged = jnp.asarray(converged, old_mat_h.dtype)
    result = converged * mat_h + (1 - converged) * old_mat_h
    return jnp.asarray(result, matrix.dtype), error


def _spectral_radius_upper_bound(matrix: Any) -> Any:
    """``min(||matrix||_F, ||matrix||_1)``, at least the spectral radius."""
    fro = jnp.linalg.matrix_norm(matrix, ord="fro")
    one = jnp.linalg.matrix_norm(matrix, ord=1) if matrix.size != 0 else 0
    return jnp.minimum(fro, one)


def nnls(A: Any, b: Any, iters: int, unroll: Union[int, bool] = 1,
         L: Any = None) -> Any:
    r"""The non-negative least-squares solution: :math:`\min_x \|A x - b\|_2` subject to
    :math:`x \ge 0`, by Polyak's fast projected gradient (2015).

    Args:
        A: the matrix, of shape ``(M, N)``.
        b: the right-hand side, of shape ``(M,)`` or ``(M, K)``.
        iters: the number of iterations (of a ``lax.scan``).
        unroll: the ``unroll`` of that scan.
        L: an upper bound on the spectral radius of ``A.mT @ A`` (estimated when None).

    Returns:
        The solution, of shape ``(N,)`` or ``(N, K)``.

    Raises:
        ValueError: if ``A`` is not a matrix, or ``b`` not a vector or matrix of ``A``'s
            number of rows.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> x = optim.nnls(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([5.0, 6.0]), 1000)
        >>> print(f"{x[0]:.2f} {x[1]:.2f}")
        0.00 1.70
    """
    if A.ndim != 2:
        raise ValueError(f"nnls: `A` must be a matrix, got shape {A.shape}.")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"nnls: `b` must be a vector or matrix of {A.shape[0]} rows (A's), "
                         f"got shape {b.shape}.")
    Q = A.mT @ A
    q = A.mT @ b
    L = _spectral_radius_upper_bound(Q) if L is None else L
    L = jnp.where(L == 0, 1, L)

    def step(carry, _):
        x, y, c = carry
        c_next = (1 + jnp.sqrt(1 + 4 * c ** 2)) / 2
        x_next = (y - (Q @ y - q) / L).clip(0)
        return (x_next, x_next + (c - 1) / c_next * (x_next - x), c_next), None

    x = jnp.zeros_like(b, shape=A.shape[-1:] + b.shape[1:])
    (x, _, _), _ = lax.scan(step, (x, x, 0.0), length=iters, unroll=unroll)
    return x


# --------------------------------------------------------------------------- distributions

class MultiNormalDiagFromLogScale:
    """A normal distribution with diagonal covariance, parametrised by its mean ``loc`` and
    the log of its standard deviations ``log_scale`` (broadcast together)."""

    def __init__(self, loc: Any, log_scale: Any) -> None:
        self._log_scale = jnp.asarray(log_scale)
        self._scale = jnp.exp(log_scale)
        self._mean = jnp.asarray(loc)
        self._param_shape = jnp.broadcast_shapes(self._mean.shape, self._scale.shape)

    def sample(self, shape: Sequence[int], key: Any) -> Any:
        """Samples of shape ``(*shape, *param_shape)``, drawn with ``key``."""
        sample_shape = tuple(shape) + self._param_shape
        return random.normal(key, shape=sample_shape) * self._scale + self._mean

    def log_prob(self, x: Any) -> Any:
        """The log density of ``x``, summed over the parameters' axes."""
        log_prob = _norm_dist.logpdf(x, loc=self._mean, scale=self._scale)
        return jnp.sum(log_prob, axis=[-(i + 1) for i in range(len(self._param_shape))])

    @property
    def log_scale(self) -> Any:
        """The log standard deviations."""
        return self._log_scale

    @property
    def params(self) -> list[Any]:
        """``[loc, log_scale]``: the parameters to differentiate."""
        return [self._mean, self._log_scale]


def multi_normal(loc: Any, log_scale: Any) -> MultiNormalDiagFromLogScale:
    """A diagonal normal distribution of mean ``loc`` and standard deviations
    ``exp(log_scale)``, with ``sample(shape, key)`` and ``log_prob(x)``: the search
    distribution of evolution strategies.

    Args:
        loc: the mean.
        log_scale: the log of the standard deviations.

    Returns:
        The distribution.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim, random
        >>> dist = optim.multi_normal(jnp.zeros(3), jnp.zeros(3))
        >>> dist.sample((5,), random.PRNGKey(0)).shape
        (5, 3)
    """
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)

