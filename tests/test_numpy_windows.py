"""Window functions (bartlett, blackman, hamming, hanning, kaiser) against jax.numpy: values,
dtypes and weak types eagerly and under jit, x64, derivatives in ``beta``, and errors."""
import functools

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import harness
from harness import assert_same, quick_jit, rand

# jax's derivatives, in one quickly compiled program
compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)
# jax's values, quickly compiled: tests batch several cases into one call to compile less
compare = harness.compare_quick


RNG = np.random.default_rng(11)
F32 = np.float32
WINDOWS = ["bartlett", "blackman", "hamming", "hanning"]
LENGTHS = [0, 1, 2, 3, 6, 17]


@pytest.mark.parametrize("name", WINDOWS)
def test_windows_match_jax(name):
    compare(lambda: [getattr(jnp, name)(M) for M in LENGTHS],
            lambda: [getattr(jnp_ref, name)(M) for M in LENGTHS])


def test_window_length_forms():
    """``M`` as a NumPy integer, a 0-d array (NumPy or fungrad), a bool or a float (which
    truncates, as ``int()`` and JAX do)."""
    forms = [np.int64(5), np.array(4), True, 4.7, np.float32(3.5)]
    def make(lib, last):
        return lambda: [getattr(lib, name)(M) for name in WINDOWS for M in forms + [last]] + [
            lib.kaiser(M, 2.5) for M in forms + [last]]
    compare(make(jnp, jnp.asarray(3)), make(jnp_ref, np.int32(3)))


def test_windows_x64():
    """With 64-bit dtypes on, windows are float64 (the default float), as in JAX."""
    with harness.x64():
        def make(lib):
            return lambda b32, b64: [getattr(lib, name)(7) for name in WINDOWS] + [
                lib.kaiser(6, b32), lib.kaiser(6, b64), lib.kaiser(6, 3.0)]
        compare(make(jnp), make(jnp_ref), np.float32(3.0), np.float64(3.0))


def test_kaiser_match_jax():
    def make(lib):
        return lambda: [lib.kaiser(M, beta) for M in LENGTHS
                        for beta in (0.0, 2.5, 8.6, -3.0, 50.0)] + [lib.kaiser(5, 3)]
    compare(make(jnp), make(jnp_ref))
    # beta as a traced float32 / float16 / int32 array, and arrays that broadcast
    def make_traced(lib):
        return lambda *betas: [lib.kaiser(4, b) for b in betas] + [lib.kaiser(1, betas[0])]
    compare(make_traced(jnp), make_traced(jnp_ref), np.array(4.0, F32), np.array(2.0, np.float16),
            np.array(3, np.int32), np.array([1.0, 2.0, 3.0, 4.0], F32),
            rand(RNG, (2, 1), F32, 0.5, 6.0))


def test_kaiser_derivatives_in_beta():
    compare_transforms(lambda b: jnp.kaiser(7, b), lambda b: jnp_ref.kaiser(7, b),
                       [np.array(3.0, F32)], RNG)
    # I0'(0) = I1(0) = 0: the derivative at beta = 0 is exactly 0, as JAX's
    def grads(lib, grad):
        return [grad(lambda b: lib.kaiser(M, b).sum())(b0) for M, b0 in
                [(1, 0.0), (6, 0.0), (6, np.float32(0.0)), (6, np.float32(5.0))]]
    ref = quick_jit(lambda: grads(jnp_ref, jax.grad))()
    assert_same(grads(jnp, fungrad.grad), ref, harness.GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("name", WINDOWS + ["kaiser"])
def test_window_errors(name):
    fn, ref = getattr(jnp, name), getattr(jnp_ref, name)
    extra = (2.0,) if name == "kaiser" else ()
    # (jax's references run under jit: they fail while tracing, with nothing to compile)
    for bad in (np.array([3]), None, [3]):
        with pytest.raises(TypeError):
            jax.jit(lambda: ref(bad, *extra))()
        with pytest.raises(TypeError, match=f"{name}: M"):
            fn(bad, *extra)
    # a negative length: JAX fails in broadcast_in_dim (TypeError); fungrad says what is wrong
    with pytest.raises(TypeError):
        jax.jit(lambda: ref(-2, *extra))()
    with pytest.raises(ValueError, match=f"{name}: M must be non-negative"):
        fn(-2, *extra)
    # a string length: int('4') lets JAX through; fungrad asks for a number
    with pytest.raises(TypeError, match=f"{name}: M must be an integer"):
        fn("4", *extra)
    # the length must be static under jit
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(lambda m: ref(m, *extra))(4)
    with pytest.raises(fungrad.errors.ConcretizationTypeError, match=name):
        fungrad.jit(lambda m: fn(m, *extra))(4)


def test_kaiser_beta_errors():
    with pytest.raises(ValueError):
        jax.jit(lambda: jnp_ref.kaiser(4, 1j))()
    with pytest.raises(ValueError, match="kaiser: beta must be real"):
        jnp.kaiser(4, 1j)
    for bad in ([1.0], "a"):
        with pytest.raises(TypeError):
            jax.jit(lambda: jnp_ref.kaiser(4, bad))()
        with pytest.raises(TypeError, match="kaiser"):
            jnp.kaiser(4, bad)
