"""Multi-output blocked fusion: a fused group also hands back the intermediates read after
it (a forward pass's values saved for the backward pass, an optimiser's new state), in one
blocked pass. Results equal the unfused code bit for bit and jax; the memory plan gives
every result of a multi-output kernel a buffer (arena, dead buffer or output ring); block
bodies write their results straight into the output blocks and allocate nothing per block."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, ShapedArray, Var
from fungrad.compiler import blocked, codegen, fusion, lowering, memory, pipeline
from harness import peak_traced_bytes, tol

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocked fusion at every size, with several blocks and a partial last one."""
    monkeypatch.setattr(blocked, "MIN_SIZE", 1)
    monkeypatch.setattr(blocked, "BLOCK_ELEMS", 700)
    monkeypatch.setattr(fusion, "_strategy", "blocked")


def compile_fn(f, *args, **kw):
    closed = fungrad.make_jaxpr(f)(*[fnp.asarray(a) for a in args])
    return closed, pipeline.compile_jaxpr(closed, **kw)


def fused_eqns(exe):
    return [e for e in exe.jaxpr.eqns if e.primitive.name.startswith("fused_blocks")]


def gelu_saving(x, b, L=lax):
    """GELU's tanh form returning what its derivative reads, as ``grad`` saves it (``L``:
    fungrad's lax or jax's)."""
    h = x + b
    h2 = h * h
    t = L.tanh(0.7978845834732056 * (h + 0.044714998453855515 * (h * h2)))
    return h * (0.5 * (1.0 + t)), h, 3.0 * h2, t, 1.0 - t


def adam_update(g, m, v, p, L=lax):
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * (g * g)
    return p - 0.001 * ((m / 0.5) / (L.sqrt(v / 0.25) + 1e-8)), m, v


def masked(x, y, L=lax):
    """Results read inside the group and returned: a value and a comparison's mask."""
    a = x * y + 1.0
    m = L.gt(a, 0.5)
    return L.exp(a) * L.convert_element_type(m, np.float32) - x, a, m


CASES = [(gelu_saving, [(150, 64), (64,)]), (adam_update, [(90, 70)] * 4),
         (masked, [(80, 90)] * 2)]


@pytest.mark.parametrize("f, shapes", CASES)
def test_one_kernel_returns_the_intermediates_bit_for_bit(f, shapes):
    args = [RNG.uniform(-2, 2, s).astype(np.float32) for s in shapes]
    closed, exe = compile_fn(f, *args)
    [eqn] = [e for e in fused_eqns(exe) if len(e.outvars) > 1]
    assert eqn.primitive is blocked.fused_blocks_outs_p
    assert eqn.params["n_ops"] >= 6
    _, unfused = compile_fn(f, *args, fuse=False)
    for _ in range(2):  # the second call runs in the arena and output rings of the first
        got = exe(*args)
        want = unfused(*args)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    ref = jax.jit(lambda *a: f(*a, L=jax.lax))(*args)
    rtol, atol = tol(np.float32)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)


def test_gelu_train_step_under_grad_matches_jax():
    """The backward pass reads the forward pass's fused intermediates."""
    x = RNG.uniform(-2, 2, (150, 64)).astype(np.float32)
    w = RNG.uniform(-0.2, 0.2, (64, 64)).astype(np.float32)
    b = RNG.uniform(-0.2, 0.2, (64,)).astype(np.float32)

    def loss(w, b, x, lib, nn):
        return lib.sum(lib.tanh(nn.gelu(x @ w + b) @ w))
    f = fungrad.jit(fungrad.value_and_grad(lambda w, b, x: loss(w, b, x, fnp, fungrad.nn),
                                           (0, 1)))
    source = f.lower(w, b, x).compile()._exe.source
    assert "_fused_blocks_outs" in source
    got = f(w, b, x)
    ref = jax.jit(jax.value_and_grad(lambda w, b, x: loss(w, b, x, jnp, jax.nn), (0, 1)))(
        w, b, x)
    for g, r in zip(fungrad.tree.leaves(got), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(np.asarray(g), r, rtol=2e-5, atol=2e-5)


def test_grouping_keeps_each_value_computed_before_its_readers():
    """``b`` is read by a matmul between the elementwise equations: a group runs where its
    root was, so ``b`` may only join a group emitted before the matmul. Every operand of
    every equation of the fused program is defined before it."""
    x = RNG.uniform(-1, 1, (64, 64)).astype(np.float32)

    def f(x):
        a = x * 2.0 + 1.0
        b = lax.exp(a) * a
        c = b @ x          # reads b between the groups
        d = a * c - b
        return d * d + a, b

    _, exe = compile_fn(f, x)
    defined = set(exe.jaxpr.jaxpr.invars) | set(exe.jaxpr.jaxpr.constvars)
    for eqn in exe.jaxpr.eqns:
        assert all(type(a) is not Var or a in defined for a in eqn.invars)
        defined.update(eqn.outvars)
    np.testing.assert_array_equal(exe(x)[0], compile_fn(f, x, fuse=False)[1](x)[0])


@pytest.mark.parametrize("f, shapes", CASES)
def test_results_update_donated_operands_in_place(f, shapes):
    """With every operand donated, a group's results are written into the operands that die
    with it (an optimiser's params and state updated in place), and still equal the unfused
    code bit for bit: a block body writes a result into its out block only once no operand
    of its type is read after it."""
    args = [RNG.uniform(-2, 2, s).astype(np.float32) for s in shapes]
    want = compile_fn(f, *args, fuse=False)[1](*args)
    _, exe = compile_fn(f, *args, donated=(True,) * len(args))
    for _ in range(2):
        given = [a.copy() for a in args]
        got = exe(*given)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    in_place = [g for g in got if any(np.shares_memory(g, a) for a in given)]
    assert len(in_place) == min(len(got), sum(a.shape == got[0].shape for a in args))


def test_block_body_copies_a_result_whose_operand_is_read_after_it():
    """``y = x + 1`` is computed before ``x * z`` reads ``x``: with ``x``'s memory as
    ``y``'s out buffer, writing ``y`` there first would change what ``x * z`` reads."""
    def f(x, z):
        y = x + 1.0
        return y, x * z - y

    x, z = (RNG.uniform(-1, 1, (40, 30)).astype(np.float32) for _ in range(2))
    closed = fungrad.make_jaxpr(f)(fnp.asarray(x), fnp.asarray(z))
    fn, source = codegen.compile_function(closed, None, np, "body", out_args=True)
    assert "_add(a, _k, out=_out0)" not in source and "copyto" in source
    x_buffer = x.copy()
    out1 = np.empty_like(x)
    fn(x_buffer, z, x_buffer, out1)  # y written into x's own memory
    np.testing.assert_array_equal(x_buffer, x + np.float32(1.0))
    np.testing.assert_array_equal(out1, x * z - (x + np.float32(1.0)))


# --------------------------------------------------------------------------- memory plan

def _two_output_program(n):
    """``(p, q) = kernel(x); r = p * q; s = sum(r, 0)``: a multi-result, out-capable
    equation whose results die inside the program (only ``s`` goes to the caller)."""
    prim = lowering.kernel_primitive("test_two", out="separate", multiple_results=True)
    aval = ShapedArray((n, n), np.dtype(np.float32))
    x, p, q, r = (Var(aval) for _ in range(4))
    [total] = fungrad.make_jaxpr(lambda a: lax.reduce_sum(a, (0,)))(np.ones((n, n),
                                                                          np.float32)).eqns
    s = Var(total.outvars[0].aval)

    def kernel(x, out=None):
        out = out or (None, None)
        a = np.multiply(x, 2.0, out=out[0])
        return [a, np.add(x, 1.0, out=out[1])]
    eqns = [JaxprEqn(prim, [x], [p, q], {"kernel": kernel}),
            JaxprEqn(lax.mul_p, [p, q], [r], {}), JaxprEqn(total.primitive, [r], [s], total.params)]
    return ClosedJaxpr(Jaxpr([], [x], [s], eqns), [])


def test_each_result_of_a_multi_output_equation_gets_an_arena_slot():
    closed = _two_output_program(64)
    plan = memory.plan_memory(closed.jaxpr, [False], lowering.lowering_for)
    p, q = closed.jaxpr.eqns[0].outvars
    assert p in plan.arena and q in plan.arena and plan.arena[p] != plan.arena[q]
    fn, source = codegen.compile_function(closed, None, np, "two")
    assert "out=(" in source
    x = RNG.uniform(-1, 1, (64, 64)).astype(np.float32)
    for _ in range(2):  # the second call in the first call's arena
        np.testing.assert_array_equal(fn(x)[0], lax.reduce_sum((x * 2.0) * (x + 1.0), (0,)))


def test_results_written_into_the_callers_buffers_are_not_planned():
    """A block body's output blocks belong to the caller: its intermediates come from its
    arena, never a fresh allocation per block (which was the case before)."""
    x = RNG.uniform(-1, 1, (150, 64)).astype(np.float32)
    b = RNG.uniform(-1, 1, (64,)).astype(np.float32)
    closed = fungrad.make_jaxpr(gelu_saving)(fnp.asarray(x), fnp.asarray(b))
    fn, source = codegen.compile_function(closed, None, np, "body", out_args=True)
    calls = [line for line in source.splitlines()
             if "= _" in line and "_arena" not in line and "_fpstate" not in line]
    assert len(calls) == 12 and all("out=" in line for line in calls)
    outs = [np.empty_like(x) for _ in range(5)]
    fn(x, b, *outs)
    for got, want in zip(outs, compile_fn(gelu_saving, x, b, fuse=False)[1](x, b)):
        np.testing.assert_array_equal(got, want)


def test_steady_state_multi_output_kernel_allocates_only_its_outputs():
    x = RNG.uniform(-1, 1, (512, 256)).astype(np.float32)  # 512 KiB
    b = RNG.uniform(-1, 1, (256,)).astype(np.float32)
    w = RNG.uniform(-0.1, 0.1, (256, 256)).astype(np.float32)

    def f(x, b, w):
        y, h, s, t, u = gelu_saving(x, b)
        return (y @ w) * s + t * u - h  # every saved value dies inside the program
    _, exe = compile_fn(f, x, b, w)
    assert any(len(e.outvars) > 1 for e in fused_eqns(exe))
    exe(x, b, w)
    peak, _ = peak_traced_bytes(lambda: exe(x, b, w))
    assert peak < 1.5 * x.nbytes


def test_kernel_allocates_a_missing_or_strided_output():
    x = RNG.uniform(-1, 1, (90, 70)).astype(np.float32)
    args = [x, x * 0.5, x * x, x - 1.0]
    _, exe = compile_fn(adam_update, *args)
    [eqn] = fused_eqns(exe)
    kernel = eqn.params["kernel"]
    want = kernel(*[args[exe.jaxpr.jaxpr.invars.index(v)] for v in eqn.invars])
    given = np.empty_like(x)
    strided = np.empty((70, 90), np.float32).T
    got = kernel(*[args[exe.jaxpr.jaxpr.invars.index(v)] for v in eqn.invars],
                 out=(given, None, strided))
    assert got[0] is given and got[2] is not strided
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
