"""Products: ``matmul``, ``dot``, ``vdot``, ``vecdot``, ``inner``, ``outer``,
``tensordot``, ``kron``, ``cross``, all lowered to one ``lax.dot_general`` (plus
reshapes/transposes) where a contraction is involved."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.array import Array
from fungrad.config import config
from fungrad.lax._placement import with_out_sharding
from fungrad.lax.dot import BLAS_DTYPES
from fungrad.numpy._shape import moveaxis
from fungrad.numpy._ufuncs import multiply, subtract
from fungrad.numpy._ufuncs_math import conjugate
from fungrad.numpy._util import (aval, canonicalize_axis, ensure_arraylike, preferred_dtype,
                                 promote_dtypes)
from fungrad.numpy._joining import stack


def _prepare(fname: str, a: Any, b: Any, preferred_element_type: Any) -> tuple:
    """Promote ``a`` and ``b``; return them, the result dtype and its weak type."""
    if (type(a) is Array and type(b) is Array and preferred_element_type is None
            and a._value.dtype == b._value.dtype):  # the eager hot path: nothing to promote
        return a, b, a._value.dtype, a.weak_type and b.weak_type
    a, b = ensure_arraylike(fname, a, b)
    dt, weak = dtypes.result_type(a, b, return_weak_type_flag=True)
    a, b = (lax.convert_element_type(x, dt) for x in (a, b))
    pref = preferred_dtype(preferred_element_type, dt, fname)
    return a, b, (dt if pref is None else pref), (weak if pref is None else False)


def _dot_general(a: Any, b: Any, dims: Any, precision: Any, out_dtype: np.dtype,
                 weak: bool, canonical: bool = False) -> Any:
    """``lax.dot_general`` computing in/returning ``out_dtype`` with weak type ``weak``;
    ``canonical=True`` means ``dims`` are tuples of ints already (bound directly, unless a
    ``precision``, given or the configured default, asks for what ``lax.dot_general``
    arranges, such as a dot algorithm)."""
    preferred = out_dtype if out_dtype != aval(a).dtype else None
    if canonical and precision is None and config.default_matmul_precision is None:
        out = lax.dot_general_p.bind(a, b, dimension_numbers=dims, precision=None,
                                     preferred_element_type=preferred)
    else:
        out = lax.dot_general(a, b, dims, precision=precision, preferred_element_type=preferred)
    return lax.convert_element_type(out, out_dtype, weak)


_MATRIX_PRODUCT = (((1,), (0,)), ((), ()))


def matmul(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None,
           out_sharding: Any = None) -> Any:
    """Matrix product with NumPy's broadcasting of leading (batch) dimensions.

    Batch dimensions of size 1 on one side are not materialised: they become free
    dimensions of the other operand, so ``(B, T, d) @ (d, h)`` is one plain contraction.
    ``out_sharding`` puts the result on a device (see ``fungrad.lax._placement``; None
    leaves it where the operation runs).
    """
    if out_sharding is not None:
        out = matmul(a, b, precision=precision, preferred_element_type=preferred_element_type)
        return with_out_sharding(out, out_sharding, "jnp.matmul")
    if (type(a) is Array and type(b) is Array and precision is None
            and config.default_matmul_precision is None
            and preferred_element_type is None and a._value.ndim == 2 == b._value.ndim
            and a._value.dtype == b._value.dtype and a._value.dtype in BLAS_DTYPES
            and a._value.shape[1] == b._value.shape[0]):
        # the eager hot path: a plain matrix product, nothing to promote or rearrange
        return lax.dot_general_p.bind(a, b, dimension_numbers=_MATRIX_PRODUCT, precision=None,
                                      preferred_element_type=None)
    a, b, out_dtype, weak = _prepare("matmul", a, b, preferred_element_type)
    a_squeeze, b_squeeze, dims, perm = _matmul_plan(aval(a).shape, aval(b).shape)
    if a_squeeze:
        a = lax.squeeze(a, a_squeeze)
    if b_squeeze:
        b = lax.squeeze(b, b_squeeze)
    out = _dot_general(a, b, dims, precision, out_dtype, weak, canonical=True)
    return out if perm is None else lax.transpose(out, perm)


@functools.lru_cache(maxsize=1024)
def _matmul_plan(a_shape: tuple, b_shape: tuple) -> tuple:
    """``matmul`` of these shapes as one ``dot_general``: the size-1 batch dimensions to
    squeeze from each side, the dimension numbers, and the output permutation (None when
    it is the identity). Cached per shape pair: eager calls skip the bookkeeping."""
    for i, s in enumerate((a_shape, b_shape)):
        if not s:
            raise ValueError(f"matmul: input operand {i} must have ndim at least 1, but it has "
                             "ndim 0")
    a_mat, b_mat = len(a_shape) > 1, len(b_shape) > 1
    k_a = a_shape[-1]
    k_b = b_shape[-2] if b_mat else b_shape[0]
    if k_a != k_b:
        raise TypeError(f"matmul: contracting dimensions differ: lhs shape {a_shape} and rhs "
                        f"shape {b_shape} ({k_a} != {k_b})")
    a_batch = a_shape[:-2] if a_mat else ()
    b_batch = b_shape[:-2] if b_mat else ()
    nb = max(len(a_batch), len(b_batch))
    a_pad = (None,) * (nb - len(a_batch)) + a_batch
    b_pad = (None,) * (nb - len(b_batch)) + b_batch
    a_squeeze, b_squeeze = [], []          # batch dims of size 1 dropped from one side
    a_bdims, b_bdims = [], []              # true batch dims (positions after squeezing)
    out_src = []                            # where each output batch dim comes from
    a_pos = b_pos = 0
    for i, (da, db) in enumerate(zip(a_pad, b_pad)):
        if da is not None and db is not None and da == db:
            a_bdims.append(a_pos), b_bdims.append(b_pos)
            out_src.append(("batch", len(a_bdims) - 1))
            a_pos, b_pos = a_pos + 1, b_pos + 1
        elif da is None or (da == 1 and db is not None):
            if da is not None:
                a_squeeze.append(i - (nb - len(a_batch)))
            out_src.append(("b", b_pos))
            b_pos += 1
        elif db is None or db == 1:
            if db is not None:
                b_squeeze.append(i - (nb - len(b_batch)))
            out_src.append(("a", a_pos))
            a_pos += 1
        else:
            raise ValueError(f"matmul: incompatible batch dimensions: lhs shape {a_shape} and "
                             f"rhs shape {b_shape}")
    a_nd, b_nd = len(a_shape) - len(a_squeeze), len(b_shape) - len(b_squeeze)
    contract = ((a_nd - 1,), ((b_nd - 2) if b_mat else 0,))
    # dot_general output: batch dims, then a's free dims, then b's free dims
    n_batch = len(a_bdims)
    a_free = [d for d in range(a_nd) if d not in a_bdims and d != a_nd - 1]
    b_free = [d for d in range(b_nd) if d not in b_bdims and d != contract[1][0]]
    a_free_pos = {d: n_batch + j for j, d in enumerate(a_free)}
    b_free_pos = {d: n_batch + len(a_free) + j for j, d in enumerate(b_free)}
    perm = []
    for kind, p in out_src:
        perm.append(p if kind == "batch" else a_free_pos[p] if kind == "a" else b_free_pos[p])
    if a_mat:
        perm.append(a_free_pos[a_nd - 2])
    if b_mat:
        perm.append(b_free_pos[b_nd - 1])
    perm = tuple(perm)
    return (tuple(a_squeeze), tuple(b_squeeze), (contract, (tuple(a_bdims), tuple(b_bdims))),
            None if perm == tuple(range(len(perm))) else perm)


def dot(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None,
        out_sharding: Any = None) -> Any:
    """NumPy ``dot``: products of scalars, inner products of vectors, matrix products, and
    the contraction of ``a``'s last axis with ``b``'s second-to-last for N-d arrays.
    ``out_sharding`` puts the result on a device, as in ``matmul``."""
    a, b, out_dtype, weak = _prepare("dot", a, b, preferred_element_type)
    a_nd, b_nd = aval(a).ndim, aval(b).ndim
    if a_nd == 0 or b_nd == 0:
        out = lax.convert_element_type(lax.mul(a, b), out_dtype, weak)
    else:
        b_axis = 0 if b_nd == 1 else b_nd - 2
        if aval(a).shape[-1] != aval(b).shape[b_axis]:
            raise TypeError(f"dot: shapes {aval(a).shape} and {aval(b).shape} not aligned: "
                            f"{aval(a).shape[-1]} (dim {a_nd - 1}) != {aval(b).shape[b_axis]} "
                            f"(dim {b_axis})")
        out = _dot_general(a, b, (((a_nd - 1,), (b_axis,)), ((), ())), precision, out_dtype,
                           weak)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "jnp.dot")


def vdot(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """Dot product of the flattened arrays, conjugating ``a``."""
    a, b = ensure_arraylike("vdot", a, b)
    a = conjugate(a)
    return dot(lax.reshape(a, (aval(a).size,)), lax.reshape(b, (aval(b).size,)),
               precision=precision, preferred_element_type=preferred_element_type)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1, precision: Any = None,
           preferred_element_type: Any = None) -> Any:
    """Batched vector dot product along ``axis`` (conjugating ``x1``), broadcasting the rest."""
    x1, x2 = ensure_arraylike("vecdot", x1, x2)
    s1, s2 = aval(x1).shape, aval(x2).shape
    ax1, ax2 = canonicalize_axis(axis, len(s1), "vecdot"), canonicalize_axis(axis, len(s2),
                                                                              "vecdot")
    if s1[ax1] != s2[ax2]:
        raise ValueError(f"vecdot: axes must match; got shapes {s1} and {s2} with axis={axis}")
    x1, x2 = moveaxis(conjugate(x1), ax1, -1), moveaxis(x2, ax2, -1)
    out = matmul(lax.expand_dims(x1, (aval(x1).ndim - 1,)), lax.expand_dims(x2, (aval(x2).ndim,)),
                 precision=precision, preferred_element_type=preferred_element_type)
    return lax.reshape(out, aval(out).shape[:-2])


def matvec(x1: Any, x2: Any, /) -> Any:
    """Batched matrix-vector product: ``x1[..., n, m]`` times ``x2[..., m]`` is ``[..., n]``,
    the leading (batch) dimensions broadcast."""
    x1, x2 = ensure_arraylike("matvec", x1, x2)
    if aval(x1).ndim < 2 or aval(x2).ndim < 1:
        raise ValueError(f"matvec: x1 must have at least 2 dimensions and x2 at least 1; got "
                         f"shapes {aval(x1).shape} and {aval(x2).shape}")
    out = matmul(x1, lax.expand_dims(x2, (aval(x2).ndim,)))
    return lax.reshape(out, aval(out).shape[:-1])


def vecmat(x1: Any, x2: Any, /) -> Any:
    """Batched vector-matrix product, conjugating the vector: ``conj(x1[..., n])`` times
    ``x2[..., n, m]`` is ``[..., m]``, the leading (batch) dimensions broadcast."""
    x1, x2 = ensure_arraylike("vecmat", x1, x2)
    if aval(x1).ndim < 1 or aval(x2).ndim < 2:
        raise ValueError(f"vecmat: x1 must have at least 1 dimension and x2 at least 2; got "
                         f"shapes {aval(x1).shape} and {aval(x2).shape}")
    x1 = conjugate(x1)
    out = matmul(lax.expand_dims(x1, (aval(x1).ndim - 1,)), x2)
    return lax.reshape(out, aval(out).shape[:-2] + aval(out).shape[-1:])


def tensordot(a: Any, b: Any, axes: Any = 2, *, precision: Any = None,
              preferred_element_type: Any = None, out_sharding: Any = None) -> Any:
    """Contract ``axes`` of ``a`` with ``axes`` of ``b`` (an int n: a's last n with b's first
    n; or a pair of axis lists). ``out_sharding`` puts the result on a device, as in
    ``matmul``."""
    a, b, out_dtype, weak = _prepare("tensordot", a, b, preferred_element_type)
    a_nd, b_nd = aval(a).ndim, aval(b).ndim
    if isinstance(axes, (int, np.integer)):
        if axes > min(a_nd, b_nd) or axes < 0:
            raise TypeError(f"tensordot: number of axes {axes} exceeds input ranks "
                            f"({aval(a).shape} and {aval(b).shape})")
        dims = (tuple(range(a_nd - axes, a_nd)), tuple(range(axes)))
    elif isinstance(axes, (tuple, list)) and len(axes) == 2:
        ax1, ax2 = axes
        ax1 = (ax1,) if isinstance(ax1, (int, np.integer)) else tuple(ax1)
        ax2 = (ax2,) if isinstance(ax2, (int, np.integer)) else tuple(ax2)
        if len(ax1) != len(ax2):
            raise TypeError(f"tensordot requires axes lists to have equal length, got {ax1} "
                            f"and {ax2}")
        dims = (tuple(canonicalize_axis(i, a_nd, "tensordot") for i in ax1),
                tuple(canonicalize_axis(i, b_nd, "tensordot") for i in ax2))
    else:
        raise TypeError("tensordot: axes must be an int, a pair of ints, or a pair of "
                        "sequences of ints")
    for i, j in zip(*dims):
        if aval(a).shape[i] != aval(b).shape[j]:
            raise TypeError(f"tensordot: shape mismatch for contraction: lhs shape "
                            f"{aval(a).shape} axis {i} vs rhs shape {aval(b).shape} axis {j}")
    out = _dot_general(a, b, (dims, ((), ())), precision, out_dtype, weak)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "jnp.tensordot")


def inner(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """Contraction of the last axes of ``a`` and ``b`` (scalars multiply)."""
    a, b = ensure_arraylike("inner", a, b)
    if aval(a).ndim == 0 or aval(b).ndim == 0:
        return multiply(a, b)
    return tensordot(a, b, (-1, -1), precision=precision,
                     preferred_element_type=preferred_element_type)


def outer(a: Any, b: Any, out: None = None) -> Any:
    """``a.ravel()[:, None] * b.ravel()[None, :]``."""
    a, b = promote_dtypes(*ensure_arraylike("outer", a, b))
    return lax.mul(lax.reshape(a, (aval(a).size, 1)), lax.reshape(b, (1, aval(b).size)))


def kron(a: Any, b: Any) -> Any:
    """Kronecker product."""
    a, b = promote_dtypes(*ensure_arraylike("kron", a, b))
    nd = max(aval(a).ndim, aval(b).ndim)
    a = lax.reshape(a, (1,) * (nd - aval(a).ndim) + aval(a).shape)
    b = lax.reshape(b, (1,) * (nd - aval(b).ndim) + aval(b).shape)
    sa, sb = aval(a).shape, aval(b).shape
    a_e = lax.reshape(a, tuple(x for d in sa for x in (d, 1)))
    b_e = lax.reshape(b, tuple(x for d in sb for x in (1, d)))
    return lax.reshape(lax.mul(a_e, b_e), tuple(x * y for x, y in zip(sa, sb)))


def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: int | None = None) -> Any:
    """Cross product of 2- or 3-vectors along the given axes (broadcasting the rest)."""
    a, b = promote_dtypes(*ensure_arraylike("cross", a, b))
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    na, nb = aval(a).shape[-1], aval(b).shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("cross: dimension must be either 2 or 3")

    def comp(x: Any, i: int) -> Any:
        n = aval(x).shape[-1]
        if i >= n:
            return lax.full(aval(x).shape[:-1], 0, aval(x).dtype)
        return lax.squeeze(lax.slice(x, (0,) * (aval(x).ndim - 1) + (i,),
                                     aval(x).shape[:-1] + (i + 1,)), (aval(x).ndim - 1,))
    a0, a1, a2 = (comp(a, i) for i in range(3))
    b0, b1, b2 = (comp(b, i) for i in range(3))
    c2 = subtract(multiply(a0, b1), multiply(a1, b0))
    if na == 2 and nb == 2:
        return c2
    c0 = subtract(multiply(a1, b2), multiply(a2, b1))
    c1 = subtract(multiply(a2, b0), multiply(a0, b2))
    return moveaxis(stack([c0, c1, c2], -1), -1, axisc)


__all__ = ["matmul", "matvec", "vecmat", "dot", "vdot", "vecdot", "tensordot", "inner", "outer",
           "kron", "cross"]
