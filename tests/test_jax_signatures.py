"""Arguments as jax names them and defaults as jax sets them, checked on values against jax:
the functions whose signature once differed from jax's (a caller passing jax's keywords, or
relying on jax's defaults, got an error or a different answer)."""
import inspect
import re

import jax
import jax.numpy as jnp_ref
import jax.scipy.special as jss
import numpy as np
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad.config import MATMUL_PRECISIONS
from fungrad.scipy import special
from harness import GRAD_TOL, assert_same, compare, compare_transforms, rand

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_scipy_softmax_is_over_all_axes_by_default(name):
    x = rand(RNG, (2, 3, 4))
    compare(getattr(special, name), getattr(jss, name), x)
    compare(lambda a: getattr(special, name)(a, axis=(0, 2)),
            lambda a: getattr(jss, name)(a, axis=(0, 2)), x)


def test_standardize_defaults_to_jax_fast_variance():
    x = rand(RNG, (3, 8), low=5.0, high=6.0)  # a mean off zero: the two algorithms round apart
    fast, stable = (np.asarray(fungrad.nn.standardize(x, algorithm=a)) for a in ("fast", "stable"))
    assert not np.array_equal(fast, stable)
    np.testing.assert_array_equal(fungrad.nn.standardize(x), fast)
    compare(lambda a: fungrad.nn.standardize(a, algorithm="stable"),
            lambda a: jax.nn.standardize(a, algorithm="stable"), x)
    compare(fungrad.nn.standardize, jax.nn.standardize, x - 5.5)


def test_linalg_cross_is_the_array_api_one():
    a, b = rand(RNG, (4, 3)), rand(RNG, (4, 3))
    compare(jnp.linalg.cross, jnp_ref.linalg.cross, a, b)
    compare(lambda p, q: jnp.linalg.cross(p, q, axis=0),
            lambda p, q: jnp_ref.linalg.cross(p, q, axis=0), a[:3], b[:3])
    with pytest.raises(ValueError, match="linalg.cross: both arrays need 3 elements"):
        jnp.linalg.cross(a[:, :2], b[:, :2])


def test_log_ndtr_series_order():
    x = np.array([-40.0, -25.0, -12.0, -10.5, -3.0, 0.0, 7.0], np.float32)
    for order in (0, 1, 3, 6):
        compare(lambda v: special.log_ndtr(v, order), lambda v: jss.log_ndtr(v, order), x)
    compare_transforms(lambda v: special.log_ndtr(v, 5), lambda v: jss.log_ndtr(v, 5), [x], RNG)
    with pytest.raises(ValueError, match="series_order must be between 0 and 30"):
        special.log_ndtr(x, 31)
    with pytest.raises(TypeError, match="series_order must be a Python int"):
        special.log_ndtr(x, 2.0)


def test_keywords_jax_accepts():
    x, i = rand(RNG, (3, 4)), np.array([[0, -1], [2, -4], [1, 3]], np.int32)
    for wrap in (None, True, False):
        compare(lambda a: jnp.take_along_axis(a, i, axis=1, wrap_negative_indices=wrap),
                lambda a: jnp_ref.take_along_axis(a, i, axis=1, wrap_negative_indices=wrap), x)
    compare(lambda a: jnp.corrcoef(a, dtype=np.float16),
            lambda a: jnp_ref.corrcoef(a, dtype=np.float16), x)
    compare(lambda a: jnp.delete(a, np.array([0, 2]), 1, assume_unique_indices=True),
            lambda a: jnp_ref.delete(a, np.array([0, 2]), 1, assume_unique_indices=True), x)
    compare(lambda p, a: jnp.polyval(p, a, unroll=2), lambda p, a: jnp_ref.polyval(p, a, unroll=2),
            rand(RNG, (4,)), x)
    cpu = fungrad.devices("cpu")[0]
    for name in ("fftfreq", "rfftfreq"):
        got = getattr(jnp.fft, name)(6, 0.5, device=cpu)
        np.testing.assert_array_equal(got, getattr(jnp_ref.fft, name)(6, 0.5))
        assert got.device == cpu


def test_jit_placement_and_xla_options():
    cpu = fungrad.devices("cpu")[0]
    pair = fungrad.jit(lambda x, y: (x + y, x * y), in_shardings=(cpu, None), out_shardings=cpu,
                       keep_unused=True, inline=True, compiler_options={"xla_cpu_option": 1})
    total, product = pair(jnp.ones(2), jnp.ones(2))
    np.testing.assert_array_equal(total, [2.0, 2.0])
    assert total.committed and product.committed and total.device == cpu
    by_backend = fungrad.jit(lambda x: x * 2, backend="cpu")
    assert by_backend(np.ones(2)).committed
    decorated = fungrad.jit(in_shardings=cpu)(lambda x: x + 1)
    assert float(decorated(1.0)) == 2.0 and decorated.lower(1.0).as_text()
    with pytest.raises(ValueError, match="in_shardings has 2 entries for 1 arguments"):
        fungrad.jit(lambda x: x, in_shardings=(cpu, cpu))(1.0)
    with pytest.raises(ValueError, match="pass one of device, backend and"):
        fungrad.jit(lambda x: x, device=cpu, backend="cpu")


def test_vmap_takes_jax_argument_order_and_checkpoint_static_names():
    x = rand(RNG, (3, 2))
    # jax.vmap(fun, in_axes, out_axes, axis_name, axis_size): the name comes fourth
    summed = fungrad.vmap(lambda v: fungrad.lax.psum(v, "rows"), 0, 0, "rows")(jnp.asarray(x))
    np.testing.assert_allclose(summed, jax.vmap(lambda v: jax.lax.psum(v, "rows"), 0, 0, "rows")(x))
    assert fungrad.vmap(lambda v: v, spmd_axis_name="data")(jnp.asarray(x)).shape == (3, 2)

    def layer(v, *, act):
        return jnp.tanh(v) if act == "tanh" else v * 2
    remat = fungrad.checkpoint(layer, static_argnames="act")
    assert_same(fungrad.grad(lambda v: remat(v, act="tanh").sum())(jnp.asarray(x)),
                jax.grad(lambda v: jnp_ref.tanh(v).sum())(x), GRAD_TOL)


def test_configuration_context_managers():
    with fungrad.log_compiles():
        assert fungrad.config.log_compiles and fungrad.log_compiles.value
    assert not fungrad.config.log_compiles
    x = rand(RNG, (4, 4))
    for precision in ("float32", "bfloat16", "highest", "BF16_BF16_F32", None):
        with fungrad.default_matmul_precision(precision), jax.default_matmul_precision(precision):
            compare(lambda a: a @ a, lambda a: a @ a, x)  # XLA's CPU backend ignores it too
    with pytest.raises(ValueError), jax.default_matmul_precision("fp7"):
        pass
    with pytest.raises(ValueError, match="default_matmul_precision must be one of"):
        with fungrad.default_matmul_precision("fp7"):
            pass


def test_default_matmul_precision_sets_the_precision_of_contractions_given_none():
    """As JAX's flag: it becomes the ``precision`` of the contractions traced under it (a
    jitted function is traced again when it changes), so a dot algorithm the CPU does not
    run raises there as in jax, and it is restored after the block."""
    x = rand(RNG, (4, 4))
    trace = lambda lib: str(lib.make_jaxpr(lambda a: a @ a)(x))  # noqa: E731
    traces = []
    product = fungrad.jit(lambda a: traces.append(1) or a @ a)
    for precision, shown in (("float32", "HIGHEST"), ("tensorfloat32", "HIGH"),
                             ("BF16_BF16_F32", "BF16_BF16_F32")):
        with fungrad.default_matmul_precision(precision), jax.default_matmul_precision(precision):
            assert fungrad.config.default_matmul_precision == precision
            assert all(re.search(rf"\b{shown}\b", trace(lib)) for lib in (fungrad, jax))
            compare(lambda a: a @ a, lambda a: a @ a, x)
            product(x)
    assert fungrad.default_matmul_precision.value is None and "None" in trace(fungrad)
    product(x)
    assert len(traces) == 4  # one trace per setting
    for lib in (fungrad, jax):
        with lib.default_matmul_precision("F16_F16_F32"), pytest.raises(
                ValueError, match="'F16_F16_F32' is not supported by dot_general on CPU"):
            lib.numpy.matmul(lib.numpy.asarray(x), lib.numpy.asarray(x))
    fungrad.config.update("jax_default_matmul_precision", "highest")
    try:
        assert "HIGHEST" in trace(fungrad)
    finally:
        fungrad.config.update("jax_default_matmul_precision", None)
    with pytest.raises(ValueError, match="default_matmul_precision must be one of"):
        fungrad.config.update("jax_default_matmul_precision", "fp7")
    # the flag's values, as jax's: the precision names and every dot algorithm's but DEFAULT
    names = {"default", "high", "highest", "bfloat16", "tensorfloat32", "float32"}
    presets = set(fungrad.lax.DotAlgorithmPreset.__members__) - {"DEFAULT"}
    assert set(MATMUL_PRECISIONS) == names | presets
    for name in MATMUL_PRECISIONS:
        with jax.default_matmul_precision(name):
            pass


@pytest.mark.parametrize("lib_name", ["fungrad", "jax"])
def test_debug_nans_and_infs_raise_at_the_operation(lib_name):
    lib = fungrad if lib_name == "fungrad" else jax
    np_ = lib.numpy
    with lib.debug_nans(True):
        with pytest.raises(FloatingPointError, match=r"invalid value \(nan\) encountered in log"):
            np_.log(np_.asarray(-1.0))
        twice_sqrt = lib.jit(lambda x: np_.sqrt(x) * 2.0)
        np.testing.assert_array_equal(twice_sqrt(np_.ones(2)), [2.0, 2.0])  # no NaN: fine
        with pytest.raises(FloatingPointError, match=r"invalid value \(nan\) encountered in sqrt"):
            twice_sqrt(-np_.ones(2))  # jitted: found by running the function op by op
        with pytest.raises(FloatingPointError, match=r"\(nan\) encountered in"):
            lib.grad(lambda x: np_.sqrt(x))(-1.0)
        # a jitted function inside another transformation: checked by the outer call
        nested = lib.jit(lambda x: twice_sqrt(x) + 1.0)
        np.testing.assert_array_equal(nested(np_.ones(2)), [3.0, 3.0])
        assert float(lib.grad(lambda x: twice_sqrt(x).sum())(np_.ones(2))[0]) == 1.0
        np.testing.assert_array_equal(lib.vmap(twice_sqrt)(np_.ones(3)), [2.0] * 3)
        with pytest.raises(FloatingPointError, match=r"\(nan\) encountered in"):
            nested(-np_.ones(2))
        assert float(np_.log(np_.asarray(0.0))) == -np.inf  # an infinity is fine here
    with lib.debug_infs(True), pytest.raises(FloatingPointError, match=r"\(inf\) encountered in"):
        np_.log(np_.asarray(0.0))
    assert not lib.config.jax_debug_nans if lib is jax else not fungrad.config.debug_nans
    assert np.isnan(np_.log(np_.asarray(-1.0)))  # off again: NaN silently, as before


@pytest.mark.parametrize("lib_name", ["fungrad", "jax"])
def test_numpy_rank_promotion(lib_name):
    lib = fungrad if lib_name == "fungrad" else jax
    np_ = lib.numpy
    matrix, row = np_.ones((2, 3)), np_.ones(3)
    with lib.numpy_rank_promotion("raise"):
        assert (matrix + 1.0).shape == (2, 3) and (matrix * np_.ones((1, 3))).shape == (2, 3)
        with pytest.raises(ValueError, match="could not be broadcast together"):
            np_.add(matrix, row)
        with pytest.raises(ValueError, match="could not be broadcast together"):
            lib.jit(lambda a, b: a * b)(matrix, row)
    with lib.numpy_rank_promotion("warn"), pytest.warns(UserWarning, match="rank promotion"):
        np_.subtract(np_.ones((4, 5)), np_.ones(5))  # (shapes new to jax's trace caches)
    assert lib.numpy_rank_promotion.value == "allow"
    assert (matrix + row).shape == (2, 3)
    with pytest.raises(ValueError):
        with lib.numpy_rank_promotion("sometimes"):
            pass


@pytest.mark.parametrize("name", ["exp", "exp2", "log", "expm1", "log1p", "logistic", "sqrt",
                                  "rsqrt", "cbrt", "sin", "cos", "tan", "tanh"])
def test_transcendental_ops_take_an_accuracy(name):
    x = rand(RNG, (5,), low=0.5, high=2.0)
    for fg_acc, jax_acc in ((None, None),
                            (fungrad.lax.Tolerance(atol=1e-6, rtol=1e-6),
                             jax.lax.Tolerance(atol=1e-6, rtol=1e-6)),
                            (fungrad.lax.AccuracyMode.HIGHEST, jax.lax.AccuracyMode.HIGHEST)):
        compare(lambda a: getattr(fungrad.lax, name)(a, accuracy=fg_acc),
                lambda a: getattr(jax.lax, name)(a, accuracy=jax_acc), x)
    with pytest.raises(TypeError, match=f"{name}: accuracy must be a lax.Tolerance"):
        getattr(fungrad.lax, name)(x, accuracy="high")


LAX_KEYWORDS = [("igamma", dict(a=2.5, x=1.5)), ("igammac", dict(a=2.5, x=1.5)),
                ("igamma_grad_a", dict(a=2.5, x=1.5)), ("polygamma", dict(m=1.0, x=2.5)),
                ("zeta", dict(x=3.0, q=1.5)), ("nextafter", dict(x1=1.0, x2=2.0))]


@pytest.mark.parametrize("name,kwargs", LAX_KEYWORDS, ids=[c[0] for c in LAX_KEYWORDS])
def test_lax_binary_functions_take_jax_argument_names(name, kwargs):
    args = {k: np.float32(v) for k, v in kwargs.items()}
    assert_same(getattr(fungrad.lax, name)(**args), getattr(jax.lax, name)(**args))
    first, second = args
    assert_same(getattr(fungrad.lax, name)(args[first], **{second: args[second]}),
                getattr(jax.lax, name)(args[first], **{second: args[second]}))
    with pytest.raises(TypeError, match=f"lax.{name}.*'{second}'"):
        getattr(fungrad.lax, name)(args[first])


def test_lax_cond_and_switch_take_the_operand_keyword():
    x = np.float32(3.0)
    assert_same(fungrad.lax.cond(True, lambda v: v * 2, lambda v: v, operand=x),
                jax.lax.cond(True, lambda v: v * 2, lambda v: v, operand=x))
    assert_same(fungrad.lax.switch(1, [lambda v: v, lambda v: -v], operand=x),
                jax.lax.switch(1, [lambda v: v, lambda v: -v], operand=x))
    for fg_f in (lambda: fungrad.lax.cond(True, abs, abs, x, operand=x),
                 lambda: fungrad.lax.switch(0, [abs], x, operand=x)):
        with pytest.raises(TypeError, match="if 'operand' keyword is passed then no positional"):
            fg_f()


def test_lax_mul_out_dtype():
    a = np.array([100, -100, 7], np.int8)
    f = np.array([1.5, 2.0, -3.0], np.float32)
    for x, y, dtype in [(a, a, np.int32), (a, f, np.float32), (a, 3, np.float32),
                        (f, f, jnp.bfloat16)]:
        compare(lambda p, q: fungrad.lax.mul(p, q, out_dtype=dtype),
                lambda p, q: jax.lax.mul(p, q, out_dtype=dtype), x, y)
    half = np.array([1.5, -2.25], jnp.bfloat16)
    compare_transforms(lambda v: fungrad.lax.mul(v, v, out_dtype=np.float32),
                       lambda v: jax.lax.mul(v, v, out_dtype=np.float32), [f], RNG)
    assert_same(fungrad.grad(lambda v: fungrad.lax.mul(v, v, out_dtype=np.float32).sum())(half),
                jax.grad(lambda v: jax.lax.mul(v, v, out_dtype=np.float32).sum())(half))


# --------------------------------------------------------------------------- jax.numpy names

def _positional(fn) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds]


# jnp.array: jax's takes ``*args`` after ``dtype`` where fungrad names copy, order and ndmin
# (both accept jax's keywords); set_printoptions: jax's forwards ``*args, **kwargs``.
_POSITIONAL_EXCEPTIONS = {"array", "set_printoptions"}


def test_numpy_positional_arguments_are_named_as_in_jax():
    """Every ``jax.numpy`` function's positional parameters, by name and order, begin
    fungrad's (``left_shift(x, y)``, not ``(x1, x2)``); the ufunc objects are checked below."""
    differ = {}
    for name in sorted(set(dir(jnp_ref)) - _POSITIONAL_EXCEPTIONS):
        ref, got = getattr(jnp_ref, name), getattr(jnp, name, None)
        if isinstance(ref, jnp_ref.ufunc) or not callable(got) or isinstance(ref, type):
            continue
        try:
            want, have = _positional(ref), _positional(got)
        except (TypeError, ValueError):  # no signature to read
            continue
        if have[:len(want)] != want:
            differ[name] = (want, have)
    assert not differ, differ


@pytest.mark.parametrize("name", ["left_shift", "bitwise_left_shift"])
def test_shifts_by_position(name):
    x, y = np.array([1, 3, -4], np.int32), np.array([0, 2, 5], np.int32)
    compare(getattr(jnp, name), getattr(jnp_ref, name), x, y)
    compare(lambda a: getattr(jnp, name)(a, 3), lambda a: getattr(jnp_ref, name)(a, 3), x)


@pytest.mark.parametrize("name", ["nextafter", "float_power"])
def test_binary_floats_by_position(name):
    x, y = rand(RNG, (4,)), rand(RNG, (4,))
    compare(getattr(jnp, name), getattr(jnp_ref, name), x, y)
    with pytest.raises(TypeError):
        getattr(jnp, name)(x=x, y=y)  # positional only, as in jax
    with pytest.raises(TypeError):
        getattr(jnp_ref, name)(x=x, y=y)


UFUNCS = sorted(n for n in dir(jnp_ref) if isinstance(getattr(jnp_ref, n), jnp_ref.ufunc))


@pytest.mark.parametrize("name", UFUNCS)
def test_ufunc_objects_take_out_and_where_none(name):
    """``jnp.add(x, y, out=None, where=None)`` works; other values raise jax's error."""
    ufunc, ref = getattr(jnp, name), getattr(jnp_ref, name)
    assert isinstance(ufunc, jnp.ufunc) and ufunc.nin == ref.nin
    dtype = np.int32 if name.startswith("bitwise") else np.float32
    args = [rand(RNG, (3,), dtype) for _ in range(ref.nin)]
    compare(lambda *a: ufunc(*a, out=None, where=None), lambda *a: ref(*a, out=None, where=None),
            *args)
    for keywords in ({"out": args[0]}, {"where": True}, {"out": args[0], "where": True}):
        what = [*keywords][0]
        for fn in (ufunc, ref):
            with pytest.raises(NotImplementedError, match=f"{what} argument of <jnp.ufunc "):
                fn(*args, **keywords)


def test_newaxis_is_none_as_in_jax():
    assert jnp.newaxis is None and jnp_ref.newaxis is None and "newaxis" in jnp.__all__
    compare(lambda x: x[:, jnp.newaxis, ..., jnp.newaxis],
            lambda x: x[:, jnp_ref.newaxis, ..., jnp_ref.newaxis], rand(RNG, (2, 3)))


# --------------------------------------------------------------------------- ravel_multi_index

_I8 = (np.array([1, 2, 0], np.int8), np.array([2, 3, 1], np.int8))
_MIXED = (np.array([1, 2, 0], np.int16), np.array([2, 3, 1], np.uint8))
RAVEL_CASES = {
    "int8-default": (_I8, (3, 4), {}),            # the indices' dtype, as jax 0.10
    "mixed-promoted": (_MIXED, (3, 4), {}),
    "dtype-int16": (_I8, (30, 40), {"dtype": np.int16}),
    "dtype-uint16-F": (_I8, (3, 4), {"dtype": np.uint16, "order": "F"}),
    "dtype-int64": (_I8, (3, 4), {"dtype": np.int64}),  # canonicalised to int32, as jax
    "ignore": ((np.array([5, -1], np.int32), np.array([2, 3], np.int32)), (3, 4),
               {"mode": "ignore"}),
    "clip-uint8": ((np.array([5, 1], np.uint8), np.array([9, 3], np.uint8)), (3, 4),
                   {"mode": "clip"}),
}


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype int64")  # jax's, for x32
@pytest.mark.parametrize("case", list(RAVEL_CASES))
def test_ravel_multi_index_dtype(case):
    index, dims, kw = RAVEL_CASES[case]
    compare(lambda *i: jnp.ravel_multi_index(i, dims, **kw),
            lambda *i: jnp_ref.ravel_multi_index(i, dims, **kw), *index)


@pytest.mark.parametrize("index,dims,kw,match", [
    (_I8, (30, 40), {}, "dtype=.*int8.* not large enough to hold flattened index"),
    (_I8, (3, 4), {"dtype": np.float32}, "dtype=.*float32.* is not an integer type"),
    ((np.ones(2, np.float32),) * 2, (3, 4), {}, "dtype=.*float32.* is not an integer type"),
    ((np.array([300], np.uint16),), (300,), {"dtype": np.uint8}, "not large enough"),
])
def test_ravel_multi_index_dtype_errors(index, dims, kw, match):
    for lib in (jnp, jnp_ref):
        with pytest.raises(ValueError, match=match):
            lib.ravel_multi_index(index, dims, **kw)


# --------------------------------------------------------------------------- weighted quantiles

_A = rand(RNG, (3, 4, 5))
_W = np.abs(rand(RNG, (3, 4, 5))) + 0.1
_Q = np.array([0.0, 0.2, 0.5, 0.9, 1.0], np.float32)
_NANS = np.where(_A > 1.2, np.nan, _A).astype(np.float32)
WEIGHTED = {  # name: (function name, a, q, weights, keywords)
    "all": ("quantile", _A, 0.3, _W, {}),
    "axis": ("quantile", _A, _Q, _W, {"axis": 1}),
    "axis-keepdims": ("quantile", _A, _Q, _W, {"axis": -1, "keepdims": True}),
    "axis-weights-1d": ("quantile", _A, 0.7, _W[0, 0], {"axis": 2}),
    "axes-in-order": ("quantile", _A, _Q, _W[:, 0, :].T, {"axis": (2, 0)}),
    "axes-keepdims": ("quantile", _A, 0.5, _W[:, :, 0], {"axis": (0, 1), "keepdims": True}),
    "none-keepdims": ("quantile", _A, _Q[:2], _W, {"keepdims": True}),
    "integer-weights": ("quantile", np.array([3., 1., 2., 5., 4.], np.float32), 0.5,
                        np.array([1, 1, 2, 1, 1], np.int32), {}),
    "integer-data": ("quantile", np.array([3, 1, 2, 5, 4], np.int32), _Q,
                     np.array([1, 2, 2, 1, 3], np.int32), {}),
    "scalar": ("quantile", np.float32(3.0), 0.5, np.float32(2.0), {"keepdims": True}),
    "negative-weight": ("quantile", _A, 0.5, np.where(_A > 1.5, -1.0, _W).astype(np.float32),
                        {"axis": 2}),
    "nan-weight": ("quantile", _A, 0.5, np.where(_A > 1.5, np.nan, _W).astype(np.float32),
                   {"axis": 2}),
    "zero-weights": ("quantile", _A, 0.5, np.zeros_like(_W), {"axis": 0}),
    "q-outside": ("quantile", _A, np.array([-0.5, 1.5], np.float32), _W, {"axis": 1}),
    "nan-data": ("quantile", _NANS, _Q, _W, {"axis": 2}),
    "nanquantile": ("nanquantile", _NANS, _Q, _W, {"axis": 2}),
    "nanquantile-all-nan": ("nanquantile", np.full((2, 3), np.nan, np.float32), 0.5,
                            np.ones((2, 3), np.float32), {"axis": 1}),
    "percentile": ("percentile", _A, np.array([10.0, 50.0, 95.0], np.float32), _W, {"axis": 0}),
    "nanpercentile": ("nanpercentile", _NANS, 40.0, _W, {"axis": (0, 2)}),
    "float16-with-float32-weights": ("quantile", _A.astype(np.float16), 0.5, _W, {"axis": 1}),
}


@pytest.mark.parametrize("case", list(WEIGHTED))
def test_weighted_quantiles(case):
    name, a, q, w, kw = WEIGHTED[case]
    compare(lambda x, p, v: getattr(jnp, name)(x, p, weights=v, method="inverted_cdf", **kw),
            lambda x, p, v: getattr(jnp_ref, name)(x, p, weights=v, method="inverted_cdf", **kw),
            a, q, w)


@pytest.mark.parametrize("name", ["quantile", "nanquantile", "percentile", "nanpercentile"])
def test_inverted_cdf_without_weights(name):
    q = 0.35 if "quantile" in name else 35.0
    compare(lambda x: getattr(jnp, name)(x, q, axis=1, method="inverted_cdf"),
            lambda x: getattr(jnp_ref, name)(x, q, axis=1, method="inverted_cdf"), _NANS)


def test_inverted_cdf_in_half_precision_is_numpys():
    """jax raises there (lax.mul gets float32 ``q`` and float16 weights); fungrad compares
    ``q`` times the total weight in their promoted dtype and gives NumPy's answer."""
    a = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 0.5], np.float16)
    w = np.array([1, 2, 1, 3, 1, 1], np.float16)
    for q in (0.1, 0.5, 0.8):
        got = jnp.quantile(a, q, weights=w, method="inverted_cdf")
        assert got.dtype == np.float16
        assert float(got) == np.quantile(a, q, weights=w, method="inverted_cdf")


@pytest.mark.parametrize("case", ["axis", "axes-in-order", "nanquantile", "percentile"])
def test_weighted_quantile_derivatives(case):
    """JVP, VJP and vmap in the values and the weights (the weights only pick which value:
    their derivative is zero, as jax's), against jax; weights made positive by ``abs``."""
    name, a, q, w, kw = WEIGHTED[case]

    def fn(lib):
        return lambda x, v: getattr(lib, name)(x, q, weights=lib.abs(v), method="inverted_cdf",
                                               **kw)
    compare_transforms(fn(jnp), fn(jnp_ref), [a, w], RNG)
    grads = [lib_grad(lambda x, v: f(x, v).sum(), argnums=(0, 1))(a, w)
             for lib_grad, f in ((fungrad.grad, fn(jnp)), (jax.grad, fn(jnp_ref)))]
    assert_same(grads[0], grads[1], GRAD_TOL)
    assert not np.any(np.asarray(grads[1][1])) and np.any(np.asarray(grads[1][0]))


WEIGHT_ERRORS = [
    ({"method": "linear"}, _W, NotImplementedError,
     "linear doesn't support weights. Only method 'inverted_cdf' supports weights."),
    ({"method": "inverted_cdf"}, _W + 1j, ValueError, "Weights cannot be complex types."),
    ({"method": "inverted_cdf"}, _W[0], ValueError,
     "Weights shape must match 'a' shape when axis is None."),
    ({"method": "inverted_cdf", "axis": 1}, _W[0, 0], ValueError,
     r"Weights shape \(5,\) must match reduction axes \(4,\)"),
    ({"method": "inverted_cdf", "axis": (0, 2)}, _W[:, 0, :].T, ValueError,
     r"Weights shape \(5, 3\) must match reduction axes \(3, 5\)"),
]


@pytest.mark.parametrize("kw,w,error,match", WEIGHT_ERRORS)
@pytest.mark.parametrize("name", ["quantile", "nanquantile", "percentile", "nanpercentile"])
def test_weighted_quantile_errors(name, kw, w, error, match):
    for lib in (jnp, jnp_ref):
        with pytest.raises(error, match=match):
            getattr(lib, name)(_A, 0.5, weights=w, **kw)
