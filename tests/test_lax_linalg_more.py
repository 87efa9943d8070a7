"""Column-pivoted QR and the rest of jax.lax.linalg against jax: ``qr(pivoting=True)``
(lax and scipy, ``qr_multiply``), ``geqrf``, ``geqp3``, ``ormqr``, ``householder_product``
on their reflectors, ``symmetric_product`` and ``cholesky_update``.

The LAPACK routines are jax's CPU backend's, so values (signs included) agree to rounding:
float32, float64 (under harness.x64) and complex64, batched (leading axes and vmap),
eager and under fungrad.jit. The derivatives of ``qr`` (pivoted, wide, full tall) are
checked against jax's and finite differences; the other primitives, which jax does not
differentiate, are checked to raise.
"""
import functools

import harness
import jax
import jax.scipy.linalg as jsp
import numpy as np
import pytest
from jax._src.lax import linalg as jax_linalg  # geqrf and geqp3 are not re-exported

import fungrad
import fungrad.numpy as jnp
import fungrad.scipy.linalg as fsp
from fungrad import lax
from fungrad.errors import MissingRuleError
from fungrad.test_util import check_grads

RNG = np.random.default_rng(10)
ref_jit = functools.partial(jax.jit, compiler_options=harness.QUICK_COMPILE)
compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)


@pytest.fixture(name="dtype", params=[np.float32, np.float64, np.complex64],
                ids=["f32", "f64", "c64"])
def lapack_dtypes(request):
    """float32, float64 (64-bit dtypes on in both libraries) and complex64."""
    if request.param == np.float64:
        with harness.x64():
            yield request.param
    else:
        yield request.param


def normal(*shape, dtype=np.float32):
    x = RNG.normal(size=shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * RNG.normal(size=shape)
    return x.astype(dtype)


def compare_many(cases):
    """``harness.compare`` (eager and jitted) for each ``(fungrad function, jax function,
    args)``, jax's results from one quickly compiled program."""
    refs = ref_jit(lambda all_args: [ref(*args) for (_, ref, _), args in zip(cases, all_args)])(
        [args for _, _, args in cases])
    for (f, ref, args), out in zip(cases, refs):
        harness.compare(f, ref, *args, ref_out=out, table=harness.GRAD_TOL)


SHAPES = [(5, 3), (3, 5), (2, 4, 4)]  # tall, wide, a batch of squares


# --------------------------------------------------------------------------- qr(pivoting=True)

def test_qr_pivoted(dtype):
    """Values, the permutation (int32) and shapes, full and economic, as jax; the factors
    reproduce the permuted columns and R's diagonal does not grow."""
    cases = []
    for shape in SHAPES:
        a = normal(*shape, dtype=dtype)
        for full in (True, False):
            kw = dict(pivoting=True, full_matrices=full)
            cases.append((functools.partial(lax.linalg.qr, **kw),
                          functools.partial(jax.lax.linalg.qr, **kw), (a,)))
    compare_many(cases)
    a = normal(*SHAPES[0], dtype=dtype)
    q, r, p = (np.asarray(x) for x in lax.linalg.qr(a, pivoting=True))
    assert p.dtype == np.int32
    np.testing.assert_allclose(q @ r, a[:, p], atol=50 * np.finfo(dtype).eps)
    assert np.all(np.diff(np.abs(np.diagonal(r))) <= 0)


def test_qr_pivoted_empty():
    """An empty matrix: Q the identity's columns, R empty, P zeros (as jax)."""
    for shape in [(3, 0), (0, 2)]:
        out = lax.linalg.qr(jnp.zeros(shape), pivoting=True)
        harness.assert_same(out, jax.lax.linalg.qr(np.zeros(shape, np.float32), pivoting=True))


@pytest.mark.parametrize("shape, full", [((5, 3), True), ((5, 3), False), ((3, 3), True)],
                         ids=["tall-full", "tall-economic", "square"])
def test_qr_pivoted_transforms(shape, full):
    """JVP, VJP and vmap of Q and R against jax (the derivative of the permuted columns)."""
    kw = dict(pivoting=True, full_matrices=full)
    compare_transforms(lambda a: lax.linalg.qr(a, **kw)[:2],
                       lambda a: jax.lax.linalg.qr(a, **kw)[:2], [normal(*shape)], RNG)


@pytest.mark.parametrize("shape, full", [((3, 5), False), ((5, 3), True)],
                         ids=["wide", "tall-full"])
def test_qr_unpivoted_transforms(shape, full):
    """The derivatives jax added for wide matrices and for the full Q of tall ones (the
    economic factors of tall matrices are in test_linalg.py)."""
    compare_transforms(lambda a: lax.linalg.qr(a, full_matrices=full),
                       lambda a: jax.lax.linalg.qr(a, full_matrices=full), [normal(*shape)], RNG)


@pytest.mark.parametrize("pivoting", [True, False], ids=["pivoted", "unpivoted"])
def test_qr_grads_finite_differences(pivoting):
    """Every shape and mode against finite differences in float64, batched and complex
    included. For wide pivoted matrices jax's JVP takes the unpermuted trailing columns
    and fails this check; fungrad's passes it."""
    with harness.x64():
        for shape, dtype in [((3, 5), np.float64), ((2, 5, 3), np.float64),
                             ((4, 4), np.complex128), ((3, 4), np.complex128)]:
            a = jnp.asarray(normal(*shape, dtype=dtype))
            for full in (True, False):
                check_grads(lambda a: lax.linalg.qr(a, pivoting=pivoting,
                                                    full_matrices=full)[:2],
                            (a,), 1, modes=("fwd", "rev"))


def test_qr_pivoted_wide_jvp_matches_jax_on_the_square_block():
    """For a wide pivoted QR, jax 0.10's JVP of R's trailing columns uses the unpermuted
    columns (fungrad's follows finite differences there: the test above); Q and R's
    leading square block must agree with jax's."""
    a, t = normal(3, 5), normal(3, 5)
    fg = fungrad.jvp(lambda a: lax.linalg.qr(a, pivoting=True)[:2], (jnp.asarray(a),),
                     (jnp.asarray(t),))[1]
    ref = ref_jit(lambda a, t: jax.jvp(lambda a: jax.lax.linalg.qr(a, pivoting=True)[:2], (a,),
                                       (t,))[1])(a, t)
    harness.assert_same(fg[0], ref[0], harness.GRAD_TOL, check_weak=False)
    harness.assert_same(fg[1][:, :3], ref[1][:, :3], harness.GRAD_TOL, check_weak=False)


# --------------------------------------------------------------------------- scipy.linalg

def test_scipy_qr_and_qr_multiply_pivoted(dtype):
    """scipy's layouts: (Q, R, P), (R, P) for mode 'r' (R with m rows, as jax), and
    qr_multiply's (product, R, P), left and right, conjugated, vector c."""
    a = normal(5, 3, dtype=dtype)
    cases = [(functools.partial(fsp.qr, mode=mode, pivoting=True),
              functools.partial(jsp.qr, mode=mode, pivoting=True), (a,))
             for mode in ("full", "economic", "r")]
    cases.append((functools.partial(fsp.qr, mode="r"), functools.partial(jsp.qr, mode="r"),
                  (a,)))
    for mode, c in [("left", normal(3, 2, dtype=dtype)), ("right", normal(5, dtype=dtype))]:
        for conjugate in (False, True):
            kw = dict(mode=mode, pivoting=True, conjugate=conjugate)
            cases.append((functools.partial(fsp.qr_multiply, **kw),
                          functools.partial(jsp.qr_multiply, **kw), (a, c)))
    compare_many(cases)


def test_qr_multiply_pivoted_grads():
    """Differentiable through qr (jax's, through geqp3 and ormqr, is not)."""
    with harness.x64():
        a, c = jnp.asarray(normal(5, 3, dtype=np.float64)), jnp.asarray(normal(2, 5,
                                                                              dtype=np.float64))
        check_grads(lambda a, c: fsp.qr_multiply(a, c, pivoting=True)[0], (a, c), 1,
                    modes=("fwd", "rev"))


# --------------------------------------------------------------------------- geqrf, geqp3, ormqr

def test_geqrf_geqp3_householder_product(dtype):
    """The packed factorisations as jax (jpvt 1-based, in its integer dtype; a nonzero
    entry moves its column to the front), and Q from their reflectors."""
    cases = []
    for shape in SHAPES:
        a = normal(*shape, dtype=dtype)
        n = shape[-1]
        free = np.zeros(shape[:-2] + (n,), np.int32)
        fixed = free.copy()
        fixed[..., -1] = 1
        cases += [(lax.linalg.geqrf, jax_linalg.geqrf, (a,)),
                  (lax.linalg.geqp3, jax_linalg.geqp3, (a, free)),
                  (lax.linalg.geqp3, jax_linalg.geqp3, (a, fixed))]
        if shape[-2] >= n:
            def q_of(a, geqrf, householder_product):
                return householder_product(*geqrf(a))
            cases.append((functools.partial(q_of, geqrf=lax.linalg.geqrf,
                                            householder_product=lax.linalg.householder_product),
                          functools.partial(q_of, geqrf=jax_linalg.geqrf,
                                            householder_product=jax.lax.linalg.householder_product),
                          (a,)))
    compare_many(cases)


def test_ormqr(dtype):
    """Q c, Q^H c, c Q and c Q^H from geqrf's reflectors, tall and wide, batched."""
    cases = []
    for shape in [(5, 3), (3, 5), (2, 4, 3)]:
        packed, taus = (np.asarray(x) for x in jax_linalg.geqrf(normal(*shape, dtype=dtype)))
        m = shape[-2]
        for left in (True, False):
            c = normal(*shape[:-2], *((m, 2) if left else (3, m)), dtype=dtype)
            for transpose in (False, True):
                kw = dict(left=left, transpose=transpose)
                cases.append((functools.partial(lax.linalg.ormqr, **kw),
                              functools.partial(jax.lax.linalg.ormqr, **kw), (packed, taus, c)))
    compare_many(cases)


def test_vmap():
    """vmap over a middle axis and with unbatched operands, as jax's."""
    a = normal(4, 3, 5, 3)
    packed, taus = (np.asarray(x) for x in jax_linalg.geqrf(a))
    c = normal(4, 5, 2)  # unbatched, with the batch axis of each vmapped member
    jpvt = np.zeros((4, 3), np.int32)  # unbatched: one per matrix of a vmapped member
    cases = [
        (lambda a: lax.linalg.qr(a, pivoting=True), lambda a: jax.lax.linalg.qr(a, pivoting=True)),
        (lax.linalg.geqrf, jax_linalg.geqrf),
        (lambda a: lax.linalg.geqp3(a, jnp.asarray(jpvt)),
         lambda a: jax_linalg.geqp3(a, jax.numpy.asarray(jpvt))),
    ]
    refs = ref_jit(lambda a, packed, taus: [jax.vmap(ref, in_axes=1)(a) for _, ref in cases] + [
        jax.vmap(lambda p, t: jax.lax.linalg.ormqr(p, t, c), in_axes=(1, 1))(packed, taus)])(
        a, packed, taus)
    for (f, _), ref in zip(cases, refs):
        harness.assert_same(fungrad.vmap(f, in_axes=1)(a), ref, check_weak=False)
    harness.assert_same(fungrad.vmap(lambda p, t: lax.linalg.ormqr(p, t, jnp.asarray(c)),
                                     in_axes=(1, 1))(packed, taus), refs[-1], check_weak=False)


# --------------------------------------------------------------------------- symmetric_product,
# cholesky_update

def test_symmetric_product():
    """alpha A A^T + beta C (only the lower triangle is defined; symmetrize_output mirrors
    it), batched and under vmap, float32 and float64; complex inputs raise as in jax."""
    a, c = normal(2, 4, 3), normal(2, 4, 4)
    cases = [(functools.partial(lax.linalg.symmetric_product, **kw),
              functools.partial(jax.lax.linalg.symmetric_product, **kw), (a, c))
             for kw in [{}, dict(alpha=0.5, beta=2.0), dict(beta=-1.0, symmetrize_output=True)]]
    compare_many(cases)
    with harness.x64():
        compare_many([(lax.linalg.symmetric_product, jax.lax.linalg.symmetric_product,
                       (a.astype(np.float64), c.astype(np.float64)))])
    harness.assert_same(fungrad.vmap(lax.linalg.symmetric_product, in_axes=(0, None))(a, c[0]),
                        jax.vmap(jax.lax.linalg.symmetric_product, in_axes=(0, None))(a, c[0]),
                        check_weak=False)
    with pytest.raises(TypeError, match="symmetric_product: a_matrix must be float32 or float64"):
        lax.linalg.symmetric_product(jnp.ones((2, 2), jnp.complex64), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="symmetric_product expects a rectangular matrix"):
        lax.linalg.symmetric_product(jnp.ones((2, 3)), jnp.ones((3, 3)))


def test_cholesky_update():
    """The rank-one update as jax (one matrix; jax does not batch it, fungrad maps over
    leading axes), a zero entry of w included; R^T R gains w w^T."""
    r = np.triu(normal(4, 4)) + 4 * np.eye(4, dtype=np.float32)
    w = normal(4)
    w[1] = 0
    harness.compare(lax.linalg.cholesky_update, jax.lax.linalg.cholesky_update, r, w,
                    table=harness.GRAD_TOL, check_weak=False)
    out = np.asarray(lax.linalg.cholesky_update(r, w), np.float64)
    np.testing.assert_allclose(out.T @ out, r.T.astype(np.float64) @ r + np.outer(w, w),
                               rtol=1e-5, atol=1e-4)
    rs, ws = np.stack([r, 2 * r]), np.stack([w, -w])
    batched = fungrad.vmap(lax.linalg.cholesky_update)(rs, ws)
    for i in range(2):
        harness.assert_same(batched[i], jax.lax.linalg.cholesky_update(rs[i], ws[i]),
                            harness.GRAD_TOL, check_weak=False)


# --------------------------------------------------------------------------- errors

NOT_DIFFERENTIABLE = {
    "geqrf": lambda a: lax.linalg.geqrf(a)[0],
    "geqp3": lambda a: lax.linalg.geqp3(a, jnp.zeros(3, jnp.int32))[0],
    "ormqr": lambda a: lax.linalg.ormqr(a, jnp.ones(3), jnp.eye(3)),
    "symmetric_product": lambda a: lax.linalg.symmetric_product(a, jnp.eye(3)),
    "cholesky_update": lambda a: lax.linalg.cholesky_update(a, jnp.ones(3)),
}


@pytest.mark.parametrize("name", sorted(NOT_DIFFERENTIABLE))
def test_not_differentiable(name):
    """jax defines no derivative for them: differentiating raises, naming the primitive."""
    with pytest.raises(MissingRuleError, match=name):
        fungrad.jvp(NOT_DIFFERENTIABLE[name], (jnp.eye(3),), (jnp.eye(3),))


def test_bad_arguments():
    """Errors name the routine and the offending argument, eagerly and under jit."""
    with pytest.raises(TypeError, match="geqp3: jpvt must be an integer array of shape"):
        lax.linalg.geqp3(jnp.ones((3, 2)), jnp.zeros(2))
    with pytest.raises(TypeError, match="geqp3: jpvt must be an integer array"):
        fungrad.jit(lax.linalg.geqp3)(jnp.ones((3, 2)), jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match="ormqr with left=True expects c to have as many rows"):
        lax.linalg.ormqr(jnp.ones((3, 2)), jnp.ones(2), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="ormqr: taus must have a's dtype float32 and shape"):
        lax.linalg.ormqr(jnp.ones((3, 2)), jnp.ones(3), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="cholesky_update: takes a real square"):
        lax.linalg.cholesky_update(jnp.eye(3), jnp.ones(2))
    with pytest.raises(ValueError, match="qr: argument must have shape"):
        lax.linalg.qr(jnp.ones(3), pivoting=True)
