"""fungrad from the inside: define a primitive, then watch every transformation use it.

A walkthrough in the mould of JAX's Autodidax, but over the real library: nothing
here is a toy re-implementation. We define two primitives with all of their rules,
exactly as the modules under ``fungrad/lax/`` do, and then trace, differentiate
(forward and reverse, to second order), vectorise, compile and inspect them. The
values it computes are module-level names (``CUBE_X``, ``GRAD_X``, ...) that
``tests/test_docs.py`` imports and checks against ``jax``, so this file cannot drift
from the code.

Run it as a script: ``python docs/walkthrough.py``.
"""
from __future__ import annotations

import collections

import numpy as np

import fungrad
import fungrad.numpy as jnp
from fungrad import lax
from fungrad._core import core
from fungrad._core.core import Primitive, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.lax._prim import as_operand


def show(title: str, value: object) -> None:
    """Print one step of the walkthrough."""
    print(f"--- {title}\n{value}\n")


# =============================================================================
# Part 1. A primitive is a name plus one rule per interpreter.
# =============================================================================
#
# ``cube(x) = x * x * x``, elementwise. A ``Primitive`` is only a name; ``bind``
# hands it, with its operands and keyword parameters, to the *current trace*.
# What happens next depends on which trace that is, and each trace looks up its
# own rule: the first two are attributes of the primitive, the others sit in tables
# private to their interpreter module (``ad``, ``batching``), keyed by the primitive:
#
#   eager evaluation  -> impl            (xp, *buffers, **params) -> buffer
#   staging (jit, make_jaxpr, partial eval) -> abstract_eval (*avals) -> aval
#   forward-mode AD   -> JVP rule        (primals, tangents) -> (out, tangent)
#   vmap              -> batching rule   (axis_size, vals, dims) -> (out, out_dim)
#
# Reverse mode needs no rule of its own for a *nonlinear* primitive like this
# one: ``grad`` linearises the JVP rule and transposes the (linear) primitives
# that the rule is written with.

cube_p = Primitive("cube")


@cube_p.def_impl
def _cube_impl(xp, x):
    # Written against the NumPy API; ``xp`` is numpy (CPU) or cupy (GPU). The result
    # must have exactly the dtype abstract evaluation promises: multiply keeps it.
    return xp.multiply(xp.multiply(x, x), x)


@cube_p.def_abstract_eval
def _cube_abstract_eval(x):
    if x.dtype.kind not in "fc":
        raise TypeError(f"cube: expected a floating-point operand, got {x.str_short()}")
    return ShapedArray(x.shape, x.dtype, x.weak_type)


# d(x^3) = 3 x^2 dx. The rule is written with lax primitives, so it is itself
# traceable and differentiable: that is what makes grad(grad(cube)) work.
ad.defjvp(cube_p, lambda t, x: lax.mul(t, lax.mul(3.0, lax.mul(x, x))))

# Elementwise: the batch dimension rides along wherever it is.
batching.defvectorized(cube_p)


def cube(x):
    """The user-facing wrapper: Python scalars become (weakly typed) operands."""
    return cube_p.bind(as_operand(x))


X = 1.5
CUBE_X = cube(X)
show("eager: cube(1.5)", repr(CUBE_X))

# =============================================================================
# Part 2. Tracing: the same bind, recorded into a jaxpr.
# =============================================================================
#
# ``make_jaxpr`` runs the function under a staging trace: ``bind`` calls the
# abstract-evaluation rule and records an equation instead of computing.

JAXPR = fungrad.make_jaxpr(lambda x: cube(jnp.sin(x)) * 2.0)(X)
JAXPR_TEXT = str(JAXPR)
show("make_jaxpr(lambda x: cube(sin(x)) * 2.0)", JAXPR_TEXT)

# =============================================================================
# Part 3. Differentiation, forward and reverse.
# =============================================================================

# Forward mode: the JVP trace pairs each value with a tangent and calls the rule.
JVP_PRIMAL, JVP_TANGENT = fungrad.jvp(cube, (X,), (1.0,))
show("jvp(cube, (1.5,), (1.0,))", (JVP_PRIMAL, JVP_TANGENT))

# Reverse mode = JVP + partial evaluation + transposition. The tangent part of the
# JVP (here ``mul t (3 x^2)``) is staged into a linear jaxpr; ``mul`` knows its
# transpose, so the backward pass needs nothing from cube_p.
GRAD_X = fungrad.grad(cube)(X)
GRAD2_X = fungrad.grad(fungrad.grad(cube))(X)  # the JVP rule differentiates again
show("grad(cube)(1.5), grad(grad(cube))(1.5)", (GRAD_X, GRAD2_X))

# The linearised function, and the program grad stages (printed as a jaxpr).
_, CUBE_LIN = fungrad.linearize(cube, X)
LIN_AT_2 = CUBE_LIN(2.0)
GRAD_JAXPR_TEXT = str(fungrad.make_jaxpr(fungrad.grad(cube))(X))
show("make_jaxpr(grad(cube))", GRAD_JAXPR_TEXT)

# =============================================================================
# Part 4. Vectorisation.
# =============================================================================

XS = jnp.linspace(-1.0, 1.0, 5)
VMAP_CUBE = fungrad.vmap(cube)(XS)
PER_EXAMPLE_GRADS = fungrad.vmap(fungrad.grad(cube))(XS)  # composes: grad inside vmap
show("vmap(cube)(xs), vmap(grad(cube))(xs)", (VMAP_CUBE, PER_EXAMPLE_GRADS))

# =============================================================================
# Part 5. A linear primitive: roll, with a transpose rule and a real batching rule.
# =============================================================================
#
# ``roll(x, shift, axis)`` moves elements ``shift`` places along ``axis`` (with
# wrap-around). It is *linear*, so reverse mode needs its transpose: the
# cotangent of the input is the output cotangent rolled back by ``-shift``.
# ``deflinear`` registers both the JVP (roll the tangent) and that transpose.
# Params are keyword-only and hashable (ints here), so equations hash for CSE.

roll_p = Primitive("roll")


@roll_p.def_impl
def _roll_impl(xp, x, *, shift, axis):
    return xp.roll(x, shift, axis)


@roll_p.def_abstract_eval
def _roll_abstract_eval(x, *, shift, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"roll: axis {axis} out of range for an operand of shape {x.shape}")
    return x


def _roll_transpose(ct, x, *, shift, axis):
    # ``x`` is an ``ad.UndefinedPrimal``: a linear input whose value is not known.
    return [roll_p.bind(ct, shift=-shift, axis=axis)]


ad.deflinear(roll_p, _roll_transpose)


def _roll_batch(axis_size, vals, dims, *, shift, axis):
    # The batch dimension is an extra axis of the operand: roll the axis that was
    # ``axis`` in every batch member, which moves by one when the batch dim is before it.
    (x,), (bdim,) = vals, dims
    moved_axis = axis + 1 if bdim <= axis else axis
    return roll_p.bind(x, shift=shift, axis=moved_axis), bdim


batching.def_batch(roll_p, _roll_batch)


def roll(x, shift: int, axis: int = 0):
    """Roll ``x`` by ``shift`` along ``axis`` (negative axes count from the end)."""
    x = as_operand(x)
    ndim = core.get_aval(x).ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"roll: axis {axis} out of range for an operand of rank {ndim}")
    return roll_p.bind(x, shift=int(shift), axis=axis % ndim)


V = jnp.arange(4.0)
ROLL_V = roll(V, 1)
# The Jacobian of a linear map is its matrix: a permutation, forward and reverse.
JACFWD_ROLL = fungrad.jacfwd(lambda v: roll(v, 1))(V)
JACREV_ROLL = fungrad.jacrev(lambda v: roll(v, 1))(V)
show("roll(arange(4), 1) and its Jacobian", (ROLL_V, JACREV_ROLL))

# vmap over a middle axis: the batching rule sees bdim=1 and shifts ``axis``.
M = jnp.arange(24.0).reshape(2, 3, 4)
VMAP_ROLL = fungrad.vmap(lambda m: roll(m, 1, axis=-1), in_axes=1)(M)

# Both primitives in one loss, differentiated in reverse mode: the backward pass
# runs the transpose of mul and of roll.
W = jnp.array([1.0, -2.0, 0.5, 3.0])


def loss(v):
    return jnp.sum(cube(roll(v, 1)) * W)


LOSS_GRAD = fungrad.grad(loss)(V * 0.1)
show("grad(sum(cube(roll(v, 1)) * w))", LOSS_GRAD)

# =============================================================================
# Part 6. jit: stage once, optimise, generate Python code.
# =============================================================================
#
# ``jit`` traces once per argument signature, runs the compiler passes
# (inlining, simplification, constant folding, CSE, DCE), plans memory and
# generates one Python function. A primitive without a specialised lowering is
# called through its impl (``_cube(...)`` below); ``add`` becomes a NumPy ufunc.

step = fungrad.jit(lambda v: cube(roll(v, 1)) + 1.0)
JIT_OUT = step(V)
LOWERED = step.lower(V)
OPTIMISED_TEXT = LOWERED.as_text()
GENERATED_SOURCE = LOWERED.compile().source
show("jit: the optimised IR", OPTIMISED_TEXT)
show("jit: the generated Python", GENERATED_SOURCE)

# Transformations compose with jit in any order: jit's call primitive has a
# rule for every interpreter, each recursing into the traced jaxpr.
JIT_GRAD_VMAP = fungrad.jit(fungrad.vmap(fungrad.grad(lambda x: cube(x) * 2.0)))(XS)

# =============================================================================
# Part 7. Write your own interpreters.
# =============================================================================
#
# (a) The IR is plain data: an interpreter is a loop over equations. This one
# evaluates a jaxpr directly with each primitive's NumPy implementation.


def eval_with_impls(closed, *args):
    """Evaluate ``closed`` (a ClosedJaxpr without sub-jaxprs) on NumPy values."""
    env = dict(zip(closed.jaxpr.constvars, [np.asarray(c) for c in closed.consts]))
    env.update(zip(closed.jaxpr.invars, [np.asarray(a) for a in args]))

    def read(atom):
        return np.asarray(atom.val) if type(atom) is core.Literal else env[atom]
    for eqn in closed.jaxpr.eqns:
        outs = eqn.primitive.impl(np, *map(read, eqn.invars), **eqn.params)
        env.update(zip(eqn.outvars, outs if eqn.primitive.multiple_results else [outs]))
    return [read(v) for v in closed.jaxpr.outvars]


(INTERPRETED,) = eval_with_impls(JAXPR, np.float32(X))

# (b) A transformation is a Trace subclass. This one counts every primitive bound
# while it is the current trace and forwards it to its parent: there are no
# global levels, each trace only knows its parent, so it composes with grad (the
# JVP trace created inside it binds its rules' primitives into this one).


class CountingTrace(core.Trace):
    name = "count"

    def __init__(self, parent: core.Trace) -> None:
        super().__init__(parent)
        self.counts: collections.Counter = collections.Counter()

    def process_primitive(self, prim, args, params):
        self.counts[prim.name] += 1
        return core.bind_in_parent(self, prim, args, params)


def count_primitives(f, *args):
    """``f(*args)`` and how many times each primitive was bound while computing it."""
    trace = CountingTrace(core.current_trace())
    try:
        with core.set_current_trace(trace):
            out = f(*args)
    finally:
        trace.invalidate()
    return out, dict(trace.counts)


COUNTED_GRAD, GRAD_COUNTS = count_primitives(fungrad.grad(cube), X)
show("primitives bound by grad(cube)(1.5)", GRAD_COUNTS)


if __name__ == "__main__":
    print("walkthrough finished")
