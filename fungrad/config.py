"""Global flags, set with ``fungrad.config.update(name, value)`` as in JAX.

``fungrad.config`` is the one ``Config``; its attributes, listed on the class, are the flags.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable

_BOOL_FLAGS = ("enable_x64", "log_compiles", "disable_jit", "debug_nans", "debug_infs",
               "check_tracer_leaks", "explain_cache_misses", "no_tracing", "no_execution",
               "enable_checks", "debug_key_reuse", "allow_f16_reductions", "thread_guard",
               "softmax_custom_jvp", "threefry_partitionable", "enable_custom_prng",
               "jax2tf_associative_scan_reductions", "remove_size_one_mesh_axis_from_type",
               "auto_pcast")
_DEVICE_FLAGS = ("default_device", "platforms", "num_cpu_devices")
# JAX's transfer guard levels: "log"/"disallow" concern implicit transfers only, the
# "_explicit" levels explicit ones (device_put, device_get) too
TRANSFER_GUARD_LEVELS = ("allow", "log", "disallow", "log_explicit", "disallow_explicit")
TRANSFER_DIRECTIONS = ("host_to_device", "device_to_host", "device_to_device")
# The flags a trace depends on (``enable_x64`` changes dtypes, the promotion flags what
# traces or raises), with their defaults: ``jit`` keys its cache on them (``trace_context``).
_TRACING_FLAGS = ("enable_x64", "numpy_dtype_promotion", "numpy_rank_promotion",
                  "debug_key_reuse", "default_matmul_precision")
_TRACING_DEFAULTS = (False, "standard", "allow", False, None)
# jax_default_matmul_precision's values: XLA's precision names and the dot algorithms' names
MATMUL_PRECISIONS = (
    "default", "high", "highest", "bfloat16", "tensorfloat32", "float32",
    "ANY_F8_ANY_F8_F32", "ANY_F8_ANY_F8_F32_FAST_ACCUM", "ANY_F8_ANY_F8_ANY",
    "ANY_F8_ANY_F8_ANY_FAST_ACCUM", "F16_F16_F16", "F16_F16_F32", "BF16_BF16_BF16",
    "BF16_BF16_F32", "BF16_BF16_F32_X3", "BF16_BF16_F32_X6", "BF16_BF16_F32_X9",
    "TF32_TF32_F32", "TF32_TF32_F32_X3", "F32_F32_F32", "F64_F64_F64")
# JAX's PRNG implementations (``jax_default_prng_impl``); fungrad implements the first only
PRNG_IMPLS = ("threefry2x32", "threefry4x32", "rbg", "unsafe_rbg", "philox2x32", "philox4x32")
_CHOICE_FLAGS = {"numpy_rank_promotion": ("allow", "warn", "raise"),
                 "numpy_dtype_promotion": ("standard", "strict"),
                 "legacy_prng_key": ("allow", "warn", "error"),
                 "default_prng_impl": PRNG_IMPLS,
                 "array_garbage_collection_guard": (None, "allow", "log", "fatal"),
                 "default_matmul_precision": (None, *MATMUL_PRECISIONS),
                 **{f"transfer_guard_{d}": TRANSFER_GUARD_LEVELS for d in TRANSFER_DIRECTIONS}}
# Values JAX accepts that fungrad does not implement, with why: setting one raises
# NotImplementedError naming the flag (the flag keeps its value).
_UNIMPLEMENTED = {
    "default_prng_impl": lambda v: v != "threefry2x32" and (
        f"fungrad implements the 'threefry2x32' PRNG only, not {v!r}"),
    "threefry_partitionable": lambda v: not v and (
        "fungrad's threefry is the partitionable one (JAX's default, True); JAX's older "
        "scheme (False) gives other bits for split and the samplers"),
    "array_garbage_collection_guard": lambda v: v == "fatal" and (
        "'fatal' (abort the process when the garbage collector frees an array) is not "
        "implemented; 'log' logs those arrays"),
}


def _env_num_cpu_devices() -> int:
    """``FUNGRAD_NUM_CPU_DEVICES``, else XLA's host device count flag, else 1."""
    value = os.environ.get("FUNGRAD_NUM_CPU_DEVICES")
    if value is None:
        match = re.search(r"--xla_force_host_platform_device_count=(\d+)",
                          os.environ.get("XLA_FLAGS", ""))
        value = match.group(1) if match else "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"FUNGRAD_NUM_CPU_DEVICES must be a positive integer, got {value!r}")
    return int(value)


def _hashable(value: Any) -> Any:
    """``value``, checked to be hashable: a user context's value is part of ``jit``'s cache
    key."""
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"make_user_context: a context's value must be hashable (it keys the "
                        f"jit cache), got {type(value).__name__}: {value!r}") from None
    return value


class Config:
    """Holds the flags; read them as attributes (``config.enable_x64``), set them with
    ``update`` (JAX's ``jax_`` prefixed names are accepted too).

    Attributes:
        enable_x64: keep 64-bit dtypes (default False: float64 becomes float32, int64
            int32). Environment: ``FUNGRAD_ENABLE_X64``.
        log_compiles: log each ``jit`` compilation and why the cache missed.
        explain_cache_misses: log (logger ``fungrad.jit``, level WARNING) JAX's "TRACING
            CACHE MISS" report for each ``jit`` cache miss: the call site and what differs
            from the closest signature traced before (an argument's shape, dtype or weak
            type, a static value, the pytree structure, the default device or a user
            context), or that the function was never seen.
        no_tracing: a ``jit`` cache miss (tracing, also by ``.trace``/``.lower``) raises
            ``RuntimeError``; cached calls run. Eager operations never trace here.
        no_execution: running a computation (an eager operation, a ``jit`` call) raises
            ``RuntimeError``; tracing, ``make_jaxpr``, ``eval_shape`` and ``lower`` work.
        disable_jit: run jitted functions op by op (see ``fungrad.disable_jit``).
        debug_nans / debug_infs: raise ``FloatingPointError`` where an operation produces a
            NaN (an infinity): eagerly at the primitive, and for a jitted function by running
            it again op by op to find one (``fungrad.debug_nans``). Environment:
            ``FUNGRAD_DEBUG_NANS``, ``FUNGRAD_DEBUG_INFS``.
        numpy_rank_promotion: what ``fungrad.numpy`` does when it would broadcast arrays of
            different ranks (0-d aside) against each other: ``"allow"`` (the default),
            ``"warn"`` or ``"raise"``, as JAX's flag. Environment:
            ``FUNGRAD_NUMPY_RANK_PROMOTION``.
        numpy_dtype_promotion: ``"standard"`` (JAX's promotion lattice) or ``"strict"``
            (operands of different dtypes are a ``TypePromotionError``; Python scalars still
            combine with arrays of their kind).
        transfer_guard_host_to_device: what a transfer from the host to a device does:
            ``"allow"`` (the default), ``"log"`` or ``"disallow"`` implicit ones, or
            ``"log_explicit"``/``"disallow_explicit"`` explicit ones as well.
            ``update("transfer_guard", level)`` sets all three directions
            (``jax_transfer_guard``).
        transfer_guard_device_to_host: the same, for transfers from a device to the host.
        transfer_guard_device_to_device: the same, between devices.
        check_tracer_leaks: accepted as JAX's flag; fungrad checks for escaped tracers
            whatever its value (see ``fungrad.check_tracer_leaks``).
        enable_checks: accepted as JAX's flag (its internal invariant checks); fungrad has no
            jaxpr type checker to run, so it changes nothing.
        debug_key_reuse: check that no typed PRNG key is consumed twice (by a sampler,
            ``split`` or indexing), eagerly and in every function ``jit`` traces, raising
            ``KeyReuseError`` (``fungrad.transforms.key_reuse``). ``jit`` traces again when
            it changes. Default False: nothing is checked and nothing costs.
        allow_f16_reductions / thread_guard / softmax_custom_jvp: accepted as JAX's flags,
            with no effect: float16 sums are always allowed (as with JAX's default, True);
            fungrad runs no multi-process operation that a thread could reorder; its
            ``nn.softmax`` has one derivative rule, whatever the flag.
        legacy_prng_key: what ``fungrad.random`` does when given a raw ``uint32`` key (from
            ``PRNGKey``) rather than a typed one (from ``key``): ``"allow"`` (the default),
            ``"warn"`` (a ``UserWarning``) or ``"error"`` (a ``ValueError``), as JAX's flag:
            samplers, ``split``, ``fold_in``, ``key_data`` and ``key_impl`` check, while
            ``PRNGKey``, ``clone`` and ``wrap_key_data`` do not. Inside ``jit`` the check
            happens when the function is traced.
        default_prng_impl: the PRNG implementation of new keys: ``"threefry2x32"`` (the
            default and the only one fungrad implements); JAX's other names (``"rbg"``,
            ``"unsafe_rbg"``, ``"threefry4x32"``, ``"philox2x32"``, ``"philox4x32"``) raise
            ``NotImplementedError``.
        threefry_partitionable: True (JAX's default), the threefry scheme fungrad implements;
            False (JAX's older scheme, other bits for ``split`` and the samplers) raises
            ``NotImplementedError``.
        enable_custom_prng: JAX's deprecated upgrade flag (default False): when True,
            ``PRNGKey``, ``split`` and ``fold_in`` return typed keys, and a raw key given to
            a ``fungrad.random`` function warns (``FutureWarning``) while
            ``legacy_prng_key`` is ``"allow"``, as in JAX.
        default_matmul_precision: the ``precision`` of contractions given none
            (``jax_default_matmul_precision``, also ``fungrad.default_matmul_precision``):
            None (JAX's default), a precision name (``"float32"``/``"highest"``,
            ``"tensorfloat32"``/``"high"``, ``"bfloat16"``/``"default"``) or a dot
            algorithm's name (``"BF16_BF16_F32"``). Float32 contractions on a GPU use
            TensorFloat-32 below ``"highest"``, as JAX's; the CPU computes them in float32
            whatever the name, as XLA's CPU backend does, and runs the algorithms it supports.
        array_garbage_collection_guard: None (JAX's default: as ``"allow"``), ``"allow"``
            or ``"log"``: log an error (logger ``fungrad``) for each ``Array`` freed by the
            garbage collector, that is, held by a reference cycle, rather than by reference
            counting. ``"fatal"`` (JAX aborts the process) raises ``NotImplementedError``.
        jax2tf_associative_scan_reductions: accepted as JAX's flag (default False), with no
            effect, as are ``remove_size_one_mesh_axis_from_type`` (False) and
            ``auto_pcast`` (True): they choose jax2tf's lowering of cumulative reductions,
            whether size-1 mesh axes are dropped from sharding types, and whether ``pvary``
            is inserted to match varying mesh axes; fungrad has no jax2tf, no sharding in its
            types and no varying-axes types to match.
        default_device: where uncommitted arrays and computations go: a ``Device``, a
            platform (``"cpu"``, ``"gpu"``) or ``"platform:id"`` (``"cpu:1"``); None is the
            first device of the default backend. Environment: ``FUNGRAD_DEFAULT_DEVICE``.
        platforms: the platforms devices may come from, in order of preference (``"cpu"``,
            ``"cuda,cpu"``; as ``JAX_PLATFORMS``); None allows all. Environment:
            ``FUNGRAD_PLATFORMS``.
        num_cpu_devices: how many (virtual) CPU devices there are, as XLA's
            ``--xla_force_host_platform_device_count``. Environment:
            ``FUNGRAD_NUM_CPU_DEVICES`` (or that XLA flag in ``XLA_FLAGS``). Fixed once
            devices have been listed.
        user_contexts: the values of the contexts made by ``fungrad.make_user_context``, in
            the order they were made.
        trace_context: what ``jit`` caches on besides the arguments: ``default_device``, or
            ``(default_device, enable_x64, numpy_dtype_promotion, numpy_rank_promotion,
            debug_key_reuse, default_matmul_precision, *user_contexts)`` once one of those
            flags is off its default or a user context
            exists (read-only): a function traced with 32-bit types is traced again with
            x64 on, as JAX's cache does.
    """

    def __init__(self) -> None:
        self._hooks: dict[str, list[Callable[[], Any]]] = {
            "default_device": [self._refresh_trace_context], "enable_x64": [],
            "numpy_dtype_promotion": [], "no_execution": [], "debug_key_reuse": [],
            "array_garbage_collection_guard": []}
        self.enable_x64 = os.environ.get("FUNGRAD_ENABLE_X64", "0") not in ("0", "", "false")
        self.log_compiles = False
        self.disable_jit = False
        self.debug_nans = os.environ.get("FUNGRAD_DEBUG_NANS", "0") not in ("0", "", "false")
        self.debug_infs = os.environ.get("FUNGRAD_DEBUG_INFS", "0") not in ("0", "", "false")
        self.numpy_rank_promotion = "allow"
        self.update("numpy_rank_promotion",
                    os.environ.get("FUNGRAD_NUMPY_RANK_PROMOTION", "allow"))
        self.numpy_dtype_promotion = "standard"
        self.transfer_guard_host_to_device = "allow"
        self.transfer_guard_device_to_host = "allow"
        self.transfer_guard_device_to_device = "allow"
        self.check_tracer_leaks = False
        self.explain_cache_misses = False
        self.no_tracing = False
        self.no_execution = False
        self.enable_checks = False
        self.debug_key_reuse = False
        self.allow_f16_reductions = True
        self.thread_guard = False
        self.softmax_custom_jvp = False
        self.legacy_prng_key = "allow"
        self.default_prng_impl = "threefry2x32"
        self.threefry_partitionable = True
        self.enable_custom_prng = False
        self.array_garbage_collection_guard: str | None = None
        self.default_matmul_precision: str | None = None
        self.jax2tf_associative_scan_reductions = False
        self.remove_size_one_mesh_axis_from_type = False
        self.auto_pcast = True
        self.default_device: Any = os.environ.get("FUNGRAD_DEFAULT_DEVICE") or None
        self.platforms: str | None = os.environ.get("FUNGRAD_PLATFORMS") or None
        self.num_cpu_devices = _env_num_cpu_devices()
        self.devices_listed = False  # set by the backends once the device list is fixed
        self.user_contexts: list[Any] = []
        self._refresh_trace_context()
        for flag in _TRACING_FLAGS:  # set above without hooks, before the context existed
            self._hooks.setdefault(flag, []).append(self._refresh_trace_context)

    def on_change(self, flag: str, hook: Callable[[], Any]) -> None:
        """Call ``hook()`` after every change of ``flag`` (``default_device``,
        ``enable_x64``, ``numpy_dtype_promotion``, ``no_execution`` or
        ``debug_key_reuse``): the modules below
        that derive state from a flag (the backends, the dtype tables, the eager trace) keep
        it up to date this way, without this module importing them."""
        self._hooks[flag].append(hook)

    def update(self, name: str, value: Any) -> None:
        """Set a flag. Accepts JAX's ``jax_`` prefixed names too."""
        key = name[4:] if name.startswith("jax_") else name
        if key == "transfer_guard":
            for direction in TRANSFER_DIRECTIONS:
                self.update(f"transfer_guard_{direction}", value)
            return
        if key in _DEVICE_FLAGS:
            self._update_device_flag(name, key, value)
            return
        if key in _CHOICE_FLAGS:
            if key == "legacy_prng_key" and not isinstance(value, str):  # as JAX's enum flag
                raise TypeError(f"config.update: {name} must be a string, one of 'allow', "
                                f"'warn', 'error'; got {value!r} of type {type(value).__name__}")
            if value not in _CHOICE_FLAGS[key] or (value is not None
                                                   and not isinstance(value, str)):
                raise ValueError(f"config.update: {name} must be one of "
                                 f"{', '.join(map(repr, _CHOICE_FLAGS[key]))}; got {value!r}")
            value = value if value is None else str.__str__(value)  # a str enum: its value
        elif key in _BOOL_FLAGS:
            value = bool(value)
        else:
            raise ValueError(f"config.update: unknown flag {name!r}")
        why = _UNIMPLEMENTED[key](value) if key in _UNIMPLEMENTED else None
        if why:
            raise NotImplementedError(f"config.update: {name}={value!r} is not supported: "
                                      f"{why}")
        setattr(self, key, value)
        for hook in self._hooks.get(key, ()):
            hook()

    def add_user_context(self, value: Any) -> int:
        """Append a user context holding ``value`` (``fungrad.make_user_context``); returns
        its index in ``user_contexts``."""
        self.user_contexts.append(_hashable(value))
        self._refresh_trace_context()
        return len(self.user_contexts) - 1

    def set_user_context(self, index: int, value: Any) -> None:
        """Give the user context at ``index`` the (hashable) ``value``."""
        self.user_contexts[index] = _hashable(value)
        self._refresh_trace_context()

    def _refresh_trace_context(self) -> None:
        """``default_device`` alone while the flags that change what a trace gives are at
        their defaults (one hash of a cached key stays cheap), else a tuple with them."""
        flags = tuple(getattr(self, f) for f in _TRACING_FLAGS)
        if flags == _TRACING_DEFAULTS and not self.user_contexts:
            self.trace_context = self.default_device
        else:
            self.trace_context = (self.default_device, *flags, *self.user_contexts)

    def _update_device_flag(self, name: str, key: str, value: Any) -> None:
        """The device flags: the device list is fixed once listed, as JAX's backends are
        once initialised; the default device may change at any time."""
        if key == "num_cpu_devices":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"config.update: {name} must be a positive integer, "
                                 f"got {value!r}")
        if key != "default_device" and self.devices_listed:
            raise RuntimeError(f"config.update: {name} must be set before the devices are "
                               "first listed (fungrad.devices(), device_put, an array's .device)")
        previous = getattr(self, key)
        setattr(self, key, value)
        if key == "default_device":
            try:
                for hook in self._hooks[key]:
                    hook()
            except Exception:  # an unknown device: keep the previous one, report the error
                self.default_device = previous
                for hook in self._hooks[key]:
                    hook()
                raise


config = Config()
