"""fungrad.nn activations and fungrad.scipy.special against jax.nn / jax.scipy.special:
values and types (float32, bfloat16, ints, Python scalars), JVP/VJP/vmap, derivatives at
the kinks (relu at 0 as JAX), numerical stability of softmax/logsumexp, masks (where=)."""
import functools

import jax
import jax.nn as nn_ref
import jax.numpy as jnp_ref
import jax.scipy.special as sp_ref
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.nn as nn
import fungrad.numpy as jnp
import fungrad.scipy.special as sp
from fungrad.test_util import check_grads
import harness
from harness import assert_same, compare_types, rand

# the jax references run under jax.jit: one compilation per case instead of one per op
compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)

RNG = np.random.default_rng(6)
F32, BF16, I32 = np.float32, ml_dtypes.bfloat16, np.int32

ACTIVATIONS = {
    "relu": {}, "relu6": {}, "sigmoid": {}, "log_sigmoid": {}, "softplus": {}, "soft_sign": {},
    "silu": {}, "swish": {}, "mish": {}, "elu": {}, "elu_alpha": {"alpha": 0.5}, "celu": {},
    "celu_alpha": {"alpha": 2.0}, "selu": {}, "leaky_relu": {},
    "leaky_relu_slope": {"negative_slope": 0.2}, "hard_tanh": {}, "hard_sigmoid": {},
    "hard_silu": {}, "tanh": {}, "gelu": {}, "gelu_exact": {"approximate": False},
    "squareplus": {}, "identity": {}, "glu": {}, "softmax": {}, "softmax_axis0": {"axis": 0},
    "log_softmax": {}, "log_softmax_axes": {"axis": (0, 1)}, "standardize": {},
    "standardize_fast": {"algorithm": "fast", "axis": 0}, "logsumexp": {"axis": 1},
    "logmeanexp": {"axis": -1},
}
DIFFERENTIABLE = ["relu", "relu6", "silu", "elu", "gelu", "gelu_exact", "softmax",
                  "log_softmax_axes", "standardize"]


def _fn(mod, name):
    base = name.split("_axis")[0].split("_alpha")[0].split("_slope")[0].split("_exact")[0]
    base = {"standardize_fast": "standardize", "log_softmax_axes": "log_softmax"}.get(name, base)
    return lambda x: getattr(mod, base)(x, **ACTIVATIONS[name])


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation(name):
    x = rand(RNG, (4, 6), F32, -4, 4)
    x[0, :3] = [0.0, 6.0, -1.0]  # kinks
    compare(_fn(nn, name), _fn(nn_ref, name), x)
    compare_types(_fn(nn, name), _fn(nn_ref, name), x.astype(BF16))
    ints = rand(RNG, (4, 6), I32)
    if name in ("sigmoid", "silu", "swish"):  # lax.logistic rejects integers in both
        with pytest.raises(TypeError, match="int32"):
            _fn(nn, name)(ints)
    elif name not in ("glu", "softmax_axis0", "log_softmax_axes", "standardize_fast"):
        compare_types(_fn(nn, name), _quietly(_fn(nn_ref, name)), ints)


def _quietly(f):
    """``f`` with NumPy's floating-point warnings off: jax.nn.softmax of integers casts its
    ``-inf`` initial maximum to int32 with NumPy, which warns."""
    return np.errstate(invalid="ignore")(f)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_activation_transforms(name):
    x = rand(RNG, (3, 4), F32, -3, 3)
    compare_transforms(_fn(nn, name), _fn(nn_ref, name), [x], RNG,
                       vmap_axes=(0, 1) if name in ("softmax", "logsumexp") else (0,))


def test_kink_derivatives_match_jax():
    x = np.array([0.0, 6.0, -1.0, 1.0], F32)
    for name in ("relu", "relu6", "leaky_relu", "hard_tanh", "elu", "celu"):
        g = fungrad.vmap(fungrad.grad(getattr(nn, name)))(jnp.asarray(x))
        assert_same(g, jax.vmap(jax.grad(getattr(nn_ref, name)))(x), check_weak=False)
    assert float(fungrad.grad(nn.relu)(0.0)) == 0.0


def test_second_derivatives_against_finite_differences():
    # fixed points away from the kinks (0 and +-1) where finite differences straddle a jump
    # of the first or second derivative (hard_tanh, leaky_relu, selu)
    x = np.array([-1.7, -0.6, 0.35, 0.8, 1.45])
    for name in ("sigmoid", "softplus", "silu", "gelu", "mish", "log_sigmoid", "celu",
                 "soft_sign", "hard_tanh", "squareplus", "hard_silu", "selu", "leaky_relu"):
        check_grads(getattr(nn, name), (x,), order=2)
    check_grads(lambda v: nn.gelu(v, approximate=False), (x,), order=2)
    check_grads(lambda v: nn.glu(v.reshape(1, 4)), (x[:4],), order=1)
    check_grads(lambda v: nn.softmax(v.reshape(1, 5)), (x,), order=2)
    check_grads(lambda v: sp.logsumexp(v), (x,), order=2)


def test_softmax_stability_and_masks():
    big = np.array([[1000.0, 1000.0, -1000.0], [-1e30, 0.0, 3.0]], F32)
    for f, ref in ((nn.softmax, nn_ref.softmax), (nn.log_softmax, nn_ref.log_softmax),
                   (lambda a: sp.logsumexp(a, axis=1), lambda a: sp_ref.logsumexp(a, axis=1))):
        compare(f, ref, big)
        assert np.all(np.isfinite(np.asarray(f(jnp.asarray(big[:1])))))
    x = rand(RNG, (3, 4), F32)
    mask = np.array([[True, False, True, True]] * 3)
    compare(lambda a, m: nn.softmax(a, where=m), lambda a, m: nn_ref.softmax(a, where=m), x, mask)
    compare(lambda a, m: nn.log_softmax(a, where=m), lambda a, m: nn_ref.log_softmax(a, where=m),
            x, mask)
    compare_transforms(lambda a: nn.softmax(a, where=mask), lambda a: nn_ref.softmax(a, where=mask),
                       [x], RNG)
    compare(lambda a: nn.softmax(a, axis=None), lambda a: nn_ref.softmax(a, axis=None), x)


def test_one_hot():
    idx = np.array([[0, 2], [4, -1]], I32)
    for kw in ({}, {"dtype": jnp.bfloat16}, {"axis": 0}, {"axis": 1, "dtype": jnp.int32}):
        ref_kw = {k: (jnp_ref.bfloat16 if v is jnp.bfloat16 else jnp_ref.int32 if v is jnp.int32
                      else v) for k, v in kw.items()}
        compare(lambda i: nn.one_hot(i, 4, **kw), lambda i: nn_ref.one_hot(i, 4, **ref_kw), idx)


def test_standardize_with_statistics():
    x = rand(RNG, (3, 4), F32)
    m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    compare(lambda a, b, c: nn.standardize(a, mean=b, variance=c, epsilon=1e-3),
            lambda a, b, c: nn_ref.standardize(a, mean=b, variance=c, epsilon=1e-3), x, m, v)


# ----------------------------------------------------------------------------- scipy.special

SPECIAL = {
    "erf": (-2, 2), "erfc": (-2, 2), "erfinv": (-0.9, 0.9), "expit": (-4, 4), "logit": (0.05, 0.95),
    "gammaln": (0.2, 5), "digamma": (0.5, 5), "entr": (0.0, 2),
}


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_unary(name):
    lo, hi = SPECIAL[name]
    x = rand(RNG, (3, 4), F32, lo, hi)
    f, ref = getattr(sp, name), getattr(sp_ref, name)
    compare(f, ref, x)
    compare_types(f, ref, rand(RNG, (3,), I32, 1, 1))
    compare_types(lambda: f(0.5), lambda: ref(0.5))
    if name in ("erf", "logit", "gammaln", "entr"):
        compare_transforms(f, ref, [x], RNG)
    else:
        check_grads(f, (x.astype(np.float64),), order=1)


def test_xlogy_family():
    x = np.array([0.0, 0.0, 1.0, 2.0, 0.5], F32)
    y = np.array([0.0, 2.0, 3.0, 0.5, np.nan], F32)
    for name in ("xlogy", "xlog1py"):
        f, ref = getattr(sp, name), getattr(sp_ref, name)
        compare(f, ref, x, y)
        compare_transforms(f, ref, [rand(RNG, (4,), F32, 0.5, 2), rand(RNG, (4,), F32, 0.5, 2)],
                           RNG)
        g = fungrad.grad(lambda a: f(a, 2.0))(0.0)
        assert_same(g, jax.grad(lambda a: ref(a, 2.0))(0.0))
    compare(sp.entr, sp_ref.entr, np.array([0.0, -1.0, 0.5, 2.0], F32))


def test_logsumexp_options():
    x = rand(RNG, (3, 4), F32)
    b = rand(RNG, (3, 4), F32, -1, 2)
    mask = rand(RNG, (3, 4), np.bool_)
    mask[:, 0] = True
    cases = [dict(), dict(axis=0), dict(axis=(0, 1), keepdims=True), dict(axis=1, keepdims=True)]
    for kw in cases:
        compare(lambda a: sp.logsumexp(a, **kw), lambda a: sp_ref.logsumexp(a, **kw), x)
    compare(lambda a, s: sp.logsumexp(a, axis=1, b=s),
            lambda a, s: sp_ref.logsumexp(a, axis=1, b=s),
            x, b)
    compare(lambda a, s: sp.logsumexp(a, b=s, return_sign=True),
            lambda a, s: sp_ref.logsumexp(a, b=s, return_sign=True), x, b)
    compare(lambda a, m: sp.logsumexp(a, axis=1, where=m),
            lambda a, m: sp_ref.logsumexp(a, axis=1, where=m), x, mask)
    compare_transforms(lambda a, s: sp.logsumexp(a, axis=-1, b=s),
                       lambda a, s: sp_ref.logsumexp(a, axis=-1, b=s),
                       [x, np.abs(b) + 0.1], RNG)
    compare(nn.logsumexp, nn_ref.logsumexp, x)
