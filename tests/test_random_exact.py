"""Bit-exactness with jax.random of the samplers whose last steps XLA compiles in ways of its
own (sums reordered or moved into YNNPACK kernels, divisions rewritten, constants folded):
many keys and shapes, eager, under jit and under vmap; and the key helpers clone and
key_dtype."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.random as fr
from fungrad.random._xla_reduce import xla_sum
from harness import x64


def test_clone_and_key_dtype():
    for k, ref in [(fr.key(3), jax.random.key(3)), (fr.PRNGKey(3), jax.random.PRNGKey(3))]:
        c = fr.clone(k)
        assert type(c) is type(k)
        np.testing.assert_array_equal(fr.key_data(c), jax.random.key_data(jax.random.clone(ref)))
        np.testing.assert_array_equal(fr.uniform(c, (3,)), jax.random.uniform(ref, (3,)))
    assert fr.clone(fr.split(fr.key(0), 4)).shape == (4,)
    assert fungrad.jit(fr.clone)(fr.key(1)).dtype == fr.key_dtype()
    assert str(fr.key_dtype()) == str(jax.random.key_dtype()) == "key<fry>"
    assert fr.key_dtype("threefry2x32") == fr.key(0).dtype
    with pytest.raises(ValueError, match="key_dtype"):
        fr.key_dtype("rbg")


F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
KEYS = 8
# name -> (draw(module, key, shape, dtype), shapes). Shapes on both sides of XLA's switch to
# YNNPACK kernels (reductions over 4,096 elements or more) where the sampler sums.
SAMPLERS = {
    "maxwell": (lambda m, k, s, d: m.maxwell(k, s, d), [(), (4, 25), (1366,)]),
    "double_sided_maxwell": (lambda m, k, s, d: m.double_sided_maxwell(k, 0.5, 2.0, s, d),
                             [(7,), (1400,)]),
    # The Gamma loop's 1/3 / sqrt(a - 1/3) is XLA's 1/3 * rsqrt(a - 1/3), per element.
    "gamma_per_element": (lambda m, k, s, d: m.gamma(k, np.linspace(0.2, 4, 25, dtype=d), s, d),
                          [(25,), (4, 25)]),
    "loggamma_per_element": (lambda m, k, s, d: m.loggamma(k, np.linspace(0.1, 5, 25, dtype=d),
                                                           s, d), [(25,)]),
    # The Gamma boost's exponent 1 / (1 / p) is p once XLA has simplified it.
    "generalized_normal": (lambda m, k, s, d: m.generalized_normal(k, 1.5, s, d),
                           [(), (4, 25)]),
    "generalized_normal_small_p": (lambda m, k, s, d: m.generalized_normal(k, 0.5, s, d),
                                   [(7,)]),
    # Sums in XLA's order, a division by a broadcast through its reciprocal. Below 4,096
    # elements for dirichlet and 4,096 rows for ball: from there XLA moves their log, exp and
    # log1p into YNNPACK, whose approximations are not repeated (docs/random.md).
    "dirichlet": (lambda m, k, s, d: m.dirichlet(k, np.linspace(0.2, 3, 7, dtype=d), s, d),
                  [(), (4, 25)]),
    "ball": (lambda m, k, s, d: m.ball(k, 3, 2, s, d), [(), (1000,)]),
    "ball_p": (lambda m, k, s, d: m.ball(k, 20, 1.5, s, d), [(7,), (300,)]),  # YNNPACK sums (300,)
    # XLA turns (num / dfnum) / (den / dfden) into (num * dfden) / (den * dfnum).
    "f": (lambda m, k, s, d: m.f(k, 3.0, 5.0, s, d), [(), (4, 25)]),
    "f_per_element": (lambda m, k, s, d: m.f(k, np.linspace(1, 4, 25, dtype=d), 7.5, s, d),
                      [(25,)]),
}


def assert_same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    bits = f"u{a.dtype.itemsize}"
    bad = (a.view(bits) != b.view(bits)) & ~(np.isnan(a) & np.isnan(b))
    assert not bad.any(), f"{int(bad.sum())} of {a.size} differ, e.g. {a[bad][:3]} vs {b[bad][:3]}"


@pytest.fixture(params=[F32, F64], ids=["float32", "float64"])
def dtype(request):
    if request.param == F64:
        with x64():
            yield request.param
    else:
        yield request.param


def jax_draw(name, shape, dtype, batch=False):
    """jax.random's sampler as users call it (``batch``: vmapped over keys). Not under an
    outer jax.jit, which would make the parameters constants that XLA folds."""
    draw = SAMPLERS[name][0]
    fn = lambda k: draw(jax.random, k, shape, dtype)  # noqa: E731
    return jax.vmap(fn) if batch else fn


# Under jax.vmap an unbatched array dfnum is a broadcast, and XLA then divides by it through
# its reciprocal before combining the divisions: not repeated (docs/random.md).
VMAP_DIFFERS = {"f_per_element"}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_bits_equal_jax(name, dtype):
    """KEYS keys of the smallest shape and one of the others, eagerly; the largest under jit,
    and three keys of it under vmap (on the same side of YNNPACK's size as one key)."""
    draw, shapes = SAMPLERS[name]
    for shape in shapes:
        for seed in range(KEYS if shape == shapes[0] else 1):
            ref = jax_draw(name, shape, dtype)(jax.random.PRNGKey(seed))
            assert_same_bits(draw(fr, fr.PRNGKey(seed), shape, dtype), ref)
    assert_same_bits(fungrad.jit(lambda k: draw(fr, k, shape, dtype))(fr.PRNGKey(0)),
                     jax_draw(name, shape, dtype)(jax.random.PRNGKey(0)))
    if name not in VMAP_DIFFERS:
        batched = fungrad.vmap(lambda k: draw(fr, k, shape, dtype))(fr.split(fr.PRNGKey(5), 3))
        ref = jax_draw(name, shape, dtype, batch=True)(jax.random.split(jax.random.PRNGKey(5), 3))
        assert_same_bits(batched, ref)


@pytest.mark.parametrize("square", [False, True], ids=["sum", "sum_of_squares"])
def test_xla_sum_adds_in_xla_order(dtype, square):
    """Rows of several lengths on both sides of YNNPACK's 4,096 elements, values spread over
    many binades so that every change of order shows."""
    rng = np.random.default_rng(0)
    ref = jax.jit(lambda x: jnp.sum(x * x if square else x, -1))
    longest = 80 if dtype == F32 else 40  # YNNPACK's measured range; XLA's loop's is 32
    for row in (1, 2, 3, 4, 5, 17, 32, longest):
        for rows in (4095 // row, 4096 // row + 1):
            x = (rng.standard_normal((rows, row)) * np.exp(rng.uniform(-8, 8, (rows, row))))
            x = x.astype(dtype)
            loop = rows * row < 4096
            if loop and (row > 32 or (square and 5 <= row <= 8)):  # not repeated (NumPy's)
                continue
            if loop and square and dtype == F64:  # fused as in maxwell: checked there
                continue
            assert_same_bits(xla_sum(x, square), ref(x))


def test_xla_sum_transforms():
    x = np.linspace(-2, 3, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(fungrad.grad(lambda v: xla_sum(v, True).sum())(x), 2 * x)
    np.testing.assert_allclose(fungrad.grad(lambda v: xla_sum(v).sum())(x), np.ones_like(x))
    assert_same_bits(fungrad.vmap(xla_sum, in_axes=1)(x), xla_sum(x.T))
    assert_same_bits(fungrad.jit(lambda v: xla_sum(v, True))(x), xla_sum(x, True))
