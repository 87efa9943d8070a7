"""Compiled code, declared with the primitive (as JAX declares ``mlir.register_lowering``).

A *lowering* turns one equation into a Python expression over the names of its input
buffers, one line of the function ``jit`` generates (``fungrad.compiler.codegen``). A
primitive's lowerings are declared in the block that defines it (``fungrad/lax/<family>.py``),
beside its JVP and batching rules, so a new op is added in one place; the compiler reads them
with ``lowerings``. A primitive without one runs its ``impl`` in compiled code. This table sits
in the core, below ``lax`` (which fills it) and ``compiler`` (which reads it).

``rule(ctx, eqn, args, out) -> str``: ``args`` are the operand expressions, ``out`` the name of
a buffer to write the result into (or None), ``ctx.xp`` the backend's array module and
``ctx.const(value, hint)`` the name under which a Python object is visible to the generated
code. A primitive may have several lowerings, each guarded by ``when(eqn)``; the first that
accepts an equation is used and the impl when none does, so a lowering covers only the
operand types where it equals the impl. What the memory planner may do with the result:

* ``fresh``: it is a newly allocated buffer nobody else references, so it may later be
  reused or updated in place;
* ``out``: ``"any"``: it accepts any dead buffer of the result's shape and dtype, even an
  operand dying here (a ufunc reads and writes the same positions); ``"separate"``: any such
  buffer but its operands (``matmul``, reductions); an int ``k``: it may update operand
  ``k`` in place when that buffer is dead afterwards; ``None``: none of these;
* ``elementwise``: each result element depends only on the operands' elements at its
  position (after broadcasting), so literal operands may be passed pre-broadcast to the
  result's shape (a ufunc pays ~0.5 µs of type resolution for a scalar operand) and blocked
  fusion may run the equation block by block;
* ``numexpr``: the equation as a numexpr expression, for the optional numexpr fusion: a
  ``str.format`` template over the operand expressions, or ``(eqn, *operands) -> str``;
* ``any_dtype``: the generated code does not depend on the operands' dtypes (it only moves
  elements), so on a device a bfloat16 buffer may hand it its ``uint16`` bits.

Beside its lowerings a primitive declares what the compiler's passes may do with its
equations (``def_compiler_traits``, read with ``compiler_traits``), so that no pass keeps a
list of primitive names. Each trait is off unless declared:

* ``inline``: ``params -> ClosedJaxpr | None``, for a call primitive whose body the compiler
  splices into the caller (``jit``, custom-derivative calls, ``checkpoint``); None keeps the
  call;
* ``identity``: at run time the equation returns its operand unchanged (``stop_gradient``,
  ``checkpoint_name``: they only matter to transformations), so simplification drops it;
* ``opaque``: kept exactly as written: CSE never merges two of them and constant folding
  never evaluates one (``optimization_barrier``, whose point is to hide values from both);
* ``threaded``: the impl already runs on several threads (matmuls and convolutions in
  BLAS), so a parallel tail (``fungrad.compiler.parallel``) never runs it beside other work;
* ``batched_as_loop``: its batching rule may be a loop over the batch (a ``pure_callback``
  with ``vmap_method="sequential"``), so a ``scan`` body holding one is not split into parts
  batched over the steps (that would come back as a ``scan`` of the same equation);
* ``moves_elements``: its results are its operands' elements moved or picked (reshapes,
  slices, concatenation, padding, selection), whatever their dtype, so its impl runs on any
  element type's bits: on a device, bfloat16 operands pass their ``uint16`` storage
  instead of being widened to float32 and rounded back (``backends.bfloat16``).

An elementwise primitive that fused CUDA kernels may compute (``fungrad.compiler.cuda``)
declares its C expression with ``def_cuda`` (read with ``cuda_expr``): a ``str.format``
template over the operands' C expressions, in order (``{}``, or ``{0}``, ``{1}`` to use one
twice), each already in its compute type (``float`` for the half types); ``{t}`` is the
result's compute type. Keyword templates replace it where the first operand's compute type
is of one *kind*, ``f`` (floating), ``i`` (signed), ``u`` (unsigned) or ``b`` (bool): where
C's operator or library function would not give lax's result (a float ``max`` propagates
NaN: ``def_cuda(max_p, "({0} > {1} ? {0} : {1})", f="fg_max({}, {})")``). Helpers
named ``fg_*`` are the kernels' prelude (``backends.cuda_source.PRELUDE``). A reduction
that row kernels (``fungrad.compiler.cuda_rows``) may compute over a row declares
``def_cuda_reducer``: the C function or macro combining two float32 values and the
float32 identity the accumulator starts from. The generator itself keeps only what is
indexing or typing, not a template (broadcasts, converts, ``select_n``, ``integer_pow``,
``round``, unit reshapes).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from fungrad._core.core import ClosedJaxpr, JaxprEqn, Primitive

Rule = Callable[[Any, JaxprEqn, list, "str | None"], str]


class Lowering(NamedTuple):
    """One way to compile a primitive's equations (see the module docstring)."""
    rule: Rule
    fresh: bool = False
    out: str | int | None = None
    elementwise: bool = False
    when: Callable[[JaxprEqn], bool] | None = None  # None: every equation of the primitive
    numexpr: Callable[..., str] | None = None
    any_dtype: bool = False


_lowerings: dict[Primitive, tuple[Lowering, ...]] = {}


def def_lowering(prim: Primitive, rule: Rule, *, fresh: bool = False,
                 out: str | int | None = None, elementwise: bool = False,
                 when: Callable[[JaxprEqn], bool] | None = None,
                 numexpr: str | Callable[..., str] | None = None,
                 any_dtype: bool = False) -> None:
    """Add a lowering of ``prim``, tried after those declared before it (see the module
    docstring); ``when(eqn)`` restricts it to some equations (the impl runs the others)."""
    if isinstance(numexpr, str):
        numexpr = _template(numexpr)
    low = Lowering(rule, fresh, out, elementwise, when, numexpr, any_dtype)
    _lowerings[prim] = (*_lowerings.get(prim, ()), low)


def def_ufunc(prim: Primitive, ufunc: str, *, when: Callable[[JaxprEqn], bool] | None = None,
              numexpr: str | Callable[..., str] | None = None) -> None:
    """Declare that ``prim``'s impl applies the NumPy ufunc ``ufunc`` to its operands (where
    ``when`` accepts the equation): compiled code calls ``xp.<ufunc>`` directly, writing into a
    dead buffer when it can, and fusion may take it."""
    def rule(ctx: Any, eqn: JaxprEqn, args: list, out: str | None) -> str:
        fn = ctx.const(getattr(ctx.xp, ufunc), ufunc)
        return f"{fn}({', '.join(args)}{', out=' + out if out else ''})"
    def_lowering(prim, rule, fresh=True, out="any", elementwise=True, when=when, numexpr=numexpr)


def _template(text: str) -> Callable[..., str]:
    return lambda eqn, *operands: text.format(*operands)


def lowerings(prim: Primitive) -> tuple[Lowering, ...]:
    """The lowerings declared for ``prim``, in the order they are tried (empty: its impl)."""
    return _lowerings.get(prim, ())


def lowered_primitives() -> list[Primitive]:
    """The primitives with at least one declared lowering."""
    return list(_lowerings)


class CompilerTraits(NamedTuple):
    """What the compiler's passes may do with a primitive's equations (see the module
    docstring)."""
    inline: Callable[[dict], ClosedJaxpr | None] | None = None
    identity: bool = False
    opaque: bool = False
    threaded: bool = False
    batched_as_loop: bool = False
    moves_elements: bool = False


_NO_TRAITS = CompilerTraits()
_traits: dict[Primitive, CompilerTraits] = {}


def def_compiler_traits(prim: Primitive, *,
                        inline: Callable[[dict], ClosedJaxpr | None] | None = None,
                        identity: bool = False, opaque: bool = False, threaded: bool = False,
                        batched_as_loop: bool = False, moves_elements: bool = False) -> None:
    """Declare ``prim``'s compiler traits (see the module docstring), in the block that
    defines it. Declaring them twice is an error: one declaration says all."""
    if prim in _traits:
        raise ValueError(f"def_compiler_traits: {prim.name}'s traits are already declared")
    _traits[prim] = CompilerTraits(inline, identity, opaque, threaded, batched_as_loop,
                                   moves_elements)


def compiler_traits(prim: Primitive) -> CompilerTraits:
    """The traits declared for ``prim`` (all off when none are)."""
    return _traits.get(prim, _NO_TRAITS)


def primitives_with_traits() -> list[Primitive]:
    """The primitives that declare compiler traits."""
    return list(_traits)


class CudaExpr(NamedTuple):
    """A primitive's C expression in CUDA kernels (see the module docstring)."""
    template: str
    by_kind: dict[str, str]

    def for_kind(self, kind: str) -> str:
        """The template for a first operand whose compute type is of ``kind``."""
        return self.by_kind.get(kind, self.template)


class CudaReducer(NamedTuple):
    """How a CUDA row kernel reduces a row (see the module docstring)."""
    combine: str
    identity: str


CUDA_KINDS = ("f", "i", "u", "b")
_cuda: dict[Primitive, CudaExpr] = {}
_cuda_reducers: dict[Primitive, CudaReducer] = {}


def def_cuda(prim: Primitive, template: str, **by_kind: str) -> None:
    """Declare ``prim``'s C expression in CUDA kernels, and the templates replacing it for a
    first operand of some kinds (see the module docstring). Declaring it twice is an error."""
    if prim in _cuda:
        raise ValueError(f"def_cuda: {prim.name}'s CUDA expression is already declared")
    unknown = sorted(set(by_kind) - set(CUDA_KINDS))
    if unknown:
        raise ValueError(f"def_cuda: {prim.name}: unknown kinds {unknown} (not in {CUDA_KINDS})")
    _cuda[prim] = CudaExpr(template, by_kind)


def cuda_expr(prim: Primitive) -> CudaExpr | None:
    """``prim``'s declared C expression (None: CUDA kernels do not compute it)."""
    return _cuda.get(prim)


def primitives_with_cuda() -> list[Primitive]:
    """The primitives that declare a C expression."""
    return list(_cuda)


def def_cuda_reducer(prim: Primitive, combine: str, identity: str) -> None:
    """Declare how CUDA row kernels reduce a row with ``prim`` (see the module docstring).
    Declaring it twice is an error."""
    if prim in _cuda_reducers:
        raise ValueError(f"def_cuda_reducer: {prim.name}'s reducer is already declared")
    _cuda_reducers[prim] = CudaReducer(combine, identity)


def cuda_reducer(prim: Primitive) -> CudaReducer | None:
    """``prim``'s declared row reduction (None: row kernels do not reduce with it)."""
    return _cuda_reducers.get(prim)


__all__ = ["CUDA_KINDS", "CompilerTraits", "CudaExpr", "CudaReducer", "Lowering",
           "compiler_traits", "cuda_expr", "cuda_reducer", "def_compiler_traits", "def_cuda",
           "def_cuda_reducer", "def_lowering", "def_ufunc", "lowered_primitives", "lowerings",
           "primitives_with_cuda", "primitives_with_traits"]
