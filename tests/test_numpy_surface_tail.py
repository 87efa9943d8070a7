"""The rest of jax.numpy's surface against jax: matvec/vecmat, sort_complex, block, r_/c_,
mask_indices, place, unwrap, trim_zeros, packbits/unpackbits (values, dtypes, weak types,
under jit, derivatives where JAX's exist, and errors)."""
import functools

import jax.numpy as jnp_ref
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import harness
from harness import assert_same, compare_all, quick_jit, rand

# jax's derivatives and batched results, in one quickly compiled program per case
compare_transforms = functools.partial(harness.compare_transforms, fused_ref=True)
# jax's values, in one quickly compiled program per case (or per test: compare_all)
compare = harness.compare_quick


RNG = np.random.default_rng(11)
F32, I32, U8 = np.float32, np.int32, np.uint8


def test_matvec_vecmat():
    a, v = rand(RNG, (2, 3, 4), F32), rand(RNG, (4,), F32)
    cases = [(jnp.matvec, jnp_ref.matvec, a, v),
             (jnp.matvec, jnp_ref.matvec, a, rand(RNG, (5, 1, 4), F32)),  # batch dims broadcast
             (jnp.vecmat, jnp_ref.vecmat, rand(RNG, (4,), F32), a.transpose(0, 2, 1))]
    c = (rand(RNG, (3,), F32) + 1j * rand(RNG, (3,), F32)).astype(np.complex64)
    cases.append((jnp.vecmat, jnp_ref.vecmat, c, rand(RNG, (3, 2), F32)))  # x1 conjugated
    compare_all(cases + [(jnp.matvec, jnp_ref.matvec, rand(RNG, (3, 4), I32),
                          np.arange(4, dtype=np.int8))])
    compare_transforms(jnp.matvec, jnp_ref.matvec, [a, v], RNG)
    compare_transforms(jnp.vecmat, jnp_ref.vecmat, [v, a.transpose(0, 2, 1)], RNG)
    with pytest.raises(ValueError, match="matvec"):
        jnp.matvec(v, v)
    with pytest.raises(ValueError, match="vecmat"):
        jnp.vecmat(v, v)


def test_sort_complex():
    z = np.array([[3 + 1j, 1 - 2j, 1 + 0j, np.nan], [2, -1j, -1, 1j]], np.complex64)
    compare_all([(jnp.sort_complex, jnp_ref.sort_complex, x)
                 for x in [z] + [rand(RNG, (5,), dt) for dt in (I32, np.int8, F32, np.bool_)]])


def test_block():
    a, b, c = rand(RNG, (2, 2), F32), rand(RNG, (2, 3), F32), rand(RNG, (1, 5), F32)
    compare_all([
        (lambda a, b, c: jnp.block([[a, b], [c]]),
         lambda a, b, c: jnp_ref.block([[a, b], [c]]), a, b, c),
        (lambda a: jnp.block([1, a[0], 2]), lambda a: jnp_ref.block([1, a[0], 2]), a),
        (lambda: jnp.block([[1, 2], [3, 4]]), lambda: jnp_ref.block([[1, 2], [3, 4]])),
        (lambda a: jnp.block([[[a]], [[a]]]), lambda a: jnp_ref.block([[[a]], [[a]]]), a),
        (jnp.block, jnp_ref.block, np.float32(3))])
    for bad in ([], [[a], a], (a,)):
        with pytest.raises(ValueError, match="block"):
            jnp.block(bad)
        with pytest.raises(ValueError):
            jnp_ref.block(bad)


R_CASES = [
    lambda m, x: m.r_[1:4, 0, x],
    lambda m, x: m.r_[-1:1:5j, x],
    lambda m, x: m.r_["0,2", x, x],
    lambda m, x: m.r_["1,2,0", x, x],
    lambda m, x: m.r_["-1,3,1", x, x],
    lambda m, x: m.r_["r", 1:3, x],
    lambda m, x: m.r_["c", x],
    lambda m, x: m.c_[x, x],
    lambda m, x: m.c_[x, 2 * x, 0:3],
    lambda m, x: m.c_[m.ones((3, 2)), x],
    lambda m, x: m.r_[x, 2.5],
]


@pytest.mark.parametrize("case", range(len(R_CASES)))
def test_r_and_c(case):
    compare(lambda x: R_CASES[case](jnp, x), lambda x: R_CASES[case](jnp_ref, x),
            rand(RNG, (3,), F32))


def test_r_and_c_errors():
    for index in (("bad", 1), (1, "0,1")):
        with pytest.raises(ValueError, match="r_"):
            jnp.r_[index]
        with pytest.raises(ValueError):
            jnp_ref.r_[index]
    assert len(jnp.r_) == len(jnp_ref.r_) == 0


def test_mask_indices():
    # without size= the number of indices depends on the mask: jax's run eagerly; with it,
    # both of jax's come from one program
    for fn, k in ((jnp.triu, 0), (jnp.tril, -1)):
        ref = getattr(jnp_ref, fn.__name__)
        assert_same(jnp.mask_indices(4, fn, k), jnp_ref.mask_indices(4, ref, k))
    sized = quick_jit(lambda: [jnp_ref.mask_indices(4, jnp_ref.triu, 1, size=8),
                               jnp_ref.mask_indices(3, jnp_ref.triu, size=6)])()
    assert_same(jnp.mask_indices(4, jnp.triu, 1, size=8), sized[0])
    out = fungrad.jit(lambda: jnp.mask_indices(3, jnp.triu, size=6))()
    assert_same(out, sized[1])


def test_place():
    x = np.arange(12, dtype=F32).reshape(3, 4)
    compare_all([
        (lambda a, m, v: jnp.place(a, m, v, inplace=False),
         lambda a, m, v: jnp_ref.place(a, m, v, inplace=False), x, x % 3 == 0,
         np.array([-1, -2], F32)),
        (lambda a, m: jnp.place(a, m, 7, inplace=False),
         lambda a, m: jnp_ref.place(a, m, 7, inplace=False), x.astype(I32), x > 8),
        (lambda a, m: jnp.place(a, m, np.arange(20.0), inplace=False),
         lambda a, m: jnp_ref.place(a, m, np.arange(20.0), inplace=False), x, x < 3)])
    with pytest.raises(ValueError, match="place"):
        jnp.place(x, x > 1, 1.0)  # inplace=True: arrays are immutable
    with pytest.raises(ValueError, match="place"):
        jnp.place(x, x[0] > 1, 1.0, inplace=False)
    with pytest.raises(ValueError, match="place"):
        jnp.place(x, x > 1, np.zeros(0, F32), inplace=False)


def test_unwrap():
    wrapped = (np.cumsum(RNG.uniform(-2.5, 2.5, (3, 20)), axis=1) % (2 * np.pi)).astype(F32)
    compare_all([
        (jnp.unwrap, jnp_ref.unwrap, wrapped),
        (lambda p: jnp.unwrap(p, axis=0), lambda p: jnp_ref.unwrap(p, axis=0), wrapped),
        (lambda p: jnp.unwrap(p, discont=1.0), lambda p: jnp_ref.unwrap(p, discont=1.0),
         wrapped),
        (lambda p: jnp.unwrap(p, period=10), lambda p: jnp_ref.unwrap(p, period=10),
         np.array([0, 5, 9, 2, 11, -3, 4], I32)),
        (lambda p: jnp.unwrap(p, period=4.0), lambda p: jnp_ref.unwrap(p, period=4.0),
         np.array([0.0, 2.0, 4.0, -2.0, 1.0], F32)),  # steps of exactly half a period
        (jnp.unwrap, jnp_ref.unwrap, np.zeros((2, 0), F32))])
    compare_transforms(jnp.unwrap, jnp_ref.unwrap, [wrapped], RNG)
    with pytest.raises(ValueError, match="unwrap"):
        jnp.unwrap(np.ones(3, np.complex64))


def test_trim_zeros():
    for filt, kw in ((np.array([0, 0, 1, 2, 0, 3, 0]), {}),
                     (np.array([0, 0, 1, 2, 0], F32), {"trim": "f"}),
                     (np.array([0, 0, 1, 2, 0], F32), {"trim": "B"}),
                     (np.zeros(3, F32), {}),
                     (np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]]), {}),
                     (np.array([[0, 0, 0], [0, 1, 0]]), {"axis": 1}),
                     (np.array([[0, 0, 0], [0, 1, 0]]), {"axis": (0, -1), "trim": "b"})):
        assert_same(jnp.trim_zeros(jnp.asarray(filt), **kw), jnp_ref.trim_zeros(filt, **kw))
    with pytest.raises(fungrad.errors.ConcretizationTypeError, match="trim_zeros"):
        fungrad.jit(jnp.trim_zeros)(np.ones(3, F32))


def test_packbits_unpackbits():
    bits = RNG.random((3, 13)) > 0.5
    cases = [(functools.partial(jnp.packbits, axis=axis, bitorder=order),
              functools.partial(jnp_ref.packbits, axis=axis, bitorder=order), bits)
             for axis, order in ((None, "big"), (1, "big"), (0, "little"), (-1, "little"))]
    cases.append((jnp.packbits, jnp_ref.packbits, RNG.integers(-2, 3, (4, 9)).astype(I32)))
    packed = np.packbits(bits, axis=1)
    compare_all(cases + [
        (functools.partial(jnp.unpackbits, axis=axis, count=count, bitorder=order),
         functools.partial(jnp_ref.unpackbits, axis=axis, count=count, bitorder=order), packed)
        for axis, count, order in ((None, None, "big"), (1, 13, "big"), (1, 20, "little"),
                                   (0, -5, "big"), (None, 0, "little"))])
    with pytest.raises(TypeError, match="packbits"):
        jnp.packbits(np.ones(3, F32))
    with pytest.raises(TypeError, match="unpackbits"):
        jnp.unpackbits(np.ones(3, I32))
    with pytest.raises(ValueError, match="bitorder"):
        jnp.packbits(bits, bitorder="middle")


# jax.numpy 0.10's names that fungrad.numpy lacked before this file's functions (a fixed
# list: a newer jax adding names must not fail this test)
TAIL = ["ComplexWarning", "array_repr", "array_str", "bartlett", "blackman", "block", "c_",
        "einsum_path", "frexp", "from_dlpack", "frombuffer", "fromfile", "fromfunction",
        "fromiter", "frompyfunc", "fromstring", "get_printoptions", "hamming", "hanning",
        "histogram", "histogram2d", "histogram_bin_edges", "histogramdd", "i0", "kaiser",
        "ldexp", "load", "mask_indices", "matvec", "object_", "packbits", "place", "poly",
        "polyadd", "polyder", "polydiv", "polyfit", "polyint", "polymul", "polysub",
        "printoptions", "r_", "roots", "save", "savez", "set_printoptions", "sort_complex",
        "spacing", "trim_zeros", "ufunc", "unpackbits", "unwrap", "vecmat"]


def test_the_tail_of_jax_numpy_is_exported():
    assert [n for n in TAIL if n not in jnp.__all__ or not hasattr(jnp, n)] == []
    assert jnp.object_ is jnp_ref.object_ and jnp.ComplexWarning is jnp_ref.ComplexWarning
