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
