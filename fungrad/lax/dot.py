"""Contractions: ``dot_general`` and its wrappers ``dot`` and ``batch_matmul``.

``dot_general`` contracts ``lhs`` and ``rhs`` over paired contracting dimensions
and zips paired batch dimensions; the result's dimensions are (batch, lhs free,
rhs free), as in XLA. The implementation permutes both operands to
``(batch, free, contract)`` / ``(batch, contract, free)``, flattens them to
3-D and calls ``matmul``, so NumPy hands the work to BLAS (CuPy to cuBLAS).
16-bit floats are multiplied in float32 and rounded once, as XLA does on CPU.
"""
from __future__ import annotations

import enum
import functools
from typing import Any, Callable, NamedTuple, Sequence, Union

import numpy as np

from fungrad._core import core, dtypes, lowering
from fungrad._core.array import Array
from fungrad._core.core import Primitive, ShapedArray
from fungrad._core.util import prod
from fungrad.backends.bfloat16 import from_bits, to_bits, widen
from fungrad.backends.namespace import impl_for
from fungrad.config import config
from fungrad.interpreters import ad, batching
from fungrad.lax._placement import with_out_sharding
from fungrad.lax._prim import as_operand, operand_dtype
from fungrad.lax.shapes import (convert_element_type, convert_element_type_p, expand_dims,
                                transpose)


class Precision(enum.Enum):
    """Matmul precision hint (``jax.lax.Precision``). The CPU computes at full precision
    whatever the hint, as XLA's CPU backend does; on a GPU float32 contractions below
    ``HIGHEST`` multiply in TensorFloat-32, as JAX's GPU does."""
    DEFAULT = 0
    HIGH = 1
    HIGHEST = 2

    def __repr__(self) -> str:
        return f"Precision.{self.name}"

    __str__ = __repr__


class DotAlgorithm(NamedTuple):
    """An explicit algorithm for a dot product (``jax.lax.DotAlgorithm``), given as the
    ``precision`` of ``dot_general``, ``dot``, ``jnp.matmul``, ``jnp.einsum`` and the other
    contractions.

    It names the types the operands are rounded to, the type the products are accumulated
    in, and how many components and operations emulate a wider type. XLA's CPU backend runs
    none of these: as JAX on the CPU, a contraction given one raises a ``ValueError`` when it
    runs (a convolution ignores it). The ``DotAlgorithmPreset`` members it supports are the
    usable ones there. On a GPU a contraction rounds its operands to the two precision types
    and sums in the accumulation type (the component and operation counts, which describe
    how a wider product is emulated, leave the sum at that type's precision).

    Attributes:
      lhs_precision_type: the type the left operand is rounded to.
      rhs_precision_type: the type the right operand is rounded to.
      accumulation_type: the type the products are summed in.
      lhs_component_count: how many components the left operand is split into.
      rhs_component_count: how many components the right operand is split into.
      num_primitive_operations: how many products emulate the wider type.
      allow_imprecise_accumulation: whether some steps may accumulate in a narrower type.
    """
    lhs_precision_type: Any
    rhs_precision_type: Any
    accumulation_type: Any
    lhs_component_count: int = 1
    rhs_component_count: int = 1
    num_primitive_operations: int = 1
    allow_imprecise_accumulation: bool = False


class DotAlgorithmPreset(enum.Enum):
    """The named dot algorithms (``jax.lax.DotAlgorithmPreset``), ``LHS_RHS_ACCUMULATION``:
    given as ``precision`` (or by name, ``precision="BF16_BF16_F32"``), a contraction rounds
    its operands to the preset's operand type and sums the products in its accumulation
    type, then converts the sum to the result's dtype (which the preset does not change).

    Operands already of an accepted type are used as they are (``BF16_BF16_F32`` takes
    bfloat16 and float32 operands; the others one type). As on JAX's CPU backend,
    ``DEFAULT``, ``F16_F16_F16``, ``BF16_BF16_F32``, ``BF16_BF16_F32_X3``,
    ``BF16_BF16_F32_X6``, ``F32_F32_F32`` and ``F64_F64_F64`` run (the ``_X3``/``_X6``
    emulations of float32 products compute them in float32, as XLA's CPU backend does) and
    the others raise a ``ValueError`` when the contraction runs. On a GPU every preset runs,
    as on JAX's GPU, emulated on CuPy's float32 products: float32 operands of the bfloat16
    presets are rounded to bfloat16 and those of ``TF32_TF32_F32`` to TensorFloat-32 (the
    CPU keeps them); the float8 presets need float8 operands, which a GPU does not hold. A
    convolution accepts every preset and ignores it, as XLA's CPU backend does.

    >>> import fungrad.numpy as jnp
    >>> from fungrad import lax
    >>> m, v = jnp.array([[1.0, 1.0 / 3.0], [0.0, 1.0]]), jnp.array([1.0, 1.0 / 3.0])
    >>> lax.dot(m, v)
    Array([1.1111112 , 0.33333334], dtype=float32)
    >>> lax.dot(m, v, precision="F16_F16_F16")  # operands and sums rounded to float16
    Array([1.1113281 , 0.33325195], dtype=float32)
    """
    DEFAULT = enum.auto()
    ANY_F8_ANY_F8_F32 = enum.auto()
    ANY_F8_ANY_F8_F32_FAST_ACCUM = enum.auto()
    ANY_F8_ANY_F8_ANY = enum.auto()
    ANY_F8_ANY_F8_ANY_FAST_ACCUM = enum.auto()
    F16_F16_F16 = enum.auto()
    F16_F16_F32 = enum.auto()
    BF16_BF16_BF16 = enum.auto()
    BF16_BF16_F32 = enum.auto()
    BF16_BF16_F32_X3 = enum.auto()
    BF16_BF16_F32_X6 = enum.auto()
    BF16_BF16_F32_X9 = enum.auto()
    TF32_TF32_F32 = enum.auto()
    TF32_TF32_F32_X3 = enum.auto()
    F32_F32_F32 = enum.auto()
    F64_F64_F64 = enum.auto()

    def __repr__(self) -> str:
        return f"DotAlgorithmPreset.{self.name}"

    def __str__(self) -> str:
        return self.name

    @property
    def supported_lhs_types(self) -> tuple[np.dtype, ...] | None:
        """The left operand types used as they are (others are rounded to the first); None
        when any type is."""
        names = _PRESET_TYPES[self.name][0]
        return None if names is None else tuple(dtypes.np_dtype(n) for n in names)

    @property
    def supported_rhs_types(self) -> tuple[np.dtype, ...] | None:
        """The right operand types used as they are (the left operand's)."""
        return self.supported_lhs_types

    @property
    def accumulation_type(self) -> np.dtype | None:
        """The type the products are summed in; None when the result's dtype decides."""
        name = _PRESET_TYPES[self.name][1]
        return None if name is None else dtypes.np_dtype(name)

    def supported_output_types(self, lhs_dtype: Any,
                               rhs_dtype: Any) -> tuple[np.dtype, ...] | None:
        """The result dtypes the sum may be accumulated in directly, for operands of these
        types (others accumulate in the first and are converted); None for any."""
        if self.name.startswith("ANY_F8_ANY_F8_F32"):
            return tuple(dtypes.np_dtype(n) for n in _F8_OUTPUTS)
        narrow = {"F16_F16_F32": "float16", "BF16_BF16_F32": "bfloat16"}.get(self.name)
        if narrow is not None:  # the narrow output only from operands of that type
            f32, narrow = dtypes.float32, dtypes.np_dtype(narrow)
            both = dtypes.promote_types(lhs_dtype, rhs_dtype)
            return (f32, narrow) if both == narrow else (f32,)
        acc = self.accumulation_type
        return None if acc is None else (acc,)


# Per preset: the operand types it takes as they are (None: any) and the accumulation type
# (None: the result's). Names, not dtypes: bfloat16 exists once ml_dtypes is loaded.
_PRESET_TYPES = {
    "DEFAULT": (None, None), "ANY_F8_ANY_F8_F32": (None, "float32"),
    "ANY_F8_ANY_F8_F32_FAST_ACCUM": (None, "float32"), "ANY_F8_ANY_F8_ANY": (None, None),
    "ANY_F8_ANY_F8_ANY_FAST_ACCUM": (None, None),
    "F16_F16_F16": (("float16",), "float16"), "F16_F16_F32": (("float16",), "float32"),
    "BF16_BF16_BF16": (("bfloat16", "float32"), "bfloat16"),
    "BF16_BF16_F32": (("bfloat16", "float32"), "float32"),
    **{name: (("float32",), "float32") for name in (
        "BF16_BF16_F32_X3", "BF16_BF16_F32_X6", "BF16_BF16_F32_X9", "TF32_TF32_F32",
        "TF32_TF32_F32_X3", "F32_F32_F32")},
    "F64_F64_F64": (("float64",), "float64"),
}
_F8_OUTPUTS = ("float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
               "float8_e5m2fnuz", "float8_e4m3fnuz", "float8_e4m3b11fnuz")
# The algorithms XLA's CPU backend runs (JAX rejects the others, and every DotAlgorithm,
# before compiling a contraction for the CPU).
_CPU_PRESETS = frozenset(DotAlgorithmPreset[name] for name in (
    "DEFAULT", "F16_F16_F16", "F32_F32_F32", "F64_F64_F64", "BF16_BF16_F32",
    "BF16_BF16_F32_X3", "BF16_BF16_F32_X6"))
_F8_PRESETS = frozenset(p for p in DotAlgorithmPreset if p.name.startswith("ANY_F8"))


def is_algorithm(precision: Any) -> bool:
    """Whether a canonical ``precision`` is a dot algorithm (which lifts the rule that an
    integer ``preferred_element_type`` may not narrow the result, as in JAX)."""
    return isinstance(precision, (DotAlgorithm, DotAlgorithmPreset))


def uses_algorithm(precision: Any) -> bool:
    """Whether a canonical ``precision`` is a dot algorithm other than ``DEFAULT`` (one that
    may round the operands or the sum)."""
    return is_algorithm(precision) and precision is not DotAlgorithmPreset.DEFAULT


def algorithm_types(algorithm: DotAlgorithm | DotAlgorithmPreset, lhs: np.dtype,
                    rhs: np.dtype, out: np.dtype) -> tuple[np.dtype, np.dtype, np.dtype]:
    """The types ``algorithm`` rounds operands of dtypes ``lhs`` and ``rhs`` to, and the
    type it accumulates a result of dtype ``out`` in (JAX's ``get_algorithm_compute_types``).
    """
    if isinstance(algorithm, DotAlgorithm):
        return tuple(dtypes.np_dtype(t) for t in (algorithm.lhs_precision_type,
                                                  algorithm.rhs_precision_type,
                                                  algorithm.accumulation_type))

    def pick(dt: np.dtype, accepted: tuple | None) -> np.dtype:
        return dt if accepted is None or dt in accepted else accepted[0]
    lt, rt = pick(lhs, algorithm.supported_lhs_types), pick(rhs, algorithm.supported_rhs_types)
    return lt, rt, pick(out, algorithm.supported_output_types(lt, rt))


def _check_algorithm(xp: Any, algorithm: Any, lhs: Any, rhs: Any) -> None:
    """Raise JAX's ``ValueError`` for an algorithm the device does not run: on the CPU
    (``xp`` NumPy) those outside XLA's CPU set; on a GPU the float8 presets, which need
    float8 operands (a GPU holds none: ``device_put`` refuses them)."""
    if xp is np:
        if algorithm not in _CPU_PRESETS:
            raise ValueError(f"The precision '{algorithm}' is not supported by dot_general "
                             "on CPU")
    elif algorithm in _F8_PRESETS:
        raise ValueError(f"The dot algorithm '{algorithm}' requires both inputs to have "
                         f"float8 dtypes. Got {lhs.dtype} and {rhs.dtype} instead.")


def round_to_tf32(xp: Any, x: Any) -> Any:
    """float32 ``x`` rounded to TensorFloat-32's 10 mantissa bits (8 exponent bits, as
    float32), to nearest with ties away from zero as ``cvt.rna.tf32.f32`` rounds, kept as
    float32; NaN stays NaN."""
    bits = xp.ascontiguousarray(x).reshape(x.shape).view(xp.uint32)
    rounded = ((bits + xp.uint32(0x1000)) & xp.uint32(0xFFFFE000)).view(xp.float32)
    return xp.where(xp.isnan(x), x, rounded)


def _round_to_bf16(xp: Any, x: Any) -> Any:
    """float32 ``x`` rounded to bfloat16 (to nearest even), kept as float32."""
    return from_bits(xp, to_bits(xp, x)) if x.dtype == np.float32 else x


# The rounding a GPU applies to float32 operands that the preset's operand types keep as
# they are (JAX's GPU rewrites them to the preset's precision; its CPU does not).
_GPU_ROUNDING = {DotAlgorithmPreset.BF16_BF16_F32: _round_to_bf16,
                 DotAlgorithmPreset.BF16_BF16_BF16: _round_to_bf16,
                 DotAlgorithmPreset.TF32_TF32_F32: round_to_tf32}


def run_algorithm(xp: Any, algorithm: Any, lhs: Any, rhs: Any, preferred: np.dtype | None,
                  contract: Callable[[Any, Any, np.dtype], Any], name: str = "dot_general"
                  ) -> Any:
    """A contraction of the buffers ``lhs`` and ``rhs`` as ``algorithm`` computes it:
    ``contract(lhs, rhs, accumulation_dtype)`` on the operands rounded to the algorithm's
    types, its result converted to the contraction's result dtype. As JAX, an algorithm the
    device's XLA backend does not run raises a ``ValueError`` naming it.

    On a GPU (any ``xp`` but NumPy) every preset runs as on JAX's GPU, emulated: the
    operands are rounded to the preset's precision (float32 operands of ``BF16_BF16_F32``
    and ``BF16_BF16_BF16`` to bfloat16, of ``TF32_TF32_F32`` to TensorFloat-32, where the
    CPU multiplies them in float32) and the products summed in float32 or wider
    (``BF16_BF16_BF16`` and ``F16_F16_F16`` then round the sum); the ``_X3``/``_X6``/``_X9``
    emulations of float32 products compute them in float32, as on the CPU."""
    _check_algorithm(xp, algorithm, lhs, rhs)
    out = dot_result_dtype(lhs.dtype, rhs.dtype, preferred, name, check_width=False)
    lt, rt, acc = algorithm_types(algorithm, lhs.dtype, rhs.dtype, out)
    # on a device an operand rounded to bfloat16 is a buffer of its bits: contracted as the
    # float32 values it holds exactly (as the CPU contracts bfloat16, in float32)
    rounded = [widen(xp, as_result(xp, x, t)) for x, t in ((lhs, lt), (rhs, rt))]
    if xp is not np and algorithm in _GPU_ROUNDING:
        rounded = [_GPU_ROUNDING[algorithm](xp, x) for x in rounded]
    return as_result(xp, contract(*rounded, acc), out)


# Type aliases of JAX's signatures, for annotations written against ``jax.lax``.
PrecisionLike = Union[None, str, Precision, tuple[str, str], tuple[Precision, Precision],
                      DotAlgorithm, DotAlgorithmPreset]
DotDimensionNumbers = tuple[tuple[Sequence[int], Sequence[int]],
                            tuple[Sequence[int], Sequence[int]]]

_PRECISION_NAMES = {"default": Precision.DEFAULT, "fastest": Precision.DEFAULT,
                    "bfloat16": Precision.DEFAULT, "high": Precision.HIGH,
                    "tensorfloat32": Precision.HIGH, "bfloat16_3x": Precision.HIGH,
                    "highest": Precision.HIGHEST, "float32": Precision.HIGHEST}


def _one_precision(precision: Any) -> Precision | None:
    """A ``Precision`` or its name as a ``Precision``, else None."""
    if isinstance(precision, Precision):
        return precision
    if isinstance(precision, str):
        return _PRECISION_NAMES.get(precision.lower())
    return None


def canonicalize_precision(precision: Any) -> Any:
    """``None``, a ``Precision``, a pair of them (strings such as 'highest' accepted), or a
    dot algorithm: a ``DotAlgorithm``, or a ``DotAlgorithmPreset`` or its name. None takes
    ``config.default_matmul_precision`` (``jax_default_matmul_precision``) when it is set,
    as in JAX."""
    if precision is None:
        default = config.default_matmul_precision
        return None if default is None else canonicalize_precision(default)
    if is_algorithm(precision):
        return precision
    if isinstance(precision, str) and precision in DotAlgorithmPreset.__members__:
        return DotAlgorithmPreset[precision]  # as in JAX, "DEFAULT" is the preset
    one = _one_precision(precision)
    if one is not None:
        return one
    if isinstance(precision, (tuple, list)) and len(precision) == 2:
        pair = tuple(_one_precision(p) for p in precision)
        if None not in pair:
            return pair
    raise ValueError(f"dot_general: invalid precision {precision!r}; expected None, a "
                     "lax.Precision, a string such as 'highest', a pair of them, a "
                     "lax.DotAlgorithmPreset or its name, or a lax.DotAlgorithm")


def _remaining(original: Sequence[int], *removed: Sequence[int]) -> list[int]:
    gone = set().union(*map(set, removed))
    return [i for i in original if i not in gone]


def _ranges_like(*xs: Sequence[Any]) -> list[tuple[int, ...]]:
    out, start = [], 0
    for x in xs:
        out.append(tuple(range(start, start + len(x))))
        start += len(x)
    return out


# --------------------------------------------------------------------------- shape / dtype rules

def check_dims(fname: str, name: str, dims: Sequence[int], ndim: int, what: str) -> None:
    """Raise unless ``dims`` are distinct dimensions of ``name``, an operand of rank ``ndim``."""
    if any(not 0 <= d < ndim for d in dims) or len(set(dims)) != len(dims):
        raise TypeError(f"{fname} requires {name} {what} dimensions to be distinct, "
                        f"nonnegative and less than the rank of the {name} ({ndim}), "
                        f"got {tuple(dims)}")


def check_dimension_numbers(fname: str, lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                            dimension_numbers: Any) -> None:
    """Raise a ``TypeError`` naming ``fname`` unless ``((lhs_contracting, rhs_contracting),
    (lhs_batch, rhs_batch))`` are valid for operands of these shapes (``dot_general``'s rules,
    which ``ragged_dot_general`` shares)."""
    (lc, rc), (lb, rb) = dimension_numbers
    check_dims(fname, "lhs", lc, len(lhs_shape), "contracting")
    check_dims(fname, "lhs", lb, len(lhs_shape), "batch")
    check_dims(fname, "rhs", rc, len(rhs_shape), "contracting")
    check_dims(fname, "rhs", rb, len(rhs_shape), "batch")
    if set(lc) & set(lb) or set(rc) & set(rb):
        raise TypeError(f"{fname} requires batch dimensions to be disjoint from contracting "
                        f"dimensions, got {dimension_numbers}")
    if len(lb) != len(rb):
        raise TypeError(f"{fname} requires equal numbers of lhs_batch and rhs_batch "
                        f"dimensions, got lhs_batch {tuple(lb)} and rhs_batch {tuple(rb)}")
    if len(lc) != len(rc):
        raise TypeError(f"{fname} requires equal numbers of lhs and rhs contracting "
                        f"dimensions, got {tuple(lc)} and {tuple(rc)}")
    batch = tuple(lhs_shape[i] for i in lb)
    if batch != tuple(rhs_shape[i] for i in rb):
        raise TypeError(f"{fname} requires lhs batch dimensions and rhs batch dimensions to "
                        f"have the same shape, got {batch} and {tuple(rhs_shape[i] for i in rb)} "
                        f"(lhs {tuple(lhs_shape)}, rhs {tuple(rhs_shape)})")
    if tuple(lhs_shape[i] for i in lc) != tuple(rhs_shape[i] for i in rc):
        raise TypeError(f"{fname} requires contracting dimensions to have the same shape, got "
                        f"{tuple(lhs_shape[i] for i in lc)} and {tuple(rhs_shape[i] for i in rc)} "
                        f"(lhs {tuple(lhs_shape)}, rhs {tuple(rhs_shape)})")


@functools.lru_cache(maxsize=1024)
def _dot_general_shape(lhs_shape, rhs_shape, dimension_numbers) -> tuple[int, ...]:
    check_dimension_numbers("dot_general", lhs_shape, rhs_shape, dimension_numbers)
    (lc, rc), (lb, rb) = dimension_numbers
    batch = tuple(lhs_shape[i] for i in lb)
    lhs_free = tuple(lhs_shape[i] for i in _remaining(range(len(lhs_shape)), lc, lb))
    rhs_free = tuple(rhs_shape[i] for i in _remaining(range(len(rhs_shape)), rc, rb))
    return batch + lhs_free + rhs_free


def _bit_width(dt: np.dtype) -> int:
    return 1 if dt == np.bool_ else 8 * dt.itemsize


def _type_properties(dt: np.dtype) -> tuple:
    """XLA's ordering of operand types: complex, exponent range, mantissa, width, signedness."""
    real = np.dtype(np.float32 if dt == np.complex64 else np.float64) if dt.kind == "c" else dt
    floating = dtypes.is_float(real)
    info = dtypes.finfo(real) if floating else None
    return (dt.kind == "c", int(info.maxexp) if floating else -1,
            int(info.nmant) if floating else -1, _bit_width(real), real.kind != "u")


@functools.lru_cache(maxsize=512)
def dot_result_dtype(lhs: np.dtype, rhs: np.dtype, preferred: np.dtype | None,
                     name: str = "dot_general", check_width: bool = True) -> np.dtype:
    """The output dtype of a contraction (the wider operand type, or ``preferred``, which
    may not be narrower than an integer result unless ``check_width`` is off, as it is for
    a dot algorithm)."""
    lp, rp = _type_properties(lhs), _type_properties(rhs)
    if lp == rp and lhs != rhs:
        raise TypeError(f"{name} argument type error: {lhs.name}, {rhs.name}")
    result = lhs if lp >= rp else rhs
    if preferred is None or preferred == result:
        return result
    if (check_width and not dtypes.is_float(result)
            and _bit_width(preferred) < _bit_width(result)):
        raise TypeError(f"{name}: preferred_element_type must not be narrower than the "
                        f"original type, got {preferred.name} for result type {result.name}")
    return preferred


def compute_dtype(lhs: np.dtype, rhs: np.dtype, out: np.dtype) -> np.dtype:
    """The dtype a contraction with result dtype ``out`` runs in: float32 for narrow floats,
    and the operands' own float type when an integer result is asked of floats (XLA sums in
    floats, then converts)."""
    if not dtypes.is_inexact(out) and (dtypes.is_inexact(lhs) or dtypes.is_inexact(rhs)):
        out = dot_result_dtype(lhs, rhs, None)
    return dtypes.float32 if out in dtypes.half_floats else out


def as_result(xp: Any, value: Any, out_dtype: np.dtype) -> Any:
    """A contraction's ``value`` (in its ``compute_dtype``) as ``out_dtype``, converted as
    ``convert_element_type`` converts (floats to integers truncate and saturate; on a
    device, bfloat16 as the backend stores it)."""
    if value.dtype == out_dtype:
        return value
    convert = impl_for(xp, convert_element_type_p.name, convert_element_type_p.impl)
    return convert(xp, value, new_dtype=out_dtype, weak_type=False)


def _dot_general_abstract(lhs, rhs, *, dimension_numbers, precision, preferred_element_type):
    shape = _dot_general_shape(tuple(lhs.shape), tuple(rhs.shape), dimension_numbers)
    dt = dot_result_dtype(lhs.dtype, rhs.dtype, preferred_element_type,
                          check_width=not is_algorithm(precision))
    return ShapedArray(shape, dt, lhs.weak_type and rhs.weak_type)


# --------------------------------------------------------------------------- implementation

# dtypes NumPy hands to BLAS as they are (a plain product needs no widening or rounding)
BLAS_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.complex64,
                                               np.complex128))


@functools.lru_cache(maxsize=1024)
def _matmul_plan(lhs_shape: tuple, rhs_shape: tuple, dimension_numbers: tuple) -> tuple:
    """How to run a contraction as one ``matmul``: each operand's permutation to
    (batch, free, contract) / (batch, contract, free) (None when already in that order),
    the 2-D or 3-D shapes to view them as, and the output shape; first, whether it is a
    plain (m, k) @ (k, n) product. Cached per signature so eager calls do no index
    bookkeeping."""
    (lc, rc), (lb, rb) = dimension_numbers
    lf = _remaining(range(len(lhs_shape)), lc, lb)
    rf = _remaining(range(len(rhs_shape)), rc, rb)
    size = lambda shape, dims: prod(shape[d] for d in dims)
    b, m, k = size(lhs_shape, lb), size(lhs_shape, lf), size(lhs_shape, lc)
    n = size(rhs_shape, rf)
    lhs_perm, rhs_perm = (*lb, *lf, *lc), (*rb, *rc, *rf)
    identity = lambda perm: perm == tuple(range(len(perm)))
    lhs_view, rhs_view = (b, m, k) if b != 1 else (m, k), (b, k, n) if b != 1 else (k, n)
    plain = (identity(lhs_perm) and identity(rhs_perm) and lhs_view == lhs_shape
             and rhs_view == rhs_shape and len(lhs_shape) == len(rhs_shape) == 2)
    return (plain, None if identity(lhs_perm) else lhs_perm, lhs_view,
            None if identity(rhs_perm) else rhs_perm, rhs_view,
            _dot_general_shape(lhs_shape, rhs_shape, dimension_numbers))


def _tf32_allowed(precision: Any) -> bool:
    """Whether a float32 contraction at canonical ``precision`` may multiply in
    TensorFloat-32 on a GPU: below ``HIGHEST``, as XLA's GPU backend does (a dot algorithm
    rounds the operands itself, in ``run_algorithm``)."""
    if precision is None:
        return True
    if isinstance(precision, Precision):
        return precision is not Precision.HIGHEST
    return isinstance(precision, tuple) and Precision.HIGHEST not in precision


def matmul_for(xp: Any, precision: Any, dtype: np.dtype) -> Callable[..., Any]:
    """The ``matmul`` of backend ``xp`` for operands of ``dtype`` at canonical
    ``precision``: on a GPU a float32 one below ``HIGHEST`` uses its TensorFloat-32 matmul
    (``fungrad_matmul_tf32``: tensor cores, as JAX's GPU), else ``xp.matmul``."""
    if xp is np:  # (before the attribute lookup, which NumPy's module makes slow)
        return np.matmul
    tf32 = getattr(xp, "fungrad_matmul_tf32", None)
    if tf32 is not None and dtype == np.float32 and _tf32_allowed(precision):
        return tf32
    return xp.matmul


def _dot_general_impl(xp, lhs, rhs, *, dimension_numbers, precision, preferred_element_type):
    if uses_algorithm(precision):  # (its rounded operands multiplied exactly: HIGHEST)
        return run_algorithm(xp, precision, lhs, rhs, preferred_element_type,
                             lambda a, c, acc: _dot_general_impl(
                                 xp, a, c, dimension_numbers=dimension_numbers,
                                 precision=Precision.HIGHEST, preferred_element_type=acc))
    plain, lhs_perm, lhs_view, rhs_perm, rhs_view, out_shape = _matmul_plan(
        lhs.shape, rhs.shape, dimension_numbers)
    if (plain and preferred_element_type is None and lhs.dtype in BLAS_DTYPES
            and lhs.dtype == rhs.dtype):  # a plain matrix product: (m, k) @ (k, n)
        return matmul_for(xp, precision, lhs.dtype)(lhs, rhs)
    out_dtype = dot_result_dtype(lhs.dtype, rhs.dtype, preferred_element_type)
    compute = compute_dtype(lhs.dtype, rhs.dtype, out_dtype)
    lhs, rhs = lhs.astype(compute, copy=False), rhs.astype(compute, copy=False)
    a = (lhs if lhs_perm is None else lhs.transpose(lhs_perm)).reshape(lhs_view)
    c = (rhs if rhs_perm is None else rhs.transpose(rhs_perm)).reshape(rhs_view)
    matmul = matmul_for(xp, precision, np.dtype(compute))
    return as_result(xp, matmul(a, c).reshape(out_shape), out_dtype)


# --------------------------------------------------------------------------- transposes

def _dot_general_transpose_lhs(ct, x, y, *, dimension_numbers, precision,
                               preferred_element_type, swap_ans=False):
    (x_contract, y_contract), (x_batch, y_batch) = dimension_numbers
    x_aval = x.aval
    y_ndim = core.get_aval(y).ndim
    x_kept = _remaining(range(x_aval.ndim), x_contract, x_batch)
    y_kept = _remaining(range(y_ndim), y_contract, y_batch)
    if swap_ans:
        ans_batch, ans_y, _ = _ranges_like(x_batch, y_kept, x_kept)
    else:
        ans_batch, _, ans_y = _ranges_like(x_batch, x_kept, y_kept)
    dims = ((ans_y, tuple(y_kept)), (ans_batch, tuple(y_batch)))
    x_contract_sorted_by_y = [x_contract[i] for i in np.argsort(y_contract)]
    out_axes = tuple(int(i) for i in np.argsort(list(x_batch) + x_kept + x_contract_sorted_by_y))
    x_bar = transpose(dot_general(ct, y, dims, precision, preferred_element_type), out_axes)
    if core.get_aval(x_bar).dtype != x_aval.dtype:
        x_bar = convert_element_type(x_bar, x_aval.dtype, x_aval.weak_type)
    return x_bar


def _dot_general_transpose_rhs(ct, x, y, *, dimension_numbers, precision, preferred_element_type):
    (x_contract, y_contract), (x_batch, y_batch) = dimension_numbers
    swapped = ((y_contract, x_contract), (y_batch, x_batch))
    return _dot_general_transpose_lhs(ct, y, x, dimension_numbers=swapped, precision=precision,
                                      preferred_element_type=preferred_element_type, swap_ans=True)


# --------------------------------------------------------------------------- batching

def _bump(dims: Sequence[int], b: int) -> tuple[int, ...]:
    return tuple(d + (d >= b) for d in dims)


def _dot_general_batch(axis_size, vals, dims, *, dimension_numbers, precision,
                       preferred_element_type):
    """Both batched: a new leading batch dimension. One batched: an extra free dimension."""
    lhs, rhs = vals
    lbd, rbd = dims
    (lc, rc), (lb, rb) = dimension_numbers
    lhs_ndim, rhs_ndim = core.get_aval(lhs).ndim, core.get_aval(rhs).ndim
    if lbd is not None and rbd is not None:
        lb, rb = (lbd,) + _bump(lb, lbd), (rbd,) + _bump(rb, rbd)
        lc, rc = _bump(lc, lbd), _bump(rc, rbd)
        out_dim = 0
    elif lbd is not None:
        lhs_free = _remaining(range(lhs_ndim - 1), lc, lb)
        out_dim = len(lb) + sum(d < lbd for d in lhs_free)
        lb, lc = _bump(lb, lbd), _bump(lc, lbd)
    else:
        rhs_free = _remaining(range(rhs_ndim - 1), rc, rb)
        out_dim = (lhs_ndim - len(lc)) + sum(d < rbd for d in rhs_free)
        rb, rc = _bump(rb, rbd), _bump(rc, rbd)
    out = dot_general_p.bind(lhs, rhs, dimension_numbers=((lc, rc), (lb, rb)),
                             precision=precision, preferred_element_type=preferred_element_type)
    return out, out_dim


dot_general_p = Primitive("dot_general")
dot_general_p.def_impl(_dot_general_impl)
dot_general_p.def_abstract_eval(_dot_general_abstract)
ad.defbilinear(dot_general_p, _dot_general_transpose_lhs, _dot_general_transpose_rhs)
batching.def_batch(dot_general_p, _dot_general_batch)
lowering.def_compiler_traits(dot_general_p, threaded=True)  # BLAS threads it


def _dot_general_lowering(ctx, eqn, args, out):
    """One ``matmul`` of transposed views: batch, free and contracting axes put in order and
    merged by reshapes (views where the layout allows)."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    xs, ys = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    lf = [d for d in range(len(xs)) if d not in lc and d not in lb]
    rf = [d for d in range(len(ys)) if d not in rc and d not in rb]
    size = lambda shape, dims: int(np.prod([shape[d] for d in dims], dtype=np.int64))
    b, m, k, n = size(xs, lb), size(xs, lf), size(xs, lc), size(ys, rf)

    def arrange(name, shape, perm, new_shape):
        expr = name
        if tuple(perm) != tuple(range(len(shape))):
            expr = f"{expr}.transpose({tuple(perm)!r})"
        if tuple(shape[p] for p in perm) != new_shape:
            expr = f"{expr}.reshape({new_shape!r})"
        return expr
    # Several batch axes stay separate (matmul broadcasts over them) when the matrices
    # are single axes: merging them would copy a transposed operand.
    single = len(lf) == len(lc) == len(rf) == 1
    batch = tuple(xs[d] for d in lb) if single else (b,) if lb else ()
    a = arrange(args[0], xs, (*lb, *lf, *lc), (*batch, m, k))
    c = arrange(args[1], ys, (*rb, *rc, *rf), (*batch, k, n))
    out_shape = eqn.outvars[0].aval.shape
    natural = (*batch, m, n)
    if out:  # a C-contiguous buffer reshapes to a view; otherwise matmul fills a copy
        out = out if out_shape == natural else f"{out}.reshape({natural!r})"
    matmul = matmul_for(ctx.xp, eqn.params["precision"], eqn.invars[0].aval.dtype)
    expr = f"{ctx.const(matmul, 'matmul')}({a}, {c}{', out=' + out if out else ''})"
    if out_shape != natural:
        expr = f"{expr}.reshape({out_shape!r})"
    return expr


def _plain_dot(eqn) -> bool:
    """Operands and result of one floating dtype NumPy's matmul handles natively, and no
    dot algorithm to round them (the impl applies one)."""
    x, y = eqn.invars[0].aval, eqn.invars[1].aval
    out = eqn.outvars[0].aval
    return (x.dtype == y.dtype == out.dtype and x.dtype.kind in "fc" and x.dtype.isbuiltin == 1
            and not uses_algorithm(eqn.params["precision"]))


lowering.def_lowering(dot_general_p, _dot_general_lowering, fresh=True, out="separate",
                      when=_plain_dot)


# --------------------------------------------------------------------------- wrappers

def _index_tuple(dims: Any, what: str) -> tuple[int, ...]:
    if isinstance(dims, (int, np.integer)):
        return (int(dims),)
    try:
        return tuple(int(d) for d in dims)
    except TypeError as e:
        raise TypeError(f"dot_general: {what} must be a sequence of ints, got {dims!r}") from e


def _operands(lhs: Any, rhs: Any) -> tuple[Any, Any]:
    dt = operand_dtype(lhs, rhs)
    return as_operand(lhs, dt), as_operand(rhs, dt)


def dot_general(lhs: Any, rhs: Any, dimension_numbers: Any, precision: Any = None,
                preferred_element_type: Any = None, *, out_sharding: Any = None) -> Any:
    """General contraction (``jax.lax.dot_general``).

    ``dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``.
    The result's dimensions are the batch dimensions, then the free dimensions of
    ``lhs``, then those of ``rhs``. ``preferred_element_type`` sets the
    accumulation and output dtype (e.g. int8 x int8 -> int32). ``out_sharding`` puts the
    result on a device (see ``fungrad.lax._placement``; None leaves it where the
    operation runs).
    """
    if type(lhs) is not Array or type(rhs) is not Array:
        lhs, rhs = _operands(lhs, rhs)
    try:
        dnums = _canonical_dimension_numbers(dimension_numbers)
    except TypeError:  # unhashable (lists): the same canonicalisation, uncached
        dnums = _canonical_dimension_numbers.__wrapped__(dimension_numbers)
    preferred = None if preferred_element_type is None else dtypes.canonicalize_dtype(
        preferred_element_type)
    precision = canonicalize_precision(precision)
    if uses_algorithm(precision) and not dnums[0][0]:
        lhs, rhs, dnums = _unit_contraction(lhs, rhs, dnums)
    out = dot_general_p.bind(lhs, rhs, dimension_numbers=dnums, precision=precision,
                             preferred_element_type=preferred)
    return out if out_sharding is None else with_out_sharding(out, out_sharding,
                                                              "lax.dot_general")


def _unit_contraction(lhs: Any, rhs: Any, dimension_numbers: tuple) -> tuple[Any, Any, tuple]:
    """A contraction over no dimensions (an outer or batched elementwise product) as one
    over a new last dimension of size 1 of each operand: the same products and result. The
    compiler turns a ``dot_general`` without contracting dimensions into a multiply, which
    would skip a dot algorithm's rounding; with one it stays a ``dot_general``."""
    ln, rn = core.get_aval(lhs).ndim, core.get_aval(rhs).ndim
    return (expand_dims(lhs, (ln,)), expand_dims(rhs, (rn,)),
            (((ln,), (rn,)), dimension_numbers[1]))


@functools.lru_cache(maxsize=1024)
def _canonical_dimension_numbers(dimension_numbers: Any) -> tuple:
    """``dimension_numbers`` as nested tuples of ints, or a ``TypeError`` saying the form."""
    try:
        (lc, rc), (lb, rb) = dimension_numbers
    except (TypeError, ValueError) as e:
        raise TypeError("dot_general: dimension_numbers must be ((lhs_contract, rhs_contract), "
                        f"(lhs_batch, rhs_batch)), got {dimension_numbers!r}") from e
    return ((_index_tuple(lc, "lhs_contract"), _index_tuple(rc, "rhs_contract")),
            (_index_tuple(lb, "lhs_batch"), _index_tuple(rb, "rhs_batch")))


def dot(lhs: Any, rhs: Any, precision: Any = None, preferred_element_type: Any = None, *,
        dimension_numbers: Any = None, out_sharding: Any = None) -> Any:
    """Vector/matrix products (``jax.lax.dot``): contracts the last axis of ``lhs`` with the
    first of ``rhs`` for 1-D and 2-D operands; with ``dimension_numbers`` it is ``dot_general``.
    ``out_sharding`` puts the result on a device, as in ``dot_general``."""
    lhs, rhs = _operands(lhs, rhs)
    if dimension_numbers is None:
        ls, rs = core.get_aval(lhs).shape, core.get_aval(rhs).shape
        if not (1 <= len(ls) <= 2 and 1 <= len(rs) <= 2 and ls[-1] == rs[0]):
            raise ValueError("dot: dimension_numbers must be specified when not performing a "
                             "simple un-batched matrix-matrix, matrix-vector or vector-vector "
                             f"product; got lhs shape {ls} and rhs shape {rs}")
        dimension_numbers = (((len(ls) - 1,), (0,)), ((), ()))
    out = dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type)
    return out if out_sharding is None else with_out_sharding(out, out_sharding, "lax.dot")


def batch_matmul(lhs: Any, rhs: Any, precision: Any = None) -> Any:
    """Matrix products batched over all leading dimensions (``jax.lax.batch_matmul``)."""
    lhs, rhs = _operands(lhs, rhs)
    ln, rn = core.get_aval(lhs).ndim, core.get_aval(rhs).ndim
    if min(ln, rn) < 2:
        raise ValueError(f"batch_matmul: arguments must be at least 2-D, got ranks {ln} and {rn}")
    if ln != rn:
        raise ValueError(f"batch_matmul: arguments must have the same rank, got {ln} and {rn}")
    batch = tuple(range(ln - 2))
    return dot_general(lhs, rhs, (((ln - 1,), (rn - 2,)), (batch, batch)), precision)


__all__ = ['Precision', 'PrecisionLike', 'DotAlgorithm', 'DotAlgorithmPreset',
           'DotDimensionNumbers', 'dot_general', 'dot_general_p', 'dot', 'batch_matmul']
