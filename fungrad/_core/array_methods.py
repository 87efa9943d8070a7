"""Operators and ``jax.Array`` methods, written once for arrays and tracers.

Every operator forwards to the ``fungrad.numpy`` function of the same meaning,
so ``x + y`` on arrays or tracers is exactly ``jnp.add(x, y)``.
"""
from __future__ import annotations

from typing import Any

_jnp: Any = None  # fungrad.numpy, bound lazily to avoid an import cycle


def _numpy_module() -> Any:
    global _jnp
    if _jnp is None:
        import fungrad.numpy as jnp
        _jnp = jnp
    return _jnp


def _binary(name: str, reflected: bool = False):
    def method(self, other):
        f = getattr(_jnp or _numpy_module(), name)
        return f(other, self) if reflected else f(self, other)
    method.__name__ = name
    return method


def _unary(name: str):
    def method(self):
        return getattr(_jnp or _numpy_module(), name)(self)
    method.__name__ = name
    return method


def _forward(name: str):
    target = _METHOD_TARGETS.get(name, name)

    def method(self, *args, **kwargs):
        return getattr(_jnp or _numpy_module(), target)(self, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = f"Same as ``fungrad.numpy.{name}(self, ...)``."
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

    T = property(lambda self: (_jnp or _numpy_module()).transpose(self))
    mT = property(lambda self: (_jnp or _numpy_module()).swapaxes(self, -1, -2))
    real = property(lambda self: (_jnp or _numpy_module()).real(self))
    imag = property(lambda self: (_jnp or _numpy_module()).imag(self))

    def __getitem__(self, idx: Any):
        return (_jnp or _numpy_module())._getitem(self, idx)

    @property
    def at(self):
        """Functional updates: ``x.at[idx].set(v)`` returns a new array (see jax.Array.at)."""
        return (_jnp or _numpy_module())._IndexUpdateHelper(self)

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
        jnp = _jnp or _numpy_module()
        out = jnp.round(self, ndigits or 0)
        return out.astype(int) if ndigits is None else out  # round(x) is an integer array


for _dunder, _name in _BINARY_OPS.items():
    setattr(ArrayMethods, f"__{_dunder}__", _binary(_name))
    setattr(ArrayMethods, f"__r{_dunder}__", _binary(_name, reflected=True))
for _dunder, _name in _COMPARE_OPS.items():
    setattr(ArrayMethods, f"__{_dunder}__", _binary(_name))
for _dunder, _name in _UNARY_OPS.items():
    setattr(ArrayMethods, f"__{_dunder}__", _unary(_name))
for _name in _METHODS:
    setattr(ArrayMethods, _name, _forward(_name))
