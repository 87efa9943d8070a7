"""Control flow in compiled code: bodies run by ``SubjaxprRunner``, and ``cond``'s lowering.

``while`` keeps the default lowering (its impl loops in Python; ``scan`` has a lowering of its
own, ``fungrad.compiler.scan``) and runs its body through ``control_flow.common.run_jaxpr``,
as the eager impls of ``scan`` and ``cond`` do; importing this module installs
``SubjaxprRunner`` there (``set_jaxpr_compiler``), so a body is interpreted for its first
``SubjaxprRunner.INTERPRETED_CALLS`` calls (a one-off loop does not pay for compilation) and
compiled by the whole pipeline after that. ``cond``'s lowering calls the runner of the branch
its clamped index picks, without ``run_jaxpr``'s per-call lookups. Both depend on the
pipeline, so they are declared here rather than beside the primitives in ``lax``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fungrad._core.core import ClosedJaxpr, JaxprEqn
from fungrad._core.lowering import def_lowering
from fungrad.compiler.pipeline import compile_jaxpr
from fungrad.lax.control_flow import common as control_flow_common
from fungrad.lax.control_flow.conditionals import cond_p


class SubjaxprRunner:
    """Runs a cond/scan/while body: interpreted for its first calls, compiled after that
    (one-off loops do not pay for compilation; long loops run compiled code)."""
    INTERPRETED_CALLS = 2
    __slots__ = ("calls", "closed", "exe")

    def __init__(self, closed: ClosedJaxpr) -> None:
        self.closed = closed
        self.calls = 0
        self.exe: tuple[Any, Callable] | None = None  # (array module, compiled function)

    def __call__(self, xp: Any, args: Sequence[Any]) -> list:
        if self.exe is not None and self.exe[0] is xp:
            return self.exe[1](*args)
        self.calls += 1
        if self.calls <= self.INTERPRETED_CALLS:
            return control_flow_common._interpret(self.closed, xp, args)
        fn = compile_jaxpr(self.closed, None, xp, "body").fn
        self.exe = (xp, fn)
        return fn(*args)


control_flow_common.set_jaxpr_compiler(SubjaxprRunner)


def _cond_lowering(ctx: Any, eqn: JaxprEqn, args: list[str], out: str | None) -> str:
    """``cond``: the clamped index picks a branch runner directly (the impl's semantics
    without the per-call lookups of ``run_jaxpr``)."""
    runners = [SubjaxprRunner(b) for b in eqn.params["branches"]]
    last, xp = len(runners) - 1, ctx.xp

    def cond(index, *ops):
        i = int(index)
        return runners[0 if i < 0 else min(i, last)](xp, ops)
    return f"{ctx.const(cond, 'cond')}({', '.join(args)})"


def_lowering(cond_p, _cond_lowering)


__all__ = ["SubjaxprRunner"]
