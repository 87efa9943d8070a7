"""What reverse mode keeps: ``saved_residuals`` and ``print_saved_residuals`` (as
``jax.ad_checkpoint.print_saved_residuals``).

``vjp(f, *args)`` returns a pullback whose constants are the *residuals*: the values of the
forward pass that the backward pass reads (see ``_linearize_flat`` in ``api.py``). To say
where each one comes from, the ``vjp`` itself is staged into a jaxpr whose outputs are those
residuals; each output is then an argument of ``f``, a constant, a literal, or the result of
one forward equation, named by its primitive (``output of cos``), the jitted function that
made it (``output of jitted function 'f'``) or its ``checkpoint_name`` (``named 'a'``).

The staging trace notes for each equation the innermost line of the user's code that was
running when the equation was recorded (frames inside fungrad and the standard library
are skipped, as JAX skips its own), so a residual made by ``sin``'s derivative is shown at
the line that called ``sin``. Jaxprs keep no source lines, so an equation recorded while a
traced jaxpr is evaluated again (the known half of a ``checkpoint`` or a control-flow body)
is shown at the line that called that function.
"""
from __future__ import annotations

import inspect
import os
import re
import sys
import sysconfig
import types
from typing import Any, Callable, Sequence

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.core import Literal, ShapedArray
from fungrad.interpreters import partial_eval as pe
from fungrad.lax.misc import reduce_precision_p
from fungrad.transforms import api
from fungrad.transforms.checkpoint import name_p

__all__ = ["print_saved_residuals", "saved_residuals"]

# Where code that is not the user's lives: fungrad itself and the standard library.
_NOT_USER = tuple(p for p in (os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                              + os.sep, sysconfig.get_path("stdlib")) if p)


def _is_user_file(filename: str) -> bool:
    return not os.path.abspath(filename).startswith(_NOT_USER)


def _frame_site(frame: types.FrameType) -> str:
    """``file:line:column (function)`` of the call running in ``frame`` (JAX's summary of a
    source location; the column is left out when it is 0)."""
    code = frame.f_code
    positions = list(code.co_positions())
    line, _, col, _ = positions[frame.f_lasti // 2] if frame.f_lasti >= 0 else (None,) * 4
    line = frame.f_lineno if line is None else line
    where = f"{code.co_filename}:{line}" + (f":{col}" if col else "")
    return f"{where} ({code.co_qualname})"


def _user_site(boundary: types.FrameType) -> str:
    """The innermost user frame between here and ``boundary`` (the frame that started the
    staging), or ``""`` when the equation was recorded by fungrad code alone."""
    frame = sys._getframe(2)
    while frame is not None and frame is not boundary:
        if _is_user_file(frame.f_code.co_filename):
            return _frame_site(frame)
        frame = frame.f_back
    return ""


class _SiteTrace(pe.JaxprTrace):
    """A staging trace that also records, per equation, the user's line that made it."""

    def __init__(self, parent: core.Trace, boundary: types.FrameType) -> None:
        super().__init__(parent, stage_all=True, name="saved_residuals")
        self.boundary = boundary
        self.sites: dict[int, str] = {}

    def stage(self, prim: core.Primitive, args: Sequence[Any], params: dict,
              out_avals: Any = None) -> Any:
        out = super().stage(prim, args, params, out_avals)
        self.sites[id(self.eqns[-1])] = _user_site(self.boundary)
        return out


def _arg_names(fun: Callable, args: tuple, kwargs: dict) -> list[str]:
    """A name for each leaf of ``(args, kwargs)``, as JAX's debug info names arguments:
    ``x``, ``d['a'][0]``, ``args[1]`` for ``*args``, ``kw['k']`` for ``**kw``; keyword
    arguments sorted by keyword (the order of the flattened leaves)."""
    named: list[tuple[str, Any]] | None = None
    try:
        sig = inspect.signature(fun)
        bound = sig.bind(*args, **kwargs)
    except (TypeError, ValueError):
        pass
    else:
        var_kw = next((n for n, p in sig.parameters.items() if p.kind is p.VAR_KEYWORD), None)
        named = [(n, v) for n, v in bound.arguments.items() if n not in kwargs and n != var_kw]
        named += [(k if k in bound.arguments else f"{var_kw}['{k}']", kwargs[k])
                  for k in sorted(kwargs)]
    if named is None:
        named = [("args", tuple(args))] + [(f"kwargs['{k}']", kwargs[k]) for k in sorted(kwargs)]
    return [name + api.path_str(path) for name, value in named
            for path, _ in tree_util.leaves_with_plain_path(value)]


# fungrad names the jit_p of a derived jaxpr after the function: ``jvp(f)``, ``transpose(f)``.
_DERIVED_JIT_NAME = re.compile(r"^(?:jvp|transpose)\((.*)\)$")


def _jit_name(name: str) -> str:
    """The user's function's name in the name of a (possibly derived) ``jit_p`` equation."""
    while (match := _DERIVED_JIT_NAME.match(name)) is not None:
        name = match.group(1)
    return name


def _forwarded(jaxpr: core.Jaxpr) -> dict:
    """Results that are only inputs passed on: the output of a ``reduce_precision`` (JAX
    looks through it) and the outputs of a ``jit`` call that return one of its operands as
    it is (the known half of a jitted function hands its inputs on as residuals), each
    mapped to the value it passes on."""
    through = {}
    for eqn in jaxpr.eqns:
        if eqn.primitive is reduce_precision_p:
            through[eqn.outvars[0]] = eqn.invars[0]
        elif eqn.primitive.name == "jit":
            body = eqn.params["jaxpr"].jaxpr
            positions = {v: i for i, v in enumerate(body.invars)}
            for out, inner in zip(eqn.outvars, body.outvars):
                i = positions.get(inner) if type(inner) is not Literal else None
                if i is not None and type(eqn.invars[i]) is not Literal:
                    through[out] = through.get(eqn.invars[i], eqn.invars[i])
    return through


def _describe(jaxpr: core.Jaxpr, sites: dict[int, str], arg_names: Sequence[str]
              ) -> list[tuple[ShapedArray, str]]:
    """Where each output of ``jaxpr`` (the residuals) comes from, in JAX's order: literals,
    constants, arguments, then equations in program order."""
    through = _forwarded(jaxpr)
    res_vars = {through.get(v, v) for v in jaxpr.outvars if type(v) is not Literal}
    out = [(v.aval, "from a literal") for v in jaxpr.outvars if type(v) is Literal]
    out += [(v.aval, "from a constant") for v in jaxpr.constvars if v in res_vars]
    out += [(v.aval, f"from the argument {name}")
            for v, name in zip(jaxpr.invars, arg_names) if v in res_vars]
    for eqn in jaxpr.eqns:
        site = sites.get(id(eqn), "")
        for v in eqn.outvars:
            if v not in res_vars:
                continue
            if eqn.primitive is name_p:
                out.append((v.aval, f"named '{eqn.params['name']}' from {site}"))
            elif eqn.primitive.name == "jit":
                out.append((v.aval, f"output of jitted function "
                                    f"'{_jit_name(eqn.params['name'])}' from {site}"))
            else:
                out.append((v.aval, f"output of {eqn.primitive.name} from {site}"))
    return out


def saved_residuals(fun: Callable, *args: Any, **kwargs: Any) -> list[tuple[ShapedArray, str]]:
    """The values ``vjp(fun, *args, **kwargs)`` keeps for its backward pass, as
    ``(aval, where it comes from)`` pairs (derivatives with respect to every array leaf of
    the arguments, keyword arguments included, as JAX computes them).

    Examples:
        >>> import fungrad.numpy as jnp
        >>> [(a.str_short(), src) for a, src in saved_residuals(lambda x, y: x * y,
        ...                                                     jnp.ones(2), jnp.ones(2))]
        [('f32[2]', 'from the argument x'), ('f32[2]', 'from the argument y')]
    """
    leaves, in_tree = tree_util.flatten((args, kwargs))
    names = _arg_names(fun, args, kwargs)

    def flat_fun(*xs: Any) -> Any:
        a, kw = tree_util.unflatten(in_tree, xs)
        return fun(*a, **kw)

    def residuals(*xs: Any) -> list:
        _, f_vjp = api.vjp(flat_fun, *xs)
        return list(f_vjp.consts)

    trace = _SiteTrace(core.current_trace(), sys._getframe())
    tracers = [trace.new_arg(core.get_aval(x)) for x in leaves]
    try:
        with core.set_current_trace(trace):
            outs = residuals(*tracers)
        jaxpr, _ = trace.to_jaxpr(outs)
    finally:
        trace.invalidate()
    return _describe(jaxpr, trace.sites, names)


def print_saved_residuals(f: Callable, *args: Any, **kwargs: Any) -> None:
    """Print, one line each, the values reverse-mode differentiation of ``f`` at ``args``
    saves for the backward pass: type and origin (``jax.ad_checkpoint.print_saved_residuals``).
    Use it to see what a ``checkpoint`` policy keeps.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> from fungrad.ad_checkpoint import print_saved_residuals
        >>> print_saved_residuals(fungrad.checkpoint(lambda x: jnp.sin(jnp.sin(x))),
        ...                       jnp.ones(3))
        f32[3] from the argument x
    """
    for aval, src in saved_residuals(f, *args, **kwargs):
        print(f"{aval.str_short()} {src}")
