"""fungrad.random against jax.random: bit-exact keys and draws, transformations, errors,
statistics."""
import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
import fungrad.random as fr
from fungrad import lax, tree

BF16 = np.dtype(ml_dtypes.bfloat16)
SEEDS = [0, 1, 42, -1, -5, 2 ** 31, 2 ** 32 + 3, 2 ** 40 + 7, 2 ** 63 - 1, -2 ** 63]
SHAPES = [(), (3,), (5, 7), (0,), (2, 0, 3)]
FLOATS = [np.float32, np.float16, BF16]


def jkey(seed):
    return jax.random.PRNGKey(seed)


def fkey(seed):
    return fr.PRNGKey(seed)


# elements of a cached jax reference draw (large, so rare last-bit differences show)
STREAM = 100_000
JAX_DRAWS = {
    "bits": lambda k, n, d, *a: jax.random.bits(k, (n,), d),
    "uniform": lambda k, n, d, *a: jax.random.uniform(k, (n,), d),
    "normal": lambda k, n, d, *a: jax.random.normal(k, (n,), d),
    "exponential": lambda k, n, d, *a: jax.random.exponential(k, (n,), d),
    "laplace": lambda k, n, d, *a: jax.random.laplace(k, (n,), d),
    "gumbel": lambda k, n, d, *a: jax.random.gumbel(k, (n,), d),
    "gumbel_high": lambda k, n, d, *a: jax.random.gumbel(k, (n,), d, mode="high"),
    "uniform_range": lambda k, n, d, lo, hi: jax.random.uniform(k, (n,), d, lo, hi),
    "truncated_normal": lambda k, n, d, lo, hi: jax.random.truncated_normal(k, lo, hi, (n,), d),
    "randint": lambda k, n, d, lo, hi: jax.random.randint(k, (n,), lo, hi, d),
    "bernoulli": lambda k, n, d, p: jax.random.bernoulli(k, np.asarray(p, d), (n,)),
}


@functools.lru_cache(maxsize=None)
def _jax_stream(name, seed, dtype_name, *args):
    dtype = None if dtype_name is None else np.dtype(dtype_name)
    return np.asarray(JAX_DRAWS[name](jkey(seed), STREAM, dtype, *args))


def jax_ref(name, seed, shape, dtype, *args):
    """jax's draw of ``shape``, cut from one long cached draw (one jax compile per sampler).

    In jax's counter scheme element i of a draw of any shape hashes counter i (its
    row-major index), and these samplers are elementwise in the bits, so a draw of
    shape s is the first prod(s) elements of the long one; test_counter_scheme checks
    this with jax itself.
    """
    flat = _jax_stream(name, seed, None if dtype is None else np.dtype(dtype).name, *args)
    return flat[:math.prod(shape)].reshape(shape)


def test_counter_scheme():
    for name in ("bits", "uniform", "normal", "randint"):
        args = (-3, 1000) if name == "randint" else ()
        direct = JAX_DRAWS[name](jkey(5), 35, None, *args).reshape(5, 7)
        assert_bits_equal(jax_ref(name, 5, (5, 7), None, *args), direct)
        assert_bits_equal(jax.random.uniform(jkey(5), (5, 7)),
                          jax.random.uniform(jkey(5), (35,)).reshape(5, 7))


def assert_bits_equal(fg, ref):
    """Same shape, dtype and bit pattern (NaNs included)."""
    a, b = np.asarray(fg), np.asarray(ref)
    assert a.shape == b.shape, f"shape {a.shape} != jax {b.shape}"
    assert a.dtype == b.dtype, f"dtype {a.dtype} != jax {b.dtype}"
    if a.dtype.kind in "fV" or a.dtype == BF16:
        a, b = a.view(f"u{a.dtype.itemsize}"), b.view(f"u{b.dtype.itemsize}")
    np.testing.assert_array_equal(a, b)


def assert_ulps_close(fg, ref, ulps):
    """Same shape and dtype, values within ``ulps`` units in the last place of the reference."""
    a, b = np.asarray(fg), np.asarray(ref)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    info = ml_dtypes.finfo(a.dtype)
    scale = np.maximum(np.abs(b.astype(np.float64)), float(info.tiny))
    ulp = 2.0 ** (np.floor(np.log2(scale)) - info.nmant)
    err = np.abs(a.astype(np.float64) - b.astype(np.float64)) / ulp
    assert err.max(initial=0) <= ulps, f"max error {err.max()} ulps > {ulps}"


# --------------------------------------------------------------------------- threefry2x32

@pytest.mark.parametrize("shapes", [((), (), (7,), (7,)), ((4, 1), (1,), (), (4, 6)),
                                    ((0,), (), (), (0,)), ((), (), (300_001,), (300_001,))])
def test_threefry2x32_matches_jax(shapes):
    from jax._src.random.threefry2x32 import threefry2x32_p as jax_threefry
    rng = np.random.default_rng(0)
    args = [rng.integers(0, 2 ** 32, size=s, dtype=np.uint32) for s in shapes]
    out_shape = np.broadcast_shapes(*shapes)
    ref = jax_threefry.bind(*[jnp_ref.asarray(np.broadcast_to(a, out_shape)) for a in args])
    out = fr.threefry2x32(*[fnp.asarray(a) for a in args])
    for o, r in zip(out, ref):
        assert_bits_equal(o, r)


def test_threefry2x32_vmap():
    from jax._src.random.threefry2x32 import threefry2x32_p as jax_threefry
    rng = np.random.default_rng(1)
    k1 = rng.integers(0, 2 ** 32, size=(), dtype=np.uint32)
    k2 = rng.integers(0, 2 ** 32, size=(3,), dtype=np.uint32)       # batched on axis 0
    x1 = rng.integers(0, 2 ** 32, size=(4, 3, 5), dtype=np.uint32)  # batched on a middle axis
    x2 = rng.integers(0, 2 ** 32, size=(4, 5, 3), dtype=np.uint32)  # batched on the last axis
    out = fungrad.vmap(fr.threefry2x32, in_axes=(None, 0, 1, -1))(k1, k2, x1, x2)
    for i in range(3):
        ref = jax_threefry.bind(*jnp_ref.broadcast_arrays(k1, k2[i], x1[:, i], x2[..., i]))
        for o, r in zip(out, ref):
            assert_bits_equal(o[i], r)


def test_threefry2x32_rules():
    u = np.uint32
    with pytest.raises(TypeError, match="threefry2x32.*uint32"):
        fr.threefry2x32(u(1), u(2), np.int32(0), u(3))
    with pytest.raises(TypeError, match="threefry2x32"):
        fr.threefry2x32(np.zeros(2, u), u(2), np.zeros(3, u), u(3))
    closed = fungrad.make_jaxpr(lambda a, b: fr.threefry2x32(a, b, u(0), u(1)))(u(1), u(2))
    assert "threefry2x32" in str(closed)
    assert [a.str_short() for a in closed.out_avals] == ["u32[]"] * 2
    # non-differentiable: no tangent flows through it, but grad of a program using it works
    x = np.float32(2.0)
    g = fungrad.grad(lambda x: x * lax.convert_element_type(
        fr.threefry2x32(u(1), u(2), u(0), u(1))[0], np.float32))(x)
    assert np.asarray(g) == np.float32(np.asarray(fr.threefry2x32(u(1), u(2), u(0), u(1))[0]))


# --------------------------------------------------------------------------- keys

@pytest.mark.parametrize("seed", SEEDS)
def test_prng_key_seeds(seed):
    assert_bits_equal(fr.PRNGKey(seed), jkey(seed))
    assert_bits_equal(fr.key_data(fr.key(seed)), jax.random.key_data(jax.random.key(seed)))


@pytest.mark.parametrize("seed", [np.int32(-7), np.uint32(2 ** 32 - 2), np.int64(2 ** 40 + 9),
                                  np.uint64(2 ** 63 + 5), np.int8(-3), np.uint8(200), True])
def test_prng_key_numpy_seeds(seed):
    assert_bits_equal(fr.PRNGKey(seed), jax.random.PRNGKey(seed))


def test_x64_seeds_and_64_bit_draws():
    jax.config.update("jax_enable_x64", True)
    fungrad.config.update("jax_enable_x64", True)
    try:
        for seed in (2 ** 40 + 7, -1, -2 ** 63, np.int64(-3)):
            assert_bits_equal(fr.PRNGKey(seed), jax.random.PRNGKey(seed))
        k, jk = fkey(3), jkey(3)
        assert_bits_equal(fr.bits(k, (5,)), jax.random.bits(jk, (5,)))
        assert_bits_equal(fr.uniform(k, (5,)), jax.random.uniform(jk, (5,)))
        assert_bits_equal(fr.randint(k, (5,), -2 ** 40, 2 ** 40),
                          jax.random.randint(jk, (5,), -2 ** 40, 2 ** 40))
        keys = fungrad.vmap(fr.PRNGKey)(np.array([2 ** 40 + 7, -1], np.int64))
        assert_bits_equal(keys, jax.vmap(jax.random.PRNGKey)(np.array([2 ** 40 + 7, -1], np.int64)))
    finally:
        jax.config.update("jax_enable_x64", False)
        fungrad.config.update("jax_enable_x64", False)


def test_typed_keys():
    k = fr.key(3)
    assert k.shape == () and k.ndim == 0 and str(k.dtype) == "key<fry>"
    ks = fr.split(k, (2, 3))
    assert isinstance(ks, fr.PRNGKeyArray) and ks.shape == (2, 3) and len(ks) == 2
    jks = jax.random.split(jax.random.key(3), (2, 3))
    assert_bits_equal(fr.key_data(ks), jax.random.key_data(jks))
    assert_bits_equal(fr.key_data(ks[1, 2]), jax.random.key_data(jks[1, 2]))
    assert ks.reshape(6).shape == (6,) and ks.reshape(-1, 2).shape == (3, 2)
    assert [x.shape for x in ks] == [(3,), (3,)]
    wrapped = fr.wrap_key_data(fr.key_data(k))
    assert_bits_equal(fr.uniform(wrapped, (3,)), fr.uniform(k, (3,)))
    assert_bits_equal(fr.uniform(k, (3,)), jax.random.uniform(jax.random.key(3), (3,)))
    assert fr.key_impl(k) == "threefry2x32"
    # a pytree whose leaf is the uint32 data
    leaves, treedef = tree.flatten({"k": ks})
    assert len(leaves) == 1 and leaves[0].shape == (2, 3, 2)
    assert isinstance(tree.unflatten(treedef, leaves)["k"], fr.PRNGKeyArray)
    assert "key<fry>" in repr(k)


@pytest.mark.parametrize("num", [2, 3, 1, 0, (2, 3), (0,), (4, 1), ()])
@pytest.mark.parametrize("seed", [0, -1, 2 ** 40 + 7])
def test_split(seed, num):
    assert_bits_equal(fr.split(fkey(seed), num), jax.random.split(jkey(seed), num))


@pytest.mark.parametrize("data", [0, 1, 7, 2 ** 31, 2 ** 32 - 1, np.int32(-1), np.uint32(5), 3.7])
def test_fold_in(data):
    for seed in (0, 1234):
        assert_bits_equal(fr.fold_in(fkey(seed), data), jax.random.fold_in(jkey(seed), data))
    typed = fr.fold_in(fr.key(5), data)
    assert isinstance(typed, fr.PRNGKeyArray)
    assert_bits_equal(fr.key_data(typed),
                      jax.random.key_data(jax.random.fold_in(jax.random.key(5), data)))


# --------------------------------------------------------------------------- bits and uniform

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, None])
def test_bits(shape, dtype):
    for seed in (0, -5):
        assert_bits_equal(fr.bits(fkey(seed), shape, dtype), jax_ref("bits", seed, shape, dtype))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_uniform(shape, dtype):
    for seed in (0, 42, 2 ** 32 + 3):
        assert_bits_equal(fr.uniform(fkey(seed), shape, dtype),
                          jax_ref("uniform", seed, shape, dtype))


RANGES = [(-3.0, 5.0, False), (2.0, 2.0, False), (4.0, 1.0, False), (0, 7, False), (-1, 1, False),
          (0.25, 0.75, False), ("arr", 10.0, True), ("row", "col", True), (0.1, 0.7, True)]


@pytest.mark.parametrize("dtype,minval,maxval,fused", [(np.float32, *r) for r in RANGES] +
                         [(d, *r) for d in (np.float16, BF16) for r in (RANGES[2], RANGES[7])])
def test_uniform_ranges(dtype, minval, maxval, fused):
    shape = (4, 5)
    params = {"arr": np.linspace(-2, 3, 20, dtype=np.float32).reshape(4, 5),
              "row": np.linspace(-1, 1, 5, dtype=np.float32),
              "col": np.float32([[2], [3], [4], [5]])}
    lo, hi = params.get(minval, minval), params.get(maxval, maxval)
    out = fr.uniform(fkey(7), shape, dtype, lo, hi)
    ref = jax.random.uniform(jkey(7), shape, dtype, lo, hi)
    assert_bits_equal(out, ref)  # fused: floats * (maxval - minval) + minval rounds once (an FMA)
    assert np.all(np.asarray(out) >= np.minimum(lo, np.asarray(out).dtype.type(0) + lo))


def test_uniform_default_dtype_and_int_shape():
    assert_bits_equal(fr.uniform(fkey(0), 3), jax.random.uniform(jkey(0), 3))
    assert not fr.uniform(fkey(0), (2,)).weak_type


# --------------------------------------------------------------------------- integers

@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int8, np.uint8, np.int16, np.uint16])
@pytest.mark.parametrize("minval,maxval",
                         [(-10, 10), (0, 256), (5, 3), (-2 ** 31, 2 ** 31 - 1), (7, 8)])
def test_randint(dtype, minval, maxval):
    info = np.iinfo(dtype)
    if info.bits == 32 and not (info.min <= minval and maxval <= info.max):
        return  # the Python ints themselves overflow dtype (an error in jax too)
    for shape in ((5, 7), (), (0,)):
        assert_bits_equal(fr.randint(fkey(3), shape, minval, maxval, dtype),
                          jax_ref("randint", 3, shape, dtype, minval, maxval))


def test_randint_array_bounds():
    lo = np.array([0, -5, 10], np.int32)
    hi = np.array([[3], [100]], np.int32)
    assert_bits_equal(fr.randint(fkey(1), (2, 3), lo, hi),
                      jax.random.randint(jkey(1), (2, 3), lo, hi))
    assert_bits_equal(fr.randint(fkey(1), (4,), 0.5, 9.7),
                      jax.random.randint(jkey(1), (4,), 0.5, 9.7))


@pytest.mark.parametrize("p", [0.5, 0.0, 1.0, 0.1, "arr"])
@pytest.mark.parametrize("mode", ["low", "high"])
def test_bernoulli(p, mode):
    if p == "arr":
        p = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
        assert_bits_equal(fr.bernoulli(fkey(2), p, mode=mode),
                          jax.random.bernoulli(jkey(2), p, mode=mode))
        assert_bits_equal(fr.bernoulli(fkey(2), p, (5, 3, 4), mode),
                          jax.random.bernoulli(jkey(2), p, (5, 3, 4), mode))
        return
    if mode == "high":  # draws (2, *shape) uniforms: not a prefix of a longer draw
        for shape in (None, (3, 5)):
            assert_bits_equal(fr.bernoulli(fkey(2), p, shape, mode),
                              jax.random.bernoulli(jkey(2), p, shape, mode))
        return
    for dtype in (np.float32, np.float16):
        for shape in ((), (7,), (3, 5)):
            assert_bits_equal(fr.bernoulli(fkey(2), dtype(p), shape),
                              jax_ref("bernoulli", 2, shape, dtype, p))
    assert_bits_equal(fr.bernoulli(fkey(2), p), jax_ref("bernoulli", 2, (), np.float32, p))


# --------------------------------------------------------------------------- permutation / choice

@pytest.mark.parametrize("n", [0, 1, 5, 2000])
def test_permutation_int(n):
    for seed in (0, 9):
        assert_bits_equal(fr.permutation(fkey(seed), n), jax.random.permutation(jkey(seed), n))


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("independent", [False, True])
def test_permutation_array(axis, independent):
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    assert_bits_equal(fr.permutation(fkey(4), x, axis, independent),
                      jax.random.permutation(jkey(4), x, axis, independent))
    v = np.arange(7, dtype=np.int32) * 3
    assert_bits_equal(fr.permutation(fkey(4), v), jax.random.permutation(jkey(4), v))


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("a,shape,axis",
                         [(10, (3,), 0), (10, (2, 3), 0), ("mat", (2,), 1), ("vec", (4,), 0)])
def test_choice(a, shape, axis, replace, weighted):
    arrays = {"mat": np.arange(40, dtype=np.float32).reshape(5, 8),
              "vec": np.arange(6, dtype=np.int32) * 10}
    a = arrays.get(a, a)
    n = a if np.ndim(a) == 0 else np.shape(a)[axis]
    weights = np.linspace(1, 2, n, dtype=np.float32)
    p = weights / weights.sum() if weighted else None
    for seed in (0, 11):
        assert_bits_equal(fr.choice(fkey(seed), a, shape, replace, p, axis),
                          jax.random.choice(jkey(seed), a, shape, replace, p, axis))


def test_choice_scalar_and_no_draws():
    assert_bits_equal(fr.choice(fkey(0), 5, (0,)), jax.random.choice(jkey(0), 5, (0,)))
    assert_bits_equal(fr.choice(fkey(0), 7), jax.random.choice(jkey(0), 7))
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    assert_bits_equal(fr.choice(fkey(0), x, (), False, axis=0),
                      jax.random.choice(jkey(0), x, (), False, axis=0))


@pytest.mark.parametrize("logits_shape,axis,shape",
                         [((5,), -1, None), ((3, 4), 0, None), ((3, 4), -1, (6, 3)),
                          ((1, 4), 1, (2, 5)), ((2, 3, 4), 1, None)])
def test_categorical(logits_shape, axis, shape):
    logits = np.log(np.random.default_rng(0).uniform(0.1, 1.0, logits_shape)).astype(np.float32)
    for seed in (0, 1):
        assert_bits_equal(fr.categorical(fkey(seed), logits, axis, shape),
                          jax.random.categorical(jkey(seed), logits, axis, shape))


@pytest.mark.parametrize("logits_shape,axis,shape",
                         [((6,), -1, (4,)), ((3, 5), -1, (2, 3)), ((5, 3), 0, (4, 3))])
def test_categorical_without_replacement(logits_shape, axis, shape):
    logits = np.random.default_rng(1).normal(size=logits_shape).astype(np.float32)
    assert_bits_equal(fr.categorical(fkey(3), logits, axis, shape, replace=False),
                      jax.random.categorical(jkey(3), logits, axis, shape, replace=False))


# --------------------------------------------------------------------------- continuous

CONTINUOUS = {
    "normal": (lambda m, k, s, d: m.normal(k, s, d)),
    "exponential": (lambda m, k, s, d: m.exponential(k, s, d)),
    "laplace": (lambda m, k, s, d: m.laplace(k, s, d)),
    "gumbel": (lambda m, k, s, d: m.gumbel(k, s, d)),
}


@pytest.mark.parametrize("name", list(CONTINUOUS))
@pytest.mark.parametrize("dtype", FLOATS)
def test_continuous(name, dtype):
    draw = CONTINUOUS[name]
    for seed in (0, 17):
        for shape in ((5, 7), (STREAM,), ()):
            assert_bits_equal(draw(fr, fkey(seed), shape, dtype), jax_ref(name, seed, shape, dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_gumbel_high_mode(dtype):
    for seed in (1, 2):  # draws (2, n) uniforms: not a prefix of a longer draw
        assert_bits_equal(fr.gumbel(fkey(seed), (STREAM,), dtype, "high"),
                          jax_ref("gumbel_high", seed, (STREAM,), dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("minval,maxval", [(0.1, 0.7), (-1.5, 0.3), (-3.0, 5.0), (2.5, 1e4)])
def test_uniform_ranges_large(dtype, minval, maxval):
    for seed in (0, 5):
        assert_bits_equal(fr.uniform(fkey(seed), (STREAM,), dtype, minval, maxval),
                          jax_ref("uniform_range", seed, (STREAM,), dtype, minval, maxval))


@pytest.mark.parametrize("dtype,lower,upper",
                         [(np.float32, -2.0, 2.0), (np.float32, -1.5, 0.5),
                          (np.float32, "vec", 2.5), (np.float16, -2.0, 2.0), (BF16, "vec", 2.5)])
def test_truncated_normal(dtype, lower, upper):
    lower = np.float32([-3.0, 0.0, 1.0]) if lower == "vec" else lower
    for shape in ((1000, 3), (0, 3)) if dtype == np.float32 else ((1000, 3),):
        out = fr.truncated_normal(fkey(1), lower, upper, shape, dtype)
        assert_bits_equal(out, jax.random.truncated_normal(jkey(1), lower, upper, shape, dtype))
        x = np.asarray(out).astype(np.float32)
        lo = np.float32(lower).astype(dtype).astype(np.float32)
        # a lower bound 0 clips at nextafter(0, inf), which XLA (and so fungrad) reads as 0 when
        # it is subnormal in the compute type (bfloat16 and float32)
        assert np.all(((x > lo) | ((x == 0) & (lo == 0))) & (x < np.float32(upper).astype(dtype)))
    batched_upper = np.full((2, 1, 1), 3.0, np.float32)
    assert fr.truncated_normal(fkey(1), lower, batched_upper).shape == (2, 1, np.size(lower))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("lower,upper", [(-1.5, 0.5), (-6.0, -4.0), (0.0, 8.0)])
def test_truncated_normal_large(dtype, lower, upper):
    for seed in (0, 3):
        assert_bits_equal(fr.truncated_normal(fkey(seed), lower, upper, (STREAM,), dtype),
                          jax_ref("truncated_normal", seed, (STREAM,), dtype, lower, upper))


def test_complex_normal():
    assert_bits_equal(fr.normal(fkey(2), (5000,), np.complex64),
                      jax.random.normal(jkey(2), (5000,), np.complex64))


# --------------------------------------------------------------------------- transformations

def _keys(n, seed=0):
    return fr.split(fkey(seed), n), jax.random.split(jkey(seed), n)


VMAPPED = {
    "uniform": (lambda m, k: m.uniform(k, (3, 2))),
    "normal": (lambda m, k: m.normal(k, (4,))),
    "randint": (lambda m, k: m.randint(k, (5,), -3, 9)),
    "bernoulli": (lambda m, k: m.bernoulli(k, 0.3, (6,))),
    "split": (lambda m, k: m.split(k, 3)),
    "fold_in": (lambda m, k: m.fold_in(k, 11)),
    "permutation": (lambda m, k: m.permutation(k, 8)),
    "choice": (lambda m, k: m.choice(k, 9, (4,), replace=False)),
    "categorical": (lambda m, k: m.categorical(
        k, jnp_ref.log(jnp_ref.arange(1.0, 6.0)) if m is jax.random
        else fnp.asarray(np.log(np.arange(1.0, 6.0, dtype=np.float32))))),
}


@pytest.mark.parametrize("name", list(VMAPPED))
def test_vmap_over_keys(name):
    f = VMAPPED[name]
    fkeys, jkeys = _keys(5)
    batched = fungrad.vmap(lambda k: f(fr, k))(fkeys)
    looped = np.stack([np.asarray(f(fr, fkeys[i])) for i in range(5)])
    ref = jax.vmap(lambda k: f(jax.random, k))(jkeys)
    assert_bits_equal(batched, ref)
    assert_bits_equal(batched, looped)


def test_vmap_typed_keys_seeds_and_fold_in_data():
    typed = fr.split(fr.key(0), 4)
    out = fungrad.vmap(lambda k: fr.uniform(k, (2,)))(typed)
    assert_bits_equal(out, jax.vmap(lambda k: jax.random.uniform(k, (2,)))(
        jax.random.split(jax.random.key(0), 4)))
    keys = fungrad.vmap(fr.PRNGKey)(np.arange(4, dtype=np.int32) - 2)
    assert_bits_equal(keys, jax.vmap(jax.random.PRNGKey)(jnp_ref.arange(4, dtype=np.int32) - 2))
    folded = fungrad.vmap(lambda d: fr.fold_in(fkey(1), d))(np.arange(6, dtype=np.int32))
    assert_bits_equal(folded, jax.vmap(lambda d: jax.random.fold_in(jkey(1), d))(jnp_ref.arange(6)))
    # keys and parameters batched together, with batch dims in different places
    lo = np.arange(10, dtype=np.float32).reshape(2, 5)
    f_out = fungrad.vmap(lambda k, m: fr.uniform(k, (2,), minval=m, maxval=m + 1),
                         in_axes=(0, 1))(_keys(5)[0], lo)
    j_out = jax.vmap(lambda k, m: jax.random.uniform(k, (2,), minval=m, maxval=m + 1),
                     in_axes=(0, 1))(_keys(5)[1], lo)
    assert_bits_equal(f_out, j_out)


JITTED = {
    "uniform": (lambda m, k, x: m.uniform(k, (3, 2), minval=x, maxval=x + 2)),
    "normal": (lambda m, k, x: m.normal(k, (4,)) * x),
    "randint": (lambda m, k, x: m.randint(k, (5,), -3, 9)),
    "bernoulli": (lambda m, k, x: m.bernoulli(k, x / 4, (6,))),
    "split": (lambda m, k, x: m.split(k, (2, 2))),
    "permutation": (lambda m, k, x: m.permutation(k, 8)),
    "choice": (lambda m, k, x: m.choice(k, 9, (4,), p=(m.uniform(k, (9,)) + x))),
    "categorical": (lambda m, k, x: m.categorical(k, m.normal(k, (3, 5)) * x, shape=(2, 3))),
}


@pytest.mark.parametrize("name", list(JITTED))
def test_jit(name):
    f = JITTED[name]
    traces = []

    def traced(k, x):
        traces.append(1)
        return f(fr, k, x)
    jitted = fungrad.jit(traced)
    x = np.float32(1.5)
    # jitted draws equal eager ones bit for bit (which the tests above compare with jax),
    # and a new key reuses the compiled function
    assert_bits_equal(jitted(fkey(3), x), f(fr, fkey(3), x))
    assert_bits_equal(jitted(fkey(4), x), f(fr, fkey(4), x))
    assert len(traces) == 1


def test_jit_typed_keys_and_traced_fold_in():
    out = fungrad.jit(lambda k: fr.split(k, 3))(fr.key(2))
    assert isinstance(out, fr.PRNGKeyArray) and out.shape == (3,)
    assert_bits_equal(fr.key_data(out), jax.random.key_data(jax.random.split(jax.random.key(2), 3)))
    fold = fungrad.jit(lambda k, d: fr.fold_in(k, d))
    for d in (0, 5, 2 ** 31 + 1):
        assert_bits_equal(fold(fkey(1), np.uint32(d)), jax.random.fold_in(jkey(1), d))
    seeded = fungrad.jit(fr.PRNGKey)
    assert_bits_equal(seeded(np.int32(-9)), jax.random.PRNGKey(-9))


def test_scan_threads_keys():
    def body(lib):
        def step(key, x):
            key, sub = lib.split(key)
            return key, lib.uniform(sub, (2,)) + x
        return step
    xs = np.arange(5, dtype=np.float32)
    f_carry, f_ys = lax.scan(body(fr), fkey(0), xs)
    j_carry, j_ys = jax.lax.scan(body(jax.random), jkey(0), xs)
    assert_bits_equal(f_carry, j_carry)
    assert_bits_equal(f_ys, j_ys)
    typed_carry, typed_ys = fungrad.jit(lambda k: lax.scan(body(fr), k, xs))(fr.key(0))
    assert isinstance(typed_carry, fr.PRNGKeyArray)
    assert_bits_equal(typed_ys, f_ys)


def test_checkpoint_with_typed_key():
    def f(k, x):
        return (x * fr.normal(k, (3,))).sum()
    g = fungrad.grad(fungrad.checkpoint(f), argnums=1)(fr.key(1), np.float32(2.0))
    assert_bits_equal(g, np.asarray(jax.random.normal(jax.random.key(1), (3,))).sum())


def test_grad_through_samplers():
    def f(lib, m):
        key = fkey(0) if lib is fr else jkey(0)
        return lib.uniform(key, (5,), minval=m, maxval=2 * m + 3).sum()
    fg = fungrad.grad(lambda m: f(fr, m))(np.float32(0.5))
    jg = jax.grad(lambda m: f(jax.random, m))(np.float32(0.5))
    assert_bits_equal(fg, jg)
    fg = fungrad.grad(lambda s: (s * fr.normal(fkey(1), (4,))).sum())(np.float32(2.0))
    jg = jax.grad(lambda s: (s * jax.random.normal(jkey(1), (4,))).sum())(np.float32(2.0))
    assert_bits_equal(fg, jg)


# --------------------------------------------------------------------------- errors

def test_bad_keys():
    with pytest.raises(TypeError, match="uniform.*PRNG key.*f32\\[2\\]"):
        fr.uniform(np.zeros(2, np.float32), (3,))
    with pytest.raises(TypeError, match="normal.*PRNG key.*u32\\[3\\]"):
        fr.normal(np.zeros(3, np.uint32))
    with pytest.raises(ValueError, match="split accepts a single key.*vmap"):
        fr.split(fr.split(fkey(0)))
    with pytest.raises(TypeError, match="randint.*PRNG key"):
        fr.randint("key", (2,), 0, 3)
    with pytest.raises(TypeError, match="wrap_key_data.*i32\\[2\\]"):
        fr.wrap_key_data(np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="unsupported PRNG implementation"):
        fr.key(0, impl="rbg")


def test_bad_seeds_and_data():
    with pytest.raises(TypeError, match="PRNGKey.*integer"):
        fr.PRNGKey(1.5)
    with pytest.raises(TypeError, match="PRNGKey accepts a scalar seed"):
        fr.PRNGKey(np.zeros(2, np.int32))
    with pytest.raises(TypeError, match="key accepts a scalar seed, but was given a PRNG key"):
        fr.key(fr.key(1))
    with pytest.raises(OverflowError, match="PRNGKey"):
        fr.PRNGKey(2 ** 64)
    with pytest.raises(OverflowError, match="fold_in"):
        fr.fold_in(fkey(0), -1)
    with pytest.raises(TypeError, match="fold_in accepts a scalar"):
        fr.fold_in(fkey(0), np.arange(2))


def test_bad_sampler_arguments():
    k = fkey(0)
    with pytest.raises(TypeError, match="randint only accepts integer dtypes"):
        fr.randint(k, (3,), 0, 5, np.float32)
    with pytest.raises(ValueError, match="dtype argument to `uniform` must be a float"):
        fr.uniform(k, (3,), np.int32)
    with pytest.raises(ValueError, match="dtype argument to `bits` must be an unsigned"):
        fr.bits(k, (3,), np.int32)
    with pytest.raises(ValueError, match="uniform: parameter shapes"):
        fr.uniform(k, (3,), minval=np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="randint: parameter shapes"):
        fr.randint(k, (3,), np.array([0, 1]), 5)
    with pytest.raises(ValueError, match="bernoulli: parameter shapes"):
        fr.bernoulli(k, np.full(2, 0.5, np.float32), (3,))
    with pytest.raises(TypeError, match="bernoulli.*floating"):
        fr.bernoulli(k, 1)
    with pytest.raises(TypeError, match="normal: argument 'shape' must have every element be "
                       "nonnegative"):
        fr.normal(k, (-1,))
    with pytest.raises(TypeError, match="permutation: x must be an integer"):
        fr.permutation(k, 1.5)
    with pytest.raises(ValueError, match="cannot take a larger sample"):
        fr.choice(k, 5, (6,), replace=False)
    with pytest.raises(ValueError, match="p must be None or a 1D vector"):
        fr.choice(k, 5, (2,), p=np.ones(4, np.float32) / 4)
    with pytest.raises(TypeError, match="choice: shape argument must be a sequence"):
        fr.choice(k, 5, 3)
    with pytest.raises(ValueError, match="categorical: parameter shapes"):
        fr.categorical(k, np.zeros((3, 4), np.float32), shape=(5,))
    with pytest.raises(ValueError, match="gumbel: mode"):
        fr.gumbel(k, (2,), mode="medium")


# --------------------------------------------------------------------------- statistics

def test_moments():
    n = 200_000
    u = np.asarray(fr.uniform(fkey(0), (n,)), np.float64)
    z = np.asarray(fr.normal(fkey(1), (n,)), np.float64)
    e = np.asarray(fr.exponential(fkey(2), (n,)), np.float64)
    se = 1 / math.sqrt(n)  # standard errors are a few times this
    assert abs(u.mean() - 0.5) < 5 * se * math.sqrt(1 / 12)
    assert abs(u.var() - 1 / 12) < 5 * se * 0.075
    assert 0 <= u.min() and u.max() < 1
    assert abs(z.mean()) < 5 * se and abs(z.var() - 1) < 5 * se * math.sqrt(2)
    assert abs(((z - z.mean()) ** 3).mean()) < 5 * se * math.sqrt(15)
    assert abs(e.mean() - 1) < 5 * se and abs(e.var() - 1) < 5 * se * math.sqrt(8)
    assert e.min() >= 0


def test_categorical_chi_square():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    draws = np.asarray(fr.categorical(fkey(5), np.log(probs).astype(np.float32), shape=(40_000,)))
    counts = np.bincount(draws, minlength=4)
    expected = probs * draws.size
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 16.27  # the 0.999 quantile of chi-square with 3 degrees of freedom
    ints = np.asarray(fr.randint(fkey(6), (40_000,), 0, 4))
    chi2 = ((np.bincount(ints, minlength=4) - 10_000) ** 2 / 10_000).sum()
    assert chi2 < 16.27


# --------------------------------------------------------------------------- XLA's float32 math

def test_xla_fma_rounds_once():
    from fungrad.random._xla_math import fma
    # exactly 1 + 2**-23 + 2**-24 - 2**-60: rounds down to 1 + 2**-23, but its float64 rounding
    # is the float32 midpoint 1 + 2**-23 + 2**-24, which ties to even 1 + 2**-22
    a, b = np.float32(1 + 2 ** -18), np.float32(2 ** -24 * (1 - 2 ** -18))
    c = np.float32(1 + 2 ** -23)
    assert fma(np, a, b, c) == np.float32(1 + 2 ** -23)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(200_000).astype(np.float32) for _ in range(2))
    c = np.concatenate([rng.standard_normal(100_000),
                        -(a[100_000:].astype(np.float64) * b[100_000:])]).astype(np.float32)
    # XLA contracts a * b + c into an FMA
    assert_bits_equal(fma(np, a, b, c), jax.jit(lambda a, b, c: a * b + c)(a, b, c))



def _rounded_to_float16(exact: Fraction) -> np.float16:
    """``exact`` rounded once to float16 (to nearest, ties to even)."""
    near = np.float16(float(exact))  # within one step: float64 rounds first
    candidates = [np.nextafter(near, np.float16(-np.inf)), near,
                  np.nextafter(near, np.float16(np.inf))]
    return min(candidates, key=lambda x: (abs(Fraction(float(x)) - exact),
                                          int(np.array(x).view(np.uint16)) & 1))


def test_xla_fma_rounds_once_in_float16():
    """float16 ``a * b + c`` against exact rational arithmetic, on random operands and on
    those where a float32 FMA rounded to float16 rounds twice (it lands on a float16
    midpoint the exact sum is not on). The samplers' multiply-add is one rounding where the
    processor has float16 arithmetic and two elsewhere, as XLA's on the same processor."""
    from fungrad.random._samplers import _fma
    from fungrad.random._xla_math import fma
    rng = np.random.default_rng(3)
    n = 2_000_000
    a, b, c = (rng.uniform(lo, hi, n).astype(np.float16)
               for lo, hi in ((0, 1), (0.5, 8), (-4, 4)))
    exact64 = a.astype(np.float64) * b + c.astype(np.float64)  # exact at these magnitudes
    twice = exact64.astype(np.float32).astype(np.float16) != exact64.astype(np.float16)
    assert 3 <= twice.sum() < 100
    pick = np.flatnonzero(twice | (np.arange(n) < 3000))
    a, b, c = a[pick], b[pick], c[pick]
    want = [_rounded_to_float16(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
            for x, y, z in zip(a, b, c)]
    assert_bits_equal(fma(np, a, b, c, np.float16), np.array(want, np.float16))
    assert_bits_equal(fungrad.jit(_fma)(a, b, c), jax.jit(lambda a, b, c: a * b + c)(a, b, c))


def test_xla_math_on_every_float32_draw():
    """Every float32 uniform draw u (one of 2**23) through the samplers' transforms."""
    from fungrad.random import _xla_math as xm
    mantissas = np.arange(2 ** 23, dtype=np.uint32)
    u = (mantissas | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)
    # normal's uniform(-1 + eps, 1), the FMA u * 2 + (-1 + eps): doubling u is exact, so the
    # float32 sum rounds once as the FMA does, to the same bits (xm.fma on NumPy takes over a
    # second here: each of these sums is exact in float64, so each is a possible halfway case).
    sym = u * np.float32(2) + np.float32(-1 + 2 ** -24)
    assert_bits_equal(fungrad.jit(xm.xla_erf_inv)(sym), jax.jit(jax.lax.erf_inv)(sym))
    assert_bits_equal(fungrad.jit(xm.xla_log1p)(-u), jax.jit(jax.lax.log1p)(-u))
    tiny = np.maximum(u, np.finfo(np.float32).tiny)
    assert_bits_equal(fungrad.jit(xm.xla_log)(tiny), jax.jit(jax.lax.log)(tiny))
    x = np.linspace(-5, 5, 1_000_001, dtype=np.float32)
    assert_bits_equal(fungrad.jit(xm.xla_erf)(x), jax.jit(jax.lax.erf)(x))
