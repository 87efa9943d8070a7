"""Optimisation passes over closed jaxprs.

Each pass maps a ``ClosedJaxpr`` to a new one computing the same outputs from
the same inputs; none mutates its argument. ``optimize`` runs the pipeline:

* ``inline_calls``: splice the bodies of call primitives (``jit``, custom-derivative
  calls, ``checkpoint`` without ``prevent_cse``: those declaring an ``inline`` trait,
  ``fungrad._core.lowering.def_compiler_traits``) into the caller,
* ``simplify``: algebraic identities (``x*1``, ``x+0``, ``neg(neg x)``,
  transpose/reshape/broadcast chains, conversions to the same dtype, a transposed
  matmul computed with its operands swapped, ``x**3`` as ``x * x**2`` sharing the square,
  a sum of zero-padded pieces as their concatenation, a product with a converted
  boolean mask as a select, as XLA computes it, ...),
* ``fold_constants``: evaluate equations whose inputs are all known when the
  results are small,
* ``cse``: common-subexpression elimination (equations are keyed by primitive,
  inputs and params, which are hashable by convention),
* ``dce``: dead-code elimination that keeps effectful equations (debug callbacks),
  also inside sub-jaxprs.

What a pass may do with a primitive is declared with the primitive (its compiler traits:
``inline``, ``identity``, ``opaque``); the algebraic identities of ``simplify`` are the
compiler's own, a table keyed by the primitives they rewrite.

Weak types play no role at run time (buffers carry none), so a rewrite only has
to preserve shapes and dtypes; the executable takes its output weak types from
the original jaxpr.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fungrad._core.array import Array
from fungrad._core.core import (ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Primitive, ShapedArray,
                                Tracer, Var)
from fungrad._core.lowering import compiler_traits
from fungrad._core.structural import broadcast_in_dim_p, reduce_sum_p, reshape_p, transpose_p
from fungrad.interpreters.ad import add_any_p
from fungrad.interpreters.partial_eval import eqn_has_effects, sub_jaxprs
from fungrad.lax.dot import dot_general_p
from fungrad.lax.elementwise import (MASK_SELECT_DTYPES, add_p, div_p, integer_pow_p, mul_p,
                                     neg_p, select_n_p, sub_p)
from fungrad.lax.shapes import convert_element_type_p, rev_p, squeeze_p
from fungrad.lax.slicing import concatenate_p, pad_p

# Results of constant folding larger than this many elements stay computed at run time.
FOLD_MAX_SIZE = 256

# --------------------------------------------------------------------------- rewriting

def _same_type(a: ShapedArray, b: ShapedArray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


class _Rewriter:
    """Builds a new jaxpr equation by equation, substituting replaced variables."""

    def __init__(self, closed: ClosedJaxpr) -> None:
        self.src = closed.jaxpr
        self.env: dict[Var, Any] = {}
        self.eqns: list[JaxprEqn] = []
        self.constvars = list(closed.jaxpr.constvars)
        self.consts = list(closed.consts)
        self.const_of: dict[Var, Any] = dict(zip(self.constvars, self.consts))
        self._const_ids = {id(c): v for v, c in zip(self.constvars, self.consts)}
        self.producer: dict[Var, JaxprEqn] = {}
        self.uses: dict[Var, int] = {}  # reads of each variable in the source jaxpr
        for eqn in self.src.eqns:
            for a in eqn.invars:
                if type(a) is Var:
                    self.uses[a] = self.uses.get(a, 0) + 1
        for a in self.src.outvars:
            if type(a) is Var:
                self.uses[a] = self.uses.get(a, 0) + 1

    def read(self, a: Any) -> Any:
        return self.env.get(a, a) if type(a) is Var else a

    def read_all(self, atoms: Sequence[Any]) -> list:
        return [self.env.get(a, a) if type(a) is Var else a for a in atoms]

    def emit(self, eqn: JaxprEqn, invars: list | None = None) -> JaxprEqn:
        new = JaxprEqn(eqn.primitive, self.read_all(eqn.invars) if invars is None else invars,
                       eqn.outvars, eqn.params)
        self.eqns.append(new)
        for v in new.outvars:
            self.producer[v] = new
        return new

    def replace(self, var: Var, atom: Any) -> None:
        self.env[var] = atom

    def add_const(self, value: Any, aval: ShapedArray) -> Var:
        var = self._const_ids.get(id(value))
        if var is None:
            var = self._const_ids[id(value)] = Var(aval)
            self.constvars.append(var)
            self.consts.append(value)
            self.const_of[var] = value
        return var

    def finish(self) -> ClosedJaxpr:
        outvars = self.read_all(self.src.outvars)
        return ClosedJaxpr(Jaxpr(self.constvars, list(self.src.invars), outvars, self.eqns),
                           self.consts)


# --------------------------------------------------------------------------- inlining

def inline_calls(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Splice the bodies of call primitives with an ``inline`` trait (nested ``jit``) into
    ``closed``."""
    if not any(compiler_traits(e.primitive).inline for e in closed.jaxpr.eqns):
        return closed
    rw = _Rewriter(closed)
    for eqn in closed.jaxpr.eqns:
        rule = compiler_traits(eqn.primitive).inline
        body = rule(eqn.params) if rule is not None else None
        if body is None:
            rw.emit(eqn)
            continue
        inner = inline_calls(body)
        ij = inner.jaxpr
        env: dict[Var, Any] = dict(zip(ij.invars, rw.read_all(eqn.invars)))
        for v, c in zip(ij.constvars, inner.consts):
            env[v] = rw.add_const(c, v.aval)
        for ie in ij.eqns:  # fresh variables: the same body may be inlined twice
            ins = [env.get(a, a) if type(a) is Var else a for a in ie.invars]
            outs = [Var(v.aval) for v in ie.outvars]
            env.update(zip(ie.outvars, outs))
            rw.emit(JaxprEqn(ie.primitive, ins, outs, ie.params), ins)
        for o, io in zip(eqn.outvars, ij.outvars):
            rw.replace(o, env.get(io, io) if type(io) is Var else io)
    return rw.finish()


# --------------------------------------------------------------------------- dead code

def dce(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Drop equations whose results are unused (unless effectful) and unused constants."""
    j = closed.jaxpr
    live = {v for v in j.outvars if type(v) is Var}
    kept = []
    for eqn in reversed(j.eqns):
        if any(v in live for v in eqn.outvars) or eqn_has_effects(eqn):
            kept.append(eqn)
            live.update(v for v in eqn.invars if type(v) is Var)
    pairs = [(v, c) for v, c in zip(j.constvars, closed.consts) if v in live]
    return ClosedJaxpr(Jaxpr([v for v, _ in pairs], j.invars, j.outvars, kept[::-1]),
                       [c for _, c in pairs])


# --------------------------------------------------------------------------- CSE

def _atom_key(a: Any) -> Any:
    if type(a) is Var:
        return a
    val = a.val._value if type(a.val) is Array else a.val
    return ("literal", a.aval.dtype, np.asarray(val, a.aval.dtype).tobytes())


def _eqn_key(eqn: JaxprEqn, invars: list) -> Any:
    """A hashable key identifying the computation, or None when params are unhashable."""
    key = (eqn.primitive, tuple(_atom_key(a) for a in invars), tuple(sorted(eqn.params.items())))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def cse(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Reuse the result of an identical earlier equation instead of recomputing it."""
    rw = _Rewriter(closed)
    seen: dict[Any, JaxprEqn] = {}
    for eqn in closed.jaxpr.eqns:
        invars = rw.read_all(eqn.invars)
        key = (None if not eqn.outvars or compiler_traits(eqn.primitive).opaque
               or eqn_has_effects(eqn)
               else _eqn_key(eqn, invars))
        prev = seen.get(key) if key is not None else None
        if prev is None:
            new = rw.emit(eqn, invars)
            if key is not None:
                seen[key] = new
        else:
            for o, p in zip(eqn.outvars, prev.outvars):
                rw.replace(o, p)
    return rw.finish()


# --------------------------------------------------------------------------- constant folding

def _concrete(value: Any) -> Any:
    """The host value of a constant, or None when it is not concrete (a tracer)."""
    if type(value) is Array:
        return value._value if isinstance(value._value, (np.ndarray, np.generic)) else None
    if isinstance(value, (np.ndarray, np.generic, bool, int, float, complex)):
        return value
    return None


def fold_constants(closed: ClosedJaxpr, max_size: int = FOLD_MAX_SIZE) -> ClosedJaxpr:
    """Evaluate at compile time the equations whose inputs are literals or constants.

    Only results of at most ``max_size`` elements are folded (a scalar becomes a
    literal, anything else a new constant), so large constants are never created.
    """
    rw = _Rewriter(closed)
    known: dict[Var, Any] = {}
    for v, c in zip(closed.jaxpr.constvars, closed.consts):
        val = _concrete(c)
        if val is not None:
            known[v] = val
    for eqn in closed.jaxpr.eqns:
        invars = rw.read_all(eqn.invars)
        outs = _try_fold(eqn, invars, known, max_size)
        if outs is None:
            rw.emit(eqn, invars)
            continue
        for o, val in zip(eqn.outvars, outs):
            if o.aval.shape == ():
                rw.replace(o, Literal(Array(val, o.aval.weak_type), o.aval))
            else:
                var = rw.add_const(Array(val, o.aval.weak_type), o.aval)
                known[var] = val
                rw.replace(o, var)
    return rw.finish()


def _try_fold(eqn: JaxprEqn, invars: list, known: dict, max_size: int) -> list | None:
    prim = eqn.primitive
    if (prim.impl is None or not eqn.outvars or compiler_traits(prim).opaque
            or any(o.aval.size > max_size for o in eqn.outvars)):
        return None
    if eqn_has_effects(eqn) or next(sub_jaxprs(eqn.params), None) is not None:
        return None
    vals = []
    for a in invars:
        if type(a) is Literal:
            raw = a.val._value if type(a.val) is Array else a.val
            vals.append(np.asarray(raw, a.aval.dtype))
        elif a in known:
            vals.append(known[a])
        else:
            return None
    try:
        with np.errstate(all="ignore"):
            out = prim.impl(np, *vals, **eqn.params)
    except Exception:  # leave it to run time, where the error (if any) surfaces
        return None
    outs = out if prim.multiple_results else [out]
    return [np.asarray(v, o.aval.dtype) for v, o in zip(outs, eqn.outvars)]


# --------------------------------------------------------------------------- simplification

def _literal_value(a: Any) -> Any:
    if type(a) is not Literal:
        return None
    return np.asarray(a.val._value if type(a.val) is Array else a.val)


def _is_scalar_const(rw: _Rewriter, a: Any, value: float) -> bool:
    """``a`` is a literal equal to ``value``, possibly broadcast (``full`` of it)."""
    lit = _literal_value(a)
    if lit is not None:
        return bool(lit == value)
    eqn = rw.producer.get(a) if type(a) is Var else None
    if eqn is not None and eqn.primitive is broadcast_in_dim_p:
        return _is_scalar_const(rw, eqn.invars[0], value)
    if type(a) is Var and a in rw.const_of:
        c = _concrete(rw.const_of[a])
        return c is not None and np.size(c) <= FOLD_MAX_SIZE and \
            bool(np.all(np.asarray(c) == value))
    return False


def _identity_operand(value: float, commutes: bool):
    """``op(x, c) -> x`` (and ``op(c, x) -> x`` when ``commutes``) for the constant ``value``."""
    def rule(rw, eqn, invars):
        x, y = invars
        if _is_scalar_const(rw, y, value):
            return x
        if commutes and _is_scalar_const(rw, x, value):
            return y
        return None
    return rule


def _producer(rw: _Rewriter, a: Any, prim: Primitive) -> JaxprEqn | None:
    eqn = rw.producer.get(a) if type(a) is Var else None
    return eqn if eqn is not None and eqn.primitive is prim else None


def _neg_rule(rw, eqn, invars):
    inner = _producer(rw, invars[0], neg_p)
    return inner.invars[0] if inner is not None else None


def _transpose_rule(rw, eqn, invars):
    perm = eqn.params["permutation"]
    if perm == tuple(range(len(perm))):
        return invars[0]
    dot = _producer(rw, invars[0], dot_general_p)
    if dot is not None and rw.uses.get(invars[0]) == 1:
        return _swapped_dot(dot, perm, eqn.outvars)
    inner = _producer(rw, invars[0], transpose_p)
    if inner is None:
        return None
    composed = tuple(inner.params["permutation"][p] for p in perm)
    if composed == tuple(range(len(composed))):
        return inner.invars[0]
    return JaxprEqn(eqn.primitive, [inner.invars[0]], eqn.outvars,
                    {**eqn.params, "permutation": composed})


def _swapped_dot(dot: JaxprEqn, perm: tuple, outvars: list) -> JaxprEqn | None:
    """``transpose(dot_general(a, b))`` that puts ``b``'s free axes before ``a``'s is
    ``dot_general(b, a)``: computed in the layout it is used in (weight gradients would
    otherwise be transposed views, slow to read for the update that follows)."""
    (lc, rc), (lb, rb) = dot.params["dimension_numbers"]
    lhs, rhs = (a.aval.ndim for a in dot.invars)
    nb, nl = len(lb), lhs - len(lc) - len(lb)
    nr = rhs - len(rc) - len(rb)
    swapped = (*range(nb), *range(nb + nl, nb + nl + nr), *range(nb, nb + nl))
    if perm != swapped or nl == 0 or nr == 0:
        return None
    params = dict(dot.params, dimension_numbers=((rc, lc), (rb, lb)))
    return JaxprEqn(dot.primitive, dot.invars[::-1], outvars, params)


def _product_dot_rule(rw, eqn, invars):
    """A ``dot_general`` without contracting dimensions is an elementwise product: ``mul``
    of its operands placed at their output axes (views, NumPy broadcasting fills the rest).

    The gradient of a linear map is such an outer product, and batching it over examples
    (``vmap(grad(f))``) gives one per example: as a matmul that is a batch of (1, 1) @ (1, n)
    products, several times slower than one broadcasting multiply (XLA's simplifier makes
    the same rewrite)."""
    (lc, _), (lb, rb) = eqn.params["dimension_numbers"]
    out = eqn.outvars[0].aval
    if lc or out.dtype.kind not in "iufc" or any(a.aval.dtype != out.dtype for a in invars):
        return None
    lhs, rhs = invars
    n_free_lhs = lhs.aval.ndim - len(lb)
    operands = [_at_output_axes(rw, lhs, lb, len(lb), out.ndim),
                _at_output_axes(rw, rhs, rb, len(lb) + n_free_lhs, out.ndim)]
    return JaxprEqn(mul_p, operands, eqn.outvars, {})


def _at_output_axes(rw: _Rewriter, a: Any, batch: tuple, first_free: int, ndim: int) -> Any:
    """``a``, a ``dot_general`` operand, transposed and reshaped so that each axis sits where
    it appears in the result (batch axes first, then each operand's free axes) with size-1
    axes elsewhere: ready to broadcast against the other operand."""
    if a.aval.ndim == 0:
        return a
    free = [d for d in range(a.aval.ndim) if d not in batch]
    where = [batch.index(d) if d in batch else first_free + free.index(d)
             for d in range(a.aval.ndim)]
    order = tuple(sorted(range(len(where)), key=where.__getitem__))
    if order != tuple(range(len(order))):
        shape = tuple(a.aval.shape[d] for d in order)
        a = rw.emit(JaxprEqn(transpose_p, [a], [Var(ShapedArray(shape, a.aval.dtype))],
                             {"permutation": order}), [a]).outvars[0]
    sizes = [1] * ndim
    for d, n in zip(sorted(where), a.aval.shape):
        sizes[d] = n
    new_sizes = tuple(sizes[sorted(where)[0]:])  # leading size-1 axes broadcast implicitly
    if new_sizes != a.aval.shape:
        a = rw.emit(JaxprEqn(reshape_p, [a], [Var(ShapedArray(new_sizes, a.aval.dtype))],
                             {"new_sizes": new_sizes}), [a]).outvars[0]
    return a


def _reshape_rule(rw, eqn, invars):
    inner = _producer(rw, invars[0], reshape_p)
    if inner is None:
        return invars[0]  # reshape to the same shape: the driver checks the shape
    return JaxprEqn(eqn.primitive, [inner.invars[0]], eqn.outvars, eqn.params)


def _broadcast_rule(rw, eqn, invars):
    dims = eqn.params["broadcast_dimensions"]
    if dims == tuple(range(len(dims))):
        return invars[0]  # same shape: identity (checked by the driver)
    inner = _producer(rw, invars[0], broadcast_in_dim_p)
    if inner is None:
        return None
    composed = tuple(dims[d] for d in inner.params["broadcast_dimensions"])
    return JaxprEqn(eqn.primitive, [inner.invars[0]], eqn.outvars,
                    {**eqn.params, "broadcast_dimensions": composed})


def _empty_param_rule(param: str):
    def rule(rw, eqn, invars):
        return invars[0] if not eqn.params.get(param) else None
    return rule


def _integer_pow_rule(rw, eqn, invars):
    """``x ** 1`` is ``x``; ``x ** 3`` and ``x ** 4`` become the products the impl forms,
    ``x * x**2`` and ``x**2 * x**2`` (the same bits), so that CSE shares the square with one
    computed elsewhere: GELU's ``x**3`` and its derivative's ``x**2`` take one pass less."""
    y, x = eqn.params["y"], invars[0]
    if y == 1:
        return x
    if y not in (3, 4):
        return None
    square = Var(eqn.outvars[0].aval)
    rw.emit(JaxprEqn(integer_pow_p, [x], [square], {"y": 2}), [x])
    return JaxprEqn(mul_p, [x, square] if y == 3 else [square, square], eqn.outvars, {})


def _zero_padded_pieces(rw: _Rewriter, a: Any) -> tuple[int, list] | None:
    """``a`` as pieces padded with (positive) zeros along one axis, ``(axis, [(offset,
    piece), ...])``: a ``pad`` of a single axis, or an ``add_any`` of such along one axis."""
    eqn = rw.producer.get(a) if type(a) is Var else None
    if eqn is None:
        return None
    if eqn.primitive is add_any_p:
        parts = [_zero_padded_pieces(rw, x) for x in eqn.invars]
        if parts[0] is None or parts[1] is None or parts[0][0] != parts[1][0]:
            return None
        return parts[0][0], parts[0][1] + parts[1][1]
    value = _literal_value(eqn.invars[1]) if eqn.primitive is pad_p else None
    if value is None or value != 0 or np.signbit(np.real(value)) or np.signbit(np.imag(value)):
        return None
    padded = [(d, lo, hi, interior) for d, (lo, hi, interior)
              in enumerate(eqn.params["padding_config"]) if (lo, hi, interior) != (0, 0, 0)]
    if len(padded) != 1 or padded[0][3] != 0 or min(padded[0][1:3]) < 0:
        return None
    return padded[0][0], [(padded[0][1], eqn.invars[0])]


def _add_any_rule(rw, eqn, invars):
    """``x + 0``, and zero-padded pieces that tile the result along one axis (the transpose
    of a ``split``, or of slices covering an array) summed: their ``concatenate``, one copy
    instead of a padded buffer and an addition per piece (a ``-0.0`` in a piece then stays
    ``-0.0``, as in JAX, whose ``split`` transposes to ``concatenate``)."""
    same = _add_identity(rw, eqn, invars)
    if same is not None:
        return same
    parts = [_zero_padded_pieces(rw, x) for x in invars]
    if parts[0] is None or parts[1] is None or parts[0][0] != parts[1][0]:
        return None
    axis, pieces = parts[0][0], sorted(parts[0][1] + parts[1][1], key=lambda p: p[0])
    end = 0
    for offset, piece in pieces:
        if offset != end:
            return None
        end += piece.aval.shape[axis]
    if end != eqn.outvars[0].aval.shape[axis]:
        return None
    return JaxprEqn(concatenate_p, [piece for _, piece in pieces], eqn.outvars,
                    {"dimension": axis})


_mul_identity = _identity_operand(1, True)


def _mul_rule(rw, eqn, invars):
    """``x * 1`` is ``x``; ``x * convert(mask)``, the boolean ``mask`` of the result's shape,
    is ``select(mask, x, 0)``, as XLA rewrites it: a masked-out inf or NaN gives 0, so jitted
    code gives JAX's jitted answers (``jnp.multiply`` does the same eagerly)."""
    same = _mul_identity(rw, eqn, invars)
    if same is not None:
        return same
    out = eqn.outvars[0].aval
    if out.dtype not in MASK_SELECT_DTYPES:
        return None
    for mask_side in (0, 1):
        convert = _producer(rw, invars[mask_side], convert_element_type_p)
        if convert is not None and convert.invars[0].aval.dtype == np.bool_ and \
                convert.invars[0].aval.shape == out.shape:
            zero = Literal(np.zeros((), out.dtype), ShapedArray((), out.dtype))
            return JaxprEqn(select_n_p, [convert.invars[0], zero, invars[1 - mask_side]],
                            eqn.outvars, {})
    return None


def _select_rule(rw, eqn, invars):
    cases = invars[1:]
    return cases[0] if all(c is cases[0] for c in cases) else None


_add_identity = _identity_operand(0, True)

def _operand_rule(rw, eqn, invars):
    return invars[0]  # the driver checks that the operand has the result's type


# primitive -> rule(rw, eqn, invars) -> replacement atom | replacement eqn | None; a
# primitive with the ``identity`` trait is replaced by its operand.
_SIMPLIFY: dict[Primitive, Callable] = {
    add_p: _add_identity,
    add_any_p: _add_any_rule,
    sub_p: _identity_operand(0, False),
    mul_p: _mul_rule,
    div_p: _identity_operand(1, False),
    neg_p: _neg_rule,
    transpose_p: _transpose_rule,
    dot_general_p: _product_dot_rule,
    reshape_p: _reshape_rule,
    broadcast_in_dim_p: _broadcast_rule,
    convert_element_type_p: _operand_rule,  # to the same dtype
    integer_pow_p: _integer_pow_rule,
    reduce_sum_p: _empty_param_rule("axes"),
    squeeze_p: _empty_param_rule("dimensions"),
    rev_p: _empty_param_rule("dimensions"),
    select_n_p: _select_rule,
}


def simplify(closed: ClosedJaxpr) -> ClosedJaxpr:
    """Apply algebraic identities; replaced equations become dead code for ``dce``."""
    rw = _Rewriter(closed)
    for eqn in closed.jaxpr.eqns:
        invars = rw.read_all(eqn.invars)
        rule = _SIMPLIFY.get(eqn.primitive) or (
            _operand_rule if compiler_traits(eqn.primitive).identity else None)
        new = rule(rw, eqn, invars) if rule is not None and len(eqn.outvars) == 1 else None
        if isinstance(new, JaxprEqn):
            rw.emit(new, new.invars)
        elif new is not None and _same_type(new.aval, eqn.outvars[0].aval):
            rw.replace(eqn.outvars[0], new)
        else:
            rw.emit(eqn, invars)
    return rw.finish()


# --------------------------------------------------------------------------- pipeline

# CSE runs before simplification too: rewrites that depend on how often a value is
# used (a transposed matmul) must see duplicates merged.
PASSES: tuple[Callable[[ClosedJaxpr], ClosedJaxpr], ...] = (
    inline_calls, cse, simplify, fold_constants, cse, dce)


def optimize(closed: ClosedJaxpr, max_rounds: int = 3) -> ClosedJaxpr:
    """Run the passes until the program stops shrinking (at most ``max_rounds`` times)."""
    if any(isinstance(c, Tracer) for c in closed.consts):
        raise TypeError("optimize: the jaxpr closes over traced values; pass them as inputs")
    for _ in range(max_rounds):
        before = len(closed.jaxpr.eqns)
        for p in PASSES:
            closed = p(closed)
        if len(closed.jaxpr.eqns) == before:
            break
    return closed
