"""``fungrad.scipy.sparse.linalg`` (``jax.scipy.sparse.linalg``): Krylov solvers of
``A x = b`` that only need ``x -> A x``.

``cg`` (conjugate gradients, for Hermitian positive definite ``A``), ``bicgstab``
(biconjugate gradients stabilised, any ``A``) and ``gmres`` (restarted GMRES, any ``A``;
``solve_method="incremental"`` builds the QR factorisation of the Krylov basis with Givens
rotations and can stop inside a restart, ``"batched"`` solves the small least-squares
problem once per restart). They are JAX's algorithms, step for step, each iteration a
``lax.while_loop``, so they run under ``jit`` and ``vmap``. ``A`` and the preconditioner
``M`` are matrices or functions, ``b`` and ``x0`` pytrees of arrays.

Each solve goes through ``lax.custom_linear_solve``: derivatives come from the implicit
function theorem (another solve, with ``A``'s transpose), not from differentiating the
iterations, so they are as accurate as the solves converge, and the values ``A`` closes
over are differentiable too.

>>> import fungrad.numpy as jnp
>>> a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
>>> x, info = cg(a, jnp.array([1.0, 2.0]))
>>> x.round(5), info
(Array([0.09091, 0.63636], dtype=float32), None)
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable

import numpy as np

from fungrad import lax, tree
from fungrad import numpy as jnp
from fungrad._core.array import Array
from fungrad._core.namespace import public_dir
from fungrad.scipy import linalg as sp_linalg

__all__ = ["bicgstab", "cg", "gmres"]
__dir__ = public_dir(__all__)


# --------------------------------------------------------------------------- pytree vectors

def _vdot_real(x: Any, y: Any) -> Any:
    """``Re(x^H y)`` without the cross terms: the real number ``z^H M z`` is for Hermitian
    positive definite ``M``."""
    out = jnp.vdot(x.real, y.real)
    if jnp.iscomplexobj(x) or jnp.iscomplexobj(y):
        out = out + jnp.vdot(x.imag, y.imag)
    return out


def _vdot_real_tree(x: Any, y: Any) -> Any:
    return sum(tree.leaves(tree.map(_vdot_real, x, y)))


def _vdot_tree(x: Any, y: Any) -> Any:
    return sum(tree.leaves(tree.map(jnp.vdot, x, y)))


def _norm(x: Any) -> Any:
    leaves = tree.leaves(x)
    return jnp.sqrt(sum(_vdot_real(v, v) for v in leaves))


def _mul(scalar: Any, x: Any) -> Any:
    return tree.map(lambda v: scalar * v, x)


def _add(x: Any, y: Any) -> Any:
    return tree.map(operator.add, x, y)


def _sub(x: Any, y: Any) -> Any:
    return tree.map(operator.sub, x, y)


def _select(pred: Any, x: Any, y: Any) -> Any:
    return tree.map(lambda a, b: jnp.where(pred, a, b), x, y)


def _dtype(x: Any) -> Any:
    return jnp.result_type(*tree.leaves(x))


def _identity(x: Any) -> Any:
    return x


def _as_operator(a: Any, fname: str, argname: str) -> Callable[[Any], Any]:
    """A function ``x -> A x`` from a function, a square matrix or an object with ``@``."""
    if callable(a):
        return a
    if isinstance(a, (np.ndarray, Array)) or hasattr(a, "__matmul__"):
        shape = getattr(a, "shape", None)
        if shape is not None and (len(shape) != 2 or shape[0] != shape[1]):
            raise ValueError(f"{fname}: the linear operator {argname} must be a square matrix, "
                             f"but has shape {tuple(shape)}")
        if isinstance(a, (np.ndarray, Array)):
            a = jnp.asarray(a)
            return functools.partial(jnp.dot, a)
        return functools.partial(operator.matmul, a)
    raise TypeError(f"{fname}: the linear operator {argname} must be a function or a square "
                    f"matrix, got {type(a).__name__}")


def _prepare(fname: str, A: Any, b: Any, x0: Any, M: Any, check_shapes: bool = True
             ) -> tuple[Callable, Any, Any, Callable]:
    """Checked operators and arrays: ``x0`` defaults to zeros like ``b``, ``M`` to the
    identity; ``x0`` and ``b`` must have one tree structure (and leaf shapes)."""
    if not tree.leaves(b):
        raise ValueError(f"{fname}: b must hold at least one array")
    b = tree.map(jnp.asarray, b)
    x0 = tree.map(jnp.zeros_like, b) if x0 is None else tree.map(jnp.asarray, x0)
    if tree.structure(x0) != tree.structure(b):
        raise ValueError(f"{fname}: x0 and b must have matching tree structure: "
                         f"{tree.structure(x0)} vs {tree.structure(b)}")
    shapes = [[jnp.shape(v) for v in tree.leaves(t)] for t in (x0, b)]
    if check_shapes and shapes[0] != shapes[1]:
        raise ValueError(f"{fname}: arrays in x0 and b must have matching shapes: "
                         f"{shapes[0]} vs {shapes[1]}")
    M = _identity if M is None else _as_operator(M, fname, "M")
    return _as_operator(A, fname, "A"), b, x0, M


def _default_maxiter(b: Any, maxiter: int | None) -> int:
    return 10 * sum(int(np.size(v)) for v in tree.leaves(b)) if maxiter is None else maxiter


# --------------------------------------------------------------------------- CG and BiCGSTAB

def _cg_solve(A: Callable, b: Any, x0: Any, *, maxiter: int, tol: Any, atol: Any,
              M: Callable) -> Any:
    """Preconditioned conjugate gradients until ``|r| <= max(tol |b|, atol)`` (SciPy's
    non-legacy stopping rule)."""
    atol2 = jnp.maximum(jnp.square(tol) * _vdot_real_tree(b, b), jnp.square(atol))
    r0 = _sub(b, A(x0))
    p0 = z0 = M(r0)
    dtype = _dtype(p0)
    gamma0 = _vdot_real_tree(r0, z0).astype(dtype)

    def going(state):
        _, r, gamma, _, k = state
        rs = gamma.real if M is _identity else _vdot_real_tree(r, r)
        return (rs > atol2) & (k < maxiter)

    def step(state):
        x, r, gamma, p, k = state
        ap = A(p)
        alpha = gamma / _vdot_real_tree(p, ap).astype(dtype)
        x = _add(x, _mul(alpha, p))
        r = _sub(r, _mul(alpha, ap))
        z = M(r)
        gamma_new = _vdot_real_tree(r, z).astype(dtype)
        p = _add(z, _mul(gamma_new / gamma, p))
        return x, r, gamma_new, p, k + 1
    return lax.while_loop(going, step, (x0, r0, gamma0, p0, 0))[0]


def _bicgstab_solve(A: Callable, b: Any, x0: Any, *, maxiter: int, tol: Any, atol: Any,
                    M: Callable) -> Any:
    """Preconditioned BiCGSTAB; ``k`` turns negative on breakdown (-10: ``rho = 0``,
    -11: ``alpha`` or ``omega = 0``), which ends the loop."""
    atol2 = jnp.maximum(jnp.square(tol) * _vdot_real_tree(b, b), jnp.square(atol))
    r0 = _sub(b, A(x0))
    one = jnp.ones((), _dtype(b))

    def going(state):
        r, k = state[1], state[-1]
        return (_vdot_real_tree(r, r) > atol2) & (k < maxiter) & (k >= 0)

    def step(state):
        x, r, rhat, alpha, omega, rho, p, q, k = state
        rho_new = _vdot_tree(rhat, r)
        beta = rho_new / rho * alpha / omega
        p = _add(r, _mul(beta, _sub(p, _mul(omega, q))))
        phat = M(p)
        q = A(phat)
        alpha = rho_new / _vdot_tree(rhat, q)
        s = _sub(r, _mul(alpha, q))
        done_early = _vdot_real_tree(s, s) < atol2
        shat = M(s)
        t = A(shat)
        omega = _vdot_tree(t, s) / _vdot_tree(t, t)
        x = _select(done_early, _add(x, _mul(alpha, phat)),
                    _add(x, _add(_mul(alpha, phat), _mul(omega, shat))))
        r = _select(done_early, s, _sub(s, _mul(omega, t)))
        k = jnp.where((omega == 0) | (alpha == 0), -11, k + 1)
        k = jnp.where(rho_new == 0, -10, k)
        return x, r, rhat, alpha, omega, rho_new, p, q, k
    return lax.while_loop(going, step, (x0, r0, r0, one, one, one, r0, r0, 0))[0]


def _isolve(fname: str, solver: Callable, A: Any, b: Any, x0: Any, tol: Any, atol: Any,
            maxiter: int | None, M: Any, symmetric_if_real: bool) -> tuple[Any, None]:
    A, b, x0, M = _prepare(fname, A, b, x0, M)
    solve = functools.partial(solver, x0=x0, tol=tol, atol=atol,
                              maxiter=_default_maxiter(b, maxiter), M=M)
    # a real positive definite operator is symmetric: its transposed solve is the same
    symmetric = symmetric_if_real and not any(jnp.iscomplexobj(v) for v in tree.leaves(b))
    x = lax.custom_linear_solve(A, b, solve=solve, transpose_solve=solve, symmetric=symmetric)
    return x, None


def cg(A: Any, b: Any, x0: Any = None, *, tol: float = 1e-5, atol: float = 0.0,
       maxiter: int | None = None, M: Any = None) -> tuple[Any, None]:
    """Solve ``A x = b`` for Hermitian positive definite ``A`` by conjugate gradients
    (``jax.scipy.sparse.linalg.cg``).

    The iteration is SciPy's (``scipy.sparse.linalg.cg`` with an explicit ``atol``); ``A``
    is a function or a matrix. Derivatives solve another system with ``cg`` (implicit
    differentiation), so they are accurate when both solves converge.

    Args:
        A: a square matrix, an object with ``@``, or a function ``x -> A x`` returning
            ``x``'s structure and shapes.
        b: the right-hand side, an array or a pytree of arrays.
        x0: the starting guess, ``b``'s structure (default: zeros).
        tol: relative tolerance: stop when ``|b - A x| <= max(tol |b|, atol)``.
        atol: absolute tolerance.
        maxiter: the most iterations (default ``10 * size(b)``).
        M: a preconditioner approximating ``A^-1`` (matrix or function).

    Returns:
        ``(x, None)``: the solution, ``b``'s structure, and a placeholder for convergence
        information (as in JAX).

    Raises:
        ValueError: ``x0`` and ``b`` differ in structure or shapes; a matrix ``A`` or
            ``M`` is not square.
        TypeError: ``A`` or ``M`` is neither a function nor a matrix.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> double = lambda v: fungrad.tree.map(lambda u: 2.0 * u, v)
        >>> x, _ = cg(double, {"a": jnp.ones(2), "b": jnp.arange(3.0)})
        >>> x["a"], x["b"]
        (Array([0.5, 0.5], dtype=float32), Array([0. , 0.5, 1. ], dtype=float32))
    """
    return _isolve("cg", _cg_solve, A, b, x0, tol, atol, maxiter, M, True)


def bicgstab(A: Any, b: Any, x0: Any = None, *, tol: float = 1e-5, atol: float = 0.0,
             maxiter: int | None = None, M: Any = None) -> tuple[Any, None]:
    """Solve ``A x = b`` for a general ``A`` by biconjugate gradients stabilised
    (``jax.scipy.sparse.linalg.bicgstab``).

    SciPy's iteration, stopping when ``|b - A x| <= max(tol |b|, atol)`` or on breakdown.
    Derivatives solve the transposed system with ``bicgstab`` (implicit differentiation).

    Args:
        A: a square matrix, an object with ``@``, or a function ``x -> A x``.
        b: the right-hand side, an array or a pytree of arrays.
        x0: the starting guess, ``b``'s structure (default: zeros).
        tol: relative tolerance.
        atol: absolute tolerance.
        maxiter: the most iterations (default ``10 * size(b)``).
        M: a preconditioner approximating ``A^-1`` (matrix or function).

    Returns:
        ``(x, None)``, as ``cg``.

    Raises:
        ValueError: ``x0`` and ``b`` differ in structure or shapes; a matrix ``A`` or
            ``M`` is not square.
        TypeError: ``A`` or ``M`` is neither a function nor a matrix.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> x, _ = bicgstab(jnp.array([[2.0, 1.0], [0.0, 1.0]]), jnp.array([3.0, 1.0]))
        >>> x.round(5)
        Array([1., 1.], dtype=float32)
    """
    return _isolve("bicgstab", _bicgstab_solve, A, b, x0, tol, atol, maxiter, M, False)


# --------------------------------------------------------------------------- GMRES

def _safe_normalize(x: Any, thresh: Any = None) -> tuple[Any, Any]:
    """``(x / |x|, |x|)``, or zeros and 0 when ``|x| <= thresh`` (default: the dtype's
    machine epsilon)."""
    norm = _norm(x)
    dtype = _dtype(x)
    if thresh is None:
        thresh = jnp.finfo(norm.dtype).eps
    thresh = jnp.asarray(thresh).astype(dtype).real
    use = norm > thresh
    norm_cast = norm.astype(dtype)
    unit = tree.map(lambda v: jnp.where(use, v / norm_cast, 0.0), x)
    return unit, jnp.where(use, norm, 0.0)


def _project_on_columns(Q: Any, v: Any) -> Any:
    """``Q^H v`` for a pytree ``Q`` of ``v``'s leaves with an extra trailing column axis."""
    parts = tree.leaves(tree.map(
        lambda q, y: jnp.tensordot(y, q.conj(), axes=(tuple(range(y.ndim)),) * 2), Q, v))
    return functools.reduce(operator.add, parts)


def _gram_schmidt(Q: Any, x: Any, xnorm: Any, max_iterations: int = 2) -> tuple[Any, Any]:
    """Orthogonalise ``x`` against ``Q``'s (orthonormal) columns by classical Gram-Schmidt,
    repeated ("twice is enough") while the overlaps stay below ``|x| / sqrt 2``. Returns
    the orthogonalised vector and the overlaps."""
    q0 = tree.leaves(Q)[0]
    r = jnp.zeros(q0.shape[-1], dtype=q0.dtype)

    def one_pass(state):
        k, q, r, qnorm_scaled = state
        h = _project_on_columns(Q, q)
        q = _sub(q, tree.map(lambda X: jnp.dot(X, h), Q))
        qnorm_scaled = jnp.where(k < max_iterations - 1, _norm_only(q) / np.sqrt(2.0),
                                 qnorm_scaled)
        return k + 1, q, r + h, qnorm_scaled

    def again(state):
        k, _, r, qnorm_scaled = state
        return (k < max_iterations - 1) & (_safe_normalize(r)[1] < qnorm_scaled)
    state = one_pass((0, x, r, xnorm / np.sqrt(2.0)))
    _, q, r, _ = lax.while_loop(again, one_pass, state)
    return q, r


def _norm_only(x: Any) -> Any:
    return _safe_normalize(x)[1]


def _arnoldi_step(k: Any, A: Callable, M: Callable, V: Any, H: Any) -> tuple[Any, Any, Any]:
    """The ``k``-th Arnoldi step: ``M(A(V[:, k]))`` orthonormalised against ``V[:, :k+1]``
    into ``V[:, k+1]``, its overlaps into ``H[k, :]``; breakdown when it vanishes (an
    invariant subspace)."""
    dtype = _dtype(V)
    v = M(A(tree.map(lambda X: X[..., k], V)))
    _, v_norm0 = _safe_normalize(v)
    v, h = _gram_schmidt(V, v, v_norm0)
    unit_v, v_norm1 = _safe_normalize(v, thresh=jnp.finfo(dtype).eps * v_norm0)
    V = tree.map(lambda X, y: X.at[..., k + 1].set(y), V, unit_v)
    H = H.at[k, :].set(h.at[k + 1].set(v_norm1.astype(dtype)))
    return V, H, v_norm1 == 0.0


def _rotate(H: Any, i: Any, cs: Any, sn: Any) -> Any:
    x, y = H[i], H[i + 1]
    H = H.at[i].set(cs.conj() * x - sn.conj() * y)
    return H.at[i + 1].set(sn * x + cs * y)


def _givens(a: Any, b: Any) -> tuple[Any, Any]:
    """The rotation ``(cs, sn)`` that zeroes ``b`` against ``a``."""
    b_zero, a_lt_b = abs(b) == 0, abs(a) < abs(b)
    t = -jnp.where(a_lt_b, a, b) / jnp.where(a_lt_b, b, a)
    r = lax.rsqrt(1 + abs(t) ** 2).astype(t.dtype)
    cs = jnp.where(b_zero, 1, jnp.where(a_lt_b, r * t, r))
    sn = jnp.where(b_zero, 0, jnp.where(a_lt_b, r, r * t))
    return cs, sn


def _krylov_basis(unit_residual: Any, restart: int) -> Any:
    return tree.map(lambda v: jnp.pad(v[..., None], ((0, 0),) * v.ndim + ((0, restart),)),
                    unit_residual)


def _gmres_incremental(A: Callable, b: Any, x0: Any, unit_residual: Any, residual_norm: Any,
                       ptol: Any, restart: int, M: Callable) -> tuple[Any, Any, Any]:
    """One restart, QR-factorising the Hessenberg matrix with Givens rotations as the
    Krylov basis grows, so the residual is known at each step and the restart can end
    early once it is below ``ptol``."""
    V = _krylov_basis(unit_residual, restart)
    dtype = _dtype(b)
    R = jnp.eye(restart, restart + 1, dtype=dtype)  # not singular if it stops early
    givens = jnp.zeros((restart, 2), dtype=dtype)
    beta = jnp.zeros(restart + 1, dtype=dtype).at[0].set(residual_norm.astype(dtype))

    def going(state):
        k, err = state[0], state[1]
        return (k < restart) & (err > ptol)

    def step(state):
        k, _, V, R, beta, givens = state
        V, H, _ = _arnoldi_step(k, A, M, V, R)
        row = lax.fori_loop(0, k, lambda i, row: _rotate(row, i, *givens[i, :]), H[k, :])
        rotation = _givens(row[k], row[k + 1])
        givens = givens.at[k, :].set(jnp.stack(rotation))
        R = R.at[k, :].set(_rotate(row, k, *rotation))
        beta = _rotate(beta, k, *givens[k, :])
        return k + 1, abs(beta[k + 1]), V, R, beta, givens
    _, _, V, R, beta, _ = lax.while_loop(going, step,
                                         (0, residual_norm, V, R, beta, givens))
    y = sp_linalg.solve_triangular(R[:, :-1].T, beta[:-1])
    x = _add(x0, tree.map(lambda X: jnp.dot(X[..., :-1], y), V))
    unit_residual, residual_norm = _safe_normalize(M(_sub(b, A(x))))
    return x, unit_residual, residual_norm


def _gmres_batched(A: Callable, b: Any, x0: Any, unit_residual: Any, residual_norm: Any,
                   ptol: Any, restart: int, M: Callable) -> tuple[Any, Any, Any]:
    """One restart: the whole Arnoldi basis (unless it breaks down), then the small
    least-squares problem ``min |H^T y - beta e1|`` by its normal equations."""
    del ptol  # the basis is always built in full
    V = _krylov_basis(unit_residual, restart)
    dtype = _dtype(b)
    H = jnp.eye(restart, restart + 1, dtype=dtype)

    def going(state):
        return (state[3] < restart) & ~state[2]

    def step(state):
        V, H, _, k = state
        V, H, breakdown = _arnoldi_step(k, A, M, V, H)
        return V, H, breakdown, k + 1
    V, H, _, _ = lax.while_loop(going, step, (V, H, False, 0))
    beta = jnp.zeros(restart + 1, dtype=dtype).at[0].set(residual_norm.astype(dtype))
    a = H.T
    y = sp_linalg.solve(jnp.dot(a.T.conj(), a), jnp.dot(a.T.conj(), beta), assume_a="pos")
    x = _add(x0, tree.map(lambda X: jnp.dot(X[..., :-1], y), V))
    unit_residual, residual_norm = _safe_normalize(M(_sub(b, A(x))))
    return x, unit_residual, residual_norm


_GMRES_METHODS = {"incremental": _gmres_incremental, "batched": _gmres_batched}


def _gmres_solve(A: Callable, b: Any, x0: Any, atol: Any, ptol: Any, restart: int,
                 maxiter: int, M: Callable, restart_fn: Callable) -> Any:
    """Restart from the last projection until ``|M(b - A x)| <= atol`` or ``maxiter``
    restarts."""
    unit_residual, residual_norm = _safe_normalize(M(_sub(b, A(x0))))

    def going(state):
        return (state[1] < maxiter) & (state[3] > atol)

    def step(state):
        x, k, unit_residual, residual_norm = state
        x, unit_residual, residual_norm = restart_fn(A, b, x, unit_residual, residual_norm,
                                                     ptol, restart, M)
        return x, k + 1, unit_residual, residual_norm
    return lax.while_loop(going, step, (x0, 0, unit_residual, residual_norm))[0]


def gmres(A: Any, b: Any, x0: Any = None, *, tol: float = 1e-5, atol: float = 0.0,
          restart: int = 20, maxiter: int | None = None, M: Any = None,
          solve_method: str = "batched") -> tuple[Any, Any]:
    """Solve ``A x = b`` for a general ``A`` by restarted GMRES
    (``jax.scipy.sparse.linalg.gmres``).

    Each restart projects the solution onto a Krylov subspace of dimension ``restart``
    built from the current residual. Derivatives solve the transposed system with
    ``gmres`` (implicit differentiation).

    Args:
        A: a square matrix, an object with ``@``, or a function ``x -> A x``.
        b: the right-hand side, an array or a pytree of arrays.
        x0: the starting guess, ``b``'s structure (default: zeros).
        tol: relative tolerance: stop when ``|b - A x| <= max(tol |b|, atol)``.
        atol: absolute tolerance.
        restart: the Krylov subspace's dimension (at most ``b``'s size).
        maxiter: the most restarts (default ``10 * size(b)``).
        M: a preconditioner approximating ``A^-1`` (matrix or function).
        solve_method: ``"incremental"`` (Givens QR as the basis grows, early exit within
            a restart) or ``"batched"`` (one least-squares solve per restart).

    Returns:
        ``(x, info)``: the solution, ``b``'s structure, and ``info``, an int32 array that
        is -1 when ``x`` holds NaNs and 0 otherwise (as in JAX).

    Raises:
        ValueError: unknown ``solve_method``; ``x0`` and ``b`` differ in structure or
            shapes; a matrix ``A`` or ``M`` is not square.
        TypeError: ``A`` or ``M`` is neither a function nor a matrix.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> a = jnp.array([[3.0, 1.0], [-1.0, 2.0]])
        >>> x, info = gmres(a, jnp.array([4.0, 1.0]), solve_method="incremental")
        >>> x.round(5), int(info)
        (Array([1., 1.], dtype=float32), 0)
    """
    if solve_method not in _GMRES_METHODS:
        raise ValueError(f"gmres: invalid solve_method {solve_method!r}, must be either "
                         "'incremental' or 'batched'")
    A, b, x0, M = _prepare("gmres", A, b, x0, M)
    size = sum(int(np.size(v)) for v in tree.leaves(b))
    maxiter = _default_maxiter(b, maxiter)
    restart = min(restart, size)
    b_norm = _norm(b)
    atol = jnp.maximum(tol * b_norm, atol)
    ptol = _norm(M(b)) * jnp.minimum(1.0, atol / b_norm)
    restart_fn = _GMRES_METHODS[solve_method]

    def solve(A, b):
        return _gmres_solve(A, b, x0, atol, ptol, restart, maxiter, M, restart_fn)
    x = lax.custom_linear_solve(A, b, solve=solve, transpose_solve=solve)
    info = jnp.where(jnp.isnan(_norm(x)), -1, 0)
    return x, info
