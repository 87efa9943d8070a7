"""Row-block CUDA kernels: reductions over the last axis fused with the elementwise work
around them (softmax, log-softmax, layer norm, RMS norm, cross-entropy), one kernel each.

A row group is a group of equations whose reductions all reduce the last axis of operands
with the same leading shape ``R`` (the *rows*). The kernel runs one thread block per row:
each reduction is a loop of the block's threads over the row (``j``) followed by a
shared-memory tree reduction in float32, whatever the storage type; values that do not
depend on ``j`` (a row's max, mean, label) are computed once per row; values that do are
recomputed inside each loop that needs them, so nothing of row length is written to
memory except the result. The result is either row-shaped (a final loop writes it) or one
value per row (written by the block's first thread). A reduction primitive declares how a
row kernel combines its values (``lowering.def_cuda_reducer``, in
``fungrad/lax/reductions.py``: ``reduce_sum``, ``reduce_max``, ``reduce_min``).

``take_along_axis`` on the last axis (how a cross-entropy picks each row's label) joins a
row group when its leading index columns are the row coordinates (a constant
``np.indices`` array, as ``jnp.take_along_axis`` makes them): the picked value is computed
at the label's column only, in the row's scope.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from fungrad._core import lowering
from fungrad._core.core import Jaxpr, JaxprEqn, Literal, Var
from fungrad.backends.cuda_source import PRELUDE
from fungrad.compiler import cuda

ROW_PRELUDE = """#define ADD(a, b) ((a) + (b))
// all threads of the block combine val with op; every thread gets the result
#define BLOCK_REDUCE(val, op, result) \\
  red[threadIdx.x] = (val); __syncthreads(); \\
  for (int s = blockDim.x / 2; s > 0; s >>= 1) { \\
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \\
    __syncthreads(); } \\
  float result = red[0]; __syncthreads();
"""


def row_reduction(eqn: JaxprEqn) -> bool:
    """Whether ``eqn`` reduces the last axis of an operand of rank >= 2 in float32 compute
    (a full reduction of a vector, such as a loss's mean, is not a row reduction)."""
    if lowering.cuda_reducer(eqn.primitive) is None:
        return False
    x = eqn.invars[0].aval
    return x.ndim >= 2 and tuple(eqn.params["axes"]) == (x.ndim - 1,) and \
        np.dtype(x.dtype).name in ("float32", "bfloat16", "float16")


def _non_unit(shape: tuple) -> list[int]:
    return [n for n in shape if n != 1]


def take_along_last(eqn: JaxprEqn, producer: dict, consts: dict) -> Any:
    """The label operand when ``eqn`` is a gather picking one element per row along the
    last axis, with the row coordinates as its leading index columns (``jnp.take_along_axis``
    on the last axis); else None."""
    if eqn.primitive.name != "gather":
        return None
    operand, indices = eqn.invars
    dn, rank = eqn.params["dimension_numbers"], operand.aval.ndim
    if rank < 2 or dn.offset_dims or dn.operand_batching_dims or \
            dn.start_indices_batching_dims or tuple(dn.collapsed_slice_dims) != tuple(range(rank)) \
            or tuple(dn.start_index_map) != tuple(range(rank)) or \
            tuple(eqn.params["slice_sizes"]) != (1,) * rank:
        return None
    concat = producer.get(indices)
    if concat is None or concat.primitive.name != "concatenate" or len(concat.invars) != 2 or \
            concat.params["dimension"] != indices.aval.ndim - 1:
        return None
    coords, label = concat.invars
    if type(coords) is not Var or coords not in consts or coords.aval.shape[-1] != rank - 1 or \
            label.aval.shape[-1] != 1:
        return None
    batch, rows = indices.aval.shape[:-1], operand.aval.shape[:-1]
    if _non_unit(batch) != _non_unit(rows):
        return None
    grids = iter(np.indices(batch)[d] for d, n in enumerate(batch) if n != 1)
    expected = np.stack([next(grids) if n != 1 else np.zeros(batch, int) for n in rows], -1)
    value = np.asarray(getattr(consts[coords], "_value", consts[coords]))
    return label if np.array_equal(np.broadcast_to(value, expected.shape), expected) else None


class RowEmitter(cuda.Emitter):
    """The statements of a row kernel, in two scopes: the row's (computed once per row, in
    ``row_lines``) and the loop over the row's elements being written (``loop``)."""

    def __init__(self, jaxpr: Jaxpr, rows: tuple, consts: dict) -> None:
        super().__init__(jaxpr)
        self.inputs = {}  # numbered as first read: operands nothing reads are no parameters
        self.consts = consts
        self.row_cmap = tuple(f"i{d}" if n != 1 else "0" for d, n in enumerate(rows))
        self.row_lines: list[str] = []
        self.loop: list[str] = []
        self.loop_done: dict[tuple, str] = {}

    def _lookup(self, key: tuple) -> str | None:
        return (self.loop_done if "j" in key[1] else self.done).get(key)

    def _define(self, key: tuple, ctype: str, expr: str) -> str:
        lines, done = (self.loop, self.loop_done) if "j" in key[1] else (self.row_lines, self.done)
        if expr.isidentifier():  # already a variable (a re-indexing): no copy
            done[key] = expr
            return expr
        name = done[key] = self.fresh()
        lines.append(f"{ctype} {name} = {expr};")
        return name

    def _input(self, var: Var, cmap: tuple) -> str:
        k = self.inputs.setdefault(var, len(self.inputs))
        return self.load(f"in{k}", var, cmap)

    def in_loop(self, length: int, compute: Any) -> tuple[str, list[str]]:
        """Run ``compute()`` (returning a C expression of ``j``) in a fresh loop scope;
        return the expression and the loop's header and body lines (without the close)."""
        saved = self.loop, self.loop_done
        self.loop, self.loop_done = [], {}
        try:
            expr = compute()
            body = self.loop
        finally:
            self.loop, self.loop_done = saved
        head = f"for (long long j = threadIdx.x; j < {length}; j += blockDim.x) {{"
        return expr, [head] + ["  " + line for line in body]

    def _eqn(self, var: Var, cmap: tuple) -> str:
        eqn = self.producer[var]
        if lowering.cuda_reducer(eqn.primitive) is not None:
            return self._reduce(eqn, cmap)
        if eqn.primitive.name == "gather":
            return self._pick(eqn, var, cmap)
        return super()._eqn(var, cmap)

    def _reduce(self, eqn: JaxprEqn, cmap: tuple) -> str:
        """A block reduction of the row, emitted in the row scope."""
        if [c for c in cmap if c != "0"] != [c for c in self.row_cmap if c != "0"]:
            raise NotImplementedError("cuda rows: a reduction read away from the block's row")
        op, init = lowering.cuda_reducer(eqn.primitive)
        x = eqn.invars[0]
        acc, result = self.fresh(), self.fresh()
        value, loop = self.in_loop(x.aval.shape[-1], lambda: self.value(x, cmap + ("j",)))
        self.row_lines += [f"float {acc} = {init};", *loop, f"  {acc} = {op}({acc}, {value});",
                           "}", f"BLOCK_REDUCE({acc}, {op}, {result})"]
        return result

    def _pick(self, eqn: JaxprEqn, var: Var, cmap: tuple) -> str:
        """``take_along_axis`` on the last axis: the operand at the row's label column."""
        label = take_along_last(eqn, self.producer, self.consts)
        if label is None or "j" in cmap:
            raise NotImplementedError("cuda rows: a gather other than a per-row pick")
        operand = eqn.invars[0]
        n = operand.aval.shape[-1]
        lab = self.value(label, cmap + ("0",))
        col = self._define((("column", var), cmap), "long long",
                           f"({lab} < 0 ? 0 : ({lab} > {n - 1} ? {n - 1} : {lab}))")
        kept = iter(c for c, d in zip(cmap, var.aval.shape) if d != 1)
        picked = self.value(operand, tuple(next(kept) if d != 1 else "0"
                                           for d in operand.aval.shape[:-1]) + (col,))
        mode = getattr(eqn.params["mode"], "name", str(eqn.params["mode"]))
        if "FILL" not in mode:
            return picked
        fill = eqn.params.get("fill_value")
        fill = cuda._c_literal(math.nan if fill is None else fill, cuda.type_name(var.aval.dtype))
        return f"(({lab} >= 0 && {lab} < {n}) ? {picked} : {fill})"


def row_source(jaxpr: Jaxpr, rows: tuple, consts: dict, name: str) -> tuple[str, list[Var]]:
    """CUDA source of row kernel ``name(in0, ..., out, rows)`` computing the single output
    of ``jaxpr`` over rows of leading shape ``rows``, and the operands its parameters take
    (in order). NotImplementedError when the group is not a row computation."""
    (out,) = jaxpr.outvars
    shape = out.aval.shape
    em = RowEmitter(jaxpr, rows, consts)
    store_type = cuda._TYPES[cuda.type_name(out.aval.dtype)]
    if _non_unit(shape) == _non_unit(rows):  # one value per row
        kept = iter(c for c in em.row_cmap if c != "0")
        result = em.value(out, tuple(next(kept) if n != 1 else "0" for n in shape))
        em.row_lines.append(f"if (threadIdx.x == 0) out[row] = {store_type[2].format(result)};")
    elif shape[:-1] == rows:  # a whole row
        length = shape[-1]
        result, loop = em.in_loop(length, lambda: em.value(out, em.row_cmap + ("j",)))
        em.row_lines += [*loop, f"  out[row * {length} + j] = {store_type[2].format(result)};",
                         "}"]
    else:
        raise NotImplementedError(f"cuda rows: result shape {shape} is not rows {rows}")
    inputs = sorted(em.inputs, key=em.inputs.get)
    params = [f"const {cuda._TYPES[cuda.type_name(v.aval.dtype)][0]}* __restrict__ in{k}"
              for k, v in enumerate(inputs)]
    params += [f"{store_type[0]}* __restrict__ out", "long long rows"]
    text = "\n".join(em.row_lines)
    coords, rest = [], "row"
    for d in reversed(range(len(rows))):
        if em.row_cmap[d] != "0" and re.search(rf"\bi{d}\b", text):
            coords.append(f"long long i{d} = {rest} % {rows[d]};" if d else
                          f"long long i{d} = {rest};")
        rest = f"({rest} / {rows[d]})" if d else rest
    body = "\n".join("    " + line for line in coords[::-1] + em.row_lines)
    source = (f"{PRELUDE}{ROW_PRELUDE}\nextern \"C\" __global__ void {name}("
              f"{', '.join(params)}) {{\n  __shared__ float red[{cuda.BLOCK}];\n"
              f"  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {{\n{body}\n"
              f"  }}\n}}\n")
    return source, inputs


def row_group_source(eqns: list[JaxprEqn], consts: dict, name: str
                     ) -> tuple[str, list[Var], tuple] | None:
    """The row kernel of a fused group (its root comes last): source, operands and row
    shape; None when the group has no row reduction or is not a row computation."""
    shapes = {e.outvars[0].aval.shape for e in eqns if row_reduction(e)}
    if len(shapes) != 1:
        return None
    rows = shapes.pop()
    inner = {v for e in eqns for v in e.outvars}
    outside = list(dict.fromkeys(a for e in eqns for a in e.invars
                                 if type(a) is not Literal and a not in inner))
    try:
        source, inputs = row_source(Jaxpr([], outside, [eqns[-1].outvars[0]], eqns), rows,
                                    consts, name)
    except NotImplementedError:
        return None
    return source, inputs, rows
