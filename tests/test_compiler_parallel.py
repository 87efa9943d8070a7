"""Parallel tails: independent elementwise chains at the end of a program (an optimiser
update per parameter) run as separate components on two threads, with the same results
bit for bit, in-place updates of donated inputs only where nothing else reads them, and
no split across matmuls, effects or too little work."""
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import lax
from fungrad._core import core
from fungrad.compiler import parallel, pipeline
from harness import tol

RNG = np.random.default_rng(2)
SHAPES = [(256, 128), (512, 64), (128, 300), (3000,)]


def _leaves():
    return [RNG.uniform(-1, 1, s).astype(np.float32) for s in SHAPES]


def _update(ps, gs, ms, count):
    """An Adam-like update per leaf; the bias correction is a shared scalar."""
    t = count + 1
    bc = 1.0 - lax.pow(np.float32(0.9), lax.convert_element_type(t, np.float32))
    new_ps, new_ms = [], []
    for p, g, m in zip(ps, gs, ms):
        m = 0.9 * m + 0.1 * g
        new_ms.append(m)
        new_ps.append(p - 0.01 * (m / bc) / (lax.sqrt(lax.abs(m)) + 1e-3))
    return new_ps, new_ms, t


def _compile(f, args, donated=None, enabled=True, monkeypatch=None):
    monkeypatch.setattr(parallel, "ENABLED", enabled)
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    closed = fungrad.make_jaxpr(f)(*[fungrad.tree.map(fnp.asarray, a) for a in args])
    return closed, pipeline.compile_jaxpr(closed, donated)


def _flat(args):
    return [np.asarray(x) for x in fungrad.tree.leaves(args)]


def test_independent_chains_run_as_components_with_identical_results(monkeypatch):
    args = (_leaves(), _leaves(), _leaves(), np.int32(3))
    closed, exe = _compile(_update, args, monkeypatch=monkeypatch)
    text = exe.as_text()
    assert text.count("parallel[") == 1
    [eqn] = [e for e in exe.jaxpr.eqns if e.primitive.name == "parallel"]
    assert len(eqn.params["runner"].tasks) == len(SHAPES)
    _, serial = _compile(_update, args, enabled=False, monkeypatch=monkeypatch)
    assert "parallel" not in serial.as_text()
    for _ in range(3):  # the components' arenas are reused from call to call
        got, want = exe(*_flat(args)), serial(*_flat(args))
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and np.array_equal(g, w)
    want = core.eval_jaxpr(closed.jaxpr, closed.consts, *[fnp.asarray(x) for x in _flat(args)])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), *tol(np.float32))


def test_donated_inputs_are_updated_in_place_only_when_read_once(monkeypatch):
    ps, gs, ms = _leaves(), _leaves(), _leaves()
    shared = RNG.uniform(-1, 1, SHAPES[0]).astype(np.float32)

    def f(ps, ms, gs, shared):
        new_ps, new_ms, _ = _update(ps, gs, ms, np.int32(0))
        return new_ps, [m + shared for m in new_ms[:1]] + new_ms[1:], shared * 2.0
    args = (ps, ms, gs, shared)
    n = len(SHAPES)
    donated = [True] * (2 * n) + [False] * n + [True]
    _, exe = _compile(f, args, donated, monkeypatch=monkeypatch)
    assert "parallel[" in exe.as_text()
    bufs = [x.copy() for x in _flat(args)]
    outs = exe(*bufs)
    assert any(o is b for o in outs for b in bufs[:2 * n])   # a leaf updated in place
    assert not any(o is bufs[-1] for o in outs)              # read by two components
    _, serial = _compile(f, args, enabled=False, monkeypatch=monkeypatch)
    for g, w in zip(outs, serial(*_flat(args))):
        assert np.array_equal(g, w)


def test_no_split_across_matmuls_effects_or_small_work(monkeypatch):
    x = RNG.uniform(-1, 1, (256, 256)).astype(np.float32)

    def ends_in_matmul(x):
        a, b = lax.exp(x) * 2.0, lax.tanh(x) - 1.0
        return fnp.matmul(a, b)

    def ends_in_callback(x):
        a, b = lax.exp(x) * 2.0, lax.tanh(x) - 1.0
        fungrad.debug.callback(lambda v: None, a)
        return a, b
    for f in (ends_in_matmul, ends_in_callback):
        _, exe = _compile(f, (x,), monkeypatch=monkeypatch)
        assert "parallel" not in exe.as_text()
    monkeypatch.setattr(parallel, "MIN_WORK", 1 << 40)
    closed = fungrad.make_jaxpr(lambda x: (lax.exp(x) * 2.0, lax.tanh(x) - 1.0))(fnp.asarray(x))
    assert "parallel" not in pipeline.compile_jaxpr(closed).as_text()


def test_tail_after_the_last_matmul_is_split(monkeypatch):
    x = RNG.uniform(-1, 1, (256, 256)).astype(np.float32)

    def f(x):
        h = fnp.matmul(x, x)
        return lax.exp(h) * 2.0, lax.tanh(h) - 1.0
    closed, exe = _compile(f, (x,), monkeypatch=monkeypatch)
    assert [e.primitive.name for e in exe.jaxpr.eqns] == ["dot_general", "parallel"]
    want = core.eval_jaxpr(closed.jaxpr, closed.consts, fnp.asarray(x))
    for g, w in zip(exe(x), want):
        np.testing.assert_allclose(g, np.asarray(w), *tol(np.float32))


def test_a_jitted_optimiser_step_splits_its_update(monkeypatch):
    from fungrad import optim
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    params = {"a": fnp.asarray(_leaves()[0]), "b": fnp.asarray(_leaves()[1])}
    opt = optim.adamw(1e-2)
    state = opt.init(params)

    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s
    jitted = fungrad.jit(step)
    assert "parallel[" in jitted.lower(params, state, params).as_text()
    got = jitted(params, state, params)
    want = step(params, state, params)
    for g, w in zip(fungrad.tree.leaves(got), fungrad.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), *tol(np.float32))


@pytest.mark.parametrize("failing", [0, 1])
def test_errors_in_components_propagate_after_both_threads_finish(failing):
    tasks = [(lambda: [1], [], [0]), (lambda: [2], [], [0])]
    tasks[failing] = (lambda: [1 / 0], [], [0])
    with pytest.raises(ZeroDivisionError):
        parallel._Runner(tasks, 1)()


def test_a_norm_every_component_reads_is_computed_before_the_tail(monkeypatch):
    """clip_by_global_norm: one small value computed from every gradient scales them all;
    it runs before the tail, and the per-parameter updates still run as components."""
    from fungrad import optim
    params = {k: leaf for k, leaf in zip("abcd", _leaves())}
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-2))

    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s
    args = (params, opt.init(fungrad.tree.map(fnp.asarray, params)), params)
    _, exe = _compile(step, args, monkeypatch=monkeypatch)
    [eqn] = [e for e in exe.jaxpr.eqns if e.primitive.name == "parallel"]
    assert len(eqn.params["runner"].tasks) >= len(params)
    _, serial = _compile(step, args, enabled=False, monkeypatch=monkeypatch)
    assert "parallel" not in serial.as_text()
    for g, w in zip(exe(*_flat(args)), serial(*_flat(args))):
        assert g.dtype == w.dtype and np.array_equal(g, w)
