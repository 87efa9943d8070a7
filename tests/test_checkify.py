"""``fungrad.experimental.checkify`` against ``jax.experimental.checkify``: the same programs,
the same messages (``err.get()``) and outputs, eagerly, under ``jit`` (both ways round),
``vmap`` and ``grad``, through control flow, for each error set; and the errors of bad
usage. jax's reference is always ``jax.jit(checkify(f))`` (one compilation per program;
jax's eager checkify gives the same error), fungrad runs eagerly, ``jit(checkify(f))`` and
``checkify(jit(f))``."""
import jax
import jax.experimental.checkify as jck
import numpy as np
import pytest

import fungrad
from fungrad.experimental import checkify as fck
from harness import assert_same, to_fg, to_jax

LIBS = {"fg": (fungrad, fck), "jax": (jax, jck)}
F32 = np.float32


def _user(lib, ck):
    def f(x):
        ck.check(lib.numpy.all(x > 0), "x={} total={total}", x, total=x.sum())
        return x * 2
    return f


def _two_checks(lib, ck):
    def f(x):
        ck.check(x[0] > 0, "first {}", x[0])
        ck.check(x[1] > 0, "second {}", x[1])
        return x + 1
    return f


def _user_before_nan(lib, ck):
    def f(x):  # the NaN comes first, but user checks get the smaller codes (as in jax)
        y = lib.numpy.log(x)
        ck.check(lib.numpy.all(x > 5), "small")
        return y
    return f


def _nans(lib, ck):
    return lambda x: lib.numpy.sin(lib.numpy.sqrt(x) * x)


def _inf_minus_inf(lib, ck):
    return lambda x: (x * x) - (x * x)


def _int_div(lib, ck):
    return lambda x, y: (x // y, x % (y + 1))


def _float_div(lib, ck):
    return lambda x, y: x / y


def _index(lib, ck):
    return lambda x, i: x[i] + 1


def _dynamic_slices(lib, ck):
    def f(x, i):
        s = lib.lax.dynamic_slice(x, (i,), (2,))
        return lib.lax.dynamic_update_slice(x, s * 10, (i - 1,))
    return f


def _gather(lib, ck):
    return lambda x, idx: x[idx]


def _take_fill(lib, ck):
    return lambda x, idx: x.at[idx].get(mode="fill", fill_value=0.0)


def _scatter(lib, ck):
    return lambda x, idx: x.at[idx].add(1.0)


def _cond(lib, ck):
    def f(x):
        def yes(v):
            ck.check(v < 10, "big {}", v)
            return lib.numpy.log(v - 3)
        return lib.lax.cond(x > 0, yes, lambda v: v * 2, x)
    return f


def _scan(lib, ck):
    def f(xs):
        def body(c, x):
            ck.check(x < 3, "step x={}", x)
            return c + lib.numpy.log(x), c
        return lib.lax.scan(body, F32(0.0), xs)
    return f


def _while(lib, ck):
    def f(n):
        def body(c):
            i, acc = c
            ck.check(i < 4, "i={} acc={}", i, acc)
            return i + 1, acc * 2.0
        return lib.lax.while_loop(lambda c: c[0] < n, body, (0, F32(1.0)))
    return f


def _fori(lib, ck):
    def f(x):  # static bounds: a scan
        def body(i, c):
            ck.check(c < 20, "c={} at {}", c, i)
            return c * x
        return lib.lax.fori_loop(0, 4, body, F32(1.0))
    return f


def _fori_traced(lib, ck):
    def f(n, x):  # traced bounds: a while loop
        return lib.lax.fori_loop(0, n, lambda i, c: lib.numpy.log(c - i), x)
    return f


def _grad_inside(lib, ck):
    return lib.grad(lambda x: (lib.numpy.sqrt(x) * x).sum())


def _nested_jit(lib, ck):
    def inner(x):
        ck.check(x.sum() > 0, "sum {}", x.sum())
        return lib.numpy.log(x)
    return lambda x: lib.jit(inner)(x) * 2


def _check_error_again(lib, ck):
    def f(x):
        err, y = lib.jit(ck.checkify(_user(lib, ck)))(x)
        ck.check_error(err)
        return y
    return f


ints = lambda *v: np.array(v, np.int32)  # noqa: E731
flts = lambda *v: np.array(v, F32)  # noqa: E731

# (name, program, errors, argument tuples: passing and failing cases)
CASES = [
    ("user", _user, "user_checks", [(flts(1, 2),), (flts(1, -2),)]),
    ("two_checks", _two_checks, "user_checks", [(flts(-1, -2),), (flts(1, -2),)]),
    ("user_before_nan", _user_before_nan, "all_checks", [(flts(6, 7),), (flts(-1, 7),)]),
    ("user_dropped", _user_before_nan, "nan_checks", [(flts(1, 7),), (flts(-1, 7),)]),
    ("nans", _nans, "nan_checks", [(flts(1, 2),), (flts(1, -2),)]),
    ("inf_minus_inf", _inf_minus_inf, "float_checks", [(flts(1, 2),), (flts(1, 3e20),)]),
    ("int_div", _int_div, "div_checks", [(ints(7, 3), ints(2, 1)), (ints(7, 3), ints(2, 0))]),
    ("float_div", _float_div, "float_checks", [(flts(1, 2), flts(2, 0)),
                                              (flts(0, 2), flts(0, 1))]),
    ("float_div_nan_only", _float_div, "nan_checks", [(flts(1, 2), flts(2, 0))]),
    ("index", _index, "index_checks", [(flts(1, 2, 3), np.int32(2)), (flts(1, 2, 3), np.int32(3)),
                                       (flts(1, 2, 3), np.int32(-4))]),
    ("dynamic_slices", _dynamic_slices, "index_checks", [(flts(1, 2, 3), np.int32(1)),
                                                         (flts(1, 2, 3), np.int32(2)),
                                                         (flts(1, 2, 3), np.int32(0))]),
    ("gather", _gather, "index_checks", [(flts(1, 2, 3), ints(0, 2)),
                                         (flts(1, 2, 3), ints(1, 7, 9))]),
    ("take_fill", _take_fill, "automatic_checks", [(flts(1, 2, 3), ints(0, 2)),
                                                   (flts(1, 2, 3), ints(4, 1))]),
    ("scatter", _scatter, "index_checks", [(flts(1, 2, 3), ints(1, 2)), (flts(1, 2), np.int32(5))]),
    ("cond", _cond, "all_checks", [(F32(5),), (F32(-1),), (F32(1),), (F32(12),)]),
    ("scan", _scan, "all_checks", [(flts(1, 2),), (flts(1, 0, 4),), (flts(1, 5, 2),)]),
    ("while", _while, "user_checks", [(np.int32(3),), (np.int32(6),)]),
    ("fori", _fori, "user_checks", [(F32(2),), (F32(3),)]),
    ("fori_traced", _fori_traced, "nan_checks", [(np.int32(1), F32(5)), (np.int32(3), F32(2))]),
    ("grad_inside", _grad_inside, "nan_checks", [(flts(1, 2),), (flts(1, -2),)]),
    ("nested_jit", _nested_jit, "all_checks", [(flts(1, 2),), (flts(-1, 0.5),),
                                               (flts(-3, 2),)]),
    ("check_error", _check_error_again, "user_checks", [(flts(1, 2),), (flts(1, -2),)]),
]


def _checked(lib_name, prog, errors):
    lib, ck = LIBS[lib_name]
    return ck.checkify(prog(lib, ck), errors=getattr(ck, errors))


def _reference(prog, errors, args):
    err, out = jax.jit(_checked("jax", prog, errors))(*to_jax(args))
    return err.get(), out


@pytest.mark.parametrize("name,prog,errors,cases", CASES, ids=[c[0] for c in CASES])
def test_messages_and_outputs_match_jax(name, prog, errors, cases):
    fg_checked = _checked("fg", prog, errors)
    ways = {"eager": fg_checked, "jit(checkify)": fungrad.jit(fg_checked),
            "checkify(jit)": fck.checkify(fungrad.jit(prog(fungrad, fck)),
                                          errors=getattr(fck, errors))}
    for args in cases:
        want_msg, want_out = _reference(prog, errors, args)
        for way, fn in ways.items():
            err, out = fn(*to_fg(args))
            assert err.get() == want_msg, (way, args)
            assert_same(out, want_out, check_weak=False)


@pytest.mark.parametrize("name,prog,errors,args", [
    ("user", _user, "user_checks", (np.array([[1, 2], [1, -2], [0, 3]], F32),)),
    ("cond", _cond, "all_checks", (flts(5, -1, 12, 1),)),
    ("scan", _scan, "all_checks", (np.array([[1, 2], [1, 5], [3, 0]], F32),)),
    ("while", _while, "user_checks", (ints(3, 6, 5),)),
    ("index", _index, "index_checks", (np.ones((3, 2), F32), ints(1, 2, -3))),
])
def test_vmap_of_checkify_batches_the_error(name, prog, errors, args):
    """The error comes out batched; ``get()`` names every failing element."""
    if name == "while":  # jax fails on vmap of a checkified while loop: build its answer
        want = [_reference(prog, errors, a) for a in zip(*args)]
        want_msg = "\n".join(f"at mapped index {i}: {m}" for i, (m, _) in enumerate(want) if m)
        want_out = jax.tree.map(lambda *o: np.stack(o), *[o for _, o in want])
    else:
        want_err, want_out = jax.jit(jax.vmap(_checked("jax", prog, errors)))(*to_jax(args))
        want_msg = want_err.get()
    err, out = fungrad.vmap(_checked("fg", prog, errors))(*to_fg(args))
    assert err.get() == want_msg
    assert_same(out, want_out, check_weak=False)
    if name != "while":
        with pytest.raises(jck.JaxRuntimeError) as want:
            want_err.throw()
        with pytest.raises(fck.JaxRuntimeError) as got:
            err.throw()
        assert str(got.value) == str(want.value)


def test_checkify_of_vmap_reports_as_jax():
    """A check inside ``vmap`` inside ``checkify``: jax reports the last failing element."""
    x = np.array([1, -2, 3, -4, 5], F32)
    for errors in ("user_checks", "all_checks"):
        lib_fns = {k: LIBS[k][1].checkify(LIBS[k][0].vmap(_user(*LIBS[k])), errors=getattr(
            LIBS[k][1], errors)) for k in LIBS}
        want_err, want_out = jax.jit(lib_fns["jax"])(*to_jax((x,)))
        for fn in (lib_fns["fg"], fungrad.jit(lib_fns["fg"])):
            err, out = fn(*to_fg((x,)))
            assert err.get() == want_err.get() == "x=-4.0 total=-4.0 (`check` failed)"
            assert_same(out, want_out)


def test_throw_and_check_raise_jax_runtime_error():
    err, _ = fck.checkify(_user(fungrad, fck))(fungrad.numpy.array([1.0, -1.0]))
    with pytest.raises(fck.JaxRuntimeError, match=r"x=\[ 1. -1.\] total=0.0 \(`check` failed\)"):
        err.throw()
    assert issubclass(fck.JaxRuntimeError, ValueError)
    ok, _ = fck.checkify(_user(fungrad, fck))(fungrad.numpy.array([1.0, 1.0]))
    assert ok.get() is None and str(ok) == "Error(None)"
    ok.throw()
    fck.check_error(ok)
    with pytest.raises(fck.JaxRuntimeError, match="must be positive"):
        fck.check(fungrad.numpy.float32(-1) > 0, "must be positive")  # eagerly, as jax
    with pytest.raises(fck.JaxRuntimeError, match=r"^small \(`check` failed\)$"):
        fungrad.grad(lambda x: (fck.check(x > 1, "small"), x * x)[1])(0.5)
    with pytest.raises(fck.JaxRuntimeError, match=r"^2.0 \(`check` failed\)$"):
        fungrad.vmap(lambda x: fck.check(x < 1, "{}", x))(fungrad.numpy.arange(3.0))
    fck.debug_check(False, "ignored outside checkify")
    err, _ = fck.checkify(lambda: fck.debug_check(False, "seen"))()
    assert err.get() == "seen (`check` failed)"


def test_check_under_jit_asks_for_checkify():
    f = fungrad.jit(lambda x: (fck.check(x > 0, "positive"), x)[1])
    with pytest.raises(ValueError, match="without functionalizing it through `checkify"):
        f(1.0)
    jf = jax.jit(lambda x: (jck.check(x > 0, "positive"), x)[1])
    with pytest.raises(ValueError, match="without functionalizing it through `checkify"):
        jf(1.0)


def test_exports_match_jax():
    names = {n for n in dir(jck) if not n.startswith("_")}
    assert names <= set(fck.__all__)
    assert fck.all_checks == fck.automatic_checks | fck.user_checks
    assert fck.float_checks == fck.nan_checks | fck.div_checks
    assert fck.init_error.get() is None


@pytest.mark.parametrize("call,error,match", [
    (lambda: fck.check(fungrad.numpy.array([True, False]), "m"), TypeError,
     r"check: pred must be a scalar boolean .*bool\[2\]"),
    (lambda: fck.check(fungrad.numpy.int32(1), "m"), TypeError,
     r"check: pred must be a scalar boolean .*i32\[\]"),
    (lambda: fck.check(1, "m"), TypeError, "check: pred must be a scalar boolean"),
    (lambda: fck.check(True, "{}", 3), TypeError,
     "check: the formatting arguments must be pytrees of arrays, got 3 of type int"),
    (lambda: fck.check(True, 3), TypeError, "check: msg must be a format string"),
    (lambda: fck.checkify(abs, errors={ValueError}), TypeError,
     "checkify: errors holds <class 'ValueError'>, which is not an error category"),
    (lambda: fck.checkify(abs, errors="nan"), TypeError, "checkify: errors must be a set"),
    (lambda: fck.checkify(3), TypeError, "checkify: f must be callable"),
    (lambda: fck.check_error("oops"), TypeError, "check_error: takes an Error"),
    (lambda: fck.debug_check(fungrad.numpy.ones(2) > 0, "m"), TypeError,
     "debug_check: pred must be a scalar boolean"),
])
def test_bad_usage_names_the_function_and_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
