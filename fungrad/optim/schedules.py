"""Learning-rate schedules (as optax): functions from the step count to a value."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import fungrad.numpy as jnp

Schedule = Callable[[Any], Any]


def constant_schedule(value: float) -> Schedule:
    """Always ``value``."""
    return lambda count: value


def polynomial_schedule(init_value: float, end_value: float, power: float, transition_steps: int,
                        transition_begin: int = 0) -> Schedule:
    """From ``init_value`` to ``end_value`` over ``transition_steps`` as ``(1 - t)**power``."""
    if transition_steps <= 0:
        return constant_schedule(init_value)

    def schedule(count):
        count = jnp.clip(count - transition_begin, 0, transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * (frac ** power) + end_value
    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """Linear interpolation from ``init_value`` to ``end_value``."""
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Schedule:
    """``init_value * ((1 - alpha) * (0.5 (1 + cos(pi t / T)))**exponent + alpha)``."""
    if decay_steps <= 0:
        raise ValueError("cosine_decay_schedule: decay_steps must be positive")

    def schedule(count):
        count = jnp.minimum(count, decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * count / decay_steps))
        return init_value * ((1 - alpha) * cosine ** exponent + alpha)
    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Switch to ``schedules[i+1]`` (counting from 0 again) at ``boundaries[i]``."""
    def schedule(step):
        out = schedules[0](step)
        for boundary, s in zip(boundaries, schedules[1:]):
            out = jnp.where(step < boundary, out, s(step - boundary))
        return out
    return schedule


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0,
                                 exponent: float = 1.0) -> Schedule:
    """Linear warm-up to ``peak_value``, then cosine decay to ``end_value`` at ``decay_steps``."""
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
                           cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha,
                                                 exponent)],
                          [warmup_steps])


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    """``init_value * decay_rate ** ((t - begin) / transition_steps)``, optionally stepwise."""
    if transition_steps <= 0:
        return constant_schedule(init_value)

    def schedule(count):
        decreased = count - transition_begin
        p = decreased / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(decreased <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is not None:
            value = (jnp.maximum if decay_rate < 1 else jnp.minimum)(value, end_value)
        return value
    return schedule


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: dict | None = None) -> Schedule:
    """Multiply the value by ``scale`` once the count passes each ``boundary``."""
    items = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        v = init_value
        for threshold, s in items:
            indicator = jnp.maximum(0.0, jnp.sign(threshold - count))
            v = v * indicator + (1 - indicator) * s * v
        return v
    return schedule


def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int
                             ) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value``, then ``peak_value``."""
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_exponential_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                      transition_steps: int, decay_rate: float,
                                      transition_begin: int = 0, staircase: bool = False,
                                      end_value: float | None = None) -> Schedule:
    """Linear warm-up to ``peak_value``, then ``exponential_decay`` from it."""
    return join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
                           exponential_decay(peak_value, transition_steps, decay_rate,
                                             transition_begin, staircase, end_value)],
                          [warmup_steps])


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> Schedule:
    """Warm restarts (SGDR): one ``warmup_cosine_decay_schedule(**kwargs)`` after another,
    each starting where the previous one's ``decay_steps`` end."""
    schedules, boundaries, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    return join_schedules(schedules, boundaries[:-1])


def _linear_interpolate(start: Any, end: Any, pct: Any) -> Any:
    return (end - start) * pct + start


def _cosine_interpolate(start: Any, end: Any, pct: Any) -> Any:
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)


_INTERPOLATIONS = {"linear": _linear_interpolate, "cosine": _cosine_interpolate}


def piecewise_interpolate_schedule(interpolate_type: str, init_value: float,
                                   boundaries_and_scales: dict | None = None) -> Schedule:
    """From ``init_value``, reach the value times ``scale`` at each ``boundary``
    (cumulatively), interpolating ``"linear"``-ly or along a half ``"cosine"`` in between;
    constant after the last boundary."""
    if interpolate_type not in _INTERPOLATIONS:
        raise ValueError("piecewise_interpolate_schedule: interpolate_type must be 'cosine' or "
                         f"'linear', got {interpolate_type!r}")
    interpolate = _INTERPOLATIONS[interpolate_type]
    boundaries, scales = zip(*sorted((boundaries_and_scales or {}).items())) \
        if boundaries_and_scales else ((), ())
    if any(s < 0 for s in scales):
        raise ValueError("piecewise_interpolate_schedule: scales must be non-negative")

    def schedule(count):
        bounds = jnp.stack((0,) + tuple(boundaries))
        values = jnp.cumprod(jnp.stack((init_value,) + tuple(scales)))
        sizes = jnp.maximum(bounds[1:] - bounds[:-1], 1)
        inside = jnp.logical_and(bounds[:-1] <= count, count < bounds[1:])
        pct = (count - bounds[:-1]) / sizes
        return inside.dot(interpolate(values[:-1], values[1:], pct)) + \
            (bounds[-1] <= count) * values[-1]
    return schedule


def _onecycle(interpolate_type: str, transition_steps: int, peak_value: float,
              boundaries_and_scales: dict, div_factor: float) -> Schedule:
    if transition_steps <= 0:
        raise ValueError(f"{interpolate_type}_onecycle_schedule: transition_steps must be "
                         f"positive, got {transition_steps}")
    return piecewise_interpolate_schedule(interpolate_type, peak_value / div_factor,
                                          boundaries_and_scales)


def linear_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             pct_final: float = 0.85, div_factor: float = 25.0,
                             final_div_factor: float = 1e4) -> Schedule:
    """The one-cycle policy with linear pieces: up from ``peak_value / div_factor`` to the
    peak at ``pct_start``, back down by ``pct_final``, then to ``1 / final_div_factor`` of
    the start at ``transition_steps``."""
    return _onecycle("linear", transition_steps, peak_value, {
        int(pct_start * transition_steps): div_factor,
        int(pct_final * transition_steps): 1.0 / div_factor,
        transition_steps: 1.0 / final_div_factor}, div_factor)


def cosine_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             div_factor: float = 25.0, final_div_factor: float = 1e4
                             ) -> Schedule:
    """The one-cycle policy with half-cosine pieces: up to ``peak_value`` at ``pct_start``,
    then down to ``peak_value / (div_factor * final_div_factor)`` at ``transition_steps``."""
    return _onecycle("cosine", transition_steps, peak_value, {
        int(pct_start * transition_steps): div_factor,
        int(transition_steps): 1.0 / (div_factor * final_div_factor)}, div_factor)
