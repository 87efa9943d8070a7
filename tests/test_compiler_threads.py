"""The compiler's second thread: row-split groups (an elementwise group's rows shared by
two threads) give the same results bit for bit as unfused code, whether or not the worker
is free, also inside a parallel tail's component; the worker hands back errors."""
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad.compiler import blocked, parallel, pipeline, threads

RNG = np.random.default_rng(5)


def _gelu_like(x, b):
    h = x + b
    return 0.5 * h * (1.0 + lax.tanh(0.79788456 * (h + 0.044715 * h * h * h)))


def _compile(f, *args, fuse=True):
    closed = fungrad.make_jaxpr(f)(*[fnp.asarray(a) for a in args])
    return pipeline.compile_jaxpr(closed, fuse=fuse)


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setattr(threads, "ENABLED", True)
    monkeypatch.setattr(blocked, "SPLIT_MIN_SIZE", 64)
    monkeypatch.setattr(blocked, "SPLIT_MIN_WORK", 256)


@pytest.mark.parametrize("rows", [64, 63, 2])
def test_a_group_too_small_to_block_runs_as_two_halves(two_threads, rows):
    x = RNG.uniform(-3, 3, (rows, 96)).astype(np.float32)
    b = RNG.uniform(-1, 1, (96,)).astype(np.float32)
    exe = _compile(_gelu_like, x, b)
    [eqn] = [e for e in exe.jaxpr.eqns if e.primitive.name.startswith("fused_blocks")]
    want = _compile(_gelu_like, x, b, fuse=False)(x, b)[0]
    for _ in range(3):  # the bodies' arenas are reused from call to call
        np.testing.assert_array_equal(exe(x, b)[0], want)


def test_a_blocked_group_shares_its_blocks_between_the_threads(two_threads, monkeypatch):
    monkeypatch.setattr(blocked, "MIN_SIZE", 1)
    monkeypatch.setattr(blocked, "BLOCK_ELEMS", 700)  # 7 rows a block: 15 blocks and a tail
    x = RNG.uniform(-3, 3, (110, 100)).astype(np.float32)
    b = RNG.uniform(-1, 1, (100,)).astype(np.float32)
    exe = _compile(_gelu_like, x, b)
    assert "fused_blocks" in exe.as_text()
    np.testing.assert_array_equal(exe(x, b)[0], _compile(_gelu_like, x, b, fuse=False)(x, b)[0])


def test_without_the_second_thread_small_groups_stay_unfused(monkeypatch):
    monkeypatch.setattr(threads, "ENABLED", False)
    x = RNG.uniform(-3, 3, (512, 512)).astype(np.float32)
    b = RNG.uniform(-1, 1, (512,)).astype(np.float32)
    assert "fused" not in _compile(_gelu_like, x, b).as_text()


def test_a_busy_worker_leaves_the_whole_group_to_the_caller(two_threads):
    x = RNG.uniform(-3, 3, (64, 96)).astype(np.float32)
    b = RNG.uniform(-1, 1, (96,)).astype(np.float32)
    exe = _compile(_gelu_like, x, b)
    want = _compile(_gelu_like, x, b, fuse=False)(x, b)[0]
    assert threads._idle.acquire(blocking=False)  # the worker counts as busy
    try:
        assert threads.start(lambda: None) is None
        got = exe(x, b)[0]
    finally:
        threads._idle.release()
    np.testing.assert_array_equal(got, want)


def test_split_groups_inside_parallel_tail_components(two_threads, monkeypatch):
    """Components on both threads each meet a split group: no deadlock, same results."""
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    xs = [RNG.uniform(-3, 3, (64, 96)).astype(np.float32) for _ in range(4)]
    b = RNG.uniform(-1, 1, (96,)).astype(np.float32)

    def f(b, *xs):
        return [_gelu_like(x, b) * 2.0 - x for x in xs]
    exe = _compile(f, b, *xs)
    assert "parallel[" in exe.as_text()
    for g, w in zip(exe(b, *xs), _compile(f, b, *xs, fuse=False)(b, *xs)):
        np.testing.assert_array_equal(g, w)


def test_the_worker_hands_back_errors_and_stays_usable():
    def fail():
        raise ZeroDivisionError("in the worker")
    task = threads.start(fail)
    assert task is not None
    with pytest.raises(ZeroDivisionError, match="in the worker"):
        task.wait()
    done = []
    task = threads.start(done.append, 1)
    task.wait()
    assert done == [1]
