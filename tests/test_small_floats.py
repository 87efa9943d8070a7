"""ml_dtypes' small floats (``float8_*``, ``float6_*``, ``float4_e2m1fn``) against jax: the
names, promotion (only with Python scalars), conversions, arithmetic computed in float32 and
rounded once, reductions, sorting, matmuls with ``preferred_element_type``, transformations.
Results are compared bit for bit (as raw bytes) with jax's on the same inputs; jax's CPU
backend cannot hold float6 arrays, so those are compared with NumPy arithmetic in float32
rounded once (what XLA does for the other small floats)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
import harness
from fungrad import backends, errors

NAMES = [n for n in ("float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz", "float8_e4m3fn",
                     "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
                     "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn")
         if hasattr(jnp_ref, n) and hasattr(ml_dtypes, n)]


def _jax_holds(name: str) -> bool:
    try:
        jnp_ref.asarray(np.ones(2, getattr(ml_dtypes, name))).block_until_ready()
    except Exception:  # noqa: BLE001 (XLA's error for a type its CPU backend lacks)
        return False
    return True


JAX_NAMES = [n for n in NAMES if _jax_holds(n)]
# e8m0fnu holds only powers of two (no sign, no zero): its own inputs below
SIGNED = [n for n in JAX_NAMES if n != "float8_e8m0fnu"]
SMALL = [np.dtype(getattr(ml_dtypes, n)) for n in NAMES]


def _inputs(name: str, shape=(3, 4), seed: int = 0) -> np.ndarray:
    """Values of dtype ``name`` (float32 draws rounded to it), within its range."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(getattr(ml_dtypes, name))
    top = min(float(ml_dtypes.finfo(dt).max), 6.0)
    if name == "float8_e8m0fnu":
        return (2.0 ** rng.integers(-4, 4, shape)).astype(np.float32).astype(dt)
    return rng.uniform(-top, top, shape).astype(np.float32).astype(dt)


def _has_nan(dt: np.dtype) -> bool:
    """Whether floating dtype ``dt`` has a NaN (float4 and float6 have none)."""
    if dt.kind in "biu":
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.isnan(np.array(np.nan, np.float32).astype(dt).astype(np.float32)))


def _same_bits(got, want) -> None:
    """Same dtype, shape and bytes; NaNs compared by position (their sign bits and payloads
    are the backend's)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    if _has_nan(got.dtype):
        nan = np.isnan(want.astype(np.float32))
        np.testing.assert_array_equal(np.isnan(got.astype(np.float32)), nan)
        got, want = got[~nan], want[~nan]
    assert got.tobytes() == want.tobytes(), (got, want)


def _quick_jit(fn):
    """``jax.jit`` compiling quickly. Each test takes jax's results from one such program:
    eagerly, jax compiles every operation apart for each dtype and shape, which was most of
    these tests' time. The inputs are the program's arguments, so XLA folds nothing into a
    constant, and computes each operation on a small float in float32 rounded once, as it
    does eagerly: the bits are the same."""
    return jax.jit(fn, compiler_options=harness.QUICK_COMPILE)


def test_names_are_there_and_match_jax():
    for name in NAMES:
        assert np.dtype(getattr(jnp, name).dtype) == np.dtype(getattr(jnp_ref, name).dtype)
        assert name in jnp.__all__
        assert jnp.issubdtype(getattr(jnp, name), jnp.floating)
        assert jnp.isdtype(np.dtype(getattr(jnp, name).dtype), "real floating")
        ours, theirs = jnp.finfo(getattr(jnp, name)), jnp_ref.finfo(getattr(jnp_ref, name))
        assert (float(ours.max), float(ours.eps), ours.bits) \
            == (float(theirs.max), float(theirs.eps), theirs.bits)


@pytest.mark.parametrize("name", JAX_NAMES)
def test_promotion(name):
    dt = np.dtype(getattr(ml_dtypes, name))
    for other in (np.float32, np.float16, ml_dtypes.bfloat16, np.complex64, *SMALL):
        if other != dt:
            with pytest.raises(errors.TypePromotionError, match=f"{name}.*explicitly"):
                jnp.promote_types(dt, other)
            with pytest.raises(jax.dtypes.TypePromotionError):
                jnp_ref.promote_types(dt, other)
    for other in (np.int8, np.uint32, np.bool_, dt):  # integers and bools join a float
        assert jnp.promote_types(dt, other) == jnp_ref.promote_types(dt, other) == dt
    x, x_ref = jnp.asarray(_inputs(name)), jnp_ref.asarray(_inputs(name))
    for scalar in (2, 1.5, True):
        assert jnp.result_type(x, scalar) == jnp_ref.result_type(x_ref, scalar)
    with pytest.raises(TypeError, match=name):
        x + jnp.ones(4, jnp.float32)


@pytest.mark.parametrize("name", JAX_NAMES)
def test_conversions(name):
    dt = np.dtype(getattr(ml_dtypes, name))
    wide = np.array([0.0, -0.0, 0.3, -1.7, 2.5, 1000.0, -1e6, np.inf, np.nan, 1e-6], np.float32)
    _same_bits(jnp.asarray(wide).astype(dt), jnp_ref.asarray(wide).astype(dt))
    _same_bits(jnp.asarray(wide, dtype=dt), jnp_ref.asarray(wide, dtype=dt))
    x = _inputs(name)
    for target in (np.float32, np.float16, ml_dtypes.bfloat16, np.int32, np.uint8, np.bool_):
        # XLA turns float4's largest value (6) into the integer limits: the reference is
        # jax's conversion of the same values in float32 (which holds them exactly)
        source = x.astype(np.float32) if name == "float4_e2m1fn" else x
        _same_bits(jnp.asarray(x).astype(target), jnp_ref.asarray(source).astype(target))
    assert jnp.zeros(3, dt).dtype == dt and jnp.ones((2,), name).dtype == dt


UNARY = ["negative", "abs", "exp", "log", "sqrt", "tanh", "sin", "floor", "ceil", "round",
         "square", "sign", "reciprocal", "log1p", "isnan", "isfinite"]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "less",
          "equal", "arctan2", "fmod"]


class _Float32Reference:
    """NumPy's op on the float32 values, rounded back once: the reference where jax cannot
    hold the dtype."""

    def __getattr__(self, op):
        def apply(*args):
            dt = args[0].dtype
            with np.errstate(all="ignore"):
                out = getattr(np, op)(*(np.asarray(a, np.float32) for a in args))
            return out if out.dtype == np.bool_ else out.astype(dt)
        return apply


def _ops(n, unary, x, y) -> list:
    """Each op of ``unary`` on ``x``, then each of ``BINARY`` on ``x`` and ``y``, with the
    functions of ``n``."""
    return [getattr(n, op)(x) for op in unary] + [getattr(n, op)(x, y) for op in BINARY]


@pytest.mark.parametrize("name", NAMES)
def test_elementwise_bit_exact(name):
    x, y = _inputs(name, seed=0), _inputs(name, seed=1)
    if not _has_nan(x.dtype):  # a NaN's conversion to such a type is the backend's choice
        x, y = abs(x), np.where(y == 0, 1, abs(y)).astype(y.dtype)
    # float8_e8m0fnu has no sign bit to flip
    unary = [op for op in UNARY if name != "float8_e8m0fnu" or op not in ("negative", "sign")]
    if name in JAX_NAMES:
        # then arithmetic rounded after each operation, and a selection by NumPy's x > y (the
        # same mask as fungrad's below)
        want = _quick_jit(lambda a, b, a_gt_b: _ops(jnp_ref, unary, a, b) + [
            a * 3 + 0.5, jnp_ref.where(a_gt_b, a, b)])(x, y, x > y)
    else:
        with np.errstate(all="ignore"):
            want = _ops(_Float32Reference(), unary, x, y)
    for op, ref in zip(unary, want):
        for fn in (getattr(jnp, op), fungrad.jit(getattr(jnp, op))):
            with np.errstate(all="ignore"):
                _same_bits(fn(x), ref)
    for op, ref in zip(BINARY, want[len(unary):]):
        with np.errstate(all="ignore"):
            _same_bits(getattr(jnp, op)(x, y), ref)
    if name not in JAX_NAMES:
        return
    _same_bits(jnp.asarray(x) * 3 + 0.5, want[-2])
    _same_bits(jnp.where(x > y, x, y), want[-1])


def _reductions(n, cummax, a) -> list:
    """max and min (of all, along each axis), argmax, argmin and ``cummax`` along axis 1,
    with the functions of ``n``."""
    return ([getattr(n, op)(a, axis=axis) for op in ("max", "min") for axis in (None, 0, 1)]
            + [getattr(n, op)(a, axis=1) for op in ("argmax", "argmin")] + [cummax(a, axis=1)])


def _sorting_and_shapes(n, a) -> list:
    return [n.argsort(a, axis=1), n.sort(a, axis=1), n.concatenate([a, a]),
            n.transpose(a)[::2], n.asarray(a).at[1, 2].set(2.0), n.pad(a, 1)]


@pytest.mark.parametrize("name", JAX_NAMES)
def test_reductions_sorting_and_shapes(name):
    x = _inputs(name, (4, 6))
    # XLA's max, min, argmax, argmin and cummax of float8_e8m0fnu start from -inf, which that
    # type cannot hold (they give NaN and 0): NumPy is the reference there
    if name == "float8_e8m0fnu":
        want = _reductions(np, np.maximum.accumulate, x)
        want[6:8] = [i.astype(np.int32) for i in want[6:8]]  # NumPy's argmax gives int64
        want += _quick_jit(functools.partial(_sorting_and_shapes, jnp_ref))(x)
    else:
        want = _quick_jit(lambda a: _reductions(jnp_ref, jax.lax.cummax, a)
                          + _sorting_and_shapes(jnp_ref, a))(x)
    got = _reductions(jnp, fungrad.lax.cummax, x) + _sorting_and_shapes(jnp, x)
    assert len(got) == len(want)
    for ours, ref in zip(got, want):
        _same_bits(ours, ref)


@pytest.mark.parametrize("name", NAMES)
def test_sums_accumulate_in_float32(name):
    """Sums, means, products and running sums of small floats accumulate in float32 and
    round once. (XLA accumulates in the narrow type itself, in an order of its own, so jax's
    sums of these types differ from these in the last bits; see docs/numpy_surface.md.)"""
    x = _inputs(name, (4, 6))
    wide = x.astype(np.float32)
    for op in ("sum", "mean", "prod"):
        for axis in (None, 0, 1):
            _same_bits(getattr(jnp, op)(x, axis=axis),
                       getattr(np, op)(wide, axis=axis).astype(x.dtype))
    _same_bits(jnp.cumsum(x, axis=1), np.cumsum(wide, axis=1).astype(x.dtype))
    _same_bits(fungrad.vmap(jnp.sum)(x), np.sum(wide, axis=1).astype(x.dtype))


def _products(n, lax, a, b, image, kernel) -> list:
    """matmul, dot and dot_general with preferred types, and convolutions, with ``n``'s and
    ``lax``'s functions."""
    return [n.matmul(a, b)] + [
        n.dot(a, b, preferred_element_type=out) for out in (np.float32, ml_dtypes.bfloat16)] + [
        lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=np.float32)] + [
        lax.conv(image, kernel, (1, 1), "SAME", preferred_element_type=out)
        for out in (None, np.float32)]


@pytest.mark.parametrize("name", [n for n in SIGNED if n != "float4_e2m1fn"])
def test_matmul(name):
    args = (_inputs(name, (3, 5), 0), _inputs(name, (5, 2), 1), _inputs(name, (1, 2, 5, 5), 2),
            _inputs(name, (3, 2, 2, 2), 3))
    want = _quick_jit(functools.partial(_products, jnp_ref, jax.lax))(*args)
    got = _products(jnp, fungrad.lax, *args)
    assert len(got) == len(want)
    for ours, ref in zip(got, want):
        _same_bits(ours, ref)


def _quantized(lib, name):
    """A float32 function through a small float: quantise, compute, widen back."""
    def f(w, x):
        w8 = w.astype(getattr(lib.numpy, name))
        return lib.numpy.sum(lib.numpy.tanh(x @ w8.astype(lib.numpy.float32)))
    return f


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2"])
def test_transformations(name):
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((4, 3), np.float32), rng.standard_normal((2, 4), np.float32)
    got = fungrad.jit(fungrad.value_and_grad(_quantized(fungrad, name)))(w, x)
    want = jax.jit(jax.value_and_grad(_quantized(jax, name)))(w, x)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    xs = _inputs(name, (5, 3))
    _same_bits(fungrad.vmap(jnp.max)(xs), jax.vmap(jnp_ref.max)(xs))
    assert "f8_" in str(fungrad.make_jaxpr(lambda v: v.astype(name) * 2)(w))



def test_a_gpu_refuses_them_by_name():
    """CuPy has no small floats: moving one to a GPU fails before CuPy is touched."""
    x = np.ones(3, ml_dtypes.float8_e4m3fn)
    with pytest.raises(TypeError, match="float8_e4m3fn.*convert"):
        backends.to_device(x, backends.Device("gpu", 0))
