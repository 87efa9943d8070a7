"""where (3-arg and 1-arg with size=), nonzero/argwhere/flatnonzero, select, choose,
compress/extract, searchsorted/digitize, bincount, isin, sorting (sort, argsort stable and
descending, lexsort, partition, unique), whole-array comparisons, dtype queries and the
misc functions (diff, interp, convolve, cov) against jax.numpy; jit/vmap-compatibility of
the size= forms."""
import functools

import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import harness
from harness import assert_same, compare_all, compare_types, rand

# jax's derivatives and batched results, in one quickly compiled program per case
compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)
# jax's values, in one quickly compiled program per case (or per test: compare_all)
compare = harness.compare_quick


RNG = np.random.default_rng(5)
F32, BF16, I32, B = np.float32, ml_dtypes.bfloat16, np.int32, np.bool_


def test_where():
    c = rand(RNG, (3, 4), B)
    x, y = rand(RNG, (3, 4), F32), rand(RNG, (4,), F32)
    compare_all([
        (jnp.where, jnp_ref.where, c, x, y),
        (lambda a, b: jnp.where(a, b, 0), lambda a, b: jnp_ref.where(a, b, 0), c, x),
        (lambda a, b: jnp.where(a > 0, 1, b), lambda a, b: jnp_ref.where(a > 0, 1, b), x,
         rand(RNG, (4,), I32)),
        (lambda a: jnp.where(a, 1.0, 2), lambda a: jnp_ref.where(a, 1.0, 2),
         rand(RNG, (3,), I32))])
    compare_types(lambda: jnp.where(True, 1, 2.0), lambda: jnp_ref.where(True, 1, 2.0))
    compare_transforms(lambda a, b: jnp.where(a > 0, a * b, -b),
                       lambda a, b: jnp_ref.where(a > 0, a * b, -b), [x, y], RNG)


def test_nonzero_family():
    x = rand(RNG, (3, 4), I32, -1, 1)
    # data-dependent output sizes: the jax references run eagerly
    harness.compare(jnp.nonzero, jnp_ref.nonzero, x)
    harness.compare(jnp.where, jnp_ref.where, x)
    harness.compare(jnp.argwhere, jnp_ref.argwhere, x)
    harness.compare(jnp.flatnonzero, jnp_ref.flatnonzero, x)
    compare_all([(functools.partial(jnp.nonzero, size=size, fill_value=fill),
                  functools.partial(jnp_ref.nonzero, size=size, fill_value=fill), x)
                 for size, fill in [(3, None), (20, None), (20, -1), (20, (7, 8))]] + [
        (lambda a: jnp.argwhere(a, size=5, fill_value=9),
         lambda a: jnp_ref.argwhere(a, size=5, fill_value=9), x),
        (lambda a: jnp.flatnonzero(a, size=2), lambda a: jnp_ref.flatnonzero(a, size=2), x)])
    harness.compare(jnp.nonzero, jnp_ref.nonzero, np.zeros((0, 2), F32))


def test_size_forms_work_under_transformations():
    """With size= the shapes are static, so nonzero/unique/compress trace and batch."""
    xs = rand(RNG, (3, 6), I32, -1, 1)
    out = fungrad.vmap(lambda a: jnp.nonzero(a, size=4, fill_value=-1)[0])(jnp.asarray(xs))
    ref = np.stack([np.asarray(jnp_ref.nonzero(r, size=4, fill_value=-1)[0]) for r in xs])
    np.testing.assert_array_equal(np.asarray(out), ref)
    jaxpr = fungrad.make_jaxpr(lambda a: jnp.unique(a, size=3, fill_value=0))(xs[0])
    assert "sort" in str(jaxpr)
    with pytest.raises(TypeError, match="size argument must be given"):
        fungrad.make_jaxpr(jnp.nonzero)(xs[0])
    with pytest.raises(TypeError, match="unique: the number of unique values is data dependent"):
        fungrad.make_jaxpr(jnp.unique)(xs[0])


def test_select_choose_compress():
    x = rand(RNG, (3, 4), F32)
    idx = RNG.integers(0, 3, size=(3, 4)).astype(I32)
    cond = np.array([True, False, True])
    # 'raise' checks concrete values, and compress and extract without size= give a result
    # whose size depends on them: those references run eagerly
    harness.compare(lambda i, a: jnp.choose(i, [a, -a, a * 2], mode="raise"),
                    lambda i, a: jnp_ref.choose(i, [a, -a, a * 2], mode="raise"), idx, x)
    harness.compare(lambda a: jnp.compress(cond, a, axis=0),
                    lambda a: jnp_ref.compress(cond, a, axis=0), x)
    harness.compare(lambda a: jnp.extract(a > 0, a), lambda a: jnp_ref.extract(a > 0, a), x)
    compare_all([
        (lambda a: jnp.select([a < -1, a > 1], [a, a * 2], -5.0),
         lambda a: jnp_ref.select([a < -1, a > 1], [a, a * 2], -5.0), x),
        (lambda a: jnp.select([a > 0], [1]), lambda a: jnp_ref.select([a > 0], [1]), x)] + [
        (lambda i, a, mode=mode: jnp.choose(i, [a, -a, a * 2], mode=mode),
         lambda i, a, mode=mode: jnp_ref.choose(i, [a, -a, a * 2], mode=mode), idx, x)
        for mode in ("wrap", "clip")] + [
        (lambda a: jnp.compress(cond, a, axis=1, size=2),
         lambda a: jnp_ref.compress(cond, a, axis=1, size=2), x),
        (lambda a: jnp.extract(a > 0, a, size=5, fill_value=-1.0),
         lambda a: jnp_ref.extract(a > 0, a, size=5, fill_value=-1.0), x)])


def _searchsorted(lib, **kw):
    """``lib``'s searchsorted with the keywords ``kw``."""
    return functools.partial(lib.searchsorted, **kw)


def test_searchsorted_digitize_bincount_isin():
    a = np.sort(rand(RNG, (7,), F32))
    a[3] = a[2]
    v = np.concatenate([rand(RNG, (5,), F32, -3, 3), a[:3]])
    cases = []
    for side in ("left", "right"):
        for kw in ({"side": side}, {"side": side, "method": "compare_all"}):
            cases.append((_searchsorted(jnp, **kw), _searchsorted(jnp_ref, **kw), a, v))
    perm = RNG.permutation(7).astype(I32)
    cases += [(lambda s, q, p: jnp.searchsorted(s, q, sorter=p),
               lambda s, q, p: jnp_ref.searchsorted(s, q, sorter=p), a[np.argsort(perm)], v, perm),
              (lambda s: s.searchsorted(0.5), lambda s: s.searchsorted(0.5), a)]
    # NaNs sort last (a NaN query goes after everything), -0 equals +0, complex values order
    # by real part, then imaginary part: the order jnp.sort leaves
    special = np.array([-np.inf, -1, -0.0, 0, 1, 2, np.nan, np.nan], F32)
    queries = np.array([np.nan, -np.nan, 0, -0.0, 1, np.inf, -np.inf, 5], F32)
    c = np.array([1, 1 + 1j, 2 - 1j, 2, np.nan], np.complex64)
    cq = np.array([1.5, 1 + 0.5j, 2, 0, np.nan, 1 + np.nan * 1j], np.complex64)
    for side in ("left", "right"):
        for method in ("scan", "sort", "compare_all"):
            ours, theirs = (_searchsorted(lib, side=side, method=method) for lib in (jnp, jnp_ref))
            cases += [(ours, theirs, s, queries) for s in (special, special[:6], special[:0])]
            cases.append((ours, theirs, c, cq))
    for right in (False, True):
        cases += [(lambda q, s, right=right: jnp.digitize(q, s, right),
                   lambda q, s, right=right: jnp_ref.digitize(q, s, right), v, a),
                  (lambda q, s, right=right: jnp.digitize(q, s[::-1], right),
                   lambda q, s, right=right: jnp_ref.digitize(q, s[::-1], right), v, a)]
    ints = np.array([0, 1, 1, 3, 2, 1, 7], I32)
    # without length= bincount's result's size depends on the values: jax runs it eagerly
    harness.compare(jnp.bincount, jnp_ref.bincount, ints)
    harness.compare(lambda i: jnp.bincount(i, minlength=10),
                    lambda i: jnp_ref.bincount(i, minlength=10), ints)
    cases += [(lambda i, w: jnp.bincount(i, w, length=5),
               lambda i, w: jnp_ref.bincount(i, w, length=5), ints, rand(RNG, (7,), F32)),
              (lambda e, t: jnp.isin(e, t), lambda e, t: jnp_ref.isin(e, t),
               rand(RNG, (3, 4), I32), np.array([0, 2, -3], I32)),
              (lambda e, t: jnp.isin(e, t, invert=True),
               lambda e, t: jnp_ref.isin(e, t, invert=True), rand(RNG, (5,), I32),
               np.array([[1, 2]], I32))]
    compare_all(cases)


# ----------------------------------------------------------------------------- sorting

def test_sort_argsort():
    x = rand(RNG, (3, 6), F32)
    x[0, 1] = x[0, 4] = x[0, 2]  # ties: stability matters for argsort
    x[1, 3] = np.nan
    cases = [(functools.partial(getattr(jnp, name), axis=axis),
              functools.partial(getattr(jnp_ref, name), axis=axis), x)
             for axis in (None, 0, -1) for name in ("sort", "argsort")]
    compare_all(cases + [
        (lambda a: jnp.sort(a, descending=True), lambda a: jnp_ref.sort(a, descending=True), x),
        (lambda a: jnp.argsort(a, descending=True),
         lambda a: jnp_ref.argsort(a, descending=True), x),
        (lambda a: jnp.argsort(a, stable=False, descending=True),
         lambda a: jnp_ref.argsort(a, stable=False, descending=True), x[2]),
        (jnp.sort, jnp_ref.sort, rand(RNG, (5,), I32)),
        (jnp.argsort, jnp_ref.argsort, rand(RNG, (6,), B))])
    compare_transforms(lambda a: jnp.sort(a, axis=0), lambda a: jnp_ref.sort(a, axis=0),
                       [rand(RNG, (4, 3), F32)], RNG)


def test_lexsort_partition():
    k1, k2 = rand(RNG, (8,), I32, 0, 1), rand(RNG, (8,), I32, 0, 1)
    cases = [(lambda a, b: jnp.lexsort((a, b)), lambda a, b: jnp_ref.lexsort((a, b)), k1, k2)]
    x = rand(RNG, (3, 7), F32)
    for kth in (0, 3, -1):
        cases += [(functools.partial(jnp.partition, kth=kth),
                   functools.partial(jnp_ref.partition, kth=kth), x),
                  (functools.partial(jnp.argpartition, kth=kth % 3, axis=0),
                   functools.partial(jnp_ref.argpartition, kth=kth % 3, axis=0), x)]
    compare_all(cases + [(lambda a: jnp.partition(a, 2), lambda a: jnp_ref.partition(a, 2),
                          rand(RNG, (6,), np.uint8))])


def test_unique():
    x = np.array([[3, 1, 2], [1, 3, 5]], I32)
    harness.compare(jnp.unique, jnp_ref.unique, x)
    kw = dict(return_index=True, return_inverse=True, return_counts=True)
    harness.compare(lambda a: jnp.unique(a, **kw), lambda a: jnp_ref.unique(a, **kw), x)
    compare_all([(lambda a: jnp.unique(a, size=6, fill_value=-1, **kw),
                  lambda a: jnp_ref.unique(a, size=6, fill_value=-1, **kw), x),
                 (lambda a: jnp.unique(a, size=2), lambda a: jnp_ref.unique(a, size=2), x)])
    f = np.array([1.0, np.nan, 2.0, np.nan, 1.0], F32)
    harness.compare(jnp.unique, jnp_ref.unique, f)
    harness.compare(lambda a: jnp.unique(a, equal_nan=False),
                    lambda a: jnp_ref.unique(a, equal_nan=False), f)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unique_along_an_axis(axis):
    rows = RNG.integers(0, 3, (6, 4)).astype(F32)
    rows[[1, 4]] = rows[0]
    rows[2, 1] = np.nan
    rows[5] = rows[2]  # rows with a NaN: equal with equal_nan (the default), else not
    blocks = RNG.integers(0, 2, (3, 5, 2)).astype(I32)
    kw = dict(return_index=True, return_inverse=True, return_counts=True)
    for x in (rows, blocks):
        for options in ({}, kw, {"equal_nan": False, **kw}):
            harness.compare(lambda a: jnp.unique(a, axis=axis, **options),
                            lambda a: jnp_ref.unique(a, axis=axis, **options), x)
    compare_all([(lambda a: jnp.unique(a, axis=axis, size=7, fill_value=-1, **kw),  # under jit
                  lambda a: jnp_ref.unique(a, axis=axis, size=7, fill_value=-1, **kw), x)
                 for x in (rows, blocks)])


# ----------------------------------------------------------------------------- comparisons

def test_isclose_allclose_equal():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1e-9, 1.0], F32)
    b = np.array([1.0 + 1e-7, np.nan, np.inf, np.inf, 0.0, 1.1], F32)
    cases = []
    for equal_nan in (False, True):
        cases += [(functools.partial(getattr(jnp, name), equal_nan=equal_nan),
                   functools.partial(getattr(jnp_ref, name), equal_nan=equal_nan), a, y)
                  for name, y in (("isclose", b), ("allclose", a), ("array_equal", a))]
    compare_all(cases + [
        (lambda x, y: jnp.isclose(x, y, rtol=0.2), lambda x, y: jnp_ref.isclose(x, y, rtol=0.2),
         a, b),
        (jnp.isclose, jnp_ref.isclose, rand(RNG, (4,), I32), rand(RNG, (4,), I32)),
        (jnp.array_equal, jnp_ref.array_equal, a, a[:3]),
        (jnp.array_equiv, jnp_ref.array_equiv, a[:1], a)])
    # jax raises for shapes that do not broadcast; NumPy (and fungrad) answer False
    assert not jnp.array_equiv(jnp.asarray(a[:2]), jnp.asarray(a)) and not np.array_equiv(a[:2], a)


def test_dtype_queries():
    assert jnp.result_type(jnp.int8, 1.0) == jnp_ref.result_type(jnp_ref.int8, 1.0)
    assert jnp.result_type(1, 2.0) == jnp_ref.result_type(1, 2.0)
    assert jnp.result_type(np.ones(2, np.int16), np.uint16) == jnp_ref.result_type(
        np.ones(2, np.int16), np.uint16)
    assert jnp.result_type(jnp.bfloat16, jnp.float16) == jnp_ref.result_type(
        jnp_ref.bfloat16, jnp_ref.float16)
    # promote_types does not canonicalise (64-bit answers with x64 off) and takes Python's
    # scalar types as weak
    for a, b in [(np.int8, np.uint8), (np.float16, BF16), (np.int32, np.float16), (B, np.int8),
                 ("int32", "int64"), ("int64", "uint64"), ("uint32", "int32"), ("int8", "uint64"),
                 ("float64", np.int8), (np.uint8, int), ("float16", float), (bool, "int8"),
                 (int, float), (np.float32, complex), (bool, bool)]:
        got, want = jnp.promote_types(a, b), jnp_ref.promote_types(a, b)
        assert got == want and type(got) is type(want), (a, b, got, want)
    with pytest.raises(TypeError):
        jnp.promote_types(np.ones(2, np.int16), np.int8)  # arrays are not dtypes
    for a, kind in [(BF16, jnp.floating), (np.int8, jnp.signedinteger), (np.uint8, jnp.integer),
                    (np.float32, jnp.inexact), (B, jnp.number), (jnp.float32, np.float32)]:
        assert jnp.issubdtype(a, kind) == jnp_ref.issubdtype(a, kind), (a, kind)
    for d, kind in [(BF16, "real floating"), (np.int8, "integral"), (B, "bool"),
                    (np.uint8, ("signed integer", "bool")), (np.float32, np.float32)]:
        assert jnp.isdtype(d, kind) == jnp_ref.isdtype(d, kind), (d, kind)
    assert jnp.finfo(jnp.bfloat16).eps == jnp_ref.finfo(jnp_ref.bfloat16).eps
    assert jnp.iinfo(jnp.int8).min == -128 and jnp.can_cast(np.int8, np.int32)
    assert jnp.iscomplexobj(np.zeros(2, np.complex64)) and jnp.isrealobj(jnp.zeros(2))
    assert jnp.isscalar(1.0) and jnp.isscalar(jnp.asarray(1.0)) and not jnp.isscalar(jnp.ones(2))
    assert np.dtype(jnp.int16) == np.int16 and jnp.float32.dtype == np.float32
    compare(lambda a: jnp.astype(a, jnp.bfloat16), lambda a: jnp_ref.astype(a, jnp_ref.bfloat16),
            rand(RNG, (3,), F32))
    assert_same(jnp.iscomplex(jnp.ones(2)), jnp_ref.iscomplex(jnp_ref.ones(2)))


# ----------------------------------------------------------------------------- misc

def test_interp_convolve_cov():
    xp = np.sort(rand(RNG, (6,), F32))
    fp = rand(RNG, (6,), F32)
    x = rand(RNG, (8,), F32, -3, 3)
    cases = [(jnp.interp, jnp_ref.interp, x, xp, fp),
             (lambda a, b, c: jnp.interp(a, b, c, left=-9.0, right=9.0),
              lambda a, b, c: jnp_ref.interp(a, b, c, left=-9.0, right=9.0), x, xp, fp)]
    a, v = rand(RNG, (7,), F32), rand(RNG, (3,), F32)
    short_even, ints = rand(RNG, (2,), F32), np.arange(-2, 4, dtype=np.int32)
    for mode in ("full", "same", "valid"):
        for p_, q_ in ((a, v), (v, a), (short_even, a), (a, short_even), (ints, ints[:3]),
                       (ints[:4], ints)):
            cases += [(functools.partial(getattr(jnp, name), mode=mode),
                       functools.partial(getattr(jnp_ref, name), mode=mode), p_, q_)
                      for name in ("convolve", "correlate")]
        cases.append((functools.partial(jnp.correlate, mode=mode, preferred_element_type=I32),
                      functools.partial(jnp_ref.correlate, mode=mode,
                                        preferred_element_type=I32), ints[:2], ints))
    m = rand(RNG, (3, 5), F32)
    compare_all(cases + [
        (jnp.cov, jnp_ref.cov, m),
        (lambda p: jnp.cov(p, rowvar=False, bias=True), lambda p: jnp_ref.cov(
            p, rowvar=False, bias=True), m),
        (lambda p, q: jnp.cov(p, q), lambda p, q: jnp_ref.cov(p, q), m[0], m[1]),
        (jnp.corrcoef, jnp_ref.corrcoef, m)])
    compare_transforms(lambda p, q: jnp.convolve(p, q), lambda p, q: jnp_ref.convolve(p, q),
                       [a, v], RNG)


def test_interp_with_a_period():
    xp = np.array([190.0, -190.0, 350.0, -350.0], F32)  # unsorted, beyond one period
    fp = rand(RNG, (4,), F32)
    x = np.array([-180.0, -170.0, -185.0, 185.0, -10.0, -5.0, 0.0, 365.0, 720.5], F32)
    compare_all([(functools.partial(jnp.interp, period=period),
                  functools.partial(jnp_ref.interp, period=period), x, xp, fp)
                 for period in (360.0, -360.0)])
    compare_transforms(lambda a, c: jnp.interp(a, xp, c, period=360.0),
                       lambda a, c: jnp_ref.interp(a, xp, c, period=360.0), [x + 0.25, fp], RNG)
    with pytest.raises(ValueError, match="interp: period must be a scalar"):
        jnp.interp(x, xp, fp, period=np.ones(2))


def test_cov_with_sample_weights_and_dtype():
    m = rand(RNG, (3, 6), F32)
    fweights, aweights = np.array([1, 2, 0, 3, 1, 1], np.int32), rand(RNG, (6,), F32, 0.1, 2.0)
    cases = [(functools.partial(jnp.cov, **kw), functools.partial(jnp_ref.cov, **kw), x)
             for kw in ({"fweights": fweights}, {"aweights": aweights},
                        {"ddof": 0, "aweights": aweights},
                        {"fweights": fweights, "aweights": aweights},
                        {"bias": True, "aweights": aweights},
                        {"fweights": fweights, "aweights": aweights, "ddof": 2},
                        {"dtype": np.float16})
             for x in (m, m[0])]
    compare_all(cases + [(jnp.cov, jnp_ref.cov, empty) for empty in (
        np.zeros((0, 3), F32), np.zeros((2, 0), F32), np.zeros((1, 0), F32))])
    compare_transforms(lambda p, w: jnp.cov(p, aweights=w), lambda p, w: jnp_ref.cov(p, aweights=w),
                       [m, aweights], RNG)
    with pytest.raises(TypeError, match="cov: fweights must be integers"):
        jnp.cov(m, fweights=aweights)
    with pytest.raises(ValueError, match="cov: aweights must be 1-d with one weight per sample"):
        jnp.cov(m, aweights=aweights[:4])
