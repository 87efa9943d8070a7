"""``lax.scaled_dot``: a ``dot_general`` of operands multiplied by block scales (MXFP8,
NVFP4 and other microscaling formats), as ``jax.lax.scaled_dot``.

Each operand comes with a scale of the same rank: equal along its batch and free dimensions,
and along each contracting dimension smaller by an integer factor of at least 2 (the block
size), one scale per block of consecutive elements. The result is
``dot_general(lhs * expand(lhs_scale), rhs * expand(rhs_scale))`` where ``expand`` repeats
each scale over its block; the operands and scales are converted to bfloat16 and multiplied
there, then contracted with ``preferred_element_type`` accumulation, as XLA computes the op
where no fused kernel replaces it (JAX's CPU path). A composite of ``lax`` primitives, so
``vmap`` and ``jit`` apply; it is differentiable too, where JAX's ``scaled_dot`` has no
derivative rules.
"""
from __future__ import annotations

from typing import Any, Sequence

from fungrad._core import dtypes
from fungrad.lax._prim import as_operand
from fungrad.lax.dot import dot_general
from fungrad.lax.elementwise import mul
from fungrad.lax.shapes import broadcast_in_dim, convert_element_type, reshape

__all__ = ["scaled_dot"]


def _check_scale(side: str, shape: tuple, scale_shape: tuple, contracting: Sequence[int]
                 ) -> None:
    """JAX's checks of one operand against its scale (``TypeError``s naming the side)."""
    for i, size in enumerate(shape):
        if i in contracting:
            if size % scale_shape[i]:
                raise TypeError(f"scaled_dot: {side} contracting dim {i} of size {size} must "
                                f"be divisible by its scale's dim size {scale_shape[i]}.")
            if size // scale_shape[i] < 2:
                raise TypeError(f"scaled_dot: the ratio of {side} contracting dim {i} to its "
                                f"scale's dim size ({size // scale_shape[i]}) must be at "
                                "least 2.")
        elif scale_shape[i] != size:
            raise TypeError(f"scaled_dot: {side} dim {i} of size {size} does not match scale "
                            f"dim size {scale_shape[i]}.")


def _check(lhs: Any, rhs: Any, lhs_scale: Any, rhs_scale: Any, dnums: tuple) -> None:
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dnums
    ranks = (lhs.ndim, rhs.ndim, lhs_scale.ndim, rhs_scale.ndim)
    if len(set(ranks)) != 1:
        raise TypeError(f"scaled_dot: all input tensors must have the same rank. Got lhs rank: "
                        f"{ranks[0]} rhs rank: {ranks[1]} lhs_scale rank: {ranks[2]} "
                        f"rhs_scale rank: {ranks[3]}.")
    if len(lhs_batch) != len(rhs_batch):
        raise TypeError("scaled_dot: LHS and RHS must have the same number of batch "
                        f"dimensions, got {len(lhs_batch)} and {len(rhs_batch)}.")
    if len(lhs_contract) != len(rhs_contract):
        raise TypeError("scaled_dot: LHS and RHS must have the same number of contracting "
                        f"dimensions, got {len(lhs_contract)} and {len(rhs_contract)}.")
    for i, j in zip(lhs_batch, rhs_batch):
        sizes = {lhs.shape[i], rhs.shape[j], lhs_scale.shape[i], rhs_scale.shape[j]}
        if len(sizes) != 1:
            raise TypeError("scaled_dot: all input tensors must have the same batch dimension "
                            f"size for batch dims ({i}, {j}).")
    for i, j in zip(lhs_contract, rhs_contract):
        if lhs.shape[i] != rhs.shape[j]:
            raise TypeError(f"scaled_dot: LHS contracting dim {i} of size {lhs.shape[i]} does "
                            f"not match RHS contracting dim {j} of size {rhs.shape[j]}.")
    _check_scale("LHS", lhs.shape, lhs_scale.shape, lhs_contract)
    _check_scale("RHS", rhs.shape, rhs_scale.shape, rhs_contract)


def _expand(scale: Any, shape: tuple, contracting: Sequence[int]) -> Any:
    """``scale`` with each element repeated over its block of each contracting dimension,
    so that it has the operand's ``shape`` (a broadcast into a new block axis, merged)."""
    for i in contracting:
        block = shape[i] // scale.shape[i]
        if block == 1:
            continue
        split = scale.shape[:i + 1] + (block,) + scale.shape[i + 1:]
        dims = tuple(d if d <= i else d + 1 for d in range(scale.ndim))
        scale = broadcast_in_dim(scale, split, dims)
        scale = reshape(scale, split[:i] + (split[i] * block,) + split[i + 2:])
    return scale


def scaled_dot(lhs: Any, rhs: Any, *, lhs_scale: Any = None, rhs_scale: Any = None,
               dimension_numbers: Any = None, preferred_element_type: Any = None) -> Any:
    """``dot_general(lhs * lhs_scale, rhs * rhs_scale)`` with block scales (``jax.lax``'s).

    Args:
        lhs, rhs: the operands (typically ``float8_e4m3fn``, ``float8_e5m2`` or
            ``float4_e2m1fn``).
        lhs_scale, rhs_scale: one scale per block (typically ``float8_e8m0fnu``): same rank
            as the operand, the same sizes except along the contracting dimensions, which
            they divide with a quotient (the block size) of at least 2. None: ones, one
            per whole contracting dimension.
        dimension_numbers: ``((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch))``;
            None contracts the last dimension of ``lhs`` with the one before last of ``rhs``
            and batches the others (operands of rank 2 or more).
        preferred_element_type: the result's dtype and the accumulation's (default
            bfloat16).

    Raises ``TypeError`` naming the dimension when the shapes do not fit, as JAX does.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import lax
        >>> x = jnp.ones((2, 4), jnp.float8_e4m3fn)
        >>> s = jnp.array([[1.0, 4.0], [2.0, 2.0]]).astype(jnp.float8_e8m0fnu)
        >>> lax.scaled_dot(x, x.T, lhs_scale=s, rhs_scale=jnp.ones((2, 2), jnp.float8_e8m0fnu),
        ...                preferred_element_type=jnp.float32)
        Array([[10., 10.],
               [ 8.,  8.]], dtype=float32)
    """
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    bfloat16 = dtypes.load_ml_dtypes().bfloat16
    if dimension_numbers is None:
        if lhs.ndim < 2:
            raise TypeError("scaled_dot does not support 0-rank and 1-rank operands.")
        n = lhs.ndim
        dimension_numbers = (((n - 1,), (n - 2,)), (tuple(range(n - 2)),) * 2)
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    dnums = ((tuple(lhs_contract), tuple(rhs_contract)), (tuple(lhs_batch), tuple(rhs_batch)))
    scales = []
    for name, operand, scale, contract in (("lhs_scale", lhs, lhs_scale, dnums[0][0]),
                                           ("rhs_scale", rhs, rhs_scale, dnums[0][1])):
        if scale is None:
            ones_shape = tuple(1 if d in contract else s for d, s in enumerate(operand.shape))
            e8m0 = dtypes.load_ml_dtypes().float8_e8m0fnu
            scale = broadcast_in_dim(convert_element_type(1.0, e8m0), ones_shape, ())
        scales.append(as_operand(scale))
    lhs_scale, rhs_scale = scales
    _check(lhs, rhs, lhs_scale, rhs_scale, dnums)
    out_dtype = dtypes.canonicalize_dtype(
        bfloat16 if preferred_element_type is None else preferred_element_type)
    scaled = [mul(convert_element_type(x, bfloat16),
                  convert_element_type(_expand(s, x.shape, c), bfloat16))
              for x, s, c in ((lhs, lhs_scale, dnums[0][0]), (rhs, rhs_scale, dnums[0][1]))]
    return dot_general(scaled[0], scaled[1], dnums, preferred_element_type=out_dtype)
