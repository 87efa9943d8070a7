"""fungrad.safetensors against the reference `safetensors` package, and its validation."""
import json
import struct

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy as st_ref
import safetensors.torch as st_torch
import torch

from fungrad import safetensors

RNG = np.random.default_rng(0)
TENSORS = {
    "w": RNG.standard_normal((3, 4)).astype(np.float32),
    "half": RNG.standard_normal(5).astype(np.float16),
    "bf": RNG.standard_normal((2, 2)).astype(ml_dtypes.bfloat16),
    "scalar": np.array(7, np.int64),
    "empty": np.zeros((0, 3), np.float32),
    "mask": np.array([True, False, True]),
    "bytes": np.arange(6, dtype=np.uint8).reshape(2, 3),
}


def test_written_files_load_in_the_reference_library():
    data = safetensors.dumps(TENSORS, {"format": "pt"})
    got = st_torch.load(data)
    for name, want in TENSORS.items():
        t = got[name]
        as_np = t.float().numpy().astype(want.dtype) if t.dtype == torch.bfloat16 else t.numpy()
        assert as_np.shape == want.shape
        np.testing.assert_array_equal(as_np, want)


def test_reference_files_load_bit_for_bit():
    plain = {k: v for k, v in TENSORS.items() if v.dtype != ml_dtypes.bfloat16}
    tensors, metadata = safetensors.loads(st_ref.save(plain, metadata={"a": "b"}))
    assert metadata == {"a": "b"}
    for name, want in plain.items():
        assert tensors[name].dtype == want.dtype and tensors[name].shape == want.shape
        np.testing.assert_array_equal(tensors[name], want)
    bf = torch.randn(4, 3).bfloat16()
    tensors, _ = safetensors.loads(st_torch.save({"bf": bf}))
    np.testing.assert_array_equal(tensors["bf"].astype(np.float32), bf.float().numpy())


def test_file_roundtrip_is_atomic_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "t.safetensors"
    safetensors.write(path, TENSORS)
    tensors, _ = safetensors.read(path)
    assert set(tensors) == set(TENSORS)
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]


def _header(entries: dict, body: bytes) -> bytes:
    raw = json.dumps(entries).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize("data,fragment", [
    (b"\x01\x02", "too short"),
    (struct.pack("<Q", 10**9) + b"{}", "header length"),
    (struct.pack("<Q", 3) + b"{{{", "not valid JSON"),
    (_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
     "truncated"),
    (_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
     "needs 8 bytes"),
    (_header({"a": {"dtype": "XX", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
     "unsupported dtype"),
    (_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
              "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, b"\0" * 8),
     "overlapping"),
    (_header({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
     "invalid shape"),
    (_header({"a": [1, 2]}, b""), "malformed"),
])
def test_corrupt_files_are_rejected_by_name(data, fragment):
    with pytest.raises(safetensors.SafetensorsError, match=fragment):
        safetensors.loads(data)


def test_truncating_a_real_file_anywhere_is_detected():
    data = safetensors.dumps(TENSORS)
    for cut in range(0, len(data), 7):
        with pytest.raises(safetensors.SafetensorsError):
            safetensors.loads(data[:cut])


def test_float8_tensors_round_trip_with_torch():
    """F8_E4M3 and F8_E5M2 are torch's float8_e4m3fn and float8_e5m2, bit for bit."""
    wide = torch.randn(3, 5) * 10
    for ours, theirs in ((ml_dtypes.float8_e4m3fn, torch.float8_e4m3fn),
                         (ml_dtypes.float8_e5m2, torch.float8_e5m2)):
        t = wide.to(theirs)
        tensors, _ = safetensors.loads(st_torch.save({"t": t}))
        assert tensors["t"].dtype == np.dtype(ours)
        np.testing.assert_array_equal(tensors["t"].view(np.uint8), t.view(torch.uint8).numpy())
        back = st_torch.load(safetensors.dumps(tensors))["t"]
        assert back.dtype == theirs and torch.equal(back.view(torch.uint8), t.view(torch.uint8))
