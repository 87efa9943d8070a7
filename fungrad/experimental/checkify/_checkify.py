"""The ``checkify`` transformation: trace a function to a jaxpr and run it through the
interpreter (``_rules``, with the control-flow rules of ``_control_flow``), threading an
``Error`` value."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Tracer
from fungrad.interpreters import partial_eval as pe

from fungrad.experimental.checkify import _control_flow  # noqa: F401  (registers its rules)
from fungrad.experimental.checkify._error import Error, init_error
from fungrad.experimental.checkify._exceptions import (DivisionByZeroError, FailedCheckError,
                                                       NaNError, OOBError, user_checks)
from fungrad.experimental.checkify._rules import _Checker, _effects


# --------------------------------------------------------------------------- checkify

# Argument leaves traced as inputs; other leaves (Python scalars, strings) stay concrete, as
# JAX's checkify closes over them.
_ARRAYS = (Array, Tracer, np.ndarray, np.generic)


def _enabled_set(errors: Any) -> frozenset:
    categories = (FailedCheckError, NaNError, OOBError, DivisionByZeroError)
    if isinstance(errors, (str, bytes)) or not isinstance(errors, Iterable):
        raise TypeError(f"checkify: errors must be a set of error categories such as "
                        f"checkify.user_checks or checkify.float_checks, got {errors!r}")
    errors = frozenset(errors)
    unknown = [e for e in errors if e not in categories]
    if unknown:
        raise TypeError(f"checkify: errors holds {unknown[0]!r}, which is not an error "
                        f"category; use checkify.user_checks, nan_checks, index_checks, "
                        f"div_checks, float_checks, automatic_checks or all_checks")
    return errors


def checkify(f: Callable, errors: Iterable[type] = user_checks
             ) -> Callable[..., tuple[Error, Any]]:
    """``f`` with its checks returned as an ``Error`` value: ``checkify(f)(*args)`` gives
    ``(err, f(*args))`` (``jax.experimental.checkify.checkify``).

    ``errors`` picks what is checked: ``user_checks`` (the default: ``check`` calls),
    ``nan_checks`` (a primitive made a NaN), ``div_checks`` (a division by zero),
    ``index_checks`` (an out-of-bounds gather, scatter or dynamic slice), or unions such as
    ``float_checks``, ``automatic_checks`` and ``all_checks``. ``err.get()`` is the message of
    the first failure or None, ``err.throw()`` raises it. The result composes with ``jit``
    (either way round), ``vmap`` and control flow.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.experimental import checkify
        >>> err, out = checkify.checkify(lambda x: 1 // x, errors=checkify.div_checks)(
        ...     jnp.int32(0))
        >>> err.get()
        'division by zero'

    Raises:
        TypeError: ``errors`` is not a set of the categories above.
    """
    enabled = _enabled_set(errors)
    if not callable(f):
        raise TypeError(f"checkify: f must be callable, got {type(f).__name__}")

    def checked(*args: Any, **kwargs: Any) -> tuple[Error, Any]:
        leaves, in_tree = tree_util.flatten((args, kwargs))
        traced = [isinstance(x, _ARRAYS) for x in leaves]
        arrays = [x for x, t in zip(leaves, traced) if t]
        store = {}

        def flat_fun(*vals: Any) -> list:
            it = iter(vals)
            a, k = tree_util.unflatten(in_tree, [next(it) if t else x
                                                  for x, t in zip(leaves, traced)])
            outs, store["tree"] = tree_util.flatten(f(*a, **k))
            return outs
        jaxpr, consts, _ = pe.trace_to_jaxpr(flat_fun, [core.get_aval(x) for x in arrays],
                                             "checkify")
        ck = _Checker(enabled)
        error = init_error._with_slots(_effects(jaxpr, enabled))
        error, outs = ck.run(ClosedJaxpr(jaxpr, consts), error, arrays)
        error = Error(error._pred, error._code, ck.metadata, error._payload)
        return error, tree_util.unflatten(store["tree"], outs)
    checked.__name__ = f"checkify({getattr(f, '__name__', type(f).__name__)})"
    checked.__doc__ = getattr(f, "__doc__", None)
    return checked
