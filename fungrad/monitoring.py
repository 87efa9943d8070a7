"""``fungrad.monitoring`` (``jax.monitoring``): named events and the listeners that see them.

Code marks a point with ``record_event(name, **metadata)``, a timing with
``record_event_duration_secs`` or ``record_event_time_span``, a value with ``record_scalar``;
every listener registered for that kind of record is called, typically to forward it to a
metrics collector. ``jit`` records JAX's compile events on each cache miss: the tracing
time as ``"/jax/core/compile/jaxpr_trace_duration"`` (``fun_name=`` the function's name) and
the time fungrad's compiler takes to build the executable as
``"/jax/core/compile/backend_compile_duration"`` (``fun_name="jit(<name>)"``); each is a
duration, a time span and, at the start, a scalar holding the start time.
fungrad has no MLIR stage and no persistent compilation cache, so JAX's
``jaxpr_to_mlir_module_duration`` and ``/jax/compilation_cache/...`` events never occur.

Unlike JAX, unregistering a listener that is not registered raises ``ValueError`` (JAX
fails an ``assert``).

Examples:
    >>> import fungrad, fungrad.numpy as jnp
    >>> from fungrad import monitoring
    >>> seen = []
    >>> listener = lambda event, secs, **kw: seen.append((event, kw["fun_name"]))
    >>> monitoring.register_event_duration_secs_listener(listener)
    >>> _ = fungrad.jit(lambda x: x + 1)(jnp.ones(2))
    >>> ("/jax/core/compile/jaxpr_trace_duration", "<lambda>") in seen
    True
    >>> monitoring.unregister_event_duration_listener(listener)
"""
from fungrad._core.monitoring import (EventDurationListenerWithMetadata,
                                      EventListenerWithMetadata,
                                      EventTimeSpanListenerWithMetadata,
                                      ScalarListenerWithMetadata, clear_event_listeners,
                                      get_event_duration_listeners, get_event_listeners,
                                      get_event_time_span_listeners, get_scalar_listeners,
                                      record_event, record_event_duration_secs,
                                      record_event_time_span, record_scalar,
                                      register_event_duration_secs_listener,
                                      register_event_listener,
                                      register_event_time_span_listener,
                                      register_scalar_listener,
                                      unregister_event_duration_listener,
                                      unregister_event_listener,
                                      unregister_event_time_span_listener,
                                      unregister_scalar_listener)
from fungrad._core.namespace import public_dir

__all__ = ["EventDurationListenerWithMetadata", "EventListenerWithMetadata",
           "EventTimeSpanListenerWithMetadata", "ScalarListenerWithMetadata",
           "clear_event_listeners", "get_event_duration_listeners", "get_event_listeners",
           "get_event_time_span_listeners", "get_scalar_listeners", "record_event",
           "record_event_duration_secs", "record_event_time_span", "record_scalar",
           "register_event_duration_secs_listener", "register_event_listener",
           "register_event_time_span_listener", "register_scalar_listener",
           "unregister_event_duration_listener", "unregister_event_listener",
           "unregister_event_time_span_listener", "unregister_scalar_listener"]
__dir__ = public_dir(__all__)
