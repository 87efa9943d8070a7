"""What every example of the gallery shares: its flags (``--quick``, ``--out``, ``--seed``),
its run directory, its ``config.json`` and its pictures.

A run directory (``--out``, default ``runs/<example>-<timestamp>``) holds ``config.json``
(the flags), ``metrics.jsonl`` (written with ``fungrad.train.MetricsWriter``) and the PNG
pictures, so ``python -m fungrad.dashboard RUN_DIR`` shows the run. matplotlib (the
``plots`` extra) is optional: without it the examples still run and print their results,
and say that they skip the pictures.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

try:
    import matplotlib
    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

CONFIG_FILE = "config.json"


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the flags every example has; the example adds its own."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=_HelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes: runs in seconds (the tests use it)")
    ap.add_argument("--out", default=None,
                    help="run directory (default: runs/<example>-<timestamp>)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the init and the data order")
    return ap


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show each flag's default and keep the description's line breaks."""


def start_run(name: str, args: argparse.Namespace, **extra: Any) -> str:
    """Create the run directory and write ``config.json`` (the flags and ``extra``)."""
    run_dir = args.out or os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(run_dir, exist_ok=True)
    config = {"example": name, "args": {k: v for k, v in vars(args).items() if k != "out"}, **extra}
    with open(os.path.join(run_dir, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
    print(f"run directory {run_dir}")
    return run_dir


def save_picture(run_dir: str, filename: str, draw: Callable[[Any], Any]) -> str | None:
    """Draw with ``draw(plt)`` (which returns its figure) and save it as
    ``run_dir/filename``; without matplotlib, say so and skip it."""
    if plt is None:
        print(f"matplotlib is not installed (pip install fungrad[plots]): skipping {filename}")
        return None
    fig = draw(plt)
    path = os.path.join(run_dir, filename)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def finish(run_dir: str) -> None:
    print(f"view the curves:  python -m fungrad.dashboard {run_dir}")
