"""fungrad.scipy.special's gamma and loggamma of complex arguments against
jax.scipy.special: values on a grid of the complex plane (the negative half-plane, the
branch cut on the negative real axis and its two sides included) and at the poles, large
``|z|``, infinities and NaNs, in complex64 and complex128, eager and under jit; vmap; jvp,
holomorphic grad/jacfwd and the grad of a real-valued function against jax and finite
differences; reverse mode of loggamma refused as jax refuses it."""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp_ref
import jax.scipy.special as jss
import numpy as np
import pytest
from harness import GRAD_TOL, QUICK_COMPILE, assert_same, compare, x64

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.special as fss
from fungrad.test_util import check_grads

NAMES = ["gamma", "loggamma"]
DTYPES = {"c64": np.complex64, "c128": np.complex128}

# A grid over -6.3 <= Re z <= 8 (the reflected side Re z < 1/2 and loggamma's shift to the
# right included) and -3 <= Im z <= 3, with the real axis itself.
_RE = np.linspace(-6.3, 8.0, 12)
_IM = np.array([-3.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 3.0])
GRID = (_RE[:, None] + 1j * _IM[None, :]).ravel()
# Poles (also at -0), both sides of the cut on the negative real axis (signed zero
# imaginary parts), large |z| (overflow to inf, underflow to 0), infinities and NaNs.
EDGES = np.array([0j, complex(-0.0, 0.0), complex(-0.0, -0.0), -1 + 0j, -7 + 0j,
                  complex(-2.3, 0.0), complex(-2.3, -0.0), -2.3 + 1e-30j, -1 + 1e-30j,
                  0.5 + 0j, 1 + 0j, 1j, -1j, 1e-20 + 0j, 30 + 5j, 150 + 0j, 200 + 1j,
                  -40.3 + 0.5j, 1e3 + 1e3j, 0.5 + 100j, -3.7 - 2j,
                  complex(np.inf, 0), complex(-np.inf, 0), complex(0, np.inf),
                  complex(np.nan, 0), complex(1, np.nan)])


def _in_dtype(dtype_id: str):
    """The x64 context a dtype needs (none for complex64)."""
    return x64() if dtype_id == "c128" else contextlib.nullcontext()


@pytest.mark.parametrize("dtype_id", sorted(DTYPES))
@pytest.mark.parametrize("name", NAMES)
def test_values(name, dtype_id):
    """Values, dtype and weak type against jax, eager and under jit."""
    z = np.concatenate([GRID, EDGES])
    with _in_dtype(dtype_id):
        compare(getattr(fss, name), getattr(jss, name), z.astype(DTYPES[dtype_id]), jit_ref=True)


@pytest.mark.parametrize("name", NAMES)
def test_scalars_and_vmap(name):
    """A Python complex scalar gives a strongly typed complex64, as in jax; vmap over the
    second axis of a 2-D grid against jax.vmap."""
    f, ref = getattr(fss, name), getattr(jss, name)
    assert_same(f(-1.5 + 0.5j), jax.jit(ref)(-1.5 + 0.5j))
    z = GRID.astype(np.complex64).reshape(len(_RE), len(_IM))
    assert_same(fungrad.vmap(f, in_axes=1)(z), jax.jit(jax.vmap(ref, in_axes=1))(z))


def test_real_inputs_stay_real():
    """Real arguments keep the real path: a float result, NaN (not a complex value) where
    the real loggamma is undefined."""
    x = np.array([-1.5, 0.5, 4.0], np.float32)
    for name in NAMES:
        assert_same(getattr(fss, name)(x), jax.jit(getattr(jss, name))(x))


# Points off the poles for derivatives (the negative half-plane included), and a pole and
# a NaN, where the derivative is 0 through the final select as in jax (no NaN leaks in).
Z_GRAD = np.array([1 + 1j, -2.5 + 0.1j, 3 - 4j, -0.3 - 0.7j, 0.2 + 0j, 5.5 + 2j, -1 + 0j,
                   complex(np.nan, 0)], np.complex64)
T_GRAD = np.array([1 + 0.5j, 2j, -1, 0.3, 1 - 1j, 0.5 + 0.5j, 1j, 1], np.complex64)


@pytest.mark.parametrize("name", NAMES)
def test_jvp_and_holomorphic_derivative(name):
    """jvp, and the holomorphic derivative (grad for gamma; jacfwd for loggamma, whose
    shift is a while_loop) per point under vmap and jit, against jax (one program)."""
    f, ref = getattr(fss, name), getattr(jss, name)
    fg_d = fungrad.grad if name == "gamma" else fungrad.jacfwd
    jax_d = jax.grad if name == "gamma" else jax.jacfwd

    def jax_both(z, t):
        return jax.jvp(ref, (z,), (t,)), jax.vmap(jax_d(ref, holomorphic=True))(z)
    expected = jax.jit(jax_both, compiler_options=QUICK_COMPILE)(Z_GRAD, T_GRAD)
    assert_same((fungrad.jvp(f, (Z_GRAD,), (T_GRAD,)),
                 fungrad.jit(fungrad.vmap(fg_d(f, holomorphic=True)))(Z_GRAD)),
                expected, GRAD_TOL)


def test_gamma_grad_of_real_function():
    """grad of the real ``|gamma(z)|**2`` follows jax's convention for complex inputs."""
    def power(f, np_):
        return lambda z: np_.real(f(z) * np_.conj(f(z))).sum()
    ref = jax.jit(jax.grad(power(jss.gamma, jnp_ref)), compiler_options=QUICK_COMPILE)
    assert_same(fungrad.grad(power(fss.gamma, jnp))(Z_GRAD), ref(Z_GRAD), GRAD_TOL)


def test_finite_differences():
    """Derivatives against finite differences in complex128: gamma in both modes,
    loggamma in forward mode."""
    z = Z_GRAD[:6].astype(np.complex128)
    with fungrad.enable_x64(True):
        check_grads(lambda w: fss.gamma(w).sum(), [jnp.asarray(z)], 1, modes=("fwd", "rev"))
        check_grads(fss.loggamma, [jnp.asarray(z)], 1, modes=("fwd",))


def test_loggamma_reverse_mode_refused_as_in_jax():
    """Reverse mode through loggamma's while_loop raises, in jax and in fungrad."""
    z = np.complex64(-1.5 + 0.5j)
    msg = "Reverse-mode differentiation does not work for lax.while_loop"
    with pytest.raises(ValueError, match=msg):
        jax.grad(jss.loggamma, holomorphic=True)(z)
    with pytest.raises(ValueError, match=msg):
        fungrad.grad(fss.loggamma, holomorphic=True)(z)
