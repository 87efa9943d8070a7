"""Shapes, sizes and axes are validated as JAX validates them.

One record per (function, bad argument): fungrad must raise the expected class with a
message naming the function and the argument, and JAX, given the same input, must raise
the same builtin exception class (fungrad's may be a subclass, e.g. ``AxisError`` is both
a ``ValueError`` and an ``IndexError``). Where JAX's class differs on purpose, the record
says why.
"""
from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp_ref
import jax.scipy.special
import numpy as np
import pytest

import fungrad
import fungrad.numpy as fnp
import fungrad.scipy.special
from fungrad.errors import AxisError, ConcretizationTypeError, ResourceExhaustedError


def _namespace(lib: Any, numpy: Any, special: Any) -> types.SimpleNamespace:
    """The same names for both libraries, so one lambda builds both calls."""
    return types.SimpleNamespace(np=numpy, lax=lib.lax, random=lib.random, nn=lib.nn,
                                 special=special, jit=lib.jit, key=lib.random.key(0),
                                 ShapeDtypeStruct=lib.ShapeDtypeStruct,
                                 x=numpy.ones((2, 3), numpy.float32))


FG = _namespace(fungrad, fnp, fungrad.scipy.special)
JX = _namespace(jax, jnp_ref, jax.scipy.special)


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[types.SimpleNamespace], Any]
    exc: type[BaseException]
    match: str
    jax_differs: str = ""  # why JAX raises another class (or nothing), when it does


SHAPE = "argument 'shape' must be an integer or a 1D sequence of concrete values of integer type"
NONNEG = "argument 'shape' must have every element be nonnegative"
NOT_INT = "axis must be an integer, got '0' of type str"
NAMED_AXIS = "JAX reads a string axis as a named (pmap/shard_map) axis: NameError"

SHAPE_CASES = [
    Case("zeros-str", lambda m: m.np.zeros("3"), TypeError, f"zeros: {SHAPE}"),
    Case("zeros-float", lambda m: m.np.zeros((2.5,)), TypeError, f"zeros: {SHAPE}"),
    Case("zeros-float-scalar", lambda m: m.np.zeros(2.5), TypeError, f"zeros: {SHAPE}"),
    Case("zeros-none", lambda m: m.np.zeros(None), TypeError, f"zeros: {SHAPE}"),
    Case("zeros-negative", lambda m: m.np.zeros((-1,)), TypeError, f"zeros: {NONNEG}"),
    Case("ones-str", lambda m: m.np.ones("3"), TypeError, f"ones: {SHAPE}"),
    Case("empty-float", lambda m: m.np.empty((2, 2.5)), TypeError, f"empty: {SHAPE}"),
    Case("full-negative", lambda m: m.np.full((2, -1), 1.0), TypeError, f"full: {NONNEG}"),
    Case("zeros_like-shape", lambda m: m.np.zeros_like(m.x, shape=(2.5,)), TypeError,
         f"zeros_like: {SHAPE}"),
    Case("full_like-shape", lambda m: m.np.full_like(m.x, 1.0, shape="3"), TypeError,
         f"full_like: {SHAPE}"),
    Case("eye-str", lambda m: m.np.eye("3"), TypeError, "eye: N must be a static integer"),
    Case("eye-float", lambda m: m.np.eye(2.5), TypeError, "eye: N must be a static integer"),
    Case("broadcast_to-float", lambda m: m.np.broadcast_to(m.x, (2.5, 3)), TypeError,
         f"broadcast_to: {SHAPE}"),
    Case("broadcast_to-negative", lambda m: m.np.broadcast_to(m.np.ones(3), (-1, 3)),
         TypeError,
         f"broadcast_to: {NONNEG}"),
    Case("reshape-float", lambda m: m.np.reshape(m.x, (2.5, 3)), TypeError,
         f"reshape: {SHAPE}"),
    Case("reshape-str", lambda m: m.np.reshape(m.x, "6"), TypeError, f"reshape: {SHAPE}"),
    Case("tile-float", lambda m: m.np.tile(m.x, 2.5), TypeError,
         "tile: argument 'reps' must be an integer or a 1D sequence"),
    Case("lax.full-str", lambda m: m.lax.full("3", 1.0), TypeError, f"full: {SHAPE}"),
    Case("lax.full-negative", lambda m: m.lax.full((-1,), 1.0), TypeError, f"full: {NONNEG}"),
    Case("lax.broadcast_in_dim-float", lambda m: m.lax.broadcast_in_dim(1.0, (2.5,), ()),
         TypeError, f"broadcast_in_dim: {SHAPE}"),
    Case("lax.broadcast_in_dim-negative", lambda m: m.lax.broadcast_in_dim(1.0, (-1,), ()),
         TypeError, f"broadcast_in_dim: {NONNEG}"),
    Case("lax.reshape-float", lambda m: m.lax.reshape(m.x, (2.5,)), TypeError,
         "reshape: argument 'new_sizes' must be an integer or a 1D sequence"),
    Case("lax.iota-float", lambda m: m.lax.iota(np.int32, 2.5), TypeError,
         "iota: argument 'size' must be an integer or a 1D sequence"),
    Case("lax.iota-negative", lambda m: m.lax.iota(np.int32, -1), TypeError,
         "iota: argument 'size' must have every element be nonnegative"),
    Case("random.normal-float", lambda m: m.random.normal(m.key, (2.5,)), TypeError,
         f"normal: {SHAPE}"),
    Case("random.uniform-str", lambda m: m.random.uniform(m.key, "3"), TypeError,
         f"uniform: {SHAPE}"),
    Case("random.normal-negative", lambda m: m.random.normal(m.key, (-1,)), TypeError,
         f"normal: {NONNEG}", "JAX fails later, in MLIR, with a non-builtin error class"),
    Case("ShapeDtypeStruct-float", lambda m: m.ShapeDtypeStruct((2.5,), np.float32), TypeError,
         f"ShapeDtypeStruct: {SHAPE}", "JAX stores any shape and fails only when it is used"),
    Case("ShapeDtypeStruct-negative", lambda m: m.ShapeDtypeStruct((-1,), np.float32),
         TypeError, f"ShapeDtypeStruct: {NONNEG}",
         "JAX stores any shape and fails only when it is used"),
    Case("jit-traced-shape", lambda m: m.jit(lambda n: m.np.zeros((n, 2)))(3),
         ConcretizationTypeError, "(?s)zeros: argument 'shape'.*argument 'n'.*static_argnums"),
]

SIZE_CASES = [
    Case("zeros-4TiB", lambda m: m.np.zeros((2**40,)), ResourceExhaustedError,
         r"RESOURCE_EXHAUSTED: broadcast_in_dim: .*4398046511104 bytes.*\(1099511627776,\) "
         "and dtype float32"),
    Case("ones-4TiB-sum", lambda m: m.np.ones((2**20, 2**20)).sum(), ResourceExhaustedError,
         r"broadcast_in_dim: .*shape \(1048576, 1048576\) and dtype float32"),
    Case("arange-4TiB", lambda m: m.np.arange(2**40).block_until_ready(), ResourceExhaustedError,
         r"RESOURCE_EXHAUSTED: iota: .*\(1099511627776,\) and dtype int32"),
    Case("outer-allocation",
         lambda m: m.np.outer(m.np.ones(2**20), m.np.ones(2**20)).block_until_ready(),
         ResourceExhaustedError, r"RESOURCE_EXHAUSTED: mul: .*\(1048576, 1048576\).*float32"),
]

AXIS_CASES = [
    Case("mean-str", lambda m: m.np.mean(m.x, axis="0"), TypeError, f"mean: {NOT_INT}",
         NAMED_AXIS),
    Case("max-str", lambda m: m.np.max(m.x, axis="0"), TypeError, f"max: {NOT_INT}", NAMED_AXIS),
    Case("var-str", lambda m: m.np.var(m.x, axis="0"), TypeError, f"var: {NOT_INT}", NAMED_AXIS),
    Case("sum-float", lambda m: m.np.sum(m.x, axis=1.0), TypeError, "sum: axis must be an integer"),
    Case("sum-out-of-range", lambda m: m.np.sum(m.x, axis=2), AxisError,
         "sum: axis 2 is out of bounds for array of dimension 2"),
    Case("sum-duplicate", lambda m: m.np.sum(m.x, axis=(0, -2)), ValueError,
         r"sum: duplicate value in 'axis': \(0, -2\)"),
    Case("ptp-out-of-range", lambda m: m.np.ptp(m.x, axis=2), AxisError, "ptp: axis 2 is out"),
    Case("count_nonzero-out-of-range", lambda m: m.np.count_nonzero(m.x, axis=2), AxisError,
         "count_nonzero: axis 2 is out"),
    Case("nansum-out-of-range", lambda m: m.np.nansum(m.x, axis=2), AxisError,
         "nansum: axis 2 is out"),
    Case("nanmean-out-of-range", lambda m: m.np.nanmean(m.x, axis=(0, 2)), AxisError,
         "nanmean: axis 2 is out"),
    Case("std-out-of-range", lambda m: m.np.std(m.x, axis=5), AxisError, "std: axis 5 is out"),
    Case("cumsum-str", lambda m: m.np.cumsum(m.x, axis="0"), TypeError, f"cumsum: {NOT_INT}"),
    Case("cumsum-tuple", lambda m: m.np.cumsum(m.x, axis=(0,)), TypeError,
         "cumsum: axis must be an integer"),
    Case("cumsum-out-of-range", lambda m: m.np.cumsum(m.x, axis=3), AxisError, "cumsum: axis 3"),
    Case("lax.concatenate-float", lambda m: m.lax.concatenate([m.x, m.x], 1.0), TypeError,
         "concatenate: dimension must be an integer",
         jax_differs="jax refuses 1.0 only until an int dimension 1 sits in its cache (1.0 == 1)"),
    Case("lax.concatenate-str", lambda m: m.lax.concatenate([m.x, m.x], "1"), TypeError,
         "concatenate: dimension must be an integer"),
    Case("concatenate-str", lambda m: m.np.concatenate([m.x, m.x], axis="0"), TypeError,
         f"concatenate: {NOT_INT}"),
    Case("concatenate-out-of-range", lambda m: m.np.concatenate([m.x, m.x], axis=2), AxisError,
         "concatenate: axis 2"),
    Case("stack-float", lambda m: m.np.stack([m.x, m.x], axis=1.0), TypeError,
         "stack: axis must be an integer"),
    Case("stack-out-of-range", lambda m: m.np.stack([m.x, m.x], axis=4), AxisError,
         "stack: axis 4 is out of bounds for array of dimension 3"),
    Case("split-out-of-range", lambda m: m.np.split(m.x, 2, axis=2), AxisError, "split: axis 2"),
    Case("take-float", lambda m: m.np.take(m.x, m.np.array([0]), axis=1.0), TypeError,
         "take: axis must be an integer"),
    Case("take_along_axis-out-of-range",
         lambda m: m.np.take_along_axis(m.x, m.np.zeros((2, 3), np.int32), axis=2), AxisError,
         "take_along_axis: axis 2"),
    Case("expand_dims-out-of-range", lambda m: m.np.expand_dims(m.x, 3), AxisError,
         "expand_dims: axis 3"),
    Case("expand_dims-duplicate", lambda m: m.np.expand_dims(m.x, (0, 0)), ValueError,
         "expand_dims: repeated axis"),
    Case("squeeze-out-of-range", lambda m: m.np.squeeze(m.x, 3), AxisError, "squeeze: axis 3"),
    Case("moveaxis-str", lambda m: m.np.moveaxis(m.x, "0", 1), TypeError, f"moveaxis: {NOT_INT}"),
    Case("swapaxes-out-of-range", lambda m: m.np.swapaxes(m.x, 2, 0), AxisError,
         "swapaxes: axis 2"),
    Case("flip-str", lambda m: m.np.flip(m.x, "0"), TypeError, f"flip: {NOT_INT}"),
    Case("roll-out-of-range", lambda m: m.np.roll(m.x, 1, 2), AxisError, "roll: axis 2"),
    Case("sort-str", lambda m: m.np.sort(m.x, axis="0"), TypeError, f"sort: {NOT_INT}"),
    Case("argsort-out-of-range", lambda m: m.np.argsort(m.x, axis=2), AxisError,
         "argsort: axis 2"),
    Case("argmax-str", lambda m: m.np.argmax(m.x, axis="0"), TypeError, f"argmax: {NOT_INT}"),
    Case("argmax-out-of-range", lambda m: m.np.argmax(m.x, axis=2), AxisError, "argmax: axis 2"),
    Case("softmax-str", lambda m: m.nn.softmax(m.x, axis="0"), TypeError, f"softmax: {NOT_INT}",
         NAMED_AXIS),
    Case("log_softmax-out-of-range", lambda m: m.nn.log_softmax(m.x, axis=2), AxisError,
         "log_softmax: axis 2"),
    Case("logsumexp-str", lambda m: m.special.logsumexp(m.x, axis="0"), TypeError,
         f"logsumexp: {NOT_INT}", NAMED_AXIS),
    Case("lax.sort-float", lambda m: m.lax.sort(m.x, dimension=1.0), TypeError,
         "sort: axis must be an integer, got 1.0"),
    Case("lax.rev-str", lambda m: m.lax.rev(m.x, ("0",)), TypeError,
         "rev: argument 'dimensions' must be an integer or a 1D sequence"),
    Case("lax.index_in_dim-out-of-range", lambda m: m.lax.index_in_dim(m.x, 0, axis=5), AxisError,
         "index_in_dim: axis 5 is out of bounds"),
    Case("lax.cumsum-str", lambda m: m.lax.cumsum(m.x, axis="0"), TypeError,
         f"cumsum: {NOT_INT}", "jax.lax.cumsum converts the axis with int(), so '0' is axis 0"),
    Case("logsumexp-out-of-range", lambda m: m.special.logsumexp(m.x, axis=2), AxisError,
         "logsumexp: axis 2"),
]

CASES = SHAPE_CASES + SIZE_CASES + AXIS_CASES


def _builtin_base(exc: BaseException) -> type[BaseException]:
    """The first builtin class of ``exc``'s type (JAX's own classes derive from them)."""
    return next(c for c in type(exc).__mro__ if c.__module__ == "builtins")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_argument(case: Case) -> None:
    with pytest.raises(case.exc, match=case.match) as caught:
        case.call(FG)
    if case.jax_differs:
        return
    with pytest.raises(Exception) as jax_caught:
        case.call(JX)
    assert isinstance(caught.value, _builtin_base(jax_caught.value)), (
        f"fungrad raised {type(caught.value).__name__}, jax {type(jax_caught.value).__name__}")


def test_resource_exhausted_is_a_memory_error() -> None:
    """``except MemoryError`` and JAX-style ``except RuntimeError`` both catch it."""
    with pytest.raises(MemoryError):
        fnp.zeros((2**40,))
    with pytest.raises(RuntimeError):
        fnp.zeros((2**40,))


@pytest.mark.parametrize("bad", [1.0, (1.0,), (0, 1.0)])
def test_a_float_axis_is_refused_after_the_equal_int_was_cached(bad) -> None:
    """Plans are cached per axis, and ``1.0 == 1`` with equal hashes: a float axis must not
    be served the plan of the int one (as it was when an earlier call used ``axis=1``)."""
    x = fnp.ones((2, 3))
    for reduce in (fnp.sum, fnp.max, fnp.mean):
        reduce(x, axis=1), reduce(x, axis=(0, 1))
        with pytest.raises(TypeError, match="axis must be an integer"):
            reduce(x, axis=bad)


def test_allocation_failure_inside_jit_names_the_function_and_shape() -> None:
    """Compiled code calls NumPy directly; its allocation failures are re-raised the same way."""
    outer = fungrad.jit(lambda x: fnp.outer(x, x) + 1)
    with pytest.raises(ResourceExhaustedError,
                       match=r"jit\(<lambda>\).*\(8388608, 8388608\).*float32"):
        outer(fnp.ones(2**23))


GOOD_SHAPES = {
    "numpy-integers": lambda m: m.np.zeros((np.int64(2), np.int32(3))).shape,
    "0-d-array": lambda m: m.np.ones(np.array(3)).shape,
    "array-shape": lambda m: m.np.zeros(np.array([2, 3])).shape,
    "list": lambda m: m.lax.full([2, 1], 0.0).shape,
    "random-numpy-int": lambda m: m.random.normal(m.key, (np.int64(2),)).shape,
    "sum-numpy-int-axis": lambda m: m.np.sum(m.x, axis=np.int64(1)).shape,
    "sum-list-axis": lambda m: m.np.sum(m.x, axis=[0, 1]).shape,
    "arange-negative-size": lambda m: m.np.arange(-5).shape,
    "reshape-minus-one": lambda m: m.np.reshape(m.x, (np.int64(-1),)).shape,
    "ShapeDtypeStruct-numpy-int": lambda m: m.ShapeDtypeStruct((np.int64(4),), np.float32).shape,
}


@pytest.mark.parametrize("name", GOOD_SHAPES)
def test_int_like_arguments_accepted(name: str) -> None:
    """Whatever ``operator.index`` accepts is an int, as in JAX."""
    assert GOOD_SHAPES[name](FG) == GOOD_SHAPES[name](JX)
