"""The jaxpr compiler: each pass on small IRs (printouts before and after), a property
test over seeded random programs (optimised, fused and compiled code agree with the
unoptimised jaxpr run op by op), the memory plan (buffer reuse, freeing, in-place
updates, never writing into a live view), fusion (and its numexpr-less fallback),
the specialised lowerings and the compiled bodies of control flow."""
import jax
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad._core import core
from fungrad.compiler import blocked, control_flow, fusion, parallel, passes, pipeline
from harness import peak_traced_bytes, tol

RNG = np.random.default_rng(0)
X23 = fnp.asarray(RNG.uniform(-1, 1, (2, 3)).astype(np.float32))


def jaxpr_of(f, *args):
    return fungrad.make_jaxpr(f)(*args)


def run_eager(closed, *args):
    return [np.asarray(o) for o in core.eval_jaxpr(closed.jaxpr, closed.consts, *args)]


def run_compiled(closed, *args, **kw):
    exe = pipeline.compile_jaxpr(closed, **kw)
    return [np.asarray(o) for o in exe(*[np.asarray(a) for a in args])], exe


def assert_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        r, a = tol(w.dtype)
        np.testing.assert_allclose(g, w, rtol=r, atol=a)


# --------------------------------------------------------------------------- the passes

def test_simplify_identities():
    closed = jaxpr_of(lambda x: lax.neg(lax.neg(lax.add(lax.mul(x, 1.0), 0.0))), X23)
    assert str(passes.dce(passes.simplify(closed))) == "{ lambda ; a:f32[2,3]. let in (a,) }"


def test_simplify_transpose_and_reshape_chains():
    closed = jaxpr_of(lambda x: lax.transpose(lax.transpose(x, (1, 0)), (1, 0))
                      + lax.transpose(lax.reshape(lax.reshape(x, (6,)), (3, 2)), (1, 0)), X23)
    assert str(passes.dce(passes.simplify(closed))) == (
        "{ lambda ; a:f32[2,3]. let\n"
        "    b:f32[3,2] = reshape[new_sizes=(3, 2)] a\n"
        "    c:f32[2,3] = transpose[permutation=(1, 0)] b\n"
        "    d:f32[2,3] = add a c\n"
        "  in (d,) }")


def test_transposed_matmul_is_computed_in_its_final_layout():
    w = fnp.asarray(RNG.uniform(-1, 1, (2, 4)).astype(np.float32))
    dims = (((0,), (0,)), ((), ()))  # x.T @ w, as a weight gradient
    closed = jaxpr_of(lambda x, w: lax.transpose(lax.dot_general(x, w, dims), (1, 0)), X23, w)
    opt = passes.dce(passes.simplify(closed))
    assert str(opt) == (
        "{ lambda ; a:f32[2,3] b:f32[2,4]. let\n"
        "    c:f32[4,3] = dot_general[dimension_numbers=(((0,), (0,)), ((), ())), precision=None, "
        "preferred_element_type=None] b a\n"
        "  in (c,) }")
    assert_close(run_eager(opt, X23, w), run_eager(closed, X23, w))
    # A product used elsewhere too keeps its transpose (no second matmul).
    twice = jaxpr_of(lambda x, w: (lax.transpose(lax.dot_general(x, w, dims), (1, 0)),
                                   lax.dot_general(x, w, dims)), X23, w)
    assert [e.primitive.name for e in passes.optimize(twice).eqns] == ["dot_general", "transpose"]


@pytest.mark.parametrize("lhs, rhs, dims, dtype", [
    ((256,), (256, 512), (((), ()), ((0,), (0,))), np.float32),  # per-example gradients
    ((3,), (4,), (((), ()), ((), ())), np.float32),              # an outer product
    ((2, 3), (3, 2), (((), ()), ((0,), (1,))), np.float64),      # the rhs batch axis last
    ((4, 2, 3), (3, 5, 4), (((), ()), ((2, 0), (0, 2))), np.float32),  # batch axes permuted
    ((2, 3), (2, 4), (((), ()), ((0,), (0,))), np.int32),
    ((), (3, 4), (((), ()), ((), ())), np.complex64),
])
def test_dot_general_without_contraction_becomes_a_multiply(lhs, rhs, dims, dtype):
    def operand(shape):
        return fnp.asarray((RNG.uniform(-9, 9, shape) + (1j if dtype == np.complex64 else 0)
                            * RNG.uniform(-9, 9, shape)).astype(dtype))
    a, b = operand(lhs), operand(rhs)
    closed = jaxpr_of(lambda a, b: lax.dot_general(a, b, dims), a, b)
    opt = passes.optimize(closed)
    assert [e.primitive.name for e in opt.eqns if e.primitive.name not in
            ("transpose", "reshape")] == ["mul"]
    got, exe = run_compiled(closed, a, b)
    assert "_matmul(" not in exe.source
    want = np.asarray(jax.lax.dot_general(np.asarray(a), np.asarray(b), dims))
    if dtype == np.complex64:  # XLA may fuse the complex product's multiply-adds
        assert_close(got, [want])
    else:  # one product per element: exact
        np.testing.assert_array_equal(got[0], want)


def test_dot_general_without_contraction_keeps_a_preferred_element_type():
    a = fnp.asarray(np.arange(3, dtype=np.int8))
    closed = jaxpr_of(lambda a: lax.dot_general(a, a, (((), ()), ((), ())),
                                                preferred_element_type=np.int32), a)
    assert [e.primitive.name for e in passes.optimize(closed).eqns] == ["dot_general"]


def test_simplify_same_type_conversions_and_broadcasts():
    closed = jaxpr_of(lambda x: lax.convert_element_type(x, np.float32)
                      * lax.broadcast_in_dim(x, (2, 3), (0, 1)), X23)
    opt = passes.optimize(closed)
    assert [e.primitive.name for e in opt.eqns] == ["mul"]


def test_cse_merges_identical_equations():
    closed = jaxpr_of(lambda x: lax.sin(x) + lax.sin(x), X23)
    before = str(closed)
    assert before.count("sin") == 2
    assert str(passes.dce(passes.cse(closed))) == \
        "{ lambda ; a:f32[2,3]. let b:f32[2,3] = sin a; c:f32[2,3] = add b b in (c,) }"


def test_cse_keeps_different_literals_apart():
    closed = jaxpr_of(lambda x: (x + 0.0) * (x + -0.0), X23)  # 0.0 and -0.0 differ in bits
    opt = passes.cse(closed)
    assert [e.primitive.name for e in opt.eqns] == ["add", "add", "mul"]


def test_constant_folding_small_results_only():
    closed = jaxpr_of(lambda x: x * (lax.full((), 2.0, np.float32) * 3.0), X23)
    assert str(passes.dce(passes.fold_constants(closed))) == \
        "{ lambda ; a:f32[2,3]. let b:f32[2,3] = mul a 6.0:f32[] in (b,) }"
    big = jaxpr_of(lambda x: x + lax.full((1000,), 1.0, np.float32), fnp.ones(1000))
    assert [e.primitive.name for e in passes.fold_constants(big).eqns] == \
        [e.primitive.name for e in big.eqns]  # a 1000-element constant is not materialised


def test_dce_drops_dead_code_but_keeps_effects():
    def f(x):
        lax.cos(x)
        fungrad.debug.print("{}", x)
        fungrad.jit(lambda y: (fungrad.debug.print("{}", y), y * 2)[1])(x)  # unused result
        return lax.sin(x)
    opt = passes.dce(jaxpr_of(f, X23))
    assert [e.primitive.name for e in opt.eqns] == ["debug_callback", "jit", "sin"]


def test_inline_nested_jit():
    inner = fungrad.jit(lambda y: lax.exp(y) * 2.0)
    closed = jaxpr_of(lambda x: inner(inner(x)), X23)
    assert [e.primitive.name for e in closed.eqns] == ["jit", "jit"]
    assert str(passes.inline_calls(closed)) == (
        "{ lambda ; a:f32[2,3]. let\n"
        "    b:f32[2,3] = exp a\n"
        "    c:f32[2,3] = mul b 2.0:f32[]\n"
        "    d:f32[2,3] = exp c\n"
        "    e:f32[2,3] = mul d 2.0:f32[]\n"
        "  in (e,) }")


def test_custom_derivative_calls_are_inlined_and_checkpoints_kept():
    @fungrad.custom_jvp
    def softplus(x):
        return lax.log1p(lax.exp(x))
    softplus.defjvp(lambda p, t: (softplus(p[0]), t[0] * lax.logistic(p[0])))
    closed = jaxpr_of(lambda x: fungrad.checkpoint(lambda y: softplus(y) * 2.0)(x), X23)
    names = [e.primitive.name for e in passes.optimize(closed).eqns]
    assert names == ["checkpoint"]
    inner = passes.optimize(closed.eqns[0].params["jaxpr"])
    assert [e.primitive.name for e in inner.eqns] == ["exp", "log1p", "mul"]


# --------------------------------------------------------------------------- property test

def _random_program(seed, shape=(3, 4)):
    """A random straight-line program over f32 values of ``shape``, rich in patterns the
    passes rewrite (identities, duplicates, dead code, constants, view chains) and in
    operations with specialised lowerings."""
    rng = np.random.default_rng(seed)
    n, m = shape
    unary = [lax.neg, lax.sin, lax.tanh, lambda a: lax.exp(lax.tanh(a)),
             lambda a: lax.mul(a, 1.0), lambda a: lax.add(a, 0.0), lambda a: lax.neg(lax.neg(a)),
             lambda a: lax.transpose(lax.transpose(a, (1, 0)), (1, 0)),
             lambda a: lax.reshape(lax.reshape(a, (n * m,)), shape),
             lambda a: lax.convert_element_type(a, np.float32),
             lambda a: lax.broadcast_in_dim(lax.reduce_sum(a, (0,)), shape, (1,)),
             lambda a: lax.mul(a, lax.mul(lax.full((), 0.5, np.float32), 3.0)),
             lambda a: lax.add(lax.sin(a), lax.sin(a)), lambda a: lax.integer_pow(a, 2),
             lambda a: lax.integer_pow(lax.tanh(a), 3), lambda a: lax.integer_pow(a, 4),
             lambda a: lax.tanh(fnp.matmul(fnp.matmul(a, a.T), a)),
             lambda a: a * lax.reduce_sum(a, (0, 1)),
             lambda a: a - lax.broadcast_in_dim(lax.reduce_max(a, (1,)), shape, (0,)),
             lambda a: lax.slice(lax.pad(a, 0.5, ((1, 2, 0), (0, 3, 0))), (1, 0), (n + 1, m)),
             lambda a: lax.add(
                 lax.pad(lax.slice(a, (0, 1), (n, m)), 0.0, ((0, 0, 0), (1, 0, 0))),
                 lax.pad(lax.slice(a, (0, 0), (n, 1)), 0.0, ((0, 0, 0), (0, m - 1, 0))))]
    binary = [lax.add, lax.sub, lax.mul, lax.max,
              lambda a, b: lax.select(lax.gt(a, b), a, b)]

    def program(x, y):
        pool = [x, y]
        for _ in range(int(rng.integers(4, 14))):
            if rng.random() < 0.5:
                pool.append(unary[rng.integers(len(unary))](pool[rng.integers(len(pool))]))
            else:
                a, b = rng.integers(len(pool), size=2)
                pool.append(binary[rng.integers(len(binary))](pool[a], pool[b]))
        return pool[-1], pool[int(rng.integers(len(pool)))]
    return program


@pytest.mark.parametrize("shape", [(3, 4), (64, 96)])
@pytest.mark.parametrize("seed", range(40))
def test_optimised_and_compiled_programs_agree_with_the_original(seed, shape, monkeypatch):
    """Also at a size where results reuse dead buffers and live in the arena: a second
    call with other inputs must leave the first call's results untouched. Blocked
    fusion runs with small blocks here (several blocks and a partial last one)."""
    monkeypatch.setattr(blocked, "MIN_SIZE", 1)
    monkeypatch.setattr(blocked, "BLOCK_ELEMS", 5 * shape[1])
    monkeypatch.setattr(parallel, "MIN_WORK", 0)  # any independent tail runs on two threads
    x, y, x2, y2 = (fnp.asarray(RNG.uniform(-1, 1, shape).astype(np.float32)) for _ in range(4))
    closed = jaxpr_of(_random_program(seed, shape), x, y)
    want, want2 = run_eager(closed, x, y), run_eager(closed, x2, y2)
    opt = passes.optimize(closed)
    assert len(opt.eqns) <= len(closed.eqns)
    assert_close(run_eager(opt, x, y), want)
    for strategy in fusion.STRATEGIES:
        monkeypatch.setattr(fusion, "_strategy", strategy)
        got, exe = run_compiled(closed, x, y)
        assert_close(got, want)
        got2 = exe(np.asarray(x2), np.asarray(y2))
        assert_close(got, want)
        assert_close([np.asarray(g) for g in got2], want2)


# --------------------------------------------------------------------------- memory plan

BIG = fnp.asarray(RNG.uniform(-1, 1, (256, 64)).astype(np.float32))  # 64 KiB


def test_dead_buffers_are_reused_and_freed():
    closed = jaxpr_of(lambda x: lax.exp(lax.sin(x) * 2.0) + x, BIG)
    got, exe = run_compiled(closed, BIG, fuse=False)
    assert "out=" in exe.source and "del " in exe.source
    assert_close(got, run_eager(closed, BIG))


def test_peak_memory_of_a_chain_stays_flat():
    x = fnp.asarray(RNG.uniform(-1, 1, (512, 512)).astype(np.float32))  # 1 MiB

    def chain(x):
        for _ in range(10):
            x = lax.exp(lax.sin(x) * 0.5)  # 30 ops, 30 MiB if every result were kept
        return x
    exe = pipeline.compile_jaxpr(jaxpr_of(chain, x))
    buf = np.asarray(x)
    exe(buf)
    peak, _ = peak_traced_bytes(lambda: exe(buf))
    assert peak < 2.5 * buf.nbytes


def test_live_views_are_never_written():
    def f(x):
        y = x * 2.0                      # fresh
        v = lax.reshape(y, (64, 256))    # a view of y, returned
        return v, lax.sin(y) + 1.0       # y dies here, but its memory lives on in v
    closed = jaxpr_of(f, BIG)
    got, exe = run_compiled(closed, BIG, fuse=False)
    assert_close(got, run_eager(closed, BIG))


def test_dynamic_update_slice_in_place_when_operand_dies():
    upd = fnp.ones((1, 64))

    def dead(x, u):
        c = x * 2.0
        return lax.dynamic_update_slice(c, u, (3, 0))

    def live(x, u):
        c = x * 2.0
        return lax.dynamic_update_slice(c, u, (3, 0)), c
    for f, copies in ((dead, False), (live, True)):
        closed = jaxpr_of(f, BIG, upd)
        got, exe = run_compiled(closed, BIG, upd)
        assert (".copy()" in exe.source) == copies
        assert_close(got, run_eager(closed, BIG, upd))


def test_donated_input_is_updated_in_place():
    closed = jaxpr_of(lambda c, u: lax.dynamic_update_slice(c, u, (3, 0)), BIG, fnp.ones((1, 64)))
    cache = np.array(BIG)
    exe = pipeline.compile_jaxpr(closed, donated=(True, False))
    out = exe(cache, np.ones((1, 64), np.float32))[0]
    assert out is cache and cache[3, 0] == 1.0
    exe = pipeline.compile_jaxpr(closed, donated=(False, False))
    cache = np.array(BIG)
    out = exe(cache, np.ones((1, 64), np.float32))[0]
    assert out is not cache and cache[3, 0] != 1.0


# --------------------------------------------------------------------------- fusion

def _chain(x):
    for _ in range(3):
        x = lax.tanh(x * 1.5 + 0.25) - x
    return x


def _arith_chain(x):
    for _ in range(3):
        x = lax.max(x * 1.5 + 0.25, 0.0) - x * x
    return x


def test_numexpr_strategy_fuses_elementwise_chains(monkeypatch):
    # numexpr is optional for users (the 'fast' extra) but part of the test extra
    assert fusion.numexpr_module() is not None, "install the test extra: pip install -e '.[test]'"
    monkeypatch.setattr(fusion, "_strategy", "numexpr")
    x = fnp.asarray(RNG.uniform(-1, 1, (16, 16)).astype(np.float32))
    closed = jaxpr_of(_arith_chain, x)
    got, exe = run_compiled(closed, x)
    names = [e.primitive.name for e in exe.jaxpr.eqns]
    assert set(names) == {"fused_elementwise"} and len(names) < len(closed.eqns) // 3
    assert "numexpr" in exe.as_text()
    assert_close(got, run_eager(closed, x))
    if not fusion.numexpr_module().use_vml:  # scalar libm transcendentals stay NumPy ufuncs
        _, exe = run_compiled(jaxpr_of(_chain, x), x)
        assert "tanh" in [e.primitive.name for e in exe.jaxpr.eqns]


def test_numpy_strategy_runs_ufuncs_into_dead_buffers(monkeypatch):
    monkeypatch.setattr(fusion, "_strategy", "numpy")
    x = fnp.asarray(RNG.uniform(-1, 1, (1000, 1000)).astype(np.float32))
    closed = jaxpr_of(_chain, x)
    got, exe = run_compiled(closed, x)
    assert "fused" not in exe.as_text()
    # Each of the 3 rounds keeps x alive while computing from it: at most 3 allocations.
    assert exe.source.count("out=") >= len(exe.jaxpr.eqns) - 3
    assert_close(got, run_eager(closed, x))


def test_blocked_strategy_is_the_default_and_fuses_large_chains_only():
    assert fusion.strategy() == "blocked"
    big = np.asarray(RNG.uniform(-1, 1, (1024, 1024)).astype(np.float32))
    closed = jaxpr_of(_chain, big)
    got, exe = run_compiled(closed, big)
    assert [e.primitive.name for e in exe.jaxpr.eqns] == ["fused_blocks"]
    np.testing.assert_array_equal(got[0], run_compiled(closed, big, fuse=False)[0][0])
    small = np.asarray(RNG.uniform(-1, 1, (64, 64)).astype(np.float32))
    _, exe = run_compiled(jaxpr_of(_chain, small), small)
    assert "fused" not in exe.as_text()


@pytest.mark.parametrize("make_operands, f", [
    # a bias row, a column, a scalar input and a literal: broadcast along the blocked axes
    (lambda: [(40, 33, 50), (50,), (40, 33, 1), ()],
     lambda x, b, c, s: lax.tanh(x * b + c) * s - lax.integer_pow(x, 3) + 0.5),
    # a transposed (non-contiguous) operand, a select root (no out=: copied into the block)
    (lambda: [(60, 70), (70, 60)],
     lambda x, y: lax.select(lax.gt(x, 0.0), lax.exp(x * 2.0) + y.T, lax.neg(x) * x)),
    # a conversion inside the group, an integer operand
    (lambda: [(90, 40), (90, 40, "int32")],
     lambda x, k: lax.sqrt(lax.abs(x + lax.convert_element_type(k, np.float32))) * x - x),
])
def test_blocked_kernels_equal_unfused_code_bit_for_bit(make_operands, f, monkeypatch):
    monkeypatch.setattr(blocked, "MIN_SIZE", 1)
    monkeypatch.setattr(blocked, "BLOCK_ELEMS", 700)  # several blocks and a partial last one
    args = []
    for spec in make_operands():
        typed = bool(spec) and isinstance(spec[-1], str)
        shape, dtype = (spec[:-1], spec[-1]) if typed else (spec, "float32")
        args.append(fnp.asarray(RNG.uniform(-3, 3, shape).astype(dtype)))
    closed = jaxpr_of(f, *args)
    got, exe = run_compiled(closed, *args)
    assert "fused_blocks" in exe.as_text()
    want, _ = run_compiled(closed, *args, fuse=False)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert_close(got, run_eager(closed, *args))


def test_blocked_kernel_writes_into_a_given_buffer_or_a_new_one(monkeypatch):
    monkeypatch.setattr(blocked, "MIN_SIZE", 1)
    monkeypatch.setattr(blocked, "BLOCK_ELEMS", 4096)  # several blocks and a partial one
    x = np.asarray(RNG.uniform(-1, 1, (300, 200)).astype(np.float32))
    exe = pipeline.compile_jaxpr(jaxpr_of(_chain, x))
    [eqn] = exe.jaxpr.eqns
    kernel = eqn.params["kernel"]
    want = exe(x)[0]
    out = np.empty_like(x)
    assert kernel(x, out=out) is out and np.array_equal(out, want)
    strided = np.empty((200, 300), np.float32).T  # not C-contiguous: not usable as blocks
    got = kernel(x, out=strided)
    assert got is not strided and np.array_equal(got, want)


def test_fusion_falls_back_without_numexpr(monkeypatch):
    monkeypatch.setattr(fusion, "_strategy", "numexpr")
    monkeypatch.setattr(fusion, "numexpr_module", lambda: None)
    assert fusion.strategy() == "numpy"
    x = fnp.asarray(RNG.uniform(-1, 1, (16, 16)).astype(np.float32))
    closed = jaxpr_of(_chain, x)
    got, exe = run_compiled(closed, x)
    assert "fused_elementwise" not in exe.as_text()
    assert_close(got, run_eager(closed, x))


def test_fusion_leaves_other_dtypes_alone(monkeypatch):
    monkeypatch.setattr(fusion, "_strategy", "numexpr")
    x = fnp.asarray(np.arange(12, dtype=np.int32).reshape(3, 4))
    closed = jaxpr_of(lambda x: ((x + 1) * 2 - x) * 3 + x, x)
    got, exe = run_compiled(closed, x)
    assert "fused_elementwise" not in exe.as_text()
    assert_close(got, run_eager(closed, x))


# --------------------------------------------------------------------------- lowerings

@pytest.mark.parametrize("lhs, rhs, dims", [
    ((3, 4), (4, 5), (((1,), (0,)), ((), ()))),
    ((4, 3), (4, 5), (((0,), (0,)), ((), ()))),
    ((3, 4), (5, 4), (((1,), (1,)), ((), ()))),
    ((2, 3, 4), (2, 4, 5), (((2,), (1,)), ((0,), (0,)))),
    ((3, 2, 4), (4, 2, 5), (((2,), (0,)), ((1,), (1,)))),
    ((2, 3, 4), (3, 4, 5), (((1, 2), (0, 1)), ((), ()))),
    ((3,), (3,), (((0,), (0,)), ((), ()))),
    ((2, 3, 4, 5), (2, 3, 5, 6), (((3,), (2,)), ((0, 1), (0, 1)))),   # attention scores
    ((4, 2, 5, 3), (2, 3, 6, 5), (((2,), (3,)), ((1, 3), (0, 1)))),   # strided batch axes
    ((2, 3, 4, 5, 6), (2, 3, 5, 6), (((3, 4), (2, 3)), ((0, 1), (0, 1)))),  # merged contraction
])
def test_dot_general_lowering_matches_the_impl(lhs, rhs, dims):
    a = fnp.asarray(RNG.uniform(-1, 1, lhs).astype(np.float32))
    b = fnp.asarray(RNG.uniform(-1, 1, rhs).astype(np.float32))
    closed = jaxpr_of(lambda a, b: lax.dot_general(a, b, dims), a, b)
    got, exe = run_compiled(closed, a, b)
    assert "_matmul(" in exe.source
    assert_close(got, run_eager(closed, a, b))


def test_integer_division_keeps_its_semantics():
    x = fnp.asarray(np.array([[-7, 7, -8, 9]], np.int32))
    y = fnp.asarray(np.array([[2, -2, 3, 0]], np.int32))
    closed = jaxpr_of(lambda x, y: (lax.div(x, y), lax.rem(x, y), x // 2), x, y)
    got, exe = run_compiled(closed, x, y)
    assert "_true_divide(" not in exe.source
    assert_close(got, run_eager(closed, x, y))


def test_unregistered_primitives_run_their_impl():
    closed = jaxpr_of(lambda x: lax.rev(x, (1,)), X23)
    got, exe = run_compiled(closed, X23)
    assert "_rev(" in exe.source
    assert_close(got, run_eager(closed, X23))


def test_control_flow_bodies_compile_after_a_few_runs():
    body = jaxpr_of(lambda c: [lax.sin(c) * 2.0], X23)
    runner = control_flow.SubjaxprRunner(body)
    outs = [runner(np, [np.asarray(X23)]) for _ in range(runner.INTERPRETED_CALLS + 1)]
    assert runner.exe is not None
    assert_close([np.asarray(o[0]) for o in outs[-1:]], [np.asarray(outs[0][0])])
