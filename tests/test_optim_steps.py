"""fungrad.optim.steps against optax, step for step, on the same gradients."""
import jax
import numpy as np
import optax
import pytest

import fungrad
from fungrad import optim, tree
from harness import assert_same, to_fg, to_jax
from test_optim import PARAMS, _grads, run_against_optax

# optimistic_adam warns that it is deprecated, on both sides, as optax does.
pytestmark = pytest.mark.filterwarnings("ignore:`optimistic_adam` is deprecated")

# (name, optimiser made from a module: fungrad.optim or optax).
CASES = [
    ("param_block_norm", lambda m: m.chain(m.scale_by_param_block_norm(), m.scale(-1e-2))),
    ("lars", lambda m: m.lars(1e-1)),
    ("lars_masks_nesterov", lambda m: m.lars(
        1e-1, weight_decay=0.01, weight_decay_mask={"w": True, "b": False, "big": True},
        trust_coefficient=0.01, eps=1e-6,
        trust_ratio_mask=lambda p: {k: v.ndim > 1 for k, v in p.items()}, nesterov=True)),
    ("fromage", lambda m: m.fromage(1e-2)),
    ("fromage_schedule", lambda m: m.fromage(m.linear_schedule(1e-2, 1e-3, 4))),
    ("sm3", lambda m: m.sm3(1e-2)),
    ("sm3_b2", lambda m: m.chain(m.scale_by_sm3(b1=0.5, b2=0.9), m.scale(-1e-2))),
    ("dog", lambda m: m.chain(m.scale_by_distance_over_gradients(), m.scale(-1.0))),
    ("dog_global_scale", lambda m: m.chain(
        m.scale_by_distance_over_gradients(reps_rel=1e-4, global_scale=-1.0))),
    ("optimistic_gradient_descent", lambda m: m.optimistic_gradient_descent(1e-2)),
    ("optimistic_gradient_descent_ab", lambda m: m.optimistic_gradient_descent(
        m.linear_schedule(1e-2, 1e-3, 4), alpha=0.5, beta=2.0)),
    ("optimistic_adam", lambda m: m.optimistic_adam(1e-2, optimism=5e-3)),
    ("optimistic_adam_v2", lambda m: m.optimistic_adam_v2(1e-2, alpha=0.5, beta=0.5,
                                                          nesterov=False)),
]

# Polyak's step size: the update takes the objective's value as well.
POLYAK_CASES = [
    ("polyak_sgd", lambda m: m.polyak_sgd()),
    ("polyak_sgd_sps_plus", lambda m: m.polyak_sgd(max_learning_rate=0.5, scaling=0.5,
                                                   f_min=2.0, eps=1e-3, variant="sps+")),
    ("polyak_sgd_schedule", lambda m: m.polyak_sgd(scaling=m.linear_schedule(1.0, 0.1, 4))),
    ("scale_by_polyak", lambda m: m.scale_by_polyak(f_min=-1.0, max_learning_rate=0.1)),
]


def _polyak_value(step: int) -> dict:
    """An objective value per step, some below ``f_min=2`` (so ``sps+`` clips the gap)."""
    return {"value": np.float32([5.0, 1.5, 3.25, 0.5, 2.75][step])}


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_step_for_step(name, make):
    run_against_optax(make)


@pytest.mark.parametrize("name,make", POLYAK_CASES, ids=[c[0] for c in POLYAK_CASES])
def test_polyak_matches_optax_with_value(name, make):
    run_against_optax(make, extra=_polyak_value)


@pytest.mark.parametrize("name", ["lars", "sm3", "dog", "optimistic_adam_v2"])
def test_matches_optax_under_jit(name):
    run_against_optax(dict(CASES)[name], jit=True)


def test_polyak_matches_optax_under_jit():
    run_against_optax(dict(POLYAK_CASES)["polyak_sgd_sps_plus"], jit=True, extra=_polyak_value)


def test_polyak_needs_value_and_a_known_variant():
    opt = optim.polyak_sgd()
    state = opt.init(to_fg(PARAMS))
    with pytest.raises(TypeError, match="value"):
        opt.update(to_fg(_grads(0)), state, to_fg(PARAMS))
    with pytest.raises(ValueError, match="variant"):
        optim.scale_by_polyak(variant="sgd")


def test_polyak_zero_gradient_gives_a_zero_step():
    zeros = tree.map(lambda p: np.zeros_like(p), PARAMS)
    fg_opt, ox_opt = optim.polyak_sgd(), optax.polyak_sgd()
    fg_u, _ = fg_opt.update(to_fg(zeros), fg_opt.init(to_fg(PARAMS)), value=np.float32(1.0))
    ox_u, _ = ox_opt.update(to_jax(zeros), ox_opt.init(to_jax(PARAMS)), value=np.float32(1.0))
    assert_same(fg_u, ox_u, check_weak=False)


@pytest.mark.parametrize("atom,ox_name", [
    ("scale_by_sm3", "ScaleBySM3State"),
    ("scale_by_distance_over_gradients", "ScaleByDistanceOverGradientsState"),
    ("scale_by_optimistic_gradient", "ScaleByOptimisticGradientState"),
])
def test_state_fields_match_optax(atom, ox_name):
    fg_state = getattr(optim, atom)().init(to_fg(PARAMS))
    ox_state = getattr(optax, atom)().init(to_jax(PARAMS))
    assert type(fg_state).__name__ == type(ox_state).__name__ == ox_name
    assert fg_state._fields == ox_state._fields
    assert tree.structure(fg_state).num_leaves == jax.tree_util.tree_structure(ox_state).num_leaves


def test_sm3_rejects_complex_params():
    with pytest.raises(ValueError, match="complex"):
        optim.scale_by_sm3().init({"z": fungrad.numpy.ones(3, fungrad.numpy.complex64)})


def _per_example_grads(batch: int = 6):
    rng = np.random.default_rng(7)
    grads = {k: rng.standard_normal((batch, *v.shape)).astype(np.float32)
             for k, v in PARAMS.items() if k != "big"}
    grads["w"][2] *= 0.01  # one small example, left unclipped
    grads["w"][4] = grads["b"][4] = 0.0  # a zero example: 0 / 0 clips nothing
    return grads


@pytest.mark.parametrize("clip", [0.0, 0.5, 2.0, 5.0, np.inf])
def test_per_example_global_norm_clip_matches_optax(clip):
    g = _per_example_grads()
    fg_sum, fg_n = optim.per_example_global_norm_clip(to_fg(g), clip)
    ox_sum, ox_n = optax.per_example_global_norm_clip(to_jax(g), clip)
    assert_same(fg_sum, ox_sum, check_weak=False)
    assert_same(fg_n, ox_n, check_weak=False)


@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("clip", [0.0, 1.0, 3.0, np.inf])
def test_per_example_layer_norm_clip_matches_optax(clip, uniform):
    g = _per_example_grads()
    fg_sum, fg_n = optim.per_example_layer_norm_clip(to_fg(g), clip, uniform)
    ox_sum, ox_n = optax.per_example_layer_norm_clip(to_jax(g), clip, uniform)
    assert_same(fg_sum, ox_sum, check_weak=False)
    assert_same(fg_n, ox_n, check_weak=False)


@pytest.mark.parametrize("fn", ["per_example_global_norm_clip", "per_example_layer_norm_clip"])
def test_per_example_clip_needs_a_batch_axis(fn):
    with pytest.raises(ValueError, match="batch dimension"):
        getattr(optim, fn)({"a": np.ones((3, 2), np.float32), "b": np.ones((4,), np.float32)},
                           1.0)


def test_optimistic_adam_is_deprecated_and_takes_no_schedule():
    with pytest.warns(DeprecationWarning, match="optimistic_adam_v2"):
        optim.optimistic_adam(1e-2)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="schedules"):
        optim.optimistic_adam(optim.constant_schedule(1e-2))


def test_public_names_are_exported():
    for name in optim.steps.__all__:
        assert getattr(optim, name) is getattr(optim.steps, name)
        assert hasattr(optax, name), name
