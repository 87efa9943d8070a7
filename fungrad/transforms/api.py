"""``jvp``, ``linearize``, ``vjp``, ``grad``, ``value_and_grad``, ``vmap``,
``jacfwd``, ``jacrev`` (``jacobian``), ``hessian``, ``make_jaxpr``, ``eval_shape``.

Each function flattens pytrees, creates its trace on top of the current one,
runs the function, unpacks the results and invalidates the trace (so escaped
tracers are caught). They compose because each one only calls ``bind``.
"""
from __future__ import annotations

import functools
import inspect
import operator
from typing import Any, Callable, Sequence

import numpy as np

from fungrad import tree as tree_util
from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, ShapedArray
from fungrad.interpreters import ad, batching
from fungrad.interpreters import partial_eval as pe
from fungrad.lax._prim import as_operand, hashable_shape
from fungrad.lax.elementwise import eq
from fungrad.lax.shapes import broadcasted_iota, convert_element_type, full, reshape
from fungrad.lax.slicing import slice_in_dim


def _fun_name(f: Callable) -> str:
    return getattr(f, "__name__", type(f).__name__)


def _check_leaf(x: Any, fname: str, what: str) -> Any:
    if isinstance(x, (Array, core.Tracer)):
        return x
    if isinstance(x, (bool, int, float, complex, np.ndarray, np.generic)):
        return as_operand(x)
    raise TypeError(f"{fname}: {what} must be arrays or scalars, got {type(x).__name__}: {x!r}")


def _flatten_args(args: Sequence[Any], fname: str) -> tuple[list, Any]:
    leaves, treedef = tree_util.flatten(tuple(args))
    return [_check_leaf(x, fname, "arguments") for x in leaves], treedef


def _flat_outputs(out: Any, fname: str) -> tuple[list, Any]:
    leaves, treedef = tree_util.flatten(out)
    return [_check_leaf(x, fname, "outputs") for x in leaves], treedef


def _split_aux(out: Any, has_aux: bool, fname: str) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{fname}: with has_aux=True the function must return a pair "
                        f"(output, aux), got {type(out).__name__}")
    return out[0], out[1]


def _aux_primals(trace: ad.JVPTrace, aux: Any) -> Any:
    """The primal values of ``aux``: it is returned as it is, not differentiated, and
    must not keep tracers of the finished JVP (under ``jit`` they would escape)."""
    return tree_util.map(lambda x: trace.unpack(x)[0], aux)


# --------------------------------------------------------------------------- jvp / linearize

def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False):
    """Forward-mode derivative: ``(fun(*primals), J @ tangents)`` (as ``jax.jvp``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.jvp(lambda x: x ** 2, (jnp.array([1.0, 2.0]),), (jnp.array([1.0, 0.5]),))
        (Array([1., 4.], dtype=float32), Array([2., 2.], dtype=float32))
    """
    fname = _fun_name(fun)
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"jvp({fname}): primals and tangents must be tuples or lists, got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    flat_p, in_tree = _flatten_args(primals, "jvp")
    flat_t, t_tree = _flatten_args(tangents, "jvp")
    if in_tree != t_tree:
        raise TypeError(f"jvp({fname}): primal and tangent trees differ: {in_tree} vs {t_tree}")
    _check_tangents(f"jvp({fname})", flat_p, flat_t)
    store = {}

    def flat_fun(*args: Any) -> list:
        out, aux = _split_aux(fun(*tree_util.unflatten(in_tree, args)), has_aux, f"jvp({fname})")
        store["aux"] = _aux_primals(core.current_trace(), aux)  # the JVP trace, while it runs
        flat_out, store["tree"] = _flat_outputs(out, f"jvp({fname})")
        return flat_out
    flat_t = [t if dtypes.is_inexact(core.get_aval(p).dtype) else ad.Zero.from_primal(p)
              for p, t in zip(flat_p, flat_t)]
    out_p, out_t = ad.jvp_fun(flat_fun, flat_p, flat_t)
    out_p, out_t = (tree_util.unflatten(store["tree"], o) for o in (out_p, out_t))
    return (out_p, out_t, store["aux"]) if has_aux else (out_p, out_t)


def _linearize_flat(fun: Callable, flat_p: list, in_tree: Any, has_aux: bool, fname: str):
    """Run the JVP of ``fun`` with tangents unknown; return primal outputs, the linear
    jaxpr (tangents in -> tangents out) and its residuals."""
    pe_trace = pe.JaxprTrace(core.current_trace(), stage_all=False, name="linearize")
    jvp_trace = ad.JVPTrace(pe_trace)
    try:
        args = []
        for p in flat_p:
            aval = ad.Zero.from_primal(p).aval
            t = pe_trace.new_arg(aval)
            args.append(ad.JVPTracer(jvp_trace, p, t) if dtypes.is_inexact(aval.dtype) else p)
        with core.set_current_trace(jvp_trace):
            out = fun(*tree_util.unflatten(in_tree, args))
        out, aux = _split_aux(out, has_aux, fname)
        aux = _aux_primals(jvp_trace, aux)
        flat_out, out_tree = _flat_outputs(out, fname)
        pairs = [jvp_trace.unpack(o) for o in flat_out]
        out_p = [p for p, _ in pairs]
        out_t = [ad.instantiate(t) if type(t) is not ad.Zero else t for _, t in pairs]
        zero_outs = [type(t) is ad.Zero for t in out_t]
        with core.set_current_trace(pe_trace):
            jaxpr, consts = pe_trace.to_jaxpr([ad.zeros_like_aval(t.aval) if type(t) is ad.Zero
                                               else t for t in out_t])
    finally:
        jvp_trace.invalidate()
        pe_trace.invalidate()
    return out_p, out_tree, aux, jaxpr, consts, zero_outs


def _check_tangents(where: str, flat_p: list, flat_t: list) -> None:
    """Each tangent has its primal's shape and tangent dtype (float0 for integers)."""
    for p, t in zip(flat_p, flat_t):
        pa, ta = core.get_aval(p), core.get_aval(t)
        if pa.shape != ta.shape or ta.dtype != dtypes.tangent_dtype(pa.dtype):
            raise TypeError(f"{where}: tangent {ta.str_short()} does not match primal "
                            f"{pa.str_short()} (expected dtype "
                            f"{dtypes.tangent_dtype(pa.dtype).name})")


def linearize(fun: Callable, *primals: Any, has_aux: bool = False):
    """``(fun(*primals), f_jvp)`` where ``f_jvp(*tangents)`` evaluates the JVP linearly.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> y, f_jvp = fungrad.linearize(lambda x: x ** 3, jnp.array([1.0, 2.0]))
        >>> f_jvp(jnp.array([1.0, 0.5]))
        Array([3., 6.], dtype=float32)
    """
    fname = f"linearize({_fun_name(fun)})"
    flat_p, in_tree = _flatten_args(primals, fname)
    out_p, out_tree, aux, jaxpr, consts, _ = _linearize_flat(fun, flat_p, in_tree, has_aux, fname)

    def f_jvp(*tangents: Any) -> Any:
        flat_t, t_tree = _flatten_args(tangents, fname)
        if t_tree != in_tree:
            raise TypeError(f"{fname}: tangent tree {t_tree} does not match primal tree {in_tree}")
        _check_tangents(fname, flat_p, flat_t)
        outs = core.eval_jaxpr(jaxpr, consts, *flat_t)
        return tree_util.unflatten(out_tree, outs)
    primal_out = tree_util.unflatten(out_tree, out_p)
    return (primal_out, f_jvp, aux) if has_aux else (primal_out, f_jvp)


# --------------------------------------------------------------------------- vjp / grad

class _VJPFunction:
    """The pullback returned by ``vjp``: maps output cotangents to input cotangents."""

    def __init__(self, jaxpr, consts, in_tree, out_tree, flat_p, out_avals, fname) -> None:
        self.jaxpr, self.consts = jaxpr, consts
        self.in_tree, self.out_tree = in_tree, out_tree
        self.in_avals = [core.get_aval(p) for p in flat_p]
        self.out_avals = out_avals
        self.fname = fname

    def __call__(self, cotangent: Any, _consume: bool = False) -> tuple:
        flat_ct, ct_tree = tree_util.flatten(cotangent)
        if ct_tree != self.out_tree:
            raise TypeError(f"{self.fname}: cotangent tree {ct_tree} does not match the output "
                            f"tree {self.out_tree}")
        cts = []
        for ct, aval in zip(flat_ct, self.out_avals):
            ct = _check_leaf(ct, self.fname, "cotangents")
            ca = core.get_aval(ct)
            if ca.shape != aval.shape or (dtypes.is_inexact(aval.dtype) and ca.dtype != aval.dtype):
                raise TypeError(f"{self.fname}: cotangent {ca.str_short()} does not match the "
                                f"output {aval.str_short()}")
            cts.append(ct)
        args = [ad.UndefinedPrimal(v.aval) for v in self.jaxpr.invars]
        consts = self.consts if _consume else list(self.consts)
        if _consume:
            self.consts = []
        cts_in = ad.backward_pass(self.jaxpr, consts, args, cts, consume=True)
        out = []
        for ct, aval in zip(cts_in, self.in_avals):
            if not dtypes.is_inexact(aval.dtype):
                out.append(np.zeros(aval.shape, dtypes.float0))
            else:
                out.append(ad.instantiate(ct))
        return tuple(tree_util.unflatten(self.in_tree, out))


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """Reverse mode: ``(fun(*primals), f_vjp)`` with ``f_vjp(ct) -> cotangents of primals``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> x, w = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])
        >>> out, f_vjp = fungrad.vjp(lambda x, w: x * w, x, w)
        >>> f_vjp(jnp.ones(2))
        (Array([3., 4.], dtype=float32), Array([1., 2.], dtype=float32))
    """
    fname = f"vjp({_fun_name(fun)})"
    flat_p, in_tree = _flatten_args(primals, fname)
    out_p, out_tree, aux, jaxpr, consts, _ = _linearize_flat(fun, flat_p, in_tree, has_aux, fname)
    f_vjp = _VJPFunction(jaxpr, consts, in_tree, out_tree, flat_p,
                         [core.get_aval(o) for o in out_p], fname)
    primal_out = tree_util.unflatten(out_tree, out_p)
    return (primal_out, f_vjp, aux) if has_aux else (primal_out, f_vjp)


def check_callable(fun: Any, api: str) -> None:
    """Reject a non-callable ``fun`` when the transformation is built (as JAX)."""
    if not callable(fun):
        raise TypeError(f"{api}: expected a callable value, got {fun!r}")


def check_argnums(argnums: Any, api: str, name: str = "argnums", allow_empty: bool = False
                  ) -> tuple[int, ...]:
    """``argnums`` (an int or a sequence of ints) as a tuple, checked when the
    transformation is built so that a typo fails at once, not at the first call."""
    try:
        return (operator.index(argnums),)
    except TypeError:
        pass
    if isinstance(argnums, (str, bytes)) or not isinstance(argnums, Sequence):
        raise TypeError(f"{api}: {name} must be an int or a sequence of ints, got "
                        f"{type(argnums).__name__}: {argnums!r}")
    nums = []
    for n in argnums:
        try:
            nums.append(operator.index(n))
        except TypeError:
            raise TypeError(f"{api}: {name} must be an int or a sequence of ints, got "
                            f"{argnums!r} (entry {n!r} of type {type(n).__name__})") from None
    if not nums and not allow_empty:
        raise ValueError(f"{api}: {name} must name at least one argument, got {argnums!r}")
    return tuple(nums)


def resolve_argnums(nums: tuple[int, ...], nargs: int, api: str, name: str = "argnums",
                    too_few_is_type_error: bool = False) -> tuple[int, ...]:
    """``nums`` as non-negative positions among ``nargs`` positional arguments.

    An index past the end is a ``TypeError`` for ``grad`` (the caller passed too few
    arguments) and a ``ValueError`` elsewhere, as in JAX; repeated positions are errors.
    """
    given = nums[0] if len(nums) == 1 else nums
    if too_few_is_type_error and max(nums) >= nargs:
        raise TypeError(f"{api}: differentiating with respect to {name}={given} requires at "
                        f"least {max(nums) + 1} positional arguments to be passed by the "
                        f"caller, but got only {nargs} positional arguments.")
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(f"{api}: {name}={given} is out of range: positional argument "
                             f"indices must be >= -len(args) and < len(args), but got value {n} "
                             f"for len(args) == {nargs}.")
    resolved = tuple(n % nargs for n in nums)
    if len(set(resolved)) != len(resolved):
        raise TypeError(f"{api}: {name}={given} refers to the same positional argument more "
                        f"than once (positions {resolved} for len(args) == {nargs}).")
    return resolved


def _argnums_spec(fun: Any, argnums: Any, api: str) -> tuple[tuple[int, ...], bool, str]:
    """Checked ``argnums`` of a differentiating transformation, whether it was a single
    int (the result is then one gradient rather than a tuple), and ``api(fun)`` for
    messages."""
    check_callable(fun, api)
    where = f"{api}({_fun_name(fun)})"
    return check_argnums(argnums, where), not isinstance(argnums, Sequence), where


def _check_input_dtype_revderiv(where: str, holomorphic: bool, allow_int: bool, x: Any,
                                n: int | None = None) -> None:
    """Reverse mode takes real or complex inputs; complex only with ``holomorphic=True``;
    integers and booleans only with ``allow_int`` (as JAX)."""
    dt = dtypes.dtype_and_weak(x)[0]
    arg = "" if n is None else f" for argument {n}"
    if holomorphic and dt.kind != "c":
        raise TypeError(f"{where} with holomorphic=True requires inputs with complex dtype, "
                        f"but got {dt.name}{arg}.")
    if not dtypes.is_inexact(dt) and not allow_int:
        raise TypeError(f"{where} requires real- or complex-valued inputs (input dtype that is "
                        f"a sub-dtype of np.inexact), but got {dt.name}{arg}. If you want to use "
                        "Boolean- or integer-valued inputs, use vjp or set allow_int to True.")


def _check_output_dtype_revderiv(where: str, holomorphic: bool, x: Any) -> None:
    """Reverse mode differentiates real outputs, or complex ones with ``holomorphic=True``:
    the cotangent seed 1 only gives the derivative for those (as JAX)."""
    dt = core.get_aval(x).dtype
    if holomorphic:
        if dt.kind != "c":
            raise TypeError(f"{where} with holomorphic=True requires outputs with complex "
                            f"dtype, but got {dt.name}.")
    elif dt.kind == "c":
        raise TypeError(f"{where} requires real-valued outputs (output dtype that is a sub-dtype "
                        f"of np.floating), but got {dt.name}. For holomorphic differentiation, "
                        "pass holomorphic=True. For differentiation of non-holomorphic functions "
                        "involving complex outputs, use fungrad.vjp directly.")
    elif not dtypes.is_float(dt):
        raise TypeError(f"{where} requires real-valued outputs (output dtype that is a sub-dtype "
                        f"of np.floating), but got {dt.name}. For differentiation of functions "
                        "with integer outputs, use fungrad.vjp directly.")


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """A function returning ``(fun(*args), gradient w.r.t. args[argnums])`` (as JAX).

    ``fun`` returns a real scalar; its gradient with respect to a complex input is the
    cotangent of the seed 1 (JAX's convention: ``d|z|**2`` is ``2 * conj(z)``). With
    ``holomorphic=True`` inputs and output are complex and the result is ``f'(z)``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.value_and_grad(lambda x: jnp.sum(x ** 2))(jnp.array([1.0, 2.0]))
        (Array(5., dtype=float32), Array([2., 4.], dtype=float32))
        >>> fungrad.value_and_grad(lambda z: z ** 2, holomorphic=True)(jnp.complex64(1 + 2j))
        (Array(-3.+4.j, dtype=complex64), Array(2.+4.j, dtype=complex64))
    """
    nums, single, where = _argnums_spec(fun, argnums, "grad")
    fname = _fun_name(fun)

    @functools.wraps(fun)
    def value_and_grad_f(*args: Any, **kwargs: Any):
        pos = resolve_argnums(nums, len(args), where, too_few_is_type_error=True)
        for n in pos:
            for leaf in tree_util.leaves(args[n]):
                _check_input_dtype_revderiv(f"grad({fname})", holomorphic, allow_int, leaf, n)
        diff_args, restricted = _restrict(fun, args, pos, kwargs)
        if has_aux:
            out, f_vjp, aux = vjp(restricted, *diff_args, has_aux=True)
        else:
            (out, f_vjp), aux = vjp(restricted, *diff_args), None
        leaves = tree_util.leaves(out)
        is_leaf = len(leaves) == 1 and leaves[0] is out  # an array, not a list holding one
        if not is_leaf or core.get_aval(out).shape != ():
            what = f"had shape: {core.get_aval(out).shape}" if is_leaf else f"was {out!r}"
            raise TypeError(f"grad({fname}): gradient only defined for scalar-output functions. "
                            f"Output {what}.")
        _check_output_dtype_revderiv(f"grad({fname})", holomorphic, leaves[0])
        dt = core.get_aval(leaves[0]).dtype
        # The seed keeps the output's weak type (as JAX's ones_like), so the gradient of
        # a Python-scalar argument stays weakly typed.
        seed = convert_element_type(1, dt, weak_type=core.get_aval(leaves[0]).weak_type)
        ct = tree_util.unflatten(tree_util.structure(out), [seed])
        grads = f_vjp(ct, _consume=True)
        g = grads[0] if single else tuple(grads)
        return ((out, aux), g) if has_aux else (out, g)
    return value_and_grad_f


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """Gradient of a scalar-valued ``fun`` with respect to ``args[argnums]`` (as ``jax.grad``).

    The gradient has the pytree structure of the differentiated argument(s). ``fun`` must
    return a real scalar, or a complex one with ``holomorphic=True`` (see ``value_and_grad``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> loss = lambda p, x: jnp.sum(p["w"] * x)
        >>> fungrad.grad(loss)({"w": jnp.ones(2)}, jnp.array([3.0, 4.0]))
        {'w': Array([3., 4.], dtype=float32)}
        >>> fungrad.grad(fungrad.grad(jnp.sin))(0.5)  # second derivative: -sin
        Array(-0.47942555, dtype=float32, weak_type=True)
    """
    vg = value_and_grad(fun, argnums, has_aux, holomorphic, allow_int)

    @functools.wraps(fun)
    def grad_f(*args: Any, **kwargs: Any):
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        return vg(*args, **kwargs)[1]
    return grad_f


# --------------------------------------------------------------------------- vmap

def path_str(path: Sequence) -> str:
    """A pytree key path as indexing code: ``['a'][0]``."""
    return "".join(f"[{k!r}]" for k in path)


def _arg_descriptions(fun: Callable, args: tuple, kwargs: dict) -> list[str]:
    """For each argument leaf (positional, then keyword), ``argument x['a']``,
    ``args[3]`` or ``kwargs['y']``, named through ``fun``'s signature as in JAX."""
    try:
        params = inspect.signature(fun).parameters.values()
        names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    out = [f"argument {names[p[0]]}{path_str(p[1:])}" if p[0] < len(names)
           else f"args{path_str(p)}" for p, _ in tree_util.leaves_with_plain_path(tuple(args))]
    return out + [f"kwargs{path_str(p)}" for p, _ in tree_util.leaves_with_plain_path(kwargs)]


def _size_mismatch(fname: str, mapped: list[tuple[int, int, str, str]], axis_size: int | None
                   ) -> ValueError:
    """JAX's report of inconsistent mapped sizes: each size, how many axes have it and
    one argument that does. ``mapped`` holds (size, axis, argument, type) per mapped leaf."""
    by_size: dict[int, list] = {}
    for m in mapped:
        by_size.setdefault(m[0], []).append(m)
    lines = [] if axis_size is None else [f"the `axis_size` argument was {axis_size}"]
    largest = max(len(g) for g in by_size.values())
    for size, group in by_size.items():
        _, ax, arg, typ = group[0]
        if len(group) == 1:
            lines.append(f"one axis had size {size}: axis {ax} of {arg} of type {typ}")
        else:
            many = "most" if len(group) == largest else "some"
            lines.append(f"{many} axes ({len(group)} of them) had size {size}, e.g. axis {ax} "
                         f"of {arg} of type {typ}")
    return ValueError(f"vmap({fname}) got inconsistent sizes for array axes to be mapped:\n"
                      + ";\n".join(f"  * {line}" for line in lines))


def _axis_size(flat_args: list, flat_axes: list, axis_size: int | None, fname: str,
               describe: Callable[[], list[str]]) -> int:
    """The common size of the mapped axes (or ``axis_size``); ``describe()`` names the
    argument leaves for the error messages."""
    sizes = set() if axis_size is None else {axis_size}
    for x, ax in zip(flat_args, flat_axes):
        if ax is not None:
            shape = core.get_aval(x).shape
            if not -len(shape) <= ax < len(shape):
                min_rank = ax + 1 if ax >= 0 else -ax
                raise ValueError(f"vmap({fname}) was requested to map its argument along axis "
                                 f"{ax}, which implies that its rank should be at least "
                                 f"{min_rank}, but is only {len(shape)} (its shape is {shape})")
            sizes.add(shape[ax])
    if len(sizes) > 1:
        mapped = [(core.get_aval(x).shape[ax], ax % core.get_aval(x).ndim, d,
                   core.get_aval(x).str_short())
                  for x, ax, d in zip(flat_args, flat_axes, describe()) if ax is not None]
        raise _size_mismatch(fname, mapped, axis_size)
    if not sizes:
        if not flat_args:
            raise ValueError(f"vmap({fname}) wrapped function must be passed at least one "
                             "argument containing an array or axis_size must be specified")
        raise ValueError(f"vmap({fname}) must have at least one non-None value in in_axes or "
                         "axis_size must be specified")
    return next(iter(sizes))


_IN_AXES_RULE = ("in_axes must be an int, None, or a tuple of entries corresponding to the "
                 "positional arguments passed to the function")


def _check_axes_spec(spec: Any, what: str, fname: str) -> None:
    """Reject ``in_axes``/``out_axes`` leaves other than ints and None when vmap is built
    (bools and NumPy integers too, as JAX)."""
    if any(type(ax) is not int for ax in tree_util.leaves(spec)):
        raise TypeError(f"vmap({fname}): {what} must be an int, None, or (nested) container "
                        f"with those types as leaves, but got {spec!r}.")


def _check_vmap_spec(in_axes: Any, out_axes: Any, axis_size: Any, fname: str) -> None:
    """Validate vmap's static arguments once, when the function is built."""
    if not (in_axes is None or type(in_axes) in (int, tuple)):
        raise TypeError(f"vmap({fname}): {_IN_AXES_RULE}, but got {in_axes!r}.")
    _check_axes_spec(in_axes, "in_axes", fname)
    _check_axes_spec(out_axes, "out_axes", fname)
    if axis_size is not None and type(axis_size) is not int:
        raise TypeError(f"vmap({fname}): axis_size must be an int or None, got {axis_size!r}")


def _output_name(out: Any, i: int) -> str:
    """The ``i``-th leaf of ``out`` by its key path, for error messages."""
    path = tree_util.leaves_with_plain_path(out)[i][0]
    return f"output {path_str(path)}" if path else "the output"


def _move_out_axis(val: Any, bdim: int | None, oax: int, size: int, fname: str,
                   where: Callable[[], str]) -> Any:
    """An output with its batch axis at ``oax``; ``where()`` names it in errors."""
    val = batching.bdim_at_front(val, bdim, size)
    ndim = core.get_aval(val).ndim
    if not -ndim <= oax < ndim:
        raise ValueError(f"vmap({fname}): out_axes={oax} is out of bounds for {where()}: with "
                         f"the mapped axis of size {size} it has shape "
                         f"{core.get_aval(val).shape} (rank {ndim}), so its out_axes must be in "
                         f"[-{ndim}, {ndim})")
    return batching.moveaxis(val, 0, oax % ndim)


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
         axis_size: int | None = None, spmd_axis_name: Any = None) -> Callable:
    """Vectorise ``fun`` over the ``in_axes`` of its arguments (as ``jax.vmap``, with its
    argument order). ``spmd_axis_name`` is accepted for JAX's signature: it names mesh axes
    to shard the batch over, and one process holds whole arrays here.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.vmap(jnp.dot, in_axes=(0, None))(jnp.ones((3, 2)), jnp.array([1.0, 2.0]))
        Array([3., 3., 3.], dtype=float32)
    """
    check_callable(fun, "vmap")
    fname = _fun_name(fun)
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    _check_vmap_spec(in_axes, out_axes, axis_size, fname)

    @functools.wraps(fun)
    def vmapped(*args: Any, **kwargs: Any):
        flat_args, in_tree = _flatten_args(args, f"vmap({fname})")
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap({fname}): {_IN_AXES_RULE}, but got len(in_axes)="
                             f"{len(in_axes)}, len(args)={len(args)}")
        flat_axes = tree_util.broadcast_prefix(
            in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args),
            tuple(args), f"vmap({fname}) in_axes")
        # Keyword arguments are mapped over their leading axis, as in jax.vmap.
        flat_kw, kw_tree = _flatten_args((kwargs,), f"vmap({fname})")
        n_pos = len(flat_args)
        flat_args, flat_axes = flat_args + flat_kw, flat_axes + [0] * len(flat_kw)
        size = _axis_size(flat_args, flat_axes, axis_size, fname,
                          lambda: _arg_descriptions(fun, args, kwargs))
        trace = batching.BatchTrace(core.current_trace(), size, axis_name)
        try:
            tracers = []
            for x, ax in zip(flat_args, flat_axes):
                if ax is None:
                    tracers.append(x)
                else:
                    tracers.append(batching.BatchTracer(trace, x, ax % core.get_aval(x).ndim))
            with core.set_current_trace(trace):
                out = fun(*tree_util.unflatten(in_tree, tracers[:n_pos]),
                          **tree_util.unflatten(kw_tree, tracers[n_pos:])[0])
            flat_out, out_tree = _flat_outputs(out, f"vmap({fname})")
            flat_out_axes = tree_util.broadcast_prefix(out_axes, out, f"vmap({fname}) out_axes",
                                                       of="the function's outputs")
            results = []
            for i, (o, oax) in enumerate(zip(flat_out, flat_out_axes)):
                val, bdim = trace.unpack(o)
                with core.set_current_trace(trace.parent):
                    if oax is None:
                        if bdim is not None:
                            raise ValueError(f"vmap({fname}): at out_axes, got axis spec None "
                                             f"but output was batched on axis {bdim}; an output "
                                             "with out_axes=None must not depend on the mapped "
                                             "inputs")
                        results.append(val)
                        continue
                    results.append(_move_out_axis(val, bdim, oax, size, fname,
                                                  lambda: _output_name(out, i)))
        finally:
            trace.invalidate()
        return tree_util.unflatten(out_tree, results)
    return vmapped


# --------------------------------------------------------------------------- jacobians

def _restrict(fun: Callable, args: Sequence[Any], nums: tuple[int, ...],
              kwargs: dict | None = None) -> tuple[tuple, Callable]:
    """The differentiated arguments (at resolved positions ``nums``), and ``fun`` as a
    function of those alone."""

    def restricted(*dargs: Any) -> Any:
        full = list(args)
        for n, a in zip(nums, dargs):
            full[n] = a
        return fun(*full, **(kwargs or {}))
    return tuple(args[n] for n in nums), restricted


def _std_basis(flat: list) -> tuple[Any, list[int]]:
    """An identity matrix covering every element of the leaves in ``flat``."""
    sizes = [core.get_aval(x).size for x in flat]
    dt = dtypes.result_type(*[core.get_aval(x).dtype for x in flat])
    square = (sum(sizes),) * 2
    eye = eq(broadcasted_iota(np.int32, square, 0), broadcasted_iota(np.int32, square, 1))
    return convert_element_type(eye, dt), sizes


def _unravel(v: Any, flat: list, sizes: list[int], tree: Any, axis: int = 0,
             like: Any = None) -> Any:
    """Split ``v`` along ``axis`` into pieces shaped like the leaves in ``flat``, with the
    dtype of ``like`` (default: of each leaf; complex to real keeps the real part)."""
    pieces, start = [], 0
    for x, n in zip(flat, sizes):
        aval = core.get_aval(x)
        piece = slice_in_dim(v, start, start + n, axis=axis)
        shape = core.get_aval(v).shape
        if axis:
            new_shape = shape[:axis % len(shape)] + aval.shape
        else:
            new_shape = aval.shape + shape[1:]
        dtype = aval.dtype if like is None else core.get_aval(like).dtype
        if core.get_aval(v).dtype == dtypes.float0:  # an integer output: zeros, as JAX
            pieces.append(full(new_shape, 0, dtype))
        else:
            pieces.append(convert_element_type(reshape(piece, new_shape), dtype))
        start += n
    return tree_util.unflatten(tree, pieces)


def _check_input_dtype_jacfwd(where: str, holomorphic: bool, x: Any) -> None:
    """Forward mode pushes a real basis, so inputs are real unless ``holomorphic=True``
    (then complex, and the basis is complex), as JAX."""
    dt = core.get_aval(x).dtype
    if holomorphic:
        if dt.kind != "c":
            raise TypeError(f"{where} with holomorphic=True requires inputs with complex "
                            f"dtype, but got {dt.name}.")
    elif not dtypes.is_float(dt):
        raise TypeError(f"{where} requires real-valued inputs (input dtype that is a sub-dtype "
                        f"of np.floating), but got {dt.name}. For holomorphic differentiation, "
                        "pass holomorphic=True. For differentiation of non-holomorphic functions "
                        "involving complex inputs or integer inputs, use fungrad.jvp directly.")


def _check_output_dtype_jacfwd(where: str, holomorphic: bool, x: Any) -> None:
    dt = core.get_aval(x).dtype
    if holomorphic and dt.kind != "c":
        raise TypeError(f"{where} with holomorphic=True requires outputs with complex dtype, "
                        f"but got {dt.name}.")


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """Jacobian by forward mode: ``vmap`` of ``jvp`` over a standard basis (as ``jax.jacfwd``).

    Inputs are real; with ``holomorphic=True`` inputs and outputs are complex and the
    Jacobian holds the complex derivatives ``df_i/dz_j``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.jacfwd(lambda x: x ** 2)(jnp.array([1.0, 2.0]))
        Array([[2., 0.],
               [0., 4.]], dtype=float32)
    """
    return _jacfwd(fun, argnums, has_aux, "jacfwd", holomorphic)


def _jacfwd(fun: Callable, argnums: Any, has_aux: bool, api: str,
            holomorphic: bool = False) -> Callable:
    """``jacfwd``, naming ``api`` in argument errors (``hessian`` builds on it)."""
    nums, single, where = _argnums_spec(fun, argnums, api)

    @functools.wraps(fun)
    def jac_f(*args: Any):
        dargs, restricted = _restrict(fun, args, resolve_argnums(nums, len(args), where))
        flat, tree = _flatten_args(dargs, where)
        for x in flat:
            _check_input_dtype_jacfwd(where, holomorphic, x)
        basis, sizes = _std_basis(flat)

        def push(v):
            out = jvp(restricted, dargs, _unravel(v, flat, sizes, tree), has_aux=has_aux)
            return (out[0], out[1], out[2]) if has_aux else (out[0], out[1])
        out_axes = (None, -1, None) if has_aux else (None, -1)
        res = vmap(push, out_axes=out_axes)(basis)
        y, cols = res[0], res[1]
        for yl in tree_util.leaves(y):
            _check_output_dtype_jacfwd(where, holomorphic, yl)
        jac = tree_util.map(
            lambda yl, c: _in_tree_jac(_unravel(c, flat, sizes, tree, axis=-1, like=yl), single),
            y, cols)
        return (jac, res[2]) if has_aux else jac
    return jac_f


def _in_tree_jac(per_arg: tuple, single: bool) -> Any:
    return per_arg[0] if single else per_arg


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """Jacobian by reverse mode: ``vmap`` of the pullback over a standard basis (as ``jax.jacrev``).

    Outputs are real (inputs may be complex: each row is then the gradient of one output, as
    ``grad`` gives it); with ``holomorphic=True`` inputs and outputs are complex and the
    Jacobian holds the complex derivatives ``df_i/dz_j``. ``allow_int`` as in ``grad``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.jacrev(lambda x: x[::-1] * 2.0)(jnp.array([1.0, 2.0]))
        Array([[0., 2.],
               [2., 0.]], dtype=float32)
    """
    return _jacrev(fun, argnums, has_aux, "jacrev", holomorphic, allow_int)


def jacobian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
             holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """Alias of ``jacrev`` (as ``jax.jacobian``)."""
    return _jacrev(fun, argnums, has_aux, "jacobian", holomorphic, allow_int)


def _jacrev(fun: Callable, argnums: Any, has_aux: bool, api: str, holomorphic: bool = False,
            allow_int: bool = False) -> Callable:
    """``jacrev``, naming ``api`` in argument errors (``hessian`` builds on it)."""
    nums, single, where = _argnums_spec(fun, argnums, api)

    @functools.wraps(fun)
    def jac_f(*args: Any):
        dargs, restricted = _restrict(fun, args, resolve_argnums(nums, len(args), where))
        for x in tree_util.leaves(dargs):
            _check_input_dtype_revderiv(where, holomorphic, allow_int, x)
        if has_aux:
            y, pullback, aux = vjp(restricted, *dargs, has_aux=True)
        else:
            (y, pullback), aux = vjp(restricted, *dargs), None
        flat_y, y_tree = tree_util.flatten(y)
        for yl in flat_y:
            _check_output_dtype_revderiv(where, holomorphic, yl)
        basis, sizes = _std_basis(flat_y)
        cts = vmap(lambda v: pullback(_unravel(v, flat_y, sizes, y_tree)))(basis)
        per_out, start = [], 0
        for leaf, n in zip(flat_y, sizes):
            out_shape = core.get_aval(leaf).shape
            rows = tree_util.map(lambda c: reshape(slice_in_dim(c, start, start + n),
                                                   out_shape + c.shape[1:]), cts)
            per_out.append(_in_tree_jac(rows, single))
            start += n
        jac = tree_util.unflatten(y_tree, per_out)
        return (jac, aux) if has_aux else jac
    return jac_f


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """Hessian as ``jacfwd(jacrev(fun))``.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.hessian(lambda x: jnp.sum(x ** 3))(jnp.array([1.0, 2.0]))
        Array([[ 6.,  0.],
               [ 0., 12.]], dtype=float32)
    """
    return _jacfwd(_jacrev(fun, argnums, has_aux, "hessian", holomorphic), argnums, has_aux,
                   "hessian", holomorphic)


# --------------------------------------------------------------------------- staging

def make_jaxpr(fun: Callable, static_argnums: int | Sequence[int] = (),
               return_shape: bool = False) -> Callable:
    """A function returning the ``ClosedJaxpr`` of ``fun`` at the given arguments.

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> print(fungrad.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(1.0))
        { lambda ; a:f32[]. let b:f32[] = sin a; c:f32[] = mul b 2.0:f32[] in (c,) }
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def make(*args: Any, **kwargs: Any):
        dyn = [a for i, a in enumerate(args) if i not in static]
        flat, in_tree = _flatten_args(dyn, "make_jaxpr")
        avals = [core.get_aval(x) for x in flat]
        store = {}

        def flat_fun(*tracers):
            dyn_args = tree_util.unflatten(in_tree, tracers)
            it = iter(dyn_args)
            full = [a if i in static else next(it) for i, a in enumerate(args)]
            out = fun(*full, **kwargs)
            leaves, store["tree"] = _flat_outputs(out, "make_jaxpr")
            return leaves
        jaxpr, consts, outs = pe.trace_to_jaxpr(flat_fun, avals, "make_jaxpr")
        closed = ClosedJaxpr(jaxpr, consts)
        if return_shape:
            shapes = tree_util.unflatten(store["tree"],
                                         [ShapeDtypeStruct(v.aval.shape, v.aval.dtype)
                                          for v in jaxpr.outvars])
            return closed, shapes
        return closed
    return make


class ShapeDtypeStruct:
    """A shape and dtype without data (``jax.ShapeDtypeStruct``)."""
    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: Sequence[int], dtype: Any, weak_type: bool = False) -> None:
        self.shape = hashable_shape(shape, "ShapeDtypeStruct")
        self.dtype = np.dtype(dtype)
        self.weak_type = weak_type

    ndim = property(lambda self: len(self.shape), doc="The number of dimensions.")
    size = property(lambda self: int(np.prod(self.shape)), doc="The number of elements.")

    @property
    def aval(self) -> ShapedArray:
        """The same description as a ``ShapedArray``, the type tracers carry."""
        return ShapedArray(self.shape, self.dtype, self.weak_type)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ShapeDtypeStruct)
                and (self.shape, self.dtype) == (other.shape, other.dtype))

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def __repr__(self) -> str:
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})"


def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """Shapes and dtypes of ``fun(*args)`` by abstract evaluation only (no computation).

    Arguments may be arrays or anything with ``shape`` and ``dtype`` (``ShapeDtypeStruct``).

    Examples:
        >>> import fungrad, fungrad.numpy as jnp
        >>> fungrad.eval_shape(lambda a: a @ a.T, fungrad.ShapeDtypeStruct((4, 3), jnp.float32))
        ShapeDtypeStruct(shape=(4, 4), dtype=float32)
    """
    leaves, in_tree = tree_util.flatten(args)
    avals = [ShapedArray(x.shape, dtypes.canonicalize_dtype(x.dtype),
                         getattr(x, "weak_type", False))
             if hasattr(x, "shape") and hasattr(x, "dtype") else core.get_aval(x) for x in leaves]
    store = {}

    def flat_fun(*tracers):
        out = fun(*tree_util.unflatten(in_tree, tracers), **kwargs)
        out_leaves, store["tree"] = _flat_outputs(out, "eval_shape")
        return out_leaves
    jaxpr, _, _ = pe.trace_to_jaxpr(flat_fun, avals, "eval_shape")
    return tree_util.unflatten(store["tree"],
                               [ShapeDtypeStruct(v.aval.shape, v.aval.dtype, v.aval.weak_type)
                                for v in jaxpr.outvars])
