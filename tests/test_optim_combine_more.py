"""fungrad.optim.combine_more against optax, step for step, on the same gradients."""
import collections

import numpy as np
import optax
import pytest

from fungrad import optim
from harness import assert_same, to_fg, to_jax
from test_optim import PARAMS, run_against_optax

FROZEN = {"w": True, "b": False, "big": False}


class Halving:
    """A stateful schedule (``init``, ``update``, ``__call__``) that either library takes."""

    def init(self):
        return 0.02

    def update(self, state, **extra_args):
        return state * 0.5

    def __call__(self, state, **extra_args):
        return state


def _inject(m, **hyperparams):
    with pytest.warns(DeprecationWarning):
        return m.inject_stateful_hyperparams(m.adam)(**hyperparams)


# (name, optimiser from a module that is fungrad.optim or optax).
CASES = [
    ("named_chain", lambda m: m.named_chain(("clip", m.clip(0.1)), ("adam", m.adam(1e-2)))),
    ("partition", lambda m: m.partition({"a": m.adam(1e-2), "f": m.set_to_zero()},
                                        {"w": "a", "b": "f", "big": "a"})),
    ("partition_fn", lambda m: m.partition(
        {"adam": m.adam(1e-2), "sgd": m.sgd(0.1, momentum=0.9)},
        lambda p: {k: "sgd" if k == "b" else "adam" for k in p})),
    ("freeze", lambda m: m.chain(m.freeze(FROZEN), m.adam(1e-2))),
    ("freeze_all", lambda m: m.freeze(True)),
    ("selective_transform", lambda m: m.selective_transform(m.adam(1e-2), freeze_mask=FROZEN)),
    ("selective_transform_none", lambda m: m.selective_transform(m.sgd(0.1),
                                                                 freeze_mask=False)),
    ("flatten", lambda m: m.flatten(m.adam(1e-2))),
    ("conditionally_mask", lambda m: m.conditionally_mask(m.adam(1e-2),
                                                          lambda step: step % 2 == 0)),
    ("snapshot", lambda m: m.chain(m.sgd(0.1, momentum=0.9),
                                   m.snapshot("b_twice", lambda u: u["b"] * 2.0),
                                   m.clip_by_global_norm(0.05))),
    ("monitor", lambda m: m.chain(m.sgd(0.1), m.monitor({
        "b": lambda u: u["b"],
        "w_sum_ema": m.measure_with_ema(lambda u: u["w"].sum(), decay=0.9)}))),
    ("inject_schedule", lambda m: _inject(m, learning_rate=m.linear_schedule(0.1, 0.01, 4),
                                          b1=0.8)),
    ("inject_stateful", lambda m: _inject(m, learning_rate=Halving())),
    ("stateless", lambda m: m.chain(m.stateless(
        lambda u, p: {k: u[k] + 0.01 * p[k] for k in u}), m.scale(-0.1))),
    ("stateless_with_tree_map", lambda m: m.stateless_with_tree_map(
        lambda u, p: -0.1 * u + 0.01 * p)),
    ("with_extra_args_support", lambda m: m.with_extra_args_support(m.adam(1e-2))),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_step_for_step(name, make):
    run_against_optax(make)


@pytest.mark.parametrize("make", [CASES[0][1], CASES[2][1], CASES[7][1], CASES[8][1]],
                         ids=["named_chain", "partition_fn", "flatten", "conditionally_mask"])
def test_matches_optax_under_jit(make):
    run_against_optax(make, jit=True)


# One class under two names in both libraries; optax's __name__ is the newer one.
SAME_CLASS = {"MultiTransformState": "PartitionState"}


def _state_types(state):
    """The state's NamedTuple classes and fields, depth first (dict values in key order)."""
    if hasattr(state, "_fields"):
        name = type(state).__name__
        return [(SAME_CLASS.get(name, name), state._fields),
                *[t for v in state for t in _state_types(v)]]
    if isinstance(state, dict):
        return [t for k in sorted(state) for t in _state_types(state[k])]
    if isinstance(state, tuple):
        return [t for v in state for t in _state_types(v)]
    return []


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_state_structure_matches_optax(name, make):
    fg_opt, ox_opt = make(optim), make(optax)
    fg_s, ox_s = fg_opt.init(to_fg(PARAMS)), ox_opt.init(to_jax(PARAMS))
    fg_s = fg_opt.update(to_fg(PARAMS), fg_s, to_fg(PARAMS))[1]
    ox_s = ox_opt.update(to_jax(PARAMS), ox_s, to_jax(PARAMS))[1]
    assert _state_types(fg_s) == _state_types(ox_s)


def test_named_chain_state_is_ordered_by_name():
    opt = optim.named_chain(("clip", optim.clip(0.1)), ("adam", optim.adam(1e-2)))
    state = opt.init(to_fg(PARAMS))
    assert isinstance(state, collections.OrderedDict) and list(state) == ["clip", "adam"]
    with pytest.raises(ValueError, match="unique names"):
        optim.named_chain(("a", optim.sgd(0.1)), ("a", optim.sgd(0.1)))


def test_partition_is_multi_transform_and_rejects_unknown_labels():
    assert optim.PartitionState is optim.MultiTransformState
    opt = optim.partition({"a": optim.sgd(0.1)}, {"w": "a", "b": "x", "big": "a"})
    with pytest.raises(ValueError):
        opt.init(to_fg(PARAMS))


def test_inject_stateful_hyperparams_checks_static_args():
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="static_args"):
        optim.inject_stateful_hyperparams(optim.adam, static_args="nope")


def test_exports():
    for name in optim.combine_more.__all__:
        assert getattr(optim, name) is getattr(optim.combine_more, name)


# Conditional wrappers pass the update's extra arguments to the inner transformation, and to
# the condition with ``forward_extra_args``: Polyak's step size reads ``value`` inside, the
# condition skips the steps whose ``value`` is at least 2.
CONDITIONAL = ["conditionally_transform", "conditionally_mask"]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("wrapper", CONDITIONAL)
def test_conditional_wrappers_forward_extra_args_as_optax(wrapper, jit):
    make = lambda m: getattr(m, wrapper)(  # noqa: E731
        m.chain(m.scale_by_polyak(max_learning_rate=0.5), m.scale(-1.0)),
        lambda step, value: (value < 2.0) & (step != 1), forward_extra_args=True)
    run_against_optax(make, jit=jit, extra=lambda step: {"value": np.float32(1.0 + 0.4 * step)})


@pytest.mark.parametrize("wrapper", CONDITIONAL)
def test_conditional_wrappers_keep_extra_args_from_the_condition_by_default(wrapper):
    opt = getattr(optim, wrapper)(optim.scale_by_polyak(), lambda step: step < 1)
    assert isinstance(opt, optim.GradientTransformationExtraArgs)
    updates, state = opt.update(to_fg(PARAMS), opt.init(to_fg(PARAMS)), to_fg(PARAMS),
                                value=np.float32(3.0))
    assert int(state.step) == 1 and set(updates) == set(PARAMS)
    with pytest.raises(TypeError, match="value"):
        getattr(optim, wrapper)(optim.scale_by_polyak(), lambda step: step < 1,
                                forward_extra_args=True).update(
            to_fg(PARAMS), opt.init(to_fg(PARAMS)), to_fg(PARAMS), value=np.float32(3.0))


UNITWISE_SHAPES = [(5,), (1, 5), (4, 3), (2, 4, 3), (2, 2, 3, 4), (2, 1, 2, 3, 2)]


@pytest.mark.parametrize("shape", UNITWISE_SHAPES, ids=str)
def test_unitwise_norm_and_clip_match_optax(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    ours, ref = optim.transforms.unitwise_norm(to_fg(x)), optax.transforms.unitwise_norm(to_jax(x))
    assert_same(ours, ref)
    assert_same(optim.transforms.unitwise_norm(to_fg(x), axis=-1),
                optax.transforms.unitwise_norm(to_jax(x), axis=-1))
    max_norm = np.full(shape, float(np.median(np.asarray(ref))), np.float32)
    assert_same(optim.transforms.unitwise_clip(ours, to_fg(max_norm), to_fg(x)),
                optax.transforms.unitwise_clip(ref, to_jax(max_norm), to_jax(x)))


def test_unitwise_errors_name_the_argument():
    with pytest.raises(ValueError, match="shape in"):
        optim.transforms.unitwise_norm(to_fg(np.ones((1, 2, 1, 2, 1, 2), np.float32)))
    with pytest.raises(ValueError, match="unitwise_clip: max_norm has shape"):
        optim.transforms.unitwise_clip(to_fg(np.ones(3, np.float32)), to_fg(np.ones(2, np.float32)),
                            to_fg(np.ones(3, np.float32)))


def test_condition_fn_is_a_protocol_as_in_optax():
    assert "__call__" in vars(optim.transforms.ConditionFn)


def test_transforms_namespace_is_optaxs():
    """``fungrad.optim.transforms`` holds every public name of ``optax.transforms``; those
    that ``fungrad.optim`` also has are the same objects."""
    theirs = {n for n in dir(optax.transforms) if not n.startswith("_")}
    assert theirs <= set(optim.transforms.__all__)
    for name in optim.transforms.__all__:
        ours = getattr(optim.transforms, name)
        if hasattr(optax, name):
            assert getattr(optim, name) is ours, name
