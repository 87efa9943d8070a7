"""The main job as a user runs it: ``examples/shakespeare_gpt.py`` and ``examples/sample.py``
as subprocesses, on a tiny model, into temporary run directories.

Checked: every file of the run directory, bit-identical resumption (a run split in two
equals the straight run, params and losses), Ctrl-C (a checkpoint, exit 0, no traceback),
``--help`` naming every flag with its default, and sampling from a run's checkpoint.
"""
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

import fungrad
from fungrad import train
from fungrad.text import CharTokenizer

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16",
        "--batch-size", "4", "--eval-interval", "2", "--eval-batches", "2",
        "--checkpoint-interval", "2", "--warmup-steps", "1", "--max-minutes", "0"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                         text=True, check=False, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out


def load_example():
    spec = importlib.util.spec_from_file_location("shakespeare_gpt",
                                                  EXAMPLES / "shakespeare_gpt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def params_of(run_dir, key: str = "params") -> list[np.ndarray]:
    state = train.load_checkpoint(os.path.join(run_dir, "checkpoint.safetensors"))
    return [np.asarray(leaf) for leaf in fungrad.tree.leaves(state[key])]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    out = run("shakespeare_gpt.py", *TINY, "--steps", "4", "--sample-chars", "40",
              "--out", str(run_dir))
    return run_dir, out


def test_quick_run_writes_every_file_of_the_run_directory(quick_run):
    run_dir, out = quick_run
    assert sorted(os.listdir(run_dir)) == ["char_tokenizer.json", "checkpoint.safetensors",
                                           "config.json", "metrics.jsonl", "samples.txt"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["steps"] == 4 and config["args"]["n_embd"] == 32
    assert config["model"]["n_positions"] == 16 and config["model"]["vocab_size"] == 65
    assert config["tokens_per_step"] == 4 * 16
    records = train.read_metrics(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for r in records:
        assert {"train_loss", "lr", "grad_norm", "tokens_per_sec", "wall_time"} <= set(r)
        assert 3.0 < r["train_loss"] < 5.0  # about log(65) = 4.17 before training
    assert [r["step"] for r in records if "val_loss" in r] == [2, 4]
    assert records[0]["lr"] == 0.0 and records[1]["lr"] == pytest.approx(3e-3)  # one warm-up step
    state = train.load_checkpoint(run_dir / "checkpoint.safetensors")
    assert int(state["step"]) == 4 and int(state["data_seed"]) == 0
    assert np.asarray(state["dropout_key"]).dtype == np.uint32
    assert set(state) == {"params", "opt_state", "step", "dropout_key", "data_seed", "elapsed",
                          "ema"}
    assert CharTokenizer.load(run_dir).vocab_size == 65
    sample = (run_dir / "samples.txt").read_text().split("\n", 1)[1]
    assert len(sample) == 40 + 1  # 40 characters over three context windows, and a newline
    assert f"python -m fungrad.dashboard {run_dir}" in out.stdout


@pytest.mark.parametrize("processes", ["1", "2"])
def test_resume_is_bit_identical(tmp_path, processes):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY, "--steps", "8", "--sample-chars", "0", "--dropout", "0.1",
              "--processes", processes]
    run("shakespeare_gpt.py", *common, "--out", str(straight))
    first = run("shakespeare_gpt.py", *common, "--out", str(split), "--stop-at", "4")
    assert f"--resume {split}" in first.stdout
    assert int(train.load_checkpoint(split / "checkpoint.safetensors")["step"]) == 4
    run("shakespeare_gpt.py", "--resume", str(split), "--processes", processes)
    for key in ("params", "ema"):
        for a, b in zip(params_of(straight, key), params_of(split, key), strict=True):
            np.testing.assert_array_equal(a, b)
    losses = lambda d: [r["train_loss"] for r in train.read_metrics(d)]
    assert losses(split) == losses(straight) and len(losses(split)) == 8


def test_two_processes_train_like_one(tmp_path):
    """Data-parallel on two processes (2 of the 4 sequences each, gradients averaged) equals
    one process on the whole batch up to float32 rounding: the losses to 1e-5; the params,
    whose scale is 0.02 (GPT-2's initial weights, set here), to 1e-5 absolute, since Adam
    divides each gradient by its own magnitude and so turns the rounding of a gradient near
    zero into a step of up to lr."""
    common = [*TINY, "--steps", "6", "--sample-chars", "0", "--warmup-steps", "2",
              "--init-std", "0.02"]
    one = run("shakespeare_gpt.py", *common, "--processes", "1", "--out", str(tmp_path / "one"))
    two = run("shakespeare_gpt.py", *common, "--processes", "2", "--out", str(tmp_path / "two"))
    assert "on 2 processes" in two.stdout and "on 2 processes" not in one.stdout
    assert json.loads((tmp_path / "two" / "config.json").read_text())["args"]["processes"] == 2
    metrics = [train.read_metrics(tmp_path / d) for d in ("one", "two")]
    for key in ("train_loss", "grad_norm", "val_loss"):
        got = [[r[key] for r in m if key in r] for m in metrics]
        np.testing.assert_allclose(got[1], got[0], rtol=1e-5, err_msg=key)
    for a, b in zip(params_of(tmp_path / "one"), params_of(tmp_path / "two"), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_time_budget_stops_with_a_checkpoint_and_each_resume_gets_its_own(tmp_path):
    budget = [*TINY[:-2], "--max-minutes", "1e-9", "--steps", "50", "--sample-chars", "0"]
    first = run("shakespeare_gpt.py", *budget, "--out", str(tmp_path))
    assert "stopped by the time budget" in first.stdout
    state = lambda: train.load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert int(state()["step"]) == 1
    config = json.loads((tmp_path / "config.json").read_text())
    del config["args"]["activation"]  # a run started before the flag existed resumes too
    (tmp_path / "config.json").write_text(json.dumps(config))
    run("shakespeare_gpt.py", "--resume", str(tmp_path), "--max-minutes", "1e-9")
    assert int(state()["step"]) == 2 and state()["elapsed"] > 0
    assert [r["step"] for r in train.read_metrics(tmp_path)] == [1, 2]


def test_steps_0_plans_as_many_steps_as_fit_the_time_budget(tmp_path):
    budget = [*TINY[:-4], "--max-minutes", "0.05", "--steps", "0", "--sample-chars", "0"]
    out = run("shakespeare_gpt.py", *budget, "--out", str(tmp_path))
    planned = json.loads((tmp_path / "config.json").read_text())["args"]
    assert planned["steps"] > planned["warmup_steps"] == 100  # the warm-up is set before the plan
    assert f"planned {planned['steps']} steps" in out.stdout
    step = int(train.load_checkpoint(tmp_path / "checkpoint.safetensors")["step"])
    assert step == planned["steps"] or "stopped by the time budget" in out.stdout


@pytest.mark.parametrize("processes", ["1", "2"])
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path, processes):
    args = [*TINY, "--steps", "100000", "--sample-chars", "0", "--out", str(tmp_path),
            "--processes", processes]
    child = subprocess.Popen([sys.executable, str(EXAMPLES / "shakespeare_gpt.py"), *args], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith("training:"):
            break
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "stopped by Ctrl-C" in stdout and f"--resume {tmp_path}" in stdout
    step = int(train.load_checkpoint(tmp_path / "checkpoint.safetensors")["step"])
    assert 1 <= step < 100000
    assert train.read_metrics(tmp_path)[-1]["step"] == step


def test_help_names_every_flag_with_its_default():
    text = load_example().parser().format_help()
    for flag in ["--n-layer", "--n-head", "--n-embd", "--block-size", "--batch-size",
                 "--steps", "--max-minutes", "--lr", "--min-lr", "--warmup-steps",
                 "--weight-decay", "--ema", "--init-std", "--dropout", "--eval-interval",
                 "--eval-batches", "--checkpoint-interval", "--out", "--resume", "--processes",
                 "--seed", "--sample-chars", "--temperature", "--top-k"]:
        assert flag in text
    assert text.count("(default:") >= 24


def test_processes_0_takes_a_core_per_512_characters_of_a_step(monkeypatch):
    example = load_example()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    count = lambda *flags: example.processes_for(example.parser().parse_args(list(flags)))
    assert count() == 3                                            # 24 x 64 characters
    assert count("--batch-size", "16") == 2
    assert count("--batch-size", "12", "--block-size", "128") == 3
    assert count("--batch-size", "10", "--block-size", "512") == 5  # 8 cores, but 10 % 8 != 0
    assert count("--batch-size", "4", "--block-size", "16") == 1
    assert count("--processes", "4") == 4


def test_bad_flags_are_named(capsys):
    example = load_example()
    for args, message in [
            (["--n-embd", "30", "--n-head", "4"], "--n-embd 30 must be divisible by --n-head 4"),
            (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
            (["--ema", "1"], "--ema must be in [0, 1), got 1.0"),
            (["--init-std", "0"], "--init-std must be > 0, got 0.0"),
            (["--batch-size", "6", "--processes", "4"],
             "--processes must be >= 0 and divide --batch-size 6, got 4"),
            (["--steps", "0", "--max-minutes", "0"], "--steps must be >= 1 (or 0 with a"),
            (["--resume", "no/such/run"], "--resume no/such/run: no checkpoint.safetensors")]:
        with pytest.raises(SystemExit) as exit_:
            example.prepare_run(example.parser(), args)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_sample_streams_from_the_checkpoint(quick_run):
    run_dir, _ = quick_run
    out = run("sample.py", str(run_dir), "--prompt", "ROMEO:", "--max-new-tokens", "30",
              "--top-k", "5")
    assert out.stdout.startswith("ROMEO:") and len(out.stdout) == len("ROMEO:") + 30 + 1
    again = run("sample.py", str(run_dir), "--prompt", "ROMEO:", "--max-new-tokens", "30",
                "--top-k", "5")
    assert again.stdout == out.stdout  # the same seed gives the same text


def test_ema_is_the_model_and_its_decay_warms_up(quick_run):
    example = load_example()
    update = example.make_ema_update(0.9)
    zeros, ones = {"w": fungrad.numpy.zeros(3)}, {"w": fungrad.numpy.ones(3)}
    early = update(zeros, ones, fungrad.numpy.asarray(0, np.uint32))   # decay min(0.9, 1/10)
    np.testing.assert_allclose(np.asarray(early["w"]), 0.9, rtol=1e-6)
    late = update({"w": fungrad.numpy.zeros(3)}, ones, fungrad.numpy.asarray(990, np.uint32))
    np.testing.assert_allclose(np.asarray(late["w"]), 0.1, rtol=1e-5)
    state = train.load_checkpoint(quick_run[0] / "checkpoint.safetensors")
    assert example.model_params(state) is state["ema"]
    assert not np.array_equal(state["ema"]["wte"]["embedding"], state["params"]["wte"]["embedding"])
    assert example.model_params({"params": state["params"]}) is state["params"]
