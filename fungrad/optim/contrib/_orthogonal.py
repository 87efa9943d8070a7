"""``optax.contrib``: newer optimisers (Muon, schedule-free, Prodigy, ...), as optax's.

Each state NamedTuple sits above the function that makes it; names, defaults and the order
of floating-point operations follow optax's, so results agree to float32 rounding.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import fungrad.numpy as jnp
from fungrad import lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformation, ScalarOrSchedule, chain,
                                 init_empty_state, safe_increment, tree_cast, zeros_count)
from fungrad.optim.alias import adamw, sgd
from fungrad.optim.combine import MaskedNode, multi_transform
from fungrad.optim.schedules import warmup_constant_schedule
from fungrad.optim.transform import (ScaleByAdamState, _bias_correction, _debiased_mu, _moment,
                                     add_decayed_weights, scale_by_learning_rate, scale_by_rms)
from fungrad.optim.tree_utils import (tree_add_scale, tree_div, tree_dtype, tree_mul, tree_sub,
                                      tree_sum, tree_update_moment_per_elem_norm, tree_vdot)
from fungrad.transforms.api import vmap

__all__ = [
    "MuonDimensionNumbers", "MuonState", "scale_by_muon", "muon",
    "ScheduleFreeState", "schedule_free", "schedule_free_adamw", "schedule_free_sgd",
    "schedule_free_eval_params",
    "scale_by_adopt", "adopt",
    "ScaleByAdemamixState", "scale_by_ademamix", "ademamix",
    "ScaleBySimplifiedAdEMAMixState", "scale_by_simplified_ademamix", "simplified_ademamix",
    "ProdigyState", "prodigy",
    "ReduceLROnPlateauState", "reduce_on_plateau",
    "MadgradState", "scale_by_madgrad", "madgrad",
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


def _muon_reshape(x: Any, dim_nums: MuonDimensionNumbers) -> tuple[Callable, Callable]:
    """Functions to a (batch, fan-in, fan-out) array and back."""
    if x.ndim < 2:
        raise ValueError(f"Muon optimized parameters must have rank >= 2, got {x.ndim=}")
    reduction_axes, output_axes = _normalize_axes(x, dim_nums)
    if set(reduction_axes) & set(output_axes):
        raise ValueError("Normalized reduction axes and output axes must be disjoint, got "
                         f"{reduction_axes} and {output_axes}. Originally {dim_nums=} and "
                         f"{x.shape=}")
    batch_axes = tuple(sorted(set(range(x.ndim)) - set(reduction_axes) - set(output_axes)))
    transpose = batch_axes + reduction_axes + output_axes
    inv_transpose = tuple(sorted(range(x.ndim), key=lambda i: transpose[i]))
    shape = lambda axes: tuple(x.shape[ax] for ax in axes)
    flat_shape = tuple(math.prod(shape(a)) for a in (batch_axes, reduction_axes, output_axes))
    unflat_shape = shape(transpose)
    return (lambda y: y.transpose(transpose).reshape(flat_shape),
            lambda y: y.reshape(unflat_shape).transpose(inv_transpose))


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


# --------------------------------------------------------------------------- schedule-free

class ScheduleFreeState(NamedTuple):
    """Schedule-free's state: ``b1``, the sum of the step weights ``weight_sum``, the
    ``step_count`` (from 1), the largest learning rate so far ``max_lr``, the base
    optimiser's state and the base iterate ``z``."""

    b1: Any
    weight_sum: Any
    step_count: Any
    max_lr: Any
    base_optimizer_state: Any
    z: Any


def schedule_free_eval_params(state: ScheduleFreeState, params: Any) -> Any:
    """The parameters to evaluate a schedule-free model at: the average iterate
    :math:`x = (y - (1 - \\beta_1) z) / \\beta_1`."""
    b1, z = getattr(state, "b1"), getattr(state, "z")
    if b1 is None or z is None:
        raise ValueError("schedule_free_eval_params requires a ScheduleFreeState as input.")
    return tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, z)


def schedule_free(base_optimizer: GradientTransformation, learning_rate: ScalarOrSchedule,
                  b1: float = 0.9, weight_lr_power: float = 2.0,
                  state_dtype: Any = None) -> GradientTransformation:
    r"""Schedule-free learning (Defazio et al., 2024) around ``base_optimizer``: it steps the
    base iterate :math:`z`, averages :math:`x \leftarrow (1 - c)x + c z` with weights
    :math:`c \propto \eta_{\max}^{p}`, and returns the updates to the interpolation
    :math:`y = \beta_1 x + (1 - \beta_1) z` (evaluate at ``schedule_free_eval_params``).
    """
    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        z = tree.map(lambda t: t.copy(), tree_cast(params, state_dtype))
        return ScheduleFreeState(b1=jnp.asarray(b1, dtype=params_dtype),
                                 weight_sum=jnp.zeros([], dtype=params_dtype),
                                 step_count=jnp.ones([], dtype=jnp.int32),
                                 max_lr=jnp.zeros([], dtype=params_dtype),
                                 base_optimizer_state=base_optimizer.init(params), z=z)

    def update(grads, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        lr = learning_rate
        if callable(learning_rate):
            lr = jnp.asarray(learning_rate(state.step_count), dtype=state.max_lr.dtype)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr ** weight_lr_power
        next_total_weight = state.weight_sum + weight
        ck = jnp.where(jnp.logical_or(jnp.isnan(weight), jnp.isnan(next_total_weight)),
                       jnp.full(weight.shape, jnp.nan),
                       jnp.nan_to_num(weight / next_total_weight, nan=0.0, posinf=jnp.inf))
        base_updates, base_state = base_optimizer.update(grads, state.base_optimizer_state,
                                                         params)
        z = tree.map(lambda pi, ui: jnp.asarray(pi + ui).astype(jnp.asarray(pi).dtype),
                     state.z, base_updates)
        prev_x = tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, state.z)
        x = tree.map(lambda xi, zi: (1.0 - ck) * xi + ck * zi, prev_x, z)
        new_params = tree.map(lambda xi, zi: b1 * xi + (1.0 - b1) * zi, x, z)
        updates = tree.map(lambda npi, pi: npi - pi, new_params, params)
        return updates, ScheduleFreeState(b1=state.b1, weight_sum=next_total_weight,
                                          step_count=safe_increment(state.step_count),
                                          max_lr=max_lr, base_optimizer_state=base_state, z=z)
    return GradientTransformation(init, update)


def schedule_free_sgd(learning_rate: float = 1.0, warmup_steps: Optional[int] = None,
                      b1: float = 0.9, weight_decay: Optional[float] = None,
                      weight_lr_power: float = 2.0,
                      state_dtype: Any = None) -> GradientTransformation:
    """Schedule-free SGD: ``schedule_free`` around ``sgd`` (after weight decay, if any),
    with a linear warm-up over ``warmup_steps``."""
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(init_value=0, peak_value=learning_rate,
                                                 warmup_steps=warmup_steps)
    optimizer = sgd(learning_rate)
    if weight_decay is not None:
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def schedule_free_adamw(learning_rate: float = 0.0025, warmup_steps: Optional[int] = None,
                        b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                        weight_decay: float = 0.0, weight_lr_power: float = 2.0,
                        state_dtype: Any = None) -> GradientTransformation:
    """Schedule-free AdamW: ``schedule_free`` around bias-corrected RMSProp (no momentum:
    the averaging replaces it) with decoupled weight decay and a linear warm-up."""
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(init_value=0, peak_value=learning_rate,
                                                 warmup_steps=warmup_steps)
    optimizer = chain(scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
                      add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


# --------------------------------------------------------------------------- ADOPT

def scale_by_adopt(b1: float = 0.9, b2: float = 0.9999, eps: float = 1e-6, mu_dtype: Any = None,
                   *, nesterov: bool = False, use_clipping: bool = True,
                   clip_value_fn: Callable[[Any], Any] = lambda x: x ** 0.25
                   ) -> GradientTransformation:
    r"""ADOPT's rescaling: the momentum of :math:`g / \max(\sqrt{v_{t-1}}, \epsilon)` (clipped
    to :math:`\pm` ``clip_value_fn(count)``), normalised by the *previous* second moment;
    the state is Adam's."""
    def init(params):
        mu = tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        return ScaleByAdamState(count=zeros_count(), mu=mu, nu=tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        b2_ = jnp.where(state.count > 0, b2, 0)
        b1_ = jnp.where(state.count > 0, b1, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, b2_, 2)
        normalized = lambda g, n: g / jnp.maximum(jnp.sqrt(n), eps)
        if use_clipping:
            clip_value = clip_value_fn(state.count)
            mu_updates = tree.map(lambda g, n: jnp.clip(normalized(g, n), -clip_value, clip_value),
                                  updates, state.nu)
        else:
            mu_updates = tree.map(normalized, updates, state.nu)
        mu = _moment(mu_updates, state.mu, b1_, 1)
        updates = _moment(mu_updates, mu, b1_, 1) if nesterov else mu
        return updates, ScaleByAdamState(count=safe_increment(state.count),
                                         mu=tree_cast(mu, mu_dtype), nu=nu)
    return GradientTransformation(init, update)


def adopt(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.9999, eps: float = 1e-6,
          mu_dtype: Any = None, *, nesterov: bool = False, use_clipping: bool = True,
          clip_value_fn: Callable[[Any], Any] = lambda x: x ** 0.25) -> GradientTransformation:
    r"""ADOPT (Taniguchi et al., 2024): Adam that normalises the gradient by the second
    moment of the steps before it, converging for any :math:`\beta_2`."""
    return chain(scale_by_adopt(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nesterov=nesterov,
                                use_clipping=use_clipping, clip_value_fn=clip_value_fn),
                 scale_by_learning_rate(learning_rate))


# --------------------------------------------------------------------------- AdEMAMix

class ScaleByAdemamixState(NamedTuple):
    """AdEMAMix's state: the step counts ``count`` and ``count_m2`` (for the schedules of
    ``b3`` and ``alpha``), the fast and slow momenta ``m1``, ``m2`` and the second moment
    ``nu``."""

    count: Any
    count_m2: Any
    m1: Any
    m2: Any
    nu: Any


def scale_by_ademamix(b1: float = 0.9, b2: float = 0.999, b3: ScalarOrSchedule = 0.9999,
                      alpha: ScalarOrSchedule = 6.0, eps: float = 1e-8, eps_root: float = 0.0,
                      mu_dtype: Any = None) -> GradientTransformation:
    r"""AdEMAMix's rescaling:
    :math:`(\hat m_1 + \alpha m_2) / (\sqrt{\hat v + \epsilon_{root}} + \epsilon)` with a
    slow, uncorrected momentum :math:`m_2` of decay ``b3``."""
    def init(params):
        zeros = lambda: tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
        return ScaleByAdemamixState(count=zeros_count(), count_m2=zeros_count(), m1=zeros(),
                                    m2=zeros(), nu=zeros())

    def update(updates, state, params=None):
        c_b3 = b3(state.count_m2) if callable(b3) else b3
        c_alpha = alpha(state.count_m2) if callable(alpha) else alpha
        m1 = _moment(updates, state.m1, b1, 1)
        m2 = _moment(updates, state.m2, c_b3, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = safe_increment(state.count)
        m1_hat = _bias_correction(m1, b1, count)
        nu_hat = _bias_correction(nu, b2, count)
        updates = tree.map(lambda m1_, m2_, v: (m1_ + c_alpha * m2_) / (jnp.sqrt(v + eps_root)
                                                                        + eps),
                           m1_hat, m2, nu_hat)
        return updates, ScaleByAdemamixState(count=count,
                                             count_m2=safe_increment(state.count_m2),
                                             m1=m1, m2=m2, nu=nu)
    return GradientTransformation(init, update)


def ademamix(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
             b3: ScalarOrSchedule = 0.9999, alpha: ScalarOrSchedule = 5.0, eps: float = 1e-8,
             eps_root: float = 0.0, mu_dtype: Any = None, weight_decay: float = 0.0,
             mask: Any = None) -> GradientTransformation:
    r"""AdEMAMix (Pagliardini et al., 2024): Adam plus a slow momentum,
    :math:`\theta \leftarrow \theta - \eta((\hat m_1 + \alpha m_2) / (\sqrt{\hat v} +
    \epsilon) + \lambda\theta)`."""
    return chain(scale_by_ademamix(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root,
                                   mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """Simplified AdEMAMix's state: the step ``t``, the momentum sum ``m`` and the second
    moment ``n``."""

    t: Any
    m: Any
    n: Any


def _lerp(t: Any, a: Any, b: Any) -> Any:
    return tree_add_scale(a, t, tree_sub(b, a))


def scale_by_simplified_ademamix(b1: float = 0.99, b2: float = 0.95,
                                 alpha: ScalarOrSchedule = 0.0, eps: float = 1e-8,
                                 eps_root: float = 0.0) -> GradientTransformation:
    r"""Simplified AdEMAMix's rescaling: :math:`(m + \alpha g) / (\sqrt{\hat n} + \epsilon)`
    with the undamped momentum :math:`m \leftarrow \beta_1 m + g`."""
    def init(params):
        return ScaleBySimplifiedAdEMAMixState(t=jnp.array(0, jnp.int32),
                                              m=tree.map(jnp.zeros_like, params),
                                              n=tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        c_alpha = alpha(state.t) if callable(alpha) else alpha
        m = tree_add_scale(updates, b1, state.m)
        n = _lerp(b2, tree_mul(updates, updates), state.n)
        t = safe_increment(state.t)
        n_hat = _bias_correction(n, b2, t)
        u_den = tree.map(lambda v: jnp.sqrt(v + eps_root) + eps, n_hat)
        return (tree_div(tree_add_scale(m, c_alpha, updates), u_den),
                ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n))
    return GradientTransformation(init, update)


def simplified_ademamix(learning_rate: ScalarOrSchedule, b1: float = 0.99, b2: float = 0.95,
                        alpha: ScalarOrSchedule = 0.0, eps: float = 1e-8, eps_root: float = 0.0,
                        weight_decay: float = 0.0, mask: Any = None) -> GradientTransformation:
    """Simplified AdEMAMix (Morwani et al., 2024): ``scale_by_simplified_ademamix``, weight
    decay and the learning rate."""
    return chain(scale_by_simplified_ademamix(b1=b1, b2=b2, alpha=alpha, eps=eps,
                                              eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


# --------------------------------------------------------------------------- Prodigy

class ProdigyState(NamedTuple):
    """Prodigy's state: the moments ``exp_avg``, ``exp_avg_sq``, the weighted gradient sum
    ``grad_sum``, the initial parameters ``params0``, the step-size estimate ``estim_lr``, the
    numerator of its estimate ``numerator_weighted`` and the step ``count``."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: Any
    numerator_weighted: Any
    count: Any


def prodigy(learning_rate: ScalarOrSchedule = 1.0, betas: tuple[float, float] = (0.9, 0.999),
            beta3: Optional[float] = None, eps: float = 1e-8, estim_lr0: float = 1e-6,
            estim_lr_coef: float = 1.0, weight_decay: float = 0.0,
            safeguard_warmup: bool = False) -> GradientTransformation:
    r"""Prodigy (Mishchenko & Defazio, 2023): Adam whose step size :math:`d` estimates the
    distance to the solution, :math:`d \leftarrow \max(d, \sum \lambda_k \langle g_k,
    \theta_0 - \theta_k\rangle / \|\sum \lambda_k g_k\|_1)`; start with
    ``learning_rate=1``."""
    beta1, beta2 = betas
    if beta3 is None:
        beta3 = beta2 ** 0.5

    def init(params):
        params_dtype = tree_dtype(params, "lowest")
        zeros = lambda: tree.map(jnp.zeros_like, params)
        return ProdigyState(zeros(), zeros(), zeros(), params,
                            jnp.asarray(estim_lr0, dtype=params_dtype),
                            jnp.zeros((), dtype=params_dtype), zeros_count())

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        count_inc = safe_increment(state.count)
        sched = learning_rate(state.count) if callable(learning_rate) else learning_rate
        estim_lr = state.estim_lr
        bc = (1 - beta2 ** count_inc) ** 0.5 / (1 - beta1 ** count_inc)
        dlr = jnp.asarray(estim_lr * sched * bc, dtype=estim_lr.dtype)
        dg = tree.map(lambda g: estim_lr * g, updates)
        param_diff = tree.map(lambda p0, p: p0 - p, state.params0, params)
        numerator_acum = tree_vdot(updates, param_diff)
        exp_avg = tree.map(lambda ea, d: beta1 * ea + (1 - beta1) * d, state.exp_avg, dg)
        exp_avg_sq = tree.map(lambda eas, d: beta2 * eas + (1 - beta2) * d * d,
                              state.exp_avg_sq, dg)
        sum_lr = estim_lr if safeguard_warmup else dlr
        grad_sum = tree.map(lambda s, d: beta3 * s + sum_lr * d / estim_lr0, state.grad_sum, dg)
        numerator_weighted = beta3 * state.numerator_weighted
        numerator_weighted += estim_lr / estim_lr0 * dlr * numerator_acum
        denominator = tree_sum(tree.map(jnp.abs, grad_sum))
        estim_lr = jnp.maximum(state.estim_lr, estim_lr_coef * numerator_weighted / denominator)
        p_update = tree.map(lambda ea, eas, p: (-weight_decay * dlr * p
                                                - dlr * ea / (jnp.sqrt(eas) + estim_lr * eps)),
                            exp_avg, exp_avg_sq, params)
        return p_update, ProdigyState(exp_avg, exp_avg_sq, grad_sum, state.params0, estim_lr,
                                      numerator_weighted, count_inc)
    return GradientTransformation(init, update)


# --------------------------------------------------------------------------- reduce on plateau

class ReduceLROnPlateauState(NamedTuple):
    """``reduce_on_plateau``'s state: the current ``scale``, the ``best_value`` so far, the
    ``plateau_count`` and ``cooldown_count``, and the ``count`` and running average
    ``avg_value`` of the values accumulated towards the next check."""

    scale: Any
    best_value: Any
    plateau_count: Any
    cooldown_count: Any
    count: Any
    avg_value: Any


def reduce_on_plateau(factor: float = 0.1, patience: int = 10, rtol: float = 1e-4,
                      atol: float = 0.0, cooldown: int = 0, accumulation_size: int = 1,
                      min_scale: float = 0.0) -> GradientTransformation:
    """Scale the updates by a factor that drops by ``factor`` (down to ``min_scale``) when
    the average of ``accumulation_size`` values has not improved by ``rtol``/``atol`` on the
    best one for ``patience`` checks, then waits ``cooldown`` checks.

    Its ``update(updates, state, params=None, *, value)`` takes the objective's current
    value ``value`` as a keyword argument (optax's extra argument).
    """
    if factor <= 0.0 or factor >= 1.0:
        raise ValueError(f"Factor must be in the range (0, 1), got factor = {factor}.")
    if rtol < 0.0 or atol < 0.0:
        raise ValueError("Both rtol and atol must be non-negative, got "
                         f"rtol = {rtol} and atol = {atol}.")
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("At least one of rtol or atol must be positive, got "
                         f"rtol = {rtol} and atol = {atol}.")
    if rtol > 1.0:
        raise ValueError(f"rtol must be less than or equal to 1.0, got rtol = {rtol}.")

    def init(params):
        highest = tree_dtype(params, "highest")
        return ReduceLROnPlateauState(
            scale=jnp.asarray(1.0, dtype=tree_dtype(params, "lowest")),
            best_value=jnp.asarray(float("inf"), dtype=highest),
            plateau_count=zeros_count(), cooldown_count=zeros_count(), count=zeros_count(),
            avg_value=jnp.asarray(0.0, highest))

    def update_scale(state):
        avg_value = state.avg_value
        has_improved = jnp.where(avg_value < (1 - rtol) * state.best_value - atol, 1, 0)
        best_value = jnp.where(has_improved, avg_value.astype(state.best_value.dtype),
                               state.best_value)
        plateau_count = jnp.where(has_improved, 0, safe_increment(state.plateau_count))

        def in_cooldown():
            return jnp.asarray(0, jnp.int32), state.scale, state.cooldown_count - 1

        def not_in_cooldown():
            reduce = plateau_count == patience
            return (jnp.where(reduce, 0, plateau_count),
                    jnp.maximum(jnp.where(reduce, state.scale * factor, state.scale), min_scale),
                    jnp.where(reduce, cooldown, 0).astype(jnp.int32))
        new_plateau_count, new_scale, new_cooldown_count = lax.cond(
            state.cooldown_count > 0, in_cooldown, not_in_cooldown)
        return ReduceLROnPlateauState(scale=new_scale,
                                      best_value=best_value.astype(state.best_value.dtype),
                                      plateau_count=new_plateau_count,
                                      cooldown_count=new_cooldown_count,
                                      count=jnp.asarray(0, dtype=jnp.int32),
                                      avg_value=jnp.asarray(0.0, avg_value.dtype))

    def update(updates, state, params=None, *, value):
        count = state.count
        new_count = safe_increment(count)
        avg_value = ((count * state.avg_value + jnp.asarray(value).astype(state.avg_value.dtype))
                     / new_count)
        state = state._replace(avg_value=avg_value.astype(state.avg_value.dtype), count=new_count)
        state = lax.cond(new_count == accumulation_size, update_scale, lambda s: s, state)
        return tree.map(lambda g: state.scale * g, updates), state
    return GradientTransformation(init, update)


# --------------------------------------------------------------------------- MADGRAD

class MadgradState(NamedTuple):
    """MADGRAD's state: the step ``count``, the weighted sums of squared gradients
    ``grad_sum_sq`` and of gradients ``s``, and the initial parameters ``x0``."""

    count: Any
    grad_sum_sq: Any
    s: Any
    x0: Any


def scale_by_madgrad(learning_rate: ScalarOrSchedule, momentum: float = 0.9,
                     eps: float = 1e-6) -> GradientTransformation:
    r"""MADGRAD's step (the updates *are* the step, learning rate included): dual averaging
    :math:`z = x_0 - s / (\sqrt[3]{\sum \lambda g^2} + \epsilon)`, :math:`s = \sum \lambda g`,
    :math:`\lambda = (\eta + \epsilon)\sqrt{k + 1}`, then :math:`x \leftarrow (1 - \beta)z +
    \beta x`."""
    def init(params):
        return MadgradState(count=zeros_count(), grad_sum_sq=tree.map(jnp.zeros_like, params),
                            s=tree.map(jnp.zeros_like, params), x0=tree.map(lambda x: x, params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        count = state.count
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        lamb = (lr + eps) * jnp.sqrt(count + 1)
        grad_sum_sq = tree.map(lambda g_sq, g: g_sq + (lamb * g ** 2).astype(g.dtype),
                               state.grad_sum_sq, updates)
        s = tree.map(lambda s_val, g: s_val + (lamb * g).astype(g.dtype), state.s, updates)
        sigma = tree.map(lambda g_sq: jnp.cbrt(g_sq) + eps, grad_sum_sq)
        z = tree.map(lambda x0, s_val, sig: x0 - s_val / sig, state.x0, s, sigma)
        x_new = tree.map(lambda z_val, x: (1 - momentum) * z_val + momentum * x, z, params)
        return (tree.map(lambda n, o: n - o, x_new, params),
                MadgradState(count=safe_increment(count), grad_sum_sq=grad_sum_sq, s=s,
                             x0=state.x0))
    return GradientTransformation(init, update)


def madgrad(learning_rate: ScalarOrSchedule, momentum: float = 0.9, weight_decay: float = 0.0,
            eps: float = 1e-6) -> GradientTransformation:
    """MADGRAD (Defazio & Jelassi, 2021): weight decay added to the gradients, then
    ``scale_by_madgrad``."""
    return chain(add_decayed_weights(weight_decay),
                 scale_by_madgrad(learning_rate=learning_rate, momentum=momentum, eps=eps))
