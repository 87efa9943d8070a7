"""histogram, histogram_bin_edges, histogram2d and histogramdd against jax.numpy: counts,
edges, dtypes and weak types eagerly and under jit, every keyword, edge cases, derivatives in
the weights, and errors."""
import functools
import warnings

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import harness
from harness import compare_types, rand

# jax's derivatives, in one quickly compiled program per case
compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)


def compare(fg_fn, jax_fn, *args):
    """``harness.compare`` with the jax reference jitted and quickly compiled: compiling it is
    most of these tests' time. Tests batch several cases into one call to compile less, and
    hand jax the NumPy inputs as they are (converting each first compiles a program too)."""
    ref = jax.jit(jax_fn, compiler_options=harness.QUICK_COMPILE)(*args)
    harness.compare(fg_fn, jax_fn, *args, ref_out=ref)


def batched(lib_fn, cases):
    """One function computing ``lib_fn(*args, **kw)`` for every ``kw`` of ``cases``."""
    return lambda *args: [lib_fn(*args, **kw) for kw in cases]


def each(lib_fn, cases):
    """One function computing ``lib_fn(a, **kw)`` for each of its arguments ``a`` and every
    ``kw`` of ``cases``."""
    return lambda *arrays: [lib_fn(a, **kw) for a in arrays for kw in cases]

RNG = np.random.default_rng(5)
F32, I32 = np.float32, np.int32

DATA_I = np.array([1, 2, 3, 10, 11, 15, 19, 25], I32)
DATA_Y = np.array([2, 5, 6, 8, 13, 16, 17, 18], I32)
# values on every edge of range (0, 4) with 4 bins, below it, above it, and non-finite ones
EDGY = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 4.0, -0.5, 4.5, np.inf, -np.inf, np.nan, 2.5], F32)


HISTOGRAM_CASES = [
    {}, {"bins": 1}, {"bins": 0}, {"bins": 7, "density": True}, {"bins": 3, "range": [-5.0, 12.5]},
    {"bins": 4, "range": (30, 40)}, {"bins": 3, "range": (5, 5)},
    {"bins": 4, "range": (0, 30), "density": True},
]


def test_histogram_options():
    compare(each(jnp.histogram, HISTOGRAM_CASES), each(jnp_ref.histogram, HISTOGRAM_CASES),
            DATA_I, rand(RNG, (3, 5), F32))


def test_histogram_edges_as_array():
    # edges are traced under jit (compare runs fungrad both eagerly and jitted)
    def make(lib):
        return lambda a, *edges: [lib.histogram(a, e, density=d) for e in edges
                                  for d in (False, True)]
    compare(make(jnp), make(jnp_ref), np.concatenate([rand(RNG, (12,), F32), DATA_I]),
            np.array([0, 10, 20, 30], I32), np.array([-1.0, 0.0, 0.25, 2.0], F32),
            np.array([3.0], F32))


def test_histogram_edge_cases():
    # the last edge is closed; values outside the range, infinities and NaN are dropped
    # (and with EDGY's range, the empty data's density is 0/0 = nan in every bin)
    cases = [{"bins": 4, "range": (0, 4)}, {"bins": 4, "range": (0, 4), "density": True},
             {"bins": np.array([0.0, 1.0, 3.0, 4.0], F32)}]
    compare(each(jnp.histogram, cases), each(jnp_ref.histogram, cases), EDGY, np.zeros(0, F32))
    # constant data (the range widens to +-0.5), bools, a Python scalar, a 0-d array, float16
    cases = [{"bins": 3}, {"bins": 2, "density": True}]
    compare(each(jnp.histogram, cases), each(jnp_ref.histogram, cases), np.full((4,), 2.0, F32),
            np.array([True, False, True]), 3.0, np.array(3, I32), rand(RNG, (6,), np.float16))


def test_histogram_range_forms():
    # range as a traced array, or as a pair of traced scalars
    compare(lambda a, r, lo, hi: [jnp.histogram(a, 3, range=r),
                                  jnp.histogram(a, 3, range=(lo, hi))],
            lambda a, r, lo, hi: [jnp_ref.histogram(a, 3, range=r),
                                  jnp_ref.histogram(a, 3, range=(lo, hi))],
            DATA_I, np.array([0.0, 30.0], F32), np.array(0, I32), np.array(30.0, F32))
    # bins as a 0-d integer array: a count eagerly; under jit it is traced, which both reject
    ref = jax.jit(lambda a: jnp_ref.histogram(a, 3))(DATA_I)
    harness.compare(lambda a, b: jnp.histogram(a, b), lambda a, b: jnp_ref.histogram(a, b),
                    DATA_I, np.array(3, I32), ref_out=ref)


def test_histogram_weights():
    """Weights of any dtype promote with the data; counts take the promoted dtype."""
    cases = [{"bins": 4}, {"bins": 4, "range": (-1, 1), "density": True}]
    a = rand(RNG, (4, 5), F32)
    def make(lib):
        return lambda x, xi, *ws: [lib.histogram(x, weights=w, **kw) for w in ws[:3]
                                   for kw in cases] + [lib.histogram(xi, weights=w, **kw)
                                                       for w in ws[3:] for kw in cases]
    compare(make(jnp), make(jnp_ref), a, DATA_I, rand(RNG, (4, 5), F32), rand(RNG, (4, 5), I32),
            rand(RNG, (4, 5), np.float16), rand(RNG, (8,), np.float16), np.arange(8, dtype=I32))


def test_histogram_derivatives():
    a, w = rand(RNG, (12,), F32), rand(RNG, (12,), F32, 0.0, 1.0)
    # in the weights (the counts are linear in them), with data-derived or fixed edges
    cases = [{"bins": 4}, {"bins": 3, "range": (-2, 2)}, {"bins": 5, "density": True}]
    compare_transforms(lambda w_, a_: [jnp.histogram(a_, weights=w_, **kw) for kw in cases],
                       lambda w_, a_: [jnp_ref.histogram(a_, weights=w_, **kw) for kw in cases],
                       [w, a], RNG, argnums=[0])
    # in the data too: the edges follow its min and max
    compare_transforms(lambda a_: jnp.histogram(a_, 4), lambda a_: jnp_ref.histogram(a_, 4),
                       [a], RNG)


def test_histogram_bin_edges():
    cases = [{}, {"bins": 4}, {"bins": 3, "range": (0, 1)}, {"bins": 2, "range": (4, 4)},
             {"bins": np.array([1, 5, 9], I32)}]
    # weights are accepted and ignored
    def make(lib):
        return lambda ai, a, w, h: [lib.histogram_bin_edges(ai, **kw) for kw in cases] + [
            lib.histogram_bin_edges(a, 5, weights=w), lib.histogram_bin_edges(h, 3)]
    compare(make(jnp), make(jnp_ref), DATA_I, rand(RNG, (6,), F32), rand(RNG, (6,), F32),
            rand(RNG, (6,), np.float16))
    # 64-bit dtypes on: int32 data still bins in float32 (as JAX's), counts of histogramdd
    # are int64
    with harness.x64():
        for dt in (np.float64, I32):
            compare_types(lambda a: [jnp.histogram(a, 3), jnp.histogramdd(a[:, None], 3)],
                          lambda a: [jnp_ref.histogram(a, 3), jnp_ref.histogramdd(a[:, None], 3)],
                          rand(RNG, (5,), dt))


HIST2D_BINS = [
    10, 3, (2, 3), [np.array([0, 10, 30]), np.array([0, 20, 30])],
    [2, np.array([0.0, 20.0, 30.0], F32)], np.array([0, 10, 20, 30]), [1, 2, 3],
    np.array([0, 30]),  # length 2: read as two counts (0 and 30), as NumPy and JAX do
]


def test_histogram2d_bins():
    cases = [{"bins": b} for b in HIST2D_BINS]
    compare(batched(jnp.histogram2d, cases), batched(jnp_ref.histogram2d, cases),
            DATA_I, DATA_Y)


def test_histogram2d_options():
    cases = [{"bins": 4, "range": [(0, 30), None]},
             {"bins": 4, "range": [(0, 20), (0, 20)], "density": True},
             {"bins": 4, "density": True}]
    # weights (float, or int which promotes), and mixed data dtypes, which promote together
    def make(lib):
        return lambda u, v, w, wi, v16: [lib.histogram2d(u, v, **kw) for kw in cases] + [
            lib.histogram2d(u, v, 3, weights=w), lib.histogram2d(u, v, 3, weights=wi),
            lib.histogram2d(u, v16, 3)]
    fg, ref = make(jnp), make(jnp_ref)
    compare(fg, ref, DATA_I, DATA_Y, rand(RNG, (8,), F32), np.arange(8, dtype=I32),
            DATA_Y.astype(np.float16))
    x, y = rand(RNG, (15,), F32), rand(RNG, (15,), F32)
    # derivatives in the weights (histogram2d is histogramdd of two dimensions)
    compare_transforms(lambda w_, u, v: jnp.histogram2d(u, v, 3, weights=w_, density=True),
                       lambda w_, u, v: jnp_ref.histogram2d(u, v, 3, weights=w_, density=True),
                       [rand(RNG, (15,), F32, 0.0, 1.0), x, y], RNG, argnums=[0])


def test_histogramdd():
    s = rand(RNG, (20, 3), F32)
    cases = [{"bins": b} for b in (3, (2, 3, 4), [2, np.array([-2.0, 0.0, 2.0], F32), 3],
                                   np.array([1, 2, 3]), 0)]
    cases += [{"bins": 4, "range": [(-1, 1), None, (0, 2)]}, {"bins": 4, "density": True},
              {"bins": 2, "range": np.array([[-1, 1], [0, 1], [0, 2]], F32)},
              {"bins": 4, "range": [(-1, 1)] * 3, "density": True}]
    # int samples, weights of each kind
    def make(lib):
        return lambda a, ai, w, wi, w16: [lib.histogramdd(a, **kw) for kw in cases] + [
            lib.histogramdd(a, 3, weights=w), lib.histogramdd(a, 4, weights=w, density=True),
            lib.histogramdd(ai, 3), lib.histogramdd(ai, 3, density=True),
            lib.histogramdd(ai, 3, weights=wi), lib.histogramdd(ai, 3, weights=w16)]
    fg, ref = make(jnp), make(jnp_ref)
    compare(fg, ref, s, rand(RNG, (20, 3), I32), rand(RNG, (20,), F32, 0.0, 1.0),
            rand(RNG, (20,), I32), rand(RNG, (20,), np.float16))


def test_histogramdd_edge_cases():
    unit = [(0, 1), (0, 1)]
    # the last edge closed; points outside or NaN dropped
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 1.0], [-1.0, 0.5], [2.0, 0.2],
                    [0.3, np.nan], [0.7, np.inf]], F32)
    # (and the same for no points at all), and one dimension of constant data
    cases = [{"bins": 2, "range": unit}, {"bins": 3, "range": unit, "density": True}]
    def make(lib):
        return lambda p, z, c: each(lib.histogramdd, cases)(p, z) + [lib.histogramdd(c, 2)]
    compare(make(jnp), make(jnp_ref), pts, np.zeros((0, 2), F32), np.ones((4, 1), F32))


def _both_raise(fg_call, ref_call, fg_exc, ref_exc, match):
    """jax raises ``ref_exc`` (while tracing: under jit nothing is compiled) and fungrad
    ``fg_exc`` with a message matching ``match``, eagerly and under jit."""
    with pytest.raises(ref_exc):
        jax.jit(ref_call)()
    with pytest.raises(fg_exc, match=match):
        fg_call()
    with pytest.raises(fg_exc, match=match):
        fungrad.jit(fg_call)()
    with pytest.raises(fg_exc, match=match):
        fg_call()


def test_histogram_errors():
    a, a_ref = jnp.asarray(DATA_I), jnp_ref.asarray(DATA_I)
    cases = [
        # (fungrad call, jax call, fungrad error, jax error, message)
        (lambda: jnp.histogram([1, 2, 3]), lambda: jnp_ref.histogram([1, 2, 3]), TypeError,
         TypeError, "histogram"),
        (lambda: jnp.histogram(a, weights=jnp.ones(3)),
         lambda: jnp_ref.histogram(a_ref, weights=jnp_ref.ones(3)), ValueError, ValueError,
         "histogram: weights of shape"),
        (lambda: jnp.histogram(a, bins=3.0), lambda: jnp_ref.histogram(a_ref, bins=3.0),
         TypeError, TypeError, "histogram: bins"),
        (lambda: jnp.histogram(a, bins=np.ones((2, 2))),
         lambda: jnp_ref.histogram(a_ref, bins=np.ones((2, 2))), TypeError, TypeError,
         "histogram: bins"),
        (lambda: jnp.histogram(a, 3, range=(1, 2, 3)),
         lambda: jnp_ref.histogram(a_ref, 3, range=(1, 2, 3)), ValueError, ValueError,
         "histogram: range"),
        (lambda: jnp.histogram(a, 3, range=np.zeros(3)),
         lambda: jnp_ref.histogram(a_ref, 3, range=np.zeros(3)), ValueError, ValueError,
         "histogram: range"),
        (lambda: jnp.histogram(jnp.zeros(0)), lambda: jnp_ref.histogram(jnp_ref.zeros(0)),
         ValueError, ValueError, "histogram: cannot infer the range"),
        (lambda: jnp.histogram_bin_edges(jnp.zeros(0)),
         lambda: jnp_ref.histogram_bin_edges(jnp_ref.zeros(0)), ValueError, ValueError,
         "histogram_bin_edges: cannot infer"),
        (lambda: jnp.histogram_bin_edges(a, "auto"),
         lambda: jnp_ref.histogram_bin_edges(a_ref, "auto"), NotImplementedError,
         NotImplementedError, "histogram_bin_edges: string"),
        # negative counts and empty edges: JAX fails indexing an empty array (IndexError)
        (lambda: jnp.histogram(a, bins=-1), lambda: jnp_ref.histogram(a_ref, bins=-1),
         ValueError, IndexError, "histogram: bins must be a non-negative"),
        (lambda: jnp.histogram(a, bins=jnp.zeros(0)),
         lambda: jnp_ref.histogram(a_ref, bins=jnp_ref.zeros(0)), ValueError, IndexError,
         "histogram: bins must hold at least one"),
        # bins must be static under jit
        (lambda: fungrad.jit(lambda v, b: jnp.histogram(v, b))(a, 3),
         lambda: jax.jit(lambda v, b: jnp_ref.histogram(v, b))(a_ref, 3),
         fungrad.errors.ConcretizationTypeError, jax.errors.ConcretizationTypeError,
         "histogram: bins"),
    ]
    for case in cases:
        _both_raise(*case)
    # complex data has no bin order in fungrad (JAX orders it lexicographically)
    for call in (lambda: jnp.histogram(jnp.asarray([1 + 1j, 2])),
                 lambda: jnp.histogram(a, weights=a * 1j),
                 lambda: jnp.histogramdd(jnp.ones((3, 2), np.complex64))):
        with pytest.raises(TypeError, match="histogram.*complex"):
            call()


def test_histogram2d_and_dd_errors():
    s, s_ref = jnp.ones((8, 2)), jnp_ref.ones((8, 2))
    x, x_ref = jnp.asarray(DATA_I), jnp_ref.asarray(DATA_I)
    cases = [
        (lambda: jnp.histogramdd(x), lambda: jnp_ref.histogramdd(x_ref), ValueError, ValueError,
         "histogramdd: sample must have shape"),
        (lambda: jnp.histogramdd(jnp.ones((2, 2, 2))),
         lambda: jnp_ref.histogramdd(jnp_ref.ones((2, 2, 2))), ValueError, ValueError,
         "histogramdd: sample"),
        (lambda: jnp.histogramdd(jnp.ones((3, 0))), lambda: jnp_ref.histogramdd(
            jnp_ref.ones((3, 0))), ValueError, ValueError, "histogramdd: sample"),
        (lambda: jnp.histogramdd(s, bins=[3, 3, 3]),
         lambda: jnp_ref.histogramdd(s_ref, bins=[3, 3, 3]), ValueError, ValueError,
         "histogramdd: bins must give one entry"),
        (lambda: jnp.histogramdd(s, range=[(0, 1)]),
         lambda: jnp_ref.histogramdd(s_ref, range=[(0, 1)]), ValueError, ValueError,
         "histogramdd: for a sample"),
        (lambda: jnp.histogramdd(s, range=[(0, 1, 2), None]),
         lambda: jnp_ref.histogramdd(s_ref, range=[(0, 1, 2), None]), ValueError, ValueError,
         "histogramdd: for a sample"),
        (lambda: jnp.histogramdd(s, bins=[np.ones(3), 2], range=[(0, 1, 2), None]),
         lambda: jnp_ref.histogramdd(s_ref, bins=[np.ones(3), 2], range=[(0, 1, 2), None]),
         ValueError, ValueError, "histogramdd: for a sample"),
        (lambda: jnp.histogramdd(s, range=[(0, 1), 5]),
         lambda: jnp_ref.histogramdd(s_ref, range=[(0, 1), 5]), ValueError, IndexError,
         "histogramdd: for a sample"),
        (lambda: jnp.histogramdd(s, weights=jnp.ones(3)),
         lambda: jnp_ref.histogramdd(s_ref, weights=jnp_ref.ones(3)), ValueError, ValueError,
         "histogramdd: weights"),
        (lambda: jnp.histogramdd([[1.0, 2.0]]), lambda: jnp_ref.histogramdd([[1.0, 2.0]]),
         TypeError, TypeError, "histogramdd"),
        (lambda: jnp.histogram2d(s, s), lambda: jnp_ref.histogram2d(s_ref, s_ref), ValueError,
         ValueError, "histogram2d: x and y must be 1-d"),
        # different lengths: JAX fails in concatenate (TypeError)
        (lambda: jnp.histogram2d(x, x[:3]), lambda: jnp_ref.histogram2d(x_ref, x_ref[:3]),
         ValueError, TypeError, "histogram2d: x and y"),
        (lambda: jnp.histogram2d([1], [2]), lambda: jnp_ref.histogram2d([1], [2]), TypeError,
         TypeError, "histogram2d"),
    ]
    for case in cases:
        _both_raise(*case)


def test_no_warnings_leak():
    """Densities of empty histograms are 0/0 = nan (as JAX's) without NumPy warnings."""
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = jnp.histogram(jnp.zeros(0), 3, range=(0, 1), density=True)[0]
        assert np.isnan(np.asarray(out)).all()
        out = jnp.histogramdd(jnp.zeros((0, 2)), 2, range=[(0, 1)] * 2, density=True)[0]
        assert np.isnan(np.asarray(out)).all()
