"""JAX's everyday runtime helpers: devices and backends, host transfer and its guards,
arrays built from shards, caches, the config flags as context managers (x64, dtype
promotion, NaN checks, cache-miss explanations, no tracing or no execution, ...) and user
contexts that key the ``jit`` cache, compile-time evaluation, names for profiling scopes,
and ``fwd_and_bwd`` (a ``vjp`` split into two functions that can each be jitted once).

fungrad computes synchronously, so ``block_until_ready`` and ``copy_to_host_async`` only
return their argument and ``effects_barrier`` has nothing to wait for; named scopes and
calls show as spans in ``fungrad.profiler``'s traces.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import logging
import platform
import sys
from typing import Any, Callable, ContextManager, Iterator, NoReturn, Sequence

import numpy as np

from fungrad import backends
from fungrad import tree as tree_util
from fungrad._core import core, dtypes, spans
from fungrad._core.array import Array, device_put, numpy_view
from fungrad._core.eval import EVAL_TRACE
from fungrad.backends import Device
from fungrad.config import config
from fungrad.version import __version__
from fungrad.transforms import jit as _jit
from fungrad.transforms import jit_primitive as _jit_primitive
from fungrad.transforms import key_reuse as _key_reuse
from fungrad.transforms.api import check_argnums, check_callable, resolve_argnums, vjp
from fungrad.transforms.closures import _Residuals, _stage

__all__ = ["Device", "allow_f16_reductions", "array_garbage_collection_guard", "auto_pcast",
           "block_until_ready", "check_tracer_leaks",
           "checking_leaks", "clear_caches", "copy_to_host_async", "debug_key_reuse",
           "default_backend", "default_device", "debug_infs", "debug_nans",
           "default_matmul_precision", "default_prng_impl", "device_count", "device_get",
           "effects_barrier", "enable_checks", "enable_custom_prng", "enable_x64",
           "ensure_compile_time_eval", "explain_cache_misses", "fwd_and_bwd",
           "jax2tf_associative_scan_reductions", "legacy_prng_key", "live_arrays",
           "local_device_count", "local_devices", "log_compiles",
           "make_array_from_callback", "make_array_from_process_local_data",
           "make_array_from_single_device_arrays", "make_user_context", "named_call",
           "named_scope", "no_execution", "no_tracing", "numpy_dtype_promotion",
           "numpy_rank_promotion", "print_environment_info",
           "remove_size_one_mesh_axis_from_type", "softmax_custom_jvp", "thread_guard",
           "threefry_partitionable", "transfer_guard", "transfer_guard_device_to_device",
           "transfer_guard_device_to_host", "transfer_guard_host_to_device", "typeof"]


def block_until_ready(x: Any) -> Any:
    """Wait for every array in the pytree ``x`` (computation is synchronous: returns ``x``)."""
    tree_util.map(lambda v: v.block_until_ready() if hasattr(v, "block_until_ready") else v, x)
    return x


def device_get(x: Any) -> Any:
    """The pytree ``x`` with its arrays copied to host NumPy arrays; other leaves as they are.

    The copies are explicit device-to-host transfers (``transfer_guard``'s ``"disallow"``
    allows them, ``"disallow_explicit"`` does not).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.device_get({"w": jnp.ones(2), "step": 3})
        {'w': array([1., 1.], dtype=float32), 'step': 3}
    """
    def get(v: Any) -> Any:
        if type(v) is Array:
            return numpy_view(v._host(explicit=True))
        return np.asarray(v) if hasattr(v, "__array__") else v
    return tree_util.map(get, x)


def copy_to_host_async(x: Any) -> Any:
    """Start copying the arrays of the pytree ``x`` to the host and return ``x``
    (``jax.copy_to_host_async``). Copies are synchronous here, made when the data is read,
    so there is nothing to start."""
    return x


def effects_barrier() -> None:
    """Wait until the side effects of computations that ran (``debug.print``,
    ``debug.callback``) are done (``jax.effects_barrier``). They run synchronously, as the
    computation reaches them, so they are all done already."""


def live_arrays(platform: str | None = None) -> list[Array]:
    """The arrays alive on ``platform`` (``"cpu"``, ``"gpu"``; by default the default
    backend's), as ``jax.live_arrays``; donated (deleted) arrays are not live.

    Found by walking the objects the garbage collector tracks, so arrays cost nothing to
    create and a call costs time in proportion to the Python heap (a debugging tool).
    """
    platform = backends.devices(platform)[0].platform
    return [x for x in gc.get_objects()
            if type(x) is Array and not isinstance(x._value, _jit.DeletedBuffer)
            and x.device.platform == platform]


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
# "standard" (JAX's lattice) or "strict": implicit promotion of different dtypes raises
# TypePromotionError (Python scalars still combine with arrays of their kind)
numpy_dtype_promotion = _FlagState("numpy_dtype_promotion", boolean=False)
# the precision of contractions given none (config.default_matmul_precision): None, a
# precision name or a dot algorithm's name; a GPU multiplies float32 in TensorFloat-32
# unless it is "float32"/"highest", as JAX's GPU does, the CPU in float32 whatever it is
default_matmul_precision = _FlagState("default_matmul_precision", boolean=False)
# The transfer guards, one per direction (see fungrad._core.transfer for where they apply):
# "allow", "log", "disallow", "log_explicit", "disallow_explicit"
transfer_guard_host_to_device = _FlagState("transfer_guard_host_to_device", boolean=False)
transfer_guard_device_to_host = _FlagState("transfer_guard_device_to_host", boolean=False)
transfer_guard_device_to_device = _FlagState("transfer_guard_device_to_device", boolean=False)
# JAX's flag makes every transformation look for tracers still referenced when it exits.
# fungrad invalidates a transformation's trace when it exits, so an escaped tracer raises
# UnexpectedTracerError wherever it is used next, with or without the flag; a tracer kept
# but never used is harmless and is not searched for (that search walks the Python heap
# once per transformation). The flag is kept so that code setting it runs unchanged.
check_tracer_leaks = _FlagState("check_tracer_leaks")
# JAX's "TRACING CACHE MISS" report for every jit cache miss (logger "fungrad.jit", WARNING):
# the call site, and which argument's shape, dtype or weak type, which static value, what
# pytree structure or what setting differs from the closest signature traced before
explain_cache_misses = _FlagState("explain_cache_misses")
# a jit cache miss raises RuntimeError ("re-tracing function f ... but 'no_tracing' is set")
no_tracing = _FlagState("no_tracing")
# running anything (an eager operation, a jitted call) raises RuntimeError; tracing does not
no_execution = _FlagState("no_execution")
# Accepted as JAX's flags, with no effect (see ``fungrad.config.Config``): ``enable_checks``
# (fungrad has no jaxpr type checker to run), ``allow_f16_reductions`` (always allowed),
# ``thread_guard`` (no multi-process operation to guard), ``softmax_custom_jvp``
# (``nn.softmax`` has one derivative rule).
enable_checks = _FlagState("enable_checks")
allow_f16_reductions = _FlagState("allow_f16_reductions")
thread_guard = _FlagState("thread_guard")
softmax_custom_jvp = _FlagState("softmax_custom_jvp")
# KeyReuseError where a typed PRNG key is consumed twice: eagerly, and statically in every
# function jit traces (see ``fungrad.transforms.key_reuse``)
debug_key_reuse = _FlagState("debug_key_reuse")
# "allow", "warn" (UserWarning) or "error" (ValueError) where fungrad.random is given a raw
# uint32 key rather than a typed one (see ``fungrad.random``)
legacy_prng_key = _FlagState("legacy_prng_key", boolean=False)
# The PRNG of new keys and threefry's scheme: fungrad implements JAX's defaults,
# "threefry2x32" and the partitionable scheme (True); the other values raise
# NotImplementedError
default_prng_impl = _FlagState("default_prng_impl", boolean=False)
threefry_partitionable = _FlagState("threefry_partitionable")
# JAX's deprecated upgrade: PRNGKey, split and fold_in return typed keys, and raw keys given
# to fungrad.random warn (FutureWarning) while legacy_prng_key is "allow"
enable_custom_prng = _FlagState("enable_custom_prng")
# None/"allow", or "log": log an error for each Array freed by the garbage collector (held by
# a reference cycle) rather than by reference counting; "fatal" raises NotImplementedError
array_garbage_collection_guard = _FlagState("array_garbage_collection_guard", boolean=False)
# Accepted as JAX's flags, with no effect: jax2tf's lowering of cumulative reductions, size-1
# mesh axes in sharding types, pvary inserted to match varying mesh axes (fungrad has no
# jax2tf, no shardings in its types, no varying-axes types)
jax2tf_associative_scan_reductions = _FlagState("jax2tf_associative_scan_reductions")
remove_size_one_mesh_axis_from_type = _FlagState("remove_size_one_mesh_axis_from_type")
auto_pcast = _FlagState("auto_pcast")

_logger = logging.getLogger("fungrad")
_collecting = False  # whether the cyclic garbage collector is running (``_gc_phase``)


def _gc_phase(phase: str, info: dict) -> None:
    global _collecting
    _collecting = phase == "start"


def _array_finalizer(self: Array) -> None:
    """``Array.__del__`` while ``array_garbage_collection_guard`` is ``"log"``: an array
    finalized while the garbage collector runs is freed by it (it was held by a reference
    cycle, or by an object in one), not by reference counting."""
    if _collecting:
        _logger.error("`fungrad.Array` was deleted by the Python garbage collector instead of "
                      "reference counting. Break the reference cycle that delays the deletion "
                      "of this `fungrad.Array` to avoid hogging memory. Array: %s%s",
                      self.dtype, list(self.shape))


def _apply_gc_guard() -> None:
    """Install the finalizer and the collector callback while the guard is ``"log"``, and
    remove them otherwise, so that arrays cost nothing to free when it is not."""
    if config.array_garbage_collection_guard == "log":
        if _gc_phase not in gc.callbacks:
            gc.callbacks.append(_gc_phase)
        Array.__del__ = _array_finalizer
    else:
        if _gc_phase in gc.callbacks:
            gc.callbacks.remove(_gc_phase)
        if "__del__" in vars(Array):
            del Array.__del__


config.on_change("array_garbage_collection_guard", _apply_gc_guard)


def _refuse_execution(prim: core.Primitive, args: Sequence[Any], params: dict) -> NoReturn:
    what = f"jit({params['name']})" if prim is _jit_primitive.jit_p else str(prim)
    raise RuntimeError(f"fungrad tried to execute function {what}, but the no_execution config "
                       "option is set")


def _apply_eager_flags() -> None:
    """Make the eager trace refuse every primitive while ``config.no_execution`` is set, or
    check and record the consumption of PRNG keys while ``config.debug_key_reuse`` is (see
    ``fungrad.transforms.key_reuse``), and in both cases make jitted calls go through it.
    Both are swapped in and out (an instance attribute shadowing
    ``EvalTrace.process_primitive``, ``jit.refuse_execution``) so that eager operations and
    jitted calls test no flag."""
    if config.no_execution:
        EVAL_TRACE.process_primitive = _refuse_execution
    elif config.debug_key_reuse:
        EVAL_TRACE.process_primitive = functools.partial(
            _key_reuse.process_primitive, type(EVAL_TRACE).process_primitive.__get__(EVAL_TRACE))
    else:
        vars(EVAL_TRACE).pop("process_primitive", None)
    _jit.refuse_execution(config.no_execution or config.debug_key_reuse)


config.on_change("no_execution", _apply_eager_flags)
config.on_change("debug_key_reuse", _apply_eager_flags)


class _UserContext:
    """A value that ``jit``'s cache is keyed on (see ``make_user_context``)."""

    def __init__(self, default_value: Any) -> None:
        self._index = config.add_user_context(default_value)

    @property
    def value(self) -> Any:
        """The current value."""
        return config.user_contexts[self._index]

    def get_global(self) -> Any:
        """The value outside any ``with`` block of this context (contexts are global here,
        not per thread, so the current value)."""
        return self.value

    def set_global(self, new_value: Any) -> None:
        """Set the value for the whole program."""
        config.set_user_context(self._index, new_value)

    @contextlib.contextmanager
    def __call__(self, new_value: Any) -> Iterator[None]:
        prev = self.value
        self.set_global(new_value)
        try:
            yield
        finally:
            self.set_global(prev)


def make_user_context(default_value: Any = None) -> _UserContext:
    """A context whose value ``jit``'s cache is keyed on (``jax.make_user_context``): a
    jitted function called under another value traces and compiles again, so the traced
    code may read ``ctx.value`` as a constant. ``ctx(value)`` sets it for a ``with`` block,
    ``ctx.set_global(value)`` for the program; values must be hashable. Contexts are
    program-wide here (JAX's ``with`` blocks are per thread).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> scale = fungrad.make_user_context(default_value=1.0)
        >>> f = fungrad.jit(lambda x: x * scale.value)
        >>> with scale(3.0):
        ...     print(f(jnp.ones(2)))
        [3. 3.]
        >>> print(f(jnp.ones(2)))
        [1. 1.]
    """
    return _UserContext(default_value)


def fwd_and_bwd(fun: Callable, argnums: int | Sequence[int], has_aux: bool = False,
                jitted: bool = True) -> tuple[Callable, Callable]:
    """The forward and backward passes of ``fun`` as two functions (``jax.fwd_and_bwd``):
    ``fwd(*args)`` computes ``fun(*args)`` and the residuals of its ``vjp`` with respect to
    the arguments ``argnums``, ``bwd(residuals, cotangent)`` their cotangents. Unlike
    ``vjp``'s pullback, the residuals are a pytree of arrays, so both functions are jitted
    (with ``jitted=True``) and compile once for all calls with the same shapes.

    Args:
        fun: the function to differentiate.
        argnums: the positional argument(s) to differentiate with respect to.
        has_aux: ``fun`` returns ``(output, aux)``; ``fwd`` then returns
            ``(output, residuals, aux)``.
        jitted: return ``jit``-ted ``fwd`` and ``bwd``.

    Returns:
        ``(fwd, bwd)``: ``fwd(*args, **kwargs) -> (output, residuals)`` (keyword arguments
        go to ``fun`` and are not differentiated); ``bwd(residuals, cotangent)`` returns the
        cotangent of the argument ``argnums`` (an int) or a tuple of them (a sequence).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fwd, bwd = fungrad.fwd_and_bwd(lambda x, w: jnp.sum(x * w), argnums=(0, 1))
        >>> y, res = fwd(jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
        >>> bwd(res, 1.0)
        (Array([3., 4.], dtype=float32), Array([1., 2.], dtype=float32))
    """
    check_callable(fun, "fwd_and_bwd")
    nums = check_argnums(argnums, "fwd_and_bwd")

    def fwd(*args: Any, **kwargs: Any) -> tuple:
        positions = resolve_argnums(nums, len(args), "fwd_and_bwd")

        def restricted(*diff_args: Any) -> Any:
            full = list(args)
            for p, a in zip(positions, diff_args):
                full[p] = a
            return fun(*full, **kwargs)
        out, f_vjp, *aux = vjp(restricted, *[args[p] for p in positions], has_aux=has_aux)
        residuals = _Residuals(*_stage(f_vjp, (out,), "fwd_and_bwd"))
        return (out, residuals, *aux)

    def bwd(residuals: _Residuals, cotangent: Any) -> Any:
        cts, tree = tree_util.flatten((cotangent,))
        avals = [v.aval for v in residuals.jaxpr.invars]
        if tree != residuals.in_tree or any(
                core.get_aval(c).shape != a.shape or core.get_aval(c).dtype != a.dtype
                for c, a in zip(cts, avals)):
            raise ValueError(f"fwd_and_bwd: the cotangent {tree_util.structure(cotangent)} of "
                            f"{[core.get_aval(c).str_short() for c in cts]} does not match "
                            f"the output's {[a.str_short() for a in avals]}")
        grads = tree_util.unflatten(residuals.out_tree,
                                    core.eval_jaxpr(residuals.jaxpr, residuals.consts, *cts))
        return grads if isinstance(argnums, Sequence) else grads[0]
    if jitted:
        return _jit.jit(fwd), _jit.jit(bwd)
    return fwd, bwd


@contextlib.contextmanager
def transfer_guard(new_val: str) -> Iterator[None]:
    """Within the block, apply guard level ``new_val`` to transfers in every direction
    (``jax.transfer_guard``): ``"allow"``, ``"log"`` or ``"disallow"`` implicit transfers
    (a host NumPy value passed to a jitted function, reading a GPU array with NumPy), or
    ``"log_explicit"``/``"disallow_explicit"`` explicit ones (``device_put``,
    ``device_get``) as well. A disallowed transfer raises ``errors.JaxRuntimeError``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp, numpy as np
        >>> f = fungrad.jit(lambda x: x * 2)
        >>> with fungrad.transfer_guard("disallow"):
        ...     y = f(fungrad.device_put(np.ones(2)))   # explicit: allowed
        ...     try:
        ...         f(np.ones(2))                       # implicit: refused
        ...     except fungrad.errors.JaxRuntimeError:
        ...         print("refused")
        refused
    """
    with transfer_guard_host_to_device(new_val), transfer_guard_device_to_host(new_val), \
            transfer_guard_device_to_device(new_val):
        yield


def checking_leaks() -> ContextManager[None]:
    """``check_tracer_leaks(True)`` for a block (``jax.checking_leaks``; see
    ``check_tracer_leaks`` for what fungrad checks)."""
    return check_tracer_leaks(True)


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
    """A profiling scope (``jax.named_scope``): the block shows as a span named ``name`` in
    ``fungrad.profiler``'s traces (inside ``jit``, the span of its tracing)."""
    if not isinstance(name, str):
        raise TypeError(f"named_scope: argument 'name' must be a string, got {type(name).__name__}")
    with spans.TraceAnnotation(name):
        yield


# --------------------------------------------------------------------------- arrays from shards
# fungrad arrays live whole on one device, and placing one with a sharding puts it on the
# sharding's first device (``device_put``): so the array has one shard, all of it.

def make_array_from_callback(shape: Sequence[int], sharding: Any,
                             data_callback: Callable[[tuple], Any], dtype: Any = None) -> Array:
    """The array of ``shape`` whose shard at each index of ``sharding`` is
    ``data_callback(index)`` (``jax.make_array_from_callback``): here one shard, so one
    call with the index of the whole array (a ``slice(None)`` per dimension), placed on
    the sharding's first device.

    Raises:
        ValueError: the data does not have ``shape``, or ``dtype`` is given and differs
            from the data's (as in JAX).

    Examples:
        >>> import fungrad, numpy as np
        >>> data = np.arange(6.0).reshape(2, 3)
        >>> fungrad.make_array_from_callback((2, 3), fungrad.devices()[0], lambda i: data[i])
        Array([[0., 1., 2.],
               [3., 4., 5.]], dtype=float32)
    """
    shape = tuple(shape)
    device = backends.as_device(sharding, "make_array_from_callback")
    out = device_put(_whole(data_callback((slice(None),) * len(shape)), shape,
                            "make_array_from_callback"), device)
    if dtype is not None and out.dtype != dtypes.canonicalize_dtype(dtype):
        raise ValueError(f"make_array_from_callback: dtype={np.dtype(dtype)} was given, but "
                         f"the callback's data has dtype {out.dtype}; they must match")
    return out


def make_array_from_single_device_arrays(shape: Sequence[int], sharding: Any,
                                         arrays: Sequence[Any], *, dtype: Any = None) -> Array:
    """The array of ``shape`` made of ``arrays``, the shards of ``sharding``'s devices
    (``jax.make_array_from_single_device_arrays``). Each must be the whole array here
    (one device, or replicas); the first is placed on the sharding's first device.

    Raises:
        ValueError: no arrays, an array is not of the whole ``shape`` (a split layout), or
            ``dtype`` differs from the arrays'.
    """
    shape, what = tuple(shape), "make_array_from_single_device_arrays"
    arrays = [_whole(a, shape, what) for a in arrays]
    if not arrays:
        raise ValueError(f"{what}: no arrays given")
    if dtype is not None and any(np.dtype(a.dtype) != np.dtype(dtype) for a in arrays):
        raise ValueError(f"{what}: the arrays' dtypes {[str(a.dtype) for a in arrays]} are not "
                         f"dtype={np.dtype(dtype)}")
    return device_put(arrays[0], backends.as_device(sharding, what))


def make_array_from_process_local_data(sharding: Any, local_data: Any,
                                       global_shape: Sequence[int] | None = None) -> Array:
    """The array of this process's ``local_data``, placed by ``sharding``
    (``jax.make_array_from_process_local_data``).

    fungrad's arrays belong to one process (``fungrad.distributed`` exchanges them with
    collectives), so the local data is the whole array: ``global_shape`` must be None or
    its shape, as JAX requires of a single process.
    """
    shape = tuple(np.shape(local_data))
    if global_shape is not None and tuple(global_shape) != shape:
        raise ValueError("make_array_from_process_local_data: global_shape should be None or "
                         f"equal to local_data.shape on a single process; got "
                         f"global_shape={tuple(global_shape)} and local_data.shape={shape}")
    device = backends.as_device(sharding, "make_array_from_process_local_data")
    return device_put(local_data if isinstance(local_data, Array) else np.asarray(local_data),
                      device)


def _whole(data: Any, shape: tuple, what: str) -> Any:
    """``data``, checked to be of the whole array's ``shape``."""
    if tuple(np.shape(data)) != shape:
        raise ValueError(f"{what}: got data of shape {tuple(np.shape(data))} for an array of "
                         f"shape {shape} (fungrad arrays live whole on one device)")
    return data
