"""``fungrad.profiler`` (``jax.profiler``): traces of where the time goes, and memory profiles.

A trace (``with profiler.trace(log_dir):``, or ``start_trace``/``stop_trace``) records the
wall-clock span of every ``TraceAnnotation``/``StepTraceAnnotation`` block, every function
under ``annotate_function``, every ``fungrad.named_scope`` block and every call of a jitted
function, and writes them as Chrome trace events to
``log_dir/plugins/profile/<run>/<host>.trace.json.gz``, the file JAX writes beside its
TensorBoard ``.xplane.pb``. Open it in Perfetto (https://ui.perfetto.dev) or
``chrome://tracing``. There is no ``.xplane.pb`` (TensorBoard's profile plugin reads that
one) and no device timeline: fungrad's computations are Python calls, which a trace shows
as the spans of the calls that ran them. A ``named_scope`` inside a jitted function runs
while it is traced, so its span is the tracing, not the compiled code's run.

``device_memory_profile`` is a pprof profile of the live arrays, as JAX's.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import gzip
import json
import os
import pathlib
import socket
import time
import warnings
from typing import Any, Callable, Iterator

from fungrad._core import spans
from fungrad._core.namespace import public_dir
from fungrad._core.spans import TraceAnnotation
from fungrad.runtime import live_arrays
from fungrad.transforms import jit as jit_module
from fungrad.version import __version__

__all__ = ["ProfileOptions", "StepTraceAnnotation", "TraceAnnotation", "annotate_function",
           "device_memory_profile", "save_device_memory_profile", "start_server", "start_trace",
           "stop_server", "stop_trace", "trace"]
__dir__ = public_dir(__all__)


@dataclasses.dataclass
class ProfileOptions:
    """``jax.profiler.ProfileOptions``: which collectors a trace runs. Accepted for JAX's
    signature; fungrad's trace records the same spans whatever they say."""
    host_tracer_level: int = 2
    python_tracer_level: int = 1
    enable_hlo_proto: bool = True
    include_dataset_ops: bool = True
    start_timestamp_ns: int = 0
    duration_ms: int = 0
    repository_path: str = ""
    session_id: str = ""
    raise_error_on_start_failure: bool = False
    advanced_configuration: dict = dataclasses.field(default_factory=dict)


class StepTraceAnnotation(TraceAnnotation):
    """A ``TraceAnnotation`` for one step of a loop (``jax.profiler``'s), named
    ``"<name> <step_num>"`` when a ``step_num`` keyword is given.

    Examples:
        >>> import fungrad.profiler
        >>> for step in range(2):
        ...     with fungrad.profiler.StepTraceAnnotation("train", step_num=step):
        ...         pass
    """
    __slots__ = ()

    def __init__(self, name: str, **kwargs: Any) -> None:
        step = kwargs.get("step_num")
        super().__init__(name if step is None else f"{name} {step}", **kwargs)


def annotate_function(func: Callable, name: str | None = None, **decorator_kwargs: Any
                      ) -> Callable:
    """``func`` recording a span per call, named ``name`` (default: its qualified name),
    as ``jax.profiler.annotate_function`` (use ``functools.partial`` to pass ``name``)."""
    label = name or getattr(func, "__qualname__", None) or func.__name__

    @functools.wraps(func)
    def annotated(*args: Any, **kwargs: Any) -> Any:
        with TraceAnnotation(label, **decorator_kwargs):
            return func(*args, **kwargs)
    return annotated


# ----------------------------------------------------------------------------- traces

@dataclasses.dataclass
class _Session:
    """The trace being recorded: where it goes and how."""
    log_dir: str = ""
    perfetto_trace: bool = False
    perfetto_link: bool = False


_session = _Session()


def start_trace(log_dir: os.PathLike | str, create_perfetto_link: bool = False,
                create_perfetto_trace: bool = False,
                profiler_options: ProfileOptions | None = None) -> None:
    """Start recording a trace, written to ``log_dir`` by ``stop_trace``.

    Args:
        log_dir: the directory of the trace (created); the file goes to
            ``log_dir/plugins/profile/<YYYY_MM_DD_HH_MM_SS>/<host>.trace.json.gz``.
        create_perfetto_trace: also write ``perfetto_trace.json.gz`` beside it (the
            trace without its metadata, as JAX writes it for Perfetto).
        create_perfetto_link: also print how to open that file in Perfetto. JAX serves
            the file and blocks until Perfetto has loaded it; fungrad only writes it.
        profiler_options: accepted (see ``ProfileOptions``).

    Raises:
        RuntimeError: a trace is already being recorded (one at a time, as in JAX).
    """
    del profiler_options  # see ProfileOptions
    if spans.recording():
        raise RuntimeError("Profile has already been started. Only one profile may be run at "
                           "a time.")
    _session.log_dir = os.fspath(log_dir)
    _session.perfetto_trace = create_perfetto_trace or create_perfetto_link
    _session.perfetto_link = create_perfetto_link
    spans.start()
    jit_module.record_calls(TraceAnnotation)


def stop_trace() -> None:
    """Stop the trace and write it (see ``start_trace``).

    Raises:
        RuntimeError: no trace is being recorded.
    """
    if not spans.recording():
        raise RuntimeError("No profile started")
    jit_module.record_calls(None)
    trace_json = _trace_json(spans.stop())
    folder = _run_folder(pathlib.Path(_session.log_dir) / "plugins" / "profile")
    _write_json_gz(folder / f"{socket.gethostname()}.trace.json.gz", trace_json)
    if _session.perfetto_trace:
        perfetto = folder / "perfetto_trace.json.gz"
        _write_json_gz(perfetto, {k: v for k, v in trace_json.items() if k != "metadata"})
        if _session.perfetto_link:
            print(f"Open https://ui.perfetto.dev and load the trace file {perfetto}")


@contextlib.contextmanager
def trace(log_dir: os.PathLike | str, create_perfetto_link: bool = False,
          create_perfetto_trace: bool = False,
          profiler_options: ProfileOptions | None = None) -> Iterator[None]:
    """A context manager recording a trace of its block into ``log_dir`` (``start_trace``
    on entry, ``stop_trace`` on exit; see ``start_trace`` for the arguments).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp, fungrad.profiler, tempfile
        >>> with tempfile.TemporaryDirectory() as log_dir, fungrad.profiler.trace(log_dir):
        ...     with fungrad.profiler.TraceAnnotation("step"):
        ...         y = fungrad.jit(jnp.sin)(jnp.ones(3))
    """
    start_trace(log_dir, create_perfetto_link, create_perfetto_trace, profiler_options)
    try:
        yield
    finally:
        stop_trace()


def _trace_json(events: list[spans.Event]) -> dict:
    """Chrome's trace event format: one complete ("X") event per span, times in
    microseconds, and the process's and threads' names."""
    pid = os.getpid()
    threads = {e.thread for e in events}
    names = [{"ph": "M", "pid": pid, "name": "process_name", "args": {"name": "fungrad"}}]
    names += [{"ph": "M", "pid": pid, "tid": t, "name": "thread_name",
               "args": {"name": f"python thread {t}"}} for t in sorted(threads)]
    spans_json = [{"ph": "X", "pid": pid, "tid": e.thread, "name": e.name,
                   "ts": e.start_ns / 1e3, "dur": (e.end_ns - e.start_ns) / 1e3,
                   "args": {k: str(v) for k, v in e.args.items()}} for e in events]
    return {"displayTimeUnit": "ns", "metadata": {"fungrad_version": __version__},
            "traceEvents": names + spans_json}


def _run_folder(root: pathlib.Path) -> pathlib.Path:
    """A new folder for this run, named by the time as JAX names them."""
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S")
    folder, n = root / stamp, 1
    while folder.exists():
        folder, n = root / f"{stamp}_{n}", n + 1
    folder.mkdir(parents=True)
    return folder


def _write_json_gz(path: pathlib.Path, obj: dict) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(obj, f)


# ----------------------------------------------------------------------------- the server

_server_port: int | None = None


def start_server(port: int, requires_backend: bool = True) -> None:
    """Accepted for JAX's signature: JAX starts the gRPC server TensorBoard's profiler
    connects to, which has no counterpart here, so this warns and records the port (use
    ``trace`` to write a trace file instead).

    Raises:
        ValueError: a server was started already (one at a time, as in JAX).
    """
    global _server_port
    if _server_port is not None:
        raise ValueError("Only one profiler server can be active at a time.")
    warnings.warn("fungrad.profiler.start_server: fungrad has no profiler server for "
                  "TensorBoard to connect to; use fungrad.profiler.trace(log_dir) to write "
                  "a trace file", stacklevel=2)
    _server_port = port


def stop_server() -> None:
    """Forget the server ``start_server`` recorded.

    Raises:
        ValueError: no server was started.
    """
    global _server_port
    if _server_port is None:
        raise ValueError("No active profiler server.")
    _server_port = None


# ----------------------------------------------------------------------------- memory

def device_memory_profile(backend: str | None = None) -> bytes:
    """A gzipped pprof profile of the arrays alive on ``backend`` (by default the default
    backend's), as ``jax.profiler.device_memory_profile``: one sample per array, with its
    count and bytes (JAX's sample types ``allocations``/``count`` and ``space``/``bytes``)
    and labels ``kind=buffer``, ``device``, ``shape`` and ``dtype``. View it with
    ``pprof``. JAX also records the Python stack of each allocation; fungrad does not
    track allocations, so the samples have no stack."""
    gc.collect()  # arrays kept alive only by reference cycles are not live
    strings = {"": 0}

    def s(text: str) -> int:
        return strings.setdefault(text, len(strings))

    samples = []
    for x in live_arrays(backend):
        labels = [("kind", "buffer"), ("device", f"{x.device.platform}:{x.device.id}"),
                  ("shape", str(list(x.shape))), ("dtype", x.dtype.name)]
        samples.append(_field(2, _packed(2, [1, x.nbytes])
                              + b"".join(_field(3, _varint_field(1, s(k)) + _varint_field(2, s(v)))
                                         for k, v in labels)))
    sample_types = [_field(1, _varint_field(1, s(t)) + _varint_field(2, s(u)))
                    for t, u in (("allocations", "count"), ("space", "bytes"))]
    table = b"".join(_field(6, text.encode()) for text in strings)
    return gzip.compress(b"".join(sample_types) + b"".join(samples) + table)


def save_device_memory_profile(filename: os.PathLike | str, backend: str | None = None) -> None:
    """Write ``device_memory_profile(backend)`` to ``filename``."""
    pathlib.Path(filename).write_bytes(device_memory_profile(backend))


# pprof is a protocol buffer (github.com/google/pprof/blob/main/proto/profile.proto): the few
# fields a profile of samples needs are encoded here rather than with a protobuf library.

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: an embedded message, a string or packed numbers."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _packed(number: int, values: list[int]) -> bytes:
    return _field(number, b"".join(map(_varint, values)))
