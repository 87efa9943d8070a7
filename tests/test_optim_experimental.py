"""``fungrad.optim.experimental.aggregating`` against ``optax.experimental.aggregating`` on
the same inputs: the exported names, signatures and state classes; every function's results;
training step for step (updates, states, parameters, the tracked mean and variance), with
per-example gradients from ``fungrad.vmap(fungrad.grad(...))`` against
``jax.vmap(jax.grad(...))``, eagerly and under ``fungrad.jit``; statistics against NumPy's;
and errors for bad arguments."""
import functools
import inspect
import types
import typing

import jax
import jax.numpy as jnp_ref
import numpy as np
import optax
import optax.experimental
import pytest
from optax.experimental import aggregating as ox_agg

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, tree
from fungrad.optim import experimental
from fungrad.optim.experimental import aggregating
from harness import assert_same, compare, to_fg, to_jax, tol, x64

RNG = np.random.default_rng(0)
DIM, CLASSES = 3, 2


def _normal(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _params(dtype=np.float32):
    return {"w": _normal(DIM, CLASSES, dtype=dtype), "b": _normal(CLASSES, dtype=dtype)}


def _per_example(batch_shape, dtype=np.float32):
    """A tree of per-example updates: batch axes in front of the parameters' shapes."""
    return {"w": _normal(*batch_shape, DIM, CLASSES, dtype=dtype),
            "b": _normal(*batch_shape, CLASSES, dtype=dtype)}


def _assert_close(actual, expected):
    """``actual`` (fungrad's) equals ``expected`` (NumPy's) within the harness' tolerance
    for ``actual``'s dtype."""
    actual = np.asarray(actual)
    rtol, atol = tol(actual.dtype)
    np.testing.assert_allclose(actual, np.asarray(expected, actual.dtype), rtol=rtol, atol=atol)


def _skeleton(state):
    """The nesting of a state: namedtuple class names, tuples and dict keys down to leaves."""
    if isinstance(state, tuple):
        return type(state).__name__, tuple(_skeleton(s) for s in state)
    if isinstance(state, dict):
        return {k: _skeleton(v) for k, v in state.items()}
    return "leaf"


def _assert_same_state(fg_state, ox_state):
    assert _skeleton(fg_state) == _skeleton(ox_state)
    assert_same(tree.leaves(fg_state), jax.tree_util.tree_leaves(ox_state))


# --------------------------------------------------------------------------- the surface

def _optax_api():
    """The public names of optax's module, less the modules and typing helpers it imports."""
    return {n for n, v in vars(ox_agg).items()
            if not n.startswith("_") and not isinstance(v, types.ModuleType)
            and v is not getattr(typing, n, None)}


def test_modules_are_exported():
    assert optim.experimental is experimental
    assert experimental.aggregating is aggregating
    assert "experimental" in optim.__all__ and experimental.__all__ == ["aggregating"]
    assert set(experimental.__all__) == {n for n in dir(optax.experimental)
                                         if not n.startswith("_")}


def test_names_match_optax():
    assert set(aggregating.__all__) == _optax_api()
    for name in aggregating.__all__:
        value = getattr(aggregating, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, f"aggregating.{name} has no docstring"


FUNCTIONS = [n for n in sorted(_optax_api()) if inspect.isfunction(getattr(ox_agg, n))]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_signatures_match_optax(name):
    """Parameter names, kinds and defaults as optax's."""
    fg = inspect.signature(getattr(aggregating, name)).parameters
    ox = inspect.signature(getattr(ox_agg, name)).parameters
    assert list(fg) == list(ox)
    for p in ox:
        assert fg[p].kind == ox[p].kind, p
        assert fg[p].default == ox[p].default, p


STATES = ["AccumulateAvgUpdatesState", "PerElementMeanAndSumSqDiffGradsState",
          "PerElementMeanAndVarianceEMAState"]


@pytest.mark.parametrize("name", STATES)
def test_state_classes_match_optax(name):
    fg, ox = getattr(aggregating, name), getattr(ox_agg, name)
    assert fg._fields == ox._fields
    assert issubclass(fg, tuple) and fg.__name__ == ox.__name__


def test_aggregator_is_a_transformation_with_extra_args():
    assert issubclass(aggregating.Aggregator, optim.GradientTransformationExtraArgs)
    agg = aggregating.Aggregator(optim.init_empty_state, lambda u, s, p=None: (u, s))
    assert agg.init is optim.init_empty_state and agg == (agg.init, agg.update)


# which transformation class each constructor returns, as in optax
CONSTRUCTED = [
    ("average_per_element_updates", lambda m, o: m.average_per_element_updates()),
    ("accumulate_avg_updates_1", lambda m, o: m.accumulate_avg_updates(1)),
    ("accumulate_avg_updates_3", lambda m, o: m.accumulate_avg_updates(3)),
    ("average_incrementally_none", lambda m, o: m.average_incrementally_updates(None, 2)),
    ("average_incrementally_axis", lambda m, o: m.average_incrementally_updates(0, 2)),
    ("mean_sum_sq_diff_1", lambda m, o: m.get_per_element_mean_and_sum_sq_diff_grads()),
    ("mean_sum_sq_diff_2", lambda m, o: m.get_per_element_mean_and_sum_sq_diff_grads(0, 2)),
    ("track_ema", lambda m, o: m.track_per_element_mean_and_variance_with_ema()),
    ("add_mean_variance", lambda m, o: m.add_mean_variance_to_opt(o.sgd(0.1))),
    ("process_aggregator", lambda m, o: m.process(o.identity(), m.average_per_element_updates(),
                                                  o.sgd(0.1))),
    ("process_transformation", lambda m, o: m.process(o.identity(),
                                                      m.accumulate_avg_updates(2), o.sgd(0.1))),
]
KINDS = ("Aggregator", "GradientTransformationExtraArgs", "GradientTransformation")


def _kind(t, agg_module, base_module):
    classes = (agg_module.Aggregator, base_module.GradientTransformationExtraArgs,
               base_module.GradientTransformation)
    return next(k for k, c in zip(KINDS, classes) if isinstance(t, c))


@pytest.mark.parametrize("name, make", CONSTRUCTED, ids=[c[0] for c in CONSTRUCTED])
def test_constructors_return_optax_classes(name, make):
    assert _kind(make(aggregating, optim), aggregating, optim) == \
        _kind(make(ox_agg, optax), ox_agg, optax)


# --------------------------------------------------------------------------- functions

# (per_elt_axis, the leaves' shapes): batch axes in front, behind, both, or last
AVERAGED = [(0, ((4, 3, 2), (4, 2))), (1, ((5, 3, 2), (5, 3, 4))), ((0, 1), ((2, 3, 2), (2, 3))),
            ([0, 1], ((2, 3, 3, 2), (2, 3, 2))), (-1, ((3, 4), (2, 4)))]


@pytest.mark.parametrize("axis, shapes", AVERAGED)
def test_average_per_element_updates(axis, shapes):
    updates = {"w": _normal(*shapes[0]), "b": _normal(*shapes[1])}

    def run(m):
        agg = m.average_per_element_updates(axis)
        return lambda u: agg.update(u, agg.init(None))
    compare(run(aggregating), run(ox_agg), updates, jit_ref=True)


@pytest.mark.parametrize("axis, expected", [(0, 6), (1, 2), ([0, 1], 12), ((1, 0), 12),
                                            (-1, None)])
def test_get_batch_size_from_per_elt_updates(axis, expected):
    updates = {"w": _normal(6, 2, 3), "b": _normal(6, 2, 3)}
    fg = aggregating.get_batch_size_from_per_elt_updates(to_fg(updates), axis)
    ox = ox_agg.get_batch_size_from_per_elt_updates(to_jax(updates), axis)
    assert fg == ox and type(fg) is int
    assert expected is None or fg == expected


def _as_traced(out):
    """``out`` with its Python numbers as the arrays ``jit`` returns for them (an eager
    update may return a Python int, ``sample_size``, where a jitted one gives an array)."""
    return tree.map(lambda v: jnp.asarray(v) if isinstance(v, (int, float)) else v, out)


def _run_updates(make, inputs, kwargs=None, params=None):
    """``make(aggregating, optim)`` and ``make(ox_agg, optax)`` on the same sequence of
    updates (``kwargs(step)``: keyword arguments of the step's update): updates and states
    compared at every step, fungrad's update eagerly and under ``fungrad.jit`` against
    optax's jitted (one compilation). Returns fungrad's eager updates."""
    fg_tx, ox_tx = make(aggregating, optim), make(ox_agg, optax)
    ox_update = jax.jit(ox_tx.update)
    params = _params() if params is None else params
    kwargs = kwargs or (lambda step: {})
    ox_state = ox_tx.init(to_jax(params))
    reference = []
    for step, u in enumerate(inputs):
        ox_u, ox_state = ox_update(to_jax(u), ox_state, to_jax(params), **to_jax(kwargs(step)))
        reference.append((ox_u, ox_state))
    outs = {}
    for jit in (False, True):
        fg_update = fungrad.jit(fg_tx.update) if jit else fg_tx.update
        fg_state = fg_tx.init(to_fg(params))
        _assert_same_state(fg_state, ox_tx.init(to_jax(params)))
        outs[jit] = []
        for step, (u, (ox_u, ox_state)) in enumerate(zip(inputs, reference)):
            fg_u, fg_state = fg_update(to_fg(u), fg_state, to_fg(params),
                                       **to_fg(kwargs(step)))
            assert_same(_as_traced(fg_u), ox_u)
            _assert_same_state(fg_state, ox_state)
            outs[jit].append(fg_u)
    return outs[False]


@pytest.mark.parametrize("steps", [1, 3])
def test_accumulate_avg_updates(steps):
    inputs = [_params() for _ in range(7)]
    outs = _run_updates(lambda m, o: m.accumulate_avg_updates(steps), inputs)
    # the average of each window of `steps` calls, at its last call
    for end in range(steps - 1, len(inputs), steps):
        window = inputs[end - steps + 1:end + 1]
        for k in ("w", "b"):
            _assert_close(outs[end][k], np.mean([u[k] for u in window], axis=0))


@pytest.mark.parametrize("axis", [0, None], ids=["axis0", "none"])
def test_average_incrementally_updates(axis):
    inputs = [_per_example((4,)) if axis == 0 else _params() for _ in range(4)]
    _run_updates(lambda m, o: m.average_incrementally_updates(axis, 2), inputs)


@pytest.mark.parametrize("axis, batch_shape", [(0, (4,)), ([0, 1], (2, 3))])
@pytest.mark.parametrize("steps", [1, 3])
def test_get_per_element_mean_and_sum_sq_diff_grads(axis, batch_shape, steps):
    inputs = [_per_example(batch_shape) for _ in range(2 * steps)]
    outs = _run_updates(
        lambda m, o: m.get_per_element_mean_and_sum_sq_diff_grads(axis, steps), inputs)
    if steps == 1:  # eagerly, the sample size is a Python int, as optax's
        agg = ox_agg.get_per_element_mean_and_sum_sq_diff_grads(axis)
        (_, aux), _ = agg.update(to_jax(inputs[0]), agg.init(None), None)
        assert type(outs[0][1]["sample_size"]) is type(aux["sample_size"]) is int
        assert outs[0][1]["sample_size"] == aux["sample_size"]


def test_mean_and_sum_sq_diff_are_numpys():
    """Merged over 3 microbatches, the statistics of the 12 examples together."""
    agg = aggregating.get_per_element_mean_and_sum_sq_diff_grads(0, 3)
    batches = [_per_example((4,)) for _ in range(3)]
    state = agg.init(to_fg(_params()))
    for batch in batches:
        (mean, aux), state = agg.update(to_fg(batch), state)
    for k in ("w", "b"):
        examples = np.concatenate([b[k] for b in batches])
        examples = examples.astype(np.float64)
        _assert_close(mean[k], examples.mean(0))
        _assert_close(aux["sum_sq_diff_grads"][k], ((examples - examples.mean(0)) ** 2).sum(0))
    assert int(aux["sample_size"]) == 12 and bool(state.ready)


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_track_per_element_mean_and_variance_with_ema(ema_decay):
    sums = [tree.map(np.abs, _params()) for _ in range(3)]  # sums of squares: >= 0

    def kwargs(step):
        return {"sum_sq_diff_grads": sums[step], "sample_size": np.int32(step + 2)}
    inputs = [_params() for _ in range(3)]
    _run_updates(lambda m, o: m.track_per_element_mean_and_variance_with_ema(ema_decay),
                 inputs, kwargs)


def test_get_unbiased_mean_and_variance_ema():
    """Read from a state nested in a chain, at the count of several steps, eagerly and under
    ``fungrad.jit``."""
    fg_tx = optim.chain(optim.sgd(0.1),
                        aggregating.track_per_element_mean_and_variance_with_ema(0.8))
    ox_tx = optax.chain(optax.sgd(0.1), ox_agg.track_per_element_mean_and_variance_with_ema(0.8))

    @jax.jit
    def ox_step(u, state, s):
        state = ox_tx.update(u, state, sum_sq_diff_grads=s, sample_size=4)[1]
        return state, ox_agg.get_unbiased_mean_and_variance_ema(state)
    params = _params()
    fg_state, ox_state = fg_tx.init(to_fg(params)), ox_tx.init(to_jax(params))
    fg_read = fungrad.jit(aggregating.get_unbiased_mean_and_variance_ema)
    for _ in range(3):
        u, s = _params(), tree.map(np.abs, _params())
        fg_state = fg_tx.update(to_fg(u), fg_state, sum_sq_diff_grads=to_fg(s),
                                sample_size=4)[1]
        ox_state, expected = ox_step(to_jax(u), ox_state, to_jax(s))
        assert_same(aggregating.get_unbiased_mean_and_variance_ema(fg_state), expected)
        assert_same(fg_read(fg_state), expected)


# --------------------------------------------------------------------------- training

def _loss(lib):
    """The squared error of a linear model on one example (per_example) or a batch."""
    def loss(params, x, y):
        return lib.sum((x @ params["w"] + params["b"] - y) ** 2, axis=-1).mean()
    return loss


def _grad_fn(lib, kind):
    """Gradients of the loss: per example (vmap of grad), per example on two batch axes
    (vmap of vmap of grad) or of the batch's mean loss."""
    grad = fungrad.grad if lib is jnp else jax.grad
    vmap = fungrad.vmap if lib is jnp else jax.vmap
    g = grad(_loss(lib))
    if kind == "batch":
        return g
    g = vmap(g, in_axes=(None, 0, 0))
    return g if kind == "per_example" else vmap(g, in_axes=(None, 0, 0))


def _batches(steps, size, nested=False, dtype=np.float32):
    xs, ys = _normal(steps, size, DIM, dtype=dtype), _normal(steps, size, CLASSES, dtype=dtype)
    if nested:
        xs, ys = xs.reshape(steps, 2, size // 2, DIM), ys.reshape(steps, 2, size // 2, CLASSES)
    return list(zip(xs, ys))


def _make_step(opt, lib, kind):
    grads, apply = _grad_fn(lib, kind), (optim if lib is jnp else optax).apply_updates

    def step(params, state, x, y):
        updates, state = opt.update(grads(params, x, y), state, params)
        return apply(params, updates), state, updates
    return step


def _train(make, kind="per_example", steps=4, size=4, metrics=False, dtype=np.float32):
    """Training by ``make(aggregating, optim)`` and ``make(ox_agg, optax)`` on the same
    batches: updates, parameters, states (and the unbiased mean and variance EMAs when
    ``metrics``) compared at every step, fungrad eagerly and under ``fungrad.jit`` against
    optax jitted. Returns fungrad's parameters after each step."""
    batches = _batches(steps, size, nested=kind == "nested", dtype=dtype)
    params = _params(dtype)
    ox_opt = make(ox_agg, optax)
    ox_step = jax.jit(_make_step(ox_opt, jnp_ref, kind))
    ox_p, ox_s = to_jax(params), ox_opt.init(to_jax(params))
    reference = []
    for x, y in batches:
        ox_p, ox_s, ox_u = ox_step(ox_p, ox_s, *to_jax((x, y)))
        stats = ox_agg.get_unbiased_mean_and_variance_ema(ox_s) if metrics else None
        reference.append((ox_p, ox_s, ox_u, stats))
    history = []
    for jit in (False, True):
        fg_opt = make(aggregating, optim)
        fg_step = _make_step(fg_opt, jnp, kind)
        fg_step = fungrad.jit(fg_step) if jit else fg_step
        fg_p, fg_s = to_fg(params), fg_opt.init(to_fg(params))
        history = []
        for (x, y), (ox_p, ox_s, ox_u, stats) in zip(batches, reference):
            fg_p, fg_s, fg_u = fg_step(fg_p, fg_s, *to_fg((x, y)))
            assert_same(fg_u, ox_u)
            assert_same(fg_p, ox_p)
            _assert_same_state(fg_s, ox_s)
            if metrics:
                assert_same(aggregating.get_unbiased_mean_and_variance_ema(fg_s), stats)
            history.append(fg_p)
    return history


TRAINING = [
    ("average", "per_example", False, lambda m, o: m.process(
        o.identity(), m.average_incrementally_updates(0, 1), o.sgd(0.1))),
    ("average_accumulate", "per_example", False, lambda m, o: m.process(
        o.identity(), m.average_incrementally_updates(0, 2), o.adam(0.05))),
    ("accumulate_batch_grads", "batch", False, lambda m, o: m.process(
        o.identity(), m.average_incrementally_updates(None, 2), o.sgd(0.1, momentum=0.9))),
    ("clip_each_then_adam", "per_example", False, lambda m, o: m.process(
        o.stateless(lambda g, _: (fungrad.vmap if m is aggregating else jax.vmap)(
            functools.partial(o.projections.projection_l2_ball, scale=0.5))(g)),
        m.average_per_element_updates(), o.adam(0.05))),
    ("mean_variance", "per_example", True, lambda m, o: m.add_mean_variance_to_opt(
        o.sgd(0.1), 0.9)),
    ("mean_variance_no_ema", "per_example", True, lambda m, o: m.add_mean_variance_to_opt(
        o.adam(0.05), 0.0)),
    ("mean_variance_accumulate", "per_example", True, lambda m, o: m.add_mean_variance_to_opt(
        o.sgd(0.1), 0.9, accumulation_steps=2)),
    ("mean_variance_two_axes", "nested", True, lambda m, o: m.add_mean_variance_to_opt(
        o.sgd(0.1), 0.5, per_elt_axis=[0, 1])),
]


@pytest.mark.parametrize("kind, metrics, make", [c[1:] for c in TRAINING],
                         ids=[c[0] for c in TRAINING])
def test_training_matches_optax(kind, metrics, make):
    _train(make, kind, metrics=metrics)


def test_accumulated_training_in_float64():
    """float64 parameters and data, with 64-bit dtypes on in both libraries."""
    with x64():
        _train(lambda m, o: m.add_mean_variance_to_opt(o.adam(0.05), 0.9, accumulation_steps=2),
               metrics=True, dtype=np.float64)


def test_aggregated_and_accumulated_training_match_the_full_batch():
    """Averaging per-example gradients, accumulated over two microbatches of 2, takes the
    steps of SGD on the whole batch of 4 (the same examples)."""
    batches = _batches(3, 4)
    fg_opt = aggregating.process(optim.identity(),
                                 aggregating.average_incrementally_updates(0, 2),
                                 optim.sgd(0.1))
    sgd = optim.sgd(0.1)
    step = fungrad.jit(_make_step(fg_opt, jnp, "per_example"))
    full_step = fungrad.jit(_make_step(sgd, jnp, "batch"))
    p = full_p = to_fg(_params())
    s, full_s = fg_opt.init(p), sgd.init(p)
    for x, y in batches:
        for half in (slice(0, 2), slice(2, 4)):
            p, s, _ = step(p, s, *to_fg((x[half], y[half])))
        full_p, full_s, _ = full_step(full_p, full_s, *to_fg((x, y)))
        assert_same(p, full_p)


def test_tracked_mean_and_variance_are_the_examples():
    """With no averaging over time (decay 0) the tracked statistics are the per-example
    gradients' mean and unbiased variance (NumPy's ``var(ddof=1)``), and accumulating two
    microbatches gives those of the 8 examples together."""
    params = to_fg(_params())
    grads = _grad_fn(jnp, "per_example")
    x, y = _normal(8, DIM), _normal(8, CLASSES)
    per_example = grads(params, *to_fg((x, y)))
    for steps, chunks in ((1, [slice(0, 8)]), (2, [slice(0, 4), slice(4, 8)])):
        opt = aggregating.add_mean_variance_to_opt(optim.sgd(0.1), 0.0,
                                                   accumulation_steps=steps)
        state = opt.init(params)
        for chunk in chunks:
            _, state = opt.update(grads(params, *to_fg((x[chunk], y[chunk]))), state)
        mean, variance = aggregating.get_unbiased_mean_and_variance_ema(state)
        for k in ("w", "b"):
            g = np.asarray(per_example[k], np.float64)
            _assert_close(mean[k], g.mean(0))
            _assert_close(variance[k], g.var(0, ddof=1))


def _scale_by_value(m):
    """A transformation that multiplies the updates by the extra argument ``value``."""
    def update(updates, state, params=None, *, value, **extra_args):
        return tree.map(lambda u: u * value, updates) if m is optim else \
            jax.tree_util.tree_map(lambda u: u * value, updates), state
    return m.GradientTransformationExtraArgs(m.init_empty_state, update)


def _averaging(m, has_aux):
    """An aggregator that averages over axis 0 and takes any keyword arguments (optax's
    own aggregators take none); with ``has_aux``, it also returns ``value`` doubled as an
    auxiliary output."""
    mean = jnp.mean if m is optim else jnp_ref.mean
    agg = aggregating if m is optim else ox_agg

    def update(per_elt_updates, state, params=None, **extra_args):
        avg = {k: mean(v, axis=0) for k, v in per_elt_updates.items()}
        return ((avg, {"value": 2 * extra_args["value"]}) if has_aux else avg), state
    return agg.Aggregator(m.init_empty_state, update)


@pytest.mark.parametrize("has_aux", [False, True])
def test_process_passes_extra_args(has_aux):
    """Keyword arguments of ``update`` reach every stage; with ``aggregator_has_aux`` the
    aggregator's auxiliary outputs replace or add to them for the postprocessor."""
    def make(m, o):
        return m.process(_scale_by_value(o), _averaging(o, has_aux),
                         o.chain(_scale_by_value(o), o.adam(0.1)), aggregator_has_aux=has_aux)
    inputs = [_per_example((3,)) for _ in range(3)]
    _run_updates(make, inputs, kwargs=lambda step: {"value": np.float32(step + 0.5)})


def test_process_holds_the_postprocessor_until_ready():
    """Between complete accumulations the update is zero and adam's count does not move."""
    opt = aggregating.process(optim.identity(), aggregating.average_incrementally_updates(0, 3),
                              optim.adam(0.1))
    state = opt.init(to_fg(_params()))
    for step in range(1, 7):
        updates, state = opt.update(to_fg(_per_example((2,))), state)
        adam_count = int(state[2][0].count)
        assert adam_count == step // 3
        if step % 3:
            assert all(not np.any(np.asarray(u)) for u in tree.leaves(updates))


# --------------------------------------------------------------------------- errors

def test_accumulation_steps_below_one_are_rejected_as_optax_does():
    with pytest.raises(ValueError):
        ox_agg.accumulate_avg_updates(0)
    with pytest.raises(ValueError, match=r"accumulate_avg_updates: `accumulation_steps` must "
                                         r"be at least 1, got 0"):
        aggregating.accumulate_avg_updates(0)
    with pytest.raises(ValueError, match=r"average_incrementally_updates: `accumulation_steps`"):
        aggregating.average_incrementally_updates(0, -1)


@pytest.mark.parametrize("call, error, message", [
    (lambda: aggregating.accumulate_avg_updates(1.5), TypeError,
     r"accumulate_avg_updates: `accumulation_steps` must be an integer"),
    (lambda: aggregating.get_per_element_mean_and_sum_sq_diff_grads(0, 0), ValueError,
     r"get_per_element_mean_and_sum_sq_diff_grads: `accumulation_steps` must be at least 1"),
    (lambda: aggregating.add_mean_variance_to_opt(optim.sgd(0.1), accumulation_steps=0),
     ValueError, r"add_mean_variance_to_opt: `accumulation_steps` must be at least 1"),
    (lambda: aggregating.average_per_element_updates("0"), TypeError,
     r"average_per_element_updates: `per_elt_axis` must be an int or a sequence of ints"),
    (lambda: aggregating.average_per_element_updates(None), TypeError,
     r"average_per_element_updates: `per_elt_axis`"),
    (lambda: aggregating.get_per_element_mean_and_sum_sq_diff_grads(1.0), TypeError,
     r"get_per_element_mean_and_sum_sq_diff_grads: `per_elt_axis`"),
    (lambda: aggregating.process(optim.identity(), lambda g: g, optim.sgd(0.1)), TypeError,
     r"process: `aggregator` must be a GradientTransformation"),
    (lambda: aggregating.add_mean_variance_to_opt(0.1), TypeError,
     r"add_mean_variance_to_opt: `opt` must be a GradientTransformation"),
    (lambda: aggregating.get_batch_size_from_per_elt_updates({"a": jnp.ones(2)}, 1),
     ValueError, r"get_batch_size_from_per_elt_updates: `per_elt_axis` 1 is out of range"),
    (lambda: aggregating.get_batch_size_from_per_elt_updates({}, 0), ValueError,
     r"get_batch_size_from_per_elt_updates: `per_elt_updates` has no leaves"),
])
def test_bad_arguments_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_unequal_batch_sizes_are_rejected_as_optax_does():
    updates = {"w": _normal(4, 2), "b": _normal(3, 2)}
    with pytest.raises(ValueError, match=r"same batch size"):
        ox_agg.get_batch_size_from_per_elt_updates(to_jax(updates), 0)
    with pytest.raises(ValueError, match=r"get_batch_size_from_per_elt_updates: per-element "
                                         r"updates must have the same batch size. Got: \[3, 4\]"):
        aggregating.get_batch_size_from_per_elt_updates(to_fg(updates), 0)
    agg = aggregating.get_per_element_mean_and_sum_sq_diff_grads()
    with pytest.raises(ValueError, match=r"get_batch_size_from_per_elt_updates"):
        agg.update(to_fg(updates), agg.init(None))


def test_state_without_ema_state_is_rejected_as_optax_does():
    params = _params()
    with pytest.raises(ValueError, match=r"PerElementMeanAndVarianceEMAState"):
        ox_agg.get_unbiased_mean_and_variance_ema(optax.adam(0.1).init(to_jax(params)))
    with pytest.raises(ValueError, match=r"get_unbiased_mean_and_variance_ema: `state` must "
                                         r"hold a PerElementMeanAndVarianceEMAState"):
        aggregating.get_unbiased_mean_and_variance_ema(optim.adam(0.1).init(to_fg(params)))


def test_tracking_without_its_keyword_arguments_is_rejected_as_optax_does():
    ox_tx = ox_agg.track_per_element_mean_and_variance_with_ema()
    with pytest.raises(TypeError):
        ox_tx.update(to_jax(_params()), ox_tx.init(to_jax(_params())))
    fg_tx = aggregating.track_per_element_mean_and_variance_with_ema()
    with pytest.raises(TypeError, match=r"track_per_element_mean_and_variance_with_ema: update "
                                        r"needs the keyword arguments `sum_sq_diff_grads`"):
        fg_tx.update(to_fg(_params()), fg_tx.init(to_fg(_params())), sample_size=3)


def test_aux_that_is_not_a_pair_with_a_dict_is_rejected():
    opt = aggregating.process(optim.identity(), aggregating.average_per_element_updates(),
                              optim.sgd(0.1), aggregator_has_aux=True)
    with pytest.raises(TypeError, match=r"process: with `aggregator_has_aux=True` the "
                                        r"aggregator's update must return"):
        opt.update(to_fg(_per_example((3,))), opt.init(to_fg(_params())))
