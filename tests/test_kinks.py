"""Derivatives at ties and kinks against jax: one record per function, evaluated exactly
where the function is not smooth (a tie of two arguments, repeated maxima, 0 of relu/abs,
the bounds of clip, equal arguments of logaddexp, -inf entries of logsumexp, ...).

At such points the derivative is a convention, and jax's convention is the reference:
``maximum`` splits the tangent 0.5/0.5, ``max`` spreads it evenly over the tied maxima,
``relu``'s derivative at 0 is 0, ``logaddexp(x, x)``'s is 0.5 per argument. Each record is
checked for its value, its JVP, its VJP and its second derivative (a JVP of the gradient).
"""
import functools
import types

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
from harness import GRAD_TOL, assert_same, to_fg, to_jax

INF = np.inf


def f32(*v):
    return np.array(v, np.float32)


TIES = f32(1.0, 3.0, 3.0, -2.0, 3.0, 0.0)          # a repeated maximum (3 at 1, 2, 4)
MAT = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, -1.0], [5.0, 5.0, 5.0]], np.float32)  # row ties
ZEROS = f32(0.0, 0.0, 0.0)
KINK0 = f32(0.0, -0.0, 1.0, -1.0)                   # 0 and its neighbours
GRID = f32(-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)    # the kinks of the hard activations

# name -> (fungrad function, jax function, arguments)
RECORDS = {}
FG = types.SimpleNamespace(np=jnp, lax=lax, nn=nn, sp=sp)
JX = types.SimpleNamespace(np=jnp_ref, lax=jax.lax, nn=nn_ref, sp=sp_ref)


def record(name, body, *args):
    """Register ``body(m)``, written once for both libraries: ``m`` holds ``np``, ``lax``,
    ``nn`` and ``sp`` (scipy.special) of fungrad or of jax."""
    RECORDS[name] = (lambda *a: body(FG)(*a), lambda *a: body(JX)(*a), args)


# elementwise binary ops at equal arguments
for op in ("maximum", "minimum", "fmax", "fmin"):
    record(op, lambda m, op=op: getattr(m.np, op), TIES, TIES)
    record(op + "_scalar", lambda m, op=op: (lambda x: getattr(m.np, op)(x, 3.0)), TIES)
record("lax_max", lambda m: m.lax.max, TIES, TIES)
record("lax_min", lambda m: m.lax.min, TIES, TIES)
for op in ("logaddexp", "logaddexp2"):
    record(op, lambda m, op=op: getattr(m.np, op), f32(0.0, 2.0, -INF, INF, -INF, 1.0, INF),
           f32(0.0, 2.0, -INF, INF, 1.0, -INF, 1.0))
    record(op + "_zero", lambda m, op=op: (lambda x: getattr(m.np, op)(x, 0.0)), KINK0)
    record(op + "_broadcast", lambda m, op=op: getattr(m.np, op), ZEROS[:, None], f32(0.0, 1.0))
record("where_tie", lambda m: (lambda x, y: m.np.where(x >= y, x, y)), TIES, TIES[::-1].copy())

# elementwise unary ops at their kinks
record("abs", lambda m: m.np.abs, KINK0)
record("sign", lambda m: m.np.sign, KINK0)
record("sqrt", lambda m: m.np.sqrt, f32(0.0, 1.0, 4.0))
record("cbrt", lambda m: m.np.cbrt, f32(0.0, 1.0, -8.0))
record("clip", lambda m: (lambda x: m.np.clip(x, -1.0, 1.0)), f32(-1.0, 1.0, 0.0, 2.0))
record("clip_bounds", lambda m: m.np.clip, f32(-1.0, 1.0, 0.0, 2.0), f32(-1.0, 0.0, 0.0, -1.0),
       f32(1.0, 1.0, 0.0, 3.0))
record("lax_clamp", lambda m: (lambda lo, x, hi: m.lax.clamp(lo, x, hi)), f32(-1.0, 0.0, 0.0),
       f32(-1.0, 1.0, 0.0), f32(1.0, 1.0, 0.0))
record("power_zero_exponent", lambda m: m.np.power, f32(0.0, 0.0, 2.0, 0.0),
       f32(0.0, 2.0, 0.0, 1.0))
record("power_scalar", lambda m: (lambda x: x ** 2.0), f32(0.0, -1.0))
record("power_half", lambda m: (lambda x: m.np.power(x, 0.5)), f32(0.0, 1.0))
record("integer_pow", lambda m: (lambda x: m.lax.integer_pow(x, 0) + m.lax.integer_pow(x, 3)),
       f32(0.0, 2.0))
record("float_power_zero", lambda m: (lambda x: m.np.float_power(x, 0.0)), f32(0.0, 2.0))
record("hypot", lambda m: m.np.hypot, f32(0.0, 3.0), f32(0.0, 4.0))

# activations at 0 and at their kinks
for act in ("relu", "relu6", "hard_tanh", "leaky_relu", "elu", "celu", "selu", "silu", "softplus",
            "log_sigmoid", "sigmoid", "hard_sigmoid", "hard_silu", "soft_sign", "squareplus",
            "mish"):
    record(act, lambda m, act=act: getattr(m.nn, act), GRID)
record("gelu", lambda m: m.nn.gelu, GRID)
record("gelu_exact", lambda m: (lambda x: m.nn.gelu(x, approximate=False)), GRID)
record("celu_alpha", lambda m: (lambda x: m.nn.celu(x, 2.0)), GRID)
record("hard_swish", lambda m: m.nn.hard_swish, GRID)
record("relu_leaky_slope", lambda m: (lambda x: m.nn.leaky_relu(x, 0.2)), GRID)

# special functions at the edges of their domains
record("sinc", lambda m: m.np.sinc, f32(0.0, 1.0, -0.5))
record("arctan2", lambda m: m.np.arctan2, f32(0.0, 1.0, 0.0), f32(0.0, 0.0, -1.0))
record("arccos", lambda m: m.np.arccos, f32(-1.0, 1.0, 0.0))
record("arccosh", lambda m: m.np.arccosh, f32(1.0, 2.0))
record("rsqrt", lambda m: m.lax.rsqrt, f32(0.0, 4.0))
record("fmod", lambda m: m.np.fmod, f32(4.0, -3.0, 0.0, 2.5), f32(2.0, 1.5, 1.0, 1.0))
record("remainder", lambda m: m.np.remainder, f32(4.0, -3.0, 0.0, 2.5), f32(2.0, 1.5, 1.0, -1.0))
record("rounding",
       lambda m: (lambda x: m.np.floor(x) + m.np.ceil(x) + m.np.round(x) + m.np.trunc(x)),
       f32(0.5, 1.0, -1.5))
record("heaviside", lambda m: m.np.heaviside, KINK0, f32(0.5, 0.5, 0.5, 0.5))
record("copysign", lambda m: m.np.copysign, KINK0, f32(1.0, -1.0, -0.0, 0.0))
record("xlogy", lambda m: m.sp.xlogy, f32(0.0, 0.0, 1.0), f32(0.0, 1.0, 0.0))
record("xlog1py", lambda m: m.sp.xlog1py, f32(0.0, 0.0, 1.0), f32(-1.0, 0.0, 1.0))
record("entr", lambda m: m.sp.entr, f32(0.0, 1.0, -1.0))
record("logit", lambda m: m.sp.logit, f32(0.0, 0.5, 1.0))
record("erfinv", lambda m: m.sp.erfinv, f32(-1.0, 0.0, 1.0))
record("interp", lambda m: (lambda x, fp: m.np.interp(x, m.np.array([0.0, 1.0, 2.0]), fp)),
       f32(0.0, 1.0, 2.0, -1.0, 3.0), f32(1.0, 3.0, 2.0))
record("std_constant", lambda m: m.np.std, f32(2.0, 2.0, 2.0))
record("var_constant", lambda m: m.np.var, f32(2.0, 2.0, 2.0))

# reductions with repeated maxima
for red in ("max", "min", "amax", "nanmax", "nanmin", "ptp"):
    record(red, lambda m, red=red: getattr(m.np, red), TIES)
    record(red + "_axis", lambda m, red=red: (lambda x: getattr(m.np, red)(x, axis=1)), MAT)
record("nanmax_nan", lambda m: (lambda x: m.np.nanmax(x, axis=0)),
       np.array([[3.0, np.nan], [3.0, 1.0], [np.nan, 1.0]], np.float32))
record("reduce_max", lambda m: (lambda x: m.lax.reduce_max(x, (0,))), MAT)
record("reduce_min", lambda m: (lambda x: m.lax.reduce_min(x, (1,))), MAT)
record("max_initial", lambda m: (lambda x: m.np.max(x, initial=3.0)), TIES)
record("max_where", lambda m: (
    lambda x: m.np.max(x, axis=1, where=m.np.array([True, False, True]), initial=-INF)), MAT)
record("take_argmax", lambda m: (
    lambda x: m.np.take_along_axis(x, m.np.argmax(x, axis=1, keepdims=True), axis=1)), MAT)
record("take_argmin", lambda m: (lambda x: x[m.np.argmin(x)]), TIES)
record("logsumexp", lambda m: m.sp.logsumexp, TIES)
record("logsumexp_inf", lambda m: (lambda x: m.sp.logsumexp(x, axis=1)),
       np.array([[-INF, 0.0, 0.0], [-INF, -INF, -INF], [-INF, 2.0, -INF]], np.float32))
record("nn_logsumexp", lambda m: (lambda x: m.nn.logsumexp(x, axis=1)), MAT)
record("softmax_inf", lambda m: m.nn.softmax, f32(-INF, 1.0, 1.0))
record("log_softmax_inf", lambda m: m.nn.log_softmax, f32(-INF, 1.0, 1.0))
record("norm", lambda m: m.np.linalg.norm, ZEROS)
for o in (1, INF, -INF, 0):
    record(f"norm_ord{o}", lambda m, o=o: (lambda x: m.np.linalg.norm(x, ord=o)),
           f32(0.0, 2.0, -2.0))
record("norm_fro", lambda m: m.np.linalg.norm, np.zeros((2, 2), np.float32))
record("norm_axis", lambda m: (lambda x: m.np.linalg.norm(x, axis=1)), np.zeros((2, 3), np.float32))
record("norm_matrix_ord1", lambda m: (lambda x: m.np.linalg.norm(x, ord=1)), MAT)
record("norm_matrix_inf", lambda m: (lambda x: m.np.linalg.norm(x, ord=INF)), MAT)
record("cumlogsumexp", lambda m: m.lax.cumlogsumexp, f32(-INF, 1.0, 1.0, -INF, 3.0))
record("logsumexp_b", lambda m: (lambda x: m.sp.logsumexp(x, b=m.np.array(
    [1.0, 0.0, 2.0, 1.0, 0.5, 1.0]))), TIES)
record("logsumexp_where", lambda m: (lambda x: m.sp.logsumexp(
    x, axis=1, where=m.np.array([[True, True, False]] * 3))), MAT)
record("logmeanexp", lambda m: (lambda x: m.nn.logmeanexp(x, axis=1)), MAT)
record("max_axes", lambda m: (lambda x: m.np.max(x, axis=(0, 1), keepdims=True)),
       np.array([[[1.0, 2.0], [2.0, 0.0]], [[2.0, 1.0], [0.0, 2.0]]], np.float32))

# signed zeros tie (-0.0 == 0.0) and NaN propagates: both are ties for the rules too
SIGNED = f32(0.0, -0.0, np.nan, 1.0, np.nan)
SIGNED_T = f32(-0.0, 0.0, 1.0, np.nan, np.nan)
for op in ("maximum", "minimum", "fmax", "fmin"):
    record(op + "_signed_nan", lambda m, op=op: getattr(m.np, op), SIGNED, SIGNED_T)
for red in ("max", "min", "nanmax", "nanmin"):
    record(red + "_signed_nan", lambda m, red=red: (lambda x: getattr(m.np, red)(x, axis=0)),
           np.stack([SIGNED, SIGNED_T, f32(0.0, -0.0, 2.0, 1.0, np.nan)]))
record("cummax_nan", lambda m: m.lax.cummax, f32(1.0, np.nan, 1.0, 2.0))
record("clip_nan", lambda m: (lambda x: m.np.clip(x, 0.0, 1.0)), f32(np.nan, -0.0, 0.0))
record("clip_crossed", lambda m: (lambda x: m.np.clip(x, 1.0, 0.0)), f32(0.5, 0.0, 1.0))
record("relu_nan", lambda m: m.nn.relu, f32(np.nan, -0.0))
record("abs_complex", lambda m: (lambda x, y: m.np.abs(m.lax.complex(x, y))), f32(0.0, 3.0),
       f32(0.0, 4.0))
record("sort_signed_nan", lambda m: m.np.sort, SIGNED)
record("logsumexp_posinf", lambda m: (lambda x: m.sp.logsumexp(x, axis=1)),
       np.array([[INF, 0.0, 1.0], [INF, INF, 0.0], [np.nan, 1.0, 1.0]], np.float32))
record("softmax_all_neginf", lambda m: m.nn.softmax, f32(-INF, -INF))
record("logaddexp_nan", lambda m: m.np.logaddexp, f32(np.nan, 1.0, -INF), f32(1.0, np.nan, np.nan))
record("partition", lambda m: (lambda x: m.np.partition(x, 2)), TIES)
record("top_k_rows", lambda m: (lambda x: m.lax.top_k(x, 2)[0]), MAT)
record("median_axis", lambda m: (lambda x: m.np.median(x, axis=0)), MAT)
record("nanmedian_nan", lambda m: (lambda x: m.np.nanmedian(x, axis=1)),
       np.array([[1.0, np.nan, 1.0, 2.0], [3.0, 3.0, np.nan, np.nan]], np.float32))
record("cummax_axis0", lambda m: (lambda x: m.lax.cummax(x, 0)), MAT)
record("take_argmax_signed_nan", lambda m: (
    lambda x: m.np.take_along_axis(x, m.np.argmax(x, axis=1, keepdims=True), axis=1)),
    np.array([[-0.0, 0.0, -1.0], [np.nan, 1.0, np.nan], [1.0, np.nan, 1.0]], np.float32))
# products through zeros: the derivative is the product of the other factors, not x / 0
ZEROED = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 2.0], [1.0, 2.0, 3.0]], np.float32)
record("prod_zeros", lambda m: (lambda x: m.np.prod(x, axis=1)), ZEROED)
record("reduce_prod_zeros", lambda m: (lambda x: m.lax.reduce_prod(x, (0, 1))), ZEROED)
record("cumprod_zeros", lambda m: (lambda x: m.np.cumprod(x, axis=1)), ZEROED)
record("lax_cumprod_zeros", lambda m: (lambda x: m.lax.cumprod(x, 1, reverse=True)), ZEROED)

# cumulative, windowed and order statistics with ties
for op in ("cummax", "cummin"):
    record(op, lambda m, op=op: getattr(m.lax, op), TIES)
    record(op + "_reverse", lambda m, op=op: (lambda x: getattr(m.lax, op)(x, 1, reverse=True)),
           MAT)
record("max_pool", lambda m: (
    lambda x: m.lax.reduce_window(x, -INF, m.lax.max, (2, 2), (1, 1), "VALID")), MAT)
record("max_pool_strided", lambda m: (
    lambda x: m.lax.reduce_window(x, -INF, m.lax.max, (1, 2), (1, 1), ((0, 0), (1, 1)))), MAT)
record("min_pool", lambda m: (
    lambda x: m.lax.reduce_window(x, INF, m.lax.min, (2, 1), (1, 1), "VALID")), MAT)
record("sort", lambda m: m.np.sort, TIES)
record("lax_sort", lambda m: (lambda x: m.lax.sort(x, 1)), MAT)
record("argsort_take", lambda m: (lambda x: x[m.np.argsort(x)]), TIES)
record("sort_descending", lambda m: (lambda x: m.np.sort(x, descending=True)), TIES)
record("argsort_descending_take", lambda m: (
    lambda x: x[m.np.argsort(x, descending=True)]), TIES)
record("argsort_descending_take_rows", lambda m: (lambda x: m.np.take_along_axis(
    x * m.np.arange(1.0, 4.0), m.np.argsort(x, axis=1, descending=True, stable=True), axis=1)), MAT)
record("top_k", lambda m: (lambda x: m.lax.top_k(x, 3)[0]), TIES)
for q in ("median", "quantile", "percentile", "nanmedian"):
    arg = {"quantile": (0.5,), "percentile": (40.0,)}.get(q, ())
    record(q, lambda m, q=q, arg=arg: (lambda x: getattr(m.np, q)(x, *arg)), TIES)
for method in ("linear", "lower", "higher", "nearest", "midpoint"):
    record("quantile_" + method, lambda m, method=method: (
        lambda x: m.np.quantile(x, m.np.array([0.0, 0.3, 0.5, 1.0]), axis=1, method=method)), MAT)


def pair(name, fg, jx, *args):
    """Register a fungrad function and its jax (or optax) counterpart."""
    RECORDS[name] = (fg, jx, args)


LABELS = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 0.0], np.float32)
pair("sigmoid_bce", lambda x: nn.sigmoid_binary_cross_entropy(x, LABELS),
     lambda x: optax.sigmoid_binary_cross_entropy(x, LABELS), GRID)
pair("huber_loss", lambda x, y: nn.huber_loss(x, y), lambda x, y: optax.huber_loss(x, y),
     f32(1.0, 0.0, -1.0, 2.0), f32(0.0, 0.0, 0.0, 2.0))
pair("l1_loss", nn.l1_loss, lambda x, y: jnp_ref.abs(x - y), f32(1.0, 0.0, 2.0), f32(1.0, 0.0, 0.0))
POOL_IN = np.array([[[[1.0], [3.0], [3.0]], [[3.0], [0.0], [3.0]], [[2.0], [2.0], [2.0]]]],
                   np.float32)
pair("nn_max_pool", lambda x: nn.max_pool(x, (2, 2), (1, 1)),
     lambda x: jax.lax.reduce_window(x, -INF, jax.lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "VALID"),
     POOL_IN)
pair("nn_max_pool_same", lambda x: nn.max_pool(x, (3, 3), (2, 2), "SAME"),
     lambda x: jax.lax.reduce_window(x, -INF, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"),
     POOL_IN)
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


def _derivatives(jvp, grad, fn, loss, args, tangents):
    """Value and JVP of ``fn``, gradient of ``loss`` and the JVP of that gradient (a
    Hessian-vector product), with one library's ``jvp`` and ``grad``."""
    argnums = tuple(range(len(args)))
    y, t = jvp(fn, tuple(args), tuple(tangents))
    hvp = jvp(grad(loss, argnums), tuple(args), tuple(tangents))[1]
    return y, t, grad(loss, argnums)(*args), hvp


@functools.cache
def _reference(name):
    """jax's derivatives for a record, all compiled at once (one compilation per record).

    Records with NaN inputs run eagerly: fused, XLA may fold ``0 * (x / 0)`` to 0 where
    jax's own op-by-op result (and fungrad's) is NaN.
    """
    fg, jx, args = RECORDS[name]
    loss = _weighted_sum(fg, jx, args)[1]
    run = lambda a, t: _derivatives(jax.jvp, jax.grad, jx, loss, a, t)  # noqa: E731
    if not any(np.isnan(a).any() for a in args):
        run = jax.jit(run)
    return run(to_jax(args), to_jax(_tangents(args)))


def _fungrad(name, part):
    """One of ``_derivatives``'s results for fungrad, computing only what it needs."""
    fg, jx, args = RECORDS[name]
    primals, tangents = tuple(to_fg(args)), tuple(to_fg(_tangents(args)))
    if part < 2:
        return fungrad.jvp(fg, primals, tangents)[part]
    grad = fungrad.grad(_weighted_sum(fg, jx, args)[0], tuple(range(len(args))))
    return grad(*primals) if part == 2 else fungrad.jvp(grad, primals, tangents)[1]


@pytest.mark.parametrize("name", list(RECORDS))
def test_kink_value_and_jvp(name):
    assert_same(_fungrad(name, 0), _reference(name)[0], check_weak=False)
    assert_same(_fungrad(name, 1), _reference(name)[1], GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("name", list(RECORDS))
def test_kink_vjp(name):
    assert_same(_fungrad(name, 2), _reference(name)[2], GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("name", list(RECORDS))
def test_kink_second_derivative(name):
    assert_same(_fungrad(name, 3), _reference(name)[3], GRAD_TOL, check_weak=False)
