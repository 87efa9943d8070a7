"""reduce_window (sum / max / min pooling) against jax: values, JVP, VJP, vmap,
tie and NaN selection, second derivatives, transposition identities, errors."""
import jax
import jax.numpy as jjnp
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import lax
from harness import GRAD_TOL, assert_same, compare, compare_transforms, rand, to_fg, to_jax

RNG = np.random.default_rng(1)
INIT = {"add": 0.0, "max": -np.inf, "min": np.inf}

# (computation name, operand shape, window_dimensions, window_strides, padding,
#  base_dilation, window_dilation)
CASES = [
    ("max", (2, 3, 6, 6), (1, 1, 2, 2), (1, 1, 2, 2), "VALID", None, None),
    ("max", (2, 5, 7, 3), (1, 3, 3, 1), (1, 2, 2, 1), "SAME", None, None),
    ("min", (4, 7), (2, 3), (1, 2), ((1, 0), (2, 1)), None, None),
    ("max", (9,), (3,), (2,), ((1, 1),), (2,), None),
    ("add", (2, 3, 6, 6), (1, 1, 3, 3), (1, 1, 2, 2), "SAME", None, None),
    ("add", (5, 6), (3, 2), (2, 1), ((1, 1), (0, 2)), (2, 1), (1, 2)),
    ("add", (8,), (4,), (3,), ((-1, 2),), None, (2,)),
    ("add", (3, 0), (2, 1), (1, 1), "VALID", None, None),
    # SAME padding with base dilation: pads from the undilated shape, as jax
    ("add", (6,), (3,), (2,), "SAME", (2,), None),
    ("max", (5, 4), (3, 2), (1, 2), "SAME_LOWER", (3, 2), None),
]


def _fns(name, wd, ws, pad, bd, wdl):
    fg = lambda x: lax.reduce_window(x, INIT[name], getattr(lax, name), wd, ws, pad, bd, wdl)
    jx = lambda x: jax.lax.reduce_window(x, INIT[name], getattr(jax.lax, name), wd, ws, pad, bd,
                                         wdl)
    return fg, jx


@pytest.mark.parametrize("name,shape,wd,ws,pad,bd,wdl", CASES)
def test_reduce_window_transforms(name, shape, wd, ws, pad, bd, wdl):
    fg, jx = _fns(name, wd, ws, pad, bd, wdl)
    compare_transforms(fg, jx, [rand(RNG, shape)], RNG,
                       vmap_axes=(0, 1, -1) if len(shape) > 1 else (0, -1))


def test_max_pool_window_dilation_jvp_and_transpose():
    # jax has no VJP for max pooling with window dilation; we check our VJP is the
    # transpose of the JVP (<ct, J t> == <J^T ct, t>) and the JVP against jax.
    fg, jx = _fns("max", (2, 2), (1, 2), ((1, 1), (0, 1)), (1, 1), (2, 2))
    x, t = rand(RNG, (6, 7)), rand(RNG, (6, 7))
    out, jt = fungrad.jvp(fg, to_fg((x,)), to_fg((t,)))
    assert_same(jt, jax.jvp(jx, to_jax((x,)), to_jax((t,)))[1], GRAD_TOL)
    ct = rand(RNG, np.shape(out))
    (jct,) = fungrad.vjp(fg, to_fg(x))[1](to_fg(ct))
    np.testing.assert_allclose(np.sum(ct * np.asarray(jt)), np.sum(np.asarray(jct) * t), rtol=1e-5)


def test_max_pool_ties_and_nans_select_like_xla():
    fg, jx = _fns("max", (2, 2), (1, 1), "VALID", None, None)
    t = np.arange(9.0, dtype=np.float32).reshape(3, 3)
    for x in (np.ones((3, 3), np.float32),
              np.array([[1, np.nan, 1], [1, 1, np.nan], [1, 1, 1]], np.float32)):
        assert_same(fungrad.jvp(fg, to_fg((x,)), to_fg((t,))),
                    jax.jvp(jx, to_jax((x,)), to_jax((t,))))
        assert_same(fungrad.grad(lambda v: lax.reduce_sum(fg(v), (0, 1)))(to_fg(x)),
                    jax.grad(lambda v: jx(v).sum())(to_jax(x)))
    fg1, jx1 = _fns("min", (3,), (1,), ((1, 1),), None, None)
    x = np.array([2.0, 2.0, 2.0, 2.0], np.float32)
    assert_same(fungrad.grad(lambda v: lax.reduce_sum(fg1(v), (0,)))(to_fg(x)),
                jax.grad(lambda v: jx1(v).sum())(to_jax(x)))


@pytest.mark.parametrize("name,dt", [("max", np.int32), ("min", np.uint8), ("max", np.bool_),
                                     ("add", np.int32), ("add", ml_dtypes.bfloat16),
                                     ("max", ml_dtypes.bfloat16), ("add", np.float16)])
def test_reduce_window_dtypes(name, dt):
    x = rand(RNG, (2, 6, 5), dt)
    init = INIT[name] if np.dtype(dt).kind == "f" or dt == ml_dtypes.bfloat16 else {
        "add": 0, "max": np.iinfo(dt).min if dt != np.bool_ else False,
        "min": np.iinfo(dt).max if dt != np.bool_ else True}[name]
    init = np.asarray(init, dt)
    compare(lambda v: lax.reduce_window(v, init, getattr(lax, name), (1, 2, 3), (1, 2, 1), "SAME"),
            lambda v: jax.lax.reduce_window(v, init, getattr(jax.lax, name), (1, 2, 3), (1, 2, 1),
                                            "SAME"), x)


def test_pooling_second_derivatives():
    def loss(lib, name):
        def f(x):
            y = lib.lax.reduce_window(x, INIT[name], getattr(lib.lax, name), (1, 3, 3), (1, 2, 2),
                                      "SAME")
            return lib.lax.reduce_sum(lib.lax.mul(y, lib.lax.sin(y)), (0, 1, 2))
        return f
    x, t = rand(RNG, (2, 5, 6)), rand(RNG, (2, 5, 6))
    for name in ("max", "add"):
        assert_same(fungrad.jvp(fungrad.grad(loss(fungrad, name)), to_fg((x,)), to_fg((t,))),
                    jax.jvp(jax.grad(loss(jax, name)), to_jax((x,)), to_jax((t,))), GRAD_TOL)


def test_pooling_wrappers_and_vmap_of_grad():
    x = rand(RNG, (3, 2, 6, 6))
    f = lambda v: lax.reduce_window_max(v, (1, 2, 2), (1, 2, 2))
    jf = lambda v: jax.lax.reduce_window(v, -jjnp.inf, jax.lax.max, (1, 2, 2), (1, 2, 2), "VALID")
    g = fungrad.vmap(fungrad.grad(lambda v: lax.reduce_sum(lax.mul(f(v), f(v)), (0, 1, 2))),
                     in_axes=2)
    jg = jax.vmap(jax.grad(lambda v: (jf(v) ** 2).sum()), in_axes=2)
    assert_same(g(to_fg(x)), jg(to_jax(x)), GRAD_TOL)
    assert_same(lax.reduce_window_sum(to_fg(x), (1, 1, 2, 2), (1, 1, 1, 1), "SAME"),
                jax.lax.reduce_window(to_jax(x), 0.0, jax.lax.add, (1, 1, 2, 2), (1, 1, 1, 1),
                                      "SAME"))
    assert_same(lax.reduce_window_min(to_fg(x), (1, 2, 1, 3)),
                jax.lax.reduce_window(to_jax(x), jjnp.inf, jax.lax.min, (1, 2, 1, 3),
                                      (1, 1, 1, 1), "VALID"))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lax.reduce_window(np.ones((4, 4), np.float32), -np.inf, lax.max, (2,), (1,)),
     TypeError, "one entry per operand dimension"),
    (lambda: lax.reduce_window(np.ones((4, 4), np.float32), 1.0, lax.max, (2, 2)),
     NotImplementedError, "only lax.add"),
    (lambda: lax.reduce_window(np.ones((4,), np.float32), 0.0, lax.mul, (2,)), NotImplementedError,
     "only lax.add"),
    (lambda: lax.reduce_window_sum(np.ones((4,), np.float32), (2,), (1,), ((-3, -3),)), ValueError,
     "negative padding"),
    (lambda: lax.reduce_window_sum(np.ones((4,), np.float32), (0,)), TypeError, "must be positive"),
    (lambda: lax.reduce_window_sum(np.ones((4,), np.bool_), (2,)), TypeError, "reduce_window_sum"),
])
def test_reduce_window_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
