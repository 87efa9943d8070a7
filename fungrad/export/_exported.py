"""``Exported``, ``export``, ``deserialize`` and the names around them (``jax.export``)."""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

from fungrad import backends, tree
from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, ShapedArray, Tracer
from fungrad.compiler.passes import inline_calls
from fungrad.export import _format
from fungrad.export._format import ExportDeserializationError
from fungrad.lax._ops import AccuracyMode, Tolerance
from fungrad.lax.conv import ConvDimensionNumbers
from fungrad.lax.dot import DotAlgorithm, DotAlgorithmPreset, Precision
from fungrad.lax.elementwise import RoundingMethod
from fungrad.lax.fft import FftType
from fungrad.lax.gather_scatter import (GatherDimensionNumbers, GatherScatterMode,
                                        ScatterDimensionNumbers)
from fungrad.lax.ragged import RaggedDotDimensionNumbers
from fungrad.lax.rng import RandomAlgorithm
from fungrad.numpy import asarray
from fungrad.random._keys import PRNGKeyArray
from fungrad.transforms.api import ShapeDtypeStruct
from fungrad.transforms.api import vjp as _vjp
from fungrad.transforms.custom_derivatives import custom_jvp, custom_jvp_call_p, custom_vjp_call_p
from fungrad.transforms.jit import JitWrapped, jit
from fungrad.transforms.jit_primitive import call_jit

__all__ = ["DisabledSafetyCheck", "Exported", "export", "deserialize",
           "register_pytree_node_serialization", "register_namedtuple_serialization",
           "minimum_supported_calling_convention_version",
           "maximum_supported_calling_convention_version", "default_export_platform",
           "symbolic_shape", "symbolic_args_specs", "is_symbolic_dim", "SymbolicScope"]

# The "calling convention" of fungrad's export is its serialization format: one version.
minimum_supported_calling_convention_version = _format.FORMAT_VERSION
maximum_supported_calling_convention_version = _format.FORMAT_VERSION
_PLATFORMS = ("cpu", "cuda")

# The parameter types of fungrad's primitives that the format may write (the allow-list).
for _cls in (Precision, DotAlgorithm, DotAlgorithmPreset, ConvDimensionNumbers,
             GatherDimensionNumbers, ScatterDimensionNumbers, GatherScatterMode, FftType,
             RoundingMethod, RandomAlgorithm, AccuracyMode, Tolerance, RaggedDotDimensionNumbers):
    _format.register_class(_cls)
_format.register_node(PRNGKeyArray, "fungrad.PRNGKeyArray", lambda aux: None,
                      lambda value: None, lambda aux, children: PRNGKeyArray(children[0]))


class DisabledSafetyCheck:
    """A safety check not to make when calling an ``Exported`` (``jax.export``'s).

    ``DisabledSafetyCheck.platform()`` lets an export run on a platform it was not exported
    for (fungrad's programs are the same on every platform, so this is always sound here);
    ``custom_call(name)`` is accepted for JAX's API and changes nothing (fungrad has no
    custom calls)."""

    def __init__(self, _impl: str) -> None:
        self._impl = _impl

    @classmethod
    def platform(cls) -> "DisabledSafetyCheck":
        """Allow calling on a platform other than those exported for."""
        return cls("platform")

    @classmethod
    def custom_call(cls, target_name: str) -> "DisabledSafetyCheck":
        """Allow a custom call target (accepted for JAX's API; fungrad has none)."""
        return cls(f"custom_call:{target_name}")

    def is_custom_call(self) -> str | None:
        """The custom call target's name, or None for another check."""
        return self._impl[len("custom_call:"):] if self._impl.startswith("custom_call:") else None

    def __str__(self) -> str:
        return self._impl

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DisabledSafetyCheck) and self._impl == other._impl

    def __hash__(self) -> int:
        return hash(self._impl)


def default_export_platform() -> str:
    """The platform of the default device: ``'cpu'`` or ``'cuda'`` (as JAX names a GPU's
    platform when it exports; its ``Device.platform`` is ``'gpu'``)."""
    platform = backends.default_device().platform
    return "cuda" if platform == "gpu" else platform


@dataclasses.dataclass(frozen=True)
class Exported:
    """A jitted function traced for one signature, callable and serializable.

    Attributes:
        fun_name: the exported function's name.
        in_tree: the structure of ``(args, kwargs)`` it was exported with.
        in_avals: the flat argument types (``ShapedArray``).
        out_tree: the structure of its result.
        out_avals: the flat result types.
        platforms: the platforms it was exported for (``DisabledSafetyCheck.platform()``
            lifts the check when calling).
        disabled_safety_checks: the checks disabled at export time.
        calling_convention_version: fungrad's export format version.
        jaxpr: the exported program (``mlir_module()`` prints it).
    """
    fun_name: str
    in_tree: Any
    in_avals: tuple[ShapedArray, ...]
    out_tree: Any
    out_avals: tuple[ShapedArray, ...]
    platforms: tuple[str, ...]
    disabled_safety_checks: tuple[DisabledSafetyCheck, ...]
    calling_convention_version: int
    jaxpr: ClosedJaxpr
    nr_devices: int = 1
    primal_only: bool = False  # deserialized without its custom derivative rules

    def __str__(self) -> str:
        return f"Exported(fun_name={self.fun_name}, ...)"

    def mlir_module(self) -> str:
        """The exported program as text. fungrad has no MLIR: this is the printed jaxpr (the
        program ``call`` runs), for reading, not for parsing."""
        return str(self.jaxpr)

    def has_vjp(self) -> bool:
        """Always True: the program is a jaxpr, so ``call`` differentiates it directly."""
        return True

    def vjp(self) -> "Exported":
        """The exported VJP: a function of the flat primal arguments followed by one
        cotangent per flat result, returning the flat cotangents of the arguments."""
        n_in = len(self.in_avals)
        flat = self._flat_call

        def vjp_fun(*args_and_cts: Any) -> list:
            _, pullback = _vjp(lambda *xs: flat(list(xs)), *args_and_cts[:n_in])
            return list(pullback(list(args_and_cts[n_in:])))

        vjp_fun.__name__ = vjp_fun.__qualname__ = f"vjp({self.fun_name})"
        specs = [*[ShapeDtypeStruct(a.shape, a.dtype) for a in self.in_avals],
                 *[ShapeDtypeStruct(a.shape, _ct_dtype(a.dtype)) for a in self.out_avals]]
        return export(jit(vjp_fun), platforms=self.platforms,
                      disabled_checks=self.disabled_safety_checks)(*specs)

    def serialize(self, vjp_order: int = 0) -> bytearray:
        """The bytes of fungrad's versioned export format (see ``fungrad.export``).
        ``vjp_order`` is accepted for JAX's signature: the derivatives of a deserialized
        export come from its program, to any order. A ``custom_jvp``/``custom_vjp`` call
        (``nn.softmax``, ``nn.gelu``, ...) is written as its primal computation, as JAX's
        StableHLO holds it; its rules are Python functions, so the deserialized program
        refuses to be differentiated (export ``jit(grad(f))`` for the derivative).
        ``ExportSerializationError`` names the primitive and parameter of anything else that
        cannot be written (a callback's function, a custom rule inside a loop body)."""
        program = inline_calls(self.jaxpr)
        primal_only = self.primal_only or any(
            e.primitive in (custom_jvp_call_p, custom_vjp_call_p) for e in self.jaxpr.jaxpr.eqns)

        def header(w: Any) -> dict:
            return {"fun_name": self.fun_name, "platforms": list(self.platforms),
                    "disabled_checks": [str(c) for c in self.disabled_safety_checks],
                    "nr_devices": self.nr_devices,
                    "in_tree": _format.encode_tree(self.in_tree, w),
                    "out_tree": _format.encode_tree(self.out_tree, w),
                    "in_avals": [w.value(a) for a in self.in_avals],
                    "out_avals": [w.value(a) for a in self.out_avals],
                    "jaxpr": w.value(program), "primal_only": primal_only}
        return _format.pack(header)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Run the exported program on arguments of the exported structure and types.

        It binds fungrad's ``jit`` primitive on the program, so it runs compiled, stages
        into an enclosing ``jit``, and differentiates and batches (``grad``, ``vmap``) by
        the rules of the primitives inside it."""
        leaves, treedef = tree.flatten((args, kwargs))
        if treedef != self.in_tree:
            raise ValueError(f"The invocation args and kwargs must have the same pytree "
                             f"structure as when the function '{self.fun_name}' was exported: "
                             f"got {treedef}, exported with {self.in_tree}")
        platform = default_export_platform()
        if platform not in self.platforms and \
                DisabledSafetyCheck.platform() not in self.disabled_safety_checks:
            raise ValueError(f"Function '{self.fun_name}' was exported for platforms "
                             f"{self.platforms} but it is used on '{platform}'")
        for i, (x, a) in enumerate(zip(leaves, self.in_avals)):
            b = core.get_aval(x) if not isinstance(x, (list, tuple)) else None
            if b is None or b.shape != a.shape or b.dtype != a.dtype:
                got = b.str_short() if b is not None else type(x).__name__
                raise ValueError(f"Exported '{self.fun_name}': argument {i} (flat) must be a "
                                 f"{a.str_short()}, got {got}")
        return tree.unflatten(self.out_tree, self._flat_call(leaves))

    def _flat_call(self, leaves: Sequence[Any]) -> list:
        args = [x if isinstance(x, (Array, Tracer)) else asarray(x, dtype=a.dtype)
                for x, a in zip(leaves, self.in_avals)]
        if self.primal_only:
            return list(self._underivable(*args))
        return call_jit(self.jaxpr, args, self.fun_name)

    @functools.cached_property
    def _underivable(self) -> Callable:
        """The program as a function refusing derivatives, built once per ``Exported``."""
        return _underivable(self.jaxpr, self.fun_name)


def _underivable(program: ClosedJaxpr, name: str) -> Callable:
    """``program`` as a function whose derivative is refused: a deserialized program whose
    custom derivative rules were left out when it was written."""
    @custom_jvp
    def run(*args: Any) -> tuple:
        return tuple(call_jit(program, list(args), name))

    @run.defjvp
    def _refuse(primals: Any, tangents: Any) -> Any:
        raise ValueError(f"Exported '{name}' was deserialized from a program whose custom "
                         "derivative rules (custom_jvp/custom_vjp, e.g. in nn.softmax) were left "
                         "out when it was serialized, so it cannot be differentiated: export "
                         "the derivative itself (export(jit(grad(f)))) or differentiate the "
                         "original function")
    return run


def _ct_dtype(dtype: Any) -> Any:
    return dtype if dtypes.kind(dtype) in "fc" else dtypes.float0


def export(fun_jit: Any, *, platforms: Sequence[str] | None = None,
           disabled_checks: Sequence[DisabledSafetyCheck] = ()) -> Callable[..., Exported]:
    """Export a jitted function (``jax.export.export``).

    Args:
        fun_jit: the result of ``fungrad.jit``.
        platforms: a subset of ``'cpu'``, ``'cuda'`` (default: ``default_export_platform()``).
            fungrad's program is the same for every platform; ``call`` checks it runs on one
            of them unless ``DisabledSafetyCheck.platform()`` is disabled.
        disabled_checks: the ``DisabledSafetyCheck`` s not to make.

    Returns:
        A function of the arguments' specs (``ShapeDtypeStruct`` s or arrays, in the pytree
        structure of the call) giving an ``Exported``.
    """
    if not isinstance(fun_jit, JitWrapped):
        raise ValueError(f"Function to be exported must be the result of `jit` but is: "
                         f"{fun_jit!r}")
    chosen = tuple(platforms) if platforms is not None else (default_export_platform(),)
    unknown = [p for p in chosen if p not in _PLATFORMS]
    if unknown or not chosen:
        raise ValueError(f"export: unsupported platforms {unknown or chosen}: fungrad runs on "
                         f"{_PLATFORMS}")
    checks = tuple(disabled_checks)
    for c in checks:
        if not isinstance(c, DisabledSafetyCheck):
            raise ValueError(f"disabled_checks must hold DisabledSafetyChecks, got {c!r}")

    def do_export(*args_specs: Any, **kwargs_specs: Any) -> Exported:
        traced = fun_jit.trace(*args_specs, **kwargs_specs)
        entry = traced._entry
        if entry.hoisted or entry.refs is not None:
            raise ValueError(f"export({entry.name}): the function closes over values traced by "
                             "an enclosing transformation, or uses refs; export it at top level "
                             "without refs")
        in_tree = tree.tuple_structure([entry.in_tree, tree.structure({})]) \
            if entry.args_only else entry.in_tree
        closed = entry.closed
        return Exported(entry.name, in_tree, tuple(entry.in_avals), entry.out_tree,
                        tuple(closed.out_avals[:entry.out_tree.num_leaves]), chosen, checks,
                        _format.FORMAT_VERSION, closed)
    return do_export


def deserialize(blob: bytes | bytearray) -> Exported:
    """The ``Exported`` that ``Exported.serialize`` wrote. Only fungrad's format is read
    (never pickle); ``ExportDeserializationError`` for corrupted data, another format
    version, or a primitive or class this fungrad does not have."""
    header, reader = _format.unpack(blob)
    try:
        jaxpr = reader.value(header["jaxpr"])
        if type(jaxpr) is not ClosedJaxpr:
            raise ExportDeserializationError("the header's 'jaxpr' is not a closed jaxpr")
        in_avals = tuple(reader.aval(a) for a in _format._Reader.list(header["in_avals"]))
        out_avals = tuple(reader.aval(a) for a in _format._Reader.list(header["out_avals"]))
        in_tree = _format.decode_tree(header["in_tree"], reader)
        out_tree = _format.decode_tree(header["out_tree"], reader)
        platforms = tuple(str(p) for p in _format._Reader.list(header["platforms"]))
        checks = tuple(DisabledSafetyCheck(str(c))
                       for c in _format._Reader.list(header["disabled_checks"]))
        primal_only = header.get("primal_only", False)
        if type(primal_only) is not bool:
            raise ExportDeserializationError("the header's 'primal_only' is not a bool")
        exp = Exported(str(header["fun_name"]), in_tree, in_avals, out_tree, out_avals,
                       platforms, checks, _format.FORMAT_VERSION, jaxpr,
                       int(header["nr_devices"]), primal_only)
    except ExportDeserializationError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError) as e:
        raise ExportDeserializationError(f"corrupted export data: {type(e).__name__}: {e}") from e
    _check_signature(exp)
    return exp


def _check_signature(exp: Exported) -> None:
    """The header's avals and trees must agree with the program's."""
    j = exp.jaxpr
    if len(j.consts) != len(j.jaxpr.constvars):
        raise ExportDeserializationError("the program's constants do not match its constvars")
    if [(a.shape, a.dtype) for a in exp.in_avals] != [(a.shape, a.dtype) for a in j.in_avals] \
            or [(a.shape, a.dtype) for a in exp.out_avals] != \
            [(a.shape, a.dtype) for a in j.out_avals] \
            or exp.in_tree.num_leaves != len(exp.in_avals) \
            or exp.out_tree.num_leaves != len(exp.out_avals):
        raise ExportDeserializationError("the header's signature does not match the program")


def register_pytree_node_serialization(nodetype: type, *, serialized_name: str,
                                       serialize_auxdata: Callable[[Any], bytes],
                                       deserialize_auxdata: Callable[[bytes], Any],
                                       from_children: Callable | None = None) -> type:
    """Allow a registered pytree node type in an exported function's arguments or results
    (``jax.export.register_pytree_node_serialization``). ``serialize_auxdata`` turns its
    auxiliary data into bytes, ``deserialize_auxdata`` reverses it, ``from_children(aux,
    children)`` builds a node (default: ``nodetype(*children)``)."""
    build = from_children or (lambda aux, children: nodetype(*children))
    _format.register_node(nodetype, serialized_name,
                          lambda aux: bytes(serialize_auxdata(aux)).hex(),
                          lambda value: deserialize_auxdata(bytes.fromhex(value)), build)
    return nodetype


def register_namedtuple_serialization(nodetype: type, *, serialized_name: str) -> type:
    """Allow a NamedTuple type in an exported function's arguments or results, written as
    ``serialized_name`` (``jax.export.register_namedtuple_serialization``)."""
    _format.register_node(nodetype, serialized_name, lambda aux: None, lambda value: None,
                          lambda aux, children: nodetype(*children))
    return nodetype


_NO_SYMBOLIC = ("fungrad has no symbolic (shape-polymorphic) dimensions: export the function "
                "once per concrete shape")


def symbolic_shape(shape_spec: str | None, **kwargs: Any) -> tuple:
    """Not supported: ``NotImplementedError`` (fungrad has no symbolic shapes)."""
    raise NotImplementedError(f"symbolic_shape: {_NO_SYMBOLIC}")


def symbolic_args_specs(args: Any, shapes_specs: Any, **kwargs: Any) -> Any:
    """Not supported: ``NotImplementedError`` (fungrad has no symbolic shapes)."""
    raise NotImplementedError(f"symbolic_args_specs: {_NO_SYMBOLIC}")


def is_symbolic_dim(p: Any) -> bool:
    """Always False: fungrad's dimensions are integers."""
    return False


class SymbolicScope:
    """Not supported: constructing one raises ``NotImplementedError``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"SymbolicScope: {_NO_SYMBOLIC}")
