"""The ``Error`` value that ``checkify`` threads through a program, and the ``check_p``
primitive with ``check``, ``debug_check`` and ``check_error``, which bind it.

``Error.throw`` is ``check_error``, and ``check_p``'s rules rebuild ``Error`` values, so the
two live together here."""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.array import Array
from fungrad._core.core import JaxprEqn, Primitive, Tracer
from fungrad._core.lowering import def_lowering
from fungrad.callbacks import to_host
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe

from fungrad.experimental.checkify._exceptions import (BatchedError, FailedCheckError,
                                                       JaxException, JaxRuntimeError)


# --------------------------------------------------------------------------- the error value

class _Effect(NamedTuple):
    """One slot of the error state: a category and its payload's ``(shape, dtype)``s."""
    kind: type
    spec: tuple


class _Reason(NamedTuple):
    """What a code stands for: the category and the static part of its message."""
    kind: type
    static: tuple


def _effect_order(e: _Effect) -> tuple:
    return (e.kind.__name__, repr(e.spec))


def _spec(payload: Sequence[Any]) -> tuple:
    return tuple((core.get_aval(x).shape, core.get_aval(x).dtype.name) for x in payload)


@dataclasses.dataclass(frozen=True)
class _Layout:
    """The static part of a flattened ``Error``: its slots in order and its messages."""
    effects: tuple
    metadata: tuple

    def __repr__(self) -> str:
        return f"<{len(self.effects)} error slots>"


@dataclasses.dataclass(frozen=True)
class Error:
    """The failures of a ``checkify``-ed function, as arrays (a pytree, so it passes through
    ``jit`` and ``vmap``): per slot a flag, the code of its first failure and its payload.

    ``get()`` gives the message of the first failure or None; ``throw()`` raises it as a
    ``JaxRuntimeError``."""
    _pred: dict
    _code: dict
    _metadata: dict
    _payload: dict

    def get(self) -> str | None:
        """The message of the first failure (one line per failing element when batched), or
        None when every check passed."""
        exc = self.get_exception()
        return None if exc is None else str(exc)

    def get_exception(self) -> JaxException | None:
        """The first failure as an exception object (``BatchedError`` when batched), or None."""
        preds = {e: np.asarray(p) for e, p in self._pred.items()}
        shape = next((p.shape for p in preds.values() if p.shape), ())
        if not shape:
            return self._exception_at(preds, ())
        found = {}
        for idx in np.ndindex(*shape):
            exc = self._exception_at(preds, idx)
            if exc is not None:
                found[idx] = exc
        return BatchedError(found) if found else None

    def _exception_at(self, preds: dict, idx: tuple) -> JaxException | None:
        best = None
        for e, p in preds.items():
            if np.broadcast_to(p, p.shape)[idx] if p.shape else p:
                code = int(np.asarray(self._code[e])[idx] if idx else np.asarray(self._code[e]))
                if best is None or code < best[0]:
                    best = (code, e)
        if best is None:
            return None
        code, e = best
        reason = self._metadata[code]
        payload = [x[idx] if idx else x for x in self._payload[e]]
        return reason.kind._from_payload(reason.static, payload)

    def throw(self) -> None:
        """Raise ``JaxRuntimeError`` with the message if a check failed."""
        check_error(self)

    def __str__(self) -> str:
        return f"Error({self.get()})"

    __repr__ = __str__

    # -- functional updates (used while interpreting)
    def _with(self, effect: _Effect, pred: Any, code: Any, payload: tuple) -> "Error":
        prev = self._pred[effect]
        new_pred = jnp.logical_or(prev, pred)
        new_code = jnp.where(prev, self._code[effect], code)
        new_payload = tuple(jnp.where(prev, old, new)
                            for old, new in zip(self._payload[effect], payload))
        return Error({**self._pred, effect: new_pred}, {**self._code, effect: new_code},
                     self._metadata, {**self._payload, effect: new_payload})

    def _with_slots(self, effects: Iterable[_Effect]) -> "Error":
        """The error with an empty slot for each effect it lacks (flag False, code -1)."""
        pred, code, payload = dict(self._pred), dict(self._code), dict(self._payload)
        for e in effects:
            if e not in pred:
                pred[e] = jnp.zeros((), np.bool_)
                code[e] = jnp.full((), -1, np.int32)
                payload[e] = tuple(jnp.zeros(shape, dtype) for shape, dtype in e.spec)
        return Error(pred, code, self._metadata, payload)

    # -- pytree
    def tree_flatten(self) -> tuple[list, _Layout]:
        """The leaves (per slot, in a fixed order: flag, code, payload) and the static
        layout (the slots and the message of each code)."""
        effects = tuple(sorted(self._pred, key=_effect_order))
        leaves = [x for e in effects for x in (self._pred[e], self._code[e], *self._payload[e])]
        return leaves, _Layout(effects, tuple(sorted(self._metadata.items())))

    @classmethod
    def tree_unflatten(cls, layout: _Layout, leaves: Sequence[Any]) -> "Error":
        """The error with ``layout`` and ``leaves`` (the inverse of ``tree_flatten``)."""
        it = iter(leaves)
        pred, code, payload = {}, {}, {}
        for e in layout.effects:
            pred[e], code[e] = next(it), next(it)
            payload[e] = tuple(next(it) for _ in e.spec)
        return cls(pred, code, dict(layout.metadata), payload)


tree_util.register_pytree_node_class(Error)

init_error = Error({}, {}, {}, {})
_next_code = itertools.count(1).__next__


def _assert(error: Error, pred: Any, reason: _Reason, payload: tuple,
            metadata: dict) -> Error:
    """``error`` updated with a new failure site: fails where ``pred`` is True."""
    code = _next_code()
    metadata[code] = reason
    effect = _Effect(reason.kind, _spec(payload))
    return error._with_slots([effect])._with(effect, pred, code, payload)


def _reduce_leading(error: Error) -> Error:
    """A batched error (flags with a leading axis) reduced to one: per slot, the last failing
    element (as JAX's ``argsort(flags)[-1]``)."""
    pred, code, payload = {}, {}, {}
    for e, p in error._pred.items():
        n = p.shape[0]
        i = jnp.where(jnp.any(p), jnp.argmax(jnp.where(p, jnp.arange(n), -1)), n - 1)
        pred[e], code[e] = p[i], error._code[e][i]
        payload[e] = tuple(x[i] for x in error._payload[e])
    return Error(pred, code, error._metadata, payload)


# --------------------------------------------------------------------------- check_p

_FUNCTIONALIZE = ("Cannot abstractly evaluate a checkify.check which was not functionalized. "
                  "This probably means you tried to stage (jit/scan/pmap/...) a `check` "
                  "without functionalizing it through `checkify.checkify`.")


def _raise_if_failed(error: Error) -> None:
    exc = error.get_exception()
    if exc is not None:
        raise JaxRuntimeError(str(exc)) from exc


def _staging() -> bool:
    """Whether the current trace or one it runs in stages (``jit``, ``make_jaxpr``)."""
    trace = core.current_trace()
    while trace is not None:
        if isinstance(trace, pe.JaxprTrace) and trace.stage_all:
            return True
        trace = trace.parent
    return False


def _bind_check(vals: Sequence[Any], layout: _Layout, debug: bool) -> None:
    """``check_p.bind``, except that with concrete operands (eagerly, or the primals under
    an eager ``grad``) the failure is raised here: through the eager trace's impl call it
    would come back wrapped in a message about the operands. A staging trace (``jit``,
    ``checkify``) stages the check even then."""
    if not any(isinstance(v, Tracer) for v in vals) and not _staging():
        if not debug:
            _raise_if_failed(Error.tree_unflatten(layout, vals))
        return
    check_p.bind(*vals, layout=layout, debug=debug)


def _check_impl(xp: Any, *vals: Any, layout: _Layout, debug: bool) -> list:
    if not debug:
        _raise_if_failed(Error.tree_unflatten(layout, [Array(to_host(v)) for v in vals]))
    return []


def _check_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, layout: _Layout,
               debug: bool) -> tuple[list, list]:
    _bind_check(primals, layout, debug)
    return [], []


def _check_batch(axis_size: int, vals: Sequence[Any], dims: Sequence[int | None], *,
                 layout: _Layout, debug: bool) -> tuple[list, list]:
    vals = [batching.bdim_at_front(v, d, axis_size) for v, d in zip(vals, dims)]
    error = _reduce_leading(Error.tree_unflatten(layout, vals))
    _bind_check(error.tree_flatten()[0], layout, debug)
    return [], []


def _unfunctionalized() -> None:
    raise ValueError(_FUNCTIONALIZE)


def _check_lowering(ctx: Any, eqn: JaxprEqn, args: list, out: str | None) -> str:
    """Compiled code refuses a ``check`` when it runs (JAX refuses it when compiling; fungrad
    may compile a function before it knows it will run it, e.g. inside ``checkify``)."""
    return f"{ctx.const(_unfunctionalized, 'unfunctionalized_check')}()"


check_p = Primitive("check", multiple_results=True)
check_p.def_impl(_check_impl)
check_p.def_abstract_eval(lambda *avals, layout, debug: [])
ad.def_jvp(check_p, _check_jvp)
batching.def_batch(check_p, _check_batch)
pe.register_effectful(check_p)
def_lowering(check_p, _check_lowering, when=lambda eqn: not eqn.params["debug"])


def _is_scalar_pred(pred: Any) -> bool:
    if isinstance(pred, bool):
        return True
    return (isinstance(pred, (Array, Tracer)) and pred.shape == ()
            and pred.dtype == np.dtype(np.bool_))


def _check(pred: Any, msg: str, debug: bool, fmt_args: tuple, fmt_kwargs: dict) -> None:
    name = "debug_check" if debug else "check"
    if not _is_scalar_pred(pred):
        what = (f"{type(pred).__name__} {core.get_aval(pred).str_short()}"
                if hasattr(pred, "shape") else f"{type(pred).__name__} {pred!r}")
        raise TypeError(f"{name}: pred must be a scalar boolean (a Python bool or a bool[] "
                        f"array), got {what}")
    if not isinstance(msg, str):
        raise TypeError(f"{name}: msg must be a format string, got {type(msg).__name__}")
    leaves, treedef = tree_util.flatten((fmt_args, fmt_kwargs))
    for x in leaves:
        if not isinstance(x, (Array, Tracer, np.ndarray)):
            raise TypeError(f"{name}: the formatting arguments must be pytrees of arrays, got "
                            f"{x!r} of type {type(x).__name__} (wrap it in jnp.asarray)")
    leaves = [jnp.asarray(x) if isinstance(x, np.ndarray) else x for x in leaves]
    metadata: dict = {}
    error = _assert(init_error, jnp.logical_not(pred),
                    _Reason(FailedCheckError, (msg, treedef)), tuple(leaves), metadata)
    error = Error(error._pred, error._code, metadata, error._payload)
    _bind_check(*error.tree_flatten(), debug)


def check(pred: Any, msg: str, *fmt_args: Any, **fmt_kwargs: Any) -> None:
    """Fail with ``msg.format(*fmt_args, **fmt_kwargs)`` when ``pred`` is False
    (``jax.experimental.checkify.check``).

    Under ``checkify`` the failure becomes part of the returned ``Error``; outside it, the
    check raises ``JaxRuntimeError`` eagerly, and ``jit`` refuses to compile it (functionalise
    it with ``checkify`` first). ``pred`` is a Python bool or a ``bool[]`` array; the format
    arguments are pytrees of arrays, whose run-time values fill the message.

    Raises:
        TypeError: ``pred`` is not a scalar boolean, or a format argument is not an array.
    """
    _check(pred, msg, False, fmt_args, fmt_kwargs)


def debug_check(pred: Any, msg: str, *fmt_args: Any, **fmt_kwargs: Any) -> None:
    """A ``check`` that only acts under ``checkify`` (elsewhere it does nothing)."""
    _check(pred, msg, True, fmt_args, fmt_kwargs)


def check_error(error: Error) -> None:
    """Raise ``JaxRuntimeError`` if ``error`` holds a failure; under ``checkify`` this becomes
    part of the returned error again (the inverse of ``checkify``).

    Raises:
        TypeError: ``error`` is not an ``Error``.
    """
    if not isinstance(error, Error):
        raise TypeError(f"check_error: takes an Error as argument, got type "
                        f"{type(error).__name__} instead.")
    while any(np.ndim(p) for p in error._pred.values()):
        error = _reduce_leading(error)
    _bind_check(*error.tree_flatten(), False)
