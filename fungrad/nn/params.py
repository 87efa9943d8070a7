"""Params-tree utilities: counting, casting (mixed precision), global norm, loss scaling.

Mixed precision recipe: keep float32 master weights; compute with
``cast_floating(params, jnp.bfloat16)``; for float16 multiply the loss by a
``DynamicLossScale``, unscale the gradients, and ``adjust`` the scale by whether they were
finite (skip the step when they were not).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import fungrad.numpy as jnp
from fungrad import tree


def count_params(params: Any) -> int:
    """Total number of elements over all leaves."""
    return sum(int(jnp.size(x)) for x in tree.leaves(params))


def cast_floating(params: Any, dtype: Any) -> Any:
    """Cast floating-point leaves to ``dtype``; leave integer and boolean leaves alone."""
    return tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                    params)


def global_norm(t: Any) -> Any:
    """The L2 norm of all leaves taken together (computed in float32)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in tree.leaves(t)))


def all_finite(t: Any) -> Any:
    """True when every element of every leaf is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in tree.leaves(t)]))


@dataclasses.dataclass(frozen=True)
class DynamicLossScale:
    """A loss scale that halves on non-finite gradients and doubles after ``period`` good steps.

    A pytree: ``loss_scale`` and ``counter`` are leaves, ``period`` and ``factor`` static.
    """
    loss_scale: Any
    counter: Any
    period: int = 2000
    factor: float = 2.0

    @classmethod
    def create(cls, initial: float = 2.0 ** 15, period: int = 2000,
               factor: float = 2.0) -> "DynamicLossScale":
        """A loss scale starting at ``initial`` (2**15, as ``jmp``) with its counter at 0."""
        return cls(jnp.asarray(initial, jnp.float32), jnp.zeros((), jnp.int32), period, factor)

    def scale(self, t: Any) -> Any:
        """Every leaf of ``t`` (the loss, usually) multiplied by the loss scale."""
        return tree.map(lambda x: x * self.loss_scale.astype(x.dtype), t)

    def unscale(self, t: Any) -> Any:
        """Every leaf of ``t`` (the gradients) divided by the loss scale, in float32."""
        return tree.map(lambda x: (x.astype(jnp.float32) / self.loss_scale).astype(x.dtype), t)

    def adjust(self, grads_finite: Any) -> "DynamicLossScale":
        """The next loss scale: divided by ``factor`` (not below 1) when the gradients were
        not all finite, multiplied by it after ``period`` finite steps in a row."""
        grew = self.counter + 1 >= self.period
        scale = jnp.where(grads_finite,
                          jnp.where(grew, self.loss_scale * self.factor, self.loss_scale),
                          jnp.maximum(self.loss_scale / self.factor, 1.0))
        counter = jnp.where(grads_finite, jnp.where(grew, 0, self.counter + 1), 0)
        return DynamicLossScale(scale, counter.astype(jnp.int32), self.period, self.factor)


tree.register_dataclass(DynamicLossScale, data_fields=["loss_scale", "counter"],
                        meta_fields=["period", "factor"])
