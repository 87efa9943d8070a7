"""``BCOO``, the batched-COO sparse array of ``jax.experimental.sparse``, and its operations.

The layout (see ``_primitives``): ``data`` is ``batch + (nse,) + dense``, ``indices`` is
``batch + (nse, n_sparse)``. Conversions go through the three primitives; the rest
(``bcoo_dot_general``, ``bcoo_transpose``, ``bcoo_reduce_sum``, ...) are composites of
them and ``fungrad.lax``/``fungrad.numpy``, written for one batch element and mapped over
the batch dimensions with ``vmap``, so their derivatives, batching and ``jit`` come from
the primitives they use. ``BCOO`` is a pytree whose leaves are ``data`` and ``indices``.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import lax, tree
from fungrad import numpy as jnp
from fungrad._core import array_methods, core
from fungrad._core.core import ShapedArray
from fungrad.errors import ConcretizationTypeError
from fungrad.experimental.sparse._primitives import (bcoo_extract_p, bcoo_fromdense_p,
                                                     bcoo_todense_p, validate_layout)
from fungrad.lax._prim import static_ints
from fungrad.lax.dot import dot_general_p
from fungrad.transforms.api import vmap

__all__ = ["BCOO", "bcoo_broadcast_in_dim", "bcoo_dot_general", "bcoo_extract",
           "bcoo_fromdense", "bcoo_multiply_dense", "bcoo_reduce_sum", "bcoo_sort_indices",
           "bcoo_sum_duplicates", "bcoo_eliminate_zeros", "bcoo_todense", "bcoo_transpose",
           "bcoo_rdot_general"]


def _concrete(x: Any, name: str) -> np.ndarray:
    """``x`` as a NumPy array, or a ``ConcretizationTypeError`` saying to pass ``nse``."""
    if isinstance(x, core.Tracer):
        raise ConcretizationTypeError(
            x, f"{name}: the number of stored elements depends on the values; pass a "
            "concrete `nse=` to use it under jit, vmap or grad")
    return np.asarray(x)


def _nfold_vmap(f: Callable, n: int) -> Callable:
    """``f`` mapped over the first ``n`` axes of every argument, an axis of size 1
    broadcasting against the others (the batch dimensions of a BCOO layout may be 1)."""
    for _ in range(n):
        f = functools.partial(_broadcast_vmap_level, f)
    return f


def _broadcast_vmap_level(f: Callable, *args: Any) -> Any:
    """One level of ``_nfold_vmap``: map axis 0, broadcasting arguments whose axis 0 is 1."""
    size = max(a.shape[0] for a in args)
    squeezed = [a[0] if a.shape[0] == 1 and size != 1 else a for a in args]
    axes = tuple(0 if a is b else None for a, b in zip(args, squeezed))
    return vmap(f, in_axes=axes)(*squeezed)


class BCOO:
    """A batched-COO sparse array (``jax.experimental.sparse.BCOO``).

    Args:
        args: ``(data, indices)``: ``data`` of shape ``batch + (nse,) + dense``, ``indices``
            of shape ``batch + (nse, n_sparse)``; repeated indices are summed.
        shape: the shape of the dense array represented.
        indices_sorted: whether the indices are in lexicographic order per batch.
        unique_indices: whether no index repeats within a batch.
    """

    __array_ufunc__ = None   # ``ndarray @ BCOO`` and ``ndarray * BCOO`` defer to BCOO

    def __init__(self, args: tuple[Any, Any], *, shape: Sequence[int],
                 indices_sorted: bool = False, unique_indices: bool = False) -> None:
        data, indices = args
        self.data = jnp.asarray(data)
        self.indices = jnp.asarray(indices)
        self.shape = static_ints(shape, "BCOO", "shape")
        self.indices_sorted = bool(indices_sorted)
        self.unique_indices = bool(unique_indices)
        if not jnp.issubdtype(self.indices.dtype, jnp.integer):
            raise TypeError(f"BCOO: indices must be integers, got {self.indices.dtype}")
        validate_layout(self.data.shape, self.indices.shape, self.shape, "BCOO")

    # ----------------------------------------------------------------- layout
    nse = property(lambda self: self.indices.shape[-2], doc="Stored elements per batch.")
    n_batch = property(lambda self: self.indices.ndim - 2, doc="Leading batch dimensions.")
    n_sparse = property(lambda self: self.indices.shape[-1], doc="Sparse dimensions.")
    n_dense = property(lambda self: self.data.ndim - 1 - self.n_batch,
                       doc="Trailing dense (block) dimensions.")
    dtype = property(lambda self: self.data.dtype, doc="The dtype of ``data``.")
    ndim = property(lambda self: len(self.shape), doc="The number of dimensions.")
    size = property(lambda self: math.prod(self.shape), doc="The number of elements.")
    T = property(lambda self: self.transpose(), doc="All dimensions reversed.")

    def __repr__(self) -> str:
        extra = f", nse={self.nse}"
        extra += f", n_batch={self.n_batch}" if self.n_batch else ""
        extra += f", n_dense={self.n_dense}" if self.n_dense else ""
        text = f"BCOO({self.dtype.name}{list(self.shape)}{extra})"
        return f"{type(self.data).__name__}[{text}]" if isinstance(self.data, core.Tracer) \
            else text

    def _with_data(self, data: Any) -> BCOO:
        return BCOO((data, self.indices), shape=self.shape, indices_sorted=self.indices_sorted,
                    unique_indices=self.unique_indices)

    # ----------------------------------------------------------------- conversions
    @classmethod
    def fromdense(cls, mat: Any, *, nse: int | None = None, index_dtype: Any = np.int32,
                  n_dense: int = 0, n_batch: int = 0) -> BCOO:
        """``bcoo_fromdense``: the nonzeros of a dense array."""
        return bcoo_fromdense(mat, nse=nse, index_dtype=index_dtype, n_dense=n_dense,
                              n_batch=n_batch)

    @classmethod
    def from_scipy_sparse(cls, mat: Any, *, index_dtype: Any = None, n_dense: int = 0,
                          n_batch: int = 0) -> BCOO:
        """A BCOO of a ``scipy.sparse`` matrix (anything with ``tocoo()``); scipy itself is
        not imported, so it stays an optional dependency."""
        if n_dense or n_batch:
            raise NotImplementedError("BCOO.from_scipy_sparse: n_dense and n_batch must be 0")
        coo = mat.tocoo()
        indices = np.stack([coo.row, coo.col], -1).astype(index_dtype or np.int32)
        return cls((np.asarray(coo.data), indices), shape=coo.shape)

    def todense(self) -> Any:
        """The dense array (``bcoo_todense``)."""
        return bcoo_todense(self)

    def astype(self, dtype: Any) -> BCOO:
        """The array with ``data`` converted to ``dtype``."""
        return self._with_data(self.data.astype(dtype))

    def transpose(self, axes: Sequence[int] | None = None) -> BCOO:
        """``bcoo_transpose``; with no ``axes``, all dimensions reversed."""
        perm = tuple(range(self.ndim))[::-1] if axes is None else tuple(axes)
        out = bcoo_transpose(self, permutation=perm)
        sparse_perm = perm[self.n_batch:self.n_batch + self.n_sparse]
        keeps_order = sparse_perm == tuple(sorted(sparse_perm))
        out.indices_sorted = self.indices_sorted and keeps_order
        return out

    def sum(self, axis: int | Sequence[int] | None = None) -> Any:
        """``bcoo_reduce_sum`` over ``axis`` (all by default); a full sum is a dense scalar,
        as ``sparsify(jnp.sum)`` gives in jax."""
        axes = tuple(range(self.ndim)) if axis is None else (
            (axis,) if isinstance(axis, int) else tuple(axis))
        out = bcoo_reduce_sum(self, axes=tuple(a % self.ndim for a in axes))
        return out.data.sum() if out.shape == () else out

    def sum_duplicates(self, nse: int | None = None, remove_zeros: bool = True) -> BCOO:
        """Sorted, unique indices (``bcoo_sum_duplicates``), dropping stored zeros unless
        ``remove_zeros=False``."""
        if remove_zeros:
            return bcoo_eliminate_zeros(self, nse=nse)
        return bcoo_sum_duplicates(self, nse=nse)

    def sort_indices(self) -> BCOO:
        """``bcoo_sort_indices``."""
        return bcoo_sort_indices(self)

    # reshape, __getitem__, __iter__ and update_layout are attached in ``bcoo_shape``.

    # ----------------------------------------------------------------- arithmetic
    def __neg__(self) -> BCOO:
        return self._with_data(-self.data)

    def __pos__(self) -> BCOO:
        return self

    def __abs__(self) -> BCOO:
        mat = _unique(self)
        return mat._with_data(jnp.abs(mat.data))

    def __mul__(self, other: Any) -> BCOO:
        if isinstance(other, BCOO):
            if other.indices is self.indices and self.unique_indices:
                return self._with_data(self.data * other.data)
            raise NotImplementedError("BCOO * BCOO (bcoo_multiply_sparse) with different "
                                      "indices is not implemented in fungrad")
        mat, other = _promote(self, other)
        return mat._with_data(bcoo_multiply_dense(mat, other))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> BCOO:
        if isinstance(other, BCOO):
            raise NotImplementedError("BCOO / BCOO: division by a sparse array would be dense")
        mat, other = _promote(self, other)
        return mat._with_data(bcoo_multiply_dense(mat, 1 / other))

    def __add__(self, other: Any) -> Any:
        return _add(self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        if not isinstance(other, BCOO):
            raise NotImplementedError("BCOO - dense array: subtraction between a sparse and "
                                      "a dense array is not implemented (as in jax)")
        return _add(self, -other)

    def __matmul__(self, other: Any) -> Any:
        return _matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return _matmul(other, self)


def _flatten(mat: BCOO) -> tuple:
    shapes = tuple(getattr(leaf, "shape", None) for leaf in (mat.data, mat.indices))
    return (mat.data, mat.indices), (mat.shape, mat.indices_sorted, mat.unique_indices, shapes)


def _unflatten(aux: tuple, children: Sequence[Any]) -> BCOO:
    """Rebuild without recomputing anything (the leaves may be tracers, or the axis specs of
    ``vmap``). Under ``vmap`` both leaves lose (or, for a result, gain) their leading axis,
    and the shape follows: a BCOO is mapped along its leading batch axis only, as in JAX.
    Any other change of the leaves' shapes is refused rather than given a wrong shape."""
    shape, indices_sorted, unique_indices, (data_shape, indices_shape) = aux
    data, indices = children
    new = tuple(getattr(leaf, "shape", None) for leaf in (data, indices))
    if None not in new and None not in (data_shape, indices_shape) \
            and new != (data_shape, indices_shape):
        if len(indices_shape) > 2 and new == (data_shape[1:], indices_shape[1:]):
            shape = shape[1:]
        elif new[1][1:] == indices_shape and new[0][1:] == data_shape \
                and new[0][0] == new[1][0]:
            shape = (new[0][0],) + tuple(shape)
        else:
            raise ValueError(
                f"BCOO: vmap maps a BCOO along its leading batch axis only (in_axes=0 and "
                f"out_axes=0, with n_batch >= 1); got leaves of shapes {new[0]} and {new[1]} "
                f"for data {data_shape} and indices {indices_shape}")
    mat = object.__new__(BCOO)
    mat.data, mat.indices, mat.shape = data, indices, tuple(shape)
    mat.indices_sorted, mat.unique_indices = indices_sorted, unique_indices
    return mat


tree.register_pytree_node(BCOO, _flatten, _unflatten)
array_methods.defer_operators_to(BCOO)  # dense @ sparse: BCOO.__rmatmul__, as in jax


def _promote(mat: BCOO, other: Any) -> tuple[BCOO, Any]:
    """``mat`` and a dense ``other`` converted to their common dtype (as ``jnp.multiply``
    promotes before sparsify sees the product)."""
    other = other if isinstance(other, (int, float, complex)) else jnp.asarray(other)
    dtype = jnp.result_type(mat.data, other)
    return (mat if dtype == mat.dtype else mat.astype(dtype)), jnp.asarray(other, dtype)


def _unique(mat: BCOO) -> BCOO:
    """``mat`` with unique indices, for operations that are not linear in the data."""
    return mat if mat.unique_indices else bcoo_sum_duplicates(mat, nse=mat.nse)


def _add(x: Any, y: Any, shared: bool = False) -> Any:
    """``x + y`` with at least one BCOO (jax's sparsify rule for ``add``): sparse + sparse
    is sparse (the data added when ``shared`` and both hold the same indices, else the
    entries concatenated); sparse + dense is dense when the dense operand has the result's
    shape. The operators concatenate, as jax's do (each operand is a separate input of
    ``sparsify`` there); ``sparsify`` passes ``shared`` for values of one origin."""
    if isinstance(x, BCOO) and isinstance(y, BCOO):
        if x.shape != y.shape:
            raise NotImplementedError(f"BCOO + BCOO of different shapes {x.shape} and {y.shape}")
        if shared and x.indices is y.indices:
            return x._with_data(x.data + y.data)
        if (x.n_batch, x.n_dense) != (y.n_batch, y.n_dense):
            raise NotImplementedError("BCOO + BCOO with different batch/dense dimensions")
        dtype = jnp.result_type(x.data, y.data)
        return BCOO((jnp.concatenate([x.data.astype(dtype), y.data.astype(dtype)], x.n_batch),
                     jnp.concatenate([x.indices, y.indices.astype(x.indices.dtype)], x.n_batch)),
                    shape=x.shape)
    sp, dense = (x, y) if isinstance(x, BCOO) else (y, x)
    dense = jnp.asarray(dense)
    if np.broadcast_shapes(sp.shape, dense.shape) != dense.shape:
        raise NotImplementedError(
            "BCOO + dense array: the dense operand must have the result's shape (adding a "
            "smaller one would silently densify); call .todense() first if that is meant")
    return sp.todense() + dense


def _matmul(a: Any, b: Any) -> Any:
    """``a @ b`` with one operand sparse, as ``sparsify(jnp.matmul)``: the dtypes promoted,
    then ``bcoo_dot_general`` with matmul's dimension numbers."""
    if isinstance(a, BCOO) and isinstance(b, BCOO):
        raise NotImplementedError("BCOO @ BCOO (bcoo_spdot_general) is not implemented in "
                                  "fungrad; densify one operand with .todense()")
    sparse_left = isinstance(a, BCOO)
    mat, dense = (a, b) if sparse_left else (b, a)
    mat, dense = _promote(mat, dense)
    a, b = (mat, dense) if sparse_left else (dense, mat)
    na, nb = len(a.shape), len(b.shape)
    if na == 0 or nb == 0:
        raise ValueError("matmul: a BCOO operand and its partner must have at least one "
                         f"dimension, got shapes {a.shape} and {b.shape}")
    if na == 1 or nb == 1:
        if na > 2 and nb == 1 or nb > 2 and na == 1 or na == nb == 1 or na <= 2 and nb <= 2:
            dn = (((na - 1,), (max(nb - 2, 0),)), ((), ()))
        else:
            raise NotImplementedError("matmul of a BCOO and a 1-d array with broadcasting")
    else:
        if a.shape[:-2] != b.shape[:-2]:
            raise NotImplementedError(f"matmul of a BCOO with batch shapes {a.shape[:-2]} and "
                                      f"{b.shape[:-2]}: batch shapes must be equal")
        batch = tuple(range(na - 2))
        dn = (((na - 1,), (nb - 2,)), (batch, batch))
    return bcoo_dot_general(a, b, dimension_numbers=dn)


# --------------------------------------------------------------------------- conversions

def bcoo_todense(mat: BCOO) -> Any:
    """The dense array of ``mat``: its data added at its indices (padding dropped)."""
    return bcoo_todense_p.bind(mat.data, mat.indices, shape=mat.shape)


def bcoo_fromdense(mat: Any, *, nse: int | None = None, n_batch: int = 0, n_dense: int = 0,
                   index_dtype: Any = np.int32) -> BCOO:
    """The nonzeros of ``mat`` as a BCOO, in row-major order within each batch.

    ``nse`` (entries per batch) defaults to the largest count of nonzeros over the batches,
    which needs concrete values; under ``jit``/``vmap``/``grad`` pass it. Batches with
    fewer nonzeros are padded with zeros at out-of-range indices (the sparse shape).
    """
    mat = jnp.asarray(mat)
    n_batch = static_ints(n_batch, "bcoo_fromdense", "n_batch")[0]
    n_dense = static_ints(n_dense, "bcoo_fromdense", "n_dense")[0]
    if n_batch < 0 or n_dense < 0 or n_batch + n_dense > mat.ndim:
        raise ValueError(f"bcoo_fromdense: n_batch={n_batch} and n_dense={n_dense} must be "
                         f"non-negative with n_batch + n_dense <= mat.ndim = {mat.ndim}")
    if nse is None:
        mask = _concrete(mat, "bcoo_fromdense") != 0
        if n_dense:
            mask = mask.any(tuple(range(mat.ndim - n_dense, mat.ndim)))
        nse = int(mask.sum(tuple(range(n_batch, mask.ndim))).max(initial=0))
    nse = static_ints(nse, "bcoo_fromdense", "nse")[0]
    if nse < 0:
        raise ValueError(f"bcoo_fromdense: nse must be non-negative, got {nse}")
    index_dtype = np.dtype(index_dtype)
    if index_dtype.kind not in "iu":
        raise TypeError(f"bcoo_fromdense: index_dtype must be an integer dtype, got {index_dtype}")
    data, indices = bcoo_fromdense_p.bind(mat, nse=nse, n_batch=n_batch, n_dense=n_dense,
                                          index_dtype=index_dtype)
    return BCOO((data, indices), shape=mat.shape, indices_sorted=True, unique_indices=True)


def bcoo_extract(sparr: BCOO, arr: Any, *, assume_unique: bool | None = None) -> BCOO:
    """A BCOO with ``sparr``'s indices and the values of dense ``arr`` there. Unless the
    indices are unique (``assume_unique``, default ``sparr.unique_indices``), a repeated
    index gets the value once, at its first position, and zeros at the others."""
    if not isinstance(sparr, BCOO):
        raise TypeError(f"bcoo_extract: sparr must be a BCOO, got {type(sparr).__name__}")
    arr = jnp.asarray(arr)
    if arr.shape != sparr.shape:
        raise ValueError(f"bcoo_extract: arr of shape {arr.shape} does not match the sparse "
                         f"array's shape {sparr.shape}")
    data = bcoo_extract_p.bind(sparr.indices, arr)
    unique = sparr.unique_indices if assume_unique is None else assume_unique
    if not unique and sparr.n_sparse:
        def first(ind):
            same = (ind[:, None, :] == ind[None, :, :]).all(-1)
            earlier = jnp.arange(ind.shape[0])[None, :] < jnp.arange(ind.shape[0])[:, None]
            return (same & earlier).any(1)
        repeat = _nfold_vmap(first, sparr.n_batch)(sparr.indices)
        repeat = lax.expand_dims(repeat, tuple(range(repeat.ndim, data.ndim)))
        data = jnp.where(repeat, jnp.zeros((), data.dtype), data)
    return BCOO((data, sparr.indices), shape=sparr.shape, indices_sorted=sparr.indices_sorted,
                unique_indices=sparr.unique_indices)


# --------------------------------------------------------------------------- structure

def bcoo_transpose(mat: BCOO, *, permutation: Sequence[int]) -> BCOO:
    """Permute the dimensions of ``mat``: batch among batch, sparse among sparse (a
    permutation of the index columns) and dense among dense dimensions."""
    perm = static_ints(permutation, "bcoo_transpose", "permutation")
    if sorted(perm) != list(range(mat.ndim)):
        raise TypeError(f"bcoo_transpose: permutation {perm} is not a permutation of the "
                        f"{mat.ndim} dimensions of shape {mat.shape}")
    nb, ns = mat.n_batch, mat.n_sparse
    batch, sparse, dense = perm[:nb], perm[nb:nb + ns], perm[nb + ns:]
    if sorted(batch) != list(range(nb)) or sorted(dense) != list(range(nb + ns, mat.ndim)):
        raise NotImplementedError(f"bcoo_transpose: permutation {perm} mixes batch, sparse "
                                  f"and dense dimensions (n_batch={nb}, n_dense={mat.n_dense})")
    indices = mat.indices
    if sparse != tuple(range(nb, nb + ns)):
        indices = indices[..., np.array([p - nb for p in sparse], np.int32)]
    indices = lax.transpose(indices, batch + (nb, nb + 1))
    data = lax.transpose(mat.data, batch + (nb,) + tuple(p - ns + 1 for p in dense))
    return BCOO((data, indices), shape=tuple(mat.shape[p] for p in perm),
                unique_indices=mat.unique_indices)


def bcoo_broadcast_in_dim(mat: BCOO, *, shape: Sequence[int],
                          broadcast_dimensions: Sequence[int]) -> BCOO:
    """``lax.broadcast_in_dim`` of a BCOO: new leading dimensions become batch dimensions,
    new trailing ones dense; new sparse dimensions must have size 1."""
    shape = static_ints(shape, "bcoo_broadcast_in_dim", "shape")
    dims = static_ints(broadcast_dimensions, "bcoo_broadcast_in_dim", "broadcast_dimensions")
    if len(dims) != mat.ndim:
        raise ValueError(f"bcoo_broadcast_in_dim: broadcast_dimensions {dims} must have one "
                         f"entry per dimension of shape {mat.shape}")
    nb, ns, nd = mat.n_batch, mat.n_sparse, mat.n_dense
    bdims, sdims, ddims = dims[:nb], dims[nb:nb + ns], dims[nb + ns:]
    if max(bdims, default=0) > min(sdims, default=len(shape)) or \
            max(sdims, default=0) > min(ddims, default=len(shape)):
        raise ValueError("bcoo_broadcast_in_dim: cannot mix batch, sparse and dense dimensions")
    new_nb = min(dims[nb:], default=len(shape))
    new_nd = len(shape) - min(ddims) if nd else 0
    new_ns = len(shape) - new_nb - new_nd
    if math.prod(mat.shape[nb:nb + ns]) != math.prod(shape[new_nb:new_nb + new_ns]):
        raise NotImplementedError("bcoo_broadcast_in_dim: new sparse dimensions must have size 1")
    data, indices = mat.data, mat.indices
    if (new_nb, new_nd) != (nb, nd):
        data = lax.broadcast_in_dim(data, (*shape[:new_nb], mat.nse, *shape[new_nb + new_ns:]),
                                    (*bdims, new_nb, *(d + 1 - new_ns for d in ddims)))
        indices = lax.broadcast_in_dim(indices, (*shape[:new_nb], mat.nse, ns),
                                       (*bdims, new_nb, new_nb + 1))
    if new_ns != ns:
        cols = jnp.asarray([d - new_nb for d in sdims], np.int32)
        indices = jnp.zeros((*indices.shape[:-1], new_ns), indices.dtype).at[..., cols].set(
            indices)
    return BCOO((data, indices), shape=shape)


def bcoo_reduce_sum(mat: BCOO, *, axes: Sequence[int]) -> BCOO:
    """Sum ``mat`` over ``axes``: dense axes sum the data, sparse axes drop index columns
    (entries keep their place; duplicates are summed when densified), batch axes merge
    their entries into one longer ``nse``."""
    axes = sorted(set(static_ints(axes, "bcoo_reduce_sum", "axes")))
    if any(not 0 <= a < mat.ndim for a in axes):
        raise ValueError(f"bcoo_reduce_sum: axes {tuple(axes)} out of range for shape {mat.shape}")
    nb, ns, shape = mat.n_batch, mat.n_sparse, mat.shape
    data, indices = mat.data, mat.indices
    data = data.sum(tuple(a - ns + 1 for a in axes if a >= nb + ns))
    if ns:   # padding must not reach the result once its index columns are gone
        ok = (indices < jnp.asarray(shape[nb:nb + ns], indices.dtype)).all(-1)
        ok = lax.expand_dims(ok, tuple(range(ok.ndim, data.ndim)))
        data = jnp.where(ok, data, jnp.zeros((), data.dtype))
    keep = [i for i in range(ns) if i + nb not in axes]
    indices = indices[..., np.array(keep, np.int32)] if len(keep) != ns else indices
    batch_axes = [a for a in axes if a < nb]
    for a in batch_axes:   # give data and indices the full size on each summed batch axis
        if data.shape[a] == 1 and indices.shape[a] == 1:
            data = data * shape[a]
        elif data.shape[a] == 1:
            data = jnp.broadcast_to(data, data.shape[:a] + (shape[a],) + data.shape[a + 1:])
        elif indices.shape[a] == 1:
            data = data.sum(a, keepdims=True)
    kept = [i for i in range(nb) if i not in batch_axes]
    order = kept + batch_axes
    new_nse = mat.nse * math.prod(data.shape[a] for a in batch_axes)

    def merge(x):
        x = lax.transpose(x, tuple(order) + tuple(range(nb, x.ndim)))
        return lax.reshape(x, tuple(x.shape[:len(kept)]) + (new_nse,) + tuple(x.shape[nb + 1:]))
    if batch_axes:
        data, indices = merge(data), merge(indices)
    return BCOO((data, indices), shape=tuple(s for i, s in enumerate(shape) if i not in axes))


def bcoo_sort_indices(mat: BCOO) -> BCOO:
    """``mat`` with each batch's indices in lexicographic order (data permuted along)."""
    if mat.n_sparse == 0:
        return mat

    def sort(ind):
        cols = [ind[:, k] for k in range(ind.shape[1])]
        *cols, perm = lax.sort((*cols, lax.iota(np.int32, ind.shape[0])), num_keys=len(cols))
        return jnp.stack(cols, 1), perm
    indices, perm = _nfold_vmap(sort, mat.n_batch)(mat.indices)
    data = _nfold_vmap(lambda d, p: d[p], mat.n_batch)(mat.data, perm)
    return BCOO((data, indices), shape=mat.shape, indices_sorted=True,
                unique_indices=mat.unique_indices)


def bcoo_sum_duplicates(mat: BCOO, nse: int | None = None) -> BCOO:
    """``mat`` with sorted, unique indices, the data of repeated indices summed.

    ``nse`` defaults to the largest count of distinct in-range indices over the batches
    (concrete values only); a smaller one drops entries, a larger one pads.
    """
    nb, ns, shape = mat.n_batch, mat.n_sparse, mat.shape
    fill = jnp.asarray(shape[nb:nb + ns], mat.indices.dtype)

    def unique(ind):
        ind = jnp.where((ind >= fill).any(-1, keepdims=True), fill, ind)
        out, inverse = jnp.unique(ind, axis=0, size=ind.shape[0], fill_value=fill,
                                  return_inverse=True)
        return out, inverse.reshape(-1)
    if ns == 0:
        out_nse = 1 if nse is None else nse
        data = mat.data.sum(nb, keepdims=True)
        indices = jnp.zeros(mat.indices.shape[:nb] + (1, 0), mat.indices.dtype)
        inverse = jnp.zeros(mat.indices.shape[:nb] + (1,), np.int32)
    else:
        indices, inverse = _nfold_vmap(unique, nb)(mat.indices)
        data = mat.data
        if nse is None:
            ind = _concrete(mat.indices, "bcoo_sum_duplicates").reshape(-1, mat.nse, ns)
            fill_np = np.asarray(shape[nb:nb + ns])
            out_nse = max([len({tuple(r) for r in b if (r < fill_np).all()}) for b in ind],
                          default=0)
        else:
            out_nse = nse
    out_nse = static_ints(out_nse, "bcoo_sum_duplicates", "nse")[0]
    if out_nse <= indices.shape[-2]:
        indices = indices[..., :out_nse, :]
    else:
        pad = jnp.broadcast_to(fill, indices.shape[:-2] + (out_nse - indices.shape[-2], ns))
        indices = jnp.concatenate([indices, pad], -2)

    def scatter(d, i):
        return jnp.zeros((out_nse,) + d.shape[1:], d.dtype).at[i].add(d, mode="drop")
    data = _nfold_vmap(scatter, nb)(data, inverse)
    return BCOO((data, indices), shape=shape, indices_sorted=True, unique_indices=True)


def bcoo_eliminate_zeros(mat: BCOO, nse: int | None = None) -> BCOO:
    """``bcoo_sum_duplicates`` after moving entries whose data is all zero to padding."""
    nb = mat.n_batch
    zero = (mat.data == 0).all(tuple(range(nb + 1, mat.data.ndim)))
    fill = jnp.asarray(mat.shape[nb:nb + mat.n_sparse], mat.indices.dtype)
    zero = jnp.broadcast_to(zero, jnp.broadcast_shapes(zero.shape, mat.indices.shape[:-1]))
    indices = jnp.where(zero[..., None], fill, mat.indices)
    return bcoo_sum_duplicates(BCOO((mat.data, indices), shape=mat.shape), nse=nse)


# --------------------------------------------------------------------------- products

def bcoo_multiply_dense(sp_mat: BCOO, v: Any) -> Any:
    """The data of ``sp_mat * v`` (``v`` dense, broadcasting to ``sp_mat.shape``): a new
    ``data`` for ``sp_mat``'s indices, as in jax."""
    v = jnp.asarray(v)
    shape = sp_mat.shape
    if v.ndim == 0:
        return sp_mat.data * v
    if v.shape == shape:
        return sp_mat.data * bcoo_extract_p.bind(sp_mat.indices, v)
    if np.broadcast_shapes(v.shape, shape) != shape:
        raise NotImplementedError(f"bcoo_multiply_dense: v of shape {v.shape} must broadcast "
                                  f"to the sparse shape {shape}")
    v = lax.expand_dims(v, tuple(range(len(shape) - v.ndim)))

    def mul(data, ind, v):
        where = tuple(ind[:, k] if v.shape[k] != 1 else jnp.zeros_like(ind[:, k])
                      for k in range(ind.shape[1]))
        return data * v[where]
    return _nfold_vmap(mul, sp_mat.n_batch)(sp_mat.data, sp_mat.indices, v)


def _dot_out_aval(lhs_shape: tuple, rhs_shape: tuple, dtype: Any, dn: tuple,
                  preferred: Any) -> ShapedArray:
    """The dense result type of the contraction, or an error naming bcoo_dot_general."""
    try:
        return dot_general_p.abstract_eval(
            ShapedArray(lhs_shape, dtype), ShapedArray(rhs_shape, dtype), dimension_numbers=dn,
            precision=None, preferred_element_type=preferred)
    except (TypeError, ValueError) as e:
        raise type(e)(f"bcoo_dot_general: {e}") from None


def _canonical_dn(dimension_numbers: Any) -> tuple:
    (lc, rc), (lb, rb) = dimension_numbers
    return tuple(tuple(static_ints(d, "bcoo_dot_general", "dimension_numbers"))
                 for d in (lc, rc)), tuple(
        tuple(static_ints(d, "bcoo_dot_general", "dimension_numbers")) for d in (lb, rb))


def bcoo_dot_general(lhs: Any, rhs: Any, *, dimension_numbers: Any, precision: Any = None,
                     preferred_element_type: Any = None) -> Any:
    """``lax.dot_general`` with a BCOO operand on either side; the result is dense.

    The sparse operand's batch dimensions of the contraction must be among its BCOO batch
    dimensions, and its contracting dimensions must not be dense ones (as in jax).
    """
    del precision
    if isinstance(lhs, BCOO) and isinstance(rhs, BCOO):
        raise NotImplementedError("bcoo_dot_general: both operands sparse (bcoo_spdot_general) "
                                  "is not implemented in fungrad")
    if isinstance(rhs, BCOO):
        return bcoo_rdot_general(lhs, rhs, dimension_numbers=dimension_numbers,
                                 preferred_element_type=preferred_element_type)
    if not isinstance(lhs, BCOO):
        return lax.dot_general(lhs, rhs, dimension_numbers,
                               preferred_element_type=preferred_element_type)
    return _spdense(lhs, jnp.asarray(rhs), _canonical_dn(dimension_numbers),
                    preferred_element_type)


def bcoo_rdot_general(lhs: Any, rhs: BCOO, *, dimension_numbers: Any,
                      preferred_element_type: Any = None) -> Any:
    """``lax.dot_general(lhs, rhs)`` for dense ``lhs`` and BCOO ``rhs``: the sparse
    product with the operands swapped, its free dimensions moved back in order."""
    (lc, rc), (lb, rb) = _canonical_dn(dimension_numbers)
    out = _spdense(rhs, jnp.asarray(lhs), ((rc, lc), (rb, lb)), preferred_element_type)
    n_batch, n_rhs_free = len(lb), rhs.ndim - len(rc) - len(rb)
    perm = (*range(n_batch), *range(n_batch + n_rhs_free, out.ndim),
            *range(n_batch, n_batch + n_rhs_free))
    return lax.transpose(out, perm)


def _spdense(lhs: BCOO, rhs: Any, dn: tuple, preferred: Any) -> Any:
    """BCOO ``lhs`` contracted with dense ``rhs``: for each batch element, gather the rows
    of ``rhs`` at the contracting indices, multiply by the data and add the products at
    the free indices. Derivatives come from the gather/scatter primitives used."""
    (lc, rc), (lb, rb) = dn
    nb, ns = lhs.n_batch, lhs.n_sparse
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"bcoo_dot_general: operands must have one dtype, got {lhs.dtype} and "
                        f"{rhs.dtype} (promote them first, as the @ operator does)")
    out_aval = _dot_out_aval(lhs.shape, rhs.shape, lhs.dtype, dn, preferred)
    if any(d >= nb for d in lb):
        raise NotImplementedError("bcoo_dot_general: the sparse operand's batch dimensions "
                                  f"{lb} must be among its n_batch={nb} BCOO batch dimensions")
    if any(d >= nb + ns for d in lc):
        raise NotImplementedError("bcoo_dot_general: contracting over dense dimensions")
    pairs_b = [(a, b) for a, b in zip(lc, rc) if a < nb]      # contracted batch dims
    pairs_s = [(a - nb, b) for a, b in zip(lc, rc) if a >= nb]   # contracted sparse dims
    cb = [a for a, _ in pairs_b]
    free_b = [d for d in range(nb) if d not in lb and d not in cb]
    bperm = (*lb, *free_b, *cb)
    data = lax.transpose(lhs.data, bperm + tuple(range(nb, lhs.data.ndim)))
    indices = lax.transpose(lhs.indices, bperm + (nb, nb + 1))
    s_contract = [a for a, _ in pairs_s]
    s_free = [k for k in range(ns) if k not in s_contract]
    if s_contract:
        indices = indices[..., np.array(s_contract + s_free, np.int32)]
    rhs_rest = [d for d in range(rhs.ndim) if d not in rb and d not in rc]
    rhs = lax.transpose(rhs, (*rb, *[b for _, b in pairs_b], *[b for _, b in pairs_s],
                              *rhs_rest))
    n_map = nb - len(cb)                 # mapped: the contraction's batch dims, then free ones
    rhs = lax.expand_dims(rhs, tuple(range(len(rb), n_map)))
    out_dtype = out_aval.dtype
    n_cs, n_cb = len(s_contract), len(cb)

    def one(out, data, ind, rhs):
        # data: cb + (nse,) + dense; ind: cb + (nse, ns); rhs: cb + contracted sparse + rest
        cols = [ind[..., k] for k in range(ns)]
        if n_cs:
            grid = tuple(lax.broadcasted_iota(np.int32, ind.shape[:-1], k) for k in range(n_cb))
            rows = rhs.at[grid + tuple(cols[:n_cs])].get(mode="fill", fill_value=0)
            bdims = tuple(range(n_cb + 1))
        else:
            rows, bdims = rhs, tuple(range(n_cb))
        # prod: cb + (nse,) + dense + rest, summed into out at the free sparse indices
        prod = lax.dot_general(data, rows, (((), ()), (bdims, bdims)),
                               preferred_element_type=preferred)
        if cols[n_cs:]:
            return out.at[tuple(cols[n_cs:])].add(prod.astype(out_dtype), mode="drop")
        return prod.sum(tuple(range(prod.ndim - out.ndim))).astype(out_dtype)
    out = jnp.zeros(out_aval.shape, out_dtype)
    return _nfold_vmap(one, n_map)(out, data, indices, rhs)
