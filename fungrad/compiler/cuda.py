"""CUDA code generation: fused elementwise groups as kernel source, and how kernels launch.

``elementwise_source(jaxpr, name)`` turns a jaxpr of elementwise equations (arithmetic,
transcendental functions, comparisons, ``select_n``, ``convert_element_type``,
``broadcast_in_dim`` and reshapes that only add or drop unit dimensions) into one CUDA
kernel: a thread per output element (grid-stride loop) computes the output's coordinates
once and reads each input at its broadcast offset, so a chain of broadcasts and converts
costs one pass over memory. Every value is computed in float32 when it is a half type
(bfloat16 is stored as ``unsigned short``, float16 as ``__half``) and rounded once, on the
store. Each elementwise primitive declares its C expression with the primitive
(``fungrad._core.lowering.def_cuda``, beside its other rules); what is indexing or typing
rather than a template (broadcasts, converts, ``select_n``, ``integer_pow``, ``round``,
unit reshapes) is written here.

``Emitter`` writes those statements; ``cuda_rows`` extends it to row-block kernels
(softmax, layer norm, cross-entropy). ``Kernel`` compiles a source with CuPy's
``RawKernel`` on first launch, cached by source text; ``FUNGRAD_PRINT_KERNELS=1`` prints
every kernel as it is compiled. Nothing here imports CuPy until a kernel is launched, so
the generator is tested on machines without a GPU (``tests/golden/cuda``).
"""
from __future__ import annotations

import importlib
import math
import os
import sys
from typing import Any

import numpy as np

from fungrad._core import lowering
from fungrad._core.core import Jaxpr, JaxprEqn, Literal, Var
from fungrad.backends.bfloat16 import Bfloat16Buffer
from fungrad.backends.cuda_source import BLOCK, MAX_GRID, PRELUDE

# storage type, how a stored value becomes the compute type, and back
_TYPES = {
    "float32": ("float", "{}", "{}"),
    "float64": ("double", "{}", "{}"),
    "bfloat16": ("unsigned short", "bf16_to_f32({})", "f32_to_bf16({})"),
    "float16": ("__half", "__half2float({})", "__float2half_rn({})"),
    "int32": ("int", "{}", "{}"),
    "uint32": ("unsigned int", "{}", "{}"),
    "bool": ("bool", "{}", "{}"),
}
_COMPUTE = {"float32": "float", "float64": "double", "bfloat16": "float", "float16": "float",
            "int32": "int", "uint32": "unsigned int", "bool": "bool"}


# the kind of a compute type, which picks a primitive's C template (``lowering.def_cuda``)
_KIND = {"float": "f", "double": "f", "int": "i", "unsigned int": "u", "bool": "b"}
# float -> integer conversions (``(int)x`` is undefined for NaN and out of range)
_TO_INT = {"int32": "fg_to_i32({})", "uint32": "fg_to_u32({})"}
_ROUND = {0: "round({})", 1: "rint({})"}  # lax.RoundingMethod: away from zero, to even
# what the generator writes itself (indexing and typing, not a declared template)
_STRUCTURAL = {"convert_element_type", "broadcast_in_dim", "integer_pow", "select_n",
               "round"}
_UNIT_RESHAPES = {"reshape", "squeeze", "expand_dims"}


def type_name(dtype: Any) -> str:
    """The CUDA C type of ``dtype``; ``NotImplementedError`` for a dtype the generator lacks."""
    name = np.dtype(dtype).name
    if name not in _TYPES:
        raise NotImplementedError(f"cuda codegen: dtype {name} is not supported")
    return name


def _non_unit(shape: tuple) -> list[int]:
    return [n for n in shape if n != 1]


def fusible(eqn: JaxprEqn) -> bool:
    """Whether the CUDA generator can take ``eqn`` into an elementwise kernel."""
    name = eqn.primitive.name
    if name in _UNIT_RESHAPES:  # a re-indexing only when the non-unit dimensions stay
        x, out = eqn.invars[0].aval, eqn.outvars[0].aval
        return len(eqn.outvars) == 1 and np.dtype(x.dtype).name in _TYPES and \
            _non_unit(x.shape) == _non_unit(out.shape) and \
            (name != "reshape" or eqn.params.get("dimensions") is None)
    if lowering.cuda_expr(eqn.primitive) is None and name not in _STRUCTURAL:
        return False
    avals = [a.aval for a in eqn.invars] + [v.aval for v in eqn.outvars]
    if name == "nextafter" and np.dtype(avals[0].dtype).name in ("bfloat16", "float16"):
        return False  # computed in float, the step would round back to the half type's x
    return len(eqn.outvars) == 1 and all(np.dtype(a.dtype).name in _TYPES for a in avals) and \
        (name != "select_n" or len(eqn.invars) == 3)


class Emitter:
    """Writes the statements of one kernel: each (value, coordinate map) computed once.

    ``_lookup``/``_define`` say where a statement goes (one list here; the row emitter of
    ``cuda_rows`` keeps row and loop scopes) and ``_eqn`` how an equation's value is
    computed at a coordinate map."""

    def __init__(self, jaxpr: Jaxpr) -> None:
        self.producer = {v: e for e in jaxpr.eqns for v in e.outvars}
        self.inputs = {v: k for k, v in enumerate(jaxpr.invars)}
        self.lines: list[str] = []
        self.done: dict[tuple, str] = {}
        self.count = 0

    def value(self, atom: Any, cmap: tuple) -> str:
        """A C expression of ``atom`` at the output coordinates ``cmap`` (one entry per
        dimension of ``atom``: a coordinate name, or "0" where it is broadcast)."""
        if type(atom) is Literal:
            raw = np.asarray(getattr(atom.val, "_value", atom.val), atom.aval.dtype)
            return _c_literal(raw.item(), type_name(atom.aval.dtype))
        key = (atom, cmap)
        name = self._lookup(key)
        if name is None:
            expr = self._eqn(atom, cmap) if atom in self.producer else self._input(atom, cmap)
            name = self._define(key, _COMPUTE[type_name(atom.aval.dtype)], expr)
        return name

    def _lookup(self, key: tuple) -> str | None:
        return self.done.get(key)

    def _define(self, key: tuple, ctype: str, expr: str) -> str:
        """Declare ``ctype v<k> = expr;`` for ``key``; return the variable's name (``expr``
        itself when it already is one: a re-indexing copies nothing)."""
        if expr.isidentifier():
            self.done[key] = expr
            return expr
        name = self.done[key] = self.fresh()
        self.lines.append(f"{ctype} {name} = {expr};")
        return name

    def fresh(self) -> str:
        """A new variable name."""
        self.count += 1
        return f"v{self.count - 1}"

    def _input(self, var: Var, cmap: tuple) -> str:
        return self.load(f"in{self.inputs[var]}", var, cmap)

    @staticmethod
    def load(pointer: str, var: Var, cmap: tuple) -> str:
        """``var`` (row-major in ``pointer``) read at ``cmap``, as its compute type."""
        shape = var.aval.shape
        strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
        terms = [f"{c} * {s}" if s != 1 else c for c, s, n in zip(cmap, strides, shape)
                 if c != "0" and n != 1]
        load = f"{pointer}[{' + '.join(terms) or '0'}]"
        return _TYPES[type_name(var.aval.dtype)][1].format(load)

    def _eqn(self, var: Var, cmap: tuple) -> str:
        eqn = self.producer[var]
        name, out_shape = eqn.primitive.name, var.aval.shape

        def operand(a: Any) -> str:  # elementwise operands broadcast as in NumPy
            shape = a.aval.shape
            lead = len(out_shape) - len(shape)
            return self.value(a, tuple(cmap[lead + j] if n == out_shape[lead + j] else "0"
                                       for j, n in enumerate(shape)))
        if name in _UNIT_RESHAPES:  # the non-unit coordinates, in order
            x = eqn.invars[0]
            kept = iter(c for c, n in zip(cmap, out_shape) if n != 1)
            return self.value(x, tuple(next(kept) if n != 1 else "0" for n in x.aval.shape))
        if name == "broadcast_in_dim":
            (x,) = eqn.invars
            dims = eqn.params["broadcast_dimensions"]
            sub = tuple(cmap[d] if n == out_shape[d] else "0"
                        for n, d in zip(x.aval.shape, dims))
            return self.value(x, sub)
        ctype = _COMPUTE[type_name(var.aval.dtype)]
        if name == "convert_element_type":
            return _convert(operand(eqn.invars[0]), eqn.invars[0].aval.dtype,
                            eqn.params["new_dtype"])
        if name == "integer_pow":
            return self._integer_pow(var, operand(eqn.invars[0]), eqn.params["y"], cmap)
        if name == "round":
            return _ROUND[int(eqn.params["rounding_method"])].format(operand(eqn.invars[0]))
        if name == "select_n":
            pred, on_false, on_true = (operand(a) for a in eqn.invars)
            return f"({pred} ? {on_true} : {on_false})"
        first = _KIND[_COMPUTE[type_name(eqn.invars[0].aval.dtype)]]
        template = lowering.cuda_expr(eqn.primitive).for_kind(first)
        return template.format(*[operand(a) for a in eqn.invars], t=ctype)

    def _integer_pow(self, var: Var, x: str, y: int, cmap: tuple) -> str:
        """``x ** y`` by repeated squaring, multiplied in the CPU implementation's order
        (so float32 results are the CPU's bits)."""
        ctype = _COMPUTE[type_name(var.aval.dtype)]
        if y == 0:
            return f"(({ctype})1)"
        acc, base, n, step = None, x, abs(y), 0
        while n:
            if n & 1:
                acc = base if acc is None else self._define(
                    (("integer_pow", var, step), cmap), ctype, f"({acc} * {base})")
                step += 1
            n >>= 1
            if n:
                base = self._define((("integer_pow", var, step), cmap), ctype,
                                    f"({base} * {base})")
                step += 1
        return f"(1 / {acc})" if y < 0 else acc


def _convert(value: str, old: Any, new: Any) -> str:
    """``value`` (of dtype ``old``, in its compute type) converted to ``new`` as lax does:
    floats to integers saturate (NaN to 0); to a half type, rounded there and back."""
    target = type_name(new)
    if target in _TO_INT and _KIND[_COMPUTE[type_name(old)]] == "f":
        return _TO_INT[target].format(value)
    value = f"({_COMPUTE[target]})({value})"
    if target in ("bfloat16", "float16"):
        value = _TYPES[target][1].format(_TYPES[target][2].format(value))
    return value


def _c_literal(value: Any, dtype: str) -> str:
    if dtype == "bool":
        return "true" if value else "false"
    if dtype in ("int32", "uint32"):
        return f"{int(value)}{'u' if dtype == 'uint32' else ''}"
    double = dtype == "float64"  # a float literal would not match a double's templates
    if math.isnan(value):
        return "__longlong_as_double(0x7ff8000000000000ll)" if double else \
            "__int_as_float(0x7fc00000)"
    if math.isinf(value):
        infinity = "__longlong_as_double(0x7ff0000000000000ll)" if double else \
            "__int_as_float(0x7f800000)"
        return f"{'-' if value < 0 else ''}{infinity}"
    return f"{float(value)!r}{'' if double else 'f'}"


def elementwise_source(jaxpr: Jaxpr, name: str) -> str:
    """CUDA source of kernel ``name(in0, ..., out, n)`` computing the single output of the
    elementwise ``jaxpr`` (see the module docstring)."""
    (out,) = jaxpr.outvars
    shape = out.aval.shape
    em = Emitter(jaxpr)
    coords = tuple(f"i{d}" for d in range(len(shape)))
    result = em.value(out, coords)
    params = [f"const {_TYPES[type_name(v.aval.dtype)][0]}* __restrict__ in{k}"
              for k, v in enumerate(jaxpr.invars)]
    params += [f"{_TYPES[type_name(out.aval.dtype)][0]}* __restrict__ out", "long long n"]
    index = []
    rest = "idx"
    for d in reversed(range(len(shape))):
        used = any(coords[d] in line for line in em.lines)
        if used:
            index.append(f"long long i{d} = {rest} % {shape[d]};" if d else
                         f"long long i{d} = {rest};")
        rest = f"({rest} / {shape[d]})" if d else rest
    body = "\n".join("    " + line for line in index[::-1] + em.lines)
    store = _TYPES[type_name(out.aval.dtype)][2].format(result)
    return (f"{PRELUDE}\nextern \"C\" __global__ void {name}({', '.join(params)}) {{\n"
            f"  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; "
            f"idx < n;\n       idx += (long long)gridDim.x * blockDim.x) {{\n{body}\n"
            f"    out[idx] = {store};\n  }}\n}}\n")


# --------------------------------------------------------------------------- compiling, launching



def storage_dtype(dtype: Any) -> np.dtype:
    """The CuPy dtype that stores ``dtype`` on the device: ``uint16`` for bfloat16 (CuPy has
    no bfloat16; kernels read it with ``bf16_to_f32``), else ``dtype`` itself."""
    return np.dtype(np.uint16) if type_name(dtype) == "bfloat16" else np.dtype(dtype)


class Kernel:
    """A generated kernel: compiled with CuPy's ``RawKernel`` on first launch (cached by
    source). An elementwise kernel runs one thread per output element; a row kernel
    (``rows`` given) one block of ``BLOCK`` threads per row. Its last parameter is the
    element count or the row count. ``in_avals`` are its inputs' (the kernel reads each
    as its dtype's storage type, so a launch converts a buffer of another dtype first)."""
    _compiled: dict[str, Any] = {}

    def __init__(self, source: str, name: str, out_aval: Any, in_avals: Any = (),
                 rows: int | None = None) -> None:
        self.source, self.name, self.out_aval, self.rows = source, name, out_aval, rows
        self.in_storage = [storage_dtype(a.dtype) for a in in_avals]
        self.__name__ = name  # how the IR printer shows it

    def function(self) -> Any:
        """The compiled ``RawKernel``, compiled on first use and cached by source
        (``FUNGRAD_PRINT_KERNELS=1`` prints the source then)."""
        fn = Kernel._compiled.get(self.source)
        if fn is None:
            if os.environ.get("FUNGRAD_PRINT_KERNELS", "0") not in ("0", "", "false"):
                print(f"// fungrad: CUDA kernel {self.name}\n{self.source}", file=sys.stdout)
            cupy = importlib.import_module("cupy")
            fn = Kernel._compiled[self.source] = cupy.RawKernel(self.source, self.name)
        return fn

    def grid(self) -> int:
        """Blocks per launch."""
        if self.rows is not None:
            return max(1, min(self.rows, MAX_GRID))
        n = max(1, math.prod(self.out_aval.shape))
        return min((n + BLOCK - 1) // BLOCK, MAX_GRID)

    def __call__(self, *args: Any, out: Any = None) -> Any:
        """Launch on device buffers (a ``Bfloat16Buffer`` passes its uint16 storage); the
        result is ``out`` or a new buffer (a ``Bfloat16Buffer`` for bfloat16)."""
        cupy = importlib.import_module("cupy")
        bf16 = type_name(self.out_aval.dtype) == "bfloat16"
        if out is None:
            out = cupy.empty(self.out_aval.shape, storage_dtype(self.out_aval.dtype))
            out = Bfloat16Buffer(out) if bf16 else out
        size = math.prod(self.out_aval.shape)
        if size == 0:  # nothing to compute (a launch would index an empty dimension by % 0)
            return out
        storage = out.storage if type(out) is Bfloat16Buffer else out
        count = self.rows if self.rows is not None else size
        inputs = [cupy.ascontiguousarray(a.storage if type(a) is Bfloat16Buffer else a, dtype=d)
                  for a, d in zip(args, self.in_storage)]
        self.function()((self.grid(),), (BLOCK,), (*inputs, storage, np.int64(count)))
        return out
