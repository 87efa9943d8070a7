"""``fungrad.dashboard``: the training curves of one or more runs, in a browser.

``python -m fungrad.dashboard RUN_DIR [RUN_DIR ...]`` writes one self-contained HTML page
(inline SVG charts, no network) with a chart per metric, the runs overlaid, a smoothing
slider and each run's config; ``--serve`` serves it on localhost, refreshing while the runs
train; ``--tensorboard LOGDIR`` exports the runs as TensorBoard event files. See
``docs/dashboard.md``.
"""
from fungrad.dashboard.render import DASHBOARD_FILE, page_data, render_html, write_dashboard
from fungrad.dashboard.runs import CONFIG_FILE, Run, load_run, load_runs, metric_names
from fungrad.dashboard.serve import make_server, serve
from fungrad.dashboard.tensorboard import export_tensorboard

__all__ = ["CONFIG_FILE", "DASHBOARD_FILE", "Run", "export_tensorboard", "load_run", "load_runs",
           "make_server", "metric_names", "page_data", "render_html", "serve", "write_dashboard"]
