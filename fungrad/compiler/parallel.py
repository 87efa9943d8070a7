"""Parallel tails: independent elementwise work at the end of a program on two threads.

NumPy releases the GIL inside its loops, so two Python threads running ufuncs over
large arrays use two cores. A program's *tail* often splits into independent parts:
an optimiser update is one chain of elementwise ops per parameter, each reading
only its own parameter, gradient and state (plus a few scalars). ``split`` finds
such a tail and replaces it by one ``parallel`` equation whose impl runs each part
(*component*) as its own compiled executable, the main thread and the compiler's
worker (``threads``) taking components from a shared queue, largest first. A component waits for
nothing, and the main thread never waits while components remain, so a busy
second core costs at most the component the worker is running.

The tail is chosen by one backward pass: it starts after the last equation that
is not safe to run concurrently (matmuls and convolutions, which OpenBLAS already
threads: primitives declaring the ``threaded`` compiler trait; control flow; effects)
at the point where the work that can overlap (everything but the largest component) is
greatest. Small equations whose inputs
come from before the tail (bias corrections, step counters) are hoisted before it,
so they do not join all components into one; so is a small value computed in the tail
that several components read (a global norm that clips every gradient), with the
work it depends on. Components may update in place only
the donated inputs that nothing else reads.

Enabled on NumPy with at least two usable CPUs; ``FUNGRAD_THREADS=1`` or ``ENABLED = False``
turns it off. ``MIN_WORK`` is the overlapping work (in element-ops) below which
threads are not worth waking.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Primitive, Var
from fungrad._core.lowering import compiler_traits
from fungrad.compiler import threads
from fungrad.compiler.codegen import compile_function
from fungrad.compiler.lowering import declare_compiled_only
from fungrad.interpreters.partial_eval import eqn_has_effects, sub_jaxprs

ENABLED = threads.ENABLED
MIN_WORK = 1 << 20      # element-ops that must overlap for a parallel tail
SMALL = 1024            # results this small are hoisted, not parallelised


# --------------------------------------------------------------------------- the primitive

def _parallel_impl(xp, *args, runner, n_out):
    return runner(*args)


def _parallel_abstract(*avals, runner, n_out):
    raise TypeError("parallel only exists inside compiled executables")


parallel_p = Primitive("parallel", multiple_results=True)
parallel_p.def_impl(_parallel_impl)
parallel_p.def_abstract_eval(_parallel_abstract)
declare_compiled_only(parallel_p)

class _Runner:
    """Runs the components of a tail on the calling thread and one worker."""
    __name__ = "threads"  # how the IR printer shows it

    def __init__(self, tasks: list[tuple[Callable, list[int], list[int]]], n_out: int) -> None:
        self.tasks = tasks  # (executable, indices of its inputs, indices of its outputs)
        self.n_out = n_out

    def __call__(self, *args: Any) -> list:
        outs: list[Any] = [None] * self.n_out
        queue = iter(self.tasks)  # ``next`` on it is atomic under the GIL

        def work() -> None:
            for fn, ins, out_idx in queue:
                for k, o in zip(out_idx, fn(*[args[i] for i in ins])):
                    outs[k] = o
        task = threads.start(work)  # None when the worker is busy: this thread does it all
        try:
            work()
        finally:
            if task is not None:
                task.wait()
        return outs


# --------------------------------------------------------------------------- analysis

def _cost(eqn: JaxprEqn) -> int:
    size = sum(v.aval.size for v in eqn.outvars)
    return size * eqn.params.get("n_ops", 1)


def _safe(eqn: JaxprEqn) -> bool:
    return not compiler_traits(eqn.primitive).threaded \
        and next(sub_jaxprs(eqn.params), None) is None and not eqn_has_effects(eqn)


def _find(parent: Any, x: int) -> int:
    """Union-find root of ``x`` (``parent``: a dict or list), compressing the path."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def _tail_start(eqns: list[JaxprEqn]) -> int:
    """The start of the tail where the most work overlaps (``len(eqns)`` for none)."""
    parent: dict[int, int] = {}
    cost: dict[int, int] = {}
    consumers: dict[Var, list[int]] = {}
    total, best, best_start = 0, 0, len(eqns)
    largest = 0
    for k in range(len(eqns) - 1, -1, -1):
        eqn = eqns[k]
        if not _safe(eqn):
            break
        parent[k], cost[k] = k, _cost(eqn)
        total += cost[k]
        big = any(v.aval.size > SMALL for v in eqn.outvars)
        for v in eqn.outvars if big else ():  # small results will be hoisted
            for c in consumers.get(v, ()):
                a, b = _find(parent, k), _find(parent, c)
                if a != b:
                    parent[b] = a
                    cost[a] += cost.pop(b)
        root = _find(parent, k)
        largest = max(largest, cost[root])
        for a in eqn.invars:
            if type(a) is Var:
                consumers.setdefault(a, []).append(k)
        if total - largest > best:
            best, best_start = total - largest, k
    return best_start if best >= MIN_WORK else len(eqns)


# --------------------------------------------------------------------------- the transformation

def split(closed: ClosedJaxpr, donated: Sequence[bool], xp: Any, name: str) -> ClosedJaxpr:
    """``closed`` with its parallel tail (if any) replaced by one ``parallel`` equation.

    Each component is compiled as it is (``{name}_part``), writing in place only into the
    donated inputs (``donated``) that nothing else reads.
    """
    j = closed.jaxpr
    if not ENABLED or getattr(xp, "__name__", "") != "numpy" or not j.eqns:
        return closed
    start = _tail_start(j.eqns)
    if start >= len(j.eqns):
        return closed
    head, tail = list(j.eqns[:start]), j.eqns[start:]
    # Hoist small equations that depend only on values from before the tail.
    available = set(j.invars) | set(j.constvars) | {v for e in head for v in e.outvars}
    rest = []
    for eqn in tail:
        small = all(v.aval.size <= SMALL for v in eqn.outvars)
        if small and all(type(a) is not Var or a in available for a in eqn.invars):
            head.append(eqn)
            available.update(eqn.outvars)
        else:
            rest.append(eqn)
    shared = _shared_small_work(rest)
    head += [eqn for eqn in rest if id(eqn) in shared]
    components = _components([eqn for eqn in rest if id(eqn) not in shared])
    if len(components) < 2:
        return closed
    outputs = [v for v in dict.fromkeys(a for a in j.outvars if type(a) is Var)
               if any(v in {o for e in comp for o in e.outvars} for comp in components)]
    readers: dict[Var, int] = {}
    for comp in components:
        for v in {a for e in comp for a in e.invars if type(a) is Var}:
            readers[v] = readers.get(v, 0) + 1
    donatable = {v for v, d in zip(j.invars, donated) if d and readers.get(v) == 1} - \
        {a for a in j.outvars if type(a) is Var} - {a for e in head for a in e.invars}
    inputs: list[Var] = []
    tasks = []
    for comp in sorted(components, key=lambda c: -sum(map(_cost, c))):
        defined = {v for e in comp for v in e.outvars}
        ins = list(dict.fromkeys(a for e in comp for a in e.invars
                                 if type(a) is Var and a not in defined))
        outs = [v for v in outputs if v in defined]
        sub = ClosedJaxpr(Jaxpr([], ins, outs, comp), [])
        fn, _ = compile_function(sub, [v in donatable for v in ins], xp, f"{name}_part")
        for v in ins:
            if v not in inputs:
                inputs.append(v)
        tasks.append((fn, [inputs.index(v) for v in ins], [outputs.index(v) for v in outs]))
    runner = _Runner(tasks, len(outputs))
    eqn = JaxprEqn(parallel_p, inputs, outputs, {"runner": runner, "n_out": len(outputs)})
    return ClosedJaxpr(Jaxpr(j.constvars, j.invars, j.outvars, head + [eqn]), closed.consts)


def _shared_small_work(eqns: list[JaxprEqn]) -> set[int]:
    """The ids of the equations computing a small value that parts of ``eqns`` otherwise
    independent (linked only through large values) all read, and of everything it
    depends on in ``eqns``: work to do before the parallel part."""
    parent = list(range(len(eqns)))
    producer: dict[Var, int] = {}
    readers: dict[Var, list[int]] = {}
    for k, eqn in enumerate(eqns):
        for a in eqn.invars:
            if type(a) is Var and a in producer:
                readers.setdefault(a, []).append(k)
                if a.aval.size > SMALL:
                    parent[_find(parent, k)] = _find(parent, producer[a])
        for v in eqn.outvars:
            producer[v] = k
    pulled: set[int] = set()
    for v, ks in readers.items():
        if v.aval.size <= SMALL and len({_find(parent, k) for k in ks}) > 1:
            pulled.add(producer[v])
    todo = list(pulled)
    while todo:  # and everything those depend on
        for a in eqns[todo.pop()].invars:
            if type(a) is Var and a in producer and producer[a] not in pulled:
                pulled.add(producer[a])
                todo.append(producer[a])
    return {id(eqns[k]) for k in pulled}


def _components(eqns: list[JaxprEqn]) -> list[list[JaxprEqn]]:
    """The equations grouped by data dependence (in program order within a group)."""
    parent = list(range(len(eqns)))
    producer: dict[Var, int] = {}
    for k, eqn in enumerate(eqns):
        for a in eqn.invars:
            if type(a) is Var and a in producer:
                r1, r2 = _find(parent, producer[a]), _find(parent, k)
                parent[r2] = r1
        for v in eqn.outvars:
            producer[v] = k
    groups: dict[int, list[JaxprEqn]] = {}
    for k, eqn in enumerate(eqns):
        groups.setdefault(_find(parent, k), []).append(eqn)
    return list(groups.values())
