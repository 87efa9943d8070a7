"""fungrad.optim.contrib against optax.contrib, step for step, on the same gradients."""
import warnings

import jax
import numpy as np
import optax
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, tree
from harness import assert_same, to_fg, to_jax
from test_optim import PARAMS, jitted_update, run_against_optax


def _objective(params):
    """A loss of the parameters with a non-diagonal Hessian, written with array methods only
    so that it runs on fungrad's and on jax's arrays (Sophia's and Hutchinson's ``obj_fn``)."""
    return sum((v ** 4).sum() + v.sum() ** 2 for v in params.values())


def _bind_obj_fn(m, tx):
    """``tx`` whose ``update`` passes ``obj_fn=_objective`` itself (a function is no array
    for ``jit``)."""
    return m.GradientTransformation(
        tx.init, lambda updates, state, params=None: tx.update(updates, state, params,
                                                                obj_fn=_objective))


def _raw_key(m, seed):
    """A raw ``uint32[2]`` key of ``seed`` from the random module matching ``m``."""
    return (random if m is optim else jax.random).PRNGKey(seed)


# Losses that go down, then stall: MoMo's ``value``.
LOSSES = [3.0, 2.5, 1.0, 1.2, 0.4]
WITH_LOSS = lambda step: {"value": jnp.asarray(LOSSES[step])}  # noqa: E731
WITH_OBJ_FN = lambda step: {"obj_fn": _objective}  # noqa: E731

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
    ("acprop", lambda m: m.contrib.acprop(1e-2)),
    ("acprop_options", lambda m: m.contrib.acprop(
        m.linear_schedule(1e-2, 1e-3, 4), b1=0.8, b2=0.99, eps=1e-8, eps_root=1e-12,
        weight_decay=1e-2, mask={"w": True, "b": False, "big": True})),
    ("scale_by_acprop", lambda m: m.chain(m.contrib.scale_by_acprop(b1=0.5), m.scale(-1e-2))),
    # GaLore projects onto singular vectors, whose signs LAPACK and XLA choose apart for the
    # 130x129 matrix (test_galore_default_projects_big_matrices compares those up to sign):
    # here it projects "w" only, whose signs agree
    ("galore", lambda m: m.contrib.galore(1e-2, weight_dimension_numbers={
        "w": m.contrib.GaLoreDimensionNumbers(), "b": None, "big": None})),
    ("galore_options", lambda m: m.contrib.galore(
        m.linear_schedule(1e-2, 1e-3, 4), rank=2, update_proj_gap=2, scale=0.5,
        base_optimizer=m.scale_by_lion(), weight_decay=1e-2, mask={"w": True, "b": False,
                                                                    "big": False},
        weight_dimension_numbers=lambda p: {"w": m.contrib.GaLoreDimensionNumbers(1, 0),
                                            "b": None, "big": None})),
    ("scale_by_galore", lambda m: m.chain(m.contrib.scale_by_galore(
        rank=1, update_proj_gap=3, base_optimizer=m.sgd(1.0, momentum=0.9),
        weight_dimension_numbers={"w": m.contrib.GaLoreDimensionNumbers(), "b": None,
                                  "big": None}), m.scale(-1e-2))),
    ("cocob", lambda m: m.contrib.cocob()),
    ("cocob_options", lambda m: m.contrib.cocob(
        m.linear_schedule(1.0, 0.5, 4), alpha=10.0, eps=1e-6, weight_decay=1e-2,
        mask={"w": True, "b": False, "big": True})),
    ("dadapt_adamw", lambda m: m.contrib.dadapt_adamw()),
    ("dadapt_adamw_options", lambda m: m.contrib.dadapt_adamw(
        m.linear_schedule(1.0, 0.0, 5), betas=(0.8, 0.99), eps=1e-6, estim_lr0=1e-3,
        weight_decay=1e-2)),
    ("dog", lambda m: m.contrib.dog()),
    ("dog_distance", lambda m: m.contrib.dog(0.5, init_step=("distance", 1e-3), eps=1e-6,
                                             weight_decay=1e-2, mask={"w": True, "b": False,
                                                                      "big": True})),
    ("dog_learning_rate", lambda m: m.contrib.dog(init_step=("learning_rate", 1e-2))),
    ("dowg", lambda m: m.contrib.dowg()),
    ("dowg_options", lambda m: m.contrib.dowg(m.linear_schedule(1.0, 0.5, 4),
                                              init_estim_sq_dist=1e-2, eps=1e-6,
                                              weight_decay=1e-2)),
    ("mechanize", lambda m: m.contrib.mechanize(m.adam(1e-2))),
    ("sam", lambda m: m.contrib.sam(m.sgd(0.1), m.chain(m.contrib.normalize(), m.sgd(0.05)))),
    ("sam_options", lambda m: m.contrib.sam(m.adam(1e-2), m.sgd(0.05, momentum=0.9),
                                            sync_period=3, reset_state=False)),
    ("normalize", lambda m: m.chain(m.contrib.normalize(), m.scale(-0.1))),
    ("hutchinson_in_chain", lambda m: _bind_obj_fn(m, m.chain(
        m.contrib.hutchinson_estimator_diag_hessian(_raw_key(m, 3)), m.scale(-1e-3)))),
    ("sophia_options", lambda m: _bind_obj_fn(m, m.contrib.sophia(
        m.linear_schedule(1e-2, 1e-3, 4), b1=0.9, b2=0.9, eps=1e-6, weight_decay=0.0,
        gamma=0.05, clip_threshold=None, update_interval=2,
        hessian_diagonal_fn=m.contrib.hutchinson_estimator_diag_hessian(_raw_key(m, 1))))),
    # gamma and clip_threshold leave about half of the coordinates unclipped after step 0
    ("sophia_clipped", lambda m: _bind_obj_fn(m, m.contrib.sophia(
        1e-2, weight_decay_mask={"w": True, "b": False, "big": True}, gamma=1.0,
        clip_threshold=0.5, update_interval=3))),
]


# Cases whose optax reference runs under jax.jit (``jit_ref``): Muon's Newton-Schulz loop and
# the conds of GaLore and Sophia are traced and compiled anew at every eager call, and
# Hutchinson's estimator differentiates the objective twice op by op (seconds a test).
# Jitted, optax's results round apart from its eager ones by an ulp or so, which the
# comparison's tolerance covers. Not so sophia_options': its updates reach 7e3, and jitted,
# its small ones move by up to 2e-4 (1.5e-4 relative, past the tolerance): it stays eager.
JIT_REF = {"muon", "muon_options", "muon_adaptive", "muon_spectral", "muon_aol", "muon_schatten",
           "muon_dim_nums", "scale_by_muon", "galore", "galore_options", "scale_by_galore",
           "hutchinson_in_chain", "sophia_clipped"}


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_contrib(name, make):
    run_against_optax(make, jit_ref=name in JIT_REF)


def test_muon_jitted():
    run_against_optax(lambda m: m.contrib.muon(1e-2, weight_decay=0.1), jit=True, jit_ref=True)


def test_schedule_free_jitted():
    run_against_optax(lambda m: m.contrib.schedule_free_adamw(1e-2), jit=True)


# One jitted case per family of the new optimisers (keyword arguments such as ``value`` are
# traced arrays; ``obj_fn``, a function, is bound in ``_bind_obj_fn``).
JITTED = [
    ("galore", lambda m: m.contrib.galore(1e-2, rank=2, update_proj_gap=2, weight_decay=1e-2,
                                          weight_dimension_numbers={
                                              "w": m.contrib.GaLoreDimensionNumbers(),
                                              "b": None, "big": None}), None),
    ("acprop", lambda m: m.contrib.acprop(1e-2, weight_decay=1e-2), None),
    ("dadapt_adamw", lambda m: m.contrib.dadapt_adamw(), None),
    ("cocob", lambda m: m.contrib.cocob(), None),
    ("dog", lambda m: m.contrib.dog(init_step=("learning_rate", 1e-2)), None),
    ("mechanize", lambda m: m.contrib.mechanize(m.adam(1e-2)), None),
    ("momo", lambda m: m.contrib.momo(m.linear_schedule(1.0, 0.1, 4)), WITH_LOSS),
    ("momo_adam", lambda m: m.contrib.momo_adam(weight_decay=1e-2), WITH_LOSS),
    ("sophia", lambda m: _bind_obj_fn(m, m.contrib.sophia(1e-2, update_interval=2)), None),
    ("sam", lambda m: m.contrib.sam(m.sgd(0.1), m.chain(m.contrib.normalize(), m.sgd(0.05))),
     None),
]


@pytest.mark.parametrize("name,make,extra", JITTED, ids=[c[0] for c in JITTED])
def test_new_optimisers_jitted(name, make, extra):
    run_against_optax(make, jit=True, extra=extra, jit_ref=name in ("galore", "sophia"))


MOMO = [
    lambda m: m.contrib.momo(),
    lambda m: m.contrib.momo(m.linear_schedule(1.0, 0.1, 4), beta=0.5, lower_bound=0.5,
                             weight_decay=1e-2),
    lambda m: m.contrib.momo_adam(),
    lambda m: m.contrib.momo_adam(m.linear_schedule(1e-2, 1e-3, 4), b1=0.8, b2=0.99, eps=1e-6,
                                  lower_bound=0.5, weight_decay=1e-2),
    # value reaches MoMo through a chain, as optax's chain passes it
    lambda m: m.chain(m.clip_by_global_norm(10.0), m.contrib.momo(0.5)),
]


@pytest.mark.parametrize("make", MOMO)
def test_momo_reads_the_loss(make):
    run_against_optax(make, extra=WITH_LOSS)


def test_sophia_default_takes_obj_fn_through_update():
    run_against_optax(lambda m: m.contrib.sophia(1e-2), extra=WITH_OBJ_FN, jit_ref=True)


def test_sophia_verbose_prints_the_win_rate(capsys):
    opt = optim.contrib.sophia(1e-2, gamma=1.0, verbose=True, print_win_rate_every_n_steps=2)
    p = to_fg(PARAMS)
    s = opt.init(p)
    for _ in range(4):
        _, s = opt.update(p, s, p, obj_fn=_objective)
    assert capsys.readouterr().out.count("Sophia optimizer win rate: ") == 2


def test_mechanize_passes_extra_args_to_its_base_optimizer():
    run_against_optax(lambda m: m.contrib.mechanize(m.contrib.momo()), extra=WITH_LOSS)


def test_sam_opaque_mode_calls_grad_fn():
    def extra(step):
        return {"grad_fn": lambda params, i: {k: 0.5 * v + step + i for k, v in params.items()}}
    run_against_optax(lambda m: m.contrib.sam(m.sgd(0.1), m.chain(m.contrib.normalize(),
                                                                   m.sgd(0.05)),
                                              sync_period=3, opaque_mode=True), extra=extra)


@pytest.mark.parametrize("dim_nums", [None, (1, 0)])
def test_galore_projects_big_matrices(dim_nums):
    """GaLore projecting the 130x129 matrix too: by default, or all matrices transposed
    (projected from the right). LAPACK and XLA choose the signs of some of its singular
    vectors apart; Adam's steps in the projected space flip with them and the projection
    back undoes the flip, so updates and parameters agree, and the projectors agree up to
    the sign of each column."""
    def make(m):
        spec = None if dim_nums is None else m.contrib.GaLoreDimensionNumbers(*dim_nums)
        return m.contrib.galore(1e-2, rank=8, weight_dimension_numbers=spec)
    fg_opt, ox_opt = make(optim), make(optax)
    fg_p, ox_p = to_fg(PARAMS), to_jax(PARAMS)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    ox_update = jitted_update(ox_opt)
    for step in range(3):
        rng = np.random.default_rng(step)
        grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in PARAMS.items()}
        fg_u, fg_s = fg_opt.update(to_fg(grads), fg_s, fg_p)
        ox_u, ox_s = ox_update(to_jax(grads), ox_s, ox_p)
        assert_same(fg_u, ox_u, check_weak=False)
        fg_p, ox_p = optim.apply_updates(fg_p, fg_u), optax.apply_updates(ox_p, ox_u)
    fg_proj, ox_proj = np.asarray(fg_s[0].projector["big"]), np.asarray(ox_s[0].projector["big"])
    signs = np.sign(np.sum(fg_proj * ox_proj, axis=0))
    # NumPy's LAPACK and XLA compute singular vectors by different float32 algorithms: they
    # differ by about eps * |G| / (gap between singular values), up to 2.6e-6 here, above the
    # table's atol of 1e-6 (the updates, where the errors cancel, agree to the table)
    assert_same(fg_proj * signs, ox_proj, check_weak=False, atol=1e-5)


def _run_on(make, params, grads, jit=False, extra=None):
    """``run_against_optax`` on other parameters and gradients: ``make(optim)`` and
    ``make(optax)`` from ``params`` for each tree of ``grads`` (``extra(step)`` the keyword
    arguments); updates compared at every step, then the states, keys as their data."""
    fg_opt, ox_opt = make(optim), make(optax)
    fg_update = fungrad.jit(fg_opt.update) if jit else fg_opt.update
    fg_p, ox_p = to_fg(params), to_jax(params)
    fg_s, ox_s = fg_opt.init(fg_p), ox_opt.init(ox_p)
    for step, g in enumerate(grads):
        kw = {} if extra is None else extra(step)
        fg_u, fg_s = fg_update(to_fg(g), fg_s, fg_p, **to_fg(kw))
        ox_u, ox_s = ox_opt.update(to_jax(g), ox_s, ox_p, **to_jax(kw))
        assert_same(fg_u, ox_u, check_weak=False)
        fg_p, ox_p = optim.apply_updates(fg_p, fg_u), optax.apply_updates(ox_p, ox_u)
    assert_same(tree.leaves(optim.tree_utils.tree_unwrap_random_key_data(fg_s)),
                jax.tree_util.tree_leaves(optax.tree_utils.tree_unwrap_random_key_data(ox_s)),
                check_weak=False)


SMALL_PARAMS = {"w": np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
                "b": np.array([0.5, -0.25], np.float32)}


def _small_grads(step, batch=()):
    """Gradients for ``SMALL_PARAMS``, or per-example ones with ``batch=(n,)``."""
    rng = np.random.default_rng(step)
    return {k: rng.standard_normal((*batch, *v.shape)).astype(np.float32)
            for k, v in SMALL_PARAMS.items()}


# On PARAMS these cancel large float32 sums: MoMo's adaptive lower bound subtracts the
# averages of <g, x> and <m, x> (about 80 each over the 130x129 matrix) from each other, and
# Mechanic's h is an inner product with x0 - x for steps 1e-4 of x. Their rounding, summed in
# another order, moves the result by 1e-5 to 1e-4 relative (as between optax's own eager and
# jitted steps), so they run on small parameters, where the same code is well-conditioned.
SMALL_CASES = [
    ("momo_adapt_lower_bound", lambda m: m.contrib.momo(
        m.linear_schedule(1.0, 0.1, 4), beta=0.5, weight_decay=1e-2, adapt_lower_bound=True),
     WITH_LOSS),
    ("momo_adam_adapt_lower_bound", lambda m: m.contrib.momo_adam(
        b1=0.8, b2=0.99, weight_decay=1e-2, adapt_lower_bound=True), WITH_LOSS),
    ("mechanize_options", lambda m: m.contrib.mechanize(
        m.sgd(0.1, momentum=0.9), weight_decay=0.0, eps=1e-6, s_init=1e-4, num_betas=3), None),
]


@pytest.mark.parametrize("name,make,extra", SMALL_CASES, ids=[c[0] for c in SMALL_CASES])
@pytest.mark.parametrize("jit", [False, True])
def test_on_small_parameters(name, make, extra, jit):
    _run_on(make, SMALL_PARAMS, [_small_grads(step) for step in range(5)], jit=jit, extra=extra)


DPSGD = [
    lambda m: m.contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.5, seed=3),
    lambda m: m.contrib.dpsgd(m.linear_schedule(0.1, 0.01, 3), l2_norm_clip=0.5,
                              noise_multiplier=1.1, seed=7, momentum=0.9, nesterov=True),
    lambda m: m.contrib.differentially_private_aggregate(2.0, 0.3, key=11),
]


# optax's dpsgd passes its seed on under the deprecated name, and warns
@pytest.mark.filterwarnings('ignore:"seed" is deprecated:DeprecationWarning')
@pytest.mark.parametrize("make", DPSGD)
@pytest.mark.parametrize("jit", [False, True])
def test_dpsgd_noise_matches_optax_with_the_same_key(make, jit):
    _run_on(make, SMALL_PARAMS, [_small_grads(step, (4,)) for step in range(4)], jit=jit)


def test_differentially_private_aggregate_takes_a_typed_key():
    _run_on(lambda m: m.contrib.differentially_private_aggregate(
        1.0, 0.5, key=(random if m is optim else jax.random).key(5)), SMALL_PARAMS,
        [_small_grads(step, (4,)) for step in range(3)])


COMPLEX_PARAMS = {"z": (np.linspace(-1, 1, 6) + 1j * np.linspace(2, 0, 6)).astype(np.complex64),
                  "r": np.array([0.5, -0.25], np.float32)}


def _complex_grads(step):
    rng = np.random.default_rng(step)
    z = rng.standard_normal((2, 6)).astype(np.float32)
    return {"z": (z[0] + 1j * z[1]).astype(np.complex64),
            "r": rng.standard_normal(2).astype(np.float32)}


@pytest.mark.parametrize("jit", [False, True])
def test_split_real_and_imaginary_matches_optax(jit):
    _run_on(lambda m: m.contrib.split_real_and_imaginary(m.adam(1e-2)), COMPLEX_PARAMS,
            [_complex_grads(step) for step in range(4)], jit=jit)


# Values that improve, stall, then improve: the scale drops and cools down in five steps.
PLATEAU_VALUES = [3.0, 2.0, 2.0, 2.0, 1.0]


@pytest.mark.parametrize("kwargs", [
    dict(factor=0.5, patience=1),
    dict(),
    dict(factor=0.5, patience=1, cooldown=1, min_scale=0.3),
    dict(factor=0.5, patience=0, accumulation_size=2, rtol=0.0, atol=0.5),
])
def test_reduce_on_plateau(kwargs):
    # optax's jitted: its update is a cond (eagerly compiled anew at every step), and gives
    # the same bits jitted as eager
    run_against_optax(lambda m: m.contrib.reduce_on_plateau(**kwargs),
                      extra=lambda step: {"value": jnp.asarray(PLATEAU_VALUES[step])},
                      jit_ref=True)


def test_reduce_on_plateau_jitted():
    run_against_optax(lambda m: m.contrib.reduce_on_plateau(0.5, patience=1), jit=True,
                      extra=lambda step: {"value": jnp.asarray(PLATEAU_VALUES[step])},
                      jit_ref=True)


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
          "MuonDimensionNumbers", "MadgradState", "COCOBState", "DAdaptAdamWState",
          "DifferentiallyPrivateAggregateState", "DoGState", "DoWGState",
          "GaLoreDimensionNumbers", "GaLoreState", "HutchinsonState", "MechanicState",
          "MomoAdamState", "MomoState", "NormalizeState", "SAMState", "SophiaState",
          "SplitRealAndImaginaryState"]


@pytest.mark.parametrize("name", STATES)
def test_state_fields_match_optax(name):
    assert getattr(optim.contrib, name)._fields == getattr(optax.contrib, name)._fields


def test_contrib_names_exist_in_optax_and_stay_out_of_optim():
    for name in optim.contrib.__all__:
        assert hasattr(optax.contrib, name), name
        assert name not in optim.__all__, name


def test_contrib_has_every_name_of_optax_contrib():
    public = {n for n in dir(optax.contrib) if not n.startswith("_")}
    assert public == set(optim.contrib.__all__) == set(dir(optim.contrib))


def test_extra_args_transformations_are_typed_so():
    """Those whose ``update`` takes keyword arguments say so by their type, as optax's, so
    that ``chain`` and the wrappers pass them on."""
    from fungrad.optim._base import GradientTransformationExtraArgs
    makers = ["dadapt_adamw", "momo", "momo_adam", "prodigy", "reduce_on_plateau",
              "hutchinson_estimator_diag_hessian", "sophia"]
    for name in makers:
        assert isinstance(getattr(optim.contrib, name)(*(1e-2,) * (name == "sophia")),
                          GradientTransformationExtraArgs), name
    assert isinstance(optim.contrib.mechanize(optim.sgd(0.1)), GradientTransformationExtraArgs)
    assert isinstance(optim.contrib.sam(optim.sgd(0.1), optim.sgd(0.1)),
                      GradientTransformationExtraArgs)


def test_errors():
    with pytest.raises(ValueError, match="Factor"):
        optim.contrib.reduce_on_plateau(factor=1.5)
    with pytest.raises(ValueError, match="preset"):
        optim.contrib.muon(1e-2, ns_coeffs="nope")
    with pytest.raises(ValueError, match="requires the current value"):
        opt = optim.contrib.prodigy()
        opt.update(to_fg(PARAMS), opt.init(to_fg(PARAMS)))


def _init_and_update(opt, **kwargs):
    p = to_fg(PARAMS)
    return opt.update(p, opt.init(p), p, **kwargs)


@pytest.mark.parametrize("call,match", [
    (lambda: optim.contrib.galore(1e-2, rank=0), "scale_by_galore: rank must be positive"),
    (lambda: optim.contrib.scale_by_galore(rank=2.0), "scale_by_galore: rank must be an int"),
    (lambda: optim.contrib.dog(init_step=("nope", 1.0)), "dog: init_step must be a pair"),
    (lambda: optim.contrib.sam(optim.sgd(0.1), optim.sgd(0.1), sync_period=0),
     "sam: sync_period must be >= 1"),
    (lambda: optim.contrib.differentially_private_aggregate(1.0, 1.0, key=0, seed=0),
     "differentially_private_aggregate: only one of seed or key"),
    (lambda: _init_and_update(optim.contrib.momo(), value=None), "momo: the latest loss value"),
    (lambda: _init_and_update(optim.contrib.hutchinson_estimator_diag_hessian()),
     "hutchinson_estimator_diag_hessian: obj_fn must be provided"),
    (lambda: _init_and_update(optim.contrib.sam(optim.sgd(0.1), optim.sgd(0.1),
                                                opaque_mode=True)),
     "sam: grad_fn must be provided"),
    (lambda: _init_and_update(optim.contrib.galore(1e-2, weight_dimension_numbers={
        "w": optim.contrib.GaLoreDimensionNumbers(), "b": None,
        "big": optim.contrib.GaLoreDimensionNumbers(0, 0)})), "must be disjoint"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_missing_value_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="value"):
        _init_and_update(optim.contrib.momo())


def test_galore_weight_dimension_numbers_must_name_every_axis():
    p = {"x": jnp.ones((2, 3, 4))}
    opt = optim.contrib.scale_by_galore(
        weight_dimension_numbers={"x": optim.contrib.GaLoreDimensionNumbers(0, 1)})
    with pytest.raises(ValueError, match="scale_by_galore: weight_dimension_numbers must name "
                                         "every axis"):
        opt.init(p)


def test_dpsgd_seed_is_deprecated_and_a_missing_key_warns():
    with pytest.warns(DeprecationWarning, match="seed"):
        optim.contrib.differentially_private_aggregate(1.0, 1.0, seed=1)
    with pytest.warns(UserWarning, match="no key given"):
        optim.contrib.differentially_private_aggregate(1.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.contrib.dpsgd(0.1, 1.0, 1.0, seed=0)
