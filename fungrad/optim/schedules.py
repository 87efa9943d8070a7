"""Learning-rate schedules (as optax): functions from the step count to a value."""
from __future__ import annotations

from typing import Any, Callable, Sequence

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
