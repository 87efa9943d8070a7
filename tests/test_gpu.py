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
    assert namespace.impl_for(ns, "sin", base) is device
    assert namespace.impl_for(ns, "cos", base) is base
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


def _chain(x, b, m):
    return jnp.tanh(x * 2.0 + b) * m.astype(jnp.float32) - 1.0


def _bf16_mul_add(x, y):
    return (x.astype(jnp.float32) * y.astype(jnp.float32) + 1.0).astype(jnp.bfloat16)


def _golden_sources() -> dict[str, str]:
    from fungrad.compiler import cuda
    bf16 = jnp.bfloat16
    chain = fungrad.make_jaxpr(_chain)(np.ones((4, 8), np.float32), np.ones(8, np.float32),
                                       np.ones((4, 1), np.int32))
    mixed = fungrad.make_jaxpr(_bf16_mul_add)(jnp.ones((2, 16), bf16), jnp.ones(16, bf16))
    return {
        "elementwise_broadcast_convert": cuda.elementwise_source(chain.jaxpr, "chain"),
        "elementwise_bf16_in_f32_compute": cuda.elementwise_source(mixed.jaxpr, "bf16_mul_add"),
        "softmax_f32": cuda.softmax_source(np.float32, 1024),
        "layer_norm_bf16": cuda.layer_norm_source(bf16, 768, 1e-5),
        "cross_entropy_f32": cuda.cross_entropy_source(np.float32, 50257),
    }


@pytest.fixture(scope="module")
def golden_sources():
    sources = _golden_sources()
    if os.environ.get("FUNGRAD_REGEN_GOLDEN", "0") not in ("0", ""):
        os.makedirs(GOLDEN, exist_ok=True)
        for name, text in sources.items():
            with open(os.path.join(GOLDEN, name + ".cu"), "w") as f:
                f.write(text)
    return sources


@pytest.mark.parametrize("name", ["elementwise_broadcast_convert", "elementwise_bf16_in_f32_compute",
                                  "softmax_f32", "layer_norm_bf16", "cross_entropy_f32"])
def test_cuda_source_matches_golden_file(golden_sources, name):
    """Regenerate with FUNGRAD_REGEN_GOLDEN=1 after a deliberate change of the generator."""
    with open(os.path.join(GOLDEN, name + ".cu")) as f:
        assert golden_sources[name] == f.read()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no CUDA compiler (nvcc) on this machine")
def test_golden_cuda_sources_compile(tmp_path, golden_sources):
    """nvcc compiles every generated kernel to PTX (no GPU needed)."""
    files = []
    for name, text in golden_sources.items():
        path = tmp_path / f"{name}.cu"
        path.write_text(text)
        files.append(str(path))
    proc = subprocess.run(["nvcc", "--ptx", "-arch=sm_80", "-odir", str(tmp_path), *files],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in golden_sources:
        assert ".entry" in (tmp_path / f"{name}.ptx").read_text(), name


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
    assert f"void {kernel.name}(" in kernel.source
