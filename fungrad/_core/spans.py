"""Wall-clock spans for ``fungrad.profiler``'s traces: ``TraceAnnotation`` records the span of
its block while a trace records (``start``/``stop``), and costs a clock read otherwise.

It sits below the profiler so that ``named_scope`` (``fungrad.runtime``) records its blocks
without loading the profiler.
"""
from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

# The events of the trace being recorded; None while nothing records.
_events: list[Event] | None = None


class Event(NamedTuple):
    """One recorded span: its name, start and end (``time.perf_counter_ns``), the thread
    that ran it and the keyword arguments of its annotation."""
    name: str
    start_ns: int
    end_ns: int
    thread: int
    args: dict


def recording() -> bool:
    """Whether a trace is being recorded."""
    return _events is not None


def start() -> None:
    """Start recording spans (the profiler's ``start_trace``; one trace at a time)."""
    global _events
    _events = []


def stop() -> list[Event]:
    """Stop recording and return the spans recorded since ``start``."""
    global _events
    events, _events = _events or [], None
    return events


class TraceAnnotation:
    """A context manager that records its block's wall-clock span, named ``name`` with
    ``kwargs`` as the event's arguments, in the profiler's trace (``jax.profiler``'s).

    Outside a trace it records nothing.

    Examples:
        >>> import fungrad.profiler
        >>> with fungrad.profiler.TraceAnnotation("load", batch=3):
        ...     pass
    """
    __slots__ = ("name", "args", "_start")

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.name = name
        self.args = kwargs
        self._start = 0

    def __enter__(self) -> "TraceAnnotation":
        self._start = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: Any) -> None:
        events = _events
        if events is not None:
            events.append(Event(self.name, self._start, time.perf_counter_ns(),
                                threading.get_ident(), self.args))
