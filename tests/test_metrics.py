"""The JSON-lines metrics log: flushed per record, readable mid-write, merged by step."""
import json
import math

import numpy as np
import pytest

import fungrad.numpy as jnp
from fungrad.train import METRICS_FILE, MetricsWriter, read_metrics


def test_records_are_flushed_and_read_back_while_open(tmp_path):
    log = MetricsWriter(tmp_path)
    log.write(1, train_loss=jnp.asarray(2.5), lr=np.float32(0.5), tokens_per_sec=1000)
    assert read_metrics(tmp_path) == [{"step": 1, "train_loss": 2.5, "lr": 0.5,
                                       "tokens_per_sec": 1000}]
    log.write(2, train_loss=math.nan, note="warmup")
    log.close()
    assert read_metrics(tmp_path)[1] == {"step": 2, "train_loss": None, "note": "warmup"}


def test_partial_last_line_is_skipped_and_steps_are_merged(tmp_path):
    with MetricsWriter(tmp_path) as log:
        log.write(10, train_loss=3.0)
        log.write(10, val_loss=3.1)
        log.write(20, train_loss=2.0)
        log.write(10, train_loss=2.9)          # a resumed run repeats step 10
    with open(tmp_path / METRICS_FILE, "a") as f:
        f.write(json.dumps({"step": 30})[:5])  # a writer caught mid-line
    assert read_metrics(tmp_path) == [{"step": 10, "train_loss": 2.9, "val_loss": 3.1},
                                      {"step": 20, "train_loss": 2.0}]


def test_non_scalars_are_refused_by_name(tmp_path):
    with MetricsWriter(tmp_path) as log, pytest.raises(TypeError, match="'w' is a list"):
        log.write(1, w=[1, 2])
    assert read_metrics(tmp_path / "missing") == []
