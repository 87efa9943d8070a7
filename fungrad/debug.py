"""Run-time debugging inside transformed functions: ``debug.print`` and ``debug.callback``.

Python side effects inside ``jit`` happen once, while tracing. These functions
stage an effectful primitive, ``debug_callback_p``, that calls back into Python
every time the compiled code runs, with the concrete values as host NumPy
arrays. The primitive is never removed as dead code; under ``vmap`` the
callback runs once per batch member (as in JAX); under ``grad``/``jvp`` it sees
the primal values only.
"""
from __future__ import annotations

import builtins
from typing import Any, Callable

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.array import Array
from fungrad._core.core import Primitive
from fungrad._core.namespace import public_dir
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax._prim import as_operand

__all__ = ["print", "callback", "debug_callback_p"]
__dir__ = public_dir(__all__)


def _to_host(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic)):
        return x
    return x.get() if hasattr(x, "get") else np.asarray(x)


def _run(fn: Callable, vals: list, batch: tuple) -> None:
    """Call ``fn`` on ``vals``, once per member of each batch level (outermost first)."""
    if not batch:
        fn(*vals)
        return
    (flags, size), inner = batch[0], batch[1:]
    for i in range(size):
        _run(fn, [v[i] if f else v for v, f in zip(vals, flags)], inner)


def _debug_callback_impl(xp, *args, callback, batch):
    _run(callback, [_to_host(a) for a in args], batch)
    return []


def _debug_callback_jvp(primals, tangents, *, callback, batch):
    debug_callback_p.bind(*primals, callback=callback, batch=batch)
    return [], []


def _debug_callback_batch(axis_size, vals, dims, *, callback, batch):
    vals = [batching.moveaxis(v, d, 0) if d else v for v, d in zip(vals, dims)]
    level = (tuple(d is not None for d in dims), axis_size)
    debug_callback_p.bind(*vals, callback=callback, batch=(level,) + batch)
    return [], []


debug_callback_p = Primitive("debug_callback", multiple_results=True)
debug_callback_p.def_impl(_debug_callback_impl)
debug_callback_p.def_abstract_eval(lambda *avals, callback, batch: [])
ad.def_jvp(debug_callback_p, _debug_callback_jvp)
batching.def_batch(debug_callback_p, _debug_callback_batch)
pe.register_effectful(debug_callback_p)


def callback(fn: Callable[..., Any], *args: Any, ordered: bool = False, **kwargs: Any) -> None:
    """Call ``fn(*args, **kwargs)`` when the computation runs, with concrete values.

    Array leaves of ``args``/``kwargs`` arrive as host NumPy arrays; other leaves
    (strings, None, ...) are passed through unchanged. ``fn``'s return value is
    ignored (as ``jax.debug.callback``). Callbacks always run in program order, so
    ``ordered`` is accepted for compatibility and has no effect.
    """
    leaves, treedef = tree_util.flatten((args, kwargs))
    is_array = [isinstance(x, (Array, core.Tracer, np.ndarray, np.generic, int, float, complex))
                for x in leaves]
    arrays = [x for x, a in zip(leaves, is_array) if a]
    statics = [x for x, a in zip(leaves, is_array) if not a]

    def flat_callback(*host: Any) -> None:
        it_h, it_s = iter(host), iter(statics)
        full = [next(it_h) if a else next(it_s) for a in is_array]
        call_args, call_kwargs = tree_util.unflatten(treedef, full)
        fn(*call_args, **call_kwargs)
    debug_callback_p.bind(*[as_operand(x) for x in arrays], callback=flat_callback, batch=())


def print(fmt: str, *args: Any, ordered: bool = False, **kwargs: Any) -> None:  # noqa: A001
    """Print ``fmt.format(*args, **kwargs)`` when the computation runs (``jax.debug.print``).

    Example:
      >>> import fungrad, fungrad.numpy as jnp
      >>> @fungrad.jit
      ... def f(x):
      ...     fungrad.debug.print("x = {}", x)
      ...     return x * 2
      >>> _ = f(jnp.arange(3))
      x = [0 1 2]
    """
    callback(lambda *a, **k: builtins.print(fmt.format(*a, **k)), *args, ordered=ordered, **kwargs)
