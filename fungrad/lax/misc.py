"""Precision and ordering primitives, and stacking helpers.

* ``reduce_precision``: round floats to a narrower format (fewer exponent and
  mantissa bits) and back, bit for bit as XLA's ``ReducePrecision``: the
  mantissa is rounded to nearest, ties to even; values beyond the narrow
  format's range become inf, those below its smallest normal become (signed)
  zero; NaNs stay NaN.
* ``optimization_barrier``: the identity, which the compiler's passes treat as
  opaque (CSE never merges two barriers nor folds one over constants), so
  values recomputed behind it are not merged with the originals.
* ``create_token``, ``after_all``: XLA's tokens, which order side effects. fungrad runs
  operations in program order, so a token carries nothing: a ``Token`` wraps an empty
  array, its one pytree child, and so passes through ``jit``, ``vmap`` and ``grad``.
* ``stack``, ``unstack``, ``tile`` (``jax.lax``'s): composites of
  ``broadcast_in_dim``/``concatenate``/``slice``/``reshape``, so they get every
  transformation from those primitives' rules.
"""
from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from fungrad import backends, tree as tree_util
from fungrad._core import dtypes
from fungrad._core.core import Primitive, ShapedArray, get_aval
from fungrad._core.lowering import def_compiler_traits
from fungrad._core.util import canonicalize_axis
from fungrad.interpreters import ad, batching
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import FLOAT, as_operand, elementwise_prim, static_ints
from fungrad.lax.shapes import broadcast_in_dim, full, reshape
from fungrad.lax.slicing import concatenate, slice_in_dim

__all__ = [
    "after_all",
    "after_all_p",
    "broadcast_like",
    "composite",
    "create_token",
    "create_token_p",
    "dtype",
    "empty",
    "platform_dependent",
    "shape_as_value",
    "with_sharding_constraint",
    "optimization_barrier",
    "optimization_barrier_p",
    "reduce_precision",
    "reduce_precision_p",
    "stack",
    "tile",
    "unstack",
]


# --------------------------------------------------------------------------- reduce_precision

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _reduce_precision_impl(xp: Any, x: Any, *, exponent_bits: int, mantissa_bits: int) -> Any:
    dtype = x.dtype
    info = dtypes.finfo(dtype)
    n_mant, n_exp = int(info.nmant), int(info.nexp)
    uint = np.dtype(_UINT[dtype.itemsize])
    one = uint.type(1)
    bits = xp.asarray(x).reshape(-1).view(uint)
    out = bits.copy()
    if mantissa_bits < n_mant:
        shift = uint.type(n_mant - mantissa_bits)
        last_bit = one << shift
        bias = (last_bit >> one) - one + ((out & last_bit) >> shift)
        out = (out + bias) & ~(last_bit - one)
    if exponent_bits < n_exp:
        sign = out & (one << uint.type(8 * dtype.itemsize - 1))
        exp_mask = uint.type(((1 << n_exp) - 1) << n_mant)
        exp_bias = (1 << (n_exp - 1)) - 1
        narrow_bias = (1 << (exponent_bits - 1)) - 1
        exponent = out & exp_mask
        out = xp.where(exponent > uint.type((exp_bias + narrow_bias) << n_mant), sign | exp_mask,
                       xp.where(exponent <= uint.type((exp_bias - narrow_bias) << n_mant), sign,
                                out))
    out = xp.where(xp.isnan(xp.asarray(x).reshape(-1)), bits, out)  # a NaN keeps its bits
    return out.view(dtype).reshape(x.shape)


def reduce_precision(operand: Any, exponent_bits: int, mantissa_bits: int) -> Any:
    """Round ``operand`` to a float format with the given numbers of exponent and
    mantissa bits and back (``jax.lax.reduce_precision``).

    >>> import fungrad.numpy as jnp
    >>> from fungrad import lax
    >>> lax.reduce_precision(jnp.array([1.0039, 3e38]), exponent_bits=5, mantissa_bits=10)
    Array([1.0039062,       inf], dtype=float32)
    """
    exponent_bits = operator.index(exponent_bits)
    mantissa_bits = operator.index(mantissa_bits)
    if exponent_bits < 1:
        raise ValueError(f"reduce_precision: exponent_bits must be positive; got {exponent_bits}")
    if mantissa_bits < 0:
        raise ValueError(f"reduce_precision: mantissa_bits must be non-negative; got "
                         f"{mantissa_bits}")
    return reduce_precision_p.bind(as_operand(operand), exponent_bits=exponent_bits,
                                   mantissa_bits=mantissa_bits)


reduce_precision_p = elementwise_prim("reduce_precision", _reduce_precision_impl, FLOAT)
# As in JAX, treated as linear: tangents and cotangents are rounded the same way.
ad.deflinear(reduce_precision_p, lambda ct, x, **params: [reduce_precision_p.bind(ct, **params)])
batching.defvectorized(reduce_precision_p)


# --------------------------------------------------------------------------- optimization_barrier

def optimization_barrier(operand: Any, /) -> Any:
    """The pytree ``operand`` unchanged, behind a barrier the compiler does not look
    through (``jax.lax.optimization_barrier``).

    >>> import fungrad
    >>> from fungrad import lax
    >>> f = lambda x: lax.optimization_barrier(lax.sin(x)) + lax.sin(x)
    >>> fungrad.jit(f)(0.0)
    Array(0., dtype=float32, weak_type=True)
    """
    leaves, treedef = tree_util.flatten(operand)
    outs = optimization_barrier_p.bind(*[as_operand(x) for x in leaves])
    return tree_util.unflatten(treedef, outs)


def _barrier_transpose(cts, *args):
    return optimization_barrier_p.bind(*[ad.instantiate(ct) for ct in cts])


def _barrier_jvp(primals, tangents):
    return (optimization_barrier_p.bind(*primals),
            optimization_barrier_p.bind(*[ad.instantiate(t) for t in tangents]))


optimization_barrier_p = Primitive("optimization_barrier", multiple_results=True)
optimization_barrier_p.def_impl(lambda xp, *args: list(args))
optimization_barrier_p.def_abstract_eval(lambda *avals: list(avals))
optimization_barrier_p.weak_type_rule = lambda weak_flags: list(weak_flags)
ad.def_jvp(optimization_barrier_p, _barrier_jvp)
ad.def_transpose(optimization_barrier_p, _barrier_transpose)
batching.def_batch(optimization_barrier_p,
                   lambda axis_size, vals, dims: (optimization_barrier_p.bind(*vals), list(dims)))
def_compiler_traits(optimization_barrier_p, opaque=True)


# --------------------------------------------------------------------------- tokens

class Token:
    """A token (``create_token``, ``after_all``), which XLA uses to order side effects.

    fungrad runs operations in program order, so a token carries nothing: it holds an empty
    boolean array as its one pytree child, which is how it enters and leaves ``jit`` (and
    ``vmap``, ``grad``, ``scan``).
    """
    __slots__ = ("_buf",)

    def __init__(self, buf: Any) -> None:
        self._buf = buf

    def __repr__(self) -> str:
        return "Token()"


tree_util.register_pytree_node(Token, lambda t: ([t._buf], None), lambda _, bufs: Token(*bufs))

_TOKEN_AVAL = ShapedArray((0,), np.dtype(np.bool_))


def _token_buffer(xp: Any, *tokens: Any) -> Any:
    return xp.zeros((0,), np.bool_)


def _after_all_abstract(*tokens: ShapedArray) -> ShapedArray:
    if any((t.shape, t.dtype) != (_TOKEN_AVAL.shape, _TOKEN_AVAL.dtype) for t in tokens):
        raise TypeError("Arguments to after_all must be tokens")
    return _TOKEN_AVAL


create_token_p = Primitive("create_token")
create_token_p.def_impl(_token_buffer)
create_token_p.def_abstract_eval(lambda: _TOKEN_AVAL)
create_token_p.weak_type_rule = lambda weak_flags: False
ad.def_nondiff(create_token_p)
batching.def_no_batch(create_token_p, "it takes no operands")

after_all_p = Primitive("after_all")
after_all_p.def_impl(_token_buffer)
after_all_p.def_abstract_eval(_after_all_abstract)
after_all_p.weak_type_rule = lambda weak_flags: False
ad.def_nondiff(after_all_p)
# a token is the same for every batch member: the batched form is one token
batching.def_batch(after_all_p, lambda axis_size, vals, dims: (after_all_p.bind(), None))


def create_token(_: Any = None) -> Token:
    """A new token (``jax.lax.create_token``); the argument is ignored, as in JAX.

    >>> from fungrad import lax
    >>> lax.after_all(lax.create_token(), lax.create_token())
    Token()
    """
    return Token(create_token_p.bind())


def after_all(*operands: Token) -> Token:
    """A token that comes after all of ``operands`` (``jax.lax.after_all``).

    Raises:
      TypeError: an operand is not a token.
    """
    if not all(isinstance(t, Token) for t in operands):
        raise TypeError("Arguments to after_all must be tokens")
    return Token(after_all_p.bind(*(t._buf for t in operands)))


# --------------------------------------------------------------------------- stack, unstack, tile

def stack(operands: Sequence[Any], axis: int = 0) -> Any:
    """Join arrays of one shape along a new axis (``jax.lax.stack``).

    >>> from fungrad import lax
    >>> import fungrad.numpy as jnp
    >>> lax.stack([jnp.array([1, 2]), jnp.array([3, 4])], axis=1)
    Array([[1, 3],
           [2, 4]], dtype=int32)
    """
    arrays = [as_operand(x) for x in operands]
    if not arrays:
        raise ValueError("stack: operands must be a non-empty sequence of arrays")
    shape = get_aval(arrays[0]).shape
    if any(get_aval(a).shape != shape for a in arrays):
        raise TypeError("stack: all operands must have the same shape, got "
                        f"{[get_aval(a).shape for a in arrays]}")
    axis = canonicalize_axis(axis, len(shape) + 1, "stack")
    new_shape = shape[:axis] + (1,) + shape[axis:]
    dims = tuple(d for d in range(len(new_shape)) if d != axis)
    return concatenate([broadcast_in_dim(a, new_shape, dims) for a in arrays], axis)


def unstack(x: Any, axis: int = 0) -> tuple:
    """Split ``x`` along ``axis`` into a tuple of arrays without that axis
    (``jax.lax.unstack``).

    >>> from fungrad import lax
    >>> import fungrad.numpy as jnp
    >>> lax.unstack(jnp.array([[1, 2], [3, 4]]), axis=1)
    (Array([1, 3], dtype=int32), Array([2, 4], dtype=int32))
    """
    x = as_operand(x)
    shape = get_aval(x).shape
    axis = canonicalize_axis(axis, len(shape), "unstack")
    rest = shape[:axis] + shape[axis + 1:]
    return tuple(reshape(slice_in_dim(x, i, i + 1, axis=axis), rest) for i in range(shape[axis]))


def tile(operand: Any, reps: Sequence[int]) -> Any:
    """Repeat ``operand`` ``reps[i]`` times along each axis ``i`` (``jax.lax.tile``).

    >>> from fungrad import lax
    >>> import fungrad.numpy as jnp
    >>> lax.tile(jnp.array([[1], [2]]), (1, 3))
    Array([[1, 1, 1],
           [2, 2, 2]], dtype=int32)
    """
    x = as_operand(operand)
    shape = get_aval(x).shape
    reps = static_ints(reps, "tile", "reps")
    if len(reps) != len(shape):
        raise ValueError(f"tile: len(reps) must equal operand.ndim; got reps={reps} for an "
                         f"operand of shape {shape}")
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative; got {reps}")
    # Each axis d of size n becomes (reps[d], n), then the pair is merged.
    wide = tuple(s for r, n in zip(reps, shape) for s in (r, n))
    out = broadcast_in_dim(x, wide, tuple(range(1, 2 * len(shape), 2)))
    return reshape(out, tuple(r * n for r, n in zip(reps, shape)))


# --------------------------------------------------------------------------- staging helpers

def dtype(x: Any) -> np.dtype:
    """The dtype ``x`` has as a fungrad array: Python scalars and 64-bit values canonicalised
    (``float`` is float32 unless x64 is enabled), dtype names and classes resolved."""
    if isinstance(x, (str, type, np.dtype)):
        return dtypes.canonicalize_dtype(x)
    return dtypes.result_type(x)


def empty(shape: Sequence[int], dtype: Any, *, out_sharding: Any = None) -> Any:
    """An array of ``shape`` and ``dtype`` whose values are not meant to be read (zeros);
    ``out_sharding`` puts it on a device (see ``fungrad.lax._placement``)."""
    out = full(shape, 0, dtype)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "lax.empty")


_PLATFORMS = ("cpu", "gpu", "cuda", "rocm", "tpu")


def platform_dependent(*args: Any, default: Callable[..., Any] | None = None,
                       **per_platform: Callable[..., Any]) -> Any:
    """``per_platform[p](*args)`` for the platform ``p`` that runs the computation
    (``"cpu"``, or ``"cuda"``/``"gpu"`` on the GPU backend), else ``default(*args)``."""
    unknown = sorted(set(per_platform) - set(_PLATFORMS))
    if unknown:
        raise ValueError(f"platform_dependent: unknown platforms {unknown}; use {_PLATFORMS}")
    platform = backends.default_backend()
    names = ("gpu", "cuda") if platform == "gpu" else (platform,)
    branch = next((per_platform[n] for n in names if n in per_platform), default)
    if branch is None:
        raise NotImplementedError(f"platform_dependent: no branch for platform {platform!r} "
                                  f"and no default")
    return branch(*args)


def composite(decomposition: Callable[..., Any], name: str,
              version: int = 0) -> Callable[..., Any]:
    """``decomposition`` marked as one named operation (XLA keeps such a composite whole for
    backends that implement it). Here it runs as its decomposition, which also makes it
    differentiable where JAX's composite has no JVP."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"composite: name must be a non-empty string, got {name!r}")

    @functools.wraps(decomposition)
    def call(*args: Any, **kwargs: Any) -> Any:
        return decomposition(*args, **kwargs)
    return call


def with_sharding_constraint(x: Any, shardings: Any) -> Any:
    """``x`` unchanged: one process computes on one device here, so there is no layout
    across devices to constrain (``jax.lax.with_sharding_constraint`` code runs as is)."""
    return x


def broadcast_like(arr: Any, like_arr: Any) -> Any:
    """``arr`` broadcast (NumPy's rules, leading axes added) to the shape of ``like_arr``."""
    arr = as_operand(arr)
    shape, target = get_aval(arr).shape, get_aval(as_operand(like_arr)).shape
    lead = len(target) - len(shape)
    if lead < 0 or any(n not in (1, t) for n, t in zip(shape, target[lead:])):
        raise ValueError(f"broadcast_like: cannot broadcast shape {shape} to {target}")
    squeezed = [d for d, n in enumerate(shape) if n == 1 and target[lead + d] != 1]
    kept = reshape(arr, tuple(n for d, n in enumerate(shape) if d not in squeezed))
    dims = tuple(lead + d for d in range(len(shape)) if d not in squeezed)
    return broadcast_in_dim(kept, target, dims)


def shape_as_value(shape: Sequence[int]) -> Any:
    """A shape as an int32 array (``jnp.array(shape)``; shapes are always static here)."""
    return as_operand(np.asarray(tuple(operator.index(n) for n in shape), np.int32))
