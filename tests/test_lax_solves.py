"""lax.custom_root and lax.custom_linear_solve against jax.lax: values, grad, jvp,
second derivatives, vmap (of the value and of the gradient, over the right-hand side
and over the operator), jit, aux outputs and bad arguments.

Where a test checks many transformations, jax's results come from one program compiled with
``QUICK_COMPILE`` (``quick``): eagerly, jax compiles every primitive and every loop for each
transformation, which takes seconds."""
from __future__ import annotations

import jax
import jax.lax as jlax
import jax.numpy as jjnp
import numpy as np
import pytest
from harness import QUICK_COMPILE, TOL

import fungrad
import fungrad.numpy as jnp
from fungrad import lax

R, A = TOL[np.dtype(np.float32)]
RNG = np.random.default_rng(0)
M = RNG.normal(size=(3, 3)).astype(np.float32)
SPD = (M @ M.T + 3 * np.eye(3)).astype(np.float32)
NONSYM = (M + 4 * np.eye(3)).astype(np.float32)
B = RNG.normal(size=3).astype(np.float32)


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


def close(ours, ref, scale=1):
    ours_l, ref_l = fungrad.tree.leaves(ours), jax.tree_util.tree_leaves(ref)
    assert len(ours_l) == len(ref_l)
    for u, v in zip(ours_l, ref_l):
        assert np.shape(u) == np.shape(v) and np.asarray(u).dtype == np.asarray(v).dtype
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=scale * R, atol=scale * A)


# --------------------------------------------------------------------------- custom_root

def newton_sqrt(L):
    def sqrt(a):
        newton = lambda f, x0: L.fori_loop(0, 20, lambda i, x: x - f(x) / (2 * x), x0)
        return L.custom_root(lambda x: x * x - a, 1.0, newton, lambda g, y: y / g(1.0))
    return sqrt


def vector_root(L, np_, jacfwd):
    """The root of ``tanh(x) + c * x - p`` (componentwise), by a fixed number of Newton
    steps in a while loop (no reverse-mode rule), with a dense tangent solve."""
    def root(p, c):
        f = lambda x: np_.tanh(x) + c * x - p

        def solve(f, x0):
            step = lambda s: (s[0] + 1, s[1] - f(s[1]) / (1 - np_.tanh(s[1]) ** 2 + c))
            return L.while_loop(lambda s: s[0] < 30, step, (0, x0))[1]

        def tangent_solve(g, y):
            return np_.linalg.solve(jacfwd(g)(y), y)
        return L.custom_root(f, np_.zeros_like(p), solve, tangent_solve)
    return root


def test_root_scalar_value_grad_jvp():
    f, jf = newton_sqrt(lax), newton_sqrt(jlax)
    close(f(2.0), jf(2.0))
    close(fungrad.grad(f)(2.0), jax.grad(jf)(2.0))
    close(fungrad.jvp(f, (2.0,), (0.5,)), jax.jvp(jf, (2.0,), (0.5,)))
    close(fungrad.grad(fungrad.grad(f))(2.0), jax.grad(jax.grad(jf))(2.0), scale=10)


def test_root_vmap_and_jit():
    f, jf = newton_sqrt(lax), newton_sqrt(jlax)
    xs = np.array([1.0, 4.0, 9.0, 0.25], np.float32)
    close(fungrad.vmap(f)(xs), jax.vmap(jf)(xs))
    close(fungrad.vmap(fungrad.grad(f))(xs), jax.vmap(jax.grad(jf))(xs))
    close(fungrad.jit(fungrad.grad(f))(3.0), jax.jit(jax.grad(jf))(3.0))
    close(fungrad.grad(fungrad.jit(f))(3.0), jax.grad(jax.jit(jf))(3.0))


def test_root_vector_implicit_gradients():
    f = vector_root(lax, jnp, fungrad.jacfwd)
    jf = vector_root(jlax, jjnp, jax.jacfwd)
    p, c = B, np.float32(0.5)
    loss = lambda root: lambda p, c: (root(p, c) ** 2).sum()
    ps = RNG.normal(size=(4, 3)).astype(np.float32)
    value, grads, jac, vmapped = quick(lambda p, c, ps: (
        jf(p, c), jax.grad(loss(jf), argnums=(0, 1))(p, c), jax.jacfwd(jf)(p, c),
        jax.vmap(jax.grad(loss(jf)), (0, None))(ps, c)))(p, c, ps)
    close(f(p, c), value)
    close(fungrad.grad(loss(f), argnums=(0, 1))(p, c), grads, scale=10)
    close(fungrad.jacfwd(f)(p, c), jac, scale=10)
    close(fungrad.vmap(fungrad.grad(loss(f)), (0, None))(ps, c), vmapped, scale=10)


def test_root_has_aux_and_pytree_guess():
    def make(L):
        def solve(f, x0):
            x = L.fori_loop(0, 20, lambda i, x: {"v": x["v"] - f(x)["v"] / (2 * x["v"])}, x0)
            return x, {"residual": f(x)["v"]}

        def root(a):
            return L.custom_root(lambda x: {"v": x["v"] ** 2 - a}, {"v": 1.0}, solve,
                                 lambda g, y: {"v": y["v"] / g({"v": 1.0})["v"]},
                                 has_aux=True)
        return root
    f, jf = make(lax), make(jlax)
    close(f(5.0), jf(5.0))
    close(fungrad.grad(lambda a: f(a)[0]["v"])(5.0), jax.grad(lambda a: jf(a)[0]["v"])(5.0))


def test_root_bad_trees():
    with pytest.raises(TypeError, match="f\\(\\) output pytree structure must match"):
        lax.custom_root(lambda x: (x, x), 1.0, lambda f, x: x, lambda g, y: y)
    with pytest.raises(TypeError, match="solve\\(\\) output pytree structure"):
        lax.custom_root(lambda x: x, 1.0, lambda f, x: (x, x), lambda g, y: y)
    with pytest.raises(ValueError, match="has_aux"):
        lax.custom_root(lambda x: x, 1.0, lambda f, x: x, lambda g, y: y, has_aux=True)


# --------------------------------------------------------------------------- custom_linear_solve

def linear(L, np_, a, symmetric=False, with_transpose=True):
    def f(b, scale):
        matvec = lambda x: (scale * a) @ x
        solve = lambda mv, r: np_.linalg.solve(scale * a, r)
        t_solve = lambda vm, r: np_.linalg.solve((scale * a).T, r)
        if symmetric:
            return L.custom_linear_solve(matvec, b, solve, symmetric=True)
        return L.custom_linear_solve(matvec, b, solve, t_solve if with_transpose else None)
    return f


@pytest.mark.parametrize("symmetric", [False, True])
def test_linear_solve_value_and_derivatives(symmetric):
    a = SPD if symmetric else NONSYM
    f, jf = linear(lax, jnp, a, symmetric), linear(jlax, jjnp, a, symmetric)
    s = np.float32(1.5)
    loss = lambda g: lambda b, s: (g(b, s) * np.arange(1.0, 4.0, dtype=np.float32)).sum()
    tangents = (B[::-1].copy(), np.float32(0.3))
    value, grads, jvp, hessian, jac = quick(lambda b, s, t: (
        jf(b, s), jax.grad(loss(jf), argnums=(0, 1))(b, s), jax.jvp(jf, (b, s), t),
        jax.hessian(loss(jf), argnums=1)(b, s), jax.jacfwd(jf)(b, s)))(B, s, tangents)
    close(f(B, s), value)
    close(fungrad.grad(loss(f), argnums=(0, 1))(B, s), grads)
    close(fungrad.jvp(f, (B, s), tangents), jvp)
    close(fungrad.hessian(loss(f), argnums=1)(B, s), hessian, scale=10)
    close(fungrad.jacfwd(f)(B, s), jac)  # unbatched operands under vmap


def test_linear_solve_vmap_over_rhs_and_operator():
    f, jf = linear(lax, jnp, NONSYM), linear(jlax, jjnp, NONSYM)
    bs = RNG.normal(size=(4, 3)).astype(np.float32)
    scales = np.array([0.5, 1.0, 2.0, 3.0], np.float32)
    loss = lambda g: lambda b, s: g(b, s).sum()
    over_rhs, over_operator, over_both, grads, grad_b = quick(lambda b, bs, scales: (
        jax.vmap(jf, (0, None))(bs, np.float32(1)), jax.vmap(jf, (None, 0))(b, scales),
        jax.vmap(jf)(bs, scales), jax.vmap(jax.grad(loss(jf), argnums=(0, 1)))(bs, scales),
        jax.vmap(jax.grad(loss(jf)))(bs, scales)))(B, bs, scales)
    close(fungrad.vmap(f, (0, None))(bs, np.float32(1)), over_rhs)
    close(fungrad.vmap(f, (None, 0))(B, scales), over_operator)
    close(fungrad.vmap(f)(bs, scales), over_both)
    close(fungrad.vmap(fungrad.grad(loss(f), argnums=(0, 1)))(bs, scales), grads)
    close(fungrad.jit(fungrad.vmap(fungrad.grad(loss(f))))(bs, scales), grad_b)


def test_linear_solve_iterative_solver_pytree_and_aux():
    # a Jacobi iteration in a while loop (no reverse-mode rule) on a dict right-hand side
    dd = SPD + 10 * np.eye(3, dtype=np.float32)  # diagonally dominant: Jacobi converges

    def make(L, np_):
        diag = np.diag(dd)

        def matvec(x):
            return {"u": dd @ x["u"]}

        def jacobi(mv, b):
            def step(s):
                k, x = s
                return k + 1, {"u": x["u"] + (b["u"] - mv(x)["u"]) / diag}
            k, x = L.while_loop(lambda s: s[0] < 200, step, (0, {"u": np_.zeros_like(b["u"])}))
            return x, k

        def f(b):
            return L.custom_linear_solve(matvec, b, jacobi, symmetric=True, has_aux=True)
        return f
    f, jf = make(lax, jnp), make(jlax, jjnp)
    close(f({"u": B}), jf({"u": B}))
    g = lambda h: lambda b: (h({"u": b})[0]["u"] ** 2).sum()
    close(fungrad.grad(g(f))(B), jax.grad(g(jf))(B))


def test_linear_solve_errors():
    f = linear(lax, jnp, NONSYM, with_transpose=False)
    close(f(B, np.float32(1)), np.linalg.solve(NONSYM, B).astype(np.float32))
    close(fungrad.jvp(lambda b: f(b, np.float32(1)), (B,), (B,))[1],
          np.linalg.solve(NONSYM, B).astype(np.float32))
    with pytest.raises(TypeError, match="transpose_solve required"):
        fungrad.grad(lambda b: f(b, np.float32(1)).sum())(B)
    with pytest.raises(ValueError, match="matvec\\(\\) output shapes must match b"):
        lax.custom_linear_solve(lambda x: x[:2], B, lambda mv, b: b)
    with pytest.raises(TypeError, match="solve\\(\\) output pytree structure must match b"):
        lax.custom_linear_solve(lambda x: x, B, lambda mv, b: (b, b))
