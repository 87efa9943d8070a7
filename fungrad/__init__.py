"""fungrad: a JAX-style functional deep learning library on NumPy (and CuPy).

Pure functions over pytrees of immutable arrays are traced into a small IR;
``grad``, ``vmap``, ``jit`` and friends are interpreters over primitives and
compose in any order.
"""
import importlib as _importlib

from fungrad._core import eval as _eval  # noqa: F401  (installs the eager trace)
from fungrad._core.array import Array, Shard, device_put
from fungrad._core.core import ClosedJaxpr, Jaxpr, ShapedArray
from fungrad._core.dtypes import float0
from fungrad._core.ref import Ref, empty_ref, free_ref, freeze, new_ref
from fungrad.backends import devices
from fungrad.config import config
from fungrad import tree, lax, numpy  # noqa: E402
from fungrad import tree_util  # noqa: E402
from fungrad import flatten_util  # noqa: E402
from fungrad.transforms.api import (ShapeDtypeStruct, eval_shape, grad, hessian, jacfwd, jacobian,
                                    jacrev, jvp, linearize, make_jaxpr, value_and_grad, vjp, vmap)
from fungrad.transforms.custom_derivatives import custom_jvp, custom_vjp
from fungrad.transforms.checkpoint import checkpoint, checkpoint_policies, remat
from fungrad.transforms.jit import disable_jit, jit
from fungrad.lax.ad_util import stop_gradient
from fungrad.callbacks import pure_callback  # noqa: E402
from fungrad.runtime import (Device, allow_f16_reductions, array_garbage_collection_guard,  # noqa: E402
                             auto_pcast, block_until_ready, check_tracer_leaks, checking_leaks,
                             clear_caches, copy_to_host_async, debug_infs, debug_key_reuse,
                             debug_nans, default_backend, default_device, default_matmul_precision,
                             default_prng_impl, device_count, device_get, effects_barrier,
                             enable_checks, enable_custom_prng, enable_x64,
                             ensure_compile_time_eval, explain_cache_misses, fwd_and_bwd,
                             jax2tf_associative_scan_reductions, legacy_prng_key, live_arrays,
                             local_device_count, local_devices, log_compiles,
                             make_array_from_callback, make_array_from_process_local_data,
                             make_array_from_single_device_arrays, make_user_context, named_call,
                             named_scope, no_execution, no_tracing, numpy_dtype_promotion,
                             numpy_rank_promotion, print_environment_info,
                             remove_size_one_mesh_axis_from_type, softmax_custom_jvp, thread_guard,
                             threefry_partitionable, transfer_guard,
                             transfer_guard_device_to_device, transfer_guard_device_to_host,
                             transfer_guard_host_to_device, typeof)
from fungrad.transforms.closures import closure_convert, custom_gradient, linear_transpose  # noqa: E402,E501

from fungrad import errors  # noqa: E402
from fungrad._core.namespace import public_dir as _public_dir  # noqa: E402

from fungrad.version import __version__ as __version__  # noqa: E402  (re-exported)

# The public API: JAX's names (each behaves as its namesake in ``jax``), then the types
# and libraries fungrad adds (``ShapedArray``, ``Jaxpr``, ``nn``, ``optim``, ``train``).
__all__ = [
    # transformations
    "grad", "value_and_grad", "vjp", "jvp", "linearize", "linear_transpose", "vmap", "jacfwd",
    "jacrev", "jacobian", "hessian", "jit", "disable_jit", "make_jaxpr", "eval_shape",
    "custom_jvp", "custom_vjp", "custom_gradient", "closure_convert", "checkpoint", "remat",
    "checkpoint_policies", "stop_gradient", "pure_callback", "named_call", "named_scope",
    "ensure_compile_time_eval", "fwd_and_bwd",
    # arrays, devices and configuration
    "Array", "Shard", "ShapeDtypeStruct", "typeof", "Ref", "new_ref", "empty_ref", "free_ref",
    "freeze", "device_put", "device_get", "devices",
    "local_devices", "device_count", "local_device_count", "default_backend", "default_device",
    "block_until_ready", "clear_caches", "print_environment_info", "config", "enable_x64",
    "log_compiles", "default_matmul_precision", "debug_nans", "debug_infs",
    "numpy_rank_promotion", "numpy_dtype_promotion", "transfer_guard",
    "transfer_guard_host_to_device", "transfer_guard_device_to_host",
    "transfer_guard_device_to_device", "check_tracer_leaks", "checking_leaks", "Device",
    "live_arrays", "copy_to_host_async", "effects_barrier", "make_array_from_callback",
    "make_array_from_single_device_arrays", "make_array_from_process_local_data",
    "explain_cache_misses", "no_tracing", "no_execution", "enable_checks", "debug_key_reuse",
    "allow_f16_reductions", "thread_guard", "softmax_custom_jvp", "make_user_context",
    "legacy_prng_key", "default_prng_impl", "threefry_partitionable", "enable_custom_prng",
    "array_garbage_collection_guard", "jax2tf_associative_scan_reductions",
    "remove_size_one_mesh_axis_from_type", "auto_pcast",
    "process_index", "process_count", "process_indices", "host_id", "host_count", "host_ids",
    # libraries
    "numpy", "lax", "random", "nn", "scipy", "image", "ops", "tree", "tree_util", "flatten_util",
    "debug", "errors", "experimental", "test_util", "dtypes", "custom_derivatives",
    "ad_checkpoint", "custom_batching", "float0", "sharding", "typing", "stages", "profiler",
    "dlpack", "distributed", "monitoring", "example_libraries", "memory", "ref", "export", "pmap",
    "shard_map",
    "smap", "P",
    "NamedSharding", "make_mesh", "set_mesh", "reshard",
    # fungrad's own
    "ShapedArray", "Jaxpr", "ClosedJaxpr", "optim", "train"]
__dir__ = _public_dir(__all__)

# The libraries on top of the core load on first use (``fungrad.nn.relu``, ``from fungrad
# import optim``), as SciPy loads its subpackages: together they are about a fifth of
# ``import fungrad`` and a program using ``jit`` and ``fungrad.numpy`` alone never needs them.
_LIBRARIES = ("random", "nn", "scipy", "image", "ops", "debug", "experimental", "test_util",
              "optim", "train", "dtypes", "custom_derivatives", "ad_checkpoint", "custom_batching",
              "sharding", "typing", "stages", "profiler", "dlpack", "distributed",
              "monitoring", "example_libraries", "memory", "ref", "export")
# Names that load with their module on first use: ``fungrad.pmap``, ``fungrad.P``.
_FROM_MODULES = {"pmap": "transforms.pmap", "shard_map": "transforms.shard_map",
                 "P": "sharding", "NamedSharding": "sharding", "make_mesh": "sharding",
                 "set_mesh": "sharding", "reshard": "sharding",
                 "smap": "transforms.shard_map"}
# ``jax.process_index()``/``process_count()``: the job's ranks, from ``fungrad.distributed``
# (which loads mpi4py, so only when asked).
_FROM_DISTRIBUTED = ("process_index", "process_count", "process_indices", "host_id",
                     "host_count", "host_ids")


def __getattr__(name: str):
    """``fungrad.<library>`` (and ``fungrad.pmap``, ``process_index``, ...): import the
    library or the function's module on first access (PEP 562)."""
    if name in _LIBRARIES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _FROM_MODULES:
        return getattr(_importlib.import_module(f"{__name__}.{_FROM_MODULES[name]}"), name)
    if name in _FROM_DISTRIBUTED:
        return getattr(_importlib.import_module(f"{__name__}.distributed"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
