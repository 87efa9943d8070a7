"""Line searches: a step size along the update direction, chosen by evaluating the objective.

``scale_by_backtracking_linesearch`` shrinks a guess until the objective decreases enough
(Armijo's criterion); ``scale_by_zoom_linesearch`` also asks for a small slope at the new
point (Wolfe's curvature criterion): it searches for an interval holding such a step, then
zooms into it by cubic, quadratic or bisection steps (Nocedal and Wright, Algorithms 3.5 and
3.6). Both are ``GradientTransformationExtraArgs`` whose ``update`` takes the objective's
``value`` and ``grad`` at ``params`` and the objective ``value_fn`` itself as keywords, plus
any keywords ``value_fn`` takes (a batch). ``value_and_grad_from_state`` reuses the value
and gradient a line search computed at the accepted point. Names, defaults and numerics
follow optax.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import fungrad.numpy as jnp
from fungrad import debug, lax, tree
from fungrad.optim._base import (NO_PARAMS_MSG, GradientTransformationExtraArgs, OptState,
                                 Params, Updates, safe_increment, split_keywords)
from fungrad.optim.tree_utils import (tree_add_scale, tree_cast_like, tree_conj, tree_get,
                                      tree_real, tree_scale, tree_vdot, tree_where,
                                      tree_zeros_like)
from fungrad.transforms.api import value_and_grad, vjp

__all__ = [
    "ScaleByBacktrackingLinesearchState", "scale_by_backtracking_linesearch",
    "ZoomLinesearchInfo", "ScaleByZoomLinesearchState", "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
]

# What the zoom line search prints with ``verbose=True`` when it fails (as optax).
FLAG_INTERVAL_NOT_FOUND = ("No interval satisfying curvature condition. Consider increasing "
                           "maximal possible stepsize of the linesearch.")
FLAG_INTERVAL_TOO_SMALL = "Length of searched interval has been reduced below threshold."
FLAG_CURVATURE_COND_NOT_SATISFIED = ("Returning stepsize with sufficient decrease but "
                                     "curvature condition not satisfied.")
FLAG_NO_STEPSIZE_FOUND = "Linesearch failed, no stepsize satisfying sufficient decrease found."
FLAG_NOT_A_DESCENT_DIRECTION = ("The linesearch failed because the provided direction is not "
                                "a descent direction. ")


# --------------------------------------------------------------------------- shared helpers

def _value_dtype(params: Params) -> Any:
    """The dtype of values and step sizes: the real dtype of the first parameter's."""
    return jnp.real(jnp.zeros((), jnp.asarray(tree.leaves(params)[0]).dtype)).dtype


def _fn_kwargs(name: str, params: Params, value: Any, grad: Updates, value_fn: Any,
               extra_args: dict[str, Any]) -> dict[str, Any]:
    """The keywords of ``extra_args`` for ``value_fn``, after checking that ``update`` got
    the parameters and the three keywords a line search needs."""
    missing = [k for k, v in (("value", value), ("grad", grad), ("value_fn", value_fn))
               if v is None]
    if missing:
        raise TypeError(f"{name}.update: missing the keyword argument(s) "
                        f"{', '.join(f'`{k}`' for k in missing)}; a line search needs the "
                        "objective's value and gradient at `params` and the objective: "
                        "update(updates, state, params, value=..., grad=..., value_fn=...)")
    if not callable(value_fn):
        raise TypeError(f"{name}.update: `value_fn` must be the objective, a function of the "
                        f"parameters, got {type(value_fn).__name__}")
    if params is None:
        raise ValueError(f"{name}.update: {NO_PARAMS_MSG}")
    fn_kwargs, rest = split_keywords(value_fn, extra_args)
    if rest:
        raise TypeError(f"Unexpected keyword arguments passed to `{name}.update`. These "
                        f"arguments were not consumed by `value_fn`: {sorted(rest)}. Ensure "
                        "that all extra keyword arguments are accepted by `value_fn`.")
    return fn_kwargs


def _violation(error: Any) -> Any:
    """How much a criterion ``error <= 0`` is violated: ``max(error, 0)``, NaN as inf."""
    error = jnp.maximum(error, 0.0)
    return jnp.where(jnp.isnan(error), jnp.inf, error)


def _cond_print(condition: Any, message: str, **kwargs: Any) -> None:
    """``debug.print(message, **kwargs)`` when ``condition`` holds at run time."""
    lax.cond(condition, lambda: debug.print(message, ordered=True, **kwargs), lambda: None)


# --------------------------------------------------------------------------- backtracking

class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did: its ``num_linesearch_steps`` and the
    ``decrease_error`` it ended with (0 when the decrease was sufficient)."""

    num_linesearch_steps: Any
    decrease_error: Any


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The state of ``scale_by_backtracking_linesearch``: the ``learning_rate`` it found,
    the objective's ``value`` there, its ``grad`` there (with ``store_grad``, else None), for
    ``value_and_grad_from_state``, and the search's ``info``."""

    learning_rate: Any
    value: Any
    grad: Optional[Updates]
    info: BacktrackingLinesearchInfo


class _BacktrackingSearch(NamedTuple):
    """The carry of the backtracking loop."""

    learning_rate: Any
    new_value: Any
    new_grad: Updates
    decrease_error: Any
    iter_num: Any


def scale_by_backtracking_linesearch(
        max_backtracking_steps: int, slope_rtol: float = 1e-4, decrease_factor: float = 0.8,
        increase_factor: float = 1.5, max_learning_rate: float = 1.0, atol: float = 0.0,
        rtol: float = 0.0, store_grad: bool = False,
        verbose: bool = False) -> GradientTransformationExtraArgs:
    r"""Scale the updates by a step size that decreases the objective enough (Armijo).

    Starting from ``min(increase_factor * previous, max_learning_rate)``, the step size
    :math:`\eta` is multiplied by ``decrease_factor`` until

    .. math::
        f(w + \eta u) \le (1 + \delta) f(w) + \eta\, c\, \langle u, \nabla f(w) \rangle
        + \epsilon

    with :math:`u` the incoming updates, :math:`c` = ``slope_rtol``, :math:`\delta` =
    ``rtol`` and :math:`\epsilon` = ``atol``, or ``max_backtracking_steps`` are spent; the
    updates are scaled by it (by 0 when every try gave inf or NaN). The criterion can be met
    only along a descent direction (:math:`\langle u, \nabla f(w) \rangle < 0`), such as
    ``sgd``'s. ``store_grad`` keeps the gradient at the accepted point, so that
    ``value_and_grad_from_state`` saves its computation at the next step; ``verbose`` prints
    a diagnosis when the search fails.

    Its ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` takes
    the objective ``value_fn`` and its value and gradient at ``params``; the other keywords
    are passed to ``value_fn`` (each must be one of its arguments).

    Example:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> def fn(params): return jnp.sum(params ** 2)
        >>> solver = optim.chain(optim.sgd(learning_rate=1.0),
        ...                      optim.scale_by_backtracking_linesearch(
        ...                          max_backtracking_steps=15, store_grad=True))
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> opt_state = solver.init(params)
        >>> value_and_grad = optim.value_and_grad_from_state(fn)
        >>> for _ in range(3):
        ...     value, grad = value_and_grad(params, state=opt_state)
        ...     updates, opt_state = solver.update(grad, opt_state, params, value=value,
        ...                                        grad=grad, value_fn=fn)
        ...     params = optim.apply_updates(params, updates)
        ...     print(f"Objective function: {float(fn(params)):.2E}")
        Objective function: 5.04E+00
        Objective function: 1.81E+00
        Objective function: 6.53E-01

    References:
        Vaswani et al., Painless Stochastic Gradient, 2019;
        Nocedal and Wright, Numerical Optimization, 1999.
    """
    name = "scale_by_backtracking_linesearch"

    def init(params):
        dtype = _value_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.array(1.0, dtype), value=jnp.array(jnp.inf, dtype),
            grad=tree_zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(jnp.asarray(0), jnp.array(jnp.inf, dtype)))

    def decrease_error(learning_rate, slope, value, new_value):
        return _violation(new_value - (1.0 + rtol) * value
                          - learning_rate * slope_rtol * slope)

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None,
               **extra_args):
        fn = functools.partial(value_fn, **_fn_kwargs(name, params, value, grad, value_fn,
                                                      extra_args))
        # the slope of eta -> f(params + eta * updates) at 0: negative along a descent
        # direction
        slope = tree_real(tree_vdot(updates, tree_conj(grad)))

        def searching(search):
            return ~(search.decrease_error <= atol) & (search.iter_num <= max_backtracking_steps)

        def backtrack(search):
            learning_rate = jnp.where(search.iter_num > 0,
                                      decrease_factor * search.learning_rate,
                                      search.learning_rate)
            new_params = tree_add_scale(params, learning_rate, updates)
            if store_grad:
                new_value, pullback = vjp(fn, new_params)
                error = decrease_error(learning_rate, slope, value, new_value)
                # the gradient only at the point the search stops at
                new_grad = lax.cond((error <= atol) | (search.iter_num == max_backtracking_steps),
                                    lambda: pullback(jnp.ones_like(new_value))[0],
                                    lambda: search.new_grad)
            else:
                new_value = fn(new_params)
                error = decrease_error(learning_rate, slope, value, new_value)
                new_grad = search.new_grad
            return tree_cast_like(_BacktrackingSearch(learning_rate, new_value, new_grad, error,
                                                      search.iter_num + 1), search)

        search = lax.while_loop(searching, backtrack, _BacktrackingSearch(
            learning_rate=jnp.minimum(increase_factor * state.learning_rate, max_learning_rate),
            new_value=value, new_grad=tree_zeros_like(params), decrease_error=jnp.array(jnp.inf),
            iter_num=0))
        # no step where every try gave inf or NaN
        learning_rate = jnp.where(jnp.isinf(search.decrease_error), 0.0, search.learning_rate)
        if verbose:
            _cond_print(search.decrease_error > atol,
                        "INFO: fungrad.optim.scale_by_backtracking_linesearch:\nBacktracking "
                        "linesearch failed to find a stepsize ensuring sufficient decrease.\n"
                        "Value at current params: {value},\nSlope along update direction: "
                        "{slope}\nStepsize: {stepsize}\nDecrease Error: {decrease_error}",
                        stepsize=search.learning_rate, decrease_error=search.decrease_error,
                        value=value, slope=slope)
            _cond_print(jnp.isinf(search.decrease_error),
                        "Using a stepsize of 0 to avoid infinite or nan values.")
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=learning_rate, value=search.new_value,
            grad=search.new_grad if store_grad else None,
            info=BacktrackingLinesearchInfo(search.iter_num, search.decrease_error))
        return tree_scale(learning_rate, updates), tree_cast_like(new_state, state)
    return GradientTransformationExtraArgs(init, update)


# --------------------------------------------------------------------------- zoom

class _ZoomConfig(NamedTuple):
    """The hyperparameters of the zoom line search (those of ``scale_by_zoom_linesearch``)."""

    max_linesearch_steps: Any
    max_stepsize: Any
    tol: Any
    increase_factor: Any
    slope_rtol: Any
    curv_rtol: Any
    approx_dec_rtol: Any
    interval_threshold: Any
    verbose: bool


class _ZoomSearch(NamedTuple):
    """The carry of the zoom loop.

    The trial point (``stepsize`` and the ``value``, ``grad`` and ``slope`` there), the
    errors of both criteria there, the phase (``interval_found``) and the end (``done``,
    ``failed``); once an interval is found, its ends ``low`` and ``high`` (``low`` has the
    smaller value, not the smaller step) and a third point for the cubic fit; and the
    best point with a sufficient decrease so far (``safe_*``), the answer when the curvature
    criterion cannot be met.
    """

    count: Any
    params: Params
    updates: Updates
    stepsize_guess: Any
    stepsize: Any
    value: Any
    grad: Updates
    slope: Any
    value_init: Any
    slope_init: Any
    decrease_error: Any
    curvature_error: Any
    error: Any
    interval_found: Any
    done: Any
    failed: Any
    low: Any
    value_low: Any
    slope_low: Any
    high: Any
    value_high: Any
    slope_high: Any
    cubic_ref: Any
    value_cubic_ref: Any
    safe_stepsize: Any
    safe_value: Any
    safe_grad: Updates


def _zoom_start(updates: Updates, params: Params, value: Any, grad: Updates,
                stepsize_guess: Any) -> _ZoomSearch:
    """The search before its first step: the trial point is ``params`` (step 0)."""
    slope, dtype = tree_real(tree_vdot(updates, grad)), _value_dtype(params)
    zero, inf, false = jnp.asarray(0.0), jnp.asarray(jnp.inf), jnp.asarray(False)
    return _ZoomSearch(
        count=jnp.asarray(0), params=params, updates=updates, stepsize_guess=stepsize_guess,
        stepsize=jnp.asarray(0.0, dtype), value=jnp.array(value, dtype=dtype), grad=grad,
        slope=slope,
        value_init=value, slope_init=slope, decrease_error=inf, curvature_error=inf, error=inf,
        interval_found=false, done=false, failed=false,
        low=zero, value_low=value, slope_low=slope, high=zero, value_high=value,
        slope_high=slope, cubic_ref=zero, value_cubic_ref=value,
        safe_stepsize=zero, safe_value=value, safe_grad=grad)


def _value_and_slope(value_and_grad_fn: Callable, fn_kwargs: dict[str, Any], params: Params,
                     stepsize: Any, updates: Updates) -> tuple[Any, Updates, Any]:
    """The objective's value and gradient at ``params + stepsize * updates`` and its slope
    along ``updates`` there."""
    value, grad = value_and_grad_fn(tree_add_scale(params, stepsize, updates), **fn_kwargs)
    return value, grad, tree_real(tree_vdot(tree_conj(grad), updates))


def _decrease_error(cfg: _ZoomConfig, stepsize: Any, value: Any, slope: Any, value_init: Any,
                    slope_init: Any) -> Any:
    """The violation of the sufficient decrease criterion (Armijo's), or of Hager and
    Zhang's approximate one where the value is already within ``approx_dec_rtol`` of the
    initial one (Armijo's resolves differences of about the square root of the machine
    epsilon only)."""
    error = value - value_init - cfg.slope_rtol * stepsize * slope_init
    if cfg.approx_dec_rtol is not None:
        approx_error = jnp.maximum(
            slope - (2 * cfg.slope_rtol - 1.0) * slope_init,
            value - value_init - cfg.approx_dec_rtol * jnp.abs(value_init))
        error = jnp.minimum(approx_error, error)
    return _violation(error)


def _curvature_error(cfg: _ZoomConfig, slope: Any, slope_init: Any) -> Any:
    """The violation of the small curvature criterion (the strong Wolfe one)."""
    return _violation(jnp.abs(slope) - cfg.curv_rtol * jnp.abs(slope_init))


def _try_step(cfg: _ZoomConfig, value_and_grad_fn: Callable, fn_kwargs: dict[str, Any],
              s: _ZoomSearch, stepsize: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
    """The objective at ``stepsize`` along the updates: its value, gradient and slope, the
    violations of the two Wolfe criteria there, and the larger of them."""
    value, grad, slope = _value_and_slope(value_and_grad_fn, fn_kwargs, s.params, stepsize,
                                          s.updates)
    decrease_error = _decrease_error(cfg, stepsize, value, slope, s.value_init, s.slope_init)
    curvature_error = _curvature_error(cfg, slope, s.slope_init)
    return (value, grad, slope, decrease_error, curvature_error,
            jnp.maximum(decrease_error, curvature_error))


def _search_interval(cfg: _ZoomConfig, value_and_grad_fn: Callable,
                     fn_kwargs: dict[str, Any], s: _ZoomSearch) -> _ZoomSearch:
    """One step of the search for an interval holding a good step (Nocedal and Wright's
    Algorithm 3.5): try the guess first, then ``increase_factor`` times the last try."""
    stepsize = jnp.where(s.count == 0, s.stepsize_guess, cfg.increase_factor * s.stepsize)
    if cfg.max_stepsize is None:
        max_stepsize_reached = jnp.asarray(False)
    else:
        max_stepsize_reached = stepsize >= cfg.max_stepsize
        stepsize = jnp.minimum(stepsize, cfg.max_stepsize)
    value, grad, slope, decrease_error, curvature_error, error = _try_step(
        cfg, value_and_grad_fn, fn_kwargs, s, stepsize)
    safe_stepsize, safe_value, safe_grad = tree_where(
        decrease_error <= cfg.tol, [stepsize, value, grad],
        [s.safe_stepsize, s.safe_value, s.safe_grad])
    # the new point ends the interval: as its high end (no decrease, or a larger value than
    # the last try's) or, where the slope turned nonnegative, as its low end
    set_high_to_new = (decrease_error > 0.0) | ((value >= s.value) & (s.count > 0))
    set_low_to_new = (slope >= 0.0) & ~set_high_to_new
    new, prev = [stepsize, value, slope], [s.stepsize, s.value, s.slope]
    low, value_low, slope_low, high, value_high, slope_high = tree_where(
        set_low_to_new, new + prev, prev + new)
    interval_found = set_high_to_new | set_low_to_new | (error <= cfg.tol)
    # at the largest step without an interval: no larger step to meet the curvature
    # criterion, so that step is taken
    done = (error <= cfg.tol) | (max_stepsize_reached & ~interval_found)
    if cfg.verbose:
        _cond_print(max_stepsize_reached & ~interval_found,
                    "INFO: fungrad.optim.scale_by_zoom_linesearch:\nValue at current params: "
                    "{value_init}\nSlope along update direction: {slope_init}\nStepsize "
                    "reached: {stepsize}\nDecrease Error: {decrease_error}\nCurvature Error: "
                    "{curvature_error}" + FLAG_INTERVAL_NOT_FOUND + "\n"
                    + FLAG_CURVATURE_COND_NOT_SATISFIED,
                    value_init=s.value_init, slope_init=s.slope_init, stepsize=stepsize,
                    decrease_error=decrease_error, curvature_error=curvature_error)
    new_s = s._replace(
        count=safe_increment(s.count), stepsize=stepsize, value=value, grad=grad, slope=slope,
        decrease_error=decrease_error, curvature_error=curvature_error, error=error,
        interval_found=interval_found, done=done,
        failed=(s.count + 1 >= cfg.max_linesearch_steps) & ~done,
        low=low, value_low=value_low, slope_low=slope_low, high=high, value_high=value_high,
        slope_high=slope_high, cubic_ref=low, value_cubic_ref=value_low,
        safe_stepsize=safe_stepsize, safe_value=safe_value, safe_grad=safe_grad)
    return tree_cast_like(new_s, s)


def _cubicmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, c: Any, fc: Any) -> Any:
    """The critical point of the cubic through ``(a, fa)``, ``(b, fb)``, ``(c, fc)`` with
    slope ``fpa`` at ``a`` (NaN where there is none, and the point is then not used)."""
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    d1 = jnp.array([[dc ** 2, -(db ** 2)], [-(dc ** 3), db ** 3]])
    rhs = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    cubic, square = jnp.dot(d1, rhs, precision=lax.Precision.HIGHEST) / denom
    return a + (-square + jnp.sqrt(square * square - 3.0 * cubic * fpa)) / (3.0 * cubic)


def _quadmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any) -> Any:
    """The critical point of the parabola through ``(a, fa)`` and ``(b, fb)`` with slope
    ``fpa`` at ``a``."""
    db = b - a
    square = (fb - fa - fpa * db) / (db ** 2)
    return a - fpa / (2.0 * square)


def _zoom_into_interval(cfg: _ZoomConfig, value_and_grad_fn: Callable,
                        fn_kwargs: dict[str, Any], s: _ZoomSearch) -> _ZoomSearch:
    """One step of the zoom into the interval (Nocedal and Wright's Algorithm 3.6): try the
    minimum of a cubic fit if it is well inside the interval, else of a quadratic fit if it
    is, else the middle; then shrink the interval around a good step."""
    delta = jnp.abs(s.high - s.low)
    left, right = jnp.minimum(s.high, s.low), jnp.maximum(s.high, s.low)
    cubic = _cubicmin(s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref,
                      s.value_cubic_ref)
    use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
    quad = _quadmin(s.low, s.value_low, s.slope_low, s.high, s.value_high)
    use_quad = ~use_cubic & (quad > left + 0.1 * delta) & (quad < right - 0.1 * delta)
    middle = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (s.low + s.high) / 2.0))
    value, grad, slope, decrease_error, curvature_error, error = _try_step(
        cfg, value_and_grad_fn, fn_kwargs, s, middle)
    # the safe point: the smallest value with a sufficient decrease
    safe_stepsize, safe_value, safe_grad = tree_where(
        (decrease_error <= cfg.tol) & (value < s.safe_value), [middle, value, grad],
        [s.safe_stepsize, s.safe_value, s.safe_grad])
    done = error <= cfg.tol
    set_high_to_middle = (decrease_error > 0.0) | (value >= s.value_low)
    set_high_to_low = (slope * (s.high - s.low) >= 0.0) & ~set_high_to_middle
    mid = [middle, value, slope]
    low = [s.low, s.value_low, s.slope_low]
    high = [s.high, s.value_high, s.slope_high]
    new_high = tree_where(set_high_to_low, low, tree_where(set_high_to_middle, mid, high))
    new_low = tree_where(~set_high_to_middle, mid, low)
    # the end that moved away is the third point of the next cubic fit
    cubic_ref, value_cubic_ref = tree_where(set_high_to_middle | set_high_to_low,
                                            high[:2], low[:2])
    # an interval narrower than ``interval_threshold`` ends the search once a step with a
    # sufficient decrease is known (very steep objectives need tiny steps: go on otherwise)
    too_small = delta <= cfg.interval_threshold
    failed = ((s.count + 1 >= cfg.max_linesearch_steps) | (too_small & (safe_stepsize > 0.0))
              ) & ~done
    new_s = s._replace(
        count=safe_increment(s.count), stepsize=middle, value=value, grad=grad, slope=slope,
        decrease_error=decrease_error, curvature_error=curvature_error, error=error,
        done=done, failed=failed,
        low=new_low[0], value_low=new_low[1], slope_low=new_low[2],
        high=new_high[0], value_high=new_high[1], slope_high=new_high[2],
        cubic_ref=cubic_ref, value_cubic_ref=value_cubic_ref,
        safe_stepsize=safe_stepsize, safe_value=safe_value, safe_grad=safe_grad)
    return tree_cast_like(new_s, s)


def _print_failure(s: _ZoomSearch) -> None:
    """``verbose``'s diagnosis of a search that found no step with a sufficient decrease."""
    debug.print(FLAG_NO_STEPSIZE_FOUND, ordered=True)
    descent = s.slope_init < 0.0
    outside_domain = jnp.isinf(s.decrease_error)
    eps = jnp.finfo(jnp.float32).eps
    _cond_print(~descent, FLAG_NOT_A_DESCENT_DIRECTION
                + "The slope (={slope_init}) at stepsize=0 should be negative",
                slope_init=s.slope_init)
    _cond_print(descent, "Consider augmenting the maximal number of linesearch iterations.")
    _cond_print((s.stepsize < eps) & descent,
                "Computed stepsize (={stepsize}) is below machine precision (={eps}), consider "
                "passing to higher precision like x64, using "
                "fungrad.config.update('jax_enable_x64', True).", stepsize=s.stepsize, eps=eps)
    _cond_print((jnp.abs(s.slope_init) > 1e16) & descent,
                "Very large absolute slope at stepsize=0. (|slope|={abs_slope_init}). The "
                "objective is badly conditioned. Consider reparameterizing objective (e.g., "
                "normalizing parameters) or finding a better guess for the initial parameters "
                "for the solver.", abs_slope_init=jnp.abs(s.slope_init))
    _cond_print(outside_domain, "Cannot even make a step without getting Inf or Nan. The "
                "linesearch won't make a step and the optimizer is stuck.")
    _cond_print(~outside_domain, "Making an unsafe step, not decreasing enough the objective. "
                "Convergence of the solver is compromised as it does not reduce values.")


def _print_safe_step(cfg: _ZoomConfig, s: _ZoomSearch) -> None:
    """``verbose``'s report of a failed search."""
    debug.print("INFO: fungrad.optim.scale_by_zoom_linesearch:\nValue at current params: "
                "{value_init}\nSlope along update direction: {slope_init}\nStepsize reached: "
                "{stepsize}\nDecrease Error: {decrease_error}\nCurvature Error: "
                "{curvature_error}", value_init=s.value_init, slope_init=s.slope_init,
                stepsize=s.stepsize, decrease_error=s.decrease_error,
                curvature_error=s.curvature_error, ordered=True)
    interval_length = jnp.abs(s.low - s.high)
    _cond_print(interval_length <= cfg.interval_threshold,
                FLAG_INTERVAL_TOO_SMALL + " Interval length: {interval_length}.",
                interval_length=interval_length)
    lax.cond(s.safe_stepsize > 0.0,
             lambda: debug.print(FLAG_CURVATURE_COND_NOT_SATISFIED + " Stepsize ensuring "
                                 "sufficient decrease: {safe_stepsize}.",
                                 safe_stepsize=s.safe_stepsize, ordered=True),
             lambda: _print_failure(s))


def _take_safe_step(cfg: _ZoomConfig, s: _ZoomSearch) -> _ZoomSearch:
    """A failed search ends at its safe point, if it has one (or if the last try gave inf or
    NaN: then at step 0), else at its last try."""
    take_safe = (s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error)
    stepsize, value, grad = tree_where(take_safe, [s.safe_stepsize, s.safe_value, s.safe_grad],
                                       [s.stepsize, s.value, s.grad])
    if cfg.verbose:
        _print_safe_step(cfg, s)
    return tree_cast_like(s._replace(stepsize=stepsize, value=value, grad=grad), s)


def _zoom_step(cfg: _ZoomConfig, value_and_grad_fn: Callable, fn_kwargs: dict[str, Any],
               s: _ZoomSearch) -> _ZoomSearch:
    """One step of the zoom line search: of the interval search, or of the zoom once an
    interval is found."""
    s_next = lax.cond(s.interval_found,
                      functools.partial(_zoom_into_interval, cfg, value_and_grad_fn, fn_kwargs),
                      functools.partial(_search_interval, cfg, value_and_grad_fn, fn_kwargs), s)
    s_next = lax.cond(s_next.failed, functools.partial(_take_safe_step, cfg), lambda x: x,
                      s_next)
    return tree_cast_like(s_next, s)


def _zoom_searching(s: _ZoomSearch) -> Any:
    return ~(s.done | s.failed)


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom search did: its ``num_linesearch_steps`` and the errors of the
    sufficient decrease (``decrease_error``) and small curvature (``curvature_error``)
    criteria at the step it took (0 where met).

    A positive curvature error is benign (the largest step allowed may be too small); a
    positive decrease error means the values may not decrease monotonically. Pass
    ``verbose=True`` to ``scale_by_zoom_linesearch`` for a diagnosis.
    """

    num_linesearch_steps: Any
    decrease_error: Any
    curvature_error: Any


class ScaleByZoomLinesearchState(NamedTuple):
    """The state of ``scale_by_zoom_linesearch``: the ``learning_rate`` it found, the
    objective's ``value`` and ``grad`` there (for ``value_and_grad_from_state``) and the
    search's ``info``."""

    learning_rate: Any
    value: Any
    grad: Updates
    info: ZoomLinesearchInfo


def scale_by_zoom_linesearch(
        max_linesearch_steps: int, max_learning_rate: Optional[float] = None, tol: float = 0.0,
        increase_factor: float = 2.0, slope_rtol: float = 1e-4, curv_rtol: float = 0.9,
        approx_dec_rtol: Optional[float] = 1e-6, stepsize_precision: float = 1e-5,
        initial_guess_strategy: str = "keep",
        verbose: bool = False) -> GradientTransformationExtraArgs:
    r"""Scale the updates by a step size meeting the strong Wolfe conditions.

    The step size :math:`\eta` along the updates :math:`u` decreases the objective enough
    (Armijo) and leaves a small slope (curvature):

    .. math::
        f(w + \eta u) \le f(w) + c_1 \eta \langle u, \nabla f(w) \rangle + \epsilon,
        \qquad |\langle \nabla f(w + \eta u), u \rangle|
        \le c_2 |\langle \nabla f(w), u \rangle| + \epsilon

    with :math:`c_1` = ``slope_rtol``, :math:`c_2` = ``curv_rtol``, :math:`\epsilon` =
    ``tol``. Close to a minimum (values within ``approx_dec_rtol`` of :math:`|f(w)|`), the
    first condition becomes Hager and Zhang's approximate decrease,
    :math:`\langle \nabla f(w + \eta u), u \rangle \le (2 c_1 - 1)
    \langle \nabla f(w), u \rangle`, which resolves smaller differences of values
    (``approx_dec_rtol=None``: Armijo's only).

    The search multiplies a guess (1 with ``initial_guess_strategy="one"``, the last step's
    with ``"keep"``) by ``increase_factor`` until an interval holding such a step is found
    (never beyond ``max_learning_rate``), then zooms into it by cubic, quadratic or
    bisection steps. After ``max_linesearch_steps``, or once the interval is narrower than
    ``stepsize_precision``, it takes the best step with a sufficient decrease it has seen.
    ``"one"`` suits quasi-Newton directions (``lbfgs``), ``"keep"`` gradient steps;
    ``curv_rtol=jnp.inf`` drops the curvature condition. ``verbose`` prints a diagnosis
    when the search fails.

    Its ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` takes
    the objective ``value_fn`` and its value and gradient at ``params``; the other keywords
    are passed to ``value_fn`` (each must be one of its arguments). The state keeps the
    value and gradient at the new point, which ``value_and_grad_from_state`` reuses.

    Example:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> def fn(params, x, y): return optim.l2_loss(x.dot(params), y)
        >>> solver = optim.chain(optim.sgd(learning_rate=1.0),
        ...                      optim.scale_by_zoom_linesearch(max_linesearch_steps=15))
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> opt_state = solver.init(params)
        >>> x, y = jnp.array([3.0, 2.0, 1.0]), jnp.array(0.0)
        >>> print(f"Objective function: {float(fn(params, x, y)):.2E}")
        Objective function: 5.00E+01
        >>> value, grad = fungrad.value_and_grad(fn)(params, x, y)
        >>> updates, opt_state = solver.update(grad, opt_state, params, value=value,
        ...                                    grad=grad, value_fn=fn, x=x, y=y)
        >>> params = optim.apply_updates(params, updates)
        >>> print(f"Objective function: {float(fn(params, x, y)):.2E}")
        Objective function: 2.56E-13

    References:
        Nocedal and Wright, Numerical Optimization, 1999, Algorithms 3.5 and 3.6;
        Hager and Zhang, Algorithm 851: CG_DESCENT, 2006.
    """
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError(f"Unknown initial guess strategy: {initial_guess_strategy}")
    name = "scale_by_zoom_linesearch"
    cfg = _ZoomConfig(max_linesearch_steps, max_learning_rate, tol, increase_factor,
                      slope_rtol, curv_rtol, approx_dec_rtol, stepsize_precision, verbose)

    def init(params):
        dtype = _value_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype), value=jnp.asarray(jnp.inf, dtype),
            grad=tree_zeros_like(params),
            info=ZoomLinesearchInfo(jnp.asarray(0), jnp.asarray(jnp.inf), jnp.asarray(jnp.inf)))

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None,
               **extra_args):
        fn_kwargs = _fn_kwargs(name, params, value, grad, value_fn, extra_args)
        guess = jnp.asarray(1.0) if initial_guess_strategy == "one" else state.learning_rate
        s = lax.while_loop(_zoom_searching,
                           functools.partial(_zoom_step, cfg, value_and_grad(value_fn),
                                             fn_kwargs),
                           _zoom_start(updates, params, value, grad, guess))
        new_state = ScaleByZoomLinesearchState(
            learning_rate=s.stepsize, value=s.value, grad=s.grad,
            info=ZoomLinesearchInfo(s.count, s.decrease_error, s.curvature_error))
        return tree_scale(s.stepsize, updates), tree_cast_like(new_state, state)
    return GradientTransformationExtraArgs(init, update)


# --------------------------------------------------------------------------- reuse

def value_and_grad_from_state(value_fn: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """``value_and_grad(value_fn)`` that takes the value and gradient from an optimiser state
    when it holds them: a line search computes both at the point it accepts, which is where
    the next step needs them, so a deterministic objective is not evaluated twice.

    The returned ``fn(params, *args, state, **kwargs)`` reads the ``value`` and ``grad``
    fields of ``state`` (anywhere in it; there must be one of each, and ``grad`` must not
    be None: use ``store_grad=True`` with the backtracking search) and calls
    ``value_and_grad(value_fn)(params, *args, **kwargs)`` instead where the value is inf or
    NaN, as it is before the first step.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import optim
        >>> def fn(x): return jnp.sum(x ** 2)
        >>> solver = optim.lbfgs()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> opt_state = solver.init(params)
        >>> value_and_grad = optim.value_and_grad_from_state(fn)
        >>> value, grad = value_and_grad(params, state=opt_state)  # computed: no value yet
        >>> value
        Array(14., dtype=float32)
    """
    def value_and_grad_fn(params: Params, *fn_args: Any, state: OptState, **fn_kwargs: Any):
        value, grad = tree_get(state, "value"), tree_get(state, "grad")
        if value is None or grad is None:
            raise ValueError("value_and_grad_from_state: no `value` or no `grad` found in "
                             "the state. Make sure that these values are stored in the "
                             "state by the optimizer (a line search; the backtracking one "
                             "with store_grad=True).")
        return lax.cond(jnp.isfinite(value), lambda: (value, grad),
                        lambda: value_and_grad(value_fn)(params, *fn_args, **fn_kwargs))
    return value_and_grad_fn
