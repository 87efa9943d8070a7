"""Run directories as the dashboard sees them: a config and one curve per metric.

A run directory holds ``config.json`` (the run's flags, a JSON object) and
``metrics.jsonl`` (written by :class:`fungrad.train.MetricsWriter`). Either may be
missing while a run is starting: the run then has an empty config or no curves yet.
Every numeric key of the log except ``step`` and ``wall_time`` is a metric; ``wall_time``
(seconds on any clock: ``time.time()``, or the training time elapsed) gives the other
horizontal axis, the seconds since the run's first record.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from fungrad.train import read_metrics

__all__ = ["CONFIG_FILE", "Run", "load_run", "load_runs", "metric_names"]

CONFIG_FILE = "config.json"
_NOT_METRICS = ("step", "wall_time")
# The metrics a training script usually logs come first, in this order; others follow by name.
_USUAL_ORDER = ("train_loss", "val_loss", "lr", "grad_norm", "tokens_per_sec")


@dataclasses.dataclass(frozen=True)
class Run:
    """One run: its label, directory, config and curves.

    ``metrics`` maps a metric to its points ``(step, value, seconds since start_time)``, in
    step order; the time is ``None`` where the record has no ``wall_time``. ``start_time``
    is the earliest ``wall_time`` of the log (``None`` if it has none).
    """
    name: str
    path: str
    config: dict[str, Any]
    metrics: dict[str, list[tuple[int, float, float | None]]]
    start_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The run as the page's JSON data."""
        return {"name": self.name, "path": self.path, "config": self.config,
                "metrics": {name: [list(p) for p in points]
                            for name, points in self.metrics.items()}}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_config(run_dir: str) -> dict[str, Any]:
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        try:
            # NaN and Infinity (Python's json writes them) kept as text: the page's JSON has neither
            config = json.load(f, parse_constant=str)
        except json.JSONDecodeError as e:
            raise ValueError(f"load_run: {path} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        # a ValueError, as for invalid JSON: the file's content is wrong, not an argument's type
        raise ValueError(  # noqa: TRY004
            f"load_run: {path} holds a {type(config).__name__}, not a JSON object")
    return config


def load_run(run_dir: str | os.PathLike, name: str | None = None) -> Run:
    """Read ``run_dir``'s config and metrics; ``name`` defaults to the directory's name.

    Records whose value is missing, ``None`` or not finite leave a gap (no point), as do
    non-numeric values such as notes.

    >>> import tempfile
    >>> from fungrad.train import MetricsWriter
    >>> run_dir = tempfile.mkdtemp()
    >>> with MetricsWriter(run_dir) as log:
    ...     log.write(1, train_loss=2.0, wall_time=100.0)
    ...     log.write(2, train_loss=1.5, lr=0.1, wall_time=101.5)
    >>> load_run(run_dir, name="demo").metrics
    {'train_loss': [(1, 2.0, 0.0), (2, 1.5, 1.5)], 'lr': [(2, 0.1, 1.5)]}
    """
    path = os.fspath(run_dir)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"load_run: run_dir {path!r} is not a directory")
    records = read_metrics(path)
    times = [r["wall_time"] for r in records if _is_number(r.get("wall_time"))]
    start = min(times, default=None)
    metrics: dict[str, list[tuple[int, float, float | None]]] = {}
    for record in records:
        wall_time = record.get("wall_time")
        t = wall_time - start if _is_number(wall_time) else None
        for key, value in record.items():
            if key not in _NOT_METRICS and _is_number(value):
                metrics.setdefault(key, []).append((record["step"], value, t))
    label = name if name is not None else os.path.basename(os.path.abspath(path))
    return Run(label, path, _read_config(path), metrics, start)


def _run_names(paths: list[str]) -> list[str]:
    """Each directory's last path components, as few as tell it from the others: ``a/run``
    and ``b/run`` for two directories ``run``, but ``other`` beside them."""
    full = [os.path.abspath(p) for p in paths]
    if len(set(full)) < len(full):
        raise ValueError(f"load_runs: run_dirs names a directory twice: {paths}")
    parts = [f.split(os.sep) for f in full]
    depth = [1] * len(parts)
    while True:
        names = ["/".join(p[-d:]).lstrip("/") for p, d in zip(parts, depth)]
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            return names
        depth = [d + (n in clashes) for d, n in zip(depth, names)]


def load_runs(run_dirs: Sequence[str | os.PathLike]) -> list[Run]:
    """Read several runs, each named after its directory (with its parents where two
    directories share a name: the name is also the run's subdirectory in an export).

    Examples:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> for d in "ab":
        ...     os.makedirs(os.path.join(root, d, "run"))
        >>> [run.name for run in load_runs([os.path.join(root, d, "run") for d in "ab"])]
        ['a/run', 'b/run']
    """
    if isinstance(run_dirs, (str, os.PathLike)) or not run_dirs:
        raise TypeError("load_runs: run_dirs must be a non-empty list of directories, "
                        f"got {run_dirs!r}")
    paths = [os.fspath(d) for d in run_dirs]
    return [load_run(p, name=n) for p, n in zip(paths, _run_names(paths))]


def metric_names(runs: Sequence[Run]) -> list[str]:
    """Every metric of ``runs``: the usual training metrics first, then the others by name.

    >>> metric_names([Run("a", "a", {}, {"zeta": [], "lr": [], "train_loss": []})])
    ['train_loss', 'lr', 'zeta']
    """
    found = {name for run in runs for name in run.metrics}
    return [n for n in _USUAL_ORDER if n in found] + sorted(found.difference(_USUAL_ORDER))
