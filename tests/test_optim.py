"""fungrad.optim against optax, step for step, on the same gradients."""
import functools

import jax
import jax.numpy as jnp_ref
import numpy as np
import optax
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, tree
from harness import assert_same, to_fg, to_jax

STEPS = 5
PARAMS = {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3),
          "b": np.array([0.5, -0.25, 0.0], np.float32),
          "big": np.linspace(0.1, 1, 130 * 129, dtype=np.float32).reshape(130, 129)}

# (name, fungrad optimiser, optax optimiser): one record per optimiser.
CASES = [
    ("sgd", lambda m: m.sgd(0.1)),
    ("sgd_momentum", lambda m: m.sgd(0.1, momentum=0.9)),
    ("sgd_nesterov", lambda m: m.sgd(0.1, momentum=0.9, nesterov=True)),
    ("adam", lambda m: m.adam(1e-2)),
    ("adam_nesterov", lambda m: m.adam(1e-2, nesterov=True)),
    ("adamw", lambda m: m.adamw(1e-2, weight_decay=0.1)),
    ("adamw_mask", lambda m: m.adamw(1e-2, weight_decay=0.1,
                                     mask=lambda p: {k: v.ndim > 1 for k, v in p.items()})),
    ("adamw_schedule", lambda m: m.adamw(m.warmup_cosine_decay_schedule(0.0, 1e-2, 2, 10, 1e-3))),
    ("rmsprop", lambda m: m.rmsprop(1e-2)),
    ("rmsprop_centered_momentum", lambda m: m.rmsprop(1e-2, centered=True, momentum=0.9)),
    ("rmsprop_bias_correction", lambda m: m.rmsprop(1e-2, bias_correction=True, eps_in_sqrt=False)),
    ("adagrad", lambda m: m.adagrad(1e-1)),
    ("lion", lambda m: m.lion(1e-3, weight_decay=0.01)),
    ("lamb", lambda m: m.lamb(1e-2, weight_decay=0.01)),
    ("adafactor", lambda m: m.adafactor(1e-2)),
    ("adafactor_momentum_decay", lambda m: m.adafactor(1e-2, momentum=0.9, weight_decay_rate=0.01)),
    ("clip_chain", lambda m: m.chain(m.clip_by_global_norm(0.5), m.clip(0.01), m.adam(1e-2))),
    ("masked", lambda m: m.masked(m.sgd(0.1), {"w": True, "b": False, "big": True})),
    ("multi_transform", lambda m: m.multi_transform({"a": m.adam(1e-2), "z": m.set_to_zero()},
                                                    {"w": "a", "b": "z", "big": "a"})),
    ("zero_nans", lambda m: m.chain(m.zero_nans(), m.sgd(0.1))),
    ("inject_hyperparams", lambda m: m.inject_hyperparams(m.adam)(
        learning_rate=m.linear_schedule(1e-2, 1e-3, 4), b1=0.8)),
    ("ema_trust_ratio", lambda m: m.chain(m.ema(0.9), m.scale_by_trust_ratio(), m.scale(-0.1))),
]


def _grads(step: int):
    rng = np.random.default_rng(step)
    return {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in PARAMS.items()}


def jitted_update(opt, static_argnames=()):
    """``opt.update`` under ``jax.jit``, for an optax reference whose ``update`` runs loops or
    ``cond``s: eagerly, JAX traces and compiles them anew at every call (their bodies close
    over the step's arrays), jitted once per input types. ``static_argnames``: keyword
    arguments that are no arrays (an objective function)."""
    return jax.jit(opt.update, static_argnames=static_argnames)


def run_against_optax(make, jit: bool = False, extra=None, jit_ref: bool = False) -> None:
    """``make(optim)`` and ``make(optax)`` for ``STEPS`` steps on the same gradients: updates
    compared at every step, then parameters and state (the tests of every optimiser module
    share it). ``jit`` jits fungrad's update; ``extra(step)`` gives both updates keyword
    arguments (polyak's ``value``); ``jit_ref`` jits optax's (``jitted_update``, its
    function-valued keyword arguments static)."""
    fg_opt, ox_opt = make(optim), make(optax)
    fg_update = fungrad.jit(fg_opt.update) if jit else fg_opt.update
    ox_update = ox_opt.update
    if jit_ref:
        kw = {} if extra is None else extra(0)
        ox_update = jitted_update(ox_opt, [k for k, v in kw.items() if callable(v)])
    fg_p, ox_p = to_fg(PARAMS), to_jax(PARAMS)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    for step in range(STEPS):
        g, kw = _grads(step), {} if extra is None else extra(step)
        fg_u, fg_s = fg_update(to_fg(g), fg_s, fg_p, **to_fg(kw))
        ox_u, ox_s = ox_update(to_jax(g), ox_s, ox_p, **to_jax(kw))
        assert_same(fg_u, ox_u, check_weak=False)
        fg_p, ox_p = optim.apply_updates(fg_p, fg_u), optax.apply_updates(ox_p, ox_u)
    assert_same(fg_p, ox_p, check_weak=False)
    assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_step_for_step(name, make):
    run_against_optax(make)


def test_multisteps_accumulates_like_optax():
    fg_opt, ox_opt = optim.MultiSteps(optim.adam(1e-2), 3), optax.MultiSteps(optax.adam(1e-2), 3)
    fg_p, ox_p = to_fg(PARAMS), to_jax(PARAMS)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    ox_update = jitted_update(ox_opt)  # MultiSteps' update is a cond
    for step in range(7):
        g = _grads(step)
        fg_u, fg_s = fg_opt.update(to_fg(g), fg_s, fg_p)
        ox_u, ox_s = ox_update(to_jax(g), ox_s, ox_p)
        assert_same(fg_u, ox_u, check_weak=False)
        assert bool(fg_opt.has_updated(fg_s)) == bool(ox_opt.has_updated(ox_s))



def _nan_at(step: int, bad_step: int) -> dict:
    g = _grads(step)
    if step == bad_step:
        g = {**g, "b": np.full_like(g["b"], np.nan)}
    return g


@pytest.mark.parametrize("skip", ["skip_not_finite", "skip_large_updates"])
def test_multisteps_skips_updates_like_optax(skip):
    make = lambda m: (m.skip_not_finite if skip == "skip_not_finite" else  # noqa: E731
                      functools.partial(m.skip_large_updates, max_squared_norm=1e3))
    fg_opt = optim.MultiSteps(optim.adam(1e-2), 3, should_skip_update_fn=make(optim))
    ox_opt = optax.MultiSteps(optax.adam(1e-2), 3, should_skip_update_fn=make(optax))
    fg_p, ox_p = to_fg(PARAMS), to_jax(PARAMS)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)
    ox_update = jitted_update(ox_opt)
    for step in range(8):
        g = _nan_at(step, 4) if skip == "skip_not_finite" else {
            k: v * (100.0 if step == 4 else 1.0) for k, v in _grads(step).items()}
        fg_u, fg_s = fungrad.jit(fg_opt.update)(to_fg(g), fg_s, fg_p)
        ox_u, ox_s = ox_update(to_jax(g), ox_s, ox_p)
        assert_same(fg_u, ox_u, check_weak=False)
        assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)
        fg_p, ox_p = optim.apply_updates(fg_p, fg_u), optax.apply_updates(ox_p, ox_u)


def test_multisteps_accumulator_dtype_and_extra_args_like_optax():
    make = lambda m: m.MultiSteps(m.polyak_sgd(), 2, use_grad_mean=False,  # noqa: E731
                                  accumulator_dtype=jnp.bfloat16)
    fg_opt, ox_opt = make(optim), make(optax)
    fg_p, ox_p = to_fg(PARAMS), to_jax(PARAMS)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    assert fg_s.acc_grads["w"].dtype == jnp.bfloat16
    ox_update = jitted_update(ox_opt)
    for step in range(5):
        g = _grads(step)
        fg_u, fg_s = fg_opt.update(to_fg(g), fg_s, fg_p, value=np.float32(2.5 + step))
        ox_u, ox_s = ox_update(to_jax(g), ox_s, ox_p, value=np.float32(2.5 + step))
        assert_same(fg_u, ox_u, check_weak=False)
        assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)


def test_multisteps_rejects_a_non_boolean_skip():
    opt = optim.MultiSteps(optim.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (1.0, ()))
    params = to_fg(PARAMS)
    with pytest.raises(ValueError, match="MultiSteps: should_skip_update_fn must return a "
                                         "boolean scalar"):
        opt.update(to_fg(_grads(0)), opt.init(params), params)

SCHEDULES = [
    lambda m: m.constant_schedule(0.3),
    lambda m: m.linear_schedule(1.0, 0.1, 10, transition_begin=2),
    lambda m: m.polynomial_schedule(1.0, 0.1, 2.0, 10),
    lambda m: m.cosine_decay_schedule(1.0, 10, alpha=0.1),
    lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 3, 12, end_value=0.05),
    lambda m: m.exponential_decay(1.0, 3, 0.5, transition_begin=1, staircase=True, end_value=0.2),
    lambda m: m.piecewise_constant_schedule(1.0, {3: 0.5, 7: 0.1}),
    lambda m: m.join_schedules([m.constant_schedule(1.0), m.linear_schedule(1.0, 0.0, 5)], [4]),
    lambda m: m.warmup_constant_schedule(0.0, 1.0, 5),
    lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 3, 4, 0.5, 1, True, 0.1),
    lambda m: m.sgdr_schedule([{"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 2,
                                "decay_steps": 6},
                               {"init_value": 0.1, "peak_value": 0.5, "warmup_steps": 1,
                                "decay_steps": 5}]),
    lambda m: m.piecewise_interpolate_schedule("linear", 1.0, {3: 2.0, 7: 0.5}),
    lambda m: m.piecewise_interpolate_schedule("cosine", 1.0, {3: 2.0, 7: 0.5}),
    lambda m: m.linear_onecycle_schedule(12, 1.0),
    lambda m: m.cosine_onecycle_schedule(12, 0.3, pct_start=0.25),
]


@pytest.mark.parametrize("make", SCHEDULES)
def test_schedules_match_optax(make):
    fg, ox = make(optim), make(optax)
    for count in range(15):
        np.testing.assert_allclose(np.asarray(fg(jnp.asarray(count))),
                                   np.asarray(ox(jnp_ref.asarray(count))), rtol=1e-6, atol=1e-7)


def _minimise(loss, x0, opt, steps):
    params = jnp.asarray(np.asarray(x0, np.float32))
    state = opt.init(params)

    @fungrad.jit
    def step(params, state):
        g = fungrad.grad(loss)(params)
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state
    for _ in range(steps):
        params, state = step(params, state)
    return np.asarray(params)


@pytest.mark.parametrize("opt", [optim.sgd(0.1), optim.sgd(0.05, momentum=0.9), optim.adam(0.1),
                                 optim.rmsprop(0.01), optim.adamw(0.1, weight_decay=0.0),
                                 optim.adagrad(0.5)])
def test_parabola_converges(opt):
    x = _minimise(lambda x: jnp.sum((x - 3.0) ** 2), [0.0, -1.0], opt, 500)
    np.testing.assert_allclose(x, [3.0, 3.0], atol=2e-2)


def test_parabola_converges_with_lion():
    # Lion's sign updates keep a fixed step size: it settles only as the schedule decays.
    opt = optim.lion(optim.cosine_decay_schedule(0.05, 1000), b2=0.9, weight_decay=0.0)
    x = _minimise(lambda x: jnp.sum((x - 3.0) ** 2), [0.0, -1.0], opt, 1000)
    np.testing.assert_allclose(x, [3.0, 3.0], atol=2e-2)


def test_parabola_converges_with_lamb():
    # LAMB's trust ratio makes each step about lr * ||x|| long: at a fixed learning rate it
    # circles the optimum at that distance, and settles only as the schedule decays.
    opt = optim.lamb(optim.cosine_decay_schedule(0.05, 500))
    x = _minimise(lambda x: jnp.sum((x - 3.0) ** 2), [0.0, -1.0], opt, 500)
    np.testing.assert_allclose(x, [3.0, 3.0], atol=2e-2)


def test_rosenbrock_converges_with_adam():
    rosen = lambda v: (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2
    x = _minimise(rosen, [-1.0, 1.0], optim.adam(0.02), 3000)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=5e-2)


def test_state_passes_through_jit_and_donation():
    opt = optim.adamw(1e-2)
    p = to_fg(PARAMS)
    s = opt.init(p)
    step = fungrad.jit(lambda g, s, p: opt.update(g, s, p), donate_argnums=(1,))
    u, s2 = step(to_fg(_grads(0)), s, p)
    assert tree.structure(s2) == tree.structure(opt.init(p))
    assert int(s2[0].count) == 1


def test_params_required_error():
    opt = optim.adamw(1e-2)
    p = to_fg(PARAMS)
    with pytest.raises(ValueError, match="params"):
        opt.update(p, opt.init(p))


def test_incremental_and_periodic_updates_match_optax():
    new, old = to_fg(PARAMS), to_fg(_grads(1))
    for step_size in (0.002, 0.5):
        assert_same(optim.incremental_update(new, old, step_size),
                    optax.incremental_update(to_jax(PARAMS), to_jax(_grads(1)), step_size))
    ema = fungrad.jit(optim.incremental_update)(new, old, jnp.asarray(0.1))
    np.testing.assert_allclose(np.asarray(ema["w"]), 0.1 * PARAMS["w"] + 0.9 * _grads(1)["w"],
                               rtol=1e-6)
    for steps in (0, 3, 4, 8):
        got = fungrad.jit(optim.periodic_update)(new, old, steps, 4)
        want = optax.periodic_update(to_jax(PARAMS), to_jax(_grads(1)), steps, 4)
        assert_same(got, want)
    with pytest.raises(ValueError, match="incremental_update: new_tensors' tree structure"):
        optim.incremental_update(new, {"w": old["w"]}, 0.1)


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="interpolate_type must be 'cosine' or 'linear'"):
        optim.piecewise_interpolate_schedule("cubic", 1.0)
    with pytest.raises(ValueError, match="scales must be non-negative"):
        optim.piecewise_interpolate_schedule("linear", 1.0, {3: -1.0})
    with pytest.raises(ValueError, match="transition_steps must be positive"):
        optim.cosine_onecycle_schedule(0, 1.0)
