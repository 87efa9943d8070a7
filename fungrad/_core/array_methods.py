"""Operators and ``jax.Array`` methods, written once for arrays and tracers.

Every operator forwards to the ``fungrad.numpy`` function of the same meaning,
so ``x + y`` on arrays or tracers is exactly ``jnp.add(x, y)``.
"""
from __future__ import annotations

from typing import Any

_jnp: Any = None  # fungrad.numpy, set by ``install`` (it imports this module)


def _reflected(f):
    def method(self, other):
        return f(other, self)
    method.__name__ = f"r{f.__name__}"
    return method


_BINARY_OPS = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
               "floordiv": "floor_divide", "mod": "remainder", "pow": "power",
               "matmul": "matmul", "and": "bitwise_and", "or": "bitwise_or",
               "xor": "bitwise_xor", "lshift": "left_shift", "rshift": "right_shift",
               "divmod": "divmod"}
_COMPARE_OPS = {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
                "eq": "equal", "ne": "not_equal"}
_UNARY_OPS = {"neg": "negative", "pos": "positive", "abs": "abs", "invert": "invert"}
_METHODS = ("all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj", "conjugate",
            "cumprod", "cumsum", "diagonal", "dot", "flatten", "max", "mean", "min", "nonzero",
            "prod", "ravel", "repeat", "reshape", "round", "searchsorted", "sort", "squeeze",
            "std", "sum", "swapaxes", "take", "trace", "transpose", "var", "view")
# Methods whose argument convention differs from the function of the same name:
# x.reshape(2, 3) and x.transpose(1, 0) take varargs; x.flatten() is ravel.
_METHOD_TARGETS = {"reshape": "_method_reshape", "transpose": "_method_transpose",
                   "flatten": "ravel", "view": "_view"}


class ArrayMethods:
    """Operators and ``jax.Array`` methods, written once for arrays and tracers."""
    __slots__ = ()

    T = property(lambda self: _jnp.transpose(self))
    mT = property(lambda self: _jnp.swapaxes(self, -1, -2))
    real = property(lambda self: _jnp.real(self))
    imag = property(lambda self: _jnp.imag(self))

    def __getitem__(self, idx: Any):
        return _jnp._getitem(self, idx)

    @property
    def at(self):
        """Functional updates: ``x.at[idx].set(v)`` returns a new array (see jax.Array.at)."""
        return _jnp._IndexUpdateHelper(self)

    def __setitem__(self, idx: Any, value: Any) -> None:
        """Arrays are immutable: say how to write the update functionally (as JAX)."""
        raise TypeError("fungrad arrays are immutable and do not support in-place item "
                        "assignment. Instead of x[idx] = y, use x = x.at[idx].set(y) or "
                        "another .at[] method (add, multiply, min, max, ...): they return a "
                        "new array.")

    def __delitem__(self, idx: Any) -> None:
        """Arrays are immutable: point to ``fungrad.numpy.delete``."""
        raise TypeError("fungrad arrays are immutable and do not support item deletion. "
                        "Instead of del x[idx], use x = fungrad.numpy.delete(x, idx): it "
                        "returns a new array.")

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object (a 0-d array)")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        raise TypeError("unhashable type: fungrad arrays are mutable-looking values; use a "
                        "tuple or a Python scalar as a dict key or static argument")

    def __round__(self, ndigits=None):
        out = _jnp.round(self, ndigits or 0)
        return out.astype(int) if ndigits is None else out  # round(x) is an integer array


def _deferring(f):
    """``f`` as an operator that returns ``NotImplemented`` for an operand of a deferred type,
    so that Python calls that type's own (reflected) operator."""
    def method(self, other):
        if isinstance(other, _deferred):
            return NotImplemented
        return f(self, other)
    method.__name__, method.__wrapped__ = f.__name__, f
    return method


_deferred: tuple[type, ...] = ()


def defer_operators_to(cls: type) -> None:
    """Make ``x + m``, ``x @ m``, ... with an array ``x`` and an ``m`` of type ``cls`` call
    ``cls``'s reflected operator (``m.__rmatmul__(x)``), as ``jax.Array``'s operators defer to
    types they do not know (``fungrad.experimental.sparse.BCOO`` registers itself). Until a
    type registers, the operators are ``fungrad.numpy``'s functions themselves, with no
    extra frame on the eager hot path."""
    global _deferred
    if not _deferred:  # the first type: wrap the installed operators, once
        for dunder in _BINARY_OPS:
            for op in (f"__{dunder}__", f"__r{dunder}__"):
                setattr(ArrayMethods, op, _deferring(vars(ArrayMethods)[op]))
    _deferred += (cls,)


def install(jnp: Any) -> None:
    """Bind the operators and methods to ``fungrad.numpy``'s functions themselves (no
    forwarding frame on the eager hot path); ``fungrad.numpy`` calls this on import, as
    ``jax.numpy`` sets up ``jax.Array``'s methods."""
    global _jnp
    _jnp = jnp
    for dunder, name in _BINARY_OPS.items():
        setattr(ArrayMethods, f"__{dunder}__", getattr(jnp, name))
        setattr(ArrayMethods, f"__r{dunder}__", _reflected(getattr(jnp, name)))
    for dunder, name in {**_COMPARE_OPS, **_UNARY_OPS}.items():
        setattr(ArrayMethods, f"__{dunder}__", getattr(jnp, name))
    for name in _METHODS:
        setattr(ArrayMethods, name, getattr(jnp, _METHOD_TARGETS.get(name, name)))
