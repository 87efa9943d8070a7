"""Image patches, locally connected convolutions and convolution shape helpers
(``jax.lax``'s ``conv_general_dilated_patches``, ``conv_general_dilated_local``,
``conv_general_shape_tuple``, ``conv_transpose_shape_tuple``, ``reduce_window_shape_tuple``).

Patches (im2col) are a grouped convolution of the input with a constant one-hot
filter, one group per input channel, whose output channel ``c * S + k`` picks tap
``k`` of a window of ``S`` taps from channel ``c``; the locally connected
convolution contracts those patches with a kernel that has its own weights at
every output position, by one ``dot_general`` batched over the output spatial
dimensions. Both are composites of ``conv_general_dilated`` and ``dot_general``,
so ``jit``, every derivative and ``vmap`` come from those primitives' rules. The
shape helpers are plain integer arithmetic on shapes, as in JAX.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from fungrad._core import core
from fungrad._core.util import prod
from fungrad.lax._prim import as_operand
from fungrad.lax.conv import (_conv_transpose_padding, conv_dimension_numbers,
                              conv_general_dilated, conv_general_permutations, conv_shape_tuple,
                              padtype_to_pads)
from fungrad.lax.dot import Precision, canonicalize_precision, dot_general
from fungrad.lax.shapes import transpose
from fungrad.lax.windowed import _window_shape

__all__ = ["conv_general_dilated_patches", "conv_general_dilated_local",
           "conv_general_shape_tuple", "conv_transpose_shape_tuple", "reduce_window_shape_tuple"]


# --------------------------------------------------------------------------- argument checks

@contextlib.contextmanager
def _named(name: str) -> Iterator[None]:
    """Re-raise the ``TypeError``/``ValueError`` of a helper shared with
    ``conv_general_dilated`` under ``name``, the function the user called."""
    try:
        yield
    except (TypeError, ValueError) as e:
        if type(e) not in (TypeError, ValueError):  # tracing errors and the like: untouched
            raise
        msg = str(e)
        for prefix in ("conv_general_dilated: ", "conv_general_dilated ", "dot_general: "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
                break
        raise type(e)(f"{name}: {msg}") from e


def _int_tuple(v: Any, name: str, what: str) -> tuple[int, ...]:
    """``v`` as a tuple of Python ints, or a ``TypeError`` naming ``what``."""
    try:
        return tuple(int(i) for i in v)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: {what} must be a sequence of ints, got {v!r}") from e


def _spatial_ints(v: Any, n: int, name: str, what: str, default: int | None = None
                  ) -> tuple[int, ...]:
    """One positive int per spatial dimension (``None`` means ``default`` everywhere)."""
    if v is None and default is not None:
        return (default,) * n
    out = _int_tuple(v, name, what)
    if len(out) != n:
        raise ValueError(f"{name}: {what} must have one entry per spatial dimension ({n}), "
                         f"got {v!r}")
    if any(i < 1 for i in out):
        raise ValueError(f"{name}: {what} must be positive, got {v!r}")
    return out


def _pairs(padding: Any, name: str) -> list[tuple[int, int]]:
    """Explicit padding as (low, high) int pairs, or a ``TypeError`` saying the form."""
    try:
        return [(int(lo), int(hi)) for lo, hi in padding]
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: padding must be a padding string or a sequence of "
                        f"(low, high) pairs, got {padding!r}") from e


def _string_specs(dimension_numbers: Any, name: str) -> tuple[str, str, str]:
    """Three spec strings such as ('NCHW', 'OIHW', 'NCHW'), which the shape helpers need."""
    if not (isinstance(dimension_numbers, (tuple, list)) and len(dimension_numbers) == 3
            and all(isinstance(s, str) for s in dimension_numbers)):
        raise TypeError(f"{name}: dimension_numbers must be three spec strings such as "
                        f"('NCHW', 'OIHW', 'NCHW'), got {dimension_numbers!r}")
    return tuple(dimension_numbers)


def _canonical_shapes(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                      dimension_numbers: Any, name: str
                      ) -> tuple[list[int], list[int], tuple[int, ...]]:
    """lhs and rhs shapes in canonical (N, C, spatial...) / (O, I, spatial...) order, and the
    output permutation."""
    lhs_shape, rhs_shape = _int_tuple(lhs_shape, name, "lhs_shape"), _int_tuple(
        rhs_shape, name, "rhs_shape")
    specs = _string_specs(dimension_numbers, name)
    if not len(lhs_shape) == len(rhs_shape) == len(specs[0]):
        raise TypeError(f"{name}: lhs_shape {lhs_shape} and rhs_shape {rhs_shape} must have "
                        f"one entry per character of the dimension_numbers {specs}")
    with _named(name):
        lhs_perm, rhs_perm, out_perm = conv_general_permutations(specs)
    return [lhs_shape[d] for d in lhs_perm], [rhs_shape[d] for d in rhs_perm], out_perm


def _from_canonical(out_canonical: Sequence[int], out_perm: Sequence[int]) -> tuple[int, ...]:
    """A canonical-order output shape laid out by ``out_perm``."""
    shape = [0] * len(out_perm)
    for size, d in zip(out_canonical, out_perm):
        shape[d] = int(size)
    return tuple(shape)


# --------------------------------------------------------------------------- patches

def _one_hot_filter(dtype: np.dtype, n_channels: int, filter_shape: tuple[int, ...],
                    rhs_spec: Sequence[int]) -> np.ndarray:
    """The constant filter whose output feature ``c * S + k`` copies window tap ``k`` (taps
    row-major over ``filter_shape``) of input channel ``c``, laid out by ``rhs_spec``."""
    taps = prod(filter_shape)
    eye = np.broadcast_to(np.eye(taps, dtype=dtype), (n_channels, taps, taps))
    canonical = eye.reshape(n_channels * taps, 1, *filter_shape)  # (O, I, spatial...)
    return np.ascontiguousarray(np.moveaxis(canonical, (0, 1), tuple(rhs_spec[:2])))


def conv_general_dilated_patches(lhs: Any, filter_shape: Sequence[int],
                                 window_strides: Sequence[int], padding: Any,
                                 lhs_dilation: Sequence[int] | None = None,
                                 rhs_dilation: Sequence[int] | None = None,
                                 dimension_numbers: Any = None, precision: Any = None,
                                 preferred_element_type: Any = None) -> Any:
    """The patches (im2col) a convolution with a ``filter_shape`` window would see
    (``jax.lax.conv_general_dilated_patches``).

    The output is laid out as ``dimension_numbers[2]``; its feature dimension holds each
    flattened patch, ordered channel first, then the window dimensions in ``rhs_spec``
    order, so it has ``C * prod(filter_shape)`` entries. ``filter_shape`` lists the window
    sizes in the order of the spatial characters of ``dimension_numbers[1]``.
    """
    name = "conv_general_dilated_patches"
    lhs = as_operand(lhs)
    aval = core.get_aval(lhs)
    filter_shape = _int_tuple(filter_shape, name, "filter_shape")
    if aval.ndim < 2 or len(filter_shape) != aval.ndim - 2:
        raise TypeError(f"{name}: filter_shape must have one entry per spatial dimension of "
                        f"lhs (rank - 2), got filter_shape {filter_shape} for lhs shape "
                        f"{aval.shape}")
    if any(k < 1 for k in filter_shape):
        raise ValueError(f"{name}: filter_shape must be positive, got {filter_shape}")
    nsp = len(filter_shape)
    strides = _spatial_ints(window_strides, nsp, name, "window_strides")
    lhs_dilation = _spatial_ints(lhs_dilation, nsp, name, "lhs_dilation", 1)
    rhs_dilation = _spatial_ints(rhs_dilation, nsp, name, "rhs_dilation", 1)
    if isinstance(padding, str):
        if any(d != 1 for d in lhs_dilation):
            raise ValueError(f"{name}: string padding {padding!r} is not supported with "
                             f"lhs_dilation {lhs_dilation}; give explicit (low, high) pairs")
    else:
        padding = _pairs(padding, name)
        if len(padding) != nsp:
            raise TypeError(f"{name}: padding must have one (low, high) pair per spatial "
                            f"dimension ({nsp}), got {len(padding)}")
    with _named(name):
        prec = canonicalize_precision(precision)
    if isinstance(prec, tuple):
        raise ValueError(f"{name}: precision applies to lhs alone and must be None, a "
                         f"lax.Precision or its name, got {precision!r}")
    with _named(name):
        dnums = conv_dimension_numbers(aval.shape, (1, 1) + filter_shape, dimension_numbers)
        n_channels = aval.shape[dnums.lhs_spec[1]]
        rhs = _one_hot_filter(aval.dtype, n_channels, filter_shape, dnums.rhs_spec)
        return conv_general_dilated(
            lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, dnums,
            feature_group_count=n_channels,
            precision=None if prec is None else (prec, Precision.DEFAULT),
            preferred_element_type=preferred_element_type)


# --------------------------------------------------------------------------- locally connected

def conv_general_dilated_local(lhs: Any, rhs: Any, window_strides: Sequence[int],
                               padding: Any, filter_shape: Sequence[int],
                               lhs_dilation: Sequence[int] | None = None,
                               rhs_dilation: Sequence[int] | None = None,
                               dimension_numbers: Any = None, precision: Any = None) -> Any:
    """Locally connected (unshared-weight) convolution: a separate kernel at every output
    position (``jax.lax.conv_general_dilated_local``).

    ``rhs``'s spatial dimensions index output positions and its 'I' dimension holds
    ``C * prod(filter_shape)`` weights in the order of ``conv_general_dilated_patches``.
    """
    name = "conv_general_dilated_local"
    with _named(name):
        prec = canonicalize_precision(precision)
    lhs_precision = prec[0] if isinstance(prec, tuple) else prec
    lhs = as_operand(lhs)
    rhs = as_operand(rhs, core.get_aval(lhs).dtype)
    patches = conv_general_dilated_patches(lhs, filter_shape, window_strides, padding,
                                           lhs_dilation, rhs_dilation, dimension_numbers,
                                           lhs_precision)
    lhs_shape = core.get_aval(lhs).shape
    with _named(name):
        lhs_spec, rhs_spec, out_spec = conv_dimension_numbers(
            lhs_shape, (1, 1) + tuple(int(k) for k in filter_shape), dimension_numbers)
    p_shape, r_shape = core.get_aval(patches).shape, core.get_aval(rhs).shape
    if len(r_shape) != len(p_shape):
        raise TypeError(f"{name}: rhs must have the rank of lhs ({len(p_shape)}), got shape "
                        f"{r_shape}")
    want = [p_shape[d] for d in out_spec[2:]]
    if [r_shape[d] for d in rhs_spec[2:]] != want or r_shape[rhs_spec[1]] != p_shape[out_spec[1]]:
        raise TypeError(f"{name}: rhs of shape {r_shape} must have the output spatial sizes "
                        f"{tuple(want)} and {p_shape[out_spec[1]]} (channels times "
                        "prod(filter_shape)) input features, laid out by dimension_numbers[1]")
    # batch over the output positions (in output order), contract the patch features
    pairs = sorted(zip(out_spec[2:], rhs_spec[2:]))
    dnums = (((out_spec[1],), (rhs_spec[1],)),
             (tuple(o for o, _ in pairs), tuple(r for _, r in pairs)))
    out = dot_general(patches, rhs, dnums, precision=precision)  # (spatial..., N, O)
    nsp = len(pairs)
    perm = [0] * (nsp + 2)
    rest = iter(range(nsp))
    for d in range(nsp + 2):  # output dimension d takes N, O or the next spatial dimension
        perm[d] = nsp if d == out_spec[0] else nsp + 1 if d == out_spec[1] else next(rest)
    return transpose(out, tuple(perm))


# --------------------------------------------------------------------------- shape helpers

def conv_general_shape_tuple(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                             window_strides: Sequence[int], padding: Any,
                             dimension_numbers: Sequence[str]) -> tuple[int, ...]:
    """Output shape of ``conv_general_dilated`` (no dilations or groups) for the given
    shapes, laid out by spec strings such as ('NHWC', 'HWIO', 'NHWC')."""
    name = "conv_general_shape_tuple"
    lhs_t, rhs_t, out_perm = _canonical_shapes(lhs_shape, rhs_shape, dimension_numbers, name)
    strides = _spatial_ints(window_strides, len(lhs_t) - 2, name, "window_strides")
    with _named(name):
        pads = (padtype_to_pads(lhs_t[2:], rhs_t[2:], strides, padding)
                if isinstance(padding, str) else _pairs(padding, name))
        out_t = conv_shape_tuple(lhs_t, rhs_t, strides, pads)
    return _from_canonical(out_t, out_perm)


def conv_transpose_shape_tuple(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                               window_strides: Sequence[int], padding: Any,
                               dimension_numbers: Sequence[str]) -> tuple[int, ...]:
    """Output shape of ``conv_transpose`` (no kernel dilation) for the given shapes, laid out
    by spec strings; ``padding`` is 'SAME', 'VALID' or the transposed convolution's pairs."""
    name = "conv_transpose_shape_tuple"
    lhs_t, rhs_t, out_perm = _canonical_shapes(lhs_shape, rhs_shape, dimension_numbers, name)
    nsp = len(lhs_t) - 2
    strides = _spatial_ints(window_strides, nsp, name, "window_strides")
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"{name}: padding must be 'SAME', 'VALID' or (low, high) pairs, "
                             f"got {padding!r}")
        pads = [_conv_transpose_padding(k, s, padding) for k, s in zip(rhs_t[2:], strides)]
    else:
        pads = _pairs(padding, name)
        if len(pads) != nsp:
            raise ValueError(f"{name}: padding must have one (low, high) pair per spatial "
                             f"dimension ({nsp}), got {len(pads)}")
    space = [(i - 1) * s - k + 2 + lo + hi
             for i, k, s, (lo, hi) in zip(lhs_t[2:], rhs_t[2:], strides, pads)]
    return _from_canonical([lhs_t[0], rhs_t[0], *space], out_perm)


def _dilation(v: Sequence[int] | None, n: int, name: str, what: str) -> tuple[int, ...]:
    """A dilation for ``n`` dimensions: ``None`` is all ones; a shorter one applies to the
    trailing dimensions (as JAX's ``_dilate_shape``)."""
    if v is None:
        return (1,) * n
    d = _int_tuple(v, name, what)
    if len(d) > n:
        raise ValueError(f"{name}: {what} has more entries than the operand has dimensions "
                         f"({n}), got {v!r}")
    if any(i < 1 for i in d):
        raise TypeError(f"{name}: {what} must be positive, got {v!r}")
    return (1,) * (n - len(d)) + d


def reduce_window_shape_tuple(operand_shape: Sequence[int], window_dimensions: Sequence[int],
                              window_strides: Sequence[int], padding: Sequence[tuple[int, int]],
                              base_dilation: Sequence[int] | None = None,
                              window_dilation: Sequence[int] | None = None) -> tuple[int, ...]:
    """Output shape of ``reduce_window`` for an operand shape, window, strides, explicit
    (low, high) padding and optional base and window dilations."""
    name = "reduce_window_shape_tuple"
    shape = _int_tuple(operand_shape, name, "operand_shape")
    n = len(shape)
    window = _int_tuple(window_dimensions, name, "window_dimensions")
    strides = _int_tuple(window_strides, name, "window_strides")
    if isinstance(padding, str):
        raise TypeError(f"{name}: padding must be explicit (low, high) pairs, got {padding!r}; "
                        "use lax.padtype_to_pads to resolve a padding string")
    pads = _pairs(padding, name)
    for what, v in (("window_dimensions", window), ("window_strides", strides),
                    ("padding", pads)):
        if len(v) != n:
            raise ValueError(f"{name}: {what} must have one entry per operand dimension "
                             f"({n} for shape {shape}), got {len(v)}")
    if any(s < 1 for s in strides):
        raise ValueError(f"{name}: window_strides must be positive, got {strides}")
    base = _dilation(base_dilation, n, name, "base_dilation")
    wdil = _dilation(window_dilation, n, name, "window_dilation")
    return tuple(int(d) for d in _window_shape(shape, window, strides, pads, base, wdil))

