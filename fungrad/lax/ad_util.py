"""``stop_gradient``: the identity function whose derivative is zero.

The primitive's JVP gives a symbolic zero tangent, so every enclosing
differentiation (forward or reverse, at any nesting depth) treats its output as
a constant; batching is elementwise.
"""
from __future__ import annotations

from typing import Any, TypeVar

from fungrad import tree as tree_util
from fungrad._core.array import Array
from fungrad._core.core import Primitive, Tracer
from fungrad._core.lowering import def_compiler_traits
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import as_operand

T = TypeVar("T")

stop_gradient_p = Primitive("stop_gradient")
stop_gradient_p.def_impl(lambda xp, x: x)  # arrays are immutable: no copy needed
stop_gradient_p.def_abstract_eval(lambda x: x)
ad.def_nondiff(stop_gradient_p)
batching.defvectorized(stop_gradient_p)
def_compiler_traits(stop_gradient_p, identity=True)  # no meaning once differentiated


def _stop_gradient_leaf(x: Any) -> Any:
    return stop_gradient_p.bind(x if isinstance(x, (Array, Tracer)) else as_operand(x))


def stop_gradient(x: T) -> T:
    """The identity on ``x`` (an array or a pytree of arrays), but a constant to autodiff.

    Use it to keep a value out of the derivative, e.g. a target network's output
    or the max subtracted for a numerically stable softmax (as ``jax.lax.stop_gradient``).

    Example:
        >>> import fungrad
        >>> fungrad.grad(lambda x: fungrad.lax.stop_gradient(x) * x)(3.0)
        Array(3., dtype=float32, weak_type=True)
    """
    return tree_util.map(_stop_gradient_leaf, x)


__all__ = ["stop_gradient", "stop_gradient_p"]
