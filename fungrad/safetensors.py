"""The safetensors file format, read and written with NumPy alone, and atomic file writes.

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``)
and then the raw little-endian bytes of every tensor, back to back. Hugging Face stores
model weights this way and ``fungrad.train`` stores checkpoints this way. Reading checks
every offset, size and dtype before touching the data, so a truncated or corrupt file
raises :class:`SafetensorsError` instead of returning garbage; nothing is ever unpickled.

``atomic_write`` writes a temporary file beside the target, fsyncs it and renames it over
the target: a reader sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from typing import Mapping

import numpy as np

from fungrad._core import dtypes
from fungrad._core.namespace import public_dir

__all__ = ["SafetensorsError", "atomic_write", "dumps", "loads", "read", "write"]
__dir__ = public_dir(__all__)

DTYPES = {"BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
          "U16": np.dtype(np.uint16), "I16": np.dtype(np.int16), "U32": np.dtype(np.uint32),
          "I32": np.dtype(np.int32), "U64": np.dtype(np.uint64), "I64": np.dtype(np.int64),
          "F16": np.dtype(np.float16), "F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}
_NAMES = {dt: name for name, dt in DTYPES.items()}


# The format's names of ml_dtypes' types (its F8_E4M3 is the float8 without infinities)
_ML_DTYPES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def _ml_dtype_entries() -> None:
    """Add BF16 and the float8s to the tables: on first need, since that loads ml_dtypes."""
    for name, dtype_name in _ML_DTYPES.items():
        DTYPES[name] = dtypes.np_dtype(dtype_name)
        _NAMES[DTYPES[name]] = name


def supported(dtype: np.dtype) -> bool:
    """Whether arrays of ``dtype`` can be stored in a safetensors file."""
    if dtype.name in _ML_DTYPES.values() and dtype not in _NAMES:
        _ml_dtype_entries()
    return dtype in _NAMES
_MAX_HEADER = 100 * 2**20  # the reference implementation's limit


class SafetensorsError(ValueError):
    """A safetensors file is truncated, corrupt, or holds something this reader refuses."""


def dumps(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialise ``{name: array}`` (and string ``metadata``) to safetensors bytes."""
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset, chunks = 0, []
    for name, value in tensors.items():
        a = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if not supported(a.dtype):
            raise TypeError(f"safetensors: tensor {name!r} has unsupported dtype {a.dtype}")
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw + b"".join(chunks)


def loads(data: bytes | memoryview,
          where: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse safetensors bytes into ``({name: array}, metadata)``, validating everything first."""
    data = memoryview(data)
    if len(data) < 8:
        raise SafetensorsError(f"{where}: {len(data)} bytes is too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise SafetensorsError(f"{where}: header length {n} does not fit in a file of "
                               f"{len(data)} bytes (truncated or not a safetensors file)")
    try:
        header = json.loads(bytes(data[8:8 + n]))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{where}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{where}: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise SafetensorsError(f"{where}: __metadata__ must map strings to strings")
    body = data[8 + n:]
    spans = sorted((_check_entry(name, entry, where), name) for name, entry in header.items())
    end = 0
    for (begin, stop), name in spans:
        if begin != end:
            raise SafetensorsError(f"{where}: tensor {name!r} starts at byte {begin}, "
                                   f"expected {end} (overlapping or missing data)")
        end = stop
    if end != len(body):
        raise SafetensorsError(f"{where}: the tensors take {end} bytes but the file holds "
                               f"{len(body)} (truncated or trailing data)")
    tensors = {}
    for name, entry in header.items():
        begin, stop = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]].newbyteorder("<")
        a = np.frombuffer(body[begin:stop], dtype=dtype).reshape(entry["shape"])
        tensors[name] = a.astype(a.dtype.newbyteorder("="), copy=False)
    return tensors, metadata


def _check_entry(name: str, entry: object, where: str) -> tuple[int, int]:
    """Validate one header entry; return its ``(begin, end)`` byte span."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(f"{where}: tensor {name!r} has a malformed header entry {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype in _ML_DTYPES and dtype not in DTYPES:
        _ml_dtype_entries()
    if dtype not in DTYPES:
        raise SafetensorsError(f"{where}: tensor {name!r} has unsupported dtype {dtype!r}")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise SafetensorsError(f"{where}: tensor {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets) and 0 <= offsets[0] <= offsets[1]):
        raise SafetensorsError(f"{where}: tensor {name!r} has invalid data offsets {offsets!r}")
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise SafetensorsError(f"{where}: tensor {name!r} of shape {shape} and dtype {dtype} needs "
                               f"{nbytes} bytes but spans {offsets[1] - offsets[0]}")
    return offsets[0], offsets[1]


def read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file into ``({name: array}, metadata)``."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        return loads(f.read(), where=path)


def write(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
          metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` to a safetensors file at ``path``, atomically."""
    atomic_write(path, dumps(tensors, metadata))


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    The bytes go to a temporary file in the same directory, which is flushed and fsynced
    and then renamed over ``path``; the directory is fsynced so the rename itself is durable.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
