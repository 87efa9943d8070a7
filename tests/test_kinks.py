"""Derivatives at ties and kinks against jax: one record per function, evaluated exactly
where the function is not smooth (a tie of two arguments, repeated maxima, 0 of relu/abs,
the bounds of clip, equal arguments of logaddexp, -inf entries of logsumexp, ...).

At such points the derivative is a convention, and jax's convention is the reference:
``maximum`` splits the tangent 0.5/0.5, ``max`` spreads it evenly over the tied maxima,
``relu``'s derivative at 0 is 0, ``logaddexp(x, x)``'s is 0.5 per argument. Each record is
checked for its value, its JVP, its VJP and its second derivative (a JVP of the gradient).
"""
import jax
import jax.nn as nn_ref
import jax.numpy as jnp_ref
import jax.scipy.special as sp_ref
import numpy as np
import optax
import pytest

import fungrad
import fungrad.nn as nn
import fungrad.numpy as jnp
import fungrad.scipy.special as sp
from fungrad import lax
from tests.harness import GRAD_TOL, assert_same, to_fg, to_jax

INF = np.inf


def f32(*v):
    return np.array(v, np.float32)


TIES = f32(1.0, 3.0, 3.0, -2.0, 3.0, 0.0)          # a repeated maximum (3 at 1, 2, 4)
MAT = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, -1.0], [5.0, 5.0, 5.0]], np.float32)  # row ties
ZEROS = f32(0.0, 0.0, 0.0)
KINK0 = f32(0.0, -0.0, 1.0, -1.0)                   # 0 and its neighbours
GRID = f32(-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)    # the kinks of the hard activations

# name -> (fungrad function, jax function, arguments). Both functions have the same body;
# the name of the module they are written on is the only difference.
RECORDS = {}


def record(name, body, *args):
    """Register ``body(jnp, lax, nn, sp)`` written once for both libraries."""
    RECORDS[name] = (lambda *a: body(jnp, lax, nn, sp)(*a),
                     lambda *a: body(jnp_ref, jax.lax, nn_ref, sp_ref)(*a), args)


# elementwise binary ops at equal arguments
for op in ("maximum", "minimum", "fmax", "fmin"):
    record(op, lambda np_, lx, nn_, sp_, op=op: getattr(np_, op), TIES, TIES)
    record(op + "_scalar", lambda np_, lx, nn_, sp_, op=op: (lambda x: getattr(np_, op)(x, 3.0)), TIES)
record("lax_max", lambda np_, lx, nn_, sp_: lx.max, TIES, TIES)
record("lax_min", lambda np_, lx, nn_, sp_: lx.min, TIES, TIES)
for op in ("logaddexp", "logaddexp2"):
    record(op, lambda np_, lx, nn_, sp_, op=op: getattr(np_, op), f32(0.0, 2.0, -INF, INF, -INF, 1.0, INF),
           f32(0.0, 2.0, -INF, INF, 1.0, -INF, 1.0))
    record(op + "_zero", lambda np_, lx, nn_, sp_, op=op: (lambda x: getattr(np_, op)(x, 0.0)), KINK0)
record("where_tie", lambda np_, lx, nn_, sp_: (lambda x, y: np_.where(x >= y, x, y)), TIES, TIES[::-1].copy())

# elementwise unary ops at their kinks
record("abs", lambda np_, lx, nn_, sp_: np_.abs, KINK0)
record("sign", lambda np_, lx, nn_, sp_: np_.sign, KINK0)
record("sqrt", lambda np_, lx, nn_, sp_: np_.sqrt, f32(0.0, 1.0, 4.0))
record("cbrt", lambda np_, lx, nn_, sp_: np_.cbrt, f32(0.0, 1.0, -8.0))
record("clip", lambda np_, lx, nn_, sp_: (lambda x: np_.clip(x, -1.0, 1.0)), f32(-1.0, 1.0, 0.0, 2.0))
record("clip_bounds", lambda np_, lx, nn_, sp_: np_.clip, f32(-1.0, 1.0, 0.0, 2.0), f32(-1.0, 0.0, 0.0, -1.0),
       f32(1.0, 1.0, 0.0, 3.0))
record("lax_clamp", lambda np_, lx, nn_, sp_: (lambda lo, x, hi: lx.clamp(lo, x, hi)), f32(-1.0, 0.0, 0.0),
       f32(-1.0, 1.0, 0.0), f32(1.0, 1.0, 0.0))
record("power_zero_exponent", lambda np_, lx, nn_, sp_: np_.power, f32(0.0, 0.0, 2.0, 0.0), f32(0.0, 2.0, 0.0, 1.0))
record("power_scalar", lambda np_, lx, nn_, sp_: (lambda x: x ** 2.0), f32(0.0, -1.0))
record("power_half", lambda np_, lx, nn_, sp_: (lambda x: np_.power(x, 0.5)), f32(0.0, 1.0))
record("integer_pow", lambda np_, lx, nn_, sp_: (lambda x: lx.integer_pow(x, 0) + lx.integer_pow(x, 3)),
       f32(0.0, 2.0))
record("float_power_zero", lambda np_, lx, nn_, sp_: (lambda x: np_.float_power(x, 0.0)), f32(0.0, 2.0))
record("hypot", lambda np_, lx, nn_, sp_: np_.hypot, f32(0.0, 3.0), f32(0.0, 4.0))

# activations at 0 and at their kinks
for act in ("relu", "relu6", "hard_tanh", "leaky_relu", "elu", "celu", "selu", "silu", "softplus",
            "log_sigmoid", "sigmoid", "hard_sigmoid", "hard_silu", "soft_sign", "squareplus", "mish"):
    record(act, lambda np_, lx, nn_, sp_, act=act: getattr(nn_, act), GRID)
record("gelu", lambda np_, lx, nn_, sp_: nn_.gelu, GRID)
record("gelu_exact", lambda np_, lx, nn_, sp_: (lambda x: nn_.gelu(x, approximate=False)), GRID)
record("celu_alpha", lambda np_, lx, nn_, sp_: (lambda x: nn_.celu(x, 2.0)), GRID)
record("hard_swish", lambda np_, lx, nn_, sp_: nn_.hard_swish, GRID)
record("relu_leaky_slope", lambda np_, lx, nn_, sp_: (lambda x: nn_.leaky_relu(x, 0.2)), GRID)

# special functions at the edges of their domains
record("sinc", lambda np_, lx, nn_, sp_: np_.sinc, f32(0.0, 1.0, -0.5))
record("arctan2", lambda np_, lx, nn_, sp_: np_.arctan2, f32(0.0, 1.0, 0.0), f32(0.0, 0.0, -1.0))
record("arccos", lambda np_, lx, nn_, sp_: np_.arccos, f32(-1.0, 1.0, 0.0))
record("arccosh", lambda np_, lx, nn_, sp_: np_.arccosh, f32(1.0, 2.0))
record("rsqrt", lambda np_, lx, nn_, sp_: lx.rsqrt, f32(0.0, 4.0))
record("fmod", lambda np_, lx, nn_, sp_: np_.fmod, f32(4.0, -3.0, 0.0, 2.5), f32(2.0, 1.5, 1.0, 1.0))
record("remainder", lambda np_, lx, nn_, sp_: np_.remainder, f32(4.0, -3.0, 0.0, 2.5), f32(2.0, 1.5, 1.0, -1.0))
record("rounding", lambda np_, lx, nn_, sp_: (lambda x: np_.floor(x) + np_.ceil(x) + np_.round(x) + np_.trunc(x)),
       f32(0.5, 1.0, -1.5))
record("heaviside", lambda np_, lx, nn_, sp_: np_.heaviside, KINK0, f32(0.5, 0.5, 0.5, 0.5))
record("copysign", lambda np_, lx, nn_, sp_: np_.copysign, KINK0, f32(1.0, -1.0, -0.0, 0.0))
record("xlogy", lambda np_, lx, nn_, sp_: sp_.xlogy, f32(0.0, 0.0, 1.0), f32(0.0, 1.0, 0.0))
record("xlog1py", lambda np_, lx, nn_, sp_: sp_.xlog1py, f32(0.0, 0.0, 1.0), f32(-1.0, 0.0, 1.0))
record("entr", lambda np_, lx, nn_, sp_: sp_.entr, f32(0.0, 1.0, -1.0))
record("logit", lambda np_, lx, nn_, sp_: sp_.logit, f32(0.0, 0.5, 1.0))
record("erfinv", lambda np_, lx, nn_, sp_: sp_.erfinv, f32(-1.0, 0.0, 1.0))
record("interp", lambda np_, lx, nn_, sp_: (lambda x, fp: np_.interp(x, np_.array([0.0, 1.0, 2.0]), fp)),
       f32(0.0, 1.0, 2.0, -1.0, 3.0), f32(1.0, 3.0, 2.0))
record("std_constant", lambda np_, lx, nn_, sp_: np_.std, f32(2.0, 2.0, 2.0))
record("var_constant", lambda np_, lx, nn_, sp_: np_.var, f32(2.0, 2.0, 2.0))

# reductions with repeated maxima
for red in ("max", "min", "amax", "nanmax", "nanmin", "ptp"):
    record(red, lambda np_, lx, nn_, sp_, red=red: getattr(np_, red), TIES)
    record(red + "_axis", lambda np_, lx, nn_, sp_, red=red: (lambda x: getattr(np_, red)(x, axis=1)), MAT)
record("nanmax_nan", lambda np_, lx, nn_, sp_: (lambda x: np_.nanmax(x, axis=0)),
       np.array([[3.0, np.nan], [3.0, 1.0], [np.nan, 1.0]], np.float32))
record("reduce_max", lambda np_, lx, nn_, sp_: (lambda x: lx.reduce_max(x, (0,))), MAT)
record("reduce_min", lambda np_, lx, nn_, sp_: (lambda x: lx.reduce_min(x, (1,))), MAT)
record("max_initial", lambda np_, lx, nn_, sp_: (lambda x: np_.max(x, initial=3.0)), TIES)
record("max_where", lambda np_, lx, nn_, sp_: (
    lambda x: np_.max(x, axis=1, where=np_.array([True, False, True]), initial=-INF)), MAT)
record("take_argmax", lambda np_, lx, nn_, sp_: (
    lambda x: np_.take_along_axis(x, np_.argmax(x, axis=1, keepdims=True), axis=1)), MAT)
record("take_argmin", lambda np_, lx, nn_, sp_: (lambda x: x[np_.argmin(x)]), TIES)
record("logsumexp", lambda np_, lx, nn_, sp_: sp_.logsumexp, TIES)
record("logsumexp_inf", lambda np_, lx, nn_, sp_: (lambda x: sp_.logsumexp(x, axis=1)),
       np.array([[-INF, 0.0, 0.0], [-INF, -INF, -INF], [-INF, 2.0, -INF]], np.float32))
record("nn_logsumexp", lambda np_, lx, nn_, sp_: (lambda x: nn_.logsumexp(x, axis=1)), MAT)
record("softmax_inf", lambda np_, lx, nn_, sp_: nn_.softmax, f32(-INF, 1.0, 1.0))
record("log_softmax_inf", lambda np_, lx, nn_, sp_: nn_.log_softmax, f32(-INF, 1.0, 1.0))
record("norm", lambda np_, lx, nn_, sp_: np_.linalg.norm, ZEROS)
for o in (1, INF, -INF, 0):
    record(f"norm_ord{o}", lambda np_, lx, nn_, sp_, o=o: (lambda x: np_.linalg.norm(x, ord=o)),
           f32(0.0, 2.0, -2.0))
record("norm_fro", lambda np_, lx, nn_, sp_: np_.linalg.norm, np.zeros((2, 2), np.float32))
record("norm_axis", lambda np_, lx, nn_, sp_: (lambda x: np_.linalg.norm(x, axis=1)), np.zeros((2, 3), np.float32))
record("norm_matrix_ord1", lambda np_, lx, nn_, sp_: (lambda x: np_.linalg.norm(x, ord=1)), MAT)
record("norm_matrix_inf", lambda np_, lx, nn_, sp_: (lambda x: np_.linalg.norm(x, ord=INF)), MAT)
record("cumlogsumexp", lambda np_, lx, nn_, sp_: lx.cumlogsumexp, f32(-INF, 1.0, 1.0, -INF, 3.0))
record("logsumexp_b", lambda np_, lx, nn_, sp_: (lambda x: sp_.logsumexp(x, b=np_.array(
    [1.0, 0.0, 2.0, 1.0, 0.5, 1.0]))), TIES)
record("logsumexp_where", lambda np_, lx, nn_, sp_: (lambda x: sp_.logsumexp(
    x, axis=1, where=np_.array([[True, True, False]] * 3))), MAT)
record("logmeanexp", lambda np_, lx, nn_, sp_: (lambda x: nn_.logmeanexp(x, axis=1)), MAT)
record("max_axes", lambda np_, lx, nn_, sp_: (lambda x: np_.max(x, axis=(0, 1), keepdims=True)),
       np.array([[[1.0, 2.0], [2.0, 0.0]], [[2.0, 1.0], [0.0, 2.0]]], np.float32))

# cumulative, windowed and order statistics with ties
for op in ("cummax", "cummin"):
    record(op, lambda np_, lx, nn_, sp_, op=op: getattr(lx, op), TIES)
    record(op + "_reverse", lambda np_, lx, nn_, sp_, op=op: (lambda x: getattr(lx, op)(x, 1, reverse=True)), MAT)
record("max_pool", lambda np_, lx, nn_, sp_: (
    lambda x: lx.reduce_window(x, -INF, lx.max, (2, 2), (1, 1), "VALID")), MAT)
record("max_pool_strided", lambda np_, lx, nn_, sp_: (
    lambda x: lx.reduce_window(x, -INF, lx.max, (1, 2), (1, 1), ((0, 0), (1, 1)))), MAT)
record("min_pool", lambda np_, lx, nn_, sp_: (
    lambda x: lx.reduce_window(x, INF, lx.min, (2, 1), (1, 1), "VALID")), MAT)
record("sort", lambda np_, lx, nn_, sp_: np_.sort, TIES)
record("lax_sort", lambda np_, lx, nn_, sp_: (lambda x: lx.sort(x, 1)), MAT)
record("argsort_take", lambda np_, lx, nn_, sp_: (lambda x: x[np_.argsort(x)]), TIES)
record("top_k", lambda np_, lx, nn_, sp_: (lambda x: lx.top_k(x, 3)[0]), TIES)
for q in ("median", "quantile", "percentile", "nanmedian"):
    arg = {"quantile": (0.5,), "percentile": (40.0,)}.get(q, ())
    record(q, lambda np_, lx, nn_, sp_, q=q, arg=arg: (lambda x: getattr(np_, q)(x, *arg)), TIES)
for method in ("linear", "lower", "higher", "nearest", "midpoint"):
    record("quantile_" + method, lambda np_, lx, nn_, sp_, m=method: (
        lambda x: np_.quantile(x, np_.array([0.0, 0.3, 0.5, 1.0]), axis=1, method=m)), MAT)


def pair(name, fg, jx, *args):
    """Register a fungrad function and its jax (or optax) counterpart."""
    RECORDS[name] = (fg, jx, args)


LABELS = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 0.0], np.float32)
pair("sigmoid_bce", lambda x: nn.sigmoid_binary_cross_entropy(x, LABELS),
     lambda x: optax.sigmoid_binary_cross_entropy(x, LABELS), GRID)
pair("huber_loss", lambda x, y: nn.huber_loss(x, y), lambda x, y: optax.huber_loss(x, y),
     f32(1.0, 0.0, -1.0, 2.0), f32(0.0, 0.0, 0.0, 2.0))
pair("l1_loss", nn.l1_loss, lambda x, y: jnp_ref.abs(x - y), f32(1.0, 0.0, 2.0), f32(1.0, 0.0, 0.0))
POOL_IN = np.array([[[[1.0], [3.0], [3.0]], [[3.0], [0.0], [3.0]], [[2.0], [2.0], [2.0]]]], np.float32)
pair("nn_max_pool", lambda x: nn.max_pool(x, (2, 2), (1, 1)),
     lambda x: jax.lax.reduce_window(x, -INF, jax.lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "VALID"), POOL_IN)
pair("nn_max_pool_same", lambda x: nn.max_pool(x, (3, 3), (2, 2), "SAME"),
     lambda x: jax.lax.reduce_window(x, -INF, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"), POOL_IN)
pair("nn_global_max_pool", nn.global_max_pool, lambda x: jnp_ref.max(x, axis=(1, 2)), POOL_IN)


def _tangents(args):
    """Distinct tangents, so a rule that drops or doubles one argument's share shows."""
    return tuple(np.linspace(0.5, 1.5, np.size(a), dtype=np.float32).reshape(np.shape(a)) * (i + 1)
                 for i, a in enumerate(args))


def _weighted_sum(fg, jx, args):
    """``sum(f(x) * w)`` for both libraries, with distinct weights ``w``: the gradient is
    the VJP of ``w``, and a permutation of tied outputs (sort, top_k) changes it."""
    shape = jax.eval_shape(jx, *to_jax(args)).shape
    w = np.linspace(1.0, 2.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    w_fg, w_jx = to_fg(w), to_jax(w)
    return (lambda *a: jnp.sum(fg(*a) * w_fg)), (lambda *a: jnp_ref.sum(jx(*a) * w_jx))


@pytest.mark.parametrize("name", list(RECORDS))
def test_kink_value_and_jvp(name):
    fg, jx, args = RECORDS[name]
    fg_y, fg_t = fungrad.jvp(fg, to_fg(args), to_fg(_tangents(args)))
    jx_y, jx_t = jax.jvp(jx, to_jax(args), to_jax(_tangents(args)))
    assert_same(fg_y, jx_y, check_weak=False)
    assert_same(fg_t, jx_t, GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("name", list(RECORDS))
def test_kink_vjp(name):
    fg, jx, args = RECORDS[name]
    fg_loss, jx_loss = _weighted_sum(fg, jx, args)
    argnums = tuple(range(len(args)))
    assert_same(fungrad.grad(fg_loss, argnums)(*to_fg(args)),
                jax.grad(jx_loss, argnums)(*to_jax(args)), GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("name", list(RECORDS))
def test_kink_second_derivative(name):
    fg, jx, args = RECORDS[name]
    fg_loss, jx_loss = _weighted_sum(fg, jx, args)
    argnums = tuple(range(len(args)))
    fg_h = fungrad.jvp(fungrad.grad(fg_loss, argnums), to_fg(args), to_fg(_tangents(args)))[1]
    jx_h = jax.jvp(jax.grad(jx_loss, argnums), to_jax(args), to_jax(_tangents(args)))[1]
    assert_same(fg_h, jx_h, GRAD_TOL, check_weak=False)
