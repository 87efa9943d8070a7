"""Run-time debugging inside transformed functions: ``debug.print``, ``debug.log``,
``debug.breakpoint`` and ``debug.callback``; and where arrays live
(``inspect_array_sharding``, ``visualize_array_sharding``).

Python side effects inside ``jit`` happen once, while tracing. These functions
stage an effectful primitive, ``debug_callback_p``, that calls back into Python
every time the compiled code runs, with the concrete values as host NumPy
arrays. The primitive is never removed as dead code; under ``vmap`` the
callback runs once per batch member (as in JAX); under ``grad``/``jvp`` it sees
the primal values only.
"""
from __future__ import annotations

import builtins
import copy
import functools
import logging
import pdb
import sys
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import backends
from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.array import Array
from fungrad._core.core import Primitive
from fungrad._core.namespace import public_dir
from fungrad.callbacks import to_host
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax._prim import as_operand

__all__ = ["print", "log", "breakpoint", "callback", "debug_callback_p",
           "inspect_array_sharding", "visualize_array_sharding", "visualize_sharding"]
__dir__ = public_dir(__all__)


def _run(fn: Callable, vals: list, batch: tuple) -> None:
    """Call ``fn`` on ``vals``, once per member of each batch level (outermost first)."""
    if not batch:
        fn(*vals)
        return
    (flags, size), inner = batch[0], batch[1:]
    for i in range(size):
        _run(fn, [v[i] if f else v for v, f in zip(vals, flags)], inner)


def _debug_callback_impl(xp, *args, callback, batch):
    _run(callback, [to_host(a) for a in args], batch)
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


logger = logging.getLogger("fungrad.debug")


def log(fmt: str | None = None, *args: Any, ordered: bool = False, **kwargs: Any
        ) -> Callable[..., None] | None:
    """Log ``fmt.format(*args, **kwargs)`` at INFO level to the ``"fungrad.debug"`` logger
    when the computation runs (``jax.debug.log``), as from the line that called ``log``.

    Without ``fmt`` it returns the function to call with it (JAX's two-call form,
    ``debug.log(ordered=True)("x = {}", x)``).

    Example:
      >>> import logging, sys, fungrad, fungrad.numpy as jnp
      >>> log = logging.getLogger("fungrad.debug")
      >>> handler = logging.StreamHandler(sys.stdout)
      >>> log.addHandler(handler); log.setLevel(logging.INFO)
      >>> _ = fungrad.jit(lambda x: (fungrad.debug.log("x = {}", x), x)[1])(jnp.arange(3))
      x = [0 1 2]
      >>> log.removeHandler(handler); log.setLevel(logging.NOTSET)
    """
    if fmt is None:
        return functools.partial(log, ordered=ordered)
    caller = sys._getframe(1)
    record = logger.makeRecord(logger.name, logging.INFO, caller.f_code.co_filename,
                               caller.f_lineno, "", (), None)

    def emit(*values: Any, **named: Any) -> None:
        if logger.isEnabledFor(logging.INFO):
            message = copy.copy(record)
            message.msg = fmt.format(*values, **named)
            logger.handle(message)
    callback(emit, *args, ordered=ordered, **kwargs)
    return None


def breakpoint(*, backend: str | None = None, filter_frames: bool = True,  # noqa: A001
               num_frames: int | None = None, ordered: bool = False, token: Any = None,
               **kwargs: Any) -> Any:
    """Stop in the Python debugger (pdb) when the computation reaches this line, with the
    calling function's variables holding their concrete values (``jax.debug.breakpoint``).

    Eagerly it stops at once; inside ``jit`` it stops every time the compiled code runs
    (once per batch member under ``vmap``), the traced variables as host NumPy arrays.
    pdb's commands inspect them (``p x``, ``pp``, ``l``) and ``c`` goes on. The debugger
    sees the calling frame only (JAX's shows the frames above it too); ``backend``,
    ``filter_frames``, ``num_frames`` and ``kwargs`` are accepted for JAX's signature.

    Returns:
        ``token`` unchanged (JAX orders the stop after the computation of ``token``;
        fungrad runs callbacks in program order anyway).

    Raises:
        ValueError: both ``ordered`` and ``token`` are given.
    """
    if token is not None and ordered:
        raise ValueError("`ordered` and `token` are mutually exclusive arguments.")
    caller = sys._getframe(1)
    where = compile("\n" * (caller.f_lineno - 1) + "pass", caller.f_code.co_filename, "exec")
    names = caller.f_globals
    variables = dict(caller.f_locals)
    del caller
    arrays = {k: v for k, v in variables.items() if isinstance(v, (Array, core.Tracer))}
    others = {k: v for k, v in variables.items() if k not in arrays}

    def stop(values: dict) -> None:
        pdb.Pdb().run(where, names, {**others, **values})
    callback(stop, arrays, ordered=ordered)
    return token


def _sharding_of(x: Any) -> Any:
    """The sharding of an array; a traced value's is the default device's (where a jitted
    function runs unless its arguments are committed elsewhere)."""
    if isinstance(x, Array):
        return x.sharding
    return backends.SingleDeviceSharding(backends.default_device())


def inspect_array_sharding(value: Any, *, callback: Callable[[Any], None]) -> None:
    """Call ``callback`` with the sharding of each array of the pytree ``value``
    (``jax.debug.inspect_array_sharding``): a ``SingleDeviceSharding``, fungrad arrays
    living on one device. It is called at once, eagerly and while a jitted function is
    traced (JAX calls it when the function is compiled)."""
    for leaf in tree_util.leaves(value):
        callback(_sharding_of(leaf))


def visualize_sharding(shape: Sequence[int], sharding: Any, *, use_color: bool = True,
                       scale: float = 1.0, min_width: int = 9, max_width: int = 80,
                       color_map: Any = None) -> None:
    """Print how an array of ``shape`` is laid out over the devices of ``sharding``
    (``jax.debug.visualize_sharding``): one box naming its device, ``CPU 0``, as JAX draws
    an array on one device (its box is drawn to the array's proportions; the layout
    options are accepted).

    Raises:
        ValueError: ``shape`` does not have 1 or 2 dimensions (as in JAX).
    """
    if not 1 <= len(shape) <= 2:
        raise ValueError("`visualize_sharding` only works for shapes with 1 and 2 dimensions.")
    devices = getattr(sharding, "device_set", None) or {backends.as_device(sharding,
                                                                            "visualize_sharding")}
    label = ", ".join(sorted(f"{d.platform.upper()} {d.id}" for d in devices))
    rule = "\u2500" * (len(label) + 2)
    builtins.print(f"\u250c{rule}\u2510\n\u2502 {label} \u2502\n\u2514{rule}\u2518")


def visualize_array_sharding(arr: Any, **kwargs: Any) -> None:
    """Print the layout of ``arr`` over its devices (``jax.debug.visualize_array_sharding``;
    ``kwargs`` go to ``visualize_sharding``).

    Example:
      >>> import fungrad, fungrad.numpy as jnp
      >>> fungrad.debug.visualize_array_sharding(jnp.ones(8))
      ┌───────┐
      │ CPU 0 │
      └───────┘
    """
    inspect_array_sharding(arr, callback=lambda s: visualize_sharding(arr.shape, s, **kwargs))
