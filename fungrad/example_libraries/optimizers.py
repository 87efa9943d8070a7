"""JAX's example optimizers (``jax.example_libraries.optimizers``), for code written against
them: each is an ``(init_fun, update_fun, get_params)`` triple over pytrees of params.

* ``init_fun(params) -> opt_state`` builds the state (the params and, say, Adam's moments);
* ``update_fun(step, grads, opt_state) -> opt_state`` takes one step, ``step`` being the
  step index the schedules read (a Python int or a traced integer under ``jit``);
* ``get_params(opt_state) -> params`` gives the params back.

The state is an ``OptimizerState`` pytree, so it passes through ``fungrad.jit``;
``unpack_optimizer_state``/``pack_optimizer_state`` turn it into a plain tree of
``JoinPoint``s and back, for saving. A step size is a number or a schedule, a function of
the step index (``exponential_decay``, ``piecewise_constant``, ...). The results equal
``jax.example_libraries.optimizers``' within rounding; new code may prefer
``fungrad.optim`` (optax's shape).

Examples:
    >>> import fungrad
    >>> import fungrad.numpy as jnp
    >>> from fungrad.example_libraries import optimizers
    >>> opt_init, opt_update, get_params = optimizers.adam(0.1)
    >>> loss = lambda p: jnp.sum(p["w"] ** 2)
    >>> @fungrad.jit
    ... def step(i, opt_state):
    ...     return opt_update(i, fungrad.grad(loss)(get_params(opt_state)), opt_state)
    >>> opt_state = opt_init({"w": jnp.array([1.0, -2.0])})
    >>> for i in range(100):
    ...     opt_state = step(i, opt_state)
    >>> bool(loss(get_params(opt_state)) < 1e-2)
    True
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple

import fungrad.numpy as jnp
from fungrad import tree as pytree
from fungrad._core.namespace import public_dir

__all__ = [
    "Optimizer", "OptimizerState", "optimizer",
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_momentum", "adam", "adamax",
    "sm3",
    "constant", "exponential_decay", "inverse_time_decay", "polynomial_decay",
    "piecewise_constant", "make_schedule",
    "l2_norm", "clip_grads", "JoinPoint", "unpack_optimizer_state", "pack_optimizer_state",
    "Schedule", "InitFn", "UpdateFn", "ParamsFn"]
__dir__ = public_dir(__all__)

# jax's names for the types in the signatures; those that are another library's classes
# (``Any``, ``int``) stay out of ``__all__`` (the API reference documents fungrad's objects)
Params = Any  # a pytree of arrays
State = Any  # one array's state, a pytree (the array and its moments)
Updates = Any  # gradients: a pytree shaped as the params
Step = int
Schedule = Callable[[Step], Any]


class OptimizerState(NamedTuple):
    """An optimizer's state over a pytree of params, as ``init_fun`` makes it.

    ``packed_state`` holds, per leaf of the params, the leaves of that array's state;
    ``tree_def`` is the structure of the params and ``subtree_defs`` that of each array's
    state. It is a pytree whose only children are ``packed_state``'s arrays, so it passes
    through ``jit`` (the structures are static).
    """
    packed_state: Any
    tree_def: Any
    subtree_defs: Any


# A namedtuple is a pytree already (with all three fields as children); fungrad's own
# registration, in its namespace, replaces that and optree warns that it does.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "PyTree type .*OptimizerState", UserWarning)
    pytree.register_pytree_node(OptimizerState,
                              lambda s: ((s.packed_state,), (s.tree_def, s.subtree_defs)),
                              lambda aux, children: OptimizerState(children[0], *aux))

InitFn = Callable[[Params], OptimizerState]
UpdateFn = Callable[[Step, Updates, OptimizerState], OptimizerState]
ParamsFn = Callable[[OptimizerState], Params]


class Optimizer(NamedTuple):
    """The ``(init_fn, update_fn, params_fn)`` triple an optimizer constructor returns
    (unpacked as ``opt_init, opt_update, get_params``)."""
    init_fn: InitFn
    update_fn: UpdateFn
    params_fn: ParamsFn


def _flatten_all(states: list) -> tuple[tuple, tuple]:
    """The leaves and the structure of each of ``states``."""
    flat = [pytree.flatten(s) for s in states]
    return tuple(leaves for leaves, _ in flat), tuple(treedef for _, treedef in flat)


def optimizer(opt_maker: Callable[..., tuple[Callable, Callable, Callable]]
              ) -> Callable[..., Optimizer]:
    """Lift an optimizer written for one array to pytrees of arrays (a decorator).

    ``opt_maker(*args)`` returns ``(init, update, get_params)`` working on one array:
    ``init(x) -> state``, ``update(step, g, state) -> state`` and ``get_params(state) -> x``,
    a state being any pytree. The decorated constructor returns an ``Optimizer`` whose
    functions apply them to each leaf of the params and keep the states in an
    ``OptimizerState``.
    """
    name = f"optimizers.{getattr(opt_maker, '__name__', 'optimizer')}"

    def unpack(opt_state: Any, fun: str) -> tuple[list, Any, tuple]:
        if not isinstance(opt_state, OptimizerState):
            raise TypeError(f"{name}: {fun}'s opt_state must be the OptimizerState that "
                            f"init_fun returns, got {type(opt_state).__name__}")
        flat, treedef, subtrees = opt_state
        return [pytree.unflatten(d, leaves) for d, leaves in zip(subtrees, flat)], treedef, subtrees

    @functools.wraps(opt_maker)
    def make(*args: Any, **kwargs: Any) -> Optimizer:
        init, update, get_params = opt_maker(*args, **kwargs)

        @functools.wraps(init)
        def tree_init(params):
            leaves, treedef = pytree.flatten(params)
            flat, subtrees = _flatten_all([init(x) for x in leaves])
            return OptimizerState(flat, treedef, subtrees)

        @functools.wraps(update)
        def tree_update(i, grads, opt_state):
            states, treedef, subtrees = unpack(opt_state, "update_fun")
            grad_leaves, grad_treedef = pytree.flatten(grads)
            if grad_treedef != treedef:
                raise TypeError(f"{name}: update_fun's grads must have the structure of the "
                                f"params the state was initialised with: params {treedef}, "
                                f"grads {grad_treedef}")
            new = [update(i, g, s) for g, s in zip(grad_leaves, states)]
            flat, new_subtrees = _flatten_all(new)
            for before, after in zip(subtrees, new_subtrees):
                if before != after:
                    raise TypeError(f"{name}: the per-array update changed the structure of "
                                    f"its state from {before} to {after}")
            return OptimizerState(flat, treedef, subtrees)

        @functools.wraps(get_params)
        def tree_get_params(opt_state):
            states, treedef, _ = unpack(opt_state, "get_params")
            return pytree.unflatten(treedef, [get_params(s) for s in states])

        return Optimizer(tree_init, tree_update, tree_get_params)
    return make


def _get_params(state: tuple) -> Any:
    """The params of a state ``(x, *statistics)`` (most optimizers' per-array state)."""
    return state[0]


# --------------------------------------------------------------------------- optimizers

@optimizer
def sgd(step_size: float | Schedule) -> Optimizer:
    """Stochastic gradient descent: ``x <- x - step_size(i) * g``.

    ``step_size`` is a number or a schedule (a function of the step index), as for every
    optimizer here.
    """
    lr = make_schedule(step_size)

    def init(x0):
        return x0

    def update(i, g, x):
        return x - lr(i) * g

    def get_params(x):
        return x
    return Optimizer(init, update, get_params)


def _heavy_ball(step_size: float | Schedule, mass: float, look_ahead: bool) -> Optimizer:
    """``v <- mass * v + g``, then a step along ``v`` (``look_ahead``: along ``mass * v + g``,
    Nesterov's)."""
    lr = make_schedule(step_size)

    def init(x):
        return x, jnp.zeros_like(x)

    def update(i, g, state):
        x, v = state
        v = mass * v + g
        return x - lr(i) * (mass * v + g if look_ahead else v), v
    return init, update, _get_params


@optimizer
def momentum(step_size: float | Schedule, mass: float) -> Optimizer:
    """SGD with heavy-ball momentum: ``v <- mass * v + g``, ``x <- x - step_size(i) * v``."""
    return _heavy_ball(step_size, mass, look_ahead=False)


@optimizer
def nesterov(step_size: float | Schedule, mass: float) -> Optimizer:
    """SGD with Nesterov momentum: ``v <- mass * v + g``,
    ``x <- x - step_size(i) * (mass * v + g)``."""
    return _heavy_ball(step_size, mass, look_ahead=True)


def _inv_sqrt(s: Any) -> Any:
    """``1 / sqrt(s)`` where ``s > 0``, else 0 (accumulators that saw only zero
    gradients)."""
    return jnp.where(s > 0, 1.0 / jnp.sqrt(s), 0.0)


@optimizer
def adagrad(step_size: float | Schedule, momentum: float = 0.9) -> Optimizer:
    """Adagrad (Duchi et al., 2011), with momentum on the scaled gradient:
    ``G <- G + g^2``, ``m <- (1 - momentum) g / sqrt(G) + momentum * m``,
    ``x <- x - step_size(i) * m``."""
    lr = make_schedule(step_size)

    def init(x):
        return x, jnp.zeros_like(x), jnp.zeros_like(x)

    def update(i, g, state):
        x, g_sq, m = state
        g_sq = g_sq + jnp.square(g)
        m = (1.0 - momentum) * (g * _inv_sqrt(g_sq)) + momentum * m
        return x - lr(i) * m, g_sq, m
    return init, update, _get_params


@optimizer
def rmsprop(step_size: float | Schedule, gamma: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSProp: ``s <- gamma * s + (1 - gamma) g^2``, ``x <- x - step_size(i) g /
    sqrt(s + eps)``."""
    lr = make_schedule(step_size)

    def init(x):
        return x, jnp.zeros_like(x)

    def update(i, g, state):
        x, avg_sq = state
        avg_sq = avg_sq * gamma + jnp.square(g) * (1.0 - gamma)
        return x - lr(i) * g / jnp.sqrt(avg_sq + eps), avg_sq
    return init, update, _get_params


@optimizer
def rmsprop_momentum(step_size: float | Schedule, gamma: float = 0.9, eps: float = 1e-8,
                     momentum: float = 0.9) -> Optimizer:
    """RMSProp with momentum on the step: ``s`` as in ``rmsprop``,
    ``m <- momentum * m + step_size(i) g / sqrt(s + eps)``, ``x <- x - m``."""
    lr = make_schedule(step_size)

    def init(x):
        return x, jnp.zeros_like(x), jnp.zeros_like(x)

    def update(i, g, state):
        x, avg_sq, mom = state
        avg_sq = avg_sq * gamma + jnp.square(g) * (1.0 - gamma)
        mom = momentum * mom + lr(i) * g / jnp.sqrt(avg_sq + eps)
        return x - mom, avg_sq, mom
    return init, update, _get_params


def _bias(beta: float, like: Any, i: Any) -> Any:
    """``1 - beta^(i + 1)``, in ``like``'s dtype: the bias of a moment after step ``i``."""
    return 1 - jnp.asarray(beta, like.dtype) ** (i + 1)


@optimizer
def adam(step_size: float | Schedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba, 2015): moments ``m <- (1 - b1) g + b1 m`` and
    ``v <- (1 - b2) g^2 + b2 v``, bias-corrected to ``m^``, ``v^``;
    ``x <- x - step_size(i) m^ / (sqrt(v^) + eps)``."""
    lr = make_schedule(step_size)

    def init(x):
        return x, jnp.zeros_like(x), jnp.zeros_like(x)

    def update(i, g, state):
        x, m, v = state
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * jnp.square(g) + b2 * v
        m_hat, v_hat = m / _bias(b1, m, i), v / _bias(b2, m, i)
        return x - lr(i) * m_hat / (jnp.sqrt(v_hat) + eps), m, v
    return init, update, _get_params


@optimizer
def adamax(step_size: float | Schedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8) -> Optimizer:
    """AdaMax, Adam with an infinity norm: ``m`` as in Adam, ``u <- max(b2 u, |g|)``,
    ``x <- x - step_size(i) / (1 - b1^(i+1)) * m / (u + eps)``."""
    lr = make_schedule(step_size)

    def init(x):
        return x, jnp.zeros_like(x), jnp.zeros_like(x)

    def update(i, g, state):
        x, m, u = state
        m = (1 - b1) * g + b1 * m
        u = jnp.maximum(b2 * u, jnp.abs(g))
        return x - (lr(i) / _bias(b1, m, i)) * m / (u + eps), m, u
    return init, update, _get_params


@optimizer
def sm3(step_size: float | Schedule, momentum: float = 0.9) -> Optimizer:
    """SM3 (Anil et al., 2019), Adagrad with one accumulator per row, column, ... of each
    array instead of one per entry (memory linear in the sum of the dimensions).

    The squared-gradient accumulator of an entry is the minimum of its axes'
    accumulators plus ``g^2``; each axis then keeps the maximum over its slice. The step
    is Adagrad's, with ``momentum``. Scalars are treated as 1-element vectors.
    """
    lr = make_schedule(step_size)

    def along(v: Any, axis: int, ndim: int) -> Any:
        """The 1-D ``v`` as an ``ndim``-D array laid along ``axis``."""
        return jnp.expand_dims(v, [k for k in range(ndim) if k != axis])

    def init(x0):
        x = jnp.atleast_1d(x0)
        return x, jnp.zeros_like(x), [jnp.zeros(d, x.dtype) for d in x.shape], jnp.shape(x0)

    def update(i, g, state):
        x, m, vs, shape = state
        covers = [along(v, axis, x.ndim) for axis, v in enumerate(vs)]
        accum = functools.reduce(jnp.minimum, covers) + jnp.square(g)
        m = (1.0 - momentum) * (g * _inv_sqrt(accum)) + momentum * m
        vs = [accum.max(axis=tuple(k for k in range(x.ndim) if k != axis))
              for axis in range(x.ndim)]
        return x - lr(i) * m, m, vs, shape

    def get_params(state):
        x, _, _, shape = state
        return x.reshape(shape)
    return init, update, get_params


# --------------------------------------------------------------------------- schedules

def constant(step_size: float) -> Schedule:
    """The schedule that is always ``step_size``."""
    return lambda i: step_size


def exponential_decay(step_size: float, decay_steps: float, decay_rate: float) -> Schedule:
    """``step_size * decay_rate ** (i / decay_steps)``: a factor ``decay_rate`` every
    ``decay_steps`` steps, decaying smoothly in between."""
    return lambda i: step_size * decay_rate ** (i / decay_steps)


def inverse_time_decay(step_size: float, decay_steps: float, decay_rate: float,
                       staircase: bool = False) -> Schedule:
    """``step_size / (1 + decay_rate * i / decay_steps)``; with ``staircase``, the ratio
    ``i / decay_steps`` is floored, so the value changes once every ``decay_steps``."""
    if staircase:
        return lambda i: step_size / (1 + decay_rate * jnp.floor(i / decay_steps))
    return lambda i: step_size / (1 + decay_rate * i / decay_steps)


def polynomial_decay(step_size: float, decay_steps: float, final_step_size: float,
                     power: float = 1.0) -> Schedule:
    """From ``step_size`` to ``final_step_size`` over ``decay_steps`` steps as
    ``(1 - i / decay_steps) ** power``, then ``final_step_size``."""
    def schedule(i):
        frac = 1 - jnp.minimum(i, decay_steps) / decay_steps
        return frac ** power * (step_size - final_step_size) + final_step_size
    return schedule


def piecewise_constant(boundaries: Any, values: Any) -> Schedule:
    """``values[k]`` for steps in ``(boundaries[k-1], boundaries[k]]``: ``values`` has one
    entry more than ``boundaries``."""
    boundaries, values = jnp.array(boundaries), jnp.array(values)
    if not boundaries.ndim == values.ndim == 1:
        raise ValueError(f"optimizers.piecewise_constant: boundaries and values must be "
                         f"sequences, got shapes {boundaries.shape} and {values.shape}")
    if boundaries.shape[0] != values.shape[0] - 1:
        raise ValueError(f"optimizers.piecewise_constant: values must have one entry more "
                         f"than boundaries, got {values.shape[0]} values for "
                         f"{boundaries.shape[0]} boundaries")
    return lambda i: values[jnp.sum(i > boundaries)]


def make_schedule(scalar_or_schedule: float | Schedule) -> Schedule:
    """A schedule as given, or the constant schedule of a number."""
    if callable(scalar_or_schedule):
        return scalar_or_schedule
    if jnp.ndim(scalar_or_schedule) == 0:
        return constant(scalar_or_schedule)
    raise TypeError(f"optimizers: step_size must be a scalar or a schedule (a function of the "
                    f"step index), got {type(scalar_or_schedule).__name__} of shape "
                    f"{jnp.shape(scalar_or_schedule)}")


# --------------------------------------------------------------------------- utilities

def l2_norm(tree: Any) -> Any:
    """The l2 norm of all the leaves of a pytree of arrays together (for weight decay and
    gradient clipping)."""
    return jnp.sqrt(sum(jnp.vdot(x, x) for x in pytree.leaves(tree)))


def clip_grads(grad_tree: Any, max_norm: float) -> Any:
    """``grad_tree`` scaled down to l2 norm ``max_norm`` when its norm is larger."""
    norm = l2_norm(grad_tree)
    return pytree.map(lambda g: jnp.where(norm < max_norm, g, g * (max_norm / norm)), grad_tree)


class JoinPoint:
    """A leaf of ``unpack_optimizer_state``'s tree holding one array's state (``subtree``):
    it marks where the params' tree ends and that state's tree begins."""

    def __init__(self, subtree: Any):
        self.subtree = subtree

    def __iter__(self):
        yield self.subtree

    def __repr__(self) -> str:
        return f"JoinPoint({self.subtree!r})"


def unpack_optimizer_state(opt_state: OptimizerState) -> Any:
    """``opt_state`` as a tree of the params' structure whose leaves are ``JoinPoint``s of
    each array's state: plain containers, ready to serialise
    (``pack_optimizer_state`` inverts it)."""
    if not isinstance(opt_state, OptimizerState):
        raise TypeError(f"optimizers.unpack_optimizer_state: opt_state must be an "
                        f"OptimizerState, got {type(opt_state).__name__}")
    flat, treedef, subtrees = opt_state
    return pytree.unflatten(treedef, [JoinPoint(pytree.unflatten(d, leaves))
                                    for d, leaves in zip(subtrees, flat)])


def pack_optimizer_state(marked_pytree: Any) -> OptimizerState:
    """The ``OptimizerState`` of a tree that ``unpack_optimizer_state`` made."""
    joins, treedef = pytree.flatten(marked_pytree)
    if not all(isinstance(j, JoinPoint) for j in joins):
        odd = next(j for j in joins if not isinstance(j, JoinPoint))
        raise TypeError(f"optimizers.pack_optimizer_state: every leaf must be a JoinPoint (as "
                        f"unpack_optimizer_state makes them), got {type(odd).__name__}")
    flat, subtrees = _flatten_all([j.subtree for j in joins])
    return OptimizerState(flat, treedef, subtrees)
