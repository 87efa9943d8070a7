"""``fungrad.experimental.jet`` against ``jax.experimental.jet``: the same functions and Taylor
series, in float32 and float64, at orders 1 to 4; under and around ``jit``, ``vmap`` and
``grad``; order-k terms against k nested ``jvp``s for primitives jax's jet lacks; and the
errors of bad usage. Each jax reference is one ``quick_jit(jet(f))`` program per case
(eager jax would compile every primitive of every Taylor rule)."""
import types

import jax
import jax.experimental.jet as jjet
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad.errors import MissingRuleError
from fungrad.experimental.jet import jet
from harness import GRAD_TOL, assert_same, float_dtypes, quick_jit, to_fg  # noqa: F401

FG = types.SimpleNamespace(np=fungrad.numpy, lax=fungrad.lax, nn=fungrad.nn, jit=fungrad.jit,
                           vmap=fungrad.vmap, grad=fungrad.grad, jet=jet)
JX = types.SimpleNamespace(np=jax.numpy, lax=jax.lax, nn=jax.nn, jit=jax.jit, vmap=jax.vmap,
                           grad=jax.grad, jet=jjet.jet)

RNG = np.random.default_rng(0)
W1, B1, W2 = RNG.normal(size=(4, 3)), RNG.normal(size=(4,)), RNG.normal(size=(2, 4))
IDX = np.array([0, 5, 7])


def _tanh_net(m):
    w1, b1, w2 = (m.np.asarray(w) for w in (W1, B1, W2))
    return lambda x: m.np.tanh(w2 @ m.np.tanh(w1 @ x.astype(w1.dtype) + b1).astype(x.dtype))


def _structural(m):
    def f(x):
        y = m.np.concatenate([x[:, 1:], x[:, :1] * 2], axis=1)
        z = y.T.reshape(-1)[IDX]
        w = m.lax.dynamic_slice(x, (1, 0), (2, 2))
        p = m.np.pad(x, ((1, 0), (0, 1)))
        b = m.np.broadcast_to(x[0], (2, 4))
        return z * w.sum() + p.mean() * b[:, ::2].sum() + m.np.squeeze(x[None, 1:2, ::-1])[:3]
    return f


# name: (builder(m) -> f, argument shapes, input range, order)
CASES = {
    "sin_exp_log1p": (lambda m: lambda x: m.np.sin(m.np.exp(x)) * m.np.log1p(x ** 2),
                      [(5,)], (-1, 1), 4),
    "scalar": (lambda m: lambda x: m.np.sin(m.np.exp(x)) * m.np.log1p(x ** 2),
               [()], (-1, 1), 3),
    "tanh_net": (_tanh_net, [(3,)], (-1, 1), 3),
    "two_args_dot": (lambda m: lambda x, y: m.np.dot(x, y) * x + y / (1 + x ** 2),
                     [(3,), (3,)], (-1, 1), 3),
    "matmul": (lambda m: lambda a, b: m.np.sin(a @ b), [(2, 3), (3, 4)], (-1, 1), 2),
    "reductions": (lambda m: lambda x: (m.np.sum(x ** 3, axis=0) + m.np.max(x, axis=1).sum()
                                        + m.np.mean(m.np.exp(x)) + m.np.cumsum(x, axis=1)[0]
                                        + m.np.min(x)), [(3, 4)], (-1, 1), 3),
    "sqrt_rsqrt_div": (lambda m: lambda x: (m.np.sqrt(x) / (1 + x ** 2) + m.lax.rsqrt(x)
                                            + 1 / x), [(4,)], (0.5, 2), 4),
    "pow": (lambda m: lambda x, y: x ** y + x ** 2.5 + x ** -2 + x ** 5 + x ** 0,
            [(3,), (3,)], (0.5, 2), 3),
    "exp_log": (lambda m: lambda x: m.np.log(x) * m.np.expm1(x) + m.np.exp(-x ** 2),
                [(4,)], (0.5, 2), 4),
    "trig": (lambda m: lambda x: (m.np.cos(x) * m.np.sin(2 * x) + m.np.tanh(x) * m.np.sinh(x)
                                  - m.np.cosh(x)), [(4,)], (-1, 1), 4),
    "logistic_erf": (lambda m: lambda x: m.nn.sigmoid(x) * m.lax.erf(x) + m.lax.erfc(x) ** 2,
                     [(4,)], (-1, 1), 3),
    # (jax's jet of max and min needs operands of one shape)
    "piecewise": (lambda m: lambda x, y: (m.np.abs(x) + m.np.maximum(x, y)
                                          * m.np.minimum(x, m.np.full_like(x, 0.5))
                                          + m.np.where(x > 0, x ** 2, -x) + m.np.sign(x) * x
                                          + m.np.floor(x)),
                  [(5,), (5,)], (-1, 1), 2),
    "structural": (_structural, [(3, 4)], (-1, 1), 2),
    "jitted_inner": (lambda m: lambda x, y: m.jit(lambda z, c: m.np.sin(z) * m.np.exp(c))(x, 2.0)
                     * x + m.jit(lambda z: z ** 2)(y), [(3,), (3,)], (-1, 1), 3),
    # (jax's jet of relu and softplus raises UnexpectedTracerError: see test_custom_jvp)
    "nn_custom_jvp": (lambda m: lambda x: (m.nn.silu(x) + m.nn.softmax(x)
                                           + m.nn.logsumexp(x) + m.nn.gelu(x)),
                      [(4,)], (-1, 1), 3),
    "constant_output": (lambda m: lambda x: (x * 2, m.np.ones(3), {"s": m.np.sum(x)}),
                        [(3,)], (-1, 1), 2),
}


def _inputs(shapes, lo, hi, order, dtype):
    primals = tuple(RNG.uniform(lo, hi, size=s).astype(dtype) for s in shapes)
    series = tuple(tuple(RNG.uniform(-1, 1, size=s).astype(dtype) for _ in range(order))
                   for s in shapes)
    return primals, series


def _jax_ref(build, primals, series, **kw):
    f = build(JX)
    return quick_jit(lambda p, s: jjet.jet(f, p, s, **kw))(primals, series)


def _check(out, ref):
    """``assert_same`` with ``GRAD_TOL``, the absolute tolerance scaled by the largest
    magnitude in each leaf: a Taylor term is a sum of products of lower terms, so its rounding
    error follows the largest of them, not the element (jax's float32 sqrt, ``exp(log(x)/2)``,
    is off by about 5e-6 on terms of size 8, fungrad's by 1e-6)."""
    fg_leaves, ref_leaves = fungrad.tree.leaves(out), jax.tree.leaves(ref)
    assert fungrad.tree.structure(out) == fungrad.tree.structure(
        jax.tree.unflatten(jax.tree.structure(ref), [0] * len(ref_leaves)))
    for a, b in zip(fg_leaves, ref_leaves):
        scale = max(1.0, float(np.max(np.abs(np.asarray(b)), initial=0.0)))
        assert_same(a, b, table=GRAD_TOL, atol=GRAD_TOL[np.dtype(b.dtype)][1] * scale)


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_jax(name, dtype):
    build, shapes, (lo, hi), order = CASES[name]
    primals, series = _inputs(shapes, lo, hi, order, dtype)
    ref = _jax_ref(build, primals, series)
    out = jet(build(FG), to_fg(primals), to_fg(series))
    _check(out, ref)
    # A lower order gives the leading terms of the higher one.
    if order > 1:
        low = jet(build(FG), primals, tuple(s[:1] for s in series))
        _check(low, jax.tree.map(lambda t: t, (ref[0], jax.tree.map(
            lambda terms: terms[:1], ref[1], is_leaf=lambda v: isinstance(v, list)))))


def test_orders_and_jet2(dtype):
    """Orders 1 to 4, with and without factorial scaling (jax's references in one program)."""
    build = CASES["sin_exp_log1p"][0]
    inputs = [_inputs([(3,)], -1, 1, order, dtype) for order in (1, 2, 3, 4)]
    f = build(JX)
    refs = quick_jit(lambda args: [jjet.jet(f, p, s, factorial_scaled=scaled)
                                   for p, s in args for scaled in (True, False)])(inputs)
    outs = [jet(build(FG), p, s, factorial_scaled=scaled)
            for p, s in inputs for scaled in (True, False)]
    for out, ref in zip(outs, refs):
        _check(out, ref)


def test_python_scalars_weak_like_jax():
    f = lambda m: lambda x: m.np.sin(m.np.exp(x))  # noqa: E731
    out = jet(f(FG), (0.5,), ((1.0, 0.0, 0.0),))
    _check(out, jjet.jet(f(JX), (0.5,), ((1.0, 0.0, 0.0),)))


def _nested_jvp(f, x, v, order):
    """The derivatives 1..order of ``t -> f(x + t v)`` at 0, by nested ``fungrad.jvp``."""
    g = lambda t: f(x + t * v)  # noqa: E731
    out = []
    for _ in range(order):
        g = (lambda h: lambda t: fungrad.jvp(h, (t,), (fnp.ones_like(t),))[1])(g)
        out.append(g(fnp.zeros((), x.dtype)))
    return out


NESTED = {
    "sin_exp_log1p": (CASES["sin_exp_log1p"][0](FG), (-1, 1)),
    "tan_atan_asin": (lambda x: fnp.tan(x) * fnp.arctan(x) + fnp.arcsin(x / 2)
                      - fnp.arccos(x / 3), (-0.8, 0.8)),
    "asinh_acosh_atanh": (lambda x: fnp.arcsinh(x) + fnp.arccosh(x + 2) * fnp.arctanh(x / 2),
                          (-0.8, 0.8)),
    "pow_rem_clamp": (lambda x: fnp.fmod(x * 3, 0.7) * (x + 2) ** fnp.cos(x)
                      + fungrad.lax.clamp(-0.5, x, 0.5) ** 3, (-1, 1)),
}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_against_nested_jvp(name, dtype):
    f, (lo, hi) = NESTED[name]
    x = RNG.uniform(lo, hi, size=(4,)).astype(dtype)
    v = RNG.uniform(-1, 1, size=(4,)).astype(dtype)
    zero = np.zeros_like(v)
    y, terms = jet(f, (x,), ((v, zero, zero),))
    assert_same(y, f(fnp.asarray(x)))
    for got, want in zip(terms, _nested_jvp(f, fnp.asarray(x), fnp.asarray(v), 3)):
        assert_same(got, want, table=GRAD_TOL)


# --------------------------------------------------------------------------- composition

def _composed(m, kind, f, primals, series):
    jet_ = lambda p, s: m.jet(f, (p,), (s,))  # noqa: E731
    if kind == "jit_of_jet":
        return m.jit(jet_)(primals, series)
    if kind == "vmap_of_jet":
        return m.vmap(jet_)(primals, series)
    if kind == "jet_of_vmap":
        return m.jet(m.vmap(f), (primals,), (series,))
    if kind == "jet_of_jit":
        return m.jet(m.jit(f), (primals,), (series,))
    assert kind == "grad_of_jet"
    return m.grad(lambda p: m.np.sum(jet_(p, series)[1][-1]))(primals)


@pytest.mark.parametrize("kind", ["jit_of_jet", "vmap_of_jet", "jet_of_vmap", "jet_of_jit",
                                  "grad_of_jet"])
def test_composition(kind, dtype):
    build = CASES["sin_exp_log1p"][0]
    primals, series = _inputs([(2, 3)], -1, 1, 3, dtype)
    ref = quick_jit(lambda p, s: _composed(JX, kind, build(JX), p, s))(primals[0], series[0])
    _check(_composed(FG, kind, build(FG), primals[0], series[0]), ref)


def test_custom_jvp_uses_the_primal_function():
    """As in jax: the custom rule says nothing of higher derivatives, so jet runs ``fun``."""
    @fungrad.custom_jvp
    def f(x):
        return fnp.sin(x) * x

    f.defjvp(lambda primals, tangents: (f(primals[0]), tangents[0] * 100.0))
    x, series = np.float32([0.3, -1.2]), (np.float32([1, 2]), np.float32([0.5, -1]))
    assert_same(jet(f, (x,), (series,)), jet(lambda x: fnp.sin(x) * x, (x,), (series,)))
    assert_same(jet(lambda x: fungrad.nn.relu(x) + fungrad.nn.softplus(x), (x,), (series,)),
                jet(lambda x: fnp.maximum(x, 0.0) + fnp.logaddexp(x, 0.0), (x,), (series,)))
    # jit traced inside jet compiles its body then: a max with a literal once failed there.
    assert_same(jet(fungrad.jit(fungrad.nn.relu), (x,), (series,)),
                jet(lambda x: fnp.maximum(x, 0.0), (x,), (series,)))


def test_cond_takes_the_branch():
    f = lambda x: fungrad.lax.cond(x.sum() > 0, fnp.sin, lambda z: fnp.exp(z) * 2, x)  # noqa
    for x in (np.float32([0.3, 0.5]), np.float32([-0.3, -0.5])):
        series = (np.float32([1, 2]), np.float32([0.5, -1]))
        branch = fnp.sin if x.sum() > 0 else (lambda z: fnp.exp(z) * 2)
        assert_same(jet(f, (x,), (series,)), jet(branch, (x,), (series,)))
        assert_same(fungrad.jit(lambda p, s: jet(f, (p,), (s,)))(x, series),
                    jet(branch, (x,), (series,)), table=GRAD_TOL)


def test_pytree_arguments():
    f = lambda d: fnp.sin(d["a"]) * d["b"]  # noqa: E731
    a, b = np.float32([0.1, 0.2]), np.float32([1.0, 2.0])
    ta, tb = np.float32([1, 0]), np.float32([0, 1])
    out = jet(f, ({"a": a, "b": b},), (({"a": ta, "b": tb},),))
    assert_same(out, jet(lambda a, b: fnp.sin(a) * b, (a, b), ((ta,), (tb,))))


def test_integer_input_has_zero_series():
    y, (t1,) = jet(lambda x, n: x * n, (np.float32([1, 2]), np.int32(3)),
                   ((np.float32([1, 1]),), (np.int32(5),)))
    assert_same(t1, np.float32([3, 3]))


# --------------------------------------------------------------------------- errors

def test_errors_name_jet_and_the_argument():
    f, x, t = fnp.sin, np.float32([1.0, 2.0]), np.float32([1.0, 1.0])
    with pytest.raises(TypeError, match=r"jet\(sin\): series must be a tuple or list"):
        jet(f, (x,), t)
    with pytest.raises(ValueError, match=r"jet\(sin\): primals has 1 arguments but series has 2"):
        jet(f, (x,), ((t,), (t,)))
    with pytest.raises(ValueError, match=r"inconsistent lengths"):
        jet(lambda a, b: a * b, (x, x), ((t,), (t, t)))
    with pytest.raises(ValueError, match=r"jet\(sin\): series\[0\]\[1\] has shape \(3,\) but "
                                         r"primals\[0\] has shape \(2,\)"):
        jet(f, (x,), ((t, np.ones(3, np.float32)),))
    with pytest.raises(ValueError, match=r"series\[0\]\[0\] has the structure"):
        jet(lambda d: d["a"], ({"a": x},), ((t,),))
    with pytest.raises(TypeError, match=r"series\[0\] must be a tuple or list"):
        jet(f, (x,), (t,))
    with pytest.raises(TypeError, match="fun must be callable"):
        jet(3, (x,), ((t,),))


def test_missing_rule_names_the_primitive():
    with pytest.raises(MissingRuleError, match=r"'cumprod' has no jet rule.*jet\(<lambda>\)"):
        jet(lambda x: fnp.cumprod(x), (np.float32([1, 2]),), ((np.float32([1, 1]),),))
    # Without series to propagate, the primitive simply runs.
    y, (t,) = jet(lambda x: fnp.cumprod(fnp.ones(2)) * x, (np.float32([1, 2]),),
                  ((np.float32([1, 1]),),))
    assert_same(t, fnp.ones(2))
