"""Building blocks for defining primitives: shape/dtype rules and small helpers.

Elementwise primitives in fungrad accept operands of *broadcast-compatible*
shapes (NumPy broadcasting) and *identical* dtypes. Allowing broadcasting at
the primitive level means ``fungrad.numpy`` never materialises broadcasts,
NumPy does them natively, and batching needs no copies; the price is that
transpose rules must ``unbroadcast`` cotangents, which ``unbroadcast`` does.
"""
from __future__ import annotations

import math
import operator
import os
from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.structural import reduce_sum_p, reshape_p
from fungrad.errors import ResourceExhaustedError

# dtype families a primitive accepts
BOOL = "b"
INT = "iu"
FLOAT = "f"
COMPLEX = "c"
INEXACT = FLOAT + COMPLEX
NUMERIC = INT + INEXACT
ANY = BOOL + NUMERIC
INT_OR_BOOL = BOOL + INT


_KINDS = {d: d.kind for d in dtypes.all_dtypes}


def kind(dtype: np.dtype) -> str:
    """NumPy's dtype kind letter, with ml_dtypes' floats counted as floats ("f")."""
    k = _KINDS.get(dtype)
    if k is None:  # an ml_dtypes dtype (once loaded), or an unsupported dtype
        k = dtypes.kind(dtype)
    return k


def broadcast_shapes(name: str, *shapes: Sequence[int]) -> tuple[int, ...]:
    """NumPy broadcasting of ``shapes``, with an error naming the primitive."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        sizes = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise TypeError(f"{name} got incompatible shapes for broadcasting: "
                            f"{', '.join(str(tuple(s)) for s in shapes)}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def check_dtypes(name: str, avals: Sequence[ShapedArray], kinds: str) -> np.dtype:
    """All operands share one dtype from the allowed ``kinds``; return it."""
    dts = {a.dtype for a in avals}
    if len(dts) > 1:
        raise TypeError(f"{name} requires arguments to have the same dtypes, got "
                        f"{', '.join(a.dtype.name for a in avals)}")
    dt = avals[0].dtype
    if kind(dt) not in kinds:
        raise TypeError(f"{name} does not accept dtype {dt.name}; accepted kinds: "
                        f"{describe_kinds(kinds)}")
    return dt


_KIND_NAMES = {FLOAT: "floating", INEXACT: "floating or complex", INT: "integer",
               NUMERIC: "numeric", INT_OR_BOOL: "integer or boolean", BOOL: "boolean"}
_KIND_LETTERS = {"b": "boolean", "i": "signed integer", "u": "unsigned integer",
                 "f": "floating", "c": "complex"}


def describe_kinds(kinds: str) -> str:
    """Words for a string of dtype kinds, for error messages."""
    return _KIND_NAMES.get(kinds) or ", ".join(_KIND_LETTERS[k] for k in kinds)


def public_op(op: Callable, name: str, doc: str, module: str) -> Callable:
    """Name a wrapper made inside a builder as the public function it is: ``__name__``,
    ``__qualname__``, ``__doc__`` and ``__module__`` (the family module that binds it), so
    ``module.name`` is ``op``. Tracebacks, ``help`` and the API reference (which follows
    ``__module__`` and ``__qualname__`` to find a function) then show ``lax.add``, not
    ``unop.<locals>.op``."""
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    op.__module__ = module
    return op


def elementwise_prim(name: str, impl: Callable, kinds: str = NUMERIC,
                     out_dtype: np.dtype | Callable | None = None) -> Primitive:
    """A primitive applying ``impl`` elementwise with NumPy broadcasting.

    ``out_dtype`` fixes the result dtype (bool for comparisons) or maps the operands'
    dtype to it (complex -> real for ``abs``); otherwise it is the operands' dtype.
    As in JAX, the result is weak when all operands are weak.
    """
    prim = Primitive(name)
    prim.def_impl(impl)

    def abstract_eval(*avals, **params):
        dt = check_dtypes(name, avals, kinds)
        shape = broadcast_shapes(name, *(a.shape for a in avals))
        if out_dtype is not None:
            dt = out_dtype(dt) if callable(out_dtype) else out_dtype
        return ShapedArray(shape, dt, all(a.weak_type for a in avals))
    prim.def_abstract_eval(abstract_eval)
    return prim


def unbroadcast(ct: Any, aval: ShapedArray) -> Any:
    """Sum ``ct`` down to ``aval.shape``: the transpose of NumPy broadcasting."""
    ct_shape = core.get_aval(ct).shape
    if ct_shape == aval.shape:
        return ct
    lead = len(ct_shape) - len(aval.shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, (n, m) in enumerate(zip(aval.shape, ct_shape[lead:])) if n == 1 and m != 1)
    summed = reduce_sum_p.bind(ct, axes=axes) if axes else ct
    if core.get_aval(summed).shape == aval.shape:
        return summed
    return reshape_p.bind(summed, new_sizes=aval.shape)


def as_operand(x: Any, like_dtype: np.dtype | None = None) -> Any:
    """Turn a Python scalar or NumPy value into something ``bind`` accepts.

    Python scalars become weakly typed 0-d arrays of ``like_dtype`` (the dtype of
    the array they meet) or of their default dtype.
    """
    if isinstance(x, (core.Tracer, Array)):
        return x
    if isinstance(x, (bool, int, float, complex)):
        dtypes.check_int_operand(x)
        dt, weak = dtypes.dtype_and_weak(x)
        if like_dtype is not None and not isinstance(x, bool):
            dt = like_dtype
        return Array(np.asarray(x, dt)[()], weak)
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32: inf, silently
        return Array(x.astype(dtypes.canonicalize_dtype(x.dtype), copy=False))


def operand_dtype(*xs: Any) -> np.dtype | None:
    """The dtype of the first non-Python-scalar operand (what scalars convert to)."""
    for x in xs:
        if not isinstance(x, (bool, int, float, complex)):
            return getattr(x, "dtype", None) or np.asarray(x).dtype
    return None


def _shape_error(name: str, argname: str, shape: Any) -> TypeError:
    return TypeError(f"{name}: argument '{argname}' must be an integer or a 1D sequence of "
                     f"concrete values of integer type, got {shape!r}.")


def _static_dim(d: Any, name: str, argname: str, shape: Any) -> int:
    if isinstance(d, core.Tracer):
        d = d._concrete(f"{name}: argument '{argname}'")
    try:
        return operator.index(d)
    except TypeError:
        raise _shape_error(name, argname, shape) from None


def static_ints(values: Any, name: str, argname: str = "shape") -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple of Python ints (sizes, static indices).

    An int is anything ``operator.index`` accepts (NumPy integers, 0-d integer arrays), as
    in JAX; strings, floats and other values raise a ``TypeError`` naming the function
    ``name`` and its argument ``argname``. A traced value raises ``ConcretizationTypeError``
    (which says how to make the argument static) naming them too.
    """
    if type(values) is tuple:
        dims = values
    else:
        dims = (values,) if type(values) is int else _as_sequence(values, name, argname)
    try:
        return tuple(map(operator.index, dims))
    except TypeError:  # a traced size, or not an integer: find it and say which
        return tuple(_static_dim(d, name, argname, values) for d in dims)


def _as_sequence(values: Any, name: str, argname: str) -> tuple:
    """``values`` as a tuple of (not yet checked) sizes: an int-like becomes one size."""
    if isinstance(values, core.Tracer):
        values = values._concrete(f"{name}: argument '{argname}'")
    if isinstance(values, str):
        raise _shape_error(name, argname, values)
    try:
        return (operator.index(values),)
    except TypeError:
        pass
    try:
        return tuple(values)
    except TypeError:
        raise _shape_error(name, argname, values) from None


def hashable_shape(shape: Any, name: str, argname: str = "shape") -> tuple[int, ...]:
    """A static shape as a tuple of non-negative Python ints (JAX's ``canonicalize_shape``):
    ``static_ints``, plus a ``TypeError`` for a negative size, as in JAX."""
    out = static_ints(shape, name, argname)
    if out and min(out) < 0:
        raise TypeError(f"{name}: argument '{argname}' must have every element be nonnegative, "
                        f"got {out}.")
    return out


# An array whose byte size exceeds the machine's memory can never be computed: an op that
# would only make a broadcast view of that size raises instead, as an allocation would.
MAX_ARRAY_BYTES = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_nbytes(name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Raise ``ResourceExhaustedError`` if an array of ``shape`` and ``dtype`` cannot fit in
    memory; for impls that return broadcast views, which allocate nothing themselves."""
    if math.prod(shape) * dtype.itemsize > MAX_ARRAY_BYTES:
        raise ResourceExhaustedError(name, shape, dtype)
