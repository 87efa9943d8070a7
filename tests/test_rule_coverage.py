"""Rule coverage: every primitive fungrad defines has every rule it needs.

Walks the registry of primitives (``core.primitives()``) after importing every fungrad
module, and checks each primitive for an implementation, a shape/dtype rule, a JVP
(``ad.def_nondiff`` for zero tangents, or ``ad.def_no_jvp`` declaring why it has none), a
batching rule (or ``batching.def_no_batch`` declaring why not), and compiled code: the
lowerings it declares (``fungrad._core.lowering``) or, the declared fallback, the generic call
of its impl. Primitives with a transpose rule are the linear ones:
``ad.deflinear``/``defbilinear``/``def_transpose`` declare them, and they need a JVP and a
batching rule like every other. A failure lists the missing rules by primitive name.

The lowering declarations are checked too: each is well formed, and every elementwise one
(a NumPy ufunc called directly) gives the impl's results bit for bit on every dtype the
primitive accepts. So are the compiler traits (``def_compiler_traits``): declared for real
primitives, consistent with them, and each one changing what the passes do. So are the C
expressions of CUDA kernels (``def_cuda``, ``def_cuda_reducer``): each formats with its
primitive's operands, and the generator takes exactly the primitives that declare one
besides the few it writes itself.
"""
from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

import fungrad
from fungrad._core import core, lowering
from fungrad._core.core import JaxprEqn, ShapedArray, Var
from fungrad.compiler import cuda, passes, pipeline
from fungrad.compiler.lowering import DEFAULT, lowering_for
from fungrad.compiler.parallel import parallel_p
from fungrad.errors import MissingRuleError
from fungrad.interpreters import ad, batching
from fungrad.lax.dot import dot_general_p
from fungrad.transforms.checkpoint import checkpoint_name
from harness import package_modules


def _all_primitives() -> list[core.Primitive]:
    for name in package_modules():
        importlib.import_module(name)
    return core.primitives()


def _missing(prim: core.Primitive) -> list[str]:
    missing = []
    if prim.impl is None:
        missing.append("implementation" if lowering.lowerings(prim)
                       else "implementation (and so compiled code: no lowering is declared)")
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


def test_lowering_declarations_are_well_formed():
    prims = _all_primitives()
    lowered = lowering.lowered_primitives()
    assert {"add", "dot_general", "select_n", "cond", "fused_blocks"} <= {p.name for p in lowered}
    unknown = sorted(p.name for p in lowered if p not in prims)
    assert not unknown, f"lowerings declared for unregistered primitives: {unknown}"
    bad = []
    for prim in lowered:
        for low in lowering.lowerings(prim):
            if low.out not in (None, "any", "separate") and not isinstance(low.out, int):
                bad.append(f"{prim.name}: out={low.out!r}")
            if low.out is not None and not low.fresh:  # the memory plan writes only fresh buffers
                bad.append(f"{prim.name}: out={low.out!r} without fresh=True")
            if (low.numexpr is not None or low.elementwise) and prim.multiple_results:
                bad.append(f"{prim.name}: elementwise with several results")
        if lowering.lowerings(prim)[-1].when is not None and prim.impl is None:
            bad.append(f"{prim.name}: guarded lowerings and no impl to fall back on")
    assert not bad, "malformed lowering declarations:\n  " + "\n  ".join(bad)


_DTYPES = [np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.int32, np.uint8,
                                 np.int8, np.bool_)]


def _sample(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Values covering signs, zero and fractions (integers small enough not to overflow)."""
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0 if dtype.kind == "u" else -4, 5, shape).astype(dtype)
    x = rng.standard_normal(shape) * 2
    x[..., 0] = 0
    if dtype.kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _operand_count(prim: core.Primitive) -> int | None:
    """The number of operands of a parameter-free impl ``(xp, x, ...)``, else None."""
    params = list(inspect.signature(prim.impl).parameters.values())[1:]
    plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
    return len(params) if plain and params else None


def _accepted_avals(prim: core.Primitive) -> list[tuple[ShapedArray, ...]]:
    """Operand types the shape rule accepts (two operands also broadcasting), per dtype."""
    n = _operand_count(prim)
    shapes = [((3, 4),) * n] + ([((3, 4), (4,))] if n == 2 else []) if n else []
    found = []
    for dtype in _DTYPES:
        for s in shapes:
            avals = tuple(ShapedArray(shape, dtype) for shape in s)
            try:
                prim.abstract_eval(*avals)
            except TypeError:
                continue
            found.append(avals)
    return found


def test_elementwise_lowerings_compute_the_impl_bit_for_bit():
    """Every parameter-free primitive with an elementwise (ufunc) lowering, on every dtype
    it accepts: the compiled equation returns what the impl returns, dtype and bits. (Those
    with params, ``integer_pow``, ``convert_element_type``, ``select_n``, are covered by the
    compiler's random programs.)"""
    rng = np.random.default_rng(0)
    prims = [p for p in lowering.lowered_primitives()
             if _operand_count(p) and any(low.elementwise for low in lowering.lowerings(p))]
    checked, differ, never_used = set(), [], []
    for prim in prims:
        used = False
        for avals in _accepted_avals(prim):
            xs = [_sample(rng, a.shape, a.dtype) for a in avals]
            closed = fungrad.make_jaxpr(prim.bind)(*xs)
            (eqn,) = closed.jaxpr.eqns
            if lowering_for(eqn) is DEFAULT:
                continue
            used = True
            exe = pipeline.compile_jaxpr(closed, optimize=False, fuse=False)
            with np.errstate(all="ignore"):
                want = np.asarray(prim.impl(np, *xs))
                (got,) = exe(*xs)
            checked.add(prim.name)
            if got.dtype != want.dtype or not np.array_equal(got.view(np.uint8),
                                                              want.view(np.uint8)):
                differ.append(f"{prim.name}{[a.str_short() for a in avals]}")
        if not used:
            never_used.append(prim.name)
    assert {"add", "sub", "mul", "div", "exp", "tanh", "eq", "and", "abs", "square"} <= checked
    assert not differ, f"compiled elementwise lowerings differ from the impl: {differ}"
    assert not never_used, f"elementwise lowerings no equation ever uses: {never_used}"


def test_a_declared_exception_names_its_reason():
    def f(x):
        return parallel_p.bind(x, runner=None, n_out=1)[0]
    x = np.ones(3, np.float32)
    with pytest.raises(MissingRuleError, match="parallel.*batching.*only inside compiled"):
        fungrad.vmap(f)(x)
    with pytest.raises(MissingRuleError, match="parallel.*JVP.*only inside compiled"):
        fungrad.jvp(f, (x,), (x,))


def _having(trait: str) -> set[str]:
    return {p.name for p in lowering.primitives_with_traits()
            if getattr(lowering.compiler_traits(p), trait)}


def test_compiler_trait_declarations_are_well_formed():
    prims = _all_primitives()
    declared = lowering.primitives_with_traits()
    unknown = sorted(p.name for p in declared if p not in prims)
    assert not unknown, f"compiler traits declared for unregistered primitives: {unknown}"
    bad = [f"{p.name}: inline, but a call returns a list of results" for p in declared
           if lowering.compiler_traits(p).inline and not p.multiple_results]
    bad += [f"{p.name}: identity with several results" for p in declared
            if lowering.compiler_traits(p).identity and p.multiple_results]
    assert not bad, "malformed compiler traits:\n  " + "\n  ".join(bad)
    assert {"jit", "custom_jvp_call", "custom_vjp_call", "checkpoint"} <= _having("inline")
    assert {"stop_gradient", "name"} <= _having("identity")
    assert {"optimization_barrier"} <= _having("opaque")
    assert {"dot_general", "conv_general_dilated"} <= _having("threaded")
    assert {"pure_callback"} <= _having("batched_as_loop")
    with pytest.raises(ValueError, match="dot_general's traits are already declared"):
        lowering.def_compiler_traits(dot_general_p, threaded=True)


def test_compiler_traits_reach_the_passes():
    """Calls with ``inline`` are spliced in, ``identity`` primitives dropped, ``opaque`` ones
    kept as written (two barriers of one value are not merged into one)."""
    @fungrad.custom_jvp
    def double(x):
        return x * 2.0
    double.defjvp(lambda primals, tangents: (double(*primals), tangents[0] * 2.0))

    def f(x):
        y = fungrad.jit(lambda x: fungrad.numpy.sin(x))(x)
        y = fungrad.checkpoint(fungrad.numpy.cos, prevent_cse=False)(double(y))
        y = fungrad.lax.stop_gradient(y) + checkpoint_name(y, "y")
        (a,), (b,) = (fungrad.lax.optimization_barrier((y,)) for _ in range(2))
        return a * b
    closed = passes.optimize(fungrad.make_jaxpr(f)(np.ones(3, np.float32)))
    names = [e.primitive.name for e in closed.jaxpr.eqns]
    assert not {"jit", "custom_jvp_call", "checkpoint", "stop_gradient", "name"} & set(names)
    assert names == ["sin", "mul", "cos", "add", "optimization_barrier",
                     "optimization_barrier", "mul"], names


# what the CUDA generator writes itself (indexing and typing), with no declared C expression
CUDA_STRUCTURAL = {"convert_element_type", "broadcast_in_dim", "integer_pow", "select_n", "round",
                   "reshape", "squeeze"}


def _one_expression(text: str) -> bool:
    """Whether C ``text`` is one parenthesised group or call, so it nests as an operand."""
    depth, opened = 0, None
    for i, c in enumerate(text):
        if c == "(":
            opened = i if depth == 0 else opened
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0 or (depth == 0 and i < len(text) - 1):
                return False
    return depth == 0 and opened is not None and (opened == 0 or text[:opened].isidentifier())


def _arity(prim: core.Primitive) -> int | None:
    """The operand count of an elementwise primitive: its impl's positional parameters, or
    for a variadic impl (``lax.special``'s wrapper) the one count of float operands it runs
    on."""
    params = list(inspect.signature(prim.impl).parameters.values())[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        runs = []
        for n in (1, 2, 3):
            try:
                with np.errstate(all="ignore"):
                    prim.impl(np, *[np.ones(3)] * n)
                runs.append(n)
            except TypeError:
                pass
        return runs[0] if len(runs) == 1 else None
    return sum(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params)


def test_cuda_declarations_are_well_formed():
    """Each template, for every kind, formats with its primitive's operands, uses them all
    and is one expression; the reducers are the three the row kernels know."""
    prims = _all_primitives()
    declared = lowering.primitives_with_cuda()
    names = {p.name for p in declared}
    assert {"add", "add_any", "max", "pow", "not", "shift_left", "erf"} <= names
    unknown = sorted(p.name for p in declared if p not in prims)
    assert not unknown, f"CUDA expressions declared for unregistered primitives: {unknown}"
    bad = []
    for prim in declared:
        n = _arity(prim) if prim.impl is not None else None
        if not n or prim.multiple_results:
            bad.append(f"{prim.name}: not a parameter-free elementwise primitive")
            continue
        args = [f"x{k}" for k in range(n)]
        for kind in lowering.CUDA_KINDS:
            template = lowering.cuda_expr(prim).for_kind(kind)
            try:
                text = template.format(*args, t="float")
            except (IndexError, KeyError, ValueError) as e:
                bad.append(f"{prim.name}[{kind}]: {template!r} does not format with {n} "
                           f"operands ({type(e).__name__}: {e})")
                continue
            if any(a not in text for a in args) or not _one_expression(text):
                bad.append(f"{prim.name}[{kind}]: {template!r} drops an operand or is not "
                           "one parenthesised expression")
    assert not bad, "malformed CUDA expressions:\n  " + "\n  ".join(bad)
    reducers = {p.name: lowering.cuda_reducer(p) for p in prims if lowering.cuda_reducer(p)}
    assert set(reducers) == {"reduce_sum", "reduce_max", "reduce_min"}, reducers
    assert all(r.combine.isidentifier() for r in reducers.values()), reducers
    add = next(p for p in declared if p.name == "add")
    with pytest.raises(ValueError, match="add's CUDA expression is already declared"):
        lowering.def_cuda(add, "({} + {})")


def test_cuda_generator_takes_exactly_the_declared_primitives():
    """``cuda.fusible`` on a float32 equation of each primitive: it takes those that declare
    a C expression and its own structural ones, no primitive it names anywhere else."""
    def eqn(prim):
        f32 = ShapedArray((3, 4), np.dtype(np.float32))
        return JaxprEqn(prim, [Var(f32), Var(f32)], [Var(f32)], {})
    taken = {p.name for p in _all_primitives() if cuda.fusible(eqn(p))}
    declared = {p.name for p in lowering.primitives_with_cuda()}
    assert taken - CUDA_STRUCTURAL == declared, (taken - CUDA_STRUCTURAL) ^ declared
