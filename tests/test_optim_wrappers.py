"""fungrad.optim.wrappers against optax, step for step, on the same gradients."""
import functools

import jax
import jax.numpy as jnp_ref
import numpy as np
import optax
import pytest

import fungrad
from fungrad import optim, random, tree
from fungrad.optim import wrappers
from harness import assert_same, to_fg, to_jax

STEPS = 5
PARAMS = {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3),
          "b": np.array([0.5, -0.25, 0.0], np.float32),
          "big": np.linspace(0.1, 1, 130 * 129, dtype=np.float32).reshape(130, 129)}
# Steps whose gradient holds a non-finite value: (step, leaf, index, value).
NOT_FINITE = {1: ("w", (0, 1), np.nan), 3: ("b", (2,), np.inf), 4: ("big", (5, 7), -np.inf)}

# (name, optimiser from a module that is fungrad.optim or optax).
CASES = [
    ("scale_by_sign", lambda m: m.chain(m.scale_by_sign(), m.scale(-0.1))),
    ("sign_sgd", lambda m: m.sign_sgd(0.1)),
    ("signum", lambda m: m.signum(m.linear_schedule(0.1, 0.01, 4), beta=0.8)),
    ("add_noise", lambda m: m.chain(m.add_noise(0.1, 0.55, key=3), m.scale(-0.1))),
    ("noisy_sgd", lambda m: m.noisy_sgd(0.1, key=0)),
    ("centralize", lambda m: m.chain(m.centralize(), m.sgd(0.1))),
    ("adaptive_grad_clip", lambda m: m.chain(m.adaptive_grad_clip(0.01), m.sgd(0.1))),
    ("adaptive_grad_clip_axis", lambda m: m.chain(m.adaptive_grad_clip(0.05, axis=-1),
                                                  m.sgd(0.1))),
    ("keep_params_nonnegative", lambda m: m.chain(m.sgd(0.3), m.keep_params_nonnegative())),
    ("normalize_by_update_norm", lambda m: m.normalize_by_update_norm(scale_factor=-0.5)),
    ("rprop", lambda m: m.rprop(0.01)),
    ("scale_by_rprop", lambda m: m.chain(m.scale_by_rprop(0.1, eta_minus=0.4, eta_plus=1.5,
                                                          max_step_size=0.2), m.scale(-1.0))),
    ("apply_every_after", lambda m: m.chain(m.adam(1e-2), m.apply_every(k=2))),
    ("apply_every_before", lambda m: m.chain(m.apply_every(k=2), m.sgd(0.1, momentum=0.9))),
    ("conditionally_transform", lambda m: m.conditionally_transform(
        m.adam(1e-2), lambda step: step % 2 == 0)),
]
# Run on gradients with NaN and inf (NOT_FINITE): the second gives up at step 4.
NOT_FINITE_CASES = [
    ("apply_if_finite", lambda m: m.apply_if_finite(m.adam(1e-2), max_consecutive_errors=2)),
    ("apply_if_finite_gives_up", lambda m: m.apply_if_finite(m.sgd(0.1), 1)),
]
# Cases whose optax update is a cond, which JAX traces and compiles anew at every eager call
# (seconds a test): their reference runs under jax.jit, which gives the same bits.
JIT_REF = {"conditionally_transform", "apply_if_finite", "apply_if_finite_gives_up"}


def _grads(step: int, not_finite: bool = False):
    rng = np.random.default_rng(step)
    g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in PARAMS.items()}
    if not_finite and step in NOT_FINITE:
        leaf, index, value = NOT_FINITE[step]
        g[leaf][index] = value
    return g


def _key_data(t):
    """optax's state with its typed keys as their uint32 data (as fungrad's leaves are)."""
    return jax.tree.map(lambda x: jax.random.key_data(x)
                        if jnp_ref.issubdtype(x.dtype, jax.dtypes.prng_key) else x, t)


@functools.cache
def _optax_run(make, not_finite, jit_ref):
    """optax's side of ``_compare``: ``make(optax)``'s initial state, its updates at each
    step, and its last params and state (``jit_ref``: its update jitted). It does not depend
    on fungrad's, so the tests that run fungrad's eagerly and under jit share it."""
    ox_opt = make(optax)
    ox_update = jax.jit(ox_opt.update) if jit_ref else ox_opt.update
    ox_p = to_jax(PARAMS)
    ox_s = ox_init = ox_opt.init(ox_p)
    ox_updates = []
    for step in range(STEPS):
        ox_u, ox_s = ox_update(to_jax(_grads(step, not_finite)), ox_s, ox_p)
        ox_updates.append(ox_u)
        ox_p = optax.apply_updates(ox_p, ox_u)
    return ox_init, ox_updates, ox_p, ox_s


def _compare(name, make, not_finite=False, jit=False):
    fg_opt = make(optim)
    fg_update = fungrad.jit(fg_opt.update) if jit else fg_opt.update
    ox_init, ox_updates, ox_p, ox_s = _optax_run(make, not_finite, name in JIT_REF)
    fg_p = to_fg(PARAMS)
    fg_s = fg_opt.init(fg_p)
    assert type(fg_s).__name__ == type(ox_init).__name__
    for step, ox_u in enumerate(ox_updates):
        fg_u, fg_s = fg_update(to_fg(_grads(step, not_finite)), fg_s, fg_p)
        assert_same(fg_u, ox_u, check_weak=False)
        fg_p = optim.apply_updates(fg_p, fg_u)
    assert_same(fg_p, ox_p, check_weak=False)
    assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(_key_data(ox_s)), check_weak=False)
    return fg_s, ox_s


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_step_for_step(name, make):
    _compare(name, make)


@pytest.mark.parametrize("name,make", NOT_FINITE_CASES, ids=[c[0] for c in NOT_FINITE_CASES])
def test_not_finite_steps_match_optax(name, make):
    fg_s, ox_s = _compare(name, make, not_finite=True)
    assert int(fg_s.total_notfinite) == int(ox_s.total_notfinite) == 3
    assert bool(fg_s.last_finite) == bool(ox_s.last_finite) is False


@pytest.mark.parametrize("name", ["noisy_sgd", "rprop", "apply_every_after", "apply_if_finite"])
def test_matches_optax_under_jit(name):
    _compare(name, dict(CASES + NOT_FINITE_CASES)[name], not_finite=name == "apply_if_finite",
             jit=True)


@pytest.mark.parametrize("gamma", [0.5, 1.0])
@pytest.mark.parametrize("jit", [False, True])
def test_noisy_updates_are_bit_exact(gamma, jit):
    # The noise is bit-exact; so is the update where count ** gamma is (fungrad's float32
    # pow can be 1 ulp from XLA's, e.g. 4 ** 0.55, which assert_same's tolerance covers).
    fg_opt, ox_opt = optim.noisy_sgd(0.1, 0.3, gamma, key=5), optax.noisy_sgd(0.1, 0.3, gamma, 5)
    fg_update = fungrad.jit(fg_opt.update) if jit else fg_opt.update
    fg_s, ox_s = fg_opt.init(to_fg(PARAMS)), ox_opt.init(to_jax(PARAMS))
    for step in range(STEPS):
        g = _grads(step)
        fg_u, fg_s = fg_update(to_fg(g), fg_s)
        ox_u, ox_s = ox_opt.update(to_jax(g), ox_s)
        for a, b in zip(tree.leaves(fg_u), jax.tree_util.tree_leaves(ox_u)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(tree.leaves(fg_s)[1]),
                                  np.asarray(jax.random.key_data(ox_s[0].rng_key)))


def test_add_noise_takes_typed_keys_and_defaults_to_key_zero():
    g = _grads(0)
    fg_opt = optim.add_noise(0.1, 0.55, key=random.key(7))
    ox_opt = optax.add_noise(0.1, 0.55, key=jax.random.key(7))
    fg_u, _ = fg_opt.update(to_fg(g), fg_opt.init(to_fg(PARAMS)))
    ox_u, _ = ox_opt.update(to_jax(g), ox_opt.init(to_jax(PARAMS)))
    assert_same(fg_u, ox_u, check_weak=False)
    with pytest.warns(UserWarning, match="key"):
        fg_default = optim.add_noise(0.1, 0.55)
    zero = optim.add_noise(0.1, 0.55, key=0)
    assert_same(fg_default.update(to_fg(g), fg_default.init(to_fg(PARAMS)))[0],
                zero.update(to_fg(g), zero.init(to_fg(PARAMS)))[0])


@pytest.mark.parametrize("step", [0, 1, 3, 4])
def test_skip_not_finite_matches_optax(step):
    g = _grads(step, not_finite=True)
    fg_skip, fg_info = optim.skip_not_finite(to_fg(g), fungrad.numpy.asarray(step), None)
    ox_skip, ox_info = optax.skip_not_finite(to_jax(g), jnp_ref.asarray(step), None)
    assert_same((fg_skip, fg_info), (ox_skip, ox_info))
    assert bool(fg_skip) == (step in NOT_FINITE)


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_matches_optax(reset_state):
    def make(m):
        return m.lookahead(m.adam(1e-2), sync_period=2, slow_step_size=0.5,
                           reset_state=reset_state)
    fg_opt, ox_opt = make(optim), make(optax)
    fg_p = optim.LookaheadParams.init_synced(to_fg(PARAMS))
    ox_p = optax.LookaheadParams.init_synced(to_jax(PARAMS))
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    for step in range(STEPS):
        g = _grads(step)
        fg_u, fg_s = fg_opt.update(to_fg(g), fg_s, fg_p)
        ox_u, ox_s = ox_opt.update(to_jax(g), ox_s, ox_p)
        assert isinstance(fg_u, optim.LookaheadParams)
        assert_same(fg_u, ox_u, check_weak=False)
        fg_p, ox_p = optim.apply_updates(fg_p, fg_u), optax.apply_updates(ox_p, ox_u)
    assert_same(fg_p, ox_p, check_weak=False)
    assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)
    with pytest.raises(ValueError, match="Synchronization period"):
        optim.lookahead(optim.sgd(0.1), 0, 0.5)


def test_state_classes_match_optax():
    for name in wrappers.__all__:
        ours, theirs = getattr(optim, name), getattr(optax, name)
        if isinstance(ours, type):
            assert ours._fields == theirs._fields, name


def test_params_required_error():
    p = to_fg(PARAMS)
    for opt in (optim.adaptive_grad_clip(0.01), optim.keep_params_nonnegative()):
        with pytest.raises(ValueError, match="params"):
            opt.update(p, opt.init(p))
