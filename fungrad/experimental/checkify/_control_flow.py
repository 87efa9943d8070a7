"""``checkify``'s rules for the primitives carrying jaxprs: ``cond``, ``scan`` and ``while``
carry the error through their bodies, ``jit`` stays a call of a checkified body, and
``remat`` and the custom-derivative calls run inline when their body may fail."""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

from fungrad import lax
from fungrad._core import core
from fungrad._core.core import ClosedJaxpr, JaxprEqn, Primitive, Tracer
from fungrad.interpreters import partial_eval as pe
from fungrad.transforms.checkpoint import remat_p
from fungrad.transforms.custom_derivatives import custom_jvp_call_p, custom_vjp_call_p
from fungrad.transforms.jit_primitive import jit_p

from fungrad.experimental.checkify._error import Error
from fungrad.experimental.checkify._rules import _Checker, _def_rule, _effects


# -- primitives carrying jaxprs

def _split(vals: Sequence[Any], *sizes: int) -> list[list]:
    out, i = [], 0
    for n in sizes:
        out.append(list(vals[i:i + n]))
        i += n
    return out + [list(vals[i:])]


def _cond_rule(ck: _Checker, error: Error, index: Any, *ops: Any,
               branches: Sequence[ClosedJaxpr]) -> tuple[Error, list]:
    if not _effects_any(branches, ck.enabled):
        return error, lax.cond_p.bind(index, *ops, branches=branches)
    leaves, layout = error.tree_flatten()

    def branch(jaxpr: ClosedJaxpr) -> Callable:
        def run(err_leaves: list, args: list) -> tuple[list, list]:
            e, outs = ck.run(jaxpr, Error.tree_unflatten(layout, err_leaves), args)
            return e.tree_flatten()[0], outs
        return run
    leaves, outs = lax.switch(index, [branch(b) for b in branches], leaves, list(ops))
    return Error.tree_unflatten(layout, leaves), outs


def _scan_rule(ck: _Checker, error: Error, *vals: Any, jaxpr: ClosedJaxpr, num_consts: int,
               num_carry: int, length: int, reverse: bool, unroll: Any,
               **params: Any) -> tuple[Error, list]:
    if not _effects(jaxpr, ck.enabled):
        return error, lax.scan_p.bind(*vals, jaxpr=jaxpr, num_consts=num_consts,
                                      num_carry=num_carry, length=length, reverse=reverse,
                                      unroll=unroll, **params)
    consts, carry, xs = _split(vals, num_consts, num_carry)
    leaves, layout = error.tree_flatten()

    def body(c: tuple, x: list) -> tuple[tuple, list]:
        e, outs = ck.run(jaxpr, Error.tree_unflatten(layout, c[0]), [*consts, *c[1], *x])
        return (e.tree_flatten()[0], outs[:num_carry]), outs[num_carry:]
    (leaves, carry), ys = lax.scan(body, (leaves, carry), xs, length=length, reverse=reverse,
                                   unroll=unroll)
    return Error.tree_unflatten(layout, leaves), [*carry, *ys]


def _while_rule(ck: _Checker, error: Error, *vals: Any, cond_jaxpr: ClosedJaxpr,
                body_jaxpr: ClosedJaxpr, cond_nconsts: int, body_nconsts: int
                ) -> tuple[Error, list]:
    params = dict(cond_jaxpr=cond_jaxpr, body_jaxpr=body_jaxpr, cond_nconsts=cond_nconsts,
                  body_nconsts=body_nconsts)
    if not _effects_any([cond_jaxpr, body_jaxpr], ck.enabled):
        return error, lax.while_p.bind(*vals, **params)
    cconsts, bconsts, carry = _split(vals, cond_nconsts, body_nconsts)
    error, _ = ck.run(cond_jaxpr, error, [*cconsts, *carry])  # the first test of the loop
    leaves, layout = error.tree_flatten()

    def cond_fun(c: tuple) -> Any:
        return _Checker(frozenset()).run(cond_jaxpr, error, [*cconsts, *c[1]])[1][0]

    def body_fun(c: tuple) -> tuple:
        e, outs = ck.run(body_jaxpr, Error.tree_unflatten(layout, c[0]), [*bconsts, *c[1]])
        e, _ = ck.run(cond_jaxpr, e, [*cconsts, *outs])  # the test that follows the step
        return e.tree_flatten()[0], outs
    leaves, carry = lax.while_loop(cond_fun, body_fun, (leaves, carry))
    return Error.tree_unflatten(layout, leaves), carry


def _effects_any(jaxprs: Sequence[Any], enabled: frozenset) -> frozenset:
    return frozenset().union(*(_effects(j, enabled) for j in jaxprs))


_jit_cache: "weakref.WeakKeyDictionary[ClosedJaxpr, dict]" = weakref.WeakKeyDictionary()


def _jit_rule(ck: _Checker, error: Error, *args: Any, jaxpr: ClosedJaxpr,
              donated_invars: tuple, **params: Any) -> tuple[Error, list]:
    """A ``jit`` call stays one: its body is checkified once into a new jaxpr (cached on the
    body, so the compiled code is reused), taking and returning the error's leaves."""
    if not _effects(jaxpr, ck.enabled):
        return error, jit_p.bind(*args, jaxpr=jaxpr, donated_invars=donated_invars, **params)
    leaves, layout = error.tree_flatten()
    n = len(leaves)
    key = (ck.enabled, layout.effects)
    cached = _jit_cache.get(jaxpr, {}).get(key)
    if cached is None:
        inner = _Checker(ck.enabled)

        def flat(*vals: Any) -> list:
            e, outs = inner.run(jaxpr, Error.tree_unflatten(layout, vals[:n]), vals[n:])
            return [*e.tree_flatten()[0], *outs]
        in_avals = [core.get_aval(x) for x in leaves] + list(jaxpr.in_avals)
        body, consts, _ = pe.trace_to_jaxpr(flat, in_avals, params.get("name", "jit"))
        cached = (ClosedJaxpr(body, consts), inner.metadata)
        if not any(isinstance(c, Tracer) for c in consts):
            _jit_cache.setdefault(jaxpr, {})[key] = cached
    closed, metadata = cached
    ck.metadata.update(metadata)
    outs = jit_p.bind(*leaves, *args, jaxpr=closed,
                      donated_invars=(False,) * n + tuple(donated_invars), **params)
    return Error.tree_unflatten(layout, outs[:n]), outs[n:]


def _inline_rule(prim: Primitive, name: str) -> Callable:
    """Calls whose body may fail run inline through the interpreter (their custom derivative
    or rematerialisation is dropped there); the others are bound unchanged."""
    def rule(ck: _Checker, error: Error, *args: Any, **params: Any) -> tuple[Error, list]:
        if not _effects(params[name], ck.enabled):
            return error, prim.bind(*args, **params)
        return ck.run(params[name], error, args)
    return rule


def _sub_effects(*names: str) -> Callable:
    def effects(eqn: JaxprEqn, enabled: frozenset) -> frozenset:
        subs = [j for n in names for j in (eqn.params[n] if n == "branches"
                                            else [eqn.params[n]])]
        return _effects_any(subs, enabled)
    return effects


_def_rule([lax.cond_p], _cond_rule, _sub_effects("branches"))
_def_rule([lax.scan_p], _scan_rule, _sub_effects("jaxpr"))
_def_rule([lax.while_p], _while_rule, _sub_effects("cond_jaxpr", "body_jaxpr"))
_def_rule([jit_p], _jit_rule, _sub_effects("jaxpr"))
_def_rule([remat_p], _inline_rule(remat_p, "jaxpr"), _sub_effects("jaxpr"))
for _prim in (custom_jvp_call_p, custom_vjp_call_p):
    _def_rule([_prim], _inline_rule(_prim, "call_jaxpr"), _sub_effects("call_jaxpr"))
