"""Rule coverage: every primitive fungrad defines has every rule it needs.

Walks the registry of primitives (``core.primitives()``) after importing every fungrad
module, and checks each primitive for an implementation, a shape/dtype rule, a JVP
(``ad.def_nondiff`` for zero tangents, or ``ad.def_no_jvp`` declaring why it has none), a
batching rule (or ``batching.def_no_batch`` declaring why not), and compiled code: a
specialised lowering or the generic call of its impl. Primitives with a transpose rule are
the linear ones: ``ad.deflinear``/``defbilinear``/``def_transpose`` declare them, and they
need a JVP and a batching rule like every other. A failure lists the missing rules by
primitive name.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import fungrad
from fungrad._core import core
from fungrad.compiler import lowering
from fungrad.compiler.parallel import parallel_p
from fungrad.errors import MissingRuleError
from fungrad.interpreters import ad, batching


def _all_primitives() -> list[core.Primitive]:
    for info in pkgutil.walk_packages(fungrad.__path__, "fungrad."):
        importlib.import_module(info.name)
    return core.primitives()


def _missing(prim: core.Primitive) -> list[str]:
    missing = []
    if prim.impl is None:
        missing.append("implementation" if prim.name in lowering.lowered_names()
                       else "implementation (and so compiled code)")
    if prim.abstract_eval is None:
        missing.append("shape/dtype rule")
    if not ad.has_jvp(prim) and ad.no_jvp_reason(prim) is None:
        missing.append("JVP (or ad.def_nondiff / ad.def_no_jvp)")
    if not batching.has_batch(prim) and batching.no_batch_reason(prim) is None:
        missing.append("batching rule (or batching.def_no_batch)")
    return missing


def test_every_primitive_has_every_rule():
    prims = _all_primitives()
    assert len(prims) > 100, "the registry of primitives looks empty"
    report = {p.name: m for p in prims if (m := _missing(p))}
    assert not report, "primitives missing rules:\n" + "\n".join(
        f"  {name}: {', '.join(m)}" for name, m in sorted(report.items()))


def test_linear_primitives_are_differentiable_and_batchable():
    linear = [p for p in _all_primitives() if ad.has_transpose(p)]
    assert {"add", "mul", "dot_general", "reduce_sum", "transpose"} <= {p.name for p in linear}
    bad = sorted(p.name for p in linear if not (ad.has_jvp(p) and batching.has_batch(p)))
    assert not bad, f"linear primitives without a JVP or batching rule: {bad}"


def test_declarations_only_where_no_rule():
    """A declared exception is not also given the rule (one of the two is stale)."""
    prims = _all_primitives()
    both = sorted(p.name for p in prims if ad.has_jvp(p) and ad.no_jvp_reason(p) is not None)
    both += sorted(p.name for p in prims
                   if batching.has_batch(p) and batching.no_batch_reason(p) is not None)
    assert not both, f"primitives with both a rule and a declaration that they have none: {both}"


def test_lowerings_name_existing_primitives():
    names = {p.name for p in _all_primitives()}
    stale = sorted(lowering.lowered_names() - names)
    assert not stale, f"lowerings registered for primitives that do not exist: {stale}"


def test_a_declared_exception_names_its_reason():
    def f(x):
        return parallel_p.bind(x, runner=None, n_out=1)[0]
    x = np.ones(3, np.float32)
    with pytest.raises(MissingRuleError, match="parallel.*batching.*only inside compiled"):
        fungrad.vmap(f)(x)
    with pytest.raises(MissingRuleError, match="parallel.*JVP.*only inside compiled"):
        fungrad.jvp(f, (x,), (x,))
