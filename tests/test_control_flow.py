"""Control flow (cond, switch, scan, map, fori_loop, while_loop, associative_scan)
against jax on the same inputs: values (with weak types), JVP, VJP and vmap,
nested and higher-order use, closures over traced values, and error messages.

Every case is written once against a ``lax``-like module ``L`` and run with
``fungrad.lax`` and ``jax.lax``.
"""
from __future__ import annotations

import zlib

import jax
import jax.lax as jl
import numpy as np
import pytest

import fungrad
from fungrad import lax
from harness import GRAD_TOL, assert_same, rand, to_fg, to_jax

F32 = np.float32


def _rng(name: str) -> np.random.Generator:
    # crc32, not hash(): string hashes change from process to process (PYTHONHASHSEED)
    return np.random.default_rng(zlib.crc32(name.encode()))


# --------------------------------------------------------------------------- case builders

def cond_basic(L):
    def f(p, x, w):  # w is closed over by the true branch
        return L.cond(p, lambda x: L.sin(L.mul(x, w)), lambda x: L.add(L.cos(x), w), x)
    return f


def cond_pytree(L):
    def f(p, x, y):
        def t(a):
            return {"s": L.mul(a[0], a[1]), "t": (L.exp(a[1]), a[0])}
        def e(a):
            return {"s": L.sub(a[0], a[1]), "t": (a[1], L.tanh(a[0]))}
        return L.cond(p, t, e, (x, y))
    return f


def cond_number_pred(L):
    def f(k, x):  # an integer predicate is compared with 0; closes over nothing
        return L.cond(k, lambda x: L.mul(x, 2.0), lambda x: L.neg(x), x)
    return f


def cond_literal_outputs(L):
    def f(p, x):  # a branch returning a Python scalar and a passthrough
        return L.cond(p, lambda x: (1.0, x), lambda x: (L.reduce_sum(x, (0,)), L.sin(x)), x)
    return f


def switch_basic(L):
    def f(i, x, w):
        return L.switch(i, [lambda x: L.sin(x), lambda x: L.mul(x, w), lambda x: L.neg(x)], x)
    return f


def scan_rnn(L, reverse=False, unroll=1):
    def f(h0, xs, w, b):  # the body closes over w and b
        def body(h, x):
            h = L.tanh(L.add(L.add(L.dot(h, w), x), b))
            return h, L.mul(h, h)
        return L.scan(body, h0, xs, reverse=reverse, unroll=unroll)
    return f


def scan_pytree(L):
    def f(x, xs):
        def body(c, x):
            a, (b, n) = c["a"], c["b"]
            a2 = L.add(L.mul(a, x["u"]), b)
            return {"a": a2, "b": (L.sin(b), L.add(n, 1))}, (L.mul(a2, x["v"]), n)
        init = {"a": x, "b": (L.cos(x), 0)}
        return L.scan(body, init, {"u": xs, "v": L.exp(xs)})
    return f


def scan_no_xs(L):
    def f(x):
        return L.scan(lambda c, _: (L.sin(c), L.mul(c, 2.0)), x, None, length=4)
    return f


def scan_weak_init(L):
    def f(xs):  # a Python-scalar init is promoted to the body's output type
        return L.scan(lambda c, x: (L.add(c, x), L.mul(c, 2.0)), 0.0, xs)
    return f


def fori_static(L):
    def f(x, w):
        return L.fori_loop(1, 4, lambda i, c: L.sin(L.mul(L.mul(c, w),
                                                      L.convert_element_type(i, F32))), x)
    return f


def map_basic(L):
    def f(xs, w):
        return L.map(lambda x: (L.mul(L.sin(x), w), L.reduce_sum(x, (0,))), xs)
    return f


def assoc_pairs(L, reverse=False, axis=0):
    def f(a, b):  # the linear recurrence h = a * h + b as an associative operator
        def op(p, q):
            return (L.mul(p[0], q[0]), L.add(L.mul(q[0], p[1]), q[1]))
        return L.associative_scan(op, (a, b), reverse=reverse, axis=axis)
    return f


def nested(L):
    def f(p, x, w):
        def body(c, xi):
            c2 = L.cond(L.gt(xi, 0.0), lambda c: L.sin(L.mul(c, L.reduce_sum(w, (0,)))),
                        lambda c: L.mul(c, xi), c)
            return c2, c2
        return L.cond(p, lambda x: L.scan(body, L.reduce_sum(x, (0,)), x)[1], L.neg, x)
    return f


def while_basic(L):
    def f(x, w):
        def body(c):
            i, y = c
            return L.add(i, 1), L.sin(L.mul(y, w))
        return L.while_loop(lambda c: L.lt(c[0], 3), body, (0, x))
    return f


def while_data_dependent(L):
    def f(x):  # each batch member runs a different number of iterations under vmap
        return L.while_loop(lambda c: L.lt(L.reduce_sum(c[1], (0,)), 10.0),
                            lambda c: (L.add(c[0], 1), L.add(L.mul(c[1], 1.5), 1.0)), (0, x))
    return f


def fori_dynamic(L):
    def f(n, x):
        return L.fori_loop(0, n, lambda i, c: L.sin(L.add(c, L.convert_element_type(i, F32))), x)
    return f


# --------------------------------------------------------------------------- the table

def _b(x):
    return np.asarray(x, np.bool_)


def _i(x):
    return np.asarray(x, np.int32)


# name -> (builder, args, vmap_axes). Each case is checked for its value (with weak
# types), JVP, VJP and vmap at the given axes, eagerly and under jit. Boolean/integer
# predicates are batched too, so vmap runs every branch and selects.
DIFFERENTIABLE = {
    "cond_true": (cond_basic, lambda r: [_b(True), rand(r, (3,)), rand(r, (3,))], (0, 1)),
    "cond_false": (cond_basic, lambda r: [_b(False), rand(r, (3,)), rand(r, (3,))], (0,)),
    "cond_pytree": (cond_pytree, lambda r: [_b(True), rand(r, (2, 3)), rand(r, (2, 3))], (0, 2)),
    "cond_int_pred": (cond_number_pred, lambda r: [_i(0), rand(r, (4,))], (0,)),
    "cond_literal_outputs": (cond_literal_outputs, lambda r: [_b(True), rand(r, (3,))], (0,)),
    "switch_0": (switch_basic, lambda r: [_i(0), rand(r, (3,)), rand(r, (3,))], (0,)),
    "switch_clamp_high": (switch_basic, lambda r: [_i(7), rand(r, (3,)), rand(r, (3,))], ()),
    "switch_clamp_low": (switch_basic, lambda r: [_i(-2), rand(r, (3,)), rand(r, (3,))], ()),
    "scan_rnn": (scan_rnn, lambda r: [rand(r, (3,)), rand(r, (5, 3)), rand(r, (3, 3), low=-1,
                                      high=1), rand(r, (3,))], (0, 1)),
    "scan_rnn_reverse": (lambda L: scan_rnn(L, reverse=True),
                         lambda r: [rand(r, (3,)), rand(r, (4, 3)), rand(r, (3, 3)),
                                    rand(r, (3,))], (0,)),
    "scan_rnn_unroll": (lambda L: scan_rnn(L, unroll=2),
                        lambda r: [rand(r, (3,)), rand(r, (5, 3)), rand(r, (3, 3)),
                                   rand(r, (3,))], (0,)),
    "scan_pytree": (scan_pytree, lambda r: [rand(r, (2,)), rand(r, (4, 2))], (0,)),
    "scan_no_xs": (scan_no_xs, lambda r: [rand(r, (2, 3))], (0, 2)),
    "scan_weak_init": (scan_weak_init, lambda r: [rand(r, (5,))], (0,)),
    "fori_static": (fori_static, lambda r: [rand(r, (3,)), rand(r, (3,))], (0,)),
    "map": (map_basic, lambda r: [rand(r, (4, 3)), rand(r, (3,))], (0, 1)),
    "assoc_scan": (assoc_pairs, lambda r: [rand(r, (7, 2), low=0.5, high=1),
                                           rand(r, (7, 2))], (0,)),
    "assoc_scan_reverse_axis1": (lambda L: assoc_pairs(L, reverse=True, axis=1),
                                 lambda r: [rand(r, (2, 6), low=0.5, high=1),
                                            rand(r, (2, 6))], (0,)),
    "nested_true": (nested, lambda r: [_b(True), rand(r, (4,)), rand(r, (3,))], (0,)),
    "nested_false": (nested, lambda r: [_b(False), rand(r, (4,)), rand(r, (3,))], ()),
}

# Forward mode only (a dynamic trip count has no reverse mode): no VJP.
FORWARD_ONLY = {
    "while_basic": (while_basic, lambda r: [rand(r, (3,)), rand(r, (3,))], (0,)),
    "while_data_dependent": (while_data_dependent,
                             lambda r: [rand(r, (2,), low=0, high=2)], (0, 1)),
    "fori_dynamic": (fori_dynamic, lambda r: [_i(3), rand(r, (3,))], (0,)),
}


class _Lib:
    """The transformation API of one library (``fungrad`` or ``jax``)."""

    def __init__(self, L, tr, jit):
        self.L, self.tr, self.jit = L, tr, jit


FG = _Lib(lax, fungrad, fungrad.jit)
JX = _Lib(jl, jax, jax.jit)


def _everything(lib: _Lib, builder, diff, vmap_axes, forward_only: bool):
    """A function computing a case's value, JVP, VJP and vmaps (one jax compilation)."""
    f = builder(lib.L)

    def restrict(args):
        def restricted(*d):
            full = list(args)
            for i, v in zip(diff, d):
                full[i] = v
            return f(*full)
        return restricted, tuple(args[i] for i in diff)

    def jvp(args, tangents):
        restricted, primals = restrict(args)
        return lib.tr.jvp(restricted, primals, tuple(tangents))[1]

    def run(args, tangents, cts, batched):
        out = {"value": f(*args), "vmap": [lib.tr.vmap(f, in_axes=axes)(*b)
                                           for axes, b in zip(vmap_axes, batched)]}
        if diff:
            out["jvp"] = jvp(args, tangents)
            if forward_only:  # vmap of the JVP: batched tangents and predicates together
                axes = vmap_axes[0]
                out["vmap_jvp"] = lib.tr.vmap(jvp, in_axes=(list(axes), [axes[i] for i in diff]))(
                    batched[0], [batched[0][i] for i in diff])
            else:
                restricted, primals = restrict(args)
                out["vjp"] = lib.tr.vjp(restricted, *primals)[1](cts)
        return out
    return run


def _check_case(name: str, builder, make_args, vmap_axes, forward_only: bool) -> None:
    rng = _rng(name)
    args = make_args(rng)
    diff = tuple(i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f")
    tangents = [rand(rng, np.shape(args[i])) for i in diff]
    cts = jax.tree_util.tree_map(lambda s: rand(rng, s.shape, s.dtype),
                                 jax.eval_shape(builder(jl), *to_jax(args)))
    axes_list, batched = [], []
    for ax in vmap_axes:  # 3 random copies of each argument, stacked along ``ax``
        axes = tuple(ax if np.ndim(a) >= ax else 0 for a in args)
        axes_list.append(axes)
        batched.append([np.stack([rand(rng, np.shape(a), np.asarray(a).dtype)
                                  for _ in range(3)], axis=d) for a, d in zip(args, axes)])
    inputs = (args, tangents, cts, batched)
    ref = jax.jit(_everything(JX, builder, diff, axes_list, forward_only))(*to_jax(inputs))
    eager = _everything(FG, builder, diff, axes_list, forward_only)
    jitted = fungrad.jit(eager)
    for out in (eager(*to_fg(inputs)), jitted(*to_fg(inputs)), jitted(*to_fg(inputs))):
        assert_same(out.pop("value"), ref["value"])
        assert_same(out, {k: v for k, v in ref.items() if k != "value"}, GRAD_TOL,
                    check_weak=False)


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_against_jax(name):
    """Value, JVP, VJP and vmap, eagerly and under jit (twice: the cached function)."""
    _check_case(name, *DIFFERENTIABLE[name], forward_only=False)


@pytest.mark.parametrize("name", sorted(FORWARD_ONLY))
def test_forward_only_against_jax(name):
    """Value, JVP and vmap (batched predicates: lanes finish at different steps)."""
    _check_case(name, *FORWARD_ONLY[name], forward_only=True)


def test_jit_traced_bounds_and_no_retrace():
    """Under jit, bounds are traced: fori_loop becomes a while loop (forward mode only);
    a second call with the same signature traces nothing."""
    calls = []

    def f(n, x):
        calls.append(1)
        return fori_dynamic(lax)(n, x)
    jf = fungrad.jit(f)
    n, x = _i(3), rand(_rng("bounds"), (3,))
    assert_same(jf(*to_fg((n, x))), jax.jit(fori_dynamic(jl))(*to_jax((n, x))))
    jf(*to_fg((_i(5), x)))
    assert len(calls) == 1
    assert [e.primitive.name for e in fungrad.make_jaxpr(f)(*to_fg((n, x))).eqns] == ["while"]
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
        fungrad.jit(fungrad.grad(lambda n, x: lax.reduce_sum(f(n, x), (0,)), 1))(*to_fg((n, x)))


# --------------------------------------------------------------------------- vmap placements

def cond_closure(L):
    def f(p, x, w):  # w only reaches the branches as a closed-over value
        return L.cond(p, lambda x: L.mul(x, w), lambda x: L.sub(x, w), x)
    return f


def scan_closure(L):
    def f(h, xs, w):
        return L.scan(lambda c, x: (L.sin(L.add(L.mul(c, w), x)), L.mul(c, x)), h, xs)
    return f


# (builder, args, in_axes): batched and unbatched predicates, operands, carries, xs and
# closed-over values, at axis 0, a middle axis and a negative axis.
VMAP_CASES = [
    (cond_closure, lambda r: [rand(r, (4,)) > 0, rand(r, (3,)), rand(r, (3,))], (0, None, None)),
    (cond_closure, lambda r: [_b(True), rand(r, (3, 4)), rand(r, (3,))], (None, 1, None)),
    (cond_closure, lambda r: [_b(False), rand(r, (3,)), rand(r, (3, 4))], (None, None, -1)),
    (cond_closure, lambda r: [rand(r, (4,)) > 0, rand(r, (3, 4)), rand(r, (4, 3))], (0, 1, 0)),
    (switch_basic, lambda r: [_i([0, 5, 1, -1]), rand(r, (3,)), rand(r, (3,))], (0, None, None)),
    (switch_basic, lambda r: [_i(1), rand(r, (3,)), rand(r, (3, 4))], (None, None, 1)),
    (scan_closure, lambda r: [rand(r, (4, 3)), rand(r, (5, 3)), rand(r, (3,))], (0, None, None)),
    (scan_closure, lambda r: [rand(r, (3,)), rand(r, (5, 4, 3)), rand(r, (3,))], (None, 1, None)),
    (scan_closure, lambda r: [rand(r, (3,)), rand(r, (5, 3)), rand(r, (3, 4))], (None, None, -1)),
    (scan_closure, lambda r: [rand(r, (3, 4)), rand(r, (5, 3, 4)), rand(r, (4, 3))], (1, -1, 0)),
    (while_basic, lambda r: [rand(r, (3,)), rand(r, (4, 3))], (None, 0)),
    (while_data_dependent, lambda r: [rand(r, (2, 5), low=0, high=3)], (1,)),
    (fori_dynamic, lambda r: [_i([0, 1, 4, 2]), rand(r, (3,))], (0, None)),
]


@pytest.mark.parametrize("case", range(len(VMAP_CASES)))
def test_vmap_placements(case):
    builder, make_args, in_axes = VMAP_CASES[case]
    args = make_args(_rng(f"vmap{case}"))
    assert_same(fungrad.vmap(builder(lax), in_axes)(*to_fg(args)),
                jax.jit(jax.vmap(builder(jl), in_axes))(*to_jax(args)), check_weak=False)


# --------------------------------------------------------------------------- composition

def test_closure_over_differentiated_parameter():
    """A scan body and a cond branch close over the parameter being differentiated."""
    rng = _rng("closure")
    w, xs, h0 = rand(rng, (3,)), rand(rng, (6, 3)), rand(rng, (3,))

    def loss(L):
        def f(w):
            def body(h, x):
                h = L.cond(L.gt(L.reduce_sum(x, (0,)), 0.0), lambda h: L.tanh(L.mul(h, w)),
                           lambda h: L.add(h, w), h)
                return L.add(h, x), L.reduce_sum(L.mul(h, w), (0,))
            h, ys = L.scan(body, h0, xs)
            return L.add(L.reduce_sum(h, (0,)), L.reduce_sum(ys, (0,)))
        return f
    assert_same(fungrad.value_and_grad(loss(lax))(*to_fg([w])),
                jax.jit(jax.value_and_grad(loss(jl)))(*to_jax([w])), GRAD_TOL, check_weak=False)


def test_higher_order_derivatives():
    """Hessian-vector products (forward over reverse), grad of grad, and per-example
    gradients (vmap of grad) through nested scan and cond."""
    rng = _rng("higher")
    x, w, t = rand(rng, (4,)), rand(rng, (3,)), rand(rng, (4,))

    def loss(L):
        return lambda x, w: L.reduce_sum(nested(L)(True, x, w), (0,))
    fg_hvp = fungrad.jvp(fungrad.grad(loss(lax)), to_fg((x, w)), to_fg((t, np.zeros(3, F32))))
    jx_hvp = jax.jvp(jax.grad(loss(jl)), to_jax((x, w)), to_jax((t, np.zeros(3, F32))))
    assert_same(fg_hvp, jx_hvp, GRAD_TOL, check_weak=False)

    def gg(L, grad):
        return grad(lambda w: L.reduce_sum(grad(loss(L))(x, w), (0,)))
    assert_same(gg(lax, fungrad.grad)(*to_fg([w])), jax.jit(gg(jl, jax.grad))(*to_jax([w])),
                GRAD_TOL, check_weak=False)
    xb = rand(rng, (5, 4))
    assert_same(fungrad.vmap(fungrad.grad(loss(lax)), (0, None))(*to_fg([xb, w])),
                jax.jit(jax.vmap(jax.grad(loss(jl)), (0, None)))(*to_jax([xb, w])), GRAD_TOL,
                check_weak=False)


FINITE_DIFFERENCES = [  # (function of float arguments, args, modes), checked to order 2
    (lambda x, w: cond_basic(lax)(True, x, w), (3,), ("fwd", "rev")),
    (lambda x, w: switch_basic(lax)(1, x, w), (3,), ("fwd", "rev")),
    (lambda h, xs: scan_rnn(lax, reverse=True)(h, xs, np.eye(3, dtype=F32) * 0.5,
                                               np.ones(3, F32)), ((3,), (4, 3)), ("fwd", "rev")),
    (lambda x, w: fori_static(lax)(x, w), (3,), ("fwd", "rev")),
    (lambda a, b: assoc_pairs(lax)(a, b), ((5, 2), (5, 2)), ("fwd", "rev")),
    (lambda x, w: while_basic(lax)(x, w)[1], (3,), ("fwd", "lin")),
]


@pytest.mark.parametrize("case", range(len(FINITE_DIFFERENCES)))
def test_finite_differences(case):
    from fungrad.test_util import check_grads
    f, shapes, modes = FINITE_DIFFERENCES[case]
    rng = _rng(f"fd{case}")
    shapes = shapes if isinstance(shapes[0], tuple) else (shapes, shapes)
    args = [rand(rng, s, low=0.5, high=1.0) for s in shapes]
    check_grads(f, to_fg(args), order=2, modes=modes)


def test_batched_predicate_gradient_ignores_unselected_branch():
    """Under vmap both branches run; the one a lane did not take (here sqrt of a
    negative number) must not leak nan into that lane's gradient."""
    def f(L):
        return lambda x: L.cond(L.gt(x, 0.0), L.sqrt, lambda x: L.mul(x, 0.0), x)
    x = np.array([-1.0, 4.0, 0.5], F32)
    out = fungrad.vmap(fungrad.grad(f(lax)))(to_fg(x))
    assert_same(out, jax.jit(jax.vmap(jax.grad(f(jl))))(to_jax(x)), GRAD_TOL, check_weak=False)


def test_while_loop_linearize_and_forward_over_forward():
    rng = _rng("linearize")
    x, w, t = rand(rng, (3,)), rand(rng, (3,)), rand(rng, (3,))
    y, f_jvp = fungrad.linearize(lambda x: while_basic(lax)(x, to_fg(w))[1], to_fg(x))
    jy, jf_jvp = jax.linearize(lambda x: while_basic(jl)(x, to_jax(w))[1], to_jax(x))
    assert_same((y, f_jvp(to_fg(t))), (jy, jf_jvp(to_jax(t))), GRAD_TOL, check_weak=False)

    def fwd_fwd(jvp, L, conv):
        inner = lambda x: jvp(lambda x: while_basic(L)(x, conv(w))[1], (x,), (conv(t),))[1]
        return jvp(inner, (conv(x),), (conv(t),))
    assert_same(fwd_fwd(fungrad.jvp, lax, to_fg), fwd_fwd(jax.jvp, jl, to_jax), GRAD_TOL,
                check_weak=False)


@pytest.mark.parametrize("fn", ["while_loop", "fori_loop_vmapped_bounds"])
def test_while_loop_reverse_mode_error(fn):
    x = to_fg(np.ones(3, F32))
    if fn == "while_loop":
        f = lambda x: lax.reduce_sum(while_basic(lax)(x, x)[1], (0,))
        with pytest.raises(ValueError, match="Reverse-mode differentiation does not work for "
                                             "lax.while_loop or lax.fori_loop"):
            fungrad.grad(f)(x)
    else:  # batched bounds make the trip count dynamic: a while loop, forward mode only
        n = to_fg(_i([1, 2]))
        f = lambda n, x: lax.reduce_sum(fori_dynamic(lax)(n, x), (0,))
        with pytest.raises(ValueError, match="Try using lax.scan"):
            fungrad.vmap(fungrad.grad(f, 1), (0, None))(n, x)


def test_named_axis_collectives_in_bodies():
    """psum / axis_index of an enclosing vmap's named axis inside scan, cond and while
    bodies (also when the loop's own inputs are not batched)."""
    def f(L):
        def g(x):
            c, ys = L.scan(lambda c, xi: (L.add(c, L.psum(xi, "i")), L.mul(c, xi)), 0.0, x)
            z = L.cond(L.gt(c, 1.0), lambda v: L.psum(v, "i"), lambda v: v, x)
            w = L.while_loop(lambda k: L.lt(k[0], 2),
                             lambda k: (L.add(k[0], 1), L.add(k[1], L.psum(k[1], "i"))), (0, x))
            u = L.scan(lambda c, _: (L.add(c, L.convert_element_type(L.axis_index("i"), F32)),
                                     None), 0.0, None, length=2)[0]
            return c, ys, z, w[1], u
        return g
    x = rand(_rng("named"), (3, 4))
    assert_same(fungrad.vmap(f(lax), axis_name="i")(to_fg(x)),
                jax.jit(jax.vmap(f(jl), axis_name="i"))(to_jax(x)), check_weak=False)


def test_partial_eval_every_split():
    """Splitting a program with cond, scan and while into known and unknown halves, for
    every choice of unknown inputs, recombines to the full result (residuals included)."""
    import itertools
    from fungrad.interpreters import partial_eval as pe

    def f(p, h0, xs, w, n):
        def body(c, x):
            h, k = c
            h = lax.cond(p, lambda h: lax.tanh(lax.add(lax.mul(h, w), x)), lax.sin, h)
            return (h, lax.add(k, 1)), lax.mul(h, lax.reduce_sum(w, (0,)))
        (h, k), ys = lax.scan(body, (h0, n), xs)
        m = lax.while_loop(lambda c: lax.lt(c[0], n), lambda c: (lax.add(c[0], 1),
                                                                 lax.sin(c[1])), (0, h))[1]
        return [h, k, ys, m]
    rng = _rng("pe")
    args = to_fg([_b(True), rand(rng, (3,)), rand(rng, (4, 3)), rand(rng, (3,)), _i(2)])
    closed = fungrad.make_jaxpr(f)(*args)
    expected = pe.closed_call(closed, *args)
    for unknown in itertools.product([False, True], repeat=len(args)):
        known, staged, out_unknown, num_res = pe.partial_eval_jaxpr(closed, list(unknown))
        k_out = pe.closed_call(known, *[a for a, u in zip(args, unknown) if not u])
        n_out = len(k_out) - num_res
        u_out = pe.closed_call(staged, *k_out[n_out:], *[a for a, u in zip(args, unknown) if u])
        k_iter, u_iter = iter(k_out[:n_out]), iter(u_out)
        got = [next(u_iter) if u else next(k_iter) for u in out_unknown]
        assert_same(got, expected, check_weak=False)


def test_each_body_is_traced_once():
    """The Python body runs once per call; transformations reuse its jaxpr."""
    calls = {"scan": 0, "cond": 0, "while": 0}

    def body(c, x):
        calls["scan"] += 1
        return lax.mul(c, x), lax.sin(c)

    def branch(x):
        calls["cond"] += 1
        return lax.cos(x)

    def wbody(c):
        calls["while"] += 1
        return lax.add(c[0], 1), lax.sin(c[1])

    def f(x):
        y = lax.scan(body, x[0], x)[1]
        z = lax.cond(True, branch, lax.neg, y)
        return lax.reduce_sum(lax.while_loop(lambda c: lax.lt(c[0], 2), wbody, (0, z))[1], (0,))
    x = to_fg(np.linspace(0.1, 1, 4, dtype=F32))
    fungrad.grad(lambda x: lax.reduce_sum(lax.scan(body, x[0], x)[1], (0,)))(x)
    fungrad.jvp(f, (x,), (x,))
    fungrad.vmap(f)(to_fg(np.ones((2, 4), F32)))
    assert calls == {"scan": 3, "cond": 2, "while": 2}


def test_staged_ir():
    """make_jaxpr shows one primitive per construct, with closed-over values as operands."""
    w = to_fg(np.ones(3, F32))
    jaxpr = fungrad.make_jaxpr(
        lambda p, x: lax.cond(p, lambda x: lax.mul(x, w), lax.neg, x))(True, w)
    text = str(jaxpr)
    assert [e.primitive.name for e in jaxpr.eqns] == ["convert_element_type", "cond"]
    assert len(jaxpr.eqns[1].invars) == 3 and "branches=" in text  # index, w, x
    jaxpr = fungrad.make_jaxpr(lambda x: lax.scan(lambda c, x: (lax.add(c, x), c), 0.0, x))(w)
    eqn = jaxpr.eqns[0]
    assert eqn.primitive.name == "scan" and eqn.params["length"] == 3
    assert (eqn.params["num_consts"], eqn.params["num_carry"]) == (0, 1)
    text = str(jaxpr)
    for piece in ("{ lambda ; a:f32[3]. let", "b:f32[] c:f32[3] = scan[",
                  "jaxpr={ lambda ; d:f32[] e:f32[]. let f:f32[] = add d e in (f, d) }",
                  "length=3", "reverse=False", "] 0.0:f32[] a", "in (b, c) }"):
        assert piece in text, (piece, text)
    # Reverse mode: the forward scan stacks the residuals cos(c * x) and c; x itself is
    # not stacked again (the xs are passed to the backward scan as they are).
    f = lambda c0, xs: lax.scan(lambda c, x: (lax.sin(lax.mul(c, x)), None), c0, xs)[0]
    jaxpr = fungrad.make_jaxpr(fungrad.grad(f, (0, 1)))(1.0, to_fg(np.ones(5, F32)))
    scans = [[v.aval.str_short() for v in e.outvars] for e in jaxpr.eqns
             if e.primitive.name == "scan"]
    assert scans == [["f32[]", "f32[5]", "f32[5]"], ["f32[]", "f32[5]"]]


def test_edge_cases():
    x = to_fg(np.arange(3, dtype=F32))
    # zero-length scan: the carry passes through, ys are empty
    c, ys = lax.scan(lambda c, x: (lax.add(c, x), lax.mul(x, 2.0)), x[0], x[:0])
    jc, jys = jl.scan(lambda c, x: (c + x, x * 2.0), to_jax(x)[0], to_jax(x)[:0])
    assert_same((c, ys), (jc, jys))
    # no operands; a single-branch switch; a scan with neither carry nor ys
    assert_same(lax.cond(False, lambda: 1.0, lambda: 2.0), jl.cond(False, lambda: 1.0, lambda: 2.0))
    assert_same(lax.switch(3, [lax.sin], x), jl.switch(3, [jl.sin], to_jax(x)))
    assert lax.scan(lambda c, x: (c, None), (), x) == ((), None)
    # map with batch_size (full batches, remainder, and bigger than the input)
    xs = rand(_rng("map"), (7, 2))
    for bs in (2, 7, 10):
        assert_same(lax.map(lambda v: lax.mul(v, v), to_fg(xs), batch_size=bs),
                    jl.map(lambda v: v * v, to_jax(xs), batch_size=bs))
    # associative_scan on booleans and integers, along a negative axis
    b = rand(_rng("bool"), (2, 9), np.bool_)
    assert_same(lax.associative_scan(lax.max, to_fg(b), axis=-1),
                jl.associative_scan(jl.bitwise_or, to_jax(b), axis=-1))
    n = rand(_rng("int"), (6, 2), np.int32)
    assert_same(lax.associative_scan(lax.add, to_fg(n), reverse=True),
                jl.associative_scan(jl.add, to_jax(n), reverse=True))


# --------------------------------------------------------------------------- errors

def _x():
    return to_fg(np.ones(3, F32))


ERRORS = [
    (lambda: lax.cond(_x() > 0, lax.sin, lax.cos, _x()), TypeError, "Pred must be a scalar"),
    (lambda: lax.cond(to_fg(np.complex64(1)), lax.sin, lax.cos, _x()), TypeError,
     "Pred type must be either boolean or number"),
    (lambda: lax.cond(True, lambda x: (x, x), lambda x: x, _x()), TypeError,
     "same pytree structure"),
    (lambda: lax.cond(True, lambda x: x, lambda x: lax.convert_element_type(x, np.int32), _x()),
     TypeError, "output 0 of false_fun has type i32\\[3\\] but the corresponding output of "
                "true_fun has type f32\\[3\\]"),
    (lambda: lax.cond(True, lambda x: x, lambda x: x[:2], _x()), TypeError, "equal output types"),
    (lambda: lax.cond(True, 1, lax.cos, _x()), TypeError, "should be callable"),
    (lambda: lax.switch(1.0, [lax.sin, lax.cos], _x()), TypeError, "Index type must be an integer"),
    (lambda: lax.switch(0, [], _x()), ValueError, "empty branch sequence"),
    (lambda: lax.scan(lambda c, x: (lax.convert_element_type(c, np.int32), x), 0.0, _x()),
     TypeError, "the input carry has type f32\\[\\] but the corresponding output carry has "
                "type i32\\[\\]"),
    (lambda: lax.scan(lambda c, x: (lax.broadcast_in_dim(c, (2,), ()), x), _x()[0], _x()),
     TypeError, "carry input and carry output must have equal types"),
    (lambda: lax.scan(lambda c, x: ((c, c), x), _x()[0], _x()), TypeError,
     "same pytree structure"),
    (lambda: lax.scan(lambda c, x: c, 0.0, _x()), TypeError, "must return a pair"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, (_x(), _x()[:2])), ValueError,
     "different leading axis sizes"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, None), ValueError, "no values to scan over"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, _x(), length=4), ValueError,
     "disagrees with the leading axis sizes"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, _x()[0]), ValueError, "no leading axis"),
    (lambda: lax.scan(lambda c, x: (c, x), 0.0, _x(), unroll=-1), ValueError, "unroll"),
    (lambda: lax.while_loop(lambda c: c, lax.sin, 1.0), TypeError,
     "cond_fun <lambda> must return a boolean scalar"),
    (lambda: lax.while_loop(lambda c: lax.lt(c, 1.0), lambda c: c, _x()), TypeError,
     "must return a boolean scalar"),
    (lambda: lax.while_loop(lambda c: lax.lt(c, 1.0), lambda c: lax.convert_element_type(
        c, np.int32), 0.5), TypeError, "carry input and carry output must have equal types"),
    (lambda: lax.fori_loop(0.0, 3, lambda i, c: c, 1.0), TypeError, "must be integers"),
    (lambda: lax.fori_loop(to_fg(np.int16(0)), to_fg(np.int32(3)), lambda i, c: c, 1.0),
     TypeError, "must have equal types"),
    (lambda: lax.associative_scan(lax.add, (_x(), _x()[:2])), ValueError, "same size"),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_errors(case):
    fn, exc, match = ERRORS[case]
    with pytest.raises(exc, match=match):
        fn()


def test_disable_jit_runs_python():
    """Under disable_jit the bodies run as plain Python (print-debuggable), same results."""
    seen = []

    def body(c, x):
        seen.append(float(x))  # concrete values: only possible without tracing
        return lax.add(c, x), lax.mul(c, x)
    x = to_fg(np.arange(1, 4, dtype=F32))
    expected = jl.scan(lambda c, x: (c + x, c * x), 0.0, to_jax(x), reverse=True)
    with fungrad.disable_jit():
        got = lax.scan(body, 0.0, x, reverse=True)
        assert seen == [3.0, 2.0, 1.0]
        assert_same(lax.cond(True, lambda v: (seen.append(1), v)[1], lax.neg, x), x)
        assert_same(lax.switch(9, [lax.neg, lambda v: (seen.append(2), v)[1]], x), x)
        assert_same(lax.while_loop(lambda c: bool(c < 4), lambda c: lax.add(c, 1), 0),
                    jl.while_loop(lambda c: c < 4, lambda c: c + 1, 0))
        assert seen[-2:] == [1, 2]
        assert_same(fungrad.vmap(while_basic(lax), (None, 0))(x, to_fg(np.ones((2, 3), F32))),
                    jax.vmap(while_basic(jl), (None, 0))(*to_jax((x, np.ones((2, 3), F32)))),
                    check_weak=False)
        with pytest.raises(ValueError, match="zero-length scan"):
            lax.scan(body, 0.0, x[:0])
    assert_same(got, expected, check_weak=False)


@pytest.mark.parametrize("module", ["conditionals", "loops", "while_loops", "associative"])
def test_docstring_examples(module):
    import doctest
    import importlib
    mod = importlib.import_module(f"fungrad.lax.control_flow.{module}")
    result = doctest.testmod(mod)
    assert result.attempted > 0 and result.failed == 0
