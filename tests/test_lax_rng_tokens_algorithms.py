"""XLA-level lax operations against jax: ``rng_bit_generator`` bit for bit (every algorithm,
dtype, many shapes, the new key, jit, vmap, x64 keys), ``rng_uniform`` (types, ranges, fresh
draws, errors), ``DotAlgorithmPreset`` numerics on the CPU (exact on inputs whose sums are
exact in every format, through lax, jax.numpy, gradients and vmap) and their errors, tokens,
``pcast``, and ``ragged_all_to_all`` under vmap against the semantics jax documents (jax's
CPU backend cannot run it, and jax's vmap rejects it)."""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest
from jax.sharding import PartitionSpec as JP

import fungrad
import fungrad.numpy as jnp
from fungrad import lax
from fungrad.sharding import PartitionSpec as FP, make_mesh
from harness import assert_same, compare, compare_types, to_jax, x64

RNG = np.random.default_rng(0)
BF16 = np.dtype(ml_dtypes.bfloat16)


def _exact(got, want) -> None:
    """fungrad's and jax's results have the same tree, dtypes, shapes and bits."""
    got_leaves, want_leaves = fungrad.tree.leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for a, b in zip(got_leaves, want_leaves):
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), ((a.dtype, a.shape), (b.dtype, b.shape))
        np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


def _raises_like(fg_call, jax_call) -> Exception:
    """Both raise the same exception type with the same message; returns fungrad's."""
    with pytest.raises(Exception) as want:
        jax_call()
    with pytest.raises(type(want.value)) as got:
        fg_call()
    assert str(want.value) in str(got.value), (str(got.value), str(want.value))
    return got.value


# ----------------------------------------------------------------------------- rng_bit_generator

SHAPES = [(), (0,), (4,), (5,), (2, 3), (3, 5), (3, 1, 7), (2, 0), (7, 4, 3)]
KEYS = [np.array([1, 2, 3, 4], np.uint32),
        np.array([0x9E3779B9, 0x7F4A7C15, 0xFFFFFFFE, 0xFFFFFFFF], np.uint32)]  # counter wraps


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("algorithm", list(jax.lax.RandomAlgorithm), ids=str)
def test_rng_bit_generator_bits_and_key_are_jaxs(algorithm, dtype):
    fg_jit = fungrad.jit(lambda k, shape: lax.rng_bit_generator(k, shape, dtype, int(algorithm)),
                         static_argnums=1)
    for key in KEYS:
        for shape in SHAPES:
            # without x64 jax warns that uint64 becomes uint32 (fungrad converts silently)
            with pytest.warns(UserWarning) if dtype == np.uint64 else contextlib.nullcontext():
                want = jax.lax.rng_bit_generator(key, shape, dtype, algorithm)
            _exact(lax.rng_bit_generator(key, shape, dtype, lax.RandomAlgorithm(algorithm)), want)
            _exact(fg_jit(key, shape), want)


def test_rng_bit_generator_64_bit_values_and_keys_with_x64():
    with x64():
        k64 = np.array([0x0123456789ABCDEF, 0xFFFFFFFFFFFFFFFE], np.uint64)
        for algorithm in jax.lax.RandomAlgorithm:
            for key in (KEYS[1], k64):
                for shape in [(), (3,), (2, 5), (4, 3)]:
                    _exact(lax.rng_bit_generator(key, shape, np.uint64, algorithm),
                           jax.lax.rng_bit_generator(key, shape, np.uint64, algorithm))


def test_rng_bit_generator_under_vmap_is_jaxs_rule():
    """jax's batching rule: the members share the first key's stream, only it advances."""
    keys = RNG.integers(0, 2 ** 32, (3, 4), dtype=np.uint64).astype(np.uint32)
    for algorithm in jax.lax.RandomAlgorithm:
        for axis in (0, 1):
            fg = fungrad.vmap(lambda k: lax.rng_bit_generator(k, (2, 3), np.uint16, algorithm),
                              in_axes=axis, out_axes=axis)
            jx = jax.vmap(lambda k: jax.lax.rng_bit_generator(k, (2, 3), np.uint16, algorithm),
                          in_axes=axis, out_axes=axis)
            _exact(fg(np.moveaxis(keys, 0, axis)), jx(np.moveaxis(keys, 0, axis)))


def test_rng_bit_generator_staging_and_errors():
    key = KEYS[0]
    assert fungrad.eval_shape(lambda k: lax.rng_bit_generator(k, (2, 3)), key)[1].shape == (2, 3)
    eqn, = fungrad.make_jaxpr(lambda k: lax.rng_bit_generator(k, (2,), np.uint8))(key).jaxpr.eqns
    assert eqn.primitive.name == "rng_bit_generator" and eqn.params["dtype"] == np.uint8
    for dtype in (np.int32, np.float32, np.bool_):
        _raises_like(lambda: lax.rng_bit_generator(key, (3,), dtype),
                     lambda: jax.lax.rng_bit_generator(key, (3,), dtype))
    with pytest.raises(TypeError, match="key must be a uint32"):
        lax.rng_bit_generator(key[:2], (3,))
    with pytest.raises(TypeError, match="key must be a uint32"):
        lax.rng_bit_generator(key.astype(np.int32), (3,))
    with pytest.raises(ValueError, match="RandomAlgorithm"):
        lax.rng_bit_generator(key, (3,), algorithm=5)
    with pytest.raises(TypeError, match="nonnegative"):
        lax.rng_bit_generator(key, (-1,))
    assert str(lax.RandomAlgorithm.RNG_PHILOX) == "RNG_PHILOX"
    assert [int(a) for a in lax.RandomAlgorithm] == [int(a) for a in jax.lax.RandomAlgorithm]


# ----------------------------------------------------------------------------- rng_uniform

UNIFORM_DTYPES = [np.float16, BF16, np.float32, np.int32, np.uint32]


@pytest.mark.parametrize("dtype", UNIFORM_DTYPES, ids=lambda d: np.dtype(d).name)
def test_rng_uniform_types_and_range(dtype):
    lo, hi = np.array(2, dtype), np.array(7, dtype)
    outs = compare_types(lambda a, b: lax.rng_uniform(a, b, (4000,)),
                         lambda a, b: jax.lax.rng_uniform(a, b, (4000,)), lo, hi)
    integer = np.dtype(dtype).kind in "iu"
    for out in outs:
        x = np.asarray(out).astype(np.float64)
        assert x.min() >= 2 and (x.max() < 7 or np.dtype(dtype).itemsize == 2)  # 16-bit: rounded
        assert abs(x.mean() - (4.0 if integer else 4.5)) < 0.15
        if integer:
            assert set(np.unique(x)) == {2, 3, 4, 5, 6}


def test_rng_uniform_draws_fresh_values_and_weak_types():
    compare_types(lambda: lax.rng_uniform(0.0, 1.0, [2, 3]),
                  lambda: jax.lax.rng_uniform(0.0, 1.0, [2, 3]))
    first, second = lax.rng_uniform(0.0, 1.0, (8,)), lax.rng_uniform(0.0, 1.0, (8,))
    assert not np.array_equal(first, second)
    draw_twice = fungrad.jit(lambda: (lax.rng_uniform(0.0, 1.0, (8,)),
                                      lax.rng_uniform(0.0, 1.0, (8,))))
    (a, b), (c, _) = draw_twice(), draw_twice()
    assert not np.array_equal(a, b) and not np.array_equal(a, c)  # no CSE, no constant folding
    with x64():
        x = lax.rng_uniform(np.float64(-1), np.float64(1), (1000,))
        y = lax.rng_uniform(np.int64(-3), np.int64(3), (1000,))
        assert x.dtype == np.float64 and -1 <= np.asarray(x).min() and np.asarray(x).max() < 1
        assert y.dtype == np.int64 and set(np.unique(np.asarray(y))) == set(range(-3, 3))
    # the same values for every member of an axis the bounds do not vary over
    rows = np.asarray(fungrad.vmap(lambda _: lax.rng_uniform(0.0, 1.0, (3,)))(np.zeros(4)))
    assert (rows == rows[0]).all()


def test_rng_uniform_errors_are_jaxs():
    for a, b, shape in [(np.float32(0), np.int32(1), (2,)), (np.zeros(2, np.float32), 1.0, (2,))]:
        _raises_like(lambda: lax.rng_uniform(a, b, shape),
                     lambda: jax.lax.rng_uniform(a, b, shape))
    _raises_like(lambda: lax.rng_uniform(0.0, 1.0, 3), lambda: jax.lax.rng_uniform(0.0, 1.0, 3))
    with pytest.raises(ValueError):  # jax: when it lowers (and on 8/16-bit ints XLA aborts)
        lax.rng_uniform(np.complex64(0), np.complex64(1), (2,))
    with pytest.raises(ValueError, match="unsupported dtype int8"):
        lax.rng_uniform(np.int8(0), np.int8(1), (2,))
    for transform, arg in [("grad", 0.5), ("vmap", np.zeros(3, np.float32))]:
        with pytest.raises(NotImplementedError):
            getattr(jax, transform)(lambda a: jax.lax.rng_uniform(a, 1.0, ()))(arg)
        with pytest.raises(NotImplementedError, match="rng_uniform"):
            getattr(fungrad, transform)(lambda a: lax.rng_uniform(a, 1.0, ()))(arg)
    # bounds that are not differentiated are fine under grad, as in jax
    assert 0 <= float(fungrad.grad(lambda x: x * lax.rng_uniform(0.0, 1.0, ()))(2.0)) < 1


# ----------------------------------------------------------------------------- dot algorithms

PRESETS = ["DEFAULT", "F16_F16_F16", "BF16_BF16_F32", "BF16_BF16_F32_X3", "BF16_BF16_F32_X6",
           "F32_F32_F32", "F64_F64_F64"]
UNSUPPORTED = ["ANY_F8_ANY_F8_F32", "ANY_F8_ANY_F8_ANY_FAST_ACCUM", "F16_F16_F32",
               "BF16_BF16_BF16", "BF16_BF16_F32_X9", "TF32_TF32_F32", "TF32_TF32_F32_X3"]
# (lhs shape, rhs shape, dimension numbers): with and without contracting dimensions
CONTRACTIONS = {
    "matmul": ((3, 8), (8, 4), (((1,), (0,)), ((), ()))),
    "batched": ((2, 3, 8), (2, 8, 4), (((2,), (1,)), ((0,), (0,)))),
    "outer": ((3,), (4,), (((), ()), ((), ()))),
    "batched_outer": ((2, 3), (2, 4), (((), ()), ((0,), (0,)))),
}
DOT_DTYPES = [np.float16, BF16, np.float32, np.int32]


def _operands(lhs_shape, rhs_shape, dtype, contracting=True, eps=2.0 ** -12):
    """Small integers, plus ``eps`` on some contracted entries of the lhs and ``2 * eps`` on
    others of the rhs (never on both of a pair that multiplies): every product and sum is
    exact in float32 whatever the order, and an operand rounding to float16 or bfloat16 (to
    bfloat16 only, with ``eps = 2**-9``) shows."""
    a = RNG.integers(-4, 5, lhs_shape).astype(np.float64)
    b = RNG.integers(-4, 5, rhs_shape).astype(np.float64)
    if contracting and len(lhs_shape) >= 2:
        a[..., 0::2] += eps
        b[..., 1::2, :] += 2 * eps
    else:  # one product per result: perturb both
        a += eps
        b += eps
    return a.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("dtype", DOT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("preset", PRESETS)
def test_presets_compute_as_jax_on_the_cpu(preset, dtype):
    for name, (ls, rs, dims) in CONTRACTIONS.items():
        a, b = _operands(ls, rs, dtype, contracting=bool(dims[0][0]))
        want = jax.lax.dot_general(a, b, dims, precision=preset)
        fg = lambda x, y: lax.dot_general(x, y, dims, precision=preset)  # noqa: E731
        _exact(fg(a, b), want)
        _exact(fungrad.jit(fg)(a, b), want)
        by_enum = lax.dot_general(a, b, dims, precision=lax.DotAlgorithmPreset[preset])
        _exact(by_enum, want)
        if np.dtype(dtype) == np.float32 and preset == "F16_F16_F16":
            # the preset rounds these operands: the test sees whether it is applied
            assert not np.array_equal(want, jax.lax.dot_general(a, b, dims)), name


def test_presets_with_other_operand_and_result_types():
    a, b = _operands((3, 8), (8, 4), np.float32)
    cases = [("F16_F16_F16", a.astype(np.float16), b, None),  # mixed operands
             ("BF16_BF16_F32", a.astype(np.float16), b.astype(np.float16), np.float32),
             ("F16_F16_F16", a, b, np.float16),
             ("BF16_BF16_F32", a, b, BF16),
             ("F16_F16_F16", a.astype(np.int32), b.astype(np.int32), np.int8),  # no width rule
             ("F64_F64_F64", a, b, None)]  # float64 inside, without x64
    for preset, x, y, preferred in cases:
        _exact(lax.dot(x, y, precision=preset, preferred_element_type=preferred),
               jax.lax.dot(x, y, precision=preset, preferred_element_type=preferred))
    x, y = _operands((3, 8), (8, 4), np.float16, eps=2.0 ** -9)  # float16 holds them
    want = jax.lax.dot(x, y, precision="BF16_BF16_F32", preferred_element_type=np.float32)
    assert not np.array_equal(want, jax.lax.dot(x, y, preferred_element_type=np.float32))
    _exact(lax.dot(x, y, precision="BF16_BF16_F32", preferred_element_type=np.float32), want)
    with x64():
        x, y = a.astype(np.float64), b.astype(np.float64)
        for preset in ("F16_F16_F16", "BF16_BF16_F32", "F32_F32_F32", "F64_F64_F64"):
            _exact(lax.dot(x, y, precision=preset), jax.lax.dot(x, y, precision=preset))


def test_presets_through_jax_numpy_and_ragged_dot():
    a, b = _operands((3, 8), (8, 4), np.float32)
    batched = np.stack([a, a[::-1]])
    calls = [
        lambda np_, p: np_.matmul(batched, b, precision=p),
        lambda np_, p: np_.dot(a, b, precision=p),
        lambda np_, p: np_.einsum("bij,jk->bik", batched, b, precision=p),
        lambda np_, p: np_.tensordot(a, b, 1, precision=p),
        lambda np_, p: np_.inner(a, b.T, precision=p),
    ]
    for call in calls:
        for preset in ("F16_F16_F16", jax.lax.DotAlgorithmPreset.BF16_BF16_F32):
            fg_preset = preset if isinstance(preset, str) else lax.DotAlgorithmPreset[preset.name]
            _exact(call(jnp, fg_preset), call(jnp_ref, preset))
            _exact(fungrad.jit(lambda: call(jnp, fg_preset))(), call(jnp_ref, preset))
    gs = np.array([1, 2], np.int32)
    w = np.stack([b, b[:, ::-1]])
    _exact(lax.ragged_dot(a, w, gs, precision="F16_F16_F16"),
           jax.lax.ragged_dot(a, w, gs, precision="F16_F16_F16"))


def test_preset_gradients_and_vmap_are_jaxs():
    a, b = _operands((3, 8), (8, 4), np.float32)
    ct = RNG.integers(-3, 4, (3, 4)).astype(np.float32)
    for preset in ("F16_F16_F16", "BF16_BF16_F32"):
        fg = lambda x, y: lax.dot(x, y, precision=preset)  # noqa: E731
        jx = lambda x, y: jax.lax.dot(x, y, precision=preset)  # noqa: E731
        _exact(fungrad.vjp(fg, a, b)[1](ct), jax.vjp(jx, a, b)[1](ct))
        _exact(fungrad.jvp(fg, (a, b), (a, b))[1], jax.jvp(jx, (a, b), (a, b))[1])
        stack = np.stack([a, -a, a[::-1]])
        _exact(fungrad.vmap(fg, (0, None))(stack, b), jax.vmap(jx, (0, None))(stack, b))
        _exact(fungrad.vmap(fg, (None, 1))(a, np.stack([b, -b], 1)),
               jax.vmap(jx, (None, 1))(a, np.stack([b, -b], 1)))


def test_unsupported_algorithms_raise_as_jax_on_the_cpu():
    a = np.ones((2, 3), np.float32)
    algorithm = (lax.DotAlgorithm(np.float16, np.float16, np.float32),
                 jax.lax.DotAlgorithm(np.float16, np.float16, np.float32))
    for fg_p, jx_p in [(name, name) for name in UNSUPPORTED] + [algorithm]:
        fg = lambda x: lax.dot(x, x.T, precision=fg_p)  # noqa: E731
        jx = lambda x: jax.lax.dot(x, x.T, precision=jx_p)  # noqa: E731
        _raises_like(lambda: fg(a), lambda: jx(a))
        _raises_like(lambda: fungrad.jit(fg)(a), lambda: jax.jit(jx)(a))
        # staging does not compile: no error there, in either library
        fungrad.make_jaxpr(fg)(a)
        jax.make_jaxpr(jx)(a)
    for bad in ("f16_f16_f16", "bogus"):
        with pytest.raises(ValueError):
            jax.lax.dot(a, a.T, precision=bad)
        with pytest.raises(ValueError, match="invalid precision"):
            lax.dot(a, a.T, precision=bad)
    with pytest.raises(ValueError, match="invalid precision"):  # jax: a TypeError inside
        lax.dot(a, a.T, precision=("F16_F16_F16", "F16_F16_F16"))


def test_convolutions_accept_and_ignore_every_algorithm():
    x = RNG.uniform(-1, 1, (1, 2, 7, 7)).astype(np.float32)
    w = RNG.uniform(-1, 1, (3, 2, 3, 3)).astype(np.float32)
    want = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME")
    for name in ("F16_F16_F16", "TF32_TF32_F32", "BF16_BF16_F32_X9"):
        got = lax.conv_general_dilated(x, w, (1, 1), "SAME", precision=name)
        assert_same(got, jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", precision=name))
        assert_same(got, want)
    algorithm = lax.DotAlgorithm(np.float16, np.float16, np.float16)
    assert_same(lax.conv_general_dilated(x, w, (1, 1), "SAME", precision=algorithm), want)


def test_preset_api_is_jaxs():
    P, JP_ = lax.DotAlgorithmPreset, jax.lax.DotAlgorithmPreset
    assert [p.name for p in P] == [p.name for p in JP_]
    assert (repr(P.F16_F16_F16), str(P.F16_F16_F16)) == (repr(JP_.F16_F16_F16), "F16_F16_F16")
    for p, q in zip(P, JP_):
        assert p.supported_lhs_types == (None if q.supported_lhs_types is None else
                                         tuple(np.dtype(t) for t in q.supported_lhs_types))
        assert p.accumulation_type == (None if q.accumulation_type is None
                                       else np.dtype(q.accumulation_type))
        for lt, rt in [(np.float16, np.float16), (BF16, BF16), (np.float32, np.float16)]:
            want = q.supported_output_types(lt, rt)
            assert p.supported_output_types(lt, rt) == (
                None if want is None else tuple(np.dtype(t) for t in want))
    assert lax.DotAlgorithm._fields == jax.lax.DotAlgorithm._fields
    assert lax.DotAlgorithm(np.float16, np.float16, np.float32) == \
        jax.lax.DotAlgorithm(np.float16, np.float16, np.float32)


# ----------------------------------------------------------------------------- tokens

def test_tokens():
    token = lax.create_token()
    for lib in (fungrad, jax):
        t = lib.lax.create_token("ignored")
        assert type(lib.lax.after_all(t, lib.lax.create_token())) is type(t)
        assert type(lib.lax.after_all()) is type(t)
        assert type(lib.jit(lambda: lib.lax.after_all(lib.lax.create_token()))()) is type(t)
        assert type(lib.jit(lambda t: lib.lax.after_all(t, t))(t)) is type(t)
        out_token, x = lib.jit(lambda x: (lib.lax.create_token(), x * 2))(1.5)
        assert type(out_token) is type(t) and float(x) == 3.0
        assert float(lib.grad(lambda x: (lib.lax.after_all(lib.lax.create_token()), x * x)[1])(
            3.0)) == 6.0
    _raises_like(lambda: lax.after_all(token, jnp.ones(2)),
                 lambda: jax.lax.after_all(jax.lax.create_token(), jnp_ref.ones(2)))
    names = [e.primitive.name for e in fungrad.make_jaxpr(
        lambda: lax.after_all(lax.create_token(), lax.create_token()))().jaxpr.eqns]
    assert names == [e.primitive.name for e in jax.make_jaxpr(
        lambda: jax.lax.after_all(jax.lax.create_token(), jax.lax.create_token()))().jaxpr.eqns]
    assert names == ["create_token", "create_token", "after_all"]


# ----------------------------------------------------------------------------- pcast

def test_pcast_is_the_identity_where_axes_are_mapped():
    x = RNG.uniform(-1, 1, (4, 3)).astype(np.float32)
    compare(fungrad.vmap(lambda v: lax.pcast(v, "i", to="varying") * 2, axis_name="i"),
            jax.jit(jax.shard_map(lambda v: jax.lax.pcast(v, "i", to="varying") * 2,
                                  mesh=jax.make_mesh((1,), ("i",)), in_specs=JP(),
                                  out_specs=JP("i"))), x)
    tree = {"a": x, "b": 2.0}
    out = fungrad.vmap(lambda v: lax.pcast(v, ("i",), to="varying"), in_axes=({"a": 0, "b": None},),
                       axis_name="i")(tree)
    assert_same(out, {"a": x, "b": np.full(4, 2.0, np.float32)}, check_weak=False)
    f = fungrad.shard_map(lambda v: lax.pcast(v, "i", to="varying"),
                          mesh=make_mesh((1,), ("i",)), in_specs=FP("i"), out_specs=FP("i"))
    assert_same(f(x), x)
    assert lax.pcast(x, (), to="anything") is x
    assert_same(fungrad.grad(lambda v: fungrad.vmap(lambda w: lax.pcast(w, "i", to="varying"),
                                                    axis_name="i")(v).sum())(x), np.ones_like(x))


def test_pcast_errors():
    x = np.ones(3, np.float32)
    _raises_like(lambda: lax.pcast(x, {"i"}, to="varying"),
                 lambda: jax.lax.pcast(x, {"i"}, to="varying"))
    for fn in (lambda: lax.pcast(x, "i", to="bogus"), lambda: jax.lax.pcast(x, "i", to="bogus")):
        with pytest.raises(ValueError, match="Got unexpected `to` value"):
            fn()
    for fn in (lambda: lax.pcast(x, "i", to="varying"),
               lambda: jax.lax.pcast(x, "i", to="varying")):
        with pytest.raises(ValueError, match="should be called under"):
            fn()
    # a name no mapping binds (jax's shard_map fails an assertion there)
    with pytest.raises(NameError, match="unbound axis name: j"):
        fungrad.vmap(lambda v: lax.pcast(v, "j", to="varying"), axis_name="i")(x)
    with pytest.raises(NotImplementedError, match="reduced"):
        fungrad.vmap(lambda v: lax.pcast(v, "i", to="reduced"), axis_name="i")(x)


# ----------------------------------------------------------------------------- ragged_all_to_all

def _ragged_case(members: int, per: int, rest: tuple = ()) -> tuple:
    """Stacked per-member arguments of a consistent exchange: sender ``s`` packs its slots
    for each destination in order; each receiver lays its incoming slots out in sender
    order from a random start, leaving rows untouched."""
    sizes = RNG.integers(0, 3, (members, members, per))  # [sender, receiver, slot]
    n_rows = int(sizes.sum((1, 2)).max()) + 1
    m_rows = int(sizes.sum((0, 2)).max()) + 3
    k = members * per
    io, ss, oo, rs = (np.zeros((members, k), np.int32) for _ in range(4))
    for s in range(members):
        start = 0
        for r in range(members):
            for j in range(per):
                io[s, r * per + j], ss[s, r * per + j] = start, sizes[s, r, j]
                start += sizes[s, r, j]
    for r in range(members):
        start = int(RNG.integers(0, 3))
        for s in range(members):
            for j in range(per):
                oo[s, r * per + j], rs[r, s * per + j] = start, sizes[s, r, j]
                start += sizes[s, r, j]
    operand = RNG.uniform(-1, 1, (members, n_rows) + rest).astype(np.float32)
    output = RNG.uniform(-1, 1, (members, m_rows) + rest).astype(np.float32)
    return operand, output, io, ss, oo, rs


def _ragged_sources(io, oo, rs, m_rows) -> np.ndarray:
    """jax's documented semantics, as a map: for each receiver row, the (sender, row) it
    receives, or (-1, -1) where ``output`` is kept."""
    members, k = io.shape
    per = k // members
    src = np.full((members, m_rows, 2), -1)
    for r in range(members):
        for i in range(k):  # receiver's slot i comes from sender i // per, its slot r*per + j
            s, slot = i // per, r * per + i % per
            for t in range(rs[r, i]):
                src[r, oo[s, slot] + t] = (s, io[s, slot] + t)
    return src


def _ragged_reference(operand, output, io, ss, oo, rs):
    src = _ragged_sources(io, oo, rs, output.shape[1])
    hit = src[..., 0] >= 0
    got = operand[np.maximum(src[..., 0], 0), np.maximum(src[..., 1], 0)]
    return np.where(hit.reshape(hit.shape + (1,) * (output.ndim - 2)), got, output)


RAGGED = fungrad.vmap(lambda *a: lax.ragged_all_to_all(*a, axis_name="i"), axis_name="i")


def test_ragged_all_to_all_jax_docstring_example():
    args = ([[1, 2, 2], [3, 4, 0]], np.zeros((2, 4), np.float32), [[0, 1], [0, 1]],
            [[1, 2], [1, 1]], [[0, 0], [1, 2]], [[1, 1], [2, 1]])
    args = [np.asarray(a, np.int32 if i > 1 else np.float32) for i, a in enumerate(args)]
    want = np.array([[1, 3, 0, 0], [2, 2, 4, 0]], np.float32)  # as jax's docstring says
    assert_same(RAGGED(*args), want)
    assert_same(fungrad.jit(RAGGED)(*args), want)


@pytest.mark.parametrize("members,per,rest", [(2, 1, ()), (3, 2, ()), (4, 1, (2,))])
def test_ragged_all_to_all_values_and_derivatives(members, per, rest):
    args = _ragged_case(members, per, rest)
    want = _ragged_reference(*args)
    assert_same(RAGGED(*args), want)
    assert_same(fungrad.jit(RAGGED)(*args), want)
    # an enclosing vmap over an unrelated axis maps the whole exchange
    twice = fungrad.vmap(RAGGED, in_axes=(0, 0, None, None, None, None))
    stacked = [np.stack([a, -a]) for a in args[:2]]
    assert_same(twice(*stacked, *args[2:]), np.stack([want, _ragged_reference(
        -args[0], -args[1], *args[2:])]))
    # linear in (operand, output): the JVP is the map itself, the VJP its transpose
    operand, output, *lists = args
    f = lambda x, y: RAGGED(x, y, *lists)  # noqa: E731
    t_x, t_y = (RNG.uniform(-1, 1, a.shape).astype(np.float32) for a in (operand, output))
    assert_same(fungrad.jvp(f, (operand, output), (t_x, t_y))[1],
                _ragged_reference(t_x, t_y, *lists))
    ct = RNG.uniform(-1, 1, output.shape).astype(np.float32)
    src = _ragged_sources(lists[0], lists[2], lists[3], output.shape[1])
    hit = src[..., 0] >= 0
    ct_operand = np.zeros_like(operand)
    np.add.at(ct_operand, (src[hit][:, 0], src[hit][:, 1]), ct[hit])
    ct_output = np.where(hit.reshape(hit.shape + (1,) * len(rest)), 0, ct)
    assert_same(fungrad.vjp(f, operand, output)[1](ct), (ct_operand, ct_output))


def test_ragged_all_to_all_errors_are_jaxs():
    o, i = np.zeros((4, 2), np.float32), np.zeros(2, np.int32)
    jax_fn = jax.shard_map(lambda *a: jax.lax.ragged_all_to_all(*a, axis_name="i"),
                           mesh=jax.make_mesh((1,), ("i",)), in_specs=JP(), out_specs=JP())
    fg_fn = fungrad.vmap(lambda *a: lax.ragged_all_to_all(*a, axis_name="i"), axis_name="i",
                         in_axes=None, axis_size=1)
    bad = [(o, o, i.astype(np.float32), i, i, i), (o, o, i, i, i, np.zeros((2, 1), np.int32)),
           (o, o, np.zeros(0, np.int32), i, i, i)]
    for args in bad:
        _raises_like(lambda: fg_fn(*args), lambda: jax.make_jaxpr(jax_fn)(*args))
    _raises_like(lambda: lax.ragged_all_to_all(o, o, i, i, i, i, axis_name="i"),
                 lambda: jax.lax.ragged_all_to_all(o, o, i, i, i, i, axis_name="i"))
    with pytest.raises(NameError):
        jax.make_jaxpr(jax.shard_map(lambda x: jax.lax.ragged_all_to_all(
            x, x, i, i, i, i, axis_name="j"), mesh=jax.make_mesh((1,), ("i",)), in_specs=JP(),
            out_specs=JP()))(o)
    with pytest.raises(NameError, match="unbound axis name: j"):
        fungrad.vmap(lambda x: lax.ragged_all_to_all(x, x, i, i, i, i, axis_name="j"),
                     axis_name="i")(o[None])
    # stricter than jax: lists of one length, a multiple of the axis size; matching data
    with pytest.raises(ValueError, match="one length"):
        fg_fn(o, o, i, i, i, i[:1])
    with pytest.raises(ValueError, match="multiple of the size"):
        fungrad.vmap(lambda *a: lax.ragged_all_to_all(*a, axis_name="i"), axis_name="i",
                     in_axes=None, axis_size=3)(o, o, i, i, i, i)
    with pytest.raises(TypeError, match="one dtype"):
        fg_fn(o, o.astype(np.int32), i, i, i, i)
    # jax's vmap rejects the exchange over its own axis (fungrad's computes it, above)
    with pytest.raises(NotImplementedError):
        jax.vmap(lambda *a: jax.lax.ragged_all_to_all(*a, axis_name="i"), axis_name="i")(
            *to_jax(_ragged_case(2, 1)))
