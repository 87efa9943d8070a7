"""``optax.microbatching``: evaluate a function on a large batch one microbatch at a time.

``microbatch(fun, argnums, microbatch_size)`` splits the batch arguments into microbatches
and runs ``fun`` on each in turn in a ``lax.fori_loop``, so the peak memory is that of one
microbatch; an ``Accumulator`` (or an ``AccumulationType``: sum, mean, running mean,
concatenation) says how the results combine. ``micro_vmap`` is ``vmap`` microbatched that
way, and ``micro_grad`` computes per-example gradients, transforms them (clipping,
moments) and accumulates them. Names, signatures and numerics follow optax's.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
from typing import Any, Callable, NamedTuple, Sequence, Union

import fungrad.numpy as jnp
from fungrad import lax
from fungrad import tree as _tree
from fungrad.transforms.api import eval_shape, value_and_grad, vmap

__all__ = ["Accumulator", "AccumulationType", "microbatch", "micro_grad", "micro_vmap",
           "reshape_batch_axis"]


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the results of a function on successive microbatches combine.

    For the results ``x_0, ..., x_{n-1}`` it is the program
    ``carry = init(shape_of(x_0)); carry = update(carry, x_i, i) for each i;
    return finalize(carry)``.

    Attributes:
        init: the initial carry, from the shape and dtype (a ``ShapeDtypeStruct``) of one
            microbatch's result.
        update: ``update(carry, value, index)``, the carry after the result ``value`` of the
            microbatch ``index``.
        finalize: the result, from the last carry.
        aggregate: the combination of per-microbatch values stacked on axis 0 (what
            ``micro_vmap`` reduces one vmapped microbatch with).
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in accumulations."""

    MEAN = enum.auto()
    """Average the microbatch outputs."""
    SUM = enum.auto()
    """Sum the microbatch outputs."""
    RUNNING_MEAN = enum.auto()
    """Average the microbatch outputs over ``num_real_microbatches``."""
    CONCAT = enum.auto()
    """Concatenate the microbatch outputs along axis 0."""


class IndividualOutputs(NamedTuple):
    """``micro_grad``'s auxiliary output, per example: the function's ``values``, the
    ``metrics`` of the gradients and the function's own ``aux``."""

    values: Any
    metrics: Any
    aux: Any


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Every leaf with its batch axis ``axis`` split into ``(num_microbatches,
    microbatch_size)`` at that place, in column-major order (microbatch ``i`` holds the
    examples ``i, i + num_microbatches, ...``).

    Args:
        tree: a tree of arrays, each with a batch axis at ``axis``.
        microbatch_size: the number of examples in a microbatch.
        axis: the batch axis.

    Returns:
        The tree of reshaped arrays.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import microbatching
        >>> microbatching.reshape_batch_axis(jnp.arange(6), 2)
        Array([[0, 3],
               [1, 4],
               [2, 5]], dtype=int32)
    """
    def reshape_leaf(x):
        return x.reshape(x.shape[:axis] + (-1, microbatch_size) + x.shape[axis + 1:], order="F")
    return _tree.map(reshape_leaf, tree)


# --------------------------------------------------------------------------- accumulators

def _with_floating_check(fn: Callable) -> Callable:
    """``fn``, which first checks that every leaf of its arguments has a floating dtype."""
    def checked(*args, **kwargs):
        dtypes = _tree.leaves(_tree.map(lambda x: x.dtype, (args, kwargs)))
        if not all(jnp.issubdtype(dtype, jnp.floating) for dtype in dtypes):
            raise ValueError("microbatch: the MEAN and RUNNING_MEAN accumulators need "
                             f"floating-point values, got dtypes {dtypes}.")
        return fn(*args, **kwargs)
    return checked


def _lift(accumulator: Accumulator) -> Accumulator:
    """An accumulator of arrays applied leaf by leaf to trees."""
    return Accumulator(
        lambda value: _tree.map(accumulator.init, value),
        lambda carry, value, i: _tree.map(lambda c, v: accumulator.update(c, v, i), carry, value),
        lambda carry: _tree.map(accumulator.finalize, carry),
        lambda values: _tree.map(accumulator.aggregate, values))


def _compose(accumulators: Any) -> Accumulator:
    """One accumulator from a tree of them, each applied to its subtree of the results."""
    def init(values):
        return _tree.map(lambda acc, v: acc.init(v), accumulators, values)

    def update(carry, values, index):
        return _tree.map(lambda acc, c, v: acc.update(c, v, index), accumulators, carry, values)

    def finalize(carry):
        return _tree.map(lambda acc, c: acc.finalize(c), accumulators, carry)

    def aggregate(values):
        return _tree.map(lambda acc, v: acc.aggregate(v), accumulators, values)
    return Accumulator(init, update, finalize, aggregate)


def _zeros(value: Any) -> Any:
    """Zeros of the shape and dtype of ``value`` (an array or a ``ShapeDtypeStruct``)."""
    return jnp.zeros(value.shape, value.dtype)


def _check_positive(num_microbatches: int) -> None:
    if num_microbatches <= 0:
        raise ValueError(f"microbatch: {num_microbatches=} must be positive.")


def _sum() -> Accumulator:
    return _lift(Accumulator(_zeros, lambda carry, value, _: carry + value,
                             lambda x: x, functools.partial(jnp.sum, axis=0)))


def _mean(num_microbatches: int) -> Accumulator:
    _check_positive(num_microbatches)
    return _lift(Accumulator(_with_floating_check(_zeros),
                             lambda carry, value, _: carry + value,
                             lambda carry: carry / num_microbatches,
                             functools.partial(jnp.mean, axis=0)))


def _running_mean_update(carry: Any, value: Any, index: Any) -> Any:
    p = index / (index + 1)
    return carry * p + value * (1 - p)


def _running_mean() -> Accumulator:
    return _lift(Accumulator(_with_floating_check(_zeros), _running_mean_update,
                             lambda x: x, functools.partial(jnp.mean, axis=0)))


def _concat(num_microbatches: int) -> Accumulator:
    _check_positive(num_microbatches)
    return _lift(Accumulator(
        lambda value: jnp.broadcast_to(_zeros(value), (num_microbatches,) + value.shape),
        lambda carry, value, index: carry.at[index].set(value),
        lambda carry: carry.reshape(-1, *carry.shape[2:], order="F"),
        lambda x: x))


def _canonicalize(accumulator: Any, num_microbatches: int) -> Accumulator:
    """One accumulator from a tree of ``Accumulator``s and ``AccumulationType``s."""
    def one(acc):
        if isinstance(acc, Accumulator):
            return acc
        if acc is AccumulationType.MEAN:
            return _mean(num_microbatches)
        if acc is AccumulationType.SUM:
            return _sum()
        if acc is AccumulationType.RUNNING_MEAN:
            return _running_mean()
        if acc is AccumulationType.CONCAT:
            return _concat(num_microbatches)
        raise ValueError(f"microbatch: unknown `accumulator` {acc!r}; use an Accumulator or "
                         "an AccumulationType.")
    return _compose(_tree.map(one, accumulator))


# --------------------------------------------------------------------------- microbatch

def _batch_args(argnums: Sequence[int], argnames: Sequence[str], args: tuple,
                kwargs: dict) -> list[Any]:
    return [args[i] for i in argnums] + [kwargs[name] for name in argnames]


def _replace_batch_args(argnums: Sequence[int], argnames: Sequence[str], args: tuple,
                        kwargs: dict, new: Sequence[Any]) -> tuple[list, dict]:
    """``args`` and ``kwargs`` with the batch arguments replaced by ``new``, in order."""
    args, kwargs = list(args), dict(kwargs)
    for i, value in zip(argnums, new):
        args[i] = value
    for name, value in zip(argnames, new[len(argnums):]):
        kwargs[name] = value
    return args, kwargs


def _batch_size(batch_args: Sequence[Any], in_axes: Sequence[int],
                microbatch_size: int) -> int:
    sizes = [x.shape[ax] for ax, arg in zip(in_axes, batch_args) for x in _tree.leaves(arg)]
    if len(set(sizes)) > 1:
        raise ValueError(f"microbatch: the batch arguments' batch axes must have one size, "
                         f"found {sizes}.")
    if sizes[0] % microbatch_size != 0:
        raise ValueError(f"microbatch: the batch size {sizes[0]} must be divisible by "
                         f"{microbatch_size=}.")
    return sizes[0]


def microbatch(fun: Callable, argnums: Union[int, Sequence[int]], microbatch_size: Union[int, None],
               accumulator: Any = AccumulationType.SUM, *,
               argnames: Union[str, Sequence[str]] = (), in_axes: Union[int, Sequence[int]] = 0,
               num_real_microbatches: Any = None) -> Callable:
    """``fun`` evaluated one microbatch after another (in a ``lax.fori_loop``) and the
    results combined by ``accumulator``: the memory of one microbatch, for batches whose
    whole evaluation does not fit.

    Args:
        fun: any function.
        argnums: the positions of the arguments with a batch axis.
        microbatch_size: the number of examples in a microbatch; it must divide the batch
            size. None returns ``fun`` itself.
        accumulator: how the microbatches' results combine: an ``Accumulator``, an
            ``AccumulationType``, or a tree of them that is a prefix of ``fun``'s output.
        argnames: the names of the keyword arguments with a batch axis.
        in_axes: the batch axis of each argument of ``argnums`` then ``argnames`` (one int:
            the same for all).
        num_real_microbatches: the number of microbatches actually run (possibly traced), to
            handle batches padded to one size without recompiling.

    Returns:
        The microbatched function, taking ``fun``'s arguments.

    Raises:
        ValueError: when called, if the batch axes differ in size or the batch size is not
            a multiple of ``microbatch_size``.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> fun = lambda x: (x + 1, jnp.sum(3 * x))
        >>> strategy = (optim.microbatching.AccumulationType.CONCAT,
        ...             optim.microbatching.AccumulationType.SUM)
        >>> optim.microbatch(fun, argnums=0, microbatch_size=2,
        ...                  accumulator=strategy)(jnp.array([1, 2, 3, 4]))
        (Array([2, 3, 4, 5], dtype=int32), Array(30, dtype=int32))
    """
    if microbatch_size is None:
        return fun
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    argnames = (argnames,) if isinstance(argnames, str) else tuple(argnames)
    if isinstance(in_axes, int):
        in_axes = (in_axes,) * (len(argnums) + len(argnames))

    def microbatched_fun(*args, **kwargs):
        batch_args = _batch_args(argnums, argnames, args, kwargs)
        num_microbatches = _batch_size(batch_args, in_axes, microbatch_size) // microbatch_size
        reshaped = [reshape_batch_axis(arg, microbatch_size, ax)
                    for arg, ax in zip(batch_args, in_axes)]
        accumulator_ = _canonicalize(accumulator, num_microbatches)

        def f(index):
            taken = [_tree.map(functools.partial(jnp.take, indices=index, axis=ax), arg)
                     for arg, ax in zip(reshaped, in_axes)]
            new_args, new_kwargs = _replace_batch_args(argnums, argnames, args, kwargs, taken)
            return fun(*new_args, **new_kwargs)

        def body(index, carry):
            return accumulator_.update(carry, f(index), index)

        bound = num_microbatches if num_real_microbatches is None else num_real_microbatches
        carry = lax.fori_loop(0, bound, body, accumulator_.init(eval_shape(f, 0)))
        return accumulator_.finalize(carry)
    return microbatched_fun


def micro_vmap(fun: Callable, in_axes: Union[int, Sequence[Any]] = 0, out_axes: Any = 0, *,
               microbatch_size: Union[int, None] = None, vmap_fn: Callable = vmap,
               accumulator: Any = AccumulationType.CONCAT,
               num_real_microbatches: Any = None) -> Callable:
    """``vmap(fun, in_axes)`` run one microbatch at a time (``microbatch``), so it maps over
    batches too large to map at once; ``accumulator`` may reduce the mapped axis (MEAN,
    SUM) instead of keeping it (CONCAT, as ``vmap``).

    Args:
        fun: the function to map.
        in_axes: the mapped axis of each positional argument (None: not mapped); keyword
            arguments are mapped on axis 0.
        out_axes: must be 0.
        microbatch_size: the number of examples in a microbatch (None: all at once).
        vmap_fn: the ``vmap`` used on each microbatch, of ``vmap``'s signature.
        accumulator: what to do with the mapped outputs, as ``microbatch``'s.
        num_real_microbatches: as ``microbatch``'s.

    Returns:
        The mapped function.

    Raises:
        NotImplementedError: if ``out_axes`` is not 0.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import microbatching
        >>> microbatching.micro_vmap(lambda x: x ** 2, microbatch_size=2)(jnp.arange(6))
        Array([ 0,  1,  4,  9, 16, 25], dtype=int32)
    """
    if out_axes != 0:
        raise NotImplementedError("micro_vmap: `out_axes` other than 0 is not supported.")
    in_axes = (in_axes,) if isinstance(in_axes, int) else tuple(in_axes)

    # vmap maps every keyword argument on axis 0: pass them all as one keyword argument
    def vmap_reduce(*args, kwargs):
        output = vmap_fn(fun, in_axes, out_axes)(*args, **kwargs)
        # only ``aggregate`` is used, which does not depend on the number of microbatches
        return _canonicalize(accumulator, _tree.leaves(output)[0].shape[0]).aggregate(output)

    micro_fun = microbatch(vmap_reduce,
                           argnums=tuple(i for i, ax in enumerate(in_axes) if ax is not None),
                           microbatch_size=microbatch_size, accumulator=accumulator,
                           argnames="kwargs",
                           in_axes=tuple(ax for ax in in_axes if ax is not None) + (0,),
                           num_real_microbatches=num_real_microbatches)
    return lambda *args, **kwargs: micro_fun(*args, kwargs=kwargs)


def _with_extra_batch_axis(fun: Callable, batch_argnums: Sequence[int]) -> Callable:
    """``fun`` with a size-one axis inserted at 1 in every leaf of the batch arguments (one
    example seen as a batch of one)."""
    def wrapped(*args, **kwargs):
        args = list(args)
        for i in batch_argnums:
            args[i] = _tree.map(lambda x: jnp.expand_dims(x, axis=1), args[i])
        return fun(*args, **kwargs)
    return wrapped


def micro_grad(fun: Callable, has_aux: bool = False, argnums: Union[int, Sequence[int]] = 0, *,
               batch_argnums: Union[int, Sequence[int]] = 1, keep_batch_dim: bool = True,
               microbatch_size: Union[int, None] = None,
               accumulator: Any = AccumulationType.SUM,
               transform_fn: Callable[[Any], Any] = lambda x: x,
               metrics_fn: Callable[[Any], Any] = lambda x: None,
               num_real_microbatches: Any = None) -> Callable:
    """Per-example gradients of ``fun``, transformed by ``transform_fn`` and accumulated
    (summed by default), microbatched: for clipping each example's gradient, gradient
    moments, or per-example gradient metrics.

    Unlike ``value_and_grad``, the returned function gives ``(gradients, aux)``, ``aux`` an
    ``IndividualOutputs`` of per-example ``values``, ``metrics`` (``metrics_fn`` of each
    example's gradient) and ``fun``'s own ``aux``.

    Args:
        fun: the function differentiated, ``fun(params, batch, ...)`` by default.
        has_aux: whether ``fun`` returns ``(value, aux)``.
        argnums: the arguments differentiated.
        batch_argnums: the arguments with a batch axis (0).
        keep_batch_dim: whether ``fun`` expects a batch axis (it then sees batches of one).
        microbatch_size: as ``microbatch``'s.
        accumulator: how the transformed gradients combine over the batch.
        transform_fn: applied to each example's gradient before accumulation.
        metrics_fn: applied to each example's gradient; returned per example.
        num_real_microbatches: as ``microbatch``'s.

    Returns:
        The function of ``fun``'s arguments giving ``(gradients, aux)``.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import microbatching
        >>> loss = lambda w, x, y: 0.5 * jnp.mean((x @ w - y) ** 2)
        >>> grads, aux = microbatching.micro_grad(loss, batch_argnums=(1, 2))(
        ...     jnp.zeros(1), jnp.ones((4, 1)), jnp.array([0.0, 2.0, 4.0, 6.0]))
        >>> grads
        Array([-12.], dtype=float32)
        >>> aux.values
        Array([ 0.,  2.,  8., 18.], dtype=float32)
    """
    batch_argnums = (batch_argnums,) if isinstance(batch_argnums, int) else tuple(batch_argnums)
    with_aux = fun if has_aux else lambda *args, **kwargs: (fun(*args, **kwargs), None)
    value_and_grad_fn = value_and_grad(with_aux, argnums, has_aux=True)

    def grad_fn(*args, **kwargs):
        (value, aux), grad = value_and_grad_fn(*args, **kwargs)
        return transform_fn(grad), IndividualOutputs(value, metrics_fn(grad), aux)

    in_axes = [None] * (max(batch_argnums) + 1)
    for i in batch_argnums:
        in_axes[i] = 0
    micro_fun = micro_vmap(grad_fn, in_axes=in_axes,
                           accumulator=(accumulator, AccumulationType.CONCAT),
                           microbatch_size=microbatch_size,
                           num_real_microbatches=num_real_microbatches)
    return _with_extra_batch_axis(micro_fun, batch_argnums) if keep_batch_dim else micro_fun
