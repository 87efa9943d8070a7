"""The compiler's worker thread: it takes a task only when idle (a caller that finds it
busy does the work itself, so nested parallel work never deadlocks), hands errors back to
the waiting thread, and stays usable afterwards."""
import os
import subprocess
import sys

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


def test_outputs_of_a_parallel_tail_can_be_donated_without_a_copy(monkeypatch):
    """The worker keeps no reference to a finished task's arguments and results, so the
    new parameters a jitted update returns are exclusively the caller's: donating them to
    the next step hands the buffers over instead of copying them."""
    from fungrad.transforms import jit as jit_module
    monkeypatch.setattr(parallel, "MIN_WORK", 1)

    def step(ps):
        return [lax.tanh(p * 2.0 + 1.0) * p - 0.5 for p in ps]
    jitted = fungrad.jit(step, donate_argnums=0)
    ps = [fnp.asarray(RNG.uniform(-1, 1, (64, 96)).astype(np.float32)) for _ in range(4)]
    assert "parallel[" in jitted.lower(ps).as_text()
    for _ in range(3):
        ps = jitted(ps)
        assert all(jit_module._is_exclusive(p) for p in ps)


def test_an_output_from_the_executables_output_ring_can_be_donated_without_a_copy():
    """The ring keeps a reference to the buffers it hands out (to reuse them once the caller
    drops them); that reference does not make a returned array shared for donation."""
    from fungrad.compiler import codegen
    from fungrad.transforms import jit as jit_module
    f = fungrad.jit(lambda a: lax.tanh(a) * 2.0 + 1.0)
    y = f(fnp.asarray(RNG.uniform(-1, 1, (256, 256)).astype(np.float32)))
    assert id(y._value) in codegen.RING_HELD
    assert jit_module._is_exclusive(y)
    address = y._value.ctypes.data  # (no reference to the buffer: that would share it)
    z = fungrad.jit(lambda x: x * 3.0, donate_argnums=0)(y)
    assert z._value.ctypes.data == address  # written in place, not into a copy


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_a_process_held_to_one_cpu_starts_no_worker():
    """``taskset -c 0`` (or a container's CPU set) leaves one CPU: no second thread then,
    whatever ``os.cpu_count()`` says about the machine."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
            "from fungrad._core.util import usable_cpus\n"
            "from fungrad.compiler import threads\n"
            "assert usable_cpus() == 1 and not threads.ENABLED, (usable_cpus(), threads.ENABLED)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "FUNGRAD_THREADS"})
    assert proc.returncode == 0, proc.stderr
