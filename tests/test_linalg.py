"""fungrad.lax.linalg, fungrad.numpy.linalg and fungrad.scipy.linalg against jax.

One record per function: values, shapes, dtypes and weak types, JVP and VJP against jax,
vmap against jax.vmap (harness.compare_transforms), the same under fungrad.jit, and
derivatives against finite differences (check_grads). Decompositions are compared
through gauge-invariant quantities where LAPACK leaves a sign or phase free
(eigenvectors and singular vectors up to sign: their absolute values).
"""
import functools

import harness
import jax
import jax.numpy as jnp_ref
import jax.scipy.linalg as jsp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.linalg as fsp
from fungrad import lax
from fungrad.test_util import check_grads

compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)
ref_jit = functools.partial(jax.jit, compiler_options=harness.QUICK_COMPILE)
RNG = np.random.default_rng(11)
F32 = np.float32


def general(n, batch=()):
    """Well conditioned: random entries plus n on the diagonal."""
    return (RNG.uniform(-1, 1, batch + (n, n)) + n * np.eye(n)).astype(F32)


def spd(n, batch=()):
    a = RNG.uniform(-1, 1, batch + (n, n))
    return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(F32)


def rect(m, n):
    return RNG.uniform(-1, 1, (m, n)).astype(F32)


def nearly_singular(n):
    """Condition number about 1e3: one singular value 1e-3."""
    u, _, vt = np.linalg.svd(RNG.uniform(-1, 1, (n, n)))
    return (u @ np.diag([1.0] * (n - 1) + [1e-3]) @ vt).astype(F32)


def tri(n, lower):
    a = general(n)
    return np.tril(a) if lower else np.triu(a)


def absv(xs):
    """Vectors up to sign: absolute values."""
    return [abs(x) for x in xs]


# name: (fungrad function, jax function, argument makers, check_grads order or None)
RECORDS = {
    "lax.cholesky": (lax.linalg.cholesky, jax.lax.linalg.cholesky, [lambda: spd(4)], 1),
    "lax.triangular_solve_left_lower": (
        lambda a, b: lax.linalg.triangular_solve(a, b, left_side=True, lower=True),
        lambda a, b: jax.lax.linalg.triangular_solve(a, b, left_side=True, lower=True),
        [lambda: tri(4, True), lambda: rect(4, 3)], 1),
    "lax.triangular_solve_right_upper_trans": (
        lambda a, b: lax.linalg.triangular_solve(a, b, transpose_a=True, unit_diagonal=True),
        lambda a, b: jax.lax.linalg.triangular_solve(a, b, transpose_a=True,
                                                     unit_diagonal=True),
        [lambda: tri(6, False) / 6, lambda: rect(2, 6)], 1),
    "lax.lu": (lambda a: lax.linalg.lu(a)[0], lambda a: jax.lax.linalg.lu(a)[0],
               [lambda: general(4)], 1),
    "lax.lu_wide": (lambda a: lax.linalg.lu(a), lambda a: jax.lax.linalg.lu(a),
                    [lambda: rect(3, 5)], None),
    "lax.qr": (lambda a: lax.linalg.qr(a, full_matrices=False),
               lambda a: jax.lax.linalg.qr(a, full_matrices=False), [lambda: rect(5, 3)], 1),
    "lax.svd": (lambda a: absv(lax.linalg.svd(a, full_matrices=False)),
                lambda a: absv(jax.lax.linalg.svd(a, full_matrices=False)),
                [lambda: rect(3, 5)], 1),
    "lax.eigh": (lambda a: absv(lax.linalg.eigh(a)), lambda a: absv(jax.lax.linalg.eigh(a)),
                 [lambda: spd(4)], 1),
    "lax.eig_values": (
        lambda a: lax.linalg.eig(a, compute_left_eigenvectors=False,
                                 compute_right_eigenvectors=False)[0].real,
        lambda a: jax.lax.linalg.eig(a, compute_left_eigenvectors=False,
                                     compute_right_eigenvectors=False)[0].real,
        [lambda: spd(4)], None),
    "lax.tridiagonal_solve": (lax.linalg.tridiagonal_solve, jax.lax.linalg.tridiagonal_solve,
                              [lambda: np.r_[0, RNG.uniform(-1, 1, 4)].astype(F32),
                               lambda: RNG.uniform(3, 4, 5).astype(F32),
                               lambda: np.r_[RNG.uniform(-1, 1, 4), 0].astype(F32),
                               lambda: rect(5, 2)], 1),
    "solve": (jnp.linalg.solve, jnp_ref.linalg.solve, [lambda: general(4), lambda: rect(4, 2)], 1),
    "solve_vector": (jnp.linalg.solve, jnp_ref.linalg.solve,
                     [lambda: general(3), lambda: rect(1, 3)[0]], 1),
    "inv": (jnp.linalg.inv, jnp_ref.linalg.inv, [lambda: general(4)], 1),
    "det": (jnp.linalg.det, jnp_ref.linalg.det, [lambda: general(5) / 3], 1),
    "det_3x3": (jnp.linalg.det, jnp_ref.linalg.det, [lambda: general(3)], 1),
    "slogdet": (lambda a: tuple(jnp.linalg.slogdet(a)), lambda a: tuple(jnp_ref.linalg.slogdet(a)), [lambda: general(4) - 8 * np.eye(4, dtype=F32)], 1),
    "cholesky_upper": (lambda a: jnp.linalg.cholesky(a, upper=True),
                       lambda a: jnp_ref.linalg.cholesky(a, upper=True), [lambda: spd(3)], 1),
    "eigvalsh": (jnp.linalg.eigvalsh, jnp_ref.linalg.eigvalsh, [lambda: spd(4)], 1),
    "svdvals": (jnp.linalg.svdvals, jnp_ref.linalg.svdvals, [lambda: rect(4, 3)], 1),
    "svd_hermitian": (lambda a: absv(jnp.linalg.svd(a, hermitian=True)),
                      lambda a: absv(jnp_ref.linalg.svd(a, hermitian=True)),
                      [lambda: spd(3)], None),
    "qr_complete": (lambda a: tuple(jnp.linalg.qr(a, mode="complete")),
                    lambda a: tuple(jnp_ref.linalg.qr(a, mode="complete")), [lambda: general(3)], 1),
    "pinv": (jnp.linalg.pinv, jnp_ref.linalg.pinv, [lambda: rect(4, 3)], 1),
    "lstsq": (lambda a, b: jnp.linalg.lstsq(a, b)[0], lambda a, b: jnp_ref.linalg.lstsq(a, b)[0],
              [lambda: rect(5, 3), lambda: rect(5, 2)], 1),
    "matrix_power": (lambda a: jnp.linalg.matrix_power(a, 5),
                     lambda a: jnp_ref.linalg.matrix_power(a, 5), [lambda: general(3) / 3], 1),
    "matrix_power_neg": (lambda a: jnp.linalg.matrix_power(a, -2),
                         lambda a: jnp_ref.linalg.matrix_power(a, -2), [lambda: general(3)], 1),
    "cond": (jnp.linalg.cond, jnp_ref.linalg.cond, [lambda: general(3)], 1),
    "cond_fro": (lambda a: jnp.linalg.cond(a, "fro"), lambda a: jnp_ref.linalg.cond(a, "fro"),
                 [lambda: general(3)], 1),
    "norm_2": (lambda a: jnp.linalg.norm(a, 2), lambda a: jnp_ref.linalg.norm(a, 2),
               [lambda: rect(3, 4)], 1),
    "tensorsolve": (jnp.linalg.tensorsolve, jnp_ref.linalg.tensorsolve,
                    [lambda: general(6).reshape(2, 3, 6), lambda: rect(2, 3)], 1),
    "tensorinv": (lambda a: jnp.linalg.tensorinv(a, 1), lambda a: jnp_ref.linalg.tensorinv(a, 1),
                  [lambda: general(4).reshape(4, 2, 2)], 1),
    "multi_dot": (lambda a, b, c: jnp.linalg.multi_dot([a, b, c]),
                  lambda a, b, c: jnp_ref.linalg.multi_dot([a, b, c]),
                  [lambda: rect(3, 1)[:, 0], lambda: rect(3, 4), lambda: rect(4, 2)], 1),
    "scipy.cho_solve": (lambda a, b: fsp.cho_solve(fsp.cho_factor(a), b),
                        lambda a, b: jsp_ref.cho_solve(jsp_ref.cho_factor(a), b),
                        [lambda: spd(4), lambda: rect(4, 2)], 1),
    "scipy.solve_pos": (lambda a, b: fsp.solve(a, b, assume_a="pos"),
                        lambda a, b: jsp_ref.solve(a, b, assume_a="pos"),
                        [lambda: spd(4), lambda: rect(4, 2)], 1),
    "scipy.solve_triangular": (lambda a, b: fsp.solve_triangular(a, b, trans="C", lower=True),
                               lambda a, b: jsp_ref.solve_triangular(a, b, trans="C",
                                                                     lower=True),
                               [lambda: tri(4, True), lambda: rect(4, 1)[:, 0]], 1),
    "scipy.lu": (fsp.lu, jsp_ref.lu, [lambda: general(4)], 1),
    "scipy.lu_solve": (lambda a, b: fsp.lu_solve(fsp.lu_factor(a), b),
                       lambda a, b: jsp_ref.lu_solve(jsp_ref.lu_factor(a), b),
                       [lambda: general(4), lambda: rect(4, 2)], 1),
    "scipy.lu_solve_trans_vector": (lambda a, b: fsp.lu_solve(fsp.lu_factor(a), b, trans=1),
                                    lambda a, b: jsp_ref.lu_solve(jsp_ref.lu_factor(a), b,
                                                                  trans=1),
                                    [lambda: general(5), lambda: rect(1, 5)[0]], 1),
    "scipy.cholesky": (fsp.cholesky, jsp_ref.cholesky, [lambda: spd(3)], 1),
    "scipy.eigh_values": (lambda a: fsp.eigh(a, eigvals_only=True),
                          lambda a: jsp_ref.eigh(a, eigvals_only=True), [lambda: spd(3)], 1),
    "scipy.block_diag": (fsp.block_diag, jsp_ref.block_diag,
                         [lambda: rect(2, 2), lambda: rect(1, 3)], 1),
}

# Functions reading one triangle of a symmetric matrix: finite differences along
# symmetric directions.
ONE_TRIANGLE = {"scipy.cho_solve", "scipy.solve_pos", "scipy.cholesky"}


@pytest.mark.parametrize("name", list(RECORDS))
def test_record(name):
    """Values, dtypes, weak types, JVP, VJP and vmap against jax; jit; finite differences."""
    f, ref, makers, order = RECORDS[name]
    args = [m() for m in makers]
    compare_transforms(f, ref, args, RNG)
    if order:
        if name in ONE_TRIANGLE:  # the rule (as JAX's) assumes symmetric perturbations
            f = functools.partial(lambda g, a, *rest: g((a + a.T) / 2, *rest), f)
        check_grads(f, harness.to_fg(args), order, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", ["cholesky", "solve", "inv", "det", "slogdet", "eigh",
                                  "svd", "qr"])
def test_batched(name):
    """Leading batch axes and vmap over a middle axis, against jax.vmap."""
    f, ref = getattr(jnp.linalg, name), getattr(jnp_ref.linalg, name)
    a = spd(4, (3, 2))
    args = (a, RNG.uniform(-1, 1, (3, 2, 4, 2)).astype(F32)) if name == "solve" else (a,)
    table = harness.TOL
    if name in ("eigh", "svd"):  # vectors up to sign, to GRAD_TOL: near-equal singular
        # values of these random matrices make the vectors sensitive to rounding
        f, ref = (lambda g: lambda x: absv(g(x)))(f), (lambda g: lambda x: absv(g(x)))(ref)
        table = harness.GRAD_TOL
    out, vmapped = ref_jit(lambda *x: (ref(*x), jax.vmap(ref, in_axes=1)(*x)))(*harness.to_jax(args))
    harness.assert_same(f(*harness.to_fg(args)), out, table)
    harness.assert_same(fungrad.vmap(f, in_axes=1)(*harness.to_fg(args)), vmapped, table)


@pytest.mark.parametrize("flags", [{"left_side": s, "lower": lo, "transpose_a": t,
                                    "unit_diagonal": u}
                                   for s in (True, False) for lo in (True, False)
                                   for t in (True, False) for u in (True, False)], ids=str)
def test_triangular_solve_blocks(flags):
    """Matrices larger than the substitution block take the recursive path."""
    a = general(70) / 70
    b = rect(3, 70) if not flags["left_side"] else rect(70, 3)
    harness.assert_same(lax.linalg.triangular_solve(a, b, **flags),
                        ref_jit(functools.partial(jax.lax.linalg.triangular_solve, **flags))(a, b))


def test_lu_pivots_to_permutation():
    """Batched pivots of real factorizations (as lu_factor returns them) and a longer
    permutation than pivots, against jax, eager, jitted and vmapped."""
    pivots = np.asarray(jax.lax.linalg.lu(general(5, (2, 3))[..., :3])[1])  # [2, 3, 3]
    for size in (5, 7):
        f = functools.partial(lax.linalg.lu_pivots_to_permutation, permutation_size=size)
        ref = functools.partial(jax.lax.linalg.lu_pivots_to_permutation, permutation_size=size)
        harness.compare(f, ref_jit(ref), pivots)
        harness.assert_same(fungrad.vmap(f, in_axes=1)(pivots),
                            ref_jit(jax.vmap(ref, in_axes=1))(pivots))
    with pytest.raises(ValueError, match="permutation_size"):
        lax.linalg.lu_pivots_to_permutation(pivots, 2)


def test_nearly_singular():
    """Ill-conditioned inputs agree with jax to the accuracy the condition number allows."""
    a = nearly_singular(5)
    b = rect(5, 2)
    for f, ref in [(jnp.linalg.solve, jnp_ref.linalg.solve)]:
        x, xr = np.asarray(f(a, b)), np.asarray(ref_jit(ref)(a, b))
        np.testing.assert_allclose(x, xr, rtol=1e-5 * 1e3, atol=1e-6 * 1e3)
    for f, ref in [(jnp.linalg.det, jnp_ref.linalg.det), (jnp.linalg.slogdet, jnp_ref.linalg.slogdet),
                   (jnp.linalg.svdvals, jnp_ref.linalg.svdvals)]:
        harness.assert_same(f(a), ref_jit(ref)(a), atol=1e-6)


def test_failures_match_jax():
    """Not positive definite: NaN lower triangle (no exception); singular: det and its
    gradient finite; inv of a singular matrix is not finite."""
    bad = np.array([[[1., 2.], [2., 1.]], [[2., 0.], [0., 2.]]], F32)
    out, ref = np.asarray(jnp.linalg.cholesky(bad)), np.asarray(ref_jit(jnp_ref.linalg.cholesky)(bad))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_allclose(out[1], ref[1], rtol=1e-6)
    sing = np.array([[1., 2., 3., 4.], [2., 4., 6., 8.], [0., 1., 0., 1.], [1., 0., 1., 0.]], F32)
    harness.assert_same(fungrad.grad(jnp.linalg.det)(sing), ref_jit(jax.grad(jnp_ref.linalg.det))(sing))
    harness.assert_same(jnp.linalg.slogdet(sing), ref_jit(jnp_ref.linalg.slogdet)(sing))
    assert not np.isfinite(np.asarray(jnp.linalg.inv(sing[:2, :2]))).any()


def test_types():
    """Integer inputs promote as in jax; weak types follow jax; results are NamedTuples."""
    i = np.array([[2, 1], [1, 3]], np.int32)
    for name in ["inv", "det", "cholesky", "eigvalsh", "svdvals", "pinv"]:
        harness.compare_types(getattr(jnp.linalg, name), getattr(jnp_ref.linalg, name), i)
    weak = lax.full((2, 2), 2.0) + lax.full((2, 2), 1.0) * jnp.eye(2)
    weak_ref = jax.lax.full((2, 2), 2.0) + jax.lax.full((2, 2), 1.0) * jnp_ref.eye(2)
    for f, ref in [(lax.linalg.cholesky, jax.lax.linalg.cholesky), (jnp.linalg.det, jnp_ref.linalg.det),
                   (jnp.linalg.inv, jnp_ref.linalg.inv)]:
        assert f(weak).weak_type == jax.eval_shape(ref, weak_ref).weak_type
    w = jnp.linalg.eigh(spd(3))
    assert type(w).__name__ == "EighResult" and w.eigenvalues.shape == (3,)
    assert jnp.linalg.svd(rect(2, 3)).Vh.shape == (3, 3)


def test_errors():
    with pytest.raises(ValueError, match=r"inv: argument must have shape \[\.\.\., n, n\], got \(2, 3\)"):
        jnp.linalg.inv(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"cholesky: argument must have shape"):
        lax.linalg.cholesky(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="triangular_solve: with left_side=True"):
        lax.linalg.triangular_solve(jnp.eye(3), jnp.ones((2, 2)), left_side=True)
    with pytest.raises(NotImplementedError, match="enable_eigvec_derivs"):
        fungrad.jvp(lambda a: lax.linalg.eig(a)[1], (jnp.eye(2),), (jnp.eye(2),))
    with pytest.raises(ValueError, match="solve: expected assume_a"):
        fsp.solve(jnp.eye(2), jnp.ones(2), assume_a="banded")


def test_eig_vectors():
    """Right and left eigenvectors satisfy their equations with unit norm; eigenvector
    derivatives (opted in) match jax's under the same normalisation, forward mode."""
    a = general(4)
    w, vl, vr = (np.asarray(x) for x in lax.linalg.eig(a))
    np.testing.assert_allclose(a @ vr, vr * w, atol=1e-5)
    np.testing.assert_allclose(vl.conj().T @ a, w[:, None] * vl.conj().T, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vl, axis=0), 1, rtol=1e-5)
    t = rect(4, 4)
    out = fungrad.jvp(lambda x: lax.linalg.eig(x, compute_left_eigenvectors=False,
                                               enable_eigvec_derivs=True)[0], (a,), (t,))
    ref = ref_jit(lambda x, t: jax.jvp(lambda x: jax.lax.linalg.eig(
        x, compute_left_eigenvectors=False, enable_eigvec_derivs=True)[0], (x,), (t,)))(a, t)
    harness.assert_same(out, ref, harness.GRAD_TOL, check_weak=False)
