"""``fungrad.custom_derivatives``: the public names of ``jax.custom_derivatives``.

>>> import fungrad
>>> from fungrad.custom_derivatives import SymbolicZero, custom_jvp
>>> @custom_jvp
... def f(x, y):
...     return x * y
>>> def f_jvp(primals, tangents):
...     (x, y), (tx, ty) = primals, tangents
...     t = 0.0 if isinstance(tx, SymbolicZero) else tx * y
...     return f(x, y), t if isinstance(ty, SymbolicZero) else t + x * ty
>>> _ = f.defjvp(f_jvp, symbolic_zeros=True)
>>> fungrad.grad(f, 1)(2.0, 3.0)
Array(2., dtype=float32, weak_type=True)
"""
from fungrad.transforms.closures import closure_convert, custom_gradient
from fungrad.transforms.custom_derivatives import (
                                                   CustomVJPPrimal,
                                                   SymbolicZero,
                                                   custom_jvp,
                                                   custom_jvp_call_p,
                                                   custom_vjp,
                                                   custom_vjp_call_p,
                                                   custom_vjp_primal_tree_values,
                                                   zero_from_primal,
)
from fungrad.transforms.linear_call import linear_call

__all__ = ["CustomVJPPrimal", "SymbolicZero", "closure_convert", "custom_gradient", "custom_jvp",
           "custom_jvp_call_p", "custom_vjp", "custom_vjp_call_p", "custom_vjp_primal_tree_values",
           "linear_call", "zero_from_primal"]
