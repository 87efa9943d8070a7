"""fungrad.lax.linalg, fungrad.numpy.linalg and fungrad.scipy.linalg against jax.

One record per function: values, shapes, dtypes and weak types, JVP and VJP against jax,
vmap against jax.vmap (harness.compare_transforms), the same under fungrad.jit, and
derivatives against finite differences (check_grads). Decompositions are compared
through gauge-invariant quantities where LAPACK leaves a sign or phase free
(eigenvectors and singular vectors up to sign: their absolute values).
"""
import functools
import re
from types import SimpleNamespace as Namespace

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


def both(make):
    """``make(module)`` for fungrad's and jax's modules: several variants of a call in one
    record (one jax compilation instead of one per variant)."""
    return (make(Namespace(linalg=jnp.linalg, lu_factor=fsp.lu_factor,
                           lu_solve=fsp.lu_solve)),
            make(Namespace(linalg=jnp_ref.linalg, lu_factor=jsp_ref.lu_factor,
                           lu_solve=jsp_ref.lu_solve)))


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
    "solve_matrix_and_vector": (*both(lambda m: lambda a, b: (m.linalg.solve(a, b),
                                                               m.linalg.solve(a, b[:, 0]))),
                                [lambda: general(4), lambda: rect(4, 2)], 1),
    "inv": (jnp.linalg.inv, jnp_ref.linalg.inv, [lambda: general(4)], 1),
    "det_5x5_and_3x3": (*both(lambda m: lambda a, b: (m.linalg.det(a), m.linalg.det(b))),
                        [lambda: general(5) / 3, lambda: general(3)], 1),
    "slogdet": (lambda a: tuple(jnp.linalg.slogdet(a)),
                lambda a: tuple(jnp_ref.linalg.slogdet(a)),
                [lambda: general(4) - 8 * np.eye(4, dtype=F32)], 1),
    "cholesky_upper": (lambda a: jnp.linalg.cholesky(a, upper=True),
                       lambda a: jnp_ref.linalg.cholesky(a, upper=True), [lambda: spd(3)], 1),
    "eigvalsh": (jnp.linalg.eigvalsh, jnp_ref.linalg.eigvalsh, [lambda: spd(4)], 1),
    "svdvals": (jnp.linalg.svdvals, jnp_ref.linalg.svdvals, [lambda: rect(4, 3)], 1),
    "svd_hermitian": (lambda a: absv(jnp.linalg.svd(a, hermitian=True)),
                      lambda a: absv(jnp_ref.linalg.svd(a, hermitian=True)),
                      [lambda: spd(3)], None),
    "qr_complete": (lambda a: tuple(jnp.linalg.qr(a, mode="complete")),
                    lambda a: tuple(jnp_ref.linalg.qr(a, mode="complete")),
                    [lambda: general(3)], 1),
    "pinv": (jnp.linalg.pinv, jnp_ref.linalg.pinv, [lambda: rect(4, 3)], 1),
    "lstsq": (lambda a, b: jnp.linalg.lstsq(a, b)[0], lambda a, b: jnp_ref.linalg.lstsq(a, b)[0],
              [lambda: rect(5, 3), lambda: rect(5, 2)], 1),
    "matrix_power_5_and_-2": (*both(lambda m: lambda a: (m.linalg.matrix_power(a, 5),
                                                         m.linalg.matrix_power(a, -2))),
                              [lambda: general(3) / 3], 1),
    "cond_2_and_fro": (*both(lambda m: lambda a: (m.linalg.cond(a), m.linalg.cond(a, "fro"))),
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
    "scipy.lu_complex": (fsp.lu, jsp_ref.lu,  # its permutation matrix stays real
                         [lambda: (general(4) + 1j * general(4)).astype(np.complex64)], 1),
    "scipy.lu_solve": (*both(lambda m: lambda a, b: (
        m.lu_solve(m.lu_factor(a), b), m.lu_solve(m.lu_factor(a), b[:, 0], trans=1))),
        [lambda: general(4), lambda: rect(4, 2)], 1),
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
        f, ref = (lambda x, g=f: absv(g(x))), (lambda x, g=ref: absv(g(x)))
        table = harness.GRAD_TOL
    out, vmapped = ref_jit(lambda *x: (ref(*x), jax.vmap(ref, in_axes=1)(*x)))(
        *harness.to_jax(args))
    harness.assert_same(f(*harness.to_fg(args)), out, table)
    harness.assert_same(fungrad.vmap(f, in_axes=1)(*harness.to_fg(args)), vmapped, table)


TRIANGULAR_FLAGS = [{"left_side": s, "lower": lo, "transpose_a": t, "unit_diagonal": u}
                    for s in (True, False) for lo in (True, False)
                    for t in (True, False) for u in (True, False)]


def test_triangular_solve_blocks():
    """Matrices larger than the substitution block take the recursive path, with every
    combination of flags (jax's 16 results from one compilation)."""
    a, left, right = general(70) / 70, rect(70, 3), rect(3, 70)
    refs = ref_jit(lambda a, left, right: [
        jax.lax.linalg.triangular_solve(a, left if f["left_side"] else right, **f)
        for f in TRIANGULAR_FLAGS])(a, left, right)
    for flags, ref in zip(TRIANGULAR_FLAGS, refs):
        out = lax.linalg.triangular_solve(a, left if flags["left_side"] else right, **flags)
        try:
            harness.assert_same(out, ref)
        except AssertionError as e:
            raise AssertionError(f"triangular_solve with {flags}") from e


def test_lu_pivots_to_permutation():
    """Batched pivots of real factorizations (as lu_factor returns them) and a longer
    permutation than pivots, against jax, eager, jitted and vmapped."""
    pivots = np.asarray(jax.lax.linalg.lu(general(5, (2, 3))[..., :3])[1])  # [2, 3, 3]
    f = functools.partial(lax.linalg.lu_pivots_to_permutation, permutation_size=7)
    ref = functools.partial(jax.lax.linalg.lu_pivots_to_permutation, permutation_size=7)
    out, vmapped = ref_jit(lambda p: (ref(p), jax.vmap(ref, in_axes=1)(p)))(pivots)
    harness.compare(f, ref, pivots, ref_out=out)
    harness.assert_same(fungrad.vmap(f, in_axes=1)(pivots), vmapped)
    with pytest.raises(ValueError, match="permutation_size"):
        lax.linalg.lu_pivots_to_permutation(pivots, 2)


def test_nearly_singular():
    """Ill-conditioned inputs agree with jax to the accuracy the condition number allows."""
    a = nearly_singular(5)
    b = rect(5, 2)
    for f, ref in [(jnp.linalg.solve, jnp_ref.linalg.solve)]:
        x, xr = np.asarray(f(a, b)), np.asarray(ref_jit(ref)(a, b))
        np.testing.assert_allclose(x, xr, rtol=1e-5 * 1e3, atol=1e-6 * 1e3)
    for f, ref in [(jnp.linalg.det, jnp_ref.linalg.det),
                   (jnp.linalg.slogdet, jnp_ref.linalg.slogdet),
                   (jnp.linalg.svdvals, jnp_ref.linalg.svdvals)]:
        harness.assert_same(f(a), ref_jit(ref)(a), atol=1e-6)


def test_failures_match_jax():
    """Not positive definite: NaN lower triangle (no exception); singular: det and its
    gradient finite; inv of a singular matrix is not finite."""
    bad = np.array([[[1., 2.], [2., 1.]], [[2., 0.], [0., 2.]]], F32)
    out = np.asarray(jnp.linalg.cholesky(bad))
    ref = np.asarray(ref_jit(jnp_ref.linalg.cholesky)(bad))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_allclose(out[1], ref[1], rtol=1e-6)
    sing = np.array([[1., 2., 3., 4.], [2., 4., 6., 8.], [0., 1., 0., 1.], [1., 0., 1., 0.]], F32)
    harness.assert_same(fungrad.grad(jnp.linalg.det)(sing),
                        ref_jit(jax.grad(jnp_ref.linalg.det))(sing))
    harness.assert_same(jnp.linalg.slogdet(sing), ref_jit(jnp_ref.linalg.slogdet)(sing))
    assert not np.isfinite(np.asarray(jnp.linalg.inv(sing[:2, :2]))).any()


def test_types():
    """Integer inputs promote as in jax; weak types follow jax; results are NamedTuples."""
    i = np.array([[2, 1], [1, 3]], np.int32)
    for name in ["inv", "det", "cholesky", "eigvalsh", "svdvals", "pinv"]:
        harness.compare_types(getattr(jnp.linalg, name), getattr(jnp_ref.linalg, name), i)
    weak = lax.full((2, 2), 2.0) + lax.full((2, 2), 1.0) * jnp.eye(2)
    weak_ref = jax.lax.full((2, 2), 2.0) + jax.lax.full((2, 2), 1.0) * jnp_ref.eye(2)
    for f, ref in [(lax.linalg.cholesky, jax.lax.linalg.cholesky),
                   (jnp.linalg.det, jnp_ref.linalg.det),
                   (jnp.linalg.inv, jnp_ref.linalg.inv)]:
        assert f(weak).weak_type == jax.eval_shape(ref, weak_ref).weak_type
    w = jnp.linalg.eigh(spd(3))
    assert type(w).__name__ == "EighResult" and w.eigenvalues.shape == (3,)
    assert jnp.linalg.svd(rect(2, 3)).Vh.shape == (3, 3)


def test_errors():
    with pytest.raises(ValueError,
                       match=r"inv: argument must have shape \[\.\.\., n, n\], got \(2, 3\)"):
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


def test_lapack_lu_matches_jax_bits():
    """``lu`` calls LAPACK's getrf in the input's precision, as jax's CPU backend does:
    the same factors, pivots and permutations, bit for bit (float32, complex64, batched,
    wide and tall); a transposed view is factored without being overwritten."""
    for a in [general(40), general(6, (3, 2)), rect(5, 3), rect(3, 5),
              (general(4) + 1j * general(4)).astype(np.complex64)]:
        for out, ref in zip(lax.linalg.lu(a), ref_jit(jax.lax.linalg.lu)(a)):
            harness.assert_same(out, ref, atol=0, rtol=0)
    a = general(5)
    view = np.swapaxes(a, 0, 1)
    lax.linalg.lu(view)
    np.testing.assert_array_equal(view, a.T)


def _count(jaxpr_text, prim):
    """How many equations of primitive ``prim`` a printed jaxpr has."""
    return len(re.findall(rf"= {prim}[\[ ]", jaxpr_text))


def test_solve_vmap_over_b_factors_once():
    """Batched right-hand sides with one matrix: one solve with the batch as extra columns
    (the matrix is factored once), equal to jax.vmap for every batch axis and vector b."""
    a, b = general(5), RNG.uniform(-1, 1, (7, 5, 3)).astype(F32)
    for axis in range(3):
        bb = np.moveaxis(b, 0, axis)
        f = functools.partial(fungrad.vmap(jnp.linalg.solve, in_axes=(None, axis)), a)
        ref = ref_jit(jax.vmap(jnp_ref.linalg.solve, in_axes=(None, axis)))
        harness.assert_same(f(bb), ref(a, bb))
        jaxpr = str(fungrad.make_jaxpr(f)(bb))
        assert _count(jaxpr, "solve") == 1 and "5,21]" in jaxpr, jaxpr
    vec = b[:, :, 0]
    harness.assert_same(fungrad.vmap(jnp.linalg.solve, in_axes=(None, 0))(a, vec),
                        ref_jit(jax.vmap(jnp_ref.linalg.solve, in_axes=(None, 0)))(a, vec))
    g = fungrad.grad(lambda a: fungrad.vmap(jnp.linalg.solve, in_axes=(None, 0))(a, b).sum())
    g_ref = ref_jit(jax.grad(
        lambda a: jax.vmap(jnp_ref.linalg.solve, in_axes=(None, 0))(a, b).sum()))
    harness.assert_same(g(a), g_ref(a), harness.GRAD_TOL)


def test_slogdet_shares_one_lu():
    """slogdet's value and gradient come from one LU factorisation (no solve, no second
    lu), with jax's gradient, real and complex."""
    a = general(6)
    jaxpr = str(fungrad.make_jaxpr(fungrad.value_and_grad(lambda a: jnp.linalg.slogdet(a)[1]))(a))
    assert _count(jaxpr, "lu") == 1 and _count(jaxpr, "solve") == 0, jaxpr
    harness.assert_same(fungrad.grad(lambda a: jnp.linalg.slogdet(a)[1])(a),
                        ref_jit(jax.grad(lambda a: jnp_ref.linalg.slogdet(a)[1]))(a),
                        harness.GRAD_TOL)
    c = (general(4) + 1j * general(4)).astype(np.complex64)
    t = (rect(4, 4) + 1j * rect(4, 4)).astype(np.complex64)
    slogdet_ref = lambda x: tuple(jnp_ref.linalg.slogdet(x))
    harness.assert_same(fungrad.jvp(lambda x: tuple(jnp.linalg.slogdet(x)), (c,), (t,)),
                        ref_jit(lambda c, t: jax.jvp(slogdet_ref, (c,), (t,)))(c, t),
                        harness.GRAD_TOL)


EMPTY_MATRIX_OPS = {
    "det": lambda m, s, z: m.linalg.det(z),
    "slogdet": lambda m, s, z: m.linalg.slogdet(z),
    "lu_factor": lambda m, s, z: s.lu_factor(z),
    "scipy.det": lambda m, s, z: s.det(z),
    "lu_solve": lambda m, s, z: s.lu_solve(s.lu_factor(z), z.sum(-1)),
    "solve_triangular": lambda m, s, z: s.solve_triangular(z, z),
    "cho_solve": lambda m, s, z: s.cho_solve(s.cho_factor(z), z),
    "expm": lambda m, s, z: s.expm(z),
    "inv": lambda m, s, z: m.linalg.inv(z),
}


@pytest.mark.parametrize("name,batch", [(n, ()) for n in EMPTY_MATRIX_OPS] + [
    (n, (2,)) for n in ("det", "slogdet", "lu_factor", "expm", "inv")])  # batched in jax too
def test_empty_matrices(name, batch):
    """0x0 matrices (one, or a batch of them): a determinant of 1, empty factors, as jax."""
    z = np.zeros(batch + (0, 0), np.float32)
    harness.assert_same(EMPTY_MATRIX_OPS[name](jnp, fsp, z),
                        EMPTY_MATRIX_OPS[name](jnp_ref, jsp_ref, z))
