"""fungrad.optim.moments against optax, step for step, on the same gradients."""
import optax
import pytest

from fungrad import optim
from harness import to_fg, to_jax
from test_optim import PARAMS, run_against_optax

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


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_step_for_step(name, make):
    run_against_optax(make)


@pytest.mark.parametrize("name", ["amsgrad", "radam", "novograd", "adan"])
def test_matches_optax_under_jit(name):
    run_against_optax(dict(CASES)[name], jit=True)


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
