"""``fungrad.optim``: optax-style optimisers as pairs of pure functions.

A ``GradientTransformation`` is ``(init, update)``; atoms (``scale_by_adam``,
``add_decayed_weights``, ``clip_by_global_norm``, ...) compose with ``chain``,
``masked`` and ``multi_transform``; aliases (``adamw``, ``lion``, ...) are chains;
``mixed_precision`` keeps float32 master weights behind bfloat16/float16 parameters.
Names and numerics follow optax, step for step.
"""
from fungrad._core.namespace import public_dir
from fungrad.optim._base import (EmptyState, GradientTransformation,
                                 GradientTransformationExtraArgs, TransformInitFn,
                                 TransformUpdateExtraArgsFn, TransformUpdateFn, UpdateShapeError,
                                 UpdateStructureError, apply_updates, chain, global_norm,
                                 identity, incremental_update, init_empty_state, periodic_update,
                                 set_to_zero)
from fungrad.optim.alias import adafactor, adagrad, adam, adamw, lamb, lion, rmsprop, sgd
from fungrad.optim.combine import (InjectHyperparamsState, MaskedNode, MaskedState, MultiSteps,
                                   MultiStepsState, MultiTransformState, inject_hyperparams, masked,
                                   multi_transform)
from fungrad.optim import lbfgs as _lbfgs  # the module: the package's ``lbfgs`` is the alias
from fungrad.optim import (assignment, combine_more, contrib, experimental, linesearch, losses,
                           microbatching, moments, numerics, perturbations, projections,
                           second_order, steps, transforms, tree_utils, wrappers)
from fungrad.optim.combine_more import *  # noqa: F401,F403
from fungrad.optim.lbfgs import *  # noqa: F401,F403
from fungrad.optim.linesearch import *  # noqa: F401,F403
from fungrad.optim.numerics import *  # noqa: F401,F403
from fungrad.optim.losses import *  # noqa: F401,F403
from fungrad.optim.moments import *  # noqa: F401,F403
from fungrad.optim.steps import *  # noqa: F401,F403
from fungrad.optim.wrappers import *  # noqa: F401,F403
from fungrad.optim.precision import MixedPrecisionState, mixed_precision
from fungrad.optim.schedules import (constant_schedule, cosine_decay_schedule,
                                     cosine_onecycle_schedule, exponential_decay, join_schedules,
                                     linear_onecycle_schedule, linear_schedule,
                                     piecewise_constant_schedule, piecewise_interpolate_schedule,
                                     polynomial_schedule, sgdr_schedule, warmup_constant_schedule,
                                     warmup_cosine_decay_schedule,
                                     warmup_exponential_decay_schedule)
from fungrad.optim.transform import (EmaState, FactoredState, ScaleByAdamState, ScaleByLionState,
                                     ScaleByRmsState, ScaleByRssState, ScaleByScheduleState,
                                     TraceState, add_decayed_weights, clip, clip_by_block_rms,
                                     clip_by_global_norm, ema, scale, scale_by_adam,
                                     scale_by_factored_rms, scale_by_learning_rate,
                                     scale_by_param_block_rms, scale_by_rms, scale_by_rss,
                                     scale_by_schedule, scale_by_stddev, scale_by_lion,
                                     scale_by_trust_ratio, trace, zero_nans)

__all__ = [
    # base
    "EmptyState", "GradientTransformation", "GradientTransformationExtraArgs", "TransformInitFn",
    "TransformUpdateFn", "TransformUpdateExtraArgsFn", "UpdateShapeError", "UpdateStructureError",
    "apply_updates", "chain", "global_norm", "identity", "incremental_update",
    "init_empty_state", "periodic_update", "set_to_zero",
    # aliases
    "adafactor", "adagrad", "adam", "adamw", "lamb", "lion", "rmsprop", "sgd",
    # combinators
    "InjectHyperparamsState", "MaskedNode", "MaskedState", "MultiSteps", "MultiStepsState",
    "MultiTransformState", "inject_hyperparams", "masked", "multi_transform",
    # mixed precision
    "MixedPrecisionState", "mixed_precision",
    # schedules
    "constant_schedule", "cosine_decay_schedule", "cosine_onecycle_schedule", "exponential_decay",
    "join_schedules", "linear_onecycle_schedule", "linear_schedule", "piecewise_constant_schedule",
    "piecewise_interpolate_schedule", "polynomial_schedule", "sgdr_schedule",
    "warmup_constant_schedule", "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    # transformations
    "EmaState", "FactoredState", "ScaleByAdamState", "ScaleByLionState", "ScaleByRmsState",
    "ScaleByRssState", "ScaleByScheduleState", "TraceState", "add_decayed_weights", "clip",
    "clip_by_block_rms", "clip_by_global_norm", "ema", "scale", "scale_by_adam",
    "scale_by_factored_rms", "scale_by_learning_rate", "scale_by_param_block_rms", "scale_by_rms",
    "scale_by_rss", "scale_by_schedule", "scale_by_stddev", "scale_by_lion",
    "scale_by_trust_ratio", "trace", "zero_nans",
    # more optimisers, wrappers and losses (optim/moments.py, steps.py, wrappers.py, losses.py);
    # optax.tree_utils is fungrad.optim.tree_utils
    *moments.__all__, *steps.__all__, *wrappers.__all__, *losses.__all__,
    *combine_more.__all__, "losses", "tree_utils", "contrib",
    # L-BFGS and line searches (optim/lbfgs.py, linesearch.py); optax's numerics and
    # small helpers (optim/numerics.py); optax's submodules of the same names
    *_lbfgs.__all__, *linesearch.__all__, *numerics.__all__, "assignment", "microbatching",
    "perturbations", "projections", "second_order", "transforms", "experimental"]
__dir__ = public_dir(__all__)
