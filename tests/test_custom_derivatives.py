"""custom_jvp, custom_vjp and stop_gradient against jax (same rules, same inputs), under
every transformation; check_grads itself (it must catch a wrong rule)."""
import functools

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import fungrad
import fungrad.custom_derivatives
import fungrad.numpy as fnp
from fungrad.test_util import check_grads
from harness import GRAD_TOL, assert_same, to_fg, to_jax

RNG = np.random.default_rng(0)
X = RNG.uniform(-1, 1, (3,)).astype(np.float32)
Y = RNG.uniform(-1, 1, (3,)).astype(np.float32)


# --------------------------------------------------------------------------- definitions
# The same custom rules written for both libraries. The rules differ from the true
# derivative (factor 3 / 2), so a test only passes if the custom rule is used.

def make_jvp_fn(lib, custom_jvp):
    @custom_jvp
    def f(x, y):
        return lib.sin(x) * y

    @f.defjvp
    def f_jvp(primals, tangents):
        x, y = primals
        tx, ty = tangents
        return f(x, y), lib.cos(x) * tx * y + 3.0 * lib.sin(x) * ty
    return f


def make_vjp_fn(lib, custom_vjp):
    @custom_vjp
    def g(x, y):
        return lib.sin(x) * y

    def fwd(x, y):
        return g(x, y), (lib.cos(x), lib.sin(x), y)

    def bwd(res, ct):
        cos_x, sin_x, y = res
        return 2.0 * ct * cos_x * y, ct * sin_x
    g.defvjp(fwd, bwd)
    return g


F_FG, F_JX = make_jvp_fn(fnp, fungrad.custom_jvp), make_jvp_fn(jnp, jax.custom_jvp)
G_FG, G_JX = make_vjp_fn(fnp, fungrad.custom_vjp), make_vjp_fn(jnp, jax.custom_vjp)


def sum_of(f, lib):
    return lambda x, y: lib.sum(f(x, y))


# transformation name -> (fungrad version, jax version) of a function of (x, y)
TRANSFORMS = {
    "value": (lambda f, lib, api: f),
    "grad": (lambda f, lib, api: api.grad(sum_of(f, lib), argnums=(0, 1))),
    "grad_grad": (lambda f, lib, api: api.grad(
        lambda x, y: lib.sum(api.grad(sum_of(f, lib))(x, y)), argnums=(0, 1))),
    "vmap_grad": (lambda f, lib, api: api.vmap(api.grad(lambda x, y: f(x, y), argnums=(0, 1)))),
    "grad_vmap": (lambda f, lib, api: api.grad(lambda x, y: lib.sum(api.vmap(f)(x, y)), (0, 1))),
    "vmap_unbatched_arg": (lambda f, lib, api: api.grad(
        lambda x, y: lib.sum(api.vmap(f, in_axes=(0, None))(x, y[0])), (0, 1))),
    "jacrev": (lambda f, lib, api: api.jacrev(f, argnums=(0, 1))),
    "vjp": (lambda f, lib, api: lambda x, y: api.vjp(f, x, y)[1](x + 1.0)),
}
JVP_ONLY = {  # forward mode: a custom_vjp function refuses these (as in jax)
    "hessian": (lambda f, lib, api: api.hessian(sum_of(f, lib))),
    "jvp": (lambda f, lib, api: lambda x, y: api.jvp(f, (x, y), (y, x))),
    "jvp_one_zero_tangent": (lambda f, lib, api: lambda x, y: api.jvp(lambda a: f(a, y), (x,),
                                                                      (y,))),
    "jacfwd": (lambda f, lib, api: api.jacfwd(f, argnums=(0, 1))),
    "jvp_of_grad": (lambda f, lib, api: lambda x, y: api.jvp(api.grad(sum_of(f, lib)), (x, y),
                                                             (y, x))),
    "vmap_jvp": (lambda f, lib, api: api.vmap(lambda x, y: api.jvp(f, (x, y), (y, x)))),
}


@pytest.mark.parametrize("name", list(TRANSFORMS) + list(JVP_ONLY))
def test_custom_jvp_matches_jax(name):
    make = {**TRANSFORMS, **JVP_ONLY}[name]
    got = make(F_FG, fnp, fungrad)(*to_fg((X, Y)))
    want = make(F_JX, jnp, jax)(*to_jax((X, Y)))
    assert_same(got, want, GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_custom_vjp_matches_jax(name):
    make = TRANSFORMS[name]
    got = make(G_FG, fnp, fungrad)(*to_fg((X, Y)))
    want = make(G_JX, jnp, jax)(*to_jax((X, Y)))
    assert_same(got, want, GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("name", ["jvp", "jacfwd", "hessian"])
def test_custom_vjp_forward_mode_is_an_error(name):
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        JVP_ONLY[name](G_FG, fnp, fungrad)(*to_fg((X, Y)))


def test_eager_call_runs_the_function():
    assert_same(F_FG(*to_fg((X, Y))), F_JX(*to_jax((X, Y))))
    assert_same(G_FG(*to_fg((X, Y))), G_JX(*to_jax((X, Y))))


def test_staged_as_primitives_and_differentiated_from_the_jaxpr():
    for f, jf, prim in [(F_FG, F_JX, "custom_jvp_call"), (G_FG, G_JX, "custom_vjp_call")]:
        closed = fungrad.make_jaxpr(f)(*to_fg((X, Y)))
        assert [e.primitive.name for e in closed.eqns] == [prim]
        assert "sin" in str(closed)  # the traced primal function rides along
        from_jaxpr = lambda x, y: fnp.sum(closed(x, y)[0])  # noqa: E731
        got = fungrad.grad(from_jaxpr, argnums=(0, 1))(*to_fg((X, Y)))
        want = jax.grad(lambda x, y: jnp.sum(jf(x, y)), argnums=(0, 1))(*to_jax((X, Y)))
        assert_same(got, want, GRAD_TOL, check_weak=False)


def test_jit():
    jit = fungrad.jit
    for f, jf in [(F_FG, F_JX), (G_FG, G_JX)]:
        got = fungrad.grad(lambda x, y: fnp.sum(jit(f)(x, y)), (0, 1))(*to_fg((X, Y)))
        want = jax.grad(lambda x, y: jnp.sum(jf(x, y)), (0, 1))(*to_jax((X, Y)))
        assert_same(got, want, GRAD_TOL, check_weak=False)
        got = jit(fungrad.grad(lambda x, y: fnp.sum(f(x, y))))(*to_fg((X, Y)))
        assert_same(got, jax.grad(lambda x, y: jnp.sum(jf(x, y)))(*to_jax((X, Y))), GRAD_TOL)
        got = fungrad.vmap(jit(fungrad.grad(lambda x, y: f(x, y))))(*to_fg((X, Y)))
        assert_same(got, jax.vmap(jax.grad(lambda x, y: jf(x, y)))(*to_jax((X, Y))), GRAD_TOL)


# --------------------------------------------------------------------------- custom_jvp features

def test_defjvps_and_pytrees():
    def make(lib, custom_jvp):
        @custom_jvp
        def f(p):
            return {"s": lib.sin(p["a"]) * p["b"], "b": p["b"]}
        f.defjvps(lambda t, out, p: {"s": 2.0 * lib.cos(p["a"]) * t["a"] * p["b"]
                                          + lib.sin(p["a"]) * t["b"], "b": t["b"]})
        return f
    f, jf = make(fnp, fungrad.custom_jvp), make(jnp, jax.custom_jvp)
    p = {"a": X, "b": Y}
    assert_same(fungrad.jvp(f, (to_fg(p),), (to_fg(p),)), jax.jvp(jf, (to_jax(p),), (to_jax(p),)),
                GRAD_TOL, check_weak=False)
    loss = lambda f, lib: lambda p: lib.sum(f(p)["s"]) + lib.sum(f(p)["b"])  # noqa: E731
    assert_same(fungrad.grad(loss(f, fnp))(to_fg(p)), jax.grad(loss(jf, jnp))(to_jax(p)),
                GRAD_TOL, check_weak=False)


def _make_apply(lib, custom_jvp, custom_vjp):
    """``fn(x) ** power`` with ``fn`` and ``power`` static, as custom_jvp and custom_vjp."""
    def apply(fn, power, x):
        return fn(x) ** power

    apply_jvp = custom_jvp(apply, nondiff_argnums=(0, 1))
    apply_jvp.defjvp(lambda fn, power, primals, tangents:
                     (apply_jvp(fn, power, *primals), 10.0 * power * tangents[0]))
    apply_vjp = custom_vjp(apply, nondiff_argnums=(0, 1))
    apply_vjp.defvjp(lambda fn, power, x: (apply_vjp(fn, power, x), x),
                     lambda fn, power, x, ct: (fn(x) * ct * power,))
    return apply_jvp, apply_vjp


def test_nondiff_argnums():
    fg, jx = _make_apply(fnp, fungrad.custom_jvp, fungrad.custom_vjp), \
        _make_apply(jnp, jax.custom_jvp, jax.custom_vjp)
    for f, jf in zip(fg, jx):
        got = fungrad.grad(lambda x: fnp.sum(f(fnp.sin, 2, x)))(to_fg(X))
        want = jax.grad(lambda x: jnp.sum(jf(jnp.sin, 2, x)))(to_jax(X))
        assert_same(got, want, GRAD_TOL, check_weak=False)
        got = fungrad.vmap(fungrad.grad(lambda x: f(fnp.cos, 3, x)))(to_fg(X))
        want = jax.vmap(jax.grad(lambda x: jf(jnp.cos, 3, x)))(to_jax(X))
        assert_same(got, want, GRAD_TOL, check_weak=False)
        got = fungrad.grad(lambda x: fnp.sum(fungrad.vmap(lambda v: f(fnp.cos, 3, v))(x)))(to_fg(X))
        want = jax.grad(lambda x: jnp.sum(jax.vmap(lambda v: jf(jnp.cos, 3, v))(x)))(to_jax(X))
        assert_same(got, want, GRAD_TOL, check_weak=False)


def test_a_defaulted_nondiff_argument_takes_its_default_as_in_jax():
    def scaled(lib):
        @functools.partial(lib.custom_jvp, nondiff_argnums=(1,))
        def f(x, n=3):
            return x * n
        f.defjvp(lambda n, primals, tangents: (f(primals[0], n), 2.0 * n * tangents[0]))
        return f
    fg, jx = scaled(fungrad), scaled(jax)
    for call in (lambda f, x: f(x), lambda f, x: f(x, 5), lambda f, x: f(x, n=4)):
        assert_same(fungrad.grad(lambda x: call(fg, x))(2.0), jax.grad(lambda x: call(jx, x))(2.0))
        assert_same(call(fg, to_fg(X)), call(jx, to_jax(X)))


def test_custom_vjp_nondiff_tracer_is_an_error():
    _, f = _make_apply(fnp, fungrad.custom_jvp, fungrad.custom_vjp)
    with pytest.raises(fungrad.errors.UnexpectedTracerError, match="nondiff_argnums"):
        fungrad.grad(lambda p: fnp.sum(f(fnp.sin, p, to_fg(X))))(2.0)


def test_integer_argument_gets_float0_tangent_and_zeros_are_instantiated():
    seen = {}

    def make(lib, custom_jvp):
        @custom_jvp
        def scale(x, n):
            return x * n

        @scale.defjvp
        def scale_jvp(primals, tangents):
            x, n = primals
            tx, tn = tangents
            seen[lib.__name__] = (np.shape(tx), str(np.asarray(tn).dtype))
            return scale(x, n), tx * n
        return scale
    f, jf = make(fnp, fungrad.custom_jvp), make(jnp, jax.custom_jvp)
    n = np.int32(3)
    assert_same(fungrad.jvp(lambda x: f(x, n), (to_fg(X),), (to_fg(Y),)),
                jax.jvp(lambda x: jf(x, n), (to_jax(X),), (to_jax(Y),)), GRAD_TOL)
    assert seen["fungrad.numpy"] == seen["jax.numpy"] == ((3,), "[('float0', 'V')]")
    # The zero tangent of an unperturbed float argument reaches the rule as zeros.
    got = fungrad.jvp(lambda y: F_FG(to_fg(X), y), (to_fg(Y),), (to_fg(X),))
    want = jax.jvp(lambda y: F_JX(to_jax(X), y), (to_jax(Y),), (to_jax(X),))
    assert_same(got, want, GRAD_TOL, check_weak=False)
    # Integer outputs get float0 tangents, as in jax.
    assert_same(fungrad.vjp(lambda x: f(x, n), to_fg(X))[1](to_fg(Y)),
                jax.vjp(lambda x: jf(x, n), to_jax(X))[1](to_jax(Y)), GRAD_TOL)


def test_closure_over_outer_vmap_tracer():
    def outer(lib, api, custom_jvp, x):
        @custom_jvp
        def f(y):
            return x * y

        @f.defjvp
        def f_jvp(primals, tangents):
            return x * primals[0], 5.0 * x * tangents[0]
        return api.grad(f)(0.0)
    got = fungrad.vmap(lambda x: outer(fnp, fungrad, fungrad.custom_jvp, x))(to_fg(X))
    want = jax.vmap(lambda x: outer(jnp, jax, jax.custom_jvp, x))(to_jax(X))
    assert_same(got, want, GRAD_TOL, check_weak=False)


def test_closure_over_outer_grad_tracer_in_nested_grad():
    def outer(lib, api, custom_vjp, fwd_calls_f):
        def loss(w):
            @custom_vjp
            def f(y):
                return lib.sin(w * y)
            f.defvjp(lambda y: (f(y) if fwd_calls_f else lib.sin(w * y), y),
                     lambda y, ct: (3.0 * ct * w * lib.cos(w * y),))
            return api.grad(f)(0.5)
        return api.grad(loss)
    assert_same(outer(fnp, fungrad, fungrad.custom_vjp, False)(1.3),
                outer(jnp, jax, jax.custom_vjp, False)(1.3), GRAD_TOL, check_weak=False)
    # fwd calling f makes the outer grad differentiate f w.r.t. the closed-over w.
    with pytest.raises(fungrad.errors.UnexpectedTracerError):
        outer(fnp, fungrad, fungrad.custom_vjp, True)(1.3)


@pytest.mark.parametrize("kind", ["jvp", "vjp"])
def test_differentiating_a_closed_over_value_is_an_error(kind):
    def f(x):
        if kind == "jvp":
            @fungrad.custom_jvp
            def g(y):
                return x + y
            g.defjvp(lambda p, t: (g(p[0]), 2.0 * t[0]))
        else:
            @fungrad.custom_vjp
            def g(y):
                return x * y
            g.defvjp(lambda y: (g(y), y), lambda r, ct: (2.0 * ct,))
        return g(1.0)
    with pytest.raises(fungrad.errors.UnexpectedTracerError):
        fungrad.grad(f)(3.0)
    if kind == "jvp":
        with pytest.raises(fungrad.errors.UnexpectedTracerError):
            fungrad.jvp(f, (3.0,), (1.0,))


def test_rule_errors_match_jax():
    @fungrad.custom_jvp
    def m(x):
        return x
    with pytest.raises(AttributeError, match="No JVP defined for custom_jvp function m"):
        m(1.0)
    m.defjvp(lambda p, t: (p[0], (t[0], t[0])))
    with pytest.raises(TypeError, match="equal container"):
        fungrad.jvp(m, (1.0,), (1.0,))
    m.defjvp(lambda p, t: (p[0], fnp.ones(3)))
    with pytest.raises(TypeError, match="corresponding shapes and dtypes"):
        fungrad.jvp(m, (1.0,), (1.0,))
    m.defjvp(lambda p, t: p[0])
    with pytest.raises(TypeError, match="must produce a pair"):
        fungrad.jvp(m, (1.0,), (1.0,))

    @fungrad.custom_vjp
    def v(x, y):
        return x * y
    with pytest.raises(AttributeError, match="No VJP defined"):
        v(1.0, 2.0)
    v.defvjp(lambda x, y: (v(x, y), None), lambda r, ct: (ct,))
    with pytest.raises(TypeError, match="tuple of length equal"):
        fungrad.grad(v)(1.0, 2.0)
    v.defvjp(lambda x, y: (v(x, y), None), lambda r, ct: (fnp.ones(2), None))
    with pytest.raises(ValueError, match="cotangent of shape"):
        fungrad.grad(v)(1.0, 2.0)
    v.defvjp(lambda x, y: (v(x, y), None), lambda r, ct: (ct * 7.0, None))  # None: zero
    assert_same(fungrad.grad(v, (0, 1))(1.0, 2.0),
                (jnp.float32(7.0), jnp.float32(0.0)), check_weak=False)


def test_keyword_arguments_are_resolved():
    got = fungrad.grad(lambda x, y: fnp.sum(F_FG(x, y=y)))(*to_fg((X, Y)))
    want = jax.grad(lambda x, y: jnp.sum(F_JX(x, y=y)))(*to_jax((X, Y)))
    assert_same(got, want, GRAD_TOL, check_weak=False)


# --------------------------------------------------------------------------- stop_gradient

def test_stop_gradient():
    sg, jsg = fungrad.lax.stop_gradient, jax.lax.stop_gradient
    assert fungrad.stop_gradient is sg
    assert_same(sg(np.float32(3.0)), jsg(np.float32(3.0)))
    assert_same(sg(np.int32(3)), jsg(np.int32(3)))
    tree = {"a": X, "b": (Y, np.arange(3, dtype=np.int32))}
    assert_same(sg(to_fg(tree)), jsg(to_jax(tree)))
    f = lambda lib, s: lambda x: lib.sum(s(x) * x + s(lib.sin(x)) * x ** 2)  # noqa: E731
    assert_same(fungrad.grad(f(fnp, sg))(to_fg(X)), jax.grad(f(jnp, jsg))(to_jax(X)), GRAD_TOL)
    assert_same(fungrad.hessian(f(fnp, sg))(to_fg(X)), jax.hessian(f(jnp, jsg))(to_jax(X)),
                GRAD_TOL)
    assert_same(fungrad.vmap(fungrad.grad(f(fnp, sg)))(to_fg(np.stack([X, Y]))),
                jax.vmap(jax.grad(f(jnp, jsg)))(to_jax(np.stack([X, Y]))), GRAD_TOL)
    assert_same(fungrad.jvp(f(fnp, sg), (to_fg(X),), (to_fg(Y),)),
                jax.jvp(f(jnp, jsg), (to_jax(X),), (to_jax(Y),)), GRAD_TOL)
    assert "stop_gradient" in str(fungrad.make_jaxpr(sg)(to_fg(X)))


# --------------------------------------------------------------------------- check_grads

def _sin_with_rule(scale):
    @fungrad.custom_jvp
    def f(x):
        return fnp.sin(x)
    f.defjvp(lambda p, t: (f(p[0]), scale * fnp.cos(p[0]) * t[0]))
    return f


@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("lin",)])
def test_check_grads_fails_on_a_wrong_rule(modes):
    check_grads(_sin_with_rule(1.0), (X,), order=2, modes=modes)
    with pytest.raises(AssertionError):
        check_grads(_sin_with_rule(1.01), (X,), order=1, modes=modes)


def test_check_grads_second_order_catches_a_wrong_second_derivative():
    @fungrad.custom_jvp
    def f(x):
        return fnp.sin(x)
    # Right first derivative, but its derivative (via stop_gradient) is wrong.
    f.defjvp(lambda p, t: (f(p[0]), fungrad.stop_gradient(fnp.cos(p[0])) * t[0]))
    check_grads(f, (X,), order=1)
    with pytest.raises(AssertionError):
        check_grads(f, (X,), order=2, modes=("rev",))


def test_check_grads_on_pytrees_integers_and_custom_vjp():
    check_grads(lambda p, n: {"y": fnp.tanh(p["a"]) * p["b"] * n}, ({"a": X, "b": Y}, 3), order=2)
    right = make_vjp_fn(fnp, fungrad.custom_vjp)  # the rule scales d/dx by 2: wrong
    with pytest.raises(AssertionError):
        check_grads(right, (X, Y), order=1, modes=("rev",))
    check_grads(lambda x: fungrad.checkpoint(lambda v: fnp.sin(v) * fnp.exp(v))(x), (X,), order=2)
    check_grads(lambda x: x ** 3, (X.astype(np.float64),), order=2, eps=1e-3)


# --------------------------------------------------------------------------- call semantics
# Under differentiation the rule replaces the function: the function itself runs only
# where the rule calls it, on the rule's (concrete, under grad/jvp) primal values, so
# Python control flow on the inputs works. The number and order of the calls of the rule
# and of the function are compared with jax's, for each transformation.

def make_branchy(lib, custom_jvp, log):
    @custom_jvp
    def f(x):
        log.append("f")
        return lib.sin(x) if x > 0 else lib.cos(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        log.append("jvp")
        (x,), (t,) = primals, tangents
        return f(x), lib.cos(x) * t
    return f


CALL_CASES = {
    "grad": lambda api, f, x: api.grad(f)(x),
    "grad_grad": lambda api, f, x: api.grad(api.grad(f))(x),
    "jvp": lambda api, f, x: api.jvp(f, (x,), (x,)),
    "vjp": lambda api, f, x: api.vjp(f, x)[1](x),
    "linearize": lambda api, f, x: api.linearize(f, x)[1](x),
    "vmap_grad": lambda api, f, x: api.vmap(api.grad(f))(api.numpy.stack([x, -x])),
    "jit_grad": lambda api, f, x: api.jit(api.grad(f))(x),
    "grad_jit": lambda api, f, x: api.grad(api.jit(f))(x),
}


def _run_logged(api, lib, custom_jvp, case):
    log = []
    try:
        out = CALL_CASES[case](api, make_branchy(lib, custom_jvp, log), 0.7)
    except (jax.errors.TracerBoolConversionError,
            fungrad.errors.TracerBoolConversionError) as e:
        out = type(e).__name__
    return out, log


@pytest.mark.parametrize("case", list(CALL_CASES))
def test_python_control_flow_and_call_counts_match_jax(case):
    got, got_log = _run_logged(fungrad, fnp, fungrad.custom_jvp, case)
    want, want_log = _run_logged(jax, jnp, jax.custom_jvp, case)
    assert got_log == want_log
    if isinstance(want, str):  # vmap/jit of the branch on a traced value: an error in both
        assert got == want
    else:
        assert_same(got, want, GRAD_TOL, check_weak=False)


def make_symbolic(lib, custom_jvp, seen):
    @custom_jvp
    def f(x, y):
        return x * lib.sin(y)

    def f_jvp(primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        seen.append(tuple(type(t).__name__ == "SymbolicZero" for t in (tx, ty)))
        out = f(x, y)
        if type(tx).__name__ == "SymbolicZero":
            return out, x * lib.cos(y) * ty
        if type(ty).__name__ == "SymbolicZero":
            return out, tx * lib.sin(y)
        return out, tx * lib.sin(y) + x * lib.cos(y) * ty
    f.defjvp(f_jvp, symbolic_zeros=True)
    return f


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_symbolic_zeros_reach_the_rule(argnums):
    seen_fg, seen_jax = [], []
    got = fungrad.grad(make_symbolic(fnp, fungrad.custom_jvp, seen_fg), argnums)(0.4, 1.1)
    want = jax.grad(make_symbolic(jnp, jax.custom_jvp, seen_jax), argnums)(0.4, 1.1)
    assert_same(got, want, GRAD_TOL, check_weak=False)
    assert seen_fg == seen_jax
    seen_fg, seen_jax = [], []
    batch = (to_fg(X), to_fg(Y)), (to_jax(X), to_jax(Y))
    got = fungrad.vmap(fungrad.grad(make_symbolic(fnp, fungrad.custom_jvp, seen_fg), argnums))(
        *batch[0])
    want = jax.vmap(jax.grad(make_symbolic(jnp, jax.custom_jvp, seen_jax), argnums))(*batch[1])
    assert_same(got, want, GRAD_TOL, check_weak=False)
    assert seen_fg == seen_jax


def make_floor(lib, custom_jvp, symbolic_zero):
    @custom_jvp
    def f(x):
        return lib.floor(x)

    def f_jvp(primals, tangents):
        return f(*primals), symbolic_zero.from_primal_value(primals[0])
    f.defjvp(f_jvp, symbolic_zeros=True)
    return f


def test_symbolic_zero_output_tangent():
    f_fg = make_floor(fnp, fungrad.custom_jvp, fungrad.custom_derivatives.SymbolicZero)
    f_jax = make_floor(jnp, jax.custom_jvp, jax.custom_derivatives.SymbolicZero)
    assert_same(fungrad.grad(lambda x: f_fg(x) + x)(1.5), jax.grad(lambda x: f_jax(x) + x)(1.5),
                GRAD_TOL, check_weak=False)
    assert_same(fungrad.jit(fungrad.grad(lambda x: f_fg(x) * x))(1.5),
                jax.jit(jax.grad(lambda x: f_jax(x) * x))(1.5), GRAD_TOL, check_weak=False)
