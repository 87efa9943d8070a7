"""The GPU backend: the CuPy seam checked on the CPU, and the same programs on every device.

The first part runs everywhere: the array-module wrapper with NumPy standing in for CuPy,
the Threefry kernel's CUDA C compiled for the host with a C++ compiler (so its bits are
checked against the CPU implementation without a GPU), and CuPy's import and kernel
construction where CuPy is installed. The second part is parametrised over the devices:
the CPU always, the GPU when CuPy sees one (skipped with the reason otherwise).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import types

import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.backends import cuda_source, namespace

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- the seam, on the CPU

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_lexsort_matches_numpy(axis):
    keys = RNG.integers(0, 3, size=(3, 6, 7))  # many ties: the secondary keys decide
    got = namespace.lexsort(np, list(keys), axis=axis)
    np.testing.assert_array_equal(got, np.lexsort(keys, axis=axis))


def _strict_module() -> types.ModuleType:
    """A stand-in for CuPy: NumPy's functions, but sorts that reject ``kind`` and ufuncs
    without ``at`` (as CuPy's may be)."""
    mod = types.ModuleType("cupy")

    def sort(a, axis=-1, kind=None):
        if kind is not None:
            raise ValueError("kind is not supported")
        return np.sort(a, axis=axis, kind="stable")

    def argsort(a, axis=-1, kind=None):
        if kind is not None:
            raise ValueError("kind is not supported")
        return np.argsort(a, axis=axis, kind="stable")
    mod.__dict__.update(sort=sort, argsort=argsort, take_along_axis=np.take_along_axis,
                        add=lambda *a, **k: np.add(*a, **k), maximum=np.maximum,
                        minimum=np.minimum, asarray=np.asarray)
    return mod


def test_device_namespace_replaces_what_cupy_lacks():
    calls = []

    def scatter_add(a, index, values):
        calls.append(index)
        np.add.at(a, index, values)
    ns = namespace.device_namespace(_strict_module(), {"add": scatter_add}, {})
    assert ns.__name__ == "cupy" and ns.asarray is np.asarray
    out = np.zeros(4)
    ns.add.at(out, np.array([1, 1, 3]), np.array([1.0, 2.0, 5.0]))  # duplicates combine
    np.testing.assert_array_equal(out, [0.0, 3.0, 0.0, 5.0])
    np.testing.assert_array_equal(ns.add(np.ones(2), 1.0), [2.0, 2.0])
    assert len(calls) == 1
    x = RNG.standard_normal((4, 5))
    np.testing.assert_array_equal(ns.sort(x, axis=0, kind="stable"), np.sort(x, axis=0))
    keys = [RNG.integers(0, 2, 9), RNG.integers(0, 2, 9)]
    np.testing.assert_array_equal(ns.lexsort(keys, axis=-1), np.lexsort(keys))


def test_impl_for_uses_the_backend_override():
    def base(xp, x):
        return "base"

    def device(xp, x):
        return "device"
    ns = namespace.device_namespace(_strict_module(), {}, {"sin": device})
    x = np.ones(2, np.float32)
    assert namespace.impl_for(ns, "sin", base)(ns, x) == "device"
    assert namespace.impl_for(ns, "cos", base)(ns, x) == "base"
    assert namespace.impl_for(np, "sin", base) is base


_HOST_HARNESS = """
#include <cstdio>
#include <cstdlib>
void hash(unsigned n, const unsigned *K1, const unsigned *K2, const unsigned *X1,
          const unsigned *X2, unsigned *Y1, unsigned *Y2) {
  for (unsigned i = 0; i < n; ++i) {
    unsigned int k1 = K1[i], k2 = K2[i], x1 = X1[i], x2 = X2[i];
    unsigned int &y1 = Y1[i], &y2 = Y2[i];
BODY
  }
}
int main() {
  unsigned n; if (scanf("%u", &n) != 1) return 1;
  unsigned *v = (unsigned *)malloc(6 * n * sizeof(unsigned));
  for (unsigned i = 0; i < 4 * n; ++i) if (scanf("%u", v + i) != 1) return 1;
  hash(n, v, v + n, v + 2 * n, v + 3 * n, v + 4 * n, v + 5 * n);
  for (unsigned i = 0; i < 2 * n; ++i) printf("%u\\n", v[4 * n + i]);
  return 0;
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++) on this machine")
def test_threefry_cuda_source_gives_the_cpu_bits(tmp_path):
    """The kernel body, compiled for the host, against fungrad.random's NumPy threefry."""
    from fungrad.random._threefry import threefry2x32_p
    src = tmp_path / "threefry.cc"
    src.write_text(_HOST_HARNESS.replace("BODY", cuda_source.THREEFRY2X32))
    exe = tmp_path / "threefry"
    subprocess.run(["g++", "-O1", "-o", str(exe), str(src)], check=True, timeout=120)
    n = 257
    k1, k2, x1, x2 = (RNG.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
                      for _ in range(4))
    feed = "\n".join(map(str, [n, *k1, *k2, *x1, *x2]))
    out = subprocess.run([str(exe)], input=feed, capture_output=True, text=True, check=True,
                         timeout=60).stdout.split()
    y1, y2 = threefry2x32_p.bind(*(jnp.asarray(a) for a in (k1, k2, x1, x2)))
    np.testing.assert_array_equal(np.array(out[:n], np.uint64), np.asarray(y1))
    np.testing.assert_array_equal(np.array(out[n:], np.uint64), np.asarray(y2))


@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")
def test_cupy_backend_imports_and_builds_kernels_without_a_gpu():
    """Where CuPy is installed, the backend module and its kernels are built without a GPU
    (CUDA compiles a kernel at its first launch); fungrad still lists its devices."""
    from fungrad.backends import cupy as cupy_backend
    assert cupy_backend.xp.__name__ == "cupy"
    assert cupy_backend.xp.fungrad_overrides["threefry2x32"] is cupy_backend._threefry2x32_impl
    assert cupy_backend.xp.add.at is __import__("cupyx").scatter_add
    assert fungrad.devices("cpu")[0].platform == "cpu"


# --------------------------------------------------------------------------- every device

def _gpu_skip_reason() -> str | None:
    try:
        fungrad.devices("gpu")
    except RuntimeError as e:
        return f"no GPU: {e}"
    return None


DEVICES = [pytest.param("cpu", id="cpu"),
           pytest.param("gpu", id="gpu", marks=pytest.mark.skipif(
               _gpu_skip_reason() is not None, reason=str(_gpu_skip_reason())))]


@pytest.fixture(params=DEVICES)
def device(request):
    return fungrad.devices(request.param)[0]


def _on(device, *arrays):
    return [fungrad.device_put(np.asarray(a), device) for a in arrays]


def test_eager_jit_and_grad_agree_with_the_cpu(device):
    x, w = _on(device, RNG.standard_normal((8, 16)).astype(np.float32),
               RNG.standard_normal((16, 4)).astype(np.float32))

    def loss(w, x):
        h = jnp.tanh(x @ w) * 0.5 + 1.0
        return jnp.mean(jax_softmax(h) ** 2)
    got = fungrad.jit(fungrad.value_and_grad(loss))(w, x)
    want = fungrad.value_and_grad(loss)(np.asarray(w), np.asarray(x))
    assert got[1].device == device and got[1].committed
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-4, atol=1e-7)


def jax_softmax(h):
    return fungrad.nn.softmax(h, axis=-1)


def test_random_bits_are_the_cpus(device):
    key = fungrad.device_put(fungrad.random.PRNGKey(42), device)
    got = fungrad.random.bits(key, (1000,))
    assert got.device == device
    np.testing.assert_array_equal(np.asarray(got),
                                  np.asarray(fungrad.random.bits(fungrad.random.PRNGKey(42),
                                                                 (1000,))))


def test_scatter_add_with_duplicates_sort_and_gather(device):
    (x,) = _on(device, np.zeros(5, np.float32))
    idx = np.array([0, 2, 2, 4, 2])
    out = x.at[idx].add(1.0)
    np.testing.assert_array_equal(np.asarray(out), [1, 0, 3, 0, 1])
    (v,) = _on(device, RNG.standard_normal((3, 7)).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(jnp.sort(v, axis=1)), np.sort(np.asarray(v), 1))
    np.testing.assert_array_equal(np.asarray(jnp.argsort(v, axis=0)),
                                  np.argsort(np.asarray(v), 0, kind="stable"))
    np.testing.assert_array_equal(np.asarray(v[:, np.array([6, 0, 6])]),
                                  np.asarray(v)[:, [6, 0, 6]])


def test_conv_and_reduce_window(device):
    x, k = _on(device, RNG.standard_normal((2, 3, 9, 9)).astype(np.float32),
               RNG.standard_normal((4, 3, 3, 3)).astype(np.float32))
    got = fungrad.lax.conv_general_dilated(x, k, (1, 1), "SAME")
    want = fungrad.lax.conv_general_dilated(np.asarray(x), np.asarray(k), (1, 1), "SAME")
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)
    pooled = fungrad.lax.reduce_window(x, -np.inf, fungrad.lax.max, (1, 1, 2, 2), (1, 1, 2, 2),
                                       "VALID")
    want = np.asarray(x)[:, :, :8, :8].reshape(2, 3, 4, 2, 4, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(np.asarray(pooled), want)


if os.environ.get("FUNGRAD_GPU_TESTS_REQUIRE_GPU") and _gpu_skip_reason() is not None:
    raise RuntimeError(f"FUNGRAD_GPU_TESTS_REQUIRE_GPU is set but {_gpu_skip_reason()}")


# --------------------------------------------------------------------------- CUDA source (golden)

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "cuda")
BF16 = jnp.bfloat16


def _chain(x, b, m):
    return jnp.tanh(x * 2.0 + b) * m.astype(jnp.float32) - 1.0


def _bf16_mul_add(x, y):
    return (x.astype(jnp.float32) * y.astype(jnp.float32) + 1.0).astype(jnp.bfloat16)


def _ln(x, g, b):
    """The GPT-2 block's norm (``nn.layer_norm``, as ``models.gpt2`` calls it)."""
    return fungrad.nn.layer_norm({"scale": g, "bias": b}, x)


def _xent_per_row(logits, labels):
    return fungrad.nn.softmax_cross_entropy_with_integer_labels(logits, labels)


def _xent_mean(logits, labels):
    return jnp.mean(_xent_per_row(logits, labels))


def _row_programs() -> dict:
    """Real traced programs whose row patterns jit must find: name -> (function, args)."""
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((6, 50)).astype(np.float32) * 3
    labels = np.array([0, 49, 7, -1, 3, 12], np.int32)  # -1: the last class, as in JAX
    x = rng.standard_normal((5, 768)).astype(np.float32)
    return {
        "rows_softmax_f32": (lambda v: fungrad.nn.softmax(v), (rng.standard_normal((7, 300))
                                                               .astype(np.float32) * 4,)),
        "rows_layer_norm_f32": (_ln, (x, rng.standard_normal(768).astype(np.float32),
                                      rng.standard_normal(768).astype(np.float32))),
        "rows_layer_norm_bf16": (_ln, tuple(jnp.asarray(a, dtype=BF16) for a in (
            x, rng.standard_normal(768), rng.standard_normal(768)))),
        "rows_cross_entropy_f32": (_xent_per_row, (logits, labels)),
        "rows_cross_entropy_mean_f32": (_xent_mean, (logits, labels)),
    }


def _cuda_text(fn, args) -> str:
    return fungrad.jit(fn).lower(*args).as_text(dialect="cuda")


def _golden_sources() -> dict[str, str]:
    from fungrad.compiler import cuda
    chain = fungrad.make_jaxpr(_chain)(np.ones((4, 8), np.float32), np.ones(8, np.float32),
                                       np.ones((4, 1), np.int32))
    mixed = fungrad.make_jaxpr(_bf16_mul_add)(jnp.ones((2, 16), BF16), jnp.ones(16, BF16))
    sources = {
        "elementwise_broadcast_convert": cuda.elementwise_source(chain.jaxpr, "chain"),
        "elementwise_bf16_in_f32_compute": cuda.elementwise_source(mixed.jaxpr, "bf16_mul_add"),
    }
    sources.update({name: _cuda_text(fn, args) for name, (fn, args) in _row_programs().items()})
    return sources


GOLDEN_NAMES = ["elementwise_broadcast_convert", "elementwise_bf16_in_f32_compute",
                "rows_softmax_f32", "rows_layer_norm_f32", "rows_layer_norm_bf16",
                "rows_cross_entropy_f32", "rows_cross_entropy_mean_f32"]


@pytest.fixture(scope="module")
def golden_sources():
    sources = _golden_sources()
    if os.environ.get("FUNGRAD_REGEN_GOLDEN", "0") not in ("0", ""):
        os.makedirs(GOLDEN, exist_ok=True)
        for name, text in sources.items():
            with open(os.path.join(GOLDEN, name + ".cu"), "w") as f:
                f.write(text)
    return sources


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_cuda_source_matches_golden_file(golden_sources, name):
    """Regenerate with FUNGRAD_REGEN_GOLDEN=1 after a deliberate change of the generator."""
    with open(os.path.join(GOLDEN, name + ".cu")) as f:
        assert golden_sources[name] == f.read()


def _kernel_sources(text: str) -> list[str]:
    """The CUDA sources in an ``as_text(dialect="cuda")`` printout (one per kernel)."""
    return [part.split("\n", 1)[1] for part in text.split("// kernel ")[1:]]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no CUDA compiler (nvcc) on this machine")
def test_golden_cuda_sources_compile(tmp_path, golden_sources):
    """nvcc compiles every generated kernel to PTX (no GPU needed): the golden ones and
    those of the semantic and library-function cases (one file)."""
    files = []
    for name, text in golden_sources.items():
        for k, source in enumerate(_kernel_sources(text) if name.startswith("rows") else [text]):
            path = tmp_path / f"{name}_{k}.cu"
            path.write_text(source)
            files.append(path)
    from fungrad.compiler import cuda
    cases = [_case_kernel(make, inputs, f"k{k}").source.replace(cuda.PRELUDE, "")
             for k, (make, inputs) in enumerate(SEMANTIC_CASES.values())]
    cases += [_case_kernel(make, (x,), f"t{k}").source.replace(cuda.PRELUDE, "")
              for k, (make, x) in enumerate(TRANSCENDENTAL_CASES.values())]
    files.append(tmp_path / "semantic_cases.cu")
    files[-1].write_text(cuda.PRELUDE + "\n".join(cases))
    proc = subprocess.run(["nvcc", "--ptx", "-arch=sm_80", "-odir", str(tmp_path),
                           *map(str, files)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for path in files:
        assert ".entry" in path.with_suffix(".ptx").read_text(), path.name


def test_jit_finds_one_row_kernel_per_pattern(golden_sources):
    """softmax, layer norm and the per-row cross-entropy each become a single row kernel;
    the loss's mean over the rows stays outside it."""
    for name in GOLDEN_NAMES[2:]:
        program = golden_sources[name].split("// kernel ")[0]
        assert program.count("fused_cuda[kernel=rows_") == 1, (name, program)
        assert "reduce_max[axes=(1,)]" not in program and "gather" not in program, name
    assert "reduce_sum[axes=(0,)]" in golden_sources["rows_cross_entropy_mean_f32"]


# -------------------------------------------------------------------------- kernels run on the host

_HOST_SHIMS = """#include <cmath>
#include <cstdio>
#include <cstring>
using namespace std;
struct Dim3 { unsigned x; };
static Dim3 threadIdx = {0}, blockIdx = {0}, blockDim = {1}, gridDim = {1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
static inline void __syncthreads() {}
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
"""

_C_TYPES = {"float32": "float", "float64": "double", "bfloat16": "unsigned short",
            "uint16": "unsigned short", "int32": "int", "uint32": "unsigned int", "bool": "bool"}


def _run_kernels_on_host(cases: list, tmp_path) -> list[np.ndarray]:
    """Run generated kernels compiled for the host (one block of one thread: their
    grid-stride loops then cover every row or element) on NumPy inputs, all in one
    program; ``cases`` are ``(kernel, inputs)`` pairs, the outputs come back in order."""
    from fungrad.compiler import cuda
    body, calls = [], []
    for c, (kernel, inputs) in enumerate(cases):
        out = kernel.out_aval
        count = kernel.rows if kernel.rows is not None else int(np.prod(out.shape))
        for k, a in enumerate(inputs):
            (tmp_path / f"c{c}_in{k}.bin").write_bytes(np.ascontiguousarray(a).tobytes())
            calls.append(f"  static {_C_TYPES[a.dtype.name]} c{c}_in{k}[{a.size}]; f = fopen("
                         f"\"{tmp_path}/c{c}_in{k}.bin\", \"rb\"); if (fread(c{c}_in{k}, "
                         f"sizeof(c{c}_in{k}[0]), {a.size}, f) != {a.size}) return 1; fclose(f);")
        size = int(np.prod(out.shape))
        args = ", ".join([f"c{c}_in{k}" for k in range(len(inputs))] + [f"c{c}_out"])
        calls += [f"  static {_C_TYPES[np.dtype(out.dtype).name]} c{c}_out[{size}];",
                  f"  {kernel.name}({args}, {count});",
                  f"  f = fopen(\"{tmp_path}/c{c}_out.bin\", \"wb\"); "
                  f"fwrite(c{c}_out, sizeof(c{c}_out[0]), {size}, f); fclose(f);"]
        body.append(kernel.source.replace(cuda.PRELUDE, ""))
    prelude = cuda.PRELUDE.replace("#include <cuda_fp16.h>\n", "")
    main = "\n".join(["int main() {", "  FILE *f;", *calls, "  return 0;", "}"])
    src = tmp_path / "kernels.cc"
    src.write_text(_HOST_SHIMS + prelude + "\n".join(body) + main)
    exe = tmp_path / "kernels"
    subprocess.run(["g++", "-O1", "-o", str(exe), str(src)], check=True, timeout=300)
    subprocess.run([str(exe)], check=True, timeout=60)
    outs = []
    for c, (kernel, _) in enumerate(cases):
        out = kernel.out_aval
        raw = np.fromfile(tmp_path / f"c{c}_out.bin",
                          dtype=np.uint16 if out.dtype == BF16 else out.dtype)
        outs.append((raw.view(BF16) if out.dtype == BF16 else raw).reshape(out.shape))
    return outs


def _run_on_host(kernel, inputs: list, tmp_path) -> np.ndarray:
    """``_run_kernels_on_host`` for one kernel."""
    return _run_kernels_on_host([(kernel, inputs)], tmp_path)[0]


# Kernels sum in another order with another exp than NumPy (float32), and round once where
# the CPU rounds after every bfloat16 operation: relative to each element and, for the
# cancellations of a sum of mixed signs (``x_hat * g + b``), to the result's scale.
KERNEL_TOL = {"float32": 1e-6, "bfloat16": 2 ** -7}


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++) on this machine")
@pytest.mark.parametrize("name", [n for n in GOLDEN_NAMES[2:] if "mean" not in n])
def test_row_kernel_run_on_the_host_matches_the_cpu(tmp_path, name):
    """The row kernel jit generates, compiled for the host, against jit on the CPU."""
    from fungrad.compiler import cuda_fuse, passes
    fn, args = _row_programs()[name]
    closed = passes.optimize(fungrad.jit(fn).lower(*args).jaxpr)
    (eqn,) = cuda_fuse.cuda_fuse(closed).jaxpr.eqns
    env = dict(zip(closed.jaxpr.invars, args)) | dict(zip(closed.jaxpr.constvars, closed.consts))
    inputs = [np.asarray(env[v]) for v in eqn.invars]
    got = _run_on_host(eqn.params["kernel"], [a.view(np.uint16) if a.dtype == BF16 else a
                                              for a in inputs], tmp_path)
    f32_args = [np.asarray(a, np.float32) if np.asarray(a).dtype == BF16 else a for a in args]
    want = np.asarray(fungrad.jit(fn)(*f32_args))  # the exact float32 result, then rounded
    want = want.astype(got.dtype).astype(np.float32)
    tol = KERNEL_TOL[got.dtype.name]
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=tol,
                               atol=tol * np.abs(want).max())


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++) on this machine")
def test_bf16_elementwise_kernel_on_the_host_is_bit_exact(tmp_path):
    """bfloat16 loads, float32 compute and the round-to-nearest-even store give the CPU's
    bits exactly (one rounding, as the CPU's float32 compute then convert)."""
    from fungrad.compiler import cuda
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((3, 16)) * 100, dtype=BF16)
    y = jnp.asarray(rng.standard_normal(16), dtype=BF16)
    closed = fungrad.make_jaxpr(_bf16_mul_add)(x, y)
    kernel = cuda.Kernel(cuda.elementwise_source(closed.jaxpr, "k"), "k", closed.out_avals[0])
    got = _run_on_host(kernel, [np.asarray(x).view(np.uint16), np.asarray(y).view(np.uint16)],
                       tmp_path)
    np.testing.assert_array_equal(got.view(np.uint16),
                                  np.asarray(_bf16_mul_add(x, y)).view(np.uint16))


F32_EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 3.0,
                      -7.25, 3e9, -3e9, 5e9, 1e-30, 100.0, -100.0, 2.0 ** 31], np.float32)
I32_EDGES = np.array([0, 1, -1, 2, 7, -7, 31, 32, 33, -32, 2 ** 31 - 1, -2 ** 31], np.int32)
U32_EDGES = np.array([0, 1, 2, 7, 31, 32, 33, 2 ** 31, 2 ** 32 - 1], np.uint32)


def _pairs(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair of ``edges``, as two flat arrays."""
    x, y = np.meshgrid(edges, edges, indexing="ij")
    return x.ravel(), y.ravel()


# name -> (program over a lax module, inputs): each is one kernel whose result C's plain
# operators or CUDA's library would get wrong somewhere in the edge values
SEMANTIC_CASES = {
    "max_f32": (lambda L: L.max, _pairs(F32_EDGES)),
    "min_f32": (lambda L: L.min, _pairs(F32_EDGES)),
    "div_f32": (lambda L: L.div, _pairs(F32_EDGES)),
    "rem_f32": (lambda L: L.rem, _pairs(F32_EDGES)),
    "pow_f32": (lambda L: L.pow, _pairs(F32_EDGES)),
    "pow_f32_int_exponent": (lambda L: L.pow, (np.tile(F32_EDGES, 12), np.repeat(I32_EDGES, 20))),
    "nextafter_f32": (lambda L: L.nextafter, _pairs(F32_EDGES)),
    "abs_f32": (lambda L: L.abs, (F32_EDGES,)),
    "sign_f32": (lambda L: L.sign, (F32_EDGES,)),
    "floor_f32": (lambda L: L.floor, (F32_EDGES,)),
    "round_away_f32": (lambda L: lambda x: L.round(x, 0), (F32_EDGES,)),
    "round_even_f32": (lambda L: lambda x: L.round(x, 1), (F32_EDGES,)),
    "is_finite_f32": (lambda L: L.is_finite, (F32_EDGES,)),
    "rsqrt_f32": (lambda L: L.rsqrt, (F32_EDGES,)),
    "integer_pow_5_f32": (lambda L: lambda x: L.integer_pow(x * 1.1, 5), (F32_EDGES,)),
    "integer_pow_-3_f32": (lambda L: lambda x: L.integer_pow(x * 1.1, -3), (F32_EDGES,)),
    "f32_to_i32": (lambda L: lambda x: L.convert_element_type(x, np.int32), (F32_EDGES,)),
    "f32_to_u32": (lambda L: lambda x: L.convert_element_type(x, np.uint32), (F32_EDGES,)),
    "f32_to_bool": (lambda L: lambda x: L.convert_element_type(x, np.bool_), (F32_EDGES,)),
    "f32_to_bf16": (lambda L: lambda x: L.convert_element_type(x, BF16), (F32_EDGES,)),
    "bf16_to_i32": (lambda L: lambda x: L.convert_element_type(
        L.convert_element_type(x, BF16), np.int32), (F32_EDGES,)),
    "max_i32": (lambda L: L.max, _pairs(I32_EDGES)),
    "div_i32": (lambda L: L.div, _pairs(I32_EDGES)),
    "rem_i32": (lambda L: L.rem, _pairs(I32_EDGES)),
    "shift_left_i32": (lambda L: L.shift_left, _pairs(I32_EDGES)),
    "shift_right_logical_i32": (lambda L: L.shift_right_logical, _pairs(I32_EDGES)),
    "shift_right_arithmetic_i32": (lambda L: L.shift_right_arithmetic, _pairs(I32_EDGES)),
    "xor_i32": (lambda L: L.bitwise_xor, _pairs(I32_EDGES)),
    "abs_i32": (lambda L: L.abs, (I32_EDGES,)),
    "sign_i32": (lambda L: L.sign, (I32_EDGES,)),
    "not_i32": (lambda L: L.bitwise_not, (I32_EDGES,)),
    "integer_pow_3_i32": (lambda L: lambda x: L.integer_pow(x, 3), (I32_EDGES,)),
    "div_u32": (lambda L: L.div, _pairs(U32_EDGES)),
    "rem_u32": (lambda L: L.rem, _pairs(U32_EDGES)),
    "shift_right_arithmetic_u32": (lambda L: L.shift_right_arithmetic, _pairs(U32_EDGES)),
    "not_bool": (lambda L: L.bitwise_not, (np.array([True, False]),)),
}


def _bits(a: np.ndarray) -> np.ndarray:
    """``a``'s bits, every NaN made the same (payloads differ between libraries) and
    subnormals flushed to a signed zero (as XLA's CPU backend does; NumPy and CUDA keep
    them, so the CPU path's comparison checks those)."""
    a = np.asarray(a)
    a = a.astype(np.float32) if a.dtype == BF16 else a  # exact
    if a.dtype.kind != "f":
        return a
    tiny = np.abs(a) < np.finfo(a.dtype).tiny
    a = np.where(tiny, np.copysign(np.zeros_like(a), a), a)
    return np.where(np.isnan(a), np.float32(np.nan), a).view(np.uint32).astype(np.int64)


def _assert_within_ulps(got: np.ndarray, want: np.ndarray, ulps: int) -> None:
    """Bits (``_bits``) equal, or within ``ulps`` units in the last place."""
    got, want = _bits(got), _bits(np.asarray(want))
    if ulps == 0:
        np.testing.assert_array_equal(got, want)
        return
    fold = lambda b: np.where(b >= 2 ** 31, 2 ** 31 - b, b)  # noqa: E731 - ordered as integers
    assert np.abs(fold(got) - fold(want)).max() <= ulps, (got, want)


# (against jax, against the CPU path) in ulps, where not bit for bit: powf is rounded
# differently by each library (glibc's, which the host kernel calls, is correctly rounded
# here; NumPy's and XLA's are one ulp off in places; CUDA documents 4 ulps), and jax's
# rsqrt is one ulp off where 1 / sqrt(x) (the kernel's and the CPU path's) is exact
ULPS = {"pow_f32": (1, 1), "pow_f32_int_exponent": (1, 1), "rsqrt_f32": (1, 0)}


def _case_kernel(make, inputs: tuple, name: str):
    """The elementwise kernel of ``make(fungrad.lax)`` traced at ``inputs`` (one kernel:
    every equation is one the generator takes)."""
    from fungrad.compiler import cuda
    closed = fungrad.make_jaxpr(make(fungrad.lax))(*inputs)
    assert all(cuda.fusible(e) for e in closed.jaxpr.eqns), closed
    return cuda.Kernel(cuda.elementwise_source(closed.jaxpr, name), name, closed.out_avals[0])


@pytest.fixture(scope="module")
def semantic_results(tmp_path_factory):
    """Every ``SEMANTIC_CASES`` kernel compiled for the host in one program: name -> output."""
    cases = [(_case_kernel(make, inputs, f"k{k}"), list(inputs))
             for k, (make, inputs) in enumerate(SEMANTIC_CASES.values())]
    return dict(zip(SEMANTIC_CASES, _run_kernels_on_host(cases, tmp_path_factory.mktemp("sem"))))


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++) on this machine")
@pytest.mark.parametrize("name", list(SEMANTIC_CASES))
def test_kernel_semantics_on_the_host_match_lax(semantic_results, name):
    """NaN, signed zeros, infinities, integer division by zero and MIN / -1, shifts by the
    bit width or more, float -> int out of range: the kernel gives jax.lax's bits, and the
    CPU path's values (which lose a zero's sign in ``max``/``min``/``sign``)."""
    import jax
    make, inputs = SEMANTIC_CASES[name]
    got = semantic_results[name]
    jax_ulps, cpu_ulps = ULPS.get(name, (0, 0))
    _assert_within_ulps(got, make(jax.lax)(*inputs), jax_ulps)
    want = np.asarray(make(fungrad.lax)(*inputs))
    if name in ("max_f32", "min_f32", "sign_f32"):
        np.testing.assert_array_equal(got, want)  # -0 == 0: the CPU path loses the sign
    else:
        _assert_within_ulps(got, want, cpu_ulps)


_SMOOTH = np.concatenate([np.linspace(-9.7, 9.7, 97), [-100.0, -30.0, 30.0, 1e-3, -1e-3]]
                         ).astype(np.float32)
# name -> (program, inputs): library functions, compared with the CPU path within
# KERNEL_TOL (each library rounds them its own way)
TRANSCENDENTAL_CASES = {
    "logistic": (lambda L: L.logistic, _SMOOTH),  # e / (e + 1) below 0: no underflow to 0
    "erf": (lambda L: L.erf, _SMOOTH),
    "lgamma": (lambda L: L.lgamma, np.abs(_SMOOTH) + 0.25),
    "tanh": (lambda L: L.tanh, _SMOOTH),
    "expm1": (lambda L: L.expm1, _SMOOTH / 4),
    "log1p": (lambda L: L.log1p, np.abs(_SMOOTH)),
    "atan2": (lambda L: lambda x: L.atan2(x, x * 0.5 - 1.0), _SMOOTH),
}


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++) on this machine")
def test_kernel_library_functions_on_the_host_match_the_cpu(tmp_path):
    """The kernels' library calls (host libm here: CUDA's own are documented within 2 to
    4 ulps) and the stable sigmoid against the CPU path, relative to each element."""
    cases = [(_case_kernel(make, (x,), f"t{k}"), [x])
             for k, (make, x) in enumerate(TRANSCENDENTAL_CASES.values())]
    for name, got in zip(TRANSCENDENTAL_CASES, _run_kernels_on_host(cases, tmp_path)):
        make, x = TRANSCENDENTAL_CASES[name]
        want = np.asarray(make(fungrad.lax)(x))
        np.testing.assert_allclose(got, want, rtol=KERNEL_TOL["float32"], atol=0, err_msg=name)


def test_cuda_fuser_makes_one_kernel_per_group():
    """The fuser the CuPy backend uses, run on a jaxpr: the chain becomes one kernel whose
    source reads each input once per element."""
    from fungrad.compiler import cuda, fusion
    closed = fungrad.make_jaxpr(_chain)(np.ones((4, 8), np.float32), np.ones(8, np.float32),
                                        np.ones((4, 1), np.int32))
    fused = fusion._FUSERS["cupy"](closed)
    assert [e.primitive.name for e in fused.jaxpr.eqns] == ["fused_cuda"]
    kernel = fused.jaxpr.eqns[0].params["kernel"]
    assert isinstance(kernel, cuda.Kernel) and kernel.source.count("in0[") == 1
    assert f"void {kernel.name}(" in kernel.source and kernel.rows is None


def test_as_text_dialects():
    """``as_text()`` is the CPU's IR on a CPU; ``dialect="cuda"`` the GPU program and its
    kernels; an unknown dialect names the known ones."""
    f = fungrad.jit(lambda v: fungrad.nn.softmax(v * 2.0))
    lowered = f.lower(jnp.ones((4, 32)))
    assert lowered.device.platform == "cpu"
    assert "reduce_max" in lowered.as_text() and "__global__" not in lowered.as_text()
    text = lowered.as_text(dialect="cuda")
    assert "fused_cuda[kernel=rows_" in text and text.count("__global__ void rows_") == 1
    assert lowered.as_text("jaxpr") == lowered.compile().as_text()
    with pytest.raises(ValueError, match="unknown dialect 'hlo'; known: jaxpr, cuda"):
        lowered.as_text("hlo")


# --------------------------------------------------------------------------- bfloat16 on a device

def test_bfloat16_bits_round_and_widen_as_ml_dtypes():
    """``to_bits`` (float32 -> bfloat16 bits) rounds as ml_dtypes, NaN and ties included;
    ``from_bits`` widens every one of the 65536 bit patterns exactly."""
    from fungrad.backends import bfloat16
    rng = np.random.default_rng(3)
    x = np.concatenate([
        (rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000)).astype(np.float32),
        rng.integers(0, 2 ** 32, 5000, dtype=np.uint32).view(np.float32),  # NaNs, subnormals
        np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, 1e-45, 1 + 2 ** -8,
                  1 + 3 * 2 ** -8, -(1 + 2 ** -8)], np.float32)])
    with np.errstate(invalid="ignore"):  # ml_dtypes warns on signalling NaNs
        want = x.astype(BF16).view(np.uint16)
    np.testing.assert_array_equal(bfloat16.to_bits(np, x), want)
    bits = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    np.testing.assert_array_equal(bfloat16.from_bits(np, bits).view(np.uint32),
                                  bits.view(BF16).astype(np.float32).view(np.uint32))


class DeviceArray(np.ndarray):
    """A buffer on the stand-in device: NumPy's, marked as not on the host."""


def _stand_in_cupy() -> types.SimpleNamespace:
    """NumPy's functions returning ``DeviceArray`` s (ufuncs keep the subclass): CuPy's
    part that the backend's bfloat16 path uses, without a GPU."""
    def on_device(out):
        if isinstance(out, (list, tuple)):
            return type(out)(on_device(o) for o in out)
        return out.view(DeviceArray) if isinstance(out, np.ndarray) else out
    mod = types.SimpleNamespace(**{
        k: (lambda f: lambda *a, **kw: on_device(f(*a, **kw)))(v)
        if callable(v) and not isinstance(v, (np.ufunc, type)) else v
        for k, v in vars(np).items() if not k.startswith("__")})
    mod.__name__ = "stand_in_cupy"
    mod.asarray = lambda v, dtype=None: np.asarray(v, dtype).view(DeviceArray)
    mod.cuda = types.SimpleNamespace(Device=lambda i: __import__("contextlib").nullcontext())
    return mod


@pytest.fixture
def stand_in_gpu(monkeypatch):
    """A GPU device whose array module is NumPy (``DeviceArray``) wrapped by the real
    ``namespace.device_namespace``: eager evaluation, ``device_put`` and the bfloat16
    buffers run their real code, CuPy's arithmetic is NumPy's."""
    from fungrad import backends
    from fungrad.backends.bfloat16 import Bfloat16Buffer
    mod = _stand_in_cupy()
    ns = namespace.device_namespace(mod, {}, {})
    DeviceArray.device = types.SimpleNamespace(id=0)

    def on_device(v):
        return type(v.storage if type(v) is Bfloat16Buffer else v) is DeviceArray
    monkeypatch.setattr(backends, "is_host", lambda v: not on_device(v) and isinstance(
        v, (np.ndarray, np.generic, bool, int, float, complex)))
    monkeypatch.setattr(backends, "xp_of", lambda v: ns if on_device(v) else np)
    monkeypatch.setattr(backends, "_cupy_xp", lambda: ns)
    monkeypatch.setattr(backends, "cupy_module", lambda: mod)
    return backends.Device("gpu", 0)


def _bf16_programs() -> dict:
    """name -> function of (x, y, w) in bfloat16: elementwise, converts, reductions,
    a matmul and a gradient through them."""
    f32 = jnp.float32
    return {
        "add": lambda x, y, w: x + y, "mul_scalar": lambda x, y, w: x * 3.0 + 1.0,
        "div": lambda x, y, w: x / y, "exp": lambda x, y, w: jnp.exp(x),
        "tanh": lambda x, y, w: jnp.tanh(x), "maximum": lambda x, y, w: jnp.maximum(x, y),
        "greater": lambda x, y, w: x > y, "to_f32": lambda x, y, w: x.astype(f32),
        "from_f32": lambda x, y, w: (x.astype(f32) / 3.0).astype(BF16),
        "to_int32": lambda x, y, w: (x * 100.0).astype(jnp.int32),
        "sum": lambda x, y, w: jnp.sum(x, axis=1), "max": lambda x, y, w: jnp.max(x),
        "matmul": lambda x, y, w: x @ w,
        "matmul_f32_out": lambda x, y, w: jnp.matmul(x, w, preferred_element_type=f32),
        "zeros_like": lambda x, y, w: jnp.zeros_like(x) + x,
        "grad": lambda x, y, w: fungrad.grad(
            lambda w: jnp.sum(jnp.tanh(x @ w).astype(f32) ** 2))(w),
    }


@pytest.mark.parametrize("name", list(_bf16_programs()))
def test_bfloat16_on_a_device_matches_the_cpu(stand_in_gpu, name):
    """bfloat16 arrays put on the (stand-in) device are ``Bfloat16Buffer`` s reporting
    bfloat16; operations compute in float32 and round once, and matmuls accumulate in
    float32, so each result is the CPU's, bit for bit."""
    from fungrad.backends.bfloat16 import Bfloat16Buffer
    rng = np.random.default_rng(4)
    host = [jnp.asarray(rng.standard_normal(s) * 2, dtype=BF16) for s in ((4, 8), (4, 8), (8, 3))]
    dev = fungrad.device_put(host, stand_in_gpu)
    assert all(type(a._value) is Bfloat16Buffer and a.dtype == BF16 for a in dev)
    assert dev[0].device == stand_in_gpu and dev[0].aval.str_short() == "bf16[4,8]"
    fn = _bf16_programs()[name]
    got, want = fn(*dev), fn(*host)
    assert got.dtype == want.dtype and got.device == stand_in_gpu and got.committed
    if got.dtype == BF16:
        assert type(got._value) is Bfloat16Buffer
        assert type(got._value.storage) is DeviceArray
    else:
        assert type(got._value) is DeviceArray
    bytes_of = lambda a: np.ascontiguousarray(np.asarray(a)).reshape(-1).view(np.uint8)  # noqa: E731
    np.testing.assert_array_equal(bytes_of(got), bytes_of(want))


def test_bfloat16_device_array_comes_back_to_the_host(stand_in_gpu):
    """``device_put`` to the CPU, ``np.asarray``, ``item`` and ``repr`` read the bits back
    as bfloat16."""
    x = jnp.asarray([1.5, -2.25, 3e38], dtype=BF16)
    dev = fungrad.device_put(x, stand_in_gpu)
    back = fungrad.device_put(dev, fungrad.devices("cpu")[0])
    assert type(back._value) is np.ndarray and back.dtype == BF16
    np.testing.assert_array_equal(np.asarray(back).view(np.uint16), np.asarray(x).view(np.uint16))
    assert dev[1].item() == -2.25 and "dtype=bfloat16" in repr(dev)
