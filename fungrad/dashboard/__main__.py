"""``python -m fungrad.dashboard RUN_DIR [RUN_DIR ...]``: write, serve or export the dashboard."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fungrad.dashboard.render import write_dashboard
from fungrad.dashboard.runs import load_runs
from fungrad.dashboard.serve import serve
from fungrad.dashboard.tensorboard import export_tensorboard


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fungrad.dashboard",
        description="Training curves of fungrad runs (directories holding metrics.jsonl and "
                    "config.json) as one self-contained HTML page, served live, or exported "
                    "to TensorBoard.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories to show, overlaid")
    parser.add_argument("--out", metavar="FILE",
                        help="where to write the page (default: RUN_DIR/dashboard.html for one "
                             "run, ./dashboard.html for several); with --serve or --tensorboard "
                             "the page is only written when --out is given")
    parser.add_argument("--serve", action="store_true",
                        help="serve the page on localhost; it refreshes while the runs train")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=6060,
                        help="port to serve on, 0 for any free one (default: %(default)s)")
    parser.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                        help="how often the served page refreshes (default: %(default)s)")
    parser.add_argument("--tensorboard", metavar="LOGDIR",
                        help="export the runs as TensorBoard event files, one subdirectory per run "
                             "named after it (view with: tensorboard --logdir LOGDIR)")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error(f"--interval must be positive, got {args.interval}")
    for run_dir in args.run_dirs:
        if not os.path.isdir(run_dir):
            parser.error(f"RUN_DIR {run_dir!r} is not a directory")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tensorboard is not None:
        for run in load_runs(args.run_dirs):
            path = export_tensorboard(run.path, os.path.join(args.tensorboard, run.name))
            print(f"wrote {path}")
    if args.out is not None or not (args.serve or args.tensorboard is not None):
        print(f"wrote {write_dashboard(args.run_dirs, args.out)}")
    if args.serve:
        serve(args.run_dirs, args.host, args.port, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
