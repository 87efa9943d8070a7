"""fungrad.flatten_util.ravel_pytree against jax.flatten_util.ravel_pytree: the flat vector
(values, dtype, weak type), the unravelled pytree, the errors, and ravel/unravel under jit,
grad and vmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree as jax_ravel

import fungrad
import fungrad.numpy as fnp
from fungrad.flatten_util import ravel_pytree
from harness import GRAD_TOL, assert_same, to_fg, to_jax

RNG = np.random.default_rng(0)


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# Pytrees of NumPy arrays and Python scalars (converted to each library's arrays, scalars kept).
TREES = {
    "scalars": [1.0, 2.0],
    "int-and-float-scalars": [1, 2.0],
    "dict": {"w": _f32(2, 3), "b": _f32(3), "s": 1.5},
    "mixed-dtypes": {"i": np.arange(3, dtype=np.int32), "f": _f32(2), "m": np.array([True])},
    "bool-and-int": [True, 1],
    "complex": (np.array([1 + 2j], np.complex64), _f32(2)),
    "nested-with-none": {"a": [_f32(2, 2), None, (_f32(1),)], "b": np.float32(3.0)},
    "float64-canonicalized": [np.ones(2, np.float64)],
    "empty": {"a": [], "b": None},
}


@pytest.mark.parametrize("name", TREES)
def test_ravel_and_unravel_match_jax(name):
    pytree = TREES[name]
    flat, unravel = ravel_pytree(to_fg(pytree))
    ref_flat, ref_unravel = jax_ravel(to_jax(pytree))
    assert_same(flat, ref_flat)
    assert_same(unravel(flat), ref_unravel(ref_flat))


def test_bfloat16_leaves_promote_with_float32():
    pytree = [fnp.ones(2, fnp.bfloat16), fnp.ones(1)]
    flat, unravel = ravel_pytree(pytree)
    ref_flat, ref_unravel = jax_ravel([jnp.ones(2, jnp.bfloat16), jnp.ones(1)])
    assert_same(flat, ref_flat)
    assert_same(unravel(flat), ref_unravel(ref_flat))


def test_one_dtype_unravel_keeps_the_vectors_dtype():
    """With a single leaf dtype, unravel accepts any dtype and keeps it (JAX issue 7809)."""
    pytree = {"a": _f32(2), "b": _f32(1)}
    ints = np.arange(3, dtype=np.int32)
    assert_same(ravel_pytree(to_fg(pytree))[1](fnp.asarray(ints)),
                jax_ravel(to_jax(pytree))[1](jnp.asarray(ints)))


def test_mixed_dtype_unravel_rejects_another_dtype():
    pytree = [fnp.ones(2), fnp.ones(1, fnp.int32)]
    _, unravel = ravel_pytree(pytree)
    with pytest.raises(TypeError, match="expected dtype float32"):
        unravel(fnp.ones(3, fnp.int32))
    with pytest.raises(TypeError):
        jax_ravel([jnp.ones(2), jnp.ones(1, jnp.int32)])[1](jnp.ones(3, jnp.int32))


def test_unravel_rejects_a_vector_of_the_wrong_length():
    _, unravel = ravel_pytree([fnp.ones(2), fnp.ones(1)])
    with pytest.raises(ValueError, match=r"shape \(3,\), got shape \(4,\)"):
        unravel(fnp.ones(4))
    with pytest.raises(ValueError):
        jax_ravel([jnp.ones(2), jnp.ones(1)])[1](jnp.ones(4))


def test_unravel_functions_of_equal_structures_are_equal_and_hashable():
    pytree = {"a": fnp.ones((2, 2)), "b": fnp.zeros(3)}
    u1, u2 = ravel_pytree(pytree)[1], ravel_pytree(pytree)[1]
    assert u1 == u2 and hash(u1) == hash(u2)
    assert u1 != ravel_pytree({"a": fnp.ones(4), "b": fnp.zeros(3)})[1]
    traces = []

    def apply(unravel, flat):
        traces.append(1)
        return unravel(flat)["a"].sum()

    fn = fungrad.jit(apply, static_argnums=0)
    fn(u1, fnp.ones(7))
    fn(u2, fnp.ones(7))
    assert len(traces) == 1


def _loss(lib, pytree):
    """A function of a pytree through its flat vector: sum of squares of an unravelled,
    scaled copy."""
    ravel = ravel_pytree if lib is fnp else jax_ravel
    flat, unravel = ravel(pytree)
    tree = unravel(flat * lib.arange(1, flat.shape[0] + 1, dtype=flat.dtype))
    return lib.sum(tree["w"] ** 2) + lib.sum(lib.sin(tree["b"]))


def test_grad_and_jit_through_ravel_and_unravel():
    pytree = {"w": _f32(2, 3), "b": _f32(3)}
    expected = jax.grad(lambda t: _loss(jnp, t))(to_jax(pytree))
    assert_same(fungrad.grad(lambda t: _loss(fnp, t))(to_fg(pytree)), expected, GRAD_TOL)
    assert_same(fungrad.jit(fungrad.grad(lambda t: _loss(fnp, t)))(to_fg(pytree)), expected,
                GRAD_TOL)
    flat = _f32(9)
    unravel = ravel_pytree(to_fg(pytree))[1]
    ref_unravel = jax_ravel(to_jax(pytree))[1]
    assert_same(fungrad.jit(unravel)(fnp.asarray(flat)), ref_unravel(jnp.asarray(flat)))


def test_vmap_of_ravel_and_unravel():
    batched = {"w": _f32(4, 2, 3), "b": _f32(4, 3), "i": np.arange(4, dtype=np.int32)}
    assert_same(fungrad.vmap(lambda t: ravel_pytree(t)[0])(to_fg(batched)),
                jax.vmap(lambda t: jax_ravel(t)[0])(to_jax(batched)))
    one = {k: v[0] for k, v in batched.items()}
    unravel = ravel_pytree(to_fg(one))[1]
    ref_unravel = jax_ravel(to_jax(one))[1]
    flats = _f32(5, 10)
    assert_same(fungrad.vmap(unravel)(fnp.asarray(flats)),
                jax.vmap(ref_unravel)(jnp.asarray(flats)))


def test_top_level_module_attribute():
    assert fungrad.flatten_util.ravel_pytree is ravel_pytree
