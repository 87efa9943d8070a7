"""The training dashboard: runs read from their directories, the page drawn in headless
Chromium (every curve, axes, smoothing, configs, no console messages), the live server,
the command line, and the TensorBoard export read back with tensorboard's own reader."""
import html.parser
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fungrad.dashboard import (
    export_tensorboard,
    load_run,
    load_runs,
    make_server,
    page_data,
    render_html,
    write_dashboard,
)
from fungrad.dashboard.__main__ import main
from fungrad.train import MetricsWriter

RNG = np.random.default_rng(0)
USUAL = ["train_loss", "val_loss", "lr", "grad_norm", "tokens_per_sec"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Path coordinates are printed with two decimals: two rounded numbers differ by up to 0.01.
PRINTED_PX = 0.01


def write_run(run_dir, *, steps=40, extra=None, config=None):
    """A synthetic run: noisy loss, validation every 10 steps, a warmup-cosine learning
    rate, grad norms and throughput, a gap (NaN) and a note; returns the logged records."""
    records = []
    with MetricsWriter(run_dir) as log:
        for step in range(0, steps * 5, 5):
            record = {"train_loss": 3.0 * math.exp(-step / 80) + 0.1 * RNG.standard_normal(),
                      "lr": 1e-3 * min(1.0, step / 20) * 0.5
                            * (1 + math.cos(math.pi * step / (5 * steps))),
                      "grad_norm": float(abs(RNG.normal(1.0, 0.3))),
                      "tokens_per_sec": float(12000 + 500 * RNG.standard_normal()),
                      "wall_time": 1.7e9 + 0.002 * step**2}  # steps slowing down
            if step % 50 == 0:
                record["val_loss"] = 3.0 * math.exp(-step / 80) + 0.2
            if step == 15:
                record["grad_norm"] = math.nan  # logged as null: a gap
                record["note"] = "spike"
            record.update(extra(step) if extra else {})
            log.write(step, **record)
            records.append({"step": step, **record})
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config if config is not None else {"n_layer": 4, "lr": 1e-3}, f)
    return records


def expected_curve(records, metric):
    return [(r["step"], r[metric]) for r in records
            if isinstance(r.get(metric), float | int) and math.isfinite(r[metric])]


@pytest.fixture
def two_runs(tmp_path):
    a, b = tmp_path / "alpha", tmp_path / "beta"
    records = {
        "alpha": write_run(a, config={"n_layer": 4, "lr": 1e-3, "note": "</script><b>x</b>",
                                      "sched": {"warmup": 4, "decay": {"kind": "cosine"}},
                                      "empty": {}}),
        "beta": write_run(b, steps=30, extra=lambda step: {"custom_metric": step / 10.0},
                          config={"n_layer": 6, "lr": 1e-3}),
    }
    return [a, b], records


# --------------------------------------------------------------------------- reading runs

def test_runs_hold_every_logged_metric_and_the_config(two_runs):
    dirs, records = two_runs
    runs = load_runs(dirs)
    assert [r.name for r in runs] == ["alpha", "beta"]
    assert runs[0].config["sched"]["decay"] == {"kind": "cosine"} and runs[1].config["n_layer"] == 6
    assert page_data(runs)["metrics"] == USUAL + ["custom_metric"]
    for run in runs:
        for metric, points in run.metrics.items():
            assert [(s, v) for s, v, _ in points] == expected_curve(records[run.name], metric)
            start = records[run.name][0]["wall_time"]
            wall_time = {r["step"]: r["wall_time"] for r in records[run.name]}
            assert [t for _, _, t in points] == [wall_time[s] - start for s, _, _ in points]
    assert "note" not in runs[0].metrics and "wall_time" not in runs[0].metrics


def test_runs_starting_or_misnamed(tmp_path):
    empty = tmp_path / "starting"
    empty.mkdir()
    assert load_run(empty).metrics == {} and load_run(empty).config == {}
    with pytest.raises(FileNotFoundError, match="load_run: run_dir .*missing.* is not a directory"):
        load_run(tmp_path / "missing")
    (empty / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="load_run: .*config.json holds a list"):
        load_run(empty)
    (empty / "config.json").write_text("{")
    with pytest.raises(ValueError, match="load_run: .*config.json is not valid JSON"):
        load_run(empty)
    with pytest.raises(TypeError, match="load_runs: run_dirs must be a non-empty list"):
        load_runs(str(empty))
    (tmp_path / "x" / "run").mkdir(parents=True)
    (tmp_path / "y" / "run").mkdir(parents=True)
    (tmp_path / "z").mkdir()
    runs = load_runs([tmp_path / "x" / "run", tmp_path / "y" / "run", tmp_path / "z"])
    assert [r.name for r in runs] == ["x/run", "y/run", "z"]
    with pytest.raises(ValueError, match="load_runs: run_dirs names a directory twice"):
        load_runs([tmp_path / "z", tmp_path / "x" / ".." / "z"])


# --------------------------------------------------------------------------- the page

def embedded_data(page):
    match = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', page,
                      re.DOTALL)
    return json.loads(match.group(1))


def test_page_is_one_file_needing_no_network(two_runs):
    dirs, _ = two_runs
    page = render_html(load_runs(dirs))
    assert not re.search(r"\b(src|href)\s*=|<link|@import|url\(", page)
    assert "https://" not in page and page.count("http://") == 1  # the SVG namespace name
    # the config's "</script>" cannot close the data element: the data reads back whole
    assert embedded_data(page) == json.loads(json.dumps(page_data(load_runs(dirs))))
    with pytest.raises(ValueError, match="render_html: give the runs"):
        render_html(None)
    with pytest.raises(ValueError, match="render_html: interval_s must be positive"):
        render_html(None, poll="data.json", interval_s=0)


def test_command_line_writes_the_page_where_expected(two_runs, tmp_path, monkeypatch, capsys):
    dirs, _ = two_runs
    monkeypatch.chdir(tmp_path)
    assert main([str(dirs[0])]) == 0
    assert (dirs[0] / "dashboard.html").exists()
    assert main([str(d) for d in dirs]) == 0
    page = (tmp_path / "dashboard.html").read_text()
    assert [r["name"] for r in embedded_data(page)["runs"]] == ["alpha", "beta"]
    assert write_dashboard(dirs, tmp_path / "page.html") == str(tmp_path / "page.html")
    assert "wrote dashboard.html" in capsys.readouterr().out
    for argv, message in ((["nope"], "RUN_DIR 'nope' is not a directory"),
                          ([str(dirs[0]), "--interval", "0"], "--interval must be positive")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


# --------------------------------------------------------------------------- in a browser

class _Dom(html.parser.HTMLParser):
    """The charts of a dumped DOM: per figure, its paths' attributes and its texts by class."""

    def __init__(self, text):
        super().__init__()
        self.figures, self._figure, self._text = {}, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self._figure = self.figures.setdefault(attrs["data-metric"], {"paths": [], "texts": []})
        elif tag == "path" and self._figure is not None:
            self._figure["paths"].append(attrs)
        elif tag == "text" and self._figure is not None:
            self._text = [attrs.get("class"), ""]

    def handle_data(self, data):
        if self._text is not None:
            self._text[1] += data

    def handle_endtag(self, tag):
        if tag == "text" and self._text is not None:
            self._figure["texts"].append(tuple(self._text))
            self._text = None
        elif tag == "figure":
            self._figure = None


def points(d):
    assert re.fullmatch(r"M[-\d.]+,[-\d.]+( L[-\d.]+,[-\d.]+)*", d), d
    return np.array([[float(v) for v in p[1:].split(",")] for p in d.split(" ")])


def ema(ys, weight):
    """TensorBoard's smoothing: an exponential moving average from zero, debiased."""
    acc, out = 0.0, []
    for i, y in enumerate(ys):
        acc = weight * acc + (1 - weight) * y
        out.append(acc / (1 - weight ** (i + 1)))
    return np.array(out)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """The Chromium command line; skips only where no browser is installed or it cannot start."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=4000", "--dump-dom"]
    probe = subprocess.run(command + ["data:text/html,<p>started</p>"], capture_output=True,
                           text=True, timeout=120, check=False)
    if "started" not in probe.stdout:
        pytest.skip(f"chromium cannot start here: {probe.stderr[-500:]}")
    return command


def load_page(browser, url):
    """The DOM after the page's scripts ran, and the console messages it printed."""
    done = subprocess.run(browser + [url], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def check_charts(dom, data, smoothing, xaxis="step", log=False):
    """Every metric has a chart with labelled axes and ticks, and every run with points of
    it a raw and a smoothed path: the raw one is the data on the axes (x the step, or with
    ``xaxis="time"`` the seconds since the run's first record; y the value, or with ``log``
    its logarithm where all values of the chart are positive), the smoothed one its EMA."""
    assert list(dom.figures) == data["metrics"]
    x_title, x_column = {"step": ("step", 0), "time": ("relative time (s)", 2)}[xaxis]
    for metric, figure in dom.figures.items():
        runs = [r for r in data["runs"] if r["metrics"].get(metric)]
        log_y = log and all(p[1] > 0 for r in runs for p in r["metrics"][metric])
        labels = {cls: text for cls, text in figure["texts"] if cls.startswith("axis-label")}
        assert labels["axis-label x"] == x_title, (metric, labels)
        assert labels["axis-label y"].endswith(" (log scale)") == log_y, (metric, labels)
        ticks = [text for cls, text in figure["texts"] if cls == "tick"]
        assert len(ticks) >= 4 and all(ticks), (metric, ticks)
        paths = {(p["data-run"], p["class"]): p for p in figure["paths"]}
        assert set(paths) == {(r["name"], c) for r in runs for c in ("raw", "smoothed")}, metric
        for run in runs:
            xs, values = np.array([(p[x_column], p[1]) for p in run["metrics"][metric]]).T
            raw = points(paths[run["name"], "raw"]["d"])
            smoothed = points(paths[run["name"], "smoothed"]["d"])
            assert len(raw) == len(values) and np.array_equal(raw[:, 0], smoothed[:, 0])
            # the raw curve is the data, scaled onto the axes (y grows downwards)
            ys = np.log(values) if log_y else values
            for column, data_values, sign in ((0, xs, 1), (1, ys, -1)):
                scale, offset = np.polyfit(data_values, raw[:, column], 1)
                assert np.sign(scale) == sign
                np.testing.assert_allclose(raw[:, column], scale * data_values + offset,
                                           atol=PRINTED_PX)
            if log_y:  # smoothing is of the values: the smoothed curve is log(EMA(values))
                expected = scale * np.log(ema(values, smoothing)) + offset
            else:  # the EMA commutes with the affine map onto the axes
                expected = ema(raw[:, 1], smoothing)
            np.testing.assert_allclose(smoothed[:, 1], expected, atol=PRINTED_PX)
            if smoothing > 0 and len(values) > 5:
                assert np.abs(np.diff(smoothed[:, 1])).sum() < np.abs(np.diff(raw[:, 1])).sum()


def test_browser_draws_every_curve_axes_and_configs(browser, two_runs, tmp_path):
    dirs, _ = two_runs
    page = tmp_path / "page.html"
    write_dashboard(dirs, page)
    data = embedded_data(page.read_text())
    for smoothing, xaxis, log in ((0.0, "step", 0), (0.9, "time", 0), (0.5, "step", 1)):
        query = f"?smoothing={smoothing}&x={xaxis}&log={log}"
        text, console = load_page(browser, page.as_uri() + query)
        assert console == []
        check_charts(_Dom(text), data, smoothing, xaxis, log)
    assert 'id="smoothing-value">0.50<' in text
    assert text.count(" (log scale)</text>") == 4  # all but the two metrics that start at 0
    legend = re.search(r'<div id="legend">(.*?)</div>', text).group(1)
    assert re.findall(r"</span>(\w+)</label>", legend) == ["alpha", "beta"]
    config = re.search(r'<table class="config">(.*?)</table>', text).group(1)
    assert re.findall(r"</span>(\w+)</th>", config) == ["alpha", "beta"]
    cell = "([^<]*)"
    rows = re.findall(f'<tr( class="differs")?><th>{cell}</th><td>{cell}</td><td>{cell}</td></tr>',
                      config)
    assert rows == [(' class="differs"', "n_layer", "4", "6"), ("", "lr", "0.001", "0.001"),
                    (' class="differs"', "note", '"&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;"', ""),
                    (' class="differs"', "sched.warmup", "4", ""),
                    (' class="differs"', "sched.decay.kind", '"cosine"', ""),
                    (' class="differs"', "empty", "{}", "")]


# --------------------------------------------------------------------------- serving

@pytest.fixture
def server(two_runs):
    dirs, _ = two_runs
    httpd = make_server(dirs, port=0, interval_s=0.5)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers, response.read().decode()


def test_server_gives_the_latest_metrics(server, two_runs):
    dirs, _ = two_runs
    headers, page = get(server + "/")
    assert 'data-poll="data.json" data-interval="500"' in page
    assert headers["Cache-Control"] == "no-store"
    served = json.loads(get(server + "/data.json")[1])
    assert served == json.loads(json.dumps(page_data(load_runs(dirs))))
    with MetricsWriter(dirs[1]) as log:
        log.write(10_000, train_loss=0.5, new_metric=7)
    data = json.loads(get(server + "/data.json")[1])
    assert data["runs"][1]["metrics"]["train_loss"][-1][:2] == [10_000, 0.5]
    assert data["metrics"][-1] == "new_metric"
    with pytest.raises(urllib.error.HTTPError, match="404"):
        get(server + "/elsewhere")


def test_command_line_serves_until_interrupted(two_runs):
    dirs, _ = two_runs
    command = [sys.executable, "-m", "fungrad.dashboard", str(dirs[0]), "--serve", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = re.search(r"http://\S+/", process.stdout.readline()).group(0)
            assert json.loads(get(url + "data.json")[1])["runs"][0]["name"] == "alpha"
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0
    assert not (dirs[0] / "dashboard.html").exists()  # serving writes no page unless --out


def test_served_page_fetches_and_draws_in_the_browser(browser, server, two_runs):
    text, console = load_page(browser, server + "/")
    assert console == []
    assert re.search(r'<span id="status">updated ', text)
    check_charts(_Dom(text), json.loads(get(server + "/data.json")[1]), 0.6)


# --------------------------------------------------------------------------- TensorBoard

def test_export_reads_back_with_tensorboard(two_runs, tmp_path):
    dirs, records = two_runs
    logdir = tmp_path / "tb"
    path = export_tensorboard(dirs[1], logdir)
    export_tensorboard(dirs[1], logdir)  # again: replaces the file
    assert os.listdir(logdir) == [os.path.basename(path)]
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    metrics = USUAL + ["custom_metric"]
    assert sorted(events.Tags()["scalars"]) == sorted(metrics)
    wall_time = {r["step"]: r["wall_time"] for r in records["beta"]}
    for metric in metrics:
        got = [(e.step, e.value, e.wall_time) for e in events.Scalars(metric)]
        want = [(s, float(np.float32(v)), wall_time[s])
                for s, v in expected_curve(records["beta"], metric)]
        assert got == want, metric


def test_export_of_elapsed_times_ends_at_the_logs_modification_time(tmp_path):
    with MetricsWriter(tmp_path / "run") as log:
        for step, elapsed in ((1, 0.5), (2, 2.0), (3, 3.25)):
            log.write(step, train_loss=1.0 / step, wall_time=elapsed)
        log.write(4, train_loss=0.2)
    os.utime(tmp_path / "run" / "metrics.jsonl", (1.8e9, 1.8e9))
    export_tensorboard(tmp_path / "run", tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    got = [(e.step, e.wall_time) for e in events.Scalars("train_loss")]
    assert got == [(1, 1.8e9 - 2.75), (2, 1.8e9 - 1.25), (3, 1.8e9), (4, 1.8e9)]


def test_command_line_exports_each_run_to_its_own_directory(two_runs, tmp_path, capsys):
    dirs, records = two_runs
    assert main([str(d) for d in dirs] + ["--tensorboard", str(tmp_path / "tb")]) == 0
    assert "dashboard.html" not in capsys.readouterr().out
    for name in ("alpha", "beta"):
        events = EventAccumulator(str(tmp_path / "tb" / name))
        events.Reload()
        assert [e.step for e in events.Scalars("val_loss")] == \
            [s for s, _ in expected_curve(records[name], "val_loss")]
    # runs of one name go to subdirectories named after their parents too, inside LOGDIR
    for parent in "xy":
        write_run(tmp_path / parent / "run", steps=3)
    main([str(tmp_path / "x" / "run"), str(tmp_path / "y" / "run"), "--tensorboard",
          str(tmp_path / "tb2")])
    assert sorted(os.listdir(tmp_path / "tb2")) == ["x", "y"]
    assert len(os.listdir(tmp_path / "tb2" / "x" / "run")) == 1
