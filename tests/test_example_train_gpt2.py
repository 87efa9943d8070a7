"""``examples/train_gpt2.py`` as a user runs it (subprocesses with ``--quick`` into temporary
directories), and its pieces in-process.

Checked: the prepare stage (memory-mapped shards that decode back to the text, reuse of a
data directory, refusal of one made with other settings), the run directory as the
dashboard reads it, a decreasing loss, bit-identical resumption with dropout and bfloat16
compute, gradient accumulation against one large batch, and the float32 master weights
against a float32 computation.
"""
import argparse
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import dashboard, optim, random, train
from fungrad.models import gpt2
from fungrad.text import BPETokenizer

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SCRIPT = str(EXAMPLES / "train_gpt2.py")
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, SCRIPT, "--quick", *args], capture_output=True, text=True,
                         check=False, env=ENV, timeout=300)
    if ok:
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
    return out


def load_example():
    sys.path.insert(0, str(EXAMPLES))  # the script imports the helpers beside it
    try:
        spec = importlib.util.spec_from_file_location("train_gpt2", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """The first 300,000 characters of the bundled Shakespeare (the whole text takes longer)."""
    path = tmp_path_factory.mktemp("text") / "shakespeare.txt"
    text = resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()
    path.write_text(text[:300_000])
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, text_file):
    """The quick preset's shards, made once by ``--prepare-only`` and shared by the runs."""
    path = tmp_path_factory.mktemp("data")
    out = run("--prepare-only", "--data", str(text_file), "--data-dir", str(path),
              "--shard-tokens", "50000", "--out", str(path / "unused"))
    assert "wrote" in out.stdout and not (path / "unused").exists()
    return path


# The runs use the prepared shards; they train with dropout and bfloat16 compute (float32 on
# a CPU by default), which a resumed run must reproduce bit for bit.
RUN = ["--shard-tokens", "50000", "--dropout", "0.1", "--dtype", "bfloat16"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, text_file, data_dir):
    run_dir = tmp_path_factory.mktemp("run")
    out = run("--data", str(text_file), "--data-dir", str(data_dir), *RUN, "--out", str(run_dir))
    return run_dir, out


def test_prepare_writes_memory_mapped_shards_that_decode_to_the_text(data_dir):
    meta = json.loads((data_dir / "meta.json").read_text())
    text = pathlib.Path(meta["settings"]["data"]).read_text()
    tok = BPETokenizer.load(data_dir)
    assert tok.vocab_size == meta["tokenizer_vocab"] == 300 and meta["dtype"] == "uint16"
    parts = {}
    for split in ("train", "val"):
        shards = meta["shards"][split]
        assert all(n == 50_000 for _, n in shards[:-1]) and 0 < shards[-1][1] <= 50_000
        tokens = [np.memmap(data_dir / name, dtype=np.uint16, mode="r") for name, _ in shards]
        assert [len(t) for t in tokens] == [n for _, n in shards]
        parts[split] = tok.decode(np.concatenate(tokens).tolist())
    assert len(meta["shards"]["train"]) == 4  # 190k tokens in 50k-token shards
    assert parts["train"] + parts["val"] == text
    assert parts["val"].startswith("\n") or parts["train"].endswith("\n")  # cut at a line end
    assert 0.09 < len(parts["val"]) / len(text) < 0.11


def test_quick_run_writes_the_run_directory_and_the_loss_decreases(quick_run, data_dir):
    run_dir, out = quick_run
    assert "reusing the tokenizer and shards" in out.stdout
    assert sorted(os.listdir(run_dir)) == ["checkpoint.safetensors", "config.json", "metrics.jsonl",
                                           "samples.txt"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["preset"] == "quick" and config["args"]["grad_accum"] == 2
    assert config["args"]["dtype"] == "bfloat16" and config["args"]["dropout"] == 0.1
    assert config["tokens_per_step"] == 2 * 4 * 32 and config["model"]["vocab_size"] == 300
    assert config["data"] == json.loads((data_dir / "meta.json").read_text())
    run = dashboard.load_run(run_dir)
    assert {"train_loss", "val_loss", "lr", "grad_norm", "tokens_per_sec"} <= set(run.metrics)
    losses = [value for _, value, _ in run.metrics["train_loss"]]
    assert len(losses) == 8 and abs(losses[0] - np.log(300)) < 0.1
    assert losses[-1] < losses[0] - 0.2
    val = [value for _, value, _ in run.metrics["val_loss"]]
    assert len(val) == 2 and val[1] < val[0]
    state = train.load_checkpoint(run_dir / "checkpoint.safetensors")
    assert int(state["step"]) == 8
    assert {np.asarray(p).dtype for p in fungrad.tree.leaves(state["params"])} \
        == {np.dtype(np.float32)}
    assert (run_dir / "samples.txt").read_text().startswith("---- step 8, temperature 0.8 ----\n")
    assert f"python -m fungrad.dashboard {run_dir}" in out.stdout


def test_resume_with_dropout_and_bfloat16_is_bit_identical(tmp_path, text_file, data_dir,
                                                           quick_run):
    straight, split = quick_run[0], tmp_path / "split"
    first = run("--data", str(text_file), "--data-dir", str(data_dir), *RUN, "--sample-tokens", "0",
                "--out", str(split), "--stop-at", "3")
    assert f"--resume {split}" in first.stdout
    run("--resume", str(split))
    params = lambda d: fungrad.tree.leaves(
        train.load_checkpoint(d / "checkpoint.safetensors")["params"])
    for a, b in zip(params(straight), params(split), strict=True):
        assert np.asarray(a).dtype == np.float32  # the master weights
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    losses = lambda d: [r["train_loss"] for r in train.read_metrics(d)]
    assert losses(split) == losses(straight) and len(losses(split)) == 8


# --------------------------------------------------------------------------- in-process

@pytest.fixture(scope="module")
def example():
    return load_example()


@pytest.fixture(scope="module")
def batch():
    tokens = np.random.default_rng(0).integers(0, 64, (4, 9)).astype(np.int32)
    return tokens[:, :-1], tokens[:, 1:]


def parse(module, *argv: str) -> argparse.Namespace:
    return module.parse_args(module.parser(), ["--quick", *argv])[0]


def test_text_pieces_end_at_line_ends_and_keep_multibyte_characters(example, tmp_path, monkeypatch):
    text = "".join(f"línea {i}: ÿ€𝄞\n" for i in range(50))
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(example, "PIECE_BYTES", 7)  # shorter than a line: each piece is one line
    size = path.stat().st_size
    cut = example.line_start(str(path), size // 2 + 1)
    assert text.encode()[cut - 1:cut] == b"\n" and cut > size // 2
    assert example.line_start(str(path), cut) == cut and example.line_start(str(path), 0) == 0
    pieces = [*example.text_pieces(str(path), 0, cut), *example.text_pieces(str(path), cut, size)]
    assert "".join(pieces) == text and pieces == text.splitlines(keepends=True)


def test_a_data_dir_of_other_settings_is_refused(example, text_file, data_dir):
    args = parse(example, "--data", str(text_file), "--data-dir", str(data_dir),
                 "--shard-tokens", "50000", "--vocab-size", "400")
    with pytest.raises(SystemExit, match=f"--data-dir {data_dir} holds shards made with other "
                                         r"settings \(vocab_size\)"):
        example.prepare(args)


def test_a_loaded_tokenizer_makes_the_same_shards_and_must_fit_the_embedding(example, text_file,
                                                                             data_dir, tmp_path):
    args = parse(example, "--data", str(text_file), "--data-dir", str(tmp_path / "data"),
                 "--shard-tokens", "50000", "--tokenizer", str(data_dir))
    _, meta = example.prepare(args)
    for name, _ in meta["shards"]["train"] + meta["shards"]["val"]:
        assert (tmp_path / "data" / name).read_bytes() == (data_dir / name).read_bytes()
    args = parse(example, "--data", str(text_file), "--data-dir", str(tmp_path / "other"),
                 "--tokenizer", str(data_dir), "--vocab-size", "299")
    with pytest.raises(SystemExit, match="has 300 tokens, more than --vocab-size 299"):
        example.prepare(args)


def test_flags_fill_the_preset_and_dtype_auto_is_float32_on_a_cpu(example, tmp_path):
    args = parse(example, "--n-layer", "3", "--out", str(tmp_path))
    assert (args.n_layer, args.n_embd, args.steps, args.dtype) == (3, 32, 8, "float32")
    assert args.data_dir == str(tmp_path / "data")
    with pytest.raises(SystemExit):
        parse(example, "--preset", "gpt2")  # --quick and another preset
    args, _ = example.parse_args(example.parser(), ["--preset", "gpt2", "--out", str(tmp_path)])
    assert (args.n_layer, args.block_size, args.grad_accum, args.lr) == (12, 1024, 8, 6e-4)


CFG = gpt2.Config(vocab_size=64, n_positions=8, n_embd=16, n_layer=1, n_head=2, embd_pdrop=0.0,
                  attn_pdrop=0.0, resid_pdrop=0.0)


def grads_of(module, dtype, grad_accum, x, y):
    """The gradient ``accumulate`` sums over ``grad_accum`` equal slices of the batch."""
    accumulate, _, _ = module.make_steps(CFG, optim.sgd(0.1), dtype, grad_accum)
    params = gpt2.init(random.PRNGKey(0), CFG)
    acc = fungrad.tree.map(jnp.zeros_like, params)
    key = random.PRNGKey(1)
    for i, (xs, ys) in enumerate(zip(np.split(x, grad_accum), np.split(y, grad_accum))):
        acc, _ = accumulate(params, acc, jnp.asarray(xs), jnp.asarray(ys), key,
                            jnp.asarray(i, jnp.uint32))
    return params, acc


def test_accumulated_gradient_equals_the_large_batch_gradient(example, batch):
    x, y = batch
    params, acc = grads_of(example, jnp.float32, 2, x, y)
    full = fungrad.grad(gpt2.loss)(params, CFG, jnp.asarray(x), jnp.asarray(y))
    for a, g in zip(fungrad.tree.leaves(acc), fungrad.tree.leaves(full), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(g), rtol=1e-5, atol=1e-7)


def test_bfloat16_compute_gives_float32_gradients_close_to_float32(example, batch):
    x, y = batch
    _, g32 = grads_of(example, jnp.float32, 1, x, y)
    _, g16 = grads_of(example, jnp.bfloat16, 1, x, y)
    assert {np.asarray(g).dtype for g in fungrad.tree.leaves(g16)} == {np.dtype(np.float32)}
    flat = lambda g: np.concatenate([np.asarray(leaf).ravel() for leaf in fungrad.tree.leaves(g)])
    error = np.linalg.norm(flat(g16) - flat(g32)) / np.linalg.norm(flat(g32))
    assert 1e-4 < error < 0.05  # bfloat16 rounding (8 bits of mantissa), not float32's


def test_windows_lie_inside_one_shard_and_depend_only_on_seed_and_index(example, tmp_path):
    meta = {"dtype": "uint16", "shards": {"train": [["a.bin", 10], ["b.bin", 3], ["c.bin", 6]]}}
    for name, start, n in (("a.bin", 0, 10), ("b.bin", 100, 3), ("c.bin", 200, 6)):
        np.arange(start, start + n, dtype=np.uint16).tofile(tmp_path / name)
    windows = example.Windows(str(tmp_path), meta, "train", block_size=3)
    assert len(windows.shards) == 2  # b.bin has no window of 4 tokens
    x, y = windows.batch(0, 0, 5, batch_size=256)
    rows = np.concatenate([np.asarray(x), np.asarray(y)[:, -1:]], axis=1)
    assert np.all(np.diff(rows, axis=1) == 1)  # consecutive tokens of one shard
    starts = set(rows[:, 0].tolist())
    assert starts == set(range(7)) | {200, 201, 202}  # every window, none across shards
    np.testing.assert_array_equal(np.asarray(windows.batch(0, 0, 5, 256)[0]), np.asarray(x))
    assert not np.array_equal(np.asarray(windows.batch(0, 0, 6, 256)[0]), np.asarray(x))


def test_help_names_each_preset_value(example):
    text = " ".join(example.parser().format_help().split())
    assert "transformer blocks (small 4, gpt2 12, quick 1)" in text


def test_the_gpt2_preset_is_the_124m_shape(example):
    args = argparse.Namespace(**example.PRESETS["gpt2"])
    cfg = example.model_config(args)
    shapes = fungrad.eval_shape(lambda key: gpt2.init(key, cfg), random.PRNGKey(0))
    assert sum(int(np.prod(s.shape)) for s in fungrad.tree.leaves(shapes)) == 124_439_808
