"""The compiler's buffer arena and the lowerings that write into given buffers: results
that never leave a call live in buffers kept from one call to the next, while outputs,
views of outputs and values handed to callbacks are always fresh; matmul, reductions,
``pad`` and small integer powers write into dead or arena buffers and equal their impls
bit for bit."""
import threading

import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad._core import core
from fungrad.compiler import memory, pipeline
from harness import peak_traced_bytes, tol

RNG = np.random.default_rng(1)
BIG = RNG.uniform(-1, 1, (256, 64)).astype(np.float32)  # 64 KiB
BIG2 = RNG.uniform(-1, 1, (256, 64)).astype(np.float32)


def compile_fn(f, *args, **kw):
    closed = fungrad.make_jaxpr(f)(*[fnp.asarray(a) for a in args])
    return closed, pipeline.compile_jaxpr(closed, **kw)


def eager(closed, *args):
    return [np.asarray(o) for o in core.eval_jaxpr(closed.jaxpr, closed.consts,
                                                   *[fnp.asarray(a) for a in args])]


def _chain(x):
    y = lax.exp(lax.sin(x) * 0.5)
    return lax.tanh(y * y + x) - y


def test_intermediates_live_in_the_arena_and_outputs_are_fresh():
    closed, exe = compile_fn(_chain, BIG)
    assert "_arena" in exe.source
    first = exe(BIG)[0]
    second = exe(BIG2)[0]
    assert first is not second
    np.testing.assert_array_equal(first, eager(closed, BIG)[0])
    np.testing.assert_array_equal(second, eager(closed, BIG2)[0])


def test_steady_state_call_allocates_only_its_outputs():
    x = RNG.uniform(-1, 1, (512, 512)).astype(np.float32)  # 1 MiB
    _, exe = compile_fn(lambda x: _chain(_chain(x)), x)
    exe(x)  # the first call allocates the arena
    peak, _ = peak_traced_bytes(lambda: exe(x))
    assert peak < 1.5 * x.nbytes


def test_returned_views_of_intermediates_are_not_in_the_arena():
    def f(x):
        y = x * 2.0
        z = lax.sin(y) + 1.0
        return lax.reshape(y, (64, 256)), lax.transpose(z, (1, 0))
    closed, exe = compile_fn(f, BIG)
    outs = exe(BIG)
    exe(BIG2)
    for got, want in zip(outs, eager(closed, BIG)):
        np.testing.assert_array_equal(got, want)


def test_values_handed_to_callbacks_are_not_overwritten_later():
    seen = []

    def f(x):
        y = lax.sin(x) * 3.0
        fungrad.debug.callback(seen.append, y)
        return lax.reduce_sum(lax.exp(y) * y, (0, 1))
    closed, exe = compile_fn(f, BIG)
    seen.clear()
    exe(BIG)
    exe(BIG2)
    np.testing.assert_array_equal(seen[0], np.sin(BIG) * np.float32(3.0))


def test_concurrent_calls_use_separate_arenas():
    _, exe = compile_fn(_chain, BIG)
    want = [exe(a)[0] for a in (BIG, BIG2)]
    errors = []

    def worker(a, w):
        for _ in range(50):
            if not np.array_equal(exe(a)[0], w):
                errors.append(1)
    threads = [threading.Thread(target=worker, args=(a, w)) for a, w in zip((BIG, BIG2), want)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _recurse(box):
    if box.pop("go", False):  # once: the inner call runs while the outer holds its arena
        box["inner"] = box["exe"](BIG2)[0]


def test_recursive_call_through_a_callback_takes_a_new_arena():
    box = {}

    def f(x):
        z = lax.tanh(x) * 1.5  # in the arena, live across the callback
        y = lax.sin(x) * 2.0
        fungrad.debug.callback(lambda v: _recurse(box), y)
        return lax.cos(y) + z * y
    closed, exe = compile_fn(f, BIG)
    box["exe"] = exe
    exe(BIG)  # an arena now waits in the executable's free list
    box["go"] = True
    out = exe(BIG)[0]
    np.testing.assert_array_equal(out, eager(closed, BIG)[0])
    np.testing.assert_array_equal(box["inner"], eager(closed, BIG2)[0])


def test_arena_cap_falls_back_to_fresh_buffers(monkeypatch):
    monkeypatch.setattr(memory, "ARENA_MAX_BYTES", 0)
    closed, exe = compile_fn(_chain, BIG)
    assert "_arena" not in exe.source
    np.testing.assert_array_equal(exe(BIG)[0], eager(closed, BIG)[0])


def test_escaping_result_takes_a_dying_operand_not_the_arena():
    upd = np.ones((1, 64), np.float32)
    closed, exe = compile_fn(lambda x, u: lax.dynamic_update_slice(x * 2.0, u, (3, 0)), BIG, upd)
    assert ".copy()" not in exe.source  # x * 2.0 is written in place, as before the arena
    first = exe(BIG, upd)[0]
    exe(BIG2, upd)
    np.testing.assert_array_equal(first, eager(closed, BIG, upd)[0])


# --------------------------------------------------------------------------- lowerings with out=

@pytest.mark.parametrize("y", [2, 3, 4])
def test_small_integer_powers_multiply_as_the_impl(y):
    x = RNG.uniform(-3, 3, (256, 64)).astype(np.float32)
    closed, exe = compile_fn(lambda x: lax.integer_pow(lax.sin(x), y) + x, x)
    assert "_integer_pow" not in exe.source
    np.testing.assert_array_equal(exe(x)[0], eager(closed, x)[0])


@pytest.mark.parametrize("config", [((0, 0, 0), (3, 5, 0)), ((2, 1, 0), (0, 4, 0)),
                                    ((0, 0, 0), (0, 0, 0)), ((-1, 2, 0), (0, 0, 1))])
def test_pad_lowering_matches_the_impl(config):
    f = lambda x: lax.pad(x * 2.0, np.float32(7.5), config) + 1.0  # noqa: E731
    closed, exe = compile_fn(f, BIG)
    specialised = all(lo >= 0 and hi >= 0 and i == 0 for lo, hi, i in config)
    assert ("_pad_into(" in exe.source) == specialised
    np.testing.assert_array_equal(exe(BIG)[0], eager(closed, BIG)[0])


def test_matmul_and_reductions_write_into_dead_buffers():
    w = RNG.uniform(-1, 1, (64, 64)).astype(np.float32)

    def f(x, w):
        h = lax.tanh(fnp.matmul(x, w))           # a buffer that dies at the next matmul
        g = fnp.matmul(lax.sin(x), w)            # same shape: written into a dead buffer
        s = lax.reduce_sum(g * h, (1,))
        return lax.reduce_max(g, (1,)) + s
    closed, exe = compile_fn(f, BIG, w)
    assert "_matmul(" in exe.source and ", out=" in exe.source
    for a in (BIG, BIG2):
        rtol, atol = tol(np.float32)
        np.testing.assert_allclose(exe(a, w)[0], eager(closed, a, w)[0], rtol=rtol, atol=atol)


@pytest.mark.parametrize("src, dst, lowered", [
    ("bool", "int32", True), ("int32", "float32", True), ("int32", "int8", True),
    ("uint8", "int32", True), ("float32", "float16", True),
    ("float32", "int32", False), ("complex64", "float32", False)])
def test_conversions_are_astype_only_where_the_impl_is(src, dst, lowered):
    x = RNG.uniform(-300, 300, (8, 8))
    x = (np.abs(x) % 256 if src == "uint8" else x * (1 + 1j) if src == "complex64" else x)
    x = x.astype(src)
    closed, exe = compile_fn(lambda x: lax.convert_element_type(x, np.dtype(dst)), x)
    assert (".astype(" in exe.source) == lowered
    np.testing.assert_array_equal(exe(x)[0], eager(closed, x)[0])


def test_batched_matmul_over_strided_heads_writes_into_dead_buffers():
    q = RNG.uniform(-1, 1, (4, 64, 8, 16)).astype(np.float32)  # (batch, time, head, dim)

    def f(q):
        h = lax.transpose(q, (0, 2, 1, 3))                       # a strided view per head
        s = lax.dot_general(h, h, (((3,), (3,)), ((0, 1), (0, 1))))  # (4, 8, 64, 64)
        t = lax.exp(s * 0.1)
        return lax.dot_general(t, lax.exp(s * 0.05), (((3,), (2,)), ((0, 1), (0, 1))))  # > 0
    closed, exe = compile_fn(f, q)
    assert ".reshape(" not in exe.source  # no copies of the transposed heads
    rtol, atol = tol(np.float32)
    np.testing.assert_allclose(exe(q)[0], eager(closed, q)[0], rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- output rings

def _address(a):
    return a.__array_interface__["data"][0]


def test_dropped_outputs_are_recycled_and_held_ones_never():
    x = RNG.uniform(-1, 1, (256, 256)).astype(np.float32)  # 256 KiB
    closed, exe = compile_fn(lambda x: lax.exp(x) * 2.0 + x, x)
    assert "_ring(" in exe.source
    want = eager(closed, x)[0]
    first = exe(x)[0]
    address = _address(first)
    del first
    second = exe(x)[0]                  # the dropped buffer comes back
    assert _address(second) == address
    view = second[3:5]                  # a view keeps it alive
    del second
    third = exe(x + 1.0)[0]
    assert _address(third) != address
    np.testing.assert_array_equal(view, want[3:5])
    np.testing.assert_array_equal(third, eager(closed, x + 1.0)[0])


def test_a_training_loop_cycles_through_two_buffers():
    w0 = RNG.uniform(-1, 1, (256, 256)).astype(np.float32)
    step = fungrad.jit(lambda w: w - 0.1 * lax.tanh(w))
    w, want, addresses = fnp.asarray(w0), w0, set()
    for _ in range(6):
        w = step(w)
        want = want - np.float32(0.1) * np.tanh(want)
        addresses.add(_address(np.asarray(w)))
    assert len(addresses) <= 3  # the first result, then two buffers in turn
    np.testing.assert_allclose(np.asarray(w), want, *tol(np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "int8", "bool", "uint16"])
@pytest.mark.parametrize("case", ["arrays", "constant", "broadcast_pred", "small"])
def test_select_copies_the_bits_of_the_chosen_case(dtype, case):
    shape = (4, 8) if case == "small" else (128, 64)
    x, y = (np.asarray(fnp.asarray(RNG.uniform(-3, 3, shape).astype(dtype))) for _ in range(2))
    if dtype.startswith("float"):
        x = x.copy()
        x[0, :5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
    fs = {"arrays": lambda x, y: lax.select(lax.ne(x, y), x, y),
          "constant": lambda x, y: lax.select(lax.ne(x, y), lax.full_like(x, 1), x),
          "broadcast_pred": lambda x, y: lax.select(
              lax.broadcast_in_dim(lax.ne(x[0], y[0]), shape, (1,)), y, x),
          "small": lambda x, y: lax.select(lax.ne(x, y), y, x)}
    closed, exe = compile_fn(fs[case], x, y)
    assert ("_select(" in exe.source) == (case != "small")
    got, want = exe(x, y)[0], eager(closed, x, y)[0]
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
