"""optax's remaining top-level names and small submodules in fungrad.optim, against optax on
the same inputs: numerics and linear algebra (``optim.numerics``), ``projections``,
``second_order``, ``perturbations`` (same keys, so the same draws), ``assignment`` and
``microbatching``. Values, dtypes, weak types and shapes, eager and under ``fungrad.jit``;
gradients where the functions are meant to be differentiated; errors for bad input."""
import functools
import inspect
import warnings

import jax
import jax.numpy as jnp_ref
import numpy as np
import optax
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, tree
from fungrad.optim import (assignment, microbatching, numerics, perturbations, projections,
                           second_order)
from fungrad.optim import _base, transform, tree_utils
from harness import GRAD_TOL, QUICK_COMPILE, assert_same, compare, to_fg, to_jax, tol
from harness import float_dtypes  # noqa: F401  (the dtype fixture)

RNG = np.random.default_rng(0)


def _normal(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _tree():
    return {"w": _normal(3, 2), "b": _normal(4), "s": _normal()}


def _spd(n):
    m = _normal(n, n)
    return (m @ m.T + n * np.eye(n)).astype(np.float32)


# --------------------------------------------------------------------------- the surface

OPTAX_TOP_LEVEL = [
    "AdaptiveGradClipState", "AddDecayedWeightsState", "ClipByGlobalNormState", "ClipState",
    "MaskOrFn", "NonNegativeParamsState", "OptState", "Params", "ScalarOrSchedule",
    "ScaleByRStdDevState", "ScaleByTrustRatioState", "ScaleState", "Schedule",
    "ShouldSkipUpdateFunction", "Updates", "ZeroNansState", "bias_correction",
    "matrix_inverse_pth_root", "microbatch", "multi_normal", "nnls", "power_iteration",
    "safe_increment", "safe_int32_increment", "safe_norm", "safe_root_mean_squares",
    "scale_gradient", "skip_large_updates", "tree_map_params", "update_infinity_moment",
    "update_moment", "update_moment_per_elem_norm"]
SUBMODULES = {"projections": projections, "second_order": second_order,
              "perturbations": perturbations, "assignment": assignment,
              "microbatching": microbatching}


def test_top_level_names_are_exported():
    assert set(OPTAX_TOP_LEVEL) <= set(numerics.__all__) <= set(optim.__all__)
    assert all(hasattr(optax, name) for name in OPTAX_TOP_LEVEL)
    for name in numerics.__all__:
        assert getattr(optim, name) is getattr(numerics, name), name


@pytest.mark.parametrize("name", sorted(SUBMODULES))
def test_submodules_export_optax_names(name):
    module = SUBMODULES[name]
    ref = {n for n in dir(getattr(optax, name)) if not n.startswith("_")}
    assert getattr(optim, name) is module
    assert set(module.__all__) == ref
    for n in module.__all__:
        assert getattr(module, n).__doc__, f"{name}.{n} has no docstring"


def test_aliases_are_the_existing_objects():
    for name in ("AdaptiveGradClipState", "AddDecayedWeightsState", "ClipByGlobalNormState",
                 "ClipState", "NonNegativeParamsState", "ScaleByTrustRatioState", "ScaleState"):
        assert getattr(optim, name) is optim.EmptyState
    for name in ("OptState", "Params", "ScalarOrSchedule", "Schedule", "Updates"):
        assert getattr(optim, name) is getattr(_base, name)
    assert optim.ScaleByRStdDevState is transform.ScaleByRStdDevState
    assert optim.ZeroNansState is transform.ZeroNansState
    assert optim.bias_correction is tree_utils.tree_bias_correction
    assert optim.update_moment is tree_utils.tree_update_moment
    assert optim.update_moment_per_elem_norm is tree_utils.tree_update_moment_per_elem_norm
    assert optim.update_infinity_moment is tree_utils.tree_update_infinity_moment
    assert optim.tree_map_params is tree_utils.tree_map_params
    assert optim.safe_int32_increment is optim.safe_increment
    assert optim.microbatch is microbatching.microbatch


def test_states_are_the_classes_transformations_return():
    params = {"w": jnp.ones(3)}
    stateless = [optim.adaptive_grad_clip(1.0), optim.add_decayed_weights(0.1),
                 optim.clip_by_global_norm(1.0), optim.clip(1.0),
                 optim.keep_params_nonnegative(), optim.scale_by_trust_ratio(),
                 optim.scale(2.0)]
    for tx in stateless:
        assert isinstance(tx.init(params), optim.EmptyState)
    assert isinstance(optim.scale_by_stddev().init(params), optim.ScaleByRStdDevState)
    assert isinstance(optim.zero_nans().init(params), optim.ZeroNansState)
    assert optim.ScaleByRStdDevState._fields == optax.ScaleByRStdDevState._fields
    assert optim.ZeroNansState._fields == optax.ZeroNansState._fields


def _plain(value):
    return value is None or isinstance(value, (bool, int, float, str, tuple))


SIGNATURES = [(optim, optax, n) for n in OPTAX_TOP_LEVEL
              if inspect.isfunction(getattr(optax, n))]
SIGNATURES += [(module, getattr(optax, name), n) for name, module in SUBMODULES.items()
               for n in module.__all__ if inspect.isfunction(getattr(module, n))]


@pytest.mark.parametrize("fg_module, ox_module, name", SIGNATURES,
                         ids=[f"{m.__name__.split('.')[-1]}.{n}" for m, _, n in SIGNATURES])
def test_signatures_match_optax(fg_module, ox_module, name):
    """Parameter names, kinds and (plain) defaults as optax's."""
    fg = inspect.signature(getattr(fg_module, name)).parameters
    ox = inspect.signature(getattr(ox_module, name)).parameters
    assert list(fg) == list(ox)
    for p in ox:
        assert fg[p].kind == ox[p].kind, p
        if _plain(ox[p].default):
            assert fg[p].default == ox[p].default, p


# --------------------------------------------------------------------------- safe numerics

SAFE_NORM = [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"ord": 1, "axis": 1},
             {"ord": "fro"}, {"ord": np.inf, "axis": (0, 1)}, {"keepdims": True}]


@pytest.mark.parametrize("kw", SAFE_NORM, ids=[str(kw) for kw in SAFE_NORM])
def test_safe_norm(kw):
    x = _normal(3, 4)
    x[1] = 0.0  # a row under min_norm
    compare(lambda x: optim.safe_norm(x, 0.5, **kw),
            lambda x: optax.safe_norm(x, 0.5, **kw), x)


def test_safe_norm_and_rms_gradients_at_zero_are_finite():
    for x in (np.zeros(3, np.float32), _normal(3)):
        for name in ("safe_norm", "safe_root_mean_squares"):
            fg_fn = lambda x, name=name: getattr(optim, name)(x, 1e-3)  # noqa: E731
            ox_fn = lambda x, name=name: getattr(optax, name)(x, 1e-3)  # noqa: E731
            g = fungrad.grad(fg_fn)(*to_fg([x]))
            assert np.all(np.isfinite(np.asarray(g)))
            assert_same(g, jax.grad(ox_fn)(*to_jax([x])), GRAD_TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_safe_root_mean_squares(dtype):
    x = (_normal(5) + (1j * _normal(5) if dtype == np.complex64 else 0)).astype(dtype)
    compare(lambda x: optim.safe_root_mean_squares(x, 0.1),
            lambda x: optax.safe_root_mean_squares(x, 0.1), x)
    compare(lambda x: optim.safe_root_mean_squares(x, 10.0),
            lambda x: optax.safe_root_mean_squares(x, 10.0), x)


COUNTS = [np.int32(5), np.int32(2 ** 31 - 1), np.int8(127), np.uint8(3), np.float32(3.0),
          np.float16(65504.0)]


@pytest.mark.parametrize("count", COUNTS, ids=[f"{c.dtype}-{c}" for c in COUNTS])
def test_safe_increment(count):
    compare(optim.safe_increment, optax.safe_increment, np.asarray(count))


def test_safe_increment_of_python_numbers():
    for count in (7, 2.5):
        assert_same(optim.safe_increment(count), optax.safe_increment(count))


@pytest.mark.parametrize("count", [np.array(True), np.array(1 + 1j, np.complex64)])
def test_safe_increment_rejects_other_dtypes(count):
    with pytest.raises(ValueError, match=r"safe_increment: .*`count`"):
        optim.safe_increment(jnp.asarray(count))


# --------------------------------------------------------------------------- moments

def test_moment_aliases_match_optax():
    g, m = _tree(), tree.map(np.abs, _tree())
    for name, extra in (("update_moment", (0.9, 2)), ("update_moment_per_elem_norm", (0.9, 3)),
                        ("update_infinity_moment", (0.9, 1e-3))):
        compare(lambda g, m: getattr(optim, name)(g, m, *extra),
                lambda g, m: getattr(optax, name)(g, m, *extra), g, m)
    compare(lambda m, c: optim.bias_correction(m, 0.9, c),
            lambda m, c: optax.bias_correction(m, 0.9, c), m, np.int32(3))


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("scale", [0.5, -2.0, 0.0, 1.0])
def test_scale_gradient(scale):
    x = _tree()

    def loss(lib, opt):
        return lambda x: lib.sum(opt.scale_gradient(x, scale)["w"] ** 2
                                 + opt.scale_gradient(x, scale)["b"].sum())

    assert_same(optim.scale_gradient(to_fg(x), scale), to_jax(x))
    ref = jax.grad(loss(jnp_ref, optax))(to_jax(x))
    assert_same(fungrad.grad(loss(jnp, optim))(to_fg(x)), ref, GRAD_TOL)
    assert_same(fungrad.jit(fungrad.grad(loss(jnp, optim)))(to_fg(x)), ref, GRAD_TOL)


@pytest.mark.parametrize("max_squared_norm", [1.0, 1e3])
def test_skip_large_updates(max_squared_norm):
    compare(lambda u: optim.skip_large_updates(u, 0, None, max_squared_norm),
            lambda u: optax.skip_large_updates(u, 0, None, max_squared_norm), _tree())


def test_skip_large_updates_skips_nan():
    updates = {"a": np.array([np.nan, 1.0], np.float32)}
    compare(lambda u: optim.skip_large_updates(u, 3, None, 1e9),
            lambda u: optax.skip_large_updates(u, 3, None, 1e9), updates)
    assert bool(optim.skip_large_updates(to_fg(updates), 3, None, 1e9)[0])


# --------------------------------------------------------------------------- linear algebra

POWER = {
    "default": ({}, {}),
    "num_iters": ({"num_iters": 3}, {"num_iters": 3}),
    "tolerance": ({"error_tolerance": 1e-2}, {"error_tolerance": 1e-2}),
    "raw_key": ({"key": random.PRNGKey(7)}, {"key": jax.random.PRNGKey(7)}),
    "typed_key": ({"key": random.key(7), "num_iters": 2},
                  {"key": jax.random.key(7), "num_iters": 2}),
}


@pytest.mark.parametrize("name", POWER)
def test_power_iteration_of_a_matrix(name):
    fg_kw, ox_kw = POWER[name]
    m = _spd(5)
    ref = optax.power_iteration(*to_jax([m]), **ox_kw)
    assert_same(optim.power_iteration(*to_fg([m]), **fg_kw), ref)
    assert_same(fungrad.jit(lambda m: optim.power_iteration(m, **fg_kw))(*to_fg([m])), ref)


def test_power_iteration_of_a_function_on_trees():
    v0, scales = _tree(), {"w": np.float32(2.0), "b": np.float32(-3.0), "s": np.float32(0.5)}

    def run(lib, v0, scales):
        return lib.power_iteration(lambda v: tree.map(lambda x, s: s * x, v, scales), v0=v0,
                                   num_iters=50)
    compare(functools.partial(run, optim), functools.partial(run, optax), v0, scales)


def test_power_iteration_needs_v0_for_a_function():
    with pytest.raises(ValueError, match=r"power_iteration: `v0`"):
        optim.power_iteration(lambda v: v)


@pytest.mark.parametrize("p", [1, 2, 4, 8])
def test_matrix_inverse_pth_root(p):
    compare(lambda m: optim.matrix_inverse_pth_root(m, p),
            lambda m: optax.matrix_inverse_pth_root(m, p), _spd(6))
    root, _ = optim.matrix_inverse_pth_root(16.0 * jnp.eye(4), p)
    np.testing.assert_allclose(np.asarray(root), np.eye(4) * 16.0 ** (-1 / p), *tol(np.float32))


def test_matrix_inverse_pth_root_of_a_scalar_matrix():
    m = np.array([[4.0]], np.float32)
    assert_same(optim.matrix_inverse_pth_root(*to_fg([m]), 2),
                optax.matrix_inverse_pth_root(*to_jax([m]), 2))


NNLS = {
    "vector": ((6, 4), (6,), {}),
    "matrix": ((6, 4), (6, 3), {}),
    "wide": ((3, 5), (3,), {"unroll": 4}),
    "bound": ((6, 4), (6,), {"L": 100.0}),
}


@pytest.mark.parametrize("name", NNLS)
def test_nnls(name):
    a_shape, b_shape, kw = NNLS[name]
    compare(lambda a, b: optim.nnls(a, b, 200, **kw),
            lambda a, b: optax.nnls(a, b, 200, **kw), _normal(*a_shape), _normal(*b_shape))


def test_nnls_solution_is_non_negative_and_optimal():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    x = np.asarray(optim.nnls(*to_fg([a, np.array([5.0, 6.0], np.float32)]), 1000))
    np.testing.assert_allclose(x, np.array([0.0, 1.7], np.float32), *tol(np.float32))


@pytest.mark.parametrize("a_shape, b_shape, argument", [((6,), (6,), "A"),
                                                        ((6, 4), (5,), "b"),
                                                        ((6, 4), (6, 2, 2), "b")])
def test_nnls_errors_name_the_argument(a_shape, b_shape, argument):
    with pytest.raises(ValueError, match=rf"nnls: `{argument}`"):
        optim.nnls(jnp.ones(a_shape), jnp.ones(b_shape), 10)


# --------------------------------------------------------------------------- multi_normal

def test_multi_normal():
    loc, log_scale, x = _normal(3), _normal(3) * 0.1, _normal(5, 3)
    fg = optim.multi_normal(*to_fg([loc, log_scale]))
    ox = optax.multi_normal(*to_jax([loc, log_scale]))
    assert_same(fg.sample((4, 2), random.PRNGKey(1)), ox.sample((4, 2), jax.random.PRNGKey(1)))
    assert_same(fungrad.jit(lambda k: fg.sample((4,), k))(random.PRNGKey(2)),
                ox.sample((4,), jax.random.PRNGKey(2)))
    assert_same(fg.log_prob(*to_fg([x])), ox.log_prob(*to_jax([x])))
    assert_same(fg.params, ox.params)
    assert_same(fg.log_scale, ox.log_scale)


def test_multi_normal_log_prob_gradient():
    loc, log_scale, x = _normal(3), _normal(3) * 0.1, _normal(5, 3)

    def loss(lib, xs):
        return lambda loc, log_scale: lib.multi_normal(loc, log_scale).log_prob(xs).sum()
    ref = jax.grad(loss(optax, *to_jax([x])), argnums=(0, 1))(*to_jax([loc, log_scale]))
    assert_same(fungrad.grad(loss(optim, *to_fg([x])), argnums=(0, 1))(*to_fg([loc, log_scale])),
                ref, GRAD_TOL)


# --------------------------------------------------------------------------- projections

def _pair():
    return _tree(), _tree()


PROJECTIONS = {
    "non_negative": (lambda m, x: m.projection_non_negative(x), 1),
    "box_scalars": (lambda m, x: m.projection_box(x["w"], -0.5, 0.5), 1),
    "box_trees": (lambda m, x, a: m.projection_box(x, tree.map(lambda v: -abs(v), a),
                                                   tree.map(abs, a)), 2),
    "hypercube": (lambda m, x: m.projection_hypercube(x["b"]), 1),
    "hypercube_scale": (lambda m, x: m.projection_hypercube(x["w"], 0.3), 1),
    "simplex": (lambda m, x: m.projection_simplex(x), 1),
    "simplex_scale": (lambda m, x: m.projection_simplex(x, 3.0), 1),
    "l1_sphere": (lambda m, x: m.projection_l1_sphere(x, 2.0), 1),
    "l1_ball_outside": (lambda m, x: m.projection_l1_ball(x, 2.0), 1),
    "l1_ball_inside": (lambda m, x: m.projection_l1_ball(x, 100.0), 1),
    "l2_sphere": (lambda m, x: m.projection_l2_sphere(x, 2.0), 1),
    "l2_ball_outside": (lambda m, x: m.projection_l2_ball(x, 2.0), 1),
    "l2_ball_inside": (lambda m, x: m.projection_l2_ball(x, 100.0), 1),
    "linf_ball": (lambda m, x: m.projection_linf_ball(x, 0.3), 1),
    "vector": (lambda m, x, a: m.projection_vector(x, a), 2),
    "hyperplane": (lambda m, x, a: m.projection_hyperplane(x, a, 0.7), 2),
    "halfspace_outside": (lambda m, x, a: m.projection_halfspace(x, a, -100.0), 2),
    "halfspace_inside": (lambda m, x, a: m.projection_halfspace(x, a, 100.0), 2),
}


@pytest.mark.parametrize("name", PROJECTIONS)
def test_projection_values(name):
    fn, arity = PROJECTIONS[name]
    compare(functools.partial(fn, projections), functools.partial(fn, optax.projections),
            *_pair()[:arity])


@pytest.mark.parametrize("name", PROJECTIONS)
def test_projection_gradients(name):
    """The gradient of a weighted sum of the projection, with respect to every input tree
    (the simplex's through its custom JVP, in reverse mode by transposition)."""
    fn, arity = PROJECTIONS[name]
    args = _pair()[:arity]
    out = jax.eval_shape(functools.partial(fn, optax.projections), *to_jax(args))
    weights = jax.tree.map(lambda o: _normal(*o.shape), out)

    def loss(lib, m):
        def f(*a):
            products = [lib.sum(p * w) for p, w in zip(tree.leaves(fn(m, *a)),
                                                       tree.leaves(weights))]
            return sum(products)
        return f
    argnums = tuple(range(arity))
    ref = jax.grad(loss(jnp_ref, optax.projections), argnums)(*to_jax(args))
    assert_same(fungrad.grad(loss(jnp, projections), argnums)(*to_fg(args)), ref, GRAD_TOL)
    assert_same(fungrad.jit(fungrad.grad(loss(jnp, projections), argnums))(*to_fg(args)), ref,
                GRAD_TOL)


def test_projection_simplex_jvp():
    x, t = _normal(6), _normal(6)
    ref = jax.jvp(optax.projections.projection_simplex, *to_jax([(x,), (t,)]))
    assert_same(fungrad.jvp(projections.projection_simplex, *to_fg([(x,), (t,)])), ref,
                GRAD_TOL)


def test_projection_simplex_of_mixed_leaves():
    data = {"w": np.array([2.5, 3.2], np.float32), "b": 0.5}
    out = projections.projection_simplex(to_fg(data))
    assert_same(out, optax.projections.projection_simplex(to_jax(data)))
    np.testing.assert_allclose(float(tree_utils.tree_sum(out)), 1.0, *tol(np.float32))


@pytest.mark.parametrize("name", ["projection_vector", "projection_hyperplane",
                                  "projection_halfspace"])
def test_projections_onto_a_tree_check_its_structure(name):
    args = (0.0,) if name != "projection_vector" else ()
    with pytest.raises(ValueError, match=rf"{name}: `a` must have the tree structure of `x`"):
        getattr(projections, name)({"w": jnp.ones(2)}, {"v": jnp.ones(2)}, *args)


# --------------------------------------------------------------------------- second order

def _loss(lib):
    return lambda p, x, y: lib.sum((lib.tanh(x @ p["w"] + p["b"]) - y) ** 2)


def _second_order_args():
    return {"w": _normal(3, 2), "b": _normal(2)}, _normal(5, 3), _normal(5, 2)


SECOND_ORDER = {
    "hvp": lambda m, lib, p, x, y, v: m.hvp(_loss(lib), v, p, x, y),
    "hessian_diag": lambda m, lib, p, x, y, v: m.hessian_diag(_loss(lib), p, x, y),
    "fisher_diag": lambda m, lib, p, x, y, v: m.fisher_diag(_loss(lib), p, x, y),
}


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order(name):
    fn = SECOND_ORDER[name]
    args = (*_second_order_args(), _normal(8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ref = fn(optax.second_order, jnp_ref, *to_jax(args))
        compare(functools.partial(fn, second_order, jnp),
                functools.partial(fn, optax.second_order, jnp_ref), *args, ref_out=ref)


def test_second_order_hessian_diag_is_the_hessians():
    p, x, y = _second_order_args()
    flat, unravel = fungrad.flatten_util.ravel_pytree(to_fg(p))
    full = fungrad.hessian(lambda f: _loss(jnp)(unravel(f), *to_fg([x, y])))(flat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        diag = second_order.hessian_diag(_loss(jnp), *to_fg([p, x, y]))
    np.testing.assert_allclose(np.asarray(diag), np.diag(np.asarray(full)), *tol(np.float32))


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_warns_as_deprecated(name):
    args = to_fg([*_second_order_args(), _normal(8)])
    with pytest.warns(DeprecationWarning, match=rf"The function {name} is deprecated"):
        SECOND_ORDER[name](second_order, jnp, *args)


# --------------------------------------------------------------------------- perturbations

def _perturbed_targets(lib, nn):
    def fun(x):
        return {"relu_sum": lib.sum(lib.maximum(x["a"], 0.0)),
                "one_hot": nn.one_hot(lib.argmax(x["a"]), 3) * lib.sum(x["b"])}
    return fun


PERTURBED = [(noise, use_baseline) for noise in ("Gumbel", "Normal")
             for use_baseline in (True, False)]


def _perturbed(noise, use_baseline):
    x = {"a": np.array([0.1, -0.2, 0.05], np.float32), "b": _normal(2)}
    fg = perturbations.make_perturbed_fun(_perturbed_targets(jnp, fungrad.nn), 64, 0.5,
                                          getattr(perturbations, noise)(), use_baseline)
    ox = optax.perturbations.make_perturbed_fun(_perturbed_targets(jnp_ref, jax.nn), 64, 0.5,
                                                getattr(optax.perturbations, noise)(),
                                                use_baseline)
    return fg, ox, x


@pytest.mark.parametrize("noise, use_baseline", PERTURBED)
def test_perturbed_fun_values(noise, use_baseline):
    fg, ox, x = _perturbed(noise, use_baseline)
    for fg_key, ox_key in ((random.key(0), jax.random.key(0)),
                           (random.PRNGKey(1), jax.random.PRNGKey(1))):
        ref = ox(ox_key, to_jax(x))
        assert_same(fg(fg_key, to_fg(x)), ref)
        assert_same(fungrad.jit(fg)(fg_key, to_fg(x)), ref)


@pytest.mark.parametrize("noise, use_baseline", PERTURBED)
def test_perturbed_fun_derivatives(noise, use_baseline):
    """Gradients, Jacobians and Hessians of the estimate: the score-function estimates the
    magic box gives through ordinary autodiff.

    jax's three derivatives run as one jitted program, compiled quickly (QUICK_COMPILE):
    eagerly, jax compiles each of the many primitives of the noise's sampling and of its
    derivatives, seconds for the first case. They agree with the eager ones to an ulp or two
    (bit for bit for Gumbel's)."""
    fg, ox, x = _perturbed(noise, use_baseline)
    fg_key, ox_key = random.key(3), jax.random.key(3)
    relu = lambda f, k: lambda x: f(k, x)["relu_sum"]  # noqa: E731
    hot = lambda f, k: lambda x: f(k, x)["one_hot"]  # noqa: E731

    @functools.partial(jax.jit, compiler_options=QUICK_COMPILE)
    def ref(x):
        return (jax.grad(relu(ox, ox_key))(x), jax.jacrev(hot(ox, ox_key))(x),
                jax.hessian(relu(ox, ox_key))(x))
    grad, jacobian, hessian = ref(to_jax(x))
    assert_same(fungrad.grad(relu(fg, fg_key))(to_fg(x)), grad, GRAD_TOL)
    assert_same(fungrad.jit(fungrad.jacrev(hot(fg, fg_key)))(to_fg(x)), jacobian, GRAD_TOL)
    assert_same(fungrad.hessian(relu(fg, fg_key))(to_fg(x)), hessian, GRAD_TOL)


@pytest.mark.parametrize("noise", ["Gumbel", "Normal"])
def test_noise_distributions(noise):
    fg, ox = getattr(perturbations, noise)(), getattr(optax.perturbations, noise)()
    assert_same(fg.sample(random.key(5), (4, 2)), ox.sample(jax.random.key(5), (4, 2)))
    assert_same(fg.sample(random.key(5)), ox.sample(jax.random.key(5)))
    compare(fg.log_prob, ox.log_prob, _normal(3, 2))


# --------------------------------------------------------------------------- assignment

ASSIGNMENT_SHAPES = [(4, 3), (3, 4), (5, 5), (1, 4), (6, 2), (1, 1)]
SOLVERS = ["hungarian_algorithm", "base_hungarian_algorithm"]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", ASSIGNMENT_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_assignment_matches_optax(solver, shape, dtype):
    cost = (RNG.random(shape) * 10).astype(dtype)
    compare(getattr(assignment, solver), getattr(optax.assignment, solver), cost)


@pytest.mark.parametrize("solver", SOLVERS)
def test_assignment_is_optimal(solver):
    cost = np.array([[90, 80, 75, 70], [35, 85, 55, 65], [125, 95, 90, 95],
                     [45, 110, 95, 115], [50, 100, 90, 100]])
    i, j = getattr(assignment, solver)(jnp.asarray(cost))
    assert int(jnp.asarray(cost)[i, j].sum()) == 265
    assert len(set(np.asarray(i).tolist())) == len(set(np.asarray(j).tolist())) == 4


@pytest.mark.parametrize("solver", SOLVERS)
def test_assignment_of_empty_and_batched_matrices(solver):
    fg, ox = getattr(assignment, solver), getattr(optax.assignment, solver)
    for shape in ((0, 3), (3, 0)):
        assert_same(fg(jnp.zeros(shape)), ox(jnp_ref.zeros(shape)))
    batch = RNG.random((3, 5, 4)).astype(np.float32)
    assert_same(fungrad.vmap(fg)(*to_fg([batch])), jax.vmap(ox)(*to_jax([batch])))


@pytest.mark.parametrize("solver", SOLVERS)
def test_assignment_needs_a_matrix(solver):
    with pytest.raises(ValueError, match=rf"{solver}: `cost_matrix` must be a matrix"):
        getattr(assignment, solver)(jnp.ones(3))


# --------------------------------------------------------------------------- microbatching

def _accumulation(lib, name):
    return getattr(lib.microbatching.AccumulationType, name)


def _microbatched(lib, acc, **kw):
    """``fun`` of a weight and two batch arguments (one by keyword), its mean accumulated by
    ``acc`` and its per-example output concatenated, by ``lib`` (optim or optax)."""
    mean = jnp.mean if lib is optim else jnp_ref.mean

    def fun(w, x, *, y):
        return {"m": mean(x * w, axis=0), "r": x * y}
    return lib.microbatching.microbatch(
        fun, 1, 2, {"m": _accumulation(lib, acc), "r": _accumulation(lib, "CONCAT")},
        argnames="y", in_axes=(0, 0), **kw)


@pytest.mark.parametrize("acc", ["SUM", "MEAN", "RUNNING_MEAN"])
@pytest.mark.parametrize("num_real", [None, 3])
def test_microbatch_accumulations(acc, num_real):
    x = _normal(8, 3)
    kw = {} if num_real is None else {"num_real_microbatches": num_real}
    compare(lambda w, x, y: _microbatched(optim, acc, **kw)(w, x, y=y),
            lambda w, x, y: _microbatched(optax, acc, **kw)(w, x, y=y), np.float32(2.0), x, x)


def test_microbatch_with_a_traced_number_of_microbatches():
    def run(m, lib):
        return lambda x, n: m.microbatch(lib.sum, 0, 2, num_real_microbatches=n)(x)
    compare(run(optim, jnp), run(optax, jnp_ref), np.arange(8, dtype=np.float32), np.int32(3))


def test_microbatch_of_integers_and_the_none_size():
    def fun(lib):
        return lambda x: (x + 1, lib.sum(3 * x))
    data = np.array([1, 2, 3, 4], np.int32)
    strategy = (_accumulation(optim, "CONCAT"), _accumulation(optim, "SUM"))
    ox_strategy = (_accumulation(optax, "CONCAT"), _accumulation(optax, "SUM"))
    compare(optim.microbatch(fun(jnp), 0, 2, strategy),
            optax.microbatch(fun(jnp_ref), 0, 2, ox_strategy), data)
    f = fun(jnp)
    assert optim.microbatch(f, 0, None) is f


def test_microbatch_with_a_custom_accumulator():
    maximum = microbatching.Accumulator(
        init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        update=lambda carry, value, _: jnp.maximum(carry, value),
        finalize=lambda carry: carry, aggregate=lambda v: jnp.max(v, axis=0))
    x = _normal(6, 2)
    out = optim.microbatch(lambda x: jnp.max(x, axis=0), 0, 3, maximum)(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(out), x.max(axis=0))


def test_reshape_batch_axis():
    x = {"a": np.arange(24).reshape(2, 12), "b": np.arange(12.0, dtype=np.float32)[None]}
    compare(lambda x: microbatching.reshape_batch_axis(x, 3, axis=1),
            lambda x: optax.microbatching.reshape_batch_axis(x, 3, axis=1), x)


@pytest.mark.parametrize("acc", ["CONCAT", "MEAN", "SUM"])
def test_micro_vmap(acc):
    x = _normal(8, 3)
    compare(microbatching.micro_vmap(lambda x, s: x * s, in_axes=(0, None), microbatch_size=2,
                                     accumulator=_accumulation(optim, acc)),
            optax.microbatching.micro_vmap(lambda x, s: x * s, in_axes=(0, None),
                                           microbatch_size=2,
                                           accumulator=_accumulation(optax, acc)),
            x, np.float32(3.0))
    compare(microbatching.micro_vmap(lambda x: x ** 2), optax.microbatching.micro_vmap(
        lambda x: x ** 2), np.arange(8, dtype=np.int32))


@pytest.mark.parametrize("keep_batch_dim", [True, False])
@pytest.mark.parametrize("microbatch_size", [None, 2])
def test_micro_grad(keep_batch_dim, microbatch_size):
    def loss(lib):
        def f(p, x, y):
            err = 0.5 * (x @ p - y) ** 2
            return (lib.mean(err) if keep_batch_dim else err), lib.sum(x)
        return f

    def run(m, lib, p, x, y):
        return m.microbatching.micro_grad(
            loss(lib), has_aux=True, batch_argnums=(1, 2), keep_batch_dim=keep_batch_dim,
            microbatch_size=microbatch_size, transform_fn=lambda g: (g, g ** 2),
            metrics_fn=lib.linalg.norm)(p, x, y)
    x = _normal(8, 3)
    compare(functools.partial(run, optim, jnp), functools.partial(run, optax, jnp_ref),
            _normal(3), x, x[:, 0])


MICROBATCH_ERRORS = [
    (lambda: optim.microbatch(lambda a: a, 0, 3)(jnp.ones(4)), r"divisible by microbatch_size"),
    (lambda: optim.microbatch(lambda a, b: a, (0, 1), 2)(jnp.ones(4), jnp.ones(6)),
     r"batch axes must have one size"),
    (lambda: optim.microbatch(lambda a: a, 0, 2, _accumulation(optim, "MEAN"))(jnp.arange(4)),
     r"MEAN and RUNNING_MEAN accumulators need floating-point"),
    (lambda: optim.microbatch(lambda a: a, 0, 2, "sum")(jnp.ones(4)), r"unknown `accumulator`"),
]


@pytest.mark.parametrize("call, message", MICROBATCH_ERRORS)
def test_microbatch_errors(call, message):
    with pytest.raises(ValueError, match=rf"microbatch: .*{message}"):
        call()


def test_micro_vmap_out_axes_must_be_zero():
    with pytest.raises(NotImplementedError, match=r"micro_vmap: `out_axes`"):
        microbatching.micro_vmap(lambda a: a, out_axes=1)


# --------------------------------------------------------------------------- float64

WIDTHS = {
    "safe_norm": (lambda m, x, a: m.safe_norm(x, 0.5, axis=1), None),
    "power_iteration": (lambda m, x, a: m.power_iteration(x @ x.T), None),
    "matrix_inverse_pth_root": (lambda m, x, a: m.matrix_inverse_pth_root(x @ x.T + 4 * a, 2),
                                None),
    "nnls": (lambda m, x, a: m.nnls(x, a[0], 100), None),
    "projection_simplex": (lambda m, x, a: m.projection_simplex({"x": x, "a": a}),
                           "projections"),
    "projection_l1_ball": (lambda m, x, a: m.projection_l1_ball({"x": x, "a": a}),
                           "projections"),
    "projection_hyperplane": (lambda m, x, a: m.projection_hyperplane(x, a, 1.0),
                              "projections"),
    "hungarian_algorithm": (lambda m, x, a: m.hungarian_algorithm(x), "assignment"),
    "base_hungarian_algorithm": (lambda m, x, a: m.base_hungarian_algorithm(x), "assignment"),
}


@pytest.mark.parametrize("name", WIDTHS)
def test_float_widths(name, dtype):
    """float32, and float64 with 64-bit dtypes on in both libraries. optax's functions run
    jitted (one compilation each, not one per primitive and dtype): they agree with their
    eager results to an ulp (power_iteration, projection_hyperplane) or bit for bit."""
    fn, module = WIDTHS[name]
    fg, ox = (optim, optax) if module is None else (getattr(optim, module),
                                                   getattr(optax, module))
    x = _normal(4, 4, dtype=dtype)
    a = np.eye(4, dtype=dtype) + 0.1 * _normal(4, 4, dtype=dtype)
    compare(functools.partial(fn, fg), functools.partial(fn, ox), x, a, jit_ref=True)
