"""Compiled code, declared with the primitive (as JAX declares ``mlir.register_lowering``).

A *lowering* turns one equation into a Python expression over the names of its input
buffers, one line of the function ``jit`` generates (``fungrad.compiler.codegen``). A
primitive's lowerings are declared in the block that defines it (``fungrad/lax/<family>.py``),
beside its JVP and batching rules, so a new op is added in one place; the compiler reads them
with ``lowerings``. A primitive without one runs its ``impl`` in compiled code. This table sits
in the core, below ``lax`` (which fills it) and ``compiler`` (which reads it).

``rule(ctx, eqn, args, out) -> str``: ``args`` are the operand expressions, ``out`` the name of
a buffer to write the result into (or None), ``ctx.xp`` the backend's array module and
``ctx.const(value, hint)`` the name under which a Python object is visible to the generated
code. A primitive may have several lowerings, each guarded by ``when(eqn)``; the first that
accepts an equation is used and the impl when none does, so a lowering covers only the
operand types where it equals the impl. What the memory planner may do with the result:

* ``fresh``: it is a newly allocated buffer nobody else references, so it may later be
  reused or updated in place;
* ``out``: ``"any"``: it accepts any dead buffer of the result's shape and dtype, even an
  operand dying here (a ufunc reads and writes the same positions); ``"separate"``: any such
  buffer but its operands (``matmul``, reductions); an int ``k``: it may update operand
  ``k`` in place when that buffer is dead afterwards; ``None``: none of these;
* ``elementwise``: each result element depends only on the operands' elements at its
  position (after broadcasting), so literal operands may be passed pre-broadcast to the
  result's shape (a ufunc pays ~0.5 µs of type resolution for a scalar operand) and blocked
  fusion may run the equation block by block;
* ``numexpr``: the equation as a numexpr expression, for the optional numexpr fusion: a
  ``str.format`` template over the operand expressions, or ``(eqn, *operands) -> str``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from fungrad._core.core import JaxprEqn, Primitive

Rule = Callable[[Any, JaxprEqn, list, "str | None"], str]


class Lowering(NamedTuple):
    """One way to compile a primitive's equations (see the module docstring)."""
    rule: Rule
    fresh: bool = False
    out: str | int | None = None
    elementwise: bool = False
    when: Callable[[JaxprEqn], bool] | None = None  # None: every equation of the primitive
    numexpr: Callable[..., str] | None = None


_lowerings: dict[Primitive, tuple[Lowering, ...]] = {}


def def_lowering(prim: Primitive, rule: Rule, *, fresh: bool = False,
                 out: str | int | None = None, elementwise: bool = False,
                 when: Callable[[JaxprEqn], bool] | None = None,
                 numexpr: str | Callable[..., str] | None = None) -> None:
    """Add a lowering of ``prim``, tried after those declared before it (see the module
    docstring); ``when(eqn)`` restricts it to some equations (the impl runs the others)."""
    if isinstance(numexpr, str):
        numexpr = _template(numexpr)
    low = Lowering(rule, fresh, out, elementwise, when, numexpr)
    _lowerings[prim] = (*_lowerings.get(prim, ()), low)


def def_ufunc(prim: Primitive, ufunc: str, *, when: Callable[[JaxprEqn], bool] | None = None,
              numexpr: str | Callable[..., str] | None = None) -> None:
    """Declare that ``prim``'s impl applies the NumPy ufunc ``ufunc`` to its operands (where
    ``when`` accepts the equation): compiled code calls ``xp.<ufunc>`` directly, writing into a
    dead buffer when it can, and fusion may take it."""
    def rule(ctx: Any, eqn: JaxprEqn, args: list, out: str | None) -> str:
        fn = ctx.const(getattr(ctx.xp, ufunc), ufunc)
        return f"{fn}({', '.join(args)}{', out=' + out if out else ''})"
    def_lowering(prim, rule, fresh=True, out="any", elementwise=True, when=when, numexpr=numexpr)


def _template(text: str) -> Callable[..., str]:
    return lambda eqn, *operands: text.format(*operands)


def lowerings(prim: Primitive) -> tuple[Lowering, ...]:
    """The lowerings declared for ``prim``, in the order they are tried (empty: its impl)."""
    return _lowerings.get(prim, ())


def lowered_primitives() -> list[Primitive]:
    """The primitives with at least one declared lowering."""
    return list(_lowerings)


__all__ = ["Lowering", "def_lowering", "def_ufunc", "lowered_primitives", "lowerings"]
