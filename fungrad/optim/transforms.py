"""``fungrad.optim.transforms``: optax's ``optax.transforms`` namespace.

The transformations that wrap, clip, mask or condition others, under the names optax gives
them there, so code written against ``optax.transforms`` runs unchanged. Each is defined
once, in the module it is imported from below; most are also in ``fungrad.optim`` itself,
as in optax, and ``unitwise_norm``, ``unitwise_clip`` and ``ConditionFn`` only here, as in
optax.
"""
from fungrad.optim._base import chain
from fungrad.optim.combine import MaskedNode, MaskedState, MultiSteps, MultiStepsState, masked
from fungrad.optim.combine_more import (ConditionallyMaskState, ConditionallyTransformState,
                                        ConditionFn, MonitorState, PartitionState, SnapshotState,
                                        conditionally_mask, conditionally_transform, flatten,
                                        freeze, measure_with_ema, monitor, named_chain,
                                        partition, selective_transform, snapshot)
from fungrad.optim.numerics import (NonNegativeParamsState, ShouldSkipUpdateFunction,
                                    skip_large_updates)
from fungrad.optim.steps import per_example_global_norm_clip, per_example_layer_norm_clip
from fungrad.optim.transform import (EmaState, TraceState, ZeroNansState, add_decayed_weights,
                                     clip, clip_by_block_rms, clip_by_global_norm, ema, trace,
                                     zero_nans)
from fungrad.optim.wrappers import (AddNoiseState, ApplyIfFiniteState, adaptive_grad_clip,
                                    add_noise, apply_if_finite, keep_params_nonnegative,
                                    skip_not_finite, unitwise_clip, unitwise_norm)

__all__ = [
    "AddNoiseState", "ApplyIfFiniteState", "ConditionFn", "ConditionallyMaskState",
    "ConditionallyTransformState", "EmaState", "MaskedNode", "MaskedState", "MonitorState",
    "MultiSteps", "MultiStepsState", "NonNegativeParamsState", "PartitionState",
    "ShouldSkipUpdateFunction", "SnapshotState", "TraceState", "ZeroNansState",
    "adaptive_grad_clip", "add_decayed_weights", "add_noise", "apply_if_finite", "chain", "clip",
    "clip_by_block_rms", "clip_by_global_norm", "conditionally_mask", "conditionally_transform",
    "ema", "flatten", "freeze", "keep_params_nonnegative", "masked", "measure_with_ema",
    "monitor", "named_chain", "partition", "per_example_global_norm_clip",
    "per_example_layer_norm_clip", "selective_transform", "skip_large_updates",
    "skip_not_finite", "snapshot", "trace", "unitwise_clip", "unitwise_norm", "zero_nans",
]
