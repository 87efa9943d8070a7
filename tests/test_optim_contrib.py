"""fungrad.optim.contrib against optax.contrib, step for step, on the same gradients."""
import optax
import pytest

import fungrad.numpy as jnp
from fungrad import optim
from harness import assert_same, to_fg, to_jax
from test_optim import PARAMS, run_against_optax

# (name, make): ``make(m)`` builds the optimiser from ``m.contrib`` (fungrad's or optax's).
CASES = [
    ("muon", lambda m: m.contrib.muon(1e-2)),
    ("muon_options", lambda m: m.contrib.muon(
        1e-2, ns_coeffs="dion", beta=0.9, weight_decay=0.1, nesterov=False,
        adam_learning_rate=3e-3, adam_weight_decay=0.01, consistent_rms=0.2)),
    # adaptive scales the orthogonalised momentum by <m, O>, which multiplies the matmuls'
    # float32 rounding (BLAS and XLA sum in different orders) far past 1e-6 on the 130x129
    # matrix: Adam takes that one here
    ("muon_adaptive", lambda m: m.contrib.muon(
        1e-2, adaptive=True, muon_weight_dimension_numbers={
            "w": m.contrib.MuonDimensionNumbers(), "b": None, "big": None})),
    ("muon_spectral", lambda m: m.contrib.muon(1e-2, preconditioning="spectral")),
    ("muon_aol", lambda m: m.contrib.muon(1e-2, ns_steps=4, preconditioning="aol")),
    ("muon_schatten", lambda m: m.contrib.muon(1e-2, preconditioning="schatten")),
    ("muon_dim_nums", lambda m: m.contrib.muon(
        1e-2, muon_weight_dimension_numbers={
            "w": m.contrib.MuonDimensionNumbers(1, 0), "b": None,
            "big": m.contrib.MuonDimensionNumbers()})),
    ("scale_by_muon", lambda m: m.masked(m.chain(m.contrib.scale_by_muon(
        beta=0.9, weight_dimension_numbers=lambda u: {
            "w": m.contrib.MuonDimensionNumbers(), "b": m.MaskedNode(),
            "big": m.contrib.MuonDimensionNumbers(1, 0)}), m.scale(-1e-2)),
        {"w": True, "b": False, "big": True})),
    ("schedule_free_adamw", lambda m: m.contrib.schedule_free_adamw(1e-2, weight_decay=1e-2)),
    ("schedule_free_adamw_warmup", lambda m: m.contrib.schedule_free_adamw(1e-2,
                                                                           warmup_steps=3)),
    ("schedule_free_sgd", lambda m: m.contrib.schedule_free_sgd(0.1, weight_decay=1e-3)),
    ("schedule_free_adam", lambda m: m.contrib.schedule_free(
        m.adam(m.linear_schedule(1e-2, 1e-3, 4)), m.linear_schedule(1e-2, 1e-3, 4), b1=0.8)),
    ("adopt", lambda m: m.contrib.adopt(1e-2)),
    ("adopt_nesterov_noclip", lambda m: m.contrib.adopt(1e-2, nesterov=True,
                                                        use_clipping=False)),
    ("ademamix", lambda m: m.contrib.ademamix(1e-2, weight_decay=1e-2)),
    ("ademamix_schedules", lambda m: m.contrib.ademamix(
        1e-2, b3=m.linear_schedule(0.9, 0.999, 4), alpha=m.linear_schedule(0.0, 5.0, 4))),
    ("simplified_ademamix", lambda m: m.contrib.simplified_ademamix(1e-2, alpha=2.0,
                                                                    weight_decay=1e-2)),
    ("prodigy", lambda m: m.contrib.prodigy()),
    ("prodigy_options", lambda m: m.contrib.prodigy(0.5, weight_decay=1e-2,
                                                    safeguard_warmup=True)),
    ("madgrad", lambda m: m.contrib.madgrad(1e-2, weight_decay=1e-2)),
    ("madgrad_schedule", lambda m: m.contrib.madgrad(m.linear_schedule(1e-2, 1e-3, 4),
                                                     momentum=0.5)),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_contrib(name, make):
    run_against_optax(make)


def test_muon_jitted():
    run_against_optax(lambda m: m.contrib.muon(1e-2, weight_decay=0.1), jit=True)


def test_schedule_free_jitted():
    run_against_optax(lambda m: m.contrib.schedule_free_adamw(1e-2), jit=True)


# Values that improve, stall, then improve: the scale drops and cools down in five steps.
PLATEAU_VALUES = [3.0, 2.0, 2.0, 2.0, 1.0]


@pytest.mark.parametrize("kwargs", [
    dict(factor=0.5, patience=1),
    dict(),
    dict(factor=0.5, patience=1, cooldown=1, min_scale=0.3),
    dict(factor=0.5, patience=0, accumulation_size=2, rtol=0.0, atol=0.5),
])
def test_reduce_on_plateau(kwargs):
    run_against_optax(lambda m: m.contrib.reduce_on_plateau(**kwargs),
                      extra=lambda step: {"value": jnp.asarray(PLATEAU_VALUES[step])})


def test_reduce_on_plateau_jitted():
    run_against_optax(lambda m: m.contrib.reduce_on_plateau(0.5, patience=1), jit=True,
                      extra=lambda step: {"value": jnp.asarray(PLATEAU_VALUES[step])})


def test_schedule_free_eval_params():
    fg_opt, ox_opt = optim.contrib.schedule_free_sgd(0.1), optax.contrib.schedule_free_sgd(0.1)
    fg_p, ox_p = to_fg(PARAMS), to_jax(PARAMS)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    fg_u, fg_s = fg_opt.update(fg_p, fg_s, fg_p)
    ox_u, ox_s = ox_opt.update(ox_p, ox_s, ox_p)
    fg_p, ox_p = optim.apply_updates(fg_p, fg_u), optax.apply_updates(ox_p, ox_u)
    assert_same(optim.contrib.schedule_free_eval_params(fg_s, fg_p),
                optax.contrib.schedule_free_eval_params(ox_s, ox_p), check_weak=False)


STATES = ["MuonState", "ScheduleFreeState", "ScaleByAdemamixState",
          "ScaleBySimplifiedAdEMAMixState", "ProdigyState", "ReduceLROnPlateauState",
          "MuonDimensionNumbers", "MadgradState"]


@pytest.mark.parametrize("name", STATES)
def test_state_fields_match_optax(name):
    assert getattr(optim.contrib, name)._fields == getattr(optax.contrib, name)._fields


def test_contrib_names_exist_in_optax_and_stay_out_of_optim():
    for name in optim.contrib.__all__:
        assert hasattr(optax.contrib, name), name
        assert name not in optim.__all__, name


def test_errors():
    with pytest.raises(ValueError, match="Factor"):
        optim.contrib.reduce_on_plateau(factor=1.5)
    with pytest.raises(ValueError, match="preset"):
        optim.contrib.muon(1e-2, ns_coeffs="nope")
    with pytest.raises(ValueError, match="requires the current value"):
        opt = optim.contrib.prodigy()
        opt.update(to_fg(PARAMS), opt.init(to_fg(PARAMS)))
