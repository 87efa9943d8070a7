"""fungrad.optim's extra arguments, line searches and L-BFGS against optax, step for step."""
import contextlib
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp_ref
import numpy as np
import optax
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, tree
from fungrad.optim import (GradientTransformation, GradientTransformationExtraArgs,
                           with_extra_args_support)
from harness import assert_same, to_fg, to_jax, x64
from test_optim import PARAMS, STEPS, _grads, run_against_optax
from test_optim_steps import _polyak_value


# --------------------------------------------------------------------------- extra arguments

def _recorders(seen):
    """Three stateless transformations that record in ``seen`` the keywords their ``update``
    receives: one takes any (``**kwargs``), one names ``value``, one takes none."""
    def any_keyword(updates, state, params=None, **kwargs):
        seen["any"] = sorted(kwargs)
        return updates, state

    def value_keyword(updates, state, params=None, *, value):
        seen["value"] = ["value"]
        return updates, state

    def no_keyword(updates, state, params=None):
        seen["none"] = []
        return updates, state
    return [GradientTransformation(optim.identity().init, update)
            for update in (any_keyword, value_keyword, no_keyword)]


def test_chain_passes_extra_args_to_the_transformations_that_take_them():
    seen = {}
    any_keyword, value_keyword, no_keyword = _recorders(seen)
    opt = optim.chain(any_keyword, value_keyword, no_keyword)
    assert isinstance(opt, GradientTransformationExtraArgs)
    opt.update(1.0, opt.init(1.0), 1.0, value=2.0, grad=3.0)
    assert seen == {"any": ["grad", "value"], "value": ["value"], "none": []}
    # without extra arguments, as any transformation; a missing one is named
    optim.chain(any_keyword).update(1.0, (optim.EmptyState(),))
    assert seen["any"] == []
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'value'"):
        opt.update(1.0, opt.init(1.0))


def test_with_extra_args_support():
    seen = {}
    value_keyword = _recorders(seen)[1]
    wrapped = with_extra_args_support(value_keyword)
    assert isinstance(wrapped, GradientTransformationExtraArgs)
    assert wrapped.init is value_keyword.init
    assert with_extra_args_support(wrapped) is wrapped
    wrapped.update(1.0, wrapped.init(1.0), value=1.0, value_fn=None, x=2.0)
    assert seen == {"value": ["value"]}
    plain = with_extra_args_support(optim.scale(2.0))
    assert float(plain.update(1.0, plain.init(1.0), value=1.0)[0]) == 2.0


# chains whose parts take the objective's value (polyak) and parts that do not (the others)
EXTRA_ARGS_CASES = [
    ("sgd_polyak", lambda m: m.chain(m.sgd(0.5), m.scale_by_polyak(max_learning_rate=0.5))),
    ("adam_polyak_clip", lambda m: m.chain(m.clip_by_global_norm(1.0), m.scale_by_adam(),
                                           m.scale_by_polyak(f_min=-1.0), m.scale(-1.0))),
    ("nested", lambda m: m.chain(m.chain(m.scale(0.5), m.polyak_sgd()), m.trace(0.9))),
]


@pytest.mark.parametrize("name,make", EXTRA_ARGS_CASES, ids=[c[0] for c in EXTRA_ARGS_CASES])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_chain_with_extra_args_matches_optax(name, make, jit):
    run_against_optax(make, jit=jit, extra=_polyak_value)


def test_chain_still_diagnoses_mismatched_trees_with_extra_args():
    opt = optim.chain(optim.scale_by_polyak(), optim.adam(0.1))
    state = opt.init(to_fg(PARAMS))
    grads = {k: v for k, v in to_fg(_grads(0)).items() if k != "b"}
    with pytest.raises(optim.UpdateStructureError, match="fungrad.optim.scale_by_adam"):
        opt.update(grads, state, to_fg(PARAMS), value=1.0)


# --------------------------------------------------------------------------- line searches

def _loss(m):
    """A smooth objective of PARAMS' tree, not a quadratic, written with ``m`` (fungrad.numpy
    or jax.numpy), with data ``x``."""
    def loss(params, x):
        return sum(m.sum(m.log1p((p - x) ** 2) + 0.05 * p ** 2) for p in tree.leaves(params))
    return loss


def _data(step: int, dtype: type = np.float32) -> np.ndarray:
    return dtype(0.5 + 0.25 * step)


def _params(dtype: type) -> dict:
    return {k: v.astype(dtype) for k, v in PARAMS.items()}


class _Lib(NamedTuple):
    """What a test loop takes from fungrad or from jax and optax, and how it runs an
    optimiser's ``update`` and ``value_and_grad_from_state``: fungrad's eagerly, optax's
    jitted (run eagerly, JAX would compile the line search's loop, and the ``cond`` of
    ``value_and_grad_from_state``, which closes over the state's value and gradient, anew
    at every step; they are compiled either way).

    ``init`` gives an optimiser's initial state, optax's with strong types: its own holds
    weakly typed scalars (the line search's info) and its later states strongly typed ones,
    so its jitted update would compile twice (a second or more for a line search). With
    strong types it takes the same steps bit for bit, and they are what fungrad's steps from
    optax's states get (to_fg)."""
    numpy: Any
    asarray: Callable
    init: Callable
    value_and_grad: Callable
    value_and_grad_from_state: Callable
    apply_updates: Callable
    run: Callable


FG = _Lib(jnp, to_fg, lambda opt, params: opt.init(params), fungrad.value_and_grad,
          optim.value_and_grad_from_state, optim.apply_updates, lambda update: update)
OX = _Lib(jnp_ref, to_jax, lambda opt, params: to_jax(opt.init(params)), jax.value_and_grad,
          lambda fn: jax.jit(optax.value_and_grad_from_state(fn)), optax.apply_updates,
          lambda update: jax.jit(update, static_argnames="value_fn"))


def _objective_step(lib: _Lib, opt, from_state: bool):
    """One step of ``opt`` on ``_loss`` with data ``x``: the update gets the gradient and the
    keywords ``value``, ``grad``, ``value_fn`` and ``x`` (``value_fn``'s data)."""
    loss = _loss(lib.numpy)
    value_and_grad = lib.value_and_grad_from_state(loss) if from_state else \
        (lambda params, x, state: lib.value_and_grad(loss)(params, x))

    update = lib.run(opt.update)

    def step(params, state, x):
        value, grad = value_and_grad(params, x, state=state)
        return update(grad, state, params, value=value, grad=grad, value_fn=loss, x=x)
    return step


def _from_optax(fg_state, ox_state):
    """optax's state ``ox_state`` as fungrad's state of the same optimiser."""
    return tree.unflatten(tree.structure(fg_state), to_fg(jax.tree_util.tree_leaves(ox_state)))


@functools.cache
def _optax_with_objective(make, from_state, steps, dtype):
    """optax's side of ``run_with_objective_against_optax``, which does not depend on
    fungrad's: ``make(optax)``'s params, state and data before each step, the step's updates
    and new state, and the last params. Cached, so that the tests that run fungrad's side
    of the same case eagerly and under ``fungrad.jit`` compile and run optax's once."""
    ox_opt = make(optax)
    ox_step = _objective_step(OX, ox_opt, from_state)
    ox_p = to_jax(_params(dtype))
    ox_s = OX.init(ox_opt, ox_p)
    steps_taken = []
    for step in range(steps):
        x = _data(0 if from_state else step, dtype)
        ox_u, new_s = ox_step(ox_p, ox_s, to_jax(x))
        steps_taken.append((ox_p, ox_s, x, ox_u, new_s))
        ox_p, ox_s = optax.apply_updates(ox_p, ox_u), new_s
    return steps_taken, ox_p


def run_with_objective_against_optax(make, jit=False, from_state=False, steps=STEPS,
                                     dtype=np.float32):
    """``make(optim)`` and ``make(optax)`` minimising ``_loss`` from PARAMS for ``steps``
    steps, as optax's docs do; updates and states compared at every step. With
    ``from_state`` the data stay fixed and ``value_and_grad_from_state`` reuses the value
    and gradient the line search computed. ``jit`` jits fungrad's whole step. Returns
    fungrad's last state.

    Each of fungrad's steps starts from optax's params and state: a step is compared on the
    same inputs, as ``run_against_optax`` compares one on the same gradients. Run on their
    own, the two would drift apart by more than the tolerance: a line search's step size
    multiplies the last-bit differences of the objective's gradient (XLA fuses its
    operations, NumPy rounds them one by one), which are large relative to the components
    where they cancel (the gradient changes sign inside the ``big`` leaf), and L-BFGS's
    memory keeps differences of parameters and gradients and the inverses of their inner
    products, sums of 16770 products that NumPy and XLA add in other orders.

    ``dtype=np.float64`` runs both sides in float64 (64-bit dtypes on in both libraries),
    for the cases whose line search multiplies those differences beyond float32's
    tolerance on some processors."""
    with x64() if dtype == np.float64 else contextlib.nullcontext():
        fg_opt = make(optim)
        fg_step = _objective_step(FG, fg_opt, from_state)
        fg_step = fungrad.jit(fg_step) if jit else fg_step
        ox_steps, ox_p = _optax_with_objective(make, from_state, steps, dtype)
        fg_s = fg_opt.init(to_fg(_params(dtype)))
        for ox_p_before, ox_s_before, x, ox_u, ox_s in ox_steps:
            fg_p, fg_s = to_fg(ox_p_before), _from_optax(fg_s, ox_s_before)
            fg_u, fg_s = fg_step(fg_p, fg_s, to_fg(x))
            assert_same(fg_u, ox_u, check_weak=False)
            assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)
            fg_p = optim.apply_updates(fg_p, fg_u)
        assert_same(fg_p, ox_p, check_weak=False)
        return fg_s


LINESEARCH_CASES = [
    ("backtracking", lambda m: m.chain(m.sgd(1.0), m.scale_by_backtracking_linesearch(15))),
    ("backtracking_options", lambda m: m.chain(m.sgd(2.0), m.scale_by_backtracking_linesearch(
        20, slope_rtol=0.3, decrease_factor=0.5, increase_factor=float("inf"),
        max_learning_rate=0.8, atol=1e-3, rtol=1e-4))),
    ("backtracking_few_steps", lambda m: m.chain(m.sgd(5.0), m.scale_by_backtracking_linesearch(
        2, increase_factor=1.0))),
    ("adam_backtracking", lambda m: m.chain(m.adam(0.5),
                                            m.scale_by_backtracking_linesearch(10))),
    ("zoom", lambda m: m.chain(m.sgd(1.0), m.scale_by_zoom_linesearch(15))),
    ("zoom_one_max", lambda m: m.chain(m.sgd(0.1), m.scale_by_zoom_linesearch(
        15, max_learning_rate=2.0, initial_guess_strategy="one"))),
    ("zoom_armijo_only", lambda m: m.chain(m.sgd(5.0), m.scale_by_zoom_linesearch(
        30, tol=1e-6, increase_factor=3.0, slope_rtol=1e-3, curv_rtol=0.1,
        approx_dec_rtol=None))),
    ("zoom_no_curvature", lambda m: m.chain(m.sgd(3.0), m.scale_by_zoom_linesearch(
        15, curv_rtol=float("inf")))),
    ("zoom_few_steps", lambda m: m.chain(m.sgd(10.0), m.scale_by_zoom_linesearch(
        3, curv_rtol=0.01, stepsize_precision=1e-2))),
]
# From a step of 10, three zoom steps interpolate step sizes from values that differ
# between NumPy and XLA in their last bits, and multiply those differences by about 300: in
# float32, 1.7e-5 relative on one Intel Xeon, beyond float32's tolerance of 1e-5. In float64
# the same factor leaves them far inside float64's tolerance.
LINESEARCH_DTYPES = {"zoom_few_steps": np.float64}


@pytest.mark.parametrize("name,make", LINESEARCH_CASES, ids=[c[0] for c in LINESEARCH_CASES])
def test_linesearch_matches_optax(name, make):
    run_with_objective_against_optax(make, dtype=LINESEARCH_DTYPES.get(name, np.float32))


@pytest.mark.parametrize("store_grad", [False, True], ids=["value", "value_and_grad"])
def test_backtracking_state_and_info(store_grad):
    state = run_with_objective_against_optax(
        lambda m: m.chain(m.sgd(4.0), m.scale_by_backtracking_linesearch(
            15, store_grad=store_grad)), from_state=store_grad)[1]
    assert isinstance(state, optim.ScaleByBacktrackingLinesearchState)
    assert (state.grad is None) != store_grad
    assert int(state.info.num_linesearch_steps) > 1 and float(state.info.decrease_error) == 0.0


def test_zoom_state_and_info():
    # LINESEARCH_CASES' "zoom": optax's run is the one the jitted test below compares to
    state = run_with_objective_against_optax(dict(LINESEARCH_CASES)["zoom"], from_state=True)[1]
    assert isinstance(state, optim.ScaleByZoomLinesearchState)
    assert isinstance(state.info, optim.ZoomLinesearchInfo)
    assert float(state.info.decrease_error) == 0.0 and float(state.info.curvature_error) == 0.0


@pytest.mark.parametrize("name", ["backtracking_options", "zoom", "zoom_few_steps"])
def test_linesearch_matches_optax_under_jit(name):
    run_with_objective_against_optax(dict(LINESEARCH_CASES)[name], jit=True,
                                     dtype=LINESEARCH_DTYPES.get(name, np.float32))


@pytest.mark.parametrize("make", [
    lambda m: m.chain(m.sgd(1.0), m.scale_by_backtracking_linesearch(15, store_grad=True)),
    dict(LINESEARCH_CASES)["zoom"]], ids=["backtracking", "zoom"])
def test_linesearch_from_state_matches_optax_under_jit(make):
    run_with_objective_against_optax(make, jit=True, from_state=True)


def _docs_step(lib: _Lib, opt, fn):
    """The step of optax's docs' loop: ``opt`` on ``fn``, reusing the value and gradient
    the line search computed."""
    value_and_grad, update = lib.value_and_grad_from_state(fn), lib.run(opt.update)

    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        return update(grad, state, params, value=value, grad=grad, value_fn=fn)
    return step


def _solve(lib: _Lib, opt, fn, x0, steps):
    """``steps`` steps of the docs' loop from ``x0``: the iterates and the states."""
    params, step, iterates, states = lib.asarray(x0), _docs_step(lib, opt, fn), [], []
    state = lib.init(opt, params)
    for _ in range(steps):
        updates, state = step(params, state)
        params = lib.apply_updates(params, updates)
        iterates.append(params)
        states.append(state)
    return iterates, states


@pytest.mark.parametrize("name,fn", [
    # NaN beyond 1, so that large steps fail
    ("nan_outside", lambda m: lambda x: m.sum(m.sqrt(1.0 - x ** 2) - x)),
    # along an ascent direction (sgd(-1)): no step decreases it
    ("ascent", lambda m: lambda x: m.sum(x ** 2))])
@pytest.mark.parametrize("linesearch", [
    lambda m: m.scale_by_backtracking_linesearch(10, store_grad=True),
    lambda m: m.scale_by_zoom_linesearch(10)], ids=["backtracking", "zoom"])
def test_linesearch_failures_match_optax(name, fn, linesearch):
    """Where every step gives NaN, or none decreases the objective, the searches stop as
    optax's (at a step of 0, or at their last try)."""
    x0 = np.array([0.3, -0.6], np.float32)
    learning_rate = -1.0 if name == "ascent" else 30.0
    fg = _solve(FG, optim.chain(optim.sgd(learning_rate), linesearch(optim)), fn(jnp), x0, 3)
    ox = _solve(OX, optax.chain(optax.sgd(learning_rate), linesearch(optax)), fn(jnp_ref), x0,
                3)
    assert_same(fg[0], ox[0], check_weak=False)
    assert_same(tree.leaves(fg[1]), jax.tree_util.tree_leaves(ox[1]), check_weak=False)


def test_linesearch_verbose_prints_a_diagnosis(capsys):
    def fn(x):
        return jnp.sum(x ** 2)
    params = jnp.array([0.3, -0.6])
    for linesearch, expected in [
            (optim.scale_by_zoom_linesearch(3, verbose=True),
             [optim.linesearch.FLAG_NO_STEPSIZE_FOUND,
              optim.linesearch.FLAG_NOT_A_DESCENT_DIRECTION]),
            (optim.scale_by_backtracking_linesearch(3, verbose=True),
             ["failed to find a stepsize ensuring sufficient decrease"])]:
        value, grad = fungrad.value_and_grad(fn)(params)
        # along the gradient: an ascent direction
        linesearch.update(grad, linesearch.init(params), params, value=value, grad=grad,
                          value_fn=fn)
        out = capsys.readouterr().out
        assert all(line in out for line in expected), out


def test_value_and_grad_from_state():
    def fn(x, scale):
        return scale * jnp.sum(x ** 2)
    opt = optim.chain(optim.sgd(1.0), optim.scale_by_zoom_linesearch(10))
    params, value_and_grad = jnp.array([1.0, 2.0]), optim.value_and_grad_from_state(fn)
    state = opt.init(params)
    # no value yet (inf): computed, the extra arguments passed on to fn
    assert_same(value_and_grad(params, 3.0, state=state), fungrad.value_and_grad(fn)(params, 3.0))
    value, grad = fungrad.value_and_grad(fn)(params, 3.0)
    updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fn,
                                scale=3.0)
    # afterwards: the value and gradient the line search computed at the new point
    assert_same(value_and_grad(params, 3.0, state=state), (state[1].value, state[1].grad))
    with pytest.raises(ValueError, match="value_and_grad_from_state: no `value` or no `grad`"):
        backtracking = optim.scale_by_backtracking_linesearch(10)  # keeps no gradient
        value_and_grad(params, 3.0, state=backtracking.init(params))


# --------------------------------------------------------------------------- L-BFGS

LBFGS_CASES = [
    ("lbfgs", lambda m: m.lbfgs()),
    ("lbfgs_memory_backtracking", lambda m: m.lbfgs(
        memory_size=2, linesearch=m.scale_by_backtracking_linesearch(20, store_grad=True))),
    ("lbfgs_no_linesearch", lambda m: m.lbfgs(
        learning_rate=m.linear_schedule(0.1, 0.01, 4), scale_init_precond=False,
        linesearch=None)),
    ("scale_by_lbfgs_memory_1", lambda m: m.chain(m.scale_by_lbfgs(memory_size=1),
                                                  m.scale(-0.5))),
    ("scale_by_lbfgs_zoom", lambda m: m.chain(
        m.scale_by_lbfgs(memory_size=3, scale_init_precond=False), m.scale(-1.0),
        m.scale_by_zoom_linesearch(10, initial_guess_strategy="one"))),
]
LINESEARCHING = ("lbfgs", "lbfgs_memory_backtracking", "scale_by_lbfgs_zoom")


@pytest.mark.parametrize("name,make", LBFGS_CASES, ids=[c[0] for c in LBFGS_CASES])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_lbfgs_matches_optax(name, make, jit):
    run_with_objective_against_optax(make, jit=jit, from_state=name in LINESEARCHING)


def _rosenbrock(m):
    return lambda x: m.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


QUADRATIC_A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]], np.float32)
QUADRATIC_B = np.array([1.0, -2.0, 0.5], np.float32)


def _quadratic(m):
    return lambda x: 0.5 * m.dot(x, m.dot(QUADRATIC_A, x)) - m.dot(QUADRATIC_B, x)


def test_lbfgs_minimises_a_quadratic_as_optax():
    """The iterates agree throughout, the states for the first five steps: from the sixth
    the parameters have converged, and the memory's differences of parameters and gradients,
    and the inverse of their inner product, are rounding noise."""
    x0 = np.ones(3, np.float32)
    fg, fg_states = _solve(FG, optim.lbfgs(), _quadratic(jnp), x0, 10)
    ox, ox_states = _solve(OX, optax.lbfgs(), _quadratic(jnp_ref), x0, 10)
    for fg_x, ox_x in zip(fg, ox):
        assert_same(fg_x, ox_x, check_weak=False)
    for fg_s, ox_s in zip(fg_states[:5], ox_states[:5]):
        assert_same(tree.leaves(fg_s), jax.tree_util.tree_leaves(ox_s), check_weak=False)
    solution = np.linalg.solve(QUADRATIC_A.astype(np.float64), QUADRATIC_B)
    assert_same(fg[-1], solution.astype(np.float32))


def _rosenbrock_grad_terms(x):
    """The size of the terms Rosenbrock's gradient at ``x`` sums: in the valley they cancel
    (``200 * (x1 - x0 ** 2)``), and its components are a few ulps of them at best."""
    square = max(abs(x[1]), x[0] ** 2)
    return 200 * square * (1 + 2 * abs(x[0])) + 2 * (1 + abs(x[0]))


def test_lbfgs_minimises_rosenbrock_as_optax():
    """The docs' loop on Rosenbrock's function from (-1.2, 1): each step from optax's
    iterate and state matches optax's step, and run on its own fungrad's L-BFGS follows
    optax's for the first seven iterates and reaches the minimum (1, 1) as optax's does.

    The gradient at the new point, which the line search keeps, is compared to within two
    ulps of the terms it sums (each side rounds ``x0 ** 2`` and the products once): XLA,
    which fuses the objective's operations, rounds them apart from NumPy. On their own, the
    two runs amplify such differences where the valley turns (the eighth step), part there
    and meet again at the minimum.
    """
    x0, steps = np.array([-1.2, 1.0], np.float32), 40
    fg_opt, ox_opt = optim.lbfgs(), optax.lbfgs()
    fg_fn, ox_fn = _rosenbrock(jnp), _rosenbrock(jnp_ref)
    fg_step, ox_step = _docs_step(FG, fg_opt, fg_fn), _docs_step(OX, ox_opt, ox_fn)
    ox_p = to_jax(x0)
    ox_s = OX.init(ox_opt, ox_p)
    fg_s = fg_opt.init(to_fg(x0))
    ox = []  # optax's iterates: this loop runs optax's L-BFGS on its own, as _solve would
    for _ in range(steps):
        fg_u, fg_s = fg_step(to_fg(ox_p), _from_optax(fg_s, ox_s))
        ox_u, ox_s = ox_step(ox_p, ox_s)
        assert_same(fg_u, ox_u, check_weak=False)
        assert_same(tree.leaves(fg_s[0]), jax.tree_util.tree_leaves(ox_s[0]), check_weak=False)
        assert_same(fg_s[2]._replace(grad=None), ox_s[2]._replace(grad=None), check_weak=False)
        ox_p = optax.apply_updates(ox_p, ox_u)
        ox.append(ox_p)
        terms = _rosenbrock_grad_terms(np.asarray(ox_p, np.float64))
        assert_same(fg_s[2].grad, ox_s[2].grad, check_weak=False, rtol=0.0,
                    atol=2 * np.finfo(np.float32).eps * terms)
    fg = _solve(FG, fg_opt, fg_fn, x0, steps)[0]
    for fg_x, ox_x in zip(fg[:7], ox[:7]):
        assert_same(fg_x, ox_x, check_weak=False)
    assert_same(fg[-1], np.ones(2, np.float32))
    assert_same(ox[-1], np.ones(2, np.float32))


def test_lbfgs_step_under_jit():
    fn = _rosenbrock(jnp)
    opt, value_and_grad = optim.lbfgs(), optim.value_and_grad_from_state(fn)

    @fungrad.jit
    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fn)
        return optim.apply_updates(params, updates), state

    params = jnp.array([-1.2, 1.0])
    state = opt.init(params)
    for _ in range(40):
        params, state = step(params, state)
    assert_same(params, np.ones(2, np.float32))
    # twice, as jax.jit with optax's: the info of init's state is weakly typed, the next not
    assert step._cache_size() == 2


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("name,opt", [
    ("scale_by_backtracking_linesearch", optim.scale_by_backtracking_linesearch(5)),
    ("scale_by_zoom_linesearch", optim.scale_by_zoom_linesearch(5)),
    ("scale_by_zoom_linesearch", optim.lbfgs())], ids=["backtracking", "zoom", "lbfgs"])
def test_linesearch_errors_name_the_function_and_the_argument(name, opt):
    params = jnp.array([1.0, 2.0])
    state = opt.init(params)
    fn = jnp.sum
    with pytest.raises(TypeError, match=rf"{name}.update: missing the keyword argument\(s\) "
                                        r"`value_fn`"):
        opt.update(params, state, params, value=3.0, grad=params)
    with pytest.raises(TypeError, match=rf"{name}.update: missing .* `value`, `grad`"):
        opt.update(params, state, params, value_fn=fn)
    with pytest.raises(TypeError, match=f"{name}.update: `value_fn` must be the objective"):
        opt.update(params, state, params, value=3.0, grad=params, value_fn=1.0)
    with pytest.raises(TypeError, match=r"not consumed by `value_fn`: \['data'\]"):
        opt.update(params, state, params, value=3.0, grad=params, value_fn=fn, data=1.0)


def test_linesearch_and_lbfgs_argument_errors():
    params = jnp.array([1.0, 2.0])
    for linesearch in (optim.scale_by_backtracking_linesearch(5),
                       optim.scale_by_zoom_linesearch(5)):
        with pytest.raises(ValueError, match="linesearch.update: .* not passing `params`"):
            linesearch.update(params, linesearch.init(params), value=3.0, grad=params,
                              value_fn=jnp.sum)
    with pytest.raises(ValueError, match="scale_by_lbfgs: .* not passing `params`"):
        optim.scale_by_lbfgs().update(params, optim.scale_by_lbfgs().init(params))
    with pytest.raises(ValueError, match="memory_size must be >= 1"):
        optim.scale_by_lbfgs(memory_size=0)
    with pytest.raises(ValueError, match="Unknown initial guess strategy: twice"):
        optim.scale_by_zoom_linesearch(5, initial_guess_strategy="twice")


def test_named_chain_passes_extra_args_like_optax():
    make = lambda m: m.named_chain(("sgd", m.sgd(1.0)),  # noqa: E731
                                   ("polyak", m.scale_by_polyak(max_learning_rate=0.5)))
    run_against_optax(make, extra=lambda step: {"value": np.float32(3.0 - 0.5 * step)})
    assert isinstance(make(optim), GradientTransformationExtraArgs)
