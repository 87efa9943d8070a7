"""The transformation API against jax: pytrees in and out (dicts, tuples, namedtuples,
None leaves), has_aux, argnums, float0 tangents of integer inputs, and the errors
(non-scalar grad, integer inputs, tangent mismatches, leaked tracers, Python control
flow on traced values)."""
from collections import namedtuple

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import fungrad
import fungrad.numpy as fnp
from fungrad import errors
from harness import GRAD_TOL, assert_same, to_fg, to_jax

RNG = np.random.default_rng(0)
Point = namedtuple("Point", ["x", "y"])


def r(*shape):
    return RNG.uniform(-1, 1, shape).astype(np.float32)


# A function of a pytree (dict holding a namedtuple, a tuple and a None leaf) returning a
# pytree (namedtuple holding a dict and a tuple), written once for both libraries.
def tree_fn(lib):
    def f(p, scale):
        a = lib.sin(p["pt"].x) * p["pt"].y
        b = lib.tanh(p["w"][0] @ p["w"][1]) * scale
        return Point(x={"a": a, "sum": lib.sum(a) + lib.sum(b)}, y=(b, None, b * 2.0))
    return f


def scalar_fn(lib):
    f = tree_fn(lib)
    return lambda p, scale: f(p, scale).x["sum"] * scale


PARAMS = {"pt": Point(r(3), r(3)), "w": (r(2, 3), r(3, 2)), "none": None}
SCALE = np.float32(1.5)
TANGENTS = {"pt": Point(r(3), r(3)), "w": (r(2, 3), r(3, 2)), "none": None}


def run(make):
    """make(lib, api) -> function of (params, scale); run it for both libraries and compare.
    The jax reference is jitted: one compilation instead of eager per-op compilations."""
    got = make(fnp, fungrad)(*to_fg((PARAMS, SCALE)))
    want = jax.jit(make(jnp, jax))(*to_jax((PARAMS, SCALE)))
    assert_same(got, want, GRAD_TOL, check_weak=False)


def with_aux(f, lib):
    return lambda p, s: (f(p, s), {"aux": lib.cos(p["pt"].x), "n": None})


API_CASES = {
    "value": lambda lib, api: tree_fn(lib),
    "jvp": lambda lib, api: lambda p, s: api.jvp(lambda q: tree_fn(lib)(q, s), (p,),
                                                 (to_lib(lib, TANGENTS),)),
    "jvp_has_aux": lambda lib, api: lambda p, s: api.jvp(
        lambda q: with_aux(tree_fn(lib), lib)(q, s), (p,), (to_lib(lib, TANGENTS),), has_aux=True),
    "vjp": lambda lib, api: lambda p, s: api.vjp(tree_fn(lib), p, s)[1](
        tree_fn(lib)(p, s)),
    "vjp_has_aux": lambda lib, api: lambda p, s: (
        lambda out: (out[1](out[0]), out[2]))(api.vjp(with_aux(tree_fn(lib), lib), p, s,
                                                      has_aux=True)),
    "grad": lambda lib, api: api.grad(scalar_fn(lib)),
    "grad_argnums": lambda lib, api: api.grad(scalar_fn(lib), argnums=(0, 1)),
    "grad_has_aux": lambda lib, api: api.grad(with_aux(scalar_fn(lib), lib), has_aux=True),
    "value_and_grad": lambda lib, api: api.value_and_grad(scalar_fn(lib), argnums=(1, 0)),
    "value_and_grad_has_aux": lambda lib, api: api.value_and_grad(
        with_aux(scalar_fn(lib), lib), argnums=(0, 1), has_aux=True),
    "jacfwd": lambda lib, api: api.jacfwd(tree_fn(lib), argnums=(0, 1)),
    "jacfwd_has_aux": lambda lib, api: api.jacfwd(with_aux(tree_fn(lib), lib), has_aux=True),
    "jacrev": lambda lib, api: api.jacrev(tree_fn(lib), argnums=(0, 1)),
    "jacrev_has_aux": lambda lib, api: api.jacrev(with_aux(tree_fn(lib), lib), has_aux=True),
    "hessian": lambda lib, api: api.hessian(scalar_fn(lib)),
    "hessian_argnums": lambda lib, api: api.hessian(scalar_fn(lib), argnums=(0, 1)),
    "hessian_has_aux": lambda lib, api: api.hessian(with_aux(scalar_fn(lib), lib), has_aux=True),
    "linearize": lambda lib, api: lambda p, s: (
        lambda out: (out[0], out[1](to_lib(lib, TANGENTS))))(
            api.linearize(lambda q: tree_fn(lib)(q, s), p)),
    "linearize_has_aux": lambda lib, api: lambda p, s: (
        lambda out: (out[0], out[1](to_lib(lib, TANGENTS)), out[2]))(
            api.linearize(lambda q: with_aux(tree_fn(lib), lib)(q, s), p, has_aux=True)),
    "vmap": lambda lib, api: lambda p, s: api.vmap(tree_fn(lib), in_axes=(None, 0),
                                                   out_axes=Point(x={"a": None, "sum": 0}, y=1))(
        p, lib.stack([s, s * 2.0])),
}


def to_lib(lib, tree):
    return to_fg(tree) if lib is fnp else to_jax(tree)


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_on_pytrees(name):
    run(API_CASES[name])


# --------------------------------------------------------------------------- integer inputs

def int_fn(lib):
    return lambda x, n: (x * n, n * 2)


def test_jvp_with_integer_input_has_float0_tangents():
    x, n = r(3), np.arange(3, dtype=np.int32)
    t0 = np.zeros(3, jax.dtypes.float0)
    got = fungrad.jvp(int_fn(fnp), to_fg((x, n)), (to_fg(x), t0))
    want = jax.jvp(int_fn(jnp), to_jax((x, n)), (to_jax(x), t0))
    assert_same(got, want, GRAD_TOL)
    assert np.asarray(got[1][1]).dtype == jax.dtypes.float0


def test_vjp_and_grad_allow_int_give_float0_for_integer_inputs():
    x, n = r(3), np.arange(3, dtype=np.int32)
    ct = (r(3), np.zeros(3, jax.dtypes.float0))
    got = fungrad.vjp(int_fn(fnp), *to_fg((x, n)))[1](to_fg(ct))
    want = jax.vjp(int_fn(jnp), *to_jax((x, n)))[1](to_jax(ct))
    assert_same(got, want, GRAD_TOL)
    loss = lambda lib: lambda x, n: lib.sum(x * n)  # noqa: E731
    assert_same(fungrad.grad(loss(fnp), (0, 1), allow_int=True)(*to_fg((x, n))),
                jax.grad(loss(jnp), (0, 1), allow_int=True)(*to_jax((x, n))), GRAD_TOL)


def test_jacfwd_of_integer_outputs_is_integer_zeros():
    x = r(5)
    for make in (lambda lib: lambda v: (v * 2, lib.argmax(v)),
                 lambda lib: lambda v: lib.round(v).astype(lib.int32)):
        assert_same(fungrad.jacfwd(make(fnp))(to_fg(x)), jax.jacfwd(make(jnp))(to_jax(x)))


def test_linearized_function_checks_its_tangents():
    x = r(5)
    y, f_jvp = fungrad.linearize(fnp.sin, to_fg(x))
    for t in (np.ones(1, np.float32), 1.0, np.ones((2, 5), np.float32), np.ones(5, np.int32)):
        with pytest.raises(TypeError, match=r"linearize\(sin\): tangent \w+\[[\d,]*\] does not "
                                            r"match primal f32\[5\]"):
            f_jvp(t)
    assert_same(f_jvp(np.ones(5, np.float32)), jnp.cos(x), GRAD_TOL)


def test_python_control_flow_on_concrete_values_inside_grad():
    def f(x):
        if x > 0:  # concrete under grad (as in jax)
            return fnp.sin(x) * 2.0
        return x * x
    assert_same(fungrad.grad(f)(np.float32(0.3)), jax.grad(lambda x: jnp.sin(x) * 2.0)(
        np.float32(0.3)), GRAD_TOL, check_weak=False)
    assert_same(fungrad.grad(f)(np.float32(-0.3)), np.float32(-0.6), GRAD_TOL, check_weak=False)
    assert float(fungrad.grad(lambda x: x ** 3 if float(x) < 1 else x)(np.float32(0.5))) == 0.75


# --------------------------------------------------------------------------- errors

def test_grad_errors():
    with pytest.raises(TypeError, match="Output had shape: \\(3,\\)"):
        fungrad.grad(lambda x: x * 2.0)(to_fg(r(3)))
    with pytest.raises(TypeError, match="gradient only defined for scalar-output"):
        fungrad.grad(lambda x: (x, x))(1.0)
    for boxed in (lambda x: [x], lambda x: (x,), lambda x: {"a": x}):  # a scalar in a pytree
        with pytest.raises(TypeError, match=r"scalar-output functions. Output was [\[({]"):
            fungrad.grad(boxed)(1.0)
    with pytest.raises(TypeError, match="real- or complex-valued inputs.*int32"):
        fungrad.grad(lambda n: n * 2.0)(np.int32(3))
    with pytest.raises(TypeError, match="real-valued outputs.*int32"):
        fungrad.grad(lambda x: fungrad.lax.convert_element_type(fnp.sum(x), np.int32))(
            to_fg(r(3)))
    with pytest.raises(TypeError, match="argnums=2 requires at least 3 positional"):  # as jax
        fungrad.grad(lambda x: x, argnums=2)(1.0)
    with pytest.raises(TypeError, match="has_aux=True"):
        fungrad.grad(lambda x: x, has_aux=True)(1.0)


def test_jvp_errors():
    with pytest.raises(TypeError, match="tangent"):
        fungrad.jvp(lambda x: x, (to_fg(r(3)),), (to_fg(r(4)),))
    with pytest.raises(TypeError, match="tangent"):
        fungrad.jvp(lambda x: x, (to_fg(r(3)),), (np.zeros(3, np.int32),))
    with pytest.raises(TypeError):
        fungrad.jvp(lambda x, y: x, (1.0, 2.0), (1.0,))
    with pytest.raises(TypeError, match="tuples or lists"):
        fungrad.jvp(lambda x: x, 1.0, 1.0)
    x, f_vjp = fungrad.vjp(lambda x: x * 2.0, to_fg(r(3)))
    with pytest.raises(TypeError, match="cotangent"):
        f_vjp(to_fg(r(4)))


@pytest.mark.parametrize("transform", ["grad", "vmap", "jvp"])
def test_leaked_tracer_is_reported(transform):
    leaked = []

    def f(x):
        leaked.append(x)
        return fnp.sum(fnp.sin(x))
    x = to_fg(r(3))
    if transform == "grad":
        fungrad.grad(f)(x)
    elif transform == "vmap":
        fungrad.vmap(f)(to_fg(r(2, 3)))
    else:
        fungrad.jvp(f, (x,), (x,))
    with pytest.raises(errors.UnexpectedTracerError):
        fnp.sin(leaked[0])
    with pytest.raises(errors.UnexpectedTracerError):
        fungrad.grad(lambda y: fnp.sum(y * leaked[0]))(x)


def test_python_control_flow_on_batched_values_is_an_error():
    def f(x):
        return x * 2.0 if x > 0 else -x
    with pytest.raises(errors.ConcretizationTypeError):
        fungrad.vmap(f)(to_fg(r(3)))
    with pytest.raises(errors.ConcretizationTypeError):
        fungrad.vmap(lambda x: float(x))(to_fg(r(3)))
    with pytest.raises(errors.TracerArrayConversionError):
        fungrad.vmap(lambda x: np.asarray(x))(to_fg(r(3)))
    with pytest.raises(errors.ConcretizationTypeError):
        fungrad.make_jaxpr(f)(1.0)


# --------------------------------------------------------------------------- checkpoint

def _block(lib, lax_, name=None):
    def block(W, x):
        z = lib.tanh(x @ W)
        if name is not None:
            z = name(z, "z")
        return lib.sin(z) * x
    return block


def _policies(api):
    p = api.checkpoint_policies
    return {"nothing": None, "everything": p.everything_saveable, "dots": p.dots_saveable,
            "names": p.save_only_these_names("z"),
            # jax's own offloading fails under grad of grad here: its equivalent with one
            # memory (save what would be offloaded) is the reference
            "offload_names": p.save_and_offload_only_these_names(
                names_which_can_be_saved=[], names_which_can_be_offloaded=["z"],
                offload_src="device", offload_dst="pinned_host") if api is fungrad
            else p.save_only_these_names("z"),
            "all_but_names": p.save_anything_except_these_names("z")}


CHECKPOINT_CASES = {
    "value": lambda L, api: L,
    "grad": lambda L, api: api.grad(L, argnums=(0, 1)),
    "grad_grad": lambda L, api: api.grad(lambda W, x: api.grad(L)(W, x).sum()),
    "jvp": lambda L, api: lambda W, x: api.jvp(L, (W, x), (x.T @ x, x)),
    "hessian": lambda L, api: api.hessian(L, argnums=1),
    "vmap_grad": lambda L, api: api.vmap(api.grad(L), in_axes=(None, 0)),
    "grad_vmap": lambda L, api: api.grad(lambda W, x: api.vmap(L, in_axes=(None, 0))(W, x).sum()),
    "jit_grad": lambda L, api: api.jit(api.grad(L)),
    "grad_jit": lambda L, api: api.grad(api.jit(L)),
}


@pytest.mark.parametrize("policy", ["nothing", "everything", "dots", "names", "offload_names",
                                    "all_but_names"])
@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_checkpoint_matches_jax(case, policy):
    from jax.ad_checkpoint import checkpoint_name as jax_name
    fg_name = fungrad.ad_checkpoint.checkpoint_name

    def make(lib, api, name):
        block = api.checkpoint(_block(lib, None, name), policy=_policies(api)[policy])
        return CHECKPOINT_CASES[case](lambda W, x: (block(W, block(W, x)) ** 2).sum(), api)
    W, x = r(3, 3), r(2, 3)
    if case in ("vmap_grad", "grad_vmap"):
        x = r(4, 2, 3)
    assert_same(make(fnp, fungrad, fg_name)(*to_fg((W, x))),
                jax.jit(make(jnp, jax, jax_name))(*to_jax((W, x))), GRAD_TOL, check_weak=False)


def test_checkpoint_saves_only_its_inputs():
    from fungrad.transforms.api import _linearize_flat
    W, x = to_fg((r(3, 3), r(2, 3)))
    block = fungrad.checkpoint(_block(fnp, None))
    in_tree = fungrad.tree.structure((W,))
    *_, jaxpr, residuals, _ = _linearize_flat(lambda W: block(W, x).sum(), [W], in_tree, False, "f")
    assert [e.primitive.name for e in jaxpr.eqns if e.primitive.name == "checkpoint"]
    assert all(any(res is v for v in (W, x)) for res in residuals), residuals
    # Without checkpoint, intermediates (tanh, sin, cos of it, ...) are residuals too.
    *_, residuals_plain, _ = _linearize_flat(lambda W: _block(fnp, None)(W, x).sum(), [W],
                                             in_tree, False, "f")
    assert len(residuals_plain) > len(residuals)


def test_checkpoint_staging_and_static_argnums():
    W, x = r(3, 3), r(2, 3)

    def layer(W, x, n_repeat):
        for _ in range(n_repeat):
            x = fnp.sin(x @ W)
        return x
    f = fungrad.checkpoint(layer, static_argnums=(2,))
    jf = jax.checkpoint(_jax_layer, static_argnums=(2,))
    assert_same(fungrad.grad(lambda W: f(W, to_fg(x), 3).sum())(to_fg(W)),
                jax.grad(lambda W: jf(W, to_jax(x), 3).sum())(to_jax(W)), GRAD_TOL)
    text = str(fungrad.make_jaxpr(lambda W: f(W, to_fg(x), 2))(to_fg(W)))
    assert "checkpoint[" in text and "prevent_cse=True" in text and text.count("sin") == 2
    with pytest.raises(TypeError, match="checkpoint"):
        fungrad.grad(lambda W: fungrad.checkpoint(layer)(W, to_fg(x), "three").sum())(to_fg(W))


def _jax_layer(W, x, n_repeat):
    for _ in range(n_repeat):
        x = jnp.sin(x @ W)
    return x


# ----------------------------------------------------------------------------- weak types

WEAK_CASES = {
    "sin": lambda m, x: m.sin(x), "tanh_squared": lambda m, x: m.tanh(x) ** 2,
    "exp_over_x": lambda m, x: m.exp(x) / x, "plus_const": lambda m, x: x + 0.7,
    "times_const": lambda m, x: 3.0 * m.sqrt(x), "cube": lambda m, x: x ** 3,
    "maximum": lambda m, x: m.maximum(x, 0.1), "logaddexp": lambda m, x: m.logaddexp(x, 0.7),
    "arctan2": lambda m, x: m.arctan2(x, 0.7), "hypot": lambda m, x: m.hypot(x, 0.7) * 2.0,
}


@pytest.mark.parametrize("name", sorted(WEAK_CASES))
def test_derivatives_of_python_scalars_keep_weak_types(name):
    """A Python-float input gives weakly typed tangents and gradients, as in jax (the zeros
    and constants of derivative rules follow the weak type of what they stand for)."""
    f = WEAK_CASES[name]
    ours = (fungrad.jvp(lambda x: f(fnp, x), (0.3,), (1.0,))[1],
            fungrad.grad(lambda x: f(fnp, x))(0.3))
    ref = (jax.jvp(lambda x: f(jnp, x), (0.3,), (1.0,))[1],
           jax.grad(lambda x: f(jnp, x))(0.3))
    for a, b in zip(ours, ref):
        assert (a.dtype, a.weak_type) == (b.dtype, b.aval.weak_type), (name, a.aval, b.aval)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


@pytest.mark.parametrize("transform", ["jvp", "vjp", "value_and_grad"])
def test_aux_computed_from_differentiated_inputs_leaves_no_tracer_under_jit(transform):
    """``has_aux`` returns the aux values themselves: an aux computed from the inputs (a
    batch norm's new running mean, say) comes out of ``jit`` as a plain array."""
    def f(x):
        return fnp.sum(x ** 2), {"stat": 0.9 * x + 0.1 * fnp.mean(x)}
    calls = {"jvp": lambda x: fungrad.jvp(f, (x,), (fnp.ones(3),), has_aux=True)[2],
             "vjp": lambda x: fungrad.vjp(f, x, has_aux=True)[2],
             "value_and_grad": lambda x: fungrad.value_and_grad(f, has_aux=True)(x)[0][1]}
    x = fnp.asarray(np.array([1.0, 2.0, 3.0], np.float32))
    aux = fungrad.jit(calls[transform])(x)
    np.testing.assert_allclose(np.asarray(aux["stat"]), 0.9 * np.array([1.0, 2.0, 3.0]) + 0.2,
                               rtol=1e-6)
