"""``jit_p``: the call primitive behind ``jit``, with all its rules.

``jit_p.bind(*args, jaxpr=closed, name=..., donated_invars=...)`` runs the closed
jaxpr. Every rule recurses into the jaxpr, so ``jit`` composes with every
transformation:

* impl: run the compiled executable (``fungrad.compiler``), cached per jaxpr;
* abstract eval: the jaxpr's output types;
* JVP: ``jit_p`` of the JVP jaxpr;
* partial eval (``grad``/``vjp``/``linearize``): the known half runs as a
  ``jit_p`` in the parent trace, the unknown half is staged as a ``jit_p`` (so
  ``grad(jit(f))`` keeps the forward pass compiled);
* transpose: ``jit_p`` of the jaxpr that runs ``backward_pass`` over the body;
* batching: ``jit_p`` of the batched jaxpr (a named-axis rule: the body sees
  vmap's axis name);
* staging (``jit`` inside ``jit``, ``make_jaxpr``): an equation the compiler inlines.

Jaxprs derived by these rules are cached on the jaxpr they come from, so the
second ``grad(jit(f))(x)`` traces nothing inside ``f`` and compiles nothing.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core import core, dtypes, monitoring
from fungrad._core.core import ClosedJaxpr, Primitive, ShapedArray, Tracer
from fungrad._core.eval import EVAL_TRACE
from fungrad._core.lowering import def_compiler_traits
from fungrad.backends.bfloat16 import Bfloat16Buffer
from fungrad.compiler import pipeline
from fungrad.errors import UnexpectedTracerError
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe

__all__ = ["jit_p", "get_executable", "call_jit", "as_buffer"]

NUMPY_BUFFERS = (np.ndarray, np.generic)


# --------------------------------------------------------------------------- executables

_executables: "weakref.WeakKeyDictionary[ClosedJaxpr, dict]" = weakref.WeakKeyDictionary()


def get_executable(closed: ClosedJaxpr, xp: Any = np, donated: tuple | None = None,
                   name: str = "jit") -> pipeline.Executable:
    """The compiled form of ``closed`` for backend ``xp`` (compiled once, then cached)."""
    table = _executables.get(closed)
    if table is None:
        table = _executables[closed] = {}
    key = (xp.__name__, donated)
    exe = table.get(key)
    if exe is None:
        # A jit called while an outer function is traced compiles here too: the compiler's
        # arithmetic on literals must run eagerly, not be recorded by the outer trace.
        with monitoring.timed_event(monitoring.BACKEND_COMPILE_EVENT, f"jit({name})"), \
                core.set_current_trace(EVAL_TRACE):
            exe = table[key] = pipeline.compile_jaxpr(closed, donated, xp, name)
    return exe


def as_buffer(xp: Any, x: Any, aval: ShapedArray) -> Any:
    """A raw buffer for an argument leaf (Python scalars take the dtype of ``aval``)."""
    if isinstance(x, NUMPY_BUFFERS) or type(x).__module__.startswith("cupy"):
        return x if x.dtype == aval.dtype else x.astype(aval.dtype)
    if type(x) is Bfloat16Buffer and aval.dtype == dtypes.bfloat16:  # on a GPU
        return x
    if isinstance(x, Tracer):
        raise UnexpectedTracerError(x, "It was passed to a jitted function outside of its "
                                       "transformation. ")
    return xp.asarray(x, dtype=aval.dtype)


# --------------------------------------------------------------------------- derived jaxprs

_derived: "weakref.WeakKeyDictionary[ClosedJaxpr, dict]" = weakref.WeakKeyDictionary()


def _has_tracer_consts(closed: ClosedJaxpr) -> bool:
    return any(isinstance(c, Tracer) for c in closed.consts)


def _cached(closed: ClosedJaxpr, key: tuple, make: Callable[[], tuple]) -> tuple:
    """``make()`` memoised on ``closed`` (only results free of traced constants)."""
    table = _derived.get(closed)
    if table is None:
        table = _derived[closed] = {}
    hit = table.get(key)
    if hit is None:
        hit = make()
        if not any(isinstance(x, ClosedJaxpr) and _has_tracer_consts(x) for x in hit):
            table[key] = hit
    return hit


def call_jit(closed: ClosedJaxpr, args: Sequence[Any], name: str, trace: Any = None,
             donated: Sequence[bool] | None = None) -> list:
    """Bind ``jit_p`` on ``closed`` (traced constants become leading operands).

    With ``trace`` (a partial-evaluation trace) the call is staged into it. ``donated``
    flags the arguments whose buffers the executable may reuse (an eager call's donated
    arguments, handed over by ``jit``).
    """
    donated = tuple(donated) if donated is not None else (False,) * len(args)
    if _has_tracer_consts(closed):
        donated = (False,) * len(closed.consts) + donated
        args = [*closed.consts, *args]
        closed = ClosedJaxpr(pe.convert_constvars_to_invars(closed.jaxpr), [])
    params = dict(jaxpr=closed, name=name, donated_invars=donated)
    if trace is not None:
        return trace.stage(jit_p, args, params)
    return jit_p.bind(*args, **params)


# --------------------------------------------------------------------------- jit_p and its rules

def _jit_impl(xp, *args, jaxpr, name, donated_invars):
    exe = get_executable(jaxpr, xp, donated_invars if any(donated_invars) else None, name)
    return exe.fn(*[as_buffer(xp, a, v) for a, v in zip(args, exe.in_avals)])


def _jit_abstract_eval(*avals, jaxpr, name, donated_invars):
    expected = jaxpr.in_avals
    if len(avals) != len(expected) or any(
            a.shape != b.shape or a.dtype != b.dtype for a, b in zip(avals, expected)):
        raise TypeError(f"jit({name}): called with {[a.str_short() for a in avals]} but the "
                        f"jaxpr takes {[a.str_short() for a in expected]}")
    return list(jaxpr.out_avals)


def _jit_weak_type(weak_flags, *, jaxpr, name, donated_invars):
    return [a.weak_type for a in jaxpr.out_avals]


def _jit_jvp(primals, tangents, *, jaxpr, name, donated_invars):
    nonzeros = tuple(type(t) is not ad.Zero for t in tangents)
    jvp_closed, out_nz = _cached(jaxpr, ("jvp", nonzeros),
                                 lambda: ad.jvp_jaxpr(jaxpr, nonzeros, instantiate=False))
    outs = call_jit(jvp_closed, [*primals, *[t for t in tangents if type(t) is not ad.Zero]],
                 f"jvp({name})")
    n = len(jaxpr.out_avals)
    out_p, nz_t = outs[:n], iter(outs[n:])
    return out_p, [next(nz_t) if nz else ad.Zero.from_primal(p) for p, nz in zip(out_p, out_nz)]


def _jit_partial_eval(trace, args, params):
    jaxpr, name = params["jaxpr"], params["name"]
    unknowns = tuple(trace.is_own(a) for a in args)

    def split():
        with core.set_current_trace(trace.parent):
            return pe.partial_eval_jaxpr(jaxpr, unknowns)
    known, unknown, out_unknowns, num_res = _cached(jaxpr, ("partial_eval", unknowns), split)
    with core.set_current_trace(trace.parent):
        known_outs = call_jit(known, [a for a, u in zip(args, unknowns) if not u], name)
    n_known = len(known_outs) - num_res
    residuals = known_outs[n_known:]
    unknown_outs = iter(call_jit(unknown, [*residuals, *[a for a, u in zip(args, unknowns) if u]],
                              name, trace=trace))
    known_vals = iter(known_outs[:n_known])
    return [next(unknown_outs) if u else next(known_vals) for u in out_unknowns]


def _tangent_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape, dtypes.tangent_dtype(aval.dtype), aval.weak_type)


def _transpose_jaxpr(closed: ClosedJaxpr, undefined: tuple, ct_avals: tuple
                     ) -> tuple[ClosedJaxpr, list[bool]]:
    """The jaxpr ``(residuals, nonzero cotangents) -> nonzero input cotangents``."""
    res_avals = [a for a, u in zip(closed.in_avals, undefined) if not u]
    zeros: list[bool] = []

    def transposed(*xs):
        res, cts = iter(xs[:len(res_avals)]), iter(xs[len(res_avals):])
        args = [ad.UndefinedPrimal(a) if u else next(res)
                for a, u in zip(closed.in_avals, undefined)]
        cts_out = [ad.Zero(_tangent_aval(o)) if c is None else next(cts)
                   for c, o in zip(ct_avals, closed.out_avals)]
        cts_in = ad.backward_pass(closed.jaxpr, list(closed.consts), args, cts_out)
        cts_in = [ct for ct, u in zip(cts_in, undefined) if u]
        zeros[:] = [type(ct) is ad.Zero for ct in cts_in]
        return [ct for ct in cts_in if type(ct) is not ad.Zero]
    jaxpr, consts, _ = pe.trace_to_jaxpr(
        transposed, res_avals + [a for a in ct_avals if a is not None], name="transpose")
    return ClosedJaxpr(jaxpr, consts), list(zeros)


def _jit_transpose(cts, *args, jaxpr, name, donated_invars):
    undefined = tuple(ad.is_undefined(a) for a in args)
    ct_avals = tuple(None if type(ct) is ad.Zero else core.get_aval(ct) for ct in cts)
    t_closed, zeros = _cached(jaxpr, ("transpose", undefined, ct_avals),
                              lambda: _transpose_jaxpr(jaxpr, undefined, ct_avals))
    outs = iter(call_jit(t_closed, [*[a for a, u in zip(args, undefined) if not u],
                                 *[ct for ct in cts if type(ct) is not ad.Zero]],
                      f"transpose({name})"))
    zero_flags = iter(zeros)
    result = []
    for a, u in zip(args, undefined):
        if not u:
            result.append(None)
        else:
            result.append(ad.Zero(a.aval) if next(zero_flags) else next(outs))
    return result


def _jit_batch(trace, vals, dims, *, jaxpr, name, donated_invars):
    batched = tuple(d is not None for d in dims)
    vals = [batching.moveaxis(v, d, 0) if d else v for v, d in zip(vals, dims)]
    key = ("batch", trace.axis_size, batched, trace.axis_name)
    b_closed, out_batched = _cached(jaxpr, key, lambda: batching.batch_jaxpr(
        jaxpr, trace.axis_size, batched, False, trace.axis_name))
    outs = call_jit(b_closed, vals, f"vmap({name})")
    return outs, [0 if b else None for b in out_batched]


jit_p = Primitive("jit", multiple_results=True)
jit_p.def_impl(_jit_impl)
jit_p.def_abstract_eval(_jit_abstract_eval)
jit_p.weak_type_rule = _jit_weak_type
ad.def_jvp(jit_p, _jit_jvp)
pe.def_partial_eval(jit_p, _jit_partial_eval)
ad.def_transpose(jit_p, _jit_transpose)
batching.def_collective(jit_p, _jit_batch)  # needs the trace: vmap's axis name reaches the body
def_compiler_traits(jit_p, inline=lambda params: params["jaxpr"])  # spliced into its caller
