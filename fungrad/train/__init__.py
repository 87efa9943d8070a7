"""``fungrad.train``: training utilities (checkpoints)."""
from fungrad.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]
