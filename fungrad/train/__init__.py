"""``fungrad.train``: training utilities (checkpoints, metrics logs)."""
from fungrad.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fungrad.train.metrics import METRICS_FILE, MetricsWriter, read_metrics

__all__ = ["CheckpointError", "METRICS_FILE", "MetricsWriter", "load_checkpoint", "read_metrics",
           "save_checkpoint"]
