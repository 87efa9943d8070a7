"""The core: abstract values, primitives, traces and tracers, and the IR.

Design (after JAX's "stackless" core): there is always exactly one *current
trace*. ``prim.bind(*args, **params)`` hands the primitive to it. Each
transformation is a ``Trace`` subclass whose ``process_primitive`` unpacks its
own tracers, applies the primitive's rule for that transformation with the
current trace set to its *parent*, and wraps the results. Values that are not
its own tracers come from an enclosing transformation (or are plain arrays)
and are treated as constants. When a transformation finishes, its trace is
invalidated, so a tracer that escaped is reported the moment it is used.

Rule signatures (all keyword-only params, hashable):
  impl            (xp, *arrays, **params)          -> result(s)   [backend module xp]
  abstract_eval   (*avals, **params)               -> aval(s)
  weak_type_rule  (weak_flags, **params)           -> bool        [eager weak typing;
                                                      a list, one per result, is allowed]
  jvp             (primals, tangents, **params)    -> (primal_out, tangent_out)
  transpose       (ct, *args, **params)            -> list of cts (None for non-linear args)
  batch           (axis_size, vals, dims, **params)-> (out, out_dim)
A primitive with ``multiple_results`` takes and returns lists in every rule;
otherwise rules return a single value. The primitive object holds only the first
three; each interpreter keeps its own table for the others (see ``Primitive``), and
every rule is registered in the one block of code that defines the primitive.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import dtypes
from fungrad._core.array_methods import ArrayMethods
from fungrad.errors import (ConcretizationTypeError, TracerArrayConversionError,
                            TracerBoolConversionError, TracerIntegerConversionError,
                            UnexpectedTracerError)

# --------------------------------------------------------------------------- avals

def short_dtype_name(dtype: np.dtype) -> str:
    """JAX's short name of a dtype in printed jaxprs: ``f32``, ``bf16``, ``f8_e4m3fn``."""
    if dtype == dtypes.float0:
        return "float0"
    name = np.dtype(dtype).name
    for long, short in (("float", "f"), ("uint", "u"), ("int", "i"), ("complex", "c")):
        name = name.replace(long, short)
    return name


class ShapedArray:
    """The abstract value of an array: shape, dtype and weak type, no data."""
    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: tuple, dtype: np.dtype, weak_type: bool = False) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = weak_type

    ndim = property(lambda self: len(self.shape), doc="The number of dimensions.")
    size = property(lambda self: math.prod(self.shape), doc="The number of elements.")

    def update(self, shape=None, dtype=None, weak_type=None) -> "ShapedArray":
        """A copy with the given fields replaced (``None`` keeps a field)."""
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)

    def strip_weak_type(self) -> "ShapedArray":
        """The same type without the weak-type flag (a Python scalar's type made strong)."""
        return self.update(weak_type=False) if self.weak_type else self

    def str_short(self) -> str:
        """The type as the jaxpr printer writes it, e.g. ``f32[3,4]``."""
        return f"{short_dtype_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __eq__(self, other: object) -> bool:
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self) -> str:
        return f"ShapedArray({self.str_short()}{', weak_type=True' if self.weak_type else ''})"


def get_aval(x: Any) -> ShapedArray:
    """The abstract value of an array, tracer, NumPy value or Python scalar."""
    aval = getattr(x, "aval", None)
    if aval is not None:
        return aval
    if isinstance(x, (bool, int, float, complex)):
        dtype, weak = dtypes.dtype_and_weak(x)
        return ShapedArray((), dtype, weak)
    if isinstance(x, (np.ndarray, np.generic)):
        return ShapedArray(x.shape, dtypes.canonicalize_dtype(x.dtype))
    raise TypeError(f"value of type {type(x).__name__} is not a valid fungrad array: {x!r}")


# --------------------------------------------------------------------------- primitives

def all_weak(weak_flags: Sequence[bool], **params: Any) -> bool:
    """The default weak-type rule: the result is weak when every input is."""
    return all(weak_flags)


_registry: list["Primitive"] = []


def primitives() -> list["Primitive"]:
    """Every primitive created so far, in creation order (what the rule-coverage test walks)."""
    return list(_registry)


class Primitive:
    """A named operation, with its implementation and shape/dtype rule.

    Only ``impl``, ``abstract_eval`` and ``weak_type_rule`` are attributes of the
    primitive. The rules of the transformations live in tables private to the module
    that applies them, keyed by the primitive: the JVP and transpose rules in
    ``fungrad.interpreters.ad`` (``defjvp``, ``deflinear``, ``def_transpose``...),
    the batching rules in ``fungrad.interpreters.batching`` (``def_batch``...), the
    partial-evaluation rules of call-like primitives in
    ``fungrad.interpreters.partial_eval``, and specialised compiled code in
    ``fungrad._core.lowering`` (the impl otherwise). The block of code that
    creates a primitive registers all of them, so they read side by side (four primitives
    that code below their family module emits, such as ``transpose`` in ``vmap``, are
    created earlier, in ``fungrad._core.structural``; the block still gives them every rule).
    Every primitive is recorded in ``primitives()``.
    """

    def __init__(self, name: str, multiple_results: bool = False) -> None:
        self.name = name
        self.multiple_results = multiple_results
        self.impl: Callable | None = None
        self.abstract_eval: Callable | None = None
        self.weak_type_rule: Callable = all_weak
        _registry.append(self)

    def bind(self, *args: Any, **params: Any) -> Any:
        """Apply the primitive: the current trace evaluates, stages or transforms it."""
        return _ctx.trace.process_primitive(self, args, params)

    def def_impl(self, f: Callable) -> Callable:
        """Register ``impl(xp, *buffers, **params)``, the eager implementation (a decorator)."""
        self.impl = f
        return f

    def def_abstract_eval(self, f: Callable) -> Callable:
        """Register ``abstract_eval(*avals, **params)``, the shape/dtype rule (a decorator)."""
        self.abstract_eval = f
        return f

    def __repr__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- traces

class Trace:
    """A transformation in progress. ``parent`` is the enclosing trace."""
    name = "trace"

    def __init__(self, parent: "Trace | None") -> None:
        self.parent = parent
        self.valid = True

    def process_primitive(self, prim: Primitive, args: Sequence[Any], params: dict) -> Any:
        """Apply ``prim`` to ``args`` (this trace's tracers or outside values) the way this
        transformation does: evaluate, stage, differentiate or batch it."""
        raise NotImplementedError

    def invalidate(self) -> None:
        """Called when the transformation exits: its tracers become escaped tracers."""
        self.valid = False

    def check_foreign(self, x: Any) -> None:
        """Raise if ``x`` is a tracer of a finished transformation."""
        if isinstance(x, Tracer) and not x._trace.valid:
            raise UnexpectedTracerError(x)


class _Context:
    __slots__ = ("trace",)


_ctx = _Context()


def current_trace() -> Trace:
    return _ctx.trace


class set_current_trace:
    """Context manager making ``trace`` the current trace."""
    __slots__ = ("trace", "prev")

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __enter__(self) -> Trace:
        self.prev, _ctx.trace = _ctx.trace, self.trace
        return self.trace

    def __exit__(self, *exc: Any) -> None:
        _ctx.trace = self.prev


def bind_in_parent(trace: Trace, prim: Primitive, args: Sequence[Any], params: dict) -> Any:
    """Bind ``prim`` in ``trace.parent`` (used when a trace has nothing to do)."""
    prev, _ctx.trace = _ctx.trace, trace.parent
    try:
        return trace.parent.process_primitive(prim, args, params)
    finally:
        _ctx.trace = prev


# --------------------------------------------------------------------------- tracers

class Tracer(ArrayMethods):
    """A value inside a transformation. Behaves like an array (see ``ArrayMethods``)."""
    __slots__ = ("_trace",)
    __array_priority__ = 1000

    @property
    def aval(self) -> ShapedArray:
        """The abstract value (shape, dtype, weak type) this tracer stands for."""
        raise NotImplementedError

    shape = property(lambda self: self.aval.shape, doc="The shape of the traced value.")
    dtype = property(lambda self: self.aval.dtype, doc="The dtype of the traced value.")
    ndim = property(lambda self: len(self.aval.shape), doc="The number of dimensions.")
    size = property(lambda self: self.aval.size, doc="The number of elements.")
    itemsize = property(lambda self: self.aval.dtype.itemsize,
                        doc="The bytes of one element, as an array's.")
    nbytes = property(lambda self: self.aval.size * self.aval.dtype.itemsize,
                      doc="The bytes the traced value would take, as an array's.")
    weak_type = property(lambda self: self.aval.weak_type,
                         doc="Whether the value is weakly typed (came from a Python scalar).")

    def to_concrete_value(self) -> Any:
        """The concrete value behind this tracer, or None when there is none."""
        return None

    def _origin(self) -> str:
        return f"traced by {self._trace.name}"

    def _concrete(self, context: str, error: type = ConcretizationTypeError) -> Any:
        value = self.to_concrete_value()
        if value is None:
            raise error(self, context)
        return value

    def __bool__(self) -> bool:
        return bool(self._concrete("bool() / if / while", TracerBoolConversionError))

    def __int__(self) -> int:
        return int(self._concrete("int()", TracerIntegerConversionError))

    def __index__(self) -> int:
        return int(self._concrete("__index__", TracerIntegerConversionError))

    def __float__(self) -> float:
        return float(self._concrete("float()"))

    def __complex__(self) -> complex:
        return complex(self._concrete("complex()"))

    def item(self) -> Any:
        """The concrete element as a Python scalar; a ``ConcretizationTypeError`` if none."""
        return self._concrete("item()").item()

    def tolist(self) -> Any:
        """The concrete value as nested lists; a ``ConcretizationTypeError`` if none."""
        return self._concrete("tolist()").tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.to_concrete_value()
        if value is None:
            raise TracerArrayConversionError(self)
        return np.asarray(value, dtype=dtype)

    def __repr__(self) -> str:
        return f"Traced<{self.aval.str_short()}>with<{type(self._trace).__name__}>"


# --------------------------------------------------------------------------- the IR

class Var:
    """A typed IR variable. Names are assigned when printing."""
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval


class Literal:
    """A scalar constant written inline in the IR."""
    __slots__ = ("val", "aval")

    def __init__(self, val: Any, aval: ShapedArray) -> None:
        self.val = val
        self.aval = aval


Atom = "Var | Literal"


class JaxprEqn:
    """``outvars = primitive[params] invars``."""
    __slots__ = ("primitive", "invars", "outvars", "params")

    def __init__(self, primitive: Primitive, invars: list, outvars: list[Var], params: dict):
        self.primitive = primitive
        self.invars = invars
        self.outvars = outvars
        self.params = params


class Jaxpr:
    """A typed, first-order program in A-normal form."""

    def __init__(self, constvars: list[Var], invars: list[Var], outvars: list,
                 eqns: list[JaxprEqn]):
        self.constvars = constvars
        self.invars = invars
        self.outvars = outvars
        self.eqns = eqns

    in_avals = property(lambda self: [v.aval for v in self.invars],
                        doc="The types of the inputs.")
    out_avals = property(lambda self: [v.aval for v in self.outvars],
                         doc="The types of the outputs.")

    def __str__(self) -> str:
        return pp_jaxpr(self)

    __repr__ = __str__


class ClosedJaxpr:
    """A ``Jaxpr`` together with the values of its constvars."""

    def __init__(self, jaxpr: Jaxpr, consts: Sequence[Any]) -> None:
        self.jaxpr = jaxpr
        self.consts = list(consts)

    in_avals = property(lambda self: self.jaxpr.in_avals, doc="The types of the inputs.")
    out_avals = property(lambda self: self.jaxpr.out_avals, doc="The types of the outputs.")
    eqns = property(lambda self: self.jaxpr.eqns, doc="The equations of the inner jaxpr.")

    def __call__(self, *args: Any) -> list:
        return eval_jaxpr(self.jaxpr, self.consts, *args)

    def __str__(self) -> str:
        return pp_jaxpr(self.jaxpr)

    __repr__ = __str__


def eval_jaxpr(jaxpr: Jaxpr, consts: Sequence[Any], *args: Any) -> list:
    """Evaluate ``jaxpr`` by binding each equation in the current trace.

    Because it only calls ``bind``, evaluating a jaxpr under a transformation
    transforms it: this one function is the interpreter every trace reuses.
    """
    env: dict[Var, Any] = {}

    def read(v: Any) -> Any:
        return v.val if type(v) is Literal else env[v]

    for v, x in zip(jaxpr.constvars, consts):
        env[v] = x
    if len(args) != len(jaxpr.invars):
        raise TypeError(f"eval_jaxpr: expected {len(jaxpr.invars)} arguments, got {len(args)}")
    for v, x in zip(jaxpr.invars, args):
        env[v] = x
    for eqn in jaxpr.eqns:
        outs = eqn.primitive.bind(*[read(v) for v in eqn.invars], **eqn.params)
        if eqn.primitive.multiple_results:
            for v, x in zip(eqn.outvars, outs):
                env[v] = x
        else:
            env[eqn.outvars[0]] = outs
    return [read(v) for v in jaxpr.outvars]


# --------------------------------------------------------------------------- printer

def _var_names() -> Callable[[Var], str]:
    names: dict[Var, str] = {}
    counter = itertools.count()

    def name(v: Var) -> str:
        if v not in names:
            n, s = next(counter), ""
            while True:
                s = chr(ord("a") + n % 26) + s
                n = n // 26 - 1
                if n < 0:
                    break
            names[v] = s
        return names[v]
    return name


def _pp_param(value: Any, name: Callable, indent: int) -> str:
    if isinstance(value, ClosedJaxpr):
        return _pp(value.jaxpr, name, indent + 2)
    if isinstance(value, Jaxpr):
        return _pp(value, name, indent + 2)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], (Jaxpr, ClosedJaxpr)):
        return "(" + ", ".join(_pp_param(v, name, indent) for v in value) + ")"
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return repr(value) if isinstance(value, str) else str(value)


def _pp_atom(a: Any, name: Callable) -> str:
    if type(a) is Literal:
        v = np.asarray(a.val).item()
        return f"{v!r}:{a.aval.str_short()}"
    return name(a)


def _pp_eqn(eqn: JaxprEqn, name: Callable, indent: int) -> tuple[str, bool]:
    """One equation; also says whether it holds a sub-jaxpr (which forces multi-line)."""
    lhs = " ".join(f"{name(v)}:{v.aval.str_short()}" for v in eqn.outvars) or "_"
    args = " ".join(_pp_atom(a, name) for a in eqn.invars)
    items = sorted(eqn.params.items())
    nested = any(isinstance(v, (Jaxpr, ClosedJaxpr)) or (isinstance(v, (tuple, list)) and v and
                 isinstance(v[0], (Jaxpr, ClosedJaxpr))) for _, v in items)
    if nested:
        pad = " " * (indent + 6)
        params = "".join(f"\n{pad}{k}={_pp_param(v, name, indent + 4)}" for k, v in items)
        rhs = f"{eqn.primitive.name}[{params}\n{' ' * (indent + 4)}]"
    else:
        params = ", ".join(f"{k}={_pp_param(v, name, indent)}" for k, v in items)
        rhs = eqn.primitive.name + (f"[{params}]" if params else "")
    return f"{lhs} = {rhs} {args}".rstrip(), nested


def _pp(jaxpr: Jaxpr, name: Callable, indent: int) -> str:
    decl = lambda vs: " ".join(f"{name(v)}:{v.aval.str_short()}" for v in vs)
    head = f"{{ lambda {decl(jaxpr.constvars)}; {decl(jaxpr.invars)}. let"
    eqns = [_pp_eqn(e, name, indent) for e in jaxpr.eqns]
    outs = ", ".join(_pp_atom(v, name) for v in jaxpr.outvars)
    tail = f"in ({outs}{',' if len(jaxpr.outvars) == 1 else ''}) }}"
    one_line = f"{head} {'; '.join(e for e, _ in eqns)}{' ' if eqns else ''}{tail}"
    if not any(nested for _, nested in eqns) and len(one_line) <= 80:
        return one_line
    pad = " " * (indent + 4)
    body = "".join(f"\n{pad}{e}" for e, _ in eqns)
    return f"{head}{body}\n{' ' * (indent + 2)}{tail}"


def pp_jaxpr(jaxpr: Jaxpr) -> str:
    """Print ``jaxpr`` the way JAX prints its jaxprs."""
    return _pp(jaxpr, _var_names(), 0)
