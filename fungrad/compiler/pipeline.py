"""The compiler's pipeline: a ``ClosedJaxpr`` becomes an ``Executable``.

``compile_jaxpr`` runs the stages in order, each in its own module::

    passes.optimize -> fusion.fuse -> parallel.split -> codegen.compile_function

Only this module knows the order. The stages that compile pieces of their own (the block
bodies of blocked fusion, the components of a parallel tail) call code generation directly:
their pieces are already optimised, so they never come back through the pipeline.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core.core import ClosedJaxpr, ShapedArray
from fungrad.compiler import codegen, fusion, parallel, passes


class Executable:
    """A compiled jaxpr: ``executable(*buffers) -> list of buffers``.

    ``jaxpr`` is the optimised program the function runs; ``in_avals`` and ``out_avals`` are
    those of the jaxpr it was compiled from (weak types included, which the optimised one
    need not keep).
    """
    __slots__ = ("donated", "fn", "in_avals", "jaxpr", "name", "out_avals", "source")

    def __init__(self, fn: Callable, source: str, jaxpr: ClosedJaxpr,
                 in_avals: list[ShapedArray], out_avals: list[ShapedArray], donated: tuple,
                 name: str) -> None:
        self.fn = fn
        self.source = source
        self.jaxpr = jaxpr
        self.in_avals = in_avals
        self.out_avals = out_avals
        self.donated = donated
        self.name = name

    def __call__(self, *buffers: Any) -> list:
        return self.fn(*buffers)

    def as_text(self) -> str:
        """The optimised jaxpr this executable runs."""
        return str(self.jaxpr)


def compile_jaxpr(closed: ClosedJaxpr, donated: Sequence[bool] | None = None, xp: Any = np,
                  name: str = "jitted", optimize: bool = True, fuse: bool = True,
                  out_args: bool = False) -> Executable:
    """Optimise, fuse, split off a parallel tail and generate code for ``closed``.

    ``donated`` flags the inputs whose buffers the executable may write into; ``xp`` is the
    backend's array module. ``optimize=False`` skips the passes and ``fuse=False`` both fusion
    and the parallel tail (the program stays on one thread); with ``out_args`` the function
    also takes a buffer per output and writes the output into it.
    """
    donated = tuple(donated) if donated is not None else (False,) * len(closed.in_avals)
    program = passes.optimize(closed) if optimize else closed
    if fuse:
        program = fusion.fuse(program, xp)
        program = parallel.split(program, donated, xp, name)
    fn, source = codegen.compile_function(program, donated, xp, name, out_args)
    return Executable(fn, source, program, list(closed.in_avals), list(closed.out_avals),
                      donated, name)


__all__ = ["Executable", "compile_jaxpr"]
