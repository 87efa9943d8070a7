"""The compiler's worker thread: it takes a task only when idle (a caller that finds it
busy does the work itself, so nested parallel work never deadlocks), hands errors back to
the waiting thread, and stays usable afterwards."""
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad.compiler import parallel, pipeline, threads

RNG = np.random.default_rng(5)


def test_a_busy_worker_takes_no_task():
    assert threads._idle.acquire(blocking=False)  # the worker counts as busy
    try:
        assert threads.start(lambda: None) is None
    finally:
        threads._idle.release()
    task = threads.start(lambda: None)
    assert task is not None
    task.wait()


def test_a_parallel_tail_runs_every_component_itself_when_the_worker_is_busy(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    xs = [RNG.uniform(-3, 3, (64, 96)).astype(np.float32) for _ in range(4)]

    def f(*xs):
        return [lax.tanh(x * 2.0 + 1.0) * x - 0.5 for x in xs]
    closed = fungrad.make_jaxpr(f)(*[fnp.asarray(x) for x in xs])
    exe = pipeline.compile_jaxpr(closed)
    assert "parallel[" in exe.as_text()
    want = pipeline.compile_jaxpr(closed, fuse=False)(*xs)
    assert threads._idle.acquire(blocking=False)
    try:
        busy = exe(*xs)
    finally:
        threads._idle.release()
    for got in (busy, exe(*xs)):
        for g, w in zip(got, want):
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
