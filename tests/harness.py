"""Shared test helpers: one tolerance table per dtype, input generators, and
comparisons of fungrad against jax (values, shapes, dtypes, weak types).

Most of a comparison test's time is jax compiling its reference: eager jax compiles every
operation for each new shape and dtype. ``compare_all`` and ``compare_quick`` (values) and
``compare_transforms(..., fused_ref=True)`` (derivatives and batched forms) compute jax's
results in one quickly compiled program instead; keep a reference eager where a test
compares eager rounding or an error jax raises eagerly, and say so in the test."""
from __future__ import annotations

import functools
import importlib.util
import os
import pkgutil
import tracemalloc
from typing import Any, Callable, Sequence

import jax
import ml_dtypes
import numpy as np
import pytest

import fungrad
from fungrad import errors, tree

# Run fewer cases locally with FUNGRAD_TEST_FAST=1.
FAST = os.environ.get("FUNGRAD_TEST_FAST", "0") == "1"

# Modules that need a dependency the test extra does not install, with that dependency: CuPy
# comes with the gpu extra (a CUDA wheel). Where it is installed, these modules are walked too.
NEEDS_OPTIONAL = {"fungrad.backends.cupy": "cupy"}


def package_modules() -> list[str]:
    """``fungrad`` and every module under it, less those whose optional dependency is absent
    (the tests that import every module walk this list)."""
    def fail(name):
        raise ImportError(f"could not import {name} while collecting fungrad modules")
    names = ["fungrad"] + [m.name for m in pkgutil.walk_packages(fungrad.__path__, "fungrad.",
                                                                 onerror=fail)]
    return sorted(n for n in names
                  if n not in NEEDS_OPTIONAL or importlib.util.find_spec(NEEDS_OPTIONAL[n]))

# Tolerances per dtype: (rtol, atol). One table; tests never pick magic numbers.
TOL = {
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float64): (1e-12, 1e-12),
    np.dtype(np.float16): (2e-3, 2e-3),
    np.dtype(ml_dtypes.bfloat16): (1.6e-2, 1.6e-2),
    np.dtype(np.complex64): (1e-5, 1e-6),
    np.dtype(np.complex128): (1e-12, 1e-12),
}
# Derivatives accumulate more rounding than values.
GRAD_TOL = {k: (max(r * 10, 1e-4) if k != np.dtype(np.float64) else 1e-9, max(a * 10, 1e-5))
            for k, (r, a) in TOL.items()}


def tol(dtype: Any, table: dict = TOL) -> tuple[float, float]:
    return table.get(np.dtype(dtype), (0.0, 0.0))


def rand(rng: np.random.Generator, shape: Sequence[int], dtype: Any = np.float32,
         low: float = -2.0, high: float = 2.0) -> np.ndarray:
    """Random inputs of any dtype (bool, ints, floats incl. bfloat16)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else int(low * 4)
        return rng.integers(lo, int(high * 4) + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def to_jax(x: Any) -> Any:
    """Array leaves as jax arrays of a private copy. ``jax.device_put`` gives the dtypes and
    weak types ``jnp.asarray`` gives, without compiling a conversion program for every new
    shape and dtype (about 10 ms each, which added up over the suite)."""
    return tree.map(lambda v: jax.device_put(np.array(v)) if hasattr(v, "shape") else v, x)


def to_fg(x: Any) -> Any:
    return tree.map(lambda v: fungrad.numpy.asarray(np.asarray(v)) if hasattr(v, "shape") else v, x)


def _widened(a: np.ndarray) -> np.ndarray:
    """bfloat16 as float64 (which ``assert_allclose`` compares); other dtypes unchanged."""
    return a.astype(np.float64) if a.dtype == ml_dtypes.bfloat16 else a


def assert_same(fg_out: Any, ref_out: Any, table: dict = TOL, check_weak: bool = True,
                rtol: float | None = None, atol: float | None = None) -> None:
    """fungrad and jax results agree in tree structure, shape, dtype, weak type and value."""
    fg_leaves, fg_tree = tree.flatten(fg_out)
    ref_leaves, ref_tree = jax.tree_util.tree_flatten(ref_out)
    assert len(fg_leaves) == len(ref_leaves), (fg_tree, ref_tree)
    for a, b in zip(fg_leaves, ref_leaves):
        a_np, b_np = np.asarray(a), np.asarray(b)
        assert a_np.shape == b_np.shape, f"shape {a_np.shape} != jax {b_np.shape}"
        assert a_np.dtype == b_np.dtype, f"dtype {a_np.dtype} != jax {b_np.dtype}"
        if check_weak and hasattr(b, "weak_type") and hasattr(a, "weak_type"):
            assert bool(a.weak_type) == bool(b.weak_type), \
                f"weak_type {a.weak_type} != jax {b.weak_type}"
        if a_np.dtype == jax.dtypes.float0:
            continue
        r, t = tol(a_np.dtype, table)
        np.testing.assert_allclose(_widened(a_np), _widened(b_np),
                                   rtol=r if rtol is None else rtol,
                                   atol=t if atol is None else atol)


# What each library raises when a function needs a concrete value that tracing hides.
_FG_TRACING_ERRORS = (errors.ConcretizationTypeError, errors.TracerArrayConversionError)
_JAX_TRACING_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                       jax.errors.NonConcreteBooleanIndexError)


def _call_jitted(jit: Callable, fn: Callable, args: Sequence[Any]) -> Any:
    """``fn(*args)`` under ``jit``: the array leaves of ``args`` are traced, the other leaves
    (Python scalars, shapes, axes) are static."""
    leaves, treedef = jax.tree_util.tree_flatten(list(args))
    dyn = [i for i, v in enumerate(leaves) if hasattr(v, "shape")]

    def call(*arrays):
        full = list(leaves)
        for i, a in zip(dyn, arrays):
            full[i] = a
        return fn(*jax.tree_util.tree_unflatten(treedef, full))
    return jit(call)(*[leaves[i] for i in dyn])


def run_jitted(fg_fn: Callable, jax_fn: Callable, args: Sequence[Any]) -> Any:
    """``fg_fn`` on NumPy ``args`` under ``fungrad.jit`` (the op tables run every op so), or
    None when it needs concrete values, which is checked to be just as true of ``jax_fn``
    under ``jax.jit``."""
    try:
        return _call_jitted(fungrad.jit, fg_fn, to_fg(list(args)))
    except _FG_TRACING_ERRORS:
        with pytest.raises(_JAX_TRACING_ERRORS):
            _call_jitted(jax.jit, jax_fn, to_jax(list(args)))
        return None


def compare(fg_fn: Callable, jax_fn: Callable, *args: Any, table: dict = TOL,
            jit_ref: bool = False, ref_out: Any = None, **kw: Any) -> None:
    """Run both on the same NumPy inputs and compare; ``fg_fn`` also under ``fungrad.jit``.

    ``jit_ref=True`` runs the jax reference under ``jax.jit``: one compilation instead of
    one per primitive for composites jax does not jit itself (much faster tests).
    ``ref_out``: jax's result, when already computed.
    """
    if ref_out is None:
        ref_out = (jax.jit(jax_fn) if jit_ref else jax_fn)(*to_jax(args))
    assert_same(fg_fn(*to_fg(args)), ref_out, table=table, **kw)
    jitted = run_jitted(fg_fn, jax_fn, args)
    if jitted is not None:
        assert_same(jitted, ref_out, table=table, **kw)


def compare_types(fg_fn: Callable, jax_fn: Callable, *args: Any) -> list:
    """Shapes, dtypes and weak types of fungrad's results, eager and under ``fungrad.jit``,
    against ``jax.eval_shape``; returns the results checked.

    Cheap (jax only traces, it does not compile), so it can cover whole dtype matrices;
    check values with ``compare`` on a representative subset.
    """
    ref_leaves, ref_tree = jax.tree_util.tree_flatten(jax.eval_shape(jax_fn, *to_jax(args)))
    outs = [fg_fn(*to_fg(args)), run_jitted(fg_fn, jax_fn, args)]
    outs = [out for out in outs if out is not None]
    for out in outs:
        fg_leaves, fg_tree = tree.flatten(out)
        assert len(fg_leaves) == len(ref_leaves), (fg_tree, ref_tree)
        for a, b in zip(fg_leaves, ref_leaves):
            assert tuple(a.shape) == tuple(b.shape), f"shape {a.shape} != jax {b.shape}"
            assert np.dtype(a.dtype) == np.dtype(b.dtype), f"dtype {a.dtype} != jax {b.dtype}"
            assert bool(a.weak_type) == bool(b.weak_type), \
                f"weak_type {a.weak_type} != jax {b.weak_type} (dtype {a.dtype})"
    return outs


def compare_np(fg_fn: Callable, np_fn: Callable, jax_fn: Callable, *args: Any,
               table: dict = TOL) -> None:
    """Types against ``jax.eval_shape(jax_fn)`` and values against ``np_fn`` (NumPy's
    semantics, which jax.numpy follows), computed on host and cast to fungrad's dtypes;
    eager and under ``fungrad.jit``.

    For large tables where compiling every case with jax would dominate the test time.
    """
    np_leaves = jax.tree_util.tree_leaves(np_fn(*args))
    for out in compare_types(fg_fn, jax_fn, *args):
        fg_leaves, _ = tree.flatten(out)
        assert len(fg_leaves) == len(np_leaves)
        for a, b in zip(fg_leaves, np_leaves):
            a_np = np.asarray(a)
            b_np = np.asarray(b)
            assert a_np.shape == b_np.shape, f"shape {a_np.shape} != numpy {b_np.shape}"
            r, t = tol(a_np.dtype, table)
            as64 = lambda v: v.astype(np.float64) if v.dtype == ml_dtypes.bfloat16 else v  # noqa: E731
            np.testing.assert_allclose(as64(a_np), as64(b_np.astype(a_np.dtype)), rtol=r, atol=t)


# Reference programs compiled for tests: XLA's backend optimisations take longer than
# these tiny programs ever run.
class x64:
    """Enable 64-bit dtypes in fungrad and jax for the duration of a ``with`` block."""

    def __enter__(self):
        self.fg, self.jx = fungrad.config.enable_x64, jax.config.jax_enable_x64
        fungrad.config.update("enable_x64", True)
        jax.config.update("jax_enable_x64", True)

    def __exit__(self, *exc):
        fungrad.config.update("enable_x64", self.fg)
        jax.config.update("jax_enable_x64", self.jx)


@pytest.fixture(name="dtype", params=[np.float32, np.float64], ids=["f32", "f64"])
def float_dtypes(request):
    """A test file's ``dtype`` fixture when imported there: float32, then float64 with
    64-bit dtypes on in both libraries (``x64``)."""
    if request.param == np.float64:
        with x64():
            yield request.param
    else:
        yield request.param


QUICK_COMPILE = {"xla_backend_optimization_level": 0}


def quick_jit(fn: Callable) -> Callable:
    """``jax.jit`` compiling quickly (``QUICK_COMPILE``): compiling jax's references is most
    of the time of many tests."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


def compare_all(cases: Sequence[tuple]) -> None:
    """``compare`` on each ``(fg_fn, jax_fn, *args)`` of ``cases``, jax's results all from one
    quickly compiled program: one compilation instead of one per op of each case. The NumPy
    inputs go in as they are (converting each first compiles a program too). Only for
    functions jax can jit: those whose result's size depends on the values run eagerly."""
    fns = [jax_fn for _, jax_fn, *_ in cases]
    refs = quick_jit(lambda all_args: [fn(*args) for fn, args in zip(fns, all_args)])(
        [args for _, _, *args in cases])
    for (fg_fn, jax_fn, *args), ref in zip(cases, refs):
        compare(fg_fn, jax_fn, *args, ref_out=ref)


def compare_quick(fg_fn: Callable, jax_fn: Callable, *args: Any) -> None:
    """``compare_all`` of one case."""
    compare_all([(fg_fn, jax_fn, *args)])


def _restrict(fn: Callable, full: Sequence[Any], idx: Sequence[int]) -> Callable:
    """``fn`` of the arguments at ``idx`` only, the others fixed to ``full``'s."""
    def g(*d):
        full_ = list(full)
        for i, v in zip(idx, d):
            full_[i] = v
        return fn(*full_)
    return g


def _jax_transforms(jax_fn: Callable, args: list, idx: list, tan: list, ct: Any,
                    batched: list) -> list:
    """jax's ``[value, jvp tangents, vjp cotangents, [vmap results]]`` (no derivatives
    when ``idx`` is empty); ``batched`` holds ``(arrays, in_axes)`` pairs."""
    out = [jax_fn(*args)]
    if idx:
        g = _restrict(jax_fn, args, idx)
        out.append(jax.jvp(g, tuple(args[i] for i in idx), tuple(tan))[1])
        out.append(jax.vjp(g, *[args[i] for i in idx])[1](ct))
    return out + [[jax.vmap(jax_fn, in_axes=axes)(*b) for b, axes in batched]]


def compare_transforms(fg_fn: Callable, jax_fn: Callable, args: Sequence[Any],
                       rng: np.random.Generator, argnums: Sequence[int] | None = None,
                       vmap_axes: Sequence[int] = (0,), jit_ref: bool = False,
                       fused_ref: bool = False) -> None:
    """Values, JVP, VJP and vmap of ``fg_fn`` against ``jax_fn`` on the same inputs.

    Differentiates with respect to the floating-point arguments (or ``argnums``).
    vmap stacks 3 random copies of each argument along each axis in ``vmap_axes``.
    ``jit_ref=True`` wraps the jax reference in ``jax.jit`` (see ``compare``).
    ``fused_ref=True`` computes all of jax's results in one program, compiled with
    ``QUICK_COMPILE`` (one short compilation instead of one per transformation).
    """
    args = list(args)
    idx = [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"
           or np.asarray(a).dtype == ml_dtypes.bfloat16] if argnums is None else list(argnums)
    prim = [args[i] for i in idx]
    tan = [rand(rng, np.shape(a), np.asarray(a).dtype) for a in prim]
    ct = jax.tree_util.tree_map(lambda y: rand(rng, y.shape, y.dtype),
                                jax.eval_shape(jax_fn, *to_jax(args))) if idx else None
    batched = []
    for ax in vmap_axes:
        batched.append(([np.stack([rand(rng, np.shape(a), np.asarray(a).dtype) for _ in range(3)],
                                  axis=ax if np.ndim(a) >= ax else 0) for a in args],
                        tuple(ax if np.ndim(a) >= ax else 0 for a in args)))
    if fused_ref:
        refs = _call_jitted(functools.partial(jax.jit, compiler_options=QUICK_COMPILE),
                            functools.partial(_jax_transforms, jax_fn),
                            to_jax([args, idx, tan, ct, batched]))
    else:
        jax_fn = jax.jit(jax_fn) if jit_ref else jax_fn
        refs = [jax_fn(*to_jax(args))]
        if idx:
            g = _restrict(jax_fn, to_jax(args), idx)
            refs.append(jax.jvp(g, tuple(to_jax(prim)), tuple(to_jax(tan)))[1])
            refs.append(jax.vjp(g, *to_jax(prim))[1](to_jax(ct)))
        refs.append([jax.vmap(jax_fn, in_axes=axes)(*to_jax(b)) for b, axes in batched])
    compare(fg_fn, jax_fn, *args, ref_out=refs[0])
    if idx:
        g = _restrict(fg_fn, to_fg(args), idx)
        assert_same(fungrad.jvp(g, tuple(to_fg(prim)), tuple(to_fg(tan)))[1], refs[1], GRAD_TOL,
                    check_weak=False)
        assert_same(fungrad.vjp(g, *to_fg(prim))[1](to_fg(ct)), refs[2], GRAD_TOL,
                    check_weak=False)
    for (b, axes), ref in zip(batched, refs[-1]):
        assert_same(fungrad.vmap(fg_fn, in_axes=axes)(*to_fg(b)), ref, check_weak=False)


def peak_traced_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes allocated above the starting level while ``fn()`` runs (``tracemalloc``:
    NumPy reports its buffers to it), and ``fn``'s result."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        return tracemalloc.get_traced_memory()[1] - base, out
    finally:
        tracemalloc.stop()
