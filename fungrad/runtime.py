"""JAX's everyday runtime helpers: devices and backends, host transfer, caches, the x64
switch as a context manager, compile-time evaluation, names for profiling scopes.

fungrad has one process and computes synchronously, so ``block_until_ready`` only
returns its argument, and named scopes and calls label nothing (there is no profiler to
show them); they exist so that JAX code runs unchanged.
"""
from __future__ import annotations

import contextlib
import functools
import platform
import sys
from typing import Any, Callable, Iterator

import numpy as np

from fungrad import backends
from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.eval import EVAL_TRACE
from fungrad.config import config
from fungrad.version import __version__
from fungrad.transforms import jit as _jit
from fungrad.transforms import jit_primitive as _jit_primitive

__all__ = ["block_until_ready", "clear_caches", "default_backend", "default_device",
           "debug_infs", "debug_nans", "default_matmul_precision", "device_count", "device_get",
           "enable_x64", "ensure_compile_time_eval", "local_device_count", "local_devices",
           "log_compiles", "named_call", "named_scope", "numpy_rank_promotion",
           "print_environment_info", "typeof"]


def block_until_ready(x: Any) -> Any:
    """Wait for every array in the pytree ``x`` (computation is synchronous: returns ``x``)."""
    tree_util.map(lambda v: v.block_until_ready() if hasattr(v, "block_until_ready") else v, x)
    return x


def device_get(x: Any) -> Any:
    """The pytree ``x`` with its arrays copied to host NumPy arrays; other leaves as they are.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.device_get({"w": jnp.ones(2), "step": 3})
        {'w': array([1., 1.], dtype=float32), 'step': 3}
    """
    return tree_util.map(lambda v: np.asarray(v) if hasattr(v, "__array__") else v, x)


def clear_caches() -> None:
    """Forget every compiled function and derived jaxpr (``jax.clear_caches``)."""
    for per_fun in list(_jit._shared_caches.values()):
        per_fun.clear()
    _jit_primitive._executables.clear()
    _jit_primitive._derived.clear()


def local_devices(process_index: int | None = None, backend: str | None = None,
                  host_id: int | None = None) -> list[backends.Device]:
    """The devices of this process (all of them: fungrad runs in one process)."""
    return backends.devices(backend)


def device_count(backend: str | None = None) -> int:
    """How many devices there are."""
    return len(backends.devices(backend))


def local_device_count(backend: str | None = None) -> int:
    """How many devices this process has."""
    return len(backends.devices(backend))


def default_backend() -> str:
    """The platform of the preferred backend: ``"gpu"`` when CuPy sees a GPU, else ``"cpu"``."""
    return backends.default_backend()


@contextlib.contextmanager
def default_device(device: Any) -> Iterator[None]:
    """Within the block, uncommitted arrays and computations go to ``device`` (a
    ``Device``, ``"gpu"``, ``"cpu:1"``; ``jax.default_device``), as
    ``config.update("jax_default_device", device)`` does for the whole program.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> with fungrad.default_device(fungrad.devices("cpu")[0]):
        ...     jnp.zeros(2).device
        CpuDevice(id=0)
    """
    previous = config.default_device
    config.update("default_device", device)
    try:
        yield
    finally:
        config.update("default_device", previous)


# jax.default_matmul_precision's values: XLA's precision names and dot algorithms
MATMUL_PRECISIONS = frozenset({
    "default", "high", "highest", "bfloat16", "tensorfloat32", "float32",
    "ANY_F8_ANY_F8_F32", "ANY_F8_ANY_F8_F32_FAST_ACCUM", "ANY_F8_ANY_F8_ANY",
    "ANY_F8_ANY_F8_ANY_FAST_ACCUM", "F16_F16_F16", "F16_F16_F32", "BF16_BF16_BF16",
    "BF16_BF16_F32", "BF16_BF16_F32_X3", "BF16_BF16_F32_X6", "BF16_BF16_F32_X9",
    "TF32_TF32_F32", "TF32_TF32_F32_X3", "F32_F32_F32", "F64_F64_F64"})


@contextlib.contextmanager
def default_matmul_precision(precision: str | None = None) -> Iterator[None]:
    """``jax.default_matmul_precision``: the precision of matmuls and convolutions inside the
    block. fungrad's matmuls (BLAS on the CPU, cuBLAS through CuPy) always compute float32
    inputs in float32, as XLA's CPU backend does whatever the setting, so the value is
    checked and changes nothing."""
    if precision is not None and precision not in MATMUL_PRECISIONS:
        raise ValueError(f"default_matmul_precision: {precision!r} is not one of "
                         f"{sorted(MATMUL_PRECISIONS)} or None")
    yield


def typeof(x: Any) -> core.ShapedArray:
    """The abstract value of ``x``: shape, dtype and weak type (``jax.typeof``).

    Examples:
        >>> import fungrad
        >>> fungrad.typeof(1.0)
        ShapedArray(f32[], weak_type=True)
    """
    return core.get_aval(x)


def print_environment_info(return_string: bool = False) -> str | None:
    """The versions of fungrad, NumPy and Python and the devices, for bug reports."""
    info = (f"fungrad:    {__version__}\nnumpy:      {np.__version__}\n"
            f"python:     {sys.version}\nplatform:   {platform.platform()}\n"
            f"devices:    {backends.devices()}\nenable_x64: {config.enable_x64}\n")
    if return_string:
        return info
    print(info, end="")
    return None


class _FlagState:
    """A flag of ``config`` as JAX offers its config states (``jax.enable_x64``,
    ``jax.debug_nans``, ``jax.numpy_rank_promotion``, ...): ``.value`` reads it,
    ``flag(new_val)`` is a context manager setting it for a block (a boolean flag's
    ``new_val`` defaults to True)."""

    def __init__(self, name: str, boolean: bool = True) -> None:
        self._name, self._boolean = name, boolean

    @property
    def value(self) -> Any:
        return getattr(config, self._name)

    @contextlib.contextmanager
    def __call__(self, new_val: Any = True) -> Iterator[None]:
        prev = getattr(config, self._name)
        config.update(self._name, bool(new_val) if self._boolean else new_val)
        try:
            yield
        finally:
            config.update(self._name, prev)

    def __repr__(self) -> str:
        return f"{self._name}(value={self.value})"


enable_x64 = _FlagState("enable_x64")
log_compiles = _FlagState("log_compiles")  # log every jit compilation and why it missed
debug_nans = _FlagState("debug_nans")  # FloatingPointError where a NaN is produced
debug_infs = _FlagState("debug_infs")  # ... and where an infinity is
# "allow", "warn" or "raise" when fungrad.numpy broadcasts arrays of different ranks
numpy_rank_promotion = _FlagState("numpy_rank_promotion", boolean=False)


class _CompileTimeEvalTrace(core.Trace):
    """Evaluates primitives whose operands are all concrete right away; operands of an
    enclosing transformation go to that transformation."""
    name = "ensure_compile_time_eval"

    def process_primitive(self, prim, args, params):
        if any(isinstance(a, core.Tracer) for a in args):
            return core.bind_in_parent(self, prim, args, params)
        with core.set_current_trace(EVAL_TRACE):
            return EVAL_TRACE.process_primitive(prim, args, params)


@contextlib.contextmanager
def ensure_compile_time_eval() -> Iterator[None]:
    """Inside ``jit``, compute values that do not depend on its arguments while tracing, so
    they are concrete (usable in Python ``if``, as shapes).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> @fungrad.jit
        ... def f(x):
        ...     with fungrad.ensure_compile_time_eval():
        ...         n = int(jnp.sum(jnp.arange(4)))
        ...     return x * n
        >>> f(1.0)
        Array(6., dtype=float32, weak_type=True)
    """
    trace = _CompileTimeEvalTrace(core.current_trace())
    try:
        with core.set_current_trace(trace):
            yield
    finally:
        trace.invalidate()


def named_call(fun: Callable, *, name: str | None = None) -> Callable:
    """``fun`` under a profiling name (``jax.named_call``); the result computes the same."""
    @functools.wraps(fun)
    def call(*args: Any, **kwargs: Any) -> Any:
        with named_scope(name or getattr(fun, "__name__", "named_call")):
            return fun(*args, **kwargs)
    return call


@contextlib.contextmanager
def named_scope(name: str) -> Iterator[None]:
    """A profiling scope (``jax.named_scope``): checks ``name`` is a string, labels nothing."""
    if not isinstance(name, str):
        raise TypeError(f"named_scope: argument 'name' must be a string, got {type(name).__name__}")
    yield
