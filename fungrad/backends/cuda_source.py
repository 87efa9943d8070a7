"""CUDA C source of the backend's own kernels (text only: nothing here needs CuPy).

``THREEFRY2X32``: the body of a CuPy ``ElementwiseKernel`` computing Threefry-2x32 with
20 rounds, the cipher ``fungrad.random`` uses. The arithmetic is the same uint32
operations as the NumPy implementation (additions wrap modulo 2**32, rotations are two
shifts and an or), so the random bits on a GPU are those on the CPU by construction.
One kernel replaces the ~130 small array operations of the NumPy code.
"""
from __future__ import annotations

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
