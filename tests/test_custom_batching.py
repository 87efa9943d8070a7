"""fungrad.custom_batching against jax.custom_batching: the rule under vmap, the function
elsewhere, nested vmaps, jit, pytrees, sequential_vmap and differentiation."""
from __future__ import annotations

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.custom_batching import custom_vmap, sequential_vmap
from harness import assert_same, compare, to_fg, to_jax

RNG = np.random.default_rng(0)
XS = RNG.uniform(-1, 1, (3,)).astype(np.float32)
YS = RNG.uniform(-1, 1, (3,)).astype(np.float32)
X, Y = np.float32(0.7), np.float32(-1.3)


def make(lib, np_mod, cv):
    """``sin(x) * y`` whose rule adds 1 and reports which inputs were batched."""
    @cv.custom_vmap
    def f(x, y):
        return np_mod.sin(x) * y

    @f.def_vmap
    def rule(axis_size, in_batched, xs, ys):
        assert isinstance(in_batched, list) and len(in_batched) == 2
        out = np_mod.sin(xs) * ys + 1.0
        if not in_batched[1]:
            out = out + 10.0  # marks which arguments the rule saw batched
        return out, any(in_batched)
    return f


F = make(fungrad, jnp, fungrad.custom_batching)
F_REF = make(jax, jnp_ref, jax.custom_batching)


def test_unbatched_runs_the_function():
    compare(F, F_REF, X, Y)


def test_vmap_uses_the_rule():
    compare(fungrad.vmap(F), jax.vmap(F_REF), XS, YS)


def test_in_batched_reports_unbatched_arguments():
    compare(fungrad.vmap(F, in_axes=(0, None)), jax.vmap(F_REF, in_axes=(0, None)), XS, Y)
    compare(fungrad.vmap(F, in_axes=(None, 0)), jax.vmap(F_REF, in_axes=(None, 0)), X, YS)


def test_unbatched_output_is_broadcast():
    def make_rule(cv, np_mod):
        @cv.custom_vmap
        def g(x, y):
            return x * 2.0, y + 1.0

        @g.def_vmap
        def rule(axis_size, in_batched, xs, ys):
            return (xs * 3.0, np_mod.ones_like(ys)), (True, False)
        return g
    g, g_ref = make_rule(fungrad.custom_batching, jnp), make_rule(jax.custom_batching, jnp_ref)
    compare(fungrad.vmap(g, in_axes=(0, None)), jax.vmap(g_ref, in_axes=(0, None)), XS, Y)


def test_nested_vmap():
    a = RNG.uniform(-1, 1, (2, 3)).astype(np.float32)
    b = RNG.uniform(-1, 1, (2, 3)).astype(np.float32)
    compare(fungrad.vmap(fungrad.vmap(F)), jax.vmap(jax.vmap(F_REF)), a, b)
    compare(fungrad.vmap(fungrad.vmap(F, in_axes=(0, None)), in_axes=(None, 0)),
            jax.vmap(jax.vmap(F_REF, in_axes=(0, None)), in_axes=(None, 0)), XS, YS)


def test_jit_of_vmap_and_vmap_of_jit():
    ref = jax.vmap(F_REF)(*to_jax((XS, YS)))
    assert_same(fungrad.jit(fungrad.vmap(F))(*to_fg((XS, YS))), ref)
    assert_same(fungrad.vmap(fungrad.jit(F))(*to_fg((XS, YS))), ref)
    assert_same(fungrad.jit(fungrad.vmap(fungrad.jit(F)))(*to_fg((XS, YS))), ref)


def test_pytree_arguments_and_outputs():
    def make_tree(cv):
        @cv.custom_vmap
        def g(p, z):
            return {"s": p["a"] * z, "t": (p["b"] - z,)}

        @g.def_vmap
        def rule(axis_size, in_batched, p, z):
            flags = {"s": in_batched[0]["a"] or in_batched[1], "t": (True,)}
            b = p["b"] if in_batched[0]["b"] else p["b"] * np.ones((axis_size,), np.float32)
            return {"s": p["a"] * z + axis_size, "t": (b + z,)}, flags
        return g
    g, g_ref = make_tree(fungrad.custom_batching), make_tree(jax.custom_batching)
    args = ({"a": XS, "b": Y}, YS)
    axes = ({"a": 0, "b": None}, 0)
    compare(fungrad.vmap(g, in_axes=axes), jax.vmap(g_ref, in_axes=axes), *args)
    compare(g, g_ref, {"a": X, "b": Y}, X)


def test_closed_over_values():
    c = np.float32(2.5)

    def outer(lib_f, x, y):
        return lib_f(x * c, y)
    compare(fungrad.vmap(lambda x, y: outer(F, x, y)), jax.vmap(lambda x, y: outer(F_REF, x, y)),
            XS, YS)


def test_sequential_vmap():
    g = sequential_vmap(lambda x, y: jnp.sin(x) * y + jnp.sum(x))
    g_ref = jax.custom_batching.sequential_vmap(lambda x, y: jnp_ref.sin(x) * y + jnp_ref.sum(x))
    m = RNG.uniform(-1, 1, (3, 4)).astype(np.float32)
    compare(fungrad.vmap(g), jax.vmap(g_ref), m, m)
    compare(fungrad.vmap(g, in_axes=(0, None)), jax.vmap(g_ref, in_axes=(0, None)), m, m[0])
    compare(g, g_ref, m[0], m[1])
    jaxpr = str(fungrad.make_jaxpr(fungrad.vmap(g))(m, m))
    assert "scan" in jaxpr


def test_errors():
    @custom_vmap
    def no_rule(x):
        return x
    with pytest.raises(AttributeError, match="def_vmap"):
        fungrad.vmap(no_rule)(XS)

    @custom_vmap
    def bad(x):
        return x, x

    @bad.def_vmap
    def bad_rule(axis_size, in_batched, xs):
        return (xs, xs), True
    with pytest.raises(ValueError, match="batching specification"):
        fungrad.vmap(bad)(XS)


# --------------------------------------------------------------------------- differentiation

def plain(np_mod):
    return lambda x, y: np_mod.sin(x) * y


def test_forward_mode_of_the_function():
    compare(lambda x, y: fungrad.jvp(F, (x, y), (1.0, 0.5)),
            lambda x, y: jax.jvp(F_REF, (x, y), (1.0, 0.5)), X, Y)


def test_reverse_mode_of_the_function():
    """JAX raises here (custom_vmap has no reverse mode); fungrad differentiates the
    function, so compare with JAX's gradient of the undecorated function."""
    with pytest.raises(ValueError):
        jax.grad(F_REF)(*to_jax((X, Y)))
    compare(fungrad.grad(F, (0, 1)), jax.grad(plain(jnp_ref), (0, 1)), X, Y)
    compare(fungrad.grad(fungrad.jit(F)), jax.grad(plain(jnp_ref)), X, Y)
    out, f_vjp = fungrad.vjp(F, *to_fg((X, Y)))
    ref, ref_vjp = jax.vjp(plain(jnp_ref), *to_jax((X, Y)))
    assert_same(out, ref)
    assert_same(f_vjp(fungrad.numpy.float32(1.5)), ref_vjp(jnp_ref.float32(1.5)))


def test_differentiating_vmap_uses_the_rule():
    compare(lambda x, y: fungrad.jvp(fungrad.vmap(F), (x, y), (y, x)),
            lambda x, y: jax.jvp(jax.vmap(F_REF), (x, y), (y, x)), XS, YS)
    compare(fungrad.grad(lambda x, y: fungrad.vmap(F)(x, y).sum(), (0, 1)),
            jax.grad(lambda x, y: jax.vmap(F_REF)(x, y).sum(), (0, 1)), XS, YS)
    compare(fungrad.jacfwd(fungrad.vmap(F, in_axes=(0, None))),
            jax.jacfwd(jax.vmap(F_REF, in_axes=(0, None))), XS, Y)


def _vmap_of_jvp(lib, f, tangent_axes):
    ts = [T if a is None else TS for a, T, TS in zip(tangent_axes, (X, Y), (YS, XS))]
    fn = lib.vmap(lambda x, y, tx, ty: lib.jvp(f, (x, y), (tx, ty)),
                  in_axes=(0, 0) + tangent_axes)
    return fn, (XS, YS, *ts)


@pytest.mark.parametrize("tangent_axes", [(None, None), (0, 0)])
def test_vmap_of_jvp_uses_the_rule(tangent_axes):
    fn, args = _vmap_of_jvp(fungrad, F, tangent_axes)
    fn_ref, _ = _vmap_of_jvp(jax, F_REF, tangent_axes)
    compare(fn, fn_ref, *args)


@pytest.mark.parametrize("tangent_axes", [(0, None), (None, 0)])
def test_vmap_of_jvp_batching_a_primal_apart_from_its_tangent(tangent_axes):
    """An output the rule batches that also depends on a value batched only on one side:
    JAX returns outputs of the wrong shape (batched twice); fungrad raises."""
    fn_ref, args = _vmap_of_jvp(jax, F_REF, tangent_axes)
    assert jax.tree_util.tree_leaves(fn_ref(*to_jax(args)))[0].shape == (3, 3)
    fn, _ = _vmap_of_jvp(fungrad, F, tangent_axes)
    with pytest.raises(NotImplementedError, match="custom_vmap"):
        fn(*to_fg(args))


def test_vmap_of_jvp_with_unbatched_primals():
    fn = fungrad.vmap(lambda t: fungrad.jvp(F, (X, Y), (t, 1.0)))
    ref = jax.vmap(lambda t: jax.jvp(F_REF, to_jax((X, Y)), (t, 1.0)))
    compare(fn, ref, XS)


def test_vmap_of_reverse_mode_is_an_error():
    with pytest.raises(ValueError):
        jax.vmap(jax.grad(F_REF))(*to_jax((XS, YS)))
    with pytest.raises(NotImplementedError, match="custom_vmap"):
        fungrad.vmap(fungrad.grad(F))(*to_fg((XS, YS)))
