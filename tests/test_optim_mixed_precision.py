"""``optim.mixed_precision``: float32 master weights behind bfloat16/float16 parameters.

The master weights must follow the plain float32 optimiser fed the same (upcast)
gradients bit for bit, the parameters must be the master weights cast down, and a
dynamic loss scale must skip non-finite steps as ``jmp`` does.
"""
import numpy as np
import optax
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, tree

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 4)).astype(np.float32)
Y = RNG.standard_normal((16, 3)).astype(np.float32)


def _init() -> dict:
    return {"w": jnp.asarray(RNG.standard_normal((4, 3)), jnp.float32),
            "b": jnp.asarray(RNG.standard_normal(3), jnp.float32)}


def _loss(params: dict) -> jnp.ndarray:
    """A least-squares loss computed in the parameters' dtype, reduced in float32."""
    x = jnp.asarray(X, params["w"].dtype)
    pred = x @ params["w"] + params["b"]
    return jnp.mean((pred.astype(jnp.float32) - Y) ** 2)


def _bits(t) -> list:
    return [np.ascontiguousarray(x).reshape(-1).view(np.uint8) for x in tree.leaves(t)]


def _assert_same_bits(a, b) -> None:
    for x, y in zip(_bits(a), _bits(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("make", [lambda: optim.adamw(1e-2, weight_decay=0.1),
                                  lambda: optim.sgd(0.1, momentum=0.9)], ids=["adamw", "sgd"])
@pytest.mark.parametrize("compute", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
def test_master_weights_follow_the_float32_optimiser(make, compute):
    """Each step: the master weights are the plain optimiser's on float32 parameters fed
    the upcast gradients (bit for bit); the parameters are them cast to ``compute``."""
    master = _init()
    opt = optim.mixed_precision(make(), compute)
    state = opt.init(master)
    params = nn.cast_floating(master, compute)
    plain, plain_state = master, make().init(master)
    for _ in range(4):
        grads = fungrad.grad(_loss)(params)
        assert all(g.dtype == compute for g in tree.leaves(grads))
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        upcast = nn.cast_floating(grads, jnp.float32)
        plain_updates, plain_state = make().update(upcast, plain_state, plain)
        plain = optim.apply_updates(plain, plain_updates)
        _assert_same_bits(state.master, plain)
        assert all(p.dtype == compute for p in tree.leaves(params))
        assert all(m.dtype == jnp.float32 for m in tree.leaves(state.master))
        _assert_same_bits(params, nn.cast_floating(plain, compute))


def test_master_weights_match_optax_adamw():
    """The same trajectory against optax.adamw on the float32 master weights."""
    master = _init()
    opt = optim.mixed_precision(optim.adamw(1e-2, weight_decay=0.1), jnp.bfloat16)
    state = opt.init(master)
    params = nn.cast_floating(master, jnp.bfloat16)
    ref = optax.adamw(1e-2, weight_decay=0.1)
    ref_params = {k: np.asarray(v) for k, v in master.items()}
    ref_state = ref.init(ref_params)
    for _ in range(3):
        grads = fungrad.grad(_loss)(params)
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        upcast = {k: np.asarray(v, np.float32) for k, v in grads.items()}
        ref_updates, ref_state = ref.update(upcast, ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, ref_updates)
        for k in master:
            np.testing.assert_allclose(np.asarray(state.master[k]), np.asarray(ref_params[k]),
                                       rtol=1e-6, atol=1e-7)


def test_small_updates_accumulate_in_the_master_weights():
    """Updates below bfloat16's resolution leave the parameters but not the master
    weights: after enough of them the parameters move (plain bfloat16 never would)."""
    opt = optim.mixed_precision(optim.sgd(1.0), jnp.bfloat16)
    state = opt.init({"w": jnp.ones(2)})
    params = {"w": jnp.ones(2, jnp.bfloat16)}
    grads = {"w": jnp.full(2, -2.0 ** -10, jnp.bfloat16)}  # an eighth of bf16's step at 1
    for step in range(8):
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        # 1 + k * 2**-10 rounds to 1 up to k = 4 (a tie, to even), then to 1 + 2**-7
        assert float(params["w"][0]) == (1.0 if step < 4 else 1.0 + 2.0 ** -7)
    assert float(state.master["w"][0]) == 1.0 + 8 * 2.0 ** -10
    plain, sgd = {"w": jnp.ones(2, jnp.bfloat16)}, optim.sgd(1.0)
    plain_state = sgd.init(plain)
    for _ in range(8):
        plain_updates, plain_state = sgd.update(grads, plain_state, plain)
        plain = optim.apply_updates(plain, plain_updates)
    assert float(plain["w"][0]) == 1.0


def test_dynamic_loss_scale_skips_non_finite_steps():
    """float16 with a dynamic loss scale: the gradients of the scaled loss, unscaled, give
    the plain optimiser's trajectory; an overflowing step changes nothing but halves the
    scale; ``period`` finite steps double it (``jmp.DynamicLossScale``'s rule)."""
    make = lambda: optim.adam(1e-2)  # noqa: E731
    master = _init()
    opt = optim.mixed_precision(make(), jnp.float16,
                                loss_scale=nn.DynamicLossScale.create(2.0 ** 10, period=2))
    state = opt.init(master)
    params = nn.cast_floating(master, jnp.float16)
    plain, plain_state = master, make().init(master)
    scales = []
    for step in range(5):
        scale = state.loss_scale.loss_scale
        grads = fungrad.grad(lambda p: _loss(p) * scale)(params)
        if step == 2:  # an overflow in the backward pass
            grads = {**grads, "b": grads["b"].at[0].set(jnp.inf)}
        before = state
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        scales.append(float(state.loss_scale.loss_scale))
        if step == 2:
            assert all(not np.any(np.asarray(u)) for u in tree.leaves(updates))
            _assert_same_bits(state.master, before.master)
            _assert_same_bits(state.inner_state, before.inner_state)
            continue
        upcast = tree.map(lambda g: g.astype(jnp.float32) / scale, grads)
        plain_updates, plain_state = make().update(upcast, plain_state, plain)
        plain = optim.apply_updates(plain, plain_updates)
        _assert_same_bits(state.master, plain)
    assert scales == [2.0 ** 10, 2.0 ** 11, 2.0 ** 10, 2.0 ** 10, 2.0 ** 11]


def test_under_jit_as_eagerly():
    """The wrapper is pure: one jitted step gives the eager step's bits."""
    opt = optim.mixed_precision(optim.adamw(1e-2), jnp.bfloat16)

    def step(params, state):
        updates, state = opt.update(fungrad.grad(_loss)(params), state, params)
        return optim.apply_updates(params, updates), state
    master = _init()
    params, state = nn.cast_floating(master, jnp.bfloat16), opt.init(master)
    _assert_same_bits(fungrad.jit(step)(params, state), step(params, state))


def test_update_needs_the_parameters():
    opt = optim.mixed_precision(optim.sgd(0.1))
    state = opt.init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="mixed_precision: you are using a transformation that "
                                         "requires the current value of the parameters"):
        opt.update({"w": jnp.ones(2, jnp.bfloat16)}, state)
