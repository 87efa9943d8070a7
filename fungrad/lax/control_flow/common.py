"""Shared machinery of the control-flow primitives.

* Tracing user functions into sub-jaxprs (``trace_fun``): the function is traced
  once; the constants it closes over (arrays, or tracers of enclosing
  transformations) become *explicit leading operands*, so every transformation
  sees them as ordinary inputs of the primitive. The resulting ``ClosedJaxpr``
  has no constants of its own.
* Running a sub-jaxpr on raw backend buffers (``run_jaxpr``), used by the
  implementations. By default it interprets the jaxpr eagerly; a compiler may
  install a faster runner with ``set_jaxpr_compiler`` (the seam for ``jit``).
* Small jaxpr surgery used by the rules: reordering binders, padding inputs,
  batching at given axes, residual merging across branches.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Jaxpr, ShapedArray, Tracer, Var
from fungrad.interpreters import batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax._prim import as_operand
from fungrad._core.eval import EVAL_TRACE
from fungrad.lax.elementwise import ne
from fungrad.lax.shapes import convert_element_type, full


# --------------------------------------------------------------------------- operands and tracing

def fun_name(f: Callable) -> str:
    """The name error messages give a user function (its class name if it has none)."""
    return getattr(f, "__name__", type(f).__name__)


def as_leaf(x: Any, api: str, what: str) -> Any:
    """A pytree leaf as something ``bind`` accepts, or a TypeError naming ``api``."""
    if isinstance(x, (Array, Tracer)):
        return x
    if isinstance(x, (bool, int, float, complex, np.ndarray, np.generic)):
        return as_operand(x)
    raise TypeError(f"{api}: {what} must be arrays or scalars, got {type(x).__name__}: {x!r}")


def flatten_operands(value: Any, api: str, what: str = "operands") -> tuple[list, Any]:
    """The leaves of the pytree ``value`` as operands, and its structure; a TypeError
    naming ``api`` for a leaf that is not an array or scalar."""
    leaves, treedef = tree_util.flatten(value)
    return [as_leaf(x, api, what) for x in leaves], treedef


def trace_fun(fun: Callable, in_avals: Sequence[ShapedArray], api: str
              ) -> tuple[ClosedJaxpr, list, list]:
    """Trace ``fun(*flat_args) -> flat outputs`` once into a const-free sub-jaxpr.

    Returns ``(closed, consts, outs)``: the jaxpr takes ``consts`` as its first
    inputs (closure conversion), followed by ``in_avals``.
    """
    def flat_fun(*args: Any) -> list:
        return [as_leaf(o, api, "outputs") for o in fun(*args)]
    jaxpr, consts, outs = pe.trace_to_jaxpr(flat_fun, in_avals, name=api)
    closed = ClosedJaxpr(pe.convert_constvars_to_invars(jaxpr), [])
    return closed, [as_leaf(c, api, "closed-over values") for c in consts], outs


def trace_tree_fun(fun: Callable, in_tree: Any, in_avals: Sequence[ShapedArray], api: str
                   ) -> tuple[ClosedJaxpr, list, Any]:
    """``trace_fun`` for a function of pytrees; also returns the output tree structure."""
    store = {}

    def flat_fun(*args: Any) -> list:
        out = fun(*tree_util.unflatten(in_tree, args))
        leaves, store["tree"] = tree_util.flatten(out)
        return leaves
    closed, consts, _ = trace_fun(flat_fun, in_avals, api)
    return closed, consts, store["tree"]


def concrete_value(x: Any) -> Any:
    """``x``'s value when it is known at trace time (an array, a scalar, or a tracer of
    a concrete value such as a JVP tracer of an array), else None."""
    if isinstance(x, Tracer):
        return x.to_concrete_value()
    return np.asarray(x)


def typematch(a: ShapedArray, b: ShapedArray) -> bool:
    """Same shape and dtype (weak types may differ, as in JAX)."""
    return a.shape == b.shape and a.dtype == b.dtype


def promote_weak_carry(vals: list, in_avals: Sequence[ShapedArray],
                       out_avals: Sequence[ShapedArray]) -> tuple[list, bool]:
    """Weakly typed initial carries (Python scalars) take the type the body returns."""
    new, changed = [], False
    for v, a_in, a_out in zip(vals, in_avals, out_avals):
        if a_in.weak_type and not typematch(a_in, a_out):
            new.append(convert_element_type(v, dtypes.result_type(a_in, a_out)))
            changed = True
        else:
            new.append(v)
    return new, changed


def check_carry(api: str, fun: Callable, in_tree: Any, out_tree: Any,
                in_avals: Sequence[ShapedArray], out_avals: Sequence[ShapedArray]) -> None:
    """Carry input and output must have the same structure, shapes and dtypes."""
    name = fun_name(fun)
    if in_tree != out_tree:
        raise TypeError(f"{api} function {name}: carry input and carry output must have the "
                        f"same pytree structure, but the input is {in_tree} and the output "
                        f"is {out_tree}.")
    paths = [p for p, _ in tree_util.leaves_with_plain_path(tree_util.unflatten(in_tree, in_avals))]
    diffs = [f"the input carry{_path_str(p)} has type {a.str_short()} but the corresponding "
             f"output carry has type {b.str_short()}"
             for p, a, b in zip(paths, in_avals, out_avals) if not typematch(a, b)]
    if diffs:
        raise TypeError(f"{api} function {name}: carry input and carry output must have equal "
                        "types, but they differ:\n  " + ";\n  ".join(diffs) +
                        ".\nRevise the function so that all output types match the "
                        "corresponding input types.")


def _path_str(path: tuple) -> str:
    return (" at " + "".join(f"[{k!r}]" for k in path)) if path else ""


def check_scalar_pred(api: str, pred: Any, allow_int: bool) -> Any:
    """Validate a branch predicate/index: a scalar of the right dtype."""
    pred = as_leaf(pred, api, "the predicate")
    aval = core.get_aval(pred)
    if aval.ndim != 0:
        what = "Branch index" if allow_int else "Pred"
        raise TypeError(f"{api}: {what} must be a scalar, got shape {aval.shape}.")
    kind = aval.dtype.kind
    if allow_int:
        if kind not in "iu":
            raise TypeError(f"{api}: Index type must be an integer, got {aval.dtype.name}.")
        return pred
    if kind == "b":
        return pred
    if kind in "iuf" or aval.dtype in dtypes.ml_floats:
        return ne(pred, 0)
    raise TypeError(f"{api}: Pred type must be either boolean or number, got {aval.dtype.name}.")


# --------------------------------------------------------------------------- running sub-jaxprs

_compiler: Callable[[ClosedJaxpr], Callable] | None = None


def set_jaxpr_compiler(compiler: Callable[[ClosedJaxpr], Callable] | None) -> None:
    """Install ``compiler(closed) -> run(xp, raw_args) -> raw_outs`` for sub-jaxprs.

    The implementations of cond/scan/while call their bodies through
    ``run_jaxpr``; ``jit`` can register its compiler here so loop bodies run
    compiled instead of interpreted (each sub-jaxpr is compiled once and kept
    with it). ``None`` restores the interpreter.
    """
    global _compiler
    _compiler = compiler


def _to_raw(xp: Any, x: Any, aval: ShapedArray) -> Any:
    if type(x) is Array:
        return x._value
    return xp.asarray(x, dtype=aval.dtype)


def _as_argument(x: Any, aval: ShapedArray) -> Array:
    """Raw argument ``x`` as an ``Array`` of ``aval``: a Python or NumPy scalar (a body's
    constant, such as a float passed through ``custom_vjp``) becomes an array of the
    aval's dtype, where NumPy would compute with it in float64 or int64 (and a fused GPU
    kernel would read its float64 bits as float32)."""
    if type(x) is Array:
        return x
    if isinstance(x, (bool, int, float, complex, np.generic)):
        x = np.asarray(x, dtype=aval.dtype)
    return Array(x, aval.weak_type)


def _interpret(closed: ClosedJaxpr, xp: Any, args: Sequence[Any]) -> list:
    jaxpr = closed.jaxpr
    consts = [_as_argument(c, v.aval) for c, v in zip(closed.consts, jaxpr.constvars)]
    with core.set_current_trace(EVAL_TRACE):
        outs = core.eval_jaxpr(jaxpr, consts,
                               *[_as_argument(a, v) for a, v in zip(args, closed.in_avals)])
    return [_to_raw(xp, o, a) for o, a in zip(outs, closed.out_avals)]


def run_jaxpr(closed: ClosedJaxpr, xp: Any, args: Sequence[Any]) -> list:
    """Evaluate ``closed`` on raw backend buffers, returning raw buffers."""
    if _compiler is None:
        return _interpret(closed, xp, args)
    cached = closed.__dict__.get("_compiled_run")
    if cached is None or cached[0] is not _compiler:
        cached = closed.__dict__["_compiled_run"] = (_compiler, _compiler(closed))
    return cached[1](xp, args)


# --------------------------------------------------------------------------- jaxpr surgery

def permute(closed: ClosedJaxpr, in_order: Sequence[int] | None = None,
            out_order: Sequence[int] | None = None) -> ClosedJaxpr:
    """``closed`` with its inputs/outputs reordered: new position k holds old ``order[k]``."""
    j = closed.jaxpr
    invars = j.invars if in_order is None else [j.invars[i] for i in in_order]
    outvars = j.outvars if out_order is None else [j.outvars[i] for i in out_order]
    return ClosedJaxpr(Jaxpr(j.constvars, invars, outvars, j.eqns), closed.consts)


def group_order(sizes: Sequence[int], order: Sequence[int]) -> list[int]:
    """Indices that regroup consecutive groups of ``sizes`` into the group ``order``."""
    starts = np.cumsum([0, *sizes]).tolist()
    return [i for g in order for i in range(starts[g], starts[g] + sizes[g])]


def add_inputs(closed: ClosedJaxpr, position: int, avals: Sequence[ShapedArray]) -> ClosedJaxpr:
    """``closed`` with unused inputs of ``avals`` inserted at ``position``."""
    j = closed.jaxpr
    invars = j.invars[:position] + [Var(a) for a in avals] + j.invars[position:]
    return ClosedJaxpr(Jaxpr(j.constvars, invars, j.outvars, j.eqns), closed.consts)


def select_outputs(closed: ClosedJaxpr, keep: Sequence[bool]) -> ClosedJaxpr:
    """``closed`` restricted to the outputs marked ``keep`` (dead code dropped)."""
    return ClosedJaxpr(pe.dce_jaxpr(closed.jaxpr, keep), closed.consts)


def trace_closed(fun: Callable, in_avals: Sequence[ShapedArray], name: str) -> ClosedJaxpr:
    """Trace a rule-internal ``fun(*args) -> list`` into a ``ClosedJaxpr``."""
    jaxpr, consts, _ = pe.trace_to_jaxpr(fun, in_avals, name=name)
    return ClosedJaxpr(jaxpr, consts)


def split(xs: Sequence[Any], sizes: Sequence[int]) -> list[list]:
    """``xs`` cut into consecutive pieces of ``sizes`` (the sizes must add up)."""
    starts = np.cumsum([0, *sizes]).tolist()
    assert starts[-1] == len(xs), (sizes, len(xs))
    return [list(xs[a:b]) for a, b in zip(starts[:-1], starts[1:])]


def merge(flags: Sequence[bool], if_false: Sequence[Any], if_true: Sequence[Any]) -> list:
    """Interleave two lists back into the order given by ``flags``."""
    f, t = iter(if_false), iter(if_true)
    return [next(t) if flag else next(f) for flag in flags]


def fixpoint(step: Callable, carry_flags: list) -> tuple[list, Any]:
    """Grow ``carry_flags`` (which carries are nonzero/unknown/batched) until
    ``step(flags) -> (flags_out, result)`` gives back no new flag; return both."""
    for _ in range(len(carry_flags) + 1):
        flags_out, result = step(carry_flags)
        if flags_out == carry_flags:
            return carry_flags, result
        carry_flags = [a or b for a, b in zip(carry_flags, flags_out)]
    raise AssertionError("control flow: fixed point not reached")


def zeros(aval: ShapedArray) -> Any:
    """Zeros of ``aval`` in the current trace (float0 zeros for integer tangents)."""
    if aval.dtype == dtypes.float0:
        return np.zeros(aval.shape, dtypes.float0)
    return full(aval.shape, 0, aval.dtype)


def batch_jaxpr(closed: ClosedJaxpr, trace: batching.BatchTrace, batched: Sequence[bool],
                instantiate: bool | Sequence[bool]) -> tuple[ClosedJaxpr, list[bool]]:
    """``batching.batch_jaxpr`` for the vmap of ``trace`` (its size and axis name, so
    named-axis collectives inside loop and branch bodies work)."""
    return batching.batch_jaxpr(closed, trace.axis_size, batched, instantiate, trace.axis_name)


def batch_jaxpr_at(closed: ClosedJaxpr, trace: batching.BatchTrace,
                   in_dims: Sequence[int | None], out_dims: Sequence[int | None]) -> ClosedJaxpr:
    """Batch ``closed`` with batch dimensions at ``in_dims`` in and ``out_dims`` out.

    ``None`` means unbatched; an output marked ``None`` must come out unbatched.
    """
    in_bat = [d is not None for d in in_dims]
    out_bat = [d is not None for d in out_dims]
    inner, got = batch_jaxpr(closed, trace, in_bat, out_bat)
    assert got == out_bat, (got, out_bat)
    if all(d in (None, 0) for d in (*in_dims, *out_dims)):
        return inner

    def at_axes(*args: Any) -> list:
        args = [batching.moveaxis(a, d, 0) if d else a for a, d in zip(args, in_dims)]
        outs = pe.closed_call(inner, *args)
        return [batching.moveaxis(o, 0, d) if d else o for o, d in zip(outs, out_dims)]
    n = trace.axis_size
    avals = [a if d is None else a.update(shape=a.shape[:d] + (n,) + a.shape[d:])
             for a, d in zip(closed.in_avals, in_dims)]
    return trace_closed(at_axes, avals, "vmap")


# --------------------------------------------------------------------------- residuals of branches

def merge_branch_residuals(res_avals: Sequence[Sequence[ShapedArray]]
                           ) -> tuple[list[ShapedArray], list[list[int]]]:
    """One residual list all branches can share, reusing slots of equal type.

    Returns the shared avals and, per branch, the slot of each of its residuals:
    ``[x], [y], [x, x] -> [x, y, x], [[0], [1], [0, 2]]``.
    """
    slots: list[ShapedArray] = []
    where = []
    for avals in res_avals:
        used: set[int] = set()
        mine = []
        for a in avals:
            k = next((i for i, s in enumerate(slots) if s == a and i not in used), None)
            if k is None:
                k = len(slots)
                slots.append(a)
            used.add(k)
            mine.append(k)
        where.append(mine)
    return slots, where


def join_residual_outputs(closed: ClosedJaxpr, num_outs: int, all_res: Sequence[ShapedArray],
                          slots: Sequence[int]) -> ClosedJaxpr:
    """A branch returning ``outs + own residuals`` made to return ``outs + all residuals``
    (zeros in the slots other branches use)."""
    def joined(*args: Any) -> list:
        outs = pe.closed_call(closed, *args)
        res = [None] * len(all_res)
        for k, r in zip(slots, outs[num_outs:]):
            res[k] = r
        return outs[:num_outs] + [zeros(a) if r is None else r for r, a in zip(res, all_res)]
    return trace_closed(joined, closed.in_avals, "cond")


def join_residual_inputs(closed: ClosedJaxpr, all_res: Sequence[ShapedArray],
                         slots: Sequence[int]) -> ClosedJaxpr:
    """A branch taking ``own residuals + ins`` made to take ``all residuals + ins``."""
    j = closed.jaxpr
    n = len(slots)
    res_vars: list[Var] = [Var(a) for a in all_res]
    for k, v in zip(slots, j.invars[:n]):
        res_vars[k] = v
    return ClosedJaxpr(Jaxpr(j.constvars, res_vars + j.invars[n:], j.outvars, j.eqns),
                       closed.consts)
