"""Building elementwise ops: operands, eager dtype checks, and the ``unop``/``binop`` builders.

``unop``/``binop`` make a primitive with its batching rule and its user-facing wrapper,
as JAX's ``standard_unop``/``standard_naryop`` do; the elementwise families
(``elementwise``, ``transcendental``, ``special``, ``bitwise``) are written with them.

The wrappers accept Python scalars. A scalar meeting an array takes the array's
dtype when it fits that dtype's kind (``lax.mul(x_bf16, 2.0)`` stays bfloat16, as
``lax.mul(x_f32, 2.0)`` does in JAX); otherwise it keeps its default dtype and the
mismatch is reported as in ``jax.lax``.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import sys
from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import core, dtypes, fpstate
from fungrad._core.array import Array
from fungrad._core.core import Primitive
from fungrad.interpreters import batching
from fungrad.lax._prim import as_operand, check_dtypes, elementwise_prim, kind, public_op
from fungrad.lax.shapes import bitcast_convert_type, broadcast_in_dim, convert_element_type

ARRAY_TYPES = (Array, core.Tracer)
_SCALARS = (bool, int, float, complex)

# Dtypes whose NumPy arithmetic with a Python int or float keeps the array's dtype (NumPy's
# NEP 50 scalar rule), which is exactly JAX's weak-type rule: eager code may hand such
# scalars to NumPy as they are. (bfloat16 is not one: NumPy makes bfloat16 * 2.0 float32.)
NATIVE_INEXACT = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64,
                                                np.complex64, np.complex128))


def accepted_dtypes(kinds: str) -> set:
    """The dtypes whose kind is in ``kinds`` (ml_dtypes' floats join when it is loaded)."""
    return dtypes.dtypes_where(lambda d: kind(d) in kinds)


def _scalar_fits(x: Any, dtype: np.dtype) -> bool:
    """Whether Python scalar ``x`` may take ``dtype`` (its kind holds x's kind)."""
    k = dtypes.kind(dtype)
    if isinstance(x, bool):
        return k == "b"
    if isinstance(x, int):
        return k in "iufc"
    return k in ("fc" if isinstance(x, float) else "c")


def _scalar_operand(x: Any, like: np.dtype | None) -> Array:
    """Python scalar ``x`` as a weakly typed 0-d array of ``like`` where it fits that dtype's
    kind (a float beyond a float dtype's range becomes inf silently, as in JAX)."""
    if like is not None and _scalar_fits(x, like):
        try:
            return Array(fpstate.silently(np.asarray, x, like)[()], not isinstance(x, bool))
        except OverflowError:  # e.g. 300 meeting uint8: keep int32 and report the mismatch
            pass
    return as_operand(x)


def operands(*xs: Any) -> list:
    """Convert the operands of an elementwise op: arrays stay, scalars follow them."""
    out, like, scalars = list(xs), None, False
    for i, x in enumerate(out):
        if isinstance(x, _SCALARS):
            scalars = True
            continue
        if not isinstance(x, ARRAY_TYPES):
            out[i] = x = as_operand(x)
        if like is None:
            like = x.dtype
    if scalars:
        out = [_scalar_operand(x, like) if isinstance(x, _SCALARS) else x for x in out]
    return out


def check_operands(name: str, kinds: str, accepted: set, xs: Sequence[Any]) -> bool:
    """Cheap eager check that all operands share one dtype of the accepted kinds; True when
    that dtype is a sub-byte integer, which no accepted set holds (see ``intn_apply``).

    Eager evaluation runs no shape rule and NumPy would silently promote, so the
    wrappers check dtypes themselves; the error names the operation."""
    dt = xs[0].dtype
    if dt not in accepted or any(x.dtype != dt for x in xs[1:]):
        return check_dtypes(name, xs, kinds) in dtypes.intn
    return False


# --------------------------------------------------------------------------- sub-byte integers

_INTN_RULES: dict[Primitive, Callable] = {}


def def_intn_rule(prim: Primitive, rule: Callable) -> None:
    """Register ``rule(*operands, **params)``: ``prim`` on sub-byte integer operands where
    computing on them sign- or zero-extended as their signedness says would be wrong (a
    logical shift, a bit count) or where JAX refuses them."""
    _INTN_RULES[prim] = rule


def intn_apply(prim: Primitive, operands: Sequence[Any], **params: Any) -> Any:
    """``prim`` on operands of one sub-byte integer dtype: its ``def_intn_rule`` rule, or
    ``intn_compute`` of the primitive.

    NumPy's ufuncs give int8 for many of ml_dtypes' narrow types, and do not wrap around at
    their width, so the elementwise wrappers call this after their accepted-dtype check,
    which only these dtypes fail to pass on the way."""
    rule = _INTN_RULES.get(prim)
    if rule is not None:
        return rule(*operands, **params)
    return intn_compute(functools.partial(prim.bind, **params), operands)


def intn_compute(fn: Callable, operands: Sequence[Any], signed: bool | None = None) -> Any:
    """``fn`` (of one result) on operands of one sub-byte integer dtype, as XLA's CPU backend
    computes: on the operands converted to the byte-wide type (``dtypes.intn``: int8 or
    uint8), the result converted back, wrapping around, when it is of that type (a
    comparison's bool stays). ``signed`` extends the operands' bits as signed (or
    unsigned) integers of their width whatever their own signedness.

    The conversions are staged like any other operation, so ``jit``, ``vmap`` and ``grad``
    need nothing more."""
    avals = [core.get_aval(x) for x in operands]
    dt = avals[0].dtype
    view = dt
    if signed is not None and (dtypes.kind(dt) == "i") != signed:
        view = _intn_twin(dt)
    wide = dtypes.intn[view]
    out = fn(*(convert_element_type(x if view == dt else bitcast_convert_type(x, view),
                                    wide, a.weak_type) for x, a in zip(operands, avals)))
    out_aval = core.get_aval(out)
    if out_aval.dtype != wide:
        return out
    out = convert_element_type(out, view, out_aval.weak_type)
    return out if view == dt else bitcast_convert_type(out, dt)


def _intn_twin(dtype: np.dtype) -> np.dtype:
    """The sub-byte integer dtype of ``dtype``'s width and the other signedness."""
    name = dtype.name
    return dtypes.np_dtype(name[1:] if name.startswith("u") else "u" + name)


def intn_error(name: str, dtype: np.dtype) -> TypeError:
    """The error for an operation that JAX cannot run on the sub-byte integer ``dtype``."""
    return TypeError(f"{name} does not accept dtype {dtype.name} (JAX runs 1-, 2- and 4-bit "
                     "integers through only some operations, not this one); convert first, "
                     "e.g. x.astype('int8')")


def const(like: Any, value: Any) -> Array:
    """``value`` as a 0-d array of ``like``'s dtype for derivative rules, weakly typed iff
    ``like`` is a weakly typed scalar (JAX's ``lax._const``), so a rule applied to a
    Python-scalar input keeps its tangent weak."""
    aval = core.get_aval(like)
    return Array(np.asarray(value, aval.dtype)[()], aval.weak_type and not aval.shape)


def broadcast_to_shape(x: Any, shape: tuple) -> Any:
    """``x`` broadcast (NumPy rules) to ``shape``; used where a tangent skips the op."""
    aval = core.get_aval(x)
    if aval.shape == shape:
        return x
    return broadcast_in_dim(x, shape, tuple(range(len(shape) - aval.ndim, len(shape))))


def _caller_module() -> str:
    """The module calling ``unop``/``binop``: the family module whose ops they build (as
    ``collections.namedtuple`` finds the module of the class it makes)."""
    return sys._getframe(2).f_globals["__name__"]


class AccuracyMode(enum.Enum):
    """``jax.lax.AccuracyMode``: the accuracy a transcendental op is asked for."""
    HIGHEST = 1
    DEFAULT = 2


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """``jax.lax.Tolerance``: the error a transcendental op may make (absolute, relative, in
    units in the last place)."""
    atol: float = 0.0
    rtol: float = 0.0
    ulps: int = 0


def unop(name: str, impl: Callable, kinds: str, doc: str, *, out_dtype: Any = None,
         op_name: str | None = None, accuracy: bool = False) -> tuple[Primitive, Callable]:
    """A unary elementwise primitive, its batching rule and its wrapper ``op(x)``;
    ``op(x, accuracy=None)`` with ``accuracy``, JAX's hint (a ``Tolerance`` or an
    ``AccuracyMode``) for transcendental ops, checked and not needed: NumPy's functions are
    accurate to a few units in the last place, as XLA's most accurate ones."""
    prim = elementwise_prim(name, impl, kinds, out_dtype)
    batching.defvectorized(prim)
    accepted = accepted_dtypes(kinds)

    def op(x: Any) -> Any:
        x = x if isinstance(x, ARRAY_TYPES) else as_operand(x)
        if x.dtype not in accepted and check_dtypes(name, [x], kinds) in dtypes.intn:
            return intn_apply(prim, (x,))
        return prim.bind(x)
    if not accuracy:
        return prim, public_op(op, op_name or name, doc, _caller_module())

    def op_with_accuracy(x: Any, accuracy: Tolerance | AccuracyMode | None = None) -> Any:
        if accuracy is not None and not isinstance(accuracy, (Tolerance, AccuracyMode)):
            raise TypeError(f"{name}: accuracy must be a lax.Tolerance, a lax.AccuracyMode or "
                            f"None, got {accuracy!r}")
        return op(x)
    return prim, public_op(op_with_accuracy, op_name or name, doc, _caller_module())


def binop(name: str, impl: Callable, kinds: str, doc: str, *, out_dtype: Any = None,
          op_name: str | None = None, arg_names: tuple[str, str] = ("x", "y")
          ) -> tuple[Primitive, Callable]:
    """A binary elementwise primitive (with broadcasting), its batching rule and ``op(x, y)``;
    ``arg_names`` renames the wrapper's two arguments where JAX's are not ``x, y``
    (``igamma(a, x)``), so keyword calls work as in JAX.

    ``impl`` may receive a Python int or float as ``y`` (see ``_eager_ready``)."""
    prim = elementwise_prim(name, impl, kinds, out_dtype)
    batching.defbroadcasting(prim)
    accepted = accepted_dtypes(kinds)

    def op(x: Any, y: Any) -> Any:
        if type(x) is Array and _eager_ready(x._value.dtype, y, accepted):
            return prim.bind(x, y)  # the eager hot path: nothing to convert or check
        x, y = operands(x, y)
        if check_operands(name, kinds, accepted, (x, y)):
            return intn_apply(prim, (x, y))
        return prim.bind(x, y)
    if arg_names != ("x", "y"):
        op = _with_arg_names(op, op_name or name, arg_names)
    return prim, public_op(op, op_name or name, doc, _caller_module())


def _with_arg_names(op: Callable, name: str, arg_names: tuple[str, str]) -> Callable:
    """``op(x, y)`` taking its two arguments under ``arg_names``, by position or keyword."""
    signature = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                   for n in arg_names])

    def named_op(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"lax.{name}{signature}: {e}") from None
        return op(*bound.args)
    named_op.__signature__ = signature
    return named_op


def _eager_ready(dtype: np.dtype, other: Any, accepted: set) -> bool:
    """Whether an eager ``Array`` of ``dtype`` and ``other`` can be bound as they are: the
    op accepts ``dtype`` and ``other`` is an ``Array`` of the same dtype, or a Python int or
    float that NumPy combines with ``dtype`` exactly as JAX's weak-type rule does — only
    when evaluating eagerly: staged (a constant array inside ``jit``), the scalar would
    become a literal of its own dtype."""
    if dtype not in accepted:
        return False
    t = type(other)
    if t is Array:
        return other._value.dtype == dtype
    return ((t is float or t is int) and dtype in NATIVE_INEXACT
            and core.current_trace().name == "eval")


def convert_to(x: Any, like: Any) -> Any:
    """``x`` converted to the dtype of ``like``."""
    return convert_element_type(x, core.get_aval(like).dtype)
