"""The dashboard on a long run: reading the log, rendering the page, drawing it in headless
Chromium, and exporting to TensorBoard against tensorboard's own event writer.

A synthetic run of ``--steps`` records (train loss, learning rate, grad norm, tokens/s and
wall time every step, validation loss every 100) is written with MetricsWriter. Prints
milliseconds (minimum and median over alternating rounds), the page's size, and the load
average; then each exporter again alone in its own process.
Run: python benchmarks/bench_dashboard.py [--steps 10000]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved, load_average

from fungrad.dashboard import export_tensorboard, load_run, render_html
from fungrad.train import MetricsWriter


def write_run(run_dir: str, steps: int) -> None:
    with MetricsWriter(run_dir) as log:
        for step in range(steps):
            record = {"train_loss": 3.0 * math.exp(-step / 2000) + 0.05 * math.sin(step),
                      "lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * step / steps)),
                      "grad_norm": 1.0 + 0.1 * math.cos(step), "tokens_per_sec": 12000.0 + step % 7,
                      "wall_time": 1.7e9 + 0.1 * step}
            if step % 100 == 0:
                record["val_loss"] = 3.0 * math.exp(-step / 2000) + 0.1
            log.write(step, **record)


def tensorboard_export(run_dir: str, logdir: str) -> None:
    """The reference: the same scalars written with tensorboard's EventFileWriter."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    run = load_run(run_dir)
    steps: dict[int, list] = {}
    for tag, points in run.metrics.items():
        for step, value, t in points:
            steps.setdefault(step, [run.start_time + t]).append(
                summary_pb2.Summary.Value(tag=tag, simple_value=value))
    writer = EventFileWriter(logdir)
    for step in sorted(steps):
        wall_time, *values = steps[step]
        writer.add_event(event_pb2.Event(wall_time=wall_time, step=step,
                                         summary=summary_pb2.Summary(value=values)))
    writer.close()


EXPORTERS = {"fungrad export_tensorboard": export_tensorboard,
             "tensorboard EventFileWriter": tensorboard_export}


def chromium_ms(page: str, profile: str) -> float:
    start = time.perf_counter()
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={profile}", "--dump-dom", "file://" + page],
                   check=True, capture_output=True, timeout=300)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=sorted(EXPORTERS), help="time one exporter alone")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    run_dir = os.path.join(tmp, "run")
    write_run(run_dir, args.steps)
    logdirs = iter(range(10**6))
    exporters = {name: (lambda fn=fn: fn(run_dir, os.path.join(tmp, f"tb{next(logdirs)}")))
                 for name, fn in EXPORTERS.items() if args.only in (None, name)}
    if args.only:
        (low, median), = interleaved(exporters, rounds=args.rounds, number=1).values()
        print(f"  alone: {args.only:<28} min {low * 1e3:8.1f} ms   median {median * 1e3:8.1f} ms")
        return
    print(f"Dashboard on a run of {args.steps} steps, load {load_average()}")
    run = load_run(run_dir)
    fns = {"load_run": lambda: load_run(run_dir), "render_html": lambda: render_html([run]),
           **exporters}
    for name, (low, median) in interleaved(fns, rounds=args.rounds, number=1).items():
        print(f"  {name:<35} min {low * 1e3:8.1f} ms   median {median * 1e3:8.1f} ms")
    page = os.path.join(tmp, "page.html")
    with open(page, "w") as f:
        f.write(render_html([run]))
    print(f"  page size {os.path.getsize(page) / 1e6:.2f} MB")
    if shutil.which("chromium"):
        small = os.path.join(tmp, "small.html")
        with open(small, "w") as f:
            first = {k: v[:10] for k, v in run.metrics.items()}
            f.write(render_html([dataclasses.replace(run, metrics=first)]))
        for label, path in (("10 steps", small), (f"{args.steps} steps", page)):
            times = [chromium_ms(path, os.path.join(tmp, f"profile{i}")) for i in range(3)]
            print(f"  chromium load+draw+dump, {label:<12} min {min(times):8.1f} ms")
    for name in EXPORTERS:
        subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--rounds",
                        str(args.rounds), "--only", name], check=True)
    print(f"load after: {load_average()}")


if __name__ == "__main__":
    main()
