"""``pure_callback``: call a Python function on concrete host arrays from inside
transformed code (``jax.pure_callback``).

``pure_callback_p`` stages the call (under ``jit`` it runs every time the compiled code
runs); its results have the shapes and dtypes the caller declared, checked at run time.
It has no derivative (wrap it in ``custom_jvp``/``custom_vjp``), as in JAX. Under ``vmap``
its ``vmap_method`` decides: ``"sequential"`` (and ``"sequential_unrolled"``) call the
function once per batch member through ``lax.map``; ``"expand_dims"`` calls it once with
the batch axis first and a size-1 axis on unbatched arguments; ``"broadcast_all"``
broadcasts those to the batch size; ``"legacy_vectorized"`` moves batch axes first and
leaves unbatched arguments as they are; ``None`` (the default) refuses.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.lowering import def_compiler_traits
from fungrad.interpreters import ad, batching
from fungrad.lax.control_flow import map as lax_map
from fungrad.lax.shapes import broadcast_in_dim

__all__ = ["pure_callback", "pure_callback_p"]

_VMAP_METHODS = ("sequential", "sequential_unrolled", "expand_dims", "broadcast_all",
                 "legacy_vectorized", None)


class _FlatCallback:
    """The user's function on flat host arrays (params hash by identity)."""

    def __init__(self, fun: Callable, in_tree: Any) -> None:
        self.fun, self.in_tree = fun, in_tree

    def __call__(self, *flat: Any) -> list:
        args, kwargs = tree_util.unflatten(self.in_tree, flat)
        return tree_util.leaves(self.fun(*args, **kwargs))


def _to_host(x: Any) -> Any:
    return x if isinstance(x, (np.ndarray, np.generic)) else (
        x.get() if hasattr(x, "get") else np.asarray(x))


def _pure_callback_impl(xp, *args, callback, result_avals, vmap_method):
    outs = callback(*[_to_host(a) for a in args])
    if len(outs) != len(result_avals):
        raise TypeError(f"pure_callback: the callback returned {len(outs)} arrays, "
                        f"result_shape_dtypes declares {len(result_avals)}")
    results = []
    for out, aval in zip(outs, result_avals):
        out = np.asarray(out)
        if out.shape != aval.shape or out.dtype != aval.dtype:
            raise RuntimeError(f"pure_callback: the callback returned {out.dtype}{list(out.shape)}"
                               f" where result_shape_dtypes declares {aval.str_short()}")
        results.append(xp.asarray(out))
    return results


def _pure_callback_abstract(*avals, callback, result_avals, vmap_method):
    return list(result_avals)


def _pure_callback_jvp(primals, tangents, **params):
    raise ValueError("Pure callbacks do not support JVP. Please use `fungrad.custom_jvp` to "
                     "use callbacks while taking gradients.")


def _pure_callback_batch(axis_size, vals, dims, *, callback, result_avals, vmap_method):
    args = [v if d is None else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    batched_avals = tuple(ShapedArray((axis_size,) + a.shape, a.dtype) for a in result_avals)
    if vmap_method in ("sequential", "sequential_unrolled"):
        flags = [d is not None for d in dims]

        def one(xs):
            it = iter(xs)
            merged = [next(it) if f else a for a, f in zip(args, flags)]
            return pure_callback_p.bind(*merged, callback=callback, result_avals=result_avals,
                                        vmap_method=vmap_method)
        return lax_map(one, [a for a, f in zip(args, flags) if f]), [0] * len(result_avals)
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
    outs = pure_callback_p.bind(*args, callback=callback, result_avals=batched_avals,
                                vmap_method=vmap_method)
    return outs, [0] * len(outs)


pure_callback_p = Primitive("pure_callback", multiple_results=True)
pure_callback_p.def_impl(_pure_callback_impl)
pure_callback_p.def_abstract_eval(_pure_callback_abstract)
pure_callback_p.weak_type_rule = lambda weaks, **params: False
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
    flat, in_tree = tree_util.flatten((args, kwargs))
    shape_dtypes, out_tree = tree_util.flatten(result_shape_dtypes)
    result_avals = []
    for s in shape_dtypes:
        dt = np.dtype(s.dtype)
        if dtypes.canonicalize_dtype(dt) != dt:
            raise ValueError("pure_callback: result_shape_dtypes cannot specify 64-bit types "
                             "when enable_x64 is disabled")
        result_avals.append(ShapedArray(tuple(s.shape), dt))
    outs = pure_callback_p.bind(*flat, callback=_FlatCallback(callback, in_tree),
                                result_avals=tuple(result_avals), vmap_method=vmap_method)
    return tree_util.unflatten(out_tree, outs)
