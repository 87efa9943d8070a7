"""Mutable array references (``jax.Ref``): the type, its reads and writes, and the
bookkeeping that lets a traced body use a ``Ref`` whose value lives in an enclosing trace.

A ``Ref`` holds its current value (an ``Array`` or a tracer) and the trace that value
belongs to. Reads index the value as ``fungrad.numpy`` does; writes check shape and dtype
as JAX's ``swap``/``addupdate`` do and replace the value functionally
(``value.at[idx].set(v)``). Tracing runs the Python, so a ``Ref`` created and used inside
one traced function is plain dataflow: ``grad``, ``vmap`` and ``jit`` see only the array
operations, and no primitive is needed.

A ``Ref`` used from a trace nested inside the one its value belongs to is handled by the
traces in between, outermost first:

* a *lifting scope* (``RefScope``: the body ``jit`` traces, a ``scan``/``while_loop``/
  ``cond`` body) gives the ref a new input of the jaxpr being built
  (``JaxprTrace.new_arg``) the first time the body uses it, and records it; the owner of
  the scope then threads the ref's value in and its final value out
  (``fungrad.transforms.jit_refs``, ``fungrad.lax.control_flow.refs``) and writes it back
  into the ref after the call, so no ref value is ever baked into a cached executable;
* any other trace (``jvp``, ``vmap``, a staging trace without a scope) reads the outer
  value as a constant, and refuses a write of a value that depends on its own tracers:
  the value would escape into the outer ref (JAX's errors for ``grad`` and ``vmap``).

The scopes are found from the trace (``_scopes``), so this module needs nothing above the
core: the interpreters and the owners of the scopes are duck-typed.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import ShapedArray, Tracer
from fungrad.errors import UnexpectedTracerError

__all__ = ["AbstractRef", "Ref", "RefScope", "addupdate", "bound", "empty_ref", "free_ref",
           "freeze", "get", "new_ref", "read", "set", "swap", "write"]


class AbstractRef:
    """The type of a ``Ref``: the abstract value of the array it holds (``inner_aval``)."""
    __slots__ = ("inner_aval",)

    def __init__(self, inner_aval: ShapedArray) -> None:
        self.inner_aval = inner_aval

    shape = property(lambda self: self.inner_aval.shape, doc="The shape of the held array.")
    dtype = property(lambda self: self.inner_aval.dtype, doc="The dtype of the held array.")
    ndim = property(lambda self: self.inner_aval.ndim, doc="The number of dimensions.")
    weak_type = property(lambda self: self.inner_aval.weak_type, doc="The weak-type flag.")

    def str_short(self) -> str:
        """The type as JAX prints it: ``Ref{float32[3]}``."""
        shape = ",".join(map(str, self.inner_aval.shape))
        return f"Ref{{{self.inner_aval.dtype.name}[{shape}]}}"

    def __eq__(self, other: object) -> bool:
        return type(other) is AbstractRef and self.inner_aval == other.inner_aval

    def __hash__(self) -> int:
        return hash(("ref", self.inner_aval))

    __repr__ = __str__ = str_short


class Ref:
    """A mutable reference to an array (``jax.Ref``): ``ref[idx]`` reads, ``ref[idx] = v``
    and ``ref[idx] += v`` write. Create one with ``new_ref``; read it whole with
    ``ref[...]`` or ``freeze(ref)``. Its shape and dtype never change."""
    __slots__ = ("_value", "_trace", "_inner", "_freed", "__weakref__")

    def __init__(self, value: Any, trace: core.Trace, inner: ShapedArray) -> None:
        self._value = value  # an Array, or a tracer of ``_trace``
        self._trace = trace  # the trace the value belongs to
        self._inner = inner  # the held array's type (fixed; writes are checked against it)
        self._freed = False

    aval = property(lambda self: AbstractRef(self._inner), doc="The type, an ``AbstractRef``.")
    shape = property(lambda self: self._inner.shape, doc="The shape of the held array.")
    dtype = property(lambda self: self._inner.dtype, doc="The dtype of the held array.")
    ndim = property(lambda self: self._inner.ndim, doc="The number of dimensions.")
    size = property(lambda self: self._inner.size, doc="The number of elements.")
    weak_type = property(lambda self: self._inner.weak_type, doc="The weak-type flag.")

    def __len__(self) -> int:
        if not self._inner.shape:
            raise TypeError("len() of unsized object")
        return self._inner.shape[0]

    def __getitem__(self, idx: Any) -> Any:
        return get(self, idx)

    def __setitem__(self, idx: Any, value: Any) -> None:
        swap(self, idx, value, _op="set")

    def __repr__(self) -> str:
        if self._freed:
            return f"<freed {self.aval}>"
        if type(self._value) is Array:
            return "Ref" + repr(self._value)[len("Array"):]
        return f"{self.aval} traced by {self._trace.name}"


# --------------------------------------------------------------------------- reaching the value

_scopes: dict[core.Trace, "RefScope"] = {}  # the lifting scope of each trace that has one


def _escaped(ref: Ref, op: str) -> Exception:
    detail = f"`{op}` on a Ref of type {ref.aval} created inside it. "
    if isinstance(ref._value, Tracer):
        return UnexpectedTracerError(ref._value, detail)
    return ValueError(f"`{op}`: the Ref of type {ref.aval} belongs to a transformation that "
                      "does not enclose this code; pass it as an argument instead.")


def _chain(ref: Ref, op: str) -> list[core.Trace]:
    """The traces from just inside the ref's trace to the current one, outermost first."""
    owner = ref._trace
    if not owner.valid:
        raise _escaped(ref, op)
    chain, t = [], core._ctx.trace
    while t is not owner:
        if t is None:
            raise _escaped(ref, op)
        chain.append(t)
        t = t.parent
    chain.reverse()
    return chain


def _here(ref: Ref, op: str) -> Any:
    """The ref's value as the current trace may use it: lifted into the scopes of the
    traces between its own and this one (a value of an enclosing trace otherwise)."""
    if ref._freed:
        raise ValueError(f"`{op}`: the Ref of type {ref.aval} was freed with free_ref and "
                         "cannot be used any more.")
    if ref._trace is not core._ctx.trace:
        for t in _chain(ref, op):
            scope = _scopes.get(t)
            if scope is not None:
                scope.lift(ref)
    return ref._value


def _check_visible(ref: Ref, t: core.Trace, op: str) -> None:
    """Refuse to store a tracer of ``t`` unless ``t`` encloses the ref's trace (a value
    of a transformation the ref lives outside of would escape it)."""
    o = ref._trace
    while o is not None:
        if o is t:
            return
        o = o.parent
    if t.name == "jvp":
        raise ValueError(f"`{op}`: performing a set/swap operation with a differentiated value "
                         f"on a non-differentiated array reference of type {ref.aval}. Move "
                         "the array reference to be an argument of the differentiated "
                         "function, or create it inside.")
    if t.name == "vmap":
        raise ValueError(f"`{op}`: performing a set/swap operation with a vmapped value on an "
                         f"unbatched array reference of type {ref.aval}. Move the array "
                         "reference to be an argument of the vmapped function, or create it "
                         "inside.")
    raise ValueError(f"`{op}`: a value traced by {t.name} cannot be written into a Ref of type "
                     f"{ref.aval} created outside that transformation (it would escape it). "
                     "Pass the Ref to the transformed function as an argument (jit), or create "
                     "it inside the function.")


def _store(ref: Ref, value: Any, op: str) -> None:
    if isinstance(value, Tracer) and value._trace is not ref._trace:
        _check_visible(ref, value._trace, op)
    ref._value = value


def _operand(x: Any, op: str) -> Any:
    """``x`` as an Array or tracer (Python scalars and NumPy values as ``jnp.asarray``)."""
    if isinstance(x, (Array, Tracer)):
        return x
    if isinstance(x, (bool, int, float, complex)):
        dtype, weak = dtypes.dtype_and_weak(x)
        return Array(np.asarray(x, dtype), weak)
    if isinstance(x, (np.ndarray, np.generic)):
        return Array(np.array(x, dtypes.canonicalize_dtype(x.dtype)))
    what = "a Ref (a Ref cannot hold a Ref)" if isinstance(x, Ref) else type(x).__name__
    raise TypeError(f"`{op}`: expected an array or a scalar, got {what}: {x!r}")


def _is_whole(idx: Any) -> bool:
    return idx is None or idx is Ellipsis or (type(idx) is tuple and not idx)


# --------------------------------------------------------------------------- the operations

def new_ref(init_val: Any, *, memory_space: Any = None, kind: Any = None) -> Ref:
    """A new ``Ref`` holding ``init_val`` (``jax.new_ref``); ``memory_space`` and ``kind``
    are accepted for JAX's signature (one memory here)."""
    value = _operand(init_val, "new_ref")
    return Ref(value, core._ctx.trace, core.get_aval(value))


def empty_ref(ty: Any, memory_space: Any = None) -> Ref:
    """A new ``Ref`` of ``ty``'s shape and dtype (a ``ShapeDtypeStruct`` or an aval) whose
    contents are unspecified: zeros here (``jax.empty_ref``)."""
    dtype = dtypes.canonicalize_dtype(ty.dtype)
    value = Array(np.zeros(tuple(ty.shape), dtype), bool(getattr(ty, "weak_type", False)))
    return Ref(value, core._ctx.trace, value.aval)


def free_ref(ref: Ref) -> None:
    """Release a ``Ref`` (``jax.free_ref``); any later use raises an error naming it."""
    if not isinstance(ref, Ref):
        raise TypeError(f"free_ref: expected a Ref, got {type(ref).__name__}")
    _here(ref, "free_ref")
    ref._freed = True


def get(ref: Ref, idx: Any = None) -> Any:
    """``ref[idx]`` (the whole array for ``idx`` None or ``...``)."""
    value = _here(_check_ref(ref, "get"), "get")
    return value if _is_whole(idx) else value[idx]


def freeze(ref: Ref) -> Any:
    """The ref's whole value as an immutable array (``jax.freeze``)."""
    return get(_check_ref(ref, "freeze"), ...)


def swap(ref: Ref, idx: Any, value: Any, _op: str = "swap") -> Any:
    """Write ``value`` at ``ref[idx]`` and return what was there. ``value`` must have the
    shape of ``ref[idx]`` and the ref's dtype: no broadcasting, no promotion, as in JAX."""
    new = _operand(value, _op)
    cur = _here(_check_ref(ref, _op), _op)
    whole = _is_whole(idx)
    old = cur if whole else cur[idx]
    _check_value(ref, old, new, _op)
    if not whole:
        new = cur.at[idx].set(new)
    elif type(new) is Array and new.weak_type != ref._inner.weak_type:
        new = Array(new._value, ref._inner.weak_type, new._device)
    _store(ref, new, _op)
    return old


def set(ref: Ref, idx: Any, value: Any) -> None:  # noqa: A001 (jax.ref.set)
    """``ref[idx] = value`` (see ``swap`` for the checks)."""
    swap(ref, idx, value, _op="set")


def addupdate(ref: Ref, idx: Any, x: Any) -> None:
    """``ref[idx] += x``, as one update (same checks as ``swap``)."""
    new = _operand(x, "addupdate")
    cur = _here(_check_ref(ref, "addupdate"), "addupdate")
    whole = _is_whole(idx)
    _check_value(ref, cur if whole else cur[idx], new, "addupdate")
    _store(ref, cur + new if whole else cur.at[idx].add(new), "addupdate")


def _check_ref(ref: Any, op: str) -> Ref:
    if not isinstance(ref, Ref):
        raise TypeError(f"`{op}`: expected a Ref, got {type(ref).__name__}")
    return ref


def _check_value(ref: Ref, old: Any, new: Any, op: str) -> None:
    if tuple(new.shape) != tuple(old.shape):
        raise ValueError(f"Invalid shape for `{op}`. Ref shape: {ref.shape}. Expected shape: "
                         f"{tuple(old.shape)}. Value shape: {tuple(new.shape)}.")
    if new.dtype != ref.dtype:
        raise ValueError(f"Invalid dtype for `{op}`. Ref dtype: {ref.dtype}. Value dtype: "
                         f"{new.dtype}.")


# --------------------------------------------------------------------------- for the scope owners

def read(ref: Ref, api: str) -> Any:
    """The ref's whole value in the current trace (how ``jit`` and the control-flow
    primitives pass a ref's value in)."""
    return _here(ref, api)


def write(ref: Ref, value: Any, api: str) -> None:
    """Make ``value`` (of the ref's type, from a call of ``api``) the ref's value."""
    _here(ref, api)
    _store(ref, value, api)


class RefScope:
    """The refs of enclosing traces that the body being traced in the current trace (a
    ``JaxprTrace``) used: each got a new input of the jaxpr; ``close`` puts their outer
    values back. Create it inside the traced body; close it when the body returns."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.trace = core._ctx.trace
        self.refs: list[Ref] = []
        self.inputs: list[Any] = []  # the jaxpr inputs the refs got
        self._saved: list[tuple[Any, core.Trace]] = []
        self._prev = _scopes.get(self.trace)
        _scopes[self.trace] = self

    def lift(self, ref: Ref) -> None:
        """Make ``ref`` (whose value belongs to the parent trace) a new input of the body."""
        self._saved.append((ref._value, ref._trace))
        arg = self.trace.new_arg(ref._inner, f"a Ref used by {self.api}")
        ref._value, ref._trace = arg, self.trace
        self.refs.append(ref)
        self.inputs.append(arg)

    def finals(self) -> list:
        """The refs' values at the end of the body (its extra outputs)."""
        return [ref._value for ref in self.refs]

    def close(self) -> None:
        """Give the refs their outer values back and unregister the scope."""
        for ref, (value, trace) in zip(self.refs, self._saved):
            ref._value, ref._trace = value, trace
        if self._prev is None:
            _scopes.pop(self.trace, None)
        else:
            _scopes[self.trace] = self._prev


class bound:
    """Inside a traced body: ``refs`` hold ``values`` (the body's own inputs), as if they
    had been created here; their previous values are put back on exit. How a control-flow
    body receives the refs it closes over as explicit carries or operands."""
    __slots__ = ("refs", "values", "saved")

    def __init__(self, refs: Sequence[Ref], values: Sequence[Any]) -> None:
        self.refs, self.values = refs, values

    def __enter__(self) -> None:
        trace = core._ctx.trace
        self.saved = [(r._value, r._trace) for r in self.refs]
        for r, v in zip(self.refs, self.values):
            r._value, r._trace = v, trace

    def __exit__(self, *exc: Any) -> None:
        for r, (v, t) in zip(self.refs, self.saved):
            r._value, r._trace = v, t
