"""``jax.ad_checkpoint``'s names: rematerialisation (``checkpoint``), the policies and
names that choose which intermediates the backward pass keeps, the answers a policy may
give (``Saveable``, ``Recompute``, ``Offloadable``), and ``print_saved_residuals``, which
shows what is kept."""
from __future__ import annotations

from fungrad._core.namespace import public_dir
from fungrad.transforms.checkpoint import (Offloadable, Recompute, Saveable, checkpoint,
                                           checkpoint_name, checkpoint_policies, remat)
from fungrad.transforms.residuals import print_saved_residuals

__all__ = ["Offloadable", "Recompute", "Saveable", "checkpoint", "checkpoint_name",
           "checkpoint_policies", "print_saved_residuals", "remat"]
__dir__ = public_dir(__all__)
