"""Which lowering compiles an equation, and the primitives that exist only in compiled code.

Primitives declare their specialised lowerings with their other rules
(``fungrad._core.lowering``: ``def_lowering``, ``def_ufunc``); ``lowering_for`` picks the
first whose guard accepts an equation, or ``DEFAULT``: a call of the primitive's impl with the
backend module and params bound by ``functools.partial`` (which is how ``scan``, ``while`` and
every primitive without a specialised lowering run).

The compiler's own primitives (fused kernels, parallel tails) are made here: they appear only
after every transformation has run, so they have no JVP or batching rule.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from fungrad._core import dtypes
from fungrad._core.core import JaxprEqn, Primitive, Var
from fungrad._core.lowering import Lowering, Rule, def_lowering, lowerings
from fungrad.backends.bfloat16 import Bfloat16Buffer
from fungrad.backends.namespace import impl_for
from fungrad.errors import MissingRuleError
from fungrad.interpreters import ad, batching


def _impl_rule(ctx: Any, eqn: JaxprEqn, args: list[str], out: str | None) -> str:
    impl = eqn.primitive.impl
    if impl is None:
        raise MissingRuleError(eqn.primitive, "implementation")
    fn = functools.partial(impl_for(ctx.xp, eqn.primitive.name, impl), ctx.xp, **eqn.params)
    return f"{ctx.const(fn, eqn.primitive.name)}({', '.join(args)})"


DEFAULT = Lowering(_impl_rule)
# the compiler's own primitives (fused kernels, parallel tails): their lowerings take any
# buffer of the backend, bfloat16 ones included
_COMPILED_ONLY: set[Primitive] = set()


def lowering_for(eqn: JaxprEqn, xp: Any = np) -> Lowering:
    """The lowering of ``eqn`` on backend ``xp``: the first declared one whose guard accepts
    it, else the impl. An equation over bfloat16 on a device runs its impl, which takes the
    device's bfloat16 buffers through float32 (``namespace.impl_for``): the specialised
    lowerings call the array module itself, which has no bfloat16. Those declared
    ``any_dtype`` (they only move elements) run on the buffers' ``uint16`` bits instead, so
    a donated bfloat16 KV cache is updated in place as a float32 one is."""
    declared = next((low for low in lowerings(eqn.primitive)
                     if low.when is None or low.when(eqn)), DEFAULT)
    if xp is not np and eqn.primitive not in _COMPILED_ONLY and _touches_bfloat16(eqn):
        if declared.any_dtype and all(type(v) is Var for v in eqn.invars if _is_bfloat16(v)):
            return declared._replace(rule=_on_bits(declared.rule))
        return DEFAULT
    return declared


def _is_bfloat16(v: Any) -> bool:
    return getattr(v.aval, "dtype", None) == dtypes.bfloat16


def _touches_bfloat16(eqn: JaxprEqn) -> bool:
    return any(map(_is_bfloat16, (*eqn.invars, *eqn.outvars)))


def _on_bits(rule: Rule) -> Rule:
    """``rule`` (an ``any_dtype`` lowering) applied to the ``uint16`` storage of an
    equation's bfloat16 operands and output buffer, its result a ``Bfloat16Buffer`` again."""
    def lower(ctx: Any, eqn: JaxprEqn, args: list[str], out: str | None) -> str:
        bits = [f"{a}.storage" if _is_bfloat16(v) else a for a, v in zip(args, eqn.invars)]
        expr = rule(ctx, eqn, bits, f"{out}.storage" if out else out)
        (result,) = eqn.outvars
        return f"{ctx.const(Bfloat16Buffer, 'Bfloat16Buffer')}({expr})" if _is_bfloat16(result) \
            else expr
    return lower


def declare_compiled_only(prim: Primitive) -> None:
    """Declare that ``prim`` exists only inside compiled executables (the compiler's passes
    create it after every transformation has run), so it has no JVP or batching rule."""
    _COMPILED_ONLY.add(prim)
    reason = "it exists only inside compiled executables"
    ad.def_no_jvp(prim, reason)
    batching.def_no_batch(prim, reason)


def kernel_primitive(name: str, out: str, multiple_results: bool = False) -> Primitive:
    """A primitive that exists only inside compiled executables: its ``kernel`` param (a
    generated function taking the operands and an optional ``out=``) does the work. The
    fusion strategies make their fused groups with it; ``out`` is as in ``def_lowering``.
    With ``multiple_results`` the kernel returns a list and its ``out=`` is a tuple holding
    a buffer (or None) per result."""
    prim = Primitive(name, multiple_results=multiple_results)
    prim.def_impl(lambda xp, *args, kernel, **params: kernel(*args))

    def abstract(*avals: Any, **params: Any) -> None:
        raise TypeError(f"{name} only exists inside compiled executables")
    prim.def_abstract_eval(abstract)

    def lower(ctx: Any, eqn: JaxprEqn, args: list[str], out_name: str | list | None) -> str:
        kernel = ctx.const(eqn.params["kernel"], name)
        if isinstance(out_name, list):
            out_name = f"({''.join(f'{o}, ' for o in out_name)[:-1]})"
        return f"{kernel}({', '.join(args)}{', out=' + out_name if out_name else ''})"
    def_lowering(prim, lower, fresh=True, out=out)
    declare_compiled_only(prim)
    return prim


__all__ = ["DEFAULT", "declare_compiled_only", "kernel_primitive", "lowering_for"]
