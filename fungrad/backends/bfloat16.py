"""bfloat16 on a device whose array library has no bfloat16 dtype (CuPy).

A device array of bfloat16 is a ``Bfloat16Buffer``: its bits in a ``uint16`` device array
(``storage``, as the generated kernels read and write them: ``compiler.cuda.storage_dtype``)
and the dtype ``bfloat16``, so an ``Array`` holding one reports ``bfloat16`` and its
host copy is an ml_dtypes bfloat16 array.

Primitive implementations never see one: ``widened(name, impl)`` (what
``namespace.impl_for`` hands out on a device) gives them float32 instead (bfloat16
widens exactly) with bfloat16 in their dtype parameters read as float32, and rounds
the results the primitive's abstract evaluation types as bfloat16 back to bfloat16,
to nearest even. That is the CPU's arithmetic: ml_dtypes computes bfloat16 operations
in float32 and rounds once, and matmuls (cuBLAS here) accumulate in float32.

An elementwise primitive that generated kernels compute (one declaring its C expression,
``_core.lowering.def_cuda``) runs instead as one CuPy ``ElementwiseKernel`` on the stored
bits when all its operands are bfloat16: widened, computed and rounded inside the kernel
(one launch, where the float32 route takes one per operand, the operation's own and the
rounding's). On such a module ``to_bits``/``from_bits`` are one kernel each too. The
primitives that only move elements (reshapes, slices, ``select_n``, ...) move the stored
bits, with no conversion at all.

``to_bits``/``from_bits`` are written against an array module ``xp``, so NumPy stands
in for CuPy in the tests.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fungrad._core import core, dtypes, lowering
from fungrad.backends import cuda_source


class Bfloat16Buffer:
    """A bfloat16 device array stored as its ``uint16`` bits (``storage``)."""
    __slots__ = ("storage",)

    def __init__(self, storage: Any) -> None:
        if storage.dtype != np.uint16:
            raise TypeError(f"Bfloat16Buffer: storage must be uint16 bits, got {storage.dtype}")
        self.storage = storage

    dtype = property(lambda self: dtypes.bfloat16, doc="bfloat16 (the storage is uint16).")
    shape = property(lambda self: self.storage.shape, doc="The shape, a tuple of ints.")
    ndim = property(lambda self: self.storage.ndim, doc="The number of dimensions.")
    size = property(lambda self: self.storage.size, doc="The number of elements.")
    nbytes = property(lambda self: self.storage.nbytes, doc="The buffer's size in bytes.")
    device = property(lambda self: self.storage.device, doc="The storage's device.")

    def get(self) -> np.ndarray:
        """The values on the host, as an ml_dtypes bfloat16 array (CuPy's ``get``)."""
        s = self.storage
        bits = np.asarray(s) if isinstance(s, np.ndarray) else s.get()
        return bits.view(dtypes.load_ml_dtypes().bfloat16)

    def copy(self) -> "Bfloat16Buffer":
        """A buffer with its own copy of the storage."""
        return Bfloat16Buffer(self.storage.copy())

    def __repr__(self) -> str:
        return f"Bfloat16Buffer(shape={self.shape}, storage={type(self.storage).__name__})"


def bits_of(value: Any) -> Any:
    """The ``uint16`` bits of a bfloat16 host array or ``Bfloat16Buffer`` (no copy)."""
    if isinstance(value, Bfloat16Buffer):
        return value.storage
    return np.ascontiguousarray(value).reshape(np.shape(value)).view(np.uint16)


_KERNELS: dict[tuple, Any] = {}


def _kernel(xp: Any, in_params: str, out_params: str, operation: str, name: str) -> Any:
    """``xp``'s ``ElementwiseKernel`` for ``operation`` with the generated kernels' prelude,
    built once per module and source; None for a module without one (NumPy)."""
    make = None if xp is np else getattr(xp, "ElementwiseKernel", None)
    if make is None:
        return None
    key = (make, in_params, out_params, operation)
    if key not in _KERNELS:
        _KERNELS[key] = make(in_params, out_params, operation, name,
                             preamble=cuda_source.PRELUDE)
    return _KERNELS[key]


def from_bits(xp: Any, bits: Any) -> Any:
    """bfloat16 bits (``uint16``) as the float32 values they hold (exact)."""
    kernel = _kernel(xp, *cuda_source.BF16_WIDEN, "fungrad_bf16_widen")
    if kernel is not None:
        return kernel(bits)
    return xp.left_shift(bits.astype(xp.uint32), xp.uint32(16)).view(xp.float32)


def widen(xp: Any, value: Any) -> Any:
    """``value`` as a buffer of array module ``xp``: a ``Bfloat16Buffer`` as the float32
    values it holds (exact), anything else as it is."""
    return from_bits(xp, value.storage) if type(value) is Bfloat16Buffer else value


def to_bits(xp: Any, x: Any) -> Any:
    """float32 ``x`` rounded to bfloat16, to nearest even, as ``uint16`` bits: ml_dtypes'
    rounding and the kernels' ``f32_to_bf16`` (a NaN becomes the quiet NaN of its sign)."""
    kernel = _kernel(xp, *cuda_source.BF16_ROUND, "fungrad_bf16_round")
    if kernel is not None:
        return kernel(xp.asarray(x, dtype=xp.float32))
    # (``ascontiguousarray`` makes a 0-d array 1-d, in CuPy as in NumPy: reshaped back)
    u = xp.ascontiguousarray(x, dtype=xp.float32).reshape(x.shape).view(xp.uint32)
    high = xp.right_shift(u, xp.uint32(16))
    rounded = xp.right_shift(u + xp.uint32(0x7FFF) + (high & xp.uint32(1)), xp.uint32(16))
    nan = (u & xp.uint32(0x7FFFFFFF)) > xp.uint32(0x7F800000)
    return xp.where(nan, (high & xp.uint32(0x8000)) | xp.uint32(0x7FC0), rounded).astype(xp.uint16)


_PRIMITIVES: dict[str, core.Primitive] = {}


def _primitive(name: str) -> core.Primitive:
    if name not in _PRIMITIVES:
        _PRIMITIVES.update((p.name, p) for p in core.primitives())
    return _PRIMITIVES[name]


def _aval(value: Any) -> Any:
    """The abstract value of an impl operand (a buffer, or a Python scalar: weak)."""
    if isinstance(value, (bool, int, float, complex)):
        return core.get_aval(value)
    return core.ShapedArray(value.shape, value.dtype)


def _is_bf16(value: Any) -> bool:
    return isinstance(value, np.dtype) and value == dtypes.bfloat16


def _runs_programs(params: dict) -> bool:
    """Whether a primitive runs jaxprs (``jit``, control flow, custom derivatives): each of
    their operations takes the bfloat16 buffers itself, so the call is not widened."""
    def program(p: Any) -> bool:
        return isinstance(p, (core.Jaxpr, core.ClosedJaxpr)) or \
            isinstance(p, (tuple, list)) and any(program(q) for q in p)
    return any(program(p) for p in params.values())


def _bitcast(xp: Any, impl: Callable[..., Any], x: Any, *, new_dtype: Any) -> Any:
    """``bitcast_convert_type`` with bfloat16 on either side: of the ``uint16`` bits a
    ``Bfloat16Buffer`` stores (its values widened to float32 would have other bits)."""
    bits = x.storage if type(x) is Bfloat16Buffer else x
    if _is_bf16(new_dtype):
        return Bfloat16Buffer(impl(xp, bits, new_dtype=np.dtype(np.uint16)))
    return impl(xp, bits, new_dtype=new_dtype)


def _nextafter(xp: Any, impl: Callable[..., Any], x: Any, y: Any) -> Any:
    """The bfloat16 after ``x`` towards ``y`` (float32's ``nextafter`` rounded back to
    bfloat16 would return ``x``): one step of the bits away from or towards zero, the
    smallest subnormal of ``y``'s sign from a zero, ``y`` when equal, NaN with a NaN."""
    bx, by = xp.broadcast_arrays(x.storage, y.storage)
    fx, fy = from_bits(xp, bx), from_bits(xp, by)
    one = xp.uint16(1)
    step = xp.where((fx < fy) == (fx > 0), bx + one, bx - one)
    out = xp.where(fx == 0, xp.where(fy < 0, xp.uint16(0x8001), one), step)
    out = xp.where(fx == fy, by, out)
    out = xp.where(xp.isnan(fx) | xp.isnan(fy), xp.uint16(0x7FC0), out)
    return Bfloat16Buffer(out.astype(xp.uint16))


# the primitives whose bfloat16 form works on the stored bits, not the widened values
_ON_BITS: dict[str, Callable[..., Any]] = {"bitcast_convert_type": _bitcast,
                                            "nextafter": _nextafter}


def _moves_bits(name: str, vals: tuple) -> bool:
    """Whether primitive ``name`` only moves or picks elements (its ``moves_elements``
    compiler trait) and every operand is a ``Bfloat16Buffer`` or integral (an index, a
    predicate): then it moves the stored bits, with no widening or rounding."""
    if not lowering.compiler_traits(_primitive(name)).moves_elements:
        return False

    def integral(v: Any) -> bool:
        if isinstance(v, (bool, int, np.integer, np.bool_)):
            return True
        return type(v) is not Bfloat16Buffer and np.dtype(v.dtype).kind in "biu"
    return all(type(v) is Bfloat16Buffer or integral(v) for v in vals)


def _in_one_kernel(xp: Any, name: str, vals: tuple, out_aval: Any) -> Any:
    """Elementwise primitive ``name`` over bfloat16 buffers ``vals`` as one kernel of
    ``xp`` (see the module docstring); None where that does not apply."""
    expr = lowering.cuda_expr(_primitive(name))
    if expr is None or not vals or any(type(v) is not Bfloat16Buffer for v in vals) or \
            isinstance(out_aval, (list, tuple)) or out_aval.dtype.name not in ("bfloat16", "bool"):
        return None
    rounded = _is_bf16(out_aval.dtype)
    kernel = _kernel(xp, *cuda_source.bf16_elementwise(expr.for_kind("f"), len(vals), rounded),
                     f"fungrad_bf16_{name}")
    if kernel is None:
        return None
    out = kernel(*[v.storage for v in vals])
    return Bfloat16Buffer(out) if rounded else out


def widened(name: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    """``impl`` of primitive ``name`` taking ``Bfloat16Buffer`` operands (and bfloat16
    dtype parameters): run in float32, its bfloat16-typed results rounded back (see the
    module docstring). Operations without bfloat16 call ``impl`` as it is."""
    def run(xp: Any, *vals: Any, **params: Any) -> Any:
        if not any(type(v) is Bfloat16Buffer for v in vals) and \
                not any(_is_bf16(p) for p in params.values()) or _runs_programs(params):
            return impl(xp, *vals, **params)
        if name in _ON_BITS:
            return _ON_BITS[name](xp, impl, *vals, **params)
        if _moves_bits(name, vals):
            bits = [v.storage if type(v) is Bfloat16Buffer else v for v in vals]
            return Bfloat16Buffer(impl(xp, *bits, **params))
        out_avals = _primitive(name).abstract_eval(*map(_aval, vals), **params)
        fused = _in_one_kernel(xp, name, vals, out_avals)
        if fused is not None:
            return fused
        wide = [widen(xp, v) for v in vals]
        f32 = {k: np.dtype(np.float32) if _is_bf16(p) else p for k, p in params.items()}
        out = impl(xp, *wide, **f32)
        if isinstance(out_avals, (list, tuple)):
            return [Bfloat16Buffer(to_bits(xp, o)) if _is_bf16(a.dtype) else o
                    for o, a in zip(out, out_avals)]
        return Bfloat16Buffer(to_bits(xp, out)) if _is_bf16(out_avals.dtype) else out
    return run
