"""Optimisers that reshape the gradient of each weight matrix, as optax.contrib's: Muon
orthogonalises the momentum by Newton-Schulz iterations, GaLore projects the gradient onto
the leading singular vectors and runs a base optimiser in that low-rank space.

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (GradientTransformation, ScalarOrSchedule, chain,
                                 init_empty_state, safe_increment, tree_cast, zeros_count)
from fungrad.optim.alias import adamw
from fungrad.optim.combine import MaskedNode, multi_transform
from fungrad.optim.transform import (_debiased_mu, _moment, add_decayed_weights, scale_by_adam,
                                     scale_by_learning_rate)
from fungrad.transforms.api import vmap

__all__ = [
    "MuonDimensionNumbers", "MuonState", "scale_by_muon", "muon",
    "GaLoreDimensionNumbers", "GaLoreState", "scale_by_galore", "galore",
]


# --------------------------------------------------------------------------- Muon

_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
_DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
_NS_COEFFS_PRESETS = {
    "standard": _DEFAULT_NS_COEFFS,
    "dion": ((4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377), (3.7418, -5.5913, 2.3037),
             (2.8769, -3.1427, 1.2046), (2.8366, -3.0525, 1.2012)),
}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight are Muon's reduction (fan-in) and output (fan-out) axes; the
    others are batch axes, orthogonalised independently."""

    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


def _is_dim_nums(x: Any) -> bool:
    return isinstance(x, MuonDimensionNumbers)


def _normalize_axes(x: Any, dim_nums: MuonDimensionNumbers
                    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    def axes(a):
        return tuple(ax % x.ndim for ax in ((a,) if isinstance(a, int) else a))
    return axes(dim_nums.reduction_axis), axes(dim_nums.output_axis)


def _matrix_axes(x: Any, dim_nums: Any, name: str
                 ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The batch, reduction and output axes of ``x`` that ``dim_nums`` name, checked."""
    if x.ndim < 2:
        raise ValueError(f"{name} optimized parameters must have rank >= 2, got {x.ndim=}")
    reduction_axes, output_axes = _normalize_axes(x, dim_nums)
    if set(reduction_axes) & set(output_axes):
        raise ValueError("Normalized reduction axes and output axes must be disjoint, got "
                         f"{reduction_axes} and {output_axes}. Originally {dim_nums=} and "
                         f"{x.shape=}")
    batch_axes = tuple(sorted(set(range(x.ndim)) - set(reduction_axes) - set(output_axes)))
    return batch_axes, reduction_axes, output_axes


def _grouped_reshape(x: Any, groups: Sequence[tuple[int, ...]]
                     ) -> tuple[tuple[int, ...], Callable, Callable]:
    """The shape whose axes are the products of the axis ``groups`` of ``x``, and functions
    to an array of that shape and back."""
    transpose = sum(groups, ())
    inv_transpose = tuple(sorted(range(x.ndim), key=lambda i: transpose[i]))
    flat_shape = tuple(math.prod(x.shape[ax] for ax in group) for group in groups)
    unflat_shape = tuple(x.shape[ax] for ax in transpose)
    return (flat_shape, lambda y: y.transpose(transpose).reshape(flat_shape),
            lambda y: y.reshape(unflat_shape).transpose(inv_transpose))


def _muon_reshape(x: Any, dim_nums: MuonDimensionNumbers) -> tuple[Callable, Callable]:
    """Functions to a (batch, fan-in, fan-out) array and back."""
    _, reshape, inverse = _grouped_reshape(x, _matrix_axes(x, dim_nums, "Muon"))
    return reshape, inverse


def _fans(x: Any, dim_nums: MuonDimensionNumbers) -> tuple[int, int]:
    reduction_axes, output_axes = _normalize_axes(x, dim_nums)
    return (math.prod(x.shape[ax] for ax in reduction_axes),
            math.prod(x.shape[ax] for ax in output_axes))


def _scale_for_width_transfer(update: Any, dim_nums: MuonDimensionNumbers) -> Any:
    fan_in, fan_out = _fans(update, dim_nums)
    return jnp.sqrt(jnp.maximum(1, fan_out / fan_in)) * update


def _scale_for_consistent_rms(update: Any, dim_nums: MuonDimensionNumbers,
                              consistent_rms: Any) -> Any:
    fan_in, fan_out = _fans(update, dim_nums)
    return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * consistent_rms * update


def _resolve_dim_nums(weight_dimension_numbers: Any, updates: Any) -> Any:
    return (weight_dimension_numbers(updates) if callable(weight_dimension_numbers)
            else weight_dimension_numbers)


def _scale_by_shape(weight_dimension_numbers: Any = None,
                    consistent_rms: Any = None) -> GradientTransformation:
    """Scale each update by ``sqrt(max(1, fan_out / fan_in))``, or by
    ``sqrt(max(fan_in, fan_out)) * consistent_rms`` when that is given (optax's
    ``scale_by_shape``)."""
    scaling = (_scale_for_width_transfer if consistent_rms is None
               else functools.partial(_scale_for_consistent_rms, consistent_rms=consistent_rms))

    def update(updates, state, params=None):
        dim_nums = _resolve_dim_nums(weight_dimension_numbers, updates)
        return tree.map(scaling, updates, dim_nums, is_leaf=_is_dim_nums), state
    return GradientTransformation(init_empty_state, update)


def _ns_step(x: Any, coeffs: Any) -> Any:
    a = x @ x.T.conj()
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _aol_first_ns_step(x: Any, coeffs: Any, eps: Any = 1e-8) -> Any:
    """The first step with 'Almost Orthogonal Layer' rescaling."""
    a = x @ x.T.conj()
    s = jnp.expand_dims(lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps)), -1)
    x, a = x * s, a * s * s.transpose(-1, -2)
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _schatten_first_ns_step(x: Any, coeffs: Any, eps: Any = 1e-8) -> Any:
    """The first step with Schatten-4 rescaling."""
    a = x @ x.T
    rescaling = jnp.clip(jnp.linalg.norm(a, ord="fro", axis=(-2, -1)), min=eps)
    s = jnp.expand_dims(lax.rsqrt(rescaling), (0, -1))
    x, a = x * s, a * s ** 2
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


_FIRST_NS_STEPS = {"aol": _aol_first_ns_step, "schatten": _schatten_first_ns_step}


def _orthogonalize_via_newton_schulz(x: Any, ns_coeffs: Any, ns_steps: int = 5,
                                     preconditioning: str = "frobenius", eps: Any = 1e-8,
                                     dimension_numbers: Optional[MuonDimensionNumbers] = None
                                     ) -> Any:
    """Newton-Schulz's approximation of ``U V^T`` for ``x = U S V^T``, per matrix of ``x``
    as ``dimension_numbers`` reshapes it (optax's ``orthogonalize_via_newton_schulz``)."""
    if x.ndim != 2 and not _is_dim_nums(dimension_numbers):
        raise ValueError("Input must have shape (m, n) or weight dimension numbers must be "
                         f"provided. Got shape={x.shape} and {dimension_numbers=}.")
    if x.ndim == 2:
        dimension_numbers = MuonDimensionNumbers(reduction_axis=0, output_axis=1)
    if ns_coeffs.ndim > 2 or ns_coeffs.shape[-1] != 3:
        raise ValueError("Newton-Schulz coefficients must have shape (3,) or (n, 3), got "
                         f"{ns_coeffs.shape}")
    if preconditioning not in _PRECONDITIONINGS:
        raise ValueError(f"Unknown preconditioning {preconditioning}")
    first_step = _FIRST_NS_STEPS.get(preconditioning, _ns_step)

    def orthogonalize(x):
        transposed = x.shape[0] > x.shape[1]
        if transposed:
            x = x.T
        if preconditioning == "frobenius":
            x = x / (jnp.linalg.norm(x, ord="fro") + eps)
        elif preconditioning == "spectral":
            x = x / (jnp.linalg.norm(x, ord=2) + eps)
        coeffs = ns_coeffs.astype(x.dtype)
        steps = [coeffs] * ns_steps if coeffs.ndim == 1 else list(coeffs)
        for i, c in enumerate(steps):
            x = (first_step if i == 0 else _ns_step)(x, c)
        return x.T if transposed else x

    reshape, inverse = _muon_reshape(x, dimension_numbers)
    return inverse(vmap(orthogonalize)(reshape(x)))


class MuonState(NamedTuple):
    """Muon's state: the step ``count``, the momentum ``mu`` and the Newton-Schulz
    coefficients ``ns_coeffs``."""

    count: Any
    mu: Any
    ns_coeffs: Any


def scale_by_muon(ns_coeffs: Any = _DEFAULT_NS_COEFFS, ns_steps: int = 5, beta: float = 0.95,
                  eps: float = 1e-8, mu_dtype: Any = None, *, nesterov: bool = True,
                  adaptive: bool = False, preconditioning: str = "frobenius",
                  weight_dimension_numbers: Any = None) -> GradientTransformation:
    r"""Muon's rescaling: the (Nesterov) momentum orthogonalised by ``ns_steps``
    Newton-Schulz iterations, :math:`\approx U V^T` for :math:`\hat m = U S V^T`.

    ``ns_coeffs`` is one ``(a, b, c)`` for every step or one per step (the last
    ``ns_steps`` are used); ``adaptive`` scales by :math:`\langle \hat m, O\rangle`;
    ``weight_dimension_numbers`` (a tree of ``MuonDimensionNumbers`` or a function of the
    updates giving one) says how to read non-2D weights as matrices.
    """
    def init(params):
        coeffs = jnp.asarray(ns_coeffs)
        if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
            raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}")
        if coeffs.ndim == 2:
            if not coeffs.shape[0] <= ns_steps:
                raise ValueError(f"Not enough coeffs to perform {ns_steps} steps")
            coeffs = coeffs[-ns_steps:]
        mu = tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        return MuonState(count=zeros_count(), mu=mu, ns_coeffs=coeffs)

    def update(updates, state, params=None):
        dim_nums = _resolve_dim_nums(weight_dimension_numbers, updates)
        mu = _moment(updates, state.mu, beta, 1)
        count = safe_increment(state.count)
        mu_hat = _debiased_mu(mu, updates, beta, count, nesterov)
        updates = tree.map(lambda x, d: _orthogonalize_via_newton_schulz(
            x, state.ns_coeffs, ns_steps, preconditioning, eps, d),
            mu_hat, dim_nums, is_leaf=_is_dim_nums)
        if adaptive:
            updates = tree.map(lambda x, y: jnp.sum(x.conj() * y) * y, mu_hat, updates)
        return updates, MuonState(count=count, mu=tree_cast(mu, mu_dtype),
                                  ns_coeffs=state.ns_coeffs)
    return GradientTransformation(init, update)


def muon(learning_rate: ScalarOrSchedule, ns_coeffs: Any = _DEFAULT_NS_COEFFS,
         ns_steps: int = 5, beta: float = 0.95, eps: float = 1e-8, weight_decay: float = 0.0,
         weight_decay_mask: Any = None, mu_dtype: Any = None, *, nesterov: bool = True,
         adaptive: bool = False, preconditioning: str = "frobenius", adam_b1: float = 0.9,
         adam_b2: float = 0.999, adam_eps_root: float = 0.0, adam_weight_decay: float = 0.0,
         adam_learning_rate: Optional[ScalarOrSchedule] = None,
         muon_weight_dimension_numbers: Any = None,
         consistent_rms: Optional[float] = None) -> GradientTransformation:
    r"""Muon (Jordan, 2024): momentum orthogonalised by Newton-Schulz for matrices,
    :math:`\theta \leftarrow \theta - \eta(\sqrt{\max(1, n_{out}/n_{in})}\,
    \mathrm{NS}(\hat m) + \lambda\theta)`; AdamW (``adam_*`` settings) for the rest.

    Without ``muon_weight_dimension_numbers`` every 2D parameter is Muon's; with it, the
    leaves it marks ``None`` are Adam's. ``ns_coeffs`` may name a preset, ``'standard'`` or
    ``'dion'``; ``consistent_rms`` scales by :math:`\sqrt{\max(n_{in}, n_{out})}` times it.
    """
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in _NS_COEFFS_PRESETS:
            raise ValueError(f"Unknown ns_coeff preset string: {ns_coeffs}")
        ns_coeffs = _NS_COEFFS_PRESETS[ns_coeffs]
    dim_nums_or_fn = (MuonDimensionNumbers() if muon_weight_dimension_numbers is None
                      else muon_weight_dimension_numbers)
    is_spec = lambda x: x is None or _is_dim_nums(x)

    def param_labels(params):
        if muon_weight_dimension_numbers is None:
            return tree.map(lambda x: "muon" if x.ndim == 2 else "adam", params)
        return tree.map(lambda d, x: tree.map(lambda _: "adam" if d is None else "muon", x),
                        _resolve_dim_nums(dim_nums_or_fn, params), params, is_leaf=is_spec)

    def muon_dim_nums(params):
        mask = tree.map(lambda label: label == "muon", param_labels(params))
        return tree.map(lambda d, m: tree.map(lambda keep: d if keep else MaskedNode(), m),
                        _resolve_dim_nums(dim_nums_or_fn, params), mask,
                        is_leaf=lambda x: is_spec(x) or isinstance(x, MaskedNode))

    muon_tx = chain(
        scale_by_muon(ns_coeffs=ns_coeffs, ns_steps=ns_steps, beta=beta, eps=eps,
                      mu_dtype=mu_dtype, nesterov=nesterov, adaptive=adaptive,
                      preconditioning=preconditioning, weight_dimension_numbers=muon_dim_nums),
        _scale_by_shape(weight_dimension_numbers=muon_dim_nums, consistent_rms=consistent_rms),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate))
    adam_tx = adamw(learning_rate=adam_learning_rate, b1=adam_b1, b2=adam_b2, eps=eps,
                    eps_root=adam_eps_root, weight_decay=adam_weight_decay, mu_dtype=mu_dtype,
                    nesterov=nesterov)
    return multi_transform({"muon": muon_tx, "adam": adam_tx}, param_labels)


# --------------------------------------------------------------------------- GaLore

class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a weight GaLore reads as the rows (``reduction_axis``) and the columns
    (``output_axis``) of the matrix it projects: a ``(embed, heads, head_dim)`` attention
    weight is ``GaLoreDimensionNumbers(0, (1, 2))``. Together they name every axis."""

    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


def _is_galore_spec(x: Any) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _galore_reshape(x: Any, dim_nums: GaLoreDimensionNumbers
                    ) -> tuple[tuple[int, int], Callable, Callable]:
    """The (rows, columns) shape GaLore reads ``x`` as, and functions to that matrix and
    back."""
    batch_axes, reduction_axes, output_axes = _matrix_axes(x, dim_nums, "GaLore")
    if batch_axes:
        raise ValueError(f"scale_by_galore: weight_dimension_numbers must name every axis, got "
                         f"reduction={reduction_axes}, output={output_axes} for a tensor with "
                         f"{x.ndim} dimensions")
    return _grouped_reshape(x, (reduction_axes, output_axes))


def _galore_side(shape: tuple[int, int], rank: int) -> tuple[bool, int]:
    """Whether GaLore projects an (m, n) matrix from the left (m >= n), and at what rank."""
    m, n = shape
    return m >= n, min(rank, m, n)


def _galore_dim_nums(weight_dimension_numbers: Any, params: Any) -> Any:
    """A tree of ``GaLoreDimensionNumbers`` (None for the leaves left full) over ``params``:
    the 2D leaves by default, the leaves of rank 2 or more for one ``GaLoreDimensionNumbers``,
    else the tree given or made by the function given."""
    if weight_dimension_numbers is None:
        return tree.map(lambda p: GaLoreDimensionNumbers() if p.ndim == 2 else None, params)
    if callable(weight_dimension_numbers):
        return weight_dimension_numbers(params)
    if isinstance(weight_dimension_numbers, GaLoreDimensionNumbers):
        return tree.map(lambda p: weight_dimension_numbers if p.ndim >= 2 else None, params)
    return weight_dimension_numbers


def _galore_init_leaf(p: Any, dim_nums: Optional[GaLoreDimensionNumbers],
                      rank: int) -> tuple[Any, Any]:
    """Zeros for a leaf's projector, and a leaf of the low-rank shape the base optimiser sees."""
    if dim_nums is None:
        return jnp.zeros((0, 0), dtype=p.dtype), jnp.zeros_like(p)
    (m, n), _, _ = _galore_reshape(p, dim_nums)
    left, r = _galore_side((m, n), rank)
    projector_shape, proxy_shape = ((m, r), (r, n)) if left else ((n, r), (m, r))
    return jnp.zeros(projector_shape, dtype=p.dtype), jnp.zeros(proxy_shape, dtype=p.dtype)


def _galore_project(g: Any, projector: Any, dim_nums: Optional[GaLoreDimensionNumbers],
                    rank: int, refresh: Any) -> tuple[Any, Any]:
    """A gradient leaf in its low-rank space and the projector used, recomputed from the
    gradient's singular vectors (in float32) when ``refresh``."""
    if dim_nums is None:
        return g, projector
    shape, to_matrix, _ = _galore_reshape(g, dim_nums)
    left, r = _galore_side(shape, rank)
    g2d = to_matrix(g)

    def new_projector():
        u, _, vh = jnp.linalg.svd(g2d.astype(jnp.float32), full_matrices=False)
        return (u[:, :r] if left else vh[:r, :].T).astype(g.dtype)
    projector = lax.cond(refresh, new_projector, lambda: projector)
    return (projector.T @ g2d if left else g2d @ projector), projector


def _galore_project_back(u: Any, projector: Any, g: Any,
                         dim_nums: Optional[GaLoreDimensionNumbers], rank: int,
                         scale: float) -> Any:
    """A low-rank update back in the full space of its gradient leaf ``g``, times ``scale``."""
    if dim_nums is None:
        return u
    shape, _, from_matrix = _galore_reshape(g, dim_nums)
    left, _ = _galore_side(shape, rank)
    return (scale * from_matrix(projector @ u if left else u @ projector.T)).astype(g.dtype)


class GaLoreState(NamedTuple):
    """GaLore's state: the step ``count``, the base optimiser's state (over the low-rank
    gradients, and the full ones of the leaves left full) and each leaf's ``projector``."""

    count: Any
    base_optimizer_state: Any
    projector: Any


def scale_by_galore(rank: int = 128, update_proj_gap: int = 200, scale: float = 1.0,
                    base_optimizer: Optional[GradientTransformation] = None,
                    weight_dimension_numbers: Any = None) -> GradientTransformation:
    r"""GaLore's rescaling: each matrix gradient :math:`G` (:math:`m \times n`) is projected
    onto its top ``rank`` singular vectors, :math:`R = P^T G` with :math:`P = U_{:, :r}` when
    :math:`m \ge n` (else :math:`R = G P`, :math:`P = V_{:, :r}`), ``base_optimizer`` steps
    :math:`R`, and its step comes back as ``scale`` :math:`\cdot P\, \Delta R`.

    :math:`P` is recomputed from the gradient's SVD every ``update_proj_gap`` steps, so the
    base optimiser's state lives in the low-rank space: that is the memory GaLore saves.
    ``base_optimizer`` (``scale_by_adam()`` by default) must not read the parameters (no
    ``adamw``: weight decay goes in ``galore``). ``weight_dimension_numbers`` says which
    leaves to project and how to read them as matrices: None for the 2D leaves, one
    ``GaLoreDimensionNumbers`` for every leaf of rank 2 or more, or a tree (or a function of
    the parameters giving one) of them with None for the leaves left full.
    """
    if base_optimizer is None:
        base_optimizer = scale_by_adam()
    if not isinstance(rank, int):
        raise TypeError(f"scale_by_galore: rank must be an int, got {type(rank)}")
    if rank <= 0:
        raise ValueError(f"scale_by_galore: rank must be positive, got {rank}")

    def map_leaves(f, first, *rest):
        return tree.map(f, first, *rest, is_leaf=_is_galore_spec)

    def transpose_pairs(like, pairs):
        return tree.transpose(tree.structure(like), tree.structure((0, 0)), pairs)

    def init(params):
        if not tree.leaves(params):
            return GaLoreState(zeros_count(), base_optimizer.init(params), params)
        pairs = map_leaves(lambda p, d: _galore_init_leaf(p, d, rank), params,
                           _galore_dim_nums(weight_dimension_numbers, params))
        projectors, proxies = transpose_pairs(params, pairs)
        return GaLoreState(zeros_count(), base_optimizer.init(proxies), projectors)

    def update(updates, state, params=None):
        dim_nums = _galore_dim_nums(weight_dimension_numbers, updates)
        refresh = (state.count % update_proj_gap) == 0
        pairs = map_leaves(lambda g, p, d: _galore_project(g, p, d, rank, refresh),
                           updates, state.projector, dim_nums)
        low_rank, projectors = transpose_pairs(updates, pairs)
        low_rank, base_state = base_optimizer.update(low_rank, state.base_optimizer_state, None)
        updates = map_leaves(lambda u, p, g, d: _galore_project_back(u, p, g, d, rank, scale),
                             low_rank, projectors, updates, dim_nums)
        return updates, GaLoreState(safe_increment(state.count), base_state, projectors)
    return GradientTransformation(init, update)


def galore(learning_rate: ScalarOrSchedule, rank: int = 128, update_proj_gap: int = 200,
           scale: float = 1.0, base_optimizer: Optional[GradientTransformation] = None,
           weight_decay: Any = 0.0, mask: Any = None,
           weight_dimension_numbers: Any = None) -> GradientTransformation:
    r"""GaLore (Zhao et al., 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
    Projection"): ``scale_by_galore`` (Adam in the low-rank space by default), decoupled
    weight decay in the full space, then the learning rate,
    :math:`\theta \leftarrow \theta - \eta(s\, P\, \mathrm{Adam}(P^T G) + \lambda\theta)`.

    Full-parameter training whose optimiser state is :math:`r \times n` instead of
    :math:`m \times n` per weight matrix; the other leaves get the base optimiser in full.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> f = lambda p: jnp.sum(jnp.square(p["w"]))
        >>> opt = optim.contrib.galore(learning_rate=0.01, rank=2)
        >>> params = {"w": jnp.ones((4, 3)), "b": jnp.ones((3,))}
        >>> state = opt.init(params)
        >>> state[0].projector["w"].shape  # the 4x3 matrix's projector; "b" stays full
        (4, 2)
        >>> for _ in range(3):
        ...     updates, state = opt.update(fungrad.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(f"{f(params):.2f}")
        11.64
    """
    return chain(scale_by_galore(rank=rank, update_proj_gap=update_proj_gap, scale=scale,
                                 base_optimizer=base_optimizer,
                                 weight_dimension_numbers=weight_dimension_numbers),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))
