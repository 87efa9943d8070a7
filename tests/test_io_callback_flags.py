"""``io_callback`` and JAX's remaining configuration flags against jax on the same programs.

* ``io_callback``: the side effects a callback leaves in a Python list (how many calls, in
  what order, with what values) and the results, eagerly, under ``jit`` (results unused,
  ordered, two identical calls), ``scan``, ``fori_loop``/``while_loop``, ``cond``, ``vmap``
  and ``grad`` of other inputs; the errors for differentiating it, ``vmap`` of an ordered
  one and results that do not match their declared shapes and dtypes.
* the flags: ``no_tracing`` (a cache miss raises, a hit does not), ``no_execution`` (what
  runs raises, what only traces does not), ``explain_cache_misses`` (the log names the
  argument that changed, as jax's does), ``make_user_context``, the accepted flags and
  ``debug_key_reuse``; and ``fwd_and_bwd``.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import jax
import jax.experimental
import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.experimental
import fungrad.numpy as fnp
from harness import assert_same, rand, to_fg, to_jax

RNG = np.random.default_rng(0)
X = rand(RNG, (3,))
LIBS = {"fungrad": (fungrad, fnp, fungrad.experimental.io_callback),
        "jax": (jax, jnp_ref, jax.experimental.io_callback)}


def _outcome(run: Callable[[], Any]) -> str:
    """``"ok"`` or the name of the error ``run`` raised (the libraries' names agree)."""
    try:
        run()
    except Exception as e:  # noqa: BLE001  (any error: its name is compared)
        return type(e).__name__
    return "ok"


# --------------------------------------------------------------------------- io_callback

def _programs(lib: Any, np_: Any, io_callback: Callable, log: list) -> dict:
    """Programs calling an effectful callback, written once for both libraries; each
    returns its result, and ``log`` receives what the callback saw, in order."""
    def note(v: Any) -> None:
        log.append(np.asarray(v).tolist())

    def record(v: Any) -> np.ndarray:
        note(v)
        return np.asarray(v) * 2

    def spec(v: Any) -> Any:
        return lib.ShapeDtypeStruct(v.shape, v.dtype)

    def unused_and_ordered(x):
        io_callback(record, spec(x), x)  # result unused: must not be removed
        return io_callback(record, spec(x), x + 1, ordered=True).sum()

    def twice(x):
        return io_callback(record, spec(x), x) + io_callback(record, spec(x), x)

    def scan(x):
        def body(c, xi):
            io_callback(record, spec(xi), xi, ordered=True)
            return c + xi, c
        return lib.lax.scan(body, np_.float32(0), x)

    def fori(x):
        return lib.lax.fori_loop(0, 3, lambda i, c: c + io_callback(record, spec(c), c), x)

    def cond(x):
        return [lib.lax.cond(p, lambda v: io_callback(record, spec(v), v), lambda v: v, x)
                for p in (True, False)]

    def vmap(x):
        return lib.vmap(lambda v: io_callback(record, spec(v), v))(x)

    def grad_of_another_input(x):  # the callback sees an input that is not differentiated
        return lib.grad(lambda w, v: (io_callback(record, spec(v), v) * w).sum())(2.0, x)

    def while_under_linearize(x):
        def body(c):
            i, s = c
            io_callback(note, None, i)
            lib.lax.cond(i > 0, lambda v: io_callback(note, None, v * 10), lambda v: None, i)
            return i + 1, s * 2.0
        f = lambda s: lib.lax.while_loop(lambda c: c[0] < 3, body, (0, s))[1]  # noqa: E731
        y, f_jvp = lib.linearize(f, x[0])
        return y, f_jvp(1.0)

    return {"eager": lambda x: io_callback(record, spec(x), x),
            "jit_unused_and_ordered": lib.jit(unused_and_ordered), "jit_twice": lib.jit(twice),
            "scan": lib.jit(scan), "fori_loop": lib.jit(fori), "cond": lib.jit(cond),
            "vmap": vmap, "jit_vmap": lib.jit(vmap), "grad": grad_of_another_input,
            "jit_grad": lib.jit(grad_of_another_input),
            "while_under_linearize": while_under_linearize}


@pytest.mark.parametrize("name", sorted(_programs(jax, jnp_ref, jax.experimental.io_callback,
                                                  [])))
def test_io_callback_effects_and_results_match_jax(name):
    seen, outs = {}, {}
    for lib_name, (lib, np_, io_callback) in LIBS.items():
        log = seen[lib_name] = []
        fn = _programs(lib, np_, io_callback, log)[name]
        x = to_fg(X) if lib is fungrad else to_jax(X)
        outs[lib_name] = fn(x)
        fn(x)  # the second call of a compiled function runs the callbacks again
    assert seen["fungrad"] == seen["jax"]
    assert seen["fungrad"], "the callback never ran"
    assert_same(outs["fungrad"], outs["jax"])


def test_io_callback_inside_scan_under_grad_runs_every_step():
    """Partial evaluation keeps the effect in the scan's known half (jax 0.10.2 loses it:
    a documented difference), including inside a ``cond`` in the body."""
    log = []

    def body(c, xi):
        x_ = fungrad.lax.stop_gradient(xi)
        fungrad.experimental.io_callback(log.append, None, x_)
        fungrad.lax.cond(x_ > 0, lambda v: fungrad.experimental.io_callback(
            log.append, None, v * 10), lambda v: None, x_)
        return c * xi, c
    loss = lambda x: fungrad.lax.scan(body, 1.0, x)[0]  # noqa: E731
    x = fnp.asarray([1.0, -2.0, 3.0])
    assert_same(fungrad.grad(loss)(x), jax.grad(lambda v: jax.lax.scan(
        lambda c, xi: (c * xi, c), 1.0, v)[0])(to_jax(x)))
    assert [float(v) for v in log] == [1.0, 10.0, -2.0, 3.0, 30.0]


def test_what_a_callback_keeps_is_never_overwritten():
    """The compiled code does not reuse an operand a callback saw (it may keep it), and a
    result the callback keeps and changes later does not change the returned array. (A jax
    callback may not keep its argument, nor change what it returned: jax may reuse or share
    those buffers, so the kept values are checked against NumPy.)"""
    seen, state, x = [], np.zeros(3, np.float32), rand(RNG, (1000,))

    def program(lib: Any, np_: Any, io_callback: Callable) -> Callable:
        def f(x):
            io_callback(seen.append, None, np_.sin(x) * 2)  # kept as it is, no copy
            cos = (np_.cos(x) + 1) * 3  # may take sin's buffer if nothing kept it
            return cos, io_callback(lambda: state, lib.ShapeDtypeStruct((3,), np.float32))
        return lib.jit(f)

    f, g = program(*LIBS["fungrad"]), program(*LIBS["jax"])
    ours = [f(fnp.asarray(x)), f(fnp.asarray(x) + 1)]
    for v, shift in zip(seen, (0, 1)):
        np.testing.assert_allclose(v, np.sin(x + shift) * 2, rtol=1e-6)
    assert_same(ours, [g(jnp_ref.asarray(x)), g(jnp_ref.asarray(x) + 1)])
    state += 5  # the callback's own array changes after it returned it (jax may not copy it)
    assert not any(np.asarray(out).any() for _, out in ours)


def test_io_callback_is_kept_in_the_optimised_program():
    f = fungrad.jit(lambda x: (fungrad.experimental.io_callback(print, None, x), x * 2)[1])
    assert "io_callback" in f.lower(fnp.ones(2)).as_text()


def _errors(lib: Any, np_: Any, io_callback: Callable) -> dict:
    spec = lib.ShapeDtypeStruct((3,), np.float32)
    x = np_.asarray(X)
    return {
        "grad": lambda: lib.grad(lambda v: io_callback(lambda a: a, spec, v).sum())(x),
        "jvp": lambda: lib.jvp(lambda v: io_callback(lambda a: a, spec, v), (x,), (x,)),
        "vmap_ordered": lambda: lib.vmap(
            lambda v: io_callback(lambda a: a, spec, v, ordered=True))(np_.ones((2, 3))),
        "wrong_shape": lambda: io_callback(lambda a: a[:2], spec, x),
        "wrong_shape_jit": lambda: lib.jit(lambda v: io_callback(lambda a: a[:2], spec, v))(x),
        "wrong_dtype": lambda: io_callback(lambda a: a.astype(np.int32), spec, x),
        "wrong_count": lambda: io_callback(lambda a: (a, a), spec, x),
        "x64_declared": lambda: io_callback(lambda a: a, lib.ShapeDtypeStruct((3,), np.float64),
                                            x),
        "float64_returned": lambda: io_callback(lambda a: np.asarray(a, np.float64), spec, x),
        "python_float_returned": lambda: io_callback(
            lambda: 1.0, lib.ShapeDtypeStruct((), np.float32)),
    }


@pytest.mark.parametrize("case", sorted(_errors(jax, jnp_ref, jax.experimental.io_callback)))
def test_io_callback_errors_match_jax(case):
    got = _outcome(_errors(*LIBS["fungrad"])[case])
    assert got == _outcome(_errors(*LIBS["jax"])[case])
    if case in ("grad", "jvp", "vmap_ordered"):
        for lib in LIBS.values():
            message = "IO callbacks do not support JVP" if case != "vmap_ordered" else \
                "Cannot `vmap` ordered IO callback"
            with pytest.raises(ValueError, match=message):
                _errors(*lib)[case]()


def test_io_callback_declared_results_are_checked_and_named():
    with pytest.raises(fungrad.errors.JaxRuntimeError, match=r"result #0 is float32\[2\] "
                       r"where result_shape_dtypes declares f32\[3\]"):
        _errors(*LIBS["fungrad"])["wrong_shape"]()
    out = fungrad.experimental.io_callback(lambda: (np.ones(2), 3),
                                           (fungrad.ShapeDtypeStruct((2,), np.float32),
                                            fungrad.ShapeDtypeStruct((), np.int32)))
    ref = jax.experimental.io_callback(lambda: (np.ones(2), 3),
                                       (jax.ShapeDtypeStruct((2,), np.float32),
                                        jax.ShapeDtypeStruct((), np.int32)))
    assert_same(out, ref)


# --------------------------------------------------------------------------- no_tracing

def test_no_tracing_raises_on_a_cache_miss_only():
    for lib, np_, _ in LIBS.values():
        f = lib.jit(lambda x: x * 2)
        f(np_.ones(3))
        with lib.no_tracing(True):
            assert lib.no_tracing.value
            f(np_.ones(3))  # a cache hit runs
            with pytest.raises(RuntimeError, match="no_tracing"):
                f(np_.ones(4))
            with pytest.raises(RuntimeError, match="no_tracing"):
                lib.jit(lambda x: x + 1).lower(np_.ones(3))
        assert not lib.no_tracing.value
        f(np_.ones(4))


# --------------------------------------------------------------------------- no_execution

def _executions(lib: Any, np_: Any, cached: Callable) -> dict:
    x = np_.ones(3)
    return {"eager_op": lambda: x + 1, "cached_jit_call": lambda: cached(x),
            "grad": lambda: lib.grad(lambda v: (v * v).sum())(x),
            "make_jaxpr": lambda: lib.make_jaxpr(lambda v: v * 2)(x),
            "eval_shape": lambda: lib.eval_shape(lambda v: v * 2, x),
            "lower_compile": lambda: lib.jit(lambda v: v + 3).lower(x).compile(),
            "to_numpy": lambda: np.asarray(x)}


@pytest.mark.parametrize("case", sorted(_executions(jax, jnp_ref, None)))
def test_no_execution_refuses_what_runs_as_jax_does(case):
    outcomes = []
    for lib, np_, _ in LIBS.values():
        cached = lib.jit(lambda v: v * 2)
        cached(np_.ones(3))
        run = _executions(lib, np_, cached)[case]
        with lib.no_execution(True):
            outcomes.append(_outcome(run))
        assert _outcome(run) == "ok"  # runs again once the flag is off
    assert outcomes[0] == outcomes[1]


def test_no_execution_names_the_function():
    f, x = fungrad.jit(lambda x: x * 2), fnp.ones(2)
    f(x)
    with fungrad.no_execution(True):
        with pytest.raises(RuntimeError, match=r"execute function jit\(<lambda>\), but the "
                                               "no_execution config option is set"):
            f(x)
        with pytest.raises(RuntimeError, match="execute function add"):
            x + x


# --------------------------------------------------------------------------- explain_cache_misses

def _miss_messages(lib: Any, np_: Any, caplog: Any) -> list[str]:
    """The cache-miss reports for calls that change, in turn, a shape, a weak type, a
    static value and the pytree structure."""
    def f(x, y, n=1):
        return x * y * n
    g = lib.jit(f, static_argnames="n")
    caplog.clear()
    with caplog.at_level(logging.WARNING), lib.explain_cache_misses(True):
        g(np_.ones(3), 2.0)
        g(np_.ones(3), 2.0)  # a hit: nothing logged
        g(np_.ones(4), 2.0)
        g(np_.ones(4), np_.float32(2.0))
        g(np_.ones(4), np_.float32(2.0), n=3)
        g(np_.ones(4), np_.float32(2.0), n=4)
        with pytest.raises(TypeError):  # traced (and explained) before it fails
            g((np_.ones(4),), np_.float32(2.0), n=4)
    return [r.getMessage() for r in caplog.records if "TRACING CACHE MISS" in r.getMessage()]


def test_explain_cache_misses_names_what_changed_as_jax_does(caplog):
    ours = _miss_messages(fungrad, fnp, caplog)
    theirs = _miss_messages(jax, jnp_ref, caplog)
    assert len(ours) == len(theirs) == 6
    assert "never seen function" in ours[0] and "never seen function" in theirs[0]
    assert "test_io_callback_flags.py" in ours[0].splitlines()[0]  # the call site
    for facts, ours_msg, theirs_msg in [(("x", "f32[4]", "f32[3]"), ours[1], theirs[1]),
                                        (("y", "weak"), ours[2], theirs[2]),
                                        (("different input pytree",), ours[5], theirs[5])]:
        for fact in facts:
            assert fact in ours_msg and fact in theirs_msg, (fact, ours_msg, theirs_msg)
    assert "different input types:\n  * 'x': f32[4] (before: f32[3])" in ours[1]
    assert "'y': f32[] (before: f32[] (weak)); only the weak type differs" in ours[2]
    assert "static 'n' = 3" in ours[3]
    assert "static 'n' = 4 (before: 3)" in ours[4]
    assert "now PyTreeSpec((((*,), *), {}))" in ours[5] and "only now: 'x[0]': f32[4]" in ours[5]


def test_explain_cache_misses_spots_a_function_redefined_at_each_call(caplog):
    with caplog.at_level(logging.WARNING, logger="fungrad.jit"), \
            fungrad.explain_cache_misses(True):
        for _ in range(2):
            fungrad.jit(lambda x: x + 1)(1.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "re-defined repeatedly" in messages[1]


# --------------------------------------------------------------------------- user contexts

def test_make_user_context_keys_the_jit_cache_as_jax_does():
    traces = {}
    for name, (lib, np_, _) in LIBS.items():
        ctx = lib.make_user_context(default_value=1)
        count = traces[name] = [0]

        @lib.jit
        def f(x):
            count[0] += 1
            return x * 2
        values = []
        f(np_.ones(2))
        for v in (2, 2, 1, 3):
            with ctx(v):
                values.append(ctx.value)
                f(np_.ones(2))
        values.append(ctx.value)
        assert values == [2, 2, 1, 3, 1]
    assert traces["fungrad"] == traces["jax"] == [3]
    with pytest.raises(TypeError, match="hashable"):
        with fungrad.make_user_context()([1]):
            pass


def test_user_context_values_reach_the_traced_code():
    scale = fungrad.make_user_context(default_value=2.0)
    f = fungrad.jit(lambda x: x * scale.value)
    with scale(5.0):
        assert float(f(1.0)) == 5.0
    assert float(f(1.0)) == 2.0


# --------------------------------------------------------------------------- accepted flags

@pytest.mark.parametrize("flag", ["enable_checks", "allow_f16_reductions", "thread_guard",
                                  "softmax_custom_jvp", "explain_cache_misses", "no_tracing",
                                  "no_execution", "debug_key_reuse"])
def test_flags_have_jax_defaults_and_restore_their_value(flag):
    ours, theirs = getattr(fungrad, flag), getattr(jax, flag)
    assert ours.value == theirs.value
    with ours(not ours.value):
        assert ours.value != theirs.value
    assert ours.value == theirs.value
    fungrad.config.update(f"jax_{flag}", ours.value)


def test_debug_key_reuse_checks_keys():
    """The checks themselves are compared with jax's in ``test_key_reuse.py``."""
    with fungrad.debug_key_reuse(True):
        key = fungrad.random.key(0)
        fungrad.random.normal(key)
        with pytest.raises(fungrad.errors.KeyReuseError, match="Previously-consumed key"):
            fungrad.random.normal(key)
    assert not fungrad.debug_key_reuse.value


def test_allow_f16_reductions_false_is_accepted():
    with fungrad.allow_f16_reductions(False):
        assert fungrad.config.allow_f16_reductions is False
        assert fnp.sum(fnp.ones(4, fnp.float16)).dtype == fnp.float16


# --------------------------------------------------------------------------- fwd_and_bwd

def _fwd_bwd(lib: Any, np_: Any, argnums: Any, jitted: bool) -> tuple:
    f = lambda x, w: (np_.sin(x) * w, {"aux": x.sum()})  # noqa: E731
    fwd, bwd = lib.fwd_and_bwd(f, argnums=argnums, has_aux=True, jitted=jitted)
    results = []
    for shift in (0.0, 1.0):
        x, w = np_.asarray(X) + shift, np_.asarray(X[::-1])
        y, residuals, aux = fwd(x, w)
        results.append((y, aux, bwd(residuals, np_.ones(3))))
    return results, bwd


@pytest.mark.parametrize("argnums", [0, (0, 1), (1,)])
@pytest.mark.parametrize("jitted", [True, False])
def test_fwd_and_bwd_matches_jax(argnums, jitted):
    ours, bwd = _fwd_bwd(fungrad, fnp, argnums, jitted)
    theirs, _ = _fwd_bwd(jax, jnp_ref, argnums, jitted)
    assert_same(ours, theirs)
    if jitted:
        assert bwd._cache_size() == 1  # the backward pass compiled once for both calls


def test_fwd_and_bwd_checks_the_cotangent():
    for lib, np_, _ in LIBS.values():
        fwd, bwd = lib.fwd_and_bwd(lambda x: x * 2, argnums=0)
        _, residuals = fwd(np_.ones(3))
        with pytest.raises(ValueError):
            bwd(residuals, np_.ones(4))
