"""N-dimensional convolution: ``conv_general_dilated`` and its helpers.

The implementation is im2col: the (dilated, padded) input is viewed through
``as_strided`` as a patch array ``(N, out spatial..., kernel spatial..., C)``
with no copy, flattened into one matrix and multiplied with the flattened
kernel by a single (batched, for feature or batch groups) ``matmul``, so NumPy
hands the work to BLAS. Depthwise convolutions (one input channel per group),
where that would be many tiny matmuls, multiply-accumulate one kernel tap at a
time on strided views instead. (A stride-1 variant doing one GEMM per tap on
shifted views of the flattened input was measured slower than im2col on a
16-core machine and dropped.) The transposes are convolutions themselves (as in
JAX): the input cotangent convolves the cotangent with the flipped kernel
(dilated by the strides), the kernel cotangent convolves the input with the
cotangent; so higher derivatives and ``vmap`` of gradients need nothing more.
"""
from __future__ import annotations

import itertools
from typing import Any, NamedTuple, Sequence, Union

from fungrad._core import core, dtypes
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.lowering import def_compiler_traits
from fungrad._core.util import prod
from fungrad.interpreters import ad, batching
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import as_operand, check_dtypes, kind, NUMERIC, operand_dtype
from fungrad.lax.dot import (as_result, canonicalize_precision, compute_dtype, dot_result_dtype,
                             matmul_for)
from fungrad.lax.shapes import convert_element_type, reshape, rev, transpose


class ConvDimensionNumbers(NamedTuple):
    """Positions of (batch, feature, spatial...) in lhs and out, (out feature, in feature,
    spatial...) in rhs (``jax.lax.ConvDimensionNumbers``)."""
    lhs_spec: tuple
    rhs_spec: tuple
    out_spec: tuple


# JAX's type of the ``dimension_numbers`` argument: None, the named tuple, or three layout
# strings such as ``("NCHW", "OIHW", "NCHW")``.
ConvGeneralDilatedDimensionNumbers = Union[None, ConvDimensionNumbers, tuple[str, str, str]]


def conv_general_permutations(dimension_numbers: Sequence[str]) -> tuple[tuple, tuple, tuple]:
    """The three dimension permutations named by spec strings such as ('NCHW', 'OIHW', 'NCHW').

    Spatial dimensions are ordered as they appear in the rhs spec.
    """
    lhs_s, rhs_s, out_s = dimension_numbers
    pairs = (("N", "C"), ("O", "I"), ("N", "C"))
    for i, (a, b) in enumerate(pairs):
        spec = dimension_numbers[i]
        if not spec.count(a) == spec.count(b) == 1:
            raise TypeError(f"conv_general_dilated: dimension_numbers[{i}] must contain the "
                            f"characters '{a}' and '{b}' exactly once, got {spec!r}")
        if len(spec) != len(set(spec)):
            raise TypeError(f"conv_general_dilated: dimension_numbers[{i}] cannot have duplicate "
                            f"characters, got {spec!r}")
    if not set(lhs_s) - {"N", "C"} == set(rhs_s) - {"O", "I"} == set(out_s) - {"N", "C"}:
        raise TypeError("conv_general_dilated: dimension_numbers must each have the same set of "
                        f"spatial characters, got {tuple(dimension_numbers)}")

    def perm(spec, pair):
        spatial = [i for i, c in enumerate(spec) if c not in pair]
        if spec is not rhs_s:
            spatial.sort(key=lambda i: rhs_s.index(spec[i]))
        return (spec.index(pair[0]), spec.index(pair[1])) + tuple(spatial)
    return tuple(perm(s, p) for s, p in zip(dimension_numbers, pairs))


def conv_dimension_numbers(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                           dimension_numbers: Any) -> ConvDimensionNumbers:
    """Canonicalise ``None``, spec strings or a ``ConvDimensionNumbers`` (``jax.lax``'s helper)."""
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return ConvDimensionNumbers(*(tuple(int(d) for d in s) for s in dimension_numbers))
    if len(lhs_shape) != len(rhs_shape):
        raise TypeError(f"conv_general_dilated requires lhs and rhs of equal rank, got shapes "
                        f"{tuple(lhs_shape)} and {tuple(rhs_shape)}")
    if dimension_numbers is None:
        iota = tuple(range(len(lhs_shape)))
        return ConvDimensionNumbers(iota, iota, iota)
    if not (isinstance(dimension_numbers, (tuple, list)) and len(dimension_numbers) == 3
            and all(isinstance(s, str) for s in dimension_numbers)):
        raise TypeError("conv_general_dilated: dimension_numbers must be None, a "
                        f"ConvDimensionNumbers or three spec strings, got {dimension_numbers!r}")
    for i, s in enumerate(dimension_numbers):
        if len(s) != len(lhs_shape):
            raise TypeError(f"conv_general_dilated: dimension_numbers[{i}] = {s!r} must have one "
                            f"character per dimension of lhs and rhs (shapes {tuple(lhs_shape)} "
                            f"and {tuple(rhs_shape)})")
    return ConvDimensionNumbers(*conv_general_permutations(dimension_numbers))


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int],
                    window_strides: Sequence[int], padding: str) -> list[tuple[int, int]]:
    """Explicit (low, high) pads for 'VALID', 'SAME' (extra at the end) or 'SAME_LOWER'."""
    if not isinstance(padding, str):  # explicit pairs are already pads: jax refuses them too
        raise TypeError(f"padtype_to_pads: unknown padding type {padding!r}: expected 'VALID', "
                        "'SAME' or 'SAME_LOWER'")
    mode = padding.upper()
    if mode == "VALID":
        return [(0, 0)] * len(in_shape)
    if mode not in ("SAME", "SAME_LOWER"):
        raise ValueError(f"Unrecognized padding type: expected 'VALID', 'SAME' or 'SAME_LOWER', "
                         f"got {padding!r}")
    pads = []
    for n, w, s in zip(in_shape, window_shape, window_strides):
        total = max(0, (-(-n // s) - 1) * s + w - n)
        lo = total // 2 if mode == "SAME" else -(-total // 2)
        pads.append((lo, total - lo))
    return pads


def _dilate(n: int, d: int) -> int:
    return 0 if n == 0 else 1 + d * (n - 1)


def conv_shape_tuple(lhs_shape, rhs_shape, strides, pads, batch_group_count=1) -> tuple:
    """Output shape in canonical (N, C, spatial...) order, from canonical input shapes."""
    if len(pads) != len(lhs_shape) - 2:
        raise TypeError(f"conv_general_dilated: expected {len(lhs_shape) - 2} (low, high) padding "
                        f"pairs, got {len(pads)}")
    padded = [n + lo + hi for n, (lo, hi) in zip(lhs_shape[2:], pads)]
    if any(p < 0 for p in padded):
        raise ValueError(f"conv_general_dilated: negative padding {tuple(pads)} is larger than the "
                         f"input spatial shape {tuple(lhs_shape[2:])}")
    space = tuple(max(0, (p - k) // s + 1) for p, k, s in zip(padded, rhs_shape[2:], strides))
    return (lhs_shape[0] // batch_group_count, rhs_shape[0]) + space


# --------------------------------------------------------------------------- shape / dtype rule

def _conv_abstract(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                   dimension_numbers, feature_group_count, batch_group_count, precision,
                   preferred_element_type):
    name = "conv_general_dilated"
    if lhs.ndim != rhs.ndim:
        raise TypeError(f"{name}: lhs and rhs must have the same rank, got shapes {lhs.shape} "
                        f"and {rhs.shape}")
    check_dtypes(name, [lhs, rhs], NUMERIC)
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    nsp = lhs.ndim - 2
    for what, v in (("window_strides", window_strides), ("lhs_dilation", lhs_dilation),
                    ("rhs_dilation", rhs_dilation), ("padding", padding)):
        if len(v) != nsp:
            raise TypeError(f"{name}: {what} must have one entry per spatial dimension ({nsp}), "
                            f"got {v}")
    if any(s < 1 for s in window_strides + lhs_dilation + rhs_dilation):
        raise ValueError(f"{name}: strides and dilations must be positive, got window_strides="
                         f"{window_strides}, lhs_dilation={lhs_dilation}, "
                         f"rhs_dilation={rhs_dilation}")
    G, B = feature_group_count, batch_group_count
    if G < 1 or B < 1 or (G > 1 and B > 1):
        raise ValueError(f"{name}: feature_group_count ({G}) and batch_group_count ({B}) must be "
                         "positive and at most one of them may exceed 1")
    c_in, n_batch = lhs.shape[lhs_spec[1]], lhs.shape[lhs_spec[0]]
    o_out, i_in = rhs.shape[rhs_spec[0]], rhs.shape[rhs_spec[1]]
    if c_in % G or c_in // G != i_in:
        raise ValueError(f"{name}: lhs feature dimension ({c_in}) divided by feature_group_count "
                         f"({G}) must equal the rhs input feature dimension ({i_in}); shapes "
                         f"{lhs.shape} and {rhs.shape}")
    if o_out % G or o_out % B:
        raise ValueError(f"{name}: rhs output feature dimension ({o_out}) must be a multiple of "
                         f"feature_group_count ({G}) and batch_group_count ({B})")
    if n_batch % B:
        raise ValueError(f"{name}: batch_group_count ({B}) must divide the lhs batch size "
                         f"({n_batch})")
    lhs_t = [lhs.shape[d] for d in lhs_spec]
    rhs_t = [rhs.shape[d] for d in rhs_spec]
    lhs_t = lhs_t[:2] + [_dilate(n, d) for n, d in zip(lhs_t[2:], lhs_dilation)]
    rhs_t = rhs_t[:2] + [_dilate(n, d) for n, d in zip(rhs_t[2:], rhs_dilation)]
    out_t = conv_shape_tuple(lhs_t, rhs_t, window_strides, padding, B)
    shape = [0] * lhs.ndim
    for d, n in zip(out_spec, out_t):
        shape[d] = n
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"{name} requires arguments to have the same dtypes, got "
                        f"{lhs.dtype.name}, {rhs.dtype.name}")
    if preferred_element_type is not None and dtypes.is_inexact(lhs.dtype) \
            and kind(preferred_element_type) != kind(lhs.dtype):
        raise TypeError(f"{name}: preferred_element_type {preferred_element_type.name} is "
                        f"incompatible with {lhs.dtype.name} operands (floats give floats, "
                        "complex numbers complex ones)")
    dt = dot_result_dtype(lhs.dtype, rhs.dtype, preferred_element_type, name)
    return ShapedArray(tuple(shape), dt, lhs.weak_type and rhs.weak_type)


# --------------------------------------------------------------------------- implementation



def pad_geometry(shape: Sequence[int], dilation: Sequence[int], padding: Sequence[tuple[int, int]]):
    """Where an array of ``shape`` sits after dilation and (possibly negative) padding.

    Returns the shape of a buffer large enough for the non-negative pads, the
    slices of that buffer holding the original elements, and the slices that
    cut out the dilated, padded array (cropping negative pads).
    """
    full = tuple(_dilate(n, d) + max(lo, 0) + max(hi, 0)
                 for n, d, (lo, hi) in zip(shape, dilation, padding))
    inner = tuple(slice(max(lo, 0), max(lo, 0) + _dilate(n, d), d)
                  for n, d, (lo, _) in zip(shape, dilation, padding))
    crop = tuple(slice(max(-lo, 0), f - max(-hi, 0)) for f, (lo, hi) in zip(full, padding))
    return full, inner, crop


def dilate_and_pad(xp, x, dilation, padding, fill=0):
    """``x`` with ``d - 1`` fill values between elements and (low, high) fill padding per
    dimension; negative pads crop."""
    if all(d == 1 for d in dilation) and all(p == (0, 0) for p in padding):
        return x
    full, inner, crop = pad_geometry(x.shape, dilation, padding)
    out = xp.full(full, fill, x.dtype)
    out[inner] = x
    return out[crop]


def window_taps(out_shape, window_dimensions, window_strides, window_dilation):
    """For each tap of a window (row-major), the slices of the padded operand it reads
    to produce every output position."""
    for tap in itertools.product(*map(range, window_dimensions)):
        yield tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in
                    zip(tap, window_dilation, out_shape, window_strides))


def _patches(xp, x, kernel, out_spatial, strides, rhs_dilation):
    """A no-copy view (N, out spatial..., kernel spatial..., C) of ``x`` (N, spatial..., C)."""
    st = x.strides
    shape = (x.shape[0], *out_spatial, *kernel, x.shape[-1])
    new_strides = (st[0], *(s * w for s, w in zip(st[1:-1], strides)),
                   *(s * d for s, d in zip(st[1:-1], rhs_dilation)), st[-1])
    return xp.lib.stride_tricks.as_strided(x, shape, new_strides)


def _conv_im2col(xp, x, w, out_spatial, strides, rhs_dilation, G, B, matmul):
    """Copy the patches into one matrix and do one (batched, for groups) ``matmul``."""
    nsp = x.ndim - 2
    kernel = w.shape[:nsp]
    n, c, o = x.shape[0], x.shape[-1], w.shape[-1]
    k_taps, m = prod(kernel), prod(out_spatial)
    cols = _patches(xp, x, kernel, out_spatial, strides, rhs_dilation)
    if G == 1 and B == 1:
        out = matmul(cols.reshape(n * m, k_taps * c), w.reshape(k_taps * c, o))
    elif G > 1:  # groups of input channels: (G, N*M, K*Cg) @ (G, K*Cg, Og)
        cg = c // G
        cols = cols.reshape(n * m, k_taps, G, cg).transpose(2, 0, 1, 3)
        cols = cols.reshape(G, n * m, k_taps * cg)
        wg = w.reshape(k_taps * cg, G, o // G).transpose(1, 0, 2)
        out = matmul(cols, wg).transpose(1, 0, 2).reshape(n * m, o)
    else:  # groups of batch members, each with its own block of output features
        nb = n // B
        cols = cols.reshape(B, nb * m, k_taps * c)
        wb = w.reshape(k_taps * c, B, o // B).transpose(1, 0, 2)
        out = matmul(cols, wb).transpose(1, 0, 2).reshape(nb * m, o)
    return out.reshape(n // B, *out_spatial, o)


def _conv_depthwise(xp, x, w, out_spatial, strides, rhs_dilation):
    """One input channel per group: a multiply-accumulate per kernel tap on strided views."""
    nsp = x.ndim - 2
    n, c, o = x.shape[0], x.shape[-1], w.shape[-1]
    w = w.reshape(*w.shape[:nsp], c, o // c)  # (kernel..., G, Og)
    out = xp.zeros((n, *out_spatial, c, o // c), x.dtype)
    for tap, sl in zip(itertools.product(*map(range, w.shape[:nsp])),
                       window_taps(out_spatial, w.shape[:nsp], strides, rhs_dilation)):
        out += x[(slice(None), *sl, slice(None), None)] * w[tap]
    return out.reshape(n, *out_spatial, o)


def _conv_impl(xp, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count, batch_group_count, precision,
               preferred_element_type):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    nsp = lhs.ndim - 2
    out_dtype = dot_result_dtype(lhs.dtype, rhs.dtype, preferred_element_type,
                                 "conv_general_dilated")
    compute = compute_dtype(lhs.dtype, rhs.dtype, out_dtype)
    # channels-last lhs (N, spatial..., C) and kernel (spatial..., I, O)
    x = xp.transpose(lhs, (lhs_spec[0], *lhs_spec[2:], lhs_spec[1])).astype(compute, copy=False)
    w = xp.transpose(rhs, (*rhs_spec[2:], rhs_spec[1], rhs_spec[0])).astype(compute, copy=False)
    x = dilate_and_pad(xp, x, (1, *lhs_dilation, 1), ((0, 0), *padding, (0, 0)))
    x = xp.ascontiguousarray(x)
    eff = [_dilate(k, d) for k, d in zip(w.shape[:nsp], rhs_dilation)]
    out_spatial = tuple(max(0, (n - e) // s + 1)
                        for n, e, s in zip(x.shape[1:-1], eff, window_strides))
    G, B = feature_group_count, batch_group_count
    c = x.shape[-1]
    if 0 in x.shape or 0 in out_spatial:
        out = xp.zeros((x.shape[0] // B, *out_spatial, w.shape[-1]), compute)
    elif G > 1 and G == c:  # one big matmul would be G tiny ones: multiply-add per tap instead
        out = _conv_depthwise(xp, x, w, out_spatial, window_strides, rhs_dilation)
    else:
        matmul = matmul_for(xp, precision, x.dtype)  # TensorFloat-32 on a GPU
        out = _conv_im2col(xp, x, w, out_spatial, window_strides, rhs_dilation, G, B, matmul)
    # canonical (N, spatial..., O) -> out_spec order
    canon_pos = (0, nsp + 1, *range(1, nsp + 1))  # where canonical dim i lives in `out`
    perm = [0] * lhs.ndim
    for i, d in enumerate(out_spec):
        perm[d] = canon_pos[i]
    return as_result(xp, xp.transpose(out, perm), out_dtype)


# --------------------------------------------------------------------------- transposes

def _spec_transpose(spec):
    return (spec[1], spec[0]) + tuple(spec[2:])


def _reshape_axis_into(src: int, dst: int, x: Any) -> Any:
    """Merge axis ``src`` into axis ``dst`` (``src`` becoming the major part)."""
    shape = list(core.get_aval(x).shape)
    perm = [i for i in range(len(shape)) if i != src]
    perm.insert(dst, src)
    size = shape.pop(src)
    shape[dst] *= size
    return reshape(x, tuple(shape), tuple(perm))


def _reshape_axis_out_of(src: int, size1: int, x: Any) -> Any:
    """Split axis ``src`` into (size1, rest)."""
    shape = list(core.get_aval(x).shape)
    shape[src:src + 1] = [size1, shape[src] // size1]
    return reshape(x, tuple(shape))


def _conv_vjp_lhs_padding(in_shape, window, strides, out_shape, padding, lhs_dilation,
                          rhs_dilation):
    lhs_d = [_dilate(n, d) for n, d in zip(in_shape, lhs_dilation)]
    rhs_d = [_dilate(n, d) for n, d in zip(window, rhs_dilation)]
    out_d = [_dilate(n, d) for n, d in zip(out_shape, strides)]
    before = [r - lo - 1 for r, (lo, _) in zip(rhs_d, padding)]
    after = [l + r - 1 - o - b for l, r, o, b in zip(lhs_d, rhs_d, out_d, before)]
    return tuple(zip(before, after))


def _conv_vjp_rhs_padding(in_shape, window, strides, out_shape, padding, lhs_dilation,
                          rhs_dilation):
    lhs_d = [_dilate(n, d) for n, d in zip(in_shape, lhs_dilation)]
    rhs_d = [_dilate(n, d) for n, d in zip(window, rhs_dilation)]
    out_d = [_dilate(n, d) for n, d in zip(out_shape, strides)]
    return tuple((lo, o - l + r - lo - 1) for l, r, o, (lo, _) in zip(lhs_d, rhs_d, out_d, padding))


def _convert_to(x: Any, aval: ShapedArray) -> Any:
    return x if core.get_aval(x).dtype == aval.dtype else convert_element_type(x, aval.dtype)


def _conv_transpose_lhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count, precision,
                        preferred_element_type):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs_shape, rhs_shape = lhs.aval.shape, core.get_aval(rhs).shape
    ct_shape = core.get_aval(ct).shape
    G, B = feature_group_count, batch_group_count
    if G > 1:
        rhs = _reshape_axis_into(rhs_spec[0], rhs_spec[1],
                                 _reshape_axis_out_of(rhs_spec[0], G, rhs))
    elif B > 1:
        rhs = _reshape_axis_into(rhs_spec[0], rhs_spec[1],
                                 _reshape_axis_out_of(rhs_spec[0], B, rhs))
        G = B
    trans_dnums = ConvDimensionNumbers(out_spec, _spec_transpose(rhs_spec), lhs_spec)
    pads = _conv_vjp_lhs_padding([lhs_shape[d] for d in lhs_spec[2:]],
                                 [rhs_shape[d] for d in rhs_spec[2:]], window_strides,
                                 [ct_shape[d] for d in out_spec[2:]], padding, lhs_dilation,
                                 rhs_dilation)
    flipped = _convert_to(rev(rhs, tuple(rhs_spec[2:])), core.get_aval(ct))
    out = conv_general_dilated(ct, flipped, lhs_dilation, pads, window_strides, rhs_dilation,
                               trans_dnums, G, 1, precision, preferred_element_type)
    if B > 1:
        out = _reshape_axis_into(lhs_spec[1], lhs_spec[0],
                                 _reshape_axis_out_of(lhs_spec[1], B, out))
    return _convert_to(out, lhs.aval)


def _conv_transpose_rhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count, precision,
                        preferred_element_type):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs_shape, rhs_shape = core.get_aval(lhs).shape, rhs.aval.shape
    ct_shape = core.get_aval(ct).shape
    if prod(ct_shape) == 0:
        return ad.Zero(rhs.aval)
    G, B = feature_group_count, batch_group_count
    G, B = (B, 1) if B > 1 else (1, G)
    trans_dnums = ConvDimensionNumbers(*map(_spec_transpose, (lhs_spec, out_spec, rhs_spec)))
    pads = _conv_vjp_rhs_padding([lhs_shape[d] for d in lhs_spec[2:]],
                                 [rhs_shape[d] for d in rhs_spec[2:]], window_strides,
                                 [ct_shape[d] for d in out_spec[2:]], padding, lhs_dilation,
                                 rhs_dilation)
    out = conv_general_dilated(_convert_to(lhs, core.get_aval(ct)), ct, rhs_dilation, pads,
                               lhs_dilation, window_strides, trans_dnums, G, B, precision,
                               preferred_element_type)
    return _convert_to(out, rhs.aval)


# --------------------------------------------------------------------------- batching

def _conv_batch(axis_size, vals, dims, **params):
    """Fold the vmapped dimension into the batch (lhs only), the output features (rhs only)
    or the feature groups (both)."""
    lhs, rhs = vals
    lbd, rbd = dims
    lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
    G, B = params["feature_group_count"], params["batch_group_count"]
    bind = lambda l, r, **kw: conv_general_dilated_p.bind(l, r, **{**params, **kw})
    if lbd is not None and rbd is not None:
        if B > 1:
            new_lhs = _reshape_axis_into(lbd, lhs_spec[0], lhs)
            kw = {"batch_group_count": B * axis_size}
        else:
            new_lhs = _reshape_axis_into(lbd, lhs_spec[1], lhs)
            kw = {"feature_group_count": G * axis_size}
        out = bind(new_lhs, _reshape_axis_into(rbd, rhs_spec[0], rhs), **kw)
        return _reshape_axis_out_of(out_spec[1], axis_size, out), out_spec[1]
    if lbd is not None:
        if B == 1:
            out = bind(_reshape_axis_into(lbd, lhs_spec[0], lhs), rhs)
            return _reshape_axis_out_of(out_spec[0], axis_size, out), out_spec[0]
        # keep each batch group's members together: (B, N/B) x vmap -> B groups of vmap * N/B
        new_lhs = _reshape_axis_out_of(lhs_spec[0] + (lbd <= lhs_spec[0]), B, lhs)
        new_lhs = _reshape_axis_into(lbd + (lhs_spec[0] < lbd), lhs_spec[0] + 1, new_lhs)
        new_lhs = _reshape_axis_into(lhs_spec[0], lhs_spec[0], new_lhs)
        out = bind(new_lhs, rhs)
        return _reshape_axis_out_of(out_spec[0], axis_size, out), out_spec[0]
    if G == 1 and B == 1:
        out = bind(lhs, _reshape_axis_into(rbd, rhs_spec[0], rhs))
        return _reshape_axis_out_of(out_spec[1], axis_size, out), out_spec[1]
    groups = G if G > 1 else B
    new_rhs = _reshape_axis_out_of(rhs_spec[0] + (rbd <= rhs_spec[0]), groups, rhs)
    new_rhs = _reshape_axis_into(rbd + (rhs_spec[0] < rbd), rhs_spec[0] + 1, new_rhs)
    new_rhs = _reshape_axis_into(rhs_spec[0], rhs_spec[0], new_rhs)
    out = bind(lhs, new_rhs)
    out = _reshape_axis_out_of(out_spec[1], groups, out)
    out = _reshape_axis_out_of(out_spec[1] + 1, axis_size, out)
    return _reshape_axis_into(out_spec[1], out_spec[1] + 1, out), out_spec[1]


conv_general_dilated_p = Primitive("conv_general_dilated")
conv_general_dilated_p.def_impl(_conv_impl)
conv_general_dilated_p.def_abstract_eval(_conv_abstract)
ad.defbilinear(conv_general_dilated_p, _conv_transpose_lhs, _conv_transpose_rhs)
batching.def_batch(conv_general_dilated_p, _conv_batch)
def_compiler_traits(conv_general_dilated_p, threaded=True)  # its matmuls run in BLAS


# --------------------------------------------------------------------------- wrappers

def _ints(v: Any, n: int, what: str) -> tuple[int, ...]:
    if v is None:
        return (1,) * n
    try:
        return tuple(int(i) for i in v)
    except TypeError as e:
        raise TypeError(f"conv_general_dilated: {what} must be a sequence of ints, "
                        f"got {v!r}") from e


def conv_general_dilated(lhs: Any, rhs: Any, window_strides: Sequence[int], padding: Any,
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision: Any = None,
                         preferred_element_type: Any = None, out_sharding: Any = None) -> Any:
    """General N-d convolution with strides, padding, dilations and groups
    (``jax.lax.conv_general_dilated``).

    ``padding`` is 'SAME', 'SAME_LOWER', 'VALID' or ``n`` (low, high) pairs;
    ``lhs_dilation`` > 1 gives a transposed (fractionally strided) convolution,
    ``rhs_dilation`` > 1 an atrous one. ``dimension_numbers`` is ``None``
    (NCHW / OIHW / NCHW), three spec strings such as ('NHWC', 'HWIO', 'NHWC'),
    or a ``ConvDimensionNumbers``. ``out_sharding`` puts the result on a device (see
    ``fungrad.lax._placement``; None leaves it where the operation runs).
    """
    dt = operand_dtype(lhs, rhs)
    lhs, rhs = as_operand(lhs, dt), as_operand(rhs, dt)
    lhs_shape, rhs_shape = core.get_aval(lhs).shape, core.get_aval(rhs).shape
    dnums = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    nsp = len(lhs_shape) - 2
    strides = _ints(window_strides, nsp, "window_strides")
    lhs_dilation = _ints(lhs_dilation, nsp, "lhs_dilation")
    rhs_dilation = _ints(rhs_dilation, nsp, "rhs_dilation")
    if isinstance(padding, str):
        if any(d != 1 for d in lhs_dilation):
            raise ValueError("conv_general_dilated: string padding is not supported with "
                             "lhs_dilation (a transposed convolution); give explicit pads or "
                             "use conv_transpose")
        window = [_dilate(rhs_shape[d], r) for d, r in zip(dnums.rhs_spec[2:], rhs_dilation)]
        padding = padtype_to_pads([lhs_shape[d] for d in dnums.lhs_spec[2:]], window, strides,
                                  padding)
    try:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError) as e:
        raise ValueError("conv_general_dilated: padding must be a string or a sequence of "
                         f"(low, high) pairs, got {padding!r}") from e
    preferred = None if preferred_element_type is None else dtypes.canonicalize_dtype(
        preferred_element_type)
    params = dict(window_strides=strides, padding=pads, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation, dimension_numbers=dnums,
                  feature_group_count=int(feature_group_count),
                  batch_group_count=int(batch_group_count),
                  precision=canonicalize_precision(precision), preferred_element_type=preferred)
    # the shape and dtype rule, also where no trace runs it (eagerly): the same errors
    conv_general_dilated_p.abstract_eval(core.get_aval(lhs), core.get_aval(rhs), **params)
    out = conv_general_dilated_p.bind(lhs, rhs, **params)
    if out_sharding is None:
        return out
    return with_out_sharding(out, out_sharding, "lax.conv_general_dilated")


def conv(lhs: Any, rhs: Any, window_strides: Sequence[int], padding: str, precision: Any = None,
         preferred_element_type: Any = None) -> Any:
    """NCHW / OIHW convolution with 'SAME' or 'VALID' padding (``jax.lax.conv``)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs: Any, rhs: Any, window_strides: Sequence[int], padding: Any,
                              lhs_dilation: Sequence[int] | None,
                              rhs_dilation: Sequence[int] | None, precision: Any = None,
                              preferred_element_type: Any = None) -> Any:
    """NCHW / OIHW convolution with explicit padding and dilations."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                precision=precision, preferred_element_type=preferred_element_type)


def _conv_transpose_padding(k: int, s: int, padding: Any) -> tuple[int, int]:
    if padding == "SAME":
        total = k + s - 2
        lo = k - 1 if s > k - 1 else -(-total // 2)
    elif padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        lo = k - 1
    else:
        pads = tuple(k - p - 1 for p in padding)
        lo, total = pads[0], sum(pads)
    return lo, total - lo


def conv_transpose(lhs: Any, rhs: Any, strides: Sequence[int], padding: Any,
                   rhs_dilation: Sequence[int] | None = None, dimension_numbers: Any = None,
                   transpose_kernel: bool = False, precision: Any = None,
                   preferred_element_type: Any = None, use_consistent_padding: bool = False) -> Any:
    """Transposed ("deconvolution") N-d convolution (``jax.lax.conv_transpose``): a
    fractionally strided convolution; defaults to NHWC / HWIO / NHWC layouts."""
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    lhs_shape, rhs_shape = core.get_aval(lhs).shape, core.get_aval(rhs).shape
    ndim = len(lhs_shape)
    if dimension_numbers is None:
        if not 2 <= ndim <= 5:
            raise ValueError(f"conv_transpose: no default dimension_numbers for rank {ndim}")
        sp = "HWD"[:ndim - 2]
        dimension_numbers = (f"N{sp}C", f"{sp}IO", f"N{sp}C")
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    kernel = [rhs_shape[d] for d in dn.rhs_spec[2:]]
    rhs_dilation = _ints(rhs_dilation, ndim - 2, "rhs_dilation")
    if use_consistent_padding or padding in ("SAME", "VALID"):
        eff = [_dilate(k, r) for k, r in zip(kernel, rhs_dilation)]
        per_dim = [padding] * len(strides) if isinstance(padding, str) else list(padding)
        pads = [_conv_transpose_padding(k, s, p) for k, s, p in zip(eff, strides, per_dim)]
    else:
        pads = padding
    if transpose_kernel:
        rhs = rev(rhs, tuple(dn.rhs_spec[2:]))
        perm = list(range(ndim))
        perm[dn.rhs_spec[0]], perm[dn.rhs_spec[1]] = perm[dn.rhs_spec[1]], perm[dn.rhs_spec[0]]
        rhs = transpose(rhs, tuple(perm))
    return conv_general_dilated(lhs, rhs, (1,) * (ndim - 2), pads, strides, rhs_dilation, dn,
                                precision=precision, preferred_element_type=preferred_element_type)


__all__ = ['ConvDimensionNumbers', 'ConvGeneralDilatedDimensionNumbers', 'conv_dimension_numbers',
           'conv_general_permutations',
           'padtype_to_pads', 'conv_shape_tuple', 'conv_general_dilated', 'conv_general_dilated_p',
           'conv', 'conv_with_general_padding', 'conv_transpose']
