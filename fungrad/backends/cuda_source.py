"""CUDA C source of the backend's own kernels (text only: nothing here needs CuPy), and the
launch shape of every kernel fungrad launches (``BLOCK`` threads a block, at most
``MAX_GRID`` blocks), which the compiler's generated kernels share.

``THREEFRY2X32``: the body of a CuPy ``ElementwiseKernel`` computing Threefry-2x32 with
20 rounds, the cipher ``fungrad.random`` uses. The arithmetic is the same uint32
operations as the NumPy implementation (additions wrap modulo 2**32, rotations are two
shifts and an or), so the random bits on a GPU are those on the CPU by construction.
One kernel replaces the ~130 small array operations of the NumPy code.

``scatter_multiply_source``: a ``RawKernel`` multiplying values into an array at flat
indices, duplicates included (``numpy.multiply.at``), for the dtypes a GPU can update
atomically (2, 4 and 8 bytes wide): CUDA has no atomic multiply, so each update is a
compare-and-swap loop on the element's bits, retried until no other thread changed the
element in between.
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


# dtype name -> (C type, the unsigned type of its width that atomicCAS swaps, the value of
# bits ``expected`` in the C type, the bits of ``result``, the product of ``current`` and
# ``value``)
_PRODUCTS = {
    "float16": ("__half", "unsigned short", "__ushort_as_half(expected)",
                "__half_as_ushort(result)",
                "__float2half_rn(__half2float(current) * __half2float(value))"),
    "float32": ("float", "unsigned int", "__uint_as_float(expected)", "__float_as_uint(result)",
                "current * value"),
    "float64": ("double", "unsigned long long", "__longlong_as_double((long long)expected)",
                "(unsigned long long)__double_as_longlong(result)", "current * value"),
    "int32": ("int", "unsigned int", "(int)expected", "(unsigned int)result", "current * value"),
    "uint32": ("unsigned int", "unsigned int", "expected", "result", "current * value"),
    "int64": ("long long", "unsigned long long", "(long long)expected",
              "(unsigned long long)result", "current * value"),
    "uint64": ("unsigned long long", "unsigned long long", "expected", "result",
               "current * value"),
    "complex64": ("fungrad_complex64", "unsigned long long",  # the real part in the low half
                  "fungrad_complex64{__uint_as_float((unsigned int)expected), "
                  "__uint_as_float((unsigned int)(expected >> 32))}",
                  "((unsigned long long)__float_as_uint(result.im) << 32) "
                  "| __float_as_uint(result.re)",
                  "fungrad_complex64{current.re * value.re - current.im * value.im, "
                  "current.re * value.im + current.im * value.re}"),
}
SCATTER_MULTIPLY_DTYPES = frozenset(_PRODUCTS)


def scatter_multiply_source(dtype_name: str) -> tuple[str, str]:
    """The source and name of the kernel ``out[index[i]] *= values[i]`` for every ``i <
    n``, for an ``out`` of dtype ``dtype_name`` (one of ``SCATTER_MULTIPLY_DTYPES``)."""
    c_type, word, from_bits, to_bits, product = _PRODUCTS[dtype_name]
    name = f"fungrad_scatter_multiply_{dtype_name}"
    source = ("#include <cuda_fp16.h>\n" if dtype_name == "float16" else "") + f"""\
struct fungrad_complex64 {{ float re, im; }};
extern "C" __global__ void {name}({c_type}* out, const long long* index,
                                 const {c_type}* values, long long n) {{
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {{
    {word}* address = ({word}*)(out + index[i]);
    const {c_type} value = values[i];
    {word} seen = *address, expected;
    do {{
      expected = seen;
      const {c_type} current = {from_bits};
      const {c_type} result = {product};
      seen = atomicCAS(address, expected, {to_bits});
    }} while (seen != expected);
  }}
}}
"""
    return source, name
