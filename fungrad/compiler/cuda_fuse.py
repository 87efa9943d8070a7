"""The GPU fuser (``fusion._FUSERS["cupy"]``) and the CUDA text of a program.

``cuda_fuse`` runs two passes over an optimised jaxpr:

1. row groups: reductions over the last axis with the elementwise work around them
   (softmax, layer norm, cross-entropy, ...) become one row-block kernel each
   (``cuda_rows``); a group joins only reductions over rows of one shape;
2. elementwise groups: the chains left become one elementwise kernel each (``cuda``).

Each kernel is one ``fused_cuda`` equation whose ``kernel`` param holds the source, so
``cuda_text`` (what ``jit(f).lower(...).as_text(dialect="cuda")`` prints) is the fused
program followed by every kernel's CUDA source; none of this needs CuPy or a GPU.
"""
from __future__ import annotations

import math
import zlib

from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Var
from fungrad.compiler import cuda, cuda_rows, fusion
from fungrad.compiler.lowering import kernel_primitive

fused_cuda_p = kernel_primitive("fused_cuda", out="separate")


def _named(source: str, placeholder: str, prefix: str) -> tuple[str, str]:
    """The kernel's name (stable: a checksum of its source) and the source using it."""
    name = f"{prefix}_{zlib.crc32(source.encode()):08x}"
    return name, source.replace(f" {placeholder}(", f" {name}(", 1)


def _build_elementwise(eqns: list[JaxprEqn]) -> list[JaxprEqn] | None:
    """One ``fused_cuda`` equation computing the group's root from its outside inputs."""
    inner = {v for e in eqns for v in e.outvars}
    inputs = list(dict.fromkeys(a for e in eqns for a in e.invars
                                if type(a) is Var and a not in inner))
    root = eqns[-1].outvars[0]
    try:
        source = cuda.elementwise_source(Jaxpr([], inputs, [root], eqns), "fused")
    except NotImplementedError:
        return None
    name, source = _named(source, "fused", "fused")
    kernel = cuda.Kernel(source, name, root.aval, [v.aval for v in inputs])
    return [JaxprEqn(fused_cuda_p, inputs, [root], {"kernel": kernel})]


def _row_fuse(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Replace each row group by one row-block kernel (groups without a row reduction, or
    that are no row computation, stay for the elementwise pass)."""
    j = closed.jaxpr
    consts = dict(zip(j.constvars, closed.consts))
    producer = {v: e for e in j.eqns for v in e.outvars}
    picks = set()
    for eqn in j.eqns:
        if cuda_rows.take_along_last(eqn, producer, consts) is not None:
            picks |= {id(eqn), id(producer[eqn.invars[1]])}
    rows_of: dict[int, tuple] = {}  # group root -> the rows its reductions reduce

    def fusible(eqn: JaxprEqn) -> bool:
        return cuda.fusible(eqn) or cuda_rows.row_reduction(eqn) or id(eqn) in picks

    def same_group(eqn: JaxprEqn, root: JaxprEqn) -> bool:
        """A reduction joins only a group whose reductions reduce rows of its shape."""
        if not cuda_rows.row_reduction(eqn):
            return True
        rows = eqn.outvars[0].aval.shape
        if id(root) not in rows_of:
            rows_of[id(root)] = root.outvars[0].aval.shape if cuda_rows.row_reduction(root) \
                else rows
        return rows_of[id(root)] == rows

    def build(eqns: list[JaxprEqn]) -> list[JaxprEqn] | None:
        made = cuda_rows.row_group_source(eqns, consts, "rows")
        if made is None:
            return None
        source, inputs, rows = made
        name, source = _named(source, "rows", "rows")
        root = eqns[-1].outvars[0]
        kernel = cuda.Kernel(source, name, root.aval, [v.aval for v in inputs],
                             rows=math.prod(rows))
        return [JaxprEqn(fused_cuda_p, inputs, [root], {"kernel": kernel})]
    return fusion._group_fuse(closed, fusible, same_group, build)


def cuda_fuse(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Row-block kernels first, then one elementwise kernel per remaining chain."""
    return fusion._group_fuse(_row_fuse(closed), cuda.fusible, lambda eqn, root: True,
                              _build_elementwise)


def cuda_text(closed: ClosedJaxpr) -> str:
    """The fused program (``closed`` after ``cuda_fuse``) and the CUDA source of each of
    its kernels, in program order."""
    fused = cuda_fuse(closed)
    sources = [e.params["kernel"].source for e in fused.jaxpr.eqns if e.primitive is fused_cuda_p]
    return "\n".join([str(fused), *[f"// kernel {k}\n{s}" for k, s in enumerate(sources)]])


fusion._FUSERS["cupy"] = cuda_fuse
