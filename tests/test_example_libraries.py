"""fungrad.example_libraries (stax, optimizers) against jax.example_libraries on the same
inputs: every layer's init (the same params bit for bit, from the same key) and apply
(eager, under ``jit`` and under ``grad``), an MLP and a conv net trained step by step with
every optimizer, the schedules, pack/unpack, the public names, and the errors.

jax's references: the inits run eagerly (its jitted random draws round apart from its eager
ones, which fungrad matches bit for bit); applies, gradients and training runs are one
quickly compiled program per table (``quick_jit``)."""
import inspect
import pickle
from typing import Any

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest
from jax.example_libraries import optimizers as jopt
from jax.example_libraries import stax as jstax

import fungrad
import fungrad.numpy as jnp
from fungrad import tree
from fungrad.example_libraries import optimizers as opt
from fungrad.example_libraries import stax
from harness import GRAD_TOL, assert_same, quick_jit, rand, to_fg

RNG = np.random.default_rng(0)


class Lib:
    """One library's namespaces, so that each case is written once for both."""

    def __init__(self, stax_, opt_, np_, nn, random):
        self.stax, self.opt, self.np, self.nn, self.random = stax_, opt_, np_, nn, random


FG = Lib(stax, opt, jnp, fungrad.nn, fungrad.random)
JX = Lib(jstax, jopt, jnp_ref, jax.nn, jax.random)


# --------------------------------------------------------------------------- layers

def _residual(s):
    return s.serial(s.FanOut(2), s.parallel(s.serial(s.Dense(3), s.Tanh), s.Identity), s.FanInSum)


# (id, layer of a Lib, input shape, whether apply takes a key)
LAYERS = [
    ("Dense", lambda m: m.stax.Dense(5), (3, 4), False),
    ("Dense_inits", lambda m: m.stax.Dense(3, m.nn.initializers.he_uniform(),
                                           m.nn.initializers.ones), (2, 2, 4), False),
    ("Conv", lambda m: m.stax.Conv(4, (3, 3)), (2, 6, 5, 3), False),
    ("Conv_same_strided", lambda m: m.stax.Conv(4, (3, 2), (2, 2), "SAME"), (2, 6, 5, 3), False),
    ("GeneralConv_NCHW", lambda m: m.stax.GeneralConv(("NCHW", "OIHW", "NCHW"), 3, (2, 3),
                                                      padding=((1, 0), (0, 1))),
     (2, 2, 5, 6), False),
    ("ConvTranspose", lambda m: m.stax.ConvTranspose(3, (3, 3), (2, 2), "SAME"), (2, 4, 3, 2),
     False),
    ("Conv1DTranspose", lambda m: m.stax.Conv1DTranspose(3, (3,), (2,)), (2, 5, 2), False),
    ("GeneralConvTranspose", lambda m: m.stax.GeneralConvTranspose(
        ("NCH", "IOH", "NCH"), 2, (2,), (3,), "VALID"), (2, 3, 4), False),
    ("BatchNorm", lambda m: m.stax.BatchNorm(), (4, 3, 3, 2), False),
    ("BatchNorm_scale_only", lambda m: m.stax.BatchNorm(axis=0, center=False,
                                                        gamma_init=m.nn.initializers.normal(1.0)),
     (5, 3), False),
    ("BatchNorm_center_only", lambda m: m.stax.BatchNorm((0, 2), scale=False,
                                                         beta_init=m.nn.initializers.normal()),
     (4, 3, 2), False),
    *[(name, lambda m, name=name: getattr(m.stax, name), (3, 5), False)
      for name in ("Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus", "Sigmoid", "Elu",
                   "LeakyRelu", "Selu", "Gelu", "Identity")],
    ("elementwise_kwargs", lambda m: m.stax.elementwise(m.nn.leaky_relu, negative_slope=0.3),
     (3, 5), False),
    ("MaxPool", lambda m: m.stax.MaxPool((2, 2)), (2, 5, 4, 3), False),
    ("MaxPool_same", lambda m: m.stax.MaxPool((3, 2), (1, 2), "SAME"), (2, 5, 4, 3), False),
    ("SumPool", lambda m: m.stax.SumPool((2, 2), (2, 2)), (2, 5, 4, 3), False),
    ("AvgPool_same", lambda m: m.stax.AvgPool((3, 3), (1, 1), "SAME"), (2, 5, 4, 3), False),
    ("AvgPool_NCHW", lambda m: m.stax.AvgPool((2, 2), (2, 1), spec="NCHW"), (2, 3, 5, 4), False),
    ("Flatten", lambda m: m.stax.Flatten, (2, 3, 4), False),
    ("Dropout", lambda m: m.stax.Dropout(0.7), (4, 6), True),
    ("Dropout_test_mode", lambda m: m.stax.Dropout(0.7, mode="test"), (4, 6), True),
    ("serial_mlp", lambda m: m.stax.serial(m.stax.Dense(4), m.stax.Relu, m.stax.Dense(2),
                                           m.stax.LogSoftmax), (3, 5), False),
    ("serial_dropout", lambda m: m.stax.serial(m.stax.Dense(6), m.stax.Dropout(0.5),
                                               m.stax.Gelu, m.stax.Dense(2)), (3, 5), True),
    ("residual_FanInSum", lambda m: _residual(m.stax), (3, 3), False),
    ("FanInConcat", lambda m: m.stax.serial(
        m.stax.FanOut(3), m.stax.parallel(m.stax.Dense(2), m.stax.Dense(3), m.stax.Identity),
        m.stax.FanInConcat()), (2, 4), False),
    ("FanInConcat_axis0", lambda m: m.stax.serial(
        m.stax.FanOut(2), m.stax.parallel(m.stax.Dense(3), m.stax.Sigmoid),
        m.stax.FanInConcat(0)), (2, 3), False),
    ("shape_dependent", lambda m: m.stax.shape_dependent(lambda s: m.stax.Dense(s[-1] + 1)),
     (3, 2), False),
]
LAYER_IDS = [case[0] for case in LAYERS]
INIT_KEY = 7
KEY = fungrad.random.PRNGKey(0)


def _init(lib, make, shape):
    return make(lib)[0](lib.random.PRNGKey(INIT_KEY), shape)


@pytest.fixture(scope="module")
def jax_inits():
    """jax's output shapes and params of every layer, drawn in one program (the shapes are
    recorded while jax traces). Without XLA's algebraic simplifier, its draws equal jax's
    eager ones bit for bit (the simplifier folds ``normal``'s constant factors into
    ``stddev``, and QUICK_COMPILE's code rounds apart), and the program compiles in a fraction
    of the time eager jax takes to compile each op."""
    shapes = []

    def inits(key):
        params = []
        for _, make, shape, _ in LAYERS:
            out_shape, p = make(JX)[0](key, shape)
            shapes.append(out_shape)
            params.append(p)
        return params
    params = jax.jit(inits, compiler_options={"xla_disable_hlo_passes": "algsimp"})(
        jax.random.PRNGKey(INIT_KEY))
    return shapes, params


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=LAYER_IDS)
def test_init_matches_jax_bit_for_bit(jax_inits, index):
    _, make, shape, _ = LAYERS[index]
    fg_shape, fg_params = _init(FG, make, shape)
    jx_shape, jx_params = jax_inits[0][index], jax_inits[1][index]
    assert fg_shape == tuple(int(d) for d in jx_shape)
    fg_leaves, fg_def = tree.flatten(fg_params)
    jx_leaves, jx_def = jax.tree.flatten(jx_params)
    assert str(fg_def).split("PyTreeSpec(")[-1].split(", namespace")[0] == \
        str(jx_def).split("PyTreeDef(")[-1], (fg_def, jx_def)
    for a, b in zip(fg_leaves, jx_leaves):
        assert a.shape == b.shape and a.dtype == b.dtype, (a, b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_init_under_jit_and_with_an_unknown_batch():
    init_fun, _ = stax.serial(stax.Conv(3, (2, 2)), stax.Relu, stax.Flatten, stax.Dense(2))
    shape, params = init_fun(fungrad.random.PRNGKey(1), (-1, 4, 4, 2))
    assert shape == (-1, 2)
    jitted = fungrad.jit(lambda k: init_fun(k, (-1, 4, 4, 2))[1])(fungrad.random.PRNGKey(1))
    assert_same(jitted, params)
    jx_init, _ = jstax.serial(jstax.Conv(3, (2, 2)), jstax.Relu, jstax.Flatten, jstax.Dense(2))
    jx_shapes = []  # recorded while jax traces, which is all eval_shape does
    jax.eval_shape(lambda k: jx_shapes.append(jx_init(k, (-1, 4, 4, 2))[0]),
                   jax.random.PRNGKey(1))
    assert shape == tuple(jx_shapes[0])


def _loss(apply_fun, keyed, lib):
    """``<apply(params, x), ct>``, whose gradient is the VJP of the layer at ``ct``."""
    def loss(params, x, key, ct):
        out = apply_fun(params, x, rng=key) if keyed else apply_fun(params, x)
        return lib.np.vdot(out, ct)
    return loss


def _layer_inputs():
    """Per layer: (params from the jax init, inputs, key, cotangent), all NumPy."""
    cases = []
    for _, make, shape, keyed in LAYERS:
        out_shape, params = _init(FG, make, shape)
        key = np.asarray(jax.random.PRNGKey(3))
        ct = rand(RNG, out_shape)
        x = rand(RNG, shape, low=0.1, high=2.0) if keyed else rand(RNG, shape)
        cases.append((tree.map(np.asarray, params), x, key, ct))
    return cases


@pytest.fixture(scope="module")
def layer_refs():
    """jax's value and gradients of every layer, in one quickly compiled program."""
    cases = _layer_inputs()
    applies = [(make(JX)[1], keyed) for _, make, _, keyed in LAYERS]

    def all_refs(args):
        refs = []
        for (apply_fun, keyed), (params, x, key, ct) in zip(applies, args):
            out = apply_fun(params, x, rng=key) if keyed else apply_fun(params, x)
            grads = jax.grad(_loss(apply_fun, keyed, JX), argnums=(0, 1))(params, x, key, ct)
            refs.append((out, grads))
        return refs
    return cases, quick_jit(all_refs)(cases)


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=LAYER_IDS)
def test_apply_and_grad_match_jax(layer_refs, index):
    _, make, _, keyed = LAYERS[index]
    cases, refs = layer_refs
    params, x, key, ct = to_fg(cases[index])
    ref_out, ref_grads = refs[index]
    apply_fun = make(FG)[1]
    call = (lambda p, v, k: apply_fun(p, v, rng=k)) if keyed else \
        (lambda p, v, k: apply_fun(p, v))
    assert_same(call(params, x, key), ref_out, check_weak=False)
    assert_same(fungrad.jit(call)(params, x, key), ref_out, check_weak=False)
    grad = fungrad.grad(_loss(apply_fun, keyed, FG), argnums=(0, 1))
    assert_same(grad(params, x, key, ct), ref_grads, GRAD_TOL, check_weak=False)
    assert_same(fungrad.jit(grad)(params, x, key, ct), ref_grads, GRAD_TOL, check_weak=False)


def test_pooling_with_explicit_pads():
    # jax's stax takes only named paddings for pooling (its init_fun fails on pairs); pairs
    # are one per input axis, as lax.reduce_window takes them
    pads = ((0, 0), (1, 0), (0, 1), (0, 0))
    init_fun, apply_fun = stax.MaxPool((2, 2), padding=pads)
    shape, _ = init_fun(KEY, (2, 5, 4, 3))
    x = rand(RNG, (2, 5, 4, 3))
    out = apply_fun((), jnp.asarray(x))
    assert out.shape == shape == (2, 5, 4, 3)
    assert_same(out, quick_jit(lambda v: jax.lax.reduce_window(
        v, -np.inf, jax.lax.max, (1, 2, 2, 1), (1, 1, 1, 1), pads))(x))
    init_fun, apply_fun = stax.AvgPool((2, 2), padding=pads)
    assert_same(apply_fun((), jnp.asarray(x)), quick_jit(lambda v: jax.lax.reduce_window(
        v, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 1, 1, 1), pads) / jax.lax.reduce_window(
        jnp_ref.ones((5, 4)), 0.0, jax.lax.add, (2, 2), (1, 1), pads[1:3])[None, ..., None])(x))


def test_dropout_keeps_rate_and_scales():
    _, apply_fun = stax.Dropout(0.25)
    out = np.asarray(apply_fun((), jnp.ones((2000,)), rng=fungrad.random.PRNGKey(0)))
    assert set(np.unique(out)) == {0.0, 4.0}
    assert abs((out > 0).mean() - 0.25) < 0.05  # rate is the probability of keeping


def test_vmap_of_apply():
    init_fun, apply_fun = stax.serial(stax.Dense(3), stax.Relu, stax.Dense(2))
    _, params = init_fun(fungrad.random.PRNGKey(0), (-1, 4))
    xs = jnp.asarray(rand(RNG, (5, 4)))
    batched = fungrad.vmap(apply_fun, in_axes=(None, 0))(params, xs)
    assert_same(batched, apply_fun(params, xs))


# --------------------------------------------------------------------------- training

def _mlp(s):
    return s.serial(s.Dense(6), s.Relu, s.Dense(6), s.Tanh, s.Dense(3), s.LogSoftmax)


def _convnet(s):
    # BatchNorm after the Relu: right after the Conv, it would leave the Conv's bias a
    # gradient of zero plus rounding, which Adam and RMSProp scale up to full steps
    block = s.serial(s.Conv(3, (3, 3), padding="SAME"), s.Relu, s.BatchNorm())
    return s.serial(s.Conv(3, (2, 2), padding="SAME"), s.Elu, s.FanOut(2),
                    s.parallel(block, s.Identity), s.FanInSum, s.AvgPool((2, 2), (2, 2)),
                    s.Flatten, s.Dense(3), s.LogSoftmax)


NETS = {"mlp": (_mlp, (5, 4)), "convnet": (_convnet, (2, 4, 4, 2))}

# (id, optimizer of a Lib): every optimizer, some with a schedule for step_size
OPTIMIZERS = [
    ("sgd", lambda o: o.sgd(0.1)),
    ("sgd_exponential_decay", lambda o: o.sgd(o.exponential_decay(0.2, 2, 0.5))),
    ("momentum", lambda o: o.momentum(0.05, 0.9)),
    ("nesterov", lambda o: o.nesterov(o.inverse_time_decay(0.05, 2, 0.5, staircase=True), 0.8)),
    ("adagrad", lambda o: o.adagrad(0.1)),
    ("rmsprop", lambda o: o.rmsprop(0.01)),
    ("rmsprop_momentum", lambda o: o.rmsprop_momentum(o.polynomial_decay(0.01, 3, 0.001), 0.8)),
    ("adam", lambda o: o.adam(0.01)),
    ("adam_piecewise", lambda o: o.adam(o.piecewise_constant([1, 2], [0.03, 0.02, 0.01]))),
    ("adamax", lambda o: o.adamax(0.02)),
    ("sm3", lambda o: o.sm3(0.1)),
]
STEPS = 3


def _loss_of(lib, net, x, labels):
    """``net``'s cross entropy on ``(x, labels)`` as a function of the params."""
    _, apply_fun = net(lib.stax)
    return lambda p: -lib.np.mean(lib.np.sum(apply_fun(p, x) * labels, axis=-1))


def _train(lib, net, make_opt, params, x, labels, jit=None):
    """``STEPS`` steps of ``make_opt`` on ``net``'s cross entropy: the params after each
    step and the final state. ``jit`` wraps the step function (a traced step index)."""
    loss = _loss_of(lib, net, x, labels)
    opt_init, opt_update, get_params = make_opt(lib.opt)

    def step(i, state):
        return opt_update(i, lib_grad(lib)(loss)(get_params(state)), state)
    step = jit(step) if jit else step
    state, trajectory = opt_init(params), []
    for i in range(STEPS):
        state = step(i, state)
        trajectory.append(get_params(state))
    return trajectory, state


def _train_scanned(net, make_opt, params, x, labels):
    """jax's ``_train`` as a ``lax.scan`` over the step index: one step in the program
    instead of ``STEPS``, for a shorter compilation. (sm3 keeps each array's shape, as ints,
    in its state, which a scan's carry would make arrays: it runs unrolled.)"""
    loss = _loss_of(JX, net, x, labels)
    opt_init, opt_update, get_params = make_opt(jopt)

    def body(state, i):
        state = opt_update(i, jax.grad(loss)(get_params(state)), state)
        return state, get_params(state)
    state, stacked = jax.lax.scan(body, opt_init(params), jnp_ref.arange(STEPS))
    return [jax.tree.map(lambda a, k=k: a[k], stacked) for k in range(STEPS)], state


def lib_grad(lib):
    return fungrad.grad if lib is FG else jax.grad


def _state_arrays(state):
    """The per-array states of an OptimizerState (either library's), via
    unpack_optimizer_state."""
    if isinstance(state, opt.OptimizerState):
        return [j.subtree for j in tree.leaves(opt.unpack_optimizer_state(state))]
    return [j.subtree for j in jax.tree.leaves(jopt.unpack_optimizer_state(state))]


def _net_data(name):
    net, shape = NETS[name]
    _, params = _init(FG, lambda m: net(m.stax), shape)
    x = rand(RNG, shape)
    labels = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, shape[0])]
    return tree.map(np.asarray, params), x, labels


@pytest.fixture(scope="module", params=list(NETS))
def training_refs(request):
    """jax's runs of every optimizer on one net, one quickly compiled program."""
    net = NETS[request.param][0]
    params, x, labels = _net_data(request.param)

    def runs(p, x_, y):
        return [_train(JX, net, make_opt, p, x_, y) if name == "sm3" else
                _train_scanned(net, make_opt, p, x_, y) for name, make_opt in OPTIMIZERS]
    refs = quick_jit(runs)(params, x, labels)
    return net, (params, x, labels), refs


def _assert_state_close(fg_state, jx_state):
    for a, b in zip(tree.leaves(_state_arrays(fg_state)), jax.tree.leaves(
            _state_arrays(jx_state))):
        if isinstance(a, int):  # sm3 keeps each array's shape, whose ints jax's jit made arrays
            assert a == int(b)
        else:
            assert_same(a, b, GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("index", range(len(OPTIMIZERS)), ids=[o[0] for o in OPTIMIZERS])
def test_training_matches_jax_step_by_step(training_refs, index):
    net, data, refs = training_refs
    name, make_opt = OPTIMIZERS[index]
    ref_trajectory, ref_state = refs[index]
    trajectory, state = _train(FG, net, make_opt, *to_fg(data))
    for params, ref in zip(trajectory, ref_trajectory):
        assert_same(params, ref, GRAD_TOL, check_weak=False)
    _assert_state_close(state, ref_state)
    if name != "sm3":  # jit turns the shape sm3 keeps in its state into arrays, in jax too
        jitted, _ = _train(FG, net, make_opt, *to_fg(data), jit=fungrad.jit)
        assert_same(jitted[-1], ref_trajectory[-1], GRAD_TOL, check_weak=False)


def test_pack_unpack_round_trip_resumes_training():
    params, x, labels = _net_data("mlp")
    opt_init, opt_update, get_params = opt.adam(0.01)
    loss = _loss_of(FG, _mlp, to_fg(x), to_fg(labels))

    def step(i, s):
        return opt_update(i, fungrad.grad(loss)(get_params(s)), s)

    state = step(0, opt_init(to_fg(params)))
    unpacked = opt.unpack_optimizer_state(state)
    assert tree.structure(unpacked) == tree.structure(tree.map(lambda _: 0, params))
    assert all(isinstance(j, opt.JoinPoint) and len(j.subtree) == 3
               for j in tree.leaves(unpacked))
    # saved and loaded as plain containers of NumPy arrays
    saved = pickle.dumps(tree.map(lambda j: opt.JoinPoint(tree.map(np.asarray, j.subtree)),
                                  unpacked))
    repacked = opt.pack_optimizer_state(pickle.loads(saved))  # noqa: S301 (our own bytes)
    assert repacked.tree_def == state.tree_def and repacked.subtree_defs == state.subtree_defs
    assert_same(step(1, repacked).packed_state, step(1, state).packed_state)
    # jax's unpacked state has the same leaves
    jx_state = jopt.adam(0.01)[0](params)
    assert len(jax.tree.leaves(jopt.unpack_optimizer_state(jx_state))) == \
        len(tree.leaves(opt.unpack_optimizer_state(opt_init(to_fg(params)))))


def test_sm3_scalar_and_matrix_params():
    params = {"s": np.float32(1.5), "m": rand(RNG, (3, 2))}
    grads = {"s": np.float32(0.5), "m": rand(RNG, (3, 2))}
    fg_init, fg_update, fg_get = opt.sm3(0.1, 0.5)
    jx_init, jx_update, jx_get = jopt.sm3(0.1, 0.5)
    fg_state, jx_state = fg_init(to_fg(params)), jx_init(params)
    for i in range(2):
        fg_state = fg_update(i, to_fg(grads), fg_state)
        jx_state = jx_update(i, grads, jx_state)
    assert_same(fg_get(fg_state), jx_get(jx_state), GRAD_TOL, check_weak=False)


def test_l2_norm_and_clip_grads():
    grads = {"a": rand(RNG, (3, 2)), "b": [rand(RNG, (4,))]}
    fns = lambda o, g: (o.l2_norm(g), o.clip_grads(g, 0.5), o.clip_grads(g, 100.0))  # noqa: E731
    assert_same(fns(opt, to_fg(grads)), quick_jit(lambda g: fns(jopt, g))(grads),
                check_weak=False)


# --------------------------------------------------------------------------- schedules

SCHEDULES = [
    ("constant", lambda o: o.constant(0.3)),
    ("exponential_decay", lambda o: o.exponential_decay(0.5, 3, 0.2)),
    ("inverse_time_decay", lambda o: o.inverse_time_decay(0.5, 4, 2.0)),
    ("inverse_time_decay_staircase", lambda o: o.inverse_time_decay(0.5, 4, 2.0, True)),
    ("polynomial_decay", lambda o: o.polynomial_decay(1.0, 10, 0.1, power=2.0)),
    ("piecewise_constant", lambda o: o.piecewise_constant([2, 5], [1.0, 0.5, 0.1])),
    ("make_schedule_number", lambda o: o.make_schedule(0.25)),
    ("make_schedule_callable", lambda o: o.make_schedule(lambda i: 0.1 * i)),
]
STEP_INDICES = [0, 1, 2, 3, 5, 9, 10, 20]


@pytest.mark.parametrize("name, make", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedules_match_jax(name, make):
    fg, jx = make(opt), make(jopt)
    for i in STEP_INDICES:  # Python ints, as the optimizers get them eagerly
        a, b = fg(i), jx(i)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    traced = fungrad.jit(lambda s: [fg(i) for i in s])(list(jnp.asarray(STEP_INDICES)))
    ref = quick_jit(lambda s: [jx(i) for i in s])(list(jnp_ref.asarray(STEP_INDICES)))
    assert_same(traced, ref, check_weak=False)


# --------------------------------------------------------------------------- API and errors

JAX_STAX_IMPORTS = {"functools", "math", "lax", "random", "jnp"}
JAX_OPT_IMPORTS = {"annotations", "Callable", "Any", "NamedTuple", "namedtuple", "functools",
                   "partial", "jax", "jnp", "safe_zip", "safe_map", "unzip2", "map", "zip",
                   "Array"}


@pytest.mark.parametrize("ours, theirs, imports", [(stax, jstax, JAX_STAX_IMPORTS),
                                                    (opt, jopt, JAX_OPT_IMPORTS)],
                         ids=["stax", "optimizers"])
def test_every_public_name_of_jax_is_here(ours, theirs, imports):
    public = {n for n in vars(theirs) if not n.startswith("_")} - imports
    assert {n for n in public if not hasattr(ours, n)} == set()
    # in __all__ too, but for the type aliases that are another library's classes (Any, int)
    assert {n for n in public - set(ours.__all__) if getattr(ours, n) not in (Any, int)} == set()
    assert set(ours.__all__) <= set(dir(ours))
    for name in sorted(public):
        fg, jx = getattr(ours, name), getattr(theirs, name)
        if inspect.isfunction(jx) and inspect.isfunction(fg):
            fg_sig, jx_sig = inspect.signature(fg), inspect.signature(jx)
            assert list(fg_sig.parameters) == list(jx_sig.parameters), name
            for p, q in zip(fg_sig.parameters.values(), jx_sig.parameters.values()):
                if not callable(q.default):
                    assert p.default == q.default, (name, p.name)


def test_optimizer_namedtuples_and_decorator():
    triple = opt.momentum(0.1, 0.9)
    assert isinstance(triple, opt.Optimizer) and triple._fields == jopt.Optimizer._fields
    assert opt.OptimizerState._fields == jopt.OptimizerState._fields
    assert opt.adam.__doc__ and opt.adam.__name__ == "adam"

    @opt.optimizer
    def halve():
        return (lambda x: x), (lambda i, g, x: x / 2), (lambda x: x)
    init_fun, update_fun, get_params = halve()
    state = update_fun(0, [jnp.ones(2), 1.0], init_fun([jnp.full(2, 4.0), jnp.asarray(2.0)]))
    assert_same(get_params(state), [jnp.full(2, 2.0), jnp.asarray(1.0)])


def _raises(exc, match, fn, *args, **kw):
    """``fn`` raises ``exc`` with a message matching ``match`` from fungrad's own check (the
    innermost frame of the traceback is in fungrad/example_libraries, not in NumPy)."""
    with pytest.raises(exc, match=match) as info:
        fn(*args, **kw)
    assert "example_libraries" in info.traceback[-1].path.as_posix(), info.traceback[-1]


def test_bad_layer_arguments_name_the_layer_and_the_argument():
    _raises(ValueError, r"stax\.Dense: input_shape must have at least 1", stax.Dense(3)[0],
            KEY, ())
    _raises(TypeError, r"stax\.Dense: input_shape must be a sequence of ints",
            stax.Dense(3)[0], KEY, (2, "4"))
    _raises(ValueError, r"stax\.Conv: padding must be 'VALID', 'SAME'.*got 'FULL'", stax.Conv,
            4, (3, 3), padding="FULL")
    _raises(ValueError, r"stax\.Conv: padding .* 2 \(low, high\) pairs", stax.Conv, 4, (3, 3),
            padding=((1, 1),))
    _raises(ValueError, r"stax\.Conv: filter_shape must have 2 entries", stax.Conv, 4, (3,))
    _raises(ValueError, r"stax\.Conv: strides must have 2 entries", stax.Conv, 4, (3, 3), (1,))
    _raises(ValueError, r"stax\.Conv: input_shape must have 4 entries", stax.Conv(4, (3, 3))[0],
            KEY, (5, 5, 3))
    _raises(TypeError, r"stax\.GeneralConv: dimension_numbers", stax.GeneralConv, "NHWC", 4,
            (3, 3))
    _raises(ValueError, r"stax\.GeneralConv: dimension_numbers must name", stax.GeneralConv,
            ("NHWC", "HWXY", "NHWC"), 4, (3, 3))
    _raises(ValueError, r"stax\.MaxPool: padding must be .*got 'valid-ish'", stax.MaxPool,
            (2, 2), padding="valid-ish")
    _raises(ValueError, r"stax\.AvgPool: spec must be", stax.AvgPool, (2, 2), spec="NHW")
    _raises(ValueError, r"stax\.SumPool: input_shape must have 4 entries",
            stax.SumPool((2, 2))[0], KEY, (2, 4, 4))
    _raises(ValueError, r"stax\.BatchNorm: axis 4 is out of range",
            stax.BatchNorm(axis=(0, 4))[0], KEY, (2, 3, 3, 2))
    _raises(ValueError, r"stax\.Flatten: input_shape", stax.Flatten[0], KEY, ())
    _raises(ValueError, r"stax\.FanInConcat: input_shape .* must agree",
            stax.FanInConcat()[0], KEY, [(2, 3), (3, 3)])
    _raises(TypeError, r"stax\.FanInSum: input_shape must be a sequence of shapes",
            stax.FanInSum[0], KEY, (2, 3))
    _raises(ValueError, r"stax\.parallel: input_shape must hold 2 shapes",
            stax.parallel(stax.Relu, stax.Tanh)[0], KEY, [(2, 3)])
    _raises(TypeError, r"stax\.serial: layer 1 .*call the constructor", stax.serial,
            stax.Relu, stax.Dense)
    _raises(ValueError, r"stax\.Dropout: rate", stax.Dropout, 1.5)


def test_bad_apply_inputs_name_the_layer():
    _, params = stax.Dense(3)[0](KEY, (2, 4))
    _raises(ValueError, r"stax\.Dense: inputs of shape \(2, 5\) do not fit",
            stax.Dense(3)[1], params, jnp.ones((2, 5)))
    _, params = stax.Conv(2, (2, 2))[0](KEY, (1, 4, 4, 3))
    _raises(ValueError, r"stax\.Conv: inputs of shape", stax.Conv(2, (2, 2))[1], params,
            jnp.ones((1, 4, 4, 2)))
    _raises(ValueError, r"stax\.Dropout: apply_fun needs a PRNG key", stax.Dropout(0.5)[1], (),
            jnp.ones(3))
    _raises(ValueError, r"stax\.parallel: 2 layers need", stax.parallel(stax.Relu, stax.Tanh)[1],
            ((), ()), [jnp.ones(2)])
    _raises(ValueError, r"stax\.MaxPool: inputs must have 4 dimensions", stax.MaxPool((2, 2))[1],
            (), jnp.ones((3, 3)))


def test_bad_optimizer_arguments():
    init_fun, update_fun, get_params = opt.sgd(0.1)
    state = init_fun({"w": jnp.ones(2)})
    _raises(TypeError, r"optimizers\.sgd: update_fun's grads must have the structure",
            update_fun, 0, {"v": jnp.ones(2)}, state)
    _raises(TypeError, r"optimizers\.sgd: get_params's opt_state must be the OptimizerState",
            get_params, {"w": jnp.ones(2)})
    _raises(TypeError, r"optimizers: step_size must be a scalar or a schedule", opt.adam,
            np.ones(2))
    _raises(ValueError, r"piecewise_constant: values must have one entry more",
            opt.piecewise_constant, [1, 2], [0.1, 0.2])
    _raises(ValueError, r"piecewise_constant: boundaries and values must be sequences",
            opt.piecewise_constant, 1, [0.1, 0.2])
    _raises(TypeError, r"pack_optimizer_state: every leaf must be a JoinPoint",
            opt.pack_optimizer_state, {"w": np.ones(2)})
    _raises(TypeError, r"unpack_optimizer_state: opt_state must be an OptimizerState",
            opt.unpack_optimizer_state, {"w": np.ones(2)})
