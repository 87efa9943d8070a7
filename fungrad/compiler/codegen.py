"""Code generation: a jaxpr becomes the Python source of one function over raw buffers.

The generated function takes the backend buffers of the jaxpr's inputs and
returns a list of output buffers. Each equation is one line calling its
lowering (see ``lowering``): no per-equation interpretation, no ``Array``
wrapping, no abstract evaluation at run time. The memory plan (``memory``)
adds ``out=`` buffers and ``del`` statements; a lowering of a primitive with
several results gets its ``out`` as a list (a name or None per result), or None.
Set ``FUNGRAD_PRINT_CODE=1`` to print every generated function.
"""
from __future__ import annotations

import functools
import keyword
import linecache
import os
import re
import sys
import threading
from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import fpstate
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Jaxpr, Literal, Var, _var_names
from fungrad.backends import to_backend
from fungrad.compiler.lowering import lowering_for
from fungrad.compiler.memory import plan_memory


class _Context:
    """Names the Python objects the generated code refers to (its globals)."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.namespace: dict[str, Any] = {}
        self._by_id: dict[int, str] = {}
        self._by_literal: dict[tuple, str] = {}
        self._by_array: dict[int, str] = {}

    def const(self, value: Any, hint: str = "c") -> str:
        """The name under which ``value`` is visible to the generated code."""
        name = self._by_id.get(id(value))
        if name is None:
            base = "_" + re.sub(r"\W", "_", hint)
            name, n = base, 1
            while name in self.namespace:
                name, n = f"{base}{n}", n + 1
            self.namespace[name] = value
            self._by_id[id(value)] = name
        return name

    def array(self, value: Any) -> str:
        """The name of jaxpr constant ``value`` (an ``Array`` or a buffer) as a buffer of
        this backend: copied to the device here, once per constant."""
        name = self._by_array.get(id(value))
        if name is None:
            buffer = to_backend(value._value if type(value) is Array else value, self.xp)
            name = self._by_array[id(value)] = self.const(buffer, "const")
        return name

    def literal(self, lit: Literal, shape: tuple = ()) -> str:
        """A constant for ``lit``: a 0-d array, or one broadcast to ``shape`` (read-only)."""
        raw = lit.val._value if type(lit.val) is Array else lit.val
        value = np.asarray(raw, lit.aval.dtype)
        key = (value.dtype, value.tobytes(), shape)
        name = self._by_literal.get(key)
        if name is None:
            const = to_backend(np.full(shape, value) if shape else value, self.xp)
            if isinstance(const, np.ndarray):
                const.flags.writeable = False
            name = self._by_literal[key] = self.const(const, "k")
        return name


# Literal operands of elementwise ops on results this small are stored pre-broadcast.
PREBROADCAST_MAX = 4096


def _py_name(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or name in ("True", "False", "None") else name


def generate(closed: ClosedJaxpr, donated: Sequence[bool], xp: Any, name: str,
             out_args: bool = False) -> tuple[str, dict[str, Any]]:
    """The source of ``def name(*inputs): ...`` and the namespace it runs in.

    With ``out_args`` the function takes one more argument per output, a buffer the
    output is written into (directly by its equation when the lowering accepts ``out``).
    An out buffer may be an input's own memory (a caller updating in place): an output
    that an input of its shape and dtype is read after is computed elsewhere (in the
    arena) and copied into its buffer at the end. The function returns the out buffers.
    """
    j = closed.jaxpr
    ctx = _Context(xp)
    namer = _var_names()
    names: dict[Var, str] = {}
    for v, c in zip(j.constvars, closed.consts):
        names[v] = ctx.array(c)
    for v in j.invars:
        names[v] = _py_name(namer(v))

    def atom(a: Any, shape: tuple = ()) -> str:
        return ctx.literal(a, shape) if type(a) is Literal else names[a]

    out_params = [f"_out{k}" for k in range(len(j.outvars))] if out_args else []
    written: dict[Var, str] = {}  # output variable -> the out argument its equation fills
    unsafe = _read_after_written(j) if out_args else set()
    for k, v in enumerate(j.outvars if out_args else ()):
        if type(v) is Var and v not in written and v not in j.invars and v not in unsafe:
            written[v] = out_params[k]
    copied = [v for v in j.outvars if type(v) is Var and v not in written] if out_args else []
    plan = plan_memory(j, donated, functools.partial(lowering_for, xp=xp), written, copied)
    filled: set[str] = set()
    lines = []
    slot_names = [_py_name(namer(Var(a))) for a in plan.slots]
    if slot_names:  # take an arena (a list of persistent buffers), give it back at the end
        arenas = ctx.const([], "arenas")
        new = ctx.const(_arena_factory(xp, plan.slots), "new_arena")
        lines.append(f"_arena = {arenas}.pop() if {arenas} else {new}()")
        lines.append(f"{', '.join(slot_names)}, = _arena")
    if plan.rings:
        ring = ctx.const(_OutputRing(xp, plan.rings).take, "ring")
    for i, eqn in enumerate(j.eqns):
        low = lowering_for(eqn, xp)
        out_aval = eqn.outvars[0].aval if eqn.outvars else None
        small = low.elementwise and out_aval is not None and 0 < out_aval.size <= PREBROADCAST_MAX
        args = [atom(a, out_aval.shape if small else ()) for a in eqn.invars]
        out_names = []  # where each result is written (None: the lowering allocates it)
        for v in eqn.outvars:
            names[v] = _py_name(namer(v))
            target = plan.out_buffer.get(v)
            out_name = names[target] if target is not None else None
            if v in plan.arena:
                out_name = slot_names[plan.arena[v]]
            elif v in plan.recycled:
                out_name = f"{ring}({plan.recycled[v]})"
            direct = written.get(v)
            if direct and low.out in ("any", "separate"):
                out_name = direct
                filled.add(direct)
            out_names.append(out_name)
        if eqn.primitive.multiple_results:  # a list of names, one per result (or None)
            out_arg = out_names if any(out_names) else None
        else:
            out_arg = out_names[0] if out_names else None
        expr = low.rule(ctx, eqn, args, out_arg)
        outs = [names[v] for v in eqn.outvars]
        if not eqn.primitive.multiple_results:
            lines.append(f"{outs[0]} = {expr}")
        elif outs:
            lines.append(f"{', '.join(outs)}, = {expr}")
        else:
            lines.append(expr)
        dead = plan.free_after.get(i)
        if dead:
            lines.append(f"del {', '.join(names[v] for v in dead)}")
    copyto = ctx.const(xp.copyto, "copyto") if out_args else None
    for k, v in enumerate(j.outvars if out_args else ()):
        if out_params[k] not in filled:
            lines.append(f"{copyto}({out_params[k]}, {atom(v)})")
    if slot_names:
        lines.append(f"{arenas}.append(_arena)")
    results = out_params or [atom(a) for a in j.outvars]  # with out_args, the caller's buffers
    lines.append(f"return [{', '.join(results)}]")
    params = ", ".join([names[v] for v in j.invars] + out_params)
    # "jit_" keeps the function's name apart from the constants (all "_...") and variables.
    source = f"def jit_{re.sub(r'[^0-9a-zA-Z_]', '_', name)}({params}):\n" \
             f"{_ignoring_fp_errors(ctx, lines)}"
    return source, ctx.namespace


def _read_after_written(j: Jaxpr) -> set[Var]:
    """The outputs of ``j`` whose buffer may be an input that is read after the output's
    equation: those with an input of the same shape and dtype read by a later equation."""
    last_read: dict[tuple, int] = {}
    inputs = {v: (v.aval.shape, v.aval.dtype) for v in j.invars}
    for i, eqn in enumerate(j.eqns):
        for a in eqn.invars:
            if type(a) is Var and a in inputs:
                last_read[inputs[a]] = i
    unsafe = set()
    for i, eqn in enumerate(j.eqns):
        for v in eqn.outvars:
            if last_read.get((v.aval.shape, v.aval.dtype), -1) > i:
                unsafe.add(v)
    return unsafe


def _ignoring_fp_errors(ctx: _Context, lines: list[str]) -> str:
    """The function body ``lines`` run with NumPy's floating-point errors ignored (infs and
    nans pass silently, as in JAX) and the caller's error state restored on the way out.

    Set once per call, not per equation; each thread running a part of the program (see
    ``parallel``) runs a function of its own and so sets it for itself."""
    state, ignore = ctx.const(fpstate.STATE, "fpstate"), ctx.const(fpstate.IGNORE, "fp_ignore")
    body = "".join(f"        {line}\n" for line in lines)
    return (f"    _errors = {state}.set({ignore})\n    try:\n{body}"
            f"    finally:\n        {state}.reset(_errors)\n")


class _OutputRing:
    """Output buffers of an executable, handed out again once the caller dropped them.

    ``take(k)`` returns a buffer for output ring ``k``: one of the (at most
    ``SIZE``) buffers it returned before that nothing else refers to any more, or a
    new one. A buffer some ``Array``, view or other object still holds is never
    returned, so reuse is invisible to the caller.
    """
    SIZE = 2

    def __init__(self, xp: Any, avals: list) -> None:
        self.xp = xp
        self.specs = [(a.shape, a.dtype) for a in avals]
        self.rings: list[list] = [[] for _ in avals]
        self.lock = threading.Lock()

    def take(self, k: int) -> Any:
        with self.lock:  # a buffer found free is referenced by the caller before release
            ring = self.rings[k]
            for buf in ring:
                if sys.getrefcount(buf) <= _FREE_REFS:
                    return buf
            buf = self.xp.empty(*self.specs[k])
            ring.append(buf)
            RING_HELD.add(id(buf))
            if len(ring) > self.SIZE:
                RING_HELD.discard(id(ring.pop(0)))
            return buf


# The ids of the buffers output rings hold (alive while held, so an id is never reused
# meanwhile): a donated buffer a ring holds is still exclusively the caller's, as the ring
# hands a buffer out again only once nothing else refers to it (``transforms.jit``).
RING_HELD: set[int] = set()


def _free_refs() -> int:
    """The reference count ``take`` sees for a buffer only its ring holds."""
    ring = [np.empty(1)]
    for buf in ring:
        return sys.getrefcount(buf)


_FREE_REFS = _free_refs()


def _arena_factory(xp: Any, slots: list) -> Callable[[], list]:
    """A function allocating one arena: an uninitialised buffer per slot."""
    specs = [(a.shape, a.dtype) for a in slots]
    return lambda: [xp.empty(shape, dtype) for shape, dtype in specs]


_counter = [0]


def compile_source(source: str, namespace: dict[str, Any], name: str) -> Callable:
    """``exec`` the generated source (registered with linecache for readable tracebacks)."""
    _counter[0] += 1
    filename = f"<fungrad-jit-{_counter[0]}:{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    scope = dict(namespace)
    exec(code, scope)  # noqa: S102 - the source is generated by the compiler
    fn_name = source[4:source.index("(")]
    return scope[fn_name]


def compile_function(closed: ClosedJaxpr, donated: Sequence[bool] | None, xp: Any, name: str,
                     out_args: bool = False) -> tuple[Callable, str]:
    """Generate the code of ``closed`` as it is (no optimisation, no fusion) and return the
    function with its source; with ``out_args`` it also takes a buffer per output to write
    the output into. Set ``FUNGRAD_PRINT_CODE=1`` to print the source."""
    donated = tuple(donated) if donated is not None else (False,) * len(closed.jaxpr.invars)
    source, namespace = generate(closed, donated, xp, name, out_args)
    if os.environ.get("FUNGRAD_PRINT_CODE", "0") not in ("0", "", "false"):
        print(f"# fungrad: generated code for {name}\n{source}", file=sys.stdout)
    return compile_source(source, namespace, name), source


__all__ = ["compile_function", "generate"]
