"""Taylor-mode automatic differentiation (``jax.experimental.jet``).

``jet(fun, primals, series)`` pushes a truncated Taylor polynomial through ``fun`` in one
pass: given ``x(t) = x0 + x1 t + x2 t**2/2! + ...`` it returns the coefficients of
``fun(x(t))`` up to the same order. Repeated ``jvp`` reaches order ``K`` by nesting ``K``
transformations, whose cost grows exponentially in ``K``; Taylor mode propagates all ``K``
coefficients together with rules whose cost grows quadratically (the Cauchy product of two
truncated series), which is why ODE solvers and PDE residuals use it.

How: ``fun`` is staged into a jaxpr, then an interpreter walks its equations, carrying
``(primal, [c1, ..., cK])`` per variable, where ``ck`` is the coefficient of ``t**k``
(``jet`` divides the input terms by ``k!`` and multiplies the output terms by ``k!`` when
``factorial_scaled``, jax's default, so that the terms are derivatives). Each primitive has a
rule: linear and structural ones map every coefficient, ``mul`` and ``dot_general`` take a
Cauchy product, ``div`` and ``log`` solve a triangular recurrence, and the functions defined
by an ODE (``exp``, ``tanh``, ``sin``, ...) use ``v' = c(v) u'``. A value that does not depend
on the inputs carries no series at all (jax's ``zero_series``). The rules bind primitives in
the current trace, so ``jet`` composes with ``jit``, ``vmap`` and the derivatives; a ``jit``
call inside ``fun`` stays one compiled call of the Taylor-propagated body.

Example:
    >>> import fungrad.numpy as jnp
    >>> from fungrad.experimental.jet import jet
    >>> x, t = 0.5, 1.0  # sin(exp(x)) along x + t s: derivatives 1 to 3 in s
    >>> y0, (y1, y2, y3) = jet(lambda x: jnp.sin(jnp.exp(x)), (x,), ((t, 0.0, 0.0),))
    >>> print(f"{float(y0):.4f} {float(y1):.4f} {float(y2):.4f} {float(y3):.4f}")
    0.9970 -0.1283 -2.8384 -7.9096
"""
from __future__ import annotations

import functools
import math
import operator
import weakref
from typing import Any, Callable, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax
from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.namespace import public_dir
from fungrad._core.core import ClosedJaxpr, Jaxpr, Literal, Primitive, Tracer
from fungrad.errors import MissingRuleError
from fungrad.interpreters import partial_eval as pe
from fungrad.interpreters.ad import add_any_p
from fungrad.transforms.checkpoint import name_p, remat_p
from fungrad.transforms.custom_derivatives import custom_jvp_call_p, custom_vjp_call_p
from fungrad.transforms.jit_primitive import call_jit, jit_p

__all__ = ["jet"]
__dir__ = public_dir(__all__)

# A series is the list of the K coefficients of t, t**2, ..., t**K (the primal is kept
# apart), or None: the value does not depend on the inputs (jax's ``zero_series``).


# =========================================================================== the API

def jet(fun: Callable, primals: Sequence[Any], series: Sequence[Sequence[Any]],
        factorial_scaled: bool = True) -> tuple[Any, Any]:
    """Taylor-mode derivatives: ``(fun(*primals), series_out)``, where ``series_out`` holds
    the derivatives 1..K of ``fun`` along the curve that ``primals`` and ``series`` describe
    (``jax.experimental.jet.jet``).

    Args:
        fun: the function; its arguments and result are arrays or pytrees of arrays.
        primals: a tuple or list with one value per positional argument of ``fun``.
        series: a tuple or list with, per argument, a tuple or list of its K Taylor terms,
            each of the argument's structure and shapes. All arguments have the same K.
        factorial_scaled: True (jax's default): term k is the k-th derivative of the input
            curve, and the output terms are derivatives too. False: the terms are the plain
            Taylor coefficients, in and out (``jet2`` in jax).

    Returns:
        ``(primals_out, series_out)``: ``fun(*primals)``, and per output leaf the list of its
        K terms, in the structure of ``fun``'s result.

    Raises:
        TypeError: ``fun`` is not callable, or ``primals``/``series`` are not sequences.
        ValueError: the lengths, pytree structures or shapes of ``primals`` and ``series``
            do not match.
        NotImplementedError: ``fun`` uses a primitive that has no Taylor rule (the message
            names it).
    """
    if not callable(fun):
        raise TypeError(f"jet: fun must be callable, got {type(fun).__name__}")
    name = getattr(fun, "__name__", type(fun).__name__)
    leaves, leaf_series, in_trees, order = _flatten_inputs(name, primals, series)
    if factorial_scaled:
        leaf_series = [_scaled(s, lambda x, k: x / math.factorial(k)) for s in leaf_series]
    store = {}

    def flat_fun(*args: Any) -> list:
        it = iter(args)
        tree_args = [tree_util.unflatten(t, [next(it) for _ in range(t.num_leaves)])
                     for t in in_trees]
        outs, store["tree"] = tree_util.flatten(fun(*tree_args))
        return outs
    jaxpr, consts, _ = pe.trace_to_jaxpr(flat_fun, [core.get_aval(x) for x in leaves],
                                         f"jet({name})")
    outs, out_series = _eval(jaxpr, consts, leaves, leaf_series, order, name)
    out_series = [_instantiate(p, s, order) for p, s in zip(outs, out_series)]
    if factorial_scaled:
        out_series = [_scaled(s, lambda x, k: x * math.factorial(k)) for s in out_series]
    return (tree_util.unflatten(store["tree"], outs),
            tree_util.unflatten(store["tree"], out_series))


def _flatten_inputs(name: str, primals: Any, series: Any
                    ) -> tuple[list, list, list, int]:
    """Check ``primals`` against ``series`` and flatten both: the primal leaves, one series
    per leaf (None for integer leaves), each argument's pytree structure and the order K."""
    for what, val in (("primals", primals), ("series", series)):
        if not isinstance(val, (tuple, list)):
            raise TypeError(f"jet({name}): {what} must be a tuple or list with one entry per "
                            f"argument of fun, got {type(val).__name__}")
    if len(primals) != len(series):
        raise ValueError(f"jet({name}): primals has {len(primals)} arguments but series has "
                         f"{len(series)}; give one tuple of Taylor terms per argument")
    for i, terms in enumerate(series):
        if not isinstance(terms, (tuple, list)):
            raise TypeError(f"jet({name}): series[{i}] must be a tuple or list of Taylor "
                            f"terms, got {type(terms).__name__}")
    orders = sorted({len(terms) for terms in series})
    if len(orders) > 1:
        raise ValueError(f"jet({name}): the series have inconsistent lengths for different "
                         f"arguments: {[len(terms) for terms in series]}")
    order = orders[0] if orders else 0
    leaves, leaf_series, in_trees = [], [], []
    for i, (x, terms) in enumerate(zip(primals, series)):
        xs, treedef = tree_util.flatten(x)
        in_trees.append(treedef)
        xs = [_as_value(v, f"primals[{i}]", name) for v in xs]
        term_leaves = []
        for j, t in enumerate(terms):
            ts, t_tree = tree_util.flatten(t)
            if t_tree != treedef:
                raise ValueError(f"jet({name}): series[{i}][{j}] has the structure {t_tree} "
                                 f"but primals[{i}] has {treedef}")
            term_leaves.append([_as_value(v, f"series[{i}][{j}]", name) for v in ts])
        for n, p in enumerate(xs):
            aval = core.get_aval(p)
            s = []
            for j, ts in enumerate(term_leaves):
                t_aval = core.get_aval(ts[n])
                if t_aval.shape != aval.shape:
                    raise ValueError(f"jet({name}): series[{i}][{j}] has shape {t_aval.shape} "
                                     f"but primals[{i}] has shape {aval.shape}"
                                     + (f" (leaf {n})" if len(xs) > 1 else ""))
                s.append(ts[n] if t_aval.dtype == aval.dtype
                         else lax.convert_element_type(ts[n], aval.dtype))
            leaves.append(p)
            leaf_series.append(s if dtypes.is_inexact(aval.dtype) and order else None)
    return leaves, leaf_series, in_trees, order


def _as_value(x: Any, what: str, name: str) -> Any:
    """An array leaf as it is; a Python or NumPy scalar or a NumPy array as an array."""
    if isinstance(x, Tracer) or hasattr(x, "aval"):
        return x
    if isinstance(x, (bool, int, float, complex, np.ndarray, np.generic)):
        return jnp.asarray(x)
    raise TypeError(f"jet({name}): {what} holds a {type(x).__name__}, which is not an array")


def _scaled(s: Any, op: Callable) -> Any:
    """Term k of ``s`` through ``op(term, k)``, for k > 1 (0! = 1! = 1)."""
    return None if s is None else [x if k == 1 else op(x, k) for k, x in enumerate(s, 1)]


def _zeros(x: Any) -> Any:
    aval = core.get_aval(x)
    return jnp.zeros(aval.shape, aval.dtype)


def _instantiate(primal: Any, s: Any, order: int) -> list:
    return [jnp.zeros_like(primal) for _ in range(order)] if s is None else list(s)


# =========================================================================== the interpreter

# rule(primals, series, **params) -> (primal_out, series_out): every input series is a list
# of K arrays (zeros put in); series_out is a list, or None when the result is constant. A
# multiple-results primitive's rule returns lists of both.
_rules: dict[Primitive, Callable] = {}
# rule(order, primals, series, fname, **params) -> (primals_out, series_out): the call-like
# primitives, which see None series and recurse into their jaxprs.
_call_rules: dict[Primitive, Callable] = {}


def _eval(jaxpr: Jaxpr, consts: Sequence[Any], primals: Sequence[Any],
          series: Sequence[Any], order: int, name: str) -> tuple[list, list]:
    """Evaluate ``jaxpr`` on Taylor polynomials, binding every primitive in the current
    trace: per output, its primal and its series (None where constant)."""
    env: dict = {v: (c, None) for v, c in zip(jaxpr.constvars, consts)}
    env.update((v, (p, s)) for v, p, s in zip(jaxpr.invars, primals, series))

    def read(v: Any) -> tuple:
        return (v.val, None) if type(v) is Literal else env[v]
    for eqn in jaxpr.eqns:
        prim, params = eqn.primitive, eqn.params
        ps, ss = map(list, zip(*map(read, eqn.invars))) if eqn.invars else ([], [])
        if prim in _call_rules and any(s is not None for s in ss):
            outs, out_s = _call_rules[prim](order, ps, ss, name, **params)
        elif all(s is None for s in ss) or not any(_inexact(v) for v in eqn.outvars):
            outs = prim.bind(*ps, **params)
            out_s = [None] * len(outs) if prim.multiple_results else None
        elif _linear_alone(prim, ss):
            outs, out_s = _linear_rule(prim, lambda i: ss[i] is None)(ps, ss, **params)
        elif prim in _rules:
            ss = [[_zeros(p)] * order if s is None else s for p, s in zip(ps, ss)]
            outs, out_s = _rules[prim](ps, ss, **params)
        else:
            raise MissingRuleError(prim.name, "jet", f"jet({name}) cannot propagate Taylor "
                                   f"series through '{prim.name}'")
        if not prim.multiple_results:
            outs, out_s = [outs], [out_s]
        for v, p, s in zip(eqn.outvars, outs, out_s):
            env[v] = (p, s if _inexact(v) else None)
    outs = [read(v) for v in jaxpr.outvars]
    return [p for p, _ in outs], [s for _, s in outs]


def _linear_alone(prim: Primitive, series: Sequence[Any]) -> bool:
    """Whether the one operand carrying a series is one ``prim`` is linear in when the
    others are constant (``x * 2``, ``w @ x``, ``x / 3``): then each term maps like the
    primal, with no products of zeros."""
    varying = [i for i, s in enumerate(series) if s is not None]
    return len(varying) == 1 and varying[0] in _linear_alone_in.get(prim, ())


def _inexact(v: Any) -> bool:
    return dtypes.is_inexact(v.aval.dtype)


# --------------------------------------------------------------------------- jaxprs of jets

_derived: "weakref.WeakKeyDictionary[ClosedJaxpr, dict]" = weakref.WeakKeyDictionary()


def _jet_jaxpr(closed: ClosedJaxpr, order: int, in_mask: tuple, instantiate: bool,
               name: str) -> tuple[ClosedJaxpr, tuple]:
    """``closed`` with Taylor series propagated: a jaxpr over the primals, then the K terms
    of each input marked in ``in_mask``, returning the primals, then the K terms of each
    output in the returned mask (every output's when ``instantiate``). Cached on ``closed``
    unless its constants are traced."""
    key = (order, in_mask, instantiate)
    table = _derived.get(closed)
    if table is not None and key in table:
        return table[key]
    n = len(closed.in_avals)
    avals = list(closed.in_avals) + [a for a, m in zip(closed.in_avals, in_mask)
                                     for _ in range(order) if m]
    store = {}

    def fn(*flat: Any) -> list:
        it = iter(flat[n:])
        series = [[next(it) for _ in range(order)] if m else None for m in in_mask]
        outs, out_s = _eval(closed.jaxpr, closed.consts, flat[:n], series, order, name)
        if instantiate:
            out_s = [_instantiate(p, s, order) for p, s in zip(outs, out_s)]
        store["mask"] = tuple(s is not None for s in out_s)
        return [*outs, *[t for s in out_s if s is not None for t in s]]
    jaxpr, consts, _ = pe.trace_to_jaxpr(fn, avals, f"jet({name})")
    hit = (ClosedJaxpr(jaxpr, consts), store["mask"])
    if not any(isinstance(c, Tracer) for c in [*closed.consts, *consts]):
        _derived.setdefault(closed, {})[key] = hit
    return hit


def _split_outs(outs: Sequence[Any], n: int, mask: Sequence[bool], order: int
                ) -> tuple[list, list]:
    it = iter(outs[n:])
    return list(outs[:n]), [[next(it) for _ in range(order)] if m else None for m in mask]


def _nonzero_terms(series: Sequence[Any]) -> list:
    return [t for s in series if s is not None for t in s]


def _jit_rule(order, primals, series, fname, *, jaxpr, name, donated_invars):
    """One ``jit`` call of the Taylor-propagated body (cached on the body's jaxpr)."""
    in_mask = tuple(s is not None for s in series)
    closed, out_mask = _jet_jaxpr(jaxpr, order, in_mask, False, fname)
    outs = call_jit(closed, [*primals, *_nonzero_terms(series)], f"jet({name})")
    return _split_outs(outs, len(jaxpr.out_avals), out_mask, order)


def _inline_rule(param: str) -> Callable:
    """Run the body in ``param`` on the series, as jax's jet runs a custom-derivative
    function's primal body (its rule does not say how to take higher derivatives)."""
    def rule(order, primals, series, fname, **params):
        body = params[param]
        return _eval(body.jaxpr, body.consts, primals, series, order, fname)
    return rule


def _cond_rule(order, primals, series, fname, *, branches):
    """``cond`` of the Taylor-propagated branches, each returning every output's series
    (so that they agree), and taking every branch's constants."""
    in_mask = tuple(s is not None for s in series[1:])
    jets = [_jet_jaxpr(b, order, in_mask, True, fname)[0] for b in branches]
    new_branches = []
    for i, c in enumerate(jets):
        j = c.jaxpr
        pad = [[core.Var(core.get_aval(x)) for x in other.consts] for other in jets]
        pad[i] = j.constvars
        invars = [v for vs in pad for v in vs] + j.invars
        new_branches.append(ClosedJaxpr(Jaxpr([], invars, j.outvars, j.eqns), []))
    all_consts = [x for c in jets for x in c.consts]
    outs = lax.cond_p.bind(primals[0], *all_consts, *primals[1:], *_nonzero_terms(series[1:]),
                           branches=tuple(new_branches))
    n = len(branches[0].out_avals)
    return _split_outs(outs, n, [True] * n, order)


_call_rules[jit_p] = _jit_rule
_call_rules[custom_jvp_call_p] = _inline_rule("call_jaxpr")
_call_rules[custom_vjp_call_p] = _inline_rule("call_jaxpr")
_call_rules[remat_p] = _inline_rule("jaxpr")
_call_rules[lax.cond_p] = _cond_rule


# =========================================================================== series arithmetic
# On full series ``u = [u0, u1, ..., uK]`` (index = power of t).

def _sum(xs: Any) -> Any:
    return functools.reduce(operator.add, xs)


def _cauchy(a: Sequence[Any], b: Sequence[Any], op: Callable = operator.mul,
            start: int = 0) -> list:
    """The coefficients ``start`` and up of ``a(t) op b(t)`` for a bilinear ``op``
    (Leibniz's rule)."""
    return [_sum(op(a[j], b[k - j]) for j in range(k + 1)) for k in range(start, len(a))]


def _dconv(a: Sequence[Any], b: Sequence[Any], k: int, stop: int) -> Any:
    """``sum_{j=1}^{stop} j a_j b_{k-j} / k``, the sum of the recurrences of ODE-defined
    functions (the weights 1 left out of the program)."""
    s = _sum(a[j] * b[k - j] if j == 1 else a[j] * b[k - j] * j for j in range(1, stop + 1))
    return s if k == 1 else s / k


def _div_series(u: Sequence[Any], w: Sequence[Any], v0: Any = None) -> list:
    """``v = u / w``, from ``v w = u``: ``vk = (uk - sum_{j<k} vj w_{k-j}) / w0``."""
    v = [u[0] / w[0] if v0 is None else v0]
    for k in range(1, len(u)):
        v.append((u[k] - _sum(v[j] * w[k - j] for j in range(k))) / w[0])
    return v


def _ode(u: Sequence[Any], v0: Any, c0: Any, c_next: Callable) -> list:
    """``v`` with ``v' = c u'`` and ``v(0) = v0``, where ``c``'s coefficient k comes from
    ``c_next(v, k)`` once ``v``'s first k+1 are known: ``vk = sum_j j uj c_{k-j} / k``."""
    v, c = [v0], [c0]
    for k in range(1, len(u)):
        v.append(_dconv(u, c, k, k))
        if k < len(u) - 1:
            c.append(c_next(v, k))
    return v


def _square_k(v: Sequence[Any], k: int) -> Any:
    """Coefficient k of ``v(t)**2``."""
    return _sum(v[i] * v[k - i] for i in range(k + 1))


def _exp_series(u: Sequence[Any], v0: Any) -> list:
    return _ode(u, v0, v0, lambda v, k: v[k])


def _log_series(u: Sequence[Any], v0: Any, u0: Any) -> list:
    """``v = log(u)`` (``u0`` the value divided by: ``1 + u0`` for ``log1p``), from
    ``u v' = u'``: ``vk = (uk - sum_{0<j<k} j vj u_{k-j} / k) / u0``."""
    v = [v0]
    for k in range(1, len(u)):
        conv = _dconv(v, u, k, k - 1) if k > 1 else 0
        v.append((u[k] - conv) / u0)
    return v


def _sqrt_series(u: Sequence[Any], v0: Any) -> list:
    """``v = sqrt(u)``, from ``v**2 = u``: ``vk = (uk - sum_{0<j<k} vj v_{k-j}) / (2 v0)``."""
    v = [v0]
    for k in range(1, len(u)):
        conv = _sum(v[j] * v[k - j] for j in range(1, k)) if k > 1 else 0
        v.append((u[k] - conv) / (2 * v0))
    return v


def _ipow_series(u: Sequence[Any], n: int) -> list:
    """``u**n`` for ``n >= 1`` by repeated squaring (exact at ``u0 = 0``, unlike a rule
    dividing by ``u0``)."""
    if n == 1:
        return list(u)
    half = _ipow_series(u, n // 2)
    sq = _cauchy(half, half)
    return _cauchy(sq, u) if n % 2 else sq


def _recip_series(w: Sequence[Any]) -> list:
    return _div_series([1] + [0] * (len(w) - 1), w, 1 / w[0])


# =========================================================================== rules

def _full(x: Any, s: Sequence[Any]) -> list:
    return [x, *s]


def _one(prim: Primitive, full: Callable) -> Callable:
    """A rule for a unary primitive from ``full(x, u) -> v`` on full series, the primal
    output being the primitive's own result."""
    def rule(primals, series, **params):
        x, = primals
        y = prim.bind(x, **params)
        return y, full(y, _full(x, series[0]))[1:]
    return rule


def _linear_rule(prim: Primitive, fixed: Callable[[int], bool]) -> Callable:
    """The rule of a primitive linear in its operands but those whose position is ``fixed``
    (indices, predicates, constants), which keep their primal values: each coefficient maps
    like the primal."""
    def rule(primals, series, **params):
        out = prim.bind(*primals, **params)
        order = len(next(s for s in series if s is not None))
        terms = [prim.bind(*[p if fixed(i) else s[k] for i, (p, s)
                             in enumerate(zip(primals, series))], **params)
                 for k in range(order)]
        if prim.multiple_results:
            return out, [list(ts) for ts in zip(*terms)]
        return out, terms
    return rule


def _def_linear(prims: Sequence[Primitive], fixed: Callable[[int], bool] = lambda i: False
                ) -> None:
    for prim in prims:
        _rules[prim] = _linear_rule(prim, fixed)


def _def_constant(prims: Sequence[Primitive]) -> None:
    """Piecewise-constant primitives (and ``stop_gradient``): a constant result."""
    def rule_for(prim):
        return lambda primals, series, **params: (prim.bind(*primals, **params), None)
    for prim in prims:
        _rules[prim] = rule_for(prim)


def _bilinear(prim: Primitive) -> Callable:
    def rule(primals, series, **params):
        op = functools.partial(prim.bind, **params)
        terms = _cauchy(_full(primals[0], series[0]), _full(primals[1], series[1]), op, 1)
        return op(*primals), terms
    return rule


# --- linear and structural

_def_linear([lax.neg_p, lax.add_p, lax.sub_p, add_any_p, lax.convert_element_type_p,
             lax.reshape_p, lax.broadcast_in_dim_p, lax.transpose_p, lax.squeeze_p, lax.rev_p,
             lax.slice_p, lax.concatenate_p, lax.pad_p, lax.reduce_sum_p,
             lax.reduce_window_sum_p, lax.cumsum_p, lax.real_p, lax.imag_p, lax.conj_p,
             lax.complex_p, lax.fft_p, lax.reduce_precision_p, lax.optimization_barrier_p,
             name_p, lax.psum_p, lax.all_gather_p, lax.ppermute_p, lax.all_to_all_p,
             lax.pbroadcast_p])
_def_linear([lax.select_n_p], fixed=lambda i: i == 0)
_def_linear([lax.gather_p, lax.scatter_add_p, lax.scatter_p], fixed=lambda i: i == 1)
_def_linear([lax.dynamic_slice_p], fixed=lambda i: i >= 1)
_def_linear([lax.dynamic_update_slice_p], fixed=lambda i: i >= 2)
_def_constant([lax.sign_p, lax.floor_p, lax.ceil_p, lax.round_p, lax.stop_gradient_p,
               lax.nextafter_p])

# --- bilinear: Leibniz's rule (linear alone when the other operand is constant)
for _prim in (lax.mul_p, lax.dot_general_p, lax.conv_general_dilated_p):
    _rules[_prim] = _bilinear(_prim)
_linear_alone_in = {lax.mul_p: (0, 1), lax.dot_general_p: (0, 1),
                    lax.conv_general_dilated_p: (0, 1), lax.div_p: (0,)}


def _div_rule(primals, series):
    x, y = primals
    v = _div_series(_full(x, series[0]), _full(y, series[1]), lax.div_p.bind(x, y))
    return v[0], v[1:]


def _integer_pow_rule(primals, series, *, y):
    x, = primals
    out = lax.integer_pow_p.bind(x, y=y)
    if y == 0:
        return out, None
    u = _full(x, series[0])
    v = _ipow_series(u if y > 0 else _recip_series(u), abs(y))
    return out, v[1:]


def _pow_rule(primals, series):
    """``x**y = exp(y log x)``, as jax's rule (both operands may carry series)."""
    x, y = primals
    out = lax.pow_p.bind(x, y)
    u = _full(x, series[0])
    log_x = _log_series(u, lax.log(x), x)
    return out, _exp_series(_cauchy(_full(y, series[1]), log_x), out)[1:]


def _rem_rule(primals, series):
    """``rem(x, y) = x - y trunc(x / y)``, the quotient being piecewise constant."""
    x, y = primals
    q = jnp.trunc(lax.div(x, y))
    return lax.rem_p.bind(x, y), [a - q * b for a, b in zip(*series)]


_rules[lax.div_p] = _div_rule
_rules[lax.integer_pow_p] = _integer_pow_rule
_rules[lax.pow_p] = _pow_rule
_rules[lax.rem_p] = _rem_rule
_rules[lax.square_p] = _one(lax.square_p, lambda y, u: [y, *_cauchy(u, u, start=1)])
_rules[lax.sqrt_p] = _one(lax.sqrt_p, lambda y, u: _sqrt_series(u, y))
_rules[lax.rsqrt_p] = _one(lax.rsqrt_p, lambda y, u: _div_series(
    [1] + [0] * (len(u) - 1), _sqrt_series(u, lax.sqrt(u[0])), y))

# --- exp and log
_rules[lax.exp_p] = _one(lax.exp_p, lambda y, u: _exp_series(u, y))
_rules[lax.expm1_p] = _one(lax.expm1_p, lambda y, u: _ode(u, y, y + 1, lambda v, k: v[k]))
_rules[lax.log_p] = _one(lax.log_p, lambda y, u: _log_series(u, y, u[0]))
_rules[lax.log1p_p] = _one(lax.log1p_p, lambda y, u: _log_series(u, y, u[0] + 1))
# v' = v (1 - v) u'
_rules[lax.logistic_p] = _one(lax.logistic_p, lambda y, u: _ode(
    u, y, y * (1 - y), lambda v, k: v[k] - _square_k(v, k)))
# v' = (1 - v**2) u' and (1 + v**2) u'
_rules[lax.tanh_p] = _one(lax.tanh_p, lambda y, u: _ode(
    u, y, 1 - y * y, lambda v, k: -_square_k(v, k)))
_rules[lax.tan_p] = _one(lax.tan_p, lambda y, u: _ode(
    u, y, 1 + y * y, lambda v, k: _square_k(v, k)))


def _sincos(u: Sequence[Any], s0: Any, c0: Any, sign: int) -> tuple[list, list]:
    """``s' = c u'``, ``c' = sign s u'``: sin/cos (sign -1) and sinh/cosh (+1) together."""
    s, c = [s0], [c0]
    for k in range(1, len(u)):
        s.append(_dconv(u, c, k, k))
        c_k = _dconv(u, s, k, k)
        c.append(-c_k if sign < 0 else c_k)
    return s, c


def _sincos_rule(prim: Primitive, pair: tuple[Callable, Callable], sign: int, which: int
                 ) -> Callable:
    def rule(primals, series):
        x, = primals
        y = prim.bind(x)
        s0, c0 = (y, pair[1](x)) if which == 0 else (pair[0](x), y)
        return y, _sincos(_full(x, series[0]), s0, c0, sign)[which][1:]
    return rule


_rules[lax.sin_p] = _sincos_rule(lax.sin_p, (lax.sin, lax.cos), -1, 0)
_rules[lax.cos_p] = _sincos_rule(lax.cos_p, (lax.sin, lax.cos), -1, 1)
_rules[lax.sinh_p] = _sincos_rule(lax.sinh_p, (lax.sinh, lax.cosh), 1, 0)
_rules[lax.cosh_p] = _sincos_rule(lax.cosh_p, (lax.sinh, lax.cosh), 1, 1)


def _from_derivative(prim: Primitive, deriv: Callable) -> Callable:
    """A rule from the series of the derivative: ``v' = deriv(u) u'``, where
    ``deriv(u) -> c`` works on a full series (only its first K coefficients are used)."""
    def full(y, u):
        c = deriv(u[:-1])
        return _ode(u, y, c[0], lambda v, k: c[k])
    return _one(prim, full)


def _erf_deriv(u: Sequence[Any]) -> list:
    """``2/sqrt(pi) exp(-u**2)``."""
    neg_sq = [-t for t in _cauchy(u, u)]
    return [t * (2 / math.sqrt(math.pi)) for t in _exp_series(neg_sq, lax.exp(neg_sq[0]))]


def _shifted_square(u: Sequence[Any], a: int, b: int) -> list:
    """The series of ``a + b u**2``."""
    sq = _cauchy(u, u)
    return [a + b * sq[0], *[b * t for t in sq[1:]]]


def _rsqrt_of(w: Sequence[Any]) -> list:
    return _recip_series(_sqrt_series(w, lax.sqrt(w[0])))


_rules[lax.erf_p] = _from_derivative(lax.erf_p, _erf_deriv)
_rules[lax.erfc_p] = _from_derivative(lax.erfc_p, lambda u: [-t for t in _erf_deriv(u)])
_rules[lax.atan_p] = _from_derivative(
    lax.atan_p, lambda u: _recip_series(_shifted_square(u, 1, 1)))
_rules[lax.atanh_p] = _from_derivative(
    lax.atanh_p, lambda u: _recip_series(_shifted_square(u, 1, -1)))
_rules[lax.asin_p] = _from_derivative(
    lax.asin_p, lambda u: _rsqrt_of(_shifted_square(u, 1, -1)))
_rules[lax.acos_p] = _from_derivative(
    lax.acos_p, lambda u: [-t for t in _rsqrt_of(_shifted_square(u, 1, -1))])
_rules[lax.asinh_p] = _from_derivative(
    lax.asinh_p, lambda u: _rsqrt_of(_shifted_square(u, 1, 1)))
_rules[lax.acosh_p] = _from_derivative(
    lax.acosh_p, lambda u: _rsqrt_of(_shifted_square(u, -1, 1)))


# --- piecewise: the branch taken at the primal point (ties of max/min averaged, as jax)

def _abs_rule(primals, series):
    x, = primals
    if dtypes.kind(core.get_aval(x).dtype) == "c":
        raise MissingRuleError("abs", "jet", "jet has no rule for abs of complex numbers")
    neg = x < 0
    return lax.abs_p.bind(x), [jnp.where(neg, -t, t) for t in series[0]]


def _choose(x: Any, y: Any, xs: Sequence[Any], ys: Sequence[Any], is_max: bool) -> list:
    """The terms of max(x, y) (min when not ``is_max``): the larger (smaller) operand's,
    their mean where the two are equal."""
    wins, tie = (x > y if is_max else x < y), x == y
    return [jnp.where(tie, (a + b) / 2, jnp.where(wins, a, b)) for a, b in zip(xs, ys)]


def _extremum_rule(prim: Primitive, is_max: bool) -> Callable:
    def rule(primals, series):
        x, y = primals
        return prim.bind(x, y), _choose(x, y, series[0], series[1], is_max)
    return rule


def _clamp_rule(primals, series):
    lo, x, hi = primals
    inner = lax.max(lo, x)
    terms = _choose(lo, x, series[0], series[1], True)
    return lax.clamp_p.bind(lo, x, hi), _choose(inner, hi, terms, series[2], False)


def _reduce_chooser_rule(prim: Primitive) -> Callable:
    """``reduce_max``/``reduce_min``: the terms at the extreme positions, averaged over ties."""
    def rule(primals, series, *, axes, **params):
        x, = primals
        out = prim.bind(x, axes=axes, **params)
        kept = [1 if i in axes else d for i, d in enumerate(core.get_aval(x).shape)]
        at = lax.convert_element_type(x == lax.reshape(out, kept), core.get_aval(x).dtype)
        count = lax.reduce_sum(at, axes)
        return out, [lax.reduce_sum(t * at, axes) / count for t in series[0]]
    return rule


_rules[lax.abs_p] = _abs_rule
_rules[lax.max_p] = _extremum_rule(lax.max_p, True)
_rules[lax.min_p] = _extremum_rule(lax.min_p, False)
_rules[lax.clamp_p] = _clamp_rule
_rules[lax.reduce_max_p] = _reduce_chooser_rule(lax.reduce_max_p)
_rules[lax.reduce_min_p] = _reduce_chooser_rule(lax.reduce_min_p)
