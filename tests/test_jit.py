"""``jit`` against ``jax.jit``: values, the signature cache (no retrace on a hit, retrace
on a new shape/dtype/weak type/static value), static and donated arguments, the
staging API (lower/as_text/compile), compile logging, ``disable_jit``,
``debug.print``/``debug.callback``, every transformation composed with ``jit`` in
each position, leaked tracers and error messages that name the argument."""
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import errors, lax
from fungrad.compiler import pipeline
from harness import GRAD_TOL, assert_same, to_fg, to_jax

RNG = np.random.default_rng(0)


def r(*shape):
    return RNG.uniform(-1, 1, shape).astype(np.float32)


def mlp(lib):
    """A two-layer network's loss, written once for both libraries."""
    def loss(params, x, y):
        h = lib.tanh(x @ params["w1"] + params["b1"])
        out = h @ params["w2"]
        return lib.mean((out - y) ** 2)
    return loss


PARAMS = {"w1": r(4, 8), "b1": r(8), "w2": r(8, 3)}
X, Y = r(5, 4), r(5, 3)


class Counter:
    """Counts Python executions of a function body (tracing happens once per signature)."""

    def __init__(self, fn):
        self.fn, self.n = fn, 0

    def __call__(self, *args, **kwargs):
        self.n += 1
        return self.fn(*args, **kwargs)


# --------------------------------------------------------------------------- values

@pytest.mark.parametrize("name, fn", [
    ("elementwise", lambda lib: lambda x, y: lib.sin(x) * y + 1.0),
    ("reduction", lambda lib: lambda x, y: lib.sum(x * y, axis=0)),
    ("matmul", lambda lib: lambda x, y: lib.tanh(x @ y.T)),
    ("pytree_out", lambda lib: lambda x, y: {"s": x + y, "t": (x * 2.0, lib.max(y))}),
    ("python_scalar_out", lambda lib: lambda x, y: (x, 3.0)),
])
def test_values_match_jax(name, fn):
    x, y = r(3, 4), r(3, 4)
    assert_same(fungrad.jit(fn(fnp))(*to_fg((x, y))), jax.jit(fn(jnp))(*to_jax((x, y))))


def test_python_scalar_arguments_are_weak_and_do_not_retrace():
    f = Counter(lambda x, s: x * s)
    jf = fungrad.jit(f)
    x = fnp.asarray(r(3))
    assert_same(jf(x, 2.0), jax.jit(lambda x, s: x * s)(jnp.asarray(np.asarray(x)), 2.0))
    jf(x, 5.0)
    assert f.n == 1
    out = fungrad.jit(lambda s: s + 1.0)(2.0)
    assert out.weak_type and out.dtype == np.float32


def test_kwargs_and_pytrees():
    f = fungrad.jit(mlp(fnp))
    assert_same(f(to_fg(PARAMS), to_fg(X), y=to_fg(Y)),
                jax.jit(mlp(jnp))(to_jax(PARAMS), to_jax(X), y=to_jax(Y)))


# --------------------------------------------------------------------------- cache

def test_no_retrace_on_same_signature_and_retrace_on_changes():
    f = Counter(lambda x: x * 2)
    jf = fungrad.jit(f)
    jf(fnp.ones(3))
    jf(fnp.zeros(3))
    assert f.n == 1 and jf._cache_size() == 1
    jf(fnp.ones(4))                                   # new shape
    jf(fnp.asarray(np.ones(3, np.int32)))             # new dtype
    jf(fnp.asarray(1.0))                              # strong f32[]
    jf(1.0)                                           # weak f32[]: a new signature, as in jax
    assert f.n == 5 and jf._cache_size() == 5
    jf(fnp.ones(4))
    assert f.n == 5
    jf.clear_cache()
    jf(fnp.ones(3))
    assert f.n == 6 and jf._cache_size() == 1


def test_jit_of_the_same_function_shares_its_cache():
    f = Counter(lambda x: x + 1)
    fungrad.jit(f)(fnp.ones(2))
    fungrad.jit(f)(fnp.ones(2))
    assert f.n == 1


def test_grad_of_jit_traces_and_compiles_once(monkeypatch):
    f = Counter(lambda x: fnp.sum(fnp.sin(x) ** 2))
    jf = fungrad.jit(f)
    compiled = []
    real = pipeline.compile_jaxpr
    monkeypatch.setattr(pipeline, "compile_jaxpr",
                        lambda *a, **k: compiled.append(1) or real(*a, **k))
    g = fungrad.grad(jf)
    g(fnp.ones(3))
    n_compiled = len(compiled)
    g2 = g(fnp.ones(3) * 0.5)
    assert f.n == 1 and len(compiled) == n_compiled
    assert_same(g2, jax.grad(lambda x: jnp.sum(jnp.sin(x) ** 2))(jnp.full((3,), 0.5)))


# --------------------------------------------------------------------------- static arguments

def test_static_argnums_and_argnames():
    def f(x, n, scale=1.0):
        return fnp.sum(x ** n) * scale
    body = Counter(f)
    by_num = fungrad.jit(body, static_argnums=1)
    x = fnp.asarray(r(3))
    ref = jax.jit(lambda x, n: jnp.sum(x ** n), static_argnums=1)
    assert_same(by_num(x, 3), ref(jnp.asarray(np.asarray(x)), 3))
    by_num(x, 3)
    assert body.n == 1
    by_num(x, 2)
    assert body.n == 2
    by_name = fungrad.jit(f, static_argnames="n")
    assert_same(by_name(x, n=3), ref(jnp.asarray(np.asarray(x)), 3))
    assert_same(by_name(x, 3), ref(jnp.asarray(np.asarray(x)), 3))  # positional: still static


def test_static_argnums_with_partial_decorator():
    @functools.partial(fungrad.jit, static_argnames=("shape",))
    def zeros(x, shape):
        return x + fnp.zeros(shape)
    assert zeros(fnp.ones(()), shape=(2, 3)).shape == (2, 3)


def test_unhashable_static_argument_names_it():
    f = fungrad.jit(lambda x, dims: x, static_argnums=1)
    with pytest.raises(ValueError, match=r"Non-hashable static arguments.*'dims'"):
        f(fnp.ones(2), [1, 2])


def test_invalid_static_argnames():
    with pytest.raises(ValueError, match="invalid argnames"):
        fungrad.jit(lambda x: x, static_argnames="y")


def test_non_array_argument_error_names_it():
    with pytest.raises(TypeError, match="argument 'mode'.*static"):
        fungrad.jit(lambda x, mode: x)(fnp.ones(2), "fast")


# --------------------------------------------------------------------------- donation

def _write(cache, update, pos):
    return lax.dynamic_update_slice(cache, update, (pos, 0))


def _address(x):
    return x._value.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_donated_kv_cache_is_updated_in_place(dtype):
    """A donated cache is written in place, a bfloat16 one too (an update writes by
    indexing, so any dtype's buffer takes it)."""
    cache = fnp.zeros((4096, 64), dtype) + 0.0  # an owned buffer (zeros: a read-only broadcast)
    address = _address(cache)  # (holding the buffer itself would make donation copy)
    step = fungrad.jit(_write, donate_argnums=0)
    new = step(cache, fnp.ones((1, 64), dtype), 7)
    assert _address(new) == address and new.dtype == dtype  # no copy of the cache
    assert float(new[7, 0]) == 1.0 and float(new[6, 0]) == 0.0
    with pytest.raises(RuntimeError, match="deleted"):
        cache + 1                                         # donated arrays are deleted
    newer = step(new, fnp.full((1, 64), 2.0, dtype), 8)
    assert _address(newer) == address and float(newer[7, 0]) == 1.0
    fresh = step(fnp.zeros((4096, 64), dtype), fnp.ones((1, 64), dtype), 0)  # a read-only
    assert float(fresh[0, 0]) == 1.0                      # input is copied once


def test_donation_copies_when_the_buffer_is_shared():
    cache = fnp.zeros((4096, 64))
    view = cache.reshape(64, 4096)                        # an eager view of the same memory
    new = fungrad.jit(_write, donate_argnums=0)(cache, fnp.ones((1, 64)), 0)
    assert float(new[0, 0]) == 1.0 and float(view[0, 0]) == 0.0


def test_donate_argnames_by_keyword_and_position():
    step = fungrad.jit(_write, donate_argnames="cache")
    update = fnp.ones((1, 64))
    for call in (lambda c: step(c, update, 0), lambda c: step(cache=c, update=update, pos=0)):
        cache = fnp.zeros((4096, 64)) + 0.0
        address = _address(cache)
        new = call(cache)
        assert _address(new) == address
        with pytest.raises(RuntimeError, match="deleted"):
            cache.sum()


def test_donated_buffer_passed_twice_is_copied():
    f = fungrad.jit(lambda c, d: (_write(c, fnp.ones((1, 64)), 0), d), donate_argnums=0)
    x = fnp.zeros((4096, 64)) + 0.0
    new, same = f(x, x)
    assert float(new[0, 0]) == 1.0 and float(same[0, 0]) == 0.0
    y = fnp.zeros((4096, 64)) + 1.0
    assert float(fungrad.jit(lambda a, b: a + b, donate_argnums=(0, 1))(y, y)[0, 0]) == 2.0


def test_without_donation_the_input_is_untouched():
    cache = fnp.zeros((4096, 64))
    new = fungrad.jit(_write)(cache, fnp.ones((1, 64)), 0)
    assert float(cache[0, 0]) == 0.0 and float(new[0, 0]) == 1.0


# --------------------------------------------------------------------------- staging API

def test_lower_as_text_and_compile(monkeypatch, capsys):
    f = fungrad.jit(lambda x: (x * 1.0 + 0.0) * fnp.sin(x))
    lowered = f.lower(fnp.ones(3))
    text = lowered.as_text()
    assert "sin" in text and "add" not in text              # x*1 + 0 simplified away
    compiled = lowered.compile()
    assert_same(compiled(fnp.ones(3)), f(fnp.ones(3)))
    assert "def " in compiled.source
    with pytest.raises(TypeError, match="compiled for"):
        compiled(fnp.ones(4))
    monkeypatch.setenv("FUNGRAD_PRINT_CODE", "1")
    fungrad.jit(lambda x: fnp.cos(x))(fnp.ones(2))
    assert "_cos(" in capsys.readouterr().out


def test_compiled_omits_static_arguments():
    f = fungrad.jit(lambda x, n: x * n, static_argnums=1)
    compiled = f.lower(fnp.ones(2), 3).compile()
    assert_same(compiled(fnp.ones(2)), jax.jit(lambda x: x * 3)(jnp.ones(2)))


def test_log_compiles_explains_cache_misses(caplog):
    fungrad.config.update("log_compiles", True)
    try:
        f = fungrad.jit(lambda x, n: x * n, static_argnames="n")
        with caplog.at_level(logging.WARNING, logger="fungrad.jit"):
            f(fnp.ones(3), n=2)
            f(fnp.ones(3), n=2)
            f(fnp.ones(4), n=2)
            f(fnp.ones(4), n=5)
    finally:
        fungrad.config.update("log_compiles", False)
    msgs = [rec.getMessage() for rec in caplog.records if "Compiling" in rec.getMessage()]
    assert len(msgs) == 3
    assert "never seen" in msgs[0]
    assert "'x': f32[4] (before: f32[3])" in msgs[1]
    assert "static 'n' = 5 (before: 2)" in msgs[2]


# --------------------------------------------------------------------------- disable_jit, debug

def test_disable_jit_runs_op_by_op():
    f = Counter(lambda x: x + 1)
    jf = fungrad.jit(f)
    with fungrad.disable_jit():
        jf(fnp.ones(2))
        jf(fnp.ones(2))
    assert f.n == 2 and jf._cache_size() == 0
    fungrad.config.update("disable_jit", True)
    try:
        jf(fnp.ones(2))
    finally:
        fungrad.config.update("disable_jit", False)
    assert f.n == 3


def test_debug_print_runs_at_execution_time(capsys):
    @fungrad.jit
    def f(x):
        fungrad.debug.print("x={} n={n}", x, n=fnp.sum(x))
        return fnp.sum(x * x)
    x = fnp.arange(3.0)
    f(x)
    f(x + 1)
    assert capsys.readouterr().out == "x=[0. 1. 2.] n=3.0\nx=[1. 2. 3.] n=6.0\n"
    fungrad.vmap(f)(fnp.arange(4.0).reshape(2, 2))
    assert capsys.readouterr().out == "x=[0. 1.] n=1.0\nx=[2. 3.] n=5.0\n"
    g = fungrad.grad(f)(x)
    assert capsys.readouterr().out == "x=[0. 1. 2.] n=3.0\n"
    fungrad.jit(fungrad.grad(f))(x)
    assert capsys.readouterr().out == "x=[0. 1. 2.] n=3.0\n"
    assert_same(g, 2 * jnp.arange(3.0))


def test_debug_callback_receives_host_values_and_survives_dce():
    seen = []

    @fungrad.jit
    def f(x):
        y = x * 2
        fungrad.debug.callback(lambda v, tag: seen.append((tag, v.copy())), y, tag="y")
        return x
    f(fnp.ones(2))
    assert seen[0][0] == "y" and isinstance(seen[0][1], np.ndarray)
    np.testing.assert_array_equal(seen[0][1], [2.0, 2.0])


def test_python_side_effects_run_at_trace_time_only():
    calls = []

    @fungrad.jit
    def f(x):
        calls.append(1)
        return x
    f(fnp.ones(2))
    f(fnp.ones(2))
    assert calls == [1]


# --------------------------------------------------------------------------- composition with jax

def _loss_args():
    return (to_fg(PARAMS), to_fg(X), to_fg(Y)), (to_jax(PARAMS), to_jax(X), to_jax(Y))


COMPOSITIONS = {
    "jit(grad)": lambda api, f: api.jit(api.grad(f)),
    "grad(jit)": lambda api, f: api.grad(api.jit(f)),
    "jit(value_and_grad)": lambda api, f: api.jit(api.value_and_grad(f)),
    "value_and_grad(jit(jit))": lambda api, f: api.value_and_grad(api.jit(api.jit(f))),
    "jit(grad(jit))": lambda api, f: api.jit(api.grad(api.jit(f))),
    "jit(hessian)": lambda api, f: api.jit(api.hessian(
        lambda w2, p, x, y: f({**p, "w2": w2}, x, y))),
}


@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_composition_against_jax(name):
    fg_args, jx_args = _loss_args()
    make = COMPOSITIONS[name]
    if name == "jit(hessian)":
        fg_args = (to_fg(PARAMS["w2"]), *fg_args)
        jx_args = (to_jax(PARAMS["w2"]), *jx_args)
    assert_same(make(fungrad, mlp(fnp))(*fg_args), make(jax, mlp(jnp))(*jx_args), GRAD_TOL,
                check_weak=False)


def test_vmap_of_jit_and_jit_of_vmap_of_grad():
    f = lambda lib: lambda x, w: lib.sum(lib.tanh(x * w))
    xs, w = r(6, 3), r(3)
    assert_same(fungrad.vmap(fungrad.jit(f(fnp)), in_axes=(0, None))(*to_fg((xs, w))),
                jax.vmap(jax.jit(f(jnp)), in_axes=(0, None))(*to_jax((xs, w))))
    assert_same(fungrad.vmap(fungrad.jit(f(fnp)), in_axes=(1, None))(*to_fg((xs.T, w))),
                jax.vmap(jax.jit(f(jnp)), in_axes=(1, None))(*to_jax((xs.T, w))))
    per_example = lambda api, lib: api.jit(api.vmap(api.grad(f(lib), argnums=1), in_axes=(0, None)))
    assert_same(per_example(fungrad, fnp)(*to_fg((xs, w))), per_example(jax, jnp)(*to_jax((xs, w))),
                GRAD_TOL)


def test_jvp_and_linearize_of_jit():
    f = lambda lib: lambda x: lib.sin(x) * lib.cos(2 * x)
    x, t = r(5), r(5)
    assert_same(fungrad.jvp(fungrad.jit(f(fnp)), (to_fg(x),), (to_fg(t),)),
                jax.jvp(jax.jit(f(jnp)), (to_jax(x),), (to_jax(t),)), GRAD_TOL)
    y, f_jvp = fungrad.linearize(fungrad.jit(f(fnp)), to_fg(x))
    assert_same(f_jvp(to_fg(t)), jax.linearize(jax.jit(f(jnp)), to_jax(x))[1](to_jax(t)), GRAD_TOL)


def test_jit_closing_over_outer_tracers():
    def outer(lib, api):
        def g(x):
            return api.jit(lambda y: lib.sin(x * y))(2.0)
        return g
    x = r(3)
    xs = np.stack([x, x])
    assert_same(fungrad.vmap(fungrad.grad(lambda x: fnp.sum(outer(fnp, fungrad)(x))))(to_fg(xs)),
                jax.vmap(jax.grad(lambda x: jnp.sum(outer(jnp, jax)(x))))(to_jax(xs)), GRAD_TOL)


def test_jit_inside_scan_and_scan_inside_jit():
    step = lambda lib, api: api.jit(lambda c, x: (lib.tanh(c * x + 1.0), c * 2.0))

    def run(lib, api):
        return lambda c, xs: api.lax.scan(step(lib, api), c, xs)
    c, xs = r(3), r(7, 3)
    assert_same(run(fnp, fungrad)(*to_fg((c, xs))), run(jnp, jax)(*to_jax((c, xs))))
    assert_same(fungrad.jit(run(fnp, fungrad))(*to_fg((c, xs))),
                jax.jit(run(jnp, jax))(*to_jax((c, xs))))
    loss = lambda lib, api: api.grad(lambda c, xs: lib.sum(run(lib, api)(c, xs)[0]))
    assert_same(fungrad.jit(loss(fnp, fungrad))(*to_fg((c, xs))),
                jax.jit(loss(jnp, jax))(*to_jax((c, xs))), GRAD_TOL)


def test_make_jaxpr_shows_nested_jit_as_an_equation():
    inner = fungrad.jit(lambda x: x * 2)
    jaxpr = fungrad.make_jaxpr(lambda x: inner(x) + 1)(fnp.ones(2))
    assert [e.primitive.name for e in jaxpr.eqns] == ["jit", "add"]


# --------------------------------------------------------------------------- errors and leaks

def test_leaked_tracer_is_detected():
    leaked = []

    @fungrad.jit
    def f(x):
        leaked.append(x)
        return x
    f(fnp.ones(2))
    with pytest.raises(errors.UnexpectedTracerError):
        leaked[0] + 1
    with pytest.raises(errors.UnexpectedTracerError):
        fungrad.jit(lambda y: y * 2)(leaked[0])


def test_concretization_error_names_the_argument():
    @fungrad.jit
    def f(x, threshold):
        return x if threshold > 0 else -x
    with pytest.raises(errors.ConcretizationTypeError, match="argument 'threshold'"):
        f(fnp.ones(2), 1.0)
    with pytest.raises(errors.ConcretizationTypeError, match=r"argument 'p\['w'\]'"):
        fungrad.jit(lambda p: int(p["w"]))({"w": fnp.ones(())})


def test_jit_on_methods():
    class Model:
        scale = 3.0

        @functools.partial(fungrad.jit, static_argnums=0)
        def __call__(self, x):
            return x * self.scale

        def __hash__(self):
            return 0
    assert_same(Model()(fnp.ones(2)), jnp.ones(2) * 3.0)


def test_trace_eval_shape_and_lower_take_shape_dtype_structs():
    """``jit(f).trace / .eval_shape / .lower`` as jax's stages, with arrays or
    ``ShapeDtypeStruct``s; calling with a ``ShapeDtypeStruct`` is a clear error."""
    def make(lib):
        return lambda v, n: (v[:n] * 2, {"s": lib.sum(v)})
    x = np.ones(5, np.float32)
    jitted, ref = fungrad.jit(make(fnp), static_argnums=1), jax.jit(make(jnp), static_argnums=1)
    for arg in (x, fungrad.ShapeDtypeStruct((5,), np.float32)):
        info = jitted.eval_shape(arg, 2)
        want = ref.eval_shape(jax.ShapeDtypeStruct((5,), np.float32), 2)
        assert [(a.shape, a.dtype) for a in fungrad.tree.leaves(info)] \
            == [(a.shape, a.dtype) for a in jax.tree.leaves(want)]
        traced = jitted.trace(arg, 2)
        assert fungrad.tree.structure(traced.out_info) == fungrad.tree.structure(info)
        assert [v.aval.shape for v in traced.jaxpr.jaxpr.invars] == [(5,)]
        compiled = traced.lower().compile()
        np.testing.assert_array_equal(compiled(x)[0], np.full(2, 2, np.float32))
    with pytest.raises(TypeError, match="argument 'v' is a ShapeDtypeStruct.*holds no data"):
        jitted(fungrad.ShapeDtypeStruct((5,), np.float32), 2)
    np.testing.assert_array_equal(jitted(x, 2)[0], np.full(2, 2, np.float32))


def test_the_cache_keys_on_the_flags_a_trace_depends_on():
    """A function traced with 32-bit types is traced again with x64 on (and back), as
    jax's cache does; so are the promotion flags, which change what tracing raises."""
    arange = fungrad.jit(lambda: fnp.arange(3.0))
    ref = jax.jit(lambda: jnp.arange(3.0))
    assert arange().dtype == ref().dtype == np.float32
    with fungrad.enable_x64(), jax.enable_x64():
        assert arange().dtype == ref().dtype == np.float64
    assert arange().dtype == np.float32
    add = fungrad.jit(lambda x, y: x + y)
    x, y, matrix = fnp.ones(3, np.int32), fnp.ones(3, np.float32), fnp.ones((2, 3), np.float32)
    assert add(x, y).dtype == np.float32 and add(x, matrix).shape == (2, 3)  # both cached
    with fungrad.numpy_dtype_promotion("strict"):
        with pytest.raises(errors.TypePromotionError):
            add(x, y)
    with fungrad.numpy_rank_promotion("raise"):
        with pytest.raises(ValueError, match="rank"):
            add(x, matrix)


def test_a_jit_compiled_while_an_outer_function_is_traced_compiles_eagerly():
    # The inner jit compiles during the outer trace; the compiler's own arithmetic on the
    # body's literals (relu's 0.0, the sampler's constants) once became outer tracers.
    inner_relu, inner_normal = fungrad.jit(fungrad.nn.relu), fungrad.jit(fungrad.random.normal)
    assert fungrad.make_jaxpr(inner_relu)(1.0).eqns[0].primitive.name == "jit"
    key = fungrad.random.key(0)
    got = fungrad.jit(lambda k: inner_normal(k) + inner_normal(k))(key)
    want = jax.jit(lambda k: 2 * jax.random.normal(k))(jax.random.key(0))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
    assert_same(fungrad.jit(lambda x: inner_relu(x) * 2)(fnp.array([-1.0, 3.0])),
                jnp.array([0.0, 6.0]))
