"""``Ref``s through ``jit``: Ref arguments and Refs the function closes over.

While ``jit`` traces, each ``Ref`` argument is replaced by a fresh ``Ref`` holding the
input tracer, and a ``RefScope`` lifts every outer ``Ref`` the function uses into a new
input of the jaxpr (``fungrad._core.ref``). The final values of the refs that were
written become extra outputs after the function's own. A call passes the refs' current
values in and writes the extra outputs back into the caller's refs, so the cached
executable never holds a ref's value: a cache hit sees the writes of earlier calls.

The cache key holds a Ref argument's type (``key``); the closed-over refs are recorded
on the cache entry (``JitRefs.closed``), as JAX keeps them with the traced jaxpr.
"""
from __future__ import annotations

from typing import Any, Sequence

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.ref import Ref, RefScope, read, write

__all__ = ["JitRefs", "key", "ref_positions"]


def key(x: Ref) -> tuple:
    """A Ref argument's part of the cache key (distinct from an array's of its type)."""
    a = x._inner
    return ("ref", a.shape, a.dtype, a.weak_type)


def ref_positions(leaves: Sequence[Any]) -> tuple[int, ...]:
    """The positions of the Ref leaves among a call's argument leaves."""
    return tuple(i for i, x in enumerate(leaves) if type(x) is Ref)


class JitRefs:
    """The refs of one traced signature: the Ref arguments' positions, the closed-over
    refs, and which of each the function writes (only those come back out)."""

    def __init__(self, api: str, leaves: Sequence[Any], positions: tuple[int, ...]) -> None:
        self.api = api
        self.positions = positions
        self._leaves: Sequence[Any] | None = leaves  # (while tracing, for the checks)
        self._check_arguments(leaves)
        self.arg_written: list[bool] = []
        self.closed: list[Ref] = []
        self.closed_written: list[bool] = []
        self._scope: RefScope | None = None
        self._inner: list[Ref] = []

    used = property(lambda self: bool(self.positions or self.closed),
                    doc="Whether the signature has Ref arguments or closed-over refs.")

    # -- while tracing (inside the body: the current trace is jit's JaxprTrace)
    def enter(self, tracers: Sequence[Any]) -> list:
        """Open the scope; Ref arguments become fresh refs holding their input tracers."""
        self._scope = RefScope(self.api)
        trace = core._ctx.trace
        args = list(tracers)
        for i in self.positions:
            args[i] = Ref(tracers[i], trace, tracers[i].aval)
            self._inner.append(args[i])
        return args

    def checked(self, out: Any) -> Any:
        """``out``, after refusing a Ref among the results (as JAX does)."""
        for x in tree_util.leaves(out):
            if isinstance(x, Ref):
                where = ""
                if any(x is r for r in self._inner):
                    where = " It was passed in as an argument."
                raise ValueError(f"function traced for {self.api} returned a mutable array "
                                 f"reference of type {x.aval}, but mutable array references "
                                 f"cannot be returned.{where}")
        return out

    def outputs(self, out_leaves: list, tracers: Sequence[Any]) -> list:
        """The function's outputs followed by the final values of the written refs."""
        scope = self._scope
        self.arg_written = [r._value is not tracers[i] for r, i in zip(self._inner, self.positions)]
        self.closed = list(scope.refs)
        self.closed_written = [r._value is not a for r, a in zip(scope.refs, scope.inputs)]
        return out_leaves + [r._value for r, w in zip(self._inner, self.arg_written) if w] + \
            [v for v, w in zip(scope.finals(), self.closed_written) if w]

    def exit(self) -> None:
        """Close the scope (the closed-over refs get their outer values back)."""
        if self._scope is not None:
            self._scope.close()
            self._scope, self._inner = None, []
        leaves, self._leaves = self._leaves, None
        self._check_arguments(leaves)

    # -- at each call
    def _check_arguments(self, leaves: Sequence[Any]) -> None:
        """JAX's errors for a Ref passed twice, or passed and closed over."""
        seen: dict[int, int] = {}
        for i in self.positions:
            prev = seen.setdefault(id(leaves[i]), i)
            if prev != i:
                raise ValueError(f"{self.api}: only one reference to a mutable array may be "
                                 "passed as an argument to a function, but the mutable array "
                                 f"reference of type {leaves[i].aval} appeared at both "
                                 f"argument leaves {prev} and {i}.")
        for r in getattr(self, "closed", ()):
            if id(r) in seen:
                raise ValueError(f"{self.api}: a mutable array reference of type {r.aval} was "
                                 f"both closed over and passed as argument leaf {seen[id(r)]}.")

    def arguments(self, leaves: Sequence[Any]) -> tuple[list, list]:
        """The call's argument leaves with each Ref replaced by its value, and the
        closed-over refs' values (the jaxpr's extra inputs, after the arguments)."""
        self._check_arguments(leaves)
        args = list(leaves)
        for i in self.positions:
            args[i] = read(leaves[i], self.api)
        return args, [read(r, self.api) for r in self.closed]

    def write_back(self, leaves: Sequence[Any], outs: list, n_out: int) -> list:
        """Write the extra outputs into the refs; return the function's own outputs."""
        extra = iter(outs[n_out:])
        for i, w in zip(self.positions, self.arg_written):
            if w:
                write(leaves[i], next(extra), self.api)
        for r, w in zip(self.closed, self.closed_written):
            if w:
                write(r, next(extra), self.api)
        return outs[:n_out]
