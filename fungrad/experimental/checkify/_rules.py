"""The interpreter ``checkify`` runs a jaxpr with, and its rules for the primitives that check
on their own: NaN results, division by zero, out-of-bounds indices, and ``check_p``
(discharged into the error). The rules of the primitives carrying jaxprs are in
``_control_flow``."""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import numpy as np

import fungrad.numpy as jnp
from fungrad import lax
from fungrad._core import core, dtypes
from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Primitive

from fungrad.experimental.checkify._error import Error, _assert, _Effect, _Layout, _Reason, check_p
from fungrad.experimental.checkify._exceptions import DivisionByZeroError, NaNError, OOBError


# --------------------------------------------------------------------------- the interpreter

class _Checker:
    """One ``checkify`` run: the enabled categories and the codes it has handed out."""

    def __init__(self, enabled: frozenset) -> None:
        self.enabled = enabled
        self.metadata: dict[int, _Reason] = {}

    def fail_if(self, error: Error, pred: Any, reason: _Reason, payload: tuple = ()) -> Error:
        return _assert(error, pred, reason, payload, self.metadata)

    def run(self, jaxpr: Jaxpr | ClosedJaxpr, error: Error, args: Sequence[Any]
            ) -> tuple[Error, list]:
        """Evaluate ``jaxpr`` on ``args`` in the current trace, threading ``error``."""
        jaxpr, consts = _parts(jaxpr)
        env: dict = dict(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))
        read = lambda v: v.val if type(v) is Literal else env[v]  # noqa: E731
        for eqn in jaxpr.eqns:
            invals = [read(v) for v in eqn.invars]
            rule = _rules.get(eqn.primitive)
            if rule is None:
                outs = eqn.primitive.bind(*invals, **eqn.params)
            else:
                error, outs = rule(self, error, *invals, **eqn.params)
            if eqn.primitive.multiple_results:
                env.update(zip(eqn.outvars, outs))
            else:
                env[eqn.outvars[0]] = outs
        return error, [read(v) for v in jaxpr.outvars]


def _parts(j: Jaxpr | ClosedJaxpr) -> tuple[Jaxpr, list]:
    return (j.jaxpr, j.consts) if isinstance(j, ClosedJaxpr) else (j, [])


# Per primitive: rule(checker, error, *invals, **params) -> (error, outs), and
# effects(eqn, enabled) -> the slots the rule may fill (so loops and branches can carry a
# fixed structure).
_rules: dict[Primitive, Callable] = {}
_effect_rules: dict[Primitive, Callable] = {}


def _def_rule(prims: Sequence[Primitive], rule: Callable, effects: Callable) -> None:
    for prim in prims:
        _rules[prim] = rule
        _effect_rules[prim] = effects


_effects_memo: "weakref.WeakKeyDictionary[Jaxpr, dict]" = weakref.WeakKeyDictionary()


def _effects(jaxpr: Jaxpr | ClosedJaxpr, enabled: frozenset) -> frozenset:
    """Every slot running ``jaxpr`` under ``checkify(errors=enabled)`` may fill."""
    jaxpr = _parts(jaxpr)[0]
    memo = _effects_memo.setdefault(jaxpr, {})
    if enabled not in memo:
        out: set = set()
        for eqn in jaxpr.eqns:
            rule = _effect_rules.get(eqn.primitive)
            if rule is not None:
                out |= rule(eqn, enabled)
        memo[enabled] = frozenset(out)
    return memo[enabled]


_NAN = _Effect(NaNError, ())
_DIV = _Effect(DivisionByZeroError, ())
_OOB = _Effect(OOBError, (((3,), "int32"),))


def _inexact(x: Any) -> bool:
    return dtypes.is_inexact(core.get_aval(x).dtype)


def _nan_effects(eqn: JaxprEqn, enabled: frozenset) -> frozenset:
    hit = NaNError in enabled and any(dtypes.is_inexact(v.aval.dtype) for v in eqn.outvars)
    return frozenset({_NAN}) if hit else frozenset()


def _check_nans(ck: _Checker, error: Error, prim: Primitive, out: Any) -> Error:
    if NaNError not in ck.enabled:
        return error
    outs = [o for o in (out if prim.multiple_results else [out]) if _inexact(o)]
    if not outs:
        return error
    any_nan = jnp.any(jnp.stack([jnp.any(jnp.isnan(o)) for o in outs]))
    return ck.fail_if(error, any_nan, _Reason(NaNError, (prim.name,)))


def _nan_rule(prim: Primitive) -> Callable:
    def rule(ck: _Checker, error: Error, *invals: Any, **params: Any) -> tuple[Error, Any]:
        out = prim.bind(*invals, **params)
        return _check_nans(ck, error, prim, out), out
    return rule


def _by_name(*names: str) -> list[Primitive]:
    table = {p.name: p for p in core.primitives()}
    return [table[n] for n in names if n in table]


# JAX's list of the primitives that can make a NaN (``checkify.nan_primitives``).
NAN_PRIMITIVES = _by_name(
    "acos", "acosh", "add", "asin", "asinh", "atan2", "atan", "atanh", "bessel_i0e",
    "bessel_i1e", "cbrt", "conv_general_dilated", "cos", "cosh", "cumlogsumexp", "cummax",
    "cummin", "cumprod", "cumsum", "digamma", "dot_general", "erf_inv", "erf", "erfc", "exp",
    "expm1", "fft", "igamma_grad_a", "igamma", "igammac", "integer_pow", "lgamma",
    "custom_linear_solve", "log1p", "log", "logistic", "mul", "pad", "pow", "psum", "reduce",
    "reduce_prod", "reduce_sum", "reduce_window", "reduce_window_sum",
    "regularized_incomplete_beta", "rem", "rng_uniform", "rsqrt", "sin", "sinh", "sqrt", "sub",
    "tan", "tanh")
for _prim in NAN_PRIMITIVES:
    _def_rule([_prim], _nan_rule(_prim), _nan_effects)


def _div_rule(ck: _Checker, error: Error, x: Any, y: Any) -> tuple[Error, Any]:
    if DivisionByZeroError in ck.enabled:
        error = ck.fail_if(error, jnp.any(jnp.equal(y, 0)), _Reason(DivisionByZeroError, ()))
    out = lax.div_p.bind(x, y)
    return _check_nans(ck, error, lax.div_p, out), out


_def_rule([lax.div_p], _div_rule, lambda eqn, enabled: _nan_effects(eqn, enabled) | (
    frozenset({_DIV}) if DivisionByZeroError in enabled else frozenset()))


# -- index checks

def _oob_effects(eqn: JaxprEqn, enabled: frozenset) -> frozenset:
    return frozenset({_OOB}) if OOBError in enabled else frozenset()


def _oob_payload(mask: Any, indices: Any, dims_map: Sequence[int], shape: tuple) -> Any:
    """``[index, axis, axis size]`` of the first out-of-bounds entry of ``indices``."""
    flat = jnp.argmin(jnp.logical_not(mask))
    last = jnp.unravel_index(flat, indices.shape)[-1]
    axis = jnp.asarray(np.asarray(dims_map, np.int32))[last]
    size = jnp.asarray(np.asarray(shape, np.int32))[axis]
    return jnp.stack([jnp.ravel(indices)[flat].astype(np.int32), axis, size])


def _fail_oob(ck: _Checker, error: Error, name: str, shape: tuple, mask: Any, indices: Any,
              dims_map: Sequence[int]) -> Error:
    payload = _oob_payload(mask, indices, dims_map, shape)
    return ck.fail_if(error, jnp.any(mask), _Reason(OOBError, (name, tuple(shape))), (payload,))


def _window_oob(ck: _Checker, error: Error, name: str, shape: tuple, starts: Sequence[Any],
                sizes: Sequence[int]) -> Error:
    starts = jnp.stack([jnp.asarray(s) for s in starts])
    mask = (starts < 0) | (starts + np.asarray(sizes, starts.dtype)
                           > np.asarray(shape, starts.dtype))
    return _fail_oob(ck, error, name, shape, mask, starts, range(len(shape)))


def _dynamic_slice_rule(ck: _Checker, error: Error, operand: Any, *starts: Any,
                        **params: Any) -> tuple[Error, Any]:
    out = lax.dynamic_slice_p.bind(operand, *starts, **params)
    if OOBError in ck.enabled:
        error = _window_oob(ck, error, "dynamic_slice", operand.shape, starts,
                            params["slice_sizes"])
    return error, out


def _dynamic_update_slice_rule(ck: _Checker, error: Error, operand: Any, update: Any,
                               *starts: Any, **params: Any) -> tuple[Error, Any]:
    out = lax.dynamic_update_slice_p.bind(operand, update, *starts, **params)
    if OOBError in ck.enabled:
        error = _window_oob(ck, error, "dynamic_update_slice", operand.shape, starts,
                            jnp.shape(update))
    return error, out


def _gather_rule(ck: _Checker, error: Error, operand: Any, indices: Any,
                 **params: Any) -> tuple[Error, Any]:
    out = lax.gather_p.bind(operand, indices, **params)
    if OOBError in ck.enabled:
        dims = params["dimension_numbers"].start_index_map
        shape = np.asarray(operand.shape, np.int64)
        upper = shape[list(dims)] - np.asarray(params["slice_sizes"], np.int64)[list(dims)]
        indices = jnp.asarray(indices)
        mask = (indices < 0) | (indices > upper.astype(indices.dtype))
        error = _fail_oob(ck, error, "gather", operand.shape, mask, indices, dims)
    return error, out


def _scatter_rule(prim: Primitive) -> Callable:
    def rule(ck: _Checker, error: Error, operand: Any, indices: Any, updates: Any,
             **params: Any) -> tuple[Error, Any]:
        out = prim.bind(operand, indices, updates, **params)
        if OOBError not in ck.enabled:  # as in JAX, the NaN check comes with the index check
            return error, out
        dnums = params["dimension_numbers"]
        window = iter(dnums.update_window_dims)
        sizes = [1 if i in dnums.inserted_window_dims or i in dnums.operand_batching_dims
                 else jnp.shape(updates)[next(window)] for i in range(jnp.ndim(operand))]
        dims = dnums.scatter_dims_to_operand_dims
        indices = jnp.asarray(indices)
        upper = np.asarray([operand.shape[d] - sizes[d] for d in dims], np.int64)
        upper = np.minimum(upper, np.iinfo(indices.dtype).max).astype(indices.dtype)
        mask = (indices < 0) | (indices > upper)
        error = _fail_oob(ck, error, prim.name, operand.shape, mask, indices, dims)
        return _check_nans(ck, error, prim, out), out
    return rule


def _scatter_effects(eqn: JaxprEqn, enabled: frozenset) -> frozenset:
    return _oob_effects(eqn, enabled) | (_nan_effects(eqn, enabled) if OOBError in enabled
                                         else frozenset())


_def_rule([lax.dynamic_slice_p], _dynamic_slice_rule, _oob_effects)
_def_rule([lax.dynamic_update_slice_p], _dynamic_update_slice_rule, _oob_effects)
_def_rule([lax.gather_p], _gather_rule, _oob_effects)
for _prim in _by_name("scatter", "scatter-add", "scatter-mul", "scatter-min", "scatter-max"):
    _def_rule([_prim], _scatter_rule(_prim), _scatter_effects)


# -- check_p: discharged into the error

def _check_rule(ck: _Checker, error: Error, *vals: Any, layout: _Layout,
                debug: bool) -> tuple[Error, list]:
    new = Error.tree_unflatten(layout, vals)
    for e in layout.effects:
        if e.kind in ck.enabled:  # JAX drops the disabled ones
            error = error._with(e, new._pred[e], new._code[e], new._payload[e])
    ck.metadata.update(layout.metadata)
    return error, []


_def_rule([check_p], _check_rule, lambda eqn, enabled: frozenset(
    e for e in eqn.params["layout"].effects if e.kind in enabled))
