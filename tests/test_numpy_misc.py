"""Quantiles and medians, index helpers (unravel_index, ix_, mgrid, insert, ...),
function lifting (vectorize, apply_along_axis, piecewise), set operations, polynomials,
trapezoid/gradient and integer gcd/lcm against jax.numpy."""
import functools

import jax.numpy as jnp_ref
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


RNG = np.random.default_rng(7)
F32, I32 = np.float32, np.int32

QUANTILE_CASES = [
    ("median", {}), ("median", {"axis": 1}), ("median", {"axis": (0, 2), "keepdims": True}),
    ("nanmedian", {"axis": -1}), ("quantile", {"q": 0.3}), ("quantile", {"q": [0.1, 0.9],
                                                                         "axis": 0}),
    ("quantile", {"q": 0.25, "axis": 1, "method": "lower"}),
    ("quantile", {"q": 0.25, "axis": 1, "method": "higher"}),
    ("quantile", {"q": 0.6, "axis": 2, "method": "nearest"}),
    ("quantile", {"q": [0.5, 0.7], "axis": (1, 2), "method": "midpoint", "keepdims": True}),
    ("nanquantile", {"q": [0.2, 0.5], "axis": 1}), ("percentile", {"q": 40, "axis": 0}),
    ("nanpercentile", {"q": [10, 95]}),
]


@pytest.mark.parametrize("case", QUANTILE_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_quantiles(case):
    name, kw = case
    kw = dict(kw)
    q = kw.pop("q", None)
    x = rand(RNG, (3, 4, 5), F32)
    x[0, 1, 2] = np.nan
    x[2, 0, :] = np.nan
    args = () if q is None else (np.asarray(q, F32),)
    compare_all([(lambda a, *r: getattr(jnp, name)(a, *r, **kw),
                  lambda a, *r: getattr(jnp_ref, name)(a, *r, **kw), data, *args)
                 for data in (x, np.nan_to_num(x))])


def test_quantile_types_and_grads():
    compare_types(jnp.median, jnp_ref.median, rand(RNG, (5,), I32))
    compare_transforms(lambda a: jnp.quantile(a, 0.3, axis=1), lambda a: jnp_ref.quantile(
        a, 0.3, axis=1), [rand(RNG, (3, 6), F32)], RNG)


def test_index_helpers():
    idx = np.array([0, 5, 11, 13, -1], I32)
    rows, cols = np.array([0, 2, 1], I32), np.array([3, 0, 1], I32)
    # 'raise' checks concrete values: run eagerly
    harness.compare(lambda r, c: jnp.ravel_multi_index((r, c), (3, 4), mode="raise"),
                    lambda r, c: jnp_ref.ravel_multi_index((r, c), (3, 4), mode="raise"),
                    rows, cols)
    cases = [(lambda i: jnp.unravel_index(i, (3, 4)),
              lambda i: jnp_ref.unravel_index(i, (3, 4)), idx)]
    cases += [(lambda r, c, mode=mode: jnp.ravel_multi_index((r, c), (3, 4), mode=mode),
               lambda r, c, mode=mode: jnp_ref.ravel_multi_index((r, c), (3, 4), mode=mode),
               rows, cols) for mode in ("clip", "wrap")]
    cases += [
        (lambda r, c: jnp.ravel_multi_index((r, c), (3, 4), mode="clip", order="F"),
         lambda r, c: jnp_ref.ravel_multi_index((r, c), (3, 4), mode="clip", order="F"),
         rows, cols),
        (lambda a, b: jnp.ix_(a, b), lambda a, b: jnp_ref.ix_(a, b), rows, cols)]
    assert_same(jnp.mgrid[0:3, 1:5:2], jnp_ref.mgrid[0:3, 1:5:2])
    assert_same(jnp.ogrid[0:2, 0:1:3j], jnp_ref.ogrid[0:2, 0:1:3j])
    assert_same(jnp.mgrid[0:1:5j], jnp_ref.mgrid[0:1:5j])
    x = rand(RNG, (3, 4), F32)
    cases += [
        (lambda a: jnp.fill_diagonal(a, 2.0, inplace=False),
         lambda a: jnp_ref.fill_diagonal(a, 2.0, inplace=False), x),
        (lambda a: jnp.fill_diagonal(a, np.array([1.0, 2.0], F32), inplace=False),
         lambda a: jnp_ref.fill_diagonal(a, np.array([1.0, 2.0], F32), inplace=False), x.T)]
    for obj, values, axis in [(1, 9.0, None), (np.array([0, 2, 2]), np.array([7., 8., 9.],
                              F32), 1), (2, np.array([5.0, 6.0, 7.0], F32), 1),
                              (slice(0, 4, 2), 0.5, 1)]:
        cases.append(tuple(functools.partial(lib.insert, obj=obj, values=values, axis=axis)
                           for lib in (jnp, jnp_ref)) + (x,))
    compare_all(cases + [(lambda a: jnp.resize(a, (5, 3)), lambda a: jnp_ref.resize(a, (5, 3)),
                          x)])
    assert jnp.s_[1:2] == np.s_[1:2] and jnp.index_exp[0] == np.index_exp[0]


def test_vectorize_and_apply():
    def cov1(a, b):
        return jnp.dot(a - a.mean(), b - b.mean())

    def cov1_ref(a, b):
        return jnp_ref.dot(a - a.mean(), b - b.mean())
    a, b = rand(RNG, (2, 3, 5), F32), rand(RNG, (3, 5), F32)
    cases = [
        (jnp.vectorize(cov1, signature="(n),(n)->()"),
         jnp_ref.vectorize(cov1_ref, signature="(n),(n)->()"), a, b),
        (jnp.vectorize(lambda u, v: u * 2 + v), jnp_ref.vectorize(lambda u, v: u * 2 + v), a, b),
        (jnp.vectorize(lambda u, k: u ** k, excluded={1}),
         jnp_ref.vectorize(lambda u, k: u ** k, excluded={1}), a, 2)]
    for axis in (0, 1, -1):
        cases.append((lambda x, axis=axis: jnp.apply_along_axis(lambda r: r * r.sum(), axis, x),
                      lambda x, axis=axis: jnp_ref.apply_along_axis(lambda r: r * r.sum(), axis,
                                                                    x), a))
    cases.append((lambda x: jnp.apply_over_axes(jnp.sum, x, (0, 2)),
                  lambda x: jnp_ref.apply_over_axes(jnp_ref.sum, x, (0, 2)), a))
    x = rand(RNG, (6,), F32)
    compare_all(cases + [
        (lambda v: jnp.piecewise(v, [v < 0, v > 1], [lambda t: -t, lambda t: t * 10, 0.5]),
         lambda v: jnp_ref.piecewise(v, [v < 0, v > 1], [lambda t: -t, lambda t: t * 10, 0.5]),
         x),
        (lambda v: jnp.piecewise(v, [v < 0, v < 1], [1.0, 2.0]),
         lambda v: jnp_ref.piecewise(v, [v < 0, v < 1], [1.0, 2.0]), x)])


def test_set_operations():
    a = np.array([3, 1, 2, 3, 5, 1], I32)
    b = np.array([2, 7, 3], I32)
    for name in ("unique_values", "unique_counts", "unique_inverse", "unique_all"):
        harness.compare(getattr(jnp, name), getattr(jnp_ref, name), a)
    # with size= they run under jit (compare checks that too) and pad as JAX's: the minimum
    # (NaN if one is kept) or 0 by default; a NaN equals nothing, but each array's NaNs
    # count once. Without size= the result's size depends on the values: jax's reference
    # runs eagerly.
    x, y = np.array([1.0, np.nan, 4.0, np.nan, 0.0], F32), np.array([np.nan, 2.0, 4.0], F32)
    cases = [(x, y), (a, b), (a, a)]  # (a, a): every result but union1d's is empty
    sized = [(lambda v: jnp.unique_counts(v, size=6, fill_value=0),
              lambda v: jnp_ref.unique_counts(v, size=6, fill_value=0), a)]
    for name in ("union1d", "intersect1d", "setdiff1d", "setxor1d"):
        for u, v in cases:
            harness.compare(getattr(jnp, name), getattr(jnp_ref, name), u, v)
        for kwargs in ({"size": 7}, {"size": 2, "fill_value": -1}):
            sized += [(functools.partial(getattr(jnp, name), **kwargs),
                       functools.partial(getattr(jnp_ref, name), **kwargs), u, v)
                      for u, v in cases]
    harness.compare(lambda u, v: jnp.setxor1d(u, v, assume_unique=True),
                    lambda u, v: jnp_ref.setxor1d(u, v, assume_unique=True), a, b)
    compare_all(sized + [(lambda u, v: jnp.setxor1d(u, v, assume_unique=True, size=5),
                          lambda u, v: jnp_ref.setxor1d(u, v, assume_unique=True, size=5),
                          a, b)])


def test_intersect1d_with_indices_of_first_occurrences():
    a = np.array([3, 1, 2, 3, 5, 1], I32)
    b = np.array([2, 7, 3, 3, 1], I32)
    x, y = np.array([1.0, np.nan, 4.0, np.nan, 0.0], F32), np.array([np.nan, 2.0, 4.0, 0.0], F32)
    # without size= jax's reference runs eagerly (the result's size depends on the values)
    ours = functools.partial(jnp.intersect1d, return_indices=True)
    theirs = functools.partial(jnp_ref.intersect1d, return_indices=True)
    sized = []
    for u, v in [(a, b), (x, y), (a, a), (a, b.astype(F32)), (a, np.array([], I32))]:
        harness.compare(ours, theirs, u, v)
        if v.size:  # (jax's sized version fails on an empty second array)
            sized += [(functools.partial(ours, **kwargs), functools.partial(theirs, **kwargs),
                       u, v) for kwargs in ({"size": 7}, {"size": 2, "fill_value": -1})]
    compare_all(sized)
    harness.compare(lambda p, q: jnp.intersect1d(p, q, assume_unique=True, return_indices=True),
                    lambda p, q: jnp_ref.intersect1d(p, q, assume_unique=True,
                                                     return_indices=True), x, y)


def test_polynomials_and_calculus():
    p, x = rand(RNG, (4,), F32), rand(RNG, (2, 3), F32)
    y = rand(RNG, (3, 5), F32)
    xs = np.sort(rand(RNG, (5,), F32))
    compare_all([
        (jnp.polyval, jnp_ref.polyval, p, x),
        (lambda v: jnp.vander(v), lambda v: jnp_ref.vander(v), p),
        (lambda v: jnp.vander(v, 2, increasing=True),
         lambda v: jnp_ref.vander(v, 2, increasing=True), np.array([1, 2, 3], I32)),
        (jnp.trapezoid, jnp_ref.trapezoid, y),
        (lambda v: jnp.trapezoid(v, dx=0.5, axis=0), lambda v: jnp_ref.trapezoid(
            v, dx=0.5, axis=0), y),
        (lambda v, t: jnp.trapezoid(v, t), lambda v, t: jnp_ref.trapezoid(v, t), y, xs),
        (jnp.gradient, jnp_ref.gradient, y),
        (lambda v: jnp.gradient(v, 2.0, axis=1), lambda v: jnp_ref.gradient(v, 2.0, axis=1), y)])
    compare_transforms(lambda v, c: jnp.polyval(c, v), lambda v, c: jnp_ref.polyval(c, v),
                       [x, p], RNG)


def test_gcd_lcm():
    a = np.array([12, -18, 0, 7, 0], I32)
    b = np.array([8, 12, 5, -21, 0], I32)
    compare_all([(jnp.gcd, jnp_ref.gcd, a, b), (jnp.lcm, jnp_ref.lcm, a, b),
                 (lambda u: jnp.gcd(u, 6), lambda u: jnp_ref.gcd(u, 6), a)])
    out = fungrad.vmap(jnp.gcd)(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_array_equal(np.asarray(out), np.gcd(a, b))
    assert jnp.iterable([1]) and not jnp.iterable(1)
    assert isinstance(jnp.ones(2), jnp.ndarray) and jnp.bool is jnp.bool_


def test_array_api_aliases_and_index_helpers_match_jax():
    """Array-API spellings and the ``*_from`` index helpers, against jax."""
    x = rand(RNG, (3, 4), F32)
    i = rand(RNG, (5,), I32, 0, 8)
    s = np.array([1, 2, 3, 0, 4], I32)
    compare_all([
        (jnp.bitwise_invert, jnp_ref.bitwise_invert, i),
        (jnp.bitwise_left_shift, jnp_ref.bitwise_left_shift, i, s),
        (jnp.bitwise_right_shift, jnp_ref.bitwise_right_shift, i, s),
        (lambda a, b: jnp.concat([a, b], axis=1), lambda a, b: jnp_ref.concat([a, b], axis=1),
         x, x),
        (jnp.isreal, jnp_ref.isreal, x),
        (jnp.isreal, jnp_ref.isreal, (x + 1j * (x > 0)).astype(np.complex64))])
    sq = rand(RNG, (4, 4), F32)
    for name in ("diag_indices_from", "tril_indices_from", "triu_indices_from"):
        assert_same(getattr(jnp, name)(jnp.asarray(sq)), getattr(jnp_ref, name)(sq))
    assert_same(jnp.tril_indices_from(jnp.asarray(sq), k=1), jnp_ref.tril_indices_from(sq, k=1))
