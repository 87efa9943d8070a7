"""The rest of jax.scipy.linalg against jax: the matrix constructors, the LAPACK
reductions of fungrad.lax.linalg (schur, hessenberg, tridiagonal, householder_product),
the decompositions built on them and the matrix functions.

Values, dtypes and weak types eager and under fungrad.jit (harness.compare); JVP, VJP and
vmap against jax where jax differentiates (harness.compare_transforms), derivatives
against finite differences (check_grads); float64 under harness.x64. Functions jax does
not differentiate (the Schur decomposition and what is built on it) are checked to raise.
"""
import functools

import harness
import jax
import jax.numpy as jnp_ref
import jax.scipy.linalg as jsp
import numpy as np
import pytest
from harness import float_dtypes  # noqa: F401  (the dtype fixture)

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.linalg as fsp
from fungrad import lax
from fungrad.errors import MissingRuleError
from fungrad.test_util import check_grads

compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)
ref_jit = functools.partial(jax.jit, compiler_options=harness.QUICK_COMPILE)
RNG = np.random.default_rng(18)
F32 = np.float32


def normal(*shape, dtype=F32):
    x = RNG.normal(size=shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * RNG.normal(size=shape)
    return x.astype(dtype)


def compare_many(cases, table=harness.TOL):
    """``harness.compare`` for each ``(fungrad function, jax function, args)`` with jax's
    results from one quickly compiled program."""
    refs = ref_jit(lambda all_args: [ref(*args) for (_, ref, _), args in zip(cases, all_args)])(
        [args for _, _, args in cases])
    for (f, ref, args), out in zip(cases, refs):
        harness.compare(f, ref, *args, ref_out=out, table=table)


def same(fg_out, ref_out, table=harness.TOL, **kw):
    """harness.assert_same, NaNs in the same places."""
    harness.assert_same(fg_out, ref_out, table, check_weak=False, **kw)


# --------------------------------------------------------------------------- constructors

CONSTRUCTORS = {  # name: (arguments, static keyword arguments)
    "toeplitz_c": ("toeplitz", [np.array([1, 2, 3])], {}),
    "toeplitz_cr": ("toeplitz", [normal(2, 3), normal(4)], {}),
    "toeplitz_complex": ("toeplitz", [np.array([1 + 1j, 2, 1 - 2j], np.complex64)], {}),
    "hankel_c": ("hankel", [np.array([1, 2, 3])], {}),
    "hankel_cr": ("hankel", [normal(3), normal(2, 4)], {}),
    "circulant": ("circulant", [normal(2, 4)], {}),
    "leslie": ("leslie", [normal(4), normal(3)], {}),
    "companion": ("companion", [np.array([2, -10, 31, -30])], {}),
    "fiedler": ("fiedler", [np.array([1, 4, 12, 45])], {}),
    "fiedler_companion_1": ("fiedler_companion", [normal(1)], {}),
    "fiedler_companion_2": ("fiedler_companion", [normal(2)], {}),
    "fiedler_companion_6": ("fiedler_companion", [normal(6)], {}),
    "convolution_full": ("convolution_matrix", [normal(4)], {"n": 3}),
    "convolution_same": ("convolution_matrix", [normal(2, 3)], {"n": 5, "mode": "same"}),
    "convolution_valid": ("convolution_matrix", [np.array([1, 2, 3, 4, 5])],
                          {"n": 2, "mode": "valid"}),
    "hilbert": ("hilbert", [], {"n": 4}),
    "invhilbert": ("invhilbert", [], {"n": 5}),
    "pascal": ("pascal", [], {"n": 5}),
    "pascal_lower": ("pascal", [], {"n": 4, "kind": "lower"}),
    "invpascal": ("invpascal", [], {"n": 5}),
    "invpascal_upper": ("invpascal", [], {"n": 4, "kind": "upper"}),
    "helmert": ("helmert", [], {"n": 4}),
    "helmert_full": ("helmert", [], {"n": 4, "full": True}),
    "hadamard": ("hadamard", [], {"n": 8}),
    "hadamard_float": ("hadamard", [], {"n": 4, "dtype": jnp.float32}),
    "dft": ("dft", [], {"n": 5}),
    "dft_sqrtn": ("dft", [], {"n": 4, "scale": "sqrtn"}),
    "dft_n": ("dft", [], {"n": 3, "scale": "n"}),
}


@pytest.mark.parametrize("case", sorted(CONSTRUCTORS))
def test_constructor(case):
    """Values, dtypes and weak types against jax, eager and under jit; where the inputs
    are floating point, JVP, VJP and vmap against jax too."""
    name, args, kw = CONSTRUCTORS[case]
    f = functools.partial(getattr(fsp, name), **kw)
    ref = functools.partial(getattr(jsp, name), **kw)
    if args and all(np.asarray(a).dtype == F32 for a in args):
        compare_transforms(f, ref, args, RNG)
    else:
        compare_many([(f, ref, args)])


@pytest.mark.parametrize("name", ["hilbert", "invhilbert", "invpascal", "helmert", "dft"])
def test_constructor_x64(name):
    """The default float (and complex) dtype follows enable_x64, as in jax."""
    with harness.x64():
        compare_many([(functools.partial(getattr(fsp, name), 4),
                       functools.partial(getattr(jsp, name), 4), ())])


def test_constructor_derivatives():
    """Finite differences through the gathers of the vector constructors."""
    v, w = harness.to_fg([normal(4), normal(3)])
    for f in [lambda c, r: fsp.toeplitz(c, r), lambda c, r: fsp.hankel(c, r),
              lambda c, r: fsp.circulant(c) @ r[:1].repeat(4),
              lambda c, r: fsp.leslie(c, r), lambda c, r: fsp.companion(c) * r[0],
              lambda c, r: fsp.fiedler_companion(c) * r[0],
              lambda c, r: fsp.convolution_matrix(c, 3, "same") @ r]:
        check_grads(f, (v, w), 1, modes=("fwd", "rev"))


def test_constructor_errors():
    with pytest.raises(ValueError, match="hankel: c must be at least 1-dimensional"):
        fsp.hankel(jnp.asarray(1.0))
    with pytest.raises(ValueError, match="leslie: the length of s"):
        fsp.leslie(jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match="companion: the length of a"):
        fsp.companion(jnp.ones(1))
    with pytest.raises(ValueError, match="convolution_matrix: mode must be one of"):
        fsp.convolution_matrix(jnp.ones(3), 2, "circular")
    with pytest.raises(ValueError, match="convolution_matrix: n must be a positive integer"):
        fsp.convolution_matrix(jnp.ones(3), 0)
    with pytest.raises(ValueError, match="pascal: expected kind"):
        fsp.pascal(3, "diagonal")
    with pytest.raises(ValueError, match="hadamard: n must be a positive power of 2"):
        fsp.hadamard(6)
    with pytest.raises(ValueError, match="dft: dtype must be a complex"):
        fsp.dft(3, dtype=jnp.float32)
    with pytest.raises(TypeError, match="toeplitz requires ndarray or scalar arguments"):
        fsp.toeplitz([1, 2, 3])


# --------------------------------------------------------------------------- lax reductions

REDUCTIONS = {
    "schur": (lax.linalg.schur, jax.lax.linalg.schur),
    "schur_no_vectors": (functools.partial(lax.linalg.schur, compute_schur_vectors=False),
                         functools.partial(jax.lax.linalg.schur, compute_schur_vectors=False)),
    "hessenberg": (lax.linalg.hessenberg, jax.lax.linalg.hessenberg),
    "tridiagonal": (lax.linalg.tridiagonal, jax.lax.linalg.tridiagonal),
    "tridiagonal_upper": (functools.partial(lax.linalg.tridiagonal, lower=False),
                          functools.partial(jax.lax.linalg.tridiagonal, lower=False)),
}


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_lax_reduction(name, complex_, dtype):
    """The same LAPACK routines as jax's CPU backend: equal to rounding, batched (leading
    axes and vmap over a middle axis), eager and jitted."""
    f, ref = REDUCTIONS[name]
    dt = np.result_type(dtype, np.complex64) if complex_ else dtype
    a = normal(3, 2, 5, 5, dtype=dt)
    out, vmapped = ref_jit(lambda a: (ref(a), jax.vmap(ref, in_axes=1)(a)))(a)
    harness.compare(f, ref, a, ref_out=out)
    same(fungrad.vmap(f, in_axes=1)(a), vmapped)


def test_householder_product(dtype):
    """Q from hessenberg's reflectors and from a QR factorisation's (m > n), as jax."""
    a = normal(2, 6, 6, dtype=dtype)
    packed, taus = (np.asarray(x) for x in jax.lax.linalg.hessenberg(a))
    raw, tall_taus = np.linalg.qr(a[:, :, :4], mode="raw")  # LAPACK's geqrf, transposed
    tall = np.ascontiguousarray(np.swapaxes(raw, -1, -2))
    compare_many([(lax.linalg.householder_product, jax.lax.linalg.householder_product, args)
                  for args in [(packed[..., 1:, :-1], taus), (tall, tall_taus)]])
    with pytest.raises(ValueError, match="householder_product: a must have at least as many"):
        lax.linalg.householder_product(jnp.ones((2, 3)), jnp.ones(2))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_lax_reduction_not_differentiable(name):
    """jax defines no derivative for them: differentiating raises, naming the primitive."""
    f = REDUCTIONS[name][0]
    with pytest.raises(MissingRuleError, match=name.split("_no")[0].split("_upper")[0]):
        fungrad.jvp(lambda a: f(a)[0], (jnp.eye(3),), (jnp.eye(3),))


# --------------------------------------------------------------------------- decompositions

def test_schur_rsf2csf(dtype):
    """Real and complex Schur forms, and the real form converted to the complex one,
    including a batch (leading axes) and a matrix with complex eigenvalue pairs."""
    a = normal(2, 5, 5, dtype=dtype)
    compare_many([(functools.partial(fsp.schur, output=output),
                   functools.partial(jsp.schur, output=output), (a,))
                  for output in ["real", "complex"]])
    t, z = (np.asarray(x) for x in ref_jit(jsp.schur)(a))
    compare_many([(fsp.rsf2csf, jsp.rsf2csf, (t, z))], harness.GRAD_TOL)
    tc, zc = (np.asarray(x) for x in fsp.rsf2csf(t, z))
    np.testing.assert_array_equal(np.tril(tc, -1), 0)
    np.testing.assert_allclose(zc @ tc @ np.swapaxes(zc, -1, -2).conj(), a,
                               atol=100 * np.finfo(dtype).eps)


def test_hessenberg(dtype):
    compare_many([(functools.partial(fsp.hessenberg, calc_q=calc_q),
                   functools.partial(jsp.hessenberg, calc_q=calc_q), (normal(*shape, dtype=dtype),))
                  for calc_q in [False, True] for shape in [(2, 5, 5), (1, 1)]])


QR_MULTIPLY = [("left", False, (3, 2)), ("left", True, (3,)), ("right", False, (2, 6)),
               ("right", True, (6,))]


@pytest.mark.parametrize("mode,conjugate,c_shape", QR_MULTIPLY)
def test_qr_multiply(mode, conjugate, c_shape):
    """Against jax (which uses geqrf and ormqr) for a tall matrix, a vector or a matrix
    ``c``, batched, and under jit; differentiable here (jax: not), checked against finite
    differences."""
    a, c = normal(2, 6, 3), normal(*c_shape)
    f = functools.partial(fsp.qr_multiply, mode=mode, conjugate=conjugate)
    ref = functools.partial(jsp.qr_multiply, mode=mode, conjugate=conjugate)
    compare_many([(f, ref, (a, c))])
    check_grads(lambda a, c: f(a, c)[0], harness.to_fg([a[0], c]), 1, modes=("fwd", "rev"))


def test_qr_multiply_errors():
    with pytest.raises(ValueError, match="qr_multiply: array shapes are not compatible for Q @ c"):
        fsp.qr_multiply(jnp.ones((4, 2)), jnp.ones((4, 1)), mode="left")
    with pytest.raises(ValueError, match="qr_multiply: mode must be 'right' or 'left'"):
        fsp.qr_multiply(jnp.ones((4, 2)), jnp.ones(4), mode="up")


@pytest.mark.parametrize("method", ["qdwh", "svd"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_polar(side, method):
    """Values, JVP, VJP and vmap against jax (QDWH: forward mode only, as jax's
    while_loop); the factors' defining properties; finite differences."""
    a = normal(5, 3) if side == "right" else normal(3, 5)
    f = functools.partial(fsp.polar, side=side, method=method)
    ref = functools.partial(jsp.polar, side=side, method=method)
    if method == "svd":
        compare_transforms(f, ref, [a], RNG)
        check_grads(f, harness.to_fg([a]), 1, modes=("fwd", "rev"))
    else:
        out, tangent, vmapped = ref_jit(lambda a, t, b: (ref(a), jax.jvp(ref, (a,), (t,))[1],
                                                         jax.vmap(ref)(b)))(
            a, t := normal(*a.shape), b := normal(3, *a.shape))
        harness.compare(f, ref, a, ref_out=out)
        same(fungrad.jvp(f, (a,), (t,))[1], tangent, harness.GRAD_TOL)
        same(fungrad.vmap(f)(b), vmapped)
        check_grads(f, harness.to_fg([a]), 1, modes=("fwd",))
    u, p = (np.asarray(x) for x in f(a))
    np.testing.assert_allclose(u @ p if side == "right" else p @ u, a, atol=1e-5)
    assert np.linalg.eigvalsh(p).min() > -1e-5


def test_polar_f64():
    with harness.x64():
        a = normal(2, 4, 4, dtype=np.float64)
        compare_many([(fsp.polar, jsp.polar, (a,))])


def test_eigh_tridiagonal(dtype):
    """Bisection gives jax's eigenvalues (all, or an index range), eager and jitted."""
    d, e = normal(9, dtype=dtype), normal(8, dtype=dtype)
    compare_many([(functools.partial(fsp.eigh_tridiagonal, eigvals_only=True, **kw),
                   functools.partial(jsp.eigh_tridiagonal, eigvals_only=True, **kw), (d, e))
                  for kw in [{}, {"select": "i", "select_range": (2, 5)}, {"tol": 1e-3}]])
    full = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    np.testing.assert_allclose(fsp.eigh_tridiagonal(d, e, eigvals_only=True),
                               np.linalg.eigvalsh(full), atol=10 * np.finfo(dtype).eps * 9)
    with pytest.raises(NotImplementedError, match="eigenvectors"):
        fsp.eigh_tridiagonal(d, e)


# --------------------------------------------------------------------------- matrix functions

EXPM_SCALES = [0.005, 0.2, 0.8, 1.5, 3.0, 30.0]  # every Pade degree, and squarings


def test_expm_degrees(dtype):
    """Each Pade degree, the scaling-and-squaring path and the triangular solve, against
    jax."""
    mats = [normal(4, 4, dtype=dtype) * s / 4 for s in EXPM_SCALES]
    up = np.triu(mats[3])
    refs = ref_jit(lambda ms, up: ([jsp.expm(m) for m in ms], jsp.expm(up, upper_triangular=True)))(
        mats, up)
    for m, ref in zip(mats, refs[0]):
        same(fsp.expm(m), ref, harness.GRAD_TOL)
    same(fsp.expm(up, upper_triangular=True), refs[1], harness.GRAD_TOL)


def test_expm_transforms():
    """JVP, VJP and vmap of the Pade approximant against jax (the squaring loop, the
    switch and the solve differentiated); finite differences."""
    a = normal(3, 3) * 0.9
    compare_transforms(fsp.expm, jsp.expm, [a], RNG)
    check_grads(fsp.expm, harness.to_fg([a]), 1, modes=("fwd", "rev"))


def test_expm_frechet_and_limits(dtype):
    a, e = normal(2, 3, 3, dtype=dtype), normal(2, 3, 3, dtype=dtype)
    big = 1e6 * normal(3, 3, dtype=dtype)  # needs more squarings than allowed: NaN
    compare_many([(fsp.expm_frechet, jsp.expm_frechet, (a, e)),
                  (functools.partial(fsp.expm_frechet, compute_expm=False),
                   functools.partial(jsp.expm_frechet, compute_expm=False), (a[0], e[0])),
                  (functools.partial(fsp.expm, max_squarings=4),
                   functools.partial(jsp.expm, max_squarings=4), (big,))], harness.GRAD_TOL)
    assert np.isnan(np.asarray(fsp.expm(big, max_squarings=4))).all()


def test_sqrtm_funm(dtype):
    """Against jax: a positive definite matrix and a general one (complex roots); funm
    of exp against expm; the error estimate of disp=False."""
    g = normal(4, 4, dtype=dtype)
    spd = g @ g.T + np.eye(4, dtype=dtype)
    compare_many([case for a in [spd, g] for case in [
        (fsp.sqrtm, jsp.sqrtm, (a,)),
        (lambda a: fsp.funm(a, jnp.sin, disp=False),
         lambda a: jsp.funm(a, jnp_ref.sin, disp=False), (a,))]], harness.GRAD_TOL)
    r = np.asarray(fsp.sqrtm(g))
    np.testing.assert_allclose(r @ r, g, atol=1e3 * np.finfo(dtype).eps)
    np.testing.assert_allclose(fsp.funm(g, jnp.exp), fsp.expm(g).astype(r.dtype),
                               rtol=1e2 * np.finfo(dtype).eps ** 0.5)
    with pytest.raises(MissingRuleError, match="schur"):
        fungrad.grad(lambda a: fsp.sqrtm(a).real.sum())(spd)


@pytest.mark.parametrize("method", ["schur", "eigen"])
def test_solve_sylvester(method, dtype):
    """Against jax, broadcast over a batch of C; the residual; NaNs when A and -B share
    an eigenvalue."""
    a = normal(4, 4, dtype=dtype) + 4 * np.eye(4, dtype=dtype)
    b = normal(3, 3, dtype=dtype) + 4 * np.eye(3, dtype=dtype)
    c = normal(2, 4, 3, dtype=dtype)
    f = functools.partial(fsp.solve_sylvester, method=method)
    ref = functools.partial(jsp.solve_sylvester, method=method)
    eye = np.eye(2, dtype=dtype)
    out, singular = ref_jit(lambda a, b, c, eye: (ref(a, b, c), ref(eye, -eye, eye)))(a, b, c, eye)
    harness.compare(f, ref, a, b, c, ref_out=out, table=harness.GRAD_TOL)
    x = np.asarray(f(a, b, c))
    np.testing.assert_allclose(a @ x + x @ b, c, atol=1e3 * np.finfo(dtype).eps)
    assert np.isnan(np.asarray(f(eye, -eye, eye))).all()
    assert np.isnan(np.asarray(singular)).all()


def test_matfunc_errors():
    with pytest.raises(ValueError, match=r"expm: expected A to be a \(batched\) square matrix"):
        fsp.expm(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="expm_frechet: expected A and E to be the same shape"):
        fsp.expm_frechet(jnp.ones((2, 2)), jnp.ones((3, 3)))
    with pytest.raises(NotImplementedError, match="blocksize"):
        fsp.sqrtm(jnp.eye(2), blocksize=2)
    with pytest.raises(ValueError, match="solve_sylvester: incompatible shapes"):
        fsp.solve_sylvester(jnp.eye(2), jnp.eye(3), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="solve_sylvester: unrecognized method"):
        fsp.solve_sylvester(jnp.eye(2), jnp.eye(2), jnp.ones((2, 2)), method="lu")
    with pytest.raises(ValueError, match="schur: expected 'output'"):
        fsp.schur(jnp.eye(2), output="quasi")
    with pytest.raises(ValueError, match="rsf2csf: input array shapes must match"):
        fsp.rsf2csf(jnp.eye(2), jnp.eye(3))
    with pytest.raises(NotImplementedError, match="polar: method='qdwh' only supports"):
        fsp.polar(jnp.ones((2, 3)))
