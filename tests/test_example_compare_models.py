"""``examples/compare_models.py``: GPT-2, Mixtral and Mamba with the same budget, as a user
runs it with ``--quick`` (three run directories, one dashboard over them, the table), and
its model sizes, flag checks and smoothing."""
import importlib
import json
import re

import numpy as np
import pytest
from test_examples_gallery import EXAMPLES, check_run_dir, run

from fungrad import nn, random

MODELS = ["gpt2", "mixtral", "mamba"]
ROW = r"^(\w+) +([\d,]+) +(\d+) +([\d.]+) +([\d,]+) +([\d.]+) +([\d.]+)$"


@pytest.fixture
def compare(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("compare_models")


def test_quick_run_writes_three_runs_and_one_dashboard(tmp_path):
    out = run("compare_models.py", tmp_path)
    table = {row[0]: row for row in re.findall(ROW, out, re.MULTILINE)}
    assert list(table) == MODELS
    lrs = []
    for name in MODELS:
        records = check_run_dir(tmp_path / name, [], ["train_loss", "val_loss", "lr", "grad_norm"])
        assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
        assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
        config = json.loads((tmp_path / name / "config.json").read_text())
        _, params, steps, _, _, _, val_loss = table[name]
        assert config["model"] == name and config["n_params"] == int(params.replace(",", ""))
        assert int(steps) == 6
        assert float(val_loss) == pytest.approx(records[-1]["val_loss"], abs=5e-4)
        assert (tmp_path / name / "checkpoint.safetensors").exists()
        lrs.append([r["lr"] for r in records])
    assert lrs[0] == lrs[1] == lrs[2]                          # the same schedule for each
    page = (tmp_path / "dashboard.html").read_text()
    data = json.loads(re.search(
        r'<script id="dashboard-data" type="application/json">(.*?)</script>', page,
        re.DOTALL).group(1))
    assert [r["name"] for r in data["runs"]] == MODELS
    assert all([p[0] for p in r["metrics"]["val_loss"]] == [3, 6] for r in data["runs"])
    assert (tmp_path / "loss_curves.png").read_bytes().startswith(b"\x89PNG")
    assert all(f"-- {name} (temperature 0.8):\nROMEO:\n" in out for name in MODELS)
    with pytest.raises(AssertionError, match="already holds a run; choose another --out"):
        run("compare_models.py", tmp_path, "--models", "mamba")


def test_a_time_budget_stops_a_model_and_its_curve_ends_with_a_validation_loss(tmp_path):
    out = run("compare_models.py", tmp_path, "--models", "gpt2", "--max-minutes", "1e-6")
    assert "gpt2 was stopped by the time budget, --max-minutes 1e-06 after 1 steps" in out
    assert [r["step"] for r in check_run_dir(tmp_path / "gpt2", [], ["val_loss"])] == [1]
    page = (tmp_path / "dashboard.html").read_text()
    assert '"name": "gpt2"' in page and '"name": "mamba"' not in page


def test_sizes_follow_the_docstring(compare):
    args = compare.parser().parse_args([])
    compare.check_args(compare.parser(), args)
    configs = compare.model_configs(args, vocab_size=65)
    n_params = {name: nn.count_params(module.init(random.PRNGKey(0), cfg))
                for name, (module, cfg) in configs.items()}
    gpt, mix = configs["gpt2"][1], configs["mixtral"][1]
    active_expert_weights = mix.top_k * 3 * mix.d_model * mix.d_ff
    assert active_expert_weights == pytest.approx(2 * gpt.n_embd * gpt.inner, rel=0.01)
    assert configs["mamba"][1].n_layers == 2 * gpt.n_layer
    assert n_params["mamba"] == pytest.approx(n_params["gpt2"], rel=0.1)


@pytest.mark.parametrize("flags, message", [
    (["--width", "30"], "--width 30 must be divisible by --n-head 4"),
    (["--top-k", "5"], "--top-k 5 must be <= --n-experts 4"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--models", "gpt2", "gpt2"], "--models names a model twice"),
    (["--block-size", "7"], "--block-size must be > 7"),
])
def test_bad_flags_name_the_flag(compare, capsys, flags, message):
    ap = compare.parser()
    with pytest.raises(SystemExit):
        compare.check_args(ap, ap.parse_args(flags))
    assert message in capsys.readouterr().err


def test_ema_is_the_dashboards_smoothing(compare):
    np.testing.assert_allclose(compare.ema([1.0, 2.0, 3.0], 0.5), [1.0, 5 / 3, 2.125 / 0.875])
    np.testing.assert_allclose(compare.ema([4.0, 1.0], 0.0), [4.0, 1.0])
