"""``jax.ad_checkpoint``'s names: rematerialisation (``checkpoint``) and the policies and
names that choose which intermediates the backward pass keeps."""
from __future__ import annotations

from fungrad._core.namespace import public_dir
from fungrad.transforms.checkpoint import checkpoint, checkpoint_name, checkpoint_policies, remat

__all__ = ["checkpoint", "checkpoint_name", "checkpoint_policies", "remat"]
__dir__ = public_dir(__all__)
