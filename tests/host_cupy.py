"""CuPy stood in by the host: the GPU backend's own code run end to end without a GPU.

``install(monkeypatch)`` puts a ``cupy`` and a ``cupyx`` module in ``sys.modules`` and makes
fungrad list one GPU, so ``fungrad.devices("gpu")``, ``device_put``, eager operations,
``jit`` with the CUDA fuser and the generated kernels all run their real code:

* ``ndarray`` is a device buffer: a NumPy array inside that, as CuPy's, refuses implicit
  conversion to the host (``np.asarray(x)`` raises; ``x.get()`` copies) and refuses host
  arrays as operands, so a host/device mix-up fails here as it would on a GPU;
* the module's functions and ufuncs are NumPy's, taking and returning device buffers;
* ``RawKernel`` and ``ElementwiseKernel`` compile their CUDA C for the host with ``g++``
  (``HOST_SHIMS`` defines the CUDA names) and run it through ``ctypes``: one block of one
  thread, whose grid-stride loops cover every element or row, or, inside
  ``many_threads()``, a ``RawKernel`` with the grid and block it is launched with (a host
  thread per GPU thread, ``__syncthreads`` a barrier). ``LAUNCHED`` records the name of
  every kernel launched, ``HOST_READS`` counts the reads of device values on the host
  (where CuPy synchronises with the GPU).

Only what fungrad uses of CuPy is here.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.machinery
import operator
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

import fungrad
from fungrad import backends
from fungrad.compiler import cuda
from fungrad.lax.dot import round_to_tf32

HOST_SHIMS = """#include <cmath>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <thread>
#include <vector>
using namespace std;
struct Dim3 { unsigned x; };
static thread_local Dim3 threadIdx = {0}, blockIdx = {0};
static Dim3 blockDim = {1}, gridDim = {1};
static pthread_barrier_t fungrad_block_barrier;  // the running block's threads (many_threads)
static bool fungrad_many_threads = false;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static  // one block runs at a time: its threads share the function's statics
static inline void __syncthreads() {
  if (fungrad_many_threads) pthread_barrier_wait(&fungrad_block_barrier);
}
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
typedef _Float16 __half;  // IEEE binary16 on the host (GCC 12+): conversions round to even
static inline float __half2float(__half h) { return (float)h; }
static inline __half __float2half_rn(float f) { return (__half)f; }
static inline __half __ushort_as_half(unsigned short u) { __half h; memcpy(&h, &u, 2); return h; }
static inline unsigned short __half_as_ushort(__half h) {
  unsigned short u; memcpy(&u, &h, 2); return u;
}
static inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
static inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, 8); return i; }
template <typename T> static inline T atomicCAS(T* address, T compare, T value) {
  // with many threads, let another run first: kernels that do not retry a failed swap
  // then lose updates (the window between reading an element and swapping it widens)
  if (fungrad_many_threads) this_thread::yield();
  __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_SEQ_CST,
                              __ATOMIC_SEQ_CST);
  return compare;  // the value found: ``compare`` itself on success, the element's on failure
}
"""

# Launches a kernel as CUDA would: the grid's blocks one after another, each block's threads
# as host threads, ``__syncthreads`` a barrier among them.
_LAUNCHER = """
extern "C" void fungrad_launch_{name}(unsigned grid, unsigned block, {params}) {{
  gridDim.x = grid; blockDim.x = block; fungrad_many_threads = true;
  pthread_barrier_init(&fungrad_block_barrier, nullptr, block);
  for (unsigned b = 0; b < grid; b++) {{
    vector<thread> threads;
    for (unsigned t = 0; t < block; t++)
      threads.emplace_back([=] {{ threadIdx.x = t; blockIdx.x = b; {name}({args}); }});
    for (thread& running : threads) running.join();
  }}
  pthread_barrier_destroy(&fungrad_block_barrier);
  fungrad_many_threads = false; gridDim.x = blockDim.x = 1;
}}
"""
_KERNEL_SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')
# None: RawKernels run as one thread; else (per_block, blocks): with their grid and blocks
# of threads, at most per_block threads a block and blocks blocks where these are positive
MANY_THREADS: list[tuple[int, int] | None] = [None]

LAUNCHED: list[str] = []  # the name of every kernel launched, in order
HOST_READS = [0]  # how many times a device value was read on the host (a synchronisation)
_LIBRARIES: dict[str, ctypes.CDLL] = {}  # compiled shared libraries by source
_BUILD_DIR = Path(tempfile.mkdtemp(prefix="fungrad_host_cupy_"))


def compile_for_host(source: str) -> ctypes.CDLL:
    """``source`` (CUDA C using only what ``HOST_SHIMS`` defines) as a loaded shared library."""
    lib = _LIBRARIES.get(source)
    if lib is None:
        stem = _BUILD_DIR / hashlib.sha1(source.encode()).hexdigest()
        launchers = [_LAUNCHER.format(name=name, params=params, args=", ".join(
            re.findall(r"(\w+)\s*(?:,|$)", params))) for name, params in
            _KERNEL_SIGNATURE.findall(source)]
        stem.with_suffix(".cc").write_text(HOST_SHIMS + source.replace("#include <cuda_fp16.h>\n",
                                                                       "") + "".join(launchers))
        subprocess.run(["g++", "-O1", "-pthread", "-shared", "-fPIC", "-o",
                        str(stem.with_suffix(".so")),
                        str(stem.with_suffix(".cc"))], check=True, timeout=300)
        lib = _LIBRARIES[source] = ctypes.CDLL(str(stem.with_suffix(".so")))
    return lib


# --------------------------------------------------------------------------- device buffers

_DEVICE = types.SimpleNamespace(id=0)


def _unwrap(value: Any, host_ok: bool = False) -> Any:
    """The NumPy arrays inside device buffers (through lists, tuples and dicts); a host
    array raises ``TypeError`` unless ``host_ok``, as CuPy's functions do."""
    if type(value) is ndarray:
        return value._a
    if isinstance(value, np.ndarray) and not host_ok:
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, host_ok) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, host_ok) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    """NumPy results as device buffers (NumPy's scalars as 0-d buffers, as CuPy returns);
    a dtype CuPy lacks (bfloat16, the float8s, ...) raises, as CuPy does."""
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.kind not in "biufc":  # ml_dtypes' types are of kind "V"
            raise TypeError(f"Unsupported dtype {value.dtype}")
        return ndarray(np.asarray(value))
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NumPy's named results
        return type(value)(*[_wrap(v) for v in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


class ndarray:  # noqa: N801 - CuPy's name
    """A buffer on the stand-in device (a NumPy array held inside)."""
    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    device = property(lambda self: _DEVICE)
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    __cuda_array_interface__ = property(lambda self: {
        "shape": self.shape, "typestr": self.dtype.str, "version": 3,
        "data": (self._a.__array_interface__["data"][0], False),
        "strides": None if self._a.flags.c_contiguous else self.strides})

    def _set_part(self, part: str, value: Any) -> None:
        getattr(self._a, part)[...] = _unwrap(value)
    real = property(lambda self: _wrap(self._a.real), lambda self, v: self._set_part("real", v))
    imag = property(lambda self: _wrap(self._a.imag), lambda self, v: self._set_part("imag", v))

    def get(self, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
        """A host copy."""
        HOST_READS[0] += 1
        return np.array(self._a, order=order)

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return getattr(_Ufunc(ufunc), method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        return getattr(_module, func.__name__)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        HOST_READS[0] += name in ("item", "tolist")
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)
        return lambda *a, **kw: _wrap(attr(*_unwrap(a), **_unwrap(kw)))

    def __getitem__(self, index: Any) -> Any:
        HOST_READS[0] += _has_mask(index)
        return _wrap(self._a[_unwrap(index, host_ok=True)])

    def __setitem__(self, index: Any, value: Any) -> None:
        HOST_READS[0] += _has_mask(index)
        self._a[_unwrap(index, host_ok=True)] = _unwrap(value, host_ok=True)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self.get())

    def __int__(self) -> int:
        return int(self.get())

    def __float__(self) -> float:
        return float(self.get())

    def __index__(self) -> int:
        return operator.index(self.get())

    def __repr__(self) -> str:
        return repr(self._a).replace("array(", "stand_in_cupy.array(", 1)


def _has_mask(index: Any) -> bool:
    """Whether ``index`` holds a boolean device array: CuPy reads back how many elements it
    selects (the result's size) before it can index."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(type(p) is ndarray and p.dtype == np.bool_ for p in parts)


def _operators() -> None:
    """The arithmetic and comparison operators of ``ndarray``, through the ufuncs."""
    binary = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
              "floordiv": "floor_divide", "mod": "remainder", "pow": "power",
              "matmul": "matmul", "and": "bitwise_and", "or": "bitwise_or",
              "xor": "bitwise_xor", "lshift": "left_shift", "rshift": "right_shift"}
    for op, name in binary.items():
        ufunc = getattr(np, name)
        setattr(ndarray, f"__{op}__", lambda a, b, u=ufunc: _Ufunc(u)(a, b))
        setattr(ndarray, f"__r{op}__", lambda a, b, u=ufunc: _Ufunc(u)(b, a))
        setattr(ndarray, f"__i{op}__", lambda a, b, u=ufunc: _Ufunc(u)(a, b, out=a))
    for op, name in {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
                     "eq": "equal", "ne": "not_equal"}.items():
        setattr(ndarray, f"__{op}__", lambda a, b, u=getattr(np, name): _Ufunc(u)(a, b))
    for op, name in {"neg": "negative", "pos": "positive", "abs": "absolute",
                     "invert": "invert"}.items():
        setattr(ndarray, f"__{op}__", lambda a, u=getattr(np, name): _Ufunc(u)(a))


_operators()
ndarray.__module__ = "cupy"  # how fungrad tells a CuPy buffer from a host one


class _Ufunc:
    """A NumPy ufunc on device buffers; an ``out=`` buffer is returned as itself."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        result = getattr(self._ufunc, method)(*_unwrap(args), **_unwrap(kwargs))
        if type(out) is ndarray:
            return out
        if isinstance(out, tuple) and out and all(type(o) is ndarray for o in out):
            return out if len(out) > 1 else out[0]
        return _wrap(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("__call__", *args, **kwargs)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("reduce", *args, **kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("accumulate", *args, **kwargs)

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("outer", *args, **kwargs)

    def at(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{self.__name__}.at: CuPy has no ufunc.at for it (cupyx has "
                        "scatter_add, scatter_max and scatter_min)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ufunc, name)


# --------------------------------------------------------------------------- kernels

class RawKernel:
    """CuPy's ``RawKernel``: ``kernel(grid, block, args)`` runs extern "C" function ``name``
    of ``source`` on device buffers (and NumPy scalars for the scalar parameters): as one
    block of one thread, or inside ``many_threads()`` with ``grid`` and ``block``."""

    def __init__(self, source: str, name: str) -> None:
        self.name = name
        library = compile_for_host(source)
        self._fn, self._launch = getattr(library, name), getattr(library, f"fungrad_launch_{name}")

    def __call__(self, grid: tuple, block: tuple, args: tuple, shared_mem: int = 0) -> None:
        c_args = []
        for a in args:
            if type(a) is ndarray:
                assert a._a.flags.c_contiguous, f"{self.name}: a kernel argument is not contiguous"
                c_args.append(ctypes.c_void_p(a._a.ctypes.data))
            elif isinstance(a, np.integer):
                c_args.append(ctypes.c_longlong(int(a)) if a.dtype.itemsize == 8 else
                              ctypes.c_int(int(a)))
            else:
                raise TypeError(f"{self.name}: unsupported kernel argument {type(a)}")
        LAUNCHED.append(self.name)
        if MANY_THREADS[0] is None:
            self._fn(*c_args)
        else:
            per_block, blocks = MANY_THREADS[0]
            self._launch(ctypes.c_uint(min(grid[0], blocks) if blocks else grid[0]),
                         ctypes.c_uint(min(block[0], per_block) if per_block else block[0]),
                         *c_args)


@contextlib.contextmanager
def many_threads(per_block: int = 0, blocks: int = 0) -> Any:
    """Within it, ``RawKernel`` launches run with the grid and block they ask for: blocks one
    after another, a block's threads as host threads meeting at ``__syncthreads``, and
    ``atomicCAS`` atomic, so races, barriers and block-strided loops show (slowly: a host
    thread per GPU thread). ``per_block`` (a power of two) caps the threads of a block and
    ``blocks`` the blocks of the grid, for longer programs and to make the grid-stride
    loops take more than one turn: fungrad's kernels take any power-of-two block up to the
    launch's, and any grid."""
    MANY_THREADS[0] = (per_block, blocks)
    try:
        yield
    finally:
        MANY_THREADS[0] = None


_C_TYPES = {"float32": "float", "float64": "double", "int32": "int", "uint32": "unsigned int",
            "int64": "long long", "uint16": "unsigned short", "bool": "bool"}


class ElementwiseKernel:
    """CuPy's ``ElementwiseKernel``: ``operation`` run per element of the broadcast inputs,
    each parameter a local variable of its declared type; returns the outputs."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str,
                 preamble: str = "") -> None:
        parse = lambda params: [p.split() for p in params.split(",")]  # noqa: E731
        self.ins, self.outs, self.name = parse(in_params), parse(out_params), name
        c_type = lambda t: _C_TYPES[np.dtype(t).name]  # noqa: E731
        params = [f"const {c_type(t)}* p_{n}" for t, n in self.ins]
        params += [f"{c_type(t)}* p_{n}" for t, n in self.outs] + ["long long n"]
        loads = " ".join(f"{c_type(t)} {n} = p_{n}[i];" for t, n in self.ins)
        decls = " ".join(f"{c_type(t)} {n};" for t, n in self.outs)
        stores = " ".join(f"p_{n}[i] = {n};" for _, n in self.outs)
        source = (f"{preamble}\nextern \"C\" void {name}({', '.join(params)}) {{\n"
                  f"  for (long long i = 0; i < n; i++) {{ {loads} {decls}\n{operation}\n"
                  f"  {stores} }}\n}}\n")
        self._fn = getattr(compile_for_host(source), name)

    def __call__(self, *inputs: Any) -> Any:
        shape = np.broadcast_shapes(*[np.shape(_unwrap(a)) for a in inputs])
        arrays = [np.ascontiguousarray(np.broadcast_to(_unwrap(a).astype(t), shape)).reshape(shape)
                  for a, (t, _) in zip(inputs, self.ins)]
        outs = [np.empty(shape, t) for t, _ in self.outs]
        LAUNCHED.append(self.name)
        self._fn(*[ctypes.c_void_p(a.ctypes.data) for a in arrays + outs],
                 ctypes.c_longlong(int(np.prod(shape))))
        return _wrap(outs[0] if len(outs) == 1 else tuple(outs))


# --------------------------------------------------------------------------- the modules

def _asarray(a: Any, dtype: Any = None, order: Any = None, copy: Any = None) -> ndarray:
    """A device buffer of ``a`` (a host array is copied to the device)."""
    if type(a) is ndarray:
        return a if dtype is None or a.dtype == dtype else _wrap(a._a.astype(dtype))
    return _wrap(np.array(_unwrap(a, host_ok=True), dtype=dtype, order=order))


class _Device:
    """``cupy.cuda.Device``: a context selecting the (only) device."""

    compute_capability = "90"  # a GPU with TensorFloat-32 tensor cores

    def __init__(self, id: int = 0) -> None:
        self.id = id

    def __enter__(self) -> _Device:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def use(self) -> None:
        return None

    def synchronize(self) -> None:
        return None


class _CupyModule(types.ModuleType):
    """``cupy`` (or one of its submodules): NumPy's (``numpy_module``'s) functions on
    device buffers, plus the names defined here."""

    def __init__(self, name: str, numpy_module: Any) -> None:
        super().__init__(name)
        self._numpy = numpy_module
        self.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec finds it

    def __getattr__(self, name: str) -> Any:
        if name in _NOT_IN_CUPY.get(self.__name__, ()):
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}' (CuPy)")
        attr = getattr(self._numpy, name)
        if isinstance(attr, types.ModuleType):
            return _CupyModule(f"{self.__name__}.{name}", attr)
        if isinstance(attr, np.ufunc):
            return _Ufunc(attr)
        if isinstance(attr, type) or not callable(attr):
            return attr
        if name in _SIZED_BY_VALUES:
            return lambda *a, **kw: _read_back(_wrap(attr(*_unwrap(a), **_unwrap(kw))))
        return lambda *a, **kw: _wrap(attr(*_unwrap(a), **_unwrap(kw)))


# NumPy's functions CuPy lacks (NumPy 2.4's and CuPy 14.2's names compared), which the
# stand-in refuses as CuPy would
_NOT_IN_CUPY = {
    "cupy": frozenset({
        "asmatrix", "block", "bmat", "busday_count", "busday_offset", "datetime_as_string",
        "datetime_data", "einsum_path", "errstate", "frompyfunc", "fromregex", "geomspace",
        "getbufsize", "geterr", "geterrcall", "histogram_bin_edges", "insert", "is_busday",
        "isnat", "matvec", "nanpercentile", "nanquantile", "ndenumerate", "nditer",
        "nested_iters", "polyder", "polydiv", "polyint", "setbufsize", "seterr", "seterrcall",
        "spacing", "unstack", "vecdot", "vecmat"}),
    "cupy.linalg": frozenset({"diagonal", "matrix_norm", "multi_dot", "outer", "svdvals",
                              "tensordot", "trace", "vecdot", "vector_norm"}),
}

# functions whose result's size depends on the values: CuPy reads it back from the device
_SIZED_BY_VALUES = frozenset({"nonzero", "flatnonzero", "argwhere", "unique", "extract",
                              "compress"})


def _read_back(result: Any) -> Any:
    HOST_READS[0] += 1
    return result


# ``cupy._core._routines_linalg``: the compute type of each dtype's matmuls (CuPy's
# per-dtype setting; only float32's TensorFloat-32 changes what the stand-in computes)
_compute_types = types.ModuleType("cupy._core._routines_linalg")
_compute_types.__dict__.update(COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7, _types={})
_compute_types.get_compute_type = lambda dtype: _compute_types._types.get(np.dtype(dtype), 1)
_compute_types.set_compute_type = lambda dtype, kind: _compute_types._types.__setitem__(
    np.dtype(dtype), kind)
_core = types.ModuleType("cupy._core")
_core._routines_linalg = _compute_types


def _matmul(a: Any, b: Any, out: Any = None) -> ndarray:
    """``cupy.matmul``: float32 operands rounded to TensorFloat-32 first while float32's
    compute type is ``COMPUTE_TYPE_TF32`` (as cuBLAS's tensor cores take them)."""
    a, b = _unwrap(a), _unwrap(b)
    if a.dtype == b.dtype == np.float32 and \
            _compute_types.get_compute_type(np.float32) == _compute_types.COMPUTE_TYPE_TF32:
        a, b = round_to_tf32(np, a), round_to_tf32(np, b)  # (tested against its own rounding)
    if out is None:
        return _wrap(np.matmul(a, b))
    np.matmul(a, b, out=_unwrap(out))
    return out


_module = _CupyModule("cupy", np)
_module.__dict__.update(
    _core=_core, matmul=_matmul,
    ndarray=ndarray, RawKernel=RawKernel, ElementwiseKernel=ElementwiseKernel,
    asarray=_asarray, array=_asarray,
    ascontiguousarray=lambda a, dtype=None: _wrap(np.ascontiguousarray(_unwrap(a), dtype)),
    asnumpy=lambda a: a.get() if type(a) is ndarray else np.asarray(a),
    # CuPy's sorts are stable (and take no ``kind``)
    sort=lambda a, axis=-1: _wrap(np.sort(_unwrap(a), axis=axis, kind="stable")),
    argsort=lambda a, axis=-1: _wrap(np.argsort(_unwrap(a), axis=axis, kind="stable")),
    get_array_module=lambda *args: _module,
    cuda=types.SimpleNamespace(
        Device=_Device, get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None),
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1,
                                      getDeviceProperties=lambda i: {"name": b"host stand-in"})))


def _scatter(ufunc: np.ufunc, dtypes: str) -> Any:
    """``cupyx.scatter_<op>``: ``ufunc.at`` for the dtypes CuPy's atomics take (their
    characters), a ``TypeError`` for the others, as CuPy raises."""
    def scatter(a: ndarray, slices: Any, value: Any) -> None:
        if a.dtype.char not in dtypes:
            raise TypeError(f"scatter_{ufunc.__name__} does not support {a.dtype.name} (CuPy)")
        ufunc.at(a._a, _unwrap(slices, host_ok=True), _unwrap(value))
    return scatter


_cupyx = types.ModuleType("cupyx")
_cupyx.__spec__ = importlib.machinery.ModuleSpec("cupyx", None)
_cupyx.__dict__.update(scatter_add=_scatter(np.add, "iILQefd"),
                       scatter_max=_scatter(np.maximum, "iILQfd"),
                       scatter_min=_scatter(np.minimum, "iILQfd"))


def install(monkeypatch: Any) -> Any:
    """Make ``cupy``/``cupyx`` the stand-ins and fungrad list one GPU (for the test only:
    ``monkeypatch`` undoes it, and the backend module bound to the stand-in is dropped);
    returns that GPU device. The default device stays the CPU."""
    fungrad.clear_caches()  # nothing compiled for a real GPU runs on the stand-in
    monkeypatch.setattr(cuda.Kernel, "_compiled", {})
    monkeypatch.setitem(sys.modules, "cupy", _module)
    monkeypatch.setitem(sys.modules, "cupyx", _cupyx)
    monkeypatch.setitem(sys.modules, "cupy._core", _core)
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", _compute_types)
    monkeypatch.delitem(sys.modules, "fungrad.backends.cupy", raising=False)
    monkeypatch.setattr(backends, "_gpu_possible", lambda: True)
    monkeypatch.setattr(backends, "_table", None)
    monkeypatch.setattr(backends.config, "default_device", "cpu")
    monkeypatch.setattr(backends, "host_default", True)
    return backends.devices("gpu")[0]


def uninstall() -> None:
    """Forget the backend module and the executables bound to the stand-in (before
    ``install``'s monkeypatch is undone), so that a real GPU in the same process never
    meets them."""
    sys.modules.pop("fungrad.backends.cupy", None)
    fungrad.clear_caches()


__all__ = ["HOST_SHIMS", "LAUNCHED", "compile_for_host", "install", "many_threads", "uninstall"]
