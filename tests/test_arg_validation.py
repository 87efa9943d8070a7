"""Misused transformation arguments and values fail early, with a clear message and
JAX's exception class.

One record per misuse: a function ``run(lib, np_like)`` that commits it with
``lib`` = fungrad or jax (with their numpy), the fragment our message must contain,
and the class. The test runs the same misuse through jax (or optax for losses and
optimisers) and checks that fungrad raises the same class; records marked
``jax_differs`` document where JAX fails by accident (an unrelated internal error)
and fungrad deliberately raises a named error of the given class instead.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jjnp
import numpy as np
import optax
import pytest

import fungrad
import fungrad.numpy as fnp
from fungrad import nn, optim


class Lib(NamedTuple):
    """One side of the comparison: the transformations, numpy, and the optax-like parts."""
    t: Any
    np: Any
    losses: Any
    optim: Any


FG = Lib(fungrad, fnp, nn, optim)
JX = Lib(jax, jjnp, optax, optax)


class Case(NamedTuple):
    name: str
    run: Callable[[Lib], Any]
    exc: type
    match: str
    jax_differs: bool = False


def _f1(x):
    return x.sum()


def _f2(x, y):
    return (x * y).sum()


def _vec(lib: Lib, *shape: int) -> Any:
    return lib.np.ones(shape, dtype=lib.np.float32)


def _nondiff(kind: str, nondiff: Any, nargs: int = 2):
    """Build a custom_jvp/custom_vjp of ``_f2`` with ``nondiff`` and call it."""
    def run(lib: Lib):
        g = getattr(lib.t, kind)(_f2, nondiff_argnums=nondiff)
        if kind == "custom_vjp":
            g.defvjp(lambda x, y: (_f2(x, y), None), lambda *a: (a[-1],))
        else:
            g.defjvp(lambda *a: (_f2(*a[-2]), a[-1][0].sum()))
        return g(*[_vec(lib, 3)] * nargs)
    return run


def _setitem(transform: str | None):
    def run(lib: Lib):
        def f(x):
            x[0] = 5.0
            return x.sum()
        fn = f if transform is None else getattr(lib.t, transform)(f)
        return fn(_vec(lib, 2, 3) if transform == "vmap" else _vec(lib, 3))
    return run


def _opt_update(name: str, grads: Callable[[Lib], Any], with_params: bool = True):
    """``name``'s update with gradients ``grads(lib)`` for params {'w': (2, 3), 'b': (3,)}."""
    def run(lib: Lib):
        params = {"w": _vec(lib, 2, 3), "b": _vec(lib, 3)}
        opt = getattr(lib.optim, name)(0.1)
        state = opt.init(params)
        return opt.update(grads(lib), state, params if with_params else None)
    return run


CASES = [
    # ---- argnums of the differentiating transformations
    *[Case(f"{api} argnums past the arguments", lambda lib, api=api: getattr(lib.t, api)(
        _f1, argnums=1)(_vec(lib, 3)),
        TypeError if api in ("grad", "value_and_grad") else ValueError,
        "requires at least 2 positional" if api in ("grad", "value_and_grad") else "out of range")
      for api in ("grad", "value_and_grad", "jacfwd", "jacrev", "hessian")],
    *[Case(f"{api} negative argnums", lambda lib, api=api: getattr(lib.t, api)(
        _f1, argnums=-2)(_vec(lib, 3)), ValueError, "got value -2 for len(args) == 1")
      for api in ("grad", "jacrev")],
    *[Case(f"{api} argnums={bad!r}", lambda lib, api=api, bad=bad: getattr(lib.t, api)(
        _f1, argnums=bad)(_vec(lib, 3)), TypeError, "argnums must be an int or a sequence")
      for api in ("grad", "value_and_grad", "jacfwd", "hessian")
      for bad in ("a", 1.0, None, (0, "a"))],
    Case("grad argnums=()", lambda lib: lib.t.grad(_f1, argnums=())(_vec(lib, 3)),
         ValueError, "must name at least one argument"),
    Case("grad repeated argnums", lambda lib: lib.t.grad(_f2, argnums=(0, 0))(
        _vec(lib, 3), _vec(lib, 3)), TypeError, "more than once", jax_differs=True),
    Case("grad of a non-callable", lambda lib: lib.t.grad(3), TypeError,
         "expected a callable value"),
    Case("vmap of a non-callable", lambda lib: lib.t.vmap(3), TypeError,
         "expected a callable value"),
    # ---- jit's static and donated arguments
    Case("jit static_argnums past the parameters", lambda lib: lib.t.jit(
        _f1, static_argnums=3), ValueError, "but only accepts 1 positional arguments"),
    Case("jit negative static_argnums out of range", lambda lib: lib.t.jit(
        _f1, static_argnums=-3), ValueError, "but only accepts 1 positional arguments"),
    Case("jit donate_argnums past the parameters", lambda lib: lib.t.jit(
        _f1, donate_argnums=2), ValueError, "donate_argnums=(2,), but only accepts 1"),
    Case("jit static_argnums of a partial", lambda lib: lib.t.jit(
        functools.partial(_f2, y=2.0), static_argnums=1), ValueError, "only accepts 1"),
    *[Case(f"jit {what}={bad!r}", lambda lib, what=what, bad=bad: lib.t.jit(
        _f1, **{what: bad}), TypeError, f"{what} must be")
      for what, bad in (("static_argnums", "a"), ("static_argnums", 1.0),
                        ("static_argnums", (0, "a")), ("donate_argnums", "a"),
                        ("static_argnames", 3), ("static_argnames", ("x", 3)))],
    Case("jit static_argnames the function does not take", lambda lib: lib.t.jit(
        _f1, static_argnames="z"), ValueError, "Function does not take these args"),
    Case("jit static_argnames positional-only", lambda lib: lib.t.jit(
        lambda x, /, y: x, static_argnames="x"), ValueError, "positional-only"),
    Case("jit static and donated at once", lambda lib: lib.t.jit(
        _f2, static_argnums=1, donate_argnums=1), ValueError, "static"),
    Case("jit unhashable static value", lambda lib: lib.t.jit(_f2, static_argnums=1)(
        _vec(lib, 3), [1]), ValueError, "Non-hashable static arguments"),
    # ---- vmap's in_axes / out_axes / sizes
    Case("vmap out_axes past the output's rank", lambda lib: lib.t.vmap(
        lambda x: x, out_axes=2)(_vec(lib, 3, 4)), ValueError, "out_axes=2 is out of bounds"),
    Case("vmap out_axes on a scalar output", lambda lib: lib.t.vmap(
        lambda x: x.sum(), out_axes=1)(_vec(lib, 3, 4)), ValueError, "must be in [-1, 1)"),
    Case("vmap negative out_axes out of range", lambda lib: lib.t.vmap(
        lambda x: x, out_axes=-3)(_vec(lib, 3, 4)), ValueError, "out_axes=-3 is out of bounds"),
    Case("vmap out_axes of a dict output", lambda lib: lib.t.vmap(
        lambda x: {"a": x}, out_axes={"a": 2})(_vec(lib, 3)), ValueError, "output ['a']"),
    *[Case(f"vmap {what}={bad!r}", lambda lib, what=what, bad=bad: lib.t.vmap(
        lambda x: x, **{what: bad})(_vec(lib, 3, 4)), TypeError, f"{what} must be an int, None")
      for what, bad in (("in_axes", 1.0), ("in_axes", "a"), ("in_axes", True),
                        ("in_axes", np.int64(0)), ("in_axes", {"x": 0}),
                        ("out_axes", 1.0), ("out_axes", True), ("out_axes", (0, 1.0)))],
    Case("vmap nested non-int in_axes", lambda lib: lib.t.vmap(
        lambda x, d: x, in_axes=(0, {"a": 1.0})), TypeError, "(nested) container"),
    Case("vmap in_axes longer than the arguments", lambda lib: lib.t.vmap(
        _f2, in_axes=(0, 0, 0))(_vec(lib, 3), _vec(lib, 3)), ValueError,
         "len(in_axes)=3, len(args)=2"),
    Case("vmap in_axes structure mismatch", lambda lib: lib.t.vmap(
        lambda d: d["a"], in_axes=({"b": 0},))({"a": _vec(lib, 3)}), ValueError,
         "tree prefix"),
    Case("vmap out_axes structure mismatch", lambda lib: lib.t.vmap(
        lambda x: (x, x), out_axes=(0, 0, 0))(_vec(lib, 3)), ValueError,
         "out_axes specification"),
    Case("vmap in_axes past the argument's rank", lambda lib: lib.t.vmap(
        lambda x: x, in_axes=2)(_vec(lib, 3)), ValueError, "rank should be at least 3"),
    Case("vmap of a scalar", lambda lib: lib.t.vmap(lambda x: x)(lib.np.float32(1.0)),
         ValueError, "rank should be at least 1"),
    Case("vmap sizes differ", lambda lib: lib.t.vmap(_f2)(_vec(lib, 3), _vec(lib, 4)),
         ValueError, "one axis had size 4: axis 0 of argument y of type"),
    Case("vmap sizes differ, most agree", lambda lib: lib.t.vmap(lambda a, b, c: a)(
        _vec(lib, 3), _vec(lib, 4), _vec(lib, 3)), ValueError,
         "most axes (2 of them) had size 3, e.g. axis 0 of argument a"),
    Case("vmap sizes differ inside a dict", lambda lib: lib.t.vmap(lambda d: d)(
        {"a": _vec(lib, 3), "b": _vec(lib, 4)}), ValueError, "argument d['b']"),
    Case("vmap sizes differ in keywords", lambda lib: lib.t.vmap(_f2)(
        _vec(lib, 3), y=_vec(lib, 4)), ValueError, "axis 0 of kwargs['y']"),
    Case("vmap axis_size differs", lambda lib: lib.t.vmap(lambda x: x, axis_size=5)(
        _vec(lib, 3)), ValueError, "the `axis_size` argument was 5"),
    # (2.5, not 2.0: jax's trace cache takes 2.0 for an earlier call's 2 and accepts it)
    Case("vmap axis_size not an int", lambda lib: lib.t.vmap(
        lambda x: x, in_axes=None, axis_size=2.5)(_vec(lib, 3)), TypeError, "axis_size"),
    Case("vmap nothing mapped", lambda lib: lib.t.vmap(lambda x: x, in_axes=None)(
        _vec(lib, 3)), ValueError, "at least one non-None value in in_axes"),
    Case("vmap without arguments", lambda lib: lib.t.vmap(lambda: 1.0)(), ValueError,
         "at least one argument"),
    Case("vmap out_axes=None for a batched output", lambda lib: lib.t.vmap(
        lambda x: x, out_axes=None)(_vec(lib, 3)), ValueError, "got axis spec None"),
    # ---- custom derivatives' nondiff_argnums
    *[Case(f"{kind} nondiff_argnums past the arguments", _nondiff(kind, (3,)), IndexError,
           "nondiff_argnums=(3,) refers to argument 3")
      for kind in ("custom_jvp", "custom_vjp")],
    *[Case(f"{kind} nondiff_argnums={bad!r}", _nondiff(kind, bad), TypeError,
           "nondiff_argnums must be")
      for kind in ("custom_jvp", "custom_vjp") for bad in (1, (0, "a"))],
    # ---- in-place updates of immutable arrays
    Case("x[0] = y on an array", _setitem(None), TypeError, "x = x.at[idx].set(y)"),
    *[Case(f"x[0] = y under {t}", _setitem(t), TypeError, "x = x.at[idx].set(y)")
      for t in ("jit", "grad", "vmap")],
    # ---- values an array cannot hold
    Case("asarray of an object array", lambda lib: lib.np.asarray(
        np.array([1, "a"], dtype=object)), TypeError, "asarray: cannot convert a NumPy array "
         "of dtype object and shape (2,)"),
    Case("asarray of numbers in an object array", lambda lib: lib.np.asarray(
        np.array([1, 2.0], dtype=object)), TypeError, "dtype object"),
    Case("asarray of a list of strings", lambda lib: lib.np.asarray(["a", "b"]), TypeError,
         "asarray: cannot convert a str 'a'"),
    Case("array of a string", lambda lib: lib.np.array("a"), TypeError,
         "array: cannot convert a str 'a'"),
    Case("asarray of a dict", lambda lib: lib.np.asarray({"a": 1}), TypeError,
         "an object of type dict"),
    Case("asarray of None", lambda lib: lib.np.asarray(None), ValueError,
         "None is not a valid value"),
    Case("asarray of a list holding None", lambda lib: lib.np.asarray([1.0, None]), ValueError,
         "None is not a valid value"),
    # ---- losses: labels that do not match the logits
    *[Case(f"{loss} labels {shape}", lambda lib, loss=loss, shape=shape: getattr(
        lib.losses, loss)(_vec(lib, 4, 5), _vec(lib, *shape)), exc,
        f"{loss}: labels of shape {shape} do not match logits of shape (4, 5)")
      for loss, shape, exc in (("softmax_cross_entropy", (4, 3), TypeError),
                               ("sigmoid_binary_cross_entropy", (4, 3), TypeError))],
    Case("kl_divergence targets (4, 3)", lambda lib: lib.losses.kl_divergence(
        _vec(lib, 4, 5), _vec(lib, 4, 3)), TypeError, "targets of shape (4, 3) do not match "
         "log_predictions of shape (4, 5)"),
    *[Case(f"integer labels {shape}", lambda lib, shape=shape: (
        lib.losses.softmax_cross_entropy_with_integer_labels(
            _vec(lib, 4, 5), lib.np.zeros(shape, lib.np.int32))), ValueError,
        f"labels of shape {shape} do not match logits of shape (4, 5): integer labels must "
        "have shape (4,)")
      for shape in ((3,), (4, 5), (4, 1), ())],
    Case("float labels for integer labels", lambda lib: (
        lib.losses.softmax_cross_entropy_with_integer_labels(_vec(lib, 4, 5), _vec(lib, 4))),
         TypeError, "labels must be integer class indices, got dtype float32"),
    # ---- optimisers: gradients that do not match the parameters or the state
    *[Case(f"{opt} gradients missing a key", _opt_update(opt, lambda lib: {"w": _vec(lib, 2, 3)}),
           ValueError, f"fungrad.optim.{atom}: the updates' tree structure")
      for opt, atom in (("adam", "scale_by_adam"), ("adamw", "scale_by_adam"),
                        ("lion", "scale_by_lion"), ("rmsprop", "scale_by_rms"),
                        ("adagrad", "scale_by_rss"))],
    Case("adam gradients as a list", _opt_update("adam", lambda lib: [
        _vec(lib, 2, 3), _vec(lib, 3)]), ValueError, "PyTreeSpec([*, *])"),
    Case("adam gradients without params", _opt_update("adam", lambda lib: {
        "w": _vec(lib, 2, 3)}, with_params=False), ValueError, "structure of the state.mu"),
    Case("adam gradient of another shape", _opt_update("adam", lambda lib: {
        "w": _vec(lib, 2, 3), "b": _vec(lib, 4)}), TypeError,
         "the update at ['b'] has shape (4,) but the parameter has shape (3,)"),
    Case("apply_updates missing a key", lambda lib: lib.optim.apply_updates(
        {"w": _vec(lib, 2), "b": _vec(lib, 3)}, {"w": _vec(lib, 2)}), ValueError,
         "fungrad.optim.apply_updates: the updates' tree structure"),
    Case("apply_updates of another shape", lambda lib: lib.optim.apply_updates(
        {"w": _vec(lib, 2)}, {"w": _vec(lib, 3)}), TypeError, "has shape (3,) but the "
         "parameter has shape (2,)"),
]


def _raised(run: Callable[[Lib], Any], lib: Lib) -> type | None:
    """The class ``run(lib)`` raises, or None (the library's own warnings are ignored)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(lib)
    except Exception as e:  # noqa: BLE001 - the class is what is compared
        return type(e)
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_misuse_raises_like_jax(case: Case) -> None:
    with pytest.raises(case.exc) as info:
        case.run(FG)
    assert case.match in str(info.value), str(info.value)
    jax_exc = _raised(case.run, JX)
    assert jax_exc is not None, f"jax accepts {case.name}"
    if not case.jax_differs:
        assert issubclass(jax_exc, case.exc) and issubclass(type(info.value), jax_exc), \
            f"jax raises {jax_exc.__name__}, fungrad {type(info.value).__name__}"


VALID = [
    ("grad argnums=-1", lambda lib: lib.t.grad(_f2, argnums=-1)(_vec(lib, 3), _vec(lib, 3))),
    ("grad argnums as a list", lambda lib: lib.t.grad(_f2, argnums=[0, 1])(
        _vec(lib, 3), _vec(lib, 3))),
    ("grad argnums=np.int64(0)", lambda lib: lib.t.grad(_f1, argnums=np.int64(0))(_vec(lib, 3))),
    ("jit static_argnums=None", lambda lib: lib.t.jit(_f1, static_argnums=None)(_vec(lib, 3))),
    ("jit static_argnums=-1", lambda lib: lib.t.jit(_f2, static_argnums=-1)(_vec(lib, 3), 2.0)),
    ("jit static_argnums past *args", lambda lib: lib.t.jit(
        lambda *a: a[0], static_argnums=3)(_vec(lib, 3))),
    ("jit static_argnames taken by **kwargs", lambda lib: lib.t.jit(
        lambda x, **kw: x, static_argnames="z")(_vec(lib, 3), z=1)),
    ("jit repeated static_argnums", lambda lib: lib.t.jit(_f2, static_argnums=(1, 1))(
        _vec(lib, 3), 2.0)),
    ("vmap in_axes as a list", lambda lib: lib.t.vmap(_f2, in_axes=[0, None])(
        _vec(lib, 3, 4), _vec(lib, 4))),
    ("vmap negative out_axes", lambda lib: lib.t.vmap(lambda x: x, out_axes=-1)(_vec(lib, 3, 4))),
    ("vmap axis_size without arguments", lambda lib: lib.t.vmap(lambda: 1.0, axis_size=3)()),
    ("softmax_cross_entropy broadcast labels", lambda lib: lib.losses.softmax_cross_entropy(
        _vec(lib, 4, 5), _vec(lib, 1, 5))),
    ("integer labels broadcast", lambda lib: lib.losses.softmax_cross_entropy_with_integer_labels(
        _vec(lib, 4, 5), lib.np.zeros((1,), lib.np.int32))),
    ("sgd ignores the gradients' structure", _opt_update("sgd", lambda lib: [_vec(lib, 3)])),
]


@pytest.mark.parametrize("run", [r for _, r in VALID], ids=[n for n, _ in VALID])
def test_accepted_like_jax(run: Callable[[Lib], Any]) -> None:
    assert _raised(run, JX) is None
    run(FG)


def test_immutable_array_message_names_the_fix() -> None:
    x = fnp.ones(3)
    with pytest.raises(TypeError, match=r"immutable.*x = x\.at\[idx\]\.set\(y\)"):
        x[0] = 5.0
    with pytest.raises(TypeError, match="fungrad.numpy.delete"):
        del x[0]


def test_nondiff_argnums_negative_index_is_resolved() -> None:
    g = fungrad.custom_vjp(lambda x, y: x * y, nondiff_argnums=(-1,))
    g.defvjp(lambda x, y: (x * y, None), lambda y, res, ct: (ct * y,))
    np.testing.assert_allclose(fungrad.grad(lambda x: g(x, 3.0))(2.0), 3.0)


def test_nested_chain_names_the_failing_atom() -> None:
    params = {"w": fnp.ones(3), "b": fnp.ones(2)}
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.1))
    with pytest.raises(optim.UpdateStructureError, match="scale_by_adam"):
        opt.update({"w": fnp.ones(3)}, opt.init(params), params)
