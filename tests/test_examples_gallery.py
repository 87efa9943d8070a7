"""The examples gallery as a user runs it: each example with ``--quick`` as a subprocess into
a temporary run directory, checking its files, its metrics log and the figures it prints.

Also: the CIFAR-10 reader on batches written as the real ones are, and its refusal of a
pickle that would run code; the examples without matplotlib; ``kv_cache.py --run`` on a
run directory in the layout of ``examples/shakespeare_gpt.py``.
"""
import dataclasses
import importlib
import json
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from fungrad import dashboard, random, train
from fungrad.models import gpt2
from fungrad.text import CharTokenizer

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
NUMBER = r"([-+0-9.e]+)"


def run(script: str, out_dir, *args: str, prelude: str = "") -> str:
    """Run ``examples/script --quick --out out_dir *args``; return what it printed. A
    ``prelude`` runs first in the same interpreter (to hide a module, say)."""
    argv = [str(EXAMPLES / script), "--quick", "--out", str(out_dir), *args]
    if prelude:
        code = (f"import runpy, sys; {prelude}; sys.path.insert(0, {str(EXAMPLES)!r}); "
                f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')")
        argv = ["-c", code]
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=ENV,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out.stdout


def figure(pattern: str, text: str) -> float:
    """The number that ``pattern`` (with one ``NUMBER`` group) finds in ``text``."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text}"
    return float(match.group(1))


def check_run_dir(run_dir, pictures: list[str], metrics: list[str]) -> list[dict]:
    """config.json, the pictures and metrics.jsonl with the given metric names, as the
    dashboard reads them; returns the metric records."""
    assert set(os.listdir(run_dir)) >= {"config.json", "metrics.jsonl", *pictures}
    for name in pictures:
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG")
    run = dashboard.load_run(run_dir)
    assert run.config["args"]["quick"] is True
    assert set(metrics) <= set(run.metrics), sorted(run.metrics)
    return train.read_metrics(run_dir)


@pytest.fixture
def examples_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


# --------------------------------------------------------------------------- each example

def test_digits(tmp_path):
    out = run("digits.py", tmp_path)
    records = check_run_dir(tmp_path, ["confusion.png"],
                            ["mlp_test_acc", "cnn_test_acc", "cnn_train_loss"])
    mlp = figure(rf"MLP test accuracy: {NUMBER}", out)
    cnn = figure(rf"CNN test accuracy: {NUMBER}", out)
    assert mlp > 0.8 and cnn > 0.8   # two epochs already reach 0.89 and 0.97
    assert records[-1]["cnn_test_acc"] == pytest.approx(cnn, abs=1e-4)
    matrix = re.search(r"columns: predicted\):\n((?:.*\n){10})", out).group(1)
    counts = np.array([row.split() for row in matrix.splitlines()], int)
    assert counts.shape == (10, 10) and counts.sum() == 360
    assert np.trace(counts) / 360 == pytest.approx(cnn, abs=1e-4)


def test_resnet_on_digits(tmp_path):
    out = run("resnet_cifar.py", tmp_path)
    check_run_dir(tmp_path, ["accuracy.png"], ["train_loss", "lr", "train_acc", "test_acc"])
    assert "digits upscaled to 32x32x3: 64 training and 64 test images" in out
    assert 0 <= figure(rf"test accuracy after 2 epochs: {NUMBER}", out) <= 1


def write_cifar_batch(path, images: np.ndarray, labels: list[int]) -> None:
    """A batch as CIFAR-10's python files hold it: a dict of bytes keys, the images as an
    ``(N, 3072)`` uint8 array (channel planes, row-major), built by ``numpy.core.multiarray``."""
    batch = {b"batch_label": b"fake batch", b"labels": labels,
             b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
             b"filenames": [b"img%d.png" % i for i in range(len(images))]}
    data = pickle.dumps(batch, protocol=3).replace(b"cnumpy._core.multiarray\n",
                                                   b"cnumpy.core.multiarray\n")
    path.write_bytes(data)


@pytest.fixture
def fake_cifar(tmp_path):
    rng = np.random.default_rng(0)
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        write_cifar_batch(directory / name, rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8),
                          rng.integers(0, 10, 32).tolist())
    return directory


def test_cifar_reader(examples_path, fake_cifar):
    resnet_cifar = importlib.import_module("resnet_cifar")
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    write_cifar_batch(fake_cifar / "one", images, [1, 2, 3])
    with open(fake_cifar / "one", "rb") as f:
        x, y = resnet_cifar.read_batch(f)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, [1, 2, 3])
    (x_train, _), (x_test, _) = resnet_cifar.load_cifar(fake_cifar)
    assert x_train.shape == (64, 32, 32, 3) and x_test.shape == (32, 32, 32, 3)
    assert x_train.dtype == np.float32


class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_cifar_reader_refuses_a_pickle_that_runs_code(examples_path, tmp_path):
    resnet_cifar = importlib.import_module("resnet_cifar")
    marker = tmp_path / "ran"
    payload = tmp_path / "data_batch_1"
    payload.write_bytes(pickle.dumps({b"data": _RunsCode(str(marker)), b"labels": [0]}, protocol=3))
    with open(payload, "rb") as f, \
            pytest.raises(pickle.UnpicklingError, match=r"ArrayUnpickler: .*system"):
        resnet_cifar.read_batch(f)
    assert not marker.exists()
    with open(payload, "rb") as f:  # the plain unpickler would have run it
        pickle.load(f)
    assert marker.exists()


def test_resnet_on_cifar_batches(tmp_path, fake_cifar):
    out = run("resnet_cifar.py", tmp_path / "run", "--data", str(fake_cifar))
    check_run_dir(tmp_path / "run", ["accuracy.png"], ["train_loss", "train_acc", "test_acc"])
    assert "CIFAR-10: 64 training and 32 test images" in out


def test_augment_crops_and_flips(examples_path):
    augment = importlib.import_module("resnet_cifar").augment
    images = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1) + 1
    out = augment(np.random.default_rng(0), np.repeat(images, 50, axis=0), pad=1)
    assert out.shape == (100, 4, 4, 1)
    for img, src in zip(out, np.repeat(images, 50, axis=0)):
        padded = np.pad(src[..., 0], 1)
        windows = [padded[i:i + 4, j:j + 4] for i in range(3) for j in range(3)]
        assert any(np.array_equal(img[..., 0], w) or np.array_equal(img[..., 0], w[:, ::-1])
                   for w in windows)
    assert len({img.tobytes() for img in out[:50]}) > 5   # crops and flips vary


def test_grokking(tmp_path):
    out = run("grokking.py", tmp_path)
    records = check_run_dir(tmp_path, ["accuracy.png"], ["train_acc", "val_acc", "train_loss"])
    assert "a / b mod 11: 33 training pairs, 77 validation pairs" in out
    assert [r["step"] for r in records] == list(range(5, 45, 5))
    assert figure(rf"after 40 steps \(\d+ s\): train accuracy {NUMBER}", out) == pytest.approx(
        records[-1]["train_acc"], abs=1e-3)
    assert re.search(r"train accuracy reached 99% at step: (\d+|not within the run)", out)


def test_division_table(examples_path):
    grokking = importlib.import_module("grokking")
    tokens, labels = grokking.division_table(7)
    assert tokens.shape == (42, 4) and set(tokens[:, 1]) == {7} and set(tokens[:, 3]) == {8}
    np.testing.assert_array_equal(labels * tokens[:, 2] % 7, tokens[:, 0])


def test_per_example_grads(tmp_path):
    out = run("per_example_grads.py", tmp_path)
    check_run_dir(tmp_path, ["grad_norms.png"],
                  ["speedup", "mean_grad_norm", "clipped_frac", "dp_test_acc"])
    assert figure(rf"max \|vmap - loop\| = {NUMBER}: the gradients agree", out) < 1e-5
    assert figure(rf"speed-up: +{NUMBER}x", out) > 0
    assert 0 <= figure(rf"DP-SGD \(C=1, sigma=1\) test accuracy: {NUMBER}", out) <= 1


def test_kv_cache(tmp_path):
    out = run("kv_cache.py", tmp_path)
    check_run_dir(tmp_path, ["decode_time.png"], ["train_loss", "full_ms", "cached_ms"])
    table = re.findall(rf"^ +(\d+) +{NUMBER} +{NUMBER} +{NUMBER}x$", out, re.MULTILINE)
    assert [int(row[0]) for row in table] == [8, 16, 32, 60]
    samples = (tmp_path / "samples.txt").read_text()
    assert samples.count("==== ") == 12 and "-- top-p (p=0.9, T=0.8)" in samples


def test_kv_cache_loads_a_run_of_the_main_job(examples_path, tmp_path):
    """A run directory as examples/shakespeare_gpt.py writes it: config.json's "model",
    the checkpoint's "params", the tokenizer."""
    run_dir = tmp_path / "main-job-run"
    tok = CharTokenizer.train("".join(importlib.import_module("kv_cache").PROMPTS))
    cfg = gpt2.Config(vocab_size=tok.vocab_size, n_positions=40, n_embd=16, n_layer=1, n_head=2,
                      bos_token_id=None, eos_token_id=None)
    run_dir.mkdir()
    tok.save(run_dir)
    (run_dir / "config.json").write_text(json.dumps({"model": dataclasses.asdict(cfg)}))
    train.save_checkpoint(run_dir / "checkpoint.safetensors",
                          {"params": gpt2.init(random.PRNGKey(0), cfg)})
    out = run("kv_cache.py", tmp_path / "out", "--run", str(run_dir))
    assert "GPT-2 with 1 layers of width 16" in out
    rows = re.findall(r"^ +(\d+) +[0-9.]+ +[0-9.]+ +[0-9.]+x$", out, re.MULTILINE)
    assert [int(n) for n in rows] == [8, 16, 32, 36]
    assert "train_loss" not in set().union(*train.read_metrics(tmp_path / "out"))


def test_examples_run_without_matplotlib(tmp_path):
    out = run("per_example_grads.py", tmp_path, prelude="sys.modules['matplotlib'] = None")
    assert ("matplotlib is not installed (pip install fungrad[plots]): "
            "skipping grad_norms.png") in out
    assert not list(tmp_path.glob("*.png"))
    check_run_dir(tmp_path, [], ["speedup", "dp_test_acc"])
