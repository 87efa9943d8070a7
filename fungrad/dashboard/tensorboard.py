"""Export a run's metrics as a TensorBoard event file, written here without TensorFlow.

An event file is a sequence of TFRecords, each holding one serialized ``Event`` protocol
buffer: a first event naming the file format, then one event per step whose ``Summary``
holds a ``simple_value`` per metric (the scalars TensorBoard charts). A TFRecord is the
payload's length (little-endian uint64), a masked CRC-32C of those eight bytes, the
payload and its masked CRC-32C. Only ``tensorboard`` itself is needed to view the files:
``tensorboard --logdir LOGDIR``.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterable

from fungrad.dashboard.runs import load_run
from fungrad.train import METRICS_FILE

__all__ = ["crc32c", "export_tensorboard"]

_FILE_VERSION = b"brain.Event:2"
_MASK_DELTA = 0xA282EAD8  # TFRecord's CRC mask: rotate right by 15 bits, then add this
_CLOCK_TIMES = 1e9  # seconds: logged wall times below this (before 2001) are elapsed times


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """The CRC-32C (Castagnoli) checksum of ``data``, which TFRecords use.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)


def _tfrecord(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return length + _masked_crc(length) + payload + _masked_crc(payload)


# Protocol buffer wire format: a field is a varint key (number << 3 | wire type), then the value.
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 fields: negative numbers as two's complement
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _message(number: int, payload: bytes) -> bytes:
    return _key(number, _BYTES) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: bytes = b"",
           scalars: Iterable[tuple[str, float]] = ()) -> bytes:
    """``Event{wall_time=1, step=2, file_version=3, summary=5}``, the summary being
    ``Summary{repeated Value value=1}`` with ``Value{tag=1, simple_value=2 (float)}``."""
    event = _key(1, _FIXED64) + struct.pack("<d", wall_time) + _key(2, _VARINT) + _varint(step)
    if file_version:
        event += _message(3, file_version)
    values = b"".join(
        _message(1, _message(1, tag.encode()) + _key(2, _FIXED32) + struct.pack("<f", value))
        for tag, value in scalars)
    if values:
        event += _message(5, values)
    return event


def export_tensorboard(run_dir: str | os.PathLike, logdir: str | os.PathLike) -> str:
    """Write ``run_dir``'s metrics as scalars (tagged with the metric names) to an event file
    in ``logdir`` and return its path. Exporting again replaces the file.

    TensorBoard's wall times are seconds since the epoch: each step keeps its logged
    ``wall_time`` where the log holds such times (``time.time()``); a log of elapsed
    seconds (a ``wall_time`` below 1e9) is shifted so that its last record falls at the
    log's modification time; steps without one take the modification time.

    >>> import tempfile
    >>> from fungrad.train import MetricsWriter
    >>> run_dir = tempfile.mkdtemp()
    >>> with MetricsWriter(run_dir) as log:
    ...     log.write(1, train_loss=2.0, wall_time=1700000000.0)
    >>> os.path.basename(export_tensorboard(run_dir, tempfile.mkdtemp()))
    'events.out.tfevents.1700000000.fungrad'
    """
    run = load_run(run_dir)
    metrics_path = os.path.join(run.path, METRICS_FILE)
    modified = os.path.getmtime(metrics_path) if os.path.exists(metrics_path) else 0.0
    elapsed = [t for points in run.metrics.values() for _, _, t in points if t is not None]
    if run.start_time is None:
        start = modified
    elif run.start_time >= _CLOCK_TIMES:
        start = run.start_time
    else:
        start = modified - max(elapsed, default=0.0)
    steps: dict[int, tuple[float, list[tuple[str, float]]]] = {}
    for tag, points in run.metrics.items():
        for step, value, t in points:
            wall_time = start + t if t is not None else modified
            steps.setdefault(step, (wall_time, []))[1].append((tag, value))
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, f"events.out.tfevents.{int(start)}.fungrad")
    partial = os.path.join(logdir, ".fungrad-export.partial")  # TensorBoard skips it: no "tfevents"
    with open(partial, "wb") as f:
        f.write(_tfrecord(_event(start, 0, file_version=_FILE_VERSION)))
        for step in sorted(steps):
            wall_time, scalars = steps[step]
            f.write(_tfrecord(_event(wall_time, step, scalars=scalars)))
    os.replace(partial, path)
    return path
