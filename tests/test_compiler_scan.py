"""``scan`` in compiled code (``fungrad.compiler.scan``): the body split into a vectorised
prologue, the loop and a vectorised epilogue, ``cond`` written into the loop as ``if``
blocks; every case against ``jax.jit`` of the same ``jax.lax`` program."""
import jax
import jax.lax as jl
import numpy as np
import pytest

import fungrad
from fungrad import lax
from fungrad.compiler import scan as compiled_scan
from harness import tol

RNG = np.random.default_rng(0)
XS = RNG.standard_normal((7, 3)).astype(np.float32)
W = (RNG.standard_normal((3, 3)) / 2).astype(np.float32)


def cond_in_scan(L, xs):
    def body(c, x):
        c = L.cond(L.gt(x[0], 0.0), lambda c: L.mul(c, 1.01), lambda c: L.sub(c, 0.01), c)
        return c, L.reduce_sum(c, (0,))
    return L.scan(body, L.full((3,), 1.0, np.float32), xs)


def switch_in_scan(L, xs):  # three branches; indices below 0 and above 2 are clamped
    def body(c, x):
        i = L.convert_element_type(L.floor(L.mul(x[0], 2.0)), np.int32)
        c = L.switch(i, [lambda c: L.mul(c, 0.5), lambda c: L.add(c, 1.0), L.sin], c)
        return c, i
    return L.scan(body, XS[0], xs)


def rnn(L, xs):
    def body(h, x):
        h = L.tanh(L.add(L.dot(h, W), L.dot(x, W)))
        return h, L.reduce_sum(L.mul(h, h), (0,))
    return L.scan(body, L.full((3,), 0.0, np.float32), xs)


def ys_of_every_kind(L, xs):  # ys from x only, the carry before the step, a constant, x itself
    def body(c, x):
        return L.add(c, x), (L.exp(x), c, L.full((2,), 3.0, np.float32), x)
    return L.scan(body, XS[0], xs)


def carry_from_x(L, xs):  # the new carry does not depend on the old one
    return L.scan(lambda c, x: (L.mul(x, 2.0), L.add(c, x)), XS[0], xs)


def reversed_scan(L, xs):
    return L.scan(lambda c, x: (L.add(L.mul(c, 0.9), x), c), XS[0], xs, reverse=True)


def nested(L, xs):
    def body(c, x):
        inner, ys = L.scan(lambda d, y: (L.add(d, L.mul(y, c[0])), d), c, L.reshape(x, (3, 1)))
        return inner, ys
    return L.scan(body, XS[0], xs)


def no_carry(L, xs):
    return L.scan(lambda c, x: (c, L.sin(x)), (), xs)


def grad_of_rnn(L, xs):
    def loss(w):
        def body(h, x):
            h = L.tanh(L.add(L.dot(h, w), x))
            return h, L.reduce_sum(L.mul(h, h), (0,))
        h, ys = L.scan(body, L.full((3,), 0.0, np.float32), xs)
        return L.add(L.reduce_sum(h, (0,)), L.reduce_sum(ys, (0,)))
    return (fungrad.grad if L is lax else jax.grad)(loss)(W)


def carry_is_ys(L, xs):  # the new carry, computed by a branch, is stacked as it is
    def body(c, x):
        c = L.cond(L.gt(x[0], 0.0), lambda c: L.mul(c, 1.5), lambda c: L.sub(c, 0.25), c)
        return c, c
    return L.scan(body, XS[0], xs, reverse=True)


def branches_of_every_kind(L, xs):  # results: an operand as it is, a literal, a nested cond
    def body(c, x):
        def grow(c):
            return L.cond(L.lt(c[0], 2.0), lambda c: L.add(c, 1.0), lambda c: c, c), \
                L.full((3,), 2.0, np.float32)
        c, k = L.cond(L.gt(x[0], 0.0), grow, lambda c: (c, L.sin(c)), c)
        return c, (k, c, c, L.reduce_max(c, (0,)), L.reduce_sum(k, (0,)))
    return L.scan(body, XS[0], xs)


def index_used_as_a_value(L, xs):  # the per-step index also selects, inside the loop
    def body(c, x):
        i = L.convert_element_type(L.gt(x[0], 0.0), np.int32)
        c = L.cond(i, lambda c: L.mul(c, 0.5), lambda c: L.add(c, 1.0), c)
        return L.select_n(i, c, L.neg(c)), c[0]
    return L.scan(body, XS[0], xs)


def scalar_carry(L, xs):  # 0-d values stacked from the loop
    def body(c, x):
        c = L.cond(L.gt(x[1], 0.0), lambda c: L.mul(c, 0.9), lambda c: L.add(c, x[0]), c)
        return c, c
    return L.scan(body, np.float32(1.0), xs)


CASES = [cond_in_scan, switch_in_scan, rnn, ys_of_every_kind, carry_from_x, reversed_scan,
         nested, no_carry, grad_of_rnn, carry_is_ys, branches_of_every_kind,
         index_used_as_a_value, scalar_carry]
BRANCHING = [cond_in_scan, switch_in_scan, carry_is_ys, branches_of_every_kind,
             index_used_as_a_value, scalar_carry]


def assert_matches_jax(case, xs=XS):
    got = fungrad.jit(lambda xs: case(lax, xs))(xs)
    want = jax.jit(lambda xs: case(jl, xs))(xs)
    got, want = fungrad.tree.leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, *tol(w.dtype))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_compiled_scan_matches_jax(case):
    assert_matches_jax(case)


@pytest.mark.parametrize("case", [cond_in_scan, rnn, ys_of_every_kind, no_carry],
                         ids=lambda c: c.__name__)
def test_compiled_scan_of_no_steps(case):
    assert_matches_jax(case, XS[:0])


@pytest.mark.parametrize("case", [cond_in_scan, rnn, nested], ids=lambda c: c.__name__)
def test_large_bodies_run_a_compiled_step_and_unsplit_bodies_agree(case, monkeypatch):
    monkeypatch.setattr(compiled_scan, "INLINE_MAX_SIZE", 2)
    assert_matches_jax(case)
    monkeypatch.setattr(compiled_scan, "SPLIT_MAX_BYTES", 0)
    assert_matches_jax(case)


def parts_of(case, split_pre=True, split_post=True):
    closed = fungrad.make_jaxpr(lambda xs: case(lax, xs))(XS)
    (scan_eqn,) = [e for e in closed.jaxpr.eqns if e.primitive.name == "scan"]
    j = scan_eqn.params["jaxpr"].jaxpr
    nc, nk = scan_eqn.params["num_consts"], scan_eqn.params["num_carry"]
    parts = compiled_scan._Parts(j, j.invars[nc:nc + nk], j.outvars[:nk], j.outvars[nk:],
                                 split_pre, split_post)
    return [[e.primitive.name for e in eqns] for eqns in (parts.pre, parts.loop, parts.post)]


def test_the_body_is_split_around_the_carry():
    # x > 0 needs only x: before the loop; the sum of the new carry: after it.
    assert parts_of(cond_in_scan) == [["slice", "reshape", "gt", "convert_element_type"],
                                      ["cond"], ["reduce_sum"]]
    assert parts_of(rnn) == [["dot_general"], ["dot_general", "add", "tanh"],
                             ["mul", "reduce_sum"]]
    assert parts_of(rnn, split_pre=False, split_post=False) == [
        [], ["dot_general", "dot_general", "add", "tanh", "mul", "reduce_sum"], []]


def test_effects_keep_their_order_inside_the_loop(capsys):
    def f(xs):
        def body(c, x):
            fungrad.debug.print("x={x}", x=x[0])
            return lax.add(c, x), c
        return lax.scan(body, XS[0], xs)
    fungrad.jit(f)(XS)
    printed = capsys.readouterr().out.split()
    assert printed == [f"x={v}" for v in XS[:, 0]]


def _bits(tree) -> list[tuple]:
    return [(a.shape, a.dtype, a.tobytes()) for a in map(np.asarray, fungrad.tree.leaves(tree))]


@pytest.mark.parametrize("case", BRANCHING, ids=lambda c: c.__name__)
def test_inlined_loop_gives_the_bits_of_a_compiled_step_and_of_eager(case, monkeypatch):
    """The loop written as lines (branches as ``if`` blocks, stacked values written into
    their rows, indices as Python ints) computes what the compiled body and the eager
    interpreter compute, bit for bit."""
    inlined = _bits(fungrad.jit(lambda xs: case(lax, xs))(XS))
    eager = _bits(case(lax, fungrad.numpy.asarray(XS)))
    monkeypatch.setattr(compiled_scan, "INLINE_MAX_SIZE", 0)
    stepped = _bits(fungrad.jit(lambda xs: case(lax, xs))(XS))
    assert inlined == stepped == eager


def test_the_final_carry_is_not_a_view_of_the_stacked_ys():
    """The loop writes each new carry straight into its row of ``ys``; the carry returned
    is a copy, so the two outputs share no memory (updating one in place, as a donated
    buffer may be, cannot change the other)."""
    carry, ys = fungrad.jit(lambda xs: carry_is_ys(lax, xs))(XS)
    carry, ys = np.asarray(carry), np.asarray(ys)
    assert not np.shares_memory(carry, ys)
    np.testing.assert_array_equal(carry, ys[0])  # a reversed scan ends on step 0
