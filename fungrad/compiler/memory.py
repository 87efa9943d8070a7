"""Buffer planning for compiled executables: free early, reuse dead buffers, update in
place, and keep the buffers of intermediates from one call to the next.

The plan is computed once per executable from the jaxpr:

* *Liveness*: the last equation reading each variable (outputs live to the end).
* *Aliasing*: a result may share memory with its operands (reshape, transpose,
  broadcast and slicing return views; so may any impl we know nothing about).
  Each variable carries the set of *root* buffers it may alias. A root is dead
  once every variable aliasing it is dead.
* *Ownership*: a buffer is owned when it was freshly allocated by a lowering
  that says so (``Lowering.fresh``) or is a donated input, unless an effectful
  equation reads it (a callback may keep what it is given). Only owned buffers of
  dead roots are ever written into, so no live value, nor a value a callback kept,
  can change.
* *Reuse*: an equation whose lowering accepts ``out="any"`` writes into a dead
  owned buffer of its result's shape and dtype (an operand dying here, or one
  kept in a pool since it died); ``out="separate"`` (matmul, reductions) takes
  one from the pool only, never an operand; ``out=k`` updates operand ``k`` in
  place when it dies here (``dynamic_update_slice`` into a donated or dead KV cache),
  whatever its dtype (a bfloat16 cache too: the others reuse built-in dtypes only).
* *Arena*: a result that would otherwise be allocated fresh by such a lowering,
  and that never escapes the call (not an output nor aliased by one, not handed
  to an effectful equation such as a debug callback), is written into a
  persistent buffer of the executable instead (a *slot*). Slots are allocated on
  the first call and reused by every later call, so a steady-state call allocates
  (and page-faults) only for its outputs. Buffers of escaping results never come
  from the arena. Concurrent calls each take an arena of their own (``codegen``).
* *Output rings*: a large buffer whose values do escape (an output) is taken from a
  small ring of the executable's earlier output buffers when the caller has dropped
  one of them (nothing but the ring refers to it), so a training loop that replaces
  its parameters each step reuses their memory instead of page-faulting in new
  memory (``codegen._OutputRing``).
* *Freeing*: every other variable is deleted right after its last use.
"""
from __future__ import annotations

from typing import Callable, Collection, NamedTuple, Sequence

from fungrad._core.core import Jaxpr, JaxprEqn, ShapedArray, Var
from fungrad._core.lowering import Lowering
from fungrad.interpreters.partial_eval import eqn_has_effects

# Buffers smaller than this are not worth deleting early. (All sizes are recycled: even
# for 1 KiB a ufunc writing into a given buffer saves ~0.25 µs of allocation.)
FREE_MIN_BYTES = 4 * 1024
# Results beyond this many bytes in all are allocated per call, not kept in the arena.
ARENA_MAX_BYTES = 1 << 30
# Output buffers at least this large are recycled once the caller has dropped them
# (smaller ones come from the C heap's free lists without page faults anyway).
RECYCLE_MIN_BYTES = 128 * 1024


class MemoryPlan(NamedTuple):
    """Where each result goes and when buffers are freed (``plan_memory``'s answer, read by
    ``codegen``). Results are keyed by their variable, so an equation with several results
    (a multi-output fused kernel) gets a buffer for each."""

    out_buffer: dict[Var, Var]          # result -> dead buffer it is written into
    free_after: dict[int, list[Var]]    # equation index -> variables to delete after it
    arena: dict[Var, int]               # result -> arena slot it is written into
    slots: list[ShapedArray]            # type of each arena slot
    recycled: dict[Var, int]            # result -> output ring its buffer comes from
    rings: list[ShapedArray]            # type of each output ring


def _nbytes(v: Var) -> int:
    return v.aval.size * v.aval.dtype.itemsize


def _writable(v: Var) -> bool:
    """Non-empty arrays (0-d results are NumPy scalars, not buffers): what an in-place
    update (an int ``out``, which writes by indexing) may write into, whatever the dtype."""
    return v.aval.ndim > 0 and v.aval.size > 0


def _recyclable(v: Var) -> bool:
    """Writable arrays of a built-in NumPy dtype (ufuncs write those with ``out=``; a
    bfloat16 buffer is an ml_dtypes array on the CPU and a ``uint16`` one on a device)."""
    return _writable(v) and v.aval.dtype.isbuiltin == 1


def plan_memory(jaxpr: Jaxpr, donated: Sequence[bool],
                lowering_of: Callable[[JaxprEqn], Lowering],
                written: Collection[Var] = (), copied: Collection[Var] = ()) -> MemoryPlan:
    """Decide buffer reuse and freeing for ``jaxpr`` (see the module docstring).

    ``written``: outputs that an out-capable lowering writes straight into a buffer of the
    caller (``codegen``'s ``out_args``, as a block body writes its output blocks). Their
    buffers are not the executable's: never planned, reused or taken from the arena.
    ``copied``: outputs copied into a buffer of the caller at the end; they do not escape,
    so theirs may be arena slots."""
    eqns = jaxpr.eqns
    end = len(eqns)
    last_use: dict[Var, int] = {}
    for v in (*jaxpr.invars, *jaxpr.constvars):
        last_use[v] = -1
    for i, eqn in enumerate(eqns):
        for v in eqn.outvars:
            last_use[v] = i
        for v in eqn.invars:
            if type(v) is Var:
                last_use[v] = i
    for v in jaxpr.outvars:
        if type(v) is Var:
            last_use[v] = end

    # Aliasing and ownership.
    roots: dict[Var, frozenset] = {}
    owned: dict[Var, None] = {}  # a set in program order: the plan is the same in every run
    in_place: set[Var] = set()  # owned ones, and those only an in-place update writes into

    def own(v: Var) -> None:
        if _writable(v):
            in_place.add(v)
        if _recyclable(v):
            owned[v] = None
    for v, d in zip(jaxpr.invars, donated):
        roots[v] = frozenset((v,))
        if d:
            own(v)
    for v in jaxpr.constvars:
        roots[v] = frozenset((v,))
    lowerings = [lowering_of(eqn) for eqn in eqns]
    for eqn, low in zip(eqns, lowerings):
        if low.fresh:
            direct = low.out in ("any", "separate")
            for o in eqn.outvars:
                roots[o] = frozenset((o,))
                if not (direct and o in written):
                    own(o)
        else:
            shared = frozenset().union(*[roots[a] for a in eqn.invars if type(a) is Var])
            for o in eqn.outvars:
                roots[o] = shared | {o}
    group_end: dict[Var, int] = {}
    for v, rs in roots.items():
        for r in rs:
            group_end[r] = max(group_end.get(r, -1), last_use[v])

    # Roots that outlive the call or reach user code: never taken from the arena.
    escaping: set[Var] = set()
    for v in jaxpr.outvars:
        if type(v) is Var and v not in copied:
            escaping |= roots[v]
    for eqn in eqns:
        if eqn_has_effects(eqn):
            for a in eqn.invars:
                if type(a) is Var:
                    escaping |= roots[a]
                    for r in roots[a]:  # user code may keep it: never written into again
                        owned.pop(r, None)
                        in_place.discard(r)

    # Reuse: walk forward with a pool of dead owned buffers, one for each result of an
    # out-capable lowering. An escaping result may take over an operand dying here but not
    # a pooled buffer (that one stays free for results that can live in the arena).
    out_buffer: dict[Var, Var] = {}
    taken_at: dict[Var, int] = {}
    pool: dict[tuple, list[Var]] = {}
    dying: dict[int, list[Var]] = {}
    for r in owned:
        dying.setdefault(group_end[r], []).append(r)
    for i, (eqn, low) in enumerate(zip(eqns, lowerings)):
        for out in eqn.outvars if low.out in ("any", "separate") else ():
            if out in owned:
                target = _pick_buffer(eqn, out, i, owned, roots, group_end, taken_at,
                                      pool if out not in escaping else {}, low.out == "any")
                if target is not None:
                    out_buffer[out] = target
                    taken_at[target] = i
        if isinstance(low.out, int) and len(eqn.outvars) == 1:
            out, x = eqn.outvars[0], eqn.invars[low.out]
            if type(x) is Var and x in in_place and group_end[x] == i and \
                    x.aval == out.aval.update(weak_type=x.aval.weak_type) and \
                    not _aliased_by_others(x, eqn, roots):
                out_buffer[out] = x
                taken_at[x] = i
        for r in dying.get(i, ()):
            if r not in taken_at:
                pool.setdefault(_key(r), []).append(r)

    # Arena: a buffer allocated by an out-capable lowering, none of whose successive
    # values escapes, becomes a slot. A buffer is named by the result it was allocated for
    # (its *origin*); None: one that cannot be planned (allocated by any other lowering).
    lineage: dict[Var, Var | None] = {}   # result -> origin of its buffer
    escapes: set[Var | None] = set()
    for eqn, low in zip(eqns, lowerings):
        allocates = low.out in ("any", "separate")
        for out in eqn.outvars:
            if out not in owned or not allocates and len(eqn.outvars) != 1:
                continue
            target = out_buffer.get(out)
            origin = lineage.get(target) if target is not None else (out if allocates else None)
            lineage[out] = origin
            if out in escaping:
                escapes.add(origin)
    origins = [o for o in dict.fromkeys(lineage.values()) if o is not None]  # program order
    arena: dict[Var, int] = {}
    slots: list[ShapedArray] = []
    arena_bytes = 0
    for out in origins:
        if out not in escapes and arena_bytes + _nbytes(out) <= ARENA_MAX_BYTES:
            arena[out] = len(slots)
            slots.append(out.aval)
            arena_bytes += _nbytes(out)
    recycled: dict[Var, int] = {}
    rings: list[ShapedArray] = []
    for out in origins:
        if out in escapes and _nbytes(out) >= RECYCLE_MIN_BYTES:
            recycled[out] = len(rings)
            rings.append(out.aval)

    # Freeing: owned roots go when taken or when their group dies; others at last use.
    # Inputs and constants are held by the caller anyway.
    free_after: dict[int, list[Var]] = {}
    for eqn in eqns:
        for v in eqn.outvars:
            if last_use[v] >= end or _nbytes(v) < FREE_MIN_BYTES:
                continue
            at = taken_at.get(v, group_end[v] if v in owned else last_use[v])
            if at < end - 1:
                free_after.setdefault(at, []).append(v)
    return MemoryPlan(out_buffer, free_after, arena, slots, recycled, rings)


def _key(v: Var) -> tuple:
    return (v.aval.shape, v.aval.dtype)


def _aliased_by_others(x: Var, eqn: JaxprEqn, roots: dict) -> bool:
    """Whether another operand of ``eqn`` may share ``x``'s memory."""
    return any(type(a) is Var and a is not x and x in roots[a] for a in eqn.invars)


def _pick_buffer(eqn: JaxprEqn, out: Var, i: int, owned: dict, roots: dict, group_end: dict,
                 taken_at: dict, pool: dict, operands: bool) -> Var | None:
    """A dead owned buffer for ``out``, a result of ``eqn`` (equation ``i``): an operand
    dying here that no other result took, read and written at the same positions (when
    ``operands``), or one from the pool."""
    for x in eqn.invars if operands else ():
        if type(x) is Var and x in owned and group_end[x] == i and x not in taken_at \
                and _key(x) == _key(out) and not _aliased_by_others(x, eqn, roots):
            return x
    free = pool.get(_key(out))
    return free.pop() if free else None
