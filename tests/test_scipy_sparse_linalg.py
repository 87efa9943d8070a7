"""``fungrad.scipy.sparse.linalg`` (``cg``, ``bicgstab``, ``gmres`` with both solve methods)
against ``jax.scipy.sparse.linalg`` on the same inputs: values, shapes and dtypes (eager
and under ``fungrad.jit``), matrices and functions as operators, preconditioners, starting
guesses, pytree right-hand sides, float64, gradients through ``custom_linear_solve``
(against jax and finite differences), ``vmap``, and the errors.

jax's references run under ``harness.quick_jit``, one quick compilation per case."""
from __future__ import annotations

import jax
import jax.numpy as jjnp
import jax.scipy.sparse.linalg as jsl
import numpy as np
import pytest
from harness import GRAD_TOL, assert_same, compare, quick_jit, to_fg, to_jax, x64

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.sparse.linalg as fsl
from fungrad.test_util import check_grads

N = 6
SOLVERS = {
    "cg": ("cg", {}),
    "bicgstab": ("bicgstab", {}),
    "gmres_incremental": ("gmres", {"solve_method": "incremental"}),
    "gmres_batched": ("gmres", {"solve_method": "batched"}),
    "gmres_restart2": ("gmres", {"solve_method": "incremental", "restart": 2}),
    "gmres_batched_restart2": ("gmres", {"solve_method": "batched", "restart": 2}),
}


def _matrix(name: str, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """Symmetric positive definite for cg, nonsymmetric but well conditioned otherwise."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(N, N))
    a = q @ q.T + N * np.eye(N) if name == "cg" else q + 2 * N ** 0.5 * np.eye(N)
    return a.astype(dtype)


def _rhs(dtype=np.float32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=N).astype(dtype)


def solver(lib: str, case: str, **extra):
    fn, kw = SOLVERS[case]
    return getattr(fsl if lib == "fg" else jsl, fn), {**kw, **extra}


def solve_x(lib: str, case: str, **extra):
    """``(A, b) -> x`` with ``A`` a matrix."""
    fn, kw = solver(lib, case, **extra)
    return lambda a, b: fn(a, b, **kw)[0]


@pytest.mark.parametrize("case", SOLVERS)
def test_values_match_jax(case):
    a, b = _matrix(case), _rhs()
    ref = quick_jit(solve_x("jax", case))(*to_jax((a, b)))
    compare(solve_x("fg", case), None, a, b, ref_out=ref)


@pytest.mark.parametrize("case", ["cg", "bicgstab", "gmres_incremental", "gmres_batched"])
def test_float64_values_match_jax(case):
    with x64():
        a, b = _matrix(case, np.float64), _rhs(np.float64)
        ref = quick_jit(solve_x("jax", case, tol=1e-12))(*to_jax((a, b)))
        got = solve_x("fg", case, tol=1e-12)(*to_fg((a, b)))
        assert_same(got, ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(a @ np.asarray(got), b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case", ["cg", "bicgstab", "gmres_incremental", "gmres_batched"])
def test_info_matches_jax(case):
    fn, kw = solver("fg", case)
    jfn, _ = solver("jax", case)
    a, b = _matrix(case), _rhs()
    _, info = fn(jnp.asarray(a), jnp.asarray(b), **kw)
    ref_info = quick_jit(lambda a, b: jfn(a, b, **kw)[1])(*to_jax((a, b)))
    if ref_info is None:
        assert info is None
    else:
        assert_same(info, ref_info)


# one combination of options per solver (each case compiles a jax reference)
OPTIONS = {"cg": (True, {"atol": 1e-4}), "bicgstab": (False, {"maxiter": 2}),
           "gmres_incremental": (False, {"tol": 1e-3}),
           "gmres_batched": (True, {"maxiter": 1, "restart": 3})}


@pytest.mark.parametrize("case", OPTIONS)
def test_function_operator_preconditioner_x0_and_options(case):
    """``A`` as a function, a Jacobi preconditioner ``M`` as a function or as a matrix, a
    starting guess, and ``atol``, ``tol``, or a ``maxiter`` that stops early."""
    a, b = _matrix(case), _rhs()
    x0 = np.full(N, 0.1, np.float32)
    m = np.diag(1.0 / np.diag(a)).astype(np.float32)
    m_as_fn, kw = OPTIONS[case]

    def run(lib):
        np_ = jnp if lib == "fg" else jjnp
        fn, base = solver(lib, case, **kw)

        def f(a, b, x0, m):
            precond = (lambda v: np_.diag(m) * v) if m_as_fn else m
            return fn(lambda v: a @ v, b, x0, M=precond, **base)[0]
        return f
    ref = quick_jit(run("jax"))(*to_jax((a, b, x0, m)))
    compare(run("fg"), None, a, b, x0, m, ref_out=ref)


@pytest.mark.parametrize("case", ["cg", "bicgstab", "gmres_incremental", "gmres_batched"])
def test_pytree_rhs(case):
    """``b`` and ``x0`` as dicts; the operator acts on the concatenation of the leaves."""
    a = _matrix(case)
    b = {"u": _rhs()[:2], "w": _rhs()[2:].reshape(2, 2)}

    def run(lib):
        np_ = jnp if lib == "fg" else jjnp
        fn, kw = solver(lib, case)

        def matvec(v):
            y = a @ np_.concatenate([v["u"], v["w"].ravel()])
            return {"u": y[:2], "w": y[2:].reshape(2, 2)}
        return lambda b: fn(matvec, b, **kw)[0]
    ref = quick_jit(run("jax"))(to_jax(b))
    out = run("fg")(to_fg(b))
    assert_same(out, ref)
    assert_same(fungrad.jit(run("fg"))(to_fg(b)), ref)


def _loss(lib: str, case: str):
    np_ = jnp if lib == "fg" else jjnp
    solve = solve_x(lib, case, tol=1e-6)
    return lambda a, b: np_.sum(solve(a, b) * np_.arange(1.0, N + 1.0))


@pytest.mark.parametrize("case", ["cg", "bicgstab", "gmres_incremental", "gmres_batched"])
def test_grad_matches_jax(case):
    """Implicit differentiation: with respect to the matrix and the right-hand side."""
    a, b = _matrix(case), _rhs()
    ref = quick_jit(jax.grad(_loss("jax", case), (0, 1)))(*to_jax((a, b)))
    got = fungrad.grad(_loss("fg", case), (0, 1))(*to_fg((a, b)))
    assert_same(got, ref, GRAD_TOL, check_weak=False)
    assert_same(fungrad.jit(fungrad.grad(_loss("fg", case), (0, 1)))(*to_fg((a, b))), ref,
                GRAD_TOL, check_weak=False)


def test_grad_through_function_operator_closure():
    """A function ``A`` closing over a parameter: its gradient flows through matvec."""
    b = _rhs()

    def loss(lib):
        np_ = jnp if lib == "fg" else jjnp
        fn, _ = solver(lib, "bicgstab")
        return lambda s, b: np_.sum(fn(lambda v: s * v + 0.1 * np_.roll(v, 1), b)[0] ** 2)
    ref = quick_jit(jax.grad(loss("jax"), (0, 1)))(*to_jax((np.float32(2.0), b)))
    got = fungrad.grad(loss("fg"), (0, 1))(*to_fg((np.float32(2.0), b)))
    assert_same(got, ref, GRAD_TOL, check_weak=False)


@pytest.mark.parametrize("case", ["cg", "gmres_batched"])
def test_grads_against_finite_differences(case):
    with x64():
        a, b = to_fg((_matrix(case, np.float64), _rhs(np.float64)))
        loss = lambda a, b: jnp.sum(solve_x("fg", case, tol=1e-13)(a, b) ** 2)  # noqa: E731
        check_grads(loss, (a, b), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", ["cg", "bicgstab", "gmres_incremental", "gmres_batched"])
def test_vmap_matches_jax(case):
    a, b = _matrix(case), _rhs()
    bs = np.stack([b, -2 * b, b[::-1]])
    as_ = np.stack([a, a + np.eye(N, dtype=np.float32)])
    ref_b = quick_jit(jax.vmap(solve_x("jax", case), (None, 0)))(*to_jax((a, bs)))
    assert_same(fungrad.vmap(solve_x("fg", case), (None, 0))(*to_fg((a, bs))), ref_b)
    if case.startswith("gmres"):  # the batched matrix path is the same; keep the file fast
        return
    ref_a = quick_jit(jax.vmap(solve_x("jax", case), (0, None), 1))(*to_jax((as_, b)))
    assert_same(fungrad.vmap(solve_x("fg", case), (0, None), 1)(*to_fg((as_, b))), ref_a)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("fn", ["cg", "bicgstab", "gmres"])
def test_bad_inputs_raise(fn):
    solve = getattr(fsl, fn)
    a, b = jnp.asarray(_matrix("cg")), jnp.asarray(_rhs())
    with pytest.raises(ValueError, match=f"{fn}: x0 and b must have matching tree structure"):
        solve(a, b, x0=(b,))
    with pytest.raises(ValueError, match=f"{fn}: arrays in x0 and b must have matching shapes"):
        solve(a, b, x0=b[:3])
    with pytest.raises(ValueError, match=f"{fn}: the linear operator A must be a square matrix"):
        solve(a[:3], b)
    with pytest.raises(ValueError, match=f"{fn}: the linear operator M must be a square matrix"):
        solve(a, b, M=jnp.ones(N))
    with pytest.raises(TypeError, match=f"{fn}: the linear operator A must be a function"):
        solve("A", b)


def test_unknown_solve_method_raises():
    a, b = jnp.asarray(_matrix("gmres")), jnp.asarray(_rhs())
    with pytest.raises(ValueError, match="gmres: invalid solve_method 'qr'"):
        fsl.gmres(a, b, solve_method="qr")


@pytest.mark.parametrize("case", ["cg", "bicgstab", "gmres_incremental", "gmres_batched"])
def test_complex_values_match_jax(case):
    """Hermitian positive definite for cg; the real-part dot products and the complex
    Givens rotations."""
    rng = np.random.default_rng(2)
    q = rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))
    a = (q @ q.conj().T + N * np.eye(N)).astype(np.complex64)
    b = (rng.normal(size=N) + 1j * rng.normal(size=N)).astype(np.complex64)
    ref = quick_jit(solve_x("jax", case))(*to_jax((a, b)))
    assert_same(solve_x("fg", case)(*to_fg((a, b))), ref, rtol=1e-5, atol=1e-5)
