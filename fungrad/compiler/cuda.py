"""CUDA code generation: fused elementwise groups and row-block reductions as kernel source.

``elementwise_source(jaxpr, name)`` turns a jaxpr of elementwise equations (arithmetic,
transcendental functions, comparisons, ``select_n``, ``convert_element_type`` and
``broadcast_in_dim``) into one CUDA kernel: a thread per output element (grid-stride
loop) computes the output's coordinates once and reads each input at its broadcast
offset, so a chain of broadcasts and converts costs one pass over memory. Every value is
computed in float32 when it is a half type (bfloat16 is stored as ``unsigned short``,
float16 as ``__half``) and rounded once, on the store.

``softmax_source``, ``layer_norm_source`` and ``cross_entropy_source`` are the row-block
kernels: one thread block per row, a shared-memory tree reduction in float32 whatever the
storage type, then the elementwise part in the same kernel.

``Kernel`` compiles a source with CuPy's ``RawKernel`` on first launch, cached by source
text; ``FUNGRAD_PRINT_KERNELS=1`` prints every kernel as it is compiled. ``cuda_fuse``
is the GPU fuser (``fusion._FUSERS["cupy"]``): the groups the CPU fuser forms, compiled to
CUDA. Nothing here imports CuPy until a kernel is launched, so the generator is tested on
machines without a GPU (``tests/golden/cuda``).
"""
from __future__ import annotations

import importlib
import math
import os
import sys
from typing import Any

import numpy as np

from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var
from fungrad.compiler import fusion
from fungrad.compiler.lowering import kernel_primitive

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

PRELUDE = """#include <cuda_fp16.h>
__device__ __forceinline__ float bf16_to_f32(unsigned short v) {
  return __uint_as_float(((unsigned int)v) << 16);
}
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {  // round to nearest even
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // NaN
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
"""

_BINARY = {"add": "({} + {})", "add_any": "({} + {})", "sub": "({} - {})", "mul": "({} * {})",
           "div": "({} / {})", "max": "fmax({}, {})", "min": "fmin({}, {})",
           "pow": "pow({}, {})", "atan2": "atan2({}, {})", "eq": "({} == {})",
           "ne": "({} != {})", "lt": "({} < {})", "le": "({} <= {})", "gt": "({} > {})",
           "ge": "({} >= {})", "and": "({} & {})", "or": "({} | {})"}
_UNARY = {"neg": "(-{})", "exp": "exp({})", "log": "log({})", "tanh": "tanh({})",
          "sin": "sin({})", "cos": "cos({})", "sqrt": "sqrt({})", "rsqrt": "rsqrt({})",
          "abs": "fabs({})", "expm1": "expm1({})", "log1p": "log1p({})", "erf": "erf({})",
          "logistic": "(1 / (1 + exp(-{})))", "square": "({0} * {0})", "floor": "floor({})",
          "ceil": "ceil({})", "sign": "(({0} > 0) - ({0} < 0))", "not": "(!{})"}
_STRUCTURAL = {"convert_element_type", "broadcast_in_dim", "integer_pow", "select_n"}


def type_name(dtype: Any) -> str:
    """The CUDA C type of ``dtype``; ``NotImplementedError`` for a dtype the generator lacks."""
    name = np.dtype(dtype).name
    if name not in _TYPES:
        raise NotImplementedError(f"cuda codegen: dtype {name} is not supported")
    return name


def fusible(eqn: JaxprEqn) -> bool:
    """Whether the CUDA generator can take ``eqn`` into an elementwise kernel."""
    name = eqn.primitive.name
    if name not in _BINARY and name not in _UNARY and name not in _STRUCTURAL:
        return False
    avals = [a.aval for a in eqn.invars] + [v.aval for v in eqn.outvars]
    return len(eqn.outvars) == 1 and all(np.dtype(a.dtype).name in _TYPES for a in avals) and \
        (name != "select_n" or len(eqn.invars) == 3)


class _Emitter:
    """Writes the statements of one kernel: each (value, coordinate map) computed once."""

    def __init__(self, jaxpr: Jaxpr) -> None:
        self.producer = {v: e for e in jaxpr.eqns for v in e.outvars}
        self.inputs = {v: k for k, v in enumerate(jaxpr.invars)}
        self.lines: list[str] = []
        self.done: dict[tuple, str] = {}

    def value(self, atom: Any, cmap: tuple) -> str:
        """A C expression of ``atom`` at the output coordinates ``cmap`` (one entry per
        dimension of ``atom``: a coordinate name, or "0" where it is broadcast)."""
        if type(atom) is Literal:
            raw = np.asarray(getattr(atom.val, "_value", atom.val), atom.aval.dtype)
            return _c_literal(raw.item(), type_name(atom.aval.dtype))
        key = (atom, cmap)
        if key not in self.done:
            expr = self._input(atom, cmap) if atom in self.inputs else self._eqn(atom, cmap)
            name = f"v{len(self.lines)}"
            self.lines.append(f"{_COMPUTE[type_name(atom.aval.dtype)]} {name} = {expr};")
            self.done[key] = name
        return self.done[key]

    def _input(self, var: Var, cmap: tuple) -> str:
        shape, k = var.aval.shape, self.inputs[var]
        strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
        terms = [f"{c} * {s}" if s != 1 else c for c, s, n in zip(cmap, strides, shape)
                 if c != "0" and n != 1]
        load = f"in{k}[{' + '.join(terms) or '0'}]"
        return _TYPES[type_name(var.aval.dtype)][1].format(load)

    def _eqn(self, var: Var, cmap: tuple) -> str:
        eqn = self.producer[var]
        name, out_shape = eqn.primitive.name, var.aval.shape

        def operand(a: Any) -> str:  # elementwise operands broadcast as in NumPy
            shape = a.aval.shape
            lead = len(out_shape) - len(shape)
            return self.value(a, tuple(cmap[lead + j] if n == out_shape[lead + j] else "0"
                                       for j, n in enumerate(shape)))
        if name == "broadcast_in_dim":
            (x,) = eqn.invars
            dims = eqn.params["broadcast_dimensions"]
            sub = tuple(cmap[d] if n == out_shape[d] else "0"
                        for n, d in zip(x.aval.shape, dims))
            return self.value(x, sub)
        if name == "convert_element_type":  # to a half type: rounded there and back
            target = type_name(eqn.params["new_dtype"])
            value = f"({_COMPUTE[target]})({operand(eqn.invars[0])})"
            if target in ("bfloat16", "float16"):
                value = _TYPES[target][1].format(_TYPES[target][2].format(value))
            return value
        if name == "integer_pow":
            x, y = operand(eqn.invars[0]), eqn.params["y"]
            body = " * ".join([x] * abs(y)) if y else "1"
            return f"(1 / ({body}))" if y < 0 else f"({body})"
        if name == "select_n":
            pred, on_false, on_true = (operand(a) for a in eqn.invars)
            return f"({pred} ? {on_true} : {on_false})"
        template = _BINARY.get(name) or _UNARY[name]
        return template.format(*[operand(a) for a in eqn.invars])


def _c_literal(value: Any, dtype: str) -> str:
    if dtype == "bool":
        return "true" if value else "false"
    if dtype in ("int32", "uint32"):
        return f"{int(value)}{'u' if dtype == 'uint32' else ''}"
    if math.isnan(value):
        return "__int_as_float(0x7fc00000)"
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}__int_as_float(0x7f800000)"
    return f"{float(value)!r}{'' if dtype == 'float64' else 'f'}"


def elementwise_source(jaxpr: Jaxpr, name: str) -> str:
    """CUDA source of kernel ``name(in0, ..., out, n)`` computing the single output of the
    elementwise ``jaxpr`` (see the module docstring)."""
    (out,) = jaxpr.outvars
    shape = out.aval.shape
    em = _Emitter(jaxpr)
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


# --------------------------------------------------------------------------- row-block kernels

BLOCK = 256

_REDUCE = """  __shared__ float red[{block}];
#define BLOCK_REDUCE(val, op, result) \\
  red[threadIdx.x] = (val); __syncthreads(); \\
  for (int s = {block} / 2; s > 0; s >>= 1) {{ \\
    if (threadIdx.x < s) red[threadIdx.x] = op(red[threadIdx.x], red[threadIdx.x + s]); \\
    __syncthreads(); }} \\
  float result = red[0]; __syncthreads();
"""


def _row_kernel(name: str, params: list[str], body: str) -> str:
    return (f"{PRELUDE}\n#define ADD(a, b) ((a) + (b))\n"
            f"extern \"C\" __global__ void {name}({', '.join(params)}) {{\n"
            f"  long long row = blockIdx.x;\n{_REDUCE.format(block=BLOCK)}{body}}}\n")


def _load(dtype: str, expr: str) -> str:
    return _TYPES[dtype][1].format(expr)


def softmax_source(dtype: Any, n: int, name: str = "softmax") -> str:
    """``out[r, :] = softmax(x[r, :])`` over rows of length ``n``, one block per row."""
    t = type_name(dtype)
    st = _TYPES[t][0]
    x = _load(t, "x[row * n + j]")
    body = f"""  const long long n = {n};
  float m = -__int_as_float(0x7f800000);
  for (long long j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, {x});
  BLOCK_REDUCE(m, fmaxf, row_max)
  float s = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += __expf({x} - row_max);
  BLOCK_REDUCE(s, ADD, row_sum)
  float inv = 1.f / row_sum;
  for (long long j = threadIdx.x; j < n; j += blockDim.x)
    out[row * n + j] = {_TYPES[t][2].format(f"__expf({x} - row_max) * inv")};
"""
    return _row_kernel(name, [f"const {st}* __restrict__ x", f"{st}* __restrict__ out"], body)


def layer_norm_source(dtype: Any, n: int, eps: float, name: str = "layer_norm") -> str:
    """``out = (x - mean) / sqrt(var + eps) * gamma + beta`` over rows of length ``n``
    (two-pass mean and variance in float32), one block per row."""
    t = type_name(dtype)
    st = _TYPES[t][0]
    x = _load(t, "x[row * n + j]")
    scale = _load(t, "gamma[j]")
    shift = _load(t, "beta[j]")
    body = f"""  const long long n = {n};
  float s = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += {x};
  BLOCK_REDUCE(s, ADD, total)
  float mean = total / n;
  float q = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) {{ float d = {x} - mean; q += d * d; }}
  BLOCK_REDUCE(q, ADD, sq)
  float inv = rsqrtf(sq / n + {_c_literal(eps, "float32")});
  for (long long j = threadIdx.x; j < n; j += blockDim.x)
    out[row * n + j] = {_TYPES[t][2].format(f"({x} - mean) * inv * ({scale}) + {shift}")};
"""
    return _row_kernel(name, [f"const {st}* __restrict__ x", f"const {st}* __restrict__ gamma",
                              f"const {st}* __restrict__ beta", f"{st}* __restrict__ out"], body)


def cross_entropy_source(dtype: Any, n: int, name: str = "cross_entropy") -> str:
    """``loss[r] = logsumexp(logits[r, :]) - logits[r, labels[r]]`` in float32, one block
    per row of ``n`` classes."""
    t = type_name(dtype)
    st = _TYPES[t][0]
    x = _load(t, "logits[row * n + j]")
    body = f"""  const long long n = {n};
  float m = -__int_as_float(0x7f800000);
  for (long long j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, {x});
  BLOCK_REDUCE(m, fmaxf, row_max)
  float s = 0.f;
  for (long long j = threadIdx.x; j < n; j += blockDim.x) s += __expf({x} - row_max);
  BLOCK_REDUCE(s, ADD, row_sum)
  if (threadIdx.x == 0) {{
    long long j = labels[row];
    loss[row] = row_max + __logf(row_sum) - {x};
  }}
"""
    return _row_kernel(name, [f"const {st}* __restrict__ logits", "const int* __restrict__ labels",
                              "float* __restrict__ loss"], body)


# --------------------------------------------------------------------------- compiling, fusing

class Kernel:
    """A generated kernel: compiled with CuPy's ``RawKernel`` on first launch (cached by
    source), launched with one thread per output element."""
    _compiled: dict[str, Any] = {}

    def __init__(self, source: str, name: str, out_aval: Any) -> None:
        self.source, self.name, self.out_aval = source, name, out_aval
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

    def __call__(self, *args: Any, out: Any = None) -> Any:
        cupy = importlib.import_module("cupy")
        shape, dtype = self.out_aval.shape, self.out_aval.dtype
        if out is None:
            out = cupy.empty(shape, dtype)
        n = max(1, math.prod(shape))
        grid = min((n + BLOCK - 1) // BLOCK, 65535)
        self.function()((grid,), (BLOCK,), (*[cupy.ascontiguousarray(a) for a in args], out,
                                             np.int64(n)))
        return out


fused_cuda_p = kernel_primitive("fused_cuda", out="separate")


def _build(eqns: list[JaxprEqn]) -> list[JaxprEqn] | None:
    """One ``fused_cuda`` equation computing the group's root from its outside inputs."""
    inner = {v for e in eqns for v in e.outvars}
    inputs = []
    for e in eqns:
        for a in e.invars:
            if type(a) is Var and a not in inner and a not in inputs:
                inputs.append(a)
    root = eqns[-1].outvars[0]
    try:
        source = elementwise_source(Jaxpr([], inputs, [root], eqns), "fused")
    except NotImplementedError:
        return None
    name = f"fused_{abs(hash(source)) % 10**8}"
    kernel = Kernel(source.replace(" fused(", f" {name}(", 1), name, root.aval)
    return [JaxprEqn(fused_cuda_p, inputs, [root], {"kernel": kernel})]


def cuda_fuse(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Replace each group of fusible elementwise equations by one generated CUDA kernel."""
    return fusion._group_fuse(closed, fusible, lambda eqn, root: True, _build)


fusion._FUSERS["cupy"] = cuda_fuse
