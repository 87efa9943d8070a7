"""Fusion of elementwise chains: the CPU strategies, and the seam for GPU kernels.

Three CPU strategies, picked with ``set_strategy`` or ``FUNGRAD_FUSION``:

* ``"blocked"`` (the default): groups of at least ``FUSE_MIN_OPS`` elementwise
  ops over results of at least ``blocked.MIN_SIZE`` elements become one
  ``fused_blocks`` kernel that runs the whole group block by block (L2-sized
  blocks, the same ufunc calls, see ``blocked``); smaller chains run unfused.
* ``"numpy"``: no kernels. Each op is one NumPy ufunc call from the generated
  code, and the memory plan makes chains write into dead buffers (``out=``) or
  into the executable's arena, so a chain allocates nothing in steady state.
* ``"numexpr"``: groups of at least ``FUSE_MIN_OPS`` fusible float ops become one
  precompiled numexpr kernel (``fused_elementwise``); transcendental functions
  join only when numexpr has Intel VML. Needs the optional ``numexpr`` package;
  without it this strategy falls back to ``"numpy"``.

Why (figures from ``benchmarks/bench_jit.py --fusion``, recorded in
docs/architecture.md; 2-core AMD EPYC, numexpr 2.14 without VML): NumPy's ufunc
loops are compute-bound at about 0.2-0.3 ns per float32 element for arithmetic
once operands are in cache, and about 0.5 µs per call. Below a few MiB per operand
the operands stay in the L2/L3 cache between ops, so blocking only adds calls;
above it, each unfused op streams its operands from memory and blocking wins.
numexpr's interpreter was slower than NumPy at every size measured (it can win
where numexpr is built with Intel VML, hence the switch).

Backends other than NumPy get their own fuser in ``_FUSERS`` (the seam for
CuPy ``ElementwiseKernel``: the same groups, compiled to CUDA).

A group grows backwards from a root: an equation joins it when every use of its
result is inside the group; values used elsewhere stay materialised as inputs.
"""
from __future__ import annotations

import functools
import os
import re
from typing import Any, Callable

import numpy as np

from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, ShapedArray, Var
from fungrad.compiler import blocked
from fungrad.compiler.lowering import kernel_primitive, lowering_for

FUSE_MIN_OPS = 4
FUSE_MAX_SIZE = 1 << 62  # numexpr: results larger than this stay unfused

STRATEGIES = ("blocked", "numpy", "numexpr")
_strategy = os.environ.get("FUNGRAD_FUSION", "blocked")


def set_strategy(name: str) -> None:
    """Choose the CPU fusion strategy (one of ``STRATEGIES``) for later compilations."""
    global _strategy
    if name not in STRATEGIES:
        raise ValueError(f"fusion strategy must be one of {STRATEGIES}, got {name!r}")
    _strategy = name


@functools.cache
def numexpr_module() -> Any:
    """The optional numexpr package (the "fast" extra), or None where it is not installed.

    Imported when the ``"numexpr"`` strategy is first asked for, not with fungrad: loading it
    takes about as long as the rest of the compiler, and the default strategy never uses it.
    """
    try:
        import numexpr
    except ImportError:
        return None
    return numexpr


def strategy() -> str:
    """The CPU fusion strategy in effect (``"numexpr"`` needs numexpr installed)."""
    if _strategy == "numexpr" and numexpr_module() is None:
        return "numpy"
    return _strategy if _strategy in STRATEGIES else "numpy"


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- the fused primitive

fused_elementwise_p = kernel_primitive("fused_elementwise", out="any")


# --------------------------------------------------------------------------- numexpr expressions

# numexpr functions that, without Intel VML, it evaluates through scalar libm calls, 20x
# slower than NumPy's SIMD loops (tanh: 75 ns vs 3.5 ns per element): equations using them
# stay ufuncs.
_LIBM = frozenset({"exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "expm1", "log1p",
                   "arcsin", "arccos", "arctan"})


def _fusible(eqn: JaxprEqn) -> bool:
    """An equation whose lowering declares a numexpr expression, over float32/float64
    operands (boolean masks too, for a floating result), with a result numexpr may take."""
    if len(eqn.outvars) != 1:
        return False
    out = eqn.outvars[0].aval
    if not 0 < out.size <= FUSE_MAX_SIZE:
        return False
    masks_ok = out.dtype in _FLOATS
    if not all(a.aval.dtype in _FLOATS or masks_ok and a.aval.dtype == np.bool_
               for a in eqn.invars):
        return False
    build = lowering_for(eqn).numexpr
    if build is None:
        return False
    if getattr(numexpr_module(), "use_vml", False):
        return True
    expr = build(eqn, *[f"i{k}" for k in range(len(eqn.invars))])
    return _LIBM.isdisjoint(re.findall(r"(\w+)\(", expr))


# --------------------------------------------------------------------------- grouping

def fuse(closed: ClosedJaxpr, xp: Any = np) -> ClosedJaxpr:
    """Replace groups of fusible elementwise equations by kernels of backend ``xp``."""
    fuser = _FUSERS.get(getattr(xp, "__name__", ""))
    return closed if fuser is None else fuser(closed)


def _cpu_fuse(closed: ClosedJaxpr) -> ClosedJaxpr:
    chosen = strategy()
    if chosen == "numexpr":
        return _group_fuse(closed, _fusible, lambda eqn, root: True, _build_kernels)
    if chosen == "blocked":
        return _group_fuse(closed, blocked.fusible, blocked.same_group,
                           lambda eqns, outs: blocked.build(eqns, outs, np),
                           several_outputs=True)
    return closed


def _group_fuse(closed: ClosedJaxpr, fusible: Callable[[JaxprEqn], bool],
                same_group: Callable[[JaxprEqn, JaxprEqn], bool],
                build: Callable[..., list[JaxprEqn] | None],
                several_outputs: bool = False) -> ClosedJaxpr:
    """Replace each group of at least ``FUSE_MIN_OPS`` fusible equations by ``build(group)``
    (emitted where the group's root was; None keeps the group unfused).

    With ``several_outputs`` a group may also hand back values computed inside it that
    are used after it (a forward pass's intermediates saved for the backward pass, an
    optimiser's new state beside the new parameters): ``build(group, outs)`` gets those
    values in program order, the root's result last."""
    j = closed.jaxpr
    position = {id(eqn): k for k, eqn in enumerate(j.eqns)}
    consumers: dict[Var, list[JaxprEqn]] = {}
    for eqn in j.eqns:
        for a in eqn.invars:
            if type(a) is Var:
                consumers.setdefault(a, []).append(eqn)
    outputs = {a for a in j.outvars if type(a) is Var}
    # Walking backwards, a fusible equation joins the group of its consumers when they
    # are all fusible and all in one group; otherwise it roots a group of its own. With
    # several outputs it joins the first emitted group among its consumers' when every
    # other consumer runs after that group (a group runs where its root was).
    group: dict[int, JaxprEqn] = {}

    def runs_at(eqn: JaxprEqn) -> int:
        return position[id(group.get(id(eqn), eqn))]
    for eqn in reversed(j.eqns):
        if not fusible(eqn):
            continue
        out = eqn.outvars[0]
        users = consumers.get(out, ())
        if several_outputs:
            roots = [group[id(c)] for c in users if id(c) in group]
            root = min(roots, key=runs_at) if roots else None
            joins = root is not None and all(
                group.get(id(c)) is root or runs_at(c) > runs_at(root) for c in users)
        else:
            roots = {id(group[id(c)]) if id(c) in group else None for c in users}
            root = group.get(id(users[0])) if users else None
            joins = out not in outputs and len(roots) == 1 and root is not None
        group[id(eqn)] = root if joins and same_group(eqn, root) else eqn
    members: dict[int, list[JaxprEqn]] = {}
    for eqn in j.eqns:
        if id(eqn) in group:
            members.setdefault(id(group[id(eqn)]), []).append(eqn)
    new_eqns = []
    for eqn in j.eqns:
        if id(eqn) not in group:
            new_eqns.append(eqn)
        elif group[id(eqn)] is eqn:  # a root: emit its whole group here
            eqns = members[id(eqn)]
            fused = None
            if len(eqns) >= FUSE_MIN_OPS and several_outputs:
                fused = build(eqns, _group_outputs(eqns, consumers, outputs))
            elif len(eqns) >= FUSE_MIN_OPS:
                fused = build(eqns)
            new_eqns.extend(fused if fused is not None else eqns)
    return ClosedJaxpr(Jaxpr(j.constvars, j.invars, j.outvars, new_eqns), closed.consts)


def _group_outputs(eqns: list[JaxprEqn], consumers: dict[Var, list[JaxprEqn]],
                   outputs: set[Var]) -> list[Var]:
    """The results of a group read after it: by equations outside it or as program outputs."""
    inside = {id(e) for e in eqns}
    return [e.outvars[0] for e in eqns if e is eqns[-1] or e.outvars[0] in outputs
            or any(id(c) not in inside for c in consumers.get(e.outvars[0], ()))]


# numexpr limits: operands per kernel and expression length. A value used twice
# in an expression is written twice (numexpr then computes the duplicate once); a
# long one is computed by a kernel of its own first, so texts stay linear.
MAX_INPUTS = 24
MAX_EXPR_CHARS = 2000
DUP_CHARS = 120


def _literal_key(lit: Literal) -> tuple:
    raw = lit.val._value if type(lit.val) is Array else lit.val
    return ("literal", lit.aval.dtype, np.asarray(raw, lit.aval.dtype).tobytes())


def _build_kernels(eqns: list[JaxprEqn]) -> list[JaxprEqn] | None:
    """``fused_elementwise`` equations computing the group (its root comes last), or
    None when numexpr cannot take it."""
    uses: dict[Var, int] = {}
    for eqn in eqns:
        for a in eqn.invars:
            if type(a) is Var:
                uses[a] = uses.get(a, 0) + 1
    atoms: list[Any] = []
    names: dict[Any, str] = {}
    exprs: dict[Var, str] = {}
    kernels: list[JaxprEqn] = []

    def leaf(a: Any) -> str:
        key = a if type(a) is Var else _literal_key(a)
        if key not in names:
            names[key] = f"i{len(atoms)}"
            atoms.append(a)
        return names[key]

    def kernel(var: Var) -> bool:
        """Emit the kernel computing ``var``; afterwards ``var`` is a plain input."""
        expr = exprs.pop(var)
        used = sorted({int(n) for n in re.findall(r"\bi(\d+)\b", expr)})
        if len(used) > MAX_INPUTS:
            return False
        compiled = _compile_numexpr(expr, [(f"i{k}", atoms[k].aval) for k in used], var.aval)
        if compiled is not None:
            kernels.append(JaxprEqn(fused_elementwise_p, [atoms[k] for k in used], [var],
                                    {"expr": expr, "kernel": compiled}))
        return compiled is not None

    for eqn in eqns:
        build = lowering_for(eqn).numexpr
        marks = build(eqn, *[f"<{k}>" for k in range(len(eqn.invars))])
        args = []
        for k, a in enumerate(eqn.invars):
            text = exprs.get(a) if type(a) is Var else None
            if text is not None and (len(text) > MAX_EXPR_CHARS // 2 or len(text) > DUP_CHARS
                                     and (uses[a] > 1 or marks.count(f"<{k}>") > 1)):
                if not kernel(a):
                    return None
                text = None
            args.append(leaf(a) if text is None else text)
        exprs[eqn.outvars[0]] = build(eqn, *args)
    return kernels if kernel(eqns[-1].outvars[0]) else None


_KIND_TYPES = {np.dtype(np.float32): float, np.dtype(np.float64): np.double,
               np.dtype(np.bool_): bool}


def _compile_numexpr(expr: str, inputs: list[tuple[str, ShapedArray]], out_aval: ShapedArray
                     ) -> Callable | None:
    """A numexpr kernel for ``expr``, or None when numexpr would change the result type."""
    signature = [(name, _KIND_TYPES[a.dtype]) for name, a in inputs]
    try:
        compiled = numexpr_module().NumExpr(expr, signature=signature)
        kernel = functools.partial(compiled, order="K", casting="safe", ex_uses_vml=False)
        kernel.__name__ = "numexpr"  # how the IR printer shows it
        probe = kernel(*[np.ones((), a.dtype) for _, a in inputs])
    except Exception:  # anything numexpr cannot express stays unfused
        return None
    return kernel if probe.dtype == out_aval.dtype else None


_FUSERS: dict[str, Callable[[ClosedJaxpr], ClosedJaxpr]] = {"numpy": _cpu_fuse}
