"""Checkpoints: round trips, atomic writes under a killed writer, and rejection of bad files."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, train, tree


def _state():
    params = {"w": jnp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
              "emb": jnp.asarray(np.ones((4, 2), ml_dtypes.bfloat16)),
              "layers": [{"b": jnp.zeros(3)}, {"b": jnp.ones(3)}]}
    opt_state = optim.adamw(1e-3).init(params)
    return {"params": params, "opt_state": opt_state, "step": 7, "lr": 0.5,
            "key": random.PRNGKey(3), "skip": None}


def _same(a, b):
    la, lb = tree.leaves(a), tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert type(x) is type(y) or (hasattr(x, "shape") and hasattr(y, "shape"))
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert np.asarray(x).dtype == np.asarray(y).dtype


def test_roundtrip_with_like_restores_structure_and_dtypes(tmp_path):
    state = _state()
    path = tmp_path / "ck.safetensors"
    train.save_checkpoint(path, state)
    loaded = train.load_checkpoint(path, like=state)
    assert tree.structure(loaded) == tree.structure(state)
    _same(loaded, state)
    assert loaded["params"]["emb"].dtype == ml_dtypes.bfloat16
    assert isinstance(loaded["step"], int) and loaded["step"] == 7
    assert isinstance(loaded["opt_state"][0], optim.ScaleByAdamState)


def test_roundtrip_without_like_gives_plain_containers(tmp_path):
    state = _state()
    train.save_checkpoint(tmp_path / "ck", state)
    loaded = train.load_checkpoint(tmp_path / "ck")
    assert loaded["step"] == 7 and loaded["skip"] is None
    assert set(loaded["opt_state"][0]) == {"count", "mu", "nu"}
    np.testing.assert_array_equal(np.asarray(loaded["params"]["layers"][1]["b"]), np.ones(3))


def test_loaded_state_resumes_training_identically(tmp_path):
    params = {"w": jnp.asarray(np.linspace(-1, 1, 6, dtype=np.float32))}
    opt = optim.adam(0.1)
    loss = lambda p: jnp.sum(p["w"] ** 2)

    def steps(p, s, n):
        for _ in range(n):
            u, s = opt.update(fungrad.grad(loss)(p), s, p)
            p = optim.apply_updates(p, u)
        return p, s
    p, s = steps(params, opt.init(params), 3)
    train.save_checkpoint(tmp_path / "ck", {"p": p, "s": s})
    restored = train.load_checkpoint(tmp_path / "ck", like={"p": p, "s": s})
    _same(steps(p, s, 2), steps(restored["p"], restored["s"], 2))


def test_mismatches_are_rejected_with_the_leaf_name(tmp_path):
    state = _state()
    train.save_checkpoint(tmp_path / "ck", state)
    wrong_shape = dict(state, params=dict(state["params"], w=jnp.zeros((3, 2))))
    with pytest.raises(train.CheckpointError, match=r"params/w.*float32\[2, 3\].*float32\[3, 2\]"):
        train.load_checkpoint(tmp_path / "ck", like=wrong_shape)
    wrong_dtype = dict(state, params=dict(state["params"], w=jnp.zeros((2, 3), jnp.int32)))
    with pytest.raises(train.CheckpointError, match="int32"):
        train.load_checkpoint(tmp_path / "ck", like=wrong_dtype)
    with pytest.raises(train.CheckpointError, match="leaves"):
        train.load_checkpoint(tmp_path / "ck", like={"params": state["params"]})


@pytest.mark.parametrize("damage", ["truncate", "garbage", "header"])
def test_corrupt_files_are_rejected(tmp_path, damage):
    path = tmp_path / "ck"
    train.save_checkpoint(path, _state())
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = b"\x00" * 5
    else:
        data = data[:8] + data[8:40].replace(b"{", b"[", 1) + data[40:]
    path.write_bytes(data)
    with pytest.raises(train.CheckpointError):
        train.load_checkpoint(path)


def test_foreign_safetensors_file_is_rejected(tmp_path):
    import safetensors.numpy
    safetensors.numpy.save_file({"a": np.ones(2, np.float32)}, str(tmp_path / "other"))
    with pytest.raises(train.CheckpointError, match="not written by save_checkpoint"):
        train.load_checkpoint(tmp_path / "other")


def test_writer_killed_mid_save_leaves_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "ck"
    old = {"w": jnp.asarray(np.full(4, 1.0, np.float32))}
    train.save_checkpoint(path, old)
    marker = tmp_path / "writing"
    # The child writes a large checkpoint but is stopped just before the atomic rename.
    child = textwrap.dedent(f"""
        import os, time, numpy as np
        import fungrad.numpy as jnp
        from fungrad import train
        real_replace = os.replace
        def slow_replace(src, dst):
            open({str(marker)!r}, "w").close()
            time.sleep(60)
            real_replace(src, dst)
        os.replace = slow_replace
        train.save_checkpoint({str(path)!r}, {{"w": jnp.asarray(np.zeros(2_000_000, np.float32))}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", child])
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), "the writer never reached the rename"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    loaded = train.load_checkpoint(path, like=old)
    np.testing.assert_array_equal(np.asarray(loaded["w"]), np.ones(4))
    assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))  # the half-written file


def test_unsupported_leaves_are_rejected(tmp_path):
    with pytest.raises(TypeError, match="'00000:a'.*str"):
        train.save_checkpoint(tmp_path / "ck", {"a": "text"})
