"""Metrics of a training run as JSON lines, one record per line, flushed as written.

A run directory holds ``metrics.jsonl``: each line is a JSON object with a ``"step"`` and
any scalars (``train_loss``, ``val_loss``, ``lr``, ``grad_norm``, ``tokens_per_sec``,
``wall_time``, ...). Writing appends and flushes every line, so the file can be read
(by the dashboard, or ``tail -f``) while the run goes on, and a resumed run appends to the
same file. Reading skips a last line that is still being written and merges the records
of each step.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Iterator

__all__ = ["METRICS_FILE", "MetricsWriter", "read_metrics"]

METRICS_FILE = "metrics.jsonl"


def _scalar(name: str, value: Any) -> float | int | str | None:
    if isinstance(value, (str, bool)) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"MetricsWriter.write: metric {name!r} is a {type(value).__name__}, "
                        "not a scalar") from None
    if not math.isfinite(number):
        return None  # JSON has no NaN or infinity; a gap in the curve
    return int(number) if isinstance(value, int) else number


class MetricsWriter:
    """Appends metric records to ``run_dir/metrics.jsonl``.

    >>> import tempfile
    >>> run = tempfile.mkdtemp()
    >>> with MetricsWriter(run) as log:
    ...     log.write(1, train_loss=2.5, lr=1e-3)
    >>> read_metrics(run)
    [{'step': 1, 'train_loss': 2.5, 'lr': 0.001}]
    """

    def __init__(self, run_dir: str | os.PathLike):
        os.makedirs(run_dir, exist_ok=True)
        self.path = os.path.join(run_dir, METRICS_FILE)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, step: int, **metrics: Any) -> None:
        """Append one record for ``step`` (arrays of size one are read as Python scalars)."""
        record = {"step": int(step)}
        record.update((name, _scalar(name, value)) for name, value in metrics.items())
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (the ``with`` statement does it on exit)."""
        self._file.close()

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _records(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                return  # the writer is mid-line
            if line.strip():
                yield json.loads(line)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` merged by step, in step order (an empty
    list if there is none). Records of one step are merged, later values winning: a run
    resumed from a checkpoint repeats the steps after it, and its values replace those."""
    path = os.path.join(run_dir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    by_step: dict[int, dict] = {}
    for record in _records(path):
        by_step.setdefault(record["step"], {}).update(record)
    return [by_step[step] for step in sorted(by_step)]
