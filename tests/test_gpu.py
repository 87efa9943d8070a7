"""The GPU backend: the CuPy seam checked on the CPU, and the same programs on every device.

The first part runs everywhere: the array-module wrapper with NumPy standing in for CuPy,
the generated CUDA C compiled for the host with a C++ compiler (golden sources, kernel
semantics over edge values, bfloat16 rounding), and CuPy's import and kernel construction
where CuPy is installed. The rest is parametrised over the devices: the CPU, the real GPU
when CuPy sees one (skipped with the reason otherwise), and ``host_gpu``, the stand-in of
``host_cupy`` (CuPy on the host, kernels compiled with g++), on which fungrad's whole GPU
path runs: placement, eager operations, ``jit`` with fused kernels, training, decoding and
the main job.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import types

import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import lax
from fungrad._core import lowering
from fungrad.backends import bfloat16, cuda_source, namespace
from fungrad.interpreters import ad
from fungrad.lax.dot import round_to_tf32
import host_cupy
from harness import x64

RNG = np.random.default_rng(0)
NO_GXX = pytest.mark.skipif(shutil.which("g++") is None,
                            reason="no C++ compiler (g++) on this machine")


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


@NO_GXX
def test_threefry_cuda_source_gives_the_cpu_bits():
    """The kernel body as CuPy's ``ElementwiseKernel`` runs it (here compiled for the host,
    with a scalar key broadcast), against fungrad.random's NumPy threefry."""
    from fungrad.random._threefry import threefry2x32_p
    kernel = host_cupy.ElementwiseKernel(*cuda_source.THREEFRY2X32_PARAMS,
                                         cuda_source.THREEFRY2X32, "threefry")
    k1, k2 = RNG.integers(0, 2**32, 2, dtype=np.uint64).astype(np.uint32)
    x1, x2 = (RNG.integers(0, 2**32, 257, dtype=np.uint64).astype(np.uint32) for _ in range(2))
    y1, y2 = kernel(*(host_cupy.ndarray(np.asarray(a)) for a in (k1, k2, x1, x2)))
    want = threefry2x32_p.bind(*(jnp.asarray(a) for a in (k1, k2, x1, x2)))
    np.testing.assert_array_equal(y1.get(), np.asarray(want[0]))
    np.testing.assert_array_equal(y2.get(), np.asarray(want[1]))


@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed")
def test_cupy_backend_imports_and_builds_kernels_without_a_gpu():
    """Where CuPy is installed, the backend module and its kernels are built without a GPU
    (CUDA compiles a kernel at its first launch); fungrad still lists its devices."""
    from fungrad.backends import cupy as cupy_backend
    assert cupy_backend.xp.__name__ == "cupy"
    assert cupy_backend.xp.fungrad_overrides["threefry2x32"] is cupy_backend._threefry2x32_impl
    assert cupy_backend._CUPYX["add"][0] is __import__("cupyx").scatter_add
    for op, dtype in cuda_source.SCATTER_KERNELS:
        assert isinstance(cupy_backend._scatter_kernel(op, dtype), cupy_backend.cupy.RawKernel)
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
               _gpu_skip_reason() is not None, reason=str(_gpu_skip_reason()))),
           pytest.param("host_gpu", id="host_gpu", marks=NO_GXX)]


@pytest.fixture(autouse=True)
def _float32_contractions():
    """Contractions in float32 on every device (a GPU would multiply float32 in
    TensorFloat-32 by default, as JAX's does), so GPU results compare with the CPU's; the
    TensorFloat-32 tests choose their precision themselves."""
    with fungrad.default_matmul_precision("float32"):
        yield


@pytest.fixture
def host_gpu(monkeypatch):
    """The GPU of ``host_cupy``: CuPy stood in by the host, its kernels compiled with g++."""
    yield host_cupy.install(monkeypatch)
    host_cupy.uninstall()


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "host_gpu":
        return request.getfixturevalue("host_gpu")
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


def _bf16_kernels() -> list[tuple[str, str, str]]:
    """The ``ElementwiseKernel``s (in_params, out_params, operation) eager bfloat16
    operations launch on a device: the conversions and one per elementwise primitive."""
    by_name = {p.name: p for p in lowering.primitives_with_cuda()}
    kernels = [cuda_source.BF16_ROUND, cuda_source.BF16_WIDEN]
    for names, arity in ((_EXACT_UNARY + _LIBRARY_UNARY, 1), (_EXACT_BINARY + _LIBRARY_BINARY, 2)):
        for name in names:
            rounded = name not in ("is_finite", "eq", "ne", "lt", "le", "gt", "ge")
            template = lowering.cuda_expr(by_name[name]).for_kind("f")
            kernels.append(cuda_source.bf16_elementwise(template, arity, rounded))
    return kernels


def _as_global_kernel(in_params: str, out_params: str, operation: str, name: str) -> str:
    """An ``ElementwiseKernel``'s parameters and operation as a CUDA kernel over flat
    arrays, the loop CuPy wraps around them."""
    c_type = {"uint16": "unsigned short", "float32": "float", "bool": "bool"}
    params = [p.split() for p in f"{in_params}, {out_params}".split(", ")]
    n_in = len(in_params.split(", "))
    loads = " ".join(f"{c_type[t]} {v} = p_{v}[i];" for t, v in params[:n_in])
    decls = " ".join(f"{c_type[t]} {v};" for t, v in params[n_in:])
    stores = " ".join(f"p_{v}[i] = {v};" for _, v in params[n_in:])
    args = ", ".join(f"{'const ' if k < n_in else ''}{c_type[t]}* p_{v}"
                     for k, (t, v) in enumerate(params))
    return (f'extern "C" __global__ void {name}({args}, long long n) {{\n'
            f"  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;\n"
            f"       i += (long long)gridDim.x * blockDim.x) {{ {loads} {decls}\n"
            f"    {operation}\n    {stores} }}\n}}\n")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no CUDA compiler (nvcc) on this machine")
def test_golden_cuda_sources_compile(tmp_path, golden_sources):
    """nvcc compiles every generated kernel to PTX (no GPU needed): the golden ones,
    those of the semantic and library-function cases (one file), the backend's scatter
    kernels and the eager bfloat16 kernels (in the loop CuPy wraps them in)."""
    files = []
    for name, text in golden_sources.items():
        for k, source in enumerate(_kernel_sources(text) if name.startswith("rows") else [text]):
            path = tmp_path / f"{name}_{k}.cu"
            path.write_text(source)
            files.append(path)
    cases = [_case_kernel(make, inputs, f"k{k}").source.replace(cuda_source.PRELUDE, "")
             for k, (make, inputs) in enumerate(SEMANTIC_CASES.values())]
    cases += [_case_kernel(make, (x,), f"t{k}").source.replace(cuda_source.PRELUDE, "")
              for k, (make, x) in enumerate(TRANSCENDENTAL_CASES.values())]
    files.append(tmp_path / "semantic_cases.cu")
    files[-1].write_text(cuda_source.PRELUDE + "\n".join(cases))
    for dtype in SCATTER_DTYPES[:-1]:  # the backend's scatter kernels (none for complex128)
        files.append(tmp_path / f"scatter_{dtype}.cu")
        files[-1].write_text(cuda_source.scatter_source(dtype)[0])
    files.append(tmp_path / "bfloat16_elementwise.cu")
    files[-1].write_text(cuda_source.PRELUDE + "\n".join(
        _as_global_kernel(*params, f"e{k}") for k, params in enumerate(_bf16_kernels())))
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

def _run_kernels_on_host(cases: list, many_threads: bool = False) -> list[np.ndarray]:
    """Run generated kernels on NumPy inputs through ``host_cupy.RawKernel`` (compiled for
    the host, one block of one thread: their grid-stride loops then cover every row or
    element; with ``many_threads``, the grid and blocks of threads a GPU launch has);
    ``cases`` are ``(kernel, inputs)`` pairs, the outputs come back in order."""
    from fungrad.compiler import cuda
    outs = []
    for kernel, inputs in cases:
        aval = kernel.out_aval
        out = np.empty(aval.shape, cuda.storage_dtype(aval.dtype))
        count = kernel.rows if kernel.rows is not None else max(1, out.size)
        args = [host_cupy.ndarray(np.ascontiguousarray(a)) for a in (*inputs, out)]
        launch = ((kernel.grid(),), (cuda.BLOCK,)) if many_threads else ((1,), (1,))
        with host_cupy.many_threads() if many_threads else contextlib.nullcontext():
            host_cupy.RawKernel(kernel.source, kernel.name)(*launch, (*args, np.int64(count)))
        outs.append(args[-1].get().view(BF16) if aval.dtype == BF16 else args[-1].get())
    return outs


def _run_on_host(kernel, inputs: list, many_threads: bool = False) -> np.ndarray:
    """``_run_kernels_on_host`` for one kernel."""
    return _run_kernels_on_host([(kernel, inputs)], many_threads)[0]


# Kernels sum in another order with another exp than NumPy (float32), and round once where
# the CPU rounds after every bfloat16 operation: relative to each element and, for the
# cancellations of a sum of mixed signs (``x_hat * g + b``), to the result's scale.
KERNEL_TOL = {"float32": 1e-6, "bfloat16": 2 ** -7}


@NO_GXX
@pytest.mark.parametrize("many_threads", [False, True], ids=["one_thread", "blocks_of_threads"])
@pytest.mark.parametrize("name", [n for n in GOLDEN_NAMES[2:] if "mean" not in n])
def test_row_kernel_run_on_the_host_matches_the_cpu(name, many_threads):
    """The row kernel jit generates, compiled for the host, against jit on the CPU: run by
    one thread, and by a block of threads per row (their strided loops, the tree reduction
    in shared memory and its barriers)."""
    from fungrad.compiler import cuda_fuse, passes
    fn, args = _row_programs()[name]
    closed = passes.optimize(fungrad.jit(fn).lower(*args).jaxpr)
    (eqn,) = cuda_fuse.cuda_fuse(closed).jaxpr.eqns
    env = dict(zip(closed.jaxpr.invars, args)) | dict(zip(closed.jaxpr.constvars, closed.consts))
    inputs = [np.asarray(env[v]) for v in eqn.invars]
    got = _run_on_host(eqn.params["kernel"], [a.view(np.uint16) if a.dtype == BF16 else a
                                              for a in inputs], many_threads)
    f32_args = [np.asarray(a, np.float32) if np.asarray(a).dtype == BF16 else a for a in args]
    want = np.asarray(fungrad.jit(fn)(*f32_args))  # the exact float32 result, then rounded
    want = want.astype(got.dtype).astype(np.float32)
    tol = KERNEL_TOL[got.dtype.name]
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=tol,
                               atol=tol * np.abs(want).max())


@NO_GXX
def test_bf16_elementwise_kernel_on_the_host_is_bit_exact():
    """bfloat16 loads, float32 compute and the round-to-nearest-even store give the CPU's
    bits exactly (one rounding, as the CPU's float32 compute then convert)."""
    from fungrad.compiler import cuda
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((3, 16)) * 100, dtype=BF16)
    y = jnp.asarray(rng.standard_normal(16), dtype=BF16)
    closed = fungrad.make_jaxpr(_bf16_mul_add)(x, y)
    kernel = cuda.Kernel(cuda.elementwise_source(closed.jaxpr, "k"), "k", closed.out_avals[0])
    got = _run_on_host(kernel, [np.asarray(x).view(np.uint16), np.asarray(y).view(np.uint16)])
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
def semantic_results():
    """Every ``SEMANTIC_CASES`` kernel run on the host: name -> output."""
    cases = [(_case_kernel(make, inputs, f"k{k}"), list(inputs))
             for k, (make, inputs) in enumerate(SEMANTIC_CASES.values())]
    return dict(zip(SEMANTIC_CASES, _run_kernels_on_host(cases)))


@NO_GXX
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


@NO_GXX
def test_kernel_library_functions_on_the_host_match_the_cpu():
    """The kernels' library calls (host libm here: CUDA's own are documented within 2 to
    4 ulps) and the stable sigmoid against the CPU path, relative to each element."""
    cases = [(_case_kernel(make, (x,), f"t{k}"), [x])
             for k, (make, x) in enumerate(TRANSCENDENTAL_CASES.values())]
    for name, got in zip(TRANSCENDENTAL_CASES, _run_kernels_on_host(cases)):
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

def _floats_to_round() -> np.ndarray:
    """float32 values of every magnitude, random bit patterns (NaNs, subnormals), ties."""
    rng = np.random.default_rng(3)
    return np.concatenate([
        (rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000)).astype(np.float32),
        rng.integers(0, 2 ** 32, 5000, dtype=np.uint32).view(np.float32),  # NaNs, subnormals
        np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, 1e-45, 1 + 2 ** -8,
                  1 + 3 * 2 ** -8, -(1 + 2 ** -8)], np.float32)])


def _check_bits(xp, to_device, to_host) -> None:
    """``to_bits`` and ``from_bits`` of module ``xp`` against ml_dtypes."""
    x = _floats_to_round()
    with np.errstate(invalid="ignore"):  # ml_dtypes warns on signalling NaNs
        want = x.astype(BF16).view(np.uint16)
    np.testing.assert_array_equal(to_host(bfloat16.to_bits(xp, to_device(x))), want)
    bits = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    np.testing.assert_array_equal(to_host(bfloat16.from_bits(xp, to_device(bits))).view(np.uint32),
                                  bits.view(BF16).astype(np.float32).view(np.uint32))


def test_bfloat16_bits_round_and_widen_in_one_kernel_each_on_a_device(gpu):
    """On a device ``to_bits`` and ``from_bits`` are one ``ElementwiseKernel`` each (the
    generated kernels' ``f32_to_bf16``/``bf16_to_f32``), rounding as ml_dtypes."""
    cupy = importlib.import_module("cupy")  # the stand-in where it is installed
    start = len(host_cupy.LAUNCHED)
    _check_bits(cupy, cupy.asarray, cupy.asnumpy)
    if gpu.device_kind == "host stand-in":
        assert host_cupy.LAUNCHED[start:] == ["fungrad_bf16_round", "fungrad_bf16_widen"]


def test_bfloat16_bits_round_and_widen_as_ml_dtypes():
    """``to_bits`` (float32 -> bfloat16 bits) rounds as ml_dtypes, NaN and ties included;
    ``from_bits`` widens every one of the 65536 bit patterns exactly (array operations,
    NumPy standing in for CuPy)."""
    _check_bits(np, np.asarray, np.asarray)
    scalar = np.array(1.5, BF16)  # 0-d stays 0-d (``ascontiguousarray`` alone makes it 1-d)
    assert bfloat16.bits_of(scalar).shape == () == bfloat16.to_bits(np, np.float32(1.5)).shape
    assert bfloat16.bits_of(scalar) == bfloat16.to_bits(np, np.float32(1.5)) == 0x3FC0


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
def test_bfloat16_on_a_device_matches_the_cpu(host_gpu, name):
    """bfloat16 arrays put on the (stand-in) device are ``Bfloat16Buffer`` s reporting
    bfloat16; operations compute in float32 and round once, and matmuls accumulate in
    float32, so each result is the CPU's, bit for bit."""
    from fungrad.backends.bfloat16 import Bfloat16Buffer
    rng = np.random.default_rng(4)
    host = [jnp.asarray(rng.standard_normal(s) * 2, dtype=BF16) for s in ((4, 8), (4, 8), (8, 3))]
    dev = fungrad.device_put(host, host_gpu)
    assert all(type(a._value) is Bfloat16Buffer and a.dtype == BF16 for a in dev)
    assert dev[0].device == host_gpu and dev[0].aval.str_short() == "bf16[4,8]"
    fn = _bf16_programs()[name]
    got, want = fn(*dev), fn(*host)
    assert got.dtype == want.dtype and got.device == host_gpu and got.committed
    if got.dtype == BF16:
        assert type(got._value) is Bfloat16Buffer
        assert type(got._value.storage) is host_cupy.ndarray
    else:
        assert type(got._value) is host_cupy.ndarray
    bytes_of = lambda a: np.ascontiguousarray(np.asarray(a)).reshape(-1).view(np.uint8)  # noqa: E731
    np.testing.assert_array_equal(bytes_of(got), bytes_of(want))


# The elementwise primitives with a C expression, by arity, on bfloat16 operands: those
# correctly rounded in float32 give the CPU's bits; the others (the C library's float32
# functions against NumPy's) may round to the neighbouring bfloat16.
_EXACT_UNARY = ("neg", "sign", "floor", "ceil", "is_finite", "abs", "square", "sqrt")
_EXACT_BINARY = ("add", "add_any", "sub", "mul", "div", "rem", "max", "min", "nextafter", "eq",
                 "ne", "lt", "le", "gt", "ge")
_LIBRARY_UNARY = ("exp", "log", "expm1", "log1p", "logistic", "rsqrt", "sin", "cos", "tanh",
                  "erf", "lgamma")
_LIBRARY_BINARY = ("pow", "atan2")
_NOT_ON_FLOATS = {"not", "and", "or", "xor", "shift_left", "shift_right_logical",
                  "shift_right_arithmetic"}


def test_every_elementwise_primitive_with_a_c_expression_is_listed():
    """The lists above cover every primitive that declares a C expression (a new one is
    added to them, or to those that take no floats)."""
    listed = {*_EXACT_UNARY, *_EXACT_BINARY, *_LIBRARY_UNARY, *_LIBRARY_BINARY, *_NOT_ON_FLOATS}
    assert {p.name for p in lowering.primitives_with_cuda()} == listed


def test_eager_bfloat16_elementwise_is_one_kernel_on_a_device(gpu):
    """Each elementwise primitive over bfloat16 device arrays runs as one kernel (widened,
    computed and rounded inside it; nextafter steps the bits, widening them to compare)
    and gives the CPU's result, dtypes and signed zeros included."""
    ops = {"add_any": ad.add_any_p.bind}  # the sum of gradients (no lax function)
    rng = np.random.default_rng(8)
    host = [np.concatenate([rng.standard_normal(40) * 3, [0.0, -0.0, 2.5, -2.5, np.inf]]
                           ).astype(BF16) for _ in range(2)]
    dev = fungrad.device_put(host, gpu)
    pos = [jnp.abs(a) + 0.5 for a in (*host, *dev)]  # inside every domain
    for names, arity in ((_EXACT_UNARY + _LIBRARY_UNARY, 1), (_EXACT_BINARY + _LIBRARY_BINARY, 2)):
        for name in names:
            args = (pos[:2], pos[2:]) if name in ("log", "rsqrt", "lgamma", "pow") else (host, dev)
            start = len(host_cupy.LAUNCHED)
            op = ops.get(name) or getattr(lax, name)
            got = op(*args[1][:arity])
            launched = host_cupy.LAUNCHED[start:]
            want = op(*args[0][:arity])
            assert got.dtype == want.dtype and got.device == gpu, name
            one = ["fungrad_bf16_widen"] * 2 if name == "nextafter" else \
                [f"fungrad_bf16_{'add' if name == 'add_any' else name}"]  # add_any adds
            assert launched == one or gpu.device_kind != "host stand-in", name
            g, w = np.asarray(got).astype(np.float32), np.asarray(want).astype(np.float32)
            if name in _EXACT_UNARY + _EXACT_BINARY:
                np.testing.assert_array_equal(g, w, err_msg=name)
                np.testing.assert_array_equal(np.signbit(g), np.signbit(w), err_msg=name)
            else:
                np.testing.assert_allclose(g, w, rtol=2 ** -8, err_msg=name)


def test_eager_bfloat16_moves_of_elements_move_the_bits_on_a_device(gpu):
    """Reshapes, slices, concatenation, padding, selection and the like move a bfloat16
    array's stored bits without a kernel (no widening or rounding), so even a signalling
    NaN's payload arrives as on the CPU: every primitive declaring ``moves_elements``."""
    bits = np.array([0x3FC0, 0x7F81, 0xFF80, 0x8000, 0x0001, 0xC0A0], np.uint16)  # 0x7F81: sNaN
    host = jnp.asarray(bits.view(BF16).reshape(2, 3))
    dev = fungrad.device_put(host, gpu)
    moves = {
        "reshape": lambda x: x.reshape(3, 2), "transpose": lambda x: x.T,
        "broadcast": lambda x: jnp.broadcast_to(x[:, None], (2, 4, 3)),
        "slice": lambda x: x[1:, ::2], "rev": lambda x: jnp.flip(x, 1),
        "concatenate": lambda x: jnp.concatenate([x, x[::-1]]),
        "pad": lambda x: lax.pad(x, x[0, 0], ((1, 0, 0), (0, 1, 1))),
        "select_n": lambda x: lax.select(jnp.asarray([[True, False, True]] * 2), x, x[::-1]),
        "dynamic_slice": lambda x: lax.dynamic_slice(x, (1, 1), (1, 2)),
        "dynamic_update_slice": lambda x: lax.dynamic_update_slice(x, x[:1, :2], (1, 1)),
        "squeeze": lambda x: lax.squeeze(x[:1], (0,))}
    declared = {p.name for p in lowering.primitives_with_traits()
                if lowering.compiler_traits(p).moves_elements}
    assert declared == {"broadcast_in_dim" if n == "broadcast" else n for n in moves}
    for name, fn in moves.items():
        start = len(host_cupy.LAUNCHED)
        got, want = fn(dev), fn(host)
        assert host_cupy.LAUNCHED[start:] == [] and got.dtype == BF16, name
        np.testing.assert_array_equal(np.asarray(got).view(np.uint16),
                                      np.asarray(want).view(np.uint16), err_msg=name)


def test_bfloat16_device_array_comes_back_to_the_host(host_gpu):
    """``device_put`` to the CPU, ``np.asarray``, ``item`` and ``repr`` read the bits back
    as bfloat16."""
    x = jnp.asarray([1.5, -2.25, 3e38], dtype=BF16)
    dev = fungrad.device_put(x, host_gpu)
    back = fungrad.device_put(dev, fungrad.devices("cpu")[0])
    assert type(back._value) is np.ndarray and back.dtype == BF16
    np.testing.assert_array_equal(np.asarray(back).view(np.uint16), np.asarray(x).view(np.uint16))
    assert dev[1].item() == -2.25 and "dtype=bfloat16" in repr(dev)


# ---------------------------------------------------------------------- whole programs on a GPU

GPUS = [pytest.param("gpu", id="gpu", marks=pytest.mark.skipif(
            _gpu_skip_reason() is not None, reason=str(_gpu_skip_reason()))),
        pytest.param("host_gpu", id="host_gpu", marks=NO_GXX)]
TINY_GPT2 = dict(vocab_size=48, n_positions=16, n_embd=32, n_layer=2, n_head=2, embd_pdrop=0.0,
                 attn_pdrop=0.0, resid_pdrop=0.0)


@pytest.fixture(params=GPUS)
def gpu(request):
    """A GPU device: the real one when CuPy sees it, and the host's stand-in."""
    if request.param == "host_gpu":
        return request.getfixturevalue("host_gpu")
    return fungrad.devices("gpu")[0]


def _launched_since(start: int) -> set[str]:
    """The kinds of kernel (``rows``, ``fused``, ...) the stand-in launched since ``start``."""
    return {name.split("_")[0] for name in host_cupy.LAUNCHED[start:]}


def _gpt2_steps(params, tokens, targets, opt, steps: int = 3):
    """``steps`` jitted AdamW steps of the tiny GPT-2; the losses and the last params."""
    from fungrad import optim
    from fungrad.models import gpt2
    cfg = gpt2.Config(**TINY_GPT2)

    @fungrad.jit
    def step(params, state, tokens, targets):
        loss, grads = fungrad.value_and_grad(gpt2.loss)(params, cfg, tokens, targets)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss
    state, losses = opt.init(params), []
    for _ in range(steps):
        params, state, loss = step(params, state, tokens, targets)
        losses.append(loss)
    return losses, params, state


def _gpt2_data():
    from fungrad.models import gpt2
    params = gpt2.init(fungrad.random.PRNGKey(0), gpt2.Config(**TINY_GPT2))
    tokens = RNG.integers(0, TINY_GPT2["vocab_size"], (2, 9)).astype(np.int32)
    return params, tokens[:, :-1], tokens[:, 1:]


def _pop_key_biases(params: dict) -> list:
    """Remove the attention's key biases from GPT-2 ``params`` and return them. Their
    gradient is zero in exact arithmetic (softmax ignores a shift along the keys), so Adam's
    steps on them are normalised rounding noise, which differs between any two
    implementations: they are left out of comparisons."""
    return [block["attn"]["k"].pop("b") for block in params["blocks"]]


def test_gpt2_train_step_on_a_gpu_matches_the_cpu(gpu):
    """A jitted GPT-2 AdamW step on the GPU: fused row and elementwise kernels and cuBLAS
    matmuls give the CPU's losses and parameters, and everything stays on the device."""
    from fungrad import optim
    params, tokens, targets = _gpt2_data()
    opt = optim.adamw(1e-2, weight_decay=0.1)
    start = len(host_cupy.LAUNCHED)
    losses, new_params, state = _gpt2_steps(fungrad.device_put(params, gpu),
                                            *_on(gpu, tokens, targets), opt)
    want_losses, want_params, _ = _gpt2_steps(params, tokens, targets, opt)
    for leaf in fungrad.tree.leaves((new_params, state, losses)):
        assert leaf.device == gpu and leaf.committed
    np.testing.assert_allclose([float(v) for v in losses], [float(v) for v in want_losses],
                               rtol=1e-5)
    for bias in _pop_key_biases(new_params) + _pop_key_biases(want_params):
        assert np.abs(np.asarray(bias)).max() < 1e-3  # rounding noise's level (float32)
    for got, want in zip(fungrad.tree.leaves(new_params), fungrad.tree.leaves(want_params)):
        # atol 1e-4 of the parameters' scale: Adam moves an element with a near-zero
        # gradient by its normalised rounding noise too
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)
    if gpu.device_kind == "host stand-in":  # the fused GPU path ran, not NumPy's
        assert {"rows", "fused"} <= _launched_since(start)


@NO_GXX
def test_gpt2_train_step_with_blocks_of_threads(host_gpu):
    """The GPT-2 AdamW step on the stand-in with its kernels run by at most 2 blocks of 32
    threads (``host_cupy.many_threads``; a GPU runs 256 a block, which the smaller tests
    use): every kind of kernel the step generates, under threads racing and meeting at
    barriers, and with grid-stride loops taking several turns, gives the CPU's loss and
    parameters."""
    from fungrad import optim
    params, tokens, targets = _gpt2_data()
    opt = optim.adamw(1e-2, weight_decay=0.1)
    want_losses, want_params, _ = _gpt2_steps(params, tokens, targets, opt, steps=2)
    with host_cupy.many_threads(per_block=32, blocks=2):
        start = len(host_cupy.LAUNCHED)
        losses, new_params, _ = _gpt2_steps(fungrad.device_put(params, host_gpu),
                                            *_on(host_gpu, tokens, targets), opt, steps=2)
        assert {"rows", "fused"} <= _launched_since(start)
    np.testing.assert_allclose([float(v) for v in losses], [float(v) for v in want_losses],
                               rtol=1e-5)
    for tree in (new_params, want_params):  # their steps are rounding noise (see above)
        _pop_key_biases(tree)
    for got, want in zip(fungrad.tree.leaves(new_params), fungrad.tree.leaves(want_params)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


def test_bfloat16_mixed_precision_training_on_a_gpu(gpu):
    """bfloat16 parameters and activations with float32 master weights through
    ``optim.mixed_precision``, on the GPU: the parameters stay bfloat16 and the master
    weights float32 on the device, and the losses are the CPU's within bfloat16's
    precision (the kernels round once per kernel, the CPU once per operation)."""
    from fungrad import nn, optim
    params, tokens, targets = _gpt2_data()
    opt = optim.mixed_precision(optim.sgd(0.5), jnp.bfloat16)  # steps in proportion to
    # the gradients, so the master weights compare within bfloat16's precision
    low = nn.cast_floating(params, jnp.bfloat16)
    losses, new_params, state = _gpt2_steps(fungrad.device_put(low, gpu),
                                            *_on(gpu, tokens, targets), opt)
    want_losses, want_params, want_state = _gpt2_steps(low, tokens, targets, opt)
    assert {leaf.dtype for leaf in fungrad.tree.leaves(new_params)} == {np.dtype(BF16)}
    assert {leaf.dtype for leaf in fungrad.tree.leaves(state.master)} == {np.dtype(np.float32)}
    assert all(leaf.device == gpu for leaf in fungrad.tree.leaves((new_params, state)))
    np.testing.assert_allclose([float(v) for v in losses], [float(v) for v in want_losses],
                               rtol=2 ** -7)
    # each leaf's steps within 2**-5 of its largest step: the gradients are bfloat16, and
    # the two sides round them differently through the backward pass
    start = nn.cast_floating(low, jnp.float32)
    trees = [state.master, want_state.master, start]
    for tree in trees:
        _pop_key_biases(tree)
    for got, want, first in zip(*map(fungrad.tree.leaves, trees)):
        got, want, first = np.asarray(got), np.asarray(want), np.asarray(first)
        assert np.abs(got - want).max() <= 2 ** -5 * np.abs(want - first).max()


def test_greedy_decoding_on_a_gpu_matches_the_cpu(gpu):
    """``text.generate`` with the KV cache on the GPU: the CPU's tokens, reading back one
    value a step (the new tokens), not the cache position at every layer's update."""
    from fungrad import text
    from fungrad.models import gpt2
    params, _, _ = _gpt2_data()
    cfg = gpt2.Config(**TINY_GPT2)
    prompts = [[1, 2, 3, 4], [5, 6]]
    model = text.Model(gpt2, fungrad.device_put(params, gpu), cfg)
    text.generate(model, prompts, max_new_tokens=6, temperature=0.0)  # compiles
    start = host_cupy.HOST_READS[0]
    got = text.generate(model, prompts, max_new_tokens=6, temperature=0.0)
    if gpu.device_kind == "host stand-in":
        assert host_cupy.HOST_READS[0] - start == 6
    want = text.generate(text.Model(gpt2, params, cfg), prompts, max_new_tokens=6,
                         temperature=0.0)
    assert got == want and all(len(row) == 6 for row in got)


def test_default_device_gpu_computes_uncommitted_arrays_there(host_gpu):
    """With the GPU as the default device, arrays made from host values, and what is
    computed from them eagerly and under ``jit``, live on the GPU (uncommitted)."""
    with fungrad.default_device(host_gpu):
        x = jnp.arange(6.0).reshape(2, 3)
        y = fungrad.jit(lambda v: jnp.tanh(v) * 2.0)(x + 1.0)
    assert x.device == host_gpu and y.device == host_gpu and not y.committed
    np.testing.assert_allclose(np.asarray(y), np.tanh(np.arange(6.0).reshape(2, 3) + 1) * 2,
                               rtol=1e-6)
    assert jnp.ones(2).device.platform == "cpu"  # the block's end restores the CPU


def test_default_device_gpu_traces_a_step_once(host_gpu):
    """A training loop on the default GPU: the first step takes host arrays, the next
    the GPU arrays it returned; both are uncommitted arrays on the default device, so
    the second step reuses the first one's program (as ``jax.jit``), where it traced
    and compiled again."""
    step = fungrad.jit(lambda w, x: w - 0.1 * jnp.tanh(w * x))
    with fungrad.default_device(host_gpu):
        w = step(np.ones(4, np.float32), np.full(4, 2.0, np.float32))
        w = step(w, jnp.asarray(np.full(4, 2.0, np.float32)))
    assert step._cache_size() == 1 and w.device == host_gpu and not w.committed
    committed = step(fungrad.device_put(np.ones(4, np.float32), host_gpu),
                     np.full(4, 2.0, np.float32))
    assert committed.committed and step._cache_size() == 2  # a committed array: its own
    w_cpu = step(step(np.ones(4, np.float32), np.full(4, 2.0, np.float32)), np.full(4, 2.0))
    np.testing.assert_allclose(np.asarray(w), np.asarray(w_cpu), rtol=1e-6)


def test_debug_nans_finds_the_operation_on_a_gpu(gpu):
    """With ``debug_nans`` a jitted function whose result holds a NaN runs again op by op
    and names the operation that made it, on a GPU as on the CPU (a GPU program runs
    through the eager evaluator, which raised "in jit" before the search)."""
    twice_sqrt = fungrad.jit(lambda x: jnp.sqrt(x) * 2.0)
    with fungrad.debug_nans(True):
        np.testing.assert_array_equal(np.asarray(twice_sqrt(*_on(gpu, np.ones(2)))), [2.0, 2.0])
        with pytest.raises(FloatingPointError, match=r"invalid value \(nan\) encountered in sqrt"):
            twice_sqrt(*_on(gpu, -np.ones(2, np.float32)))


def test_export_with_the_gpu_as_the_default_device(host_gpu):
    """``export`` names a GPU's platform ``'cuda'``, as JAX does (the device's own
    platform, ``'gpu'``, was refused): exported there, it runs there and refuses the CPU
    unless the platform check is disabled."""
    from fungrad import export
    with fungrad.default_device(host_gpu):
        assert export.default_export_platform() == "cuda"
        exp = export.export(fungrad.jit(jnp.sin))(fungrad.ShapeDtypeStruct((3,), jnp.float32))
        x = jnp.asarray(np.arange(3, dtype=np.float32))
        got = exp.call(x)
        assert exp.platforms == ("cuda",) and got.device == host_gpu
        np.testing.assert_allclose(np.asarray(got), np.sin(np.arange(3.0)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"exported for platforms \('cuda',\) but it is used "
                                         r"on 'cpu'"):
        exp.call(np.ones(3, np.float32))


def test_print_kernels_shows_each_kernel_once(host_gpu, monkeypatch, capsys):
    """``FUNGRAD_PRINT_KERNELS=1`` prints a kernel's source when it is first compiled."""
    monkeypatch.setenv("FUNGRAD_PRINT_KERNELS", "1")
    (x,) = _on(host_gpu, RNG.standard_normal((4, 32)).astype(np.float32))
    f = fungrad.jit(lambda v: fungrad.nn.softmax(v * 3.0))
    f(x), f(x)
    printed = capsys.readouterr().out
    assert printed.count("// fungrad: CUDA kernel rows_") == 1
    assert printed.count("__global__ void rows_") == 1


def _family_losses() -> dict:
    """name -> (loss of params, params): each model family's tiny preset on a small batch."""
    from fungrad.models import llama, mamba, mixtral, resnet
    key = fungrad.random.PRNGKey(1)
    tokens = RNG.integers(0, 96, (2, 9)).astype(np.int32)
    cases = {}
    for name, module in (("llama", llama), ("mixtral", mixtral), ("mamba", mamba)):
        cfg = module.PRESETS["tiny"]
        cases[name] = (lambda p, m=module, c=cfg: m.loss(p, c, tokens[:, :-1], tokens[:, 1:]),
                       module.init(key, cfg))
    cfg = resnet.PRESETS["tiny"]
    params, state = resnet.init(key, cfg)
    images = RNG.standard_normal((2, 16, 16, 3)).astype(np.float32)
    labels = np.array([1, 4], np.int32)
    cases["resnet"] = (lambda p: resnet.loss(p, state, cfg, images, labels)[0], params)
    return cases


@pytest.mark.parametrize("name", ["llama", "mixtral", "mamba", "resnet"])
def test_model_family_gradients_on_a_gpu_match_the_cpu(gpu, name):
    """Each model family's jitted loss and gradient, with params on the GPU (the data stays
    uncommitted and follows them): rotary embeddings and grouped-query attention, the
    mixture of experts' routing, Mamba's scan, and convolutions with batch norm."""
    loss, params = _family_losses()[name]
    step = fungrad.jit(fungrad.value_and_grad(loss))
    value, grads = step(fungrad.device_put(params, gpu))
    want_value, want_grads = step(params)
    assert value.device == gpu
    np.testing.assert_allclose(float(value), float(want_value), rtol=1e-5)
    for got, want in zip(fungrad.tree.leaves(grads), fungrad.tree.leaves(want_grads)):
        assert got.device == gpu
        scale = np.abs(np.asarray(want)).max()
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4,
                                   atol=1e-5 * scale)


def test_control_flow_and_donation_on_a_gpu(gpu):
    """``scan``, ``while_loop``, ``cond`` and ``fori_loop`` under ``jit`` on the GPU, and a
    donated argument (the jitted function may reuse its device buffer)."""

    def f(x, n):
        def body(carry, row):
            carry = lax.cond(jnp.sum(row) > 0, lambda c: c * 0.5 + row, lambda c: c - row, carry)
            return carry, jnp.tanh(carry)
        carry, ys = lax.scan(body, jnp.zeros(x.shape[1:], x.dtype), x)
        total = lax.fori_loop(0, n, lambda i, acc: acc + ys[i], jnp.zeros_like(carry))
        count = lax.while_loop(lambda c: c[0] < 100.0, lambda c: (c[0] * 2.0 + 1.0, c[1] + 1),
                               (jnp.abs(total).sum(), 0))[1]
        return carry, total, count
    x = RNG.standard_normal((6, 5)).astype(np.float32)
    want = fungrad.jit(f, static_argnums=1)(x, 4)
    got = fungrad.jit(f, static_argnums=1, donate_argnums=0)(*_on(gpu, x), 4)
    for g, w in zip(got, want):
        assert g.device == gpu
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)


def test_checkpoint_of_device_arrays_round_trips(gpu, tmp_path):
    """``save_checkpoint`` saves arrays on the GPU (read back to the host) and restores
    them bit for bit; ``device_put`` puts them back."""
    from fungrad.train import checkpoint
    tree = {"w": RNG.standard_normal((3, 4)).astype(np.float32),
            "b": jnp.asarray(RNG.standard_normal(4), dtype=BF16), "step": np.int32(7)}
    on_gpu = fungrad.device_put(tree, gpu)
    checkpoint.save_checkpoint(tmp_path / "ckpt", on_gpu)
    back = fungrad.device_put(checkpoint.load_checkpoint(tmp_path / "ckpt", tree), gpu)
    for got, want in zip(fungrad.tree.leaves(back), fungrad.tree.leaves(tree)):
        assert got.device == gpu and got.dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(np.asarray(got).reshape(-1).view(np.uint8),
                                      np.asarray(want).reshape(-1).view(np.uint8))


def test_main_job_runs_unchanged_on_a_gpu(host_gpu, tmp_path, capsys):
    """``examples/shakespeare_gpt.py``, not a line changed, with the GPU as the default
    device: the CPU's training losses, validation losses and sampled text."""
    from test_examples_main_job import TINY, load_example
    from fungrad import train
    main = load_example().main
    args = [*TINY, "--steps", "3", "--sample-chars", "30", "--eval-interval", "3"]
    main([*args, "--out", str(tmp_path / "cpu")])
    start = len(host_cupy.LAUNCHED)
    with fungrad.default_device(host_gpu):
        main([*args, "--out", str(tmp_path / "gpu")])
    assert {"rows", "fused"} <= _launched_since(start)
    got, want = (train.read_metrics(tmp_path / run) for run in ("gpu", "cpu"))
    for key in ("train_loss", "val_loss", "grad_norm"):
        np.testing.assert_allclose([r[key] for r in got if key in r],
                                   [r[key] for r in want if key in r], rtol=1e-5)
    assert (tmp_path / "gpu" / "samples.txt").read_text() == \
        (tmp_path / "cpu" / "samples.txt").read_text()


def test_placement_on_a_gpu_as_jax(host_gpu):
    """The GPU is listed; arrays know their device; committed arrays on the GPU and on the
    CPU in one operation raise JAX's error naming both; ``lower`` on GPU arguments shows the
    GPU program and its kernels."""
    assert fungrad.devices("gpu") == [host_gpu] and host_gpu.device_kind == "host stand-in"
    x = fungrad.device_put(np.ones((2, 3), np.float32), host_gpu)
    y = fungrad.device_put(np.ones((2, 3), np.float32), fungrad.devices("cpu")[0])
    assert x.devices() == {host_gpu} and x.committed
    with pytest.raises(ValueError, match=r"incompatible devices.*platform GPU.*platform CPU"):
        fungrad.jit(lambda a, b: a + b)(x, y)
    lowered = fungrad.jit(lambda a: fungrad.nn.softmax(a * 2.0)).lower(x)
    assert lowered.device == host_gpu
    assert "fused_cuda[kernel=rows_" in lowered.as_text() and "__global__" in lowered.as_text()


def test_gpu_benchmarks_run_on_the_stand_in(host_gpu, monkeypatch, capsys):
    """``benchmarks/bench_gpu.py --tiny`` (what a GPU machine runs, at full size) runs every
    section on the stand-in GPU: fused chain and layer norm, the train step, decoding."""
    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_gpu.py")
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr("sys.argv", ["bench_gpu.py", "--tiny", "--steps", "1"])
    bench.main()
    out = capsys.readouterr().out
    assert "(host stand-in)" in out and "fungrad's GPU program: 1 row kernel(s)" in out
    assert out.count("tokens/s") == 4  # the train step (fungrad, jax) and two decode batches


def _api_tour() -> dict:
    """name -> function of (x (6, 8) float32, v (8,) float32, i (5,) int32, m (4, 4) SPD
    float32): a call from each family of primitives (each impl runs on the device's array
    module)."""
    lax, nn, rnd = fungrad.lax, fungrad.nn, fungrad.random
    key = rnd.PRNGKey(3)
    return {
        "sum_mean_var": lambda x, v, i, m: (x.sum(0), x.mean(1), jnp.var(x)),
        "max_argmax_argmin": lambda x, v, i, m: (x.max(1), jnp.argmax(x, 0), jnp.argmin(v)),
        "prod_logsumexp": lambda x, v, i, m: (jnp.prod(v), nn.logsumexp(x, 1)),
        "cumsum_cummax_cumprod": lambda x, v, i, m: (jnp.cumsum(x, 1), lax.cummax(v),
                                                     jnp.cumprod(v * 0.5)),
        "sort_argsort_top_k": lambda x, v, i, m: (jnp.sort(x, 1), jnp.argsort(v),
                                                  lax.top_k(v, 3)),
        "searchsorted_unique": lambda x, v, i, m: (jnp.searchsorted(jnp.sort(v), v),
                                                   jnp.unique(i, size=5, fill_value=-1)),
        "take_gather": lambda x, v, i, m: (x[i % 6], jnp.take(v, i), x[:, i % 8]),
        "scatter": lambda x, v, i, m: (v.at[i % 8].add(1.0), v.at[i % 8].max(0.5),
                                       x.at[1:3, ::2].set(0.0)),
        "dynamic_slice_update": lambda x, v, i, m: (
            lax.dynamic_slice(x, (i[0] % 3, 2), (3, 4)),
            lax.dynamic_update_slice(x, jnp.ones((2, 2)), (1, i[1] % 6))),
        "pad_concat_reshape": lambda x, v, i, m: (jnp.pad(x, ((1, 0), (2, 1))),
                                                  jnp.concatenate([x, x[:2]]), x.T.reshape(4, 12),
                                                  jnp.flip(x, 1), jnp.roll(v, 3)),
        "where_clip_select": lambda x, v, i, m: (jnp.where(x > 0, x, -x), jnp.clip(v, -0.5, 0.5),
                                                 lax.select(v > 0, v, v * 2)),
        "elementwise": lambda x, v, i, m: (jnp.exp(x) * jnp.sin(x) - jnp.log1p(jnp.abs(x)),
                                           jnp.tanh(v) ** 3, lax.erf(v), lax.rsqrt(jnp.abs(v) + 1),
                                           i // 2, i % 3, i << 1, jnp.maximum(i, 2)),
        "matmul_einsum_dot": lambda x, v, i, m: (x @ v, jnp.einsum("ij,kj->ik", x, x),
                                                 lax.dot_general(x, x, (((0,), (0,)), ((), ())))),
        "dot_algorithms": lambda x, v, i, m: [  # operands rounded to bfloat16 on the device
            # (float32 operands of BF16_BF16_F32 too, where the CPU keeps them: bfloat16 values
            # here, so both agree; test_gpu_dot_algorithms checks the rounding)
            lax.dot(x.astype(jnp.float16), x.T.astype(jnp.float16), precision="BF16_BF16_F32",
                    preferred_element_type=jnp.float32),
            lax.dot(x.astype(BF16).astype(jnp.float32), x.T.astype(BF16).astype(jnp.float32),
                    precision="BF16_BF16_F32", preferred_element_type=BF16),
            lax.dot(x.astype(jnp.int32), x.T.astype(jnp.int32), precision="BF16_BF16_F32"),
            lax.dot(x, x.T, precision="BF16_BF16_F32_X3"),
            lax.ragged_dot(x.astype(jnp.float16), jnp.stack([x[:3].T, x[3:].T]).astype(jnp.float16),
                           jnp.array([2, 4], jnp.int32), precision="BF16_BF16_F32",
                           preferred_element_type=jnp.float32)],
        "conv_pool": lambda x, v, i, m: (
            lax.conv_general_dilated(x[None, None], jnp.ones((2, 1, 3, 3)), (1, 1), "SAME"),
            lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (2, 2), "VALID"),
            jnp.convolve(v, v[:3])),
        "fft": lambda x, v, i, m: (jnp.fft.rfft(v), jnp.fft.fft2(x).real, jnp.fft.irfft(
            jnp.fft.rfft(v), 8)),
        "linalg": lambda x, v, i, m: (jnp.linalg.solve(m, v[:4]), jnp.linalg.cholesky(m),
                                      jnp.linalg.inv(m), jnp.linalg.det(m),
                                      jnp.linalg.norm(x, axis=1), jnp.linalg.eigh(m)[0],
                                      jnp.linalg.svd(x, compute_uv=False),
                                      jnp.abs(jnp.linalg.qr(m)[1])),
        "random": lambda x, v, i, m: [  # a key on the device: i's first element folded in
            f(rnd.fold_in(key, i[0])) for f in (
                lambda k: rnd.normal(k, (3, 4)), lambda k: rnd.uniform(k, (5,)),
                lambda k: rnd.categorical(k, x), lambda k: rnd.permutation(k, 7),
                lambda k: rnd.bernoulli(k, 0.3, (6,)),
                lambda k: rnd.multinomial(k, 10, jnp.array([0.2, 0.3, 0.5]), shape=(4, 3)))],
        "nn": lambda x, v, i, m: (nn.softmax(x), nn.gelu(x), nn.one_hot(i % 4, 4),
                                  nn.relu(v), nn.log_softmax(x, 0)),
        "while_scan": lambda x, v, i, m: (
            lax.while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * 1.5), (0, v))[1],
            lax.scan(lambda c, r: (c + r, c * r), jnp.zeros(8), x)),
        "casts": lambda x, v, i, m: (x.astype(jnp.int32), i.astype(jnp.float32),
                                     (v > 0).astype(jnp.uint8), x.astype(BF16) * 2,
                                     lax.bitcast_convert_type(v, jnp.uint32)),
        "bfloat16_bits": lambda x, v, i, m: (
            lax.bitcast_convert_type(v.astype(BF16), jnp.uint16),
            lax.bitcast_convert_type(lax.bitcast_convert_type(v.astype(BF16), jnp.int16), BF16),
            lax.nextafter(v.astype(BF16), jnp.zeros(8, BF16)),
            lax.nextafter(jnp.zeros(8, BF16), v.astype(BF16))),
        "scatter_sub_mul": lambda x, v, i, m: (x.at[i % 6].subtract(v[:5, None] * x[:5]),
                                               v.at[i % 8].multiply(v[:5] + 2.0)),

    }


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", list(_api_tour()))
def test_every_family_of_primitives_runs_on_a_gpu(gpu, name, jitted):
    """Each family of primitives on the GPU, eagerly and compiled, with committed operands:
    the results stay there and are the CPU's (reductions may add in another order)."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 4)).astype(np.float32)
    host = [rng.standard_normal((6, 8)).astype(np.float32),
            rng.standard_normal(8).astype(np.float32), np.array([3, 0, 7, 7, 12], np.int32),
            a @ a.T + 4 * np.eye(4, dtype=np.float32)]
    fn = fungrad.jit(_api_tour()[name]) if jitted else _api_tour()[name]
    got, want = fn(*_on(gpu, *host)), fn(*map(jnp.asarray, host))
    for g, w in zip(fungrad.tree.leaves(got), fungrad.tree.leaves(want)):
        assert g.device == gpu and g.dtype == w.dtype and g.shape == w.shape
        if w.dtype == BF16:
            g, w = np.asarray(g, np.float32), np.asarray(w, np.float32)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


def _tf32(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` rounded to 10 mantissa bits, to nearest with ties away from zero."""
    m, e = np.frexp(x.astype(np.float64))
    return np.ldexp(np.sign(m) * np.floor(np.abs(m) * 2.0 ** 11 + 0.5) / 2.0 ** 11, e)


def test_round_to_tf32_matches_rounding_to_ten_mantissa_bits():
    """The TF32 rounding the GPU's ``TF32_TF32_F32`` applies: nearest, ties away from zero,
    overflow to infinity, infinities and NaN kept."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4096) * 10.0 ** rng.integers(-30, 30, 4096)).astype(np.float32)
    np.testing.assert_array_equal(round_to_tf32(np, x), _tf32(x).astype(np.float32))
    tie = np.float32(1 + 2 ** -11)  # halfway between 1 and 1 + 2**-10
    edges = np.array([tie, -tie, np.finfo(np.float32).max, np.inf, -np.inf, 0.0, -0.0,
                      np.float32(1e-45)], np.float32)
    want = np.array([1 + 2 ** -10, -1 - 2 ** -10, np.inf, np.inf, -np.inf, 0.0, -0.0, 0.0],
                    np.float32)
    got = round_to_tf32(np, edges)
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[6]) and np.isnan(round_to_tf32(np, np.array([np.nan], np.float32)))


# preset -> the float64 reference: the operands as the preset rounds float32 ones on a GPU
_GPU_ONLY_PRESETS = {
    "F16_F16_F32": lambda a: a.astype(np.float16), "BF16_BF16_F32": lambda a: a.astype(BF16),
    "BF16_BF16_BF16": lambda a: a.astype(BF16), "TF32_TF32_F32": _tf32,
    "BF16_BF16_F32_X9": lambda a: a, "TF32_TF32_F32_X3": lambda a: a}


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("preset", list(_GPU_ONLY_PRESETS))
def test_gpu_dot_algorithms(gpu, preset, jitted):
    """The presets JAX runs on a GPU, where its CPU refuses them or keeps float32 operands as
    they are: the operands rounded to the preset's precision, the products summed in float32
    (``BF16_BF16_BF16`` rounds the sum to bfloat16)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 40)).astype(np.float32)
    y = rng.standard_normal((40, 5)).astype(np.float32)
    fn = lambda a, b: lax.dot(a, b, precision=preset)
    got = (fungrad.jit(fn) if jitted else fn)(*_on(gpu, x, y))
    assert got.device == gpu and got.dtype == np.float32
    rounded = _GPU_ONLY_PRESETS[preset]
    want = rounded(x).astype(np.float64) @ rounded(y).astype(np.float64)
    got = np.asarray(got)
    if preset == "BF16_BF16_BF16":  # the float32 sum rounded once more
        np.testing.assert_array_equal(got, got.astype(BF16).astype(np.float32))
        np.testing.assert_allclose(got, want, rtol=2 ** -8)
    else:
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
    if not preset.endswith(("_X3", "_X9")):  # the rounding shows: a float32 product differs
        assert np.abs(x.astype(np.float64) @ y - want).max() > 1e-4


def test_explicit_dot_algorithms_run_on_a_gpu(gpu):
    """A ``DotAlgorithm`` (which JAX's CPU refuses) runs on a GPU: the operands rounded to
    its precision types, the products summed in its accumulation type."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 30)).astype(np.float32)
    algorithm = lax.DotAlgorithm(jnp.float16, jnp.float16, jnp.float32)
    got = lax.dot(*_on(gpu, x, x.T), precision=algorithm)
    half = x.astype(np.float16).astype(np.float64)
    assert got.device == gpu and got.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), half @ half.T, rtol=2e-6, atol=2e-6)
    assert np.abs(x.astype(np.float64) @ x.T - half @ half.T).max() > 1e-4
    with pytest.raises(ValueError, match="not supported by dot_general on CPU"):
        lax.dot(x, x.T, precision=algorithm)


def _has_tf32(gpu) -> bool:
    """Whether ``gpu`` multiplies float32 on TensorFloat-32 tensor cores (the stand-in's
    compute capability says so; a real GPU's from 8.0)."""
    from fungrad.backends import cupy as gpu_backend
    return gpu_backend._has_tf32(gpu.id)


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_float32_contractions_use_tensorfloat32_on_a_gpu_as_jax(gpu, jitted):
    """As on JAX's GPU, float32 contractions at the default precision multiply in
    TensorFloat-32 (the operands rounded to 10 mantissa bits, summed in float32), and at
    ``"highest"``, under ``default_matmul_precision("float32")`` or with a dot algorithm in
    float32; on the CPU always in float32. Convolutions alike."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 6, 40)).astype(np.float32)
    y = rng.standard_normal((40, 5)).astype(np.float32)
    full = x.astype(np.float64) @ y
    tf32 = _tf32(x) @ _tf32(y)
    assert np.abs(full - tf32).max() > 1e-4  # the two are told apart
    run = fungrad.jit if jitted else (lambda f: f)
    products = {
        "matmul": run(lambda a, b: a[0] @ b), "batched": run(lambda a, b: a @ b),
        "einsum": run(lambda a, b: jnp.einsum("bik,kj->bij", a, b)),
        "dot_general": run(lambda a, b: lax.dot_general(a, b, (((2,), (0,)), ((), ())))),
        "highest": run(lambda a, b: jnp.matmul(a, b, precision="highest")),
        "F32_F32_F32": run(lambda a, b: lax.dot(a[1], b, precision="F32_F32_F32"))}
    on_cpu = {"matmul": full[0], "batched": full, "einsum": full, "dot_general": full,
              "highest": full, "F32_F32_F32": full[1]}
    on_gpu = dict(on_cpu, matmul=tf32[0], batched=tf32, einsum=tf32, dot_general=tf32) \
        if _has_tf32(gpu) else on_cpu
    with fungrad.default_matmul_precision(None):  # JAX's default
        for name, fn in products.items():
            got, cpu = fn(*_on(gpu, x, y)), fn(x, y)
            assert got.device == gpu and got.dtype == np.float32, name
            np.testing.assert_allclose(np.asarray(got), on_gpu[name], rtol=2e-6, atol=2e-6,
                                       err_msg=name)
            np.testing.assert_allclose(np.asarray(cpu), on_cpu[name], rtol=2e-6, atol=2e-6,
                                       err_msg=name)
    with fungrad.default_matmul_precision("float32"):
        got = products["batched"](*_on(gpu, x, y))
    np.testing.assert_allclose(np.asarray(got), full, rtol=2e-6, atol=2e-6)
    # a convolution's patches too: the CPU's result on the rounded (or the same) operands
    image = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    kernel = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    conv = run(lambda a, k: lax.conv_general_dilated(a, k, (1, 1), "SAME"))
    with fungrad.default_matmul_precision(None):
        got = conv(*_on(gpu, image, kernel))
    rounded = (_tf32(image), _tf32(kernel)) if _has_tf32(gpu) else (image, kernel)
    want = conv(*[a.astype(np.float32) for a in rounded])
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-6, atol=2e-6)


def test_float8_dot_algorithms_need_float8_operands_on_a_gpu(gpu):
    """As on JAX's GPU, the float8 presets refuse other operands (a GPU holds no float8)."""
    x = _on(gpu, np.ones((2, 3), np.float32))[0]
    with pytest.raises(ValueError, match="ANY_F8_ANY_F8_F32' requires both inputs to have float8"):
        lax.dot(x, x.T, precision="ANY_F8_ANY_F8_F32")


def _householder_tour() -> dict:
    """name -> (function of (x (6, 5) float32, m (4, 4) float32), the reads back to the
    host it makes on a device): the decompositions CuPy has no routine for, run there as
    array operations (``fungrad/lax/_householder.py``), and ``schur``, which copies its
    matrix to the host for LAPACK and back (JAX has it on its CPU only), with ``sqrtm``
    built on it."""
    linalg, sp = fungrad.lax.linalg, fungrad.scipy.linalg
    return {
        "qr_pivoted": (lambda x, m: (linalg.qr(x, pivoting=True),
                                     sp.qr(x.T, pivoting=True, mode="economic")), 0),
        "packed_qr": (lambda x, m: (
            linalg.geqrf(x), linalg.geqp3(x, jnp.array([0, 0, 0, 1, 0], jnp.int32)),
            linalg.householder_product(*linalg.geqrf(x)),
            linalg.ormqr(*linalg.geqrf(x), x.T[:3], left=False, transpose=True)), 0),
        "hessenberg_tridiagonal": (lambda x, m: (
            linalg.hessenberg(m), linalg.tridiagonal(m + m.T, lower=False),
            sp.hessenberg(m, calc_q=True)), 0),
        "schur_sqrtm": (lambda x, m: (linalg.schur(m), sp.sqrtm(m @ m.T)), 2),
    }


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", list(_householder_tour()))
def test_householder_decompositions_on_a_gpu_match_the_cpu(gpu, name, jitted):
    """Pivoted QR, the packed QR routines, the Hessenberg and tridiagonal reductions on
    the GPU, eager and compiled: LAPACK's values on the CPU (to rounding: the CPU blocks
    its updates), the results on the GPU, and no read back to the host but ``schur``'s."""
    fn, reads = _householder_tour()[name]
    fn = fungrad.jit(fn) if jitted else fn
    rng = np.random.default_rng(9)
    host = [rng.standard_normal((6, 5)).astype(np.float32),
            rng.standard_normal((4, 4)).astype(np.float32)]
    args = _on(gpu, *host)
    fn(*args)  # the first call traces and compiles
    start = host_cupy.HOST_READS[0]
    got = fn(*args)
    if gpu.device_kind == "host stand-in":
        assert host_cupy.HOST_READS[0] - start == reads
    want = fn(*map(jnp.asarray, host))
    for g, w in zip(fungrad.tree.leaves(got), fungrad.tree.leaves(want)):
        assert g.device == gpu and g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("eigensolver", [True, False], ids=["cupy14", "cupy13"])
def test_eig_on_a_gpu_with_and_without_cupys_eigensolver(host_gpu, monkeypatch, eigensolver):
    """``eig`` uses CuPy's ``linalg.eig`` (CuPy 14 on) where it exists, else computes on
    the host (one read back) and returns its results to the GPU: the CPU's values."""
    if not eigensolver:
        monkeypatch.setitem(host_cupy._NOT_IN_CUPY, "cupy.linalg",
                            host_cupy._NOT_IN_CUPY["cupy.linalg"] | {"eig"})
    m = np.random.default_rng(4).standard_normal((2, 4, 4)).astype(np.float32)
    x, = _on(host_gpu, m)
    start = host_cupy.HOST_READS[0]
    got = jnp.linalg.eig(x)
    assert host_cupy.HOST_READS[0] - start == (0 if eigensolver else 1)
    for g, w in zip(got, jnp.linalg.eig(jnp.asarray(m))):
        assert g.device == host_gpu and g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_jitted_train_steps_never_wait_for_the_gpu(host_gpu, precision):
    """A jitted GPT-2 AdamW step reads nothing back to the host (where CuPy would wait for
    the GPU): steps queue up on the device until the loss is read. Also in bfloat16 with
    float32 master weights and a dynamic loss scale, whose skipped steps are selects."""
    from fungrad import nn, optim
    params, tokens, targets = _gpt2_data()
    opt = optim.adamw(1e-2)
    if precision == "bfloat16":
        params = nn.cast_floating(params, jnp.bfloat16)
        opt = optim.mixed_precision(opt, jnp.bfloat16, loss_scale=nn.DynamicLossScale.create())
    params, tokens, targets = fungrad.device_put((params, tokens, targets), host_gpu)
    _gpt2_steps(params, tokens, targets, opt, steps=1)  # compiles
    before = host_cupy.HOST_READS[0]
    losses, _, _ = _gpt2_steps(params, tokens, targets, opt, steps=3)
    assert host_cupy.HOST_READS[0] == before
    float(losses[-1])
    assert host_cupy.HOST_READS[0] == before + 1


def test_scatter_drops_out_of_bounds_updates_on_a_gpu_without_waiting(gpu):
    """Scatters with out-of-bounds indices (dropped, as JAX's default) for add, max, min
    and set, with duplicates and over windows of rows, give the CPU's results; on the
    stand-in, without reading anything back to the host."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    x[0] = 0.0  # zeros whose sign max/min must settle as JAX does
    rows = np.concatenate([rng.standard_normal((5, 4)), np.zeros((1, 4))]).astype(np.float32)
    rows[-1] = -0.0
    idx = np.array([1, 7, 1, -9, 4, 0], np.int32)  # 7 and -9 are out of bounds

    def scatters(x, rows, idx):
        return (x.at[idx].add(rows), x.at[idx].max(rows), x.at[idx].min(rows),
                x.at[idx, 2].add(rows[:, 0]), x.at[idx[1:2]].set(rows[:1]),
                x.reshape(-1).at[idx * 3].add(1.0))
    start = host_cupy.HOST_READS[0]
    got = scatters(*_on(gpu, x, rows, idx))
    if gpu.device_kind == "host stand-in":
        assert host_cupy.HOST_READS[0] == start
    for g, w in zip(got, scatters(*map(jnp.asarray, (x, rows, idx)))):
        assert g.device == gpu
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
        np.testing.assert_array_equal(np.signbit(np.asarray(g)), np.signbit(np.asarray(w)))


@pytest.mark.parametrize("dtype", [np.float32, BF16], ids=["float32", "bfloat16"])
def test_donated_buffers_are_reused_on_a_gpu(gpu, dtype):
    """A donated device buffer is written in place (a KV cache update allocates nothing),
    and the donated Array is deleted, as with ``jax.jit``; a bfloat16 buffer's bits too."""
    def address(a):
        value = a._value.storage if a.dtype == BF16 else a._value
        return value.__cuda_array_interface__["data"][0]
    cache = fungrad.device_put(np.zeros((64, 16), dtype), gpu) + 0.0  # an owned buffer
    before = address(cache)
    write = fungrad.jit(lambda c, row, i: fungrad.lax.dynamic_update_slice(c, row, (i, 0)),
                        donate_argnums=0)
    new = write(cache, *_on(gpu, np.ones((1, 16), dtype)), 3)
    assert address(new) == before and new.device == gpu and new.dtype == dtype
    np.testing.assert_array_equal(np.asarray(new)[3], 1.0)
    assert np.asarray(new).astype(np.float32).sum() == 16
    with pytest.raises(RuntimeError, match="deleted"):
        cache + 1.0


@pytest.mark.parametrize("indices", [[1, 7, -9, 3], [0, 7, 0, -9], [7, 8, 9, 10]],
                         ids=["zero_untouched", "zero_updated_twice", "all_out"])
def test_scatters_own_their_results_on_a_gpu(gpu, indices):
    """On a device an out-of-bounds update goes to element 0 rather than to a scratch
    element past the end: ``add``/``multiply``/``max``/``min`` combine their identity into
    it (a sum -0, so that a -0 stays), an assignment writes the value element 0 ends up
    with (its last in-bounds update, else its own). So the result owns its memory: donated
    to the next step, it is handed over instead of copied. Values as on the CPU."""
    x = np.array([-0.0, 2.0, -3.0, 4.0, 0.5, -1.5], np.float32)
    i, v = np.array(indices, np.int32), np.array([2.0, 5.0, 6.0, -0.0], np.float32)
    for op in ("set", "add", "subtract", "multiply", "max", "min"):
        fn = lambda x, i, v: getattr(x.at[i], op)(v)  # noqa: E731
        got, want = fn(*_on(gpu, x, i, v)), fn(*map(jnp.asarray, (x, i, v)))
        assert got._value.base is None, op
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=op)
        np.testing.assert_array_equal(np.signbit(np.asarray(got)), np.signbit(np.asarray(want)))


def test_integer_derivatives_on_a_gpu(gpu):
    """float0 tangents (of integer values), which hold no data, stay on the host as in JAX,
    and what is computed with them runs: a gradient with ``allow_int`` and ``jacfwd`` of an
    integer-valued function give the CPU's answers."""
    v, k = _on(gpu, np.array([0.5, -1.25, 2.0], np.float32), np.array([3], np.int32))
    g_v, g_k = fungrad.grad(lambda a, b: jnp.sum(a * b), argnums=(0, 1), allow_int=True)(v, k)
    assert g_v.device == gpu and g_k.dtype == fungrad.dtypes.float0 and g_k.shape == (1,)
    np.testing.assert_array_equal(np.asarray(g_v), [3.0, 3.0, 3.0])
    jac = fungrad.jacfwd(lambda a: (a * 3.0).astype(jnp.int32))(v)
    assert jac.dtype == np.int32 and jac.shape == (3, 3) and not np.asarray(jac).any()


def test_empty_results_launch_no_kernel_on_a_gpu(gpu):
    """A fused kernel whose result is empty is not launched (its index arithmetic would
    divide by the empty dimension), elementwise and row kernels alike."""
    x, empty = _on(gpu, np.arange(3, dtype=np.float32), np.zeros(0, np.float32))
    start = len(host_cupy.LAUNCHED)
    pairs = fungrad.jit(lambda a, b: (a[:, None] < b[None, :] * 2.0).astype(jnp.int32))(x, empty)
    rows = fungrad.jit(lambda b: fungrad.nn.softmax(b.reshape(0, 4) * 3.0))(
        *_on(gpu, np.zeros(0, np.float32)))
    assert pairs.shape == (3, 0) and pairs.dtype == np.int32 and rows.shape == (0, 4)
    assert pairs.device == gpu and rows.device == gpu
    assert len(host_cupy.LAUNCHED) == start


def test_a_kernel_reads_each_input_as_its_declared_dtype(host_gpu):
    """A launch converts an input buffer of another dtype (a float64 buffer where the
    program says float32) to the type the kernel reads, instead of handing it the bits."""
    import cupy
    from fungrad.compiler import cuda
    closed = fungrad.make_jaxpr(lambda x, y: jnp.sin(x) * y + 1.0)(
        np.ones(4, np.float32), np.ones(4, np.float32))
    kernel = cuda.Kernel(cuda.elementwise_source(closed.jaxpr, "k"), "k",
                         closed.out_avals[0], closed.in_avals)
    x, y = np.linspace(-2, 2, 4), np.arange(4.0)  # float64 and float64
    got = kernel(cupy.asarray(x), cupy.asarray(y.astype(np.float32))).get()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.sin(x) * y + 1.0, rtol=1e-6)


def test_odeint_with_python_float_arguments_on_a_gpu(gpu):
    """``odeint``'s Python float arguments reach its loops' bodies as constants: the
    interpreted first iterations computed with them in float64 (NumPy's type for a lone
    Python float), and the fused kernels after them read those float64 bits as float32."""
    from fungrad.experimental.ode import odeint
    fn = lambda y0, t: odeint(lambda y, t, k: -k * y, y0, t, 2.0)  # noqa: E731
    t = np.array([0.0, 0.5, 1.0], np.float32)
    got, want = fn(1.0, *_on(gpu, t)), fn(1.0, jnp.asarray(t))
    assert got.device == gpu and got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-6)
    np.testing.assert_allclose(np.asarray(want), np.exp(-2.0 * t), rtol=1e-5)


def test_float64_kernels_with_infinite_and_nan_constants(host_gpu):
    """Under x64 a fused float64 kernel writes its infinite and NaN constants as doubles
    (as floats they did not match the double templates of ``max``/``min``, and the kernel
    failed to compile)."""
    fn = fungrad.jit(lambda x: (jnp.clip(jnp.sin(x) * 2.0 + x, 0.0, jnp.inf),
                                jnp.clip(jnp.cos(x) - x * 3.0, -jnp.inf, 1.0),
                                (jnp.where(x > 0, x, jnp.nan) - 1.0) * x + 2.0))
    x = np.array([-2.5, 0.0, 3.0, np.inf], np.float64)
    with x64():
        assert fn.lower(x).as_text(dialect="cuda").count("__global__") == 3
        got, want = fn(*_on(host_gpu, x)), fn(jnp.asarray(x))
        for g, w in zip(got, want):
            assert g.device == host_gpu and g.dtype == w.dtype == np.float64
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_float64_scalars_move_to_a_gpu_under_x64(host_gpu):
    """NumPy's float64 and complex128 scalars (a gradient's seed under x64) subclass
    Python's float and complex but are host buffers: with the GPU as the default device
    they move there instead of reaching a device operation as host values."""
    z = np.array([1 + 2j, 3 - 1j])
    loss = lambda a: jnp.sum(jnp.abs(a + 1.5) ** 2)  # noqa: E731
    with x64(), fungrad.default_device(host_gpu):
        got = fungrad.grad(loss)(z)
        assert got.device == host_gpu and got.dtype == np.complex128
    with x64():
        np.testing.assert_allclose(np.asarray(got), np.asarray(fungrad.grad(loss)(z)), rtol=1e-12)


def _special_and_samplers() -> dict:
    """name -> (function of (u in (-1, 1), x real, p > 0, key), the most reads back to the
    host it may make on a device): special functions with rarely taken branches, the
    series that iterate to convergence, and the samplers built on them."""
    lax, rnd = fungrad.lax, fungrad.random
    series = 8  # convergence tested every 16th step: a few tests each (against 60-70)
    return {
        "erf_inv": (lambda u, x, p, k: lax.erf_inv(u), 0),
        "lgamma_digamma": (lambda u, x, p, k: (lax.lgamma(x), lax.digamma(x)), 0),
        "lgamma_second_derivative": (lambda u, x, p, k: fungrad.grad(
            lambda a: lax.digamma(a).sum())(p), 2),  # polygamma reads its orders back
        "igamma_igammac": (lambda u, x, p, k: (lax.igamma(p, p[::-1]), lax.igammac(p, 2 * p)),
                           2 * series),
        "betainc_zeta": (lambda u, x, p, k: (lax.betainc(p, p[::-1], jnp.abs(u)),
                                             lax.zeta(p + 1.5, p)), 2 * series),
        "samplers": (lambda u, x, p, k: [f(k) for f in (
            lambda k: rnd.normal(k, (64,)), lambda k: rnd.truncated_normal(k, -2.0, 1.5, (64,)),
            lambda k: rnd.exponential(k, (64,)), lambda k: rnd.logistic(k, (64,)),
            lambda k: rnd.laplace(k, (64,)), lambda k: rnd.gumbel(k, (64,)),
            lambda k: rnd.categorical(k, x))], 0),
    }


@pytest.mark.parametrize("name", list(_special_and_samplers()))
def test_special_functions_and_samplers_barely_wait_for_a_gpu(gpu, name):
    """On a device the rare branches of special functions run on every element and a
    select keeps them (finding the elements would read the mask back), and series test
    for convergence every 16th step: the CPU's values, with (on the stand-in) no read
    back to the host for the closed forms and the samplers, a few for the series."""
    fn, most_reads = _special_and_samplers()[name]
    u = np.concatenate([np.linspace(-0.9999, 0.9999, 12), [-1.0, 1.0, 0.99995]]).astype(np.float32)
    x = np.linspace(-4.3, 6.1, 15).astype(np.float32)  # negative arguments: reflection
    p = np.linspace(0.05, 9.0, 15).astype(np.float32)
    key = fungrad.random.PRNGKey(11)
    args = [*_on(gpu, u, x, p), fungrad.device_put(key, gpu)]
    fn(*args)  # the first call traces and compiles
    start = host_cupy.HOST_READS[0]
    got = fn(*args)
    if gpu.device_kind == "host stand-in":
        assert host_cupy.HOST_READS[0] - start <= most_reads
    want = fn(*map(jnp.asarray, (u, x, p)), key)
    for g, w in zip(fungrad.tree.leaves(got), fungrad.tree.leaves(want)):
        assert g.device == gpu and g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-6, atol=1e-7)


def test_jit_copies_a_device_constant_to_where_it_runs(gpu):
    """An array closed over by a jitted function is a constant of the program: it does
    not decide where the program runs (the arguments and the default device do), and it
    is copied there, as ``jax.jit`` does."""
    x, y = _on(gpu, np.arange(4, dtype=np.float32), np.ones(4, np.float32))
    on_default = fungrad.jit(lambda: x * 2.0)()
    assert on_default.device == fungrad.devices("cpu")[0]
    np.testing.assert_array_equal(np.asarray(on_default), [0.0, 2.0, 4.0, 6.0])
    host = jnp.arange(4, dtype=jnp.float32)
    on_gpu = fungrad.jit(lambda a: a + host)(y)  # a host constant goes to the GPU
    assert on_gpu.device == gpu
    np.testing.assert_array_equal(np.asarray(on_gpu), [1.0, 2.0, 3.0, 4.0])


SCATTER_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                  "uint64", "float16", "float32", "float64", "complex64", "complex128"]


@pytest.mark.parametrize("dtype", SCATTER_DTYPES)
def test_scatters_of_every_dtype_on_a_gpu_match_the_cpu(gpu, dtype):
    """``x.at[i].add/subtract/multiply/max/min(v)`` with duplicate and out-of-bounds
    indices, in every dtype JAX takes for them: CuPy's scatters where it has them, else
    compare-and-swap kernels (for 1- and 2-byte dtypes on the 4-byte word holding the
    element, while other threads update its neighbours; run by blocks of threads on the
    stand-in too), without reading back to the host but for complex extremes and
    complex128 products, computed there. Duplicates combine in no fixed order on a GPU
    (as in XLA), so float sums and products agree to a few roundings."""
    rng = np.random.default_rng(8)
    kind = np.dtype(dtype).kind
    x = (rng.standard_normal(6) * 3).astype(dtype)
    v = (rng.standard_normal((9, 1)) * 2 + 1).astype(dtype).repeat(2, axis=1)
    if kind == "c":
        x, v = x + 1j * x[::-1], v - 0.5j
    x[1] = v[4, 0] = np.nan if kind in "fc" else x[1]  # extremes keep NaN from either side
    if kind == "f":  # a tie of zeros: JAX's max is +0, its min -0
        x[0], v[1] = -0.0, 0.0
    idx = np.array([2, 0, 2, 9, 5, 2, -8, 1, 3], np.int32)  # duplicates; 9 and -8 dropped
    def scatter(method):  # into a vector, and into a matrix's column
        return lambda x, v, i: (getattr(x.at[i], method)(v[:, 0]),
                                getattr(x.reshape(2, 3).at[i % 2, 1], method)(v[:, 1]))
    names = ["max", "min"] + (["add", "subtract", "multiply"] if kind != "b" else [])
    ops = {name: scatter(name) for name in names}  # JAX adds and multiplies no booleans
    on_host = {"max", "min"} if kind == "c" else set()
    on_host |= {"multiply"} if dtype == "complex128" else set()
    stand_in = gpu.device_kind == "host stand-in"
    with x64():  # the 64-bit dtypes kept as such (the others are explicit either way)
        args = _on(gpu, x, v, idx)
        for name, op in ops.items():
            want = op(*map(jnp.asarray, (x, v, idx)))
            for threads in ([False, True] if stand_in else [False]):
                start = host_cupy.HOST_READS[0]
                with host_cupy.many_threads(per_block=16) if threads else contextlib.nullcontext():
                    got = op(*args)
                if stand_in and name not in on_host:
                    assert host_cupy.HOST_READS[0] == start, name
                for g, w in zip(got, want):
                    assert g.device == gpu and g.dtype == w.dtype == np.dtype(dtype)
                    exact = kind in "biu" or name in ("max", "min")
                    np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=0, err_msg=name,
                                               rtol=0 if exact else 8 * np.finfo(dtype).eps)
                    if kind == "f":
                        np.testing.assert_array_equal(np.signbit(np.asarray(g)),
                                                      np.signbit(np.asarray(w)), err_msg=name)


def test_masked_work_runs_everywhere_on_a_device(host_gpu):
    """``backends.masked``: on the host the work runs on the masked elements only (none:
    not at all) and convergence is tested every step; on a device the work runs on every
    element, the others given the safe values, and convergence is tested every 16th
    step, with no other read back to the host."""
    from fungrad.backends import masked
    seen = []

    def f(a, b):
        seen.append(np.asarray(a.get() if hasattr(a, "get") else a).copy())
        return a * b
    x, mask = np.arange(5.0), np.array([False, True, False, True, False])
    out = masked.where_masked(np, mask, np.zeros(5), f, x, 10.0)
    np.testing.assert_array_equal(out, [0, 10, 0, 30, 0])
    np.testing.assert_array_equal(seen.pop(), [1.0, 3.0])
    assert masked.where_masked(np, np.zeros(5, bool), out, f, x, 10.0) is out and not seen
    assert masked.may_hold(np, mask) and not masked.may_hold(np, ~np.ones(5, bool))
    cp = host_cupy._module
    start = host_cupy.HOST_READS[0]
    out = masked.where_masked(cp, cp.asarray(mask), cp.zeros(5), f, cp.asarray(x), 10.0,
                              safe=(-1.0, 0.0))
    np.testing.assert_array_equal(seen.pop(), [-1, 1, -1, 3, -1])  # read here, by the test
    assert host_cupy.HOST_READS[0] == start + 1
    assert masked.may_hold(cp, cp.zeros(3, bool)) and host_cupy.HOST_READS[0] == start + 1
    np.testing.assert_array_equal(out.get(), [0, 10, 0, 30, 0])
    tests = []
    steps = [k for k in range(1, 40) if masked.converging(cp, k, lambda: tests.append(k)
                                                          or cp.ones(2, bool))]
    assert steps == list(range(1, 40)) and tests == [16, 32]
    assert not masked.converging(np, 3, lambda: np.zeros(2, bool))


@pytest.mark.parametrize("start", [0, 3, 9, -2, -20])
def test_dynamic_slices_at_a_device_position(gpu, start):
    """``dynamic_slice`` and ``dynamic_update_slice`` at a start held on the device (a
    KV cache's position) index there, clamped as XLA clamps, without reading the start
    back: the CPU's windows, eagerly and under ``jit``."""
    x = np.arange(60, dtype=np.float32).reshape(3, 10, 2)
    row = -np.ones((2, 4, 2), np.float32)

    def ops(x, row, i):
        return (lax.dynamic_slice(x, (1, i, 0), (2, 4, 2)),
                lax.dynamic_update_slice(x, row, (i, i, 0)),
                lax.dynamic_slice_in_dim(x, i, 3, axis=1))
    on_gpu = _on(gpu, x, row, np.int32(start))
    for fn in (ops, fungrad.jit(ops)):
        fn(*on_gpu)
        before = host_cupy.HOST_READS[0]
        got = fn(*on_gpu)
        if gpu.device_kind == "host stand-in":
            assert host_cupy.HOST_READS[0] == before
        for g, w in zip(got, ops(jnp.asarray(x), jnp.asarray(row), start)):
            assert g.device == gpu
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


@NO_GXX
def test_jit_on_the_stand_in_with_blocks_of_threads(host_gpu):
    """Jitted programs whose kernels run as a GPU runs them (``host_cupy.many_threads``:
    blocks of 256 host threads meeting at ``__syncthreads``): a fused elementwise chain
    over several blocks, the row kernels of softmax, layer norm and a cross-entropy, and
    ``scatter_mul``'s compare-and-swap loop with 2,000 updates racing for four elements;
    the CPU's results."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 300)).astype(np.float32)
    labels = np.array([3, 299, 0, 17, 150], np.int32)
    signs = rng.choice(np.array([-1.0, 1.0], np.float32), 2000)
    slots = rng.integers(0, 4, 2000).astype(np.int32)
    nn = fungrad.nn

    def programs(x, labels, signs, slots):
        logp = nn.log_softmax(x * 1.5)
        return (jnp.tanh(x) * 2.0 + jnp.exp(-x * x), nn.softmax(x),
                nn.standardize(x, axis=-1) * 0.5 + 1.0,
                -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0],
                jnp.ones(4, jnp.float32).at[slots].multiply(signs))
    step = fungrad.jit(programs)
    want = step(x, labels, signs, slots)
    with host_cupy.many_threads():
        launched = len(host_cupy.LAUNCHED)
        got = step(*_on(host_gpu, x, labels, signs, slots))
        assert len(host_cupy.LAUNCHED) > launched
    for g, w in zip(got, want):
        assert g.device == host_gpu
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-6, atol=2e-6)
