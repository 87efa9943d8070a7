"""PRNG key reuse checking (``debug_key_reuse``) against jax under ``jax_debug_key_reuse``.

Each program below is written once against a library (``fungrad`` or ``jax``: both have
``random``, ``lax``, ``jit``, ``vmap`` and ``grad``) and run under both flags; both
libraries must raise ``KeyReuseError`` on the same programs, and fungrad's message must
name the function that consumed the key again. With the flag off, every program runs.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest

import fungrad
from fungrad import errors
from fungrad.transforms import key_reuse

REUSED = "Previously-consumed key passed to"


def _twice(fn):
    def program(lib):
        k = lib.random.key(0)
        fn(lib, k)
        fn(lib, k)
    return program


def _split_scan(lib, k):
    def body(k, _):
        k, sub = lib.random.split(k)
        return k, lib.random.normal(sub)
    return lib.lax.scan(body, k, None, length=3)


def _split_while(lib, k):
    def body(c):
        k, x = c
        k, sub = lib.random.split(k)
        return k, x + lib.random.uniform(sub)
    return lib.lax.while_loop(lambda c: c[1] < 3, body, (k, 0.0))


def _unpack(lib, k):
    a, b = lib.random.split(k)
    return lib.random.normal(a) + lib.random.normal(b)


def _eager_consumed_then(fn):
    def program(lib):
        k = lib.random.key(0)
        lib.random.normal(k)
        fn(lib, k)
    return program


# name -> (program, None if it runs, else a regex fungrad's KeyReuseError matches)
CASES = {
    # eager: what consumes and what does not
    "normal twice": (_twice(lambda lib, k: lib.random.normal(k)), f"{REUSED} normal at index 0"),
    "uniform twice": (_twice(lambda lib, k: lib.random.uniform(k, (2,))), f"{REUSED} uniform"),
    "bits twice": (_twice(lambda lib, k: lib.random.bits(k)), f"{REUSED} bits"),
    "randint twice": (_twice(lambda lib, k: lib.random.randint(k, (2,), 0, 3)),
                      f"{REUSED} randint"),
    "gamma twice": (_twice(lambda lib, k: lib.random.gamma(k, 2.0)), f"{REUSED} gamma"),
    "split twice": (_twice(lambda lib, k: lib.random.split(k)), f"{REUSED} split"),
    "fold_in twice": (_twice(lambda lib, k: lib.random.fold_in(k, 1)), None),
    "key_data twice": (_twice(lambda lib, k: lib.random.key_data(k)), None),
    "clone each time": (_twice(lambda lib, k: lib.random.normal(lib.random.clone(k))), None),
    "clone of consumed": (_eager_consumed_then(lambda lib, k: lib.random.normal(
        lib.random.clone(k))), None),
    "fold_in of consumed": (_eager_consumed_then(lambda lib, k: lib.random.fold_in(k, 3)), None),
    "split of consumed": (_eager_consumed_then(lambda lib, k: lib.random.split(k)),
                          f"{REUSED} split"),
    "raw keys untracked": (lambda lib: [lib.random.normal(k) for k in [lib.random.PRNGKey(0)] * 2],
                           None),
    "split keys used once": (lambda lib: _unpack(lib, lib.random.key(0)), None),
    "index reused": (lambda lib: [lib.random.normal(ks[0]) for ks in
                                  [lib.random.split(lib.random.key(0), 3)] for _ in range(2)],
                     f"{REUSED} slice"),
    "wrapped key twice": (_twice(lambda lib, k: lib.random.normal(
        lib.random.wrap_key_data(lib.random.key_data(k)))), None),
    "eager vmap twice": (lambda lib: [lib.vmap(lib.random.normal)(ks) for ks in
                                      [lib.random.split(lib.random.key(0), 3)] * 2],
                         f"{REUSED} normal"),
    "vmap after one index": (lambda lib: [lib.random.normal(ks[1]), lib.vmap(
        lib.random.normal)(ks)] if (ks := lib.random.split(lib.random.key(0), 3)) is not None
        else None, f"{REUSED} normal"),
    "grad then reuse": (_eager_consumed_then(lambda lib, k: lib.grad(
        lambda x, k: x * lib.random.normal(k))(1.0, k)), REUSED),
    "grad reuses inside": (lambda lib: lib.grad(lambda x, k: x * lib.random.normal(k) +
                                                lib.random.normal(k))(1.0, lib.random.key(0)),
                           f"{REUSED} normal"),
    # jit: checked when traced; the caller's key consumed after the call
    "jit twice inside": (lambda lib: lib.jit(lambda k: lib.random.normal(k) + lib.random.normal(
        k))(lib.random.key(0)), "In normal, argument 0 is already consumed"),
    "jit split then sample": (lambda lib: lib.jit(lambda k: (lib.random.split(k),
                                                             lib.random.normal(k)))(
        lib.random.key(0)), "In normal, argument 0"),
    "jit then eager": (lambda lib: [f(k) for f in [lib.jit(lib.random.normal)]
                                    for k in [lib.random.key(0)] for _ in range(2)],
                       r"Previously-consumed key passed to jit\(normal\) at index 0"),
    "jit of consumed key": (_eager_consumed_then(lambda lib, k: lib.jit(
        lambda k: lib.random.normal(k))(k)), r"jit\(<lambda>\) at index 0"),
    "jit passes consumed key": (_eager_consumed_then(lambda lib, k: lib.jit(lambda k: k)(k)),
                                None),
    "jit returns consumed key": (lambda lib: lib.random.normal(lib.jit(
        lambda k: (lib.random.normal(k), k)[1])(lib.random.key(0))), f"{REUSED} normal"),
    "jit unpack split": (lambda lib: lib.jit(lambda k: _unpack(lib, k))(lib.random.key(0)),
                         None),
    "jit index twice": (lambda lib: lib.jit(lambda ks: lib.random.normal(ks[0]) +
                                            lib.random.normal(ks[0]))(
        lib.random.split(lib.random.key(0))), "In slice, argument 0"),
    "jit dynamic index": (lambda lib: lib.jit(lambda ks, i: lib.random.normal(ks[i]) +
                                              lib.random.normal(ks[1]))(
        lib.random.split(lib.random.key(0)), 0), "In slice, argument 0"),
    "jit clone": (lambda lib: lib.jit(lambda k: lib.random.normal(lib.random.clone(k)) +
                                      lib.random.normal(k))(lib.random.key(0)), None),
    "jit fold_in twice": (lambda lib: lib.jit(lambda k: (lib.random.fold_in(k, 1),
                                                         lib.random.fold_in(k, 2)))(
        lib.random.key(0)), None),
    "jit raw key twice": (lambda lib: lib.jit(lambda k: lib.random.normal(k) +
                                              lib.random.normal(k))(lib.random.PRNGKey(0)), None),
    "jit trace only": (lambda lib: lib.jit(lambda k: lib.random.normal(k) + lib.random.normal(
        k)).trace(lib.random.key(0)), "In normal"),
    # control flow, vmap and grad under jit
    "cond both branches": (lambda lib: lib.jit(lambda p, k: lib.lax.cond(
        p, lambda k: lib.random.normal(k), lambda k: lib.random.normal(k) + 1, k))(
        True, lib.random.key(0)), None),
    "cond then reuse": (lambda lib: lib.jit(lambda p, k: lib.lax.cond(
        p, lambda k: lib.random.normal(k), lambda k: 0.0, k) + lib.random.normal(k))(
        True, lib.random.key(0)), "In normal, argument 0"),
    "cond closure": (lambda lib: [lib.jit(lambda p: lib.lax.cond(
        p, lambda: lib.random.normal(k), lambda: lib.random.normal(k) + 1))(True)
        for k in [lib.random.key(0)]], None),
    "eager cond then reuse": (lambda lib: [lib.lax.cond(True, lambda k: lib.random.normal(k),
                                                        lambda k: 0.0, k), lib.random.normal(k)]
                              if (k := lib.random.key(0)) is not None else None,
                              f"{REUSED} normal"),
    "scan closes over key": (lambda lib: lib.jit(lambda k: lib.lax.scan(
        lambda c, _: (c, lib.random.normal(k)), 0.0, None, length=3))(lib.random.key(0)),
        "scan body function leads to key reuse"),
    "scan carries consumed key": (lambda lib: lib.jit(lambda k: lib.lax.scan(
        lambda k, _: (k, lib.random.normal(k)), k, None, length=3))(lib.random.key(0)),
        "scan body function leads to key reuse"),
    "scan splits per step": (lambda lib: lib.jit(lambda k: _split_scan(lib, k))(
        lib.random.key(0)), None),
    "scan over keys": (lambda lib: lib.jit(lambda ks: lib.lax.scan(
        lambda c, k: (c, lib.random.normal(k)), 0.0, ks))(lib.random.split(lib.random.key(0), 3)),
        None),
    "eager scan reuses": (lambda lib: lib.lax.scan(lambda c, _: (c, lib.random.normal(c)),
                                                   lib.random.key(0), None, length=3),
                          "scan body function leads to key reuse"),
    "while reuses carry": (lambda lib: lib.lax.while_loop(
        lambda c: c[1] < 3, lambda c: (c[0], c[1] + lib.random.normal(c[0])),
        (lib.random.key(0), 0.0)), "while_loop body function leads to key reuse"),
    "while splits per step": (lambda lib: _split_while(lib, lib.random.key(0)), None),
    "jit while splits": (lambda lib: lib.jit(lambda k: _split_while(lib, k))(lib.random.key(0)),
                         None),
    "jit vmap twice": (lambda lib: lib.jit(lib.vmap(lambda k: lib.random.normal(k) +
                                                    lib.random.normal(k)))(
        lib.random.split(lib.random.key(0), 2)), "In normal"),
    "jit vmap once": (lambda lib: lib.jit(lib.vmap(lambda k: lib.random.normal(k)))(
        lib.random.split(lib.random.key(0), 2)), None),
    "jit grad once": (lambda lib: lib.jit(lib.grad(lambda x, k: x * lib.random.normal(k)))(
        1.0, lib.random.key(0)), None),
    "jit grad twice": (lambda lib: lib.jit(lib.grad(lambda x, k: x * lib.random.normal(k) +
                                                    lib.random.normal(k)))(
        1.0, lib.random.key(0)), "In normal"),
    "jit grad of cond": (lambda lib: lib.jit(lib.grad(lambda x, k: lib.lax.cond(
        x > 0, lambda k: x * lib.random.normal(k), lambda k: x, k)))(1.0, lib.random.key(0)),
        None),
    "jit grad of scan": (lambda lib: lib.jit(lib.grad(lambda x, k: lib.lax.scan(
        lambda c, k: (c * lib.random.normal(k), None), x,
        lib.random.split(k, 3))[0]))(1.0, lib.random.key(0)), None),
}


@pytest.fixture
def checking():
    with jax.debug_key_reuse(True), fungrad.debug_key_reuse(True):
        yield


@pytest.mark.parametrize("name", list(CASES))
def test_same_programs_raise_as_in_jax(name, checking):
    program, message = CASES[name]
    if message is None:
        program(jax)
        program(fungrad)
        return
    with pytest.raises(jax.errors.KeyReuseError):
        program(jax)
    with pytest.raises(errors.KeyReuseError, match=message):
        program(fungrad)


@pytest.mark.parametrize("name", [n for n, (_, m) in CASES.items() if m is not None][:12])
def test_reuse_runs_with_the_flag_off(name):
    assert not fungrad.config.debug_key_reuse
    CASES[name][0](fungrad)


def test_flag_spellings_and_context_manager():
    assert fungrad.debug_key_reuse.value is False
    fungrad.config.update("jax_debug_key_reuse", True)
    try:
        assert fungrad.config.debug_key_reuse
        k = fungrad.random.key(0)
        fungrad.random.normal(k)
        with pytest.raises(errors.KeyReuseError):
            fungrad.random.normal(k)
    finally:
        fungrad.config.update("debug_key_reuse", False)
    fungrad.random.normal(k)  # not checked any more
    with fungrad.debug_key_reuse(True):
        assert fungrad.debug_key_reuse.value
    assert not fungrad.config.debug_key_reuse


def test_jit_traces_again_when_the_flag_changes():
    f = fungrad.jit(lambda k: fungrad.random.normal(k) + fungrad.random.normal(k))
    f(fungrad.random.key(0))  # traced without checking
    with fungrad.debug_key_reuse(True):
        with pytest.raises(errors.KeyReuseError, match="In normal"):
            f(fungrad.random.key(0))
    f(fungrad.random.key(0))


def test_draws_are_unchanged_by_checking():
    k = fungrad.random.key(3)
    plain = np.asarray(fungrad.random.normal(k, (4,)))
    with fungrad.debug_key_reuse(True):
        checked = np.asarray(fungrad.random.normal(fungrad.random.key(3), (4,)))
        jitted = np.asarray(fungrad.jit(lambda k: fungrad.random.normal(k, (4,)))(
            fungrad.random.key(3)))
    np.testing.assert_array_equal(plain, checked)
    np.testing.assert_array_equal(plain, jitted)


def test_checkpointed_dropout_under_grad_is_not_a_reuse():
    """Differentiating checkpointed code recomputes its forward pass: not a second use."""
    def loss(x, k):
        return fungrad.checkpoint(lambda x: fungrad.nn.dropout(k, x, 0.5).sum())(x)
    with fungrad.debug_key_reuse(True):
        fungrad.jit(fungrad.grad(loss))(fungrad.numpy.ones(4), fungrad.random.key(0))
        fungrad.grad(loss)(fungrad.numpy.ones(4), fungrad.random.key(1))


def test_the_primitives_leave_no_trace_in_compiled_code():
    with fungrad.debug_key_reuse(True):
        f = fungrad.jit(lambda k: fungrad.random.normal(k))
        assert "key_consume" in str(f.trace(fungrad.random.key(0)).jaxpr)
        assert "key_consume" not in f.lower(fungrad.random.key(0)).as_text()
    assert "key_consume" not in str(fungrad.make_jaxpr(
        lambda k: fungrad.random.normal(k))(fungrad.random.key(0)))


def test_signature_of_a_jaxpr():
    with fungrad.debug_key_reuse(True):
        traced = fungrad.jit(lambda k, j: (fungrad.random.split(k)[1], j)).trace(
            fungrad.random.key(0), fungrad.random.key(1))
    sig = key_reuse.jaxpr_signature(traced.jaxpr.jaxpr)
    assert list(sig.sinks) == [0] and sig.sinks[0].all()
    assert sig.forwards == {1: 1} and not sig.consumed
