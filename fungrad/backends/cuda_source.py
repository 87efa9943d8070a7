"""CUDA C source of the backend's own kernels (text only: nothing here needs CuPy), and the
launch shape of every kernel fungrad launches (``BLOCK`` threads a block, at most
``MAX_GRID`` blocks), which the compiler's generated kernels share.

``THREEFRY2X32``: the body of a CuPy ``ElementwiseKernel`` computing Threefry-2x32 with
20 rounds, the cipher ``fungrad.random`` uses. The arithmetic is the same uint32
operations as the NumPy implementation (additions wrap modulo 2**32, rotations are two
shifts and an or), so the random bits on a GPU are those on the CPU by construction.
One kernel replaces the ~130 small array operations of the NumPy code.

``scatter_source``: ``RawKernel``s combining values into an array at flat indices,
duplicates included (``numpy.add.at``, ``multiply.at``, ``maximum.at``, ``minimum.at``),
for every real dtype up to 8 bytes wide and complex64's products: CUDA has atomic
adds and extremes for a few dtypes only (those CuPy's ``scatter_add``/``scatter_max``
use) and no atomic multiply, so each update is a compare-and-swap loop on the element's
bits (on the aligned 4-byte word holding it, for 1- and 2-byte dtypes), retried until no
other thread changed the element in between.
"""
from __future__ import annotations

BLOCK = 256  # threads per block of the kernels fungrad launches
MAX_GRID = 65535  # blocks per launch; kernels loop (grid-stride) over the rest

# The helpers of every generated kernel: bfloat16 storage (rounding as ml_dtypes) and the
# ``fg_*`` functions primitives' C expressions call where C's operators differ from lax's
# (``_core.lowering.def_cuda``).
PRELUDE = """#include <cuda_fp16.h>
__device__ __forceinline__ float bf16_to_f32(unsigned short v) {
  return __uint_as_float(((unsigned int)v) << 16);
}
// round to nearest even; a NaN becomes the quiet NaN of its sign (as ml_dtypes)
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)(((u >> 16) & 0x8000u) | 0x7fc0u);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// lax.max/min of floats: a NaN operand wins and +0 is above -0 (CUDA's fmax/fmin drop NaN)
template <typename T> __device__ __forceinline__ T fg_max(T a, T b) {
  return a != a ? a : (b != b || b > a || (b == a && signbit(a))) ? b : a;
}
template <typename T> __device__ __forceinline__ T fg_min(T a, T b) {
  return a != a ? a : (b != b || b < a || (b == a && signbit(b))) ? b : a;
}
// integer division as XLA: x / 0 = -1 (all bits set), x % 0 = x, MIN / -1 = MIN, MIN % -1 = 0
__device__ __forceinline__ int fg_div(int a, int b) {
  return b == 0 ? -1 : b == -1 ? (int)(0u - (unsigned int)a) : a / b;
}
__device__ __forceinline__ unsigned int fg_div(unsigned int a, unsigned int b) {
  return b == 0u ? 0xffffffffu : a / b;
}
__device__ __forceinline__ int fg_rem(int a, int b) { return b == 0 ? a : b == -1 ? 0 : a % b; }
__device__ __forceinline__ unsigned int fg_rem(unsigned int a, unsigned int b) {
  return b == 0u ? a : a % b;
}
__device__ __forceinline__ int fg_abs(int a) {  // |MIN| wraps to MIN
  return a < 0 ? (int)(0u - (unsigned int)a) : a;
}
template <typename T> __device__ __forceinline__ T fg_sign(T x) {  // keeps -0 and NaN
  return x > 0 ? (T)1 : x < 0 ? (T)-1 : x;
}
template <typename T> __device__ __forceinline__ T fg_logistic(T x) {  // never overflows
  T e = exp(-fabs(x));
  return x >= 0 ? 1 / (e + 1) : e / (e + 1);
}
// shifts as XLA: the amount read as unsigned; at least the bit width gives 0 (or the sign)
__device__ __forceinline__ unsigned int fg_shl(unsigned int x, unsigned int s) {
  return s < 32u ? x << s : 0u;
}
__device__ __forceinline__ unsigned int fg_shr(unsigned int x, unsigned int s) {
  return s < 32u ? x >> s : 0u;
}
__device__ __forceinline__ int fg_sar(int x, unsigned int s) { return x >> (s < 32u ? s : 31u); }
// float -> integer as XLA: truncate, saturate out of range, NaN -> 0
__device__ __forceinline__ int fg_to_i32(double x) {
  return x != x ? 0 : x >= 2147483647.0 ? 2147483647 : x <= -2147483648.0 ? -2147483647 - 1
         : (int)x;
}
__device__ __forceinline__ unsigned int fg_to_u32(double x) {
  return x != x ? 0u : x >= 4294967295.0 ? 4294967295u : x <= 0.0 ? 0u : (unsigned int)x;
}
"""

# bfloat16 on a device (``fungrad.backends.bfloat16``): CuPy ``ElementwiseKernel``s, as
# (in_params, out_params, operation), rounding float32 to the stored bits and back
BF16_ROUND = ("float32 x", "uint16 y", "y = f32_to_bf16(x);")
BF16_WIDEN = ("uint16 b", "float32 y", "y = bf16_to_f32(b);")


def bf16_elementwise(template: str, n_in: int, rounded: bool) -> tuple[str, str, str]:
    """An ``ElementwiseKernel`` (in_params, out_params, operation) computing a primitive's C
    ``template`` (its float form, ``_core.lowering.def_cuda``) over ``n_in`` bfloat16
    operands in float32, as the CPU computes bfloat16: the result rounded to bfloat16 bits
    once when ``rounded``, else a bool as it is (a comparison)."""
    value = template.format(*[f"bf16_to_f32(x{k})" for k in range(n_in)], t="float")
    return (", ".join(f"uint16 x{k}" for k in range(n_in)),
            "uint16 y" if rounded else "bool y",
            f"y = f32_to_bf16({value});" if rounded else f"y = {value};")


KEY_PARITY = 0x1BD11BDA
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry_body() -> str:
    lines = ["unsigned int ks[3] = {k1, k2, k1 ^ k2 ^ " + f"{KEY_PARITY:#x}u" + "};",
             "unsigned int a = x1 + ks[0], b = x2 + ks[1];"]
    for i in range(5):
        for r in ROTATIONS[i % 2]:
            lines.append(f"a += b; b = (b << {r}) | (b >> {32 - r}); b ^= a;")
        lines.append(f"a += ks[{(i + 1) % 3}]; b += ks[{(i + 2) % 3}] + {i + 1}u;")
    lines.append("y1 = a; y2 = b;")
    return "\n".join(lines) + "\n"


THREEFRY2X32 = _threefry_body()
THREEFRY2X32_PARAMS = ("uint32 k1, uint32 k2, uint32 x1, uint32 x2", "uint32 y1, uint32 y2")


# dtype name -> (C type, the unsigned type of its width, the value of bits ``b`` in the C
# type, the bits of value ``r``)
_TYPES = {
    "bool": ("bool", "unsigned char", "b != 0", "(unsigned char)r"),
    "int8": ("signed char", "unsigned char", "(signed char)b", "(unsigned char)r"),
    "uint8": ("unsigned char", "unsigned char", "b", "r"),
    "int16": ("short", "unsigned short", "(short)b", "(unsigned short)r"),
    "uint16": ("unsigned short", "unsigned short", "b", "r"),
    "float16": ("__half", "unsigned short", "__ushort_as_half(b)", "__half_as_ushort(r)"),
    "int32": ("int", "unsigned int", "(int)b", "(unsigned int)r"),
    "uint32": ("unsigned int", "unsigned int", "b", "r"),
    "float32": ("float", "unsigned int", "__uint_as_float(b)", "__float_as_uint(r)"),
    "int64": ("long long", "unsigned long long", "(long long)b", "(unsigned long long)r"),
    "uint64": ("unsigned long long", "unsigned long long", "b", "r"),
    "float64": ("double", "unsigned long long", "__longlong_as_double((long long)b)",
                "(unsigned long long)__double_as_longlong(r)"),
    "complex64": ("fungrad_complex64", "unsigned long long",  # the real part in the low half
                  "fungrad_complex64{__uint_as_float((unsigned int)b), "
                  "__uint_as_float((unsigned int)(b >> 32))}",
                  "((unsigned long long)__float_as_uint(r.im) << 32) | __float_as_uint(r.re)"),
}
SCATTER_OPS = ("add", "multiply", "maximum", "minimum")


def _combined(op: str, dtype_name: str) -> str | None:
    """The C expression of ``current`` updated by ``value`` as ``numpy.<op>`` does for
    dtype ``dtype_name`` (None: no kernel). Integers wrap (computed unsigned, where C's
    signed overflow is undefined); ``maximum``/``minimum`` keep a NaN from either side."""
    c_type, bits = _TYPES[dtype_name][:2]
    if dtype_name == "bool":  # add and maximum are "or", multiply and minimum "and"
        return "current || value" if op in ("add", "maximum") else "current && value"
    if dtype_name == "complex64":  # (complex adds are adds of their float parts)
        return ("fungrad_complex64{current.re * value.re - current.im * value.im, "
                "current.re * value.im + current.im * value.re}") if op == "multiply" else None
    if op in ("maximum", "minimum"):
        a, b = ("__half2float(current)", "__half2float(value)") if dtype_name == "float16" \
            else ("current", "value")
        nan = f" || {a} != {a}" if dtype_name.startswith("float") else ""
        return f"({a} {'>' if op == 'maximum' else '<'} {b}{nan}) ? current : value"
    sign = "+" if op == "add" else "*"
    if dtype_name == "float16":
        return f"__float2half_rn(__half2float(current) {sign} __half2float(value))"
    if dtype_name.startswith("float"):
        return f"current {sign} value"
    wide = "unsigned long long" if bits == "unsigned long long" else "unsigned int"
    return f"({c_type})(({wide})current {sign} ({wide})value)"


SCATTER_KERNELS = frozenset((op, name) for op in SCATTER_OPS for name in _TYPES
                            if _combined(op, name) is not None)

# The compare-and-swap loop on an element 4 or 8 bytes wide, or on the aligned 4-byte word
# holding a narrower one (CUDA swaps no narrower word on every GPU)
_SWAP_ELEMENT = """\
    {bits}* address = ({bits}*)(out + index[i]);
    {bits} seen = *address, expected;
    do {{
      expected = seen;
      const {c_type} current = fungrad_from_bits(expected);
      const {c_type} result = {combined};
      seen = atomicCAS(address, expected, fungrad_to_bits(result));
    }} while (seen != expected);
"""
_SWAP_IN_WORD = """\
    const unsigned long long at = (unsigned long long)(out + index[i]);
    unsigned int* word = (unsigned int*)(at & ~3ull);
    const unsigned int shift = (unsigned int)(at & 3ull) * 8u;
    const unsigned int mask = (unsigned int)({bits})~0u << shift;
    unsigned int seen = *word, expected;
    do {{
      expected = seen;
      const {c_type} current = fungrad_from_bits(({bits})((expected & mask) >> shift));
      const {c_type} result = {combined};
      seen = atomicCAS(word, expected, (expected & ~mask)
                       | ((unsigned int)fungrad_to_bits(result) << shift));
    }} while (seen != expected);
"""


def scatter_source(dtype_name: str) -> tuple[str, dict[str, str]]:
    """The source of the kernels ``out[index[i]] = out[index[i]] <op> values[i]`` for
    every ``i < n`` and every op of ``SCATTER_KERNELS`` for an ``out`` of dtype
    ``dtype_name``, and each op's kernel name."""
    c_type, bits, from_bits, to_bits = _TYPES[dtype_name]
    swap = _SWAP_IN_WORD if bits in ("unsigned char", "unsigned short") else _SWAP_ELEMENT
    names, kernels = {}, []
    for op in SCATTER_OPS:
        combined = _combined(op, dtype_name)
        if combined is None:
            continue
        names[op] = name = f"fungrad_scatter_{op}_{dtype_name}"
        kernels.append(f"""\
extern "C" __global__ void {name}({c_type}* out, const long long* index,
                                 const {c_type}* values, long long n) {{
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {{
    const {c_type} value = values[i];
{swap.format(bits=bits, c_type=c_type, combined=combined)}  }}
}}
""")
    source = ("#include <cuda_fp16.h>\n" if dtype_name == "float16" else "") + f"""\
struct fungrad_complex64 {{ float re, im; }};
__device__ __forceinline__ {c_type} fungrad_from_bits({bits} b) {{ return {from_bits}; }}
__device__ __forceinline__ {bits} fungrad_to_bits({c_type} r) {{ return {to_bits}; }}
""" + "".join(kernels)
    return source, names
