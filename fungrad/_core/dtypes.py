"""Dtypes and JAX's type-promotion rules.

fungrad promotes exactly as JAX does: a lattice of dtypes where Python scalars
are *weak* (``int``, ``float``, ``complex`` nodes that sit below every concrete
dtype of their kind), so ``float32_array * 2.0`` stays float32. With x64 off
(the default) 64-bit dtypes are canonicalised to 32-bit ones.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any, Callable

import numpy as np

from fungrad.config import config
from fungrad.errors import TypePromotionError

bool_ = np.dtype(np.bool_)
int8, int16, int32, int64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, uint16, uint32, uint64 = (np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
# bfloat16 comes from ml_dtypes, whose extension module takes most of ``import fungrad``'s
# time (0.4 s of 0.65 s), so it is loaded when a bfloat16 first turns up: a dtype name, an
# array of ml_dtypes' dtype, or ``fungrad.numpy.bfloat16`` (``load_ml_dtypes``). Until then
# ``bfloat16`` is a stand-in dtype that no array has, so ``dtype == bfloat16`` stays a cheap
# and correct test.
bfloat16 = _STAND_IN = np.dtype([("bfloat16, before ml_dtypes is loaded", np.void, 2)])
float16, float32, float64 = (np.dtype(t) for t in (np.float16, np.float32, np.float64))
complex64, complex128 = np.dtype(np.complex64), np.dtype(np.complex128)

# float0: the dtype of tangents of integer and boolean values (JAX convention).
float0 = np.dtype([("float0", np.void, 0)])


class extended(np.generic):  # noqa: N801 - JAX's name
    """The abstract scalar type of JAX's *extended* dtypes, which are not NumPy dtypes (typed
    PRNG keys): ``issubdtype(dt, extended)`` asks whether ``dt`` is one. An extended dtype
    object names its scalar type in its ``type`` attribute, as a NumPy dtype does."""


class prng_key(extended):  # noqa: N801 - JAX's name
    """The abstract scalar type of typed PRNG keys' dtypes (``key<fry>``)."""


def extended_scalar_type(dtype: Any) -> type | None:
    """The scalar type of an extended dtype (an object whose ``type`` is a subclass of
    ``extended``), or of ``extended`` and its subclasses themselves; None for anything
    else."""
    if isinstance(dtype, type):
        return dtype if issubclass(dtype, extended) else None
    if isinstance(dtype, np.dtype):
        return None
    scalar = getattr(dtype, "type", None)
    return scalar if isinstance(scalar, type) and issubclass(scalar, extended) else None

# ml_dtypes' narrow floats beside bfloat16 (JAX's names): storage and matmul-input dtypes
# that compute in float32 and promote only with Python scalars. Real dtypes once ml_dtypes
# is loaded (those the installed ml_dtypes has); until then none exists.
SMALL_FLOAT_NAMES = ("float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz", "float8_e4m3fn",
                     "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
                     "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn")
small_floats: list = []

# ml_dtypes' integers narrower than a byte (JAX's names), each held in a byte. NumPy
# computes on them only in part (``negative``, ``maximum`` or the bitwise ufuncs answer in
# int8), so operations compute in the byte-wide type ``intn`` maps them to and convert the
# result back, as XLA's CPU backend does (``lax._ops.intn_apply``). Like XLA's narrow
# integers they promote only with Python ints and bools. They are not in ``all_dtypes``, so
# no operation's set of accepted dtypes holds them and they always take the checked path
# that widens them. int1 and uint1 are dtypes to promote and query, but no array holds
# them: jax's CPU backend keeps them as booleans (``jnp.zeros(2, jnp.int1)`` prints
# ``False``) and cannot take a NumPy array of them.
INTN_NAMES = ("int1", "uint1", "int2", "uint2", "int4", "uint4")
intn: dict = {}  # sub-byte integer dtype -> int8 or uint8; filled when ml_dtypes is loaded
_ARRAYLESS_INTN = ("int1", "uint1")
# dtype kinds of ml_dtypes' dtypes, most of which NumPy calls "V": "f" for the floats,
# "i"/"u" for the sub-byte integers
_ML_KINDS: dict = {_STAND_IN: "f"}

_signed = [int8, int16, int32, int64]
_unsigned = [uint8, uint16, uint32, uint64]
_floats = [bfloat16, float16, float32, float64]
_complex = [complex64, complex128]
all_dtypes = frozenset([bool_, *_signed, *_unsigned, *_floats, *_complex])
# Floats narrower than 32 bits, which computations widen to float32 (gains bfloat16 and
# the small floats when ml_dtypes is loaded)
half_floats: set = {float16, bfloat16}
# ml_dtypes' floats (NumPy kind "V" for most): bfloat16 and the small floats once loaded
ml_floats: set = {bfloat16}
_growing: list[tuple[Callable[[np.dtype], bool], set]] = []


def dtypes_where(predicate: Callable[[np.dtype], bool]) -> set:
    """The supported dtypes for which ``predicate`` holds, as a set that gains bfloat16
    when ml_dtypes is loaded."""
    found = {d for d in all_dtypes if predicate(d)}
    _growing.append((predicate, found))
    return found


def load_ml_dtypes() -> ModuleType:
    """Import ml_dtypes (the first time, make ``bfloat16`` the real dtype everywhere and
    add the small floats and the sub-byte integers)."""
    global bfloat16, all_dtypes
    ml_dtypes = importlib.import_module("ml_dtypes")
    if bfloat16 != np.dtype(ml_dtypes.bfloat16):
        for group in (half_floats, ml_floats):
            group.discard(bfloat16)
        bfloat16 = _floats[0] = np.dtype(ml_dtypes.bfloat16)
        small_floats.extend(np.dtype(getattr(ml_dtypes, name)) for name in SMALL_FLOAT_NAMES
                            if hasattr(ml_dtypes, name))
        new = {bfloat16, *small_floats}
        all_dtypes = (all_dtypes - {_STAND_IN}) | new
        half_floats.update(new)
        ml_floats.update(new)
        del _ML_KINDS[_STAND_IN]
        _ML_KINDS.update(dict.fromkeys(new, "f"))
        for name in INTN_NAMES:
            if hasattr(ml_dtypes, name):
                dt = np.dtype(getattr(ml_dtypes, name))
                intn[dt] = uint8 if name.startswith("u") else int8
                _ML_KINDS[dt] = intn[dt].kind
        for predicate, found in _growing:
            found.update(d for d in new if predicate(d))
        _x64_changed()
    return ml_dtypes

# Weak-type lattice nodes stand for Python scalars.
_WEAK_INT, _WEAK_FLOAT, _WEAK_COMPLEX = "int", "float", "complex"


def _lattice(x64: bool) -> dict:
    b1, (i8, i16, i32, i64), (u8, u16, u32, u64) = bool_, _signed, _unsigned
    bf16, f16, f32, f64 = _floats
    c64, c128 = _complex
    i_, f_, c_ = _WEAK_INT, _WEAK_FLOAT, _WEAK_COMPLEX
    return {
        b1: [i_], i_: [u8, i8, *intn], u8: [i16, u16], u16: [i32, u32],
        u32: [i64, u64] if x64 else [i32, u64], u64: [f_],
        i8: [i16], i16: [i32], i32: [i64], i64: [f_],
        f_: [*small_floats, bf16, f16, c_], bf16: [f32], f16: [f32], f32: [f64, c64],
        f64: [c128], c_: [c64], c64: [c128], c128: [],
        **{small: [] for small in small_floats},  # no implicit promotion, as in JAX
        **{narrow: [] for narrow in intn},  # promoted only from Python ints and bools
    }


@functools.lru_cache(maxsize=2)
def _upper_bounds(x64: bool) -> dict:
    lattice = _lattice(x64)
    ubs = {}
    for node in lattice:
        seen, todo = {node}, [node]
        while todo:
            for up in lattice[todo.pop()]:
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
        ubs[node] = seen
    return ubs


def _least_upper_bound(nodes: set) -> Any:
    ubs = _upper_bounds(config.enable_x64)
    common = set.intersection(*(ubs[n] for n in nodes))
    lub = (common & nodes) or {c for c in common if common <= ubs[c]}
    if len(lub) != 1:
        hint = ""
        if any(n in small_floats for n in nodes):
            hint = ("; narrow floats (float8, float6, float4) promote only with Python scalars, "
                    "integers and bools: convert explicitly, e.g. x.astype('float32')")
        elif any(n in intn for n in nodes):
            hint = ("; 1-bit, 2-bit and 4-bit integers promote only with Python ints and "
                    "bools: convert explicitly, e.g. x.astype('int32')")
        raise TypePromotionError(
            f"no type promotion path for dtypes {sorted(map(str, nodes))}{hint}")
    return lub.pop()


# JAX's strict lattice (``numpy_dtype_promotion("strict")``): no edge between two dtypes,
# so only a Python scalar's weak type promotes, to a dtype of its kind or above.
_STRICT_WEAK_KINDS = {_WEAK_INT: "iufc", _WEAK_FLOAT: "fc", _WEAK_COMPLEX: "c"}


def _check_strict(nodes: set) -> None:
    """Raise ``TypePromotionError`` unless ``nodes`` promote in the strict lattice: one
    dtype at most, with Python scalars' weak nodes of its kind or below (``int`` below
    ``float`` below ``complex``)."""
    strong = [n for n in nodes if not isinstance(n, str)]
    weak = [n for n in nodes if isinstance(n, str)]
    if len(strong) <= 1 and all(not strong or kind(strong[0]) in _STRICT_WEAK_KINDS[w]
                                for w in weak):
        return
    raise TypePromotionError(
        f"Input dtypes {tuple(sorted(map(str, nodes)))} have no available implicit dtype "
        "promotion path when numpy_dtype_promotion is 'strict'. Cast the inputs explicitly "
        "to the dtype you want (x.astype(...)), or use numpy_dtype_promotion('standard').")


def _promotion_changed() -> None:
    _result_type_cached.cache_clear()


config.on_change("numpy_dtype_promotion", _promotion_changed)


def _weak_node(dtype: np.dtype) -> str:
    k = kind(dtype)
    if k in "iub":
        return _WEAK_INT
    return _WEAK_COMPLEX if k == "c" else _WEAK_FLOAT


def default_int_dtype() -> np.dtype:
    return int64 if config.enable_x64 else int32


def default_float_dtype() -> np.dtype:
    return float64 if config.enable_x64 else float32


def default_complex_dtype() -> np.dtype:
    return complex128 if config.enable_x64 else complex64


def _default_of_kind(kind: str) -> np.dtype:
    if kind == "b":
        return bool_
    if kind in "iu":
        return default_int_dtype()
    return default_complex_dtype() if kind == "c" else default_float_dtype()


_CANON_32 = {int64: int32, uint64: uint32, float64: float32, complex128: complex64}


_canonical: dict = {}  # canonicalize_dtype's answers; cleared when x64 changes


def canonicalize_dtype(dtype: Any) -> np.dtype:
    """The dtype fungrad actually stores for ``dtype`` (64-bit -> 32-bit without x64)."""
    try:
        return _canonical[dtype]
    except (KeyError, TypeError):  # not seen yet, or unhashable
        pass
    out = _canonicalize_uncached(dtype)
    try:
        _canonical[dtype] = out
    except TypeError:
        pass
    return out


def np_dtype(dtype: Any) -> np.dtype:
    """``np.dtype(dtype)``, loading ml_dtypes for its dtypes and their names."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        if not isinstance(dtype, str):
            raise
        load_ml_dtypes()
        dt = np.dtype(dtype)
    if dt not in all_dtypes and dt not in intn and dt.type.__module__.startswith("ml_dtypes"):
        load_ml_dtypes()
    return dt


def _canonicalize_uncached(dtype: Any) -> np.dtype:
    if dtype in (int, float, complex, bool):
        return _default_of_kind(np.dtype(dtype).kind)
    dt = np_dtype(dtype)
    if dt not in all_dtypes:
        if dt in intn and dt.name in _ARRAYLESS_INTN:
            raise TypeError(f"fungrad has no arrays of dtype {dt.name}: jax's CPU backend "
                            f"holds {dt.name} as booleans, so its {dt.name} arrays do not "
                            "compute as integers; use int2/uint2 or bool instead")
        if dt == float0 or dt in intn:
            return dt
        raise TypeError(f"fungrad does not support dtype {dt}")
    return dt if config.enable_x64 else _CANON_32.get(dt, dt)


def _x64_changed() -> None:
    _canonical.clear()
    _upper_bounds.cache_clear()
    _result_type_cached.cache_clear()


config.on_change("enable_x64", _x64_changed)


def dtype_and_weak(x: Any) -> tuple[np.dtype, bool]:
    """The (dtype, weak_type) fungrad gives ``x`` (an array, tracer, scalar or dtype)."""
    if isinstance(x, bool):
        return bool_, False
    if isinstance(x, (int, float, complex)):
        return _default_of_kind(np.dtype(type(x)).kind), True
    aval = getattr(x, "aval", None)
    if aval is not None:
        return aval.dtype, aval.weak_type
    dt = getattr(x, "dtype", None)
    if dt is not None:
        return canonicalize_dtype(dt), bool(getattr(x, "weak_type", False))
    return canonicalize_dtype(x), False


@functools.lru_cache(maxsize=4096)
def _result_type_cached(pairs: tuple) -> tuple[np.dtype, bool]:
    dtypes = {d for d, _ in pairs}
    weaks = [w for _, w in pairs]
    if len(pairs) == 1:
        return pairs[0]
    if len(dtypes) == 1 and not all(weaks):
        return pairs[0][0], False
    if config.numpy_dtype_promotion == "strict":
        _check_strict({_weak_node(d) if w else d for d, w in pairs})
    if all(weaks):
        node = _least_upper_bound(dtypes)
        return canonicalize_dtype(node), node != bool_
    node = _least_upper_bound({_weak_node(d) if w else d for d, w in pairs})
    if isinstance(node, str):
        kind = {"int": "i", "float": "f", "complex": "c"}[node]
        return _default_of_kind(kind), True
    return canonicalize_dtype(node), False


_PYTHON_TYPE_NODES = ((int, _WEAK_INT), (float, _WEAK_FLOAT), (complex, _WEAK_COMPLEX),
                      (bool, bool_))


def _promotion_node(t: Any) -> Any:
    """A lattice node for a dtype, or for one of Python's scalar types (by identity: NumPy's
    ``dtype('int64') == int``)."""
    return next((node for typ, node in _PYTHON_TYPE_NODES if t is typ), None) or np_dtype(t)


def promote_types(a: Any, b: Any) -> np.dtype:
    """JAX's ``promote_types``: the least upper bound of two dtypes in the lattice, not
    canonicalised (``int32`` with ``int64`` is ``int64`` with x64 off too). The Python types
    ``int``, ``float`` and ``complex`` are weak (``uint8`` with ``int`` is ``uint8``); a weak
    answer is NumPy's dtype of that type (``int64`` with ``uint64`` is ``float64``)."""
    nodes = {_promotion_node(a), _promotion_node(b)}
    if config.numpy_dtype_promotion == "strict":
        _check_strict(nodes)
    node = _least_upper_bound(nodes)
    return np.dtype(node) if isinstance(node, str) else node


def check_int_operand(x: Any) -> None:
    """A Python int that becomes an operand must fit the default integer type (int32
    without x64): JAX refuses a larger one rather than wrap it around."""
    if type(x) is int:
        dtype = default_int_dtype()
        info = np.iinfo(dtype)
        if not info.min <= x <= info.max:
            raise OverflowError(f"Python int {x} is too large to use as an operand: it does "
                                f"not fit in {dtype.name}; convert it to an array of an "
                                "explicit dtype first")


def result_type(*args: Any, return_weak_type_flag: bool = False):
    """JAX's ``result_type``: promote arrays, scalars and dtypes together."""
    if not args:
        raise ValueError("result_type: at least one array or dtype is required")
    dtype, weak = _result_type_cached(tuple(dtype_and_weak(a) for a in args))
    return (dtype, weak) if return_weak_type_flag else dtype


def kind(dtype: Any) -> str:
    """NumPy's dtype kind letter, with ml_dtypes' floats (kind "V" for most) counted as
    floats ("f") and its sub-byte integers as signed ("i") or unsigned ("u") integers.
    Cheap for a dtype of NumPy's own (about the cost of ``dtype.kind``)."""
    try:
        k = dtype.kind
    except AttributeError:  # a scalar type or a name
        return kind(np_dtype(dtype))
    return _ML_KINDS.get(dtype, k) if k == "V" else k


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype in ml_floats


def is_inexact(dtype: np.dtype) -> bool:
    return dtype.kind in "fc" or dtype in ml_floats


def is_integer(dtype: np.dtype) -> bool:
    return dtype.kind in "iu" or dtype in intn


_ML_SUPERTYPES = {"f": (np.floating, np.inexact, np.number, np.generic),
                  "i": (np.signedinteger, np.integer, np.number, np.generic),
                  "u": (np.unsignedinteger, np.integer, np.number, np.generic)}


def issubdtype(a: Any, b: Any) -> bool:
    """``numpy.issubdtype`` that also places ml_dtypes' types (NumPy's ``generic`` only) in
    the scalar hierarchy: the floats under ``floating``, the sub-byte integers under
    ``signedinteger`` or ``unsignedinteger``."""
    ml_kind = _ML_KINDS.get(np.dtype(a))
    if ml_kind is not None and b in _ML_SUPERTYPES[ml_kind]:
        return True
    return bool(np.issubdtype(a, b))


def finfo(dtype: Any):
    dt = np_dtype(dtype)
    return load_ml_dtypes().finfo(dt) if dt in ml_floats else np.finfo(dt)


def extreme(dtype: np.dtype, largest: bool) -> Any:
    """The largest (or smallest) value of ``dtype``, the identity of ``min`` (``max``):
    +-inf for inexact dtypes, the integer extremes, True (False) for bool."""
    if dtype == np.bool_:
        return largest
    if is_inexact(dtype):
        return np.inf if largest else -np.inf
    info = iinfo(dtype)
    return info.max if largest else info.min


@functools.lru_cache(maxsize=256)
def iinfo(dtype: Any):
    """``numpy.iinfo`` of ``dtype`` (ml_dtypes' for the sub-byte integers); cached, since every
    float-to-integer conversion asks for it."""
    dt = np_dtype(dtype)
    return load_ml_dtypes().iinfo(dt) if dt in intn else np.iinfo(dt)


def bit_width(dtype: np.dtype) -> int:
    """Bits per element of ``dtype`` as XLA counts them: 4 for int4 (a NumPy array gives it
    a byte), 8 for a bool."""
    return iinfo(dtype).bits if dtype in intn else 8 * dtype.itemsize


def tangent_dtype(dtype: np.dtype) -> np.dtype:
    """Tangent/cotangent dtype: float0 for integers and bools (as JAX)."""
    return dtype if is_inexact(dtype) else float0
