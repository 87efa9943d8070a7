"""The dashboard page: one self-contained HTML file with the data, styles and renderer inline.

The page needs no network: the charts are inline SVG drawn by a small script of this
package (``static/dashboard.js``) from JSON embedded in the page. A page made for the
server carries no data; it fetches it from the server's JSON endpoint and polls for updates.
"""
from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from importlib import resources

from fungrad.dashboard.runs import Run, load_runs, metric_names

__all__ = ["DASHBOARD_FILE", "page_data", "render_html", "write_dashboard"]

DASHBOARD_FILE = "dashboard.html"


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def page_data(runs: Sequence[Run]) -> dict:
    """What the renderer draws: the runs and the metrics to chart, in chart order."""
    return {"runs": [run.to_json() for run in runs], "metrics": metric_names(runs)}


def _script_json(data: dict | None) -> str:
    # "<" escaped so that no string in the data can close the script element.
    return json.dumps(data, allow_nan=False).replace("<", "\\u003c")


def render_html(runs: Sequence[Run] | None, *, poll: str | None = None,
                interval_s: float = 5.0) -> str:
    """The page for ``runs``, or, with ``poll`` (a URL), a page that fetches its data there
    every ``interval_s`` seconds (``runs`` is then only used for the title).

    >>> page = render_html([Run("demo", "demo", {"lr": 0.1}, {"train_loss": [(1, 2.0, None)]})])
    >>> page.startswith("<!doctype html>") and '"train_loss"' in page and "<svg" not in page
    True
    """
    if poll is None and runs is None:
        raise ValueError("render_html: give the runs to draw, or a poll URL to fetch them from")
    if not interval_s > 0:
        raise ValueError(f"render_html: interval_s must be positive, got {interval_s!r}")
    names = ", ".join(run.name for run in runs or ())
    body = (f'<body data-poll="{html.escape(poll)}" data-interval="{round(interval_s * 1000)}">'
            if poll is not None else "<body>")
    data = None if poll is not None else page_data(runs)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(f"fungrad dashboard: {names}" if names else "fungrad dashboard")}</title>
<style>
{_static("dashboard.css")}</style>
</head>
{body}
<header>
<h1>fungrad dashboard</h1>
<label>Smoothing <input id="smoothing" type="range" min="0" max="0.99" step="0.01">
<output id="smoothing-value"></output></label>
<label>Horizontal axis <select id="xaxis"><option value="step">step</option>
<option value="time">relative time</option></select></label>
<label><input id="log" type="checkbox"> log scale</label>
<span id="status"></span>
</header>
<noscript>The charts are drawn by JavaScript; enable it to see them.</noscript>
<div id="legend"></div>
<div id="charts"></div>
<h2>Config</h2>
<div id="configs"></div>
<div id="tooltip" hidden></div>
<script id="dashboard-data" type="application/json">{_script_json(data)}</script>
<script>
{_static("dashboard.js")}</script>
</body>
</html>
"""


def write_dashboard(run_dirs: Sequence[str | os.PathLike],
                    out: str | os.PathLike | None = None) -> str:
    """Write the page for ``run_dirs`` and return its path: ``out``, or by default
    ``RUN_DIR/dashboard.html`` for one run and ``./dashboard.html`` for several."""
    runs = load_runs(run_dirs)
    if out is None:
        out = os.path.join(runs[0].path, DASHBOARD_FILE) if len(runs) == 1 else DASHBOARD_FILE
    with open(out, "w", encoding="utf-8") as f:
        f.write(render_html(runs))
    return os.fspath(out)
