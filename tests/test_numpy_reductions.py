"""fungrad.numpy reductions and cumulative reductions against jax.numpy: values and types
over axis (None, int, negative, tuple), keepdims, where, dtype, initial, empty inputs,
NaNs; JVP/VJP/vmap; a hypothesis fuzz over shapes and axes; errors."""
import functools

import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fungrad.numpy as jnp
from fungrad.test_util import check_grads
import harness
from harness import compare_np, compare_types, rand

# the jax references run under jax.jit: one compilation per case instead of one per op
compare = functools.partial(harness.compare, jit_ref=True)
compare_transforms = functools.partial(harness.compare_transforms, jit_ref=True)

RNG = np.random.default_rng(1)
F32, BF16, F16, I32, I8, U8, B = (np.float32, ml_dtypes.bfloat16, np.float16, np.int32, np.int8,
                                  np.uint8, np.bool_)

REDUCTIONS = ["sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin", "all", "any",
              "ptp", "count_nonzero", "argmax", "argmin", "nansum", "nanprod", "nanmean",
              "nanmax", "nanmin", "nanvar", "nanstd", "nanargmax", "nanargmin"]
ARG_LIKE = {"argmax", "argmin", "nanargmax", "nanargmin"}
NO_KEEPDIMS = {"ptp"}
AXES = [None, 0, -1, (0, 2), (2, 0)]


def _axes_for(name):
    return [a for a in AXES if not (name in ARG_LIKE and isinstance(a, tuple))]


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction(name):
    f, ref = getattr(jnp, name), getattr(jnp_ref, name)
    x = rand(RNG, (2, 3, 4), F32, 0.5, 2)
    np_f = getattr(np, name)
    for k, axis in enumerate(_axes_for(name)):
        for keepdims in (False, True):
            kw = dict(axis=axis, keepdims=keepdims)
            if k == 1 and not keepdims:
                compare(lambda a: f(a, **kw), lambda a: ref(a, **kw), x)
            else:
                compare_np(lambda a: f(a, **kw), lambda a: np_f(a, **kw),
                           lambda a: ref(a, **kw), x)
    # other dtypes: result dtype promotion (int8 sums in int32, means of ints are float...)
    for dt in (I32, I8, U8, B, BF16, F16):
        if name == "ptp" and dt == B:  # subtracting booleans is an error in both
            with pytest.raises(TypeError):
                f(jnp.ones(3, bool))
            continue
        xd = rand(RNG, (2, 3), dt, 0, 3)
        if dt == BF16:
            compare(lambda a: f(a, axis=0), lambda a: ref(a, axis=0), xd)
        else:
            compare_np(lambda a: f(a, axis=0), lambda a: np_f(a, axis=0),
                       lambda a: ref(a, axis=0), xd)
    compare_types(f, ref, np.float32(1.5))
    compare_types(lambda: f(2.5), lambda: ref(2.5))


def test_nan_reductions_with_nans():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]], np.float32)
    for name in ["nansum", "nanprod", "nanmean", "nanmax", "nanmin", "nanvar", "nanstd",
                 "nanargmax", "nanargmin", "max", "sum", "argmax"]:
        compare(lambda a: getattr(jnp, name)(a, axis=1),
                lambda a: getattr(jnp_ref, name)(a, axis=1), x)


def test_reduction_options():
    x = rand(RNG, (3, 4), F32)
    mask = rand(RNG, (3, 4), B)
    mask[:, 0] = True
    for name in ["sum", "prod", "mean", "var", "std", "all", "any", "nansum", "nanmean"]:
        compare(lambda a, m: getattr(jnp, name)(a, axis=1, where=m),
                lambda a, m: getattr(jnp_ref, name)(a, axis=1, where=m), x, mask)
    for name in ["max", "min"]:
        compare(lambda a, m: getattr(jnp, name)(a, axis=1, where=m, initial=0.5),
                lambda a, m: getattr(jnp_ref, name)(a, axis=1, where=m, initial=0.5), x, mask)
    compare(lambda a: jnp.sum(a, initial=10.0), lambda a: jnp_ref.sum(a, initial=10.0), x)
    compare(lambda a: jnp.sum(a, dtype=jnp.int32), lambda a: jnp_ref.sum(a, dtype=jnp_ref.int32),
            x * 3)
    compare(lambda a: jnp.sum(a, dtype=jnp.bfloat16), lambda a: jnp_ref.sum(
        a, dtype=jnp_ref.bfloat16), x)
    compare(lambda a: jnp.mean(a, dtype=jnp.float16), lambda a: jnp_ref.mean(
        a, dtype=jnp_ref.float16), x)
    compare(lambda a: jnp.var(a, 0, ddof=1), lambda a: jnp_ref.var(a, 0, ddof=1), x)
    compare(lambda a: jnp.std(a, -1, ddof=2, keepdims=True),
            lambda a: jnp_ref.std(a, -1, ddof=2, keepdims=True), x)
    compare(lambda a: jnp.var(a, 1, correction=1.5), lambda a: jnp_ref.var(a, 1, correction=1.5), x)
    compare(lambda a: jnp.sum(a, axis=()), lambda a: jnp_ref.sum(a, axis=()), x)
    compare(lambda a: jnp.argmax(a, axis=1, keepdims=True),
            lambda a: jnp_ref.argmax(a, axis=1, keepdims=True), x)
    compare(lambda a: jnp.argmin(a, keepdims=True), lambda a: jnp_ref.argmin(a, keepdims=True), x)
    compare(jnp.count_nonzero, jnp_ref.count_nonzero, rand(RNG, (3, 4), I32, -1, 1))


def test_average():
    x = rand(RNG, (3, 4), F32)
    w = rand(RNG, (3, 4), F32, 0.5, 2)
    w1 = rand(RNG, (4,), F32, 0.5, 2)
    compare(jnp.average, jnp_ref.average, x)
    compare(lambda a: jnp.average(a, axis=1), lambda a: jnp_ref.average(a, axis=1), x)
    compare(lambda a, b: jnp.average(a, weights=b), lambda a, b: jnp_ref.average(a, weights=b),
            x, w)
    compare(lambda a, b: jnp.average(a, 1, b, returned=True),
            lambda a, b: jnp_ref.average(a, 1, b, returned=True), x, w1)
    compare(lambda a, b: jnp.average(a, 1, b, keepdims=True),
            lambda a, b: jnp_ref.average(a, 1, b, keepdims=True), x, w1)
    compare_types(jnp.average, jnp_ref.average, rand(RNG, (3,), I32))


def test_empty_inputs():
    e = np.zeros((0, 3), np.float32)
    for name in ["sum", "prod", "any", "all", "count_nonzero"]:
        compare(lambda a: getattr(jnp, name)(a, axis=0),
                lambda a: getattr(jnp_ref, name)(a, axis=0), e)
    compare(lambda a: jnp.max(a, axis=0, initial=-1.0), lambda a: jnp_ref.max(
        a, axis=0, initial=-1.0), e)
    compare(lambda a: jnp.max(a, axis=1), lambda a: jnp_ref.max(a, axis=1), e)
    compare(lambda a: jnp.cumsum(a, axis=0), lambda a: jnp_ref.cumsum(a, axis=0), e)
    with pytest.raises(ValueError, match="zero-size array to reduction operation max"):
        jnp.max(jnp.zeros((0, 3)), axis=0)
    with pytest.raises(ValueError, match="argmax of an empty sequence"):
        jnp.argmax(jnp.zeros((0,)))


CUMULATIVE = ["cumsum", "cumprod", "nancumsum", "nancumprod"]


@pytest.mark.parametrize("name", CUMULATIVE)
def test_cumulative(name):
    f, ref = getattr(jnp, name), getattr(jnp_ref, name)
    x = rand(RNG, (3, 4), F32, 0.5, 1.5)
    x[1, 2] = np.nan if name.startswith("nan") else x[1, 2]
    for axis in (None, 0, -1):
        compare(lambda a: f(a, axis=axis), lambda a: ref(a, axis=axis), x)
    for dt in (I8, B, BF16):
        compare_types(lambda a: f(a, axis=1), lambda a: ref(a, axis=1), rand(RNG, (3, 4), dt, 0, 2))
    compare_types(lambda a: f(a, axis=1, dtype=jnp.float32),
                  lambda a: ref(a, axis=1, dtype=jnp_ref.float32), rand(RNG, (3, 4), I32, 0, 2))
    compare_types(lambda a: f(a, axis=0, dtype=bool), lambda a: ref(a, axis=0, dtype=bool),
                  rand(RNG, (3, 4), I32, 0, 2))


def test_cumulative_array_api():
    x = rand(RNG, (3, 4), I8, 0, 3)
    for name in ["cumulative_sum", "cumulative_prod"]:
        f, ref = getattr(jnp, name), getattr(jnp_ref, name)
        compare(lambda a: f(a, axis=1), lambda a: ref(a, axis=1), x)
        compare(lambda a: f(a, axis=0, include_initial=True),
                lambda a: ref(a, axis=0, include_initial=True), x)
    with pytest.raises(ValueError, match="axis must be specified"):
        jnp.cumulative_sum(jnp.zeros((2, 2)))


# ----------------------------------------------------------------------------- transforms

TRANSFORM_CASES = {
    "sum": lambda m: lambda a: m.sum(a, axis=1),
    "prod": lambda m: lambda a: m.prod(a, axis=-1),
    "mean": lambda m: lambda a: m.mean(a, axis=(1, 2)),
    "var": lambda m: lambda a: m.var(a, axis=1, ddof=1),
    "std": lambda m: lambda a: m.std(a, axis=-1),
    "max": lambda m: lambda a: m.max(a, axis=1),
    "cumsum": lambda m: lambda a: m.cumsum(a, axis=1),
    "nanmean": lambda m: lambda a: m.nanmean(a, axis=2),
    "where_sum": lambda m: lambda a: m.sum(a, axis=1, where=a > 1.0),
}


FD_CASES = {
    "sum_keepdims": lambda a: jnp.sum(a, axis=(0, 2), keepdims=True),
    "min_keepdims": lambda a: jnp.min(a, axis=0, keepdims=True),
    "ptp": lambda a: jnp.ptp(a, axis=2), "nansum": lambda a: jnp.nansum(a, axis=0),
    "average": lambda a: jnp.average(a, axis=1), "cumprod": lambda a: jnp.cumprod(a, axis=-1),
    "median": lambda a: jnp.median(a, axis=1), "nanvar": lambda a: jnp.nanvar(a, axis=1),
}


def test_reduction_derivatives():
    # distinct values 0.06 apart: no near-ties for finite differences to straddle (median,
    # min and ptp switch elements at a tie)
    x = RNG.permutation(24).reshape(2, 3, 4) * 0.06 + 0.5
    for name, fn in FD_CASES.items():
        check_grads(fn, (x,), order=2 if name in ("cumprod", "nanvar") else 1)


@pytest.mark.parametrize("name", list(TRANSFORM_CASES))
def test_reduction_transforms(name):
    x = rand(RNG, (2, 3, 4), F32, 0.5, 2)
    compare_transforms(TRANSFORM_CASES[name](jnp), TRANSFORM_CASES[name](jnp_ref), [x], RNG,
                       vmap_axes=(0, -1) if name in ("sum", "cumsum", "max") else (1,))


# ----------------------------------------------------------------------------- fuzz

NUMPY_REF = {"sum": np.sum, "max": np.max, "mean": np.mean, "prod": np.prod, "min": np.min,
             "std": np.std, "any": np.any}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.data(),
       st.sampled_from(sorted(NUMPY_REF)), st.booleans())
def test_reduction_fuzz(shape, data, name, keepdims):
    """Random shapes, random axis subsets (as negative or positive ints), keepdims: values
    against NumPy, shapes/dtypes/weak types against jax."""
    nd = len(shape)
    axes = data.draw(st.lists(st.integers(0, nd - 1), unique=True, max_size=nd))
    axes = tuple(a - nd if data.draw(st.booleans()) else a for a in axes)
    axis = data.draw(st.sampled_from([None, axes] + ([axes[0]] if axes else [])))
    x = rand(RNG, tuple(shape), F32, 0.5, 1.5)
    out = getattr(jnp, name)(jnp.asarray(x), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(np.asarray(out), NUMPY_REF[name](x, axis=axis, keepdims=keepdims),
                               rtol=2e-6, atol=1e-6)
    compare_types(lambda a: getattr(jnp, name)(a, axis=axis, keepdims=keepdims),
                  lambda a: getattr(jnp_ref, name)(a, axis=axis, keepdims=keepdims), x)


# ----------------------------------------------------------------------------- errors

def test_reduction_errors():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="sum: axis 2 is out of bounds"):
        jnp.sum(x, axis=2)
    with pytest.raises(ValueError, match="duplicate value in 'axis'"):
        jnp.sum(x, axis=(0, -2))
    with pytest.raises(ValueError, match="max does not have an identity"):
        jnp.max(x, where=x > 0)
    with pytest.raises(TypeError, match="where must be a boolean array"):
        jnp.sum(x, where=x)
    with pytest.raises(TypeError, match="sum requires ndarray or scalar arguments"):
        jnp.sum([1.0, 2.0])


_COMPLEX, _SCALAR = np.array([1 + 2j, 3 - 1j], np.complex64), np.float32(2.0)
# (call with the module, exception, fungrad's message): what jax refuses, fungrad refuses
REFUSED_AS_IN_JAX = [
    (lambda m: m.argmax(_COMPLEX), TypeError, "argmax does not accept dtype complex64"),
    (lambda m: m.argmin(_COMPLEX), TypeError, "argmin does not accept dtype complex64"),
    (lambda m: m.nanargmax(_COMPLEX), TypeError, "nanargmax does not accept dtype complex64"),
    (lambda m: m.nanargmin(_COMPLEX), TypeError, "nanargmin does not accept dtype complex64"),
    (lambda m: m.var(_COMPLEX, dtype=F32), ValueError, "var: a real dtype"),
    (lambda m: m.std(_COMPLEX, dtype=F32), ValueError, "var: a real dtype"),
    (lambda m: m.nanvar(_COMPLEX, dtype=F32), ValueError, "nanvar: a real dtype"),
    (lambda m: m.nanstd(_COMPLEX, dtype=F32), ValueError, "nanvar: a real dtype"),
    (lambda m: m.cumsum(_SCALAR, axis=0), ValueError, "cumsum: axis 0 is out of bounds"),
    (lambda m: m.cumprod(_SCALAR, axis=-1), ValueError, "cumprod: axis -1 is out of bounds"),
    (lambda m: m.nancumsum(_SCALAR, axis=0), ValueError, "nancumsum: axis 0 is out of bounds"),
    (lambda m: m.cumulative_sum(_SCALAR), ValueError, "cumulative_sum: the input must have"),
    (lambda m: m.cumulative_prod(_SCALAR), ValueError, "cumulative_prod: the input must have"),
    (lambda m: m.hypot(_COMPLEX, 1.0), ValueError, "hypot is not well defined for complex"),
    (lambda m: m.clip(_COMPLEX, 0, 2), ValueError, "clip: complex values have no ordering"),
    (lambda m: m.clip(_SCALAR, 0, 2j), ValueError, "clip: complex values have no ordering"),
    (lambda m: m.round(np.array([True, False])), ValueError, "round: data type bool"),
]


@pytest.mark.parametrize("case", range(len(REFUSED_AS_IN_JAX)))
def test_refuses_what_jax_refuses(case):
    call, error, message = REFUSED_AS_IN_JAX[case]
    with pytest.raises(error):
        call(jnp_ref)
    with pytest.raises(error, match=message):
        call(jnp)


def test_quantiles_of_a_scalar_keep_a_dimension_as_jax():
    for name in ("median", "nanmedian", "quantile", "percentile"):
        args = () if "median" in name else (0.5 if name == "quantile" else 50.0,)
        compare(lambda a: getattr(jnp, name)(a, *args, keepdims=True),
                lambda a: getattr(jnp_ref, name)(a, *args, keepdims=True), _SCALAR)
        compare(lambda a: getattr(jnp, name)(a, *args), lambda a: getattr(jnp_ref, name)(a, *args),
                _SCALAR)
