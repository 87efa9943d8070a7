"""``Ref``s closed over by the bodies of ``scan``, ``while_loop`` and ``cond``/``switch``.

A body that uses a ``Ref`` created outside it must receive the ref's value as an input and
hand its final value back, or the write would be lost (or a tracer would escape into the
ref). As JAX does, the ref becomes an implicit carry (``scan``, ``while_loop``) or an
implicit operand and result (``cond``, ``switch``):

1. the bodies are traced with a probe (a ``RefScope``, ``fungrad._core.ref``) that records
   the outer refs they use; if there are none (the usual case) the call proceeds as traced;
2. otherwise the probe aborts the trace (``_RefsFound``) and the call is made again with the
   refs' values appended to the carry (operands), each body rebinding the refs to its own
   inputs (``bound``) and returning their final values; those are written back into the
   refs after the call (with the checks of any write: under ``grad`` or ``vmap`` a
   differentiated or batched value cannot go into an outer ref).

Refs found only in the second trace are added and the call is made once more. Python side
effects of a body that uses outer refs therefore run in one more trace.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from fungrad._core.ref import Ref, RefScope, bound, read, write
from fungrad.config import config

__all__ = ["thread_branches", "thread_scan", "thread_while"]


class _RefsFound(Exception):
    """Raised by a probe at the end of a body that used outer refs (caught by its owner)."""

    def __init__(self, probe: "_Probe", refs: list[Ref]) -> None:
        super().__init__(f"refs used by a {probe.api} body")
        self.probe, self.refs = probe, refs


class _Probe:
    """Wraps the bodies of one control-flow call to find the outer refs they use."""

    def __init__(self, api: str) -> None:
        self.api = api

    def wrap(self, fun: Callable) -> Callable:
        @functools.wraps(fun)
        def probed(*args: Any) -> Any:
            scope = RefScope(self.api)  # the current trace is the body's staging trace
            try:
                out = fun(*args)
                if scope.refs:
                    raise _RefsFound(self, list(scope.refs))
                return out
            finally:
                scope.close()
        return probed


def _retrying(api: str, call: Callable[[_Probe, list[Ref]], Any]) -> tuple[Any, list[Ref]]:
    """``call(probe, refs)`` until its bodies use no outer ref besides ``refs``."""
    refs: list[Ref] = []
    while True:
        probe = _Probe(api)
        try:
            return call(probe, refs), refs
        except _RefsFound as e:
            if e.probe is not probe:
                raise
            refs += [r for r in e.refs if not any(r is s for s in refs)]


def _finals(refs: Sequence[Ref]) -> list:
    return [r._value for r in refs]


def thread_scan(scan: Callable, f: Callable, init: Any, xs: Any, length: Any, reverse: bool,
                unroll: Any) -> tuple[Any, Any]:
    """``scan(f, init, xs, ...)`` with the refs ``f`` closes over as extra carries."""
    if config.disable_jit:  # a Python loop: refs are plain dataflow
        return scan(f, init, xs, length, reverse, unroll)

    def call(probe: _Probe, refs: list[Ref]) -> Any:
        if not refs:
            return scan(probe.wrap(f), init, xs, length, reverse, unroll)

        @functools.wraps(f)
        def body(carry: Any, x: Any) -> Any:
            c, values = carry
            with bound(refs, values):
                out = f(c, x)
                finals = _finals(refs)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                return out  # scan's own error
            return (out[0], finals), out[1]
        return scan(probe.wrap(body), (init, [read(r, "lax.scan") for r in refs]), xs, length,
                    reverse, unroll)

    out, refs = _retrying("lax.scan", call)
    if not refs:
        return out
    (carry, finals), ys = out
    for r, v in zip(refs, finals):
        write(r, v, "lax.scan")
    return carry, ys


def thread_while(while_loop: Callable, cond_fun: Callable, body_fun: Callable,
                 init_val: Any) -> Any:
    """``while_loop(cond_fun, body_fun, init_val)`` with the refs either function closes
    over as extra carries; ``cond_fun`` may read them but not write them."""
    if config.disable_jit:
        return while_loop(cond_fun, body_fun, init_val)

    def call(probe: _Probe, refs: list[Ref]) -> Any:
        if not refs:
            return while_loop(probe.wrap(cond_fun), probe.wrap(body_fun), init_val)

        @functools.wraps(cond_fun)
        def cond(state: Any) -> Any:
            with bound(refs, state[1]):
                pred = cond_fun(state[0])
                if any(a is not b for a, b in zip(_finals(refs), state[1])):
                    raise ValueError("lax.while_loop: cond_fun wrote to a Ref; only body_fun "
                                     "may write to Refs.")
            return pred

        @functools.wraps(body_fun)
        def body(state: Any) -> Any:
            with bound(refs, state[1]):
                out = body_fun(state[0])
                return out, _finals(refs)
        init = (init_val, [read(r, "lax.while_loop") for r in refs])
        return while_loop(probe.wrap(cond), probe.wrap(body), init)

    out, refs = _retrying("lax.while_loop", call)
    if not refs:
        return out
    for r, v in zip(refs, out[1]):
        write(r, v, "lax.while_loop")
    return out[0]


def thread_branches(bind: Callable, api: str, index: Any, funs: Sequence[Callable],
                    names: Sequence[str], operands: tuple) -> Any:
    """``bind(api, index, funs, names, operands)`` (``cond``/``switch``) with the refs any
    branch closes over as an extra operand and an extra result of every branch."""
    def call(probe: _Probe, refs: list[Ref]) -> Any:
        if not refs:
            return bind(api, index, [probe.wrap(f) for f in funs], names, operands)

        def branch(f: Callable) -> Callable:
            @functools.wraps(f)
            def threaded(*args: Any) -> Any:
                with bound(refs, args[-1]):
                    out = f(*args[:-1])
                    return out, _finals(refs)
            return probe.wrap(threaded)
        values = [read(r, api) for r in refs]
        return bind(api, index, [branch(f) for f in funs], names, (*operands, values))

    out, refs = _retrying(api, call)
    if not refs:
        return out
    for r, v in zip(refs, out[1]):
        write(r, v, api)
    return out[0]
