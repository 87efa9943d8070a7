"""The everyday top-level API against jax: runtime helpers, typeof, enable_x64,
ensure_compile_time_eval, linear_transpose, custom_gradient, closure_convert and
pure_callback (values, derivatives, every vmap_method, under jit)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
from harness import GRAD_TOL, assert_same, compare, rand, to_fg, to_jax

RNG = np.random.default_rng(0)


def test_runtime_helpers_match_jax():
    x = fnp.ones((2, 3))
    assert fungrad.block_until_ready({"a": x})["a"] is x
    got = fungrad.device_get({"a": x, "n": 3})
    want = jax.device_get({"a": jnp.ones((2, 3)), "n": 3})
    assert type(got["a"]) is type(want["a"]) is np.ndarray and got["n"] == want["n"] == 3
    assert x.sharding.device_set == {x.device} and len(jnp.ones(2).sharding.device_set) == 1
    assert fungrad.default_backend() == jax.default_backend() == "cpu"
    assert fungrad.device_count() == fungrad.local_device_count() == len(fungrad.local_devices())
    assert "numpy" in fungrad.print_environment_info(return_string=True)
    fungrad.clear_caches()


@pytest.mark.parametrize("value", [1.0, 2, True, np.float32(1), np.ones((2, 3), np.int32)])
def test_typeof(value):
    a, b = fungrad.typeof(to_fg(value) if hasattr(value, "shape") else value), jax.typeof(value)
    assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type)


def test_enable_x64_context_managers():
    for lib in (fungrad, jax):
        assert not lib.enable_x64.value
        with lib.enable_x64(True):
            assert lib.enable_x64.value
            assert lib.numpy.ones(1).dtype == np.float64
        assert lib.numpy.ones(1).dtype == np.float32
    with fungrad.experimental.enable_x64():
        assert fnp.arange(3).dtype == np.int64
        with fungrad.experimental.disable_x64():
            assert fnp.arange(3).dtype == np.int32
    assert fnp.arange(3).dtype == np.int32


def test_ensure_compile_time_eval_gives_concrete_values_under_jit():
    def f(lib):
        def g(x):
            with lib.ensure_compile_time_eval():
                n = lib.numpy.sum(lib.numpy.arange(4))
                assert int(n) == 6  # concrete while tracing
                y = x * 2  # a traced value stays traced
            return y + n
        return g
    compare(fungrad.jit(f(fungrad)), jax.jit(f(jax)), np.float32(1.5))
    with fungrad.named_scope("block"):
        out = fungrad.named_call(lambda v: v + 1, name="inc")(1.0)
    assert float(out) == 2.0
    with pytest.raises(TypeError):
        with fungrad.named_scope(3):
            pass


LINEAR = [
    (lambda lib: (lambda x: lib.numpy.stack([x, 2 * x])), (3,)),
    (lambda lib: (lambda x, y: {"s": x @ y, "t": x.T}), (2, 3)),
    (lambda lib: (lambda x: lib.numpy.cumsum(x[::-1], axis=0)), (4, 2)),
]


@pytest.mark.parametrize("make,shape", LINEAR)
def test_linear_transpose(make, shape):
    args = (rand(RNG, shape),) if make(jnp).__code__.co_argcount == 1 else \
        (rand(RNG, shape), rand(RNG, shape[::-1]))
    if len(args) == 2:  # transpose with respect to x only: y is closed over
        y = args[1]
        fg_f, jx_f = (lambda x: make(fungrad)(x, to_fg(y))), (lambda x: make(jax)(x, to_jax(y)))
        args = args[:1]
    else:
        fg_f, jx_f = make(fungrad), make(jax)
    out = jax.eval_shape(jx_f, *args)
    ct = jax.tree.map(lambda o: rand(RNG, o.shape), out)
    assert_same(fungrad.linear_transpose(fg_f, *to_fg(args))(to_fg(ct)),
                jax.linear_transpose(jx_f, *to_jax(args))(to_jax(ct)))
    with pytest.raises(TypeError):
        fungrad.linear_transpose(fg_f, *to_fg(args))(to_fg(jax.tree.map(
            lambda o: np.zeros(o.shape, np.int32), out)))
    with pytest.raises(fungrad.errors.MissingRuleError):
        fungrad.linear_transpose(fnp.sin, 1.0)(1.0)


def test_custom_gradient():
    def make(lib):
        @lib.custom_gradient
        def f(x, y):
            s = lib.numpy.sin(x)
            return s * y, lambda g: (g * 10.0 * y, g * s)
        return f
    x, y = rand(RNG, (3,)), rand(RNG, (3,))
    fg, jx = make(fungrad), make(jax)
    compare(fg, jx, x, y)
    grad = lambda lib, f: lib.grad(lambda a, b: lib.numpy.sum(f(a, b)), argnums=(0, 1))  # noqa
    compare(grad(fungrad, fg), grad(jax, jx), x, y, table=GRAD_TOL)
    compare(fungrad.jit(grad(fungrad, fg)), grad(jax, jx), x, y, table=GRAD_TOL)
    compare(fungrad.vmap(grad(fungrad, fg)), jax.vmap(grad(jax, jx)), rand(RNG, (2, 3)),
            rand(RNG, (2, 3)), table=GRAD_TOL)


def test_closure_convert_hoists_perturbed_values_only():
    w, w0, idx = rand(RNG, (3,)), rand(RNG, (3,)), np.array([2, 0, 1], np.int32)

    def outer(lib, conv):
        def loss(w):
            f = lambda x: (x * w)[conv(idx)] * conv(w0)  # noqa: E731  (w traced, idx and w0 not)
            g, consts = lib.closure_convert(f, conv(np.ones(3, np.float32)))
            assert len(consts) == 1
            return lib.numpy.sum(g(conv(np.arange(3.0, dtype=np.float32)), *consts))
        return loss
    for lib, conv in ((fungrad, to_fg), (jax, to_jax)):
        g, consts = lib.closure_convert(lambda x: x * conv(w), conv(np.ones(3, np.float32)))
        assert consts == []  # concrete arrays stay closed over
    compare(fungrad.grad(outer(fungrad, to_fg)), jax.grad(outer(jax, to_jax)), w,
            table=GRAD_TOL)
    compare(fungrad.jit(fungrad.grad(outer(fungrad, to_fg))), jax.grad(outer(jax, to_jax)), w,
            table=GRAD_TOL)


def _cb(lib, method):
    def f(x, y):
        out = jax.ShapeDtypeStruct(np.broadcast_shapes(x.shape, y.shape), x.dtype)
        return lib.pure_callback(lambda a, b: np.sin(a) * b, out, x, y, vmap_method=method)
    return f


@pytest.mark.parametrize("method", ["sequential", "sequential_unrolled", "expand_dims",
                                    "broadcast_all", "legacy_vectorized"])
def test_pure_callback_vmap_methods(method):
    x, y = rand(RNG, (4, 3)), rand(RNG, (3,))
    compare(_cb(fungrad, method), _cb(jax, method), x, y)
    compare(fungrad.jit(_cb(fungrad, method)), jax.jit(_cb(jax, method)), x, y)
    compare(fungrad.vmap(_cb(fungrad, method), in_axes=(0, None)),
            jax.vmap(_cb(jax, method), in_axes=(0, None)), x, y)
    compare(fungrad.vmap(_cb(fungrad, method), in_axes=(1, 0)),
            jax.vmap(_cb(jax, method), in_axes=(1, 0)), x, rand(RNG, (3, 4)))


def test_pure_callback_errors():
    x = rand(RNG, (3,))
    with pytest.raises(NotImplementedError):
        fungrad.vmap(_cb(fungrad, None))(to_fg(x), to_fg(x))
    with pytest.raises(ValueError, match="do not support JVP"):
        fungrad.grad(lambda v: fnp.sum(_cb(fungrad, None)(v, v)))(to_fg(x))
    with pytest.raises(ValueError):
        fungrad.pure_callback(np.sin, jax.ShapeDtypeStruct((3,), np.float32), x, vmap_method="x")
    with pytest.raises(RuntimeError, match="declares"):
        fungrad.pure_callback(lambda v: v[:2], jax.ShapeDtypeStruct((3,), np.float32), x)
    calls = []
    f = fungrad.jit(lambda v: fungrad.pure_callback(
        lambda a: calls.append(1) or a, jax.ShapeDtypeStruct((3,), np.float32), v))
    f(x), f(x)
    assert len(calls) == 2  # runs on every call of the compiled function
