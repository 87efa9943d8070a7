"""Host callbacks: call a Python function on concrete host arrays from inside transformed
code. ``pure_callback`` (``jax.pure_callback``) is for pure functions; ``io_callback``
(``jax.experimental.io_callback``) for functions with side effects.

Each stages a primitive (``pure_callback_p``, ``io_callback_p``) whose implementation runs
the function every time the computation runs (under ``jit``, every time the compiled code
runs); the results must have the shapes and dtypes the caller declared, checked at run
time. Neither has a derivative (wrap the callback in ``custom_jvp``/``custom_vjp``), as in
JAX.

``io_callback_p`` is effectful (``partial_eval.register_effectful``): dead-code
elimination never removes it, even when its results are unused, and the compiler never
merges, folds or moves it. Calls run in program order whether or not ``ordered=True``;
under ``vmap`` an unordered one runs once per batch member, an ordered one refuses (as in
JAX: the order of the members' calls would be unspecified).

Under ``vmap`` a ``pure_callback``'s ``vmap_method`` decides: ``"sequential"`` (and
``"sequential_unrolled"``) call the function once per batch member through ``lax.map``;
``"expand_dims"`` calls it once with the batch axis first and a size-1 axis on unbatched
arguments; ``"broadcast_all"`` broadcasts those to the batch size; ``"legacy_vectorized"``
moves batch axes first and leaves unbatched arguments as they are; ``None`` (the default)
refuses.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.lowering import def_compiler_traits
from fungrad.errors import JaxRuntimeError
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.control_flow import map as lax_map
from fungrad.lax.shapes import broadcast_in_dim

__all__ = ["io_callback", "io_callback_p", "pure_callback", "pure_callback_p"]

_VMAP_METHODS = ("sequential", "sequential_unrolled", "expand_dims", "broadcast_all",
                 "legacy_vectorized", None)


# --------------------------------------------------------------------------- shared by both

class _FlatCallback:
    """The user's function on flat host arrays (params hash by identity)."""

    def __init__(self, fun: Callable, in_tree: Any) -> None:
        self.fun, self.in_tree = fun, in_tree

    def __call__(self, *flat: Any) -> list:
        args, kwargs = tree_util.unflatten(self.in_tree, flat)
        return tree_util.leaves(self.fun(*args, **kwargs))


def to_host(x: Any) -> Any:
    """A raw buffer as a host (NumPy) array: a CuPy array is copied from its GPU."""
    return x if isinstance(x, (np.ndarray, np.generic)) else (
        x.get() if hasattr(x, "get") else np.asarray(x))


def _call_on_host(api: str, xp: Any, args: Sequence[Any], callback: _FlatCallback,
                  result_avals: Sequence[ShapedArray]) -> list:
    """Run ``callback`` on host copies of ``args`` and return copies of its results as
    ``xp`` arrays (the callback may keep and later change what it returned), checked
    against ``result_avals``. As in JAX, a result's dtype is canonicalised first (a Python
    float or a float64 array is a float32 result while ``enable_x64`` is off)."""
    outs = callback(*[to_host(a) for a in args])
    if len(outs) != len(result_avals):
        raise JaxRuntimeError(f"{api}: the callback returned {len(outs)} arrays, "
                              f"result_shape_dtypes declares {len(result_avals)}")
    results = []
    for i, (out, aval) in enumerate(zip(outs, result_avals)):
        out = np.asarray(out)
        dtype = dtypes.canonicalize_dtype(out.dtype)
        if out.shape != aval.shape or dtype != aval.dtype:
            raise JaxRuntimeError(
                f"{api}: the callback's result #{i} is {dtype}{list(out.shape)} where "
                f"result_shape_dtypes declares {aval.str_short()}")
        results.append(xp.array(out, dtype))
    return results


def _callback_abstract_eval(*avals: ShapedArray, result_avals: tuple, **params: Any) -> list:
    return list(result_avals)


def _never_weak(weak_flags: Sequence[bool], **params: Any) -> bool:
    return False  # results are of the declared dtypes


def _sequential(prim: Primitive, args: Sequence[Any], dims: Sequence[Any], **params: Any
                ) -> tuple[list, list]:
    """Batch ``prim`` by calling it once per batch member, through ``lax.map`` over the
    batched operands (``args`` with their batch axes first)."""
    flags = [d is not None for d in dims]

    def one(xs: list) -> list:
        it = iter(xs)
        return prim.bind(*[next(it) if f else a for a, f in zip(args, flags)], **params)
    outs = lax_map(one, [a for a, f in zip(args, flags) if f])
    return outs, [0] * len(outs)


def _bind(prim: Primitive, api: str, callback: Callable, result_shape_dtypes: Any,
          args: tuple, kwargs: dict, **params: Any) -> Any:
    """Flatten the arguments, check the declared results and bind ``prim``."""
    flat, in_tree = tree_util.flatten((args, kwargs))
    shape_dtypes, out_tree = tree_util.flatten(result_shape_dtypes)
    result_avals = []
    for s in shape_dtypes:
        dt = np.dtype(s.dtype)
        if dtypes.canonicalize_dtype(dt) != dt:
            raise ValueError(f"{api}: result_shape_dtypes cannot specify 64-bit types when "
                             "enable_x64 is disabled")
        result_avals.append(ShapedArray(tuple(s.shape), dt))
    outs = prim.bind(*flat, callback=_FlatCallback(callback, in_tree),
                     result_avals=tuple(result_avals), **params)
    return tree_util.unflatten(out_tree, outs)


# --------------------------------------------------------------------------- pure_callback

def _pure_callback_impl(xp, *args, callback, result_avals, vmap_method):
    return _call_on_host("pure_callback", xp, args, callback, result_avals)


def _pure_callback_jvp(primals, tangents, **params):
    raise ValueError("Pure callbacks do not support JVP. Please use `fungrad.custom_jvp` to "
                     "use callbacks while taking gradients.")


def _pure_callback_batch(axis_size, vals, dims, *, callback, result_avals, vmap_method):
    args = [v if d is None else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    if vmap_method in ("sequential", "sequential_unrolled"):
        return _sequential(pure_callback_p, args, dims, callback=callback,
                           result_avals=result_avals, vmap_method=vmap_method)
    if vmap_method in ("expand_dims", "broadcast_all"):
        size = axis_size if vmap_method == "broadcast_all" else 1
        args = [a if d is not None else
                broadcast_in_dim(a, (size,) + core.get_aval(a).shape,
                                 tuple(range(1, core.get_aval(a).ndim + 1)))
                for a, d in zip(args, dims)]
    elif vmap_method != "legacy_vectorized":
        raise NotImplementedError(
            "vmap is only supported for pure_callback when vmap_method is one of "
            "'sequential', 'sequential_unrolled', 'expand_dims', 'broadcast_all' or "
            "'legacy_vectorized'")
    batched_avals = tuple(ShapedArray((axis_size,) + a.shape, a.dtype) for a in result_avals)
    outs = pure_callback_p.bind(*args, callback=callback, result_avals=batched_avals,
                                vmap_method=vmap_method)
    return outs, [0] * len(outs)


pure_callback_p = Primitive("pure_callback", multiple_results=True)
pure_callback_p.def_impl(_pure_callback_impl)
pure_callback_p.def_abstract_eval(_callback_abstract_eval)
pure_callback_p.weak_type_rule = _never_weak
ad.def_jvp(pure_callback_p, _pure_callback_jvp)
batching.def_batch(pure_callback_p, _pure_callback_batch)
def_compiler_traits(pure_callback_p, batched_as_loop=True)  # vmap_method="sequential"


def pure_callback(callback: Callable, result_shape_dtypes: Any, *args: Any,
                  sharding: Any = None, vmap_method: str | None = None, **kwargs: Any) -> Any:
    """Call ``callback(*args, **kwargs)`` on host NumPy arrays; it must be pure and return
    arrays of ``result_shape_dtypes`` (a pytree of objects with ``shape`` and ``dtype``).

    Examples:
        >>> import numpy as np
        >>> import fungrad, fungrad.numpy as jnp
        >>> def host_sin(x):
        ...     return np.sin(x)
        >>> f = fungrad.jit(lambda x: fungrad.pure_callback(
        ...     host_sin, fungrad.ShapeDtypeStruct(x.shape, x.dtype), x))
        >>> f(jnp.zeros(2))
        Array([0., 0.], dtype=float32)
    """
    del sharding  # one device: every sharding is the single-device one
    if vmap_method not in _VMAP_METHODS:
        raise ValueError(f"pure_callback: vmap_method must be one of {list(_VMAP_METHODS)}, "
                         f"got {vmap_method!r}")
    return _bind(pure_callback_p, "pure_callback", callback, result_shape_dtypes, args, kwargs,
                 vmap_method=vmap_method)


# --------------------------------------------------------------------------- io_callback

def _io_callback_impl(xp, *args, callback, result_avals, ordered):
    return _call_on_host("io_callback", xp, args, callback, result_avals)


def _io_callback_jvp(primals, tangents, **params):
    raise ValueError("IO callbacks do not support JVP.")


def _io_callback_batch(axis_size, vals, dims, *, callback, result_avals, ordered):
    if ordered:
        raise ValueError("Cannot `vmap` ordered IO callback.")
    args = [v if d is None else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    return _sequential(io_callback_p, args, dims, callback=callback, result_avals=result_avals,
                       ordered=False)


io_callback_p = Primitive("io_callback", multiple_results=True)
io_callback_p.def_impl(_io_callback_impl)
io_callback_p.def_abstract_eval(_callback_abstract_eval)
io_callback_p.weak_type_rule = _never_weak
ad.def_jvp(io_callback_p, _io_callback_jvp)
batching.def_batch(io_callback_p, _io_callback_batch)
pe.register_effectful(io_callback_p)
def_compiler_traits(io_callback_p, batched_as_loop=True)


def io_callback(callback: Callable, result_shape_dtypes: Any, *args: Any, sharding: Any = None,
                ordered: bool = False, **kwargs: Any) -> Any:
    """Call ``callback(*args, **kwargs)``, a function with side effects, on host NumPy
    arrays every time the computation runs (``jax.experimental.io_callback``).

    Unlike ``pure_callback``, the call is never removed as dead code (its results may go
    unused: it runs for its effect), never merged with an identical call and never
    evaluated at compile time. Inside ``scan``, ``while_loop`` and ``cond`` it runs as many
    times as the body or branch runs.

    Args:
        callback: the host function; array arguments arrive as NumPy arrays, other leaves
            of ``args``/``kwargs`` as they are.
        result_shape_dtypes: a pytree of objects with ``shape`` and ``dtype``
            (``ShapeDtypeStruct``) that the callback's results must match; ``None`` or
            ``()`` for a callback run only for its effect.
        *args: the callback's positional arguments (pytrees of arrays).
        sharding: accepted for JAX's signature (one device runs every callback).
        ordered: keep the order of the calls with respect to other ordered calls (they run
            in program order here anyway); an ordered callback cannot be ``vmap``-ped.
        **kwargs: the callback's keyword arguments.

    Returns:
        The callback's results, as arrays, in the structure of ``result_shape_dtypes``.

    Raises:
        ValueError: the callback is differentiated (JVP, ``grad``), an ordered one is
            ``vmap``-ped, or ``result_shape_dtypes`` names a 64-bit dtype while
            ``enable_x64`` is off.
        fungrad.errors.JaxRuntimeError: the callback's results do not match
            ``result_shape_dtypes``.

    Examples:
        >>> import numpy as np
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad.experimental import io_callback
        >>> seen = []
        >>> def log(x):
        ...     seen.append(float(x.sum()))
        >>> @fungrad.jit
        ... def f(x):
        ...     io_callback(log, None, x, ordered=True)
        ...     return x * 2
        >>> _ = f(jnp.ones(3)); _ = f(jnp.ones(3))
        >>> seen
        [3.0, 3.0]
    """
    del sharding  # one device: every sharding is the single-device one
    return _bind(io_callback_p, "io_callback", callback, result_shape_dtypes, args, kwargs,
                 ordered=bool(ordered))
