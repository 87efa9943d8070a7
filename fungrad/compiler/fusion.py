"""Fusion of elementwise chains into single kernels (CPU: numexpr, when installed).

Measured on the reference machine (see ``benchmarks/bench_jit.py``), the costs
split by array size:

* small arrays: a NumPy ufunc call costs about a microsecond of dispatch no
  matter how little data it touches, so a chain of n ops costs n dispatches.
  One precompiled numexpr kernel evaluates the whole chain in a single call,
  which wins from a handful of ops on.
* large arrays: NumPy's SIMD loops beat numexpr's interpreter per element, and
  the compiled code already reuses dead buffers with ``out=`` (no allocation, no
  page faults), so chains stay unfused and run as NumPy ufuncs.

So a group of fusible equations becomes one ``fused_elementwise`` equation when
its result has at most ``FUSE_MAX_SIZE`` elements and it holds at least
``FUSE_MIN_OPS`` operations. Without numexpr nothing is fused. Backends other
than NumPy get their own fuser here (the seam for CuPy ``ElementwiseKernel``).

A group is a tree: an equation's result is inlined into its consumer when that
is its only use; shared values stay materialised as kernel inputs.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Primitive, ShapedArray, Var
from fungrad.compiler.lowering import def_lowering

try:
    import numexpr
except ImportError:  # the optional "fast" extra
    numexpr = None

FUSE_MAX_SIZE = 4096
FUSE_MIN_OPS = 4

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- the fused primitive

def _fused_impl(xp, *args, expr, kernel):
    return kernel(*args)


def _fused_abstract(*avals, expr, kernel):
    raise TypeError("fused_elementwise only exists inside compiled executables")


fused_elementwise_p = Primitive("fused_elementwise")
fused_elementwise_p.def_impl(_fused_impl)
fused_elementwise_p.def_abstract_eval(_fused_abstract)


def _fused_lowering(ctx, eqn, args, out):
    kernel = ctx.const(eqn.params["kernel"], "fused")
    return f"{kernel}({', '.join(args)}{', out=' + out if out else ''})"


def_lowering("fused_elementwise", _fused_lowering, fresh=True, out="any")


# --------------------------------------------------------------------------- numexpr expressions

def _fmt(template: str) -> Callable[..., str]:
    return lambda eqn, *a: template.format(*a)


def _int_pow(eqn, a):
    return "(" + " * ".join([a] * eqn.params["y"]) + ")"


# prim name -> expression builder over operand expressions
_NUMEXPR_OPS: dict[str, Callable[..., str]] = {
    "add": _fmt("({} + {})"), "add_any": _fmt("({} + {})"), "sub": _fmt("({} - {})"),
    "mul": _fmt("({} * {})"), "div": _fmt("({} / {})"), "neg": _fmt("(-{})"),
    "square": _fmt("({0} * {0})"), "integer_pow": _int_pow,
    "max": _fmt("where(({0} >= {1}) | ({0} != {0}), {0}, {1})"),
    "min": _fmt("where(({0} <= {1}) | ({0} != {0}), {0}, {1})"),
    "select_n": _fmt("where({0}, {2}, {1})"),
    "eq": _fmt("({} == {})"), "ne": _fmt("({} != {})"), "lt": _fmt("({} < {})"),
    "le": _fmt("({} <= {})"), "gt": _fmt("({} > {})"), "ge": _fmt("({} >= {})"),
    **{name: _fmt(fn + "({})") for name, fn in [
        ("exp", "exp"), ("log", "log"), ("sqrt", "sqrt"), ("sin", "sin"), ("cos", "cos"),
        ("tan", "tan"), ("tanh", "tanh"), ("sinh", "sinh"), ("cosh", "cosh"),
        ("expm1", "expm1"), ("log1p", "log1p"), ("abs", "abs"), ("asin", "arcsin"),
        ("acos", "arccos"), ("atan", "arctan")]},
}


def _fusible(eqn: JaxprEqn) -> bool:
    name = eqn.primitive.name
    if name not in _NUMEXPR_OPS or len(eqn.outvars) != 1:
        return False
    out = eqn.outvars[0].aval
    if not 0 < out.size <= FUSE_MAX_SIZE:
        return False
    if name == "integer_pow" and eqn.params["y"] not in (2, 3, 4):
        return False
    if name == "select_n":
        return len(eqn.invars) == 3 and eqn.invars[0].aval.dtype == np.bool_ and \
            eqn.invars[1].aval.dtype in _FLOATS
    return all(a.aval.dtype in _FLOATS for a in eqn.invars)


# --------------------------------------------------------------------------- grouping

def fuse(closed: ClosedJaxpr, xp: Any = np) -> ClosedJaxpr:
    """Replace groups of fusible elementwise equations by ``fused_elementwise`` kernels."""
    fuser = _FUSERS.get(getattr(xp, "__name__", ""))
    return closed if fuser is None else fuser(closed)


def _numexpr_fuse(closed: ClosedJaxpr) -> ClosedJaxpr:
    if numexpr is None:
        return closed
    j = closed.jaxpr
    uses: dict[Var, int] = {}
    for eqn in j.eqns:
        for a in eqn.invars:
            if type(a) is Var:
                uses[a] = uses.get(a, 0) + 1
    for a in j.outvars:
        if type(a) is Var:
            uses[a] = uses.get(a, 0) + 2
    fusible = {id(e) for e in j.eqns if _fusible(e)}
    producer = {e.outvars[0]: e for e in j.eqns if id(e) in fusible}
    # A fusible result used once, by a fusible equation, is inlined into it.
    absorbed: set[int] = set()
    for eqn in j.eqns:
        if id(eqn) in fusible:
            for a in eqn.invars:
                p = producer.get(a) if type(a) is Var else None
                if p is not None and uses[a] == 1:
                    absorbed.add(id(p))
    new_eqns = []
    for eqn in j.eqns:
        if id(eqn) in absorbed:
            continue  # emitted with the root of its group
        if id(eqn) not in fusible:
            new_eqns.append(eqn)
            continue
        group = _tree_eqns(eqn, producer, absorbed)
        fused = _build_kernel(group) if len(group) >= FUSE_MIN_OPS else None
        new_eqns.extend([fused] if fused is not None else group)
    return ClosedJaxpr(Jaxpr(j.constvars, j.invars, j.outvars, new_eqns), closed.consts)


def _tree_eqns(root: JaxprEqn, producer: dict, absorbed: set) -> list[JaxprEqn]:
    """The equations of the group rooted at ``root``, in program order."""
    out = []

    def visit(eqn):
        for a in eqn.invars:
            p = producer.get(a) if type(a) is Var else None
            if p is not None and id(p) in absorbed:
                visit(p)
        out.append(eqn)
    visit(root)
    return out


def _build_kernel(eqns: list[JaxprEqn]) -> JaxprEqn | None:
    """One ``fused_elementwise`` equation computing the group (its root comes last)."""
    root = eqns[-1]
    inputs: list[Any] = []
    index: dict[Any, str] = {}

    def leaf(a: Any) -> str:
        key = a if type(a) is Var else ("lit", id(a))
        if key not in index:
            index[key] = f"i{len(inputs)}"
            inputs.append(a)
        return index[key]
    exprs: dict[Var, str] = {}
    for eqn in eqns:
        args = [exprs[a] if type(a) is Var and a in exprs else leaf(a) for a in eqn.invars]
        exprs[eqn.outvars[0]] = _NUMEXPR_OPS[eqn.primitive.name](eqn, *args)
    expr = exprs[root.outvars[0]]
    kernel = _compile_numexpr(expr, [a.aval for a in inputs], root.outvars[0].aval)
    if kernel is None:
        return None
    return JaxprEqn(fused_elementwise_p, inputs, root.outvars,
                    {"expr": expr, "kernel": kernel})


_KIND_TYPES = {np.dtype(np.float32): float, np.dtype(np.float64): np.double, np.dtype(np.bool_): bool}


def _compile_numexpr(expr: str, in_avals: list[ShapedArray], out_aval: ShapedArray
                     ) -> Callable | None:
    """A numexpr kernel for ``expr``, or None when numexpr would change the result type."""
    signature = [(f"i{k}", _KIND_TYPES[a.dtype]) for k, a in enumerate(in_avals)]
    try:
        compiled = numexpr.NumExpr(expr, signature=signature)
        kernel = functools.partial(compiled, order="K", casting="safe", ex_uses_vml=False)
        kernel.__name__ = "numexpr"  # how the IR printer shows it
        probe = kernel(*[np.ones((), a.dtype) for a in in_avals])
    except Exception:  # anything numexpr cannot express stays unfused
        return None
    return kernel if probe.dtype == out_aval.dtype else None


_FUSERS: dict[str, Callable[[ClosedJaxpr], ClosedJaxpr]] = {"numpy": _numexpr_fuse}
