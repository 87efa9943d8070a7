"""``jnp.ufunc`` and ``jnp.frompyfunc``: NumPy's universal-function objects, as in JAX.

A ``ufunc`` wraps an elementwise function and adds NumPy's methods ``reduce``,
``accumulate``, ``at``, ``reduceat`` and ``outer``. Each method has a generic
implementation that only calls the function (sequential loops: ``lax.fori_loop`` /
``lax.scan``), so it works for any function that ``frompyfunc`` wraps; the ufuncs that
``jax.numpy`` exposes as objects (``add``, ``multiply``, ``maximum``, ``logical_and``, ...)
plug in the fast paths fungrad already has (``sum``, ``prod``, ``cumsum``, ``x.at[]``, ...).

This module comes last in ``fungrad.numpy``: the public names ``fungrad.numpy.add`` etc.
become these objects, while fungrad's own code (and ``Array``'s operators) keeps calling
the plain functions of ``_ufuncs``/``_ufuncs_math``. Calling a ufunc object forwards to
its plain function unchanged.
"""
from __future__ import annotations

import inspect
import operator
from typing import Any, Callable

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad.numpy import _reductions, _ufuncs, _ufuncs_math
from fungrad.numpy._functional import vectorize
from fungrad.numpy._indexing import _to_tuple, take
from fungrad.numpy._joining import concatenate
from fungrad.numpy._logsumexp import logsumexp
from fungrad.numpy._misc import astype
from fungrad.numpy._shape import moveaxis
from fungrad.numpy._util import (aval, broadcast_to, canonicalize_axes, canonicalize_axis,
                                 check_arraylike, check_user_dtype, ensure_arraylike,
                                 where as _where)
from fungrad.transforms.api import eval_shape

_AT_INPLACE_MESSAGE = (
    "fungrad arrays are immutable, so {name}.at() cannot update its argument in place as "
    "numpy.ufunc.at() does. Pass inplace=False and use the result, e.g.\n"
    ">>> arr = jnp.{name}.at(arr, indices, values, inplace=False)")


def _one(x: Any) -> Any:
    """A 0-d ``1`` of ``x``'s dtype and weak type (JAX's ``lax._one``): the probe that finds
    a function's result dtype without touching ``x``'s values."""
    a = aval(x)
    return lax.convert_element_type(1, a.dtype, a.weak_type)


class ufunc:
    """A universal function: an elementwise function with NumPy's ufunc methods
    (``jax.numpy.ufunc``).

    Calling it applies the function elementwise with broadcasting. The methods apply it in
    the other ways NumPy defines for binary functions: :meth:`reduce` (``jnp.add.reduce``
    is ``jnp.sum``), :meth:`accumulate` (``jnp.add.accumulate`` is ``jnp.cumsum``),
    :meth:`at` (``jnp.add.at(x, i, v, inplace=False)`` is ``x.at[i].add(v)``),
    :meth:`reduceat` (reductions over segments) and :meth:`outer` (all pairs).

    ``fungrad.numpy`` exposes the same functions as objects of this class as ``jax.numpy``
    does (``add``, ``subtract``, ``multiply``, ``maximum``, ``minimum``, ``negative``,
    ``logaddexp``, ``logaddexp2``, and the ``logical_*``/``bitwise_*`` and/or/xor);
    :func:`frompyfunc` makes one from any function of scalars. Objects are hashable and
    compare by their function, so they can be static arguments of ``jit``.

    Args:
        func: the elementwise function, of ``nin`` arrays (each may be a 0-d array).
        nin: the number of inputs of ``func``.
        nout: the number of outputs of ``func``.
        name: the ufunc's name (default ``func.__name__``).
        nargs: NumPy's ``nargs`` (default ``nin``).
        identity: the identity of a binary ufunc (``0`` for ``add``), or None: reductions
            of empty arrays and masked reductions start from it.
        call, reduce, accumulate, at, reduceat: faster implementations of the call and
            of the methods (default: generic ones built on ``func``).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> x = jnp.array([1, 2, 3, 4])
        >>> jnp.add.reduce(x), jnp.add.accumulate(x)
        (Array(10, dtype=int32), Array([ 1,  3,  6, 10], dtype=int32))
        >>> jnp.multiply.outer(x[:2], x)
        Array([[1, 2, 3, 4],
               [2, 4, 6, 8]], dtype=int32)
    """

    def __init__(self, func: Callable[..., Any], /, nin: int, nout: int, *,
                 name: str | None = None, nargs: int | None = None, identity: Any = None,
                 call: Callable[..., Any] | None = None,
                 reduce: Callable[..., Any] | None = None,
                 accumulate: Callable[..., Any] | None = None,
                 at: Callable[..., Any] | None = None,
                 reduceat: Callable[..., Any] | None = None) -> None:
        if not callable(func):
            raise TypeError(f"ufunc: func must be callable, got {type(func).__name__}")
        self.__name__ = name or getattr(func, "__name__", type(func).__name__)
        self.__doc__ = getattr(func, "__doc__", None)
        self._func = func
        self._nin = _positive_int(nin, "nin", self.__name__)
        self._nout = _positive_int(nout, "nout", self.__name__)
        self._nargs = self._nin if nargs is None else operator.index(nargs)
        self._identity = identity
        self._given = (call, reduce, accumulate, at, reduceat)  # what pickling rebuilds from
        self._call = call if call is not None else _vectorized_call(func, self.__name__,
                                                                    self._nin)
        self._reduce, self._accumulate, self._at, self._reduceat = (reduce, accumulate, at,
                                                                     reduceat)

    nin = property(lambda self: self._nin, doc="The number of inputs.")
    nout = property(lambda self: self._nout, doc="The number of outputs.")
    nargs = property(lambda self: self._nargs, doc="The number of arguments (NumPy's "
                     "``nargs``; ``nin`` unless given).")
    identity = property(lambda self: self._identity, doc="The identity of the operation "
                        "(``0`` for ``add``), or None when it has none.")

    def _key(self) -> tuple:
        # the call/method implementations are details, not part of the ufunc's identity
        return (self._func, self.__name__, self._identity, self._nin, self._nout, self._nargs)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ufunc) and self._key() == other._key()

    def __repr__(self) -> str:
        return f"<jnp.ufunc '{self.__name__}'>"

    def __reduce__(self) -> Any:
        # fungrad.numpy's own ufuncs pickle (and deep-copy) as themselves; others are rebuilt
        # from their constructor's arguments (the vectorized call is made anew)
        if _BUILTINS.get(self.__name__) is self:
            return (_builtin, (self.__name__,))
        return (_rebuild, (type(self), self._func, self._nin, self._nout, self.__name__,
                           self._nargs, self._identity, self._given))

    def __call__(self, *args: Any, out: None = None, where: None = None) -> Any:
        """Apply the function elementwise to the broadcast ``args``.

        ``out`` and ``where`` exist for NumPy's signature: fungrad arrays are immutable,
        so neither is supported (pass None).
        """
        if out is None and where is None:
            return self._call(*args)
        raise _ufuncs.ufunc_keyword_error(self.__name__, out)

    # ------------------------------------------------------------------ checks

    def _require_binary(self, method: str) -> None:
        if self._nin != 2:
            raise ValueError(f"{self.__name__}.{method}: {method} only supported for binary "
                             f"ufuncs; {self.__name__} has nin={self._nin}")
        if self._nout != 1:
            raise ValueError(f"{self.__name__}.{method}: {method} only supported for "
                             f"functions returning a single value; {self.__name__} has "
                             f"nout={self._nout}")

    def _reject_out(self, method: str, out: Any) -> None:
        if out is not None:
            raise NotImplementedError(f"out argument of {self.__name__}.{method}() is not "
                                      "supported: fungrad arrays are immutable; use the "
                                      "returned array")

    def _result_dtype(self, *args: Any) -> np.dtype:
        """The dtype ``func`` returns for ``args``' dtypes (and weak types)."""
        return np.dtype(eval_shape(self._func, *(_one(a) for a in args)).dtype)

    # ------------------------------------------------------------------ reduce

    def reduce(self, a: Any, axis: int | tuple[int, ...] | None = 0, dtype: Any = None,
               out: None = None, keepdims: bool = False, initial: Any = None,
               where: Any = None) -> Any:
        """Reduce ``a`` along ``axis`` by applying the binary function repeatedly
        (``numpy.ufunc.reduce``): ``jnp.add.reduce`` is ``jnp.sum``,
        ``jnp.logical_and.reduce`` is ``jnp.all``.

        Args:
            a: the array to reduce.
            axis: the axis to reduce (default 0, as NumPy), or None for all axes. A tuple
                of axes is supported where the reduction is reorderable (the fast paths of
                ``add``, ``multiply``, ``maximum``, ... and ``logaddexp``).
            dtype: the dtype to compute and return in (``logaddexp``/``logaddexp2``
                check it but, as in JAX, return ``a``'s floating-point type).
            out: unsupported (fungrad arrays are immutable); must be None.
            keepdims: keep the reduced axes with size 1.
            initial: the value the reduction starts from (default: the identity, or the
                first element when there is none).
            where: a boolean mask, broadcast to ``a``, of the elements to include; a ufunc
                without an identity needs ``initial`` with it.

        Returns:
            The reduced array.
        """
        fname = f"{self.__name__}.reduce"
        check_arraylike(fname, a)
        self._require_binary("reduce")
        self._reject_out("reduce", out)
        if initial is not None:
            check_arraylike(fname, initial)
        if where is not None:
            check_arraylike(fname, where)
            if self._identity is None and initial is None:
                raise ValueError(f"reduction operation {self.__name__!r} does not have an "
                                 "identity, so to use a where mask one has to specify "
                                 "'initial'.")
            if aval(where).dtype != np.bool_:
                raise ValueError(f"{fname}: where argument must have dtype=bool; got "
                                 f"dtype={aval(where).dtype}")
        impl = self._reduce or self._reduce_via_loop
        return impl(a, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial, where=where)

    def _reduce_via_loop(self, a: Any, *, axis: Any, dtype: Any, keepdims: bool,
                         initial: Any, where: Any) -> Any:
        """``reduce`` for any binary function: a sequential loop along the axis (the
        function need not be associative: ``subtract.reduce`` is ``a0 - a1 - a2 ...``)."""
        fname = f"{self.__name__}.reduce"
        arr = ensure_arraylike(fname, a)
        if initial is None:
            initial = self._identity
        dtype = (self._result_dtype(arr, arr) if dtype is None
                 else check_user_dtype(dtype, fname))
        shape = aval(arr).shape
        if where is not None:
            try:
                where = broadcast_to(where, shape)
            except ValueError:
                raise ValueError(f"{fname}: where of shape {aval(where).shape} cannot be "
                                 f"broadcast to the array's shape {shape}") from None
        if isinstance(axis, tuple):
            canonicalize_axes(axis, len(shape), fname)
            raise NotImplementedError(f"{fname}: a tuple of axes is not supported for "
                                      f"{self.__name__} (reduce one axis at a time)")
        if axis is None:
            final_shape = (1,) * len(shape) if keepdims else ()
            arr = lax.reshape(arr, (aval(arr).size,))
            if where is not None:
                where = lax.reshape(where, (aval(where).size,))
            axis = 0
        else:
            axis = canonicalize_axis(axis, len(shape), fname)
            final_shape = shape[:axis] + ((1,) if keepdims else ()) + shape[axis + 1:]
            if axis != 0:
                arr = moveaxis(arr, axis, 0)
                if where is not None:
                    where = moveaxis(where, axis, 0)
        n = aval(arr).shape[0]
        if n == 0:
            if initial is None:
                raise ValueError(f"zero-size array to reduction operation {self.__name__} "
                                 "which has no identity")
            return lax.full(final_shape, initial, dtype)

        def element(i: Any) -> Any:
            return astype(lax.dynamic_index_in_dim(arr, i, 0, keepdims=False), dtype)

        def body(i: Any, acc: Any) -> Any:
            new = astype(self(acc, element(i)), dtype)
            if where is None:
                return new
            return _where(lax.dynamic_index_in_dim(where, i, 0, keepdims=False), new, acc)

        if initial is None:
            start, acc = 1, element(0)
        else:
            start = 0
            acc = broadcast_to(astype(ensure_arraylike(fname, initial), dtype),
                               aval(arr).shape[1:])
        result = lax.fori_loop(start, n, body, acc)
        return lax.reshape(result, final_shape) if keepdims else result

    # ------------------------------------------------------------------ accumulate

    def accumulate(self, a: Any, axis: int = 0, dtype: Any = None, out: None = None) -> Any:
        """The running reduction of ``a`` along ``axis`` (``numpy.ufunc.accumulate``):
        ``jnp.add.accumulate`` is ``jnp.cumsum``, ``jnp.maximum.accumulate`` a running max.

        Args:
            a: the array to accumulate.
            axis: the axis to accumulate along (default 0). Only ``add`` and ``multiply``
                (``cumsum``/``cumprod``) take None, for the flattened array.
            dtype: the dtype to compute and return in.
            out: unsupported (fungrad arrays are immutable); must be None.

        Returns:
            An array of ``a``'s shape: element ``k`` along ``axis`` reduces ``a[..., :k+1]``.
        """
        check_arraylike(f"{self.__name__}.accumulate", a)
        self._require_binary("accumulate")
        self._reject_out("accumulate", out)
        impl = self._accumulate or self._accumulate_via_scan
        return impl(a, axis=axis, dtype=dtype)

    def _accumulate_via_scan(self, a: Any, *, axis: Any, dtype: Any) -> Any:
        """``accumulate`` for any binary function: a ``lax.scan`` along the axis."""
        fname = f"{self.__name__}.accumulate"
        arr = ensure_arraylike(fname, a)
        dtype = (self._result_dtype(arr, arr) if dtype is None
                 else check_user_dtype(dtype, fname))
        if axis is None or isinstance(axis, (tuple, list)):
            raise ValueError(f"{fname}: accumulate does not allow multiple axes (got "
                             f"axis={axis!r}); pass one integer axis")
        axis = canonicalize_axis(axis, aval(arr).ndim, fname)
        if aval(arr).size == 0:
            return lax.full(aval(arr).shape, 0, dtype)
        arr = astype(moveaxis(arr, axis, 0), dtype)

        def step(acc: Any, x: Any) -> tuple[Any, Any]:
            acc = astype(self(acc, x), dtype)
            return acc, acc
        first = lax.index_in_dim(arr, 0, 0, keepdims=False)
        _, rest = lax.scan(step, first, lax.slice_in_dim(arr, 1, aval(arr).shape[0], axis=0))
        result = lax.concatenate([lax.expand_dims(first, (0,)), rest], 0)
        return moveaxis(result, 0, axis)

    # ------------------------------------------------------------------ at

    def at(self, a: Any, indices: Any, b: Any = None, /, *, inplace: bool = True) -> Any:
        """``a`` with the function applied at ``indices`` (``numpy.ufunc.at``): for a binary
        ufunc ``a[indices] = func(a[indices], b)``, for a unary one ``a[indices] =
        func(a[indices])``; repeated indices apply repeatedly, in order.

        NumPy updates ``a`` in place; fungrad arrays are immutable, so this returns the
        updated copy and, as in JAX, requires ``inplace=False`` to say so.
        ``jnp.add.at(x, i, v, inplace=False)`` is ``x.at[i].add(v)``. Out-of-bounds indices
        are dropped.

        Args:
            a: the array to update.
            indices: an index as for ``a[indices]`` (integers, integer arrays, slices, ...).
            b: the second operand of a binary ufunc, broadcast to ``a[indices]``; omitted
                for a unary ufunc.
            inplace: must be False.

        Returns:
            The updated copy of ``a``.
        """
        fname = f"{self.__name__}.at"
        if inplace:
            raise NotImplementedError(_AT_INPLACE_MESSAGE.format(name=self.__name__))
        if self._nin > 2 or self._nout != 1:
            raise ValueError(f"{fname}: at only supported for unary and binary ufuncs "
                             f"returning a single value; {self.__name__} has "
                             f"nin={self._nin}, nout={self._nout}")
        args = () if b is None else (b,)
        if len(args) != self._nin - 1:
            raise TypeError(f"{fname}: {self.__name__} takes {self._nin} input(s), so at() "
                            f"takes {self._nin - 1} value argument(s) b, got {len(args)}")
        check_arraylike(fname, a, *args)
        impl = self._at or self._at_via_scan
        return impl(a, indices, *args)

    def _at_via_scan(self, a: Any, indices: Any, *args: Any) -> Any:
        """``at`` for any function. Without integer-array indices no element repeats, so one
        gather/scatter does it; otherwise the selected elements are updated one at a time
        (a ``lax.scan``), so that repeated indices compose."""
        fname = f"{self.__name__}.at"
        dtype = self._result_dtype(a, *args)
        a = astype(ensure_arraylike(fname, a), dtype)
        args = tuple(astype(ensure_arraylike(fname, v), dtype) for v in args)
        idx = _to_tuple(indices)
        if not any(_is_index_array(i) for i in idx):
            return a.at[idx].set(self(a.at[idx].get(), *args))
        size = aval(a).size
        # the flat positions a[idx] selects (with NumPy's rules for mixing slices and
        # arrays); out-of-bounds ones read as ``size``, which the loop skips
        positions = lax.reshape(lax.iota(np.int32, size), aval(a).shape)
        positions = positions.at[idx].get(mode="fill", fill_value=size)
        selected = aval(positions).shape
        count = aval(positions).size
        if count == 0:
            return a
        try:
            values = [broadcast_to(v, selected) for v in args]
        except ValueError:
            raise ValueError(f"{fname}: values of shape {aval(args[0]).shape} cannot be "
                             f"broadcast to the indexed shape {selected}") from None
        positions = lax.reshape(positions, (count,))
        values = [lax.reshape(v, (count,)) for v in values]

        def step(flat: Any, item: tuple) -> tuple[Any, None]:
            k, vals = item
            old = lax.dynamic_index_in_dim(flat, k, 0, keepdims=False)
            new = astype(self(old, *vals), dtype)
            new = lax.select(lax.lt(k, np.int32(size)), new, old)
            return lax.dynamic_update_index_in_dim(flat, new, k, 0), None
        flat, _ = lax.scan(step, lax.reshape(a, (size,)), (positions, values))
        return lax.reshape(flat, aval(a).shape)

    # ------------------------------------------------------------------ reduceat

    def reduceat(self, a: Any, indices: Any, axis: int = 0, dtype: Any = None,
                 out: None = None) -> Any:
        """Reductions of ``a`` over the segments that ``indices`` start
        (``numpy.ufunc.reduceat``): result ``k`` along ``axis`` reduces
        ``a[indices[k]:indices[k+1]]`` (to the end for the last), or is ``a[indices[k]]``
        when ``indices[k+1] <= indices[k]``.

        Args:
            a: the array to reduce, at least 1-d.
            indices: a 1-d integer array of segment starts.
            axis: the axis to reduce along (default 0).
            dtype: accepted and, as in JAX, not used: the result has the dtype that
                combining ``a``'s elements with the function gives.
            out: unsupported (fungrad arrays are immutable); must be None.

        Returns:
            An array of ``a``'s shape with ``len(indices)`` along ``axis``.
        """
        self._require_binary("reduceat")
        self._reject_out("reduceat", out)
        impl = self._reduceat or self._reduceat_via_loop
        return impl(a, indices, axis=axis, dtype=dtype)

    def _reduceat_via_loop(self, a: Any, indices: Any, *, axis: Any, dtype: Any) -> Any:
        """``reduceat`` for any binary function: one pass along the axis, folding element
        ``i`` into the segment whose range holds it."""
        fname = f"{self.__name__}.reduceat"
        check_arraylike(fname, a, indices)
        check_user_dtype(dtype, fname)
        a, indices = ensure_arraylike(fname, a, indices)
        if aval(a).ndim == 0:
            raise ValueError(f"{fname}: a must have 1 or more dimension, got "
                             f"a.shape={aval(a).shape}")
        if aval(indices).ndim != 1:
            raise ValueError(f"{fname}: indices must be one-dimensional, got "
                             f"indices.shape={aval(indices).shape}")
        if not dtypes.is_integer(aval(indices).dtype):
            raise TypeError(f"{fname}: indices must be integers, got dtype "
                            f"{aval(indices).dtype}")
        if axis is None or isinstance(axis, (tuple, list)):
            raise ValueError(f"{fname}: reduceat requires a single integer axis, got "
                             f"axis={axis!r}")
        axis = canonicalize_axis(axis, aval(a).ndim, fname)
        n = aval(a).shape[axis]
        acc = take(a, indices, axis=axis)
        # the carry's dtype: what folding an element into it gives (jnp.where's promotion)
        carry = eval_shape(lambda x, y: _where(True, self(x, y), x), _one(acc), _one(a)).dtype
        if carry != aval(acc).dtype:
            acc = lax.convert_element_type(acc, carry)
        int_dtype = dtypes.default_int_dtype()  # compared with the loop counter
        bounds = lax.convert_element_type(concatenate([indices, np.array([n])]), int_dtype)
        bounds = lax.expand_dims(bounds, tuple(d for d in range(aval(a).ndim) if d != axis))
        starts = lax.slice_in_dim(bounds, 0, aval(indices).shape[0], axis=axis)
        ends = lax.slice_in_dim(bounds, 1, aval(indices).shape[0] + 1, axis=axis)

        def body(i: Any, acc: Any) -> Any:
            i = lax.convert_element_type(i, int_dtype)
            inside = lax.bitwise_and(lax.gt(i, starts), lax.lt(i, ends))
            element = lax.dynamic_slice_in_dim(a, i, 1, axis)
            return _where(inside, self(acc, element), acc)
        return lax.fori_loop(0, n, body, acc)

    # ------------------------------------------------------------------ outer

    def outer(self, A: Any, B: Any, /) -> Any:
        """The function of every pair of elements of ``A`` and ``B``
        (``numpy.ufunc.outer``): ``result[i..., j...] = func(A[i...], B[j...])``.

        Args:
            A: an array (or scalar).
            B: an array (or scalar).

        Returns:
            An array of shape ``A.shape + B.shape``.
        """
        fname = f"{self.__name__}.outer"
        self._require_binary("outer")
        check_arraylike(fname, A, B)
        A, B = ensure_arraylike(fname, A, B)
        # A's axes first, each followed by B's as size-1 axes: broadcasting pairs them all
        A = lax.reshape(A, aval(A).shape + (1,) * aval(B).ndim)
        return self(A, B)


def _positive_int(value: Any, what: str, name: str) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"ufunc {name!r}: {what} must be an integer, got "
                        f"{type(value).__name__}") from None
    if value < 1:
        raise ValueError(f"ufunc {name!r}: {what} must be at least 1, got {value}")
    return value


def _vectorized_call(func: Callable[..., Any], name: str, nin: int) -> Callable[..., Any]:
    """The call of a ``frompyfunc`` ufunc: ``func`` (of 0-d arrays) mapped over the
    broadcast arguments with ``vectorize``."""
    mapped = vectorize(func)

    def call(*args: Any) -> Any:
        if len(args) != nin:
            raise TypeError(f"{name}() takes {nin} positional argument(s) but {len(args)} "
                            "were given")
        check_arraylike(name, *args)
        return mapped(*args)
    return call


def _is_index_array(i: Any) -> bool:
    """Whether one index entry is an integer array of rank >= 1 (which may repeat)."""
    if not hasattr(i, "shape"):  # int, slice, None, Ellipsis
        return False
    a = aval(i)
    return a.ndim > 0 and dtypes.is_integer(a.dtype)


def frompyfunc(func: Callable[..., Any], /, nin: int, nout: int, *,
               identity: Any = None) -> ufunc:
    """Make a :class:`ufunc` of ``func``, a function of ``nin`` scalars (``jax.numpy.
    frompyfunc``): calling it maps ``func`` over the broadcast arguments, and a binary one
    gets ``reduce``, ``accumulate``, ``at``, ``reduceat`` and ``outer``.

    ``func`` is called with 0-d arrays and must be traceable (written with
    ``fungrad.numpy``/``fungrad.lax``), like any function under ``vmap``.

    Args:
        func: the function, of ``nin`` 0-d arrays, returning ``nout`` values.
        nin: the number of inputs.
        nout: the number of outputs.
        identity: the identity of a binary ``func`` (reductions of empty arrays and masked
            reductions start from it), or None.

    Returns:
        The ufunc.

    Examples:
        >>> import operator, fungrad.numpy as jnp
        >>> add = jnp.frompyfunc(operator.add, nin=2, nout=1, identity=0)
        >>> x = jnp.arange(4)
        >>> add.reduce(x), add.accumulate(x)
        (Array(6, dtype=int32), Array([0, 1, 3, 6], dtype=int32))
    """
    return ufunc(func, nin, nout, identity=identity)


# --------------------------------------------------------------------------- fast paths

def _reducer(name: str, reduce: str, op: str, init: float, **kw: Any) -> Any:
    return _reductions._Reducer(name, reduce, op, init, **kw)


def _lax_reduce(r: Any, preproc: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """A ``reduce`` through fungrad's reduction core (``_reductions._reduction``)."""
    def reduce(a: Any, *, axis: Any, dtype: Any, keepdims: bool, initial: Any,
               where: Any) -> Any:
        return _reductions._reduction(a, r, axis, dtype, keepdims, initial, where,
                                      preproc=preproc)
    return reduce


def _bitwise_reduce(r: Any, identity: int) -> Callable[..., Any]:
    """``bitwise_*.reduce``: integer and boolean arrays only; masked-out elements become
    the all-ones/zero identity of the computation dtype."""
    def reduce(a: Any, *, axis: Any, dtype: Any, keepdims: bool, initial: Any,
               where: Any) -> Any:
        a = ensure_arraylike(r.name, a)
        dt = aval(a).dtype
        if dtypes.kind(dt) not in "biu":
            raise ValueError(f"{r.name}: integer argument required; got dtype={dt}")
        if where is not None:
            comp = check_user_dtype(dtype, r.name) or dt
            a = _where(where, lax.convert_element_type(a, comp),
                       lax.convert_element_type(np.array(identity).astype(comp), comp))
        return _reductions._reduction(a, r, axis, dtype, keepdims, initial, None)
    return reduce


def _logsumexp(name: str) -> Callable[..., Any]:
    """``logaddexp.reduce``: ``logsumexp``. As in JAX, ``dtype`` is checked but not used
    (the result is ``a``'s float type)."""
    def reduce(a: Any, *, axis: Any, dtype: Any, keepdims: bool, initial: Any,
               where: Any) -> Any:
        check_user_dtype(dtype, name)
        result = logsumexp(ensure_arraylike(name, a), axis=axis, keepdims=keepdims,
                           where=where)
        return result if initial is None else _ufuncs_math.logaddexp(initial, result)
    return reduce


_LN2 = float(np.log(2))
_logaddexp_reduce = _logsumexp("logaddexp.reduce")
_logsumexp2 = _logsumexp("logaddexp2.reduce")


def _logaddexp2_reduce(a: Any, *, axis: Any, dtype: Any, keepdims: bool, initial: Any,
                       where: Any) -> Any:
    """``logaddexp2.reduce``: ``logaddexp.reduce`` of ``a * ln 2``, divided by ``ln 2``."""
    a = ensure_arraylike("logaddexp2.reduce", a)
    if initial is not None:
        initial = _ufuncs.multiply(initial, _LN2)
    out = _logsumexp2(_ufuncs.multiply(a, _LN2), axis=axis, dtype=dtype, keepdims=keepdims,
                      initial=initial, where=where)
    return _ufuncs.true_divide(out, _LN2)


def _cumulative(fn: Callable[..., Any]) -> Callable[..., Any]:
    def accumulate(a: Any, *, axis: Any, dtype: Any) -> Any:
        return fn(a, axis=axis, dtype=dtype)
    return accumulate


def _cum_extremum(name: str, lax_fn: Callable[..., Any]) -> Callable[..., Any]:
    """``maximum``/``minimum.accumulate`` through ``lax.cummax``/``cummin`` (the generic
    scan's results in one primitive); complex values take the scan."""
    def accumulate(a: Any, *, axis: Any, dtype: Any) -> Any:
        fname = f"{name}.accumulate"
        a = ensure_arraylike(fname, a)
        dtype = check_user_dtype(dtype, fname) or aval(a).dtype
        if dtype.kind == "c":
            return _BUILTINS[name]._accumulate_via_scan(a, axis=axis, dtype=dtype)
        if axis is None or isinstance(axis, (tuple, list)):
            raise ValueError(f"{fname}: accumulate does not allow multiple axes (got "
                             f"axis={axis!r}); pass one integer axis")
        axis = canonicalize_axis(axis, aval(a).ndim, fname)
        if dtype == np.bool_:  # max/min of booleans are or/and: run them on 0/1
            return astype(lax_fn(astype(astype(a, np.bool_), np.uint8), axis), np.bool_)
        return lax_fn(astype(a, dtype), axis)
    return accumulate


def _arithmetic_at(name: str, method: str, logical: str) -> Callable[..., Any]:
    """``add``/``multiply.at``: ``a.at[indices].add``/``.mul(b)``; booleans combine as
    ``logical`` (or/and), computed in int32."""
    def at(a: Any, indices: Any, b: Any) -> Any:
        a = ensure_arraylike(f"{name}.at", a)
        if aval(a).dtype == np.bool_:
            b = astype(astype(ensure_arraylike(f"{name}.at", b), np.bool_), np.int32)
            return astype(getattr(astype(a, np.int32).at[indices], method)(b), np.bool_)
        return getattr(a.at[indices], method)(b)
    at.__doc__ = f"``{name}.at``: ``a.at[indices].{method}(b)`` (booleans as ``{logical}``)."
    return at


def _subtract_at(a: Any, indices: Any, b: Any) -> Any:
    """``subtract.at``: ``a.at[indices].subtract(b)``."""
    return ensure_arraylike("subtract.at", a).at[indices].subtract(b)


def _extremum_at(name: str, method: str) -> Callable[..., Any]:
    """``maximum``/``minimum.at`` as ``a.at[indices].max``/``.min`` in the dtype the
    function gives (what the generic scan computes); complex values take the scan."""
    plain = getattr(_ufuncs, name)

    def at(a: Any, indices: Any, b: Any) -> Any:
        a, b = ensure_arraylike(f"{name}.at", a, b)
        dtype = aval(plain(_one(a), _one(b))).dtype
        if dtype.kind == "c":
            return _BUILTINS[name]._at_via_scan(a, indices, b)
        return getattr(astype(a, dtype).at[indices], method)(b)
    return at


def _direct(func: Callable[..., Any], nin: int, identity: Any = None,
            **methods: Any) -> ufunc:
    """fungrad.numpy's ufunc object for the plain function ``func``, called directly.

    Python finds ``__call__`` on the type, so each object gets a subclass whose ``__call__``
    is ``func`` itself (a staticmethod): ``jnp.add(x, y)`` then runs no Python frame besides
    ``add``'s, and costs what the plain function did. ``func`` takes ``out=``/``where=`` and
    refuses values other than None itself, as ``ufunc.__call__`` does.
    """
    cls = type(f"ufunc_{func.__name__}", (ufunc,),
               {"__call__": staticmethod(func), "__module__": __name__,
                "__doc__": f"The class of ``fungrad.numpy.{func.__name__}`` (see ``ufunc``)."})
    u = cls(func, nin, 1, name=func.__name__, identity=identity, call=func, **methods)
    # inspect would read the staticmethod as a method and drop its first parameter
    u.__signature__ = inspect.signature(func)
    return u


def _binary(func: Callable[..., Any], identity: Any, **methods: Any) -> ufunc:
    return _direct(func, 2, identity, **methods)


add = _binary(_ufuncs.add, 0, reduce=_reductions.sum, accumulate=_cumulative(
    _reductions.cumsum), at=_arithmetic_at("add", "add", "or"))
multiply = _binary(_ufuncs.multiply, 1, reduce=_reductions.prod, accumulate=_cumulative(
    _reductions.cumprod), at=_arithmetic_at("multiply", "mul", "and"))
subtract = _binary(_ufuncs.subtract, None, at=_subtract_at)
maximum = _binary(_ufuncs.maximum, None, reduce=_lax_reduce(
    _reducer("maximum.reduce", "reduce_max", "max", -np.inf, has_identity=False)),
    accumulate=_cum_extremum("maximum", lax.cummax), at=_extremum_at("maximum", "max"))
minimum = _binary(_ufuncs.minimum, None, reduce=_lax_reduce(
    _reducer("minimum.reduce", "reduce_min", "min", np.inf, has_identity=False)),
    accumulate=_cum_extremum("minimum", lax.cummin), at=_extremum_at("minimum", "min"))
logical_and = _binary(_ufuncs.logical_and, True, reduce=_lax_reduce(
    _reducer("logical_and.reduce", "reduce_and", "bitwise_and", True),
    preproc=_reductions._to_bool))
logical_or = _binary(_ufuncs.logical_or, False, reduce=_lax_reduce(
    _reducer("logical_or.reduce", "reduce_or", "bitwise_or", False),
    preproc=_reductions._to_bool))
logical_xor = _binary(_ufuncs.logical_xor, False, reduce=_lax_reduce(
    _reducer("logical_xor.reduce", "reduce_xor", "bitwise_xor", False),
    preproc=_reductions._to_bool))
bitwise_and = _binary(_ufuncs.bitwise_and, -1, reduce=_bitwise_reduce(
    _reducer("bitwise_and.reduce", "reduce_and", "bitwise_and", 0), -1))
bitwise_or = _binary(_ufuncs.bitwise_or, 0, reduce=_bitwise_reduce(
    _reducer("bitwise_or.reduce", "reduce_or", "bitwise_or", 0), 0))
bitwise_xor = _binary(_ufuncs.bitwise_xor, 0, reduce=_bitwise_reduce(
    _reducer("bitwise_xor.reduce", "reduce_xor", "bitwise_xor", 0), 0))
logaddexp = _binary(_ufuncs_math.logaddexp, -np.inf, reduce=_logaddexp_reduce)
logaddexp2 = _binary(_ufuncs_math.logaddexp2, -np.inf, reduce=_logaddexp2_reduce)
negative = _direct(_ufuncs.negative, 1)

_BUILTINS = {u.__name__: u for u in (add, multiply, subtract, maximum, minimum, logical_and,
                                     logical_or, logical_xor, bitwise_and, bitwise_or,
                                     bitwise_xor, logaddexp, logaddexp2, negative)}


def _builtin(name: str) -> ufunc:
    """fungrad.numpy's ufunc object ``name`` (what unpickling one returns)."""
    return _BUILTINS[name]


def _rebuild(cls: type, func: Callable[..., Any], nin: int, nout: int, name: str, nargs: int,
             identity: Any, given: tuple) -> ufunc:
    """A ufunc from its constructor's arguments (what unpickling one returns)."""
    call, reduce, accumulate, at, reduceat = given
    return cls(func, nin, nout, name=name, nargs=nargs, identity=identity, call=call,
               reduce=reduce, accumulate=accumulate, at=at, reduceat=reduceat)


__all__ = ["ufunc", "frompyfunc", *_BUILTINS]
