"""Polynomial functions (poly, polyadd, polysub, polymul, polydiv, polyder, polyint, polyfit,
roots) against jax.numpy: values, dtypes and weak types, the keyword options, leading zeros,
jit, derivatives, vmap and errors."""
import functools

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import harness
from harness import assert_same, compare_types, rand, to_fg, to_jax



def compare(fg_fn, jax_fn, *args, **kw):
    """``harness.compare`` with jax's reference run under ``jax.jit`` with a quick compilation
    (one short compilation per case instead of one per op)."""
    ref = jax.jit(jax_fn, compiler_options=harness.QUICK_COMPILE)(*to_jax(args))
    harness.compare(fg_fn, jax_fn, *args, ref_out=ref, **kw)


compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)

RNG = np.random.default_rng(11)
F32, I32, C64 = np.float32, np.int32, np.complex64
# float32 tolerances of JAX's own tests for roots and polyfit (an eigen-solve and a
# least-squares solve round differently in each library)
LOOSE = {np.dtype(F32): (1e-3, 1e-3), np.dtype(C64): (1e-3, 1e-3)}


def _both(name, **kw):
    """fungrad's and jax's ``name`` with the keyword arguments ``kw``."""
    return (lambda *a: getattr(jnp, name)(*a, **kw),
            lambda *a: getattr(jnp_ref, name)(*a, **kw))


def _raises_like(name, args, kw, fg_error, match, jax_differs=False):
    """jax's ``name`` raises on ``args``, and fungrad's raises the same class with a message
    naming ``name`` (``match``); ``jax_differs``: jax fails by accident (``len()`` of a 0-d
    array, an index out of range), and fungrad raises a named ``fg_error`` instead."""
    with pytest.raises(Exception) as jax_error:
        getattr(jnp_ref, name)(*to_jax(args), **kw)
    assert jax_differs or issubclass(jax_error.type, fg_error), jax_error
    with pytest.raises(fg_error, match=match):
        getattr(jnp, name)(*to_fg(args), **kw)


# --------------------------------------------------------------------------- poly

def test_poly():
    x = rand(RNG, (4,), F32)
    compare(jnp.poly, jnp_ref.poly, x)
    compare(jnp.poly, jnp_ref.poly, np.array([1, 2, 3], I32))
    compare(jnp.poly, jnp_ref.poly, np.array([2, 1 + 2j, 1 - 2j], C64))
    compare(jnp.poly, jnp_ref.poly, np.zeros((0,), F32))      # no roots: the constant 1, 0-d
    compare(jnp.poly, jnp_ref.poly, np.array([True, False]))
    assert_same(jnp.poly(1.5), jnp_ref.poly(1.5))              # a scalar is one root
    compare(jnp.poly, jnp_ref.poly, np.float32(-0.5))
    m = np.array([[2, 1, 0], [1, 3, 1], [0, 1, 4]], F32)        # a matrix: its eigenvalues
    compare(jnp.poly, jnp_ref.poly, m, table=LOOSE)
    for dt in (np.int8, np.uint8, np.float16, np.int32):
        compare_types(jnp.poly, jnp_ref.poly, rand(RNG, (3,), dt))
    compare_types(jnp.poly, jnp_ref.poly, rand(RNG, (2, 2), I32))


def test_poly_transforms():
    compare_transforms(jnp.poly, jnp_ref.poly, [rand(RNG, (4,), F32)], RNG)
    sym = np.array([[2, 1, 0], [1, 3, 1], [0, 1, 4]], F32)     # distinct real eigenvalues
    g = jax.jit(jax.grad(lambda a: jnp_ref.poly(a).real.sum()))(sym)
    assert_same(fungrad.grad(lambda a: jnp.poly(a).real.sum())(sym), g, harness.GRAD_TOL,
                rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape", [(2, 3), (0, 0), (2, 2, 2)])
def test_poly_errors(shape):
    _raises_like("poly", [np.ones(shape, F32)], {}, ValueError, "poly: seq_of_zeros")


# --------------------------------------------------------------------------- polyadd, polysub

ADD_CASES = [((3,), (5,), F32, F32), ((5,), (3,), I32, I32), ((4,), (4,), I32, F32),
             ((1, 3), (2, 3), F32, F32), ((2, 3), (1,), I32, I32), ((3, 2), (2, 1), F32, F32),
             ((0,), (0,), F32, F32)]


@pytest.mark.parametrize("case", ADD_CASES, ids=str)
@pytest.mark.parametrize("name", ["polyadd", "polysub"])
def test_polyadd_polysub(name, case):
    s1, s2, d1, d2 = case
    compare(*_both(name), rand(RNG, s1, d1), rand(RNG, s2, d2))


def test_polyadd_polysub_types_and_transforms():
    for name in ("polyadd", "polysub"):
        for d1, d2 in [(np.uint8, np.uint8), (np.int8, np.int16), (np.float16, I32),
                       (C64, F32)]:
            compare_types(*_both(name), rand(RNG, (3,), d1), rand(RNG, (2,), d2))
        compare_transforms(*_both(name), [rand(RNG, (3,), F32), rand(RNG, (5,), F32)], RNG)
    compare(jnp.polysub, jnp_ref.polysub, np.array([1], np.uint8), np.array([3, 2], np.uint8))


@pytest.mark.parametrize("name", ["polyadd", "polysub"])
def test_polyadd_polysub_errors(name):
    vec = np.ones((3,), F32)
    _raises_like(name, [np.float32(1), vec], {}, ValueError, f"{name}: a1 must be an array",
                 jax_differs=True)
    _raises_like(name, [vec, 2.0], {}, ValueError, f"{name}: a2 must be an array",
                 jax_differs=True)
    _raises_like(name, [vec, np.ones((2, 3), F32)], {}, ValueError, f"{name}: coefficients")
    _raises_like(name, [np.zeros((0,), F32), vec], {}, ValueError, f"{name}: coefficients")
    _raises_like(name, [np.array([True]), np.array([True, False])], {}, TypeError,
                 f"{name} does not accept boolean")
    with pytest.raises(TypeError, match=name):
        getattr(jnp, name)([1.0, 2.0], vec)


# --------------------------------------------------------------------------- polymul

# (a, b, whether to check trim_leading_zeros=True too: jax runs it eagerly, one compilation
# per op, so only where it changes something)
MUL_CASES = [(np.array([2, 1, 0], I32), np.array([0, 5, 0, 3], I32), False),
             (rand(RNG, (4,), F32), rand(RNG, (2,), F32), False),
             (np.array([0, 0, 1.5], F32), np.array([0, 2], I32), True),      # leading zeros
             (np.array([0, 0], F32), np.array([0, 2], F32), True),            # all zeros
             (np.array([3], F32), np.array([0], F32), True),                # not trimmed
             (np.zeros((0,), F32), rand(RNG, (3,), F32), False),              # empty: [0]
             (np.array([2, 1 + 2j, 1 - 2j], C64), np.array([0, 5, 0, 3], I32), False)]


@pytest.mark.parametrize("case", range(len(MUL_CASES)))
def test_polymul(case):
    a, b, trim = MUL_CASES[case]
    compare(jnp.polymul, jnp_ref.polymul, a, b)
    if trim:  # needs concrete values: checked to fail under jit in both, as jax's
        harness.compare(*_both("polymul", trim_leading_zeros=True), a, b)


def test_polymul_types_and_transforms():
    for d1, d2 in [(I32, I32), (np.uint8, np.int8), (np.float16, np.float16), (F32, C64)]:
        compare_types(jnp.polymul, jnp_ref.polymul, rand(RNG, (3,), d1), rand(RNG, (2,), d2))
    compare_transforms(jnp.polymul, jnp_ref.polymul, [rand(RNG, (4,), F32),
                                                      rand(RNG, (3,), F32)], RNG)
    # trimming under grad: the coefficients are concrete there
    a, b = np.array([0, 1.5, 2], F32), rand(RNG, (3,), F32)
    f = lambda mod: lambda u: mod.polymul(u, b, trim_leading_zeros=True).sum()
    assert_same(fungrad.grad(f(jnp))(a), jax.grad(f(jnp_ref))(a), harness.GRAD_TOL)


def test_polymul_errors():
    vec = np.ones((3,), F32)
    _raises_like("polymul", [np.float32(2), vec], {}, ValueError, "polymul: a1 must be a 1-d",
                 jax_differs=True)
    _raises_like("polymul", [vec, np.ones((2, 2), F32)], {}, ValueError,
                 "polymul: a2 must be a 1-d")
    with pytest.raises(fungrad.errors.ConcretizationTypeError, match="trim_leading_zeros"):
        fungrad.jit(lambda u: jnp.polymul(u, u, trim_leading_zeros=True))(vec)


# --------------------------------------------------------------------------- polydiv

# (u, v, whether to check trim_leading_zeros=True too, as for polymul)
DIV_CASES = [(np.array([5, 7, 9], I32), np.array([4, 1], I32), True),
             (rand(RNG, (6,), F32), rand(RNG, (3,), F32) + 3, False),
             (np.array([1, 3, 2], F32), np.array([1, 1], F32), True),  # remainder 0: trimmed away
             (np.array([2, 1], F32), np.array([1, 2, 3], F32), False),  # deg u < deg v
             (np.array([2, 1], F32), np.array([4], F32), False),
             (np.zeros((0,), F32), np.array([1, 2], F32), False),
             (np.array([1, 2, 3], C64), np.array([1j, 1], C64), False),
             (np.array([1, 2, 3], F32), np.array([0, 1], F32), False)]  # v[0] = 0: inf, nan


@pytest.mark.parametrize("case", range(len(DIV_CASES)))
def test_polydiv(case):
    u, v, trim = DIV_CASES[case]
    compare(jnp.polydiv, jnp_ref.polydiv, u, v)
    if trim:
        harness.compare(*_both("polydiv", trim_leading_zeros=True), u, v)


def test_polydiv_types_and_transforms():
    for d1, d2 in [(I32, I32), (np.uint8, np.int8), (np.float16, F32), (F32, C64)]:
        compare_types(jnp.polydiv, jnp_ref.polydiv, rand(RNG, (4,), d1), rand(RNG, (2,), d2))
    u, v = rand(RNG, (5,), F32), rand(RNG, (3,), F32)
    v[0] = 2.5
    compare_transforms(jnp.polydiv, jnp_ref.polydiv, [u, v], RNG)


def test_polydiv_errors():
    vec = np.ones((3,), F32)
    _raises_like("polydiv", [np.float32(2), vec], {}, ValueError, "polydiv: u must be a 1-d",
                 jax_differs=True)
    _raises_like("polydiv", [np.ones((3, 2), F32), vec], {}, ValueError,
                 "polydiv: u must be a 1-d")
    _raises_like("polydiv", [vec, np.zeros((0,), F32)], {}, ValueError, "polydiv: the divisor v",
                 jax_differs=True)
    with pytest.raises(fungrad.errors.ConcretizationTypeError, match="polydiv"):
        fungrad.jit(lambda u: jnp.polydiv(u, u[:2], trim_leading_zeros=True))(vec)


# --------------------------------------------------------------------------- polyder, polyint

@pytest.mark.parametrize("m", [0, 1, 2, 5])
def test_polyder(m):
    compare(*_both("polyder", m=m), rand(RNG, (5,), F32))
    compare(*_both("polyder", m=m), np.array([2, -5, 3, -1], I32))
    compare(lambda p: jnp.polyder(p, m), lambda p: jnp_ref.polyder(p, m),
            np.array([1, 2j, 3], C64))


def test_polyder_types_and_transforms():
    for dt in (np.uint8, np.int16, np.float16, np.bool_):
        compare_types(jnp.polyder, jnp_ref.polyder, rand(RNG, (4,), dt))
    compare(*_both("polyder", m=0), np.float32(3))             # m=0 returns p as it is
    compare(*_both("polyder", m=np.int64(2)), rand(RNG, (4,), F32))
    compare_transforms(*_both("polyder", m=2), [rand(RNG, (6,), F32)], RNG)


def test_polyder_errors():
    p = np.ones((4,), F32)
    _raises_like("polyder", [p], {"m": -1}, ValueError, "polyder: the order of the derivative")
    _raises_like("polyder", [p], {"m": 1.5}, TypeError, "polyder: m must be a static integer")
    _raises_like("polyder", [np.float32(3)], {}, ValueError, "polyder: p must be a 1-d",
                 jax_differs=True)
    # jax broadcasts a 2-d p against the 1-d coefficients (a meaningless result): fungrad raises
    with pytest.raises(ValueError, match="polyder: p must be a 1-d"):
        jnp.polyder(np.ones((3, 1), F32))


POLYINT_CASES = [({}, None), ({"m": 2}, None), ({"m": 0}, None), ({"k": 4.0}, None),
                 ({"m": 2}, np.array([4, 5], F32)), ({"m": 3}, np.array([1.5], F32)),
                 ({"m": 2}, np.float32(-2)), ({"m": 1}, np.array(2 + 1j, C64))]


@pytest.mark.parametrize("case", range(len(POLYINT_CASES)))
def test_polyint(case):
    kw, k = POLYINT_CASES[case]
    for p in (rand(RNG, (4,), F32), np.array([12, 12, 6], I32)):
        if k is None:
            compare(*_both("polyint", **kw), p)
        else:  # k is an array: traced under jit
            compare(lambda q, c: jnp.polyint(q, k=c, **kw),
                    lambda q, c: jnp_ref.polyint(q, k=c, **kw), p, k)


def test_polyint_types_and_transforms():
    for dt in (np.uint8, np.int16, np.float16, np.bool_):
        compare_types(jnp.polyint, jnp_ref.polyint, rand(RNG, (4,), dt))
    compare(*_both("polyint"), np.zeros((0,), F32))
    compare(*_both("polyint", m=0), np.int32(3))              # m=0 returns p as it is
    compare_transforms(lambda p, k: jnp.polyint(p, m=2, k=k),
                       lambda p, k: jnp_ref.polyint(p, m=2, k=k),
                       [rand(RNG, (4,), F32), rand(RNG, (2,), F32)], RNG)


def test_polyint_errors():
    p = np.ones((4,), F32)
    _raises_like("polyint", [p], {"m": -1}, ValueError, "polyint: the order of the integral")
    _raises_like("polyint", [p], {"m": 1.0}, TypeError, "polyint: m must be a static integer")
    for k in (np.ones(3, F32), np.ones((2, 1), F32)):
        _raises_like("polyint", [p], {"m": 2, "k": k}, ValueError, "polyint: k must be")
    _raises_like("polyint", [p], {"m": 0, "k": np.ones(2, F32)}, ValueError, "polyint: k must")
    for bad in (np.float32(3), np.ones((2, 2), F32)):
        _raises_like("polyint", [bad], {}, ValueError, "polyint: p must be a 1-d",
                     jax_differs=True)
    _raises_like("polyint", [p], {"m": 2, "k": [1.0, 2.0]}, TypeError, "polyint")


# --------------------------------------------------------------------------- polyfit

X = np.linspace(-1, 1, 9).astype(F32)
Y1 = (X ** 2 - 0.5 * X + rand(RNG, (9,), F32, -0.1, 0.1)).astype(F32)
Y2 = np.stack([Y1, rand(RNG, (9,), F32)], axis=1)
W = rand(RNG, (9,), F32, 0.5, 1.5)
# the even cases are weighted
FIT_CASES = [(Y1, {}), (Y2, {}), (Y1, {"full": True}), (Y2, {"full": True}),
             (Y1, {"cov": True}), (Y2, {"cov": True}), (Y2, {"cov": "unscaled"}),
             (Y1, {"cov": "unscaled"}), (Y1, {"rcond": 0.1, "full": True}),
             (Y1, {"full": True, "cov": True}), (Y1, {"deg": 0}), (Y1, {"deg": 8})]


@pytest.mark.parametrize("case", range(len(FIT_CASES)))
def test_polyfit(case):
    y, kw = FIT_CASES[case]
    kw = {"deg": 2, **kw}
    if case % 2:
        compare(*_both("polyfit", **kw), X, y, table=LOOSE)
    else:  # weighted (the weights are traced under jit)
        compare(lambda a, b, c: jnp.polyfit(a, b, w=c, **kw),
                lambda a, b, c: jnp_ref.polyfit(a, b, w=c, **kw), X, y, W, table=LOOSE)


def test_polyfit_types_and_transforms():
    yi, wi = (Y1 * 4).astype(I32), W.astype(I32) + 1
    compare(lambda a, b, c: jnp.polyfit(a, b, 2, w=c),              # int y and w
            lambda a, b, c: jnp_ref.polyfit(a, b, 2, w=c), X, yi, wi, table=LOOSE)
    compare(*_both("polyfit", deg=2, rcond=1e-6), np.arange(6, dtype=I32), Y1[:6],
            table=LOOSE)                                            # int x, explicit rcond
    # a float deg is truncated, as by jax and NumPy; NumPy integer degs are static too
    compare_types(*_both("polyfit", deg=2.5), X, Y1)
    assert_same(jnp.polyfit(X, Y1, 2.5), jnp.polyfit(X, Y1, 2))
    assert_same(jnp.polyfit(X, Y1, np.int64(1)), jnp.polyfit(X, Y1, 1))
    compare_types(*_both("polyfit", deg=2, full=True), X.astype(np.float16), Y1)
    compare_types(*_both("polyfit", deg=1, cov=True), X.astype(C64), Y2)
    with harness.x64():  # float32 data keeps float32 results with 64-bit dtypes on
        for kw in ({"full": True}, {"cov": True}, {"cov": "unscaled"}):
            compare_types(*_both("polyfit", deg=2, **kw), X, Y1)
    compare_transforms(lambda a, b, c: jnp.polyfit(a, b, 2, w=c),
                       lambda a, b, c: jnp_ref.polyfit(a, b, 2, w=c), [X, Y2, W], RNG)


def test_polyfit_errors():
    def raises(args, kw, error, match):
        _raises_like("polyfit", args, kw, error, match)
    raises([X, Y1, -1], {}, ValueError, "polyfit: expected deg >= 0")
    with pytest.raises(TypeError, match="polyfit: deg must be a static integer"):
        jnp.polyfit(X, Y1, None)
    raises([X[:, None], Y1, 2], {}, TypeError, "polyfit: expected a 1-d vector for x")
    raises([np.float32(1), Y1, 2], {}, TypeError, "polyfit: expected a 1-d vector for x")
    raises([X[:0], Y1[:0], 2], {}, TypeError, "polyfit: expected a non-empty vector for x")
    raises([X, Y1[:, None, None], 2], {}, TypeError, "polyfit: expected a 1-d or 2-d array for y")
    raises([X, Y1[:8], 2], {}, TypeError, "polyfit: expected x and y to have the same length")
    raises([X, Y1, 2], {"w": W[:, None]}, TypeError, "polyfit: expected a 1-d array for the")
    raises([X, Y1, 2], {"w": W[:8]}, TypeError, "polyfit: expected w and y to have the same")
    raises([X[:3], Y1[:3], 2], {"cov": True}, ValueError, "polyfit: the number of data points")
    raises([np.arange(9, dtype=I32), Y1, 2], {}, ValueError, "polyfit: x of dtype int32")
    raises([X, [1.0] * 9, 2], {}, TypeError, "polyfit")


# --------------------------------------------------------------------------- roots

def _sorted(r):
    """Roots in a canonical order: by real part, then imaginary part (each rounded, so that
    a conjugate pair whose real parts differ in the last bits sorts the same way), NaNs last."""
    r = np.asarray(r)
    return r[np.lexsort((np.round(r.imag, 3), np.round(r.real, 3), np.isnan(r)))]


def _compare_roots(p, **kw):
    """``roots(p, **kw)`` of fungrad, eager and (unless it needs concrete values) jitted,
    against jax's, both sorted."""
    if kw.get("strip_zeros", True):
        ref = jnp_ref.roots(jnp_ref.asarray(p), **kw)
    else:
        ref = jax.jit(lambda q: jnp_ref.roots(q, **kw),
                      compiler_options=harness.QUICK_COMPILE)(jnp_ref.asarray(p))
    outs = [jnp.roots(jnp.asarray(p), **kw)]
    if not kw.get("strip_zeros", True):
        outs.append(fungrad.jit(lambda q: jnp.roots(q, **kw))(jnp.asarray(p)))
    for out in outs:
        assert out.shape == ref.shape and out.dtype == ref.dtype, (out, ref)
        assert bool(out.weak_type) == bool(ref.weak_type)
        r, t = harness.tol(ref.dtype, LOOSE)
        np.testing.assert_allclose(_sorted(out), _sorted(ref), rtol=r, atol=t)


ROOTS_CASES = [np.array([1, 2, 3], I32), np.array([1, -6, 11, -6], F32),
               rand(RNG, (6,), F32) + np.array([3, 0, 0, 0, 0, 0], F32),
               np.array([0, 0, 1, 2], F32), np.array([1, 2, 0, 0], F32),
               np.array([0, 1, 2, 0], F32), np.array([0, 0, 0], F32), np.array([0, 0, 5], F32),
               np.array([1j, 2, 3 - 1j], C64), np.array([2, 1], F32), np.array([3], F32),
               np.zeros((0,), F32), np.float32(2), np.array([True, True])]


@pytest.mark.parametrize("case", range(len(ROOTS_CASES)))
@pytest.mark.parametrize("strip_zeros", [True, False])
def test_roots(case, strip_zeros):
    _compare_roots(ROOTS_CASES[case], strip_zeros=strip_zeros)


def test_roots_transforms():
    # a symmetric function of the roots: independent of the order eig returns them in
    def f(mod, **kw):
        return lambda p: (lambda r: (r * r).sum() + r.prod())(mod.roots(p, **kw))
    p = np.array([1.5, -0.5, 2.0, 1.0], F32)
    compare_transforms(f(jnp, strip_zeros=False), f(jnp_ref, strip_zeros=False), [p], RNG)
    # stripping zeros under grad (the coefficients are concrete there): the stripped leading
    # zero gets a zero gradient, the others the gradient just checked against jax's
    g = fungrad.grad(lambda q: f(jnp)(q).real)(np.concatenate([[0], p]).astype(F32))
    assert_same(g, np.concatenate([[0], fungrad.grad(
        lambda q: f(jnp, strip_zeros=False)(q).real)(p)]).astype(F32))
    # strip_zeros=False batches, leading zeros (NaN roots) included
    batch = np.stack([p, np.array([0, 1, -3, 2], F32), np.zeros(4, F32)])
    out = fungrad.vmap(lambda q: jnp.roots(q, strip_zeros=False))(batch)
    ref = jax.jit(jax.vmap(lambda q: jnp_ref.roots(q, strip_zeros=False)))(batch)
    for a, b in zip(np.asarray(out), np.asarray(ref)):
        np.testing.assert_allclose(_sorted(a), _sorted(b), *harness.tol(C64, LOOSE))


def test_roots_errors():
    _raises_like("roots", [np.ones((2, 2), F32)], {}, ValueError, "roots: p must be a rank-1")
    with pytest.raises(fungrad.errors.ConcretizationTypeError, match="strip_zeros=False"):
        fungrad.jit(jnp.roots)(np.ones(3, F32))
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(jnp_ref.roots)(np.ones(3, F32))
