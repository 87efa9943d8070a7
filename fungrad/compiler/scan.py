"""``scan`` in compiled code: a generated Python loop around the body's own lines.

A scan's impl calls its body through ``run_jaxpr`` once per step: a function call, list
building and, in the body, one NumPy call per equation on small per-step operands, several
microseconds a step where XLA spends a few nanoseconds. The lowering here generates one
function per ``scan`` equation instead, in three parts:

* the *prologue*: the body's equations that do not depend on the carry (they read only
  the constants and the step's ``x``) are batched over the steps (``batching.batch_jaxpr``)
  and run once, vectorised, before the loop (an RNN's input projection becomes one matmul);
* the *loop*: the equations that compute the next carry, written into the loop as lines
  (a ``cond`` among them becomes an ``if``/``elif``/``else`` over its branches' lines, its
  index read from a Python list when it comes from ``xs``), or, for a body with large values,
  one call per step of the body compiled by the pipeline (whose memory plan reuses buffers
  across steps). Written as lines, a value stacked at every step is computed straight into
  its row of the stacked buffer when its lowering takes an ``out`` buffer (the carry returned
  at the end is then copied out of its row); a step is then one NumPy call per equation, and
  nothing else costs more than a few tens of nanoseconds;
* the *epilogue*: the equations that only compute ``ys`` from the step's values (a loss
  term per step) are batched over the steps and run once after the loop, on the values the
  loop stacked.

A body with side effects (``debug_callback``) keeps every equation in the loop, in order,
and so does a part whose stacked values would exceed ``SPLIT_MAX_BYTES``. The generated
loop runs inside the function ``jit`` generated, which has already set NumPy's error state.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var
from fungrad._core.lowering import compiler_traits, def_lowering
from fungrad.compiler import passes
from fungrad.compiler.codegen import PREBROADCAST_MAX, compile_source
from fungrad.compiler.lowering import lowering_for
from fungrad.compiler.pipeline import compile_jaxpr
from fungrad.interpreters import batching
from fungrad.interpreters.partial_eval import jaxpr_has_effects
from fungrad.lax.control_flow.conditionals import cond_p
from fungrad.lax.control_flow.loops import scan_p

# A body whose values all have at most this many elements is written into the loop; a
# larger one is called once per step as a compiled function (its arena avoids allocating
# fresh large buffers, and page faults, at every step).
INLINE_MAX_SIZE = 16384

# The prologue and epilogue stack one value per step; past this many bytes of stacked
# values the part stays in the loop.
SPLIT_MAX_BYTES = 1 << 24


class _Lines:
    """Python statements generated for inlined equations, named within one function.

    Variables are named ``v0``, ``v1``, ...; the constants the lowerings refer to are
    registered in ``ctx``, the code-generation context of the enclosing function, whose
    names all start with an underscore. ``stores`` maps a value to the place it is also
    stored in (the step's row of a stacked buffer, ``"v4[i]"``): the equation computing it
    writes it there directly when its lowering takes an ``out`` buffer (no copy; the value
    is then a view of that row, and is listed in ``views``), else it is copied there."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.lines: list[str] = []
        self.count = 0
        self.stores: dict[Var, str] = {}
        self.views: set[Var] = set()

    def fresh(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def atom(self, names: dict, a: Any, shape: tuple = ()) -> str:
        return self.ctx.literal(a, shape) if type(a) is Literal else names[a]

    def equations(self, eqns: Sequence[JaxprEqn], names: dict, indent: str) -> None:
        """Append a line per equation (an ``if`` block per ``cond``), naming its results."""
        for eqn in eqns:
            if eqn.primitive is cond_p:
                self.cond(eqn, names, indent)
                continue
            low = lowering_for(eqn, self.ctx.xp)
            out_aval = eqn.outvars[0].aval if eqn.outvars else None
            small = low.elementwise and out_aval is not None and \
                0 < out_aval.size <= PREBROADCAST_MAX
            args = [self.atom(names, a, out_aval.shape if small else ()) for a in eqn.invars]
            stores = [self.stores.pop(v, None) for v in eqn.outvars]
            into = None
            if not eqn.primitive.multiple_results and low.out in ("any", "separate") \
                    and out_aval.ndim:
                into, stores[0] = stores[0], None
            expr = low.rule(self.ctx, eqn, args, into)
            outs = [names.setdefault(v, self.fresh()) for v in eqn.outvars]
            if not eqn.primitive.multiple_results:
                self.lines.append(f"{indent}{outs[0]} = {expr}")
            elif outs:
                self.lines.append(f"{indent}{', '.join(outs)}, = {expr}")
            else:
                self.lines.append(f"{indent}{expr}")
            if into is not None:
                self.views.add(eqn.outvars[0])
            self.lines += [f"{indent}{s} = {o}" for s, o in zip(stores, outs) if s is not None]

    def cond(self, eqn: JaxprEqn, names: dict, indent: str) -> None:
        """``cond`` as an ``if``/``elif``/``else`` on its index (clamped, as the impl does),
        each branch's equations inlined. A branch's equation computing a result writes it
        under the ``cond``'s name for that result (and into its store); other results
        (operands, constants, literals, a value returned twice) are assigned to it."""
        index, *ops = (self.atom(names, a) for a in eqn.invars)
        outs = [names.setdefault(v, self.fresh()) for v in eqn.outvars]
        stores = [self.stores.pop(v, None) for v in eqn.outvars]
        branches = eqn.params["branches"]
        for k, branch in enumerate(branches):
            if k == len(branches) - 1:
                head = "else:" if k else "if True:"
            else:
                head = f"{'if' if k == 0 else 'elif'} {index} {'<=' if k == 0 else '=='} {k}:"
            self.lines.append(f"{indent}{head}")
            closed = passes.optimize(branch)
            inner = dict(zip(closed.jaxpr.invars, ops))
            for v, c in zip(closed.jaxpr.constvars, closed.consts):
                inner[v] = self.ctx.array(c)
            made = {v for e in closed.jaxpr.eqns for v in e.outvars}
            assigned = []
            for out, res, store in zip(outs, closed.jaxpr.outvars, stores):
                if type(res) is Var and res in made and res not in inner:
                    inner[res] = out
                    if store is not None:
                        self.stores[res] = store
                else:
                    assigned.append((out, res, store))
            start = len(self.lines)
            self.equations(closed.jaxpr.eqns, inner, indent + "    ")
            self.assign([o for o, _, _ in assigned], [self.atom(inner, r) for _, r, _ in assigned],
                        indent + "    ")
            self.lines += [f"{indent}    {s} = {o}" for o, _, s in assigned if s is not None]
            if len(self.lines) == start:
                self.lines.append(f"{indent}    pass")
            self.views.update(v for v, res in zip(eqn.outvars, closed.jaxpr.outvars)
                              if type(res) is Var and res in self.views)

    def assign(self, targets: Sequence[str], values: Sequence[str], indent: str) -> None:
        """``targets = values`` as one statement (all values read before any is written)."""
        if targets:
            self.lines.append(f"{indent}{', '.join(targets)} = {', '.join(values)}")


def _depends(eqns: Sequence[JaxprEqn], roots: set) -> list[bool]:
    """Which of ``eqns`` read, directly or through earlier equations, a variable in ``roots``."""
    tainted, flags = set(roots), []
    for eqn in eqns:
        hit = any(type(a) is Var and a in tainted for a in eqn.invars)
        if hit:
            tainted.update(eqn.outvars)
        flags.append(hit)
    return flags


def _needed(eqns: Sequence[JaxprEqn], outvars: Sequence[Any]) -> list[bool]:
    """Which of ``eqns`` the values ``outvars`` need."""
    live = {a for a in outvars if type(a) is Var}
    flags = [False] * len(eqns)
    for i in range(len(eqns) - 1, -1, -1):
        if any(v in live for v in eqns[i].outvars):
            flags[i] = True
            live.update(a for a in eqns[i].invars if type(a) is Var)
    return flags


def _used(eqns: Sequence[JaxprEqn], outvars: Sequence[Any]) -> list[Var]:
    """The variables ``eqns`` and ``outvars`` read, each once, in order."""
    seen: dict[Var, None] = {}
    for a in [a for e in eqns for a in e.invars] + list(outvars):
        if type(a) is Var:
            seen.setdefault(a)
    return list(seen)


def _stacked_bytes(vs: Sequence[Var], length: int) -> int:
    return sum(length * v.aval.size * v.aval.dtype.itemsize for v in vs)


class _Parts:
    """A scan body's equations split into prologue, loop and epilogue.

    ``pre_outs`` are the prologue's values the other parts read; ``stacked`` the loop's
    values stored at every step: the epilogue's inputs from the loop, or the ``ys``
    themselves when there is no epilogue."""

    def __init__(self, j: Jaxpr, carry_in: Sequence[Var], carry_out: Sequence[Any],
                 ys_out: Sequence[Any], split_pre: bool, split_post: bool) -> None:
        eqns = list(j.eqns)
        on_carry = _depends(eqns, set(carry_in))
        self.pre = [e for e, d in zip(eqns, on_carry) if split_pre and not d]
        rest = [e for e, d in zip(eqns, on_carry) if not split_pre or d]
        for_carry = _needed(rest, carry_out)
        self.loop = [e for e, n in zip(rest, for_carry) if n or not split_post]
        self.post = [e for e, n in zip(rest, for_carry) if split_post and not n]
        loop_made = {v for e in self.loop for v in e.outvars} | set(carry_in)
        self.stacked = ([v for v in _used(self.post, ys_out) if v in loop_made] if self.post
                        else list(ys_out))
        pre_made = {v for e in self.pre for v in e.outvars}
        self.pre_outs = [v for v in _used(self.loop + self.post,
                                          [*carry_out, *self.stacked, *ys_out])
                         if v in pre_made]


class _ScanLoop:
    """The body of one ``scan`` equation split into prologue, loop and epilogue (see the
    module docstring), and the generated function that runs them."""

    def __init__(self, ctx: Any, eqn: JaxprEqn) -> None:
        p = eqn.params
        body = passes.optimize(p["jaxpr"])
        j, length = body.jaxpr, p["length"]
        nc, nk = p["num_consts"], p["num_carry"]
        consts_in, carry_in, xs_in = j.invars[:nc], j.invars[nc:nc + nk], j.invars[nc + nk:]
        carry_out, ys_out = j.outvars[:nk], j.outvars[nk:]
        # A primitive batched as a loop (a sequential ``pure_callback``) would come back from
        # the prologue or epilogue as a ``scan`` of the same equation: such bodies stay whole.
        split = not jaxpr_has_effects(j) and not any(
            compiler_traits(e.primitive).batched_as_loop for e in j.eqns)
        for split_pre, split_post in ((split, split), (split, False), (False, split),
                                      (False, False)):
            parts = _Parts(j, carry_in, carry_out, ys_out, split_pre, split_post)
            if (not parts.pre or _stacked_bytes(parts.pre_outs, length) <= SPLIT_MAX_BYTES) \
                    and (not parts.post or _stacked_bytes(parts.stacked, length)
                         <= SPLIT_MAX_BYTES):
                break
        self.ctx, self.body, self.length = ctx, body, length
        self.fn = self._generate(p["reverse"], consts_in, carry_in, xs_in, carry_out, ys_out,
                                 parts)

    def _compile(self, ins: Sequence[Var], outs: Sequence[Any], eqns: Sequence[JaxprEqn],
                 batched: Sequence[bool] | None, name: str) -> tuple[str, list[bool]]:
        """The name of a compiled function running ``eqns`` from ``ins`` to ``outs`` (batched
        over the steps at the inputs flagged ``batched``, when given), and which of its
        outputs are batched."""
        closed = ClosedJaxpr(Jaxpr(self.body.jaxpr.constvars, list(ins), list(outs),
                                   list(eqns)), self.body.consts)
        out_batched = [False] * len(outs)
        if batched is not None:
            closed, out_batched = batching.batch_jaxpr(closed, self.length, batched,
                                                       name == "scan_epilogue")
        fn = compile_jaxpr(closed, xp=self.ctx.xp, name=name).fn
        return self.ctx.const(fn, name), out_batched

    def _generate(self, reverse: bool, consts_in: Sequence[Var], carry_in: Sequence[Var],
                  xs_in: Sequence[Var], carry_out: Sequence[Any], ys_out: Sequence[Any],
                  parts: _Parts) -> Callable:
        ctx, n = self.ctx, self.length
        gen = _Lines(ctx)
        names: dict[Var, str] = {}
        for v, c in zip(self.body.jaxpr.constvars, self.body.consts):
            names[v] = ctx.array(c)
        params = [names.setdefault(v, gen.fresh()) for v in [*consts_in, *carry_in, *xs_in]]
        per_step = {v: names[v] for v in xs_in}  # stacked value -> its name
        if parts.pre:
            run, out_batched = self._compile(
                [*consts_in, *xs_in], parts.pre_outs, parts.pre,
                [False] * len(consts_in) + [True] * len(xs_in), "scan_prologue")
            outs = [gen.fresh() for _ in parts.pre_outs]
            args = ", ".join(names[v] for v in [*consts_in, *xs_in])
            gen.lines.append(f"    {', '.join(outs)}, = {run}({args})")
            for v, o, b in zip(parts.pre_outs, outs, out_batched):
                names[v] = o
                if b:
                    per_step[v] = o
        empty = ctx.const(ctx.xp.empty, "empty")
        buffers = [gen.fresh() for _ in parts.stacked]
        for buf, v in zip(buffers, parts.stacked):
            dtype = ctx.const(v.aval.dtype, "dtype")
            gen.lines.append(f"    {buf} = {empty}({(n, *v.aval.shape)!r}, {dtype})")
        loop_outs = [*carry_out, *parts.stacked]
        made = {v for e in parts.loop for v in e.outvars} | set(self.body.jaxpr.constvars)
        loop_ins = [v for v in _used(parts.loop, loop_outs) if v not in made]
        inline = _inline(parts.loop)
        inner, steps = dict(names), []
        for v in loop_ins:
            if v in per_step:
                inner[v], source = gen.fresh(), per_step[v]
                if inline and _only_cond_index(v, parts.loop, loop_outs):
                    source = gen.fresh()  # Python ints: indexing and comparing them is cheap
                    gen.lines.append(f"    {source} = {per_step[v]}.tolist()")
                steps.append(f"        {inner[v]} = {source}[i]")
        gen.lines.append(f"    for i in range({n - 1}, -1, -1):" if reverse
                         else f"    for i in range({n}):")
        gen.lines += steps
        if inline:  # stacked values computed in the step are written into their rows
            produced = {v for e in parts.loop for v in e.outvars}
            gen.stores = {v: f"{buf}[i]" for buf, v in zip(buffers, parts.stacked)
                          if v in produced and sum(a is v for a in parts.stacked) == 1}
        stored = set(gen.stores)
        if inline:
            gen.equations(parts.loop, inner, "        ")
        else:
            run, _ = self._compile(loop_ins, loop_outs, parts.loop, None, "scan_body")
            results = [gen.fresh() for _ in loop_outs]
            args = ", ".join(gen.atom(inner, v) for v in loop_ins)
            gen.lines.append(f"        {', '.join(results)}, = {run}({args})")
            inner.update((o, r) for o, r in zip(loop_outs, results) if type(o) is Var)
        for buf, v in zip(buffers, parts.stacked):
            if v not in stored:
                gen.lines.append(f"        {buf}[i] = {gen.atom(inner, v)}")
        gen.assign([names[v] for v in carry_in], [gen.atom(inner, v) for v in carry_out],
                   "        ")
        for v_in, v_out in zip(carry_in, carry_out):  # a row of a stacked output: its own copy
            if v_out in gen.views:
                gen.lines.append(f"    {names[v_in]} = {names[v_in]}.copy()")
        finals = ", ".join(names[v] for v in carry_in)
        if parts.post:
            ins = [*consts_in, *parts.pre_outs, *xs_in, *parts.stacked]
            flags = ([False] * len(consts_in) + [v in per_step for v in parts.pre_outs]
                     + [True] * (len(xs_in) + len(parts.stacked)))
            run, _ = self._compile(ins, ys_out, parts.post, flags, "scan_epilogue")
            args = ", ".join([names[v] for v in ins[:-len(buffers) or None]] + buffers)
            gen.lines.append(f"    return [{finals}{', ' if finals else ''}*{run}({args})]")
        else:
            gen.lines.append(f"    return [{', '.join(filter(None, [finals, *buffers]))}]")
        source = (f"def jit_scan({', '.join(params)}):\n"
                  + "".join(f"{line}\n" for line in gen.lines))
        return compile_source(source, ctx.namespace, "scan")


def _inline(eqns: Sequence[JaxprEqn]) -> bool:
    """Whether ``eqns`` are small enough to be written into the loop (see ``INLINE_MAX_SIZE``),
    the equations of ``cond`` branches included."""
    for e in eqns:
        if any(v.aval.size > INLINE_MAX_SIZE for v in e.outvars):
            return False
        if e.primitive is cond_p and not all(_inline(b.jaxpr.eqns) for b in e.params["branches"]):
            return False
    return True


def _only_cond_index(v: Var, eqns: Sequence[JaxprEqn], outs: Sequence[Any]) -> bool:
    """Whether ``eqns`` and ``outs`` read ``v`` only as the index of a ``cond``."""
    return v not in outs and all(
        a is not v for e in eqns
        for a in (e.invars[1:] if e.primitive is cond_p else e.invars))


def _scan_lowering(ctx: Any, eqn: JaxprEqn, args: list[str], out: str | None) -> str:
    """``scan``: a call of the loop generated for this equation (see the module docstring)."""
    return f"{ctx.const(_ScanLoop(ctx, eqn).fn, 'scan')}({', '.join(args)})"


def_lowering(scan_p, _scan_lowering)

__all__ = ["INLINE_MAX_SIZE", "SPLIT_MAX_BYTES"]
