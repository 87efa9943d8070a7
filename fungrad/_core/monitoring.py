"""The listener registry behind ``fungrad.monitoring`` (``jax.monitoring``), kept in the core
so that ``jit`` (in ``fungrad.transforms``) can record its events without importing upward.

Four kinds of record, each with its own listeners: an event (a name and keyword metadata), an
event's duration in seconds, an event's time span (start and end, in seconds since the
epoch) and a scalar. Recording calls every listener of its kind in registration order, so
with no listener it costs a loop over an empty list.
"""
from __future__ import annotations

import time
from typing import Protocol

# The events fungrad's ``jit`` records, under JAX's names (``jax._src.dispatch``).
JAXPR_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class EventListenerWithMetadata(Protocol):
    """``listener(event, **metadata)``."""

    def __call__(self, event: str, **kwargs: str | int) -> None: ...


class EventDurationListenerWithMetadata(Protocol):
    """``listener(event, duration_secs, **metadata)``."""

    def __call__(self, event: str, duration_secs: float, **kwargs: str | int) -> None: ...


class EventTimeSpanListenerWithMetadata(Protocol):
    """``listener(event, start_time, end_time, **metadata)``."""

    def __call__(self, event: str, start_time: float, end_time: float,
                 **kwargs: str | int) -> None: ...


class ScalarListenerWithMetadata(Protocol):
    """``listener(event, value, **metadata)``."""

    def __call__(self, event: str, value: float | int, **kwargs: str | int) -> None: ...


_event_listeners: list[EventListenerWithMetadata] = []
_duration_listeners: list[EventDurationListenerWithMetadata] = []
_time_span_listeners: list[EventTimeSpanListenerWithMetadata] = []
_scalar_listeners: list[ScalarListenerWithMetadata] = []


def record_event(event: str, **kwargs: str | int) -> None:
    """Tell every event listener that ``event`` happened, with ``kwargs`` as metadata (pass
    the same keywords in the same order each time an event is recorded)."""
    for listener in _event_listeners:
        listener(event, **kwargs)


def record_event_duration_secs(event: str, duration: float, **kwargs: str | int) -> None:
    """Tell every duration listener that ``event`` took ``duration`` seconds."""
    for listener in _duration_listeners:
        listener(event, duration, **kwargs)


def record_event_time_span(event: str, start_time: float, end_time: float,
                           **kwargs: str | int) -> None:
    """Tell every time-span listener that ``event`` ran from ``start_time`` to ``end_time``
    (seconds since the epoch, as ``time.time()`` gives them)."""
    for listener in _time_span_listeners:
        listener(event, start_time, end_time, **kwargs)


def record_scalar(event: str, value: float | int, **kwargs: str | int) -> None:
    """Tell every scalar listener that ``event`` has the value ``value``."""
    for listener in _scalar_listeners:
        listener(event, value, **kwargs)


def register_event_listener(callback: EventListenerWithMetadata) -> None:
    """Call ``callback(event, **metadata)`` on every ``record_event``."""
    _event_listeners.append(callback)


def register_event_duration_secs_listener(callback: EventDurationListenerWithMetadata) -> None:
    """Call ``callback(event, duration_secs, **metadata)`` on every
    ``record_event_duration_secs``."""
    _duration_listeners.append(callback)


def register_event_time_span_listener(callback: EventTimeSpanListenerWithMetadata) -> None:
    """Call ``callback(event, start_time, end_time, **metadata)`` on every
    ``record_event_time_span``."""
    _time_span_listeners.append(callback)


def register_scalar_listener(callback: ScalarListenerWithMetadata) -> None:
    """Call ``callback(event, value, **metadata)`` on every ``record_scalar``."""
    _scalar_listeners.append(callback)


def get_event_listeners() -> list[EventListenerWithMetadata]:
    """A copy of the event listeners, in registration order."""
    return list(_event_listeners)


def get_event_duration_listeners() -> list[EventDurationListenerWithMetadata]:
    """A copy of the duration listeners, in registration order."""
    return list(_duration_listeners)


def get_event_time_span_listeners() -> list[EventTimeSpanListenerWithMetadata]:
    """A copy of the time-span listeners, in registration order."""
    return list(_time_span_listeners)


def get_scalar_listeners() -> list[ScalarListenerWithMetadata]:
    """A copy of the scalar listeners, in registration order."""
    return list(_scalar_listeners)


def clear_event_listeners() -> None:
    """Remove every listener of every kind."""
    for listeners in (_event_listeners, _duration_listeners, _time_span_listeners,
                      _scalar_listeners):
        listeners.clear()


def _unregister(listeners: list, callback: object, fname: str) -> None:
    if callback not in listeners:
        raise ValueError(f"{fname}: callback {callback!r} is not registered")
    listeners.remove(callback)


def unregister_event_listener(callback: EventListenerWithMetadata) -> None:
    """Remove an event listener (a ``ValueError`` if it was not registered)."""
    _unregister(_event_listeners, callback, "unregister_event_listener")


def unregister_event_duration_listener(callback: EventDurationListenerWithMetadata) -> None:
    """Remove a duration listener (a ``ValueError`` if it was not registered)."""
    _unregister(_duration_listeners, callback, "unregister_event_duration_listener")


def unregister_event_time_span_listener(callback: EventTimeSpanListenerWithMetadata) -> None:
    """Remove a time-span listener (a ``ValueError`` if it was not registered)."""
    _unregister(_time_span_listeners, callback, "unregister_event_time_span_listener")


def unregister_scalar_listener(callback: ScalarListenerWithMetadata) -> None:
    """Remove a scalar listener (a ``ValueError`` if it was not registered)."""
    _unregister(_scalar_listeners, callback, "unregister_scalar_listener")


class timed_event:
    """``with timed_event(event, fun_name):`` records ``event`` as JAX's compile stages do:
    a scalar holding the start time on entry, then the duration and the time span on exit
    (also when the block raises), each with ``fun_name=fun_name``."""
    __slots__ = ("event", "fun_name", "start")

    def __init__(self, event: str, fun_name: str) -> None:
        self.event, self.fun_name = event, fun_name

    def __enter__(self) -> None:
        self.start = time.time()
        record_scalar(self.event, self.start, fun_name=self.fun_name)

    def __exit__(self, *exc: object) -> None:
        end = time.time()
        record_event_duration_secs(self.event, end - self.start, fun_name=self.fun_name)
        record_event_time_span(self.event, self.start, end, fun_name=self.fun_name)
