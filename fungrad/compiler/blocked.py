"""Blocked fusion: a group of elementwise equations runs block by block.

A fused group (see ``fusion``) over a large result becomes one ``fused_blocks``
equation whose kernel walks the result in blocks of about ``BLOCK_ELEMS``
elements and runs the whole group on each block before moving on: the same NumPy
ufunc calls as unfused code (so the same results, bit for bit), but on operands
small enough to stay in the L2 cache, so each operand is read from memory once
and the intermediates never leave the cache.

The block body is ordinary generated code (``codegen.compile_function`` of the group
with block-sized types): its intermediates live in its arena, its results are written
into the blocks of the outputs. A group whose intermediates are also read after it (see
``fusion``: a forward pass's values saved for the backward pass, an optimiser's new
state) writes them too, in the same pass (``fused_blocks_outs``, several results).
Operands are viewed as ``(rows, *rest)``: the result's leading axes are merged into rows
and split into blocks, and an operand either spans those axes (it is sliced with the
block) or is broadcast along all of them (it is passed whole, e.g. a bias row or a scalar).

Blocks pay ~0.5 µs of Python per op, so groups over results smaller than
``MIN_SIZE`` elements stay unfused (``benchmarks/bench_jit.py --fusion`` measures
the crossover).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, ShapedArray, Var
from fungrad.compiler.codegen import compile_function
from fungrad.compiler.lowering import kernel_primitive, lowering_for

BLOCK_ELEMS = 131072  # elements of the result per block (512 KiB of float32)
MIN_SIZE = 1 << 20    # results smaller than this stay unfused


# A block of a result depends only on the same block of the operands, and the block body
# writes a result only once no operand of its type is read after it (``codegen``'s
# ``out_args``): a result may update a dying operand in place, as the donated params and
# state of an optimiser step.
fused_blocks_p = kernel_primitive("fused_blocks", out="any")
# A group some of whose intermediates are read after it: one pass writes them all.
fused_blocks_outs_p = kernel_primitive("fused_blocks_outs", out="any", multiple_results=True)


def fusible(eqn: JaxprEqn) -> bool:
    """An equation whose lowering is declared ``elementwise``, with a large enough result."""
    if len(eqn.outvars) != 1:
        return False
    out = eqn.outvars[0].aval
    return out.size >= MIN_SIZE and out.dtype.isbuiltin == 1 and \
        all(a.aval.dtype.isbuiltin == 1 for a in eqn.invars) and lowering_for(eqn).elementwise


def same_group(eqn: JaxprEqn, root: JaxprEqn) -> bool:
    """Members of a group all have the root's result shape."""
    return eqn.outvars[0].aval.shape == root.outvars[0].aval.shape


def build(eqns: list[JaxprEqn], outs: list[Var], xp: Any) -> list[JaxprEqn] | None:
    """The equation computing the group (root last) and its results ``outs`` (the root's
    last): ``fused_blocks`` for the root alone, ``fused_blocks_outs`` for several; None
    when its operands do not block (or the result is a single block)."""
    shape = eqns[-1].outvars[0].aval.shape
    produced = {e.outvars[0] for e in eqns}
    inputs: list[Var] = []
    for e in eqns:
        for a in e.invars:
            if type(a) is Var and a not in produced and a not in inputs:
                inputs.append(a)
    padded = [(1,) * (len(shape) - a.aval.ndim) + a.aval.shape for a in inputs]
    split = _split_axis(shape, padded)
    rows, rest = math.prod(shape[:split]), shape[split:]
    step = max(1, BLOCK_ELEMS // max(1, math.prod(rest)))
    if rows < 2 * step:
        return None
    spans = [p[:split] == shape[:split] for p in padded]
    body = _block_body(eqns, outs, inputs, padded, spans, split, step, xp)
    tail = _block_body(eqns, outs, inputs, padded, spans, split, rows % step, xp) \
        if rows % step else None
    views = [((rows,) if s else ()) + p[split:] for p, s in zip(padded, spans)]
    kernel = _kernel(xp, shape, [v.aval.dtype for v in outs], (rows, *rest), views, spans,
                     step, body, tail)
    if len(outs) == 1:
        prim, kernel = fused_blocks_p, _single(kernel)
    else:
        prim = fused_blocks_outs_p
    return [JaxprEqn(prim, list(inputs), list(outs), {"kernel": kernel, "n_ops": len(eqns)})]


def _split_axis(shape: tuple, padded: list[tuple]) -> int:
    """The most leading axes of ``shape`` that every operand spans or is broadcast along."""
    for k in range(len(shape), 0, -1):
        if all(p[:k] == shape[:k] or all(d == 1 for d in p[:k]) for p in padded):
            return k
    return 0


def _block_body(eqns: list[JaxprEqn], outs: list[Var], inputs: list[Var], padded: list[tuple],
                spans: list[bool], split: int, rows: int, xp: Any) -> Callable:
    """The group compiled for blocks of ``rows`` rows:
    ``body(*operand_blocks, *out_blocks)``, one out block per result in ``outs``."""
    env: dict[Var, Var] = {}
    for v, p, s in zip(inputs, padded, spans):
        env[v] = Var(ShapedArray(((rows,) if s else ()) + p[split:], v.aval.dtype))
    new_eqns = []
    for e in eqns:
        out = e.outvars[0]
        env[out] = Var(ShapedArray((rows, *out.aval.shape[split:]), out.aval.dtype))
        new_eqns.append(JaxprEqn(e.primitive, [env.get(a, a) if type(a) is Var else a
                                               for a in e.invars], [env[out]], e.params))
    jaxpr = Jaxpr([], [env[v] for v in inputs], [env[v] for v in outs], new_eqns)
    body, _ = compile_function(ClosedJaxpr(jaxpr, []), None, xp, "block", out_args=True)
    return body


def _kernel(xp: Any, shape: tuple, dtypes: list[np.dtype], rows_shape: tuple,
            views: list[tuple], spans: list[bool], step: int, body: Callable,
            tail: Callable | None) -> Callable:
    """``blocked(*operands, out=None) -> list of results``: ``out`` holds a buffer (or
    None) per result; a missing or non-contiguous one is allocated."""
    rows = rows_shape[0]
    end = rows - rows % step

    def blocked(*xs, out=None):
        outs = [o if o is not None and o.flags.c_contiguous else xp.empty(shape, dtype)
                for o, dtype in zip(out or (None,) * len(dtypes), dtypes)]
        rows_of = [o.reshape(rows_shape) for o in outs]  # views of them must be the outputs
        vs = [x.reshape(v) for x, v in zip(xs, views)]
        for lo in range(0, end, step):
            hi = lo + step
            body(*[v[lo:hi] if s else v for v, s in zip(vs, spans)], *[o[lo:hi] for o in rows_of])
        if tail is not None:
            tail(*[v[end:] if s else v for v, s in zip(vs, spans)], *[o[end:] for o in rows_of])
        return outs
    return blocked


def _single(kernel: Callable) -> Callable:
    """The kernel of a group with one result: ``blocked(*operands, out=None) -> result``."""
    def blocked(*xs, out=None):
        return kernel(*xs, out=(out,))[0]
    return blocked
