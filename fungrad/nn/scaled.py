"""Block-scaled matmuls (``jax.nn.scaled_matmul``, ``scaled_dot_general`` and
``get_scaled_dot_general_config``): microscaling formats such as MXFP8 (float8 values with
one power-of-two ``float8_e8m0fnu`` scale per 32 elements) and NVFP4 (``float4_e2m1fn``
values with one ``float8_e4m3fn`` scale per 16 elements and a float32 global scale).

``scaled_matmul`` multiplies operands that are already quantized: each value times its
block's scale, contracted over the last dimension in float32 (JAX's "compute type fixed to
float32"). JAX runs it only as a cuDNN kernel on GPUs (its CPU path raises
``NotImplementedError``); fungrad computes the same numbers on every backend, as a composite
that ``grad`` and ``vmap`` go through (JAX's has no derivative rule).

``scaled_dot_general`` takes unquantized operands: it normalises each to ``(batch, rows,
contracting)``, quantizes it by the config (per block, the largest magnitude over the format's
largest value gives the scale: rounded up to a power of two for MXFP8, clipped to float8 for
NVFP4 after dividing by the global scale), multiplies with ``scaled_matmul`` and restores
``dot_general``'s output layout. Its gradient is JAX's custom VJP: each operand's cotangent is
itself a scaled matmul of the quantized output cotangent (``configs[2]``) with the other
operand (quantized with its own config), for NVFP4 an unquantized matmul zeroed where the
forward pass clipped (a straight-through estimator).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Literal, Sequence

import numpy as np

from fungrad import lax
from fungrad import numpy as jnp
from fungrad._core import dtypes
from fungrad.numpy._util import check_user_dtype
from fungrad.transforms.custom_derivatives import custom_vjp

__all__ = ["BlockScaleConfig", "get_scaled_dot_general_config", "scaled_dot_general",
           "scaled_matmul"]


@dataclasses.dataclass(slots=True)
class BlockScaleConfig:
    """How ``scaled_dot_general`` quantizes one operand: ``mode`` (``"mxfp8"`` or
    ``"nvfp4"``), ``block_size`` (elements per scale), ``data_type`` and ``scale_type``
    (the dtypes of the values and the scales), ``global_scale`` (NVFP4's float32 array of
    shape ``(1,)``; None for MXFP8) and ``infer_only`` (kept for JAX's API)."""
    mode: str
    block_size: int
    data_type: Any
    scale_type: Any
    global_scale: Any
    infer_only: bool


def _ml() -> Any:
    return dtypes.load_ml_dtypes()


def get_scaled_dot_general_config(mode: Literal["nvfp4", "mxfp8"],
                                  global_scale: Any = None) -> BlockScaleConfig:
    """The ``BlockScaleConfig`` of ``mode``: MXFP8 (``float8_e4m3fn`` values, a
    ``float8_e8m0fnu`` scale per 32) or NVFP4 (``float4_e2m1fn`` values, a ``float8_e4m3fn``
    scale per 16, and ``global_scale``, default ``ones((1,), float32)``).

    Examples:
        >>> import fungrad
        >>> fungrad.nn.get_scaled_dot_general_config("mxfp8").block_size
        32
    """
    if mode == "nvfp4":
        scale = jnp.ones((1,), np.float32) if global_scale is None else global_scale
        return BlockScaleConfig("nvfp4", 16, _ml().float4_e2m1fn, _ml().float8_e4m3fn, scale,
                                False)
    if mode == "mxfp8":
        return BlockScaleConfig("mxfp8", 32, _ml().float8_e4m3fn, _ml().float8_e8m0fnu, None,
                                False)
    raise ValueError(f"get_scaled_dot_general_config: unsupported mode {mode!r} (expected "
                     "'nvfp4' or 'mxfp8')")


# --------------------------------------------------------------------------- scaled_matmul

def _dequantized(x: Any, scales: Any) -> Any:
    """``x * repeat(scales, block, axis=-1)`` in float32, ``x`` of shape ``(B, R, K)``."""
    b, r, k = x.shape
    nblocks = scales.shape[-1]
    x = jnp.reshape(x.astype(np.float32), (b, r, nblocks, k // nblocks))
    return jnp.reshape(x * scales.astype(np.float32)[..., None], (b, r, k))


def scaled_matmul(lhs: Any, rhs: Any, lhs_scales: Any, rhs_scales: Any,
                  preferred_element_type: Any = np.float32) -> Any:
    """The block-scaled matmul ``einsum('BMK,BNK->BMN', lhs * expand(lhs_scales), rhs *
    expand(rhs_scales))``, where ``expand`` repeats each scale over its block of ``K //
    scales.shape[-1]`` consecutive elements; products and sums in float32, the result in
    ``preferred_element_type``.

    Args:
        lhs: ``(B, M, K)``. rhs: ``(B, N, K)``.
        lhs_scales: ``(B, M, K_s)``. rhs_scales: ``(B, N, K_s)``, ``K % K_s == 0``.
        preferred_element_type: the result's dtype (default float32).

    Raises ``ValueError`` (JAX's messages) when an input is not 3-D or the shapes disagree.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> a = jnp.array([1.0, 2.0, 3.0]).reshape((1, 1, 3))
        >>> b = jnp.array([4.0, 5.0, 6.0]).reshape((1, 1, 3))
        >>> s = jnp.full((1, 1, 1), 0.5)
        >>> fungrad.nn.scaled_matmul(a, b, s, s)
        Array([[[8.]]], dtype=float32)
    """
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    lhs_scales, rhs_scales = jnp.asarray(lhs_scales), jnp.asarray(rhs_scales)
    if not all(x.ndim == 3 for x in (lhs, rhs, lhs_scales, rhs_scales)):
        raise ValueError("scaled_matmul requires all inputs to be 3-dimensional arrays")
    (bl, m, kl), (br, n, kr) = lhs.shape, rhs.shape
    if kl != kr or bl != br:
        raise ValueError("scaled_matmul requires inputs a and b to have matching batch (B) and "
                         f"contract (K) dimensions, but got shapes {lhs.shape} and {rhs.shape}")
    (bls, ms, kls), (brs, ns, krs) = lhs_scales.shape, rhs_scales.shape
    if kls != krs or bls != brs:
        raise ValueError("scaled_matmul requires scales to have matching batch (B) and "
                         f"contract (K) dimensions, but got shapes {lhs_scales.shape} and "
                         f"{rhs_scales.shape}")
    if ms != m or ns != n:
        raise ValueError("scaled_matmul requires scales to match non-contract dimensions of "
                         f"inputs, but got shapes a: {lhs.shape}, b: {rhs.shape}, a_scales: "
                         f"{lhs_scales.shape}, b_scales: {rhs_scales.shape}")
    if kls == 0 or kl % kls:
        raise ValueError(f"scaled_matmul requires the contract dimension of the inputs ({kl}) "
                         f"to be a multiple of that of the scales ({kls})")
    out_dtype = check_user_dtype(preferred_element_type, "scaled_matmul")
    out = lax.dot_general(_dequantized(lhs, lhs_scales), _dequantized(rhs, rhs_scales),
                          (((2,), (2,)), ((0,), (0,))), preferred_element_type=np.float32)
    return out.astype(out_dtype)


# --------------------------------------------------------------------------- quantization

def _e8m0_exponent_rounded_up(x: Any) -> Any:
    """The biased exponent (uint8) of the smallest power of two at least ``x >= 0`` (a
    mantissa rounds the exponent up, except at the top exponent and for subnormals up to
    half of the smallest normal), as JAX's MXFP8 quantizer computes it."""
    bits = x.astype(np.float32).view(np.uint32)
    exp, mant = bits >> 23, bits & 0x7FFFFF
    up = (mant > 0) & (exp != 0xFE) & ~((exp == 0) & (mant <= 0x400000))
    return jnp.where(up, exp + 1, exp).astype(np.uint8)


def _power_of_two(exp: Any, dtype: Any) -> Any:
    """``2**(exp - 127)`` in ``dtype`` from a uint8 biased exponent; exponent 0 gives a tiny
    value instead of zero (2**-15 in float16, 2**-127 otherwise) so dividing by it is safe."""
    value = (exp.astype(np.uint32) << 23).view(np.float32)
    tiny = 2.0 ** -15 if np.dtype(dtype) == np.float16 else 2.0 ** -127
    return jnp.where(value == 0, jnp.asarray(tiny, np.float32), value).astype(dtype)


def _quantize(x: Any, config: BlockScaleConfig) -> tuple[Any, Any]:
    """``x`` of shape ``(B, R, K)`` as (values in ``config.data_type``, one scale in
    ``config.scale_type`` per block of ``config.block_size`` along ``K``)."""
    shape, size = x.shape, config.block_size
    if shape[-1] < size or shape[-1] % size:
        raise ValueError(f"scaled_dot_general: a dimension of size {shape[-1]} is quantized "
                         f"in blocks of {size} ({config.mode}): it must be a positive multiple "
                         "of the block size")
    x = jnp.reshape(x, shape[:-1] + (shape[-1] // size, size))
    top = jnp.asarray(jnp.finfo(config.data_type).max, x.dtype)
    if config.mode == "mxfp8":
        exps = _e8m0_exponent_rounded_up(jnp.max(jnp.abs(x), axis=-1, keepdims=True) / top)
        scaled = x / _power_of_two(exps, x.dtype)
        scales = exps.view(config.scale_type)
    elif config.mode == "nvfp4":
        scale_top = jnp.asarray(jnp.finfo(config.scale_type).max, x.dtype)
        x = x / config.global_scale
        per_block = jnp.clip(jnp.max(jnp.abs(x), axis=-1, keepdims=True) / top, 0, scale_top)
        scales = lax.optimization_barrier(per_block.astype(config.scale_type))
        scaled = x / scales.astype(np.float32)
    else:
        raise ValueError(f"scaled_dot_general: unrecognized mode {config.mode!r}")
    values = jnp.reshape(jnp.clip(scaled, -top, top).astype(config.data_type), shape)
    return values, jnp.reshape(scales, scales.shape[:-2] + scales.shape[-2:-1])


# --------------------------------------------------------------------------- scaled_dot_general

def _to_3d(x: Any, contract: Sequence[int], batch: Sequence[int]) -> Any:
    """``x`` as ``(batch, rows, contracting)``, each group of dimensions in the order they
    have in ``x`` and merged."""
    free = [d for d in range(x.ndim) if d not in contract and d not in batch]
    order = sorted(batch) + free + sorted(contract)
    sizes = [math.prod(x.shape[d] for d in group)
             for group in (sorted(batch), free, sorted(contract))]
    return jnp.reshape(jnp.transpose(x, order), tuple(sizes))


def _out_shape(lhs_shape: tuple, rhs_shape: tuple, lhs_dn: tuple, rhs_dn: tuple) -> tuple:
    """``dot_general``'s result shape: the batch, then ``lhs``'s free, then ``rhs``'s free
    dimensions (each in the operand's order)."""
    (lc, lb), (rc, rb) = lhs_dn, rhs_dn
    return (tuple(s for d, s in enumerate(lhs_shape) if d in lb)
            + tuple(s for d, s in enumerate(lhs_shape) if d not in lc and d not in lb)
            + tuple(s for d, s in enumerate(rhs_shape) if d not in rc and d not in rb))


def _scaled_dot_forward(lhs: Any, rhs: Any, dnums: tuple, out_dtype: Any,
                        configs: Sequence[BlockScaleConfig]) -> Any:
    (lc, rc), (lb, rb) = dnums
    lhs_q, lhs_s = _quantize(_to_3d(lhs, lc, lb), configs[0])
    rhs_q, rhs_s = _quantize(_to_3d(rhs, rc, rb), configs[1])
    nvfp4 = configs[0].mode == "nvfp4"
    out = scaled_matmul(lhs_q, rhs_q, lhs_s, rhs_s, np.float32 if nvfp4 else out_dtype)
    if nvfp4:
        out = (out * (configs[0].global_scale * configs[1].global_scale)).astype(out_dtype)
    return jnp.reshape(out, _out_shape(lhs.shape, rhs.shape, (lc, lb), (rc, rb)))


def _cotangent(g: Any, x: Any, y: Any, x_dn: tuple, y_dn: tuple, out_dtype: Any,
               configs: Sequence[BlockScaleConfig], y_first: bool) -> Any:
    """The cotangent of ``x`` in ``dot(x, y)`` (``y_first``: in ``dot(y, x)``), computed as a
    scaled matmul of ``g`` (quantized by ``configs[0]``) with ``y`` (by ``configs[1]``);
    with NVFP4 as a plain matmul."""
    (xc, xb), (yc, yb) = x_dn, y_dn
    x_free = [d for d in range(x.ndim) if d not in xc and d not in xb]
    y_free = [d for d in range(y.ndim) if d not in yc and d not in yb]
    nb = len(xb)
    g_batch = tuple(range(nb))
    if y_first:
        g_y = tuple(range(nb, nb + len(y_free)))
    else:
        g_y = tuple(range(nb + len(x_free), nb + len(x_free) + len(y_free)))
    xc_by_y = [xc[i] for i in np.argsort(yc)]
    out_axes = tuple(int(a) for a in np.argsort(list(xb) + x_free + xc_by_y))
    g_dn, yy_dn = (g_y, g_batch), (tuple(y_free), tuple(yb))
    y3, g3 = _to_3d(y, *yy_dn), _to_3d(g, *g_dn)
    if configs[0].mode != "nvfp4":
        g_q, g_s = _quantize(g3, configs[0])
        y_q, y_s = _quantize(y3, configs[1])
        out = scaled_matmul(g_q, y_q, g_s, y_s, out_dtype)
    else:
        out = jnp.matmul(g3, jnp.transpose(y3, (0, 2, 1)), preferred_element_type=out_dtype)
    out = jnp.reshape(out, _out_shape(g.shape, y.shape, g_dn, yy_dn))
    return lax.transpose(out, out_axes)


def _scaled_dot_with_vjp(dnums: tuple, out_dtype: Any,
                         configs: Sequence[BlockScaleConfig]) -> Any:
    """``(lhs, rhs) -> scaled dot`` with JAX's custom VJP for these static settings."""
    (lc, rc), (lb, rb) = dnums

    @custom_vjp
    def scaled_dot(lhs: Any, rhs: Any) -> Any:
        return _scaled_dot_forward(lhs, rhs, dnums, out_dtype, configs)

    def fwd(lhs: Any, rhs: Any) -> tuple[Any, tuple]:
        return _scaled_dot_forward(lhs, rhs, dnums, out_dtype, configs), (lhs, rhs)

    def bwd(res: tuple, g: Any) -> tuple[Any, Any]:
        lhs, rhs = res
        g_lhs = _cotangent(g, lhs, rhs, (lc, lb), (rc, rb), out_dtype,
                           (configs[2], configs[1]), y_first=False)
        g_rhs = _cotangent(g, rhs, lhs, (rc, rb), (lc, lb), out_dtype,
                           (configs[2], configs[0]), y_first=True)
        if configs[2].mode == "nvfp4":
            top = jnp.finfo(configs[0].data_type).max.astype(lhs.dtype)
            scale_top = jnp.finfo(configs[0].scale_type).max.astype(lhs.dtype)
            bound = top * scale_top
            g_lhs = jnp.where(jnp.abs(lhs) <= configs[0].global_scale * bound, g_lhs, 0)
            g_rhs = jnp.where(jnp.abs(rhs) <= configs[1].global_scale * bound, g_rhs, 0)
        return g_lhs, g_rhs

    scaled_dot.defvjp(fwd, bwd)
    return scaled_dot


_OUT_DTYPES = ("float32", "bfloat16", "float16")


def scaled_dot_general(lhs: Any, rhs: Any, dimension_numbers: Any,
                       preferred_element_type: Any = np.float32,
                       configs: list[BlockScaleConfig] | None = None,
                       implementation: Literal["cudnn"] | None = None) -> Any:
    """``lax.dot_general`` of ``lhs`` and ``rhs`` quantized block by block along the
    contracting dimensions (``jax.nn.scaled_dot_general``).

    Args:
        lhs, rhs: unquantized operands.
        dimension_numbers: ``((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch))``.
        preferred_element_type: the result's dtype: float32 (default), bfloat16 or float16.
        configs: three ``BlockScaleConfig`` s (from ``get_scaled_dot_general_config``) for
            ``lhs``, ``rhs`` and the output's cotangent; None: a plain ``lax.dot_general``.
        implementation: deprecated in JAX and ignored (a ``DeprecationWarning``).

    The contracting dimensions (and, for the gradient, the free ones) must be multiples of
    the block size. The result has ``dot_general``'s layout.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> configs = [fungrad.nn.get_scaled_dot_general_config("mxfp8")] * 3
        >>> x = jnp.linspace(-1.0, 1.0, 64).reshape(2, 32)
        >>> fungrad.nn.scaled_dot_general(x, x, (((1,), (1,)), ((), ())), configs=configs)
        Array([[10.771484, -5.484375],
               [-5.484375, 10.771484]], dtype=float32)
    """
    if implementation is not None:
        warnings.warn("scaled_dot_general: implementation is ignored (a backend selector, "
                      "deprecated in JAX).", DeprecationWarning, stacklevel=2)
    if configs is None:
        return lax.dot_general(lhs, rhs, dimension_numbers,
                               preferred_element_type=preferred_element_type)
    if np.dtype(preferred_element_type).name not in _OUT_DTYPES:
        raise TypeError("scaled_dot_general: preferred_element_type must be float32, bfloat16 "
                        f"or float16, got {np.dtype(preferred_element_type)}")
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    (lc, rc), (lb, rb) = dimension_numbers
    lc, rc, lb, rb = (tuple(int(d) for d in dims) for dims in (lc, rc, lb, rb))
    # Without batch dimensions, each operand gets a trailing one of size 1 (squeezed after).
    unbatched = not lb
    if unbatched:
        lhs, rhs = lhs[..., None], rhs[..., None]
        lb, rb = (lhs.ndim - 1,), (rhs.ndim - 1,)
    out_dtype = np.dtype(preferred_element_type)
    out = _scaled_dot_with_vjp(((lc, rc), (lb, rb)), out_dtype, configs)(lhs, rhs)
    return jnp.squeeze(out, axis=0) if unbatched else out
