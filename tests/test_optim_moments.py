"""fungrad.optim.moments against optax, step for step, on the same gradients."""
import jax
import optax
import pytest

import fungrad
from fungrad import optim, tree
from harness import assert_same, to_fg, to_jax
from test_optim import PARAMS, STEPS, _grads

# (name, optimiser made from a module: fungrad.optim or optax).
CASES = [
    ("amsgrad", lambda m: m.amsgrad(1e-2)),
    ("amsgrad_eps_root", lambda m: m.amsgrad(1e-2, eps_root=1e-8, bias_correction_nu=False)),
    ("adamax", lambda m: m.adamax(1e-2)),
    ("adamaxw", lambda m: m.adamaxw(1e-2, weight_decay=0.1,
                                    mask=lambda p: {k: v.ndim > 1 for k, v in p.items()})),
    ("nadam", lambda m: m.nadam(1e-2)),
    ("nadamw", lambda m: m.nadamw(1e-2, weight_decay=0.1)),
    ("radam", lambda m: m.radam(1e-2)),
    ("radam_threshold_nesterov", lambda m: m.radam(1e-2, threshold=1.0, nesterov=True)),
    ("adabelief", lambda m: m.adabelief(1e-2)),
    ("adabelief_nesterov", lambda m: m.adabelief(1e-2, nesterov=True)),
    ("yogi", lambda m: m.yogi(1e-2)),
    ("yogi_initial_accumulator", lambda m: m.chain(
        m.scale_by_yogi(initial_accumulator_value=0.5, eps_root=1e-8), m.scale(-1e-2))),
    ("adadelta", lambda m: m.adadelta()),
    ("adadelta_lr_decay", lambda m: m.adadelta(0.5, weight_decay=0.01,
                                               weight_decay_mask={"w": True, "b": False,
                                                                  "big": True})),
    ("novograd", lambda m: m.novograd(1e-2)),
    ("novograd_weight_decay", lambda m: m.novograd(1e-2, weight_decay=0.1)),
    ("adan", lambda m: m.adan(1e-2)),
    ("adan_weight_decay", lambda m: m.adan(1e-2, weight_decay=0.1)),
]


def _run(make, jit=False):
    """Run ``make(optim)`` and ``make(optax)`` for ``STEPS`` steps, comparing every step."""
    fg_opt, ox_opt = make(optim), make(optax)
    fg_update = fungrad.jit(fg_opt.update) if jit else fg_opt.update
    fg_p, ox_p = to_fg(PARAMS), to_jax(PARAMS)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    for step in range(STEPS):
        g = _grads(step)
        fg_u, fg_s = fg_update(to_fg(g), fg_s, fg_p)
        ox_u, ox_s = ox_opt.update(to_jax(g), ox_s, ox_p)
        assert_same(fg_u, ox_u, check_weak=False)
        fg_p, ox_p = optim.apply_updates(fg_p, fg_u), optax.apply_updates(ox_p, ox_u)
    assert_same(fg_p, ox_p, check_weak=False)
    assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_step_for_step(name, make):
    _run(make)


@pytest.mark.parametrize("name", ["amsgrad", "radam", "novograd", "adan"])
def test_matches_optax_under_jit(name):
    _run(dict(CASES)[name], jit=True)


@pytest.mark.parametrize("atom", ["scale_by_amsgrad", "scale_by_adamax", "scale_by_radam",
                                  "scale_by_belief", "scale_by_yogi", "scale_by_adadelta",
                                  "scale_by_novograd", "scale_by_adan"])
def test_state_fields_match_optax(atom):
    fg_state = getattr(optim, atom)().init(to_fg(PARAMS))
    ox_state = getattr(optax, atom)().init(to_jax(PARAMS))
    assert type(fg_state).__name__ == type(ox_state).__name__
    assert fg_state._fields == ox_state._fields


def test_public_names_are_exported():
    for name in optim.moments.__all__:
        assert getattr(optim, name) is getattr(optim.moments, name)
        assert hasattr(optax, name), name
